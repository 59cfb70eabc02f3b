/*
 * cuda_mma.cu — y = x . w^T (+ bias) on the tensor cores (mma.sync
 * m16n8k16, bf16 x bf16 -> f32) for bf16, q8_0 and q4_0 weights, exact
 * enough to stand in for the f32 GEMV, and the same bits for a row whatever
 * the batch around it.
 *
 * Why it is exact enough: each f32 activation x is split into three bf16
 * parts h = bf16(x), m = bf16(x - h), l = bf16(x - h - m) (x - h and
 * x - h - m are exact in f32), which carry ~24 bits of x. Weights are exact
 * in bf16 (bf16 weights themselves; q8_0 / q4_0 integer quants), so every
 * product is exact and the tensor core accumulates in f32 (its adds
 * truncate rather than round): the result is an f32 dot product in another
 * summation order, nmse 3e-12..5e-11 against ref's f64 at K = 4096 (H100;
 * the parity tolerance is 1e-9). Quantized rows: each 32-block's sum of
 * q * x is its own MMA accumulation (started at zero), then
 * acc = fmaf(d, block_sum, acc). An infinite x gives NaN (inf - inf in the
 * split) where ref gives +-inf or NaN.
 *
 * Why batch == solo bit for bit: "swap AB" — weight rows are the MMA's M
 * side (16 output features), x rows its N side (8 per tile). An MMA column
 * depends only on its own x row, so the tile a row lands in and the other
 * rows beside it never change its bits. The k order (chunks of 32 values,
 * the lane permutation inside a chunk, the split of K over KS warps and
 * their fixed-order reduction) is chosen from (dtype, N, K) only; the tile
 * config (weight rows and x rows per warp, prefetch depth) is chosen from M
 * but never touches the order.
 *
 * Layout: a warp owns RW groups of 16 weight rows and NT tiles of 8 x rows;
 * the block's KS warps (threadIdx.x >> 5) take k-chunks (bf16) or 4-block
 * stages (q8_0 / q4_0) round-robin. Lane (g = lane / 4, t = lane % 4) of a
 * 32-wide chunk takes 8 k values: bf16 / q8_0 k = 8t..8t+7 (one 16-byte
 * load of a bf16 row), q4_0 k = 4t..4t+3 and 16+4t..16+4t+3 (the low and
 * high nibbles of one 4-byte word). Those 8 values fill the A fragment
 * slots {2t, 2t+1, 2t+8, 2t+9} of two k16 MMAs, and the B fragment of lane
 * (g, t) is x row g at the same 8 k values: each lane loads exactly the x
 * it feeds, no shuffles. bf16 weights stream straight into registers
 * (PF chunks in flight); quantized rows (2-byte aligned, 34 / 18-byte
 * blocks) are fetched as aligned 16-byte pieces of 4-block stages into
 * registers, staged through shared memory and decoded from there (the
 * GEMV kernels' scheme), one stage in flight while the previous decodes.
 *
 * Pre-split x (PS configs 7..12, taken by mma_pick for the wide q8_0 / bf16
 * shapes at M > 8): k_mma_xsplit writes h, m, l once per call into the
 * backend's work buffer, already in the B-fragment order (per x row and
 * chunk: [t][part][4 words], 192 bytes), and the matmul loads 3 x 16 bytes
 * per lane and tile instead of 2 x 16 bytes + the split. Same ops, same
 * bits. Why: the in-kernel split re-runs for every block of 32 weight rows
 * and was the busiest pipe (H100 ncu, 12288x4096 bf16 M = 80: ALU 40%,
 * issue slots 48% busy). With it gone the issue slots are 28% busy, but
 * the kernel waits on latency instead: the x fragments take 12 registers
 * per tile instead of 8, occupancy falls to 2 warps per scheduler, so the
 * gain is shape-dependent (docs/PERF.md, "Pre-split x").
 */
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_mma.cuh"

/* ---- fragments ---------------------------------------------------------------- */

