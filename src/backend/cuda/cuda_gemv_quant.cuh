/*
 * cuda_gemv_quant.cuh — y = x . w^T (+ bias) for q8_0 / q4_0 weights, the
 * memory-bound decode GEMV. Included by cuda_matmul.cu only.
 *
 * Why not "each lane takes whole 34/18-byte blocks with 2-byte loads" (the
 * previous kernel): that needs 17 (9) load instructions per block, each warp
 * load touching a 1 KB span for 64 useful bytes, plus an int->float convert
 * (quarter rate on sm_90) per weight, so the GEMV ran at about a third of
 * its byte rate. Here:
 *  - one warp per weight row; the row is walked in chunks of 32 blocks. The
 *    warp copies a chunk with 16-byte loads of the 16-byte ALIGNED span that
 *    covers it (rows are only 2-byte aligned in general: the few bytes before
 *    and after belong to neighbouring rows or the allocation's padding and
 *    are never used) into its slice of shared memory; then 8 lanes share a
 *    block, each decoding 4 weights, so that the warp's x loads cover 128
 *    consecutive floats (one block per lane made every x load touch 32
 *    separate 128-byte lines: the L1, not DRAM, was the limit, ~0.8 TB/s);
 *  - the next chunk's loads are issued before the current one is decoded,
 *    so two chunks per warp are in flight;
 *  - quant bytes become floats with a byte permute into the mantissa of
 *    2^23 and one exact subtraction (no int->float convert); each weight is
 *    still d * q rounded to f32 (__fmul_rn), exactly as ref dequantizes, and
 *    accumulated in f32 with fmaf.
 * Requires K % 32 == 0 and x rows contiguous and 16-byte aligned.
 *
 * k_gemv_quant (one row per warp, GQ_ROWS x rows per pass) is the previous
 * kernel, kept for XSWARM_CUDA_GEMV=old; cu_matmul now uses
 * k_gemv_quant_rows and k_gemv_quant_split below (same lane partition and
 * order, more rows per warp / more warps per row, one FFMA per weight to
 * dequantize, warps that stream many row groups; see cuda_matmul.cu for the
 * choice). Their previous versions are in cuda_gemv_quant_prev.cuh.
 */
#pragma once
#include "backend/cuda/cuda_internal.h"

#define GQ_WARPS 8
#define GQ_ROWS 4 /* rows of x per pass over the weights */

template <int DT> struct gq_layout {
    static constexpr int bs = DT == XS_Q8_0 ? 34 : 18;    /* bytes per 32-weight block */
    static constexpr int chunk = 32 * bs;                 /* 32 blocks per chunk */
    static constexpr int pieces = (chunk + 30) / 16 + 1;  /* 16-B pieces of the aligned span */
    static constexpr int per_lane = (pieces + 31) / 32;
};

/* float(q) for the byte `i` of v, where v's bytes hold q + bias as unsigned
 * values: 0x4B000000 | u is the float 2^23 + u exactly. */
__device__ static inline float gq_byte_to_float(unsigned v, int i, float minus) {
    return __int_as_float((int)__byte_perm(v, 0x4B000000u, 0x7540u + (unsigned)i)) - minus;
}

