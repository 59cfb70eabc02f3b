/*
 * analyze_rate.c — measures added to close the analyzer's known misses:
 *   - rate cues. Resampling scales every frequency AND every duration by
 *     the same factor: pitch, formants, fricative hiss and syllable rate
 *     move together, while a speaker's sex moves mostly pitch. The
 *     wrong_rate detector fits pitch + syllable rate jointly with the
 *     formant scale (analyze_formants.c); fricative and voiced centroids
 *     and the 99% roll-off are reported as metrics only (on held-out
 *     voices they varied as much between voices and channels as a 3/2
 *     rate change);
 *   - splice ratio: frames spliced out of order (garbled) vs holes
 *     (dropouts), by spectral-envelope jumps folded on the 80 ms grid.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "diag/analyze_measures.h"

/* Syllable nuclei: peaks of the 30 ms-smoothed frame energy that stand
 * >= 4 dB over the lowest point between them and the previous/next peak,
 * within 25 dB of the speech level; per second of active speech. */
static double rate_syllables(const an_ctx *c) {
    const xs_analysis *a = c->a;
    int nf = a->n_frames;
    if (nf < 10 || c->n_active < 20) return 0;
    float *e = malloc((size_t)nf * sizeof *e);
    if (!e) return 0;
    for (int t = 0; t < nf; t++) {
        double s = 0;
        int k = 0;
        for (int d = -1; d <= 1; d++)
            if (t + d >= 0 && t + d < nf) s += a->frame_db[t + d], k++;
        e[t] = (float)(s / k);
    }
    const double prom = 4.0, lo = c->speech_db - 25.0;
    int peaks = 0;
    /* Hysteresis walk: track the running max since the last dip; a peak
     * counts once the envelope has fallen `prom` under it. */
    double cur_max = -1e9, cur_min = e[0];
    bool rising = true;
    for (int t = 1; t < nf; t++) {
        double v = e[t];
        if (rising) {
            if (v > cur_max) cur_max = v;
            if (cur_max - v >= prom && cur_max - cur_min >= prom) {
                if (cur_max > lo) peaks++;
                rising = false;
                cur_min = v;
            }
        } else {
            if (v < cur_min) cur_min = v;
            if (v - cur_min >= prom) {
                rising = true;
                cur_max = v;
            }
        }
    }
    free(e);
    double act_s = c->n_active * (double)XS_AN_HOP / XS_AN_RATE;
    return act_s > 0.5 ? peaks / act_s : 0;
}

void am_rate_cues(an_ctx *c) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    m->syllable_hz = rate_syllables(c);
    const double bin_hz = (double)XS_AN_RATE / XS_AN_NFFT;
    const int k2k = (int)(2000 / bin_hz), k4k = (int)(4000 / bin_hz);
    float *fr = malloc((size_t)a->n_frames * sizeof *fr);
    float *vc = malloc((size_t)a->n_frames * sizeof *vc);
    double *lt = calloc(XS_AN_NBIN, sizeof *lt);
    int nfr = 0, nvc = 0;
    if (fr && vc && lt) {
        for (int t = 0; t < a->n_frames; t++) {
            if (!a->active[t]) continue;
            const float *sp = a->spec_db + (size_t)t * XS_AN_NBIN;
            double ptot = 0, phi = 0, pf = 0, plo = 0, pflo = 0;
            for (int k = 1; k < XS_AN_NBIN - 1; k++) {
                double p = pow(10.0, sp[k] / 10.0);
                lt[k] += p;
                ptot += p;
                pf += p * k * bin_hz;
                if (k >= k2k) phi += p;
                if (k < k4k) plo += p, pflo += p * k * bin_hz;
            }
            /* Fricative: unvoiced, most energy above 2 kHz, loud enough to
             * be a consonant rather than breath (within 30 dB of speech). */
            if (a->pitch_hz[t] <= 0 && c->voicing[t] < 0.4 && ptot > 0 && phi > 0.6 * ptot &&
                a->frame_db[t] > c->speech_db - 30)
                fr[nfr++] = (float)(pf / ptot);
            if (a->pitch_hz[t] > 0 && plo > 0) vc[nvc++] = (float)(pflo / plo);
        }
        m->fric_hz = nfr >= 3 ? an_median(fr, nfr) : 0;
        m->voiced_cen_hz = nvc >= 3 ? an_median(vc, nvc) : 0;
        double tot = 0, acc = 0;
        for (int k = 1; k < XS_AN_NBIN - 1; k++) tot += lt[k];
        m->rolloff_hz = 0;
        for (int k = 1; k < XS_AN_NBIN - 1 && tot > 0; k++) {
            acc += lt[k];
            if (acc >= 0.99 * tot) {
                m->rolloff_hz = k * bin_hz;
                break;
            }
        }
    }
    free(fr);
    free(vc);
    free(lt);
}

/* Band energies (dB) of the 10 ms at x[s, s + AN_SPL_W) (Hann, zero-padded
 * to AN_SPL_N) in AN_SPL_B log-spaced bands 250 Hz - 8 kHz: a smooth
 * spectral envelope (a raw periodogram fluctuates by ~5 dB per bin even on
 * steady sound, which would drown the splice). Returns the energy in dB. */
