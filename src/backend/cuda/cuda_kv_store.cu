/*
 * cuda_kv_store.cu — rope and kv_store into the ring KV cache, one row or
 * B rows each with its own cache (backend.h *_rows).
 *
 * RoPE frequencies must be bit-identical to ref's host expf, so they are
 * computed on the host once per (head dim, max_period) and kept on the
 * device; the first call with a new pair uploads its table (do it before
 * capturing a graph). The rotation itself is in double, like ref.
 *
 * f32 and bf16 caches share one templated store kernel (cuda_kv_access.cuh
 * rounds as ref does). A q8_0 cache (the 8-bit option) has its own store
 * kernel: one warp per Q8_0 block of 32 values, amax by a warp reduction,
 * then the very float steps of xs_quantize_row_q8_0 with explicitly rounded
 * intrinsics (so no compiler flag can fuse or approximate them): the same
 * bytes as ref.
 *
 * The store kernels find row t of k and v through a cu_rowg
 * (cuda_row_geom.cuh): the cu_view versions copied both views to a 144-byte
 * per-thread stack frame and split t with 64-bit divisions, per element.
 * XSWARM_CUDA_ROWG=old (or EW=old) keeps the cu_view versions (A/B; same bytes).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_kv_access.cuh"
#include "backend/cuda/cuda_row_geom.cuh"

/* ---- rope ------------------------------------------------------------------------- */

static xs_status rope_table(cu_ctx *c, int64_t dim, float max_period, const float **out) {
    for (int i = 0; i < c->n_rope; i++)
        if (c->rope[i].dim == dim && c->rope[i].max_period == max_period) {
            *out = c->rope[i].freq;
            return XS_OK;
        }
    if (c->n_rope >= CU_MAX_ROPE_TABLES)
        return xs_error(XS_ERR_UNSUPPORTED, "cuda rope: more than %d (head dim, max_period) pairs",
                        CU_MAX_ROPE_TABLES);
    const int64_t half = dim / 2;
    float *h = (float *)malloc((size_t)(half ? half : 1) * sizeof *h);
    if (!h) return xs_error(XS_ERR_NOMEM, "cuda rope: out of memory");
    /* the same expression as ref_rope, evaluated by the same libm */
    const float coef = (float)(-log((double)max_period) * 2.0 / (double)dim);
    for (int64_t i = 0; i < half; i++) h[i] = expf((float)i * coef);
    float *d = NULL;
    cudaError_t e = cudaMalloc(&d, (size_t)(half ? half : 1) * sizeof *d);
    if (e == cudaSuccess) e = cudaMemcpy(d, h, (size_t)half * sizeof *d, cudaMemcpyHostToDevice);
    free(h);
    if (e != cudaSuccess) {
        if (d) cudaFree(d);
        return xs_error(XS_ERR_NOMEM, "cuda rope: frequency table: %s", cudaGetErrorString(e));
    }
    c->rope[c->n_rope].dim = dim;
    c->rope[c->n_rope].max_period = max_period;
    c->rope[c->n_rope].freq = d;
    c->n_rope++;
    *out = d;
    return XS_OK;
}

__global__ void k_rope(float *x, cu_view xv, const int32_t *pos, int64_t pos_stride,
                       const float *freq, int64_t T, int64_t H, int64_t half) {
    cu_pdl_enter();
    const int64_t t = blockIdx.x / H, h = blockIdx.x % H;
    if (t >= T) return;
    const float p = (float)pos[t * pos_stride];
    float *base = x + t * xv.stride[0] + h * xv.stride[1];
    for (int64_t i = threadIdx.x; i < half; i += blockDim.x) {
        const float angle = __fmul_rn(freq[i], p);
        const double c = cos((double)angle), s = sin((double)angle);
        float *re = base + (2 * i) * xv.stride[2], *im = base + (2 * i + 1) * xv.stride[2];
        const double r = *re, m = *im;
        *re = (float)__dsub_rn(__dmul_rn(r, c), __dmul_rn(m, s));
        *im = (float)__dadd_rn(__dmul_rn(r, s), __dmul_rn(m, c));
    }
}

