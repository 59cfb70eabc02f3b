/*
 * session.c — the conversation pipeline (session.h) and the public
 * xswarm_model / xswarm_session API of include/xswarm.h on top of it.
 */
#include "model/session.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/lanes.h"
#include "core/status.h"
#include "model/frame_graph.h"

struct xswarm_session {
    xswarm_model *m;
    mimi_stream *ms;
    lm_gen *gen;
    lm_sampling samp;
    xs_taps *taps;
    int64_t frames;
    /* text so far (internal view) */
    char *text;
    size_t text_len, text_cap;
    size_t text_pulled; /* public API: bytes already pulled */
    /* public API: input queue (samples not processed yet: less than a frame,
     * or any number of frames while the session is in a batch) and response
     * queue */
    float *inq;
    size_t inq_len, inq_cap, inq_head;
    float *outq;
    size_t outq_len, outq_cap, outq_head;
    xswarm_batch *batch; /* the batch this session is a member of, or NULL */
    xs_frame_graph *fg;  /* the recorded whole frame (frame_graph.h), made on first use */
};

/* struct xswarm_batch: members of one model stepped together. */
struct xswarm_batch {
    xswarm_model *m;
    lm_batch *lb;               /* [capacity] LM step scratch */
    int cap, n;
    xswarm_session **members;   /* [cap], first n used */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- model ----------------------------------------------------------- */

xs_status xs_pipe_model_load(xs_backend *be, const xs_bundle *b, xswarm_model **out) {
    if (!be || !b || !out) return xs_error(XS_ERR_ARG, "xs_pipe_model_load: NULL argument");
    XS_TRY(xs_bundle_check(b, true, true, false));
    xswarm_model *m = calloc(1, sizeof *m);
    if (!m) return xs_error(XS_ERR_NOMEM, "model: out of memory");
    m->be = be;
    m->parts = *b;
    xs_status rc = lm_model_load(b->lm, b->lm_config[0] ? b->lm_config : NULL, be, &m->lm);
    if (rc == XS_OK && b->kv_dtype != XS_F32) rc = lm_model_set_kv_dtype(m->lm, (xs_dtype)b->kv_dtype);
    if (rc != XS_OK) {
        xs_error_prefix(rc, "loading the LM: ");
        goto fail;
    }
    rc = mimi_model_open(be, b->mimi, b->mimi_config[0] ? b->mimi_config : NULL, false, &m->mimi,
                         m->mimi_config_used, sizeof m->mimi_config_used);
    if (rc != XS_OK) {
        xs_error_prefix(rc, "loading Mimi: ");
        goto fail;
    }
    const lm_config *lc = &m->lm->cfg;
    const mimi_config *mc = mimi_model_config(m->mimi);
    m->dep_q = lc->dep_q;
    m->user_codes = lc->n_q - lc->dep_q;
    /* The LM's audio vocabulary is Mimi's codebook: a mismatch means parts
     * of two different models. */
    if (lc->card != mc->bins) {
        rc = xs_error(XS_ERR_SHAPE, "%s: LM audio card %d does not match Mimi's %d bins (%s): "
                      "parts of different models?", b->lm, lc->card, mc->bins, b->mimi);
        goto fail;
    }
    if (m->user_codes < 1 || m->user_codes > mc->n_q || m->dep_q > mc->n_q ||
        m->dep_q > LM_MAX_DEP) {
        rc = xs_error(XS_ERR_SHAPE, "%s: LM wants %d user / %d model codebooks, Mimi (%s) has %d",
                      b->lm, m->user_codes, m->dep_q, b->mimi, mc->n_q);
        goto fail;
    }
    if (mimi_frame_samples(mc) != XSWARM_FRAME_SAMPLES) {
        rc = xs_error(XS_ERR_UNSUPPORTED, "%s: Mimi frame of %d samples (this pipeline needs %d)",
                      b->mimi, mimi_frame_samples(mc), XSWARM_FRAME_SAMPLES);
        goto fail;
    }
    if (b->tokenizer[0]) {
        rc = xs_spm_load(b->tokenizer, &m->spm);
        if (rc != XS_OK) goto fail;
    }
    *out = m;
    return XS_OK;
fail:
    xswarm_model_free(m);
    return rc;
}

void xswarm_model_free(xswarm_model *m) {
    if (!m) return;
    xs_spm_free(m->spm);
    mimi_model_free(m->mimi);
    lm_model_free(m->lm);
    if (m->owns_be && m->be) xs_backend_close(m->be);
    free(m);
}

static xs_status load_public(const xs_bundle *b, const char *backend, int threads,
                             xswarm_model **out) {
    if (!out) return xs_error(XS_ERR_ARG, "xswarm_model_load: out is NULL");
    const char *name = backend ? backend : xs_backend_default_name();
    xs_backend *be = NULL;
    XS_TRY(xs_backend_open(name, threads, &be));
    xswarm_model *m = NULL;
    xs_status rc = xs_pipe_model_load(be, b, &m);
    if (rc != XS_OK) {
        xs_backend_close(be);
        return rc;
    }
    m->owns_be = true;
    *out = m;
    return XS_OK;
}

xswarm_status xswarm_model_load(const char *dir, const char *backend, int threads,
                                xswarm_model **out) {
    if (!dir) return xs_error(XS_ERR_ARG, "xswarm_model_load: dir is NULL");
    xs_bundle b;
    XS_TRY(xs_bundle_from_dir(dir, &b));
    return load_public(&b, backend, threads, out);
}

static void set_part(char *dst, const char *v) {
    dst[0] = 0;
    if (v) {
        strncpy(dst, v, XS_PATH_MAX - 1);
        dst[XS_PATH_MAX - 1] = 0;
    }
}

xswarm_status xswarm_model_load_parts(const char *lm, const char *lm_cfg, const char *mimi,
                                      const char *mimi_cfg, const char *tokenizer,
                                      const char *backend, int threads, xswarm_model **out) {
    xs_bundle *bp = calloc(1, sizeof *bp); /* large (6 paths): off the stack */
    if (!bp) return xs_error(XS_ERR_NOMEM, "out of memory");
    set_part(bp->lm, lm);
    set_part(bp->lm_config, lm_cfg);
    set_part(bp->mimi, mimi);
    set_part(bp->mimi_config, mimi_cfg);
    set_part(bp->tokenizer, tokenizer);
    xs_status rc = load_public(bp, backend, threads, out);
    free(bp);
    return rc;
}

/* ---- session --------------------------------------------------------- */

xs_status xs_pipe_session_new(xswarm_model *m, const lm_sampling *sampling, xs_taps *taps,
                              xswarm_session **out) {
    if (!m || !out) return xs_error(XS_ERR_ARG, "session: NULL argument");
    xswarm_session *s = calloc(1, sizeof *s);
    if (!s) return xs_error(XS_ERR_NOMEM, "session: out of memory");
    s->m = m;
    s->taps = taps;
    if (sampling) s->samp = *sampling;
    else lm_sampling_from_config(&s->samp, &m->lm->cfg);
    xs_status rc = mimi_stream_new(m->mimi, &s->ms);
    if (rc == XS_OK) rc = lm_gen_new(m->lm, &s->samp, taps, &s->gen);
    if (rc != XS_OK) {
        xswarm_session_free(s);
        return rc;
    }
    mimi_stream_set_taps(s->ms, taps);
    *out = s;
    return XS_OK;
}

void xswarm_session_free(xswarm_session *s) {
    if (!s) return;
    if (s->batch) xswarm_batch_leave(s->batch, s);
    xs_frame_graph_free(s->fg, s->m->be);
    lm_gen_free(s->gen);
    mimi_stream_free(s->ms);
    free(s->text);
    free(s->inq);
    free(s->outq);
    free(s);
}

static xs_status text_append(xswarm_session *s, const char *t, size_t n) {
    if (s->text_len + n + 1 > s->text_cap) {
        size_t cap = s->text_cap ? s->text_cap * 2 : 256;
        while (cap < s->text_len + n + 1) cap *= 2;
        char *p = realloc(s->text, cap);
        if (!p) return xs_error(XS_ERR_NOMEM, "session: out of memory for text");
        s->text = p;
        s->text_cap = cap;
    }
    memcpy(s->text + s->text_len, t, n);
    s->text_len += n;
    s->text[s->text_len] = 0;
    return XS_OK;
}

/* Text of the token, appended to the session text (with a tokenizer). */
static xs_status text_token(xswarm_session *s, int32_t tok) {
    if (!s->m->spm) return XS_OK;
    char piece[256];
    int n = xs_spm_decode_token(s->m->spm, tok, piece, sizeof piece);
    return n > 0 ? text_append(s, piece, (size_t)n) : XS_OK;
}

/* One LM step of the sessions idx[0..n) of ss (their frame codes in info),
 * into step_out[0] or, when last, into their last slot (n_steps - 1):
 * batched through lb, or alone when lb is NULL. */
static xs_status lm_round(lm_batch *lb, xswarm_session *const *ss, const int *idx, int n,
                          bool last, xs_pipe_frame_info *info) {
    if (n == 0) return XS_OK;
    const xswarm_model *m = ss[idx[0]]->m;
    const int nu = m->user_codes, ns = 1 + m->dep_q;
    double a = now_ms();
    if (!lb) {
        xs_pipe_frame_info *f = &info[idx[0]];
        int k = last ? f->n_steps - 1 : 0;
        XS_TRY(lm_gen_step(ss[idx[0]]->gen, f->frame_codes, f->step_out[k], &f->step_valid[k]));
    } else {
        lm_gen **gens = malloc((size_t)n * sizeof *gens);
        int32_t *user = malloc((size_t)n * (size_t)(nu + ns) * sizeof *user);
        bool *valid = malloc((size_t)n * sizeof *valid);
        xs_status rc = gens && user && valid ? XS_OK
                                             : xs_error(XS_ERR_NOMEM, "session: out of memory");
        int32_t *out = user ? user + (size_t)n * nu : NULL;
        for (int r = 0; rc == XS_OK && r < n; r++) {
            gens[r] = ss[idx[r]]->gen;
            memcpy(user + r * nu, info[idx[r]].frame_codes, (size_t)nu * sizeof *user);
        }
        if (rc == XS_OK) rc = lm_gen_step_batch(lb, gens, n, user, out, valid);
        for (int r = 0; rc == XS_OK && r < n; r++) {
            xs_pipe_frame_info *f = &info[idx[r]];
            int k = last ? f->n_steps - 1 : 0;
            memcpy(f->step_out[k], out + r * ns, (size_t)ns * sizeof *out);
            f->step_valid[k] = valid[r];
        }
        free(gens);
        free(user);
        free(valid);
        XS_TRY(rc);
    }
    double ms = now_ms() - a; /* the shared step's wall time, charged to each row */
    for (int r = 0; r < n; r++) info[idx[r]].lm_ms += ms;
    return XS_OK;
}

/* n >= 2 sessions' Mimi streams, when they can run as ONE batched Mimi
 * computation (mimi.h mimi_encode_batch; XSWARM_MIMI_BATCH=0 keeps the
 * lanes). Device backends only: batching saves kernel launches, which a
 * host backend does not have, and there the matmuls of more rows take the
 * cpu's sgemm path, whose sums round differently (~1e-7) from a session's
 * own frame, while batched sessions must sound exactly as they do alone.
 * Returns a malloc'd array (free it) or NULL. */
static mimi_stream **batchable(xswarm_session *const *ss, const int *idx, int n) {
    if (n < 2 || !mimi_batch_enabled() || ss[0]->m->be->iface->host_memory) return NULL;
    mimi_stream **ms = malloc((size_t)n * sizeof *ms);
    if (!ms) return NULL; /* the lanes path needs no memory */
    for (int r = 0; r < n; r++) ms[r] = ss[idx ? idx[r] : r]->ms;
    if (mimi_batch_usable(ms, n)) return ms;
    free(ms);
    return NULL;
}

/* The batched encode: each session's enc_ms is an equal share of the
 * call's wall time (their sum is the phase's wall time). */
static xs_status encode_batched(mimi_stream **ms, xswarm_session *const *ss, int n,
                                const float *const *pcm, xs_pipe_frame_info *info) {
    int32_t **codes = malloc((size_t)n * sizeof *codes);
    if (!codes) return xs_error(XS_ERR_NOMEM, "session: out of memory");
    for (int i = 0; i < n; i++) codes[i] = info[i].frame_codes;
    double t0 = now_ms();
    xs_status rc = mimi_encode_batch(ms, n, pcm, ss[0]->m->user_codes, codes);
    const double share = (now_ms() - t0) / n;
    for (int i = 0; i < n; i++) info[i].enc_ms = share;
    free(codes);
    return rc;
}

/* Mimi encode of every session's input frame: all begun (each on its
 * stream's lane, so that the sessions' frames run side by side on a GPU),
 * then all finished. Each session's enc_ms is its share of the wall time
 * (its begin plus its finish): their sum is the phase's wall time. Batched
 * instead when the streams can (batchable). */
static xs_status encode_all(xswarm_session *const *ss, int n, const float *const *pcm,
                            xs_pipe_frame_info *info) {
    mimi_stream **ms = batchable(ss, NULL, n);
    if (ms) {
        xs_status r = encode_batched(ms, ss, n, pcm, info);
        free(ms);
        return r;
    }
    xs_status rc = XS_OK;
    int begun = 0;
    for (; begun < n; begun++) {
        double t0 = now_ms();
        rc = mimi_encode_begin(ss[begun]->ms, pcm[begun], XSWARM_FRAME_SAMPLES,
                               ss[begun]->m->user_codes);
        info[begun].enc_ms = now_ms() - t0;
        if (rc != XS_OK) break;
    }
    /* finish what was begun even after an error: no stream stays pending */
    for (int i = 0; i < begun; i++) {
        double t0 = now_ms();
        xs_status r = mimi_encode_finish(ss[i]->ms, info[i].frame_codes);
        info[i].enc_ms += now_ms() - t0;
        if (rc == XS_OK) rc = r;
    }
    return rc;
}

/* Round k of decode_all as ONE batched Mimi decode when >= 2 sessions have
 * a valid step k and their streams can batch (*batched then true); each
 * session's dec_ms gets an equal share of the call's wall time. */
static xs_status decode_round_batched(xswarm_session *const *ss, int n, int k,
                                      float *const *out_pcm, xs_pipe_frame_info *info,
                                      bool *batched) {
    *batched = false;
    int *idx = malloc((size_t)n * sizeof *idx), m = 0;
    if (!idx) return XS_OK; /* the per-stream path */
    for (int i = 0; i < n; i++)
        if (k < info[i].n_steps && info[i].step_valid[k]) idx[m++] = i;
    mimi_stream **ms = batchable(ss, idx, m);
    const int32_t **codes = ms ? malloc((size_t)m * sizeof *codes) : NULL;
    float **pcm = codes ? malloc((size_t)m * sizeof *pcm) : NULL;
    xs_status rc = XS_OK;
    if (pcm) {
        *batched = true;
        for (int r = 0; r < m; r++) {
            xs_pipe_frame_info *f = &info[idx[r]];
            codes[r] = f->step_out[k] + 1;
            pcm[r] = out_pcm[idx[r]] + (size_t)f->n_out_frames * XSWARM_FRAME_SAMPLES;
        }
        double t0 = now_ms();
        rc = mimi_decode_batch(ms, m, codes, ss[0]->m->dep_q, pcm);
        const double share = (now_ms() - t0) / m;
        const bool decoded = rc == XS_OK;
        for (int r = 0; r < m; r++) {
            xs_pipe_frame_info *f = &info[idx[r]];
            f->dec_ms += share;
            if (!decoded) continue;
            f->n_out_frames++; /* its pcm is there even if another's text fails */
            xs_status t = text_token(ss[idx[r]], f->step_out[k][0]);
            if (rc == XS_OK) rc = t;
        }
    }
    free(pcm);
    free(codes);
    free(ms);
    free(idx);
    return rc;
}

/* Mimi decode of the valid LM outputs, in rounds: round k begins the k-th
 * step's decode of every session that has one, then finishes them (a
 * stream takes one decode at a time; its rounds stay in order). */
static xs_status decode_all(xswarm_session *const *ss, int n, float *const *out_pcm,
                            xs_pipe_frame_info *info) {
    xs_status rc = XS_OK;
    bool *begun = calloc((size_t)n, sizeof *begun);
    if (!begun) return xs_error(XS_ERR_NOMEM, "session: out of memory");
    for (int k = 0; rc == XS_OK && k < XS_PIPE_MAX_STEPS; k++) {
        bool batched = false;
        rc = decode_round_batched(ss, n, k, out_pcm, info, &batched);
        if (batched) continue;
        int any = 0;
        for (int i = 0; i < n; i++) {
            xs_pipe_frame_info *f = &info[i];
            begun[i] = false;
            if (rc != XS_OK || k >= f->n_steps || !f->step_valid[k]) continue;
            double b = now_ms();
            rc = mimi_decode_begin(ss[i]->ms, f->step_out[k] + 1, 1, ss[i]->m->dep_q);
            f->dec_ms += now_ms() - b;
            begun[i] = rc == XS_OK;
            any += begun[i];
        }
        for (int i = 0; any && i < n; i++) {
            if (!begun[i]) continue;
            xs_pipe_frame_info *f = &info[i];
            double b = now_ms();
            xs_status r = mimi_decode_finish(
                ss[i]->ms, out_pcm[i] + (size_t)f->n_out_frames * XSWARM_FRAME_SAMPLES);
            f->dec_ms += now_ms() - b;
            f->n_out_frames++;
            if (r == XS_OK && rc == XS_OK) r = text_token(ss[i], f->step_out[k][0]);
            if (rc == XS_OK) rc = r;
        }
    }
    free(begun);
    return rc;
}

xs_status xs_pipe_batch_frame(lm_batch *lb, xswarm_session *const *ss, int n,
                              const float *const *pcm, float *const *out_pcm,
                              xs_pipe_frame_info *info) {
    if (!ss || !pcm || !out_pcm || !info || n < 1)
        return xs_error(XS_ERR_ARG, "session frame: NULL argument");
    if (!lb && n != 1) return xs_error(XS_ERR_ARG, "session frame: %d sessions without a batch", n);
    if (lb && n > lm_batch_capacity(lb))
        return xs_error(XS_ERR_ARG, "session frame: %d sessions, batch capacity %d", n,
                        lm_batch_capacity(lb));
    for (int i = 0; i < n; i++) {
        if (!ss[i] || !pcm[i] || !out_pcm[i] || ss[i]->m != ss[0]->m)
            return xs_error(XS_ERR_ARG, "session frame: session %d missing or of another model", i);
        for (int j = 0; j < i; j++)
            if (ss[j] == ss[i])
                return xs_error(XS_ERR_ARG, "session frame: sessions %d and %d are the same", j, i);
    }
    if (!lb && n == 1) { /* a solo session in the steady state: one recorded frame */
        bool done = false;
        XS_TRY(xs_frame_graph_run(&ss[0]->fg, ss[0]->m, ss[0]->ms, ss[0]->gen, pcm[0], out_pcm[0],
                                  &info[0], &done));
        if (done) {
            XS_TRY(text_token(ss[0], info[0].step_out[0][0]));
            ss[0]->frames++;
            return XS_OK;
        }
    } else {
        for (int i = 0; i < n; i++) XS_TRY(xs_frame_graph_leave(ss[i]->fg, ss[i]->gen));
    }
    int *idx_all = malloc(2 * (size_t)n * sizeof *idx_all), *idx_first = idx_all + n, n_first = 0;
    if (!idx_all) return xs_error(XS_ERR_NOMEM, "session: out of memory");
    for (int i = 0; i < n; i++) {
        xswarm_session *s = ss[i];
        memset(&info[i], 0, sizeof info[i]);
        /* run_inference.py gives the first frame's codes twice: the LM's first
         * step only fills its delay cache and returns nothing. */
        info[i].n_steps = s->frames == 0 ? 2 : 1;
        idx_all[i] = i;
        if (s->frames == 0) idx_first[n_first++] = i;
    }
    xs_backend *be = ss[0]->m->be;
    xs_status rc = encode_all(ss, n, pcm, info);
    /* the LM runs on lane 0: formally after the lanes' work (their results
     * came back to the host already) */
    if (rc == XS_OK) rc = xs_backend_join_lanes(be);
    /* round 0: the extra first step of the sessions at their first frame
     * (slot 0); round 1: this frame's step of every session (its last slot) */
    if (rc == XS_OK) rc = lm_round(lb, ss, idx_first, n_first, false, info);
    if (rc == XS_OK) rc = lm_round(lb, ss, idx_all, n, true, info);
    free(idx_all);
    XS_TRY(rc);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < info[i].n_steps; k++)
            if (!info[i].step_valid[k])
                for (int j = 0; j <= ss[i]->m->dep_q; j++) info[i].step_out[k][j] = -1;
    rc = decode_all(ss, n, out_pcm, info);
    if (rc == XS_OK) rc = xs_backend_join_lanes(be);
    XS_TRY(rc);
    for (int i = 0; i < n; i++) ss[i]->frames++;
    return XS_OK;
}

