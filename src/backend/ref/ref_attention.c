/*
 * ref_attention.c — rope, kv_store and attention over a ring KV cache.
 *
 * Ring invariants (see backend.h): the slot of position p is p % capacity;
 * cache.pos[slot] holds the position stored there or -1. Attention never
 * trusts a slot's index to tell its position: it reads cache.pos, so a ring
 * that wrapped, or slots not yet written, are handled by the same test
 * 0 <= pos[t] - p < context.
 *
 * A bf16 cache (backend.h) stores xs_f32_to_bf16 of each value and reads it
 * back exactly; the arithmetic is otherwise the f32 cache's. A q8_0 cache
 * quantizes each stored row in blocks of 32 (ref_kv_quantize_row_q8_0) and
 * reads d * q; again the arithmetic is the f32 cache's.
 */
#include <math.h>
#include <stdlib.h>

#include "backend/ref/ref.h"
#include "core/quant.h"

xs_status ref_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period) {
    (void)be;
    const int64_t T = x->shape[0], H = x->shape[1], D = x->shape[2];
    /* Frequencies exactly as Kyutai's apply_rope computes them: the coefficient
     * -ln(max_period) * 2 / D is a Python double turned into an f32 scalar, the
     * product with i and the exp are f32. The angle pos * freq is f32 too. */
    const float coef = (float)(-log((double)max_period) * 2.0 / (double)D);
    for (int64_t t = 0; t < T; t++) {
        const float p = (float)((const int32_t *)pos->data)[t * pos->stride[0]];
        for (int64_t i = 0; i < D / 2; i++) {
            const float freq = expf((float)i * coef);
            const float angle = freq * p;
            const double c = cos((double)angle), s = sin((double)angle);
            for (int64_t h = 0; h < H; h++) {
                float *base = (float *)x->data + t * x->stride[0] + h * x->stride[1];
                float *re = base + (2 * i) * x->stride[2], *im = base + (2 * i + 1) * x->stride[2];
                const double r = *re, m = *im;
                *re = (float)(r * c - m * s);
                *im = (float)(r * s + m * c);
            }
        }
    }
    return XS_OK;
}

/* Element c of slot s of a cache tensor (f32, bf16 or q8_0), as f32. A
 * q8_0 tensor is contiguous (tensor.h): element i is value i % 32 of block
 * i / 32. */
static inline float cache_at(const xs_tensor *t, int64_t s, int64_t c) {
    if (t->dtype == XS_Q8_0) {
        const int64_t i = s * t->shape[1] + c;
        const xs_block_q8_0 *b = (const xs_block_q8_0 *)t->data + i / XS_QK;
        return xs_f16_to_f32(b->d) * (float)b->qs[i % XS_QK];
    }
    const int64_t i = s * t->stride[0] + c * t->stride[1];
    if (t->dtype == XS_BF16) return xs_bf16_to_f32(((const uint16_t *)t->data)[i]);
    return ((const float *)t->data)[i];
}

void ref_kv_quantize_row_q8_0(const float *x, int64_t stride, void *dst, int64_t n) {
    xs_block_q8_0 *y = dst;
    float xb[XS_QK];
    for (int64_t b = 0; b < n / XS_QK; b++) {
        bool finite = true;
        float amax = 0.0f;
        for (int j = 0; j < XS_QK; j++) {
            xb[j] = x[(b * XS_QK + j) * stride];
            finite = finite && isfinite(xb[j]);
            if (fabsf(xb[j]) > amax) amax = fabsf(xb[j]);
        }
        const float d = amax / 127.0f;
        if (finite && !(d != 0.0f && isinf(1.0f / d))) {
            xs_quantize_row_q8_0(xb, &y[b], XS_QK); /* the model-file quantizer itself */
        } else {
            /* roundf(inf or NaN) has no int8 (an inf or NaN value, or 1 / d
             * overflowing for amax < 127 * 2^-128): defined bytes instead
             * (backend.h): NaN marks the block, a tiny one is zeros */
            y[b].d = finite ? 0 : 0x7e00u;
            for (int j = 0; j < XS_QK; j++) y[b].qs[j] = 0;
        }
    }
}

