/*
 * lm.h — the Moshi language model: configuration, weights, one generation
 * step (LMGen.step semantics) and the teacher-forced forward (LMModel.forward).
 *
 * Structure (Kyutai's moshi/models/lm.py, re-implemented, not copied):
 *   tokens of 1 + n_q streams (text, Moshi's audio, user's audio)
 *     -> sum of per-stream embeddings (audio streams in order, then text)
 *        (+ the condition vector of a conditioned model: LUT conditioners
 *        fused by "sum", lm_cond.c; the depformer never sees it)
 *     -> temporal transformer (KV ring of `context` positions)
 *     -> out_norm -> text_linear -> text token
 *     -> depth transformer ("depformer"): dep_q sub-steps, sub-step k uses
 *        weight set set_of_step[k]; input = depformer_in[set](main out) +
 *        embedding of the previous token (text for k = 0); fresh KV cache every
 *        time step; causal over the sub-steps; linears[k] -> audio logits.
 *
 * Everything runs one position at a time through the op interface (ops.h),
 * which for a causal model equals the batch forward.
 *
 * Ownership: lm_model borrows the xs_weights it is built from (keep it open
 * until lm_model_free) unless lm_model_load opened it, then it owns it.
 */
#ifndef XS_MODEL_LM_H
#define XS_MODEL_LM_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/ops.h"
#include "diag/taps.h"
#include "formats/weights.h"

#define LM_MAX_STREAMS 33 /* 1 text + up to 32 audio streams */
#define LM_MAX_DEP 16     /* depformer sub-steps / weight sets */

typedef enum lm_norm_kind {
    LM_NORM_RMS_F32 = 0, /* "rms_norm_f32": eps 1e-8 */
    LM_NORM_RMS,         /* "rms_norm": eps 1e-5 */
    LM_NORM_LAYER,       /* "layer_norm": eps 1e-5, weight + bias */
    LM_NORM_LAYER_F32    /* "layer_norm_f32": eps 1e-8 */
} lm_norm_kind;

typedef enum lm_pos_kind { LM_POS_NONE = 0, LM_POS_ROPE, LM_POS_SIN, LM_POS_SIN_ROPE } lm_pos_kind;

#define LM_MAX_COND 4         /* conditioners summed into the input */
#define LM_COND_MAX_VALUES 32 /* possible values of one LUT conditioner */
#define LM_COND_NAME 64       /* longest name / value + 1 */

/* One LUT conditioner (Kyutai's LUTConditioner, tokenizer "noop" with
 * possible_values) fused by "sum": value i (its index in possible_values)
 * adds output_proj . embed[i] ([dim] -> model dim) to the input embedding
 * of every temporal step. "No value" adds learnt_padding (Kyutai's None). */
typedef struct lm_cond_config {
    char name[LM_COND_NAME];
    int n_bins, dim, n_values;
    char values[LM_COND_MAX_VALUES][LM_COND_NAME];
    bool identity_proj; /* force_linear false and dim == model dim: no output_proj */
    bool learn_padding; /* false: "no value" adds zeros */
} lm_cond_config;

/* The LMModel constructor arguments we honour (Kyutai config.json keys). */
typedef struct lm_config {
    int dim, num_heads, num_layers;
    double hidden_scale;
    int64_t context;  /* <= 0: none (unbounded; the KV ring then holds 4096) */
    float max_period;
    int text_card, card, n_q, dep_q;
    int n_delays;     /* = 1 + n_q */
    int delays[LM_MAX_STREAMS];
    int existing_text_padding_id;
    lm_norm_kind norm;
    lm_pos_kind pos;
    bool gating;      /* "silu" gating FFN; false: plain linear1 / GELU / linear2 */
    /* depth transformer */
    int dep_dim, dep_ff, dep_heads, dep_layers;
    bool dep_multi_linear, dep_weights_per_step, dep_gating;
    int dep_schedule[LM_MAX_DEP]; /* weight set of each sub-step (schedule or identity) */
    bool has_dep_schedule;
    int dep_low_rank;             /* 0: none */
    lm_pos_kind dep_pos;
    float dep_max_period;
    /* sampling defaults: LMGen's (0.8 / 0.7 / 250 / 25) unless the config's
     * "lm_gen_config" says otherwise */
    float gen_temp, gen_temp_text;
    int gen_top_k, gen_top_k_text;
    /* conditioners fused by "sum" (config keys "conditioners" + "fuser") */
    int n_cond;
    lm_cond_config cond[LM_MAX_COND];
} lm_config;

