/*
 * test_formats_weights.c — open by content, layout detection (golden files
 * and files rebuilt from the real checkpoints' name listings), and the
 * messages of xs_weights_expect.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "formats/weights.h"
#include "testutil.h"

static void check_file(const char *rel, const char *format, xs_layout layout, int count) {
    xs_weights *w = NULL;
    const char *p = golden_path(rel);
    CHECK(xs_weights_open(p, &w) == XS_OK, "open %s: %s", rel, xs_error_msg());
    if (!w) return;
    CHECK(!strcmp(xs_weights_format(w), format), "%s format %s", rel, xs_weights_format(w));
    CHECK(xs_weights_layout(w) == layout, "%s layout %s, want %s", rel, xs_layout_name(xs_weights_layout(w)),
          xs_layout_name(layout));
    CHECK(xs_weights_count(w) == count, "%s count %d, want %d", rel, xs_weights_count(w), count);
    CHECK(!strcmp(xs_weights_path(w), p), "path kept");
    CHECK(xs_weights_at(w, count) == NULL && xs_weights_at(w, -1) == NULL, "at out of range");
    for (int i = 0; i < xs_weights_count(w); i++) {
        const xs_tensor *t = xs_weights_at(w, i);
        if (xs_weights_find(w, t->name) != t) {
            CHECK(0, "%s: find(at(%d)) is at(%d)", rel, i, i);
            break;
        }
    }
    xs_weights_close(w);
}

/* Rebuild a file with every name of a real checkpoint listing (1 element
 * each, the listed dtype) and check the detected layout. */
static void check_listing(const char *rel, xs_layout want) {
    FILE *f = fopen(golden_path(rel), "rb");
    CHECK(f != NULL, "open %s", rel);
    if (!f) return;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *txt = malloc((size_t)n + 1);
    CHECK(fread(txt, 1, (size_t)n, f) == (size_t)n, "read %s", rel);
    txt[n] = 0;
    fclose(f);
    cJSON *root = cJSON_Parse(txt);
    free(txt);
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    CHECK(cJSON_IsArray(ts), "%s has a tensors list", rel);
    xs_st_writer *w = xs_st_writer_new();
    uint8_t zero[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int count = 0;
    for (const cJSON *t = ts ? ts->child : NULL; t; t = t->next) {
        const char *name = cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
        int dt = xs_dtype_from_name(cJSON_GetObjectItemCaseSensitive(t, "dtype")->valuestring);
        int64_t one = 1;
        CHECK(dt >= 0 && xs_st_writer_add(w, name, (xs_dtype)dt, 1, &one, zero) == XS_OK, "%s: add %s", rel, name);
        count++;
    }
    char path[256];
    snprintf(path, sizeof path, "/tmp/xs_test_weights_%d.safetensors", (int)getpid());
    CHECK(xs_st_writer_save(w, path) == XS_OK, "save listing file");
    xs_st_writer_free(w);
    cJSON_Delete(root);
    xs_weights *wt = NULL;
    CHECK(xs_weights_open(path, &wt) == XS_OK, "open listing file: %s", xs_error_msg());
    if (wt) {
        CHECK(xs_weights_count(wt) == count, "%s: %d tensors", rel, count);
        CHECK(xs_weights_layout(wt) == want, "%s layout %s, want %s", rel, xs_layout_name(xs_weights_layout(wt)),
              xs_layout_name(want));
        xs_weights_close(wt);
    }
    unlink(path);
}

static void test_expect(void) {
    xs_weights *w = NULL;
    const char *p = golden_path("lm_tiny/model.safetensors");
    CHECK(xs_weights_open(p, &w) == XS_OK, "open lm_tiny");
    if (!w) return;
    const xs_tensor *t = NULL;
    int64_t good[2] = {32, 88}, bad[2] = {512, 256};
    const char *name = "depformer.layers.0.gating.0.linear_out.weight";
    CHECK(xs_weights_expect(w, name, XS_F32, 2, good, &t) == XS_OK && t && t->shape[1] == 88, "expect ok");
    t = NULL;
    CHECK(xs_weights_expect(w, name, -1, 0, NULL, &t) == XS_OK && t, "expect, no checks");
    CHECK(xs_weights_expect(w, name, XS_F32, 2, bad, &t) == XS_ERR_SHAPE, "shape mismatch");
    char want[512];
    snprintf(want, sizeof want, "%s: tensor '%s' has shape [32, 88], expected [512, 256]", p, name);
    CHECK(!strcmp(xs_error_msg(), want), "shape message: %s", xs_error_msg());
    CHECK(xs_weights_expect(w, name, XS_BF16, 2, good, NULL) == XS_ERR_DTYPE, "dtype mismatch");
    CHECK(strstr(xs_error_msg(), "has dtype f32, expected bf16") != NULL, "dtype message: %s", xs_error_msg());
    t = (const xs_tensor *)0x1;
    CHECK(xs_weights_expect(w, "nope.weight", XS_F32, 2, bad, &t) == XS_ERR_NOT_FOUND, "missing");
    CHECK(t == (const xs_tensor *)0x1, "out untouched on error");
    snprintf(want, sizeof want, "%s: tensor 'nope.weight' missing (expected f32 [512, 256])", p);
    CHECK(!strcmp(xs_error_msg(), want), "missing message: %s", xs_error_msg());
    CHECK(xs_weights_find(w, "nope.weight") == NULL, "find absent -> NULL");
    xs_weights_close(w);

    w = (xs_weights *)0x1;
    CHECK(xs_weights_open("/nonexistent/m.safetensors", &w) == XS_ERR_IO && w == (xs_weights *)0x1,
          "missing file -> io, out untouched");
    CHECK(strstr(xs_error_msg(), "/nonexistent/m.safetensors") != NULL, "names the file");
    char path[256];
    snprintf(path, sizeof path, "/tmp/xs_test_weights_bad_%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    fwrite("GGUF\x03\0\0\0garbage", 1, 15, f);
    fclose(f);
    CHECK(xs_weights_open(path, &w) == XS_ERR_FORMAT, "truncated gguf -> format");
    CHECK(strstr(xs_error_msg(), path) != NULL, "names the file: %s", xs_error_msg());
    unlink(path);
}

int main(void) {
    check_file("lm_tiny/model.safetensors", "safetensors", XS_LAYOUT_PYTORCH, 95);
    check_file("lm_tiny/model.bf16.safetensors", "safetensors", XS_LAYOUT_PYTORCH, 95);
    check_file("kyutai_test_lm/test_lm_model.safetensors", "safetensors", XS_LAYOUT_PYTORCH, 54);
    check_file("lm_tiny_candle_q8/model.q8.gguf", "gguf", XS_LAYOUT_CANDLE, 151);
    check_file("lm_tiny_candle_q8/model.candle.safetensors", "safetensors", XS_LAYOUT_CANDLE, 151);
    check_file("mimi_tiny/model.safetensors", "safetensors", XS_LAYOUT_MIMI, 150);
    check_file("lm_tiny/golden.safetensors", "safetensors", XS_LAYOUT_UNKNOWN, 16);
    check_listing("real_checkpoints/moshi_7b_pytorch.json", XS_LAYOUT_PYTORCH);
    check_listing("real_checkpoints/moshi_7b_pytorch_q8.json", XS_LAYOUT_PYTORCH_INT8);
    check_listing("real_checkpoints/moshi_7b_candle.json", XS_LAYOUT_CANDLE);
    check_listing("real_checkpoints/mimi.json", XS_LAYOUT_MIMI);
    test_expect();
    return test_summary("test_formats_weights");
}
