/*
 * experiment.h — the folder a run leaves behind for debugging:
 * ./tmp/experiments/<YYYYmmdd-HHMMSS UTC>-<tag>/ with input, response,
 * codes, text, per-step timings and a report.json.
 */
#ifndef XS_DIAG_EXPERIMENT_H
#define XS_DIAG_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* mkdir -p root, then create root/<UTC stamp>-<tag> (suffix -2, -3, ... if it
 * exists). out gets the folder path. */
xs_status xs_experiment_create(const char *root, const char *tag, char *out, size_t n);
/* mkdir -p */
xs_status xs_mkdir_p(const char *path);
/* Lower-case hex SHA-256 of a file (65 bytes with NUL). */
xs_status xs_sha256_file(const char *path, char hex[65]);
/* p-th percentile (0..100) of n values, nearest-rank on a sorted copy. */
double xs_percentile(const double *v, int64_t n, double p);

#endif
