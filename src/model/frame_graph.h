/*
 * frame_graph.h — a solo session's whole 80 ms frame (Mimi encode, the LM
 * step with its depformer sub-steps and sampling, Mimi decode) as ONE
 * recorded device piece (backend/graph.h), with no host synchronization
 * inside: the codes go from the encoder into the LM's delay window, the
 * window's column into the LM's ids, the sampled tokens into the window,
 * the window's output frame into the decoder, all by device copies between
 * fixed views (model/lm_window.h).
 *
 *   host: stage pcm + Mimi positions + LM position / counter   (uploads)
 *   device (one graph launch): encode -> window -> LM step -> window
 *          -> decode -> pack [pcm | text + audio tokens | user codes]
 *   host: ONE download of the pack (the only sync), counters advance.
 *
 * Used for a session stepped alone (session.c, xs_pipe_session_frame) once
 * it is in the steady state (lm_gen_device_ready: the first max_delay + 2
 * LM steps take the three-call path) and while the backend records graphs
 * and no taps are set (graph.h decides about fault injection and op
 * hooks). XSWARM_FRAME_GRAPH=0 keeps the three-call path; "eager" runs the
 * same piece without graphs (tests on CPU backends). Leaving the frame path
 * (a batch, taps, the variable) stores the window back into the host ring,
 * so the two paths hand over at any step boundary.
 */
#ifndef XS_MODEL_FRAME_GRAPH_H
#define XS_MODEL_FRAME_GRAPH_H

#include <stdbool.h>

#include "model/session.h"

typedef struct xs_frame_graph xs_frame_graph;

/* Run this frame through *fg (made on first use) when the frame path
 * applies: *done = true and info / out_pcm filled as the three-call path
 * would (one step, one output frame; the whole frame's time in lm_ms).
 * Otherwise *done = false, nothing ran (the window, if it was in use, went
 * back to the host ring). */
xs_status xs_frame_graph_run(xs_frame_graph **fg, xswarm_model *m, mimi_stream *ms, lm_gen *gen,
                             const float *pcm, float *out_pcm, xs_pipe_frame_info *info,
                             bool *done);
/* Before the generator steps outside the frame path: window -> host ring. */
xs_status xs_frame_graph_leave(xs_frame_graph *fg, lm_gen *gen);
/* After a reset of the session (its step is 0 again): the window is stale. */
void xs_frame_graph_reset(xs_frame_graph *fg);
/* Recording statistics (tests): captures, launches, eager runs. */
void xs_frame_graph_stats(const xs_frame_graph *fg, int64_t *captures, int64_t *launches,
                          int64_t *eager);
void xs_frame_graph_free(xs_frame_graph *fg, xs_backend *be);

#endif
