/*
 * gen_model.c — random model bundles (gen_model.h).
 *
 * Tensors are written by a small streaming safetensors writer (header first,
 * then each tensor generated and written on its own), so the 7B preset needs
 * one tensor in memory at a time, not 15 GB. The list of tensors comes from
 * the loaders themselves (lm_model_build_synthetic asks for every LM tensor
 * it maps; mimi_expected_tensors lists Mimi's), so a generated bundle always
 * loads.
 */
#include "model/gen_model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "backend/backend.h"
#include "diag/experiment.h"
#include "formats/spm.h"
#include "model/lm.h"
#include "model/mimi.h"

/* ---- configs ------------------------------------------------------------ */

static const char k_tiny_lm[] =
    "{\n  \"dim\": 96, \"text_card\": 100, \"existing_text_padding_id\": 3,\n"
    "  \"n_q\": 16, \"dep_q\": 8, \"card\": 128, \"num_heads\": 4, \"num_layers\": 2,\n"
    "  \"hidden_scale\": 4.125, \"causal\": true, \"layer_scale\": null, \"context\": 50,\n"
    "  \"max_period\": 10000, \"gating\": \"silu\", \"norm\": \"rms_norm_f32\",\n"
    "  \"positional_embedding\": \"rope\", \"depformer_dim\": 64,\n"
    "  \"depformer_dim_feedforward\": 264, \"depformer_num_heads\": 4,\n"
    "  \"depformer_num_layers\": 2, \"depformer_causal\": true, \"depformer_layer_scale\": null,\n"
    "  \"depformer_multi_linear\": true, \"depformer_context\": 8, \"depformer_max_period\": 10000,\n"
    "  \"depformer_gating\": \"silu\", \"depformer_pos_emb\": \"none\",\n"
    "  \"depformer_weights_per_step\": true,\n"
    "  \"delays\": [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]\n}\n";

static const char k_tiny_mimi[] =
    "{\n  \"sample_rate\": 24000, \"channels\": 1, \"frame_rate\": 12.5,\n"
    "  \"seanet\": {\"channels\": 1, \"dimension\": 64, \"causal\": true, \"n_filters\": 8,\n"
    "    \"n_residual_layers\": 1, \"activation\": \"ELU\", \"compress\": 2, \"dilation_base\": 2,\n"
    "    \"disable_norm_outer_blocks\": 0, \"kernel_size\": 7, \"residual_kernel_size\": 3,\n"
    "    \"last_kernel_size\": 3, \"norm\": \"none\", \"pad_mode\": \"constant\",\n"
    "    \"ratios\": [8, 6, 5, 4], \"true_skip\": true},\n"
    "  \"quantizer\": {\"dimension\": 32, \"n_q\": 16, \"bins\": 128, \"input_dimension\": 64,\n"
    "    \"output_dimension\": 64},\n"
    "  \"transformer\": {\"d_model\": 64, \"num_heads\": 4, \"num_layers\": 2, \"causal\": true,\n"
    "    \"layer_scale\": 0.01, \"context\": 250, \"conv_layout\": true, \"max_period\": 10000,\n"
    "    \"gating\": \"none\", \"norm\": \"layer_norm\", \"positional_embedding\": \"rope\",\n"
    "    \"dim_feedforward\": 128, \"input_dimension\": 64, \"output_dimensions\": [64]},\n"
    "  \"num_codebooks\": 8\n}\n";

/* Moshi 7B (2024-09) as loaders._lm_kwargs describes it. */
static const char k_7b_lm[] =
    "{\n  \"dim\": 4096, \"text_card\": 32000, \"existing_text_padding_id\": 3,\n"
    "  \"n_q\": 16, \"dep_q\": 8, \"card\": 2048, \"num_heads\": 32, \"num_layers\": 32,\n"
    "  \"hidden_scale\": 4.125, \"causal\": true, \"layer_scale\": null, \"context\": 3000,\n"
    "  \"max_period\": 10000, \"gating\": \"silu\", \"norm\": \"rms_norm_f32\",\n"
    "  \"positional_embedding\": \"rope\", \"depformer_dim\": 1024,\n"
    "  \"depformer_dim_feedforward\": 4224, \"depformer_num_heads\": 16,\n"
    "  \"depformer_num_layers\": 6, \"depformer_causal\": true, \"depformer_layer_scale\": null,\n"
    "  \"depformer_multi_linear\": true, \"depformer_context\": 8, \"depformer_max_period\": 10000,\n"
    "  \"depformer_gating\": \"silu\", \"depformer_pos_emb\": \"none\",\n"
    "  \"depformer_weights_per_step\": true,\n"
    "  \"delays\": [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]\n}\n";

