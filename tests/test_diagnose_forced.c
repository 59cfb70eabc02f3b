/*
 * test_diagnose_forced.c — the teacher-forced LM driver of `xswarm diagnose`
 * (xs_diag_lm_forced) replays LMGen exactly: on the same backend, fed the
 * tokens LMGen picked, every lm.* tap is bit-identical, for the 60 input
 * steps of golden lm_tiny; forcing OTHER tokens changes the taps from the
 * step after. Also xs_diag_pick_op's choice among failing ops.
 */
#include <string.h>

#include "diag/diagnose.h"
#include "formats/weights.h"
#include "testutil.h"

static void test_forced(xs_backend *be) {
    char path[1024], cfg[1024];
    snprintf(path, sizeof path, "%s", golden_path("lm_tiny/model.safetensors"));
    snprintf(cfg, sizeof cfg, "%s", golden_path("lm_tiny/config.json"));
    lm_model *m = NULL;
    if (lm_model_load(path, cfg, be, &m) != XS_OK) {
        CHECK(0, "load lm_tiny: %s", xs_error_msg());
        return;
    }
    xs_weights *g = NULL;
    CHECK(xs_weights_open(golden_path("lm_tiny/golden.safetensors"), &g) == XS_OK, "golden");
    const xs_tensor *ic = g ? xs_weights_find(g, "input_codes") : NULL;
    CHECK(ic && ic->dtype == XS_I64 && ic->ndim == 2 && ic->shape[1] == 8, "input_codes");
    if (!ic) {
        lm_model_free(m);
        xs_weights_close(g);
        return;
    }
    enum { S = 20, NU = 8, DQ = 8 };
    int32_t user[S * NU], picks[S * (1 + DQ)];
    for (int i = 0; i < S * NU; i++) user[i] = (int32_t)((const int64_t *)ic->data)[i];
    /* LMGen, greedy, with taps */
    lm_sampling smp;
    lm_sampling_default(&smp);
    smp.greedy = true;
    xs_taps *ta = xs_taps_new(), *tb = xs_taps_new(), *tc = xs_taps_new();
    lm_gen *gen = NULL;
    CHECK(lm_gen_new(m, &smp, ta, &gen) == XS_OK, "lm_gen_new");
    for (int s = 0; gen && s < S; s++) {
        int32_t out[1 + DQ];
        bool valid;
        CHECK(lm_gen_step(gen, user + s * NU, out, &valid) == XS_OK, "step %d", s);
    }
    lm_gen_free(gen);
    const xs_tensor *st = xs_taps_find(ta, "lm.sampled_text"),
                    *sa = xs_taps_find(ta, "lm.sampled_audio");
    CHECK(st && sa && st->shape[0] == S && sa->shape[0] == S, "picked tokens recorded");
    if (!st || !sa) goto done;
    for (int s = 0; s < S; s++) {
        picks[s * (1 + DQ)] = ((const int32_t *)st->data)[s];
        memcpy(picks + s * (1 + DQ) + 1, (const int32_t *)sa->data + s * DQ, sizeof(int32_t) * DQ);
    }
    /* forced with the same picks: identical taps */
    CHECK(xs_diag_lm_forced(m, tb, S, user, picks) == XS_OK, "forced: %s", xs_error_msg());
    xs_tap_report rep;
    xs_tapcmp_opts o = {.rel_tol = 1e-30, .skip = "lm.sampled"}; /* demand exact */
    CHECK(xs_tap_compare(ta, tb, &o, &rep) == XS_OK, "compare");
    CHECK(rep.n >= 7 && rep.n_over == 0, "forced replay differs: %d taps, %d over (%s)", rep.n,
          rep.n_over, rep.first >= 0 ? rep.diffs[rep.first].name : "");
    for (int i = 0; i < rep.n; i++)
        CHECK(!rep.diffs[i].skipped && rep.diffs[i].max_abs == 0, "%s: max abs %g",
              rep.diffs[i].name, rep.diffs[i].max_abs);
    xs_tap_report_free(&rep);
    /* forcing a different text token at step 5 changes the LM from step 5
     * (depformer input) on, not before */
    picks[5 * (1 + DQ)] = (picks[5 * (1 + DQ)] + 1) % 100;
    CHECK(xs_diag_lm_forced(m, tc, S, user, picks) == XS_OK, "forced 2");
    CHECK(xs_tap_compare(ta, tc, &o, &rep) == XS_OK, "compare 2");
    CHECK(rep.first >= 0 && rep.diffs[rep.first].first_step == 5 &&
              !strcmp(rep.diffs[rep.first].name, "lm.depformer_in"),
          "changed pick: first divergence %s step %lld",
          rep.first >= 0 ? rep.diffs[rep.first].name : "-",
          rep.first >= 0 ? (long long)rep.diffs[rep.first].first_step : -1LL);
    xs_tap_report_free(&rep);
done:
    xs_taps_free(ta);
    xs_taps_free(tb);
    xs_taps_free(tc);
    xs_weights_close(g);
    lm_model_free(m);
}

static void test_pick_op(void) {
    char op[32];
    xs_diag_pick_op("mimi.enc.seanet.01.SEANetResnetBlock", "matmul,elu", op, sizeof op);
    CHECK(!strcmp(op, "elu"), "seanet tap: %s", op);
    xs_diag_pick_op("lm.main_layer_out", "matmul,rms_norm", op, sizeof op);
    CHECK(!strcmp(op, "rms_norm"), "lm tap: %s", op);
    xs_diag_pick_op("lm.main_layer_out", "softmax,elu,copy", op, sizeof op);
    CHECK(!strcmp(op, "copy"), "copy echoes: %s", op);
    xs_diag_pick_op("", "softmax", op, sizeof op);
    CHECK(!strcmp(op, "softmax"), "no tap: %s", op);
    xs_diag_pick_op("lm.x", "", op, sizeof op);
    CHECK(op[0] == 0, "nothing failing: %s", op);
}

int main(void) {
    test_pick_op();
    xs_backend *be = NULL;
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "open ref");
    if (be) {
        test_forced(be);
        xs_backend_close(be);
    }
    return test_summary("diagnose_forced");
}
