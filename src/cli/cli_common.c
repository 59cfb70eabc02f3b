#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "cli/cli.h"
#include "core/log.h"

int cli_common_parse(cli_common *c, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) { xs_log_set_level(XS_LOG_ERROR); return 1; }
    if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) { xs_log_set_level(XS_LOG_DEBUG); return 1; }
    if (!strcmp(a, "--gemm")) {
        if (*i + 1 >= argc) { fprintf(stderr, "xswarm: --gemm needs a value\n"); return -1; }
        const char *v = argv[++*i];
        if (strcmp(v, "rows") && strcmp(v, "mma")) {
            fprintf(stderr, "xswarm: --gemm must be rows or mma (got '%s')\n", v);
            return -1;
        }
        c->gemm = v;
        return 1;
    }
    if (!strcmp(a, "--backend") || !strcmp(a, "--threads")) {
        if (*i + 1 >= argc) { fprintf(stderr, "xswarm: %s needs a value\n", a); return -1; }
        const char *v = argv[++*i];
        if (!strcmp(a, "--backend")) {
            if (strcmp(v, "ref") && strcmp(v, "cpu") && strcmp(v, "cuda")) {
                fprintf(stderr, "xswarm: --backend must be ref, cpu or cuda (got '%s')\n", v);
                return -1;
            }
            c->backend = v;
        } else {
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n < 1 || n > 1024) {
                fprintf(stderr, "xswarm: --threads must be an integer in 1..1024 (got '%s')\n", v);
                return -1;
            }
            c->threads = (int)n;
        }
        return 1;
    }
    return 0;
}

xs_backend *cli_backend_open(const cli_common *c) {
    const char *name = c->backend ? c->backend : xs_backend_default_name();
    xs_backend *be = NULL;
    if (xs_backend_open(name, c->threads, &be) != XS_OK) {
        fprintf(stderr, "xswarm: cannot open backend '%s': %s\n", name, xs_error_msg());
        return NULL;
    }
    /* cuda's matmul family (cuda_probe.h): chosen once, before any step */
    if (c->gemm) xs_cuda_mma_select(!strcmp(c->gemm, "mma"), -1, 0);
    return be;
}

void cli_gemm_default(cli_common *c, bool batched) {
    if (!c->gemm && batched && !getenv("XSWARM_CUDA_GEMV")) c->gemm = "mma";
}

int cli_fail(const char *what) {
    const char *msg = xs_error_msg();
    if (msg[0]) fprintf(stderr, "xswarm: %s: %s\n", what, msg);
    else fprintf(stderr, "xswarm: %s\n", what);
    return 1;
}

int cli_not_implemented(const char *name) {
    fprintf(stderr, "xswarm %s: not implemented yet (see README.md, 'What works today')\n", name);
    return 2;
}

bool cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

long cli_proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    const size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) {
            v = strtol(line + n, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}
