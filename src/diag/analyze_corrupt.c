/*
 * analyze_corrupt.c — the calibration corruptions: deterministic ways to
 * damage clean speech, one per defect the analyzer names (see analyze.h).
 * They mirror what goes wrong in a speech codec pipeline: state lost between
 * 80 ms frames (clicks, block reversal, shuffled frames), lost frames
 * (dropouts), wrong sample rate, clipping, noise, and spectral garbage.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "diag/analyze_internal.h"

const char *const xs_an_corruptions[] = {
    "reverse", "block_reverse", "dropouts", "clicks", "clip", "rate_up", "rate_down",
    "noise0db", "phase_random", "shuffle", "band_scramble", "silence", "white", "hum", NULL};

typedef struct cr_rng { uint64_t s; } cr_rng;

static uint64_t cr_next(cr_rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double cr_uniform(cr_rng *r) { return (double)(cr_next(r) >> 11) * 0x1.0p-53; }
static double cr_gauss(cr_rng *r) {
    double u = cr_uniform(r), v = cr_uniform(r);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}
static void cr_permute(cr_rng *r, int *p, int n) {
    for (int i = 0; i < n; i++) p[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(cr_next(r) % (uint64_t)(i + 1));
        int t = p[i]; p[i] = p[j]; p[j] = t;
    }
}

/* Mean power of the loud part of the signal (20 ms frames within 30 dB of
 * the loudest): "speech power" for an SNR that ignores pauses. */
static double cr_speech_power(const float *x, int64_t n, int rate) {
    int fl = rate / 50;
    int nf = (int)(n / fl);
    if (nf < 1) return 0;
    double mx = 0, *p = malloc((size_t)nf * sizeof *p);
    if (!p) return 0;
    for (int f = 0; f < nf; f++) {
        double e = 0;
        for (int i = 0; i < fl; i++) e += (double)x[(int64_t)f * fl + i] * x[(int64_t)f * fl + i];
        p[f] = e / fl;
        if (p[f] > mx) mx = p[f];
    }
    double s = 0;
    int k = 0;
    for (int f = 0; f < nf; f++)
        if (p[f] > mx * 1e-3) { s += p[f]; k++; }
    free(p);
    return k ? s / k : 0;
}

typedef void (*cr_frame_fn)(float *re, float *im, int nfft, int frame, void *user);

/* STFT (Hann 512, hop 128) -> fn on each frame's spectrum -> overlap-add
 * with the same window, normalized by the summed squared window. */
static xs_status cr_stft_process(const float *in, int64_t n, float *out, cr_frame_fn fn,
                                 void *user) {
    enum { NF = 512, HOP = 128 };
    float win[NF], re[NF], im[NF];
    for (int i = 0; i < NF; i++) win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / NF));
    double *acc = calloc((size_t)(n + NF), sizeof *acc), *wacc = calloc((size_t)(n + NF), sizeof *wacc);
    if (!acc || !wacc) {
        free(acc);
        free(wacc);
        return xs_error(XS_ERR_NOMEM, "corrupt: out of memory");
    }
    int frame = 0;
    for (int64_t s = -NF + HOP; s < n; s += HOP, frame++) {
        for (int i = 0; i < NF; i++) {
            int64_t j = s + i;
            re[i] = (j >= 0 && j < n ? in[j] : 0.0f) * win[i];
            im[i] = 0.0f;
        }
        an_fft(re, im, NF);
        fn(re, im, NF, frame, user);
        /* Hermitian symmetry, then inverse FFT as conj(FFT(conj(X))) / N. */
        im[0] = 0.0f;
        im[NF / 2] = 0.0f;
        for (int k = 1; k < NF / 2; k++) {
            re[NF - k] = re[k];
            im[NF - k] = -im[k];
        }
        for (int k = 0; k < NF; k++) im[k] = -im[k];
        an_fft(re, im, NF);
        for (int i = 0; i < NF; i++) {
            int64_t j = s + i;
            if (j < 0 || j >= n) continue;
            acc[j + 0] += (double)re[i] / NF * win[i];
            wacc[j] += (double)win[i] * win[i];
        }
    }
    for (int64_t j = 0; j < n; j++) out[j] = wacc[j] > 1e-6 ? (float)(acc[j] / wacc[j]) : 0.0f;
    free(acc);
    free(wacc);
    return XS_OK;
}

static void cr_phase_random(float *re, float *im, int nfft, int frame, void *user) {
    cr_rng *r = user;
    for (int k = 1; k < nfft / 2; k++) {
        double mag = hypot(re[k], im[k]), ph = 2.0 * M_PI * cr_uniform(r);
        re[k] = (float)(mag * cos(ph));
        im[k] = (float)(mag * sin(ph));
    }
}

typedef struct cr_band { cr_rng rng; int perm[8]; int rate; int last_block; } cr_band;

/* Eight equal bands of 0..rate/2 trade places; a new permutation every 80 ms. */
static void cr_band_scramble(float *re, float *im, int nfft, int frame, void *user) {
    cr_band *b = user;
    int block = (int)((int64_t)frame * 128 / (b->rate * 8 / 100));
    if (block != b->last_block) {
        cr_permute(&b->rng, b->perm, 8);
        b->last_block = block;
    }
    int bw = nfft / 2 / 8;
    float r2[512], i2[512];
    memcpy(r2, re, sizeof(float) * (size_t)nfft);
    memcpy(i2, im, sizeof(float) * (size_t)nfft);
    for (int band = 0; band < 8; band++)
        for (int k = 0; k < bw; k++) {
            re[band * bw + k] = r2[b->perm[band] * bw + k];
            im[band * bw + k] = i2[b->perm[band] * bw + k];
        }
}

