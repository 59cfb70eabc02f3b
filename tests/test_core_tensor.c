/*
 * test_core_tensor.c — dtypes, views, and exact bf16/f16/quantized conversions.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant.h"
#include "core/tensor.h"
#include "testutil.h"

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void test_dtypes(void) {
    for (int t = 0; t < XS_DTYPE_COUNT; t++)
        CHECK(xs_dtype_from_name(xs_dtype_name((xs_dtype)t)) == t, "name round trip %d", t);
    CHECK(xs_dtype_from_name("f64") == -1, "unknown name");
    CHECK(!strcmp(xs_dtype_name(XS_Q4_0), "q4_0"), "q4_0 name");
    CHECK(xs_dtype_row_bytes(XS_F32, 10) == 40, "f32 bytes");
    CHECK(xs_dtype_row_bytes(XS_BF16, 10) == 20, "bf16 bytes");
    CHECK(xs_dtype_row_bytes(XS_I64, 3) == 24, "i64 bytes");
    CHECK(xs_dtype_row_bytes(XS_Q8_0, 64) == 68, "q8_0 bytes");
    CHECK(xs_dtype_row_bytes(XS_Q4_0, 96) == 54, "q4_0 bytes");
    CHECK(xs_dtype_row_bytes(XS_Q4_0, 33) == 0, "q4_0 partial block");
    CHECK(xs_dtype_is_quantized(XS_Q8_0) && !xs_dtype_is_quantized(XS_BF16), "is_quantized");
}

static void test_views(void) {
    float buf[24];
    for (int i = 0; i < 24; i++) buf[i] = (float)i;
    xs_tensor t = xs_tensor_3d(XS_F32, buf, 2, 3, 4);
    CHECK(t.stride[0] == 12 && t.stride[1] == 4 && t.stride[2] == 1, "contiguous strides");
    CHECK(xs_tensor_numel(&t) == 24 && xs_tensor_nbytes(&t) == 96, "numel/nbytes");
    CHECK(xs_tensor_is_contiguous(&t), "contiguous");
    char s[64];
    CHECK(!strcmp(xs_tensor_shape_str(&t, s, sizeof s), "[2, 3, 4]"), "shape str %s", s);
    xs_tensor tr = xs_tensor_transpose(&t, 1, 2);
    CHECK(tr.shape[1] == 4 && tr.shape[2] == 3 && !xs_tensor_is_contiguous(&tr), "transpose");
    /* element [1][2][3] of the transposed view = original [1][3][2] = 12+12+2? -> 1*12+2*4+3 */
    CHECK(((float *)tr.data)[1 * tr.stride[0] + 3 * tr.stride[1] + 2 * tr.stride[2]] == 23.0f,
          "transposed element");
    xs_tensor sl = xs_tensor_slice(&t, -1, 1, 2);
    CHECK(sl.shape[2] == 2 && ((float *)sl.data)[0] == 1.0f && !xs_tensor_is_contiguous(&sl),
          "slice last dim");
    xs_tensor sl0 = xs_tensor_slice(&t, 0, 1, 1);
    CHECK(((float *)sl0.data)[0] == 12.0f && xs_tensor_is_contiguous(&sl0), "slice dim 0");
    xs_tensor bad = xs_tensor_slice(&t, 1, 2, 2);
    CHECK(bad.data == NULL, "out-of-range slice gives data NULL");
    xs_tensor r;
    int64_t shp[2] = {6, 4};
    CHECK(xs_tensor_reshape(&t, 2, shp, &r) == XS_OK && r.shape[0] == 6 && r.stride[0] == 4,
          "reshape");
    int64_t bad_shp[2] = {5, 4};
    CHECK(xs_tensor_reshape(&t, 2, bad_shp, &r) == XS_ERR_SHAPE, "reshape numel mismatch");
    CHECK(xs_tensor_reshape(&tr, 2, shp, &r) == XS_ERR_SHAPE, "reshape non-contiguous");
    /* size-1 dims do not break contiguity whatever their stride */
    xs_tensor one = xs_tensor_2d(XS_F32, buf, 1, 4);
    one.stride[0] = 999;
    CHECK(xs_tensor_is_contiguous(&one), "size-1 dim stride ignored");
    /* quantized slicing moves by whole blocks */
    xs_block_q8_0 blocks[4];
    xs_tensor q = xs_tensor_2d(XS_Q8_0, blocks, 2, 64);
    xs_tensor q1 = xs_tensor_slice(&q, 0, 1, 1);
    CHECK((char *)q1.data == (char *)blocks + 68, "q8_0 row slice offset");
}

