/*
 * test_cuda_graph.c — CUDA graphs: work recorded once and replayed gives
 * exactly what eager calls give. Skips (77) without a usable GPU.
 *  1. the driver: warm-up, one capture, launches that read new inputs;
 *  2. an uncapturable piece (a download inside) falls back to eager with the
 *     right result;
 *  3. sample_topk replayed with a device counter equals ref at each step;
 *  4. mimi_tiny: frame-by-frame encode / decode (interleaved) with graphs
 *     equals eager cuda bit for bit and the golden codes; after a reset the
 *     recording replays (no new capture) and gives the first run again;
 *  5. lm_tiny / pipeline_tiny (sampling, not greedy): N steps with graphs give
 *     the tokens of eager cuda and of ref; a reset replays.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_probe.h"
#include "backend/fault.h"
#include "backend/graph.h"
#include "backend/ops.h"
#include "formats/safetensors.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "model/mimi.h"
#include "model/mimi_internal.h"
#include "testutil.h"

#define FRAME 1920

static void graphs_on(bool on) {
    if (on) unsetenv("XSWARM_CUDA_GRAPHS");
    else setenv("XSWARM_CUDA_GRAPHS", "0", 1);
}

/* ---- 1, 2: the driver ------------------------------------------------------------- */

typedef struct job {
    xs_backend *be;
    xs_tensor *y, *x;
    bool download_inside;
} job;

static xs_status job_fn(void *p) {
    job *j = p;
    XS_TRY(xs_op_scale(j->be, j->y, j->x, 3.0f, -1.0f));
    XS_TRY(xs_op_mul(j->be, j->y, j->y, j->x));
    if (j->download_inside) {
        float h[4];
        XS_TRY(xs_tensor_download(j->be, h, j->y));
    }
    return XS_OK;
}

static void test_driver(xs_backend *be) {
    int64_t n = 4;
    xs_tensor x, y;
    CHECK(xs_tensor_alloc(be, XS_F32, 1, &n, &x) == XS_OK, "alloc");
    CHECK(xs_tensor_alloc(be, XS_F32, 1, &n, &y) == XS_OK, "alloc");
    for (int bad = 0; bad < 2; bad++) {
        xs_graph g;
        memset(&g, 0, sizeof g);
        job j = {be, &y, &x, bad == 1};
        if (bad) printf("(the capture warning that follows is expected: a download inside)\n");
        bool ok = true;
        for (int it = 0; it < 5; it++) {
            float xv[4] = {(float)it, -1.5f, 2.0f + it, 0.25f}, yv[4];
            ok &= xs_tensor_upload(be, &x, xv) == XS_OK;
            xs_status rc = xs_graph_run(be, &g, 42, job_fn, &j);
            ok &= rc == XS_OK;
            if (rc != XS_OK) fprintf(stderr, "run: %s\n", xs_error_msg());
            ok &= xs_tensor_download(be, yv, &y) == XS_OK;
            for (int i = 0; i < 4; i++) ok &= yv[i] == (xv[i] * 3.0f - 1.0f) * xv[i];
        }
        if (!bad) {
            CHECK(ok, "graph results follow the staged inputs");
            CHECK(g.captures == 1 && g.launches == 4 && g.eager == 1 && !g.failed,
                  "1 warm-up, 1 capture, 4 launches (got %lld/%lld/%lld)", (long long)g.eager,
                  (long long)g.captures, (long long)g.launches);
            /* a new key drops the recording and records again after a warm-up */
            float xv[4] = {1, 2, 3, 4}, yv[4];
            xs_tensor_upload(be, &x, xv);
            xs_graph_run(be, &g, 43, job_fn, &j);
            xs_graph_run(be, &g, 43, job_fn, &j);
            xs_tensor_download(be, yv, &y);
            CHECK(g.captures == 2 && yv[3] == 44.0f, "new key: recorded again (%g)", yv[3]);
        } else {
            CHECK(ok, "uncapturable piece: eager fallback gives the right results");
            CHECK(g.failed && g.captures == 0 && g.exec == NULL && g.eager == 5,
                  "uncapturable piece: marked failed, every run eager");
        }
        xs_graph_free(be, &g);
    }
    xs_tensor_free(be, &x);
    xs_tensor_free(be, &y);
}

/* ---- 3: sampling counter ----------------------------------------------------------- */

typedef struct sjob {
    xs_backend *be;
    xs_tensor *ids, *logits, *ctr;
} sjob;

static xs_status sample_fn(void *p) {
    sjob *j = p;
    return xs_op_sample_topk_at(j->be, j->ids, j->logits, 0.9f, 50, 777, 4, 1000, j->ctr);
}