/* The released Moshi 7B (2024-09) configuration (loaders._lm_kwargs). */
void lm_config_moshi_7b(lm_config *c);
/* Parse a Kyutai LM config.json. Unknown keys are ignored; unsupported
 * values (depformer_norm, layer_scale, demux, ...) are errors naming them. */
xs_status lm_config_load(const char *path, lm_config *c);
xs_status lm_config_parse(const char *json, const char *label, lm_config *c);
/* "config.json" in the folder of lm_path (a Hugging Face snapshot keeps it
 * there) written into buf, or NULL when there is none. */
const char *lm_config_beside(const char *lm_path, char *buf, size_t n);
int lm_config_max_delay(const lm_config *c);
int lm_config_dep_sets(const lm_config *c); /* number of depformer weight sets */

/* ---- model ------------------------------------------------------------- */
typedef struct lm_norm {
    xs_tensor w, b; /* f32 [D]; b.data NULL for RMSNorm */
} lm_norm;

typedef struct lm_set {        /* one weight set of one layer */
    xs_tensor wqkv;            /* [3D, D] this set's rows of in_proj: q, k, v */
    xs_tensor wo;              /* [D, D] this set's rows of out_proj */
    xs_tensor ff_in, ff_out;   /* gating: [2H, D], [D, H]; plain: linear1 [H, D], linear2 [D, H] */
} lm_set;

typedef struct lm_layer {
    lm_norm norm1, norm2;
    lm_set sets[LM_MAX_DEP];
} lm_layer;

typedef struct lm_stack {
    int dim, heads, n_layers, n_sets, hidden;
    bool gating;
    lm_norm_kind norm;
    lm_pos_kind pos;
    float max_period;
    int64_t context, capacity;
    /* dtype of this stack's KV cache: XS_F32 (the default, zero) or XS_BF16
     * (half the memory; set with lm_model_set_kv_dtype). */
    xs_dtype kv_dtype;
    lm_layer *layers;
} lm_stack;

typedef struct lm_emb {
    xs_tensor table;    /* [V, D or low_rank] */
    xs_tensor low_rank; /* [D, r] or data NULL */
} lm_emb;

/* Source of synthetic weights: a host tensor named `name` of the given shape
 * (owned by the source, alive until the model is freed), or NULL. */
typedef const xs_tensor *(*lm_synth_fn)(void *ctx, const char *name, int ndim,
                                        const int64_t *shape);

typedef struct lm_model {
    lm_config cfg;
    xs_backend *be;
    xs_layout layout;
    lm_stack main, dep;
    lm_emb text_emb, emb[LM_MAX_STREAMS];
    lm_norm out_norm;
    xs_tensor text_linear;
    int n_dep_in;
    xs_tensor dep_in[LM_MAX_DEP];
    lm_emb dep_text_emb, dep_emb[LM_MAX_DEP];
    xs_tensor linears[LM_MAX_DEP];
    /* host f32 [(n_values + 1) * cfg.dim] per conditioner: row i = output_proj .
     * embed[i] for possible value i, last row the "no value" vector */
    float *cond_vec[LM_MAX_COND];
    /* ownership */
    xs_weights *file;           /* NULL for synthetic weights */
    bool owns_file;
    lm_synth_fn synth;
    void *synth_ctx;
    void **owned; int n_owned, cap_owned;          /* host buffers we made */
    xs_tensor **prepared; int n_prepared, cap_prepared; /* backend weights */
} lm_model;

