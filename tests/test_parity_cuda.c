/*
 * test_parity_cuda.c — every op of the cuda backend against ref (small odd
 * sizes, strided views, the real Mimi / Moshi 7B shapes, every weight
 * dtype), sampling agreement over many seeds, and the errors that only the
 * device can see (reported at the next synchronize). Skips (77) where no
 * CUDA driver or GPU is usable, e.g. in CI.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/ops.h"
#include "core/rng.h"
#include "diag/parity.h"
#include "testutil.h"

static void run_parity(xs_backend *ref, xs_backend *cuda) {
    int pass = 0, fail = 0;
    xs_status rc = xs_parity_run(ref, cuda, NULL, true, stdout, &pass, &fail);
    CHECK(rc == XS_OK, "parity harness failed: %s", xs_error_msg());
    CHECK(fail == 0, "%d of %d parity cases failed", fail, pass + fail);
    CHECK(pass > 100, "only %d parity cases ran", pass);
}

/* The element-wise matmul kernel (odd K, strided x) at every shape too:
 * XSWARM_CUDA_NO_VEC, read when the backend opens, turns the wide-load
 * kernel off. */
static void run_plain_matmul(xs_backend *ref, const char *env, const char *label) {
    setenv(env, "1", 1);
    xs_backend *plain = NULL;
    CHECK(xs_backend_open("cuda", 1, &plain) == XS_OK, "open cuda: %s", xs_error_msg());
    unsetenv(env);
    if (!plain) return;
    int pass = 0, fail = 0;
    printf("== matmul, %s\n", label);
    xs_status rc = xs_parity_run(ref, plain, "matmul", true, stdout, &pass, &fail);
    CHECK(rc == XS_OK && fail == 0 && pass > 40, "plain matmul: %d passed, %d failed", pass, fail);
    xs_backend_close(plain);
}

/* Sampling must give ref's token for many seeds, rows and top-k values,
 * also with heavy ties (logits rounded to 1/8). */
static void check_sampling(xs_backend *ref, xs_backend *cuda) {
    const int64_t rows = 4, V = 2048;
    float *h = malloc((size_t)(rows * V) * sizeof *h);
    test_fill_uniform(h, rows * V, 99, -6.0f, 6.0f);
    for (int64_t i = 0; i < rows * V; i += 2) h[i] = roundf(h[i] * 8.0f) / 8.0f;
    int64_t shp[2] = {rows, V};
    xs_tensor lr, lc, ir, ic;
    CHECK(xs_tensor_alloc(ref, XS_F32, 2, shp, &lr) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(cuda, XS_F32, 2, shp, &lc) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(ref, XS_I32, 1, &rows, &ir) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(cuda, XS_I32, 1, &rows, &ic) == XS_OK, "alloc");
    xs_tensor_upload(ref, &lr, h);
    xs_tensor_upload(cuda, &lc, h);
    const int ks[] = {1, 3, 25, 250, 0};
    const float temps[] = {0.0f, 0.3f, 0.8f, 1.0f, 2.5f};
    int agree = 0, total = 0;
    for (int a = 0; a < 5; a++)
        for (int t = 0; t < 5; t++)
            for (uint64_t seed = 1; seed <= 6; seed++) {
                int32_t a_ids[4], b_ids[4];
                xs_op_sample_topk(ref, &ir, &lr, temps[t], ks[a], seed * 7777, 3, seed * 13);
                CHECK(xs_op_sample_topk(cuda, &ic, &lc, temps[t], ks[a], seed * 7777, 3,
                                        seed * 13) == XS_OK,
                      "sample: %s", xs_error_msg());
                xs_tensor_download(ref, a_ids, &ir);
                CHECK(xs_tensor_download(cuda, b_ids, &ic) == XS_OK, "download: %s", xs_error_msg());
                for (int r = 0; r < 4; r++) agree += a_ids[r] == b_ids[r];
                total += 4;
            }
    CHECK(agree == total, "sampling: cuda agrees with ref on %d of %d draws", agree, total);
    printf("sampling: %d of %d draws identical to ref\n", agree, total);
    xs_tensor_free(ref, &lr);
    xs_tensor_free(cuda, &lc);
    xs_tensor_free(ref, &ir);
    xs_tensor_free(cuda, &ic);
    free(h);
}

