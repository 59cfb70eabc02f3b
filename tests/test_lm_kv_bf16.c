/*
 * test_lm_kv_bf16.c — the bf16 KV cache option.
 *
 * 1. Ops: xs_kv_cache_alloc_dtype accepts f32 / bf16 only; kv_store on a bf16
 *    cache stores exactly xs_f32_to_bf16 of each value (ties to even, NaN
 *    kept NaN) on ref and cpu; attention over it equals attention over an
 *    f32 cache holding the same (already rounded) values.
 * 2. lm_tiny, 60 greedy LMGen steps with a bf16 temporal KV cache on ref and
 *    cpu: identical tokens on both backends (same rounding, same cached
 *    values); every tap close to the f32 golden up to the first step where
 *    a token differs from it (bf16 keeps 8 bits of mantissa: ~4e-3 relative
 *    per cached value). How many step_out rows match the f32 golden is
 *    printed; only the first steps must follow it: a near-tie may flip
 *    (shared checks: kv_golden_check.h).
 * 3. lm_model_kv_bytes: the temporal part halves.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "diag/taps.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "kv_golden_check.h"
#include "testutil.h"

/* ---- 1. ops ---------------------------------------------------------------- */

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void check_ops(const char *backend) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open(backend, 2, &be) == XS_OK, "%s: open: %s", backend, xs_error_msg());
    if (!be) return;
    enum { CAP = 5, H = 2, D = 24, W = H * D, T = 3 };
    xs_kv_cache bad;
    CHECK(xs_kv_cache_alloc_dtype(be, CAP, W, XS_F16, &bad) == XS_ERR_DTYPE, "%s: f16 cache refused",
          backend);
    xs_kv_cache cb = {0}, cf = {0};
    CHECK(xs_kv_cache_alloc_dtype(be, CAP, W, XS_BF16, &cb) == XS_OK, "%s: bf16 alloc", backend);
    CHECK(xs_kv_cache_alloc(be, CAP, W, &cf) == XS_OK, "%s: f32 alloc", backend);
    CHECK(xs_kv_cache_bytes(&cb) == (size_t)2 * CAP * W * 2, "%s: bf16 cache bytes", backend);
    CHECK(xs_kv_cache_bytes(&cf) == (size_t)2 * CAP * W * 4, "%s: f32 cache bytes", backend);

    /* rows of random values with planted rounding cases in row 0 */
    float kh[T * W], vh[T * W];
    test_fill_uniform(kh, T * W, 11, -2, 2);
    test_fill_uniform(vh, T * W, 12, -2, 2);
    kh[0] = from_bits(0x3f808000u);  /* tie, lower kept bit even: rounds down */
    kh[1] = from_bits(0x3f818000u);  /* tie, lower kept bit odd: rounds up */
    kh[2] = from_bits(0xbf808001u);  /* just above the tie: rounds away */
    kh[3] = from_bits(0x7f7fffffu);  /* FLT_MAX rounds to inf, like xs_f32_to_bf16 */
    vh[0] = NAN;
    vh[1] = -0.0f;
    vh[2] = from_bits(0x00000001u);  /* smallest subnormal */
    int32_t ph[T] = {4, 5, 6};       /* 5 and 6 wrap onto slots 0 and 1 */
    int64_t ks[2] = {T, W}, pn = T;
    xs_tensor k = {0}, v = {0}, pos = {0};
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ks, &k) == XS_OK && xs_tensor_upload(be, &k, kh) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 2, ks, &v) == XS_OK &&
              xs_tensor_upload(be, &v, vh) == XS_OK &&
              xs_tensor_alloc(be, XS_I32, 1, &pn, &pos) == XS_OK &&
              xs_tensor_upload(be, &pos, ph) == XS_OK,
          "%s: inputs", backend);
    CHECK(xs_op_kv_store(be, &cb, &k, &v, &pos) == XS_OK, "%s: kv_store bf16: %s", backend,
          xs_error_msg());
    uint16_t kc[CAP * W], vc[CAP * W];
    int32_t pc[CAP];
    CHECK(xs_tensor_download(be, kc, &cb.k) == XS_OK && xs_tensor_download(be, vc, &cb.v) == XS_OK &&
              xs_tensor_download(be, pc, &cb.pos) == XS_OK,
          "%s: download", backend);
    int bad_bits = 0;
    for (int t = 0; t < T; t++) {
        const int slot = ph[t] % CAP;
        CHECK(pc[slot] == ph[t], "%s: slot %d holds position %d", backend, slot, pc[slot]);
        for (int c = 0; c < W; c++) {
            bad_bits += kc[slot * W + c] != xs_f32_to_bf16(kh[t * W + c]);
            bad_bits += vc[slot * W + c] != xs_f32_to_bf16(vh[t * W + c]);
        }
    }
    CHECK(bad_bits == 0, "%s: %d stored bf16 values differ from xs_f32_to_bf16", backend, bad_bits);
    CHECK(kc[4 * W + 0] == 0x3f80 && kc[4 * W + 1] == 0x3f82 && kc[4 * W + 2] == 0xbf81 &&
              kc[4 * W + 3] == 0x7f80,
          "%s: ties to even, FLT_MAX -> inf", backend);
    CHECK(isnan(xs_bf16_to_f32(vc[4 * W + 0])) && vc[4 * W + 1] == 0x8000 && vc[4 * W + 2] == 0,
          "%s: NaN kept, -0 kept, tiny subnormal -> 0", backend);

    /* attention over the bf16 cache == over an f32 cache of the rounded
     * values (row 0 has a NaN in v: use only queries that cannot see it) */
    float kr[T * W], vr[T * W];
    for (int i = 0; i < T * W; i++) {
        kr[i] = xs_bf16_to_f32(xs_f32_to_bf16(kh[i]));
        vr[i] = xs_bf16_to_f32(xs_f32_to_bf16(vh[i]));
    }
    kr[3] = 1.0f; /* the inf key of row 0 is not visible either, but keep it finite */
    CHECK(xs_tensor_upload(be, &k, kr) == XS_OK && xs_tensor_upload(be, &v, vr) == XS_OK, "up");
    CHECK(xs_kv_cache_reset(be, &cb) == XS_OK, "reset");
    CHECK(xs_op_kv_store(be, &cb, &k, &v, &pos) == XS_OK, "%s: kv_store bf16 (rounded)", backend);
    CHECK(xs_op_kv_store(be, &cf, &k, &v, &pos) == XS_OK, "%s: kv_store f32 (rounded)", backend);
    float qh[W], yb[W], yf[W];
    test_fill_uniform(qh, W, 13, -1, 1);
    int64_t qs[2] = {1, W}, one = 1;
    int32_t qp = 6;
    xs_tensor q = {0}, y = {0}, qpos = {0};
    CHECK(xs_tensor_alloc(be, XS_F32, 2, qs, &q) == XS_OK && xs_tensor_upload(be, &q, qh) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 2, qs, &y) == XS_OK &&
              xs_tensor_alloc(be, XS_I32, 1, &one, &qpos) == XS_OK &&
              xs_tensor_upload(be, &qpos, &qp) == XS_OK,
          "%s: query", backend);
    /* context 2: position 6 sees 5 and 6 only (not 4 and its NaN) */
    CHECK(xs_op_attention(be, &y, &q, &cb, &qpos, H, 2, 0.2f) == XS_OK, "%s: attention bf16: %s",
          backend, xs_error_msg());
    CHECK(xs_tensor_download(be, yb, &y) == XS_OK, "dl");
    CHECK(xs_op_attention(be, &y, &q, &cf, &qpos, H, 2, 0.2f) == XS_OK, "%s: attention f32", backend);
    CHECK(xs_tensor_download(be, yf, &y) == XS_OK, "dl");
    double nm = test_nmse(yf, yb, W), mx = 0;
    for (int i = 0; i < W; i++) mx = fmax(mx, fabs(yf[i]));
    CHECK(nm < 1e-12 && mx > 0.01, "%s: attention bf16 vs f32 of the same values: nmse %.3g",
          backend, nm);
    xs_tensor *all[] = {&k, &v, &pos, &q, &y, &qpos};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) xs_tensor_free(be, all[i]);
    xs_kv_cache_free(be, &cb);
    xs_kv_cache_free(be, &cf);
    xs_backend_close(be);
}

