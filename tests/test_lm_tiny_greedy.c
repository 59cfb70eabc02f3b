/*
 * test_lm_tiny_greedy.c — 60 greedy LMGen steps of lm_tiny against Kyutai's
 * goldens (F32 weights and BF16 weights), on ref and cpu: step_out exact,
 * every tap within 1e-4 * max(1, max|ref|), sampled tokens exact. Also the
 * candle Q8_0 GGUF (its golden was computed in f32 on the dequantized
 * weights, which is what ref and cpu do with Q8_0 weights), and the LM steps of
 * pipeline_tiny.
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

static double *to_f64(const xs_tensor *t, int64_t *n) {
    *n = xs_tensor_numel(t);
    double *d = malloc((size_t)*n * sizeof *d);
    float *f = malloc((size_t)*n * sizeof *f);
    if (!d || !f || xs_convert_to_f32(f, t->data, t->dtype, *n) != XS_OK) {
        /* ints: convert by hand */
        for (int64_t i = 0; i < *n; i++)
            d[i] = t->dtype == XS_I64 ? (double)((const int64_t *)t->data)[i]
                   : t->dtype == XS_I32 ? (double)((const int32_t *)t->data)[i] : NAN;
    } else {
        for (int64_t i = 0; i < *n; i++) d[i] = f[i];
    }
    free(f);
    return d;
}

/* Compare every recorded lm.* tap with its golden tensor. */
static void compare_taps(const xs_taps *taps, const xs_weights *gold, const char *what) {
    int compared = 0;
    for (int i = 0; i < xs_taps_count(taps); i++) {
        const xs_tensor *t = xs_taps_at(taps, i);
        const char *gname = t->name + 3; /* strip "lm." */
        const xs_tensor *g = xs_weights_find(gold, gname);
        if (!g) continue;
        int64_t nt, ng;
        double *a = to_f64(t, &nt), *b = to_f64(g, &ng);
        CHECK(nt == ng, "%s: tap %s has %lld values, golden %lld", what, t->name, (long long)nt,
              (long long)ng);
        if (nt == ng) {
            double maxref = 0, maxerr = 0;
            for (int64_t j = 0; j < nt; j++) {
                if (fabs(b[j]) > maxref) maxref = fabs(b[j]);
                double e = fabs(a[j] - b[j]);
                if (!(e <= maxerr)) maxerr = e; /* NaN sticks */
            }
            bool exact = g->dtype == XS_I64;
            double tol = exact ? 0 : 1e-4 * (maxref > 1 ? maxref : 1);
            if (getenv("XS_TEST_VERBOSE"))
                fprintf(stderr, "%s: %-24s max err %.3g (max |ref| %.3g)\n", what, t->name,
                        maxerr, maxref);
            CHECK(maxerr <= tol, "%s: tap %s max err %.3g > tol %.3g", what, t->name, maxerr, tol);
            compared++;
        }
        free(a);
        free(b);
    }
    CHECK(compared == 11, "%s: only %d taps compared", what, compared);
}

static void run(const char *backend, const char *model_rel, const char *golden_rel,
                const char *config_rel) {
    char what[256];
    snprintf(what, sizeof what, "%s on %s", model_rel, backend);
    xs_backend *be = NULL;
    CHECK(xs_backend_open(backend, 2, &be) == XS_OK, "%s: open backend: %s", what, xs_error_msg());
    if (!be) return;
    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s", golden_path(config_rel));
    lm_model *m = NULL;
    xs_status rc = lm_model_load(golden_path(model_rel), cfg_path, be, &m);
    CHECK(rc == XS_OK, "%s: load: %s", what, xs_error_msg());
    xs_weights *gold = NULL;
    CHECK(xs_weights_open(golden_path(golden_rel), &gold) == XS_OK, "golden: %s", xs_error_msg());
    if (!m || !gold) goto done;
    const xs_tensor *in = xs_weights_find(gold, "input_codes");
    if (!in) in = xs_weights_find(gold, "step_input_codes"); /* pipeline_tiny */
    const xs_tensor *want = xs_weights_find(gold, "step_out");
    CHECK(in && want, "golden tensors present");
    if (!in || !want) goto done;
    xs_taps *taps = xs_taps_new();
    lm_sampling s;
    lm_sampling_default(&s);
    s.greedy = true;
    lm_gen *g = NULL;
    CHECK(lm_gen_new(m, &s, taps, &g) == XS_OK, "%s: gen: %s", what, xs_error_msg());
    int steps = (int)in->shape[0], bad = 0, n_valid = 0;
    for (int st = 0; g && st < steps; st++) {
        int32_t user[8], out[9];
        for (int j = 0; j < 8; j++) user[j] = (int32_t)((const int64_t *)in->data)[st * 8 + j];
        bool valid = false;
        rc = lm_gen_step(g, user, out, &valid);
        if (rc != XS_OK) { CHECK(0, "%s: step %d: %s", what, st, xs_error_msg()); break; }
        n_valid += valid;
        for (int k = 0; k < 9; k++)
            if (out[k] != ((const int64_t *)want->data)[st * 9 + k]) bad++;
        if (bad && bad < 3) fprintf(stderr, "%s: step %d differs\n", what, st);
    }
    CHECK(bad == 0, "%s: %d step_out tokens differ", what, bad);
    CHECK(n_valid == steps - 1, "%s: %d valid steps", what, n_valid);
    printf("%s: %d steps, %d tokens differ\n", what, steps, bad);
    compare_taps(taps, gold, what);
    lm_gen_free(g);
    xs_taps_free(taps);
done:
    xs_weights_close(gold);
    lm_model_free(m);
    xs_backend_close(be);
}