xs_status xs_pipe_session_frame(xswarm_session *s, const float *pcm, float *out_pcm,
                                xs_pipe_frame_info *info) {
    if (!s || !pcm || !out_pcm || !info) return xs_error(XS_ERR_ARG, "session frame: NULL argument");
    return xs_pipe_batch_frame(NULL, &s, 1, &pcm, &out_pcm, info);
}

lm_gen *xs_pipe_session_lm_gen(xswarm_session *s) { return s ? s->gen : NULL; }
mimi_stream *xs_pipe_session_mimi(xswarm_session *s) { return s ? s->ms : NULL; }
const char *xs_pipe_session_text(const xswarm_session *s) { return s->text ? s->text : ""; }
int64_t xs_pipe_session_frames(const xswarm_session *s) { return s->frames; }
struct xs_frame_graph *xs_pipe_session_frame_graph(const xswarm_session *s) { return s->fg; }

/* ---- public session API ---------------------------------------------- */

xswarm_status xswarm_session_new(xswarm_model *m, uint64_t seed, xswarm_session **out) {
    if (!m) return xs_error(XS_ERR_ARG, "xswarm_session_new: model is NULL");
    lm_sampling smp;
    lm_sampling_from_config(&smp, &m->lm->cfg);
    smp.seed = seed;
    return xs_pipe_session_new(m, &smp, NULL, out);
}

