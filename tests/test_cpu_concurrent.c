/*
 * test_cpu_concurrent.c — two threads (two "sessions") sharing one cpu
 * backend: ops are serialized by the backend, so results equal those of a
 * serial run and shared scratch is never reallocated under a running op.
 * The threads use different sizes so that scratch grows while the other
 * thread works.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/quant.h"
#include "testutil.h"

typedef struct job {
    xs_backend *be;
    int64_t M, N, K;
    xs_block_q8_0 *w;
    float *x, *want, *got;
    int bad;
} job;

static xs_status run(job *j, float *out) {
    int64_t ws[2] = {j->N, j->K};
    xs_tensor w = xs_tensor_make(XS_Q8_0, 2, ws, j->w);
    xs_tensor x = xs_tensor_2d(XS_F32, j->x, j->M, j->K);
    xs_tensor y = xs_tensor_2d(XS_F32, out, j->M, j->N);
    return xs_op_matmul(j->be, &y, &x, &w, NULL);
}

static void *worker(void *p) {
    job *j = p;
    for (int r = 0; r < 40; r++) {
        memset(j->got, 0, sizeof(float) * (size_t)(j->M * j->N));
        if (run(j, j->got) != XS_OK ||
            memcmp(j->got, j->want, sizeof(float) * (size_t)(j->M * j->N)) != 0)
            j->bad++;
    }
    return NULL;
}

static void job_init(job *j, xs_backend *be, int64_t M, int64_t N, int64_t K, uint64_t seed) {
    j->be = be, j->M = M, j->N = N, j->K = K, j->bad = 0;
    float *wf = malloc(sizeof(float) * (size_t)(N * K));
    test_fill_uniform(wf, N * K, seed, -1, 1);
    j->w = malloc(sizeof(xs_block_q8_0) * (size_t)(N * K / 32));
    for (int64_t r = 0; r < N; r++) xs_quantize_row_q8_0(wf + r * K, j->w + r * K / 32, K);
    free(wf);
    j->x = malloc(sizeof(float) * (size_t)(M * K));
    test_fill_uniform(j->x, M * K, seed + 1, -1, 1);
    j->want = malloc(sizeof(float) * (size_t)(M * N));
    j->got = malloc(sizeof(float) * (size_t)(M * N));
}

static void job_free(job *j) {
    free(j->w), free(j->x), free(j->want), free(j->got);
}

int main(void) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open("cpu", 2, &be) == XS_OK, "open cpu");
    if (!be) return test_summary("test_cpu_concurrent");
    job a, b;
    job_init(&a, be, 20, 200, 256, 1);  /* sgemm path: scratch 64 * 256 */
    job_init(&b, be, 24, 130, 1024, 7); /* sgemm path: scratch 64 * 1024 (grows) */
    CHECK(run(&a, a.want) == XS_OK && run(&b, b.want) == XS_OK, "serial runs");
    CHECK(a.want[0] != 0 && b.want[0] != 0, "non-trivial outputs");
    xs_backend_close(be);
    /* A fresh backend, so the scratch starts small and grows under contention. */
    CHECK(xs_backend_open("cpu", 2, &be) == XS_OK, "reopen cpu");
    a.be = b.be = be;
    pthread_t ta, tb;
    pthread_create(&ta, NULL, worker, &a);
    pthread_create(&tb, NULL, worker, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK(a.bad == 0 && b.bad == 0, "concurrent results differ from serial: %d, %d of 40", a.bad,
          b.bad);
    xs_backend_close(be);
    job_free(&a);
    job_free(&b);
    return test_summary("test_cpu_concurrent");
}
