/*
 * cmd_dev.c — `xswarm --dev`, the entry the seed's users type.
 *
 * With MOSHI_TEST_MODE=1: one deterministic conversation turn. The built-in
 * test utterance + 4 s of silence goes in; the response goes to
 * ./tmp/moshi-response.wav and a new ./tmp/experiments/<UTC stamp>-<backend>/
 * gets input.wav, response.wav, codes.safetensors, text.txt, timings.csv and
 * report.json (settings, model files + SHA-256, p50/p99 timings, analysis).
 * MOSHI_USE_CPU=1 forces the CPU backend; otherwise CUDA when usable.
 * Model: --model / --hf-repo / $XSWARM_MODEL; else the first Kyutai Moshi
 * snapshot in the Hugging Face cache; else the embedded tiny random bundle
 * (generated at build time next to the binary), said plainly.
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "cli/cli.h"
#include "cli/model_args.h"
#include "cli/run_loop.h"
#include "diag/analyze.h"
#include "diag/experiment.h"
#include "model/gen_model.h"

#ifndef XS_SOURCE_DIR
#define XS_SOURCE_DIR "."
#endif

#define DEV_SEED 42
#define DEV_PAD_SECONDS 4.0

static void usage(FILE *f) {
    fprintf(f,
            "usage: MOSHI_TEST_MODE=1 [MOSHI_USE_CPU=1] xswarm --dev [MODEL OPTIONS]\n"
            "                         [--backend ref|cpu|cuda] [--threads N] [--input FILE]\n\n"
            "Test mode: one deterministic turn (built-in test utterance + 4 s of silence,\n"
            "sampling with seed 42). Writes ./tmp/moshi-response.wav and\n"
            "./tmp/experiments/<YYYYmmdd-HHMMSS UTC>-<backend>/ (input.wav, response.wav,\n"
            "codes.safetensors, text.txt, timings.csv, report.json).\n"
            "Model: MODEL OPTIONS, else the first kyutai Moshi snapshot in the Hugging Face\n"
            "cache, else the embedded tiny random model (pipeline check only, not speech).\n\n");
    model_args_usage(f);
}

/* Which backend, and why (printed and reported). */
static const char *choose_backend(const cli_common *c, char *why, size_t n) {
    const char *cpu_env = getenv("MOSHI_USE_CPU");
    if (cpu_env && !strcmp(cpu_env, "1")) {
        snprintf(why, n, "MOSHI_USE_CPU=1 forces the CPU");
        return "cpu";
    }
    if (c->backend) {
        snprintf(why, n, "--backend %s", c->backend);
        return c->backend;
    }
    char reason[256] = "";
    if (xs_backend_cuda_usable(reason, sizeof reason)) {
        snprintf(why, n, "CUDA device usable (%s)", reason);
        return "cuda";
    }
    snprintf(why, n, "no usable CUDA device (%s)", reason[0] ? reason : "not built with CUDA");
    return "cpu";
}

static void add_file(cJSON *obj, const char *key, const char *path, bool hash) {
    if (!path || !path[0]) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    cJSON *f = cJSON_AddObjectToObject(obj, key);
    char real[PATH_MAX];
    cJSON_AddStringToObject(f, "path", realpath(path, real) ? real : path);
    char hex[65];
    if (hash && xs_sha256_file(path, hex) == XS_OK) cJSON_AddStringToObject(f, "sha256", hex);
}

static void add_pct(cJSON *t, const char *key, const double *v, int64_t n) {
    cJSON *o = cJSON_AddObjectToObject(t, key);
    cJSON_AddNumberToObject(o, "p50_ms", xs_percentile(v, n, 50));
    cJSON_AddNumberToObject(o, "p99_ms", xs_percentile(v, n, 99));
}

static xs_status write_report(const char *path, cJSON *root) {
    char *s = cJSON_Print(root);
    if (!s) return xs_error(XS_ERR_NOMEM, "out of memory");
    FILE *f = fopen(path, "w");
    bool ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0) ok = false;
    free(s);
    return ok ? XS_OK : xs_error(XS_ERR_IO, "%s: cannot write", path);
}

static void print_live_modes(void) {
    fprintf(stderr,
            "xswarm --dev: MOSHI_TEST_MODE is not set.\n"
            "  Test mode (one deterministic turn, experiment folder in ./tmp):\n"
            "      MOSHI_TEST_MODE=1 xswarm --dev        (MOSHI_USE_CPU=1 forces the CPU)\n"
            "  Live modes:\n"
            "      xswarm serve [MODEL OPTIONS]          WebSocket server + web UI (Kyutai protocol)\n"
            "      xswarm run [MODEL OPTIONS] IN -o OUT.wav   one turn from a file\n");
}

