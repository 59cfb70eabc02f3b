/*
 * lm_batch.c — one LM step for B sessions at once (lm.h, "batched step").
 *
 * Layout of the staged / picked tokens: stream-major, [streams, Bmax], so
 * that stream j of every row is one contiguous i32 [B] vector: the
 * embedding op takes it as is (one gather over all rows), and the picks of
 * sub-step k are the ids sub-step k + 1 embeds, without any copy.
 *
 * Invariants:
 *  - rows[0..n) are the sessions staged by the last lm_batch_stage; row r
 *    uses rows[r]'s temporal KV caches and dep_kv[r], its depformer caches.
 *  - Between stage and fetch nothing is uploaded: positions come from
 *    `pos` (staged) and `dep_pos` (constant), the depformer caches are
 *    emptied by one device copy from `neg_ones` (constant).
 *  - Everything a row computes depends only on that row's inputs and
 *    caches (see lm_stack_step), so rows are independent of each other
 *    and of their order.
 */
#include <stdlib.h>
#include <string.h>

#include "model/kv_rings.h"
#include "model/lm.h"

struct lm_batch {
    const lm_model *m;
    xs_backend *be;
    int cap;                    /* Bmax */
    int n;                      /* rows staged for the current step */
    lm_exec **rows;             /* [cap] */
    xs_kv_cache **main_kv;      /* [cap] rows[r]->ms.kv */
    xs_kv_cache *dep_rings;     /* [cap * dep layers] depformer caches (step scratch),
                                 * row r's layers at r * layers: one allocation (dep_block) */
    xs_tensor dep_block;
    xs_kv_cache **dep_kv;       /* [cap] &dep_rings[r * layers] */
    xs_tensor **tap_layers;     /* [cap] rows[r]->tap_layers or NULL */
    lm_stack_scratch ms, ds;    /* [cap, ...] per stack */
    xs_tensor x, emb, normed;   /* [cap, D] main residual, embedding scratch, out_norm */
    xs_tensor text_logits;      /* [cap, text_card] */
    xs_tensor dx, demb, dlr;    /* [cap, Dd] depformer residual + scratch; dlr [cap, r] */
    xs_tensor audio_logits;     /* [cap, card] */
    xs_tensor ids;              /* i32 [1 + n_q, cap] staged tokens, stream-major */
    xs_tensor pos;              /* i32 [cap] staged temporal positions */
    xs_tensor steps;            /* i32 [cap] staged sampling counters (the rows' steps) */
    xs_tensor main_pe;          /* [cap, D] staged sinusoidal embedding (sin models) */
    xs_tensor dep_pos;          /* i32 [dep_q, cap]: row k all k (constant) */
    xs_tensor dep_pe;           /* [dep_q, Dd] sinusoidal embedding of k (constant) */
    xs_tensor sampled;          /* i32 [1 + dep_q, cap] picks, stream-major */
    xs_tensor neg_ones;         /* i32 [dep capacity] all -1 (constant) */
    int32_t *ids_host, *pos_host, *steps_host, *fetch_host;
    float *pe_host;
    bool any_taps;              /* some staged row records taps */
};

static bool is_sin(lm_pos_kind p) { return p == LM_POS_SIN || p == LM_POS_SIN_ROPE; }

static xs_status alloc_t(xs_backend *be, xs_dtype dt, int64_t a, int64_t b, xs_tensor *t) {
    int64_t s[2] = {a, b};
    return xs_tensor_alloc(be, dt, 2, s, t);
}

void lm_batch_free(lm_batch *b) {
    if (!b) return;
    xs_backend *be = b->be;
    if (b->dep_rings) kv_rings_free(be, b->cap * b->m->dep.n_layers, b->dep_rings, &b->dep_block);
    lm_stack_scratch_free(be, &b->ms);
    lm_stack_scratch_free(be, &b->ds);
    xs_tensor *all[] = {&b->x, &b->emb, &b->normed, &b->text_logits, &b->dx, &b->demb,
                        &b->dlr, &b->audio_logits, &b->ids, &b->pos, &b->steps, &b->main_pe,
                        &b->dep_pos, &b->dep_pe, &b->sampled, &b->neg_ones};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
    free(b->rows);
    free(b->main_kv);
    free(b->dep_rings);
    free(b->dep_kv);
    free(b->tap_layers);
    free(b->ids_host);
    free(b->pos_host);
    free(b->steps_host);
    free(b->fetch_host);
    free(b->pe_host);
    free(b);
}