static const char k_7b_mimi[] =
    "{\n  \"sample_rate\": 24000, \"channels\": 1, \"frame_rate\": 12.5,\n"
    "  \"seanet\": {\"channels\": 1, \"dimension\": 512, \"causal\": true, \"n_filters\": 64,\n"
    "    \"n_residual_layers\": 1, \"activation\": \"ELU\", \"compress\": 2, \"dilation_base\": 2,\n"
    "    \"disable_norm_outer_blocks\": 0, \"kernel_size\": 7, \"residual_kernel_size\": 3,\n"
    "    \"last_kernel_size\": 3, \"norm\": \"none\", \"pad_mode\": \"constant\",\n"
    "    \"ratios\": [8, 6, 5, 4], \"true_skip\": true},\n"
    "  \"quantizer\": {\"dimension\": 256, \"n_q\": 32, \"bins\": 2048, \"input_dimension\": 512,\n"
    "    \"output_dimension\": 512},\n"
    "  \"transformer\": {\"d_model\": 512, \"num_heads\": 8, \"num_layers\": 8, \"causal\": true,\n"
    "    \"layer_scale\": 0.01, \"context\": 250, \"conv_layout\": true, \"max_period\": 10000,\n"
    "    \"gating\": \"none\", \"norm\": \"layer_norm\", \"positional_embedding\": \"rope\",\n"
    "    \"dim_feedforward\": 2048, \"input_dimension\": 512, \"output_dimensions\": [512]},\n"
    "  \"num_codebooks\": 8\n}\n";

/* Built-in English text for the tokenizer (short everyday sentences). */
static const char *const k_text[] = {
    "hello how are you doing today",
    "i am fine thank you and you",
    "what is the weather like in paris",
    "it is sunny and warm this morning",
    "can you tell me a short story",
    "once upon a time there was a little cat",
    "the cat liked to sleep in the sun",
    "what time is it now",
    "it is half past three in the afternoon",
    "do you like music",
    "yes i love to listen to music when i work",
    "where are you from",
    "i live in a small town near the sea",
    "tell me something about the moon",
    "the moon goes around the earth every month",
    "how do i make a cup of tea",
    "boil the water then pour it over the leaves",
    "thank you very much for your help",
    "you are welcome have a nice day",
    "good morning good evening good night",
    "what would you like to talk about",
    "let us talk about books and films",
    "my favourite colour is blue",
    "the quick brown fox jumps over the lazy dog",
    "one two three four five six seven eight nine ten",
    "please speak a little more slowly",
    "sorry i did not hear what you said",
    "that is a very good question",
    "i think so but i am not sure",
    "see you later bye",
};

/* ---- deterministic values ---------------------------------------------- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(uint64_t seed, const char *name) {
    uint64_t h = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    for (const char *p = name; *p; p++) h = mix64(h ^ (unsigned char)*p);
    return h;
}

/* uniform in [-1, 1) from (h, i) */
static double unif(uint64_t h, uint64_t i) {
    return 2.0 * (double)(mix64(h + i * 0x9E3779B97F4A7C15ull) >> 11) * 0x1.0p-53 - 1.0;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static int64_t numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* ---- tensor list + streaming safetensors writer ------------------------- */

typedef struct gen_entry {
    char name[160];
    int ndim;
    int64_t shape[XS_MAX_DIMS];
    xs_dtype dtype;
} gen_entry;

typedef struct gen_list {
    gen_entry *e;
    int n, cap;
    void **bufs; /* pass-1 buffers handed to the LM builder */
    int n_bufs, cap_bufs;
} gen_list;

static xs_status list_add(gen_list *l, const char *name, int ndim, const int64_t *shape) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].name, name)) return XS_OK;
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 64;
        gen_entry *p = realloc(l->e, (size_t)cap * sizeof *p);
        if (!p) return xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
        l->e = p;
        l->cap = cap;
    }
    if (ndim > XS_MAX_DIMS || strlen(name) >= sizeof l->e[0].name)
        return xs_error(XS_ERR_INTERNAL, "gen-model: tensor %s: unexpected rank or name", name);
    gen_entry *e = &l->e[l->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->ndim = ndim;
    for (int i = 0; i < ndim; i++) e->shape[i] = shape[i];
    e->dtype = XS_F32;
    return XS_OK;
}

