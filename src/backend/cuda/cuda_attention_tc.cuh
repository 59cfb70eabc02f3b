/*
 * cuda_attention_tc.cuh — the q8_0 chunk kernel on the tensor cores (the
 * default for q8_0 caches with head dim 128; XSWARM_CUDA_ATTN=tc), included
 * by cuda_attention.cu after the staged kernel, whose tile stream (cp.async,
 * 3 buffers of 32 slots, K tiles then V tiles), chunk softmax and merge it
 * reuses. Measured and explained in docs/PERF.md ("attntc").
 *
 * Why: over full q8_0 caches the staged kernel is bound by the SM's issue
 * rate (per cache value an int8 decode, a subtraction and an FMA, plus the
 * shared-memory reads), not by DRAM. Here q.k and p.V are mma.sync
 * m16n8k32 int8 x int8 -> int32 (exact): the cache's int8 quants are the
 * MMA operand as they are, no decode at all (K: the 4-byte words of a row;
 * V: 4 slots' words transposed bytewise by 8 PRMTs per 16 values).
 *  - The f32 operand (q of the head, or per tile and q8_0 block the weights
 *    p' = e x dV, the staged kernel's folded product) is scaled by a power
 *    of two (exact) so its largest magnitude is in [2^29, 2^30), rounded to
 *    an integer (exact for values within 2^-6 of the largest, else rounded
 *    at 2^-30 of it: a 30-bit block floating point, finer than the f32
 *    rounding of the products it feeds) and cut into four balanced int8
 *    digits, which sit on the MMA's N side (columns 0..3, the rest zero).
 *    Each digit's 32-term sum is exact in int32; lane c = 0 holds digits
 *    0, 1 and c = 1 digits 2, 3 (x 2^16): combined exactly in int32, once
 *    rounded to f32, scaled back by the power of two, then added (fixed
 *    order). nmse vs ref 7e-15 (the staged kernel: 1.4e-14; bar 1e-9).
 *  - Non-finite q makes the row's scores NaN; a non-finite V scale on a
 *    visible slot makes the output NaN (as ref: the integer path would
 *    otherwise drop them).
 * Scores: warp w takes 16 slots (w & 1) of a 32-slot tile and two q8_0
 * blocks (w >> 1) of the head; per block a fresh 16 x 8 product over its
 * 32 dims is scaled by the slot's K block scale and added; the two warps'
 * halves of a slot are added in shared memory (fixed order).
 * V: warp w takes q8_0 block w (32 dims = two M tiles of 16 dims), K = the
 * tile's 32 slots, with the tile's own power of two. Hidden slots get
 * p' = 0 (an int8 operand is never NaN, so 0 x v adds exactly 0).
 * KI8 / VI8 off (XSWARM_CUDA_ATTN=tcv16: p.V, =tc16: both) run the same
 * products as m16n8k16 f16 x f16 -> f32 instead: int8 -> f16 by a PRMT and
 * an f16x2 subtraction (0x64XX is the f16 1024 + XX; XX = byte ^ 0x80;
 * minus 1152), the f32 operand scaled into [2^14, 2^15) and split into
 * three f16 parts h + m + l (columns 0..2), each product with an int8
 * exact in f32. Slower (timed in PERF.md), kept for A/B.
 * A row's result depends only on its own q, cache and position: the tile
 * and chunk layout depend on D and the constants below, never on B.
 * Used for q8_0 caches with D = 128 (4 blocks = 4 warps), contiguous and
 * 16-byte aligned (attc_fits); other q8_0 caches keep the staged kernel.
 */

#define ATTC_CHUNK 256
#define ATTC_THREADS 128
#define ATTC_STAGES 3
#define ATTC_TS 32 /* slots per tile */
#define ATTC_D 128
#define ATTC_RB (ATTC_D / 32 * 34) /* bytes of a q8_0 head row: 136 */

