/*
 * safetensors.c — safetensors reader (validated header, zero-copy views into
 * an mmap) and writer.
 *
 * Reader invariants, all checked before any view is handed out:
 *  1. the file holds the 8-byte header length N and N <= size - 8;
 *  2. the header is a JSON object; every entry but "__metadata__" is
 *     {"dtype": known, "shape": [non-negative ints], "data_offsets": [b, e]};
 *  3. numel(shape) * elemsize does not overflow and equals e - b;
 *  4. 0 <= b <= e <= size of the data block (size - 8 - N);
 *  5. no two non-empty tensors share a byte; names are unique.
 * Holes between tensors are accepted (the reference implementation rejects
 * them, but they are harmless for reading).
 *
 * Status codes: XS_ERR_IO (cannot open/map), XS_ERR_DTYPE (dtype not
 * supported), XS_ERR_UNSUPPORTED (rank above XS_MAX_DIMS), XS_ERR_FORMAT
 * (everything else), XS_ERR_NOMEM.
 */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/weights_index.h"
#include "formats/weights_mmap.h"

/* The reference implementation refuses headers above 100 MB; so do we, so
 * that a corrupt length cannot make us parse gigabytes of garbage. */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* Largest integer a JSON number (a double in cJSON) holds exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0

typedef struct st_meta {
    char *key, *value;
} st_meta;

struct xs_safetensors {
    char *label;
    weights_map map;         /* owned mapping (xs_st_open), or {NULL,0} */
    const uint8_t *buf;      /* whole file */
    size_t size;
    int count;
    xs_tensor *tensors;      /* header order */
    char **names;            /* owned names, tensors[i].name points here */
    int *index;              /* sorted by name, for xs_st_find */
    int n_meta;
    st_meta *meta;
};

/* ---- dtypes ------------------------------------------------------------ */

typedef struct st_dtype_entry {
    const char *name;
    xs_dtype dtype;
    size_t size;
} st_dtype_entry;

static const st_dtype_entry k_st_dtypes[] = {
    {"F32", XS_F32, 4}, {"F16", XS_F16, 2}, {"BF16", XS_BF16, 2}, {"I64", XS_I64, 8},
    {"I32", XS_I32, 4}, {"I8", XS_I8, 1},   {"U8", XS_U8, 1},     {"BOOL", XS_BOOL, 1},
};
#define ST_N_DTYPES (int)(sizeof k_st_dtypes / sizeof k_st_dtypes[0])

static const st_dtype_entry *st_dtype_by_name(const char *s) {
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (!strcmp(k_st_dtypes[i].name, s)) return &k_st_dtypes[i];
    return NULL;
}

static const st_dtype_entry *st_dtype_by_type(xs_dtype t) {
    for (int i = 0; i < ST_N_DTYPES; i++)
        if (k_st_dtypes[i].dtype == t) return &k_st_dtypes[i];
    return NULL;
}

/* ---- reader ------------------------------------------------------------ */

void xs_st_close(xs_safetensors *st) {
    if (!st) return;
    if (st->names)
        for (int i = 0; i < st->count; i++) free(st->names[i]);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta[i].key);
        free(st->meta[i].value);
    }
    free(st->meta);
    free(st->names);
    free(st->tensors);
    free(st->index);
    weights_unmap(&st->map);
    free(st->label);
    free(st);
}

static char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* A JSON number that is an exact non-negative integer (<= 2^53). */
static bool st_json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return false;
    double v = j->valuedouble;
    if (!(v >= 0.0) || v > ST_MAX_JSON_INT || floor(v) != v) return false;
    *out = (uint64_t)v;
    return true;
}

typedef struct st_span {
    uint64_t begin, end;
    int tensor;
} st_span;

