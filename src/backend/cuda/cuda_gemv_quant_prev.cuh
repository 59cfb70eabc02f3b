/*
 * cuda_gemv_quant_prev.cuh — the previous q8_0 / q4_0 warp-row and split
 * GEMV kernels (registers stage the next chunk, then the warp stores it in
 * shared memory), kept under XSWARM_CUDA_GEMV=rows0 /
 * xs_cuda_gemv_quant_select(true) so one binary can time them against
 * cuda_gemv_quant.cuh's bulk-copy kernels. Same lane partition, fmaf order
 * and butterfly as those: bit-identical results. Included by cuda_matmul.cu
 * only, after cuda_gemv_quant.cuh (gq_byte_to_float, gqr_layout).
 */
#pragma once
#include "backend/cuda/cuda_gemv_quant.cuh"

/*
 * k_gemv_quant_rows_prev — the same walk as k_gemv_quant (32-block chunks staged
 * through shared memory, 8 lanes per block, 4 weights per lane), but a warp
 * owns R weight rows and MT rows of x: each x load serves R rows, each
 * decoded weight MT x rows, and x-row tiles beyond MT go to the grid's
 * fast dimension so blocks sharing weight rows meet in L2 (DRAM reads each
 * weight once). Per output the lane partition, the fmaf order and the
 * butterfly are those of k_gemv_quant, whatever M, R and MT: bit-identical
 * results for batch 1 and batched steps.
 */
