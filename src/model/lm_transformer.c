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
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/lm.h"

static xs_status alloc2(xs_backend *be, xs_tensor *t, int64_t a, int64_t b) {
    int64_t s[2] = {a, b};
    return xs_tensor_alloc(be, XS_F32, 2, s, t);
}

static float norm_eps(lm_norm_kind k) {
    return (k == LM_NORM_RMS_F32 || k == LM_NORM_LAYER_F32) ? 1e-8f : 1e-5f;
}

static xs_status apply_norm(xs_backend *be, lm_norm_kind k, const lm_norm *n, xs_tensor *y,
                            const xs_tensor *x) {
    if (k == LM_NORM_RMS || k == LM_NORM_RMS_F32) return xs_op_rms_norm(be, y, x, &n->w, norm_eps(k));
    return xs_op_layer_norm(be, y, x, &n->w, n->b.data ? &n->b : NULL, norm_eps(k));
}

xs_status lm_model_set_kv_dtype(lm_model *m, xs_dtype dt) {
    if (!m) return xs_error(XS_ERR_ARG, "lm: set kv dtype: no model");
    if (dt != XS_F32 && dt != XS_BF16)
        return xs_error(XS_ERR_DTYPE, "lm: kv cache dtype %s (expected f32 or bf16)",
                        xs_dtype_name(dt));
    m->main.kv_dtype = dt;
    return XS_OK;
}

static size_t stack_kv_bytes(const lm_stack *s) {
    const size_t el = s->kv_dtype == XS_BF16 ? 2 : 4;
    return (size_t)2 * (size_t)s->n_layers * (size_t)s->capacity * (size_t)s->dim * el;
}

size_t lm_model_kv_bytes(const lm_model *m) {
    if (!m) return 0;
    return stack_kv_bytes(&m->main) + (m->dep.n_layers > 0 ? stack_kv_bytes(&m->dep) : 0);
}

xs_status lm_stack_state_init(xs_backend *be, const lm_stack *s, lm_stack_state *st) {
    memset(st, 0, sizeof *st);
    st->kv = calloc((size_t)s->n_layers, sizeof *st->kv);
    if (!st->kv) return xs_error(XS_ERR_NOMEM, "lm: out of memory");
    for (int l = 0; l < s->n_layers; l++)
        XS_TRY(xs_kv_cache_alloc_dtype(be, s->capacity, s->dim, s->kv_dtype, &st->kv[l]));
    XS_TRY(alloc2(be, &st->xn, 1, s->dim));
    XS_TRY(alloc2(be, &st->qkv, 1, 3 * (int64_t)s->dim));
    XS_TRY(alloc2(be, &st->att, 1, s->dim));
    XS_TRY(alloc2(be, &st->proj, 1, s->dim));
    XS_TRY(alloc2(be, &st->ffh, 1, 2 * (int64_t)s->hidden));
    XS_TRY(alloc2(be, &st->ffa, 1, s->hidden));
    XS_TRY(alloc2(be, &st->pe, 1, s->dim));
    int64_t one = 1;
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &one, &st->pos));
    st->pe_host = malloc((size_t)s->dim * sizeof(float));
    if (!st->pe_host) return xs_error(XS_ERR_NOMEM, "lm: out of memory");
    if (s->capacity <= LM_MAX_DEP) {
        /* the depformer's positions are always 0..dep_q-1: keep them on the
         * backend once for all */
        int32_t p[LM_MAX_DEP];
        for (int i = 0; i < s->capacity; i++) p[i] = i;
        int64_t n = s->capacity;
        XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &n, &st->pos_table));
        XS_TRY(xs_tensor_upload(be, &st->pos_table, p));
    }
    return lm_stack_state_reset(be, s, st);
}

void lm_stack_state_free(xs_backend *be, const lm_stack *s, lm_stack_state *st) {
    if (st->kv)
        for (int l = 0; l < s->n_layers; l++) xs_kv_cache_free(be, &st->kv[l]);
    free(st->kv);
    xs_tensor *all[] = {&st->xn, &st->qkv, &st->att, &st->proj,
                        &st->ffh, &st->ffa, &st->pos, &st->pe, &st->pos_table};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
    free(st->pe_host);
    memset(st, 0, sizeof *st);
}