static int st_span_cmp(const void *a, const void *b) {
    const st_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static xs_status st_parse_metadata(xs_safetensors *st, const cJSON *m) {
    const char *L = st->label;
    if (!cJSON_IsObject(m))
        return xs_error(XS_ERR_FORMAT, "%s: safetensors header: __metadata__ is not an object", L);
    int n = cJSON_GetArraySize(m);
    st->meta = calloc((size_t)(n > 0 ? n : 1), sizeof *st->meta);
    if (!st->meta) return xs_error(XS_ERR_NOMEM, "%s: out of memory", L);
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->string)
            return xs_error(XS_ERR_FORMAT, "%s: safetensors header: __metadata__ value of '%s' is not a string",
                            L, e->string ? e->string : "?");
        st_meta *d = &st->meta[st->n_meta];
        d->key = st_strdup(e->string);
        d->value = st_strdup(e->valuestring);
        if (!d->key || !d->value) {
            free(d->key);
            free(d->value);
            return xs_error(XS_ERR_NOMEM, "%s: out of memory", L);
        }
        st->n_meta++;
    }
    return XS_OK;
}

/* Validate one header entry and fill tensors[i] (data pointer set later). */
static xs_status st_parse_entry(xs_safetensors *st, const cJSON *e, int i, uint64_t data_size,
                                st_span *span) {
    const char *L = st->label, *name = e->string;
    if (!cJSON_IsObject(e))
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", L, name);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jd))
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", L, name);
    if (!cJSON_IsArray(js))
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': missing or non-array \"shape\"", L, name);
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': \"data_offsets\" must be [begin, end]", L, name);

    const st_dtype_entry *dt = st_dtype_by_name(jd->valuestring);
    if (!dt)
        return xs_error(XS_ERR_DTYPE,
                        "%s: tensor '%s': dtype %.32s not supported (expected F32, F16, BF16, I64, I32, "
                        "I8, U8 or BOOL)", L, name, jd->valuestring);

    xs_tensor *t = &st->tensors[i];
    int ndim = cJSON_GetArraySize(js);
    if (ndim > XS_MAX_DIMS)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: tensor '%s': rank %d above the supported %d", L, name,
                        ndim, XS_MAX_DIMS);
    uint64_t numel = 1;
    bool overflow = false;
    int d = 0;
    for (const cJSON *x = js->child; x; x = x->next, d++) {
        uint64_t v;
        if (!st_json_uint(x, &v))
            return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer", L,
                            name, d);
        t->shape[d] = (int64_t)v;
        if (v != 0 && numel > UINT64_MAX / v) overflow = true;
        else numel *= v;
    }
    /* A zero dimension makes numel 0 whatever an earlier product did. */
    for (int k = 0; k < ndim; k++)
        if (t->shape[k] == 0) { numel = 0; overflow = false; }
    if (overflow || numel > (uint64_t)INT64_MAX / dt->size)
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': shape overflows", L, name);

    uint64_t b, en;
    if (!st_json_uint(jo->child, &b) || !st_json_uint(jo->child->next, &en))
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': data_offsets are not non-negative integers", L,
                        name);
    if (b > en)
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] run backwards", L, name,
                        (unsigned long long)b, (unsigned long long)en);
    if (en > data_size)
        return xs_error(XS_ERR_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu] past the end of the %llu-byte data "
                        "block (file offset %llu)", L, name, (unsigned long long)b,
                        (unsigned long long)en, (unsigned long long)data_size,
                        (unsigned long long)(st->size - data_size + en));
    if (en - b != numel * dt->size)
        return xs_error(XS_ERR_FORMAT,
                        "%s: tensor '%s': %s shape needs %llu bytes but data_offsets [%llu, %llu] span %llu",
                        L, name, dt->name, (unsigned long long)(numel * dt->size), (unsigned long long)b,
                        (unsigned long long)en, (unsigned long long)(en - b));

    int64_t shp[XS_MAX_DIMS];
    memcpy(shp, t->shape, sizeof shp);
    const uint8_t *data_start = st->buf + (st->size - data_size);
    *t = xs_tensor_make(dt->dtype, ndim, shp, (void *)(data_start + b));
    span->begin = b;
    span->end = en;
    span->tensor = i;
    return XS_OK;
}

