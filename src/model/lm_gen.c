/*
 * lm_gen.c — LMGen.step: the token delay cache, one temporal step, the
 * depformer sub-steps and sampling.
 *
 * Delay cache (one ring per stream, CT = max_delay + 2 slots; s = steps done):
 *  1. user stream k (delay d_k) given at step s is written to slot (s + d_k) % CT;
 *  2. the model is fed, for every stream k, the initial token (text_card for
 *     text, card for audio) while s <= d_k, else slot s % CT. At s = 0 all
 *     streams are initial, so the user codes of step 0 never reach the model;
 *  3. the tokens sampled at step s go to slot (s + 1) % CT of streams 0..dep_q;
 *  4. after s + 1 <= max_delay steps nothing is returned; otherwise stream k
 *     returns slot (s + 1 - max_delay + d_k) % CT, i.e. the token sampled at
 *     step s - max_delay + d_k: the whole frame s - max_delay.
 * Every slot read in 2 and 4 was written at most max_delay + 1 steps before,
 * so CT slots never overwrite a token still needed.
 *
 * Sampling draws from the shared counter RNG: stream 0 = text, 1 + k =
 * audio codebook k, counter = the step index.
 */
#include <stdlib.h>
#include <string.h>

#include "model/lm.h"

#define LM_UNGENERATED (-2)

struct lm_gen {
    const lm_model *m;
    lm_sampling samp;
    lm_exec ex;
    int ct;                 /* ring slots per stream */
    int32_t *cache;         /* [n_streams][ct] */
    int64_t step;
    int cond_sel[LM_MAX_COND]; /* value index per conditioner, -1 = no value */
};

void lm_sampling_default(lm_sampling *s) {
    s->greedy = false;
    s->temp = 0.8f;
    s->text_temp = 0.7f;
    s->top_k = 250;
    s->text_top_k = 25;
    s->seed = 0;
}

void lm_sampling_from_config(lm_sampling *s, const lm_config *c) {
    lm_sampling_default(s);
    s->temp = c->gen_temp;
    s->text_temp = c->gen_temp_text;
    s->top_k = c->gen_top_k;
    s->text_top_k = c->gen_top_k_text;
}

xs_status lm_gen_reset(lm_gen *g) {
    int n = g->m->cfg.n_delays;
    for (int i = 0; i < n * g->ct; i++) g->cache[i] = LM_UNGENERATED;
    g->step = 0;
    return lm_exec_reset(&g->ex);
}

xs_status lm_gen_set_condition(lm_gen *g, const char *name, const char *value) {
    const lm_config *c = &g->m->cfg;
    int ci = -1, vi = -1;
    if (value) XS_TRY(lm_cond_find(c, name, value, &ci, &vi));
    else {
        for (int i = 0; i < c->n_cond; i++)
            if (!strcmp(c->cond[i].name, name)) ci = i;
        if (ci < 0) return lm_cond_find(c, name, "", &ci, &vi); /* the "unknown name" error */
    }
    int sel[LM_MAX_COND];
    memcpy(sel, g->cond_sel, sizeof sel);
    sel[ci] = vi;
    XS_TRY(lm_exec_set_condition(&g->ex, sel));
    memcpy(g->cond_sel, sel, sizeof sel);
    return XS_OK;
}

void lm_gen_free(lm_gen *g) {
    if (!g) return;
    lm_exec_free(&g->ex);
    free(g->cache);
    free(g);
}

xs_status lm_gen_new(const lm_model *m, const lm_sampling *s, xs_taps *taps, lm_gen **out) {
    lm_gen *g = calloc(1, sizeof *g);
    if (!g) return xs_error(XS_ERR_NOMEM, "lm: out of memory");
    g->m = m;
    for (int i = 0; i < LM_MAX_COND; i++) g->cond_sel[i] = -1;
    if (s) g->samp = *s;
    else lm_sampling_default(&g->samp);
    g->ct = lm_config_max_delay(&m->cfg) + 2;
    g->cache = malloc((size_t)m->cfg.n_delays * (size_t)g->ct * sizeof *g->cache);
    xs_status rc = g->cache ? lm_exec_init(&g->ex, m, taps)
                            : xs_error(XS_ERR_NOMEM, "lm: out of memory");
    if (rc == XS_OK) rc = lm_gen_reset(g);
    if (rc != XS_OK) {
        lm_gen_free(g);
        return rc;
    }
    *out = g;
    return XS_OK;
}

