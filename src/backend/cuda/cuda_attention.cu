/*
 * cuda_attention.cu — attention over the ring KV cache, one query row or B
 * rows each with its own cache (backend.h attention / attention_rows).
 *
 * Ring invariants (backend.h): the slot of position p is p % capacity;
 * cache.pos[slot] is the position stored there, -1 when empty. Attention
 * reads cache.pos on the device to decide which slots a query sees
 * (0 <= pos[t] - p < context), so it needs no host knowledge of how full
 * the ring is and can be captured in a graph. Cache reads: cuda_kv_access.cuh.
 *
 * Five chunk kernels, one merge: the first one (one value per load;
 * XSWARM_CUDA_ATTN=old), the wide-load one (16 values a lane through
 * registers; =wide, and bf16 / f32 caches by default), the staged one (K
 * and V head rows copied to shared memory with cp.async; =stage, and q8_0
 * caches whose head dim is not 128) and two tensor-core ones (the staged
 * tiles, q.k and p.V on int8 MMAs: cuda_attention_tc.cuh, =tc1, and the
 * same with less work around the MMAs, cuda_attention_tc2.cuh, q8_0 caches
 * with head dim 128 by default). att_pick and attc_variant say which runs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_kv_access.cuh"

/* ---- attention -------------------------------------------------------------------- */
/*
 * Split over the ring ("flash decoding"): one decode query must read every
 * visible slot, and one block per (query, head) would leave most of the
 * GPU idle and serialize thousands of slot loads. So the slots are cut in
 * chunks of ATT_CHUNK (ATTW_CHUNK in the wide kernel below); block
 * (t*H + h, chunk) writes a partial result
 * {m = max score, l = sum exp(score - m), o[D] = sum exp(score - m) v} to
 * the work buffer, and a second kernel merges the chunks:
 *   M = max m_c, L = sum l_c exp(m_c - M), y = sum o_c exp(m_c - M) / L.
 * Chunks with no visible slot have l = 0 and are skipped. A NaN score from
 * the data makes m (and so y) NaN, as in ref; a query with no visible slot
 * gives zeros, as in ref.
 *
 * Only a few slots are filled early in a conversation, but the grid is
 * sized by the capacity (the host must not read positions: graphs replay
 * the launch). So each block first works out, from its query position pt
 * alone, the ring interval that can hold a visible position: the n =
 * min(pt + 1, context, capacity) slots of positions pt-n+1 .. pt (any slot
 * holding a visible position is one of them). A chunk outside it writes
 * {-inf, 0} and exits at once, a chunk that meets it walks only the slots
 * inside it (35 filled slots: 35 slots, not 128); the visibility test
 * stays ref's rule on cache.pos, so results are bit-identical to walking
 * every slot of every chunk.
 * Loads of K and V are issued several slots at a time (unconditionally:
 * every slot below capacity is allocated) before they are used, so a chunk
 * costs a few memory round trips rather than one per slot; the FMA order
 * per slot and per output is unchanged. With a single chunk (small rings:
 * the depformer) the chunk kernel writes y itself with the merge's
 * arithmetic, saving the second launch.
 */

#define ATT_CHUNK 128
#define ATT_THREADS 128
#define ATT_KU 4  /* slots per warp whose K loads are in flight together */
#define ATT_VU 16 /* slots whose V loads are in flight together */

/* The part [*lo, *hi) of chunk [s0, s0 + ns) (chunk-relative) that meets the
 * ring interval of the n slots of positions pt-n+1 .. pt (n = min(pt + 1,
 * context, cap)); false when they do not meet. Where the interval wraps
 * and meets the chunk in two pieces, the whole chunk. */
__device__ static inline bool att_chunk_live(int64_t pt, int64_t context, int64_t cap,
                                             int64_t s0, int64_t ns, int64_t *lo, int64_t *hi) {
    int64_t n = pt + 1;
    if (context < n) n = context;
    if (cap < n) n = cap;
    *lo = 0, *hi = ns;
    if (n <= 0) return false;
    if (n == cap) return true;
    const int64_t a = (pt - n + 1) % cap; /* pt - n + 1 >= 0 */
    int64_t b0 = a, b1 = a + n;           /* [b0, b1) in slots, maybe past cap */
    if (b1 > cap) {                       /* wraps: [a, cap) and [0, b1 - cap) */
        const bool first = s0 + ns > a, second = s0 < b1 - cap;
        if (first && second) return true;
        if (!first && !second) return false;
        if (second) b0 = 0, b1 -= cap;
    }
    if (!(s0 < b1 && s0 + ns > b0)) return false;
    *lo = b0 > s0 ? b0 - s0 : 0;
    *hi = b1 < s0 + ns ? b1 - s0 : ns;
    return true;
}

/* What a chunk with no visible slot leaves: zeros in y when the chunk is
 * the whole ring (ydirect), else the record {-inf, 0} the merge skips.
 * The head's threads are t = 0 .. nt - 1; the caller returns after it. */
__device__ static inline void att_chunk_empty(float *ydirect, int64_t th, int64_t D, float *out,
                                              int t, int nt) {
    if (ydirect)
        for (int64_t d = t; d < D; d += nt) ydirect[th * D + d] = 0.0f;
    else if (t == 0) {
        out[0] = -INFINITY;
        out[1] = 0.0f;
    }
}

/* The merge of k_attention_merge for chunk values (m, l, o) of one output. */
__device__ static inline float att_finish1(float m, float l, float o) {
    float M = -INFINITY;
    if (isnan(m)) M = NAN;
    else if (l > 0.0f && m > M) M = m;
    double L = 0.0, O = 0.0;
    if ((l > 0.0f) || isnan(m)) {
        const double f = exp((double)m - (double)M);
        L += (double)l * f;
        O += (double)o * f;
    }
    return (L > 0.0 || isnan(L)) ? (float)(O / L) : 0.0f;
}

/* The softmax of a chunk's visible scores, shared by the chunk kernels:
 * the chunk max (NaN if any score is NaN), sc[i] <- exp(sc[i] - max) for
 * the visible slots, and their sum in f64. It runs over one head group of
 * the block: the group's threads are lt = 0 .. tph - 1 (warps lw = 0 ..
 * nwg - 1 of the group), red / redd its slice of the block's per-warp
 * scratch; every thread of the group gets mx and sum. Every thread of the
 * block calls it after the scores are written (it synchronizes the block
 * twice). */
__device__ __forceinline__ static void att_group_softmax(float *sc, const unsigned char *vis,
                                                          int ns, float *red, double *redd,
                                                          int nwg, int lane, int lw, int lt,
                                                          int tph, int anynan, float *mx_out,
                                                          double *sum_out) {
    float mx = -INFINITY;
    for (int i = lt; i < ns; i += tph)
        if (vis[i] && sc[i] > mx) mx = sc[i];
    for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    if (lane == 0) red[lw] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int i = 0; i < nwg; i++) mx = fmaxf(mx, red[i]);
    if (anynan) mx = NAN;
    double sum = 0.0;
    for (int i = lt; i < ns; i += tph)
        if (vis[i]) {
            const float e = (float)exp((double)sc[i] - (double)mx);
            sc[i] = e;
            sum += e;
        }
    for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    if (lane == 0) redd[lw] = sum;
    __syncthreads();
    sum = 0.0;
    for (int i = 0; i < nwg; i++) sum += redd[i];
    *mx_out = mx;
    *sum_out = sum;
}

/* The whole block as one group. */
__device__ __forceinline__ static void att_chunk_softmax(float *sc, const unsigned char *vis,
                                                         int64_t ns, float *red, double *redd,
                                                         int nw, int lane, int wid, int anynan,
                                                         float *mx_out, double *sum_out) {
    att_group_softmax(sc, vis, (int)ns, red, redd, nw, lane, wid, (int)threadIdx.x,
                      (int)blockDim.x, anynan, mx_out, sum_out);
}

/* The chunk kernel's body, shared by k_attention_part (one cache) and
 * k_attention_part_rows (row t's own cache), so both compute the same bits. */