xs_status xs_an_corrupt(const char *kind, const float *in, int64_t n, int rate, uint64_t seed,
                        float **out, int64_t *out_n) {
    if (!kind || !in || n <= 0 || rate <= 0 || !out || !out_n)
        return xs_error(XS_ERR_ARG, "corrupt: bad arguments");
    cr_rng rng = {seed * 0x2545F4914F6CDD1Dull + 12345};
    const int64_t B = (int64_t)rate * 80 / 1000; /* 80 ms frame */
    const int64_t nb = (n + B - 1) / B;
    if (!strcmp(kind, "rate_up")) /* 3/2 faster: keep 2 samples of 3, play at rate */
        return xs_audio_resample(in, n, 3, 2, out, out_n);
    if (!strcmp(kind, "rate_down"))
        return xs_audio_resample(in, n, 2, 3, out, out_n);
    float *y = malloc((size_t)n * sizeof *y);
    if (!y) return xs_error(XS_ERR_NOMEM, "corrupt: out of memory");
    memcpy(y, in, (size_t)n * sizeof *y);
    double pw = cr_speech_power(in, n, rate), rms = sqrt(pw);
    float pk = 0;
    for (int64_t i = 0; i < n; i++) pk = fabsf(in[i]) > pk ? fabsf(in[i]) : pk;
    xs_status rc = XS_OK;
    if (!strcmp(kind, "reverse")) {
        for (int64_t i = 0; i < n; i++) y[i] = in[n - 1 - i];
    } else if (!strcmp(kind, "block_reverse")) {
        for (int64_t b = 0; b < nb; b++) {
            int64_t s = b * B, e = s + B < n ? s + B : n;
            for (int64_t i = s; i < e; i++) y[i] = in[s + e - 1 - i];
        }
    } else if (!strcmp(kind, "dropouts")) { /* lose 30% of frames: digital zeros */
        for (int64_t b = 0; b < nb; b++)
            if (cr_uniform(&rng) < 0.30)
                for (int64_t i = b * B; i < (b + 1) * B && i < n; i++) y[i] = 0.0f;
    } else if (!strcmp(kind, "clicks")) { /* a step and a click at every frame edge */
        for (int64_t b = 0; b < nb; b++) {
            float off = (float)((cr_uniform(&rng) * 2 - 1) * 0.5 * rms);
            for (int64_t i = b * B; i < (b + 1) * B && i < n; i++) y[i] += off;
            if (b > 0) y[b * B] += (float)((cr_uniform(&rng) < 0.5 ? -1 : 1) * 1.5 * rms);
        }
    } else if (!strcmp(kind, "clip")) { /* drive 4x into a hard limit at the old peak */
        for (int64_t i = 0; i < n; i++) {
            float v = in[i] * 4.0f;
            y[i] = v > pk ? pk : v < -pk ? -pk : v;
        }
    } else if (!strcmp(kind, "noise0db")) {
        for (int64_t i = 0; i < n; i++) y[i] = in[i] + (float)(rms * cr_gauss(&rng));
    } else if (!strcmp(kind, "phase_random")) {
        rc = cr_stft_process(in, n, y, cr_phase_random, &rng);
    } else if (!strcmp(kind, "band_scramble")) {
        cr_band b = {.rng = rng, .rate = rate, .last_block = -1};
        rc = cr_stft_process(in, n, y, cr_band_scramble, &b);
    } else if (!strcmp(kind, "shuffle")) {
        int *p = malloc((size_t)nb * sizeof *p);
        if (!p) {
            free(y);
            return xs_error(XS_ERR_NOMEM, "corrupt: out of memory");
        }
        cr_permute(&rng, p, (int)nb);
        int64_t o = 0;
        for (int64_t b = 0; b < nb; b++)
            for (int64_t i = (int64_t)p[b] * B; i < ((int64_t)p[b] + 1) * B && i < n && o < n; i++)
                y[o++] = in[i];
        for (; o < n; o++) y[o] = 0.0f;
        free(p);
    } else if (!strcmp(kind, "silence")) { /* -100 dBFS noise: "digital" silence */
        for (int64_t i = 0; i < n; i++) y[i] = (float)(1e-5 * cr_gauss(&rng));
    } else if (!strcmp(kind, "white")) {
        for (int64_t i = 0; i < n; i++) y[i] = (float)(0.1 * cr_gauss(&rng));
    } else if (!strcmp(kind, "hum")) { /* 50 Hz mains hum with harmonics */
        for (int64_t i = 0; i < n; i++) {
            double t = (double)i / rate;
            y[i] = (float)(0.2 * sin(2 * M_PI * 50 * t) + 0.1 * sin(2 * M_PI * 100 * t + 0.3) +
                           0.05 * sin(2 * M_PI * 150 * t + 1.1));
        }
    } else {
        free(y);
        return xs_error(XS_ERR_ARG, "corrupt: unknown kind '%s'", kind);
    }
    if (rc != XS_OK) {
        free(y);
        return rc;
    }
    *out = y;
    *out_n = n;
    return XS_OK;
}
