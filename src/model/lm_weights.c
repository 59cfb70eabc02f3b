/*
 * lm_weights.c — map a checkpoint onto lm_model, whatever its layout.
 *
 * Layouts (see ../shared/golden/README.md section 1 and real_checkpoints/):
 *  - PyTorch: fused `<attn>.in_proj_weight` [S*3D, D] and `out_proj.weight`
 *    [S*D, D] with weight set s in rows s*3D.. / s*D..; q, k, v row blocks
 *    inside a set; depformer_in.{k}, linears.{k}, depformer_text_emb,
 *    depformer_emb.{k-1}; depformer FFN depformer.layers.{l}.gating.{s}.
 *  - candle: the depformer split per step: depformer.{k}.linear_in /
 *    linear_out / emb and depformer.{k}.transformer.layers.{l}.*, norms
 *    repeated per step (identical; we take step 0's).
 *  - PyTorch int8 (moshiko-pytorch-q8): PyTorch names, nn.Linear weights and
 *    in_proj_weight as int8 rows with a float32 `<name>_scb` row absmax:
 *    W[r, c] = q[r, c] * scb[r] / 127 (bitsandbytes LLM.int8 row-wise).
 *
 * Matrices keep their file dtype (f32/f16/bf16/q8_0/q4_0: zero-copy views
 * into the mmap on host backends). Int8 rows have no op of their own, so
 * they are repacked once into Q8_0 blocks with d = f16(scb / 127) and the
 * same int8 values: same memory, one rounding of the scale (relative error
 * <= 2^-11, far below the int8 step of 1/127). Norm vectors (tiny) are
 * converted to f32, the dtype the norm ops take.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant.h"
#include "model/lm.h"

/* ---- ownership helpers --------------------------------------------------- */

static void *own(lm_model *m, size_t n) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 64;
        void **p = realloc(m->owned, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        m->owned = p;
        m->cap_owned = cap;
    }
    void *b = malloc(n ? n : 1);
    if (b) m->owned[m->n_owned++] = b;
    return b;
}

/* Make host tensor usable by the backend; remember it for release. */
static xs_status prep(lm_model *m, const xs_tensor *host, xs_tensor *dst) {
    if (m->n_prepared == m->cap_prepared) {
        int cap = m->cap_prepared ? m->cap_prepared * 2 : 256;
        xs_tensor **p = realloc(m->prepared, (size_t)cap * sizeof *p);
        if (!p) return xs_error(XS_ERR_NOMEM, "lm: out of memory");
        m->prepared = p;
        m->cap_prepared = cap;
    }
    XS_TRY(xs_backend_weight(m->be, host, dst));
    m->prepared[m->n_prepared++] = dst;
    return XS_OK;
}

static const char *fpath(const lm_model *m) {
    return m->file ? xs_weights_path(m->file) : "(synthetic weights)";
}

/* A tensor by name: from the file, or made up by the synthetic source with
 * the shape the mapping expects (benchmarks at real shapes). */
static const xs_tensor *lookup(lm_model *m, const char *name, int ndim, const int64_t *shape) {
    if (m->file) return xs_weights_find(m->file, name);
    return m->synth ? m->synth(m->synth_ctx, name, ndim, shape) : NULL;
}

static xs_status missing(const lm_model *m, const char *name, const char *shape) {
    return xs_error(XS_ERR_NOT_FOUND, "%s: tensor '%s' is missing (expected shape %s, layout %s)",
                    fpath(m), name, shape, xs_layout_name(m->layout));
}

static xs_status bad_shape(const lm_model *m, const xs_tensor *t, const char *name,
                           const char *want) {
    char got[64];
    return xs_error(XS_ERR_SHAPE, "%s: tensor '%s' has shape %s %s, expected %s", fpath(m), name,
                    xs_tensor_shape_str(t, got, sizeof got), xs_dtype_name(t->dtype), want);
}

/* ---- matrices ------------------------------------------------------------ */

