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
 * which for a causal model equals the batch forward. A step may serve
 * several sessions at once (lm_batch: one row per session, weights read
 * once for all rows); batch-1 is the same code with one row.
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
    /* dtype of this stack's KV cache: XS_F32 (zero, until set), XS_BF16 or
     * XS_Q8_0 (set with lm_model_set_kv_dtype). */
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
/* KV cache dtype of the temporal transformer (XS_F32 until set; XS_BF16:
 * 32 x 3000 x 4096 x 2 x 2 B = 1.57 GB instead of 3.15 GB for the 7B;
 * XS_Q8_0: x 34/32 B = 0.84 GB, needs dim and head dim multiples of 32;
 * LM_KV_DEFAULT: lm_model_kv_dtype_default(m)). The depformer's 8-slot
 * cache stays f32. Applies to lm_exec / lm_gen created after the call. */
xs_status lm_model_set_kv_dtype(lm_model *m, xs_dtype dt);
/* lm_model_set_kv_dtype's "the model's default" (not a real dtype). */
#define LM_KV_DEFAULT XS_DTYPE_COUNT
/* THE default KV rule (lm_kv.c), used by every tool: the cache follows the
 * model's compute precision, as Kyutai's cache has the model's dtype. f32
 * weights (the tiny golden models, whose goldens are f32 runs) keep an f32
 * cache; bf16, f16, q8_0 and q4_0 weights get a bf16 cache. */
xs_dtype lm_kv_dtype_default(xs_dtype weight_dtype);
/* The rule applied to m's temporal transformer weights (its first in_proj). */
xs_dtype lm_model_kv_dtype_default(const lm_model *m);
/* "f32", "bf16", "q8" or "q8_0" -> that dtype; -1 when unknown. */
int lm_kv_dtype_parse(const char *s);
/* Bytes of the KV caches (k + v, both stacks) one lm_exec of m allocates. */
size_t lm_model_kv_bytes(const lm_model *m);

/* ---- per-session execution state (lm_transformer.c) -------------------- */
/* What one conversation keeps between steps: its KV caches. The [B, ...]
 * scratch of a step lives in an lm_batch (below), shared by the sessions
 * stepped together. */
typedef struct lm_stack_state {
    xs_kv_cache *kv;                   /* [n_layers] views into block */
    xs_tensor block;                   /* the one allocation of every layer's ring
                                          (model/kv_rings.h: no per-tensor page waste) */
} lm_stack_state;

typedef struct lm_batch lm_batch;

