/*
 * cpu_rowops.c — the non-matmul ops of the cpu backend: norms, softmax,
 * rope, attention over the ring KV cache, activations, embedding,
 * add/mul/scale, argmax.
 *
 * Fast paths take contiguous tensors (what model code passes); any strided
 * view goes to the ref implementation, which handles every layout. Work is
 * split over rows (or fixed element ranges), and every row is computed the
 * same way whatever thread runs it, so results do not depend on the thread
 * count. Sums use 16 independent f32 lanes, which the compiler vectorizes
 * without reassociating (no -ffast-math needed); the hot dot product of
 * attention uses the run-time-dispatched matmul kernel.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/ref/ref.h"
#include "core/quant.h"
#include "core/rng.h"

#define LANES 16
#define ELEM_GRAIN 32768 /* elements per chunk below which threads do not pay */

static inline float sum_lanes(const float *a) {
    float s = 0;
    for (int l = 0; l < LANES; l++) s += a[l];
    return s;
}

static int64_t inner_dim(const xs_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
static int64_t row_count(const xs_tensor *t) {
    int64_t d = inner_dim(t);
    return d ? xs_tensor_numel(t) / d : 0;
}
static int64_t row_grain(int64_t d) { return d >= ELEM_GRAIN ? 1 : ELEM_GRAIN / (d ? d : 1); }

static int all_contig(const xs_tensor *a, const xs_tensor *b, const xs_tensor *c) {
    return (!a || xs_tensor_is_contiguous(a)) && (!b || xs_tensor_is_contiguous(b)) &&
           (!c || xs_tensor_is_contiguous(c));
}

/* ---- norms ------------------------------------------------------------------ */

typedef struct norm_job {
    float *y;
    const float *x, *w, *b;
    int64_t d;
    float eps;
} norm_job;

static void layer_norm_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    const norm_job *j = arg;
    const int64_t d = j->d;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * d;
        float *y = j->y + r * d;
        float acc[LANES] = {0};
        int64_t c = 0;
        for (; c + LANES <= d; c += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += x[c + l];
        float s = sum_lanes(acc);
        for (; c < d; c++) s += x[c];
        const float mean = s / (float)d;
        float vacc[LANES] = {0};
        for (c = 0; c + LANES <= d; c += LANES)
            for (int l = 0; l < LANES; l++) {
                float e = x[c + l] - mean;
                vacc[l] += e * e;
            }
        float v = sum_lanes(vacc);
        for (; c < d; c++) v += (x[c] - mean) * (x[c] - mean);
        const float inv = (float)(1.0 / sqrt((double)(v / (float)d) + (double)j->eps));
        if (j->b)
            for (c = 0; c < d; c++) y[c] = (x[c] - mean) * inv * j->w[c] + j->b[c];
        else
            for (c = 0; c < d; c++) y[c] = (x[c] - mean) * inv * j->w[c];
    }
}

xs_status cpu_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                         const xs_tensor *b, float eps) {
    if (!all_contig(y, x, w) || !all_contig(b, NULL, NULL))
        return ref_layer_norm(be, y, x, w, b, eps);
    norm_job j = {y->data, x->data, w->data, b ? b->data : NULL, inner_dim(x), eps};
    xs_threadpool_for(cpu_ctx_of(be)->pool, row_count(x), row_grain(j.d), layer_norm_rows, &j);
    return XS_OK;
}

static void rms_norm_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    const norm_job *j = arg;
    const int64_t d = j->d;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * d;
        float *y = j->y + r * d;
        float acc[LANES] = {0};
        int64_t c = 0;
        for (; c + LANES <= d; c += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += x[c + l] * x[c + l];
        float ss = sum_lanes(acc);
        for (; c < d; c++) ss += x[c] * x[c];
        const float inv = (float)(1.0 / sqrt((double)j->eps + (double)(ss / (float)d)));
        for (c = 0; c < d; c++) y[c] = x[c] * j->w[c] * inv;
    }
}

xs_status cpu_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *alpha,
                       float eps) {
    if (!all_contig(y, x, alpha)) return ref_rms_norm(be, y, x, alpha, eps);
    norm_job j = {y->data, x->data, alpha->data, NULL, inner_dim(x), eps};
    xs_threadpool_for(cpu_ctx_of(be)->pool, row_count(x), row_grain(j.d), rms_norm_rows, &j);
    return XS_OK;
}