static void list_free(gen_list *l) {
    for (int i = 0; i < l->n_bufs; i++) free(l->bufs[i]);
    free(l->bufs);
    free(l->e);
    memset(l, 0, sizeof *l);
}

/* Fills dst (numel f32 values) for entry e. */
typedef xs_status (*gen_fill_fn)(void *ctx, const gen_entry *e, float *dst);

static xs_status write_st(const gen_list *l, const char *path, gen_fill_fn fill, void *ctx,
                          bool progress, const char *label) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
    uint64_t off = 0, total = 0;
    for (int i = 0; i < l->n; i++) {
        const gen_entry *e = &l->e[i];
        uint64_t nb = (uint64_t)numel(e->ndim, e->shape) * (e->dtype == XS_BF16 ? 2 : 4);
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(t, "dtype", e->dtype == XS_BF16 ? "BF16" : "F32");
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < e->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    total = off;
    cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
    cJSON_AddStringToObject(meta, "format", "pt");
    cJSON_AddStringToObject(meta, "generator", "xswarm gen-model (random weights)");
    char *hdr = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!hdr) return xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return xs_error(XS_ERR_IO, "%s: cannot create", path);
    }
    uint8_t n8[8];
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    bool ok = fwrite(n8, 1, 8, f) == 8 && fwrite(hdr, 1, hl, f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    free(hdr);
    xs_status rc = ok ? XS_OK : xs_error(XS_ERR_IO, "%s: write failed", path);
    uint64_t done = 0;
    int last_pct = -1;
    for (int i = 0; rc == XS_OK && i < l->n; i++) {
        const gen_entry *e = &l->e[i];
        int64_t n = numel(e->ndim, e->shape);
        float *buf = malloc((size_t)n * sizeof(float) + 4);
        if (!buf) {
            rc = xs_error(XS_ERR_NOMEM, "gen-model: out of memory for %s", e->name);
            break;
        }
        rc = fill(ctx, e, buf);
        if (rc == XS_OK && e->dtype == XS_BF16) {
            uint16_t *h = (uint16_t *)buf; /* in place: h[i] is written after buf[i] is read */
            for (int64_t j = 0; j < n; j++) h[j] = xs_f32_to_bf16(buf[j]);
            if (fwrite(h, 2, (size_t)n, f) != (size_t)n) rc = xs_error(XS_ERR_IO, "%s: write failed", path);
        } else if (rc == XS_OK && fwrite(buf, 4, (size_t)n, f) != (size_t)n) {
            rc = xs_error(XS_ERR_IO, "%s: write failed (disk full?)", path);
        }
        free(buf);
        done += (uint64_t)n * (e->dtype == XS_BF16 ? 2 : 4);
        int pct = total ? (int)(100 * done / total) : 100;
        if (progress && total > (100u << 20) && pct / 5 != last_pct / 5) {
            fprintf(stderr, "\r%s: %3d%% (%.2f of %.2f GB)", label, pct, done / 1e9, total / 1e9);
            last_pct = pct;
        }
    }
    if (progress && total > (100u << 20)) fprintf(stderr, "\n");
    if (fclose(f) != 0 && rc == XS_OK) rc = xs_error(XS_ERR_IO, "%s: write failed", path);
    return rc;
}

/* ---- LM ---------------------------------------------------------------- */

/* Pass 1: the builder asks for each tensor; hand it zeroed (lazily mapped)
 * memory and remember the name and shape. */
