/*
 * lm_transformer.c — one position through a Moshi transformer stack, and the
 * temporal step of the LM (embeddings -> transformer -> out_norm -> text
 * logits).
 *
 * Layer (pre-norm, no layer scale in Moshi):
 *   x += out_proj(attn(rope(q), rope(k), v))   on norm1(x)
 *   x += ffn(norm2(x))   ffn = linear_out(silu(a) * b), [a | b] = linear_in(.)
 *                        or  linear2(gelu(linear1(.)))
 * KV-ring invariants (backend.h): slot = pos % capacity; a query at position
 * p sees the keys of positions p - context + 1 .. p that are still in the
 * ring. Positions keep counting past the capacity: the main ring of
 * `context` slots holds exactly the visible window.
 *
 * Rows: a stack step runs B rows (sessions) at once. Norms, matmuls and the
 * FFN see [B, D]; rope, kv_store and attention run per row on that row's
 * own cache and position (pos[b]), so a row's values do not depend on the
 * other rows.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/kv_rings.h"
#include "model/lm.h"

static xs_status alloc2(xs_backend *be, xs_tensor *t, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return xs_tensor_alloc(be, XS_F32, 2, s, t);
}

static float norm_eps(lm_norm_kind k) {
    return (k == LM_NORM_RMS_F32 || k == LM_NORM_LAYER_F32) ? 1e-8f : 1e-5f;
}

xs_status lm_apply_norm(xs_backend *be, lm_norm_kind k, const lm_norm *n, xs_tensor *y,
                        const xs_tensor *x) {
    if (k == LM_NORM_RMS || k == LM_NORM_RMS_F32) return xs_op_rms_norm(be, y, x, &n->w, norm_eps(k));
    return xs_op_layer_norm(be, y, x, &n->w, n->b.data ? &n->b : NULL, norm_eps(k));
}

xs_status lm_apply_add_norm(xs_backend *be, lm_norm_kind k, const lm_norm *n, xs_tensor *y,
                            xs_tensor *x, const xs_tensor *h) {
    if (k == LM_NORM_RMS || k == LM_NORM_RMS_F32)
        return xs_op_add_rms_norm(be, y, x, h, &n->w, norm_eps(k));
    return xs_op_add_layer_norm(be, y, x, h, &n->w, n->b.data ? &n->b : NULL, norm_eps(k));
}

xs_status lm_model_set_kv_dtype(lm_model *m, xs_dtype dt) {
    if (!m) return xs_error(XS_ERR_ARG, "lm: set kv dtype: no model");
    if (dt == LM_KV_DEFAULT) dt = lm_model_kv_dtype_default(m);
    if (dt != XS_F32 && dt != XS_BF16 && dt != XS_Q8_0)
        return xs_error(XS_ERR_DTYPE, "lm: kv cache dtype %s (expected f32, bf16 or q8_0)",
                        xs_dtype_name(dt));
    /* q8_0 rows are whole blocks of 32, and so is each head (ops.c) */
    if (dt == XS_Q8_0 && (m->main.heads < 1 || (m->main.dim / m->main.heads) % XS_QK))
        return xs_error(XS_ERR_SHAPE, "lm: q8_0 kv cache needs a head dim multiple of %d "
                        "(this model: dim %d, %d heads)", XS_QK, m->main.dim, m->main.heads);
    m->main.kv_dtype = dt;
    return XS_OK;
}

static size_t stack_kv_bytes(const lm_stack *s) {
    const size_t row = xs_dtype_row_bytes(s->kv_dtype, s->dim); /* q8_0: 34 B per 32 values */
    return (size_t)2 * (size_t)s->n_layers * (size_t)s->capacity * row;
}

size_t lm_model_kv_bytes(const lm_model *m) {
    if (!m) return 0;
    return stack_kv_bytes(&m->main) + (m->dep.n_layers > 0 ? stack_kv_bytes(&m->dep) : 0);
}

