/*
 * test_cuda_fused.c — the fused ops of ops.h (add_rms_norm, add_layer_norm,
 * embedding_sum) against their definition, the composition of single ops.
 *
 * Everywhere (no GPU needed): on ref and cpu the wrappers run the
 * composition, bit for bit what the single ops give; bad arguments are
 * refused before anything is written; an op hook sees the single ops
 * unless it opts in (xs_op_hook_takes_fused_); fault injection still hits
 * the single op.
 * With a usable GPU: the cuda fused kernels at the real shapes (4096 and
 * 1024 wide rows, 17 embedding tables of mixed dtypes, more tables than one
 * launch takes, accumulate) equal the cuda composition bit for bit, equal
 * ref (exactly for sums, within the norm tolerance for norms), give each row
 * the value it gets alone, and report an out-of-range id. Without a GPU
 * that part is skipped (the rest still runs).
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backend/fault.h"
#include "backend/op_hook.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "testutil.h"

#define TOL_ROW 1e-10

/* ---- add + norm ----------------------------------------------------------------- */

typedef struct an_case {
    const char *what;
    int64_t rows, d;
    bool layer, bias;
    float eps;
} an_case;

static const an_case k_an[] = {
    {"7B temporal rms 4096", 1, 4096, false, false, 1e-8f},
    {"depformer rms 1024, 8 rows", 8, 1024, false, false, 1e-8f},
    {"rms, odd width (generic path)", 3, 37, false, false, 1e-5f},
    {"rms, wider than the fast path", 2, 4100, false, false, 1e-5f},
    {"layer norm 512 with bias", 4, 512, true, true, 1e-5f},
    {"layer norm 4096 no bias", 2, 4096, true, false, 1e-5f},
    {"layer norm odd with bias", 3, 37, true, true, 1e-5f},
};

/* Runs x += h; y = norm(x) on be, fused wrapper or explicit composition;
 * xo, yo get the results (rows * d floats). Host data from the case's seed. */
static xs_status run_add_norm(xs_backend *be, const an_case *c, bool composed, uint64_t seed,
                              float *xo, float *yo) {
    const int64_t n = c->rows * c->d, shape[2] = {c->rows, c->d}, d = c->d;
    float *hx = malloc((size_t)n * sizeof *hx), *hh = malloc((size_t)n * sizeof *hh);
    float *hw = malloc((size_t)d * sizeof *hw), *hb = malloc((size_t)d * sizeof *hb);
    test_fill_uniform(hx, n, seed, -2.0f, 2.0f);
    test_fill_uniform(hh, n, seed + 1, -1.0f, 1.0f);
    test_fill_uniform(hw, d, seed + 2, 0.5f, 1.5f);
    test_fill_uniform(hb, d, seed + 3, -0.25f, 0.25f);
    xs_tensor x = {0}, h = {0}, y = {0}, w = {0}, b = {0};
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, shape, &x);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, shape, &h);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, shape, &y);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 1, &d, &w);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 1, &d, &b);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &x, hx);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &h, hh);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &w, hw);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &b, hb);
    const xs_tensor *bp = c->bias ? &b : NULL;
    if (rc == XS_OK && composed) {
        rc = xs_op_add(be, &x, &x, &h);
        if (rc == XS_OK)
            rc = c->layer ? xs_op_layer_norm(be, &y, &x, &w, bp, c->eps)
                          : xs_op_rms_norm(be, &y, &x, &w, c->eps);
    } else if (rc == XS_OK) {
        rc = c->layer ? xs_op_add_layer_norm(be, &y, &x, &h, &w, bp, c->eps)
                      : xs_op_add_rms_norm(be, &y, &x, &h, &w, c->eps);
    }
    if (rc == XS_OK) rc = xs_tensor_download(be, xo, &x);
    if (rc == XS_OK) rc = xs_tensor_download(be, yo, &y);
    xs_tensor *all[] = {&x, &h, &y, &w, &b};
    for (int i = 0; i < 5; i++) xs_tensor_free(be, all[i]);
    free(hx), free(hh), free(hw), free(hb);
    return rc;
}

