/*
 * analyze_measures.h — signal measures used by the detectors (internal).
 */
#ifndef XS_DIAG_ANALYZE_MEASURES_H
#define XS_DIAG_ANALYZE_MEASURES_H

#include "diag/analyze_internal.h"

/* Fraction of loud samples sitting on a plateau at the peak; *peak_out = max |x|. */
double am_clip_fraction(const float *x, int64_t n, double *peak_out);
/* Skewness of 10 ms envelope slopes in speech: > 0 forward, < 0 backwards. */
double am_onset_asymmetry(const float *x, int64_t n, double speech_db);
/* Skewness of 1 ms log-envelope slopes in voiced frames (glottal pulse then
 * ring-down): > 0 forward, < 0 backwards. */
double am_pulse_asymmetry(const float *x, int64_t n, const float *pitch_hz, int n_frames, int hop);
/* Sample jump at block edges over the typical nearby jump (~1 continuous). */
double am_edge_jump_ratio(const float *x, int64_t n, int block, double thr_amp);
/* Fraction of block edges (at offset + k*block) with a sample step > 3x the
 * local mean step; compare offset 0 (the grid) with block/2 (a control). */
/* */
double am_edge_jump_frac(const float *x, int64_t n, int block, int offset, double thr_amp);
/* CV lead (analyze_direction.c): how far high-band energy (bursts,
 * frication) leads low-band energy (voicing) at 10-40 ms, as the
 * antisymmetric part of their cross-correlation: > 0 forward (consonant
 * then vowel), < 0 backwards; reversal negates it. */
double am_cv_lead(const xs_analysis *a);
/* Pitch trend: < 0 falls over the file like statements do, > 0 rises. */
double am_pitch_trend(const float *pitch_hz, int n_frames, double hop_s);
/* Median kurtosis of the pre-emphasized signal in loud 20 ms frames. */
double am_pulse_kurtosis(const float *x, int64_t n, const float *frame_db, int n_frames, int hop,
                         double speech_db);
/* Spectral change across 80 ms edges over change inside blocks (~1 normal). */
double am_grid_jump_ratio(const xs_analysis *a, double speech_db);
/* Median correlation of log spectra 20 ms apart in loud frames. */
double am_flux_corr(const xs_analysis *a, double speech_db);
/* Most prominent steady spectral peak: returns prominence in dB, sets its
 * frequency and the fraction of 170 ms segments where it stands out (all,
 * and among the quietest third: a hum does not stop when speech pauses),
 * and *tracking: how far its level follows the signal's level from the
 * loudest to the quietest third (~1 a voice harmonic, ~0 an added tone). */
double am_tone(const float *x, int64_t n, double *freq_hz, double *persistence,
               double *persistence_quiet, double *tracking);
/* Best click period in [pmin, pmax] samples (0 if none); *frac_out = excess
 * fraction of periods with a click at one phase. Optionally the click
 * positions (malloc'd). */
int am_click_period(const float *x, int64_t n, int pmin, int pmax, double *frac_out,
                    int64_t **pos_out, int *npos_out);

/* Rate cues (analyze_rate.c): syllable rate, fricative and voiced-formant
 * centroids, 99% energy roll-off; into c->a->m. */
void am_rate_cues(an_ctx *c);
/* Median F1, F2, F3 (LPC roots) of loud voiced frames and the formant
 * scale into c->a->m (analyze_formants.c; 0 if too few frames). */
void am_formants(an_ctx *c);
/* Spectral change across `block` edges over change at other 10 ms points
 * (both sides sounding): ~1 continuous, > 1 for frames spliced out of order. */
double am_splice_ratio(const float *x, int64_t n, int block, double speech_db);

#endif
