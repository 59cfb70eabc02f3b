/*
 * test_core_arena.c — bump allocation, alignment, exhaustion, reset.
 */
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "testutil.h"

int main(void) {
    xs_arena a;
    CHECK(xs_arena_init(&a, 1000) == 0 && a.base && a.size == 1000 && a.used == 0, "init");
    char *p = xs_arena_alloc(&a, 3, 1);
    float *f = xs_arena_alloc(&a, 16 * sizeof(float), 64);
    CHECK(p && f && ((uintptr_t)f % 64) == 0, "aligned allocation");
    CHECK((char *)f >= p + 3, "no overlap");
    memset(f, 0, 16 * sizeof(float));
    CHECK(xs_arena_alloc(&a, 8, 3) == NULL, "non power-of-two alignment refused");
    CHECK(xs_arena_alloc(&a, 2000, 1) == NULL, "too large -> NULL");
    size_t used = a.used;
    CHECK(xs_arena_alloc(&a, (size_t)-1, 1) == NULL && a.used == used, "huge size -> NULL, unchanged");
    void *rest = xs_arena_alloc(&a, a.size - a.used, 1);
    CHECK(rest != NULL && a.used == a.size, "fill exactly");
    CHECK(xs_arena_alloc(&a, 1, 1) == NULL, "full");
    xs_arena_reset(&a);
    CHECK(a.used == 0, "reset");
#ifndef NDEBUG
    CHECK((unsigned char)p[0] == 0xaa, "reset poisons memory in debug builds");
#endif
    CHECK(xs_arena_alloc(&a, 4, 4) == (void *)a.base, "reuse after reset");
    xs_arena_free(&a);
    CHECK(a.base == NULL && a.size == 0, "free");
    CHECK(xs_arena_alloc(&a, 1, 1) == NULL, "alloc on freed arena -> NULL");
    return test_summary("test_core_arena");
}
