/*
 * test_lm_batch.c — batched LM steps (lm_gen_step_batch) give every session
 * exactly the tokens of the same session stepped alone (lm_gen_step), on
 * lm_tiny, ref and cpu backends (and cuda when usable):
 *   - B = 3 and B = 5 sessions with different user codes (the golden
 *     input_codes, shifted and permuted per session) and different seeds;
 *   - greedy, sampling, and a mix of both in one batch;
 *   - sessions join late, leave, come back in another row, and are reset
 *     mid-run while the others go on; the row order changes every step;
 *   - runs past the 12-step context (the KV ring wraps);
 *   - one session records taps in the batch: every tap equals its solo
 *     run's, bit for bit;
 *   - bad calls (duplicate generator, over capacity, bad code) fail and
 *     advance nobody;
 *   - the Q8_0 GGUF of lm_tiny_candle_q8 (quantized matmul kernels).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "diag/taps.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

#define MAX_S 8
#define TICKS 26
#define NU 8 /* user codes per step (lm_tiny: n_q 16 - dep_q 8) */
#define NS 9 /* 1 + dep_q */

static const int64_t *g_codes; /* golden input_codes [60, 8] */
static int g_n_codes;

/* User codes of session i at its k-th step (counted across resets). */
static void codes_of(int i, int k, int32_t *out) {
    const int64_t *row = g_codes + (size_t)((k + 7 * i) % g_n_codes) * NU;
    for (int j = 0; j < NU; j++) out[j] = (int32_t)((row[(j + i) % NU] + 11 * i) % 64);
}

typedef struct plan {
    int n;                     /* sessions */
    bool active[MAX_S][TICKS]; /* stepped at tick t */
    int reset_at[MAX_S];       /* tick before which session i is reset (-1: never) */
    lm_sampling samp[MAX_S];
} plan;

static void make_plan(plan *p, int n, int mode) {
    memset(p, 0, sizeof *p);
    p->n = n;
    static const int join[MAX_S] = {0, 0, 2, 5, 1, 0, 0, 0};
    static const int leave[MAX_S] = {TICKS, 15, TICKS, 21, TICKS, TICKS, TICKS, TICKS};
    for (int i = 0; i < n; i++) {
        for (int t = join[i]; t < leave[i]; t++) p->active[i][t] = true;
        p->reset_at[i] = -1;
        lm_sampling_default(&p->samp[i]);
        p->samp[i].seed = 1000 + 17 * (uint64_t)i;
        /* mode 0: all greedy, 1: all sampling, 2: mixed */
        p->samp[i].greedy = mode == 0 || (mode == 2 && i % 2 == 1);
    }
    if (n > 1) for (int t = 19; t < 23; t++) p->active[1][t] = true; /* comes back */
    if (n > 2) p->reset_at[2] = 10;
    if (n > 0) p->reset_at[0] = 18;
    if (n > 4) p->reset_at[4] = 7;
}

typedef struct record {
    int32_t out[TICKS][NS];
    bool valid[TICKS];
} record;

/* Session i alone: the same resets and steps, one lm_gen_step each. */
static bool run_alone(lm_model *m, const plan *p, int i, xs_taps *taps, record *rec) {
    lm_gen *g = NULL;
    if (lm_gen_new(m, &p->samp[i], taps, &g) != XS_OK) return false;
    int k = 0;
    bool ok = true;
    for (int t = 0; ok && t < TICKS; t++) {
        if (p->reset_at[i] == t) ok = lm_gen_reset(g) == XS_OK;
        if (!p->active[i][t] || !ok) continue;
        int32_t user[NU];
        codes_of(i, k++, user);
        ok = lm_gen_step(g, user, rec->out[t], &rec->valid[t]) == XS_OK;
    }
    lm_gen_free(g);
    return ok;
}

