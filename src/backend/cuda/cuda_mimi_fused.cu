/*
 * cuda_mimi_fused.cu — Mimi's fused ops (backend.h): matmul_cat (the q, k
 * and v projections of a transformer layer in ONE launch), conv_input (a
 * streaming conv's [context | elu(input)] and its next context in one) and
 * overlap_add (a transposed conv's output blocks and carried tail in one).
 *
 * Why: a batch-1 Mimi frame is ~490 kernels, each a few microseconds of
 * launch and drain even in a CUDA graph; the three 512 x 512 projections
 * of a transformer layer are row blocks of one in_proj matrix
 * (mimi_weights.c), read by the same x.
 *
 * Same bits: cu_matmul (cuda_matmul.cu) takes k_gemv_split
 * (cuda_gemv_rows.cuh) for each of them — f32 rows that the sgemm kernels
 * do not take (sg_weight_rule: N < 2K), N <= 4096, the wide-load
 * conditions, no XSWARM_CUDA_GEMV=old / XSWARM_CUDA_GEMV_R override — and
 * that kernel computes each weight row in its own block with an order that
 * depends on K only. So ONE k_gemv_split over the adjacent row blocks, with
 * N = the sum, writes each block exactly what the separate launches write,
 * side by side in y. Where any of those conditions fails, the blocks run
 * as the composition (cu_matmul into scratch, then a copy). This test
 * restates cu_matmul's dispatch: a change there must be mirrored here
 * (test_cuda_mimi_fused compares the two paths bit for bit).
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_gemv_rows.cuh"
#include "backend/cuda/cuda_sgemm.cuh"

/* The env overrides that move cu_matmul off k_gemv_split (read once, as
 * cuda_matmul.cu reads them). */
static bool cat_env_default(void) {
    static int ok = -1; /* a benign race sets the same value */
    if (ok < 0) {
        const char *g = getenv("XSWARM_CUDA_GEMV");
        const char *r = getenv("XSWARM_CUDA_GEMV_R");
        const int rv = r ? atoi(r) : 0;
        ok = !(g && (!strcmp(g, "old") || !strcmp(g, "mma"))) && rv != 1 && rv != 2 && rv != 4;
    }
    return ok != 0;
}

/* Whether cu_matmul(x, w_i) takes k_gemv_split<XS_F32> for every block and
 * the blocks lie back to back in memory. */
static bool cat_one_launch(const cu_ctx *c, const xs_tensor *x, int count,
                           const xs_tensor *const *ws, int64_t k) {
    if (!cat_env_default() || c->matmul_plain || k % 32 || !xs_tensor_is_contiguous(x) ||
        (uintptr_t)x->data % 16)
        return false;
    const size_t rb = (size_t)k * sizeof(float);
    const unsigned char *next = (const unsigned char *)ws[0]->data;
    for (int i = 0; i < count; i++) {
        const xs_tensor *w = ws[i];
        const int64_t n = w->shape[0];
        if (w->dtype != XS_F32 || !xs_tensor_is_contiguous(w) || (uintptr_t)w->data % 16 ||
            (const unsigned char *)w->data != next || n > 4096 ||
            (cu_sgemm_on() && cu_sgemm_takes(n, k)))
            return false;
        next += (size_t)n * rb;
    }
    return true;
}

xs_status cu_matmul_cat(xs_backend *be, xs_tensor *y, const xs_tensor *x, int count,
                        const xs_tensor *const *ws, xs_tensor *scratch) {
    const int64_t m = x->shape[0], k = x->shape[1];
    int64_t ntot = 0;
    for (int i = 0; i < count; i++) ntot += ws[i]->shape[0];
    if (!m || !ntot) return XS_OK;
    cu_ctx *c = cu_ctx_of(be);
    if (k > 0 && cat_one_launch(c, x, count, ws, k) && cu_blocks(ntot, 4) <= 65535u &&
        (m + 7) / 8 <= 2147483647LL) {
        /* launch_gemv's split branch, with N = ntot */
        const unsigned gx = (unsigned)(m == 1 ? m : m <= 4 ? (m + 3) / 4 : (m + 7) / 8);
        const dim3 grid(gx, (unsigned)ntot);
        float *yp = (float *)y->data;
        const float *xp = (const float *)x->data;
        const unsigned char *wp = (const unsigned char *)ws[0]->data;
        const size_t rb = (size_t)k * sizeof(float);
        if (m == 1)
            k_gemv_split<XS_F32, 1><<<grid, 32 * GS_WARPS, 0, c->stream>>>(yp, xp, wp, rb, NULL, m, ntot, k);
        else if (m <= 4)
            k_gemv_split<XS_F32, 4><<<grid, 32 * GS_WARPS, 0, c->stream>>>(yp, xp, wp, rb, NULL, m, ntot, k);
        else
            k_gemv_split<XS_F32, 8><<<grid, 32 * GS_WARPS, 0, c->stream>>>(yp, xp, wp, rb, NULL, m, ntot, k);
        return cu_check_launch("matmul_cat");
    }
    int64_t off = 0;
    for (int i = 0; i < count; i++) {
        const int64_t n = ws[i]->shape[0];
        xs_tensor part = xs_tensor_2d(XS_F32, scratch->data, m, n);
        xs_tensor blk = xs_tensor_2d(XS_F32, (float *)y->data + off, m, n);
        blk.stride[0] = ntot;
        XS_TRY(cu_matmul(be, &part, x, ws[i], NULL));
        XS_TRY(cu_copy(be, &blk, &part));
        off += n;
    }
    return XS_OK;
}