/* int8 rows [n, cols] with per-row scale -> Q8_0 (or f32 when cols % 32). */
static xs_status int8_rows(lm_model *m, const char *name, const xs_tensor *t,
                           const xs_tensor *scb, int64_t row0, int64_t n, xs_tensor *out) {
    int64_t cols = t->shape[1];
    const int8_t *q = (const int8_t *)t->data + row0 * cols;
    float *sc = own(m, (size_t)n * sizeof(float));
    if (!sc) return xs_error(XS_ERR_NOMEM, "%s: out of memory", name);
    XS_TRY(xs_convert_to_f32(sc, (const char *)scb->data +
                                 row0 * (int64_t)xs_dtype_row_bytes(scb->dtype, 1),
                             scb->dtype, n));
    int64_t shape[2] = {n, cols};
    if (cols % XS_QK == 0) {
        xs_block_q8_0 *b = own(m, (size_t)(n * cols / XS_QK) * sizeof *b);
        if (!b) return xs_error(XS_ERR_NOMEM, "%s: out of memory", name);
        for (int64_t r = 0; r < n; r++) {
            uint16_t d = xs_f32_to_f16(sc[r] / 127.f);
            for (int64_t j = 0; j < cols / XS_QK; j++) {
                xs_block_q8_0 *blk = &b[r * (cols / XS_QK) + j];
                blk->d = d;
                memcpy(blk->qs, q + r * cols + j * XS_QK, XS_QK);
            }
        }
        *out = xs_tensor_make(XS_Q8_0, 2, shape, b);
    } else {
        float *f = own(m, (size_t)(n * cols) * sizeof(float));
        if (!f) return xs_error(XS_ERR_NOMEM, "%s: out of memory", name);
        for (int64_t r = 0; r < n; r++)
            for (int64_t c = 0; c < cols; c++) f[r * cols + c] = q[r * cols + c] * sc[r] / 127.f;
        *out = xs_tensor_make(XS_F32, 2, shape, f);
    }
    return XS_OK;
}

/* Rows [row0, row0 + n) of the [rows, cols] matrix `name`, ready for matmul. */
static xs_status matrix_rows(lm_model *m, const char *name, int64_t rows, int64_t cols,
                             int64_t row0, int64_t n, xs_tensor *dst) {
    char want[64];
    snprintf(want, sizeof want, "[%lld, %lld]", (long long)rows, (long long)cols);
    int64_t want_shape[2] = {rows, cols};
    const xs_tensor *t = lookup(m, name, 2, want_shape);
    if (!t) return missing(m, name, want);
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols) return bad_shape(m, t, name, want);
    xs_tensor view;
    if (t->dtype == XS_I8) {
        char sname[512];
        snprintf(sname, sizeof sname, "%s_scb", name);
        const xs_tensor *scb = lookup(m, sname, 1, &rows);
        char swant[32];
        snprintf(swant, sizeof swant, "[%lld]", (long long)rows);
        if (!scb) return missing(m, sname, swant);
        if (scb->ndim != 1 || scb->shape[0] != rows || xs_dtype_is_quantized(scb->dtype) ||
            scb->dtype == XS_I8)
            return bad_shape(m, scb, sname, swant);
        XS_TRY(int8_rows(m, name, t, scb, row0, n, &view));
    } else if (t->dtype == XS_F32 || t->dtype == XS_F16 || t->dtype == XS_BF16 ||
               t->dtype == XS_Q8_0 || t->dtype == XS_Q4_0) {
        int64_t shape[2] = {n, cols};
        view = xs_tensor_make(t->dtype, 2, shape,
                              (char *)t->data + row0 * (int64_t)xs_dtype_row_bytes(t->dtype, cols));
    } else {
        return xs_error(XS_ERR_DTYPE, "%s: tensor '%s' has dtype %s (expected a float or "
                        "quantized matrix)", fpath(m), name, xs_dtype_name(t->dtype));
    }
    view.name = t->name;
    return prep(m, &view, dst);
}

static xs_status matrix(lm_model *m, const char *name, int64_t rows, int64_t cols, xs_tensor *dst) {
    return matrix_rows(m, name, rows, cols, 0, rows, dst);
}