static void test_bf16(void) {
    CHECK(xs_f32_to_bf16(1.0f) == 0x3f80, "1.0");
    CHECK(xs_f32_to_bf16(fbits(0x3f808000u)) == 0x3f80, "tie to even (down)");
    CHECK(xs_f32_to_bf16(fbits(0x3f818000u)) == 0x3f82, "tie to even (up)");
    CHECK(xs_f32_to_bf16(fbits(0x3f808001u)) == 0x3f81, "above tie rounds up");
    CHECK(xs_f32_to_bf16(fbits(0x3f807fffu)) == 0x3f80, "below tie rounds down");
    CHECK(xs_f32_to_bf16(fbits(0xbf818000u)) == 0xbf82, "negative tie");
    CHECK(xs_f32_to_bf16(fbits(0x7f7fffffu)) == 0x7f80, "max float rounds to inf");
    CHECK(xs_f32_to_bf16(INFINITY) == 0x7f80 && xs_f32_to_bf16(-INFINITY) == 0xff80, "inf");
    uint16_t nb = xs_f32_to_bf16(fbits(0x7f800001u)); /* NaN whose payload is in the dropped bits */
    CHECK((nb & 0x7f80) == 0x7f80 && (nb & 0x7f) != 0, "NaN stays NaN (0x%04x)", nb);
    CHECK(isnan(xs_bf16_to_f32(nb)), "NaN back to f32");
    int ok = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = xs_bf16_to_f32((uint16_t)h);
        if (bits(f) != h << 16) ok = 0;
        if (!isnan(f) && xs_f32_to_bf16(f) != h) ok = 0;
    }
    CHECK(ok, "all bf16 values round-trip");
}

/* Independent decoding of an f16: (-1)^s * 2^(e-15) * (1 + m/1024), subnormal m * 2^-24. */
static double f16_value(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    if (e == 31) v = m ? NAN : INFINITY;
    return s ? -v : v;
}

static void test_f16(void) {
    int ok_dec = 1, ok_rt = 1, nan_ok = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = xs_f16_to_f32((uint16_t)h);
        double want = f16_value((uint16_t)h);
        if (isnan(want)) {
            if (!isnan(f)) nan_ok = 0;
            if (!isnan(xs_f16_to_f32(xs_f32_to_f16(f)))) nan_ok = 0;
            continue;
        }
        if ((double)f != want || !!signbit(f) != !!signbit(want)) ok_dec = 0;
        if (xs_f32_to_f16(f) != h) ok_rt = 0;
    }
    CHECK(ok_dec, "all f16 values decode exactly (incl. subnormals, inf, -0)");
    CHECK(ok_rt, "all non-NaN f16 values round-trip");
    CHECK(nan_ok, "NaN f16 stays NaN both ways");
    CHECK(xs_f32_to_f16(65504.0f) == 0x7bff, "max f16");
    CHECK(xs_f32_to_f16(65519.99f) == 0x7bff, "just below overflow tie");
    CHECK(xs_f32_to_f16(65520.0f) == 0x7c00, "overflow tie goes to inf");
    CHECK(xs_f32_to_f16(0x1p-25f) == 0x0000, "2^-25 ties to zero");
    CHECK(xs_f32_to_f16(0x1.000002p-25f) == 0x0001, "just above 2^-25 rounds up");
    CHECK(xs_f32_to_f16(0x3p-25f) == 0x0002, "1.5 ulp subnormal tie to even");
    CHECK(xs_f32_to_f16(-0x1p-14f) == 0x8400, "-smallest normal");
    CHECK(xs_f32_to_f16(0x1.ffcp-15f) == 0x0400, "largest subnormal + half ulp -> normal");
    /* Midpoints between every pair of adjacent finite f16 values, and the points
     * next to them, against the nearest-even rule computed in double. */
    int ok_mid = 1;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        double a = f16_value((uint16_t)h), b = f16_value((uint16_t)(h + 1));
        float mid = (float)((a + b) / 2); /* exact in f32 */
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (xs_f32_to_f16(mid) != even) ok_mid = 0;
        if (xs_f32_to_f16(nextafterf(mid, 0.0f)) != h) ok_mid = 0;
        if (xs_f32_to_f16(nextafterf(mid, INFINITY)) != h + 1) ok_mid = 0;
        if (xs_f32_to_f16(-mid) != (even | 0x8000)) ok_mid = 0;
    }
    CHECK(ok_mid, "f32 -> f16 round to nearest even at every midpoint");
