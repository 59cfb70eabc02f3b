/*
 * status.h — result codes and error messages for library code.
 *
 * Library code never aborts or exits on bad input: it sets a message with
 * xs_error() and returns the status. Broken invariants (bugs) use XS_ASSERT,
 * which reports file and line and aborts, like GGML_ASSERT.
 */
#ifndef XS_CORE_STATUS_H
#define XS_CORE_STATUS_H

#include "xswarm.h"

typedef xswarm_status xs_status;

#define XS_OK XSWARM_OK
#define XS_ERR_ARG XSWARM_ERR_ARG
#define XS_ERR_IO XSWARM_ERR_IO
#define XS_ERR_FORMAT XSWARM_ERR_FORMAT
#define XS_ERR_DTYPE XSWARM_ERR_DTYPE
#define XS_ERR_SHAPE XSWARM_ERR_SHAPE
#define XS_ERR_NOT_FOUND XSWARM_ERR_NOT_FOUND
#define XS_ERR_NOMEM XSWARM_ERR_NOMEM
#define XS_ERR_UNSUPPORTED XSWARM_ERR_UNSUPPORTED
#define XS_ERR_BACKEND XSWARM_ERR_BACKEND
#define XS_ERR_INTERRUPTED XSWARM_ERR_INTERRUPTED
#define XS_ERR_INTERNAL XSWARM_ERR_INTERNAL

/* Set this thread's error message (printf format) and return st, so that
 * `return xs_error(XS_ERR_FORMAT, "%s: bad magic", path);` reads naturally. */
xs_status xs_error(xs_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefix the current message with more context ("loading mimi: " + msg). */
xs_status xs_error_prefix(xs_status st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *xs_error_msg(void);
void xs_error_clear(void);

/* Propagate a failing status. */
#define XS_TRY(expr)                         \
    do {                                     \
        xs_status xs_try_rc_ = (expr);       \
        if (xs_try_rc_ != XS_OK) return xs_try_rc_; \
    } while (0)

void xs_assert_fail(const char *file, int line, const char *expr)
    __attribute__((noreturn));
#define XS_ASSERT(x) \
    do { if (!(x)) xs_assert_fail(__FILE__, __LINE__, #x); } while (0)

#endif
