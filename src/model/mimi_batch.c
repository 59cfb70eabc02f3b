/*
 * mimi_batch.c — one frame of n Mimi streams as ONE computation.
 *
 * Why: a stream's frame is ~300 small kernels (convs, the 8-layer 512-wide
 * transformer, RVQ). Run per stream, 80 sessions make 24,000 launches per
 * frame and the GPU waits on launches. Here every kernel serves all n
 * streams: the weights are read once and the kernels are n times wider.
 *
 * Layouts (n streams, T columns each at the current rate):
 *  - conv side: [C, n, T] (channels outermost, then stream, then time),
 *    i.e. the streams' [C, T] activations side by side along time;
 *  - transformer side: [T, n, D] (rows t-major), so that the rows of one
 *    time step of every stream are one contiguous block for the
 *    row-batched kv_store / attention ops (one cache per row);
 *  - RVQ: [D, n*Tq] is simply n*Tq rows for its matmuls and argmaxes, so
 *    mimi_rvq_encode / _decode serve the batch unchanged.
 *
 * Streaming convs. A conv with context P and stride s runs on
 *   xin [C, n, L],  L = roundup(P + T, s):  [ctx P | new T | pad]
 * per stream. One valid conv over the whole [C, n*L] gives every stream's
 * outputs at columns i*L/s + t (t < T/s; columns that straddle two streams
 * are computed and dropped), taken with one strided copy; the matmul form
 * gathers only the valid windows. The contexts live in every stream's
 * conv state at the same offset; with the states at a fixed stride in one
 * array (slots), "all contexts" is ONE strided view, so each conv costs the
 * same ~4 copies for n streams as for one.
 * A transposed conv (kernel K, stride S) would spill the last inputs of
 * stream i into stream i+1's outputs, so each stream's inputs are followed
 * by g = ceil((K-S)/S) zero columns; zero inputs add exact zeros, so every
 * kept output has the solo value.
 *
 * Slots. m->batch->slots is f32 [cap, F] (F = conv_state_floats). A batched
 * call with streams s[0..n) first moves s[i]'s conv state into slot i
 * (unless it is there already: the steady state moves nothing), evicting
 * the previous occupant to its home allocation. A stream's conv_state
 * points at wherever its state lives, so plain calls keep working; their
 * recordings are keyed by that pointer and re-record after a move.
 *
 * Exactness: cuda kernels compute each output column / row independently
 * of how many a call has (conv1d picks its warps by the reduction length,
 * matmul rows are M-independent, attention_rows = attention bit for bit),
 * so batched results equal solo ones bit for bit. The cpu matmul takes the
 * sgemm path above 16 rows, where sums may round differently (~1e-7).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/lanes.h"
#include "backend/ops.h"
#include "model/mimi_internal.h"

typedef struct mimi_batch_state mimi_batch_state;
struct mimi_batch_state {
    xs_tensor slots;        /* f32 [cap * F]; slot i at i * F */
    mimi_stream **occ;      /* [cap]: the stream whose state is in slot i, or NULL */
    int cap;
    mimi_scratch enc_sc, dec_sc; /* call scratch (one per kind: fixed buffers per n) */
    xs_graph enc_graph, dec_graph;
    xs_tensor enc_out, dec_out;  /* where the recorded run put codes / pcm */
    void *io;               /* pinned host staging */
    size_t io_cap;
    xs_kv_cache **kv;       /* [num_layers * n]: row i's cache of layer l at l * n + i */
    int kv_cap;
};

/* ---- switch ------------------------------------------------------------- */

static int g_mode = -1;

void mimi_batch_set_mode(int mode) { g_mode = mode < 0 ? -1 : mode != 0; }

bool mimi_batch_enabled(void) {
    static int env = -1; /* read once; a benign race sets the same value */
    if (g_mode >= 0) return g_mode == 1;
    if (env < 0) {
        const char *e = getenv("XSWARM_MIMI_BATCH");
        env = !(e && strcmp(e, "0") == 0);
    }
    return env == 1;
}

/* ---- views ----------------------------------------------------------------- */

static xs_tensor view3(void *p, int64_t d0, int64_t d1, int64_t d2, int64_t s0, int64_t s1,
                       int64_t s2) {
    int64_t sh[3] = {d0, d1, d2};
    xs_tensor v = xs_tensor_make(XS_F32, 3, sh, p);
    v.stride[0] = s0;
    v.stride[1] = s1;
    v.stride[2] = s2;
    return v;
}

static xs_tensor view4(void *p, int64_t d0, int64_t d1, int64_t d2, int64_t d3, int64_t s0,
                       int64_t s1, int64_t s2, int64_t s3) {
    int64_t sh[4] = {d0, d1, d2, d3};
    xs_tensor v = xs_tensor_make(XS_F32, 4, sh, p);
    v.stride[0] = s0;
    v.stride[1] = s1;
    v.stride[2] = s2;
    v.stride[3] = s3;
    return v;
}

/* What the batched layers need: the call's scratch, the streams, and
 * where their conv states are (slot i at state + i * F). */
typedef struct bctx {
    mimi_scratch *sc;
    xs_backend *be;
    mimi_stream *const *s;
    int n;
    float *state;
    int64_t F;
} bctx;

/* Every stream's [rows, cols] state block at `off`, as [rows, n, cols]. */
static xs_tensor slot_view(const bctx *c, int64_t off, int64_t rows, int64_t cols) {
    return view3(c->state + off, rows, c->n, cols, cols, c->F, 1);
}

/* ---- batched streaming convs ------------------------------------------------- */

