/*
 * cmd_gen_model.c — `xswarm gen-model`: write a bundle with deterministic
 * random weights (model/gen_model.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/gen_model.h"

#ifndef XS_SOURCE_DIR
#define XS_SOURCE_DIR "."
#endif

static void usage(FILE *f) {
    fprintf(f,
            "usage: xswarm gen-model --preset tiny|moshi-7b [--dtype f32|bf16] [--seed N]\n"
            "                        [--utterance FILE.wav] [--dry-run] -o DIR\n\n"
            "Writes a model bundle with deterministic random weights: config.json +\n"
            "model.safetensors (LM, PyTorch layout), mimi_config.json +\n"
            "tokenizer-e351c8d8-checkpoint125.safetensors (Mimi), tokenizer_spm_32k_3.model\n"
            "(SentencePiece, trained on built-in English sentences).\n"
            "  tiny      the real architecture at small widths (~3 MB; the embedded default)\n"
            "  moshi-7b  the released shapes: ~15 GB in bf16, ~30 GB in f32 (progress shown)\n"
            "Mimi's codebooks are drawn from the encoder's latents on speech (--utterance,\n"
            "default assets/test-utterance.wav) so that speech gives diverse codes.\n"
            "--dtype q8_0 | q4_0: the LM is written as safetensors, then converted by\n"
            "`xswarm quantize` to model.q8.gguf / model.q4.gguf (candle layout, as Kyutai's\n"
            "*-candle-q8 repos); the safetensors is removed afterwards.\n"
            "--dry-run: write the configs, list tensor counts and sizes, write no weights.\n");
}

int cmd_gen_model(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    xs_gen_opts o = {.preset = NULL, .dtype = XS_F32, .seed = 1, .progress = true};
    const char *utt = NULL, *quant = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o.progress = false;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            o.dry_run = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "xswarm gen-model: unknown option or missing value '%s' (try --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--preset")) {
            o.preset = v;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            o.out_dir = v;
        } else if (!strcmp(a, "--utterance")) {
            utt = v;
        } else if (!strcmp(a, "--dtype")) {
            int d = xs_dtype_from_name(v);
            if (d != XS_F32 && d != XS_BF16 && d != XS_Q8_0 && d != XS_Q4_0) {
                fprintf(stderr, "xswarm gen-model: --dtype must be f32, bf16, q8_0 or q4_0 (got '%s')\n", v);
                return 2;
            }
            if (d == XS_Q8_0 || d == XS_Q4_0) quant = v;
            else o.dtype = (xs_dtype)d;
        } else if (!strcmp(a, "--seed")) {
            char *end;
            o.seed = strtoull(v, &end, 10);
            if (*end || !*v || v[0] == '-') {
                fprintf(stderr, "xswarm gen-model: --seed must be a non-negative integer\n");
                return 2;
            }
        } else {
            fprintf(stderr, "xswarm gen-model: unknown option '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (!o.preset || !o.out_dir) {
        fprintf(stderr, "xswarm gen-model: --preset tiny|moshi-7b and -o DIR are required\n");
        return 2;
    }
    if (strcmp(o.preset, "tiny") && strcmp(o.preset, "moshi-7b")) {
        fprintf(stderr, "xswarm gen-model: unknown preset '%s' (tiny or moshi-7b)\n", o.preset);
        return 2;
    }
    /* the test utterance: from the source tree, else none (synthetic signal) */
    char def[4096];
    if (!utt) {
        snprintf(def, sizeof def, "%s/assets/test-utterance.wav", XS_SOURCE_DIR);
        if (access(def, R_OK) == 0) utt = def;
        else if (o.progress)
            fprintf(stderr, "gen-model: %s not found: codebooks from a synthetic voice-like signal\n", def);
    }
    o.utterance = utt;
    if (!strcmp(o.preset, "moshi-7b") && !o.dry_run)
        fprintf(stderr, "gen-model: moshi-7b writes %s GB to %s: this takes a while\n",
                o.dtype == XS_BF16 ? "~15" : "~30", o.out_dir);
    /* q8_0 / q4_0: generate the PyTorch-layout safetensors, then convert it
     * with `xswarm quantize` to the candle-layout GGUF Kyutai's q8 repos ship */
    if (quant && !strcmp(o.preset, "moshi-7b")) o.dtype = XS_BF16; /* half the transient disk */
    if (xs_gen_model(&o) != XS_OK) return cli_fail("gen-model");
    if (quant && !o.dry_run) {
        char st[4096], gg[4096], cfg[4096], type[8];
        snprintf(st, sizeof st, "%s/%s", o.out_dir, XS_GEN_LM_FILE);
        snprintf(gg, sizeof gg, "%s/model.%s.gguf", o.out_dir, !strcmp(quant, "q8_0") ? "q8" : "q4");
        snprintf(cfg, sizeof cfg, "%s/config.json", o.out_dir);
        snprintf(type, sizeof type, "%s", quant);
        char *qargv[] = {"quantize", st, gg, "--type", type, "--config", cfg, NULL};
        int qrc = cmd_quantize(7, qargv);
        if (qrc != 0) {
            fprintf(stderr, "xswarm gen-model: quantizing %s to %s failed\n", st, gg);
            return 1;
        }
        if (remove(st) != 0) fprintf(stderr, "xswarm gen-model: could not remove %s\n", st);
        if (o.progress) fprintf(stderr, "gen-model: LM quantized to %s (%s, candle layout)\n", gg, quant);
    }
    if (o.progress)
        fprintf(stderr, "gen-model: %s %s %s (seed %llu)\n", o.preset,
                o.dry_run ? "bundle planned (dry run, configs only) in" : "bundle written to",
                o.out_dir, (unsigned long long)o.seed);
    return 0;
}
