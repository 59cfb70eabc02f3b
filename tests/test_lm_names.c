/*
 * test_lm_names.c — the PyTorch -> candle LM tensor map (lm_names).
 *
 *  1. lm_tiny: the plan from config.json has exactly the 151 names and shapes
 *     of lm_tiny_candle_q8/model.candle.safetensors, and the values read from
 *     lm_tiny/model.safetensors through it equal that file bit for bit (the
 *     README says it was derived from these weights); the bf16 checkpoint
 *     reads through the same map.
 *  2. Moshiko 7B: the plan from the built-in preset matches Kyutai's own
 *     conversion, real_checkpoints/moshi_7b_candle.json (523 tensors: name,
 *     shape, source tensor and source row range), and its sources are exactly
 *     the 355 tensors of moshi_7b_pytorch.json with their shapes.
 *  3. Errors: unsupported configuration, candle-layout input, a config that
 *     leaves file tensors unused.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/lm_names.h"
#include "testutil.h"

static bool same_shape(const lm_name_entry *e, const xs_tensor *t) {
    if (e->ndim != t->ndim) return false;
    for (int d = 0; d < e->ndim; d++)
        if (e->shape[d] != t->shape[d]) return false;
    return true;
}

static void test_tiny(void) {
    lm_config c;
    CHECK(lm_config_load(golden_path("lm_tiny/config.json"), &c) == XS_OK, "load config: %s", xs_error_msg());
    lm_name_plan p = {0};
    CHECK(lm_names_candle_plan(&c, &p) == XS_OK, "plan: %s", xs_error_msg());
    CHECK(p.n == 151, "151 candle tensors (got %d)", p.n);

    xs_weights *cand = NULL, *pt = NULL, *bf = NULL;
    CHECK(xs_weights_open(golden_path("lm_tiny_candle_q8/model.candle.safetensors"), &cand) == XS_OK,
          "open candle: %s", xs_error_msg());
    CHECK(xs_weights_open(golden_path("lm_tiny/model.safetensors"), &pt) == XS_OK, "open pytorch: %s",
          xs_error_msg());
    CHECK(xs_weights_open(golden_path("lm_tiny/model.bf16.safetensors"), &bf) == XS_OK, "open bf16: %s",
          xs_error_msg());
    if (!cand || !pt || !bf || p.n != 151) goto out;
    CHECK(xs_weights_layout(pt) == XS_LAYOUT_PYTORCH, "lm_tiny is PyTorch layout");
    CHECK(xs_weights_count(cand) == p.n, "same count as the candle file");
    CHECK(lm_names_check(&p, pt) == XS_OK, "check f32 checkpoint: %s", xs_error_msg());
    CHECK(lm_names_check(&p, bf) == XS_OK, "check bf16 checkpoint: %s", xs_error_msg());

    int n_bad_shape = 0, n_bad_bits = 0, n_bad_bf16 = 0, n_missing = 0;
    double bf_err = 0;
    for (int i = 0; i < p.n; i++) {
        const lm_name_entry *e = &p.e[i];
        const xs_tensor *ref = xs_weights_find(cand, e->name);
        if (!ref) { n_missing++; fprintf(stderr, "missing in candle file: %s\n", e->name); continue; }
        if (!same_shape(e, ref) || ref->dtype != XS_F32) { n_bad_shape++; continue; }
        int64_t n = lm_name_entry_numel(e);
        float *x = malloc((size_t)n * sizeof *x), *r = malloc((size_t)n * sizeof *r), *b = malloc((size_t)n * sizeof *b);
        memcpy(r, ref->data, (size_t)n * sizeof *r);
        if (lm_names_read_f32(e, pt, x) != XS_OK || memcmp(x, r, (size_t)n * sizeof *x)) {
            n_bad_bits++;
            fprintf(stderr, "values differ: %s (from %s row %lld)\n", e->name, e->source, (long long)e->row0);
        }
        if (lm_names_read_f32(e, bf, b) != XS_OK) n_bad_bf16++;
        else
            for (int64_t j = 0; j < n; j++) {
                double d = fabs((double)b[j] - r[j]) / (fabs(r[j]) + 1e-30);
                if (r[j] != 0 && d > bf_err) bf_err = d;
            }
        free(x); free(r); free(b);
    }
    CHECK(n_missing == 0, "every planned name is in model.candle.safetensors (%d missing)", n_missing);
    CHECK(n_bad_shape == 0, "every shape matches (%d differ)", n_bad_shape);
    CHECK(n_bad_bits == 0, "every tensor read from the PyTorch file equals the candle file bit for bit (%d differ)",
          n_bad_bits);
    CHECK(n_bad_bf16 == 0 && bf_err > 0 && bf_err < 1.0 / 256,
          "bf16 checkpoint reads within bf16 rounding (max rel err %.3g)", bf_err);

    /* Spot-check a split: step 3, layer 1 in_proj = rows 288..383 of the stack. */
    int i = lm_name_plan_find(&p, "depformer.3.transformer.layers.1.self_attn.in_proj_weight");
    CHECK(i >= 0 && p.e[i].row0 == 3 * 96 && p.e[i].shape[0] == 96 &&
              !strcmp(p.e[i].source, "depformer.layers.1.self_attn.in_proj_weight"),
          "in_proj of step 3 comes from rows 288.. of the stacked tensor");
    CHECK(lm_name_plan_find(&p, "no.such.tensor") == -1, "find of an absent name gives -1");

    /* Errors. */
    CHECK(lm_names_check(&p, cand) == XS_ERR_NOT_FOUND && strstr(xs_error_msg(), "depformer_in.0.weight"),
          "a candle file fails the check naming a PyTorch tensor: %s", xs_error_msg());
    lm_config c8 = c;
    c8.n_q = 8;
    lm_name_plan p8 = {0};
    CHECK(lm_names_candle_plan(&c8, &p8) == XS_OK && p8.n == 143, "plan with n_q = 8 (%d)", p8.n);
    CHECK(lm_names_check(&p8, pt) == XS_ERR_UNSUPPORTED && strstr(xs_error_msg(), "has no place") && strstr(xs_error_msg(), "'emb.1"),
          "unused file tensors are an error naming one: %s", xs_error_msg());
    lm_name_plan_free(&p8);
    lm_config cw = c;
    cw.dim = 128;
    lm_name_plan pw = {0};
    CHECK(lm_names_candle_plan(&cw, &pw) == XS_OK && lm_names_check(&pw, pt) == XS_ERR_SHAPE &&
              strstr(xs_error_msg(), "[101, 128]"),
          "a wrong dim is a shape error naming the expected shape: %s", xs_error_msg());
    lm_name_plan_free(&pw);
    lm_config cg = c;
    cg.gating = false;
    lm_name_plan pg = {0};
    CHECK(lm_names_candle_plan(&cg, &pg) == XS_ERR_UNSUPPORTED && strstr(xs_error_msg(), "gating") && pg.n == 0,
          "non-gating model is unsupported: %s", xs_error_msg());
