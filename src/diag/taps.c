/*
 * taps.c — the recorder behind XS_TAP (contract: taps.h).
 *
 * Design notes:
 *  1. Each tap keeps a staging buffer where every record is appended as it
 *     came (contiguous, record after record), plus the axis length of each
 *     record. Appending is amortized O(size of the record): recording never
 *     re-copies earlier frames, so a long run stays linear.
 *  2. The concatenated tensor is assembled lazily, when someone asks for it
 *     (xs_taps_at / xs_taps_find / xs_taps_save). When every dim before the
 *     axis is 1 ([1, T, C] along 1, [1, D] along 0), record-after-record IS
 *     the concatenated layout and the staging buffer is used as is. Otherwise
 *     ([1, C, T] along 2) the records are interleaved into a second buffer.
 *     This makes the const getters modify a cache: the recorder is not
 *     thread-safe, and a returned tensor is valid until the next record or
 *     xs_taps_free.
 *  3. All dims except the axis must match the first record of the tap, as
 *     must the dtype and the axis: a mismatch is a bug in the model code and
 *     is reported as XS_ERR_SHAPE / XS_ERR_DTYPE / XS_ERR_ARG naming the tap.
 *  4. Taps keep first-recorded order, which is execution order: a tap-by-tap
 *     comparison then reports the earliest divergence first.
 */
#include "diag/taps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"

typedef struct tap {
    char *name;
    xs_dtype dtype;
    int ndim;
    int axis;                      /* in 0..ndim-1 */
    int64_t shape[XS_MAX_DIMS];    /* first record's shape; shape[axis] = total */
    int64_t calls;                 /* records so far */
    int64_t *lens;                 /* axis length of each record [calls] */
    int64_t lens_cap;
    unsigned char *raw;            /* records, one after another */
    size_t raw_len, raw_cap;       /* bytes */
    unsigned char *cat;            /* interleaved copy when outer > 1 */
    size_t cat_cap;
    int64_t cat_calls;             /* calls when cat / view was built; -1: never */
    xs_tensor view;                /* what the getters return */
} tap;

struct xs_taps {
    tap **v;        /* first-recorded order; pointers so views stay put */
    int n, cap;
    char **prefixes; /* filter; n_prefixes == 0: record everything */
    int n_prefixes;
};

/* ---- small helpers ------------------------------------------------------ */

static size_t tap_elem_size(xs_dtype t) {
    switch (t) {
    case XS_F32: case XS_I32: return 4;
    case XS_I64: return 8;
    default: return 0; /* not recordable */
    }
}

static char *tap_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* Grow *buf (capacity *cap bytes) to hold at least need bytes, doubling. */
static int tap_reserve(unsigned char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    unsigned char *p = realloc(*buf, c);
    if (!p) return -1;
    *buf = p;
    *cap = c;
    return 0;
}

/* Product of dims [from, to). */
static int64_t tap_dims_product(const int64_t *shape, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= shape[i];
    return p;
}

static void tap_free_one(tap *t) {
    if (!t) return;
    free(t->name);
    free(t->lens);
    free(t->raw);
    free(t->cat);
    free(t);
}

static tap *taps_lookup(const xs_taps *taps, const char *name) {
    for (int i = 0; i < taps->n; i++)
        if (!strcmp(taps->v[i]->name, name)) return taps->v[i];
    return NULL;
}

static bool taps_wanted(const xs_taps *taps, const char *name) {
    if (taps->n_prefixes == 0) return true;
    for (int i = 0; i < taps->n_prefixes; i++)
        if (!strncmp(name, taps->prefixes[i], strlen(taps->prefixes[i]))) return true;
    return false;
}

/* ---- lifetime and filter ------------------------------------------------ */

xs_taps *xs_taps_new(void) { return calloc(1, sizeof(xs_taps)); }

static void taps_clear_filter(xs_taps *taps) {
    for (int i = 0; i < taps->n_prefixes; i++) free(taps->prefixes[i]);
    free(taps->prefixes);
    taps->prefixes = NULL;
    taps->n_prefixes = 0;
}

