/*
 * test_formats_safetensors.c — writer -> reader round trip for every dtype,
 * every class of malformed file (status + message naming the file), and the
 * golden model files.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "testutil.h"

static char g_tmp[256];

static const char *tmp_file(const char *what) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/xs_test_st_%d_%s.safetensors", (int)getpid(), what);
    return g_tmp;
}

static size_t elem_size(xs_dtype t) {
    switch (t) {
    case XS_F32: case XS_I32: return 4;
    case XS_F16: case XS_BF16: return 2;
    case XS_I64: return 8;
    default: return 1;
    }
}

static void test_round_trip(void) {
    static const xs_dtype types[] = {XS_F32, XS_F16, XS_BF16, XS_I64, XS_I32, XS_I8, XS_U8, XS_BOOL};
    enum { NT = sizeof types / sizeof types[0] };
    static const char *names[NT] = {"a.f32", "b.f16", "c.bf16", "d.i64", "e.i32", "f.i8", "g.u8", "h.bool"};
    uint8_t *bufs[NT];
    int64_t shape[3] = {3, 5, 7};
    xs_st_writer *w = xs_st_writer_new();
    CHECK(w != NULL, "writer allocated");
    for (int i = 0; i < NT; i++) {
        size_t n = 3 * 5 * 7 * elem_size(types[i]);
        bufs[i] = malloc(n);
        for (size_t k = 0; k < n; k++) bufs[i][k] = (uint8_t)(k * 31 + i * 7 + 1);
        if (types[i] == XS_BOOL)
            for (size_t k = 0; k < n; k++) bufs[i][k] &= 1;
        int ndim = 1 + i % 3; /* ranks 1, 2, 3 */
        int64_t s[3] = {3, 5, 7};
        if (ndim == 1) s[0] = 105;
        if (ndim == 2) { s[0] = 15; s[1] = 7; }
        CHECK(xs_st_writer_add(w, names[i], types[i], ndim, ndim == 3 ? shape : s, bufs[i]) == XS_OK,
              "add %s: %s", names[i], xs_error_msg());
    }
    float scalar = 2.5f;
    CHECK(xs_st_writer_add(w, "scalar", XS_F32, 0, NULL, &scalar) == XS_OK, "add scalar");
    int64_t zshape[2] = {0, 4};
    CHECK(xs_st_writer_add(w, "empty", XS_F32, 2, zshape, NULL) == XS_OK, "add empty tensor");
    /* a name needing JSON escapes */
    CHECK(xs_st_writer_add(w, "we\"ird\\name", XS_F32, 0, NULL, &scalar) == XS_OK, "add odd name");
    CHECK(xs_st_writer_add(w, "a.f32", XS_F32, 0, NULL, &scalar) != XS_OK, "duplicate name refused");
    CHECK(xs_st_writer_set_metadata(w, "format", "pt") == XS_OK, "metadata");
    CHECK(xs_st_writer_set_metadata(w, "note", "line\nbreak") == XS_OK, "metadata 2");
    const char *path = tmp_file("rt");
    CHECK(xs_st_writer_save(w, path) == XS_OK, "save: %s", xs_error_msg());
    xs_st_writer_free(w);

    /* Header length is a multiple of 8 (data block 8-byte aligned). */
    FILE *f = fopen(path, "rb");
    uint8_t len8[8] = {0};
    CHECK(f && fread(len8, 1, 8, f) == 8, "read header length");
    if (f) fclose(f);
    uint64_t hn = 0;
    for (int i = 7; i >= 0; i--) hn = hn << 8 | len8[i];
    CHECK(hn % 8 == 0 && hn > 0, "header length %llu is a positive multiple of 8", (unsigned long long)hn);

    xs_safetensors *st = NULL;
    CHECK(xs_st_open(path, &st) == XS_OK, "open: %s", xs_error_msg());
    if (!st) return;
    CHECK(xs_st_count(st) == NT + 3, "count %d", xs_st_count(st));
    for (int i = 0; i < NT; i++) {
        const xs_tensor *t = xs_st_at(st, i);
        CHECK(t && !strcmp(t->name, names[i]), "tensor %d in add order", i);
        const xs_tensor *u = xs_st_find(st, names[i]);
        CHECK(u == t, "find %s", names[i]);
        if (!t) continue;
        CHECK(t->dtype == types[i], "%s dtype %d", names[i], (int)t->dtype);
        CHECK(t->ndim == 1 + i % 3, "%s rank %d", names[i], t->ndim);
        CHECK(xs_tensor_numel(t) == 105, "%s numel", names[i]);
        CHECK(t->stride[t->ndim - 1] == 1, "%s contiguous", names[i]);
        CHECK(memcmp(t->data, bufs[i], 105 * elem_size(types[i])) == 0, "%s bytes equal", names[i]);
    }
    const xs_tensor *s = xs_st_find(st, "scalar");
    /* The data block is laid out by element size, so every view is aligned
     * even though a 105-byte bool tensor was added before this f32. */
    for (int i = 0; i < xs_st_count(st); i++) {
        const xs_tensor *u = xs_st_at(st, i);
        CHECK((uintptr_t)u->data % elem_size(u->dtype) == 0, "%s aligned to its element size", u->name);
    }
    CHECK(s && s->ndim == 0 && *(const float *)s->data == 2.5f, "scalar round trip");
    const xs_tensor *e = xs_st_find(st, "empty");
    CHECK(e && e->ndim == 2 && e->shape[0] == 0 && e->shape[1] == 4, "empty tensor round trip");
    CHECK(xs_st_find(st, "we\"ird\\name") != NULL, "escaped name round trip");
    CHECK(xs_st_find(st, "nope") == NULL, "absent name -> NULL");
    CHECK(xs_st_at(st, -1) == NULL && xs_st_at(st, 1000) == NULL, "at out of range -> NULL");
    const char *m = xs_st_metadata(st, "format");
    CHECK(m && !strcmp(m, "pt"), "metadata format=pt");
    m = xs_st_metadata(st, "note");
    CHECK(m && !strcmp(m, "line\nbreak"), "metadata with newline");
    CHECK(xs_st_metadata(st, "absent") == NULL, "absent metadata -> NULL");
    xs_st_close(st);
    for (int i = 0; i < NT; i++) free(bufs[i]);
    unlink(path);

    w = xs_st_writer_new();
    CHECK(xs_st_writer_add(w, "q", XS_Q8_0, 1, shape, bufs) != XS_OK, "q8_0 refused by safetensors writer");
    xs_st_writer_free(w);
}

