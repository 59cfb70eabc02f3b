/*
 * analyze_measures.c — the signal measures behind the detectors that need
 * more than the shared per-frame features: clipping plateau, abrupt gaps,
 * periodic clicks, onset/decay asymmetry, excitation peakiness, frame-edge
 * spectral jumps, spectral continuity, persistent tones.
 * Each returns a number whose meaning does not depend on level or voice.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diag/analyze_measures.h"

static double am_db(double p) { return 10.0 * log10(p + 1e-12); }

double am_clip_fraction(const float *x, int64_t n, double *peak_out) {
    double pk = 0;
    for (int64_t i = 0; i < n; i++) pk = fabs(x[i]) > pk ? fabs(x[i]) : pk;
    if (peak_out) *peak_out = pk;
    if (pk <= 0) return 0;
    /* Samples on a plateau at the peak (two neighbours at >= 99.5% of it, same
     * sign) among the samples that carry signal (> 10% of peak), counting
     * only plateaus entered steeply: a waveform rounding its crest (a hum, a
     * loud vowel) approaches the peak with a flat slope; a limiter cuts in. */
    int64_t plateau = 0, loud = 0;
    double hi = 0.995 * pk;
    for (int64_t i = 1; i < n; i++) {
        if (fabs(x[i]) > 0.1 * pk) loud++;
        if (!(fabs(x[i]) >= hi && fabs(x[i - 1]) >= hi && (x[i] > 0) == (x[i - 1] > 0))) continue;
        int64_t s = i - 1;
        while (s > 0 && fabs(x[s - 1]) >= hi) s--;
        if (s >= 3 && fabs(x[s] - x[s - 3]) > 0.03 * pk) plateau++;
    }
    return loud ? (double)plateau / loud : 0;
}

/* Log-energy of 2.5 ms sub-frames floored at `floor_db`. */
static float *am_sub_env(const float *x, int64_t n, int sub, double floor_db, int *n_out) {
    int ns = (int)(n / sub);
    if (ns < 1) ns = 1;
    float *e = malloc((size_t)ns * sizeof *e);
    if (!e) return NULL;
    for (int s = 0; s < ns; s++) {
        double acc = 0;
        int c = 0;
        for (int64_t i = (int64_t)s * sub; i < (int64_t)(s + 1) * sub && i < n; i++, c++)
            acc += (double)x[i] * x[i];
        double d = am_db(c ? acc / c : 0);
        e[s] = (float)(d < floor_db ? floor_db : d);
    }
    *n_out = ns;
    return e;
}

double am_onset_asymmetry(const float *x, int64_t n, double speech_db) {
    /* Envelope slope over 10 ms, only where speech is present. Speech rises
     * fast (plosives, voicing onsets) and decays slowly (resonances, room):
     * the big positive slopes outweigh the big negative ones. Skewness of
     * the slopes: > 0 forward, < 0 backwards. */
    int ns = 0;
    double floor_db = speech_db - 50.0;
    float *e = am_sub_env(x, n, 60, floor_db, &ns);
    if (!e) return 0;
    const int L = 4;
    double s1 = 0, s2 = 0, s3 = 0;
    int cnt = 0;
    for (int k = 0; k + L < ns; k++) {
        double a = e[k], b = e[k + L];
        if ((a > b ? a : b) < speech_db - 35.0) continue;
        double g = b - a;
        s1 += g;
        s2 += g * g;
        s3 += g * g * g;
        cnt++;
    }
    free(e);
    if (cnt < 20) return 0;
    double m = s1 / cnt, v = s2 / cnt - m * m;
    if (v <= 1e-9) return 0;
    double m3 = s3 / cnt - 3 * m * s2 / cnt + 2 * m * m * m;
    return m3 / pow(v, 1.5);
}

double am_edge_jump_ratio(const float *x, int64_t n, int block, double thr_amp) {
    /* Mean |x[b]-x[b-1]| at block edges over mean |x[i]-x[i-1]| nearby (same
     * blocks): ~1 for continuous audio, >> 1 when edges are cut. */
    double je = 0, jall = 0;
    int64_t ce = 0, call = 0;
    for (int64_t b = block; b < n; b += block) {
        double local = 0, lmax = 0;
        for (int64_t i = b - block / 4; i < b + block / 4 && i < n; i++) {
            if (i < 1) continue;
            local += fabs(x[i] - x[i - 1]);
            lmax = fabs(x[i]) > lmax ? fabs(x[i]) : lmax;
        }
        if (lmax < thr_amp) continue;
        je += fabs(x[b] - x[b - 1]);
        ce++;
        jall += local;
        call += block / 2;
    }
    if (ce < 3 || jall <= 0) return 1.0;
    return (je / ce) / (jall / call);
}