#define AN_SPL_W 240
#define AN_SPL_N 256
#define AN_SPL_B 10
static double splice_bands(const float *x, int64_t s, float *out) {
    float re[AN_SPL_N], im[AN_SPL_N];
    double e = 0;
    for (int i = 0; i < AN_SPL_N; i++) {
        double w = i < AN_SPL_W ? 0.5 - 0.5 * cos(2.0 * M_PI * (i + 0.5) / AN_SPL_W) : 0;
        float v = i < AN_SPL_W ? x[s + i] : 0.0f;
        re[i] = (float)(v * w);
        im[i] = 0;
        e += (double)v * v;
    }
    an_fft(re, im, AN_SPL_N);
    const double bin_hz = (double)XS_AN_RATE / AN_SPL_N, ratio = pow(8000.0 / 250.0, 1.0 / AN_SPL_B);
    double f0 = 250.0;
    for (int b = 0; b < AN_SPL_B; b++) {
        double f1 = f0 * ratio, p = 0;
        for (int k = (int)ceil(f0 / bin_hz); k < f1 / bin_hz; k++) p += (double)re[k] * re[k] + (double)im[k] * im[k];
        out[b] = (float)(10.0 * log10(p / AN_SPL_N + 1e-10));
        f0 = f1;
    }
    return 10.0 * log10(e / AN_SPL_W + 1e-12);
}

double am_splice_ratio(const float *x, int64_t n, int block, double speech_db) {
    /* Spectral-envelope distance between the 10 ms just before and just
     * after each point on a 5 ms grid, folded modulo the block (16 phases).
     * Frames spliced out of order join unrelated sounds at their edges: one
     * phase (or two, if a short piece shifted the grid) changes much more
     * than the others. Continuous audio: all phases alike. Only points with
     * sound on both sides (within 30 dB of speech): a lost frame next to
     * speech is a hole (dropouts), not a splice. Returns the mean of the
     * two strongest phases over the median phase. */
    const int hop = AN_SPL_W / 2, nph = block / hop;
    int nw = n >= AN_SPL_W ? (int)((n - AN_SPL_W) / hop + 1) : 0;
    if (nw < 3 * nph || nph > 64) return 1.0;
    float *bands = malloc((size_t)nw * AN_SPL_B * sizeof *bands);
    float *lev = malloc((size_t)nw * sizeof *lev);
    if (!bands || !lev) {
        free(bands);
        free(lev);
        return 1.0;
    }
    for (int w = 0; w < nw; w++) lev[w] = (float)splice_bands(x, (int64_t)w * hop, bands + (size_t)w * AN_SPL_B);
    /* Distances per phase; medians, so that a few strong natural onsets
     * falling on one phase do not pass for a splice at every edge. */
    float *dist = malloc((size_t)nw * sizeof *dist), *tmp = malloc((size_t)nw * sizeof *tmp);
    short *ph = malloc((size_t)nw * sizeof *ph);
    int nd = 0;
    const double act = speech_db - 30;
    for (int j = 3; dist && tmp && ph && j + 1 < nw; j++) { /* point j*hop: window j-2 before, j after */
        /* Sound throughout p +- 15 ms: points near a hole's edge (half a
         * window in silence) would look like splices. */
        bool loud = true;
        for (int w = j - 3; w <= j + 1; w++) loud = loud && lev[w] >= act;
        if (!loud) continue;
        const float *a = bands + (size_t)(j - 2) * AN_SPL_B, *b = bands + (size_t)j * AN_SPL_B;
        double top = -1e9, d = 0;
        for (int k = 0; k < AN_SPL_B; k++) {
            top = a[k] > top ? a[k] : top;
            top = b[k] > top ? b[k] : top;
        }
        /* Bands floored 50 dB under the louder side: empty bands are equal. */
        for (int k = 0; k < AN_SPL_B; k++) {
            double u = a[k] < top - 50 ? top - 50 : a[k], v = b[k] < top - 50 ? top - 50 : b[k];
            d += fabs(u - v);
        }
        dist[nd] = (float)(d / AN_SPL_B);
        ph[nd++] = (short)(j % nph);
    }
    free(bands);
    free(lev);
    float mean[64];
    int nm = 0;
    for (int q = 0; q < nph && tmp; q++) {
        int c = 0;
        for (int i = 0; i < nd; i++)
            if (ph[i] == q) tmp[c++] = dist[i];
        if (c >= 8) mean[nm++] = (float)an_median(tmp, c);
    }
    free(dist);
    free(tmp);
    free(ph);
    if (nm < nph / 2) return 1.0;
    double med = an_median(mean, nm), m1 = 0, m2 = 0;
    for (int q = 0; q < nm; q++) {
        if (mean[q] > m1) m2 = m1, m1 = mean[q];
        else if (mean[q] > m2) m2 = mean[q];
    }
    return med > 0 ? 0.5 * (m1 + m2) / med : 1.0;
}
