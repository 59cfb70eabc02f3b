/*
 * test_taps_record.c — the taps recorder: concatenation along the time axis
 * ([1, C, T] frames along 2, [1, D] steps along 0), strided views, the
 * device-download path, shape/dtype errors naming the tap, the prefix
 * filter, first-recorded order, save + reload, golden names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diag/taps.h"
#include "formats/safetensors.h"
#include "testutil.h"

/* A pretend device backend: memory is host memory, but host_memory = false
 * so taps must go through download() (counted), as with CUDA. */
static int g_downloads;
static xs_status fake_download(xs_backend *be, void *dst, const void *src, size_t n) {
    (void)be;
    g_downloads++;
    memcpy(dst, src, n);
    return XS_OK;
}
static const xs_backend_iface k_fake_iface = {
    .name = "fake-device", .host_memory = false, .download = fake_download};
static xs_backend g_fake = {.iface = &k_fake_iface, .ctx = NULL, .n_threads = 1};

/* A device whose downloads fail (a lost GPU). */
static xs_status broken_download(xs_backend *be, void *dst, const void *src, size_t n) {
    (void)be; (void)dst; (void)src; (void)n;
    return xs_error(XS_ERR_BACKEND, "device lost");
}
static const xs_backend_iface k_broken_iface = {
    .name = "broken-device", .host_memory = false, .download = broken_download};
static xs_backend g_broken = {.iface = &k_broken_iface, .ctx = NULL, .n_threads = 1};

/* Value of frame f at channel c, time t: distinct everywhere, never zero. */
static float frame_value(int f, int c, int t) { return 1000.0f * (f + 1) + 10.0f * c + t + 0.5f; }

/* Frames of [1, C=3, T_f] (T = 2, 1, 3) recorded along axis 2 -> [1, 3, 6]. */
static void test_conv_frames(xs_backend *be, const char *label) {
    xs_taps *taps = xs_taps_new();
    const int C = 3, T[3] = {2, 1, 3};
    for (int f = 0; f < 3; f++) {
        float buf[3 * 3];
        for (int c = 0; c < C; c++)
            for (int t = 0; t < T[f]; t++) buf[c * T[f] + t] = frame_value(f, c, t);
        xs_tensor x = xs_tensor_3d(XS_F32, buf, 1, C, T[f]);
        xs_status rc = XS_TAP(taps, be, "mimi.enc.seanet_out", &x, 2);
        CHECK(rc == XS_OK, "%s: record frame %d: %s", label, f, xs_error_msg());
    }
    const xs_tensor *r = xs_taps_find(taps, "mimi.enc.seanet_out");
    CHECK(r && r->ndim == 3 && r->shape[0] == 1 && r->shape[1] == 3 && r->shape[2] == 6,
          "%s: concatenated shape [1, 3, 6]", label);
    CHECK(xs_taps_calls(taps, "mimi.enc.seanet_out") == 3, "%s: 3 calls", label);
    if (r && r->shape[2] == 6) {
        const float *y = r->data;
        int bad = 0;
        for (int c = 0; c < C; c++) {
            int t_out = 0;
            for (int f = 0; f < 3; f++)
                for (int t = 0; t < T[f]; t++, t_out++)
                    bad += y[c * 6 + t_out] != frame_value(f, c, t);
        }
        CHECK(bad == 0, "%s: %d values out of place after concatenation along time", label, bad);
        CHECK(xs_tensor_is_contiguous(r) && r->dtype == XS_F32, "%s: contiguous f32", label);
    }
    xs_taps_free(taps);
}

