/*
 * test_lm_long_slow.c — 10,000 sampled LMGen steps of lm_tiny (context 12:
 * the KV ring wraps ~830 times): resident memory stays flat and steps do not
 * get slower (the ring keeps a fixed window; positions keep counting).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "backend/ops.h"
#include "model/lm.h"
#include "testutil.h"

static long rss_kb(void) {
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = -1;
    fclose(f);
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    const char *backend = getenv("XS_LM_BACKEND") ? getenv("XS_LM_BACKEND") : "cpu";
    xs_backend *be = NULL;
    CHECK(xs_backend_open(backend, 1, &be) == XS_OK, "backend %s: %s", backend, xs_error_msg());
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path("lm_tiny/config.json"));
    lm_model *m = NULL;
    CHECK(lm_model_load(golden_path("lm_tiny/model.safetensors"), cfg, be, &m) == XS_OK, "load: %s",
          xs_error_msg());
    lm_gen *g = NULL;
    lm_sampling s;
    lm_sampling_default(&s);
    s.seed = 42;
    if (m) CHECK(lm_gen_new(m, &s, NULL, &g) == XS_OK, "gen: %s", xs_error_msg());
    if (!g) return test_summary("test_lm_long_slow");
    enum { N = 10000, W = 1000 };
    long rss_early = 0;
    double t_early = 0, t_late = 0, t0 = 0;
    int bad = 0, n_valid = 0;
    uint64_t h = 7;
    for (int st = 0; st < N; st++) {
        if (st == W) { rss_early = rss_kb(); t0 = cpu_s(); }
        if (st == 2 * W) t_early = cpu_s() - t0;
        if (st == N - W) t0 = cpu_s();
        int32_t user[8], out[9];
        for (int j = 0; j < 8; j++) {
            h = h * 6364136223846793005ull + 1442695040888963407ull;
            user[j] = (int32_t)((h >> 33) % 64);
        }
        bool valid;
        if (lm_gen_step(g, user, out, &valid) != XS_OK) {
            CHECK(0, "step %d: %s", st, xs_error_msg());
            break;
        }
        n_valid += valid;
        for (int k = 0; valid && k < 9; k++) bad += out[k] < 0 || out[k] >= (k ? 64 : 100);
    }
    t_late = cpu_s() - t0;
    long rss_late = rss_kb();
    fprintf(stderr, "%s: steps %d..%d: %.3f s, steps %d..%d: %.3f s; RSS %ld -> %ld kB\n", backend,
            W, 2 * W, t_early, N - W, N, t_late, rss_early, rss_late);
    CHECK(n_valid == N - 1, "valid steps %d", n_valid);
    CHECK(bad == 0, "%d tokens out of range", bad);
    CHECK(lm_gen_steps(g) == N, "step counter");
#ifdef __SANITIZE_ADDRESS__
    /* ASan keeps freed blocks in quarantine: RSS grows by design there */
    (void)rss_late;
#else
    CHECK(rss_late - rss_early < 1024, "RSS grew by %ld kB", rss_late - rss_early);
#endif
    CHECK(t_late < 1.5 * t_early + 0.05, "late steps slower: %.3f s vs %.3f s", t_late, t_early);
    lm_gen_free(g);
    lm_model_free(m);
    xs_backend_close(be);
    return test_summary("test_lm_long_slow");
}
