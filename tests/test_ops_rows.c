/*
 * test_ops_rows.c — the row-batched ops of ops.h on host backends (ref,
 * cpu: no native implementation, so the wrapper's per-row loop runs) give
 * exactly the loop of single-row ops, for every KV dtype and ring shape;
 * and bad arguments (NULL cache, rows mismatch, shapes) are clear errors.
 */
#include "rowops_check.h"

static void bad_args(xs_backend *be) {
    const int B = 3;
    const int64_t W = 64, cap = 16;
    xs_kv_cache c[3], c_other;
    xs_kv_cache *pc[3] = {&c[0], &c[1], &c[2]};
    for (int b = 0; b < B; b++) CHECK(xs_kv_cache_alloc(be, cap, W, &c[b]) == XS_OK, "alloc");
    CHECK(xs_kv_cache_alloc(be, cap + 1, W, &c_other) == XS_OK, "alloc");
    xs_tensor k, q, y, pos, pos2, ids, lg, cnt;
    int64_t ks[2] = {B, W}, nb = B, two = 2, ls[2] = {B, 10};
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ks, &k) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ks, &q) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ks, &y) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &nb, &pos) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &two, &pos2) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &nb, &ids) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ls, &lg) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &two, &cnt) == XS_OK, "alloc");
    int32_t ph[3] = {0, 1, 2};
    CHECK(xs_tensor_upload(be, &pos, ph) == XS_OK, "upload");
    xs_status rc;
    xs_error_clear();
    rc = xs_op_kv_store_rows(be, NULL, B, &k, &k, &pos);
    CHECK(rc == XS_ERR_ARG && strstr(xs_error_msg(), "caches"), "NULL caches: %s", xs_error_msg());
    xs_kv_cache *with_null[3] = {&c[0], NULL, &c[2]};
    rc = xs_op_kv_store_rows(be, with_null, B, &k, &k, &pos);
    CHECK(rc == XS_ERR_ARG && strstr(xs_error_msg(), "row 1"), "NULL cache: %s", xs_error_msg());
    rc = xs_op_attention_rows(be, &y, &q, (const xs_kv_cache *const *)with_null, B, &pos, 2, 16, 1.0f);
    CHECK(rc == XS_ERR_ARG && strstr(xs_error_msg(), "row 1"), "NULL cache: %s", xs_error_msg());
    rc = xs_op_kv_store_rows(be, pc, B, &k, &k, &pos2);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "pos"), "B mismatch pos: %s", xs_error_msg());
    rc = xs_op_kv_store_rows(be, pc, 2, &k, &k, &pos2);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "k must be"), "B mismatch k: %s", xs_error_msg());
    rc = xs_op_kv_store_rows(be, pc, 0, &k, &k, &pos);
    CHECK(rc == XS_ERR_ARG, "0 rows: %s", xs_error_msg());
    xs_kv_cache *mixed[3] = {&c[0], &c_other, &c[2]};
    rc = xs_op_kv_store_rows(be, mixed, B, &k, &k, &pos);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "differs"), "unlike caches: %s", xs_error_msg());
    xs_tensor narrow = xs_tensor_slice(&k, 1, 0, W / 2);
    rc = xs_op_attention_rows(be, &y, &narrow, (const xs_kv_cache *const *)pc, B, &pos, 2, 16, 1.0f);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "q must be"), "q width: %s", xs_error_msg());
    rc = xs_op_attention_rows(be, &y, &q, (const xs_kv_cache *const *)pc, B, &pos, 3, 16, 1.0f);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "heads"), "heads: %s", xs_error_msg());
    rc = xs_op_attention_rows(be, &y, &q, (const xs_kv_cache *const *)pc, B, &pos, 2, 0, 1.0f);
    CHECK(rc == XS_ERR_ARG, "context 0: %s", xs_error_msg());
    xs_sample_row rows[3];
    memset(rows, 0, sizeof rows);
    rc = xs_op_sample_rows(be, &ids, &lg, rows, 0, &cnt);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "counters"), "counters: %s", xs_error_msg());
    rc = xs_op_sample_rows(be, &pos2, &lg, rows, 0, NULL);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "ids"), "ids: %s", xs_error_msg());
    rc = xs_op_sample_rows(be, &ids, &lg, NULL, 0, NULL);
    CHECK(rc == XS_ERR_ARG, "NULL rows: %s", xs_error_msg());
    xs_tensor flat = xs_tensor_1d(XS_F32, lg.data, 30);
    rc = xs_op_sample_rows(be, &ids, &flat, rows, 0, NULL);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "logits"), "1-D logits: %s", xs_error_msg());
    xs_error_clear();
    for (int b = 0; b < B; b++) xs_kv_cache_free(be, &c[b]);
    xs_kv_cache_free(be, &c_other);
    xs_tensor *all[] = {&k, &q, &y, &pos, &pos2, &ids, &lg, &cnt};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
}

int main(void) {
    const char *names[] = {"ref", "cpu"};
    for (int n = 0; n < 2; n++) {
        xs_backend *be = NULL;
        CHECK(xs_backend_open(names[n], 2, &be) == XS_OK, "%s: %s", names[n], xs_error_msg());
        if (!be) continue;
        CHECK(!xs_op_rows_native(be), "%s has no native rows ops", names[n]);
        const xs_dtype dts[] = {XS_F32, XS_BF16, XS_Q8_0};
        const int Bs[] = {1, 3, 9};
        const rc_shape shapes[] = {{2, 32, 16, 12}, {4, 32, 8, 8}};
        for (int d = 0; d < 3; d++)
            for (int s = 0; s < 2; s++)
                for (int i = 0; i < 3; i++)
                    rc_check_kv_attn(be, NULL, shapes[s], dts[d], Bs[i], 100 + (uint64_t)(d * 10 + i));
        for (int i = 0; i < 3; i++) rc_check_sample(be, NULL, 300, Bs[i] + 4, 7 + (uint64_t)i, true);
        bad_args(be);
        xs_backend_close(be);
    }
    return test_summary("ops_rows");
}