static void test_sampling(xs_backend *be, xs_backend *ref) {
    const int64_t M = 4, V = 2048, one = 1;
    int64_t ls[2] = {M, V};
    float *l = malloc((size_t)(M * V) * sizeof *l);
    test_fill_uniform(l, M * V, 5, -3.0f, 3.0f);
    xs_tensor lt, ids, ctr, rl, rids;
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ls, &lt) == XS_OK && xs_tensor_upload(be, &lt, l) == XS_OK,
          "logits");
    CHECK(xs_tensor_alloc(be, XS_I32, 1, &M, &ids) == XS_OK, "ids");
    CHECK(xs_tensor_alloc(be, XS_I64, 1, &one, &ctr) == XS_OK, "ctr");
    CHECK(xs_tensor_alloc(ref, XS_F32, 2, ls, &rl) == XS_OK && xs_tensor_upload(ref, &rl, l) == XS_OK,
          "ref logits");
    CHECK(xs_tensor_alloc(ref, XS_I32, 1, &M, &rids) == XS_OK, "ref ids");
    xs_graph g;
    memset(&g, 0, sizeof g);
    sjob j = {be, &ids, &lt, &ctr};
    int same = 0, total = 0, changes = 0, prev[4] = {-1, -1, -1, -1};
    for (int64_t step = 0; step < 12; step++) {
        xs_tensor_upload(be, &ctr, &step);
        CHECK(xs_graph_run(be, &g, 1, sample_fn, &j) == XS_OK, "sample run: %s", xs_error_msg());
        int32_t a[4], b[4];
        xs_tensor_download(be, a, &ids);
        xs_op_sample_topk(ref, &rids, &rl, 0.9f, 50, 777, 4, 1000 + (uint64_t)step);
        xs_tensor_download(ref, b, &rids);
        for (int m = 0; m < 4; m++) {
            same += a[m] == b[m];
            changes += a[m] != prev[m];
            prev[m] = a[m];
            total++;
        }
    }
    CHECK(g.launches >= 10, "sampling replayed (%lld launches)", (long long)g.launches);
    CHECK(same == total, "replayed sampling with a device counter = ref (%d of %d)", same, total);
    CHECK(changes > 20, "the draws change with the counter (%d)", changes);
    xs_graph_free(be, &g);
    xs_tensor_free(be, &lt);
    xs_tensor_free(be, &ids);
    xs_tensor_free(be, &ctr);
    xs_tensor_free(ref, &rl);
    xs_tensor_free(ref, &rids);
    free(l);
}

/* ---- 4: mimi ----------------------------------------------------------------------- */

typedef struct mimi_run {
    int32_t *codes; /* [2T, K]: T frames, reset, T frames */
    float *pcm;     /* [2n] */
    int64_t enc_captures, enc_launches, dec_captures, dec_launches;
} mimi_run;

static void run_mimi_once(mimi_model *m, const float *x, const int32_t *gold, int64_t T, int K,
                          mimi_run *out) {
    mimi_stream *s = NULL;
    CHECK(mimi_stream_new(m, &s) == XS_OK, "stream: %s", xs_error_msg());
    if (!s) return;
    xs_status rc = XS_OK;
    for (int pass = 0; pass < 2 && rc == XS_OK; pass++) {
        if (pass) rc = mimi_stream_reset(s);
        /* interleaved, as a conversation runs: encode and decode share the
         * stream's scratch, whose slots settle after the first frames */
        for (int64_t t = 0; rc == XS_OK && t < T; t++) {
            rc = mimi_encode(s, x + t * FRAME, FRAME, K, out->codes + (pass * T + t) * K);
            if (rc == XS_OK)
                rc = mimi_decode(s, gold + t * K, 1, K, out->pcm + (pass * T + t) * FRAME);
        }
    }
    CHECK(rc == XS_OK, "mimi run: %s", xs_error_msg());
    out->enc_captures = s->enc_graph.captures;
    out->enc_launches = s->enc_graph.launches;
    out->dec_captures = s->dec_graph.captures;
    out->dec_launches = s->dec_graph.launches;
    mimi_stream_free(s);
}

