/*
 * mimi_internal.h — struct bodies shared by the mimi_*.c files. Not for use
 * outside src/model/mimi*.c: everything else goes through mimi.h.
 *
 * Layouts: conv-side activations are [C, T] (channels outermost), the
 * transformer side is [T, C]. All activations are f32 in backend memory.
 */
#ifndef XS_MODEL_MIMI_INTERNAL_H
#define XS_MODEL_MIMI_INTERNAL_H

#include <stdatomic.h>

#include "backend/graph.h"
#include "model/mimi.h"

/* ---- layers (read-only, in backend memory) ---- */

/* Causal streaming Conv1d. The stream keeps the last ctx_len = k_eff - stride
 * input columns per channel; zeros at the stream start, except with
 * `replicate` (the 25 -> 12.5 Hz downsample), where the first call fills the
 * context with copies of its first input column. */
typedef struct mimi_conv {
    xs_tensor w;        /* [cout, cin/groups, k], or data NULL in matmul form */
    xs_tensor wm;       /* matmul form: [cout, cin*k] f32 or bf16, else data NULL */
    xs_tensor b;        /* [cout]; data NULL when the conv has no bias */
    int cin, cout, k, stride, dilation, groups;
    bool replicate;
    int64_t ctx_len;    /* columns of left context */
    int64_t state_off;  /* floats into mimi_stream.conv_state */
} mimi_conv;

/* Streaming ConvTranspose1d. The last K - s outputs of a call are kept,
 * without the bias, and added to the first K - s outputs of the next call
 * (the bias must be counted once). */
typedef struct mimi_convtr {
    /* matmul form (K = 2 * stride, groups = 1): used when wt.data is set */
    xs_tensor wt;         /* [cout*K, cin] f32 or bf16: wt[co*K + k, ci] = w[ci, co, k] */
    xs_tensor bias_col;   /* [cout*K] f32: bias[co] on taps k < stride, else 0 */
    /* op form (anything else, e.g. the depthwise upsample) */
    xs_tensor w;          /* [cin, cout/groups, k] */
    xs_tensor b;          /* [cout] or data NULL */
    xs_tensor neg_bias;   /* [cout, k - stride] = -bias per row (constant) or data NULL */
    int cin, cout, k, stride, groups;
    int64_t tail_len;     /* k - stride */
    int64_t state_off;    /* floats into mimi_stream.conv_state */
} mimi_convtr;

/* SEANet residual block: ELU, conv k (C -> C/compress, dilation), ELU,
 * conv 1 (-> C), plus the identity. */
typedef struct mimi_resblock {
    mimi_conv c1, c2;
} mimi_resblock;

typedef struct mimi_seanet_enc {
    mimi_conv first;                                   /* model.0 */
    mimi_resblock res[MIMI_MAX_RATIOS][MIMI_MAX_RESIDUAL];
    mimi_conv down[MIMI_MAX_RATIOS];                   /* strided convs */
    mimi_conv last;
} mimi_seanet_enc;

typedef struct mimi_seanet_dec {
    mimi_conv first;
    mimi_convtr up[MIMI_MAX_RATIOS];
    mimi_resblock res[MIMI_MAX_RATIOS][MIMI_MAX_RESIDUAL];
    mimi_conv last;
} mimi_seanet_dec;

typedef struct mimi_tlayer {
    xs_tensor norm1_w, norm1_b, norm2_w, norm2_b;  /* [D] */
    xs_tensor wq, wk, wv;  /* [D, D] row blocks of the fused in_proj_weight */
    xs_tensor wo;          /* [D, D] */
    xs_tensor lin1;        /* [F, D] */
    xs_tensor lin2;        /* [D, F] */
    xs_tensor ls1, ls2;    /* [D] layer scales */
} mimi_tlayer;

typedef struct mimi_transformer {
    int n_layers;
    mimi_tlayer *layers;
} mimi_transformer;

/* One codebook: centroids (embedding_sum / max(cluster_usage, 1e-5)) and
 * -|c|^2 / 2, so that argmax(x . c - |c|^2/2) is the nearest centroid. */
typedef struct mimi_codebook {
    xs_tensor centroids;   /* [bins, qd] */
    xs_tensor neg_half_sq; /* [bins] */
} mimi_codebook;

typedef struct mimi_rvq {
    xs_tensor first_in, first_out; /* [qd, D], [D, qd] (1x1 convs as matrices) */
    xs_tensor rest_in, rest_out;
    mimi_codebook *books;          /* n_q: 0 = rvq_first, 1.. = rvq_rest layers */
} mimi_rvq;

/* Scratch tensors of a call. The i-th request of a call reuses slot i,
 * growing it when too small: encode and decode calls make the same
 * requests every frame, so after the first frame nothing is allocated (no
 * page faults per frame, and fixed addresses, as graph capture wants).
 * Scratch holds no state between calls, so the streams of one model share
 * the model's scratch (see mimi_model.scratch); a stream's own scratch is
 * only used when another thread holds the shared one. */
