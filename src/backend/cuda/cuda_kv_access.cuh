/*
 * cuda_kv_access.cuh — how the CUDA kernels read and write a ring KV cache
 * (backend.h xs_kv_cache), shared by kv_store (cuda_kv_store.cu) and
 * attention (cuda_attention.cu).
 *
 * The cache may be f32 or bf16: kv_dev_store rounds exactly as
 * xs_f32_to_bf16 (nearest even, NaN kept quiet) and kv_dev_load widens
 * exactly, so a bf16 cache holds the same bits as on ref and cpu. A q8_0
 * cache is read through kv_at as f16 d times q, exact in f32 as on the host.
 */
#ifndef XS_CUDA_KV_ACCESS_CUH
#define XS_CUDA_KV_ACCESS_CUH

#include <string.h>

#include "backend/cuda/cuda_internal.h"

/* ---- cache element access (f32, bf16 stored as uint16_t, or q8_0 blocks) ------------ */

/* A Q8_0 block as core/quant.h lays it out (34 bytes, 2-byte aligned). */
struct cu_kv_q8 {
    uint16_t d;
    int8_t qs[XS_QK];
};
static_assert(sizeof(cu_kv_q8) == 34, "q8_0 block must be 34 bytes");

__device__ static inline float kv_dev_load(const float *p) { return *p; }
__device__ static inline float kv_dev_load(const uint16_t *p) {
    return __uint_as_float((uint32_t)*p << 16);
}
__device__ static inline void kv_dev_store(float *p, float x) { *p = x; }
__device__ static inline void kv_dev_store(uint16_t *p, float x) {
    const uint32_t u = __float_as_uint(x);
    *p = (u & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((u >> 16) | 0x0040u)
                                         : (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Element (slot s, column c) of a cache tensor as f32. q8_0 tensors are
 * contiguous (tensor.h): flat element i is value i % 32 of block i / 32. */
template <typename KT>
__device__ static inline float kv_at(const KT *base, const cu_view &v, int64_t s, int64_t c) {
    return kv_dev_load(&base[s * v.stride[0] + c * v.stride[1]]);
}
__device__ static inline float kv_at(const cu_kv_q8 *base, const cu_view &v, int64_t s,
                                     int64_t c) {
    const int64_t i = s * v.stride[0] + c;
    const cu_kv_q8 *b = base + (i >> 5);
    return __half2float(__ushort_as_half(b->d)) * (float)b->qs[i & 31];
}

/* ---- rows: each row's own cache ------------------------------------------------ */
/*
 * The row-batched ops (backend.h *_rows) give kernels the per-row cache
 * pointers by value, in the launch parameters (graph-safe: no upload inside
 * a recorded piece; 24 bytes a row keeps a launch of CU_ROWS_CHUNK rows well
 * under the 4 KB parameter limit). More rows: several launches. The caches
 * are alike (ops_rows.c) and contiguous (checked here), so one view of
 * row 0's k and v serves every row.
 */
#define CU_ROWS_CHUNK 96

struct cu_rows_kv {
    const void *k[CU_ROWS_CHUNK];
    const void *v[CU_ROWS_CHUNK];
    int32_t *pos[CU_ROWS_CHUNK];
};

/* Row b's cache pointers for rows [b0, b0 + n). */
static inline cu_rows_kv rows_kv(const xs_kv_cache *const *caches, int b0, int n) {
    cu_rows_kv r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < n; i++) {
        r.k[i] = caches[b0 + i]->k.data;
        r.v[i] = caches[b0 + i]->v.data;
        r.pos[i] = (int32_t *)caches[b0 + i]->pos.data;
    }
    return r;
}

/* Whether every cache is laid out as the rows kernels index it. */
static inline bool rows_contiguous(const xs_kv_cache *const *caches, int B) {
    for (int b = 0; b < B; b++) {
        const xs_kv_cache *c = caches[b];
        if (!xs_tensor_is_contiguous(&c->k) || !xs_tensor_is_contiguous(&c->v) ||
            !xs_tensor_is_contiguous(&c->pos))
            return false;
    }
    return true;
}

#endif
