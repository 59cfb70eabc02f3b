/*
 * run_loop.c — the offline conversation loop (run_loop.h).
 */
#include "cli/run_loop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "cli/cli.h"
#include "formats/safetensors.h"

/* Set by SIGINT: the loop finishes the current frame, then stops. */
static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

void run_result_free(run_result *r) {
    free(r->pcm);
    free(r->frame_codes);
    free(r->step_in);
    free(r->step_out);
    free(r->step_valid);
    free(r->enc_ms);
    free(r->lm_ms);
    free(r->dec_ms);
    free(r->text);
    memset(r, 0, sizeof *r);
}

static int alloc_result(run_result *r, int64_t frames, int U, int D) {
    int64_t steps = frames + 1;
    r->user_codes = U;
    r->dep_q = D;
    r->pcm = calloc((size_t)(steps * XSWARM_FRAME_SAMPLES), sizeof(float));
    r->frame_codes = calloc((size_t)(frames * U) + 1, sizeof(int64_t));
    r->step_in = calloc((size_t)(steps * U), sizeof(int64_t));
    r->step_out = calloc((size_t)(steps * (1 + D)), sizeof(int64_t));
    r->step_valid = calloc((size_t)steps, 1);
    r->enc_ms = calloc((size_t)frames + 1, sizeof(double));
    r->lm_ms = calloc((size_t)frames + 1, sizeof(double));
    r->dec_ms = calloc((size_t)frames + 1, sizeof(double));
    return r->pcm && r->frame_codes && r->step_in && r->step_out && r->step_valid && r->enc_ms &&
           r->lm_ms && r->dec_ms;
}

xs_status run_loop(xswarm_model *m, const float *pcm, int64_t n, const run_opts *o, run_result *r) {
    memset(r, 0, sizeof *r);
    int64_t frames = n / XSWARM_FRAME_SAMPLES;
    if (o->max_frames > 0 && frames > o->max_frames) frames = o->max_frames;
    if (frames < 1)
        return xs_error(XS_ERR_ARG, "input has %lld samples: less than one 80 ms frame (%d "
                        "samples at 24 kHz); use --pad-silence to extend it", (long long)n,
                        XSWARM_FRAME_SAMPLES);
    int U = m->user_codes, D = m->dep_q;
    if (!alloc_result(r, frames, U, D)) {
        run_result_free(r);
        return xs_error(XS_ERR_NOMEM, "out of memory for %lld frames", (long long)frames);
    }
    xswarm_session *s = NULL;
    XS_TRY(xs_pipe_session_new(m, &o->samp, o->taps, &s));
    g_interrupted = 0;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);
    bool tty = isatty(2);
    xs_status rc = XS_OK;
    for (int64_t f = 0; f < frames; f++) {
        xs_pipe_frame_info info;
        rc = xs_pipe_session_frame(s, pcm + f * XSWARM_FRAME_SAMPLES, r->pcm + r->n_pcm, &info);
        if (rc != XS_OK) {
            xs_error_prefix(rc, "frame %lld: ", (long long)f);
            break;
        }
        for (int j = 0; j < U; j++) r->frame_codes[f * U + j] = info.frame_codes[j];
        for (int k = 0; k < info.n_steps; k++) {
            int64_t st = r->n_steps++;
            for (int j = 0; j < U; j++) r->step_in[st * U + j] = info.frame_codes[j];
            for (int j = 0; j <= D; j++) r->step_out[st * (1 + D) + j] = info.step_out[k][j];
            r->step_valid[st] = info.step_valid[k];
        }
        r->n_pcm += (int64_t)info.n_out_frames * XSWARM_FRAME_SAMPLES;
        r->enc_ms[f] = info.enc_ms;
        r->lm_ms[f] = info.lm_ms;
        r->dec_ms[f] = info.dec_ms;
        r->n_frames = f + 1;
        if (o->progress && (tty ? (f % 5 == 4 || f + 1 == frames) : (f % 50 == 49))) {
            fprintf(stderr, "%sframe %lld/%lld (%.1f s of audio)%s", tty ? "\r" : "",
                    (long long)(f + 1), (long long)frames, (f + 1) * 0.08,
                    tty && f + 1 < frames ? "" : "\n");
        }
        if (g_interrupted) {
            r->interrupted = true;
            if (o->progress && tty) fprintf(stderr, "\n");
            break;
        }
    }
    sigaction(SIGINT, &old, NULL);
    r->text = strdup(xs_pipe_session_text(s));
    xswarm_session_free(s);
    if (rc == XS_OK && !r->text) rc = xs_error(XS_ERR_NOMEM, "out of memory");
    if (rc == XS_OK && r->interrupted)
        rc = xs_error(XS_ERR_INTERRUPTED, "interrupted (Ctrl-C) after %lld of %lld frames",
                      (long long)r->n_frames, (long long)frames);
    return rc;
}

