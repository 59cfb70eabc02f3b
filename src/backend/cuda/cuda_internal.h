/*
 * cuda_internal.h — private to the CUDA backend (included by its .cu files
 * only, compiled as CUDA C++ by nvcc).
 *
 * Design rules every op follows, so that a whole frame can later be
 * captured as a CUDA graph:
 *  - ops only enqueue kernels on the backend's one stream; they never
 *    synchronize and never read device values on the host;
 *  - positions, ids and cache slots are read by the kernels from device
 *    tensors;
 *  - errors that depend on device values (an id out of range, a negative
 *    position) cannot be returned by the op: the kernel records the first
 *    one in a small device record (cu_err_rec) and the next download() or
 *    synchronize() turns it into an xs_error status.
 *  - inputs may be strided views: kernels take a cu_view (shape + strides
 *    by value) and compute offsets themselves; outputs are contiguous
 *    unless backend.h says otherwise (copy, fill, rope).
 */
#ifndef XS_BACKEND_CUDA_INTERNAL_H
#define XS_BACKEND_CUDA_INTERNAL_H

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "backend/cuda/cuda_pdl.cuh"

extern "C" {
#include "backend/backend.h"
#include "core/status.h"
#include "core/tensor.h"
}

/* ---- device-value errors ---------------------------------------------------------- */
enum {
    CU_ERR_NONE = 0,
    CU_ERR_EMBED_ID = 1,  /* a = index, b = id, c = table rows */
    CU_ERR_KV_POS = 2,    /* a = row, b = position */
};

typedef struct cu_err_rec {
    int code;  /* first error, CU_ERR_*; 0 = none */
    int pad;
    long long a, b, c;
} cu_err_rec;

/* Record an error unless one is already there (first one wins). */
__device__ static inline void cu_report(cu_err_rec *e, int code, long long a, long long b,
                                        long long c) {
    if (atomicCAS(&e->code, 0, -1) == 0) {
        e->a = a;
        e->b = b;
        e->c = c;
        __threadfence();
        atomicExch(&e->code, code);
    }
}

/* ---- strided views passed to kernels by value ---------------------------------- */
typedef struct cu_view {
    int ndim;
    int64_t shape[XS_MAX_DIMS];
    int64_t stride[XS_MAX_DIMS];
} cu_view;

static inline cu_view cu_view_of(const xs_tensor *t) {
    cu_view v;
    v.ndim = t->ndim;
    for (int d = 0; d < XS_MAX_DIMS; d++) {
        v.shape[d] = d < t->ndim ? t->shape[d] : 1;
        v.stride[d] = d < t->ndim ? t->stride[d] : 0;
    }
    return v;
}

/* Offset (elements) of flat row-major index i. */
__device__ static inline int64_t cu_elem_off(const cu_view &v, int64_t i) {
    int64_t off = 0;
    for (int d = v.ndim - 1; d >= 0; d--) {
        off += (i % v.shape[d]) * v.stride[d];
        i /= v.shape[d];
    }
    return off;
}

/* Offset of row r (leading dims flattened) and the innermost stride. */
__device__ static inline int64_t cu_row_off(const cu_view &v, int64_t r) {
    int64_t off = 0;
    for (int d = v.ndim - 2; d >= 0; d--) {
        off += (r % v.shape[d]) * v.stride[d];
        r /= v.shape[d];
    }
    return off;
}
__device__ static inline int64_t cu_inner_stride(const cu_view &v) {
    return v.ndim ? v.stride[v.ndim - 1] : 0;
}

