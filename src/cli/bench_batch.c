/*
 * bench_batch.c — `xswarm bench batch`: many conversations on one model.
 *
 * N sessions are stepped together through xs_pipe_batch_frame, the same
 * code xswarm_batch_step runs: per frame, Mimi encode of each session, ONE
 * batched LM step for all of them (each weight read once), Mimi decode of
 * each. The time of a frame is the wall time of that whole call, so a
 * frame is real time when it is within 80 ms (the audio it carries).
 *
 * Each session hears different audio (the test utterance at its own offset
 * and gain, looped), so no two sessions compute the same thing. With
 * --fill-context every session's temporal KV cache is written to its full
 * capacity first (lm_gen_fill_context): each step then attends over the
 * whole window and memory holds every cache, as in minute five of five
 * minute conversations — the worst case a server must plan for.
 *
 * --random moshi-7b:DTYPE builds Mimi and the 7B at their released shapes
 * from weights generated in memory (the generator `diagnose --random` uses:
 * diag/diagnose_random.h), uploaded once to the backend; no files needed.
 *
 * XSWARM_CUDA_PROF=1 (cuda, --sessions): after the report, one per-op GPU
 * time table for each part of a frame (batched Mimi encode, one batched LM
 * step, batched Mimi decode), a few extra frames run eagerly behind stall
 * kernels (profile_parts).
 *
 * --find-max: the largest N whose p99 frame time is within 80 ms. Doubling
 * N = 1, 2, 4, ... until a probe fails (p99 > 80 ms or out of memory), then
 * bisection between the last good and the first bad N; each probe runs
 * --warmup + --search-steps frames. Sessions are kept between probes (a
 * larger probe only adds sessions), so each cache is filled once.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "backend/cuda_probe.h"
#include "cli/cli.h"
#include "cli/model_args.h"
#include "core/log.h"
#include "diag/diagnose_random.h"
#include "diag/experiment.h"
#include "diag/membw.h"
#include "model/mimi.h"
#include "model/session.h"

#define BB_FRAME_MS 80.0 /* one frame of audio: the real-time budget */
#define BB_MAX_SESSIONS 4096

typedef struct bb_opts {
    cli_common common;
    model_args ma;
    const char *random;
    int sessions, steps, warmup, search_steps;
    bool sessions_given, fill, json, find_max;
    double max_seconds; /* 0: no limit on the timed steps of one measurement */
    /* --mimi-lanes L1,L2,... [--sweep-sessions N1,N2,...]: Mimi lanes sweep */
    int lanes[16], n_lanes, sweep[16], n_sweep;
} bb_opts;

/* One measurement: N sessions x S frames. */
typedef struct bb_result {
    int n, steps;
    double p50, p99, max;             /* whole frame, all sessions */
    double enc_p50, enc_p99, lm_p50, lm_p99, dec_p50, dec_p99;
    bool one_graph; /* every timed frame ran as one graph (batch 1 on a GPU) */
    int over;                         /* frames over 80 ms */
    size_t gpu_used;                  /* after the run (0: not on a GPU) */
    long rss_kb;
    bool oom;                         /* failed for lack of memory */
    bool ok;                          /* ran all its steps */
} bb_result;

/* Everything a run holds: the model, its sessions (a pool that only grows),
 * the input audio. */
typedef struct bb_ctx {
    xs_backend *be;
    bool on_gpu;
    xswarm_model *m;
    xs_diag_random *rnd;
    lm_sampling samp;
    bool fill;
    xswarm_session **ss;
    float **in, **out;
    int n, cap;
    float *audio;
    int64_t audio_n;
    double fill_s;
    size_t gpu_total, gpu_free_model; /* free GPU memory once the model is loaded */
    long rss_model_kb;                /* host RSS once the model is loaded */
} bb_ctx;

