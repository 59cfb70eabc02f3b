/*
 * lm_score.c — teacher-forced forward, like Kyutai's LMModel.forward.
 *
 * With codes c[k][t] (k = 0 text, 1..n_q audio) and delays d_k:
 *   delayed[k][0]   = initial token,
 *   delayed[k][t+1] = c[k][t - d_k] if t >= d_k else initial.
 * Position t of the temporal transformer embeds delayed[:, t]; the depth
 * transformer at t is fed delayed[0][t+1] (text) for sub-step 0 and
 * delayed[k][t+1] for sub-step k (the previous codebook's token), which is
 * the streaming computation with the true tokens in place of samples.
 * Outputs are re-aligned ("undelayed"): logits[k][t] = raw[k][t + d_k];
 * the last d_k positions have no prediction (mask false, NaN), and positions
 * whose code is -1 (zero token) are masked too.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/lm.h"

static int32_t delayed_token(const lm_config *c, const int64_t *codes_b, int T, int k, int t1) {
    int32_t init = k == 0 ? c->text_card : c->card;
    if (t1 == 0) return init;
    int t = t1 - 1;
    if (t < c->delays[k]) return init;
    return (int32_t)codes_b[(int64_t)k * T + (t - c->delays[k])];
}

xs_status lm_score(const lm_model *m, const int64_t *codes, int B, int T, float *logits,
                   uint8_t *mask, float *text_logits, uint8_t *text_mask) {
    const lm_config *c = &m->cfg;
    const int K = 1 + c->n_q, dq = c->dep_q, V = c->text_card, C = c->card;
    for (int64_t i = 0; i < (int64_t)B * K * T; i++)
        if (codes[i] < -1 || codes[i] > (i / T % K == 0 ? V : C))
            return xs_error(XS_ERR_ARG, "lm score: code %lld at flat index %lld out of range",
                            (long long)codes[i], (long long)i);
    float *raw_text = malloc((size_t)T * V * sizeof(float));
    float *raw_audio = malloc((size_t)T * dq * C * sizeof(float));
    lm_exec e;
    memset(&e, 0, sizeof e);
    xs_status rc = (raw_text && raw_audio) ? lm_exec_init(&e, m, NULL)
                                           : xs_error(XS_ERR_NOMEM, "lm score: out of memory");
    for (int b = 0; rc == XS_OK && b < B; b++) {
        const int64_t *cb = codes + (int64_t)b * K * T;
        rc = lm_exec_reset(&e);
        for (int t = 0; rc == XS_OK && t < T; t++) {
            int32_t in[LM_MAX_STREAMS];
            for (int k = 0; k < K; k++) in[k] = delayed_token(c, cb, T, k, t);
            rc = lm_exec_main(&e, in);
            if (rc == XS_OK) rc = xs_tensor_download(e.be, raw_text + (int64_t)t * V, &e.text_logits);
            for (int k = 0; rc == XS_OK && k < dq; k++) {
                int32_t tok = delayed_token(c, cb, T, k, t + 1);
                rc = xs_tensor_upload(e.be, &e.ids, &tok);
                if (rc == XS_OK) rc = lm_exec_dep(&e, k, &e.ids);
                if (rc == XS_OK)
                    rc = xs_tensor_download(e.be, raw_audio + ((int64_t)k * T + t) * C,
                                            &e.audio_logits);
            }
        }
        if (rc != XS_OK) break;
        /* undelay */
        for (int t = 0; t < T; t++) {
            int src = t + c->delays[0];
            bool ok = src < T;
            float *dst = text_logits + ((int64_t)b * T + t) * V;
            for (int v = 0; v < V; v++) dst[v] = ok ? raw_text[(int64_t)src * V + v] : NAN;
            text_mask[(int64_t)b * T + t] = ok && cb[t] != -1;
        }
        for (int k = 0; k < dq; k++) {
            int d = c->delays[1 + k];
            for (int t = 0; t < T; t++) {
                int src = t + d;
                bool ok = src < T;
                float *dst = logits + (((int64_t)b * dq + k) * T + t) * C;
                for (int v = 0; v < C; v++)
                    dst[v] = ok ? raw_audio[((int64_t)k * T + src) * C + v] : NAN;
                mask[((int64_t)b * dq + k) * T + t] = ok && cb[(int64_t)(1 + k) * T + t] != -1;
            }
        }
    }
    lm_exec_free(&e);
    free(raw_text);
    free(raw_audio);
    return rc;
}