template <int DT, int R, int MT, int CH>
__global__ void __launch_bounds__(32 * GQR_WARPS)
k_gemv_quant_rows_prev(float *y, const float *x, const unsigned char *w, size_t row_bytes,
                  const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    typedef gqr_layout<DT, CH> L;
    __shared__ uint4 sbuf[GQR_WARPS][R][L::per_lane * 32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n0 = ((int64_t)blockIdx.y * GQR_WARPS + warp) * R;
    const int64_t m0 = (int64_t)blockIdx.x * MT;
    if (n0 >= N || m0 >= M) return; /* whole warp leaves: only __syncwarp below */
    const int rt = (int)(N - n0 < R ? N - n0 : R);
    const int mt = (int)(M - m0 < MT ? M - m0 : MT);
    const int64_t nb = K >> 5;
    const float *xr = x + m0 * K;
    const unsigned char *wr[R];
#pragma unroll
    for (int r = 0; r < R; r++) wr[r] = w + (size_t)(n0 + (r < rt ? r : 0)) * row_bytes;
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < MT; j++) acc[r][j] = 0.0f;

    /* chunk b0 of row r: aligned 16-byte pieces [a0, a0 + np) */
    uint4 rg[R][L::per_lane];
    int lead[R];
#pragma unroll
    for (int r = 0; r < R; r++) {
        const uintptr_t s0 = (uintptr_t)wr[r];
        const int nblk = (int)(nb < CH ? nb : CH);
        const uintptr_t a0 = s0 & ~(uintptr_t)15;
        lead[r] = (int)(s0 - a0);
        const int np = nblk ? (int)((s0 + (uintptr_t)nblk * L::bs + 15 - a0) >> 4) : 0;
#pragma unroll
        for (int i = 0; i < L::per_lane; i++) {
            const int p = lane + 32 * i;
            rg[r][i] = p < np ? __ldg((const uint4 *)a0 + p) : make_uint4(0, 0, 0, 0);
        }
    }
    for (int64_t b0 = 0; b0 < nb; b0 += CH) {
        const int nblk = (int)(nb - b0 < CH ? nb - b0 : CH);
        int cur_lead[R];
#pragma unroll
        for (int r = 0; r < R; r++) {
            cur_lead[r] = lead[r];
#pragma unroll
            for (int i = 0; i < L::per_lane; i++) sbuf[warp][r][lane + 32 * i] = rg[r][i];
        }
        __syncwarp();
        if (b0 + CH < nb) { /* next chunk's loads in flight while this one is decoded */
            const int64_t left = nb - b0 - CH;
            const int nn = (int)(left < CH ? left : CH);
#pragma unroll
            for (int r = 0; r < R; r++) {
                const uintptr_t s0 = (uintptr_t)(wr[r] + (b0 + CH) * L::bs);
                const uintptr_t a0 = s0 & ~(uintptr_t)15;
                lead[r] = (int)(s0 - a0);
                const int np = (int)((s0 + (uintptr_t)nn * L::bs + 15 - a0) >> 4);
#pragma unroll
                for (int i = 0; i < L::per_lane; i++) {
                    const int p = lane + 32 * i;
                    if (p < np) rg[r][i] = __ldg((const uint4 *)a0 + p);
                }
            }
        }
        const int p = lane & 7;
#pragma unroll
        for (int g = 0; g < CH / 4; g++) {
            const int bi = 4 * g + (lane >> 3);
            if (bi >= nblk) continue;
            float wv[R][4];
#pragma unroll
            for (int r = 0; r < R; r++) {
                const unsigned char *sb = (const unsigned char *)sbuf[warp][r];
                const int off = cur_lead[r] + bi * L::bs;
                const float d = __half2float(__ushort_as_half(((const unsigned short *)sb)[off >> 1]));
                const int qoff = off + 2 + 4 * (DT == XS_Q8_0 ? p : (p & 3));
                const unsigned *sw = (const unsigned *)sb + (qoff >> 2);
                unsigned q = __funnelshift_r(sw[0], sw[1], (unsigned)(qoff & 3) * 8u);
                if (DT == XS_Q8_0) {
                    q ^= 0x80808080u;
#pragma unroll
                    for (int i = 0; i < 4; i++) wv[r][i] = __fmul_rn(d, gq_byte_to_float(q, i, 8388736.0f));
                } else {
                    q = (q >> (p >> 2) * 4) & 0x0F0F0F0Fu;
#pragma unroll
                    for (int i = 0; i < 4; i++) wv[r][i] = __fmul_rn(d, gq_byte_to_float(q, i, 8388616.0f));
                }
            }
            const float4 *xb = (const float4 *)(xr + (b0 + bi) * 32 + 4 * p);
#pragma unroll
            for (int j = 0; j < MT; j++) {
                if (j >= mt) break;
                const float4 a = __ldg(xb + (size_t)j * (K >> 2));
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float s = acc[r][j];
                    s = fmaf(a.x, wv[r][0], s);
                    s = fmaf(a.y, wv[r][1], s);
                    s = fmaf(a.z, wv[r][2], s);
                    s = fmaf(a.w, wv[r][3], s);
                    acc[r][j] = s;
                }
            }
        }
        __syncwarp();
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
 * k_gemv_quant_split_prev — narrow q8_0/q4_0 matrices (N <= 4096: the
 * depformer's sets, the temporal wo / ff_out): one weight row per block,
 * its CH-block chunks dealt round-robin to the GQR_WARPS warps (warp w
 * takes chunks w, w + 4, ...), each warp decoding as k_gemv_quant_rows
 * does; then each warp's butterfly and the warps added in order. Four
 * times the warps in flight of one-warp-per-row, each with a quarter of
 * the serial chunk round trips. Order depends on N and K only, not on M.
 */
template <int DT, int MT, int CH>
__global__ void __launch_bounds__(32 * GQR_WARPS)
k_gemv_quant_split_prev(float *y, const float *x, const unsigned char *w, size_t row_bytes,
                   const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    typedef gqr_layout<DT, CH> L;
    __shared__ uint4 sbuf[GQR_WARPS][L::per_lane * 32];
    __shared__ float part[GQR_WARPS][MT];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n = blockIdx.y;
    const int64_t m0 = (int64_t)blockIdx.x * MT;
    const int mt = (int)(M - m0 < MT ? M - m0 : MT);
    const int64_t nb = K >> 5;
    const float *xr = x + m0 * K;
    const unsigned char *wr = w + (size_t)n * row_bytes;
    const unsigned char *sb = (const unsigned char *)sbuf[warp];
    float acc[MT];
#pragma unroll
    for (int j = 0; j < MT; j++) acc[j] = 0.0f;
    uint4 rg[L::per_lane];
    int lead = 0;
    int64_t b0 = (int64_t)warp * CH;
    if (b0 < nb) {
        const uintptr_t s0 = (uintptr_t)(wr + b0 * L::bs);
        const int nblk = (int)(nb - b0 < CH ? nb - b0 : CH);
        const uintptr_t a0 = s0 & ~(uintptr_t)15;
        lead = (int)(s0 - a0);
        const int np = (int)((s0 + (uintptr_t)nblk * L::bs + 15 - a0) >> 4);
#pragma unroll
        for (int i = 0; i < L::per_lane; i++) {
            const int p = lane + 32 * i;
            rg[i] = p < np ? __ldg((const uint4 *)a0 + p) : make_uint4(0, 0, 0, 0);
        }
    }
    for (; b0 < nb; b0 += GQR_WARPS * CH) {
        const int nblk = (int)(nb - b0 < CH ? nb - b0 : CH);
        const int cur_lead = lead;
#pragma unroll
        for (int i = 0; i < L::per_lane; i++) sbuf[warp][lane + 32 * i] = rg[i];
        __syncwarp();
        const int64_t nx = b0 + GQR_WARPS * CH;
        if (nx < nb) {
            const int nn = (int)(nb - nx < CH ? nb - nx : CH);
            const uintptr_t s0 = (uintptr_t)(wr + nx * L::bs);
            const uintptr_t a0 = s0 & ~(uintptr_t)15;
            lead = (int)(s0 - a0);
            const int np = (int)((s0 + (uintptr_t)nn * L::bs + 15 - a0) >> 4);
#pragma unroll
            for (int i = 0; i < L::per_lane; i++) {
                const int p = lane + 32 * i;
                if (p < np) rg[i] = __ldg((const uint4 *)a0 + p);
            }
        }
        const int p = lane & 7;
#pragma unroll
        for (int g = 0; g < CH / 4; g++) {
            const int bi = 4 * g + (lane >> 3);
            if (bi >= nblk) continue;
            const int off = cur_lead + bi * L::bs;
            const float d = __half2float(__ushort_as_half(((const unsigned short *)sb)[off >> 1]));
            const int qoff = off + 2 + 4 * (DT == XS_Q8_0 ? p : (p & 3));
            const unsigned *sw = (const unsigned *)sb + (qoff >> 2);
            unsigned q = __funnelshift_r(sw[0], sw[1], (unsigned)(qoff & 3) * 8u);
            float wv[4];
            if (DT == XS_Q8_0) {
                q ^= 0x80808080u;
#pragma unroll
                for (int i = 0; i < 4; i++) wv[i] = __fmul_rn(d, gq_byte_to_float(q, i, 8388736.0f));
            } else {
                q = (q >> (p >> 2) * 4) & 0x0F0F0F0Fu;
#pragma unroll
                for (int i = 0; i < 4; i++) wv[i] = __fmul_rn(d, gq_byte_to_float(q, i, 8388616.0f));
            }
            const float4 *xb = (const float4 *)(xr + (b0 + bi) * 32 + 4 * p);
#pragma unroll
            for (int j = 0; j < MT; j++) {
                if (j >= mt) break;
                const float4 a = __ldg(xb + (size_t)j * (K >> 2));
                float s = acc[j];
                s = fmaf(a.x, wv[0], s);
                s = fmaf(a.y, wv[1], s);
                s = fmaf(a.z, wv[2], s);
                s = fmaf(a.w, wv[3], s);
                acc[j] = s;
            }
        }
        __syncwarp();
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
        for (int q = 1; q < GQR_WARPS; q++) s += part[q][j];
        y[(m0 + j) * N + n] = bias ? s + bias[n] : s;
    }
}
