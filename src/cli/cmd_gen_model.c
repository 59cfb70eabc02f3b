#include "cli/cli.h"

int cmd_gen_model(int argc, char **argv) {
    (void)argc;
    (void)argv;
    return cli_not_implemented("gen-model");
}
