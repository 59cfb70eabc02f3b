/*
 * test_lm_kyutai_forward.c — Kyutai's own LM unit test (tests/test_lm.py::
 * test_forward) in C: the teacher-forced forward of kyutai_test_lm (sin
 * positional embeddings, LayerNorm, GELU FFN, low-rank depformer embeddings,
 * weight-sharing schedule [0,1,1]) on ref and cpu. Masks equal, logits within
 * 1e-4 at unmasked positions, NaN exactly at masked ones, per-codebook
 * cross-entropy within a relative 1e-6 of the one from the stored logits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

/* Mean over (b, t) of the cross-entropy of logits [B, K, T, V] against
 * targets [B, K', T] (stream off + k), masked positions counting 0. */
static double ce(const float *lg, const uint8_t *mask, const int64_t *codes, int B, int K, int T,
                 int V, int k, int n_streams, int off) {
    double sum = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            if (!mask[((int64_t)b * K + k) * T + t]) continue;
            const float *l = lg + (((int64_t)b * K + k) * T + t) * V;
            double mx = -INFINITY, z = 0;
            for (int v = 0; v < V; v++) if (l[v] > mx) mx = l[v];
            for (int v = 0; v < V; v++) z += exp(l[v] - mx);
            int64_t y = codes[((int64_t)b * n_streams + off + k) * T + t];
            sum += mx + log(z) - l[y];
        }
    return sum / (B * T);
}

static void run(const char *backend) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open(backend, 2, &be) == XS_OK, "open %s: %s", backend, xs_error_msg());
    if (!be) return;
    lm_model *m = NULL;
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path("kyutai_test_lm/config.json"));
    xs_status rc = lm_model_load(golden_path("kyutai_test_lm/test_lm_model.safetensors"), cfg, be, &m);
    CHECK(rc == XS_OK, "%s: load: %s", backend, xs_error_msg());
    xs_weights *cw = NULL, *ow = NULL;
    CHECK(xs_weights_open(golden_path("kyutai_test_lm/test_lm_codes.safetensors"), &cw) == XS_OK,
          "codes: %s", xs_error_msg());
    CHECK(xs_weights_open(golden_path("kyutai_test_lm/test_lm_out.safetensors"), &ow) == XS_OK,
          "out: %s", xs_error_msg());
    if (!m || !cw || !ow) goto done;
    const xs_tensor *codes = xs_weights_find(cw, "codes");
    const xs_tensor *gl = xs_weights_find(ow, "logits"), *gtl = xs_weights_find(ow, "text_logits");
    const xs_tensor *gm = xs_weights_find(ow, "mask"), *gtm = xs_weights_find(ow, "text_mask");
    CHECK(codes && gl && gtl && gm && gtm, "golden tensors present");
    if (!(codes && gl && gtl && gm && gtm)) goto done;
    int B = (int)codes->shape[0], T = (int)codes->shape[2];
    int dq = m->cfg.dep_q, C = m->cfg.card, V = m->cfg.text_card, K = 1 + m->cfg.n_q;
    float *lg = malloc((size_t)B * dq * T * C * sizeof(float));
    float *tl = malloc((size_t)B * T * V * sizeof(float));
    uint8_t *mk = malloc((size_t)B * dq * T), *tm = malloc((size_t)B * T);
    rc = lm_score(m, codes->data, B, T, lg, mk, tl, tm);
    CHECK(rc == XS_OK, "%s: score: %s", backend, xs_error_msg());
    if (rc == XS_OK) {
        const uint8_t *gmk = gm->data, *gtmk = gtm->data;
        CHECK(!memcmp(mk, gmk, (size_t)B * dq * T), "%s: mask equal", backend);
        CHECK(!memcmp(tm, gtmk, (size_t)B * T), "%s: text_mask equal", backend);
        const float *glf = gl->data, *gtlf = gtl->data;
        double err = 0, terr = 0;
        int nan_bad = 0;
        for (int64_t i = 0; i < (int64_t)B * dq * T; i++)
            for (int v = 0; v < C; v++) {
                float a = lg[i * C + v], b = glf[i * C + v];
                if (gmk[i]) { double e = fabs(a - b); if (!(e <= err)) err = e; }
                else nan_bad += !(isnan(a) && isnan(b));
            }
        for (int64_t i = 0; i < (int64_t)B * T; i++)
            for (int v = 0; v < V; v++) {
                double e = fabs(tl[i * V + v] - gtlf[i * V + v]);
                if (!(e <= terr)) terr = e;
            }
        CHECK(err <= 1e-4, "%s: audio logits max err %.3g", backend, err);
        CHECK(terr <= 1e-4, "%s: text logits max err %.3g", backend, terr);
        CHECK(nan_bad == 0, "%s: %d masked logits not NaN in both", backend, nan_bad);
        if (getenv("XS_TEST_VERBOSE"))
            fprintf(stderr, "%s: max |logit err| audio %.3g text %.3g\n", backend, err, terr);
        for (int k = 0; k < dq; k++) {
            double a = ce(lg, mk, codes->data, B, dq, T, C, k, K, 1);
            double b = ce(glf, gmk, codes->data, B, dq, T, C, k, K, 1);
            CHECK(fabs(a - b) <= 1e-6 * fabs(b), "%s: audio CE %d: %.9g vs %.9g", backend, k, a, b);
        }
        double a = ce(tl, tm, codes->data, B, 1, T, V, 0, K, 0);
        double b = ce(gtlf, gtmk, codes->data, B, 1, T, V, 0, K, 0);
        CHECK(fabs(a - b) <= 1e-6 * fabs(b), "%s: text CE %.9g vs %.9g", backend, a, b);
    }
    free(lg); free(tl); free(mk); free(tm);
done:
    xs_weights_close(cw);
    xs_weights_close(ow);
    lm_model_free(m);
    xs_backend_close(be);
}

int main(void) {
    run("ref");
    run("cpu");
    return test_summary("test_lm_kyutai_forward");
}