/* A [D] vector stored as [D] or [1, 1, D] (RMSNorm alpha), converted to f32. */
static xs_status vector(lm_model *m, const char *name, int64_t d, xs_tensor *dst) {
    char want[32];
    snprintf(want, sizeof want, "[1, 1, %lld]", (long long)d);
    int64_t want_shape[3] = {1, 1, d};
    const xs_tensor *t = lookup(m, name, 3, want_shape);
    if (!t) return missing(m, name, want);
    if (xs_tensor_numel(t) != d || t->shape[t->ndim - 1] != d || xs_dtype_is_quantized(t->dtype) ||
        t->dtype == XS_I8 || t->dtype == XS_I32 || t->dtype == XS_I64)
        return bad_shape(m, t, name, want);
    float *f = own(m, (size_t)d * sizeof(float));
    if (!f) return xs_error(XS_ERR_NOMEM, "%s: out of memory", name);
    XS_TRY(xs_convert_to_f32(f, t->data, t->dtype, d));
    xs_tensor v = xs_tensor_1d(XS_F32, f, d);
    v.name = t->name;
    return prep(m, &v, dst);
}

static xs_status norm(lm_model *m, lm_norm_kind kind, const char *prefix, int64_t d, lm_norm *n) {
    char name[512];
    memset(n, 0, sizeof *n);
    if (kind == LM_NORM_RMS || kind == LM_NORM_RMS_F32) {
        snprintf(name, sizeof name, "%s.alpha", prefix);
        return vector(m, name, d, &n->w);
    }
    snprintf(name, sizeof name, "%s.weight", prefix);
    XS_TRY(vector(m, name, d, &n->w));
    snprintf(name, sizeof name, "%s.bias", prefix);
    return vector(m, name, d, &n->b);
}

static xs_status embedding(lm_model *m, const char *prefix, int64_t rows, int64_t dim,
                           int low_rank, lm_emb *e) {
    char name[512];
    memset(e, 0, sizeof *e);
    snprintf(name, sizeof name, "%s.weight", prefix);
    XS_TRY(matrix(m, name, rows, low_rank ? low_rank : dim, &e->table));
    if (low_rank) {
        snprintf(name, sizeof name, "%s.low_rank.weight", prefix);
        XS_TRY(matrix(m, name, dim, low_rank, &e->low_rank));
    }
    return XS_OK;
}

/* ---- transformer stacks -------------------------------------------------- */

static int gating_hidden(int dim, int ff) { return ff == 4 * dim ? (21 * dim) / 8 : (2 * ff) / 3; }

/* One weight set of a layer. attn_prefix names the fused attention, ffn_prefix
 * the FFN module ("...gating" or "...gating.{s}" or the layer for linear1/2);
 * `set_rows` is the index of this set's row block in the fused tensors and
 * n_fused their number of blocks. */
static xs_status layer_set(lm_model *m, const lm_stack *s, const char *attn_prefix,
                           int set_rows, int n_fused, const char *ffn_prefix, lm_set *ws) {
    char name[512];
    int64_t D = s->dim;
    snprintf(name, sizeof name, "%s.in_proj_weight", attn_prefix);
    int64_t base = (int64_t)set_rows * 3 * D;
    XS_TRY(matrix_rows(m, name, n_fused * 3 * D, D, base, 3 * D, &ws->wqkv));
    snprintf(name, sizeof name, "%s.out_proj.weight", attn_prefix);
    XS_TRY(matrix_rows(m, name, n_fused * D, D, (int64_t)set_rows * D, D, &ws->wo));
    if (s->gating) {
        snprintf(name, sizeof name, "%s.linear_in.weight", ffn_prefix);
        XS_TRY(matrix(m, name, 2 * (int64_t)s->hidden, D, &ws->ff_in));
        snprintf(name, sizeof name, "%s.linear_out.weight", ffn_prefix);
        XS_TRY(matrix(m, name, D, s->hidden, &ws->ff_out));
    } else {
        snprintf(name, sizeof name, "%s.linear1.weight", ffn_prefix);
        XS_TRY(matrix(m, name, s->hidden, D, &ws->ff_in));
        snprintf(name, sizeof name, "%s.linear2.weight", ffn_prefix);
        XS_TRY(matrix(m, name, D, s->hidden, &ws->ff_out));
    }
    return XS_OK;
}

static xs_status stack_alloc(lm_stack *s) {
    s->layers = calloc((size_t)s->n_layers, sizeof *s->layers);
    return s->layers ? XS_OK : xs_error(XS_ERR_NOMEM, "lm: out of memory");
}