/* ---- softmax ------------------------------------------------------------- */

/* In place on y (which holds x): y = exp(y - max) / sum. */
static void softmax_row(float *y, int64_t d) {
    float mx = -INFINITY;
    for (int64_t c = 0; c < d; c++) mx = y[c] > mx ? y[c] : mx;
    float acc[LANES] = {0};
    int64_t c = 0;
    for (; c + LANES <= d; c += LANES)
        for (int l = 0; l < LANES; l++) {
            y[c + l] = expf(y[c + l] - mx);
            acc[l] += y[c + l];
        }
    float s = sum_lanes(acc);
    for (; c < d; c++) {
        y[c] = expf(y[c] - mx);
        s += y[c];
    }
    const float inv = 1.0f / s;
    for (c = 0; c < d; c++) y[c] *= inv;
}

static void softmax_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    const norm_job *j = arg;
    for (int64_t r = r0; r < r1; r++) {
        if (j->y != j->x) memcpy(j->y + r * j->d, j->x + r * j->d, (size_t)j->d * sizeof(float));
        softmax_row(j->y + r * j->d, j->d);
    }
}

xs_status cpu_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    if (!all_contig(y, x, NULL)) return ref_softmax(be, y, x);
    norm_job j = {y->data, x->data, NULL, NULL, inner_dim(x), 0};
    xs_threadpool_for(cpu_ctx_of(be)->pool, row_count(x), row_grain(j.d), softmax_rows, &j);
    return XS_OK;
}

/* ---- rope ----------------------------------------------------------------- */

xs_status cpu_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period) {
    if (!xs_tensor_is_contiguous(x) || x->ndim != 3) return ref_rope(be, x, pos, max_period);
    const int64_t T = x->shape[0], H = x->shape[1], D = x->shape[2], half = D / 2;
    /* Same float order as ref (and Kyutai): f32 coefficient, f32 exp and angle. */
    const float coef = (float)(-log((double)max_period) * 2.0 / (double)D);
    float *cs = malloc((size_t)(half > 0 ? half : 1) * 2 * sizeof *cs);
    if (!cs) return xs_error(XS_ERR_NOMEM, "cpu rope: out of memory");
    for (int64_t t = 0; t < T; t++) {
        const float p = (float)((const int32_t *)pos->data)[t * pos->stride[0]];
        for (int64_t i = 0; i < half; i++) {
            const float angle = expf((float)i * coef) * p;
            cs[2 * i] = (float)cos((double)angle);
            cs[2 * i + 1] = (float)sin((double)angle);
        }
        for (int64_t h = 0; h < H; h++) {
            float *v = (float *)x->data + (t * H + h) * D;
            for (int64_t i = 0; i < half; i++) {
                const float r = v[2 * i], m = v[2 * i + 1], c = cs[2 * i], s = cs[2 * i + 1];
                v[2 * i] = r * c - m * s;
                v[2 * i + 1] = r * s + m * c;
            }
        }
    }
    free(cs);
    return XS_OK;
}

/* ---- attention over the ring KV cache ------------------------------------------ */

/* Split-softmax attention (as in flash-decoding). The ring's slots are cut
 * into fixed blocks of ATTN_BLOCK; one work item is (query row, block) and
 * covers every head, so each slot's K and V rows (H*D floats) are read as
 * one contiguous run: splitting by heads instead made two threads read
 * half-rows 16 KB apart and ran at a third of the bandwidth. Each item
 * leaves, per head, its max score m, sum of exp(score - m) l and weighted
 * value sum acc; a final pass merges the blocks of each head in block
 * order. Block bounds do not depend on the thread count, so neither do
 * the results. */
#define ATTN_BLOCK 128
#define ATTN_MAX_HEADS 256

typedef struct attn_job {
    cpu_ctx *c;
    float *y;
    const float *q;
    const xs_kv_cache *cache;
    const int32_t *qpos; /* [T] */
    int64_t pos_stride;
    int64_t H, D, hd, context, n_blocks;
    float scale;
    float *part; /* [T][n_blocks][H][2 + D]: m, l, acc[D] */
} attn_job;

