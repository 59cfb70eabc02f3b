/*
 * lm_names.c — candle-layout tensor list of a Moshi LM, with the PyTorch
 * source (tensor and row range) of each; see lm_names.h.
 *
 * The rules (same as lm_weights.c's two layouts, written here as a list of
 * renames because a converter needs every tensor, norms repeated per step
 * included, rather than one model in memory):
 *   depformer.{k}.linear_in.weight   <- depformer_in.{k}.weight
 *   depformer.{k}.linear_out.weight  <- linears.{k}.weight
 *   depformer.0.emb.weight           <- depformer_text_emb.weight
 *   depformer.{k}.emb.weight (k > 0) <- depformer_emb.{k-1}.weight
 *   depformer.{k}.transformer.layers.{l}.self_attn.in_proj_weight
 *        <- rows [3Dk, 3D(k+1)) of depformer.layers.{l}.self_attn.in_proj_weight
 *   ...self_attn.out_proj.weight <- rows [Dk, D(k+1)) of ...out_proj.weight
 *   ...gating.linear_{in,out}.weight <- depformer.layers.{l}.gating.{k}.*
 *   ...norm{1,2}.alpha <- depformer.layers.{l}.norm{1,2}.alpha (every k)
 *   everything else (temporal transformer, embeddings, text head): same name.
 */
#include "model/lm_names.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t lm_name_entry_numel(const lm_name_entry *e) {
    int64_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
    return n;
}

void lm_name_plan_free(lm_name_plan *p) {
    if (!p) return;
    free(p->e);
    p->e = NULL;
    p->n = 0;
}

int lm_name_plan_find(const lm_name_plan *p, const char *name) {
    for (int i = 0; p && name && i < p->n; i++)
        if (!strcmp(p->e[i].name, name)) return i;
    return -1;
}

/* FFN hidden size of a gating layer: the formula of Kyutai's
 * ActivationGating (also in lm_weights.c). */
static int64_t names_gating_hidden(int dim, int ff) {
    return ff == 4 * dim ? (21 * (int64_t)dim) / 8 : (2 * (int64_t)ff) / 3;
}

typedef struct plan_builder {
    lm_name_plan *p;
    int cap;
    xs_status rc;
    char name[LM_NAME_MAX], source[LM_NAME_MAX]; /* filled by the caller */
} plan_builder;

/* Append one entry named b->name from b->source: candle shape, expected
 * source shape and the first source row taken. */
static void plan_add(plan_builder *b, int ndim, const int64_t *shape, int src_ndim,
                     const int64_t *src_shape, int64_t row0) {
    if (b->rc != XS_OK) return;
    lm_name_plan *p = b->p;
    if (p->n == b->cap) {
        int cap = b->cap ? b->cap * 2 : 256;
        lm_name_entry *e = realloc(p->e, (size_t)cap * sizeof *e);
        if (!e) {
            b->rc = xs_error(XS_ERR_NOMEM, "lm names: out of memory");
            return;
        }
        p->e = e;
        b->cap = cap;
    }
    lm_name_entry *e = &p->e[p->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->name, b->name, sizeof e->name);
    memcpy(e->source, b->source, sizeof e->source);
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof *shape);
    e->src_ndim = src_ndim;
    memcpy(e->src_shape, src_shape, (size_t)src_ndim * sizeof *src_shape);
    e->row0 = row0;
}

/* A whole [rows, cols] matrix under a new (or the same) name. */
static void plan_matrix(plan_builder *b, int64_t rows, int64_t cols) {
    int64_t shape[2] = {rows, cols};
    plan_add(b, 2, shape, 2, shape, 0);
}

/* Rows [set * rows, (set + 1) * rows) of a [n_sets * rows, cols] matrix. */
static void plan_rows(plan_builder *b, int64_t rows, int64_t cols, int set, int n_sets) {
    int64_t shape[2] = {rows, cols}, src[2] = {n_sets * rows, cols};
    plan_add(b, 2, shape, 2, src, set * rows);
}

/* An RMSNorm alpha: [1, 1, D] in both layouts. */
static void plan_norm(plan_builder *b, int64_t d) {
    int64_t shape[3] = {1, 1, d};
    plan_add(b, 3, shape, 3, shape, 0);
}

/* Set the candle name and the source name (both printf formats). */
#define NAMES(b, ...) snprintf((b)->name, LM_NAME_MAX, __VA_ARGS__)
#define SOURCE(b, ...) snprintf((b)->source, LM_NAME_MAX, __VA_ARGS__)