xswarm_status xswarm_session_set_sampling(xswarm_session *s, int greedy, float temp, int top_k,
                                          float text_temp, int text_top_k) {
    if (!s) return xs_error(XS_ERR_ARG, "xswarm_session_set_sampling: session is NULL");
    if (s->frames > 0)
        return xs_error(XS_ERR_ARG, "xswarm_session_set_sampling: the session has started "
                                    "(call it before the first push or after a reset)");
    if (!greedy && (!(temp > 0) || !(text_temp > 0)))
        return xs_error(XS_ERR_ARG, "xswarm_session_set_sampling: temperatures must be > 0");
    lm_sampling smp = s->samp;
    smp.greedy = greedy != 0;
    smp.temp = temp;
    smp.text_temp = text_temp;
    smp.top_k = top_k;
    smp.text_top_k = text_top_k;
    lm_gen *g = NULL;
    XS_TRY(lm_gen_new(s->m->lm, &smp, s->taps, &g));
    lm_gen_free(s->gen);
    s->gen = g;
    s->samp = smp;
    xs_frame_graph_reset(s->fg);
    return XS_OK;
}

static xs_status outq_push(xswarm_session *s, const float *pcm, size_t n) {
    if (n == 0) return XS_OK;
    /* drop what was pulled before growing */
    if (s->outq_head > 0) {
        memmove(s->outq, s->outq + s->outq_head, (s->outq_len - s->outq_head) * sizeof(float));
        s->outq_len -= s->outq_head;
        s->outq_head = 0;
    }
    if (s->outq_len + n > s->outq_cap) {
        size_t cap = s->outq_cap ? s->outq_cap * 2 : 8 * XSWARM_FRAME_SAMPLES;
        while (cap < s->outq_len + n) cap *= 2;
        float *p = realloc(s->outq, cap * sizeof(float));
        if (!p) return xs_error(XS_ERR_NOMEM, "session: out of memory for the response queue");
        s->outq = p;
        s->outq_cap = cap;
    }
    memcpy(s->outq + s->outq_len, pcm, n * sizeof(float));
    s->outq_len += n;
    return XS_OK;
}