static xs_status build_main(lm_model *m) {
    const lm_config *c = &m->cfg;
    lm_stack *s = &m->main;
    s->dim = c->dim;
    s->heads = c->num_heads;
    s->n_layers = c->num_layers;
    s->n_sets = 1;
    s->gating = c->gating;
    int ff = (int)(c->hidden_scale * c->dim);
    s->hidden = c->gating ? gating_hidden(c->dim, ff) : ff;
    s->norm = c->norm;
    s->pos = c->pos;
    s->max_period = c->max_period;
    s->context = c->context > 0 ? c->context : INT64_MAX;
    s->capacity = c->context > 0 ? c->context : 4096;
    XS_TRY(stack_alloc(s));
    for (int l = 0; l < s->n_layers; l++) {
        char p[256], attn[256];
        snprintf(p, sizeof p, "transformer.layers.%d", l);
        snprintf(attn, sizeof attn, "%s.self_attn", p);
        lm_layer *L = &s->layers[l];
        char n1[300], n2[300], ffn[300];
        snprintf(n1, sizeof n1, "%s.norm1", p);
        snprintf(n2, sizeof n2, "%s.norm2", p);
        XS_TRY(norm(m, s->norm, n1, s->dim, &L->norm1));
        XS_TRY(norm(m, s->norm, n2, s->dim, &L->norm2));
        if (s->gating) snprintf(ffn, sizeof ffn, "%s.gating", p);
        else snprintf(ffn, sizeof ffn, "%s", p);
        XS_TRY(layer_set(m, s, attn, 0, 1, ffn, &L->sets[0]));
    }
    return XS_OK;
}

static xs_status build_dep(lm_model *m) {
    const lm_config *c = &m->cfg;
    lm_stack *s = &m->dep;
    bool candle = m->layout == XS_LAYOUT_CANDLE;
    s->dim = c->dep_dim;
    s->heads = c->dep_heads;
    s->n_layers = c->dep_layers;
    s->n_sets = lm_config_dep_sets(c);
    s->gating = c->dep_gating;
    s->hidden = c->dep_gating ? gating_hidden(c->dep_dim, c->dep_ff) : c->dep_ff;
    s->norm = c->norm; /* Kyutai builds the depformer with the main `norm` */
    s->pos = c->dep_pos;
    s->max_period = c->dep_max_period;
    /* fresh cache of dep_q slots each time step, no context limit */
    s->context = INT64_MAX;
    s->capacity = c->dep_q;
    if (candle && c->has_dep_schedule)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: candle layout with a weights-per-step schedule",
                        fpath(m));
    XS_TRY(stack_alloc(s));
    for (int l = 0; l < s->n_layers; l++) {
        lm_layer *L = &s->layers[l];
        char p[256], n1[300], n2[300];
        if (candle) snprintf(p, sizeof p, "depformer.0.transformer.layers.%d", l);
        else snprintf(p, sizeof p, "depformer.layers.%d", l);
        snprintf(n1, sizeof n1, "%s.norm1", p);
        snprintf(n2, sizeof n2, "%s.norm2", p);
        XS_TRY(norm(m, s->norm, n1, s->dim, &L->norm1));
        XS_TRY(norm(m, s->norm, n2, s->dim, &L->norm2));
        for (int set = 0; set < s->n_sets; set++) {
            char attn[300], ffn[300];
            if (candle) {
                snprintf(attn, sizeof attn, "depformer.%d.transformer.layers.%d.self_attn", set, l);
                snprintf(ffn, sizeof ffn, "depformer.%d.transformer.layers.%d.gating", set, l);
                XS_TRY(layer_set(m, s, attn, 0, 1, ffn, &L->sets[set]));
            } else {
                snprintf(attn, sizeof attn, "%s.self_attn", p);
                if (!s->gating) snprintf(ffn, sizeof ffn, "%s", p);
                else if (s->n_sets > 1) snprintf(ffn, sizeof ffn, "%s.gating.%d", p, set);
                else snprintf(ffn, sizeof ffn, "%s.gating", p);
                XS_TRY(layer_set(m, s, attn, set, s->n_sets, ffn, &L->sets[set]));
            }
        }
    }
    return XS_OK;
}

/* ---- conditioners ----------------------------------------------------------
 * condition_provider.conditioners.<name>.{embed.weight [n_bins + 1, dim],
 * output_proj.weight [D, dim], learnt_padding [1, 1, D]}. They are tiny, so
 * every possible outcome is computed once here on the host, in f32 (Kyutai
 * keeps the condition provider in float32): row i of cond_vec = output_proj .
 * embed[i] (the noop tokenizer maps possible value i to token i), the last
 * row the learnt padding (what a missing value gives). */