static xs_status plan_supported(const lm_config *c) {
    const char *why = NULL;
    if (!c->gating) why = "\"gating\" is not \"silu\"";
    else if (!c->dep_gating) why = "\"depformer_gating\" is not \"silu\"";
    else if (c->norm != LM_NORM_RMS && c->norm != LM_NORM_RMS_F32) why = "\"norm\" is a layer norm";
    else if (!c->dep_weights_per_step) why = "\"depformer_weights_per_step\" is false";
    else if (c->has_dep_schedule) why = "\"depformer_weights_per_step_schedule\" is set";
    else if (!c->dep_multi_linear) why = "\"depformer_multi_linear\" is false";
    else if (c->dep_low_rank) why = "\"depformer_low_rank_embeddings\" is set";
    else if (c->dep_q < 1 || c->dep_q > LM_MAX_DEP || c->n_q < 0 || c->n_q >= LM_MAX_STREAMS)
        why = "\"dep_q\" / \"n_q\" out of range";
    if (why)
        return xs_error(XS_ERR_UNSUPPORTED, "lm names: no candle layout for this model: %s "
                        "(Kyutai's conversion only covers Moshi's structure)", why);
    return XS_OK;
}

xs_status lm_names_candle_plan(const lm_config *c, lm_name_plan *out) {
    if (!c || !out) return xs_error(XS_ERR_ARG, "lm_names_candle_plan: NULL argument");
    XS_TRY(plan_supported(c));
    lm_name_plan p = {NULL, 0};
    plan_builder b = {&p, 0, XS_OK, "", ""};
    plan_builder *B = &b;
    const int64_t D = c->dim, DD = c->dep_dim;
    const int64_t H = names_gating_hidden(c->dim, (int)(c->hidden_scale * c->dim));
    const int64_t HD = names_gating_hidden(c->dep_dim, c->dep_ff);
    const int K = c->dep_q;

    /* Temporal part: names unchanged. */
#define SAME(...) (NAMES(B, __VA_ARGS__), SOURCE(B, __VA_ARGS__))
    SAME("text_emb.weight");
    plan_matrix(B, c->text_card + 1, D);
    SAME("text_linear.weight");
    plan_matrix(B, c->text_card, D);
    SAME("out_norm.alpha");
    plan_norm(B, D);
    for (int i = 0; i < c->n_q; i++) {
        SAME("emb.%d.weight", i);
        plan_matrix(B, c->card + 1, D);
    }
    for (int l = 0; l < c->num_layers; l++) {
        SAME("transformer.layers.%d.self_attn.in_proj_weight", l);
        plan_matrix(B, 3 * D, D);
        SAME("transformer.layers.%d.self_attn.out_proj.weight", l);
        plan_matrix(B, D, D);
        SAME("transformer.layers.%d.gating.linear_in.weight", l);
        plan_matrix(B, 2 * H, D);
        SAME("transformer.layers.%d.gating.linear_out.weight", l);
        plan_matrix(B, D, H);
        SAME("transformer.layers.%d.norm1.alpha", l);
        plan_norm(B, D);
        SAME("transformer.layers.%d.norm2.alpha", l);
        plan_norm(B, D);
    }
#undef SAME

    /* Depth transformer: one candle sub-model per step k. */
    for (int k = 0; k < K; k++) {
        NAMES(B, "depformer.%d.linear_in.weight", k);
        SOURCE(B, "depformer_in.%d.weight", k);
        plan_matrix(B, DD, D);
        NAMES(B, "depformer.%d.linear_out.weight", k);
        SOURCE(B, "linears.%d.weight", k);
        plan_matrix(B, c->card, DD);
        NAMES(B, "depformer.%d.emb.weight", k);
        if (k == 0) SOURCE(B, "depformer_text_emb.weight");
        else SOURCE(B, "depformer_emb.%d.weight", k - 1);
        plan_matrix(B, k == 0 ? c->text_card + 1 : c->card + 1, DD);
        for (int l = 0; l < c->dep_layers; l++) {
            char cp[96], sp[96];
            snprintf(cp, sizeof cp, "depformer.%d.transformer.layers.%d.", k, l);
            snprintf(sp, sizeof sp, "depformer.layers.%d.", l);
            NAMES(B, "%sself_attn.in_proj_weight", cp);
            SOURCE(B, "%sself_attn.in_proj_weight", sp);
            plan_rows(B, 3 * DD, DD, k, K);
            NAMES(B, "%sself_attn.out_proj.weight", cp);
            SOURCE(B, "%sself_attn.out_proj.weight", sp);
            plan_rows(B, DD, DD, k, K);
            NAMES(B, "%sgating.linear_in.weight", cp);
            SOURCE(B, "%sgating.%d.linear_in.weight", sp, k);
            plan_matrix(B, 2 * HD, DD);
            NAMES(B, "%sgating.linear_out.weight", cp);
            SOURCE(B, "%sgating.%d.linear_out.weight", sp, k);
            plan_matrix(B, DD, HD);
            /* norms are shared by all steps in PyTorch, repeated in candle */
            NAMES(B, "%snorm1.alpha", cp);
            SOURCE(B, "%snorm1.alpha", sp);
            plan_norm(B, DD);
            NAMES(B, "%snorm2.alpha", cp);
            SOURCE(B, "%snorm2.alpha", sp);
            plan_norm(B, DD);
        }
    }
    if (b.rc != XS_OK) {
        lm_name_plan_free(&p);
        return b.rc;
    }
    *out = p;
    return XS_OK;
}