/* Append n samples to the input queue. */
static xs_status inq_push(xswarm_session *s, const float *pcm, size_t n) {
    if (s->inq_head > 0) { /* drop what was processed before growing */
        memmove(s->inq, s->inq + s->inq_head, (s->inq_len - s->inq_head) * sizeof(float));
        s->inq_len -= s->inq_head;
        s->inq_head = 0;
    }
    if (s->inq_len + n > s->inq_cap) {
        size_t cap = s->inq_cap ? s->inq_cap * 2 : 2 * XSWARM_FRAME_SAMPLES;
        while (cap < s->inq_len + n) cap *= 2;
        float *p = realloc(s->inq, cap * sizeof(float));
        if (!p) return xs_error(XS_ERR_NOMEM, "session: out of memory for the input queue");
        s->inq = p;
        s->inq_cap = cap;
    }
    if (n) memcpy(s->inq + s->inq_len, pcm, n * sizeof(float));
    s->inq_len += n;
    return XS_OK;
}

static bool frame_ready(const xswarm_session *s) {
    return s->inq_len - s->inq_head >= XSWARM_FRAME_SAMPLES;
}

xswarm_status xswarm_session_push(xswarm_session *s, const float *pcm, size_t n) {
    if (!s || (n && !pcm)) return xs_error(XS_ERR_ARG, "xswarm_session_push: NULL argument");
    XS_TRY(inq_push(s, pcm, n));
    if (s->batch || !frame_ready(s)) return XS_OK; /* a batch member waits for xswarm_batch_step */
    float *buf = malloc(sizeof(float) * XS_PIPE_MAX_STEPS * XSWARM_FRAME_SAMPLES);
    if (!buf) return xs_error(XS_ERR_NOMEM, "session: out of memory");
    xs_status rc = XS_OK;
    while (rc == XS_OK && frame_ready(s)) {
        xs_pipe_frame_info info;
        rc = xs_pipe_session_frame(s, s->inq + s->inq_head, buf, &info);
        s->inq_head += XSWARM_FRAME_SAMPLES;
        if (rc == XS_OK)
            rc = outq_push(s, buf, (size_t)info.n_out_frames * XSWARM_FRAME_SAMPLES);
    }
    free(buf);
    return rc;
}

