/*
 * test_session_batch.c — batched sessions through the public API
 * (xswarm_batch_*) and the pipeline's xs_pipe_batch_frame, on the tiny
 * golden models (lm_tiny + mimi_tiny), ref and cpu (and cuda when usable):
 * every session gives exactly the pcm (and per-step tokens) of the same
 * session run alone, for B = 3 and 5 sessions with different input pcm
 * (other parts of the golden input.wav, other gains) and different seeds,
 * sampling and greedy mixed; sessions join late, leave (their queued
 * frames then go through xswarm_session_push alone) and come back, and are
 * reset mid-run, while the others go on.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "model/session.h"
#include "testutil.h"

#define MAX_S 5
#define TICKS 14
#define FR XSWARM_FRAME_SAMPLES
#define OUT_MAX ((TICKS + 2) * FR)

static const float *g_in;
static int64_t g_n_in;
static char g_lm[4096], g_lm_cfg[4096], g_mimi[4096], g_mimi_cfg[4096];

/* Input frame k of session i: its own stretch of input.wav, its own gain. */
static void frame_of(int i, int k, float *out) {
    const float *src = g_in + ((int64_t)(7 * i + k) * FR) % (g_n_in - FR);
    float gain = 1.0f - 0.12f * (float)i;
    for (int j = 0; j < FR; j++) out[j] = src[j] * gain;
}

typedef struct plan {
    int n;
    bool in_batch[MAX_S][TICKS]; /* member during tick t (else pushes alone) */
    bool push[MAX_S][TICKS];     /* gets a frame at tick t */
    int reset_after[MAX_S];      /* reset after tick t (-1: never) */
} plan;

static void make_plan(plan *p, int n) {
    memset(p, 0, sizeof *p);
    p->n = n;
    for (int i = 0; i < n; i++) {
        p->reset_after[i] = -1;
        for (int t = 0; t < TICKS; t++) {
            p->push[i][t] = t >= i;      /* session i starts at tick i */
            p->in_batch[i][t] = t >= i;  /* and joins then */
        }
    }
    for (int t = 5; t < 8; t++) p->in_batch[1][t] = false; /* leaves, comes back at 8 */
    p->push[1][6] = false;                                 /* and skips a tick */
    if (n > 2) p->reset_after[2] = 6;
    if (n > 4) p->reset_after[4] = 9;
}

typedef struct result {
    float pcm[OUT_MAX * 2];
    size_t n;
} result;

static void pull_all(xswarm_session *s, result *r) {
    r->n += xswarm_session_pull(s, r->pcm + r->n, sizeof r->pcm / sizeof *r->pcm - r->n);
}

/* Session i alone, public API: the same pushes and resets. */
static bool run_alone(xswarm_model *m, const plan *p, int i, result *r) {
    xswarm_session *s = NULL;
    if (xswarm_session_new(m, 40 + (uint64_t)i, &s) != XSWARM_OK) return false;
    if (i % 2 == 1 && xswarm_session_set_sampling(s, 1, 0, 0, 0, 0) != XSWARM_OK) return false;
    float fr[FR];
    int k = 0;
    bool ok = true;
    for (int t = 0; ok && t < TICKS; t++) {
        if (p->push[i][t]) {
            frame_of(i, k++, fr);
            /* odd chunks: 700 + 1220 */
            ok = xswarm_session_push(s, fr, 700) == XSWARM_OK &&
                 xswarm_session_push(s, fr + 700, FR - 700) == XSWARM_OK;
        }
        pull_all(s, r);
        if (p->reset_after[i] == t) ok = ok && xswarm_session_reset(s) == XSWARM_OK;
    }
    xswarm_session_free(s);
    return ok;
}

