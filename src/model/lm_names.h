/*
 * lm_names.h — the candle-layout tensors of a Moshi LM and where each one
 * comes from in Kyutai's PyTorch-layout checkpoint.
 *
 * candle (Kyutai's scripts/import_rust.py) splits the depth transformer per
 * step k: the fused per-layer attention weights (all steps stacked along dim
 * 0) become one tensor per step, the per-step FFNs are renamed, the shared
 * norms are repeated for every step, and the input/output heads and
 * embeddings are renamed. Everything else keeps its name. See
 * shared/golden/lm_tiny_candle_q8/README.md section 3 (tiny model) and
 * real_checkpoints/moshi_7b_candle.json (the released Moshiko, with source
 * tensor and row range of every tensor).
 *
 * Use: lm_names_candle_plan() lists the tensors from the configuration alone
 * (no file needed, so the mapping can be checked against listings);
 * lm_names_check() verifies a PyTorch-layout file against the plan (every
 * source present with the expected shape and a float dtype, and no file
 * tensor left unused, so a conversion never drops weights silently);
 * lm_names_read_f32() then produces one tensor's f32 values on demand, so a
 * converter holds only one tensor in memory at a time.
 */
#ifndef XS_MODEL_LM_NAMES_H
#define XS_MODEL_LM_NAMES_H

#include "formats/weights.h"
#include "model/lm.h"

#define LM_NAME_MAX 160

typedef struct lm_name_entry {
    char name[LM_NAME_MAX];   /* candle-layout name */
    int ndim;
    int64_t shape[XS_MAX_DIMS]; /* candle shape, PyTorch order */
    char source[LM_NAME_MAX]; /* PyTorch-layout tensor the values come from */
    int src_ndim;
    int64_t src_shape[XS_MAX_DIMS]; /* expected shape of `source` */
    int64_t row0;             /* first row (dim 0) of `source` taken; the
                               * entry's numel values follow contiguously */
} lm_name_entry;

typedef struct lm_name_plan {
    lm_name_entry *e;
    int n;
} lm_name_plan;

/* The candle-layout tensors of a model with configuration c, in build
 * order. Supported: Moshi's structure (gating FFNs, RMSNorm, per-step
 * depformer weights without a schedule, one depformer_in per step, no
 * low-rank embeddings); anything else is XS_ERR_UNSUPPORTED naming the
 * configuration key. Free with lm_name_plan_free. */
xs_status lm_names_candle_plan(const lm_config *c, lm_name_plan *out);
void lm_name_plan_free(lm_name_plan *p);

/* Index of the entry named `name`, or -1. */
int lm_name_plan_find(const lm_name_plan *p, const char *name);

/* Check the PyTorch-layout file w against the plan; errors name the file,
 * the tensor and the expected shape. */
xs_status lm_names_check(const lm_name_plan *p, const xs_weights *w);

/* Values of entry e (numel of e->shape floats) from w, converted to f32.
 * w must have passed lm_names_check. */
xs_status lm_names_read_f32(const lm_name_entry *e, const xs_weights *w, float *dst);

/* Number of values of an entry. */
int64_t lm_name_entry_numel(const lm_name_entry *e);

#endif
