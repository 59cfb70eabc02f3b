/*
 * test_mimi_config.c — Mimi configuration and checkpoint names:
 *  - the built-in preset has the released Mimi's sizes;
 *  - golden/mimi_tiny/config.json loads with its values;
 *  - options this engine does not implement are rejected by name;
 *  - the preset asks for exactly the tensors (names and shapes) of the
 *    released checkpoint as listed in golden/real_checkpoints/mimi.json
 *    (dry run: nothing is allocated);
 *  - a wrong shape in a file is reported with the tensor and expected shape.
 */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/mimi.h"
#include "testutil.h"

static xs_status load_text(const char *text, mimi_config *c) {
    const char *path = "test_mimi_config.tmp.json";
    FILE *f = fopen(path, "wb");
    fputs(text, f);
    fclose(f);
    xs_status rc = mimi_config_load(path, c);
    remove(path);
    return rc;
}

typedef struct listing {
    cJSON *tensors; /* array of {name, shape} */
    int asked, matched;
    char *seen;     /* per json entry */
} listing;

static xs_status check_listing(void *user, const char *name, int ndim, const int64_t *shape,
                               float *dst) {
    listing *L = user;
    L->asked++;
    CHECK(dst == NULL, "dry run passes dst NULL");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, L->tensors) {
        const cJSON *nm = cJSON_GetObjectItem(e, "name");
        if (cJSON_IsString(nm) && !strcmp(nm->valuestring, name)) {
            const cJSON *sh = cJSON_GetObjectItem(e, "shape");
            bool same = cJSON_GetArraySize(sh) == ndim;
            for (int d = 0; same && d < ndim; d++)
                same = (int64_t)cJSON_GetArrayItem(sh, d)->valuedouble == shape[d];
            CHECK(same, "tensor %s: shape as in mimi.json", name);
            if (same) L->matched++;
            L->seen[i] = 1;
            return XS_OK;
        }
        i++;
    }
    CHECK(0, "tensor %s asked by the preset is in mimi.json", name);
    return XS_OK;
}

static void test_real_names(void) {
    char *text = test_read_file(golden_path("real_checkpoints/mimi.json"));
    CHECK(text != NULL, "read mimi.json");
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    listing L = {cJSON_GetObjectItem(root, "tensors"), 0, 0, NULL};
    int n = cJSON_GetArraySize(L.tensors);
    L.seen = calloc((size_t)n, 1);
    mimi_config c;
    mimi_config_preset(&c);
    CHECK(mimi_expected_tensors(&c, check_listing, &L) == XS_OK, "dry run: %s", xs_error_msg());
    int missed = 0, i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, L.tensors) {
        const char *nm = cJSON_GetObjectItem(e, "name")->valuestring;
        if (!L.seen[i] && !strstr(nm, "._initialized")) {
            missed++;
            fprintf(stderr, "not asked: %s\n", nm);
        }
        i++;
    }
    CHECK(missed == 0, "every real tensor except _initialized is used (%d not)", missed);
    CHECK(L.asked == n - 32 && L.matched == L.asked, "asked %d, matched %d, listed %d", L.asked,
          L.matched, n);
    printf("real Mimi: %d tensors asked, %d match mimi.json\n", L.asked, L.matched);
    free(L.seen);
    cJSON_Delete(root);
}

int main(void) {
    mimi_config c;
    mimi_config_preset(&c);
    CHECK(mimi_config_validate(&c) == XS_OK, "preset valid: %s", xs_error_msg());
    CHECK(mimi_hop(&c) == 960 && mimi_frame_samples(&c) == 1920 && mimi_downsample_stride(&c) == 2,
          "hop 960, frame 1920, stride 2");
    CHECK(c.n_filters == 64 && c.dimension == 512 && c.num_layers == 8 && c.num_heads == 8 &&
              c.dim_feedforward == 2048 && c.context == 250 && c.n_q == 32 && c.bins == 2048 &&
              c.q_dimension == 256 && c.num_codebooks == 8,
          "preset sizes are the released Mimi's");

    CHECK(mimi_config_load(golden_path("mimi_tiny/config.json"), &c) == XS_OK, "tiny config: %s",
          xs_error_msg());
    CHECK(c.n_filters == 4 && c.dimension == 32 && c.d_model == 32 && c.num_heads == 2 &&
              c.num_layers == 2 && c.dim_feedforward == 64 && c.q_dimension == 16 &&
              c.n_q == 16 && c.bins == 64 && c.num_codebooks == 8 && c.n_ratios == 4 &&
              c.ratios[0] == 8 && c.ratios[3] == 4,
          "tiny config values");

    xs_status rc = load_text("{\"seanet\": {\"norm\": \"weight_norm\"}}", &c);
    CHECK(rc == XS_ERR_UNSUPPORTED && strstr(xs_error_msg(), "norm"), "weight_norm rejected: %s",
          xs_error_msg());
    rc = load_text("{\"transformer\": {\"gating\": \"silu\"}}", &c);
    CHECK(rc == XS_ERR_UNSUPPORTED && strstr(xs_error_msg(), "gating"), "gating rejected: %s",
          xs_error_msg());
    rc = load_text("{\"transformer\": {\"num_heads\": 7}}", &c);
    CHECK(rc == XS_ERR_ARG, "7 heads for 512 rejected: %s", xs_error_msg());
    rc = load_text("{\"dim\": 4096, \"num_layers\": 32}", &c);
    CHECK(rc == XS_ERR_FORMAT && strstr(xs_error_msg(), "not a Mimi config"), "LM config: %s",
          xs_error_msg());
    rc = load_text("{\"seanet\": ", &c);
    CHECK(rc == XS_ERR_FORMAT, "bad JSON rejected");
    rc = load_text("{\"num_codebooks\": 40, \"quantizer\": {\"n_q\": 32}}", &c);
    CHECK(rc == XS_ERR_ARG, "num_codebooks > n_q rejected: %d %s", rc, xs_error_msg());
    CHECK(mimi_config_load("/nonexistent/mimi.json", &c) == XS_ERR_IO, "missing file: io error");

    test_real_names();

    /* A file with the tiny weights against the real preset names the tensor
     * and the shape it expected. */
    xs_backend *be = NULL;
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "ref backend");
    mimi_model *m = NULL;
    mimi_config_preset(&c);
    rc = mimi_model_open(be, golden_path("mimi_tiny/model.safetensors"), NULL, false, &m, NULL, 0);
    CHECK(rc == XS_OK, "tiny model found its config.json: %s", xs_error_msg());
    CHECK(m && mimi_model_config(m)->dimension == 32, "tiny dimension");
    CHECK(m && mimi_model_params(m) == 164533, "tiny params %lld",
          (long long)(m ? mimi_model_params(m) : 0));
    mimi_model_free(m);
    m = NULL;
    xs_weights *w = NULL;
    CHECK(xs_weights_open(golden_path("mimi_tiny/model.safetensors"), &w) == XS_OK, "open tiny");
    rc = mimi_model_load(be, &c, w, &m);
    CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "encoder.model.0.conv.conv.weight") &&
              strstr(xs_error_msg(), "[64, 1, 7]"),
          "shape error names tensor and expected shape: %s", xs_error_msg());
    CHECK(m == NULL, "out unchanged on error");
    xs_weights_close(w);
    xs_backend_close(be);
    return test_summary("test_mimi_config");
}