/* fused == composition on be (bit for bit); cmp (if non-NULL): against ref's
 * results rx, ry: x exact, y within the norm tolerance. */
static void check_add_norm(xs_backend *be, const char *bn, const an_case *c, const float *rx,
                           const float *ry, float *fx, float *fy) {
    const int64_t n = c->rows * c->d;
    float *cx = malloc((size_t)n * sizeof *cx), *cy = malloc((size_t)n * sizeof *cy);
    CHECK(run_add_norm(be, c, false, 11, fx, fy) == XS_OK, "%s %s fused: %s", bn, c->what,
          xs_error_msg());
    CHECK(run_add_norm(be, c, true, 11, cx, cy) == XS_OK, "%s %s composed: %s", bn, c->what,
          xs_error_msg());
    CHECK(!memcmp(fx, cx, (size_t)n * sizeof *fx) && !memcmp(fy, cy, (size_t)n * sizeof *fy),
          "%s %s: fused differs from add then norm (max |dy| %g)", bn, c->what,
          test_max_abs_diff(fy, cy, n));
    if (rx) {
        CHECK(!memcmp(fx, rx, (size_t)n * sizeof *fx), "%s %s: x differs from ref", bn, c->what);
        const double e = test_nmse(ry, fy, n);
        CHECK(e <= TOL_ROW, "%s %s: y nmse %g vs ref", bn, c->what, e);
    }
    free(cx), free(cy);
}

/* ---- embedding sum -------------------------------------------------------------- */

typedef struct es_case {
    const char *what;
    int64_t n, d, v; /* rows of y, width, rows of each table */
    int count;
    bool accumulate;
    bool mixed;      /* dtypes cycle f32, f16, bf16, q8_0, q4_0; else all bf16 */
} es_case;

static const es_case k_es[] = {
    {"7B input: 17 tables, bf16", 1, 4096, 40, 17, false, false},
    {"7B input, 4 rows, mixed dtypes", 4, 4096, 40, 17, false, true},
    {"depformer input: += one table", 3, 1024, 50, 1, true, true},
    {"30 terms (two launches), accumulate", 2, 256, 9, 30, true, true},
    {"one term", 5, 64, 7, 1, false, true},
};

static xs_dtype es_dtype(const es_case *c, int i) {
    static const xs_dtype cyc[5] = {XS_F32, XS_F16, XS_BF16, XS_Q8_0, XS_Q4_0};
    return c->mixed ? cyc[i % 5] : XS_BF16;
}

/* Host table i in its dtype (caller frees data). */
static xs_tensor make_table(const es_case *c, int i) {
    const xs_dtype dt = es_dtype(c, i);
    const int64_t shape[2] = {c->v, c->d}, nv = c->v * c->d;
    float *f = malloc((size_t)nv * sizeof *f);
    test_fill_uniform(f, nv, 500 + (uint64_t)i * 13, -1.0f, 1.0f);
    f[1] = -0.0f; /* a negative zero where some row reads it */
    void *data = f;
    if (dt != XS_F32) {
        data = malloc((size_t)c->v * xs_dtype_row_bytes(dt, c->d));
        for (int64_t r = 0; r < c->v; r++) {
            const float *src = f + r * c->d;
            char *dst = (char *)data + (size_t)r * xs_dtype_row_bytes(dt, c->d);
            if (dt == XS_Q8_0) xs_quantize_row_q8_0(src, (xs_block_q8_0 *)dst, c->d);
            else if (dt == XS_Q4_0) xs_quantize_row_q4_0(src, (xs_block_q4_0 *)dst, c->d);
            else
                for (int64_t j = 0; j < c->d; j++)
                    ((uint16_t *)dst)[j] = dt == XS_F16 ? xs_f32_to_f16(src[j]) : xs_f32_to_bf16(src[j]);
        }
        free(f);
    }
    return xs_tensor_make(dt, 2, shape, data);
}

/* Runs the case on be (fused wrapper, or the composition written out);
 * bad_id >= 0 plants that id in term 0, row 0. yo gets y [n, d]. */
