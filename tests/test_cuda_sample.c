/*
 * test_cuda_sample.c — top-k sampling on cuda picks exactly ref's token on
 * logits made to be hard: many exact ties (values on a coarse grid), -0 next
 * to +0, NaN and -inf entries, k from 1 to the block path's limit and past it
 * (the two-kernel path), vocabularies of Moshi's heads (2048, 32000) and odd
 * sizes, several rows and counters. Skips (77) without a usable GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "testutil.h"

/* Logits on a grid of quarter steps: ties everywhere; a few specials. */
static void make_logits(float *l, int64_t n, uint64_t seed, bool specials) {
    test_fill_uniform(l, n, seed, -6.0f, 6.0f);
    for (int64_t i = 0; i < n; i++) l[i] = roundf(l[i] * 4.0f) / 4.0f;
    if (!specials) return;
    for (int64_t i = 3; i < n; i += 97) l[i] = -0.0f;
    for (int64_t i = 5; i < n; i += 89) l[i] = 0.0f;
    for (int64_t i = 7; i < n; i += 211) l[i] = NAN;
    for (int64_t i = 11; i < n; i += 157) l[i] = -INFINITY;
}

static int run_case(xs_backend *ref, xs_backend *cu, int rows, int64_t V, int top_k, float temp,
                    uint64_t counter, bool specials) {
    int64_t shape[2] = {rows, V}, nr = rows;
    float *h = malloc((size_t)(rows * V) * sizeof *h);
    int32_t a[16], b[16];
    make_logits(h, rows * V, 1000 + (uint64_t)V * 7 + (uint64_t)top_k, specials);
    xs_tensor lr, lc, ir, ic;
    int bad = 0;
    CHECK(xs_tensor_alloc(ref, XS_F32, 2, shape, &lr) == XS_OK, "alloc: %s", xs_error_msg());
    CHECK(xs_tensor_alloc(cu, XS_F32, 2, shape, &lc) == XS_OK, "alloc: %s", xs_error_msg());
    CHECK(xs_tensor_alloc(ref, XS_I32, 1, &nr, &ir) == XS_OK, "alloc: %s", xs_error_msg());
    CHECK(xs_tensor_alloc(cu, XS_I32, 1, &nr, &ic) == XS_OK, "alloc: %s", xs_error_msg());
    CHECK(xs_tensor_upload(ref, &lr, h) == XS_OK && xs_tensor_upload(cu, &lc, h) == XS_OK, "upload: %s", xs_error_msg());
    CHECK(xs_op_sample_topk(ref, &ir, &lr, temp, top_k, 42, 3, counter) == XS_OK, "ref sample: %s", xs_error_msg());
    CHECK(xs_op_sample_topk(cu, &ic, &lc, temp, top_k, 42, 3, counter) == XS_OK, "cuda sample: %s", xs_error_msg());
    CHECK(xs_tensor_download(ref, a, &ir) == XS_OK && xs_tensor_download(cu, b, &ic) == XS_OK, "download: %s", xs_error_msg());
    for (int r = 0; r < rows; r++) bad += a[r] != b[r];
    if (bad)
        printf("  V=%lld k=%d temp=%.2f counter=%llu specials=%d: %d of %d rows differ (ref %d cuda %d)\n",
               (long long)V, top_k, temp, (unsigned long long)counter, specials, bad, rows, a[0], b[0]);
    xs_tensor_free(ref, &lr);
    xs_tensor_free(cu, &lc);
    xs_tensor_free(ref, &ir);
    xs_tensor_free(cu, &ic);
    free(h);
    return bad;
}

int main(void) {
    if (!xs_backend_cuda_usable(NULL, 0)) test_skip("no usable CUDA device");
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cuda", 0, &cu) == XS_OK, "cuda: %s", xs_error_msg());
    const int64_t vs[] = {2048, 32000, 1000, 37};
    const int ks[] = {1, 25, 250, 2048, 2049, 0};
    int cases = 0, bad = 0;
    for (size_t vi = 0; vi < sizeof vs / sizeof *vs; vi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
            for (int sp = 0; sp < 2; sp++)
                for (uint64_t ctr = 0; ctr < 6; ctr++) {
                    const int rows = 1 + (int)(ctr % 3) * 5; /* 1, 6, 11 rows */
                    const float temp = ctr & 1 ? 0.7f : 1.3f;
                    bad += run_case(ref, cu, rows, vs[vi], ks[ki], temp, ctr * 1000 + 17, sp);
                    cases++;
                }
    printf("%d cases, %d differing rows\n", cases, bad);
    CHECK(bad == 0, "%d rows differ from ref", bad);
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_sample");
}