xs_status lm_stack_state_reset(xs_backend *be, const lm_stack *s, lm_stack_state *st) {
    for (int l = 0; l < s->n_layers; l++) XS_TRY(xs_kv_cache_reset(be, &st->kv[l]));
    return XS_OK;
}

/* Kyutai's create_sin_embedding: [cos(p / T^(i/(h-1))) | sin(...)], h = D/2,
 * in f32 like the reference. */
static void sin_embedding(float *out, int dim, int64_t pos, float max_period) {
    int half = dim / 2;
    for (int i = 0; i < half; i++) {
        float expo = half > 1 ? (float)i / (float)(half - 1) : 0.f;
        float phase = (float)pos / powf(max_period, expo);
        out[i] = cosf(phase);
        out[half + i] = sinf(phase);
    }
}

xs_status lm_stack_step(xs_backend *be, const lm_stack *s, lm_stack_state *st, xs_tensor *x,
                        int64_t pos, int set, xs_tensor *layers_out) {
    xs_tensor pos_t;
    if (st->pos_table.data && pos >= 0 && pos < st->pos_table.shape[0]) {
        pos_t = lm_slot(&st->pos_table, (int)pos);
    } else {
        int32_t p32 = (int32_t)pos;
        XS_TRY(xs_tensor_upload(be, &st->pos, &p32));
        pos_t = st->pos;
    }
    if (s->pos == LM_POS_SIN || s->pos == LM_POS_SIN_ROPE) {
        sin_embedding(st->pe_host, s->dim, pos, s->max_period);
        XS_TRY(xs_tensor_upload(be, &st->pe, st->pe_host));
        XS_TRY(xs_op_add(be, x, x, &st->pe));
    }
    bool rope = s->pos == LM_POS_ROPE || s->pos == LM_POS_SIN_ROPE;
    int hd = s->dim / s->heads;
    float scale = 1.0f / sqrtf((float)hd);
    int64_t hshape[3] = {1, s->heads, hd};
    /* one matmul for q, k and v (the set's rows of in_proj are contiguous);
     * with a single row the three outputs are contiguous [1, D] views */
    float *qkv = st->qkv.data;
    xs_tensor q = xs_tensor_2d(XS_F32, qkv, 1, s->dim);
    xs_tensor k = xs_tensor_2d(XS_F32, qkv + s->dim, 1, s->dim);
    xs_tensor v = xs_tensor_2d(XS_F32, qkv + 2 * s->dim, 1, s->dim);
    for (int l = 0; l < s->n_layers; l++) {
        const lm_layer *L = &s->layers[l];
        const lm_set *w = &L->sets[set];
        /* attention block */
        XS_TRY(apply_norm(be, s->norm, &L->norm1, &st->xn, x));
        XS_TRY(xs_op_matmul(be, &st->qkv, &st->xn, &w->wqkv, NULL));
        if (rope) {
            xs_tensor q3, k3;
            XS_TRY(xs_tensor_reshape(&q, 3, hshape, &q3));
            XS_TRY(xs_tensor_reshape(&k, 3, hshape, &k3));
            XS_TRY(xs_op_rope(be, &q3, &pos_t, s->max_period));
            XS_TRY(xs_op_rope(be, &k3, &pos_t, s->max_period));
        }
        XS_TRY(xs_op_kv_store(be, &st->kv[l], &k, &v, &pos_t));
        XS_TRY(xs_op_attention(be, &st->att, &q, &st->kv[l], &pos_t, s->heads, s->context,
                               scale));
        XS_TRY(xs_op_matmul(be, &st->proj, &st->att, &w->wo, NULL));
        XS_TRY(xs_op_add(be, x, x, &st->proj));
        /* feed-forward block */
        XS_TRY(apply_norm(be, s->norm, &L->norm2, &st->xn, x));
        if (s->gating) {
            XS_TRY(xs_op_matmul(be, &st->ffh, &st->xn, &w->ff_in, NULL));
            XS_TRY(xs_op_silu_mul(be, &st->ffa, &st->ffh));
        } else {
            XS_TRY(xs_op_matmul(be, &st->ffa, &st->xn, &w->ff_in, NULL));
            XS_TRY(xs_op_gelu(be, &st->ffa, &st->ffa));
        }
        XS_TRY(xs_op_matmul(be, &st->proj, &st->ffa, &w->ff_out, NULL));
        XS_TRY(xs_op_add(be, x, x, &st->proj));
        if (layers_out) {
            /* [1, L, D] tap buffer: row l <- x */
            xs_tensor row = xs_tensor_2d(XS_F32, (float *)layers_out->data + (int64_t)l * s->dim,
                                         1, s->dim);
            XS_TRY(xs_op_copy(be, &row, x));
        }
    }
    return XS_OK;
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
    XS_TRY(lm_stack_state_init(be, &m->dep, &e->ds));
    XS_TRY(alloc2(be, &e->x, 1, c->dim));
    XS_TRY(alloc2(be, &e->emb, 1, c->dim));
    XS_TRY(alloc2(be, &e->normed, 1, c->dim));
    XS_TRY(alloc2(be, &e->text_logits, 1, c->text_card));
    XS_TRY(alloc2(be, &e->dx, 1, c->dep_dim));
    XS_TRY(alloc2(be, &e->demb, 1, c->dep_dim));
    XS_TRY(alloc2(be, &e->dlr, 1, c->dep_low_rank ? c->dep_low_rank : 1));
    XS_TRY(alloc2(be, &e->audio_logits, 1, c->card));
    int64_t one = 1;
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &one, &e->ids));
    int64_t nm = c->n_delays, ns = 1 + c->dep_q;
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &nm, &e->main_ids));
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &ns, &e->sampled));
    int64_t s1[3] = {1, c->num_layers, c->dim};
    XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s1, &e->tap_layers));
    int64_t s2[3] = {1, c->dep_q, c->dep_dim};
    XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s2, &e->tap_dep_in));
    XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s2, &e->tap_dep_out));
    int64_t s3[3] = {1, c->dep_q, c->card};
    XS_TRY(xs_tensor_alloc(be, XS_F32, 3, s3, &e->tap_dep_logits));
    e->main_pos = 0;
    return lm_exec_set_condition(e, NULL); /* conditioned model: "no value" until set */
}

