/*
 * analyze_defects.c — one detector per named defect. Each relies on a
 * signal property stated in its comment; thresholds are on level- and
 * voice-independent ratios (dB differences, fractions, octaves), checked on
 * five synthetic voices and a real recording (tests/data/analyze) and their
 * corruptions (analyze_corrupt.c).
 *
 * Order matters: whole-file states first (silence, too short), then causes
 * that explain other symptoms (block reversal explains 80 ms clicks;
 * dropouts explain edge jumps), then the rest.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/analyze_measures.h"

static float clamp01(double v) { return (float)(v < 0 ? 0 : v > 1 ? 1 : v); }
static double sec(int64_t i) { return (double)i / XS_AN_RATE; }

/* Whole-file states that make every other judgement moot. */
static bool det_silence_short(an_ctx *c) {
    xs_analysis *a = c->a;
    bool moot = false;
    if (a->m.peak_dbfs < -60.0 || c->speech_db < -65.0) {
        xs_an_defect *d = an_add_defect(a, "silence", XS_AN_CRITICAL, 1.0f);
        an_defect_add_time(d, 0, a->m.duration_s);
        snprintf(d->detail, sizeof d->detail, "peak %.1f dBFS: nothing audible", a->m.peak_dbfs);
        moot = true;
    }
    if (a->m.duration_s < 1.0) {
        bool crit = a->m.duration_s < 0.25;
        xs_an_defect *d = an_add_defect(a, "too_short", crit ? XS_AN_CRITICAL : XS_AN_MAJOR, 1.0f);
        snprintf(d->detail, sizeof d->detail, "%.2f s: too short to judge speech (< 1 s)",
                 a->m.duration_s);
        if (crit) moot = true;
    }
    return moot;
}

/* DC: a mean far from 0 relative to the signal. Clipping: natural speech
 * touches its peak a handful of times; a limiter makes it sit there. */
static void det_dc_clip(an_ctx *c) {
    xs_analysis *a = c->a;
    double rms = pow(10.0, a->m.rms_dbfs / 20.0), dc = fabs(a->m.dc);
    if (dc > 0.01 && dc > 0.2 * rms) {
        xs_an_defect *d = an_add_defect(a, "dc_offset", dc > 0.1 ? XS_AN_MAJOR : XS_AN_MINOR,
                                        clamp01(dc / (0.5 * rms)));
        if (d) snprintf(d->detail, sizeof d->detail, "mean %.4f (%.0f%% of rms)", a->m.dc, 100 * dc / rms);
    }
    double pk = 0;
    a->m.clip_fraction = am_clip_fraction(c->x, c->n, &pk);
    if (a->m.clip_fraction > 0.002 && pk > 0.01) {
        xs_an_defect *d = an_add_defect(a, "clipping",
                                        a->m.clip_fraction > 0.01 ? XS_AN_MAJOR : XS_AN_MINOR,
                                        clamp01(a->m.clip_fraction / 0.01));
        if (!d) return;
        double hi = 0.995 * pk;
        for (int64_t i = 1; i < c->n; i++)
            if (fabs(c->x[i]) >= hi && fabs(c->x[i - 1]) >= hi) an_defect_add_time(d, sec(i - 1), sec(i + 1));
        snprintf(d->detail, sizeof d->detail, "%.2f%% of loud samples flat at the peak (%.3f)",
                 100 * a->m.clip_fraction, pk);
    }
}

/* RMS over [s, e) clipped to the signal. */
static double rms_db(const float *x, int64_t n, int64_t s, int64_t e) {
    if (s < 0) s = 0;
    if (e > n) e = n;
    double acc = 0;
    for (int64_t i = s; i < e; i++) acc += (double)x[i] * x[i];
    return e > s ? 10.0 * log10(acc / (double)(e - s) + 1e-12) : -120.0;
}