static xs_status st_parse(xs_safetensors *st) {
    const char *L = st->label;
    if (st->size < 8)
        return xs_error(XS_ERR_FORMAT, "%s: not a safetensors file: %zu bytes, shorter than the 8-byte "
                        "header length", L, st->size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | st->buf[i];
    if (n > st->size - 8)
        return xs_error(XS_ERR_FORMAT,
                        "%s: safetensors header length %llu is past the end of the file (%zu bytes)", L,
                        (unsigned long long)n, st->size);
    if (n > ST_MAX_HEADER)
        return xs_error(XS_ERR_FORMAT, "%s: safetensors header length %llu above the 100 MB limit", L,
                        (unsigned long long)n);
    if (n < 2)
        return xs_error(XS_ERR_FORMAT, "%s: safetensors header of %llu bytes cannot hold a JSON object", L,
                        (unsigned long long)n);
    uint64_t data_size = st->size - 8 - n;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)st->buf + 8, (size_t)n, &end, false);
    if (!root) {
        const char *where = cJSON_GetErrorPtr();
        long long off = where ? (long long)(where - (const char *)st->buf) : -1;
        return xs_error(XS_ERR_FORMAT, "%s: safetensors header is not valid JSON (near file offset %lld)", L,
                        off);
    }
    /* After the object only the writer's space padding may follow. */
    for (const char *p = end; p && p < (const char *)st->buf + 8 + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != 0) {
            cJSON_Delete(root);
            return xs_error(XS_ERR_FORMAT, "%s: safetensors header: trailing bytes after the JSON object at "
                            "file offset %lld", L, (long long)(p - (const char *)st->buf));
        }
    xs_status rc = XS_OK;
    st_span *spans = NULL;
    if (!cJSON_IsObject(root)) {
        rc = xs_error(XS_ERR_FORMAT, "%s: safetensors header is not a JSON object", L);
        goto done;
    }
    int n_entries = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        if (strcmp(e->string, "__metadata__")) n_entries++;
    st->tensors = calloc((size_t)(n_entries ? n_entries : 1), sizeof *st->tensors);
    st->names = calloc((size_t)(n_entries ? n_entries : 1), sizeof *st->names);
    spans = calloc((size_t)(n_entries ? n_entries : 1), sizeof *spans);
    if (!st->tensors || !st->names || !spans) {
        rc = xs_error(XS_ERR_NOMEM, "%s: out of memory for %d tensors", L, n_entries);
        goto done;
    }
    bool seen_meta = false;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (seen_meta) {
                rc = xs_error(XS_ERR_FORMAT, "%s: safetensors header: two __metadata__ entries", L);
                goto done;
            }
            seen_meta = true;
            if ((rc = st_parse_metadata(st, e)) != XS_OK) goto done;
            continue;
        }
        int i = st->count;
        if ((rc = st_parse_entry(st, e, i, data_size, &spans[i])) != XS_OK) goto done;
        if (!(st->names[i] = st_strdup(e->string))) {
            rc = xs_error(XS_ERR_NOMEM, "%s: out of memory", L);
            goto done;
        }
        st->tensors[i].name = st->names[i];
        st->count++;
    }

    /* Overlaps: sort the spans by start; empty tensors own no bytes. */
    qsort(spans, (size_t)st->count, sizeof *spans, st_span_cmp);
    uint64_t prev_end = 0;
    int prev = -1;
    for (int i = 0; i < st->count; i++) {
        if (spans[i].begin == spans[i].end) continue;
        if (prev >= 0 && spans[i].begin < prev_end) {
            rc = xs_error(XS_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap (data offset %llu < %llu)", L,
                          st->names[prev], st->names[spans[i].tensor], (unsigned long long)spans[i].begin,
                          (unsigned long long)prev_end);
            goto done;
        }
        prev = spans[i].tensor;
        prev_end = spans[i].end;
    }

    st->index = weights_index_build(st->tensors, st->count);
    if (!st->index) {
        rc = xs_error(XS_ERR_NOMEM, "%s: out of memory", L);
        goto done;
    }
    int dup = weights_index_first_duplicate(st->tensors, st->index, st->count);
    if (dup >= 0) rc = xs_error(XS_ERR_FORMAT, "%s: tensor '%s' appears twice in the header", L, st->names[dup]);
