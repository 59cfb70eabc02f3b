/*
 * frame_check.h — shared by test_pipeline_frame_path.c (CPU, the frame
 * piece run eagerly) and test_cuda_frame_graph.c (the recorded frame):
 * run a session frame by frame under one XSWARM_FRAME_GRAPH setting, with
 * an optional reset mid-run, and compare two runs.
 */
#ifndef XS_TEST_FRAME_CHECK_H
#define XS_TEST_FRAME_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "formats/safetensors.h"
#include "model/frame_graph.h"
#include "model/gen_model.h"
#include "model/session.h"
#include "testutil.h"

#define FC_MAX_STEPS 256
#define FC_PCM_TOL 1e-4 /* test_pipeline_golden's output_pcm tolerance */

typedef struct fc_run {
    int n_steps, n_frames;
    int32_t step_out[FC_MAX_STEPS][XS_PIPE_MAX_CODES];
    int32_t codes[FC_MAX_STEPS][LM_MAX_STREAMS];
    float *pcm;
    int64_t n_pcm;
    int64_t captures, launches, eager; /* the frame graph's, before any reset */
    int frame_path;                    /* frames that went through the frame path */
} fc_run;

/* frames of in on backend be (mode: XSWARM_FRAME_GRAPH), sampled with seed
 * (greedy when seed == 0); after reset_at frames (0: never) the session is
 * reset and fed from the first frame again. */
static bool fc_session(xs_backend *be, const xs_bundle *b, const char *mode, uint64_t seed,
                       int frames, int reset_at, const float *in, fc_run *o) {
    memset(o, 0, sizeof *o);
    setenv("XSWARM_FRAME_GRAPH", mode, 1);
    xswarm_model *m = NULL;
    xs_status rc = xs_pipe_model_load(be, b, &m);
    CHECK(rc == XS_OK, "%s/%s: load: %s", be->iface->name, mode, xs_error_msg());
    if (rc != XS_OK) return false;
    lm_sampling smp;
    lm_sampling_from_config(&smp, &m->lm->cfg);
    smp.greedy = seed == 0;
    smp.seed = seed;
    xswarm_session *s = NULL;
    rc = xs_pipe_session_new(m, &smp, NULL, &s);
    CHECK(rc == XS_OK, "session: %s", xs_error_msg());
    o->pcm = calloc((size_t)FC_MAX_STEPS * XSWARM_FRAME_SAMPLES, sizeof *o->pcm);
    bool ok = rc == XS_OK && o->pcm;
    for (int f = 0, src = 0; ok && f < frames; f++, src++) {
        if (reset_at && f == reset_at) {
            xs_frame_graph_stats(xs_pipe_session_frame_graph(s), &o->captures, &o->launches,
                                 &o->eager);
            ok = xswarm_session_reset(s) == XS_OK;
            src = 0;
        }
        xs_pipe_frame_info info;
        rc = ok ? xs_pipe_session_frame(s, in + (int64_t)src * XSWARM_FRAME_SAMPLES,
                                        o->pcm + o->n_pcm, &info)
                : XS_ERR_ARG;
        if (rc != XS_OK) {
            CHECK(0, "%s/%s: frame %d: %s", be->iface->name, mode, f, xs_error_msg());
            ok = false;
            break;
        }
        o->n_pcm += (int64_t)info.n_out_frames * XSWARM_FRAME_SAMPLES;
        memcpy(o->codes[f], info.frame_codes, sizeof info.frame_codes);
        o->frame_path += info.enc_ms == 0 && info.dec_ms == 0 && info.n_steps == 1;
        for (int k = 0; k < info.n_steps && o->n_steps < FC_MAX_STEPS; k++)
            memcpy(o->step_out[o->n_steps++], info.step_out[k], sizeof info.step_out[k]);
        o->n_frames++;
    }
    if (!reset_at)
        xs_frame_graph_stats(xs_pipe_session_frame_graph(s), &o->captures, &o->launches,
                             &o->eager);
    xswarm_session_free(s);
    xswarm_model_free(m);
    unsetenv("XSWARM_FRAME_GRAPH");
    return ok;
}

