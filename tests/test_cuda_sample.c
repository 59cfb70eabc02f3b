/*
 * test_cuda_sample.c — top-k sampling on cuda picks exactly ref's token on
 * logits made to be hard: many exact ties (values on a coarse grid), -0 next
 * to +0, NaN and -inf entries, k from 1 to the block path's limit and past it
 * (the two-kernel path), vocabularies of Moshi's heads (2048, 32000) and odd
 * sizes, several rows and counters. Also the row kernels (argmax, sampling,
 * softmax and the generic norms) on [4, 3, V] views whose leading dims do not
 * merge (cuda_row_geom.cuh splits the row index): sliced with a unit inner
 * stride, and transposed with inner stride 5. Also gaussian (model-like)
 * rows and rows of only two values (the k-th key's bin too full for the
 * sort: radix passes on the full row, ties by index) at Moshi's heads and
 * other sizes. The default kernel is checked; XSWARM_CUDA_TOPK=old checks
 * the previous one. XSWARM_TOPK_TIME=1 adds a table of us per call, old vs
 * new (=only: the table alone). Skips (77) without a usable GPU.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/ops.h"
#include "core/tensor.h"
#include "testutil.h"

enum { DIST_GRID, DIST_NORMAL, DIST_TWO };

/* Logits of a distribution: DIST_GRID quarter steps in [-6, 6] (ties
 * everywhere), DIST_NORMAL gaussian (scale by seed: model-like logits, few
 * ties), DIST_TWO only 1 and 2 (the k-th key's bin overflows the sort: the
 * radix passes on the full row and the ordered tie compaction); specials: a
 * few -0, +0, NaN and -inf entries. */
static void make_logits_dist(float *l, int64_t n, uint64_t seed, bool specials, int dist) {
    test_fill_uniform(l, n, seed, -6.0f, 6.0f);
    if (dist == DIST_NORMAL) {
        const float scale = 0.05f + (float)(seed % 7); /* 0.05 .. 6.05 */
        for (int64_t i = 0; i + 1 < n; i += 2) {       /* Box-Muller on pairs */
            const double u1 = (l[i] + 6.0) / 12.0 + 1e-9, u2 = (l[i + 1] + 6.0) / 12.0;
            const double r = sqrt(-2.0 * log(u1));
            l[i] = scale * (float)(r * cos(6.283185307179586 * u2));
            l[i + 1] = scale * (float)(r * sin(6.283185307179586 * u2));
        }
    } else if (dist == DIST_TWO) {
        for (int64_t i = 0; i < n; i++) l[i] = l[i] < 0.0f ? 1.0f : 2.0f;
    } else {
        for (int64_t i = 0; i < n; i++) l[i] = roundf(l[i] * 4.0f) / 4.0f;
    }
    if (!specials) return;
    for (int64_t i = 3; i < n; i += 97) l[i] = -0.0f;
    for (int64_t i = 5; i < n; i += 89) l[i] = 0.0f;
    for (int64_t i = 7; i < n; i += 211) l[i] = NAN;
    for (int64_t i = 11; i < n; i += 157) l[i] = -INFINITY;
}

static void make_logits(float *l, int64_t n, uint64_t seed, bool specials) {
    make_logits_dist(l, n, seed, specials, DIST_GRID);
}

