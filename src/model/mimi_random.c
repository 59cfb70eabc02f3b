/*
 * mimi_random.c — a tensor source of random Mimi weights, for benchmarks and
 * tests at the real sizes without the 385 MB checkpoint. Values come from a
 * hash of (seed, tensor name, index), so any subset of tensors is
 * reproducible on its own, and are scaled like a trained model's: conv and
 * linear weights uniform with variance 1/fan-in (outputs stay O(1)), norms 1,
 * layer scales ~0.1, codebook usage 1.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "model/mimi.h"

static int64_t numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

xs_status mimi_random_source(void *user, const char *name, int ndim, const int64_t *shape,
                             float *dst) {
    uint64_t seed = user ? *(const uint64_t *)user : 1;
    uint64_t h = seed * 0x9E3779B97F4A7C15ull;
    for (const char *p = name; *p; p++) h = mix64(h ^ (unsigned char)*p);
    int64_t n = numel(ndim, shape);
    if (!dst) return XS_OK;
    /* Uniform(-a, a) has variance a^2/3: a = sqrt(3 / fan_in) keeps a layer's
     * output at the scale of its input. */
    float a = 0.01f, base = 0.0f;
    if (ends_with(name, "cluster_usage")) {
        a = 0.0f;
        base = 1.0f;
    } else if (ends_with(name, "embedding_sum")) {
        a = 1.0f;
    } else if (strstr(name, "norm") && ends_with(name, ".weight")) {
        a = 0.0f;
        base = 1.0f;
    } else if (strstr(name, "norm") && ends_with(name, ".bias")) {
        a = 0.0f;
    } else if (strstr(name, "layer_scale")) {
        a = 0.02f;
        base = 0.08f;
    } else if (ends_with(name, ".bias")) {
        a = 0.01f;
    } else if (strstr(name, "upsample")) {
        a = sqrtf(1.5f); /* depthwise: each output sums k / stride = 2 taps */
    } else if (strstr(name, "convtr") && ndim == 3) {
        /* [cin, cout, k]: each output sums cin * k / stride = 2 cin taps */
        a = sqrtf(3.0f / (float)(2 * shape[0]));
    } else if (ndim == 3) {
        a = sqrtf(3.0f / (float)(shape[1] * shape[2]));
    } else if (ndim == 2) {
        a = sqrtf(3.0f / (float)shape[1]);
    }
    for (int64_t i = 0; i < n; i++) {
        double u = (double)(mix64(h + (uint64_t)i * 0x9E3779B97F4A7C15ull) >> 11) * 0x1.0p-53;
        dst[i] = base + (float)((2.0 * u - 1.0) * a);
    }
    return XS_OK;
}

