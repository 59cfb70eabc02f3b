/*
 * mimi_weights.c — checkpoint tensors -> mimi_model.
 *
 * Names are those of Kyutai's released checkpoint
 * (tokenizer-e351c8d8-checkpoint125.safetensors, PyTorch state_dict names
 * with the fused attention `in_proj_weight`). Every tensor is converted to
 * f32 on the host and copied into backend memory, so the weights file may
 * be closed after loading and every backend sees the same values.
 *
 * Two things are derived at load time rather than per frame:
 *  - codebook centroids = embedding_sum / max(cluster_usage, 1e-5) (the file
 *    stores training statistics, not centroids), and -|c|^2/2 per entry, so
 *    the nearest centroid is one matmul + argmax;
 *  - -bias planes of the transposed convs, to take the bias out of the tail
 *    a streaming transposed conv carries to its next call.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/lanes.h"
#include "backend/ops.h"
#include "model/mimi_internal.h"

typedef struct loader {
    mimi_model *m;
    mimi_tensor_source src;
    void *user;
    int64_t cols; /* columns per 80 ms frame at the layer being loaded */
} loader;

/* Convs with at most this many output columns per frame (the deep, wide
 * layers: they hold most of the conv weights) run in matmul form. */
#define MIMI_MM_CONV_MAX_COLS 16

