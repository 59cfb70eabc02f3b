/*
 * test_op_replay.c — the op-call recorder and `diagnose --replay`
 * (diag/op_record.h): for ops of the fault list called on cpu with
 * XSWARM_FAULT-style faults armed (xs_fault_configure), the recorder saves
 * the call, the file keeps non-contiguous views as views (strides), aliases
 * and kv caches; replaying it on ref,cpu is beyond tolerance while the fault
 * is armed and within once it is not. Damaged or foreign files give clear
 * errors (and never crash: random byte flips).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/fault.h"
#include "backend/op_hook.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "diag/op_record.h"
#include "formats/safetensors.h"
#include "testutil.h"

static char g_dir[256];
static xs_backend *g_ref, *g_cpu;

typedef void (*call_fn)(xs_backend *be);

/* Record one call of op on cpu with a fault on it; check the replay with and
 * without the fault. Returns the file's path (static buffer) or NULL. */
static const char *record(xs_op op, call_fn call) {
    static char path[1024];
    char spec[64];
    snprintf(spec, sizeof spec, "cpu:%s", xs_op_name(op));
    CHECK(xs_fault_configure(spec) == XS_OK, "fault %s", spec);
    CHECK(xs_oprec_arm(g_ref, g_cpu, op, 0, g_dir, xs_op_name(op)) == XS_OK, "arm");
    xs_oprec_set_step(0);
    call(g_ref); /* A's own calls are never recorded */
    call(g_cpu);
    xs_oprec_result res;
    xs_oprec_disarm(&res);
    CHECK(xs_op_hook_ == NULL, "hook removed after disarm");
    CHECK(res.found, "%s: no call recorded (%s)", xs_op_name(op), res.error);
    if (!res.found) {
        xs_fault_configure(NULL);
        return NULL;
    }
    CHECK(res.nmse > res.tol, "%s: recorded nmse %g <= tol %g", xs_op_name(op), res.nmse, res.tol);
    snprintf(path, sizeof path, "%s", res.path);
    bool over = false;
    xs_status rc = xs_op_replay(path, "ref", "cpu", 1, NULL, &over);
    CHECK(rc == XS_OK && over, "%s: replay with the fault: rc %d over %d (%s)", xs_op_name(op), rc,
          over, xs_error_msg());
    xs_fault_configure(NULL);
    rc = xs_op_replay(path, "ref", "cpu", 1, NULL, &over);
    CHECK(rc == XS_OK && !over, "%s: replay without the fault: rc %d over %d (%s)",
          xs_op_name(op), rc, over, xs_error_msg());
    rc = xs_op_replay(path, NULL, NULL, 1, NULL, &over); /* backends from the file */
    CHECK(rc == XS_OK && !over, "%s: replay on the recorded backends", xs_op_name(op));
    return path;
}

/* The loaded view of argument `role`. */
static const xs_opcall_arg *arg_of(const char *path, const char *role, xs_opcall *c,
                                   xs_safetensors **st) {
    xs_opcall_meta m;
    char a[32], b[32];
    if (xs_opcall_load(path, st, c, &m, a, b, sizeof a) != XS_OK) return NULL;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->a[i].role, role)) return &c->a[i];
    return NULL;
}

/* ---- calls ---- */

enum { R = 5, D = 37 };
static float g_x[D * R], g_y[R * D];

/* elu on a transposed (non-contiguous) view: the candle bug's shape */
static void call_elu(xs_backend *be) {
    xs_tensor x = xs_tensor_2d(XS_F32, g_x, D, R), xt = xs_tensor_transpose(&x, 0, 1);
    xs_tensor y = xs_tensor_2d(XS_F32, g_y, R, D);
    CHECK(xs_op_elu(be, &y, &xt, 1.0f) == XS_OK, "elu: %s", xs_error_msg());
}

/* matmul: q8_0 weights, x a sliced view (row stride > K) */
enum { M = 3, K = 64, N = 9 };
static float g_xm[M * (K + 7)], g_ym[M * N], g_bias[N];
static xs_block_q8_0 g_wq[N * K / XS_QK];
static void call_matmul(xs_backend *be) {
    xs_tensor xf = xs_tensor_2d(XS_F32, g_xm, M, K + 7), x = xs_tensor_slice(&xf, 1, 3, K);
    xs_tensor w = xs_tensor_2d(XS_Q8_0, g_wq, N, K), b = xs_tensor_1d(XS_F32, g_bias, N);
    xs_tensor y = xs_tensor_2d(XS_F32, g_ym, M, N);
    CHECK(xs_op_matmul(be, &y, &x, &w, &b) == XS_OK, "matmul: %s", xs_error_msg());
}

