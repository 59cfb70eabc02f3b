/*
 * test_lm_score_vs_gen.c — the teacher-forced forward (lm_score) with
 * Moshiko's delays and user streams agrees with the streaming LMGen run of
 * lm_tiny/golden.safetensors when fed the tokens that run produced.
 *
 * Frame t of the conversation is what step t + 1 returned (step_out[t + 1]:
 * text, audio 0..7) plus the user codes given at step t + 1 (LMGen ignores
 * the user codes of step 0). With those codes the forward's position t sees
 * exactly what LMGen's step t saw, so
 *   text_logits[t]         == golden text_logits[t]
 *   logits[k][t] (aligned) == golden depformer_logits[t + delay(k)][k]
 * wherever the mask is set, and the mask drops the last delay(k) frames.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/ops.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

int main(void) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "ref");
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path("lm_tiny/config.json"));
    lm_model *m = NULL;
    CHECK(lm_model_load(golden_path("lm_tiny/model.safetensors"), cfg, be, &m) == XS_OK, "load: %s",
          xs_error_msg());
    xs_weights *g = NULL;
    CHECK(xs_weights_open(golden_path("lm_tiny/golden.safetensors"), &g) == XS_OK, "golden");
    if (!m || !g) return test_summary("test_lm_score_vs_gen");
    const int64_t *in = xs_weights_find(g, "input_codes")->data;
    const int64_t *so = xs_weights_find(g, "step_out")->data;
    const float *gt = xs_weights_find(g, "text_logits")->data;
    const float *gd = xs_weights_find(g, "depformer_logits")->data;
    enum { S = 60, T = S - 1, K = 17, V = 100, C = 64, DQ = 8 };
    static int64_t codes[K * T];
    for (int t = 0; t < T; t++) {
        for (int k = 0; k < 9; k++) codes[k * T + t] = so[(t + 1) * 9 + k];
        for (int j = 0; j < 8; j++) codes[(9 + j) * T + t] = in[(t + 1) * 8 + j];
    }
    static float lg[DQ * T * C], tl[T * V];
    static uint8_t mk[DQ * T], tm[T];
    CHECK(lm_score(m, codes, 1, T, lg, mk, tl, tm) == XS_OK, "score: %s", xs_error_msg());
    double terr = 0, aerr = 0;
    int n_masked = 0;
    for (int t = 0; t < T; t++)
        for (int v = 0; v < V; v++) terr = fmax(terr, fabs(tl[t * V + v] - gt[t * V + v]));
    for (int k = 0; k < DQ; k++) {
        int d = m->cfg.delays[1 + k];
        for (int t = 0; t < T; t++) {
            bool want = t + d < T;
            CHECK(mk[k * T + t] == want, "mask[%d][%d]", k, t);
            if (!mk[k * T + t]) { n_masked++; continue; }
            for (int v = 0; v < C; v++)
                aerr = fmax(aerr, fabs(lg[(k * T + t) * C + v] - gd[((t + d) * DQ + k) * C + v]));
        }
    }
    if (getenv("XS_TEST_VERBOSE")) fprintf(stderr, "text %.3g audio %.3g\n", terr, aerr);
    CHECK(terr < 1e-4, "text logits differ from LMGen's by %.3g", terr);
    CHECK(aerr < 1e-4, "audio logits differ from LMGen's by %.3g", aerr);
    CHECK(n_masked == 7, "7 masked positions (last frame of the 7 delayed codebooks), got %d",
          n_masked);
    xs_weights_close(g);
    lm_model_free(m);
    xs_backend_close(be);
    return test_summary("test_lm_score_vs_gen");
}