static xs_status own(mimi_model *m, const xs_tensor *t) {
    if (m->n_owned == m->cap_owned) {
        int cap = m->cap_owned ? m->cap_owned * 2 : 256;
        xs_tensor *p = realloc(m->owned, (size_t)cap * sizeof *p);
        if (!p) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
        m->owned = p;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = *t;
    return XS_OK;
}

/* Copy host f32 data into a new backend tensor owned by the model. */
static xs_status upload(mimi_model *m, int ndim, const int64_t *shape, const float *host,
                        xs_tensor *out) {
    xs_tensor t;
    if (!m->be) { /* dry run (mimi_expected_tensors): nothing is allocated */
        memset(out, 0, sizeof *out);
        return XS_OK;
    }
    XS_TRY(xs_tensor_alloc(m->be, XS_F32, ndim, shape, &t));
    xs_status rc = own(m, &t);
    if (rc != XS_OK) {
        xs_tensor_free(m->be, &t);
        return rc;
    }
    XS_TRY(xs_tensor_upload(m->be, &t, host));
    *out = t;
    return XS_OK;
}

static int64_t numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* Host copy of one checkpoint tensor (caller frees). */
static xs_status fetch(loader *L, const char *name, int ndim, const int64_t *shape, float **out) {
    int64_t n = numel(ndim, shape);
    if (!L->m->be) { /* dry run: the source only checks name and shape */
        *out = NULL;
        return L->src(L->user, name, ndim, shape, NULL);
    }
    float *h = malloc((size_t)n * sizeof *h);
    if (!h) return xs_error(XS_ERR_NOMEM, "mimi: out of memory loading %s", name);
    xs_status rc = L->src(L->user, name, ndim, shape, h);
    if (rc != XS_OK) {
        free(h);
        return rc;
    }
    L->m->n_params += n;
    *out = h;
    return XS_OK;
}

static xs_status load(loader *L, const char *name, int ndim, const int64_t *shape, xs_tensor *out) {
    float *h = NULL;
    XS_TRY(fetch(L, name, ndim, shape, &h));
    xs_status rc = upload(L->m, ndim, shape, h, out);
    free(h);
    return rc;
}

/* A matmul weight: f32, or bf16 when cfg.matmul_bf16 (the matmul op takes
 * both; conv weights must stay f32). */
static xs_status upload_mm(loader *L, int ndim, const int64_t *shape, const float *h,
                           xs_tensor *out) {
    if (!L->m->cfg.matmul_bf16 || !L->m->be) return upload(L->m, ndim, shape, h, out);
    int64_t n = numel(ndim, shape);
    uint16_t *b = malloc((size_t)n * sizeof *b);
    xs_status rc = b ? XS_OK : xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    for (int64_t i = 0; b && i < n; i++) b[i] = xs_f32_to_bf16(h[i]);
    xs_tensor t;
    if (rc == XS_OK) rc = xs_tensor_alloc(L->m->be, XS_BF16, ndim, shape, &t);
    if (rc == XS_OK && (rc = own(L->m, &t)) != XS_OK) xs_tensor_free(L->m->be, &t);
    if (rc == XS_OK) rc = xs_tensor_upload(L->m->be, &t, b);
    if (rc == XS_OK) *out = t;
    free(b);
    return rc;
}

static xs_status load_mm(loader *L, const char *name, int ndim, const int64_t *shape,
                         xs_tensor *out) {
    float *h = NULL;
    XS_TRY(fetch(L, name, ndim, shape, &h));
    xs_status rc = upload_mm(L, ndim, shape, h, out);
    free(h);
    return rc;
}

/* ---- layers ------------------------------------------------------------ */

static xs_status load_conv(loader *L, mimi_conv *cv, const char *prefix, int cin, int cout, int k,
                           int stride, int dilation, int groups, bool bias, bool replicate) {
    char name[256];
    cv->cin = cin;
    cv->cout = cout;
    cv->k = k;
    cv->stride = stride;
    cv->dilation = dilation;
    cv->groups = groups;
    cv->replicate = replicate;
    cv->ctx_len = (int64_t)(k - 1) * dilation + 1 - stride;
    if (cv->ctx_len < 0)
        return xs_error(XS_ERR_ARG, "mimi: %s: stride %d > kernel", prefix, stride);
    cv->state_off = L->m->conv_state_floats;
    L->m->conv_state_floats += (int64_t)cin * cv->ctx_len;
    int64_t ws[3] = {cout, cin / groups, k};
    snprintf(name, sizeof name, "%s.weight", prefix);
    memset(&cv->w, 0, sizeof cv->w);
    memset(&cv->wm, 0, sizeof cv->wm);
    int64_t out_cols = L->cols / stride;
    L->cols = out_cols;
    if (groups == 1 && out_cols >= 1 && out_cols <= MIMI_MM_CONV_MAX_COLS) {
        /* [cout, cin, k] is already the row-major [cout, cin*k] matrix */
        int64_t ms[2] = {cout, (int64_t)cin * k};
        float *h = NULL;
        XS_TRY(fetch(L, name, 3, ws, &h));
        xs_status rc = h ? upload_mm(L, 2, ms, h, &cv->wm) : XS_OK;
        free(h);
        XS_TRY(rc);
    } else {
        XS_TRY(load(L, name, 3, ws, &cv->w));
    }
    memset(&cv->b, 0, sizeof cv->b);
    if (bias) {
        int64_t bs[1] = {cout};
        snprintf(name, sizeof name, "%s.bias", prefix);
        XS_TRY(load(L, name, 1, bs, &cv->b));
    }
    return XS_OK;
}

/* Transposed conv as a matmul (see mimi_seanet.c), when K = 2 * stride and
 * groups = 1 (every SEANet decoder layer): wt[co*K + k, ci] = w[ci, co, k],
 * and the bias goes to the first `stride` taps of each channel only, so that
 * the overlap-add counts it once and the carried tail has none. */
static xs_status make_matmul_form(loader *L, mimi_convtr *ct, const float *w, const float *b) {
    int64_t cin = ct->cin, cout = ct->cout, K = ct->k, S = ct->stride;
    float *wt = malloc((size_t)(cout * K * cin) * sizeof *wt);
    float *bc = calloc((size_t)(cout * K), sizeof *bc);
    xs_status rc = wt && bc ? XS_OK : xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    for (int64_t ci = 0; rc == XS_OK && ci < cin; ci++)
        for (int64_t co = 0; co < cout; co++)
            for (int64_t k = 0; k < K; k++)
                wt[(co * K + k) * cin + ci] = w[(ci * cout + co) * K + k];
    for (int64_t co = 0; rc == XS_OK && b && co < cout; co++)
        for (int64_t k = 0; k < S; k++) bc[co * K + k] = b[co];
    int64_t ws[2] = {cout * K, cin}, bs[1] = {cout * K};
    if (rc == XS_OK) rc = upload_mm(L, 2, ws, wt, &ct->wt);
    if (rc == XS_OK) rc = upload(L->m, 1, bs, bc, &ct->bias_col);
    free(wt);
    free(bc);
    return rc;
}

static xs_status load_convtr(loader *L, mimi_convtr *ct, const char *prefix, int cin, int cout,
                             int k, int stride, int groups, bool bias) {
    char name[256];
    memset(ct, 0, sizeof *ct);
    ct->cin = cin;
    ct->cout = cout;
    ct->k = k;
    ct->stride = stride;
    ct->groups = groups;
    ct->tail_len = k - stride;
    if (ct->tail_len < 0)
        return xs_error(XS_ERR_ARG, "mimi: %s: stride %d > kernel", prefix, stride);
    ct->state_off = L->m->conv_state_floats;
    L->m->conv_state_floats += (int64_t)cout * ct->tail_len;
    L->cols *= stride;
    int64_t ws[3] = {cin, cout / groups, k}, bs[1] = {cout};
    float *hw = NULL, *hb = NULL;
    snprintf(name, sizeof name, "%s.weight", prefix);
    XS_TRY(fetch(L, name, 3, ws, &hw));
    xs_status rc = XS_OK;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        rc = fetch(L, name, 1, bs, &hb);
    }
    if (rc == XS_OK && hw && groups == 1 && k == 2 * stride) {
        rc = make_matmul_form(L, ct, hw, hb);
    } else if (rc == XS_OK && hw) {
        rc = upload(L->m, 3, ws, hw, &ct->w);
        if (rc == XS_OK && hb) rc = upload(L->m, 1, bs, hb, &ct->b);
        if (rc == XS_OK && hb && ct->tail_len > 0) {
            float *plane = malloc((size_t)(cout * ct->tail_len) * sizeof *plane);
            if (!plane) rc = xs_error(XS_ERR_NOMEM, "mimi: out of memory");
            for (int64_t c = 0; plane && c < cout; c++)
                for (int64_t j = 0; j < ct->tail_len; j++) plane[c * ct->tail_len + j] = -hb[c];
            int64_t ps[2] = {cout, ct->tail_len};
            if (rc == XS_OK) rc = upload(L->m, 2, ps, plane, &ct->neg_bias);
            free(plane);
        }
    }
    free(hw);
    free(hb);
    return rc;
}

