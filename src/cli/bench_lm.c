/*
 * bench_lm.c — `xswarm bench lm`: ms per LM step (temporal transformer +
 * 8 depformer sub-steps + greedy picks), p50/p99, resident memory, and the
 * memory-bandwidth floor measured in the same run.
 *
 * --random NAME:DTYPE builds the model at real shapes from weights generated
 * in memory (a cheap counter hash, not an RNG: 8 GB must fill in seconds);
 * the values only need to be finite. Per step the LM reads every matrix once
 * (the depformer reads the weight set of each sub-step), so
 *   floor = (matrix bytes + KV bytes read) / read bandwidth.
 *
 * --kv bf16 halves the temporal KV cache, --kv q8 stores Q8_0 blocks (34 B
 * per 32 values); without --kv the weights decide (lm_kv_dtype_default:
 * f32 weights f32, others bf16). --fill-context writes all of its
 * slots before timing (through kv_store) and steps at full context, so the
 * resident memory includes the whole cache and attention reads a full
 * window, as in the last minute of a 5-minute conversation.
 *
 * --batch B steps B sessions together (lm_gen_step_batch): the weights are
 * read once per step for all of them, so the step time should grow much
 * slower than B; the floor counts the weights once and the KV of every
 * session.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "backend/cuda_probe.h"
#include "core/quant.h"
#include "diag/membw.h"
#include "model/lm.h"

/* ---- synthetic weights ---------------------------------------------------- */

typedef struct synth_entry {
    char *name;
    xs_tensor t;
} synth_entry;

typedef struct synth {
    xs_dtype dtype;
    synth_entry *v;
    int n, cap;
    uint64_t seed;
    size_t bytes;
} synth;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Fill n bytes with hash output (8 bytes per hash). */
static void fill_bytes(uint8_t *p, size_t n, uint64_t seed) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t h = mix64(seed + i);
        memcpy(p + i, &h, 8);
    }
    for (; i < n; i++) p[i] = (uint8_t)mix64(seed + i);
}

static const xs_tensor *synth_find(void *ctx, const char *name, int ndim, const int64_t *shape) {
    synth *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->v[i].name, name)) return &s->v[i].t;
    if (ndim < 1 || ndim > 3) return NULL;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 256;
        synth_entry *nv = realloc(s->v, (size_t)cap * sizeof *nv);
        if (!nv) return NULL;
        s->v = nv;
        s->cap = cap;
    }
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) numel *= shape[d];
    int64_t cols = shape[ndim - 1];
    xs_dtype dt = XS_F32;
    if (ndim == 2) {
        dt = s->dtype;
        if (xs_dtype_is_quantized(dt) && cols % XS_QK) dt = XS_F32;
    }
    size_t nb = xs_dtype_row_bytes(dt, cols) * (size_t)(numel / cols);
    void *data = malloc(nb ? nb : 1);
    if (!data) return NULL;
    uint64_t seed = mix64(s->seed + (uint64_t)s->n * 0x9e3779b97f4a7c15ull);
    float amp = 1.0f / sqrtf((float)cols); /* keeps activations O(1) */
    if (ndim != 2) {
        float *f = data; /* norm vectors: around 1 */
        for (int64_t i = 0; i < numel; i++) f[i] = 1.0f + 0.1f * ((mix64(seed + i) >> 40) / 16777216.0f - 0.5f);
    } else if (dt == XS_Q8_0 || dt == XS_Q4_0) {
        fill_bytes(data, nb, seed);
        size_t bsz = dt == XS_Q8_0 ? sizeof(xs_block_q8_0) : sizeof(xs_block_q4_0);
        uint16_t d = xs_f32_to_f16(amp / (dt == XS_Q8_0 ? 64.f : 4.f));
        for (size_t off = 0; off < nb; off += bsz) memcpy((uint8_t *)data + off, &d, 2);
    } else if (dt == XS_BF16 || dt == XS_F16) {
        uint16_t *h = data;
        for (int64_t i = 0; i < numel; i++) {
            float x = amp * 2.f * ((mix64(seed + (uint64_t)i) >> 40) / 16777216.0f - 0.5f);
            h[i] = dt == XS_BF16 ? xs_f32_to_bf16(x) : xs_f32_to_f16(x);
        }
    } else {
        float *f = data;
        for (int64_t i = 0; i < numel; i++)
            f[i] = amp * 2.f * ((mix64(seed + (uint64_t)i) >> 40) / 16777216.0f - 0.5f);
    }
    synth_entry *e = &s->v[s->n++];
    e->name = strdup(name);
    e->t = xs_tensor_make(dt, ndim, shape, data);
    e->t.name = e->name;
    s->bytes += nb;
    return &e->t;
}