/* Constant tensors: depformer positions (row k = k for every row), their
 * sinusoidal embedding, and the -1s that empty a depformer cache. */
static xs_status init_constants(lm_batch *b) {
    const lm_model *m = b->m;
    const lm_config *c = &m->cfg;
    xs_backend *be = b->be;
    const int dq = c->dep_q > 0 ? c->dep_q : 1, cap = b->cap;
    XS_TRY(alloc_t(be, XS_I32, dq, cap, &b->dep_pos));
    int32_t *p = malloc((size_t)dq * (size_t)cap * sizeof *p);
    if (!p) return xs_error(XS_ERR_NOMEM, "lm batch: out of memory");
    for (int k = 0; k < dq; k++)
        for (int r = 0; r < cap; r++) p[k * cap + r] = k;
    xs_status rc = xs_tensor_upload(be, &b->dep_pos, p);
    free(p);
    XS_TRY(rc);
    const int64_t dcap = m->dep.capacity > 0 ? m->dep.capacity : 1;
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &dcap, &b->neg_ones));
    int32_t *neg = malloc((size_t)dcap * sizeof *neg);
    if (!neg) return xs_error(XS_ERR_NOMEM, "lm batch: out of memory");
    for (int64_t i = 0; i < dcap; i++) neg[i] = -1;
    rc = xs_tensor_upload(be, &b->neg_ones, neg);
    free(neg);
    XS_TRY(rc);
    if (is_sin(m->dep.pos) && m->dep.n_layers > 0) {
        const int Dd = m->dep.dim;
        XS_TRY(alloc_t(be, XS_F32, dq, Dd, &b->dep_pe));
        float *pe = malloc((size_t)dq * (size_t)Dd * sizeof *pe);
        if (!pe) return xs_error(XS_ERR_NOMEM, "lm batch: out of memory");
        for (int k = 0; k < dq; k++) lm_sin_embedding(pe + (size_t)k * Dd, Dd, k, m->dep.max_period);
        rc = xs_tensor_upload(be, &b->dep_pe, pe);
        free(pe);
        XS_TRY(rc);
    }
    return XS_OK;
}