template <int DT>
__global__ void __launch_bounds__(32 * GQ_WARPS)
k_gemv_quant(float *y, const float *x, const unsigned char *w, size_t row_bytes,
             const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    typedef gq_layout<DT> L;
    __shared__ uint4 sbuf[GQ_WARPS][L::per_lane * 32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n = (int64_t)blockIdx.x * GQ_WARPS + warp;
    if (n >= N) return; /* whole warp leaves: only __syncwarp is used below */
    const unsigned char *wr = w + (size_t)n * row_bytes;
    const unsigned char *sb = (const unsigned char *)sbuf[warp];
    const int64_t nb = K >> 5;
    for (int64_t m0 = 0; m0 < M; m0 += GQ_ROWS) {
        const int mt = (int)(M - m0 < GQ_ROWS ? M - m0 : GQ_ROWS);
        const float *xr = x + m0 * K;
        float acc[GQ_ROWS];
#pragma unroll
        for (int j = 0; j < GQ_ROWS; j++) acc[j] = 0.0f;

        /* prefetch chunk 0 */
        uint4 r[L::per_lane];
        uintptr_t a0 = 0;
        int lead = 0;
        {
            const uintptr_t s0 = (uintptr_t)wr;
            const int nblk = (int)(nb < 32 ? nb : 32);
            a0 = s0 & ~(uintptr_t)15;
            lead = (int)(s0 - a0);
            const int np = nblk ? (int)((s0 + (uintptr_t)nblk * L::bs + 15 - a0) >> 4) : 0;
#pragma unroll
            for (int i = 0; i < L::per_lane; i++) {
                const int p = lane + 32 * i;
                r[i] = p < np ? __ldg((const uint4 *)a0 + p) : make_uint4(0, 0, 0, 0);
            }
        }
        for (int64_t b0 = 0; b0 < nb; b0 += 32) {
            const int nblk = (int)(nb - b0 < 32 ? nb - b0 : 32);
            const int cur_lead = lead;
#pragma unroll
            for (int i = 0; i < L::per_lane; i++) sbuf[warp][lane + 32 * i] = r[i];
            __syncwarp();
            /* issue the next chunk's loads before decoding this one */
            if (b0 + 32 < nb) {
                const uintptr_t s0 = (uintptr_t)(wr + (b0 + 32) * L::bs);
                const int64_t left = nb - b0 - 32;
                const int nn = (int)(left < 32 ? left : 32);
                a0 = s0 & ~(uintptr_t)15;
                lead = (int)(s0 - a0);
                const int np = (int)((s0 + (uintptr_t)nn * L::bs + 15 - a0) >> 4);
#pragma unroll
                for (int i = 0; i < L::per_lane; i++) {
                    const int p = lane + 32 * i;
                    if (p < np) r[i] = __ldg((const uint4 *)a0 + p);
                }
            }
            /* group g: lanes 8t..8t+7 take block 4g + t, lane position
             * p = lane & 7 takes its weights 4p..4p+3, so the warp's x
             * loads are 128 consecutive floats (q8_0: quant word p; q4_0:
             * word p & 3, low nibbles for p < 4, high for p >= 4) */
            const int p = lane & 7;
#pragma unroll
            for (int g = 0; g < 8; g++) {
                const int bi = 4 * g + (lane >> 3);
                if (bi >= nblk) continue; /* last chunk of a row: fewer blocks */
                const int off = cur_lead + bi * L::bs; /* even */
                const float d = __half2float(__ushort_as_half(((const unsigned short *)sb)[off >> 1]));
                /* quant word at off + 2 + 4 * word: 0 or 2 mod 4, so read two
                 * aligned words and funnel-shift it into place */
                const int qoff = off + 2 + 4 * (DT == XS_Q8_0 ? p : (p & 3));
                const unsigned *sw = (const unsigned *)sb + (qoff >> 2);
                unsigned q = __funnelshift_r(sw[0], sw[1], (unsigned)(qoff & 3) * 8u);
                float wv[4];
                if (DT == XS_Q8_0) {
                    q ^= 0x80808080u; /* int8 -> q + 128 */
#pragma unroll
                    for (int i = 0; i < 4; i++) wv[i] = __fmul_rn(d, gq_byte_to_float(q, i, 8388736.0f));
                } else {
                    q = (q >> (p >> 2) * 4) & 0x0F0F0F0Fu;
#pragma unroll
                    for (int i = 0; i < 4; i++) wv[i] = __fmul_rn(d, gq_byte_to_float(q, i, 8388616.0f));
                }
                const float4 *xb = (const float4 *)(xr + (b0 + bi) * 32 + 4 * p);
#pragma unroll
                for (int j = 0; j < GQ_ROWS; j++) {
                    if (j >= mt) break;
                    const float4 a = __ldg(xb + (size_t)j * (K >> 2));
                    acc[j] = fmaf(a.x, wv[0], acc[j]);
                    acc[j] = fmaf(a.y, wv[1], acc[j]);
                    acc[j] = fmaf(a.z, wv[2], acc[j]);
                    acc[j] = fmaf(a.w, wv[3], acc[j]);
                }
            }
            __syncwarp();
        }
#pragma unroll
        for (int j = 0; j < GQ_ROWS; j++)
            for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
        if (lane == 0)
            for (int j = 0; j < mt; j++)
                y[(m0 + j) * N + n] = bias ? acc[j] + bias[n] : acc[j];
    }
}


/*
 * ---- k_gemv_quant_rows / k_gemv_quant_split ------------------------------------
 *
 * Both walk the rows as k_gemv_quant does (CH-block chunks staged through
 * shared memory by the warp's registers, 8 lanes per block, 4 weights per
 * lane, lane group t taking blocks t, t + 4, ... of a chunk in order), so per
 * output the fmaf order and the butterfly are those of the previous kernels
 * (cuda_gemv_quant_prev.cuh): same bits. What changed (docs/PERF.md, "q8_0 /
 * q4_0 GEMV at batch 1"; H100, M = 1: 12288x4096 q8_0 34.4 -> 28.6 us):
 *  - decode: a weight is one PRMT and one FFMA instead of PRMT, FADD, FMUL
 *    (gq_dequant4), the same value d * q exactly; a full chunk is decoded
 *    without the per-group "block exists" test (gq_chunk), so the compiler
 *    can issue the chunk's shared-memory loads ahead of their use. At M = 1
 *    the kernel looks bound by its instructions per weight, not by DRAM:
 *    the previous one took as long for a 53 MB q8_0 matrix as the bf16
 *    kernel for a 100 MB one, and this instruction-only change gave 17%.
 *    With 8-row x tiles (M > 4) the hoisted loads cost
 *    registers (up to 165) and the previous kernels are faster: cu_matmul
 *    keeps them there.
 *  - k_gemv_quant_rows deals row groups grid-stride, and a warp loads the
 *    next group's first chunk while it decodes the current group's last one,
 *    so a grid of fewer blocks than groups streams without a per-block ramp
 *    and drain. A grid capped at 2-4 waves of resident blocks measured no
 *    faster than a full grid (one group per warp), which cu_matmul launches.
 * (A version with the chunks brought in by the bulk-copy engine,
 * cp.async.bulk + mbarrier, all of a row pair's chunks in flight, measured
 * 5-25% SLOWER on an H100 at every shape: see docs/PERF.md.)
 */
#define GQR_WARPS 4
/* batch 1 with small R x CH tiles: at least 8 blocks (32 warps) per SM,
 * i.e. <= 64 registers (the full-chunk path lets the compiler hoist loads,
 * which asked for 72-80); bigger tiles would spill under that cap */
#define GQ_MIN_BLOCKS(MT, RCH) ((MT) == 1 && (RCH) <= 64 ? 8 : 1)

/* CH blocks per staged chunk (8, 32 or 64): 64 halves the chunk count of
 * long rows (K = 11264). The lane-to-block map (lane group t takes blocks
 * t, t + 4, t + 8, ... of the row, in order) is the same for all, so is the
 * result of the warp-row kernel (the split kernel deals chunks to warps:
 * there CH is part of the order, chosen from K only). */
template <int DT, int CH> struct gqr_layout {
    static constexpr int bs = DT == XS_Q8_0 ? 34 : 18;
    static constexpr int chunk = CH * bs;
    static constexpr int pieces = (chunk + 30) / 16 + 1; /* 16-B pieces of the aligned span */
    static constexpr int per_lane = (pieces + 31) / 32;
};

/* d * q for the 4 quants in q (q8_0: four int8; q4_0: four nibbles u = q + 8
 * in the low half of each byte), d the block's f16 scale: ref's value d * q
 * exactly, as the previous __fmul_rn(d, float(q)) — for finite d the
 * product has at most 11 + 8 significant bits, so it is exact either way.
 * One FFMA per weight: F = 1 + u * 2^-15 (u = q + 128 or the nibble, a byte
 * permuted into the mantissa of 1.0), D = d * 2^15 and nc = -D * (1 + b *
 * 2^-15) with b = 128 or 8 (exact: <= 11 + 9 or 11 + 13 significant bits),
 * then fmaf(D, F, nc) = D * (u - b) * 2^-15 = d * q, a representable value,
 * so the fma's single rounding leaves it unchanged. (q = 0 gives +0 where
 * d < 0 gave -0 before: the same after the fmaf into a non-zero or +0
 * accumulator; an inf scale now gives NaN weights instead of inf.) */
template <int DT>
__device__ static inline void gq_dequant4(unsigned q, unsigned short dh, float wv[4]) {
    const float D = __fmul_rn(__half2float(__ushort_as_half(dh)), 32768.0f);
    const float nc = __fmul_rn(D, DT == XS_Q8_0 ? -1.00390625f : -1.000244140625f);
    if (DT == XS_Q8_0) q ^= 0x80808080u; /* int8 -> q + 128 */
#pragma unroll
    for (int i = 0; i < 4; i++)
        wv[i] = fmaf(D, __int_as_float((int)__byte_perm(q, 0x3F800000u, 0x7604u | ((unsigned)i << 4))), nc);
}

/* A lane's view of one row's staged chunk, computed once per chunk so that
 * every group's shared-memory loads are immediate offsets from it. Written
 * inline per group ((lead + 34 bi + 2 + 4 p) & ~3 with bi = 4 g + t), the
 * compiler recomputed the alignment, funnel amount and 64-bit x address in
 * each unrolled group: 10.6 instructions per weight at 12288x4096 (ncu,
 * H100), 8.1 with the view (docs/PERF.md, "Lane views"). */
struct gq_lane_view {
    const unsigned short *scale; /* f16 scale of the lane's block in group 0 */
    const unsigned *word;        /* aligned word holding its first quant byte */
    unsigned shift;              /* funnel shift of the word pair: 0 or 16 bits */
};

/* lane group t takes block 4 g + t of group g, lane position p its quant
 * word p (q8_0) or p & 3 (q4_0); the block starts lead + bi * bs bytes into
 * the slot sb (even: the quant word sits at 0 or 2 mod 4) */
template <int DT>
__device__ static inline gq_lane_view gq_view(const unsigned char *sb, int lead, int t, int p) {
    const int bs = DT == XS_Q8_0 ? 34 : 18;
    const int off = lead + t * bs;
    const int qoff = off + 2 + 4 * (DT == XS_Q8_0 ? p : (p & 3));
    gq_lane_view v;
    v.scale = (const unsigned short *)(sb + off);
    v.word = (const unsigned *)(sb + (qoff & ~3));
    v.shift = (unsigned)(qoff & 3) * 8u;
    return v;
}

/* Group g of a staged chunk for R rows (views v[r]): the lane's 4 weights of
 * block 4 g + t (q8_0: quant word p; q4_0: word p & 3, low nibbles for
 * p < 4, high for p >= 4) against x at xl (the lane's float4 of group 0 in
 * the chunk; x row j at j * K / 4 float4 further). Groups are 4 blocks =
 * 4 * bs bytes apart (a multiple of 4) and 32 float4 of x apart. */
template <int DT, int R, int MT>
__device__ static inline void gq_group(float (&acc)[R][MT], const gq_lane_view (&v)[R], int g,
                                       const float4 *xl, int64_t K, int mt, int p) {
    const int bs = DT == XS_Q8_0 ? 34 : 18;
    float wv[R][4];
#pragma unroll
    for (int r = 0; r < R; r++) {
        const unsigned short dh = v[r].scale[g * 2 * bs];
        const unsigned *sw = v[r].word + g * bs;
        unsigned q = __funnelshift_r(sw[0], sw[1], v[r].shift);
        if (DT != XS_Q8_0) q = (q >> (p >> 2) * 4) & 0x0F0F0F0Fu;
        gq_dequant4<DT>(q, dh, wv[r]);
    }
#pragma unroll
    for (int j = 0; j < MT; j++) {
        if (j >= mt) break;
        const float4 a = __ldg(xl + (size_t)j * (K >> 2) + 32 * g);
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

/* One staged chunk of nblk blocks (slot bytes sb[r], first block at lead[r],
 * x at xr = the chunk's first column): a full one without the per-group test. */
template <int DT, int R, int MT, int CH>
__device__ static inline void gq_chunk(float (&acc)[R][MT], const unsigned char *const sb[R],
                                       const int lead[R], int nblk, const float *xr, int64_t K,
                                       int mt, int lane) {
    const int p = lane & 7, t = lane >> 3;
    gq_lane_view v[R];
#pragma unroll
    for (int r = 0; r < R; r++) v[r] = gq_view<DT>(sb[r], lead[r], t, p);
    const float4 *xl = (const float4 *)xr + 8 * t + p;
    if (nblk == CH) {
#pragma unroll
        for (int g = 0; g < CH / 4; g++) gq_group<DT, R, MT>(acc, v, g, xl, K, mt, p);
    } else {
#pragma unroll
        for (int g = 0; g < CH / 4; g++)
            if (4 * g + t < nblk) gq_group<DT, R, MT>(acc, v, g, xl, K, mt, p);
    }
}

/* The warp loads the 16-byte aligned span of nblk blocks at s into its
 * registers rg (pieces lane, lane + 32, ...); returns where the first block
 * starts in the span. */
template <int PL>
__device__ static inline int gq_load(uint4 (&rg)[PL], const unsigned char *s, int nblk, int bs, int lane) {
    const uintptr_t s0 = (uintptr_t)s, a0 = s0 & ~(uintptr_t)15;
    const int np = (int)((s0 + (uintptr_t)nblk * (uintptr_t)bs + 15 - a0) >> 4);
#pragma unroll
    for (int i = 0; i < PL; i++) {
        const int p = lane + 32 * i;
        if (p < np) rg[i] = __ldg((const uint4 *)a0 + p);
    }
    return (int)(s0 - a0);
}

/*
 * k_gemv_quant_rows — a warp owns R weight rows at a time (a row group) and
 * MT rows of x: each x load serves R rows, each decoded weight MT x rows,
 * and x-row tiles beyond MT go to the grid's fast dimension so blocks
 * sharing weight rows meet in L2 (DRAM reads each weight once). Row groups
 * are dealt grid-stride (warp w of block row b takes groups b * GQR_WARPS +
 * w, + gridDim.y * GQR_WARPS, ...): with a full grid each warp has one,
 * with a capped grid it streams several, its next chunk (the next group's
 * first one at a group's end) always in flight while it decodes.
 * Bit-identical for batch 1 and batched steps, whatever the grid.
 */
template <int DT, int R, int MT, int CH>
__global__ void __launch_bounds__(32 * GQR_WARPS, GQ_MIN_BLOCKS(MT, R * CH))
k_gemv_quant_rows(float *y, const float *x, const unsigned char *w, size_t row_bytes,
                  const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    typedef gqr_layout<DT, CH> L;
    __shared__ uint4 sbuf[GQR_WARPS][R][L::per_lane * 32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t m0 = (int64_t)blockIdx.x * MT;
    const int64_t ngroups = (N + R - 1) / R, gstride = (int64_t)gridDim.y * GQR_WARPS;
    int64_t grp = (int64_t)blockIdx.y * GQR_WARPS + warp;
    if (grp >= ngroups || m0 >= M) return; /* whole warp leaves: only __syncwarp below */
    const int mt = (int)(M - m0 < MT ? M - m0 : MT);
    const int64_t nb = K >> 5, nch = (nb + CH - 1) / CH;
    const float *xr = x + m0 * K;
    float acc[R][MT];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int j = 0; j < MT; j++) acc[r][j] = 0.0f;
    /* rows of a group past N repeat its first row (results dropped) */
    auto row_of = [&](int64_t g, int r) -> const unsigned char * {
        const int64_t n = g * R + r;
        return w + (size_t)(n < N ? n : g * R) * row_bytes;
    };
    uint4 rg[R][L::per_lane];
#pragma unroll
    for (int r = 0; r < R; r++)
#pragma unroll
        for (int i = 0; i < L::per_lane; i++) rg[r][i] = make_uint4(0, 0, 0, 0);
    int lead_next[R];
    int64_t c = 0;
    if (nch) {
        const int nblk = (int)(nb < CH ? nb : CH);
#pragma unroll
        for (int r = 0; r < R; r++) lead_next[r] = gq_load(rg[r], row_of(grp, r), nblk, L::bs, lane);
    }
    for (;;) {
        /* item (grp, c): its bytes are in rg */
        if (nch) {
            const int64_t b0 = c * CH;
            const int nblk = (int)(nb - b0 < CH ? nb - b0 : CH);
            int lead[R];
            const unsigned char *sb[R];
#pragma unroll
            for (int r = 0; r < R; r++) {
                lead[r] = lead_next[r];
                sb[r] = (const unsigned char *)sbuf[warp][r];
#pragma unroll
                for (int i = 0; i < L::per_lane; i++) sbuf[warp][r][lane + 32 * i] = rg[r][i];
            }
            __syncwarp();
            /* the next item's loads in flight while this one is decoded */
            const int64_t cn = c + 1 < nch ? c + 1 : 0, gn = c + 1 < nch ? grp : grp + gstride;
            if (gn < ngroups) {
                const int nn = (int)(nb - cn * CH < CH ? nb - cn * CH : CH);
#pragma unroll
                for (int r = 0; r < R; r++)
                    lead_next[r] = gq_load(rg[r], row_of(gn, r) + cn * CH * L::bs, nn, L::bs, lane);
            }
            gq_chunk<DT, R, MT, CH>(acc, sb, lead, nblk, xr + b0 * 32, K, mt, lane);
            __syncwarp();
        }
        if (c + 1 < nch) {
            c++;
            continue;
        }
        /* the group's last chunk: reduce, write, next group */
        const int64_t n0 = grp * R;
        const int rt = (int)(N - n0 < R ? N - n0 : R);
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < MT; j++) {
                for (int o = 16; o > 0; o >>= 1) acc[r][j] += __shfl_xor_sync(0xffffffffu, acc[r][j], o);
            }
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
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int j = 0; j < MT; j++) acc[r][j] = 0.0f;
        grp += gstride;
        c = 0;
        if (grp >= ngroups) break;
    }
}

/* The end of a batch-1 row group (rows n0.., R of them, those < N): each
 * row's lane sums by the xor butterfly, then lane 0 writes y (+ bias). */
template <int R>
__device__ static inline void gq_rows_store(float (&acc)[R][1], float *y, const float *bias, int64_t n0,
                                            int64_t N, int lane) {
#pragma unroll
    for (int r = 0; r < R; r++)
        for (int o = 16; o > 0; o >>= 1) acc[r][0] += __shfl_xor_sync(0xffffffffu, acc[r][0], o);
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < R; r++)
            if (n0 + r < N) y[n0 + r] = bias ? acc[r][0] + bias[n0 + r] : acc[r][0];
    }
}

