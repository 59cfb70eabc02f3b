/*
 * test_core_rng.c — Philox4x32-10 known answers (Random123 kat_vectors), the
 * documented counter layout of xs_rng_uniform, and the top-k sampling rule.
 */
#include <math.h>

#include "core/rng.h"
#include "testutil.h"

static void test_philox_kat(void) {
    static const struct { uint32_t ctr[4], key[2], out[4]; } kat[3] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        xs_philox4x32(kat[i].key, kat[i].ctr, out);
        CHECK(out[0] == kat[i].out[0] && out[1] == kat[i].out[1] && out[2] == kat[i].out[2] &&
                  out[3] == kat[i].out[3],
              "philox KAT %d: got %08x %08x %08x %08x", i, out[0], out[1], out[2], out[3]);
    }
}

static void test_uniform_layout(void) {
    const uint64_t seed = 0x0123456789abcdefull, step = 0x0000000500000007ull;
    uint32_t key[2] = {0x89abcdef, 0x01234567}, ctr[4] = {7, 5, 3, 9}, out[4];
    xs_philox4x32(key, ctr, out);
    float want = (float)(out[0] >> 8) * 0x1p-24f;
    CHECK(xs_rng_uniform(seed, 3, step, 9) == want, "uniform = word 0 of philox(key=seed, "
          "ctr={step lo, step hi, stream, draw}) >> 8 * 2^-24");
    double sum = 0, mn = 1, mx = 0;
    int differ = 0;
    for (int i = 0; i < 20000; i++) {
        float u = xs_rng_uniform(42, 0, (uint64_t)i, 0);
        sum += u;
        if (u < mn) mn = u;
        if (u > mx) mx = u;
        if (u != xs_rng_uniform(42, 1, (uint64_t)i, 0)) differ++;
    }
    CHECK(mn >= 0.0 && mx < 1.0, "uniform in [0, 1): min %g max %g", mn, mx);
    CHECK(fabs(sum / 20000 - 0.5) < 0.01, "uniform mean %g", sum / 20000);
    CHECK(differ > 19990, "streams give different draws (%d / 20000)", differ);
    CHECK(xs_rng_uniform(42, 0, 17, 0) == xs_rng_uniform(42, 0, 17, 0), "deterministic");
}

static void test_sample_rule(void) {
    const float flat[4] = {0, 0, 0, 0};
    /* equal weights 1, order 0,1,2,3: u * 4 = target, first running sum > target wins */
    CHECK(xs_sample_topk_ref(flat, 4, 1.0f, 0, 0.0f) == 0, "u=0 -> first");
    CHECK(xs_sample_topk_ref(flat, 4, 1.0f, 0, 0.3f) == 1, "u=0.3 -> 1");
    CHECK(xs_sample_topk_ref(flat, 4, 1.0f, 0, 0.5f) == 2, "u=0.5 (running sum 2 not > 2) -> 2");
    CHECK(xs_sample_topk_ref(flat, 4, 1.0f, 0, 0.9999f) == 3, "u~1 -> last");
    const float l[5] = {1, 3, 2, 0, 3};
    CHECK(xs_sample_topk_ref(l, 5, 0.0f, 0, 0.7f) == 1, "temp 0 = argmax, ties lowest");
    CHECK(xs_sample_topk_ref(l, 5, 1.0f, 1, 0.99f) == 1, "top_k 1 = argmax");
    /* top_k 3: candidates 1, 4 (both 3, lower index first), 2 (e^-1): sum 2.3679 */
    CHECK(xs_sample_topk_ref(l, 5, 1.0f, 3, 0.40f) == 1, "top3 u .40 -> 1");
    CHECK(xs_sample_topk_ref(l, 5, 1.0f, 3, 0.43f) == 4, "top3 u .43 -> 4");
    CHECK(xs_sample_topk_ref(l, 5, 1.0f, 3, 0.85f) == 2, "top3 u .85 -> 2");
    int never = 1;
    for (int i = 0; i < 1000; i++) {
        int id = xs_sample_topk_ref(l, 5, 1.0f, 3, xs_rng_uniform(1, 0, (uint64_t)i, 0));
        if (id == 0 || id == 3) never = 0;
    }
    CHECK(never, "tokens outside the top k are never drawn");
    /* frequencies follow softmax(l / temp) */
    const float t = 0.7f;
    int count[5] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++)
        count[xs_sample_topk_ref(l, 5, t, 0, xs_rng_uniform(9, 2, (uint64_t)i, 0))]++;
    double z = 0;
    for (int i = 0; i < 5; i++) z += exp(l[i] / t);
    int ok = 1;
    for (int i = 0; i < 5; i++) {
        double p = exp(l[i] / t) / z, f = (double)count[i] / n;
        if (fabs(p - f) > 4 * sqrt(p * (1 - p) / n) + 1e-3) ok = 0;
    }
    CHECK(ok, "sample frequencies match softmax(l/temp): %d %d %d %d %d", count[0], count[1],
          count[2], count[3], count[4]);
}

int main(void) {
    test_philox_kat();
    test_uniform_layout();
    test_sample_rule();
    return test_summary("test_core_rng");
}
