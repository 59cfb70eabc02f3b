/*
 * test_core_quant.c — Q8_0 / Q4_0 quantizers and dequantizers.
 *
 * Hand-computed blocks pin the rounding rules (Q8_0 rounds half away from
 * zero, Q4_0 truncates x*id + 8.5 and clamps at 15, the signed max), then
 * the golden files pin byte-exactness: every Q8_0 tensor of
 * lm_tiny_candle_q8/model.q8.gguf (written by llama.cpp's gguf-py) must equal
 * our quantization of the same f32 tensor of model.candle.safetensors, and
 * our dequantization must equal dequant.safetensors bit for bit.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "testutil.h"

static void test_q8_0_hand(void) {
    float x[32];
    /* amax 63.5 -> d = 0.5 exactly, id = 2: x = k/4 gives x*id = k/2, so the
     * odd k are exact ties and must round away from zero. */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.25f;
    x[31] = 63.5f;
    xs_block_q8_0 b;
    xs_quantize_row_q8_0(x, &b, 32);
    CHECK(b.d == 0x3800, "q8_0 d = f16(0.5) (got 0x%04x)", b.d);
    int8_t hand[32];
    for (int j = 0; j < 31; j++) {
        int twice = j - 16;                    /* x*id = twice / 2 */
        int mag = (abs(twice) + 1) / 2;        /* half away from zero */
        hand[j] = (int8_t)(twice < 0 ? -mag : mag);
    }
    hand[31] = 127;
    int ok = 1;
    for (int j = 0; j < 32; j++) ok &= b.qs[j] == hand[j];
    CHECK(ok, "q8_0 ties round away from zero (q[15]=%d q[17]=%d)", b.qs[15], b.qs[17]);
    CHECK(b.qs[15] == -1 && b.qs[17] == 1 && b.qs[13] == -2, "q8_0 spot values");
    float y[32];
    xs_dequantize_row_q8_0(&b, y, 32);
    CHECK(y[31] == 63.5f && y[17] == 0.5f && y[0] == -4.0f, "q8_0 dequant");

    float z[64] = {0};
    z[40] = -3.0f;
    xs_block_q8_0 bz[2];
    xs_quantize_row_q8_0(z, bz, 64);
    int zero = bz[0].d == 0;
    for (int j = 0; j < 32; j++) zero &= bz[0].qs[j] == 0;
    CHECK(zero, "q8_0 all-zero block: d = 0, q = 0");
    CHECK(bz[1].qs[8] == -127 && xs_f16_to_f32(bz[1].d) == xs_f16_to_f32(xs_f32_to_f16(3.0f / 127.0f)),
          "q8_0 second block scaled independently");
}

static void test_q4_0_hand(void) {
    float x[32] = {0};
    /* Largest magnitude is negative: d = -8 / -8 = 1, id = 1, q = trunc(x + 8.5) clamped. */
    const float vals[8] = {-8.0f, 7.0f, 7.4f, 7.6f, 0.0f, -0.5f, -0.6f, 0.5f};
    const int wantq[8] = {0, 15, 15, 15, 8, 8, 7, 9};
    for (int j = 0; j < 8; j++) x[j] = vals[j];
    for (int j = 16; j < 24; j++) x[j] = vals[j - 16] * 0.5f; /* high nibbles */
    xs_block_q4_0 b;
    xs_quantize_row_q4_0(x, &b, 32);
    CHECK(xs_f16_to_f32(b.d) == 1.0f, "q4_0 d = 1");
    int ok = 1;
    for (int j = 0; j < 8; j++) ok &= (b.qs[j] & 15) == wantq[j];
    CHECK(ok, "q4_0 low nibbles (elements 0..15)");
    /* element 16 + j = vals[j]/2: -4 -> 4, 3.5 -> 12, 3.7 -> 12, 3.8 -> 12, 0 -> 8,
     * -0.25 -> 8, -0.3 -> 8, 0.25 -> 8 */
    const int wanth[8] = {4, 12, 12, 12, 8, 8, 8, 8};
    ok = 1;
    for (int j = 0; j < 8; j++) ok &= (b.qs[j] >> 4) == wanth[j];
    CHECK(ok, "q4_0 high nibbles (elements 16..31)");
    CHECK(b.qs[10] == 0x88, "q4_0 zeros map to nibble 8");

    /* Largest magnitude positive and first: d = -1; the later -8 (same |x|) gives
     * -8 * -1 + 8.5 = 16.5 -> 16 -> clamped to 15. */
    float p[32] = {0};
    p[0] = 8.0f;
    p[1] = -8.0f;
    p[2] = -7.0f;
    xs_quantize_row_q4_0(p, &b, 32);
    CHECK(xs_f16_to_f32(b.d) == -1.0f, "q4_0 keeps the sign of the max (d = -1)");
    CHECK((b.qs[0] & 15) == 0 && (b.qs[1] & 15) == 15 && (b.qs[2] & 15) == 15,
          "q4_0 clamp at 15 (%d %d %d)", b.qs[0] & 15, b.qs[1] & 15, b.qs[2] & 15);
    float y[32];
    xs_dequantize_row_q4_0(&b, y, 32);
    CHECK(y[0] == 8.0f && y[1] == -7.0f && y[3] == -0.0f, "q4_0 dequant");

    float z[32] = {0};
    xs_quantize_row_q4_0(z, &b, 32);
    /* d = 0 / -8 = -0.0, stored as f16 0x8000 exactly like ggml and gguf-py do. */
    CHECK(b.d == 0x8000 && b.qs[0] == 0x88 && b.qs[15] == 0x88, "q4_0 zero block (d 0x%04x)", b.d);
}