/* two f32 -> bf16x2 (round to nearest even), lo in the low half */
__device__ static inline unsigned mma_pack(float lo, float hi) {
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
__device__ static inline float mma_lo(unsigned u) { return __uint_as_float(u << 16); }
__device__ static inline float mma_hi(unsigned u) { return __uint_as_float(u & 0xffff0000u); }

/* 8 x values -> the h, m, l B fragments: b[s][p] holds values 2p, 2p+1 */
__device__ static inline void mma_split(const float4 a, const float4 b, unsigned f[3][4]) {
    const float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
#pragma unroll
    for (int p = 0; p < 4; p++) {
        const float x0 = v[2 * p], x1 = v[2 * p + 1];
        const unsigned h = mma_pack(x0, x1);
        const float r0 = x0 - mma_lo(h), r1 = x1 - mma_hi(h);
        const unsigned m = mma_pack(r0, r1);
        f[0][p] = h;
        f[1][p] = m;
        f[2][p] = mma_pack(r0 - mma_lo(m), r1 - mma_hi(m));
    }
}

__device__ static inline void mma_16816(float c[4], unsigned a0, unsigned a1, unsigned a2,
                                        unsigned a3, unsigned b0, unsigned b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* weights: read once, keep out of L1 (x lives there) */
__device__ static inline uint4 mma_ld16(const void *p) {
    uint4 r;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
                 : "l"(p));
    return r;
}

/* bytes i, i+1 of v (int8, or 0..15 nibbles) as a bf16x2 of the integer
 * values minus `bias` (128 for q8_0 after the sign flip, 8 for q4_0) */
__device__ static inline unsigned mma_bytes2(unsigned v, int i, float minus) {
    const float f0 = __int_as_float((int)__byte_perm(v, 0x4B000000u, 0x7540u + (unsigned)i)) - minus;
    const float f1 = __int_as_float((int)__byte_perm(v, 0x4B000000u, 0x7540u + (unsigned)i + 1)) - minus;
    return mma_pack(f0, f1);
}

/* ---- the kernel ----------------------------------------------------------------- */

#define MMA_SC 4 /* quantized blocks per stage */

template <int DT> struct mma_q {
    static constexpr bool quant = DT == XS_Q8_0 || DT == XS_Q4_0;
    static constexpr int bs = DT == XS_Q8_0 ? 34 : 18;
    /* 16-byte pieces covering a stage of one row, at any even lead */
    static constexpr int np = (14 + MMA_SC * bs + 15) / 16;
};

/* LB: threads per block the registers are sized for (512: KS up to 16;
 * quantized rows 256, or 384 with PS); XPF: with NT == 1, x rides in the prefetch
 * ring (more registers); PS: x comes pre-split (k_mma_xsplit) */
template <int DT, int RW, int NT, int PF, int LB, bool XPF, bool PS>
__global__ void __launch_bounds__(mma_q<DT>::quant && !(PS && LB == 384) ? 256 : LB)
k_mma(float *y, const float *x, const unsigned *xsp, const unsigned char *w, size_t rb, const float *bias,
      int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    typedef mma_q<DT> Q;
    extern __shared__ uint4 mma_smem[];
    const int KS = blockDim.x >> 5;
    const int lane = threadIdx.x & 31, kw = threadIdx.x >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int64_t n0 = (int64_t)blockIdx.y * (16 * RW);
    const int64_t m0 = (int64_t)blockIdx.x * (8 * NT);
    const int nch = (int)(K >> 5);
    const int xo0 = DT == XS_Q4_0 ? 4 * t : 8 * t, xo1 = DT == XS_Q4_0 ? 16 + 4 * t : 8 * t + 4;

    float acc[RW][NT][4];
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) acc[r][j][e] = 0.0f;
    const float *xr[NT];
    const unsigned *xq[NT]; /* PS: this lane's pre-split words of row m, chunk 0 */
    bool xok[NT];
#pragma unroll
    for (int j = 0; j < NT; j++) {
        const int64_t m = m0 + 8 * j + g;
        xok[j] = m < M;
        xr[j] = x + (xok[j] ? m : 0) * K;
        if (PS) xq[j] = xsp + ((size_t)(xok[j] ? m : 0) * nch * 4 + t) * 12;
    }
    /* rows g and g + 8 of each group; rows past N read row N - 1 (not stored) */
    int64_t wrow[RW][2];
#pragma unroll
    for (int r = 0; r < RW; r++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int64_t n = n0 + 16 * r + g + 8 * h;
            wrow[r][h] = n < N ? n : N - 1;
        }

    /* one chunk: x fragments per tile, then every row group's MMAs; a
     * quantized chunk sums each row's block on its own, then scales it */
    /* NT == 1 (batch 1..8): x travels with the weights in the prefetch
     * (loaded chunks ahead), so no L2 round trip sits in the chain */
    constexpr bool XP = NT == 1 && XPF && !PS;
    auto xload = [&](int c, float4 (&p)[2]) {
        p[0] = p[1] = make_float4(0.f, 0.f, 0.f, 0.f);
        if (xok[0]) {
            p[0] = __ldg((const float4 *)(xr[0] + c * 32 + xo0));
            p[1] = __ldg((const float4 *)(xr[0] + c * 32 + xo1));
        }
    };
    auto chunk = [&](int c, const unsigned (&a)[RW][8], const float (&d)[RW][2], const float4 (&xp)[2]) {
        /* every tile's x first (loads issued together), then the MMAs with
         * the RW x NT accumulators interleaved: consecutive MMAs are
         * independent, so the tensor pipe stays busy. Per accumulator the
         * order is fixed: k16 step 0 (l, m, h), then step 1 (l, m, h). */
        unsigned xf[NT][3][4];
        if (PS) {
            /* the h, m, l words as k_mma_xsplit laid them out */
#pragma unroll
            for (int j = 0; j < NT; j++) {
                uint4 u[3] = {make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0)};
                if (xok[j]) {
                    const uint4 *src = (const uint4 *)(xq[j] + (size_t)c * 48);
                    u[0] = __ldg(src);
                    u[1] = __ldg(src + 1);
                    u[2] = __ldg(src + 2);
                }
#pragma unroll
                for (int sp = 0; sp < 3; sp++) {
                    xf[j][sp][0] = u[sp].x;
                    xf[j][sp][1] = u[sp].y;
                    xf[j][sp][2] = u[sp].z;
                    xf[j][sp][3] = u[sp].w;
                }
            }
        } else {
            float4 p[NT][2];
#pragma unroll
            for (int j = 0; j < NT; j++) {
                if (XP) {
                    p[j][0] = xp[0];
                    p[j][1] = xp[1];
                } else {
                    p[j][0] = p[j][1] = make_float4(0.f, 0.f, 0.f, 0.f);
                    if (xok[j]) {
                        p[j][0] = __ldg((const float4 *)(xr[j] + c * 32 + xo0));
                        p[j][1] = __ldg((const float4 *)(xr[j] + c * 32 + xo1));
                    }
                }
            }
#pragma unroll
            for (int j = 0; j < NT; j++) mma_split(p[j][0], p[j][1], xf[j]);
        }
        float bsum[Q::quant ? RW : 1][Q::quant ? NT : 1][4];
        if (Q::quant)
#pragma unroll
            for (int r = 0; r < RW; r++)
#pragma unroll
                for (int j = 0; j < NT; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) bsum[Q::quant ? r : 0][Q::quant ? j : 0][e] = 0.0f;
#pragma unroll
        for (int q = 0; q < 2; q++)
#pragma unroll
            for (int sp = 2; sp >= 0; sp--)
#pragma unroll
                for (int r = 0; r < RW; r++)
#pragma unroll
                    for (int j = 0; j < NT; j++)
                        mma_16816(Q::quant ? bsum[Q::quant ? r : 0][Q::quant ? j : 0] : acc[r][j],
                                  a[r][2 * q], a[r][4 + 2 * q], a[r][2 * q + 1], a[r][5 + 2 * q],
                                  xf[j][sp][2 * q], xf[j][sp][2 * q + 1]);
        if (Q::quant)
#pragma unroll
            for (int r = 0; r < RW; r++)
#pragma unroll
                for (int j = 0; j < NT; j++) {
                    const float *b = bsum[Q::quant ? r : 0][Q::quant ? j : 0];
                    acc[r][j][0] = fmaf(d[r][0], b[0], acc[r][j][0]);
                    acc[r][j][1] = fmaf(d[r][0], b[1], acc[r][j][1]);
                    acc[r][j][2] = fmaf(d[r][1], b[2], acc[r][j][2]);
                    acc[r][j][3] = fmaf(d[r][1], b[3], acc[r][j][3]);
                }
    };

    if (!Q::quant) {
        /* PF chunks per warp in flight, straight into registers */
        uint4 raw[PF][RW][2];
        float4 xq[PF][2];
        const float dn[RW][2] = {};
        auto load = [&](int i, int c) {
#pragma unroll
            for (int r = 0; r < RW; r++)
#pragma unroll
                for (int h = 0; h < 2; h++)
                    raw[i][r][h] = mma_ld16(w + (size_t)wrow[r][h] * rb + ((size_t)c * 32 + 8 * t) * 2);
            if (XP) xload(c, xq[i]);
        };
#pragma unroll
        for (int i = 0; i < PF; i++)
            if (kw + i * KS < nch) load(i, kw + i * KS);
        for (int c = kw; c < nch; c += PF * KS) {
#pragma unroll
            for (int i = 0; i < PF; i++) {
                const int cc = c + i * KS;
                if (cc < nch) {
                    unsigned a[RW][8];
#pragma unroll
                    for (int r = 0; r < RW; r++) {
                        a[r][0] = raw[i][r][0].x; a[r][1] = raw[i][r][0].y;
                        a[r][2] = raw[i][r][0].z; a[r][3] = raw[i][r][0].w;
                        a[r][4] = raw[i][r][1].x; a[r][5] = raw[i][r][1].y;
                        a[r][6] = raw[i][r][1].z; a[r][7] = raw[i][r][1].w;
                    }
                    float4 xc[2] = {xq[i][0], xq[i][1]};
                    if (cc + PF * KS < nch) load(i, cc + PF * KS);
                    chunk(cc, a, dn, xc);
                }
            }
        }
    } else {
        /* stage = MMA_SC blocks of each of the warp's 16 * RW rows, fetched as
         * the aligned 16-byte pieces around them (rows are 2-byte aligned) */
        constexpr int pieces = 16 * RW * Q::np, lpl = (pieces + 31) / 32;
        const int nst = (nch + MMA_SC - 1) / MMA_SC;
        uint4 raw[lpl];
        float4 xn[MMA_SC][2];
        uint4 *sw = mma_smem + (size_t)kw * pieces;
        auto load = [&](int st) {
            const int nblk = nch - st * MMA_SC < MMA_SC ? nch - st * MMA_SC : MMA_SC;
            if (XP)
#pragma unroll
                for (int bi = 0; bi < MMA_SC; bi++)
                    if (bi < nblk) xload(st * MMA_SC + bi, xn[bi]);
#pragma unroll
            for (int i = 0; i < lpl; i++) {
                const int p = lane + 32 * i;
                raw[i] = make_uint4(0, 0, 0, 0);
                if (p < pieces) {
                    const int rl = p / Q::np, j = p % Q::np;
                    const int64_t n = n0 + rl < N ? n0 + rl : N - 1;
                    const uintptr_t s0 = (uintptr_t)(w + (size_t)n * rb + (size_t)st * MMA_SC * Q::bs);
                    const uintptr_t a0 = s0 & ~(uintptr_t)15;
                    const int np = (int)((s0 - a0 + (uintptr_t)nblk * Q::bs + 15) >> 4);
                    if (j < np) raw[i] = mma_ld16((const void *)(a0 + 16 * (uintptr_t)j));
                }
            }
        };
        int st = kw;
        if (st < nst) load(st);
        for (; st < nst; st += KS) {
#pragma unroll
            for (int i = 0; i < lpl; i++)
                if (lane + 32 * i < pieces) sw[lane + 32 * i] = raw[i];
            __syncwarp();
            float4 xc[MMA_SC][2];
#pragma unroll
            for (int bi = 0; bi < MMA_SC; bi++) {
                xc[bi][0] = xn[bi][0];
                xc[bi][1] = xn[bi][1];
            }
            if (st + KS < nst) load(st + KS);
            const int nblk = nch - st * MMA_SC < MMA_SC ? nch - st * MMA_SC : MMA_SC;
            int lead[RW][2];
#pragma unroll
            for (int r = 0; r < RW; r++)
#pragma unroll
                for (int h = 0; h < 2; h++)
                    lead[r][h] = (int)((uintptr_t)(w + (size_t)wrow[r][h] * rb +
                                                   (size_t)st * MMA_SC * Q::bs) & 15);
#pragma unroll
            for (int bi = 0; bi < MMA_SC; bi++) {
                if (bi >= nblk) break;
                unsigned a[RW][8];
                float d[RW][2];
#pragma unroll
                for (int r = 0; r < RW; r++)
#pragma unroll
                    for (int h = 0; h < 2; h++) {
                        /* local row 16r + g + 8h of this warp's stage */
                        const unsigned char *sb =
                            (const unsigned char *)(sw + (16 * r + g + 8 * h) * Q::np);
                        const int off = lead[r][h] + bi * Q::bs;
                        d[r][h] = __half2float(__ushort_as_half(*(const unsigned short *)(sb + off)));
                        if (DT == XS_Q8_0) {
                            const int qo = off + 2 + 8 * t;
                            const unsigned *q = (const unsigned *)(sb + (qo & ~3));
                            const unsigned sh = (unsigned)(qo & 3) * 8u;
                            const unsigned lo = __funnelshift_r(q[0], q[1], sh) ^ 0x80808080u;
                            const unsigned hi = __funnelshift_r(q[1], q[2], sh) ^ 0x80808080u;
                            a[r][4 * h + 0] = mma_bytes2(lo, 0, 8388736.0f);
                            a[r][4 * h + 1] = mma_bytes2(lo, 2, 8388736.0f);
                            a[r][4 * h + 2] = mma_bytes2(hi, 0, 8388736.0f);
                            a[r][4 * h + 3] = mma_bytes2(hi, 2, 8388736.0f);
                        } else {
                            const int qo = off + 2 + 4 * t;
                            const unsigned *q = (const unsigned *)(sb + (qo & ~3));
                            const unsigned v = __funnelshift_r(q[0], q[1], (unsigned)(qo & 3) * 8u);
                            const unsigned lo = v & 0x0F0F0F0Fu, hi = (v >> 4) & 0x0F0F0F0Fu;
                            a[r][4 * h + 0] = mma_bytes2(lo, 0, 8388616.0f);
                            a[r][4 * h + 1] = mma_bytes2(lo, 2, 8388616.0f);
                            a[r][4 * h + 2] = mma_bytes2(hi, 0, 8388616.0f);
                            a[r][4 * h + 3] = mma_bytes2(hi, 2, 8388616.0f);
                        }
                    }
                chunk(st * MMA_SC + bi, a, d, xc[bi]);
            }
            __syncwarp();
        }
    }

    /* outputs: element e of tile j, group r is row 16r + g + 8(e >= 2),
     * x row 8j + 2t + (e & 1). KS > 1: warps' partials added in warp order
     * (rounds of 8 through shared memory), the same order at every M. */
    constexpr int per = RW * NT * 128; /* floats per warp */
    if (KS == 1) {
#pragma unroll
        for (int r = 0; r < RW; r++)
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    const int64_t n = n0 + 16 * r + g + (e >= 2 ? 8 : 0);
                    const int64_t m = m0 + 8 * j + 2 * t + (e & 1);
                    if (n < N && m < M) y[m * N + n] = bias ? acc[r][j][e] + bias[n] : acc[r][j][e];
                }
        return;
    }
    float *red = (float *)mma_smem;
    constexpr int outs = (per + 63) / 64; /* per thread, KS >= 2 */
    float sum[outs];
