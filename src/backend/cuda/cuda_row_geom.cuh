/*
 * cuda_row_geom.cuh — the rows of a strided view without a per-thread stack
 * frame (cuda_norm.cu, cuda_kv_store.cu, cuda_sample.cu).
 *
 * Kernels that take a cu_view by value and call cu_row_off index its arrays
 * in a loop, so nvcc copies the view (72 bytes; 144 for two) to a stack frame
 * in local memory for every thread (ptxas -v), and cu_row_off walks the
 * leading dims with 64-bit divisions. cu_rowg is the same view seen as rows:
 * the host merges the leading dims that walk as one and drops size-1 dims
 * (cuda_elementwise.cu's collapse, for the leading dims only), so a kernel
 * splits a row index with at most a few 32-bit divisions (none for the usual
 * one-dim or contiguous case) and reads its fields at constant indices (an
 * unrolled loop): no stack. Same row offsets, so the same elements and the
 * same arithmetic: which geometry a kernel takes changes timing only.
 *
 * The kernels are templates over the row type: cu_view (the old path) or
 * cu_rowg; cu_row_at / cu_inner_at pick the matching offset code.
 * XSWARM_CUDA_EW=old (the element-wise kernels' A/B switch) selects cu_view
 * here too, XSWARM_CUDA_ROWG=old here only; so does a view whose row count
 * does not fit 31 bits.
 */
#ifndef XS_CUDA_ROW_GEOM_CUH
#define XS_CUDA_ROW_GEOM_CUH

#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define CU_ROWG_ND (XS_MAX_DIMS - 1) /* leading dims */

typedef struct cu_rowg {
    int nd;                      /* collapsed leading dims, innermost FIRST (>= 1) */
    unsigned shape[CU_ROWG_ND];
    int64_t st[CU_ROWG_ND];
    int64_t inner;               /* stride of the innermost dim */
} cu_rowg;

/* XSWARM_CUDA_EW=old or XSWARM_CUDA_ROWG=old (this file's kernels only; read
 * once per file): the cu_view kernels (A/B). */
static inline bool cu_rowg_off_switch(void) {
    static int old = -1; /* a benign race sets the same value */
    if (old < 0) {
        const char *e = getenv("XSWARM_CUDA_EW"), *r = getenv("XSWARM_CUDA_ROWG");
        old = (e && !strcmp(e, "old")) || (r && !strcmp(r, "old"));
    }
    return old != 0;
}

/* Rows of t (leading dims flattened, as cu_rows counts them) as a cu_rowg;
 * false: use the cu_view kernels. */
static inline bool cu_rowg_of(const xs_tensor *t, cu_rowg *g) {
    if (cu_rowg_off_switch()) return false;
    if (cu_rows(t) >= ((int64_t)1 << 31)) return false;
    g->nd = 0;
    g->inner = t->ndim ? t->stride[t->ndim - 1] : 0;
    for (int d = t->ndim - 2; d >= 0; d--) { /* innermost leading dim first */
        const int64_t sz = t->shape[d];
        if (sz == 1) continue;
        if (g->nd > 0 && t->stride[d] == g->st[g->nd - 1] * (int64_t)g->shape[g->nd - 1]) {
            g->shape[g->nd - 1] = (unsigned)(g->shape[g->nd - 1] * sz);
            continue;
        }
        g->shape[g->nd] = (unsigned)sz;
        g->st[g->nd] = t->stride[d];
        g->nd++;
    }
    if (g->nd == 0) { /* one row (or none) */
        g->nd = 1;
        g->shape[0] = 1;
        g->st[0] = 0;
    }
    return true;
}

/* Offset (elements) of row r: cu_row_off for either row type. */
__device__ __forceinline__ int64_t cu_row_at(const cu_view &v, int64_t r) {
    return cu_row_off(v, r);
}
__device__ __forceinline__ int64_t cu_row_at(const cu_rowg &g, int64_t row) {
    unsigned r = (unsigned)row;
    int64_t off = 0;
#pragma unroll
    for (int d = 0; d < CU_ROWG_ND; d++) {
        if (d >= g.nd) break;
        unsigned c;
        if (d == g.nd - 1) {
            c = r; /* the outermost dim: no division */
        } else {
            const unsigned q = r / g.shape[d];
            c = r - q * g.shape[d];
            r = q;
        }
        off += (int64_t)c * g.st[d];
    }
    return off;
}
__device__ __forceinline__ int64_t cu_inner_at(const cu_view &v) { return cu_inner_stride(v); }
__device__ __forceinline__ int64_t cu_inner_at(const cu_rowg &g) { return g.inner; }

#endif