static const xs_tensor *lm_collect(void *ctx, const char *name, int ndim, const int64_t *shape) {
    gen_list *l = ctx;
    if (list_add(l, name, ndim, shape) != XS_OK) return NULL;
    if (l->n_bufs == l->cap_bufs) {
        int cap = l->cap_bufs ? l->cap_bufs * 2 : 64;
        void **p = realloc(l->bufs, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        l->bufs = p;
        l->cap_bufs = cap;
    }
    size_t nb = (size_t)numel(ndim, shape) * sizeof(float);
    xs_tensor *t = calloc(1, sizeof *t + nb);
    if (!t) return NULL;
    l->bufs[l->n_bufs++] = t;
    *t = xs_tensor_make(XS_F32, ndim, shape, (char *)t + sizeof *t);
    return t;
}

typedef struct lm_fill_ctx {
    uint64_t seed;
} lm_fill_ctx;

static xs_status lm_fill(void *ctx, const gen_entry *e, float *dst) {
    const lm_fill_ctx *c = ctx;
    int64_t n = numel(e->ndim, e->shape);
    if (ends_with(e->name, "alpha")) {
        for (int64_t i = 0; i < n; i++) dst[i] = 1.0f;
        return XS_OK;
    }
    /* embeddings ~ O(1) entries (Kyutai initialises them N(0, 1)); matrices
     * uniform with variance 1/fan-in so every layer keeps its input scale;
     * output heads x3 so the random model's token choices are not all ties. */
    double a = 1.0;
    bool emb = strstr(e->name, "emb") != NULL;
    int64_t fan_in = e->shape[e->ndim - 1];
    if (!emb) a = sqrt(3.0 / (double)fan_in);
    if (strstr(e->name, "linears.") || strstr(e->name, "text_linear"))
        a *= 3.0;
    uint64_t h = name_hash(c->seed, e->name);
    for (int64_t i = 0; i < n; i++) dst[i] = (float)(a * unif(h, (uint64_t)i));
    return XS_OK;
}

static void print_plan(const gen_list *l, const char *what) {
    uint64_t bytes = 0, params = 0;
    for (int i = 0; i < l->n; i++) {
        uint64_t n = (uint64_t)numel(l->e[i].ndim, l->e[i].shape);
        params += n;
        bytes += n * (l->e[i].dtype == XS_BF16 ? 2 : 4);
    }
    fprintf(stderr, "%s: %d tensors, %.3f G parameters, %.2f GB\n", what, l->n, params / 1e9,
            bytes / 1e9);
}

static xs_status gen_lm(const char *cfg_path, const char *out_path, xs_dtype dtype, uint64_t seed,
                        bool progress, bool dry_run) {
    lm_config cfg;
    XS_TRY(lm_config_load(cfg_path, &cfg));
    xs_backend *be = NULL;
    XS_TRY(xs_backend_open("ref", 1, &be));
    gen_list l;
    memset(&l, 0, sizeof l);
    lm_model *m = NULL;
    xs_status rc = lm_model_build_synthetic(&cfg, XS_LAYOUT_PYTORCH, lm_collect, &l, be, &m);
    lm_model_free(m);
    xs_backend_close(be);
    for (int i = 0; i < l.n_bufs; i++) free(l.bufs[i]);
    l.n_bufs = 0;
    if (rc == XS_OK) {
        for (int i = 0; i < l.n; i++) l.e[i].dtype = dtype;
        lm_fill_ctx c = {seed};
        if (dry_run) print_plan(&l, out_path);
        else rc = write_st(&l, out_path, lm_fill, &c, progress, "LM");
    }
    list_free(&l);
    return rc;
}

/* ---- Mimi --------------------------------------------------------------- */

static xs_status mimi_collect(void *user, const char *name, int ndim, const int64_t *shape,
                              float *dst) {
    (void)dst;
    return list_add(user, name, ndim, shape);
}

typedef struct mimi_fill_ctx {
    uint64_t seed;
    int n_q, bins, Q;
    float *centroids; /* [n_q][bins][Q] or NULL */
} mimi_fill_ctx;

/* Codebook index of ".._codebook.embedding_sum" names, or -1. */
static int codebook_of(const char *name) {
    int k;
    if (!ends_with(name, "_codebook.embedding_sum")) return -1;
    if (strstr(name, "rvq_first.vq.layers.0.")) return 0;
    if (sscanf(name, "quantizer.rvq_rest.vq.layers.%d.", &k) == 1) return k + 1;
    return -1;
}

static xs_status mimi_source(void *user, const char *name, int ndim, const int64_t *shape,
                             float *dst) {
    mimi_fill_ctx *c = user;
    int k = codebook_of(name);
    if (dst && k >= 0 && c->centroids && k < c->n_q) {
        /* cluster_usage is 1, so embedding_sum is the centroid itself */
        memcpy(dst, c->centroids + (size_t)k * c->bins * c->Q, (size_t)c->bins * c->Q * sizeof(float));
        return XS_OK;
    }
    return mimi_random_source(&c->seed, name, ndim, shape, dst);
}

static xs_status mimi_fill(void *ctx, const gen_entry *e, float *dst) {
    return mimi_source(ctx, e->name, e->ndim, e->shape, dst);
}

/* A vowel-like test signal when no utterance is given: glottal pulses with a
 * gliding pitch through moving formant-like resonances, syllables separated
 * by short pauses and noise bursts (fricatives). */
static float *synthetic_speech(int64_t n, uint64_t seed) {
    float *x = calloc((size_t)n, sizeof *x);
    if (!x) return NULL;
    double y1 = 0, y2 = 0, z1 = 0, z2 = 0, phase = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = i / 24000.0;
        int syl = (int)(t / 0.25);
        double in_syl = fmod(t, 0.25);
        double f0 = 110 + 40 * sin(2 * M_PI * 0.7 * t) + 15 * (syl % 3);
        phase += f0 / 24000.0;
        double src = 0;
        if (in_syl < 0.18) src = phase - floor(phase) < 0.1 ? 1.0 : -0.1;
        else if (in_syl < 0.22 && syl % 2) src = 0.3 * unif(seed, (uint64_t)i);
        double f1 = 300 + 400 * (0.5 + 0.5 * sin(syl * 1.7)), f2 = 900 + 1200 * (0.5 + 0.5 * cos(syl * 2.3));
        double r = 0.97;
        double c1 = 2 * r * cos(2 * M_PI * f1 / 24000), c2 = 2 * r * cos(2 * M_PI * f2 / 24000);
        double y = src + c1 * y1 - r * r * y2;
        y2 = y1;
        y1 = y;
        double z = y + c2 * z1 - r * r * z2;
        z2 = z1;
        z1 = z;
        x[i] = (float)(0.02 * z);
    }
    float peak = 0;
    for (int64_t i = 0; i < n; i++) peak = fmaxf(peak, fabsf(x[i]));
    for (int64_t i = 0; peak > 0 && i < n; i++) x[i] *= 0.5f / peak;
    return x;
}