/* x [cin, n*T] -> *y [cout, n*T/stride] (see the top of the file). */
static xs_status bconv(bctx *c, const mimi_conv *cv, const xs_tensor *x, int64_t T,
                       xs_tensor *y) {
    xs_backend *be = c->be;
    const int64_t n = c->n, P = cv->ctx_len, s = cv->stride, cin = cv->cin;
    const int64_t keff = (int64_t)(cv->k - 1) * cv->dilation + 1;
    if (x->ndim != 2 || x->shape[0] != cin || x->shape[1] != n * T || T % s != 0)
        return xs_error(XS_ERR_SHAPE, "mimi batch conv: input [%lld, %lld], want [%d, %lld] "
                        "with a multiple of stride %d", (long long)x->shape[0],
                        (long long)x->shape[1], cv->cin, (long long)(n * T), cv->stride);
    const int64_t Tq = T / s;
    int64_t L = T;
    xs_tensor xin = *x;
    if (P > 0) {
        L = (P + T + s - 1) / s * s;
        XS_TRY(mimi_tmp(c->sc, cin, n * L, &xin));
        xs_tensor ctx = slot_view(c, cv->state_off, cin, P);
        if (cv->replicate) /* first call of a stream: context = copies of its first column */
            for (int i = 0; i < c->n; i++) {
                if (c->s[i]->downsample_primed) continue;
                xs_tensor first = view3((float *)x->data + i * T, cin, 1, 1, n * T, 1, 1);
                for (int64_t j = 0; j < P; j++) {
                    xs_tensor dst = view3(c->state + i * c->F + cv->state_off + j, cin, 1, 1, P,
                                          1, 1);
                    XS_TRY(xs_op_copy(be, &dst, &first));
                }
            }
        float *xd = xin.data;
        xs_tensor head = view3(xd, cin, n, P, n * L, L, 1);
        xs_tensor body = view3(xd + P, cin, n, T, n * L, L, 1);
        xs_tensor x3 = view3(x->data, cin, n, T, n * T, T, 1);
        XS_TRY(xs_op_copy(be, &head, &ctx));
        XS_TRY(xs_op_copy(be, &body, &x3));
        if (L > P + T) { /* read only by dropped outputs; zeros keep it deterministic */
            xs_tensor pad = view3(xd + P + T, cin, n, L - P - T, n * L, L, 1);
            XS_TRY(xs_op_fill(be, &pad, 0.0f));
        }
    }
    xs_tensor out;
    if (cv->wm.data) {
        /* matmul form: im[i, t, ci, j] = xin[ci, i, t*s + j*dil] for the valid windows only */
        xs_tensor win = view4(xin.data, n, Tq, cin, cv->k, L, s, n * L, cv->dilation), im, im4,
                  yt;
        XS_TRY(mimi_tmp(c->sc, n * Tq, cin * cv->k, &im));
        im4 = view4(im.data, n, Tq, cin, cv->k, Tq * cin * cv->k, cin * cv->k, cv->k, 1);
        XS_TRY(xs_op_copy(be, &im4, &win));
        XS_TRY(mimi_tmp(c->sc, n * Tq, cv->cout, &yt));
        XS_TRY(xs_op_matmul(be, &yt, &im, &cv->wm, cv->b.data ? &cv->b : NULL));
        XS_TRY(mimi_tmp(c->sc, cv->cout, n * Tq, &out));
        xs_tensor ytt = xs_tensor_transpose(&yt, 0, 1);
        XS_TRY(xs_op_copy(be, &out, &ytt));
    } else {
        const int64_t Tfull = (n * L - keff) / s + 1;
        xs_tensor full;
        XS_TRY(mimi_tmp(c->sc, cv->cout, Tfull, &full));
        XS_TRY(xs_op_conv1d(be, &full, &xin, &cv->w, cv->b.data ? &cv->b : NULL, cv->stride,
                            cv->dilation, cv->groups));
        if (Tfull == n * Tq) {
            out = full; /* no straddling outputs (k_eff == stride, no context) */
        } else {
            XS_TRY(mimi_tmp(c->sc, cv->cout, n * Tq, &out));
            xs_tensor valid = view3(full.data, cv->cout, n, Tq, Tfull, L / s, 1);
            xs_tensor out3 = view3(out.data, cv->cout, n, Tq, n * Tq, Tq, 1);
            XS_TRY(xs_op_copy(be, &out3, &valid));
        }
    }
    if (P > 0) { /* the new contexts: the last P columns each stream saw */
        xs_tensor ctx = slot_view(c, cv->state_off, cin, P);
        xs_tensor keep = view3((float *)xin.data + T, cin, n, P, n * L, L, 1);
        XS_TRY(xs_op_copy(be, &ctx, &keep));
    }
    *y = out;
    return XS_OK;
}

/* Matmul form (K = 2S): col[i*T + t, co*K + k]; output block t of stream i
 * is A_t + B_{t-1} with B_{-1} the carried tail (mimi_seanet.c). */
static xs_status bconvtr_matmul(bctx *c, const mimi_convtr *ct, const xs_tensor *x, int64_t T,
                                xs_tensor *y) {
    xs_backend *be = c->be;
    const int64_t n = c->n, S = ct->stride, C = ct->cout, R = C * ct->k;
    xs_tensor xt, col, out, q;
    XS_TRY(mimi_tmp(c->sc, n * T, ct->cin, &xt));
    xs_tensor xtv = xs_tensor_transpose(x, 0, 1);
    XS_TRY(xs_op_copy(be, &xt, &xtv));
    XS_TRY(mimi_tmp(c->sc, n * T, R, &col));
    XS_TRY(xs_op_matmul(be, &col, &xt, &ct->wt, &ct->bias_col));
    float *cd = col.data;
    xs_tensor A = view4(cd, C, n, T, S, 2 * S, T * R, R, 1);
    XS_TRY(mimi_tmp(c->sc, C, n * T * S, &out));
    XS_TRY(mimi_tmp(c->sc, C, n * T * S, &q));
    float *od = out.data, *qd = q.data;
    xs_tensor out4 = view4(od, C, n, T, S, n * T * S, T * S, S, 1);
    xs_tensor tail4 = view4(c->state + ct->state_off, C, n, 1, S, S, c->F, S, 1);
    xs_tensor q0 = view4(qd, C, n, 1, S, n * T * S, T * S, S, 1);
    XS_TRY(xs_op_copy(be, &out4, &A));
    XS_TRY(xs_op_copy(be, &q0, &tail4));
    if (T > 1) {
        xs_tensor qr = view4(qd + S, C, n, T - 1, S, n * T * S, T * S, S, 1);
        xs_tensor br = view4(cd + S, C, n, T - 1, S, 2 * S, T * R, R, 1);
        XS_TRY(xs_op_copy(be, &qr, &br));
    }
    XS_TRY(xs_op_add(be, &out, &out, &q));
    xs_tensor blast = view4(cd + S + (T - 1) * R, C, n, 1, S, 2 * S, T * R, R, 1);
    XS_TRY(xs_op_copy(be, &tail4, &blast));
    *y = out;
    return XS_OK;
}