out:
    xs_weights_close(cand);
    xs_weights_close(pt);
    xs_weights_close(bf);
    lm_name_plan_free(&p);
}

static void test_moshi_7b(void) {
    lm_config c;
    lm_config_moshi_7b(&c);
    lm_name_plan p = {0};
    CHECK(lm_names_candle_plan(&c, &p) == XS_OK, "plan 7b: %s", xs_error_msg());
    CHECK(p.n == 523, "523 candle tensors for Moshiko (got %d)", p.n);
    char *txt = test_read_file(golden_path("real_checkpoints/moshi_7b_candle.json"));
    cJSON *root = txt ? cJSON_Parse(txt) : NULL;
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    CHECK(cJSON_IsArray(ts), "listing parsed");
    int n = 0, bad = 0;
    for (const cJSON *t = ts ? ts->child : NULL; t; t = t->next, n++) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
        const char *src = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "source"));
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        const cJSON *rows = cJSON_GetObjectItemCaseSensitive(t, "source_rows");
        int i = lm_name_plan_find(&p, name);
        bool ok = i >= 0 && src && !strcmp(p.e[i].source, src) && cJSON_GetArraySize(shape) == p.e[i].ndim;
        for (int d = 0; ok && d < p.e[i].ndim; d++)
            ok = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble == p.e[i].shape[d];
        if (ok && rows) {
            ok = (int64_t)cJSON_GetArrayItem(rows, 0)->valuedouble == p.e[i].row0 &&
                 (int64_t)cJSON_GetArrayItem(rows, 1)->valuedouble == p.e[i].row0 + p.e[i].shape[0];
        } else if (ok) {
            /* a whole tensor: the source shape is the candle shape */
            ok = p.e[i].row0 == 0 && p.e[i].src_shape[0] == p.e[i].shape[0];
        }
        if (!ok) {
            if (bad < 5) fprintf(stderr, "mismatch: %s (source %s)\n", name ? name : "?", src ? src : "?");
            bad++;
        }
    }
    CHECK(n == 523 && bad == 0, "plan equals Kyutai's conversion listing: %d listed, %d mismatched", n, bad);
    cJSON_Delete(root);
    free(txt);

    /* The sources are exactly the 355 tensors of the released PyTorch file,
     * with the shapes lm_names_check expects: none missing, none unused. */
    txt = test_read_file(golden_path("real_checkpoints/moshi_7b_pytorch.json"));
    root = txt ? cJSON_Parse(txt) : NULL;
    ts = cJSON_GetObjectItemCaseSensitive(root, "tensors");
    CHECK(cJSON_IsArray(ts), "pytorch listing parsed");
    int n_pt = 0, unused = 0, bad_shape = 0, found = 0;
    for (const cJSON *t = ts ? ts->child : NULL; t; t = t->next, n_pt++) {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
        int hit = -1;
        for (int i = 0; name && i < p.n && hit < 0; i++)
            if (!strcmp(p.e[i].source, name)) hit = i;
        if (hit < 0) { unused++; continue; }
        bool ok = cJSON_GetArraySize(shape) == p.e[hit].src_ndim;
        for (int d = 0; ok && d < p.e[hit].src_ndim; d++)
            ok = (int64_t)cJSON_GetArrayItem(shape, d)->valuedouble == p.e[hit].src_shape[d];
        bad_shape += !ok;
    }
    for (int i = 0; i < p.n; i++) {
        bool listed = false;
        for (const cJSON *t = ts ? ts->child : NULL; t && !listed; t = t->next)
            listed = !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name")), p.e[i].source);
        found += listed;
    }
    CHECK(n_pt == 355 && unused == 0 && bad_shape == 0 && found == p.n,
          "sources = the PyTorch file: %d tensors, %d unused, %d bad shapes, %d/%d sources listed", n_pt, unused,
          bad_shape, found, p.n);
    cJSON_Delete(root);
    free(txt);
    lm_name_plan_free(&p);
}

int main(void) {
    test_tiny();
    test_moshi_7b();
    return test_summary("lm_names");
}