/* kv_store of 3 positions, then attention over them (each backend its own cache) */
enum { CAP = 8, HD = 16, T = 3 };
static float g_k[T * HD], g_v[T * HD], g_q[T * HD], g_ya[T * HD];
static int32_t g_pos[T] = {0, 1, 2};
static xs_dtype g_kv = XS_BF16; /* faults corrupt f32 outputs only: kv_store uses f32 */
static void call_attention(xs_backend *be) {
    xs_kv_cache c;
    CHECK(xs_kv_cache_alloc_dtype(be, CAP, HD, g_kv, &c) == XS_OK, "cache");
    xs_tensor k = xs_tensor_2d(XS_F32, g_k, T, HD), v = xs_tensor_2d(XS_F32, g_v, T, HD);
    xs_tensor q = xs_tensor_2d(XS_F32, g_q, T, HD), y = xs_tensor_2d(XS_F32, g_ya, T, HD);
    xs_tensor p = xs_tensor_1d(XS_I32, g_pos, T);
    CHECK(xs_op_kv_store(be, &c, &k, &v, &p) == XS_OK, "kv_store: %s", xs_error_msg());
    CHECK(xs_op_attention(be, &y, &q, &c, &p, 2, 100, 0.25f) == XS_OK, "attention: %s",
          xs_error_msg());
    xs_kv_cache_free(be, &c);
}

/* rope in place on a view of a wider buffer */
static float g_r[2 * 3 * 12];
static void call_rope(xs_backend *be) {
    static float buf[2 * 3 * 12];
    memcpy(buf, g_r, sizeof buf); /* same input on both backends */
    xs_tensor all = xs_tensor_3d(XS_F32, buf, 2, 3, 12), x = xs_tensor_slice(&all, 2, 2, 8);
    int32_t pos[2] = {5, 6};
    xs_tensor p = xs_tensor_1d(XS_I32, pos, 2);
    CHECK(xs_op_rope(be, &x, &p, 10000.f) == XS_OK, "rope: %s", xs_error_msg());
}

/* copy into a column slice of a wider tensor (a concatenation) */
static float g_cy[4 * 10];
static void call_copy(xs_backend *be) {
    static float dst[4 * 10];
    memcpy(dst, g_cy, sizeof dst);
    xs_tensor all = xs_tensor_2d(XS_F32, dst, 4, 10), y = xs_tensor_slice(&all, 1, 6, 4);
    xs_tensor x = xs_tensor_2d(XS_F32, g_x, 4, 4);
    CHECK(xs_op_copy(be, &y, &x) == XS_OK, "copy: %s", xs_error_msg());
}

/* softmax in place (y aliases x) */
static void call_softmax(xs_backend *be) {
    static float buf[3 * 20];
    memcpy(buf, g_x, sizeof buf);
    xs_tensor x = xs_tensor_2d(XS_F32, buf, 3, 20);
    CHECK(xs_op_softmax(be, &x, &x) == XS_OK, "softmax: %s", xs_error_msg());
}

/* embedding from a bf16 table */
static uint16_t g_tab[11 * 8];
static float g_ye[3 * 8];
static void call_embedding(xs_backend *be) {
    int32_t ids[3] = {4, -1, 10};
    xs_tensor t = xs_tensor_2d(XS_BF16, g_tab, 11, 8), i = xs_tensor_1d(XS_I32, ids, 3);
    xs_tensor y = xs_tensor_2d(XS_F32, g_ye, 3, 8);
    CHECK(xs_op_embedding(be, &y, &t, &i) == XS_OK, "embedding: %s", xs_error_msg());
}

/* conv1d on a transposed input, with groups */
static float g_w[6 * 2 * 3], g_yc[6 * 8];
static void call_conv1d(xs_backend *be) {
    xs_tensor xs = xs_tensor_2d(XS_F32, g_x, 10, 4), x = xs_tensor_transpose(&xs, 0, 1);
    xs_tensor w = xs_tensor_3d(XS_F32, g_w, 6, 2, 3), y = xs_tensor_2d(XS_F32, g_yc, 6, 8);
    CHECK(xs_op_conv1d(be, &y, &x, &w, NULL, 1, 1, 2) == XS_OK, "conv1d: %s", xs_error_msg());
}

