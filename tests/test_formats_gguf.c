/*
 * test_formats_gguf.c — GGUF writer -> reader round trip (v2 and v3, key/
 * values of every type, every tensor type), malformed files (status and a
 * message naming the file), and the golden candle Q8_0 file checked against
 * its f32 source and its exact dequantization.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/quant.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "testutil.h"

static char g_tmp[256];

static const char *tmp_file(const char *what) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/xs_test_gguf_%d_%s.gguf", (int)getpid(), what);
    return g_tmp;
}

/* ---- round trip ------------------------------------------------------------ */

static void set(xs_gguf_writer *w, const char *k, xs_gguf_value *v) {
    CHECK(v != NULL, "value for %s built", k);
    CHECK(xs_gguf_writer_set(w, k, v) == XS_OK, "set %s: %s", k, xs_error_msg());
}

static void add_all_kv(xs_gguf_writer *w) {
    set(w, "t.u8", xs_gguf_value_new_int(XS_GGUF_UINT8, 200));
    set(w, "t.i8", xs_gguf_value_new_int(XS_GGUF_INT8, -100));
    set(w, "t.u16", xs_gguf_value_new_int(XS_GGUF_UINT16, 60000));
    set(w, "t.i16", xs_gguf_value_new_int(XS_GGUF_INT16, -30000));
    set(w, "t.u32", xs_gguf_value_new_int(XS_GGUF_UINT32, 4000000000LL));
    set(w, "t.i32", xs_gguf_value_new_int(XS_GGUF_INT32, -2000000000));
    set(w, "t.f32", xs_gguf_value_new_float(XS_GGUF_FLOAT32, 1.25));
    set(w, "t.bool", xs_gguf_value_new_int(XS_GGUF_BOOL, 1));
    set(w, "t.str", xs_gguf_value_new_str("héllo, world"));
    set(w, "t.u64", xs_gguf_value_new_u64(18000000000000000000ULL));
    set(w, "t.i64", xs_gguf_value_new_int(XS_GGUF_INT64, -9000000000000000000LL));
    set(w, "t.f64", xs_gguf_value_new_float(XS_GGUF_FLOAT64, 3.141592653589793));
    xs_gguf_value *a = xs_gguf_value_new_array(XS_GGUF_UINT32);
    for (int i = 0; i < 5; i++) xs_gguf_value_array_push(a, xs_gguf_value_new_int(XS_GGUF_UINT32, i * 7));
    set(w, "t.arr_u32", a);
    xs_gguf_value *s = xs_gguf_value_new_array(XS_GGUF_STRING);
    xs_gguf_value_array_push(s, xs_gguf_value_new_str("a"));
    xs_gguf_value_array_push(s, xs_gguf_value_new_str(""));
    xs_gguf_value_array_push(s, xs_gguf_value_new_str("ccc"));
    set(w, "t.arr_str", s);
    xs_gguf_value *outer = xs_gguf_value_new_array(XS_GGUF_ARRAY);
    for (int k = 0; k < 3; k++) {
        xs_gguf_value *inner = xs_gguf_value_new_array(XS_GGUF_INT16);
        for (int j = 0; j <= k; j++) xs_gguf_value_array_push(inner, xs_gguf_value_new_int(XS_GGUF_INT16, -j - 10 * k));
        xs_gguf_value_array_push(outer, inner);
    }
    set(w, "t.nested", outer);
    set(w, "t.empty_arr", xs_gguf_value_new_array(XS_GGUF_FLOAT64));
    /* wrong element type is refused (and the item freed) */
    xs_gguf_value *bad = xs_gguf_value_new_array(XS_GGUF_UINT8);
    CHECK(xs_gguf_value_array_push(bad, xs_gguf_value_new_str("x")) == XS_ERR_ARG, "mixed array refused");
    xs_gguf_value_free(bad);
}