/* Build a file image: 8-byte length + header + data bytes. */
static size_t make_file(uint8_t *out, size_t cap, const char *header, uint64_t declared_len, size_t data_bytes) {
    size_t hn = strlen(header);
    size_t n = 8 + hn + data_bytes;
    if (n > cap) return 0;
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(declared_len >> (8 * i));
    memcpy(out + 8, header, hn);
    for (size_t k = 0; k < data_bytes; k++) out[8 + hn + k] = (uint8_t)(k + 1);
    return n;
}

typedef struct bad_case {
    const char *what, *header;
    int64_t len_delta; /* declared header length = strlen + delta */
    size_t data;
    size_t truncate;   /* if nonzero, keep only this many bytes */
    xs_status want;
    const char *must_mention; /* besides the label */
} bad_case;

static void test_bad_files(void) {
    static const bad_case cases[] = {
        {"truncated header", "{}", 0, 0, 5, XS_ERR_FORMAT, "8-byte"},
        {"header longer than file", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 100, 4,
         0, XS_ERR_FORMAT, "past the end"},
        {"offsets past the end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 8, 0,
         XS_ERR_FORMAT, "'a'"},
        {"overlapping tensors",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 12, 0, XS_ERR_FORMAT, "overlap"},
        {"unknown dtype", "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 0, 8, 0,
         XS_ERR_DTYPE, "'w'"},
        {"shape/size mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 0, 12, 0,
         XS_ERR_FORMAT, "'w'"},
        {"bad JSON", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],", 0, 4, 0, XS_ERR_FORMAT, "JSON"},
        {"not an object", "[1,2,3]", 0, 0, 0, XS_ERR_FORMAT, "object"},
        {"negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 0, 4, 0,
         XS_ERR_FORMAT, "'w'"},
        {"fractional dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 0, 4, 0,
         XS_ERR_FORMAT, "'w'"},
        {"shape overflow",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", 0, 4, 0,
         XS_ERR_FORMAT, "overflow"},
        {"backwards offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 0, 4, 0,
         XS_ERR_FORMAT, "'w'"},
        {"missing dtype", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 0, 4, 0, XS_ERR_FORMAT, "dtype"},
        {"three offsets", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 0, 4, 0,
         XS_ERR_FORMAT, "data_offsets"},
        {"rank 5", "{\"w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", 0, 1, 0,
         XS_ERR_UNSUPPORTED, "'w'"},
        {"metadata not strings", "{\"__metadata__\":{\"k\":3}}", 0, 0, 0, XS_ERR_FORMAT, "__metadata__"},
        {"duplicate name",
         "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 0, 2, 0, XS_ERR_FORMAT, "twice"},
        {"trailing garbage", "{}xyz", 0, 0, 0, XS_ERR_FORMAT, "trailing"},
    };
    static uint8_t img[4096];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const bad_case *k = &cases[c];
        size_t n = make_file(img, sizeof img, k->header, (uint64_t)((int64_t)strlen(k->header) + k->len_delta),
                             k->data);
        if (k->truncate) n = k->truncate;
        xs_safetensors *st = (xs_safetensors *)0x1; /* must stay unchanged on error */
        xs_error_clear();
        xs_status rc = xs_st_open_memory(img, n, "bad.safetensors", &st);
        CHECK(rc == k->want, "%s: status %d, want %d (%s)", k->what, rc, k->want, xs_error_msg());
        CHECK(st == (xs_safetensors *)0x1, "%s: out-parameter untouched", k->what);
        CHECK(strstr(xs_error_msg(), "bad.safetensors") != NULL, "%s: message names the file: %s", k->what,
              xs_error_msg());
        CHECK(strstr(xs_error_msg(), k->must_mention) != NULL, "%s: message mentions %s: %s", k->what,
              k->must_mention, xs_error_msg());
        if (rc == XS_OK) xs_st_close(st);
    }

    /* A valid file with a hole and an empty tensor at the same offset is fine. */
    const char *ok = "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
                     "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                     "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}";
    size_t n = make_file(img, sizeof img, ok, strlen(ok), 6);
    xs_safetensors *st = NULL;
    CHECK(xs_st_open_memory(img, n, "ok", &st) == XS_OK, "hole + empty tensor accepted: %s", xs_error_msg());
    if (st) {
        const xs_tensor *b = xs_st_find(st, "b");
        CHECK(b && ((const uint8_t *)b->data)[0] == 5 && ((const uint8_t *)b->data)[1] == 6, "b's bytes");
        xs_st_close(st);
    }

    /* Files: empty, missing. */
    const char *path = tmp_file("empty");
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
    st = NULL;
    CHECK(xs_st_open(path, &st) == XS_ERR_FORMAT && st == NULL, "empty file -> format error");
    CHECK(strstr(xs_error_msg(), path) != NULL, "empty file: message names it: %s", xs_error_msg());
    unlink(path);
    CHECK(xs_st_open("/nonexistent/x.safetensors", &st) == XS_ERR_IO && st == NULL, "missing file -> io");
    CHECK(strstr(xs_error_msg(), "/nonexistent/x.safetensors") != NULL, "missing: named");
}

