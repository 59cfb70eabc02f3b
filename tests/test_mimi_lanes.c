/*
 * test_mimi_lanes.c — Mimi's split calls (mimi_*_begin / _finish) and lanes,
 * on golden/mimi_tiny:
 *  - ref and cpu (no lanes: mimi_model_set_lanes gives 1): N streams begun
 *    all, then finished all (in reverse order), give the codes and pcm of
 *    each stream run alone through mimi_encode / mimi_decode;
 *  - cuda (skipped without a GPU): the same with 4 lanes for N = 1, 5, 12
 *    streams (12: three streams per lane), graphs on and off, over several
 *    frames, bit for bit; with graphs on, the split calls replay recordings;
 *  - misuse is an error that leaves the stream usable: a second begin,
 *    a finish without begin, reset / copy / dump while a call is pending.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/lanes.h"
#include "formats/safetensors.h"
#include "model/mimi.h"
#include "model/mimi_internal.h"
#include "testutil.h"

#define FRAME 1920
#define K 8
#define NF 6
#define MAX_N 12

static const float *g_x;
static int64_t g_frames;

/* Input frame t of stream i: its own stretch of the golden input, its own
 * gain, so that every stream gets other codes. */
static void frame_of(int i, int t, float *out) {
    const float *src = g_x + ((int64_t)(5 * i + t) % (g_frames - 1)) * FRAME;
    const float gain = 1.0f - 0.04f * (float)i;
    for (int j = 0; j < FRAME; j++) out[j] = src[j] * gain;
}

typedef struct run_out {
    int32_t codes[MAX_N][NF][K];
    float pcm[MAX_N][NF][FRAME];
} run_out;

/* Each stream alone: mimi_encode then mimi_decode of its own codes, stream
 * after stream, with one lane. */
static bool run_alone(mimi_model *m, int n, run_out *o) {
    mimi_model_set_lanes(m, 1);
    bool ok = true;
    float fr[FRAME];
    for (int i = 0; ok && i < n; i++) {
        mimi_stream *s = NULL;
        ok = mimi_stream_new(m, &s) == XS_OK;
        for (int t = 0; ok && t < NF; t++) {
            frame_of(i, t, fr);
            ok = mimi_encode(s, fr, FRAME, K, o->codes[i][t]) == XS_OK &&
                 mimi_decode(s, o->codes[i][t], 1, K, o->pcm[i][t]) == XS_OK;
        }
        CHECK(ok, "alone: stream %d: %s", i, xs_error_msg());
        mimi_stream_free(s);
    }
    return ok;
}

/* All streams together: per frame, every encode begun, then finished in
 * reverse order; then every decode begun, then finished. */
static bool run_lanes(mimi_model *m, int n, int lanes, run_out *o, int64_t *captures) {
    int got = mimi_model_set_lanes(m, lanes);
    int want = mimi_model_backend(m)->lanes ? lanes : 1; /* host backends: one lane */
    CHECK(got == want && mimi_model_lanes(m) == want, "lanes: asked %d, got %d", lanes, got);
    mimi_stream *s[MAX_N] = {0};
    bool ok = true;
    for (int i = 0; ok && i < n; i++) ok = mimi_stream_new(m, &s[i]) == XS_OK;
    static float fr[MAX_N][FRAME];
    for (int t = 0; ok && t < NF; t++) {
        for (int i = 0; ok && i < n; i++) {
            frame_of(i, t, fr[i]);
            ok = mimi_encode_begin(s[i], fr[i], FRAME, K) == XS_OK;
        }
        for (int i = n - 1; ok && i >= 0; i--)
            ok = mimi_encode_finish(s[i], o->codes[i][t]) == XS_OK;
        for (int i = 0; ok && i < n; i++)
            ok = mimi_decode_begin(s[i], o->codes[i][t], 1, K) == XS_OK;
        for (int i = n - 1; ok && i >= 0; i--)
            ok = mimi_decode_finish(s[i], o->pcm[i][t]) == XS_OK;
    }
    CHECK(ok, "lanes %d, %d streams: %s", lanes, n, xs_error_msg());
    if (ok && n > 1) {
        /* round-robin: stream i on lane i % lanes */
        int wrong = 0;
        for (int i = 0; i < n; i++) wrong += mimi_stream_lane(s[i]) != i % got;
        CHECK(wrong == 0, "streams keep round-robin lanes (%d wrong)", wrong);
    }
    *captures = 0;
    for (int i = 0; i < n; i++)
        if (s[i]) *captures += s[i]->enc_graph.captures + s[i]->dec_graph.captures;
    for (int i = 0; i < n; i++) mimi_stream_free(s[i]);
    return ok;
}

static void compare(const run_out *a, const run_out *b, int n, const char *what) {
    int bad_c = 0, bad_p = 0;
    for (int i = 0; i < n; i++) {
        bad_c += memcmp(a->codes[i], b->codes[i], sizeof a->codes[i]) != 0;
        bad_p += memcmp(a->pcm[i], b->pcm[i], sizeof a->pcm[i]) != 0;
    }
    CHECK(bad_c == 0 && bad_p == 0, "%s: %d streams' codes and %d streams' pcm differ", what,
          bad_c, bad_p);
}

