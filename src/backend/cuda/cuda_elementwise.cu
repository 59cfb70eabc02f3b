/*
 * cuda_elementwise.cu — elu, gelu, scale, silu_mul, add, mul, copy, fill.
 * Values are computed in double and rounded once, like ref, with explicit
 * _rn intrinsics where a fused multiply-add would change the double result
 * (scale: v*s + b). Every thread reads its x element before writing its y
 * element, so y may alias x.
 */
#include <math.h>

#include "backend/cuda/cuda_internal.h"

#define EW_THREADS 256

enum { EW_ELU, EW_GELU, EW_SCALE };

template <int OP>
__global__ void k_unary(float *y, const float *x, cu_view xv, int64_t n, bool xc, float p0,
                        float p1) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const double v = x[xc ? i : cu_elem_off(xv, i)];
    double r;
    if (OP == EW_ELU)
        r = v > 0.0 ? v : (double)p0 * expm1(v);
    else if (OP == EW_GELU)
        r = 0.5 * v * (1.0 + erf(__ddiv_rn(v, sqrt(2.0))));
    else
        r = __dadd_rn(__dmul_rn(v, (double)p0), (double)p1);
    y[i] = (float)r;
}

template <int OP>
static xs_status unary(xs_backend *be, xs_tensor *y, const xs_tensor *x, float p0, float p1,
                       const char *what) {
    const int64_t n = xs_tensor_numel(x);
    if (!n) return XS_OK;
    k_unary<OP><<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), n, xs_tensor_is_contiguous(x),
        p0, p1);
    return cu_check_launch(what);
}

xs_status cu_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha) {
    return unary<EW_ELU>(be, y, x, alpha, 0.0f, "elu");
}
xs_status cu_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    return unary<EW_GELU>(be, y, x, 0.0f, 0.0f, "gelu");
}
xs_status cu_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b) {
    return unary<EW_SCALE>(be, y, x, s, b, "scale");
}

__global__ void k_silu_mul(float *y, const float *x, cu_view xv, int64_t m, int64_t h) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m * h) return;
    const int64_t r = i / h, c = i % h;
    const int64_t xo = cu_row_off(xv, r), xs = cu_inner_stride(xv);
    const double g = x[xo + c * xs], u = x[xo + (h + c) * xs];
    y[i] = (float)(g / (1.0 + exp(-g)) * u);
}

xs_status cu_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const int64_t m = cu_rows(x), h = cu_inner(y);
    if (!m || !h) return XS_OK;
    k_silu_mul<<<cu_blocks(m * h, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), m, h);
    return cu_check_launch("silu_mul");
}

/* b has a's shape (bcast false) or is one row [d] broadcast over a's rows. */
template <bool MUL>
__global__ void k_binary(float *y, const float *a, cu_view av, bool ac, const float *b,
                         cu_view bv, bool bc, bool bcast, int64_t n, int64_t d) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const double x = a[ac ? i : cu_elem_off(av, i)];
    const double z = b[bcast ? (i % d) * bv.stride[0] : bc ? i : cu_elem_off(bv, i)];
    y[i] = (float)(MUL ? x * z : x + z);
}

template <bool MUL>
static xs_status binary(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b,
                        const char *what) {
    const int64_t n = xs_tensor_numel(a);
    if (!n) return XS_OK;
    k_binary<MUL><<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)a->data, cu_view_of(a), xs_tensor_is_contiguous(a),
        (const float *)b->data, cu_view_of(b), xs_tensor_is_contiguous(b),
        !xs_tensor_same_shape(a, b), n, cu_inner(a));
    return cu_check_launch(what);
}

xs_status cu_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    return binary<false>(be, y, a, b, "add");
}
xs_status cu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    return binary<true>(be, y, a, b, "mul");
}

/* f32 and i32 are both 4 bytes: copy bits. */
__global__ void k_copy(uint32_t *y, cu_view yv, bool yc, const uint32_t *x, cu_view xv, bool xc,
                       int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[yc ? i : cu_elem_off(yv, i)] = x[xc ? i : cu_elem_off(xv, i)];
}

xs_status cu_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const int64_t n = xs_tensor_numel(x);
    if (!n) return XS_OK;
    k_copy<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (uint32_t *)y->data, cu_view_of(y), xs_tensor_is_contiguous(y),
        (const uint32_t *)x->data, cu_view_of(x), xs_tensor_is_contiguous(x), n);
    return cu_check_launch("copy");
}

__global__ void k_fill(float *y, cu_view yv, bool yc, int64_t n, float value) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[yc ? i : cu_elem_off(yv, i)] = value;
}

xs_status cu_fill(xs_backend *be, xs_tensor *y, float value) {
    const int64_t n = xs_tensor_numel(y);
    if (!n) return XS_OK;
    k_fill<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, cu_view_of(y), xs_tensor_is_contiguous(y), n, value);
    return cu_check_launch("fill");
}