/* f32 pair -> f16x2 (round to nearest even), lo in the low half */
__device__ static inline uint32_t attc_pack(float lo, float hi) {
    uint32_t r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
/* part p (0 = h, 1 = m, 2 = l; else 0) of x's three-f16 split */
__device__ static inline float attc_part(float x, int p) {
    const float h = __half2float(__float2half_rn(x));
    const float r = x - h; /* exact: h is x rounded to 11 bits */
    const float m = __half2float(__float2half_rn(r));
    return p == 0 ? h : p == 1 ? m : p == 2 ? r - m : 0.0f;
}
/* 2^k for |k| < 126 (exact scaling) */
__device__ static inline float attc_pow2(int k) { return __int_as_float((127 + k) << 23); }
/* the power of two that brings the largest magnitude mx into [2^(TOP-1), 2^TOP);
 * 0 for a zero or non-finite mx (NaN/inf then propagate as in ref) */
template <int TOP = 15> __device__ static inline int attc_exp(float mx) {
    if (!(mx > 0.0f) || !isfinite(mx)) return 0;
    int e;
    frexpf(mx, &e); /* mx in [2^(e-1), 2^e) */
    int k = TOP - e;
    return k > 100 ? 100 : k < -100 ? -100 : k;
}

/* Two int8 pairs of the f16 MMA operand from two 16-bit loads x0, x1
 * (each two int8 bytes): with SEL0/SEL1 picking bytes of w = x0 | x1 << 16
 * into the low bytes of 1024-biased f16 halves, then the bias off. */
template <unsigned SEL0, unsigned SEL1>
__device__ static inline void attc_i8h2(uint32_t x0, uint32_t x1, uint32_t &r0, uint32_t &r1) {
    const uint32_t w = __byte_perm(x0, x1, 0x5410u) ^ 0x80808080u;
    const uint32_t b0 = __byte_perm(w, 0x64646464u, SEL0);
    const uint32_t b1 = __byte_perm(w, 0x64646464u, SEL1);
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r0) : "r"(b0), "r"(0x64806480u));
    asm("sub.rn.f16x2 %0, %1, %2;" : "=r"(r1) : "r"(b1), "r"(0x64806480u));
}