/* All sessions through one batch of capacity cap, shuffled row order. */
static bool run_batched(lm_model *m, const plan *p, int cap, xs_taps *taps0, record *rec) {
    lm_gen *g[MAX_S] = {0};
    lm_batch *b = NULL;
    bool ok = lm_batch_new(m, cap, &b) == XS_OK;
    for (int i = 0; ok && i < p->n; i++)
        ok = lm_gen_new(m, &p->samp[i], i == 0 ? taps0 : NULL, &g[i]) == XS_OK;
    int k[MAX_S] = {0};
    uint64_t lcg = 12345;
    for (int t = 0; ok && t < TICKS; t++) {
        lm_gen *rows[MAX_S];
        int who[MAX_S], n = 0;
        for (int i = 0; i < p->n; i++) {
            if (p->reset_at[i] == t) ok &= lm_gen_reset(g[i]) == XS_OK;
            if (p->active[i][t]) who[n++] = i;
        }
        for (int a = n - 1; a > 0; a--) { /* Fisher-Yates: order must not matter */
            lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
            int c = (int)((lcg >> 33) % (uint64_t)(a + 1)), tmp = who[a];
            who[a] = who[c];
            who[c] = tmp;
        }
        if (n == 0) continue;
        int32_t user[MAX_S * NU], out[MAX_S * NS];
        bool valid[MAX_S];
        for (int r = 0; r < n; r++) {
            rows[r] = g[who[r]];
            codes_of(who[r], k[who[r]]++, user + r * NU);
        }
        ok = ok && lm_gen_step_batch(b, rows, n, user, out, valid) == XS_OK;
        for (int r = 0; ok && r < n; r++) {
            memcpy(rec[who[r]].out[t], out + r * NS, sizeof rec->out[0]);
            rec[who[r]].valid[t] = valid[r];
        }
    }
    if (!ok) fprintf(stderr, "batched run: %s\n", xs_error_msg());
    for (int i = 0; i < p->n; i++) lm_gen_free(g[i]);
    lm_batch_free(b);
    return ok;
}

static void compare(const char *what, const plan *p, const record *alone, const record *batched) {
    int bad = 0, valid_frames = 0, differ_01 = 0;
    for (int i = 0; i < p->n; i++)
        for (int t = 0; t < TICKS; t++) {
            if (!p->active[i][t]) continue;
            valid_frames += alone[i].valid[t];
            if (alone[i].valid[t] != batched[i].valid[t] ||
                memcmp(alone[i].out[t], batched[i].out[t], sizeof alone[i].out[t])) {
                if (!bad)
                    fprintf(stderr, "%s: session %d tick %d: alone %d %d %d, batched %d %d %d\n",
                            what, i, t, alone[i].out[t][0], alone[i].out[t][1],
                            alone[i].out[t][2], batched[i].out[t][0], batched[i].out[t][1],
                            batched[i].out[t][2]);
                bad++;
            }
        }
    for (int t = 0; t < TICKS; t++)
        if (p->active[0][t] && p->active[1][t] && alone[0].valid[t] && alone[1].valid[t])
            differ_01 += memcmp(alone[0].out[t], alone[1].out[t], sizeof alone[0].out[t]) != 0;
    CHECK(bad == 0, "%s: %d session-steps differ from the solo runs", what, bad);
    CHECK(valid_frames > 3 * p->n, "%s: only %d valid frames", what, valid_frames);
    CHECK(differ_01 > 3, "%s: sessions 0 and 1 differ on only %d frames (inputs not distinct?)",
          what, differ_01);
}

static void compare_taps(const char *what, const xs_taps *a, const xs_taps *b) {
    CHECK(xs_taps_count(a) == xs_taps_count(b) && xs_taps_count(a) >= 11,
          "%s: %d taps alone, %d batched", what, xs_taps_count(a), xs_taps_count(b));
    for (int i = 0; i < xs_taps_count(a); i++) {
        const xs_tensor *ta = xs_taps_at(a, i), *tb = xs_taps_find(b, ta->name);
        bool same = tb && xs_tensor_numel(ta) == xs_tensor_numel(tb) && ta->dtype == tb->dtype &&
                    !memcmp(ta->data, tb->data, xs_tensor_nbytes(ta));
        CHECK(same, "%s: tap %s differs between the solo and the batched run", what, ta->name);
    }
}

static void run_case(lm_model *m, const char *backend, int n, int cap, int mode) {
    char what[128];
    static const char *modes[] = {"greedy", "sampling", "mixed"};
    snprintf(what, sizeof what, "%s B=%d cap=%d %s", backend, n, cap, modes[mode]);
    plan p;
    make_plan(&p, n, mode);
    record *alone = calloc(MAX_S, sizeof *alone), *batched = calloc(MAX_S, sizeof *batched);
    xs_taps *ta = xs_taps_new(), *tb = xs_taps_new();
    bool ok = true;
    for (int i = 0; ok && i < n; i++) ok = run_alone(m, &p, i, i == 0 ? ta : NULL, &alone[i]);
    CHECK(ok, "%s: solo runs: %s", what, xs_error_msg());
    ok = ok && run_batched(m, &p, cap, tb, batched);
    CHECK(ok, "%s: batched run", what);
    if (ok) {
        compare(what, &p, alone, batched);
        compare_taps(what, ta, tb);
    }
    xs_taps_free(ta);
    xs_taps_free(tb);
    free(alone);
    free(batched);
}

