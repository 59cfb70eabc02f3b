/*
 * lm_kv.c — which KV cache dtype an LM gets: the one default rule shared by
 * `lm`, `run`, `--dev`, `bench lm` and the pipeline, and the --kv names.
 *
 * Why the rule follows the weights: Kyutai's KV cache has the model's dtype,
 * so a bf16 (or quantized, computed in bf16) model caches bf16 there, and a
 * bf16 cache halves the 7B's biggest per-session buffer. The tiny golden
 * models are f32 files whose goldens are f32 runs with an f32 cache: they
 * must keep f32 to stay exact. q8_0 is never a default: it is an explicit
 * memory-for-accuracy trade (--kv q8).
 */
#include <string.h>

#include "model/lm.h"

xs_dtype lm_kv_dtype_default(xs_dtype weight_dtype) {
    return weight_dtype == XS_F32 ? XS_F32 : XS_BF16;
}

xs_dtype lm_model_kv_dtype_default(const lm_model *m) {
    if (!m || m->main.n_layers < 1 || !m->main.layers) return XS_F32;
    return lm_kv_dtype_default(m->main.layers[0].sets[0].wqkv.dtype);
}

int lm_kv_dtype_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "f32")) return XS_F32;
    if (!strcmp(s, "bf16")) return XS_BF16;
    if (!strcmp(s, "q8") || !strcmp(s, "q8_0")) return XS_Q8_0;
    return -1;
}