xs_status cu_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period) {
    const int64_t T = x->shape[0], H = x->shape[1], D = x->shape[2];
    if (!T || !H || D < 2) return XS_OK;
    if (T * H > 2147483647LL) return xs_error(XS_ERR_UNSUPPORTED, "cuda rope: too many rows");
    cu_ctx *c = cu_ctx_of(be);
    const float *freq;
    XS_TRY(rope_table(c, D, max_period, &freq));
    const dim3 grid((unsigned)(T * H)), block(64);
    k_rope<<<grid, block, 0, c->stream>>>((float *)x->data, cu_view_of(x),
                                          (const int32_t *)pos->data, pos->stride[0], freq, T, H,
                                          D / 2);
    return cu_check_launch("rope");
}

/* ---- kv_store -------------------------------------------------------------------- */

template <typename KT, typename RV>
__global__ void k_kv_store(KT *ck, int64_t cks0, int64_t cks1, KT *cv, int64_t cvs0,
                           int64_t cvs1, int32_t *cpos, int64_t cpos_stride, int64_t cap,
                           const float *k, RV kv, const float *v, RV vv, const int32_t *pos,
                           int64_t pos_stride, int64_t T, int64_t hd, cu_err_rec *err) {
    cu_pdl_enter();
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t t = blockIdx.y;
    if (c >= hd || t >= T) return;
    const int32_t p = pos[t * pos_stride];
    if (p < 0) {
        if (c == 0) cu_report(err, CU_ERR_KV_POS, t, p, 0);
        return;
    }
    const int64_t slot = p % cap;
    /* Rows are stored in order on ref: a later row for the same slot wins. */
    for (int64_t t2 = t + 1; t2 < T; t2++) {
        const int32_t p2 = pos[t2 * pos_stride];
        if (p2 >= 0 && p2 % cap == slot) return;
    }
    kv_dev_store(&ck[slot * cks0 + c * cks1], k[cu_row_at(kv, t) + c * cu_inner_at(kv)]);
    kv_dev_store(&cv[slot * cvs0 + c * cvs1], v[cu_row_at(vv, t) + c * cu_inner_at(vv)]);
    if (c == 0) cpos[slot * cpos_stride] = p;
}

/* One Q8_0 block of one row: lane j holds x_j (backend.h's recipe). */
__device__ static inline void kv_q8_block(cu_kv_q8 *dst, float x, int lane) {
    const bool finite = isfinite(x);
    float amax = finite ? fabsf(x) : 0.0f;
    for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    if (!__all_sync(0xffffffffu, finite)) { /* no defined bytes: mark the block NaN */
        dst->qs[lane] = 0;
        if (lane == 0) dst->d = 0x7e00u;
        return;
    }
    const float d = __fdiv_rn(amax, 127.0f);
    const float id = d != 0.0f ? __fdiv_rn(1.0f, d) : 0.0f;
    if (isinf(id)) { /* amax < 127 * 2^-128: zeros, as on ref (backend.h) */
        dst->qs[lane] = 0;
        if (lane == 0) dst->d = 0;
        return;
    }
    dst->qs[lane] = (int8_t)roundf(__fmul_rn(x, id)); /* roundf: halves away from zero */
    if (lane == 0) dst->d = __half_as_ushort(__float2half_rn(d));
}

/* grid (ceil(blocks per row / warps per block), T): one warp per Q8_0 block
 * of row t, for k and v. */
template <typename RV>
__global__ void k_kv_store_q8(cu_kv_q8 *ck, cu_kv_q8 *cv, int32_t *cpos, int64_t cpos_stride,
                              int64_t cap, const float *k, RV kv, const float *v, RV vv,
                              const int32_t *pos, int64_t pos_stride, int64_t T, int64_t hd,
                              cu_err_rec *err) {
    cu_pdl_enter();
    const int lane = threadIdx.x & 31;
    const int64_t nb = hd / XS_QK;
    const int64_t b = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int64_t t = blockIdx.y;
    if (b >= nb || t >= T) return; /* whole warps leave together */
    const int32_t p = pos[t * pos_stride];
    if (p < 0) {
        if (b == 0 && lane == 0) cu_report(err, CU_ERR_KV_POS, t, p, 0);
        return;
    }
    const int64_t slot = p % cap;
    for (int64_t t2 = t + 1; t2 < T; t2++) { /* a later row for the same slot wins, as on ref */
        const int32_t p2 = pos[t2 * pos_stride];
        if (p2 >= 0 && p2 % cap == slot) return;
    }
    const int64_t c = b * XS_QK + lane;
    kv_q8_block(&ck[slot * nb + b], k[cu_row_at(kv, t) + c * cu_inner_at(kv)], lane);
    kv_q8_block(&cv[slot * nb + b], v[cu_row_at(vv, t) + c * cu_inner_at(vv)], lane);
    if (b == 0 && lane == 0) cpos[slot * cpos_stride] = p;
}