static xs_status run_emb_sum(xs_backend *be, const es_case *c, bool composed, int bad_id,
                             float *yo) {
    const int64_t shape[2] = {c->n, c->d}, nn = c->n * c->d, n = c->n;
    xs_tensor host[32], tab[32], ids[32], y = {0}, s = {0};
    const xs_tensor *tp[32], *ip[32];
    memset(tab, 0, sizeof tab);
    memset(ids, 0, sizeof ids);
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, shape, &y);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, shape, &s);
    float *hy = malloc((size_t)nn * sizeof *hy);
    test_fill_uniform(hy, nn, 77, -3.0f, 3.0f);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &y, hy);
    for (int i = 0; i < c->count; i++) {
        host[i] = make_table(c, i);
        if (rc == XS_OK) rc = xs_backend_weight(be, &host[i], &tab[i]);
        int32_t hid[16];
        for (int64_t r = 0; r < n; r++)
            hid[r] = (i + r) % 5 == 3 ? -1 : (int32_t)((i * 7 + r * 3) % c->v);
        if (bad_id >= 0 && i == 0) hid[0] = bad_id;
        if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_I32, 1, &n, &ids[i]);
        if (rc == XS_OK) rc = xs_tensor_upload(be, &ids[i], hid);
        tp[i] = &tab[i];
        ip[i] = &ids[i];
    }
    if (rc == XS_OK && !composed) {
        rc = xs_op_embedding_sum(be, &y, c->count, tp, ip, c->accumulate, &s);
    } else {
        for (int i = 0; rc == XS_OK && i < c->count; i++) {
            if (i == 0 && !c->accumulate) {
                rc = xs_op_embedding(be, &y, tp[0], ip[0]);
                continue;
            }
            rc = xs_op_embedding(be, &s, tp[i], ip[i]);
            if (rc == XS_OK) rc = xs_op_add(be, &y, &y, &s);
        }
    }
    if (rc == XS_OK) rc = xs_tensor_download(be, yo, &y);
    for (int i = 0; i < c->count; i++) {
        if (host[i].data != tab[i].data) xs_backend_weight_release(be, &tab[i]);
        free(host[i].data);
        xs_tensor_free(be, &ids[i]);
    }
    xs_tensor_free(be, &y);
    xs_tensor_free(be, &s);
    free(hy);
    return rc;
}

static void check_emb_sum(xs_backend *be, const char *bn, const es_case *c, const float *ry,
                          float *fy) {
    const int64_t nn = c->n * c->d;
    float *cy = malloc((size_t)nn * sizeof *cy);
    CHECK(run_emb_sum(be, c, false, -1, fy) == XS_OK, "%s %s fused: %s", bn, c->what,
          xs_error_msg());
    CHECK(run_emb_sum(be, c, true, -1, cy) == XS_OK, "%s %s composed: %s", bn, c->what,
          xs_error_msg());
    CHECK(!memcmp(fy, cy, (size_t)nn * sizeof *fy), "%s %s: fused differs from the composition "
          "(max %g)", bn, c->what, test_max_abs_diff(fy, cy, nn));
    if (ry)
        CHECK(!memcmp(fy, ry, (size_t)nn * sizeof *fy), "%s %s: differs from ref (max %g)", bn,
              c->what, test_max_abs_diff(fy, ry, nn));
    double s = 0;
    for (int64_t i = 0; i < nn; i++) s += fabs(fy[i]);
    CHECK(s > 0, "%s %s: all zeros", bn, c->what);
    free(cy);
}

/* ---- hooks, faults, bad arguments --------------------------------------------------- */

static int g_seen[128], g_nseen;
static void count_hook(xs_backend *be, xs_op op, int phase, ...) {
    (void)be;
    if (phase == XS_OP_HOOK_BEFORE && g_nseen < 128) g_seen[g_nseen++] = (int)op;
}