static bool run_batched(xswarm_model *m, const plan *p, int cap, result *r) {
    xswarm_session *s[MAX_S] = {0};
    xswarm_batch *b = NULL;
    bool ok = xswarm_batch_new(m, cap, &b) == XSWARM_OK;
    for (int i = 0; ok && i < p->n; i++) {
        ok = xswarm_session_new(m, 40 + (uint64_t)i, &s[i]) == XSWARM_OK;
        if (ok && i % 2 == 1) ok = xswarm_session_set_sampling(s[i], 1, 0, 0, 0, 0) == XSWARM_OK;
    }
    int k[MAX_S] = {0}, member[MAX_S] = {0};
    float fr[FR];
    for (int t = 0; ok && t < TICKS; t++) {
        /* leave before pushing, join after: a leaver's frame goes alone, a
         * joiner's through the batch */
        for (int i = 0; ok && i < p->n; i++)
            if (member[i] && !p->in_batch[i][t]) {
                ok = xswarm_batch_leave(b, s[i]) == XSWARM_OK;
                member[i] = 0;
            }
        for (int i = p->n - 1; ok && i >= 0; i--) /* reverse: rows in another order */
            if (!member[i] && p->in_batch[i][t]) {
                ok = xswarm_batch_join(b, s[i]) == XSWARM_OK;
                member[i] = 1;
            }
        for (int i = 0; ok && i < p->n; i++)
            if (p->push[i][t]) {
                frame_of(i, k[i]++, fr);
                ok = xswarm_session_push(s[i], fr, 1500) == XSWARM_OK &&
                     xswarm_session_push(s[i], fr + 1500, FR - 1500) == XSWARM_OK;
            }
        int stepped = -1, want = 0;
        for (int i = 0; i < p->n; i++) want += member[i] && p->push[i][t];
        ok = ok && xswarm_batch_step(b, &stepped) == XSWARM_OK;
        CHECK(stepped == want, "tick %d: %d sessions stepped, want %d", t, stepped, want);
        for (int i = 0; ok && i < p->n; i++) {
            pull_all(s[i], &r[i]);
            if (p->reset_after[i] == t) ok = xswarm_session_reset(s[i]) == XSWARM_OK;
        }
    }
    if (!ok) fprintf(stderr, "batched: %s\n", xswarm_last_error());
    CHECK(!ok || xswarm_batch_size(b) == p->n, "all members at the end");
    for (int i = 0; i < p->n; i++) xswarm_session_free(s[i]); /* leaves the batch */
    CHECK(xswarm_batch_size(b) == 0, "freed sessions left the batch");
    xswarm_batch_free(b);
    return ok;
}

static void check_public(xswarm_model *m, const char *be, int n, int cap) {
    plan p;
    make_plan(&p, n);
    result *alone = calloc(MAX_S, sizeof *alone), *batched = calloc(MAX_S, sizeof *batched);
    bool ok = true;
    for (int i = 0; ok && i < n; i++) ok = run_alone(m, &p, i, &alone[i]);
    CHECK(ok, "%s: solo runs: %s", be, xswarm_last_error());
    ok = ok && run_batched(m, &p, cap, batched);
    CHECK(ok, "%s B=%d: batched run", be, n);
    double e01 = 0;
    for (int i = 0; ok && i < n; i++) {
        CHECK(alone[i].n >= 8 * FR && alone[i].n == batched[i].n,
              "%s B=%d session %d: %zu samples alone, %zu batched", be, n, i, alone[i].n,
              batched[i].n);
        size_t nn = alone[i].n < batched[i].n ? alone[i].n : batched[i].n;
        CHECK(!memcmp(alone[i].pcm, batched[i].pcm, nn * sizeof(float)),
              "%s B=%d session %d: batched pcm differs from the solo run", be, n, i);
    }
    size_t n01 = alone[0].n < alone[1].n ? alone[0].n : alone[1].n;
    for (size_t j = 0; j < n01; j++) e01 += fabs(alone[0].pcm[j] - alone[1].pcm[j]);
    CHECK(e01 > 1e-3, "%s: sessions 0 and 1 give different pcm (sum |diff| %.3g)", be, e01);
    free(alone);
    free(batched);
}

/* xs_pipe_batch_frame: step_out rows (text + audio tokens) equal to the
 * solo xs_pipe_session_frame, 3 sessions, 6 frames, sampling. */
