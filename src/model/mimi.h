/*
 * mimi.h — Kyutai's Mimi codec (24 kHz audio <-> 12.5 Hz codes), streaming.
 *
 * Three objects, like llama2.c's Config / TransformerWeights / RunState:
 *   mimi_config  what the model looks like (config.json or the built-in
 *                preset of the released Mimi);
 *   mimi_model   read-only weights, prepared for one backend; any number of
 *                streams may share one model;
 *   mimi_stream  everything a conversation carries from frame to frame
 *                (conv left contexts, transposed-conv tails, the KV caches of
 *                both transformers, positions). Reset, dump and compare it.
 *
 * Data flow (one 80 ms frame = 1920 samples):
 *   encode: SEANet encoder (hop 960, 25 Hz) -> encoder transformer (2
 *           positions per frame) -> downsample conv (stride 2, 12.5 Hz) ->
 *           split RVQ (codebook 0 from rvq_first, 1.. from rvq_rest, both
 *           projecting the same latent) -> N codes.
 *   decode: RVQ decode -> depthwise upsample convtr (stride 2) -> decoder
 *           transformer -> SEANet decoder -> 1920 samples.
 * Everything is causal: each encode call of k frames returns k frames of
 * codes, each decode call of k frames returns k * 1920 samples, from the
 * first call on.
 *
 * Taps (diag/taps.h) carry the names of the golden tensors of
 * ../shared/golden/mimi_tiny with "mimi." for "act.".
 */
#ifndef XS_MODEL_MIMI_H
#define XS_MODEL_MIMI_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "diag/taps.h"
#include "formats/weights.h"

#define MIMI_MAX_RATIOS 8
#define MIMI_MAX_RESIDUAL 4

typedef struct mimi_config {
    int sample_rate;          /* 24000 */
    int channels;             /* 1 */
    double frame_rate;        /* 12.5 codes per second */
    /* SEANet */
    int n_filters;            /* 64 */
    int dimension;            /* 512: latent width (SEANet out, transformer d_model) */
    int n_residual_layers;    /* 1 */
    int kernel_size;          /* 7: first conv */
    int residual_kernel_size; /* 3 */
    int last_kernel_size;     /* 3 */
    int compress;             /* 2: residual hidden = C / compress */
    int dilation_base;        /* 2: residual layer j has dilation base^j */
    int n_ratios;
    int ratios[MIMI_MAX_RATIOS]; /* [8, 6, 5, 4]: decoder order; the encoder reverses it */
    /* transformers (encoder and decoder have the same shape) */
    int d_model;              /* 512 */
    int num_heads;            /* 8 */
    int num_layers;           /* 8 */
    int dim_feedforward;      /* 2048 */
    int context;              /* 250 positions at 25 Hz */
    float max_period;         /* 10000 (RoPE) */
    /* quantizer */
    int q_dimension;          /* 256: codebook vector width */
    int n_q;                  /* 32 codebooks in the file */
    int bins;                 /* 2048 entries per codebook */
    int num_codebooks;        /* 8 used by default */
    /* runtime choice, not read from config.json: keep the matmul weights
     * (transformer linears, the deep convs run in matmul form) in bf16:
     * 178 MB read per frame instead of 334 MB at the real size. Exact for a
     * bf16 checkpoint; rounds the weights of an f32 one. */
    bool matmul_bf16;
} mimi_config;

/* The released Mimi (tokenizer-e351c8d8-checkpoint125.safetensors). */
void mimi_config_preset(mimi_config *c);
/* Read a config.json in the loaders._mimi_config layout (+ "num_codebooks").
 * Keys absent from the file keep the preset's values. Rejects options this
 * engine does not implement (non-causal, other norms, gating...) by name. */
xs_status mimi_config_load(const char *path, mimi_config *c);
/* Consistency checks (positive sizes, heads divide d_model, ...). */
xs_status mimi_config_validate(const mimi_config *c);
/* Derived sizes. */
int mimi_hop(const mimi_config *c);          /* product of ratios: 960 */
int mimi_frame_samples(const mimi_config *c); /* sample_rate / frame_rate: 1920 */
int mimi_downsample_stride(const mimi_config *c); /* frame / hop: 2 */