template <typename KT>
__device__ __forceinline__ void att_part(float *part, const float *q, const cu_view &qv,
                                         const KT *ck, const cu_view &ckv, const KT *cv,
                                         const cu_view &cvv, const int32_t *cpos,
                                         int64_t cpos_stride, int64_t cap, const int32_t *pos,
                                         int64_t pos_stride, int64_t H, int64_t D,
                                         int64_t context, float scale, float *ydirect) {
    extern __shared__ float qh[]; /* the query head, D floats */
    __shared__ float sc[ATT_CHUNK];
    __shared__ unsigned char vis[ATT_CHUNK];
    __shared__ float red[32];
    __shared__ double redd[32];
    __shared__ int anynan;
    const int64_t th = blockIdx.x, t = th / H, h = th % H;
    const int64_t s0 = (int64_t)blockIdx.y * ATT_CHUNK;
    const int64_t ns = cap - s0 < ATT_CHUNK ? cap - s0 : ATT_CHUNK;
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int64_t pt = pos[t * pos_stride];
    float *out = part + (th * gridDim.y + blockIdx.y) * (D + 2);
    int64_t lo, hi; /* only slots s0 + [lo, hi) can be visible */
    if (!att_chunk_live(pt, context, cap, s0, ns, &lo, &hi)) { /* none can */
        att_chunk_empty(ydirect, th, D, out, (int)threadIdx.x, (int)blockDim.x);
        return;
    }
    const float *qr = q + cu_row_off(qv, t);
    const int64_t qs = cu_inner_stride(qv);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) qh[d] = qr[(h * D + d) * qs];
    for (int64_t i = threadIdx.x; i < ns; i += blockDim.x) {
        const int64_t p = i >= lo && i < hi ? cpos[(s0 + i) * cpos_stride] : -1;
        vis[i] = p >= 0 && pt - p >= 0 && pt - p < context;
    }
    if (threadIdx.x == 0) anynan = 0;
    __syncthreads();
    /* scores: one warp per slot, lanes over the head dim */
    if (D % 32 == 0 && D <= 128) {
        /* ATT_KU slots per warp at once, each lane's (up to 4) K values of
         * all of them loaded before any is used; same FMA order as below */
        const int nj = (int)(D / 32);
        for (int64_t i0 = lo + wid; i0 < hi; i0 += ATT_KU * nw) {
            float kk[ATT_KU][4];
#pragma unroll
            for (int u = 0; u < ATT_KU; u++) {
                const int64_t i = i0 + (int64_t)u * nw;
#pragma unroll
                for (int j = 0; j < 4; j++)
                    kk[u][j] = (i < hi && j < nj) ? kv_at(ck, ckv, s0 + i, h * D + lane + 32 * j)
                                                  : 0.0f;
            }
#pragma unroll
            for (int u = 0; u < ATT_KU; u++) {
                const int64_t i = i0 + (int64_t)u * nw;
                if (i >= hi || !vis[i]) continue; /* uniform over the warp */
                float dot = 0.0f;
#pragma unroll
                for (int j = 0; j < 4; j++)
                    if (j < nj) dot = fmaf(qh[lane + 32 * j], kk[u][j], dot);
                for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
                if (lane == 0) {
                    sc[i] = dot * scale;
                    if (isnan(sc[i])) anynan = 1;
                }
            }
        }
    } else {
        for (int64_t i = lo + wid; i < hi; i += nw) {
            if (!vis[i]) continue;
            float dot = 0.0f;
            for (int64_t d = lane; d < D; d += 32)
                dot = fmaf(qh[d], kv_at(ck, ckv, s0 + i, h * D + d), dot);
            for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (lane == 0) {
                sc[i] = dot * scale;
                if (isnan(sc[i])) anynan = 1;
            }
        }
    }
    __syncthreads();
    float mx;
    double sum;
    att_chunk_softmax(sc, vis, ns, red, redd, nw, lane, wid, anynan, &mx, &sum);
    if (threadIdx.x == 0 && !ydirect) {
        out[0] = mx;
        out[1] = (float)sum;
    }
    /* unnormalized output, one thread per head dim (coalesced over d) */
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int64_t i = lo; i < hi; i += ATT_VU) { /* ascending slots: ref's FMA order */
            float vv[ATT_VU];
#pragma unroll
            for (int u = 0; u < ATT_VU; u++)
                vv[u] = i + u < hi ? kv_at(cv, cvv, s0 + i + u, h * D + d) : 0.0f;
#pragma unroll
            for (int u = 0; u < ATT_VU; u++)
                if (i + u < hi && vis[i + u]) acc = fmaf(sc[i + u], vv[u], acc);
        }
        if (ydirect) ydirect[th * D + d] = att_finish1(mx, (float)sum, acc);
        else out[2 + d] = acc;
    }
}

template <typename KT>
__global__ void k_attention_part(float *part, const float *q, cu_view qv, const KT *ck,
                                 cu_view ckv, const KT *cv, cu_view cvv, const int32_t *cpos,
                                 int64_t cpos_stride, int64_t cap, const int32_t *pos,
                                 int64_t pos_stride, int64_t H, int64_t D, int64_t context,
                                 float scale, float *ydirect) {
    cu_pdl_enter();
    att_part<KT>(part, q, qv, ck, ckv, cv, cvv, cpos, cpos_stride, cap, pos, pos_stride, H, D,
                 context, scale, ydirect);
}

/* Rows: query row t attends over its own cache (pointers by value in the
 * launch: graph-safe). Caches are contiguous and alike, so one view each. */
template <typename KT>
__global__ void k_attention_part_rows(float *part, const float *q, cu_view qv, cu_rows_kv rc,
                                      cu_view ckv, cu_view cvv, int64_t cap, const int32_t *pos,
                                      int64_t pos_stride, int64_t H, int64_t D, int64_t context,
                                      float scale, float *ydirect) {
    cu_pdl_enter();
    const int64_t t = blockIdx.x / H;
    att_part<KT>(part, q, qv, (const KT *)rc.k[t], ckv, (const KT *)rc.v[t], cvv, rc.pos[t], 1,
                 cap, pos, pos_stride, H, D, context, scale, ydirect);
}

/* ---- attention, wide loads (XSWARM_CUDA_ATTN=wide; =old: the kernel above) -----------
 *
 * The kernel above reads the cache one value per thread per load (for q8_0
 * one byte and its block's 2-byte scale per value, V one thread per head
 * dim): ~0.4 TB/s over full caches (3000 slots x 32 heads x B rows). This
 * one gives each lane 16 consecutive values of a head row (ATTW_VPL): a
 * q8_0 lane reads its block's scale and 16 qs bytes as 4-byte words (blocks
 * are 34 bytes, so only 2-byte aligned: the aligned span is loaded and
 * shifted, as the weight GEMV does), a bf16 lane 8 (or 9) words, an f32
 * lane 16 floats. LPS = D / 16 lanes share a slot, so a warp works on
 * 32 / LPS slots at once. Over full caches the kernel is latency bound, so
 * the raw words of several slots per lane group are in flight together
 * (attw_raw: a few registers a slot; decoded at use), the first K batch is
 * issued before the block's first barrier and the first V batch before the
 * chunk's softmax.
 * Scores: each lane's 16 products summed with its slot's lanes by a fixed
 * butterfly. V: slot stream g (one lane group of one warp) accumulates its
 * slots (ascending) for its lane's 16 dims in registers; the streams' sums
 * are then added in stream order through shared memory. The chunk grid, the
 * live interval, the visibility rule, the softmax of a chunk and the merge
 * are the old kernel's, so NaN/inf and "no visible slot -> zeros" behave
 * alike; only the order of the additions within a chunk differs (within
 * the parity tolerance of ref). A row's result depends only on its own q,
 * cache and position: the layout depends on D alone.
 * Used where 16 divides D and D / 16 divides 32 (D = 16 .. 512).
 */
#define ATTW_VPL 16
/* Tuning constants (issue 8, engineer attntune): overridable with -D so
 * variants can be built and timed side by side; the defaults and the
 * measured reason for them are in docs/PERF.md ("Attention over full KV
 * caches with wide loads"). ATTW_CHUNK: slots per block (the old kernel
 * keeps ATT_CHUNK); ATTW_THREADS: threads per block; ATTW_KU_*: slots per
 * lane group whose raw K (or V) words are in flight together; ATTW_MINB:
 * __launch_bounds__ minimum blocks per SM (0: none); ATTW_VEARLY: issue
 * the chunk's first V batch together with its first K batch. A row's result
 * depends on D and these constants only, never on B.
 * Chosen (H100, 2026-11-26, 14 builds timed in two device calls): 256-slot
 * chunks, 128 threads, 4 q8_0 / 2 bf16 slots in flight, 8 blocks per SM
 * (64 registers: twice the resident warps of the 128-register kernel, which
 * hides more latency than 8 slots in flight per lane group did). q8_0 at
 * B = 80 over full caches 1481 -> 1135 us a call, bf16 1763 -> 1548 us;
 * B = 1 full 38 -> 32 us, 35 filled slots 14.7 -> 12.1 us, depformer 7.7
 * -> 6.7 us. 512-slot chunks were faster still at B = 80 (1029 us) but
 * slower at B = 1 (41 us: too few blocks for one session); VEARLY spilled
 * or lost; 256 threads per block lost. */
#ifndef ATTW_CHUNK
#define ATTW_CHUNK 256
#endif
#ifndef ATTW_THREADS
#define ATTW_THREADS 128
#endif
#ifndef ATTW_KU_Q8
#define ATTW_KU_Q8 4
#endif
#ifndef ATTW_KU_BF16
#define ATTW_KU_BF16 2
#endif
#ifndef ATTW_KU_F32
#define ATTW_KU_F32 2
#endif
#ifndef ATTW_MINB
#define ATTW_MINB 8
#endif
#ifndef ATTW_VEARLY
#define ATTW_VEARLY 0
#endif
#if ATTW_MINB > 0
#define ATTW_BOUNDS __launch_bounds__(ATTW_THREADS, ATTW_MINB)
#else
#define ATTW_BOUNDS __launch_bounds__(ATTW_THREADS)
#endif

/* int8 byte k of w (offset binary: byte ^ 0x80) as an exact float without
 * I2F (quarter rate): into the mantissa of 2^23, minus 2^23 + 128. */
__device__ static inline float attw_i8(uint32_t wx, int k) {
    const uint32_t r = __byte_perm(wx, 0x4b000000u, 0x7540u | (uint32_t)k);
    return __fsub_rn(__uint_as_float(r), 8388736.0f);
}

/* Raw loads of one lane's 16 values: KU = slots per lane group in flight. */
template <typename KT> struct attw_raw;
template <> struct attw_raw<cu_kv_q8> {
    enum { KU = ATTW_KU_Q8 };
    uint32_t w[5], sh; /* the aligned span, shift 0 or 16 bits */
    unsigned short d;
};
template <> struct attw_raw<uint16_t> {
    enum { KU = ATTW_KU_BF16 };
    uint32_t w[9], sh;
};
template <> struct attw_raw<float> {
    enum { KU = ATTW_KU_F32 };
    float x[ATTW_VPL];
};

/* N words of the 2-byte aligned span p from aligned loads (one more word
 * when p is not 4-byte aligned; never past the 4-byte word holding p's last
 * byte, so inside the allocation). */
