/*
 * test_lm_kv_bf16.c — the bf16 KV cache option.
 *
 * 1. Ops: xs_kv_cache_alloc_dtype accepts f32 / bf16 only; kv_store on a bf16
 *    cache stores exactly xs_f32_to_bf16 of each value (ties to even, NaN
 *    kept NaN) on ref and cpu; attention over it equals attention over an
 *    f32 cache holding the same (already rounded) values.
 * 2. lm_tiny, 60 greedy LMGen steps with a bf16 temporal KV cache on ref and
 *    cpu: identical tokens on both backends (same rounding, same cached
 *    values); every tap close to the f32 golden up to the first step where
 *    a token differs from it (bf16 keeps 8 bits of mantissa: ~4e-3 relative
 *    per cached value). How many step_out rows match the f32 golden is
 *    printed, not asserted beyond "most": a near-tie may flip.
 * 3. lm_model_kv_bytes: the temporal part halves.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "diag/taps.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

/* ---- 1. ops ---------------------------------------------------------------- */

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void check_ops(const char *backend) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open(backend, 2, &be) == XS_OK, "%s: open: %s", backend, xs_error_msg());
    if (!be) return;
    enum { CAP = 5, H = 2, D = 24, W = H * D, T = 3 };
    xs_kv_cache bad;
    CHECK(xs_kv_cache_alloc_dtype(be, CAP, W, XS_F16, &bad) == XS_ERR_DTYPE, "%s: f16 cache refused",
          backend);
    xs_kv_cache cb = {0}, cf = {0};
    CHECK(xs_kv_cache_alloc_dtype(be, CAP, W, XS_BF16, &cb) == XS_OK, "%s: bf16 alloc", backend);
    CHECK(xs_kv_cache_alloc(be, CAP, W, &cf) == XS_OK, "%s: f32 alloc", backend);
    CHECK(xs_kv_cache_bytes(&cb) == (size_t)2 * CAP * W * 2, "%s: bf16 cache bytes", backend);
    CHECK(xs_kv_cache_bytes(&cf) == (size_t)2 * CAP * W * 4, "%s: f32 cache bytes", backend);

    /* rows of random values with planted rounding cases in row 0 */
    float kh[T * W], vh[T * W];
    test_fill_uniform(kh, T * W, 11, -2, 2);
    test_fill_uniform(vh, T * W, 12, -2, 2);
    kh[0] = from_bits(0x3f808000u);  /* tie, lower kept bit even: rounds down */
    kh[1] = from_bits(0x3f818000u);  /* tie, lower kept bit odd: rounds up */
    kh[2] = from_bits(0xbf808001u);  /* just above the tie: rounds away */
    kh[3] = from_bits(0x7f7fffffu);  /* FLT_MAX rounds to inf, like xs_f32_to_bf16 */
    vh[0] = NAN;
    vh[1] = -0.0f;
    vh[2] = from_bits(0x00000001u);  /* smallest subnormal */
    int32_t ph[T] = {4, 5, 6};       /* 5 and 6 wrap onto slots 0 and 1 */
    int64_t ks[2] = {T, W}, pn = T;
    xs_tensor k = {0}, v = {0}, pos = {0};
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ks, &k) == XS_OK && xs_tensor_upload(be, &k, kh) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 2, ks, &v) == XS_OK &&
              xs_tensor_upload(be, &v, vh) == XS_OK &&
              xs_tensor_alloc(be, XS_I32, 1, &pn, &pos) == XS_OK &&
              xs_tensor_upload(be, &pos, ph) == XS_OK,
          "%s: inputs", backend);
    CHECK(xs_op_kv_store(be, &cb, &k, &v, &pos) == XS_OK, "%s: kv_store bf16: %s", backend,
          xs_error_msg());
    uint16_t kc[CAP * W], vc[CAP * W];
    int32_t pc[CAP];
    CHECK(xs_tensor_download(be, kc, &cb.k) == XS_OK && xs_tensor_download(be, vc, &cb.v) == XS_OK &&
              xs_tensor_download(be, pc, &cb.pos) == XS_OK,
          "%s: download", backend);
    int bad_bits = 0;
    for (int t = 0; t < T; t++) {
        const int slot = ph[t] % CAP;
        CHECK(pc[slot] == ph[t], "%s: slot %d holds position %d", backend, slot, pc[slot]);
        for (int c = 0; c < W; c++) {
            bad_bits += kc[slot * W + c] != xs_f32_to_bf16(kh[t * W + c]);
            bad_bits += vc[slot * W + c] != xs_f32_to_bf16(vh[t * W + c]);
        }
    }
    CHECK(bad_bits == 0, "%s: %d stored bf16 values differ from xs_f32_to_bf16", backend, bad_bits);
    CHECK(kc[4 * W + 0] == 0x3f80 && kc[4 * W + 1] == 0x3f82 && kc[4 * W + 2] == 0xbf81 &&
              kc[4 * W + 3] == 0x7f80,
          "%s: ties to even, FLT_MAX -> inf", backend);
    CHECK(isnan(xs_bf16_to_f32(vc[4 * W + 0])) && vc[4 * W + 1] == 0x8000 && vc[4 * W + 2] == 0,
          "%s: NaN kept, -0 kept, tiny subnormal -> 0", backend);

    /* attention over the bf16 cache == over an f32 cache of the rounded
     * values (row 0 has a NaN in v: use only queries that cannot see it) */
    float kr[T * W], vr[T * W];
    for (int i = 0; i < T * W; i++) {
        kr[i] = xs_bf16_to_f32(xs_f32_to_bf16(kh[i]));
        vr[i] = xs_bf16_to_f32(xs_f32_to_bf16(vh[i]));
    }
    kr[3] = 1.0f; /* the inf key of row 0 is not visible either, but keep it finite */
    CHECK(xs_tensor_upload(be, &k, kr) == XS_OK && xs_tensor_upload(be, &v, vr) == XS_OK, "up");
    CHECK(xs_kv_cache_reset(be, &cb) == XS_OK, "reset");
    CHECK(xs_op_kv_store(be, &cb, &k, &v, &pos) == XS_OK, "%s: kv_store bf16 (rounded)", backend);
    CHECK(xs_op_kv_store(be, &cf, &k, &v, &pos) == XS_OK, "%s: kv_store f32 (rounded)", backend);
    float qh[W], yb[W], yf[W];
    test_fill_uniform(qh, W, 13, -1, 1);
    int64_t qs[2] = {1, W}, one = 1;
    int32_t qp = 6;
    xs_tensor q = {0}, y = {0}, qpos = {0};
    CHECK(xs_tensor_alloc(be, XS_F32, 2, qs, &q) == XS_OK && xs_tensor_upload(be, &q, qh) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 2, qs, &y) == XS_OK &&
              xs_tensor_alloc(be, XS_I32, 1, &one, &qpos) == XS_OK &&
              xs_tensor_upload(be, &qpos, &qp) == XS_OK,
          "%s: query", backend);
    /* context 2: position 6 sees 5 and 6 only (not 4 and its NaN) */
    CHECK(xs_op_attention(be, &y, &q, &cb, &qpos, H, 2, 0.2f) == XS_OK, "%s: attention bf16: %s",
          backend, xs_error_msg());
    CHECK(xs_tensor_download(be, yb, &y) == XS_OK, "dl");
    CHECK(xs_op_attention(be, &y, &q, &cf, &qpos, H, 2, 0.2f) == XS_OK, "%s: attention f32", backend);
    CHECK(xs_tensor_download(be, yf, &y) == XS_OK, "dl");
    double nm = test_nmse(yf, yb, W), mx = 0;
    for (int i = 0; i < W; i++) mx = fmax(mx, fabs(yf[i]));
    CHECK(nm < 1e-12 && mx > 0.01, "%s: attention bf16 vs f32 of the same values: nmse %.3g",
          backend, nm);
    xs_tensor *all[] = {&k, &v, &pos, &q, &y, &qpos};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
    xs_kv_cache_free(be, &cb);
    xs_kv_cache_free(be, &cf);
    xs_backend_close(be);
}