static void test_golden(void) {
    xs_safetensors *st = NULL;
    const char *p = golden_path("lm_tiny/model.safetensors");
    CHECK(xs_st_open(p, &st) == XS_OK, "open %s: %s", p, xs_error_msg());
    if (!st) return;
    CHECK(xs_st_count(st) == 95, "lm_tiny has 95 tensors (%d)", xs_st_count(st));
    const xs_tensor *t = xs_st_find(st, "depformer.layers.0.gating.0.linear_out.weight");
    CHECK(t && t->dtype == XS_F32 && t->ndim == 2 && t->shape[0] == 32 && t->shape[1] == 88,
          "linear_out shape [32, 88]");
    const char *m = xs_st_metadata(st, "naming");
    CHECK(m && !strcmp(m, "kyutai-checkpoint"), "metadata naming");
    /* values are random, never all zero */
    if (t) {
        float s = 0;
        for (int i = 0; i < 32 * 88; i++) s += ((const float *)t->data)[i] * ((const float *)t->data)[i];
        CHECK(s > 0, "weights not all zero");
    }
    xs_st_close(st);

    st = NULL;
    p = golden_path("mimi_tiny/model.bf16.safetensors");
    CHECK(xs_st_open(p, &st) == XS_OK, "open %s: %s", p, xs_error_msg());
    if (st) {
        CHECK(xs_st_count(st) == 150, "mimi_tiny bf16 has 150 tensors");
        CHECK(xs_st_at(st, 0)->dtype == XS_BF16, "bf16 dtype");
        xs_st_close(st);
    }
}

int main(void) {
    test_round_trip();
    test_bad_files();
    test_golden();
    return test_summary("test_formats_safetensors");
}