/* Byte offset of element e of a contiguous cache tensor; for q8_0, e is on
 * a block boundary (a slot's row, a head). */
static inline size_t kv_elem_bytes(xs_dtype dt, int64_t e) {
    if (dt == XS_Q8_0) return (size_t)(e / XS_QK) * sizeof(xs_block_q8_0);
    return (size_t)e * (dt == XS_BF16 ? sizeof(uint16_t) : sizeof(float));
}

static void attn_block(const attn_job *j, int64_t t, int64_t blk, float *sc) {
    const xs_kv_cache *kv = j->cache;
    const int64_t H = j->H, D = j->D, hd = j->hd;
    const int64_t s0 = blk * ATTN_BLOCK;
    const int64_t s1 = s0 + ATTN_BLOCK < kv->capacity ? s0 + ATTN_BLOCK : kv->capacity;
    const int32_t *cpos = kv->pos.data;
    /* f32, bf16 or q8_0 cache: the dot kernel of the cache dtype reads K
     * rows in place (bf16 -> f32 and q8_0's d * q are exact; a head is whole
     * q8_0 blocks, ops.c checks it); a bf16 or q8_0 V row is widened once
     * into vbuf (after the scores in sc) and shared by every head. */
    const xs_dtype dt = kv->k.dtype;
    const char *K = kv->k.data, *V = kv->v.data;
    const float *qt = j->q + t * hd;
    float *vbuf = sc + ATTN_BLOCK * H;
    const int64_t pt = j->qpos[t * j->pos_stride];
    cpu_dot_fn dot = j->c->k.dot[dt];
    float *part = j->part + (t * j->n_blocks + blk) * H * (2 + D);
    for (int64_t h = 0; h < H; h++) {
        float *ph = part + h * (2 + D);
        ph[0] = -INFINITY, ph[1] = 0;
        for (int64_t d = 0; d < D; d++) ph[2 + d] = 0;
    }
    for (int64_t s = s0; s < s1; s++) {
        const int64_t p = cpos[s];
        float *ss = sc + (s - s0) * H;
        if (p < 0 || pt - p < 0 || pt - p >= j->context) {
            ss[0] = NAN; /* masked for every head */
            continue;
        }
        for (int64_t h = 0; h < H; h++) {
            dot(K + kv_elem_bytes(dt, s * hd + h * D), qt + h * D, 0, 1, D, &ss[h]);
            ss[h] *= j->scale;
            if (ss[h] > part[h * (2 + D)]) part[h * (2 + D)] = ss[h];
        }
    }
    for (int64_t s = s0; s < s1; s++) {
        const float *ss = sc + (s - s0) * H;
        if (isnan(ss[0])) continue;
        const float *vr = (const float *)(V + kv_elem_bytes(dt, s * hd));
        if (dt != XS_F32) {
            j->c->k.to_f32[dt](V + kv_elem_bytes(dt, s * hd), vbuf, hd);
            vr = vbuf;
        }
        for (int64_t h = 0; h < H; h++) {
            float *ph = part + h * (2 + D);
            const float e = expf(ss[h] - ph[0]);
            ph[1] += e;
            j->c->k.axpy(ph + 2, vr + h * D, e, D);
        }
    }
}

static void attn_items(void *arg, int64_t i0, int64_t i1, int tid) {
    const attn_job *j = arg;
    float *sc = cpu_scratch(j->c, tid);
    for (int64_t it = i0; it < i1; it++) attn_block(j, it / j->n_blocks, it % j->n_blocks, sc);
}

/* y[t, h] = sum_b acc_b e^(m_b - M) / sum_b l_b e^(m_b - M), M = max_b m_b. */
static void attn_merge(const attn_job *j, int64_t T) {
    const int64_t H = j->H, D = j->D, w = 2 + D;
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++) {
            float *yh = j->y + t * j->hd + h * D;
            float M = -INFINITY, L = 0;
            for (int64_t b = 0; b < j->n_blocks; b++) {
                const float m = j->part[((t * j->n_blocks + b) * H + h) * w];
                if (m > M) M = m;
            }
            for (int64_t d = 0; d < D; d++) yh[d] = 0;
            if (M == -INFINITY) continue; /* no visible key: zeros, like ref */
            for (int64_t b = 0; b < j->n_blocks; b++) {
                const float *ph = j->part + ((t * j->n_blocks + b) * H + h) * w;
                if (ph[1] == 0) continue;
                const float f = expf(ph[0] - M);
                L += ph[1] * f;
                j->c->k.axpy(yh, ph + 2, f, D);
            }
            const float inv = L > 0 ? 1.0f / L : 0.0f;
            for (int64_t d = 0; d < D; d++) yh[d] *= inv;
        }
}

