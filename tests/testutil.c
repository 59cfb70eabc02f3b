#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>

int g_tests_passed, g_tests_failed;

int test_summary(const char *name) {
    printf("%s: %d passed, %d failed\n", name, g_tests_passed, g_tests_failed);
    return g_tests_failed ? 1 : 0;
}

void test_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

const char *golden_path(const char *rel) {
    static char buf[4096];
    struct stat st;
    /* $XS_GOLDEN_DIR overrides the compile-time folder (e.g. a test binary
     * built here and run on another machine with the goldens carried along). */
    const char *env = getenv("XS_GOLDEN_DIR");
    if (env && *env) {
        if (stat(env, &st) != 0) test_skip("golden folder $XS_GOLDEN_DIR not found");
        snprintf(buf, sizeof buf, "%s/%s", env, rel);
        return buf;
    }
#ifdef XS_GOLDEN_DIR
    if (stat(XS_GOLDEN_DIR, &st) != 0) test_skip("golden folder " XS_GOLDEN_DIR " not found");
    snprintf(buf, sizeof buf, "%s/%s", XS_GOLDEN_DIR, rel);
#else
    test_skip("XS_GOLDEN_DIR not defined");
#endif
    return buf;
}

/* splitmix64: a test-only generator, independent of the library's RNG. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void test_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + 1;
    for (int64_t i = 0; i < n; i++) {
        double u = (double)(splitmix64(&s) >> 11) * 0x1.0p-53;
        x[i] = (float)(lo + (hi - lo) * u);
    }
}

double test_max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates as max */
    }
    return m;
}

double test_nmse(const float *ref, const float *x, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)ref[i] - (double)x[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    return den > 0 ? num / den : num;
}

char *test_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = 0;
    fclose(f);
    return s;
}

const char *test_binary(void) {
    const char *e = getenv("XS_BINARY");
#ifdef XS_BINARY
    return e && *e ? e : XS_BINARY;
#else
    return e && *e ? e : "xswarm";
#endif
}