done:
    free(spans);
    cJSON_Delete(root);
    return rc;
}

static xs_status st_open_common(const void *buf, size_t n, const char *label, weights_map map,
                                xs_safetensors **out) {
    xs_safetensors *st = calloc(1, sizeof *st);
    char *lab = st_strdup(label ? label : "<memory>");
    if (!st || !lab) {
        free(st);
        free(lab);
        weights_unmap(&map);
        return xs_error(XS_ERR_NOMEM, "%s: out of memory", label ? label : "<memory>");
    }
    st->label = lab;
    st->map = map;
    st->buf = buf;
    st->size = n;
    xs_status rc = st_parse(st);
    if (rc != XS_OK) {
        xs_st_close(st);
        return rc;
    }
    *out = st;
    return XS_OK;
}

xs_status xs_st_open_memory(const void *buf, size_t n, const char *label, xs_safetensors **out) {
    if (!out || (!buf && n)) return xs_error(XS_ERR_ARG, "xs_st_open_memory: NULL argument");
    weights_map none = {NULL, 0};
    return st_open_common(buf, n, label, none, out);
}

xs_status xs_st_open(const char *path, xs_safetensors **out) {
    if (!path || !out) return xs_error(XS_ERR_ARG, "xs_st_open: NULL argument");
    weights_map map;
    XS_TRY(weights_map_file(path, &map));
    return st_open_common(map.data, map.size, path, map, out);
}

int xs_st_count(const xs_safetensors *st) { return st ? st->count : 0; }

const xs_tensor *xs_st_at(const xs_safetensors *st, int i) {
    if (!st || i < 0 || i >= st->count) return NULL;
    return &st->tensors[i];
}

const xs_tensor *xs_st_find(const xs_safetensors *st, const char *name) {
    if (!st) return NULL;
    int i = weights_index_find(st->tensors, st->index, st->count, name);
    return i >= 0 ? &st->tensors[i] : NULL;
}

const char *xs_st_metadata(const xs_safetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (!strcmp(st->meta[i].key, key)) return st->meta[i].value;
    return NULL;
}

/* ---- writer ------------------------------------------------------------ */

typedef struct st_wtensor {
    char *name;
    const st_dtype_entry *dt;
    int ndim;
    int64_t shape[XS_MAX_DIMS];
    void *data;
    size_t nbytes;
} st_wtensor;

struct xs_st_writer {
    st_wtensor *t;
    int n, cap;
    st_meta *meta;
    int n_meta, cap_meta;
};

xs_st_writer *xs_st_writer_new(void) { return calloc(1, sizeof(xs_st_writer)); }

void xs_st_writer_free(xs_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->t);
    free(w->meta);
    free(w);
}

