/*
 * cmd_bench.c — `xswarm bench [batch|codec|lm|ops|pipeline] ...`: dispatch to the
 * benchmark of each component (bench_<name>.c); `batch` times many
 * conversations stepped together (bench_batch.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cmd_bench_batch(int argc, char **argv);
int cmd_bench_codec(int argc, char **argv);
int cmd_bench_lm(int argc, char **argv);
int cmd_bench_ops(int argc, char **argv);
int cmd_bench_pipeline(int argc, char **argv);

int cmd_bench(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "batch")) return cmd_bench_batch(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "codec")) return cmd_bench_codec(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "lm")) return cmd_bench_lm(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "ops")) return cmd_bench_ops(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: xswarm bench [pipeline] [options]   whole frame: encode / LM / decode\n"
               "       xswarm bench batch [options]        N sessions at once: frame p99, max real-time N\n"
               "       xswarm bench codec [options]        Mimi encode + decode per frame\n"
               "       xswarm bench lm [options]           one LM step (temporal + depformer)\n"
               "       xswarm bench ops [options]          kernels and memory bandwidth\n"
               "Each prints p50/p99 per frame next to the floor measured in the same run.\n");
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "pipeline")) return cmd_bench_pipeline(argc - 1, argv + 1);
    return cmd_bench_pipeline(argc, argv);
}