/* One launch of the store kernel for the cache's dtype, rows through RV. */
template <typename RV>
static xs_status kv_store_launch(cu_ctx *c, xs_kv_cache *cache, const xs_tensor *k, RV kv,
                                 const xs_tensor *v, RV vv, const xs_tensor *pos, int64_t T,
                                 int64_t hd) {
    if (cache->k.dtype == XS_Q8_0) {
        const dim3 qgrid(cu_blocks(hd / XS_QK, 8), (unsigned)T), qblock(256); /* 8 warps */
        k_kv_store_q8<<<qgrid, qblock, 0, c->stream>>>(
            (cu_kv_q8 *)cache->k.data, (cu_kv_q8 *)cache->v.data, (int32_t *)cache->pos.data,
            cache->pos.stride[0], cache->capacity, (const float *)k->data, kv,
            (const float *)v->data, vv, (const int32_t *)pos->data, pos->stride[0], T, hd,
            c->err);
        return cu_check_launch("kv_store (q8_0)");
    }
    const dim3 grid(cu_blocks(hd, 256), (unsigned)T), block(256);
    const xs_tensor *ck = &cache->k, *cv = &cache->v;
    if (ck->dtype == XS_BF16)
        k_kv_store<uint16_t><<<grid, block, 0, c->stream>>>(
            (uint16_t *)ck->data, ck->stride[0], ck->stride[1], (uint16_t *)cv->data,
            cv->stride[0], cv->stride[1], (int32_t *)cache->pos.data, cache->pos.stride[0],
            cache->capacity, (const float *)k->data, kv, (const float *)v->data, vv,
            (const int32_t *)pos->data, pos->stride[0], T, hd, c->err);
    else
        k_kv_store<float><<<grid, block, 0, c->stream>>>(
            (float *)ck->data, ck->stride[0], ck->stride[1], (float *)cv->data, cv->stride[0],
            cv->stride[1], (int32_t *)cache->pos.data, cache->pos.stride[0], cache->capacity,
            (const float *)k->data, kv, (const float *)v->data, vv, (const int32_t *)pos->data,
            pos->stride[0], T, hd, c->err);
    return cu_check_launch("kv_store");
}

xs_status cu_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                      const xs_tensor *v, const xs_tensor *pos) {
    const int64_t T = pos->shape[0], hd = cache->k.shape[1];
    if (!T || !hd) return XS_OK;
    if (T > 65535) return xs_error(XS_ERR_UNSUPPORTED, "cuda kv_store: %lld rows", (long long)T);
    cu_ctx *c = cu_ctx_of(be);
    cu_rowg kg, vg;
    if (cu_rowg_of(k, &kg) && cu_rowg_of(v, &vg))
        return kv_store_launch(c, cache, k, kg, v, vg, pos, T, hd);
    return kv_store_launch(c, cache, k, cu_view_of(k), v, cu_view_of(v), pos, T, hd);
}

/* ---- row-batched kv_store (backend.h kv_store_rows) ----------------------------- */

/* Row t (of this launch) into its own cache; the single-row kernel's stores. */
template <typename KT, typename RV>
__global__ void k_kv_store_rows(cu_rows_kv rc, int64_t cap, const float *k, RV kv,
                                const float *v, RV vv, const int32_t *pos,
                                int64_t pos_stride, int64_t hd, int64_t row0, cu_err_rec *err) {
    cu_pdl_enter();
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t t = blockIdx.y;
    if (c >= hd) return;
    const int32_t p = pos[t * pos_stride];
    if (p < 0) {
        if (c == 0) cu_report(err, CU_ERR_KV_POS, row0 + t, p, 0);
        return;
    }
    const int64_t slot = p % cap;
    kv_dev_store(&((KT *)rc.k[t])[slot * hd + c], k[cu_row_at(kv, t) + c * cu_inner_at(kv)]);
    kv_dev_store(&((KT *)rc.v[t])[slot * hd + c], v[cu_row_at(vv, t) + c * cu_inner_at(vv)]);
    if (c == 0) rc.pos[t][slot] = p;
}

