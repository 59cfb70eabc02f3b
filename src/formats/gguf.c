/*
 * gguf.c — GGUF v2/v3 reader (zero-copy tensor views into an mmap) and
 * writer.
 *
 * The reader trusts nothing: every count, length and offset is checked
 * against the bytes that remain before anything is allocated from it, so a
 * 40-byte file cannot make us allocate gigabytes. Checks, in order:
 *  1. magic "GGUF", version 2 or 3 (v1 used 32-bit counts: refused);
 *  2. n_kv and n_tensors no larger than the rest of the file could hold
 *     (a key/value takes >= 13 bytes, a tensor info >= 24);
 *  3. each string length and array length fits in the remaining bytes;
 *     arrays nest at most GGUF_MAX_DEPTH deep;
 *  4. general.alignment, when present, is an unsigned integer, a power of 2;
 *  5. each tensor: rank <= XS_MAX_DIMS, a supported type, ne[0] a multiple of
 *     32 for block types, byte size not overflowing, offset a multiple of
 *     the alignment, data inside the file; no two tensors overlap; names
 *     are unique.
 *
 * Status codes: XS_ERR_IO (open/map), XS_ERR_DTYPE (tensor type not
 * supported), XS_ERR_UNSUPPORTED (version, rank), XS_ERR_FORMAT (the rest).
 */
#include "formats/gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/weights_index.h"
#include "formats/weights_mmap.h"

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DEPTH 8
#define GGUF_MIN_KV_BYTES 13     /* key length 8 + type 4 + one value byte */
#define GGUF_MIN_TENSOR_BYTES 24 /* name length 8 + n_dims 4 + type 4 + offset 8 */

/* ggml type ids of the tensor types we read and write. */
enum {
    GGML_T_F32 = 0, GGML_T_F16 = 1, GGML_T_Q4_0 = 2, GGML_T_Q8_0 = 8, GGML_T_BF16 = 30
};

struct xs_gguf_value {
    xs_gguf_type type;
    union {
        uint64_t u; /* unsigned ints, BOOL */
        int64_t i;  /* signed ints */
        double f;   /* FLOAT32 (exactly widened), FLOAT64 */
        struct { char *p; uint64_t len; } s;
        struct { xs_gguf_type elem; uint64_t n, cap; xs_gguf_value *items; } a;
    } v;
};

typedef struct gguf_kv {
    char *key;
    xs_gguf_value val;
} gguf_kv;

struct xs_gguf {
    char *label;
    weights_map map;
    const uint8_t *buf;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int n_kv;
    gguf_kv *kv;
    int count;
    xs_tensor *tensors;
    char **names;
    int *index;
};

/* ---- values -------------------------------------------------------------- */

static bool gguf_type_is_int(xs_gguf_type t) {
    return t == XS_GGUF_UINT8 || t == XS_GGUF_INT8 || t == XS_GGUF_UINT16 || t == XS_GGUF_INT16 ||
           t == XS_GGUF_UINT32 || t == XS_GGUF_INT32 || t == XS_GGUF_UINT64 || t == XS_GGUF_INT64 ||
           t == XS_GGUF_BOOL;
}

static bool gguf_type_is_signed(xs_gguf_type t) {
    return t == XS_GGUF_INT8 || t == XS_GGUF_INT16 || t == XS_GGUF_INT32 || t == XS_GGUF_INT64;
}

