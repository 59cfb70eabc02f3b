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
 * --kv bf16 halves the temporal KV cache. --fill-context writes all of its
 * slots before timing (through kv_store) and steps at full context, so the
 * resident memory includes the whole cache and attention reads a full
 * window, as in the last minute of a 5-minute conversation.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
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

static long proc_status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n)) { v = strtol(line + n + 1, NULL, 10); break; }
    fclose(f);
    return v;
}

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
           "                       [--threads N] [--kv f32|bf16] [--fill-context] [--json]\n"
           "  --random moshi-7b:q8_0 (default) | :q4_0 | :bf16 | :f16 | :f32 builds the\n"
           "    7B at real shapes from weights generated in memory (q8_0: ~8.2 GB RAM).\n"
           "  --lm without --config uses config.json beside FILE, else the 7B preset.\n"
           "  --layers N keeps only the first N temporal layers (quick runs).\n"
           "  --kv bf16 stores the temporal KV cache in bf16 (half of f32's memory).\n"
           "  --fill-context fills all KV slots first: steps at full context, RSS\n"
           "    includes the whole cache.\n"
           "Prints ms per LM step (p50, p99), resident memory, and the floor\n"
           "(weight + KV bytes read per step / memory read bandwidth of this run).\n");
}

int cmd_bench_lm(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) { usage(); return 0; }
    cli_common common = {0};
    const char *random = NULL, *lm = NULL, *config = NULL;
    int steps = 20, warmup = 3, layers = 0;
    bool json = false, fill = false;
    xs_dtype kv_dtype = XS_F32;
    for (int i = 1; i < argc; i++) {
        int c = cli_common_parse(&common, argc, argv, &i);
        if (c < 0) return 2;
        if (c > 0) continue;
        const char *o = argv[i];
        if (!strcmp(o, "--json")) { json = true; continue; }
        if (!strcmp(o, "--fill-context")) { fill = true; continue; }
        if (i + 1 >= argc) { fprintf(stderr, "xswarm bench lm: %s needs a value\n", o); return 2; }
        const char *v = argv[++i];
        if (!strcmp(o, "--random")) random = v;
        else if (!strcmp(o, "--lm")) lm = v;
        else if (!strcmp(o, "--config")) config = v;
        else if (!strcmp(o, "--steps")) steps = atoi(v);
        else if (!strcmp(o, "--warmup")) warmup = atoi(v);
        else if (!strcmp(o, "--layers")) layers = atoi(v);
        else if (!strcmp(o, "--kv")) {
            if (strcmp(v, "f32") && strcmp(v, "bf16")) {
                fprintf(stderr, "xswarm bench lm: --kv takes f32 or bf16\n");
                return 2;
            }
            kv_dtype = !strcmp(v, "bf16") ? XS_BF16 : XS_F32;
        }
        else { fprintf(stderr, "xswarm bench lm: unknown option %s\n", o); return 2; }
    }
    if (steps < 1 || warmup < 0 || layers < 0) {
        fprintf(stderr, "xswarm bench lm: --steps >= 1, --warmup >= 0, --layers >= 0\n");
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
    xs_backend *be = cli_backend_open(&common);
    if (!be) return 1;
    double gbs = 0;
    if (xs_membw_read(common.threads, 0, 3, &gbs) != XS_OK) XS_LOGW("bench lm: no bandwidth: %s", xs_error_msg());

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
    lm_sampling_default(&samp);
    samp.greedy = true;
    lm_gen *g = NULL;
    if (lm_model_set_kv_dtype(m, kv_dtype) != XS_OK || lm_gen_new(m, &samp, NULL, &g) != XS_OK ||
        (fill && lm_gen_fill_context(g, 7) != XS_OK)) {
        cli_fail("creating the generator");
        lm_model_free(m);
        synth_free(&sy);
        xs_backend_close(be);
        return 1;
    }
    int n_user = m->cfg.n_q - m->cfg.dep_q;
    double *ms = malloc((size_t)steps * sizeof *ms);
    int ret = 0;
    for (int s = 0; s < warmup + steps; s++) {
        int32_t user[LM_MAX_STREAMS], out[LM_MAX_DEP + 1];
        for (int j = 0; j < n_user; j++) user[j] = (int32_t)(mix64((uint64_t)(s * 31 + j)) % (uint64_t)m->cfg.card);
        bool valid;
        double a = xs_now_seconds();
        if (lm_gen_step(g, user, out, &valid) != XS_OK) { ret = cli_fail("step"); break; }
        double dt = (xs_now_seconds() - a) * 1e3;
        if (s >= warmup) ms[s - warmup] = dt;
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
        size_t kv_el = kv_dtype == XS_BF16 ? 2 : 4;
        size_t kvb = (size_t)2 * m->main.n_layers * (size_t)win * m->cfg.dim * kv_el +
                     (size_t)2 * m->dep.n_layers * m->cfg.dep_dim * 4 *
                         (size_t)(m->cfg.dep_q * (m->cfg.dep_q + 1) / 2);
        size_t kv_alloc = lm_model_kv_bytes(m);
        double floor_ms = gbs > 0 ? (double)(wb + kvb) / (gbs * 1e9) * 1e3 : 0;
        long rss = proc_status_kb("VmRSS:"), hwm = proc_status_kb("VmHWM:");
        const char *bn = be->iface->name;
        if (json) {
            printf("{\"bench\":\"lm\",\"model\":\"%s\",\"dtype\":\"%s\",\"layers\":%d,\"backend\":\"%s\","
                   "\"threads\":%d,\"steps\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"weight_bytes\":%zu,"
                   "\"kv_bytes\":%zu,\"read_gbs\":%.2f,\"floor_ms\":%.3f,\"x_floor\":%.2f,"
                   "\"kv_dtype\":\"%s\",\"kv_cache_bytes\":%zu,\"fill_context\":%s,"
                   "\"rss_kb\":%ld,\"peak_rss_kb\":%ld,\"build_s\":%.2f}\n",
                   random ? random : lm, xs_dtype_name(m->main.layers[0].sets[0].wqkv.dtype),
                   m->main.n_layers, bn, be->n_threads, steps, p50, p99, wb, kvb, gbs, floor_ms,
                   floor_ms > 0 ? p50 / floor_ms : 0, xs_dtype_name(kv_dtype), kv_alloc,
                   fill ? "true" : "false", rss, hwm, t_build);
        } else {
            printf("bench lm: %s, %d temporal layers, backend %s (%d threads)\n",
                   random ? random : lm, m->main.n_layers, bn, be->n_threads);
            printf("  build      %.2f s (weights %.2f GB generated)\n", t_build, sy.bytes / 1e9);
            printf("  step       p50 %.2f ms   p99 %.2f ms   (%d steps after %d warm-up)\n", p50, p99,
                   steps, warmup);
            printf("  reads      %.3f GB weights + %.3f GB KV per step\n", wb / 1e9, kvb / 1e9);
            printf("  bandwidth  %.2f GB/s (read, this run)\n", gbs);
            printf("  floor      %.2f ms   -> p50 = %.2f x floor\n", floor_ms,
                   floor_ms > 0 ? p50 / floor_ms : 0);
            printf("  kv cache   %s, %.3f GB allocated%s\n", xs_dtype_name(kv_dtype), kv_alloc / 1e9,
                   fill ? ", all slots filled (full context)" : "");
            printf("  memory     RSS %.2f GiB (peak %.2f GiB = %.3f GB)\n", rss / 1048576.0,
                   hwm / 1048576.0, hwm * 1024.0 / 1e9);
        }
    }
    free(ms);
    lm_gen_free(g);
    lm_model_free(m);
    synth_free(&sy);
    xs_backend_close(be);
    return ret;
}