template <int N>
__device__ static inline void attw_span(const void *p, uint32_t *w, uint32_t *sh) {
    const uintptr_t a = (uintptr_t)p;
    const uint32_t *q = (const uint32_t *)(a & ~(uintptr_t)3);
    *sh = (uint32_t)(a & 2) * 8u;
#pragma unroll
    for (int k = 0; k < N; k++) w[k] = __ldg(q + k);
    w[N] = *sh ? __ldg(q + N) : 0u;
}

/* Element e .. e + 15 (flat index into a contiguous cache). */
__device__ static inline void attw_fetch(const cu_kv_q8 *base, int64_t e,
                                         attw_raw<cu_kv_q8> &r) {
    const cu_kv_q8 *b = base + (e >> 5); /* e is a multiple of 16: half a block */
    r.d = __ldg(&b->d);
    attw_span<4>(b->qs + (e & 16), r.w, &r.sh);
}
__device__ static inline void attw_fetch(const uint16_t *base, int64_t e, attw_raw<uint16_t> &r) {
    attw_span<8>(base + e, r.w, &r.sh);
}
__device__ static inline void attw_fetch(const float *base, int64_t e, attw_raw<float> &r) {
    const float *p = base + e;
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) r.x[j] = __ldg(p + j);
}

/* The 16 values as f32, each exactly as kv_at reads it. */
__device__ static inline void attw_values(const attw_raw<cu_kv_q8> &r, float x[ATTW_VPL]) {
    const float d = __half2float(__ushort_as_half(r.d));
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const uint32_t wx = __funnelshift_r(r.w[k], r.w[k + 1], r.sh) ^ 0x80808080u;
#pragma unroll
        for (int j = 0; j < 4; j++) x[4 * k + j] = __fmul_rn(d, attw_i8(wx, j));
    }
}
__device__ static inline void attw_values(const attw_raw<uint16_t> &r, float x[ATTW_VPL]) {
#pragma unroll
    for (int k = 0; k < 8; k++) {
        const uint32_t w = __funnelshift_r(r.w[k], r.w[k + 1], r.sh);
        x[2 * k] = __uint_as_float(w << 16);
        x[2 * k + 1] = __uint_as_float(w & 0xffff0000u);
    }
}
__device__ static inline void attw_values(const attw_raw<float> &r, float x[ATTW_VPL]) {
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) x[j] = r.x[j];
}

/* Dynamic shared memory of the wide kernel: the query head (D floats) and
 * the V sums of every slot stream (nw * 32 / LPS streams x D = nw * 512). */
static size_t attw_shm(int64_t D) {
    return (size_t)(D + (ATTW_THREADS / 32) * 32 * ATTW_VPL) * sizeof(float);
}

/* Whether the wide kernel handles head dim D (and the cache's layout). */
static bool attw_fits(int64_t D, const xs_kv_cache *cache) {
    if (D % ATTW_VPL || D / ATTW_VPL > 32 || 32 % (D / ATTW_VPL)) return false;
    return xs_tensor_is_contiguous(&cache->k) && xs_tensor_is_contiguous(&cache->v);
}