#pragma unroll
    for (int i = 0; i < outs; i++) sum[i] = 0.0f;
    const int nth = KS * 32;
    __syncthreads(); /* quantized staging aliases the reduction buffer */
    for (int r0 = 0; r0 < KS; r0 += 8) {
        if (kw >= r0 && kw < r0 + 8) {
            float *dst = red + (size_t)(kw - r0) * per;
#pragma unroll
            for (int r = 0; r < RW; r++)
#pragma unroll
                for (int j = 0; j < NT; j++)
#pragma unroll
                    for (int e = 0; e < 4; e++) dst[((r * NT + j) * 4 + e) * 32 + lane] = acc[r][j][e];
        }
        __syncthreads();
        const int nw = KS - r0 < 8 ? KS - r0 : 8;
#pragma unroll
        for (int i = 0; i < outs; i++) {
            const int o = (int)threadIdx.x + i * nth;
            if (o < per)
                for (int q = 0; q < nw; q++) sum[i] += red[(size_t)q * per + o];
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < outs; i++) {
        const int o = (int)threadIdx.x + i * nth;
        if (o >= per) break;
        const int l = o & 31, e = (o >> 5) & 3, rj = o >> 7;
        const int r = rj / NT, j = rj % NT;
        const int64_t n = n0 + 16 * r + (l >> 2) + (e >= 2 ? 8 : 0);
        const int64_t m = m0 + 8 * j + 2 * (l & 3) + (e & 1);
        if (n < N && m < M) y[m * N + n] = bias ? sum[i] + bias[n] : sum[i];
    }
}