static void check_pipe(xswarm_model *m, const char *be) {
    enum { N = 3, F = 6 };
    xswarm_session *solo[N] = {0}, *bat[N] = {0};
    lm_batch *lb = NULL;
    bool ok = lm_batch_new(m->lm, N, &lb) == XS_OK;
    for (int i = 0; ok && i < N; i++) {
        lm_sampling smp;
        lm_sampling_from_config(&smp, &m->lm->cfg);
        smp.seed = 7 + (uint64_t)i;
        ok = xs_pipe_session_new(m, &smp, NULL, &solo[i]) == XS_OK &&
             xs_pipe_session_new(m, &smp, NULL, &bat[i]) == XS_OK;
    }
    float *in = malloc((size_t)N * FR * sizeof *in);
    float *o1 = malloc((size_t)N * XS_PIPE_MAX_STEPS * FR * sizeof *o1);
    float *o2 = malloc((size_t)N * XS_PIPE_MAX_STEPS * FR * sizeof *o2);
    int bad = 0, graph_flag_bad = 0;
    const bool host = strcmp(be, "cuda") != 0;
    for (int f = 0; ok && f < F; f++) {
        xs_pipe_frame_info a[N], b[N];
        const float *pcm[N];
        float *out[N];
        for (int i = 0; i < N; i++) {
            frame_of(i, f, in + i * FR);
            pcm[i] = in + i * FR;
            out[i] = o2 + (size_t)i * XS_PIPE_MAX_STEPS * FR;
            ok = ok && xs_pipe_session_frame(solo[i], pcm[i], o1 + (size_t)i * XS_PIPE_MAX_STEPS * FR,
                                             &a[i]) == XS_OK;
        }
        xswarm_session *order[N] = {bat[2], bat[0], bat[1]};
        const float *po[N] = {pcm[2], pcm[0], pcm[1]};
        float *oo[N] = {out[2], out[0], out[1]};
        xs_pipe_frame_info bo[N];
        ok = ok && xs_pipe_batch_frame(lb, order, N, po, oo, bo) == XS_OK;
        b[2] = bo[0], b[0] = bo[1], b[1] = bo[2];
        for (int i = 0; ok && i < N; i++) {
            bad += a[i].n_steps != b[i].n_steps || a[i].n_out_frames != b[i].n_out_frames ||
                   memcmp(a[i].step_out, b[i].step_out, sizeof a[i].step_out) ||
                   memcmp(a[i].step_valid, b[i].step_valid, sizeof a[i].step_valid) ||
                   memcmp(o1 + (size_t)i * XS_PIPE_MAX_STEPS * FR, out[i],
                          (size_t)a[i].n_out_frames * FR * sizeof(float));
            /* only a solo frame replayed as one graph (a GPU) says one_graph */
            graph_flag_bad += b[i].one_graph || (host && a[i].one_graph);
        }
    }
    CHECK(ok, "%s: pipe batch run: %s", be, xs_error_msg());
    CHECK(bad == 0, "%s: %d session-frames of xs_pipe_batch_frame differ from the solo frames", be,
          bad);
    CHECK(graph_flag_bad == 0, "%s: %d frames claim one_graph where no graph ran", be,
          graph_flag_bad);
    /* bad calls */
    xswarm_session *dup[2] = {bat[0], bat[0]};
    const float *pp[2] = {in, in};
    float *op[2] = {o2, o2 + XS_PIPE_MAX_STEPS * FR};
    xs_pipe_frame_info inf[2];
    CHECK(xs_pipe_batch_frame(lb, dup, 2, pp, op, inf) == XS_ERR_ARG, "duplicate session rejected");
    CHECK(xs_pipe_batch_frame(NULL, bat, 2, pp, op, inf) == XS_ERR_ARG, "2 sessions need a batch");
    for (int i = 0; i < N; i++) {
        xswarm_session_free(solo[i]);
        xswarm_session_free(bat[i]);
    }
    lm_batch_free(lb);
    free(in);
    free(o1);
    free(o2);
}