/* Bytes of a fixed-size scalar type, 0 for STRING / ARRAY / unknown. */
static size_t gguf_scalar_size(xs_gguf_type t) {
    switch (t) {
    case XS_GGUF_UINT8: case XS_GGUF_INT8: case XS_GGUF_BOOL: return 1;
    case XS_GGUF_UINT16: case XS_GGUF_INT16: return 2;
    case XS_GGUF_UINT32: case XS_GGUF_INT32: case XS_GGUF_FLOAT32: return 4;
    case XS_GGUF_UINT64: case XS_GGUF_INT64: case XS_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static bool gguf_type_valid(uint32_t t) { return t <= XS_GGUF_FLOAT64; }

static void gguf_value_clear(xs_gguf_value *v) {
    if (v->type == XS_GGUF_STRING) {
        free(v->v.s.p);
    } else if (v->type == XS_GGUF_ARRAY) {
        for (uint64_t k = 0; k < v->v.a.n; k++) gguf_value_clear(&v->v.a.items[k]);
        free(v->v.a.items);
    }
    memset(v, 0, sizeof *v);
}

xs_gguf_type xs_gguf_value_type(const xs_gguf_value *v) { return v ? v->type : XS_GGUF_UINT8; }

bool xs_gguf_value_int(const xs_gguf_value *v, int64_t *out) {
    if (!v || !gguf_type_is_int(v->type)) return false;
    if (gguf_type_is_signed(v->type)) { *out = v->v.i; return true; }
    if (v->v.u > (uint64_t)INT64_MAX) return false;
    *out = (int64_t)v->v.u;
    return true;
}

bool xs_gguf_value_u64(const xs_gguf_value *v, uint64_t *out) {
    if (!v || !gguf_type_is_int(v->type)) return false;
    if (gguf_type_is_signed(v->type)) {
        if (v->v.i < 0) return false;
        *out = (uint64_t)v->v.i;
        return true;
    }
    *out = v->v.u;
    return true;
}

bool xs_gguf_value_float(const xs_gguf_value *v, double *out) {
    if (!v || (v->type != XS_GGUF_FLOAT32 && v->type != XS_GGUF_FLOAT64)) return false;
    *out = v->v.f;
    return true;
}

const char *xs_gguf_value_str(const xs_gguf_value *v, uint64_t *len) {
    if (!v || v->type != XS_GGUF_STRING) return NULL;
    if (len) *len = v->v.s.len;
    return v->v.s.p;
}

xs_gguf_type xs_gguf_value_array_type(const xs_gguf_value *v) {
    return v && v->type == XS_GGUF_ARRAY ? v->v.a.elem : XS_GGUF_UINT8;
}

uint64_t xs_gguf_value_array_len(const xs_gguf_value *v) {
    return v && v->type == XS_GGUF_ARRAY ? v->v.a.n : 0;
}

const xs_gguf_value *xs_gguf_value_array_at(const xs_gguf_value *v, uint64_t i) {
    if (!v || v->type != XS_GGUF_ARRAY || i >= v->v.a.n) return NULL;
    return &v->v.a.items[i];
}

xs_gguf_value *xs_gguf_value_new_int(xs_gguf_type type, int64_t x) {
    if (!gguf_type_is_int(type)) return NULL;
    xs_gguf_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->type = type;
    if (gguf_type_is_signed(type)) v->v.i = x;
    else v->v.u = (uint64_t)x;
    return v;
}

xs_gguf_value *xs_gguf_value_new_u64(uint64_t x) {
    xs_gguf_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->type = XS_GGUF_UINT64;
    v->v.u = x;
    return v;
}

xs_gguf_value *xs_gguf_value_new_float(xs_gguf_type type, double x) {
    if (type != XS_GGUF_FLOAT32 && type != XS_GGUF_FLOAT64) return NULL;
    xs_gguf_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->type = type;
    v->v.f = type == XS_GGUF_FLOAT32 ? (double)(float)x : x;
    return v;
}

xs_gguf_value *xs_gguf_value_new_str(const char *s) {
    if (!s) return NULL;
    xs_gguf_value *v = calloc(1, sizeof *v);
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    if (!v || !p) { free(v); free(p); return NULL; }
    memcpy(p, s, n + 1);
    v->type = XS_GGUF_STRING;
    v->v.s.p = p;
    v->v.s.len = n;
    return v;
}

xs_gguf_value *xs_gguf_value_new_array(xs_gguf_type elem) {
    if (!gguf_type_valid((uint32_t)elem)) return NULL;
    xs_gguf_value *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->type = XS_GGUF_ARRAY;
    v->v.a.elem = elem;
    return v;
}

void xs_gguf_value_free(xs_gguf_value *v) {
    if (!v) return;
    gguf_value_clear(v);
    free(v);
}

xs_status xs_gguf_value_array_push(xs_gguf_value *arr, xs_gguf_value *item) {
    if (!arr || !item || arr->type != XS_GGUF_ARRAY || item->type != arr->v.a.elem) {
        xs_gguf_value_free(item);
        return xs_error(XS_ERR_ARG, "gguf: array push: NULL or element of the wrong type");
    }
    if (arr->v.a.n == arr->v.a.cap) {
        uint64_t cap = arr->v.a.cap ? 2 * arr->v.a.cap : 8;
        xs_gguf_value *ni = realloc(arr->v.a.items, (size_t)cap * sizeof *ni);
        if (!ni) {
            xs_gguf_value_free(item);
            return xs_error(XS_ERR_NOMEM, "gguf: array push: out of memory");
        }
        arr->v.a.items = ni;
        arr->v.a.cap = cap;
    }
    arr->v.a.items[arr->v.a.n++] = *item; /* move: the shell is freed, the contents kept */
    free(item);
    return XS_OK;
}

/* ---- reader -------------------------------------------------------------- */

typedef struct gguf_cursor {
    const uint8_t *p;
    size_t pos, size;
    const char *label;
} gguf_cursor;

static size_t gguf_left(const gguf_cursor *c) { return c->size - c->pos; }

static uint64_t gguf_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static xs_status gguf_need(gguf_cursor *c, size_t n, const char *what) {
    if (gguf_left(c) < n)
        return xs_error(XS_ERR_FORMAT, "%s: gguf: %s at offset %zu runs past the end of the file (%zu bytes)",
                        c->label, what, c->pos, c->size);
    return XS_OK;
}

static xs_status gguf_u32(gguf_cursor *c, uint32_t *out, const char *what) {
    XS_TRY(gguf_need(c, 4, what));
    *out = (uint32_t)gguf_le(c->p + c->pos, 4);
    c->pos += 4;
    return XS_OK;
}

static xs_status gguf_u64(gguf_cursor *c, uint64_t *out, const char *what) {
    XS_TRY(gguf_need(c, 8, what));
    *out = gguf_le(c->p + c->pos, 8);
    c->pos += 8;
    return XS_OK;
}

/* A string: u64 length + bytes. Returned NUL-terminated in malloc'd memory. */
static xs_status gguf_string(gguf_cursor *c, char **out, uint64_t *len_out, const char *what) {
    uint64_t n;
    size_t at = c->pos;
    XS_TRY(gguf_u64(c, &n, what));
    if (n > gguf_left(c))
        return xs_error(XS_ERR_FORMAT, "%s: gguf: %s at offset %zu has length %llu, past the end of the file",
                        c->label, what, at, (unsigned long long)n);
    char *s = malloc((size_t)n + 1);
    if (!s) return xs_error(XS_ERR_NOMEM, "%s: gguf: out of memory for a %llu-byte string", c->label,
                            (unsigned long long)n);
    memcpy(s, c->p + c->pos, (size_t)n);
    s[n] = 0;
    c->pos += (size_t)n;
    *out = s;
    if (len_out) *len_out = n;
    return XS_OK;
}

/* Smallest number of bytes one value of type t can take in the file. */
static size_t gguf_min_value_bytes(xs_gguf_type t) {
    if (t == XS_GGUF_STRING) return 8;
    if (t == XS_GGUF_ARRAY) return 12;
    return gguf_scalar_size(t);
}

static xs_status gguf_read_value(gguf_cursor *c, xs_gguf_type type, xs_gguf_value *v, int depth,
                                 const char *key) {
    memset(v, 0, sizeof *v);
    v->type = type;
    if (type == XS_GGUF_STRING) return gguf_string(c, &v->v.s.p, &v->v.s.len, "string value");
    if (type == XS_GGUF_ARRAY) {
        if (depth >= GGUF_MAX_DEPTH)
            return xs_error(XS_ERR_FORMAT, "%s: gguf: key '%s': arrays nested deeper than %d", c->label, key,
                            GGUF_MAX_DEPTH);
        uint32_t et;
        uint64_t n;
        size_t at = c->pos;
        XS_TRY(gguf_u32(c, &et, "array type"));
        if (!gguf_type_valid(et))
            return xs_error(XS_ERR_FORMAT, "%s: gguf: key '%s': array element type %u unknown (offset %zu)",
                            c->label, key, et, at);
        XS_TRY(gguf_u64(c, &n, "array length"));
        size_t minb = gguf_min_value_bytes((xs_gguf_type)et);
        if (n > gguf_left(c) / minb)
            return xs_error(XS_ERR_FORMAT, "%s: gguf: key '%s': array of %llu elements at offset %zu runs past "
                            "the end of the file", c->label, key, (unsigned long long)n, at);
        v->v.a.elem = (xs_gguf_type)et;
        if (n == 0) return XS_OK;
        v->v.a.items = calloc((size_t)n, sizeof *v->v.a.items);
        if (!v->v.a.items)
            return xs_error(XS_ERR_NOMEM, "%s: gguf: key '%s': out of memory for %llu elements", c->label, key,
                            (unsigned long long)n);
        v->v.a.cap = n;
        for (uint64_t k = 0; k < n; k++) {
            /* count first so that a failure frees what was read */
            v->v.a.n = k + 1;
            XS_TRY(gguf_read_value(c, (xs_gguf_type)et, &v->v.a.items[k], depth + 1, key));
        }
        return XS_OK;
    }
    size_t sz = gguf_scalar_size(type);
    XS_TRY(gguf_need(c, sz, "value"));
    uint64_t raw = gguf_le(c->p + c->pos, (int)sz);
    c->pos += sz;
    switch (type) {
    case XS_GGUF_INT8: v->v.i = (int8_t)raw; break;
    case XS_GGUF_INT16: v->v.i = (int16_t)raw; break;
    case XS_GGUF_INT32: v->v.i = (int32_t)raw; break;
    case XS_GGUF_INT64: v->v.i = (int64_t)raw; break;
    case XS_GGUF_FLOAT32: {
        uint32_t b = (uint32_t)raw;
        float f;
        memcpy(&f, &b, 4);
        v->v.f = f;
        break;
    }
    case XS_GGUF_FLOAT64: memcpy(&v->v.f, &raw, 8); break;
    case XS_GGUF_BOOL:
        if (raw > 1)
            return xs_error(XS_ERR_FORMAT, "%s: gguf: key '%s': bool value %llu is neither 0 nor 1", c->label,
                            key, (unsigned long long)raw);
        v->v.u = raw;
        break;
    default: v->v.u = raw; break;
    }
    return XS_OK;
}

/* ggml type id -> our dtype; -1 if not supported. */
static int gguf_dtype_from_ggml(uint32_t t) {
    switch (t) {
    case GGML_T_F32: return XS_F32;
    case GGML_T_F16: return XS_F16;
    case GGML_T_BF16: return XS_BF16;
    case GGML_T_Q8_0: return XS_Q8_0;
    case GGML_T_Q4_0: return XS_Q4_0;
    default: return -1;
    }
}

static int gguf_ggml_from_dtype(xs_dtype t) {
    switch (t) {
    case XS_F32: return GGML_T_F32;
    case XS_F16: return GGML_T_F16;
    case XS_BF16: return GGML_T_BF16;
    case XS_Q8_0: return GGML_T_Q8_0;
    case XS_Q4_0: return GGML_T_Q4_0;
    default: return -1;
    }
}

/* Bytes of n elements (n a multiple of 32 for the block types). */
static uint64_t gguf_bytes_for(xs_dtype t, uint64_t n) {
    switch (t) {
    case XS_F32: return n * 4;
    case XS_F16: case XS_BF16: return n * 2;
    case XS_Q8_0: return n / XS_QK * 34;
    case XS_Q4_0: return n / XS_QK * 18;
    default: return 0;
    }
}

static const char *gguf_ggml_type_name(uint32_t t) {
    static const char *names[] = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1",
                                  "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
                                  "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
                                  "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M",
                                  "BF16"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

typedef struct gguf_span {
    uint64_t begin, end;
    int tensor;
} gguf_span;

static int gguf_span_cmp(const void *a, const void *b) {
    const gguf_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static xs_status gguf_read_tensor_info(xs_gguf *g, gguf_cursor *c, int i, gguf_span *span) {
    const char *L = g->label;
    size_t at = c->pos;
    XS_TRY(gguf_string(c, &g->names[i], NULL, "tensor name"));
    const char *name = g->names[i];
    g->count = i + 1; /* the name is owned now, free it on failure */
    uint32_t nd, type;
    XS_TRY(gguf_u32(c, &nd, "tensor rank"));
    if (nd > XS_MAX_DIMS)
        return xs_error(XS_ERR_UNSUPPORTED, "%s: tensor '%s': rank %u above the supported %d (offset %zu)", L,
                        name, nd, XS_MAX_DIMS, at);
    uint64_t ne[XS_MAX_DIMS] = {0};
    for (uint32_t d = 0; d < nd; d++) XS_TRY(gguf_u64(c, &ne[d], "tensor dims"));
    XS_TRY(gguf_u32(c, &type, "tensor type"));
    uint64_t off;
    XS_TRY(gguf_u64(c, &off, "tensor offset"));

    int dt = gguf_dtype_from_ggml(type);
    if (dt < 0)
        return xs_error(XS_ERR_DTYPE, "%s: tensor '%s': ggml type %u (%s) not supported (F32, F16, BF16, Q8_0, "
                        "Q4_0 are)", L, name, type, gguf_ggml_type_name(type));
    uint64_t numel = 1;
    bool zero = false;
    for (uint32_t d = 0; d < nd; d++) {
        if (ne[d] > (uint64_t)INT64_MAX)
            return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': dimension %llu too large", L, name,
                            (unsigned long long)ne[d]);
        if (ne[d] == 0) zero = true;
        else if (numel > ((uint64_t)1 << 60) / ne[d])
            return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': shape overflows", L, name);
        else numel *= ne[d];
    }
    if (zero) numel = 0;
    if (xs_dtype_is_quantized((xs_dtype)dt) && (nd == 0 || ne[0] % XS_QK != 0))
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': %s rows of %llu values are not whole 32-value blocks",
                        L, name, gguf_ggml_type_name(type), (unsigned long long)(nd ? ne[0] : 1));
    uint64_t nbytes = gguf_bytes_for((xs_dtype)dt, numel);

    xs_tensor *t = &g->tensors[i];
    int64_t shape[XS_MAX_DIMS] = {0};
    for (uint32_t d = 0; d < nd; d++) shape[d] = (int64_t)ne[nd - 1 - d]; /* ggml order reversed */
    *t = xs_tensor_make((xs_dtype)dt, (int)nd, shape, NULL);
    t->name = name;
    span->begin = off;
    span->end = off + nbytes; /* checked below once the data offset is known */
    span->tensor = i;
    if (off > ((uint64_t)1 << 62))
        return xs_error(XS_ERR_FORMAT, "%s: tensor '%s': data offset %llu past the end of the file", L, name,
                        (unsigned long long)off);
    return XS_OK;
}

static xs_status gguf_parse(xs_gguf *g) {
    const char *L = g->label;
    gguf_cursor c = {g->buf, 0, g->size, L};
    if (g->size < 4 || memcmp(g->buf, "GGUF", 4) != 0)
        return xs_error(XS_ERR_FORMAT, "%s: not a GGUF file (bad magic)", L);
    c.pos = 4;
    XS_TRY(gguf_u32(&c, &g->version, "version"));
    if (g->version != 2 && g->version != 3) {
        if (g->version == 1)
            return xs_error(XS_ERR_UNSUPPORTED, "%s: GGUF version 1 is not supported (2 or 3 are)", L);
        return xs_error(XS_ERR_UNSUPPORTED, "%s: GGUF version %u not supported (2 or 3; a big-endian file?)",
                        L, g->version);
    }
    uint64_t n_tensors, n_kv;
    XS_TRY(gguf_u64(&c, &n_tensors, "tensor count"));
    XS_TRY(gguf_u64(&c, &n_kv, "key/value count"));
    size_t left = gguf_left(&c);
    if (n_kv > left / GGUF_MIN_KV_BYTES || n_tensors > left / GGUF_MIN_TENSOR_BYTES ||
        n_kv * GGUF_MIN_KV_BYTES + n_tensors * GGUF_MIN_TENSOR_BYTES > left)
        return xs_error(XS_ERR_FORMAT, "%s: gguf: %llu tensors and %llu key/values cannot fit in a %zu-byte file",
                        L, (unsigned long long)n_tensors, (unsigned long long)n_kv, g->size);

    g->kv = calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kv);
    g->tensors = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->tensors);
    g->names = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->names);
    gguf_span *spans = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *spans);
    if (!g->kv || !g->tensors || !g->names || !spans) {
        free(spans);
        return xs_error(XS_ERR_NOMEM, "%s: out of memory", L);
    }
    xs_status rc = XS_OK;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t k = 0; k < n_kv; k++) {
        gguf_kv *kv = &g->kv[k];
        size_t at = c.pos;
        if ((rc = gguf_string(&c, &kv->key, NULL, "key")) != XS_OK) goto done;
        g->n_kv = (int)k + 1;
        uint32_t type;
        if ((rc = gguf_u32(&c, &type, "value type")) != XS_OK) goto done;
        if (!gguf_type_valid(type)) {
            rc = xs_error(XS_ERR_FORMAT, "%s: gguf: key '%s' (offset %zu): value type %u unknown", L, kv->key, at,
                          type);
            goto done;
        }
        if ((rc = gguf_read_value(&c, (xs_gguf_type)type, &kv->val, 0, kv->key)) != XS_OK) goto done;
        for (uint64_t j = 0; j < k; j++)
            if (!strcmp(g->kv[j].key, kv->key)) {
                rc = xs_error(XS_ERR_FORMAT, "%s: gguf: key '%s' appears twice", L, kv->key);
                goto done;
            }
        if (!strcmp(kv->key, "general.alignment")) {
            uint64_t a;
            if (!xs_gguf_value_u64(&kv->val, &a) || kv->val.type == XS_GGUF_BOOL || a == 0 || (a & (a - 1)) ||
                a > (1u << 30)) {
                rc = xs_error(XS_ERR_FORMAT, "%s: gguf: general.alignment must be a power of two", L);
                goto done;
            }
            g->alignment = (uint32_t)a;
        }
    }
    for (uint64_t i = 0; i < n_tensors; i++)
        if ((rc = gguf_read_tensor_info(g, &c, (int)i, &spans[i])) != XS_OK) goto done;

    uint64_t data = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    g->data_offset = data;
    uint64_t data_size = data <= g->size ? g->size - data : 0;
    if (n_tensors > 0 && data > g->size) {
        rc = xs_error(XS_ERR_FORMAT, "%s: gguf: data section would start at %llu, past the end of the file", L,
                      (unsigned long long)data);
        goto done;
    }
    for (int i = 0; i < g->count; i++) {
        gguf_span *s = &spans[i];
        const char *name = g->names[s->tensor];
        if (s->begin % g->alignment) {
            rc = xs_error(XS_ERR_FORMAT, "%s: tensor '%s': data offset %llu not a multiple of the alignment %u",
                          L, name, (unsigned long long)s->begin, g->alignment);
            goto done;
        }
        if (s->end > data_size) {
            rc = xs_error(XS_ERR_FORMAT, "%s: tensor '%s': data [%llu, %llu) past the end of the file (file "
                          "offset %llu, size %zu)", L, name, (unsigned long long)s->begin,
                          (unsigned long long)s->end, (unsigned long long)(data + s->end), g->size);
            goto done;
        }
        g->tensors[s->tensor].data = (void *)(g->buf + data + s->begin);
    }
    qsort(spans, (size_t)g->count, sizeof *spans, gguf_span_cmp);
    uint64_t prev_end = 0;
    int prev = -1;
    for (int i = 0; i < g->count; i++) {
        if (spans[i].begin == spans[i].end) continue;
        if (prev >= 0 && spans[i].begin < prev_end) {
            rc = xs_error(XS_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap (data offset %llu < %llu)", L,
                          g->names[prev], g->names[spans[i].tensor], (unsigned long long)spans[i].begin,
                          (unsigned long long)prev_end);
            goto done;
        }
        prev = spans[i].tensor;
        prev_end = spans[i].end;
    }
    g->index = weights_index_build(g->tensors, g->count);
    if (!g->index) {
        rc = xs_error(XS_ERR_NOMEM, "%s: out of memory", L);
        goto done;
    }
    int dup = weights_index_first_duplicate(g->tensors, g->index, g->count);
    if (dup >= 0) rc = xs_error(XS_ERR_FORMAT, "%s: tensor '%s' appears twice", L, g->names[dup]);