static xs_status load_resblock(loader *L, mimi_resblock *rb, const char *prefix, int dim,
                               int dilation) {
    const mimi_config *c = &L->m->cfg;
    char p[256];
    int hidden = dim / c->compress;
    snprintf(p, sizeof p, "%s.block.1.conv.conv", prefix);
    XS_TRY(load_conv(L, &rb->c1, p, dim, hidden, c->residual_kernel_size, 1, dilation, 1, true,
                     false));
    snprintf(p, sizeof p, "%s.block.3.conv.conv", prefix);
    return load_conv(L, &rb->c2, p, hidden, dim, 1, 1, 1, 1, true, false);
}

static int ipow(int b, int e) {
    int r = 1;
    while (e-- > 0) r *= b;
    return r;
}

/* Child indices of encoder.model follow Kyutai's nn.Sequential: conv, then
 * per ratio (residual blocks..., ELU, strided conv), then ELU, conv. */
static xs_status load_seanet_enc(loader *L) {
    const mimi_config *c = &L->m->cfg;
    mimi_seanet_enc *e = &L->m->enc;
    char p[256];
    int idx = 0, mult = 1;
    snprintf(p, sizeof p, "encoder.model.%d.conv.conv", idx++);
    XS_TRY(load_conv(L, &e->first, p, c->channels, c->n_filters, c->kernel_size, 1, 1, 1, true,
                     false));
    for (int i = 0; i < c->n_ratios; i++) {
        int ratio = c->ratios[c->n_ratios - 1 - i];
        int dim = mult * c->n_filters;
        for (int j = 0; j < c->n_residual_layers; j++) {
            snprintf(p, sizeof p, "encoder.model.%d", idx++);
            XS_TRY(load_resblock(L, &e->res[i][j], p, dim, ipow(c->dilation_base, j)));
        }
        idx++; /* ELU */
        snprintf(p, sizeof p, "encoder.model.%d.conv.conv", idx++);
        XS_TRY(load_conv(L, &e->down[i], p, dim, dim * 2, ratio * 2, ratio, 1, 1, true, false));
        mult *= 2;
    }
    idx++; /* ELU */
    snprintf(p, sizeof p, "encoder.model.%d.conv.conv", idx++);
    return load_conv(L, &e->last, p, mult * c->n_filters, c->dimension, c->last_kernel_size, 1,
                     1, 1, true, false);
}