xs_status xs_st_writer_add(xs_st_writer *w, const char *name, xs_dtype dtype, int ndim,
                           const int64_t *shape, const void *data) {
    if (!w || !name || (ndim > 0 && !shape)) return xs_error(XS_ERR_ARG, "xs_st_writer_add: NULL argument");
    if (!strcmp(name, "__metadata__"))
        return xs_error(XS_ERR_ARG, "safetensors writer: '__metadata__' is reserved, not a tensor name");
    const st_dtype_entry *dt = st_dtype_by_type(dtype);
    if (!dt)
        return xs_error(XS_ERR_DTYPE, "safetensors writer: tensor '%s': dtype %d has no safetensors form",
                        name, (int)dtype);
    if (ndim < 0 || ndim > XS_MAX_DIMS)
        return xs_error(XS_ERR_ARG, "safetensors writer: tensor '%s': rank %d", name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return xs_error(XS_ERR_ARG, "safetensors writer: tensor '%s' added twice", name);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return xs_error(XS_ERR_ARG, "safetensors writer: tensor '%s': negative dim", name);
        if (shape[d] && numel > (uint64_t)INT64_MAX / (uint64_t)shape[d] / dt->size)
            return xs_error(XS_ERR_ARG, "safetensors writer: tensor '%s': shape overflows", name);
        numel *= (uint64_t)shape[d];
    }
    size_t nbytes = (size_t)(numel * dt->size);
    if (nbytes && !data) return xs_error(XS_ERR_ARG, "safetensors writer: tensor '%s': NULL data", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        st_wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return xs_error(XS_ERR_NOMEM, "safetensors writer: out of memory");
        w->t = nt;
        w->cap = cap;
    }
    st_wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = st_strdup(name);
    t->data = malloc(nbytes ? nbytes : 1);
    if (!t->name || !t->data) {
        free(t->name);
        free(t->data);
        return xs_error(XS_ERR_NOMEM, "safetensors writer: tensor '%s': out of memory (%zu bytes)", name,
                        nbytes);
    }
    if (nbytes) memcpy(t->data, data, nbytes);
    t->dt = dt;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = nbytes;
    w->n++;
    return XS_OK;
}

xs_status xs_st_writer_add_tensor(xs_st_writer *w, const char *name, const xs_tensor *t) {
    if (!t) return xs_error(XS_ERR_ARG, "xs_st_writer_add_tensor: NULL tensor");
    if (!name) name = t->name;
    /* Strided views are valid tensors but the file stores dense rows. */
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect)
            return xs_error(XS_ERR_ARG, "safetensors writer: tensor '%s' is not contiguous",
                            name ? name : "?");
        expect *= t->shape[d];
    }
    return xs_st_writer_add(w, name, t->dtype, t->ndim, t->shape, t->data);
}

xs_status xs_st_writer_set_metadata(xs_st_writer *w, const char *key, const char *value) {
    if (!w || !key || !value) return xs_error(XS_ERR_ARG, "xs_st_writer_set_metadata: NULL argument");
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[i].key, key)) {
            char *v = st_strdup(value);
            if (!v) return xs_error(XS_ERR_NOMEM, "safetensors writer: out of memory");
            free(w->meta[i].value);
            w->meta[i].value = v;
            return XS_OK;
        }
    if (w->n_meta == w->cap_meta) {
        int cap = w->cap_meta ? 2 * w->cap_meta : 4;
        st_meta *nm = realloc(w->meta, (size_t)cap * sizeof *nm);
        if (!nm) return xs_error(XS_ERR_NOMEM, "safetensors writer: out of memory");
        w->meta = nm;
        w->cap_meta = cap;
    }
    char *k = st_strdup(key), *v = st_strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return xs_error(XS_ERR_NOMEM, "safetensors writer: out of memory");
    }
    w->meta[w->n_meta].key = k;
    w->meta[w->n_meta].value = v;
    w->n_meta++;
    return XS_OK;
}

/* Growable text buffer for the JSON header. */
typedef struct st_text {
    char *p;
    size_t n, cap;
    bool oom;
} st_text;

static void st_text_put(st_text *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void st_text_str(st_text *b, const char *s) { st_text_put(b, s, strlen(s)); }

static void st_text_u64(st_text *b, uint64_t v) {
    char tmp[32];
    int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    st_text_put(b, tmp, (size_t)k);
}

/* JSON string literal (names may hold quotes, backslashes, control bytes). */
static void st_text_json_string(st_text *b, const char *s) {
    st_text_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            st_text_put(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            st_text_put(b, esc, 6);
        } else {
            st_text_put(b, (const char *)p, 1);
        }
    }
    st_text_put(b, "\"", 1);
}