static void check_all_kv(const xs_gguf *g) {
    int64_t iv;
    uint64_t uv;
    double fv;
#define KV(name) xs_gguf_kv_value(g, xs_gguf_find_key(g, name))
    CHECK(xs_gguf_kv_count(g) == 16, "16 key/values (%d)", xs_gguf_kv_count(g));
    CHECK(xs_gguf_value_int(KV("t.u8"), &iv) && iv == 200, "u8");
    CHECK(xs_gguf_kv_type(g, xs_gguf_find_key(g, "t.u8")) == XS_GGUF_UINT8, "u8 type");
    CHECK(xs_gguf_value_int(KV("t.i8"), &iv) && iv == -100, "i8");
    CHECK(xs_gguf_value_int(KV("t.u16"), &iv) && iv == 60000, "u16");
    CHECK(xs_gguf_value_int(KV("t.i16"), &iv) && iv == -30000, "i16");
    CHECK(xs_gguf_value_int(KV("t.u32"), &iv) && iv == 4000000000LL, "u32");
    CHECK(xs_gguf_value_int(KV("t.i32"), &iv) && iv == -2000000000, "i32");
    CHECK(xs_gguf_value_float(KV("t.f32"), &fv) && fv == 1.25, "f32");
    CHECK(xs_gguf_value_int(KV("t.bool"), &iv) && iv == 1, "bool");
    CHECK(xs_gguf_kv_type(g, xs_gguf_find_key(g, "t.bool")) == XS_GGUF_BOOL, "bool type");
    uint64_t len = 0;
    const char *s = xs_gguf_value_str(KV("t.str"), &len);
    CHECK(s && !strcmp(s, "héllo, world") && len == strlen("héllo, world"), "string");
    CHECK(xs_gguf_value_u64(KV("t.u64"), &uv) && uv == 18000000000000000000ULL, "u64");
    CHECK(!xs_gguf_value_int(KV("t.u64"), &iv), "u64 above int64 refused by value_int");
    CHECK(xs_gguf_value_int(KV("t.i64"), &iv) && iv == -9000000000000000000LL, "i64");
    CHECK(!xs_gguf_value_u64(KV("t.i64"), &uv), "negative refused by value_u64");
    CHECK(xs_gguf_value_float(KV("t.f64"), &fv) && fv == 3.141592653589793, "f64");
    const xs_gguf_value *a = KV("t.arr_u32");
    CHECK(xs_gguf_value_type(a) == XS_GGUF_ARRAY && xs_gguf_value_array_type(a) == XS_GGUF_UINT32 &&
          xs_gguf_value_array_len(a) == 5, "u32 array");
    CHECK(xs_gguf_value_int(xs_gguf_value_array_at(a, 4), &iv) && iv == 28, "u32 array [4]");
    CHECK(xs_gguf_value_array_at(a, 5) == NULL, "array out of range");
    const xs_gguf_value *sa = KV("t.arr_str");
    CHECK(xs_gguf_value_array_len(sa) == 3 && !strcmp(xs_gguf_value_str(xs_gguf_value_array_at(sa, 2), NULL), "ccc") &&
          !strcmp(xs_gguf_value_str(xs_gguf_value_array_at(sa, 1), NULL), ""), "string array");
    const xs_gguf_value *n = KV("t.nested");
    CHECK(xs_gguf_value_array_type(n) == XS_GGUF_ARRAY && xs_gguf_value_array_len(n) == 3, "nested outer");
    const xs_gguf_value *in2 = xs_gguf_value_array_at(n, 2);
    CHECK(xs_gguf_value_array_type(in2) == XS_GGUF_INT16 && xs_gguf_value_array_len(in2) == 3, "nested inner");
    CHECK(xs_gguf_value_int(xs_gguf_value_array_at(in2, 2), &iv) && iv == -22, "nested value");
    CHECK(xs_gguf_value_array_len(KV("t.empty_arr")) == 0 &&
          xs_gguf_value_array_type(KV("t.empty_arr")) == XS_GGUF_FLOAT64, "empty array");
    CHECK(xs_gguf_find_key(g, "nope") == -1, "absent key -> -1");
#undef KV
}