/* decoder.model: conv, then per ratio (ELU, transposed conv, residual
 * blocks...), then ELU, conv. */
static xs_status load_seanet_dec(loader *L) {
    const mimi_config *c = &L->m->cfg;
    mimi_seanet_dec *d = &L->m->dec;
    char p[256];
    int idx = 0, mult = ipow(2, c->n_ratios);
    snprintf(p, sizeof p, "decoder.model.%d.conv.conv", idx++);
    XS_TRY(load_conv(L, &d->first, p, c->dimension, mult * c->n_filters, c->kernel_size, 1, 1, 1,
                     true, false));
    for (int i = 0; i < c->n_ratios; i++) {
        int ratio = c->ratios[i];
        int dim = mult * c->n_filters;
        idx++; /* ELU */
        snprintf(p, sizeof p, "decoder.model.%d.convtr.convtr", idx++);
        XS_TRY(load_convtr(L, &d->up[i], p, dim, dim / 2, ratio * 2, ratio, 1, true));
        for (int j = 0; j < c->n_residual_layers; j++) {
            snprintf(p, sizeof p, "decoder.model.%d", idx++);
            XS_TRY(load_resblock(L, &d->res[i][j], p, dim / 2, ipow(c->dilation_base, j)));
        }
        mult /= 2;
    }
    idx++; /* ELU */
    snprintf(p, sizeof p, "decoder.model.%d.conv.conv", idx++);
    return load_conv(L, &d->last, p, c->n_filters, c->channels, c->last_kernel_size, 1, 1, 1,
                     true, false);
}

static xs_status load_transformer(loader *L, mimi_transformer *tr, const char *which) {
    const mimi_config *c = &L->m->cfg;
    int64_t D = c->d_model, F = c->dim_feedforward;
    tr->n_layers = c->num_layers;
    tr->layers = calloc((size_t)(c->num_layers ? c->num_layers : 1), sizeof *tr->layers);
    if (!tr->layers) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    char n[256];
    int64_t vd[1] = {D}, in_s[2] = {3 * D, D}, dd[2] = {D, D}, fd[2] = {F, D}, df[2] = {D, F};
    for (int l = 0; l < c->num_layers; l++) {
        mimi_tlayer *ly = &tr->layers[l];
#define P(suffix) (snprintf(n, sizeof n, "%s.transformer.layers.%d." suffix, which, l), n)
        XS_TRY(load(L, P("norm1.weight"), 1, vd, &ly->norm1_w));
        XS_TRY(load(L, P("norm1.bias"), 1, vd, &ly->norm1_b));
        XS_TRY(load(L, P("norm2.weight"), 1, vd, &ly->norm2_w));
        XS_TRY(load(L, P("norm2.bias"), 1, vd, &ly->norm2_b));
        xs_tensor in_proj;
        XS_TRY(load_mm(L, P("self_attn.in_proj_weight"), 2, in_s, &in_proj));
        if (in_proj.data) { /* (NULL in a dry run) */
            /* rows: q (D), then k (D), then v (D); contiguous row blocks */
            ly->wq = xs_tensor_slice(&in_proj, 0, 0, D);
            ly->wk = xs_tensor_slice(&in_proj, 0, D, D);
            ly->wv = xs_tensor_slice(&in_proj, 0, 2 * D, D);
        }
        XS_TRY(load_mm(L, P("self_attn.out_proj.weight"), 2, dd, &ly->wo));
        XS_TRY(load_mm(L, P("linear1.weight"), 2, fd, &ly->lin1));
        XS_TRY(load_mm(L, P("linear2.weight"), 2, df, &ly->lin2));
        XS_TRY(load(L, P("layer_scale_1.scale"), 1, vd, &ly->ls1));
        XS_TRY(load(L, P("layer_scale_2.scale"), 1, vd, &ly->ls2));
#undef P
    }
    return XS_OK;
}

