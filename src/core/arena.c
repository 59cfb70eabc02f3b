/*
 * arena.c — bump allocator. One malloc at init, pointer bumps after, one
 * free at the end; reset poisons the memory (0xaa) in debug builds so that
 * a read of scratch left from an earlier frame shows up as garbage, not as
 * plausible stale numbers.
 */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int xs_arena_init(xs_arena *a, size_t size) {
    a->base = NULL;
    a->size = a->used = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) return -1;
    a->base = p;
    a->size = size;
#ifndef NDEBUG
    memset(a->base, 0xaa, size);
#endif
    return 0;
}

void *xs_arena_alloc(xs_arena *a, size_t n, size_t align) {
    if (!a->base) return NULL;
    if (align == 0) align = 1;
    if (align & (align - 1)) return NULL; /* not a power of two */
    uintptr_t start = (uintptr_t)a->base + a->used;
    uintptr_t aligned = (start + (align - 1)) & ~(uintptr_t)(align - 1);
    size_t off = (size_t)(aligned - (uintptr_t)a->base);
    if (off > a->size || n > a->size - off) return NULL;
    a->used = off + n;
    return a->base + off;
}

void xs_arena_reset(xs_arena *a) {
#ifndef NDEBUG
    if (a->base) memset(a->base, 0xaa, a->used);
#endif
    a->used = 0;
}

void xs_arena_free(xs_arena *a) {
    free(a->base);
    a->base = NULL;
    a->size = a->used = 0;
}
