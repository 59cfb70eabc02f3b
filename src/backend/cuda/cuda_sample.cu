/*
 * cuda_sample.cu — argmax and top-k sampling on the device, giving the same
 * ids as ref for the same logits (see core/rng.h for the procedure).
 *
 * Candidate order (rng.c): larger logit first, lower index first on ties,
 * NaN last. sample_topk, top_k <= ST_MAX_K (every Moshi head): one block per
 * row does it all. By default k_topk_block (topk_block_row: one histogram, a
 * bitonic sort of the survivors, see its comment); XSWARM_CUDA_TOPK=old keeps
 * k_sample_block (same ids), whose sample_block_row goes:
 *  1. radix select over order keys (a monotone uint32 of the logit, NaN
 *     lowest, -0 == +0) finds the key T of the k-th candidate and how many of
 *     the logits equal to T belong to the top k (the lowest indices);
 *  2. the k candidates are gathered (those above T in any order, ties at T by
 *     an ordered block compaction) and ranked among themselves (k^2 compares);
 *  3. weights are computed in parallel, then one thread sums and scans them
 *     in candidate order, so the f32 sums are exactly the serial ones.
 * It replaced a rank kernel in which each of the top k logits scanned the
 * whole row (32000 loads for the text head): 0.7 ms per call, 6 ms per step.
 * Larger k (top_k <= 0 over a big vocabulary) keeps the two-kernel path:
 *  1. rank: one thread per logit counts how many logits precede it in that
 *     order (stopping at k); a logit of rank < k is written to slot `rank`
 *     of the row's candidate list. The order is total, so ranks are unique.
 *  2. pick: one thread per row walks the k candidates in order, exactly as
 *     xs_sample_topk_ref does: weights (float)exp((double)((l - lmax) /
 *     temp)) summed in f32, u from the same Philox counter, first running
 *     sum > u * sum wins. Serial on purpose: the f32 sum order is part of
 *     the result.
 * Every kernel finds its logits row through a cu_rowg (cuda_row_geom.cuh):
 * the cu_view versions copied the view to a 72-byte per-thread stack frame
 * and split the row with 64-bit divisions. XSWARM_CUDA_ROWG=old (or EW=old)
 * keeps them (A/B; same rows, same ids).
 */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_row_geom.cuh"

/* ---- shared candidate order ----------------------------------------------------- */

/* true when (la, a) comes before (lb, b): larger first, NaN last, then index. */
__device__ static inline bool cu_before(float la, int64_t a, float lb, int64_t b) {
    const bool na = la != la, nb = lb != lb;
    if (na != nb) return nb;
    if (!na) {
        if (la > lb) return true;
        if (la < lb) return false;
    }
    return a < b;
}

/* ---- argmax ------------------------------------------------------------------------ */

#define AM_THREADS 256

/* The argmax of one row by the whole block (any blockDim, multiple of 32):
 * the first in cu_before's total order (a total order: any reduction tree
 * gives the same index). Used by k_argmax and the greedy rows of k_sample_rows. */