static xs_status read_speech(const char *path, uint64_t seed, float **pcm, int64_t *n) {
    if (path) {
        xs_audio a = {0};
        XS_TRY(xs_audio_read(path, 24000, &a, NULL));
        int64_t np = (a.n + 1919) / 1920 * 1920;
        float *p = calloc((size_t)np, sizeof *p);
        if (!p) {
            xs_audio_free(&a);
            return xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
        }
        memcpy(p, a.pcm, (size_t)a.n * sizeof *p);
        xs_audio_free(&a);
        *pcm = p;
        *n = np;
        return XS_OK;
    }
    *n = 1920 * 50;
    *pcm = synthetic_speech(*n, seed);
    return *pcm ? XS_OK : xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
}

/* Centroids from the latents the encoder produces on speech (see header). */
static xs_status draw_centroids(const xs_tensor *first, const xs_tensor *rest, mimi_fill_ctx *c) {
    int Q = c->Q, bins = c->bins;
    int64_t T = first->shape[2];
    const float *x0 = first->data, *x1 = rest->data; /* [Q][T] (tap layout [1, Q, T]) */
    float *res = malloc((size_t)(Q * T) * sizeof *res);
    c->centroids = malloc((size_t)c->n_q * bins * Q * sizeof(float));
    if (!res || !c->centroids) {
        free(res);
        return xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
    }
    for (int64_t i = 0; i < Q * T; i++) res[i] = x1[i];
    for (int k = 0; k < c->n_q; k++) {
        const float *src = k == 0 ? x0 : res;
        float *cb = c->centroids + (size_t)k * bins * Q;
        uint64_t h = name_hash(c->seed, "centroids") + (uint64_t)k * 1000003u;
        for (int d = 0; d < Q; d++) {
            double mean = 0, var = 0;
            for (int64_t t = 0; t < T; t++) mean += src[d * T + t];
            mean /= (double)T;
            for (int64_t t = 0; t < T; t++) var += (src[d * T + t] - mean) * (src[d * T + t] - mean);
            double sd = sqrt(var / (double)T) + 1e-3;
            for (int j = 0; j < bins; j++) {
                int64_t t = (int64_t)(mix64(h + (uint64_t)j) % (uint64_t)T);
                cb[(size_t)j * Q + d] = (float)(src[d * T + t] + 0.3 * sd * unif(h ^ 0x55, (uint64_t)(j * Q + d)));
            }
        }
        if (k == 0) continue;
        /* residual for the next codebook: subtract each frame's nearest centroid */
        for (int64_t t = 0; t < T; t++) {
            int best = 0;
            double bd = INFINITY;
            for (int j = 0; j < bins; j++) {
                double dd = 0;
                for (int d = 0; d < Q; d++) {
                    double v = res[d * T + t] - cb[(size_t)j * Q + d];
                    dd += v * v;
                }
                if (dd < bd) { bd = dd; best = j; }
            }
            for (int d = 0; d < Q; d++) res[d * T + t] -= cb[(size_t)best * Q + d];
        }
    }
    free(res);
    return XS_OK;
}

