/*
 * test_lm_config.c — LM configuration: the built-in Moshi 7B preset equals
 * Kyutai's released configuration (the `config` of the real_checkpoints
 * listing = loaders._lm_kwargs), the golden configs parse to what their
 * READMEs state, and bad or unsupported configs fail with a named key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "model/lm.h"
#include "testutil.h"

static bool same_config(const lm_config *a, const lm_config *b) {
    bool same = a->dim == b->dim && a->num_heads == b->num_heads && a->num_layers == b->num_layers &&
                a->hidden_scale == b->hidden_scale && a->context == b->context &&
                a->max_period == b->max_period && a->text_card == b->text_card &&
                a->card == b->card && a->n_q == b->n_q && a->dep_q == b->dep_q &&
                a->n_delays == b->n_delays && a->norm == b->norm && a->pos == b->pos &&
                a->gating == b->gating && a->dep_dim == b->dep_dim && a->dep_ff == b->dep_ff &&
                a->dep_heads == b->dep_heads && a->dep_layers == b->dep_layers &&
                a->dep_multi_linear == b->dep_multi_linear &&
                a->dep_weights_per_step == b->dep_weights_per_step &&
                a->dep_gating == b->dep_gating && a->has_dep_schedule == b->has_dep_schedule &&
                a->dep_low_rank == b->dep_low_rank && a->dep_pos == b->dep_pos &&
                a->dep_max_period == b->dep_max_period &&
                a->existing_text_padding_id == b->existing_text_padding_id;
    for (int i = 0; same && i < a->n_delays; i++) same = a->delays[i] == b->delays[i];
    for (int k = 0; same && k < a->dep_q; k++) same = a->dep_schedule[k] == b->dep_schedule[k];
    return same;
}

static bool fails_with(const char *json, const char *needle) {
    lm_config c;
    xs_status rc = lm_config_parse(json, "t.json", &c);
    bool ok = rc != XS_OK && strstr(xs_error_msg(), needle);
    if (!ok) fprintf(stderr, "expected failure naming '%s', got rc %d: %s\n", needle, rc, xs_error_msg());
    return ok;
}

int main(void) {
    lm_config p;
    lm_config_moshi_7b(&p);
    CHECK(p.dim == 4096 && p.num_layers == 32 && p.num_heads == 32 && p.context == 3000, "7B main");
    CHECK(p.dep_dim == 1024 && p.dep_layers == 6 && p.dep_heads == 16 && p.dep_ff == 4224, "7B depformer");
    CHECK(lm_config_max_delay(&p) == 1 && lm_config_dep_sets(&p) == 8, "7B delays / sets");

    /* the released configuration, as recorded with the real listings */
    FILE *f = fopen(golden_path("real_checkpoints/moshi_7b_pytorch.json"), "rb");
    CHECK(f != NULL, "listing readable");
    if (f) {
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        fseek(f, 0, SEEK_SET);
        char *b = malloc((size_t)n + 1);
        b[fread(b, 1, (size_t)n, f)] = 0;
        fclose(f);
        cJSON *j = cJSON_Parse(b);
        char *cfg = j ? cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "config")) : NULL;
        lm_config r;
        CHECK(cfg && lm_config_parse(cfg, "released", &r) == XS_OK, "released config parses: %s",
              xs_error_msg());
        if (cfg) CHECK(same_config(&p, &r), "built-in preset == released configuration");
        free(cfg);
        cJSON_Delete(j);
        free(b);
    }

    lm_config t;
    CHECK(lm_config_load(golden_path("lm_tiny/config.json"), &t) == XS_OK, "lm_tiny: %s", xs_error_msg());
    CHECK(t.dim == 64 && t.context == 12 && t.dep_dim == 32 && t.dep_ff == 132 && t.gating &&
              t.norm == LM_NORM_RMS_F32 && t.pos == LM_POS_ROPE && t.dep_pos == LM_POS_NONE,
          "lm_tiny values");
    CHECK(lm_config_load(golden_path("kyutai_test_lm/config.json"), &t) == XS_OK, "kyutai: %s",
          xs_error_msg());
    CHECK(!t.gating && t.dep_gating && t.norm == LM_NORM_LAYER && t.pos == LM_POS_SIN &&
              t.dep_pos == LM_POS_SIN && t.dep_low_rank == 8 && t.has_dep_schedule &&
              t.dep_schedule[0] == 0 && t.dep_schedule[1] == 1 && t.dep_schedule[2] == 1 &&
              lm_config_dep_sets(&t) == 2 && t.dep_layers == 2 && t.dep_heads == 1,
          "kyutai_test_lm values (depformer inherits num_layers)");
    CHECK(t.gen_temp == 0.8f && t.gen_top_k_text == 25, "LMGen sampling defaults");

    const char *base = "\"dim\": 16, \"n_q\": 2, \"dep_q\": 1, \"num_heads\": 2";
    char js[512];
    snprintf(js, sizeof js, "{%s, \"delays\": [0, 1, 1], \"lm_gen_config\": {\"temp\": 0.6, "
             "\"top_k_text\": 50}}", base);
    CHECK(lm_config_parse(js, "t.json", &t) == XS_OK && t.gen_temp == 0.6f &&
              t.gen_top_k_text == 50 && t.gen_top_k == 250,
          "lm_gen_config read: %s", xs_error_msg());
    CHECK(fails_with("[1, 2]", "not a JSON object"), "not an object");
    CHECK(fails_with("{\"dim\": 16", "not a JSON object"), "truncated JSON");
    snprintf(js, sizeof js, "{%s}", base);
    CHECK(fails_with(js, "delays"), "delays missing");
    snprintf(js, sizeof js, "{%s, \"delays\": [0, 1]}", base);
    CHECK(fails_with(js, "delays"), "delays of the wrong length");
    snprintf(js, sizeof js, "{%s, \"delays\": [0, 1, 1], \"norm\": \"batch_norm\"}", base);
    CHECK(fails_with(js, "batch_norm"), "unknown norm");
    snprintf(js, sizeof js, "{%s, \"delays\": [0, 1, 1], \"conditioners\": {\"x\": 1}}", base);
    CHECK(fails_with(js, "conditioners"), "conditioned model refused");
    snprintf(js, sizeof js, "{%s, \"delays\": [0, 1, 1], \"layer_scale\": 0.1}", base);
    CHECK(fails_with(js, "layer_scale"), "layer scale refused");
    snprintf(js, sizeof js, "{\"dim\": 15, \"n_q\": 2, \"dep_q\": 1, \"num_heads\": 2, "
             "\"delays\": [0, 1, 1]}");
    CHECK(fails_with(js, "num_heads"), "dim not a multiple of heads");
    CHECK(lm_config_load("/nonexistent/config.json", &t) == XS_ERR_IO &&
              strstr(xs_error_msg(), "/nonexistent/config.json"),
          "missing file named");
    return test_summary("test_lm_config");
}