#define MIMI_SCRATCH_MAX 512
typedef struct mimi_scratch {
    xs_backend *be;
    xs_tensor slot[MIMI_SCRATCH_MAX]; /* raw f32 buffers */
    int64_t cap[MIMI_SCRATCH_MAX];    /* bytes of each slot */
    int n;                            /* slots handed out in this call */
} mimi_scratch;

struct mimi_model {
    xs_backend *be;
    mimi_config cfg;
    mimi_seanet_enc enc;
    mimi_seanet_dec dec;
    mimi_transformer enc_tr, dec_tr;
    mimi_conv downsample;   /* full conv, k 4, stride 2, replicate, no bias */
    mimi_convtr upsample;   /* depthwise convtr, k 4, stride 2, no bias */
    mimi_rvq rvq;
    int64_t conv_state_floats; /* size of a stream's conv_state */
    int64_t n_params;
    /* The call scratch every stream of this model uses (one call at a time:
     * whoever sets scratch_busy owns it until the call ends). Per stream it
     * was ~14 MiB of the 7B's per-session memory (more on a device with
     * 2 MiB pages), for buffers that only live during a call. */
    mimi_scratch scratch;
    atomic_bool scratch_busy;
    /* Lanes (backend/lanes.h): with n_lanes > 1, a stream runs its calls on
     * backend lane stream.lane + 1 (lane 0 stays the LM's), side by side
     * with the other lanes' streams, using lane_scratch[stream.lane]
     * (concurrent calls need their own buffers; calls on one lane run in
     * order, so its streams share them). With one lane: backend lane 0 and
     * `scratch`, as before lanes. A stream keeps its lane, so its
     * recordings keep pointing at the same buffers. */
    int n_lanes;                /* >= 1 */
    int next_lane;              /* lane of the next stream to start a call */
    int lanes_epoch;            /* bumped by mimi_model_set_lanes: streams re-pick */
    mimi_scratch *lane_scratch; /* [n_lanes] when n_lanes > 1 */
    atomic_bool *lane_busy;     /* [n_lanes] when n_lanes > 1 */
    /* Batched calls (mimi_batch.c): the streams' conv states in [slot]-major
     * device memory, the batch's call scratch and recordings. NULL until
     * the first batched call. */
    struct mimi_batch_state *batch;
    /* Backend tensors this model allocated (weights, constants); freed with it. */
    xs_tensor *owned;
    int n_owned, cap_owned;
};

/* ---- per-stream state ---- */

/* One begun, not yet finished encode or decode: its sizes, and the host
 * staging buffer (pinned where the backend has it) that holds the input
 * while it uploads, the positions, and the output as it downloads. */
typedef struct mimi_call {
    bool pending;
    int64_t nf, T, n;       /* frames, transformer steps, samples */
    int n_codebooks;
    void *io;               /* xs_backend_host_alloc */
    size_t io_cap;
} mimi_call;

/* Everything a stream carries between calls. The backend part is one f32
 * buffer of conv contexts and convtr tails plus one KV ring per transformer
 * layer; the host part is five counters/flags. Reset = zeros + empty rings
 * + counters 0. A stream is used by one thread at a time; streams of one
 * model may run concurrently only if the backend's ops are thread-safe. */
struct mimi_stream {
    mimi_model *m;
    xs_taps *taps;
    mimi_scratch scratch;   /* fallback call scratch: used (and allocated) only when
                               the model's shared one is busy on another thread */
    xs_tensor conv_state;   /* f32 [m->conv_state_floats]: conv_home, or the stream's
                               slot in m->batch while it lives there (mimi_batch.c) */
    xs_tensor conv_home;    /* the stream's own conv state allocation */
    int batch_slot;         /* slot in m->batch holding the live conv state, -1: home */
    xs_kv_cache *enc_kv;    /* [num_layers], capacity = context */
    xs_kv_cache *dec_kv;    /* = enc_kv + num_layers (one array) */
    xs_tensor kv_block;     /* the one allocation behind all 2 * num_layers rings
                               (model/kv_rings.h) */
    /* host counters (the "RESET_START" part, all zero after a reset) */
    int64_t enc_pos;        /* next encoder transformer position (25 Hz) */
    int64_t dec_pos;        /* next decoder transformer position */
    int64_t enc_frames;     /* frames encoded so far (taps of the first 3) */
    int64_t dec_frames;
    bool downsample_primed; /* replicate padding done */
    /* Recorded one-frame encode / decode (CUDA graphs; see mimi_stream.c).
     * Not state: a reset keeps them, they replay on the fresh state. */
    xs_graph enc_graph, dec_graph;
    /* Where this stream's encode / decode (mimi_encode_begin...) last put its
     * codes / pcm: a replay does not run the C code that computes them, and
     * writes to the same place. The whole-frame graph leaves them alone. */
    xs_tensor enc_out, dec_out;
    /* Lanes and split calls (mimi_encode_begin / _finish ...). */
    int lane;               /* -1 until the first call picks one */
    int lane_epoch;         /* m->lanes_epoch when picked */
    mimi_call enc_call, dec_call;
};

