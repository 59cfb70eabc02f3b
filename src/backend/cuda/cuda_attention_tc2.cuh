/*
 * cuda_attention_tc2.cuh — the tensor-core q8_0 chunk kernel with less fixed
 * work per tile (the default for q8_0 caches with head dim 128;
 * XSWARM_CUDA_ATTN=tc1 selects cuda_attention_tc.cuh's kernel). Included by
 * cuda_attention.cu after cuda_attention_tc.cuh, whose helpers (attc_imma,
 * attc_pow2) and numerics it keeps: the same 32-slot tiles (K tiles then V
 * tiles), digits, MMAs, adds and chunk softmax. With tc1's 3 buffers and
 * 256-slot chunks (=tc2c8) its results are tc1's bit for bit; the default
 * streams 512-slot chunks through 4 buffers (k_att2_cfgs). Measured in
 * docs/PERF.md ("attn3").
 *
 * Why: the tc1 kernel is bound by the SM's issue rate (ncu: SM 82%, DRAM
 * 67%), and much of what it issues per tile is not the MMAs:
 *  - the cp.async loop: per copy a division by 17 and 64-bit address
 *    arithmetic. Here each thread's copies of a tile have fixed slots
 *    f = tid + 128 k (row f / NW, word f % NW) whose global offsets from the
 *    tile's first row are computed once per block (NK int32 registers); the
 *    shared offset of copy f is simply WB f. Per copy: one add and the copy.
 *    CP = 0 (default): 8-byte .ca copies, 17 a row, 136-byte rows; CP = 1,
 *    2: 16-byte copies (.cg / .ca) into 144-byte shared rows placed at the
 *    global row's offset mod 16 (ao: the same for every row of the head
 *    when the head count is even: rows are H x 136 bytes apart), 9 a row.
 *    At boost clocks .cg copies pull less from DRAM (PERF.md), .ca ones of
 *    either width time alike.
 *  - the even q8_0 blocks (quants 2 bytes off a 4-byte boundary) took two
 *    2-byte loads and a PRMT per word. K: the block's aligned words 1..7
 *    (quants 2..29) are MMA k-words as they are, word 0 (scale, q0, q1) and
 *    word 8 (q30, q31, the next scale) merge into one k-word {q0, q1, q30,
 *    q31}; q's digits use the same dim
 *    order (an integer dot product does not depend on the order of its
 *    terms, so the sums are tc1's exactly). V: the 4 slots' aligned words
 *    around dims 4g .. 4g + 3 feed the byte transpose directly (the same 8
 *    PRMTs, no merging ones).
 *  - the V weights' digits: (x + 0x80808080) ^ 0x80808080 gives the four
 *    balanced base-256 digits of |x| < 2^30 in one add and one xor (the same
 *    digits as attc_digit's loop), the tile max |p'| is one redux.sync on
 *    the float bits (non-negative floats order as integers), the power of
 *    two comes from the exponent bits instead of frexpf.
 *  - per block: q's row from two strides (no generic view walk with 64-bit
 *    divisions), the rows kernel's cache pointers read from the parameter
 *    bank (__grid_constant__, no local copy).
 * Result (H100, B = 80 full context): 39% fewer instructions, SM 55% and
 * DRAM 82.5% of peak: now the memory side is the limit.
 */

/* the geometry of a copy mode: copy bytes, copies a row (shared row bytes
 * = WB x NW), copies a tile, copies per thread (the last only warp 0's) */
template <int CP> struct att2_geom {
    enum {
        WB = CP ? 16 : 8,
        NW = CP ? 9 : 17,
        SRB = WB * NW,
        NC = ATTC_TS * NW,
        NK = (NC + ATTC_THREADS - 1) / ATTC_THREADS,
        TILE = ATTC_TS * SRB
    };
};