static xs_status batch_init(lm_batch *b) {
    const lm_model *m = b->m;
    const lm_config *c = &m->cfg;
    xs_backend *be = b->be;
    const int cap = b->cap, nd = c->n_delays, ns = 1 + c->dep_q;
    b->rows = calloc((size_t)cap, sizeof *b->rows);
    b->main_kv = calloc((size_t)cap, sizeof *b->main_kv);
    const int dl = m->dep.n_layers;
    b->dep_rings = calloc((size_t)cap * (size_t)(dl > 0 ? dl : 1), sizeof *b->dep_rings);
    b->dep_kv = calloc((size_t)cap, sizeof *b->dep_kv);
    b->tap_layers = calloc((size_t)cap, sizeof *b->tap_layers);
    b->ids_host = malloc((size_t)nd * (size_t)cap * sizeof *b->ids_host);
    b->pos_host = calloc((size_t)cap, sizeof *b->pos_host);
    b->steps_host = calloc((size_t)cap, sizeof *b->steps_host);
    b->fetch_host = malloc((size_t)ns * (size_t)cap * sizeof *b->fetch_host);
    if (!b->rows || !b->main_kv || !b->dep_rings || !b->dep_kv || !b->tap_layers || !b->ids_host ||
        !b->pos_host || !b->steps_host || !b->fetch_host)
        return xs_error(XS_ERR_NOMEM, "lm batch: out of memory");
    /* every row's depformer rings in one block: equal ring sizes put their
     * position vectors at one stride, so the reset at each time step is a
     * single strided copy for all rows (dep_reset) */
    if (dl > 0)
        XS_TRY(kv_rings_alloc(be, cap * dl, m->dep.capacity, m->dep.dim, m->dep.kv_dtype,
                              b->dep_rings, &b->dep_block));
    for (int r = 0; r < cap; r++) b->dep_kv[r] = &b->dep_rings[(size_t)r * (size_t)(dl > 0 ? dl : 1)];
    XS_TRY(lm_stack_scratch_init(be, &m->main, cap, &b->ms));
    XS_TRY(lm_stack_scratch_init(be, &m->dep, cap, &b->ds));
    XS_TRY(alloc_t(be, XS_F32, cap, c->dim, &b->x));
    XS_TRY(alloc_t(be, XS_F32, cap, c->dim, &b->emb));
    XS_TRY(alloc_t(be, XS_F32, cap, c->dim, &b->normed));
    XS_TRY(alloc_t(be, XS_F32, cap, c->text_card, &b->text_logits));
    XS_TRY(alloc_t(be, XS_F32, cap, c->dep_dim, &b->dx));
    XS_TRY(alloc_t(be, XS_F32, cap, c->dep_dim, &b->demb));
    XS_TRY(alloc_t(be, XS_F32, cap, c->dep_low_rank ? c->dep_low_rank : 1, &b->dlr));
    XS_TRY(alloc_t(be, XS_F32, cap, c->card, &b->audio_logits));
    XS_TRY(alloc_t(be, XS_I32, nd, cap, &b->ids));
    int64_t ncap = cap;
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &ncap, &b->pos));
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &ncap, &b->steps));
    XS_TRY(alloc_t(be, XS_I32, ns, cap, &b->sampled));
    if (is_sin(m->main.pos)) {
        XS_TRY(alloc_t(be, XS_F32, cap, c->dim, &b->main_pe));
        b->pe_host = malloc((size_t)cap * (size_t)c->dim * sizeof *b->pe_host);
        if (!b->pe_host) return xs_error(XS_ERR_NOMEM, "lm batch: out of memory");
    }
    return init_constants(b);
}

xs_status lm_batch_new(const lm_model *m, int cap, lm_batch **out) {
    if (!m || !out) return xs_error(XS_ERR_ARG, "lm batch: NULL argument");
    if (cap < 1 || cap > 4096)
        return xs_error(XS_ERR_ARG, "lm batch: capacity %d (expected 1..4096)", cap);
    lm_batch *b = calloc(1, sizeof *b);
    if (!b) return xs_error(XS_ERR_NOMEM, "lm batch: out of memory");
    b->m = m;
    b->be = m->be;
    b->cap = cap;
    xs_status rc = batch_init(b);
    if (rc != XS_OK) {
        lm_batch_free(b);
        return rc;
    }
    *out = b;
    return XS_OK;
}

int lm_batch_capacity(const lm_batch *b) { return b ? b->cap : 0; }

/* ---- views ------------------------------------------------------------- */

static xs_tensor row_of(const xs_tensor *t, int r) { return xs_tensor_slice(t, 0, r, 1); }
static xs_tensor first_rows(const xs_tensor *t, int n) { return xs_tensor_slice(t, 0, 0, n); }

xs_tensor lm_batch_text_logits(const lm_batch *b, int r) { return row_of(&b->text_logits, r); }
xs_tensor lm_batch_audio_logits(const lm_batch *b, int r) { return row_of(&b->audio_logits, r); }
xs_tensor lm_batch_pick_slot(const lm_batch *b, int j, int r) {
    return lm_slot(&b->sampled, j * b->cap + r);
}
xs_tensor lm_batch_ids(const lm_batch *b) { return b->ids; }
xs_tensor lm_batch_sampled(const lm_batch *b) { return b->sampled; }
xs_tensor lm_batch_step_slot(const lm_batch *b, int r) { return lm_slot(&b->steps, r); }
xs_tensor lm_batch_sampled_row(const lm_batch *b, int j) {
    return xs_tensor_1d(XS_I32, (int32_t *)b->sampled.data + (int64_t)j * b->cap,
                        b->n > 0 ? b->n : 1);
}