double am_edge_jump_frac(const float *x, int64_t n, int block, int offset, double thr_amp) {
    /* Fraction of block edges (with signal around) where the sample step is
     * over 4x the mean step of the surrounding 5 ms: spliced audio (shuffled
     * frames) jumps; continuous audio almost never does at a given place. */
    int ce = 0, cj = 0;
    for (int64_t b = block + offset; b + 120 < n; b += block) {
        double local = 0, lmax = 0;
        for (int64_t i = b - 120; i < b + 120; i++) {
            if (i == b) continue;
            local += fabs(x[i] - x[i - 1]);
            lmax = fabs(x[i]) > lmax ? fabs(x[i]) : lmax;
        }
        if (lmax < thr_amp) continue;
        ce++;
        cj += fabs(x[b] - x[b - 1]) > 3.0 * local / 239.0;
    }
    return ce >= 5 ? (double)cj / ce : 0.0;
}

double am_pulse_kurtosis(const float *x, int64_t n, const float *frame_db, int n_frames, int hop,
                         double speech_db) {
    /* Kurtosis of the pre-emphasized waveform in loud frames. Voiced speech
     * is a train of glottal pulses: a few big samples per period (kurtosis
     * well above 3). Random phases or noise make it Gaussian (3). */
    float *k = malloc((size_t)n_frames * sizeof *k);
    if (!k) return 0;
    int nk = 0;
    for (int t = 0; t < n_frames; t++) {
        if (frame_db[t] < speech_db - 12.0) continue;
        int64_t s = (int64_t)t * hop + 16, e = s + 480;
        if (e > n) continue;
        double s2 = 0, s4 = 0;
        for (int64_t i = s; i < e; i++) {
            double v = x[i] - 0.97 * x[i - 1];
            s2 += v * v;
            s4 += v * v * v * v;
        }
        if (s2 <= 0) continue;
        k[nk++] = (float)(480.0 * s4 / (s2 * s2));
    }
    double r = nk ? an_median(k, nk) : 0;
    free(k);
    return r;
}

/* Mean absolute difference of two clamped log spectra over 0-8 kHz. */
static double am_spec_dist(const float *a, const float *b, double lo) {
    double d = 0;
    int kmax = 8000 * XS_AN_NFFT / XS_AN_RATE;
    for (int k = 2; k < kmax; k++) {
        double u = a[k] < lo ? lo : a[k], v = b[k] < lo ? lo : b[k];
        d += fabs(u - v);
    }
    return d / (kmax - 2);
}

double am_grid_jump_ratio(const xs_analysis *a, double speech_db) {
    /* Spectra 40 ms apart across each 80 ms edge vs 40 ms apart inside the
     * block: when frames are shuffled or scrambled per frame, the change
     * piles up at the edges. Clicks are excluded (the windows avoid a
     * 1 ms guard around the edge); so are pairs touching silence. */
    const int per = XS_AN_GRID / XS_AN_HOP; /* 8 hops per block */
    double lo = speech_db - 60, act = speech_db - 30;
    double de = 0, dm = 0;
    int ne = 0, nm = 0;
    for (int k = 1;; k++) {
        int e1 = per * k - 3, e2 = per * k + 1, m1 = per * k + 1, m2 = per * k + 5;
        if (m2 >= a->n_frames || e2 >= a->n_frames) break;
        if (e1 < 0) continue;
        const float *S = a->spec_db;
        if (a->frame_db[e1] > act && a->frame_db[e2] > act) {
            de += am_spec_dist(S + (size_t)e1 * XS_AN_NBIN, S + (size_t)e2 * XS_AN_NBIN, lo);
            ne++;
        }
        if (a->frame_db[m1] > act && a->frame_db[m2] > act) {
            dm += am_spec_dist(S + (size_t)m1 * XS_AN_NBIN, S + (size_t)m2 * XS_AN_NBIN, lo);
            nm++;
        }
    }
    if (ne < 4 || nm < 4 || dm <= 0) return 1.0;
    return (de / ne) / (dm / nm);
}

