/*
 * quant.c — Q8_0 / Q4_0 reference (de)quantizers, byte-identical to ggml's
 * quantize_row_q8_0_ref / quantize_row_q4_0_ref and to gguf-py's numpy
 * quantizer, because the bytes of a model file must not depend on who
 * wrote it.
 *
 * Do not "simplify" the float order of operations below: d is amax / 127 in
 * f32 (not amax * (1/127)), values are scaled by the f32 reciprocal id
 * (x * id, not x / d), Q8_0 rounds half away from zero (roundf), Q4_0
 * truncates x*id + 8.5 toward zero. Each of those changes bytes.
 */
#include "core/quant.h"

#include <math.h>

void xs_quantize_row_q8_0(const float *x, xs_block_q8_0 *y, int64_t n) {
    int64_t nb = n / XS_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * XS_QK;
        float amax = 0.0f;
        for (int j = 0; j < XS_QK; j++) {
            float a = fabsf(xb[j]);
            if (a > amax) amax = a;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = xs_f32_to_f16(d);
        for (int j = 0; j < XS_QK; j++) y[b].qs[j] = (int8_t)roundf(xb[j] * id);
    }
}

void xs_quantize_row_q4_0(const float *x, xs_block_q4_0 *y, int64_t n) {
    int64_t nb = n / XS_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float *xb = x + b * XS_QK;
        /* max keeps the sign of the value of largest magnitude (first one on ties),
         * so that value maps exactly onto nibble 0 (-8 * d). */
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < XS_QK; j++) {
            if (amax < fabsf(xb[j])) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = xs_f32_to_f16(d);
        for (int j = 0; j < XS_QK / 2; j++) {
            const float x0 = xb[j] * id;
            const float x1 = xb[j + XS_QK / 2] * id;
            int8_t i0 = (int8_t)(x0 + 8.5f), i1 = (int8_t)(x1 + 8.5f);
            uint8_t q0 = (uint8_t)(i0 < 15 ? i0 : 15), q1 = (uint8_t)(i1 < 15 ? i1 : 15);
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void xs_dequantize_row_q8_0(const xs_block_q8_0 *x, float *y, int64_t n) {
    int64_t nb = n / XS_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float d = xs_f16_to_f32(x[b].d);
        for (int j = 0; j < XS_QK; j++) y[b * XS_QK + j] = d * (float)x[b].qs[j];
    }
}

void xs_dequantize_row_q4_0(const xs_block_q4_0 *x, float *y, int64_t n) {
    int64_t nb = n / XS_QK;
    for (int64_t b = 0; b < nb; b++) {
        const float d = xs_f16_to_f32(x[b].d);
        for (int j = 0; j < XS_QK / 2; j++) {
            y[b * XS_QK + j] = d * (float)((int)(x[b].qs[j] & 0x0f) - 8);
            y[b * XS_QK + j + XS_QK / 2] = d * (float)((int)(x[b].qs[j] >> 4) - 8);
        }
    }
}
