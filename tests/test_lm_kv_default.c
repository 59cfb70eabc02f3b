/*
 * test_lm_kv_default.c — the one default KV rule (lm_kv_dtype_default) and
 * the --kv names:
 *  - f32 weights keep an f32 cache; bf16, f16, q8_0, q4_0 weights get bf16;
 *  - applied to real files: lm_tiny f32 -> f32, its bf16 file -> bf16, the
 *    candle q8_0 GGUF -> bf16, through lm_model_set_kv_dtype(LM_KV_DEFAULT)
 *    (and lm_model_kv_bytes follows);
 *  - an explicit dtype wins; f16 / q4_0 caches are refused;
 *  - "f32", "bf16", "q8", "q8_0" parse, others do not.
 */
#include <stdio.h>
#include <string.h>

#include "backend/ops.h"
#include "model/lm.h"
#include "testutil.h"

static void check_file(xs_backend *be, const char *rel, const char *cfg, xs_dtype want) {
    lm_model *m = NULL;
    char model[4096], config[4096]; /* golden_path returns one static buffer */
    snprintf(model, sizeof model, "%s", golden_path(rel));
    snprintf(config, sizeof config, "%s", golden_path(cfg));
    CHECK(lm_model_load(model, config, be, &m) == XS_OK,
          "%s: load: %s", rel, xs_error_msg());
    if (!m) return;
    const size_t f32_bytes = lm_model_kv_bytes(m);
    CHECK(lm_model_kv_dtype_default(m) == want, "%s: default kv %s, want %s", rel,
          xs_dtype_name(lm_model_kv_dtype_default(m)), xs_dtype_name(want));
    CHECK(lm_model_set_kv_dtype(m, LM_KV_DEFAULT) == XS_OK && m->main.kv_dtype == want,
          "%s: set default -> %s", rel, xs_dtype_name(m->main.kv_dtype));
    /* main stack: 2 layers x 12 slots x 64 values x (k, v) */
    const size_t main_f32 = (size_t)2 * 12 * 64 * 2 * 4;
    const size_t want_bytes = want == XS_F32 ? f32_bytes : f32_bytes - main_f32 / 2;
    CHECK(lm_model_kv_bytes(m) == want_bytes, "%s: kv bytes %zu, want %zu", rel,
          lm_model_kv_bytes(m), want_bytes);
    CHECK(lm_model_set_kv_dtype(m, XS_F32) == XS_OK && m->main.kv_dtype == XS_F32 &&
              lm_model_kv_bytes(m) == f32_bytes,
          "%s: explicit f32 wins", rel);
    CHECK(lm_model_set_kv_dtype(m, XS_Q8_0) == XS_OK && m->main.kv_dtype == XS_Q8_0, "%s: q8", rel);
    CHECK(lm_model_set_kv_dtype(m, XS_F16) == XS_ERR_DTYPE, "%s: f16 cache refused", rel);
    CHECK(lm_model_set_kv_dtype(m, XS_Q4_0) == XS_ERR_DTYPE, "%s: q4_0 cache refused", rel);
    lm_model_free(m);
}

int main(void) {
    CHECK(lm_kv_dtype_default(XS_F32) == XS_F32, "f32 weights: f32 cache");
    const xs_dtype low[] = {XS_BF16, XS_F16, XS_Q8_0, XS_Q4_0};
    for (size_t i = 0; i < sizeof low / sizeof *low; i++)
        CHECK(lm_kv_dtype_default(low[i]) == XS_BF16, "%s weights: bf16 cache",
              xs_dtype_name(low[i]));
    CHECK(lm_model_kv_dtype_default(NULL) == XS_F32, "no model: f32");
    CHECK(lm_kv_dtype_parse("f32") == XS_F32 && lm_kv_dtype_parse("bf16") == XS_BF16 &&
              lm_kv_dtype_parse("q8") == XS_Q8_0 && lm_kv_dtype_parse("q8_0") == XS_Q8_0,
          "names parse");
    CHECK(lm_kv_dtype_parse("f16") < 0 && lm_kv_dtype_parse("q4") < 0 && lm_kv_dtype_parse("") < 0 &&
              lm_kv_dtype_parse(NULL) < 0,
          "other names refused");

    xs_backend *be = NULL;
    CHECK(xs_backend_open("cpu", 1, &be) == XS_OK, "open cpu");
    if (be) {
        check_file(be, "lm_tiny/model.safetensors", "lm_tiny/config.json", XS_F32);
        check_file(be, "lm_tiny/model.bf16.safetensors", "lm_tiny/config.json", XS_BF16);
        check_file(be, "lm_tiny_candle_q8/model.q8.gguf", "lm_tiny_candle_q8/config.json", XS_BF16);
        xs_backend_close(be);
    }
    return test_summary("test_lm_kv_default");
}