typedef struct mimi_model mimi_model;
typedef struct mimi_stream mimi_stream;

/* Gives the f32 values of one checkpoint tensor. `name` is the checkpoint
 * name, `shape` what the model expects; fill dst (numel floats) or return an
 * error naming the tensor and the expected shape. dst NULL: only check. */
typedef xs_status (*mimi_tensor_source)(void *user, const char *name, int ndim,
                                        const int64_t *shape, float *dst);

/* Load from an opened weights file (f32, bf16 or f16: converted to f32). */
xs_status mimi_model_load(xs_backend *be, const mimi_config *cfg, const xs_weights *w,
                          mimi_model **out);
/* Load from any tensor source (random weights for benchmarks, tests). */
xs_status mimi_model_load_from(xs_backend *be, const mimi_config *cfg, mimi_tensor_source src,
                               void *user, mimi_model **out);
/* A source of random weights at cfg's sizes, scaled so that activations
 * stay O(1) on speech-like input. user: pointer to a uint64_t seed. */
xs_status mimi_random_source(void *user, const char *name, int ndim, const int64_t *shape,
                             float *dst);
/* Open a Mimi weights file with its configuration: config_path when given;
 * else mimi_config.json next to the weights; else a config.json there that
 * has a "seanet" key (a Mimi config, as in golden/mimi_tiny); else the
 * built-in preset. matmul_bf16: see mimi_config. `used` (may be NULL) gets
 * the config's path or "preset".
 * The weights file is closed again before returning. */
xs_status mimi_model_open(xs_backend *be, const char *weights_path, const char *config_path,
                          bool matmul_bf16, mimi_model **out, char *used, size_t used_n);
void mimi_model_free(mimi_model *m);
/* Ask src about every checkpoint tensor cfg needs, with dst == NULL (the
 * source then only checks name and shape): lists or validates a checkpoint
 * without loading it. The `_initialized` flags are not asked for. */
xs_status mimi_expected_tensors(const mimi_config *cfg, mimi_tensor_source src, void *user);
const mimi_config *mimi_model_config(const mimi_model *m);
xs_backend *mimi_model_backend(const mimi_model *m);
/* Number of parameters loaded (for reports). */
int64_t mimi_model_params(const mimi_model *m);
/* Bytes of weights (and derived constants) one frame reads with n_codebooks
 * codebooks, as stored (f32, or bf16 for the matmul weights when
 * matmul_bf16): the memory-bandwidth floor of a frame. */
int64_t mimi_model_frame_bytes(const mimi_model *m, int n_codebooks);

/* ---- streams ---- */
xs_status mimi_stream_new(mimi_model *m, mimi_stream **out);
void mimi_stream_free(mimi_stream *s);
/* Back to the state of a fresh stream (zero contexts, empty KV caches,
 * positions 0). */
xs_status mimi_stream_reset(mimi_stream *s);
/* Make dst continue exactly where src is (both streams of the same model):
 * snapshot / restore, or fork a conversation. Taps are not copied. */
xs_status mimi_stream_copy(mimi_stream *dst, const mimi_stream *src);
/* Record taps of this stream's calls into taps (NULL: none). Not owned. */
void mimi_stream_set_taps(mimi_stream *s, xs_taps *taps);

/* Encode n samples (a positive multiple of 1920) of 24 kHz pcm (host
 * memory) into codes[n/1920][n_codebooks] (host, row-major, frame-major).
 * n_codebooks: 1..cfg.n_q. */
xs_status mimi_encode(mimi_stream *s, const float *pcm, int64_t n, int n_codebooks,
                      int32_t *codes);
/* Decode n_frames frames of codes[n_frames][n_codebooks] (host) into
 * pcm[n_frames * 1920] (host). */
xs_status mimi_decode(mimi_stream *s, const int32_t *codes, int64_t n_frames, int n_codebooks,
                      float *pcm);