/*
 * k_gemv_quant_rows_full — k_gemv_quant_rows at M = 1 for the common layout:
 * weight rows 16-byte aligned (base and row bytes), K a whole number of
 * CH-block chunks, one row group per warp (the full grid cu_matmul
 * launches). Every chunk then starts on a 16-byte boundary (lead 0) and
 * spans the same pieces, so the loop is the loads at a pointer that
 * advances CH * bs bytes, the shared-memory stores and the groups; the
 * general kernel forms each chunk's span (64-bit, per piece), ~2 of its 8
 * instructions a weight (SASS, H100). The same gq_chunk: the same bits.
 */
template <int DT, int R, int CH>
__global__ void __launch_bounds__(32 * GQR_WARPS, GQ_MIN_BLOCKS(1, R * CH))
k_gemv_quant_rows_full(float *y, const float *x, const unsigned char *w, size_t row_bytes,
                       const float *bias, int64_t N, int64_t K) {
    cu_pdl_enter();
    typedef gqr_layout<DT, CH> L;
    constexpr int NP = CH * L::bs / 16; /* 16-byte pieces of a chunk */
    constexpr int PL = (NP + 31) / 32;
    __shared__ uint4 sbuf[GQR_WARPS][R][PL * 32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n0 = ((int64_t)blockIdx.y * GQR_WARPS + warp) * R;
    if (n0 >= N) return; /* whole warp leaves: only __syncwarp below */
    const int64_t nch = (K >> 5) / CH;
    const uint4 *src[R];
    uint4 rg[R][PL];
#pragma unroll
    for (int r = 0; r < R; r++) { /* rows past N repeat the group's first row (results dropped) */
        src[r] = (const uint4 *)(w + (size_t)(n0 + r < N ? n0 + r : n0) * row_bytes) + lane;
#pragma unroll
        for (int i = 0; i < PL; i++)
            if (lane + 32 * i < NP) rg[r][i] = __ldg(src[r] + 32 * i);
    }
    const unsigned char *sb[R];
    int lead[R];
    float acc[R][1];
#pragma unroll
    for (int r = 0; r < R; r++) {
        sb[r] = (const unsigned char *)sbuf[warp][r];
        lead[r] = 0;
        acc[r][0] = 0.0f;
    }
    for (int64_t c = 0; c < nch; c++) {
#pragma unroll
        for (int r = 0; r < R; r++)
#pragma unroll
            for (int i = 0; i < PL; i++)
                if (lane + 32 * i < NP) sbuf[warp][r][lane + 32 * i] = rg[r][i];
        __syncwarp();
        if (c + 1 < nch) { /* the next chunk in flight while this one is decoded */
#pragma unroll
            for (int r = 0; r < R; r++) {
                src[r] += NP;
#pragma unroll
                for (int i = 0; i < PL; i++)
                    if (lane + 32 * i < NP) rg[r][i] = __ldg(src[r] + 32 * i);
            }
        }
        gq_chunk<DT, R, 1, CH>(acc, sb, lead, CH, x + c * CH * 32, K, 1, lane);
        __syncwarp();
    }
    gq_rows_store<R>(acc, y, bias, n0, N, lane);
}

/*
 * k_gemv_quant_rows_async — k_gemv_quant_rows_full with the chunks copied
 * straight into shared memory by cp.async (16 bytes a lane: no registers
 * held for them, no shared-memory stores), in a ring of S slots: S - 1
 * chunks of the warp's rows in flight while one is decoded. The same
 * gq_chunk on the same bytes: the same bits. 32-block chunks only, at most
 * 8 row chunks a warp (static shared memory is 48 KB a block). Where it
 * pays (cu_matmul's rule, H100): q4_0, whose decode is the shorter, and
 * long q8_0 rows; with 3-4 slots it was slower at every 7B shape but the
 * depformer's 1024-wide rows, so more bytes in flight is not what the
 * q8_0 rows at K = 4096 lack.
 */
template <int DT, int R, int S_ASKED>
__global__ void __launch_bounds__(32 * GQR_WARPS, GQ_MIN_BLOCKS(1, R * 32))
k_gemv_quant_rows_async(float *y, const float *x, const unsigned char *w, size_t row_bytes,
                        const float *bias, int64_t N, int64_t K) {
    cu_pdl_enter();
    constexpr int CH = 32;
    constexpr int S = R * S_ASKED > 8 ? 8 / R : S_ASKED; /* 4 rows: 2 slots (48 KB) */
    typedef gqr_layout<DT, CH> L;
    constexpr int NP = CH * L::bs / 16; /* 16-byte pieces of a chunk */
    constexpr int PL = (NP + 31) / 32;
    /* + 1: a lane's last quant word pair may read one word past its chunk
     * (the funnel shift then ignores it) */
    __shared__ uint4 sbuf[GQR_WARPS * S * R * NP + 1];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t n0 = ((int64_t)blockIdx.y * GQR_WARPS + warp) * R;
    if (n0 >= N) return; /* whole warp leaves: only __syncwarp below */
    const int64_t nch = (K >> 5) / CH;
    uint4 *ring = sbuf + (size_t)warp * S * R * NP;
    const uint4 *src[R];
#pragma unroll
    for (int r = 0; r < R; r++) /* rows past N repeat the group's first row (results dropped) */
        src[r] = (const uint4 *)(w + (size_t)(n0 + r < N ? n0 + r : n0) * row_bytes) + lane;
    /* chunk c into slot `slot`, then one commit group whether or not c exists,
     * so that wait_group<S - 1> always means "chunk c - S + 1 has landed" */
    auto issue = [&](int64_t c, int slot) {
        if (c < nch) {
#pragma unroll
            for (int r = 0; r < R; r++)
#pragma unroll
                for (int i = 0; i < PL; i++)
                    if (lane + 32 * i < NP) {
                        const unsigned d = (unsigned)__cvta_generic_to_shared(ring + (slot * R + r) * NP + lane + 32 * i);
                        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(d),
                                     "l"(src[r] + c * NP + 32 * i));
                    }
        }
        asm volatile("cp.async.commit_group;\n" ::);
    };
#pragma unroll
    for (int c = 0; c < S - 1; c++) issue(c, c);
    int lead[R];
    float acc[R][1];
#pragma unroll
    for (int r = 0; r < R; r++) {
        lead[r] = 0;
        acc[r][0] = 0.0f;
    }
    int slot = 0, next = S - 1; /* the slot chunk c sits in; the one chunk c + S - 1 goes to */
    for (int64_t c = 0; c < nch; c++) {
        issue(c + S - 1, next); /* the slot chunk c - 1 left (the __syncwarp below) */
        asm volatile("cp.async.wait_group %0;\n" ::"n"(S - 1));
        __syncwarp(); /* every lane's copies of chunk c visible to the warp */
        const unsigned char *sb[R];
#pragma unroll
        for (int r = 0; r < R; r++) sb[r] = (const unsigned char *)(ring + (slot * R + r) * NP);
        gq_chunk<DT, R, 1, CH>(acc, sb, lead, CH, x + c * CH * 32, K, 1, lane);
        __syncwarp(); /* chunk c read by every lane before its slot is refilled */
        slot = slot + 1 == S ? 0 : slot + 1;
        next = next + 1 == S ? 0 : next + 1;
    }
    gq_rows_store<R>(acc, y, bias, n0, N, lane);
}

