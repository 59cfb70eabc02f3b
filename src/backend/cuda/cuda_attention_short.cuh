/*
 * cuda_attention_short.cuh — attention over a ring of at most ATTH_MAX
 * slots (the depformer's 8), one warp per (row, head). Included by
 * cuda_attention.cu only (it uses att_chunk_live and att_finish1).
 *
 * Why: the chunk kernels are built for long rings; on the depformer's 8
 * slots their 128-thread blocks spent ~7 us a call (ncu, H100) on staging q
 * and the visibility in shared memory, three block barriers and a
 * cross-warp sum, for ~16 KB of K and V. Here a warp issues every load of
 * its head at once (q, all K and V values of its lanes' dims, the slot
 * positions), reduces each score with one butterfly, and keeps the softmax
 * in registers: one memory round trip and no block barrier.
 *
 * Numerics, as the chunk kernels: scores dot(q, k) * scale in f32, the max
 * over visible slots (NaN if any visible score is NaN), weights
 * (float)exp((double)s - (double)max) summed in f64 in slot order, V
 * accumulated with fmaf in slot order, y = att_finish1(max, (float)sum, o).
 * The dot's order differs (lane L sums its D / 32 dims, then the butterfly),
 * so values match ref within the parity tolerance, not the chunk kernels'
 * bits. The kernel is picked by capacity, head dim and dtype only (never by
 * the number of rows), so a row gives the same bits alone or in a batch.
 * XSWARM_CUDA_ATTN=noshort turns it off (A/B; =old and =wide do too).
 */
#pragma once

#define ATTH_MAX 16  /* slots of the ring at most */
#define ATTH_WARPS 4 /* warps (heads) per block */

/* Whether the short kernel takes these caches: capacity <= ATTH_MAX, head
 * dim 32, 64 or 128, f32 or bf16 K and V, contiguous. */
static bool atth_fits(int64_t D, const xs_kv_cache *const *caches, int B) {
    if (D != 32 && D != 64 && D != 128) return false;
    for (int b = 0; b < B; b++) {
        const xs_kv_cache *c = caches[b];
        if (c->capacity > ATTH_MAX || c->k.dtype != c->v.dtype) return false;
        if (c->k.dtype != XS_F32 && c->k.dtype != XS_BF16) return false;
        if (!xs_tensor_is_contiguous(&c->k) || !xs_tensor_is_contiguous(&c->v)) return false;
    }
    return true;
}

/* Output th = t * H + h (row t, head h) of a ring ck / cv / cpos; DPL = D / 32
 * dims per lane (lane L: dims L * DPL ..). */
template <typename KT, int DPL>
__device__ __forceinline__ void att_short_head(float *y, const float *q, int64_t qrs, int64_t qs,
                                               const KT *ck, const KT *cv, const int32_t *cpos,
                                               int64_t cps, int64_t cap, const int32_t *pos,
                                               int64_t pps, int64_t H, int64_t context,
                                               float scale, int64_t th) {
    constexpr int D = 32 * DPL;
    const int lane = threadIdx.x & 31;
    const int64_t t = th / H, h = th % H, pt = pos[t * pps];
    float *yr = y + th * D + lane * DPL;
    int64_t lo, hi;
    if (!att_chunk_live(pt, context, cap, 0, cap, &lo, &hi)) {
#pragma unroll
        for (int j = 0; j < DPL; j++) yr[j] = 0.0f;
        return;
    }
    const int64_t hd = H * D, col = h * D + lane * DPL;
    float kk[ATTH_MAX][DPL], vv[ATTH_MAX][DPL];
    int32_t p[ATTH_MAX];
#pragma unroll
    for (int s = 0; s < ATTH_MAX; s++) {
        const bool in = s >= lo && s < hi;
        p[s] = in ? cpos[s * cps] : -1;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            kk[s][j] = in ? kv_dev_load(ck + s * hd + col + j) : 0.0f;
            vv[s][j] = in ? kv_dev_load(cv + s * hd + col + j) : 0.0f;
        }
    }
    const float *qr = q + t * qrs;
    float qq[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) qq[j] = qr[(col + j) * qs];
    float sc[ATTH_MAX], mx = -INFINITY;
    bool anynan = false;
    unsigned vis = 0;