/* ---- pre-split x ---------------------------------------------------------------- */

/* xs[(m * nch + c) * 48 + t * 12 + part * 4 + p] = part (h, m, l) of the x
 * pair p that lane t of chunk c feeds (k_mma's lane permutation: bf16 / q8_0
 * 8t..8t+7, q4_0 4t..4t+3 and 16+4t..16+4t+3). One thread per 4 values. */
template <bool Q4>
__global__ void k_mma_xsplit(unsigned *xs, const float *x, int64_t items) {
    cu_pdl_enter();
    const int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (it >= items) return;
    const int hf = (int)(it & 1), t = (int)((it >> 1) & 3);
    const int64_t mc = it >> 3; /* m * nch + c: rows are contiguous, K = 32 nch */
    const int off = Q4 ? (hf ? 16 + 4 * t : 4 * t) : 8 * t + 4 * hf;
    const float4 v = __ldg((const float4 *)(x + mc * 32 + off));
    const float4 z = make_float4(0.f, 0.f, 0.f, 0.f);
    unsigned f[3][4];
    mma_split(v, z, f); /* pairs 0, 1 of f: the same ops as in k_mma */
    unsigned *d = xs + mc * 48 + t * 12 + 2 * hf;
    *(uint2 *)(d + 0) = make_uint2(f[0][0], f[0][1]);
    *(uint2 *)(d + 4) = make_uint2(f[1][0], f[1][1]);
    *(uint2 *)(d + 8) = make_uint2(f[2][0], f[2][1]);
}

