/*
 * test_cuda_sgemm.c — the f32-weight matmul kernels (src/backend/cuda/
 * cuda_sgemm.cu) that cu_matmul takes for XS_F32 weights at every M:
 *  (a) against ref: nmse <= 1e-9 (the parity suite's matmul tolerance);
 *  (b) against a host restatement of the kernels' one summation order
 *      (chunks of 32 k, each an fmaf chain from 0, chunk partials added in
 *      order, then the bias): bit for bit, on sampled rows;
 *  (c) every row of an M-row call equals that row's 1-row / largest-M bits
 *      for M in {1, 2, 3, 7, 64, 480, 3000} (capped by size) and every
 *      kernel choice (xs_cuda_sgemm_select 5, 2, 3, 4: by shape, few-rows
 *      only, 128- and 64-tiled; 1 where its weight rule takes the shape),
 *      contiguous and strided x, with and without bias;
 * at Mimi's matmul shapes (SEANet convs as matmuls, the decoder's
 * transposed convs, transformer, RVQ) and odd ones (K % 32 != 0, K odd,
 * K > 8192). Skips (77) without a GPU.
 *
 * `test_cuda_sgemm bench` instead prints a timing table (us per call) of
 * the GEMV kernels (mode 0) and each sgemm kernel at those shapes, at the
 * rows one session and a 40-session batched Mimi group give them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "backend/ops.h"
#include "testutil.h"

#define MAXM 3000
#define CAP_ELEMS (6 << 20) /* host/device budget per operand */

/* the order every sgemm kernel uses, restated on the host */
static float emul_row(const float *x, const float *w, int64_t K, const float *bias) {
    float tot = 0.0f;
    for (int64_t k0 = 0; k0 < K; k0 += 32) {
        float p = 0.0f;
        for (int64_t k = k0; k < K && k < k0 + 32; k++) p = fmaf(x[k], w[k], p);
        tot += p;
    }
    return bias ? tot + *bias : tot;
}

static bool upload(xs_backend *be, int64_t r, int64_t c, const float *h, xs_tensor *t) {
    int64_t shp[2] = {r, c};
    xs_status rc = r ? xs_tensor_alloc(be, XS_F32, 2, shp, t) : xs_tensor_alloc(be, XS_F32, 1, &shp[1], t);
    return (rc == XS_OK ? xs_tensor_upload(be, t, h) : rc) == XS_OK;
}

/* y[M, N] = x[M, K] . w^T; x on the host; pad > 0: x rows `pad` floats
 * apart beyond K on the device (a strided view) */
static bool run(xs_backend *be, const xs_tensor *w, const xs_tensor *b, const float *xh, int64_t M,
                int64_t N, int64_t K, int pad, float *yh) {
    xs_tensor x = {0}, y = {0};
    int64_t ys[2] = {M, N};
    bool ok = true;
    if (pad) {
        float *xp = malloc((size_t)(M * (K + pad)) * sizeof *xp);
        ok = xp != NULL;
        for (int64_t r = 0; ok && r < M; r++) {
            memcpy(xp + r * (K + pad), xh + r * K, (size_t)K * sizeof *xp);
            for (int i = 0; i < pad; i++) xp[r * (K + pad) + K + i] = 1e30f; /* must not be read */
        }
        ok = ok && upload(be, M, K + pad, xp, &x);
        free(xp);
    } else {
        ok = upload(be, M, K, xh, &x);
    }
    xs_tensor xv = ok && pad ? xs_tensor_slice(&x, 1, 0, K) : x;
    ok = ok && xs_tensor_alloc(be, XS_F32, 2, ys, &y) == XS_OK &&
         xs_op_matmul(be, &y, &xv, w, b) == XS_OK && xs_tensor_download(be, yh, &y) == XS_OK;
    xs_tensor_free(be, &x);
    xs_tensor_free(be, &y);
    return ok;
}

static int rows_differ(const float *a, const float *b, int64_t M, int64_t N) {
    int bad = 0;
    for (int64_t r = 0; r < M; r++) bad += memcmp(a + r * N, b + r * N, (size_t)N * 4) != 0;
    return bad;
}

