/*
 * test_graph_api.c — the graph driver and the device sampling counter on
 * host backends (no GPU needed):
 *  - ref and cpu have no graph ops: xs_graph_run runs the work eagerly,
 *    every time, and records nothing;
 *  - sample_topk with a counter tensor (i32 or i64 [1], also a negative
 *    part) picks exactly what sample_topk with the summed counter picks, on
 *    ref and cpu; a bad counter tensor is an error naming it.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/graph.h"
#include "backend/ops.h"
#include "testutil.h"

typedef struct scale_job {
    xs_backend *be;
    xs_tensor *y, *x;
    int runs;
} scale_job;

static xs_status scale_fn(void *p) {
    scale_job *j = p;
    j->runs++;
    return xs_op_scale(j->be, j->y, j->x, 2.0f, 1.0f);
}

static void check_eager(const char *name) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open(name, 1, &be) == XS_OK, "open %s", name);
    if (!be) return;
    CHECK(!xs_graph_available(be), "%s: no graph ops", name);
    float xv[4] = {1, -2, 3.5f, 8}, yv[4];
    int64_t n = 4;
    xs_tensor x, y;
    CHECK(xs_tensor_alloc(be, XS_F32, 1, &n, &x) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_F32, 1, &n, &y) == XS_OK, "alloc");
    xs_graph g;
    memset(&g, 0, sizeof g);
    scale_job j = {be, &y, &x, 0};
    bool ok = true;
    for (int it = 0; it < 3; it++) {
        xv[0] = (float)it;
        ok &= xs_tensor_upload(be, &x, xv) == XS_OK;
        ok &= xs_graph_run(be, &g, 7, scale_fn, &j) == XS_OK;
        ok &= xs_tensor_download(be, yv, &y) == XS_OK;
        for (int i = 0; i < 4; i++) ok &= yv[i] == xv[i] * 2.0f + 1.0f;
    }
    CHECK(ok, "%s: eager results follow the inputs", name);
    CHECK(j.runs == 3 && g.exec == NULL && g.captures == 0, "%s: ran 3 times, nothing recorded",
          name);
    xs_graph_free(be, &g);
    xs_tensor_free(be, &x);
    xs_tensor_free(be, &y);
    xs_backend_close(be);
}

static void check_counter(const char *name) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open(name, 1, &be) == XS_OK, "open %s", name);
    if (!be) return;
    const int64_t M = 3, V = 300;
    int64_t ls[2] = {M, V}, one = 1;
    float *l = malloc((size_t)(M * V) * sizeof *l);
    test_fill_uniform(l, M * V, 11, -4.0f, 4.0f);
    xs_tensor lt, a, b, c32, c64;
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ls, &lt) == XS_OK && xs_tensor_upload(be, &lt, l) == XS_OK,
          "logits");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &M, &a) == XS_OK, "ids");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &M, &b) == XS_OK, "ids");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &one, &c32) == XS_OK, "counter i32");
    CHECK(xs_tensor_alloc(be, XS_I64, 1, &one, &c64) == XS_OK, "counter i64");
    int same = 0, total = 0, differ_from_base = 0;
    const int32_t parts32[4] = {0, 1, 57, -3};
    const int64_t parts64[4] = {0, 2, 1000000007, -40};
    for (int i = 0; i < 4; i++) {
        for (int w = 0; w < 2; w++) {
            int64_t part = w ? parts64[i] : parts32[i];
            xs_tensor *ct = w ? &c64 : &c32;
            xs_tensor_upload(be, ct, w ? (const void *)&parts64[i] : (const void *)&parts32[i]);
            int32_t ga[3], gb[3], g0[3];
            xs_status r1 = xs_op_sample_topk_at(be, &a, &lt, 1.5f, 40, 99, 2, 100, ct);
            xs_status r2 = xs_op_sample_topk(be, &b, &lt, 1.5f, 40, 99, 2, (uint64_t)(100 + part));
            CHECK(r1 == XS_OK && r2 == XS_OK, "%s: sample: %s", name, xs_error_msg());
            xs_tensor_download(be, ga, &a);
            xs_tensor_download(be, gb, &b);
            xs_op_sample_topk(be, &b, &lt, 1.5f, 40, 99, 2, 100);
            xs_tensor_download(be, g0, &b);
            for (int m = 0; m < 3; m++) {
                same += ga[m] == gb[m];
                differ_from_base += part != 0 && ga[m] != g0[m];
                total++;
            }
        }
    }
    CHECK(same == total, "%s: counter tensor = summed counter (%d of %d rows)", name, same, total);
    CHECK(differ_from_base > 0, "%s: the device part changes the draws", name);
    xs_tensor_free(be, &c32);
    int64_t two = 2;
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &two, &c32) == XS_OK, "alloc");
    CHECK(xs_op_sample_topk_at(be, &a, &lt, 1.0f, 5, 1, 0, 0, &c32) == XS_ERR_ARG &&
              strstr(xs_error_msg(), "counter"),
          "%s: a counter of 2 values is refused (%s)", name, xs_error_msg());
    CHECK(xs_op_sample_topk_at(be, &a, &lt, 1.0f, 5, 1, 0, 0, &lt) == XS_ERR_ARG,
          "%s: an f32 counter is refused", name);
    xs_tensor_free(be, &c32);
    xs_tensor_free(be, &c64);
    xs_tensor_free(be, &a);
    xs_tensor_free(be, &b);
    xs_tensor_free(be, &lt);
    free(l);
    xs_backend_close(be);
}

int main(void) {
    check_eager("ref");
    check_eager("cpu");
    check_counter("ref");
    check_counter("cpu");
    uint64_t k1 = xs_graph_key_add(XS_GRAPH_KEY0, 1), k2 = xs_graph_key_add(XS_GRAPH_KEY0, 2);
    CHECK(k1 != k2 && xs_graph_key_add(k1, 5) == xs_graph_key_add(k1, 5), "keys");
    return test_summary("graph_api");
}