int cmd_dev(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    cli_common common = {0};
    model_args ma = {0};
    const char *input = NULL;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_parse(&common, argc, argv, &i);
        if (r == 0) r = model_args_parse(&ma, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--input") && i + 1 < argc) {
            input = argv[++i];
            continue;
        }
        fprintf(stderr, "xswarm --dev: unknown option '%s' (try --help)\n", argv[i]);
        return 2;
    }
    const char *tm = getenv("MOSHI_TEST_MODE");
    if (!tm || strcmp(tm, "1")) {
        print_live_modes();
        return 2;
    }
    /* backend */
    char why[400];
    const char *be_name = choose_backend(&common, why, sizeof why);
    printf("backend: %s — %s\n", be_name, why);
    /* model */
    xs_bundle *b = calloc(1, sizeof *b);
    if (!b) return cli_fail("out of memory");
    model_pick kind;
    if (model_args_pick(&ma, b, &kind)) {
        free(b);
        return 1;
    }
    if (kind == MODEL_PICK_EMBEDDED) {
        printf("\n*** No Moshi weights were found (no --model/--hf-repo/$XSWARM_MODEL, nothing in\n"
               "*** the Hugging Face cache). The pipeline and diagnostics run on the EMBEDDED\n"
               "*** TINY RANDOM MODEL (%s): its audio is NOT speech.\n"
               "*** For the real model:  huggingface-cli download kyutai/moshiko-candle-q8\n"
               "***                then  MOSHI_TEST_MODE=1 xswarm --dev --hf-repo kyutai/moshiko-candle-q8\n\n",
               b->dir);
    } else {
        printf("model: %s%s\n", b->dir[0] ? b->dir : b->lm,
               kind == MODEL_PICK_HF_CACHE ? " (found in the Hugging Face cache)" : "");
    }
    if (xs_bundle_check(b, true, true, false) != XS_OK) {
        free(b);
        return cli_fail("incomplete model");
    }
    /* input */
    char utt[PATH_MAX];
    if (input) snprintf(utt, sizeof utt, "%s", input);
    else xs_find_test_utterance(utt, sizeof utt);
    if (!utt[0]) {
        fprintf(stderr, "xswarm --dev: the test utterance assets/test-utterance.wav was not found "
                        "(looked in %s and next to the binary)\n", XS_SOURCE_DIR);
        free(b);
        return 1;
    }
    float *pcm = NULL;
    int64_t n = 0;
    if (run_read_input(utt, DEV_PAD_SECONDS, &pcm, &n)) {
        free(b);
        return 1;
    }
    int rc = 0;
    common.backend = be_name;
    xs_backend *be = cli_backend_open(&common);
    xswarm_model *m = NULL;
    run_result res = {0};
    cJSON *root = NULL;
    if (!be) {
        rc = 1;
        goto done;
    }
    if (xs_pipe_model_load(be, b, &m) != XS_OK) {
        rc = cli_fail("cannot load the model");
        goto done;
    }
    run_opts o;
    memset(&o, 0, sizeof o);
    samp_args sa = {.seed_set = true, .seed = DEV_SEED};
    samp_args_apply(&sa, &m->lm->cfg, &o.samp);
    o.progress = true;
    char desc[160];
    printf("input: %s + %.0f s of silence (%.2f s); sampling: %s; %d threads\n", utt,
           DEV_PAD_SECONDS, (double)n / XSWARM_SAMPLE_RATE, samp_describe(&o.samp, desc, sizeof desc),
           be->n_threads);
    fflush(stdout);
    xs_status st = run_loop(m, pcm, n, &o, &res);
    bool interrupted = st == XS_ERR_INTERRUPTED;
    if (st != XS_OK && !interrupted) {
        rc = cli_fail("test turn failed");
        if (res.n_frames == 0) goto done;
    }
    if (interrupted) {
        fprintf(stderr, "xswarm --dev: interrupted (Ctrl-C) after %lld frames: writing a PARTIAL "
                        "experiment folder\n", (long long)res.n_frames);
        rc = 1;
    }
    /* outputs */
    char dir[XS_PATH_MAX], p[XS_PATH_MAX + 64];
    if (xs_mkdir_p("./tmp") != XS_OK ||
        xs_experiment_create("./tmp/experiments", be->iface->name, dir, sizeof dir) != XS_OK) {
        rc = cli_fail("cannot create the experiment folder");
        goto done;
    }
    int64_t n_in = res.n_frames * XSWARM_FRAME_SAMPLES;
    xs_status w = xs_audio_write_wav("./tmp/moshi-response.wav", res.pcm, res.n_pcm, 24000, false);
    snprintf(p, sizeof p, "%s/response.wav", dir);
    if (w == XS_OK) w = xs_audio_write_wav(p, res.pcm, res.n_pcm, 24000, false);
    snprintf(p, sizeof p, "%s/input.wav", dir);
    if (w == XS_OK) w = xs_audio_write_wav(p, pcm, n_in, 24000, false);
    snprintf(p, sizeof p, "%s/codes.safetensors", dir);
    if (w == XS_OK) w = run_write_codes(&res, p);
    snprintf(p, sizeof p, "%s/timings.csv", dir);
    if (w == XS_OK) w = run_write_timings(&res, p);
    snprintf(p, sizeof p, "%s/text.txt", dir);
    FILE *tf = w == XS_OK ? fopen(p, "w") : NULL;
    if (tf) {
        fprintf(tf, "%s\n", m->spm ? res.text : "(no tokenizer in this bundle: no text)");
        fclose(tf);
    }
    if (w != XS_OK) {
        rc = cli_fail("cannot write the outputs");
        goto done;
    }
    /* report */
    root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "version", xswarm_version());
    time_t now = time(NULL);
    struct tm tmv;
    char stamp[32];
    gmtime_r(&now, &tmv);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    cJSON_AddStringToObject(root, "created_utc", stamp);
    cJSON_AddStringToObject(root, "backend", be->iface->name);
    cJSON_AddStringToObject(root, "backend_reason", why);
    cJSON_AddNumberToObject(root, "threads", be->n_threads);
    cJSON_AddNumberToObject(root, "seed", (double)o.samp.seed);
    cJSON *sm = cJSON_AddObjectToObject(root, "sampling");
    cJSON_AddBoolToObject(sm, "greedy", o.samp.greedy);
    cJSON_AddNumberToObject(sm, "temp", o.samp.temp);
    cJSON_AddNumberToObject(sm, "top_k", o.samp.top_k);
    cJSON_AddNumberToObject(sm, "text_temp", o.samp.text_temp);
    cJSON_AddNumberToObject(sm, "text_top_k", o.samp.text_top_k);
    cJSON *mo = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(mo, "source", kind == MODEL_PICK_EMBEDDED ? "embedded tiny random model (not speech)"
                                          : kind == MODEL_PICK_HF_CACHE ? "Hugging Face cache" : "given");
    if (b->dir[0]) cJSON_AddStringToObject(mo, "dir", b->dir);
    printf("hashing the model files (SHA-256)...\n");
    fflush(stdout);
    add_file(mo, "lm", b->lm, true);
    add_file(mo, "lm_config", b->lm_config, true);
    add_file(mo, "mimi", b->mimi, true);
    add_file(mo, "mimi_config", b->mimi_config, true);
    add_file(mo, "tokenizer", b->tokenizer, true);
    cJSON *in = cJSON_AddObjectToObject(root, "input");
    add_file(in, "utterance", utt, true);
    cJSON_AddNumberToObject(in, "pad_silence_s", DEV_PAD_SECONDS);
    cJSON_AddNumberToObject(in, "frames", (double)res.n_frames);
    cJSON_AddNumberToObject(root, "lm_steps", (double)res.n_steps);
    cJSON_AddNumberToObject(root, "response_seconds", (double)res.n_pcm / XSWARM_SAMPLE_RATE);
    cJSON_AddStringToObject(root, "text", m->spm ? res.text : "");
    cJSON_AddBoolToObject(root, "interrupted", interrupted);
    cJSON *ti = cJSON_AddObjectToObject(root, "timings");
    double *tot = malloc((size_t)(res.n_frames + 1) * sizeof *tot);
    double p50 = 0, p99 = 0;
    if (tot && res.n_frames > 0) {
        for (int64_t i = 0; i < res.n_frames; i++) tot[i] = res.enc_ms[i] + res.lm_ms[i] + res.dec_ms[i];
        add_pct(ti, "encode", res.enc_ms, res.n_frames);
        add_pct(ti, "lm", res.lm_ms, res.n_frames);
        add_pct(ti, "decode", res.dec_ms, res.n_frames);
        add_pct(ti, "total", tot, res.n_frames);
        p50 = xs_percentile(tot, res.n_frames, 50);
        p99 = xs_percentile(tot, res.n_frames, 99);
        cJSON_AddNumberToObject(ti, "realtime_factor_p50", p50 / 80.0);
    }
    free(tot);
    /* analysis of the response (the analyzer, diag/analyze.h) */
    xs_analysis *an = NULL;
    if (res.n_pcm > 0 && xs_analyze(res.pcm, res.n_pcm, 24000, &an) == XS_OK) {
        char *js = xs_an_json(an, "response.wav");
        cJSON *aj = js ? cJSON_Parse(js) : NULL;
        if (aj) cJSON_AddItemToObject(root, "analysis", aj);
        free(js);
        printf("analysis: score %.0f/100, verdict %s%s\n", an->score, xs_an_verdict_str(an->verdict),
               kind == MODEL_PICK_EMBEDDED ? " (expected: the tiny model is random)" : "");
        xs_analysis_free(an);
    } else {
        cJSON_AddNullToObject(root, "analysis");
    }
    snprintf(p, sizeof p, "%s/report.json", dir);
    if (write_report(p, root) != XS_OK) rc = cli_fail("cannot write report.json");
    if (m->spm) printf("text: %s\n", res.text[0] ? res.text : "(none)");
    else printf("text: none (no tokenizer in this bundle)\n");
    printf("timings per frame: p50 %.2f ms, p99 %.2f ms (real time needs < 80 ms)\n", p50, p99);
    printf("response: ./tmp/moshi-response.wav (%.2f s, 24 kHz mono)\n",
           (double)res.n_pcm / XSWARM_SAMPLE_RATE);
    printf("experiment: %s%s\n", dir, interrupted ? " (PARTIAL: interrupted)" : "");
done:
    cJSON_Delete(root);
    run_result_free(&res);
    xswarm_model_free(m);
    if (be) xs_backend_close(be);
    free(pcm);
    free(b);
    return rc;
}
