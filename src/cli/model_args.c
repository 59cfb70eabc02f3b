/*
 * model_args.c — MODEL OPTIONS parsing and resolution (model_args.h).
 */
#include "cli/model_args.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "model/gen_model.h"
#include "model/lm.h"

#ifndef XS_SOURCE_DIR
#define XS_SOURCE_DIR "."
#endif

int model_args_parse(model_args *a, int argc, char **argv, int *i) {
    static const struct { const char *flag; size_t off; } k_opts[] = {
        {"--model", offsetof(model_args, model_dir)},
        {"--hf-repo", offsetof(model_args, hf_repo)},
        {"--lm", offsetof(model_args, lm)},
        {"--config", offsetof(model_args, lm_config)},
        {"--lm-config", offsetof(model_args, lm_config)},
        {"--mimi", offsetof(model_args, mimi)},
        {"--mimi-config", offsetof(model_args, mimi_config)},
        {"--tokenizer", offsetof(model_args, tokenizer)},
        {"--kv", offsetof(model_args, kv)},
    };
    for (size_t k = 0; k < sizeof k_opts / sizeof k_opts[0]; k++) {
        if (strcmp(argv[*i], k_opts[k].flag)) continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "xswarm: %s needs a value\n", argv[*i]);
            return -1;
        }
        *(const char **)((char *)a + k_opts[k].off) = argv[++*i];
        if (a->kv && lm_kv_dtype_parse(a->kv) < 0) {
            fprintf(stderr, "xswarm: --kv must be f32, bf16 or q8 (got '%s')\n", a->kv);
            return -1;
        }
        return 1;
    }
    return 0;
}

static const char *env_model(void) {
    const char *v = getenv("XSWARM_MODEL");
    return v && *v ? v : NULL;
}

bool model_args_given(const model_args *a) {
    return a->model_dir || a->hf_repo || a->lm || a->mimi || a->tokenizer || env_model();
}

static void put(char *dst, const char *v) {
    if (v) snprintf(dst, XS_PATH_MAX, "%s", v);
}

/* --kv into the bundle (none: LM_KV_DEFAULT, resolved from the weights when
 * the LM is loaded); 1 (message printed) on a bad value. */
static int apply_kv(const model_args *a, xs_bundle *b) {
    const int dt = a->kv ? lm_kv_dtype_parse(a->kv) : (int)LM_KV_DEFAULT;
    if (dt < 0) {
        fprintf(stderr, "xswarm: --kv must be f32, bf16 or q8 (got '%s')\n", a->kv);
        return 1;
    }
    b->kv_dtype = dt;
    return 0;
}

int model_args_resolve(const model_args *a, xs_bundle *b) {
    memset(b, 0, sizeof *b);
    char dir[XS_PATH_MAX] = "";
    if (a->model_dir) {
        snprintf(dir, sizeof dir, "%s", a->model_dir);
    } else if (a->hf_repo) {
        if (xs_hf_snapshot_dir(a->hf_repo, dir, sizeof dir) != XS_OK) {
            cli_fail("--hf-repo");
            fprintf(stderr, "  (download it first, e.g. `huggingface-cli download %s`)\n", a->hf_repo);
            return 1;
        }
    } else if (env_model() && !a->lm && !a->mimi) {
        snprintf(dir, sizeof dir, "%s", env_model());
    }
    if (dir[0] && xs_bundle_from_dir(dir, b) != XS_OK) return cli_fail("model folder");
    put(b->lm, a->lm);
    put(b->lm_config, a->lm_config);
    put(b->mimi, a->mimi);
    put(b->mimi_config, a->mimi_config);
    put(b->tokenizer, a->tokenizer);
    return apply_kv(a, b);
}