/* lm_gen_reset gives back a fresh session: 13 steps of other codes, reset,
 * then the golden run must still be exact (KV rings and delay cache cleared). */
static void check_reset(void) {
    xs_backend *be = NULL;
    lm_model *m = NULL;
    xs_weights *gold = NULL;
    lm_gen *g = NULL;
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path("lm_tiny/config.json"));
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "ref");
    CHECK(lm_model_load(golden_path("lm_tiny/model.safetensors"), cfg, be, &m) == XS_OK, "load");
    CHECK(xs_weights_open(golden_path("lm_tiny/golden.safetensors"), &gold) == XS_OK, "golden");
    lm_sampling s;
    lm_sampling_default(&s);
    s.greedy = true;
    if (m) CHECK(lm_gen_new(m, &s, NULL, &g) == XS_OK, "gen");
    if (g && gold) {
        int32_t user[8] = {1, 2, 3, 4, 5, 6, 7, 8}, out[9];
        bool valid;
        for (int st = 0; st < 13; st++) lm_gen_step(g, user, out, &valid);
        CHECK(lm_gen_reset(g) == XS_OK && lm_gen_steps(g) == 0, "reset");
        const int64_t *in = xs_weights_find(gold, "input_codes")->data;
        const int64_t *want = xs_weights_find(gold, "step_out")->data;
        int bad = 0;
        for (int st = 0; st < 60; st++) {
            for (int j = 0; j < 8; j++) user[j] = (int32_t)in[st * 8 + j];
            lm_gen_step(g, user, out, &valid);
            for (int k = 0; k < 9; k++) bad += out[k] != want[st * 9 + k];
        }
        CHECK(bad == 0, "after reset: %d tokens differ", bad);
        /* out-of-range user code is an error, not a crash */
        user[3] = 64;
        CHECK(lm_gen_step(g, user, out, &valid) == XS_ERR_ARG, "code 64 rejected");
    }
    lm_gen_free(g);
    xs_weights_close(gold);
    lm_model_free(m);
    xs_backend_close(be);
}

int main(void) {
    check_reset();
    const char *backends[] = {"ref", "cpu"};
    for (int b = 0; b < 2; b++) {
        run(backends[b], "lm_tiny/model.safetensors", "lm_tiny/golden.safetensors",
            "lm_tiny/config.json");
        run(backends[b], "lm_tiny/model.bf16.safetensors", "lm_tiny/golden_bf16w.safetensors",
            "lm_tiny/config.json");
    }
    /* pipeline_tiny: the LM part of the end-to-end run (first frame given twice) */
    run("ref", "lm_tiny/model.safetensors", "pipeline_tiny/golden.safetensors", "lm_tiny/config.json");
    /* candle layout: f32 names check (no quantization in the way) then Q8_0 */
    run("ref", "lm_tiny_candle_q8/model.candle.safetensors", "lm_tiny/golden.safetensors",
        "lm_tiny/config.json");
    for (int b = 0; b < 2; b++)
        run(backends[b], "lm_tiny_candle_q8/model.q8.gguf", "lm_tiny_candle_q8/golden.safetensors",
            "lm_tiny_candle_q8/config.json");
    return test_summary("test_lm_tiny_greedy");
}
