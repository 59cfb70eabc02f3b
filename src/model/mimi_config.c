/*
 * mimi_config.c — Mimi hyper-parameters: the built-in preset of the released
 * model and config.json files in the layout of Kyutai's loaders._mimi_config
 * ({"seanet": {...}, "transformer": {...}, "quantizer": {...}, ...}).
 *
 * Options Kyutai's get_mimi hard-codes (causal convs, conv resampling,
 * depthwise upsample) are not in the file; options the file may carry but
 * this engine does not implement are rejected by name rather than ignored,
 * because a silently ignored option gives wrong audio, not an error.
 */
#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/mimi.h"

void mimi_config_preset(mimi_config *c) {
    memset(c, 0, sizeof *c);
    c->sample_rate = 24000;
    c->channels = 1;
    c->frame_rate = 12.5;
    c->n_filters = 64;
    c->dimension = 512;
    c->n_residual_layers = 1;
    c->kernel_size = 7;
    c->residual_kernel_size = 3;
    c->last_kernel_size = 3;
    c->compress = 2;
    c->dilation_base = 2;
    c->n_ratios = 4;
    c->ratios[0] = 8;
    c->ratios[1] = 6;
    c->ratios[2] = 5;
    c->ratios[3] = 4;
    c->d_model = 512;
    c->num_heads = 8;
    c->num_layers = 8;
    c->dim_feedforward = 2048;
    c->context = 250;
    c->max_period = 10000.0f;
    c->q_dimension = 256;
    c->n_q = 32;
    c->bins = 2048;
    c->num_codebooks = 8;
}

int mimi_hop(const mimi_config *c) {
    int h = 1;
    for (int i = 0; i < c->n_ratios; i++) h *= c->ratios[i];
    return h;
}

int mimi_frame_samples(const mimi_config *c) {
    return (int)lround(c->sample_rate / c->frame_rate);
}

int mimi_downsample_stride(const mimi_config *c) {
    int h = mimi_hop(c);
    return h > 0 ? mimi_frame_samples(c) / h : 0;
}

xs_status mimi_config_validate(const mimi_config *c) {
    if (c->sample_rate <= 0 || c->frame_rate <= 0)
        return xs_error(XS_ERR_ARG, "mimi config: bad sample_rate %d / frame_rate %g",
                        c->sample_rate, c->frame_rate);
    if (c->channels != 1)
        return xs_error(XS_ERR_UNSUPPORTED, "mimi config: channels %d (only mono)", c->channels);
    if (c->n_ratios < 1 || c->n_ratios > MIMI_MAX_RATIOS)
        return xs_error(XS_ERR_ARG, "mimi config: %d ratios (1..%d)", c->n_ratios,
                        MIMI_MAX_RATIOS);
    for (int i = 0; i < c->n_ratios; i++)
        if (c->ratios[i] < 1) return xs_error(XS_ERR_ARG, "mimi config: ratio %d", c->ratios[i]);
    if (c->n_residual_layers < 0 || c->n_residual_layers > MIMI_MAX_RESIDUAL)
        return xs_error(XS_ERR_ARG, "mimi config: n_residual_layers %d (0..%d)",
                        c->n_residual_layers, MIMI_MAX_RESIDUAL);
    if (c->n_filters < 1 || c->dimension < 1 || c->kernel_size < 1 ||
        c->residual_kernel_size < 1 || c->last_kernel_size < 1 || c->compress < 1 ||
        c->dilation_base < 1)
        return xs_error(XS_ERR_ARG, "mimi config: non-positive SEANet size");
    int hop = mimi_hop(c), frame = mimi_frame_samples(c);
    if (frame % hop != 0 || frame / hop < 1)
        return xs_error(XS_ERR_ARG,
                        "mimi config: frame of %d samples is not a multiple of the hop %d",
                        frame, hop);
    if (c->d_model != c->dimension)
        return xs_error(XS_ERR_UNSUPPORTED,
                        "mimi config: transformer d_model %d != SEANet dimension %d "
                        "(input/output projections are not implemented)",
                        c->d_model, c->dimension);
    if (c->num_heads < 1 || c->d_model % c->num_heads != 0 || (c->d_model / c->num_heads) % 2)
        return xs_error(XS_ERR_ARG, "mimi config: %d heads do not split d_model %d into even "
                        "head dims", c->num_heads, c->d_model);
    if (c->num_layers < 0 || c->dim_feedforward < 1 || c->context < 1)
        return xs_error(XS_ERR_ARG, "mimi config: bad transformer sizes");
    if (c->q_dimension < 1 || c->n_q < 1 || c->bins < 2)
        return xs_error(XS_ERR_ARG, "mimi config: bad quantizer sizes");
    if (c->num_codebooks < 1 || c->num_codebooks > c->n_q)
        return xs_error(XS_ERR_ARG, "mimi config: num_codebooks %d not in 1..n_q=%d",
                        c->num_codebooks, c->n_q);
    return XS_OK;
}