/* x [cin, n*T] -> *y [cout, n*T*stride]. */
static xs_status bconvtr(bctx *c, const mimi_convtr *ct, const xs_tensor *x, int64_t T,
                         xs_tensor *y) {
    xs_backend *be = c->be;
    const int64_t n = c->n, S = ct->stride, C = ct->cout, P = ct->tail_len, K = ct->k;
    if (x->ndim != 2 || x->shape[0] != ct->cin || x->shape[1] != n * T || T <= 0)
        return xs_error(XS_ERR_SHAPE, "mimi batch convtr: input [%lld, %lld], want [%d, %lld]",
                        (long long)x->shape[0], (long long)x->shape[1], ct->cin,
                        (long long)(n * T));
    if (ct->wt.data) return bconvtr_matmul(c, ct, x, T, y);
    const int64_t g = (P + S - 1) / S, Tg = T + g, Wf = (n * Tg - 1) * S + K;
    xs_tensor xin, full, out;
    XS_TRY(mimi_tmp(c->sc, ct->cin, n * Tg, &xin));
    float *xd = xin.data;
    if (g > 0) {
        xs_tensor gap = view3(xd + T, ct->cin, n, g, n * Tg, Tg, 1);
        XS_TRY(xs_op_fill(be, &gap, 0.0f));
    }
    xs_tensor body = view3(xd, ct->cin, n, T, n * Tg, Tg, 1);
    xs_tensor x3 = view3(x->data, ct->cin, n, T, n * T, T, 1);
    XS_TRY(xs_op_copy(be, &body, &x3));
    XS_TRY(mimi_tmp(c->sc, C, Wf, &full));
    XS_TRY(xs_op_conv_transpose1d(be, &full, &xin, &ct->w, ct->b.data ? &ct->b : NULL, (int)S,
                                  ct->groups));
    float *fd = full.data;
    if (P > 0) {
        /* [n, C, P] order so that the constant -bias [C, P] broadcasts per stream */
        xs_tensor head = view3(fd, n, C, P, Tg * S, Wf, 1);
        xs_tensor tail = view3(c->state + ct->state_off, n, C, P, c->F, P, 1);
        xs_tensor rest = view3(fd + T * S, n, C, P, Tg * S, Wf, 1), tmp, tl;
        XS_TRY(mimi_tmp(c->sc, n * C, P, &tmp));
        XS_TRY(mimi_tmp(c->sc, n * C, P, &tl));
        xs_tensor tmp3 = view3(tmp.data, n, C, P, C * P, P, 1);
        xs_tensor tl3 = view3(tl.data, n, C, P, C * P, P, 1);
        XS_TRY(xs_op_copy(be, &tmp3, &head));
        XS_TRY(xs_op_copy(be, &tl3, &tail));
        XS_TRY(xs_op_add(be, &tmp, &tmp, &tl)); /* overlap-add of the previous tails */
        XS_TRY(xs_op_copy(be, &head, &tmp3));
        XS_TRY(xs_op_copy(be, &tl3, &rest));
        if (ct->neg_bias.data) { /* the new tails without the bias */
            xs_tensor tl2 = xs_tensor_2d(XS_F32, tl.data, n, C * P);
            xs_tensor nb = xs_tensor_1d(XS_F32, ct->neg_bias.data, C * P);
            XS_TRY(xs_op_add(be, &tl2, &tl2, &nb));
        }
        XS_TRY(xs_op_copy(be, &tail, &tl3));
    }
    XS_TRY(mimi_tmp(c->sc, C, n * T * S, &out));
    xs_tensor emit = view3(fd, C, n, T * S, Wf, Tg * S, 1);
    xs_tensor out3 = view3(out.data, C, n, T * S, n * T * S, T * S, 1);
    XS_TRY(xs_op_copy(be, &out3, &emit));
    *y = out;
    return XS_OK;
}

/* ---- SEANet ------------------------------------------------------------------ */

static xs_status bresblock(bctx *c, const mimi_resblock *rb, const xs_tensor *x, int64_t T,
                           xs_tensor *y) {
    xs_backend *be = c->be;
    xs_tensor e, h1, h2, out;
    XS_TRY(mimi_tmp(c->sc, x->shape[0], x->shape[1], &e));
    XS_TRY(xs_op_elu(be, &e, x, 1.0f));
    XS_TRY(bconv(c, &rb->c1, &e, T, &h1));
    XS_TRY(xs_op_elu(be, &h1, &h1, 1.0f));
    XS_TRY(bconv(c, &rb->c2, &h1, T, &h2));
    XS_TRY(mimi_tmp(c->sc, x->shape[0], x->shape[1], &out));
    XS_TRY(xs_op_add(be, &out, x, &h2));
    *y = out;
    return XS_OK;
}

/* pcm [1, n*T] -> [dimension, n*T/hop]; *T_out = T/hop. */
static xs_status bseanet_encode(bctx *c, const mimi_model *m, const xs_tensor *x, int64_t T,
                                xs_tensor *y) {
    const mimi_config *cf = &m->cfg;
    xs_tensor h, r;
    XS_TRY(bconv(c, &m->enc.first, x, T, &h));
    for (int i = 0; i < cf->n_ratios; i++) {
        for (int j = 0; j < cf->n_residual_layers; j++) {
            XS_TRY(bresblock(c, &m->enc.res[i][j], &h, T, &r));
            h = r;
        }
        XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
        XS_TRY(bconv(c, &m->enc.down[i], &h, T, &r));
        T /= m->enc.down[i].stride;
        h = r;
    }
    XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
    return bconv(c, &m->enc.last, &h, T, y);
}

