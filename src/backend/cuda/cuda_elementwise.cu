/*
 * cuda_elementwise.cu — elu, gelu, scale, silu_mul, add, mul, copy, fill.
 * Values are computed in double and rounded once, like ref, with explicit
 * _rn intrinsics where a fused multiply-add would change the double result
 * (scale: v*s + b). Every thread reads its x element before writing its y
 * element, so y may alias x.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define EW_THREADS 256

/* ---- strided views: collapsed dims, 32-bit coordinates --------------------
 * cu_elem_off walks a view with 64-bit divisions per dim and per operand;
 * batched Mimi copies and combines [C, n, T] views of tens of MB (the
 * streams' columns side by side), where that index math, not memory, set
 * the time. Here the host first merges the dims every operand can walk as
 * one (and drops size-1 dims), then a thread splits its flat index with
 * 32-bit divisions ONCE and applies each operand's strides. Same elements,
 * same arithmetic: only the addressing changes. Used when the element count
 * and the collapsed dims fit 31 bits (else the generic kernels), for
 * contiguous operands too: they collapse to one dim (no division at all),
 * and the generic kernels' select between a flat index and cu_elem_off
 * need not be trusted to skip the 64-bit divisions. Also: the generic
 * kernels index cu_view's arrays in a loop, so nvcc copies the view to a
 * 72-144 byte stack frame per thread (ptxas -v), for every element even
 * when contiguous. XSWARM_CUDA_EW=old keeps the generic kernels (A/B). */
#define EW_ND XS_MAX_DIMS

typedef struct ew_geom {
    int nd;                  /* collapsed dims, innermost FIRST */
    unsigned shape[EW_ND];
    int64_t st[2][EW_ND];    /* strides of up to two operands */
} ew_geom;

/* XSWARM_CUDA_EW=old (read once): the generic kernels everywhere (A/B). */
static bool ew_old(void) {
    static int old = -1; /* a benign race sets the same value */
    if (old < 0) {
        const char *e = getenv("XSWARM_CUDA_EW");
        old = e && !strcmp(e, "old");
    }
    return old != 0;
}

/* Collapse the views of nops (1..2) operands of t[0]'s shape (false: use
 * the generic kernels). */
static bool ew_collapse(const xs_tensor *const *t, int nops, ew_geom *g) {
    if (ew_old()) return false;
    const int64_t n = xs_tensor_numel(t[0]);
    if (n <= 0 || n >= ((int64_t)1 << 31)) return false;
    g->nd = 0;
    for (int d = t[0]->ndim - 1; d >= 0; d--) { /* innermost first */
        const int64_t sz = t[0]->shape[d];
        if (sz == 1) continue;
        if (g->nd > 0) {
            const int j = g->nd - 1;
            bool merge = true;
            for (int o = 0; o < nops; o++)
                merge = merge && t[o]->stride[d] == g->st[o][j] * (int64_t)g->shape[j];
            if (merge) {
                g->shape[j] = (unsigned)(g->shape[j] * sz);
                continue;
            }
        }
        if (g->nd == EW_ND) return false;
        g->shape[g->nd] = (unsigned)sz;
        for (int o = 0; o < nops; o++) g->st[o][g->nd] = t[o]->stride[d];
        g->nd++;
    }
    if (g->nd == 0) { /* a single element */
        g->nd = 1;
        g->shape[0] = 1;
        for (int o = 0; o < nops; o++) g->st[o][0] = 0;
    }
    return true;
}

/* Offsets of flat index i in up to two operands. */
template <int NOPS>
__device__ __forceinline__ void ew_offsets(const ew_geom &g, unsigned i, int64_t *off) {
#pragma unroll
    for (int o = 0; o < NOPS; o++) off[o] = 0;
#pragma unroll
    for (int d = 0; d < EW_ND; d++) {
        if (d >= g.nd) break;
        unsigned c;
        if (d == g.nd - 1) {
            c = i;
        } else {
            const unsigned q = i / g.shape[d];
            c = i - q * g.shape[d];
            i = q;
        }
#pragma unroll
        for (int o = 0; o < NOPS; o++) off[o] += (int64_t)c * g.st[o][d];
    }
}

enum { EW_ELU, EW_GELU, EW_SCALE };

template <int OP>
__device__ __forceinline__ float ew_unary_op(double v, float p0, float p1) {
    double r;
    if (OP == EW_ELU)
        r = v > 0.0 ? v : (double)p0 * expm1(v);
    else if (OP == EW_GELU)
        r = 0.5 * v * (1.0 + erf(__ddiv_rn(v, sqrt(2.0))));
    else
        r = __dadd_rn(__dmul_rn(v, (double)p0), (double)p1);
    return (float)r;
}

template <int OP>
__global__ void k_unary(float *y, const float *x, cu_view xv, int64_t n, bool xc, float p0,
                        float p1) {
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[i] = ew_unary_op<OP>((double)x[xc ? i : cu_elem_off(xv, i)], p0, p1);
}

/* y contiguous (ops.c), x a strided view: the same values as k_unary */
template <int OP>
__global__ void k_unary_g(float *y, const float *x, ew_geom g, unsigned n, float p0, float p1) {
    cu_pdl_enter();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int64_t off[1];
    ew_offsets<1>(g, i, off);
    y[i] = ew_unary_op<OP>((double)x[off[0]], p0, p1);
}

