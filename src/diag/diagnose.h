/*
 * diagnose.h — `xswarm diagnose`: is a bad result a backend bug (and which
 * op), a weights problem, slow numeric drift, or none of those (so the model
 * code / configuration is to blame)?
 *
 * One run (xs_diagnose_run):
 *  1. backend A (reference) and B (suspect) each load Mimi and the LM;
 *  2. both encode the same input frames, recording the mimi.enc.* taps;
 *  3. A runs the LM freely (recording lm.* taps and its picked tokens); B
 *     runs the same steps TEACHER-FORCED with A's picks, so one near-tie
 *     cannot make the rest incomparable (diagnose_lm.c);
 *  4. both decode A's output tokens (mimi.dec.* taps);
 *  5. taps are compared stage by stage (encode, LM, decode), and the first
 *     tap over tolerance (earliest step, then execution order) is reported;
 *  6. the op: the per-op parity suite (diag/parity.h) is run on A and B for
 *     every op (small shapes; when nothing fails there but a tap diverged,
 *     the real-model shapes too); the failing op most likely to produce
 *     that tap is named (copy/fill first: other cases build inputs with them).
 *     No tap over tolerance but an op failing parity: still `backend` (the
 *     model did not exercise it within tolerance). A divergence without a
 *     failing op: `numerics`;
 *  7. separately, B runs freely (own codes, own picks): token agreement;
 *     both responses are scored by the analyzer;
 *  6b. backend verdict with a tap divergence: B re-runs that stage with the
 *     op recorder armed (op_record.h) from the divergent step; the first call
 *     of the op whose output differs from A's run of the same call is saved
 *     as op-<op>-step<N>.safetensors and `reproduce:` is the command that
 *     replays only that call (diagnose --replay FILE);
 *  8. --reference-weights: tensors of the (quantized) LM file against their
 *     float source, each against what its dtype's rounding allows
 *     (diagnose_weights.c): `weights` when beyond.
 * Options: random weights at the real shapes instead of files (o->random,
 * diagnose_random.h); a KV cache dtype per side (kv_a, kv_b): a B that
 * differs is reported as such, with the error growth over LM steps.
 */
#ifndef XS_DIAG_DIAGNOSE_H
#define XS_DIAG_DIAGNOSE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "diag/tap_compare.h"
#include "model/lm.h"

typedef struct xs_diag_opts {
    const char *backend_a, *backend_b; /* "ref", "cpu", "cuda" */
    int threads;                        /* 0: one per core */
    const char *lm, *lm_config;         /* LM weights (+ config.json, NULL: preset / beside) */
    const char *mimi, *mimi_config;
    const char *input;                  /* audio file (24 kHz after resampling) */
    int frames;                         /* input frames to run (<= 0: all whole frames) */
    bool greedy;                        /* argmax instead of the config's sampling */
    uint64_t seed;
    const char *reference_weights;      /* float source of the LM file, or NULL */
    const char *against;                /* dump of another runtime, or NULL */
    const char *out_dir;                /* where artifacts go (must exist) */
    FILE *log;                          /* progress lines, or NULL */
    /* random weights at real shapes instead of lm/mimi files (diagnose_random.h):
     * "moshi-7b[:bf16|q8_0|q4_0]" or the test preset "tiny[:DTYPE]" */
    const char *random;
    xs_dtype kv_a, kv_b;                /* temporal KV cache dtype of A and B (0: f32) */
    bool no_record;                     /* skip recording the divergent op call */
} xs_diag_opts;

typedef struct xs_diag_weights {
    bool checked;
    int n_compared, n_over, n_missing;
    char worst[128];                    /* the tensor furthest beyond its allowance */
    double worst_ratio;                 /* its max error / allowance (> 1: beyond) */
} xs_diag_weights;

typedef struct xs_diag_result {
    char verdict[16];                   /* consistent | backend | weights | numerics */
    char backend_a[16], backend_b[16];
    int frames, lm_steps;
    /* first divergence (has_div false: none) */
    bool has_div;
    char stage[8];                      /* "encode" | "lm" | "decode" */
    xs_tap_diff div;
    char op[32];                        /* "" when no op was found */
    char failing_ops[256];              /* every op failing parity on B, comma-separated */
    char later[512];                    /* later divergent taps, comma-separated */
    /* token agreement of B's free run with A's */
    int tok_steps, tok_equal, tok_first_diff; /* -1: none */
    char tok_stream[16];                /* "text" or "audio<k>": first stream that differs */
    double tok_margin;                  /* A's top-1 minus top-2 logit there (-1: unknown) */
    /* checks that do not need B: input format and a codec round trip */
    int input_rate;                     /* the file's sample rate */
    bool input_resampled;
    double score_input, score_roundtrip; /* analyzer of the input and of decode(encode(input)) */
    /* analyzer of both responses (score < 0: could not score) */
    double score_a, score_b;
    char defects_a[256], defects_b[256];
    xs_diag_weights weights;
    /* --against */
    bool against_checked, against_over;
    int against_compared;               /* taps that had a tensor in the dump */
    char against_first[96];
    int64_t against_step;
    double against_max_abs, against_max_rel;
    char repro[1400];                   /* reproduction command (backend verdict) */
    /* the op call recorded while B re-ran the divergent stage (op_record.h) */
    bool call_found;
    char call_file[1024];
    int call_step;
    double call_nmse, call_tol;
    char call_note[256];                /* why none was recorded ("" when found) */
    /* KV cache dtypes (kv_differs: B's differs from A's, so drift is expected) */
    char kv_a[8], kv_b[8];
    bool kv_differs;
    /* error growth over LM steps: max rel error of growth_tap per step */
    char growth_tap[32];
    int n_growth;
    int growth_step[48];
    double growth[48];
} xs_diag_result;

xs_status xs_diagnose_run(const xs_diag_opts *o, xs_diag_result *r);

/* Teacher-forced LM steps (diagnose_lm.c): user[n_steps][n_q - dep_q] codes,
 * picks[n_steps][1 + dep_q] the tokens to use instead of sampling. Taps of
 * the lm_exec steps go to `taps`. */
xs_status xs_diag_lm_forced(const lm_model *m, xs_taps *taps, int n_steps, const int32_t *user,
                            const int32_t *picks);

/* Compare the tensors of `quant_path` with those of `ref_path` (by name). */
xs_status xs_diag_compare_weights(const char *quant_path, const char *ref_path, FILE *log,
                                  xs_diag_weights *out);

/* Most likely op producing a tap, among those in `failing` (comma list);
 * writes it to op (or "" if none). */
void xs_diag_pick_op(const char *tap, const char *failing, char *op, size_t n);

/* Write the JSON object of issue 7 (verdict, backends, first_divergence,
 * token_agreement, audio, ...) to f. */
void xs_diag_write_json(const xs_diag_result *r, FILE *f);
void xs_diag_print_text(const xs_diag_result *r, FILE *f);

#endif