/* ---- conv_input (backend.h): a streaming conv's [context | input] ---------------
 * mimi_conv_run (mimi_seanet.c) assembled xin = [ctx | act(x)] with an elu
 * and two copies and saved the next context with a third: four launches
 * for a few KB. Here one thread per xin element: column j < P copies the
 * old context value and, when P <= T, writes the new one in its place (the
 * same thread reads then writes that element, so no other thread races on
 * it; the new context lies wholly in act(x)); column j >= P is act(x). For
 * P > T the new context overlaps the old one and a copy follows. act is
 * the elu op's formula (cuda_elementwise.cu: double, rounded once), so the
 * bits are those of the composition. */
__device__ __forceinline__ float ci_act(float xv, bool elu, float alpha) {
    if (!elu) return xv;
    const double v = xv;
    return (float)(v > 0.0 ? v : (double)alpha * expm1(v));
}

__global__ void k_conv_input(float *xin, float *ctx, int64_t cs0, int64_t cs1, const float *x,
                             int64_t xs0, int64_t xs1, int64_t C, int64_t P, int64_t T, bool elu,
                             float alpha, bool keep) {
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t W = P + T;
    if (i >= C * W) return;
    const int64_t c = i / W, j = i - c * W;
    if (j < P) {
        float *cp = ctx + c * cs0 + j * cs1;
        xin[i] = *cp;
        if (keep) *cp = ci_act(x[c * xs0 + (T - P + j) * xs1], elu, alpha);
    } else {
        xin[i] = ci_act(x[c * xs0 + (j - P) * xs1], elu, alpha);
    }
}

xs_status cu_conv_input(xs_backend *be, xs_tensor *xin, xs_tensor *ctx, const xs_tensor *x,
                        bool elu, float alpha) {
    const int64_t C = x->shape[0], T = x->shape[1], P = ctx->shape[1];
    if (!C) return XS_OK;
    const bool keep = P <= T;
    const int64_t n = C * (P + T);
    k_conv_input<<<cu_blocks(n, 256), 256, 0, cu_ctx_of(be)->stream>>>(
        (float *)xin->data, (float *)ctx->data, ctx->stride[0], ctx->stride[1],
        (const float *)x->data, x->stride[0], x->stride[1], C, P, T, elu, alpha, keep);
    XS_TRY(cu_check_launch("conv_input"));
    if (keep) return XS_OK;
    xs_tensor last = xs_tensor_slice(xin, 1, T, P);
    return cu_copy(be, ctx, &last);
}

/* ---- overlap_add (backend.h): a K = 2S transposed conv's output blocks ----------
 * convtr_matmul (mimi_seanet.c) took three copies, an add and a fourth copy
 * for the tail; here one thread per output (c, t, s) adds its two taps as
 * the add op does ((float)((double)a + b)), and the threads of t = 0,
 * which alone read the old tail, each replace their own tail element. */
__global__ void k_overlap_add(float *y, const float *col, float *tail, int64_t ts0, int64_t ts1,
                              int64_t C, int64_t T, int64_t S) {
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t TS = T * S;
    if (i >= C * TS) return;
    const int64_t c = i / TS, r = i - c * TS, t = r / S, s = r - t * S;
    const int64_t R = C * 2 * S, tap = c * 2 * S + s;
    const double a = col[t * R + tap];
    if (t == 0) {
        float *tp = tail + c * ts0 + s * ts1;
        const double b = *tp;
        y[i] = (float)(a + b);
        *tp = col[(T - 1) * R + tap + S];
    } else {
        y[i] = (float)(a + (double)col[(t - 1) * R + tap + S]);
    }
}

xs_status cu_overlap_add(xs_backend *be, xs_tensor *y, const xs_tensor *col, xs_tensor *tail) {
    const int64_t C = tail->shape[0], S = tail->shape[1], T = col->shape[0];
    const int64_t n = C * T * S;
    if (!n) return XS_OK;
    k_overlap_add<<<cu_blocks(n, 256), 256, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)col->data, (float *)tail->data, tail->stride[0],
        tail->stride[1], C, T, S);
    return cu_check_launch("overlap_add");
}
