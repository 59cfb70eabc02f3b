/*
 * test_mimi_golden.c — Mimi against Kyutai's reference (golden/mimi_tiny),
 * on `ref` and on `cpu`:
 *  - codes_stream exact (frame-by-frame encode), with every encoder tap within
 *    the golden README section 7 tolerances;
 *  - one-shot encode (all frames in one call) and uneven chunks == codes_stream,
 *    one-shot decode == pcm_decoded_stream;
 *  - decode of codes_stream within 1e-4 of pcm_decoded_stream, decoder taps;
 *  - codes_stream_long exact (past the 250-step context) and its decode;
 *  - reset: a reset stream equals a fresh one (state dump and codes);
 *  - the BF16 weight file against golden_bf16w, also with the
 *    matmul weights kept in bf16 (lossless for that file).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "formats/safetensors.h"
#include "formats/weights.h"
#include "model/mimi.h"
#include "testutil.h"

#define FRAME 1920

static const xs_tensor *gfind(xs_safetensors *g, const char *name) {
    const xs_tensor *t = xs_st_find(g, name);
    CHECK(t != NULL, "golden tensor %s present", name);
    return t;
}

/* Padded input: input_pcm + zeros up to a multiple of 1920. */
static float *padded_input(xs_safetensors *g, int64_t *n_out) {
    const xs_tensor *in = gfind(g, "input_pcm");
    if (!in) return NULL;
    int64_t n = xs_tensor_numel(in), np = (n + FRAME - 1) / FRAME * FRAME;
    float *x = calloc((size_t)np, sizeof *x);
    memcpy(x, in->data, (size_t)n * sizeof *x);
    *n_out = np;
    return x;
}

static int codes_mismatch(const int32_t *got, const xs_tensor *want, int64_t frames, int K) {
    const int64_t *w = want->data;
    int bad = 0;
    for (int64_t i = 0; i < frames * K; i++) bad += got[i] != (int32_t)w[i];
    return bad;
}

/* Compare every recorded tap with the golden tensor of the same name. */
static void check_taps(const char *label, xs_taps *taps, xs_safetensors *g, const char *prefix) {
    int n = 0;
    for (int i = 0; i < xs_taps_count(taps); i++) {
        const xs_tensor *t = xs_taps_at(taps, i);
        if (strncmp(t->name, prefix, strlen(prefix)) != 0) continue;
        char gname[128];
        xs_tap_golden_name(t->name, gname, sizeof gname);
        const xs_tensor *r = xs_st_find(g, gname);
        CHECK(r != NULL, "%s: tap %s has golden %s", label, t->name, gname);
        if (!r) continue;
        char a[64], b[64];
        CHECK(xs_tensor_same_shape(t, r), "%s: tap %s shape %s, golden %s", label, t->name,
              xs_tensor_shape_str(t, a, sizeof a), xs_tensor_shape_str(r, b, sizeof b));
        if (!xs_tensor_same_shape(t, r)) continue;
        int64_t m = xs_tensor_numel(r);
        double ref_max = 0;
        for (int64_t j = 0; j < m; j++) ref_max = fmax(ref_max, fabs(((float *)r->data)[j]));
        double err = test_max_abs_diff(t->data, r->data, m);
        double tol = strstr(gname, "seanet.14") && strstr(gname, "dec") ? 1e-4
                                                                      : 1e-4 * fmax(1.0, ref_max);
        CHECK(err <= tol, "%s: tap %s max abs err %.3g > %.3g", label, t->name, err, tol);
        n++;
    }
    printf("%s: %d %s taps compared\n", label, n, prefix);
}

typedef struct fixture {
    xs_backend *be;
    mimi_model *m;
    mimi_config cfg;
} fixture;

static bool open_model(fixture *f, const char *backend, const char *model_file, bool mm_bf16) {
    memset(f, 0, sizeof *f);
    if (xs_backend_open(backend, 1, &f->be) != XS_OK) {
        printf("backend %s unavailable: %s\n", backend, xs_error_msg());
        return false;
    }
    xs_weights *w = NULL;
    xs_status rc = mimi_config_load(golden_path("mimi_tiny/config.json"), &f->cfg);
    CHECK(rc == XS_OK, "config: %s", xs_error_msg());
    f->cfg.matmul_bf16 = mm_bf16;
    if (rc == XS_OK) rc = xs_weights_open(golden_path(model_file), &w);
    CHECK(rc == XS_OK, "open %s: %s", model_file, xs_error_msg());
    if (rc == XS_OK) rc = mimi_model_load(f->be, &f->cfg, w, &f->m);
    CHECK(rc == XS_OK, "load %s: %s", model_file, xs_error_msg());
    xs_weights_close(w);
    return rc == XS_OK;
}

