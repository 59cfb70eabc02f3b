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
 *
 * Batch: lm_gen_step_batch steps n generators through one lm_batch (one
 * row each); each keeps its own delay cache, step counter, seed and KV
 * caches, so its tokens are those of lm_gen_step, which is the same code
 * with n = 1 on the generator's private one-row batch.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph.h"
#include "model/lm.h"
#include "model/lm_window.h"

#define LM_UNGENERATED (-2)

struct lm_gen {
    const lm_model *m;
    lm_sampling samp;
    lm_exec ex;
    int ct;                 /* ring slots per stream */
    int32_t *cache;         /* [n_streams][ct] */
    int64_t step;
    int cond_sel[LM_MAX_COND]; /* value index per conditioner, -1 = no value */
    /* the recorded device part of steps whose first row is this generator
     * (see step_device); `step` reaches it as a staged device counter */
    xs_graph graph;
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
    xs_graph_free(g->ex.be, &g->graph);
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

/* The sampling settings of generator g for the text head or an audio head
 * (greedy: argmax). */
static xs_sample_row pick_settings(const lm_gen *g, bool text) {
    const lm_sampling *s = &g->samp;
    xs_sample_row r;
    memset(&r, 0, sizeof r);
    r.seed = s->seed;
    r.temp = text ? s->text_temp : s->temp;
    r.top_k = text ? s->text_top_k : s->top_k;
    r.greedy = s->greedy;
    return r;
}

/* One pick for each of the n rows: row r's token from logits row r into
 * slot r of stream `stream`'s picks row (lm_batch_sampled_row), with row r's
 * settings and its staged device step counter (so a replayed graph draws
 * with the current step). xs_op_sample_rows: one launch on a GPU; the loop
 * of argmax / sample_topk per row elsewhere (same tokens). `set` holds the
 * rows' settings for this head (host, [n]). */
static xs_status pick(xs_backend *be, lm_batch *b, int n, const xs_tensor *logits, int stream,
                      const xs_sample_row *set) {
    xs_tensor ids = lm_batch_sampled_row(b, stream);
    xs_tensor steps = lm_batch_step_slot(b, 0);
    steps.shape[0] = n; /* the staged counters of rows 0..n-1 (contiguous i32 [cap]) */
    return xs_op_sample_rows(be, &ids, logits, set, (uint64_t)stream, &steps);
}

/* Steps 1 and 2 of the delay cache for one generator: the user codes go
 * into their delayed slots, `in` [1 + n_q] gets what the model sees. */
static void delay_in(lm_gen *g, const int32_t *user_codes, int32_t *in) {
    const lm_config *c = &g->m->cfg;
    const int n = c->n_delays, ct = g->ct, dq = c->dep_q, n_user = c->n_q - dq;
    const int64_t s = g->step;
    for (int j = 0; j < n_user; j++) {
        int k = 1 + dq + j;
        g->cache[k * ct + (int)((s + c->delays[k]) % ct)] = user_codes[j];
    }
    for (int k = 0; k < n; k++) {
        if (s <= c->delays[k]) in[k] = k == 0 ? c->text_card : c->card;
        else in[k] = g->cache[k * ct + (int)(s % ct)];
        XS_ASSERT(in[k] != LM_UNGENERATED);
    }
}

/* Steps 3 and 4: the sampled tokens into slot (s + 1), and the frame
 * s - max_delay, if any, into out. */
static void delay_out(lm_gen *g, const int32_t *sampled, int32_t *out, bool *valid) {
    const lm_config *c = &g->m->cfg;
    const int ct = g->ct, dq = c->dep_q;
    const int64_t s1 = g->step + 1;
    for (int k = 0; k <= dq; k++) g->cache[k * ct + (int)(s1 % ct)] = sampled[k];
    g->step = s1;
    int D = lm_config_max_delay(c);
    if (s1 <= D) {
        for (int k = 0; k <= dq; k++) out[k] = -1;
        *valid = false;
        return;
    }
    for (int k = 0; k <= dq; k++) out[k] = g->cache[k * ct + (int)((s1 - D + c->delays[k]) % ct)];
    *valid = true;
}

/* Phase 2 of a step: device work only (graph.h), so that it can be
 * recorded once and replayed: every argument depends on the batch, the
 * rows' generators and their buffers, never on the step (the step counter
 * and positions are staged device tensors). */
typedef struct step_job {
    lm_batch *b;
    lm_gen *const *g;
    int n;
} step_job;

static xs_status step_device(void *p) {
    const step_job *j = p;
    lm_batch *b = j->b;
    xs_backend *be = j->g[0]->ex.be;
    const int n = j->n, dq = j->g[0]->m->cfg.dep_q;
    /* the rows' settings (kernel arguments: step_key keys the recording on them) */
    xs_sample_row *set = malloc((size_t)n * 2 * sizeof *set);
    if (!set) return xs_error(XS_ERR_NOMEM, "lm: step: out of memory");
    for (int r = 0; r < n; r++) {
        set[r] = pick_settings(j->g[r], true);
        set[n + r] = pick_settings(j->g[r], false);
    }
    xs_status rc = lm_batch_main(b);
    xs_tensor tl = lm_batch_text_logits(b, 0), al = lm_batch_audio_logits(b, 0);
    tl.shape[0] = al.shape[0] = n; /* rows 0..n-1 of [cap, V] */
    if (rc == XS_OK) rc = pick(be, b, n, &tl, 0, set); /* stream 0: text */
    for (int k = 0; rc == XS_OK && k < dq; k++) {
        xs_tensor prev = lm_batch_sampled_row(b, k);
        rc = lm_batch_dep(b, k, &prev);
        if (rc == XS_OK) rc = pick(be, b, n, &al, 1 + k, set + n); /* stream 1 + k: codebook k */
    }
    free(set);
    return rc;
}

/* What a recording of step_device depends on: the batch, the rows (their
 * generators, KV caches and condition vectors). Taps download: eager. */
static bool step_key(const step_job *j, uint64_t *key) {
    uint64_t k = xs_graph_key_add(XS_GRAPH_KEY0, (uint64_t)(uintptr_t)j->b);
    k = xs_graph_key_add(k, (uint64_t)j->n);
    /* a batch freed and another made at the same address: other buffers */
    xs_tensor tl = lm_batch_text_logits(j->b, 0), al = lm_batch_audio_logits(j->b, 0);
    xs_tensor sr = lm_batch_sampled_row(j->b, 0);
    k = xs_graph_key_add(k, (uint64_t)lm_batch_capacity(j->b));
    k = xs_graph_key_add(k, (uint64_t)(uintptr_t)tl.data);
    k = xs_graph_key_add(k, (uint64_t)(uintptr_t)al.data);
    k = xs_graph_key_add(k, (uint64_t)(uintptr_t)sr.data);
    for (int r = 0; r < j->n; r++) {
        const lm_gen *g = j->g[r];
        if (g->ex.taps) return false;
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)g);
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)g->ex.ms.kv);
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)g->ex.cond.data);
        /* the sampling settings are kernel arguments too */
        const lm_sampling *s = &g->samp;
        uint32_t t1, t2;
        memcpy(&t1, &s->temp, 4);
        memcpy(&t2, &s->text_temp, 4);
        k = xs_graph_key_add(k, s->seed);
        k = xs_graph_key_add(k, ((uint64_t)t1 << 32) | t2);
        k = xs_graph_key_add(k, ((uint64_t)(uint32_t)s->top_k << 32) | (uint32_t)s->text_top_k);
        k = xs_graph_key_add(k, s->greedy);
    }
    *key = k;
    return true;
}