/* Which ops a hook sees for one add_rms_norm on be (takes_fused: opt in). */
static int hook_sees(xs_backend *be, bool takes_fused, int *ops) {
    const an_case c = {"hook", 2, 64, false, false, 1e-5f};
    float xo[128], yo[128];
    g_nseen = 0;
    xs_op_hook_takes_fused_ = takes_fused;
    xs_op_hook_ = count_hook;
    CHECK(run_add_norm(be, &c, false, 5, xo, yo) == XS_OK, "hooked run: %s", xs_error_msg());
    xs_op_hook_ = NULL;
    xs_op_hook_takes_fused_ = false;
    int k = 0;
    for (int i = 0; i < g_nseen; i++)
        if (g_seen[i] == XS_OP_ADD || g_seen[i] == XS_OP_RMS_NORM ||
            g_seen[i] == XS_OP_FUSED_ADD_NORM)
            ops[k++] = g_seen[i];
    return k;
}

static void test_hooks(xs_backend *be, const char *bn, bool has_fused) {
    int ops[128];
    int k = hook_sees(be, false, ops);
    CHECK(k == 2 && ops[0] == XS_OP_ADD && ops[1] == XS_OP_RMS_NORM,
          "%s: a hook sees add then rms_norm (saw %d ops)", bn, k);
    k = hook_sees(be, true, ops);
    if (has_fused)
        CHECK(k == 1 && ops[0] == XS_OP_FUSED_ADD_NORM,
              "%s: an opted-in hook sees the fused op (saw %d ops, first %d)", bn, k, ops[0]);
    else
        CHECK(k == 2 && ops[0] == XS_OP_ADD, "%s: no fused op: the composition (saw %d)", bn, k);
    CHECK(!strcmp(xs_op_name(XS_OP_FUSED_ADD_NORM), "add_norm") &&
              !strcmp(xs_op_name(XS_OP_FUSED_EMBEDDING_SUM), "embedding_sum") &&
              xs_op_from_name("add_norm") < 0,
          "fused ops are named but not fault-injectable names");
}

/* A fault on the single op still corrupts what add_rms_norm computes. */
static void test_fault(xs_backend *be, const char *bn) {
    const an_case c = {"fault", 2, 64, false, false, 1e-5f};
    float x0[128], y0[128], x1[128], y1[128];
    CHECK(run_add_norm(be, &c, false, 9, x0, y0) == XS_OK, "clean: %s", xs_error_msg());
    char spec[64];
    snprintf(spec, sizeof spec, "%s:rms_norm", bn);
    CHECK(xs_fault_configure(spec) == XS_OK, "fault configure: %s", xs_error_msg());
    CHECK(run_add_norm(be, &c, false, 9, x1, y1) == XS_OK, "faulty: %s", xs_error_msg());
    CHECK(xs_fault_hits() == 1, "%s: the fault hit rms_norm once (%lld)", bn,
          (long long)xs_fault_hits());
    CHECK(!memcmp(x0, x1, sizeof x0) && memcmp(y0, y1, sizeof y0),
          "%s: x intact, y corrupted under the fault", bn);
    xs_fault_configure(NULL);
}