static void check_shape(xs_backend *ref, xs_backend *cu, int64_t N, int64_t K, bool with_bias,
                        uint64_t seed) {
    static const int ms[] = {1, 2, 3, 7, 64, 480, 3000};
    int64_t mmax = MAXM;
    while (mmax > 8 && (mmax * K > CAP_ELEMS || mmax * N > CAP_ELEMS)) mmax /= 2;
    float *wh = malloc((size_t)(N * K) * sizeof *wh), *xh = malloc((size_t)(mmax * K) * sizeof *xh);
    float *bh = malloc((size_t)N * sizeof *bh), *yf = malloc((size_t)(mmax * N) * sizeof *yf);
    float *yb = malloc((size_t)(mmax * N) * sizeof *yb), *yr = malloc((size_t)(3 * N) * sizeof *yr);
    xs_tensor wc = {0}, wr = {0}, bc = {0}, br = {0};
    bool ok = wh && xh && bh && yf && yb && yr;
    CHECK(ok, "host memory");
    if (!ok) goto out;
    test_fill_uniform(wh, N * K, seed, -1.0f, 1.0f);
    test_fill_uniform(xh, mmax * K, seed + 1, -2.0f, 2.0f);
    for (int64_t i = 0; i < mmax * K; i += 7) xh[i] *= 1e-3f; /* mixed magnitudes */
    test_fill_uniform(bh, N, seed + 2, -0.5f, 0.5f);
    ok = upload(cu, N, K, wh, &wc) && upload(ref, N, K, wh, &wr) && upload(cu, 0, N, bh, &bc) &&
         upload(ref, 0, N, bh, &br);
    CHECK(ok, "upload: %s", xs_error_msg());
    if (!ok) goto out;
    const xs_tensor *bcu = with_bias ? &bc : NULL, *bref = with_bias ? &br : NULL;
    char what[96];
    snprintf(what, sizeof what, "f32 %lldx%lld%s", (long long)N, (long long)K, with_bias ? " +bias" : "");

    /* the reference bits: the few-rows kernel over all rows */
    xs_cuda_sgemm_select(2);
    ok = run(cu, &wc, bcu, xh, mmax, N, K, 0, yf);
    CHECK(ok, "%s: M=%lld: %s", what, (long long)mmax, xs_error_msg());
    if (!ok) goto out;
    /* (a) vs ref, first 3 rows */
    ok = run(ref, &wr, bref, xh, 3 < mmax ? 3 : mmax, N, K, 0, yr);
    CHECK(ok, "%s: ref: %s", what, xs_error_msg());
    if (ok) {
        const double e = test_nmse(yr, yf, (3 < mmax ? 3 : mmax) * N);
        CHECK(e <= 1e-9, "%s: nmse %.3g vs ref", what, e);
    }
    /* (b) the host restatement of the order, sampled rows and columns */
    {
        const int64_t rs[] = {0, 1, mmax / 2, mmax - 1};
        int bad = 0;
        for (int i = 0; i < 4; i++)
            for (int64_t n = 0; n < N; n += (N > 300 ? 7 : 1)) {
                const float e = emul_row(xh + rs[i] * K, wh + n * K, K, with_bias ? bh + n : NULL);
                const float g = yf[rs[i] * N + n];
                if (memcmp(&e, &g, 4)) {
                    if (!bad) fprintf(stderr, "  %s row %lld col %lld: %.9g vs host order %.9g\n", what,
                                      (long long)rs[i], (long long)n, g, e);
                    bad++;
                }
            }
        CHECK(bad == 0, "%s: %d outputs differ from the host restatement of the order", what, bad);
    }
    /* (c) every M, every kernel choice, contiguous and strided x (mode 1
     * only where its weight rule takes the shape: else the GEMV kernels) */
    static const int modes[] = {5, 2, 3, 4, 1};
    for (size_t mo = 0; mo < sizeof modes / sizeof modes[0]; mo++) {
        const int mode = modes[mo];
        if (mode == 1 && !(K <= 512 && N >= 2 * K)) continue;
        xs_cuda_sgemm_select(mode);
        for (size_t mi = 0; ok && mi < sizeof ms / sizeof ms[0]; mi++) {
            const int64_t M = ms[mi];
            if (M > mmax) continue;
            ok = run(cu, &wc, bcu, xh, M, N, K, 0, yb);
            const int bad = ok ? rows_differ(yb, yf, M, N) : -1;
            CHECK(ok && bad == 0, "%s mode %d M=%lld: %d rows differ (%s)", what, mode, (long long)M, bad,
                  ok ? "" : xs_error_msg());
            if (mode == 5 && (M == 1 || M == 7 || M == 64)) {
                ok = run(cu, &wc, bcu, xh, M, N, K, 3, yb);
                const int bs = ok ? rows_differ(yb, yf, M, N) : -1;
                CHECK(ok && bs == 0, "%s strided x M=%lld: %d rows differ", what, (long long)M, bs);
            }
        }
    }
    /* the GEMV kernels (XSWARM_CUDA_SGEMM=0) still agree with ref */
    xs_cuda_sgemm_select(0);
    ok = ok && run(cu, &wc, bcu, xh, 3 < mmax ? 3 : mmax, N, K, 0, yb);
    CHECK(ok, "%s: mode 0: %s", what, xs_error_msg());
    if (ok) {
        const double e = test_nmse(yr, yb, (3 < mmax ? 3 : mmax) * N);
        CHECK(e <= 1e-9, "%s: mode 0 nmse %.3g vs ref", what, e);
    }
    xs_cuda_sgemm_select(0);
out:
    xs_tensor_free(cu, &wc);
    xs_tensor_free(cu, &bc);
    xs_tensor_free(ref, &wr);
    xs_tensor_free(ref, &br);
    free(wh); free(xh); free(bh); free(yf); free(yb); free(yr);
}

/* Mimi's f32 matmuls: [N, K] of the weight and the rows of one session's
 * frame (a batched group of 40 sessions has 40x) */
