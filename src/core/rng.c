/*
 * rng.c — Philox4x32-10 and the shared top-k sampling procedure.
 *
 * Counter layout of xs_rng_uniform (every backend must use exactly this):
 *   key = { seed & 0xffffffff, seed >> 32 }
 *   ctr = { step & 0xffffffff, step >> 32, stream & 0xffffffff, draw }
 * and the uniform is taken from output word 0: (out[0] >> 8) * 2^-24.
 * Only the low 32 bits of `stream` count.
 */
#include "core/rng.h"

#include <math.h>
#include <stdlib.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

static void philox_round(uint32_t ctr[4], const uint32_t key[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * ctr[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * ctr[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    uint32_t c1 = ctr[1], c3 = ctr[3];
    ctr[0] = hi1 ^ c1 ^ key[0];
    ctr[1] = lo1;
    ctr[2] = hi0 ^ c3 ^ key[1];
    ctr[3] = lo0;
}

void xs_philox4x32(const uint32_t key_in[2], const uint32_t ctr_in[4], uint32_t out[4]) {
    uint32_t key[2] = {key_in[0], key_in[1]};
    uint32_t c[4] = {ctr_in[0], ctr_in[1], ctr_in[2], ctr_in[3]};
    for (int r = 0; r < 10; r++) {
        if (r > 0) { /* the key is bumped between rounds, not before the first */
            key[0] += PHILOX_W0;
            key[1] += PHILOX_W1;
        }
        philox_round(c, key);
    }
    for (int i = 0; i < 4; i++) out[i] = c[i];
}

float xs_rng_uniform(uint64_t seed, uint64_t stream, uint64_t step, uint32_t draw) {
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {(uint32_t)step, (uint32_t)(step >> 32), (uint32_t)stream, draw};
    uint32_t out[4];
    xs_philox4x32(key, ctr, out);
    return (float)(out[0] >> 8) * 0x1p-24f;
}

/* Candidate order: larger logit first, lower index first on ties; NaN last. */
static _Thread_local const float *t_sort_logits;

static int cmp_candidates(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    float la = t_sort_logits[a], lb = t_sort_logits[b];
    int na = la != la, nb = lb != lb;
    if (na != nb) return na - nb;
    if (!na) {
        if (la > lb) return -1;
        if (la < lb) return 1;
    }
    return (a > b) - (a < b);
}

/* Weight of one candidate: the argument in f32 (IEEE sub and div, the same on
 * every device), exp in double rounded to f32. Not expf: libm and CUDA expf
 * differ in the last bit, a double exp rounded to f32 agrees everywhere but
 * in astronomically rare cases, so equal logits give equal tokens. */
static float sample_weight(float l, float lmax, float temp) {
    const float a = (l - lmax) / temp;
    return (float)exp((double)a);
}

static int argmax_lowest(const float *l, int64_t V) {
    int64_t best = 0;
    for (int64_t i = 1; i < V; i++)
        if (l[i] > l[best] || (l[best] != l[best] && l[i] == l[i])) best = i;
    return (int)best;
}

int xs_sample_topk_ref(const float *logits, int64_t V, float temp, int top_k, float u) {
    if (V <= 0) return -1;
    if (!(temp > 0.0f)) return argmax_lowest(logits, V);
    int64_t k = (top_k <= 0 || top_k >= V) ? V : top_k;
    int32_t *idx = malloc((size_t)V * sizeof *idx);
    if (!idx) return -1;
    for (int64_t i = 0; i < V; i++) idx[i] = (int32_t)i;
    t_sort_logits = logits;
    qsort(idx, (size_t)V, sizeof *idx, cmp_candidates);
    const float lmax = logits[idx[0]];
    float sum = 0.0f;
    for (int64_t i = 0; i < k; i++) sum += sample_weight(logits[idx[i]], lmax, temp);
    const float target = u * sum;
    float run = 0.0f;
    int chosen = idx[k - 1];
    for (int64_t i = 0; i < k; i++) {
        run += sample_weight(logits[idx[i]], lmax, temp);
        if (run > target) {
            chosen = idx[i];
            break;
        }
    }
    free(idx);
    return chosen;
}
