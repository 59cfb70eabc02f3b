/*
 * cpu_kernels_generic.c — the plain-C twins of the SIMD dot kernels. Always
 * built, used on CPUs without AVX2 and by tests as a third opinion.
 * Accumulation: f32, 8 interleaved partial sums per row (the same shape as
 * the SIMD versions, which keeps the compiler free to vectorize and the
 * error similar); q8_0 / q4_0 sum each block in f32 and scale it once, like
 * llama2.c's runq.c.
 */
#include <math.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/quant.h"

#define LANES 8

static float hsum8(const float *a) {
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* One template for the "convert one element" dtypes. */
#define GENERIC_DOT(NAME, TYPE, CONV)                                                  \
    static void NAME(const void *wv, const float *x, int64_t ldx, int nx, int64_t K,   \
                     float *y) {                                                       \
        const TYPE *w = wv;                                                            \
        for (int m = 0; m < nx; m++) {                                                 \
            const float *xm = x + (int64_t)m * ldx;                                    \
            float acc[LANES] = {0};                                                    \
            int64_t k = 0;                                                             \
            for (; k + LANES <= K; k += LANES)                                         \
                for (int l = 0; l < LANES; l++) acc[l] += CONV(w[k + l]) * xm[k + l];  \
            float s = hsum8(acc);                                                      \
            for (; k < K; k++) s += CONV(w[k]) * xm[k];                                \
            y[m] = s;                                                                  \
        }                                                                              \
    }

#define CONV_F32(v) (v)
GENERIC_DOT(dot_f32_generic, float, CONV_F32)
GENERIC_DOT(dot_bf16_generic, uint16_t, xs_bf16_to_f32)
GENERIC_DOT(dot_f16_generic, uint16_t, xs_f16_to_f32)

static void dot_q8_0_generic(const void *wv, const float *x, int64_t ldx, int nx, int64_t K,
                             float *y) {
    const xs_block_q8_0 *w = wv;
    int64_t nb = K / XS_QK;
    for (int m = 0; m < nx; m++) {
        const float *xm = x + (int64_t)m * ldx;
        float s = 0;
        for (int64_t b = 0; b < nb; b++) {
            float acc[LANES] = {0};
            for (int j = 0; j < XS_QK; j += LANES)
                for (int l = 0; l < LANES; l++)
                    acc[l] += (float)w[b].qs[j + l] * xm[b * XS_QK + j + l];
            s += xs_f16_to_f32(w[b].d) * hsum8(acc);
        }
        y[m] = s;
    }
}

static void dot_q4_0_generic(const void *wv, const float *x, int64_t ldx, int nx, int64_t K,
                             float *y) {
    const xs_block_q4_0 *w = wv;
    int64_t nb = K / XS_QK;
    for (int m = 0; m < nx; m++) {
        const float *xm = x + (int64_t)m * ldx;
        float s = 0;
        for (int64_t b = 0; b < nb; b++) {
            const float *xb = xm + b * XS_QK;
            float acc[LANES] = {0};
            for (int j = 0; j < XS_QK / 2; j += LANES)
                for (int l = 0; l < LANES; l++) {
                    uint8_t q = w[b].qs[j + l];
                    acc[l] += (float)((int)(q & 15) - 8) * xb[j + l] +
                              (float)((int)(q >> 4) - 8) * xb[j + l + 16];
                }
            s += xs_f16_to_f32(w[b].d) * hsum8(acc);
        }
        y[m] = s;
    }
}

static void to_f32_f32(const void *w, float *y, int64_t n) { memcpy(y, w, (size_t)n * 4); }
static void to_f32_bf16(const void *w, float *y, int64_t n) {
    const uint16_t *h = w;
    for (int64_t i = 0; i < n; i++) y[i] = xs_bf16_to_f32(h[i]);
}
static void to_f32_f16(const void *w, float *y, int64_t n) {
    const uint16_t *h = w;
    for (int64_t i = 0; i < n; i++) y[i] = xs_f16_to_f32(h[i]);
}
static void to_f32_q8_0(const void *w, float *y, int64_t n) {
    xs_dequantize_row_q8_0(w, y, n);
}
static void to_f32_q4_0(const void *w, float *y, int64_t n) {
    xs_dequantize_row_q4_0(w, y, n);
}

static void axpy_generic(float *y, const float *x, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void elu_generic(float *y, const float *x, float alpha, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : alpha * expm1f(x[i]);
}

const cpu_kernels cpu_kernels_generic = {
    .axpy = axpy_generic,
    .elu = elu_generic,
    .dot = {[XS_F32] = dot_f32_generic,
            [XS_BF16] = dot_bf16_generic,
            [XS_F16] = dot_f16_generic,
            [XS_Q8_0] = dot_q8_0_generic,
            [XS_Q4_0] = dot_q4_0_generic},
    .to_f32 = {[XS_F32] = to_f32_f32,
               [XS_BF16] = to_f32_bf16,
               [XS_F16] = to_f32_f16,
               [XS_Q8_0] = to_f32_q8_0,
               [XS_Q4_0] = to_f32_q4_0},
};
