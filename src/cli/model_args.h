/*
 * model_args.h — the MODEL OPTIONS shared by run, --dev, bench and diagnose:
 *   --model DIR          a bundle folder (laid out like a Hugging Face snapshot)
 *   --hf-repo kyutai/X   that repo's snapshot in the local Hugging Face cache
 *   --lm FILE --config FILE --mimi FILE --mimi-config FILE --tokenizer FILE
 *                        parts one by one (override the folder's)
 *   --kv f32|bf16|q8     the LM's temporal KV cache (default: lm_kv_dtype_default)
 *   $XSWARM_MODEL        a bundle folder when neither --model nor --hf-repo
 */
#ifndef XS_CLI_MODEL_ARGS_H
#define XS_CLI_MODEL_ARGS_H

#include <stdbool.h>

#include "model/bundle.h"

typedef struct model_args {
    const char *model_dir, *hf_repo;
    const char *lm, *lm_config, *mimi, *mimi_config, *tokenizer;
    const char *kv; /* --kv f32|bf16|q8: the LM's temporal KV cache (NULL: the
                       model's default, lm_kv_dtype_default) */
} model_args;

/* If argv[*i] is a model option, consume it and its value, advance *i and
 * return 1; 0 when it is not one; -1 (message printed) on a missing value. */
int model_args_parse(model_args *a, int argc, char **argv, int *i);

/* True when any model option (or $XSWARM_MODEL) was given. */
bool model_args_given(const model_args *a);

/* Fill b: the folder (--model, --hf-repo, else $XSWARM_MODEL) then the parts
 * given one by one. Returns 0, or 1 after printing why (folder missing,
 * repo not in the cache). Does not check that the parts exist. */
int model_args_resolve(const model_args *a, xs_bundle *b);

typedef enum model_pick {
    MODEL_PICK_GIVEN,     /* model options or $XSWARM_MODEL */
    MODEL_PICK_HF_CACHE,  /* the first kyutai Moshi snapshot in the HF cache */
    MODEL_PICK_EMBEDDED   /* the tiny random bundle made at build time */
} model_pick;

/* The model `xswarm --dev` runs (and `diagnose` defaults to): the given
 * options, else the first Moshi snapshot in the Hugging Face cache, else the
 * embedded tiny bundle next to the binary (generated into ./tmp/tiny-model
 * if missing). Returns 0, or 1 after printing why. */
/* The embedded tiny bundle next to the binary (made into ./tmp/tiny-model
 * when missing), with ma's --kv applied. Returns 0, or 1 after printing why. */
int model_args_embedded(const model_args *ma, xs_bundle *b);
int model_args_pick(const model_args *a, xs_bundle *b, model_pick *kind);

/* Path of the built-in test utterance (assets/test-utterance.wav), or "". */
void xs_find_test_utterance(char *out, size_t n);

/* Print the help paragraph of the model options. */
void model_args_usage(void *stdio_file);

#endif
