#include "cli/cli.h"

int cmd_bench_ops(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_implemented("bench ops");
}