/* How hard the waveform is cut at a hole's edge: the edge sample, or its
 * linear continuation into the hole, over the rms of the 1 ms beside it.
 * `edge` is the last sample before the hole (dir -1) or the first after it
 * (dir +1). A lost frame stops the waveform mid-stroke, at a random phase
 * (> 0.4 at one edge or the other for ~95% of lost frames, measured on
 * 270 holes of the corpus and held-out voices); a synthesizer or a speaker
 * stops at the end of a pitch period, where the waveform has come to rest
 * (<= 0.3 on 23 of 24 natural pauses cut to digital zero). */
static double edge_cut(const float *x, int64_t edge, int dir, double rms) {
    double v = x[edge], cont = 2.0 * x[edge] - x[edge + dir];
    double m = fabs(v) > fabs(cont) ? fabs(v) : fabs(cont);
    return rms > 0 ? m / rms : 0;
}

/* Holes inside speech: >= 20 ms of near-silence (45 dB under the speech
 * level) entered and left abruptly — the 1 ms just outside the hole is
 * still within 20 dB of speech level, and the waveform is cut mid-stroke
 * at one edge at least (edge_cut). Speech fades into its pauses (tract
 * closing, room decay), and even a synthesizer that drops straight to
 * digital zero does so at the end of a pitch period; a lost frame is cut
 * with scissors. */
static bool det_dropouts(an_ctx *c, bool block_rev) {
    xs_analysis *a = c->a;
    if (block_rev) return false; /* reversed blocks cut pauses in two: not lost frames */
    const double gap_amp = pow(10.0, (c->speech_db - 45.0) / 20.0);
    const double edge_db = c->speech_db - 20.0;
    int count = 0, n_cut = 0;
    double gap_s = 0;
    xs_an_defect tmp;
    memset(&tmp, 0, sizeof tmp);
    /* Runs of samples under gap_amp, bridged over single louder samples. */
    int64_t i = 0;
    while (i < c->n) {
        if (fabs(c->x[i]) >= gap_amp) { i++; continue; }
        int64_t s = i, e = i;
        while (e < c->n && fabs(c->x[e]) < gap_amp) e++;
        i = e + 1;
        if (e - s < XS_AN_RATE / 50 || s < 24 || e + 24 > c->n) continue;
        /* A run of near-silence is a hole only if its 1 ms neighbours are loud. */
        double lb = rms_db(c->x, c->n, s - 24, s), la = rms_db(c->x, c->n, e, e + 24);
        if (lb <= edge_db || la <= edge_db) continue;
        double cut = fmax(edge_cut(c->x, s - 1, -1, pow(10.0, lb / 20.0)),
                          edge_cut(c->x, e, +1, pow(10.0, la / 20.0)));
        /* A lost frame that happened to start and end near a zero
         * crossing (~5%) is not cut visibly; it still counts when another
         * hole in the file is: holes in one file share a cause. */
        n_cut += cut > 0.4;
        count++;
        gap_s += sec(e - s);
        an_defect_add_time(&tmp, sec(s), sec(e));
    }
    double speech_s = c->n_active * (double)XS_AN_HOP / XS_AN_RATE + 1e-9;
    /* At least one hole cut mid-stroke; and two or more holes, or one long
     * one (a natural stop closure with abrupt synthetic edges can make one
     * short hole). */
    if (n_cut == 0 || !((count >= 2) || (count == 1 && gap_s >= 0.15))) return false;
    xs_an_severity sev = (gap_s >= 0.1 || gap_s > 0.05 * speech_s) ? XS_AN_MAJOR : XS_AN_MINOR;
    xs_an_defect *d = an_add_defect(a, "dropouts", sev, clamp01(0.3 + 0.15 * count));
    if (!d) return true;
    d->n_times = tmp.n_times;
    memcpy(d->times, tmp.times, sizeof d->times);
    snprintf(d->detail, sizeof d->detail,
             "%d holes cut abruptly into speech (%d mid-waveform), %.2f s in all", count, n_cut, gap_s);
    return true;
}

