/*
 * analyze.h — speech quality score (0-100) and named defects with evidence,
 * for any speech recording (Moshi's output or not).
 *
 * Pipeline: xs_analyze() sanitizes the input (non-finite samples become 0 and
 * a `nonfinite` defect), resamples to XS_AN_RATE, computes per-frame features
 * (analyze_features.c), runs one detector per defect (analyze_defects.c) and
 * folds them into a score and verdict (analyze_score.c). Reports: text and
 * JSON (analyze_report.c), PNG picture (analyze_png.c).
 *
 * Defect names are stable (scripts depend on them): silence, clipping,
 * dc_offset, nonfinite, too_short, dropouts, frame_discontinuity,
 * time_reversed, wrong_rate, noise, tonal, garbled.
 */
#ifndef XS_DIAG_ANALYZE_H
#define XS_DIAG_ANALYZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define XS_AN_RATE 24000      /* analysis rate: 80 ms frame = 1920 samples */
#define XS_AN_GRID 1920       /* codec frame grid drawn and checked (80 ms) */
#define XS_AN_MAX_DEFECTS 16
#define XS_AN_MAX_TIMES 32    /* intervals kept per defect */

typedef enum xs_an_severity { XS_AN_MINOR = 0, XS_AN_MAJOR = 1, XS_AN_CRITICAL = 2 } xs_an_severity;

typedef enum xs_an_verdict {
    XS_AN_CLEAR = 0,
    XS_AN_DEGRADED,
    XS_AN_GARBLED,
    XS_AN_NOT_SPEECH
} xs_an_verdict;

typedef struct xs_an_defect {
    const char *name;         /* one of the stable names above (static string) */
    xs_an_severity severity;
    float confidence;         /* 0..1 */
    /* Evidence; fields that do not apply are < 0 (or scope == NULL). */
    int n_times;
    float times[XS_AN_MAX_TIMES][2]; /* [start, end] in seconds */
    float period_ms;          /* frame_discontinuity */
    const char *scope;        /* time_reversed: "global" | "block" */
    float block_ms;           /* time_reversed with scope "block" */
    float factor;             /* wrong_rate: apparent speed-up (>1 too fast/high) */
    float snr_db;             /* noise */
    float freq_hz;            /* tonal */
    char detail[160];         /* one human sentence: what was measured */
} xs_an_defect;

/* Basic measures, all on the analysis-rate signal. */
typedef struct xs_an_metrics {
    double duration_s, rms_dbfs, peak_dbfs, dc;
    double snr_db;              /* speech level over noise floor (frame-energy percentiles) */
    double speech_fraction;     /* frames judged active */
    double pitch_min_hz, pitch_median_hz, pitch_max_hz; /* 0 if no voiced frames */
    double voiced_fraction;     /* of active frames */
    double centroid_hz;         /* median spectral centroid of active frames */
    double flatness;            /* median spectral flatness (0 tonal .. 1 white) of active frames */
    double clip_fraction;       /* samples at the peak plateau */
    double reversal_asym;       /* onset/decay asymmetry: >0 forward speech, <0 backwards */
    double reversal_asym_hf;    /* the same on the high-passed signal (bursts, frication) */
    double reversal_asym_block; /* the same after undoing a per-80ms-block reversal */
    double click_periodicity;   /* best periodic click alignment (fraction of periods hit) */
    double pulse_kurtosis;      /* voiced excitation peakiness (~3 for random phase) */
    double grid_jump_ratio;     /* spectral change across 80 ms edges / inside blocks */
    double flux_corr;           /* median log-spectrum correlation of neighbour frames */
    double pitch_trend;         /* declination: < 0 falls like statements, > 0 rises */
    double cv_lead;             /* high band leads low band (consonant then vowel): > 0 forward */
    double edge_jump_ratio;     /* sample step at 80 ms edges / typical step (~1) */
    double edge_jump_ratio_unrev; /* the same after undoing a per-block reversal */
    double edge_jump_frac;      /* fraction of 80 ms edges with a big sample step */
    double splice_ratio;        /* spectral change across 80 ms edges / at other points (~1) */
    double syllable_hz;         /* syllable nuclei per second of speech */
    double fric_hz;             /* median centroid of fricative frames (unvoiced, energy above 2 kHz) */
    double voiced_cen_hz;       /* median centroid of voiced frames under 4 kHz (formant region) */
    double rate_fit_octaves;    /* joint pitch+tempo fit of a rate change (octaves, > 0 fast) */
    double rate_fit_gain;       /* chi-square gained by that fit over "no change" */
    double f1_hz, f2_hz, f3_hz; /* median first three formants (LPC) of loud voiced frames */
    double formant_scale;       /* formant spacing against an adult male's, octaves (0 unmeasured) */
    double formant_fit;         /* fraction of voiced frames resolved at the best ceiling (0..1) */
    double rolloff_hz;          /* frequency under which 99% of the speech energy lies */
    double tone_prominence_db, tone_hz, tone_persistence, tone_persistence_quiet;
    double tone_tracking;       /* tone level drop / signal level drop, loud to quiet (~1 voice, ~0 hum) */
    double n_nonfinite;
} xs_an_metrics;