/* ---- 2. lm_tiny greedy ---------------------------------------------------------- */

static void check_lm_tiny(void) {
    xs_weights *gold = NULL;
    CHECK(xs_weights_open(golden_path("lm_tiny/golden.safetensors"), &gold) == XS_OK, "golden");
    if (!gold) return;
    kvg_run r[2];
    kvg_tap taps[KVG_TAPS];
    int rows_match = 0;
    const int same_until = kvg_check("bf16 kv", XS_BF16, gold, r, taps, &rows_match);
    if (same_until >= 0) {
        /* A flipped near-tie changes every later row, so only the start is
         * asked for (measured: the first 10 rows; the golden's margin at
         * step 10 is 4e-3 while bf16 moves logits by ~2e-2). */
        CHECK(rows_match >= 5, "bf16 kv: only %d of %d rows match the f32 golden", rows_match,
              KVG_STEPS);
        /* main: 2 layers x 12 slots x 64 x (k, v); the depformer stays f32 */
        const size_t main_f32 = (size_t)2 * 2 * 12 * 64 * 4;
        CHECK(r[0].kv_bytes == r[0].kv_bytes_f32 - main_f32 / 2, "bf16 kv bytes %zu (f32 %zu)",
              r[0].kv_bytes, r[0].kv_bytes_f32);
        CHECK(lm_model_set_kv_dtype(r[0].m, XS_F16) == XS_ERR_DTYPE, "f16 kv refused");
        for (int i = 0; i < KVG_TAPS; i++)
            CHECK(taps[i].err > 0 || strcmp(taps[i].name, "main_emb_sum") == 0,
                  "bf16 kv tap %s is bit-exact: is the cache really bf16?", taps[i].name);
    }
    for (int b = 0; b < 2; b++) kvg_run_free(&r[b]);
    xs_weights_close(gold);
}

int main(void) {
    check_ops("ref");
    check_ops("cpu");
    check_lm_tiny();
    return test_summary("test_lm_kv_bf16");
}
