/*
 * xswarm.h — public C API of xswarm, a runtime for Kyutai's Moshi
 * full-duplex speech model (Mimi codec + Moshi LM).
 *
 * Audio conventions: mono float PCM in [-1, 1] at 24000 Hz. One frame is
 * 1920 samples (80 ms, 12.5 Hz). Every handle is opaque.
 *
 * Return convention: functions returning xswarm_status give XSWARM_OK (0)
 * on success and a negative code otherwise; xswarm_last_error() then holds a
 * message naming the file, tensor or argument at fault. Out-parameters are
 * left unchanged on error.
 */
#ifndef XSWARM_H
#define XSWARM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XSWARM_SAMPLE_RATE 24000
#define XSWARM_FRAME_SAMPLES 1920

typedef enum xswarm_status {
    XSWARM_OK = 0,
    XSWARM_ERR_ARG = -1,         /* invalid argument from the caller */
    XSWARM_ERR_IO = -2,          /* a file could not be opened, read or written */
    XSWARM_ERR_FORMAT = -3,      /* a file is malformed (header, offsets, sizes) */
    XSWARM_ERR_DTYPE = -4,       /* unsupported or unexpected element type */
    XSWARM_ERR_SHAPE = -5,       /* tensor shape does not match what is expected */
    XSWARM_ERR_NOT_FOUND = -6,   /* a named tensor, key or file is missing */
    XSWARM_ERR_NOMEM = -7,       /* allocation failed */
    XSWARM_ERR_UNSUPPORTED = -8, /* valid request that this build cannot do */
    XSWARM_ERR_BACKEND = -9,     /* the compute backend failed (driver, device) */
    XSWARM_ERR_INTERRUPTED = -10,/* stopped by a signal or by the caller */
    XSWARM_ERR_INTERNAL = -11    /* a broken invariant: a bug in xswarm */
} xswarm_status;

/* Short constant name of a status ("ok", "io", ...). Never NULL. */
const char *xswarm_status_str(xswarm_status st);

/* Message of the last error on this thread ("" if none). Valid until the
 * next failing call on the same thread. */
const char *xswarm_last_error(void);

/* Version string, e.g. "0.1.0". */
const char *xswarm_version(void);


/* ---- model and sessions ------------------------------------------------
 * One loaded model (Mimi codec + Moshi LM + optional SentencePiece text
 * tokenizer) serves any number of sessions; each session owns its own
 * conversation state (codec stream, LM caches, sampler, text). Sessions of
 * one model share its compute backend (and its worker threads): calls on
 * them must not overlap in time; for parallel conversations on several
 * threads, load one model per thread.
 *
 * Audio in and out: mono float PCM in [-1, 1] at XSWARM_SAMPLE_RATE (24 kHz),
 * processed in frames of XSWARM_FRAME_SAMPLES (1920 samples, 80 ms). Push any
 * number of samples; every complete frame is processed at once (encode, LM
 * step, decode) and its 1920 response samples become available to pull. The
 * loop is Kyutai's offline one (moshi/run_inference.py): the first frame's
 * codes are given to the LM twice so the answer stays aligned with the
 * input; so N pushed frames give N response frames.
 */
typedef struct xswarm_model xswarm_model;
typedef struct xswarm_session xswarm_session;

/* Load a model bundle: a folder laid out like a Hugging Face snapshot of a
 * Kyutai repo (model.safetensors | model.q8.gguf | ..., tokenizer-*.safetensors,
 * tokenizer_spm_*.model, optional config.json and mimi_config.json).
 * backend: "ref", "cpu", "cuda" or NULL (cuda when usable, else cpu);
 * threads <= 0: one per core. */
xswarm_status xswarm_model_load(const char *dir, const char *backend, int threads,
                                xswarm_model **out);
/* The same from parts; NULL for lm_config / mimi_config / tokenizer means
 * none (LM: Moshi 7B preset; Mimi: the file's neighbour config or the
 * released preset; no tokenizer: no text). */