/* Per-frame series kept for the picture (hop XS_AN_HOP samples). */
#define XS_AN_HOP 240   /* 10 ms */
#define XS_AN_NFFT 512
#define XS_AN_NBIN (XS_AN_NFFT / 2 + 1)

typedef struct xs_analysis {
    double score;              /* 0..100 */
    xs_an_verdict verdict;
    int n_defects;
    xs_an_defect defects[XS_AN_MAX_DEFECTS];
    xs_an_metrics m;
    /* The analysed signal (mono, XS_AN_RATE) and its features, owned. */
    float *pcm;
    int64_t n;
    int n_frames;              /* STFT frames, hop XS_AN_HOP */
    float *spec_db;            /* [n_frames][XS_AN_NBIN] power in dB */
    float *frame_db;           /* [n_frames] energy in dBFS */
    float *pitch_hz;           /* [n_frames] 0 = unvoiced */
    unsigned char *active;     /* [n_frames] speech activity */
} xs_analysis;

/* Analyse mono PCM at any rate (> 0). Non-finite samples are allowed and
 * reported. *out is allocated; free with xs_analysis_free. On error *out is
 * left unchanged. */
xs_status xs_analyze(const float *pcm, int64_t n, int rate, xs_analysis **out);
void xs_analysis_free(xs_analysis *a);

const char *xs_an_verdict_str(xs_an_verdict v);
const char *xs_an_severity_str(xs_an_severity s);
/* The defect of that name, or NULL. */
const xs_an_defect *xs_an_find(const xs_analysis *a, const char *name);

/* Reports. file is the name printed. */
void xs_an_print_text(const xs_analysis *a, const char *file, void *stdio_file);
/* JSON object as a malloc'd string (cJSON inside); NULL on out of memory. */
char *xs_an_json(const xs_analysis *a, const char *file);
xs_status xs_an_write_png(const xs_analysis *a, const char *path, const char *title);

/* ---- Intelligibility (analyze_asr.c) -------------------------------------
 * Uses pocketsphinx_continuous + its en-us model (Debian: pocketsphinx,
 * pocketsphinx-en-us) as an external program when installed. */
bool xs_an_asr_available(void);
/* Recognized words of the analysed audio into hyp (NUL-terminated). */
xs_status xs_an_recognize(const xs_analysis *a, char *hyp, size_t hyp_size);
/* Word error rate (edit distance over words / reference words), case and
 * punctuation ignored. */
double xs_an_wer(const char *ref, const char *hyp);
/* Lower a->score by up to 20% as WER goes from 0 to 1 (verdict kept). */
void xs_an_fold_intelligibility(xs_analysis *a, double wer);

/* ---- Calibration corruptions (analyze_corrupt.c) -------------------------
 * Each returns a malloc'd signal (*out, *out_n) at the same rate, made from
 * clean speech in a deterministic way (seed). Names: reverse, block_reverse,
 * dropouts, clicks, clip, rate_up (x3/2), rate_down (x2/3), noise0db,
 * phase_random, shuffle, band_scramble; controls: silence, white, hum. */
xs_status xs_an_corrupt(const char *kind, const float *in, int64_t n, int rate, uint64_t seed,
                        float **out, int64_t *out_n);
extern const char *const xs_an_corruptions[]; /* NULL-terminated list of kinds */

#endif
