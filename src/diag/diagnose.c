/*
 * diagnose.c — the run of xs_diagnose_run (see diagnose.h for the steps).
 * Artifacts (taps of both backends per stage, both responses, parity log)
 * go to o->out_dir; the command writes the report there too.
 */
#include "diag/diagnose.h"

#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "backend/ops.h"
#include "diag/analyze.h"
#include "diag/diagnose_random.h"
#include "diag/op_record.h"
#include "diag/parity.h"
#include "model/mimi.h"

enum { ST_ENC = 0, ST_LM, ST_DEC, ST_COUNT };
static const char *const k_stage[ST_COUNT] = {"encode", "lm", "decode"};

/* What one backend loads and records. */
typedef struct side {
    xs_backend *be;
    mimi_model *mimi;
    lm_model *lm;
    xs_taps *taps[ST_COUNT];
} side;

static void side_free(side *s) {
    for (int i = 0; i < ST_COUNT; i++) xs_taps_free(s->taps[i]);
    lm_model_free(s->lm);
    mimi_model_free(s->mimi);
    xs_backend_close(s->be);
    memset(s, 0, sizeof *s);
}

/* rnd: the shared random-weight store (--random), else the files of o. */
static xs_status side_open(const xs_diag_opts *o, const char *name, xs_dtype kv,
                           xs_diag_random *rnd, side *s) {
    memset(s, 0, sizeof *s);
    XS_TRY(xs_backend_open(name, o->threads, &s->be));
    char used[512];
    xs_status rc = rnd ? xs_diag_random_mimi(rnd, s->be, &s->mimi)
                       : mimi_model_open(s->be, o->mimi, o->mimi_config, false, &s->mimi, used,
                                         sizeof used);
    if (rc != XS_OK) return xs_error_prefix(rc, "backend %s: loading mimi: ", name);
    rc = rnd ? xs_diag_random_lm(rnd, s->be, &s->lm)
             : lm_model_load(o->lm, o->lm_config, s->be, &s->lm);
    if (rc != XS_OK) return xs_error_prefix(rc, "backend %s: loading the LM: ", name);
    rc = lm_model_set_kv_dtype(s->lm, kv);
    if (rc != XS_OK) return xs_error_prefix(rc, "backend %s: KV cache: ", name);
    for (int i = 0; i < ST_COUNT; i++)
        if (!(s->taps[i] = xs_taps_new())) return xs_error(XS_ERR_NOMEM, "diagnose: out of memory");
    return XS_OK;
}

static xs_status encode(side *s, xs_taps *taps, const float *pcm, int frames, int ncb,
                        int32_t *codes) {
    mimi_stream *st = NULL;
    XS_TRY(mimi_stream_new(s->mimi, &st));
    mimi_stream_set_taps(st, taps);
    xs_status rc = XS_OK;
    /* One frame per call, as the live pipeline does (streaming state matters). */
    for (int f = 0; rc == XS_OK && f < frames; f++) {
        xs_oprec_set_step(f); /* the recorder's step (a tap's record index) */
        rc = mimi_encode(st, pcm + (size_t)f * 1920, 1920, ncb, codes + (size_t)f * ncb);
    }
    mimi_stream_free(st);
    return rc;
}

static xs_status decode(side *s, xs_taps *taps, const int32_t *toks, int n, int dq, float *pcm) {
    mimi_stream *st = NULL;
    XS_TRY(mimi_stream_new(s->mimi, &st));
    mimi_stream_set_taps(st, taps);
    xs_status rc = XS_OK;
    for (int f = 0; rc == XS_OK && f < n; f++) {
        xs_oprec_set_step(f);
        rc = mimi_decode(st, toks + (size_t)f * dq, 1, dq, pcm + (size_t)f * 1920);
    }
    mimi_stream_free(st);
    return rc;
}

/* Free-running LM (LMGen) over user codes (frame 0 twice, as the pipeline
 * does): picks[steps][1+dq] from the taps, output audio frames out[.][dq]. */
