/*
 * kv_golden_check.h — shared by test_lm_kv_bf16.c and test_lm_kv_q8.c:
 * lm_tiny's 60 greedy LMGen steps with a reduced-precision temporal KV
 * cache on ref and cpu, and how far they stay with the f32 golden.
 *
 * A lossy cache may flip a near-tie, after which every later row differs, so
 * the checks here are the ones both options share: ref and cpu give the same
 * tokens; a divergence from the golden happens only at a step whose golden
 * logit margin is small; every tap stays close to the golden up to that
 * step and cpu stays close to ref over all steps. Each test adds the checks
 * of its own dtype (bytes, exactness, nmse) from what these return.
 */
#ifndef XS_TEST_KV_GOLDEN_CHECK_H
#define XS_TEST_KV_GOLDEN_CHECK_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "diag/taps.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

#define KVG_STEPS 60
#define KVG_TAPS 8

typedef struct kvg_run {
    int32_t tokens[KVG_STEPS][9];
    xs_taps *taps;
    lm_model *m;
    xs_backend *be;
    size_t kv_bytes_f32, kv_bytes; /* lm_model_kv_bytes before / after the dtype change */
} kvg_run;

/* Per tap, over the steps before the first divergence from the golden. */
typedef struct kvg_tap {
    const char *name;
    double err, ref, nmse; /* vs the f32 golden: max |diff|, max |golden|, nmse */
} kvg_tap;

static const char *const kvg_tap_names[KVG_TAPS] = {
    "main_emb_sum", "main_layer_out", "main_pre_norm", "main_out_normed",
    "text_logits",  "depformer_in",   "depformer_out", "depformer_logits"};

/* lm_tiny with a `kv` temporal cache on `backend`, fed the golden's input
 * codes for KVG_STEPS greedy steps. */
static bool kvg_run_gen(const char *backend, xs_dtype kv, const xs_weights *gold, kvg_run *r) {
    memset(r, 0, sizeof *r);
    char model[4096], cfg[4096];
    snprintf(model, sizeof model, "%s", golden_path("lm_tiny/model.safetensors"));
    snprintf(cfg, sizeof cfg, "%s", golden_path("lm_tiny/config.json"));
    CHECK(xs_backend_open(backend, 2, &r->be) == XS_OK, "%s: open", backend);
    if (!r->be) return false;
    CHECK(lm_model_load(model, cfg, r->be, &r->m) == XS_OK, "%s: load: %s", backend,
          xs_error_msg());
    if (!r->m) return false;
    r->kv_bytes_f32 = lm_model_kv_bytes(r->m);
    CHECK(lm_model_set_kv_dtype(r->m, kv) == XS_OK, "%s: %s kv: %s", backend, xs_dtype_name(kv),
          xs_error_msg());
    r->kv_bytes = lm_model_kv_bytes(r->m);
    r->taps = xs_taps_new();
    lm_sampling s;
    lm_sampling_default(&s);
    s.greedy = true;
    lm_gen *g = NULL;
    CHECK(lm_gen_new(r->m, &s, r->taps, &g) == XS_OK, "%s: gen: %s", backend, xs_error_msg());
    if (!g) return false;
    const int64_t *in = xs_weights_find(gold, "input_codes")->data;
    bool ok = true;
    for (int st = 0; st < KVG_STEPS && ok; st++) {
        int32_t user[8];
        for (int j = 0; j < 8; j++) user[j] = (int32_t)in[st * 8 + j];
        bool valid;
        ok = lm_gen_step(g, user, r->tokens[st], &valid) == XS_OK;
        CHECK(ok, "%s: step %d: %s", backend, st, xs_error_msg());
    }
    lm_gen_free(g);
    return ok;
}

static void kvg_run_free(kvg_run *r) {
    xs_taps_free(r->taps);
    lm_model_free(r->m);
    xs_backend_close(r->be);
}

/* Over rows 0..rows-1 (first dim = step): max |a - g|, max |g|, nmse. */
static void kvg_tap_err(const xs_tensor *a, const xs_tensor *g, int rows, kvg_tap *t) {
    t->err = 0, t->ref = 0, t->nmse = 0;
    const int64_t n = xs_tensor_numel(g), per = n / g->shape[0];
    if (xs_tensor_numel(a) != n || a->dtype != XS_F32 || g->dtype != XS_F32) {
        t->err = t->nmse = INFINITY;
        return;
    }
    const float *x = a->data, *y = g->data;
    for (int64_t i = 0; i < per * rows; i++) {
        t->ref = fmax(t->ref, fabs(y[i]));
        double e = fabs((double)x[i] - y[i]);
        if (!(e <= t->err)) t->err = e;
    }
    t->nmse = rows > 0 ? test_nmse(y, x, per * rows) : 0;
}

/* The first step whose sampled tokens (ref's taps) leave the golden, or
 * KVG_STEPS; 0 when the taps are missing. */