/* Per-block reversal (first: it explains clicks and holes at the edges). */
static bool det_block_reversal(an_ctx *c) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    double thr_amp = pow(10.0, (c->speech_db - 30) / 20.0);
    /* A block-reversed file has a cut at every block edge (the block's last
     * sample was its first); reversing each block again makes it continuous.
     * Clicks, shuffles and dropouts stay discontinuous either way. */
    m->edge_jump_ratio = am_edge_jump_ratio(c->x, c->n, XS_AN_GRID, thr_amp);
    /* Grid edges minus mid-block positions: self-calibrating for each voice. */
    m->edge_jump_frac = am_edge_jump_frac(c->x, c->n, XS_AN_GRID, 0, thr_amp) -
                        am_edge_jump_frac(c->x, c->n, XS_AN_GRID, XS_AN_GRID / 2, thr_amp);
    m->splice_ratio = am_splice_ratio(c->x, c->n, XS_AN_GRID, c->speech_db);
    float *br = malloc((size_t)c->n * sizeof *br);
    m->edge_jump_ratio_unrev = m->edge_jump_ratio;
    if (br) {
        for (int64_t s = 0; s < c->n; s += XS_AN_GRID) {
            int64_t e = s + XS_AN_GRID < c->n ? s + XS_AN_GRID : c->n;
            for (int64_t i = s; i < e; i++) br[i] = c->x[s + e - 1 - i];
        }
        m->edge_jump_ratio_unrev = am_edge_jump_ratio(br, c->n, XS_AN_GRID, thr_amp);
        m->reversal_asym_block = am_onset_asymmetry(br, c->n, c->speech_db);
        free(br);
    }
    m->reversal_asym = am_onset_asymmetry(c->x, c->n, c->speech_db);
    float *hp = malloc((size_t)c->n * sizeof *hp);
    if (hp) {
        /* Second difference: a high-pass (+12 dB/octave) that leaves bursts
         * and frication, whose onsets are abrupt in forward speech. */
        hp[0] = hp[1] = 0;
        for (int64_t i = 2; i < c->n; i++) hp[i] = c->x[i] - 2 * c->x[i - 1] + c->x[i - 2];
        /* Its own loud level: 95th percentile of 10 ms energies. */
        int nfr = (int)(c->n / XS_AN_HOP);
        float *fe = nfr > 0 ? malloc((size_t)nfr * sizeof *fe) : NULL;
        if (fe) {
            for (int t = 0; t < nfr; t++) {
                double e = 0;
                for (int i = 0; i < XS_AN_HOP; i++) e += (double)hp[(int64_t)t * XS_AN_HOP + i] * hp[(int64_t)t * XS_AN_HOP + i];
                fe[t] = (float)(10.0 * log10(e / XS_AN_HOP + 1e-12));
            }
            m->reversal_asym_hf = am_onset_asymmetry(hp, c->n, an_percentile(fe, nfr, 95));
            free(fe);
        }
        free(hp);
    }
    m->pitch_trend = am_pitch_trend(a->pitch_hz, a->n_frames, (double)XS_AN_HOP / XS_AN_RATE);
    m->cv_lead = am_cv_lead(a);
    bool block_rev = m->edge_jump_ratio > 2.5 && m->edge_jump_ratio_unrev < 1.6 &&
                     m->edge_jump_ratio_unrev * 2.5 < m->edge_jump_ratio;
    if (block_rev) {
        xs_an_defect *d = an_add_defect(a, "time_reversed", XS_AN_MAJOR,
                                        clamp01((m->edge_jump_ratio / m->edge_jump_ratio_unrev - 2) / 3));
        if (d) {
            d->scope = "block";
            d->block_ms = 1000.0f * XS_AN_GRID / XS_AN_RATE;
            an_defect_add_time(d, 0, m->duration_s);
            snprintf(d->detail, sizeof d->detail,
                     "each 80 ms block backwards: edges cut (step ratio %.1f), continuous once "
                     "blocks are turned round (%.1f)", m->edge_jump_ratio, m->edge_jump_ratio_unrev);
        }
    }
    return block_rev;
}