static inline void cache_set(xs_tensor *t, int64_t s, int64_t c, float x) {
    const int64_t i = s * t->stride[0] + c * t->stride[1];
    if (t->dtype == XS_BF16)
        ((uint16_t *)t->data)[i] = xs_f32_to_bf16(x);
    else
        ((float *)t->data)[i] = x;
}

xs_status ref_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                       const xs_tensor *v, const xs_tensor *pos) {
    (void)be;
    const int64_t T = pos->shape[0], hd = cache->k.shape[1], cap = cache->capacity;
    int32_t *cpos = cache->pos.data;
    for (int64_t t = 0; t < T; t++) {
        const int32_t p = ((const int32_t *)pos->data)[t * pos->stride[0]];
        if (p < 0)
            return xs_error(XS_ERR_ARG, "kv_store: negative position %d at row %lld", (int)p,
                            (long long)t);
        const int64_t slot = p % cap;
        const int64_t ko = ref_row_offset(k, t), vo = ref_row_offset(v, t);
        if (cache->k.dtype == XS_Q8_0) {
            const size_t rb = xs_dtype_row_bytes(XS_Q8_0, hd);
            ref_kv_quantize_row_q8_0(ref_f32_at(k, ko, 0), k->stride[k->ndim - 1],
                                     (char *)cache->k.data + (size_t)slot * rb, hd);
            ref_kv_quantize_row_q8_0(ref_f32_at(v, vo, 0), v->stride[v->ndim - 1],
                                     (char *)cache->v.data + (size_t)slot * rb, hd);
            cpos[slot * cache->pos.stride[0]] = p;
            continue;
        }
        for (int64_t c = 0; c < hd; c++) {
            cache_set(&cache->k, slot, c, *ref_f32_at(k, ko, c));
            cache_set(&cache->v, slot, c, *ref_f32_at(v, vo, c));
        }
        cpos[slot * cache->pos.stride[0]] = p;
    }
    return XS_OK;
}

xs_status ref_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                        const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                        int64_t context, float scale) {
    (void)be;
    const int64_t T = pos->shape[0], hd = cache->k.shape[1], cap = cache->capacity;
    const int64_t D = hd / n_heads;
    const int32_t *cpos = cache->pos.data;
    double *w = malloc((size_t)cap * sizeof *w);
    double *acc = malloc((size_t)D * sizeof *acc);
    /* A separate visibility mask, not a NaN sentinel in w: a NaN score coming
     * from the data must propagate to y so that diagnosis sees it. */
    unsigned char *vis = malloc((size_t)cap);
    if (!w || !acc || !vis) {
        free(w);
        free(acc);
        free(vis);
        return xs_error(XS_ERR_NOMEM, "ref attention: out of memory");
    }
    for (int64_t t = 0; t < T; t++) {
        const int64_t pt = ((const int32_t *)pos->data)[t * pos->stride[0]];
        const int64_t qo = ref_row_offset(q, t), yo = ref_row_offset(y, t);
        for (int64_t h = 0; h < n_heads; h++) {
            double mx = -INFINITY;
            for (int64_t s = 0; s < cap; s++) {
                const int64_t p = cpos[s * cache->pos.stride[0]];
                vis[s] = p >= 0 && pt - p >= 0 && pt - p < context;
                if (!vis[s]) continue;
                double dot = 0.0;
                for (int64_t d = 0; d < D; d++)
                    dot += (double)*ref_f32_at(q, qo, h * D + d) *
                           (double)cache_at(&cache->k, s, h * D + d);
                w[s] = dot * (double)scale;
                if (w[s] > mx || isnan(w[s])) mx = w[s];
            }
            double sum = 0.0;
            for (int64_t d = 0; d < D; d++) acc[d] = 0.0;
            for (int64_t s = 0; s < cap; s++) {
                if (!vis[s]) continue;
                const double e = exp(w[s] - mx);
                sum += e;
                for (int64_t d = 0; d < D; d++)
                    acc[d] += e * (double)cache_at(&cache->v, s, h * D + d);
            }
            /* No visible key (cannot happen after storing pos[t] itself): zeros.
             * (sum > 0 is false for NaN too; keep NaN then.) */
            for (int64_t d = 0; d < D; d++)
                *ref_f32_at(y, yo, h * D + d) =
                    (float)(sum > 0.0 || isnan(sum) ? acc[d] / sum : 0.0);
        }
    }
    free(w);
    free(acc);
    free(vis);
    return XS_OK;
}
