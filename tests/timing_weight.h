/*
 * timing_weight.h — quick non-zero weight bytes for the kernel timings of
 * test_cuda_gemv / test_cuda_mma (8 GB of floats to quantize would take
 * minutes): hashed bytes, float weights kept under 1 in magnitude, q8_0 /
 * q4_0 blocks with the f16 scale 0x2000 = 2^-7. Timing only: no check uses
 * these values.
 */
#ifndef XS_TEST_TIMING_WEIGHT_H
#define XS_TEST_TIMING_WEIGHT_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"

static void *timing_weight(xs_dtype dt, int64_t N, int64_t K, uint64_t seed) {
    const size_t nb = xs_dtype_row_bytes(dt, K) * (size_t)N;
    uint8_t *w = malloc(nb);
    if (!w) return NULL;
    uint64_t h = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i + 8 <= nb; i += 8) {
        h ^= h << 13; h ^= h >> 7; h ^= h << 17;
        uint64_t v = h;
        if (dt == XS_BF16 || dt == XS_F16) v &= 0xbbffbbffbbffbbffull; /* exponent below 1.0 */
        if (dt == XS_F32) v &= 0xbeffffffbeffffffull;
        memcpy(w + i, &v, 8);
    }
    const size_t bs = dt == XS_Q8_0 ? 34 : dt == XS_Q4_0 ? 18 : 0;
    for (size_t off = 0; bs && off < nb; off += bs) { w[off] = 0x00; w[off + 1] = 0x20; }
    return w;
}

#endif