xs_status run_write_codes(const run_result *r, const char *path) {
    xs_st_writer *w = xs_st_writer_new();
    if (!w) return xs_error(XS_ERR_NOMEM, "out of memory");
    int U = r->user_codes, D = r->dep_q;
    int64_t s_fc[2] = {r->n_frames, U}, s_in[2] = {r->n_steps, U}, s_out[2] = {r->n_steps, 1 + D};
    int64_t s_v[1] = {r->n_steps};
    int64_t n_valid = 0;
    for (int64_t i = 0; i < r->n_steps; i++) n_valid += r->step_valid[i] != 0;
    int64_t *text = calloc((size_t)n_valid + 1, sizeof *text);
    xs_status rc = text ? XS_OK : xs_error(XS_ERR_NOMEM, "out of memory");
    for (int64_t i = 0, k = 0; text && i < r->n_steps; i++)
        if (r->step_valid[i]) text[k++] = r->step_out[i * (1 + D)];
    int64_t s_t[1] = {n_valid};
    if (rc == XS_OK) rc = xs_st_writer_add(w, "frame_codes", XS_I64, 2, s_fc, r->frame_codes);
    if (rc == XS_OK) rc = xs_st_writer_add(w, "step_input_codes", XS_I64, 2, s_in, r->step_in);
    if (rc == XS_OK) rc = xs_st_writer_add(w, "step_out", XS_I64, 2, s_out, r->step_out);
    if (rc == XS_OK) rc = xs_st_writer_add(w, "step_out_valid", XS_BOOL, 1, s_v, r->step_valid);
    if (rc == XS_OK) rc = xs_st_writer_add(w, "text_tokens", XS_I64, 1, s_t, text);
    if (rc == XS_OK) rc = xs_st_writer_set_metadata(w, "protocol", "moshi/run_inference.py loop");
    if (rc == XS_OK) rc = xs_st_writer_save(w, path);
    free(text);
    xs_st_writer_free(w);
    return rc;
}

xs_status run_write_timings(const run_result *r, const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return xs_error(XS_ERR_IO, "%s: cannot write", path);
    fprintf(f, "frame,lm_steps,encode_ms,lm_ms,decode_ms,total_ms\n");
    for (int64_t i = 0; i < r->n_frames; i++)
        fprintf(f, "%lld,%d,%.3f,%.3f,%.3f,%.3f\n", (long long)i, i == 0 ? 2 : 1, r->enc_ms[i],
                r->lm_ms[i], r->dec_ms[i], r->enc_ms[i] + r->lm_ms[i] + r->dec_ms[i]);
    if (fclose(f) != 0) return xs_error(XS_ERR_IO, "%s: write failed", path);
    return XS_OK;
}