/* ---- config.json ------------------------------------------------------- */

static xs_status get_int(const char *path, const cJSON *obj, const char *key, int *dst) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return XS_OK;
    if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble))
        return xs_error(XS_ERR_FORMAT, "%s: \"%s\" must be an integer", path, key);
    *dst = (int)it->valuedouble;
    return XS_OK;
}

static xs_status get_num(const char *path, const cJSON *obj, const char *key, double *dst) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return XS_OK;
    if (!cJSON_IsNumber(it))
        return xs_error(XS_ERR_FORMAT, "%s: \"%s\" must be a number", path, key);
    *dst = it->valuedouble;
    return XS_OK;
}

/* A string option that must have one value: anything else is rejected. */
static xs_status need_str(const char *path, const cJSON *obj, const char *key, const char *want) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it)) return XS_OK;
    if (!cJSON_IsString(it) || strcmp(it->valuestring, want) != 0)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"%s\" must be \"%s\" (the only value this "
                        "engine implements)", path, key, want);
    return XS_OK;
}

static xs_status need_bool(const char *path, const cJSON *obj, const char *key, bool want) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it) return XS_OK;
    if (!cJSON_IsBool(it) || (cJSON_IsTrue(it) != want))
        return xs_error(XS_ERR_UNSUPPORTED, "%s: \"%s\" must be %s", path, key,
                        want ? "true" : "false");
    return XS_OK;
}

