/*
 * test_analyze_direction.c — the CV lead (analyze_direction.c), the
 * whole-file reversal cue that reads the order of consonant and vowel:
 *   - synthetic syllables, a hiss (the consonant) then a voiced vowel,
 *     separated by digital silence: CV order gives a positive lead, VC
 *     order (hiss after the vowel) a negative one, and reversing a file
 *     negates its lead;
 *   - the same CV syllables on a pitch that RISES through the file (as tone
 *     sequences and rising phrase ends do: the intonation cue alone read
 *     such files as reversed) are not named time_reversed; reversed, they
 *     are;
 *   - the committed clean clips (tests/data/analyze) lead forward and
 *     negate under reversal.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "diag/analyze.h"
#include "testutil.h"

enum { RATE = 24000 };

/* Deterministic noise in [-1, 1) (xorshift), so the test needs no data. */
static float noise(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((double)(*s >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

/* Two-pole resonator y = x + 2r cos(w) y1 - r^2 y2 (a formant). */
typedef struct { double b1, b2, y1, y2; } reso;
static reso reso_make(double f, double bw) {
    double r = exp(-M_PI * bw / RATE);
    reso z = {2 * r * cos(2 * M_PI * f / RATE), -r * r, 0, 0};
    return z;
}
static double reso_step(reso *z, double x) {
    double y = x + z->b1 * z->y1 + z->b2 * z->y2;
    z->y2 = z->y1;
    z->y1 = y;
    return y;
}

/* n_syl syllables: 70 ms of digital silence, a 60 ms hiss (high-passed
 * noise, abrupt onset, decaying), a 200 ms vowel (pulse train through
 * formants at 700 and 1200 Hz, 10 ms attack, 40 ms release); `vc` puts the
 * hiss after the vowel instead. Pitch goes from f0a to f0b over the file. */
static float *syllables(int n_syl, bool vc, double f0a, double f0b, int64_t *n_out) {
    const int sil = RATE * 70 / 1000, hiss = RATE * 60 / 1000, vow = RATE * 200 / 1000;
    const int64_t n = (int64_t)n_syl * (sil + hiss + vow) + sil;
    float *x = calloc((size_t)n, sizeof *x);
    if (!x) return NULL;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    double phase = 0;
    int64_t p = sil;
    for (int s = 0; s < n_syl; s++) {
        int64_t hs = vc ? p + vow : p, vs = vc ? p : p + hiss;
        float prev = 0;
        for (int i = 0; i < hiss; i++) { /* first difference: a high-passed hiss */
            float w = noise(&seed), env = (float)exp(-3.0 * i / hiss);
            x[hs + i] = 0.15f * env * (w - prev);
            prev = w;
        }
        reso f1 = reso_make(700, 90), f2 = reso_make(1200, 110);
        for (int i = 0; i < vow; i++) {
            double t = (double)(s * vow + i) / ((double)n_syl * vow);
            double f0 = f0a * pow(f0b / f0a, t);
            phase += f0 / RATE;
            double pulse = 0;
            if (phase >= 1) {
                phase -= 1;
                pulse = 1;
            }
            double env = fmin(1.0, fmin(i / (0.010 * RATE), (vow - i) / (0.040 * RATE)));
            double y = reso_step(&f2, reso_step(&f1, pulse));
            x[vs + i] = (float)(0.004 * env * y);
        }
        p += hiss + vow + sil;
    }
    *n_out = n;
    return x;
}

static float *reversed(const float *x, int64_t n) {
    float *r = malloc((size_t)n * sizeof *r);
    if (r)
        for (int64_t i = 0; i < n; i++) r[i] = x[n - 1 - i];
    return r;
}

static xs_analysis *analyse(const float *x, int64_t n) {
    xs_analysis *a = NULL;
    CHECK(x && xs_analyze(x, n, RATE, &a) == XS_OK && a, "analyze: %s", xs_error_msg());
    return a;
}

static void test_synthetic(void) {
    int64_t n = 0, nv = 0;
    float *cv = syllables(12, false, 120, 120, &n), *vc = syllables(12, true, 120, 120, &nv);
    float *rcv = cv ? reversed(cv, n) : NULL;
    xs_analysis *a = analyse(cv, n), *b = analyse(vc, nv), *r = analyse(rcv, n);
    if (a && b && r) {
        CHECK(a->m.cv_lead > 0.2, "CV syllables: the hiss leads the vowel (%.3f > 0.2)", a->m.cv_lead);
        CHECK(b->m.cv_lead < -0.2, "VC syllables: the hiss trails the vowel (%.3f < -0.2)", b->m.cv_lead);
        /* Within 15%: the 10 ms frame grid falls differently on edges
         * this sharp once the file is turned round. */
        CHECK(r->m.cv_lead < 0 && fabs(a->m.cv_lead + r->m.cv_lead) < 0.15 * fabs(a->m.cv_lead),
              "reversal negates the lead (%.3f vs %.3f)", a->m.cv_lead, r->m.cv_lead);
    }
    xs_analysis_free(a);
    xs_analysis_free(b);
    xs_analysis_free(r);
    free(cv);
    free(vc);
    free(rcv);
}

/* Pitch rising by 0.8 octave through the file: the intonation cue alone
 * says "backwards"; the consonant-vowel order says forward and wins. */
static void test_rising_pitch(void) {
    int64_t n = 0;
    float *x = syllables(12, false, 110, 190, &n), *rx = x ? reversed(x, n) : NULL;
    xs_analysis *a = analyse(x, n), *r = analyse(rx, n);
    if (a && r) {
        CHECK(a->m.pitch_trend > 1.2, "the pitch rises through the file (trend %.2f > 1.2)", a->m.pitch_trend);
        CHECK(!xs_an_find(a, "time_reversed"), "rising pitch, CV order: not time_reversed (lead %.3f)",
              a->m.cv_lead);
        const xs_an_defect *d = xs_an_find(r, "time_reversed");
        CHECK(d && d->scope && !strcmp(d->scope, "global") && d->severity >= XS_AN_MAJOR,
              "reversed (falling pitch, VC order): time_reversed global, major (lead %.3f, trend %.2f)",
              r->m.cv_lead, r->m.pitch_trend);
    }
    xs_analysis_free(a);
    xs_analysis_free(r);
    free(x);
    free(rx);
}

static void test_corpus(void) {
    static const char *clips[] = {"en_us_m", "en_us_f", "en_us_f2", "en_gb_m", "en_sc_m", "fr_real"};
    for (size_t i = 0; i < sizeof clips / sizeof clips[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/data/analyze/clean_%s.wav", XS_SOURCE_DIR, clips[i]);
        xs_audio au = {0};
        if (xs_audio_read(path, RATE, &au, NULL) != XS_OK) {
            CHECK(false, "read %s: %s", path, xs_error_msg());
            continue;
        }
        float *rx = reversed(au.pcm, au.n);
        xs_analysis *a = analyse(au.pcm, au.n), *r = analyse(rx, au.n);
        if (a && r) {
            CHECK(a->m.cv_lead > 0.15, "%s: consonants lead vowels (%.3f > 0.15)", clips[i], a->m.cv_lead);
            CHECK(fabs(a->m.cv_lead + r->m.cv_lead) < 0.05, "%s: reversal negates the lead (%.3f vs %.3f)",
                  clips[i], a->m.cv_lead, r->m.cv_lead);
        }
        xs_analysis_free(a);
        xs_analysis_free(r);
        free(rx);
        xs_audio_free(&au);
    }
}

int main(void) {
    test_synthetic();
    test_rising_pitch();
    test_corpus();
    return test_summary("test_analyze_direction");
}