/* Map the tensors of w (PyTorch, candle or PyTorch-int8 layout, detected
 * from the names) onto a model for backend be. Errors name the first
 * missing or mis-shaped tensor and the expected shape. */
xs_status lm_model_build(const lm_config *cfg, xs_weights *w, xs_backend *be, lm_model **out);
/* Same mapping, tensors from fn (benchmarks at real shapes without a file). */
xs_status lm_model_build_synthetic(const lm_config *cfg, xs_layout layout, lm_synth_fn fn,
                                   void *ctx, xs_backend *be, lm_model **out);
/* Open path, build, and own the file. config_path NULL: the 7B preset. */
xs_status lm_model_load(const char *path, const char *config_path, xs_backend *be,
                        lm_model **out);
void lm_model_free(lm_model *m);
/* KV cache dtype of the temporal transformer (XS_F32 default, or XS_BF16:
 * 32 x 3000 x 4096 x 2 x 2 B = 1.57 GB instead of 3.15 GB for the 7B). The
 * depformer's 8-slot cache stays f32. Applies to lm_exec / lm_gen created
 * after the call. */
xs_status lm_model_set_kv_dtype(lm_model *m, xs_dtype dt);
/* Bytes of the KV caches (k + v, both stacks) one lm_exec of m allocates. */
size_t lm_model_kv_bytes(const lm_model *m);

/* ---- per-session execution state (lm_transformer.c) -------------------- */
typedef struct lm_stack_state {
    xs_kv_cache *kv;                   /* [n_layers] */
    xs_tensor xn, att, proj;           /* [1, D] */
    xs_tensor qkv;                     /* [1, 3D]: q, k, v side by side */
    xs_tensor ffh, ffa;                /* [1, 2H], [1, H] */
    xs_tensor pos;                     /* i32 [1] */
    xs_tensor pos_table;               /* i32 [capacity] = 0..capacity-1 (depformer) or unset */
    xs_tensor pe;                      /* f32 [1, D] sinusoidal embedding */
    float *pe_host;
} lm_stack_state;

typedef struct lm_exec {
    const lm_model *m;
    xs_backend *be;
    xs_taps *taps;
    lm_stack_state ms, ds;
    xs_tensor x, emb;           /* [1, D] main residual, embedding scratch */
    xs_tensor normed;           /* [1, D] out_norm output */
    xs_tensor text_logits;      /* [1, text_card] */
    xs_tensor dx, demb, dlr;    /* [1, Dd] depformer residual + scratch; dlr [1, r] */
    xs_tensor audio_logits;     /* [1, card] */
    xs_tensor ids;              /* i32 [1] a host token to embed (scoring) */
    xs_tensor main_ids;         /* i32 [1 + n_q] the tokens of this temporal step */
    xs_tensor sampled;          /* i32 [1 + dep_q] tokens picked this step (stay on the
                                   backend: sub-step k + 1 embeds slot k directly) */
    xs_tensor tap_layers;       /* [1, L, D] */
    xs_tensor tap_dep_in, tap_dep_out, tap_dep_logits; /* [1, dep_q, Dd | card] */
    int64_t main_pos;           /* next temporal position */
    xs_tensor cond;             /* [1, D] sum of the condition vectors, added to the
                                   input embedding; data NULL: no conditioners */
} lm_exec;

xs_status lm_exec_init(lm_exec *e, const lm_model *m, xs_taps *taps);
void lm_exec_free(lm_exec *e);
xs_status lm_exec_reset(lm_exec *e); /* empty KV caches, position 0 */
/* Benchmarks only: fill every temporal KV slot (positions 0..capacity-1)
 * with pseudo-random rows and continue at position capacity, so steps run
 * at full context and resident memory includes the whole cache. */
xs_status lm_exec_fill_context(lm_exec *e, uint64_t seed);

/* Conditioning (lm_cond.c). Conditioner / value indices of name=value;
 * errors list the allowed names or values. */