static void test_round_trip(uint32_t version) {
    float f32[3 * 64], q8src[2 * 64], q4src[32];
    uint16_t f16[2 * 32], bf16[4];
    test_fill_uniform(f32, 3 * 64, 1, -2, 2);
    test_fill_uniform(q8src, 2 * 64, 2, -1, 1);
    test_fill_uniform(q4src, 32, 3, -1, 1);
    for (int i = 0; i < 64; i++) f16[i] = xs_f32_to_f16(f32[i]);
    for (int i = 0; i < 4; i++) bf16[i] = xs_f32_to_bf16(f32[i + 5]);
    xs_block_q8_0 q8[4];
    xs_block_q4_0 q4[1];
    xs_quantize_row_q8_0(q8src, q8, 128);
    xs_quantize_row_q4_0(q4src, q4, 32);
    float norm[64];
    test_fill_uniform(norm, 64, 4, 0.5f, 1.5f);

    xs_gguf_writer *w = xs_gguf_writer_new(version);
    CHECK(w != NULL, "writer v%u", version);
    add_all_kv(w);
    int64_t s_f32[2] = {3, 64}, s_f16[2] = {2, 32}, s_bf16[1] = {4}, s_q8[2] = {2, 64}, s_q4[2] = {1, 32},
            s_norm[3] = {1, 1, 64};
    CHECK(xs_gguf_writer_add(w, "w.f32", XS_F32, 2, s_f32, f32) == XS_OK, "add f32");
    CHECK(xs_gguf_writer_add(w, "w.f16", XS_F16, 2, s_f16, f16) == XS_OK, "add f16");
    CHECK(xs_gguf_writer_add(w, "w.bf16", XS_BF16, 1, s_bf16, bf16) == XS_OK, "add bf16");
    CHECK(xs_gguf_writer_add(w, "w.q8", XS_Q8_0, 2, s_q8, q8) == XS_OK, "add q8_0");
    CHECK(xs_gguf_writer_add(w, "w.q4", XS_Q4_0, 2, s_q4, q4) == XS_OK, "add q4_0");
    CHECK(xs_gguf_writer_add(w, "norm.alpha", XS_F32, 3, s_norm, norm) == XS_OK, "add rank-3");
    int64_t bad[2] = {2, 48};
    CHECK(xs_gguf_writer_add(w, "bad.q8", XS_Q8_0, 2, bad, q8) == XS_ERR_SHAPE, "q8_0 with 48 columns refused");
    CHECK(xs_gguf_writer_add(w, "bad.i64", XS_I64, 1, s_bf16, f32) == XS_ERR_DTYPE, "i64 refused");
    const char *path = tmp_file(version == 2 ? "v2" : "v3");
    CHECK(xs_gguf_writer_save(w, path) == XS_OK, "save: %s", xs_error_msg());
    xs_gguf_writer_free(w);

    xs_gguf *g = NULL;
    CHECK(xs_gguf_open(path, &g) == XS_OK, "open v%u: %s", version, xs_error_msg());
    if (!g) return;
    CHECK(xs_gguf_version(g) == version, "version %u", xs_gguf_version(g));
    CHECK(xs_gguf_alignment(g) == 32 && xs_gguf_data_offset(g) % 32 == 0, "alignment 32");
    check_all_kv(g);
    CHECK(xs_gguf_count(g) == 6, "6 tensors");
    static const char *order[] = {"w.f32", "w.f16", "w.bf16", "w.q8", "w.q4", "norm.alpha"};
    for (int i = 0; i < 6; i++) {
        const xs_tensor *t = xs_gguf_at(g, i);
        CHECK(t && !strcmp(t->name, order[i]), "tensor %d is %s", i, order[i]);
        CHECK(t && xs_gguf_find(g, order[i]) == t, "find %s", order[i]);
    }
    const xs_tensor *t = xs_gguf_find(g, "w.f32");
    CHECK(t && t->dtype == XS_F32 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 64 &&
          !memcmp(t->data, f32, sizeof f32), "f32 tensor");
    t = xs_gguf_find(g, "w.f16");
    CHECK(t && t->dtype == XS_F16 && t->shape[0] == 2 && t->shape[1] == 32 && !memcmp(t->data, f16, sizeof f16),
          "f16 tensor");
    t = xs_gguf_find(g, "w.bf16");
    CHECK(t && t->dtype == XS_BF16 && t->ndim == 1 && t->shape[0] == 4 && !memcmp(t->data, bf16, sizeof bf16),
          "bf16 tensor");
    t = xs_gguf_find(g, "w.q8");
    CHECK(t && t->dtype == XS_Q8_0 && t->shape[0] == 2 && t->shape[1] == 64 && !memcmp(t->data, q8, sizeof q8),
          "q8_0 tensor");
    t = xs_gguf_find(g, "w.q4");
    CHECK(t && t->dtype == XS_Q4_0 && t->shape[0] == 1 && t->shape[1] == 32 && !memcmp(t->data, q4, sizeof q4),
          "q4_0 tensor");
    t = xs_gguf_find(g, "norm.alpha");
    CHECK(t && t->ndim == 3 && t->shape[0] == 1 && t->shape[1] == 1 && t->shape[2] == 64 &&
          !memcmp(t->data, norm, sizeof norm), "rank-3 norm keeps rank 3");
    for (int i = 0; i < xs_gguf_count(g); i++) {
        const xs_tensor *u = xs_gguf_at(g, i);
        const uint8_t *first = xs_gguf_at(g, 0)->data;
        CHECK(((const uint8_t *)u->data - first) % 32 == 0, "%s data aligned to 32", u->name);
    }
    xs_gguf_close(g);

    /* file size = data start + each tensor padded to 32 */
    struct stat sb;
    stat(path, &sb);
    uint64_t padded = 768 + 128 + 32 + 160 + 32 + 256; /* bf16 8 -> 32, q8_0 136 -> 160, q4_0 18 -> 32 */
    xs_gguf *g2 = NULL;
    xs_gguf_open(path, &g2);
    CHECK(g2 && (uint64_t)sb.st_size == xs_gguf_data_offset(g2) + padded, "file size %lld", (long long)sb.st_size);
    xs_gguf_close(g2);
    unlink(path);
}

