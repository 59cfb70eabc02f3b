/*
 * cpu_matmul.c — y[M, N] = x[M, K] . w[N, K]^T (+ bias) for f32, bf16, f16,
 * q8_0 and q4_0 weights.
 *
 * Two paths, chosen by M alone (never by thread count):
 *  - M <= CPU_GEMV_MAX_M (one LM step, a streaming Mimi frame): GEMV. Each
 *    weight row is streamed from memory once and dotted with up to 4
 *    activation rows while it is in L1. The step is memory-bound (a 7B Q8_0
 *    step reads ~8 GB), so the goal is to keep every core's load pipe busy.
 *  - larger M (prompt, Mimi over many frames): weights are taken in blocks
 *    of CPU_GEMM_NB rows, dequantized to f32 when needed, and multiplied by
 *    single-threaded OpenBLAS sgemm.
 * Work is split over output columns n only (weight rows), so every output
 * value is computed by the same instructions whatever the thread count:
 * results are bit-identical for any number of threads.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/ref/ref.h"

#define CPU_GEMV_MAX_M 16
#define CPU_GEMM_NB 64

typedef struct mm_job {
    cpu_ctx *c;
    float *y;
    int64_t ys_m, ys_n; /* y[m, n] is y[m * ys_m + n * ys_n] */
    const float *x;
    int64_t ldx;
    const uint8_t *w;
    size_t w_row_bytes;
    xs_dtype wt;
    const float *bias;
    int64_t M, N, K;
} mm_job;

static void gemv_range(void *arg, int64_t n0, int64_t n1, int tid) {
    (void)tid;
    const mm_job *j = arg;
    cpu_dot_fn dot = j->c->k.dot[j->wt];
    float out[CPU_MAX_NX];
    for (int64_t n = n0; n < n1; n++) {
        const void *wrow = j->w + (size_t)n * j->w_row_bytes;
        float b = j->bias ? j->bias[n] : 0.0f;
        for (int64_t m = 0; m < j->M; m += CPU_MAX_NX) {
            int nx = j->M - m < CPU_MAX_NX ? (int)(j->M - m) : CPU_MAX_NX;
            dot(wrow, j->x + m * j->ldx, j->ldx, nx, j->K, out);
            for (int i = 0; i < nx; i++) j->y[(m + i) * j->ys_m + n * j->ys_n] = out[i] + b;
        }
    }
}

static void gemm_blocks(void *arg, int64_t b0, int64_t b1, int tid) {
    const mm_job *j = arg;
    float *tile = cpu_scratch(j->c, tid);
    for (int64_t blk = b0; blk < b1; blk++) {
        int64_t n0 = blk * CPU_GEMM_NB;
        int64_t nb = j->N - n0 < CPU_GEMM_NB ? j->N - n0 : CPU_GEMM_NB;
        const float *wf;
        if (j->wt == XS_F32) {
            wf = (const float *)(j->w + (size_t)n0 * j->w_row_bytes);
        } else {
            for (int64_t r = 0; r < nb; r++)
                j->c->k.to_f32[j->wt](j->w + (size_t)(n0 + r) * j->w_row_bytes, tile + r * j->K,
                                      j->K);
            wf = tile;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->M, (int)nb, (int)j->K, 1.0f,
                    j->x, (int)j->ldx, wf, (int)j->K, 0.0f, j->y + n0, (int)j->N);
        if (j->bias)
            for (int64_t m = 0; m < j->M; m++)
                for (int64_t i = 0; i < nb; i++) j->y[m * j->N + n0 + i] += j->bias[n0 + i];
    }
}

void cpu_gemv(cpu_ctx *c, float *y, int64_t ys_m, int64_t ys_n, const float *x, int64_t ldx,
              const void *w, xs_dtype wt, const float *bias, int64_t M, int64_t N, int64_t K) {
    mm_job j = {.c = c, .y = y, .ys_m = ys_m, .ys_n = ys_n, .x = x, .ldx = ldx, .w = w,
                .w_row_bytes = xs_dtype_row_bytes(wt, K), .wt = wt, .bias = bias,
                .M = M, .N = N, .K = K};
    xs_threadpool_for(c->pool, N, cpu_grain((double)K * (double)M), gemv_range, &j);
}

xs_status cpu_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias) {
    cpu_ctx *c = cpu_ctx_of(be);
    if (!c->k.dot[w->dtype] || w->ndim != 2 || !xs_tensor_is_contiguous(w) ||
        (bias && !xs_tensor_is_contiguous(bias)) || !xs_tensor_is_contiguous(y))
        return ref_matmul(be, y, x, w, bias);
    const int64_t N = w->shape[0], K = w->shape[1];
    if (xs_dtype_is_quantized(w->dtype) && K % XS_QK) return ref_matmul(be, y, x, w, bias);
    const int64_t M = K > 0 ? xs_tensor_numel(x) / K : 0;
    if (M == 0 || N == 0) return XS_OK;

    /* Rows of x: a 2-D view with unit inner stride is used in place (a
     * sliced x, e.g. one head or every other frame); anything else is
     * gathered into a contiguous copy first. */
    float *owned = NULL;
    const float *xd;
    int64_t ldx;
    if (x->ndim == 2 && x->stride[1] == 1 && x->stride[0] >= K) {
        xd = x->data;
        ldx = x->stride[0];
    } else {
        xd = cpu_contig_f32(x, &owned);
        if (!xd) return xs_error(XS_ERR_NOMEM, "cpu matmul: out of memory copying x");
        ldx = K;
    }
    mm_job j = {.c = c,
                .y = y->data,
                .ys_m = N,
                .ys_n = 1,
                .x = xd,
                .ldx = ldx,
                .w = w->data,
                .w_row_bytes = xs_dtype_row_bytes(w->dtype, K),
                .wt = w->dtype,
                .bias = bias ? bias->data : NULL,
                .M = M,
                .N = N,
                .K = K};
    xs_status rc = XS_OK;
    if (M <= CPU_GEMV_MAX_M) {
        xs_threadpool_for(c->pool, N, cpu_grain((double)K * (double)M), gemv_range, &j);
    } else {
        if (w->dtype != XS_F32) rc = cpu_scratch_reserve(c, (size_t)CPU_GEMM_NB * (size_t)K);
        if (rc == XS_OK)
            xs_threadpool_for(c->pool, (N + CPU_GEMM_NB - 1) / CPU_GEMM_NB,
                              cpu_grain((double)CPU_GEMM_NB * (double)K * (double)M), gemm_blocks,
                              &j);
    }
    free(owned);
    return rc;
}