/* Periodic clicks, whole-file reversal, spliced frames. */
static void det_time_structure(an_ctx *c, bool block_rev, bool dropouts) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    /* Clicks at a fixed period: fold strong sample-step outliers modulo each
     * period from 25 to 200 ms; codec state loss hits one phase every frame. */
    double frac = 0;
    int P = am_click_period(c->x, c->n, 600, 4800, &frac, NULL, NULL);
    m->click_periodicity = frac;
    if (!block_rev && P > 0 && frac >= 0.5) {
        xs_an_defect *d = an_add_defect(a, "frame_discontinuity", XS_AN_MAJOR, clamp01((frac - 0.3) / 0.5));
        if (d) {
            d->period_ms = 1000.0f * P / XS_AN_RATE;
            an_defect_add_time(d, 0, m->duration_s);
            snprintf(d->detail, sizeof d->detail,
                     "steps/clicks every %.1f ms in %.0f%% of periods", d->period_ms, 100 * frac);
        }
    }
    /* Spliced frames: the spectral envelope jumps at one phase of the 80 ms
     * grid far more than anywhere else (splice_ratio, measured only where
     * sound runs on both sides, so holes do not count: a file can have
     * both dropouts and splices); or many 80 ms edges with a sample step
     * far above the local one and no hole or periodic click to explain
     * them: 25 points more often than mid-frame points (clean held-out
     * voices reach 0.10 by chance on a few dozen edges; shuffles that the
     * splice ratio misses measure more). */
    bool clicks = P > 0 && frac >= 0.5;
    bool spliced = m->splice_ratio > 1.7;
    bool stepped = !dropouts && !xs_an_find(a, "clipping") && m->edge_jump_frac > 0.25;
    if (!block_rev && !clicks && (spliced || stepped)) {
        double conf = spliced ? 0.4 + (m->splice_ratio - 1.7) / 1.0 : 0.4 + (m->edge_jump_frac - 0.25) / 0.3;
        xs_an_defect *d = an_add_defect(a, "garbled", XS_AN_MAJOR, clamp01(conf));
        if (d) {
            an_defect_add_time(d, 0, m->duration_s);
            if (spliced)
                snprintf(d->detail, sizeof d->detail,
                         "frames spliced out of order: spectrum jumps %.1fx more at one phase of the "
                         "80 ms grid than elsewhere", m->splice_ratio);
            else
                snprintf(d->detail, sizeof d->detail,
                         "frames spliced out of order: %.0f%% more 80 ms edges jump than mid-frame points",
                         100 * m->edge_jump_frac);
        }
    }
}

/* Wrong rate (sample-rate mismatch). Resampling scales pitch, formants and
 * tempo by one factor; a speaker's sex moves pitch by ~an octave but the
 * formants by only ~0.2 octave, and tempo not at all. Each cue is scored in
 * octaves from its mode under each sex (pitch 115 / 210 Hz, spread 0.3;
 * formant scale 0 / +0.2, spread 0.15 — analyze_formants.c; tempo
 * 5 syllables/s, spread 0.35), one factor is fitted to all of them, and a
 * rate change is reported when the fit is > 0.35 octave off and explains
 * much more than "no change" (chi-square gain >= 4). The formant cue is
 * what tells a slowed high voice from a low one and a creaky voice from a
 * slowed one: without it (unmeasured, or audio with another major defect
 * that can bend it) the older rules apply: pitch and centroid outside the
 * human range, or pitch + tempo on the fast side only. */