/* Column r of a stream-major [streams, cap] i32 tensor, as a [1, streams]
 * strided view (for the taps). */
static xs_tensor column_of(const xs_tensor *t, int r) {
    xs_tensor tr = xs_tensor_transpose(t, 0, 1);
    return xs_tensor_slice(&tr, 0, r, 1);
}

/* ---- phase 1: stage ------------------------------------------------------ */

xs_status lm_batch_stage(lm_batch *b, lm_exec *const *rows, int n, const int32_t *tokens,
                         const int32_t *steps) {
    if (!b || !rows) return xs_error(XS_ERR_ARG, "lm batch: stage: NULL argument");
    const lm_config *c = &b->m->cfg;
    const int nd = c->n_delays, cap = b->cap;
    if (n < 1 || n > cap)
        return xs_error(XS_ERR_ARG, "lm batch: %d rows for a batch of capacity %d", n, cap);
    for (int r = 0; r < n; r++) {
        if (!rows[r] || rows[r]->m != b->m)
            return xs_error(XS_ERR_ARG, "lm batch: row %d is not a session of this model", r);
        for (int q = 0; q < r; q++)
            if (rows[q] == rows[r])
                return xs_error(XS_ERR_ARG, "lm batch: rows %d and %d are the same session", q, r);
        for (int k = 0; tokens && k < nd; k++) {
            int32_t t = tokens[(size_t)r * nd + k], hi = k == 0 ? c->text_card : c->card;
            if (t < -1 || t > hi)
                return xs_error(XS_ERR_ARG, "lm: token %d of stream %d out of range (-1..%d)", t,
                                k, hi);
        }
    }
    for (int k = 0; tokens && k < nd; k++)
        for (int r = 0; r < cap; r++)
            b->ids_host[k * cap + r] = r < n ? tokens[(size_t)r * nd + k] : -1;
    for (int r = 0; r < cap; r++) {
        b->pos_host[r] = r < n ? (int32_t)rows[r]->main_pos : 0;
        b->steps_host[r] = r < n && steps ? steps[r] : 0;
    }
    if (tokens) XS_TRY(xs_tensor_upload(b->be, &b->ids, b->ids_host));
    XS_TRY(xs_tensor_upload(b->be, &b->pos, b->pos_host));
    XS_TRY(xs_tensor_upload(b->be, &b->steps, b->steps_host));
    if (b->main_pe.data) {
        for (int r = 0; r < n; r++)
            lm_sin_embedding(b->pe_host + (size_t)r * c->dim, c->dim, rows[r]->main_pos,
                             b->m->main.max_period);
        xs_tensor pe = first_rows(&b->main_pe, n);
        XS_TRY(xs_tensor_upload(b->be, &pe, b->pe_host));
    }
    b->any_taps = false;
    for (int r = 0; r < n; r++) {
        b->rows[r] = rows[r];
        b->main_kv[r] = rows[r]->ms.kv;
        b->tap_layers[r] = rows[r]->taps ? &rows[r]->tap_layers : NULL;
        b->any_taps |= rows[r]->taps != NULL;
        rows[r]->main_pos++;
    }
    b->n = n;
    return XS_OK;
}

/* ---- phase 2: device work -------------------------------------------------- */

/* y[n, D] = emb(ids[n]); low-rank tables go through their linear. Id -1
 * gives zeros (the embedding op's zero row, and 0 . W = 0). */
static xs_status embed(lm_batch *b, const lm_emb *emb, const xs_tensor *ids, xs_tensor *y) {
    if (!emb->low_rank.data) return xs_op_embedding(b->be, y, &emb->table, ids);
    xs_tensor lr = first_rows(&b->dlr, (int)ids->shape[0]);
    XS_TRY(xs_op_embedding(b->be, &lr, &emb->table, ids));
    return xs_op_matmul(b->be, y, &lr, &emb->low_rank, NULL);
}