/* Count distinct codes per codebook of the written Mimi on the speech. */
static xs_status check_diversity(const char *mimi_path, const char *cfg_path, const float *pcm,
                                 int64_t n, bool verbose) {
    xs_backend *be = NULL;
    XS_TRY(xs_backend_open("cpu", 0, &be));
    mimi_model *m = NULL;
    xs_status rc = mimi_model_open(be, mimi_path, cfg_path, false, &m, NULL, 0);
    mimi_stream *s = NULL;
    int K = 0;
    int64_t T = n / 1920;
    int32_t *codes = NULL;
    if (rc == XS_OK) rc = mimi_stream_new(m, &s);
    if (rc == XS_OK) {
        K = mimi_model_config(m)->num_codebooks;
        codes = malloc((size_t)(T * K) * sizeof *codes);
        if (!codes) rc = xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
    }
    for (int64_t f = 0; rc == XS_OK && f < T; f++) rc = mimi_encode(s, pcm + f * 1920, 1920, K, codes + f * K);
    int min_distinct = 1 << 30;
    if (rc == XS_OK) {
        if (verbose) fprintf(stderr, "mimi: distinct codes per codebook over %lld frames:", (long long)T);
        for (int k = 0; k < K; k++) {
            int distinct = 0;
            for (int64_t f = 0; f < T; f++) {
                bool seen = false;
                for (int64_t g = 0; g < f && !seen; g++) seen = codes[g * K + k] == codes[f * K + k];
                distinct += !seen;
            }
            if (verbose) fprintf(stderr, " %d", distinct);
            if (distinct < min_distinct) min_distinct = distinct;
        }
        if (verbose) fprintf(stderr, "\n");
        if (min_distinct < 2)
            rc = xs_error(XS_ERR_INTERNAL, "gen-model: a codebook gives one code for every frame");
    }
    free(codes);
    mimi_stream_free(s);
    mimi_model_free(m);
    xs_backend_close(be);
    return rc;
}

static xs_status gen_mimi(const char *cfg_path, const char *out_path, uint64_t seed,
                          const char *utterance, bool progress, bool dry_run) {
    mimi_config cfg;
    XS_TRY(mimi_config_load(cfg_path, &cfg));
    if (dry_run) {
        gen_list l;
        memset(&l, 0, sizeof l);
        xs_status rc = mimi_expected_tensors(&cfg, mimi_collect, &l);
        if (rc == XS_OK) print_plan(&l, out_path);
        list_free(&l);
        return rc;
    }
    mimi_fill_ctx c = {.seed = seed, .n_q = cfg.n_q, .bins = cfg.bins, .Q = cfg.q_dimension};
    float *pcm = NULL;
    int64_t n = 0;
    XS_TRY(read_speech(utterance, seed, &pcm, &n));
    /* pass 1: random weights, encode the speech, record the projected latents */
    xs_backend *be = NULL;
    xs_status rc = xs_backend_open("cpu", 0, &be);
    mimi_model *m = NULL;
    mimi_stream *s = NULL;
    xs_taps *taps = xs_taps_new();
    int32_t codes[64];
    if (rc == XS_OK && !taps) rc = xs_error(XS_ERR_NOMEM, "gen-model: out of memory");
    if (rc == XS_OK) rc = mimi_model_load_from(be, &cfg, mimi_source, &c, &m);
    if (rc == XS_OK) rc = mimi_stream_new(m, &s);
    if (rc == XS_OK) {
        xs_taps_set_filter(taps, "mimi.enc.q_first_proj_in,mimi.enc.q_rest_proj_in");
        mimi_stream_set_taps(s, taps);
        int K = cfg.n_q < 64 ? cfg.n_q : 64;
        for (int64_t f = 0; rc == XS_OK && f < n / 1920; f++) rc = mimi_encode(s, pcm + f * 1920, 1920, K, codes);
    }
    if (rc == XS_OK) {
        const xs_tensor *x0 = xs_taps_find(taps, "mimi.enc.q_first_proj_in");
        const xs_tensor *x1 = xs_taps_find(taps, "mimi.enc.q_rest_proj_in");
        if (!x0 || !x1 || x0->ndim != 3 || x0->shape[1] != cfg.q_dimension || x0->dtype != XS_F32 ||
            !xs_tensor_same_shape(x0, x1))
            rc = xs_error(XS_ERR_INTERNAL, "gen-model: Mimi taps q_*_proj_in missing or mis-shaped");
        else
            rc = draw_centroids(x0, x1, &c);
    }
    mimi_stream_free(s);
    mimi_model_free(m);
    xs_taps_free(taps);
    if (be) xs_backend_close(be);
    /* pass 2: write every tensor the loader expects */
    gen_list l;
    memset(&l, 0, sizeof l);
    if (rc == XS_OK) rc = mimi_expected_tensors(&cfg, mimi_collect, &l);
    if (rc == XS_OK) rc = write_st(&l, out_path, mimi_fill, &c, progress && cfg.dimension > 128, "Mimi");
    list_free(&l);
    free(c.centroids);
    if (rc == XS_OK) rc = check_diversity(out_path, cfg_path, pcm, n, progress);
    free(pcm);
    return rc;
}

