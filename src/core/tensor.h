/*
 * tensor.h — element types and tensor views.
 *
 * A tensor is a view: dtype, shape (outermost first, PyTorch order, also for
 * tensors read from GGUF), strides in elements, and a data pointer it does
 * not own. Block-quantized types (q8_0, q4_0) are only ever contiguous; their
 * innermost dimension is a multiple of 32 and `stride` is left at the
 * contiguous values counted in elements (not blocks).
 *
 * Where the data lives depends on who made the view: model files give host
 * pointers into an mmap; backends give pointers into their own memory (host
 * for ref/cpu, device for cuda).
 */
#ifndef XS_CORE_TENSOR_H
#define XS_CORE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define XS_MAX_DIMS 4
#define XS_QK 32 /* values per q8_0 / q4_0 block, as GGUF defines them */

typedef enum xs_dtype {
    XS_F32 = 0,
    XS_F16,
    XS_BF16,
    XS_Q8_0,
    XS_Q4_0,
    XS_I64,
    XS_I32,
    XS_I8,
    XS_U8,
    XS_BOOL,
    XS_DTYPE_COUNT
} xs_dtype;

/* "f32", "f16", "bf16", "q8_0", "q4_0", "i64", "i32", "i8", "u8", "bool". */
const char *xs_dtype_name(xs_dtype t);
/* Inverse of xs_dtype_name; returns -1 if unknown. */
int xs_dtype_from_name(const char *name);
/* Bytes for n elements of type t (n must be a multiple of 32 for q8_0/q4_0;
 * returns 0 otherwise). */
size_t xs_dtype_row_bytes(xs_dtype t, int64_t n);
bool xs_dtype_is_quantized(xs_dtype t);

typedef struct xs_tensor {
    xs_dtype dtype;
    int ndim;                      /* 0..XS_MAX_DIMS (0 = scalar) */
    int64_t shape[XS_MAX_DIMS];    /* outermost first */
    int64_t stride[XS_MAX_DIMS];   /* in elements */
    void *data;                    /* not owned */
    const char *name;              /* optional, not owned; for messages */
} xs_tensor;

/* A contiguous view of `data` with the given shape. */
xs_tensor xs_tensor_make(xs_dtype dtype, int ndim, const int64_t *shape, void *data);
/* Shorthands for contiguous f32 views. */
xs_tensor xs_tensor_1d(xs_dtype dtype, void *data, int64_t n0);
xs_tensor xs_tensor_2d(xs_dtype dtype, void *data, int64_t n0, int64_t n1);
xs_tensor xs_tensor_3d(xs_dtype dtype, void *data, int64_t n0, int64_t n1, int64_t n2);

int64_t xs_tensor_numel(const xs_tensor *t);
size_t xs_tensor_nbytes(const xs_tensor *t); /* of a contiguous tensor */
bool xs_tensor_is_contiguous(const xs_tensor *t);
bool xs_tensor_same_shape(const xs_tensor *a, const xs_tensor *b);
/* Writes "[2, 64, 3]" into buf. */
const char *xs_tensor_shape_str(const xs_tensor *t, char *buf, size_t n);

/* Views (no copy). dim may be negative (from the end). Out-of-range
 * arguments (or a quantized slice not on a block boundary) give a view with
 * data == NULL and ndim == 0, which every xs_op_* wrapper refuses. */
xs_tensor xs_tensor_slice(const xs_tensor *t, int dim, int64_t start, int64_t len);
xs_tensor xs_tensor_transpose(const xs_tensor *t, int d0, int d1);
/* Reshape a contiguous tensor; returns XS_ERR_SHAPE if numel differs or t is
 * not contiguous. */
xs_status xs_tensor_reshape(const xs_tensor *t, int ndim, const int64_t *shape, xs_tensor *out);

/* ---- exact element conversions ---------------------------------------- */
float xs_bf16_to_f32(uint16_t h);
uint16_t xs_f32_to_bf16(float f);  /* round to nearest even, NaN kept NaN */
float xs_f16_to_f32(uint16_t h);   /* subnormals, inf, NaN exact */
uint16_t xs_f32_to_f16(float f);   /* round to nearest even */

/* Convert n contiguous values of any non-quantized or quantized type to f32.
 * `src` must hold a whole number of blocks for q8_0/q4_0. */
xs_status xs_convert_to_f32(float *dst, const void *src, xs_dtype t, int64_t n);

#endif
