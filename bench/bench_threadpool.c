/*
 * bench_threadpool.c — cost of one xs_threadpool_for with almost no work
 * (the fixed overhead every small op of an LM step pays), per pool size.
 */
#include <stdio.h>

#include "core/threadpool.h"
#include "diag/membw.h"

static void tiny(void *arg, int64_t b, int64_t e, int tid) {
    (void)tid;
    volatile float *x = arg;
    for (int64_t i = b; i < e; i++) x[i] += 1.0f;
}

int main(void) {
    static float x[4096];
    for (int t = 1; t <= 4; t++) {
        xs_threadpool *tp = xs_threadpool_new(t);
        const int reps = 20000;
        for (int i = 0; i < 100; i++) xs_threadpool_for(tp, 4096, 16, tiny, x);
        double t0 = xs_now_seconds();
        for (int i = 0; i < reps; i++) xs_threadpool_for(tp, 4096, 16, tiny, x);
        double dt = xs_now_seconds() - t0;
        printf("threads %d: %.2f us per parallel-for of 4096 tiny items\n", t, dt / reps * 1e6);
        xs_threadpool_free(tp);
    }
    return 0;
}
