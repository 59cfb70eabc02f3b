/*
 * cpu_kernels_avx2.c — AVX2 + FMA + F16C dot kernels (x86-64 CPUs of the
 * last decade without AVX-512). Same numerics as the AVX-512 file (weights
 * converted exactly / d*q rounded once, f32 FMA), with 2 x 8 partial sums
 * per activation row. Tails (K not a multiple of 16) run in scalar code.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/cpu.h"
#include "core/quant.h"

/* Software prefetch distance of the weight stream (see cpu_kernels_avx512.c). */
#define CPU_PREFETCH_BYTES 4096
#define T256 __attribute__((target("avx2,fma,f16c")))
#define AI __attribute__((always_inline)) inline

T256 static AI __m256 ld8_f32(const float *w) { return _mm256_loadu_ps(w); }
T256 static AI __m256 ld8_bf16(const uint16_t *w) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)w));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}
T256 static AI __m256 ld8_f16(const uint16_t *w) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)w));
}
T256 static AI float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline float cv_f32(float v) { return v; }
static inline float cv_bf16(uint16_t v) { return xs_bf16_to_f32(v); }
T256 static inline float cv_f16(uint16_t v) { return _cvtsh_ss(v); }

#define DOT256(NAME, TYPE, LOAD, CONV)                                                   \
    T256 static AI void NAME##_nx(const TYPE *w, const float *x, int64_t ldx, int64_t K, \
                                  float *y, const int NX) {                              \
        __m256 a0[CPU_MAX_NX], a1[CPU_MAX_NX];                                           \
        for (int m = 0; m < NX; m++) a0[m] = a1[m] = _mm256_setzero_ps();                \
        int64_t k = 0;                                                                   \
        for (; k + 16 <= K; k += 16) {                                                   \
            _mm_prefetch((const char *)(w + k) + CPU_PREFETCH_BYTES, _MM_HINT_T0);         \
            __m256 w0 = LOAD(w + k), w1 = LOAD(w + k + 8);                               \
            for (int m = 0; m < NX; m++) {                                               \
                a0[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + m * ldx + k), a0[m]);    \
                a1[m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + m * ldx + k + 8), a1[m]); \
            }                                                                            \
        }                                                                                \
        for (int m = 0; m < NX; m++) {                                                   \
            float s = hsum256(_mm256_add_ps(a0[m], a1[m]));                              \
            for (int64_t j = k; j < K; j++) s += CONV(w[j]) * x[m * ldx + j];            \
            y[m] = s;                                                                    \
        }                                                                                \
    }                                                                                    \
    T256 static void NAME(const void *w, const float *x, int64_t ldx, int nx, int64_t K,  \
                          float *y) {                                                    \
        switch (nx) {                                                                    \
        case 1: NAME##_nx(w, x, ldx, K, y, 1); break;                                    \
        case 2: NAME##_nx(w, x, ldx, K, y, 2); break;                                    \
        case 3: NAME##_nx(w, x, ldx, K, y, 3); break;                                    \
        default: NAME##_nx(w, x, ldx, K, y, 4); break;                                   \
        }                                                                                \
    }

DOT256(dot_f32_avx2, float, ld8_f32, cv_f32)
DOT256(dot_bf16_avx2, uint16_t, ld8_bf16, cv_bf16)
DOT256(dot_f16_avx2, uint16_t, ld8_f16, cv_f16)

/* Quantized: 4 vectors of 8 weights per block, d*q rounded once. */
#define DOTQ256(NAME, BLOCK, UNPACK)                                                     \
    T256 static AI void NAME##_nx(const BLOCK *w, const float *x, int64_t ldx, int64_t K, \
                                  float *y, const int NX) {                              \
        __m256 a0[CPU_MAX_NX], a1[CPU_MAX_NX];                                           \
        for (int m = 0; m < NX; m++) a0[m] = a1[m] = _mm256_setzero_ps();                \
        int64_t nb = K / XS_QK;                                                          \
        for (int64_t b = 0; b < nb; b++) {                                               \
            _mm_prefetch((const char *)(w + b) + CPU_PREFETCH_BYTES, _MM_HINT_T0);         \
            __m256 d = _mm256_set1_ps(_cvtsh_ss(w[b].d));                                \
            __m256i q[4];                                                                \
            UNPACK(w[b].qs, q);                                                          \
            const float *xb = x + b * XS_QK;                                             \
            for (int j = 0; j < 4; j += 2) {                                             \
                __m256 w0 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(q[j]));                  \
                __m256 w1 = _mm256_mul_ps(d, _mm256_cvtepi32_ps(q[j + 1]));              \
                for (int m = 0; m < NX; m++) {                                           \
                    a0[m] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xb + m * ldx + 8 * j), a0[m]); \
                    a1[m] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xb + m * ldx + 8 * j + 8), \
                                            a1[m]);                                      \
                }                                                                        \
            }                                                                            \
        }                                                                                \
        for (int m = 0; m < NX; m++) y[m] = hsum256(_mm256_add_ps(a0[m], a1[m]));        \
    }                                                                                    \
    T256 static void NAME(const void *w, const float *x, int64_t ldx, int nx, int64_t K,  \
                          float *y) {                                                    \
        switch (nx) {                                                                    \
        case 1: NAME##_nx(w, x, ldx, K, y, 1); break;                                    \
        case 2: NAME##_nx(w, x, ldx, K, y, 2); break;                                    \
        case 3: NAME##_nx(w, x, ldx, K, y, 3); break;                                    \
        default: NAME##_nx(w, x, ldx, K, y, 4); break;                                   \
        }                                                                                \
    }