xs_status mimi_tmp(mimi_scratch *sc, int64_t d0, int64_t d1, xs_tensor *out);
xs_status mimi_tmp_dtype(mimi_scratch *sc, xs_dtype dt, int64_t d0, int64_t d1, xs_tensor *out);
void mimi_scratch_release(mimi_scratch *sc); /* end of a call: slots reusable */
void mimi_model_lanes_free(mimi_model *m);   /* the lanes' scratch (mimi_stream.c) */
void mimi_scratch_free(mimi_scratch *sc);    /* free every slot */

/* Streaming layers (mimi_seanet.c). x [cin, T] contiguous; *y is allocated
 * from sc, contiguous [cout, T/stride] (conv) or [cout, T*stride] (convtr). */
xs_status mimi_conv_run(mimi_scratch *sc, const mimi_conv *cv, mimi_stream *s,
                        const xs_tensor *x, xs_tensor *y);
/* res + the same conv of elu(x) when `elu` (alpha 1; res NULL: no add):
 * the elu is applied as the conv's input is assembled (xs_op_conv_input,
 * or the matmul form's gather) and res is added as the conv stores
 * (xs_op_conv1d_add) where the backend fuses them. scratch: [cin, T], where
 * elu(x) may be written instead (may be x itself: then x is clobbered);
 * unused without elu. res: [cout, T/stride], not x. */
xs_status mimi_conv_run_act(mimi_scratch *sc, const mimi_conv *cv, mimi_stream *s,
                            const xs_tensor *x, bool elu, xs_tensor *scratch,
                            const xs_tensor *res, xs_tensor *y);
xs_status mimi_convtr_run(mimi_scratch *sc, const mimi_convtr *ct, mimi_stream *s,
                          const xs_tensor *x, xs_tensor *y);
/* SEANet encoder: pcm [1, n] -> [dimension, n / hop]. */
xs_status mimi_seanet_encode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *x,
                             xs_tensor *y);
/* SEANet decoder: [dimension, T] -> [1, T * hop]. */
xs_status mimi_seanet_decode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *x,
                             xs_tensor *y);

/* One transformer layer in two halves around its attention (shared by the
 * solo and the batched transformer): mimi_layer_qkv takes the scratch of
 * the layer (io) and computes io->q, k, v = rope(LN1(x) . w) for the R rows
 * of x [R, D] at positions pos (i32 [R]) — LN1(x) is h_ready when not
 * NULL (the previous layer's tail computed it); the caller fills io->att
 * [R, D]; mimi_layer_tail adds ls1 * wo(att) and the FFN to x and, when
 * `next` is not NULL, leaves next's LN1(x) in io->h (for its h_ready): the
 * residual add and the next norm are one fused op (ops.h). */
typedef struct mimi_layer_io {
    xs_tensor h, q, k, v, att, o, f;
} mimi_layer_io;
xs_status mimi_layer_qkv(mimi_scratch *sc, const mimi_config *c, const mimi_tlayer *ly,
                        const xs_tensor *pos, const xs_tensor *x, const xs_tensor *h_ready,
                        mimi_layer_io *io);
xs_status mimi_layer_tail(mimi_scratch *sc, const mimi_tlayer *ly, const mimi_tlayer *next,
                          mimi_layer_io *io, xs_tensor *x);
/* Transformer over x [D, T] (conv layout); *y [D, T]. `pos` = i32 [T]
 * positions of the columns in backend memory (from mimi_positions_stage);
 * tap prefix "mimi.enc.transformer" / "mimi.dec.transformer". */
xs_status mimi_transformer_run(mimi_scratch *sc, mimi_stream *s, const mimi_transformer *tr,
                               xs_kv_cache *kv, const xs_tensor *pos, const char *tap_prefix,
                               const xs_tensor *x, xs_tensor *y);
/* Upload positions pos0 .. pos0 + T - 1 into a scratch i32 [T] tensor.
 * host: T staging ints that stay untouched until the upload ran (pinned,
 * so that it does not wait), or NULL (a temporary, waiting upload). */
xs_status mimi_positions_stage(mimi_scratch *sc, int64_t pos0, int64_t T, int32_t *host,
                               xs_tensor *pos);

/* RVQ (mimi_rvq.c). latent [D, T] -> codes i32 [n_codebooks, T] (backend). */
xs_status mimi_rvq_encode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *latent,
                          int n_codebooks, xs_tensor *codes);
