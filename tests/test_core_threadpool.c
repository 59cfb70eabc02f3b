/*
 * test_core_threadpool.c — the pool covers every index exactly once, chunks
 * are deterministic, grain is respected, and many back-to-back jobs (the
 * LM's pattern) neither lose nor duplicate work.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/threadpool.h"
#include "testutil.h"

typedef struct {
    atomic_int *hits;
    int64_t begins[4096];
    int64_t ends[4096];
    atomic_int calls;
    int64_t grain;
    int pool;
    atomic_int small_chunks;
    atomic_int bad_tid;
} cover_arg;

static void cover_fn(void *p, int64_t b, int64_t e, int tid) {
    cover_arg *a = p;
    for (int64_t i = b; i < e; i++) atomic_fetch_add(&a->hits[i], 1);
    int k = atomic_fetch_add(&a->calls, 1);
    if (k < 4096) {
        a->begins[k] = b;
        a->ends[k] = e;
    }
    if (e - b < a->grain) atomic_fetch_add(&a->small_chunks, 1);
    if (tid < 0 || tid >= a->pool) atomic_fetch_add(&a->bad_tid, 1);
}

/* Partial sums stored by chunk start, combined in index order afterwards:
 * deterministic whatever thread ran which chunk. */
typedef struct {
    const float *x;
    float partial[4096];
} sum_arg;

static void sum_fn(void *p, int64_t b, int64_t e, int tid) {
    (void)tid;
    sum_arg *a = p;
    float s = 0;
    for (int64_t i = b; i < e; i++) s += a->x[i];
    a->partial[b] = s;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void check_cover(xs_threadpool *tp, int64_t n, int64_t grain) {
    cover_arg *a = calloc(1, sizeof *a);
    a->hits = calloc((size_t)n + 1, sizeof *a->hits);
    a->grain = grain;
    a->pool = xs_threadpool_size(tp);
    xs_threadpool_for(tp, n, grain, cover_fn, a);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += atomic_load(&a->hits[i]) != 1;
    CHECK(bad == 0, "n=%lld grain=%lld threads=%d: %d indices not hit exactly once", (long long)n,
          (long long)grain, a->pool, bad);
    int calls = atomic_load(&a->calls);
    int64_t want = n / grain < 1 ? 1 : n / grain;
    if (want > 4 * a->pool) want = 4 * a->pool;
    if (a->pool == 1) want = 1;
    CHECK(calls == want, "n=%lld grain=%lld: %d chunks, expected %lld", (long long)n,
          (long long)grain, calls, (long long)want);
    if (n >= grain)
        CHECK(atomic_load(&a->small_chunks) == 0, "n=%lld: a chunk smaller than grain %lld",
              (long long)n, (long long)grain);
    CHECK(atomic_load(&a->bad_tid) == 0, "tid out of range");
    /* Deterministic bounds: sorted, chunk i = [n*i/c, n*(i+1)/c). */
    qsort(a->begins, (size_t)calls, sizeof(int64_t), cmp_i64);
    qsort(a->ends, (size_t)calls, sizeof(int64_t), cmp_i64);
    for (int i = 0; i < calls && i < 4096; i++) {
        CHECK(a->begins[i] == n * i / calls && a->ends[i] == n * (i + 1) / calls,
              "chunk %d is [%lld, %lld)", i, (long long)a->begins[i], (long long)a->ends[i]);
    }
    free(a->hits);
    free(a);
}

int main(void) {
    CHECK(xs_cpu_count() >= 1, "cpu count %d", xs_cpu_count());
    int sizes[] = {1, 2, 3, 4, 7};
    for (int s = 0; s < 5; s++) {
        xs_threadpool *tp = xs_threadpool_new(sizes[s]);
        CHECK(tp != NULL, "pool of %d", sizes[s]);
        if (!tp) continue;
        CHECK(xs_threadpool_size(tp) == sizes[s], "size %d != %d", xs_threadpool_size(tp), sizes[s]);
        check_cover(tp, 1, 1);
        check_cover(tp, 10, 1);
        check_cover(tp, 1000, 16);
        check_cover(tp, 1001, 300);
        check_cover(tp, 5, 100);
        xs_threadpool_for(tp, 0, 1, cover_fn, NULL); /* n = 0: no call at all */

        /* Many tiny jobs in a row: none lost (the LM issues hundreds per frame). */
        static float x[4096];
        for (int i = 0; i < 4096; i++) x[i] = (float)((i * 37) % 101) * 0.01f + 0.5f;
        static sum_arg sa;
        double first = 0;
        int mismatch = 0;
        for (int rep = 0; rep < 2000; rep++) {
            memset(&sa, 0, sizeof sa);
            sa.x = x;
            xs_threadpool_for(tp, 4096, 64, sum_fn, &sa);
            double tot = 0;
            for (int c = 0; c < 4096; c++) tot += sa.partial[c];
            if (rep == 0) first = tot;
            else if (tot != first) mismatch++;
        }
        CHECK(first > 1000.0, "sum %g", first);
        CHECK(mismatch == 0, "threads=%d: %d of 2000 repeated sums differ", sizes[s], mismatch);
        xs_threadpool_free(tp);
    }
    xs_threadpool *def = xs_threadpool_new(0);
    CHECK(def && xs_threadpool_size(def) == xs_cpu_count(), "default pool size");
    xs_threadpool_free(def);
    return test_summary("test_core_threadpool");
}