__device__ static inline void attc_mma(float c[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                       uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* int8 x int8 -> int32, exact */
__device__ static inline void attc_imma(int c[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Balanced base-256 digit g (0..3; else 0) of x, |x| < 2^30: x = sum_g
 * digit_g 256^g with every digit in -128..127 (the top one in -65..65). */
__device__ static inline uint32_t attc_digit(int x, int g) {
    int d = 0;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const int dk = (int)(signed char)(x & 0xff);
        if (k == g) d = dk;
        x = (x - dk) >> 8;
    }
    return g < 4 ? (uint32_t)d & 0xffu : 0u;
}

__device__ static inline uint32_t attc_ld16(const unsigned char *p) {
    return (uint32_t) * (const unsigned short *)p;
}

template <bool KI8, bool VI8>
__device__ __forceinline__ void att_part_tc(float *part, const float *q, const cu_view &qv,
                                            const cu_kv_q8 *ck, const cu_kv_q8 *cv,
                                            const int32_t *cpos, int64_t cpos_stride,
                                            int64_t cap, const int32_t *pos, int64_t pos_stride,
                                            int64_t H, int64_t context, float scale,
                                            float *ydirect) {
    enum { CHUNK = ATTC_CHUNK, THREADS = ATTC_THREADS, D = ATTC_D, RB = ATTC_RB };
    enum { W = 8, NWR = RB / W, TS = ATTC_TS, S = ATTC_STAGES, TILE = TS * RB };
    __shared__ __align__(16) float qh[D];
    __shared__ __align__(16) unsigned char tiles[S * TILE];
    __shared__ float scp[2][CHUNK]; /* the two dim halves of each score; [0] then = e */
    __shared__ unsigned char vis[CHUNK];
    __shared__ float red[4];
    __shared__ double redd[4];
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    const int g = lane >> 2, c = lane & 3; /* MMA fragment row group, column pair */
    const int64_t t = blockIdx.x / H, h = blockIdx.x % H, th = blockIdx.x;
    const int64_t s0 = (int64_t)blockIdx.y * CHUNK;
    const int64_t ns = cap - s0 < CHUNK ? cap - s0 : CHUNK;
    const int64_t pt = pos[t * pos_stride];
    float *out = part + (th * gridDim.y + blockIdx.y) * (D + 2);
    int64_t lo64, hi64;
    if (!att_chunk_live(pt, context, cap, s0, ns, &lo64, &hi64)) {
        att_chunk_empty(ydirect, th, D, out, tid, THREADS);
        return;
    }
    const int lo = (int)lo64, hi = (int)hi64, ntile = (hi - lo + TS - 1) / TS, nt = 2 * ntile;
    const int64_t rowb = H * RB;
    const unsigned char *kb = (const unsigned char *)ck + ((s0 + lo) * H + h) * RB;
    const unsigned char *vb = (const unsigned char *)cv + ((s0 + lo) * H + h) * RB;
    auto issue = [&](int j) { /* tile j: K rows of tile j (< ntile), then V */
        if (j < nt) {
            const int jt = j < ntile ? j : j - ntile, first = jt * TS;
            const int rows = hi - lo - first < TS ? hi - lo - first : TS;
            const unsigned char *src = (j < ntile ? kb : vb) + (int64_t)first * rowb;
            unsigned char *dst = tiles + (j % S) * TILE;
            for (int f = tid; f < rows * NWR; f += THREADS) {
                const int r = f / NWR, w = f - r * NWR;
                atts_cp<W>(dst + r * RB + w * W, src + r * rowb + w * W);
            }
        }
        atts_commit();
    };
#pragma unroll
    for (int j = 0; j < S - 1; j++) issue(j);
    const float *qr = q + cu_row_off(qv, t);
    const int64_t qs = cu_inner_stride(qv);
    for (int d = tid; d < D; d += THREADS) qh[d] = qr[(h * D + d) * qs];
    for (int i = tid; i < ns; i += THREADS) {
        const int64_t p = i >= lo && i < hi ? cpos[(s0 + i) * cpos_stride] : -1;
        vis[i] = p >= 0 && pt - p >= 0 && pt - p < context;
    }
    __syncthreads();
    /* q's B fragments, for this warp's blocks b = 2 (wid >> 1) + bb. KI8: q
     * as 30-bit integers (q x 2^kq rounded: exact where |q| >= 2^-7 of the
     * head's largest, else to 2^-30 of it) in four int8 digits, lane (g, c)
     * holding digit g of dims 32b + 4c .. + 3 (b0) and 32b + 16 + 4c .. (b1).
     * f16: part g of dims 32b + 16ks + 4c + {0,1} (b0) and + {2,3} (b1). */
    const int mt = wid & 1, dh = wid >> 1;
    int kq, qbad = 0;
    uint32_t qb[2][2][2];
    {
        float mx = 0.0f;
#pragma unroll
        for (int k = 0; k < D / 32; k++) {
            const float v = qh[lane + 32 * k];
            mx = fmaxf(mx, fabsf(v));
            qbad |= !isfinite(v);
        }
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        qbad = __any_sync(0xffffffffu, qbad);
        kq = KI8 ? attc_exp<30>(mx) : attc_exp<15>(mx);
        const float f = attc_pow2(kq);
#pragma unroll
        for (int bb = 0; bb < 2; bb++)
#pragma unroll
            for (int ks = 0; ks < 2; ks++) {
                if (KI8) {
                    const float *qp = qh + 32 * (2 * dh + bb) + 16 * ks + 4 * c;
                    uint32_t w = 0;
#pragma unroll
                    for (int k = 0; k < 4; k++)
                        w |= attc_digit(__float2int_rn(qp[k] * f), g) << (8 * k);
                    qb[bb][ks][0] = w;
                    qb[bb][ks][1] = 0;
                } else {
                    const float *qp = qh + 32 * (2 * dh + bb) + 16 * ks + 4 * c;
                    qb[bb][ks][0] = attc_pack(attc_part(qp[0] * f, g), attc_part(qp[1] * f, g));
                    qb[bb][ks][1] = attc_pack(attc_part(qp[2] * f, g), attc_part(qp[3] * f, g));
                }
            }
    }
    for (int j = 0; j < ntile; j++) { /* scores of tile j's slots */
        atts_wait<S - 2>();
        __syncthreads();
        issue(j + S - 1);
        const unsigned char *r0 = tiles + (j % S) * TILE + (16 * mt + g) * RB;
        const unsigned char *r1 = r0 + 8 * RB;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int bb = 0; bb < 2; bb++) {
            const int bo = 34 * (2 * dh + bb);
            const float d0 = __half2float(__ushort_as_half(*(const unsigned short *)(r0 + bo)));
            const float d1 = __half2float(__ushort_as_half(*(const unsigned short *)(r1 + bo)));
            if (KI8) {
                /* rows g, g + 8; dims 4c .. + 3 (a0, a1), 16 + 4c .. (a2, a3):
                 * odd blocks' quants are 4-byte aligned, even ones 2 off */
                const int o = bo + 2 + 4 * c;
                uint32_t a0, a1, a2, a3;
                if (bb & 1) {
                    a0 = *(const uint32_t *)(r0 + o), a2 = *(const uint32_t *)(r0 + o + 16);
                    a1 = *(const uint32_t *)(r1 + o), a3 = *(const uint32_t *)(r1 + o + 16);
                } else {
                    a0 = __byte_perm(attc_ld16(r0 + o), attc_ld16(r0 + o + 2), 0x5410u);
                    a2 = __byte_perm(attc_ld16(r0 + o + 16), attc_ld16(r0 + o + 18), 0x5410u);
                    a1 = __byte_perm(attc_ld16(r1 + o), attc_ld16(r1 + o + 2), 0x5410u);
                    a3 = __byte_perm(attc_ld16(r1 + o + 16), attc_ld16(r1 + o + 18), 0x5410u);
                }
                int cb[4] = {0, 0, 0, 0};
                attc_imma(cb, a0, a1, a2, a3, qb[bb][0][0], qb[bb][1][0]);
                /* lane c = 0: digits 0, 1; c = 1: digits 2, 3 (x 2^16, applied
                 * below); each pair exact in int32 (< 2^28), one rounding */
                acc[0] = fmaf(d0, (float)(cb[0] + cb[1] * 256), acc[0]);
                acc[2] = fmaf(d1, (float)(cb[2] + cb[3] * 256), acc[2]);
            } else {
                float cb[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
                for (int ks = 0; ks < 2; ks++) {
                    const int o = bo + 2 + 16 * ks + 4 * c;
                    uint32_t a0, a1, a2, a3;
                    attc_i8h2<0x4140u, 0x4342u>(attc_ld16(r0 + o), attc_ld16(r0 + o + 2), a0,
                                                a2);
                    attc_i8h2<0x4140u, 0x4342u>(attc_ld16(r1 + o), attc_ld16(r1 + o + 2), a1,
                                                a3);
                    attc_mma(cb, a0, a1, a2, a3, qb[bb][ks][0], qb[bb][ks][1]);
                }
                acc[0] = fmaf(d0, cb[0], acc[0]);
                acc[1] = fmaf(d0, cb[1], acc[1]);
                acc[2] = fmaf(d1, cb[2], acc[2]);
                acc[3] = fmaf(d1, cb[3], acc[3]);
            }
        }
        float x0, x1;
        if (KI8) { /* lane c = 0 + 2^16 x lane c = 1 */
            x0 = fmaf(__shfl_xor_sync(0xffffffffu, acc[0], 1), 65536.0f, acc[0]);
            x1 = fmaf(__shfl_xor_sync(0xffffffffu, acc[2], 1), 65536.0f, acc[2]);
        } else { /* columns: lane c = 0 holds parts h, m; c = 1 holds l (and a zero) */
            x0 = acc[0] + acc[1], x1 = acc[2] + acc[3];
            x0 += __shfl_xor_sync(0xffffffffu, x0, 1);
            x1 += __shfl_xor_sync(0xffffffffu, x1, 1);
        }
        const int first = lo + j * TS, i0 = first + 16 * mt + g;
        if (c == 0) {
            if (i0 < hi) scp[dh][i0] = x0;
            if (i0 + 8 < hi) scp[dh][i0 + 8] = x1;
        }
    }
    float mx = 0.0f;
    double sum = 0.0;
    int vbad = 0;
    float acc[2][4];
#pragma unroll
    for (int m = 0; m < 2; m++)
#pragma unroll
        for (int e = 0; e < 4; e++) acc[m][e] = 0.0f;
    for (int j = ntile; j < nt; j++) { /* V of tile j - ntile's slots */
        atts_wait<S - 2>();
        __syncthreads();
        issue(j + S - 1);
        if (j == ntile) { /* every score half is written (barrier above) */
            int nan = 0;
            for (int i = tid; i < ns; i += THREADS)
                if (vis[i]) {
                    /* the two halves, unscaled (exact), times the scale */
                    const float s = qbad ? NAN : (scp[0][i] + scp[1][i]) * attc_pow2(-kq) * scale;
                    scp[0][i] = s;
                    nan |= isnan(s);
                }
            nan = __syncthreads_or(nan);
            att_group_softmax(scp[0], vis, (int)ns, red, redd, THREADS / 32, lane, wid, tid,
                               THREADS, nan, &mx, &sum);
            if (tid == 0 && !ydirect) {
                out[0] = mx;
                out[1] = (float)sum;
            }
        }
        const unsigned char *buf = tiles + (j % S) * TILE;
        const int first = (j - ntile) * TS, rows = hi - lo - first < TS ? hi - lo - first : TS;
        /* p' of slot `lane` for this warp's block, its tile scale */
        const int bo = 34 * wid;
        float pv = 0.0f;
        if (lane < rows && vis[lo + first + lane])
            pv = scp[0][lo + first + lane] *
                 __half2float(__ushort_as_half(*(const unsigned short *)(buf + lane * RB + bo)));
        float pm = fabsf(pv);
        for (int o = 16; o > 0; o >>= 1) pm = fmaxf(pm, __shfl_xor_sync(0xffffffffu, pm, o));
        if (VI8) {
            /* p' as 30-bit integers in four int8 digits (byte g of P = digit
             * g); B: digit g of slots 4c .. + 3 (b0), 16 + 4c .. (b1) */
            vbad |= __any_sync(0xffffffffu, !isfinite(pv));
            const int kt = attc_exp<30>(pm);
            const int xi = __float2int_rn(pv * attc_pow2(kt));
            uint32_t P = 0;
#pragma unroll
            for (int k = 0; k < 4; k++) P |= attc_digit(xi, k) << (8 * k);
            const uint32_t sel = (uint32_t)(g & 3) | (uint32_t)((g & 3) + 4) << 4;
            uint32_t bq[2];
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const int sl = 16 * hh + 4 * c;
                const uint32_t u0 = __shfl_sync(0xffffffffu, P, sl);
                const uint32_t u1 = __shfl_sync(0xffffffffu, P, sl + 1);
                const uint32_t u2 = __shfl_sync(0xffffffffu, P, sl + 2);
                const uint32_t u3 = __shfl_sync(0xffffffffu, P, sl + 3);
                const uint32_t b = __byte_perm(__byte_perm(u0, u1, sel), __byte_perm(u2, u3, sel),
                                               0x5410u);
                bq[hh] = g < 4 ? b : 0u;
            }
            /* A: rows = dims (tile m: 4g + 2m (row g), 4g + 2m + 1 (row g + 8)),
             * columns = slots 4c .. + 3 (a0, a1) and 16 + 4c .. (a2, a3): the
             * 4-byte words of dims 4g .. + 3 of 4 slots, transposed bytewise */
            uint32_t a[2][4]; /* [slot half][dim 4g + k] */
#pragma unroll
            for (int hh = 0; hh < 2; hh++) {
                const unsigned char *sa = buf + (16 * hh + 4 * c) * RB + bo + 2 + 4 * g;
                uint32_t w[4];
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    const unsigned char *p = sa + k * RB;
                    w[k] = (wid & 1) ? *(const uint32_t *)p
                                     : __byte_perm(attc_ld16(p), attc_ld16(p + 2), 0x5410u);
                }
                const uint32_t t0 = __byte_perm(w[0], w[1], 0x5140u);
                const uint32_t t1 = __byte_perm(w[0], w[1], 0x7362u);
                const uint32_t t2 = __byte_perm(w[2], w[3], 0x5140u);
                const uint32_t t3 = __byte_perm(w[2], w[3], 0x7362u);
                a[hh][0] = __byte_perm(t0, t2, 0x5410u);
                a[hh][1] = __byte_perm(t0, t2, 0x7632u);
                a[hh][2] = __byte_perm(t1, t3, 0x5410u);
                a[hh][3] = __byte_perm(t1, t3, 0x7632u);
            }
            const float untile = attc_pow2(-kt);
#pragma unroll
            for (int m = 0; m < 2; m++) {
                int ci[4] = {0, 0, 0, 0};
                attc_imma(ci, a[0][2 * m], a[0][2 * m + 1], a[1][2 * m], a[1][2 * m + 1], bq[0],
                          bq[1]);
                /* lane c = 0: digits 0, 1; c = 1: digits 2, 3 (x 2^16 at the end) */
                acc[m][0] = fmaf((float)(ci[0] + ci[1] * 256), untile, acc[m][0]);
                acc[m][2] = fmaf((float)(ci[2] + ci[3] * 256), untile, acc[m][2]);
            }
        } else {
            const int kt = attc_exp<15>(pm);
            const float ps = pv * attc_pow2(kt);
            const float ph = attc_part(ps, 0), pmid = attc_part(ps, 1), pl = attc_part(ps, 2);
            const float untile = attc_pow2(-kt);
            float ct[2][4];
#pragma unroll
            for (int m = 0; m < 2; m++)
#pragma unroll
                for (int e = 0; e < 4; e++) ct[m][e] = 0.0f;
#pragma unroll
            for (int ks = 0; ks < 2; ks++) {
                /* B: part g of slots 16ks + 2c + {0,1} (b0) and + {8,9} (b1) */
                float pp[4];
#pragma unroll
                for (int u = 0; u < 4; u++) {
                    const int src = 16 * ks + 2 * c + (u & 1) + 8 * (u >> 1);
                    const float xh = __shfl_sync(0xffffffffu, ph, src);
                    const float xm = __shfl_sync(0xffffffffu, pmid, src);
                    const float xl = __shfl_sync(0xffffffffu, pl, src);
                    pp[u] = g == 0 ? xh : g == 1 ? xm : g == 2 ? xl : 0.0f;
                }
                const uint32_t b0 = attc_pack(pp[0], pp[1]), b1 = attc_pack(pp[2], pp[3]);
                /* A: rows = dims (tile m: 16m + 2g (row g), 16m + 2g + 1 (row g + 8)),
                 * columns = slots 16ks + 2c + {0,1} (a0, a1) and + {8,9} (a2, a3) */
                const unsigned char *sa = buf + (16 * ks + 2 * c) * RB + bo + 2 + 2 * g;
#pragma unroll
                for (int m = 0; m < 2; m++) {
                    uint32_t a0, a1, a2, a3;
                    attc_i8h2<0x4240u, 0x4341u>(attc_ld16(sa + 16 * m),
                                                attc_ld16(sa + RB + 16 * m), a0, a1);
                    attc_i8h2<0x4240u, 0x4341u>(attc_ld16(sa + 8 * RB + 16 * m),
                                                attc_ld16(sa + 9 * RB + 16 * m), a2, a3);
                    attc_mma(ct[m], a0, a1, a2, a3, b0, b1);
                }
            }
#pragma unroll
            for (int m = 0; m < 2; m++)
#pragma unroll
                for (int e = 0; e < 4; e++) acc[m][e] = fmaf(ct[m][e], untile, acc[m][e]);
        }
    }
#pragma unroll
    for (int m = 0; m < 2; m++) {
        float x0, x1;
        int d0, d1; /* the dims of rows g and g + 8 */
        if (VI8) { /* lane c = 0 + 2^16 x lane c = 1 */
            x0 = fmaf(__shfl_xor_sync(0xffffffffu, acc[m][0], 1), 65536.0f, acc[m][0]);
            x1 = fmaf(__shfl_xor_sync(0xffffffffu, acc[m][2], 1), 65536.0f, acc[m][2]);
            if (vbad) x0 = x1 = NAN; /* a non-finite V scale on a visible slot */
            d0 = 32 * wid + 4 * g + 2 * m, d1 = d0 + 1;
        } else { /* lane c = 0: parts h, m of dims (row g, row g + 8); c = 1: l */
            x0 = acc[m][0] + acc[m][1], x1 = acc[m][2] + acc[m][3];
            x0 += __shfl_xor_sync(0xffffffffu, x0, 1);
            x1 += __shfl_xor_sync(0xffffffffu, x1, 1);
            d0 = 32 * wid + 16 * m + 2 * g, d1 = d0 + 1;
        }
        if (c == 0) {
            if (ydirect) {
                ydirect[th * D + d0] = att_finish1(mx, (float)sum, x0);
                ydirect[th * D + d1] = att_finish1(mx, (float)sum, x1);
            } else {
                out[2 + d0] = x0;
                out[2 + d1] = x1;
            }
        }
    }
}

template <bool KI8, bool VI8>
__global__ void __launch_bounds__(ATTC_THREADS, 8)
    k_attention_part_tc(float *part, const float *q, cu_view qv, const cu_kv_q8 *ck,
                        const cu_kv_q8 *cv, const int32_t *cpos, int64_t cpos_stride, int64_t cap,
                        const int32_t *pos, int64_t pos_stride, int64_t H, int64_t context,
                        float scale, float *ydirect) {
    cu_pdl_enter();
    att_part_tc<KI8, VI8>(part, q, qv, ck, cv, cpos, cpos_stride, cap, pos, pos_stride, H,
                          context, scale, ydirect);
}

template <bool KI8, bool VI8>
__global__ void __launch_bounds__(ATTC_THREADS, 8)
    k_attention_part_tc_rows(float *part, const float *q, cu_view qv, cu_rows_kv rc, int64_t cap,
                             const int32_t *pos, int64_t pos_stride, int64_t H, int64_t context,
                             float scale, float *ydirect) {
    cu_pdl_enter();
    const int64_t t = blockIdx.x / H;
    att_part_tc<KI8, VI8>(part, q, qv, (const cu_kv_q8 *)rc.k[t], (const cu_kv_q8 *)rc.v[t],
                          rc.pos[t], 1, cap, pos, pos_stride, H, context, scale, ydirect);
}

/* Launch the tensor-core chunk kernel: one cache (rc == NULL) or rows.
 * Variant 0: q.k and p.V on int8 MMAs; 1: q.k int8, p.V f16; 2: both f16. */
template <bool KI8, bool VI8>
static void attc_launch_t(dim3 grid, cudaStream_t st, float *work, const float *qp, cu_view qv,
                          const void *ck, const void *cv, const int32_t *cp, int64_t cps,
                          const cu_rows_kv *rc, int64_t cap, const int32_t *pp, int64_t pps,
                          int64_t H, int64_t context, float scale, float *yd) {
    if (rc)
        k_attention_part_tc_rows<KI8, VI8><<<grid, ATTC_THREADS, 0, st>>>(
            work, qp, qv, *rc, cap, pp, pps, H, context, scale, yd);
    else
        k_attention_part_tc<KI8, VI8><<<grid, ATTC_THREADS, 0, st>>>(
            work, qp, qv, (const cu_kv_q8 *)ck, (const cu_kv_q8 *)cv, cp, cps, cap, pp, pps, H,
            context, scale, yd);
}
static void attc_launch(int variant, dim3 grid, cudaStream_t st, float *work, const float *qp,
                        cu_view qv, const void *ck, const void *cv, const int32_t *cp,
                        int64_t cps, const cu_rows_kv *rc, int64_t cap, const int32_t *pp,
                        int64_t pps, int64_t H, int64_t context, float scale, float *yd) {
    if (variant == 0)
        attc_launch_t<true, true>(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp, pps, H,
                                  context, scale, yd);
    else if (variant == 1)
        attc_launch_t<true, false>(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp, pps, H,
                                   context, scale, yd);
    else
        attc_launch_t<false, false>(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp, pps, H,
                                    context, scale, yd);
}
