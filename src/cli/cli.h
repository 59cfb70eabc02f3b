/*
 * cli.h — the `xswarm` command: one function per subcommand, each in its
 * own cmd_<name>.c. A subcommand returns the process exit status:
 * 0 success, 1 runtime failure, 2 usage error / not implemented,
 * 3 a diagnosis that found a problem (diagnose only).
 */
#ifndef XS_CLI_CLI_H
#define XS_CLI_CLI_H

#include <stdbool.h>

#include "backend/backend.h"

int cmd_run(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_analyze(int argc, char **argv);
int cmd_diagnose(int argc, char **argv);
int cmd_codec(int argc, char **argv);
int cmd_lm(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_gen_model(int argc, char **argv);
int cmd_dev(int argc, char **argv);

/* Options every model-running subcommand takes. */
typedef struct cli_common {
    const char *backend; /* NULL: default (cuda if usable, else cpu) */
    int threads;         /* 0: one per core */
    const char *gemm;    /* cuda matmul kernels: "rows" | "mma"; NULL: the command's
                          * default (cli_gemm_default) or XSWARM_CUDA_GEMV */
} cli_common;

/* If argv[*i] is a common option (--backend X, --threads N, --quiet,
 * --verbose), consume it (and its value), advance *i and return 1; return 0
 * if not; return -1 (message printed) on a bad value. */
int cli_common_parse(cli_common *c, int argc, char **argv, int *i);
/* Open the chosen backend, printing a clear error on failure (NULL). */
xs_backend *cli_backend_open(const cli_common *c);
/* A command that steps batches (bench batch, bench lm --batch > 1) calls this
 * before cli_backend_open: without --gemm (or XSWARM_CUDA_GEMV) the cuda
 * backend then takes the tensor-core matmul at every M. Process-wide and
 * fixed before the first step, so a batched row still equals that process's
 * batch-1 row bit for bit. */
void cli_gemm_default(cli_common *c, bool batched);
/* Print "xswarm: <msg>" + the library's last error to stderr; returns 1. */
int cli_fail(const char *what);
/* For stubs: "xswarm <name>: not implemented yet" and exit status 2. */
int cli_not_implemented(const char *name);
/* True if argv holds -h or --help. */
bool cli_wants_help(int argc, char **argv);
/* A kB field of /proc/self/status (key with its colon, e.g. "VmRSS:"), -1 if absent. */
long cli_proc_status_kb(const char *key);

#endif
