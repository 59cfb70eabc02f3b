/*
 * test_cuda_pdl_entry.c — every kernel of the CUDA backend starts with
 * cu_pdl_enter() (src/backend/cuda/cuda_pdl.cuh).
 *
 * Captured graphs get programmatic kernel -> kernel edges (cuda_graph.cu):
 * a kernel may then be scheduled while the one before it still runs, and
 * only its griddepcontrol.wait keeps it from reading inputs not yet
 * written. A kernel without it would race in every replayed step, and
 * only sometimes show it, so the rule is checked on the sources: for each
 * `__global__` outside a comment, the first statement of the body that
 * follows must be `cu_pdl_enter();`. Runs without a GPU (CI).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* Comments blanked in place (newlines kept), so `__global__` and braces
 * inside them are not seen. */
static void blank_comments(char *s) {
    const long n = (long)strlen(s);
    for (long i = 0; i < n; i++) {
        if (s[i] == '"') { /* string literal: skip it whole */
            for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\') i++;
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '*') {
            for (; i < n && !(s[i] == '*' && i + 1 < n && s[i + 1] == '/'); i++)
                if (s[i] != '\n') s[i] = ' ';
            if (i < n) s[i] = s[i + 1] = ' ';
        } else if (s[i] == '/' && i + 1 < n && s[i + 1] == '/') {
            for (; i < n && s[i] != '\n'; i++) s[i] = ' ';
        }
    }
}

/* the file's text, comments blanked */
static char *read_code(const char *path) {
    char *s = test_read_file(path);
    if (s) blank_comments(s);
    return s;
}

/* kernels found in `code` and those whose body opens with cu_pdl_enter();
 * prints the line of each one that does not */
static void scan(const char *name, const char *code, int *kernels, int *entered) {
    for (const char *p = strstr(code, "__global__"); p; p = strstr(p + 1, "__global__")) {
        (*kernels)++;
        const char *b = strchr(p, '{');
        if (!b) break;
        b++;
        while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') b++;
        if (!strncmp(b, "cu_pdl_enter();", 15)) {
            (*entered)++;
        } else {
            int line = 1;
            for (const char *q = code; q < p; q++) line += *q == '\n';
            fprintf(stderr, "%s:%d: kernel does not start with cu_pdl_enter();\n", name, line);
        }
    }
}

static int ends_with(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/src/backend/cuda", XS_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "open %s", dir);
    if (!d) return test_summary("cuda_pdl_entry");
    int kernels = 0, entered = 0, files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!ends_with(e->d_name, ".cu") && !ends_with(e->d_name, ".cuh")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *code = read_code(path);
        CHECK(code != NULL, "read %s", path);
        if (!code) continue;
        files++;
        scan(e->d_name, code, &kernels, &entered);
        free(code);
    }
    closedir(d);
    printf("%d CUDA sources, %d kernels, %d start with cu_pdl_enter()\n", files, kernels, entered);
    /* the backend has ~60 kernels: a scan that finds few read the wrong files */
    CHECK(files >= 10 && kernels >= 40, "found the backend's kernels (%d files, %d kernels)", files, kernels);
    CHECK(entered == kernels, "every kernel starts with cu_pdl_enter() (%d of %d)", entered, kernels);

    /* the scanner itself: a kernel in a comment is not one, a missing call is seen */
    int k = 0, en = 0;
    char *t = strdup("/* __global__ void k(int a) { } */\n__global__ void __launch_bounds__(64)\n"
                     "k1(int *p) {\n    cu_pdl_enter();\n    p[0] = 1;\n}\n"
                     "// __global__ void k3() {}\n"
                     "template <int N> __global__ void k2(int *p) {\n    p[0] = N;\n}\n");
    CHECK(t != NULL, "strdup");
    if (t) {
        blank_comments(t);
        fprintf(stderr, "(one 'does not start' line for the sample's k2 is expected)\n");
        scan("sample", t, &k, &en);
        free(t);
    }
    CHECK(k == 2 && en == 1, "sample: 2 kernels (the commented one skipped), 1 with the call (%d, %d)", k, en);
    return test_summary("cuda_pdl_entry");
}