/* ---- 2. lm_tiny greedy ---------------------------------------------------------- */

#define STEPS 60

typedef struct run_out {
    int32_t tokens[STEPS][9];
    xs_taps *taps;
    lm_model *m;
    xs_backend *be;
} run_out;

static bool run_gen(const char *backend, const xs_weights *gold, run_out *r) {
    memset(r, 0, sizeof *r);
    char model[4096], cfg[4096];
    snprintf(model, sizeof model, "%s", golden_path("lm_tiny/model.safetensors"));
    snprintf(cfg, sizeof cfg, "%s", golden_path("lm_tiny/config.json"));
    CHECK(xs_backend_open(backend, 2, &r->be) == XS_OK, "%s: open", backend);
    if (!r->be) return false;
    CHECK(lm_model_load(model, cfg, r->be, &r->m) == XS_OK, "%s: load: %s", backend,
          xs_error_msg());
    if (!r->m) return false;
    const size_t kv_f32 = lm_model_kv_bytes(r->m);
    CHECK(lm_model_set_kv_dtype(r->m, XS_F16) == XS_ERR_DTYPE, "f16 kv refused");
    CHECK(lm_model_set_kv_dtype(r->m, XS_BF16) == XS_OK, "bf16 kv");
    /* main: 2 layers x 12 slots x 64 x (k, v); depformer stays f32 */
    const size_t main_f32 = (size_t)2 * 2 * 12 * 64 * 4;
    CHECK(lm_model_kv_bytes(r->m) == kv_f32 - main_f32 / 2, "%s: kv bytes %zu (f32 %zu)", backend,
          lm_model_kv_bytes(r->m), kv_f32);
    r->taps = xs_taps_new();
    lm_sampling s;
    lm_sampling_default(&s);
    s.greedy = true;
    lm_gen *g = NULL;
    CHECK(lm_gen_new(r->m, &s, r->taps, &g) == XS_OK, "%s: gen: %s", backend, xs_error_msg());
    if (!g) return false;
    const int64_t *in = xs_weights_find(gold, "input_codes")->data;
    bool ok = true;
    for (int st = 0; st < STEPS && ok; st++) {
        int32_t user[8];
        for (int j = 0; j < 8; j++) user[j] = (int32_t)in[st * 8 + j];
        bool valid;
        ok = lm_gen_step(g, user, r->tokens[st], &valid) == XS_OK;
        CHECK(ok, "%s: step %d: %s", backend, st, xs_error_msg());
    }
    lm_gen_free(g);
    return ok;
}