xs_status cpu_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                        const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                        int64_t context, float scale) {
    if (!all_contig(y, q, NULL) || !xs_tensor_is_contiguous(&cache->k) ||
        !xs_tensor_is_contiguous(&cache->v) || !xs_tensor_is_contiguous(&cache->pos) ||
        n_heads > ATTN_MAX_HEADS)
        return ref_attention(be, y, q, cache, pos, n_heads, context, scale);
    cpu_ctx *c = cpu_ctx_of(be);
    const int64_t hd = cache->k.shape[1], T = pos->shape[0], D = hd / n_heads;
    const int64_t n_blocks = (cache->capacity + ATTN_BLOCK - 1) / ATTN_BLOCK;
    XS_TRY(cpu_scratch_reserve(c, (size_t)(ATTN_BLOCK * n_heads + hd))); /* scores + vbuf */
    XS_TRY(cpu_shared_reserve(c, (size_t)(T * n_blocks * n_heads * (2 + D))));
    attn_job j = {.c = c, .y = y->data, .q = q->data, .cache = cache, .qpos = pos->data,
                  .pos_stride = pos->stride[0], .H = n_heads, .D = D, .hd = hd,
                  .context = context, .n_blocks = n_blocks, .scale = scale, .part = c->shared};
    xs_threadpool_for(c->pool, T * n_blocks, cpu_grain(2.0 * ATTN_BLOCK * (double)hd), attn_items,
                      &j);
    attn_merge(&j, T);
    return XS_OK;
}

/* ---- element-wise ------------------------------------------------------------ */

typedef enum ew_kind { EW_ELU, EW_GELU, EW_SCALE, EW_ADD, EW_MUL, EW_ADD_ROW, EW_MUL_ROW } ew_kind;

typedef struct ew_job {
    ew_kind kind;
    cpu_elu_fn elu;
    float *y;
    const float *a, *b;
    int64_t d; /* row length for broadcast */
    float p0, p1;
} ew_job;

static void ew_range(void *arg, int64_t i0, int64_t i1, int tid) {
    (void)tid;
    const ew_job *j = arg;
    float *y = j->y;
    const float *a = j->a, *b = j->b;
    switch (j->kind) {
    case EW_ELU:
        j->elu(y + i0, a + i0, j->p0, i1 - i0);
        break;
    case EW_GELU:
        for (int64_t i = i0; i < i1; i++)
            y[i] = 0.5f * a[i] * (1.0f + erff(a[i] * (float)M_SQRT1_2));
        break;
    case EW_SCALE:
        for (int64_t i = i0; i < i1; i++) y[i] = a[i] * j->p0 + j->p1;
        break;
    case EW_ADD:
        for (int64_t i = i0; i < i1; i++) y[i] = a[i] + b[i];
        break;
    case EW_MUL:
        for (int64_t i = i0; i < i1; i++) y[i] = a[i] * b[i];
        break;
    case EW_ADD_ROW: /* i0, i1 count rows here */
        for (int64_t r = i0; r < i1; r++)
            for (int64_t c = 0; c < j->d; c++) y[r * j->d + c] = a[r * j->d + c] + b[c];
        break;
    case EW_MUL_ROW:
        for (int64_t r = i0; r < i1; r++)
            for (int64_t c = 0; c < j->d; c++) y[r * j->d + c] = a[r * j->d + c] * b[c];
        break;
    }
}

static void ew_run(xs_backend *be, ew_job *j, int64_t n) {
    if (j->kind == EW_ADD_ROW || j->kind == EW_MUL_ROW)
        xs_threadpool_for(cpu_ctx_of(be)->pool, j->d ? n / j->d : 0, row_grain(j->d), ew_range, j);
    else
        xs_threadpool_for(cpu_ctx_of(be)->pool, n, ELEM_GRAIN, ew_range, j);
}