/* y[n, D] = the sum of the terms embs[i][ids[i]] in order (accumulate: y
 * += each in turn), as embed() + xs_op_add would sum them. Runs of plain
 * tables are one xs_op_embedding_sum (one kernel on a GPU instead of one
 * gather per table and one add per term); a low-rank table keeps its
 * linear: embed() into `scratch`, then an add, at its place in the order.
 * scratch: [n, D], the composition's buffer. */
static xs_status embed_sum(lm_batch *b, int count, const lm_emb *const *embs,
                           const xs_tensor *ids, xs_tensor *y, bool accumulate,
                           xs_tensor *scratch) {
    const xs_tensor *tab[LM_MAX_STREAMS + 1], *idp[LM_MAX_STREAMS + 1];
    int i = 0;
    while (i < count) {
        if (embs[i]->low_rank.data) {
            if (!accumulate) {
                XS_TRY(embed(b, embs[i], &ids[i], y));
            } else {
                XS_TRY(embed(b, embs[i], &ids[i], scratch));
                XS_TRY(xs_op_add(b->be, y, y, scratch));
            }
            accumulate = true;
            i++;
            continue;
        }
        int j = 0;
        for (; i + j < count && j < LM_MAX_STREAMS + 1 && !embs[i + j]->low_rank.data; j++) {
            tab[j] = &embs[i + j]->table;
            idp[j] = &ids[i + j];
        }
        XS_TRY(xs_op_embedding_sum(b->be, y, j, tab, idp, accumulate, scratch));
        accumulate = true;
        i += j;
    }
    return XS_OK;
}

/* Record row r of t ([n, N]) under `name` for every staged row with taps. */
static xs_status tap_rows(lm_batch *b, const char *name, const xs_tensor *t) {
    for (int r = 0; b->any_taps && r < b->n; r++) {
        if (!b->rows[r]->taps) continue;
        xs_tensor row = row_of(t, r);
        XS_TRY(xs_tap_record(b->rows[r]->taps, b->be, name, &row, 0));
    }
    return XS_OK;
}

xs_status lm_batch_main(lm_batch *b) {
    if (!b || b->n < 1) return xs_error(XS_ERR_ARG, "lm batch: main step with no staged rows");
    const lm_model *m = b->m;
    const lm_config *c = &m->cfg;
    xs_backend *be = b->be;
    const int n = b->n;
    for (int r = 0; b->any_taps && r < n; r++) {
        lm_exec *e = b->rows[r];
        if (!e->taps) continue;
        xs_tensor col = column_of(&b->ids, r);
        XS_TRY(xs_op_copy(be, &e->tap_tokens, &col));
        XS_TRY(xs_tap_record(e->taps, be, "lm.main_input_tokens", &e->tap_tokens, 0));
    }
    xs_tensor x = first_rows(&b->x, n), em = first_rows(&b->emb, n);
    /* Kyutai's order: audio embeddings summed in stream order, then text. */
    const lm_emb *embs[LM_MAX_STREAMS + 1];
    xs_tensor ids[LM_MAX_STREAMS + 1];
    for (int i = 0; i <= c->n_q; i++) {
        const int stream = i < c->n_q ? 1 + i : 0; /* ids row 0 is the text stream */
        embs[i] = i < c->n_q ? &m->emb[i] : &m->text_emb;
        ids[i] = xs_tensor_1d(XS_I32, (int32_t *)b->ids.data + (int64_t)stream * b->cap, n);
    }
    XS_TRY(embed_sum(b, c->n_q + 1, embs, ids, &x, false, &em));
    /* LMModel.forward_text: the fuser's "sum" condition joins the input here */
    for (int r = 0; r < n; r++) {
        if (!b->rows[r]->cond.data) continue;
        xs_tensor xr = row_of(&x, r);
        XS_TRY(xs_op_add(be, &xr, &xr, &b->rows[r]->cond));
    }
    XS_TRY(tap_rows(b, "lm.main_emb_sum", &x));
    xs_tensor pos = xs_tensor_1d(XS_I32, b->pos.data, n);
    xs_tensor pe = b->main_pe.data ? first_rows(&b->main_pe, n) : (xs_tensor){0};
    xs_tensor normed = first_rows(&b->normed, n), tl = first_rows(&b->text_logits, n);
    /* the out_norm runs inside, fused with the last layer's residual add */
    XS_TRY(lm_stack_step_norm(be, &m->main, &b->ms, b->main_kv, n, &x, &pos,
                              b->main_pe.data ? &pe : NULL, 0,
                              b->any_taps ? b->tap_layers : NULL, c->norm, &m->out_norm,
                              &normed));
    for (int r = 0; b->any_taps && r < n; r++)
        if (b->rows[r]->taps)
            XS_TRY(xs_tap_record(b->rows[r]->taps, be, "lm.main_layer_out",
                                 &b->rows[r]->tap_layers, 0));
    XS_TRY(tap_rows(b, "lm.main_pre_norm", &x));
    XS_TRY(tap_rows(b, "lm.main_out_normed", &normed));
    XS_TRY(xs_op_matmul(be, &tl, &normed, &m->text_linear, NULL));
    return tap_rows(b, "lm.text_logits", &tl);
}