static xs_status lm_free(side *s, xs_taps *taps, const lm_sampling *samp, const int32_t *user,
                         int steps, int32_t *picks, int32_t *out, int *n_out) {
    const lm_config *c = &s->lm->cfg;
    const int dq = c->dep_q;
    xs_taps *own = NULL;
    if (!taps) {
        own = taps = xs_taps_new();
        if (!own) return xs_error(XS_ERR_NOMEM, "diagnose: out of memory");
        xs_taps_set_filter(own, "lm.sampled");
    }
    lm_gen *g = NULL;
    xs_status rc = lm_gen_new(s->lm, samp, taps, &g);
    *n_out = 0;
    for (int st = 0; rc == XS_OK && st < steps; st++) {
        int32_t o[LM_MAX_DEP + 1];
        bool valid = false;
        rc = lm_gen_step(g, user + (size_t)st * (c->n_q - dq), o, &valid);
        if (rc == XS_OK && valid) {
            memcpy(out + (size_t)*n_out * dq, o + 1, sizeof(int32_t) * (size_t)dq);
            (*n_out)++;
        }
    }
    lm_gen_free(g);
    const xs_tensor *tt = xs_taps_find(taps, "lm.sampled_text");
    const xs_tensor *ta = xs_taps_find(taps, "lm.sampled_audio");
    if (rc == XS_OK && (!tt || !ta || tt->shape[0] < steps || ta->shape[0] < steps))
        rc = xs_error(XS_ERR_INTERNAL, "diagnose: the LM recorded no picked tokens");
    for (int st = 0; rc == XS_OK && st < steps; st++) {
        picks[(size_t)st * (1 + dq)] = ((const int32_t *)tt->data)[st];
        memcpy(picks + (size_t)st * (1 + dq) + 1, (const int32_t *)ta->data + (size_t)st * dq,
               sizeof(int32_t) * (size_t)dq);
    }
    xs_taps_free(own);
    return rc;
}

/* Where B's free tokens first differ: which stream, and A's logit margin
 * (top-1 minus top-2) there: a small margin means a near-tie, not a bug. */
static double row_margin(const float *v, int64_t n) {
    double t1 = -1e300, t2 = -1e300;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] > t1) {
            t2 = t1;
            t1 = v[i];
        } else if (v[i] > t2) {
            t2 = v[i];
        }
    }
    return n >= 2 ? t1 - t2 : -1;
}

static void tok_margin(const side *A, xs_diag_result *r, int dq, const int32_t *pa,
                       const int32_t *pb) {
    const int s = r->tok_first_diff;
    r->tok_margin = -1;
    int k = 0;
    while (k <= dq && pa[(size_t)s * (1 + dq) + k] == pb[(size_t)s * (1 + dq) + k]) k++;
    if (k > dq) return;
    if (k == 0) snprintf(r->tok_stream, sizeof r->tok_stream, "text");
    else snprintf(r->tok_stream, sizeof r->tok_stream, "audio%d", k - 1);
    const xs_tensor *t =
        xs_taps_find(A->taps[ST_LM], k == 0 ? "lm.text_logits" : "lm.depformer_logits");
    if (!t || t->dtype != XS_F32 || t->shape[0] <= s) return;
    if (k == 0 && t->ndim == 2)
        r->tok_margin = row_margin((const float *)t->data + (size_t)s * t->shape[1], t->shape[1]);
    else if (k > 0 && t->ndim == 3 && t->shape[1] >= k)
        r->tok_margin = row_margin((const float *)t->data +
                                       ((size_t)s * t->shape[1] + (size_t)(k - 1)) * t->shape[2],
                                   t->shape[2]);
}

static void score(const float *pcm, int64_t n, double *sc, char *defects, size_t dn) {
    xs_analysis *a = NULL;
    *sc = -1;
    defects[0] = 0;
    if (n <= 0 || xs_analyze(pcm, n, 24000, &a) != XS_OK) {
        xs_error_clear();
        return;
    }
    *sc = a->score;
    size_t used = 0;
    for (int i = 0; i < a->n_defects && used + 40 < dn; i++)
        used += (size_t)snprintf(defects + used, dn - used, "%s%s", i ? "," : "",
                                 a->defects[i].name);
    xs_analysis_free(a);
}