done:
    free(spans);
    return rc;
}

void xs_gguf_close(xs_gguf *g) {
    if (!g) return;
    for (int i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        gguf_value_clear(&g->kv[i].val);
    }
    if (g->names)
        for (int i = 0; i < g->count; i++) free(g->names[i]);
    free(g->kv);
    free(g->names);
    free(g->tensors);
    free(g->index);
    weights_unmap(&g->map);
    free(g->label);
    free(g);
}

static xs_status gguf_open_common(const void *buf, size_t n, const char *label, weights_map map,
                                  xs_gguf **out) {
    const char *lab = label ? label : "<memory>";
    xs_gguf *g = calloc(1, sizeof *g);
    char *l = g ? malloc(strlen(lab) + 1) : NULL;
    if (!g || !l) {
        free(g);
        weights_unmap(&map);
        return xs_error(XS_ERR_NOMEM, "%s: out of memory", lab);
    }
    strcpy(l, lab);
    g->label = l;
    g->map = map;
    g->buf = buf;
    g->size = n;
    xs_status rc = gguf_parse(g);
    if (rc != XS_OK) {
        xs_gguf_close(g);
        return rc;
    }
    *out = g;
    return XS_OK;
}

xs_status xs_gguf_open_memory(const void *buf, size_t n, const char *label, xs_gguf **out) {
    if (!out || (!buf && n)) return xs_error(XS_ERR_ARG, "xs_gguf_open_memory: NULL argument");
    weights_map none = {NULL, 0};
    return gguf_open_common(buf, n, label, none, out);
}

