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

/* Writer (v2 or v3). Tensors copied at add time, written in add order with
 * 32-byte alignment; shape given in PyTorch order. */
typedef struct xs_gguf_writer xs_gguf_writer;
xs_gguf_writer *xs_gguf_writer_new(uint32_t version);
xs_status xs_gguf_writer_add(xs_gguf_writer *w, const char *name, xs_dtype dtype, int ndim,
                             const int64_t *shape, const void *data);
xs_status xs_gguf_writer_save(xs_gguf_writer *w, const char *path);
void xs_gguf_writer_free(xs_gguf_writer *w);

#endif