static void test_mimi(xs_backend *be) {
    mimi_config cfg;
    xs_weights *w = NULL;
    mimi_model *m = NULL;
    xs_safetensors *g = NULL;
    CHECK(mimi_config_load(golden_path("mimi_tiny/config.json"), &cfg) == XS_OK, "config");
    CHECK(xs_weights_open(golden_path("mimi_tiny/model.safetensors"), &w) == XS_OK, "weights: %s",
          xs_error_msg());
    CHECK(w && mimi_model_load(be, &cfg, w, &m) == XS_OK, "load: %s", xs_error_msg());
    CHECK(xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &g) == XS_OK, "golden");
    if (!m || !g) goto done;
    const xs_tensor *in = xs_st_find(g, "input_pcm"), *want = xs_st_find(g, "codes_stream");
    CHECK(in && want, "golden tensors");
    if (!in || !want) goto done;
    const int64_t n0 = xs_tensor_numel(in), n = (n0 + FRAME - 1) / FRAME * FRAME, T = n / FRAME;
    const int K = cfg.num_codebooks;
    float *x = calloc((size_t)n, sizeof *x);
    memcpy(x, in->data, (size_t)n0 * sizeof *x);
    int32_t *gold = malloc((size_t)(T * K) * sizeof *gold);
    for (int64_t i = 0; i < T * K; i++) gold[i] = (int32_t)((const int64_t *)want->data)[i];
    mimi_run r[2];
    for (int i = 0; i < 2; i++) {
        r[i].codes = calloc((size_t)(2 * T * K), sizeof(int32_t));
        r[i].pcm = calloc((size_t)(2 * n), sizeof(float));
        graphs_on(i == 0);
        run_mimi_once(m, x, gold, T, K, &r[i]);
    }
    graphs_on(true);
    printf("mimi graphs: encode %lld captures %lld launches, decode %lld captures %lld launches "
           "over 2 x %lld frames\n", (long long)r[0].enc_captures, (long long)r[0].enc_launches,
           (long long)r[0].dec_captures, (long long)r[0].dec_launches, (long long)T);
    CHECK(r[0].enc_captures == 1 && r[0].dec_captures == 1,
          "one recording each for encode and decode, kept across the reset");
    CHECK(r[0].enc_launches >= 2 * T - 6 && r[0].dec_launches >= 2 * T - 6,
          "frames replayed: encode %lld, decode %lld of %lld", (long long)r[0].enc_launches,
          (long long)r[0].dec_launches, (long long)(2 * T));
    CHECK(r[1].enc_launches == 0 && r[1].dec_launches == 0, "XSWARM_CUDA_GRAPHS=0: eager");
    int bad = 0, bad_gold = 0;
    for (int64_t i = 0; i < 2 * T * K; i++) {
        bad += r[0].codes[i] != r[1].codes[i];
        bad_gold += r[0].codes[i] != gold[i % (T * K)];
    }
    CHECK(bad == 0, "graph codes = eager codes (%d differ)", bad);
    CHECK(bad_gold == 0, "graph codes = golden codes_stream, before and after reset (%d differ)",
          bad_gold);
    CHECK(memcmp(r[0].pcm, r[1].pcm, (size_t)(2 * n) * sizeof(float)) == 0,
          "graph pcm = eager pcm bit for bit (max diff %.3g)",
          test_max_abs_diff(r[0].pcm, r[1].pcm, 2 * n));
    CHECK(memcmp(r[0].pcm, r[0].pcm + n, (size_t)n * sizeof(float)) == 0,
          "after the reset the replay gives the first run again");
    const xs_tensor *pw = xs_st_find(g, "pcm_decoded_stream");
    if (pw) {
        double err = test_max_abs_diff(r[0].pcm, pw->data, n);
        CHECK(err <= 1e-4, "graph pcm vs golden pcm_decoded_stream: %.3g", err);
    }
    for (int i = 0; i < 2; i++) {
        free(r[i].codes);
        free(r[i].pcm);
    }
    free(x);
    free(gold);
done:
    xs_st_close(g);
    mimi_model_free(m);
    xs_weights_close(w);
}

/* ---- 5: lm ------------------------------------------------------------------------- */

/* N sampled steps of a fresh generator, then a reset and N more; tokens
 * [2N][1 + dep_q]. */