/* Every op on which B fails the parity suite against A (small shapes, or
 * with real the real-model shapes too); one log per shape set. */
static xs_status failing_ops(side *a, side *b, const char *out_dir, bool real, char *list,
                             size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/parity%s.txt", out_dir, real ? "_real" : "");
    FILE *f = fopen(path, "w");
    list[0] = 0;
    size_t used = 0;
    for (int op = 0; op < XS_OP_COUNT; op++) {
        xs_parity_opts po;
        memset(&po, 0, sizeof po);
        po.filter = xs_op_name((xs_op)op);
        po.real_shapes = real;
        po.seed = XS_PARITY_SEED;
        po.report = f;
        int np = 0, nf = 0;
        xs_status rc = xs_parity_run_opts(a->be, b->be, &po, &np, &nf);
        if (rc != XS_OK) {
            if (f) fclose(f);
            return rc;
        }
        if (nf > 0 && used + 24 < n)
            used += (size_t)snprintf(list + used, n - used, "%s%s", used ? "," : "",
                                     xs_op_name((xs_op)op));
    }
    if (f) fclose(f);
    return XS_OK;
}

static void save_taps(const side *s, const char *tag, const char *dir) {
    for (int i = 0; i < ST_COUNT; i++) {
        if (!s->taps[i] || xs_taps_count(s->taps[i]) == 0) continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/taps_%s_%s.safetensors", dir, tag, k_stage[i]);
        if (xs_taps_save(s->taps[i], p) != XS_OK) xs_error_clear();
    }
}

static void later_list(const xs_tap_report *rep, int stage, char *buf, size_t n) {
    size_t used = strlen(buf);
    for (int i = 0; i < rep->n; i++) {
        if (!rep->diffs[i].over || (stage < 0 && i == rep->first)) continue;
        if (used + strlen(rep->diffs[i].name) + 2 >= n) return;
        used += (size_t)snprintf(buf + used, n - used, "%s%s", used ? "," : "",
                                 rep->diffs[i].name);
    }
}

/* Error growth over LM steps (the KV-dtype cost, slow drift): per step, max
 * |A - B| / max(1, max |A|) of the text logits, up to 48 steps sampled evenly. */
static void growth(const side *A, const side *B, xs_diag_result *r) {
    static const char *const taps[] = {"lm.text_logits", "lm.depformer_logits"};
    for (int k = 0; k < 2 && r->n_growth == 0; k++) {
        const xs_tensor *a = xs_taps_find(A->taps[ST_LM], taps[k]);
        const xs_tensor *b = xs_taps_find(B->taps[ST_LM], taps[k]);
        if (!a || !b || a->dtype != XS_F32 || b->dtype != XS_F32 || a->ndim < 2 ||
            !xs_tensor_same_shape(a, b) || a->shape[0] < 1)
            continue;
        snprintf(r->growth_tap, sizeof r->growth_tap, "%s", taps[k]);
        const int64_t steps = a->shape[0], row = xs_tensor_numel(a) / steps;
        const int n = steps < 48 ? (int)steps : 48;
        for (int i = 0; i < n; i++) {
            const int64_t s = n == 1 ? 0 : (int64_t)i * (steps - 1) / (n - 1);
            const float *pa = (const float *)a->data + s * row, *pb = (const float *)b->data + s * row;
            double mx = 1, err = 0;
            for (int64_t j = 0; j < row; j++) {
                double v = pa[j] < 0 ? -(double)pa[j] : pa[j], d = (double)pa[j] - pb[j];
                if (v > mx) mx = v;
                if (d < 0) d = -d;
                if (!(d <= err)) err = d;
            }
            r->growth_step[i] = (int)s;
            r->growth[i] = err / mx;
        }
        r->n_growth = n;
    }
}