template <typename RV>
__global__ void k_kv_store_q8_rows(cu_rows_kv rc, int64_t cap, const float *k, RV kv,
                                   const float *v, RV vv, const int32_t *pos,
                                   int64_t pos_stride, int64_t hd, int64_t row0, cu_err_rec *err) {
    cu_pdl_enter();
    const int lane = threadIdx.x & 31;
    const int64_t nb = hd / XS_QK;
    const int64_t b = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const int64_t t = blockIdx.y;
    if (b >= nb) return; /* whole warps leave together */
    const int32_t p = pos[t * pos_stride];
    if (p < 0) {
        if (b == 0 && lane == 0) cu_report(err, CU_ERR_KV_POS, row0 + t, p, 0);
        return;
    }
    const int64_t slot = p % cap, c = b * XS_QK + lane;
    kv_q8_block(&((cu_kv_q8 *)rc.k[t])[slot * nb + b],
                k[cu_row_at(kv, t) + c * cu_inner_at(kv)], lane);
    kv_q8_block(&((cu_kv_q8 *)rc.v[t])[slot * nb + b],
                v[cu_row_at(vv, t) + c * cu_inner_at(vv)], lane);
    if (b == 0 && lane == 0) rc.pos[t][slot] = p;
}

/* One launch of rows [b0, b0 + n) (kb, vb, pb: those rows), rows through RV. */
template <typename RV>
static void kv_store_rows_launch(cu_ctx *c, xs_dtype dt, const cu_rows_kv &rc, int64_t cap,
                                 const xs_tensor *kb, RV kv, const xs_tensor *vb, RV vv,
                                 const xs_tensor *pb, int64_t hd, int b0, int n) {
    const float *kp = (const float *)kb->data, *vp = (const float *)vb->data;
    const int32_t *pp = (const int32_t *)pb->data;
    if (dt == XS_Q8_0) {
        const dim3 grid(cu_blocks(hd / XS_QK, 8), (unsigned)n);
        k_kv_store_q8_rows<<<grid, 256, 0, c->stream>>>(rc, cap, kp, kv, vp, vv, pp,
                                                        pb->stride[0], hd, b0, c->err);
    } else if (dt == XS_BF16) {
        k_kv_store_rows<uint16_t><<<dim3(cu_blocks(hd, 256), (unsigned)n), 256, 0, c->stream>>>(
            rc, cap, kp, kv, vp, vv, pp, pb->stride[0], hd, b0, c->err);
    } else {
        k_kv_store_rows<float><<<dim3(cu_blocks(hd, 256), (unsigned)n), 256, 0, c->stream>>>(
            rc, cap, kp, kv, vp, vv, pp, pb->stride[0], hd, b0, c->err);
    }
}

xs_status cu_kv_store_rows(xs_backend *be, xs_kv_cache *const *caches, int B, const xs_tensor *k,
                           const xs_tensor *v, const xs_tensor *pos) {
    if (!rows_contiguous((const xs_kv_cache *const *)caches, B)) { /* not from kv_rings: loop */
        for (int b = 0; b < B; b++) {
            xs_tensor kb = xs_tensor_slice(k, 0, b, 1), vb = xs_tensor_slice(v, 0, b, 1);
            xs_tensor pb = xs_tensor_slice(pos, 0, b, 1);
            XS_TRY(cu_kv_store(be, caches[b], &kb, &vb, &pb));
        }
        return XS_OK;
    }
    cu_ctx *c = cu_ctx_of(be);
    const int64_t hd = caches[0]->k.shape[1], cap = caches[0]->capacity;
    const xs_dtype dt = caches[0]->k.dtype;
    for (int b0 = 0; b0 < B; b0 += CU_ROWS_CHUNK) {
        const int n = B - b0 < CU_ROWS_CHUNK ? B - b0 : CU_ROWS_CHUNK;
        const cu_rows_kv rc = rows_kv((const xs_kv_cache *const *)caches, b0, n);
        const xs_tensor kb = xs_tensor_slice(k, 0, b0, n), vb = xs_tensor_slice(v, 0, b0, n);
        const xs_tensor pb = xs_tensor_slice(pos, 0, b0, n);
        cu_rowg kg, vg;
        if (cu_rowg_of(&kb, &kg) && cu_rowg_of(&vb, &vg))
            kv_store_rows_launch(c, dt, rc, cap, &kb, kg, &vb, vg, &pb, hd, b0, n);
        else
            kv_store_rows_launch(c, dt, rc, cap, &kb, cu_view_of(&kb), &vb, cu_view_of(&vb), &pb,
                                 hd, b0, n);
        XS_TRY(cu_check_launch("kv_store_rows"));
    }
    return XS_OK;
}