template <typename KT>
__device__ __forceinline__ void att_part_wide(float *part, const float *q, const cu_view &qv,
                                              const KT *ck, const KT *cv, const int32_t *cpos,
                                              int64_t cpos_stride, int64_t cap,
                                              const int32_t *pos, int64_t pos_stride, int64_t H,
                                              int64_t D, int64_t context, float scale,
                                              float *ydirect) {
    enum { KU = attw_raw<KT>::KU };
    extern __shared__ float shw[];
    float *qh = shw, *vsum = shw + D; /* vsum[g * D + d]: stream g's V sum of dim d */
    __shared__ float sc[ATTW_CHUNK];
    __shared__ unsigned char vis[ATTW_CHUNK];
    __shared__ float red[32];
    __shared__ double redd[32];
    __shared__ int anynan;
    const int64_t th = blockIdx.x, t = th / H, h = th % H;
    const int64_t s0 = (int64_t)blockIdx.y * ATTW_CHUNK;
    const int64_t ns = cap - s0 < ATTW_CHUNK ? cap - s0 : ATTW_CHUNK;
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int lps = (int)(D / ATTW_VPL), gpw = 32 / lps; /* lanes per slot, slots per warp */
    const int sub = lane % lps, g = wid * gpw + lane / lps, nstream = nw * gpw;
    const int64_t hd = H * D, col = h * D + (int64_t)sub * ATTW_VPL;
    const int64_t pt = pos[t * pos_stride];
    float *out = part + (th * gridDim.y + blockIdx.y) * (D + 2);
    int64_t lo, hi;
    if (!att_chunk_live(pt, context, cap, s0, ns, &lo, &hi)) {
        att_chunk_empty(ydirect, th, D, out, (int)threadIdx.x, (int)blockDim.x);
        return;
    }
    /* K of this lane group's first KU slots: in flight while q and the
     * visibility are staged (every slot below capacity is allocated) */
    attw_raw<KT> kr[KU];
    const int64_t k0 = lo + (int64_t)wid * gpw, kstep = (int64_t)KU * nstream;
#pragma unroll
    for (int u = 0; u < KU; u++) {
        const int64_t i = k0 + lane / lps + (int64_t)u * nstream;
        if (i < hi) attw_fetch(ck, (s0 + i) * hd + col, kr[u]);
    }
    attw_raw<KT> vr[KU];
    const int64_t v0 = lo + g;
#if ATTW_VEARLY /* V's first batch too: both rounds' latency overlap */
#pragma unroll
    for (int u = 0; u < KU; u++) {
        const int64_t i = v0 + (int64_t)u * nstream;
        if (i < hi) attw_fetch(cv, (s0 + i) * hd + col, vr[u]);
    }
#endif
    const float *qr = q + cu_row_off(qv, t);
    const int64_t qs = cu_inner_stride(qv);
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) qh[d] = qr[(h * D + d) * qs];
    for (int64_t i = threadIdx.x; i < ns; i += blockDim.x) {
        const int64_t p = i >= lo && i < hi ? cpos[(s0 + i) * cpos_stride] : -1;
        vis[i] = p >= 0 && pt - p >= 0 && pt - p < context;
    }
    if (threadIdx.x == 0) anynan = 0;
    __syncthreads();
    float qreg[ATTW_VPL];
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) qreg[j] = qh[sub * ATTW_VPL + j];
    /* scores: the loop bound is uniform over the warp (the butterfly needs
     * every lane); a lane group past hi or on a hidden slot adds nothing */
    for (int64_t i0 = k0; i0 < hi; i0 += kstep) {
        if (i0 != k0) {
#pragma unroll
            for (int u = 0; u < KU; u++) {
                const int64_t i = i0 + lane / lps + (int64_t)u * nstream;
                if (i < hi) attw_fetch(ck, (s0 + i) * hd + col, kr[u]);
            }
        }
#pragma unroll
        for (int u = 0; u < KU; u++) {
            const int64_t i = i0 + lane / lps + (int64_t)u * nstream;
            const bool use = i < hi && vis[i];
            float dot = 0.0f;
            if (use) {
                float kk[ATTW_VPL];
                attw_values(kr[u], kk);
#pragma unroll
                for (int j = 0; j < ATTW_VPL; j++) dot = fmaf(qreg[j], kk[j], dot);
            }
            for (int o = lps >> 1; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (use && sub == 0) {
                sc[i] = dot * scale;
                if (isnan(sc[i])) anynan = 1;
            }
        }
    }
#if !ATTW_VEARLY
    /* V of this stream's first KU slots: in flight during the softmax */
#pragma unroll
    for (int u = 0; u < KU; u++) {
        const int64_t i = v0 + (int64_t)u * nstream;
        if (i < hi) attw_fetch(cv, (s0 + i) * hd + col, vr[u]);
    }
#endif
    __syncthreads();
    float mx;
    double sum;
    att_chunk_softmax(sc, vis, ns, red, redd, nw, lane, wid, anynan, &mx, &sum);
    if (threadIdx.x == 0 && !ydirect) {
        out[0] = mx;
        out[1] = (float)sum;
    }
    /* V: stream g takes slots lo + g, lo + g + nstream, ... ascending; a
     * hidden slot is skipped (its weight is not 0 * v: v may be NaN) */
    float acc[ATTW_VPL];
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) acc[j] = 0.0f;
    for (int64_t i0 = v0; i0 < hi; i0 += kstep) {
        if (i0 != v0) {
#pragma unroll
            for (int u = 0; u < KU; u++) {
                const int64_t i = i0 + (int64_t)u * nstream;
                if (i < hi) attw_fetch(cv, (s0 + i) * hd + col, vr[u]);
            }
        }
#pragma unroll
        for (int u = 0; u < KU; u++) {
            const int64_t i = i0 + (int64_t)u * nstream;
            if (i < hi && vis[i]) {
                const float p = sc[i];
                float vv[ATTW_VPL];
                attw_values(vr[u], vv);
#pragma unroll
                for (int j = 0; j < ATTW_VPL; j++) acc[j] = fmaf(p, vv[j], acc[j]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) vsum[(int64_t)g * D + sub * ATTW_VPL + j] = acc[j];
    __syncthreads();
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        float o = 0.0f;
        for (int s = 0; s < nstream; s++) o += vsum[(int64_t)s * D + d]; /* fixed order */
        if (ydirect) ydirect[th * D + d] = att_finish1(mx, (float)sum, o);
        else out[2 + d] = o;
    }
}

template <typename KT>
__global__ void ATTW_BOUNDS
    k_attention_part_wide(float *part, const float *q, cu_view qv, const KT *ck, const KT *cv,
                          const int32_t *cpos, int64_t cpos_stride, int64_t cap,
                          const int32_t *pos, int64_t pos_stride, int64_t H, int64_t D,
                          int64_t context, float scale, float *ydirect) {
    cu_pdl_enter();
    att_part_wide<KT>(part, q, qv, ck, cv, cpos, cpos_stride, cap, pos, pos_stride, H, D, context,
                      scale, ydirect);
}

template <typename KT>
__global__ void ATTW_BOUNDS
    k_attention_part_wide_rows(float *part, const float *q, cu_view qv, cu_rows_kv rc,
                               int64_t cap, const int32_t *pos, int64_t pos_stride, int64_t H,
                               int64_t D, int64_t context, float scale, float *ydirect) {
    cu_pdl_enter();
    const int64_t t = blockIdx.x / H;
    att_part_wide<KT>(part, q, qv, (const KT *)rc.k[t], (const KT *)rc.v[t], rc.pos[t], 1, cap,
                      pos, pos_stride, H, D, context, scale, ydirect);
}


/* ---- attention, staged through shared memory (default; issue 8, engineer attn80) ------
 *
 * Over full caches the wide kernel above reached ~1.84 TB/s (q8_0, B = 80),
 * 60% of what the card can read. Each of its loads is one 4-byte word per
 * lane, the lanes of a warp spread over 4 slots 4 KB apart: a q8_0 warp load
 * brings ~128 useful bytes from ~8 different 128-byte lines, and a lane
 * group can only keep a few slots' words in registers, so each 256-slot
 * chunk still makes ~8 dependent memory round trips (K rounds, softmax, V
 * rounds).
 * This kernel copies the chunk's K and then V head rows into shared memory
 * with cp.async (asynchronous, no registers held): the block's threads copy
 * consecutive W-byte words of consecutive rows (a head row is RB = 136
 * bytes for q8_0, 256 for bf16 at D = 128, W = 8 / 16 bytes), so one warp
 * instruction moves 256-512 bytes from a few lines. A block may take HPB
 * heads of one row (their head rows of a slot are adjacent in the cache:
 * HPB x RB contiguous bytes a slot; each head has its own TPH = THREADS /
 * HPB threads). Tiles of TS slots flow through STAGES buffers: K tiles, then
 * V tiles, one stream, STAGES - 1 tiles in flight at all times (V's first
 * tiles are in flight during the softmax). The math reads the rows back
 * from shared memory and decodes them as the wide kernel decodes its
 * registers (attw_values), with the same lane split (D / 16 lanes a slot),
 * per-slot dot order and butterfly; V is summed per slot stream (stream g
 * of a head: slots lo + g + k * NSTREAM, ascending), then over the streams
 * in a fixed order; chunk grid, visibility, chunk softmax and merge are the
 * wide kernel's. With one head per block and 256-slot chunks the results
 * are bit-identical to the wide kernel's (FOLD off). A row's result depends
 * on its own q, cache and position and on the constants only, never on B.
 * Used for q8_0 (with ATTS_BF16 also bf16) caches at D = 64 and 128 whose
 * K and V are 16-byte aligned (cudaMalloc'd caches are) and whose head
 * count HPB divides; else the wide kernel. XSWARM_CUDA_ATTN=wide selects
 * the wide kernel, =old the first one.
 *
 * The constants are one configuration type (atts_cfg), defaults below and
 * -D overridable; a build with -DATTS_EXPLORE also carries the variants
 * timed for docs/PERF.md, picked at run time with XSWARM_ATTS_CFG=name
 * (same kernels as a build with those constants as defaults;
 * XSWARM_ATTS_BF16=0 sends bf16 caches to the wide kernel there).
 * Chosen (H100, 2026-11-26, 16 configurations timed in one device call,
 * ncu): 256-slot chunks, 128 threads, 3 stages of 32 (q8_0) slots, one head
 * per block, q8_0 scale folded, bf16 caches on the wide kernel. q8_0 at
 * B = 80 over full caches 1127 -> 1000 us a call (LM step 65.2 -> 62.2 ms),
 * every B = 1 / short / depformer case as fast or faster (depformer B = 80
 * 18.2 -> 13.0 us). ncu: the wide kernel and this one both read DRAM at
 * ~60% of peak, but this one is bound by the SM (~81% compute throughput
 * against the wide kernel's 65%, whose loads also hit L1 78% of the time):
 * what is left is the decode and the math (byte_perm + subtract + FMA per
 * value), not the memory pipeline. Several heads per block (HPB 2 / 4:
 * 272 / 544 contiguous bytes a slot) were faster at B = 80 (q8_0 928-960
 * us, bf16 1467-1475 us) but 1.3-2.6x slower at B = 1 (too few blocks for
 * one session); bf16 here was 1.6% slower than wide at B = 80 full (faster
 * at B = 1: 35 vs 41 us) and is off by the pick rule (sum of q8_0 and bf16
 * B = 80 times, no B = 1 case slower than 5% + 1 us). */
#ifndef ATTS_CHUNK
#define ATTS_CHUNK 256 /* slots per block (chunk of the ring) */
#endif
#ifndef ATTS_THREADS
#define ATTS_THREADS 128
#endif
#ifndef ATTS_STAGES
#define ATTS_STAGES 3 /* tile buffers; STAGES - 1 tiles in flight */
#endif
#ifndef ATTS_MINB
#define ATTS_MINB 8 /* __launch_bounds__ minimum blocks per SM */
#endif
#ifndef ATTS_TS_Q8
#define ATTS_TS_Q8 32 /* slots per tile: 4.3 KB of q8_0 at D = 128 and HPB 1 */
#endif
#ifndef ATTS_TS_BF16
#define ATTS_TS_BF16 16 /* 4 KB of bf16 at D = 128 and HPB 1 */
#endif
#ifndef ATTS_HPB_Q8
#define ATTS_HPB_Q8 1 /* heads per block */
#endif
#ifndef ATTS_HPB_BF16
#define ATTS_HPB_BF16 1
#endif
#ifndef ATTS_FOLD_D
#define ATTS_FOLD_D 1 /* 1: q8_0 scale applied once per lane, not per value */
#endif
#ifndef ATTS_BF16
#define ATTS_BF16 0 /* 0: bf16 caches keep the wide kernel */
#endif

template <int CHUNK_, int THREADS_, int STAGES_, int MINB_, int TSQ8_, int TSBF_, int HPBQ8_,
          int HPBBF_, int FOLD_, int BF16_>
struct atts_cfg {
    enum { CHUNK = CHUNK_, THREADS = THREADS_, STAGES = STAGES_, MINB = MINB_ };
    enum { TS_Q8 = TSQ8_, TS_BF16 = TSBF_, HPB_Q8 = HPBQ8_, HPB_BF16 = HPBBF_ };
    enum { FOLD = FOLD_, BF16 = BF16_ };
};
typedef atts_cfg<ATTS_CHUNK, ATTS_THREADS, ATTS_STAGES, ATTS_MINB, ATTS_TS_Q8, ATTS_TS_BF16,
                 ATTS_HPB_Q8, ATTS_HPB_BF16, ATTS_FOLD_D, ATTS_BF16>
    atts_default;

/* Per cache type: bytes of one head row (one slot, one head), the copy word
 * (the largest of 16 / 8 / 4 bytes dividing it), slots per tile, heads per
 * block, scale folding. */
template <class C, typename KT, int D> struct atts_geom;
template <class C, int D> struct atts_geom<C, cu_kv_q8, D> {
    enum { RB = D / 32 * 34, W = RB % 16 == 0 ? 16 : RB % 8 == 0 ? 8 : 4 };
    enum { TS = C::TS_Q8, HPB = C::HPB_Q8, FOLD = C::FOLD };
};
template <class C, int D> struct atts_geom<C, uint16_t, D> {
    enum { RB = D * 2, W = RB % 16 == 0 ? 16 : RB % 8 == 0 ? 8 : 4 };
    enum { TS = C::TS_BF16, HPB = C::HPB_BF16, FOLD = 0 };
};

/* Dynamic shared memory: the heads' queries, then the tile buffers (reused
 * for the V stream sums once the last tile is done). */
template <class C, typename KT, int D> constexpr size_t atts_shm(void) {
    typedef atts_geom<C, KT, D> G;
    return (size_t)G::HPB * D * sizeof(float) +
           ((size_t)C::STAGES * G::TS * G::HPB * G::RB > (size_t)C::THREADS * ATTW_VPL * 4
                ? (size_t)C::STAGES * G::TS * G::HPB * G::RB
                : (size_t)C::THREADS * ATTW_VPL * 4);
}

template <int W> __device__ static inline void atts_cp(void *dst, const void *src) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    if (W == 16) /* .cg: the row is read once, keep it out of L1 */
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(s), "l"(src), "n"(W));
}
__device__ static inline void atts_commit(void) { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ static inline void atts_wait(void) {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/* Lane `sub`'s 16 values of a head row in shared memory, as attw_fetch
 * would have loaded them from the cache (then decoded by attw_values). */
__device__ static inline void atts_raw(const unsigned char *row, int sub,
                                       attw_raw<cu_kv_q8> &r) {
    const int blk = (sub >> 1) * 34, qo = blk + 2 + (sub & 1) * 16;
    r.d = *(const unsigned short *)(row + blk);
    const uint32_t *w = (const uint32_t *)(row + (qo & ~3));
    r.sh = (uint32_t)(qo & 2) * 8u;
#pragma unroll
    for (int k = 0; k < 4; k++) r.w[k] = w[k];
    r.w[4] = r.sh ? w[4] : 0u;
}
__device__ static inline void atts_raw(const unsigned char *row, int sub, attw_raw<uint16_t> &r) {
    const uint4 *p = (const uint4 *)(row + sub * 32);
    const uint4 a = p[0], b = p[1];
    r.w[0] = a.x, r.w[1] = a.y, r.w[2] = a.z, r.w[3] = a.w;
    r.w[4] = b.x, r.w[5] = b.y, r.w[6] = b.z, r.w[7] = b.w;
    r.w[8] = 0u, r.sh = 0u;
}

/* The 16 values of a lane as f32, times the returned factor. FOLD off:
 * exactly attw_values (factor 1, so the callers' products are exact);
 * FOLD on: the q8_0 block scale is returned instead of applied to each
 * value (16 fewer multiplies a lane and slot, different rounding). */
template <int FOLD>
__device__ static inline float atts_values(const attw_raw<cu_kv_q8> &r, float x[ATTW_VPL]) {
    if constexpr (!FOLD) {
        attw_values(r, x);
        return 1.0f;
    } else {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const uint32_t wx = __funnelshift_r(r.w[k], r.w[k + 1], r.sh) ^ 0x80808080u;
#pragma unroll
            for (int j = 0; j < 4; j++) x[4 * k + j] = attw_i8(wx, j);
        }
        return __half2float(__ushort_as_half(r.d));
    }
}
template <int FOLD>
__device__ static inline float atts_values(const attw_raw<uint16_t> &r, float x[ATTW_VPL]) {
    attw_values(r, x);
    return 1.0f;
}


template <class C, typename KT, int D>
__device__ __forceinline__ void att_part_stage(float *part, const float *q, const cu_view &qv,
                                               const KT *ck, const KT *cv, const int32_t *cpos,
                                               int64_t cpos_stride, int64_t cap,
                                               const int32_t *pos, int64_t pos_stride, int64_t H,
                                               int64_t context, float scale, float *ydirect) {
    typedef atts_geom<C, KT, D> G;
    enum { CHUNK = C::CHUNK, THREADS = C::THREADS, HPB = G::HPB, TPH = THREADS / HPB };
    enum { NWG = TPH / 32, RB = G::RB, W = G::W, GRB = HPB * RB, NWR = GRB / W };
    enum { LPS = D / ATTW_VPL, GPW = 32 / LPS, NSTREAM = NWG * GPW };
    enum { TS = G::TS, S = C::STAGES, TILE = TS * GRB };
    static_assert(TPH % 32 == 0 && TPH >= 32, "a head of the block has whole warps");
    static_assert(S >= 2 && GRB % W == 0, "stages and copy words");
    extern __shared__ float shs[];
    float *qh = shs;                                         /* HPB x D */
    unsigned char *tiles = (unsigned char *)(shs + HPB * D); /* S x TS rows of GRB bytes */
    float *vsum = shs + HPB * D;                             /* after the last tile */
    __shared__ float sc_all[HPB][CHUNK];
    __shared__ unsigned char vis[CHUNK];
    __shared__ float red[32];
    __shared__ double redd[32];
    __shared__ int anynan_all[HPB];
    const int tid = threadIdx.x;
    const int hh = tid / TPH, lt = tid % TPH; /* this thread's head within the block */
    const int lane = tid & 31, lw = lt >> 5;
    const int sub = lane % LPS, g = lw * GPW + lane / LPS;
    const int64_t hgroups = H / HPB, t = blockIdx.x / hgroups;
    const int64_t h0 = blockIdx.x % hgroups * HPB, th = t * H + h0 + hh;
    const int64_t s0 = (int64_t)blockIdx.y * CHUNK;
    const int64_t ns = cap - s0 < CHUNK ? cap - s0 : CHUNK;
    const int64_t pt = pos[t * pos_stride];
    float *out = part + (th * gridDim.y + blockIdx.y) * (D + 2);
    float *sc = sc_all[hh];
    int64_t lo64, hi64;
    if (!att_chunk_live(pt, context, cap, s0, ns, &lo64, &hi64)) {
        att_chunk_empty(ydirect, th, D, out, lt, TPH);
        return;
    }
    const int lo = (int)lo64, hi = (int)hi64, ntile = (hi - lo + TS - 1) / TS, nt = 2 * ntile;
    const int64_t rowb = H * RB; /* bytes from one slot's row to the next */
    const unsigned char *kb = (const unsigned char *)ck + ((s0 + lo) * H + h0) * RB;
    const unsigned char *vb = (const unsigned char *)cv + ((s0 + lo) * H + h0) * RB;
    /* tile j: the block's K head rows of slots lo + j*TS .. (j < ntile), then
     * V; one commit group per tile (an empty one past the end keeps count) */
    auto issue = [&](int j) {
        if (j < nt) {
            const int jt = j < ntile ? j : j - ntile, first = jt * TS;
            const int rows = hi - lo - first < TS ? hi - lo - first : TS;
            const unsigned char *src = (j < ntile ? kb : vb) + (int64_t)first * rowb;
            unsigned char *dst = tiles + (j % S) * TILE;
            for (int f = tid; f < rows * NWR; f += THREADS) {
                const int r = f / NWR, w = f - r * NWR;
                atts_cp<W>(dst + r * GRB + w * W, src + r * rowb + w * W);
            }
        }
        atts_commit();
    };
#pragma unroll
    for (int j = 0; j < S - 1; j++) issue(j);
    const float *qr = q + cu_row_off(qv, t);
    const int64_t qs = cu_inner_stride(qv);
    for (int d = tid; d < HPB * D; d += THREADS) qh[d] = qr[(h0 * D + d) * qs];
    for (int i = tid; i < ns; i += THREADS) {
        const int64_t p = i >= lo && i < hi ? cpos[(s0 + i) * cpos_stride] : -1;
        vis[i] = p >= 0 && pt - p >= 0 && pt - p < context;
    }
    if (tid < HPB) anynan_all[tid] = 0;
    __syncthreads();
    /* two loops over the one tile stream: q lives only in the first, the
     * V sums only in the second (registers) */
    float qreg[ATTW_VPL];
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) qreg[j] = qh[hh * D + sub * ATTW_VPL + j];
    for (int j = 0; j < ntile; j++) { /* scores of tile j's slots */
        atts_wait<S - 2>(); /* this thread's copies of tile j have landed */
        __syncthreads();    /* everyone's have; tile j - 1's buffer is free */
        issue(j + S - 1);
        const unsigned char *buf = tiles + (j % S) * TILE + hh * RB;
        const int first = lo + j * TS;
        /* the loop bound is uniform over the warp (the butterfly needs every
         * lane): lane group g takes tile slots g, g + NSTREAM, ... */
        for (int i0 = lw * GPW; i0 < TS; i0 += NSTREAM) {
            const int i = i0 + lane / LPS;
            const bool use = i < TS && first + i < hi && vis[first + i];
            float dot = 0.0f;
            if (use) {
                attw_raw<KT> r;
                atts_raw(buf + i * GRB, sub, r);
                float kk[ATTW_VPL];
                const float f = atts_values<G::FOLD>(r, kk);
#pragma unroll
                for (int k = 0; k < ATTW_VPL; k++) dot = fmaf(qreg[k], kk[k], dot);
                dot *= f; /* exact when f == 1 */
            }
#pragma unroll
            for (int o = LPS >> 1; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
            if (use && sub == 0) {
                sc[first + i] = dot * scale;
                if (isnan(sc[first + i])) anynan_all[hh] = 1;
            }
        }
    }
    float mx = 0.0f;
    double sum = 0.0;
    float acc[ATTW_VPL];
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) acc[j] = 0.0f;
    for (int j = ntile; j < nt; j++) { /* V of tile j - ntile's slots */
        atts_wait<S - 2>();
        __syncthreads();
        issue(j + S - 1);
        if (j == ntile) { /* every score is written (barrier above) */
            att_group_softmax(sc, vis, (int)ns, red + hh * NWG, redd + hh * NWG, NWG, lane, lw,
                               lt, TPH, anynan_all[hh], &mx, &sum);
            if (lt == 0 && !ydirect) {
                out[0] = mx;
                out[1] = (float)sum;
            }
        }
        const unsigned char *buf = tiles + (j % S) * TILE + hh * RB;
        /* stream g's slots of this tile (lo + g + k * NSTREAM), ascending; a
         * hidden slot is skipped (its weight is not 0 * v: v may be NaN) */
        const int first = (j - ntile) * TS, rows = hi - lo - first < TS ? hi - lo - first : TS;
        for (int i = ((g - first) % NSTREAM + NSTREAM) % NSTREAM; i < rows; i += NSTREAM) {
            const int si = lo + first + i;
            if (!vis[si]) continue;
            attw_raw<KT> r;
            atts_raw(buf + i * GRB, sub, r);
            float vv[ATTW_VPL];
            const float p = sc[si] * atts_values<G::FOLD>(r, vv); /* exact if factor 1 */
#pragma unroll
            for (int k = 0; k < ATTW_VPL; k++) acc[k] = fmaf(p, vv[k], acc[k]);
        }
    }
    __syncthreads(); /* the tile buffers become the stream sums */
    float *vs = vsum + hh * NSTREAM * D;
#pragma unroll
    for (int j = 0; j < ATTW_VPL; j++) vs[g * D + sub * ATTW_VPL + j] = acc[j];
    __syncthreads();
    for (int d = lt; d < D; d += TPH) {
        float o = 0.0f;
        for (int s = 0; s < NSTREAM; s++) o += vs[s * D + d]; /* fixed order */
        if (ydirect) ydirect[th * D + d] = att_finish1(mx, (float)sum, o);
        else out[2 + d] = o;
    }
}

