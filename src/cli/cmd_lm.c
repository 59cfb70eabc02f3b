/*
 * cmd_lm.c — `xswarm lm generate` and `xswarm lm score`: the Moshi LM alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/log.h"
#include "diag/taps.h"
#include "formats/safetensors.h"
#include "formats/weights.h"
#include "model/lm.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: xswarm lm generate --lm FILE [--config FILE] --input-codes IN.safetensors\n"
        "                          [--steps N] [--greedy | --seed N --temp T --topk K\n"
        "                          --text-temp T --text-topk K] [--backend ref|cpu|cuda]\n"
        "                          [--threads N] [--kv f32|bf16|q8] [--dump-taps FILE]\n"
        "                          [--condition NAME=VALUE ...] -o OUT.safetensors\n"
        "       xswarm lm score --lm FILE [--config FILE] --codes IN.safetensors\n"
        "                          [--backend ...] [--threads N] [--kv f32|bf16|q8]\n"
        "                          -o OUT.safetensors\n"
        "\n"
        "generate: runs LMGen.step once per row of IN's `input_codes` (or `codes`),\n"
        "  I64/I32 [steps, n_q - dep_q] user codes. OUT: `step_out` I64 [steps, 1 + dep_q]\n"
        "  ([text, audio 0..dep_q-1], -1 rows where nothing came out: the first\n"
        "  max(delays) steps) and `step_out_valid` BOOL [steps].\n"
        "  Sampling defaults are Kyutai's LMGen ones (text temp 0.7 top-k 25, audio\n"
        "  temp 0.8 top-k 250) or the config's \"lm_gen_config\"; seed 0. --topk 0 = all.\n"
        "  --greedy takes the argmax (ties: lowest index).\n"
        "  --condition NAME=VALUE (repeatable) sets a conditioner of a conditioned model\n"
        "  (config \"conditioners\" + \"fuser\", e.g. moshi_dev_2b: description=very_good);\n"
        "  a conditioner left unset adds its learnt padding (Kyutai's value None).\n"
        "  score runs conditioned models with every conditioner unset.\n"
        "--kv f32|bf16|q8: the temporal transformer's KV cache. Default: the weights'\n"
        "  precision, f32 for f32 weights, else bf16 (bf16/f16/q8_0/q4_0 files).\n"
        "  --kv bf16 halves f32's memory (values rounded to nearest even); --kv q8\n"
        "  stores Q8_0 blocks (34 B per 32 values, 53%% of bf16). Both differ slightly\n"
        "  from f32.\n"
        "score: teacher-forced forward like Kyutai's LMModel.forward on IN's `codes`\n"
        "  I64/I32 [B, 1 + n_q, T] (or [1 + n_q, T]). OUT: `logits` F32 [B, dep_q, T, card],\n"
        "  `text_logits` F32 [B, 1, T, text_card], `mask` BOOL [B, dep_q, T], `text_mask`.\n"
        "\n"
        "--lm takes a safetensors (PyTorch, candle or PyTorch-int8 layout) or a candle\n"
        "GGUF. Without --config, config.json next to the LM file is used if present,\n"
        "else the built-in Moshi 7B (2024-09) configuration.\n");
}

typedef struct lm_args {
    const char *lm, *config, *input, *out, *taps;
    long steps;
    bool greedy;
    xs_dtype kv_dtype; /* XS_F32, XS_BF16, XS_Q8_0 or LM_KV_DEFAULT (no --kv) */
    lm_sampling samp;
    const char *cond[LM_MAX_COND]; /* --condition NAME=VALUE, checked against the model later */
    int n_cond;
    cli_common common;
} lm_args;

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end;
    double d = strtod(v, &end);
    if (!*v || *end || !(d >= lo && d <= hi)) {
        fprintf(stderr, "xswarm lm: %s needs a number in [%g, %g] (got '%s')\n", opt, lo, hi, v);
        return -1;
    }
    *out = d;
    return 0;
}