void lm_exec_free(lm_exec *e) {
    if (!e->m) return;
    xs_backend *be = e->be;
    lm_stack_state_free(be, &e->m->main, &e->ms);
    lm_stack_state_free(be, &e->m->dep, &e->ds);
    xs_tensor *all[] = {&e->x, &e->emb, &e->normed, &e->text_logits, &e->dx, &e->demb, &e->dlr,
                        &e->audio_logits, &e->ids, &e->main_ids, &e->sampled, &e->tap_layers,
                        &e->tap_dep_in, &e->tap_dep_out, &e->tap_dep_logits, &e->cond};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
    memset(e, 0, sizeof *e);
}

xs_status lm_exec_reset(lm_exec *e) {
    XS_TRY(lm_stack_state_reset(e->be, &e->m->main, &e->ms));
    XS_TRY(lm_stack_state_reset(e->be, &e->m->dep, &e->ds));
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

/* y = emb(id) for one token id (i32 [1] in backend memory); low-rank tables
 * go through their linear. Id -1 gives zeros (the embedding op's zero row,
 * and 0 . W = 0); the op rejects ids outside the table. */
static xs_status embed(lm_exec *e, const lm_emb *emb, const xs_tensor *id, xs_tensor *y) {
    if (!emb->low_rank.data) return xs_op_embedding(e->be, y, &emb->table, id);
    XS_TRY(xs_op_embedding(e->be, &e->dlr, &emb->table, id));
    return xs_op_matmul(e->be, y, &e->dlr, &emb->low_rank, NULL);
}

xs_status lm_exec_main(lm_exec *e, const int32_t *tokens) {
    const lm_model *m = e->m;
    const lm_config *c = &m->cfg;
    xs_backend *be = e->be;
    for (int k = 0; k < c->n_delays; k++) {
        int32_t hi = k == 0 ? c->text_card : c->card;
        if (tokens[k] < -1 || tokens[k] > hi)
            return xs_error(XS_ERR_ARG, "lm: token %d of stream %d out of range (-1..%d)",
                            tokens[k], k, hi);
    }
    XS_TRY(xs_tensor_upload(be, &e->main_ids, tokens));
    if (e->taps) {
        int64_t sh[2] = {1, c->n_delays};
        xs_tensor row = xs_tensor_make(XS_I32, 2, sh, e->main_ids.data);
        XS_TRY(xs_tap_record(e->taps, be, "lm.main_input_tokens", &row, 0));
    }
    /* Kyutai's order: audio embeddings summed in stream order, then text. */
    for (int i = 0; i < c->n_q; i++) {
        xs_tensor *dst = i == 0 ? &e->x : &e->emb;
        xs_tensor id = lm_slot(&e->main_ids, 1 + i);
        XS_TRY(embed(e, &m->emb[i], &id, dst));
        if (i > 0) XS_TRY(xs_op_add(be, &e->x, &e->x, &e->emb));
    }
    xs_tensor id0 = lm_slot(&e->main_ids, 0);
    XS_TRY(embed(e, &m->text_emb, &id0, c->n_q ? &e->emb : &e->x));
    if (c->n_q) XS_TRY(xs_op_add(be, &e->x, &e->x, &e->emb));
    /* LMModel.forward_text: the fuser's "sum" condition joins the input here */
    if (e->cond.data) XS_TRY(xs_op_add(be, &e->x, &e->x, &e->cond));
    XS_TRY(XS_TAP(e->taps, be, "lm.main_emb_sum", &e->x, 0));
    XS_TRY(lm_stack_step(be, &m->main, &e->ms, &e->x, e->main_pos, 0,
                         e->taps ? &e->tap_layers : NULL));
    e->main_pos++;
    XS_TRY(XS_TAP(e->taps, be, "lm.main_layer_out", &e->tap_layers, 0));
    XS_TRY(XS_TAP(e->taps, be, "lm.main_pre_norm", &e->x, 0));
    XS_TRY(apply_norm(be, c->norm, &m->out_norm, &e->normed, &e->x));
    XS_TRY(XS_TAP(e->taps, be, "lm.main_out_normed", &e->normed, 0));
    XS_TRY(xs_op_matmul(be, &e->text_logits, &e->normed, &m->text_linear, NULL));
    return XS_TAP(e->taps, be, "lm.text_logits", &e->text_logits, 0);
}

/* Copy a [1, N] row into row k of a [1, dep_q, N] tap buffer. */
static xs_status tap_row(xs_backend *be, xs_tensor *buf, int k, const xs_tensor *row) {
    int64_t n = buf->shape[2];
    int64_t s[2] = {1, n};
    xs_tensor dst = xs_tensor_make(XS_F32, 2, s, (float *)buf->data + (int64_t)k * n);
    return xs_op_copy(be, &dst, row);
}

xs_status lm_exec_dep(lm_exec *e, int k, const xs_tensor *prev) {
    const lm_model *m = e->m;
    const lm_config *c = &m->cfg;
    xs_backend *be = e->be;
    if (k == 0) XS_TRY(lm_stack_state_reset(be, &m->dep, &e->ds));
    int set = c->dep_schedule[k];
    int in_index = c->dep_multi_linear ? set : 0;
    if (c->dep_multi_linear && !c->has_dep_schedule) in_index = k;
    XS_TRY(xs_op_matmul(be, &e->dx, &e->normed, &m->dep_in[in_index], NULL));
    if (k == 0) XS_TRY(embed(e, &m->dep_text_emb, prev, &e->demb));
    else XS_TRY(embed(e, &m->dep_emb[k - 1], prev, &e->demb));
    XS_TRY(xs_op_add(be, &e->dx, &e->dx, &e->demb));
    if (e->taps) XS_TRY(tap_row(be, &e->tap_dep_in, k, &e->dx));
    XS_TRY(lm_stack_step(be, &m->dep, &e->ds, &e->dx, k, set, NULL));
    if (e->taps) XS_TRY(tap_row(be, &e->tap_dep_out, k, &e->dx));
    XS_TRY(xs_op_matmul(be, &e->audio_logits, &e->dx, &m->linears[k], NULL));
    if (e->taps) XS_TRY(tap_row(be, &e->tap_dep_logits, k, &e->audio_logits));
    if (e->taps && k == c->dep_q - 1) {
        XS_TRY(XS_TAP(e->taps, be, "lm.depformer_in", &e->tap_dep_in, 0));
        XS_TRY(XS_TAP(e->taps, be, "lm.depformer_out", &e->tap_dep_out, 0));
        XS_TRY(XS_TAP(e->taps, be, "lm.depformer_logits", &e->tap_dep_logits, 0));
    }
    return XS_OK;
}
