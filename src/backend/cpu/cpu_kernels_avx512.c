/*
 * cpu_kernels_avx512.c — AVX-512 (F + BW + VL, with FMA and F16C) dot
 * kernels. Compiled with per-function target attributes so the rest of the
 * build stays baseline x86-64; cpu_isa_detect() decides at run time whether
 * they may be called. Plain twins: cpu_kernels_generic.c.
 *
 * Numerics: weights are converted to f32 exactly (bf16/f16 are exact in f32;
 * q8_0/q4_0 values are d * q rounded once to f32, the same value ref's
 * dequantizer produces), then multiplied with f32 activations and summed in
 * f32 with 4 x 16 partial sums per activation row. No activation
 * quantization: the LM is memory-bound, so integer dot products would buy
 * little here and cost accuracy.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/quant.h"

/* Software prefetch distance for the weight stream: a GEMV's only memory
 * traffic is one sequential stream per thread, and the hardware prefetcher
 * alone keeps too few lines in flight to reach DRAM bandwidth. Measured on
 * the 2-core Zen 5 VM, one thread, q8_0 rows from DRAM: K = 11264 went from
 * 9.8 GB/s (no prefetch) / 14 GB/s (1 KB ahead) to 22.5 GB/s (4 KB ahead);
 * K = 4096 from 27.7 to 31.8 GB/s. Prefetching
 * past the end of a row touches the next row (or at worst one line past
 * the matrix, which a prefetch never faults on). */
#define CPU_PREFETCH_BYTES 4096
#define T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define AI __attribute__((always_inline)) inline

/* Load 16 / 32 weights as f32. `n` < full width uses a masked load (tail). */
T512 static AI __m512 ld_f32(const float *w, int n) {
    return n >= 16 ? _mm512_loadu_ps(w) : _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), w);
}
T512 static AI __m512 ld_bf16(const uint16_t *w, int n) {
    __m256i h = n >= 16 ? _mm256_loadu_si256((const __m256i *)w)
                        : _mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1), w);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}
T512 static AI __m512 ld_f16(const uint16_t *w, int n) {
    __m256i h = n >= 16 ? _mm256_loadu_si256((const __m256i *)w)
                        : _mm256_maskz_loadu_epi16((__mmask16)((1u << n) - 1), w);
    return _mm512_cvtph_ps(h);
}

/* The elementwise-converted dtypes share one loop; LOAD(w + k, n) gives 16
 * f32 weights. Four independent FMA chains per activation row: with two,
 * the 4-cycle FMA latency (not memory) capped a core at ~32 B/cycle.
 * The chain layout is the same for every nx, so a row's result does not
 * depend on how rows are tiled. Activation tails are masked. */
#define DOT512(NAME, TYPE, LOAD)                                                         \
    T512 static AI void NAME##_nx(const TYPE *w, const float *x, int64_t ldx, int64_t K, \
                                  float *y, const int NX) {                              \
        __m512 a0[CPU_MAX_NX], a1[CPU_MAX_NX], a2[CPU_MAX_NX], a3[CPU_MAX_NX];           \
        for (int m = 0; m < NX; m++) a0[m] = a1[m] = a2[m] = a3[m] = _mm512_setzero_ps(); \
        int64_t k = 0;                                                                   \
        for (; k + 64 <= K; k += 64) {                                                   \
            for (int o_ = 0; o_ < (int)sizeof(TYPE) * 64; o_ += 64) /* every line */    \
                _mm_prefetch((const char *)(w + k) + CPU_PREFETCH_BYTES + o_, _MM_HINT_T0); \
            __m512 w0 = LOAD(w + k, 16), w1 = LOAD(w + k + 16, 16);                      \
            __m512 w2 = LOAD(w + k + 32, 16), w3 = LOAD(w + k + 48, 16);                 \
            for (int m = 0; m < NX; m++) {                                               \
                const float *xm = x + m * ldx + k;                                       \
                a0[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xm), a0[m]);                 \
                a1[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xm + 16), a1[m]);            \
                a2[m] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xm + 32), a2[m]);            \
                a3[m] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xm + 48), a3[m]);            \
            }                                                                            \
        }                                                                                \
        for (; k < K; k += 16) {                                                         \
            int n = K - k >= 16 ? 16 : (int)(K - k);                                     \
            __m512 w0 = LOAD(w + k, n);                                                  \
            for (int m = 0; m < NX; m++)                                                 \
                a0[m] = _mm512_fmadd_ps(w0, ld_f32(x + m * ldx + k, n), a0[m]);          \
        }                                                                                \
        for (int m = 0; m < NX; m++)                                                     \
            y[m] = _mm512_reduce_add_ps(                                                 \
                _mm512_add_ps(_mm512_add_ps(a0[m], a1[m]), _mm512_add_ps(a2[m], a3[m]))); \
    }                                                                                    \
    T512 static void NAME(const void *w, const float *x, int64_t ldx, int nx, int64_t K,  \
                          float *y) {                                                    \
        switch (nx) {                                                                    \
        case 1: NAME##_nx(w, x, ldx, K, y, 1); break;                                    \
        case 2: NAME##_nx(w, x, ldx, K, y, 2); break;                                    \
        case 3: NAME##_nx(w, x, ldx, K, y, 3); break;                                    \
        default: NAME##_nx(w, x, ldx, K, y, 4); break;                                   \
        }                                                                                \
    }