xswarm_status xswarm_model_load_parts(const char *lm, const char *lm_config, const char *mimi,
                                      const char *mimi_config, const char *tokenizer,
                                      const char *backend, int threads, xswarm_model **out);
void xswarm_model_free(xswarm_model *m); /* after all its sessions; NULL ok */

/* A new conversation. Sampling: the model's defaults (Kyutai's temperature
 * 0.8 / text 0.7, top-k 250 / 25) with this seed; same seed, same backend,
 * same input: identical output. */
xswarm_status xswarm_session_new(xswarm_model *m, uint64_t seed, xswarm_session **out);
/* Change sampling before the first push. greedy != 0: argmax everywhere. */
xswarm_status xswarm_session_set_sampling(xswarm_session *s, int greedy, float temp, int top_k,
                                          float text_temp, int text_top_k);
/* Feed n samples (any n >= 0); complete frames are processed now. */
xswarm_status xswarm_session_push(xswarm_session *s, const float *pcm, size_t n);
/* Move up to max response samples into pcm; returns how many. */
size_t xswarm_session_pull(xswarm_session *s, float *pcm, size_t max);
/* Move the response text produced so far (UTF-8, NUL-terminated, at most
 * n - 1 bytes) into buf; returns its length. Empty without a tokenizer. */
size_t xswarm_session_pull_text(xswarm_session *s, char *buf, size_t n);
/* Back to a fresh conversation (same model, same sampling and seed). */
xswarm_status xswarm_session_reset(xswarm_session *s);
void xswarm_session_free(xswarm_session *s); /* NULL ok; leaves its batch first */

/* ---- batched sessions ---------------------------------------------------
 * A batch steps up to `capacity` sessions of one model together: one LM
 * step serves all of them, reading each weight once per step instead of
 * once per session (the LM step is memory-bound, so B sessions cost far
 * less than B times one). Every session keeps its own state, seed and
 * output: a session gives exactly the same tokens, text and pcm in a batch
 * as alone, whatever the other members do (on the "cpu" backend for up to
 * 16 sessions stepped together; past 16 its matmul switches to a GEMM whose
 * rounding differs slightly). Mimi encode / decode still run one session
 * after the other (only the LM is batched, for now).
 *
 * While a session is a member, xswarm_session_push only queues its samples;
 * xswarm_batch_step processes them. Pull, pull_text and reset work as usual
 * (a reset member stays in the batch and starts a fresh conversation at its
 * next frame). Sessions join and leave at any time between steps without
 * disturbing the others. A session belongs to at most one batch. Calls on a
 * batch and on its members must not overlap in time. */
typedef struct xswarm_batch xswarm_batch;

/* A batch of at most capacity (1..4096) sessions of model m, empty. */
xswarm_status xswarm_batch_new(xswarm_model *m, int capacity, xswarm_batch **out);
/* Add s (a session of the same model, in no batch). XSWARM_ERR_ARG when the
 * batch is full or s is already a member of some batch. */
xswarm_status xswarm_batch_join(xswarm_batch *b, xswarm_session *s);
/* Remove s from b. Its queued samples stay queued: the next
 * xswarm_session_push (or a later batch) processes them. */
xswarm_status xswarm_batch_leave(xswarm_batch *b, xswarm_session *s);
/* Members now. */
int xswarm_batch_size(const xswarm_batch *b);
/* One 80 ms frame for every member that has a complete frame
 * (XSWARM_FRAME_SAMPLES samples) queued: encode each, one batched LM step
 * (two for members at their first frame, like a lone session), decode
 * each; responses go to each member's pull queue. *n_stepped (may be NULL)
 * gets the number of members stepped (0 when none had a frame ready). On
 * error the members of this step are in an unspecified state: reset them. */
xswarm_status xswarm_batch_step(xswarm_batch *b, int *n_stepped);
/* Members leave (they are not freed); NULL ok. */
void xswarm_batch_free(xswarm_batch *b);

#ifdef __cplusplus
}
#endif
#endif /* XSWARM_H */
