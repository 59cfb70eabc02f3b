/*
 * cmd_diagnose.c — `xswarm diagnose`: backend bug or code bug, and where
 * (issue 7). The work is in diag/diagnose.c; this file parses options,
 * makes the experiment folder, prints the report, maps the verdict to the
 * exit status (0 consistent, 3 any other verdict, 1-2 errors).
 *
 * `xswarm diagnose --ops`: the per-op parity suite (diag/parity.h).
 * `xswarm diagnose --replay FILE`: one recorded op call on two backends
 * (diag/op_record.h): exit 3 when they differ beyond the op's tolerance.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/fault.h"
#include "cli/cli.h"
#include "cli/model_args.h"
#include "diag/diagnose.h"
#include "diag/experiment.h"
#include "diag/op_record.h"
#include "diag/parity.h"

static void usage(void) {
    fprintf(stderr,
            "usage: xswarm diagnose [MODEL OPTIONS] [--backends A,B] [--input IN] [--steps N]\n"
            "                       [--reference-weights FILE] [--against DUMP.safetensors]\n"
            "                       [--json] [--out DIR] [--greedy] [--seed N] [--threads N]\n"
            "                       [--random moshi-7b[:bf16|q8_0|q4_0] | --random tiny[:DTYPE]]\n"
            "                       [--kv DTYPE | --kv A_DTYPE,B_DTYPE] [--no-record]\n"
            "       xswarm diagnose --ops [--backends A,B] [--filter OPS] [--small] [--verbose]\n"
            "       xswarm diagnose --replay op-OP-stepN.safetensors [--backends A,B]\n"
            "A is the reference, B the backend under suspicion (default cpu,cuda when a GPU\n"
            "is usable, else ref,cpu). --input defaults to assets/test-utterance.wav;\n"
            "--steps N: input frames (80 ms each) to run (default: all).\n"
            "Verdicts: consistent (exit 0), backend | weights | numerics (exit 3).\n"
            "backend verdict: the first call of the op that differs is saved in the experiment\n"
            "folder, and `reproduce:` replays only that call (--replay: exit 3 when beyond the\n"
            "op's tolerance, 0 when within). --random: Moshi 7B + Mimi at their real shapes with\n"
            "random weights made in memory (tiny: a 2-layer LM, for tests). --kv f32,bf16 runs B\n"
            "with another KV cache dtype than A, to show what it costs.\n"
            "XSWARM_FAULT=<backend>:<op>[@step=N][@until=M] plants a bug to test the diagnosis.\n");
    model_args_usage(stderr);
}

static int split_backends(const char *v, char *a, char *b, size_t n) {
    const char *comma = strchr(v, ',');
    if (!comma || comma == v || !comma[1] || (size_t)(comma - v) >= n || strlen(comma + 1) >= n)
        return -1;
    snprintf(a, n, "%.*s", (int)(comma - v), v);
    snprintf(b, n, "%s", comma + 1);
    const char *ok[] = {"ref", "cpu", "cuda"};
    int good = 0;
    for (int i = 0; i < 3; i++) good += !strcmp(a, ok[i]) + !strcmp(b, ok[i]);
    return good == 2 ? 0 : -1;
}

/* "f32", "bf16", "q8"/"q8_0" -> dtype; -1 when unknown. */
static int kv_dtype(const char *v, size_t n) {
    if (n == 3 && !strncmp(v, "f32", 3)) return XS_F32;
    if (n == 4 && !strncmp(v, "bf16", 4)) return XS_BF16;
    if ((n == 2 && !strncmp(v, "q8", 2)) || (n == 4 && !strncmp(v, "q8_0", 4))) return XS_Q8_0;
    return -1;
}

