/*
 * analyze_features.c — per-frame measures every detector shares:
 *   - STFT (Hann 512 = 21 ms, hop 10 ms): power spectrum in dB, frame energy,
 *     spectral centroid and flatness;
 *   - 2.5 ms sub-frame energies (sharp enough to see abrupt edges/onsets);
 *   - speech activity from frame-energy percentiles (level independent);
 *   - pitch by normalized autocorrelation on a 6 kHz copy (cheap: 60 s of
 *     audio costs ~0.1 s), 60-400 Hz.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "diag/analyze_internal.h"

#define AN_PITCH_RATE 6000
#define AN_PITCH_WIN 240 /* 40 ms at 6 kHz: covers 2.4 periods of a 60 Hz voice */
#define AN_LAG_MIN 15    /* 400 Hz */
#define AN_LAG_MAX 120   /* 50 Hz */

static double an_db(double p) { return 10.0 * log10(p + 1e-12); }

static xs_status an_stft_features(an_ctx *c) {
    xs_analysis *a = c->a;
    int nf = a->n < XS_AN_NFFT ? 1 : (int)((a->n - XS_AN_NFFT) / XS_AN_HOP + 1);
    a->n_frames = nf;
    a->spec_db = malloc((size_t)nf * XS_AN_NBIN * sizeof(float));
    a->frame_db = malloc((size_t)nf * sizeof(float));
    a->pitch_hz = calloc((size_t)nf, sizeof(float));
    a->active = calloc((size_t)nf, 1);
    c->centroid = malloc((size_t)nf * sizeof(float));
    c->flatness = malloc((size_t)nf * sizeof(float));
    c->voicing = calloc((size_t)nf, sizeof(float));
    if (!a->spec_db || !a->frame_db || !a->pitch_hz || !a->active || !c->centroid ||
        !c->flatness || !c->voicing)
        return xs_error(XS_ERR_NOMEM, "analyze: out of memory (%d frames)", nf);
    float win[XS_AN_NFFT], re[XS_AN_NFFT], im[XS_AN_NFFT];
    double wsum2 = 0;
    for (int i = 0; i < XS_AN_NFFT; i++) {
        win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / XS_AN_NFFT));
        wsum2 += (double)win[i] * win[i];
    }
    const double bin_hz = (double)XS_AN_RATE / XS_AN_NFFT;
    for (int t = 0; t < nf; t++) {
        int64_t s0 = (int64_t)t * XS_AN_HOP;
        double e = 0;
        for (int i = 0; i < XS_AN_NFFT; i++) {
            float v = s0 + i < a->n ? c->x[s0 + i] : 0.0f;
            re[i] = v * win[i];
            im[i] = 0.0f;
            e += (double)re[i] * re[i];
        }
        a->frame_db[t] = (float)an_db(e / wsum2);
        an_fft(re, im, XS_AN_NFFT);
        float *sp = a->spec_db + (size_t)t * XS_AN_NBIN;
        double ps = 0, pf = 0, lsum = 0;
        for (int k = 0; k < XS_AN_NBIN; k++) {
            /* Scaled so that a full-scale sine reads about 0 dB in its bin. */
            double p = ((double)re[k] * re[k] + (double)im[k] * im[k]) * 4.0 / (wsum2 * XS_AN_NFFT);
            sp[k] = (float)an_db(p);
            if (k >= 1 && k < XS_AN_NBIN - 1) {
                ps += p;
                pf += p * k * bin_hz;
                lsum += log(p + 1e-12);
            }
        }
        int nb = XS_AN_NBIN - 2;
        c->centroid[t] = ps > 0 ? (float)(pf / ps) : 0.0f;
        c->flatness[t] = ps > 0 ? (float)(exp(lsum / nb) / (ps / nb + 1e-12)) : 1.0f;
    }
    return XS_OK;
}

static xs_status an_sub_frames(an_ctx *c) {
    int ns = (int)(c->n / AN_SUB);
    if (ns < 1) ns = 1;
    c->n_sub = ns;
    c->sub_db = malloc((size_t)ns * sizeof(float));
    if (!c->sub_db) return xs_error(XS_ERR_NOMEM, "analyze: out of memory");
    for (int s = 0; s < ns; s++) {
        double e = 0;
        int cnt = 0;
        for (int64_t i = (int64_t)s * AN_SUB; i < (int64_t)(s + 1) * AN_SUB && i < c->n; i++, cnt++)
            e += (double)c->x[i] * c->x[i];
        c->sub_db[s] = (float)an_db(cnt ? e / cnt : 0.0);
    }
    return XS_OK;
}

/* Activity: frames well above the noise floor and within 35 dB of the loud
 * frames. Percentiles make it independent of the recording level. */
static void an_activity(an_ctx *c) {
    xs_analysis *a = c->a;
    c->speech_db = an_percentile(a->frame_db, a->n_frames, 95);
    c->floor_db = an_percentile(a->frame_db, a->n_frames, 10);
    double thr = c->speech_db - 35.0;
    double mid = c->floor_db + 0.3 * (c->speech_db - c->floor_db);
    if (mid > thr) thr = mid;
    if (thr < -70.0) thr = -70.0;
    c->active_db = thr;
    c->n_active = 0;
    for (int t = 0; t < a->n_frames; t++) {
        a->active[t] = a->frame_db[t] > thr;
        c->n_active += a->active[t];
    }
}