template <class C, typename KT, int D>
__global__ void __launch_bounds__(C::THREADS, C::MINB)
    k_attention_part_stage(float *part, const float *q, cu_view qv, const KT *ck, const KT *cv,
                           const int32_t *cpos, int64_t cpos_stride, int64_t cap,
                           const int32_t *pos, int64_t pos_stride, int64_t H, int64_t context,
                           float scale, float *ydirect) {
    cu_pdl_enter();
    att_part_stage<C, KT, D>(part, q, qv, ck, cv, cpos, cpos_stride, cap, pos, pos_stride, H,
                             context, scale, ydirect);
}

template <class C, typename KT, int D>
__global__ void __launch_bounds__(C::THREADS, C::MINB)
    k_attention_part_stage_rows(float *part, const float *q, cu_view qv, cu_rows_kv rc,
                                int64_t cap, const int32_t *pos, int64_t pos_stride, int64_t H,
                                int64_t context, float scale, float *ydirect) {
    cu_pdl_enter();
    const int64_t t = blockIdx.x / (H / atts_geom<C, KT, D>::HPB);
    att_part_stage<C, KT, D>(part, q, qv, (const KT *)rc.k[t], (const KT *)rc.v[t], rc.pos[t],
                             1, cap, pos, pos_stride, H, context, scale, ydirect);
}

