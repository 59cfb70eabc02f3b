/*
 * cuda_gemv_rows.cuh — y = x . w^T (+ bias) for f32/f16/bf16 weights with
 * M = 1..many rows of x, each weight read from DRAM once per call.
 * Included by cuda_matmul.cu only.
 *
 * Layout of the work: a warp owns R weight rows and MT rows of x (a
 * register tile of R x MT accumulators per lane). Lane L walks k = 8L +
 * 256i (one 16-byte weight load per row per step), so every x value it
 * loads serves R weight rows and every weight serves MT x rows. For M > MT
 * the grid's x dimension (the FAST one, so the blocks that share weight
 * rows run at the same time and meet in L2) takes the x-row tiles: DRAM
 * sees each weight once, L2 serves the other tiles.
 *
 * Numerics do not depend on M, R or MT: output (m, n) is, for every
 * configuration, the f32 fmaf chain of lane L over its k's in increasing
 * order (x * w, w dequantized exactly as ref), then the same xor butterfly
 * over the 32 lanes. So a batched step gives each session bit for bit the
 * batch-1 result, and the previous one-row kernel's results are unchanged.
 * Requires K % 32 == 0 (in fact % 8), x rows contiguous and 16-byte
 * aligned, weight rows 16-byte aligned.
 */
#pragma once
#include "backend/cuda/cuda_internal.h"

#define GV_WARPS 4

/* Eight consecutive weights of a float row from one 16-byte load (f16/bf16)
 * or two (f32). `row` is 16-byte aligned, c a multiple of 8. */
template <int DT>
__device__ static inline void gv_load8(const unsigned char *row, int64_t c, float wv[8]) {
    if (DT == XS_F32) {
        const float4 a = __ldg((const float4 *)(row + c * 4)), b = __ldg((const float4 *)(row + c * 4 + 16));
        wv[0] = a.x; wv[1] = a.y; wv[2] = a.z; wv[3] = a.w;
        wv[4] = b.x; wv[5] = b.y; wv[6] = b.z; wv[7] = b.w;
    } else {
        const uint4 u = __ldg((const uint4 *)(row + c * 2));
        const unsigned int p[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (DT == XS_BF16) {
                wv[2 * i] = __uint_as_float(p[i] << 16);
                wv[2 * i + 1] = __uint_as_float(p[i] & 0xffff0000u);
            } else {
                wv[2 * i] = __half2float(__ushort_as_half((unsigned short)(p[i] & 0xffffu)));
                wv[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(p[i] >> 16)));
            }
        }
    }
}

template <int DT, int R, int MT>
__global__ void __launch_bounds__(32 * GV_WARPS)
k_gemv_rows(float *y, const float *x, const unsigned char *w, size_t row_bytes,
            const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n0 = ((int64_t)blockIdx.y * GV_WARPS + warp) * R;
    const int64_t m0 = (int64_t)blockIdx.x * MT;
    if (n0 >= N || m0 >= M) return;
    const int rt = (int)(N - n0 < R ? N - n0 : R);
    const int mt = (int)(M - m0 < MT ? M - m0 : MT);
    const unsigned char *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = w + (size_t)(n0 + (r < rt ? r : 0)) * row_bytes;
    const float *xr = x + m0 * K;
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < MT; j++) acc[r][j] = 0.0f;
    /* unrolled so that several 16-byte loads per row are in flight before the
     * first use (small R x MT tiles have registers to spare): narrow matrices
     * have few warps, and their rows' round trips would otherwise serialize */
    constexpr int U = R * MT <= 2 ? 8 : R * MT <= 8 ? 4 : 2;
