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

#ifdef __cplusplus
}
#endif
#endif /* XSWARM_H */