/* Data placement: tensors with larger elements first (stable, so add order
 * within one size), like the reference writer. With the header padded to a
 * multiple of 8 this puts every tensor at an offset aligned to its element
 * size, so readers may use the mmap views as float / int64 arrays directly.
 * The header itself lists the tensors in add order. */
static void st_data_offsets(const xs_st_writer *w, uint64_t *begin) {
    uint64_t off = 0;
    for (size_t esize = 8; esize >= 1; esize /= 2)
        for (int i = 0; i < w->n; i++)
            if (w->t[i].dt->size == esize) {
                begin[i] = off;
                off += w->t[i].nbytes;
            }
}

/* The header as the reference implementation writes it: compact JSON,
 * "__metadata__" first, then the tensors; padded with spaces so that the
 * data block starts 8-byte aligned. */
static bool st_build_header(const xs_st_writer *w, const uint64_t *begin, st_text *h) {
    st_text_put(h, "{", 1);
    bool first = true;
    if (w->n_meta) {
        st_text_str(h, "\"__metadata__\":{");
        for (int i = 0; i < w->n_meta; i++) {
            if (i) st_text_put(h, ",", 1);
            st_text_json_string(h, w->meta[i].key);
            st_text_put(h, ":", 1);
            st_text_json_string(h, w->meta[i].value);
        }
        st_text_put(h, "}", 1);
        first = false;
    }
    for (int i = 0; i < w->n; i++) {
        const st_wtensor *t = &w->t[i];
        if (!first) st_text_put(h, ",", 1);
        first = false;
        st_text_json_string(h, t->name);
        st_text_str(h, ":{\"dtype\":\"");
        st_text_str(h, t->dt->name);
        st_text_str(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) st_text_put(h, ",", 1);
            st_text_u64(h, (uint64_t)t->shape[d]);
        }
        st_text_str(h, "],\"data_offsets\":[");
        st_text_u64(h, begin[i]);
        st_text_put(h, ",", 1);
        st_text_u64(h, begin[i] + t->nbytes);
        st_text_str(h, "]}");
    }
    st_text_put(h, "}", 1);
    while (!h->oom && h->n % 8) st_text_put(h, " ", 1);
    return !h->oom;
}

static bool st_write_all(FILE *f, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, f) == n; }

xs_status xs_st_writer_save(xs_st_writer *w, const char *path) {
    if (!w || !path) return xs_error(XS_ERR_ARG, "xs_st_writer_save: NULL argument");
    st_text h = {0};
    uint64_t *begin = malloc((size_t)(w->n ? w->n : 1) * sizeof *begin);
    if (begin) st_data_offsets(w, begin);
    if (!begin || !st_build_header(w, begin, &h)) {
        free(begin);
        free(h.p);
        return xs_error(XS_ERR_NOMEM, "%s: out of memory for the header", path);
    }
    free(begin);
    /* Write next to the target and rename, so a failed save never leaves a
     * truncated model file under the real name. */
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) {
        free(h.p);
        return xs_error(XS_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, plen + 16, "%s.tmp%d", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        xs_status rc = xs_error(XS_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(h.p);
        return rc;
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h.n >> (8 * i));
    bool ok = st_write_all(f, len, 8) && st_write_all(f, h.p, h.n);
    for (size_t esize = 8; esize >= 1; esize /= 2) /* the order of st_data_offsets */
        for (int i = 0; ok && i < w->n; i++)
            if (w->t[i].dt->size == esize) ok = st_write_all(f, w->t[i].data, w->t[i].nbytes);
    int e = errno;
    if (fclose(f) != 0) ok = false;
    free(h.p);
    if (!ok || rename(tmp, path) != 0) {
        if (ok) e = errno;
        remove(tmp);
        free(tmp);
        return xs_error(XS_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return XS_OK;
}
