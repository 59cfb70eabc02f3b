/*
 * test_lm_condition.c — LUT conditioners fused by "sum" (Kyutai's
 * moshi_dev_2b "description" conditioner), on a conditioned lm_tiny built
 * here: lm_tiny's config + a "conditioners"/"fuser" block, lm_tiny's tensors
 * + embed [n_bins + 1, 16], output_proj [64, 16] and learnt_padding
 * [1, 1, 64] written to a temp file. Checks:
 *  1. the lm.main_emb_sum tap of a conditioned run = the plain lm_tiny run
 *     (same input tokens) + output_proj . embed[value index], computed here
 *     independently, at every step; "no value" adds learnt_padding;
 *  2. different values give different greedy tokens, the same value the same;
 *  3. configs: an unknown conditioner type is refused naming the key; a
 *     tokenizer other than noop, fuser "cross", a fuser name that is not a
 *     conditioner are refused; conditioners without a fuser are unused;
 *  4. a missing conditioner tensor is reported by name and expected shape;
 *  5. unknown names / values are refused listing the allowed ones.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "diag/taps.h"
#include "formats/safetensors.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

#define D 64     /* lm_tiny dim */
#define CDIM 16  /* LUT dim */
#define NBINS 7
#define NVAL 5
#define STEPS 12

static const char *const k_values[NVAL] = {"very_bad", "bad", "neutral", "good", "very_good"};
static float g_embed[(NBINS + 1) * CDIM], g_proj[D * CDIM], g_pad[D];

static const char *k_cond_json =
    "\"conditioners\": {\"description\": {\"type\": \"%s\", \"%s\": {\"n_bins\": 7, \"dim\": 16, "
    "\"tokenizer\": \"%s\", \"possible_values\": [\"very_bad\", \"bad\", \"neutral\", \"good\", "
    "\"very_good\"]}}}%s";