/* ---- lazy tensors and a non-default alignment ------------------------------ */

static xs_status fill_ramp(void *user, int i, void *dst, size_t nbytes) {
    int *calls = user;
    (*calls)++;
    for (size_t k = 0; k < nbytes / 4; k++) ((float *)dst)[k] = (float)(i * 1000 + (int)k);
    return XS_OK;
}

static xs_status fill_fail(void *user, int i, void *dst, size_t nbytes) {
    (void)user; (void)dst; (void)nbytes;
    return xs_error(XS_ERR_IO, "tensor %d: source vanished", i);
}

static void test_lazy_and_alignment(void) {
    xs_gguf_writer *w = xs_gguf_writer_new(3);
    int calls = 0;
    int64_t s1[1] = {5}, s2[2] = {3, 7};
    CHECK(xs_gguf_writer_set(w, "general.alignment", xs_gguf_value_new_int(XS_GGUF_UINT32, 64)) == XS_OK, "align 64");
    CHECK(xs_gguf_writer_set(w, "general.alignment", xs_gguf_value_new_int(XS_GGUF_UINT32, 48)) == XS_ERR_ARG,
          "align 48 refused");
    CHECK(xs_gguf_writer_add_lazy(w, "a", XS_F32, 1, s1, fill_ramp, &calls) == XS_OK, "lazy a");
    CHECK(xs_gguf_writer_add_lazy(w, "b", XS_F32, 2, s2, fill_ramp, &calls) == XS_OK, "lazy b");
    CHECK(calls == 0, "nothing filled before save");
    const char *path = tmp_file("lazy");
    CHECK(xs_gguf_writer_save(w, path) == XS_OK, "save lazy: %s", xs_error_msg());
    CHECK(calls == 2, "each tensor filled once (%d)", calls);
    xs_gguf_writer_free(w);
    xs_gguf *g = NULL;
    CHECK(xs_gguf_open(path, &g) == XS_OK, "open lazy: %s", xs_error_msg());
    if (g) {
        CHECK(xs_gguf_alignment(g) == 64 && xs_gguf_data_offset(g) % 64 == 0, "alignment 64 read back");
        const xs_tensor *a = xs_gguf_find(g, "a"), *b = xs_gguf_find(g, "b");
        CHECK(a && ((const float *)a->data)[4] == 4.0f, "a values");
        CHECK(b && ((const float *)b->data)[20] == 1020.0f, "b values");
        CHECK(b && (const uint8_t *)b->data - (const uint8_t *)a->data == 64, "b starts 64 bytes after a");
        xs_gguf_close(g);
    }
    unlink(path);

    w = xs_gguf_writer_new(2);
    CHECK(xs_gguf_writer_add_lazy(w, "a", XS_F32, 1, s1, fill_fail, NULL) == XS_OK, "lazy failing");
    CHECK(xs_gguf_writer_save(w, path) == XS_ERR_IO, "fill error returned");
    CHECK(strstr(xs_error_msg(), "vanished") != NULL, "fill message kept: %s", xs_error_msg());
    CHECK(access(path, F_OK) != 0, "no output file after a failed save");
    xs_gguf_writer_free(w);
    CHECK(xs_gguf_writer_new(1) == NULL && xs_gguf_writer_new(4) == NULL, "only versions 2 and 3");
}

