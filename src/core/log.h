/*
 * log.h — leveled logging through one hook (stderr by default).
 */
#ifndef XS_CORE_LOG_H
#define XS_CORE_LOG_H

typedef enum xs_log_level {
    XS_LOG_ERROR = 0, XS_LOG_WARN = 1, XS_LOG_INFO = 2, XS_LOG_DEBUG = 3
} xs_log_level;

typedef void (*xs_log_fn)(xs_log_level level, const char *msg, void *user);

void xs_log_set_level(xs_log_level level);  /* messages above level are dropped */
xs_log_level xs_log_get_level(void);
void xs_log_set_callback(xs_log_fn fn, void *user); /* NULL restores stderr */
void xs_log(xs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define XS_LOGE(...) xs_log(XS_LOG_ERROR, __VA_ARGS__)
#define XS_LOGW(...) xs_log(XS_LOG_WARN, __VA_ARGS__)
#define XS_LOGI(...) xs_log(XS_LOG_INFO, __VA_ARGS__)
#define XS_LOGD(...) xs_log(XS_LOG_DEBUG, __VA_ARGS__)

#endif
