/*
 * lm_config.c — Kyutai LM config.json and the built-in Moshi 7B preset.
 *
 * Defaults follow LMModel.__init__ / StreamingTransformer: a key absent from
 * the JSON takes the library default, depformer_* keys absent fall back to
 * the main transformer's value (Kyutai copies the main kwargs, then
 * overrides them with the depformer_ ones).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "model/lm.h"

void lm_config_moshi_7b(lm_config *c) {
    /* loaders._lm_kwargs of kyutai-labs/moshi (= configs/moshi_7b_202409.json). */
    static const int delays[17] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
    memset(c, 0, sizeof *c);
    c->dim = 4096;
    c->num_heads = 32;
    c->num_layers = 32;
    c->hidden_scale = 4.125;
    c->context = 3000;
    c->max_period = 10000.f;
    c->text_card = 32000;
    c->card = 2048;
    c->n_q = 16;
    c->dep_q = 8;
    c->n_delays = 17;
    memcpy(c->delays, delays, sizeof delays);
    c->existing_text_padding_id = 3;
    c->norm = LM_NORM_RMS_F32;
    c->pos = LM_POS_ROPE;
    c->gating = true;
    c->dep_dim = 1024;
    c->dep_ff = (int)(4.125 * 1024); /* 4224 */
    c->dep_heads = 16;
    c->dep_layers = 6;
    c->dep_multi_linear = true;
    c->dep_weights_per_step = true;
    c->dep_gating = true;
    for (int k = 0; k < LM_MAX_DEP; k++) c->dep_schedule[k] = k;
    c->dep_low_rank = 0;
    c->dep_pos = LM_POS_NONE;
    c->dep_max_period = 10000.f;
    c->gen_temp = 0.8f;
    c->gen_temp_text = 0.7f;
    c->gen_top_k = 250;
    c->gen_top_k_text = 25;
}

int lm_config_max_delay(const lm_config *c) {
    int d = 0;
    for (int i = 0; i < c->n_delays; i++) if (c->delays[i] > d) d = c->delays[i];
    return d;
}

int lm_config_dep_sets(const lm_config *c) {
    if (!c->dep_weights_per_step) return 1;
    if (!c->has_dep_schedule) return c->dep_q;
    int m = 0;
    for (int k = 0; k < c->dep_q; k++) if (c->dep_schedule[k] > m) m = c->dep_schedule[k];
    return m + 1;
}

static int parse_norm(const char *s, lm_norm_kind *out) {
    if (!strcmp(s, "rms_norm_f32")) *out = LM_NORM_RMS_F32;
    else if (!strcmp(s, "rms_norm")) *out = LM_NORM_RMS;
    else if (!strcmp(s, "layer_norm")) *out = LM_NORM_LAYER;
    else if (!strcmp(s, "layer_norm_f32")) *out = LM_NORM_LAYER_F32;
    else return -1;
    return 0;
}

static int parse_pos(const char *s, lm_pos_kind *out) {
    if (!strcmp(s, "none")) *out = LM_POS_NONE;
    else if (!strcmp(s, "rope")) *out = LM_POS_ROPE;
    else if (!strcmp(s, "sin")) *out = LM_POS_SIN;
    else if (!strcmp(s, "sin_rope")) *out = LM_POS_SIN_ROPE;
    else return -1;
    return 0;
}

/* Gating names: "none" means the plain FFN; every activation Kyutai names
 * ("silu", "gelu", ...) is gated, but only silu is implemented here. */
static int parse_gating(const char *s, bool *gated) {
    if (!strcmp(s, "none")) *gated = false;
    else if (!strcmp(s, "silu")) *gated = true;
    else return -1;
    return 0;
}

static const cJSON *get(const cJSON *root, const char *key) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    return (it && !cJSON_IsNull(it)) ? it : NULL;
}

static xs_status get_int(const cJSON *root, const char *label, const char *key, int *v,
                         int lo, int hi) {
    const cJSON *it = get(root, key);
    if (!it) return XS_OK;
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
        it->valuedouble < lo || it->valuedouble > hi)
        return xs_error(XS_ERR_FORMAT, "%s: \"%s\" must be an integer in %d..%d", label, key, lo,
                        hi);
    *v = (int)it->valuedouble;
    return XS_OK;
}