/* [dimension, n*T] -> [1, n*T*hop]. */
static xs_status bseanet_decode(bctx *c, const mimi_model *m, const xs_tensor *x, int64_t T,
                                xs_tensor *y) {
    const mimi_config *cf = &m->cfg;
    xs_tensor h, r;
    XS_TRY(bconv(c, &m->dec.first, x, T, &h));
    for (int i = 0; i < cf->n_ratios; i++) {
        XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
        XS_TRY(bconvtr(c, &m->dec.up[i], &h, T, &r));
        T *= m->dec.up[i].stride;
        h = r;
        for (int j = 0; j < cf->n_residual_layers; j++) {
            XS_TRY(bresblock(c, &m->dec.res[i][j], &h, T, &r));
            h = r;
        }
    }
    XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
    return bconv(c, &m->dec.last, &h, T, y);
}

/* ---- transformer ------------------------------------------------------------- */

/* One layer over res [T*n, D] (row t*n + i = stream i, step t); kv: the n
 * streams' caches of this layer; pos i32 [T*n]. */
static xs_status blayer(bctx *c, const mimi_config *cf, const mimi_tlayer *ly,
                        xs_kv_cache *const *kv, const xs_tensor *pos, int64_t T, xs_tensor *x) {
    xs_backend *be = c->be;
    const int n = c->n;
    const int64_t R = x->shape[0], D = cf->d_model, F = cf->dim_feedforward;
    const int H = cf->num_heads;
    const int64_t hd = D / H, chunk = mimi_downsample_stride(cf);
    xs_tensor h, q, k, v, att, o, f;
    XS_TRY(mimi_tmp(c->sc, R, D, &h));
    XS_TRY(mimi_tmp(c->sc, R, D, &q));
    XS_TRY(mimi_tmp(c->sc, R, D, &k));
    XS_TRY(mimi_tmp(c->sc, R, D, &v));
    XS_TRY(mimi_tmp(c->sc, R, D, &att));
    XS_TRY(mimi_tmp(c->sc, R, D, &o));
    XS_TRY(mimi_tmp(c->sc, R, F, &f));
    XS_TRY(xs_op_layer_norm(be, &h, x, &ly->norm1_w, &ly->norm1_b, 1e-5f));
    XS_TRY(xs_op_matmul(be, &q, &h, &ly->wq, NULL));
    XS_TRY(xs_op_matmul(be, &k, &h, &ly->wk, NULL));
    XS_TRY(xs_op_matmul(be, &v, &h, &ly->wv, NULL));
    int64_t heads[3] = {R, H, hd};
    xs_tensor q3, k3;
    XS_TRY(xs_tensor_reshape(&q, 3, heads, &q3));
    XS_TRY(xs_tensor_reshape(&k, 3, heads, &k3));
    XS_TRY(xs_op_rope(be, &q3, pos, cf->max_period));
    XS_TRY(xs_op_rope(be, &k3, pos, cf->max_period));
    const float scale = 1.0f / sqrtf((float)hd);
    /* Kyutai's ring order (mimi_transformer.c, invariant 2): a chunk's keys
     * are all stored before its queries attend. Each call below has one
     * row per stream, so every row has its own cache. */
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t t1 = t0 + chunk < T ? t0 + chunk : T;
        for (int64_t t = t0; t < t1; t++) {
            xs_tensor kt = xs_tensor_slice(&k, 0, t * n, n), vt = xs_tensor_slice(&v, 0, t * n, n);
            xs_tensor pt = xs_tensor_slice(pos, 0, t * n, n);
            XS_TRY(xs_op_kv_store_rows(be, kv, n, &kt, &vt, &pt));
        }
        for (int64_t t = t0; t < t1; t++) {
            xs_tensor qt = xs_tensor_slice(&q, 0, t * n, n);
            xs_tensor at = xs_tensor_slice(&att, 0, t * n, n);
            xs_tensor pt = xs_tensor_slice(pos, 0, t * n, n);
            XS_TRY(xs_op_attention_rows(be, &at, &qt, (const xs_kv_cache *const *)kv, n, &pt, H,
                                        cf->context, scale));
        }
    }
    XS_TRY(xs_op_matmul(be, &o, &att, &ly->wo, NULL));
    XS_TRY(xs_op_mul(be, &o, &o, &ly->ls1));
    XS_TRY(xs_op_add(be, x, x, &o));
    XS_TRY(xs_op_layer_norm(be, &h, x, &ly->norm2_w, &ly->norm2_b, 1e-5f));
    XS_TRY(xs_op_matmul(be, &f, &h, &ly->lin1, NULL));
    XS_TRY(xs_op_gelu(be, &f, &f));
    XS_TRY(xs_op_matmul(be, &o, &f, &ly->lin2, NULL));
    XS_TRY(xs_op_mul(be, &o, &o, &ly->ls2));
    return xs_op_add(be, x, x, &o);
}

/* x [D, n*T] (conv layout) -> *y [D, n*T]; layer l's caches of the n
 * streams at kv + l * kv_stride. */
static xs_status btransformer(bctx *c, const mimi_model *m, const mimi_transformer *tr,
                              xs_kv_cache *const *kv, int kv_stride, const xs_tensor *pos,
                              const xs_tensor *x, int64_t T, xs_tensor *y) {
    const int n = c->n;
    const int64_t D = m->cfg.d_model;
    if (x->shape[0] != D || x->shape[1] != n * T)
        return xs_error(XS_ERR_SHAPE, "mimi batch transformer: input [%lld, %lld], want [%lld, "
                        "%lld]", (long long)x->shape[0], (long long)x->shape[1], (long long)D,
                        (long long)(n * T));
    xs_tensor res, out;
    XS_TRY(mimi_tmp(c->sc, T * n, D, &res));
    xs_tensor r3 = view3(res.data, T, n, D, n * D, D, 1);
    xs_tensor xv = view3(x->data, T, n, D, 1, T, n * T);
    XS_TRY(xs_op_copy(c->be, &r3, &xv));
    for (int l = 0; l < tr->n_layers; l++)
        XS_TRY(blayer(c, &m->cfg, &tr->layers[l], kv + (size_t)l * kv_stride, pos, T, &res));
    XS_TRY(mimi_tmp(c->sc, D, n * T, &out));
    xs_tensor o3 = view3(out.data, D, n, T, n * T, T, 1);
    xs_tensor rv = view3(res.data, D, n, T, 1, D, n * D);
    XS_TRY(xs_op_copy(c->be, &o3, &rv));
    *y = out;
    return XS_OK;
}