/* ---- dispatch ------------------------------------------------------------------- */

/* Warps splitting K. From (dtype, N, K) and the process-wide rule only:
 * it sets the summation order, so it never looks at M.
 *  rule 1 ("a", default): about one wave at batch 1 (~2048 warps of 16
 *    rows), at most 16 (8 for quantized rows: their staging buffers);
 *  rule 2 ("b"): 8 (16 for bf16 below 256 row groups): more, shorter warps
 *    (H100: 10-25% faster at M = 1 for N >= 22528, 25-35% slower at M >= 32);
 * never more than the row's chunks / stages. */
static int mma_ks(int dt, int64_t N, int64_t K, int rule) {
    const bool quant = dt == XS_Q8_0 || dt == XS_Q4_0;
    const int64_t groups = (N + 15) / 16, nch = K / 32;
    const int64_t units = quant ? (nch + MMA_SC - 1) / MMA_SC : nch;
    const int cap = quant ? 8 : 16;
    const int64_t target = rule == 1 ? 2048 : quant || groups >= 256 ? groups * 8 : groups * 16;
    int ks = 1;
    while (ks < cap && groups * ks < target && ks * 2 <= units) ks *= 2;
    return ks;
}

bool cu_mma_takes(int dt, const void *w, int64_t M, int64_t N, int64_t K) {
    if (dt != XS_BF16 && dt != XS_Q8_0 && dt != XS_Q4_0) return false;
    if (K % 32 || K <= 0 || N <= 0 || M <= 0 || K > (1LL << 30)) return false;
    if ((uintptr_t)w % (dt == XS_BF16 ? 16 : 2)) return false;
    return (N + 15) / 16 <= 65535 && (M + 7) / 8 <= 2147483647LL;
}

