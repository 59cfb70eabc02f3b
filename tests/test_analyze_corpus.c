/*
 * test_analyze_corpus.c — the analyzer's calibration rules (issue 6) on the
 * committed clean clips (tests/data/analyze: five espeak-ng voices and a
 * real French recording) and their corruptions (xs_an_corrupt):
 *   - clean: score >= 80, no major/critical defect;
 *   - each corruption: score <= 60 and the right defect name; reversal,
 *     block reversal, dropouts, 80 ms clicks and clipping are major or worse;
 *   - controls (silence, white noise, hum) named;
 *   - stable: same input twice gives the same JSON; 16 kHz round trip and
 *     16-bit re-encoding stay >= 80;
 *   - clean-only regression clips (former held-out false alarms) stay clean,
 *     and their real defects (dropouts, added hum) are still named;
 *   - the formant scale (analyze_formants.c) of each clean voice is near an
 *     adult's and follows a 3/2 or 2/3 resampling by +-0.585 octave.
 * Known misses are listed in k_known_miss with the reason; they are printed,
 * not counted, and any other miss fails.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "diag/analyze.h"
#include "testutil.h"

static const char *k_clips[] = {"en_us_m", "en_us_f", "en_us_f2", "en_gb_m", "en_sc_m", "fr_real"};
#define N_CLIPS (int)(sizeof k_clips / sizeof k_clips[0])

typedef struct expect { const char *kind, *defect; bool major; } expect;
static const expect k_expect[] = {
    {"reverse", "time_reversed", true},        {"block_reverse", "time_reversed", true},
    {"dropouts", "dropouts", true},            {"clicks", "frame_discontinuity", true},
    {"clip", "clipping", true},                {"rate_up", "wrong_rate", false},
    {"rate_down", "wrong_rate", false},        {"noise0db", "noise", false},
    {"phase_random", "garbled", false},        {"shuffle", "garbled", false},
    {"band_scramble", "garbled", false},
};

/* Cases the detectors cannot call today, and why (see the README section);
 * {NULL} ends the list. None left: `en_gb_m` reversed (its sentence ends
 * with a rise, so intonation could not tell) is named since the CV lead
 * (round six). */
static const char *k_known_miss[][3] = {
    {NULL, NULL, NULL},
};

static int g_rate_measured; /* rate_up/rate_down cases with a formant scale */

static bool known_miss(const char *clip, const char *kind) {
    for (size_t i = 0; k_known_miss[i][0]; i++)
        if (!strcmp(k_known_miss[i][0], clip) && !strcmp(k_known_miss[i][1], kind)) return true;
    return false;
}

static bool has_major(const xs_analysis *a) {
    for (int i = 0; i < a->n_defects; i++)
        if (a->defects[i].severity >= XS_AN_MAJOR) return true;
    return false;
}

static void print_defects(const char *label, const xs_analysis *a) {
    fprintf(stderr, "  %s: score %.0f %s:", label, a->score, xs_an_verdict_str(a->verdict));
    for (int i = 0; i < a->n_defects; i++)
        fprintf(stderr, " %s(%s)", a->defects[i].name, xs_an_severity_str(a->defects[i].severity));
    fprintf(stderr, "\n");
}

static xs_analysis *run(const float *x, int64_t n, int rate) {
    xs_analysis *a = NULL;
    xs_status rc = xs_analyze(x, n, rate, &a);
    CHECK(rc == XS_OK && a, "analyze: %s", xs_error_msg());
    return a;
}

