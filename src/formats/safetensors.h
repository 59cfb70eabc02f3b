/*
 * safetensors.h — reader (mmap, validated header, zero-copy views) and writer.
 *
 * Layout: u64 little-endian N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data block (offsets relative to it).
 * The reader rejects: short files, N past the end, bad JSON, unknown dtypes,
 * offsets outside the data block, sizes not matching dtype x shape, and
 * overlapping tensors — each with a message naming the file and tensor.
 */
#ifndef XS_FORMATS_SAFETENSORS_H
#define XS_FORMATS_SAFETENSORS_H

#include "core/tensor.h"

typedef struct xs_safetensors xs_safetensors;

xs_status xs_st_open(const char *path, xs_safetensors **out);
/* Parse from memory (used by fuzzers and tests; buf must outlive the object). */
xs_status xs_st_open_memory(const void *buf, size_t n, const char *label, xs_safetensors **out);
void xs_st_close(xs_safetensors *st);
int xs_st_count(const xs_safetensors *st);
const xs_tensor *xs_st_at(const xs_safetensors *st, int i); /* file order */
const xs_tensor *xs_st_find(const xs_safetensors *st, const char *name);
/* Metadata value of key, or NULL. */
const char *xs_st_metadata(const xs_safetensors *st, const char *key);

/* Writer: tensors are copied at add time and listed in add order (the
 * reader's xs_st_at order); their data is laid out by element size (8, 4, 2,
 * 1 bytes, add order within a size) so that every view read back is aligned
 * to its element size. */
typedef struct xs_st_writer xs_st_writer;
xs_st_writer *xs_st_writer_new(void);
/* data holds numel(shape) contiguous elements of dtype (host memory). */
xs_status xs_st_writer_add(xs_st_writer *w, const char *name, xs_dtype dtype, int ndim,
                           const int64_t *shape, const void *data);
xs_status xs_st_writer_add_tensor(xs_st_writer *w, const char *name, const xs_tensor *t);
xs_status xs_st_writer_set_metadata(xs_st_writer *w, const char *key, const char *value);
xs_status xs_st_writer_save(xs_st_writer *w, const char *path);
void xs_st_writer_free(xs_st_writer *w);

#endif
