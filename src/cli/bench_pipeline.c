/*
 * bench_pipeline.c — `xswarm bench [pipeline]`: a whole conversation frame
 * (Mimi encode + LM step + Mimi decode) timed per part, p50/p99 over N
 * frames, and the real-time factor (frame time / 80 ms). Default model: the
 * embedded tiny bundle next to the binary; any bundle with MODEL OPTIONS.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "cli/cli.h"
#include "cli/model_args.h"
#include "cli/run_loop.h"
#include "diag/experiment.h"

#ifndef XS_SOURCE_DIR
#define XS_SOURCE_DIR "."
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: xswarm bench [pipeline] [MODEL OPTIONS] [--frames N] [--warmup N]\n"
            "                    [--backend ref|cpu|cuda] [--threads N] [--json]\n"
            "Runs N frames (default 100) of the test utterance (looped) through encode ->\n"
            "LM step -> decode, sampling with seed 42, and prints per-frame ms p50/p99 of\n"
            "each part and the real-time factor (total / 80 ms; < 1 is faster than real\n"
            "time). Default model: the embedded tiny bundle next to the binary.\n\n");
    model_args_usage(f);
}

static float *bench_input(int64_t n) {
    float *x = calloc((size_t)n, sizeof *x);
    if (!x) return NULL;
    char p[4096];
    snprintf(p, sizeof p, "%s/assets/test-utterance.wav", XS_SOURCE_DIR);
    xs_audio a = {0};
    if (access(p, R_OK) == 0 && xs_audio_read(p, 24000, &a, NULL) == XS_OK && a.n > 0) {
        for (int64_t i = 0; i < n; i++) x[i] = a.pcm[i % a.n];
        xs_audio_free(&a);
    } else {
        for (int64_t i = 0; i < n; i++) x[i] = 0.3f * sinf(2.0f * 3.14159265f * 220.0f * (float)i / 24000.0f);
    }
    return x;
}

int cmd_bench_pipeline(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    cli_common common = {0};
    model_args ma = {0};
    long frames = 100, warmup = 5;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_parse(&common, argc, argv, &i);
        if (r == 0) r = model_args_parse(&ma, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--json")) {
            json = true;
            continue;
        }
        if ((!strcmp(argv[i], "--frames") || !strcmp(argv[i], "--warmup")) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || v < 0 || v > 100000 || (!strcmp(argv[i], "--frames") && v < 1)) {
                fprintf(stderr, "xswarm bench pipeline: bad %s '%s'\n", argv[i], argv[i + 1]);
                return 2;
            }
            if (!strcmp(argv[i], "--frames")) frames = v;
            else warmup = v;
            i++;
            continue;
        }
        fprintf(stderr, "xswarm bench pipeline: unknown option '%s' (try --help)\n", argv[i]);
        return 2;
    }
    xs_bundle *b = calloc(1, sizeof *b);
    if (!b) return cli_fail("out of memory");
    bool embedded = !model_args_given(&ma);
    if (embedded) {
        if (model_args_embedded(&ma, b)) {
            free(b);
            return 1;
        }
    } else if (model_args_resolve(&ma, b)) {
        free(b);
        return 1;
    }
    int rc = 0;
    xs_backend *be = cli_backend_open(&common);
    xswarm_model *m = NULL;
    run_result res = {0};
    int64_t n = (int64_t)(frames + warmup) * XSWARM_FRAME_SAMPLES;
    float *pcm = bench_input(n);
    if (!be || !pcm) {
        rc = 1;
        goto done;
    }
    if (xs_pipe_model_load(be, b, &m) != XS_OK) {
        rc = cli_fail("cannot load the model");
        goto done;
    }
    run_opts o;
    memset(&o, 0, sizeof o);
    samp_args sa = {.seed_set = true, .seed = 42};
    samp_args_apply(&sa, &m->lm->cfg, &o.samp);
    if (run_loop(m, pcm, n, &o, &res) != XS_OK) {
        rc = cli_fail("bench run failed");
        goto done;
    }
    int64_t N = res.n_frames - warmup;
    const double *e = res.enc_ms + warmup, *l = res.lm_ms + warmup, *d = res.dec_ms + warmup;
    double *t = malloc((size_t)N * sizeof *t);
    if (!t) {
        rc = cli_fail("out of memory");
        goto done;
    }
    for (int64_t i = 0; i < N; i++) t[i] = e[i] + l[i] + d[i];
    double v[4][2] = {{xs_percentile(e, N, 50), xs_percentile(e, N, 99)},
                      {xs_percentile(l, N, 50), xs_percentile(l, N, 99)},
                      {xs_percentile(d, N, 50), xs_percentile(d, N, 99)},
                      {xs_percentile(t, N, 50), xs_percentile(t, N, 99)}};
    free(t);
    const char *names[4] = {"encode", "lm", "decode", "total"};
    const char *model = embedded ? "embedded tiny" : (b->dir[0] ? b->dir : b->lm);
    if (json) {
        printf("{\"bench\": \"pipeline\", \"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, "
               "\"frames\": %lld", model, be->iface->name, be->n_threads, (long long)N);
        for (int i = 0; i < 4; i++)
            printf(", \"%s_p50_ms\": %.3f, \"%s_p99_ms\": %.3f", names[i], v[i][0], names[i], v[i][1]);
        printf(", \"rtf_p50\": %.4f, \"rtf_p99\": %.4f}\n", v[3][0] / 80.0, v[3][1] / 80.0);
    } else {
        printf("pipeline bench: model %s, backend %s, %d threads, %lld frames (+%ld warm-up)\n",
               model, be->iface->name, be->n_threads, (long long)N, warmup);
        printf("  %-8s %10s %10s\n", "part", "p50 ms", "p99 ms");
        for (int i = 0; i < 4; i++) printf("  %-8s %10.3f %10.3f\n", names[i], v[i][0], v[i][1]);
        printf("  real-time factor: %.3f (p50), %.3f (p99) — a frame is 80 ms of audio\n",
               v[3][0] / 80.0, v[3][1] / 80.0);
    }
done:
    run_result_free(&res);
    xswarm_model_free(m);
    if (be) xs_backend_close(be);
    free(pcm);
    free(b);
    return rc;
}
