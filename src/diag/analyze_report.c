/*
 * analyze_report.c — the analysis as text for people and JSON for scripts.
 * JSON field names are a contract (issue 6): file, score, verdict,
 * defects[{name, severity, confidence, times_s, period_ms, scope, block_ms,
 * factor, snr_db, freq_hz}], metrics{...}. Evidence fields that do not apply
 * are left out.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/analyze.h"

static double rnd(double v, double q) { return round(v / q) * q; }

void xs_an_print_text(const xs_analysis *a, const char *file, void *stdio_file) {
    FILE *f = stdio_file ? (FILE *)stdio_file : stdout;
    const xs_an_metrics *m = &a->m;
    fprintf(f, "%s: score %.0f/100 — %s", file, a->score, xs_an_verdict_str(a->verdict));
    if (a->n_defects == 0) fprintf(f, " (no defect found)");
    fprintf(f, "\n");
    for (int i = 0; i < a->n_defects; i++) {
        const xs_an_defect *d = &a->defects[i];
        fprintf(f, "  %-20s %-8s conf %.2f  %s", d->name, xs_an_severity_str(d->severity),
                d->confidence, d->detail);
        if (d->period_ms > 0) fprintf(f, "; period %.1f ms", d->period_ms);
        if (d->scope) fprintf(f, "; scope %s", d->scope);
        if (d->block_ms > 0) fprintf(f, " (%.0f ms blocks)", d->block_ms);
        if (d->factor > 0) fprintf(f, "; factor %.2f", d->factor);
        if (d->snr_db != -1.0f) fprintf(f, "; snr %.1f dB", d->snr_db);
        if (d->freq_hz > 0) fprintf(f, "; %.1f Hz", d->freq_hz);
        fprintf(f, "\n");
        if (d->n_times > 0) {
            fprintf(f, "  %-20s at", "");
            int show = d->n_times < 6 ? d->n_times : 6;
            for (int k = 0; k < show; k++) fprintf(f, " %.2f-%.2fs", d->times[k][0], d->times[k][1]);
            if (d->n_times > show) fprintf(f, " ... (%d intervals)", d->n_times);
            fprintf(f, "\n");
        }
    }
    fprintf(f, "  duration %.2f s, rms %.1f dBFS, peak %.1f dBFS, SNR ~%.0f dB, speech %.0f%%",
            m->duration_s, m->rms_dbfs, m->peak_dbfs, m->snr_db, 100 * m->speech_fraction);
    if (m->pitch_median_hz > 0)
        fprintf(f, ", pitch %.0f-%.0f Hz (median %.0f)", m->pitch_min_hz, m->pitch_max_hz,
                m->pitch_median_hz);
    else
        fprintf(f, ", no pitch found");
    if (m->formant_fit > 0) fprintf(f, ", formants %+.2f octave from an adult male's", m->formant_scale);
    fprintf(f, "\n");
}

static void add_num(cJSON *o, const char *k, double v, double q) {
    cJSON_AddNumberToObject(o, k, isfinite(v) ? rnd(v, q) : 0.0);
}

char *xs_an_json(const xs_analysis *a, const char *file) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "file", file ? file : "");
    add_num(o, "score", a->score, 0.1);
    cJSON_AddStringToObject(o, "verdict", xs_an_verdict_str(a->verdict));
    cJSON *defs = cJSON_AddArrayToObject(o, "defects");
    for (int i = 0; i < a->n_defects; i++) {
        const xs_an_defect *d = &a->defects[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "name", d->name);
        cJSON_AddStringToObject(j, "severity", xs_an_severity_str(d->severity));
        add_num(j, "confidence", d->confidence, 0.01);
        if (d->n_times > 0) {
            cJSON *t = cJSON_AddArrayToObject(j, "times_s");
            for (int k = 0; k < d->n_times; k++) {
                cJSON *p = cJSON_CreateArray();
                cJSON_AddItemToArray(p, cJSON_CreateNumber(rnd(d->times[k][0], 0.001)));
                cJSON_AddItemToArray(p, cJSON_CreateNumber(rnd(d->times[k][1], 0.001)));
                cJSON_AddItemToArray(t, p);
            }
        }
        if (d->period_ms > 0) add_num(j, "period_ms", d->period_ms, 0.1);
        if (d->scope) cJSON_AddStringToObject(j, "scope", d->scope);
        if (d->block_ms > 0) add_num(j, "block_ms", d->block_ms, 0.1);
        if (d->factor > 0) add_num(j, "factor", d->factor, 0.01);
        if (!strcmp(d->name, "noise")) add_num(j, "snr_db", d->snr_db, 0.1);
        if (d->freq_hz > 0) add_num(j, "freq_hz", d->freq_hz, 0.1);
        cJSON_AddStringToObject(j, "detail", d->detail);
        cJSON_AddItemToArray(defs, j);
    }
    const xs_an_metrics *m = &a->m;
    cJSON *mj = cJSON_AddObjectToObject(o, "metrics");
    add_num(mj, "duration_s", m->duration_s, 0.001);
    add_num(mj, "rms_dbfs", m->rms_dbfs, 0.01);
    add_num(mj, "peak_dbfs", m->peak_dbfs, 0.01);
    add_num(mj, "dc", m->dc, 1e-5);
    add_num(mj, "snr_db", m->snr_db, 0.1);
    add_num(mj, "speech_fraction", m->speech_fraction, 0.001);
    add_num(mj, "voiced_fraction", m->voiced_fraction, 0.001);
    add_num(mj, "pitch_min_hz", m->pitch_min_hz, 0.1);
    add_num(mj, "pitch_median_hz", m->pitch_median_hz, 0.1);
    add_num(mj, "pitch_max_hz", m->pitch_max_hz, 0.1);
    add_num(mj, "centroid_hz", m->centroid_hz, 1);
    add_num(mj, "flatness", m->flatness, 0.001);
    add_num(mj, "clip_fraction", m->clip_fraction, 1e-5);
    add_num(mj, "reversal_asym", m->reversal_asym, 0.001);
    add_num(mj, "reversal_asym_block", m->reversal_asym_block, 0.001);
    add_num(mj, "click_periodicity", m->click_periodicity, 0.001);
    add_num(mj, "pulse_kurtosis", m->pulse_kurtosis, 0.01);
    add_num(mj, "grid_jump_ratio", m->grid_jump_ratio, 0.001);
    add_num(mj, "flux_corr", m->flux_corr, 0.001);
    add_num(mj, "pitch_trend", m->pitch_trend, 0.001);
    add_num(mj, "cv_lead", m->cv_lead, 0.001);
    add_num(mj, "edge_jump_ratio", m->edge_jump_ratio, 0.001);
    add_num(mj, "edge_jump_ratio_unreversed", m->edge_jump_ratio_unrev, 0.001);
    add_num(mj, "edge_jump_frac", m->edge_jump_frac, 0.001);
    add_num(mj, "splice_ratio", m->splice_ratio, 0.001);
    add_num(mj, "reversal_asym_hf", m->reversal_asym_hf, 0.001);
    add_num(mj, "syllable_hz", m->syllable_hz, 0.01);
    add_num(mj, "rate_fit_octaves", m->rate_fit_octaves, 0.001);
    add_num(mj, "rate_fit_gain", m->rate_fit_gain, 0.01);
    add_num(mj, "f1_hz", m->f1_hz, 1);
    add_num(mj, "f2_hz", m->f2_hz, 1);
    add_num(mj, "f3_hz", m->f3_hz, 1);
    add_num(mj, "formant_scale", m->formant_scale, 0.001);
    add_num(mj, "formant_fit", m->formant_fit, 0.01);
    add_num(mj, "fric_hz", m->fric_hz, 1);
    add_num(mj, "voiced_cen_hz", m->voiced_cen_hz, 1);
    add_num(mj, "rolloff_hz", m->rolloff_hz, 1);
    add_num(mj, "tone_prominence_db", m->tone_prominence_db, 0.1);
    add_num(mj, "tone_hz", m->tone_hz, 0.1);
    add_num(mj, "tone_persistence", m->tone_persistence, 0.001);
    add_num(mj, "tone_persistence_quiet", m->tone_persistence_quiet, 0.001);
    add_num(mj, "tone_tracking", m->tone_tracking, 0.001);
    add_num(mj, "nonfinite_samples", m->n_nonfinite, 1);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}
