/*
 * test_mimi_batch.c — mimi_encode_batch / mimi_decode_batch (one frame of n
 * streams as one computation) give each stream what it gets alone.
 *
 * Two sets of streams run the same schedule over NF frames: the reference
 * streams with plain mimi_encode / mimi_decode, one stream after another;
 * the batched ones through the batched calls, except where the schedule
 * says otherwise:
 *  - stream 1 joins late (its first frame is frame 2);
 *  - stream 2 is reset before frame 3 (and starts over);
 *  - stream 3 runs frame 4 alone (plain calls) between batched frames;
 *  - stream 0 skips its decode at frame 1 (decoders at other positions);
 *  - frame 5 lists the streams in reverse order (every state changes slot);
 *  - frames 6.. are the steady state (same streams, same order: on cuda
 *    the batched calls replay their recordings).
 * Codes must be equal; pcm bit for bit on cuda, within 1e-6 on ref / cpu
 * (the cpu matmul of more rows takes its sgemm path). Backends: ref and
 * cpu on golden/mimi_tiny, n = 1, 2, 5, 13; cuda (when a GPU is visible)
 * the same plus a random-weight Mimi of the released shapes, n = 2, 13.
 * The largest n also runs in groups of at most 4 streams per computation.
 * Also: the switch, and refusals (duplicate streams, taps, a begun call).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "model/mimi.h"
#include "model/mimi_internal.h"
#include "testutil.h"

#define FRAME 1920
#define K 8
#define NF 10
#define MAX_N 13

static const float *g_x;
static int64_t g_frames;

/* Input frame t of stream i: golden speech (its own stretch and gain), or
 * a synthetic voice-like signal when there is no golden input. */
static void frame_of(int i, int t, float *out) {
    if (g_x) {
        const float *src = g_x + ((int64_t)(3 * i + t) % (g_frames - 1)) * FRAME;
        const float gain = 1.0f - 0.03f * (float)i;
        for (int j = 0; j < FRAME; j++) out[j] = src[j] * gain;
        return;
    }
    test_fill_uniform(out, FRAME, 1000u + 17u * (uint64_t)i + (uint64_t)t, -0.05f, 0.05f);
    for (int j = 0; j < FRAME; j++) {
        double u = (double)(t * FRAME + j) / 24000.0;
        out[j] += 0.3f * (float)sin(2 * M_PI * (110.0 + 13.0 * i) * u) *
                  (float)(0.6 + 0.4 * sin(2 * M_PI * 3.0 * u));
    }
}

/* The schedule (see the top). */
static bool active(int i, int t) { return !(i == 1 && t < 2); }
static bool solo(int i, int t) { return i == 3 && t == 4; }
static bool reset_before(int i, int t) { return i == 2 && t == 3; }
static bool decodes(int i, int t) { return !(i == 0 && t == 1); }

typedef struct run_out {
    int32_t codes[MAX_N][NF][K];
    float pcm[MAX_N][NF][FRAME];
} run_out;

/* Reference: plain calls, stream after stream. */
static bool run_plain(mimi_model *m, int n, run_out *o) {
    mimi_stream *s[MAX_N] = {0};
    bool ok = true;
    float fr[FRAME];
    for (int i = 0; ok && i < n; i++) ok = mimi_stream_new(m, &s[i]) == XS_OK;
    for (int t = 0; ok && t < NF; t++)
        for (int i = 0; ok && i < n; i++) {
            if (!active(i, t)) continue;
            if (reset_before(i, t)) ok = mimi_stream_reset(s[i]) == XS_OK;
            frame_of(i, t, fr);
            ok = ok && mimi_encode(s[i], fr, FRAME, K, o->codes[i][t]) == XS_OK;
            if (ok && decodes(i, t))
                ok = mimi_decode(s[i], o->codes[i][t], 1, K, o->pcm[i][t]) == XS_OK;
        }
    CHECK(ok, "plain run of %d streams: %s", n, xs_error_msg());
    for (int i = 0; i < n; i++) mimi_stream_free(s[i]);
    return ok;
}

/* Batched: per frame one batched encode of the listed streams, then one
 * batched decode (of the reference's codes, so that decode is checked on
 * its own). */
