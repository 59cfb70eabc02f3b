/*
 * threadpool.c — a fixed pool of pthreads running parallel-for loops.
 *
 * Design (why it looks like this):
 *  - Fixed chunks, dynamic claiming. xs_threadpool_for(n, grain) cuts
 *    [0, n) into n_chunks = min(n / grain, 4 * threads) equal pieces whose
 *    bounds depend only on (n, grain, pool size); threads claim chunks with
 *    an atomic counter, so when a worker is late (the machine is shared, a
 *    core is busy) the others, the caller included, take its chunks instead
 *    of waiting for it. Every op of the cpu backend computes each output
 *    from its index alone (never from which thread or chunk ran it), so
 *    results are bit-identical for any thread count and any schedule.
 *    `tid` (0 = caller) is the running thread, unique among concurrently
 *    running chunks: use it for per-thread scratch, not for results.
 *  - The job is published in one 64-bit word: generation (32 bits),
 *    n_chunks (16) and the next unclaimed chunk (16). A claim is a CAS on
 *    that word, so a worker that wakes up late can never run a chunk of a
 *    job it did not read: once it holds a claim, the job cannot finish (and
 *    its fields cannot change) before the chunk is done.
 *  - The caller waits for `done == n_chunks`, not for every worker to
 *    acknowledge: a descheduled idle worker costs nothing.
 *  - Workers sleep on a condition variable between jobs, after spinning for
 *    a few microseconds: an LM step issues hundreds of small ops per frame
 *    and a futex wake costs ~5-20 us, while a long spin would steal the
 *    (shared, 2-core) machine from others.
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
#define TP_SPIN 2000
#define TP_CHUNKS_PER_THREAD 4
#define TP_MAX_CHUNKS 0xFFFF

/* state word: [generation:32][n_chunks:16][next:16] */
#define ST_GEN(s) ((uint32_t)((s) >> 32))
#define ST_NCH(s) ((int)(((s) >> 16) & 0xFFFF))
#define ST_NEXT(s) ((int)((s)&0xFFFF))

typedef struct tp_worker {
    struct xs_threadpool *tp;
    int tid;
    pthread_t thread;
} tp_worker;

struct xs_threadpool {
    int n_threads;      /* including the caller */
    tp_worker *workers; /* n_threads - 1 */

    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    _Atomic uint64_t state;
    atomic_int done; /* chunks finished in the current job */
    atomic_bool stop;

    /* The current job: written by the caller before it publishes `state`,
     * read by a thread only while it holds a claim on one of its chunks. */
    xs_parallel_fn fn;
    void *arg;
    int64_t n;
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

/* Claim and run chunks of the published job until none are left. Returns
 * the generation it saw last (so an idle worker knows what it has done). */
static uint32_t tp_work(xs_threadpool *tp, int tid) {
    uint64_t s = atomic_load_explicit(&tp->state, memory_order_acquire);
    while (ST_NEXT(s) < ST_NCH(s)) {
        if (!atomic_compare_exchange_weak_explicit(&tp->state, &s, s + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue; /* s was reloaded */
        const int nch = ST_NCH(s), chunk = ST_NEXT(s);
        const int64_t b = tp->n * chunk / nch, e = tp->n * (chunk + 1) / nch;
        if (e > b) tp->fn(tp->arg, b, e, tid);
        if (atomic_fetch_add_explicit(&tp->done, 1, memory_order_acq_rel) + 1 == nch) {
            /* Last chunk: wake the caller if it sleeps (under the mutex: no lost wakeup). */
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->cv_done);
            pthread_mutex_unlock(&tp->mu);
        }
        s = atomic_load_explicit(&tp->state, memory_order_acquire);
    }
    return ST_GEN(s);
}

static void *tp_worker_main(void *p) {
    tp_worker *w = p;
    xs_threadpool *tp = w->tp;
    uint32_t seen = 0;
    for (;;) {
        /* Wait for a newer generation: spin briefly, then sleep. */
        int spins = 0;
        while (ST_GEN(atomic_load_explicit(&tp->state, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&tp->stop, memory_order_acquire) && spins < TP_SPIN) {
            XS_CPU_RELAX();
            spins++;
        }
        pthread_mutex_lock(&tp->mu);
        while (ST_GEN(atomic_load(&tp->state)) == seen && !atomic_load(&tp->stop))
            pthread_cond_wait(&tp->cv_work, &tp->mu);
        pthread_mutex_unlock(&tp->mu);
        if (atomic_load(&tp->stop)) return NULL;
        seen = tp_work(tp, w->tid);
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
    atomic_init(&tp->state, 0);
    atomic_init(&tp->done, 0);
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
    int64_t n_chunks = n / grain;
    if (n_chunks < 1) n_chunks = 1;
    const int threads = tp ? tp->n_threads : 1;
    if (n_chunks > (int64_t)threads * TP_CHUNKS_PER_THREAD)
        n_chunks = (int64_t)threads * TP_CHUNKS_PER_THREAD;
    if (n_chunks > TP_MAX_CHUNKS) n_chunks = TP_MAX_CHUNKS;
    if (threads <= 1 || n_chunks <= 1) {
        fn(arg, 0, n, 0); /* nothing to share: no wake-up cost */
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    tp->n = n;
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    const uint64_t old = atomic_load_explicit(&tp->state, memory_order_relaxed);
    const uint64_t gen = (uint64_t)(uint32_t)(ST_GEN(old) + 1);
    pthread_mutex_lock(&tp->mu);
    atomic_store_explicit(&tp->state, gen << 32 | (uint64_t)n_chunks << 16, memory_order_release);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);

    tp_work(tp, 0);

    int spins = 0;
    while (atomic_load_explicit(&tp->done, memory_order_acquire) < n_chunks && spins < TP_SPIN) {
        XS_CPU_RELAX();
        spins++;
    }
    pthread_mutex_lock(&tp->mu);
    while (atomic_load(&tp->done) < n_chunks) pthread_cond_wait(&tp->cv_done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
}