/* Copy row r of t [n, N] into row k of a [1, dep_q, N] tap buffer. */
static xs_status tap_into(xs_backend *be, xs_tensor *buf, int k, const xs_tensor *t, int r) {
    int64_t nn = buf->shape[2];
    xs_tensor dst = xs_tensor_2d(XS_F32, (float *)buf->data + (int64_t)k * nn, 1, nn);
    xs_tensor src = row_of(t, r);
    return xs_op_copy(be, &dst, &src);
}

/* Empty the depformer rings of rows 0..n-1: their position vectors lie at
 * one stride in dep_block (kv_rings.c), so one device copy from neg_ones
 * (broadcast over the rings) does all of them; no upload. */
static xs_status dep_reset(lm_batch *b, int n) {
    const int64_t rings = (int64_t)n * b->m->dep.n_layers, cap = b->dep_rings[0].capacity;
    if (rings < 1) return XS_OK;
    const int64_t stride = rings > 1 ? (int32_t *)b->dep_rings[1].pos.data -
                                           (int32_t *)b->dep_rings[0].pos.data
                                     : cap;
    const int64_t shape[2] = {rings, cap};
    xs_tensor dst = xs_tensor_make(XS_I32, 2, shape, b->dep_rings[0].pos.data);
    dst.stride[0] = stride;
    xs_tensor src = xs_tensor_make(XS_I32, 2, shape, b->neg_ones.data);
    src.stride[0] = 0;
    return xs_op_copy(b->be, &dst, &src);
}