/* Returns 0 ok, 2 usage error. */
static int parse(int argc, char **argv, lm_args *a, bool generate) {
    memset(a, 0, sizeof *a);
    lm_sampling_default(&a->samp);
    /* -1: not given; filled from the model's config after loading */
    a->samp.temp = a->samp.text_temp = -1.f;
    a->samp.top_k = a->samp.text_top_k = -1;
    a->steps = -1;
    a->kv_dtype = LM_KV_DEFAULT; /* the weights decide (lm_kv_dtype_default) */
    for (int i = 2; i < argc; i++) {
        int c = cli_common_parse(&a->common, argc, argv, &i);
        if (c < 0) return 2;
        if (c > 0) continue;
        const char *o = argv[i];
        if (!strcmp(o, "--greedy")) { a->greedy = true; continue; }
        if (i + 1 >= argc) {
            fprintf(stderr, "xswarm lm: unknown option or missing value: %s\n", o);
            return 2;
        }
        const char *v = argv[++i];
        double d;
        if (!strcmp(o, "--lm")) a->lm = v;
        else if (!strcmp(o, "--config")) a->config = v;
        else if (!strcmp(o, "-o") || !strcmp(o, "--output")) a->out = v;
        else if (!strcmp(o, "--kv")) {
            const int kv = lm_kv_dtype_parse(v);
            if (kv < 0) {
                fprintf(stderr, "xswarm lm: --kv takes f32, bf16 or q8 (got '%s')\n", v);
                return 2;
            }
            a->kv_dtype = (xs_dtype)kv;
        }
        else if (generate && !strcmp(o, "--input-codes")) a->input = v;
        else if (!generate && !strcmp(o, "--codes")) a->input = v;
        else if (generate && !strcmp(o, "--dump-taps")) a->taps = v;
        else if (generate && !strcmp(o, "--condition")) {
            if (!strchr(v, '=') || v[0] == '=') {
                fprintf(stderr, "xswarm lm: --condition takes NAME=VALUE (got '%s')\n", v);
                return 2;
            }
            if (a->n_cond == LM_MAX_COND) {
                fprintf(stderr, "xswarm lm: at most %d --condition options\n", LM_MAX_COND);
                return 2;
            }
            a->cond[a->n_cond++] = v;
        }
        else if (generate && !strcmp(o, "--steps")) {
            if (parse_num(o, v, 0, 1e9, &d)) return 2;
            a->steps = (long)d;
        } else if (generate && !strcmp(o, "--seed")) {
            if (parse_num(o, v, 0, 1.8e19, &d)) return 2;
            a->samp.seed = strtoull(v, NULL, 10);
        } else if (generate && !strcmp(o, "--temp")) {
            if (parse_num(o, v, 0, 100, &d)) return 2;
            a->samp.temp = (float)d;
        } else if (generate && !strcmp(o, "--text-temp")) {
            if (parse_num(o, v, 0, 100, &d)) return 2;
            a->samp.text_temp = (float)d;
        } else if (generate && !strcmp(o, "--topk")) {
            if (parse_num(o, v, 0, 1e7, &d)) return 2;
            a->samp.top_k = (int)d;
        } else if (generate && !strcmp(o, "--text-topk")) {
            if (parse_num(o, v, 0, 1e7, &d)) return 2;
            a->samp.text_top_k = (int)d;
        } else {
            fprintf(stderr, "xswarm lm %s: unknown option %s (see --help)\n",
                    generate ? "generate" : "score", o);
            return 2;
        }
    }
    a->samp.greedy = a->greedy;
    const char *need = !a->lm ? "--lm" : !a->input ? (generate ? "--input-codes" : "--codes")
                       : !a->out ? "-o" : NULL;
    if (need) {
        fprintf(stderr, "xswarm lm %s: %s is required (see --help)\n",
                generate ? "generate" : "score", need);
        return 2;
    }
    return 0;
}

/* --config, else config.json beside the LM file, else NULL (7B preset). */
static const char *pick_config(const lm_args *a, char *buf, size_t n) {
    return a->config ? a->config : lm_config_beside(a->lm, buf, n);
}

static int load(const lm_args *a, xs_backend **be, lm_model **m) {
    *be = cli_backend_open(&a->common);
    if (!*be) return 1;
    char cfgbuf[4096];
    const char *cfg = pick_config(a, cfgbuf, sizeof cfgbuf);
    XS_LOGI("lm: loading %s (config: %s)", a->lm, cfg ? cfg : "built-in moshi 7B preset");
    if (lm_model_load(a->lm, cfg, *be, m) != XS_OK) return cli_fail("loading the LM");
    if (lm_model_set_kv_dtype(*m, a->kv_dtype) != XS_OK) return cli_fail("setting the KV dtype");
    return 0;
}

/* Integer tensor -> int64 copy. */
static int64_t *ints(const xs_tensor *t, const char *path, const char *name) {
    if (t->dtype != XS_I64 && t->dtype != XS_I32) {
        fprintf(stderr, "xswarm lm: %s: tensor '%s' must be I64 or I32 (is %s)\n", path, name,
                xs_dtype_name(t->dtype));
        return NULL;
    }
    int64_t n = xs_tensor_numel(t);
    int64_t *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; v && i < n; i++)
        v[i] = t->dtype == XS_I64 ? ((const int64_t *)t->data)[i] : ((const int32_t *)t->data)[i];
    return v;
}