#include "backend/cuda/cuda_attention_tc.cuh"
#include "backend/cuda/cuda_attention_tc2.cuh"
#include "backend/cuda/cuda_attention_short.cuh"

/* XSWARM_CUDA_ATTN=old: the one-value-per-load kernel, =wide: the wide-load
 * kernel, =stage: the staged kernel (q8_0 default before the tensor-core
 * ones), =tc1: the first tensor-core kernel, =tcv16 / =tc16 its f16
 * variants, =tc2NAME: a tc2 configuration (k_att2_cfgs); otherwise the
 * default tc2 configuration where it fits, for A/B timing in one binary. */
enum att_kernel {
    ATT_K_OLD,
    ATT_K_WIDE,
    ATT_K_STAGE,
    ATT_K_TC, /* the tensor-core kernels: which one is attc_variant's business */
    ATT_K_TCV16,
    ATT_K_TC16,
    ATT_K_TC1,
    ATT_K_TC2X, /* tc2 with a named configuration (=tc2NAME, att2_cfg_of) */
    ATT_K_SHORT /* a kind only (cuda_attention_short.cuh): short rings by default */
};
static att_kernel att_mode(void) {
    static int mode = -1; /* read once; a benign race sets the same value */
    if (mode < 0) {
        const char *e = getenv("XSWARM_CUDA_ATTN");
        mode = e && strcmp(e, "old") == 0     ? ATT_K_OLD
               : e && strcmp(e, "wide") == 0  ? ATT_K_WIDE
               : e && strcmp(e, "stage") == 0 ? ATT_K_STAGE
               : e && strcmp(e, "tcv16") == 0 ? ATT_K_TCV16
               : e && strcmp(e, "tc16") == 0  ? ATT_K_TC16
               : e && strcmp(e, "tc1") == 0   ? ATT_K_TC1
               : att2_cfg_of(e) > 0           ? ATT_K_TC2X
                                              : ATT_K_TC;
    }
    return (att_kernel)mode;
}

/* XSWARM_CUDA_ATTN=noshort: short rings take the chunk kernels too, every
 * other pick unchanged (A/B of cuda_attention_short.cuh alone). */
static bool atth_on(void) {
    static int on = -1; /* read once; a benign race sets the same value */
    if (on < 0) {
        const char *e = getenv("XSWARM_CUDA_ATTN");
        on = !(e && strcmp(e, "noshort") == 0);
    }
    return on == 1;
}

/* One configuration of the staged kernel as the host sees it. */
typedef struct atts_entry {
    const char *name;
    int64_t chunk;
    int hpb_q8, hpb_bf16, bf16;
    void (*launch)(xs_dtype dt, int64_t D, dim3 grid, cudaStream_t st, float *work,
                   const float *qp, cu_view qv, const void *ck, const void *cv, const int32_t *cp,
                   int64_t cps, const cu_rows_kv *rc, int64_t cap, const int32_t *pp,
                   int64_t pps, int64_t H, int64_t context, float scale, float *yd);
} atts_entry;

/* Launch the staged chunk kernel: one cache (rc == NULL) or rows. */
template <class C, typename KT, int D>
static void atts_launch_t(dim3 grid, cudaStream_t st, float *work, const float *qp, cu_view qv,
                          const void *ck, const void *cv, const int32_t *cp, int64_t cps,
                          const cu_rows_kv *rc, int64_t cap, const int32_t *pp, int64_t pps,
                          int64_t H, int64_t context, float scale, float *yd) {
    constexpr size_t shm = atts_shm<C, KT, D>();
    static_assert(shm <= 48 * 1024, "staged attention: dynamic shared memory over 48 KB");
    grid.x /= atts_geom<C, KT, D>::HPB; /* one block per group of HPB heads */
    if (rc)
        k_attention_part_stage_rows<C, KT, D><<<grid, C::THREADS, shm, st>>>(
            work, qp, qv, *rc, cap, pp, pps, H, context, scale, yd);
    else
        k_attention_part_stage<C, KT, D><<<grid, C::THREADS, shm, st>>>(
            work, qp, qv, (const KT *)ck, (const KT *)cv, cp, cps, cap, pp, pps, H, context,
            scale, yd);
}
template <class C>
static void atts_launch(xs_dtype dt, int64_t D, dim3 grid, cudaStream_t st, float *work,
                        const float *qp, cu_view qv, const void *ck, const void *cv,
                        const int32_t *cp, int64_t cps, const cu_rows_kv *rc, int64_t cap,
                        const int32_t *pp, int64_t pps, int64_t H, int64_t context, float scale,
                        float *yd) {
    if (dt == XS_Q8_0 && D == 128)
        atts_launch_t<C, cu_kv_q8, 128>(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp,
                                        pps, H, context, scale, yd);
    else if (dt == XS_Q8_0)
        atts_launch_t<C, cu_kv_q8, 64>(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp, pps,
                                       H, context, scale, yd);
    else if (D == 128)
        atts_launch_t<C, uint16_t, 128>(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp,
                                        pps, H, context, scale, yd);
    else
        atts_launch_t<C, uint16_t, 64>(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp, pps,
                                       H, context, scale, yd);
}
#define ATTS_ENTRY(name, C) {name, C::CHUNK, C::HPB_Q8, C::HPB_BF16, C::BF16, atts_launch<C>}

/* -DATTS_EXPLORE: the variants of docs/PERF.md ("attn80"), XSWARM_ATTS_CFG=name.
 * atts_cfg<CHUNK, THREADS, STAGES, MINB, TS_Q8, TS_BF16, HPB_Q8, HPB_BF16, FOLD, BF16> */
#ifdef ATTS_EXPLORE
typedef atts_cfg<256, 128, 4, 8, 32, 16, 1, 1, 0, 1> atts_x_st;
typedef atts_cfg<256, 128, 4, 8, 32, 16, 1, 1, 1, 1> atts_x_fold;
typedef atts_cfg<256, 128, 3, 8, 32, 16, 1, 1, 1, 1> atts_x_s3f;
typedef atts_cfg<256, 128, 4, 8, 16, 8, 2, 2, 0, 1> atts_x_h2;
typedef atts_cfg<256, 128, 4, 8, 16, 8, 2, 2, 1, 1> atts_x_h2f;
typedef atts_cfg<256, 128, 4, 8, 8, 4, 4, 4, 0, 1> atts_x_h4;
typedef atts_cfg<256, 128, 4, 8, 8, 4, 4, 4, 1, 1> atts_x_h4f;
typedef atts_cfg<256, 128, 3, 8, 16, 8, 4, 4, 1, 1> atts_x_h4s3f;
typedef atts_cfg<128, 128, 4, 8, 8, 4, 4, 4, 1, 1> atts_x_h4c128f;
typedef atts_cfg<256, 256, 4, 4, 8, 4, 4, 4, 1, 1> atts_x_h4t256f;
typedef atts_cfg<256, 256, 4, 4, 4, 2, 8, 8, 1, 1> atts_x_h8t256f;
typedef atts_cfg<256, 128, 6, 8, 8, 4, 2, 2, 1, 1> atts_x_h2s6f;
typedef atts_cfg<512, 128, 4, 8, 32, 16, 1, 1, 1, 1> atts_x_c512f;
typedef atts_cfg<256, 128, 4, 6, 32, 16, 1, 1, 1, 1> atts_x_f6;
typedef atts_cfg<256, 128, 4, 6, 8, 4, 4, 4, 1, 1> atts_x_h4f6;
#endif
static const atts_entry k_atts_cfgs[] = {
    ATTS_ENTRY("default", atts_default),
#ifdef ATTS_EXPLORE
    ATTS_ENTRY("st", atts_x_st),
    ATTS_ENTRY("fold", atts_x_fold),
    ATTS_ENTRY("s3f", atts_x_s3f),
    ATTS_ENTRY("h2", atts_x_h2),
    ATTS_ENTRY("h2f", atts_x_h2f),
    ATTS_ENTRY("h4", atts_x_h4),
    ATTS_ENTRY("h4f", atts_x_h4f),
    ATTS_ENTRY("h4s3f", atts_x_h4s3f),
    ATTS_ENTRY("h4c128f", atts_x_h4c128f),
    ATTS_ENTRY("h4t256f", atts_x_h4t256f),
    ATTS_ENTRY("h8t256f", atts_x_h8t256f),
    ATTS_ENTRY("h2s6f", atts_x_h2s6f),
    ATTS_ENTRY("c512f", atts_x_c512f),
    ATTS_ENTRY("f6", atts_x_f6),
    ATTS_ENTRY("h4f6", atts_x_h4f6),
#endif
};

/* The configuration in use: the default, or (explore builds) XSWARM_ATTS_CFG. */
static const atts_entry *atts_current(void) {
    static int pick = -1; /* read once; a benign race sets the same value */
    if (pick < 0) {
        const char *e = getenv("XSWARM_ATTS_CFG");
        int p = 0;
        for (size_t i = 0; e && i < sizeof k_atts_cfgs / sizeof k_atts_cfgs[0]; i++)
            if (strcmp(e, k_atts_cfgs[i].name) == 0) p = (int)i;
        pick = p;
    }
    return &k_atts_cfgs[pick];
}