/* --kv D (both) or --kv A,B. */
static int parse_kv(const char *v, xs_dtype *a, xs_dtype *b) {
    const char *comma = strchr(v, ',');
    int da = kv_dtype(v, comma ? (size_t)(comma - v) : strlen(v));
    int db = comma ? kv_dtype(comma + 1, strlen(comma + 1)) : da;
    if (da < 0 || db < 0) {
        fprintf(stderr, "xswarm diagnose: --kv wants f32, bf16 or q8, or A,B (e.g. f32,q8); got "
                        "'%s'\n", v);
        return -1;
    }
    *a = (xs_dtype)da;
    *b = (xs_dtype)db;
    return 0;
}

static int run_replay(const char *path, const char *A, const char *B, int threads) {
    bool over = false;
    if (xs_op_replay(path, A[0] ? A : NULL, B[0] ? B : NULL, threads, stdout, &over) != XS_OK)
        return cli_fail("diagnose --replay");
    return over ? 3 : 0;
}

static int run_ops(const char *A, const char *B, const char *filter, bool small, bool verbose,
                   int threads) {
    xs_backend *a = NULL, *b = NULL;
    if (xs_backend_open(A, threads, &a) != XS_OK) return cli_fail("cannot open backend A");
    if (xs_backend_open(B, threads, &b) != XS_OK) {
        xs_backend_close(a);
        return cli_fail("cannot open backend B");
    }
    xs_parity_opts po;
    memset(&po, 0, sizeof po);
    po.filter = filter;
    po.real_shapes = !small;
    po.seed = XS_PARITY_SEED;
    po.report = stdout;
    po.verbose = verbose;
    int np = 0, nf = 0;
    printf("per-op parity: %s (reference) vs %s%s\n", A, B, small ? "" : ", real shapes included");
    xs_status rc = xs_parity_run_opts(a, b, &po, &np, &nf);
    xs_backend_close(b);
    xs_backend_close(a);
    if (rc != XS_OK) return cli_fail("parity suite");
    printf("%d passed, %d failed\n", np, nf);
    return nf ? 3 : 0;
}