static void test_bad_args(xs_backend *be) {
    int64_t s2[2] = {2, 8}, s3[2] = {3, 8}, d8 = 8, d7 = 7, n2 = 2, n3 = 3;
    xs_tensor x, h, y, w, w7, hi, y3, ids2, ids3, tab, tab16;
    xs_tensor_alloc(be, XS_F32, 2, s2, &x);
    xs_tensor_alloc(be, XS_F32, 2, s2, &h);
    xs_tensor_alloc(be, XS_F32, 2, s2, &y);
    xs_tensor_alloc(be, XS_F32, 2, s3, &y3);
    xs_tensor_alloc(be, XS_I32, 2, s2, &hi);
    xs_tensor_alloc(be, XS_F32, 1, &d8, &w);
    xs_tensor_alloc(be, XS_F32, 1, &d7, &w7);
    xs_tensor_alloc(be, XS_I32, 1, &n2, &ids2);
    xs_tensor_alloc(be, XS_I32, 1, &n3, &ids3);
    int64_t ts[2] = {4, 8}, ts16[2] = {4, 16};
    xs_tensor_alloc(be, XS_F32, 2, ts, &tab);
    xs_tensor_alloc(be, XS_F32, 2, ts16, &tab16);
    float hx[16];
    test_fill_uniform(hx, 16, 3, -1, 1);
    xs_tensor_upload(be, &x, hx);
    const int32_t id2[2] = {1, 2};
    xs_tensor_upload(be, &ids2, id2);
    xs_tensor xt = xs_tensor_transpose(&x, 0, 1);
    xs_tensor yt = xs_tensor_transpose(&y, 0, 1), ht = xs_tensor_transpose(&h, 0, 1);

    CHECK(xs_op_add_rms_norm(NULL, &y, &x, &h, &w, 1e-5f) == XS_ERR_ARG, "NULL backend");
    CHECK(xs_op_add_rms_norm(be, &y3, &x, &h, &w, 1e-5f) == XS_ERR_SHAPE &&
              strstr(xs_error_msg(), "add_rms_norm"), "y of another shape: %s", xs_error_msg());
    CHECK(xs_op_add_rms_norm(be, &y, &x, &hi, &w, 1e-5f) == XS_ERR_DTYPE, "h i32");
    CHECK(xs_op_add_rms_norm(be, &y, &x, &h, &w7, 1e-5f) == XS_ERR_SHAPE, "alpha of 7");
    CHECK(xs_op_add_rms_norm(be, &yt, &xt, &ht, &w, 1e-5f) == XS_ERR_SHAPE,
          "strided x and y: %s", xs_error_msg());
    CHECK(xs_op_add_rms_norm(be, &y, &x, NULL, &w, 1e-5f) == XS_ERR_ARG, "NULL h");
    CHECK(xs_op_add_layer_norm(be, &y, &x, &h, &w, &w7, 1e-5f) == XS_ERR_SHAPE &&
              strstr(xs_error_msg(), "add_layer_norm"), "bias of 7: %s", xs_error_msg());
    float back[16];
    xs_tensor_download(be, back, &x);
    CHECK(!memcmp(back, hx, sizeof hx), "a refused call leaves x as it was");

    const xs_tensor *t1[2] = {&tab, &tab}, *i1[2] = {&ids2, &ids2};
    const xs_tensor *t16[2] = {&tab, &tab16}, *i3[2] = {&ids2, &ids3};
    const xs_tensor *thi[1] = {&hi};
    CHECK(xs_op_embedding_sum(be, &y, 0, t1, i1, false, &h) == XS_ERR_ARG, "count 0");
    CHECK(xs_op_embedding_sum(be, &y, 1025, t1, i1, false, &h) == XS_ERR_ARG, "count 1025");
    CHECK(xs_op_embedding_sum(be, &y, 2, NULL, i1, false, &h) == XS_ERR_ARG, "NULL tables");
    CHECK(xs_op_embedding_sum(be, &y, 2, t16, i1, false, &h) == XS_ERR_SHAPE &&
              strstr(xs_error_msg(), "embedding_sum"), "table of another width: %s",
          xs_error_msg());
    CHECK(xs_op_embedding_sum(be, &y, 2, t1, i3, false, &h) == XS_ERR_SHAPE, "3 ids for 2 rows");
    CHECK(xs_op_embedding_sum(be, &y, 1, thi, i1, false, &h) == XS_ERR_DTYPE, "i32 table");
    CHECK(xs_op_embedding_sum(be, &y, 2, t1, i1, false, NULL) != XS_OK, "2 terms, no scratch");
    CHECK(xs_op_embedding_sum(be, &y, 1, t1, i1, true, &y3) == XS_ERR_SHAPE,
          "accumulate with a scratch of another shape");
    CHECK(xs_op_embedding_sum(be, &y, 1, t1, i1, false, NULL) == XS_OK,
          "one fresh term needs no scratch: %s", xs_error_msg());
    xs_tensor *all[] = {&x, &h, &y, &w, &w7, &hi, &y3, &ids2, &ids3, &tab, &tab16};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
}

/* ---- main ------------------------------------------------------------------------ */

