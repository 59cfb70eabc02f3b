/*
 * kv_rings.c — KV rings as views into one allocation (see kv_rings.h).
 * Layout: [k0 | v0 | pos0 | k1 | v1 | pos1 | ...], each part starting at a
 * multiple of KV_RINGS_ALIGN bytes (what cudaMalloc guarantees a tensor).
 */
#include <string.h>

#include "backend/ops.h"
#include "model/kv_rings.h"

#define KV_RINGS_ALIGN 256

static size_t align_up(size_t n) {
    return (n + KV_RINGS_ALIGN - 1) / KV_RINGS_ALIGN * KV_RINGS_ALIGN;
}

static size_t ring_bytes(int64_t capacity, int64_t width, xs_dtype dtype, size_t *kv_part) {
    *kv_part = align_up(xs_dtype_row_bytes(dtype, width) * (size_t)capacity);
    return 2 * *kv_part + align_up((size_t)capacity * sizeof(int32_t));
}

size_t kv_rings_bytes(int n, int64_t capacity, int64_t width, xs_dtype dtype) {
    if (n < 1 || capacity < 1 || width < 1) return 0;
    size_t kv_part;
    return (size_t)n * ring_bytes(capacity, width, dtype, &kv_part);
}

void kv_rings_free(xs_backend *be, int n, xs_kv_cache *kv, xs_tensor *block) {
    if (kv && n > 0) memset(kv, 0, (size_t)n * sizeof *kv);
    xs_tensor_free(be, block);
}

xs_status kv_rings_alloc(xs_backend *be, int n, int64_t capacity, int64_t width, xs_dtype dtype,
                         xs_kv_cache *kv, xs_tensor *block) {
    memset(block, 0, sizeof *block);
    if (n < 1 || !kv) return xs_error(XS_ERR_ARG, "kv rings: %d rings", n);
    if (capacity <= 0 || width <= 0)
        return xs_error(XS_ERR_ARG, "kv rings: capacity %lld and width %lld must be > 0",
                        (long long)capacity, (long long)width);
    if (dtype != XS_F32 && dtype != XS_BF16 && dtype != XS_Q8_0)
        return xs_error(XS_ERR_DTYPE, "kv rings: dtype %s (expected f32, bf16 or q8_0)",
                        xs_dtype_name(dtype));
    if (dtype == XS_Q8_0 && width % XS_QK)
        return xs_error(XS_ERR_SHAPE, "kv rings: q8_0 width %lld is not a multiple of %d",
                        (long long)width, XS_QK);
    size_t kv_part;
    const size_t per = ring_bytes(capacity, width, dtype, &kv_part);
    /* the block is an i32 vector of the right byte count (per is a multiple of 256) */
    const int64_t words = (int64_t)((size_t)n * per / sizeof(int32_t));
    XS_TRY(xs_tensor_alloc(be, XS_I32, 1, &words, block));
    block->name = "kv_rings";
    memset(kv, 0, (size_t)n * sizeof *kv);
    const int64_t kshape[2] = {capacity, width};
    for (int i = 0; i < n; i++) {
        char *base = (char *)block->data + (size_t)i * per;
        xs_kv_cache *c = &kv[i];
        c->k = xs_tensor_make(dtype, 2, kshape, base);
        c->v = xs_tensor_make(dtype, 2, kshape, base + kv_part);
        c->pos = xs_tensor_make(XS_I32, 1, &capacity, base + 2 * kv_part);
        c->k.name = "kv_cache.k";
        c->v.name = "kv_cache.v";
        c->pos.name = "kv_cache.pos";
        c->capacity = capacity;
        xs_status rc = xs_kv_cache_reset(be, c);
        if (rc != XS_OK) {
            kv_rings_free(be, n, kv, block);
            return rc;
        }
    }
    return XS_OK;
}