static int run_case_dist(xs_backend *ref, xs_backend *cu, int rows, int64_t V, int top_k,
                         float temp, uint64_t counter, bool specials, int dist, uint64_t seed) {
    int64_t shape[2] = {rows, V}, nr = rows;
    float *h = malloc((size_t)(rows * V) * sizeof *h);
    int32_t a[16], b[16];
    make_logits_dist(h, rows * V, seed, specials, dist);
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

static int run_case(xs_backend *ref, xs_backend *cu, int rows, int64_t V, int top_k, float temp,
                    uint64_t counter, bool specials) {
    return run_case_dist(ref, cu, rows, V, top_k, temp, counter, specials, DIST_GRID,
                         1000 + (uint64_t)V * 7 + (uint64_t)top_k);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* us per sample_topk call (rows 1), `n` calls enqueued back to back after
 * a warm-up: the kernel, or the host's launch rate if that is slower. */
static double time_topk(xs_backend *cu, int64_t V, int top_k, float temp, int n) {
    int64_t shape[2] = {1, V}, nr = 1;
    float *h = malloc((size_t)V * sizeof *h);
    make_logits_dist(h, V, 4242 + (uint64_t)V, false, DIST_NORMAL);
    xs_tensor l, ids;
    int32_t id;
    double us = -1.0;
    if (xs_tensor_alloc(cu, XS_F32, 2, shape, &l) != XS_OK) goto out;
    if (xs_tensor_alloc(cu, XS_I32, 1, &nr, &ids) != XS_OK) goto out_l;
    if (xs_tensor_upload(cu, &l, h) != XS_OK) goto out_i;
    for (int i = 0; i < 20; i++) xs_op_sample_topk(cu, &ids, &l, temp, top_k, 42, 3, (uint64_t)i);
    if (xs_tensor_download(cu, &id, &ids) != XS_OK) goto out_i;
    const double t0 = now_s();
    for (int i = 0; i < n; i++) xs_op_sample_topk(cu, &ids, &l, temp, top_k, 42, 3, (uint64_t)i);
    if (xs_tensor_download(cu, &id, &ids) == XS_OK) us = (now_s() - t0) * 1e6 / n;
out_i:
    xs_tensor_free(cu, &ids);
out_l:
    xs_tensor_free(cu, &l);
out:
    free(h);
    return us;
}

/* A [4, 3, V] view of base (allocated [4, 5, V + 3], or [4, V, 5] when
 * transposed): rows (i, j) at strides that cannot merge into one. */
static xs_tensor rows_view(const xs_tensor *base, bool transposed, int64_t V) {
    if (transposed) {
        const xs_tensor s = xs_tensor_slice(base, 2, 1, 3); /* [4, V, 3], strides 5V, 5, 1 */
        return xs_tensor_transpose(&s, 1, 2);              /* [4, 3, V], strides 5V, 1, 5 */
    }
    const xs_tensor s = xs_tensor_slice(base, 1, 1, 3); /* [4, 3, V + 3] */
    return xs_tensor_slice(&s, 2, 2, V);                /* strides 5(V + 3), V + 3, 1 */
}

/* The row ops on such views, cuda against ref: ids exactly, norms and
 * softmax to rounding (a wrong row would be off by O(1)). Returns failures. */
static int run_view_case(xs_backend *ref, xs_backend *cu, int64_t V, bool transposed) {
    const int64_t rows = 12;
    int64_t bshape[3] = {4, transposed ? V : 5, transposed ? 5 : V + 3};
    const int64_t bn = 4 * 5 * (V + (transposed ? 0 : 3));
    float *h = malloc((size_t)bn * sizeof *h), *w = malloc((size_t)V * sizeof *w);
    float *yr = malloc((size_t)(rows * V) * sizeof *yr);
    float *yc = malloc((size_t)(rows * V) * sizeof *yc);
    make_logits(h, bn, 77 + (uint64_t)V, false);
    test_fill_uniform(w, V, 5, 0.5f, 1.5f);
    int64_t yshape[3] = {4, 3, V}, nr = rows;
    xs_backend *be[2] = {ref, cu};
    xs_tensor base[2], y[2], ids[2], wt[2];
    int bad = 0;
    for (int b = 0; b < 2; b++) {
        CHECK(xs_tensor_alloc(be[b], XS_F32, 3, bshape, &base[b]) == XS_OK &&
                  xs_tensor_alloc(be[b], XS_F32, 3, yshape, &y[b]) == XS_OK &&
                  xs_tensor_alloc(be[b], XS_I32, 1, &nr, &ids[b]) == XS_OK &&
                  xs_tensor_alloc(be[b], XS_F32, 1, &V, &wt[b]) == XS_OK,
              "alloc: %s", xs_error_msg());
        CHECK(xs_tensor_upload(be[b], &base[b], h) == XS_OK &&
                  xs_tensor_upload(be[b], &wt[b], w) == XS_OK,
              "upload: %s", xs_error_msg());
    }
    for (int op = 0; op < 7; op++) {
        const bool pick = op < 3; /* argmax, top-25, all-V sampling (rank + pick when V > 2048) */
        for (int b = 0; b < 2; b++) {
            const xs_tensor x = rows_view(&base[b], transposed, V);
            xs_status rc;
            if (op == 0) rc = xs_op_argmax(be[b], &ids[b], &x);
            else if (op == 1) rc = xs_op_sample_topk(be[b], &ids[b], &x, 0.8f, 25, 42, 3, 7);
            else if (op == 2) rc = xs_op_sample_topk(be[b], &ids[b], &x, 1.2f, 0, 42, 3, 9);
            else if (op == 3) rc = xs_op_softmax(be[b], &y[b], &x);
            else if (op == 4) rc = xs_op_rms_norm(be[b], &y[b], &x, &wt[b], 1e-5f);
            else if (op == 5) rc = xs_op_layer_norm(be[b], &y[b], &x, &wt[b], &wt[b], 1e-5f);
            else rc = xs_op_layer_norm(be[b], &y[b], &x, &wt[b], NULL, 1e-5f);
            CHECK(rc == XS_OK, "op %d on %s: %s", op, b ? "cuda" : "ref", xs_error_msg());
            void *dst = b ? (void *)yc : (void *)yr;
            CHECK(xs_tensor_download(be[b], dst, pick ? &ids[b] : &y[b]) == XS_OK,
                  "download: %s", xs_error_msg());
        }
        if (pick) {
            int diff = 0;
            for (int64_t r = 0; r < rows; r++) diff += ((int32_t *)yr)[r] != ((int32_t *)yc)[r];
            CHECK(diff == 0, "V=%lld %s op %d: %d of %lld ids differ from ref", (long long)V,
                  transposed ? "transposed" : "sliced", op, diff, (long long)rows);
            bad += diff != 0;
        } else {
            const double e = test_max_abs_diff(yr, yc, rows * V);
            CHECK(e < 2e-5, "V=%lld %s op %d: max |cuda - ref| %.3g", (long long)V,
                  transposed ? "transposed" : "sliced", op, e);
            bad += !(e < 2e-5);
        }
    }
    for (int b = 0; b < 2; b++) {
        xs_tensor_free(be[b], &base[b]);
        xs_tensor_free(be[b], &y[b]);
        xs_tensor_free(be[b], &ids[b]);
        xs_tensor_free(be[b], &wt[b]);
    }
    free(h);
    free(w);
    free(yr);
    free(yc);
    return bad;
}

int main(void) {
    if (!xs_backend_cuda_usable(NULL, 0)) test_skip("no usable CUDA device");
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cuda", 0, &cu) == XS_OK, "cuda: %s", xs_error_msg());
    /* XSWARM_TOPK_TIME=1: also time old vs new at the end; =only: no checks */
    const char *tm = getenv("XSWARM_TOPK_TIME");
    const bool only = tm && !strcmp(tm, "only");
    const int64_t vs[] = {2048, 32000, 1000, 37};
    const int ks[] = {1, 25, 250, 2048, 2049, 0};
    int cases = 0, bad = 0;
    for (size_t vi = 0; vi < (only ? 0 : sizeof vs / sizeof *vs); vi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++)
            for (int sp = 0; sp < 2; sp++)
                for (uint64_t ctr = 0; ctr < 6; ctr++) {
                    const int rows = 1 + (int)(ctr % 3) * 5; /* 1, 6, 11 rows */
                    const float temp = ctr & 1 ? 0.7f : 1.3f;
                    bad += run_case(ref, cu, rows, vs[vi], ks[ki], temp, ctr * 1000 + 17, sp);
                    cases++;
                }
    /* model-like (gaussian) logits at Moshi's heads and more sizes, and
     * two-valued rows (ties past the sort's capacity), 1..11 rows */
    const int64_t vs2[] = {32000, 2048, 9000, 300};
    const int ks2[] = {25, 250, 1, 2048};
    for (size_t vi = 0; vi < (only ? 0 : sizeof vs2 / sizeof *vs2); vi++)
        for (size_t ki = 0; ki < sizeof ks2 / sizeof *ks2; ki++)
            for (int dist = DIST_NORMAL; dist <= DIST_TWO; dist++)
                for (uint64_t ctr = 0; ctr < 7; ctr++) {
                    const int rows = 1 + (int)(ctr % 3) * 5;
                    const float temp = ctr & 1 ? 0.7f : 0.8f;
                    bad += run_case_dist(ref, cu, rows, vs2[vi], ks2[ki], temp, ctr * 777 + 5,
                                         ctr == 6, dist, 31 * ctr + (uint64_t)vs2[vi] + (uint64_t)ks2[ki]);
                    cases++;
                }
    printf("%d cases, %d differing rows\n", cases, bad);
    /* us per call, the kernel of XSWARM_CUDA_TOPK=old against the default,
     * gaussian logits (timing only, no checks) */
    if (tm && strcmp(tm, "0")) {
        char *saved = getenv("XSWARM_CUDA_TOPK") ? strdup(getenv("XSWARM_CUDA_TOPK")) : NULL;
        const struct { int64_t V; int k; float temp; } sh[] = {
            {32000, 25, 0.7f}, {2048, 250, 0.8f}, {2048, 25, 0.8f}, {32000, 250, 0.7f}, {32000, 1, 0.7f}};
        printf("sample_topk us per call (1 row, gaussian logits, 500 calls back to back):\n");
        printf("| V | k | old | new |\n|---|---|---|---|\n");
        for (size_t i = 0; i < sizeof sh / sizeof *sh; i++) {
            setenv("XSWARM_CUDA_TOPK", "old", 1);
            const double o = time_topk(cu, sh[i].V, sh[i].k, sh[i].temp, 500);
            setenv("XSWARM_CUDA_TOPK", "new", 1);
            const double n = time_topk(cu, sh[i].V, sh[i].k, sh[i].temp, 500);
            printf("| %lld | %d | %.2f | %.2f |\n", (long long)sh[i].V, sh[i].k, o, n);
        }
        if (saved) setenv("XSWARM_CUDA_TOPK", saved, 1);
        else unsetenv("XSWARM_CUDA_TOPK");
        free(saved);
    }
    int vbad = 0;
    for (int t = 0; t < (only ? 0 : 2); t++) {
        vbad += run_view_case(ref, cu, 3000, t);
        vbad += run_view_case(ref, cu, 50, t);
    }
    printf("row ops on [4, 3, V] views: %s\n", vbad ? "FAIL" : "ok");
    CHECK(bad == 0, "%d rows differ from ref", bad);
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_sample");
}