/* Same tokens and codes; pcm within tol (0: bit-identical). */
static void fc_compare(const char *what, const fc_run *a, const fc_run *b, double tol) {
    CHECK(a->n_steps == b->n_steps && a->n_steps > 0, "%s: %d vs %d steps", what, a->n_steps,
          b->n_steps);
    int bad = 0, first = -1;
    for (int i = 0; i < a->n_steps && i < b->n_steps; i++)
        if (memcmp(a->step_out[i], b->step_out[i], sizeof a->step_out[i])) {
            bad++;
            if (first < 0) first = i;
        }
    CHECK(bad == 0, "%s: %d step_out rows differ (first: step %d)", what, bad, first);
    bad = 0;
    for (int f = 0; f < a->n_frames && f < b->n_frames; f++)
        bad += memcmp(a->codes[f], b->codes[f], sizeof a->codes[f]) != 0;
    CHECK(bad == 0, "%s: %d frames with other user codes", what, bad);
    CHECK(a->n_pcm == b->n_pcm && a->n_pcm > 0, "%s: %lld vs %lld samples", what,
          (long long)a->n_pcm, (long long)b->n_pcm);
    if (a->n_pcm == b->n_pcm) {
        double e = test_max_abs_diff(a->pcm, b->pcm, a->n_pcm);
        CHECK(e <= tol, "%s: pcm max abs diff %.3g (want <= %.3g)", what, e, tol);
        fprintf(stderr, "%s: %d steps identical, pcm max abs diff %.3g\n", what, a->n_steps, e);
    }
}

/* A reset mid-run replays the first frames: the steps after the reset
 * equal the run's first ones (steps_before: steps done before the reset). */
static void fc_check_reset(const char *what, const fc_run *r, int steps_before) {
    int n = r->n_steps - steps_before, bad = 0;
    for (int i = 0; i < n; i++)
        bad += memcmp(r->step_out[i], r->step_out[steps_before + i], sizeof r->step_out[i]) != 0;
    CHECK(n > 0 && bad == 0, "%s: after the reset %d of %d steps differ from the first run", what,
          bad, n);
}

static void fc_free(fc_run *r) {
    free(r->pcm);
    r->pcm = NULL;
}

static void fc_remove_dir(const char *dir) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* Write the embedded tiny preset (f32, seed 5, no tokenizer) into a fresh
 * temporary folder `dir` (a mkdtemp template) and open it as *b; on failure
 * the folder is gone again. The caller removes it after use. */
static bool fc_tiny_bundle(char *dir, xs_bundle *b) {
    if (!mkdtemp(dir)) return false;
    xs_gen_opts o = {.preset = "tiny", .dtype = XS_F32, .seed = 5, .out_dir = dir};
    bool made = xs_gen_model(&o) == XS_OK && xs_bundle_from_dir(dir, b) == XS_OK;
    CHECK(made, "gen tiny: %s", xs_error_msg());
    if (!made) {
        fc_remove_dir(dir);
        return false;
    }
    b->tokenizer[0] = 0;
    return true;
}

/* The pipeline_tiny golden: its step_out and output_pcm, its input audio
 * and the bundle of the tiny models it was made with. Skips the test when
 * any of it is missing. */
typedef struct fc_golden {
    xs_safetensors *st;
    const xs_tensor *step_out, *output_pcm;
    xs_audio in;
    xs_bundle bundle;
} fc_golden;

static void fc_golden_open(fc_golden *g) {
    memset(g, 0, sizeof *g);
    if (xs_st_open(golden_path("pipeline_tiny/golden.safetensors"), &g->st) != XS_OK)
        test_skip("pipeline_tiny/golden.safetensors not readable");
    g->step_out = xs_st_find(g->st, "step_out");
    g->output_pcm = xs_st_find(g->st, "output_pcm");
    if (!g->step_out || !g->output_pcm ||
        xs_audio_read(golden_path("mimi_tiny/input.wav"), 24000, &g->in, NULL) != XS_OK)
        test_skip("pipeline_tiny golden or mimi_tiny/input.wav not readable");
    xs_bundle *b = &g->bundle;
    snprintf(b->lm, XS_PATH_MAX, "%s", golden_path("lm_tiny/model.safetensors"));
    snprintf(b->lm_config, XS_PATH_MAX, "%s", golden_path("lm_tiny/config.json"));
    snprintf(b->mimi, XS_PATH_MAX, "%s", golden_path("mimi_tiny/model.safetensors"));
    snprintf(b->mimi_config, XS_PATH_MAX, "%s", golden_path("mimi_tiny/config.json"));
}

/* r ran the golden's 76 frames greedy: its step_out exactly, its pcm within
 * test_pipeline_golden's output_pcm tolerance. */
static void fc_check_golden(const fc_golden *g, const fc_run *r) {
    const int64_t *want = g->step_out->data;
    int bad = 0;
    for (int i = 0; i < r->n_steps && i < 77; i++)
        for (int j = 0; j < 9; j++) bad += r->step_out[i][j] != want[i * 9 + j];
    CHECK(r->n_steps == 77 && bad == 0, "golden step_out: %d values differ", bad);
    CHECK(r->n_pcm == 145920, "golden output_pcm: %lld samples", (long long)r->n_pcm);
    if (r->n_pcm == 145920) {
        double e = test_max_abs_diff(g->output_pcm->data, r->pcm, r->n_pcm);
        CHECK(e <= FC_PCM_TOL, "golden output_pcm: max abs error %.3g", e);
    }
}

static void fc_golden_close(fc_golden *g) {
    xs_audio_free(&g->in);
    xs_st_close(g->st);
}

#endif
