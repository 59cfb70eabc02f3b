/*
 * test_lm_cli.c — `xswarm lm generate` / `xswarm lm score` end to end: the
 * files they write hold Kyutai's values (lm_tiny greedy step_out, candle GGUF
 * step_out, kyutai_test_lm masks and logits, taps), and sampling is
 * reproducible from the seed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/weights.h"
#include "testutil.h"

static char g_dir[256];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Count differing elements between two integer/bool/float tensors of equal size. */
static int64_t n_diff(const xs_tensor *a, const xs_tensor *b, double tol) {
    if (!a || !b || xs_tensor_numel(a) != xs_tensor_numel(b)) return -1;
    int64_t n = xs_tensor_numel(a), d = 0;
    for (int64_t i = 0; i < n; i++) {
        double x, y;
        switch (a->dtype) {
        case XS_I64: x = ((const int64_t *)a->data)[i]; break;
        case XS_BOOL: x = ((const uint8_t *)a->data)[i]; break;
        default: x = ((const float *)a->data)[i];
        }
        switch (b->dtype) {
        case XS_I64: y = ((const int64_t *)b->data)[i]; break;
        case XS_BOOL: y = ((const uint8_t *)b->data)[i]; break;
        default: y = ((const float *)b->data)[i];
        }
        if (isnan(x) && isnan(y)) continue;
        if (!(fabs(x - y) <= tol)) d++;
    }
    return d;
}

static void check_same(const char *out, const char *gold, const char *name, double tol,
                       const char *what) {
    xs_weights *a = NULL, *b = NULL;
    CHECK(xs_weights_open(out, &a) == XS_OK, "%s: open %s: %s", what, out, xs_error_msg());
    CHECK(xs_weights_open(gold, &b) == XS_OK, "%s: open %s: %s", what, gold, xs_error_msg());
    if (a && b) {
        int64_t d = n_diff(xs_weights_find(a, name), xs_weights_find(b, name), tol);
        CHECK(d == 0, "%s: %s: %lld values differ", what, name, (long long)d);
    }
    xs_weights_close(a);
    xs_weights_close(b);
}

