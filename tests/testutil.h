/*
 * testutil.h — tiny test harness: every check states what it checks, every
 * test program ends with "N passed, N failed" and exits non-zero on failure
 * (77 = skipped, for CTest's SKIP_RETURN_CODE).
 */
#ifndef XS_TESTUTIL_H
#define XS_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

extern int g_tests_passed, g_tests_failed;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) {                                                             \
            g_tests_passed++;                                                   \
        } else {                                                                \
            g_tests_failed++;                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* Print the summary line and return the exit status for main(). */
int test_summary(const char *name);
/* Skip the whole program (exit 77) with a reason. */
void test_skip(const char *why) __attribute__((noreturn));

/* Path of a golden file: XS_GOLDEN_DIR "/" rel. Returns a static buffer that
 * the next call overwrites: copy it before calling again. Skips the
 * test program if the golden folder is missing. */
const char *golden_path(const char *rel);
/* The xswarm CLI to run: $XS_BINARY (a copied build on another machine),
 * else the one this build made (XS_BINARY, set by CMake). */
const char *test_binary(void);
/* A whole file as a NUL-terminated string (malloc'd; NULL when it cannot
 * be read). */
char *test_read_file(const char *path);
/* Deterministic, never-all-zero random data: uniform in [lo, hi). */
void test_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi);
/* max |a - b| over n values. */
double test_max_abs_diff(const float *a, const float *b, int64_t n);
/* Normalized error sum (a-b)^2 / sum a^2 in double (ggml's nmse). */
double test_nmse(const float *ref, const float *x, int64_t n);

#endif
