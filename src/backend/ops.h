/*
 * ops.h — what model code calls. Each wrapper checks shapes and dtypes
 * (XS_ERR_SHAPE / XS_ERR_DTYPE naming the tensors), then dispatches to the
 * backend, falling back to `ref` for ops a host backend declines.
 * Semantics of every op: see backend.h.
 */
#ifndef XS_BACKEND_OPS_H
#define XS_BACKEND_OPS_H

#include "backend/backend.h"

/* ---- backend memory for activations and state ---- */
/* Allocate a contiguous tensor in be's memory (contents undefined). */
xs_status xs_tensor_alloc(xs_backend *be, xs_dtype dtype, int ndim, const int64_t *shape,
                          xs_tensor *out);
void xs_tensor_free(xs_backend *be, xs_tensor *t); /* safe on a zeroed tensor */
xs_status xs_tensor_upload(xs_backend *be, xs_tensor *dst, const void *host);   /* whole tensor */
xs_status xs_tensor_download(xs_backend *be, void *host, const xs_tensor *src); /* contiguous src */
/* Host copy of a weight for be (see weight_prepare). */
xs_status xs_backend_weight(xs_backend *be, const xs_tensor *host, xs_tensor *out);
void xs_backend_weight_release(xs_backend *be, xs_tensor *w);

/* KV cache of `capacity` slots of `width` values; k and v in `dtype`: XS_F32
 * (exact), XS_BF16 (half the memory and bandwidth; kv_store rounds to
 * nearest even) or XS_Q8_0 (34/32 bytes a value; width a multiple of 32,
 * rounding in backend.h). xs_kv_cache_alloc is the f32 shorthand. */
xs_status xs_kv_cache_alloc_dtype(xs_backend *be, int64_t capacity, int64_t width, xs_dtype dtype,
                                  xs_kv_cache *out);
xs_status xs_kv_cache_alloc(xs_backend *be, int64_t capacity, int64_t width, xs_kv_cache *out);
/* Bytes of k + v (not pos) of one cache. */
size_t xs_kv_cache_bytes(const xs_kv_cache *c);
xs_status xs_kv_cache_reset(xs_backend *be, xs_kv_cache *c); /* all slots empty */
void xs_kv_cache_free(xs_backend *be, xs_kv_cache *c);

/* ---- ops ---- */
xs_status xs_op_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                       const xs_tensor *bias);
xs_status xs_op_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                       const xs_tensor *bias, int stride, int dilation, int groups);
xs_status xs_op_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                                 const xs_tensor *w, const xs_tensor *bias, int stride,
                                 int groups);
xs_status xs_op_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                           const xs_tensor *b, float eps);
xs_status xs_op_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                         const xs_tensor *alpha, float eps);
xs_status xs_op_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period);
xs_status xs_op_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status xs_op_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                         const xs_tensor *v, const xs_tensor *pos);
xs_status xs_op_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                          const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                          int64_t context, float scale);
xs_status xs_op_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha);
xs_status xs_op_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status xs_op_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status xs_op_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                          const xs_tensor *ids);
xs_status xs_op_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status xs_op_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status xs_op_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b);
xs_status xs_op_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status xs_op_fill(xs_backend *be, xs_tensor *y, float value);
xs_status xs_op_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits);
xs_status xs_op_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                            float temp, int top_k, uint64_t seed, uint64_t stream,
                            uint64_t counter);
/* The same with the step counter = counter + counter_t[0], counter_t an i32
 * or i64 [1] tensor in be's memory (or NULL): a CUDA graph replays it with
 * whatever step the tensor holds (see backend.h). */
xs_status xs_op_sample_topk_at(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                               float temp, int top_k, uint64_t seed, uint64_t stream,
                               uint64_t counter, const xs_tensor *counter_t);

#endif
