/*
 * analyze_formants.c — vocal-tract scale from formants (wrong_rate cue).
 *
 * Resampling scales every frequency by the same factor: pitch AND the
 * formants (the resonances of the vocal tract). A speaker's sex moves pitch
 * by about an octave but the formants by only ~15-20% (a female tract is
 * ~15% shorter). So a "male" pitch with formants far below any adult male's
 * is a slowed file, and a "female" pitch with formants far above any adult
 * female's is a sped-up one.
 *
 * Measuring formants frame by frame and labelling them F1, F2, F3 is
 * fragile (one lost or spurious pole shifts every label), and it needs the
 * answer in advance: an LPC analysis only resolves the formants when its
 * band holds the right number of them (Praat's "formant ceiling": ~5 kHz
 * for five formants of an adult male, 5.5 kHz for a female). This file
 * turns that around: it runs a 10th-order LPC (five resonances) on loud
 * voiced frames for a sweep of ceilings, 2.3-11.5 kHz, and records at each
 * ceiling the fraction of frames where the model finds four or more narrow
 * resonances (bandwidth < 6% of the analysis rate) — that is, where the
 * band holds about five formants of this voice. The fraction forms a bump
 * over the ceilings; the bump's centre, against the adult-male 5 kHz,
 * is the voice's formant scale in octaves. No vowel template and no labels:
 * only the spacing of the resonances, which is set by the tract's length.
 *
 * Selective linear prediction: each ceiling's autocorrelation comes from
 * the frame's power spectrum below the ceiling (the STFT the analysis
 * already has), so no resampling is needed.
 */
#include <complex.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "diag/analyze_measures.h"

#define FM_ORDER 10          /* five resonances per band */
#define FM_MAXFR 240         /* frames analysed at most (speed on 60 s files) */
#define FM_LS0 (-1.1)        /* ceiling sweep, octaves from 5 kHz */
#define FM_LSTEP 0.1
#define FM_NLS 24            /* -1.1 .. +1.2 */
#define FM_REF_HZ 5000.0     /* adult male: five formants under 5 kHz */

/* Autocorrelation (lags 0..FM_ORDER) of the band [0, ceil) of a power
 * spectrum, as if the signal were sampled at 2 * ceil: r(k) = sum over
 * bins of P(f) cos(pi k f / ceil). */
static void fm_band_autocorr(const double *pw, int nb, double bin_hz, double ceil_hz, double *r) {
    for (int k = 0; k <= FM_ORDER; k++) r[k] = 0;
    for (int b = 0; b < nb && b * bin_hz < ceil_hz; b++) {
        double w = M_PI * b * bin_hz / ceil_hz, p = b == 0 ? 0.5 * pw[b] : pw[b];
        /* cos(k w) by the Chebyshev recurrence: one cos() per bin. */
        double c1 = cos(w), cm2 = 1, cm1 = c1;
        r[0] += p;
        r[1] += p * c1;
        for (int k = 2; k <= FM_ORDER; k++) {
            double ck = 2 * c1 * cm1 - cm2;
            r[k] += p * ck;
            cm2 = cm1, cm1 = ck;
        }
    }
}

/* Levinson-Durbin: a[0..FM_ORDER], a[0] = 1. */
static bool fm_levinson(double *r, double *a) {
    double tmp[FM_ORDER + 1];
    if (r[0] <= 1e-20) return false;
    r[0] *= 1.0001; /* a touch of white noise: keeps the recursion stable */
    memset(a, 0, (FM_ORDER + 1) * sizeof *a);
    a[0] = 1;
    double err = r[0];
    for (int i = 1; i <= FM_ORDER; i++) {
        double acc = r[i];
        for (int j = 1; j < i; j++) acc += a[j] * r[i - j];
        double k = -acc / err;
        memcpy(tmp, a, sizeof tmp);
        for (int j = 1; j < i; j++) a[j] = tmp[j] + k * tmp[i - j];
        a[i] = k;
        err *= 1 - k * k;
        if (err <= 0) return false;
    }
    return true;
}

/* Roots of z^p + a[1] z^(p-1) + ... + a[p] by Durand-Kerner (all at once;
 * a stable LPC polynomial's roots lie inside the unit circle). */
