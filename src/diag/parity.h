/*
 * parity.h — per-op parity between two backends (like ggml's
 * test-backend-ops): each case builds random inputs from a seeded
 * generator, runs one op through the xs_op_* wrappers on backend `a` (the
 * oracle, normally `ref`) and backend `b`, downloads both outputs and
 * scores them.
 *
 * Error = nmse = sum (a-b)^2 / sum a^2 in double (ggml's max_nmse_err),
 * compared with a tolerance per case; integer outputs (argmax, sampling,
 * kv_store positions) must match exactly. A NaN error fails.
 *
 * Cases cover every op of backend.h at small odd sizes (not multiples of
 * any SIMD width), non-contiguous inputs (transposed and sliced views),
 * and, with real_shapes, the shapes of Mimi (SEANet 64 filters, ratios
 * 8 6 5 4, transformer 512 / 8 heads / ffn 2048, context 250) and Moshi 7B
 * (dim 4096, 32 heads, ffn 2x11264, depformer 1024 / 16 heads / 2x2816,
 * vocab 32000, card 2048, context 3000), a few rows of each.
 */
#ifndef XS_DIAG_PARITY_H
#define XS_DIAG_PARITY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"

/* Default base seed; XSWARM_PARITY_SEED overrides it in xs_parity_run. */
#define XS_PARITY_SEED 20240917u

typedef struct xs_parity_opts {
    /* NULL or "": every case. Otherwise a comma-separated list; a case runs
     * when a token equals its op name ("matmul"), its op and weight dtype
     * ("matmul/q8_0"), or "real" / "small" (its shape set). */
    const char *filter;
    bool real_shapes;   /* include the real-model shapes (slower) */
    uint64_t seed;      /* base seed; case i uses seed + 7919 * i */
    double tol_scale;   /* multiply every tolerance (1 = as listed; 0 means 1) */
    FILE *report;       /* one line per case + summary; NULL = silent */
    bool verbose;       /* also print passing cases (failures always print) */
} xs_parity_opts;

/* Run the cases. *n_pass / *n_fail count cases (either may be NULL).
 * Returns XS_OK when the harness ran (even if cases failed: look at
 * *n_fail), or an error when it could not (out of memory, a backend
 * refused an allocation). A case whose op fails on one backend counts as
 * failed and its error message is printed. */
xs_status xs_parity_run_opts(xs_backend *a, xs_backend *b, const xs_parity_opts *opts,
                             int *n_pass, int *n_fail);

/* Shorthand: base seed XS_PARITY_SEED (or $XSWARM_PARITY_SEED), tolerances
 * as listed, every case printed to `report`. */
xs_status xs_parity_run(xs_backend *a, xs_backend *b, const char *filter, bool real_shapes,
                        FILE *report, int *n_pass, int *n_fail);

/* Number of cases and the description of case i ("matmul [1,4096]x[4096,256] q8_0"),
 * for listings; NULL when out of range. */
int xs_parity_case_count(void);
const char *xs_parity_case_desc(int i, char *buf, size_t n);

#endif
