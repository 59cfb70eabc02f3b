/*
 * rng.h — the one portable, counter-based random generator of xswarm.
 *
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
 * 3", SC'11): a pure function of (key, counter), so every backend (CPU
 * thread, GPU thread) computes the same draws with no shared state.
 * Sampling uses xs_rng_uniform(seed, stream, step, draw): `stream` separates
 * uses (e.g. 0 = text, 1 + k = audio codebook k), `step` is the LM step.
 */
#ifndef XS_CORE_RNG_H
#define XS_CORE_RNG_H

#include <stdint.h>

/* out = Philox4x32-10(key, ctr). */
void xs_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

/* Uniform float in [0, 1) with 24 random bits: (bits >> 8) * 2^-24.
 * Exact layout (every backend must reproduce it bit for bit):
 *   key = { (uint32)seed, (uint32)(seed >> 32) }
 *   ctr = { (uint32)step, (uint32)(step >> 32), (uint32)stream, draw }
 *   bits = word 0 of xs_philox4x32(key, ctr)
 * Only the low 32 bits of `stream` are used. */
float xs_rng_uniform(uint64_t seed, uint64_t stream, uint64_t step, uint32_t draw);

/* Sampling procedure shared by all backends (sample_topk op). `u` is the
 * uniform draw in [0, 1) (not yet multiplied by the sum). Returns the token
 * id, or -1 if V <= 0 or memory for the candidate list ran out.
 * 1. candidates = the top_k largest logits (ties: lower index first), in
 *    descending order; top_k <= 0 or >= V means all.
 * 2. p_i = exp((l_i - l_max) / temp), accumulated in that order in f32.
 *    Exactly: a = (l_i - l_max) / temp in f32, p_i = (float)exp((double)a)
 *    (double exp rounded to f32, not expf, so that libm and CUDA agree).
 * 3. u = xs_rng_uniform(...) * sum; the first i whose running sum > u wins
 *    (the last candidate if rounding leaves none).
 * temp <= 0 means argmax. */
int xs_sample_topk_ref(const float *logits, int64_t V, float temp, int top_k, float u);

#endif