double am_flux_corr(const xs_analysis *a, double speech_db) {
    /* Correlation of log spectra 20 ms apart (0-8 kHz): speech spectra glide
     * (formants move slowly), scrambled bands jump. Median over loud frames. */
    double lo = speech_db - 60;
    int kmax = 8000 * XS_AN_NFFT / XS_AN_RATE;
    float *c = malloc((size_t)a->n_frames * sizeof *c);
    if (!c) return 0;
    int nc = 0;
    for (int t = 0; t + 2 < a->n_frames; t++) {
        if (a->frame_db[t] < speech_db - 20 || a->frame_db[t + 2] < speech_db - 20) continue;
        const float *u = a->spec_db + (size_t)t * XS_AN_NBIN, *v = u + 2 * XS_AN_NBIN;
        double su = 0, sv = 0, suu = 0, svv = 0, suv = 0;
        int m = 0;
        for (int k = 2; k < kmax; k++, m++) {
            double p = u[k] < lo ? lo : u[k], q = v[k] < lo ? lo : v[k];
            su += p; sv += q; suu += p * p; svv += q * q; suv += p * q;
        }
        double cu = suu - su * su / m, cv = svv - sv * sv / m, cuv = suv - su * sv / m;
        if (cu > 0 && cv > 0) c[nc++] = (float)(cuv / sqrt(cu * cv));
    }
    double r = nc ? an_median(c, nc) : 0;
    free(c);
    return r;
}

double am_tone(const float *x, int64_t n, double *freq_hz, double *persistence,
               double *persistence_quiet, double *tracking) {
    /* Welch spectrum (4096 = 170 ms, 5.9 Hz bins) up to 4 kHz: the most
     * prominent peak over its +-180 Hz neighbourhood median, then in how many
     * segments that bin stands out by 10 dB. Speech harmonics move; hum stays. */
    enum { NW = 4096 };
    *freq_hz = 0;
    *persistence = 0;
    *persistence_quiet = 0;
    *tracking = 0;
    if (n < NW) return 0;
    int nseg = (int)((n - NW) / (NW / 2) + 1);
    int kmax = 4000 * NW / XS_AN_RATE, half = 30;
    float *avg = calloc(NW / 2 + 1, sizeof *avg), *seg = malloc((size_t)nseg * (kmax + half + 1) * sizeof *seg);
    float *re = malloc(NW * sizeof *re), *im = malloc(NW * sizeof *im);
    float *segE = malloc((size_t)nseg * sizeof *segE);
    if (!avg || !seg || !re || !im || !segE) {
        free(avg); free(seg); free(re); free(im); free(segE);
        return 0;
    }
    for (int s = 0; s < nseg; s++) {
        for (int i = 0; i < NW; i++) {
            double w = 0.5 - 0.5 * cos(2.0 * M_PI * i / NW);
            re[i] = (float)(x[(int64_t)s * (NW / 2) + i] * w);
            im[i] = 0;
        }
        double en = 0;
        for (int i = 0; i < NW; i++) en += (double)re[i] * re[i];
        segE[s] = (float)en;
        an_fft(re, im, NW);
        for (int k = 0; k <= kmax + half; k++) {
            double p = (double)re[k] * re[k] + (double)im[k] * im[k];
            avg[k] += (float)(p / nseg);
            seg[(size_t)s * (kmax + half + 1) + k] = (float)am_db(p);
        }
    }
    float nb[2 * 30 + 1];
    double best = 0;
    int kb = -1;
    float *prom = calloc((size_t)kmax + 1, sizeof *prom);
    for (int k = 5; prom && k <= kmax; k++) { /* from ~30 Hz */
        int m = 0;
        for (int j = k - half; j <= k + half; j++)
            if (j >= 1 && (j < k - 2 || j > k + 2)) nb[m++] = (float)am_db(avg[j]);
        prom[k] = (float)(am_db(avg[k]) - an_median(nb, m));
        if (prom[k] > best) {
            best = prom[k];
            kb = k;
        }
    }
    /* Report the fundamental: a hum's 2nd or 3rd harmonic may stand out more. */
    for (int d = 3; prom && kb > 0 && d >= 2; d--) {
        int k0 = (int)lround((double)kb / d);
        for (int k = k0 - 1; k <= k0 + 1; k++)
            if (k >= 5 && prom[k] > 15.0) {
                kb = k;
                best = prom[k];
                d = 0;
                break;
            }
    }
    free(prom);
    double e_quiet = an_percentile(segE, nseg, 33.3), e_loud = an_percentile(segE, nseg, 66.7);
    float *tq = malloc((size_t)nseg * sizeof *tq),
          *tl = malloc((size_t)nseg * sizeof *tl), *eq = malloc((size_t)nseg * sizeof *eq),
          *el = malloc((size_t)nseg * sizeof *el);
    if (kb > 0 && tq && tl && eq && el) {
        int hit = 0, nq = 0, hitq = 0, nl = 0;
        for (int s = 0; s < nseg; s++) {
            const float *sp = seg + (size_t)s * (kmax + half + 1);
            int m = 0;
            for (int j = kb - half; j <= kb + half; j++)
                if (j >= 1 && (j < kb - 2 || j > kb + 2)) nb[m++] = sp[j];
            double pk = sp[kb];
            if (sp[kb - 1] > pk) pk = sp[kb - 1];
            if (sp[kb + 1] > pk) pk = sp[kb + 1];
            bool on = pk - an_median(nb, m) > 10.0;
            hit += on;
            double edb = am_db(segE[s]);
            if (segE[s] <= e_quiet) {
                tq[nq] = (float)pk;
                eq[nq] = (float)edb;
                nq++;
                hitq += on;
            }
            if (segE[s] >= e_loud) {
                tl[nl] = (float)pk;
                el[nl++] = (float)edb;
            }
        }
        /* Does the peak's level follow the sound's level? A voice harmonic
         * falls with the voice (tracking ~1); a hum or tone added to the
         * signal keeps its level when the talker stops (~0). Undefined on a
         * steady signal (loud and quiet segments within 6 dB): 0. */
        if (nq > 0 && nl > 0) {
            double edrop = an_median(el, nl) - an_median(eq, nq);
            if (edrop > 6.0) *tracking = (an_median(tl, nl) - an_median(tq, nq)) / edrop;
        }
        *persistence = (double)hit / nseg;
        *persistence_quiet = nq ? (double)hitq / nq : 0;
        /* Climb to the local maximum, then parabolic interpolation (5.9 Hz bins). */
        while (kb + 2 <= kmax + half && avg[kb + 1] > avg[kb]) kb++;
        while (kb > 1 && avg[kb - 1] > avg[kb]) kb--;
        double l = am_db(avg[kb - 1]), mdb = am_db(avg[kb]), r = am_db(avg[kb + 1]);
        double den = l - 2 * mdb + r, off = den < 0 ? 0.5 * (l - r) / den : 0;
        if (off > 0.5 || off < -0.5) off = 0;
        *freq_hz = (kb + off) * XS_AN_RATE / NW;
    }
    free(avg); free(seg); free(re); free(im); free(segE);
    free(tq); free(tl); free(eq); free(el);
    return best;
}

