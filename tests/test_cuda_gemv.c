/*
 * test_cuda_gemv.c — the cuda GEMV/GEMM-small kernels (cuda_gemv_rows.cuh,
 * cuda_gemv_quant.cuh) for every weight dtype at M = 1..64 rows:
 *  - against ref (nmse <= 1e-9, as the parity suite), at shapes whose
 *    N is not a multiple of the rows per block and whose quantized rows are
 *    only 2-byte aligned, K under and over one 32-block chunk;
 *  - bit for bit: row m of a batched call equals the same row alone
 *    (M = 1), which is what lets B batched sessions get the tokens of B
 *    batch-1 runs;
 *  - bit for bit: the q8_0 / q4_0 kernels equal their previous versions
 *    (rows0).
 * XSWARM_GEMV_BENCH=1 adds a timing table at the 7B shapes (events on the
 * device, weights rotated over > 256 MB so L2 cannot serve them) against
 * the read bandwidth measured in the same run. Skips (77) without a GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "testutil.h"
#include "timing_weight.h"

/* Host bytes of an [N, K] weight in dtype dt from uniform floats. */
static void *make_weight(xs_dtype dt, int64_t N, int64_t K, uint64_t seed) {
    float *f = malloc((size_t)(N * K) * sizeof *f);
    size_t rb = xs_dtype_row_bytes(dt, K);
    uint8_t *w = malloc(rb * (size_t)N);
    if (!f || !w) { free(f); free(w); return NULL; }
    test_fill_uniform(f, N * K, seed, -1.0f, 1.0f);
    for (int64_t n = 0; n < N; n++) {
        const float *src = f + n * K;
        uint8_t *dst = w + rb * (size_t)n;
        switch (dt) {
        case XS_F32: memcpy(dst, src, (size_t)K * 4); break;
        case XS_F16: for (int64_t k = 0; k < K; k++) ((uint16_t *)dst)[k] = xs_f32_to_f16(src[k]); break;
        case XS_BF16: for (int64_t k = 0; k < K; k++) ((uint16_t *)dst)[k] = xs_f32_to_bf16(src[k]); break;
        case XS_Q8_0: xs_quantize_row_q8_0(src, (xs_block_q8_0 *)dst, K); break;
        case XS_Q4_0: xs_quantize_row_q4_0(src, (xs_block_q4_0 *)dst, K); break;
        default: break;
        }
    }
    free(f);
    return w;
}

/* r == 0: a 1-D tensor of c values */
static xs_status upload(xs_backend *be, xs_dtype dt, int64_t r, int64_t c, const void *h, xs_tensor *t) {
    int64_t shp[2] = {r, c};
    xs_status rc = r ? xs_tensor_alloc(be, dt, 2, shp, t) : xs_tensor_alloc(be, dt, 1, &shp[1], t);
    return rc == XS_OK ? xs_tensor_upload(be, t, h) : rc;
}

static int g_chunk; /* quantized chunk forced for the new kernels (0 = by K) */