/* Errors that depend on device values come back at the next synchronize. */
static void check_device_errors(xs_backend *cuda) {
    float table_h[4 * 32];
    test_fill_uniform(table_h, 4 * 32, 5, -1, 1);
    xs_tensor host = xs_tensor_2d(XS_F32, table_h, 4, 32), table;
    CHECK(xs_backend_weight(cuda, &host, &table) == XS_OK, "weight: %s", xs_error_msg());
    int64_t n = 3, yshape[2] = {3, 32};
    xs_tensor ids, y;
    xs_tensor_alloc(cuda, XS_I32, 1, &n, &ids);
    xs_tensor_alloc(cuda, XS_F32, 2, yshape, &y);
    const int32_t bad[3] = {1, 7, -1};
    xs_tensor_upload(cuda, &ids, bad);
    CHECK(xs_op_embedding(cuda, &y, &table, &ids) == XS_OK, "embedding enqueues");
    xs_status rc = cuda->iface->synchronize(cuda);
    CHECK(rc == XS_ERR_ARG && strstr(xs_error_msg(), "id 7"),
          "out-of-range id reported at synchronize (got %d: %s)", (int)rc, xs_error_msg());
    CHECK(cuda->iface->synchronize(cuda) == XS_OK, "the error is reported once");
    const int32_t good[3] = {3, -1, 0};
    xs_tensor_upload(cuda, &ids, good);
    CHECK(xs_op_embedding(cuda, &y, &table, &ids) == XS_OK, "embedding");
    float out[3 * 32];
    CHECK(xs_tensor_download(cuda, out, &y) == XS_OK, "download: %s", xs_error_msg());
    CHECK(out[5] == table_h[3 * 32 + 5] && out[32 + 5] == 0.0f && out[64 + 31] == table_h[31],
          "embedding rows (id -1 gives zeros)");

    xs_kv_cache kv;
    CHECK(xs_kv_cache_alloc(cuda, 4, 32, &kv) == XS_OK, "kv alloc");
    int64_t one = 1;
    xs_tensor pos, row;
    xs_tensor_alloc(cuda, XS_I32, 1, &one, &pos);
    xs_tensor_alloc(cuda, XS_F32, 2, (int64_t[]){1, 32}, &row);
    xs_tensor_upload(cuda, &row, table_h);
    const int32_t neg = -3;
    xs_tensor_upload(cuda, &pos, &neg);
    CHECK(xs_op_kv_store(cuda, &kv, &row, &row, &pos) == XS_OK, "kv_store enqueues");
    rc = cuda->iface->synchronize(cuda);
    CHECK(rc == XS_ERR_ARG && strstr(xs_error_msg(), "negative position"),
          "negative kv position reported (got %d: %s)", (int)rc, xs_error_msg());
    xs_kv_cache_free(cuda, &kv);
    xs_tensor_free(cuda, &pos);
    xs_tensor_free(cuda, &row);
    xs_tensor_free(cuda, &ids);
    xs_tensor_free(cuda, &y);
    xs_backend_weight_release(cuda, &table);
}

/* Asking for more memory than any GPU has fails cleanly, naming the size. */
static void check_oom(xs_backend *cuda) {
    int64_t huge[2] = {(int64_t)1 << 22, (int64_t)1 << 20}; /* 16 TiB of f32 */
    xs_tensor t;
    xs_status rc = xs_tensor_alloc(cuda, XS_F32, 2, huge, &t);
    CHECK(rc == XS_ERR_NOMEM && strstr(xs_error_msg(), "17592186044416 bytes"),
          "out of memory names the bytes (got %d: %s)", (int)rc, xs_error_msg());
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) {
        printf("cuda not usable: %s\n", why);
        /* the backend must still refuse to open, with the reason */
        xs_backend *be = NULL;
        xs_status rc = xs_backend_open("cuda", 1, &be);
        printf("open cuda: %d (%s)\n", (int)rc, xs_error_msg());
        test_skip(why);
    }
    printf("cuda device: %s\n", why);
    xs_backend *ref = NULL, *cuda = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    CHECK(xs_backend_open("cuda", 1, &cuda) == XS_OK, "open cuda: %s", xs_error_msg());
    if (!ref || !cuda) return test_summary("test_parity_cuda");
    run_parity(ref, cuda);
    run_plain_matmul(ref, "XSWARM_CUDA_NO_VEC", "element-wise kernel only");
    check_sampling(ref, cuda);
    check_device_errors(cuda);
    check_oom(cuda);
    xs_backend_close(cuda);
    xs_backend_close(ref);
    return test_summary("test_parity_cuda");
}
