/*
 * test_mimi_real_parity_slow.c — `cpu` equals `ref` tap by tap at the REAL
 * Mimi sizes (64 filters, dimension 512, 8-layer transformers, 2048-entry
 * codebooks) on random weights and real speech (golden mimi_tiny input),
 * over 50 frames: codes exact, every tap within 1e-4 * max(1, max|ref|),
 * decoded pcm within 1e-4; then 10 frames with the matmul weights in bf16.
 * `ref` takes ~0.3 s a frame here, hence _slow.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "formats/safetensors.h"
#include "model/mimi.h"
#include "testutil.h"

#define MAX_FRAMES 50
#define FRAME 1920

typedef struct run {
    xs_backend *be;
    mimi_model *m;
    mimi_stream *s;
    xs_taps *taps;
    int32_t codes[MAX_FRAMES * 8];
    float *pcm;
} run;

static bool run_open(run *r, const char *backend, const mimi_config *c) {
    memset(r, 0, sizeof *r);
    uint64_t seed = 7;
    if (xs_backend_open(backend, 1, &r->be) != XS_OK) return false;
    CHECK(mimi_model_load_from(r->be, c, mimi_random_source, &seed, &r->m) == XS_OK,
          "%s: build: %s", backend, xs_error_msg());
    CHECK(r->m && mimi_stream_new(r->m, &r->s) == XS_OK, "%s: stream", backend);
    r->taps = xs_taps_new();
    if (r->s) mimi_stream_set_taps(r->s, r->taps);
    r->pcm = calloc(MAX_FRAMES * FRAME, sizeof *r->pcm);
    return r->s != NULL;
}

static void run_close(run *r) {
    xs_taps_free(r->taps);
    mimi_stream_free(r->s);
    mimi_model_free(r->m);
    free(r->pcm);
    if (r->be) xs_backend_close(r->be);
}

/* Returns false when the cpu backend is unavailable. */
static bool parity(const float *x, bool bf16, int FRAMES) {
    mimi_config c;
    mimi_config_preset(&c);
    c.matmul_bf16 = bf16;
    run a, b;
    CHECK(run_open(&a, "ref", &c), "ref");
    if (!run_open(&b, "cpu", &c)) {
        run_close(&a);
        return false;
    }
    int K = c.num_codebooks;
    for (int t = 0; t < FRAMES; t++) {
        CHECK(mimi_encode(a.s, x + t * FRAME, FRAME, K, a.codes + t * K) == XS_OK, "ref encode");
        CHECK(mimi_encode(b.s, x + t * FRAME, FRAME, K, b.codes + t * K) == XS_OK, "cpu encode");
    }
    int bad = 0;
    for (int i = 0; i < FRAMES * K; i++) bad += a.codes[i] != b.codes[i];
    CHECK(bad == 0, "codes: %d of %d differ between ref and cpu", bad, FRAMES * K);
    int uniq = 0;
    for (int v = 0; v < c.bins; v++)
        for (int t = 0; t < FRAMES; t++)
            if (a.codes[t * K] == v) {
                uniq++;
                break;
            }
    CHECK(uniq > 3, "codebook 0 is not degenerate (%d distinct codes)", uniq);
    /* both decode ref's codes, so a code flip cannot hide a decoder bug */
    for (int t = 0; t < FRAMES; t++) {
        CHECK(mimi_decode(a.s, a.codes + t * K, 1, K, a.pcm + t * FRAME) == XS_OK, "ref decode");
        CHECK(mimi_decode(b.s, a.codes + t * K, 1, K, b.pcm + t * FRAME) == XS_OK, "cpu decode");
    }
    double perr = test_max_abs_diff(a.pcm, b.pcm, FRAMES * FRAME);
    CHECK(perr <= 1e-4, "pcm max abs diff %.3g", perr);

    int n = 0;
    for (int i = 0; i < xs_taps_count(a.taps); i++) {
        const xs_tensor *ta = xs_taps_at(a.taps, i);
        const xs_tensor *tb = xs_taps_find(b.taps, ta->name);
        CHECK(tb && xs_tensor_same_shape(ta, tb), "tap %s on both, same shape", ta->name);
        if (!tb || !xs_tensor_same_shape(ta, tb)) continue;
        int64_t m = xs_tensor_numel(ta);
        double mx = 0;
        for (int64_t j = 0; j < m; j++) mx = fmax(mx, fabs(((float *)ta->data)[j]));
        double err = test_max_abs_diff(ta->data, tb->data, m);
        CHECK(err <= 1e-4 * fmax(1.0, mx), "tap %s: max abs diff %.3g (max |ref| %.3g)", ta->name,
              err, mx);
        n++;
    }
    printf("real-size parity (%s matmul weights, %d frames): %d taps, codes %d mismatches, "
           "pcm err %.3g, %d distinct cb0 codes\n",
           bf16 ? "bf16" : "f32", FRAMES, n, bad, perr, uniq);
    run_close(&a);
    run_close(&b);
    return true;
}

int main(void) {
    xs_safetensors *g = NULL;
    if (xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &g) != XS_OK)
        test_skip("golden mimi_tiny missing");
    const xs_tensor *in = xs_st_find(g, "input_pcm");
    CHECK(in && xs_tensor_numel(in) >= MAX_FRAMES * FRAME, "speech input");
    if (!in) return test_summary("test_mimi_real_parity_slow");
    if (!parity(in->data, false, MAX_FRAMES)) {
        xs_st_close(g);
        test_skip("cpu backend unavailable");
    }
    parity(in->data, true, 10);
    xs_st_close(g);
    return test_summary("test_mimi_real_parity_slow");
}