/* Per-step [1, D] along 0 -> [steps, D]; also i64 and i32 taps. */
static void test_lm_steps(void) {
    xs_taps *taps = xs_taps_new();
    enum { D = 5, S = 4 };
    for (int s = 0; s < S; s++) {
        float v[D];
        int64_t tok[2] = {100 + s, -(int64_t)s - 1};
        int32_t pos = 7 * s + 1;
        for (int d = 0; d < D; d++) v[d] = (float)(s * 10 + d) + 0.25f;
        xs_tensor tv = xs_tensor_2d(XS_F32, v, 1, D);
        xs_tensor tt = xs_tensor_2d(XS_I64, tok, 1, 2);
        xs_tensor tp = xs_tensor_1d(XS_I32, &pos, 1);
        CHECK(XS_TAP(taps, NULL, "lm.main_emb_sum", &tv, 0) == XS_OK, "record f32 step");
        CHECK(XS_TAP(taps, NULL, "lm.main_input_tokens", &tt, -2) == XS_OK,
              "record i64 step, negative axis");
        CHECK(XS_TAP(taps, NULL, "lm.pos", &tp, 0) == XS_OK, "record i32 step");
    }
    const xs_tensor *e = xs_taps_find(taps, "lm.main_emb_sum");
    CHECK(e && e->ndim == 2 && e->shape[0] == S && e->shape[1] == D, "[steps, D]");
    if (e && e->shape[0] == S) {
        const float *y = e->data;
        CHECK(y[0] == 0.25f && y[D * 3 + 4] == 34.25f, "step values in place: %g %g", y[0],
              y[D * 3 + 4]);
    }
    const xs_tensor *t = xs_taps_find(taps, "lm.main_input_tokens");
    CHECK(t && t->dtype == XS_I64 && t->shape[0] == S && t->shape[1] == 2, "i64 [steps, 2]");
    if (t && t->shape[0] == S) {
        const int64_t *y = t->data;
        CHECK(y[6] == 103 && y[7] == -4, "i64 values: %lld %lld", (long long)y[6],
              (long long)y[7]);
    }
    const xs_tensor *p = xs_taps_find(taps, "lm.pos");
    CHECK(p && p->dtype == XS_I32 && p->ndim == 1 && p->shape[0] == S &&
              ((const int32_t *)p->data)[3] == 22,
          "i32 positions concatenated");
    /* First-recorded order. */
    CHECK(xs_taps_count(taps) == 3, "3 taps");
    const xs_tensor *a0 = xs_taps_at(taps, 0), *a2 = xs_taps_at(taps, 2);
    CHECK(a0 && !strcmp(a0->name, "lm.main_emb_sum") && a2 && !strcmp(a2->name, "lm.pos"),
          "taps in first-recorded order");
    CHECK(xs_taps_at(taps, 3) == NULL && xs_taps_find(taps, "lm.nope") == NULL &&
              xs_taps_calls(taps, "lm.nope") == 0,
          "unknown taps give NULL / 0");
    xs_taps_free(taps);
}

/* A non-contiguous view (transpose of [1, T, C]) recorded as [1, C, T]. */
static void test_strided(xs_backend *be, const char *label) {
    xs_taps *taps = xs_taps_new();
    enum { C = 4, T = 3 };
    for (int f = 0; f < 2; f++) {
        float tc[T * C]; /* time-major storage */
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) tc[t * C + c] = frame_value(f, c, t);
        xs_tensor x = xs_tensor_3d(XS_F32, tc, 1, T, C);
        xs_tensor ct = xs_tensor_transpose(&x, 1, 2); /* [1, C, T], strided */
        CHECK(!xs_tensor_is_contiguous(&ct), "%s: view is strided", label);
        CHECK(XS_TAP(taps, be, "mimi.enc.transformer_out", &ct, 2) == XS_OK,
              "%s: record strided frame %d: %s", label, f, xs_error_msg());
    }
    const xs_tensor *r = xs_taps_find(taps, "mimi.enc.transformer_out");
    CHECK(r && r->shape[1] == C && r->shape[2] == 2 * T, "%s: [1, 4, 6]", label);
    if (r && r->shape[2] == 2 * T) {
        const float *y = r->data;
        int bad = 0;
        for (int c = 0; c < C; c++)
            for (int f = 0; f < 2; f++)
                for (int t = 0; t < T; t++) bad += y[c * 2 * T + f * T + t] != frame_value(f, c, t);
        CHECK(bad == 0, "%s: strided gather: %d values wrong", label, bad);
    }
    xs_taps_free(taps);
}