xs_status lm_stack_state_init(xs_backend *be, const lm_stack *s, lm_stack_state *st) {
    memset(st, 0, sizeof *st);
    st->kv = calloc((size_t)(s->n_layers > 0 ? s->n_layers : 1), sizeof *st->kv);
    if (!st->kv) return xs_error(XS_ERR_NOMEM, "lm: out of memory");
    if (s->n_layers < 1) return XS_OK;
    /* one allocation for all layers: see kv_rings.h (device page rounding) */
    XS_TRY(kv_rings_alloc(be, s->n_layers, s->capacity, s->dim, s->kv_dtype, st->kv, &st->block));
    return lm_stack_state_reset(be, s, st);
}

void lm_stack_state_free(xs_backend *be, const lm_stack *s, lm_stack_state *st) {
    if (st->kv) kv_rings_free(be, s->n_layers, st->kv, &st->block);
    free(st->kv);
    memset(st, 0, sizeof *st);
}

xs_status lm_stack_state_reset(xs_backend *be, const lm_stack *s, lm_stack_state *st) {
    for (int l = 0; l < s->n_layers; l++) XS_TRY(xs_kv_cache_reset(be, &st->kv[l]));
    return XS_OK;
}

/* Kyutai's create_sin_embedding: [cos(p / T^(i/(h-1))) | sin(...)], h = D/2,
 * in f32 like the reference. */
void lm_sin_embedding(float *out, int dim, int64_t pos, float max_period) {
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        float expo = half > 1 ? (float)i / (float)(half - 1) : 0.f;
        float phase = (float)pos / powf(max_period, expo);
        out[i] = cosf(phase);
        out[half + i] = sinf(phase);
    }
}

xs_status lm_stack_scratch_init(xs_backend *be, const lm_stack *s, int cap, lm_stack_scratch *sc) {
    memset(sc, 0, sizeof *sc);
    XS_TRY(alloc2(be, &sc->xn, cap, s->dim));
    XS_TRY(alloc2(be, &sc->qkv, cap, 3 * (int64_t)s->dim));
    XS_TRY(alloc2(be, &sc->att, cap, s->dim));
    XS_TRY(alloc2(be, &sc->proj, cap, s->dim));
    XS_TRY(alloc2(be, &sc->ffh, cap, 2 * (int64_t)s->hidden));
    XS_TRY(alloc2(be, &sc->ffa, cap, s->hidden));
    return XS_OK;
}

void lm_stack_scratch_free(xs_backend *be, lm_stack_scratch *sc) {
    xs_tensor *all[] = {&sc->xn, &sc->qkv, &sc->att, &sc->proj, &sc->ffh, &sc->ffa};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
}

/* The first B rows of a [Bmax, N] scratch tensor (contiguous). */
static xs_tensor first_rows(const xs_tensor *t, int B) { return xs_tensor_slice(t, 0, 0, B); }

/* The per-row part of layer l's attention: rope of each row's q and k at
 * its position, its k and v into its own cache kv[b][l], attention over
 * that cache. Where the backend has row-batched ops (xs_op_rows_native: a
 * GPU, no hook or fault active, XSWARM_ROWOPS not 0), each of the three is
 * one call for up to LM_ROWS_CHUNK rows (rope over the [B, 2H, hd] view of
 * the qkv rows, row stride 3D); else one call per row as before, which is
 * what diagnose's recorder and fault injection expect to see. The same
 * values either way (rows are independent). */
