/*
 * threadpool.h — a fixed pool of pthreads for parallel-for loops.
 */
#ifndef XS_CORE_THREADPOOL_H
#define XS_CORE_THREADPOOL_H

#include <stdint.h>

typedef struct xs_threadpool xs_threadpool;

/* Work item: process indices [begin, end) on thread `tid`. */
typedef void (*xs_parallel_fn)(void *arg, int64_t begin, int64_t end, int tid);

/* n_threads <= 0: one per online CPU. Returns NULL on failure. */
xs_threadpool *xs_threadpool_new(int n_threads);
void xs_threadpool_free(xs_threadpool *tp);
int xs_threadpool_size(const xs_threadpool *tp);
/* Split [0, n) into chunks of at least `grain` indices over the pool and wait
 * for all. The calling thread takes part. Not reentrant. */
void xs_threadpool_for(xs_threadpool *tp, int64_t n, int64_t grain, xs_parallel_fn fn,
                       void *arg);
int xs_cpu_count(void);

#endif