/* --condition NAME=VALUE options onto the generator; 0 ok, 1 error. */
static int apply_conditions(const lm_args *a, const lm_model *m, lm_gen *g) {
    const lm_config *c = &m->cfg;
    for (int i = 0; i < a->n_cond; i++) {
        char name[LM_COND_NAME];
        const char *eq = strchr(a->cond[i], '=');
        snprintf(name, sizeof name, "%.*s", (int)(eq - a->cond[i]), a->cond[i]);
        if (lm_gen_set_condition(g, name, eq + 1) != XS_OK) {
            cli_fail("--condition");
            return 1;
        }
    }
    for (int k = 0; k < c->n_cond; k++) {
        bool set = false;
        for (int i = 0; i < a->n_cond; i++)
            set = set || (!strncmp(a->cond[i], c->cond[k].name, strlen(c->cond[k].name)) &&
                          a->cond[i][strlen(c->cond[k].name)] == '=');
        if (!set)
            XS_LOGI("lm generate: conditioner '%s' not set (--condition %s=VALUE): learnt padding",
                    c->cond[k].name, c->cond[k].name);
    }
    return 0;
}

static int generate(int argc, char **argv) {
    lm_args a;
    int rc = parse(argc, argv, &a, true);
    if (rc) return rc;
    xs_backend *be = NULL;
    lm_model *m = NULL;
    xs_weights *in = NULL;
    xs_taps *taps = NULL;
    lm_gen *g = NULL;
    int64_t *codes = NULL, *out = NULL;
    uint8_t *valid = NULL;
    if ((rc = load(&a, &be, &m))) goto done;
    rc = 1;
    if (xs_weights_open(a.input, &in) != XS_OK) { cli_fail("reading the input codes"); goto done; }
    const xs_tensor *t = xs_weights_find(in, "input_codes");
    const char *tname = "input_codes";
    if (!t) { t = xs_weights_find(in, "codes"); tname = "codes"; }
    int n_user = m->cfg.n_q - m->cfg.dep_q, dq = m->cfg.dep_q;
    if (!t) {
        fprintf(stderr, "xswarm lm generate: %s has no tensor 'input_codes' or 'codes'\n", a.input);
        goto done;
    }
    if (t->ndim != 2 || t->shape[1] != n_user) {
        char sh[64];
        fprintf(stderr, "xswarm lm generate: %s: '%s' has shape %s, expected [steps, %d]\n",
                a.input, tname, xs_tensor_shape_str(t, sh, sizeof sh), n_user);
        goto done;
    }
    if (!(codes = ints(t, a.input, tname))) goto done;
    long steps = a.steps >= 0 ? a.steps : (long)t->shape[0];
    if (steps > t->shape[0]) {
        fprintf(stderr, "xswarm lm generate: --steps %ld but %s has only %lld rows\n", steps,
                a.input, (long long)t->shape[0]);
        goto done;
    }
    lm_sampling def;
    lm_sampling_from_config(&def, &m->cfg);
    if (a.samp.temp < 0) a.samp.temp = def.temp;
    if (a.samp.text_temp < 0) a.samp.text_temp = def.text_temp;
    if (a.samp.top_k < 0) a.samp.top_k = def.top_k;
    if (a.samp.text_top_k < 0) a.samp.text_top_k = def.text_top_k;
    if (a.taps) taps = xs_taps_new();
    if (lm_gen_new(m, &a.samp, taps, &g) != XS_OK) { cli_fail("creating the generator"); goto done; }
    if (apply_conditions(&a, m, g)) goto done;
    out = malloc((size_t)(steps ? steps : 1) * (1 + dq) * sizeof *out);
    valid = malloc((size_t)(steps ? steps : 1));
    if (!out || !valid) { fprintf(stderr, "xswarm lm generate: out of memory\n"); goto done; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long s = 0; s < steps; s++) {
        int32_t user[LM_MAX_STREAMS], o[LM_MAX_DEP + 1];
        for (int j = 0; j < n_user; j++) user[j] = (int32_t)codes[s * n_user + j];
        bool ok = false;
        if (lm_gen_step(g, user, o, &ok) != XS_OK) {
            char what[64];
            snprintf(what, sizeof what, "step %ld", s);
            cli_fail(what);
            goto done;
        }
        for (int k = 0; k <= dq; k++) out[s * (1 + dq) + k] = o[k];
        valid[s] = ok;
        if (steps >= 100 && (s + 1) % 100 == 0) XS_LOGI("lm generate: %ld / %ld steps", s + 1, steps);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = ((t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    XS_LOGI("lm generate: %ld steps in %.1f ms (%.2f ms/step)", steps, ms, steps ? ms / steps : 0);
    xs_st_writer *w = xs_st_writer_new();
    int64_t s2[2] = {steps, 1 + dq}, s1[1] = {steps};
    xs_status st = w ? xs_st_writer_add(w, "step_out", XS_I64, 2, s2, out) : XS_ERR_NOMEM;
    if (st == XS_OK) st = xs_st_writer_add(w, "step_out_valid", XS_BOOL, 1, s1, valid);
    if (st == XS_OK) st = xs_st_writer_save(w, a.out);
    xs_st_writer_free(w);
    if (st != XS_OK) { cli_fail("writing the output"); goto done; }
    if (taps && xs_taps_save(taps, a.taps) != XS_OK) { cli_fail("writing the taps"); goto done; }
    rc = 0;
done:
    lm_gen_free(g);
    xs_taps_free(taps);
    free(codes); free(out); free(valid);
    xs_weights_close(in);
    lm_model_free(m);
    xs_backend_close(be);
    return rc;
}

static int score(int argc, char **argv) {
    lm_args a;
    int rc = parse(argc, argv, &a, false);
    if (rc) return rc;
    xs_backend *be = NULL;
    lm_model *m = NULL;
    xs_weights *in = NULL;
    int64_t *codes = NULL;
    float *lg = NULL, *tl = NULL;
    uint8_t *mk = NULL, *tm = NULL;
    if ((rc = load(&a, &be, &m))) goto done;
    rc = 1;
    if (xs_weights_open(a.input, &in) != XS_OK) { cli_fail("reading the codes"); goto done; }
    const xs_tensor *t = xs_weights_find(in, "codes");
    int K = 1 + m->cfg.n_q;
    if (!t) { fprintf(stderr, "xswarm lm score: %s has no tensor 'codes'\n", a.input); goto done; }
    int64_t B = t->ndim == 3 ? t->shape[0] : 1;
    int64_t T = t->shape[t->ndim - 1];
    if ((t->ndim != 2 && t->ndim != 3) || t->shape[t->ndim - 2] != K || T < 1) {
        char sh[64];
        fprintf(stderr, "xswarm lm score: %s: 'codes' has shape %s, expected [B, %d, T]\n",
                a.input, xs_tensor_shape_str(t, sh, sizeof sh), K);
        goto done;
    }
    if (!(codes = ints(t, a.input, "codes"))) goto done;
    int dq = m->cfg.dep_q, C = m->cfg.card, V = m->cfg.text_card;
    lg = malloc((size_t)(B * dq * T * C) * sizeof *lg);
    tl = malloc((size_t)(B * T * V) * sizeof *tl);
    mk = malloc((size_t)(B * dq * T));
    tm = malloc((size_t)(B * T));
    if (!lg || !tl || !mk || !tm) { fprintf(stderr, "xswarm lm score: out of memory\n"); goto done; }
    if (lm_score(m, codes, (int)B, (int)T, lg, mk, tl, tm) != XS_OK) { cli_fail("scoring"); goto done; }
    xs_st_writer *w = xs_st_writer_new();
    int64_t sl[4] = {B, dq, T, C}, stl[4] = {B, 1, T, V}, sm[3] = {B, dq, T}, stm[3] = {B, 1, T};
    xs_status st = w ? xs_st_writer_add(w, "logits", XS_F32, 4, sl, lg) : XS_ERR_NOMEM;
    if (st == XS_OK) st = xs_st_writer_add(w, "text_logits", XS_F32, 4, stl, tl);
    if (st == XS_OK) st = xs_st_writer_add(w, "mask", XS_BOOL, 3, sm, mk);
    if (st == XS_OK) st = xs_st_writer_add(w, "text_mask", XS_BOOL, 3, stm, tm);
    if (st == XS_OK) st = xs_st_writer_save(w, a.out);
    xs_st_writer_free(w);
    if (st != XS_OK) { cli_fail("writing the output"); goto done; }
    rc = 0;
done:
    free(codes); free(lg); free(tl); free(mk); free(tm);
    xs_weights_close(in);
    lm_model_free(m);
    xs_backend_close(be);
    return rc;
}

int cmd_lm(int argc, char **argv) {
    /* argv[0] = "lm", argv[1] = action */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (cli_wants_help(argc, argv)) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "generate")) return generate(argc, argv);
    if (!strcmp(argv[1], "score")) return score(argc, argv);
    fprintf(stderr, "xswarm lm: unknown action '%s' (generate, score)\n", argv[1]);
    usage(stderr);
    return 2;
}