/* 1x1 conv weight [out, in, 1] loaded as the matrix [out, in]. */
static xs_status load_proj(loader *L, const char *name, int64_t out_c, int64_t in_c,
                           xs_tensor *t) {
    float *h = NULL;
    int64_t s3[3] = {out_c, in_c, 1}, s2[2] = {out_c, in_c};
    XS_TRY(fetch(L, name, 3, s3, &h));
    xs_status rc = upload(L->m, 2, s2, h, t);
    free(h);
    return rc;
}

static xs_status load_codebook(loader *L, mimi_codebook *cb, const char *prefix) {
    const mimi_config *c = &L->m->cfg;
    int64_t K = c->bins, Q = c->q_dimension;
    char n[256];
    float *usage = NULL, *sum = NULL;
    int64_t us[1] = {K}, ss[2] = {K, Q};
    snprintf(n, sizeof n, "%s._codebook.cluster_usage", prefix);
    XS_TRY(fetch(L, n, 1, us, &usage));
    snprintf(n, sizeof n, "%s._codebook.embedding_sum", prefix);
    xs_status rc = fetch(L, n, 2, ss, &sum);
    if (rc == XS_OK && !sum) { /* dry run */
        memset(cb, 0, sizeof *cb);
        return XS_OK;
    }
    float *nh = rc == XS_OK ? malloc((size_t)K * sizeof *nh) : NULL;
    if (rc == XS_OK && !nh) rc = xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    if (rc == XS_OK) {
        for (int64_t i = 0; i < K; i++) {
            /* f32 division, as the reference does it */
            float u = usage[i] > 1e-5f ? usage[i] : 1e-5f;
            double sq = 0;
            for (int64_t j = 0; j < Q; j++) {
                float v = sum[i * Q + j] / u;
                sum[i * Q + j] = v;
                sq += (double)v * v;
            }
            nh[i] = (float)(-0.5 * sq);
        }
        rc = upload(L->m, 2, ss, sum, &cb->centroids);
        if (rc == XS_OK) rc = upload(L->m, 1, us, nh, &cb->neg_half_sq);
    }
    free(usage);
    free(sum);
    free(nh);
    return rc;
}

static xs_status load_rvq(loader *L) {
    const mimi_config *c = &L->m->cfg;
    mimi_rvq *q = &L->m->rvq;
    int64_t D = c->dimension, Q = c->q_dimension;
    XS_TRY(load_proj(L, "quantizer.rvq_first.input_proj.weight", Q, D, &q->first_in));
    XS_TRY(load_proj(L, "quantizer.rvq_first.output_proj.weight", D, Q, &q->first_out));
    if (c->n_q > 1) {
        XS_TRY(load_proj(L, "quantizer.rvq_rest.input_proj.weight", Q, D, &q->rest_in));
        XS_TRY(load_proj(L, "quantizer.rvq_rest.output_proj.weight", D, Q, &q->rest_out));
    }
    q->books = calloc((size_t)c->n_q, sizeof *q->books);
    if (!q->books) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    XS_TRY(load_codebook(L, &q->books[0], "quantizer.rvq_first.vq.layers.0"));
    char p[256];
    for (int k = 1; k < c->n_q; k++) {
        snprintf(p, sizeof p, "quantizer.rvq_rest.vq.layers.%d", k - 1);
        XS_TRY(load_codebook(L, &q->books[k], p));
    }
    return XS_OK;
}