size_t xswarm_session_pull(xswarm_session *s, float *pcm, size_t max) {
    if (!s || !pcm) return 0;
    size_t avail = s->outq_len - s->outq_head;
    size_t n = avail < max ? avail : max;
    if (n == 0) return 0;
    memcpy(pcm, s->outq + s->outq_head, n * sizeof(float));
    s->outq_head += n;
    return n;
}

size_t xswarm_session_pull_text(xswarm_session *s, char *buf, size_t n) {
    if (!s || !buf || n == 0) return 0;
    size_t avail = s->text_len - s->text_pulled;
    size_t k = avail < n - 1 ? avail : n - 1;
    if (k) memcpy(buf, s->text + s->text_pulled, k);
    buf[k] = 0;
    s->text_pulled += k;
    return k;
}

xswarm_status xswarm_session_reset(xswarm_session *s) {
    if (!s) return xs_error(XS_ERR_ARG, "xswarm_session_reset: session is NULL");
    XS_TRY(mimi_stream_reset(s->ms));
    XS_TRY(lm_gen_reset(s->gen));
    xs_frame_graph_reset(s->fg);
    s->frames = 0;
    s->text_len = s->text_pulled = 0;
    if (s->text) s->text[0] = 0;
    s->inq_len = s->inq_head = 0;
    s->outq_len = s->outq_head = 0;
    return XS_OK;
}

