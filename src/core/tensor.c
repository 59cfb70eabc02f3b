/*
 * tensor.c — element types, tensor views and exact element conversions.
 *
 * Views never allocate. A view function given arguments out of range
 * (slice past the end, bad dim) returns a tensor with data == NULL and
 * ndim == 0, which every xs_op_* wrapper rejects with XS_ERR_ARG: views
 * cannot return a status, and aborting on bad input is not allowed.
 */
#include "core/tensor.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/quant.h"

/* ---- dtypes -------------------------------------------------------------- */

static const char *const k_dtype_names[XS_DTYPE_COUNT] = {
    "f32", "f16", "bf16", "q8_0", "q4_0", "i64", "i32", "i8", "u8", "bool",
};

const char *xs_dtype_name(xs_dtype t) {
    if ((int)t < 0 || t >= XS_DTYPE_COUNT) return "?";
    return k_dtype_names[t];
}

int xs_dtype_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < XS_DTYPE_COUNT; i++)
        if (!strcmp(name, k_dtype_names[i])) return i;
    return -1;
}

bool xs_dtype_is_quantized(xs_dtype t) { return t == XS_Q8_0 || t == XS_Q4_0; }

/* Bytes of one element for non-quantized types (0 for block types). */
static size_t dtype_elem_size(xs_dtype t) {
    switch (t) {
    case XS_F32: case XS_I32: return 4;
    case XS_F16: case XS_BF16: return 2;
    case XS_I64: return 8;
    case XS_I8: case XS_U8: case XS_BOOL: return 1;
    default: return 0;
    }
}

size_t xs_dtype_row_bytes(xs_dtype t, int64_t n) {
    if (n < 0) return 0;
    if (t == XS_Q8_0) return n % XS_QK ? 0 : (size_t)(n / XS_QK) * sizeof(xs_block_q8_0);
    if (t == XS_Q4_0) return n % XS_QK ? 0 : (size_t)(n / XS_QK) * sizeof(xs_block_q4_0);
    return (size_t)n * dtype_elem_size(t);
}

/* ---- views --------------------------------------------------------------- */

static void set_contiguous_strides(xs_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d];
    }
}

xs_tensor xs_tensor_make(xs_dtype dtype, int ndim, const int64_t *shape, void *data) {
    xs_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = dtype;
    if (ndim < 0 || ndim > XS_MAX_DIMS) return t; /* data NULL: invalid */
    t.ndim = ndim;
    for (int d = 0; d < ndim; d++) t.shape[d] = shape[d];
    set_contiguous_strides(&t);
    t.data = data;
    return t;
}

xs_tensor xs_tensor_1d(xs_dtype dtype, void *data, int64_t n0) {
    int64_t s[1] = {n0};
    return xs_tensor_make(dtype, 1, s, data);
}

xs_tensor xs_tensor_2d(xs_dtype dtype, void *data, int64_t n0, int64_t n1) {
    int64_t s[2] = {n0, n1};
    return xs_tensor_make(dtype, 2, s, data);
}

xs_tensor xs_tensor_3d(xs_dtype dtype, void *data, int64_t n0, int64_t n1, int64_t n2) {
    int64_t s[3] = {n0, n1, n2};
    return xs_tensor_make(dtype, 3, s, data);
}

int64_t xs_tensor_numel(const xs_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d];
    return n;
}

size_t xs_tensor_nbytes(const xs_tensor *t) {
    return xs_dtype_row_bytes(t->dtype, xs_tensor_numel(t));
}

bool xs_tensor_is_contiguous(const xs_tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        /* A dim of size 1 never moves the pointer, so its stride is free. */
        if (t->shape[d] != 1 && t->stride[d] != s) return false;
        s *= t->shape[d];
    }
    return true;
}

bool xs_tensor_same_shape(const xs_tensor *a, const xs_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}