template <int CP> __device__ static inline void att2_cp(unsigned dst, const unsigned char *src) {
    if (CP == 1)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
    else if (CP == 2)
        asm volatile("cp.async.ca.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(dst), "l"(src));
}

/* attc_exp from the exponent bits (frexpf's e for a normal mx; a subnormal
 * one clamps to 100 either way): the same k */
template <int TOP> __device__ static inline int att2_exp(float mx) {
    if (!(mx > 0.0f) || !isfinite(mx)) return 0;
    const int e = (int)((__float_as_uint(mx) >> 23) & 0xffu) - 126;
    const int k = TOP - e;
    return k > 100 ? 100 : k < -100 ? -100 : k;
}

/* the four balanced base-256 digits of x (|x| < 2^30), digit g in byte g */
__device__ static inline uint32_t att2_digits(int x) {
    return ((uint32_t)x + 0x80808080u) ^ 0x80808080u;
}

__device__ static inline uint32_t att2_ld32(const unsigned char *p) {
    return *(const uint32_t *)p;
}

/* dim of q8_0 block position (k-word kw, byte i) in the MMA's k order: odd
 * blocks as stored, even blocks shifted by 2 with {0, 1, 30, 31} last */
template <bool EVEN> __device__ static inline int att2_kdim(int kw, int i) {
    if (!EVEN) return 4 * kw + i;
    return kw < 7 ? 4 * kw + 2 + i : (i < 2 ? i : 28 + i);
}

template <int CP, int S, int CHUNK>
__device__ __forceinline__ void att_part_tc2(float *part, const float *q, int64_t q_rs,
                                             int64_t q_cs, int t, int h,
                                             const unsigned char *kc, const unsigned char *vc,
                                             const int32_t *cpos, int64_t cpos_stride,
                                             int64_t cap, const int32_t *pos,
                                             int64_t pos_stride, int64_t H, int64_t context,
                                             float scale, float *ydirect) {
    typedef att2_geom<CP> G;
    enum { THREADS = ATTC_THREADS, D = ATTC_D, RB = ATTC_RB };
    enum { TS = ATTC_TS, WB = G::WB, NW = G::NW, SRB = G::SRB };
    enum { NK = G::NK, TILE = G::TILE };
    __shared__ __align__(16) float qh[D];
    __shared__ __align__(16) unsigned char tiles[S * TILE];
    __shared__ float scp[2][CHUNK]; /* the two dim halves of each score; [0] then = e */
    __shared__ unsigned char vis[CHUNK];
    __shared__ float red[4];
    __shared__ double redd[4];
    const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
    const int g = lane >> 2, c = lane & 3; /* MMA fragment row group, column pair */
    const int64_t th = blockIdx.x;
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
    const int rowb = (int)H * RB; /* < 2^31 / 32 (att2_fits) */
    const int64_t row0 = ((s0 + lo) * H + h) * (int64_t)RB;
    /* 16-byte copies start at the row's 16-byte boundary; every row of this
     * head has the same offset from it (rowb % 16 == 0) */
    const int ao = CP ? (int)(((uintptr_t)kc + row0) & 15) : 0;
    const unsigned char *kb = kc + row0 - ao, *vb = vc + row0 - ao;
    int goff[NK]; /* copy f = tid + THREADS k: row f / NW, word f % NW */
#pragma unroll
    for (int k = 0; k < NK; k++) {
        const int f = tid + THREADS * k, r = f / NW;
        goff[k] = r * rowb + WB * (f - r * NW);
    }
    const unsigned tsm = (unsigned)__cvta_generic_to_shared(tiles) + WB * tid;
    int ist = 0; /* the buffer the next issue fills */
    /* tile j: K rows of tile j (< ntile), then V; one commit group each */
#define ATT2_ISSUE(j)                                                                           \
    do {                                                                                        \
        const int j_ = (j);                                                                     \
        if (j_ < nt) {                                                                          \
            const int jt = j_ < ntile ? j_ : j_ - ntile, first = jt * TS;                       \
            const int lim = (hi - lo - first < TS ? hi - lo - first : TS) * NW;                 \
            const unsigned char *src = (j_ < ntile ? kb : vb) + (int64_t)first * rowb;          \
            const unsigned dst = tsm + ist * TILE;                                              \
            _Pragma("unroll") for (int k = 0; k < NK; k++) if (tid + THREADS * k < lim)         \
                att2_cp<CP>(dst + THREADS * WB * k, src + goff[k]);                             \
        }                                                                                       \
        asm volatile("cp.async.commit_group;\n" ::);                                            \
        ist = ist == S - 1 ? 0 : ist + 1;                                                       \
    } while (0)
#pragma unroll
    for (int j = 0; j < S - 1; j++) ATT2_ISSUE(j);
    const float *qr = q + t * q_rs + h * D * q_cs;
    for (int d = tid; d < D; d += THREADS) qh[d] = qr[d * q_cs];
    for (int i = tid; i < ns; i += THREADS) {
        const int64_t p = i >= lo && i < hi ? cpos[(s0 + i) * cpos_stride] : -1;
        vis[i] = p >= 0 && pt - p >= 0 && pt - p < context;
    }
    __syncthreads();
    /* q's B fragments for this warp's blocks b = 2 (wid >> 1) + bb: q as
     * 30-bit integers (tc1's), digit g of the dims of k-words c (qb[bb][0])
     * and c + 4 (qb[bb][1]) in the block's k order (att2_kdim) */
    const int mt = wid & 1, dh = wid >> 1;
    int kq, qbad = 0;
    uint32_t qb[2][2];
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
        kq = att2_exp<30>(mx);
        const float f = attc_pow2(kq);
        const uint32_t sel = (uint32_t)(g & 3) | (uint32_t)((g & 3) + 4) << 4; /* bytes g */
#pragma unroll
        for (int bb = 0; bb < 2; bb++)
#pragma unroll
            for (int ks = 0; ks < 2; ks++) {
                const float *qp = qh + 32 * (2 * dh + bb);
                const int kw = c + 4 * ks;
                uint32_t P[4];
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int dim = bb ? att2_kdim<false>(kw, i) : att2_kdim<true>(kw, i);
                    P[i] = att2_digits(__float2int_rn(qp[dim] * f));
                }
                /* bytes g of P0..P3, in order */
                const uint32_t lo2 = __byte_perm(P[0], P[1], sel);
                const uint32_t hi2 = __byte_perm(P[2], P[3], sel);
                qb[bb][ks] = g < 4 ? __byte_perm(lo2, hi2, 0x5410u) : 0u;
            }
    }
    int rst = 0; /* the buffer of the tile being read */
    const int rsel = c == 3 ? 0x5432 : 0x7654; /* even blocks' k-word c + 4 */
    for (int j = 0; j < ntile; j++) { /* scores of tile j's slots */
        asm volatile("cp.async.wait_group %0;\n" ::"n"(S - 2));
        __syncthreads();
        ATT2_ISSUE(j + S - 1);
        const unsigned char *r0 = tiles + rst * TILE + (16 * mt + g) * SRB + ao;
        const unsigned char *r1 = r0 + 8 * SRB;
        rst = rst == S - 1 ? 0 : rst + 1;
        float acc0 = 0.0f, acc2 = 0.0f;
#pragma unroll
        for (int bb = 0; bb < 2; bb++) {
            const int bo = 34 * (2 * dh + bb);
            float d0, d1;
            uint32_t a0, a1, a2, a3;
            if (bb == 0) { /* even block: aligned words 0..8 from bo */
                const uint32_t y0 = att2_ld32(r0 + bo), y1 = att2_ld32(r1 + bo);
                d0 = __half2float(__ushort_as_half((unsigned short)(y0 & 0xffffu)));
                d1 = __half2float(__ushort_as_half((unsigned short)(y1 & 0xffffu)));
                a0 = att2_ld32(r0 + bo + 4 * c + 4);
                a1 = att2_ld32(r1 + bo + 4 * c + 4);
                a2 = __byte_perm(y0, att2_ld32(r0 + bo + 4 * c + 20), rsel);
                a3 = __byte_perm(y1, att2_ld32(r1 + bo + 4 * c + 20), rsel);
            } else { /* odd block: quants 4-byte aligned */
                d0 = __half2float(__ushort_as_half(*(const unsigned short *)(r0 + bo)));
                d1 = __half2float(__ushort_as_half(*(const unsigned short *)(r1 + bo)));
                a0 = att2_ld32(r0 + bo + 2 + 4 * c), a2 = att2_ld32(r0 + bo + 18 + 4 * c);
                a1 = att2_ld32(r1 + bo + 2 + 4 * c), a3 = att2_ld32(r1 + bo + 18 + 4 * c);
            }
            int cb[4] = {0, 0, 0, 0};
            attc_imma(cb, a0, a1, a2, a3, qb[bb][0], qb[bb][1]);
            /* lane c = 0: digits 0, 1; c = 1: digits 2, 3 (x 2^16 below) */
            acc0 = fmaf(d0, (float)(cb[0] + cb[1] * 256), acc0);
            acc2 = fmaf(d1, (float)(cb[2] + cb[3] * 256), acc2);
        }
        const float x0 = fmaf(__shfl_xor_sync(0xffffffffu, acc0, 1), 65536.0f, acc0);
        const float x1 = fmaf(__shfl_xor_sync(0xffffffffu, acc2, 1), 65536.0f, acc2);
        const int i0 = lo + j * TS + 16 * mt + g;
        if (c == 0) {
            if (i0 < hi) scp[dh][i0] = x0;
            if (i0 + 8 < hi) scp[dh][i0 + 8] = x1;
        }
    }
    float mx = 0.0f;
    double sum = 0.0;
    int vbad = 0;
    float acc[2][2] = {{0.0f, 0.0f}, {0.0f, 0.0f}}; /* [m tile][row g, g + 8] */
    const int bo = 34 * wid; /* V: this warp's q8_0 block */
    for (int j = ntile; j < nt; j++) { /* V of tile j - ntile's slots */
        asm volatile("cp.async.wait_group %0;\n" ::"n"(S - 2));
        __syncthreads();
        ATT2_ISSUE(j + S - 1);
        if (j == ntile) { /* every score half is written (barrier above) */
            int nan = 0;
            for (int i = tid; i < ns; i += THREADS)
                if (vis[i]) {
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
        const unsigned char *buf = tiles + rst * TILE + ao;
        rst = rst == S - 1 ? 0 : rst + 1;
        const int first = (j - ntile) * TS, rows = hi - lo - first < TS ? hi - lo - first : TS;
        /* p' of slot `lane` for this warp's block */
        float pv = 0.0f;
        if (lane < rows && vis[lo + first + lane])
            pv = scp[0][lo + first + lane] *
                 __half2float(__ushort_as_half(*(const unsigned short *)(buf + lane * SRB + bo)));
        vbad |= __any_sync(0xffffffffu, !isfinite(pv));
        const float pm =
            __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(fabsf(pv))));
        const int kt = att2_exp<30>(pm);
        const uint32_t P = att2_digits(__float2int_rn(pv * attc_pow2(kt)));
        /* B: digit g of slots 4c .. + 3 (bq[0]), 16 + 4c .. (bq[1]) */
        const uint32_t sel = (uint32_t)(g & 3) | (uint32_t)((g & 3) + 4) << 4;
        uint32_t bq[2];
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const int sl = 16 * hh + 4 * c;
            const uint32_t u0 = __shfl_sync(0xffffffffu, P, sl);
            const uint32_t u1 = __shfl_sync(0xffffffffu, P, sl + 1);
            const uint32_t u2 = __shfl_sync(0xffffffffu, P, sl + 2);
            const uint32_t u3 = __shfl_sync(0xffffffffu, P, sl + 3);
            const uint32_t b =
                __byte_perm(__byte_perm(u0, u1, sel), __byte_perm(u2, u3, sel), 0x5410u);
            bq[hh] = g < 4 ? b : 0u;
        }
        /* A: rows = dims (tile m: 4g + 2m (row g), 4g + 2m + 1 (row g + 8)),
         * columns = slots 4c .. + 3 (a0, a1), 16 + 4c .. (a2, a3): dims
         * 4g .. + 3 of 4 slots transposed bytewise */
        uint32_t a[2][4]; /* [slot half][dim 4g + k] */
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            const unsigned char *sa = buf + (16 * hh + 4 * c) * SRB + bo + 4 * g;
            uint32_t t0, t1, t2, t3;
            if (wid & 1) { /* quants at bo + 2 + 4g: aligned */
                const uint32_t w0 = att2_ld32(sa + 2), w1 = att2_ld32(sa + SRB + 2);
                const uint32_t w2 = att2_ld32(sa + 2 * SRB + 2), w3 = att2_ld32(sa + 3 * SRB + 2);
                t0 = __byte_perm(w0, w1, 0x5140u);
                t1 = __byte_perm(w0, w1, 0x7362u);
                t2 = __byte_perm(w2, w3, 0x5140u);
                t3 = __byte_perm(w2, w3, 0x7362u);
            } else { /* dims 4g, 4g + 1: bytes 2, 3 of word bo + 4g; 4g + 2, + 3: the
                      * next word's bytes 0, 1 */
                const uint32_t x0 = att2_ld32(sa), y0 = att2_ld32(sa + 4);
                const uint32_t x1 = att2_ld32(sa + SRB), y1 = att2_ld32(sa + SRB + 4);
                const uint32_t x2 = att2_ld32(sa + 2 * SRB), y2 = att2_ld32(sa + 2 * SRB + 4);
                const uint32_t x3 = att2_ld32(sa + 3 * SRB), y3 = att2_ld32(sa + 3 * SRB + 4);
                t0 = __byte_perm(x0, x1, 0x7362u);
                t1 = __byte_perm(y0, y1, 0x5140u);
                t2 = __byte_perm(x2, x3, 0x7362u);
                t3 = __byte_perm(y2, y3, 0x5140u);
            }
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
            acc[m][1] = fmaf((float)(ci[2] + ci[3] * 256), untile, acc[m][1]);
        }
    }
