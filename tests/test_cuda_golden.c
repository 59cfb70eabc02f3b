/*
 * test_cuda_golden.c — the golden tests on the cuda backend: Kyutai's
 * references must come out of the GPU exactly as they come out of ref/cpu.
 *  - mimi_tiny (f32 and bf16 files): streaming encode codes exact, decode
 *    of the golden codes within 1e-4, the long run past the 250 context;
 *  - lm_tiny greedy (f32, bf16), the candle Q8_0 GGUF, pipeline_tiny's LM
 *    steps: every step_out token exact;
 *  - kyutai_test_lm teacher-forced logits within 1e-4.
 * Skips (77) when no CUDA GPU is usable. (The per-backend golden tests,
 * test_mimi_golden and test_lm_tiny_greedy, run on ref and cpu; this file
 * runs the same references on cuda.)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "formats/safetensors.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "model/mimi.h"
#include "testutil.h"

#define FRAME 1920

static xs_backend *open_cuda(void) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open("cuda", 1, &be) == XS_OK, "open cuda: %s", xs_error_msg());
    return be;
}

/* ---- mimi ---------------------------------------------------------------------- */

static int codes_bad(const int32_t *got, const xs_tensor *want, int64_t n) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad += got[i] != (int32_t)((const int64_t *)want->data)[i];
    return bad;
}

static void run_mimi(const char *model_file, const char *golden_file) {
    xs_backend *be = open_cuda();
    if (!be) return;
    mimi_config cfg;
    xs_weights *w = NULL;
    mimi_model *m = NULL;
    mimi_stream *s = NULL;
    xs_safetensors *g = NULL, *g32 = NULL;
    CHECK(mimi_config_load(golden_path("mimi_tiny/config.json"), &cfg) == XS_OK, "config: %s",
          xs_error_msg());
    CHECK(xs_weights_open(golden_path(model_file), &w) == XS_OK, "open: %s", xs_error_msg());
    CHECK(w && mimi_model_load(be, &cfg, w, &m) == XS_OK, "load %s: %s", model_file,
          xs_error_msg());
    CHECK(xs_st_open(golden_path(golden_file), &g) == XS_OK, "golden: %s", xs_error_msg());
    CHECK(xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &g32) == XS_OK, "golden32");
    if (!m || !g || !g32) goto done;
    const xs_tensor *in = xs_st_find(g32, "input_pcm"), *want = xs_st_find(g, "codes_stream");
    const xs_tensor *pw = xs_st_find(g, "pcm_decoded_stream");
    const xs_tensor *wl = xs_st_find(g, "codes_stream_long");
    CHECK(in && want && pw, "golden tensors present");
    if (!in || !want || !pw) goto done;
    const int64_t n0 = xs_tensor_numel(in), n = (n0 + FRAME - 1) / FRAME * FRAME, T = n / FRAME;
    const int K = cfg.num_codebooks;
    float *x = calloc((size_t)(2 * n), sizeof *x), *pcm = calloc((size_t)(2 * n), sizeof *pcm);
    int32_t *codes = calloc((size_t)(2 * T * K), sizeof *codes);
    memcpy(x, in->data, (size_t)n0 * sizeof *x);
    memcpy(x + n, x, (size_t)n * sizeof *x);
    CHECK(mimi_stream_new(m, &s) == XS_OK, "stream: %s", xs_error_msg());
    xs_status rc = XS_OK;
    for (int64_t t = 0; s && rc == XS_OK && t < T; t++)
        rc = mimi_encode(s, x + t * FRAME, FRAME, K, codes + t * K);
    CHECK(rc == XS_OK, "%s: encode: %s", model_file, xs_error_msg());
    int bad = codes_bad(codes, want, T * K);
    CHECK(bad == 0, "%s: codes_stream: %d of %lld codes differ", model_file, bad,
          (long long)(T * K));
    printf("cuda mimi %s: codes_stream %d of %lld codes differ\n", model_file, bad,
           (long long)(T * K));
    for (int64_t i = 0; i < T * K; i++) codes[i] = (int32_t)((const int64_t *)want->data)[i];
    for (int64_t t = 0; s && rc == XS_OK && t < T; t++)
        rc = mimi_decode(s, codes + t * K, 1, K, pcm + t * FRAME);
    CHECK(rc == XS_OK, "%s: decode: %s", model_file, xs_error_msg());
    double err = test_max_abs_diff(pcm, pw->data, n);
    CHECK(err <= 1e-4, "%s: pcm_decoded_stream max abs err %.3g", model_file, err);
    printf("cuda mimi %s: pcm_decoded_stream max abs err %.3g\n", model_file, err);
    if (wl && s) {
        CHECK(mimi_stream_reset(s) == XS_OK, "reset");
        for (int64_t t = 0; rc == XS_OK && t < 2 * T; t++)
            rc = mimi_encode(s, x + t * FRAME, FRAME, K, codes + t * K);
        bad = codes_bad(codes, wl, 2 * T * K);
        CHECK(rc == XS_OK && bad == 0, "%s: codes_stream_long: %d differ (%s)", model_file, bad,
              rc == XS_OK ? "ok" : xs_error_msg());
        printf("cuda mimi %s: codes_stream_long %d of %lld codes differ\n", model_file, bad,
               (long long)(2 * T * K));
    }
    free(x);
    free(pcm);
    free(codes);