template <int OP>
static xs_status unary(xs_backend *be, xs_tensor *y, const xs_tensor *x, float p0, float p1,
                       const char *what) {
    const int64_t n = xs_tensor_numel(x);
    if (!n) return XS_OK;
    ew_geom g;
    const xs_tensor *ops[1] = {x};
    if (ew_collapse(ops, 1, &g)) {
        k_unary_g<OP><<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)x->data, g, (unsigned)n, p0, p1);
        return cu_check_launch(what);
    }
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
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m * h) return;
    const int64_t r = i / h, c = i % h;
    const int64_t xo = cu_row_off(xv, r), xs = cu_inner_stride(xv);
    const double g = x[xo + c * xs], u = x[xo + (h + c) * xs];
    y[i] = (float)(g / (1.0 + exp(-g)) * u);
}

/* rows of x through a collapsed geometry of its leading dims (no stack
 * copy of the view): the same values as k_silu_mul */
__global__ void k_silu_mul_g(float *y, const float *x, ew_geom rows, int64_t xs, unsigned m,
                             unsigned h) {
    cu_pdl_enter();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= m * h) return;
    const unsigned r = i / h, c = i - r * h;
    int64_t off[1];
    ew_offsets<1>(rows, r, off);
    const double g = x[off[0] + c * xs], u = x[off[0] + (h + c) * xs];
    y[i] = (float)(g / (1.0 + exp(-g)) * u);
}

xs_status cu_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const int64_t m = cu_rows(x), h = cu_inner(y);
    if (!m || !h) return XS_OK;
    if (x->ndim >= 2 && m * h < ((int64_t)1 << 31)) {
        xs_tensor lead = *x; /* the leading dims: one "element" per row */
        lead.ndim = x->ndim - 1;
        ew_geom g;
        const xs_tensor *ops[1] = {&lead};
        if (ew_collapse(ops, 1, &g)) {
            k_silu_mul_g<<<cu_blocks(m * h, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
                (float *)y->data, (const float *)x->data, g, x->stride[x->ndim - 1], (unsigned)m,
                (unsigned)h);
            return cu_check_launch("silu_mul");
        }
    }
    k_silu_mul<<<cu_blocks(m * h, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), m, h);
    return cu_check_launch("silu_mul");
}

/* b has a's shape (bcast false) or is one row [d] broadcast over a's rows. */
template <bool MUL>
__global__ void k_binary(float *y, const float *a, cu_view av, bool ac, const float *b,
                         cu_view bv, bool bc, bool bcast, int64_t n, int64_t d) {
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const double x = a[ac ? i : cu_elem_off(av, i)];
    const double z = b[bcast ? (i % d) * bv.stride[0] : bc ? i : cu_elem_off(bv, i)];
    y[i] = (float)(MUL ? x * z : x + z);
}

/* y contiguous, a and b strided views of one shape: the same values as k_binary */
template <bool MUL>
__global__ void k_binary_g(float *y, const float *a, const float *b, ew_geom g, unsigned n) {
    cu_pdl_enter();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int64_t off[2];
    ew_offsets<2>(g, i, off);
    const double x = a[off[0]], z = b[off[1]];
    y[i] = (float)(MUL ? x * z : x + z);
}

template <bool MUL>
static xs_status binary(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b,
                        const char *what) {
    const int64_t n = xs_tensor_numel(a);
    if (!n) return XS_OK;
    ew_geom g;
    const xs_tensor *ops[2] = {a, b};
    if (xs_tensor_same_shape(a, b) && ew_collapse(ops, 2, &g)) {
        k_binary_g<MUL><<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)a->data, (const float *)b->data, g, (unsigned)n);
        return cu_check_launch(what);
    }
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
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[yc ? i : cu_elem_off(yv, i)] = x[xc ? i : cu_elem_off(xv, i)];
}

__global__ void k_copy_g(uint32_t *y, const uint32_t *x, ew_geom g, unsigned n) {
    cu_pdl_enter();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int64_t off[2];
    ew_offsets<2>(g, i, off);
    y[off[0]] = x[off[1]];
}

xs_status cu_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const int64_t n = xs_tensor_numel(x);
    if (!n) return XS_OK;
    ew_geom g;
    const xs_tensor *ops[2] = {y, x};
    if (ew_collapse(ops, 2, &g)) {
        k_copy_g<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (uint32_t *)y->data, (const uint32_t *)x->data, g, (unsigned)n);
        return cu_check_launch("copy");
    }
    k_copy<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (uint32_t *)y->data, cu_view_of(y), xs_tensor_is_contiguous(y),
        (const uint32_t *)x->data, cu_view_of(x), xs_tensor_is_contiguous(x), n);
    return cu_check_launch("copy");
}

__global__ void k_fill(float *y, cu_view yv, bool yc, int64_t n, float value) {
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[yc ? i : cu_elem_off(yv, i)] = value;
}

__global__ void k_fill_g(float *y, ew_geom g, unsigned n, float value) {
    cu_pdl_enter();
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int64_t off[1];
    ew_offsets<1>(g, i, off);
    y[off[0]] = value;
}

xs_status cu_fill(xs_backend *be, xs_tensor *y, float value) {
    const int64_t n = xs_tensor_numel(y);
    if (!n) return XS_OK;
    ew_geom g;
    const xs_tensor *ops[1] = {y};
    if (ew_collapse(ops, 1, &g)) {
        k_fill_g<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, g, (unsigned)n, value);
        return cu_check_launch("fill");
    }
    k_fill<<<cu_blocks(n, EW_THREADS), EW_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, cu_view_of(y), xs_tensor_is_contiguous(y), n, value);
    return cu_check_launch("fill");
}