/* ---- split calls: many streams' frames on the device at once ----
 * mimi_encode = mimi_encode_begin + mimi_encode_finish (same for decode).
 * begin checks the arguments, stages the input and enqueues the whole call
 * on the stream's lane (see mimi_model_set_lanes), then returns without
 * waiting; finish waits for that lane's work up to this call's download,
 * writes codes / pcm and advances the stream's counters. Between begin and
 * finish the stream takes no other call (a second begin of the same kind,
 * reset, copy, dump: errors), but other streams may begin and finish in
 * any order: begin many, then finish them, and their frames run side by
 * side on the GPU. Each stream computes exactly what mimi_encode /
 * mimi_decode compute (the same kernels on the same data). An encode and a
 * decode of one stream may both be pending (they touch disjoint state). */
xs_status mimi_encode_begin(mimi_stream *s, const float *pcm, int64_t n, int n_codebooks);
xs_status mimi_encode_finish(mimi_stream *s, int32_t *codes);
xs_status mimi_decode_begin(mimi_stream *s, const int32_t *codes, int64_t n_frames,
                            int n_codebooks);
xs_status mimi_decode_finish(mimi_stream *s, float *pcm);

/* Use n lanes (backend/lanes.h): a stream's calls run on Mimi lane
 * (the order in which streams made their first call) % n, with that lane's
 * call scratch; Mimi lane l is the backend's lane l + 1 (lane 0 stays for
 * other work, the LM), or the backend's lane 0 when n is 1. Returns the
 * lanes in use (1 on backends without lanes). The model starts with
 * xs_lanes_from_env (XSWARM_MIMI_LANES; 8 on cuda, 1 elsewhere). Call while
 * no call is pending; streams then re-pick lanes (and re-record). */
int mimi_model_set_lanes(mimi_model *m, int n);
int mimi_model_lanes(const mimi_model *m);
/* The stream's lane, -1 before its first call. */
int mimi_stream_lane(const mimi_stream *s);

/* ---- batched calls: one frame of n streams as ONE computation ----
 * (mimi_batch.c) The n streams (distinct, one model) each encode one frame
 * (pcm[i]: 1920 samples -> codes[i]: n_codebooks codes) or decode one
 * frame (codes[i] -> pcm[i]: 1920 samples) through the same ~300 kernels,
 * each kernel serving all n streams, instead of n calls of ~300 kernels.
 * Each stream keeps its own state and its own position: streams may be at
 * different frames, join, leave, reset or make plain calls in between.
 * Results equal mimi_encode / mimi_decode of each stream alone (bit for
 * bit on cuda; on cpu the matmuls of more rows take the sgemm path:
 * pcm within ~1e-6). Synchronous: returns with the results on the host.
 * Streams with taps, or with a begun call, are refused (see
 * mimi_batch_usable). While a stream takes part, its conv state lives in a
 * [slot]-major array of the model (moved there with one copy when its slot
 * changes, so that each conv reads and writes every stream's context with
 * one strided copy); plain calls use it there. The batched device work is
 * recorded as a CUDA graph keyed by the ordered list of streams. One
 * batched call at a time per model (its call scratch and slots are the
 * model's); runs on the backend's lane 0 after joining the lanes. */
xs_status mimi_encode_batch(mimi_stream *const *s, int n, const float *const *pcm,
                            int n_codebooks, int32_t *const *codes);
xs_status mimi_decode_batch(mimi_stream *const *s, int n, const int32_t *const *codes,
                            int n_codebooks, float *const *pcm);
/* Whether these n streams can run batched (n >= 1, one model, distinct,
 * no taps, no begun call). */
bool mimi_batch_usable(mimi_stream *const *s, int n);
/* Batching switch: -1 = from XSWARM_MIMI_BATCH (0 disables; the default,
 * read once), 0 = off, 1 = on. mimi_batch_enabled says what holds now. */
void mimi_batch_set_mode(int mode);
bool mimi_batch_enabled(void);

/* Streaming state as host floats, for dumps and comparisons: the layout is
 * fixed for a model (conv contexts, convtr tails, then each KV cache k, v and
 * its positions as floats, then the host counters). Returns the count when
 * dst is NULL. */
int64_t mimi_stream_state_size(const mimi_stream *s);
xs_status mimi_stream_state_dump(const mimi_stream *s, float *dst);

#endif