static void fm_roots(const double *a, double complex *z, bool warm) {
    const int p = FM_ORDER;
    if (!warm)
        for (int i = 0; i < p; i++) z[i] = 0.9 * cexp(I * (2.0 * M_PI * (i + 0.25) / p));
    for (int it = 0; it < 60; it++) {
        double moved = 0;
        for (int i = 0; i < p; i++) {
            double complex num = 1, den = 1;
            for (int j = 1; j <= p; j++) num = num * z[i] + a[j];
            for (int j = 0; j < p; j++)
                if (j != i) den *= z[i] - z[j];
            if (cabs(den) < 1e-30) continue;
            double complex d = num / den;
            z[i] -= d;
            moved = fmax(moved, cabs(d));
        }
        if (moved < 1e-7) break;
    }
}

/* Narrow resonances of the band model (Hz, ascending): poles above 2% and
 * under 47% of the analysis rate with bandwidth < 6% of it. */
static int fm_resonances(const double *pw, int nb, double bin_hz, double ceil_hz, double *out,
                         double complex *z, bool *warm) {
    double r[FM_ORDER + 1], a[FM_ORDER + 1];
    fm_band_autocorr(pw, nb, bin_hz, ceil_hz, r);
    /* Lag window (40 Hz Gaussian): smooths the harmonics of high voices. */
    const double rate = 2.0 * ceil_hz;
    for (int k = 1; k <= FM_ORDER; k++) r[k] *= exp(-0.5 * pow(2 * M_PI * 40.0 * k / rate, 2));
    if (!fm_levinson(r, a)) return *warm = false, 0;
    /* Warm start from the previous ceiling's roots, their angles scaled
     * to this ceiling: the poles move little from one step to the next. */
    fm_roots(a, z, *warm);
    *warm = true;
    for (int i = 0; i < FM_ORDER; i++)
        if (!isfinite(creal(z[i])) || !isfinite(cimag(z[i]))) *warm = false;
    int n = 0;
    for (int i = 0; i < FM_ORDER; i++) {
        double m = cabs(z[i]);
        if (cimag(z[i]) <= 0 || !(m > 0 && m < 1)) continue;
        double hz = carg(z[i]) * rate / (2.0 * M_PI), bw = -log(m) * rate / M_PI;
        if (hz > 0.02 * rate && hz < 0.47 * rate && bw < 0.06 * rate) out[n++] = hz;
    }
    for (int i = 1; i < n; i++) /* insertion sort: a handful */
        for (int j = i; j > 0 && out[j] < out[j - 1]; j--) {
            double t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

void am_formants(an_ctx *c) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    m->f1_hz = m->f2_hz = m->f3_hz = 0;
    m->formant_scale = 0;
    m->formant_fit = 0;
    /* Loud voiced frames: vowels and voiced consonants near their peak. */
    int *idx = malloc((size_t)a->n_frames * sizeof *idx), ncand = 0;
    if (!idx) return;
    for (int t = 0; t < a->n_frames; t++)
        if (a->pitch_hz[t] > 0 && a->frame_db[t] >= c->speech_db - 15) idx[ncand++] = t;
    int take = ncand < FM_MAXFR ? ncand : FM_MAXFR;
    const double bin_hz = (double)XS_AN_RATE / XS_AN_NFFT;
    /* The signal's band edge: highest bin of the long-term spectrum within
     * 50 dB of its peak. A ceiling past it would hand the model an empty
     * band (a file resampled from 16 kHz, or slowed down), where poles
     * settle anywhere. */
    double lt[XS_AN_NBIN] = {0}, ltmax = 0, edge_hz = 0.5 * XS_AN_RATE;
    for (int i = 0; i < take; i++) {
        const float *sp = a->spec_db + (size_t)idx[(int64_t)i * ncand / take] * XS_AN_NBIN;
        for (int b = 0; b < XS_AN_NBIN; b++) lt[b] += pow(10.0, sp[b] / 10.0);
    }
    for (int b = 1; b < XS_AN_NBIN; b++) ltmax = fmax(ltmax, lt[b]);
    for (int b = XS_AN_NBIN - 1; b > 0 && ltmax > 0; b--)
        if (lt[b] > 1e-5 * ltmax) {
            edge_hz = b * bin_hz;
            break;
        }
    const double ceil_max = 0.95 * edge_hz;
    double pw[XS_AN_NBIN], res[FM_ORDER];
    int hits[FM_NLS] = {0};
    float *fk = take >= 20 ? malloc((size_t)3 * FM_NLS * take * sizeof *fk) : NULL;
    int nk[FM_NLS] = {0};
    for (int i = 0; fk && i < take; i++) {
        int t = idx[(int64_t)i * ncand / take];
        const float *sp = a->spec_db + (size_t)t * XS_AN_NBIN;
        /* Power with pre-emphasis (+6 dB/octave, 0.97 at 24 kHz): flattens
         * the glottal tilt so the upper formants weigh in the fit. */
        for (int b = 0; b < XS_AN_NBIN; b++) {
            double w = 2.0 * M_PI * b / XS_AN_NFFT;
            pw[b] = pow(10.0, sp[b] / 10.0) * (1.0 + 0.97 * 0.97 - 2.0 * 0.97 * cos(w));
        }
        double complex z[FM_ORDER];
        bool warm = false;
        for (int s = 0; s < FM_NLS; s++) {
            double ceil_hz = FM_REF_HZ * exp2(FM_LS0 + FM_LSTEP * s);
            if (ceil_hz > ceil_max) break;
            if (warm) /* same poles in Hz: angles shrink as the ceiling grows */
                for (int j = 0; j < FM_ORDER; j++) z[j] = cabs(z[j]) * cexp(I * carg(z[j]) * exp2(-FM_LSTEP));
            int n = fm_resonances(pw, XS_AN_NBIN, bin_hz, ceil_hz, res, z, &warm);
            if (n >= 4) {
                hits[s]++;
                for (int k = 0; k < 3; k++) fk[((size_t)k * FM_NLS + s) * take + nk[s]] = (float)res[k];
                nk[s]++;
            }
        }
    }
    if (fk) {
        /* The bump: the run of ceilings around the best one where the
         * fraction of resolved frames stays within 75% of its best; its
         * weighted centre is the scale. A run that reaches either end of
         * the sweep (the grid's, or the band edge of a phone-band or
         * 8 kHz file) has no measurable centre: left unmeasured. */
        int last = -1, sb = 0;
        for (int s = 0; s < FM_NLS && FM_REF_HZ * exp2(FM_LS0 + FM_LSTEP * s) <= ceil_max; s++) last = s;
        for (int s = 1; s <= last; s++)
            if (hits[s] > hits[sb]) sb = s;
        double best = last >= 0 ? (double)hits[sb] / take : 0, sw = 0, sx = 0;
        int lo = sb, hi = sb;
        while (lo > 0 && hits[lo - 1] > 0.75 * hits[sb]) lo--;
        while (hi < last && hits[hi + 1] > 0.75 * hits[sb]) hi++;
        for (int s = lo; s <= hi; s++) {
            double w = (double)hits[s] / take - 0.75 * best;
            sw += w, sx += w * (FM_LS0 + FM_LSTEP * s);
        }
        /* And a real bump: on each side, the curve falls to 70% of the
         * peak or less outside the run (a band-limited file can give a
         * flat, noisy curve with no centre). */
        double minl = 1e9, minr = 1e9;
        for (int s = 0; s < lo; s++) minl = fmin(minl, hits[s]);
        for (int s = hi + 1; s <= last; s++) minr = fmin(minr, hits[s]);
        bool bump = lo >= 1 && last - hi >= 1 && minl <= 0.7 * hits[sb] && minr <= 0.7 * hits[sb];
        /* In a band-limited file (edge under 0.45 x the rate) the sweep
         * must also reach 0.6 octave past the centre: a band that stops
         * near the voice's own ceiling (8 kHz or phone-band audio sped up)
         * gives a bump in the wrong place, even in the wrong direction. */
        bool room = edge_hz >= 0.45 * XS_AN_RATE || (sw > 0 && sx / sw + 0.6 <= log2(ceil_max / FM_REF_HZ));
        if (best >= 0.5 && sw > 0 && bump && room) {
            m->formant_scale = sx / sw;
            m->formant_fit = best;
            /* Formants reported at the ceiling nearest the centre. */
            int s = (int)lround((m->formant_scale - FM_LS0) / FM_LSTEP);
            s = s < 0 ? 0 : s >= FM_NLS ? FM_NLS - 1 : s;
            if (nk[s] >= 5) {
                m->f1_hz = an_median(fk + (size_t)(0 * FM_NLS + s) * take, nk[s]);
                m->f2_hz = an_median(fk + (size_t)(1 * FM_NLS + s) * take, nk[s]);
                m->f3_hz = an_median(fk + (size_t)(2 * FM_NLS + s) * take, nk[s]);
            }
        }
    }
    free(fk);
    free(idx);
}
