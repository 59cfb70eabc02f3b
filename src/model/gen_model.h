/*
 * gen_model.h — write a whole model bundle with deterministic random weights
 * (`xswarm gen-model`): LM model.safetensors (PyTorch layout) + config.json,
 * Mimi tokenizer-e351c8d8-checkpoint125.safetensors + mimi_config.json, and a
 * small SentencePiece tokenizer_spm_32k_3.model trained on built-in text.
 *
 * Presets:
 *   tiny      the real architecture (Mimi strides 8,6,5,4 + downsample 2,
 *             8 of 16 codebooks; LM n_q 16, dep_q 8, delays [0,0,1x7,0,1x7])
 *             at small widths: a few MB, a turn runs in well under a second
 *             per second of audio on one core. The embedded default model.
 *   moshi-7b  the released shapes (7B LM, full Mimi): 8-15 GB written.
 *
 * Initialisation (why the codec gives diverse codes on speech): convs and
 * linears are fan-in scaled so activations stay O(1) (mimi_random_source);
 * then the encoder is run on a speech utterance and every codebook's
 * centroids are drawn from the latents it actually sees there (codebook 0
 * from rvq_first's projected latents, codebook k from the residuals left by
 * codebooks 1..k-1 of rvq_rest), plus noise. Default random centroids would
 * map every frame to the same code.
 */
#ifndef XS_MODEL_GEN_MODEL_H
#define XS_MODEL_GEN_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"
#include "core/tensor.h"

typedef struct xs_gen_opts {
    const char *preset;     /* "tiny" | "moshi-7b" */
    xs_dtype dtype;         /* LM weights: XS_F32 or XS_BF16 */
    uint64_t seed;
    const char *out_dir;    /* created if missing */
    const char *utterance;  /* speech for the codebooks (WAV); NULL: a synthetic vowel-like signal */
    bool progress;          /* progress lines on stderr */
    bool dry_run;           /* list the tensors and sizes (stderr), write only the configs */
} xs_gen_opts;

xs_status xs_gen_model(const xs_gen_opts *o);

/* File names inside a bundle. */
#define XS_GEN_LM_FILE "model.safetensors"
#define XS_GEN_MIMI_FILE "tokenizer-e351c8d8-checkpoint125.safetensors"
#define XS_GEN_SPM_FILE "tokenizer_spm_32k_3.model"

#endif