template <int DT, int RW, int NT, int PF, int LB, bool XPF, bool PS = false>
static void mma_launch(cudaStream_t s, float *y, const float *x, const unsigned *xsp, const unsigned char *w,
                       size_t rb, const float *bias, int64_t M, int64_t N, int64_t K, int ks) {
    const dim3 grid((unsigned)((M + 8 * NT - 1) / (8 * NT)), (unsigned)((N + 16 * RW - 1) / (16 * RW)));
    size_t smem = 0;
    if (ks > 1) smem = (size_t)(ks < 8 ? ks : 8) * RW * NT * 128 * sizeof(float);
    if (mma_q<DT>::quant) {
        const size_t st = (size_t)ks * 16 * RW * mma_q<DT>::np * 16;
        if (st > smem) smem = st;
    }
    k_mma<DT, RW, NT, PF, LB, XPF, PS><<<grid, 32 * ks, smem, s>>>(y, x, xsp, w, rb, bias, M, N, K);
}

/* tile configs: {weight row groups, x tiles, bf16 chunks in flight,
 * threads the registers allow, x in the prefetch ring, x pre-split}; 3 and
 * 4 hold more registers than 16 warps can, so shapes split over 16 warps
 * (narrow bf16) take 1 or 2 instead. Batch <= 8 takes 5 (0 and 6: variants
 * for timing); 7..10 are 1..4 reading pre-split x (mma_twin: the same
 * config splitting in the kernel, taken when there is no work buffer);
 * 11, 12: 9 with registers capped at 170 / 128 (12 / 16 warps per SM;
 * quantized rows: 11 only, 12 is 9). */
