/*
 * kv_rings.h — several KV rings (backend.h xs_kv_cache) of one owner in ONE
 * backend allocation.
 *
 * Why: a device allocator rounds every large allocation up to its page
 * (2 MiB for cudaMalloc). The 7B's q8_0 ring of one layer is 12.45 MiB,
 * so 64 separate k / v tensors per session waste ~99 MiB of GPU memory per
 * session (1.55 MiB each) — the difference between 79 and 80+ sessions at
 * full context on an 80 GB card. One block wastes at most one page.
 *
 * The rings are plain views into the block: every op sees exactly the
 * tensors xs_kv_cache_alloc_dtype would make (same dtype, shape, contiguous
 * rows, 256-byte aligned starts), so results do not change. Free them with
 * kv_rings_free only (never xs_kv_cache_free on a view).
 */
#ifndef XS_MODEL_KV_RINGS_H
#define XS_MODEL_KV_RINGS_H

#include <stdint.h>

#include "backend/backend.h"

/* n rings of [capacity, width] k and v in dtype (f32, bf16 or q8_0) plus
 * i32 [capacity] positions, all empty (pos -1; k and v not cleared, as
 * with xs_kv_cache_alloc_dtype). kv[0..n) get the views, *block the one
 * allocation. On failure nothing stays allocated. */
xs_status kv_rings_alloc(xs_backend *be, int n, int64_t capacity, int64_t width, xs_dtype dtype,
                         xs_kv_cache *kv, xs_tensor *block);
/* Bytes kv_rings_alloc allocates for those rings (with the alignment). */
size_t kv_rings_bytes(int n, int64_t capacity, int64_t width, xs_dtype dtype);
/* Frees the block and clears the n views. */
void kv_rings_free(xs_backend *be, int n, xs_kv_cache *kv, xs_tensor *block);

#endif
