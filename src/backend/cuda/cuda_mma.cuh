/*
 * cuda_mma.cuh — the tensor-core matmul for bf16, q8_0 and q4_0 weights
 * (cuda_mma.cu), used by cu_matmul at every M so a batched row equals the
 * batch-1 row bit for bit.
 */
#ifndef XS_BACKEND_CUDA_MMA_CUH
#define XS_BACKEND_CUDA_MMA_CUH

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

/* true when cu_mma_matmul takes this shape: dtype bf16, q8_0 or q4_0, K a
 * multiple of 32, x rows contiguous and 16-byte aligned, bf16 weights
 * 16-byte aligned, quantized ones 2-byte aligned (the caller checks x). */
bool cu_mma_takes(int dtype, const void *w, int64_t M, int64_t N, int64_t K);

struct cu_ctx;

/* y[M, N] = x[M, K] . w[N, K]^T (+ bias[N]). The sum order of each output
 * depends on (dtype, N, K, rule) only. cfg: -1 = by M, -2 = the previous
 * rule (x split inside the kernel at every M), 0..10 force a tile config
 * (timing only; never changes the bits). rule: how K is split over warps
 * (1 or 2, see mma_ks; changes the bits, the same at every M). ctx: its
 * work buffer (cu_scratch) holds x pre-split for the configs that read it
 * (7..12; during graph capture without room: their in-kernel-split twin). */
void cu_mma_matmul(struct cu_ctx *ctx, cudaStream_t s, int dtype, float *y, const float *x, const unsigned char *w,
                   size_t row_bytes, const float *bias, int64_t M, int64_t N, int64_t K, int cfg,
                   int rule);

#endif
