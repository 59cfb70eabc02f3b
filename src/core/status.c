#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XS_ERRMSG_MAX 1024
static _Thread_local char g_errmsg[XS_ERRMSG_MAX];

xs_status xs_error(xs_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_errmsg, sizeof g_errmsg, fmt, ap);
    va_end(ap);
    return st;
}

xs_status xs_error_prefix(xs_status st, const char *fmt, ...) {
    char prefix[XS_ERRMSG_MAX], old[XS_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_errmsg, sizeof old);
    snprintf(g_errmsg, sizeof g_errmsg, "%.511s%.511s", prefix, old);
    return st;
}

const char *xs_error_msg(void) { return g_errmsg; }
void xs_error_clear(void) { g_errmsg[0] = 0; }

void xs_assert_fail(const char *file, int line, const char *expr) {
    fprintf(stderr, "xswarm: internal error at %s:%d: assertion '%s' failed\n", file, line, expr);
    abort();
}

const char *xswarm_status_str(xswarm_status st) {
    switch (st) {
    case XSWARM_OK: return "ok";
    case XSWARM_ERR_ARG: return "bad argument";
    case XSWARM_ERR_IO: return "i/o error";
    case XSWARM_ERR_FORMAT: return "malformed file";
    case XSWARM_ERR_DTYPE: return "unsupported dtype";
    case XSWARM_ERR_SHAPE: return "shape mismatch";
    case XSWARM_ERR_NOT_FOUND: return "not found";
    case XSWARM_ERR_NOMEM: return "out of memory";
    case XSWARM_ERR_UNSUPPORTED: return "unsupported";
    case XSWARM_ERR_BACKEND: return "backend error";
    case XSWARM_ERR_INTERRUPTED: return "interrupted";
    case XSWARM_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

const char *xswarm_last_error(void) { return g_errmsg; }
const char *xswarm_version(void) { return XSWARM_VERSION; }
