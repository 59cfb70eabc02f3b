/*
 * session.c — the conversation pipeline (session.h) and the public
 * xswarm_model / xswarm_session API of include/xswarm.h on top of it.
 */
#include "model/session.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/status.h"

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
    /* public API: pending input (< 1 frame) and response queue */
    float pending[XSWARM_FRAME_SAMPLES];
    size_t n_pending;
    float *outq;
    size_t outq_len, outq_cap, outq_head;
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
    lm_gen_free(s->gen);
    mimi_stream_free(s->ms);
    free(s->text);
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

xs_status xs_pipe_session_frame(xswarm_session *s, const float *pcm, float *out_pcm,
                                xs_pipe_frame_info *info) {
    if (!s || !pcm || !out_pcm || !info) return xs_error(XS_ERR_ARG, "session frame: NULL argument");
    xswarm_model *m = s->m;
    memset(info, 0, sizeof *info);
    double t0 = now_ms();
    XS_TRY(mimi_encode(s->ms, pcm, XSWARM_FRAME_SAMPLES, m->user_codes, info->frame_codes));
    double t1 = now_ms();
    info->enc_ms = t1 - t0;
    /* run_inference.py gives the first frame's codes twice: the LM's first
     * step only fills its delay cache and returns nothing. */
    info->n_steps = s->frames == 0 ? 2 : 1;
    for (int k = 0; k < info->n_steps; k++) {
        int32_t *o = info->step_out[k];
        double a = now_ms();
        XS_TRY(lm_gen_step(s->gen, info->frame_codes, o, &info->step_valid[k]));
        double b = now_ms();
        info->lm_ms += b - a;
        if (!info->step_valid[k]) {
            for (int j = 0; j <= m->dep_q; j++) o[j] = -1;
            continue;
        }
        XS_TRY(mimi_decode(s->ms, o + 1, 1, m->dep_q,
                           out_pcm + (size_t)info->n_out_frames * XSWARM_FRAME_SAMPLES));
        info->n_out_frames++;
        info->dec_ms += now_ms() - b;
        if (m->spm) {
            char piece[256];
            int n = xs_spm_decode_token(m->spm, o[0], piece, sizeof piece);
            if (n > 0) XS_TRY(text_append(s, piece, (size_t)n));
        }
    }
    s->frames++;
    return XS_OK;
}

const char *xs_pipe_session_text(const xswarm_session *s) { return s->text ? s->text : ""; }
int64_t xs_pipe_session_frames(const xswarm_session *s) { return s->frames; }

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

xswarm_status xswarm_session_push(xswarm_session *s, const float *pcm, size_t n) {
    if (!s || (n && !pcm)) return xs_error(XS_ERR_ARG, "xswarm_session_push: NULL argument");
    float *buf = malloc(sizeof(float) * XS_PIPE_MAX_STEPS * XSWARM_FRAME_SAMPLES);
    if (!buf) return xs_error(XS_ERR_NOMEM, "session: out of memory");
    xs_status rc = XS_OK;
    size_t i = 0;
    while (i < n && rc == XS_OK) {
        size_t take = XSWARM_FRAME_SAMPLES - s->n_pending;
        if (take > n - i) take = n - i;
        memcpy(s->pending + s->n_pending, pcm + i, take * sizeof(float));
        s->n_pending += take;
        i += take;
        if (s->n_pending < XSWARM_FRAME_SAMPLES) break;
        s->n_pending = 0;
        xs_pipe_frame_info info;
        rc = xs_pipe_session_frame(s, s->pending, buf, &info);
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
    s->frames = 0;
    s->text_len = s->text_pulled = 0;
    if (s->text) s->text[0] = 0;
    s->n_pending = 0;
    s->outq_len = s->outq_head = 0;
    return XS_OK;
}