#define UNPACK8_Q8(qs, q)                                                           \
    do {                                                                            \
        for (int u_ = 0; u_ < 4; u_++)                                              \
            q[u_] = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)((qs) + 8 * u_))); \
    } while (0)
#define UNPACK8_Q4(qs, q)                                                               \
    do {                                                                                \
        __m128i raw = _mm_loadu_si128((const __m128i *)(qs));                           \
        __m128i lo = _mm_and_si128(raw, _mm_set1_epi8(15));                             \
        __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(15));          \
        __m256i e8 = _mm256_set1_epi32(8);                                              \
        q[0] = _mm256_sub_epi32(_mm256_cvtepu8_epi32(lo), e8);                          \
        q[1] = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), e8);       \
        q[2] = _mm256_sub_epi32(_mm256_cvtepu8_epi32(hi), e8);                          \
        q[3] = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), e8);       \
    } while (0)

DOTQ256(dot_q8_0_avx2, xs_block_q8_0, UNPACK8_Q8)
DOTQ256(dot_q4_0_avx2, xs_block_q4_0, UNPACK8_Q4)

T256 static void axpy_avx2(float *y, const float *x, float a, int64_t n) {
    __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(a, x[i], y[i]);
}

/* ELU, 8 lanes: the same series / range-reduced exp as the AVX-512 twin
 * (see cpu_kernels_avx512.c). */
T256 static AI __m256 elu8(__m256 x, __m256 alpha) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 s = _mm256_set1_ps(1.0f / 362880.0f);
    s = _mm256_fmadd_ps(s, x, _mm256_set1_ps(1.0f / 40320.0f));
    s = _mm256_fmadd_ps(s, x, _mm256_set1_ps(1.0f / 5040.0f));
    s = _mm256_fmadd_ps(s, x, _mm256_set1_ps(1.0f / 720.0f));
    s = _mm256_fmadd_ps(s, x, _mm256_set1_ps(1.0f / 120.0f));
    s = _mm256_fmadd_ps(s, x, _mm256_set1_ps(1.0f / 24.0f));
    s = _mm256_fmadd_ps(s, x, _mm256_set1_ps(1.0f / 6.0f));
    s = _mm256_fmadd_ps(s, x, _mm256_set1_ps(0.5f));
    s = _mm256_fmadd_ps(s, x, one);
    s = _mm256_mul_ps(s, x);
    __m256 xc = _mm256_max_ps(x, _mm256_set1_ps(-30.0f));
    __m256 nf = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(0.693145751953125f), xc);
    r = _mm256_fnmadd_ps(nf, _mm256_set1_ps(1.428606765330187e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, one);
    p = _mm256_fmadd_ps(p, r, one);
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nf), _mm256_set1_epi32(127)), 23);
    __m256 big = _mm256_sub_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), one);
    __m256 neg = _mm256_blendv_ps(big, s, _mm256_cmp_ps(x, _mm256_set1_ps(-0.5f), _CMP_GT_OQ));
    __m256 y = _mm256_blendv_ps(_mm256_mul_ps(alpha, neg), x,
                                _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q)); /* NaN stays */
}

T256 static void elu_avx2(float *y, const float *x, float alpha, int64_t n) {
    __m256 a = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, elu8(_mm256_loadu_ps(x + i), a));
    if (i < n) { /* tail through a buffer, so no load reads past the end of x */
        float buf[8] = {0};
        for (int64_t j = i; j < n; j++) buf[j - i] = x[j];
        _mm256_storeu_ps(buf, elu8(_mm256_loadu_ps(buf), a));
        for (int64_t j = i; j < n; j++) y[j] = buf[j - i];
    }
}

const cpu_kernels cpu_kernels_avx2 = {
    .axpy = axpy_avx2,
    .elu = elu_avx2,
    .dot = {[XS_F32] = dot_f32_avx2,
            [XS_BF16] = dot_bf16_avx2,
            [XS_F16] = dot_f16_avx2,
            [XS_Q8_0] = dot_q8_0_avx2,
            [XS_Q4_0] = dot_q4_0_avx2},
    /* conversions: generic ones (filled at lookup) */
};
#endif