/* Host f32 copy of float tensor `name` with exactly numel(shape) values. */
static xs_status host_f32(lm_model *m, const char *name, int ndim, const int64_t *shape,
                          float **out) {
    char want[64];
    if (ndim == 2) snprintf(want, sizeof want, "[%lld, %lld]", (long long)shape[0], (long long)shape[1]);
    else snprintf(want, sizeof want, "[1, 1, %lld]", (long long)shape[ndim - 1]);
    const xs_tensor *t = lookup(m, name, ndim, shape);
    if (!t) return missing(m, name, want);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    bool ok = t->dtype == XS_F32 || t->dtype == XS_F16 || t->dtype == XS_BF16;
    ok = ok && xs_tensor_numel(t) == n && t->shape[t->ndim - 1] == shape[ndim - 1];
    if (ok && ndim == 2) ok = t->ndim == 2 && t->shape[0] == shape[0];
    if (!ok) return bad_shape(m, t, name, want);
    float *f = own(m, (size_t)n * sizeof(float));
    if (!f) return xs_error(XS_ERR_NOMEM, "%s: out of memory", name);
    XS_TRY(xs_convert_to_f32(f, t->data, t->dtype, n));
    *out = f;
    return XS_OK;
}

static xs_status build_conditioners(lm_model *m) {
    const lm_config *c = &m->cfg;
    const int64_t D = c->dim;
    for (int ci = 0; ci < c->n_cond; ci++) {
        const lm_cond_config *cc = &c->cond[ci];
        char name[256];
        const char *pre = "condition_provider.conditioners";
        float *embed = NULL, *proj = NULL, *pad = NULL;
        int64_t es[2] = {cc->n_bins + 1, cc->dim}, ps[2] = {D, cc->dim}, pads[3] = {1, 1, D};
        snprintf(name, sizeof name, "%s.%s.embed.weight", pre, cc->name);
        XS_TRY(host_f32(m, name, 2, es, &embed));
        if (!cc->identity_proj) {
            snprintf(name, sizeof name, "%s.%s.output_proj.weight", pre, cc->name);
            XS_TRY(host_f32(m, name, 2, ps, &proj));
        }
        if (cc->learn_padding) {
            snprintf(name, sizeof name, "%s.%s.learnt_padding", pre, cc->name);
            XS_TRY(host_f32(m, name, 3, pads, &pad));
        }
        float *v = own(m, (size_t)((cc->n_values + 1) * D) * sizeof(float));
        if (!v) return xs_error(XS_ERR_NOMEM, "lm: conditioner %s: out of memory", cc->name);
        for (int i = 0; i < cc->n_values; i++) {
            const float *e = embed + (int64_t)i * cc->dim;
            for (int64_t r = 0; r < D; r++) {
                if (!proj) { v[i * D + r] = e[r]; continue; }
                double acc = 0;
                for (int j = 0; j < cc->dim; j++) acc += (double)proj[r * cc->dim + j] * e[j];
                v[i * D + r] = (float)acc;
            }
        }
        for (int64_t r = 0; r < D; r++) v[cc->n_values * D + r] = pad ? pad[r] : 0.f;
        m->cond_vec[ci] = v;
    }
    return XS_OK;
}