static const struct { int64_t n, k, rows; const char *what; } mimi_shapes[] = {
    {512, 512, 2, "transformer q/k/v/o"},   {2048, 512, 2, "transformer lin1"},
    {512, 2048, 2, "transformer lin2"},     {2048, 256, 1, "rvq centroids"},
    {256, 512, 1, "rvq in_proj"},           {512, 256, 1, "rvq out_proj"},
    {8192, 1024, 2, "dec convtr s8"},       {3072, 512, 16, "dec convtr s6"},
    {1280, 256, 96, "dec convtr s5"},       {512, 128, 480, "dec convtr s4"},
    {256, 1536, 16, "res conv k3 512"},     {512, 256, 16, "res conv k1 256"},
    {1024, 8192, 2, "enc down s8"},         {512, 3072, 2, "enc final k3"},
    {512, 2048, 1, "enc down 12.5Hz"},      {1024, 3584, 2, "dec conv0 k7"},
};

static double time_us(xs_backend *cu, const xs_tensor *w, const xs_tensor *b, xs_tensor *x, xs_tensor *y,
                      int mode) {
    xs_cuda_sgemm_select(mode);
    double ms = -1;
    for (int i = 0; i < 3; i++) xs_op_matmul(cu, y, x, w, b);
    const int reps = 20;
    if (xs_cuda_timer_mark(cu, 0) != XS_OK) return -1;
    for (int i = 0; i < reps; i++) xs_op_matmul(cu, y, x, w, b);
    if (xs_cuda_timer_mark(cu, 1) != XS_OK || xs_cuda_timer_ms(cu, 0, 1, &ms) != XS_OK) return -1;
    return ms * 1000.0 / reps;
}

static int bench(xs_backend *cu) {
    printf("%-20s %6s %6s %6s | %9s %9s %9s %9s %9s | %s\n", "shape", "N", "K", "M", "gemv", "small",
           "tiled128", "tiled64", "auto", "auto TFMA/s");
    for (size_t s = 0; s < sizeof mimi_shapes / sizeof mimi_shapes[0]; s++) {
        const int64_t N = mimi_shapes[s].n, K = mimi_shapes[s].k;
        float *wh = malloc((size_t)(N * K) * sizeof *wh), *bh = malloc((size_t)N * sizeof *bh);
        test_fill_uniform(wh, N * K, 11 + s, -1.0f, 1.0f);
        test_fill_uniform(bh, N, 12 + s, -1.0f, 1.0f);
        xs_tensor w = {0}, b = {0};
        if (!upload(cu, N, K, wh, &w) || !upload(cu, 0, N, bh, &b)) return 1;
        const int64_t mm[2] = {mimi_shapes[s].rows, mimi_shapes[s].rows * 40};
        for (int i = 0; i < 2; i++) {
            const int64_t M = mm[i];
            float *xh = malloc((size_t)(M * K) * sizeof *xh);
            test_fill_uniform(xh, M * K, 13 + s, -1.0f, 1.0f);
            xs_tensor x = {0}, y = {0};
            int64_t ys[2] = {M, N};
            if (!upload(cu, M, K, xh, &x) || xs_tensor_alloc(cu, XS_F32, 2, ys, &y) != XS_OK) return 1;
            double t[5];
            static const int cols[5] = {0, 2, 3, 4, 5}; /* gemv, small, tiled128, tiled64, auto */
            for (int c = 0; c < 5; c++) t[c] = time_us(cu, &w, &b, &x, &y, cols[c]);
            printf("%-20s %6lld %6lld %6lld | %9.2f %9.2f %9.2f %9.2f %9.2f | %.2f\n", mimi_shapes[s].what,
                   (long long)N, (long long)K, (long long)M, t[0], t[1], t[2], t[3], t[4],
                   (double)M * N * K / (t[4] * 1e6));
            xs_tensor_free(cu, &x);
            xs_tensor_free(cu, &y);
            free(xh);
        }
        xs_tensor_free(cu, &w);
        xs_tensor_free(cu, &b);
        free(wh);
        free(bh);
    }
    xs_cuda_sgemm_select(0);
    return 0;
}

int main(int argc, char **argv) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("cuda", 1, &cu) == XS_OK, "open cuda: %s", xs_error_msg());
    if (argc > 1 && !strcmp(argv[1], "bench")) {
        const int rc = cu ? bench(cu) : 1;
        xs_backend_close(cu);
        return rc;
    }
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref: %s", xs_error_msg());
    if (!ref || !cu) return test_summary("cuda_sgemm");
    for (size_t s = 0; s < sizeof mimi_shapes / sizeof mimi_shapes[0]; s++)
        check_shape(ref, cu, mimi_shapes[s].n, mimi_shapes[s].k, s % 2 == 0, 100 + s);
    /* odd shapes: K % 32 != 0 (vector loads), K odd (element loads), K of
     * more than 256 chunks, N not a multiple of a tile */
    static const int64_t odd[][2] = {{5, 32}, {40, 96}, {33, 100}, {7, 37}, {130, 8224}, {3, 1}, {200, 20}};
    for (size_t s = 0; s < sizeof odd / sizeof odd[0]; s++)
        check_shape(ref, cu, odd[s][0], odd[s][1], s % 2 == 1, 300 + s);
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_sgemm");
}
