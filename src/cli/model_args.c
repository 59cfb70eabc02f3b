/*
 * model_args.c — MODEL OPTIONS parsing and resolution (model_args.h).
 */
#include "cli/model_args.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

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
    };
    for (size_t k = 0; k < sizeof k_opts / sizeof k_opts[0]; k++) {
        if (strcmp(argv[*i], k_opts[k].flag)) continue;
        if (*i + 1 >= argc) {
            fprintf(stderr, "xswarm: %s needs a value\n", argv[*i]);
            return -1;
        }
        *(const char **)((char *)a + k_opts[k].off) = argv[++*i];
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
    return 0;
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
            "  $XSWARM_MODEL        a bundle folder used when no --model / --hf-repo is given\n"
            "  Without a tokenizer the run produces no text (tokens are still in --codes-out).\n");
}