/* ---- malformed files ------------------------------------------------------- */

typedef struct bytes {
    uint8_t b[4096];
    size_t n;
} bytes;

static void put(bytes *x, const void *p, size_t n) {
    memcpy(x->b + x->n, p, n);
    x->n += n;
}
static void put_u32(bytes *x, uint32_t v) { put(x, &v, 4); } /* little-endian host */
static void put_u64(bytes *x, uint64_t v) { put(x, &v, 8); }
static void put_str(bytes *x, const char *s) {
    put_u64(x, strlen(s));
    put(x, s, strlen(s));
}
static void header(bytes *x, uint32_t version, uint64_t nt, uint64_t nkv) {
    x->n = 0;
    put(x, "GGUF", 4);
    put_u32(x, version);
    put_u64(x, nt);
    put_u64(x, nkv);
}
static void tensor_info(bytes *x, const char *name, uint64_t ne0, uint64_t ne1, uint32_t type, uint64_t off) {
    put_str(x, name);
    put_u32(x, 2);
    put_u64(x, ne0);
    put_u64(x, ne1);
    put_u32(x, type);
    put_u64(x, off);
}
static void pad_data(bytes *x, size_t data_bytes) {
    while (x->n % 32) x->b[x->n++] = 0;
    for (size_t i = 0; i < data_bytes; i++) x->b[x->n++] = (uint8_t)(i + 1);
}

static void expect_bad(const bytes *x, xs_status want, const char *what, const char *mention) {
    xs_gguf *g = (xs_gguf *)0x1;
    xs_error_clear();
    xs_status rc = xs_gguf_open_memory(x->b, x->n, "bad.gguf", &g);
    CHECK(rc == want, "%s: status %d, want %d (%s)", what, rc, want, xs_error_msg());
    CHECK(g == (xs_gguf *)0x1, "%s: out-parameter untouched", what);
    CHECK(strstr(xs_error_msg(), "bad.gguf") != NULL, "%s: names the file: %s", what, xs_error_msg());
    CHECK(!mention || strstr(xs_error_msg(), mention) != NULL, "%s: mentions '%s': %s", what, mention ? mention : "",
          xs_error_msg());
    if (rc == XS_OK) xs_gguf_close(g);
}