/* ---- slots ------------------------------------------------------------------- */

static xs_tensor slot_of(const mimi_batch_state *b, int64_t F, int i) {
    return xs_tensor_1d(XS_F32, (float *)b->slots.data + (int64_t)i * F, F);
}

/* Slot i's stream goes home (its state copied back). */
static xs_status evict(mimi_model *m, mimi_batch_state *b, int i) {
    mimi_stream *s = b->occ[i];
    b->occ[i] = NULL;
    if (!s) return XS_OK;
    xs_tensor src = slot_of(b, m->conv_state_floats, i);
    s->conv_state = s->conv_home;
    s->batch_slot = -1;
    return xs_op_copy(m->be, &s->conv_home, &src);
}

/* Put s[i]'s conv state into slot i, for every i. */
static xs_status place(mimi_model *m, mimi_batch_state *b, mimi_stream *const *s, int n) {
    const int64_t F = m->conv_state_floats;
    if (F <= 0) return XS_OK;
    if (n > b->cap) {
        for (int i = 0; i < b->cap; i++) XS_TRY(evict(m, b, i));
        xs_tensor_free(m->be, &b->slots);
        memset(&b->slots, 0, sizeof b->slots);
        free(b->occ);
        b->occ = NULL;
        b->cap = 0;
        int cap = (n + 7) / 8 * 8;
        int64_t total = (int64_t)cap * F;
        b->occ = calloc((size_t)cap, sizeof *b->occ);
        if (!b->occ) return xs_error(XS_ERR_NOMEM, "mimi batch: out of memory");
        XS_TRY(xs_tensor_alloc(m->be, XS_F32, 1, &total, &b->slots));
        b->cap = cap;
        /* recordings pointed at the old slots */
        xs_graph_free(m->be, &b->enc_graph);
        xs_graph_free(m->be, &b->dec_graph);
    }
    for (int i = 0; i < n; i++) {
        mimi_stream *st = s[i];
        if (st->batch_slot == i) continue;
        if (b->occ[i]) XS_TRY(evict(m, b, i));
        xs_tensor dst = slot_of(b, F, i);
        if (st->batch_slot >= 0) {
            xs_tensor src = slot_of(b, F, st->batch_slot);
            b->occ[st->batch_slot] = NULL;
            XS_TRY(xs_op_copy(m->be, &dst, &src));
        } else {
            XS_TRY(xs_op_copy(m->be, &dst, &st->conv_home));
        }
        st->conv_state = dst;
        st->batch_slot = i;
        b->occ[i] = st;
    }
    return XS_OK;
}

void mimi_batch_forget(mimi_stream *s) {
    if (!s || !s->m || !s->m->batch) return;
    mimi_batch_state *b = s->m->batch;
    if (s->batch_slot >= 0 && s->batch_slot < b->cap && b->occ[s->batch_slot] == s)
        b->occ[s->batch_slot] = NULL;
    s->batch_slot = -1;
    s->conv_state = s->conv_home;
    /* the recordings may hold this stream's caches */
    xs_graph_free(s->m->be, &b->enc_graph);
    xs_graph_free(s->m->be, &b->dec_graph);
}

void mimi_batch_state_free(mimi_model *m) {
    mimi_batch_state *b = m ? m->batch : NULL;
    if (!b) return;
    for (int i = 0; i < b->cap; i++) /* streams still alive go home (no copy: model is going) */
        if (b->occ[i]) {
            b->occ[i]->conv_state = b->occ[i]->conv_home;
            b->occ[i]->batch_slot = -1;
        }
    xs_graph_free(m->be, &b->enc_graph);
    xs_graph_free(m->be, &b->dec_graph);
    mimi_scratch_free(&b->enc_sc);
    mimi_scratch_free(&b->dec_sc);
    xs_tensor_free(m->be, &b->slots);
    xs_backend_host_free(m->be, b->io);
    free(b->occ);
    free(b->kv);
    free(b);
    m->batch = NULL;
}

void mimi_batch_graph_stats(const mimi_model *m, int64_t *captures, int64_t *launches) {
    const mimi_batch_state *b = m ? m->batch : NULL;
    *captures = b ? b->enc_graph.captures + b->dec_graph.captures : 0;
    *launches = b ? b->enc_graph.launches + b->dec_graph.launches : 0;
}

static xs_status batch_state(mimi_model *m, mimi_batch_state **out) {
    if (!m->batch) {
        mimi_batch_state *b = calloc(1, sizeof *b);
        if (!b) return xs_error(XS_ERR_NOMEM, "mimi batch: out of memory");
        b->enc_sc.be = b->dec_sc.be = m->be;
        m->batch = b;
    }
    *out = m->batch;
    return XS_OK;
}

/* ---- calls ------------------------------------------------------------------- */

bool mimi_batch_usable(mimi_stream *const *s, int n) {
    if (!s || n < 1 || !s[0]) return false;
    for (int i = 0; i < n; i++) {
        if (!s[i] || s[i]->m != s[0]->m || s[i]->taps || s[i]->enc_call.pending ||
            s[i]->dec_call.pending)
            return false;
        for (int j = 0; j < i; j++)
            if (s[j] == s[i]) return false;
    }
    return true;
}

static xs_status check_args(mimi_stream *const *s, int n, int n_codebooks, const char *what) {
    if (!s || n < 1) return xs_error(XS_ERR_ARG, "%s: %d streams", what, n);
    if (!mimi_batch_usable(s, n))
        return xs_error(XS_ERR_ARG, "%s: the streams must be distinct, of one model, without "
                        "taps and without a begun call", what);
    const mimi_config *c = &s[0]->m->cfg;
    if (n_codebooks < 1 || n_codebooks > c->n_q)
        return xs_error(XS_ERR_ARG, "%s: %d codebooks (1..%d)", what, n_codebooks, c->n_q);
    return XS_OK;
}