/* ---- batched sessions -------------------------------------------------- */

xswarm_status xswarm_batch_new(xswarm_model *m, int capacity, xswarm_batch **out) {
    if (!m || !out) return xs_error(XS_ERR_ARG, "xswarm_batch_new: NULL argument");
    if (capacity < 1 || capacity > 4096)
        return xs_error(XS_ERR_ARG, "xswarm_batch_new: capacity %d (expected 1..4096)", capacity);
    xswarm_batch *b = calloc(1, sizeof *b);
    if (!b) return xs_error(XS_ERR_NOMEM, "batch: out of memory");
    b->m = m;
    b->cap = capacity;
    b->members = calloc((size_t)capacity, sizeof *b->members);
    xs_status rc = b->members ? lm_batch_new(m->lm, capacity, &b->lb)
                              : xs_error(XS_ERR_NOMEM, "batch: out of memory");
    if (rc != XS_OK) {
        xswarm_batch_free(b);
        return rc;
    }
    *out = b;
    return XS_OK;
}

void xswarm_batch_free(xswarm_batch *b) {
    if (!b) return;
    for (int i = 0; i < b->n; i++) b->members[i]->batch = NULL;
    lm_batch_free(b->lb);
    free(b->members);
    free(b);
}

xswarm_status xswarm_batch_join(xswarm_batch *b, xswarm_session *s) {
    if (!b || !s) return xs_error(XS_ERR_ARG, "xswarm_batch_join: NULL argument");
    if (s->m != b->m)
        return xs_error(XS_ERR_ARG, "xswarm_batch_join: the session belongs to another model");
    if (s->batch)
        return xs_error(XS_ERR_ARG, "xswarm_batch_join: the session is already in a batch");
    if (b->n == b->cap)
        return xs_error(XS_ERR_ARG, "xswarm_batch_join: the batch is full (%d sessions)", b->cap);
    b->members[b->n++] = s;
    s->batch = b;
    return XS_OK;
}