/* ---- damaged files ---- */

static void expect_error(const char *path, const char *what, const char *needle) {
    bool over = false;
    xs_status rc = xs_op_replay(path, "ref", "cpu", 1, NULL, &over);
    CHECK(rc != XS_OK, "%s: accepted", what);
    CHECK(!needle || strstr(xs_error_msg(), needle), "%s: message '%s' lacks '%s'", what,
          xs_error_msg(), needle);
    xs_error_clear();
}

static void write_call(const char *path, const char *json, int64_t nx) {
    xs_st_writer *w = xs_st_writer_new();
    float buf[64] = {1, 2, 3, 4, 5, 6};
    int64_t six = 6;
    xs_st_writer_add(w, "in.0.y", XS_F32, 1, &six, buf);
    xs_st_writer_add(w, "in.1.x", XS_F32, 1, &nx, buf);
    xs_st_writer_set_metadata(w, "xswarm.op_call", json);
    CHECK(xs_st_writer_save(w, path) == XS_OK, "write %s", path);
    xs_st_writer_free(w);
}

static void damaged(const char *good) {
    char p[1024];
    expect_error("/nonexistent/op.safetensors", "missing file", NULL);
    const char *foreign = golden_path("lm_tiny/golden.safetensors");
    if (access(foreign, R_OK) == 0)
        expect_error(foreign, "foreign safetensors", "not a valid xswarm op call");
    /* truncated */
    FILE *f = fopen(good, "rb");
    CHECK(f != NULL, "open %s", good);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    CHECK(fread(b, 1, (size_t)n, f) == (size_t)n, "read");
    fclose(f);
    snprintf(p, sizeof p, "%s/trunc.safetensors", g_dir);
    f = fopen(p, "wb");
    fwrite(b, 1, (size_t)n / 2, f);
    fclose(f);
    expect_error(p, "truncated file", NULL);
    /* hand-made calls: view outside its storage, bad op, wrong arity, forward alias */
    const char *sc = "\"scalars\":{\"ints\":[0,0,0],\"floats\":[1,0],\"i64\":0,"
                     "\"u64\":[\"0\",\"0\",\"0\"],\"capacity\":0}";
    char js[1024];
    snprintf(p, sizeof p, "%s/bad.safetensors", g_dir);
    snprintf(js, sizeof js, "{\"op\":\"elu\",%s,\"args\":[{\"role\":\"y\",\"present\":true,"
             "\"output\":true,\"same_as\":-1,\"dtype\":\"f32\",\"shape\":[2,3],\"stride\":[3,1]},"
             "{\"role\":\"x\",\"present\":true,\"output\":false,\"same_as\":-1,\"dtype\":\"f32\","
             "\"shape\":[2,3],\"stride\":[3000,1]}]}", sc);
    write_call(p, js, 6);
    expect_error(p, "view outside storage", "storage smaller than the view");
    snprintf(js, sizeof js, "{\"op\":\"nosuch\",%s,\"args\":[]}", sc);
    write_call(p, js, 6);
    expect_error(p, "unknown op", "unknown op");
    snprintf(js, sizeof js, "{\"op\":\"elu\",%s,\"args\":[{\"role\":\"y\",\"present\":true,"
             "\"output\":true,\"same_as\":-1,\"dtype\":\"f32\",\"shape\":[2,3],\"stride\":[3,1]}]}",
             sc);
    write_call(p, js, 6);
    expect_error(p, "missing argument", "arguments");
    snprintf(js, sizeof js, "{\"op\":\"elu\",%s,\"args\":[{\"role\":\"y\",\"present\":true,"
             "\"output\":true,\"same_as\":1,\"dtype\":\"f32\",\"shape\":[2,3],\"stride\":[3,1]},"
             "{\"role\":\"x\",\"present\":true,\"output\":false,\"same_as\":-1,\"dtype\":\"f32\","
             "\"shape\":[2,3],\"stride\":[3,1]}]}", sc);
    write_call(p, js, 6);
    expect_error(p, "forward alias", "alias");
    snprintf(js, sizeof js, "{\"op\":\"elu\",%s,\"args\":[{\"role\":\"y\",\"present\":true,"
             "\"output\":true,\"same_as\":-1,\"dtype\":\"q9\",\"shape\":[2,3],\"stride\":[3,1]}]}",
             sc);
    write_call(p, js, 6);
    expect_error(p, "unknown dtype", "dtype");
    /* random byte flips in the header: an error or a valid call, never a crash */
    uint64_t s = 99;
    int errors = 0;
    long hdr = n < 1500 ? n : 1500;
    for (int it = 0; it < 150; it++) {
        unsigned char *c = malloc((size_t)n);
        memcpy(c, b, (size_t)n);
        for (int k = 0; k < 3; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            c[8 + (s >> 33) % (uint64_t)(hdr - 8)] ^= (unsigned char)(1u << ((s >> 20) & 7));
        }
        f = fopen(p, "wb");
        fwrite(c, 1, (size_t)n, f);
        fclose(f);
        free(c);
        bool over;
        if (xs_op_replay(p, "ref", "cpu", 1, NULL, &over) != XS_OK) errors++;
        xs_error_clear();
    }
    CHECK(errors > 0, "150 damaged headers all accepted");
    free(b);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/xs_op_replay_XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL, "mkdtemp");
    CHECK(xs_backend_open("ref", 1, &g_ref) == XS_OK, "ref");
    CHECK(xs_backend_open("cpu", 2, &g_cpu) == XS_OK, "cpu");
    test_fill_uniform(g_x, D * R, 1, -3, 3);
    test_fill_uniform(g_xm, M * (K + 7), 2, -1, 1);
    test_fill_uniform(g_bias, N, 3, -1, 1);
    float wf[N * K];
    test_fill_uniform(wf, N * K, 4, -1, 1);
    for (int r = 0; r < N; r++) xs_quantize_row_q8_0(wf + r * K, g_wq + r * (K / XS_QK), K);
    test_fill_uniform(g_k, T * HD, 5, -1, 1);
    test_fill_uniform(g_v, T * HD, 6, -1, 1);
    test_fill_uniform(g_q, T * HD, 7, -1, 1);
    test_fill_uniform(g_r, 2 * 3 * 12, 8, -1, 1);
    test_fill_uniform(g_cy, 40, 9, -1, 1);
    test_fill_uniform(g_w, 36, 10, -1, 1);
    for (int i = 0; i < 88; i++) g_tab[i] = xs_f32_to_bf16(sinf((float)i));

    const char *p = record(XS_OP_ELU, call_elu);
    if (p) { /* the view survives as a view */
        xs_opcall c;
        xs_safetensors *st = NULL;
        const xs_opcall_arg *x = arg_of(p, "x", &c, &st);
        CHECK(x && x->stride[0] == 1 && x->stride[1] == R && x->shape[0] == R,
              "elu: x recorded as the transposed view");
        xs_st_close(st);
    }
    p = record(XS_OP_MATMUL, call_matmul);
    if (p) {
        xs_opcall c;
        xs_safetensors *st = NULL;
        const xs_opcall_arg *w = arg_of(p, "w", &c, &st);
        CHECK(w && w->dtype == XS_Q8_0, "matmul: q8_0 weight kept");
        const xs_opcall_arg *x = w ? &c.a[1] : NULL;
        CHECK(x && x->stride[0] == K + 7, "matmul: sliced x stride %lld", x ? (long long)x->stride[0] : -1);
        xs_st_close(st);
    }
    record(XS_OP_ATTENTION, call_attention);
    g_kv = XS_F32;
    record(XS_OP_KV_STORE, call_attention);
    record(XS_OP_ROPE, call_rope);
    p = record(XS_OP_COPY, call_copy);
    if (p) {
        xs_opcall c;
        xs_safetensors *st = NULL;
        const xs_opcall_arg *y = arg_of(p, "y", &c, &st);
        CHECK(y && y->stride[0] == 10, "copy: y recorded as a column slice");
        xs_st_close(st);
    }
    p = record(XS_OP_SOFTMAX, call_softmax);
    if (p) {
        xs_opcall c;
        xs_safetensors *st = NULL;
        const xs_opcall_arg *x = arg_of(p, "x", &c, &st);
        CHECK(x && x->same_as == 0, "softmax in place: x aliases y");
        xs_st_close(st);
    }
    record(XS_OP_EMBEDDING, call_embedding);
    const char *good = record(XS_OP_CONV1D, call_conv1d);
    if (good) damaged(good);

    xs_backend_close(g_cpu);
    xs_backend_close(g_ref);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_summary("op_replay");
}