#undef ATT2_ISSUE
#pragma unroll
    for (int m = 0; m < 2; m++) {
        float x0 = fmaf(__shfl_xor_sync(0xffffffffu, acc[m][0], 1), 65536.0f, acc[m][0]);
        float x1 = fmaf(__shfl_xor_sync(0xffffffffu, acc[m][1], 1), 65536.0f, acc[m][1]);
        if (vbad) x0 = x1 = NAN; /* a non-finite V scale on a visible slot */
        const int d0 = 32 * wid + 4 * g + 2 * m, d1 = d0 + 1;
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

template <int CP, int MINB, int S, int CH>
__global__ void __launch_bounds__(ATTC_THREADS, MINB)
    k_attention_part_tc2(float *part, const float *q, int64_t q_rs, int64_t q_cs,
                         const unsigned char *ck, const unsigned char *cv, const int32_t *cpos,
                         int64_t cpos_stride, int64_t cap, const int32_t *pos,
                         int64_t pos_stride, int H, int64_t context, float scale,
                         float *ydirect) {
    cu_pdl_enter();
    const int t = (int)(blockIdx.x / (unsigned)H), h = (int)(blockIdx.x - t * (unsigned)H);
    att_part_tc2<CP, S, CH>(part, q, q_rs, q_cs, t, h, ck, cv, cpos, cpos_stride, cap, pos,
                            pos_stride, H, context, scale, ydirect);
}

/* rows: __grid_constant__ reads row t's pointers from the parameter bank
 * (no copy of the 2 KB struct to local memory for the dynamic index) */
template <int CP, int MINB, int S, int CH>
__global__ void __launch_bounds__(ATTC_THREADS, MINB)
    k_attention_part_tc2_rows(float *part, const float *q, int64_t q_rs, int64_t q_cs,
                              const __grid_constant__ cu_rows_kv rc, int64_t cap,
                              const int32_t *pos, int64_t pos_stride, int H, int64_t context,
                              float scale, float *ydirect) {
    cu_pdl_enter();
    const int t = (int)(blockIdx.x / (unsigned)H), h = (int)(blockIdx.x - t * (unsigned)H);
    att_part_tc2<CP, S, CH>(part, q, q_rs, q_cs, t, h, (const unsigned char *)rc.k[t],
                            (const unsigned char *)rc.v[t], rc.pos[t], 1, cap, pos, pos_stride, H,
                            context, scale, ydirect);
}

/* Launch the tc2 chunk kernel with copy mode cp (att2_geom): one cache
 * (rc == NULL) or rows. */
template <int CP, int MINB, int S, int CH>
static void att2_launch_t(dim3 grid, cudaStream_t st, float *work, const float *qp, cu_view qv,
                          const void *ck, const void *cv, const int32_t *cp, int64_t cps,
                          const cu_rows_kv *rc, int64_t cap, const int32_t *pp, int64_t pps,
                          int64_t H, int64_t context, float scale, float *yd) {
    /* q rows of a 2-d view (att2_fits): row t at t * stride[0] */
    const int64_t rs = qv.stride[0], cs = qv.stride[1];
    if (rc)
        k_attention_part_tc2_rows<CP, MINB, S, CH><<<grid, ATTC_THREADS, 0, st>>>(
            work, qp, rs, cs, *rc, cap, pp, pps, (int)H, context, scale, yd);
    else
        k_attention_part_tc2<CP, MINB, S, CH><<<grid, ATTC_THREADS, 0, st>>>(
            work, qp, rs, cs, (const unsigned char *)ck, (const unsigned char *)cv, cp, cps, cap,
            pp, pps, (int)H, context, scale, yd);
}
/* Whether the tc2 kernel with copy mode cp handles caches already fit for
 * tc1 (attc_fits): q a 2-d view, 32 slot rows within int32 offsets and, for
 * 16-byte copies, an even head count (every row of a head at the same
 * offset mod 16). */
static bool att2_fits(int cp, int n_heads, int q_ndim) {
    return q_ndim == 2 && (cp == 0 || n_heads % 2 == 0) &&
           (int64_t)n_heads * ATTC_RB * ATTC_TS < 2147483647LL;
}

typedef void (*att2_launch_fn)(dim3 grid, cudaStream_t st, float *work, const float *qp,
                               cu_view qv, const void *ck, const void *cv, const int32_t *cp,
                               int64_t cps, const cu_rows_kv *rc, int64_t cap, const int32_t *pp,
                               int64_t pps, int64_t H, int64_t context, float scale, float *yd);

/* The tc2 configurations in the binary: copy mode (att2_geom), blocks per
 * SM asked of ptxas (8: up to 64 registers; 10: fewer registers, more
 * blocks resident), tile buffers (3 / 4: 2 / 3 tiles in flight), slots a
 * chunk. The first is the default (H100, B = 80 full q8_0: 778 us, tc1
 * 905 us); XSWARM_CUDA_ATTN=tc2NAME picks another (A/B timing, all timed
 * in docs/PERF.md "attn3"). tc2c8 (3 buffers, 256-slot chunks: tc1's
 * layout) computes tc1's bits exactly; the default's 512-slot chunks add
 * the same products in other chunk groups (nmse vs ref alike). */
typedef struct att2_cfg {
    const char *name;
    int cp, chunk;
    att2_launch_fn launch;
} att2_cfg;
static const att2_cfg k_att2_cfgs[] = {
    {"c8s4k512", 0, 512, att2_launch_t<0, 8, 4, 512>},
    {"c8", 0, 256, att2_launch_t<0, 8, 3, 256>},
    {"c8s4", 0, 256, att2_launch_t<0, 8, 4, 256>},
    {"c8m10", 0, 256, att2_launch_t<0, 10, 3, 256>},
    {"c8k512", 0, 512, att2_launch_t<0, 8, 3, 512>},
    {"cg", 1, 256, att2_launch_t<1, 8, 3, 256>},
    {"ca", 2, 256, att2_launch_t<2, 8, 3, 256>},
    {"cas4", 2, 256, att2_launch_t<2, 8, 4, 256>},
    {"cak512", 2, 512, att2_launch_t<2, 8, 3, 512>},
};
enum { ATT2_NCFG = (int)(sizeof k_att2_cfgs / sizeof k_att2_cfgs[0]) };

/* the configuration named by "tc2NAME" (NULL or "tc2": the default); -1 if none */
static int att2_cfg_of(const char *mode) {
    if (!mode || strncmp(mode, "tc2", 3) != 0) return -1;
    if (!mode[3]) return 0;
    for (int i = 0; i < ATT2_NCFG; i++)
        if (strcmp(mode + 3, k_att2_cfgs[i].name) == 0) return i;
    return -1;
}
