/*
 * bundle.h — where the parts of a model come from.
 *
 * A bundle is a folder laid out like a Hugging Face snapshot of a Kyutai
 * repo: LM weights (model.safetensors | model.q8.gguf | model.q8.safetensors
 * | model.*), Mimi weights (tokenizer-*.safetensors), the text tokenizer
 * (tokenizer_spm_*.model), optional config.json (LM) and mimi_config.json.
 * Parts given one by one (--lm, --mimi, ...) override the folder's.
 */
#ifndef XS_MODEL_BUNDLE_H
#define XS_MODEL_BUNDLE_H

#include <stdbool.h>

#include "core/status.h"

#define XS_PATH_MAX 4096

typedef struct xs_bundle {
    char dir[XS_PATH_MAX];          /* "" when parts were given one by one */
    char lm[XS_PATH_MAX];           /* "" = absent */
    char lm_config[XS_PATH_MAX];
    char mimi[XS_PATH_MAX];
    char mimi_config[XS_PATH_MAX];
    char tokenizer[XS_PATH_MAX];
    int kv_dtype;                   /* temporal KV cache: XS_F32 (0), XS_BF16, XS_Q8_0 or
                                       LM_KV_DEFAULT (lm.h: the CLI's choice without --kv) */
} xs_bundle;

/* Fill the parts found in dir (missing ones stay ""). XS_ERR_NOT_FOUND if
 * dir is not a readable folder. */
xs_status xs_bundle_from_dir(const char *dir, xs_bundle *b);
/* Snapshot folder of repo ("kyutai/moshiko-candle-q8") in the local Hugging
 * Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub),
 * without network: refs/main if present, else the newest snapshot. */
xs_status xs_hf_snapshot_dir(const char *repo, char *out, size_t n);
/* First Kyutai Moshi snapshot (models--kyutai--moshi*) in the cache that has
 * LM weights, or XS_ERR_NOT_FOUND. */
xs_status xs_hf_find_moshi(char *out, size_t n);
/* XS_ERR_NOT_FOUND naming the first missing part among those required. */
xs_status xs_bundle_check(const xs_bundle *b, bool need_lm, bool need_mimi, bool need_tokenizer);

#endif