DOT512(dot_f32_avx512, float, ld_f32)
DOT512(dot_bf16_avx512, uint16_t, ld_bf16)
DOT512(dot_f16_avx512, uint16_t, ld_f16)

/* Quantized blocks: convert the 32 weights of a block to f32 (d * q, one
 * rounding, as ref's dequantizer), then FMA with each activation row. Two
 * blocks per iteration feed four independent chains (see DOT512). */
#define DOTQ512(NAME, BLOCK, UNPACK)                                                     \
    T512 static AI void NAME##_nx(const BLOCK *w, const float *x, int64_t ldx, int64_t K, \
                                  float *y, const int NX) {                              \
        __m512 a0[CPU_MAX_NX], a1[CPU_MAX_NX], a2[CPU_MAX_NX], a3[CPU_MAX_NX];           \
        for (int m = 0; m < NX; m++) a0[m] = a1[m] = a2[m] = a3[m] = _mm512_setzero_ps(); \
        const int64_t nb = K / XS_QK;                                                    \
        int64_t b = 0;                                                                   \
        for (; b + 2 <= nb; b += 2) {                                                    \
            _mm_prefetch((const char *)(w + b) + CPU_PREFETCH_BYTES, _MM_HINT_T0);         \
            __m512 d0 = _mm512_set1_ps(_cvtsh_ss(w[b].d));                               \
            __m512 d1 = _mm512_set1_ps(_cvtsh_ss(w[b + 1].d));                           \
            __m512 q0, q1, q2, q3;                                                      \
            UNPACK(w[b].qs, q0, q1);                                                     \
            UNPACK(w[b + 1].qs, q2, q3);                                                 \
            __m512 w0 = _mm512_mul_ps(d0, q0);                       \
            __m512 w1 = _mm512_mul_ps(d0, q1);                       \
            __m512 w2 = _mm512_mul_ps(d1, q2);                       \
            __m512 w3 = _mm512_mul_ps(d1, q3);                       \
            for (int m = 0; m < NX; m++) {                                               \
                const float *xb = x + m * ldx + b * XS_QK;                               \
                a0[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xb), a0[m]);                 \
                a1[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), a1[m]);            \
                a2[m] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xb + 32), a2[m]);            \
                a3[m] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xb + 48), a3[m]);            \
            }                                                                            \
        }                                                                                \
        if (b < nb) {                                                                    \
            __m512 d0 = _mm512_set1_ps(_cvtsh_ss(w[b].d));                               \
            __m512 q0, q1;                                                              \
            UNPACK(w[b].qs, q0, q1);                                                     \
            __m512 w0 = _mm512_mul_ps(d0, q0);                       \
            __m512 w1 = _mm512_mul_ps(d0, q1);                       \
            for (int m = 0; m < NX; m++) {                                               \
                const float *xb = x + m * ldx + b * XS_QK;                               \
                a0[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xb), a0[m]);                 \
                a1[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xb + 16), a1[m]);            \
            }                                                                            \
        }                                                                                \
        for (int m = 0; m < NX; m++)                                                     \
            y[m] = _mm512_reduce_add_ps(                                                 \
                _mm512_add_ps(_mm512_add_ps(a0[m], a1[m]), _mm512_add_ps(a2[m], a3[m]))); \
    }                                                                                    \
    T512 static void NAME(const void *w, const float *x, int64_t ldx, int nx, int64_t K,  \
                          float *y) {                                                    \
        switch (nx) {                                                                    \
        case 1: NAME##_nx(w, x, ldx, K, y, 1); break;                                    \
        case 2: NAME##_nx(w, x, ldx, K, y, 2); break;                                    \
        case 3: NAME##_nx(w, x, ldx, K, y, 3); break;                                    \
        default: NAME##_nx(w, x, ldx, K, y, 4); break;                                   \
        }                                                                                \
    }