static void check_shape(xs_backend *ref, xs_backend *cu, xs_dtype dt, int64_t M, int64_t N,
                        int64_t K, bool with_bias, uint64_t seed) {
    void *wh = make_weight(dt, N, K, seed);
    float *xh = malloc((size_t)(M * K) * sizeof *xh), *bh = malloc((size_t)N * sizeof *bh);
    float *yr = malloc((size_t)(M * N) * sizeof *yr), *yc = malloc((size_t)(M * N) * sizeof *yc);
    float *y1 = malloc((size_t)N * sizeof *y1);
    CHECK(wh && xh && bh && yr && yc && y1, "host memory");
    if (!wh || !xh || !bh || !yr || !yc || !y1) goto out;
    test_fill_uniform(xh, M * K, seed + 1, -2.0f, 2.0f);
    test_fill_uniform(bh, N, seed + 2, -0.5f, 0.5f);
    xs_tensor wr = {0}, wc = {0}, xr = {0}, xc = {0}, br = {0}, bc = {0}, Yr = {0}, Yc = {0}, x1 = {0}, Y1 = {0};
    int64_t ys[2] = {M, N}, one[2] = {1, K}, y1s[2] = {1, N};
    bool ok = upload(ref, dt, N, K, wh, &wr) == XS_OK && upload(cu, dt, N, K, wh, &wc) == XS_OK &&
              upload(ref, XS_F32, M, K, xh, &xr) == XS_OK && upload(cu, XS_F32, M, K, xh, &xc) == XS_OK &&
              upload(ref, XS_F32, 0, N, bh, &br) == XS_OK && upload(cu, XS_F32, 0, N, bh, &bc) == XS_OK &&
              xs_tensor_alloc(ref, XS_F32, 2, ys, &Yr) == XS_OK &&
              xs_tensor_alloc(cu, XS_F32, 2, ys, &Yc) == XS_OK &&
              xs_tensor_alloc(cu, XS_F32, 2, one, &x1) == XS_OK &&
              xs_tensor_alloc(cu, XS_F32, 2, y1s, &Y1) == XS_OK;
    CHECK(ok, "alloc/upload: %s", xs_error_msg());
    if (ok) {
        const xs_tensor *bref = with_bias ? &br : NULL, *bcu = with_bias ? &bc : NULL;
        ok = xs_op_matmul(ref, &Yr, &xr, &wr, bref) == XS_OK && xs_op_matmul(cu, &Yc, &xc, &wc, bcu) == XS_OK &&
             xs_tensor_download(ref, yr, &Yr) == XS_OK && xs_tensor_download(cu, yc, &Yc) == XS_OK;
        CHECK(ok, "matmul %s M=%lld N=%lld K=%lld: %s", xs_dtype_name(dt), (long long)M, (long long)N,
              (long long)K, xs_error_msg());
        if (ok) {
            double e = test_nmse(yr, yc, M * N);
            CHECK(e <= 1e-9, "%s M=%lld N=%lld K=%lld: nmse %.3g vs ref", xs_dtype_name(dt),
                  (long long)M, (long long)N, (long long)K, e);
            /* every batched row bit-identical to the row alone */
            int bad = 0;
            for (int64_t m = 0; m < M && ok; m++) {
                ok = xs_tensor_upload(cu, &x1, xh + m * K) == XS_OK &&
                     xs_op_matmul(cu, &Y1, &x1, &wc, bcu) == XS_OK && xs_tensor_download(cu, y1, &Y1) == XS_OK;
                if (ok && memcmp(y1, yc + m * N, (size_t)N * sizeof *y1)) bad++;
            }
            CHECK(ok && bad == 0, "%s M=%lld N=%lld K=%lld: %d batched rows differ from batch-1 bits",
                  xs_dtype_name(dt), (long long)M, (long long)N, (long long)K, bad);
            /* the previous kernels and the new warp-row ones (same lane
             * partition and order): same bits. The split kernel that narrow
             * float matrices take by default sums in another order; it is
             * checked against ref and batch-1 above. */
            float *yo = malloc((size_t)(M * N) * sizeof *yo);
            xs_cuda_gemv_select(true, 0, 0);
            ok = yo && xs_op_matmul(cu, &Yc, &xc, &wc, bcu) == XS_OK && xs_tensor_download(cu, yo, &Yc) == XS_OK;
            xs_cuda_gemv_select(false, 1, g_chunk);
            ok = ok && xs_op_matmul(cu, &Yc, &xc, &wc, bcu) == XS_OK && xs_tensor_download(cu, yr, &Yc) == XS_OK;
            xs_cuda_gemv_select(false, 0, g_chunk);
            ok = ok && !memcmp(yo, yr, (size_t)(M * N) * sizeof *yr);
            CHECK(ok, "%s M=%lld N=%lld K=%lld: new kernel bits differ from the previous kernel's",
                  xs_dtype_name(dt), (long long)M, (long long)N, (long long)K);
            /* q8_0 / q4_0: the current kernels give the bits of their
             * previous versions (XSWARM_CUDA_GEMV=rows0) */
            if (dt == XS_Q8_0 || dt == XS_Q4_0) {
                xs_cuda_gemv_quant_select(true);
                ok = yo && xs_op_matmul(cu, &Yc, &xc, &wc, bcu) == XS_OK && xs_tensor_download(cu, yo, &Yc) == XS_OK;
                xs_cuda_gemv_quant_select(false);
                ok = ok && xs_op_matmul(cu, &Yc, &xc, &wc, bcu) == XS_OK && xs_tensor_download(cu, yr, &Yc) == XS_OK;
                CHECK(ok && !memcmp(yo, yr, (size_t)(M * N) * sizeof *yr),
                      "%s M=%lld N=%lld K=%lld: current kernels differ from rows0", xs_dtype_name(dt),
                      (long long)M, (long long)N, (long long)K);
            }
            free(yo);
        }
    }
    xs_tensor *ts[] = {&wc, &xc, &bc, &Yc, &x1, &Y1};
    for (int i = 0; i < 6; i++) xs_tensor_free(cu, ts[i]);
    xs_tensor *tr[] = {&wr, &xr, &br, &Yr};
    for (int i = 0; i < 4; i++) xs_tensor_free(ref, tr[i]);
out:
    free(wh); free(xh); free(bh); free(yr); free(yc); free(y1);
}