static void det_wrong_rate(an_ctx *c) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    bool other_major = false;
    for (int i = 0; i < a->n_defects; i++) other_major = other_major || a->defects[i].severity >= XS_AN_MAJOR;
    const double f0 = m->pitch_median_hz, ce = m->centroid_hz;
    const bool formants = m->formant_fit > 0 && !other_major;
    if (!formants) {
        double p = f0 < 85 ? log2(f0 / 85) : f0 > 270 ? log2(f0 / 270) : 0;
        double q = ce < 300 ? log2(ce / 300) : ce > 1100 ? log2(ce / 1100) : 0;
        double z = p + q;
        if (fabs(z) > 0.12) {
            xs_an_defect *d = an_add_defect(a, "wrong_rate", XS_AN_MAJOR, clamp01(fabs(z) / 0.4));
            if (d) {
                d->factor = (float)pow(2.0, z > 0 ? z + 0.3 : z - 0.3);
                an_defect_add_time(d, 0, m->duration_s);
                snprintf(d->detail, sizeof d->detail, "%s: pitch %.0f Hz, centroid %.0f Hz",
                         z > 0 ? "too fast/high" : "too slow/low", f0, ce);
            }
            return;
        }
        /* Holes and splices add envelope peaks: tempo only on audio with
         * no other major defect. */
        if (other_major) return;
    }
    const double sp = 0.3, sf = 0.15, ss = 0.35, pmode[2] = {115.0, 210.0}, fmode[2] = {0.0, 0.2};
    const double ds = m->syllable_hz > 0 ? log2(m->syllable_hz / 5.0) : 0;
    /* Slow tempo is no evidence either way (and the syllable counter
     * merges nuclei on fast audio): tempo counts on the fast side only. */
    const double wp = 1.0 / (sp * sp), wf = formants ? 1.0 / (sf * sf) : 0, ws = ds > 0 ? 1.0 / (ss * ss) : 0;
    double best_c = 1e9, best_r = 0, c0 = 1e9;
    for (int g = 0; g < 2; g++) {
        double dp = log2(f0 / pmode[g]), df = m->formant_scale - fmode[g];
        double r = (wp * dp + wf * df + ws * ds) / (wp + wf + ws);
        double cg = wp * (dp - r) * (dp - r) + wf * (df - r) * (df - r) + ws * (ds - r) * (ds - r);
        double c0g = wp * dp * dp + wf * df * df + ws * ds * ds;
        if (cg < best_c) best_c = cg, best_r = r;
        if (c0g < c0) c0 = c0g;
    }
    m->rate_fit_octaves = best_r;
    m->rate_fit_gain = c0 - best_c;
    /* Without formants only the fast side: slow pitch + slow tempo is a
     * plausible low, unhurried voice. */
    bool off = formants ? fabs(best_r) > 0.35 : best_r > 0.35;
    if (!off || m->rate_fit_gain < 4.0) return;
    xs_an_defect *d = an_add_defect(a, "wrong_rate", XS_AN_MAJOR, clamp01((m->rate_fit_gain - 2) / 6));
    if (!d) return;
    d->factor = (float)pow(2.0, best_r);
    an_defect_add_time(d, 0, m->duration_s);
    if (formants)
        snprintf(d->detail, sizeof d->detail,
                 "too %s: pitch %.0f Hz, formants %+.2f octave, %.1f syllables/s fit a x%.2f rate change",
                 best_r > 0 ? "fast/high" : "slow/low", f0, m->formant_scale, m->syllable_hz, d->factor);
    else
        snprintf(d->detail, sizeof d->detail,
                 "too fast: pitch %.0f Hz and %.1f syllables/s both fit a x%.2f speed-up", f0,
                 m->syllable_hz, d->factor);
}