/* Misuse: errors, and the stream goes on. */
static void test_misuse(mimi_model *m) {
    mimi_stream *s = NULL, *d = NULL;
    CHECK(mimi_stream_new(m, &s) == XS_OK && mimi_stream_new(m, &d) == XS_OK, "streams");
    if (!s || !d) return;
    float fr[FRAME];
    int32_t c[K];
    float pcm[FRAME];
    float *dump = malloc((size_t)mimi_stream_state_size(s) * sizeof *dump);
    frame_of(0, 0, fr);
    CHECK(mimi_encode_finish(s, c) != XS_OK, "finish without begin is an error");
    CHECK(mimi_decode_finish(s, pcm) != XS_OK, "decode finish without begin is an error");
    CHECK(mimi_encode_begin(s, fr, FRAME - 1, K) != XS_OK, "begin with a partial frame fails");
    CHECK(mimi_encode_begin(s, fr, FRAME, K) == XS_OK, "begin");
    CHECK(mimi_encode_begin(s, fr, FRAME, K) != XS_OK, "a second begin is an error");
    CHECK(mimi_stream_reset(s) != XS_OK, "reset while pending is an error");
    CHECK(mimi_stream_copy(d, s) != XS_OK, "copy while pending is an error");
    CHECK(dump && mimi_stream_state_dump(s, dump) != XS_OK, "dump while pending is an error");
    CHECK(mimi_encode(s, fr, FRAME, K, c) != XS_OK, "mimi_encode while pending is an error");
    CHECK(mimi_encode_finish(s, c) == XS_OK, "finish: %s", xs_error_msg());
    int nz = 0;
    for (int k = 0; k < K; k++) nz += c[k] != 0;
    CHECK(nz > 0, "codes are not all zero");
    /* encode and decode of one stream pending together */
    CHECK(mimi_encode_begin(s, fr, FRAME, K) == XS_OK && mimi_decode_begin(s, c, 1, K) == XS_OK,
          "encode and decode begun together: %s", xs_error_msg());
    int32_t c2[K];
    CHECK(mimi_decode_finish(s, pcm) == XS_OK && mimi_encode_finish(s, c2) == XS_OK,
          "finished in the other order: %s", xs_error_msg());
    CHECK(mimi_stream_reset(s) == XS_OK, "reset when idle");
    /* freeing a stream with a pending call is fine */
    CHECK(mimi_encode_begin(d, fr, FRAME, K) == XS_OK, "begin before free");
    mimi_stream_free(d);
    free(dump);
    mimi_stream_free(s);
}

static void test_backend(const char *name, const int *ns, int n_ns, int lanes) {
    xs_backend *be = NULL;
    mimi_model *m = NULL;
    CHECK(xs_backend_open(name, 2, &be) == XS_OK, "%s backend: %s", name, xs_error_msg());
    if (!be) return;
    CHECK(mimi_model_open(be, golden_path("mimi_tiny/model.safetensors"), NULL, false, &m, NULL,
                          0) == XS_OK,
          "load on %s: %s", name, xs_error_msg());
    run_out *a = malloc(sizeof *a), *b = malloc(sizeof *b), *g = malloc(sizeof *g);
    if (m && a && b && g) {
        if (!be->lanes) {
            CHECK(mimi_model_set_lanes(m, 4) == 1 && xs_backend_lane_count(be) == 1,
                  "%s: no lanes, one lane", name);
            CHECK(xs_backend_set_lane(be, 1) != XS_OK && xs_backend_set_lane(be, 0) == XS_OK,
                  "%s: only lane 0", name);
        }
        test_misuse(m);
        for (int graphs = 1; graphs >= 0; graphs--) {
            if (graphs) unsetenv("XSWARM_CUDA_GRAPHS");
            else setenv("XSWARM_CUDA_GRAPHS", "0", 1);
            for (int k = 0; k < n_ns; k++) {
                int n = ns[k];
                memset(a, 0, sizeof *a);
                memset(b, 0, sizeof *b);
                int64_t captures = 0;
                if (!run_alone(m, n, a) || !run_lanes(m, n, lanes, b, &captures)) continue;
                char what[128];
                snprintf(what, sizeof what, "%s, %d streams, %d lanes, graphs %s", name, n,
                         be->lanes ? lanes : 1, graphs ? "on" : "off");
                compare(a, b, n, what);
                if (be->iface->graph_begin)
                    CHECK(graphs ? captures == 2 * n : captures == 0,
                          "%s: %lld recordings", what, (long long)captures);
                if (k == n_ns - 1 && graphs) *g = *a;
                if (k == n_ns - 1 && !graphs) compare(g, a, n, "graphs on == graphs off");
            }
        }
        unsetenv("XSWARM_CUDA_GRAPHS");
        /* the values are real: the streams' codes differ from each other */
        int n = ns[n_ns - 1];
        if (n > 1)
            CHECK(memcmp(a->codes[0], a->codes[1], sizeof a->codes[0]) != 0,
                  "%s: streams got different codes", name);
        double e = 0;
        for (int j = 0; j < FRAME; j++) e += (double)a->pcm[0][NF - 1][j] * a->pcm[0][NF - 1][j];
        CHECK(e > 0, "%s: decoded pcm is not silent", name);
    }
    free(a);
    free(b);
    free(g);
    mimi_model_free(m);
    xs_backend_close(be);
}

int main(void) {
    xs_safetensors *gf = NULL;
    CHECK(xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &gf) == XS_OK, "golden");
    const xs_tensor *in = gf ? xs_st_find(gf, "input_pcm") : NULL;
    CHECK(in != NULL, "input_pcm");
    if (!in) return test_summary("test_mimi_lanes");
    g_x = in->data;
    g_frames = xs_tensor_numel(in) / FRAME;

    const int host_ns[] = {3};
    test_backend("ref", host_ns, 1, 4);
    test_backend("cpu", host_ns, 1, 4);
    char why[256];
    if (xs_backend_cuda_usable(why, sizeof why)) {
        const int cuda_ns[] = {1, 5, 12};
        test_backend("cuda", cuda_ns, 3, 4);
    } else {
        printf("test_mimi_lanes: cuda part skipped: %s\n", why);
    }
    xs_st_close(gf);
    return test_summary("test_mimi_lanes");
}