/* ---- public ------------------------------------------------------------ */

static xs_status build(xs_backend *be, const mimi_config *cfg, mimi_tensor_source src, void *user,
                       mimi_model **out);

xs_status mimi_model_load_from(xs_backend *be, const mimi_config *cfg, mimi_tensor_source src,
                               void *user, mimi_model **out) {
    if (!be || !cfg || !src || !out) return xs_error(XS_ERR_ARG, "mimi_model_load: NULL argument");
    return build(be, cfg, src, user, out);
}

xs_status mimi_expected_tensors(const mimi_config *cfg, mimi_tensor_source src, void *user) {
    if (!cfg || !src) return xs_error(XS_ERR_ARG, "mimi_expected_tensors: NULL argument");
    mimi_model *m = NULL;
    XS_TRY(build(NULL, cfg, src, user, &m));
    mimi_model_free(m);
    return XS_OK;
}

/* be == NULL: dry run, the source is asked about every tensor with dst NULL. */
static xs_status build(xs_backend *be, const mimi_config *cfg, mimi_tensor_source src, void *user,
                       mimi_model **out) {
    XS_TRY(mimi_config_validate(cfg));
    mimi_model *m = calloc(1, sizeof *m);
    if (!m) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    m->be = be;
    m->cfg = *cfg;
    m->n_lanes = 1;
    loader L = {m, src, user, mimi_frame_samples(cfg)};
    int D = cfg->dimension, ds = mimi_downsample_stride(cfg);
    xs_status rc = load_seanet_enc(&L);
    if (rc == XS_OK) rc = load_transformer(&L, &m->enc_tr, "encoder_transformer");
    if (rc == XS_OK)
        rc = load_conv(&L, &m->downsample, "downsample.conv.conv.conv", D, D, 2 * ds, ds, 1, 1,
                       false, true);
    if (rc == XS_OK) rc = load_rvq(&L);
    /* Kyutai's get_mimi keeps upsample_channel_wise_bug=True: groups = channels. */
    if (rc == XS_OK)
        rc = load_convtr(&L, &m->upsample, "upsample.convtr.convtr.convtr", D, D, 2 * ds, ds, D,
                         false);
    if (rc == XS_OK) rc = load_transformer(&L, &m->dec_tr, "decoder_transformer");
    if (rc == XS_OK) rc = load_seanet_dec(&L);
    if (rc != XS_OK) {
        mimi_model_free(m);
        return rc;
    }
    /* XSWARM_MIMI_LANES, 8 on cuda: streams of this model run side by side */
    if (be) mimi_model_set_lanes(m, xs_lanes_from_env(be));
    *out = m;
    return XS_OK;
}

typedef struct file_source {
    const xs_weights *w;
} file_source;

static xs_status file_tensor(void *user, const char *name, int ndim, const int64_t *shape,
                             float *dst) {
    const xs_weights *w = ((file_source *)user)->w;
    const xs_tensor *t;
    XS_TRY(xs_weights_expect(w, name, -1, ndim, shape, &t));
    if (t->dtype != XS_F32 && t->dtype != XS_BF16 && t->dtype != XS_F16)
        return xs_error(XS_ERR_DTYPE, "%s: tensor %s: dtype %s (want f32, bf16 or f16)",
                        xs_weights_path(w), name, xs_dtype_name(t->dtype));
    if (!xs_tensor_is_contiguous(t))
        return xs_error(XS_ERR_FORMAT, "%s: tensor %s is not contiguous", xs_weights_path(w), name);
    if (!dst) return XS_OK;
    return xs_convert_to_f32(dst, t->data, t->dtype, xs_tensor_numel(t));
}

