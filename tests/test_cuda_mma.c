/*
 * test_cuda_mma.c — the tensor-core matmul (src/backend/cuda/cuda_mma.cu)
 * that cu_matmul takes for bf16, q8_0 and q4_0 weights at every M:
 *  (a) against ref (nmse <= 1e-9, the parity suite's matmul tolerance):
 *      the first rows at the 7B shapes, every row at the small ones;
 *  (b) row r of an M-row call equals the 1-row call of x[r] bit for bit,
 *      M in {1, 2, 3, 8, 9, 16, 17, 24, 32, 41, 80} (M <= 8 splits x in
 *      the kernel; larger M reads it pre-split by k_mma_xsplit on the wide
 *      q8_0 / bf16 shapes: both must give the same bits);
 *  (c) rows placed anywhere in the batch (gathered, permuted, repeated)
 *      give the same bits, and so does every forced tile config (in-kernel
 *      split or pre-split) and the previous config rule (cfg -2)
 *      (xs_cuda_mma_select: the config never changes the order of a sum);
 * all of it for both K split rules (XSWARM_CUDA_MMA_KS=a|b).
 * Random weights and activations (never zeros), with and without bias.
 * XSWARM_MMA_BENCH=1 adds a timing table (previous rule, new rule, the
 * M > 8 tile configs at M = 1 / 16 / 32 / 80 for the 7B shapes);
 * XSWARM_MMA_BENCH=prof runs only four launches (12288x4096 M = 80, bf16 and
 * q8_0, previous and new rule) for a profiler. Skips (77) without a GPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "testutil.h"
#include "timing_weight.h"

#define MAXM 80
#define NCFG 13 /* tile configs of cuda_mma.cu (MMA_CFGS) */

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
    static const int ms[] = {1, 2, 3, 8, 9, 16, 17, 24, 32, 41, 80};
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
    /* (c) every tile config (and the previous rule, -2), at a few M: same bits */
    static const int mc[] = {1, 17, 80};
    for (size_t mi = 0; ok && mi < 3; mi++) {
        const int M = mc[mi];
        for (int cfg = -2; ok && cfg < NCFG; cfg++) {
            if (cfg == -1) continue;
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

/* ---- timing (XSWARM_MMA_BENCH) ---- */

/* us per call of M rows (reps calls, weights rotated over copies) */
static double time_calls(xs_backend *cu, const xs_tensor *w, int copies, const xs_tensor *x, const xs_tensor *y,
                         int M, int cfg, int reps) {
    xs_tensor xv = *x, yv = *y;
    xv.shape[0] = M;
    yv.shape[0] = M;
    xs_cuda_mma_select(true, cfg, 1);
    bool ok = xs_op_matmul(cu, &yv, &xv, &w[0], NULL) == XS_OK;
    ok = ok && xs_cuda_stall(cu, 2.0) == XS_OK && xs_cuda_timer_mark(cu, 0) == XS_OK;
    for (int r = 0; ok && r < reps; r++) ok = xs_op_matmul(cu, &yv, &xv, &w[r % copies], NULL) == XS_OK;
    double ms = 0;
    ok = ok && xs_cuda_timer_mark(cu, 1) == XS_OK && xs_cuda_timer_ms(cu, 0, 1, &ms) == XS_OK;
    return ok ? ms * 1e3 / reps : -1.0;
}

/* forced configs timed: in-kernel split 1..4, pre-split 7..12 */
#define NBC 10
static const int bcfg[NBC] = {1, 2, 3, 4, 7, 8, 9, 10, 11, 12};
static const char *bcfg_name[NBC] = {"c1", "c2", "c3", "c4", "c7", "c8", "c9", "c10", "c11", "c12"};

static void bench(xs_backend *cu, bool prof) {
    char desc[160] = "";
    xs_cuda_device_desc(cu, desc, sizeof desc);
    printf("mma bench: %s; us per call (weights rotated over >256 MB); old = previous config rule "
           "(x split in the kernel), new = current rule, cN = forced config N (7..12: x pre-split)\n", desc);
    static const int64_t shapes[][2] = {{12288, 4096}, {4096, 4096}, {22528, 4096}, {4096, 11264},
                                        {32000, 4096}, {3072, 1024}, {1024, 4096}, {5632, 1024}};
    static const xs_dtype dts[] = {XS_BF16, XS_Q8_0};
    static const int mlist[] = {1, 16, 32, 80};
    const int nshape = prof ? 1 : (int)(sizeof shapes / sizeof shapes[0]);
    if (!prof) {
        printf("%-12s %-5s %3s %8s %8s", "NxK", "dtype", "M", "old", "new");
        for (int i = 0; i < NBC; i++) printf(" %8s", bcfg_name[i]);
        printf("  old/new\n");
    }
    for (int si = 0; si < nshape; si++)
        for (int di = 0; di < 2; di++) {
            const xs_dtype dt = dts[di];
            const int64_t N = shapes[si][0], K = shapes[si][1];
            const size_t wb = xs_dtype_row_bytes(dt, K) * (size_t)N;
            int copies = prof ? 1 : (int)((256u << 20) / wb) + 1;
            if (copies > 16) copies = 16;
            void *wh = timing_weight(dt, N, K, 77 + (uint64_t)si);
            xs_tensor w[16], x = {0}, y = {0};
            memset(w, 0, sizeof w);
            bool ok = wh != NULL;
            for (int c = 0; ok && c < copies; c++) ok = upload(cu, dt, N, K, wh, &w[c]);
            free(wh);
            float *xh = malloc((size_t)(MAXM * K) * sizeof *xh);
            int64_t xs64[2] = {MAXM, K}, ys64[2] = {MAXM, N};
            ok = ok && xh && xs_tensor_alloc(cu, XS_F32, 2, xs64, &x) == XS_OK &&
                 xs_tensor_alloc(cu, XS_F32, 2, ys64, &y) == XS_OK;
            if (ok) {
                test_fill_uniform(xh, MAXM * K, 5, -1.0f, 1.0f);
                ok = xs_tensor_upload(cu, &x, xh) == XS_OK;
            }
            if (prof) {
                /* one launch per rule (the profiler replays it) */
                for (int v = 0; ok && v < 2; v++) {
                    xs_tensor xv = x, yv = y;
                    xs_cuda_mma_select(true, v ? -1 : -2, 1);
                    ok = xs_op_matmul(cu, &yv, &xv, &w[0], NULL) == XS_OK;
                }
                printf("prof %s %lldx%lld M=80: %s\n", xs_dtype_name(dt), (long long)N, (long long)K,
                       ok ? "ran" : xs_error_msg());
            }
            for (int mi = 0; !prof && ok && mi < 4; mi++) {
                const int M = mlist[mi];
                printf("%5lldx%-6lld %-5s %3d", (long long)N, (long long)K, xs_dtype_name(dt), M);
                const double told = time_calls(cu, w, copies, &x, &y, M, -2, 40);
                const double tnew = time_calls(cu, w, copies, &x, &y, M, -1, 40);
                printf(" %8.2f %8.2f", told, tnew);
                for (int i = 0; i < NBC; i++) printf(" %8.2f", time_calls(cu, w, copies, &x, &y, M, bcfg[i], 40));
                printf("  %.2fx\n", told / tnew);
            }
            if (!ok) printf("bench %lldx%lld %s: %s\n", (long long)N, (long long)K, xs_dtype_name(dt), xs_error_msg());
            for (int c = 0; c < copies; c++) xs_tensor_free(cu, &w[c]);
            xs_tensor_free(cu, &x);
            xs_tensor_free(cu, &y);
            free(xh);
        }
    xs_cuda_mma_select(true, -1, 1);
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cuda", 1, &cu) == XS_OK, "open cuda: %s", xs_error_msg());
    if (!ref || !cu) return test_summary("cuda_mma");
    const char *bm = getenv("XSWARM_MMA_BENCH");
    if (bm && !strcmp(bm, "prof")) {
        bench(cu, true);
        xs_backend_close(cu);
        xs_backend_close(ref);
        return test_summary("cuda_mma");
    }
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
    if (bm && strcmp(bm, "0")) bench(cu, false);
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_mma");
}