static bool run_batched(mimi_model *m, int n, const run_out *ref, run_out *o, int64_t *caps,
                        int64_t *launches) {
    mimi_stream *s[MAX_N] = {0};
    bool ok = true;
    static float fr[MAX_N][FRAME];
    for (int i = 0; ok && i < n; i++) ok = mimi_stream_new(m, &s[i]) == XS_OK;
    for (int t = 0; ok && t < NF; t++) {
        mimi_stream *list[MAX_N];
        const float *pcm[MAX_N];
        int32_t *codes[MAX_N];
        const int32_t *dcodes[MAX_N];
        float *dpcm[MAX_N];
        int idx[MAX_N], nl = 0, nd = 0;
        for (int r = 0; r < n; r++) {
            int i = t == 5 ? n - 1 - r : r;
            if (!active(i, t)) continue;
            if (reset_before(i, t)) ok = ok && mimi_stream_reset(s[i]) == XS_OK;
            frame_of(i, t, fr[i]);
            if (solo(i, t)) {
                ok = ok && mimi_encode(s[i], fr[i], FRAME, K, o->codes[i][t]) == XS_OK &&
                     mimi_decode(s[i], ref->codes[i][t], 1, K, o->pcm[i][t]) == XS_OK;
                continue;
            }
            idx[nl] = i;
            list[nl] = s[i];
            pcm[nl] = fr[i];
            codes[nl++] = o->codes[i][t];
        }
        if (ok && nl) ok = mimi_encode_batch(list, nl, pcm, K, codes) == XS_OK;
        for (int r = 0; ok && r < nl; r++) {
            int i = idx[r];
            if (!decodes(i, t)) continue;
            list[nd] = s[i];
            dcodes[nd] = ref->codes[i][t];
            dpcm[nd++] = o->pcm[i][t];
        }
        if (ok && nd) ok = mimi_decode_batch(list, nd, dcodes, K, dpcm) == XS_OK;
        CHECK(ok, "batched frame %d of %d streams: %s", t, n, xs_error_msg());
    }
    /* before the streams go: freeing one drops the recordings that hold it */
    mimi_batch_graph_stats(m, caps, launches);
    for (int i = 0; i < n; i++) mimi_stream_free(s[i]);
    return ok;
}

static void compare(const run_out *a, const run_out *b, int n, double tol, const char *what) {
    int bad_c = 0, bad_p = 0;
    double worst = 0;
    for (int i = 0; i < n; i++) {
        bad_c += memcmp(a->codes[i], b->codes[i], sizeof a->codes[i]) != 0;
        double d = test_max_abs_diff(&a->pcm[i][0][0], &b->pcm[i][0][0], NF * FRAME);
        if (!(d <= tol)) bad_p++;
        if (d > worst || d != d) worst = d;
    }
    printf("%s: worst pcm difference %.3g\n", what, worst);
    CHECK(bad_c == 0, "%s: %d of %d streams' codes differ", what, bad_c, n);
    CHECK(bad_p == 0, "%s: %d streams' pcm differ (worst %.3g, tolerance %.3g)", what, bad_p,
          worst, tol);
    /* the values are real */
    double e = 0;
    for (int j = 0; j < FRAME; j++) e += (double)a->pcm[0][NF - 1][j] * a->pcm[0][NF - 1][j];
    CHECK(e > 0, "%s: decoded pcm is not silent", what);
    if (n > 1)
        CHECK(memcmp(a->codes[0][NF - 1], a->codes[1][NF - 1], sizeof a->codes[0][0]) != 0,
              "%s: streams got different codes", what);
}

static void test_refusals(mimi_model *m) {
    mimi_stream *s = NULL, *d = NULL;
    CHECK(mimi_stream_new(m, &s) == XS_OK && mimi_stream_new(m, &d) == XS_OK, "streams");
    if (!s || !d) return;
    float fr[FRAME];
    frame_of(0, 0, fr);
    int32_t c[2][K];
    mimi_stream *dup[2] = {s, s}, *two[2] = {s, d};
    const float *pcm[2] = {fr, fr};
    int32_t *codes[2] = {c[0], c[1]};
    CHECK(!mimi_batch_usable(dup, 2) && mimi_encode_batch(dup, 2, pcm, K, codes) != XS_OK,
          "the same stream twice is refused");
    CHECK(mimi_encode_batch(two, 2, pcm, 0, codes) != XS_OK, "0 codebooks are refused");
    CHECK(mimi_encode_begin(d, fr, FRAME, K) == XS_OK, "begin");
    CHECK(!mimi_batch_usable(two, 2), "a stream with a begun call is refused");
    CHECK(mimi_encode_finish(d, c[1]) == XS_OK, "finish");
    xs_taps *taps = xs_taps_new();
    CHECK(taps != NULL, "taps");
    mimi_stream_set_taps(d, taps);
    CHECK(!mimi_batch_usable(two, 2), "a stream with taps is refused");
    mimi_stream_set_taps(d, NULL);
    xs_taps_free(taps);
    CHECK(mimi_batch_usable(two, 2) && mimi_encode_batch(two, 2, pcm, K, codes) == XS_OK,
          "then usable: %s", xs_error_msg());
    mimi_stream_free(d); /* frees its slot */
    mimi_stream *one[1] = {s};
    CHECK(mimi_encode_batch(one, 1, pcm, K, codes) == XS_OK, "a freed stream's slot: %s",
          xs_error_msg());
    mimi_stream_free(s);
    mimi_batch_set_mode(0);
    CHECK(!mimi_batch_enabled(), "switch off");
    mimi_batch_set_mode(1);
    CHECK(mimi_batch_enabled(), "switch on");
    mimi_batch_set_mode(-1);
}