int main(void) {
    setenv("XSWARM_FUSE", "0", 1); /* read on first use: the default mode then is off */
    xs_backend *ref = NULL, *cpu = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cpu", 2, &cpu) == XS_OK, "cpu: %s", xs_error_msg());
    if (!ref || !cpu) return test_summary("test_cuda_fused");
    const bool gpu = xs_backend_cuda_usable(NULL, 0);
    if (gpu) CHECK(xs_backend_open("cuda", 0, &cu) == XS_OK, "cuda: %s", xs_error_msg());
    if (cu) {
        CHECK(!xs_op_fused_native(cu, XS_OP_FUSED_ADD_NORM), "XSWARM_FUSE=0 turns fusion off");
        xs_op_fuse_set(1);
        CHECK(xs_op_fused_native(cu, XS_OP_FUSED_ADD_NORM) &&
                  xs_op_fused_native(cu, XS_OP_FUSED_EMBEDDING_SUM), "cuda fuses when on");
    }
    xs_op_fuse_set(1);
    CHECK(!xs_op_fused_native(ref, XS_OP_FUSED_ADD_NORM) &&
              !xs_op_fused_native(cpu, XS_OP_FUSED_EMBEDDING_SUM), "host backends compose");

    for (size_t i = 0; i < sizeof k_an / sizeof *k_an; i++) {
        const an_case *c = &k_an[i];
        const int64_t n = c->rows * c->d;
        float *rx = malloc((size_t)n * sizeof *rx), *ry = malloc((size_t)n * sizeof *ry);
        float *fx = malloc((size_t)n * sizeof *fx), *fy = malloc((size_t)n * sizeof *fy);
        check_add_norm(ref, "ref", c, NULL, NULL, rx, ry);
        check_add_norm(cpu, "cpu", c, rx, ry, fx, fy);
        if (cu) check_add_norm(cu, "cuda", c, rx, ry, fx, fy);
        free(rx), free(ry), free(fx), free(fy);
    }
    if (cu) { /* a row's result does not depend on the other rows */
        an_case many = {"rows", 5, 4096, false, false, 1e-8f}, one = many;
        one.rows = 1;
        float *mx = malloc(5 * 4096 * sizeof *mx), *my = malloc(5 * 4096 * sizeof *my);
        float ox[4096], oy[4096];
        CHECK(run_add_norm(cu, &many, false, 21, mx, my) == XS_OK, "5 rows: %s", xs_error_msg());
        CHECK(run_add_norm(cu, &one, false, 21, ox, oy) == XS_OK, "1 row: %s", xs_error_msg());
        CHECK(!memcmp(my, oy, sizeof oy), "row 0 of 5 equals the row alone");
        free(mx), free(my);
    }

    for (size_t i = 0; i < sizeof k_es / sizeof *k_es; i++) {
        const es_case *c = &k_es[i];
        const int64_t nn = c->n * c->d;
        float *ry = malloc((size_t)nn * sizeof *ry), *fy = malloc((size_t)nn * sizeof *fy);
        check_emb_sum(ref, "ref", c, NULL, ry);
        check_emb_sum(cpu, "cpu", c, ry, fy);
        if (cu) check_emb_sum(cu, "cuda", c, ry, fy);
        free(ry), free(fy);
    }
    if (cu) { /* an id out of range is reported at the next download, then cleared */
        const es_case *c = &k_es[1];
        float *y = malloc((size_t)(c->n * c->d) * sizeof *y);
        CHECK(run_emb_sum(cu, c, false, 1000, y) == XS_ERR_ARG &&
                  strstr(xs_error_msg(), "out of range"), "bad id reported: %s", xs_error_msg());
        CHECK(run_emb_sum(cu, c, false, -1, y) == XS_OK, "then clean: %s", xs_error_msg());
        free(y);
    }

    test_hooks(cpu, "cpu", false);
    if (cu) test_hooks(cu, "cuda", true);
    test_fault(cpu, "cpu");
    if (cu) test_fault(cu, "cuda");
    test_bad_args(cpu);
    if (cu) test_bad_args(cu);

    xs_backend_close(cu);
    xs_backend_close(cpu);
    xs_backend_close(ref);
    if (!gpu) printf("(no usable CUDA device: the cuda part was skipped)\n");
    return test_summary("test_cuda_fused");
}
