/*
 * main.c — `xswarm` entry: global flags and subcommand dispatch.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "xswarm.h"

typedef struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand k_commands[] = {
    {"run", cmd_run, "input.wav -> response.wav (+ text, codes, report)"},
    {"serve", cmd_serve, "WebSocket server + web UI (Kyutai protocol)"},
    {"analyze", cmd_analyze, "score speech audio out of 100 and name its defects"},
    {"diagnose", cmd_diagnose, "same run on two backends, tap by tap, with a verdict"},
    {"codec", cmd_codec, "Mimi: encode | decode | roundtrip"},
    {"lm", cmd_lm, "Moshi LM: generate | score"},
    {"bench", cmd_bench, "per-frame timings next to the memory-bandwidth floor"},
    {"info", cmd_info, "describe a model file (format, layout, tensors)"},
    {"quantize", cmd_quantize, "safetensors -> candle-layout GGUF (q8_0 | q4_0)"},
    {"gen-model", cmd_gen_model, "write a bundle with deterministic random weights"},
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f) {
    fprintf(f,
            "xswarm %s — a C runtime for Kyutai's Moshi speech model\n\n"
            "usage: xswarm [--quiet | --verbose] <command> [options]\n"
            "       xswarm --dev            test/dev entry (MOSHI_TEST_MODE=1, MOSHI_USE_CPU=1)\n"
            "       xswarm --version | --help\n\ncommands:\n",
            xswarm_version());
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(f, "\n'xswarm <command> --help' describes each command.\n");
}

int main(int argc, char **argv) {
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "--version")) { printf("xswarm %s\n", xswarm_version()); return 0; }
        if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) { xs_log_set_level(XS_LOG_ERROR); continue; }
        if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) { xs_log_set_level(XS_LOG_DEBUG); continue; }
        if (!strcmp(a, "--dev")) return cmd_dev(argc - i, argv + i);
        fprintf(stderr, "xswarm: unknown option '%s' (try --help)\n", a);
        return 2;
    }
    if (i >= argc) { usage(stderr); return 2; }
    for (int c = 0; c < N_COMMANDS; c++)
        if (!strcmp(argv[i], k_commands[c].name)) return k_commands[c].fn(argc - i, argv + i);
    fprintf(stderr, "xswarm: unknown command '%s' (try --help)\n", argv[i]);
    return 2;
}
