/*
 * analyze_png.c — picture of an analysis (stub while being written).
 */
#include "diag/analyze.h"

xs_status xs_an_write_png(const xs_analysis *a, const char *path, const char *title) {
    (void)a;
    (void)title;
    return xs_error(XS_ERR_UNSUPPORTED, "%s: PNG output not written yet", path);
}
