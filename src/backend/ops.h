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

/* ---- row-batched ops (ops_rows.c) ----
 * The B rows of a batched step, row b with its own cache caches[b] (distinct
 * caches, all of one dtype, capacity and width), position pos[b] (i32 [B])
 * and sampling settings: the same values as a loop over b of the single-row
 * op, in one backend call where the backend implements it. Otherwise, or
 * while an op hook (diagnose) or fault injection is active, or with
 * XSWARM_ROWOPS=0, the wrapper runs that loop of single-row xs_op_* calls
 * (so hooks and faults see the usual per-row ops).
 * k, v, q, y: f32 [B, W] (k, v, q may be strided views; y contiguous). */
xs_status xs_op_kv_store_rows(xs_backend *be, xs_kv_cache *const *caches, int B,
                              const xs_tensor *k, const xs_tensor *v, const xs_tensor *pos);
xs_status xs_op_attention_rows(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                               const xs_kv_cache *const *caches, int B, const xs_tensor *pos,
                               int n_heads, int64_t context, float scale);
/* ids i32 [B] (contiguous) <- one pick per row of logits f32 [B, V]: row b
 * is xs_op_argmax when rows[b].greedy, else xs_op_sample_topk_at(temp, top_k,
 * seed, stream, counter 0, counter_t = counters[b]) (counters: i32 [B] in
 * backend memory, or NULL for counter 0). */
xs_status xs_op_sample_rows(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                            const xs_sample_row *rows, uint64_t stream,
                            const xs_tensor *counters);
/* Whether the *_rows wrappers call the backend's row-batched ops now (the
 * backend has them, XSWARM_ROWOPS is not 0, no op hook or fault is active).
 * Model code uses it to batch the rope of all rows the same way. */
bool xs_op_rows_native(xs_backend *be);

/* ---- fused ops (ops_fused.c) ----
 * Fewer kernels for the LM step: each is defined as, and on a backend
 * without it (or while an op hook or fault injection is active, or with
 * XSWARM_FUSE=0) runs as, the composition of single ops named below; a
 * backend's fused kernel gives the same values (bit for bit on cuda).
 *
 * x += h; y = rms_norm(x; alpha, eps)  (xs_op_add then xs_op_rms_norm).
 * x, h: f32 of one shape, x contiguous (it is written); y contiguous. */
xs_status xs_op_add_rms_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                             const xs_tensor *alpha, float eps);
/* x += h; y = layer_norm(x; w, b, eps)  (b may be NULL). */
xs_status xs_op_add_layer_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                               const xs_tensor *w, const xs_tensor *b, float eps);
/* y[n, D] = tables[0][ids[0]] + tables[1][ids[1]] + ... (left to right),
 * or y += each term in turn when `accumulate`. Composition: embedding of
 * term 0 into y (unless accumulate), then for each further term an
 * embedding into `scratch` (f32 [n, D], contiguous; unused by the fused
 * kernel, so it may be NULL only when the composition needs none: count 1
 * and !accumulate) and xs_op_add(y, y, scratch). count 1..1024; each table
 * 2-D [V_i, D] of any embedding dtype; ids[i] i32 [n]. */
xs_status xs_op_embedding_sum(xs_backend *be, xs_tensor *y, int count,
                              const xs_tensor *const *tables, const xs_tensor *const *ids,
                              bool accumulate, xs_tensor *scratch);
/* Mimi's layer scale and residual, then the next norm:
 * h *= s; x += h; y = layer_norm(x; w, b, eps)  (xs_op_mul(h, h, s),
 * xs_op_add(x, x, h), then xs_op_layer_norm unless w is NULL: then only
 * h and x are written and y may be NULL). x, h: contiguous f32 [.., D] of
 * one shape, both written; s, w (b): contiguous f32 [D] (b may be NULL). */
xs_status xs_op_add_scaled_layer_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, xs_tensor *h,
                                      const xs_tensor *s, const xs_tensor *w, const xs_tensor *b,
                                      float eps);
/* y = gelu(x . w^T + bias)  (xs_op_matmul then xs_op_gelu(y, y)): the
 * feed-forward's first linear with its activation in one kernel where the
 * backend has it. Arguments as xs_op_matmul's (y contiguous). */