static inline int64_t cu_inner(const xs_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
static inline int64_t cu_rows(const xs_tensor *t) {
    int64_t in = cu_inner(t);
    return in ? xs_tensor_numel(t) / in : 0;
}

/* ---- weights: dequantize one element in registers ------------------------------- */
/* Element c of a weight row starting at `row` (bytes), exactly as
 * xs_convert_to_f32 / xs_dequantize_row_* compute it (d * q in f32). */
template <int DT>
__device__ static inline float cu_weight_at(const unsigned char *row, int64_t c) {
    if (DT == XS_F32) return ((const float *)row)[c];
    if (DT == XS_F16) return __half2float(__ushort_as_half(((const unsigned short *)row)[c]));
    if (DT == XS_BF16)
        return __uint_as_float((unsigned)((const unsigned short *)row)[c] << 16);
    if (DT == XS_Q8_0) {
        const unsigned char *b = row + (c >> 5) * 34;
        const float d = __half2float(__ushort_as_half(*(const unsigned short *)b));
        return __fmul_rn(d, (float)(signed char)b[2 + (c & 31)]);
    }
    /* XS_Q4_0: low nibbles hold elements 0..15, high nibbles 16..31 */
    const unsigned char *b = row + (c >> 5) * 18;
    const float d = __half2float(__ushort_as_half(*(const unsigned short *)b));
    const int j = (int)(c & 31);
    const int byte = b[2 + (j & 15)];
    const int q = (j < 16 ? (byte & 15) : (byte >> 4)) - 8;
    return __fmul_rn(d, (float)q);
}

/* ---- backend context ---------------------------------------------------------- */
#define CU_MAX_ROPE_TABLES 16

typedef struct cu_rope_table {
    int64_t dim;       /* head dim D */
    float max_period;
    float *freq;       /* device f32 [D/2] */
} cu_rope_table;

typedef struct cu_ctx {
    int device;
    cudaStream_t stream;
    cu_err_rec *err;          /* device */
    void *scratch;            /* device work space (sampling candidates), grows */
    size_t scratch_bytes;
    cu_rope_table rope[CU_MAX_ROPE_TABLES];
    int n_rope;
    bool matmul_plain;        /* XSWARM_CUDA_NO_VEC set: element-wise matmul only (tests) */
    /* Graphs (cuda_graph.cu). A recorded graph keeps the scratch pointer it
     * saw, so an outgrown work buffer is retired (freed at destroy), never
     * freed while a graph may still use it; growth doubles, so few retire. */
    bool capturing;
    void *retired[64];
    int n_retired;
    char name[256];
    /* Lanes (cuda_lanes.cu): `stream`, `scratch` and `scratch_bytes` above
     * are the current lane's; the others are parked here. NULL: lane 0 only.
     * Lanes run at the same time: a new device buffer that ops write must be
     * per lane too (like `scratch`), or ops on two lanes race on it. */
    struct cu_lanes *lanes;
    struct cu_wpool *wpool; /* model weights, packed (cuda_weight_pool.cu) */
} cu_ctx;

static inline cu_ctx *cu_ctx_of(xs_backend *be) { return (cu_ctx *)be->ctx; }

/* lanes hooks (cuda_lanes.cu, backend.h xs_lanes_iface) */
extern const xs_lanes_iface cu_lanes_iface;
/* Back to lane 0, then free the other lanes (streams, events, work buffers). */
void cu_lanes_destroy(cu_ctx *c);

/* Weights packed into shared device chunks (cuda_weight_pool.cu): alloc
 * returns 256-byte aligned memory or NULL; free returns false when ptr is not
 * a pool weight; destroy frees every chunk. */
typedef struct cu_wpool cu_wpool;
void *cu_wpool_alloc(cu_ctx *c, size_t nbytes);
bool cu_wpool_free(cu_ctx *c, void *ptr);
void cu_wpool_destroy(cu_ctx *c);

/* Status of the last launch ("cuda <what>: <cuda error>"); XS_OK if none. */
xs_status cu_check_launch(const char *what);
/* A device work buffer of at least n bytes (may reallocate; not during capture:
 * then it fails, and the capture falls back to eager). */
xs_status cu_scratch(cu_ctx *c, size_t n, void **out);

static inline unsigned cu_blocks(int64_t n, int threads) {
    return (unsigned)((n + threads - 1) / threads);
}

/* ---- ops (one file per family) ------------------------------------------------ */
xs_status cu_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                    const xs_tensor *bias);
xs_status cu_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                       const xs_tensor *ids);
xs_status cu_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                    const xs_tensor *bias, int stride, int dilation, int groups);
xs_status cu_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                              const xs_tensor *w, const xs_tensor *bias, int stride, int groups);
xs_status cu_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                        const xs_tensor *b, float eps);
xs_status cu_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *alpha,
                      float eps);
xs_status cu_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cu_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period);
xs_status cu_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                      const xs_tensor *v, const xs_tensor *pos);
xs_status cu_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                       const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                       int64_t context, float scale);
xs_status cu_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha);
xs_status cu_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cu_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cu_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status cu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status cu_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b);
xs_status cu_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cu_fill(xs_backend *be, xs_tensor *y, float value);
xs_status cu_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits);
/* graph ops (cuda_graph.cu), see backend.h */
xs_status cu_graph_begin(xs_backend *be);
xs_status cu_graph_end(xs_backend *be, bool programmatic, void **graph);
xs_status cu_graph_launch(xs_backend *be, void *graph);
void cu_graph_free(xs_backend *be, void *graph);
xs_status cu_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits, float temp,
                         int top_k, uint64_t seed, uint64_t stream, uint64_t counter,
                         const xs_tensor *counter_t);
/* row-batched ops (backend.h *_rows): cuda_attention.cu, cuda_sample.cu */
xs_status cu_kv_store_rows(xs_backend *be, xs_kv_cache *const *caches, int B, const xs_tensor *k,
                           const xs_tensor *v, const xs_tensor *pos);
xs_status cu_attention_rows(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                            const xs_kv_cache *const *caches, int B, const xs_tensor *pos,
                            int n_heads, int64_t context, float scale);
xs_status cu_sample_rows(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                         const xs_sample_row *rows, uint64_t stream, const xs_tensor *counters);
/* fused ops (backend.h add_norm, embedding_sum): cuda_norm.cu, cuda_fused.cu */
xs_status cu_add_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                      const xs_tensor *w, const xs_tensor *b, float eps, bool layer);
xs_status cu_embedding_sum(xs_backend *be, xs_tensor *y, int count,
                           const xs_tensor *const *tables, const xs_tensor *const *ids,
                           bool accumulate);
/* Mimi's fused ops (backend.h add_scaled_norm, matmul_gelu): cuda_norm.cu,
 * cuda_sgemm.cu */
xs_status cu_add_scaled_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, xs_tensor *h,
                             const xs_tensor *s, const xs_tensor *w, const xs_tensor *b,
                             float eps);
xs_status cu_matmul_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                         const xs_tensor *bias);
xs_status cu_matmul_cat(xs_backend *be, xs_tensor *y, const xs_tensor *x, int count,
                        const xs_tensor *const *ws, xs_tensor *scratch); /* cuda_mimi_fused.cu */
xs_status cu_conv_input(xs_backend *be, xs_tensor *xin, xs_tensor *ctx, const xs_tensor *x,
                        bool elu, float alpha); /* cuda_mimi_fused.cu */
xs_status cu_overlap_add(xs_backend *be, xs_tensor *y, const xs_tensor *col,
                         xs_tensor *tail); /* cuda_mimi_fused.cu */
xs_status cu_conv1d_add(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                        const xs_tensor *bias, int stride, int dilation, int groups,
                        const xs_tensor *r); /* cuda_conv.cu */

#endif
