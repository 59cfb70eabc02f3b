/*
 * test_cuda_attention.c — cuda attention against ref where the chunk
 * kernel skips work: a 3000-slot ring with only a few filled positions
 * (early conversation), a short context on a long ring (one or two live
 * chunks, also wrapping past the ring's end), context longer than the
 * ring, the single-chunk path that writes y without the merge (depformer
 * size), and a head dim that is not a multiple of 32 (generic score loop).
 * The cache is filled through kv_store on both backends (f32, bf16, q8_0),
 * so both hold the same values. Skips (77) where no CUDA GPU is usable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "testutil.h"

typedef struct att_case {
    const char *name;
    int64_t cap, heads, dim, T, last, context, first; /* positions first..last stored */
} att_case;

static const att_case k_cases[] = {
    {"7B ring, 35 filled", 3000, 32, 128, 1, 34, 3000, 0},
    {"7B ring, 2 queries, short context", 3000, 4, 128, 2, 5000, 100, 1990},
    {"short context wrapping the ring end", 300, 3, 64, 3, 310, 50, 0},
    {"context longer than the ring", 200, 2, 64, 1, 450, 1000, 0},
    {"one position", 300, 2, 32, 1, 0, 300, 0},
    {"depformer, partly filled", 8, 16, 64, 1, 5, 8, 0},
    {"depformer, wrapped", 8, 16, 64, 1, 20, 8, 0},
    {"head dim 40", 256, 2, 40, 2, 130, 64, 0},
};

/* One backend: cache of dtype dt filled with positions first..last, then
 * attention for T queries at last-T+1..last; y (T x width) to the host. */
static xs_status run_one(xs_backend *be, const att_case *c, xs_dtype dt, const float *kv,
                         const float *q, float *y_host) {
    const int64_t width = c->heads * c->dim, nst = c->last - c->first + 1;
    xs_kv_cache cache = {0};
    xs_tensor k = {0}, v = {0}, ps = {0}, qt = {0}, yt = {0}, pq = {0};
    int32_t *pv = malloc((size_t)(nst > c->T ? nst : c->T) * sizeof *pv);
    if (!pv) return xs_error(XS_ERR_NOMEM, "test: out of memory");
    int64_t ks[2] = {nst, width}, qs[2] = {c->T, width};
    xs_status rc = xs_kv_cache_alloc_dtype(be, c->cap, width, dt, &cache);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ks, &k);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ks, &v);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_I32, 1, &nst, &ps);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, qs, &qt);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, qs, &yt);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_I32, 1, &c->T, &pq);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &k, kv);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &v, kv + nst * width);
    for (int64_t i = 0; i < nst; i++) pv[i] = (int32_t)(c->first + i);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &ps, pv);
    if (rc == XS_OK) rc = xs_op_kv_store(be, &cache, &k, &v, &ps);
    for (int64_t t = 0; t < c->T; t++) pv[t] = (int32_t)(c->last - (c->T - 1) + t);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &pq, pv);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &qt, q);
    if (rc == XS_OK)
        rc = xs_op_attention(be, &yt, &qt, &cache, &pq, (int)c->heads, c->context,
                             1.0f / sqrtf((float)c->dim));
    if (rc == XS_OK) rc = xs_tensor_download(be, y_host, &yt);
    free(pv);
    xs_tensor_free(be, &k);
    xs_tensor_free(be, &v);
    xs_tensor_free(be, &ps);
    xs_tensor_free(be, &qt);
    xs_tensor_free(be, &yt);
    xs_tensor_free(be, &pq);
    xs_kv_cache_free(be, &cache);
    return rc;
}

static void check_case(xs_backend *ref, xs_backend *cuda, const att_case *c, xs_dtype dt) {
    const int64_t width = c->heads * c->dim, nst = c->last - c->first + 1;
    float *kv = malloc((size_t)(2 * nst * width) * sizeof *kv);
    float *q = malloc((size_t)(c->T * width) * sizeof *q);
    float *yr = malloc((size_t)(c->T * width) * sizeof *yr);
    float *yc = malloc((size_t)(c->T * width) * sizeof *yc);
    if (!kv || !q || !yr || !yc) {
        CHECK(0, "%s: out of memory", c->name);
        free(kv), free(q), free(yr), free(yc);
        return;
    }
    test_fill_uniform(kv, 2 * nst * width, 17 + (uint64_t)c->cap, -1.0f, 1.0f);
    test_fill_uniform(q, c->T * width, 29 + (uint64_t)c->last, -2.0f, 2.0f);
    for (int64_t i = 0; i < c->T * width; i++) yc[i] = NAN; /* every output must be written */
    const xs_status r1 = run_one(ref, c, dt, kv, q, yr);
    const xs_status r2 = r1 == XS_OK ? run_one(cuda, c, dt, kv, q, yc) : r1;
    CHECK(r1 == XS_OK && r2 == XS_OK, "%s (%s): %s", c->name, xs_dtype_name(dt), xs_error_msg());
    if (r1 == XS_OK && r2 == XS_OK) {
        double energy = 0.0;
        for (int64_t i = 0; i < c->T * width; i++) energy += (double)yr[i] * yr[i];
        const double e = test_nmse(yr, yc, c->T * width);
        CHECK(energy > 0.0, "%s (%s): ref output is all zero", c->name, xs_dtype_name(dt));
        CHECK(e < 1e-9, "%s (%s): nmse %.3g", c->name, xs_dtype_name(dt), e);
        printf("%-40s %-5s nmse %.3g\n", c->name, xs_dtype_name(dt), e);
    }
    free(kv), free(q), free(yr), free(yc);
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    xs_backend *ref = NULL, *cuda = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cuda", 1, &cuda) == XS_OK, "open cuda: %s", xs_error_msg());
    if (ref && cuda) {
        const xs_dtype dts[] = {XS_F32, XS_BF16, XS_Q8_0};
        for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++)
            for (int d = 0; d < 3; d++) {
                if (dts[d] == XS_Q8_0 && k_cases[i].dim % 32) continue; /* whole blocks */
                check_case(ref, cuda, &k_cases[i], dts[d]);
            }
    }
    xs_backend_close(cuda);
    xs_backend_close(ref);
    return test_summary("test_cuda_attention");
}