/* ---- groups -----------------------------------------------------------------
 * The call scratch grows with the streams of one computation (~17 MB per
 * stream for Moshi's Mimi, encode + decode). Above `group max` streams
 * (XSWARM_MIMI_BATCH_MAX, default 64) a call runs as several equal groups,
 * one after another on the same scratch, all in one recording: at 80
 * sessions two groups of 40 (~600 launches instead of ~300, ~0.7 GB of
 * scratch instead of 1.4 GB, next to 80 x 0.87 GB of LM caches). Every
 * staged array is group-major, so each group's inputs and outputs are
 * contiguous. */
static int g_group_max = 0;

void mimi_batch_set_group_max(int n) { g_group_max = n > 0 ? n : 0; }

static int group_max(void) {
    static int env = 0; /* read once; a benign race sets the same value */
    if (g_group_max > 0) return g_group_max;
    if (env == 0) {
        const char *e = getenv("XSWARM_MIMI_BATCH_MAX");
        int v = e ? atoi(e) : 0;
        env = v > 0 ? v : 64;
    }
    return env;
}

/* Group g of n streams in ng groups: first stream *g0, *cnt streams. */
static void group_of(int n, int ng, int g, int *g0, int *cnt) {
    const int base = n / ng, extra = n % ng;
    *g0 = g * base + (g < extra ? g : extra);
    *cnt = base + (g < extra);
}

/* The piece a recording replays: ops only, fixed arguments for a given key. */
typedef struct bjob {
    const mimi_model *m;
    mimi_scratch *sc;
    xs_backend *be;
    mimi_stream *const *s;
    int n, ng;                /* streams, groups */
    float *state;             /* slot 0's conv state */
    int n0, n_codebooks;
    xs_tensor in, pos, out;   /* staged input and positions (group-major); output */
    int64_t T;                /* transformer steps per stream */
    xs_kv_cache *const *kv;   /* [L * n]: layer l of stream i at l * n + i */
} bjob;

/* The context of group g, and its first stream. */
static bctx group_ctx(const bjob *j, int g, int *g0) {
    int cnt;
    group_of(j->n, j->ng, g, g0, &cnt);
    const int64_t F = j->m->conv_state_floats;
    bctx c = {.sc = j->sc, .be = j->be, .s = j->s + *g0, .n = cnt,
              .state = j->state ? j->state + (int64_t)*g0 * F : NULL, .F = F};
    return c;
}

static xs_status encode_device(void *p) {
    bjob *j = p;
    const mimi_model *m = j->m;
    const int64_t fs = mimi_frame_samples(&m->cfg), T = j->T;
    const int64_t Tq = T / mimi_downsample_stride(&m->cfg), N = j->n_codebooks;
    j->sc->n = j->n0;
    xs_tensor all = {0};
    if (j->ng > 1) XS_TRY(mimi_tmp_dtype(j->sc, XS_I32, N * Tq, j->n, &all));
    const int mark = j->sc->n;
    for (int g = 0; g < j->ng; g++) {
        int g0;
        bctx c = group_ctx(j, g, &g0);
        j->sc->n = mark;
        xs_tensor in = xs_tensor_2d(XS_F32, (float *)j->in.data + g0 * fs, 1, c.n * fs);
        xs_tensor pos = xs_tensor_1d(XS_I32, (int32_t *)j->pos.data + g0 * T, c.n * T);
        xs_tensor lat, tr, down, codes;
        XS_TRY(bseanet_encode(&c, m, &in, fs, &lat));
        XS_TRY(btransformer(&c, m, &m->enc_tr, j->kv + g0, j->n, &pos, &lat, T, &tr));
        XS_TRY(bconv(&c, &m->downsample, &tr, T, &down));
        XS_TRY(mimi_rvq_encode(j->sc, c.s[0], &down, j->n_codebooks, &codes));
        if (j->ng == 1) {
            j->out = codes;
        } else { /* group-major: group g's [N, cnt*Tq] block */
            xs_tensor src = xs_tensor_1d(XS_I32, codes.data, N * c.n * Tq);
            xs_tensor dst = xs_tensor_1d(XS_I32, (int32_t *)all.data + N * g0 * Tq, N * c.n * Tq);
            XS_TRY(xs_op_copy(j->be, &dst, &src));
        }
    }
    if (j->ng > 1) j->out = all;
    return XS_OK;
}

static xs_status decode_device(void *p) {
    bjob *j = p;
    const mimi_model *m = j->m;
    const int64_t fs = mimi_frame_samples(&m->cfg), T = j->T, N = j->n_codebooks, Tq = 1;
    j->sc->n = j->n0;
    xs_tensor all = {0};
    if (j->ng > 1) XS_TRY(mimi_tmp(j->sc, 1, j->n * fs, &all));
    const int mark = j->sc->n;
    for (int g = 0; g < j->ng; g++) {
        int g0;
        bctx c = group_ctx(j, g, &g0);
        j->sc->n = mark;
        xs_tensor codes = xs_tensor_2d(XS_I32, (int32_t *)j->in.data + N * g0 * Tq, N, c.n * Tq);
        xs_tensor pos = xs_tensor_1d(XS_I32, (int32_t *)j->pos.data + g0 * T, c.n * T);
        xs_tensor lat, up, tr, pcm;
        XS_TRY(mimi_rvq_decode(j->sc, c.s[0], &codes, j->n_codebooks, &lat));
        XS_TRY(bconvtr(&c, &m->upsample, &lat, Tq, &up));
        XS_TRY(btransformer(&c, m, &m->dec_tr, j->kv + g0, j->n, &pos, &up, T, &tr));
        XS_TRY(bseanet_decode(&c, m, &tr, T, &pcm));
        if (j->ng == 1) {
            j->out = pcm;
        } else {
            xs_tensor src = xs_tensor_1d(XS_F32, pcm.data, c.n * fs);
            xs_tensor dst = xs_tensor_1d(XS_F32, (float *)all.data + g0 * fs, c.n * fs);
            XS_TRY(xs_op_copy(j->be, &dst, &src));
        }
    }
    if (j->ng > 1) j->out = all;
    return XS_OK;
}