static xs_status run(const xs_diag_opts *o, xs_diag_result *r, side *A, side *B, float **bufs,
                     xs_diag_random *rnd) {
    FILE *log = o->log;
    XS_TRY(side_open(o, o->backend_a, o->kv_a, rnd, A));
    XS_TRY(side_open(o, o->backend_b, o->kv_b, rnd, B));
    if (rnd && log)
        fprintf(log, "diagnose: random weights (%s), %.2f GB of LM weights generated\n", o->random,
                (double)xs_diag_random_bytes(rnd) / 1e9);
    const lm_config *c = &A->lm->cfg;
    const int dq = c->dep_q, n_user = c->n_q - c->dep_q;
    if (n_user < 1 || n_user > mimi_model_config(A->mimi)->n_q)
        return xs_error(XS_ERR_ARG, "diagnose: the LM wants %d user codebooks, Mimi has %d",
                        n_user, mimi_model_config(A->mimi)->n_q);

    xs_audio in;
    xs_audio_info info;
    memset(&info, 0, sizeof info);
    XS_TRY(xs_audio_read(o->input, 24000, &in, &info));
    r->input_rate = info.file_rate;
    r->input_resampled = info.resampled;
    int frames = (int)(in.n / 1920);
    if (o->frames > 0 && o->frames < frames) frames = o->frames;
    if (frames < 1) {
        xs_audio_free(&in);
        return xs_error(XS_ERR_ARG, "diagnose: %s: shorter than one 80 ms frame", o->input);
    }
    r->frames = frames;
    const int steps = frames + 1; /* the first frame is stepped twice */
    r->lm_steps = steps;
    size_t ncodes = (size_t)frames * n_user, nsteps = (size_t)steps;
    int32_t *codesA = calloc(ncodes, 4), *codesB = calloc(ncodes, 4);
    int32_t *userA = calloc(nsteps * n_user, 4), *userB = calloc(nsteps * n_user, 4);
    int32_t *picksA = calloc(nsteps * (1 + dq), 4), *picksB = calloc(nsteps * (1 + dq), 4);
    int32_t *outA = calloc(nsteps * dq, 4), *outB = calloc(nsteps * dq, 4);
    float *pcmA = calloc(nsteps * 1920, 4), *pcmBf = calloc(nsteps * 1920, 4),
          *pcmB = calloc(nsteps * 1920, 4);
    bufs[0] = (float *)codesA, bufs[1] = (float *)codesB, bufs[2] = (float *)userA;
    bufs[3] = (float *)userB, bufs[4] = (float *)picksA, bufs[5] = (float *)picksB;
    bufs[6] = (float *)outA, bufs[7] = (float *)outB, bufs[8] = pcmA, bufs[9] = pcmBf;
    bufs[10] = pcmB;
    xs_status rc = XS_OK;
    for (int i = 0; i < 11; i++)
        if (!bufs[i]) rc = xs_error(XS_ERR_NOMEM, "diagnose: out of memory");
    if (log) fprintf(log, "diagnose: %d frames, %d LM steps, A=%s B=%s\n", frames, steps,
                     o->backend_a, o->backend_b);
    /* 2. encode on both */
    if (rc == XS_OK) rc = encode(A, A->taps[ST_ENC], in.pcm, frames, n_user, codesA);
    if (rc == XS_OK) rc = encode(B, B->taps[ST_ENC], in.pcm, frames, n_user, codesB);
    bufs[11] = in.pcm; /* kept for the re-run of the op recorder; freed by the caller */
    XS_TRY(rc);
    /* the codes as taps too (golden name frame_codes): exact comparison */
    for (int f = 0; f < frames; f++) {
        xs_tensor ca = xs_tensor_2d(XS_I32, codesA + (size_t)f * n_user, 1, n_user);
        xs_tensor cb = xs_tensor_2d(XS_I32, codesB + (size_t)f * n_user, 1, n_user);
        XS_TRY(xs_tap_record(A->taps[ST_ENC], NULL, "frame_codes", &ca, 0));
        XS_TRY(xs_tap_record(B->taps[ST_ENC], NULL, "frame_codes", &cb, 0));
    }
    for (int s = 0; s < steps; s++) {
        int f = s == 0 ? 0 : s - 1;
        memcpy(userA + (size_t)s * n_user, codesA + (size_t)f * n_user, 4 * (size_t)n_user);
        memcpy(userB + (size_t)s * n_user, codesB + (size_t)f * n_user, 4 * (size_t)n_user);
    }
    /* 3. LM: A free (taps), B forced with A's picks (taps), B free (tokens) */
    lm_sampling samp;
    lm_sampling_from_config(&samp, c);
    samp.greedy = o->greedy;
    samp.seed = o->seed;
    int nA = 0, nB = 0;
    XS_TRY(lm_free(A, A->taps[ST_LM], &samp, userA, steps, picksA, outA, &nA));
    for (int f = 0; f < nA; f++) { /* for --against (golden name audio_tokens) */
        xs_tensor t = xs_tensor_2d(XS_I32, outA + (size_t)f * dq, 1, dq);
        XS_TRY(xs_tap_record(A->taps[ST_LM], NULL, "audio_tokens", &t, 0));
    }
    XS_TRY(xs_diag_lm_forced(B->lm, B->taps[ST_LM], steps, userA, picksA));
    XS_TRY(lm_free(B, NULL, &samp, userB, steps, picksB, outB, &nB));
    r->tok_steps = steps;
    r->tok_equal = 0;
    r->tok_first_diff = -1;
    for (int s = 0; s < steps; s++) {
        bool eq = !memcmp(picksA + (size_t)s * (1 + dq), picksB + (size_t)s * (1 + dq),
                          4 * (size_t)(1 + dq));
        r->tok_equal += eq;
        if (!eq && r->tok_first_diff < 0) r->tok_first_diff = s;
    }
    if (r->tok_first_diff >= 0) tok_margin(A, r, dq, picksA, picksB);
    /* 4. decode A's tokens on both (taps), B's own tokens on B (response) */
    XS_TRY(decode(A, A->taps[ST_DEC], outA, nA, dq, pcmA));
    XS_TRY(decode(B, B->taps[ST_DEC], outA, nA, dq, pcmBf));
    XS_TRY(decode(B, NULL, outB, nB, dq, pcmB));
    char p[1024];
    /* codec round trip of the input on A (needs as many codebooks as Mimi decodes) */
    if (n_user == dq) {
        float *rt = calloc((size_t)frames * 1920, sizeof *rt);
        if (rt && decode(A, NULL, codesA, frames, dq, rt) == XS_OK) {
            char defects[256];
            snprintf(p, sizeof p, "%s/input_roundtrip_%s.wav", o->out_dir, o->backend_a);
            if (xs_audio_write_wav(p, rt, (int64_t)frames * 1920, 24000, true) != XS_OK)
                xs_error_clear();
            score(rt, (int64_t)frames * 1920, &r->score_roundtrip, defects, sizeof defects);
        }
        xs_error_clear();
        free(rt);
    }
    snprintf(p, sizeof p, "%s/response_A_%s.wav", o->out_dir, o->backend_a);
    if (xs_audio_write_wav(p, pcmA, (int64_t)nA * 1920, 24000, true) != XS_OK) xs_error_clear();
    snprintf(p, sizeof p, "%s/response_B_%s.wav", o->out_dir, o->backend_b);
    if (xs_audio_write_wav(p, pcmB, (int64_t)nB * 1920, 24000, true) != XS_OK) xs_error_clear();
    {
        xs_audio again;
        char defects[256];
        if (xs_audio_read(o->input, 24000, &again, NULL) == XS_OK) {
            int64_t n = (int64_t)frames * 1920 < again.n ? (int64_t)frames * 1920 : again.n;
            score(again.pcm, n, &r->score_input, defects, sizeof defects);
            xs_audio_free(&again);
        }
        xs_error_clear();
    }
    score(pcmA, (int64_t)nA * 1920, &r->score_a, r->defects_a, sizeof r->defects_a);
    score(pcmB, (int64_t)nB * 1920, &r->score_b, r->defects_b, sizeof r->defects_b);

    /* 5. compare stage by stage: the first stage with a divergence holds the first one */
    xs_tapcmp_opts co = {.rel_tol = 1e-4, .skip = "lm.sampled"};
    for (int st = 0; st < ST_COUNT; st++) {
        xs_tap_report rep;
        XS_TRY(xs_tap_compare(A->taps[st], B->taps[st], &co, &rep));
        if (log) {
            fprintf(log, "[%s]\n", k_stage[st]);
            xs_tap_report_print(&rep, log);
        }
        if (rep.first >= 0 && !r->has_div) {
            r->has_div = true;
            snprintf(r->stage, sizeof r->stage, "%s", k_stage[st]);
            r->div = rep.diffs[rep.first];
            later_list(&rep, -1, r->later, sizeof r->later);
        } else if (rep.first >= 0) {
            later_list(&rep, st, r->later, sizeof r->later);
        }
        xs_tap_report_free(&rep);
    }
    save_taps(A, "A", o->out_dir);
    save_taps(B, "B", o->out_dir);

    /* 6. which op: parity of every op on A vs B */
    if (log) fprintf(log, "diagnose: per-op parity %s vs %s (small shapes)...\n", o->backend_a,
                     o->backend_b);
    XS_TRY(failing_ops(A, B, o->out_dir, false, r->failing_ops, sizeof r->failing_ops));
    /* A divergence no small case explains: maybe a bug at the model's own
     * sizes (tiling, split-K, long rows): the real-shape cases too (slower). */
    if (r->has_div && !r->failing_ops[0]) {
        if (log) fprintf(log, "diagnose: no small case fails; real shapes...\n");
        XS_TRY(failing_ops(A, B, o->out_dir, true, r->failing_ops, sizeof r->failing_ops));
    }
    xs_diag_pick_op(r->has_div ? r->div.name : "", r->failing_ops, r->op, sizeof r->op);
    growth(A, B, r);

    /* 6b. the very op call: B re-runs the divergent stage with the recorder armed */
    if (r->op[0] && r->has_div && !o->no_record) {
        const int st = !strcmp(r->stage, "encode") ? ST_ENC : !strcmp(r->stage, "lm") ? ST_LM
                                                                                   : ST_DEC;
        const int from = r->div.first_step > 0 ? (int)r->div.first_step : 0;
        if (log) fprintf(log, "diagnose: re-running %s on %s from step %d to record a call of %s\n",
                         r->stage, o->backend_b, from, r->op);
        XS_TRY(xs_oprec_arm(A->be, B->be, (xs_op)xs_op_from_name(r->op), from, o->out_dir,
                            NULL));
        /* A taps object that records nothing: with taps the model runs every op
         * eagerly (a recorded CUDA graph would bypass the hook). */
        xs_taps *quiet = xs_taps_new();
        if (!quiet) return xs_error(XS_ERR_NOMEM, "diagnose: out of memory");
        xs_taps_set_filter(quiet, "-none-");
        xs_status rr = XS_OK;
        if (st == ST_ENC) rr = encode(B, quiet, in.pcm, frames, n_user, codesB);
        else if (st == ST_LM) rr = xs_diag_lm_forced(B->lm, quiet, steps, userA, picksA);
        else rr = decode(B, quiet, outA, nA, dq, pcmBf);
        xs_oprec_result res;
        xs_oprec_disarm(&res);
        xs_taps_free(quiet);
        XS_TRY(rr);
        r->call_found = res.found;
        if (res.found) {
            snprintf(r->call_file, sizeof r->call_file, "%s", res.path);
            r->call_step = res.step;
            r->call_nmse = res.nmse;
            r->call_tol = res.tol;
        } else {
            snprintf(r->call_note, sizeof r->call_note, "%s",
                     res.error[0] ? res.error
                                  : "no call of the op differed beyond its tolerance on the re-run "
                                    "(a transient fault?)");
        }
        if (log) fprintf(log, "diagnose: %lld calls of %s checked: %s\n",
                         (long long)res.calls_checked, r->op,
                         res.found ? res.path : r->call_note);
    }

    /* No model call to record (the op failed parity but no tap diverged, or
     * the re-run did not reproduce it): record the first failing call of the
     * op's parity cases instead, so that --replay still has real inputs. */
    if (r->op[0] && !r->call_found && !o->no_record) {
        XS_TRY(xs_oprec_arm(A->be, B->be, (xs_op)xs_op_from_name(r->op), 0, o->out_dir,
                            "parity"));
        xs_parity_opts po;
        memset(&po, 0, sizeof po);
        po.filter = r->op;
        po.seed = XS_PARITY_SEED;
        int np = 0, nf = 0;
        xs_status pr = xs_parity_run_opts(A->be, B->be, &po, &np, &nf);
        xs_oprec_result res;
        xs_oprec_disarm(&res);
        XS_TRY(pr);
        if (res.found) {
            r->call_found = true;
            snprintf(r->call_file, sizeof r->call_file, "%s", res.path);
            r->call_step = -1;
            r->call_nmse = res.nmse;
            r->call_tol = res.tol;
            snprintf(r->call_note, sizeof r->call_note, "%s%s",
                     r->has_div ? "the model re-run did not reproduce it; " : "",
                     "recorded from the op's parity cases (no model tap diverged)");
        }
    }

    /* 8. weights */
    if (o->reference_weights)
        XS_TRY(xs_diag_compare_weights(o->lm, o->reference_weights, log, &r->weights));

    /* --against: A's taps vs another runtime's dump */
    if (o->against) {
        r->against_checked = true;
        r->against_step = -1;
        for (int st = 0; st < ST_COUNT && !r->against_over; st++) {
            xs_tap_report rep;
            XS_TRY(xs_tap_compare_file(o->against, A->taps[st], &co, &rep));
            if (log) {
                fprintf(log, "[against %s: %s]\n", o->against, k_stage[st]);
                xs_tap_report_print(&rep, log);
            }
            for (int i = 0; i < rep.n; i++) r->against_compared += !rep.diffs[i].skipped;
            if (rep.first >= 0) {
                const xs_tap_diff *d = &rep.diffs[rep.first];
                r->against_over = true;
                snprintf(r->against_first, sizeof r->against_first, "%s", d->name);
                r->against_step = d->first_step;
                r->against_max_abs = d->max_abs;
                r->against_max_rel = d->max_rel;
            }
            xs_tap_report_free(&rep);
        }
    }

    /* verdict */
    const char *v = "consistent";
    if (r->op[0]) v = "backend";
    else if (r->weights.n_over > 0) v = "weights";
    else if (r->has_div) v = "numerics";
    snprintf(r->verdict, sizeof r->verdict, "%s", v);
    if (r->call_found)
        snprintf(r->repro, sizeof r->repro, "xswarm diagnose --replay %s --backends %s,%s",
                 r->call_file, o->backend_a, o->backend_b);
    else if (r->op[0])
        snprintf(r->repro, sizeof r->repro, "xswarm diagnose --ops --backends %s,%s --filter %s",
                 o->backend_a, o->backend_b, r->op);
    return XS_OK;
}