static xs_status get_str(const cJSON *root, const char *label, const char *key,
                         const char **v) {
    const cJSON *it = get(root, key);
    if (!it) return XS_OK;
    if (!cJSON_IsString(it)) return xs_error(XS_ERR_FORMAT, "%s: \"%s\" must be a string", label, key);
    *v = it->valuestring;
    return XS_OK;
}

static xs_status get_bool(const cJSON *root, const char *label, const char *key, bool *v) {
    const cJSON *it = get(root, key);
    if (!it) return XS_OK;
    if (!cJSON_IsBool(it)) return xs_error(XS_ERR_FORMAT, "%s: \"%s\" must be true or false", label, key);
    *v = cJSON_IsTrue(it);
    return XS_OK;
}

/* ---- conditioning: "conditioners" + "fuser" (loaders.get_conditioner_provider
 * / get_condition_fuser). Every conditioner is validated (Kyutai builds them
 * all); only those the fuser lists under "sum" take part in the computation,
 * so only those are kept in c->cond. */

static xs_status parse_lut(const cJSON *cj, const char *label, const char *name,
                           lm_cond_config *out) {
    char key[LM_COND_NAME + 48];
    snprintf(key, sizeof key, "conditioners.%s", name);
    if (!cJSON_IsObject(cj))
        return xs_error(XS_ERR_FORMAT, "%s: \"%s\" must be an object", label, key);
    const char *type = NULL;
    const cJSON *t = get(cj, "type");
    if (!t || !cJSON_IsString(t))
        return xs_error(XS_ERR_FORMAT, "%s: \"%s.type\" must be a string", label, key);
    type = t->valuestring;
    if (strcmp(type, "lut") != 0)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"%s.type\" \"%s\" is not supported (only \"lut\")",
                        label, key, type);
    const cJSON *lut = get(cj, "lut");
    if (!lut || !cJSON_IsObject(lut))
        return xs_error(XS_ERR_FORMAT, "%s: \"%s.lut\" must be an object", label, key);
    snprintf(key, sizeof key, "conditioners.%s.lut", name);
    memset(out, 0, sizeof *out);
    if (strlen(name) >= LM_COND_NAME)
        return xs_error(XS_ERR_FORMAT, "%s: conditioner name \"%s\" is too long", label, name);
    strcpy(out->name, name);
    out->n_bins = -1;
    out->dim = -1;
    XS_TRY(get_int(lut, key, "n_bins", &out->n_bins, 1, 1 << 24));
    XS_TRY(get_int(lut, key, "dim", &out->dim, 1, 1 << 16));
    if (out->n_bins < 0 || out->dim < 0)
        return xs_error(XS_ERR_FORMAT, "%s: \"%s\" needs \"n_bins\" and \"dim\"", label, key);
    const char *tok = NULL;
    XS_TRY(get_str(lut, key, "tokenizer", &tok));
    if (!tok || strcmp(tok, "noop") != 0)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"%s.tokenizer\" \"%s\" is not supported (only "
                        "\"noop\", as in Kyutai's LUTConditioner)", label, key, tok ? tok : "(none)");
    /* Without possible_values Kyutai hashes the text (sha256 mod n_bins). */
    const cJSON *pv = get(lut, "possible_values");
    if (!pv)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"%s\" without \"possible_values\" (hashed values) "
                        "is not supported", label, key);
    int n = cJSON_IsArray(pv) ? cJSON_GetArraySize(pv) : -1;
    if (n < 1 || n > LM_COND_MAX_VALUES || n > out->n_bins)
        return xs_error(XS_ERR_FORMAT, "%s: \"%s.possible_values\" must be an array of 1..%d strings "
                        "(at most n_bins = %d)", label, key, LM_COND_MAX_VALUES, out->n_bins);
    for (int i = 0; i < n; i++) {
        const cJSON *v = cJSON_GetArrayItem(pv, i);
        if (!cJSON_IsString(v) || strlen(v->valuestring) >= LM_COND_NAME)
            return xs_error(XS_ERR_FORMAT, "%s: \"%s.possible_values\"[%d] must be a string shorter "
                            "than %d bytes", label, key, i, LM_COND_NAME);
        strcpy(out->values[i], v->valuestring);
    }
    out->n_values = n;
    /* BaseConditioner keyword arguments the config may carry. */
    bool force_linear = true, output_bias = false;
    out->learn_padding = true;
    XS_TRY(get_bool(lut, key, "force_linear", &force_linear));
    XS_TRY(get_bool(lut, key, "output_bias", &output_bias));
    XS_TRY(get_bool(lut, key, "learn_padding", &out->learn_padding));
    if (output_bias)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"%s.output_bias\": true is not supported", label, key);
    return XS_OK;
}

