#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>

static xs_log_level g_level = XS_LOG_INFO;
static xs_log_fn g_fn;
static void *g_user;

void xs_log_set_level(xs_log_level level) { g_level = level; }
xs_log_level xs_log_get_level(void) { return g_level; }
void xs_log_set_callback(xs_log_fn fn, void *user) { g_fn = fn; g_user = user; }

void xs_log(xs_log_level level, const char *fmt, ...) {
    if (level > g_level) return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (g_fn) { g_fn(level, msg, g_user); return; }
    static const char *tag[] = {"error: ", "warning: ", "", ""};
    fprintf(stderr, "xswarm: %s%s\n", tag[level], msg);
}