static void test_bad_files(void) {
    bytes x;
    /* the good file the cases below break */
    header(&x, 3, 1, 0);
    tensor_info(&x, "w", 32, 2, 0, 0);
    pad_data(&x, 256);
    xs_gguf *g = NULL;
    CHECK(xs_gguf_open_memory(x.b, x.n, "good.gguf", &g) == XS_OK, "base case valid: %s", xs_error_msg());
    if (g) {
        CHECK(xs_gguf_find(g, "w")->shape[0] == 2 && xs_gguf_find(g, "w")->shape[1] == 32, "ne reversed");
        xs_gguf_close(g);
    }
    x.b[0] = 'X';
    expect_bad(&x, XS_ERR_FORMAT, "bad magic", "magic");
    x.n = 3;
    expect_bad(&x, XS_ERR_FORMAT, "3-byte file", "magic");
    header(&x, 1, 0, 0);
    expect_bad(&x, XS_ERR_UNSUPPORTED, "version 1", "version");
    header(&x, 0x03000000u, 0, 0);
    expect_bad(&x, XS_ERR_UNSUPPORTED, "big-endian version", "version");
    header(&x, 3, 1ull << 40, 0);
    pad_data(&x, 64);
    expect_bad(&x, XS_ERR_FORMAT, "absurd tensor count", "cannot fit");
    header(&x, 3, 0, 0xFFFFFFFFFFFFFFFFull);
    pad_data(&x, 64);
    expect_bad(&x, XS_ERR_FORMAT, "absurd kv count", "cannot fit");
    /* string length past the end */
    header(&x, 3, 0, 1);
    put_u64(&x, 1000);
    put(&x, "abc", 3);
    pad_data(&x, 16);
    expect_bad(&x, XS_ERR_FORMAT, "key length past the end", "past the end");
    header(&x, 3, 0, 1);
    put_str(&x, "k");
    put_u32(&x, XS_GGUF_STRING);
    put_u64(&x, 0xFFFFFFFFFFFFull);
    pad_data(&x, 16);
    expect_bad(&x, XS_ERR_FORMAT, "string value past the end", "past the end");
    header(&x, 3, 0, 1);
    put_str(&x, "k");
    put_u32(&x, XS_GGUF_ARRAY);
    put_u32(&x, XS_GGUF_UINT64);
    put_u64(&x, 1u << 30);
    pad_data(&x, 16);
    expect_bad(&x, XS_ERR_FORMAT, "array past the end", "'k'");
    header(&x, 3, 0, 1);
    put_str(&x, "k");
    put_u32(&x, 99);
    pad_data(&x, 16);
    expect_bad(&x, XS_ERR_FORMAT, "unknown value type", "'k'");
    header(&x, 3, 0, 1);
    put_str(&x, "k");
    put_u32(&x, XS_GGUF_ARRAY);
    for (int d = 0; d < 20; d++) { /* array of one array of one array ... */
        put_u32(&x, XS_GGUF_ARRAY);
        put_u64(&x, 1);
    }
    pad_data(&x, 16);
    expect_bad(&x, XS_ERR_FORMAT, "arrays nested too deep", "nested");
    header(&x, 3, 0, 1);
    put_str(&x, "general.alignment");
    put_u32(&x, XS_GGUF_UINT32);
    put_u32(&x, 24);
    pad_data(&x, 16);
    expect_bad(&x, XS_ERR_FORMAT, "alignment 24", "alignment");
    /* unsupported tensor type: Q4_K = 12 */
    header(&x, 3, 1, 0);
    tensor_info(&x, "blk.q4k", 256, 1, 12, 0);
    pad_data(&x, 256);
    expect_bad(&x, XS_ERR_DTYPE, "unsupported tensor type", "'blk.q4k'");
    CHECK(strstr(xs_error_msg(), "12") != NULL, "type id named: %s", xs_error_msg());
    header(&x, 3, 1, 0);
    tensor_info(&x, "w", 32, 2, 0, 16);
    pad_data(&x, 512);
    expect_bad(&x, XS_ERR_FORMAT, "misaligned offset", "alignment");
    header(&x, 3, 1, 0);
    tensor_info(&x, "w", 32, 2, 0, 64);
    pad_data(&x, 256);
    expect_bad(&x, XS_ERR_FORMAT, "data past the end", "'w'");
    header(&x, 3, 1, 0);
    tensor_info(&x, "w", 32, 2, 0, 0xFFFFFFFFFFFFFFE0ull);
    pad_data(&x, 256);
    expect_bad(&x, XS_ERR_FORMAT, "huge offset", "'w'");
    header(&x, 3, 2, 0);
    tensor_info(&x, "a", 32, 2, 0, 0);
    tensor_info(&x, "b", 32, 2, 0, 128);
    pad_data(&x, 512);
    expect_bad(&x, XS_ERR_FORMAT, "overlapping tensors", "overlap");
    header(&x, 3, 2, 0);
    tensor_info(&x, "a", 32, 2, 0, 0);
    tensor_info(&x, "a", 32, 2, 0, 256);
    pad_data(&x, 512);
    expect_bad(&x, XS_ERR_FORMAT, "duplicate tensor", "twice");
    header(&x, 3, 1, 0);
    tensor_info(&x, "q", 48, 2, 8, 0);
    pad_data(&x, 256);
    expect_bad(&x, XS_ERR_FORMAT, "q8_0 row not whole blocks", "'q'");
    header(&x, 3, 1, 0);
    tensor_info(&x, "big", 1ull << 40, 1ull << 40, 0, 0);
    pad_data(&x, 64);
    expect_bad(&x, XS_ERR_FORMAT, "shape overflow", "'big'");
    header(&x, 3, 1, 0);
    put_str(&x, "r5");
    put_u32(&x, 5);
    for (int d = 0; d < 5; d++) put_u64(&x, 1);
    put_u32(&x, 0);
    put_u64(&x, 0);
    pad_data(&x, 64);
    expect_bad(&x, XS_ERR_UNSUPPORTED, "rank 5", "'r5'");

    const char *empty = tmp_file("empty");
    FILE *f = fopen(empty, "wb");
    if (f) fclose(f);
    g = NULL;
    CHECK(xs_gguf_open(empty, &g) == XS_ERR_FORMAT && !g, "empty file -> format");
    CHECK(strstr(xs_error_msg(), empty) != NULL, "empty file named: %s", xs_error_msg());
    unlink(empty);
}