/* Whether the staged kernel handles this cache: q8_0 (or bf16 unless
 * configured off), D = 64 or 128, heads a multiple of the heads per block,
 * contiguous, K and V 16-byte aligned (so every head row is aligned to its
 * copy word: row bytes and row strides are multiples of it). */
static bool atts_fits(const atts_entry *a, int64_t D, int n_heads, const xs_kv_cache *cache) {
    int bf16 = a->bf16;
#ifdef ATTS_EXPLORE
    const char *e = getenv("XSWARM_ATTS_BF16"); /* =0: bf16 caches on the wide kernel */
    if (e && strcmp(e, "0") == 0) bf16 = 0;
#endif
    if (D != 64 && D != 128) return false;
    if (cache->k.dtype == XS_Q8_0 ? n_heads % a->hpb_q8
        : cache->k.dtype == XS_BF16 ? !bf16 || n_heads % a->hpb_bf16
                                    : true)
        return false;
    if (cache->v.dtype != cache->k.dtype) return false;
    if (!xs_tensor_is_contiguous(&cache->k) || !xs_tensor_is_contiguous(&cache->v)) return false;
    return ((uintptr_t)cache->k.data | (uintptr_t)cache->v.data) % 16 == 0;
}

/* Which tensor-core kernel runs (att_tc_launch): 3 + configuration =
 * tc2 (k_att2_cfgs[0] by default where att2_fits, =tc2NAME another one),
 * 0 = tc1 (=tc1, and where tc2 does not fit), =tcv16 (1) p.V in f16, =tc16
 * (2) both products in f16 (A/B timing). From the mode, the head count and
 * q's rank only, never B. */
static int attc_variant(int n_heads, const xs_tensor *q) {
    const att_kernel m = att_mode();
    if (m == ATT_K_TC16) return 2;
    if (m == ATT_K_TCV16) return 1;
    static int cfg = -1; /* read once; a benign race sets the same value */
    if (cfg < 0) {
        const int k = m == ATT_K_TC2X ? att2_cfg_of(getenv("XSWARM_CUDA_ATTN")) : 0;
        cfg = k > 0 ? k : 0;
    }
    if (m == ATT_K_TC1 || !att2_fits(k_att2_cfgs[cfg].cp, n_heads, q->ndim)) return 0;
    return 3 + cfg;
}

/* slots a chunk of tensor-core variant v */
static int64_t att_tc_chunk(int v) { return v >= 3 ? k_att2_cfgs[v - 3].chunk : ATTC_CHUNK; }

static void att_tc_launch(int variant, dim3 grid, cudaStream_t st, float *work, const float *qp,
                          cu_view qv, const void *ck, const void *cv, const int32_t *cp,
                          int64_t cps, const cu_rows_kv *rc, int64_t cap, const int32_t *pp,
                          int64_t pps, int64_t H, int64_t context, float scale, float *yd) {
    if (variant >= 3)
        k_att2_cfgs[variant - 3].launch(grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp, pps,
                                        H, context, scale, yd);
    else
        attc_launch(variant, grid, st, work, qp, qv, ck, cv, cp, cps, rc, cap, pp, pps, H,
                    context, scale, yd);
}

/* Whether the tensor-core kernel handles this cache: q8_0 K and V, D = 128,
 * contiguous, 16-byte aligned (8-byte copy words; 136-byte head rows). */
static bool attc_fits(int64_t D, const xs_kv_cache *cache) {
    if (D != ATTC_D || cache->k.dtype != XS_Q8_0 || cache->v.dtype != XS_Q8_0) return false;
    if (!xs_tensor_is_contiguous(&cache->k) || !xs_tensor_is_contiguous(&cache->v)) return false;
    return ((uintptr_t)cache->k.data | (uintptr_t)cache->v.data) % 16 == 0;
}

/* Which chunk kernel runs for these caches (all alike but their pointers).
 * From the dtype, D and layout only, never from B, so a row computes the
 * same bits alone or in a batch. */
static att_kernel att_pick(int64_t D, int n_heads, const xs_kv_cache *const *caches, int B) {
    const att_kernel m = att_mode();
    if (m == ATT_K_OLD || !attw_fits(D, caches[0])) return ATT_K_OLD;
    if (m == ATT_K_WIDE) return ATT_K_WIDE;
    if (atth_on() && atth_fits(D, caches, B)) return ATT_K_SHORT; /* =old / =wide: theirs */
    bool tc = m >= ATT_K_TC;
    for (int b = 0; b < B && tc; b++) tc = attc_fits(D, caches[b]);
    if (tc) return ATT_K_TC;
    for (int b = 0; b < B; b++)
        if (!atts_fits(atts_current(), D, n_heads, caches[b])) return ATT_K_WIDE;
    return ATT_K_STAGE;
}

static int64_t att_chunk_of(att_kernel k) {
    return k == ATT_K_TC      ? ATTC_CHUNK
           : k == ATT_K_STAGE ? atts_current()->chunk
           : k == ATT_K_WIDE  ? ATTW_CHUNK
                              : ATT_CHUNK;
}

__global__ void k_attention_merge(float *y, const float *part, int64_t n_chunks, int64_t H,
                                  int64_t D) {
    cu_pdl_enter();
    const int64_t th = blockIdx.x;
    const float *pr = part + th * n_chunks * (D + 2);
    float M = -INFINITY;
    bool nan = false;
    for (int64_t c = 0; c < n_chunks; c++) {
        const float m = pr[c * (D + 2)], l = pr[c * (D + 2) + 1];
        if (isnan(m)) nan = true;
        else if (l > 0.0f && m > M) M = m;
    }
    if (nan) M = NAN;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
        double L = 0.0, O = 0.0;
        for (int64_t c = 0; c < n_chunks; c++) {
            const float m = pr[c * (D + 2)], l = pr[c * (D + 2) + 1];
            if (!(l > 0.0f) && !isnan(m)) continue; /* no visible slot in this chunk */
            const double f = exp((double)m - (double)M);
            L += (double)l * f;
            O += (double)pr[c * (D + 2) + 2 + d] * f;
        }
        y[th * D + d] = (L > 0.0 || isnan(L)) ? (float)(O / L) : 0.0f;
    }
}

xs_status cu_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                       const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                       int64_t context, float scale) {
    const int64_t T = pos->shape[0], hd = cache->k.shape[1], cap = cache->capacity;
    const int64_t D = hd / n_heads;
    if (!T) return XS_OK;
    const att_kernel kind = att_pick(D, n_heads, &cache, 1);
    if (kind == ATT_K_SHORT && q->ndim == 2 && T * n_heads <= 2147483647LL) {
        const bool bf = cache->k.dtype == XS_BF16;
        (bf ? atth_launch<uint16_t> : atth_launch<float>)(
            D, cu_ctx_of(be)->stream, (float *)y->data, (const float *)q->data, q->stride[0],
            q->stride[1],
            cache->k.data, cache->v.data, (const int32_t *)cache->pos.data, cache->pos.stride[0],
            NULL, cap, (const int32_t *)pos->data, pos->stride[0], n_heads, T, context, scale);
        return cu_check_launch("attention (short ring)");
    }
    const bool wide = kind == ATT_K_WIDE;
    const int tcv = kind == ATT_K_TC ? attc_variant(n_heads, q) : 0;
    const int64_t chunk = kind == ATT_K_TC ? att_tc_chunk(tcv) : att_chunk_of(kind);
    const int64_t n_chunks = (cap + chunk - 1) / chunk;
    if (T * n_heads > 2147483647LL || n_chunks > 65535)
        return xs_error(XS_ERR_UNSUPPORTED, "cuda attention: %lld rows x %d heads, capacity %lld",
                        (long long)T, n_heads, (long long)cap);
    if ((size_t)D * sizeof(float) > 48 * 1024)
        return xs_error(XS_ERR_UNSUPPORTED, "cuda attention: head dim %lld", (long long)D);
    cu_ctx *c = cu_ctx_of(be);
    void *work;
    XS_TRY(cu_scratch(c, (size_t)(T * n_heads * n_chunks * (D + 2)) * sizeof(float), &work));
    /* one chunk: the chunk kernel finishes y itself (no merge launch) */
    float *yd = n_chunks == 1 ? (float *)y->data : NULL;
    const dim3 grid((unsigned)(T * n_heads), (unsigned)n_chunks);
    const size_t shm = (size_t)D * sizeof(float);
    if (kind == ATT_K_TC)
        att_tc_launch(tcv, grid, c->stream, (float *)work,
                    (const float *)q->data, cu_view_of(q),
                    cache->k.data, cache->v.data, (const int32_t *)cache->pos.data,
                    cache->pos.stride[0], NULL, cap, (const int32_t *)pos->data, pos->stride[0],
                    n_heads, context, scale, yd);
    else if (kind == ATT_K_STAGE)
        atts_current()->launch(cache->k.dtype, D, grid, c->stream, (float *)work,
                               (const float *)q->data, cu_view_of(q), cache->k.data,
                               cache->v.data, (const int32_t *)cache->pos.data,
                               cache->pos.stride[0], NULL, cap, (const int32_t *)pos->data,
                               pos->stride[0], n_heads, context, scale, yd);
    else if (wide) {
        const float *qp = (const float *)q->data;
        const int32_t *cp = (const int32_t *)cache->pos.data, *pp = (const int32_t *)pos->data;
        const int64_t cps = cache->pos.stride[0], pps = pos->stride[0];
        const size_t wshm = attw_shm(D);
        if (cache->k.dtype == XS_Q8_0)
            k_attention_part_wide<cu_kv_q8><<<grid, ATTW_THREADS, wshm, c->stream>>>(
                (float *)work, qp, cu_view_of(q), (const cu_kv_q8 *)cache->k.data,
                (const cu_kv_q8 *)cache->v.data, cp, cps, cap, pp, pps, n_heads, D, context,
                scale, yd);
        else if (cache->k.dtype == XS_BF16)
            k_attention_part_wide<uint16_t><<<grid, ATTW_THREADS, wshm, c->stream>>>(
                (float *)work, qp, cu_view_of(q), (const uint16_t *)cache->k.data,
                (const uint16_t *)cache->v.data, cp, cps, cap, pp, pps, n_heads, D, context,
                scale, yd);
        else
            k_attention_part_wide<float><<<grid, ATTW_THREADS, wshm, c->stream>>>(
                (float *)work, qp, cu_view_of(q), (const float *)cache->k.data,
                (const float *)cache->v.data, cp, cps, cap, pp, pps, n_heads, D, context, scale,
                yd);
    } else if (cache->k.dtype == XS_Q8_0)
        k_attention_part<cu_kv_q8><<<grid, ATT_THREADS, shm, c->stream>>>(
            (float *)work, (const float *)q->data, cu_view_of(q),
            (const cu_kv_q8 *)cache->k.data, cu_view_of(&cache->k),
            (const cu_kv_q8 *)cache->v.data, cu_view_of(&cache->v),
            (const int32_t *)cache->pos.data, cache->pos.stride[0], cap,
            (const int32_t *)pos->data, pos->stride[0], n_heads, D, context, scale, yd);
    else if (cache->k.dtype == XS_BF16)
        k_attention_part<uint16_t><<<grid, ATT_THREADS, shm, c->stream>>>(
            (float *)work, (const float *)q->data, cu_view_of(q),
            (const uint16_t *)cache->k.data, cu_view_of(&cache->k),
            (const uint16_t *)cache->v.data, cu_view_of(&cache->v),
            (const int32_t *)cache->pos.data, cache->pos.stride[0], cap,
            (const int32_t *)pos->data, pos->stride[0], n_heads, D, context, scale, yd);
    else
        k_attention_part<float><<<grid, ATT_THREADS, shm, c->stream>>>(
            (float *)work, (const float *)q->data, cu_view_of(q), (const float *)cache->k.data,
            cu_view_of(&cache->k), (const float *)cache->v.data, cu_view_of(&cache->v),
            (const int32_t *)cache->pos.data, cache->pos.stride[0], cap,
            (const int32_t *)pos->data, pos->stride[0], n_heads, D, context, scale, yd);
    XS_TRY(cu_check_launch("attention (chunks)"));
    if (yd) return XS_OK;
    k_attention_merge<<<(unsigned)(T * n_heads), 128, 0, c->stream>>>(
        (float *)y->data, (const float *)work, n_chunks, n_heads, D);
    return cu_check_launch("attention (merge)");
}

