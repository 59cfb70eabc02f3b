/*
 * cuda_weight_pool.cu — model weights packed into shared 32 MiB device
 * allocations.
 *
 * Why: the driver rounds every cudaMalloc up to its page size (2 MiB for
 * these sizes), so the ~700 tensors of Moshi 7B, one allocation each, lost
 * 0.31 GiB of the card to rounding (XSWARM_CUDA_ALLOC_LOG=1 on an H100: 9.48
 * GiB asked, 9.79 GiB taken). Packed, a weight costs its bytes plus at most
 * 255 bytes of alignment.
 *
 * How: chunks of 32 MiB (or the weight's size rounded to the page, if
 * larger) are bump-allocated, first fit over every chunk's tail, so small
 * weights fill what the large ones leave. Fixed-size chunks keep the last
 * chunk's unused tail small: Moshi 7B q8_0 loses ~95 MiB over its 7.61 GiB
 * (from the logged sizes; growing chunks lost 61-177 MiB depending on the
 * order of sizes). A chunk counts its live weights and is freed with its
 * last one. Weights are placed and released on the loading thread only.
 */
#include <stdio.h>
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"

#define WP_ALIGN 256                      /* cudaMalloc's own alignment */
#define WP_PAGE ((size_t)2 << 20)
#define WP_CHUNK ((size_t)32 << 20)

typedef struct wp_chunk {
    char *base;
    size_t size, used;
    int live;
} wp_chunk;

struct cu_wpool {
    wp_chunk *c;
    int n, cap;
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
    size_t size = wp_round(need > WP_CHUNK ? need : WP_CHUNK, WP_PAGE);
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