xs_status lm_batch_dep(lm_batch *b, int k, const xs_tensor *prev) {
    if (!b || b->n < 1) return xs_error(XS_ERR_ARG, "lm batch: depformer step with no staged rows");
    const lm_model *m = b->m;
    const lm_config *c = &m->cfg;
    xs_backend *be = b->be;
    const int n = b->n;
    if (k < 0 || k >= c->dep_q)
        return xs_error(XS_ERR_ARG, "lm: depformer sub-step %d (model has %d)", k, c->dep_q);
    if (!prev || prev->dtype != XS_I32 || xs_tensor_numel(prev) != n)
        return xs_error(XS_ERR_SHAPE, "lm batch: depformer input ids: expected i32 [%d]", n);
    if (k == 0) XS_TRY(dep_reset(b, n)); /* a fresh depformer cache every time step */
    int set = c->dep_schedule[k];
    int in_index = c->dep_multi_linear ? set : 0;
    if (c->dep_multi_linear && !c->has_dep_schedule) in_index = k;
    xs_tensor dx = first_rows(&b->dx, n), demb = first_rows(&b->demb, n);
    xs_tensor normed = first_rows(&b->normed, n), al = first_rows(&b->audio_logits, n);
    XS_TRY(xs_op_matmul(be, &dx, &normed, &m->dep_in[in_index], NULL));
    /* dx += the previous pick's embedding (one fused gather-add) */
    xs_tensor ids = xs_tensor_1d(XS_I32, prev->data, n);
    const lm_emb *de = k == 0 ? &m->dep_text_emb : &m->dep_emb[k - 1];
    XS_TRY(embed_sum(b, 1, &de, &ids, &dx, true, &demb));
    for (int r = 0; b->any_taps && r < n; r++)
        if (b->rows[r]->taps) XS_TRY(tap_into(be, &b->rows[r]->tap_dep_in, k, &dx, r));
    xs_tensor pos = xs_tensor_1d(XS_I32, (int32_t *)b->dep_pos.data + (int64_t)k * b->cap, n);
    xs_tensor pe = b->dep_pe.data ? xs_tensor_1d(XS_F32, (float *)b->dep_pe.data +
                                                            (int64_t)k * m->dep.dim, m->dep.dim)
                                  : (xs_tensor){0};
    XS_TRY(lm_stack_step(be, &m->dep, &b->ds, b->dep_kv, n, &dx, &pos,
                         b->dep_pe.data ? &pe : NULL, set, NULL));
    for (int r = 0; b->any_taps && r < n; r++)
        if (b->rows[r]->taps) XS_TRY(tap_into(be, &b->rows[r]->tap_dep_out, k, &dx, r));
    XS_TRY(xs_op_matmul(be, &al, &dx, &m->linears[k], NULL));
    for (int r = 0; b->any_taps && r < n; r++) {
        lm_exec *e = b->rows[r];
        if (!e->taps) continue;
        XS_TRY(tap_into(be, &e->tap_dep_logits, k, &al, r));
        if (k == c->dep_q - 1) {
            XS_TRY(xs_tap_record(e->taps, be, "lm.depformer_in", &e->tap_dep_in, 0));
            XS_TRY(xs_tap_record(e->taps, be, "lm.depformer_out", &e->tap_dep_out, 0));
            XS_TRY(xs_tap_record(e->taps, be, "lm.depformer_logits", &e->tap_dep_logits, 0));
        }
    }
    return XS_OK;
}

/* ---- phase 3: fetch -------------------------------------------------------- */

xs_status lm_batch_fetch(lm_batch *b, int32_t *out) {
    if (!b || b->n < 1 || !out) return xs_error(XS_ERR_ARG, "lm batch: fetch with no staged rows");
    const int ns = 1 + b->m->cfg.dep_q, cap = b->cap;
    XS_TRY(xs_tensor_download(b->be, b->fetch_host, &b->sampled));
    for (int r = 0; r < b->n; r++)
        for (int j = 0; j < ns; j++) out[(size_t)r * ns + j] = b->fetch_host[j * cap + r];
    for (int r = 0; b->any_taps && r < b->n; r++) {
        lm_exec *e = b->rows[r];
        if (!e->taps) continue;
        xs_tensor col = column_of(&b->sampled, r);
        xs_tensor dst = xs_tensor_2d(XS_I32, e->tap_sampled.data, 1, ns);
        XS_TRY(xs_op_copy(b->be, &dst, &col));
        int64_t one = 1, sh[2] = {1, ns - 1};
        xs_tensor t0 = xs_tensor_make(XS_I32, 1, &one, e->tap_sampled.data);
        xs_tensor t1 = xs_tensor_make(XS_I32, 2, sh, (int32_t *)e->tap_sampled.data + 1);
        XS_TRY(xs_tap_record(e->taps, b->be, "lm.sampled_text", &t0, 0));
        XS_TRY(xs_tap_record(e->taps, b->be, "lm.sampled_audio", &t1, 0));
    }
    return XS_OK;
}