#define LM_ROWS_CHUNK 256
static xs_status attend_rows(xs_backend *be, const lm_stack *s, xs_kv_cache *const *kv, int l,
                             int B, const xs_tensor *qkv, const xs_tensor *att,
                             const xs_tensor *pos, bool rope, float scale) {
    const int64_t D = s->dim, H = s->heads, hd = D / H;
    if (!xs_op_rows_native(be)) {
        for (int b = 0; b < B; b++) {
            /* per row: its own position and its own cache */
            float *row = (float *)qkv->data + (int64_t)b * 3 * D;
            xs_tensor p = lm_slot(pos, b);
            xs_tensor q = xs_tensor_2d(XS_F32, row, 1, D);
            xs_tensor k = xs_tensor_2d(XS_F32, row + D, 1, D);
            xs_tensor v = xs_tensor_2d(XS_F32, row + 2 * D, 1, D);
            xs_tensor y = xs_tensor_2d(XS_F32, (float *)att->data + (int64_t)b * D, 1, D);
            if (rope) {
                /* q and k are adjacent: one rope over 2 * heads heads rotates
                 * both (the angle depends on the position and the pair only) */
                xs_tensor qk = xs_tensor_3d(XS_F32, row, 1, 2 * H, hd);
                XS_TRY(xs_op_rope(be, &qk, &p, s->max_period));
            }
            XS_TRY(xs_op_kv_store(be, &kv[b][l], &k, &v, &p));
            XS_TRY(xs_op_attention(be, &y, &q, &kv[b][l], &p, s->heads, s->context, scale));
        }
        return XS_OK;
    }
    for (int b0 = 0; b0 < B; b0 += LM_ROWS_CHUNK) {
        const int n = B - b0 < LM_ROWS_CHUNK ? B - b0 : LM_ROWS_CHUNK;
        xs_kv_cache *rc[LM_ROWS_CHUNK];
        for (int i = 0; i < n; i++) rc[i] = &kv[b0 + i][l];
        float *base = (float *)qkv->data + (int64_t)b0 * 3 * D;
        /* pos: i32 [B], contiguous (lm_batch's staged or constant positions) */
        xs_tensor p = xs_tensor_1d(XS_I32, (int32_t *)pos->data + b0, n);
        /* row i of q, k, v: base + i * 3D + {0, D, 2D} */
        xs_tensor q = xs_tensor_2d(XS_F32, base, n, D), k = q, v = q;
        q.stride[0] = k.stride[0] = v.stride[0] = 3 * D;
        k.data = base + D;
        v.data = base + 2 * D;
        xs_tensor y = xs_tensor_2d(XS_F32, (float *)att->data + (int64_t)b0 * D, n, D);
        if (rope) {
            xs_tensor qk = xs_tensor_3d(XS_F32, base, n, 2 * H, hd);
            qk.stride[0] = 3 * D;
            XS_TRY(xs_op_rope(be, &qk, &p, s->max_period));
        }
        XS_TRY(xs_op_kv_store_rows(be, rc, n, &k, &v, &p));
        XS_TRY(xs_op_attention_rows(be, &y, &q, (const xs_kv_cache *const *)rc, n, &p, s->heads,
                                    s->context, scale));
    }
    return XS_OK;
}

/* Residual adds and norms: each add into x is fused with the norm that
 * reads x next (ops.h add_norm: one kernel on a GPU, the same add then norm
 * elsewhere): pe with layer 0's norm1, the attention output with norm2, the
 * FFN output with the next layer's norm1, or after the last layer with the
 * caller's final norm `fin` (the temporal out_norm). */