int am_click_period(const float *x, int64_t n, int pmin, int pmax, double *frac_out,
                    int64_t **pos_out, int *npos_out) {
    /* Click strength: |second difference| over its 10 ms local mean. Strong
     * points (> 8x, one per ms) folded modulo each period; a codec that loses
     * state every frame puts a click at the same phase of most periods. */
    *frac_out = 0;
    if (pos_out) *pos_out = NULL;
    if (npos_out) *npos_out = 0;
    if (n < 4 * pmax) pmax = (int)(n / 4);
    if (pmax <= pmin) return 0;
    double *cs = malloc((size_t)(n + 1) * sizeof *cs);
    int64_t *pos = malloc(sizeof *pos * (size_t)(n / 24 + 1));
    int *hist = malloc((size_t)pmax * sizeof *hist);
    if (!cs || !pos || !hist) {
        free(cs); free(pos); free(hist);
        return 0;
    }
    double rms = 0;
    for (int64_t i = 0; i < n; i++) rms += (double)x[i] * x[i];
    rms = sqrt(rms / n);
    cs[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = i >= 2 ? fabs(x[i] - 2.0 * x[i - 1] + x[i - 2]) : 0.0;
        cs[i + 1] = cs[i] + d;
    }
    const int W = 120;
    int np = 0;
    int64_t last = -1000;
    double eps = 1e-3 * rms + 1e-9;
    for (int64_t i = 2; i < n; i++) {
        int64_t a = i - W < 2 ? 2 : i - W, b = i + W > n ? n : i + W;
        double mean = (cs[b] - cs[a]) / (double)(b - a);
        double d = cs[i + 1] - cs[i];
        if (d > 8.0 * mean + eps) {
            if (i - last < 24) { /* keep the strongest within 1 ms */
                if (d > cs[pos[np - 1] + 1] - cs[pos[np - 1]]) pos[np - 1] = i;
            } else {
                pos[np++] = i;
            }
            last = i;
        }
    }
    int bestp = 0;
    double bestf = 0;
    double *fr = calloc((size_t)pmax + 1, sizeof *fr);
    for (int P = pmin; fr && P <= pmax; P++) {
        memset(hist, 0, (size_t)P * sizeof *hist);
        for (int j = 0; j < np; j++) hist[pos[j] % P]++;
        int hb = 0;
        for (int ph = 0; ph < P; ph++) {
            int h = 0;
            for (int d = -2; d <= 2; d++) h += hist[(ph + d + P) % P];
            if (h > hb) hb = h;
        }
        double cycles = (double)n / P;
        double expect = np * 5.0 / P;
        double f = (hb - expect) / cycles;
        fr[P] = f;
        if (f > bestf) {
            bestf = f;
            bestp = P;
        }
    }
    /* The shortest period nearly as good: multiples of the period hit too. */
    if (fr && bestp > 0)
        for (int P = pmin; P < bestp; P++)
            if (fr[P] >= 0.6 * bestf && labs(bestp - lround((double)bestp / P) * P) <= 2) {
                bestp = P;
                bestf = fr[P];
                break;
            }
    free(fr);
    free(cs);
    free(hist);
    *frac_out = bestf;
    if (pos_out) {
        *pos_out = pos;
        *npos_out = np;
    } else {
        free(pos);
    }
    return bestp;
}

