/*
 * test_cuda_weight_pool.c — weights packed into shared device chunks
 * (cuda_weight_pool.cu): every weight reads back its own bytes whatever its
 * size and neighbours, is 256-byte aligned, survives the release of weights
 * around it, and releasing them all gives the card its memory back. Also:
 * the pool takes less of the card than one allocation per weight, measured
 * on the same sizes (the reason it exists). Skips without a usable GPU.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "testutil.h"

#define N_W 96

/* sizes of Moshi's depformer / Mimi kind (not multiples of the 2 MiB page),
 * a few odd small ones, one bigger than a chunk */
static size_t size_of(int i) {
    static const size_t k[] = {1114112, 3342336, 3063808, 6127616, 2048, 16384, 1, 4100, 2228224};
    if (i == N_W / 2) return (size_t)300 << 20;
    return k[i % (int)(sizeof k / sizeof k[0])] + (size_t)(i % 3) * 2;
}

static void fill(uint8_t *b, size_t n, int i) {
    for (size_t j = 0; j < n; j++) b[j] = (uint8_t)(j * 131 + (size_t)i * 7 + (j >> 9));
}

/* bytes of weight i read back from the device equal what was uploaded */
static bool same_bytes(xs_backend *be, const xs_tensor *w, int i) {
    const size_t n = size_of(i);
    uint8_t *want = malloc(n), *got = malloc(n);
    bool ok = want && got;
    if (ok) {
        fill(want, n, i);
        ok = xs_tensor_download(be, got, w) == XS_OK && !memcmp(want, got, n);
    }
    free(want);
    free(got);
    return ok;
}

static xs_status prepare(xs_backend *be, int i, xs_tensor *w) {
    const size_t n = size_of(i);
    uint8_t *h = malloc(n);
    if (!h) return xs_error(XS_ERR_NOMEM, "test: out of memory");
    fill(h, n, i);
    int64_t shape[1] = {(int64_t)n};
    xs_tensor host = xs_tensor_make(XS_I8, 1, shape, h);
    xs_status rc = xs_backend_weight(be, &host, w); /* pageable upload: h is staged on return */
    free(h);
    return rc;
}

int main(void) {
    if (!xs_backend_cuda_usable(NULL, 0)) test_skip("no usable CUDA device");
    xs_backend *be = NULL;
    CHECK(xs_backend_open("cuda", 0, &be) == XS_OK, "cuda: %s", xs_error_msg());
    if (!be) return test_summary("cuda_weight_pool");

    size_t free0 = 0, total = 0, free1 = 0, asked = 0;
    CHECK(xs_cuda_mem_info(be, &free0, &total) == XS_OK, "mem info");
    static xs_tensor w[N_W];
    bool all = true;
    for (int i = 0; i < N_W && all; i++) {
        all = prepare(be, i, &w[i]) == XS_OK;
        CHECK(all, "weight %d (%zu bytes): %s", i, size_of(i), xs_error_msg());
        asked += size_of(i);
    }
    if (all) {
        int aligned = 0, intact = 0;
        for (int i = 0; i < N_W; i++) {
            aligned += (uintptr_t)w[i].data % 256 == 0;
            intact += same_bytes(be, &w[i], i);
        }
        CHECK(aligned == N_W, "%d of %d weights 256-byte aligned", aligned, N_W);
        CHECK(intact == N_W, "%d of %d weights read back intact", intact, N_W);
        CHECK(xs_cuda_mem_info(be, &free1, &total) == XS_OK, "mem info");
        /* the same sizes as one allocation each (what weights were before):
         * the driver rounds each up to its pages */
        static xs_tensor sep[N_W];
        size_t free_sep0 = 0, free_sep1 = 0;
        CHECK(xs_cuda_mem_info(be, &free_sep0, &total) == XS_OK, "mem info");
        for (int i = 0; i < N_W; i++) {
            int64_t shape[1] = {(int64_t)size_of(i)};
            CHECK(xs_tensor_alloc(be, XS_I8, 1, shape, &sep[i]) == XS_OK, "alloc %d", i);
        }
        CHECK(xs_cuda_mem_info(be, &free_sep1, &total) == XS_OK, "mem info");
        for (int i = 0; i < N_W; i++) xs_tensor_free(be, &sep[i]);
        const double over = ((double)(free0 - free1) - (double)asked) / 1048576.0;
        const double over_sep = ((double)(free_sep0 - free_sep1) - (double)asked) / 1048576.0;
        printf("%.1f MiB asked: pool %.1f MiB over, one allocation each %.1f MiB over\n",
               asked / 1048576.0, over, over_sep);
        CHECK(over < over_sep, "pool takes %.1f MiB over the %.1f MiB asked, separate allocations %.1f",
              over, asked / 1048576.0, over_sep);

        /* release every other weight: the rest stay intact; new weights fill
         * the pool again and read back their own bytes */
        for (int i = 0; i < N_W; i += 2) xs_backend_weight_release(be, &w[i]);
        intact = 0;
        for (int i = 1; i < N_W; i += 2) intact += same_bytes(be, &w[i], i);
        CHECK(intact == N_W / 2, "%d of %d kept weights intact after releases", intact, N_W / 2);
        for (int i = 0; i < N_W; i += 2) {
            CHECK(prepare(be, i, &w[i]) == XS_OK, "re-prepare %d: %s", i, xs_error_msg());
        }
        intact = 0;
        for (int i = 0; i < N_W; i++) intact += w[i].data && same_bytes(be, &w[i], i);
        CHECK(intact == N_W, "%d of %d weights intact after refill", intact, N_W);

        /* releasing all of them frees every chunk */
        for (int i = 0; i < N_W; i++) xs_backend_weight_release(be, &w[i]);
        size_t free2 = 0;
        CHECK(xs_cuda_mem_info(be, &free2, &total) == XS_OK, "mem info");
        const double left = ((double)free0 - (double)free2) / 1048576.0;
        CHECK(left < 4.0, "%.1f MiB still held after every weight was released", left);
    }
    xs_backend_close(be);
    return test_summary("cuda_weight_pool");
}