xs_status xs_op_matmul_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                            const xs_tensor *bias);
/* y [M, N_0 + .. + N_{count-1}] = [x . ws[0]^T | x . ws[1]^T | ..]: Mimi's
 * q, k and v projections in one launch where the backend has it. Column
 * block i is, bit for bit, what xs_op_matmul(x, ws[i]) gives (no bias).
 * Composition: for each i, xs_op_matmul into scratch viewed as a
 * contiguous [M, N_i], then xs_op_copy into y's column block. count 1..4;
 * x f32 [M, K]; every ws[i] 2-D [N_i, K] (any matmul weight dtype); y
 * contiguous f32 [M, sum N_i]; scratch contiguous f32 of >= M * max N_i
 * values (its contents are left undefined). */
xs_status xs_op_matmul_cat(xs_backend *be, xs_tensor *y, const xs_tensor *x, int count,
                           const xs_tensor *const *ws, xs_tensor *scratch);
/* A streaming conv's input (Mimi's SEANet): xin [C, P + T] = [ctx |
 * act(x)], then ctx = the last P columns of xin (the next call's context);
 * act = ELU(alpha) when `elu`, else identity. ctx [C, P] and x [C, T]:
 * f32 2-D views (strided rows allowed, P >= 1, T >= 1), xin contiguous;
 * none overlap. scratch (used only when elu): contiguous f32 [C, T], may
 * be x itself; its contents are undefined afterwards.
 * Composition: [xs_op_elu(scratch, x, alpha)], xs_op_copy(xin[:, :P], ctx),
 * xs_op_copy(xin[:, P:], elu ? scratch : x), xs_op_copy(ctx, xin[:, T:]). */
xs_status xs_op_conv_input(xs_backend *be, xs_tensor *xin, xs_tensor *ctx, const xs_tensor *x,
                           bool elu, float alpha, xs_tensor *scratch);
/* The overlap-add of a K = 2S transposed conv computed as a matmul (Mimi's
 * SEANet decoder): col [T, C*2S] holds, per input step t and channel c,
 * the 2S taps; y [C, T*S] block t = taps 0..S-1 of step t + taps S..2S-1
 * of step t-1 (of the previous call: tail [C, S] for t = 0), then tail =
 * taps S..2S-1 of step T-1. col, y contiguous f32; tail a 2-D f32 view;
 * scratch contiguous f32 [C, T*S] (contents undefined afterwards).
 * Composition: xs_op_copy(y blocks <- taps 0..S-1), xs_op_copy(scratch
 * block 0 <- tail), xs_op_copy(scratch blocks 1.. <- taps S.. of steps
 * 0..T-2) when T > 1, xs_op_add(y, y, scratch), xs_op_copy(tail <- taps
 * S.. of step T-1). */
xs_status xs_op_overlap_add(xs_backend *be, xs_tensor *y, const xs_tensor *col, xs_tensor *tail,
                            xs_tensor *scratch);
/* y = r + conv1d(x)  (xs_op_conv1d(y, x, w, bias, ...) then xs_op_add(y,
 * r, y)): a residual block's skip added as the conv stores its outputs.
 * Arguments as xs_op_conv1d's; r: contiguous f32 of y's shape, not y. */
xs_status xs_op_conv1d_add(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                           const xs_tensor *bias, int stride, int dilation, int groups,
                           const xs_tensor *r);
/* Fusion switch: -1 = from XSWARM_FUSE (0 disables; read once, the
 * default), 0 = off, 1 = on (tests: fused vs composition in one process). */
void xs_op_fuse_set(int mode);
/* Whether the fused wrappers would call be's fused `op` now
 * (XS_OP_FUSED_ADD_NORM, XS_OP_FUSED_EMBEDDING_SUM,
 * XS_OP_FUSED_ADD_SCALED_NORM, XS_OP_FUSED_MATMUL_GELU, XS_OP_FUSED_MATMUL_CAT,
 * XS_OP_FUSED_CONV_INPUT, XS_OP_FUSED_OVERLAP_ADD or XS_OP_FUSED_CONV1D_ADD).
 * XSWARM_FUSE_MIMI=0 turns off only the last six (Mimi's), for an A/B of
 * the codec with the LM's fusions kept. */
bool xs_op_fused_native(xs_backend *be, xs_op op);

#endif