static xs_status build_all(lm_model *m) {
    const lm_config *c = &m->cfg;
    char name[256];
    XS_TRY(embedding(m, "text_emb", c->text_card + 1, c->dim, 0, &m->text_emb));
    for (int i = 0; i < c->n_q; i++) {
        snprintf(name, sizeof name, "emb.%d", i);
        XS_TRY(embedding(m, name, c->card + 1, c->dim, 0, &m->emb[i]));
    }
    XS_TRY(build_conditioners(m));
    XS_TRY(build_main(m));
    XS_TRY(norm(m, c->norm, "out_norm", c->dim, &m->out_norm));
    XS_TRY(matrix(m, "text_linear.weight", c->text_card, c->dim, &m->text_linear));

    bool candle = m->layout == XS_LAYOUT_CANDLE;
    int n_in = 1;
    if (c->dep_multi_linear) n_in = c->has_dep_schedule ? lm_config_dep_sets(c) : c->dep_q;
    m->n_dep_in = n_in;
    for (int k = 0; k < n_in; k++) {
        if (candle) snprintf(name, sizeof name, "depformer.%d.linear_in.weight", k);
        else snprintf(name, sizeof name, "depformer_in.%d.weight", k);
        XS_TRY(matrix(m, name, c->dep_dim, c->dim, &m->dep_in[k]));
    }
    XS_TRY(embedding(m, candle ? "depformer.0.emb" : "depformer_text_emb", c->text_card + 1,
                     c->dep_dim, c->dep_low_rank, &m->dep_text_emb));
    for (int k = 1; k < c->dep_q; k++) {
        if (candle) snprintf(name, sizeof name, "depformer.%d.emb", k);
        else snprintf(name, sizeof name, "depformer_emb.%d", k - 1);
        XS_TRY(embedding(m, name, c->card + 1, c->dep_dim, c->dep_low_rank, &m->dep_emb[k - 1]));
    }
    for (int k = 0; k < c->dep_q; k++) {
        if (candle) snprintf(name, sizeof name, "depformer.%d.linear_out.weight", k);
        else snprintf(name, sizeof name, "linears.%d.weight", k);
        XS_TRY(matrix(m, name, c->card, c->dep_dim, &m->linears[k]));
    }
    return build_dep(m);
}

void lm_model_free(lm_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_prepared; i++) xs_backend_weight_release(m->be, m->prepared[i]);
    free(m->prepared);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->main.layers);
    free(m->dep.layers);
    if (m->owns_file) xs_weights_close(m->file);
    free(m);
}

xs_status lm_model_build(const lm_config *cfg, xs_weights *w, xs_backend *be, lm_model **out) {
    lm_model *m = calloc(1, sizeof *m);
    if (!m) return xs_error(XS_ERR_NOMEM, "lm: out of memory");
    m->cfg = *cfg;
    m->be = be;
    m->file = w;
    /* The formats reader decides the layout from the names (one rule for
     * every tool); an LM file is one of the three LM layouts. */
    m->layout = xs_weights_layout(w);
    if (m->layout != XS_LAYOUT_PYTORCH && m->layout != XS_LAYOUT_CANDLE &&
        m->layout != XS_LAYOUT_PYTORCH_INT8) {
        xs_layout found = m->layout;
        lm_model_free(m);
        return xs_error(XS_ERR_FORMAT, "%s: not a Moshi LM checkpoint (tensor names say: %s): neither "
                        "'depformer_in.0.weight' (PyTorch layout) nor "
                        "'depformer.0.linear_in.weight' (candle layout) is present",
                        xs_weights_path(w), xs_layout_name(found));
    }
    xs_status rc = build_all(m);
    if (rc != XS_OK) {
        lm_model_free(m);
        return rc;
    }
    *out = m;
    return XS_OK;
}

xs_status lm_model_build_synthetic(const lm_config *cfg, xs_layout layout, lm_synth_fn fn,
                                   void *ctx, xs_backend *be, lm_model **out) {
    if (layout != XS_LAYOUT_PYTORCH && layout != XS_LAYOUT_CANDLE)
        return xs_error(XS_ERR_ARG, "lm: synthetic weights need the pytorch or candle layout");
    lm_model *m = calloc(1, sizeof *m);
    if (!m) return xs_error(XS_ERR_NOMEM, "lm: out of memory");
    m->cfg = *cfg;
    m->be = be;
    m->layout = layout;
    m->synth = fn;
    m->synth_ctx = ctx;
    xs_status rc = build_all(m);
    if (rc != XS_OK) {
        lm_model_free(m);
        return rc;
    }
    *out = m;
    return XS_OK;
}

xs_status lm_model_load(const char *path, const char *config_path, xs_backend *be,
                        lm_model **out) {
    lm_config c;
    if (config_path) XS_TRY(lm_config_load(config_path, &c));
    else lm_config_moshi_7b(&c);
    xs_weights *w = NULL;
    XS_TRY(xs_weights_open(path, &w));
    lm_model *m = NULL;
    xs_status rc = lm_model_build(&c, w, be, &m);
    if (rc != XS_OK) {
        xs_weights_close(w);
        return rc;
    }
    m->owns_file = true;
    *out = m;
    return XS_OK;
}
