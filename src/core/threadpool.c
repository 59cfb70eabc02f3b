/*
 * threadpool.c — a fixed pool of pthreads running parallel-for loops.
 *
 * Design (why it looks like this):
 *  - Static, deterministic chunking. xs_threadpool_for(n, grain) cuts [0, n)
 *    into n_chunks = min(threads, n / grain) equal pieces; chunk i always
 *    covers [n*i/n_chunks, n*(i+1)/n_chunks) and runs on thread i (the caller
 *    is thread 0). The split depends only on (n, grain, pool size), never on
 *    timing, so a kernel whose per-index result does not depend on the chunk
 *    boundaries (matmul split over output rows) gives bit-identical results
 *    for any thread count, and one whose reductions are per chunk gives
 *    bit-identical results for a given thread count.
 *  - Workers sleep on a condition variable between jobs, after spinning for
 *    a few microseconds first: an LM step issues hundreds of small ops per
 *    frame and a futex wake costs ~5-20 us each, so a short spin pays off,
 *    while a long one would steal the (shared, 2-core) machine from others.
 *  - A job is published by bumping `generation` under the mutex; every
 *    worker acknowledges every job (even with no chunk to run) by
 *    decrementing `pending`, so the caller never rewrites the job fields
 *    while a worker may still be reading them.
 */
#include "core/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define XS_CPU_RELAX() _mm_pause()
#else
#define XS_CPU_RELAX() ((void)0)
#endif

/* Spin iterations before sleeping (a pause is ~10-140 cycles depending on
 * the core: this is a few microseconds). */
#define TP_SPIN 4000

typedef struct tp_worker {
    struct xs_threadpool *tp;
    int tid;
    pthread_t thread;
} tp_worker;

struct xs_threadpool {
    int n_threads; /* including the caller */
    tp_worker *workers; /* n_threads - 1 */

    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    atomic_uint_fast64_t generation;
    atomic_int pending; /* workers yet to finish the current job */
    atomic_bool stop;

    /* The current job (written by the caller before bumping generation). */
    xs_parallel_fn fn;
    void *arg;
    int64_t n;
    int n_chunks;
};

int xs_cpu_count(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return c;
    }
#endif
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c > 0 ? (int)c : 1;
}

static void tp_run_chunk(xs_threadpool *tp, int chunk) {
    if (chunk >= tp->n_chunks) return;
    int64_t b = tp->n * chunk / tp->n_chunks;
    int64_t e = tp->n * (chunk + 1) / tp->n_chunks;
    if (e > b) tp->fn(tp->arg, b, e, chunk);
}

static void *tp_worker_main(void *p) {
    tp_worker *w = p;
    xs_threadpool *tp = w->tp;
    uint_fast64_t seen = 0;
    for (;;) {
        /* Wait for a new generation: spin briefly, then sleep. */
        int spins = 0;
        while (atomic_load_explicit(&tp->generation, memory_order_acquire) == seen &&
               !atomic_load_explicit(&tp->stop, memory_order_acquire) && spins < TP_SPIN) {
            XS_CPU_RELAX();
            spins++;
        }
        pthread_mutex_lock(&tp->mu);
        while (atomic_load(&tp->generation) == seen && !atomic_load(&tp->stop))
            pthread_cond_wait(&tp->cv_work, &tp->mu);
        pthread_mutex_unlock(&tp->mu);
        if (atomic_load(&tp->stop)) return NULL;
        seen = atomic_load(&tp->generation);

        tp_run_chunk(tp, w->tid);

        if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
            /* Last one out wakes the caller (under the mutex: no lost wakeup). */
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->cv_done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
}

xs_threadpool *xs_threadpool_new(int n_threads) {
    if (n_threads <= 0) n_threads = xs_cpu_count();
    if (n_threads > 1024) n_threads = 1024;
    xs_threadpool *tp = calloc(1, sizeof *tp);
    if (!tp) return NULL;
    tp->n_threads = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_work, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    atomic_init(&tp->generation, 0);
    atomic_init(&tp->pending, 0);
    atomic_init(&tp->stop, false);
    if (n_threads > 1) {
        tp->workers = calloc((size_t)n_threads - 1, sizeof *tp->workers);
        if (!tp->workers) {
            free(tp);
            return NULL;
        }
        for (int i = 0; i < n_threads - 1; i++) {
            tp->workers[i].tp = tp;
            tp->workers[i].tid = i + 1;
            if (pthread_create(&tp->workers[i].thread, NULL, tp_worker_main, &tp->workers[i]) != 0) {
                /* Run with the threads we got. */
                tp->n_threads = i + 1;
                break;
            }
        }
    }
    return tp;
}

void xs_threadpool_free(xs_threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->stop, true);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);
    for (int i = 0; i < tp->n_threads - 1; i++) pthread_join(tp->workers[i].thread, NULL);
    free(tp->workers);
    pthread_cond_destroy(&tp->cv_work);
    pthread_cond_destroy(&tp->cv_done);
    pthread_mutex_destroy(&tp->mu);
    free(tp);
}

int xs_threadpool_size(const xs_threadpool *tp) { return tp ? tp->n_threads : 1; }

void xs_threadpool_for(xs_threadpool *tp, int64_t n, int64_t grain, xs_parallel_fn fn,
                       void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t max_chunks = n / grain;
    if (max_chunks < 1) max_chunks = 1;
    int n_chunks = tp ? tp->n_threads : 1;
    if (n_chunks > max_chunks) n_chunks = (int)max_chunks;
    if (n_chunks <= 1) {
        fn(arg, 0, n, 0); /* nothing to share: no wake-up cost */
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    tp->n = n;
    tp->n_chunks = n_chunks;
    atomic_store(&tp->pending, tp->n_threads - 1);
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);

    tp_run_chunk(tp, 0);

    int spins = 0;
    while (atomic_load_explicit(&tp->pending, memory_order_acquire) > 0 && spins < TP_SPIN) {
        XS_CPU_RELAX();
        spins++;
    }
    pthread_mutex_lock(&tp->mu);
    while (atomic_load(&tp->pending) > 0) pthread_cond_wait(&tp->cv_done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
}
