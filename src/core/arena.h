/*
 * arena.h — bump allocator for per-model / per-session scratch on the host.
 * Reset fills the memory with 0xaa in debug builds so stale reads show.
 */
#ifndef XS_CORE_ARENA_H
#define XS_CORE_ARENA_H

#include <stddef.h>

typedef struct xs_arena {
    unsigned char *base;
    size_t size, used;
} xs_arena;

int xs_arena_init(xs_arena *a, size_t size); /* 0 on success */
void *xs_arena_alloc(xs_arena *a, size_t n, size_t align); /* NULL when full */
void xs_arena_reset(xs_arena *a);
void xs_arena_free(xs_arena *a);

#endif