static xs_status parse_conditioning(const cJSON *root, const char *label, lm_config *c) {
    const cJSON *conds = get(root, "conditioners");
    if (conds && !cJSON_IsObject(conds))
        return xs_error(XS_ERR_FORMAT, "%s: \"conditioners\" must be an object", label);
    lm_cond_config all[LM_MAX_COND];
    int n_all = 0;
    for (const cJSON *it = conds ? conds->child : NULL; it; it = it->next) {
        if (n_all == LM_MAX_COND)
            return xs_error(XS_ERR_UNSUPPORTED, "%s: more than %d \"conditioners\"", label, LM_MAX_COND);
        XS_TRY(parse_lut(it, label, it->string, &all[n_all]));
        all[n_all].identity_proj = false;
        n_all++;
    }
    /* force_linear is only looked at by BaseConditioner: re-read it here
     * where the model dim is known. */
    for (int i = 0; i < n_all; i++) {
        const cJSON *lut = get(get(conds, all[i].name), "lut");
        const cJSON *fl = get(lut, "force_linear");
        all[i].identity_proj = fl && cJSON_IsFalse(fl) && all[i].dim == c->dim;
    }
    const cJSON *fuser = get(root, "fuser");
    c->n_cond = 0;
    if (!fuser) return XS_OK; /* no fuser: LMModel uses no condition at all */
    if (!cJSON_IsObject(fuser))
        return xs_error(XS_ERR_FORMAT, "%s: \"fuser\" must be an object", label);
    static const char *const other[] = {"cross", "prepend"};
    for (int k = 0; k < 2; k++) {
        const cJSON *l = get(fuser, other[k]);
        if (l && !(cJSON_IsArray(l) && cJSON_GetArraySize(l) == 0))
            return xs_error(XS_ERR_UNSUPPORTED, "%s: \"fuser.%s\" is not supported (only \"sum\")",
                            label, other[k]);
    }
    const cJSON *sum = get(fuser, "sum");
    if (!sum) return XS_OK;
    if (!cJSON_IsArray(sum))
        return xs_error(XS_ERR_FORMAT, "%s: \"fuser.sum\" must be an array of conditioner names", label);
    for (const cJSON *it = sum->child; it; it = it->next) {
        int found = -1;
        for (int i = 0; cJSON_IsString(it) && i < n_all; i++)
            if (!strcmp(all[i].name, it->valuestring)) found = i;
        if (found < 0)
            return xs_error(XS_ERR_FORMAT, "%s: \"fuser.sum\" names \"%s\", which is not in "
                            "\"conditioners\"", label, cJSON_IsString(it) ? it->valuestring : "?");
        for (int j = 0; j < c->n_cond; j++)
            if (!strcmp(c->cond[j].name, all[found].name))
                return xs_error(XS_ERR_FORMAT, "%s: \"fuser.sum\" names \"%s\" twice", label,
                                all[found].name);
        c->cond[c->n_cond++] = all[found];
    }
    return XS_OK;
}