/*
 * k_gemv_quant_split — narrow q8_0/q4_0 matrices (N <= 4096: the
 * depformer's sets, the temporal wo / ff_out): one weight row per block,
 * its CH-block chunks dealt round-robin to the GQR_WARPS warps (warp w
 * takes chunks w, w + 4, ...), each warp decoding as k_gemv_quant_rows
 * does; then each warp's butterfly and the warps added in order. Four
 * times the warps in flight of one-warp-per-row, each with a quarter of
 * the serial chunk round trips. Order depends on N and K only, not on M.
 */
template <int DT, int MT, int CH>
__global__ void __launch_bounds__(32 * GQR_WARPS, GQ_MIN_BLOCKS(MT, CH))
k_gemv_quant_split(float *y, const float *x, const unsigned char *w, size_t row_bytes,
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
    float acc[1][MT];
#pragma unroll
    for (int j = 0; j < MT; j++) acc[0][j] = 0.0f;
    uint4 rg[L::per_lane];
#pragma unroll
    for (int i = 0; i < L::per_lane; i++) rg[i] = make_uint4(0, 0, 0, 0);
    int lead_next = 0;
    int64_t b0 = (int64_t)warp * CH;
    if (b0 < nb) lead_next = gq_load(rg, wr + b0 * L::bs, (int)(nb - b0 < CH ? nb - b0 : CH), L::bs, lane);
    for (; b0 < nb; b0 += GQR_WARPS * CH) {
        const int nblk = (int)(nb - b0 < CH ? nb - b0 : CH);
        const int lead[1] = {lead_next};
        const unsigned char *sb[1] = {(const unsigned char *)sbuf[warp]};
#pragma unroll
        for (int i = 0; i < L::per_lane; i++) sbuf[warp][lane + 32 * i] = rg[i];
        __syncwarp();
        const int64_t nx = b0 + GQR_WARPS * CH;
        if (nx < nb) lead_next = gq_load(rg, wr + nx * L::bs, (int)(nb - nx < CH ? nb - nx : CH), L::bs, lane);
        gq_chunk<DT, 1, MT, CH>(acc, sb, lead, nblk, xr + b0 * 32, K, mt, lane);
        __syncwarp();
    }
#pragma unroll
    for (int j = 0; j < MT; j++) {
        for (int o = 16; o > 0; o >>= 1) acc[0][j] += __shfl_xor_sync(0xffffffffu, acc[0][j], o);
        if (lane == 0) part[warp][j] = acc[0][j];
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