void xs_taps_free(xs_taps *taps) {
    if (!taps) return;
    for (int i = 0; i < taps->n; i++) tap_free_one(taps->v[i]);
    free(taps->v);
    taps_clear_filter(taps);
    free(taps);
}

void xs_taps_set_filter(xs_taps *taps, const char *prefixes) {
    if (!taps) return;
    taps_clear_filter(taps);
    if (!prefixes) return;
    /* At most one prefix per comma, plus one. */
    int max = 1;
    for (const char *p = prefixes; *p; p++) max += *p == ',';
    taps->prefixes = calloc((size_t)max, sizeof(char *));
    if (!taps->prefixes) return; /* out of memory: falls back to "record all" */
    const char *s = prefixes;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        while (len && *s == ' ') { s++; len--; }            /* "a, b" works too */
        while (len && s[len - 1] == ' ') len--;
        if (len) {
            char *p = malloc(len + 1);
            if (p) {
                memcpy(p, s, len);
                p[len] = '\0';
                taps->prefixes[taps->n_prefixes++] = p;
            }
        }
        if (!e) break;
        s = e + 1;
    }
}

/* ---- recording ---------------------------------------------------------- */

/* Copy the elements of t (any non-negative strides, in t's memory) into the
 * contiguous host buffer dst. Device memory is read with the backend's
 * download: contiguous tensors in one call, strided views by downloading the
 * span they cover and gathering on the host. */
static xs_status tap_fetch(xs_backend *be, const xs_tensor *t, size_t esz, void *dst,
                           const char *name) {
    const int64_t numel = tap_dims_product(t->shape, 0, t->ndim);
    if (numel == 0) return XS_OK;
    const bool host = !be || be->iface->host_memory;
    if (xs_tensor_is_contiguous(t)) {
        if (host) {
            memcpy(dst, t->data, (size_t)numel * esz);
            return XS_OK;
        }
        xs_status rc = be->iface->download(be, dst, t->data, (size_t)numel * esz);
        if (rc != XS_OK) return xs_error_prefix(rc, "tap %s: download: ", name);
        return XS_OK;
    }
    /* Strided: span = offset of the last element + 1. */
    int64_t span = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->stride[d] < 0)
            return xs_error(XS_ERR_UNSUPPORTED, "tap %s: negative stride in dim %d", name, d);
        span += (t->shape[d] - 1) * t->stride[d];
    }
    const unsigned char *src = t->data;
    unsigned char *tmp = NULL;
    if (!host) {
        tmp = malloc((size_t)span * esz);
        if (!tmp) return xs_error(XS_ERR_NOMEM, "tap %s: out of memory (%lld elements)", name,
                                  (long long)span);
        xs_status rc = be->iface->download(be, tmp, t->data, (size_t)span * esz);
        if (rc != XS_OK) {
            free(tmp);
            return xs_error_prefix(rc, "tap %s: download: ", name);
        }
        src = tmp;
    }
    /* Odometer over the index space, outermost first (row-major order). */
    int64_t idx[XS_MAX_DIMS] = {0};
    unsigned char *out = dst;
    for (int64_t i = 0; i < numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(out + (size_t)i * esz, src + (size_t)off * esz, esz);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    free(tmp);
    return XS_OK;
}

static xs_status taps_add(xs_taps *taps, const char *name, const xs_tensor *t, int axis,
                          tap **out) {
    if (taps->n == taps->cap) {
        int cap = taps->cap ? taps->cap * 2 : 16;
        tap **v = realloc(taps->v, (size_t)cap * sizeof *v);
        if (!v) return xs_error(XS_ERR_NOMEM, "tap %s: out of memory", name);
        taps->v = v;
        taps->cap = cap;
    }
    tap *p = calloc(1, sizeof *p);
    if (!p || !(p->name = tap_strdup(name))) {
        free(p);
        return xs_error(XS_ERR_NOMEM, "tap %s: out of memory", name);
    }
    p->dtype = t->dtype;
    p->ndim = t->ndim;
    p->axis = axis;
    memcpy(p->shape, t->shape, sizeof p->shape);
    p->shape[axis] = 0;
    p->cat_calls = -1;
    taps->v[taps->n++] = p;
    *out = p;
    return XS_OK;
}