xs_status lm_gen_step_batch(lm_batch *b, lm_gen *const *g, int n, const int32_t *user_codes,
                            int32_t *out, bool *valid) {
    if (!b || !g || n < 1 || !user_codes || !out || !valid)
        return xs_error(XS_ERR_ARG, "lm: batch step: NULL argument or no generator");
    if (n > lm_batch_capacity(b))
        return xs_error(XS_ERR_ARG, "lm: batch step of %d generators, capacity %d", n,
                        lm_batch_capacity(b));
    const lm_model *m = g[0] ? g[0]->m : NULL;
    if (!m) return xs_error(XS_ERR_ARG, "lm: batch step: generator 0 is NULL");
    const lm_config *c = &m->cfg;
    const int nd = c->n_delays, dq = c->dep_q, n_user = c->n_q - dq, ns = 1 + dq;
    /* check everything before any generator changes */
    for (int r = 0; r < n; r++) {
        if (!g[r] || g[r]->m != m)
            return xs_error(XS_ERR_ARG, "lm: batch step: generator %d is not of the same model", r);
        for (int q = 0; q < r; q++)
            if (g[q] == g[r])
                return xs_error(XS_ERR_ARG, "lm: batch step: generators %d and %d are the same", q,
                                r);
        for (int j = 0; j < n_user; j++) {
            int32_t code = user_codes[(size_t)r * n_user + j];
            if (code < -1 || code >= c->card)
                return xs_error(XS_ERR_ARG, "lm: user code %d of step %lld out of range (-1..%d)",
                                code, (long long)g[r]->step, c->card - 1);
        }
        /* the sampling counter is staged as i32: 2^31 steps = 5 years of audio */
        if (g[r]->step > INT32_MAX)
            return xs_error(XS_ERR_ARG, "lm: step counter of generator %d overflows", r);
    }
    int32_t *in = malloc((size_t)n * (size_t)(nd + ns + 1) * sizeof *in);
    lm_exec **rows = malloc((size_t)n * sizeof *rows);
    xs_status rc = in && rows ? XS_OK : xs_error(XS_ERR_NOMEM, "lm: batch step: out of memory");
    int32_t *sampled = in ? in + (size_t)n * nd : NULL;
    int32_t *steps = in ? sampled + (size_t)n * ns : NULL;
    for (int r = 0; rc == XS_OK && r < n; r++) {
        delay_in(g[r], user_codes + (size_t)r * n_user, in + (size_t)r * nd);
        rows[r] = &g[r]->ex;
        steps[r] = (int32_t)g[r]->step;
    }
    /* phase 1: stage tokens, positions and sampling counters; phase 2: device
     * work; the picks stay in backend memory (sub-step k embeds the picks of
     * stream k); phase 3: one download brings them to the host delay caches */
    if (rc == XS_OK) rc = lm_batch_stage(b, rows, n, in, steps);
    if (rc == XS_OK) {
        step_job j = {b, g, n};
        uint64_t key = 0;
        if (step_key(&j, &key)) {
            g[0]->graph.programmatic = n == 1; /* graph.h: pays at batch 1 only */
            rc = xs_graph_run(g[0]->ex.be, &g[0]->graph, key, step_device, &j);
        } else {
            rc = step_device(&j);
        }
    }
    if (rc == XS_OK) rc = lm_batch_fetch(b, sampled);
    for (int r = 0; rc == XS_OK && r < n; r++)
        delay_out(g[r], sampled + (size_t)r * ns, out + (size_t)r * ns, &valid[r]);
    free(in);
    free(rows);
    return rc;
}

