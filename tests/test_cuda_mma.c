/*
 * test_cuda_mma.c — the tensor-core matmul (src/backend/cuda/cuda_mma.cu)
 * that cu_matmul takes for bf16, q8_0 and q4_0 weights at every M:
 *  (a) against ref (nmse <= 1e-9, the parity suite's matmul tolerance):
 *      the first rows at the 7B shapes, every row at the small ones;
 *  (b) row r of an M-row call equals the 1-row call of x[r] bit for bit,
 *      M in {1, 2, 3, 8, 16, 17, 32, 80};
 *  (c) rows placed anywhere in the batch (gathered, permuted, repeated)
 *      give the same bits, and so does every forced tile config
 *      (xs_cuda_mma_select: the config never changes the order of a sum);
 * all of it for both K split rules (XSWARM_CUDA_MMA_KS=a|b).
 * Random weights and activations (never zeros), with and without bias.
 * Skips (77) without a GPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "testutil.h"

#define MAXM 80

static void *make_weight(xs_dtype dt, int64_t N, int64_t K, uint64_t seed) {
    float *f = malloc((size_t)K * sizeof *f);
    const size_t rb = xs_dtype_row_bytes(dt, K);
    uint8_t *w = malloc(rb * (size_t)N);
    if (!f || !w) { free(f); free(w); return NULL; }
    for (int64_t n = 0; n < N; n++) {
        test_fill_uniform(f, K, seed * 1000003u + (uint64_t)n, -1.0f, 1.0f);
        uint8_t *dst = w + rb * (size_t)n;
        if (dt == XS_BF16)
            for (int64_t k = 0; k < K; k++) ((uint16_t *)dst)[k] = xs_f32_to_bf16(f[k]);
        else if (dt == XS_Q8_0) xs_quantize_row_q8_0(f, (xs_block_q8_0 *)dst, K);
        else xs_quantize_row_q4_0(f, (xs_block_q4_0 *)dst, K);
    }
    free(f);
    return w;
}

static bool upload(xs_backend *be, xs_dtype dt, int64_t r, int64_t c, const void *h, xs_tensor *t) {
    int64_t shp[2] = {r, c};
    xs_status rc = r ? xs_tensor_alloc(be, dt, 2, shp, t) : xs_tensor_alloc(be, dt, 1, &shp[1], t);
    return (rc == XS_OK ? xs_tensor_upload(be, t, h) : rc) == XS_OK;
}

/* y[M, N] = x[M, K] . w^T on backend be, x given on the host */
static bool run(xs_backend *be, const xs_tensor *w, const xs_tensor *b, const float *xh, int64_t M,
                int64_t N, int64_t K, float *yh) {
    xs_tensor x = {0}, y = {0};
    int64_t ys[2] = {M, N};
    bool ok = upload(be, XS_F32, M, K, xh, &x) && xs_tensor_alloc(be, XS_F32, 2, ys, &y) == XS_OK &&
              xs_op_matmul(be, &y, &x, w, b) == XS_OK && xs_tensor_download(be, yh, &y) == XS_OK;
    xs_tensor_free(be, &x);
    xs_tensor_free(be, &y);
    return ok;
}