#pragma unroll
    for (int s = 0; s < ATTH_MAX; s++) {
        float dot = 0.0f;
#pragma unroll
        for (int j = 0; j < DPL; j++) dot = fmaf(qq[j], kk[s][j], dot);
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        sc[s] = dot * scale;
        if (p[s] >= 0 && pt - p[s] >= 0 && pt - p[s] < context) {
            vis |= 1u << s;
            if (isnan(sc[s])) anynan = true;
            if (sc[s] > mx) mx = sc[s];
        }
    }
    if (anynan) mx = NAN;
    double sum = 0.0;
    float acc[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) acc[j] = 0.0f;
#pragma unroll
    for (int s = 0; s < ATTH_MAX; s++) {
        if (!(vis >> s & 1u)) continue; /* a hidden slot's v may be NaN: skipped, not 0 * v */
        const float e = (float)exp((double)sc[s] - (double)mx);
        sum += e;
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[j] = fmaf(e, vv[s][j], acc[j]);
    }
#pragma unroll
    for (int j = 0; j < DPL; j++) yr[j] = att_finish1(mx, (float)sum, acc[j]);
}

template <typename KT, int DPL>
__global__ void __launch_bounds__(32 * ATTH_WARPS)
    k_attention_short(float *y, const float *q, int64_t qrs, int64_t qs, const KT *ck, const KT *cv,
                      const int32_t *cpos, int64_t cps, int64_t cap, const int32_t *pos,
                      int64_t pps, int64_t H, int64_t rows, int64_t context, float scale) {
    cu_pdl_enter();
    const int64_t th = (int64_t)blockIdx.x * ATTH_WARPS + (threadIdx.x >> 5);
    if (th >= rows * H) return; /* whole warp */
    att_short_head<KT, DPL>(y, q, qrs, qs, ck, cv, cpos, cps, cap, pos, pps, H, context, scale, th);
}

template <typename KT, int DPL>
__global__ void __launch_bounds__(32 * ATTH_WARPS)
    k_attention_short_rows(float *y, const float *q, int64_t qrs, int64_t qs, cu_rows_kv rc, int64_t cap,
                           const int32_t *pos, int64_t pps, int64_t H, int64_t rows,
                           int64_t context, float scale) {
    cu_pdl_enter();
    const int64_t th = (int64_t)blockIdx.x * ATTH_WARPS + (threadIdx.x >> 5);
    if (th >= rows * H) return;
    const int64_t t = th / H;
    att_short_head<KT, DPL>(y, q, qrs, qs, (const KT *)rc.k[t], (const KT *)rc.v[t], rc.pos[t], 1, cap,
                            pos, pps, H, context, scale, th);
}

/* Launch over `rows` rows: rc (rows) or one cache (ck, cv, cpos, cps). q is
 * 2-D: row t at qp + t * qrs, values qs apart (no cu_view: the kernel keeps
 * no per-thread stack frame). */
template <typename KT>
static void atth_launch(int64_t D, cudaStream_t st, float *y, const float *qp, int64_t qrs, int64_t qs,
                        const void *ck, const void *cv, const int32_t *cp, int64_t cps,
                        const cu_rows_kv *rc, int64_t cap, const int32_t *pp, int64_t pps,
                        int64_t H, int64_t rows, int64_t context, float scale) {
    const unsigned grid = (unsigned)((rows * H + ATTH_WARPS - 1) / ATTH_WARPS);
#define ATTH_GO(DPL)                                                                           \
    do {                                                                                       \
        if (rc)                                                                                \
            k_attention_short_rows<KT, DPL><<<grid, 32 * ATTH_WARPS, 0, st>>>(                \
                y, qp, qrs, qs, *rc, cap, pp, pps, H, rows, context, scale);                        \
        else                                                                                   \
            k_attention_short<KT, DPL><<<grid, 32 * ATTH_WARPS, 0, st>>>(                     \
                y, qp, qrs, qs, (const KT *)ck, (const KT *)cv, cp, cps, cap, pp, pps, H, rows, \
                context, scale);                                                               \
    } while (0)
    if (D == 32) ATTH_GO(1);
    else if (D == 64) ATTH_GO(2);
    else ATTH_GO(4);
#undef ATTH_GO
}