static void test_model(const char *what, mimi_model *m, const int *ns, int n_ns, double tol) {
    run_out *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    if (!a || !b) {
        CHECK(0, "out of memory");
        free(a);
        free(b);
        return;
    }
    /* the last count once more in groups of at most 4 streams (one call =
     * several computations in turn on one scratch, as above 64 streams) */
    for (int k = 0; k <= n_ns; k++) {
        const int n = ns[k < n_ns ? k : n_ns - 1], gmax = k < n_ns ? 0 : 4;
        mimi_batch_set_group_max(gmax);
        memset(a, 0, sizeof *a);
        memset(b, 0, sizeof *b);
        int64_t caps = 0, launches = 0;
        bool ok = run_plain(m, n, a) && run_batched(m, n, a, b, &caps, &launches);
        mimi_batch_set_group_max(0);
        if (!ok) continue;
        char w[160];
        snprintf(w, sizeof w, "%s, %d streams%s (%lld recordings, %lld replays)", what, n,
                 gmax ? " in groups of <= 4" : "", (long long)caps, (long long)launches);
        compare(a, b, n, tol, w);
        if (xs_graph_available(mimi_model_backend(m)))
            CHECK(launches > 0, "%s: the steady frames replay a recording", w);
    }
    free(a);
    free(b);
}

static void test_backend(const char *name, const int *ns, int n_ns, double tol, bool real) {
    xs_backend *be = NULL;
    mimi_model *m = NULL;
    CHECK(xs_backend_open(name, 2, &be) == XS_OK, "%s backend: %s", name, xs_error_msg());
    if (!be) return;
    CHECK(mimi_model_open(be, golden_path("mimi_tiny/model.safetensors"), NULL, false, &m, NULL,
                          0) == XS_OK,
          "load on %s: %s", name, xs_error_msg());
    if (m) {
        test_refusals(m);
        test_model(name, m, ns, n_ns, tol);
        mimi_model_free(m);
        m = NULL;
    }
    if (real) { /* the released shapes, random weights, bf16 matmul weights like serving */
        mimi_config c;
        mimi_config_preset(&c);
        c.matmul_bf16 = true;
        uint64_t seed = 7;
        CHECK(mimi_model_load_from(be, &c, mimi_random_source, &seed, &m) == XS_OK,
              "real-shape Mimi on %s: %s", name, xs_error_msg());
        const float *keep = g_x;
        g_x = NULL; /* synthetic input: the golden one belongs to the tiny model */
        const int rn[] = {2, 13};
        char w[64];
        snprintf(w, sizeof w, "%s real shapes", name);
        if (m) test_model(w, m, rn, 2, tol);
        g_x = keep;
        mimi_model_free(m);
    }
    xs_backend_close(be);
}

int main(void) {
    xs_safetensors *gf = NULL;
    CHECK(xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &gf) == XS_OK, "golden");
    const xs_tensor *in = gf ? xs_st_find(gf, "input_pcm") : NULL;
    CHECK(in != NULL, "input_pcm");
    if (!in) return test_summary("test_mimi_batch");
    g_x = in->data;
    g_frames = xs_tensor_numel(in) / FRAME;
    const int ns[] = {1, 2, 5, 13};
    test_backend("ref", ns, 4, 1e-6, false);
    test_backend("cpu", ns, 4, 1e-6, false);
    char why[256];
    if (xs_backend_cuda_usable(why, sizeof why))
        test_backend("cuda", ns, 4, 0.0, true);
    else
        printf("test_mimi_batch: cuda part skipped: %s\n", why);
    xs_st_close(gf);
    return test_summary("test_mimi_batch");
}