static int kvg_same_until(const xs_weights *gold, const kvg_run *r) {
    const int64_t *st_text = xs_weights_find(gold, "sampled_text")->data;
    const int64_t *st_audio = xs_weights_find(gold, "sampled_audio")->data;
    const xs_tensor *tt = xs_taps_find(r->taps, "lm.sampled_text");
    const xs_tensor *ta = xs_taps_find(r->taps, "lm.sampled_audio");
    const bool have = tt && ta && tt->dtype == XS_I32 && ta->dtype == XS_I32;
    CHECK(have, "sampled taps present");
    if (!have) return 0;
    for (int st = 0; st < KVG_STEPS; st++) {
        bool same = ((const int32_t *)tt->data)[st] == st_text[st];
        for (int k = 0; k < 8; k++)
            same &= ((const int32_t *)ta->data)[st * 8 + k] == st_audio[st * 8 + k];
        if (!same) return st;
    }
    return KVG_STEPS;
}

/* Runs ref and cpu with a `kv` cache and checks what every lossy cache must
 * keep (see the top). Fills taps[KVG_TAPS] (ref vs the golden) and returns
 * the first divergent step (KVG_STEPS: none), or -1 when a run failed;
 * *rows_match = how many step_out rows equal the golden's. The
 * runs stay open in r[0] (ref) and r[1] (cpu) for the caller's own checks;
 * the caller frees them with kvg_run_free. */
static int kvg_check(const char *label, xs_dtype kv, const xs_weights *gold, kvg_run r[2],
                     kvg_tap taps[KVG_TAPS], int *rows_match_out) {
    const char *names[2] = {"ref", "cpu"};
    bool ok = true;
    for (int b = 0; b < 2; b++) ok = kvg_run_gen(names[b], kv, gold, &r[b]) && ok;
    if (!ok) return -1;
    const int64_t *want = xs_weights_find(gold, "step_out")->data;
    int differ = 0, rows_match = 0;
    for (int st = 0; st < KVG_STEPS; st++) {
        bool same = true;
        for (int k = 0; k < 9; k++) {
            differ += r[0].tokens[st][k] != r[1].tokens[st][k];
            same &= r[0].tokens[st][k] == want[st * 9 + k];
        }
        rows_match += same;
    }
    CHECK(differ == 0, "%s: %d tokens differ between ref and cpu", label, differ);
    printf("%s on ref/cpu: %d of %d step_out rows equal the f32 golden\n", label, rows_match,
           KVG_STEPS);
    *rows_match_out = rows_match;
    const int same_until = kvg_same_until(gold, &r[0]);
    printf("%s: sampled tokens equal the f32 golden for the first %d steps\n", label, same_until);
    if (same_until < KVG_STEPS) {
        const float *tm = xs_weights_find(gold, "text_logit_margin")->data;
        const float *dm = xs_weights_find(gold, "depformer_logit_margin")->data;
        float mn = tm[same_until];
        for (int k = 0; k < 8; k++) mn = fminf(mn, dm[same_until * 8 + k]);
        printf("%s: smallest golden logit margin at step %d: %.4g\n", label, same_until, mn);
        /* a lossy cache's error can flip a near-tie, not a clear decision */
        CHECK(mn < 0.1f, "%s flipped step %d whose margin is %.3g", label, same_until, mn);
    }
    for (int i = 0; i < KVG_TAPS; i++) {
        char name[64];
        snprintf(name, sizeof name, "lm.%s", kvg_tap_names[i]);
        kvg_tap *t = &taps[i], c;
        t->name = kvg_tap_names[i];
        t->err = t->nmse = INFINITY;
        const xs_tensor *g = xs_weights_find(gold, t->name);
        const xs_tensor *a = xs_taps_find(r[0].taps, name), *b = xs_taps_find(r[1].taps, name);
        CHECK(g && a && b, "tap %s present", t->name);
        if (!g || !a || !b) continue;
        /* the temporal taps of the step that flips still have the right
         * inputs; its depformer taps already follow the flipped token */
        const int rows = same_until < KVG_STEPS && !strstr(t->name, "depformer") ? same_until + 1
                                                                                : same_until;
        kvg_tap_err(a, g, rows, t);
        kvg_tap_err(b, a, KVG_STEPS, &c); /* cpu vs ref, all steps */
        printf("  %-18s vs f32 golden (%d steps): max err %.3g (max |golden| %.3g) nmse %.3g; "
               "cpu vs ref %.3g\n",
               t->name, rows, t->err, t->ref, t->nmse, c.err);
        CHECK(t->err <= 3e-2 * fmax(1.0, t->ref), "%s tap %s: max err %.3g", label, t->name,
              t->err);
        CHECK(c.err <= 1e-4 * fmax(1.0, c.ref), "%s tap %s: cpu vs ref %.3g", label, t->name,
              c.err);
    }
    return same_until;
}

#endif