/* Spectral and excitation structure: noise, tones, garbling, wrong rate. */
static void det_spectral(an_ctx *c) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    m->pulse_kurtosis = am_pulse_kurtosis(c->x, c->n, a->frame_db, a->n_frames, XS_AN_HOP, c->speech_db);
    m->grid_jump_ratio = am_grid_jump_ratio(a, c->speech_db);
    m->flux_corr = am_flux_corr(a, c->speech_db);
    am_rate_cues(c);
    am_formants(c);
    double f = 0, pers = 0, persq = 0;
    m->tone_prominence_db = am_tone(c->x, c->n, &f, &pers, &persq, &m->tone_tracking);
    m->tone_hz = f;
    m->tone_persistence = pers;
    m->tone_persistence_quiet = persq;
    /* Tonal: a narrow peak over its neighbourhood in nearly every 170 ms
     * segment, pauses included (speech harmonics glide and stop). Strong
     * (20 dB) and steady (90%), or weaker (10 dB) but never absent (95%).
     * And its level must not follow the signal's: a monotone voice (or a
     * reverberant one, whose tail fills the pauses) keeps a harmonic
     * standing out everywhere, but that harmonic fades with the voice
     * (tracking 0.5-2.5 on the corpus and held-out voices); a hum or a tone
     * added to the signal stays put when the talker stops (tracking ~0). */
    bool tonal = ((m->tone_prominence_db > 20 && pers >= 0.9 && persq >= 0.8) ||
                  (m->tone_prominence_db > 10 && pers >= 0.95 && persq >= 0.95)) &&
                 m->tone_tracking < 0.3;
    if (tonal) {
        xs_an_defect *d = an_add_defect(a, "tonal", m->tone_prominence_db > 20 ? XS_AN_MAJOR : XS_AN_MINOR,
                                        clamp01((m->tone_prominence_db - 5) / 20));
        if (d) {
            d->freq_hz = (float)f;
            an_defect_add_time(d, 0, m->duration_s);
            snprintf(d->detail, sizeof d->detail, "steady tone %.0f dB over its neighbourhood in %.0f%% of the file",
                     m->tone_prominence_db, 100 * pers);
        }
    }
    /* Noise: broadband (spectrally flat) floor close to the speech level. */
    bool noisy = m->snr_db < 15 && m->flatness > 0.05;
    if (noisy) {
        xs_an_defect *d = an_add_defect(a, "noise", m->snr_db < 10 ? XS_AN_MAJOR : XS_AN_MINOR,
                                        clamp01((18 - m->snr_db) / 12));
        if (d) {
            d->snr_db = (float)m->snr_db;
            an_defect_add_time(d, 0, m->duration_s);
            snprintf(d->detail, sizeof d->detail, "speech only %.1f dB over a flat noise floor (flatness %.2f)",
                     m->snr_db, m->flatness);
        }
    }
    if (noisy || m->snr_db < 12 || c->n_active < 30) return; /* the rest needs a clean view */
    /* Garbled: voiced speech is a pulse train through resonances: it has a
     * pitch in most active frames, peaky excitation (kurtosis well over 3)
     * and most energy under 4 kHz. Random phases make it Gaussian (3);
     * scrambled bands lose the pitch and push energy up. */
    const char *why = NULL;
    double conf = 0;
    char buf[96];
    if (m->centroid_hz > 4000) {
        snprintf(buf, sizeof buf, "spectral centroid %.0f Hz (speech: under 2 kHz)", m->centroid_hz);
        why = buf;
        conf = clamp01((m->centroid_hz - 3000) / 3000);
    } else if (m->pulse_kurtosis > 0 && m->pulse_kurtosis < 3.2) {
        snprintf(buf, sizeof buf, "excitation Gaussian (kurtosis %.2f; speech pulses > 3.3)", m->pulse_kurtosis);
        why = buf;
        conf = clamp01((3.4 - m->pulse_kurtosis) / 0.4);
    } else if (m->voiced_fraction < 0.5) {
        snprintf(buf, sizeof buf, "pitch in only %.0f%% of active frames (speech: > 60%%)",
                 100 * m->voiced_fraction);
        why = buf;
        conf = clamp01((0.6 - m->voiced_fraction) / 0.4);
    }
    if (why && !xs_an_find(a, "garbled")) {
        xs_an_defect *d = an_add_defect(a, "garbled", XS_AN_MAJOR, conf);
        if (d) {
            an_defect_add_time(d, 0, m->duration_s);
            snprintf(d->detail, sizeof d->detail, "%s", why);
        }
    }
    if (m->pitch_median_hz <= 0 || why) return;
    det_wrong_rate(c);
}

