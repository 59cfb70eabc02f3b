/*
 * weights.c — one model file, safetensors or GGUF, behind one API.
 *
 * The format is decided by content (the "GGUF" magic), never by the file
 * name: Hugging Face snapshots name files freely. The layout is decided by
 * the tensor names (see weights_detect_layout), so model code can pick its
 * name map without guessing from paths.
 */
#include "formats/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "formats/safetensors.h"

struct xs_weights {
    char *path;
    xs_safetensors *st; /* exactly one of st / gg is set */
    xs_gguf *gg;
    xs_layout layout;
};

const char *xs_layout_name(xs_layout l) {
    switch (l) {
    case XS_LAYOUT_PYTORCH: return "pytorch";
    case XS_LAYOUT_CANDLE: return "candle";
    case XS_LAYOUT_PYTORCH_INT8: return "pytorch-int8";
    case XS_LAYOUT_MIMI: return "mimi";
    default: return "unknown";
    }
}

static bool starts_with(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/*
 * Layout from names (listings: the real_checkpoints JSON files of the golden folder):
 *  - candle splits the depth transformer per codebook: "depformer.{k}."
 *    (depformer.0.linear_in.weight, depformer.3.transformer.layers...).
 *  - PyTorch keeps "depformer_in.{k}", "linears.{k}", "depformer.layers.{l}"
 *    and the temporal "transformer.layers.{l}" (which candle shares, hence
 *    not decisive on its own: it needs text_emb next to it).
 *  - PyTorch-int8 is the PyTorch naming plus "<weight>_scb" scale tensors.
 *  - Mimi: SEANet "encoder.model." / "decoder.model." and "quantizer.".
 * candle wins over PyTorch when both kinds of names appear, because only a
 * candle export produces "depformer.{digit}".
 */
static xs_layout weights_detect_layout(const xs_weights *w) {
    bool candle = false, pytorch = false, scb = false, mimi = false, text_emb = false, temporal = false;
    int n = xs_weights_count(w);
    for (int i = 0; i < n; i++) {
        const char *s = xs_weights_at(w, i)->name;
        if (starts_with(s, "depformer.") && s[10] >= '0' && s[10] <= '9') candle = true;
        if (starts_with(s, "depformer_in.") || starts_with(s, "linears.") || starts_with(s, "depformer.layers.") ||
            starts_with(s, "depformer_text_emb.") || starts_with(s, "depformer_emb."))
            pytorch = true;
        if (ends_with(s, "_scb")) scb = true;
        if (starts_with(s, "encoder.model.") || starts_with(s, "decoder.model.") || starts_with(s, "quantizer."))
            mimi = true;
        if (!strcmp(s, "text_emb.weight")) text_emb = true;
        if (starts_with(s, "transformer.layers.")) temporal = true;
    }
    if (candle) return XS_LAYOUT_CANDLE;
    if (pytorch || (text_emb && temporal)) return scb ? XS_LAYOUT_PYTORCH_INT8 : XS_LAYOUT_PYTORCH;
    if (mimi) return XS_LAYOUT_MIMI;
    return XS_LAYOUT_UNKNOWN;
}

xs_status xs_weights_open(const char *path, xs_weights **out) {
    if (!path || !out) return xs_error(XS_ERR_ARG, "xs_weights_open: NULL argument");
    xs_weights *w = calloc(1, sizeof *w);
    char *p = w ? malloc(strlen(path) + 1) : NULL;
    if (!w || !p) {
        free(w);
        return xs_error(XS_ERR_NOMEM, "%s: out of memory", path);
    }
    strcpy(p, path);
    w->path = p;

    /* Peek at the magic with a plain read: both readers map the file
     * themselves, and a 4-byte read costs nothing next to that. */
    char magic[4] = {0};
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    xs_status rc;
    if (got == 4 && !memcmp(magic, "GGUF", 4)) rc = xs_gguf_open(path, &w->gg);
    else rc = xs_st_open(path, &w->st);
    if (rc != XS_OK) {
        free(w->path);
        free(w);
        return rc;
    }
    w->layout = weights_detect_layout(w);
    *out = w;
    return XS_OK;
}

void xs_weights_close(xs_weights *w) {
    if (!w) return;
    xs_st_close(w->st);
    xs_gguf_close(w->gg);
    free(w->path);
    free(w);
}

const char *xs_weights_path(const xs_weights *w) { return w ? w->path : NULL; }
const char *xs_weights_format(const xs_weights *w) { return w && w->gg ? "gguf" : "safetensors"; }

int xs_weights_count(const xs_weights *w) {
    if (!w) return 0;
    return w->gg ? xs_gguf_count(w->gg) : xs_st_count(w->st);
}

const xs_tensor *xs_weights_at(const xs_weights *w, int i) {
    if (!w) return NULL;
    return w->gg ? xs_gguf_at(w->gg, i) : xs_st_at(w->st, i);
}

const xs_tensor *xs_weights_find(const xs_weights *w, const char *name) {
    if (!w || !name) return NULL;
    return w->gg ? xs_gguf_find(w->gg, name) : xs_st_find(w->st, name);
}

xs_layout xs_weights_layout(const xs_weights *w) { return w ? w->layout : XS_LAYOUT_UNKNOWN; }

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int d = 0; d < ndim && k < n; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ", %lld" : "%lld", (long long)shape[d]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

xs_status xs_weights_expect(const xs_weights *w, const char *name, int dtype, int ndim,
                            const int64_t *shape, const xs_tensor **out) {
    if (!w || !name) return xs_error(XS_ERR_ARG, "xs_weights_expect: NULL argument");
    char want[160] = "", have[160];
    if (ndim > 0 && shape) shape_str(ndim, shape, want, sizeof want);
    const xs_tensor *t = xs_weights_find(w, name);
    if (!t) {
        if (dtype >= 0 && dtype < XS_DTYPE_COUNT && want[0])
            return xs_error(XS_ERR_NOT_FOUND, "%s: tensor '%s' missing (expected %s %s)", w->path, name,
                            xs_dtype_name((xs_dtype)dtype), want);
        if (want[0])
            return xs_error(XS_ERR_NOT_FOUND, "%s: tensor '%s' missing (expected %s)", w->path, name, want);
        if (dtype >= 0 && dtype < XS_DTYPE_COUNT)
            return xs_error(XS_ERR_NOT_FOUND, "%s: tensor '%s' missing (expected %s)", w->path, name,
                            xs_dtype_name((xs_dtype)dtype));
        return xs_error(XS_ERR_NOT_FOUND, "%s: tensor '%s' missing", w->path, name);
    }
    if (ndim > 0 && shape) {
        bool same = t->ndim == ndim;
        for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
        if (!same) {
            shape_str(t->ndim, t->shape, have, sizeof have);
            return xs_error(XS_ERR_SHAPE, "%s: tensor '%s' has shape %s, expected %s", w->path, name, have, want);
        }
    }
    if (dtype >= 0 && (int)t->dtype != dtype)
        return xs_error(XS_ERR_DTYPE, "%s: tensor '%s' has dtype %s, expected %s", w->path, name,
                        xs_dtype_name(t->dtype),
                        dtype < XS_DTYPE_COUNT ? xs_dtype_name((xs_dtype)dtype) : "?");
    if (out) *out = t;
    return XS_OK;
}
