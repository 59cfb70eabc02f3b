/*
 * analyze.c — xs_analyze(): sanitize, resample to the analysis rate, then
 * features -> detectors -> score. The result owns the analysed signal and the
 * per-frame series so that reports and the picture need nothing else.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "diag/analyze_internal.h"

const char *xs_an_verdict_str(xs_an_verdict v) {
    switch (v) {
    case XS_AN_CLEAR: return "clear";
    case XS_AN_DEGRADED: return "degraded";
    case XS_AN_GARBLED: return "garbled";
    case XS_AN_NOT_SPEECH: return "not_speech";
    }
    return "?";
}

const char *xs_an_severity_str(xs_an_severity s) {
    return s == XS_AN_CRITICAL ? "critical" : s == XS_AN_MAJOR ? "major" : "minor";
}

const xs_an_defect *xs_an_find(const xs_analysis *a, const char *name) {
    for (int i = 0; a && i < a->n_defects; i++)
        if (strcmp(a->defects[i].name, name) == 0) return &a->defects[i];
    return NULL;
}

xs_an_defect *an_add_defect(xs_analysis *a, const char *name, xs_an_severity sev, float conf) {
    if (a->n_defects >= XS_AN_MAX_DEFECTS) return NULL;
    xs_an_defect *d = &a->defects[a->n_defects++];
    memset(d, 0, sizeof *d);
    d->name = name;
    d->severity = sev;
    d->confidence = conf < 0 ? 0 : conf > 1 ? 1 : conf;
    d->period_ms = d->block_ms = d->factor = d->snr_db = d->freq_hz = -1.0f;
    return d;
}

void an_defect_add_time(xs_an_defect *d, double t0, double t1) {
    if (!d) return;
    /* Merge with the previous interval when they touch (within 50 ms). */
    if (d->n_times > 0 && t0 <= d->times[d->n_times - 1][1] + 0.05) {
        if (t1 > d->times[d->n_times - 1][1]) d->times[d->n_times - 1][1] = (float)t1;
        return;
    }
    if (d->n_times >= XS_AN_MAX_TIMES) return;
    d->times[d->n_times][0] = (float)t0;
    d->times[d->n_times][1] = (float)t1;
    d->n_times++;
}

void xs_analysis_free(xs_analysis *a) {
    if (!a) return;
    free(a->pcm);
    free(a->spec_db);
    free(a->frame_db);
    free(a->pitch_hz);
    free(a->active);
    free(a);
}

xs_status xs_analyze(const float *pcm, int64_t n, int rate, xs_analysis **out) {
    if (!pcm || n <= 0 || rate <= 0 || !out)
        return xs_error(XS_ERR_ARG, "analyze: empty input or bad rate (n=%lld, rate=%d)",
                        (long long)n, rate);
    xs_analysis *a = calloc(1, sizeof *a);
    float *clean = malloc((size_t)n * sizeof *clean);
    if (!a || !clean) {
        free(a);
        free(clean);
        return xs_error(XS_ERR_NOMEM, "analyze: out of memory");
    }
    /* Non-finite samples would poison every measure: zero them, report them. */
    int64_t bad = 0;
    double bad_t0 = -1, bad_t1 = -1;
    for (int64_t i = 0; i < n; i++) {
        if (isfinite(pcm[i])) {
            clean[i] = pcm[i];
        } else {
            clean[i] = 0.0f;
            if (bad == 0) bad_t0 = (double)i / rate;
            bad_t1 = (double)(i + 1) / rate;
            bad++;
        }
    }
    xs_status rc = XS_OK;
    if (rate != XS_AN_RATE) {
        rc = xs_audio_resample(clean, n, rate, XS_AN_RATE, &a->pcm, &a->n);
        free(clean);
        if (rc != XS_OK) {
            free(a);
            return rc;
        }
    } else {
        a->pcm = clean;
        a->n = n;
    }
    a->m.n_nonfinite = (double)bad;
    if (bad > 0) {
        xs_an_defect *d = an_add_defect(a, "nonfinite", XS_AN_CRITICAL, 1.0f);
        an_defect_add_time(d, bad_t0, bad_t1);
        snprintf(d->detail, sizeof d->detail, "%lld NaN/Inf samples (replaced by 0 for analysis)",
                 (long long)bad);
    }
    an_ctx c = {.a = a, .x = a->pcm, .n = a->n};
    rc = an_features(&c);
    if (rc == XS_OK) rc = an_detect_all(&c);
    free(c.sub_db);
    free(c.centroid);
    free(c.flatness);
    free(c.voicing);
    if (rc != XS_OK) {
        xs_analysis_free(a);
        return rc;
    }
    an_score(a);
    *out = a;
    return XS_OK;
}