int cmd_diagnose(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage();
        return 0;
    }
    model_args ma;
    memset(&ma, 0, sizeof ma);
    xs_diag_opts o;
    memset(&o, 0, sizeof o);
    char A[16] = "", B[16] = "";
    const char *out = NULL, *filter = NULL, *replay = NULL;
    bool json = false, ops = false, small = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--kv") && i + 1 < argc) { /* before model_args: A,B form */
            if (parse_kv(argv[++i], &o.kv_a, &o.kv_b)) return 2;
            continue;
        }
        int m = model_args_parse(&ma, argc, argv, &i);
        if (m < 0) return 2;
        if (m > 0) continue;
        bool has_v = i + 1 < argc;
        if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--ops")) ops = true;
        else if (!strcmp(a, "--small")) small = true;
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) verbose = true;
        else if (!strcmp(a, "--greedy")) o.greedy = true;
        else if (!strcmp(a, "--no-record")) o.no_record = true;
        else if (!has_v) {
            fprintf(stderr, "xswarm diagnose: unknown option or missing value: %s\n", a);
            usage();
            return 2;
        } else if (!strcmp(a, "--backends")) {
            if (split_backends(argv[++i], A, B, sizeof A)) {
                fprintf(stderr, "xswarm diagnose: --backends wants A,B among ref, cpu, cuda\n");
                return 2;
            }
        } else if (!strcmp(a, "--input")) o.input = argv[++i];
        else if (!strcmp(a, "--out")) out = argv[++i];
        else if (!strcmp(a, "--filter")) filter = argv[++i];
        else if (!strcmp(a, "--reference-weights")) o.reference_weights = argv[++i];
        else if (!strcmp(a, "--against")) o.against = argv[++i];
        else if (!strcmp(a, "--replay")) replay = argv[++i];
        else if (!strcmp(a, "--random")) o.random = argv[++i];
        else if (!strcmp(a, "--steps") || !strcmp(a, "--seed") || !strcmp(a, "--threads")) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v < (strcmp(a, "--seed") ? 1 : 0)) {
                fprintf(stderr, "xswarm diagnose: %s wants a %s integer\n", a,
                        strcmp(a, "--seed") ? "positive" : "non-negative");
                return 2;
            }
            if (!strcmp(a, "--steps")) o.frames = (int)v;
            else if (!strcmp(a, "--seed")) o.seed = (uint64_t)v;
            else o.threads = (int)v;
        } else {
            fprintf(stderr, "xswarm diagnose: unknown option %s\n", a);
            usage();
            return 2;
        }
    }
    (void)xs_fault_active(); /* announce a planted fault before anything runs */
    if (replay) return run_replay(replay, A, B, o.threads);
    if (!A[0]) {
        bool gpu = xs_backend_cuda_usable(NULL, 0);
        snprintf(A, sizeof A, "%s", gpu ? "cpu" : "ref");
        snprintf(B, sizeof B, "%s", gpu ? "cuda" : "cpu");
    }
    if (ops) return run_ops(A, B, filter, small, verbose, o.threads);

    static xs_bundle bundle;
    model_pick pick;
    if (o.random) {
        if (o.reference_weights) {
            fprintf(stderr, "xswarm diagnose: --reference-weights compares a model file; "
                            "--random has none\n");
            return 2;
        }
        if (ma.model_dir || ma.hf_repo || ma.lm || ma.mimi) {
            fprintf(stderr, "xswarm diagnose: --random replaces the model files; give one or "
                            "the other\n");
            return 2;
        }
    } else {
        if (model_args_pick(&ma, &bundle, &pick)) return 2;
        if (pick == MODEL_PICK_EMBEDDED)
            fprintf(stderr, "xswarm diagnose: no model given and no Moshi weights in the Hugging "
                            "Face cache: diagnosing the embedded tiny random model (as --dev "
                            "does)\n");
        if (xs_bundle_check(&bundle, true, true, false) != XS_OK) return cli_fail("model");
        o.lm = bundle.lm;
        o.lm_config = bundle.lm_config[0] ? bundle.lm_config : NULL;
        o.mimi = bundle.mimi;
        o.mimi_config = bundle.mimi_config[0] ? bundle.mimi_config : NULL;
    }
    if (!o.input) o.input = getenv("XSWARM_TEST_UTTERANCE");
    static char utt[4096];
    if (!o.input) {
        xs_find_test_utterance(utt, sizeof utt); /* the utterance --dev uses */
        if (utt[0]) o.input = utt;
    }
    if (!o.input) {
        fprintf(stderr, "xswarm diagnose: --input IN is required (or $XSWARM_TEST_UTTERANCE)\n");
        return 2;
    }
    char dir[2048];
    if (out) {
        if (xs_mkdir_p(out) != XS_OK) return cli_fail("cannot create --out folder");
        snprintf(dir, sizeof dir, "%s", out);
    } else if (xs_experiment_create("tmp/experiments", "diagnose", dir, sizeof dir) != XS_OK) {
        return cli_fail("cannot create the experiment folder");
    }
    o.backend_a = A;
    o.backend_b = B;
    o.out_dir = dir;
    char logp[2100];
    snprintf(logp, sizeof logp, "%s/diagnose.log", dir);
    FILE *log = fopen(logp, "w");
    o.log = log;
    xs_diag_result r;
    xs_status rc = xs_diagnose_run(&o, &r);
    if (log) fclose(log);
    if (rc != XS_OK) return cli_fail("diagnose");
    char p[2100];
    snprintf(p, sizeof p, "%s/report.json", dir);
    FILE *f = fopen(p, "w");
    if (f) {
        xs_diag_write_json(&r, f);
        fclose(f);
    }
    snprintf(p, sizeof p, "%s/report.txt", dir);
    if ((f = fopen(p, "w"))) {
        xs_diag_print_text(&r, f);
        fclose(f);
    }
    if (json) {
        xs_diag_write_json(&r, stdout);
    } else {
        xs_diag_print_text(&r, stdout);
        printf("details: %s\n", dir);
    }
    return strcmp(r.verdict, "consistent") ? 3 : 0;
}
