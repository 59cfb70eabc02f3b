/*
 * test_analyze_basic.c — analyzer pieces on synthetic input: the FFT against
 * a direct DFT, non-finite samples reported (not refused), too-short and
 * DC-offset input, speech with hum underneath (tonal named, still speech),
 * argument errors, and the JSON contract (field names and types).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "diag/analyze_internal.h"
#include "testutil.h"

static void test_fft(void) {
    enum { N = 64 };
    float re[N], im[N], x[N];
    test_fill_uniform(x, N, 11, -1, 1);
    for (int i = 0; i < N; i++) { re[i] = x[i]; im[i] = 0; }
    an_fft(re, im, N);
    double err = 0;
    for (int k = 0; k < N; k++) {
        double sr = 0, si = 0;
        for (int i = 0; i < N; i++) {
            sr += x[i] * cos(-2 * M_PI * k * i / N);
            si += x[i] * sin(-2 * M_PI * k * i / N);
        }
        err = fmax(err, fmax(fabs(sr - re[k]), fabs(si - im[k])));
    }
    CHECK(err < 1e-4, "FFT matches DFT (max err %.2e)", err);
    float v[5] = {5, 1, 4, 2, 3};
    CHECK(an_median(v, 5) == 3.0 && an_percentile(v, 5, 100) == 5.0, "median/percentile");
}

static float *load_clean(int64_t *n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/analyze/clean_en_us_m.wav", XS_SOURCE_DIR);
    xs_audio a = {0};
    if (xs_audio_read(path, 24000, &a, NULL) != XS_OK) return NULL;
    *n = a.n;
    return a.pcm;
}

static void test_nonfinite_short_dc(float *x, int64_t n) {
    float *y = malloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    y[1000] = NAN;
    y[50000] = INFINITY;
    xs_analysis *a = NULL;
    CHECK(xs_analyze(y, n, 24000, &a) == XS_OK, "NaN input analysed, not refused");
    const xs_an_defect *d = xs_an_find(a, "nonfinite");
    CHECK(d && d->severity == XS_AN_CRITICAL && a->score <= 20, "nonfinite critical, score %.0f",
          a ? a->score : -1);
    CHECK(a && a->m.n_nonfinite == 2, "2 non-finite samples counted");
    xs_analysis_free(a);

    a = NULL;
    CHECK(xs_analyze(x + 24000, 12000, 24000, &a) == XS_OK, "0.5 s analysed");
    d = xs_an_find(a, "too_short");
    CHECK(d && d->severity == XS_AN_MAJOR, "0.5 s: too_short major");
    xs_analysis_free(a);
    a = NULL;
    CHECK(xs_analyze(x + 24000, 2400, 24000, &a) == XS_OK && xs_an_find(a, "too_short") &&
              xs_an_find(a, "too_short")->severity == XS_AN_CRITICAL, "0.1 s: too_short critical");
    xs_analysis_free(a);

    for (int64_t i = 0; i < n; i++) y[i] = x[i] * 0.5f + 0.2f;
    a = NULL;
    CHECK(xs_analyze(y, n, 24000, &a) == XS_OK && xs_an_find(a, "dc_offset"), "DC 0.2 named");
    CHECK(a && fabs(a->m.dc - 0.2) < 0.01, "dc metric %.3f", a ? a->m.dc : -1);
    xs_analysis_free(a);
    free(y);
}

static void test_hum_under_speech(float *x, int64_t n) {
    float *y = malloc((size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] + 0.02f * sinf(2 * (float)M_PI * 60 * i / 24000.0f);
    xs_analysis *a = NULL;
    CHECK(xs_analyze(y, n, 24000, &a) == XS_OK, "speech + hum");
    const xs_an_defect *d = a ? xs_an_find(a, "tonal") : NULL;
    CHECK(d && fabsf(d->freq_hz - 60) < 1.5f, "60 Hz hum found under speech (%.1f)", d ? d->freq_hz : -1);
    CHECK(a && a->verdict != XS_AN_NOT_SPEECH, "still speech");
    xs_analysis_free(a);
    free(y);
}

static void test_json(float *x, int64_t n) {
    float *y = NULL;
    int64_t ny = 0;
    CHECK(xs_an_corrupt("clicks", x, n, 24000, 1, &y, &ny) == XS_OK, "corrupt clicks");
    xs_analysis *a = NULL;
    CHECK(xs_analyze(y, ny, 24000, &a) == XS_OK, "analyse clicks");
    char *s = a ? xs_an_json(a, "f.wav") : NULL;
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    CHECK(o != NULL, "JSON parses");
    CHECK(cJSON_IsString(cJSON_GetObjectItem(o, "file")), "file");
    cJSON *sc = cJSON_GetObjectItem(o, "score");
    CHECK(cJSON_IsNumber(sc) && sc->valuedouble >= 0 && sc->valuedouble <= 100, "score 0..100");
    cJSON *v = cJSON_GetObjectItem(o, "verdict");
    CHECK(cJSON_IsString(v) && (!strcmp(v->valuestring, "clear") || !strcmp(v->valuestring, "degraded") ||
                                !strcmp(v->valuestring, "garbled") || !strcmp(v->valuestring, "not_speech")),
          "verdict value");
    cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "defects"), 0);
    CHECK(d && !strcmp(cJSON_GetObjectItem(d, "name")->valuestring, "frame_discontinuity"), "defect name");
    CHECK(d && cJSON_IsNumber(cJSON_GetObjectItem(d, "period_ms")) &&
              fabs(cJSON_GetObjectItem(d, "period_ms")->valuedouble - 80) < 1, "period_ms 80");
    CHECK(d && cJSON_IsString(cJSON_GetObjectItem(d, "severity")), "severity");
    cJSON *c = d ? cJSON_GetObjectItem(d, "confidence") : NULL;
    CHECK(c && c->valuedouble >= 0 && c->valuedouble <= 1, "confidence 0..1");
    cJSON *t = d ? cJSON_GetObjectItem(d, "times_s") : NULL;
    CHECK(t && cJSON_GetArraySize(cJSON_GetArrayItem(t, 0)) == 2, "times_s pairs");
    CHECK(cJSON_IsObject(cJSON_GetObjectItem(o, "metrics")) &&
              cJSON_IsNumber(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metrics"), "snr_db")),
          "metrics.snr_db");
    cJSON_Delete(o);
    free(s);
    xs_analysis_free(a);
    free(y);
    a = NULL;
    CHECK(xs_analyze(x, 0, 24000, &a) != XS_OK && a == NULL, "n = 0 refused, out untouched");
    CHECK(xs_analyze(x, n, 0, &a) != XS_OK, "rate 0 refused");
    CHECK(xs_an_corrupt("nope", x, n, 24000, 1, &y, &ny) != XS_OK, "unknown corruption refused");
}

int main(void) {
    test_fft();
    int64_t n = 0;
    float *x = load_clean(&n);
    CHECK(x != NULL && n > 24000 * 3, "clean clip loaded");
    if (x) {
        test_nonfinite_short_dc(x, n);
        test_hum_under_speech(x, n);
        test_json(x, n);
    }
    free(x);
    return test_summary("test_analyze_basic");
}