done:
    mimi_stream_free(s);
    xs_st_close(g);
    xs_st_close(g32);
    mimi_model_free(m);
    xs_weights_close(w);
    xs_backend_close(be);
}

/* ---- lm greedy -------------------------------------------------------------------- */

static void run_lm(const char *model_rel, const char *golden_rel, const char *config_rel) {
    xs_backend *be = open_cuda();
    if (!be) return;
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path(config_rel));
    lm_model *m = NULL;
    xs_weights *gold = NULL;
    lm_gen *g = NULL;
    CHECK(lm_model_load(golden_path(model_rel), cfg, be, &m) == XS_OK, "%s: load: %s", model_rel,
          xs_error_msg());
    CHECK(xs_weights_open(golden_path(golden_rel), &gold) == XS_OK, "golden: %s", xs_error_msg());
    if (!m || !gold) goto done;
    const xs_tensor *in = xs_weights_find(gold, "input_codes");
    if (!in) in = xs_weights_find(gold, "step_input_codes"); /* pipeline_tiny */
    const xs_tensor *want = xs_weights_find(gold, "step_out");
    CHECK(in && want, "golden tensors present");
    if (!in || !want) goto done;
    lm_sampling s;
    lm_sampling_default(&s);
    s.greedy = true;
    CHECK(lm_gen_new(m, &s, NULL, &g) == XS_OK, "gen: %s", xs_error_msg());
    const int steps = (int)in->shape[0];
    int bad = 0;
    for (int st = 0; g && st < steps; st++) {
        int32_t user[8], out[9];
        for (int j = 0; j < 8; j++) user[j] = (int32_t)((const int64_t *)in->data)[st * 8 + j];
        bool valid = false;
        xs_status rc = lm_gen_step(g, user, out, &valid);
        if (rc != XS_OK) {
            CHECK(0, "%s: step %d: %s", model_rel, st, xs_error_msg());
            break;
        }
        for (int k = 0; k < 9; k++) bad += out[k] != ((const int64_t *)want->data)[st * 9 + k];
    }
    CHECK(bad == 0, "%s vs %s: %d step_out tokens differ", model_rel, golden_rel, bad);
    printf("cuda lm %s vs %s: %d steps, %d tokens differ\n", model_rel, golden_rel, steps, bad);
done:
    lm_gen_free(g);
    xs_weights_close(gold);
    lm_model_free(m);
    xs_backend_close(be);
}

