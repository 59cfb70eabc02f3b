/*
 * session.h — the conversation pipeline: one loaded model (Mimi + Moshi LM +
 * optional text tokenizer) shared by any number of sessions; a session owns
 * everything a conversation carries (Mimi stream, LM generator, text).
 *
 * One input frame (1920 samples, 24 kHz mono f32) does, as Kyutai's offline
 * loop moshi/run_inference.py does:
 *   codes = mimi_encode(frame)                 (n_q - dep_q user codes)
 *   lm_gen_step(codes)  — TWICE for the very first frame (the first call
 *                         returns nothing, so the first frame is not lost)
 *   each step that returns [text, a0..a7]: mimi_decode(a0..a7) at once.
 * With max delay 1 every frame gives one output frame (the first one after
 * its second step).
 *
 * The public API of include/xswarm.h (xswarm_model / xswarm_session) is this
 * same object: these functions are the internal, more detailed view used by
 * the commands (per-step tokens and timings for codes files and reports).
 */
#ifndef XS_MODEL_SESSION_H
#define XS_MODEL_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "diag/taps.h"
#include "formats/spm.h"
#include "model/bundle.h"
#include "model/lm.h"
#include "model/mimi.h"
#include "xswarm.h"

#define XS_PIPE_MAX_STEPS 4 /* LM steps one input frame may trigger (first frame: 2) */
#define XS_PIPE_MAX_CODES (1 + LM_MAX_DEP)

/* struct xswarm_model: the loaded parts. Read-only once loaded. */
struct xswarm_model {
    xs_backend *be;
    bool owns_be;
    mimi_model *mimi;
    lm_model *lm;
    xs_spm *spm;       /* NULL: no tokenizer given, no text */
    xs_bundle parts;   /* the files loaded */
    char mimi_config_used[XS_PATH_MAX];
    int user_codes;    /* codes per frame given to the LM: n_q - dep_q */
    int dep_q;         /* codes per frame the LM returns (and Mimi decodes) */
};

/* What one input frame did. */
typedef struct xs_pipe_frame_info {
    int32_t frame_codes[LM_MAX_STREAMS];           /* Mimi codes of the input frame */
    int n_steps;                                    /* LM steps run (2 for frame 0) */
    int32_t step_out[XS_PIPE_MAX_STEPS][XS_PIPE_MAX_CODES]; /* -1 rows when !valid */
    bool step_valid[XS_PIPE_MAX_STEPS];
    int n_out_frames;                               /* decoded 1920-sample frames */
    double enc_ms, lm_ms, dec_ms;                   /* wall time of each part */
    bool one_graph; /* the frame ran as one recorded graph: lm_ms is all of it */
} xs_pipe_frame_info;

/* Load the parts of b (lm, mimi required; configs and tokenizer optional) on
 * be (borrowed, must outlive the model). Errors name the file at fault. */
xs_status xs_pipe_model_load(xs_backend *be, const xs_bundle *b, xswarm_model **out);

/* struct xswarm_session */
typedef struct xswarm_session xswarm_session;

/* sampling NULL: the model config's defaults. taps may be NULL (not owned). */
xs_status xs_pipe_session_new(xswarm_model *m, const lm_sampling *sampling, xs_taps *taps,
                              xswarm_session **out);
/* One input frame (XSWARM_FRAME_SAMPLES samples) -> out_pcm gets
 * info->n_out_frames * 1920 samples (room for XS_PIPE_MAX_STEPS frames).
 * Streamed text of this frame is appended to the session text. */
xs_status xs_pipe_session_frame(xswarm_session *s, const float *pcm, float *out_pcm,
                                xs_pipe_frame_info *info);
/* n sessions of one model, one input frame each, stepped together: Mimi
 * encode per session (all begun, then all finished: side by side on the
 * backend's lanes, mimi.h), the LM steps of all of them batched through lb
 * (capacity >= n; NULL only with n == 1: the session's own batch-1 step),
 * Mimi decode per session (likewise). pcm[i] / out_pcm[i] / info[i] as in
 * xs_pipe_session_frame, which is this with n = 1. Each session gets exactly
 * what xs_pipe_session_frame would give it. */
xs_status xs_pipe_batch_frame(lm_batch *lb, xswarm_session *const *ss, int n,
                              const float *const *pcm, float *const *out_pcm,
                              xs_pipe_frame_info *info);
/* The session's LM generator (benchmarks: `bench batch --fill-context`
 * fills its KV cache through lm_gen_fill_context). Owned by the session. */
lm_gen *xs_pipe_session_lm_gen(xswarm_session *s);
/* The session's Mimi stream (benchmarks: `bench batch` profiles the batched
 * Mimi calls on it directly). Owned by the session. */
mimi_stream *xs_pipe_session_mimi(xswarm_session *s);
/* The text so far (NUL-terminated, owned by the session). */
const char *xs_pipe_session_text(const xswarm_session *s);
/* Frames pushed so far. */
int64_t xs_pipe_session_frames(const xswarm_session *s);
/* The session's recorded whole frame (model/frame_graph.h), NULL until
 * its first frame went through it (tests read its statistics). */
struct xs_frame_graph *xs_pipe_session_frame_graph(const xswarm_session *s);

#endif
