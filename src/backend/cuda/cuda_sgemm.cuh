/*
 * cuda_sgemm.cuh — the f32-weight matmul (cuda_sgemm.cu) that cu_matmul
 * takes for XS_F32 weights at EVERY M (Mimi's convs-as-matmul, transposed
 * convs, transformer and RVQ): a shared-memory tiled kernel for many rows,
 * a chunk-parallel kernel for few, both with one summation order per
 * output that depends on K only (see cuda_sgemm.cu), so a batched row
 * equals the batch-1 row bit for bit. Off by default (not yet verified on
 * a GPU after a fix: docs/PERF.md); XSWARM_CUDA_SGEMM=1 (read once) or
 * xs_cuda_sgemm_select turns it on for the whole process.
 */
#ifndef XS_BACKEND_CUDA_SGEMM_CUH
#define XS_BACKEND_CUDA_SGEMM_CUH

#include "backend/cuda/cuda_internal.h"

/* Whether f32 weights take cu_sgemm_matmul in this process (env + select). */
bool cu_sgemm_on(void);

/* true when cu_sgemm_matmul handles an [N, K] f32 weight (in the current
 * mode: XSWARM_CUDA_SGEMM=1 only short-row weights, =all every one):
 * decided by N and K only (never by M), so every M of one weight takes
 * the same order. */
bool cu_sgemm_takes(int64_t N, int64_t K);

/* y[M, N] = x . w^T (+ bias[N]); x rows from the view xv (x the data
 * pointer); `vec` = x rows contiguous, K % 4 == 0 and x, w 16-byte aligned
 * (the caller checks; false takes the element-wise loads, same bits). */
void cu_sgemm_matmul(cudaStream_t s, float *y, const float *x, const cu_view &xv, bool vec,
                     const float *w, const float *bias, int64_t M, int64_t N, int64_t K,
                     bool gelu = false);
/* (gelu: each output through the gelu op's formula as it is stored:
 * xs_op_matmul_gelu, cu_matmul_gelu in cuda_sgemm.cu) */

#endif