static void synth_free(synth *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].t.data);
    }
    free(s->v);
}

/* ---- measurements ---------------------------------------------------------- */

static size_t tbytes(const xs_tensor *t) {
    if (!t->data || t->ndim != 2) return 0;
    return xs_dtype_row_bytes(t->dtype, t->shape[1]) * (size_t)t->shape[0];
}

static size_t set_bytes(const lm_set *s) {
    return tbytes(&s->wqkv) + tbytes(&s->wo) + tbytes(&s->ff_in) +
           tbytes(&s->ff_out);
}

/* Matrix bytes one step reads. */
static size_t step_weight_bytes(const lm_model *m) {
    const lm_config *c = &m->cfg;
    size_t b = tbytes(&m->text_linear);
    for (int l = 0; l < m->main.n_layers; l++) b += set_bytes(&m->main.layers[l].sets[0]);
    for (int k = 0; k < c->dep_q; k++) {
        int in_index = !c->dep_multi_linear ? 0 : c->has_dep_schedule ? c->dep_schedule[k] : k;
        b += tbytes(&m->dep_in[in_index]) + tbytes(&m->linears[k]);
        for (int l = 0; l < m->dep.n_layers; l++) b += set_bytes(&m->dep.layers[l].sets[c->dep_schedule[k]]);
    }
    return b;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void usage(void) {
    printf("usage: xswarm bench lm [--random moshi-7b:DTYPE | --lm FILE [--config FILE]]\n"
           "                       [--steps N] [--warmup N] [--layers N] [--backend B]\n"
           "                       [--threads N] [--kv f32|bf16|q8] [--fill-context] [--batch B]\n"
           "                       [--sample] [--gemm rows|mma] [--json]\n"
           "  --random moshi-7b:q8_0 (default) | :q4_0 | :bf16 | :f16 | :f32 builds the\n"
           "    7B at real shapes from weights generated in memory (q8_0: ~8.2 GB RAM).\n"
           "  --lm without --config uses config.json beside FILE, else the 7B preset.\n"
           "  --layers N keeps only the first N temporal layers (quick runs).\n"
           "  --kv the temporal KV cache: default the weights' precision (f32 weights:\n"
           "    f32, others: bf16); bf16 is half of f32's memory, q8 (Q8_0) 53%% of bf16.\n"
           "  --fill-context fills all KV slots first: steps at full context, RSS\n"
           "    includes the whole cache.\n"
           "  --batch B steps B sessions at once (one batched step: weights read once\n"
           "    for all); prints ms per step and per session. Default 1.\n"
           "  --sample picks tokens by top-k sampling (the model's defaults, as a\n"
           "    conversation does) instead of greedy argmax.\n"
           "  --gemm rows|mma cuda matmul kernels: tensor-core (mma, default with --batch\n"
           "    > 1) or the GEMV rows kernels (rows, default at batch 1: faster there).\n"
           "Prints ms per LM step (p50, p99), resident memory, and the floor\n"
           "(weight + KV bytes read per step / memory read bandwidth of this run).\n"
           "On cuda at batch 1 the step's graph lets each kernel start while the one\n"
           "before it runs (programmatic edges, sm_90+; the JSON's pdl_edges counts\n"
           "them); XSWARM_CUDA_PDL=0 keeps ordinary edges.\n");
}

int cmd_bench_lm(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) { usage(); return 0; }
    cli_common common = {0};
    const char *random = NULL, *lm = NULL, *config = NULL;
    int steps = 20, warmup = 3, layers = 0, batch = 1;
    bool json = false, fill = false, sample = false;
    xs_dtype kv_dtype = LM_KV_DEFAULT; /* resolved from the weights once built */
    for (int i = 1; i < argc; i++) {
        int c = cli_common_parse(&common, argc, argv, &i);
        if (c < 0) return 2;
        if (c > 0) continue;
        const char *o = argv[i];
        if (!strcmp(o, "--json")) { json = true; continue; }
        if (!strcmp(o, "--fill-context")) { fill = true; continue; }
        if (!strcmp(o, "--sample")) { sample = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "xswarm bench lm: %s needs a value\n", o); return 2; }
        const char *v = argv[++i];
        if (!strcmp(o, "--random")) random = v;
        else if (!strcmp(o, "--lm")) lm = v;
        else if (!strcmp(o, "--config")) config = v;
        else if (!strcmp(o, "--steps")) steps = atoi(v);
        else if (!strcmp(o, "--warmup")) warmup = atoi(v);
        else if (!strcmp(o, "--layers")) layers = atoi(v);
        else if (!strcmp(o, "--batch")) batch = atoi(v);
        else if (!strcmp(o, "--kv")) {
            const int kv = lm_kv_dtype_parse(v);
            if (kv < 0) {
                fprintf(stderr, "xswarm bench lm: --kv takes f32, bf16 or q8\n");
                return 2;
            }
            kv_dtype = (xs_dtype)kv;
        }
        else { fprintf(stderr, "xswarm bench lm: unknown option %s\n", o); return 2; }
    }
    if (steps < 1 || warmup < 0 || layers < 0 || batch < 1 || batch > 4096) {
        fprintf(stderr, "xswarm bench lm: --steps >= 1, --warmup >= 0, --layers >= 0, "
                        "--batch 1..4096\n");
        return 2;
    }
    if (!lm && !random) random = "moshi-7b:q8_0";
    xs_dtype dtype = XS_Q8_0;
    if (random) {
        const char *colon = strchr(random, ':');
        if (strncmp(random, "moshi-7b", 8) || (colon && xs_dtype_from_name(colon + 1) < 0)) {
            fprintf(stderr, "xswarm bench lm: --random takes moshi-7b[:q8_0|q4_0|bf16|f16|f32]\n");
            return 2;
        }
        if (colon) dtype = (xs_dtype)xs_dtype_from_name(colon + 1);
    }
    cli_gemm_default(&common, batch > 1); /* batches: the tensor-core matmul (cli.h) */
    xs_backend *be = cli_backend_open(&common);
    if (!be) return 1;
    /* The floor's bandwidth is the one the weights are read with: the GPU's
     * own (a device read kernel over 1 GiB, best of 5) on cuda, else the
     * host's. GPU memory is sampled before the model and after the sessions. */
    const bool on_gpu = xs_backend_is_cuda(be);
    double gbs = 0, copy_gbs = 0;
    size_t gpu_free0 = 0, gpu_free1 = 0, gpu_total = 0;
    char gpu_desc[160] = "";
    if (on_gpu) {
        if (xs_cuda_measure_bandwidth(be, &gbs) != XS_OK) XS_LOGW("bench lm: no GPU bandwidth: %s", xs_error_msg());
        if (xs_cuda_measure_copy_bandwidth(be, &copy_gbs) != XS_OK) XS_LOGW("bench lm: no GPU copy bandwidth: %s", xs_error_msg());
        if (xs_cuda_device_desc(be, gpu_desc, sizeof gpu_desc) != XS_OK) gpu_desc[0] = 0;
        if (xs_cuda_mem_info(be, &gpu_free0, &gpu_total) != XS_OK) gpu_total = 0;
    } else if (xs_membw_read(common.threads, 0, 3, &gbs) != XS_OK) {
        XS_LOGW("bench lm: no bandwidth: %s", xs_error_msg());
    }

    synth sy = {.dtype = dtype, .seed = 1};
    lm_model *m = NULL;
    double t0 = xs_now_seconds();
    xs_status rc;
    if (random) {
        lm_config c;
        lm_config_moshi_7b(&c);
        if (layers) c.num_layers = layers < c.num_layers ? layers : c.num_layers;
        rc = lm_model_build_synthetic(&c, XS_LAYOUT_PYTORCH, synth_find, &sy, be, &m);
    } else {
        char cfgbuf[4096];
        if (!config) config = lm_config_beside(lm, cfgbuf, sizeof cfgbuf);
        rc = lm_model_load(lm, config, be, &m);
        if (rc == XS_OK && layers && layers < m->main.n_layers) m->main.n_layers = layers;
    }
    if (rc != XS_OK) {
        cli_fail("building the LM");
        synth_free(&sy);
        xs_backend_close(be);
        return 1;
    }
    double t_build = xs_now_seconds() - t0;
    lm_sampling samp;
    lm_sampling_from_config(&samp, &m->cfg);
    samp.greedy = !sample;
    lm_gen **g = calloc((size_t)batch, sizeof *g);
    lm_batch *lb = NULL;
    bool gen_ok = g && lm_model_set_kv_dtype(m, kv_dtype) == XS_OK &&
                  (kv_dtype = m->main.kv_dtype, true) && /* LM_KV_DEFAULT resolved */
                  (batch == 1 || lm_batch_new(m, batch, &lb) == XS_OK);
    for (int b = 0; gen_ok && b < batch; b++) {
        samp.seed = (uint64_t)b;
        gen_ok = lm_gen_new(m, &samp, NULL, &g[b]) == XS_OK &&
                 (!fill || lm_gen_fill_context(g[b], 7 + (uint64_t)b) == XS_OK);
    }
    if (!gen_ok) {
        cli_fail("creating the generator");
        for (int b = 0; g && b < batch; b++) lm_gen_free(g[b]);
        free(g);
        lm_batch_free(lb);
        lm_model_free(m);
        synth_free(&sy);
        xs_backend_close(be);
        return 1;
    }
    if (on_gpu && gpu_total && xs_cuda_mem_info(be, &gpu_free1, NULL) != XS_OK) gpu_total = 0;
    int n_user = m->cfg.n_q - m->cfg.dep_q;
    double *ms = malloc((size_t)steps * sizeof *ms);
    int ret = 0;
    int32_t *user = malloc((size_t)batch * (size_t)n_user * sizeof *user);
    int32_t *out = malloc((size_t)batch * (LM_MAX_DEP + 1) * sizeof *out);
    bool *valid = malloc((size_t)batch * sizeof *valid);
    if (!ms || !user || !out || !valid) ret = cli_fail("out of memory");
    for (int s = 0; !ret && s < warmup + steps; s++) {
        for (int j = 0; j < batch * n_user; j++) user[j] = (int32_t)(mix64((uint64_t)(s * 31 + j)) % (uint64_t)m->cfg.card);
        double a = xs_now_seconds();
        xs_status st = batch == 1 ? lm_gen_step(g[0], user, out, valid)
                                  : lm_gen_step_batch(lb, g, batch, user, out, valid);
        if (st != XS_OK) { ret = cli_fail("step"); break; }
        double dt = (xs_now_seconds() - a) * 1e3;
        if (s >= warmup) ms[s - warmup] = dt;
    }
    /* XSWARM_CUDA_PROF=1: a few more steps, eager (graphs replay no ops),
     * each behind a stall kernel so its ops run back to back and the event
     * pairs time kernels, not launch latency; p50 - busy = the GPU's idle
     * time per step (launches, host work). */
    double busy_ms = 0;
    const char *prof = getenv("XSWARM_CUDA_PROF");
    if (!ret && on_gpu && prof && strcmp(prof, "0")) {
        const char *graphs = getenv("XSWARM_CUDA_GRAPHS");
        char *saved = graphs ? strdup(graphs) : NULL;
        setenv("XSWARM_CUDA_GRAPHS", "0", 1);
        const int psteps = 3;
        xs_status pst = xs_cuda_prof_begin(be);
        for (int s = 0; pst == XS_OK && s < psteps; s++) {
            for (int j = 0; j < batch * n_user; j++) user[j] = (int32_t)(mix64((uint64_t)(s * 17 + j)) % (uint64_t)m->cfg.card);
            pst = xs_cuda_stall(be, 40.0);
            if (pst == XS_OK)
                pst = batch == 1 ? lm_gen_step(g[0], user, out, valid)
                                 : lm_gen_step_batch(lb, g, batch, user, out, valid);
        }
        if (pst != XS_OK) XS_LOGW("bench lm: profile: %s", xs_error_msg());
        if (xs_cuda_prof_end(be, stdout, psteps, &busy_ms) != XS_OK)
            XS_LOGW("bench lm: profile: %s", xs_error_msg());
        if (saved) setenv("XSWARM_CUDA_GRAPHS", saved, 1); else unsetenv("XSWARM_CUDA_GRAPHS");
        free(saved);
    }
    if (!ret) {
        qsort(ms, (size_t)steps, sizeof *ms, cmp_d);
        double p50 = ms[steps / 2], p99 = ms[(int)floor(0.99 * (steps - 1))];
        size_t wb = step_weight_bytes(m);
        /* KV read per step at the last position: main layers x visible window
         * in the cache's dtype; the f32 depformer ring holds k + 1 slots at
         * sub-step k, dep_q (dep_q + 1) / 2 slot reads per step. */
        int64_t pos = (fill ? m->main.capacity : 0) + warmup + steps;
        int64_t win = pos < m->main.context ? pos : m->main.context;
        size_t kv_row = xs_dtype_row_bytes(kv_dtype, m->cfg.dim); /* q8_0: 34 B / 32 values */
        size_t kvb = (size_t)2 * m->main.n_layers * (size_t)win * kv_row +
                     (size_t)2 * m->dep.n_layers * m->cfg.dep_dim * 4 *
                         (size_t)(m->cfg.dep_q * (m->cfg.dep_q + 1) / 2);
        kvb *= (size_t)batch; /* each session reads its own cache */
        size_t kv_alloc = lm_model_kv_bytes(m) * (size_t)batch;
        double floor_ms = gbs > 0 ? (double)(wb + kvb) / (gbs * 1e9) * 1e3 : 0;
        long rss = cli_proc_status_kb("VmRSS:"), hwm = cli_proc_status_kb("VmHWM:");
        const char *bn = be->iface->name;
        if (json) {
            printf("{\"bench\":\"lm\",\"model\":\"%s\",\"dtype\":\"%s\",\"layers\":%d,\"backend\":\"%s\","
                   "\"threads\":%d,\"steps\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"weight_bytes\":%zu,"
                   "\"kv_bytes\":%zu,\"read_gbs\":%.2f,\"floor_ms\":%.3f,\"x_floor\":%.2f,"
                   "\"kv_dtype\":\"%s\",\"kv_cache_bytes\":%zu,\"fill_context\":%s,"
                   "\"rss_kb\":%ld,\"peak_rss_kb\":%ld,\"build_s\":%.2f,"
                   "\"batch\":%d,\"per_session_ms\":%.3f,\"gpu_copy_gbs\":%.2f,"
                   "\"gpu_mem_total\":%zu,\"gpu_mem_used\":%zu,\"gpu_mem_model_session\":%zu,"
                   "\"gpu_busy_ms\":%.3f,\"gpu\":\"%s\",\"picks\":\"%s\",\"pdl_edges\":%ld}\n",
                   random ? random : lm, xs_dtype_name(m->main.layers[0].sets[0].wqkv.dtype),
                   m->main.n_layers, bn, be->n_threads, steps, p50, p99, wb, kvb, gbs, floor_ms,
                   floor_ms > 0 ? p50 / floor_ms : 0, xs_dtype_name(kv_dtype), kv_alloc,
                   fill ? "true" : "false", rss, hwm, t_build, batch, p50 / batch, copy_gbs,
                   gpu_total, gpu_total ? gpu_total - gpu_free1 : 0,
                   gpu_total && gpu_free0 > gpu_free1 ? gpu_free0 - gpu_free1 : 0, busy_ms, gpu_desc,
                   sample ? "sample" : "greedy", xs_cuda_pdl_edges_last());
        } else {
            printf("bench lm: %s, %d temporal layers, backend %s (%d threads)\n",
                   random ? random : lm, m->main.n_layers, bn, be->n_threads);
            printf("  build      %.2f s (weights %.2f GB generated)\n", t_build, sy.bytes / 1e9);
            printf("  step       p50 %.2f ms   p99 %.2f ms   (%d steps after %d warm-up)\n", p50, p99,
                   steps, warmup);
            if (batch > 1)
                printf("  batch      %d sessions per step: p50 %.2f ms per session\n", batch,
                       p50 / batch);
            printf("  reads      %.3f GB weights + %.3f GB KV per step\n", wb / 1e9, kvb / 1e9);
            if (on_gpu)
                printf("  bandwidth  %.2f GB/s GPU read kernel, %.2f GB/s D2D copy (read+write), this run\n"
                       "  gpu        %s\n", gbs, copy_gbs, gpu_desc);
            if (on_gpu)
                printf("  graph      %ld kernel edges programmatic (PDL; 0: ordinary edges, "
                       "XSWARM_CUDA_PDL=0 or batch > 1)\n", xs_cuda_pdl_edges_last());
            else
                printf("  bandwidth  %.2f GB/s (read, this run)\n", gbs);
            printf("  floor      %.2f ms   -> p50 = %.2f x floor\n", floor_ms,
                   floor_ms > 0 ? p50 / floor_ms : 0);
            printf("  kv cache   %s, %.3f GB allocated%s\n", xs_dtype_name(kv_dtype), kv_alloc / 1e9,
                   fill ? ", all slots filled (full context)" : "");
            if (on_gpu && gpu_total)
                printf("  gpu memory %.2f GiB used of %.2f GiB (model + %d session%s: %.2f GiB)\n",
                       (gpu_total - gpu_free1) / 1073741824.0, gpu_total / 1073741824.0, batch,
                       batch > 1 ? "s" : "",
                       gpu_free0 > gpu_free1 ? (gpu_free0 - gpu_free1) / 1073741824.0 : 0.0);
            if (busy_ms > 0)
                printf("  gpu busy   %.2f ms per step (ops back to back) -> %.2f ms idle per step "
                       "(launches, host)\n", busy_ms, p50 - busy_ms);
            printf("  memory     RSS %.2f GiB (peak %.2f GiB = %.3f GB)\n", rss / 1048576.0,
                   hwm / 1048576.0, hwm * 1024.0 / 1e9);
        }
    }
    free(ms);
    free(user);
    free(out);
    free(valid);
    for (int b = 0; b < batch; b++) lm_gen_free(g[b]);
    free(g);
    lm_batch_free(lb);
    lm_model_free(m);
    synth_free(&sy);
    xs_backend_close(be);
    return ret;
}