void model_args_usage(void *stdio_file) {
    fprintf((FILE *)stdio_file,
            "MODEL OPTIONS:\n"
            "  --model DIR          a bundle folder laid out like a Hugging Face snapshot: LM\n"
            "                       model.safetensors | model.q8.gguf | model.q8.safetensors,\n"
            "                       Mimi tokenizer-*.safetensors, text tokenizer_spm_*.model,\n"
            "                       optional config.json (LM) and mimi_config.json\n"
            "  --hf-repo kyutai/X   that repo's snapshot in the local Hugging Face cache\n"
            "                       ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub; no network)\n"
            "  --lm FILE --config FILE --mimi FILE --mimi-config FILE --tokenizer FILE\n"
            "                       parts one by one (override the folder's)\n"
            "  --kv f32|bf16|q8     the LM's temporal KV cache. Default: the weights' precision,\n"
            "                       f32 for f32 weights, else bf16 (bf16/f16/q8_0/q4_0 files;\n"
            "                       diagnose: f32). bf16 halves f32's memory, q8 (Q8_0 blocks)\n"
            "                       takes 53%% of bf16's: the 7B at full context 0.84 GB, not 1.57\n"
            "  $XSWARM_MODEL        a bundle folder used when no --model / --hf-repo is given\n"
            "  Without a tokenizer the run produces no text (tokens are still in --codes-out).\n");
}

/* Folder of the running binary (for the embedded model next to it). */
static void exe_dir(char *out, size_t n) {
    char buf[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (k <= 0) {
        snprintf(out, n, ".");
        return;
    }
    buf[k] = 0;
    char *slash = strrchr(buf, '/');
    if (slash) *slash = 0;
    snprintf(out, n, "%s", buf);
}

static bool readable(const char *p) { return access(p, R_OK) == 0; }

void xs_find_test_utterance(char *out, size_t n) {
    char bin[PATH_MAX];
    exe_dir(bin, sizeof bin);
    const char *cands[3][2] = {{XS_SOURCE_DIR, "/assets/test-utterance.wav"},
                               {bin, "/test-utterance.wav"},
                               {bin, "/../assets/test-utterance.wav"}};
    for (int i = 0; i < 3; i++) {
        snprintf(out, n, "%s%s", cands[i][0], cands[i][1]);
        if (readable(out)) return;
    }
    out[0] = 0;
}

int model_args_embedded(const model_args *ma, xs_bundle *b) {
    char dir[XS_PATH_MAX];
    char bin[PATH_MAX];
    exe_dir(bin, sizeof bin);
    snprintf(dir, sizeof dir, "%s/tiny-model", bin);
    char probe[XS_PATH_MAX + 32];
    snprintf(probe, sizeof probe, "%s/%s", dir, XS_GEN_LM_FILE);
    if (!readable(probe)) {
        /* built without the CMake step (or removed): make it now, once */
        snprintf(dir, sizeof dir, "./tmp/tiny-model");
        snprintf(probe, sizeof probe, "%s/%s", dir, XS_GEN_LM_FILE);
        if (!readable(probe)) {
            fprintf(stderr, "dev: the embedded tiny model is missing next to the binary: "
                            "generating it in %s\n", dir);
            char utt[PATH_MAX];
            xs_find_test_utterance(utt, sizeof utt);
            xs_gen_opts g = {.preset = "tiny", .dtype = XS_F32, .seed = 1, .out_dir = dir,
                             .utterance = utt[0] ? utt : NULL, .progress = false};
            if (xs_gen_model(&g) != XS_OK) return cli_fail("cannot generate the tiny model");
        }
    }
    if (xs_bundle_from_dir(dir, b) != XS_OK) return cli_fail("embedded model");
    return apply_kv(ma, b);
}

/* Returns 0 and fills b, or 1 after printing why. */
int model_args_pick(const model_args *ma, xs_bundle *b, model_pick *kind) {
    if (model_args_given(ma)) {
        *kind = MODEL_PICK_GIVEN;
        return model_args_resolve(ma, b);
    }
    char dir[XS_PATH_MAX];
    if (xs_hf_find_moshi(dir, sizeof dir) == XS_OK && xs_bundle_from_dir(dir, b) == XS_OK) {
        *kind = MODEL_PICK_HF_CACHE;
        return apply_kv(ma, b);
    }
    *kind = MODEL_PICK_EMBEDDED;
    return model_args_embedded(ma, b);
}