xs_status xs_gguf_open(const char *path, xs_gguf **out) {
    if (!path || !out) return xs_error(XS_ERR_ARG, "xs_gguf_open: NULL argument");
    weights_map map;
    XS_TRY(weights_map_file(path, &map));
    return gguf_open_common(map.data, map.size, path, map, out);
}

uint32_t xs_gguf_version(const xs_gguf *g) { return g ? g->version : 0; }
uint32_t xs_gguf_alignment(const xs_gguf *g) { return g ? g->alignment : 0; }
uint64_t xs_gguf_data_offset(const xs_gguf *g) { return g ? g->data_offset : 0; }
int xs_gguf_count(const xs_gguf *g) { return g ? g->count : 0; }

const xs_tensor *xs_gguf_at(const xs_gguf *g, int i) {
    return g && i >= 0 && i < g->count ? &g->tensors[i] : NULL;
}

const xs_tensor *xs_gguf_find(const xs_gguf *g, const char *name) {
    if (!g) return NULL;
    int i = weights_index_find(g->tensors, g->index, g->count, name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

int xs_gguf_kv_count(const xs_gguf *g) { return g ? g->n_kv : 0; }
const char *xs_gguf_kv_key(const xs_gguf *g, int i) { return g && i >= 0 && i < g->n_kv ? g->kv[i].key : NULL; }

xs_gguf_type xs_gguf_kv_type(const xs_gguf *g, int i) {
    return g && i >= 0 && i < g->n_kv ? g->kv[i].val.type : XS_GGUF_UINT8;
}

const xs_gguf_value *xs_gguf_kv_value(const xs_gguf *g, int i) {
    return g && i >= 0 && i < g->n_kv ? &g->kv[i].val : NULL;
}

int xs_gguf_find_key(const xs_gguf *g, const char *key) {
    if (!g || !key) return -1;
    for (int i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return i;
    return -1;
}

/* ---- writer -------------------------------------------------------------- */

typedef struct gguf_wtensor {
    char *name;
    xs_dtype dtype;
    int ndim;
    int64_t shape[XS_MAX_DIMS];
    void *data;  /* NULL for a lazy tensor */
    uint64_t nbytes;
    xs_gguf_fill_fn fill;
    void *user;
} gguf_wtensor;

struct xs_gguf_writer {
    uint32_t version, alignment;
    gguf_kv *kv;
    int n_kv, cap_kv;
    gguf_wtensor *t;
    int n, cap;
};

xs_gguf_writer *xs_gguf_writer_new(uint32_t version) {
    if (version != 2 && version != 3) return NULL;
    xs_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->version = version;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void xs_gguf_writer_free(xs_gguf_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        gguf_value_clear(&w->kv[i].val);
    }
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

xs_status xs_gguf_writer_set(xs_gguf_writer *w, const char *key, xs_gguf_value *v) {
    if (!w || !key || !v) {
        xs_gguf_value_free(v);
        return xs_error(XS_ERR_ARG, "xs_gguf_writer_set: NULL argument");
    }
    if (!strcmp(key, "general.alignment")) {
        uint64_t a;
        if (v->type != XS_GGUF_UINT32 || !xs_gguf_value_u64(v, &a) || a == 0 || (a & (a - 1))) {
            xs_gguf_value_free(v);
            return xs_error(XS_ERR_ARG, "gguf writer: general.alignment must be a UINT32 power of two");
        }
        w->alignment = (uint32_t)a;
    }
    for (int i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            gguf_value_clear(&w->kv[i].val);
            w->kv[i].val = *v;
            free(v);
            return XS_OK;
        }
    if (w->n_kv == w->cap_kv) {
        int cap = w->cap_kv ? 2 * w->cap_kv : 8;
        gguf_kv *nk = realloc(w->kv, (size_t)cap * sizeof *nk);
        if (!nk) {
            xs_gguf_value_free(v);
            return xs_error(XS_ERR_NOMEM, "gguf writer: out of memory");
        }
        w->kv = nk;
        w->cap_kv = cap;
    }
    char *k = malloc(strlen(key) + 1);
    if (!k) {
        xs_gguf_value_free(v);
        return xs_error(XS_ERR_NOMEM, "gguf writer: out of memory");
    }
    strcpy(k, key);
    w->kv[w->n_kv].key = k;
    w->kv[w->n_kv].val = *v;
    free(v);
    w->n_kv++;
    return XS_OK;
}

static xs_status gguf_writer_add_impl(xs_gguf_writer *w, const char *name, xs_dtype dtype, int ndim,
                                     const int64_t *shape, const void *data, xs_gguf_fill_fn fill,
                                     void *user) {
    if (!w || !name || (ndim > 0 && !shape)) return xs_error(XS_ERR_ARG, "xs_gguf_writer_add: NULL argument");
    if (gguf_ggml_from_dtype(dtype) < 0)
        return xs_error(XS_ERR_DTYPE, "gguf writer: tensor '%s': dtype %s has no GGUF type here", name,
                        xs_dtype_name(dtype));
    if (ndim < 0 || ndim > XS_MAX_DIMS)
        return xs_error(XS_ERR_ARG, "gguf writer: tensor '%s': rank %d", name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return xs_error(XS_ERR_ARG, "gguf writer: tensor '%s' added twice", name);
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0 || (shape[d] && numel > ((uint64_t)1 << 60) / (uint64_t)shape[d]))
            return xs_error(XS_ERR_ARG, "gguf writer: tensor '%s': bad shape", name);
        numel *= (uint64_t)shape[d];
    }
    if (xs_dtype_is_quantized(dtype) && (ndim == 0 || shape[ndim - 1] % XS_QK))
        return xs_error(XS_ERR_SHAPE, "gguf writer: tensor '%s': %s needs a last dimension that is a multiple "
                        "of 32", name, xs_dtype_name(dtype));
    uint64_t nbytes = gguf_bytes_for(dtype, numel);
    if (nbytes && !data && !fill) return xs_error(XS_ERR_ARG, "gguf writer: tensor '%s': NULL data", name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        gguf_wtensor *nt = realloc(w->t, (size_t)cap * sizeof *nt);
        if (!nt) return xs_error(XS_ERR_NOMEM, "gguf writer: out of memory");
        w->t = nt;
        w->cap = cap;
    }
    gguf_wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = malloc(strlen(name) + 1);
    t->data = fill ? NULL : malloc(nbytes ? (size_t)nbytes : 1);
    if (!t->name || (!fill && !t->data)) {
        free(t->name);
        free(t->data);
        return xs_error(XS_ERR_NOMEM, "gguf writer: tensor '%s': out of memory (%llu bytes)", name,
                        (unsigned long long)nbytes);
    }
    strcpy(t->name, name);
    if (nbytes && !fill) memcpy(t->data, data, (size_t)nbytes);
    t->fill = fill;
    t->user = user;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->nbytes = nbytes;
    w->n++;
    return XS_OK;
}

xs_status xs_gguf_writer_add(xs_gguf_writer *w, const char *name, xs_dtype dtype, int ndim,
                             const int64_t *shape, const void *data) {
    return gguf_writer_add_impl(w, name, dtype, ndim, shape, data, NULL, NULL);
}

xs_status xs_gguf_writer_add_lazy(xs_gguf_writer *w, const char *name, xs_dtype dtype, int ndim,
                                  const int64_t *shape, xs_gguf_fill_fn fill, void *user) {
    if (!fill) return xs_error(XS_ERR_ARG, "xs_gguf_writer_add_lazy: NULL fill function");
    return gguf_writer_add_impl(w, name, dtype, ndim, shape, NULL, fill, user);
}

typedef struct gguf_out {
    FILE *f;
    uint64_t pos;
    bool ok;
} gguf_out;

static void gguf_put(gguf_out *o, const void *p, size_t n) {
    if (!o->ok || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->ok = false;
    o->pos += n;
}

static void gguf_put_le(gguf_out *o, uint64_t v, int n) {
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    gguf_put(o, b, (size_t)n);
}

static void gguf_put_str(gguf_out *o, const char *s, uint64_t n) {
    gguf_put_le(o, n, 8);
    gguf_put(o, s, (size_t)n);
}

static void gguf_put_zeros(gguf_out *o, uint64_t n) {
    static const uint8_t z[64];
    while (n > 0) {
        size_t k = n > sizeof z ? sizeof z : (size_t)n;
        gguf_put(o, z, k);
        n -= k;
    }
}

static void gguf_put_value(gguf_out *o, const xs_gguf_value *v) {
    switch (v->type) {
    case XS_GGUF_STRING: gguf_put_str(o, v->v.s.p, v->v.s.len); break;
    case XS_GGUF_ARRAY:
        gguf_put_le(o, (uint64_t)v->v.a.elem, 4);
        gguf_put_le(o, v->v.a.n, 8);
        for (uint64_t k = 0; k < v->v.a.n; k++) gguf_put_value(o, &v->v.a.items[k]);
        break;
    case XS_GGUF_FLOAT32: {
        float f = (float)v->v.f;
        uint32_t b;
        memcpy(&b, &f, 4);
        gguf_put_le(o, b, 4);
        break;
    }
    case XS_GGUF_FLOAT64: {
        uint64_t b;
        memcpy(&b, &v->v.f, 8);
        gguf_put_le(o, b, 8);
        break;
    }
    default: /* integers: two's complement truncation is the file's encoding */
        gguf_put_le(o, v->v.u, (int)gguf_scalar_size(v->type));
        break;
    }
}

xs_status xs_gguf_writer_save(xs_gguf_writer *w, const char *path) {
    if (!w || !path) return xs_error(XS_ERR_ARG, "xs_gguf_writer_save: NULL argument");
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return xs_error(XS_ERR_NOMEM, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmp%d", path, (int)getpid());
    gguf_out o = {fopen(tmp, "wb"), 0, true};
    if (!o.f) {
        xs_status rc = xs_error(XS_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    const uint64_t A = w->alignment;
    gguf_put(&o, "GGUF", 4);
    gguf_put_le(&o, w->version, 4);
    gguf_put_le(&o, (uint64_t)w->n, 8);
    gguf_put_le(&o, (uint64_t)w->n_kv, 8);
    for (int i = 0; i < w->n_kv; i++) {
        gguf_put_str(&o, w->kv[i].key, strlen(w->kv[i].key));
        gguf_put_le(&o, (uint64_t)w->kv[i].val.type, 4);
        gguf_put_value(&o, &w->kv[i].val);
    }
    uint64_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const gguf_wtensor *t = &w->t[i];
        gguf_put_str(&o, t->name, strlen(t->name));
        gguf_put_le(&o, (uint64_t)t->ndim, 4);
        for (int d = t->ndim - 1; d >= 0; d--) gguf_put_le(&o, (uint64_t)t->shape[d], 8);
        gguf_put_le(&o, (uint64_t)gguf_ggml_from_dtype(t->dtype), 4);
        gguf_put_le(&o, off, 8);
        off += (t->nbytes + A - 1) / A * A;
    }
    gguf_put_zeros(&o, (A - o.pos % A) % A);
    /* Every tensor, the last included, is zero-padded to the alignment:
     * candle's writer does so and byte-identical output depends on it. */
    xs_status fill_rc = XS_OK;
    for (int i = 0; i < w->n && o.ok && fill_rc == XS_OK; i++) {
        const gguf_wtensor *t = &w->t[i];
        if (t->fill) {
            void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
            if (!buf) fill_rc = xs_error(XS_ERR_NOMEM, "%s: tensor '%s': out of memory (%llu bytes)", path, t->name,
                                         (unsigned long long)t->nbytes);
            else fill_rc = t->fill(t->user, i, buf, (size_t)t->nbytes);
            if (fill_rc == XS_OK) gguf_put(&o, buf, (size_t)t->nbytes);
            free(buf);
        } else {
            gguf_put(&o, t->data, (size_t)t->nbytes);
        }
        gguf_put_zeros(&o, (A - t->nbytes % A) % A);
    }
    int e = errno;
    if (fill_rc != XS_OK) {
        fclose(o.f);
        remove(tmp);
        free(tmp);
        return fill_rc;
    }
    if (fclose(o.f) != 0) o.ok = false;
    if (!o.ok || rename(tmp, path) != 0) {
        if (o.ok) e = errno;
        remove(tmp);
        free(tmp);
        return xs_error(XS_ERR_IO, "%s: write failed: %s", path, strerror(e));
    }
    free(tmp);
    return XS_OK;
}
