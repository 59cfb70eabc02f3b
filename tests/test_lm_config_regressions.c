/*
 * Regression tests for LM config parsing, one function per bug.
 */
#include <stdio.h>
#include <string.h>

#include "model/lm.h"
#include "testutil.h"

/* fuzz_json found hidden_scale = 4.4e67 overflowing (int)(hidden_scale * dim)
 * (UBSan float-cast-overflow). Out-of-range scale values must be refused. */
static void lm_config_huge_hidden_scale(void) {
    const char *bad[] = {"4.4e67", "1e300", "65", "0", "-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char js[256];
        snprintf(js, sizeof js, "{\"dim\": 16, \"num_heads\": 1, \"num_layers\": 1, "
                 "\"hidden_scale\": %s, \"context\": 4}", bad[i]);
        lm_config c;
        xs_status rc = lm_config_parse(js, "t.json", &c);
        CHECK(rc == XS_ERR_FORMAT && strstr(xs_error_msg(), "hidden_scale"),
              "hidden_scale %s refused with the key named (rc %d: %s)", bad[i], rc, xs_error_msg());
    }
    lm_config ok;
    CHECK(lm_config_load(golden_path("lm_tiny/config.json"), &ok) == XS_OK &&
              ok.hidden_scale == 4.125,
          "the golden config (hidden_scale 4.125) still parses: %s", xs_error_msg());
}

/* Same family: a max_period beyond float range was cast without a check. */
static void lm_config_huge_max_period(void) {
    lm_config c;
    xs_status rc = lm_config_parse("{\"dim\": 16, \"num_heads\": 1, \"num_layers\": 1, "
                                   "\"context\": 4, \"depformer_max_period\": 1e300}", "t.json", &c);
    CHECK(rc == XS_ERR_FORMAT, "depformer_max_period 1e300 refused (rc %d)", rc);
    rc = lm_config_parse("{\"dim\": 16, \"num_heads\": 1, \"num_layers\": 1, "
                         "\"context\": 4, \"max_period\": 1e300}", "t.json", &c);
    CHECK(rc == XS_ERR_FORMAT, "max_period 1e300 refused (rc %d)", rc);
}

int main(void) {
    lm_config_huge_hidden_scale();
    lm_config_huge_max_period();
    return test_summary("test_lm_config_regressions");
}