/* ---- bundle ------------------------------------------------------------- */

static xs_status write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return xs_error(XS_ERR_IO, "%s: cannot create", path);
    bool ok = fputs(text, f) >= 0;
    if (fclose(f) != 0) ok = false;
    return ok ? XS_OK : xs_error(XS_ERR_IO, "%s: write failed", path);
}

xs_status xs_gen_model(const xs_gen_opts *o) {
    if (!o || !o->out_dir || !o->preset) return xs_error(XS_ERR_ARG, "gen-model: no preset or output folder");
    bool tiny = !strcmp(o->preset, "tiny");
    if (!tiny && strcmp(o->preset, "moshi-7b"))
        return xs_error(XS_ERR_ARG, "gen-model: unknown preset '%s' (tiny or moshi-7b)", o->preset);
    if (o->dtype != XS_F32 && o->dtype != XS_BF16)
        return xs_error(XS_ERR_UNSUPPORTED, "gen-model: LM dtype %s is not written yet (f32 or bf16; "
                        "quantize the result with `xswarm quantize`)", xs_dtype_name(o->dtype));
    XS_TRY(xs_mkdir_p(o->out_dir));
    char p[4096], q[4096];
    snprintf(p, sizeof p, "%s/config.json", o->out_dir);
    XS_TRY(write_text(p, tiny ? k_tiny_lm : k_7b_lm));
    snprintf(q, sizeof q, "%s/mimi_config.json", o->out_dir);
    XS_TRY(write_text(q, tiny ? k_tiny_mimi : k_7b_mimi));
    /* tokenizer */
    lm_config lc;
    XS_TRY(lm_config_load(p, &lc));
    char tok[4096];
    snprintf(tok, sizeof tok, "%s/%s", o->out_dir, XS_GEN_SPM_FILE);
    /* unigram, <pad> at 3 like Moshi's; a small text cannot fill 32000
     * pieces, so the vocabulary is "up to text_card" */
    if (!o->dry_run) {
        XS_TRY(xs_spm_train(k_text, sizeof k_text / sizeof k_text[0], lc.text_card,
                            "--model_type=unigram --pad_id=3 --hard_vocab_limit=false", tok));
        if (o->progress) fprintf(stderr, "tokenizer: %s\n", tok);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", o->out_dir, XS_GEN_MIMI_FILE);
    XS_TRY(gen_mimi(q, path, o->seed, o->utterance, o->progress, o->dry_run));
    if (o->progress && !o->dry_run) fprintf(stderr, "mimi: %s\n", path);
    snprintf(path, sizeof path, "%s/%s", o->out_dir, XS_GEN_LM_FILE);
    XS_TRY(gen_lm(p, path, o->dtype, o->seed, o->progress, o->dry_run));
    if (o->progress && !o->dry_run) fprintf(stderr, "lm: %s\n", path);
    return XS_OK;
}
