/*
 * gguf.h — GGUF v2/v3 reader and writer.
 *
 * Layout (little-endian): "GGUF" u32 version, u64 n_tensors, u64 n_kv;
 * n_kv x {string key, u32 type, value}; n_tensors x {string name, u32 n_dims,
 * u64 ne[n_dims] (ggml order: innermost first), u32 ggml_type, u64 offset};
 * padding to general.alignment (default 32); tensor data (offsets relative to
 * its start, each aligned). Strings are u64 length + bytes (no NUL).
 * Supported tensor types: F32, F16, BF16, Q8_0, Q4_0; anything else is an
 * error naming the tensor and the type.
 */
#ifndef XS_FORMATS_GGUF_H
#define XS_FORMATS_GGUF_H

#include "core/tensor.h"

typedef struct xs_gguf xs_gguf;

typedef enum xs_gguf_type {
    XS_GGUF_UINT8 = 0, XS_GGUF_INT8, XS_GGUF_UINT16, XS_GGUF_INT16, XS_GGUF_UINT32,
    XS_GGUF_INT32, XS_GGUF_FLOAT32, XS_GGUF_BOOL, XS_GGUF_STRING, XS_GGUF_ARRAY,
    XS_GGUF_UINT64, XS_GGUF_INT64, XS_GGUF_FLOAT64
} xs_gguf_type;

xs_status xs_gguf_open(const char *path, xs_gguf **out);
xs_status xs_gguf_open_memory(const void *buf, size_t n, const char *label, xs_gguf **out);
void xs_gguf_close(xs_gguf *g);
uint32_t xs_gguf_version(const xs_gguf *g);
int xs_gguf_count(const xs_gguf *g);
const xs_tensor *xs_gguf_at(const xs_gguf *g, int i);  /* shapes in PyTorch order */
const xs_tensor *xs_gguf_find(const xs_gguf *g, const char *name);
int xs_gguf_kv_count(const xs_gguf *g);
const char *xs_gguf_kv_key(const xs_gguf *g, int i);
xs_gguf_type xs_gguf_kv_type(const xs_gguf *g, int i);
/* Returns -1 if the key is not found. */
int xs_gguf_find_key(const xs_gguf *g, const char *key);

/* ---- key/value access (additive: values of every GGUF type) ----------
 * A value lives as long as its xs_gguf. Integer getters accept every
 * integer type and BOOL (0/1); they return false on a type that is not an
 * integer or (u64) a value that does not fit. */
typedef struct xs_gguf_value xs_gguf_value;
const xs_gguf_value *xs_gguf_kv_value(const xs_gguf *g, int i); /* NULL if out of range */
xs_gguf_type xs_gguf_value_type(const xs_gguf_value *v);
bool xs_gguf_value_int(const xs_gguf_value *v, int64_t *out);  /* any int type fitting int64 */
bool xs_gguf_value_u64(const xs_gguf_value *v, uint64_t *out); /* any non-negative int */
bool xs_gguf_value_float(const xs_gguf_value *v, double *out); /* FLOAT32 / FLOAT64 */
/* String bytes (NUL-terminated copy; *len gets the stored length, which may
 * include NULs); NULL if v is not a STRING. */
const char *xs_gguf_value_str(const xs_gguf_value *v, uint64_t *len);
/* Arrays: element type, length, and element i (NULL if not an array or out
 * of range). Elements of an ARRAY-typed array are arrays themselves. */
xs_gguf_type xs_gguf_value_array_type(const xs_gguf_value *v);
uint64_t xs_gguf_value_array_len(const xs_gguf_value *v);
const xs_gguf_value *xs_gguf_value_array_at(const xs_gguf_value *v, uint64_t i);
/* Byte offset of the tensor data section in the file. */
uint64_t xs_gguf_data_offset(const xs_gguf *g);
uint32_t xs_gguf_alignment(const xs_gguf *g);

/* Building values for the writer. The new_* calls return NULL on bad type or
 * allocation failure; push and set take ownership of `item`/`v` (also on
 * failure). An array's items must all have its element type. */
xs_gguf_value *xs_gguf_value_new_int(xs_gguf_type type, int64_t v);   /* (U)INT8..64, BOOL */
xs_gguf_value *xs_gguf_value_new_u64(uint64_t v);
xs_gguf_value *xs_gguf_value_new_float(xs_gguf_type type, double v); /* FLOAT32 / FLOAT64 */
xs_gguf_value *xs_gguf_value_new_str(const char *s);
xs_gguf_value *xs_gguf_value_new_array(xs_gguf_type elem_type);
xs_status xs_gguf_value_array_push(xs_gguf_value *array, xs_gguf_value *item);
void xs_gguf_value_free(xs_gguf_value *v);

/* Writer (v2 or v3). Tensors copied at add time, written in add order with
 * 32-byte alignment; shape given in PyTorch order. */
typedef struct xs_gguf_writer xs_gguf_writer;
xs_gguf_writer *xs_gguf_writer_new(uint32_t version);
xs_status xs_gguf_writer_add(xs_gguf_writer *w, const char *name, xs_dtype dtype, int ndim,
                             const int64_t *shape, const void *data);
/* Like add, but the bytes are produced at save time by fill(user, i, dst,
 * nbytes), i = this tensor's add position, so that a large model is written
 * holding one tensor in memory at a time (additive). */
typedef xs_status (*xs_gguf_fill_fn)(void *user, int i, void *dst, size_t nbytes);
xs_status xs_gguf_writer_add_lazy(xs_gguf_writer *w, const char *name, xs_dtype dtype, int ndim,
                                  const int64_t *shape, xs_gguf_fill_fn fill, void *user);
xs_status xs_gguf_writer_save(xs_gguf_writer *w, const char *path);
/* Set key to v (takes ownership; replaces an earlier value of the key;
 * written in first-set order). "general.alignment" (UINT32, a power of two)
 * also changes the alignment the writer uses. */
xs_status xs_gguf_writer_set(xs_gguf_writer *w, const char *key, xs_gguf_value *v);
void xs_gguf_writer_free(xs_gguf_writer *w);

#endif