xs_status lm_cond_find(const lm_config *c, const char *name, const char *value, int *ci, int *vi);
/* Select the value of every conditioner: sel[i] indexes cond[i].values, -1
 * = no value (learnt padding); sel NULL = no value for all. Uploads the sum
 * into e->cond; no-op for a model without conditioners. lm_exec_init
 * selects "no value"; lm_exec_reset keeps the selection. */
xs_status lm_exec_set_condition(lm_exec *e, const int *sel);

/* One temporal step: embed tokens[0..n_q] (-1 = zero embedding), run the
 * temporal transformer at e->main_pos (then ++), out_norm, text logits. */
xs_status lm_exec_main(lm_exec *e, const int32_t *tokens);
/* Depformer sub-step k of the current time step (k == 0 resets its cache):
 * input = depformer_in[set](e->normed) + emb(prev), prev an i32 [1] tensor in
 * backend memory (a slot of e->sampled, or e->ids); logits in e->audio_logits. */
xs_status lm_exec_dep(lm_exec *e, int k, const xs_tensor *prev);
/* View of slot i of an i32 vector in backend memory, as an i32 [1] tensor. */
xs_tensor lm_slot(const xs_tensor *v, int i);

/* One transformer stack step on x [1, D] in place at position pos with weight
 * set `set`; layer outputs copied into layers_out [1, L, D] when non-NULL.
 * The position reaches the backend through st->pos_table when it covers pos
 * (no host transfer), else by one upload. */
xs_status lm_stack_step(xs_backend *be, const lm_stack *s, lm_stack_state *st, xs_tensor *x,
                        int64_t pos, int set, xs_tensor *layers_out);
xs_status lm_stack_state_init(xs_backend *be, const lm_stack *s, lm_stack_state *st);
void lm_stack_state_free(xs_backend *be, const lm_stack *s, lm_stack_state *st);
xs_status lm_stack_state_reset(xs_backend *be, const lm_stack *s, lm_stack_state *st);

/* ---- generation (LMGen) -------------------------------------------------- */
typedef struct lm_sampling {
    bool greedy;
    float temp, text_temp; /* Kyutai defaults 0.8 / 0.7 */
    int top_k, text_top_k; /* 250 / 25 */
    uint64_t seed;
} lm_sampling;

void lm_sampling_default(lm_sampling *s);
/* Defaults of that model (its config's lm_gen_config). */
void lm_sampling_from_config(lm_sampling *s, const lm_config *c);

typedef struct lm_gen lm_gen;
xs_status lm_gen_new(const lm_model *m, const lm_sampling *s, xs_taps *taps, lm_gen **out);
void lm_gen_free(lm_gen *g);
xs_status lm_gen_reset(lm_gen *g);
/* One LMGen.step: user_codes holds n_q - dep_q codes. On return *valid says
 * whether a frame came out; out gets [text, audio 0..dep_q-1] (or -1s). */
xs_status lm_gen_step(lm_gen *g, const int32_t *user_codes, int32_t *out, bool *valid);
/* Condition the following steps: conditioner `name` takes `value` (one of
 * its possible_values), or no value when value is NULL. Kept across resets. */
xs_status lm_gen_set_condition(lm_gen *g, const char *name, const char *value);
int64_t lm_gen_steps(const lm_gen *g);
/* lm_exec_fill_context on the generator's state (benchmarks: the tokens it
 * then produces are meaningless). */
xs_status lm_gen_fill_context(lm_gen *g, uint64_t seed);

/* ---- teacher-forced forward (LMModel.forward) ---------------------------- */
/* codes [B, 1+n_q, T] (i64). Outputs (caller-allocated):
 * logits [B, dep_q, T, card], mask [B, dep_q, T], text_logits [B, 1, T, text_card],
 * text_mask [B, 1, T]. Masked logits are NaN, as in Kyutai's code. */
xs_status lm_score(const lm_model *m, const int64_t *codes, int B, int T, float *logits,
                   uint8_t *mask, float *text_logits, uint8_t *text_mask);

#endif