static uint64_t bjob_key(const bjob *j, bool encode) {
    const mimi_scratch *sc = j->sc;
    uint64_t k = xs_graph_key_add(XS_GRAPH_KEY0, encode ? 1u : 2u);
    k = xs_graph_key_add(k, (uint64_t)j->n);
    k = xs_graph_key_add(k, (uint64_t)j->ng);
    k = xs_graph_key_add(k, (uint64_t)j->n_codebooks);
    k = xs_graph_key_add(k, (uint64_t)(uintptr_t)j->state);
    for (int i = 0; i < j->n; i++) { /* the ordered streams: their caches are in it */
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)j->s[i]);
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)j->s[i]->kv_block.data);
    }
    for (int i = 0; i < MIMI_SCRATCH_MAX; i++) {
        if (!sc->cap[i]) continue;
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)sc->slot[i].data);
        k = xs_graph_key_add(k, (uint64_t)sc->cap[i]);
    }
    return k;
}

static xs_status io_reserve(mimi_batch_state *b, xs_backend *be, size_t need) {
    if (b->io_cap >= need) return XS_OK;
    xs_backend_host_free(be, b->io);
    b->io_cap = 0;
    b->io = xs_backend_host_alloc(be, need);
    if (!b->io) return xs_error(XS_ERR_NOMEM, "mimi batch: %zu bytes of host staging", need);
    b->io_cap = need;
    return XS_OK;
}

/* Per-row caches of every layer: kv[l * n + i] = stream i's layer l. */
static xs_status kv_rows(mimi_batch_state *b, mimi_stream *const *s, int n, int L, bool enc) {
    if (b->kv_cap < L * n) {
        free(b->kv);
        b->kv_cap = 0;
        b->kv = malloc((size_t)(L * n > 0 ? L * n : 1) * sizeof *b->kv);
        if (!b->kv) return xs_error(XS_ERR_NOMEM, "mimi batch: out of memory");
        b->kv_cap = L * n;
    }
    for (int l = 0; l < L; l++)
        for (int i = 0; i < n; i++) b->kv[(size_t)l * n + i] = enc ? &s[i]->enc_kv[l]
                                                                    : &s[i]->dec_kv[l];
    return XS_OK;
}

/* Common start of a call: lane 0 after every lane's work, the states in
 * their slots, the staging buffer, the per-row caches. */
static xs_status call_begin(mimi_stream *const *s, int n, bool enc, size_t io_bytes,
                            mimi_batch_state **bo, int *prev_lane) {
    mimi_model *m = s[0]->m;
    xs_backend *be = m->be;
    mimi_batch_state *b = NULL;
    XS_TRY(batch_state(m, &b));
    *prev_lane = xs_backend_current_lane(be);
    /* plain calls of these streams may have run on Mimi lanes */
    XS_TRY(xs_backend_join_lanes(be));
    XS_TRY(xs_backend_set_lane(be, 0));
    XS_TRY(place(m, b, s, n));
    XS_TRY(io_reserve(b, be, io_bytes));
    XS_TRY(kv_rows(b, s, n, m->cfg.num_layers, enc));
    *bo = b;
    return XS_OK;
}

/* Positions, group-major: group g's [T, cnt] block (row t*cnt + i) at g0*T. */
static void stage_positions(int32_t *hp, mimi_stream *const *s, int n, int ng, int64_t T,
                            bool enc) {
    for (int g = 0; g < ng; g++) {
        int g0, cnt;
        group_of(n, ng, g, &g0, &cnt);
        for (int64_t t = 0; t < T; t++)
            for (int i = 0; i < cnt; i++) {
                const mimi_stream *st = s[g0 + i];
                hp[g0 * T + t * cnt + i] = (int32_t)((enc ? st->enc_pos : st->dec_pos) + t);
            }
    }
}

static int groups_for(int n) {
    const int G = group_max();
    return (n + G - 1) / G;
}

static xs_status encode_run(mimi_batch_state *b, mimi_stream *const *s, int n,
                            const float *const *pcm, int n_codebooks, int32_t *const *codes) {
    mimi_model *m = s[0]->m;
    xs_backend *be = m->be;
    const mimi_config *cf = &m->cfg;
    const int64_t fs = mimi_frame_samples(cf), T = fs / mimi_hop(cf);
    const int64_t Tq = T / mimi_downsample_stride(cf), N = n_codebooks;
    float *io_pcm = b->io;
    int32_t *io_pos = (int32_t *)(io_pcm + n * fs), *io_codes = io_pos + n * T;
    mimi_scratch *sc = &b->enc_sc;
    bjob j = {.m = m, .sc = sc, .be = be, .s = s, .n = n, .ng = groups_for(n),
              .state = b->slots.data, .n_codebooks = n_codebooks, .T = T, .kv = b->kv};
    for (int i = 0; i < n; i++) memcpy(io_pcm + i * fs, pcm[i], (size_t)fs * sizeof *io_pcm);
    stage_positions(io_pos, s, n, j.ng, T, true);
    sc->n = 0;
    XS_TRY(mimi_tmp(sc, 1, n * fs, &j.in));
    XS_TRY(xs_tensor_upload(be, &j.in, io_pcm));
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, T * n, 1, &j.pos));
    j.pos = xs_tensor_1d(XS_I32, j.pos.data, T * n);
    XS_TRY(xs_tensor_upload(be, &j.pos, io_pos));
    j.n0 = sc->n;
    bool primed = true;
    for (int i = 0; i < n; i++) primed = primed && s[i]->downsample_primed;
    /* the first frame of a stream primes its replicate padding: other ops */
    if (primed && xs_graph_available(be))
        XS_TRY(xs_graph_run(be, &b->enc_graph, bjob_key(&j, true), encode_device, &j));
    else
        XS_TRY(encode_device(&j));
    /* a replay does not run the piece: the codes are where the recorded run put them */
    if (j.out.data) b->enc_out = j.out;
    else j.out = b->enc_out;
    if (!xs_tensor_is_contiguous(&j.out) || xs_tensor_numel(&j.out) != N * n * Tq)
        return xs_error(XS_ERR_INTERNAL, "mimi batch: codes are not [%d, %lld]", n_codebooks,
                        (long long)(n * Tq));
    XS_TRY(xs_backend_download_async(be, io_codes, j.out.data, xs_tensor_nbytes(&j.out)));
    XS_TRY(xs_backend_synchronize(be));
    /* group-major [N, cnt*Tq] blocks -> stream i's [Tq][N] */
    for (int g = 0; g < j.ng; g++) {
        int g0, cnt;
        group_of(n, j.ng, g, &g0, &cnt);
        const int32_t *blk = io_codes + N * g0 * Tq;
        for (int i = 0; i < cnt; i++)
            for (int64_t t = 0; t < Tq; t++)
                for (int64_t k = 0; k < N; k++)
                    codes[g0 + i][t * N + k] = blk[k * cnt * Tq + i * Tq + t];
    }
    for (int i = 0; i < n; i++) {
        s[i]->enc_pos += T;
        s[i]->enc_frames++;
        s[i]->downsample_primed = true;
    }
    return XS_OK;
}