/* ---- against a file --------------------------------------------------- */

static bool names_is_float(xs_dtype t) { return t == XS_F32 || t == XS_F16 || t == XS_BF16; }

static void names_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Norm vectors may be stored [D] or [1, 1, D] (as lm_weights.c accepts). */
static bool names_shape_ok(const lm_name_entry *e, const xs_tensor *t) {
    if (e->src_ndim == 3 && e->src_shape[0] == 1 && e->src_shape[1] == 1)
        return t->ndim >= 1 && t->shape[t->ndim - 1] == e->src_shape[2] && xs_tensor_numel(t) == e->src_shape[2];
    if (t->ndim != e->src_ndim) return false;
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != e->src_shape[d]) return false;
    return true;
}

xs_status lm_names_check(const lm_name_plan *p, const xs_weights *w) {
    if (!p || !w) return xs_error(XS_ERR_ARG, "lm_names_check: NULL argument");
    const char *path = xs_weights_path(w);
    for (int i = 0; i < p->n; i++) {
        const lm_name_entry *e = &p->e[i];
        char want[96], got[96];
        names_shape_str(e->src_ndim, e->src_shape, want, sizeof want);
        const xs_tensor *t = xs_weights_find(w, e->source);
        if (!t)
            return xs_error(XS_ERR_NOT_FOUND, "%s: tensor '%s' is missing (expected shape %s; needed for "
                            "candle tensor '%s')", path, e->source, want, e->name);
        if (!names_shape_ok(e, t)) {
            names_shape_str(t->ndim, t->shape, got, sizeof got);
            return xs_error(XS_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s (does the config "
                            "match the checkpoint?)", path, e->source, got, want);
        }
        if (!names_is_float(t->dtype))
            return xs_error(XS_ERR_DTYPE, "%s: tensor '%s' is %s; only f32, f16 and bf16 can be converted",
                            path, e->source, xs_dtype_name(t->dtype));
    }
    /* Every file tensor must be used: dropping one would change the model. */
    int n = xs_weights_count(w);
    for (int j = 0; j < n; j++) {
        const char *s = xs_weights_at(w, j)->name;
        bool used = false;
        for (int i = 0; i < p->n && !used; i++) used = !strcmp(p->e[i].source, s);
        if (!used)
            return xs_error(XS_ERR_UNSUPPORTED, "%s: tensor '%s' has no place in the candle layout of "
                            "this configuration (config mismatch, or a model feature candle lacks)",
                            path, s);
    }
    return XS_OK;
}

xs_status lm_names_read_f32(const lm_name_entry *e, const xs_weights *w, float *dst) {
    if (!e || !w || !dst) return xs_error(XS_ERR_ARG, "lm_names_read_f32: NULL argument");
    const xs_tensor *t = xs_weights_find(w, e->source);
    if (!t || !names_is_float(t->dtype) || !names_shape_ok(e, t))
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s' missing or not as expected (run lm_names_check "
                        "first)", xs_weights_path(w), e->source);
    int64_t n = lm_name_entry_numel(e);
    int64_t src_cols = t->shape[0] ? xs_tensor_numel(t) / t->shape[0] : 0;
    if (e->row0 < 0 || e->row0 * src_cols + n > xs_tensor_numel(t))
        return xs_error(XS_ERR_SHAPE, "%s: tensor '%s': rows from %lld hold fewer than %lld values",
                        xs_weights_path(w), e->source, (long long)e->row0, (long long)n);
    size_t off = xs_dtype_row_bytes(t->dtype, e->row0 * src_cols);
    size_t bytes = xs_dtype_row_bytes(t->dtype, n);
    const char *src = (const char *)t->data + off;
    if (t->dtype == XS_F32) {
        memcpy(dst, src, bytes); /* also fixes the alignment of mmapped data */
        return XS_OK;
    }
    /* 16-bit values: copy to an aligned buffer first (mmap views of
     * safetensors data need not be aligned), then widen. */
    void *raw = malloc(bytes ? bytes : 1);
    if (!raw) return xs_error(XS_ERR_NOMEM, "%s: tensor '%s': out of memory", xs_weights_path(w), e->source);
    memcpy(raw, src, bytes);
    xs_status rc = xs_convert_to_f32(dst, raw, t->dtype, n);
    free(raw);
    return rc;
}
