/*
 * ref.h — the `ref` backend's ops, exposed so that ops.c can fall back to
 * them directly for ops a host-memory backend declines.
 *
 * Each function has the signature of the matching xs_backend_iface op and
 * exactly the semantics documented in backend/backend.h. They expect the
 * dtypes and shapes the xs_op_* wrappers already checked, but still check
 * values only they can see (ids out of range, negative positions). All
 * arithmetic accumulates in double; inputs may have any strides; outputs
 * are written through their strides too (contiguous in practice).
 */
#ifndef XS_BACKEND_REF_REF_H
#define XS_BACKEND_REF_REF_H

#include "backend/backend.h"

/* ---- helpers shared by the ref files (ref_util.c) ---- */
/* Element offset (in elements) of row r of t: leading dims flattened. */
int64_t ref_row_offset(const xs_tensor *t, int64_t r);
/* Element offset of flat index i (row-major over all dims). */
int64_t ref_elem_offset(const xs_tensor *t, int64_t i);
/* Size of the innermost dim (1 for a scalar) and number of rows. */
int64_t ref_inner(const xs_tensor *t);
int64_t ref_rows(const xs_tensor *t);
/* f32 element j of row r of a (strided) f32 tensor. */
static inline float *ref_f32_at(const xs_tensor *t, int64_t row_off, int64_t j) {
    return (float *)t->data + row_off + j * t->stride[t->ndim > 0 ? t->ndim - 1 : 0];
}
/* Dequantize row r of a contiguous 2-D weight/table of any supported dtype. */
xs_status ref_weight_row(const xs_tensor *w, int64_t r, float *out);

/* ---- ops ---- */
xs_status ref_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias);
xs_status ref_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias, int stride, int dilation, int groups);
xs_status ref_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                               const xs_tensor *w, const xs_tensor *bias, int stride, int groups);
xs_status ref_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                         const xs_tensor *b, float eps);
xs_status ref_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *alpha,
                       float eps);
xs_status ref_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period);
xs_status ref_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status ref_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                       const xs_tensor *v, const xs_tensor *pos);
xs_status ref_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                        const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                        int64_t context, float scale);
/* One row of n (a multiple of 32) f32 values, stride `stride` elements, into
 * the q8_0 KV cache's blocks (backend.h: xs_quantize_row_q8_0's bytes; a
 * block with a NaN or an infinity gets d = f16 NaN, q = 0). Shared by the
 * host backends so that their cache bytes cannot differ. */
void ref_kv_quantize_row_q8_0(const float *x, int64_t stride, void *dst, int64_t n);
xs_status ref_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha);
xs_status ref_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status ref_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status ref_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                        const xs_tensor *ids);
xs_status ref_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status ref_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status ref_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b);
xs_status ref_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status ref_fill(xs_backend *be, xs_tensor *y, float value);
xs_status ref_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits);
xs_status ref_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits, float temp,
                          int top_k, uint64_t seed, uint64_t stream, uint64_t counter,
                          const xs_tensor *counter_t);
/* counter + counter_t[0] (i32 or i64 [1] in host memory; NULL: counter). */
uint64_t ref_sample_counter(uint64_t counter, const xs_tensor *counter_t);

#endif
