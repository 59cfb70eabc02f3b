/*
 * analyze_internal.h — shared between the analyze_*.c files only.
 */
#ifndef XS_DIAG_ANALYZE_INTERNAL_H
#define XS_DIAG_ANALYZE_INTERNAL_H

#include "diag/analyze.h"

#define AN_SUB 60 /* 2.5 ms sub-frames for sharp envelopes (edges, onsets) */

/* Working state of one analysis: the result plus series only detectors need. */
typedef struct an_ctx {
    xs_analysis *a;
    const float *x;   /* == a->pcm */
    int64_t n;
    int n_sub;
    float *sub_db;    /* [n_sub] energy of 2.5 ms sub-frames, dBFS */
    float *centroid;  /* [n_frames] Hz */
    float *flatness;  /* [n_frames] 0..1 */
    float *voicing;   /* [n_frames] normalized autocorrelation at the pitch lag */
    double speech_db; /* loud-frame level (95th percentile of frame_db) */
    double floor_db;  /* noise floor (10th percentile of frame_db) */
    double active_db; /* activity threshold used for a->active */
    int n_active;
} an_ctx;

/* In-place complex FFT, n a power of two (forward, no scaling). */
void an_fft(float *re, float *im, int n);
/* p-th percentile (0..100) of v (copied, v unchanged); NAN if n == 0. */
double an_percentile(const float *v, int n, double p);
double an_median(const float *v, int n);

xs_status an_features(an_ctx *c);
xs_status an_detect_all(an_ctx *c);
/* Append a defect (NULL when the table is full). Evidence fields start unset. */
xs_an_defect *an_add_defect(xs_analysis *a, const char *name, xs_an_severity sev, float conf);
void an_defect_add_time(xs_an_defect *d, double t0, double t1);
void an_score(xs_analysis *a);

#endif
