/*
 * test_cpu_sample.c — the cpu backend's sample_topk (one-pass top-k) picks
 * exactly ref's token (full sort) over many seeds, for k from 1 to past the
 * fast path's limit, with heavy ties (logits rounded to 1/8), a few NaN and
 * infinite logits, and temperature 0 (argmax).
 */
#include <math.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "testutil.h"

int main(void) {
    xs_backend *ref = NULL, *cpu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    CHECK(xs_backend_open("cpu", 2, &cpu) == XS_OK, "open cpu");
    if (!ref || !cpu) return test_summary("test_cpu_sample");
    enum { M = 6, V = 2048 };
    static float l[M * V];
    int32_t ia[M], ib[M];
    const int ks[] = {1, 2, 5, 25, 250, 1024, 1500, 0};
    const float temps[] = {0.0f, 0.7f, 1.0f, 2.5f};
    int mismatches = 0, runs = 0, distinct = 0, last = -1;
    for (int rep = 0; rep < 12; rep++) {
        test_fill_uniform(l, M * V, 100 + (uint64_t)rep, -4, 4);
        for (int i = 0; i < M * V; i++) l[i] = roundf(l[i] * 8.0f) / 8.0f; /* many ties */
        if (rep % 3 == 1) l[17] = NAN, l[V + 5] = NAN;
        if (rep % 4 == 2) l[2 * V + 100] = INFINITY, l[3 * V + 7] = -INFINITY;
        xs_tensor lt = xs_tensor_2d(XS_F32, l, M, V);
        xs_tensor ta = xs_tensor_1d(XS_I32, ia, M), tb = xs_tensor_1d(XS_I32, ib, M);
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
                uint64_t seed = 7 + (uint64_t)rep * 131 + ki;
                xs_status ra = xs_op_sample_topk(ref, &ta, &lt, temps[ti], ks[ki], seed, 3, 10 * rep);
                xs_status rb = xs_op_sample_topk(cpu, &tb, &lt, temps[ti], ks[ki], seed, 3, 10 * rep);
                CHECK(ra == XS_OK && rb == XS_OK, "sample_topk failed: %s", xs_error_msg());
                for (int m = 0; m < M; m++) {
                    runs++;
                    if (ia[m] != ib[m]) {
                        mismatches++;
                        if (mismatches < 5)
                            fprintf(stderr, "rep %d k %d temp %g row %d: ref %d cpu %d\n", rep,
                                    ks[ki], temps[ti], m, ia[m], ib[m]);
                    }
                    if (ia[m] != last) distinct++, last = ia[m];
                }
            }
    }
    CHECK(mismatches == 0, "%d of %d sampled tokens differ from ref", mismatches, runs);
    CHECK(distinct > runs / 4, "tokens vary (%d changes in %d draws)", distinct, runs);
    xs_backend_close(cpu);
    xs_backend_close(ref);
    return test_summary("test_cpu_sample");
}