xswarm_status xswarm_batch_leave(xswarm_batch *b, xswarm_session *s) {
    if (!b || !s) return xs_error(XS_ERR_ARG, "xswarm_batch_leave: NULL argument");
    for (int i = 0; i < b->n; i++)
        if (b->members[i] == s) {
            /* keep the join order of the others (not needed for results, but
             * it keeps their rows stable from step to step) */
            memmove(b->members + i, b->members + i + 1, (size_t)(b->n - i - 1) * sizeof *b->members);
            b->n--;
            s->batch = NULL;
            return XS_OK;
        }
    return xs_error(XS_ERR_ARG, "xswarm_batch_leave: the session is not in this batch");
}

int xswarm_batch_size(const xswarm_batch *b) { return b ? b->n : 0; }

xswarm_status xswarm_batch_step(xswarm_batch *b, int *n_stepped) {
    if (!b) return xs_error(XS_ERR_ARG, "xswarm_batch_step: batch is NULL");
    int n = 0;
    for (int i = 0; i < b->n; i++) n += frame_ready(b->members[i]);
    if (n == 0) {
        if (n_stepped) *n_stepped = 0;
        return XS_OK;
    }
    xswarm_session **ss = malloc((size_t)n * sizeof *ss);
    const float **pcm = malloc((size_t)n * sizeof *pcm);
    float **out = malloc((size_t)n * sizeof *out);
    xs_pipe_frame_info *info = malloc((size_t)n * sizeof *info);
    float *buf = malloc((size_t)n * XS_PIPE_MAX_STEPS * XSWARM_FRAME_SAMPLES * sizeof *buf);
    xs_status rc = ss && pcm && out && info && buf ? XS_OK
                                                   : xs_error(XS_ERR_NOMEM, "batch: out of memory");
    for (int i = 0, r = 0; rc == XS_OK && i < b->n; i++) {
        xswarm_session *s = b->members[i];
        if (!frame_ready(s)) continue;
        ss[r] = s;
        pcm[r] = s->inq + s->inq_head;
        out[r] = buf + (size_t)r * XS_PIPE_MAX_STEPS * XSWARM_FRAME_SAMPLES;
        r++;
    }
    if (rc == XS_OK) rc = xs_pipe_batch_frame(b->lb, ss, n, pcm, out, info);
    for (int r = 0; rc == XS_OK && r < n; r++) {
        ss[r]->inq_head += XSWARM_FRAME_SAMPLES;
        rc = outq_push(ss[r], out[r], (size_t)info[r].n_out_frames * XSWARM_FRAME_SAMPLES);
    }
    free(ss);
    free(pcm);
    free(out);
    free(info);
    free(buf);
    if (rc == XS_OK && n_stepped) *n_stepped = n;
    return rc;
}