/* codes i32 [n_codebooks, T] (backend) -> latent [D, T]. */
xs_status mimi_rvq_decode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *codes,
                          int n_codebooks, xs_tensor *latent);

/* Record a conv-side [C, T] tensor as [1, C, cols] (the first `cols` columns,
 * all when cols < 0) along axis 2; no-op without taps. */
xs_status mimi_tap_ct(mimi_scratch *sc, mimi_stream *s, const char *name, const xs_tensor *x,
                      int64_t cols);
/* Record a transformer-side [T, C] tensor as [1, T, C] along axis 1. */
xs_status mimi_tap_tc(mimi_stream *s, const char *name, const xs_tensor *x);

/* Batched calls (mimi_batch.c): free the model's batch state (every stream's
 * conv state must be home, i.e. its streams freed first or evicted);
 * a stream that goes away gives its slot up (no copy). */
void mimi_batch_state_free(mimi_model *m);
void mimi_batch_forget(mimi_stream *s);
/* Streams per computation of a batched call (more: several groups in turn);
 * 0 = XSWARM_MIMI_BATCH_MAX, default 64 (tests). */
void mimi_batch_set_group_max(int n);
/* Recordings made and replays of the batched encode + decode (tests). */
void mimi_batch_graph_stats(const mimi_model *m, int64_t *captures, int64_t *launches);

/* What the batched layers need: the call's scratch, the streams, and
 * where their conv states are (slot i at state + i * F). */
typedef struct mimi_bctx {
    mimi_scratch *sc;
    xs_backend *be;
    mimi_stream *const *s;
    int n;
    float *state;
    int64_t F;
} mimi_bctx;

/* The batched layers (mimi_batch_layers.c; layouts at the top of
 * mimi_batch.c). Streaming conv: x [cin, n*T] -> *y [cout, n*T/stride];
 * transposed conv: x [cin, n*T] -> *y [cout, n*T*stride]. */
xs_status mimi_bconv(mimi_bctx *c, const mimi_conv *cv, const xs_tensor *x, int64_t T,
                     xs_tensor *y);
xs_status mimi_bconvtr(mimi_bctx *c, const mimi_convtr *ct, const xs_tensor *x, int64_t T,
                       xs_tensor *y);
/* SEANet: pcm [1, n*T] -> [dimension, n*T/hop], and back. */
xs_status mimi_bseanet_encode(mimi_bctx *c, const mimi_model *m, const xs_tensor *x, int64_t T,
                              xs_tensor *y);
xs_status mimi_bseanet_decode(mimi_bctx *c, const mimi_model *m, const xs_tensor *x, int64_t T,
                              xs_tensor *y);
/* x [D, n*T] (conv layout) -> *y [D, n*T]; layer l's caches of the n
 * streams at kv + l * kv_stride, positions pos (i32, one per row). */
xs_status mimi_btransformer(mimi_bctx *c, const mimi_model *m, const mimi_transformer *tr,
                            xs_kv_cache *const *kv, int kv_stride, const xs_tensor *pos,
                            const xs_tensor *x, int64_t T, xs_tensor *y);

/* ---- one streaming frame inside a recorded whole frame (frame_graph.c) ----
 * The encode and decode calls of mimi_stream.c split so that another
 * model's device work can sit between their device parts in ONE recording:
 * mimi_frame_begin takes the stream's own scratch (fixed buffers for the
 * recording, ~14 MiB for Moshi's Mimi) and stages everything (the pcm,
 * both position ranges, an i32 [nq_dec, 1] slot for the decoder's codes,
 * which the caller fills on the device); the two device parts are ops only;
 * mimi_frame_end advances the host counters (when ok) and releases the
 * scratch. Between begin and end nothing else may use the stream. */
typedef struct mimi_frame {
    mimi_stream *s;
    mimi_scratch *sc;
    int n0, nq_enc, nq_dec;
    int64_t T_enc, T_dec;
    xs_tensor pcm, enc_pos, codes, dec_pos; /* staged; codes: the decoder's input */
} mimi_frame;

/* One-frame calls can be recorded: no taps, replicate padding primed. */
bool mimi_frame_ready(const mimi_stream *s);
xs_status mimi_frame_begin(mimi_stream *s, const float *pcm, int nq_enc, int nq_dec,
                           mimi_frame *f);
/* codes: i32 [nq_enc, 1] / pcm [1, frame]: scratch views, the same every run. */
xs_status mimi_frame_encode_device(mimi_frame *f, xs_tensor *codes);
xs_status mimi_frame_decode_device(mimi_frame *f, xs_tensor *pcm);
/* Fold what a recording of the two device parts depends on into key. */
uint64_t mimi_frame_key(const mimi_frame *f, uint64_t key);
void mimi_frame_end(mimi_frame *f, bool ok);

#endif