__device__ __forceinline__ void argmax_block_row(int32_t *out, const float *lr, int64_t ls,
                                                 int64_t V) {
    __shared__ float wv[32];
    __shared__ int64_t wi[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    float bv = NAN;
    int64_t bi = -1;
    for (int64_t c = threadIdx.x; c < V; c += blockDim.x) {
        const float v = lr[c * ls];
        if (bi < 0 || cu_before(v, c, bv, bi)) {
            bv = v;
            bi = c;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (oi >= 0 && (bi < 0 || cu_before(ov, oi, bv, bi))) {
            bv = ov;
            bi = oi;
        }
    }
    if (lane == 0) {
        wv[warp] = bv;
        wi[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int w = 1; w < nw; w++)
        if (wi[w] >= 0 && (bi < 0 || cu_before(wv[w], wi[w], bv, bi))) {
            bv = wv[w];
            bi = wi[w];
        }
    *out = (int32_t)bi;
}

template <typename RV>
__global__ void k_argmax(int32_t *ids, const float *l, RV lv, int64_t V) {
    cu_pdl_enter();
    const int64_t r = blockIdx.x;
    argmax_block_row(&ids[r], l + cu_row_at(lv, r), cu_inner_at(lv), V);
}

static xs_status launch_argmax(cu_ctx *c, int32_t *ids, const xs_tensor *logits) {
    const int64_t m = cu_rows(logits), v = cu_inner(logits);
    if (!m) return XS_OK;
    cu_rowg g;
    if (cu_rowg_of(logits, &g))
        k_argmax<<<(unsigned)m, AM_THREADS, 0, c->stream>>>(ids, (const float *)logits->data, g,
                                                             v);
    else
        k_argmax<<<(unsigned)m, AM_THREADS, 0, c->stream>>>(ids, (const float *)logits->data,
                                                             cu_view_of(logits), v);
    return cu_check_launch("argmax");
}

xs_status cu_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits) {
    return launch_argmax(cu_ctx_of(be), (int32_t *)ids->data, logits);
}

/* ---- Philox4x32-10, bit for bit as core/rng.c ----------------------------------- */

__device__ static float cu_rng_uniform(uint64_t seed, uint64_t stream, uint64_t step,
                                       uint32_t draw) {
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    uint32_t c0 = (uint32_t)step, c1 = (uint32_t)(step >> 32), c2 = (uint32_t)stream, c3 = draw;
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        const uint32_t lo0 = 0xD2511F53u * c0, hi0 = __umulhi(0xD2511F53u, c0);
        const uint32_t lo1 = 0xCD9E8D57u * c2, hi1 = __umulhi(0xCD9E8D57u, c2);
        const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    return __fmul_rn((float)(c0 >> 8), 0x1p-24f);
}

/* ---- sample_topk ---------------------------------------------------------------- */

template <typename RV>
__global__ void k_rank(int32_t *cand, const float *l, RV lv, int64_t V, int64_t k) {
    cu_pdl_enter();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t r = blockIdx.y;
    if (i >= V) return;
    const float *lr = l + cu_row_at(lv, r);
    const int64_t ls = cu_inner_at(lv);
    const float li = lr[i * ls];
    int64_t rank = 0;
    for (int64_t j = 0; j < V && rank < k; j++)
        if (j != i && cu_before(lr[j * ls], j, li, i)) rank++;
    if (rank < k) cand[r * k + rank] = (int32_t)i;
}

__device__ static inline float cu_sample_weight(float l, float lmax, float temp) {
    const float a = __fdiv_rn(__fsub_rn(l, lmax), temp);
    return (float)exp((double)a);
}

/* The step counter: the host part plus the device part (i32 or i64 [1], or
 * none), read when the kernel runs so that a replayed graph sees new steps. */
__device__ static inline uint64_t cu_counter(uint64_t counter, const void *ct, int ct_i64) {
    if (!ct) return counter;
    const int64_t v = ct_i64 ? *(const int64_t *)ct : (int64_t) * (const int32_t *)ct;
    return counter + (uint64_t)v;
}

template <typename RV>
__global__ void k_pick(int32_t *ids, const int32_t *cand, const float *l, RV lv, int64_t k,
                       float temp, uint64_t seed, uint64_t stream, uint64_t counter,
                       const void *ct, int ct_i64) {
    cu_pdl_enter();
    const int64_t r = blockIdx.x;
    if (threadIdx.x != 0) return;
    counter = cu_counter(counter, ct, ct_i64);
    const float *lr = l + cu_row_at(lv, r);
    const int64_t ls = cu_inner_at(lv);
    const int32_t *cr = cand + r * k;
    const float lmax = lr[(int64_t)cr[0] * ls];
    float sum = 0.0f;
    for (int64_t i = 0; i < k; i++) sum = __fadd_rn(sum, cu_sample_weight(lr[(int64_t)cr[i] * ls], lmax, temp));
    const float u = cu_rng_uniform(seed, stream, counter + (uint64_t)r, 0);
    const float target = __fmul_rn(u, sum);
    float run = 0.0f;
    int32_t chosen = cr[k - 1];
    for (int64_t i = 0; i < k; i++) {
        run = __fadd_rn(run, cu_sample_weight(lr[(int64_t)cr[i] * ls], lmax, temp));
        if (run > target) {
            chosen = cr[i];
            break;
        }
    }
    ids[r] = chosen;
}

/* ---- sample_topk, one block per row ------------------------------------------ */

#define ST_THREADS 1024
#define ST_MAX_K 2048

/* Monotone in the candidate order: a larger logit has a larger key; -0 and
 * +0 share a key (they compare equal); every NaN has key 0, below -inf. */
__device__ static inline uint32_t cu_order_key(float x) {
    uint32_t u = __float_as_uint(x);
    if (x != x) return 0u;
    if ((u & 0x7fffffffu) == 0) u = 0;
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

/* One row's top-k sample by the whole block, into *out: the body of
 * k_sample_block and k_sample_rows (the same code, so the same token).
 * lr: the row's logits (inner stride ls); the draw's counter is counter +
 * ct[0] (see cu_counter). */
__device__ __forceinline__ void sample_block_row(int32_t *out, const float *lr, int64_t ls,
                                                 int64_t V, int k, float temp, uint64_t seed,
                                                 uint64_t stream, uint64_t counter,
                                                 const void *ct, int ct_i64) {
    __shared__ unsigned hist[256];
    __shared__ uint32_t s_prefix, s_mask;
    __shared__ int s_need, s_ngt;
    __shared__ int warp_tot[ST_THREADS / 32];
    __shared__ int32_t cidx[ST_MAX_K], sidx[ST_MAX_K];
    __shared__ float cval[ST_MAX_K], sval[ST_MAX_K];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nthr = blockDim.x;

    /* 1. radix select, 8 bits at a time from the top: the k-th largest key */
    if (tid == 0) {
        s_prefix = 0;
        s_mask = 0;
        s_need = k;
    }
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = tid; i < 256; i += nthr) hist[i] = 0;
        __syncthreads();
        const uint32_t prefix = s_prefix, mask = s_mask;
        for (int64_t i = tid; i < V; i += nthr) {
            const uint32_t key = cu_order_key(lr[i * ls]);
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (tid == 0) {
            int need = s_need;
            unsigned b = 255;
            while (b > 0 && (int)hist[b] < need) need -= (int)hist[b--];
            s_need = need; /* rank of the k-th within bin b */
            s_prefix = prefix | (b << shift);
            s_mask = mask | (255u << shift);
            s_ngt = 0;
        }
        __syncthreads();
    }
    const uint32_t T = s_prefix;
    const int take = s_need, ngt = k - take; /* ties at T taken, keys above T */

    /* 2a. keys above T, in any order */
    for (int64_t i = tid; i < V; i += nthr) {
        const float v = lr[i * ls];
        if (cu_order_key(v) > T) {
            const int p = atomicAdd(&s_ngt, 1);
            cidx[p] = (int32_t)i;
            cval[p] = v;
        }
    }
    /* 2b. the first `take` keys equal to T by index: ordered compaction */
    int taken = 0; /* same value in every thread */
    for (int64_t c0 = 0; c0 < V && taken < take; c0 += nthr) {
        const int64_t i = c0 + tid;
        const float v = i < V ? lr[i * ls] : 0.0f;
        const bool f = i < V && cu_order_key(v) == T;
        const unsigned ballot = __ballot_sync(0xffffffffu, f);
        if (lane == 0) warp_tot[warp] = __popc(ballot);
        __syncthreads();
        int before = 0, total = 0;
        for (int w = 0; w < nthr / 32; w++) {
            before += w < warp ? warp_tot[w] : 0;
            total += warp_tot[w];
        }
        const int pos = taken + before + __popc(ballot & ((1u << lane) - 1u));
        if (f && pos < take) {
            cidx[ngt + pos] = (int32_t)i;
            cval[ngt + pos] = v;
        }
        taken += total;
        __syncthreads(); /* warp_tot is rewritten next round */
    }
    __syncthreads();
    /* 2c. rank the k candidates among themselves (the order is total) */
    for (int c = tid; c < k; c += nthr) {
        const float lc = cval[c];
        const int32_t ic = cidx[c];
        int rank = 0;
        for (int j = 0; j < k; j++) rank += j != c && cu_before(cval[j], cidx[j], lc, ic);
        sidx[rank] = ic;
        sval[rank] = lc;
    }
    __syncthreads();
    /* 3. weights in parallel (into cval), sums in order by one thread */
    const float lmax = sval[0];
    for (int c = tid; c < k; c += nthr) cval[c] = cu_sample_weight(sval[c], lmax, temp);
    __syncthreads();
    if (tid != 0) return;
    float sum = 0.0f;
    for (int i = 0; i < k; i++) sum = __fadd_rn(sum, cval[i]);
    counter = cu_counter(counter, ct, ct_i64);
    const float u = cu_rng_uniform(seed, stream, counter, 0);
    const float target = __fmul_rn(u, sum);
    float run = 0.0f;
    int32_t chosen = sidx[k - 1];
    for (int i = 0; i < k; i++) {
        run = __fadd_rn(run, cval[i]);
        if (run > target) {
            chosen = sidx[i];
            break;
        }
    }
    *out = chosen;
}

/* ---- sample_topk, one block per row: select, sort, sum (the default) ----------
 * The same candidates in the same order, weights and sums as sample_block_row
 * (kept as XSWARM_CUDA_TOPK=old), found with fewer serial steps. That one
 * spent ~48 us per call (H100, eager profile; this one ~20) in one-thread loops (a walk over 256 bins
 * after each of 4 radix passes, the k-candidate sum, then the scan again),
 * shared atomics piled on the few bins that the top byte of a float has
 * (sign + 7 exponent bits), and a k^2 rank. Here:
 *  1. one histogram of the top 12 bits of the order key (sign, exponent and 3
 *     mantissa bits: ~8 bins per octave, so few atomics collide), the bin
 *     holding the k-th key found by a block-wide scan (no serial walk);
 *  2. every logit whose key is >= that bin's lowest key (the top k and the
 *     rest of its bin: ~50 of 32000 for the text head, ~280 of 2048 for an
 *     audio head) is gathered into shared memory as a 64-bit sort key
 *     (order key << 32 | ~index: larger first IS cu_before's order, ties by
 *     lower index, NaN last), and bitonic-sorted there, the stages inside 64
 *     entries synced per warp only. More than TB_CAP survivors (heavy ties):
 *     two more radix digits narrow the bin on the full row, and exact ties at
 *     the k-th key are taken by index (ordered compaction), as before;
 *  3. weights in parallel from the sorted keys (the key gives the logit back
 *     but for -0 -> +0 and NaN payloads, which change no weight); one thread
 *     sums them in candidate order keeping each running sum (the scan's run
 *     IS the same serial sum), then a warp finds the first run > u * sum. */

#define TB_CAP 2048 /* survivors sorted in shared memory (>= ST_MAX_K) */
#define TB_BINS 4096 /* first digit: top 12 bits of the order key */
#define FULL_MASK 0xffffffffu

/* The logit of an order key (cu_order_key's inverse, -0 -> +0, NaN -> a NaN). */
__device__ static inline float cu_key_value(uint32_t key) {
    return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

/* The 64-bit sort key of logit i with order key `key`: larger = earlier. */
__device__ static inline uint64_t cu_sort_key(uint32_t key, int64_t i) {
    return ((uint64_t)key << 32) | (uint64_t)(~(uint32_t)i);
}

/* The bin holding the need-th largest entry of hist[0, nb) (1-based, counted
 * from the top bin): every thread owns nb / blockDim.x bins, one block scan
 * gives each the count above its bins, and the thread whose bins hold the
 * need-th walks them. Results in *bin, *above (entries in higher bins),
 * *cnt (entries in the bin), valid for every thread on return. */
__device__ static void tb_find_bin(const unsigned *hist, int nb, int need, int *bin, int *above,
                                   int *cnt) {
    __shared__ int wsum[32];
    __shared__ int s_bin, s_above, s_cnt;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nthr = blockDim.x;
    const int per = nb / nthr, hi = nb - tid * per - 1; /* thread 0 owns the top bins */
    int local = 0;
    for (int b = hi; b > hi - per; b--) local += (int)hist[b];
    int incl = local;
    for (int o = 1; o < 32; o <<= 1) {
        const int v = __shfl_up_sync(FULL_MASK, incl, o);
        if (lane >= o) incl += v;
    }
    if (lane == 31) wsum[warp] = incl;
    __syncthreads();
    int excl = incl - local;
    for (int w = 0; w < warp; w++) excl += wsum[w];
    if (local > 0 && excl < need && need <= excl + local) {
        int acc = excl;
        for (int b = hi;; b--) {
            const int h = (int)hist[b];
            if (acc + h >= need) {
                s_bin = b;
                s_above = acc;
                s_cnt = h;
                break;
            }
            acc += h;
        }
    }
    __syncthreads();
    *bin = s_bin;
    *above = s_above;
    *cnt = s_cnt;
}

/* Appends sort keys of the flagged logits to S at *n (any order): one shared
 * atomic per warp. Every lane of the warp calls it (f may be false). */
__device__ __forceinline__ void tb_append(uint64_t *S, int *n, bool f, uint64_t sk) {
    const int lane = threadIdx.x & 31;
    const unsigned bal = __ballot_sync(FULL_MASK, f);
    if (!bal) return;
    const int leader = __ffs(bal) - 1;
    int base = 0;
    if (lane == leader) base = atomicAdd(n, __popc(bal));
    base = __shfl_sync(FULL_MASK, base, leader);
    if (f) S[base + __popc(bal & ((1u << lane) - 1u))] = sk;
}

/* Sorts S[0, P) (P a power of two) into descending order. A stage of pair
 * distance j <= 32 keeps every warp inside its own 64 entries (pairs q of
 * warp w touch [64 w', 64 w' + 64) only), so between two such stages a warp
 * sync is enough. */
__device__ static void tb_bitonic_desc(uint64_t *S, int P) {
    const int tid = threadIdx.x, nthr = blockDim.x;
    for (int size = 2; size <= P; size <<= 1)
        for (int j = size >> 1; j > 0; j >>= 1) {
            for (int q = tid; q < P / 2; q += nthr) {
                const int i = ((q & ~(j - 1)) << 1) | (q & (j - 1)), p = i + j;
                const uint64_t a = S[i], b = S[p];
                const bool desc = (i & size) == 0;
                if (desc ? a < b : a > b) {
                    S[i] = b;
                    S[p] = a;
                }
            }
            const int nj = j > 1 ? j >> 1 : size; /* the next stage's distance */
            if (j <= 32 && nj <= 32 && !(j == 1 && size == P)) __syncwarp();
            else __syncthreads();
        }
}

/* One row's top-k sample by the whole block (blockDim a power of two in
 * [128, 1024], k <= ST_MAX_K), into *out: the same token as
 * sample_block_row. */
__device__ __forceinline__ void topk_block_row(int32_t *out, const float *lr, int64_t ls,
                                               int64_t V, int k, float temp, uint64_t seed,
                                               uint64_t stream, uint64_t counter,
                                               const void *ct, int ct_i64) {
    __shared__ union {
        unsigned hist[TB_BINS];
        float w[2 * ST_MAX_K]; /* weights, then running sums (after the histograms) */
    } u;
    __shared__ uint64_t S[TB_CAP];
    __shared__ int s_n, warp_tot[32];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nthr = blockDim.x;

    /* 1. radix digits of the order key until the survivors fit TB_CAP */
    uint32_t prefix = 0, mask = 0;
    int need = k, above = 0, nsurv = 0;
    bool fits = false;
    if (tid == 0) s_n = 0;
    for (int pass = 0; pass < 3 && !fits; pass++) {
        const int shift = pass == 0 ? 20 : pass == 1 ? 10 : 0, nb = pass == 0 ? TB_BINS : 1024;
        for (int b = tid; b < nb; b += nthr) u.hist[b] = 0;
        __syncthreads();
        for (int64_t i = tid; i < V; i += nthr) {
            const uint32_t key = cu_order_key(lr[i * ls]);
            if ((key & mask) == prefix) atomicAdd(&u.hist[(key >> shift) & (uint32_t)(nb - 1)], 1u);
        }
        __syncthreads();
        int bin, ab, cnt;
        tb_find_bin(u.hist, nb, need, &bin, &ab, &cnt);
        above += ab;
        need -= ab; /* the k-th is the need-th largest of the bin */
        prefix |= (uint32_t)bin << shift;
        mask |= (uint32_t)(nb - 1) << shift;
        nsurv = above + cnt;
        fits = nsurv <= TB_CAP;
    }
    /* 2. gather: every key >= prefix (those above the bin and the bin), or
     * (heavy ties) the keys above T = prefix and the first `need` ties */
    if (fits) {
        for (int64_t c0 = 0; c0 < V; c0 += nthr) {
            const int64_t i = c0 + tid;
            const uint32_t key = i < V ? cu_order_key(lr[i * ls]) : 0u;
            tb_append(S, &s_n, i < V && key >= prefix, cu_sort_key(key, i));
        }
    } else {
        const uint32_t T = prefix;
        for (int64_t c0 = 0; c0 < V; c0 += nthr) {
            const int64_t i = c0 + tid;
            const uint32_t key = i < V ? cu_order_key(lr[i * ls]) : 0u;
            tb_append(S, &s_n, i < V && key > T, cu_sort_key(key, i));
        }
        int taken = 0; /* the same in every thread */
        for (int64_t c0 = 0; c0 < V && taken < need; c0 += nthr) {
            const int64_t i = c0 + tid;
            const bool f = i < V && cu_order_key(lr[i * ls]) == T;
            const unsigned bal = __ballot_sync(FULL_MASK, f);
            if (lane == 0) warp_tot[warp] = __popc(bal);
            __syncthreads();
            int before = 0, total = 0;
            for (int w = 0; w < nthr / 32; w++) {
                before += w < warp ? warp_tot[w] : 0;
                total += warp_tot[w];
            }
            const int pos = taken + before + __popc(bal & ((1u << lane) - 1u));
            if (f && pos < need) S[above + pos] = cu_sort_key(T, i);
            taken += total;
            __syncthreads(); /* warp_tot is rewritten next round */
        }
        nsurv = k;
    }
    int P = 1;
    while (P < nsurv) P <<= 1;
    __syncthreads(); /* S complete */
    for (int i = nsurv + tid; i < P; i += nthr) S[i] = 0; /* below every real key */
    __syncthreads();
    tb_bitonic_desc(S, P);

    /* 3. weights in parallel, the sums in candidate order by one thread */
    const float lmax = cu_key_value((uint32_t)(S[0] >> 32));
    float *wt = u.w, *run = u.w + ST_MAX_K;
    for (int c = tid; c < k; c += nthr) wt[c] = cu_sample_weight(cu_key_value((uint32_t)(S[c] >> 32)), lmax, temp);
    __syncthreads();
    if (warp != 0) return;
    float target = 0.0f;
    if (lane == 0) {
        counter = cu_counter(counter, ct, ct_i64);
        const float uu = cu_rng_uniform(seed, stream, counter, 0);
        /* 8 weights in registers ahead of the adds: loads of the next 8 are
         * issued before this 8's stores (they alias for the compiler), so
         * the chain waits on the adds, not on a shared load each. */
        float sum = 0.0f, cur[8], nxt[8];
#pragma unroll
        for (int j = 0; j < 8; j++) cur[j] = j < k ? wt[j] : 0.0f;
        for (int i = 0; i < k; i += 8) {
#pragma unroll
            for (int j = 0; j < 8; j++) nxt[j] = i + 8 + j < k ? wt[i + 8 + j] : 0.0f;
#pragma unroll
            for (int j = 0; j < 8; j++)
                if (i + j < k) {
                    sum = __fadd_rn(sum, cur[j]);
                    run[i + j] = sum;
                }
#pragma unroll
            for (int j = 0; j < 8; j++) cur[j] = nxt[j];
        }
        target = __fmul_rn(uu, sum);
    }
    __syncwarp();
    target = __shfl_sync(FULL_MASK, target, 0);
    int chosen = k - 1; /* no running sum above the target: the last */
    for (int c0 = 0; c0 < k; c0 += 32) {
        const unsigned bal = __ballot_sync(FULL_MASK, c0 + lane < k && run[c0 + lane] > target);
        if (bal) {
            chosen = c0 + __ffs(bal) - 1;
            break;
        }
    }
    if (lane == 0) *out = (int32_t)~(uint32_t)S[chosen];
}

/* XSWARM_CUDA_TOPK=old: sample_block_row (A/B; same ids). Read at every
 * call (a getenv: tests switch it in one process). */
static bool topk_old(void) {
    const char *e = getenv("XSWARM_CUDA_TOPK");
    return e && !strcmp(e, "old");
}

/* Threads of a topk_block_row block: a power of two; 512 keeps the syncs of
 * a small row cheaper, a long row wants more loads in flight. */
static int topk_threads(int64_t v) {
    return v >= 8192 ? 1024 : 512;
}

template <typename RV>
__global__ void __launch_bounds__(ST_THREADS)
k_topk_block(int32_t *ids, const float *l, RV lv, int64_t V, int k, float temp, uint64_t seed,
             uint64_t stream, uint64_t counter, const void *ct, int ct_i64) {
    cu_pdl_enter();
    const int64_t r = blockIdx.x;
    topk_block_row(&ids[r], l + cu_row_at(lv, r), cu_inner_at(lv), V, k, temp, seed, stream,
                   counter + (uint64_t)r, ct, ct_i64);
}

/* Row r draws with counter + r (+ ct[0]): the same sum mod 2^64 as before. */
template <typename RV>
__global__ void __launch_bounds__(ST_THREADS)
k_sample_block(int32_t *ids, const float *l, RV lv, int64_t V, int k, float temp,
               uint64_t seed, uint64_t stream, uint64_t counter, const void *ct, int ct_i64) {
    cu_pdl_enter();
    const int64_t r = blockIdx.x;
    sample_block_row(&ids[r], l + cu_row_at(lv, r), cu_inner_at(lv), V, k, temp, seed,
                     stream, counter + (uint64_t)r, ct, ct_i64);
}

/* cu_sample_topk's launches (top k of m rows of v logits), rows through RV. */
template <typename RV>
static xs_status sample_topk_launch(cu_ctx *c, xs_tensor *ids, const xs_tensor *logits, RV lv,
                                    int64_t m, int64_t v, int64_t k, float temp, uint64_t seed,
                                    uint64_t stream, uint64_t counter,
                                    const xs_tensor *counter_t) {
    const float *lp = (const float *)logits->data;
    if (k <= ST_MAX_K && !topk_old()) {
        k_topk_block<<<(unsigned)m, topk_threads(v), 0, c->stream>>>(
            (int32_t *)ids->data, lp, lv, v, (int)k, temp, seed, stream, counter,
            counter_t ? counter_t->data : NULL, counter_t && counter_t->dtype == XS_I64);
        return cu_check_launch("sample_topk");
    }
    if (k <= ST_MAX_K) {
        const int thr = v >= ST_THREADS ? ST_THREADS : (int)((v + 31) / 32 * 32);
        k_sample_block<<<(unsigned)m, thr, 0, c->stream>>>(
            (int32_t *)ids->data, lp, lv, v, (int)k, temp, seed, stream, counter,
            counter_t ? counter_t->data : NULL, counter_t && counter_t->dtype == XS_I64);
        return cu_check_launch("sample_topk");
    }
    void *scratch;
    XS_TRY(cu_scratch(c, (size_t)(m * k) * sizeof(int32_t), &scratch));
    int32_t *cand = (int32_t *)scratch;
    k_rank<<<dim3(cu_blocks(v, 256), (unsigned)m), 256, 0, c->stream>>>(cand, lp, lv, v, k);
    XS_TRY(cu_check_launch("sample_topk (rank)"));
    k_pick<<<(unsigned)m, 32, 0, c->stream>>>(
        (int32_t *)ids->data, cand, lp, lv, k, temp, seed, stream, counter,
        counter_t ? counter_t->data : NULL, counter_t && counter_t->dtype == XS_I64);
    return cu_check_launch("sample_topk (pick)");
}

xs_status cu_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits, float temp,
                         int top_k, uint64_t seed, uint64_t stream, uint64_t counter,
                         const xs_tensor *counter_t) {
    cu_ctx *c = cu_ctx_of(be);
    const int64_t m = cu_rows(logits), v = cu_inner(logits);
    if (!m) return XS_OK;
    if (!(temp > 0.0f)) return launch_argmax(c, (int32_t *)ids->data, logits);
    if (m > 65535) return xs_error(XS_ERR_UNSUPPORTED, "cuda sample_topk: %lld rows", (long long)m);
    const int64_t k = (top_k <= 0 || top_k >= v) ? v : top_k;
    cu_rowg g;
    if (cu_rowg_of(logits, &g))
        return sample_topk_launch(c, ids, logits, g, m, v, k, temp, seed, stream, counter,
                                  counter_t);
    return sample_topk_launch(c, ids, logits, cu_view_of(logits), m, v, k, temp, seed, stream,
                              counter, counter_t);
}

/* ---- sample_rows: every row its own settings, one launch (backend.h) -------------- */

#define SR_CHUNK 128 /* rows per launch: 16 bytes each keeps the parameters < 4 KB */

struct cu_sample_rows_arg {
    xs_sample_row row[SR_CHUNK];
};

/* Block r: row r0 + r with settings a.row[r]; the counter is counters[r0 + r]
 * (device, read at run time: a replayed graph draws with the current step).
 * OLD: sample_block_row (XSWARM_CUDA_TOPK=old), else topk_block_row. */
template <bool OLD, typename RV>
__global__ void __launch_bounds__(ST_THREADS)
k_sample_rows(int32_t *ids, const float *l, RV lv, int64_t V, cu_sample_rows_arg a,
              uint64_t stream, const int32_t *counters, int64_t cstride, int64_t r0) {
    cu_pdl_enter();
    const int64_t r = blockIdx.x, row = r0 + r;
    const xs_sample_row s = a.row[r];
    const float *lr = l + cu_row_at(lv, row);
    const int64_t ls = cu_inner_at(lv);
    if (s.greedy || !(s.temp > 0.0f)) {
        argmax_block_row(&ids[row], lr, ls, V);
        return;
    }
    const int k = (s.top_k <= 0 || s.top_k >= V) ? (int)V : s.top_k; /* <= ST_MAX_K (host) */
    const void *ct = counters ? (const void *)(counters + row * cstride) : NULL;
    if (OLD) sample_block_row(&ids[row], lr, ls, V, k, s.temp, s.seed, stream, 0, ct, 0);
    else topk_block_row(&ids[row], lr, ls, V, k, s.temp, s.seed, stream, 0, ct, 0);
}

xs_status cu_sample_rows(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                         const xs_sample_row *rows, uint64_t stream, const xs_tensor *counters) {
    cu_ctx *c = cu_ctx_of(be);
    const int64_t B = logits->shape[0], V = logits->shape[1];
    bool block_path = true; /* every sampled row's k fits one block */
    for (int64_t b = 0; b < B; b++) {
        const xs_sample_row *s = &rows[b];
        const int64_t k = (s->top_k <= 0 || s->top_k >= V) ? V : s->top_k;
        if (!s->greedy && s->temp > 0.0f && k > ST_MAX_K) block_path = false;
    }
    if (!block_path) { /* large k: the single-row two-kernel path, row by row */
        for (int64_t b = 0; b < B; b++) {
            int64_t one = 1;
            xs_tensor ib = xs_tensor_make(XS_I32, 1, &one, (int32_t *)ids->data + b);
            xs_tensor lb = xs_tensor_slice(logits, 0, b, 1);
            xs_tensor cb;
            memset(&cb, 0, sizeof cb);
            if (counters) cb = xs_tensor_slice(counters, 0, b, 1);
            if (rows[b].greedy) XS_TRY(cu_argmax(be, &ib, &lb));
            else
                XS_TRY(cu_sample_topk(be, &ib, &lb, rows[b].temp, rows[b].top_k, rows[b].seed,
                                      stream, 0, counters ? &cb : NULL));
        }
        return XS_OK;
    }
    const bool old = topk_old();
    const int thr = !old ? topk_threads(V) : V >= ST_THREADS ? ST_THREADS : (int)((V + 31) / 32 * 32);
    cu_rowg g;
    const bool fast = cu_rowg_of(logits, &g);
    for (int64_t b0 = 0; b0 < B; b0 += SR_CHUNK) {
        const int64_t n = B - b0 < SR_CHUNK ? B - b0 : SR_CHUNK;
        cu_sample_rows_arg a;
        memset(&a, 0, sizeof a);
        memcpy(a.row, rows + b0, (size_t)n * sizeof *rows);
        const int32_t *cp = counters ? (const int32_t *)counters->data : NULL;
        const int64_t cs = counters ? counters->stride[0] : 0;
        int32_t *ip = (int32_t *)ids->data;
        const float *lp = (const float *)logits->data;
        if (fast && !old)
            k_sample_rows<false><<<(unsigned)n, thr, 0, c->stream>>>(ip, lp, g, V, a, stream, cp, cs, b0);
        else if (fast)
            k_sample_rows<true><<<(unsigned)n, thr, 0, c->stream>>>(ip, lp, g, V, a, stream, cp, cs, b0);
        else if (!old)
            k_sample_rows<false><<<(unsigned)n, thr, 0, c->stream>>>(ip, lp, cu_view_of(logits), V, a,
                                                                     stream, cp, cs, b0);
        else
            k_sample_rows<true><<<(unsigned)n, thr, 0, c->stream>>>(ip, lp, cu_view_of(logits), V, a,
                                                                    stream, cp, cs, b0);
        XS_TRY(cu_check_launch("sample_rows"));
    }
    return XS_OK;
}