/* Unpackers give the 32 block values as two vectors of 16 f32 (q, not yet
 * scaled by d). q8_0: 32 signed bytes, sign-extended and converted. */
#define UNPACK_Q8(qs, f0, f1)                                                                 \
    do {                                                                                      \
        f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qs)))); \
        f1 = _mm512_cvtepi32_ps(                                                              \
            _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(qs) + 1)));                \
    } while (0)
/* q4_0: 16 bytes; low nibbles = elements 0..15, high nibbles = 16..31. Each
 * byte is widened to a 32-bit lane once; vpermps then looks the value
 * nibble - 8 up in a 16-entry f32 table, using only the low 4 bits of each
 * lane as the index (so the low nibble needs no mask, and the high one
 * just a shift). This replaces mask, subtract and convert per half. */
#define UNPACK_Q4(qs, f0, f1)                                                             \
    do {                                                                                  \
        const __m512 lut_ = _mm512_setr_ps(-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3,    \
                                           4, 5, 6, 7);                                   \
        __m512i b_ = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(qs)));        \
        f0 = _mm512_permutexvar_ps(b_, lut_);                                             \
        f1 = _mm512_permutexvar_ps(_mm512_srli_epi32(b_, 4), lut_);                       \
    } while (0)

DOTQ512(dot_q8_0_avx512, xs_block_q8_0, UNPACK_Q8)
DOTQ512(dot_q4_0_avx512, xs_block_q4_0, UNPACK_Q4)

/* Conversions for the sgemm path: bf16 / f16 vectorized, the rest generic. */
T512 static void to_f32_bf16_avx512(const void *wv, float *y, int64_t n) {
    const uint16_t *w = wv;
    for (int64_t k = 0; k < n; k += 16) {
        int r = n - k >= 16 ? 16 : (int)(n - k);
        _mm512_mask_storeu_ps(y + k, (__mmask16)((1u << r) - 1), ld_bf16(w + k, r));
    }
}
T512 static void to_f32_f16_avx512(const void *wv, float *y, int64_t n) {
    const uint16_t *w = wv;
    for (int64_t k = 0; k < n; k += 16) {
        int r = n - k >= 16 ? 16 : (int)(n - k);
        _mm512_mask_storeu_ps(y + k, (__mmask16)((1u << r) - 1), ld_f16(w + k, r));
    }
}
T512 static void to_f32_q8_0_avx512(const void *wv, float *y, int64_t n) {
    const xs_block_q8_0 *w = wv;
    for (int64_t b = 0; b < n / XS_QK; b++) {
        __m512 d = _mm512_set1_ps(_cvtsh_ss(w[b].d));
        __m512 q0, q1;
        UNPACK_Q8(w[b].qs, q0, q1);
        _mm512_storeu_ps(y + b * XS_QK, _mm512_mul_ps(d, q0));
        _mm512_storeu_ps(y + b * XS_QK + 16, _mm512_mul_ps(d, q1));
    }
}
T512 static void to_f32_q4_0_avx512(const void *wv, float *y, int64_t n) {
    const xs_block_q4_0 *w = wv;
    for (int64_t b = 0; b < n / XS_QK; b++) {
        __m512 d = _mm512_set1_ps(_cvtsh_ss(w[b].d));
        __m512 q0, q1;
        UNPACK_Q4(w[b].qs, q0, q1);
        _mm512_storeu_ps(y + b * XS_QK, _mm512_mul_ps(d, q0));
        _mm512_storeu_ps(y + b * XS_QK + 16, _mm512_mul_ps(d, q1));
    }
}