/* Append one record (already validated against the tap) to p. */
static xs_status tap_append(tap *p, xs_backend *be, const xs_tensor *t, size_t esz,
                            const char *name) {
    const int axis = p->axis;
    /* The cached view may point into raw, which may move below: rebuild it
     * on the next read even if this record fails. */
    p->cat_calls = -1;
    /* Reserve first, then fetch straight into the staging buffer. */
    const int64_t numel = tap_dims_product(t->shape, 0, t->ndim);
    const size_t nbytes = (size_t)numel * esz;
    if (tap_reserve(&p->raw, &p->raw_cap, p->raw_len + nbytes) != 0)
        return xs_error(XS_ERR_NOMEM, "tap %s: out of memory (%zu bytes)", name,
                        p->raw_len + nbytes);
    if (p->calls == p->lens_cap) {
        int64_t cap = p->lens_cap ? p->lens_cap * 2 : 64;
        int64_t *lens = realloc(p->lens, (size_t)cap * sizeof *lens);
        if (!lens) return xs_error(XS_ERR_NOMEM, "tap %s: out of memory", name);
        p->lens = lens;
        p->lens_cap = cap;
    }
    XS_TRY(tap_fetch(be, t, esz, p->raw + p->raw_len, name));
    p->raw_len += nbytes;
    p->lens[p->calls++] = t->shape[axis];
    p->shape[axis] += t->shape[axis];
    return XS_OK;
}

xs_status xs_tap_record(xs_taps *taps, xs_backend *be, const char *name, const xs_tensor *t,
                        int axis) {
    if (!taps) return XS_OK;
    if (!name || !t) return xs_error(XS_ERR_ARG, "xs_tap_record: NULL name or tensor");
    if (!taps_wanted(taps, name)) return XS_OK;

    char sbuf[64];
    const size_t esz = tap_elem_size(t->dtype);
    if (esz == 0)
        return xs_error(XS_ERR_DTYPE, "tap %s: dtype %s cannot be recorded (f32, i32, i64 only)",
                        name, xs_dtype_name(t->dtype));
    if (t->ndim < 1 || t->ndim > XS_MAX_DIMS)
        return xs_error(XS_ERR_SHAPE, "tap %s: rank %d (need 1..%d)", name, t->ndim, XS_MAX_DIMS);
    if (axis < 0) axis += t->ndim;
    if (axis < 0 || axis >= t->ndim)
        return xs_error(XS_ERR_ARG, "tap %s: axis out of range for shape %s", name,
                        xs_tensor_shape_str(t, sbuf, sizeof sbuf));
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0)
            return xs_error(XS_ERR_SHAPE, "tap %s: negative dim in %s", name,
                            xs_tensor_shape_str(t, sbuf, sizeof sbuf));
    if (t->data == NULL && tap_dims_product(t->shape, 0, t->ndim) > 0)
        return xs_error(XS_ERR_ARG, "tap %s: tensor has no data", name);

    tap *p = taps_lookup(taps, name);
    if (p) {
        if (p->dtype != t->dtype)
            return xs_error(XS_ERR_DTYPE, "tap %s: dtype %s, earlier records were %s", name,
                            xs_dtype_name(t->dtype), xs_dtype_name(p->dtype));
        bool same = p->ndim == t->ndim;
        if (same && p->axis != axis)
            return xs_error(XS_ERR_ARG, "tap %s: recorded along axis %d, earlier along %d", name,
                            axis, p->axis);
        for (int d = 0; same && d < t->ndim; d++)
            if (d != axis && p->shape[d] != t->shape[d]) same = false;
        if (!same) {
            xs_tensor first = *t; /* for the message: the first shape, this axis length */
            first.ndim = p->ndim;
            memcpy(first.shape, p->shape, sizeof first.shape);
            char fbuf[64];
            return xs_error(XS_ERR_SHAPE,
                            "tap %s: shape %s does not match earlier records %s "
                            "(only dim %d may change)",
                            name, xs_tensor_shape_str(t, sbuf, sizeof sbuf),
                            xs_tensor_shape_str(&first, fbuf, sizeof fbuf), axis);
        }
    } else {
        XS_TRY(taps_add(taps, name, t, axis, &p));
    }
    xs_status rc = tap_append(p, be, t, esz, name);
    if (rc != XS_OK && p->calls == 0) { /* a failed first record leaves no tap */
        tap_free_one(p);
        taps->n--;
    }
    return rc;
}