static void check_api_errors(xswarm_model *m, xswarm_model *other) {
    xswarm_batch *b = NULL, *b2 = NULL;
    xswarm_session *s1 = NULL, *s2 = NULL, *so = NULL;
    CHECK(xswarm_batch_new(m, 0, &b) == XSWARM_ERR_ARG && !b, "capacity 0 rejected");
    CHECK(xswarm_batch_new(m, 1, &b) == XSWARM_OK && xswarm_batch_new(m, 1, &b2) == XSWARM_OK,
          "batches");
    CHECK(xswarm_session_new(m, 1, &s1) == XSWARM_OK && xswarm_session_new(m, 2, &s2) == XSWARM_OK,
          "sessions");
    if (other) CHECK(xswarm_session_new(other, 3, &so) == XSWARM_OK, "session of another model");
    if (!b || !b2 || !s1 || !s2) goto done;
    CHECK(xswarm_batch_join(b, s1) == XSWARM_OK, "join");
    CHECK(xswarm_batch_join(b, s2) == XSWARM_ERR_ARG, "full batch rejects");
    CHECK(xswarm_batch_join(b2, s1) == XSWARM_ERR_ARG, "member of another batch rejected");
    if (so) CHECK(xswarm_batch_join(b2, so) == XSWARM_ERR_ARG, "other model rejected");
    CHECK(xswarm_batch_leave(b2, s1) == XSWARM_ERR_ARG, "leave a batch it is not in");
    int n = -1;
    CHECK(xswarm_batch_step(b, &n) == XSWARM_OK && n == 0, "nothing ready: 0 stepped");
    float fr[FR];
    frame_of(0, 0, fr);
    CHECK(xswarm_session_push(s1, fr, FR) == XSWARM_OK, "push queues");
    CHECK(xswarm_session_pull(s1, fr, FR) == 0, "member: nothing processed by push");
    CHECK(xswarm_batch_step(b, &n) == XSWARM_OK && n == 1, "step processes the frame");
    CHECK(xswarm_session_pull(s1, fr, FR) == FR, "one response frame");
done:
    xswarm_batch_free(b); /* s1 leaves */
    xswarm_batch_free(b2);
    xswarm_session_free(s1);
    xswarm_session_free(s2);
    xswarm_session_free(so);
}

int main(void) {
    snprintf(g_lm, sizeof g_lm, "%s", golden_path("lm_tiny/model.safetensors"));
    snprintf(g_lm_cfg, sizeof g_lm_cfg, "%s", golden_path("lm_tiny/config.json"));
    snprintf(g_mimi, sizeof g_mimi, "%s", golden_path("mimi_tiny/model.safetensors"));
    snprintf(g_mimi_cfg, sizeof g_mimi_cfg, "%s", golden_path("mimi_tiny/config.json"));
    xs_audio in = {0};
    if (xs_audio_read(golden_path("mimi_tiny/input.wav"), 24000, &in, NULL) != XS_OK)
        test_skip("mimi_tiny/input.wav not readable");
    g_in = in.pcm;
    g_n_in = in.n;
    CHECK(in.n > 40 * FR, "input has %lld samples", (long long)in.n);
    const char *backends[3] = {"ref", "cpu", "cuda"};
    int nb = xs_backend_cuda_usable(NULL, 0) ? 3 : 2;
    xswarm_model *models[3] = {0};
    for (int bi = 0; bi < nb; bi++) {
        xswarm_status rc = xswarm_model_load_parts(g_lm, g_lm_cfg, g_mimi, g_mimi_cfg, NULL,
                                                   backends[bi], 2, &models[bi]);
        CHECK(rc == XSWARM_OK, "%s: load: %s", backends[bi], xswarm_last_error());
        if (!models[bi]) continue;
        check_public(models[bi], backends[bi], 3, 3);
        check_public(models[bi], backends[bi], 5, 6);
        check_pipe(models[bi], backends[bi]);
    }
    if (models[0]) check_api_errors(models[0], models[1]);
    for (int bi = 0; bi < nb; bi++) xswarm_model_free(models[bi]);
    xs_audio_free(&in);
    return test_summary("test_session_batch");
}