T512 static void axpy_avx512(float *y, const float *x, float a, int64_t n) {
    __m512 va = _mm512_set1_ps(a);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
                                                        _mm512_maskz_loadu_ps(m, y + i)));
    }
}

/* ELU, 16 lanes: expm1 by series near 0 (no cancellation), exp(x) - 1 with
 * exp = 2^n * p(r), r = x - n ln2 in [-ln2/2, ln2/2], below -0.5. */
T512 static AI __m512 elu16(__m512 x, __m512 alpha) {
    const __m512 half = _mm512_set1_ps(-0.5f), one = _mm512_set1_ps(1.0f);
    /* series: x * (1 + x/2 (1 + x/3 (1 + ... x/9))) written as Horner in x */
    __m512 s = _mm512_set1_ps(1.0f / 362880.0f);
    s = _mm512_fmadd_ps(s, x, _mm512_set1_ps(1.0f / 40320.0f));
    s = _mm512_fmadd_ps(s, x, _mm512_set1_ps(1.0f / 5040.0f));
    s = _mm512_fmadd_ps(s, x, _mm512_set1_ps(1.0f / 720.0f));
    s = _mm512_fmadd_ps(s, x, _mm512_set1_ps(1.0f / 120.0f));
    s = _mm512_fmadd_ps(s, x, _mm512_set1_ps(1.0f / 24.0f));
    s = _mm512_fmadd_ps(s, x, _mm512_set1_ps(1.0f / 6.0f));
    s = _mm512_fmadd_ps(s, x, _mm512_set1_ps(0.5f));
    s = _mm512_fmadd_ps(s, x, one);
    s = _mm512_mul_ps(s, x);
    /* exp(x) - 1 for x <= -0.5 (x clamped at -30: the result is -1 in f32) */
    __m512 xc = _mm512_max_ps(x, _mm512_set1_ps(-30.0f));
    __m512 nf = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(0.693145751953125f), xc);
    r = _mm512_fnmadd_ps(nf, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, one);
    p = _mm512_fmadd_ps(p, r, one);
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(nf), _mm512_set1_epi32(127)), 23);
    __m512 big = _mm512_sub_ps(_mm512_mul_ps(p, _mm512_castsi512_ps(e)), one);
    __m512 neg = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, half, _CMP_GT_OQ), big, s);
    __m512 y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ),
                                    _mm512_mul_ps(alpha, neg), x);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x); /* NaN stays */
}

T512 static void elu_avx512(float *y, const float *x, float alpha, int64_t n) {
    __m512 a = _mm512_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, elu16(_mm512_loadu_ps(x + i), a));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, elu16(_mm512_maskz_loadu_ps(m, x + i), a));
    }
}

const cpu_kernels cpu_kernels_avx512 = {
    .axpy = axpy_avx512,
    .elu = elu_avx512,
    .dot = {[XS_F32] = dot_f32_avx512,
            [XS_BF16] = dot_bf16_avx512,
            [XS_F16] = dot_f16_avx512,
            [XS_Q8_0] = dot_q8_0_avx512,
            [XS_Q4_0] = dot_q4_0_avx512},
    .to_f32 = {[XS_F32] = NULL, /* filled from generic at lookup */
               [XS_BF16] = to_f32_bf16_avx512,
               [XS_F16] = to_f32_f16_avx512,
               [XS_Q8_0] = to_f32_q8_0_avx512,
               [XS_Q4_0] = to_f32_q4_0_avx512},
};
#endif