/* lm_tiny's config.json with `extra` inserted before the final brace. */
static char *tiny_config_with(const char *extra) {
    FILE *f = fopen(golden_path("lm_tiny/config.json"), "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65536 - 4096, f);
    fclose(f);
    char *end = strrchr(buf, '}');
    if (!end || n == 0) { free(buf); return NULL; }
    snprintf(end, 4096, ", %s}", extra);
    return buf;
}

static char *cond_config(const char *type, const char *tokenizer, const char *fuser) {
    char extra[2048];
    snprintf(extra, sizeof extra, k_cond_json, type, type, tokenizer, fuser);
    return tiny_config_with(extra);
}

static bool write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* lm_tiny's tensors + the conditioner's; skip_name: leave that one out. */
static bool write_model(const char *path, const char *skip_name) {
    xs_weights *src = NULL;
    if (xs_weights_open(golden_path("lm_tiny/model.safetensors"), &src) != XS_OK) return false;
    xs_st_writer *w = xs_st_writer_new();
    xs_status rc = w ? XS_OK : XS_ERR_NOMEM;
    for (int i = 0; rc == XS_OK && i < xs_weights_count(src); i++) {
        const xs_tensor *t = xs_weights_at(src, i);
        rc = xs_st_writer_add_tensor(w, t->name, t);
    }
    const char *pre = "condition_provider.conditioners.description.";
    struct { const char *suffix; int ndim; int64_t shape[3]; const float *data; } extra[3] = {
        {"embed.weight", 2, {NBINS + 1, CDIM, 0}, g_embed},
        {"output_proj.weight", 2, {D, CDIM, 0}, g_proj},
        {"learnt_padding", 3, {1, 1, D}, g_pad},
    };
    for (int i = 0; rc == XS_OK && i < 3; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", pre, extra[i].suffix);
        if (skip_name && !strcmp(skip_name, name)) continue;
        rc = xs_st_writer_add(w, name, XS_F32, extra[i].ndim, extra[i].shape, extra[i].data);
    }
    if (rc == XS_OK) rc = xs_st_writer_save(w, path);
    xs_st_writer_free(w);
    xs_weights_close(src);
    return rc == XS_OK;
}

/* The condition vector of value index v, computed here from the test's own
 * tables in double: output_proj . embed[v]. */
static void expected_vec(int v, double *out) {
    for (int r = 0; r < D; r++) {
        double acc = 0;
        for (int j = 0; j < CDIM; j++) acc += (double)g_proj[r * CDIM + j] * g_embed[v * CDIM + j];
        out[r] = acc;
    }
}

/* Fixed token rows (text + 16 audio), the same for every run. */
static void tokens_of_step(int s, int32_t *tok) {
    tok[0] = (s * 7 + 3) % 100;
    for (int k = 1; k < 17; k++) tok[k] = (s * 5 + k * 3) % 64;
}

/* main_emb_sum [STEPS, D] of STEPS lm_exec_main calls; sel: condition (or
 * NULL for the default). Returns a malloc'd copy or NULL. */
static float *emb_sums(const lm_model *m, const int *sel) {
    xs_taps *taps = xs_taps_new();
    xs_taps_set_filter(taps, "lm.main_emb_sum");
    lm_exec e;
    float *out = NULL;
    xs_status rc = lm_exec_init(&e, m, taps);
    if (rc == XS_OK && sel) rc = lm_exec_set_condition(&e, sel);
    for (int s = 0; rc == XS_OK && s < STEPS; s++) {
        int32_t tok[17];
        tokens_of_step(s, tok);
        rc = lm_exec_main(&e, tok);
    }
    CHECK(rc == XS_OK, "exec: %s", xs_error_msg());
    const xs_tensor *t = rc == XS_OK ? xs_taps_find(taps, "lm.main_emb_sum") : NULL;
    if (t && xs_tensor_numel(t) == STEPS * D) {
        out = malloc(STEPS * D * sizeof *out);
        memcpy(out, t->data, STEPS * D * sizeof *out);
    }
    CHECK(out != NULL, "main_emb_sum tap of %d x %d values", STEPS, D);
    lm_exec_free(&e);
    xs_taps_free(taps);
    return out;
}

static void check_sum(const lm_model *plain, const lm_model *cond) {
    float *base = emb_sums(plain, NULL);
    for (int v = -1; v < NVAL; v++) {
        int sel[1] = {v};
        float *got = emb_sums(cond, v >= 0 ? sel : NULL); /* -1: lm_exec_init's default */
        double want[D], maxerr = 0, maxvec = 0;
        if (v >= 0) expected_vec(v, want);
        else for (int r = 0; r < D; r++) want[r] = g_pad[r];
        for (int s = 0; base && got && s < STEPS; s++)
            for (int r = 0; r < D; r++) {
                double e = fabs((double)got[s * D + r] - base[s * D + r] - want[r]);
                if (!(e <= maxerr)) maxerr = e;
                if (fabs(want[r]) > maxvec) maxvec = fabs(want[r]);
            }
        CHECK(base && got && maxerr < 1e-5 && maxvec > 0.1,
              "value %d: emb_sum = plain + condition at every step (max err %.3g, |vec| %.3g)", v,
              maxerr, maxvec);
        printf("value %2d (%s): %d steps, max |emb_sum - plain - vec| = %.3g, max|vec| = %.3g\n", v,
               v >= 0 ? k_values[v] : "none", STEPS, maxerr, maxvec);
        free(got);
    }
    free(base);
}

/* Greedy tokens of 20 LMGen steps with description = value. */
static void gen_tokens(const lm_model *m, const char *value, int32_t *all) {
    lm_sampling s;
    lm_sampling_default(&s);
    s.greedy = true;
    lm_gen *g = NULL;
    CHECK(lm_gen_new(m, &s, NULL, &g) == XS_OK, "gen: %s", xs_error_msg());
    if (!g) return;
    CHECK(lm_gen_set_condition(g, "description", value) == XS_OK, "set %s: %s", value,
          xs_error_msg());
    CHECK(lm_gen_reset(g) == XS_OK, "reset keeps the condition");
    for (int st = 0; st < 20; st++) {
        int32_t user[8];
        for (int j = 0; j < 8; j++) user[j] = (st * 3 + j * 5) % 64;
        bool valid;
        CHECK(lm_gen_step(g, user, all + st * 9, &valid) == XS_OK, "step: %s", xs_error_msg());
    }
    lm_gen_free(g);
}

static void check_values_differ(const lm_model *m) {
    int32_t a[20 * 9], b[20 * 9], c[20 * 9];
    gen_tokens(m, "very_bad", a);
    gen_tokens(m, "very_good", b);
    gen_tokens(m, "very_bad", c);
    int diff = 0, same = 0;
    for (int i = 0; i < 20 * 9; i++) diff += a[i] != b[i], same += a[i] == c[i];
    CHECK(diff > 0, "very_bad and very_good give different tokens (%d differ)", diff);
    CHECK(same == 20 * 9, "the same value gives the same tokens");
    printf("very_bad vs very_good: %d of %d tokens differ\n", diff, 20 * 9);
}

static void check_errors(const lm_model *m) {
    lm_gen *g = NULL;
    CHECK(lm_gen_new(m, NULL, NULL, &g) == XS_OK, "gen");
    if (!g) return;
    CHECK(lm_gen_set_condition(g, "mood", "good") == XS_ERR_ARG &&
          strstr(xs_error_msg(), "'mood'") && strstr(xs_error_msg(), "description"),
          "unknown name lists the conditioners: %s", xs_error_msg());
    CHECK(lm_gen_set_condition(g, "description", "great") == XS_ERR_ARG &&
          strstr(xs_error_msg(), "'great'") &&
          strstr(xs_error_msg(), "very_bad, bad, neutral, good, very_good"),
          "unknown value lists the values: %s", xs_error_msg());
    CHECK(lm_gen_set_condition(g, "description", NULL) == XS_OK, "unset");
    lm_gen_free(g);
}

static void check_configs(void) {
    lm_config c;
    char *js = cond_config("tensor", "noop", ", \"fuser\": {\"sum\": [\"description\"]}");
    CHECK(js && lm_config_parse(js, "t", &c) == XS_ERR_UNSUPPORTED &&
          strstr(xs_error_msg(), "conditioners.description.type") && strstr(xs_error_msg(), "tensor"),
          "unknown conditioner type refused: %s", xs_error_msg());
    free(js);
    js = cond_config("lut", "whitespace", ", \"fuser\": {\"sum\": [\"description\"]}");
    CHECK(js && lm_config_parse(js, "t", &c) == XS_ERR_UNSUPPORTED &&
          strstr(xs_error_msg(), "tokenizer"), "tokenizer refused: %s", xs_error_msg());
    free(js);
    js = cond_config("lut", "noop", ", \"fuser\": {\"cross\": [\"description\"]}");
    CHECK(js && lm_config_parse(js, "t", &c) == XS_ERR_UNSUPPORTED &&
          strstr(xs_error_msg(), "fuser.cross"), "cross refused: %s", xs_error_msg());
    free(js);
    js = cond_config("lut", "noop", ", \"fuser\": {\"sum\": [\"genre\"]}");
    CHECK(js && lm_config_parse(js, "t", &c) == XS_ERR_FORMAT && strstr(xs_error_msg(), "genre"),
          "fuser name not a conditioner: %s", xs_error_msg());
    free(js);
    js = cond_config("lut", "noop", "");
    CHECK(js && lm_config_parse(js, "t", &c) == XS_OK && c.n_cond == 0,
          "no fuser: conditioners unused");
    free(js);
    js = cond_config("lut", "noop", ", \"fuser\": {\"sum\": [\"description\"], \"cross\": []}");
    CHECK(js && lm_config_parse(js, "t", &c) == XS_OK && c.n_cond == 1 &&
          c.cond[0].n_bins == NBINS && c.cond[0].dim == CDIM && c.cond[0].n_values == NVAL &&
          !strcmp(c.cond[0].values[4], "very_good"), "parsed: %s", xs_error_msg());
    free(js);
}

int main(void) {
    if (access(golden_path("lm_tiny/model.safetensors"), R_OK) != 0) test_skip("lm_tiny missing");
    test_fill_uniform(g_embed, (NBINS + 1) * CDIM, 11, -1.f, 1.f);
    test_fill_uniform(g_proj, D * CDIM, 12, -0.5f, 0.5f);
    test_fill_uniform(g_pad, D, 13, -0.3f, 0.3f);
    char mpath[128], cpath[128], bad[128];
    snprintf(mpath, sizeof mpath, "/tmp/xs_lm_cond_%d.safetensors", (int)getpid());
    snprintf(bad, sizeof bad, "/tmp/xs_lm_cond_bad_%d.safetensors", (int)getpid());
    snprintf(cpath, sizeof cpath, "/tmp/xs_lm_cond_%d.json", (int)getpid());
    char *js = cond_config("lut", "noop", ", \"fuser\": {\"sum\": [\"description\"]}");
    CHECK(js && write_file(cpath, js), "write config");
    free(js);
    CHECK(write_model(mpath, NULL), "write model: %s", xs_error_msg());
    CHECK(write_model(bad, "condition_provider.conditioners.description.output_proj.weight"),
          "write model without output_proj");

    check_configs();

    xs_backend *be = NULL;
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "ref backend");
    char plain_cfg[4096];
    snprintf(plain_cfg, sizeof plain_cfg, "%s", golden_path("lm_tiny/config.json"));
    lm_model *plain = NULL, *cond = NULL, *none = NULL;
    CHECK(lm_model_load(golden_path("lm_tiny/model.safetensors"), plain_cfg, be, &plain) == XS_OK,
          "plain: %s", xs_error_msg());
    CHECK(lm_model_load(mpath, cpath, be, &cond) == XS_OK, "conditioned: %s", xs_error_msg());
    xs_status rc = lm_model_load(bad, cpath, be, &none);
    CHECK(rc == XS_ERR_NOT_FOUND &&
          strstr(xs_error_msg(), "condition_provider.conditioners.description.output_proj.weight") &&
          strstr(xs_error_msg(), "[64, 16]"),
          "missing tensor named with its shape: %s", xs_error_msg());
    if (plain && cond) {
        check_sum(plain, cond);
        check_values_differ(cond);
        check_errors(cond);
    }
    lm_model_free(none);
    lm_model_free(cond);
    lm_model_free(plain);
    xs_backend_close(be);
    if (getenv("XS_TEST_KEEP")) { /* keep the model for trying the CLI by hand */
        printf("kept %s %s\n", mpath, cpath);
    } else {
        unlink(mpath);
        unlink(cpath);
    }
    unlink(bad);
    return test_summary("lm_condition");
}
