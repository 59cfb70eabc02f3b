/*
 * tap_compare.h — compare two recordings of the same run tap by tap
 * (xs_taps against xs_taps, or xs_taps against a safetensors dump such as a
 * golden file), with the tolerances of ../shared/golden/README.md §7:
 *   activations / logits / pcm: max |a - b| <= 1e-4 * max(1, max |ref|)
 *   integer tensors (codes, tokens): exact.
 *
 * Time axis: taps concatenate records along a time axis (taps.h). The
 * comparison covers the common length along it (a run of 5 frames compares
 * against the first 5 frames of a 77-frame golden file), and reports where
 * the error first exceeds the tolerance as a step (record index) and a time
 * index. The axis is inferred from the tap name: lm.* along 0, mimi
 * transformer layer outputs ([1, T, C]) along 1, other mimi taps along the
 * last dim ([1, C, T]).
 */
#ifndef XS_DIAG_TAP_COMPARE_H
#define XS_DIAG_TAP_COMPARE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "diag/taps.h"

#define XS_TAPCMP_WORST 4

typedef struct xs_tap_diff {
    char name[96];       /* tap name (as recorded in `got`) */
    bool integer;        /* compared exactly */
    bool skipped;        /* absent in ref, or shapes incompatible: see why */
    char why[96];
    bool over;           /* some element over tolerance (or non-finite) */
    double max_abs;      /* over the compared part */
    double max_rel;      /* max_abs / max(1, max |ref|) */
    double ref_max;      /* max |ref| */
    double tol;          /* absolute tolerance used */
    int axis;            /* time axis */
    int64_t steps;       /* records compared along the axis (calls) */
    int64_t first_time;  /* first time index over tolerance, -1 if none */
    int64_t first_step;  /* record (frame / step) of first_time, -1 if none */
    int n_worst;
    int64_t worst[XS_TAPCMP_WORST][XS_MAX_DIMS]; /* indices of the largest errors */
    double worst_err[XS_TAPCMP_WORST];
    int ndim;
} xs_tap_diff;

typedef struct xs_tap_report {
    int n;               /* taps compared (in got's execution order) */
    xs_tap_diff *diffs;  /* owned */
    int first;           /* index of the first divergence (earliest step, then
                            execution order), -1 when all within tolerance */
    int n_over;
} xs_tap_report;

typedef struct xs_tapcmp_opts {
    double rel_tol;      /* 0: 1e-4 */
    const char *skip;    /* comma-separated name prefixes not compared, or NULL */
} xs_tapcmp_opts;

/* ref: the reference run, got: the run under suspicion. */
xs_status xs_tap_compare(const xs_taps *ref, const xs_taps *got, const xs_tapcmp_opts *opts,
                         xs_tap_report *out);
/* Compare got against the tensors of a safetensors dump, each tap matched
 * to the tensor named xs_tap_golden_name(tap) (or the tap's own name). */
xs_status xs_tap_compare_file(const char *dump_path, const xs_taps *got,
                              const xs_tapcmp_opts *opts, xs_tap_report *out);
/* Compare two host tensors directly (used by both of the above and tests).
 * calls: records of the tap (for step numbers; <= 0: one per time index). */
xs_status xs_tap_diff_tensors(const char *name, const xs_tensor *ref, const xs_tensor *got,
                              int64_t calls, double rel_tol, xs_tap_diff *d);
void xs_tap_report_free(xs_tap_report *r);
/* Human-readable summary: first divergence and the later diverging taps. */
void xs_tap_report_print(const xs_tap_report *r, FILE *f);
/* Time axis used for a tap of that name and rank. */
int xs_tap_time_axis(const char *name, int ndim);

#endif