int run_read_input(const char *path, double pad_silence, float **pcm, int64_t *n) {
    xs_audio a = {0};
    xs_audio_info info;
    memset(&info, 0, sizeof info);
    if (xs_audio_read(path, XSWARM_SAMPLE_RATE, &a, &info) != XS_OK)
        return cli_fail("cannot read the input audio");
    if (info.mixed_down)
        fprintf(stderr, "input: %s has %d channels: mixed down to mono\n", path,
                info.file_channels);
    if (info.resampled)
        fprintf(stderr, "input: %s is %d Hz: resampled to 24000 Hz\n", path, info.file_rate);
    double peak = 0;
    for (int64_t i = 0; i < a.n; i++) {
        double v = a.pcm[i] < 0 ? -a.pcm[i] : a.pcm[i];
        if (v > peak) peak = v;
    }
    if (peak < 1e-3) /* -60 dBFS: nothing but dither or hiss */
        fprintf(stderr, "input: %s is silence (peak %.1e): the model hears nobody speaking\n",
                path, peak);
    int64_t pad = (int64_t)(pad_silence * XSWARM_SAMPLE_RATE + 0.5);
    float *p = calloc((size_t)(a.n + pad) + 1, sizeof *p);
    if (!p) {
        xs_audio_free(&a);
        fprintf(stderr, "xswarm: out of memory for %lld samples\n", (long long)(a.n + pad));
        return 1;
    }
    memcpy(p, a.pcm, (size_t)a.n * sizeof *p);
    int64_t total = a.n + pad;
    int64_t tail = total % XSWARM_FRAME_SAMPLES;
    if (tail && total >= XSWARM_FRAME_SAMPLES)
        fprintf(stderr, "input: the last %lld samples (less than one 80 ms frame) are dropped, "
                        "as Kyutai's run_inference.py does\n", (long long)tail);
    xs_audio_free(&a);
    *pcm = p;
    *n = total;
    return 0;
}

static int parse_float(const char *flag, const char *v, float lo, float hi, float *out) {
    char *end;
    double d = strtod(v, &end);
    if (*end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "xswarm: %s must be a number in [%g, %g] (got '%s')\n", flag, lo, hi, v);
        return -1;
    }
    *out = (float)d;
    return 1;
}

static int parse_int(const char *flag, const char *v, long lo, long hi, long *out) {
    char *end;
    long d = strtol(v, &end, 10);
    if (*end || !*v || d < lo || d > hi) {
        fprintf(stderr, "xswarm: %s must be an integer in [%ld, %ld] (got '%s')\n", flag, lo, hi, v);
        return -1;
    }
    *out = d;
    return 1;
}

int samp_args_parse(samp_args *a, int argc, char **argv, int *i) {
    const char *f = argv[*i];
    if (!strcmp(f, "--greedy")) {
        a->greedy = true;
        return 1;
    }
    bool known = !strcmp(f, "--seed") || !strcmp(f, "--temp") || !strcmp(f, "--topk") ||
                 !strcmp(f, "--text-temp") || !strcmp(f, "--text-topk");
    if (!known) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "xswarm: %s needs a value\n", f);
        return -1;
    }
    const char *v = argv[++*i];
    long l;
    if (!strcmp(f, "--seed")) {
        char *end;
        unsigned long long s = strtoull(v, &end, 10);
        if (*end || !*v || v[0] == '-') {
            fprintf(stderr, "xswarm: --seed must be a non-negative integer (got '%s')\n", v);
            return -1;
        }
        a->seed = s;
        a->seed_set = true;
        return 1;
    }
    if (!strcmp(f, "--temp")) {
        a->temp_set = true;
        return parse_float(f, v, 1e-3f, 100.f, &a->temp);
    }
    if (!strcmp(f, "--text-temp")) {
        a->text_temp_set = true;
        return parse_float(f, v, 1e-3f, 100.f, &a->text_temp);
    }
    int r = parse_int(f, v, 0, 1 << 20, &l);
    if (r < 0) return r;
    if (!strcmp(f, "--topk")) {
        a->top_k = (int)l;
        a->top_k_set = true;
    } else {
        a->text_top_k = (int)l;
        a->text_top_k_set = true;
    }
    return 1;
}

void samp_args_apply(const samp_args *a, const lm_config *c, lm_sampling *out) {
    lm_sampling_from_config(out, c);
    out->seed = a->seed_set ? a->seed : 42;
    out->greedy = a->greedy;
    if (a->temp_set) out->temp = a->temp;
    if (a->text_temp_set) out->text_temp = a->text_temp;
    if (a->top_k_set) out->top_k = a->top_k;
    if (a->text_top_k_set) out->text_top_k = a->text_top_k;
}

const char *samp_describe(const lm_sampling *s, char *buf, size_t n) {
    if (s->greedy) snprintf(buf, n, "greedy (argmax)");
    else
        snprintf(buf, n, "temp %g top-k %d, text temp %g top-k %d, seed %llu", s->temp, s->top_k,
                 s->text_temp, s->text_top_k, (unsigned long long)s->seed);
    return buf;
}