/* Normalized autocorrelation at lag L over the window [s, s+w). */
static double an_nacf(const float *y, int64_t s, int w, int L) {
    double xy = 0, xx = 0, yy = 0;
    for (int i = 0; i < w; i++) {
        double u = y[s + i], v = y[s + i + L];
        xy += u * v;
        xx += u * u;
        yy += v * v;
    }
    return xx > 0 && yy > 0 ? xy / sqrt(xx * yy) : 0.0;
}

static xs_status an_pitch(an_ctx *c) {
    xs_analysis *a = c->a;
    float *y = NULL;
    int64_t ny = 0;
    XS_TRY(xs_audio_resample(c->x, c->n, XS_AN_RATE, AN_PITCH_RATE, &y, &ny));
    const int dec = XS_AN_RATE / AN_PITCH_RATE;
    double r[AN_LAG_MAX + 2];
    for (int t = 0; t < a->n_frames; t++) {
        if (!a->active[t]) continue;
        int64_t center = ((int64_t)t * XS_AN_HOP + XS_AN_NFFT / 2) / dec;
        int64_t s = center - AN_PITCH_WIN / 2;
        if (s < 0 || s + AN_PITCH_WIN + AN_LAG_MAX + 1 >= ny) continue;
        int best = -1;
        double rbest = 0;
        for (int L = AN_LAG_MIN - 1; L <= AN_LAG_MAX + 1; L++) {
            r[L] = an_nacf(y, s, AN_PITCH_WIN, L);
            if (L >= AN_LAG_MIN && L <= AN_LAG_MAX && r[L] > rbest) {
                rbest = r[L];
                best = L;
            }
        }
        if (best < 0) continue;
        /* Prefer the shortest lag that is nearly as good: a period's multiples
         * correlate too, which would read an octave (or more) too low. */
        for (int k = 4; k >= 2; k--) {
            int L = (int)lround((double)best / k);
            if (L < AN_LAG_MIN) continue;
            int lb = L;
            for (int d = -1; d <= 1; d++)
                if (L + d >= AN_LAG_MIN && r[L + d] > r[lb]) lb = L + d;
            if (r[lb] > 0.85 * rbest) {
                best = lb;
                break;
            }
        }
        c->voicing[t] = (float)r[best];
        if (r[best] < 0.6) continue;
        double den = r[best - 1] - 2 * r[best] + r[best + 1];
        double off = den < 0 ? 0.5 * (r[best - 1] - r[best + 1]) / den : 0.0;
        if (off > 0.5 || off < -0.5) off = 0;
        a->pitch_hz[t] = (float)(AN_PITCH_RATE / (best + off));
    }
    free(y);
    return XS_OK;
}

static void an_basic_metrics(an_ctx *c) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    double s = 0, s2 = 0, pk = 0;
    for (int64_t i = 0; i < c->n; i++) {
        double v = c->x[i];
        s += v;
        s2 += v * v;
        if (fabs(v) > pk) pk = fabs(v);
    }
    m->duration_s = (double)c->n / XS_AN_RATE;
    m->dc = s / c->n;
    m->rms_dbfs = an_db(s2 / c->n);
    m->peak_dbfs = 20.0 * log10(pk + 1e-9);
    m->speech_fraction = (double)c->n_active / a->n_frames;
    double snr = c->speech_db - c->floor_db;
    m->snr_db = snr > 60 ? 60 : snr;
    float *tmp = malloc((size_t)a->n_frames * sizeof(float));
    float *tmp2 = malloc((size_t)a->n_frames * sizeof(float));
    int nv = 0, na = 0;
    if (tmp && tmp2) {
        for (int t = 0; t < a->n_frames; t++)
            if (a->pitch_hz[t] > 0) tmp[nv++] = a->pitch_hz[t];
        if (nv > 0) {
            m->pitch_min_hz = an_percentile(tmp, nv, 5);
            m->pitch_median_hz = an_percentile(tmp, nv, 50);
            m->pitch_max_hz = an_percentile(tmp, nv, 95);
        }
        for (int t = 0; t < a->n_frames; t++)
            if (a->active[t]) {
                tmp[na] = c->centroid[t];
                tmp2[na++] = c->flatness[t];
            }
        m->centroid_hz = na ? an_median(tmp, na) : 0;
        m->flatness = na ? an_median(tmp2, na) : 0;
    }
    m->voiced_fraction = na ? (double)nv / na : 0;
    free(tmp);
    free(tmp2);
}

xs_status an_features(an_ctx *c) {
    XS_TRY(an_stft_features(c));
    XS_TRY(an_sub_frames(c));
    an_activity(c);
    XS_TRY(an_pitch(c));
    an_basic_metrics(c);
    return XS_OK;
}