static void check_clip(const char *clip) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/analyze/clean_%s.wav", XS_SOURCE_DIR, clip);
    xs_audio au = {0};
    if (xs_audio_read(path, 0, &au, NULL) != XS_OK) {
        CHECK(false, "read %s: %s", path, xs_error_msg());
        return;
    }
    xs_analysis *a = run(au.pcm, au.n, au.sample_rate);
    double scale0 = a && a->m.formant_fit > 0 ? a->m.formant_scale : NAN;
    CHECK(isfinite(scale0) && fabs(scale0) < 0.3, "%s: formant scale %.2f octave (adult voice: near 0)",
          clip, scale0);
    if (a) {
        CHECK(a->score >= 80 && !has_major(a) && a->verdict == XS_AN_CLEAR, "%s clean: score %.0f",
              clip, a->score);
        if (a->score < 80 || has_major(a)) print_defects(clip, a);
        /* Stable: the same input gives the same report. */
        xs_analysis *b = run(au.pcm, au.n, au.sample_rate);
        char *ja = xs_an_json(a, "x"), *jb = b ? xs_an_json(b, "x") : NULL;
        CHECK(ja && jb && !strcmp(ja, jb), "%s: same input, same JSON", clip);
        free(ja);
        free(jb);
        xs_analysis_free(b);
    }
    xs_analysis_free(a);
    /* 16 kHz and back; and the 16 kHz file itself. */
    float *d = NULL, *u = NULL;
    int64_t nd = 0, nu = 0;
    if (xs_audio_resample(au.pcm, au.n, au.sample_rate, 16000, &d, &nd) == XS_OK &&
        xs_audio_resample(d, nd, 16000, au.sample_rate, &u, &nu) == XS_OK) {
        xs_analysis *r = run(u, nu, au.sample_rate), *r16 = run(d, nd, 16000);
        CHECK(r && r->score >= 80, "%s via 16 kHz: score %.0f", clip, r ? r->score : -1);
        CHECK(r16 && r16->score >= 80, "%s at 16 kHz: score %.0f", clip, r16 ? r16->score : -1);
        xs_analysis_free(r);
        xs_analysis_free(r16);
    }
    free(d);
    free(u);
    /* 16-bit re-encoding (through a file, the real path). */
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/xs_test_analyze_%d.wav", (int)getpid());
    xs_audio re = {0};
    if (xs_audio_write_wav(tmp, au.pcm, au.n, au.sample_rate, false) == XS_OK &&
        xs_audio_read(tmp, 0, &re, NULL) == XS_OK) {
        xs_analysis *r = run(re.pcm, re.n, re.sample_rate);
        CHECK(r && r->score >= 80, "%s re-encoded 16-bit: %.0f", clip, r ? r->score : -1);
        xs_analysis_free(r);
    }
    xs_audio_free(&re);
    remove(tmp);

    for (size_t k = 0; k < sizeof k_expect / sizeof k_expect[0]; k++) {
        const expect *e = &k_expect[k];
        float *y = NULL;
        int64_t ny = 0;
        if (xs_an_corrupt(e->kind, au.pcm, au.n, au.sample_rate, 1, &y, &ny) != XS_OK) {
            CHECK(false, "corrupt %s: %s", e->kind, xs_error_msg());
            continue;
        }
        xs_analysis *c = run(y, ny, au.sample_rate);
        free(y);
        if (!c) continue;
        const xs_an_defect *d0 = xs_an_find(c, e->defect);
        bool ok = c->score <= 60 && d0 && (!e->major || d0->severity >= XS_AN_MAJOR);
        char label[64];
        snprintf(label, sizeof label, "%s/%s", clip, e->kind);
        if (known_miss(clip, e->kind)) {
            fprintf(stderr, "  known miss %-24s %s\n", label, ok ? "(now detected)" : "");
            if (!ok) print_defects(label, c);
        } else {
            CHECK(ok, "%s: want %s%s, score <= 60", label, e->defect, e->major ? " (major)" : "");
            if (!ok) print_defects(label, c);
        }
        /* Lost frames are holes, not splices: never named garbled. */
        if (!strcmp(e->kind, "dropouts"))
            CHECK(!xs_an_find(c, "garbled"), "%s: dropouts named garbled", label);
        if (d0 && !strcmp(e->kind, "clicks"))
            CHECK(fabsf(d0->period_ms - 80.0f) < 1.0f, "%s: period %.1f ms", label, d0->period_ms);
        if (d0 && !strcmp(e->kind, "block_reverse"))
            CHECK(d0->scope && !strcmp(d0->scope, "block") && fabsf(d0->block_ms - 80) < 0.5f,
                  "%s: scope block, 80 ms", label);
        if (d0 && !strcmp(e->kind, "reverse"))
            CHECK(d0->scope && !strcmp(d0->scope, "global"), "%s: scope global", label);
        /* Resampling moves the formants by the factor: the measured scale
         * must follow (log2 3/2 = 0.585 octave) within 0.2 octave. A sped-up
         * female voice may be left unmeasured (its bump runs off the top of
         * the sweep), a slowed one may not: that is the case the cue is for. */
        if (!strncmp(e->kind, "rate_", 5)) {
            bool up = !strcmp(e->kind, "rate_up");
            double want = (up ? 1 : -1) * log2(1.5);
            double got = c->m.formant_fit > 0 ? c->m.formant_scale - scale0 : NAN;
            g_rate_measured += isfinite(got);
            CHECK(isfinite(got) ? fabs(got - want) < 0.2 : up, "%s: formant scale moved %.2f octave (want %.2f)",
                  label, got, want);
        }
        if (d0 && !strcmp(e->kind, "rate_up")) CHECK(d0->factor > 1, "%s: factor > 1", label);
        if (d0 && !strcmp(e->kind, "rate_down")) CHECK(d0->factor < 1, "%s: factor < 1", label);
        if (d0 && !strcmp(e->kind, "noise")) CHECK(d0->snr_db < 12, "%s: snr", label);
        xs_analysis_free(c);
    }
    xs_audio_free(&au);
}