static int run_lm_once(xs_backend *be, const char *model_rel, const char *config_rel, int N,
                       int32_t *tok) {
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path(config_rel));
    lm_model *m = NULL;
    lm_gen *g = NULL;
    int nt = 0;
    CHECK(lm_model_load(golden_path(model_rel), cfg, be, &m) == XS_OK, "%s: load: %s", model_rel,
          xs_error_msg());
    if (!m) return 0;
    lm_sampling s;
    lm_sampling_from_config(&s, &m->cfg);
    s.seed = 1234;
    CHECK(lm_gen_new(m, &s, NULL, &g) == XS_OK, "gen: %s", xs_error_msg());
    const int nu = m->cfg.n_q - m->cfg.dep_q;
    nt = 1 + m->cfg.dep_q;
    xs_status rc = XS_OK;
    for (int pass = 0; g && pass < 2 && rc == XS_OK; pass++) {
        if (pass) rc = lm_gen_reset(g);
        for (int st = 0; rc == XS_OK && st < N; st++) {
            int32_t user[LM_MAX_STREAMS], out[LM_MAX_STREAMS];
            for (int j = 0; j < nu; j++) user[j] = (st * 7 + j * 13) % m->cfg.card;
            bool valid = false;
            rc = lm_gen_step(g, user, out, &valid);
            for (int k = 0; k < nt; k++) tok[(pass * N + st) * nt + k] = valid ? out[k] : -1;
        }
    }
    CHECK(rc == XS_OK, "%s: steps: %s", model_rel, xs_error_msg());
    lm_gen_free(g);
    lm_model_free(m);
    return nt;
}

static void test_lm(xs_backend *be, xs_backend *ref, const char *model_rel,
                    const char *config_rel) {
    const int N = 24;
    int32_t *t[4];
    int nt = 0;
    for (int i = 0; i < 4; i++) t[i] = calloc((size_t)(2 * N * LM_MAX_STREAMS), sizeof(int32_t));
    graphs_on(true);
    nt = run_lm_once(be, model_rel, config_rel, N, t[0]);
    const long pdl_edges = xs_cuda_pdl_edges_last();
    /* the same with ordinary graph edges (cuda_pdl.cuh): the same tokens */
    xs_cuda_pdl_select(false);
    run_lm_once(be, model_rel, config_rel, N, t[3]);
    CHECK(xs_cuda_pdl_edges_last() == 0, "%s: PDL off: no programmatic edge", model_rel);
    xs_cuda_pdl_select(true);
    graphs_on(false);
    run_lm_once(be, model_rel, config_rel, N, t[1]);
    graphs_on(true);
    run_lm_once(ref, model_rel, config_rel, N, t[2]);
    int bad_eager = 0, bad_ref = 0, bad_reset = 0, valid = 0, bad_pdl = 0;
    for (int i = 0; i < 2 * N * nt; i++) {
        bad_pdl += t[0][i] != t[3][i];
        bad_eager += t[0][i] != t[1][i];
        bad_ref += t[0][i] != t[2][i];
        valid += t[0][i] >= 0;
    }
    for (int i = 0; i < N * nt; i++) bad_reset += t[0][i] != t[0][N * nt + i];
    printf("lm graphs %s: %d steps x 2, %d tokens differ from eager cuda, %d from ref; "
           "%ld programmatic edges, %d tokens differ with ordinary ones\n",
           model_rel, N, bad_eager, bad_ref, pdl_edges, bad_pdl);
    if (xs_cuda_pdl_possible())
        CHECK(pdl_edges > 10, "%s: sm_90+: the step's kernel edges made programmatic (%ld)", model_rel,
              pdl_edges);
    CHECK(bad_pdl == 0, "%s: PDL edges: tokens = ordinary edges' tokens (%d differ)", model_rel, bad_pdl);
    CHECK(valid > N * nt, "%s: tokens came out (%d)", model_rel, valid);
    CHECK(bad_eager == 0, "%s: graph tokens = eager cuda tokens (%d differ)", model_rel, bad_eager);
    CHECK(bad_ref == 0, "%s: graph tokens = ref tokens (%d differ)", model_rel, bad_ref);
    CHECK(bad_reset == 0, "%s: after a reset the replay repeats the first run", model_rel);
    for (int i = 0; i < 4; i++) free(t[i]);
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    xs_backend *be = NULL, *ref = NULL;
    CHECK(xs_backend_open("cuda", 1, &be) == XS_OK, "open cuda: %s", xs_error_msg());
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    if (be && ref) {
        graphs_on(true);
        CHECK(xs_graph_available(be), "cuda has graph ops");
        test_driver(be);
        test_sampling(be, ref);
        test_mimi(be);
        test_lm(be, ref, "lm_tiny/model.safetensors", "lm_tiny/config.json");
        /* fault injection acts per op call: a replay would skip it */
        CHECK(xs_fault_configure("cuda:add") == XS_OK && !xs_graph_available(be),
              "fault armed: graphs off");
        CHECK(xs_fault_configure(NULL) == XS_OK && xs_graph_available(be),
              "fault disarmed: graphs on");
    }
    xs_backend_close(be);
    xs_backend_close(ref);
    return test_summary("cuda_graph");
}
