/*
 * cuda_weight_pool.cu — model weights packed into a few large device
 * allocations.
 *
 * Why: the driver rounds every cudaMalloc up to its page size (2 MiB for
 * these sizes), so the ~700 tensors of Moshi 7B, one allocation each, lost
 * 0.31 GiB of the card to rounding (XSWARM_CUDA_ALLOC_LOG=1 on an H100: 9.48
 * GiB asked, 9.79 GiB taken). Packed, a weight costs its bytes plus at most
 * 255 bytes of alignment.
 *
 * How: chunks are bump-allocated, first fit over every chunk's tail; a new
 * chunk is half of what the pool holds (2..256 MiB, never less than the
 * weight), so a tiny test model takes a few MiB and the last chunk's unused
 * tail stays small (Moshi 7B q8_0: 61 MiB over its 7.61 GiB, from the
 * logged sizes). A chunk counts its live weights and is freed with its
 * last one. Weights are placed and released on the loading thread only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"

#define WP_ALIGN 256                      /* cudaMalloc's own alignment */
#define WP_PAGE ((size_t)2 << 20)
#define WP_CHUNK_MAX ((size_t)256 << 20)

typedef struct wp_chunk {
    char *base;
    size_t size, used;
    int live;
} wp_chunk;

struct cu_wpool {
    wp_chunk *c;
    int n, cap;
    size_t total; /* bytes of chunks held */
};

static size_t wp_round(size_t n, size_t a) { return (n + a - 1) / a * a; }

void *cu_wpool_alloc(cu_ctx *ctx, size_t nbytes) {
    if (!ctx->wpool && !(ctx->wpool = (cu_wpool *)calloc(1, sizeof *ctx->wpool))) return NULL;
    cu_wpool *p = ctx->wpool;
    const size_t need = wp_round(nbytes ? nbytes : 1, WP_ALIGN);
    for (int i = 0; i < p->n; i++) {
        wp_chunk *ch = &p->c[i];
        if (ch->size - ch->used >= need) {
            void *r = ch->base + ch->used;
            ch->used += need;
            ch->live++;
            return r;
        }
    }
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        wp_chunk *nc = (wp_chunk *)realloc(p->c, (size_t)cap * sizeof *nc);
        if (!nc) return NULL;
        p->c = nc;
        p->cap = cap;
    }
    size_t size = p->total / 2;
    if (size > WP_CHUNK_MAX) size = WP_CHUNK_MAX;
    if (size < need) size = need;
    size = wp_round(size, WP_PAGE);
    void *base = NULL;
    if (cudaMalloc(&base, size) != cudaSuccess) {
        cudaGetLastError();
        /* no room for a whole chunk: the weight alone may still fit */
        const size_t alone = wp_round(need, WP_PAGE);
        if (size == alone || cudaMalloc(&base, alone) != cudaSuccess) {
            cudaGetLastError();
            return NULL;
        }
        size = alone;
    }
    if (getenv("XSWARM_CUDA_ALLOC_LOG")) fprintf(stderr, "cuda alloc: weight chunk %zu bytes\n", size);
    p->c[p->n++] = (wp_chunk){(char *)base, size, need, 1};
    p->total += size;
    return base;
}

bool cu_wpool_free(cu_ctx *ctx, void *ptr) {
    cu_wpool *p = ctx->wpool;
    if (!p || !ptr) return false;
    for (int i = 0; i < p->n; i++) {
        wp_chunk *ch = &p->c[i];
        if ((char *)ptr < ch->base || (char *)ptr >= ch->base + ch->size) continue;
        if (--ch->live == 0) {
            cudaFree(ch->base); /* synchronizes: kernels still reading it finish first */
            p->total -= ch->size;
            p->c[i] = p->c[--p->n];
        }
        return true;
    }
    return false;
}

void cu_wpool_destroy(cu_ctx *ctx) {
    cu_wpool *p = ctx->wpool;
    if (!p) return;
    for (int i = 0; i < p->n; i++) cudaFree(p->c[i].base);
    free(p->c);
    free(p);
    ctx->wpool = NULL;
}