/* Clean-only regression clips: held-out voices that were false alarms
 * (README, held-out check). en_gb_cw: espeak cuts its pauses straight to
 * digital zero, at the end of a pitch period (was `dropouts`); its real
 * dropouts must still be found. en_us_f1_room: a reverberant female voice
 * whose harmonic stands out through the pauses (was `tonal`); the same
 * voice with a 50 Hz hum added must still be named tonal. */
static const char *k_clean_only[] = {"en_gb_cw", "en_us_f1_room"};

static void check_clean_only(const char *clip) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/analyze/clean_%s.wav", XS_SOURCE_DIR, clip);
    xs_audio au = {0};
    if (xs_audio_read(path, 0, &au, NULL) != XS_OK) {
        CHECK(false, "read %s: %s", path, xs_error_msg());
        return;
    }
    xs_analysis *a = run(au.pcm, au.n, au.sample_rate);
    if (a) {
        CHECK(a->score >= 80 && !has_major(a), "%s clean: score %.0f", clip, a->score);
        if (a->score < 80 || has_major(a)) print_defects(clip, a);
    }
    xs_analysis_free(a);
    float *y = NULL;
    int64_t ny = 0;
    if (xs_an_corrupt("dropouts", au.pcm, au.n, au.sample_rate, 1, &y, &ny) == XS_OK) {
        xs_analysis *c = run(y, ny, au.sample_rate);
        const xs_an_defect *d = c ? xs_an_find(c, "dropouts") : NULL;
        CHECK(d && d->severity >= XS_AN_MAJOR && c->score <= 60, "%s/dropouts: named, major", clip);
        if (c && !d) print_defects(clip, c);
        xs_analysis_free(c);
    }
    free(y);
    /* A 50 Hz hum at about -30 dB under the speech peaks, added. */
    float *h = malloc((size_t)au.n * sizeof *h);
    if (h) {
        for (int64_t i = 0; i < au.n; i++)
            h[i] = au.pcm[i] + 0.03f * (float)sin(2.0 * M_PI * 50.0 * (double)i / au.sample_rate);
        xs_analysis *c = run(h, au.n, au.sample_rate);
        const xs_an_defect *d = c ? xs_an_find(c, "tonal") : NULL;
        CHECK(d && fabsf(d->freq_hz - 50) < 1.5f, "%s + hum: tonal at 50 Hz (%.1f)", clip,
              d ? d->freq_hz : -1);
        xs_analysis_free(c);
        free(h);
    }
    xs_audio_free(&au);
}

static void check_controls(void) {
    enum { N = 24000 * 4 };
    float *base = malloc(N * sizeof *base), *y = NULL;
    int64_t ny = 0;
    test_fill_uniform(base, N, 5, -0.1f, 0.1f); /* only the length matters for controls */
    const char *kinds[] = {"silence", "white", "hum"}, *names[] = {"silence", "noise", "tonal"};
    for (int i = 0; i < 3; i++) {
        CHECK(xs_an_corrupt(kinds[i], base, N, 24000, 1, &y, &ny) == XS_OK, "control %s", kinds[i]);
        xs_analysis *a = run(y, ny, 24000);
        free(y);
        if (!a) continue;
        CHECK(xs_an_find(a, names[i]) != NULL, "control %s named %s", kinds[i], names[i]);
        CHECK(a->verdict == XS_AN_NOT_SPEECH && a->score <= 20, "control %s: not_speech, %.0f",
              kinds[i], a->score);
        if (!strcmp(kinds[i], "hum")) {
            const xs_an_defect *d = xs_an_find(a, "tonal");
            CHECK(d && fabsf(d->freq_hz - 50) < 1.5f, "hum at 50 Hz: %.1f", d ? d->freq_hz : -1);
        }
        xs_analysis_free(a);
    }
    free(base);
}

int main(void) {
    for (int i = 0; i < N_CLIPS; i++) check_clip(k_clips[i]);
    for (size_t i = 0; i < sizeof k_clean_only / sizeof k_clean_only[0]; i++)
        check_clean_only(k_clean_only[i]);
    check_controls();
    CHECK(g_rate_measured >= 2 * N_CLIPS - 2, "formant scale measured on %d of %d rate cases", g_rate_measured,
          2 * N_CLIPS);
    return test_summary("test_analyze_corpus");
}