static void run_free(run_out *r) {
    xs_taps_free(r->taps);
    lm_model_free(r->m);
    xs_backend_close(r->be);
}

/* Max |tap - golden| over rows 0..rows-1 (first dim = step), and max |golden|. */
static void tap_err(const xs_tensor *t, const xs_tensor *g, int rows, double *err, double *ref) {
    *err = 0, *ref = 0;
    const int64_t n = xs_tensor_numel(g), per = n / g->shape[0];
    if (xs_tensor_numel(t) != n || t->dtype != XS_F32 || g->dtype != XS_F32) {
        *err = INFINITY;
        return;
    }
    const float *a = t->data, *b = g->data;
    for (int64_t i = 0; i < per * rows; i++) {
        *ref = fmax(*ref, fabs(b[i]));
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= *err)) *err = e;
    }
}

static void check_lm_tiny(void) {
    xs_weights *gold = NULL;
    CHECK(xs_weights_open(golden_path("lm_tiny/golden.safetensors"), &gold) == XS_OK, "golden");
    if (!gold) return;
    const int64_t *want = xs_weights_find(gold, "step_out")->data;
    const int64_t *st_text = xs_weights_find(gold, "sampled_text")->data;
    const int64_t *st_audio = xs_weights_find(gold, "sampled_audio")->data;
    run_out r[2];
    const char *names[2] = {"ref", "cpu"};
    bool ok = true;
    for (int b = 0; b < 2; b++) ok = run_gen(names[b], gold, &r[b]) && ok;
    if (ok) {
        int differ = 0;
        for (int st = 0; st < STEPS; st++)
            for (int k = 0; k < 9; k++) differ += r[0].tokens[st][k] != r[1].tokens[st][k];
        CHECK(differ == 0, "bf16 kv: %d tokens differ between ref and cpu", differ);

        int rows_match = 0;
        for (int st = 0; st < STEPS; st++) {
            bool same = true;
            for (int k = 0; k < 9; k++) same &= r[0].tokens[st][k] == want[st * 9 + k];
            rows_match += same;
        }
        printf("bf16 kv on ref/cpu: %d of %d step_out rows equal the f32 golden\n", rows_match,
               STEPS);
        /* A flipped near-tie changes every later row, so only the start is
         * asked for (measured: the first 10 rows; the golden's margin at
         * step 10 is 4e-3 while bf16 moves logits by ~2e-2). */
        CHECK(rows_match >= 5, "bf16 kv: only %d of %d rows match the f32 golden", rows_match,
              STEPS);

        /* the first step whose sampled tokens leave the golden: taps are
         * comparable before it */
        const xs_tensor *tt = xs_taps_find(r[0].taps, "lm.sampled_text");
        const xs_tensor *ta = xs_taps_find(r[0].taps, "lm.sampled_audio");
        int same_until = STEPS;
        if (tt && ta && tt->dtype == XS_I32 && ta->dtype == XS_I32) {
            for (int st = 0; st < STEPS && same_until == STEPS; st++) {
                bool same = ((const int32_t *)tt->data)[st] == st_text[st];
                for (int k = 0; k < 8; k++)
                    same &= ((const int32_t *)ta->data)[st * 8 + k] == st_audio[st * 8 + k];
                if (!same) same_until = st;
            }
        } else {
            CHECK(0, "sampled taps missing");
            same_until = 0;
        }
        printf("bf16 kv: sampled tokens equal the f32 golden for the first %d steps\n",
               same_until);
        if (same_until < STEPS) {
            const float *tm = xs_weights_find(gold, "text_logit_margin")->data;
            const float *dm = xs_weights_find(gold, "depformer_logit_margin")->data;
            float mn = tm[same_until];
            for (int k = 0; k < 8; k++) mn = fminf(mn, dm[same_until * 8 + k]);
            printf("bf16 kv: smallest golden logit margin at step %d: %.4g\n", same_until, mn);
            /* bf16 error cannot flip a clear decision, only a near-tie */
            CHECK(mn < 0.1f, "bf16 kv flipped step %d whose margin is %.3g", same_until, mn);
        }
        const char *taps[] = {"main_emb_sum", "main_layer_out", "main_pre_norm", "main_out_normed",
                              "text_logits", "depformer_in", "depformer_out", "depformer_logits"};
        for (size_t i = 0; i < sizeof taps / sizeof *taps; i++) {
            char name[64];
            snprintf(name, sizeof name, "lm.%s", taps[i]);
            const xs_tensor *g = xs_weights_find(gold, taps[i]);
            const xs_tensor *a = xs_taps_find(r[0].taps, name), *c = xs_taps_find(r[1].taps, name);
            CHECK(g && a && c, "tap %s present", taps[i]);
            if (!g || !a || !c) continue;
            double err, ref, errc, refc;
            /* the temporal taps of the step that flips still have the right
             * inputs; its depformer taps already follow the flipped token */
            int rows = same_until < STEPS && !strstr(taps[i], "depformer") ? same_until + 1
                                                                          : same_until;
            tap_err(a, g, rows, &err, &ref);
            tap_err(c, a, STEPS, &errc, &refc); /* cpu vs ref, all steps */
            const double tol = 3e-2 * fmax(1.0, ref);
            printf("  %-18s vs f32 golden (%d steps): max err %.3g (max |golden| %.3g); "
                   "cpu vs ref %.3g\n",
                   taps[i], rows, err, ref, errc);
            CHECK(err <= tol, "bf16 kv tap %s: max err %.3g > %.3g", taps[i], err, tol);
            CHECK(err > 0 || strcmp(taps[i], "main_emb_sum") == 0,
                  "bf16 kv tap %s is bit-exact: is the cache really bf16?", taps[i]);
            CHECK(errc <= 1e-4 * fmax(1.0, refc), "bf16 kv tap %s: cpu vs ref %.3g", taps[i],
                  errc);
        }
    }
    for (int b = 0; b < 2; b++) run_free(&r[b]);
    xs_weights_close(gold);
}

int main(void) {
    check_ops("ref");
    check_ops("cpu");
    check_lm_tiny();
    return test_summary("test_lm_kv_bf16");
}