xs_status mimi_encode_batch(mimi_stream *const *s, int n, const float *const *pcm,
                            int n_codebooks, int32_t *const *codes) {
    XS_TRY(check_args(s, n, n_codebooks, "mimi_encode_batch"));
    if (!pcm || !codes) return xs_error(XS_ERR_ARG, "mimi_encode_batch: NULL argument");
    for (int i = 0; i < n; i++)
        if (!pcm[i] || !codes[i])
            return xs_error(XS_ERR_ARG, "mimi_encode_batch: stream %d: NULL pcm or codes", i);
    const mimi_config *cf = &s[0]->m->cfg;
    const int64_t fs = mimi_frame_samples(cf), T = fs / mimi_hop(cf);
    const int64_t Tq = T / mimi_downsample_stride(cf);
    size_t io = (size_t)n * (size_t)(fs + T + Tq * n_codebooks) * 4;
    mimi_batch_state *b = NULL;
    int prev = 0;
    xs_status rc = call_begin(s, n, true, io, &b, &prev);
    if (rc == XS_OK) rc = encode_run(b, s, n, pcm, n_codebooks, codes);
    if (b) mimi_scratch_release(&b->enc_sc);
    xs_status r0 = xs_backend_set_lane(s[0]->m->be, prev);
    return rc != XS_OK ? rc : r0;
}

static xs_status decode_run(mimi_batch_state *b, mimi_stream *const *s, int n,
                            const int32_t *const *codes, int n_codebooks, float *const *pcm) {
    mimi_model *m = s[0]->m;
    xs_backend *be = m->be;
    const mimi_config *cf = &m->cfg;
    const int64_t fs = mimi_frame_samples(cf), T = mimi_downsample_stride(cf), N = n_codebooks;
    int32_t *io_codes = b->io, *io_pos = io_codes + N * n;
    float *io_pcm = (float *)(io_pos + n * T);
    mimi_scratch *sc = &b->dec_sc;
    bjob j = {.m = m, .sc = sc, .be = be, .s = s, .n = n, .ng = groups_for(n),
              .state = b->slots.data, .n_codebooks = n_codebooks, .T = T, .kv = b->kv};
    /* group-major: group g's codes [N, cnt] at N * g0 */
    for (int g = 0; g < j.ng; g++) {
        int g0, cnt;
        group_of(n, j.ng, g, &g0, &cnt);
        for (int i = 0; i < cnt; i++)
            for (int64_t k = 0; k < N; k++) io_codes[N * g0 + k * cnt + i] = codes[g0 + i][k];
    }
    stage_positions(io_pos, s, n, j.ng, T, false);
    sc->n = 0;
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, N, n, &j.in));
    XS_TRY(xs_tensor_upload(be, &j.in, io_codes));
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, T * n, 1, &j.pos));
    j.pos = xs_tensor_1d(XS_I32, j.pos.data, T * n);
    XS_TRY(xs_tensor_upload(be, &j.pos, io_pos));
    j.n0 = sc->n;
    if (xs_graph_available(be))
        XS_TRY(xs_graph_run(be, &b->dec_graph, bjob_key(&j, false), decode_device, &j));
    else
        XS_TRY(decode_device(&j));
    if (j.out.data) b->dec_out = j.out;
    else j.out = b->dec_out;
    if (!xs_tensor_is_contiguous(&j.out) || xs_tensor_numel(&j.out) != n * fs)
        return xs_error(XS_ERR_INTERNAL, "mimi batch: decoder output is not %lld samples",
                        (long long)(n * fs));
    XS_TRY(xs_backend_download_async(be, io_pcm, j.out.data, xs_tensor_nbytes(&j.out)));
    XS_TRY(xs_backend_synchronize(be));
    for (int i = 0; i < n; i++) memcpy(pcm[i], io_pcm + i * fs, (size_t)fs * sizeof *io_pcm);
    for (int i = 0; i < n; i++) {
        s[i]->dec_pos += T;
        s[i]->dec_frames++;
    }
    return XS_OK;
}

xs_status mimi_decode_batch(mimi_stream *const *s, int n, const int32_t *const *codes,
                            int n_codebooks, float *const *pcm) {
    XS_TRY(check_args(s, n, n_codebooks, "mimi_decode_batch"));
    if (!pcm || !codes) return xs_error(XS_ERR_ARG, "mimi_decode_batch: NULL argument");
    const mimi_config *cf = &s[0]->m->cfg;
    for (int i = 0; i < n; i++) {
        if (!pcm[i] || !codes[i])
            return xs_error(XS_ERR_ARG, "mimi_decode_batch: stream %d: NULL pcm or codes", i);
        for (int k = 0; k < n_codebooks; k++)
            if (codes[i][k] < 0 || codes[i][k] >= cf->bins)
                return xs_error(XS_ERR_ARG, "mimi_decode_batch: stream %d: code %d of codebook "
                                "%d is outside 0..%d", i, codes[i][k], k, cf->bins - 1);
    }
    const int64_t fs = mimi_frame_samples(cf), T = mimi_downsample_stride(cf);
    size_t io = (size_t)n * (size_t)(n_codebooks + T + fs) * 4;
    mimi_batch_state *b = NULL;
    int prev = 0;
    xs_status rc = call_begin(s, n, false, io, &b, &prev);
    if (rc == XS_OK) rc = decode_run(b, s, n, codes, n_codebooks, pcm);
    if (b) mimi_scratch_release(&b->dec_sc);
    xs_status r0 = xs_backend_set_lane(s[0]->m->be, prev);
    return rc != XS_OK ? rc : r0;
}