/* Batch 1, q8_0 / q4_0: every rows-per-warp x chunk choice (forced) gives
 * the bits of the previous kernels (rows0). With whole chunks and 16-byte
 * rows they run k_gemv_quant_rows_full (or, with a cp.async ring,
 * k_gemv_quant_rows_async), otherwise k_gemv_quant_rows; the default routes
 * reach only some of these at a given shape. */
static void check_batch1_choices(xs_backend *cu, xs_dtype dt, int64_t N, int64_t K, uint64_t seed) {
    void *wh = make_weight(dt, N, K, seed);
    float *xh = malloc((size_t)K * sizeof *xh), *y0 = malloc((size_t)N * sizeof *y0);
    float *y = malloc((size_t)N * sizeof *y);
    xs_tensor w = {0}, x = {0}, Y = {0};
    int64_t ys[2] = {1, N};
    bool ok = wh && xh && y0 && y;
    if (ok) test_fill_uniform(xh, K, seed + 1, -2.0f, 2.0f);
    ok = ok && upload(cu, dt, N, K, wh, &w) == XS_OK && upload(cu, XS_F32, 1, K, xh, &x) == XS_OK &&
         xs_tensor_alloc(cu, XS_F32, 2, ys, &Y) == XS_OK;
    xs_cuda_gemv_quant_select(true);
    ok = ok && xs_op_matmul(cu, &Y, &x, &w, NULL) == XS_OK && xs_tensor_download(cu, y0, &Y) == XS_OK;
    xs_cuda_gemv_quant_select(false);
    CHECK(ok, "%s N=%lld K=%lld: rows0 batch 1: %s", xs_dtype_name(dt), (long long)N, (long long)K,
          xs_error_msg());
    static const int rows[] = {1, 2, 4}, chunks[] = {32, 64};
    xs_cuda_gemv_quant_async_select(0); /* the register-staged kernels first */
    for (int ri = 0; ok && ri < 3; ri++)
        for (int ci = 0; ok && ci < 2; ci++) {
            xs_cuda_gemv_select(false, rows[ri], chunks[ci]);
            ok = xs_op_matmul(cu, &Y, &x, &w, NULL) == XS_OK && xs_tensor_download(cu, y, &Y) == XS_OK;
            CHECK(ok && !memcmp(y, y0, (size_t)N * sizeof *y),
                  "%s N=%lld K=%lld batch 1, %d rows a warp, %d-block chunks: bits differ from rows0",
                  xs_dtype_name(dt), (long long)N, (long long)K, rows[ri], chunks[ci]);
        }
    xs_cuda_gemv_quant_async_select(-1);
    /* chunks staged through registers (0) or copied by cp.async into a ring
     * of 2-4 slots: the same bits */
    static const int slots[] = {0, 2, 3, 4};
    for (int ri = 0; ok && ri < 3; ri++)
        for (int si = 0; ok && si < 4; si++) {
            const int st = slots[si];
            xs_cuda_gemv_select(false, rows[ri], 32);
            xs_cuda_gemv_quant_async_select(st);
            ok = xs_op_matmul(cu, &Y, &x, &w, NULL) == XS_OK && xs_tensor_download(cu, y, &Y) == XS_OK;
            xs_cuda_gemv_quant_async_select(-1);
            CHECK(ok && !memcmp(y, y0, (size_t)N * sizeof *y),
                  "%s N=%lld K=%lld batch 1, %d rows a warp, cp.async ring of %d (0: none): bits differ from rows0",
                  xs_dtype_name(dt), (long long)N, (long long)K, rows[ri], st);
        }
    xs_cuda_gemv_select(false, 0, 0);
    xs_tensor_free(cu, &w);
    xs_tensor_free(cu, &x);
    xs_tensor_free(cu, &Y);
    free(wh); free(xh); free(y0); free(y);
}

