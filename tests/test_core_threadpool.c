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
    int64_t begins[64];
    int64_t ends[64];
    atomic_int calls;
    int64_t grain;
    atomic_int small_chunks;
} cover_arg;

static void cover_fn(void *p, int64_t b, int64_t e, int tid) {
    cover_arg *a = p;
    for (int64_t i = b; i < e; i++) atomic_fetch_add(&a->hits[i], 1);
    if (tid >= 0 && tid < 64) {
        a->begins[tid] = b;
        a->ends[tid] = e;
    }
    if (e - b < a->grain) atomic_fetch_add(&a->small_chunks, 1);
    atomic_fetch_add(&a->calls, 1);
}

/* Sum of per-chunk partial sums, combined in chunk order: deterministic for
 * a given thread count. */
typedef struct {
    const float *x;
    double partial[64];
} sum_arg;

static void sum_fn(void *p, int64_t b, int64_t e, int tid) {
    sum_arg *a = p;
    float s = 0;
    for (int64_t i = b; i < e; i++) s += a->x[i];
    a->partial[tid] = s;
}

static void check_cover(xs_threadpool *tp, int64_t n, int64_t grain) {
    cover_arg a;
    memset(&a, 0, sizeof a);
    a.hits = calloc((size_t)n + 1, sizeof *a.hits);
    a.grain = grain;
    xs_threadpool_for(tp, n, grain, cover_fn, &a);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += atomic_load(&a.hits[i]) != 1;
    CHECK(bad == 0, "n=%lld grain=%lld threads=%d: %d indices not hit exactly once", (long long)n,
          (long long)grain, xs_threadpool_size(tp), bad);
    int calls = atomic_load(&a.calls);
    int64_t want = n / grain < 1 ? 1 : n / grain;
    if (want > xs_threadpool_size(tp)) want = xs_threadpool_size(tp);
    CHECK(calls == want, "n=%lld grain=%lld: %d chunks, expected %lld", (long long)n,
          (long long)grain, calls, (long long)want);
    if (n >= grain)
        CHECK(atomic_load(&a.small_chunks) == 0, "n=%lld: a chunk smaller than grain %lld",
              (long long)n, (long long)grain);
    /* Deterministic boundaries: chunk i = [n*i/c, n*(i+1)/c). */
    for (int i = 0; i < calls && i < 64; i++) {
        CHECK(a.begins[i] == n * i / calls && a.ends[i] == n * (i + 1) / calls,
              "chunk %d is [%lld, %lld)", i, (long long)a.begins[i], (long long)a.ends[i]);
    }
    free(a.hits);
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
        sum_arg sa;
        double first = 0;
        int mismatch = 0;
        for (int rep = 0; rep < 2000; rep++) {
            memset(&sa, 0, sizeof sa);
            sa.x = x;
            xs_threadpool_for(tp, 4096, 64, sum_fn, &sa);
            double tot = 0;
            for (int c = 0; c < sizes[s]; c++) tot += sa.partial[c];
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