xs_status cu_attention_rows(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                            const xs_kv_cache *const *caches, int B, const xs_tensor *pos,
                            int n_heads, int64_t context, float scale) {
    const int64_t hd = caches[0]->k.shape[1], cap = caches[0]->capacity, D = hd / n_heads;
    /* the caches are alike; the wide kernel also needs them contiguous (checked below) */
    const att_kernel kind = att_pick(D, n_heads, caches, B);
    if (kind == ATT_K_SHORT && q->ndim == 2 && rows_contiguous(caches, B)) {
        cu_ctx *c = cu_ctx_of(be);
        const bool bf = caches[0]->k.dtype == XS_BF16;
        for (int b0 = 0; b0 < B; b0 += CU_ROWS_CHUNK) {
            const int n = B - b0 < CU_ROWS_CHUNK ? B - b0 : CU_ROWS_CHUNK;
            const cu_rows_kv rc = rows_kv(caches, b0, n);
            const xs_tensor yb = xs_tensor_slice(y, 0, b0, n), qb = xs_tensor_slice(q, 0, b0, n);
            const xs_tensor pb = xs_tensor_slice(pos, 0, b0, n);
            (bf ? atth_launch<uint16_t> : atth_launch<float>)(
                D, c->stream, (float *)yb.data, (const float *)qb.data, qb.stride[0], qb.stride[1],
                NULL, NULL, NULL, 0, &rc, cap, (const int32_t *)pb.data, pb.stride[0], n_heads, n,
                context, scale);
            XS_TRY(cu_check_launch("attention_rows (short ring)"));
        }
        return XS_OK;
    }
    const bool wide = kind == ATT_K_WIDE;
    const int tcv = kind == ATT_K_TC ? attc_variant(n_heads, q) : 0; /* q->ndim as the rows' */
    const int64_t chunk = kind == ATT_K_TC ? att_tc_chunk(tcv) : att_chunk_of(kind);
    const int64_t n_chunks = (cap + chunk - 1) / chunk;
    if (!rows_contiguous(caches, B) || n_chunks > 65535 ||
        (size_t)D * sizeof(float) > 48 * 1024) { /* the single-row op handles (or refuses) it */
        for (int b = 0; b < B; b++) {
            xs_tensor yb = xs_tensor_slice(y, 0, b, 1), qb = xs_tensor_slice(q, 0, b, 1);
            xs_tensor pb = xs_tensor_slice(pos, 0, b, 1);
            XS_TRY(cu_attention(be, &yb, &qb, caches[b], &pb, n_heads, context, scale));
        }
        return XS_OK;
    }
    cu_ctx *c = cu_ctx_of(be);
    const int chunk_rows = B < CU_ROWS_CHUNK ? B : CU_ROWS_CHUNK;
    void *work;
    XS_TRY(cu_scratch(c, (size_t)(chunk_rows * n_heads * n_chunks * (D + 2)) * sizeof(float),
                      &work));
    const xs_dtype dt = caches[0]->k.dtype;
    const cu_view ckv = cu_view_of(&caches[0]->k), cvv = cu_view_of(&caches[0]->v);
    const size_t shm = (size_t)D * sizeof(float);
    /* launches run in stream order: a chunk's merge reads `work` before the
     * next chunk's part kernel rewrites it */
    for (int b0 = 0; b0 < B; b0 += CU_ROWS_CHUNK) {
        const int n = B - b0 < CU_ROWS_CHUNK ? B - b0 : CU_ROWS_CHUNK;
        const cu_rows_kv rc = rows_kv(caches, b0, n);
        const xs_tensor yb = xs_tensor_slice(y, 0, b0, n), qb = xs_tensor_slice(q, 0, b0, n);
        const xs_tensor pb = xs_tensor_slice(pos, 0, b0, n);
        float *yd = n_chunks == 1 ? (float *)yb.data : NULL;
        const dim3 grid((unsigned)(n * n_heads), (unsigned)n_chunks);
        const float *qp = (const float *)qb.data;
        const int32_t *pp = (const int32_t *)pb.data;
        if (kind == ATT_K_TC)
            att_tc_launch(tcv, grid, c->stream, (float *)work, qp,
                        cu_view_of(&qb), NULL, NULL, NULL, 0,
                        &rc, cap, pp, pb.stride[0], n_heads, context, scale, yd);
        else if (kind == ATT_K_STAGE)
            atts_current()->launch(dt, D, grid, c->stream, (float *)work, qp, cu_view_of(&qb),
                                   NULL, NULL, NULL, 0, &rc, cap, pp, pb.stride[0], n_heads,
                                   context, scale, yd);
        else if (wide) {
            const size_t wshm = attw_shm(D);
            if (dt == XS_Q8_0)
                k_attention_part_wide_rows<cu_kv_q8><<<grid, ATTW_THREADS, wshm, c->stream>>>(
                    (float *)work, qp, cu_view_of(&qb), rc, cap, pp, pb.stride[0], n_heads, D,
                    context, scale, yd);
            else if (dt == XS_BF16)
                k_attention_part_wide_rows<uint16_t><<<grid, ATTW_THREADS, wshm, c->stream>>>(
                    (float *)work, qp, cu_view_of(&qb), rc, cap, pp, pb.stride[0], n_heads, D,
                    context, scale, yd);
            else
                k_attention_part_wide_rows<float><<<grid, ATTW_THREADS, wshm, c->stream>>>(
                    (float *)work, qp, cu_view_of(&qb), rc, cap, pp, pb.stride[0], n_heads, D,
                    context, scale, yd);
        } else if (dt == XS_Q8_0)
            k_attention_part_rows<cu_kv_q8><<<grid, ATT_THREADS, shm, c->stream>>>(
                (float *)work, qp, cu_view_of(&qb), rc, ckv, cvv, cap, pp, pb.stride[0], n_heads,
                D, context, scale, yd);
        else if (dt == XS_BF16)
            k_attention_part_rows<uint16_t><<<grid, ATT_THREADS, shm, c->stream>>>(
                (float *)work, qp, cu_view_of(&qb), rc, ckv, cvv, cap, pp, pb.stride[0], n_heads,
                D, context, scale, yd);
        else
            k_attention_part_rows<float><<<grid, ATT_THREADS, shm, c->stream>>>(
                (float *)work, qp, cu_view_of(&qb), rc, ckv, cvv, cap, pp, pb.stride[0], n_heads,
                D, context, scale, yd);
        XS_TRY(cu_check_launch("attention_rows (chunks)"));
        if (yd) continue;
        k_attention_merge<<<(unsigned)(n * n_heads), 128, 0, c->stream>>>(
            (float *)yb.data, (const float *)work, n_chunks, n_heads, D);
        XS_TRY(cu_check_launch("attention_rows (merge)"));
    }
    return XS_OK;
}
