/*
 * lm_window.h — the LM's token delay cache as a device tensor with static
 * indices (a shift register), so that a recorded frame (frame_graph.h) can
 * move user codes, LM inputs, sampled tokens and decoder inputs between
 * FIXED views, step after step.
 *
 * The host ring of lm_gen.c indexes its slots by step % ct, which a
 * replayed graph cannot follow. The window instead keeps row i = the tokens
 * of absolute step s + i - D (D = max delay, s = the step about to run), in
 * i32 [W = 2D + 2 rows][n_delays streams], time-major. One steady-state
 * step (s > every delay, so no stream is in its "initial token" phase) is:
 *   put_user      user stream k (delay d_k)  -> row D + d_k
 *   take_input    row D (all streams)        -> the LM's input ids
 *   put_sampled   sampled streams 0..dep_q   -> row D + 1
 *   take_output   stream k of row 1 + d_k    -> the output frame s - D
 *   shift         row i <- row i + 1         (two copies through a temporary)
 * which reads and writes the same tokens as the host ring's rules 1-4.
 * Rows hold tokens of steps s - D .. s + D + 1; the ring's reads reach back
 * to s + 1 - D and ahead to s + D, so nothing needed is ever shifted out.
 *
 * load / store convert between the host ring and the window at a step
 * boundary (entering / leaving the device path); only the slots the ring's
 * future reads need are carried, the others are -1.
 */
#ifndef XS_MODEL_LM_WINDOW_H
#define XS_MODEL_LM_WINDOW_H

#include <stdint.h>

#include "backend/backend.h"
#include "model/lm.h"

typedef struct lm_window {
    xs_backend *be;
    int nd, dq, D, W;        /* streams, sampled streams - 1, max delay, rows */
    int delays[LM_MAX_STREAMS];
    xs_tensor win;           /* i32 [W * nd] */
    xs_tensor tmp;           /* i32 [(W - 1) * nd] the shift's temporary */
    int32_t *host;           /* [W * nd] load / store staging */
} lm_window;

xs_status lm_window_init(xs_backend *be, const lm_config *c, lm_window *w);
void lm_window_free(lm_window *w); /* safe on a zeroed window */

/* Host ring ([n_delays][ct], slot = step % ct) <-> window, before step s. */
xs_status lm_window_load(lm_window *w, const int32_t *ring, int ct, int64_t s);
xs_status lm_window_store(const lm_window *w, int32_t *ring, int ct, int64_t s);

/* Device ops only (capturable). Tensors are contiguous i32 in be's memory:
 * user [n_q - dep_q], ids [n_delays], sampled / out [1 + dep_q]. */
xs_status lm_window_put_user(lm_window *w, const xs_tensor *user);
xs_status lm_window_take_input(lm_window *w, xs_tensor *ids);
xs_status lm_window_put_sampled(lm_window *w, const xs_tensor *sampled);
xs_status lm_window_take_output(lm_window *w, xs_tensor *out);
xs_status lm_window_shift(lm_window *w);

#endif