#ifdef __FLT16_MAX__
    /* Cross-check against the compiler's own conversion on random floats. */
    uint64_t s = 12345;
    int ok_cc = 1;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t u = (uint32_t)(s >> 32);
        if (((u >> 23) & 0xff) > 150 && ((u >> 23) & 0xff) != 0xff) u &= ~(0x7fu << 24); /* stay near range */
        float f = fbits(u);
        if (isnan(f)) continue;
        _Float16 hv = (_Float16)f;
        uint16_t want;
        memcpy(&want, &hv, 2);
        if (xs_f32_to_f16(f) != want) ok_cc = 0;
    }
    CHECK(ok_cc, "f32 -> f16 agrees with _Float16 conversion on random floats");
#endif
}

static void test_convert(void) {
    float out[64];
    uint16_t bf[3] = {0x3f80, 0xc000, 0x0000};
    CHECK(xs_convert_to_f32(out, bf, XS_BF16, 3) == XS_OK && out[0] == 1.0f && out[1] == -2.0f,
          "bf16 convert");
    uint16_t hf[2] = {0x3c00, 0x0001};
    CHECK(xs_convert_to_f32(out, hf, XS_F16, 2) == XS_OK && out[0] == 1.0f && out[1] == 0x1p-24f,
          "f16 convert");
    int32_t i32[2] = {-7, 100000};
    CHECK(xs_convert_to_f32(out, i32, XS_I32, 2) == XS_OK && out[0] == -7.0f && out[1] == 1e5f,
          "i32 convert");
    int64_t i64[1] = {-3};
    CHECK(xs_convert_to_f32(out, i64, XS_I64, 1) == XS_OK && out[0] == -3.0f, "i64 convert");
    int8_t i8[1] = {-128};
    CHECK(xs_convert_to_f32(out, i8, XS_I8, 1) == XS_OK && out[0] == -128.0f, "i8 convert");
    uint8_t u8[1] = {200};
    CHECK(xs_convert_to_f32(out, u8, XS_U8, 1) == XS_OK && out[0] == 200.0f, "u8 convert");
    xs_block_q8_0 q8 = {0};
    q8.d = xs_f32_to_f16(0.5f);
    for (int i = 0; i < 32; i++) q8.qs[i] = (int8_t)(i - 16);
    CHECK(xs_convert_to_f32(out, &q8, XS_Q8_0, 32) == XS_OK && out[0] == -8.0f && out[31] == 7.5f,
          "q8_0 convert");
    xs_block_q4_0 q4 = {0};
    q4.d = xs_f32_to_f16(2.0f);
    for (int j = 0; j < 16; j++) q4.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    CHECK(xs_convert_to_f32(out, &q4, XS_Q4_0, 32) == XS_OK && out[0] == -16.0f &&
              out[15] == 14.0f && out[16] == 14.0f && out[31] == -16.0f,
          "q4_0 convert: low nibble j, high nibble j+16");
    CHECK(xs_convert_to_f32(out, &q4, XS_Q4_0, 16) == XS_ERR_SHAPE, "partial block refused");
}

int main(void) {
    test_dtypes();
    test_views();
    test_bf16();
    test_f16();
    test_convert();
    return test_summary("test_core_tensor");
}