static void close_model(fixture *f) {
    mimi_model_free(f->m);
    xs_backend_close(f->be);
}

/* Streaming encode, one frame per call. */
static xs_status encode_stream(mimi_stream *s, const float *x, int64_t frames, int K,
                               int32_t *codes) {
    for (int64_t t = 0; t < frames; t++)
        XS_TRY(mimi_encode(s, x + t * FRAME, FRAME, K, codes + t * K));
    return XS_OK;
}

static xs_status decode_stream(mimi_stream *s, const int64_t *codes, int64_t frames, int K,
                               float *pcm) {
    int32_t c[64];
    for (int64_t t = 0; t < frames; t++) {
        for (int k = 0; k < K; k++) c[k] = (int32_t)codes[t * K + k];
        XS_TRY(mimi_decode(s, c, 1, K, pcm + t * FRAME));
    }
    return XS_OK;
}

static void run_backend(const char *backend, const char *model_file, const char *golden_file,
                        bool full, bool mm_bf16) {
    char label[96];
    snprintf(label, sizeof label, "%s/%s%s", backend, model_file, mm_bf16 ? "/mm-bf16" : "");
    fixture f;
    if (!open_model(&f, backend, model_file, mm_bf16)) {
        if (f.be) xs_backend_close(f.be);
        return;
    }
    xs_safetensors *g = NULL, *g32 = NULL;
    CHECK(xs_st_open(golden_path(golden_file), &g) == XS_OK, "open %s: %s", golden_file,
          xs_error_msg());
    /* input_pcm lives in the f32 golden only */
    CHECK(xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &g32) == XS_OK, "open golden");
    if (!g || !g32) goto done;
    int64_t n = 0;
    float *x = padded_input(g32, &n);
    const xs_tensor *want = gfind(g, "codes_stream");
    if (!x || !want) goto done;
    int64_t T = n / FRAME;
    int K = f.cfg.num_codebooks;
    CHECK(T == want->shape[0] && K == want->shape[1], "%s: %lld frames x %d codebooks", label,
          (long long)T, K);

    int32_t *codes = calloc((size_t)(2 * T * K), sizeof *codes);
    float *pcm = calloc((size_t)(2 * n), sizeof *pcm);

    /* 1. streaming encode with taps */
    mimi_stream *s = NULL;
    CHECK(mimi_stream_new(f.m, &s) == XS_OK, "stream: %s", xs_error_msg());
    xs_taps *taps = xs_taps_new();
    mimi_stream_set_taps(s, taps);
    xs_status rc = encode_stream(s, x, T, K, codes);
    CHECK(rc == XS_OK, "%s: encode: %s", label, xs_error_msg());
    int bad = codes_mismatch(codes, want, T, K);
    CHECK(bad == 0, "%s: codes_stream: %d of %lld codes differ", label, bad, (long long)(T * K));
    printf("%s: codes_stream %d mismatches\n", label, bad);
    check_taps(label, taps, g, "mimi.enc");

    /* 2. decode of the golden codes, frame by frame, with taps */
    const xs_tensor *pw = gfind(g, "pcm_decoded_stream");
    rc = decode_stream(s, want->data, T, K, pcm);
    CHECK(rc == XS_OK, "%s: decode: %s", label, xs_error_msg());
    if (pw) {
        double err = test_max_abs_diff(pcm, pw->data, n);
        CHECK(err <= 1e-4, "%s: pcm_decoded_stream max abs err %.3g", label, err);
        printf("%s: pcm_decoded_stream max abs err %.3g\n", label, err);
    }
    check_taps(label, taps, g, "mimi.dec");
    mimi_stream_set_taps(s, NULL);
    xs_taps_free(taps);

    /* 3. reset == fresh: state dump and codes */
    mimi_stream *fresh = NULL;
    CHECK(mimi_stream_new(f.m, &fresh) == XS_OK, "fresh stream");
    CHECK(mimi_stream_reset(s) == XS_OK, "reset");
    int64_t ns = mimi_stream_state_size(s);
    float *d1 = calloc((size_t)ns, sizeof *d1), *d2 = calloc((size_t)ns, sizeof *d2);
    CHECK(mimi_stream_state_dump(s, d1) == XS_OK && mimi_stream_state_dump(fresh, d2) == XS_OK,
          "dump");
    CHECK(memcmp(d1, d2, (size_t)ns * sizeof *d1) == 0, "%s: reset state == fresh state", label);
    int64_t short_t = 12;
    int32_t *c2 = calloc((size_t)(T * K), sizeof *c2);
    CHECK(encode_stream(s, x, short_t, K, c2) == XS_OK, "encode after reset");
    CHECK(codes_mismatch(c2, want, short_t, K) == 0, "%s: codes after reset == codes_stream",
          label);
    CHECK(mimi_stream_state_dump(s, d1) == XS_OK, "dump after run");
    bool moved = memcmp(d1, d2, (size_t)ns * sizeof *d1) != 0;
    CHECK(moved, "%s: state changes when encoding", label);

    /* 4. one-shot encode: all frames in one call */
    mimi_stream_free(fresh);
    fresh = NULL;
    CHECK(mimi_stream_new(f.m, &fresh) == XS_OK, "fresh stream");
    rc = mimi_encode(fresh, x, n, K, c2);
    CHECK(rc == XS_OK, "%s: one-shot encode: %s", label, xs_error_msg());
    CHECK(codes_mismatch(c2, want, T, K) == 0, "%s: one-shot codes == codes_stream", label);

    /* 4b. uneven chunks (1, 3, 5, 1, 3, 5, ... frames per call) give the same codes */
    CHECK(mimi_stream_reset(fresh) == XS_OK, "reset");
    for (int64_t t = 0, k = 0; t < T; k++) {
        int64_t nf = 1 + 2 * (k % 3);
        if (nf > T - t) nf = T - t;
        CHECK(mimi_encode(fresh, x + t * FRAME, nf * FRAME, K, c2 + t * K) == XS_OK, "chunk");
        t += nf;
    }
    CHECK(codes_mismatch(c2, want, T, K) == 0, "%s: chunked codes == codes_stream", label);

    /* 4c. one-shot decode: all frames in one call == the streaming pcm */
    CHECK(mimi_stream_reset(fresh) == XS_OK, "reset");
    for (int64_t i = 0; i < T * K; i++) c2[i] = (int32_t)((const int64_t *)want->data)[i];
    rc = mimi_decode(fresh, c2, T, K, pcm);
    CHECK(rc == XS_OK, "%s: one-shot decode: %s", label, xs_error_msg());
    if (pw) {
        double err = test_max_abs_diff(pcm, pw->data, n);
        CHECK(err <= 1e-4, "%s: one-shot decode max abs err %.3g", label, err);
    }

    if (full) {
        /* 5. long run: the padded input twice in one stream (308 positions > 250) */
        const xs_tensor *wl = gfind(g, "codes_stream_long");
        float *x2 = malloc((size_t)(2 * n) * sizeof *x2);
        memcpy(x2, x, (size_t)n * sizeof *x2);
        memcpy(x2 + n, x, (size_t)n * sizeof *x2);
        CHECK(mimi_stream_reset(s) == XS_OK, "reset");
        rc = encode_stream(s, x2, 2 * T, K, codes);
        CHECK(rc == XS_OK, "%s: long encode: %s", label, xs_error_msg());
        if (wl) {
            bad = codes_mismatch(codes, wl, 2 * T, K);
            CHECK(bad == 0, "%s: codes_stream_long: %d codes differ", label, bad);
            printf("%s: codes_stream_long %d mismatches\n", label, bad);
        }
        const xs_tensor *pl = gfind(g, "pcm_decoded_stream_long");
        if (wl && pl) {
            rc = decode_stream(s, wl->data, 2 * T, K, pcm);
            CHECK(rc == XS_OK, "%s: long decode: %s", label, xs_error_msg());
            double err = test_max_abs_diff(pcm, pl->data, 2 * n);
            CHECK(err <= 1e-4, "%s: pcm_decoded_stream_long max abs err %.3g", label, err);
            printf("%s: pcm_decoded_stream_long max abs err %.3g\n", label, err);
        }
        free(x2);
    }

    mimi_stream_free(fresh);
    mimi_stream_free(s);
    free(d1);
    free(d2);
    free(c2);
    free(codes);
    free(pcm);
    free(x);
done:
    xs_st_close(g);
    xs_st_close(g32);
    close_model(&f);
}

int main(void) {
    const char *backends[] = {"ref", "cpu"};
    for (int b = 0; b < 2; b++) {
        run_backend(backends[b], "mimi_tiny/model.safetensors", "mimi_tiny/golden.safetensors",
                    true, false);
        run_backend(backends[b], "mimi_tiny/model.bf16.safetensors",
                    "mimi_tiny/golden_bf16w.safetensors", false, false);
        /* bf16 file, matmul weights (transformers, deep convs) kept in bf16:
         * still exact */
        run_backend(backends[b], "mimi_tiny/model.bf16.safetensors",
                    "mimi_tiny/golden_bf16w.safetensors", false, true);
    }
    return test_summary("test_mimi_golden");
}
