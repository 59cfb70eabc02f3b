/*
 * quant.h — Q8_0 and Q4_0 blocks, byte for byte as GGUF/ggml define them.
 *
 * Q8_0: { f16 d; int8 qs[32]; }          value = d * qs[i]          (34 bytes)
 * Q4_0: { f16 d; uint8 qs[16]; }          value = d * (nibble - 8)   (18 bytes)
 *       qs[j] low nibble = element j, high nibble = element j + 16.
 */
#ifndef XS_CORE_QUANT_H
#define XS_CORE_QUANT_H

#include <assert.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct xs_block_q8_0 {
    uint16_t d;
    int8_t qs[XS_QK];
} xs_block_q8_0;

typedef struct xs_block_q4_0 {
    uint16_t d;
    uint8_t qs[XS_QK / 2];
} xs_block_q4_0;

static_assert(sizeof(xs_block_q8_0) == 34, "q8_0 block must be 34 bytes");
static_assert(sizeof(xs_block_q4_0) == 18, "q4_0 block must be 18 bytes");

/* Reference quantizers (deterministic: the bytes of a model file). n must be
 * a multiple of 32. Blocks of all zeros get d = 0. */
void xs_quantize_row_q8_0(const float *x, xs_block_q8_0 *y, int64_t n);
void xs_quantize_row_q4_0(const float *x, xs_block_q4_0 *y, int64_t n);
void xs_dequantize_row_q8_0(const xs_block_q8_0 *x, float *y, int64_t n);
void xs_dequantize_row_q4_0(const xs_block_q4_0 *x, float *y, int64_t n);

#endif