/* ---- the golden candle Q8_0 file -------------------------------------------- */

static void test_golden(void) {
    xs_gguf *g = NULL;
    xs_safetensors *src = NULL, *deq = NULL;
    const char *p = golden_path("lm_tiny_candle_q8/model.q8.gguf");
    CHECK(xs_gguf_open(p, &g) == XS_OK, "open %s: %s", p, xs_error_msg());
    CHECK(xs_st_open(golden_path("lm_tiny_candle_q8/model.candle.safetensors"), &src) == XS_OK, "open source");
    CHECK(xs_st_open(golden_path("lm_tiny_candle_q8/dequant.safetensors"), &deq) == XS_OK, "open dequant");
    if (!g || !src || !deq) goto out;
    CHECK(xs_gguf_version(g) == 2, "version 2");
    CHECK(xs_gguf_kv_count(g) == 0, "no key/values");
    CHECK(xs_gguf_count(g) == 151, "151 tensors (%d)", xs_gguf_count(g));
    CHECK(xs_gguf_data_offset(g) == 12800, "data at 12800 (%llu)", (unsigned long long)xs_gguf_data_offset(g));
    int n_q8 = 0, n_f32 = 0, n_deq = 0, q8_bytes_equal = 0;
    double worst = 0;
    for (int i = 0; i < xs_gguf_count(g); i++) {
        const xs_tensor *t = xs_gguf_at(g, i);
        const xs_tensor *s = xs_st_find(src, t->name);
        CHECK(s != NULL, "%s in the f32 source", t->name);
        if (!s) continue;
        CHECK(xs_tensor_same_shape(t, s), "%s same shape as the source", t->name);
        int64_t n = xs_tensor_numel(t);
        const float *x = s->data;
        if (t->dtype == XS_F32) {
            n_f32++;
            CHECK(!memcmp(t->data, s->data, (size_t)n * 4), "%s f32 equals source", t->name);
            continue;
        }
        CHECK(t->dtype == XS_Q8_0, "%s is q8_0", t->name);
        if (t->dtype != XS_Q8_0) continue;
        n_q8++;
        float *y = malloc((size_t)n * sizeof *y);
        CHECK(xs_convert_to_f32(y, t->data, XS_Q8_0, n) == XS_OK, "%s dequantize", t->name);
        /* Q8_0 error bound: half a step of the block scale (plus f16 rounding of d). */
        for (int64_t b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int k = 0; k < 32; k++) amax = fmaxf(amax, fabsf(x[b * 32 + k]));
            for (int k = 0; k < 32; k++) {
                double e = fabs((double)y[b * 32 + k] - x[b * 32 + k]);
                double bound = amax / 127.0 * 0.5 + amax * 1e-3 + 1e-12;
                if (e > bound) worst = fmax(worst, e / bound);
            }
        }
        const xs_tensor *d = xs_st_find(deq, t->name);
        if (d) {
            n_deq++;
            CHECK(!memcmp(d->data, y, (size_t)n * 4), "%s dequantization bit-exact vs dequant.safetensors",
                  t->name);
        }
        /* Re-quantizing the f32 source gives the file's bytes (ggml's reference rule). */
        xs_block_q8_0 *q = malloc((size_t)(n / 32) * sizeof *q);
        xs_quantize_row_q8_0(x, q, n);
        if (!memcmp(q, t->data, (size_t)(n / 32) * sizeof *q)) q8_bytes_equal++;
        free(q);
        free(y);
    }
    CHECK(n_q8 == 96 && n_f32 == 55, "96 q8_0 + 55 f32 (%d + %d)", n_q8, n_f32);
    CHECK(n_deq == 4, "4 tensors checked against dequant.safetensors (%d)", n_deq);
    CHECK(worst == 0, "q8_0 values within half a quantization step of the source (worst ratio %g)", worst);
    CHECK(q8_bytes_equal == 96, "re-quantized source equals the file for %d of 96 tensors", q8_bytes_equal);
out:
    xs_gguf_close(g);
    xs_st_close(src);
    xs_st_close(deq);
}

int main(void) {
    test_round_trip(2);
    test_round_trip(3);
    test_lazy_and_alignment();
    test_bad_files();
    test_golden();
    return test_summary("test_formats_gguf");
}