static xs_status parse(const char *path, const cJSON *root, mimi_config *c) {
    XS_TRY(get_int(path, root, "sample_rate", &c->sample_rate));
    XS_TRY(get_int(path, root, "channels", &c->channels));
    XS_TRY(get_num(path, root, "frame_rate", &c->frame_rate));
    XS_TRY(get_int(path, root, "num_codebooks", &c->num_codebooks));

    const cJSON *sn = cJSON_GetObjectItemCaseSensitive(root, "seanet");
    if (sn) {
        XS_TRY(get_int(path, sn, "dimension", &c->dimension));
        XS_TRY(get_int(path, sn, "n_filters", &c->n_filters));
        XS_TRY(get_int(path, sn, "n_residual_layers", &c->n_residual_layers));
        XS_TRY(get_int(path, sn, "kernel_size", &c->kernel_size));
        XS_TRY(get_int(path, sn, "residual_kernel_size", &c->residual_kernel_size));
        XS_TRY(get_int(path, sn, "last_kernel_size", &c->last_kernel_size));
        XS_TRY(get_int(path, sn, "compress", &c->compress));
        XS_TRY(get_int(path, sn, "dilation_base", &c->dilation_base));
        XS_TRY(need_bool(path, sn, "causal", true));
        XS_TRY(need_bool(path, sn, "true_skip", true));
        XS_TRY(need_str(path, sn, "activation", "ELU"));
        XS_TRY(need_str(path, sn, "norm", "none"));
        XS_TRY(need_str(path, sn, "pad_mode", "constant"));
        int ch = c->channels;
        XS_TRY(get_int(path, sn, "channels", &ch));
        if (ch != c->channels)
            return xs_error(XS_ERR_FORMAT, "%s: seanet.channels %d != channels %d", path, ch,
                            c->channels);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(sn, "ratios");
        if (r) {
            int n = cJSON_GetArraySize(r);
            if (!cJSON_IsArray(r) || n < 1 || n > MIMI_MAX_RATIOS)
                return xs_error(XS_ERR_FORMAT, "%s: seanet.ratios must be a list of 1..%d ints",
                                path, MIMI_MAX_RATIOS);
            for (int i = 0; i < n; i++) {
                const cJSON *e = cJSON_GetArrayItem(r, i);
                if (!cJSON_IsNumber(e) || e->valuedouble < 1)
                    return xs_error(XS_ERR_FORMAT, "%s: seanet.ratios[%d] is not a positive "
                                    "integer", path, i);
                c->ratios[i] = (int)e->valuedouble;
            }
            c->n_ratios = n;
        }
    }

    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(root, "transformer");
    if (tr) {
        XS_TRY(get_int(path, tr, "d_model", &c->d_model));
        XS_TRY(get_int(path, tr, "num_heads", &c->num_heads));
        XS_TRY(get_int(path, tr, "num_layers", &c->num_layers));
        XS_TRY(get_int(path, tr, "dim_feedforward", &c->dim_feedforward));
        XS_TRY(get_int(path, tr, "context", &c->context));
        double mp = c->max_period;
        XS_TRY(get_num(path, tr, "max_period", &mp));
        c->max_period = (float)mp;
        XS_TRY(need_bool(path, tr, "causal", true));
        XS_TRY(need_bool(path, tr, "conv_layout", true));
        XS_TRY(need_str(path, tr, "gating", "none"));
        XS_TRY(need_str(path, tr, "norm", "layer_norm"));
        XS_TRY(need_str(path, tr, "positional_embedding", "rope"));
        int in_dim = c->d_model;
        XS_TRY(get_int(path, tr, "input_dimension", &in_dim));
        if (in_dim != c->d_model)
            return xs_error(XS_ERR_UNSUPPORTED, "%s: transformer.input_dimension %d != d_model "
                            "%d (projections not implemented)", path, in_dim, c->d_model);
        const cJSON *od = cJSON_GetObjectItemCaseSensitive(tr, "output_dimensions");
        if (od) {
            const cJSON *e = cJSON_GetArrayItem(od, 0);
            if (!cJSON_IsArray(od) || cJSON_GetArraySize(od) != 1 || !cJSON_IsNumber(e) ||
                (int)e->valuedouble != c->d_model)
                return xs_error(XS_ERR_UNSUPPORTED, "%s: transformer.output_dimensions must be "
                                "[d_model]", path);
        }
        /* layer_scale is an init value; the checkpoint holds the trained scales.
         * A null layer_scale would mean no scale tensors: not implemented. */
        const cJSON *ls = cJSON_GetObjectItemCaseSensitive(tr, "layer_scale");
        if (ls && cJSON_IsNull(ls))
            return xs_error(XS_ERR_UNSUPPORTED, "%s: transformer.layer_scale null", path);
    }

    const cJSON *q = cJSON_GetObjectItemCaseSensitive(root, "quantizer");
    if (q) {
        XS_TRY(get_int(path, q, "dimension", &c->q_dimension));
        XS_TRY(get_int(path, q, "n_q", &c->n_q));
        XS_TRY(get_int(path, q, "bins", &c->bins));
        int d = c->dimension;
        XS_TRY(get_int(path, q, "input_dimension", &d));
        if (d != c->dimension)
            return xs_error(XS_ERR_FORMAT, "%s: quantizer.input_dimension %d != dimension %d",
                            path, d, c->dimension);
        d = c->dimension;
        XS_TRY(get_int(path, q, "output_dimension", &d));
        if (d != c->dimension)
            return xs_error(XS_ERR_FORMAT, "%s: quantizer.output_dimension %d != dimension %d",
                            path, d, c->dimension);
    }
    return XS_OK;
}

xs_status mimi_config_load(const char *path, mimi_config *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return xs_error(XS_ERR_IO, "%s: cannot open Mimi config", path);
    char *buf = NULL;
    long n = 0;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n <= 0 || n > (1 << 20) || fseek(f, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)n + 1)) ||
        fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return xs_error(XS_ERR_IO, "%s: cannot read Mimi config", path);
    }
    fclose(f);
    buf[n] = 0;
    cJSON *root = cJSON_Parse(buf);
    free(buf);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return xs_error(XS_ERR_FORMAT, "%s: not a JSON object", path);
    }
    if (!cJSON_GetObjectItemCaseSensitive(root, "seanet") &&
        !cJSON_GetObjectItemCaseSensitive(root, "transformer") &&
        !cJSON_GetObjectItemCaseSensitive(root, "quantizer")) {
        cJSON_Delete(root);
        return xs_error(XS_ERR_FORMAT, "%s: not a Mimi config (no \"seanet\", \"transformer\" "
                        "or \"quantizer\" key; an LM config.json?)", path);
    }
    mimi_config c;
    mimi_config_preset(&c);
    xs_status rc = parse(path, root, &c);
    cJSON_Delete(root);
    if (rc != XS_OK) return rc;
    rc = mimi_config_validate(&c);
    if (rc != XS_OK) return xs_error_prefix(rc, "%s: ", path);
    *out = c;
    return XS_OK;
}