/* ---- timing at the 7B shapes -------------------------------------------------- */
/* prev: the previous q8_0/q4_0 kernels (rows0) */
typedef struct variant { const char *name; bool old, mma; int rows, chunk, mcfg, rule; bool prev; int async; } variant;

static void bench(xs_backend *cu) {
    double rd = 0, cp = 0;
    char desc[160] = "";
    xs_cuda_device_desc(cu, desc, sizeof desc);
    if (xs_cuda_measure_bandwidth(cu, &rd) != XS_OK || xs_cuda_measure_copy_bandwidth(cu, &cp) != XS_OK) {
        printf("bench: no bandwidth: %s\n", xs_error_msg());
        return;
    }
    printf("gemv bench: %s; read kernel %.0f GB/s, D2D copy %.0f GB/s (read+write)\n", desc, rd, cp);
    printf("us per call (40 calls back to back, weights rotated over >256 MB); xfloor = us / (weight bytes / read GB/s)\n");
    /* "rows" = the GEMV kernels chosen by shape (the default),
     * "mma" = the tensor-core kernel for bf16 / q8_0 / q4_0 (f16: rows) */
    /* mma: XSWARM_CUDA_GEMV=mma; mmaB: with the K split rule "b"
     * (XSWARM_CUDA_MMA_KS=b); rows0: the previous q8_0 / q4_0 kernels;
     * RN, CN, RNCN: rows per warp, quantized chunk forced (one or both);
     * AS: batch-1 quantized rows through the cp.async ring of S slots, A0
     * never (the other variants: the rule by shape, cuda_matmul.cu) */
    static const variant vars[] = {
        {"old", true, false, 0, 0, -1, 0, false, -1},  {"rows0", false, false, 0, 0, -1, 0, true, -1},
        {"rows", false, false, 0, 0, -1, 0, false, -1}, {"mma", false, true, 0, 0, -1, 1, false, -1},
        {"mmaB", false, true, 0, 0, -1, 2, false, -1},  {"R1", false, false, 1, 0, -1, 0, false, -1},
        {"R2", false, false, 2, 0, -1, 0, false, -1},   {"R4", false, false, 4, 0, -1, 0, false, -1},
        {"C32", false, false, 0, 32, -1, 0, false, -1}, {"C64", false, false, 0, 64, -1, 0, false, -1},
        {"R1C32", false, false, 1, 32, -1, 0, false, -1}, {"R2C32", false, false, 2, 32, -1, 0, false, -1},
        {"R4C32", false, false, 4, 32, -1, 0, false, -1}, {"R1C64", false, false, 1, 64, -1, 0, false, -1},
        {"A0", false, false, 0, 0, -1, 0, false, 0}, {"A2", false, false, 0, 0, -1, 0, false, 2}, {"A3", false, false, 0, 0, -1, 0, false, 3},
        {"A4", false, false, 0, 0, -1, 0, false, 4}};
    const int nv = (int)(sizeof vars / sizeof vars[0]);
    printf("%-12s %-5s %3s %8s", "NxK", "dtype", "M", "floor");
    for (int v = 0; v < nv; v++) printf(" %8s", vars[v].name);
    printf("  best GB/s\n");
    static const int64_t shapes[][2] = {{12288, 4096}, {4096, 4096}, {22528, 4096}, {4096, 11264},
                                        {32000, 4096}, {3072, 1024}, {1024, 1024}, {5632, 1024},
                                        {1024, 2816},  {2048, 1024}, {1024, 4096}};
    static const xs_dtype dts[] = {XS_BF16, XS_F16, XS_Q8_0, XS_Q4_0};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        for (size_t di = 0; di < 4; di++) {
            const xs_dtype dt = dts[di];
            const int64_t N = shapes[si][0], K = shapes[si][1];
            if (dt == XS_F16 && si > 1) continue; /* f16 walks the bf16 path */
            const bool sweep = si == 0 && (dt == XS_BF16 || dt == XS_Q8_0);
            const int mlist[] = {1, 4, 16, 32, 64, 80};
            const int nm = sweep ? 6 : 1;
            const size_t wb = xs_dtype_row_bytes(dt, K) * (size_t)N;
            int copies = (int)((256u << 20) / wb) + 1;
            if (copies > 16) copies = 16;
            void *wh = timing_weight(dt, N, K, 77 + si);
            xs_tensor w[16];
            memset(w, 0, sizeof w);
            bool ok = wh != NULL;
            for (int c = 0; ok && c < copies; c++) ok = upload(cu, dt, N, K, wh, &w[c]) == XS_OK;
            free(wh);
            float *xh = malloc((size_t)(80 * K) * sizeof *xh);
            xs_tensor x = {0}, y = {0};
            int64_t xs64[2] = {80, K}, ys64[2] = {80, N};
            ok = ok && xh && xs_tensor_alloc(cu, XS_F32, 2, xs64, &x) == XS_OK &&
                 xs_tensor_alloc(cu, XS_F32, 2, ys64, &y) == XS_OK;
            if (ok) {
                test_fill_uniform(xh, 80 * K, 5, -1.0f, 1.0f);
                ok = xs_tensor_upload(cu, &x, xh) == XS_OK;
            }
            for (int mi = 0; ok && mi < nm; mi++) {
                const int M = nm == 1 ? 1 : mlist[mi];
                xs_tensor xv = x, yv = y;
                xv.shape[0] = M;
                yv.shape[0] = M;
                const double fl = wb / (rd * 1e9) * 1e6;
                printf("%5lldx%-6lld %-5s %3d %8.2f", (long long)N, (long long)K, xs_dtype_name(dt), M, fl);
                double best = 1e30;
                for (int v = 0; ok && v < nv; v++) {
                    xs_cuda_gemv_select(vars[v].old, vars[v].rows, vars[v].chunk);
                    xs_cuda_gemv_quant_select(vars[v].prev);
                    xs_cuda_gemv_quant_async_select(vars[v].async);
                    if (vars[v].mma) xs_cuda_mma_select(true, vars[v].mcfg, vars[v].rule);
                    const int reps = 40;
                    ok = xs_op_matmul(cu, &yv, &xv, &w[0], NULL) == XS_OK; /* warm */
                    ok = ok && xs_cuda_stall(cu, 2.0) == XS_OK && xs_cuda_timer_mark(cu, 0) == XS_OK;
                    for (int r = 0; ok && r < reps; r++) ok = xs_op_matmul(cu, &yv, &xv, &w[r % copies], NULL) == XS_OK;
                    double ms = 0;
                    ok = ok && xs_cuda_timer_mark(cu, 1) == XS_OK && xs_cuda_timer_ms(cu, 0, 1, &ms) == XS_OK;
                    const double us = ms * 1e3 / reps;
                    if (ok) printf(" %8.2f", us);
                    if (ok && v && us < best) best = us;
                }
                printf("  %.0f (%.2fx floor)\n", wb / (best * 1e-6) / 1e9, best / fl);
                xs_cuda_gemv_select(false, 0, 0);
                xs_cuda_gemv_quant_select(false);
                xs_cuda_gemv_quant_async_select(-1);
            }
            if (!ok) printf("bench %lldx%lld %s: %s\n", (long long)N, (long long)K, xs_dtype_name(dt), xs_error_msg());
            for (int c = 0; c < copies; c++) xs_tensor_free(cu, &w[c]);
            xs_tensor_free(cu, &x);
            xs_tensor_free(cu, &y);
            free(xh);
        }
    }
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cuda", 1, &cu) == XS_OK, "open cuda: %s", xs_error_msg());
    if (!ref || !cu) return test_summary("cuda_gemv");
    /* f32 weights would take the sgemm kernels (tests/test_cuda_sgemm.c):
     * this test keeps checking the GEMV kernels, which XSWARM_CUDA_SGEMM=0
     * still selects */
    xs_cuda_sgemm_select(0);
    static const xs_dtype dts[] = {XS_F32, XS_F16, XS_BF16, XS_Q8_0, XS_Q4_0};
    static const int ms[] = {1, 2, 3, 4, 5, 8, 9, 17, 64};
    for (int pass = 0; pass < 2; pass++) {
    g_chunk = pass ? 64 : 0; /* second pass: 64-block chunks for the quantized rows */
    xs_cuda_gemv_select(false, 0, g_chunk);
    for (size_t d = pass ? 3 : 0; d < 5; d++)
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
            /* N 203: not a multiple of 4 warps x R rows; K 320 = 10 blocks (one
             * partial chunk), 1056 = 33 blocks (2-byte aligned q8_0 rows, a
             * chunk and one block), 4096 the 7B width */
            check_shape(ref, cu, dts[d], ms[i], 203, 320, i % 2 == 0, 11 + d * 100 + i);
            check_shape(ref, cu, dts[d], ms[i], 37, 1056, i % 2 == 1, 13 + d * 100 + i);
        }
    }
    g_chunk = 0;
    xs_cuda_gemv_select(false, 0, 0);
    for (size_t d = 3; d < 5; d++) { /* K >= 8192: 64-block chunks by default, 257 blocks */
        check_shape(ref, cu, dts[d], 1, 75, 8224, true, 700 + d);
        check_shape(ref, cu, dts[d], 6, 75, 8224, false, 710 + d);
    }
    for (size_t d = 0; d < 5; d++) {
        check_shape(ref, cu, dts[d], 1, 8200, 4096, false, 900 + d); /* R = 2 at M = 1 */
        check_shape(ref, cu, dts[d], 16, 4100, 512, true, 950 + d);  /* R = 4 at M >= 8 */
    }
    /* quantized routes of the warp-row kernel chosen at M = 1 by shape:
     * K > 4096 at 1024 < N <= 4096 and N = 4096, K = 4096 (q8_0 1 row per
     * warp, q4_0 2), tall matrices (64-block chunks); batched rows still
     * equal batch-1 rows (their order does not depend on rows or chunk) */
    for (size_t d = 3; d < 5; d++) {
        check_shape(ref, cu, dts[d], 1, 1100, 4128, true, 1400 + d);
        check_shape(ref, cu, dts[d], 5, 1100, 4128, false, 1410 + d);
        check_shape(ref, cu, dts[d], 1, 4096, 4096, false, 1420 + d);
        check_shape(ref, cu, dts[d], 3, 16400, 1024, true, 1430 + d);
        /* batch 1 in the common layout (16-byte rows, whole chunks:
         * k_gemv_quant_rows_full) by the default routes, tall with 64-block
         * chunks (a last row group of 1 of 2 rows) and long rows */
        check_shape(ref, cu, dts[d], 1, 12291, 2048, true, 1440 + d);
        check_shape(ref, cu, dts[d], 1, 1100, 8192, false, 1450 + d);
        /* every rows x chunk choice: whole chunks with partial row groups
         * (4099 rows), then 129 blocks (the general kernel) */
        check_batch1_choices(cu, dts[d], 4099, 4096, 1460 + d);
        check_batch1_choices(cu, dts[d], 1101, 4128, 1470 + d);
        /* one chunk a row (the cp.async ring's prologue past the end), 11
         * (N > 1024: rows0's reference takes the warp-row kernels too) */
        check_batch1_choices(cu, dts[d], 1030, 1024, 1480 + d);
        check_batch1_choices(cu, dts[d], 1100, 11264, 1490 + d);
    }
    const char *b = getenv("XSWARM_GEMV_BENCH");
    if (b && strcmp(b, "0")) bench(cu);
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_gemv");
}
