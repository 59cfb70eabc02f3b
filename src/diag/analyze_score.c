/*
 * analyze_score.c — defects -> score (0-100) and verdict.
 *
 * The score reads like the seed team's ear: clear speech 80+, a single
 * major defect caps it at 60 (the file needs fixing), a critical one at 20.
 * Minor defects nibble. Confidence scales each penalty between half and
 * full, so an uncertain call costs less.
 */
#include <stdbool.h>
#include <string.h>

#include "diag/analyze_internal.h"

void an_score(xs_analysis *a) {
    double score = 100, cap = 100;
    int n_major = 0;
    bool garbled = false, not_speech = false;
    for (int i = 0; i < a->n_defects; i++) {
        const xs_an_defect *d = &a->defects[i];
        double w = 0.5 + 0.5 * d->confidence;
        if (d->severity == XS_AN_CRITICAL) {
            double c = 20 - 15 * w;
            cap = c < cap ? c : cap;
        } else if (d->severity == XS_AN_MAJOR) {
            double c = 60 - 10 * w - 8 * n_major;
            cap = c < cap ? c : cap;
            n_major++;
        } else {
            score -= 8 * w;
        }
        if (!strcmp(d->name, "garbled") || !strcmp(d->name, "time_reversed")) garbled = true;
        if (!strcmp(d->name, "silence")) not_speech = true;
    }
    /* No voice at all: noise with no pitch track, or a tone whose "pitch"
     * never moves (speech intonation always does). */
    const xs_an_metrics *m = &a->m;
    bool steady = m->pitch_min_hz > 0 && m->pitch_max_hz < 1.1 * m->pitch_min_hz;
    if (!not_speech && m->voiced_fraction < 0.1 && (xs_an_find(a, "noise") || m->flatness > 0.3))
        not_speech = true;
    if (!not_speech && xs_an_find(a, "tonal") && (steady || m->voiced_fraction < 0.1))
        not_speech = true;
    if (score > cap) score = cap;
    a->score = score < 0 ? 0 : score;
    if (not_speech) {
        a->verdict = XS_AN_NOT_SPEECH;
        if (a->score > 20) a->score = 20;
    } else if (a->score >= 80) {
        a->verdict = XS_AN_CLEAR;
    } else {
        a->verdict = garbled ? XS_AN_GARBLED : XS_AN_DEGRADED;
    }
}
