/*
 * run_loop.h — the offline conversation loop shared by `xswarm run`,
 * `xswarm --dev` and `xswarm bench pipeline`: whole 1920-sample frames through
 * a session (model/session.h), recording what a codes file, a timings table
 * and a report need. Ctrl-C stops it after the current frame.
 */
#ifndef XS_CLI_RUN_LOOP_H
#define XS_CLI_RUN_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "model/session.h"

typedef struct run_opts {
    lm_sampling samp;
    int64_t max_frames;  /* 0: all */
    xs_taps *taps;       /* NULL: none */
    bool progress;       /* "frame i/N" on stderr */
} run_opts;

typedef struct run_result {
    int user_codes, dep_q;
    int64_t n_frames, n_steps;
    float *pcm;          /* n_frames_out * 1920 */
    int64_t n_pcm;
    int64_t *frame_codes;  /* [n_frames][user_codes] */
    int64_t *step_in;      /* [n_steps][user_codes] */
    int64_t *step_out;     /* [n_steps][1 + dep_q], -1 rows when nothing came out */
    uint8_t *step_valid;   /* [n_steps] */
    double *enc_ms, *lm_ms, *dec_ms; /* [n_frames] */
    char *text;            /* "" without a tokenizer */
    bool interrupted;      /* stopped by SIGINT: what exists is kept */
} run_result;

/* Run pcm[n] (24 kHz mono; the tail short of a frame is dropped) through a
 * new session of m. On error r holds what was done before it. */
xs_status run_loop(xswarm_model *m, const float *pcm, int64_t n, const run_opts *o, run_result *r);
void run_result_free(run_result *r);

/* frame_codes, step_input_codes, step_out, step_out_valid (the tensors of
 * golden/pipeline_tiny), plus text_tokens, as safetensors. */
xs_status run_write_codes(const run_result *r, const char *path);
/* "frame,encode_ms,lm_ms,decode_ms,total_ms" one row per input frame. */
xs_status run_write_timings(const run_result *r, const char *path);

/* Read an audio file for the pipeline: 24 kHz mono (mixing down and
 * resampling, saying so on stderr), + pad_silence seconds of zeros. Prints
 * the error and returns 1 on failure. */
int run_read_input(const char *path, double pad_silence, float **pcm, int64_t *n);

/* Sampling options as given: --greedy --seed N --temp T --topk K
 * --text-temp T --text-topk K (the rest come from the model's config). */
typedef struct samp_args {
    bool greedy, seed_set, temp_set, text_temp_set, top_k_set, text_top_k_set;
    uint64_t seed;
    float temp, text_temp;
    int top_k, text_top_k;
} samp_args;
/* Same return convention as cli_common_parse. */
int samp_args_parse(samp_args *a, int argc, char **argv, int *i);
/* The model's defaults with the given options on top (seed default 42). */
void samp_args_apply(const samp_args *a, const lm_config *c, lm_sampling *out);
/* "greedy" or "temp 0.8 top-k 250, text temp 0.7 top-k 25, seed 42". */
const char *samp_describe(const lm_sampling *s, char *buf, size_t n);

#endif