/* Every Q8_0 tensor of the gguf-py-written GGUF, re-quantized from f32 by us. */
static void test_golden_q8_0(void) {
    /* golden_path() returns a static buffer: copy each path. */
    char gp[4096], stp[4096], dqp[4096];
    snprintf(gp, sizeof gp, "%s", golden_path("lm_tiny_candle_q8/model.q8.gguf"));
    snprintf(stp, sizeof stp, "%s", golden_path("lm_tiny_candle_q8/model.candle.safetensors"));
    snprintf(dqp, sizeof dqp, "%s", golden_path("lm_tiny_candle_q8/dequant.safetensors"));
    xs_gguf *g = NULL;
    xs_safetensors *st = NULL, *dq = NULL;
    if (xs_gguf_open(gp, &g) != XS_OK || xs_st_open(stp, &st) != XS_OK ||
        xs_st_open(dqp, &dq) != XS_OK) {
        CHECK(0, "open golden files: %s", xs_error_msg());
        goto done;
    }
    int n_q8 = 0, n_same = 0;
    for (int i = 0; i < xs_gguf_count(g); i++) {
        const xs_tensor *q = xs_gguf_at(g, i);
        if (q->dtype != XS_Q8_0) continue;
        n_q8++;
        const xs_tensor *f = xs_st_find(st, q->name);
        if (!f || f->dtype != XS_F32 || xs_tensor_numel(f) != xs_tensor_numel(q)) {
            CHECK(0, "f32 twin of %s missing", q->name);
            continue;
        }
        int64_t n = xs_tensor_numel(q);
        xs_block_q8_0 *mine = malloc(xs_tensor_nbytes(q));
        xs_quantize_row_q8_0(f->data, mine, n);
        if (!memcmp(mine, q->data, xs_tensor_nbytes(q))) n_same++;
        else CHECK(0, "q8_0 bytes of %s differ from gguf-py", q->name);
        free(mine);
    }
    CHECK(n_q8 == 96 && n_same == n_q8, "%d of %d Q8_0 tensors byte-identical (expect 96)", n_same,
          n_q8);

    int n_dq = 0;
    for (int i = 0; i < xs_st_count(dq); i++) {
        const xs_tensor *want = xs_st_at(dq, i);
        const xs_tensor *q = xs_gguf_find(g, want->name);
        if (!q || q->dtype != XS_Q8_0 || xs_tensor_numel(q) != xs_tensor_numel(want)) {
            CHECK(0, "gguf tensor %s missing or not q8_0", want->name);
            continue;
        }
        int64_t n = xs_tensor_numel(q);
        float *y = malloc((size_t)n * sizeof *y);
        CHECK(xs_convert_to_f32(y, q->data, XS_Q8_0, n) == XS_OK, "dequant %s", want->name);
        CHECK(!memcmp(y, want->data, (size_t)n * 4), "dequant of %s bit-identical", want->name);
        free(y);
        n_dq++;
    }
    CHECK(n_dq == 4, "4 dequant tensors checked (got %d)", n_dq);
done:
    if (g) xs_gguf_close(g);
    if (st) xs_st_close(st);
    if (dq) xs_st_close(dq);
}

/* Round trip error bounds on random data: |x - deq(q(x))| <= d/2 (q8_0), <= d (q4_0). */
static void test_round_trip(void) {
    enum { N = 32 * 64 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    test_fill_uniform(x, N, 7, -3.0f, 3.0f);
    xs_block_q8_0 *b8 = malloc(N / 32 * sizeof *b8);
    xs_block_q4_0 *b4 = malloc(N / 32 * sizeof *b4);
    xs_quantize_row_q8_0(x, b8, N);
    xs_dequantize_row_q8_0(b8, y, N);
    int ok = 1;
    for (int i = 0; i < N; i++)
        ok &= fabsf(x[i] - y[i]) <= 0.57f * fabsf(xs_f16_to_f32(b8[i / 32].d)) + 1e-6f;
    /* d/2 from rounding q, plus 127 * |d - f16(d)| <= 127 * d * 2^-11 from storing d in f16 */
    CHECK(ok, "q8_0 round trip within 0.57 d");
    xs_quantize_row_q4_0(x, b4, N);
    xs_dequantize_row_q4_0(b4, y, N);
    ok = 1;
    for (int i = 0; i < N; i++)
        ok &= fabsf(x[i] - y[i]) <= fabsf(xs_f16_to_f32(b4[i / 32].d)) * 1.01f + 1e-6f;
    CHECK(ok, "q4_0 round trip within d");
    CHECK(test_nmse(x, y, N) < 0.01, "q4_0 nmse %g", test_nmse(x, y, N));
    free(x); free(y); free(b8); free(b4);
}

int main(void) {
    test_q8_0_hand();
    test_q4_0_hand();
    test_round_trip();
    test_golden_q8_0();
    return test_summary("test_core_quant");
}