xs_status lm_stack_step_norm(xs_backend *be, const lm_stack *s, lm_stack_scratch *sc,
                             xs_kv_cache *const *kv, int B, xs_tensor *x, const xs_tensor *pos,
                             const xs_tensor *pe, int set, xs_tensor *const *layers_out,
                             lm_norm_kind fin_kind, const lm_norm *fin, xs_tensor *fin_y) {
    if (B < 1 || x->shape[0] != B || xs_tensor_numel(pos) != B)
        return xs_error(XS_ERR_SHAPE, "lm: stack step: %d rows, x has %lld, pos %lld", B,
                        (long long)x->shape[0], (long long)xs_tensor_numel(pos));
    if (fin && !fin_y) return xs_error(XS_ERR_ARG, "lm: stack step: final norm without output");
    /* a broadcast pe (one row for all) is added on its own */
    const bool pe_fused = pe && s->n_layers > 0 && xs_tensor_same_shape(pe, x);
    if (pe && !pe_fused) XS_TRY(xs_op_add(be, x, x, pe));
    const int64_t D = s->dim;
    bool rope = s->pos == LM_POS_ROPE || s->pos == LM_POS_SIN_ROPE;
    int hd = s->dim / s->heads;
    float scale = 1.0f / sqrtf((float)hd);
    xs_tensor xn = first_rows(&sc->xn, B), qkv = first_rows(&sc->qkv, B);
    xs_tensor att = first_rows(&sc->att, B), proj = first_rows(&sc->proj, B);
    xs_tensor ffh = first_rows(&sc->ffh, B), ffa = first_rows(&sc->ffa, B);
    for (int l = 0; l < s->n_layers; l++) {
        const lm_layer *L = &s->layers[l];
        const lm_set *w = &L->sets[set];
        /* attention block: one matmul for q, k and v of every row (the set's
         * rows of in_proj are contiguous: row b holds [q | k | v]). For
         * l > 0, xn already holds norm1(x): the previous layer's last add. */
        if (l == 0 && pe_fused) XS_TRY(lm_apply_add_norm(be, s->norm, &L->norm1, &xn, x, pe));
        else if (l == 0) XS_TRY(lm_apply_norm(be, s->norm, &L->norm1, &xn, x));
        XS_TRY(xs_op_matmul(be, &qkv, &xn, &w->wqkv, NULL));
        XS_TRY(attend_rows(be, s, kv, l, B, &qkv, &att, pos, rope, scale));
        XS_TRY(xs_op_matmul(be, &proj, &att, &w->wo, NULL));
        /* feed-forward block */
        XS_TRY(lm_apply_add_norm(be, s->norm, &L->norm2, &xn, x, &proj));
        if (s->gating) {
            XS_TRY(xs_op_matmul(be, &ffh, &xn, &w->ff_in, NULL));
            XS_TRY(xs_op_silu_mul(be, &ffa, &ffh));
        } else {
            XS_TRY(xs_op_matmul(be, &ffa, &xn, &w->ff_in, NULL));
            XS_TRY(xs_op_gelu(be, &ffa, &ffa));
        }
        XS_TRY(xs_op_matmul(be, &proj, &ffa, &w->ff_out, NULL));
        if (l + 1 < s->n_layers)
            XS_TRY(lm_apply_add_norm(be, s->norm, &s->layers[l + 1].norm1, &xn, x, &proj));
        else if (fin)
            XS_TRY(lm_apply_add_norm(be, fin_kind, fin, fin_y, x, &proj));
        else
            XS_TRY(xs_op_add(be, x, x, &proj));
        for (int b = 0; layers_out && b < B; b++) {
            if (!layers_out[b]) continue;
            /* [1, L, D] tap buffer of row b: row l <- x[b] */
            xs_tensor dst = xs_tensor_2d(XS_F32, (float *)layers_out[b]->data + (int64_t)l * D,
                                         1, D);
            xs_tensor src = xs_tensor_2d(XS_F32, (float *)x->data + (int64_t)b * D, 1, D);
            XS_TRY(xs_op_copy(be, &dst, &src));
        }
    }
    if (s->n_layers < 1 && fin) XS_TRY(lm_apply_norm(be, fin_kind, fin, fin_y, x));
    return XS_OK;
}

xs_status lm_stack_step(xs_backend *be, const lm_stack *s, lm_stack_scratch *sc,
                        xs_kv_cache *const *kv, int B, xs_tensor *x, const xs_tensor *pos,
                        const xs_tensor *pe, int set, xs_tensor *const *layers_out) {
    return lm_stack_step_norm(be, s, sc, kv, B, x, pos, pe, set, layers_out, LM_NORM_RMS, NULL,
                              NULL);
}

xs_tensor lm_slot(const xs_tensor *v, int i) {
    int64_t one = 1;
    return xs_tensor_make(XS_I32, 1, &one, (int32_t *)v->data + i);
}

/* ---- the LM's execution state ------------------------------------------- */

xs_status lm_exec_init(lm_exec *e, const lm_model *m, xs_taps *taps) {
    memset(e, 0, sizeof *e);
    e->m = m;
    e->be = m->be;
    e->taps = taps;
    xs_backend *be = m->be;
    const lm_config *c = &m->cfg;
    XS_TRY(lm_stack_state_init(be, &m->main, &e->ms));
    int64_t one = 1;
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &one, &e->ids));
    if (taps) {
        int64_t s1[3] = {1, c->num_layers, c->dim};
        XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s1, &e->tap_layers));
        int64_t s2[3] = {1, c->dep_q, c->dep_dim};
        XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s2, &e->tap_dep_in));
        XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s2, &e->tap_dep_out));
        int64_t s3[3] = {1, c->dep_q, c->card};
        XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s3, &e->tap_dep_logits));
        int64_t st[2] = {1, c->n_delays}, ns = 1 + c->dep_q;
        XS_TRY(xs_tensor_alloc(be, XS_I32, 2, st, &e->tap_tokens));
        XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &ns, &e->tap_sampled));
    }
    XS_TRY(lm_batch_new(m, 1, &e->solo));
    e->text_logits = lm_batch_text_logits(e->solo, 0);
    e->audio_logits = lm_batch_audio_logits(e->solo, 0);
    /* with one row, the [1 + dep_q, 1] picks are one contiguous vector */
    xs_tensor s0 = lm_batch_pick_slot(e->solo, 0, 0);
    e->sampled = xs_tensor_1d(XS_I32, s0.data, 1 + (int64_t)c->dep_q);
    e->main_pos = 0;
    return lm_exec_set_condition(e, NULL); /* conditioned model: "no value" until set */
}