xs_status cpu_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha) {
    if (!all_contig(y, x, NULL)) return ref_elu(be, y, x, alpha);
    ew_job j = {.kind = EW_ELU, .elu = cpu_ctx_of(be)->k.elu, .y = y->data, .a = x->data,
                .p0 = alpha};
    ew_run(be, &j, xs_tensor_numel(x));
    return XS_OK;
}

xs_status cpu_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    if (!all_contig(y, x, NULL)) return ref_gelu(be, y, x);
    ew_job j = {.kind = EW_GELU, .y = y->data, .a = x->data};
    ew_run(be, &j, xs_tensor_numel(x));
    return XS_OK;
}

xs_status cpu_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b) {
    if (!all_contig(y, x, NULL)) return ref_scale(be, y, x, s, b);
    ew_job j = {.kind = EW_SCALE, .y = y->data, .a = x->data, .p0 = s, .p1 = b};
    ew_run(be, &j, xs_tensor_numel(x));
    return XS_OK;
}

static xs_status binary(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b,
                        int is_mul) {
    if (!all_contig(y, a, b))
        return is_mul ? ref_mul(be, y, a, b) : ref_add(be, y, a, b);
    int bcast = !xs_tensor_same_shape(a, b);
    ew_job j = {.y = y->data, .a = a->data, .b = b->data, .d = inner_dim(a)};
    j.kind = bcast ? (is_mul ? EW_MUL_ROW : EW_ADD_ROW) : (is_mul ? EW_MUL : EW_ADD);
    ew_run(be, &j, xs_tensor_numel(a));
    return XS_OK;
}

xs_status cpu_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    return binary(be, y, a, b, 0);
}
xs_status cpu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    return binary(be, y, a, b, 1);
}

typedef struct silu_job {
    float *y;
    const float *x;
    int64_t h;
} silu_job;

static void silu_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    const silu_job *j = arg;
    for (int64_t r = r0; r < r1; r++) {
        const float *g = j->x + r * 2 * j->h, *u = g + j->h;
        float *y = j->y + r * j->h;
        for (int64_t c = 0; c < j->h; c++) y[c] = g[c] / (1.0f + expf(-g[c])) * u[c];
    }
}

xs_status cpu_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    /* y may alias the first half of x only in a way ref handles; keep it simple. */
    if (!all_contig(y, x, NULL)) return ref_silu_mul(be, y, x);
    silu_job j = {y->data, x->data, inner_dim(y)};
    xs_threadpool_for(cpu_ctx_of(be)->pool, row_count(x), row_grain(j.h), silu_rows, &j);
    return XS_OK;
}

/* ---- embedding, argmax ----------------------------------------------------------- */

xs_status cpu_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                        const xs_tensor *ids) {
    if (!xs_tensor_is_contiguous(y) || !xs_tensor_is_contiguous(table) || table->ndim != 2 ||
        !cpu_ctx_of(be)->k.to_f32[table->dtype])
        return ref_embedding(be, y, table, ids);
    const int64_t n = ids->shape[0], rows = table->shape[0], D = table->shape[1];
    const size_t rb = xs_dtype_row_bytes(table->dtype, D);
    cpu_to_f32_fn conv = cpu_ctx_of(be)->k.to_f32[table->dtype];
    for (int64_t i = 0; i < n; i++) {
        const int32_t id = ((const int32_t *)ids->data)[i * ids->stride[0]];
        float *dst = (float *)y->data + i * D;
        if (id == -1) {
            memset(dst, 0, (size_t)D * sizeof *dst);
        } else if (id < 0 || id >= rows) {
            return xs_error(XS_ERR_ARG, "embedding %s: id %d at %lld out of range [0, %lld)",
                            table->name ? table->name : "table", (int)id, (long long)i,
                            (long long)rows);
        } else if (table->dtype == XS_F32) {
            memcpy(dst, (const float *)table->data + (int64_t)id * D, (size_t)D * sizeof *dst);
        } else {
            conv((const uint8_t *)table->data + (size_t)id * rb, dst, D);
        }
    }
    return XS_OK;
}

