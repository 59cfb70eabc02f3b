/*
 * membw.c — memory read bandwidth and sgemm FLOP rate (see membw.h).
 *
 * The read kernel sums 16 independent f32 lanes per thread over a
 * contiguous slice: the compiler vectorizes it (no reassociation needed),
 * one 64-byte line feeds one vector add, so the loop is bound by memory,
 * not by arithmetic, on any x86-64 core.
 */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif
#include "diag/membw.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/threadpool.h"

double xs_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct bw_job {
    const float *buf;
    int64_t n;       /* floats */
    float sums[256]; /* one per thread; read after the job so it is not optimized out */
    float (*fn)(const float *p, int64_t c0, int64_t c1);
} bw_job;

/* Sum lines [c0, c1) (16 floats each): 4 independent vector chains so the
 * adds never limit the loads. Plain C twin for CPUs without AVX2. */
static float bw_sum_generic(const float *p, int64_t c0, int64_t c1) {
    float acc[16] = {0};
    for (int64_t i = c0 * 16; i < c1 * 16; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += p[i + l];
    float s = 0;
    for (int l = 0; l < 16; l++) s += acc[l];
    return s;
}

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("avx2"))) static float bw_sum_avx2(const float *p, int64_t c0, int64_t c1) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = c0 * 16, e = c1 * 16;
    for (; i + 32 <= e; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    }
    for (; i < e; i += 8) a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
__attribute__((target("avx512f"))) static float bw_sum_avx512(const float *p, int64_t c0,
                                                              int64_t c1) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = c0 * 16, e = c1 * 16;
    for (; i + 64 <= e; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    }
    for (; i < e; i += 16) a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
#endif

typedef float (*bw_sum_fn)(const float *p, int64_t c0, int64_t c1);

static bw_sum_fn bw_pick(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return bw_sum_avx512;
    if (__builtin_cpu_supports("avx2")) return bw_sum_avx2;
#endif
    return bw_sum_generic;
}

static void bw_sum(void *arg, int64_t c0, int64_t c1, int tid) {
    bw_job *j = arg;
    float s = j->fn(j->buf, c0, c1);
    if (tid < 256) j->sums[tid] = s;
}

static void bw_fill(void *arg, int64_t c0, int64_t c1, int tid) {
    (void)tid;
    float *p = (float *)((bw_job *)arg)->buf;
    for (int64_t i = c0 * 16; i < c1 * 16; i++) p[i] = (float)(i & 1023) * 0.001f;
}

xs_status xs_membw_read(int n_threads, size_t nbytes, int reps, double *gbs) {
    if (nbytes == 0) nbytes = (size_t)1 << 30;
    if (reps < 1) reps = 1;
    int64_t lines = (int64_t)(nbytes / 64);
    if (lines < 1) return xs_error(XS_ERR_ARG, "membw: buffer of %zu bytes is too small", nbytes);
    float *buf = NULL;
    if (posix_memalign((void **)&buf, 64, (size_t)lines * 64) != 0)
        return xs_error(XS_ERR_NOMEM, "membw: cannot allocate %zu bytes", (size_t)lines * 64);
    xs_threadpool *tp = xs_threadpool_new(n_threads);
    if (!tp) {
        free(buf);
        return xs_error(XS_ERR_NOMEM, "membw: cannot start threads");
    }
    bw_job j = {.buf = buf, .n = lines * 16, .fn = bw_pick()};
    /* Each thread first touches the pages it will read (first-touch NUMA placement). */
    xs_threadpool_for(tp, lines, 1024, bw_fill, &j);
    double best = 0;
    volatile float sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = xs_now_seconds();
        xs_threadpool_for(tp, lines, 1024, bw_sum, &j);
        double dt = xs_now_seconds() - t0;
        for (int i = 0; i < xs_threadpool_size(tp) && i < 256; i++) sink += j.sums[i];
        double rate = (double)lines * 64.0 / dt / 1e9;
        if (rate > best) best = rate;
    }
    (void)sink;
    xs_threadpool_free(tp);
    free(buf);
    *gbs = best;
    return XS_OK;
}

xs_status xs_sgemm_rate(int n_threads, int M, int N, int K, int reps, double *gflops) {
    if (M < 1 || N < 1 || K < 1) return xs_error(XS_ERR_ARG, "sgemm rate: bad shape");
    if (reps < 1) reps = 1;
    xs_backend *be = NULL;
    XS_TRY(xs_backend_open("cpu", n_threads, &be));
    float *x = malloc(sizeof(float) * (size_t)M * (size_t)K);
    float *w = malloc(sizeof(float) * (size_t)N * (size_t)K);
    float *y = malloc(sizeof(float) * (size_t)M * (size_t)N);
    xs_status rc = XS_OK;
    if (!x || !w || !y) {
        rc = xs_error(XS_ERR_NOMEM, "sgemm rate: out of memory");
    } else {
        for (size_t i = 0; i < (size_t)M * (size_t)K; i++) x[i] = (float)(i % 17) * 0.1f - 0.8f;
        for (size_t i = 0; i < (size_t)N * (size_t)K; i++) w[i] = (float)(i % 13) * 0.1f - 0.6f;
        xs_tensor xt = xs_tensor_2d(XS_F32, x, M, K), wt = xs_tensor_2d(XS_F32, w, N, K);
        xs_tensor yt = xs_tensor_2d(XS_F32, y, M, N);
        double best = 0;
        for (int r = 0; r <= reps && rc == XS_OK; r++) { /* r = 0 warms up */
            double t0 = xs_now_seconds();
            rc = xs_op_matmul(be, &yt, &xt, &wt, NULL);
            double dt = xs_now_seconds() - t0;
            double g = 2.0 * M * N * (double)K / dt / 1e9;
            if (r > 0 && g > best) best = g;
        }
        if (rc == XS_OK) *gflops = best;
    }
    free(x);
    free(w);
    free(y);
    xs_backend_close(be);
    return rc;
}
