/*
 * diagnose_random.c — `diagnose --random moshi-7b[:DTYPE]`: Moshi 7B and
 * Mimi at their released shapes with weights generated in memory, so that
 * "does backend B agree with A on the real model's shapes" can be checked
 * on a GPU machine without multi-GB downloads.
 *
 * Both backends must see the SAME weights: one generator (a counter hash of
 * the tensor name, not a sequential RNG, so a tensor's values do not depend
 * on the order the model builder asks for them) feeds a shared store of
 * host tensors; host backends use them in place, device backends upload.
 * Scales keep activations O(1) through 32 layers (1/sqrt(fan_in) for
 * matrices, norms around 1), so the taps' relative tolerance means the same
 * as on trained weights rather than comparing noise to noise.
 *
 * "tiny[:DTYPE]": the same generator and Mimi, but a 2-layer LM of width 64
 * (vocabularies as Moshi's): the test preset, seconds on `ref`.
 */
#include "diag/diagnose_random.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant.h"

typedef struct entry {
    char *name;
    xs_tensor t;
} entry;

struct xs_diag_random {
    lm_config lm;
    mimi_config mimi;
    xs_dtype dtype;      /* of the LM's 2-D matrices (where the shape allows) */
    entry *v;
    int n, cap;
    size_t bytes;
};

static uint64_t hash64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t name_seed(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a, then mixed */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return hash64(h);
}

/* Uniform in [-1, 1) from element i of a tensor. */
static float unit(uint64_t seed, uint64_t i) {
    return (float)((hash64(seed ^ (i * 0xd1b54a32d192ed03ull)) >> 40) / 8388608.0 - 1.0);
}

static const xs_tensor *lm_source(void *ctx, const char *name, int ndim, const int64_t *shape) {
    xs_diag_random *r = ctx;
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->v[i].name, name)) return &r->v[i].t;
    if (ndim < 1 || ndim > 3) return NULL;
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 256;
        entry *nv = realloc(r->v, (size_t)cap * sizeof *nv);
        if (!nv) return NULL;
        r->v = nv;
        r->cap = cap;
    }
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    const int64_t cols = shape[ndim - 1];
    xs_dtype dt = ndim == 2 ? r->dtype : XS_F32;
    if (xs_dtype_is_quantized(dt) && cols % XS_QK) dt = XS_F32;
    const size_t nb = xs_dtype_row_bytes(dt, cols) * (size_t)(numel / (cols ? cols : 1));
    void *data = malloc(nb ? nb : 1);
    char *nm = strdup(name);
    if (!data || !nm) {
        free(data);
        free(nm);
        return NULL;
    }
    const uint64_t seed = name_seed(name);
    const float amp = 1.0f / sqrtf((float)(cols > 0 ? cols : 1));
    if (ndim != 2) { /* norm weights and biases: 1 +- 5% */
        float *f = data;
        for (int64_t i = 0; i < numel; i++) f[i] = 1.0f + 0.05f * unit(seed, (uint64_t)i);
    } else if (dt == XS_F32) {
        float *f = data;
        for (int64_t i = 0; i < numel; i++) f[i] = amp * unit(seed, (uint64_t)i);
    } else if (dt == XS_BF16 || dt == XS_F16) {
        uint16_t *h = data;
        for (int64_t i = 0; i < numel; i++) {
            float x = amp * unit(seed, (uint64_t)i);
            h[i] = dt == XS_BF16 ? xs_f32_to_bf16(x) : xs_f32_to_f16(x);
        }
    } else { /* q8_0 / q4_0: quantize a row at a time (the real export path) */
        float *row = malloc((size_t)cols * sizeof *row);
        if (!row) {
            free(data);
            free(nm);
            return NULL;
        }
        const size_t rb = xs_dtype_row_bytes(dt, cols);
        for (int64_t rI = 0; rI < numel / cols; rI++) {
            for (int64_t c = 0; c < cols; c++) row[c] = amp * unit(seed, (uint64_t)(rI * cols + c));
            uint8_t *dst = (uint8_t *)data + (size_t)rI * rb;
            if (dt == XS_Q8_0) xs_quantize_row_q8_0(row, (xs_block_q8_0 *)dst, cols);
            else xs_quantize_row_q4_0(row, (xs_block_q4_0 *)dst, cols);
        }
        free(row);
    }
    entry *e = &r->v[r->n++];
    e->name = nm;
    e->t = xs_tensor_make(dt, ndim, shape, data);
    e->t.name = nm;
    r->bytes += nb;
    return &e->t;
}

xs_status xs_diag_random_new(const char *spec, xs_diag_random **out) {
    *out = NULL;
    char name[32];
    const char *colon = spec ? strchr(spec, ':') : NULL;
    size_t nl = colon ? (size_t)(colon - spec) : (spec ? strlen(spec) : 0);
    if (!spec || nl == 0 || nl >= sizeof name)
        return xs_error(XS_ERR_ARG, "--random: expected moshi-7b[:bf16|q8_0|q4_0] or tiny[:DTYPE]");
    memcpy(name, spec, nl);
    name[nl] = 0;
    xs_dtype dt = XS_BF16;
    if (colon) {
        int d = xs_dtype_from_name(colon + 1);
        if (d != XS_BF16 && d != XS_Q8_0 && d != XS_Q4_0 && d != XS_F16 && d != XS_F32)
            return xs_error(XS_ERR_ARG, "--random %s: dtype must be bf16, q8_0, q4_0, f16 or f32",
                            spec);
        dt = (xs_dtype)d;
    }
    if (strcmp(name, "moshi-7b") && strcmp(name, "tiny"))
        return xs_error(XS_ERR_ARG, "--random %s: models are moshi-7b and tiny", spec);
    xs_diag_random *r = calloc(1, sizeof *r);
    if (!r) return xs_error(XS_ERR_NOMEM, "--random: out of memory");
    r->dtype = dt;
    lm_config_moshi_7b(&r->lm);
    if (!strcmp(name, "tiny")) {
        /* Moshi's streams, vocabularies and delays; a small trunk. */
        r->lm.dim = 64;
        r->lm.num_heads = 4;
        r->lm.num_layers = 2;
        r->lm.context = 50;
        r->lm.dep_dim = 64;
        r->lm.dep_ff = 128;
        r->lm.dep_heads = 4;
        r->lm.dep_layers = 1;
    }
    mimi_config_preset(&r->mimi);
    *out = r;
    return XS_OK;
}

const lm_config *xs_diag_random_lm_config(const xs_diag_random *r) { return &r->lm; }

size_t xs_diag_random_bytes(const xs_diag_random *r) { return r ? r->bytes : 0; }

xs_status xs_diag_random_lm(xs_diag_random *r, xs_backend *be, lm_model **out) {
    return lm_model_build_synthetic(&r->lm, XS_LAYOUT_PYTORCH, lm_source, r, be, out);
}

xs_status xs_diag_random_mimi(xs_diag_random *r, xs_backend *be, mimi_model **out) {
    uint64_t seed = 7; /* the same on both sides: the generator depends on names only */
    return mimi_model_load_from(be, &r->mimi, mimi_random_source, &seed, out);
}

void xs_diag_random_free(xs_diag_random *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) {
        free(r->v[i].name);
        free(r->v[i].t.data);
    }
    free(r->v);
    free(r);
}