xs_status cpu_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits) {
    if (!xs_tensor_is_contiguous(logits)) return ref_argmax(be, ids, logits);
    const int64_t v = inner_dim(logits), m = row_count(logits);
    for (int64_t r = 0; r < m; r++) {
        const float *l = (const float *)logits->data + r * v;
        int64_t best = 0;
        float bv = l[0];
        for (int64_t c = 1; c < v; c++) {
            /* same rule as ref: strict > keeps the lowest index; NaN never wins */
            if (l[c] > bv || (bv != bv && l[c] == l[c])) {
                bv = l[c];
                best = c;
            }
        }
        ((int32_t *)ids->data)[r * (ids->ndim ? ids->stride[0] : 1)] = (int32_t)best;
    }
    return XS_OK;
}

/* ---- copy, fill ------------------------------------------------------------- */

/* Strided copy of 4-byte elements (f32 or i32: bits are copied, never
 * converted). Rows whose innermost stride is 1 on both sides move with
 * memmove (the model's concatenations, slices and conv contexts); other
 * layouts (transposes) use a plain 4-deep loop. */
xs_status cpu_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    (void)be;
    int64_t sh[4] = {1, 1, 1, 1}, sy[4] = {0, 0, 0, 0}, sx[4] = {0, 0, 0, 0};
    const int off = 4 - x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        sh[off + d] = x->shape[d];
        sx[off + d] = x->stride[d];
        sy[off + d] = y->stride[d];
    }
    if (xs_tensor_numel(x) == 0) return XS_OK;
    if (xs_tensor_is_contiguous(x) && xs_tensor_is_contiguous(y)) {
        memmove(y->data, x->data, (size_t)xs_tensor_numel(x) * 4);
        return XS_OK;
    }
    uint32_t *yd = y->data;
    const uint32_t *xd = x->data;
    const bool rows = (sh[3] == 1 || (sx[3] == 1 && sy[3] == 1));
    for (int64_t a = 0; a < sh[0]; a++)
        for (int64_t b = 0; b < sh[1]; b++)
            for (int64_t c = 0; c < sh[2]; c++) {
                uint32_t *yr = yd + a * sy[0] + b * sy[1] + c * sy[2];
                const uint32_t *xr = xd + a * sx[0] + b * sx[1] + c * sx[2];
                if (rows) {
                    memmove(yr, xr, (size_t)sh[3] * 4);
                } else {
                    for (int64_t d = 0; d < sh[3]; d++) yr[d * sy[3]] = xr[d * sx[3]];
                }
            }
    return XS_OK;
}

xs_status cpu_fill(xs_backend *be, xs_tensor *y, float value) {
    if (!xs_tensor_is_contiguous(y)) return ref_fill(be, y, value);
    float *d = y->data;
    const int64_t n = xs_tensor_numel(y);
    for (int64_t i = 0; i < n; i++) d[i] = value;
    return XS_OK;
}

/* ---- kv_store ----------------------------------------------------------------- */

/* f32 -> bf16, round to nearest even, NaN kept quiet NaN: bit for bit
 * xs_f32_to_bf16, written inline and branch-free so the row loop below
 * vectorizes (kv_store runs once per layer per step). */
static inline uint16_t kv_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet = (u >> 16) | 0x0040u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

static void kv_row_bf16(uint16_t *restrict d, const float *restrict x, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = kv_bf16(x[i]);
}

/* Rows of k and v into ring slots pos % capacity (see backend.h); a row
 * copy (or bf16 rounding, or q8_0 quantization) per position, the ring's
 * pos entry last. */