static xs_status parse_root(const cJSON *root, const char *label, lm_config *c) {
    memset(c, 0, sizeof *c);
    /* LMModel defaults. */
    c->dim = 128; c->num_heads = 8; c->num_layers = 8; c->hidden_scale = 4;
    c->context = 0; c->max_period = 10000.f;
    c->text_card = 32000; c->card = 1024; c->n_q = 8; c->dep_q = 8;
    c->existing_text_padding_id = 3;
    c->norm = LM_NORM_LAYER; c->pos = LM_POS_SIN; c->gating = false;
    c->dep_dim = 256; c->dep_pos = LM_POS_SIN;

    XS_TRY(get_int(root, label, "dim", &c->dim, 2, 1 << 16));
    XS_TRY(get_int(root, label, "num_heads", &c->num_heads, 1, 1024));
    XS_TRY(get_int(root, label, "num_layers", &c->num_layers, 1, 1024));
    const cJSON *hs = get(root, "hidden_scale");
    if (hs) {
        /* Bounded so that hidden_scale * dim stays a valid int (fuzz finding). */
        if (!cJSON_IsNumber(hs) || !(hs->valuedouble > 0 && hs->valuedouble <= 64))
            return xs_error(XS_ERR_FORMAT, "%s: \"hidden_scale\" must be a number in (0, 64]", label);
        c->hidden_scale = hs->valuedouble;
    }
    int ctx = 0;
    XS_TRY(get_int(root, label, "context", &ctx, 1, 1 << 24));
    c->context = ctx;
    const cJSON *mp = get(root, "max_period");
    if (mp) {
        if (!cJSON_IsNumber(mp) || !(mp->valuedouble > 1 && mp->valuedouble <= 1e12))
            return xs_error(XS_ERR_FORMAT, "%s: \"max_period\" must be a number in (1, 1e12]", label);
        c->max_period = (float)mp->valuedouble;
    }
    XS_TRY(get_int(root, label, "text_card", &c->text_card, 1, 1 << 24));
    XS_TRY(get_int(root, label, "card", &c->card, 1, 1 << 24));
    XS_TRY(get_int(root, label, "n_q", &c->n_q, 0, LM_MAX_STREAMS - 1));
    XS_TRY(get_int(root, label, "dep_q", &c->dep_q, 0, LM_MAX_DEP));
    XS_TRY(get_int(root, label, "existing_text_padding_id", &c->existing_text_padding_id, 0,
                   1 << 24));
    if (c->dep_q < 1 || c->dep_q > c->n_q)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: dep_q = %d: need 1 <= dep_q <= n_q (%d)", label,
                        c->dep_q, c->n_q);
    if (c->dim % c->num_heads)
        return xs_error(XS_ERR_FORMAT, "%s: dim %d is not a multiple of num_heads %d", label,
                        c->dim, c->num_heads);

    const cJSON *d = get(root, "delays");
    if (!d) {
        /* LMModel's default [0] only fits n_q = 0; make the caller say it. */
        return xs_error(XS_ERR_FORMAT, "%s: \"delays\" is missing", label);
    }
    if (!cJSON_IsArray(d) || cJSON_GetArraySize(d) != 1 + c->n_q)
        return xs_error(XS_ERR_FORMAT, "%s: \"delays\" must be an array of 1 + n_q = %d integers",
                        label, 1 + c->n_q);
    c->n_delays = 1 + c->n_q;
    for (int i = 0; i < c->n_delays; i++) {
        const cJSON *it = cJSON_GetArrayItem(d, i);
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 64 ||
            it->valuedouble != floor(it->valuedouble))
            return xs_error(XS_ERR_FORMAT, "%s: delays[%d] must be an integer in 0..64", label, i);
        c->delays[i] = (int)it->valuedouble;
    }

    const char *s = NULL;
    XS_TRY(get_str(root, label, "norm", &s));
    if (s && parse_norm(s, &c->norm))
        return xs_error(XS_ERR_UNSUPPORTED, "%s: norm \"%s\" is not supported", label, s);
    s = NULL;
    XS_TRY(get_str(root, label, "positional_embedding", &s));
    if (s && parse_pos(s, &c->pos))
        return xs_error(XS_ERR_UNSUPPORTED, "%s: positional_embedding \"%s\" is not supported",
                        label, s);
    s = NULL;
    XS_TRY(get_str(root, label, "gating", &s));
    if (s && parse_gating(s, &c->gating))
        return xs_error(XS_ERR_UNSUPPORTED, "%s: gating \"%s\" is not supported (none, silu)",
                        label, s);

    /* Features we do not implement: refuse clearly rather than compute wrong. */
    static const char *const must_be_null[] = {"layer_scale", "depformer_layer_scale",
                                               "depformer_norm", "text_card_out"};
    for (size_t i = 0; i < sizeof must_be_null / sizeof *must_be_null; i++)
        if (get(root, must_be_null[i]))
            return xs_error(XS_ERR_UNSUPPORTED, "%s: \"%s\" other than null is not supported",
                            label, must_be_null[i]);
    /* LUT conditioners summed into the input; cross-attention and LoRA
     * change the computation: refuse them instead of ignoring weights. */
    XS_TRY(parse_conditioning(root, label, c));
    bool flag = false;
    XS_TRY(get_bool(root, label, "cross_attention", &flag));
    if (flag) return xs_error(XS_ERR_UNSUPPORTED, "%s: \"cross_attention\" is not supported", label);
    XS_TRY(get_bool(root, label, "lora", &flag));
    if (flag) return xs_error(XS_ERR_UNSUPPORTED, "%s: LoRA checkpoints are not supported", label);
    XS_TRY(get_bool(root, label, "demux_second_stream", &flag));
    if (flag)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"demux_second_stream\" is not supported", label);
    XS_TRY(get_bool(root, label, "norm_emb", &flag));
    if (flag) return xs_error(XS_ERR_UNSUPPORTED, "%s: \"norm_emb\": true is not supported", label);
    XS_TRY(get_bool(root, label, "bias_proj", &flag));
    if (flag) return xs_error(XS_ERR_UNSUPPORTED, "%s: \"bias_proj\": true is not supported", label);
    XS_TRY(get_bool(root, label, "demux_second_text_stream", &flag));
    if (flag)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"demux_second_text_stream\" is not supported", label);
    bool causal = true;
    XS_TRY(get_bool(root, label, "causal", &causal));
    if (!causal) return xs_error(XS_ERR_UNSUPPORTED, "%s: \"causal\": false is not supported", label);

    /* depth transformer: inherits the main values unless overridden */
    c->dep_heads = c->num_heads;
    c->dep_layers = c->num_layers;
    c->dep_gating = c->gating;
    c->dep_max_period = c->max_period;
    XS_TRY(get_int(root, label, "depformer_dim", &c->dep_dim, 2, 1 << 16));
    c->dep_ff = (int)(c->hidden_scale * c->dep_dim);
    XS_TRY(get_int(root, label, "depformer_dim_feedforward", &c->dep_ff, 1, 1 << 20));
    XS_TRY(get_int(root, label, "depformer_num_heads", &c->dep_heads, 1, 1024));
    XS_TRY(get_int(root, label, "depformer_num_layers", &c->dep_layers, 1, 1024));
    XS_TRY(get_bool(root, label, "depformer_multi_linear", &c->dep_multi_linear));
    XS_TRY(get_bool(root, label, "depformer_weights_per_step", &c->dep_weights_per_step));
    XS_TRY(get_int(root, label, "depformer_low_rank_embeddings", &c->dep_low_rank, 1, 1 << 16));
    const cJSON *dmp = get(root, "depformer_max_period");
    if (dmp) {
        if (!cJSON_IsNumber(dmp) || !(dmp->valuedouble > 1 && dmp->valuedouble <= 1e12))
            return xs_error(XS_ERR_FORMAT, "%s: \"depformer_max_period\" must be a number in (1, 1e12]", label);
        c->dep_max_period = (float)dmp->valuedouble;
    }
    s = NULL;
    XS_TRY(get_str(root, label, "depformer_pos_emb", &s));
    if (s && parse_pos(s, &c->dep_pos))
        return xs_error(XS_ERR_UNSUPPORTED, "%s: depformer_pos_emb \"%s\" is not supported", label, s);
    s = NULL;
    XS_TRY(get_str(root, label, "depformer_gating", &s));
    if (s && parse_gating(s, &c->dep_gating))
        return xs_error(XS_ERR_UNSUPPORTED, "%s: depformer_gating \"%s\" is not supported", label, s);
    if (c->dep_dim % c->dep_heads)
        return xs_error(XS_ERR_FORMAT, "%s: depformer_dim %d is not a multiple of %d heads", label,
                        c->dep_dim, c->dep_heads);
    if (c->dep_weights_per_step && !c->dep_gating)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: weights per step need a gated depformer FFN", label);

    for (int k = 0; k < LM_MAX_DEP; k++) c->dep_schedule[k] = c->dep_weights_per_step ? k : 0;
    const cJSON *sch = get(root, "depformer_weights_per_step_schedule");
    if (sch) {
        if (!cJSON_IsArray(sch) || cJSON_GetArraySize(sch) != c->dep_q)
            return xs_error(XS_ERR_FORMAT,
                            "%s: depformer_weights_per_step_schedule must have dep_q = %d entries",
                            label, c->dep_q);
        for (int k = 0; k < c->dep_q; k++) {
            const cJSON *it = cJSON_GetArrayItem(sch, k);
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble >= c->dep_q)
                return xs_error(XS_ERR_FORMAT, "%s: schedule[%d] must be in 0..%d", label, k,
                                c->dep_q - 1);
            c->dep_schedule[k] = (int)it->valuedouble;
        }
        c->has_dep_schedule = true;
        if (!c->dep_weights_per_step)
            return xs_error(XS_ERR_FORMAT, "%s: a weights-per-step schedule needs "
                            "depformer_weights_per_step", label);
    }
    /* Hugging Face config.json may carry the repo's sampling defaults. */
    const cJSON *gen = get(root, "lm_gen_config");
    c->gen_temp = 0.8f; c->gen_temp_text = 0.7f; c->gen_top_k = 250; c->gen_top_k_text = 25;
    if (gen && cJSON_IsObject(gen)) {
        const cJSON *v;
        if ((v = get(gen, "temp")) && cJSON_IsNumber(v)) c->gen_temp = (float)v->valuedouble;
        if ((v = get(gen, "temp_text")) && cJSON_IsNumber(v)) c->gen_temp_text = (float)v->valuedouble;
        if ((v = get(gen, "top_k")) && cJSON_IsNumber(v)) c->gen_top_k = (int)v->valuedouble;
        if ((v = get(gen, "top_k_text")) && cJSON_IsNumber(v)) c->gen_top_k_text = (int)v->valuedouble;
    }
    return XS_OK;
}

xs_status lm_config_parse(const char *json, const char *label, lm_config *out) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return xs_error(XS_ERR_FORMAT, "%s: not a JSON object", label);
    }
    lm_config c;
    xs_status rc = parse_root(root, label, &c);
    cJSON_Delete(root);
    if (rc == XS_OK) *out = c;
    return rc;
}

xs_status lm_config_load(const char *path, lm_config *c) {
    FILE *f = fopen(path, "rb");
    if (!f) return xs_error(XS_ERR_IO, "%s: cannot open LM config", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) { free(buf); fclose(f); return xs_error(XS_ERR_NOMEM, "%s: out of memory", path); }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (n > (64u << 20)) { free(buf); fclose(f); return xs_error(XS_ERR_FORMAT, "%s: too large", path); }
    }
    fclose(f);
    buf[n] = 0;
    xs_status rc = lm_config_parse(buf, path, c);
    free(buf);
    return rc;
}

const char *lm_config_beside(const char *lm_path, char *buf, size_t n) {
    const char *slash = strrchr(lm_path, '/');
    if (slash) snprintf(buf, n, "%.*s/config.json", (int)(slash - lm_path), lm_path);
    else snprintf(buf, n, "config.json");
    struct stat st;
    return (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) ? buf : NULL;
}