xs_status mimi_model_load(xs_backend *be, const mimi_config *cfg, const xs_weights *w,
                          mimi_model **out) {
    if (!w) return xs_error(XS_ERR_ARG, "mimi_model_load: no weights");
    file_source fs = {w};
    xs_status rc = mimi_model_load_from(be, cfg, file_tensor, &fs, out);
    if (rc != XS_OK) return xs_error_prefix(rc, "loading Mimi: ");
    return XS_OK;
}

void mimi_model_free(mimi_model *m) {
    if (!m) return;
    mimi_scratch_free(&m->scratch); /* streams' shared call scratch */
    mimi_batch_state_free(m);
    mimi_model_lanes_free(m);
    for (int i = 0; i < m->n_owned; i++) xs_tensor_free(m->be, &m->owned[i]);
    free(m->owned);
    free(m->enc_tr.layers);
    free(m->dec_tr.layers);
    free(m->rvq.books);
    free(m);
}

const mimi_config *mimi_model_config(const mimi_model *m) { return &m->cfg; }
xs_backend *mimi_model_backend(const mimi_model *m) { return m->be; }
int64_t mimi_model_params(const mimi_model *m) { return m->n_params; }

int64_t mimi_model_frame_bytes(const mimi_model *m, int n_codebooks) {
    int64_t n = 0;
    for (int i = 0; i < m->n_owned; i++) n += (int64_t)xs_tensor_nbytes(&m->owned[i]);
    for (int k = n_codebooks; k < m->cfg.n_q; k++)
        n -= (int64_t)(xs_tensor_nbytes(&m->rvq.books[k].centroids) +
                       xs_tensor_nbytes(&m->rvq.books[k].neg_half_sq));
    return n;
}

/* ---- open by path ---------------------------------------------------------- */

static bool file_has(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char buf[4096];
    bool found = false;
    size_t n;
    /* overlapping windows so a needle split across reads is still seen */
    size_t keep = 0;
    while (!found && (n = fread(buf + keep, 1, sizeof buf - 1 - keep, f)) > 0) {
        buf[keep + n] = 0;
        found = strstr(buf, needle) != NULL;
        size_t tot = keep + n;
        keep = tot < 64 ? tot : 64;
        memmove(buf, buf + tot - keep, keep);
    }
    fclose(f);
    return found;
}

xs_status mimi_model_open(xs_backend *be, const char *weights_path, const char *config_path,
                          bool matmul_bf16, mimi_model **out, char *used, size_t used_n) {
    if (!be || !weights_path || !out) return xs_error(XS_ERR_ARG, "mimi_model_open: NULL argument");
    mimi_config cfg;
    char found[4096] = "";
    if (config_path) {
        snprintf(found, sizeof found, "%s", config_path);
    } else {
        char dir[4000];
        snprintf(dir, sizeof dir, "%s", weights_path);
        char *slash = strrchr(dir, '/');
        if (slash) slash[1] = 0;
        else snprintf(dir, sizeof dir, "./");
        char cand[4096];
        snprintf(cand, sizeof cand, "%smimi_config.json", dir);
        FILE *f = fopen(cand, "rb");
        if (f) {
            fclose(f);
            snprintf(found, sizeof found, "%s", cand);
        } else {
            snprintf(cand, sizeof cand, "%sconfig.json", dir);
            if (file_has(cand, "\"seanet\"")) snprintf(found, sizeof found, "%s", cand);
        }
    }
    if (found[0]) XS_TRY(mimi_config_load(found, &cfg));
    else mimi_config_preset(&cfg);
    cfg.matmul_bf16 = matmul_bf16;
    xs_weights *w = NULL;
    XS_TRY(xs_weights_open(weights_path, &w));
    mimi_model *m = NULL;
    xs_status rc = mimi_model_load(be, &cfg, w, &m);
    xs_weights_close(w);
    if (rc != XS_OK) {
        if (!found[0]) xs_error_prefix(rc, "(built-in Mimi preset; give --mimi-config for "
                                           "another size) ");
        return rc;
    }
    if (used) snprintf(used, used_n, "%s", found[0] ? found : "preset");
    *out = m;
    return XS_OK;
}