/* ---- assembled views ---------------------------------------------------- */

/* Build (or reuse) the concatenated tensor of p; see note 2. */
static const xs_tensor *tap_view(tap *p) {
    if (p->cat_calls == p->calls) return &p->view;
    const size_t esz = tap_elem_size(p->dtype);
    const int64_t outer = tap_dims_product(p->shape, 0, p->axis);
    const int64_t inner = tap_dims_product(p->shape, p->axis + 1, p->ndim);
    void *data = p->raw;
    if (outer > 1 && p->calls > 1) {
        if (tap_reserve(&p->cat, &p->cat_cap, p->raw_len) != 0) return NULL;
        /* Record r holds [outer][len_r * inner]; in the result its rows sit at
         * column offset prefix_r of each outer row of total * inner. */
        const size_t row_out = (size_t)(p->shape[p->axis] * inner) * esz;
        const unsigned char *src = p->raw;
        size_t prefix = 0; /* bytes into each output row */
        for (int64_t r = 0; r < p->calls; r++) {
            const size_t row_in = (size_t)(p->lens[r] * inner) * esz;
            for (int64_t o = 0; o < outer; o++) {
                memcpy(p->cat + (size_t)o * row_out + prefix, src, row_in);
                src += row_in;
            }
            prefix += row_in;
        }
        data = p->cat;
    }
    p->view = xs_tensor_make(p->dtype, p->ndim, p->shape, data);
    p->view.name = p->name;
    p->cat_calls = p->calls;
    return &p->view;
}

int xs_taps_count(const xs_taps *taps) { return taps ? taps->n : 0; }

const xs_tensor *xs_taps_at(const xs_taps *taps, int i) {
    if (!taps || i < 0 || i >= taps->n) return NULL;
    return tap_view(taps->v[i]); /* lazily assembled cache: see note 2 */
}

const xs_tensor *xs_taps_find(const xs_taps *taps, const char *name) {
    if (!taps || !name) return NULL;
    tap *p = taps_lookup(taps, name);
    return p ? tap_view(p) : NULL;
}

int64_t xs_taps_calls(const xs_taps *taps, const char *name) {
    if (!taps || !name) return 0;
    const tap *p = taps_lookup(taps, name);
    return p ? p->calls : 0;
}

/* ---- saving and names --------------------------------------------------- */

xs_status xs_taps_save(const xs_taps *taps, const char *path) {
    if (!taps || !path) return xs_error(XS_ERR_ARG, "xs_taps_save: NULL argument");
    xs_st_writer *w = xs_st_writer_new();
    if (!w) return xs_error(XS_ERR_NOMEM, "%s: out of memory", path);
    xs_status rc = XS_OK;
    for (int i = 0; i < taps->n && rc == XS_OK; i++) {
        const xs_tensor *t = tap_view(taps->v[i]);
        if (!t) {
            rc = xs_error(XS_ERR_NOMEM, "%s: out of memory assembling tap %s", path,
                          taps->v[i]->name);
            break;
        }
        rc = xs_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        if (rc != XS_OK) xs_error_prefix(rc, "%s: tap %s: ", path, t->name);
    }
    if (rc == XS_OK) rc = xs_st_writer_save(w, path);
    xs_st_writer_free(w);
    return rc;
}

const char *xs_tap_golden_name(const char *tap_name, char *buf, size_t n) {
    if (!tap_name || !buf || n == 0) return NULL;
    if (!strncmp(tap_name, "mimi.", 5))
        snprintf(buf, n, "act.%s", tap_name + 5);
    else if (!strncmp(tap_name, "lm.", 3))
        snprintf(buf, n, "%s", tap_name + 3);
    else
        snprintf(buf, n, "%s", tap_name);
    return buf;
}