double am_pulse_asymmetry(const float *x, int64_t n, const float *pitch_hz, int n_frames, int hop) {
    /* Inside voiced speech each glottal closure excites the vocal tract: the
     * energy jumps up at the pulse and rings down over a few ms (formant
     * damping). That holds for any voice and any synthesizer that models a
     * source and a filter. Envelope: 0.5 ms RMS, log; slopes over 1 ms;
     * skewness > 0 forward, < 0 backwards. Polarity does not matter. */
    const int W = 12, L = 24;
    double s1 = 0, s2 = 0, s3 = 0;
    int64_t cnt = 0;
    float *env = malloc((size_t)(hop * 4 + 2 * L) * sizeof *env);
    if (!env) return 0;
    for (int t = 0; t < n_frames; t++) {
        if (pitch_hz[t] <= 0) continue;
        int64_t s = (int64_t)t * hop + 256 - hop / 2, e = s + hop;
        if (s < W || e + L + W >= n) continue;
        int m = (int)(e - s + L);
        for (int i = 0; i < m; i++) {
            double acc = 0;
            for (int j = -W / 2; j < W / 2; j++) {
                double v = x[s + i + j];
                acc += v * v;
            }
            env[i] = (float)(10.0 * log10(acc / W + 1e-12));
        }
        for (int i = 0; i + L < m; i++) {
            double g = env[i + L] - env[i];
            s1 += g;
            s2 += g * g;
            s3 += g * g * g;
            cnt++;
        }
    }
    free(env);
    if (cnt < 100) return 0;
    double mu = s1 / cnt, v = s2 / cnt - mu * mu;
    if (v <= 1e-9) return 0;
    double m3 = s3 / cnt - 3 * mu * s2 / cnt + 2 * mu * mu * mu;
    return m3 / pow(v, 1.5);
}

double am_pitch_trend(const float *pitch_hz, int n_frames, double hop_s) {
    /* Declination: statements start high and fall (and end with a final
     * fall); backwards speech rises. T = slope (octave/s) / 0.1 + (last
     * quarter - first quarter, octaves) / 0.14: < 0 falls like speech. */
    int c = 0;
    double st = 0, sy = 0, stt = 0, sty = 0;
    for (int t = 0; t < n_frames; t++) {
        if (pitch_hz[t] <= 0) continue;
        double u = t * hop_s, y = log2(pitch_hz[t]);
        st += u; sy += y; stt += u * u; sty += u * y;
        c++;
    }
    if (c < 40) return 0;
    double den = stt - st * st / c;
    double slope = den > 0 ? (sty - st * sy / c) / den : 0;
    float *v = malloc((size_t)c * sizeof *v);
    if (!v) return 0;
    int k = 0;
    for (int t = 0; t < n_frames; t++)
        if (pitch_hz[t] > 0) v[k++] = (float)log2(pitch_hz[t]);
    int q = c / 4;
    double fs = an_median(v, q), fe = an_median(v + c - q, q);
    free(v);
    return slope / 0.1 + (fe - fs) / 0.14;
}
