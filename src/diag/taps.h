/*
 * taps.h — named checkpoints in model code, recorded on demand.
 *
 * Model code calls XS_TAP(taps, be, "mimi.enc.seanet_out", &t, axis) at each
 * intermediate worth checking. With taps == NULL it costs one branch. When
 * recording, each call downloads t and appends it to the tap of that name
 * along `axis` (the time axis of t): successive frames/steps concatenate
 * exactly like the golden files lay out their tensors. Record a per-step
 * vector [D] as shape [1, D] with axis 0 to get [steps, D].
 *
 * Tap names: "mimi.<...>" matches golden "act.<...>" of mimi_tiny (e.g.
 * mimi.enc.seanet_out <-> act.enc.seanet_out); "lm.<name>" matches "<name>"
 * of lm_tiny/pipeline_tiny (lm.main_emb_sum <-> main_emb_sum).
 * xs_tap_golden_name() does the mapping.
 */
#ifndef XS_DIAG_TAPS_H
#define XS_DIAG_TAPS_H

#include "backend/backend.h"

typedef struct xs_taps xs_taps;

xs_taps *xs_taps_new(void);
void xs_taps_free(xs_taps *taps);
/* Restrict recording to names starting with one of the comma-separated
 * prefixes (NULL: all). */
void xs_taps_set_filter(xs_taps *taps, const char *prefixes);

xs_status xs_tap_record(xs_taps *taps, xs_backend *be, const char *name, const xs_tensor *t,
                        int axis);
#define XS_TAP(taps, be, name, t, axis) \
    ((taps) ? xs_tap_record((taps), (be), (name), (t), (axis)) : XS_OK)

int xs_taps_count(const xs_taps *taps);
/* Taps in first-recorded (execution) order; f32 (or i32/i64) host tensors
 * owned by taps. */
const xs_tensor *xs_taps_at(const xs_taps *taps, int i);
const xs_tensor *xs_taps_find(const xs_taps *taps, const char *name);
/* Number of record calls so far for that tap (frames / steps). */
int64_t xs_taps_calls(const xs_taps *taps, const char *name);
xs_status xs_taps_save(const xs_taps *taps, const char *path); /* safetensors */
/* Name of the golden tensor that corresponds to a tap (buffer). */
const char *xs_tap_golden_name(const char *tap, char *buf, size_t n);

#endif