xs_status cpu_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                       const xs_tensor *v, const xs_tensor *pos) {
    if (!all_contig(k, v, NULL) || !xs_tensor_is_contiguous(&cache->k) ||
        !xs_tensor_is_contiguous(&cache->v) || !xs_tensor_is_contiguous(&cache->pos))
        return ref_kv_store(be, cache, k, v, pos);
    const int64_t T = pos->shape[0], hd = cache->k.shape[1], cap = cache->capacity;
    const bool bf16 = cache->k.dtype == XS_BF16, q8 = cache->k.dtype == XS_Q8_0;
    const size_t q8_row = xs_dtype_row_bytes(XS_Q8_0, hd);
    int32_t *cpos = cache->pos.data;
    for (int64_t t = 0; t < T; t++) {
        const int32_t p = ((const int32_t *)pos->data)[t * pos->stride[0]];
        if (p < 0)
            return xs_error(XS_ERR_ARG, "kv_store: negative position %d at row %lld", (int)p,
                            (long long)t);
        const int64_t slot = p % cap;
        const float *kr = (const float *)k->data + t * hd, *vr = (const float *)v->data + t * hd;
        if (q8) { /* ref's quantizer itself: the same bytes by construction */
            ref_kv_quantize_row_q8_0(kr, 1, (char *)cache->k.data + (size_t)slot * q8_row, hd);
            ref_kv_quantize_row_q8_0(vr, 1, (char *)cache->v.data + (size_t)slot * q8_row, hd);
        } else if (bf16) {
            kv_row_bf16((uint16_t *)cache->k.data + slot * hd, kr, hd);
            kv_row_bf16((uint16_t *)cache->v.data + slot * hd, vr, hd);
        } else {
            memcpy((float *)cache->k.data + slot * hd, kr, (size_t)hd * sizeof(float));
            memcpy((float *)cache->v.data + slot * hd, vr, (size_t)hd * sizeof(float));
        }
        cpos[slot] = p;
    }
    return XS_OK;
}

/* ---- sample_topk ---------------------------------------------------------------- */

/* Candidate order of core/rng.h: larger logit first, lower index first on
 * ties, NaN last. `a` is a later index than every candidate already held,
 * so on a tie it is never better. */
static bool topk_better(const float *l, int32_t a, int32_t b) {
    const bool na = l[a] != l[a], nb = l[b] != l[b];
    if (na || nb) return !na && nb;
    return l[a] > l[b];
}

/* The procedure of core/rng.h (xs_sample_topk_ref), with the top k found
 * by one pass of insertion into a sorted list of k (O(V) for random
 * logits) instead of sorting all V: the text vocabulary is 32000 and a
 * full qsort per step cost milliseconds. Same candidates in the same
 * order, same f32 sums, same weights, so the same token. */
static int32_t topk_row(const float *l, int64_t V, float temp, int64_t k, float u, int32_t *cand) {
    int64_t n = 0;
    for (int64_t i = 0; i < V; i++) {
        if (n == k && !topk_better(l, (int32_t)i, cand[k - 1])) continue;
        int64_t p = n < k ? n++ : k - 1; /* drop the last when full */
        while (p > 0 && topk_better(l, (int32_t)i, cand[p - 1])) {
            cand[p] = cand[p - 1];
            p--;
        }
        cand[p] = (int32_t)i;
    }
    const float lmax = l[cand[0]];
    float sum = 0.0f;
    for (int64_t i = 0; i < k; i++) sum += (float)exp((double)((l[cand[i]] - lmax) / temp));
    const float target = u * sum;
    float run = 0.0f;
    for (int64_t i = 0; i < k; i++) {
        run += (float)exp((double)((l[cand[i]] - lmax) / temp));
        if (run > target) return cand[i];
    }
    return cand[k - 1];
}

#define TOPK_MAX 1024 /* larger k (or all of V): ref's full sort is as good */

xs_status cpu_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits, float temp,
                          int top_k, uint64_t seed, uint64_t stream, uint64_t counter,
                          const xs_tensor *counter_t) {
    const int64_t V = inner_dim(logits), M = row_count(logits);
    const int64_t k = (top_k <= 0 || top_k >= V) ? V : top_k;
    if (!(temp > 0.0f)) return cpu_argmax(be, ids, logits);
    if (!xs_tensor_is_contiguous(logits) || k > TOPK_MAX || V > INT32_MAX)
        return ref_sample_topk(be, ids, logits, temp, top_k, seed, stream, counter, counter_t);
    counter = ref_sample_counter(counter, counter_t);
    int32_t cand[TOPK_MAX];
    for (int64_t r = 0; r < M; r++) {
        const float u = xs_rng_uniform(seed, stream, counter + (uint64_t)r, 0);
        ((int32_t *)ids->data)[r * (ids->ndim ? ids->stride[0] : 1)] =
            topk_row((const float *)logits->data + r * V, V, temp, k, u, cand);
    }
    return XS_OK;
}