static void usage(FILE *f) {
    fprintf(f,
            "usage: xswarm bench batch [--random moshi-7b:DTYPE | tiny:DTYPE | MODEL OPTIONS]\n"
            "                          [--backend ref|cpu|cuda] [--threads N] [--kv f32|bf16|q8]\n"
            "                          [--sessions N] [--fill-context] [--steps S] [--warmup W]\n"
            "                          [--find-max] [--search-steps K] [--max-seconds T] [--json]\n"
            "                          [--gemm rows|mma]\n"
            "N sessions (default 1) in one batch, each fed different audio (the test\n"
            "utterance at its own offset and gain, looped); per frame: Mimi encode of each,\n"
            "one batched LM step, Mimi decode of each. Prints the time of a frame for ALL\n"
            "sessions (p50 / p99 / max over S frames, default 50, after W warm-up frames,\n"
            "default 3), split encode / LM / decode, the frames over 80 ms, host RSS and\n"
            "GPU memory (cuda).\n"
            "  --random moshi-7b:q8_0|bf16|q4_0|f16|f32  Mimi + Moshi 7B at real shapes,\n"
            "      weights generated in memory (no files). tiny:DTYPE: a 2-layer LM.\n"
            "  --fill-context  fill every session's KV cache first: each step attends over\n"
            "      the full context (3000 positions for Moshi) and memory holds every cache.\n"
            "  --find-max      find the largest N whose p99 frame is within 80 ms: doubling\n"
            "      from 1, then bisection; K frames per probe (--search-steps, default 30).\n"
            "      With --sessions as well, N is measured over S frames first.\n"
            "  --max-seconds T  stop a measurement after T s of timed frames (reports the\n"
            "      frames actually run).\n"
            "  --gemm rows|mma  cuda matmul kernels for the whole run: the tensor-core one\n"
            "      (mma, the default when more than one session is stepped) or the GEMV rows\n"
            "      kernels (rows, the default for one session: faster at batch 1).\n"
            "  --mimi-lanes L1,L2,...  instead: for each N of --sweep-sessions N1,N2,...\n"
            "      (default --sessions), measure with Mimi on L lanes each (XSWARM_MIMI_LANES\n"
            "      without rebuilding the model; 1 = one after another; 0 = all sessions'\n"
            "      Mimi as ONE batched computation, mimi_encode_batch), one line each.\n"
            "XSWARM_CUDA_PROF=1 (cuda, --sessions): after the report, a per-op GPU time table\n"
            "for each part of a frame (batched Mimi encode, LM step, batched Mimi decode).\n"
            "Default model: the embedded tiny bundle next to the binary.\n\n");
    model_args_usage(f);
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "xswarm bench batch: %s takes an integer in %d..%d (got '%s')\n", opt, lo,
                hi, v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* "a,b,c" -> up to 16 integers in lo..hi */
static int parse_list(const char *opt, const char *v, int lo, int hi, int *out, int *n) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", v);
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == 16 || parse_int(opt, t, lo, hi, &out[*n]) < 0) return -1;
        (*n)++;
    }
    return *n ? 0 : -1;
}