/* Bad calls fail before any generator moves. */
static void check_errors(lm_model *m) {
    lm_batch *b = NULL;
    lm_gen *g0 = NULL, *g1 = NULL;
    CHECK(lm_batch_new(m, 2, &b) == XS_OK, "batch");
    CHECK(lm_batch_new(m, 0, &(lm_batch *){NULL}) == XS_ERR_ARG, "capacity 0 rejected");
    CHECK(lm_gen_new(m, NULL, NULL, &g0) == XS_OK && lm_gen_new(m, NULL, NULL, &g1) == XS_OK,
          "gens");
    if (!b || !g0 || !g1) goto done;
    int32_t user[3 * NU], out[3 * NS];
    bool valid[3];
    for (int j = 0; j < 3 * NU; j++) user[j] = j % 64;
    lm_gen *dup[2] = {g0, g0}, *two[2] = {g0, g1}, *three[3] = {g0, g1, g0};
    CHECK(lm_gen_step_batch(b, dup, 2, user, out, valid) == XS_ERR_ARG, "duplicate rejected");
    CHECK(lm_gen_step_batch(b, three, 3, user, out, valid) == XS_ERR_ARG, "over capacity");
    user[NU + 3] = 64;
    CHECK(lm_gen_step_batch(b, two, 2, user, out, valid) == XS_ERR_ARG, "code 64 rejected");
    CHECK(lm_gen_steps(g0) == 0 && lm_gen_steps(g1) == 0, "nobody advanced");
    user[NU + 3] = 5;
    CHECK(lm_gen_step_batch(b, two, 2, user, out, valid) == XS_OK, "good step");
    CHECK(lm_gen_steps(g0) == 1 && lm_gen_steps(g1) == 1 && !valid[0] && !valid[1],
          "both advanced once");
done:
    lm_gen_free(g0);
    lm_gen_free(g1);
    lm_batch_free(b);
}

static lm_model *load(xs_backend *be, const char *model_rel, const char *cfg_rel) {
    if (!be) return NULL;
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path(cfg_rel));
    lm_model *m = NULL;
    CHECK(lm_model_load(golden_path(model_rel), cfg, be, &m) == XS_OK, "%s: load %s: %s",
          be->iface->name, model_rel, xs_error_msg());
    return m;
}

int main(void) {
    xs_weights *gold = NULL;
    CHECK(xs_weights_open(golden_path("lm_tiny/golden.safetensors"), &gold) == XS_OK, "golden: %s",
          xs_error_msg());
    const xs_tensor *in = gold ? xs_weights_find(gold, "input_codes") : NULL;
    CHECK(in && in->dtype == XS_I64 && in->shape[1] == NU, "input_codes [60, 8] i64");
    if (!in) return test_summary("test_lm_batch");
    g_codes = in->data;
    g_n_codes = (int)in->shape[0];
    const char *backends[] = {"ref", "cpu", "cuda"};
    const int nb = xs_backend_cuda_usable(NULL, 0) ? 3 : 2; /* cuda: GPU machines only */
    for (int bi = 0; bi < nb; bi++) {
        xs_backend *be = NULL;
        CHECK(xs_backend_open(backends[bi], 2, &be) == XS_OK, "open %s", backends[bi]);
        lm_model *m = load(be, "lm_tiny/model.safetensors", "lm_tiny/config.json");
        if (m) {
            for (int mode = 0; mode < 3; mode++) {
                run_case(m, backends[bi], 3, 3, mode);
                run_case(m, backends[bi], 5, 5, mode);
            }
            run_case(m, backends[bi], 5, 8, 2); /* capacity above the rows */
            check_errors(m);
        }
        lm_model_free(m);
        /* Q8_0 weights: the quantized matmul kernels must be row-independent too */
        m = load(be, "lm_tiny_candle_q8/model.q8.gguf", "lm_tiny_candle_q8/config.json");
        if (m) run_case(m, backends[bi], 5, 5, 2);
        lm_model_free(m);
        xs_backend_close(be);
    }
    xs_weights_close(gold);
    return test_summary("test_lm_batch");
}