xs_status lm_gen_step(lm_gen *g, const int32_t *user_codes, int32_t *out, bool *valid) {
    if (!g) return xs_error(XS_ERR_ARG, "lm: step: no generator");
    return lm_gen_step_batch(g->ex.solo, &g, 1, user_codes, out, valid);
}

/* ---- a solo step inside a recorded frame (lm.h, frame_graph.c) ---------- */

bool lm_gen_device_ready(const lm_gen *g) {
    return g && !g->ex.taps && g->step >= lm_config_max_delay(&g->m->cfg) + 2 &&
           g->step < INT32_MAX;
}

lm_batch *lm_gen_solo(lm_gen *g) { return g->ex.solo; }

xs_status lm_gen_window_load(lm_gen *g, lm_window *w) {
    return lm_window_load(w, g->cache, g->ct, g->step);
}

xs_status lm_gen_window_store(lm_gen *g, const lm_window *w) {
    return lm_window_store(w, g->cache, g->ct, g->step);
}

xs_status lm_gen_device_stage(lm_gen *g) {
    lm_exec *row = &g->ex;
    int32_t step = (int32_t)g->step;
    return lm_batch_stage(g->ex.solo, &row, 1, NULL, &step);
}

xs_status lm_gen_device_step(lm_gen *g) {
    step_job j = {g->ex.solo, &g, 1};
    return step_device(&j);
}

bool lm_gen_device_key(lm_gen *g, uint64_t *key) {
    step_job j = {g->ex.solo, &g, 1};
    return step_key(&j, key);
}

void lm_gen_device_done(lm_gen *g) { g->step++; }