/* ---- kyutai_test_lm: teacher-forced logits ------------------------------------- */

static void run_kyutai_forward(void) {
    xs_backend *be = open_cuda();
    if (!be) return;
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path("kyutai_test_lm/config.json"));
    lm_model *m = NULL;
    xs_weights *cw = NULL, *ow = NULL;
    CHECK(lm_model_load(golden_path("kyutai_test_lm/test_lm_model.safetensors"), cfg, be, &m) ==
              XS_OK, "kyutai load: %s", xs_error_msg());
    xs_weights_open(golden_path("kyutai_test_lm/test_lm_codes.safetensors"), &cw);
    xs_weights_open(golden_path("kyutai_test_lm/test_lm_out.safetensors"), &ow);
    const xs_tensor *codes = cw ? xs_weights_find(cw, "codes") : NULL;
    const xs_tensor *gl = ow ? xs_weights_find(ow, "logits") : NULL;
    const xs_tensor *gtl = ow ? xs_weights_find(ow, "text_logits") : NULL;
    const xs_tensor *gm = ow ? xs_weights_find(ow, "mask") : NULL;
    CHECK(m && codes && gl && gtl && gm, "kyutai golden present");
    if (m && codes && gl && gtl && gm) {
        const int B = (int)codes->shape[0], T = (int)codes->shape[2];
        const int dq = m->cfg.dep_q, C = m->cfg.card, V = m->cfg.text_card;
        float *lg = malloc((size_t)B * dq * T * C * sizeof(float));
        float *tl = malloc((size_t)B * T * V * sizeof(float));
        uint8_t *mk = malloc((size_t)B * dq * T), *tm = malloc((size_t)B * T);
        xs_status rc = lm_score(m, codes->data, B, T, lg, mk, tl, tm);
        CHECK(rc == XS_OK, "kyutai score: %s", xs_error_msg());
        if (rc == XS_OK) {
            const uint8_t *gmk = gm->data;
            const float *glf = gl->data, *gtlf = gtl->data;
            double err = 0, terr = 0;
            for (int64_t i = 0; i < (int64_t)B * dq * T; i++)
                if (gmk[i])
                    for (int v = 0; v < C; v++) {
                        double e = fabs(lg[i * C + v] - glf[i * C + v]);
                        if (!(e <= err)) err = e;
                    }
            for (int64_t i = 0; i < (int64_t)B * T * V; i++) {
                double e = fabs(tl[i] - gtlf[i]);
                if (!(e <= terr)) terr = e;
            }
            CHECK(err <= 1e-4 && terr <= 1e-4, "kyutai logits max err audio %.3g text %.3g", err,
                  terr);
            printf("cuda kyutai_test_lm: logits max err audio %.3g text %.3g\n", err, terr);
        }
        free(lg);
        free(tl);
        free(mk);
        free(tm);
    }
    xs_weights_close(cw);
    xs_weights_close(ow);
    lm_model_free(m);
    xs_backend_close(be);
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    golden_path("mimi_tiny/config.json"); /* skips when the golden folder is missing */
    run_mimi("mimi_tiny/model.safetensors", "mimi_tiny/golden.safetensors");
    run_mimi("mimi_tiny/model.bf16.safetensors", "mimi_tiny/golden_bf16w.safetensors");
    run_lm("lm_tiny/model.safetensors", "lm_tiny/golden.safetensors", "lm_tiny/config.json");
    run_lm("lm_tiny/model.bf16.safetensors", "lm_tiny/golden_bf16w.safetensors",
           "lm_tiny/config.json");
    run_lm("lm_tiny/model.safetensors", "pipeline_tiny/golden.safetensors", "lm_tiny/config.json");
    run_lm("lm_tiny_candle_q8/model.q8.gguf", "lm_tiny_candle_q8/golden.safetensors",
           "lm_tiny_candle_q8/config.json");
    run_kyutai_forward();
    return test_summary("test_cuda_golden");
}