void lm_exec_free(lm_exec *e) {
    if (!e->m) return;
    xs_backend *be = e->be;
    lm_stack_state_free(be, &e->m->main, &e->ms);
    lm_batch_free(e->solo);
    xs_tensor *all[] = {&e->ids, &e->tap_layers, &e->tap_dep_in, &e->tap_dep_out,
                        &e->tap_dep_logits, &e->tap_tokens, &e->tap_sampled, &e->cond};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
    memset(e, 0, sizeof *e);
}

xs_status lm_exec_reset(lm_exec *e) {
    XS_TRY(lm_stack_state_reset(e->be, &e->m->main, &e->ms));
    e->main_pos = 0;
    return XS_OK;
}

/* Benchmark helper: fill every slot of every temporal KV ring with finite
 * pseudo-random rows at positions 0..capacity-1 through the real kv_store
 * (so a bf16 cache holds rounded values and every page is touched), then
 * continue at position capacity: each later step attends over a full
 * window. Chunks of FILL_ROWS rows keep the host buffers small. */
#define FILL_ROWS 64
xs_status lm_exec_fill_context(lm_exec *e, uint64_t seed) {
    if (!e || !e->m) return xs_error(XS_ERR_ARG, "lm: fill context: no exec");
    const lm_stack *s = &e->m->main;
    xs_backend *be = e->be;
    const int64_t cap = s->capacity, D = s->dim, rows = cap < FILL_ROWS ? cap : FILL_ROWS;
    float *kh = malloc((size_t)(rows * D) * sizeof *kh);
    int32_t *ph = malloc((size_t)rows * sizeof *ph);
    xs_tensor k = {0}, pos = {0};
    int64_t ks[2] = {rows, D};
    xs_status rc = kh && ph ? XS_OK : xs_error(XS_ERR_NOMEM, "lm: fill context: out of memory");
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ks, &k);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_I32, 1, &rows, &pos);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; rc == XS_OK && i < rows * D; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift: values in [-1, 1) */
        kh[i] = (float)((double)(x >> 11) * 0x1.0p-52 - 1.0);
    }
    if (rc == XS_OK) rc = xs_tensor_upload(be, &k, kh);
    for (int64_t p0 = 0; rc == XS_OK && p0 < cap; p0 += rows) {
        const int64_t n = cap - p0 < rows ? cap - p0 : rows;
        for (int64_t i = 0; i < n; i++) ph[i] = (int32_t)(p0 + i);
        rc = xs_tensor_upload(be, &pos, ph);
        xs_tensor kv = xs_tensor_slice(&k, 0, 0, n), pv = xs_tensor_slice(&pos, 0, 0, n);
        /* k doubles as v: only the memory traffic matters here */
        for (int l = 0; rc == XS_OK && l < s->n_layers; l++)
            rc = xs_op_kv_store(be, &e->ms.kv[l], &kv, &kv, &pv);
    }
    if (rc == XS_OK) e->main_pos = cap;
    xs_tensor_free(be, &k);
    xs_tensor_free(be, &pos);
    free(kh);
    free(ph);
    return rc;
}

xs_status lm_exec_main(lm_exec *e, const int32_t *tokens) {
    lm_exec *row = e;
    XS_TRY(lm_batch_stage(e->solo, &row, 1, tokens, NULL));
    return lm_batch_main(e->solo);
}

xs_status lm_exec_dep(lm_exec *e, int k, const xs_tensor *prev) {
    return lm_batch_dep(e->solo, k, prev);
}