int64_t lm_gen_steps(const lm_gen *g) { return g->step; }

xs_status lm_gen_fill_context(lm_gen *g, uint64_t seed) {
    if (!g) return xs_error(XS_ERR_ARG, "lm: fill context: no generator");
    return lm_exec_fill_context(&g->ex, seed);
}

/* Choose a token from logits into `id` (an i32 [1] slot of e->sampled). */
static xs_status pick(lm_gen *g, const xs_tensor *logits, bool text, int cb, xs_tensor *id) {
    xs_backend *be = g->ex.be;
    const lm_sampling *s = &g->samp;
    if (s->greedy) return xs_op_argmax(be, id, logits);
    float temp = text ? s->text_temp : s->temp;
    int top_k = text ? s->text_top_k : s->top_k;
    uint64_t stream = text ? 0 : 1 + (uint64_t)cb;
    return xs_op_sample_topk(be, id, logits, temp, top_k, s->seed, stream, (uint64_t)g->step);
}

xs_status lm_gen_step(lm_gen *g, const int32_t *user_codes, int32_t *out, bool *valid) {
    const lm_config *c = &g->m->cfg;
    const int n = c->n_delays, ct = g->ct, dq = c->dep_q;
    const int64_t s = g->step;
    const int n_user = c->n_q - dq;
    for (int j = 0; j < n_user; j++) {
        int32_t code = user_codes[j];
        if (code < -1 || code >= c->card)
            return xs_error(XS_ERR_ARG, "lm: user code %d of step %lld out of range (-1..%d)", code,
                            (long long)s, c->card - 1);
    }
    /* 1. user codes into their delayed slots */
    for (int j = 0; j < n_user; j++) {
        int k = 1 + dq + j;
        g->cache[k * ct + (int)((s + c->delays[k]) % ct)] = user_codes[j];
    }
    /* 2. what the model sees */
    int32_t in[LM_MAX_STREAMS];
    for (int k = 0; k < n; k++) {
        if (s <= c->delays[k]) in[k] = k == 0 ? c->text_card : c->card;
        else in[k] = g->cache[k * ct + (int)(s % ct)];
        XS_ASSERT(in[k] != LM_UNGENERATED);
    }
    lm_exec *e = &g->ex;
    XS_TRY(lm_exec_main(e, in));
    /* The picks stay in backend memory; sub-step k embeds slot k. One
     * download per step brings them to the host delay cache. */
    xs_tensor slot = lm_slot(&e->sampled, 0);
    XS_TRY(pick(g, &e->text_logits, true, 0, &slot));
    for (int k = 0; k < dq; k++) {
        xs_tensor prev = lm_slot(&e->sampled, k), next = lm_slot(&e->sampled, k + 1);
        XS_TRY(lm_exec_dep(e, k, &prev));
        XS_TRY(pick(g, &e->audio_logits, false, k, &next));
    }
    int32_t sampled[LM_MAX_DEP + 1];
    XS_TRY(xs_tensor_download(e->be, sampled, &e->sampled));
    if (e->taps) {
        int64_t one = 1, sh[2] = {1, dq};
        xs_tensor t0v = xs_tensor_make(XS_I32, 1, &one, e->sampled.data);
        xs_tensor t1 = xs_tensor_make(XS_I32, 2, sh, (int32_t *)e->sampled.data + 1);
        XS_TRY(XS_TAP(e->taps, e->be, "lm.sampled_text", &t0v, 0));
        XS_TRY(XS_TAP(e->taps, e->be, "lm.sampled_audio", &t1, 0));
    }
    /* 3. sampled tokens into slot (s + 1) */
    const int64_t s1 = s + 1;
    for (int k = 0; k <= dq; k++) g->cache[k * ct + (int)(s1 % ct)] = sampled[k];
    g->step = s1;
    /* 4. the frame s - max_delay, if any */
    int D = lm_config_max_delay(c);
    if (s1 <= D) {
        for (int k = 0; k <= dq; k++) out[k] = -1;
        *valid = false;
        return XS_OK;
    }
    for (int k = 0; k <= dq; k++) out[k] = g->cache[k * ct + (int)((s1 - D + c->delays[k]) % ct)];
    *valid = true;
    return XS_OK;
}