/* Whole-file reversal, judged last: only on audio with no other defect
 * that distorts envelopes or pitch (noise, garbling, wrong rate, clipping,
 * block reversal...), since the cues need clean speech.
 *
 * Three cues, each negated by reversal:
 *   - CV lead (analyze_direction.c): bursts and frication come before the
 *     vowel they open (most syllables are consonant-vowel, in every
 *     language, tonal ones most of all): the high band leads the low band
 *     by 10-40 ms. Valid for synthetic and recorded voices alike;
 *     forward clips measure -0.07..+0.79 (median +0.33; -0.15 on two
 *     coda-rich held-out sentences), so near 0 it says little.
 *   - Envelope asymmetry: recorded speech rises fast and decays slowly
 *     (vocal tract damping, room); the high-passed signal likewise
 *     (bursts start abruptly). Dry synthetic voices invert it: used for
 *     recordings only.
 *   - Intonation: statements fall (declination, final fall); backwards
 *     they rise. Not used for recordings (real phrases often rise), and
 *     weak on synthetic ones too (tones, rising phrase ends): it only
 *     decides where the CV lead is weak. */
static void det_global_reversal(an_ctx *c) {
    xs_analysis *a = c->a;
    xs_an_metrics *m = &a->m;
    if (m->snr_db < 15) return;
    for (int i = 0; i < a->n_defects; i++)
        if (a->defects[i].severity >= XS_AN_MAJOR) return;
    /* Digital silence somewhere (1% of 2.5 ms sub-frames under -90 dBFS)
     * marks a synthesizer or an edited file; a microphone never gets there. */
    bool recorded = an_percentile(c->sub_db, c->n_sub, 1.0) > -90.0;
    const double cv = m->cv_lead;
    bool backwards;
    double conf;
    if (recorded) {
        /* Envelope or burst asymmetry backwards (forward recordings: > 0,
         * high band +1.2..+1.7), unless the consonants clearly come first:
         * a breathy or noisy synthetic voice passes for a recording and
         * keeps its inverted envelope (forward `en+f3` at 301 Hz: envelope
         * -1.04, CV lead +0.34). Or the CV lead alone, clearly backwards. */
        bool env_back = m->reversal_asym < -0.25, hf_back = m->reversal_asym_hf < -0.6;
        backwards = ((env_back || hf_back) && cv < 0.15) || cv < -0.25;
        conf = env_back ? 0.4 + (-m->reversal_asym - 0.25) * 2
             : hf_back  ? 0.4 + (-m->reversal_asym_hf - 0.6)
                        : 0.4 + (-cv - 0.25) * 2;
    } else {
        /* One sum of evidence, in units of 0.1 of CV lead and one unit of
         * trend: a strong CV lead outvotes the intonation of tones or of a
         * final rise; a weak one (phone band, many codas) leaves the
         * decision to intonation (the old rule, trend > 1.2, is about the
         * same when the CV lead is 0). */
        double ev = cv / 0.1 - m->pitch_trend;
        backwards = ev < -1.0;
        conf = 0.4 + (-ev - 1.0) / 4.0;
    }
    if (!backwards) return;
    xs_an_defect *d = an_add_defect(a, "time_reversed", XS_AN_MAJOR, clamp01(conf));
    if (!d) return;
    d->scope = "global";
    an_defect_add_time(d, 0, m->duration_s);
    if (recorded && cv >= -0.25)
        snprintf(d->detail, sizeof d->detail,
                 "sounds swell slowly and stop dead (envelope asymmetry %+.2f, high band %+.2f; "
                 "speech > 0; CV lead %+.2f)", m->reversal_asym, m->reversal_asym_hf, cv);
    else if (recorded)
        snprintf(d->detail, sizeof d->detail,
                 "vowels come before their consonants (CV lead %+.2f; speech > 0)", cv);
    else
        snprintf(d->detail, sizeof d->detail,
                 "consonant/vowel order and intonation read backwards (CV lead %+.2f, speech > 0; "
                 "pitch trend %+.2f, speech falls)", cv, m->pitch_trend);
}

xs_status an_detect_all(an_ctx *c) {
    if (det_silence_short(c)) return XS_OK;
    det_dc_clip(c);
    bool block_rev = det_block_reversal(c);
    bool dropouts = det_dropouts(c, block_rev);
    det_time_structure(c, block_rev, dropouts);
    det_spectral(c);
    det_global_reversal(c);
    return XS_OK;
}