#pragma unroll U
    for (int64_t c = (int64_t)lane * 8; c < K; c += 256) {
        float wv[R][8];
#pragma unroll
        for (int r = 0; r < R; r++) gv_load8<DT>(wr[r], c, wv[r]);
#pragma unroll
        for (int j = 0; j < MT; j++) {
            if (j >= mt) break;
            const float4 *xv = (const float4 *)(xr + j * K + c);
            const float4 a = __ldg(xv), b = __ldg(xv + 1);
#pragma unroll
            for (int r = 0; r < R; r++) {
                float s = acc[r][j];
                s = fmaf(a.x, wv[r][0], s);
                s = fmaf(a.y, wv[r][1], s);
                s = fmaf(a.z, wv[r][2], s);
                s = fmaf(a.w, wv[r][3], s);
                s = fmaf(b.x, wv[r][4], s);
                s = fmaf(b.y, wv[r][5], s);
                s = fmaf(b.z, wv[r][6], s);
                s = fmaf(b.w, wv[r][7], s);
                acc[r][j] = s;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < MT; j++)
            for (int o = 16; o > 0; o >>= 1) acc[r][j] += __shfl_xor_sync(0xffffffffu, acc[r][j], o);
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (r >= rt) break;
            const float bv = bias ? bias[n0 + r] : 0.0f;
#pragma unroll
            for (int j = 0; j < MT; j++) {
                if (j >= mt) break;
                y[(m0 + j) * N + n0 + r] = bias ? acc[r][j] + bv : acc[r][j];
            }
        }
    }
}

/*
 * k_gemv_split — narrow float matrices (N <= 4096: the depformer's 1024-
 * and 2048-row sets, the temporal wo / ff_out): one weight row per block of
 * GS_WARPS warps, the row's k range interleaved over all 128 threads, so
 * four times the warps of k_gemv_rows are in flight and each walks a
 * quarter of the row (the one-warp-per-row kernels were latency-bound
 * here: 7-10 us for a 1024 x 2816 bf16 matrix whose floor is 1.3 us).
 * Order per output: thread t sums k = 8t + 1024i in increasing i, each
 * warp reduces by the xor butterfly, then warps 0..3 are added in order.
 * It depends on N and K only (the dispatcher picks this kernel by shape,
 * never by M), so batched rows still equal batch-1 rows bit for bit.
 */
#define GS_WARPS 4

template <int DT, int MT>
__global__ void __launch_bounds__(32 * GS_WARPS)
k_gemv_split(float *y, const float *x, const unsigned char *w, size_t row_bytes,
             const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    __shared__ float part[GS_WARPS][MT];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n = blockIdx.y;
    const int64_t m0 = (int64_t)blockIdx.x * MT;
    const int mt = (int)(M - m0 < MT ? M - m0 : MT);
    const unsigned char *wr = w + (size_t)n * row_bytes;
    const float *xr = x + m0 * K;
    float acc[MT];
#pragma unroll
    for (int j = 0; j < MT; j++) acc[j] = 0.0f;
    constexpr int U = MT <= 2 ? 4 : 2;
#pragma unroll U
    for (int64_t c = (int64_t)threadIdx.x * 8; c < K; c += 8 * 32 * GS_WARPS) {
        float wv[8];
        gv_load8<DT>(wr, c, wv);
#pragma unroll
        for (int j = 0; j < MT; j++) {
            if (j >= mt) break;
            const float4 *xv = (const float4 *)(xr + j * K + c);
            const float4 a = __ldg(xv), b = __ldg(xv + 1);
            float s = acc[j];
            s = fmaf(a.x, wv[0], s);
            s = fmaf(a.y, wv[1], s);
            s = fmaf(a.z, wv[2], s);
            s = fmaf(a.w, wv[3], s);
            s = fmaf(b.x, wv[4], s);
            s = fmaf(b.y, wv[5], s);
            s = fmaf(b.z, wv[6], s);
            s = fmaf(b.w, wv[7], s);
            acc[j] = s;
        }
    }
#pragma unroll
    for (int j = 0; j < MT; j++) {
        for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
        if (lane == 0) part[warp][j] = acc[j];
    }
    __syncthreads();
    if (threadIdx.x < mt) {
        const int j = threadIdx.x;
        float s = part[0][j];
#pragma unroll
        for (int q = 1; q < GS_WARPS; q++) s += part[q][j];
        y[(m0 + j) * N + n] = bias ? s + bias[n] : s;
    }
}