typedef struct lm_exec {
    const lm_model *m;
    xs_backend *be;
    xs_taps *taps;
    lm_stack_state ms;          /* temporal KV caches (the depformer's, reset every
                                   step, are step scratch: in the lm_batch) */
    int64_t main_pos;           /* next temporal position */
    xs_tensor cond;             /* [1, D] sum of the condition vectors, added to the
                                   input embedding; data NULL: no conditioners */
    xs_tensor ids;              /* i32 [1] a host token to embed (scoring) */
    /* tap buffers, allocated only when taps is set */
    xs_tensor tap_layers;       /* [1, L, D] */
    xs_tensor tap_dep_in, tap_dep_out, tap_dep_logits; /* [1, dep_q, Dd | card] */
    xs_tensor tap_tokens;       /* i32 [1, 1 + n_q] this row's input tokens */
    xs_tensor tap_sampled;      /* i32 [1 + dep_q] this row's picks */
    /* Batch-1 execution: a private lm_batch of one row. lm_exec_main /
     * lm_exec_dep step this session alone through it; the views below are
     * its row 0 (same memory, not owned). */
    lm_batch *solo;
    xs_tensor text_logits;      /* [1, text_card] view */
    xs_tensor audio_logits;     /* [1, card] view */
    xs_tensor sampled;          /* i32 [1 + dep_q] view: tokens picked this step (stay on
                                   the backend: sub-step k + 1 embeds slot k directly) */
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
 * temporal transformer at e->main_pos (then ++), out_norm, text logits.
 * (lm_batch_stage + lm_batch_main on e->solo.) */
xs_status lm_exec_main(lm_exec *e, const int32_t *tokens);
/* Depformer sub-step k of the current time step (k == 0 resets its cache):
 * input = depformer_in[set](normed main out) + emb(prev), prev an i32 [1]
 * tensor in backend memory (a slot of e->sampled, or e->ids); logits in
 * e->audio_logits. (lm_batch_dep on e->solo.) */
xs_status lm_exec_dep(lm_exec *e, int k, const xs_tensor *prev);
/* View of slot i of an i32 vector in backend memory, as an i32 [1] tensor. */
xs_tensor lm_slot(const xs_tensor *v, int i);

/* ---- batched step (lm_batch.c) -------------------------------------------
 * One LM step for B sessions (rows) at once: every matmul runs over [B, D],
 * so each weight is read once per step for all of them; rope, kv_store and
 * attention run per row, on that session's own KV cache at its own position;
 * sampling runs per row with the session's own seed and step counter. Row b
 * gives bit-identical results to the same session stepped alone (B = 1),
 * as long as the backend's matmul computes each output row independently
 * of M (ref: always; cuda: always; cpu: for M <= 16, its GEMV path).
 *
 * Capturable step (CUDA graphs). A step is three phases:
 *   1. STAGE (host -> device): lm_batch_stage uploads everything that changes
 *      from step to step: the input tokens (i32 [1 + n_q, Bmax]), the
 *      temporal positions (i32 [Bmax]), the rows' sampling counters (i32
 *      [Bmax]) and, for sinusoidal models, the position embedding ([Bmax, D]).
 *      Nothing else is uploaded during a step.
 *   2. DEVICE: lm_batch_main, then for k = 0..dep_q-1 lm_batch_dep + picks.
 *      A pure sequence of ops whose arguments (pointers, shapes, scalars)
 *      depend only on the model, the capacity and the set of sessions in the
 *      rows (which KV caches), never on the step: positions and tokens are
 *      read from the staged device tensors, depformer positions from a
 *      constant table, the depformer cache reset is a device copy from a
 *      constant -1 tensor. (Exception: taps, which download and are for
 *      debugging only; a step with taps runs eagerly.)
 *   3. FETCH (device -> host): one download of the sampled tokens
 *      (lm_batch_fetch, i32 [1 + dep_q, Bmax]).
 * Host bookkeeping (e->main_pos++) happens in phase 1, not on the device. */
typedef struct lm_stack_scratch {      /* [Bmax, ...] scratch of one stack */
    xs_tensor xn, att, proj;           /* [Bmax, D] */
    xs_tensor qkv;                     /* [Bmax, 3D]: per row q, k, v side by side */
    xs_tensor ffh, ffa;                /* [Bmax, 2H], [Bmax, H] */
} lm_stack_scratch;

/* Scratch for up to cap rows (1..4096). */
xs_status lm_batch_new(const lm_model *m, int cap, lm_batch **out);
void lm_batch_free(lm_batch *b);
int lm_batch_capacity(const lm_batch *b);
/* Phase 1: rows[0..n) (distinct execs of b's model) take tokens
 * [n][1 + n_q] (-1 = zero embedding) and sampling counters steps[n] (NULL:
 * zeros; lm_batch_step_slot gives row r's as a device i32 [1]); uploads
 * tokens, positions and counters (one upload each, whatever n), then
 * advances each row's main_pos. Validates everything first: on error no row
 * changes. */
xs_status lm_batch_stage(lm_batch *b, lm_exec *const *rows, int n, const int32_t *tokens,
                         const int32_t *steps);
/* Phase 2: the temporal step of the staged rows: text logits [n, text_card]. */
xs_status lm_batch_main(lm_batch *b);
/* Depformer sub-step k of the staged rows (k == 0 resets their depformer
 * caches). prev: i32 [n] in backend memory (lm_batch_sampled_row(b, k), or
 * scoring ids); logits [n, card]. */
xs_status lm_batch_dep(lm_batch *b, int k, const xs_tensor *prev);
/* Views: text logits [1, text_card] / audio logits [1, card] of row r;
 * i32 [1] slot where the pick of stream j (0 text, 1 + k audio k) of row r
 * goes; i32 [n] picks of stream j for all staged rows. */
xs_tensor lm_batch_text_logits(const lm_batch *b, int r);
xs_tensor lm_batch_audio_logits(const lm_batch *b, int r);
xs_tensor lm_batch_pick_slot(const lm_batch *b, int j, int r);
xs_tensor lm_batch_sampled_row(const lm_batch *b, int j);
xs_tensor lm_batch_step_slot(const lm_batch *b, int r);
/* Phase 3: picks into out [n][1 + dep_q] (one download). */
xs_status lm_batch_fetch(lm_batch *b, int32_t *out);
/* The whole staged ids i32 [n_delays, Bmax] and picks i32 [1 + dep_q, Bmax]
 * (stream-major; contiguous per row only when Bmax = 1). lm_batch_stage
 * with tokens NULL leaves ids as they are: a recorded frame writes them on
 * the device (frame_graph.h). */
xs_tensor lm_batch_ids(const lm_batch *b);
xs_tensor lm_batch_sampled(const lm_batch *b);

/* One transformer stack step on x [B, D] (row b at position pos[b], an i32
 * [B] tensor in backend memory; pe [B, D] added first for sinusoidal
 * stacks, else NULL) with weight set `set`. kv[b] is row b's cache array
 * [n_layers]. Layer outputs of row b are copied into layers_out[b] [1, L, D]
 * when layers_out and layers_out[b] are non-NULL. */
xs_status lm_stack_step(xs_backend *be, const lm_stack *s, lm_stack_scratch *sc,
                        xs_kv_cache *const *kv, int B, xs_tensor *x, const xs_tensor *pos,
                        const xs_tensor *pe, int set, xs_tensor *const *layers_out);
/* lm_stack_step, then fin_y = norm `fin` (kind fin_kind) of the resulting x,
 * the last residual add fused with it (ops.h add_norm); fin NULL: none. */
xs_status lm_stack_step_norm(xs_backend *be, const lm_stack *s, lm_stack_scratch *sc,
                             xs_kv_cache *const *kv, int B, xs_tensor *x, const xs_tensor *pos,
                             const xs_tensor *pe, int set, xs_tensor *const *layers_out,
                             lm_norm_kind fin_kind, const lm_norm *fin, xs_tensor *fin_y);
/* The KV caches of one session for stack s (allocation in s->kv_dtype). */
xs_status lm_stack_state_init(xs_backend *be, const lm_stack *s, lm_stack_state *st);
void lm_stack_state_free(xs_backend *be, const lm_stack *s, lm_stack_state *st);
xs_status lm_stack_state_reset(xs_backend *be, const lm_stack *s, lm_stack_state *st);
xs_status lm_stack_scratch_init(xs_backend *be, const lm_stack *s, int cap, lm_stack_scratch *sc);
void lm_stack_scratch_free(xs_backend *be, lm_stack_scratch *sc);
/* Kyutai's create_sin_embedding of position pos into out [dim] (f32). */
void lm_sin_embedding(float *out, int dim, int64_t pos, float max_period);
/* The stack's norm (RMS or layer norm, its eps) of x into y. */
xs_status lm_apply_norm(xs_backend *be, lm_norm_kind k, const lm_norm *n, xs_tensor *y,
                        const xs_tensor *x);
/* x += h, then y = that norm of x (one fused op where the backend has it). */
xs_status lm_apply_add_norm(xs_backend *be, lm_norm_kind k, const lm_norm *n, xs_tensor *y,
                            xs_tensor *x, const xs_tensor *h);

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
/* One LMGen.step for n distinct generators of b's model at once, through
 * batch b (capacity >= n): each gets exactly what lm_gen_step would give it
 * (same tokens, same RNG counters), whatever the other rows and their order.
 * user_codes [n][n_q - dep_q], out [n][1 + dep_q], valid [n]. All codes
 * are checked first: on error no generator advances. */
xs_status lm_gen_step_batch(lm_batch *b, lm_gen *const *g, int n, const int32_t *user_codes,
                            int32_t *out, bool *valid);
/* lm_exec_fill_context on the generator's state (benchmarks: the tokens it
 * then produces are meaningless). */
xs_status lm_gen_fill_context(lm_gen *g, uint64_t seed);

/* ---- teacher-forced forward (LMModel.forward) ---------------------------- */
/* codes [B, 1+n_q, T] (i64). Outputs (caller-allocated):
 * logits [B, dep_q, T, card], mask [B, dep_q, T], text_logits [B, 1, T, text_card],
 * text_mask [B, 1, T]. Masked logits are NaN, as in Kyutai's code. */
xs_status lm_score(const lm_model *m, const int64_t *codes, int B, int T, float *logits,
                   uint8_t *mask, float *text_logits, uint8_t *text_mask);

/* ---- a solo generator's step inside a recorded frame (lm_gen.c) ----------
 * The three phases of lm_gen_step with the host delay ring replaced by a
 * device window (lm_window.h), for frame_graph.c:
 *   lm_gen_device_ready    steady state (step >= max_delay + 2: no stream
 *                          in its initial-token phase), no taps;
 *   lm_gen_window_load / _store   host ring <-> window at a step boundary;
 *   lm_gen_device_stage    phase 1 without tokens (positions, counter);
 *   lm_gen_device_step     phase 2 (ids already in lm_batch_ids(solo));
 *   lm_gen_device_key      what a recording of phase 2 depends on (false:
 *                          do not record);
 *   lm_gen_device_done     the host step counter after the step. */
struct lm_window;
bool lm_gen_device_ready(const lm_gen *g);
lm_batch *lm_gen_solo(lm_gen *g);
xs_status lm_gen_window_load(lm_gen *g, struct lm_window *w);
xs_status lm_gen_window_store(lm_gen *g, const struct lm_window *w);
xs_status lm_gen_device_stage(lm_gen *g);
xs_status lm_gen_device_step(lm_gen *g);
bool lm_gen_device_key(lm_gen *g, uint64_t *key);
void lm_gen_device_done(lm_gen *g);

#endif