static void test_errors(void) {
    CHECK(XS_TAP((xs_taps *)NULL, NULL, "mimi.x", NULL, 0) == XS_OK,
          "NULL taps: the macro does nothing (tensor not even read)");
    xs_taps *taps = xs_taps_new();
    float a[6] = {1, 2, 3, 4, 5, 6};
    xs_tensor t3 = xs_tensor_3d(XS_F32, a, 1, 3, 2);
    CHECK(XS_TAP(taps, NULL, "mimi.dec.upsample_out", &t3, 2) == XS_OK, "first record");
    xs_tensor t4 = xs_tensor_3d(XS_F32, a, 1, 2, 3); /* channels differ */
    xs_status rc = XS_TAP(taps, NULL, "mimi.dec.upsample_out", &t4, 2);
    CHECK(rc == XS_ERR_SHAPE, "channel mismatch gives XS_ERR_SHAPE (%d)", rc);
    CHECK(strstr(xs_error_msg(), "mimi.dec.upsample_out") != NULL, "message names the tap: %s",
          xs_error_msg());
    xs_tensor t2 = xs_tensor_2d(XS_F32, a, 3, 2); /* rank differs */
    CHECK(XS_TAP(taps, NULL, "mimi.dec.upsample_out", &t2, 1) == XS_ERR_SHAPE,
          "rank mismatch gives XS_ERR_SHAPE");
    int32_t ia[6] = {1, 2, 3, 4, 5, 6};
    xs_tensor ti = xs_tensor_3d(XS_I32, ia, 1, 3, 2);
    CHECK(XS_TAP(taps, NULL, "mimi.dec.upsample_out", &ti, 2) == XS_ERR_DTYPE,
          "dtype change gives XS_ERR_DTYPE");
    CHECK(XS_TAP(taps, NULL, "mimi.dec.upsample_out", &t3, 1) == XS_ERR_ARG,
          "axis change gives XS_ERR_ARG");
    uint16_t h[2] = {0x3f80, 0x4000};
    xs_tensor tb = xs_tensor_1d(XS_BF16, h, 2);
    CHECK(XS_TAP(taps, NULL, "lm.bf16", &tb, 0) == XS_ERR_DTYPE, "bf16 is not recordable");
    CHECK(XS_TAP(taps, NULL, "lm.bad_axis", &t3, 3) == XS_ERR_ARG, "axis 3 of a rank-3 tensor");
    const xs_tensor *r = xs_taps_find(taps, "mimi.dec.upsample_out");
    CHECK(r && r->shape[2] == 2 && xs_taps_calls(taps, "mimi.dec.upsample_out") == 1,
          "failed records leave the tap as it was");
    CHECK(xs_taps_count(taps) == 1, "failed first records create no tap (%d)",
          xs_taps_count(taps));
    rc = XS_TAP(taps, &g_broken, "lm.lost", &t3, 2);
    CHECK(rc == XS_ERR_BACKEND && strstr(xs_error_msg(), "lm.lost") != NULL,
          "failed download: backend status, message names the tap: %s", xs_error_msg());
    CHECK(xs_taps_count(taps) == 1 && xs_taps_find(taps, "lm.lost") == NULL,
          "a failed first download leaves no tap");
    /* Grow past the staging buffer's first capacity so it moves, then fail. */
    float big[3 * 200];
    test_fill_uniform(big, 3 * 200, 5, -1.0f, 1.0f);
    xs_tensor tbig = xs_tensor_3d(XS_F32, big, 1, 3, 200);
    (void)xs_taps_find(taps, "mimi.dec.upsample_out"); /* cache a view */
    rc = XS_TAP(taps, &g_broken, "mimi.dec.upsample_out", &tbig, 2);
    const xs_tensor *after = xs_taps_find(taps, "mimi.dec.upsample_out");
    CHECK(rc == XS_ERR_BACKEND && xs_taps_calls(taps, "mimi.dec.upsample_out") == 1 && after &&
              after->shape[2] == 2 && ((const float *)after->data)[5] == 6.0f,
          "a failed later download leaves the tap as it was (values readable)");
    xs_taps_free(taps);
}

static void test_filter(void) {
    xs_taps *taps = xs_taps_new();
    xs_taps_set_filter(taps, "lm.depformer, mimi.enc.");
    float v[2] = {1.5f, 2.5f};
    xs_tensor t = xs_tensor_2d(XS_F32, v, 1, 2);
    CHECK(XS_TAP(taps, NULL, "mimi.dec.upsample_out", &t, 0) == XS_OK, "filtered out: OK");
    CHECK(XS_TAP(taps, NULL, "lm.main_emb_sum", &t, 0) == XS_OK, "filtered out: OK");
    CHECK(XS_TAP(taps, NULL, "lm.depformer_logits", &t, 0) == XS_OK, "kept");
    CHECK(XS_TAP(taps, NULL, "mimi.enc.seanet_out", &t, 0) == XS_OK, "kept (after a space)");
    CHECK(xs_taps_count(taps) == 2 && xs_taps_find(taps, "mimi.dec.upsample_out") == NULL,
          "filter keeps 2 taps (%d)", xs_taps_count(taps));
    xs_taps_set_filter(taps, NULL);
    CHECK(XS_TAP(taps, NULL, "mimi.dec.upsample_out", &t, 0) == XS_OK &&
              xs_taps_count(taps) == 3,
          "NULL filter records everything again");
    xs_taps_free(taps);
}