static int parse_args(int argc, char **argv, bb_opts *o) {
    for (int i = 1; i < argc; i++) {
        int r = cli_common_parse(&o->common, argc, argv, &i);
        if (r == 0) r = model_args_parse(&o->ma, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
        const char *a = argv[i];
        if (!strcmp(a, "--json")) { o->json = true; continue; }
        if (!strcmp(a, "--fill-context")) { o->fill = true; continue; }
        if (!strcmp(a, "--find-max")) { o->find_max = true; continue; }
        bool known = !strcmp(a, "--random") || !strcmp(a, "--sessions") || !strcmp(a, "--steps") ||
                     !strcmp(a, "--mimi-lanes") || !strcmp(a, "--sweep-sessions") ||
                     !strcmp(a, "--warmup") || !strcmp(a, "--search-steps") ||
                     !strcmp(a, "--max-seconds");
        if (!known) {
            fprintf(stderr, "xswarm bench batch: unknown option '%s' (try --help)\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "xswarm bench batch: %s needs a value\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--random")) o->random = v;
        else if (!strcmp(a, "--sessions")) {
            rc = parse_int(a, v, 1, BB_MAX_SESSIONS, &o->sessions);
            o->sessions_given = true;
        } else if (!strcmp(a, "--steps")) rc = parse_int(a, v, 1, 1000000, &o->steps);
        else if (!strcmp(a, "--warmup")) rc = parse_int(a, v, 0, 100000, &o->warmup);
        else if (!strcmp(a, "--search-steps")) rc = parse_int(a, v, 1, 1000000, &o->search_steps);
        else if (!strcmp(a, "--mimi-lanes")) rc = parse_list(a, v, 0, 64, o->lanes, &o->n_lanes);
        else if (!strcmp(a, "--sweep-sessions"))
            rc = parse_list(a, v, 1, BB_MAX_SESSIONS, o->sweep, &o->n_sweep);
        else {
            char *end;
            o->max_seconds = strtod(v, &end);
            if (!*v || *end || !(o->max_seconds > 0)) {
                fprintf(stderr, "xswarm bench batch: --max-seconds takes seconds > 0 (got '%s')\n", v);
                rc = -1;
            }
        }
        if (rc) return -1;
    }
    if (o->random && model_args_given(&o->ma) && (o->ma.model_dir || o->ma.lm || o->ma.mimi)) {
        fprintf(stderr, "xswarm bench batch: --random and a model folder or parts exclude each other\n");
        return -1;
    }
    return 0;
}

/* ---- model --------------------------------------------------------------- */

/* Random Mimi + LM at the spec's shapes, assembled as xs_pipe_model_load
 * would (the model does not own be; parts stays empty: no files). */
static xs_status random_model(bb_ctx *c, const char *spec) {
    XS_TRY(xs_diag_random_new(spec, &c->rnd));
    xswarm_model *m = calloc(1, sizeof *m);
    if (!m) return xs_error(XS_ERR_NOMEM, "bench batch: out of memory");
    m->be = c->be;
    xs_status rc = xs_diag_random_lm(c->rnd, c->be, &m->lm);
    if (rc == XS_OK) rc = xs_diag_random_mimi(c->rnd, c->be, &m->mimi);
    if (rc == XS_OK) {
        m->dep_q = m->lm->cfg.dep_q;
        m->user_codes = m->lm->cfg.n_q - m->lm->cfg.dep_q;
        snprintf(m->mimi_config_used, sizeof m->mimi_config_used, "random (%s)", spec);
        c->m = m;
        return XS_OK;
    }
    xswarm_model_free(m);
    return rc;
}

/* ---- input audio ---------------------------------------------------------- */

static int load_audio(bb_ctx *c) {
    char p[4096];
    xs_find_test_utterance(p, sizeof p);
    xs_audio a = {0};
    if (p[0] && xs_audio_read(p, 24000, &a, NULL) == XS_OK && a.n >= XSWARM_FRAME_SAMPLES) {
        c->audio = a.pcm; /* taken over: freed with free() below */
        c->audio_n = a.n;
        a.pcm = NULL;
        xs_audio_free(&a);
        return 0;
    }
    xs_audio_free(&a);
    /* no asset: a gliding tone, still different per session through offsets */
    c->audio_n = 10 * 24000;
    c->audio = malloc((size_t)c->audio_n * sizeof *c->audio);
    if (!c->audio) return -1;
    double ph = 0;
    for (int64_t i = 0; i < c->audio_n; i++) {
        ph += 2.0 * 3.14159265358979 * (150.0 + 200.0 * (double)i / (double)c->audio_n) / 24000.0;
        c->audio[i] = (float)(0.3 * sin(ph));
    }
    return 0;
}

/* Session i's next input frame: the utterance from its own offset at its
 * own gain, looped. */
static void next_input(const bb_ctx *c, int i) {
    const int64_t off = ((int64_t)i * 12347 + xs_pipe_session_frames(c->ss[i]) * XSWARM_FRAME_SAMPLES);
    const float gain = 0.35f + 0.65f * (float)((i * 7) % 10) / 9.0f;
    for (int j = 0; j < XSWARM_FRAME_SAMPLES; j++)
        c->in[i][j] = gain * c->audio[(off + j) % c->audio_n];
}

/* ---- sessions ------------------------------------------------------------- */

static size_t gpu_free_now(const bb_ctx *c) {
    size_t f = 0;
    if (!c->on_gpu || xs_cuda_mem_info(c->be, &f, NULL) != XS_OK) return 0;
    return f;
}

/* Grow the pool to n sessions (filling each cache when asked). On failure
 * the pool keeps the sessions made so far and the error says how much memory
 * they took. */
static xs_status pool_grow(bb_ctx *c, int n) {
    if (n <= c->n) return XS_OK;
    if (n > c->cap) {
        int cap = c->cap ? c->cap : 8;
        while (cap < n) cap *= 2;
        xswarm_session **ss = realloc(c->ss, (size_t)cap * sizeof *ss);
        if (ss) c->ss = ss;
        float **in = ss ? realloc(c->in, (size_t)cap * sizeof *in) : NULL;
        if (in) c->in = in;
        float **out = in ? realloc(c->out, (size_t)cap * sizeof *out) : NULL;
        if (out) c->out = out;
        if (!out) return xs_error(XS_ERR_NOMEM, "bench batch: out of host memory for %d sessions", n);
        c->cap = cap;
    }
    double t0 = xs_now_seconds(), last = t0;
    while (c->n < n) {
        const int i = c->n;
        lm_sampling s = c->samp;
        s.seed = 1000 + (uint64_t)i;
        c->in[i] = malloc(XSWARM_FRAME_SAMPLES * sizeof(float));
        c->out[i] = malloc((size_t)XS_PIPE_MAX_STEPS * XSWARM_FRAME_SAMPLES * sizeof(float));
        xs_status rc = c->in[i] && c->out[i] ? XS_OK : xs_error(XS_ERR_NOMEM, "host memory");
        c->ss[i] = NULL;
        if (rc == XS_OK) rc = xs_pipe_session_new(c->m, &s, NULL, &c->ss[i]);
        if (rc == XS_OK && c->fill)
            rc = lm_gen_fill_context(xs_pipe_session_lm_gen(c->ss[i]), 7 + (uint64_t)i);
        if (rc != XS_OK) {
            char why[512]; /* xs_error formats into the buffer xs_error_msg reads */
            snprintf(why, sizeof why, "%s", xs_error_msg());
            xswarm_session_free(c->ss[i]);
            free(c->in[i]);
            free(c->out[i]);
            const size_t kv = lm_model_kv_bytes(c->m->lm);
            if (c->on_gpu) {
                const size_t fr = gpu_free_now(c);
                const size_t used = c->gpu_free_model > fr ? c->gpu_free_model - fr : 0;
                return xs_error(rc,
                                "session %d of %d: %s (the model uses %.2f GiB of GPU memory, %d "
                                "sessions %.2f GiB (%.1f MiB each, KV cache %.2f MiB of it), "
                                "%.2f GiB free of %.2f GiB)",
                                i + 1, n, why,
                                (c->gpu_total - c->gpu_free_model) / 1073741824.0, i,
                                used / 1073741824.0, i ? used / 1048576.0 / i : 0.0, kv / 1048576.0,
                                fr / 1073741824.0, c->gpu_total / 1073741824.0);
            }
            const long rss = cli_proc_status_kb("VmRSS:");
            const double per = i && rss > c->rss_model_kb ? (rss - c->rss_model_kb) / 1024.0 / i : 0;
            return xs_error(rc,
                            "session %d of %d: %s (host memory: RSS %.2f GiB with the model and %d "
                            "sessions, %.2f MiB each, KV cache %.2f MiB of it)",
                            i + 1, n, why, rss / 1048576.0, i, per, kv / 1048576.0);
        }
        c->n++;
        double now = xs_now_seconds();
        if (now - last > 5.0) {
            XS_LOGI("bench batch: %d of %d sessions ready (%.0f s)", c->n, n, now - t0);
            last = now;
        }
    }
    c->fill_s += xs_now_seconds() - t0;
    return XS_OK;
}

static void pool_free(bb_ctx *c) {
    for (int i = 0; i < c->n; i++) {
        xswarm_session_free(c->ss[i]);
        free(c->in[i]);
        free(c->out[i]);
    }
    free(c->ss);
    free(c->in);
    free(c->out);
}

/* ---- one measurement ------------------------------------------------------ */

static bool is_nomem(xs_status rc) { return rc == XS_ERR_NOMEM; }

/* n sessions (the pool's first n), warmup + steps frames. *r filled even on
 * failure (r->ok false; r->oom for lack of memory). */
static xs_status measure(bb_ctx *c, int n, int steps, int warmup, double max_s, bb_result *r) {
    memset(r, 0, sizeof *r);
    r->n = n;
    xs_status rc = pool_grow(c, n);
    if (rc != XS_OK) {
        r->oom = is_nomem(rc);
        return rc;
    }
    lm_batch *lb = NULL;
    if (n > 1 && (rc = lm_batch_new(c->m->lm, n, &lb)) != XS_OK) {
        r->oom = is_nomem(rc);
        return xs_error_prefix(rc, "batch scratch for %d sessions: ", n);
    }
    double *t = malloc((size_t)steps * 4 * sizeof *t);
    xs_pipe_frame_info *info = malloc((size_t)n * sizeof *info);
    if (!t || !info) {
        free(t);
        free(info);
        lm_batch_free(lb);
        return xs_error(XS_ERR_NOMEM, "bench batch: out of memory");
    }
    double *te = t + steps, *tl = t + 2 * steps, *td = t + 3 * steps;
    int done = 0;
    double t_start = 0, last = xs_now_seconds();
    for (int s = 0; s < warmup + steps; s++) {
        for (int i = 0; i < n; i++) next_input(c, i);
        if (s == warmup) t_start = xs_now_seconds();
        double a = xs_now_seconds();
        rc = xs_pipe_batch_frame(lb, c->ss, n, (const float *const *)c->in,
                                 (float *const *)c->out, info);
        double dt = (xs_now_seconds() - a) * 1e3;
        if (rc != XS_OK) {
            r->oom = is_nomem(rc);
            break;
        }
        if (s >= warmup) {
            r->one_graph = (done == 0 || r->one_graph) && n == 1 && info[0].one_graph;
            double e = 0, l = 0, d = 0;
            for (int i = 0; i < n; i++) {
                e += info[i].enc_ms;
                d += info[i].dec_ms;
                if (info[i].lm_ms > l) l = info[i].lm_ms; /* one shared step, charged to each */
            }
            t[done] = dt, te[done] = e, tl[done] = l, td[done] = d;
            done++;
            if (max_s > 0 && xs_now_seconds() - t_start > max_s) break;
        }
        double now = xs_now_seconds();
        if (now - last > 10.0) {
            XS_LOGI("bench batch: %d sessions: frame %d of %d (+%d warm-up), last %.1f ms", n,
                    s + 1 - warmup, steps, warmup, dt);
            last = now;
        }
    }
    lm_batch_free(lb);
    free(info);
    if (done > 0) {
        r->steps = done;
        r->p50 = xs_percentile(t, done, 50), r->p99 = xs_percentile(t, done, 99);
        r->enc_p50 = xs_percentile(te, done, 50), r->enc_p99 = xs_percentile(te, done, 99);
        r->lm_p50 = xs_percentile(tl, done, 50), r->lm_p99 = xs_percentile(tl, done, 99);
        r->dec_p50 = xs_percentile(td, done, 50), r->dec_p99 = xs_percentile(td, done, 99);
        for (int i = 0; i < done; i++) {
            if (t[i] > r->max) r->max = t[i];
            if (t[i] > BB_FRAME_MS) r->over++;
        }
    }
    free(t);
    r->gpu_used = c->on_gpu && c->gpu_total ? c->gpu_total - gpu_free_now(c) : 0;
    r->rss_kb = cli_proc_status_kb("VmRSS:");
    r->ok = rc == XS_OK;
    return rc;
}

/* ---- XSWARM_CUDA_PROF=1: where a batched frame's GPU time goes ---------------
 * After the measurement: a few more frames of the n sessions, part by part
 * (Mimi encode of all of them as the batched call, one batched LM step,
 * Mimi decode of all of them), each part behind a stall kernel so that its
 * ops queue up and run back to back and the profiler's event pairs time
 * the kernels, not the host's launches; one table per part (eager: an op
 * hook turns the recordings off). The parts run on the sessions' own
 * streams and generators (they advance by these frames: harmless after the
 * timed ones). */
static void profile_part(xs_backend *be, int frames, const char *what) {
    double busy = 0;
    printf("  profile of %s (%d frames; GPU time per frame):\n", what, frames);
    fflush(stdout);
    if (xs_cuda_prof_end(be, stdout, frames, &busy) != XS_OK)
        XS_LOGW("bench batch: profile: %s", xs_error_msg());
    else
        printf("  profile: %s GPU busy %.3f ms per frame\n", what, busy);
}

static int profile_parts(bb_ctx *c, int n) {
    const int frames = 3;
    const int uc = c->m->user_codes, dq = c->m->dep_q;
    const int nc = uc > dq ? uc : dq;
    mimi_stream **ms = malloc((size_t)n * sizeof *ms);
    lm_gen **gens = malloc((size_t)n * sizeof *gens);
    int32_t *codes = calloc((size_t)n * (size_t)nc, sizeof *codes);
    int32_t **cp = malloc((size_t)n * sizeof *cp);
    int32_t *lm_out = calloc((size_t)n * XS_PIPE_MAX_CODES, sizeof *lm_out);
    bool *valid = calloc((size_t)n, sizeof *valid);
    lm_batch *lb = NULL;
    xs_status rc = ms && gens && codes && cp && lm_out && valid ? XS_OK
                   : xs_error(XS_ERR_NOMEM, "bench batch: out of memory");
    if (rc == XS_OK && n > 1) rc = lm_batch_new(c->m->lm, n, &lb);
    for (int i = 0; rc == XS_OK && i < n; i++) {
        ms[i] = xs_pipe_session_mimi(c->ss[i]);
        gens[i] = xs_pipe_session_lm_gen(c->ss[i]);
        cp[i] = codes + (size_t)i * nc;
    }
    printf("  per-op profile (XSWARM_CUDA_PROF=1), %d sessions, batched Mimi%s:\n", n,
           mimi_batch_usable(ms, n) ? "" : " NOT usable (taps?)");
    /* Mimi encode, batched */
    if (rc == XS_OK) rc = xs_cuda_prof_begin(c->be);
    for (int f = 0; rc == XS_OK && f < frames; f++) {
        for (int i = 0; i < n; i++) next_input(c, i);
        rc = xs_cuda_stall(c->be, 40.0);
        if (rc == XS_OK)
            rc = mimi_encode_batch(ms, n, (const float *const *)c->in, uc, cp);
    }
    if (rc == XS_OK) profile_part(c->be, frames, "Mimi encode (batched)");
    /* one batched LM step (the user codes: the encoded ones) */
    if (rc == XS_OK) rc = xs_cuda_prof_begin(c->be);
    for (int f = 0; rc == XS_OK && f < frames; f++) {
        int32_t *user = malloc((size_t)n * (size_t)uc * sizeof *user);
        if (!user) {
            rc = xs_error(XS_ERR_NOMEM, "bench batch: out of memory");
            break;
        }
        for (int i = 0; i < n; i++) memcpy(user + (size_t)i * uc, cp[i], (size_t)uc * sizeof *user);
        rc = xs_cuda_stall(c->be, 40.0);
        if (rc == XS_OK)
            rc = n == 1 ? lm_gen_step(gens[0], user, lm_out, valid)
                        : lm_gen_step_batch(lb, gens, n, user, lm_out, valid);
        free(user);
    }
    if (rc == XS_OK) profile_part(c->be, frames, "LM step (batched)");
    /* Mimi decode, batched: the encoded codes (any codes in range will do) */
    if (rc == XS_OK) rc = xs_cuda_prof_begin(c->be);
    for (int f = 0; rc == XS_OK && f < frames; f++) {
        rc = xs_cuda_stall(c->be, 40.0);
        if (rc == XS_OK)
            rc = mimi_decode_batch(ms, n, (const int32_t *const *)cp, dq, (float *const *)c->out);
    }
    if (rc == XS_OK) profile_part(c->be, frames, "Mimi decode (batched)");
    if (rc != XS_OK) {
        XS_LOGW("bench batch: profile: %s", xs_error_msg());
        double busy;
        xs_cuda_prof_end(c->be, stderr, 1, &busy); /* removes the hook if it is still on */
    }
    lm_batch_free(lb);
    free(ms);
    free(gens);
    free(codes);
    free(cp);
    free(lm_out);
    free(valid);
    return rc == XS_OK ? 0 : 1;
}

/* ---- --find-max ------------------------------------------------------------ */

typedef struct bb_search {
    bb_result probes[64];
    int n_probes;
    int best;          /* largest real-time N found (0: none) */
    int first_bad;     /* smallest N that failed (0: none up to the limit) */
    bool mem_limited;  /* the first bad N failed for memory */
    bb_result best_r;
} bb_search;

static bool realtime(const bb_result *r) { return r->ok && r->p99 <= BB_FRAME_MS; }

/* known: the fixed-N run (n == 0: none), which bounds the search from
 * below (real time) or above (not) before any probe. */
static void search_max(bb_ctx *c, const bb_opts *o, const bb_result *known, bb_search *sr) {
    memset(sr, 0, sizeof *sr);
    int lo = 0, hi = 0; /* lo real-time (0: none yet), hi not (0: none yet) */
    if (known && known->n > 0) {
        if (realtime(known)) {
            lo = known->n;
            sr->best_r = *known;
        } else {
            hi = known->n;
            sr->mem_limited = known->oom;
            if (known->oom && c->n < known->n) hi = c->n + 1; /* only c->n sessions fit */
        }
    }
    int n = lo ? 2 * lo : 1;
    if (n > BB_MAX_SESSIONS) n = BB_MAX_SESSIONS;
    if (hi && n >= hi) n = lo + (hi - lo) / 2;
    while (sr->n_probes < 64 && !(hi && hi - lo <= 1) && !(lo >= BB_MAX_SESSIONS)) {
        bb_result *r = &sr->probes[sr->n_probes++];
        xs_status rc = measure(c, n, o->search_steps, o->warmup, o->max_seconds, r);
        if (rc != XS_OK) XS_LOGW("bench batch: %d sessions: %s", n, xs_error_msg());
        XS_LOGI("bench batch: probe N=%d: %s p99 %.1f ms", n, r->ok ? "" : "failed,", r->p99);
        if (realtime(r)) {
            lo = n;
            sr->best_r = *r;
        } else {
            hi = n;
            sr->mem_limited = r->oom;
            /* out of memory while growing: only c->n sessions fit */
            if (r->oom && c->n < n && c->n > lo) hi = c->n + 1;
        }
        if (!hi) /* doubling */
            n = n * 2 > BB_MAX_SESSIONS ? BB_MAX_SESSIONS : n * 2;
        else /* bisection */
            n = lo + (hi - lo) / 2;
    }
    sr->best = lo;
    sr->first_bad = hi;
}

/* ---- output ------------------------------------------------------------------ */

static void print_result_json(const char *key, const bb_result *r) {
    printf("\"%ssessions\":%d,\"%ssteps_run\":%d,\"%sframe_p50_ms\":%.3f,\"%sframe_p99_ms\":%.3f,"
           "\"%sframe_max_ms\":%.3f,\"%sencode_p50_ms\":%.3f,\"%sencode_p99_ms\":%.3f,"
           "\"%slm_p50_ms\":%.3f,\"%slm_p99_ms\":%.3f,\"%sdecode_p50_ms\":%.3f,"
           "\"%sdecode_p99_ms\":%.3f,\"%sover_80ms\":%d,\"%srealtime_p99\":%s,\"%sone_graph\":%s",
           key, r->n, key, r->steps, key, r->p50, key, r->p99, key, r->max, key, r->enc_p50, key,
           r->enc_p99, key, r->lm_p50, key, r->lm_p99, key, r->dec_p50, key, r->dec_p99, key,
           r->over, key, realtime(r) ? "true" : "false", key, r->one_graph ? "true" : "false");
}

static void print_result_text(const bb_result *r) {
    printf("  %d session%s, %d frames:\n", r->n, r->n > 1 ? "s" : "", r->steps);
    printf("    %-8s %10s %10s\n", "part", "p50 ms", "p99 ms");
    if (r->one_graph) {
        printf("    (each frame ran as one recorded graph: Mimi encode, LM step and Mimi decode\n"
               "     are not timed apart)\n");
    } else {
        printf("    %-8s %10.2f %10.2f   (Mimi encode, all sessions)\n", "encode", r->enc_p50,
               r->enc_p99);
        printf("    %-8s %10.2f %10.2f   (one batched LM step)\n", "lm", r->lm_p50, r->lm_p99);
        printf("    %-8s %10.2f %10.2f   (Mimi decode, all sessions)\n", "decode", r->dec_p50,
               r->dec_p99);
    }
    printf("    %-8s %10.2f %10.2f   max %.2f ms; %d frame%s over 80 ms -> %s at p99\n", "frame",
           r->p50, r->p99, r->max, r->over, r->over == 1 ? "" : "s",
           realtime(r) ? "REAL TIME" : "NOT real time");
}

/* --mimi-lanes: the same model and sessions, Mimi on 1, 8, ... lanes
 * (mimi_model_set_lanes: the streams re-pick lanes and re-record in the
 * warm-up frames). Encode / decode: wall time of all sessions' Mimi. */
static int lanes_sweep(bb_ctx *c, const bb_opts *o) {
    int ns[16], nn = o->n_sweep;
    if (nn) memcpy(ns, o->sweep, sizeof ns);
    else ns[nn++] = o->sessions;
    printf("  Mimi lanes sweep (%d frames after %d warm-up; ms per frame, all sessions):\n",
           o->steps, o->warmup);
    printf("    %5s %5s %17s %17s %9s %17s\n", "N", "lanes", "encode p50/p99", "decode p50/p99",
           "lm p50", "frame p50/p99");
    int ret = 0;
    for (int i = 0; i < nn; i++)
        for (int k = 0; k < o->n_lanes; k++) {
            /* lanes 0: the batched Mimi (XSWARM_MIMI_BATCH=1), shown as lanes 0 */
            mimi_batch_set_mode(o->lanes[k] == 0);
            int got = o->lanes[k] == 0 ? 0 : mimi_model_set_lanes(c->m->mimi, o->lanes[k]);
            bb_result r;
            if (measure(c, ns[i], o->steps, o->warmup, o->max_seconds, &r) != XS_OK) {
                printf("    %5d %5d FAILED: %s\n", ns[i], got, xs_error_msg());
                ret = 1;
                continue;
            }
            printf("    %5d %5d %8.2f/%8.2f %8.2f/%8.2f %9.2f %8.2f/%8.2f  (%d frames)\n", ns[i], got,
                   r.enc_p50, r.enc_p99, r.dec_p50, r.dec_p99, r.lm_p50, r.p50, r.p99, r.steps);
            fflush(stdout);
        }
    mimi_batch_set_mode(-1);
    return ret;
}

int cmd_bench_batch(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    bb_opts o = {.sessions = 1, .steps = 50, .warmup = 3, .search_steps = 30};
    if (parse_args(argc, argv, &o)) return 2;
    int kv = LM_KV_DEFAULT;
    if (o.ma.kv && (kv = lm_kv_dtype_parse(o.ma.kv)) < 0) {
        fprintf(stderr, "xswarm bench batch: --kv takes f32, bf16 or q8\n");
        return 2;
    }
    if (o.random) { /* check the spec before any heavy work */
        xs_diag_random *probe = NULL;
        if (xs_diag_random_new(o.random, &probe) != XS_OK) {
            fprintf(stderr, "xswarm bench batch: %s\n", xs_error_msg());
            return 2;
        }
        xs_diag_random_free(probe);
    }
    bb_ctx c = {.fill = o.fill};
    xs_bundle *b = calloc(1, sizeof *b);
    if (!b) return cli_fail("out of memory");
    bool embedded = !o.random && !model_args_given(&o.ma);
    int ret = 0;
    if (embedded && model_args_embedded(&o.ma, b)) {
        free(b);
        return 1;
    }
    if (!o.random && !embedded && model_args_resolve(&o.ma, b)) {
        free(b);
        return 1;
    }
    /* batches of several sessions: the tensor-core matmul (cli.h) */
    cli_gemm_default(&o.common, o.sessions > 1 || o.find_max || o.n_sweep > 0);
    c.be = cli_backend_open(&o.common);
    if (!c.be) {
        free(b);
        return 1;
    }
    c.on_gpu = xs_backend_is_cuda(c.be);
    char gpu_desc[160] = "";
    size_t gpu_free0 = 0;
    if (c.on_gpu) {
        if (xs_cuda_device_desc(c.be, gpu_desc, sizeof gpu_desc) != XS_OK) gpu_desc[0] = 0;
        if (xs_cuda_mem_info(c.be, &gpu_free0, &c.gpu_total) != XS_OK) c.gpu_total = 0;
    }
    if (o.random)
        XS_LOGI("bench batch: generating %s in memory (the 7B: about half a minute)", o.random);
    double t0 = xs_now_seconds();
    xs_status rc = o.random ? random_model(&c, o.random) : xs_pipe_model_load(c.be, b, &c.m);
    if (rc == XS_OK) rc = lm_model_set_kv_dtype(c.m->lm, (xs_dtype)kv);
    double build_s = xs_now_seconds() - t0;
    if (rc != XS_OK) {
        ret = cli_fail(o.random ? "building the random model" : "loading the model");
        goto done;
    }
    c.gpu_free_model = gpu_free_now(&c);
    c.rss_model_kb = cli_proc_status_kb("VmRSS:");
    lm_sampling_from_config(&c.samp, &c.m->lm->cfg);
    if (load_audio(&c)) {
        ret = cli_fail("out of memory");
        goto done;
    }
    XS_LOGI("bench batch: model ready in %.1f s", build_s);
    if (o.n_lanes) {
        printf("bench batch: model %s, backend %s; setup model %.1f s\n",
               o.random ? o.random : "given", c.be->iface->name, build_s);
        ret = lanes_sweep(&c, &o);
        goto done;
    }

    bb_result main_r = {0};
    bool have_main = !o.find_max || o.sessions_given;
    char main_err[768] = "";
    if (have_main && measure(&c, o.sessions, o.steps, o.warmup, o.max_seconds, &main_r) != XS_OK) {
        snprintf(main_err, sizeof main_err, "%s", xs_error_msg());
        fprintf(stderr, "xswarm bench batch: %d sessions: %s%s\n", o.sessions, main_err,
                main_r.oom ? " — out of memory: try fewer --sessions, --kv q8 or q8_0 weights" : "");
        ret = 1;
        if (!o.find_max) goto done; /* else still search (and say the N above failed) */
        for (char *q = main_err; *q; q++) /* keep the JSON string simple */
            if (*q == '"' || *q == '\\' || (unsigned char)*q < 32) *q = '\'';
    }
    bb_search *sr = NULL;
    if (o.find_max) {
        sr = calloc(1, sizeof *sr);
        if (!sr) {
            ret = cli_fail("out of memory");
            goto done;
        }
        search_max(&c, &o, have_main ? &main_r : NULL, sr);
        if (!have_main) main_r = sr->best_r;
    }
    const lm_model *lm = c.m->lm;
    const char *model = o.random ? o.random : embedded ? "embedded tiny" : (b->dir[0] ? b->dir : b->lm);
    const char *wdt = xs_dtype_name(lm->main.layers[0].sets[0].wqkv.dtype);
    const char *kvdt = xs_dtype_name(lm->main.kv_dtype);
    const size_t kv_bytes = lm_model_kv_bytes(lm);
    const long rss = cli_proc_status_kb("VmRSS:"), hwm = cli_proc_status_kb("VmHWM:");
    const size_t gpu_model = c.gpu_total && gpu_free0 > c.gpu_free_model ? gpu_free0 - c.gpu_free_model : 0;
    const size_t gpu_used = main_r.gpu_used;
    const size_t gpu_sessions = gpu_used && c.gpu_total - c.gpu_free_model < gpu_used
                                    ? gpu_used - (c.gpu_total - c.gpu_free_model) : 0;
    if (o.json) {
        printf("{\"bench\":\"batch\",\"model\":\"%s\",\"backend\":\"%s\",\"threads\":%d,"
               "\"weights\":\"%s\",\"kv_dtype\":\"%s\",\"context\":%d,\"fill_context\":%s,"
               "\"warmup\":%d,",
               model, c.be->iface->name, c.be->n_threads, wdt, kvdt, (int)lm->main.context,
               o.fill ? "true" : "false", o.warmup);
        print_result_json("", &main_r);
        printf(",\"ok\":%s,\"out_of_memory\":%s,\"error\":\"%s\"", main_r.ok ? "true" : "false",
               main_r.oom ? "true" : "false", main_err);
        printf(",\"kv_cache_bytes_per_session\":%zu,\"rss_kb\":%ld,\"peak_rss_kb\":%ld,"
               "\"build_s\":%.2f,\"sessions_s\":%.2f,\"gpu\":\"%s\",\"gpu_mem_total\":%zu,"
               "\"gpu_mem_used\":%zu,\"gpu_mem_model\":%zu,\"gpu_mem_sessions\":%zu",
               kv_bytes, rss, hwm, build_s, c.fill_s, gpu_desc, c.gpu_total, gpu_used, gpu_model,
               gpu_sessions);
        if (sr) {
            printf(",\"max_realtime_sessions\":%d,\"first_failing_sessions\":%d,"
                   "\"max_limited_by\":\"%s\",\"search\":\"doubling then bisection, %d frames per "
                   "probe\",\"probes\":[",
                   sr->best, sr->first_bad,
                   !sr->first_bad ? "session limit" : sr->mem_limited ? "memory" : "p99 over 80 ms",
                   o.search_steps);
            for (int i = 0; i < sr->n_probes; i++)
                printf("%s{\"sessions\":%d,\"frame_p99_ms\":%.3f,\"ok\":%s,\"oom\":%s}", i ? "," : "",
                       sr->probes[i].n, sr->probes[i].p99, sr->probes[i].ok ? "true" : "false",
                       sr->probes[i].oom ? "true" : "false");
            printf("]");
        }
        printf("}\n");
    } else {
        printf("bench batch: model %s (weights %s, KV %s, context %d%s), backend %s, %d thread(s)\n",
               model, wdt, kvdt, (int)lm->main.context, o.fill ? ", every cache filled" : "",
               c.be->iface->name, c.be->n_threads);
        if (main_err[0]) printf("  %d sessions FAILED: %s\n", o.sessions, main_err);
        else if (main_r.n) print_result_text(&main_r);
        printf("  memory   RSS %.2f GiB (peak %.2f GiB); KV cache %.1f MiB per session\n",
               rss / 1048576.0, hwm / 1048576.0, kv_bytes / 1048576.0);
        if (c.on_gpu && c.gpu_total)
            printf("  gpu      %s: %.2f GiB used of %.2f GiB (model %.2f GiB, %d sessions %.2f GiB)\n",
                   gpu_desc, gpu_used / 1073741824.0, c.gpu_total / 1073741824.0,
                   gpu_model / 1073741824.0, main_r.n, gpu_sessions / 1073741824.0);
        printf("  setup    model %.1f s, sessions%s %.1f s\n", build_s, o.fill ? " + fill" : "", c.fill_s);
        if (sr) {
            printf("  find-max (doubling, then bisection; %d frames per probe; starts from the --sessions run if any):\n",
                   o.search_steps);
            for (int i = 0; i < sr->n_probes; i++)
                printf("    N=%-5d p99 %8.2f ms  %s\n", sr->probes[i].n, sr->probes[i].p99,
                       sr->probes[i].oom ? "out of memory"
                       : !sr->probes[i].ok ? "failed"
                       : realtime(&sr->probes[i]) ? "real time" : "too slow");
            printf("  largest real-time N: %d (p99 within 80 ms%s)\n", sr->best,
                   !sr->first_bad ? ", session limit reached"
                   : sr->mem_limited ? "; memory ran out above it" : "");
        }
    }
    free(sr);
    /* after the report: the profile's extra frames change no number above */
    const char *prof = getenv("XSWARM_CUDA_PROF");
    if (have_main && main_r.ok && c.on_gpu && prof && strcmp(prof, "0")) {
        fflush(stdout);
        if (profile_parts(&c, o.sessions)) ret = 1;
    }
done:
    pool_free(&c);
    free(c.audio);
    xswarm_model_free(c.m);
    xs_diag_random_free(c.rnd);
    if (c.be) xs_backend_close(c.be);
    free(b);
    return ret;
}