#define MMA_CFGS 13
static int mma_twin(int cfg) { return cfg >= 11 ? 3 : cfg >= 7 ? cfg - 6 : cfg; }

template <int DT>
static void mma_by_cfg(int cfg, cudaStream_t s, float *y, const float *x, const unsigned *xsp,
                       const unsigned char *w, size_t rb, const float *bias, int64_t M, int64_t N,
                       int64_t K, int ks) {
    switch (cfg) {
    case 0: mma_launch<DT, 1, 1, 4, 512, true>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 1: mma_launch<DT, 2, 2, 2, 512, false>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 2: mma_launch<DT, 2, 4, 2, 512, false>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 3: mma_launch<DT, 2, 5, 2, 256, false>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 4: mma_launch<DT, 2, 4, 2, 256, false>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 5: mma_launch<DT, 1, 1, 4, 512, false>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 6: mma_launch<DT, 1, 1, 2, 512, false>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 7: mma_launch<DT, 2, 2, 2, 512, false, true>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 8: mma_launch<DT, 2, 4, 2, 512, false, true>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 9: mma_launch<DT, 2, 5, 2, 256, false, true>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 10: mma_launch<DT, 2, 4, 2, 256, false, true>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case 11: mma_launch<DT, 2, 5, 2, 384, false, true>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    default: mma_launch<DT, 2, 5, 2, 512, false, true>(s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    }
}

/* The tile config for M rows (never changes the bits). Pre-split x (PS
 * twins, k_mma_xsplit) only where it measured faster (H100, docs/PERF.md
 * "Pre-split x"): q8_0 rows of N >= 12288 at M 9..16 (7 for 1: -7..-10%)
 * and M > 32 (9 for 3: -4..-8%); bf16 rows of N >= 16384 at M > 32 (11:
 * 9 with 170 registers, -2..-11%). Elsewhere the in-kernel split was as
 * fast or faster (the pre-split fragments hold more registers: 12 per
 * tile instead of 8). cfg -2: the previous rule (never pre-split), for
 * A/B timing in one binary (XSWARM_CUDA_MMA_CFG=-2);
 * XSWARM_CUDA_MMA_PSMIN=n: PS twins wherever M > 8 and N * K >= n. */
static int mma_pick(int cfg, int dt, int64_t M, int64_t N, int64_t K, int ks) {
    if (cfg >= 0 && cfg < MMA_CFGS) return cfg;
    static long long ps_min = -2;
    if (ps_min == -2) {
        const char *e = getenv("XSWARM_CUDA_MMA_PSMIN");
        ps_min = e ? atoll(e) : -1;
        if (e && ps_min < 0) ps_min = 0;
    }
    const bool wide_ks = ks > 8;
    int c = M <= 8 ? 5 : M <= 16 ? 1 : wide_ks ? 2 : M <= 32 ? 4 : 3;
    if (wide_ks && (c == 3 || c == 4)) c = 2;
    if (cfg == -2 || M <= 8) return c;
    if (ps_min >= 0) return N * K >= ps_min ? c + 6 : c;
    if (dt == XS_Q8_0 && N >= 12288 && (c == 1 || c == 3)) return c + 6;
    if (dt == XS_BF16 && N >= 16384 && c == 3) return 11;
    return c;
}

void cu_mma_matmul(struct cu_ctx *ctx, cudaStream_t s, int dt, float *y, const float *x, const unsigned char *w,
                   size_t rb, const float *bias, int64_t M, int64_t N, int64_t K, int cfg, int rule) {
    const int ks = mma_ks(dt, N, K, rule);
    cfg = mma_pick(cfg, dt, M, N, K, ks);
    /* 16 warps (narrow bf16): only the 512-thread configs launch */
    if (ks > 8 && (cfg == 3 || cfg == 4 || cfg == 9 || cfg == 10 || cfg == 11)) cfg = cfg >= 7 ? 8 : 2;
    const unsigned *xsp = NULL;
    if (cfg >= 7) {
        /* x pre-split into the work buffer (6 bytes per value). During graph
         * capture the buffer cannot grow: then split in the kernel (same bits) */
        const size_t need = (size_t)M * (size_t)K * 6;
        void *buf = NULL;
        if ((!ctx->capturing || need <= ctx->scratch_bytes) && cu_scratch(ctx, need, &buf) == XS_OK) {
            const int64_t items = M * (K >> 2);
            const unsigned nb = (unsigned)((items + 255) / 256);
            if (dt == XS_Q4_0) k_mma_xsplit<true><<<nb, 256, 0, s>>>((unsigned *)buf, x, items);
            else k_mma_xsplit<false><<<nb, 256, 0, s>>>((unsigned *)buf, x, items);
            xsp = (const unsigned *)buf;
        } else {
            cfg = mma_twin(cfg);
            if (ks > 8 && (cfg == 3 || cfg == 4)) cfg = 2;
        }
    }
    switch (dt) {
    case XS_BF16: mma_by_cfg<XS_BF16>(cfg, s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    case XS_Q8_0: mma_by_cfg<XS_Q8_0>(cfg, s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    default: mma_by_cfg<XS_Q4_0>(cfg, s, y, x, xsp, w, rb, bias, M, N, K, ks); break;
    }
}