static void check_shape(xs_backend *ref, xs_backend *cu, xs_dtype dt, int64_t N, int64_t K,
                        bool with_bias, uint64_t seed) {
    static const int ms[] = {1, 2, 3, 8, 16, 17, 32, 80};
    const bool small = N * K <= (1 << 22); /* ref on every row */
    const int nref = small ? MAXM : 3;
    void *wh = make_weight(dt, N, K, seed);
    float *xh = malloc((size_t)(MAXM * K) * sizeof *xh), *xb = malloc((size_t)(MAXM * K) * sizeof *xb);
    float *bh = malloc((size_t)N * sizeof *bh), *y1 = malloc((size_t)(MAXM * N) * sizeof *y1);
    float *yb = malloc((size_t)(MAXM * N) * sizeof *yb), *yr = malloc((size_t)(MAXM * N) * sizeof *yr);
    xs_tensor wc = {0}, wr = {0}, bc = {0}, br = {0};
    bool ok = wh && xh && xb && bh && y1 && yb && yr;
    CHECK(ok, "host memory");
    if (!ok) goto out;
    /* activations of mixed magnitude (as the LM's), bias where asked */
    test_fill_uniform(xh, MAXM * K, seed + 1, -2.0f, 2.0f);
    for (int64_t i = 0; i < MAXM * K; i += 7) xh[i] *= 1e-3f;
    test_fill_uniform(bh, N, seed + 2, -0.5f, 0.5f);
    ok = upload(cu, dt, N, K, wh, &wc) && upload(ref, dt, N, K, wh, &wr) && upload(cu, XS_F32, 0, N, bh, &bc) &&
         upload(ref, XS_F32, 0, N, bh, &br);
    CHECK(ok, "upload: %s", xs_error_msg());
    const xs_tensor *bcu = with_bias ? &bc : NULL, *bref = with_bias ? &br : NULL;
    char what[96];
    snprintf(what, sizeof what, "%s %lldx%lld%s", xs_dtype_name(dt), (long long)N, (long long)K,
             with_bias ? " +bias" : "");
    xs_cuda_mma_select(true, -1, 0);
    /* batch-1 result of every row */
    for (int r = 0; ok && r < MAXM; r++) ok = run(cu, &wc, bcu, xh + (size_t)r * K, 1, N, K, y1 + (size_t)r * N);
    CHECK(ok, "%s: batch-1 calls: %s", what, xs_error_msg());
    /* (a) against ref */
    if (ok) {
        ok = run(ref, &wr, bref, xh, nref, N, K, yr);
        CHECK(ok, "%s: ref: %s", what, xs_error_msg());
        const double e = ok ? test_nmse(yr, y1, (int64_t)nref * N) : 1.0;
        CHECK(e <= 1e-9, "%s: nmse %.3g vs ref over %d rows", what, e, nref);
        if (e > 1e-12) printf("note: %s nmse %.3g vs ref\n", what, e);
    }
    for (size_t mi = 0; ok && mi < sizeof ms / sizeof ms[0]; mi++) {
        const int M = ms[mi];
        /* (b) rows 0..M-1 in order */
        ok = run(cu, &wc, bcu, xh, M, N, K, yb);
        int bad = 0;
        for (int r = 0; ok && r < M; r++) bad += memcmp(yb + (size_t)r * N, y1 + (size_t)r * N, (size_t)N * 4) != 0;
        CHECK(ok && bad == 0, "%s M=%d: %d rows differ from their batch-1 bits (%s)", what, M, bad,
              ok ? "" : xs_error_msg());
        /* (c) gathered rows: row i of the batch is x[(37 i + 5 M) % 80],
         * repeats included when M > 80 / gcd */
        int src[MAXM];
        for (int i = 0; i < M; i++) {
            src[i] = (37 * i + 5 * M) % MAXM;
            memcpy(xb + (size_t)i * K, xh + (size_t)src[i] * K, (size_t)K * sizeof *xb);
        }
        ok = ok && run(cu, &wc, bcu, xb, M, N, K, yb);
        bad = 0;
        for (int i = 0; ok && i < M; i++) bad += memcmp(yb + (size_t)i * N, y1 + (size_t)src[i] * N, (size_t)N * 4) != 0;
        CHECK(ok && bad == 0, "%s M=%d: %d gathered rows differ from their batch-1 bits", what, M, bad);
    }
    /* (c) every tile config, at a few M: same bits */
    static const int mc[] = {1, 17, 80};
    for (size_t mi = 0; ok && mi < 3; mi++) {
        const int M = mc[mi];
        for (int cfg = 0; ok && cfg < 7; cfg++) {
            xs_cuda_mma_select(true, cfg, 0);
            ok = run(cu, &wc, bcu, xh, M, N, K, yb);
            CHECK(ok && !memcmp(yb, y1, (size_t)(M * N) * 4), "%s M=%d cfg %d: bits differ", what, M, cfg);
        }
        xs_cuda_mma_select(true, -1, 0);
    }
out:
    xs_tensor_free(cu, &wc);
    xs_tensor_free(cu, &bc);
    xs_tensor_free(ref, &wr);
    xs_tensor_free(ref, &br);
    free(wh); free(xh); free(xb); free(bh); free(y1); free(yb); free(yr);
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cuda", 1, &cu) == XS_OK, "open cuda: %s", xs_error_msg());
    if (!ref || !cu) return test_summary("cuda_mma");
    /* the 7B's matmul shapes (temporal, depformer, text head) and odd ones:
     * N not a multiple of 16, K of one chunk, a partial quantized stage */
    static const int64_t shapes[][2] = {{17, 64},     {2816, 1024},  {1024, 4096},  {4096, 4096},
                                        {12288, 4096}, {4096, 11264}, {22528, 4096}, {32000, 4096},
                                        {203, 1056},   {5, 32},       {40, 96}};
    static const xs_dtype dts[] = {XS_BF16, XS_Q8_0, XS_Q4_0};
    /* both K split rules (XSWARM_CUDA_MMA_KS): each its own order, each
     * the same at every M */
    for (int rule = 1; rule <= 2; rule++) {
        xs_cuda_mma_select(true, -1, rule);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t d = 0; d < 3; d++)
                check_shape(ref, cu, dts[d], shapes[s][0], shapes[s][1], (s + d) % 2 == 0,
                            100 * s + d + 1 + 7 * (uint64_t)rule);
    }
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_mma");
}
