/*
 * analyze_fft.c — a small iterative radix-2 FFT and percentile helpers for
 * the analyzer. Sizes are tiny (512..4096), so clarity wins over speed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diag/analyze_internal.h"

void an_fft(float *re, float *im, int n) {
    /* Bit-reversal permutation. */
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j |= bit;
        if (i < j) {
            float t = re[i]; re[i] = re[j]; re[j] = t;
            t = im[i]; im[i] = im[j]; im[j] = t;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        double ang = -2.0 * M_PI / len;
        double wr = cos(ang), wi = sin(ang);
        for (int i = 0; i < n; i += len) {
            double cr = 1.0, ci = 0.0;
            for (int k = 0; k < len / 2; k++) {
                int a = i + k, b = i + k + len / 2;
                double tr = re[b] * cr - im[b] * ci, ti = re[b] * ci + im[b] * cr;
                re[b] = (float)(re[a] - tr);
                im[b] = (float)(im[a] - ti);
                re[a] = (float)(re[a] + tr);
                im[a] = (float)(im[a] + ti);
                double nr = cr * wr - ci * wi;
                ci = cr * wi + ci * wr;
                cr = nr;
            }
        }
    }
}

static int an_cmp_float(const void *pa, const void *pb) {
    float a = *(const float *)pa, b = *(const float *)pb;
    return (a > b) - (a < b);
}

double an_percentile(const float *v, int n, double p) {
    if (n <= 0) return NAN;
    float *t = malloc((size_t)n * sizeof *t);
    if (!t) return NAN;
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, an_cmp_float);
    double pos = p / 100.0 * (n - 1);
    int i = (int)floor(pos);
    if (i >= n - 1) i = n - 2 < 0 ? 0 : n - 2;
    double f = n == 1 ? 0.0 : pos - i;
    double r = n == 1 ? t[0] : t[i] * (1.0 - f) + t[i + 1] * f;
    free(t);
    return r;
}

double an_median(const float *v, int n) { return an_percentile(v, n, 50.0); }