int main(void) {
    const char *bin = test_binary();
    char G[4096];
    snprintf(G, sizeof G, "%s", golden_path(""));
    snprintf(g_dir, sizeof g_dir, "/tmp/xs_test_lm_cli.%d", (int)getpid());
    sh("mkdir -p %s", g_dir);
    char out[512], taps[512], gold[4096];

    /* greedy lm_tiny on ref, with taps */
    snprintf(out, sizeof out, "%s/gen.safetensors", g_dir);
    snprintf(taps, sizeof taps, "%s/taps.safetensors", g_dir);
    int rc = sh("%s -q lm generate --lm %s/lm_tiny/model.safetensors --input-codes "
                "%s/lm_tiny/golden.safetensors --greedy --backend ref --dump-taps %s -o %s",
                bin, G, G, taps, out);
    CHECK(rc == 0, "generate exit status %d", rc);
    snprintf(gold, sizeof gold, "%s/lm_tiny/golden.safetensors", G);
    check_same(out, gold, "step_out", 0, "lm_tiny greedy");
    check_same(out, gold, "step_out_valid", 0, "lm_tiny greedy");
    xs_weights *tw = NULL, *gw = NULL;
    if (xs_weights_open(taps, &tw) == XS_OK && xs_weights_open(gold, &gw) == XS_OK) {
        const xs_tensor *a = xs_weights_find(tw, "lm.text_logits");
        CHECK(a != NULL, "taps file holds lm.text_logits");
        CHECK(n_diff(a, xs_weights_find(gw, "text_logits"), 1e-4) == 0, "tap text_logits ~ golden");
    } else {
        CHECK(0, "taps file readable: %s", xs_error_msg());
    }
    xs_weights_close(tw);
    xs_weights_close(gw);

    /* --steps prefix */
    rc = sh("%s -q lm generate --lm %s/lm_tiny/model.safetensors --input-codes "
            "%s/lm_tiny/golden.safetensors --steps 7 --greedy --backend ref -o %s",
            bin, G, G, out);
    CHECK(rc == 0, "generate --steps 7 exit status %d", rc);
    if (xs_weights_open(out, &tw) == XS_OK) {
        const xs_tensor *t = xs_weights_find(tw, "step_out");
        CHECK(t && t->shape[0] == 7, "--steps 7 gives 7 rows");
        xs_weights_close(tw);
    }

    /* candle GGUF, config found beside it. --kv f32: the golden is an f32 run,
     * and q8_0 weights default to a bf16 cache (lm_kv_dtype_default). */
    rc = sh("%s -q lm generate --lm %s/lm_tiny_candle_q8/model.q8.gguf --input-codes "
            "%s/lm_tiny/golden.safetensors --greedy --backend ref --kv f32 -o %s", bin, G, G, out);
    CHECK(rc == 0, "generate gguf exit status %d", rc);
    snprintf(gold, sizeof gold, "%s/lm_tiny_candle_q8/golden.safetensors", G);
    check_same(out, gold, "step_out", 0, "candle q8 greedy");

    /* score */
    rc = sh("%s -q lm score --lm %s/kyutai_test_lm/test_lm_model.safetensors --codes "
            "%s/kyutai_test_lm/test_lm_codes.safetensors --backend cpu --threads 1 -o %s",
            bin, G, G, out);
    CHECK(rc == 0, "score exit status %d", rc);
    snprintf(gold, sizeof gold, "%s/kyutai_test_lm/test_lm_out.safetensors", G);
    check_same(out, gold, "mask", 0, "score");
    check_same(out, gold, "text_mask", 0, "score");
    check_same(out, gold, "logits", 1e-4, "score");
    check_same(out, gold, "text_logits", 1e-4, "score");

    /* sampling: same seed, same tokens; another seed, other tokens */
    char out2[512], out3[512];
    snprintf(out2, sizeof out2, "%s/s2.safetensors", g_dir);
    snprintf(out3, sizeof out3, "%s/s3.safetensors", g_dir);
    const char *common = "lm generate --backend ref --temp 1.0 --topk 0 --text-temp 1.0 --text-topk 0";
    rc = sh("%s -q %s --seed 7 --lm %s/lm_tiny/model.safetensors --input-codes "
            "%s/lm_tiny/golden.safetensors -o %s", bin, common, G, G, out);
    rc |= sh("%s -q %s --seed 7 --lm %s/lm_tiny/model.safetensors --input-codes "
             "%s/lm_tiny/golden.safetensors -o %s", bin, common, G, G, out2);
    rc |= sh("%s -q %s --seed 8 --lm %s/lm_tiny/model.safetensors --input-codes "
             "%s/lm_tiny/golden.safetensors -o %s", bin, common, G, G, out3);
    CHECK(rc == 0, "sampled generate exit status");
    xs_weights *a = NULL, *b = NULL, *c = NULL;
    if (xs_weights_open(out, &a) == XS_OK && xs_weights_open(out2, &b) == XS_OK &&
        xs_weights_open(out3, &c) == XS_OK) {
        const xs_tensor *ta = xs_weights_find(a, "step_out"), *tb = xs_weights_find(b, "step_out"),
                        *tc = xs_weights_find(c, "step_out");
        CHECK(n_diff(ta, tb, 0) == 0, "same seed, same tokens");
        int64_t d = n_diff(ta, tc, 0);
        CHECK(d > 100, "another seed changes most tokens (%lld differ)", (long long)d);
        const int64_t *v = ta->data;
        int bad = 0;
        for (int64_t i = 9; i < xs_tensor_numel(ta); i++) {
            int64_t hi = (i % 9 == 0) ? 100 : 64;
            bad += v[i] < 0 || v[i] >= hi;
        }
        CHECK(bad == 0, "sampled tokens in range (%d bad)", bad);
    } else {
        CHECK(0, "sampled outputs readable");
    }
    xs_weights_close(a);
    xs_weights_close(b);
    xs_weights_close(c);

    /* bench lm on the tiny model: JSON line with timings and a floor */
    char bj[512];
    snprintf(bj, sizeof bj, "%s/bench.json", g_dir);
    rc = sh("%s -q bench lm --lm %s/lm_tiny/model.safetensors --config %s/lm_tiny/config.json "
            "--steps 5 --warmup 1 --backend ref --threads 1 --json > %s", bin, G, G, bj);
    CHECK(rc == 0, "bench lm exit status %d", rc);
    FILE *f = fopen(bj, "r");
    char line[2048] = "";
    if (f) { if (!fgets(line, sizeof line, f)) line[0] = 0; fclose(f); }
    double p50 = -1;
    const char *q = strstr(line, "\"p50_ms\":");
    if (q) p50 = atof(q + 9);
    CHECK(p50 > 0 && p50 < 1000, "bench lm p50 %.3f ms in %s", p50, line);
    CHECK(strstr(line, "\"floor_ms\":") != NULL, "bench lm reports a floor");

    /* usage errors */
    CHECK(sh("%s lm generate --lm x 2>/dev/null", bin) == 2, "missing options: exit 2");
    CHECK(sh("%s lm frobnicate 2>/dev/null", bin) == 2, "unknown action: exit 2");
    CHECK(sh("%s lm generate --help >/dev/null", bin) == 0, "--help: exit 0");
    CHECK(sh("%s lm generate --lm /nonexistent.safetensors --input-codes x -o y 2>/dev/null",
             bin) == 1, "missing file: exit 1");
    sh("rm -rf %s", g_dir);
    return test_summary("test_lm_cli");
}
