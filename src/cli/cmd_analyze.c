/*
 * cmd_analyze.c — `xswarm analyze FILE... [--json] [--png OUT.png]
 * [--expect-text "..."]`: score speech 0-100 and name what is wrong.
 * Exit 0 whatever the score (it is a measurement); 1 on unreadable input,
 * 2 on usage errors.
 *
 * Also `xswarm analyze --corrupt KIND IN.wav OUT.wav [--seed N]`: writes one
 * of the calibration corruptions (see analyze.h) so a person can listen.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_raw.h"
#include "cli/cli.h"
#include "diag/analyze.h"

static void analyze_usage(FILE *f) {
    fprintf(f,
            "usage: xswarm analyze FILE... [--json] [--png OUT.png] [--expect-text \"...\"]\n"
            "       xswarm analyze --corrupt KIND IN.wav OUT.wav [--seed N]\n\n"
            "Scores speech audio 0-100 (clear >= 80) and names defects with evidence:\n"
            "  silence clipping dc_offset nonfinite too_short dropouts frame_discontinuity\n"
            "  time_reversed wrong_rate noise tonal garbled\n"
            "--json         one JSON object per file (an array for several files)\n"
            "--png OUT.png  waveform + spectrogram, 80 ms grid, defects marked\n"
            "               (several files: OUT-1.png, OUT-2.png, ...)\n"
            "--expect-text  word error rate with an offline recognizer (pocketsphinx);\n"
            "               skipped with a note when it is not installed\n"
            "--corrupt      calibration corruptions:");
    for (int i = 0; xs_an_corruptions[i]; i++) fprintf(f, " %s", xs_an_corruptions[i]);
    fprintf(f, "\nExit status 0 whatever the score; 1 if a file cannot be read.\n");
}

static int analyze_corrupt(int argc, char **argv) {
    const char *kind = NULL, *in = NULL, *outp = NULL;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--corrupt") && i + 1 < argc) kind = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else if (!in) in = argv[i];
        else if (!outp) outp = argv[i];
    }
    if (!kind || !in || !outp) {
        analyze_usage(stderr);
        return 2;
    }
    xs_audio a = {0};
    if (xs_audio_read(in, 0, &a, NULL) != XS_OK) return cli_fail("analyze --corrupt");
    float *y = NULL;
    int64_t ny = 0;
    xs_status rc = xs_an_corrupt(kind, a.pcm, a.n, a.sample_rate, seed, &y, &ny);
    if (rc == XS_OK) rc = xs_audio_write_wav(outp, y, ny, a.sample_rate, false);
    free(y);
    xs_audio_free(&a);
    return rc == XS_OK ? 0 : cli_fail("analyze --corrupt");
}

int cmd_analyze(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        analyze_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--corrupt")) return analyze_corrupt(argc, argv);
    bool json = false;
    const char *png = NULL, *expect = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    int nfiles = 0;
    if (!files) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "--png") && i + 1 < argc) png = argv[++i];
        else if (!strcmp(argv[i], "--expect-text") && i + 1 < argc) expect = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "xswarm analyze: unknown option '%s' (try --help)\n", argv[i]);
            free(files);
            return 2;
        } else files[nfiles++] = argv[i];
    }
    if (nfiles == 0) {
        analyze_usage(stderr);
        free(files);
        return 2;
    }
    const char *asr_note = NULL;
    if (expect && !xs_an_asr_available())
        asr_note = "intelligibility skipped: pocketsphinx with its en-us model is not installed "
                   "(Debian: pocketsphinx pocketsphinx-en-us)";
    int status = 0;
    cJSON *arr = json ? cJSON_CreateArray() : NULL;
    for (int fi = 0; fi < nfiles; fi++) {
        xs_audio au = {0};
        xs_audio_info info;
        xs_analysis *an = NULL;
        if (xs_audio_read_raw(files[fi], &au, &info) != XS_OK ||
            xs_analyze(au.pcm, au.n, au.sample_rate, &an) != XS_OK) {
            fprintf(stderr, "xswarm analyze: %s\n", xs_error_msg());
            xs_audio_free(&au);
            status = 1;
            continue;
        }
        xs_audio_free(&au);
        /* Intelligibility: recognized words against the expected text. */
        char hyp[4096] = "", note[256] = "";
        double wer = -1;
        if (expect && !asr_note) {
            if (xs_an_recognize(an, hyp, sizeof hyp) == XS_OK) {
                wer = xs_an_wer(expect, hyp);
                xs_an_fold_intelligibility(an, wer);
                snprintf(note, sizeof note, "intelligibility: WER %.0f%% (pocketsphinx en-us)", 100 * wer);
            } else {
                snprintf(note, sizeof note, "intelligibility skipped: %s", xs_error_msg());
            }
        } else if (asr_note) {
            snprintf(note, sizeof note, "%s", asr_note);
        }
        if (json) {
            char *s = xs_an_json(an, files[fi]);
            cJSON *o = s ? cJSON_Parse(s) : NULL;
            free(s);
            if (o && expect) {
                cJSON *it = cJSON_AddObjectToObject(o, "intelligibility");
                if (wer >= 0) {
                    cJSON_AddNumberToObject(it, "wer", (double)(long)(wer * 1000 + 0.5) / 1000);
                    cJSON_AddStringToObject(it, "recognized", hyp);
                    cJSON_AddStringToObject(it, "engine", "pocketsphinx en-us");
                } else {
                    cJSON_AddStringToObject(it, "skipped", note);
                }
            }
            if (o) cJSON_AddItemToArray(arr, o);
        } else {
            xs_an_print_text(an, files[fi], stdout);
            if (note[0]) printf("  %s\n", note);
            if (wer >= 0) printf("  recognized: \"%s\"\n", hyp);
        }
        if (png) {
            char path[4096];
            if (nfiles == 1) {
                snprintf(path, sizeof path, "%s", png);
            } else {
                const char *dot = strrchr(png, '.');
                int stem = dot ? (int)(dot - png) : (int)strlen(png);
                snprintf(path, sizeof path, "%.*s-%d%s", stem, png, fi + 1, dot ? dot : ".png");
            }
            if (xs_an_write_png(an, path, files[fi]) != XS_OK) {
                fprintf(stderr, "xswarm analyze: %s\n", xs_error_msg());
                status = 1;
            }
        }
        xs_analysis_free(an);
    }
    if (json) {
        cJSON *out = arr;
        if (nfiles == 1 && cJSON_GetArraySize(arr) == 1) out = cJSON_DetachItemFromArray(arr, 0);
        char *s = cJSON_PrintUnformatted(out);
        if (s) printf("%s\n", s);
        free(s);
        if (out != arr) cJSON_Delete(out);
        cJSON_Delete(arr);
    }
    free(files);
    return status;
}
