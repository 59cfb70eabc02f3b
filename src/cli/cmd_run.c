/*
 * cmd_run.c — `xswarm run IN -o OUT.wav`: one offline conversation turn,
 * Kyutai's run_inference.py loop (run_loop.c), with optional text, codes and
 * taps outputs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "cli/cli.h"
#include "cli/model_args.h"
#include "cli/run_loop.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: xswarm run [MODEL OPTIONS] IN -o OUT.wav [--text-out FILE]\n"
            "                  [--codes-out FILE.safetensors] [--dump-taps FILE]\n"
            "                  [--greedy | --seed N --temp T --topk K --text-temp T --text-topk K]\n"
            "                  [--backend ref|cpu|cuda] [--threads N] [--max-steps N]\n"
            "                  [--pad-silence SECONDS] [--float-wav]\n\n"
            "IN (any audio file; mixed to mono and resampled to 24 kHz, saying so) goes\n"
            "through Mimi and the Moshi LM frame by frame as Kyutai's run_inference.py does:\n"
            "whole 1920-sample frames only (the tail is dropped), the first frame's codes\n"
            "given to the LM twice, each LM output decoded at once. OUT gets the response\n"
            "(16-bit 24 kHz WAV, one frame per input frame; --float-wav: 32-bit float).\n"
            "  --text-out FILE     the response text (needs a tokenizer; without one: none)\n"
            "  --codes-out FILE    frame_codes, step_input_codes, step_out, step_out_valid,\n"
            "                      text_tokens (as golden/pipeline_tiny)\n"
            "  --dump-taps FILE    intermediate tensors of Mimi and the LM (safetensors)\n"
            "  --greedy            argmax everywhere; else sampling with the model's defaults\n"
            "                      (temp 0.8 top-k 250, text temp 0.7 top-k 25), --seed (42)\n"
            "  --max-steps N       stop after N input frames\n"
            "  --pad-silence S     append S seconds of silence so the model can answer (0)\n"
            "Ctrl-C stops after the current frame and writes what exists (exit status 1).\n\n");
    model_args_usage(f);
}

int cmd_run(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    cli_common common = {0};
    model_args ma = {0};
    samp_args sa = {0};
    const char *in = NULL, *out = NULL, *text_out = NULL, *codes_out = NULL, *taps_out = NULL;
    long max_steps = 0;
    double pad = 0;
    bool float_wav = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_common_parse(&common, argc, argv, &i);
        if (r == 0) r = model_args_parse(&ma, argc, argv, &i);
        if (r == 0) r = samp_args_parse(&sa, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(a, "--float-wav")) {
            float_wav = true;
            continue;
        }
        const char **slot = NULL;
        if (!strcmp(a, "-o") || !strcmp(a, "--output")) slot = &out;
        else if (!strcmp(a, "--text-out")) slot = &text_out;
        else if (!strcmp(a, "--codes-out")) slot = &codes_out;
        else if (!strcmp(a, "--dump-taps")) slot = &taps_out;
        if (slot || !strcmp(a, "--max-steps") || !strcmp(a, "--pad-silence")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "xswarm run: %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            char *end;
            if (slot) {
                *slot = v;
            } else if (!strcmp(a, "--max-steps")) {
                max_steps = strtol(v, &end, 10);
                if (*end || !*v || max_steps < 1) {
                    fprintf(stderr, "xswarm run: --max-steps must be a positive integer (got '%s')\n", v);
                    return 2;
                }
            } else {
                pad = strtod(v, &end);
                if (*end || !*v || !(pad >= 0 && pad <= 600)) {
                    fprintf(stderr, "xswarm run: --pad-silence must be 0..600 seconds (got '%s')\n", v);
                    return 2;
                }
            }
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "xswarm run: unknown option '%s' (try --help)\n", a);
            return 2;
        }
        if (in) {
            fprintf(stderr, "xswarm run: more than one input ('%s', '%s')\n", in, a);
            return 2;
        }
        in = a;
    }
    if (!in || !out) {
        fprintf(stderr, "xswarm run: need an input file and -o OUT.wav (try --help)\n");
        return 2;
    }
    xs_bundle *b = calloc(1, sizeof *b);
    if (!b) return cli_fail("out of memory");
    if (model_args_resolve(&ma, b)) {
        free(b);
        return 1;
    }
    if (!model_args_given(&ma)) {
        fprintf(stderr, "xswarm run: no model given: use --model DIR, --hf-repo kyutai/NAME, "
                        "$XSWARM_MODEL or --lm/--mimi (try --help)\n");
        free(b);
        return 2;
    }
    if (xs_bundle_check(b, true, true, false) != XS_OK) {
        free(b);
        return cli_fail("incomplete model");
    }
    float *pcm = NULL;
    int64_t n = 0;
    if (run_read_input(in, pad, &pcm, &n)) {
        free(b);
        return 1;
    }
    int rc = 0;
    xswarm_model *m = NULL;
    xs_taps *taps = NULL;
    run_result res = {0};
    xs_backend *be = cli_backend_open(&common);
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
    samp_args_apply(&sa, &m->lm->cfg, &o.samp);
    o.max_frames = max_steps;
    o.progress = n / XSWARM_FRAME_SAMPLES > 100;
    char desc[160];
    fprintf(stderr, "run: %s -> %s (backend %s, %d threads; %s; %s)\n", in, out,
            be->iface->name, be->n_threads, samp_describe(&o.samp, desc, sizeof desc),
            m->spm ? "text on" : "no tokenizer: no text");
    if (taps_out) {
        taps = xs_taps_new();
        if (!taps) {
            rc = cli_fail("out of memory");
            goto done;
        }
        o.taps = taps;
    }
    xs_status st = run_loop(m, pcm, n, &o, &res);
    if (st != XS_OK && !(st == XS_ERR_INTERRUPTED || res.n_frames > 0)) {
        rc = cli_fail("run failed");
        goto done;
    }
    if (st != XS_OK) {
        /* keep what exists: a partial answer is still worth listening to */
        rc = cli_fail(st == XS_ERR_INTERRUPTED ? "stopped" : "run failed");
        fprintf(stderr, "xswarm run: writing the partial results (%lld frames)\n",
                (long long)res.n_frames);
    }
    if (xs_audio_write_wav(out, res.pcm, res.n_pcm, XSWARM_SAMPLE_RATE, float_wav) != XS_OK) {
        rc = cli_fail("cannot write the response");
        goto done;
    }
    if (codes_out && run_write_codes(&res, codes_out) != XS_OK) rc = cli_fail("cannot write codes");
    if (taps && xs_taps_save(taps, taps_out) != XS_OK) rc = cli_fail("cannot write taps");
    if (text_out) {
        FILE *f = fopen(text_out, "w");
        if (!f || fprintf(f, "%s\n", res.text ? res.text : "") < 0 || fclose(f) != 0) {
            fprintf(stderr, "xswarm run: cannot write %s\n", text_out);
            rc = 1;
        }
        if (!m->spm) fprintf(stderr, "run: no tokenizer given: %s is empty\n", text_out);
    }
    if (m->spm && res.text && res.text[0]) printf("%s\n", res.text);
    fprintf(stderr, "run: %lld frames in, %lld LM steps, %.2f s of response -> %s\n",
            (long long)res.n_frames, (long long)res.n_steps,
            (double)res.n_pcm / XSWARM_SAMPLE_RATE, out);
done:
    run_result_free(&res);
    xs_taps_free(taps);
    xswarm_model_free(m);
    if (be) xs_backend_close(be);
    free(pcm);
    free(b);
    return rc;
}