const char *xs_tensor_shape_str(const xs_tensor *t, char *buf, size_t n) {
    if (!buf || n == 0) return "";
    size_t used = 0;
    int w = snprintf(buf, n, "[");
    if (w > 0) used = (size_t)w;
    for (int d = 0; d < t->ndim && used < n; d++) {
        w = snprintf(buf + used, n - used, d ? ", %lld" : "%lld", (long long)t->shape[d]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

static xs_tensor invalid_view(const xs_tensor *t) {
    xs_tensor v;
    memset(&v, 0, sizeof v);
    v.dtype = t->dtype;
    v.name = t->name;
    return v;
}

/* Byte offset of `elems` elements; quantized types only move by whole blocks. */
static bool elem_byte_offset(xs_dtype t, int64_t elems, size_t *out) {
    if (xs_dtype_is_quantized(t) && elems % XS_QK) return false;
    *out = xs_dtype_row_bytes(t, elems);
    return true;
}

xs_tensor xs_tensor_slice(const xs_tensor *t, int dim, int64_t start, int64_t len) {
    if (dim < 0) dim += t->ndim;
    if (dim < 0 || dim >= t->ndim || start < 0 || len < 0 || start + len > t->shape[dim])
        return invalid_view(t);
    size_t off;
    if (!elem_byte_offset(t->dtype, start * t->stride[dim], &off)) return invalid_view(t);
    xs_tensor v = *t;
    v.shape[dim] = len;
    v.data = t->data ? (char *)t->data + off : NULL;
    return v;
}

xs_tensor xs_tensor_transpose(const xs_tensor *t, int d0, int d1) {
    if (d0 < 0) d0 += t->ndim;
    if (d1 < 0) d1 += t->ndim;
    if (d0 < 0 || d0 >= t->ndim || d1 < 0 || d1 >= t->ndim) return invalid_view(t);
    xs_tensor v = *t;
    v.shape[d0] = t->shape[d1];
    v.shape[d1] = t->shape[d0];
    v.stride[d0] = t->stride[d1];
    v.stride[d1] = t->stride[d0];
    return v;
}

xs_status xs_tensor_reshape(const xs_tensor *t, int ndim, const int64_t *shape, xs_tensor *out) {
    char a[96];
    if (ndim < 0 || ndim > XS_MAX_DIMS)
        return xs_error(XS_ERR_SHAPE, "reshape %s: %d dims (max %d)", t->name ? t->name : "tensor",
                        ndim, XS_MAX_DIMS);
    if (!xs_tensor_is_contiguous(t))
        return xs_error(XS_ERR_SHAPE, "reshape %s %s: tensor is not contiguous",
                        t->name ? t->name : "tensor", xs_tensor_shape_str(t, a, sizeof a));
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    if (n != xs_tensor_numel(t))
        return xs_error(XS_ERR_SHAPE, "reshape %s %s: %lld elements, new shape has %lld",
                        t->name ? t->name : "tensor", xs_tensor_shape_str(t, a, sizeof a),
                        (long long)xs_tensor_numel(t), (long long)n);
    if (xs_dtype_is_quantized(t->dtype) && ndim > 0 && shape[ndim - 1] % XS_QK)
        return xs_error(XS_ERR_SHAPE, "reshape %s: innermost dim %lld of a %s tensor is not a "
                        "multiple of %d", t->name ? t->name : "tensor", (long long)shape[ndim - 1],
                        xs_dtype_name(t->dtype), XS_QK);
    xs_tensor v = xs_tensor_make(t->dtype, ndim, shape, t->data);
    v.name = t->name;
    *out = v;
    return XS_OK;
}

/* ---- exact element conversions ------------------------------------------ */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float xs_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t xs_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u); /* keep sign and payload top, force quiet */
    /* Round to nearest, ties to even: add 0x7fff plus the lowest kept bit. */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float xs_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        /* zero or subnormal: m * 2^-24, exact in f32 */
        float v = (float)m * 0x1p-24f;
        return bits_f32(f32_bits(v) | sign);
    }
    if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t xs_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    x &= 0x7fffffffu;
    if (x >= 0x7f800000u) { /* inf, NaN (kept NaN: quiet bit set) */
        if (x == 0x7f800000u) return sign | 0x7c00u;
        return (uint16_t)(sign | 0x7c00u | 0x200u | ((x >> 13) & 0x3ffu));
    }
    /* 65520 = halfway between 65504 (max f16, odd mantissa) and 65536: ties to even go up. */
    if (x >= 0x477ff000u) return sign | 0x7c00u;
    if (x < 0x38800000u) { /* below 2^-14: an f16 subnormal (or zero) */
        uint32_t e = x >> 23;
        if (e < 102) return sign; /* < 2^-25: rounds to zero (2^-25 itself is a tie to 0) */
        uint32_t m = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value / 2^-24 = m * 2^(e - 126 - 23 + 23) */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q); /* q == 0x400 is the smallest normal: right encoding */
    }
    uint32_t h = ((x >> 23) - 112u) << 10 | ((x >> 13) & 0x3ffu);
    uint32_t rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++; /* carry may bump the exponent */
    return (uint16_t)(sign | h);
}

xs_status xs_convert_to_f32(float *dst, const void *src, xs_dtype t, int64_t n) {
    if (n < 0) return xs_error(XS_ERR_ARG, "convert to f32: negative count %lld", (long long)n);
    switch (t) {
    case XS_F32: memmove(dst, src, (size_t)n * 4); return XS_OK;
    case XS_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = xs_f16_to_f32(s[i]);
        return XS_OK;
    }
    case XS_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = xs_bf16_to_f32(s[i]);
        return XS_OK;
    }
    case XS_Q8_0:
    case XS_Q4_0:
        if (n % XS_QK)
            return xs_error(XS_ERR_SHAPE, "convert %s to f32: %lld values is not a whole number "
                            "of %d-value blocks", xs_dtype_name(t), (long long)n, XS_QK);
        if (t == XS_Q8_0) xs_dequantize_row_q8_0(src, dst, n);
        else xs_dequantize_row_q4_0(src, dst, n);
        return XS_OK;
    case XS_I64: {
        const int64_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return XS_OK;
    }
    case XS_I32: {
        const int32_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return XS_OK;
    }
    case XS_I8: {
        const int8_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return XS_OK;
    }
    case XS_U8:
    case XS_BOOL: {
        const uint8_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return XS_OK;
    }
    default:
        return xs_error(XS_ERR_DTYPE, "convert to f32: unknown dtype %d", (int)t);
    }
}