xs_status xs_diagnose_run(const xs_diag_opts *o, xs_diag_result *r) {
    memset(r, 0, sizeof *r);
    r->tok_first_diff = -1;
    r->score_a = r->score_b = r->score_input = r->score_roundtrip = -1;
    r->tok_margin = -1;
    if (!o || !o->backend_a || !o->backend_b || (!o->random && (!o->lm || !o->mimi)) ||
        !o->input || !o->out_dir)
        return xs_error(XS_ERR_ARG, "diagnose: needs two backends, LM, Mimi, input, out dir");
    snprintf(r->backend_a, sizeof r->backend_a, "%s", o->backend_a);
    snprintf(r->backend_b, sizeof r->backend_b, "%s", o->backend_b);
    snprintf(r->kv_a, sizeof r->kv_a, "%s", xs_dtype_name(o->kv_a));
    snprintf(r->kv_b, sizeof r->kv_b, "%s", xs_dtype_name(o->kv_b));
    r->kv_differs = o->kv_a != o->kv_b;
    xs_diag_random *rnd = NULL;
    if (o->random) XS_TRY(xs_diag_random_new(o->random, &rnd));
    side A, B;
    memset(&A, 0, sizeof A);
    memset(&B, 0, sizeof B);
    float *bufs[12] = {0};
    xs_status rc = run(o, r, &A, &B, bufs, rnd);
    for (int i = 0; i < 12; i++) free(bufs[i]);
    side_free(&B);
    side_free(&A);
    xs_diag_random_free(rnd); /* after the models that borrow its tensors */
    return rc;
}