static void test_save_reload(void) {
    xs_taps *taps = xs_taps_new();
    for (int f = 0; f < 4; f++) {
        float conv[2 * 2];
        for (int c = 0; c < 2; c++)
            for (int t = 0; t < 2; t++) conv[c * 2 + t] = frame_value(f, c, t);
        float step[3] = {f + 0.5f, -f - 0.5f, 3.0f * f + 1};
        int64_t tok[1] = {42 + f};
        xs_tensor tc = xs_tensor_3d(XS_F32, conv, 1, 2, 2);
        xs_tensor ts = xs_tensor_2d(XS_F32, step, 1, 3);
        xs_tensor tt = xs_tensor_1d(XS_I64, tok, 1);
        CHECK(XS_TAP(taps, NULL, "mimi.dec.upsample_out", &tc, 2) == XS_OK, "record conv");
        CHECK(XS_TAP(taps, NULL, "lm.main_pre_norm", &ts, 0) == XS_OK, "record step");
        CHECK(XS_TAP(taps, NULL, "lm.sampled_text", &tt, 0) == XS_OK, "record token");
    }
    char path[] = "/tmp/xs_test_taps_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "temp file");
    if (fd < 0) {
        xs_taps_free(taps);
        return;
    }
    close(fd);
    xs_status rc = xs_taps_save(taps, path);
    CHECK(rc == XS_OK, "save: %s", xs_error_msg());
    xs_safetensors *st = NULL;
    rc = xs_st_open(path, &st);
    CHECK(rc == XS_OK && st, "reload: %s", xs_error_msg());
    if (st) {
        CHECK(xs_st_count(st) == 3, "3 tensors in the file");
        const xs_tensor *a = xs_st_at(st, 0);
        CHECK(a && !strcmp(a->name, "mimi.dec.upsample_out"), "file order = record order");
        const xs_tensor *c = xs_st_find(st, "mimi.dec.upsample_out");
        const xs_tensor *mine = xs_taps_find(taps, "mimi.dec.upsample_out");
        CHECK(c && c->dtype == XS_F32 && c->ndim == 3 && c->shape[2] == 8 && mine &&
                  !memcmp(c->data, mine->data, 2 * 8 * sizeof(float)),
              "conv tap [1, 2, 8] saved bit for bit");
        if (c && c->shape[2] == 8)
            CHECK(((const float *)c->data)[8 + 7] == frame_value(3, 1, 1), "last value: %g",
                  ((const float *)c->data)[15]);
        const xs_tensor *s = xs_st_find(st, "lm.main_pre_norm");
        CHECK(s && s->shape[0] == 4 && s->shape[1] == 3 && ((const float *)s->data)[11] == 10.0f,
              "step tap [4, 3] saved");
        const xs_tensor *k = xs_st_find(st, "lm.sampled_text");
        CHECK(k && k->dtype == XS_I64 && k->shape[0] == 4 && ((const int64_t *)k->data)[3] == 45,
              "i64 tap saved");
        xs_st_close(st);
    }
    unlink(path);
    CHECK(xs_taps_save(taps, "/nonexistent/dir/taps.safetensors") != XS_OK,
          "saving to a missing folder fails");
    xs_taps_free(taps);
}

static void test_golden_names(void) {
    char buf[64];
    CHECK(!strcmp(xs_tap_golden_name("mimi.enc.seanet_out", buf, sizeof buf),
                  "act.enc.seanet_out"), "mimi.X -> act.X: %s", buf);
    CHECK(!strcmp(xs_tap_golden_name("lm.main_emb_sum", buf, sizeof buf), "main_emb_sum"),
          "lm.X -> X: %s", buf);
    CHECK(!strcmp(xs_tap_golden_name("pipeline.frame_codes", buf, sizeof buf),
                  "pipeline.frame_codes"), "other names unchanged: %s", buf);
}

int main(void) {
    test_conv_frames(NULL, "host (be NULL)");
    xs_backend *ref = NULL;
    if (xs_backend_ref_new(&ref) == XS_OK) { /* not the registry: keeps this test apart from cpu/ */
        test_conv_frames(ref, "ref backend");
        test_strided(ref, "ref backend");
        ref->iface->destroy(ref); /* = xs_backend_close, without linking the registry */
    } else {
        CHECK(0, "open ref backend: %s", xs_error_msg());
    }
    g_downloads = 0;
    test_conv_frames(&g_fake, "device download");
    CHECK(g_downloads == 3, "one download per contiguous record (%d)", g_downloads);
    g_downloads = 0;
    test_strided(&g_fake, "device strided");
    CHECK(g_downloads == 2, "one span download per strided record (%d)", g_downloads);
    test_lm_steps();
    test_errors();
    test_filter();
    test_save_reload();
    test_golden_names();
    return test_summary("test_taps_record");
}
