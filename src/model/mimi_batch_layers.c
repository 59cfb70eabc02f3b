/*
 * mimi_batch_layers.c — the layers of a batched Mimi frame (mimi_batch.c):
 * streaming convs, SEANet and the transformer over n streams at once, in
 * the layouts described at the top of mimi_batch.c ([C, n, T] on the conv
 * side, [T, n, D] rows on the transformer side).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/mimi_internal.h"

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

/* Every stream's [rows, cols] state block at `off`, as [rows, n, cols]. */
static xs_tensor slot_view(const mimi_bctx *c, int64_t off, int64_t rows, int64_t cols) {
    return view3(c->state + off, rows, c->n, cols, cols, c->F, 1);
}

/* ---- batched streaming convs ------------------------------------------------- */

/* x [cin, n*T] -> *y [cout, n*T/stride] (see the top of mimi_batch.c). */
xs_status mimi_bconv(mimi_bctx *c, const mimi_conv *cv, const xs_tensor *x, int64_t T,
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
static xs_status bconvtr_matmul(mimi_bctx *c, const mimi_convtr *ct, const xs_tensor *x, int64_t T,
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
xs_status mimi_bconvtr(mimi_bctx *c, const mimi_convtr *ct, const xs_tensor *x, int64_t T,
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

static xs_status bresblock(mimi_bctx *c, const mimi_resblock *rb, const xs_tensor *x, int64_t T,
                           xs_tensor *y) {
    xs_backend *be = c->be;
    xs_tensor e, h1, h2, out;
    XS_TRY(mimi_tmp(c->sc, x->shape[0], x->shape[1], &e));
    XS_TRY(xs_op_elu(be, &e, x, 1.0f));
    XS_TRY(mimi_bconv(c, &rb->c1, &e, T, &h1));
    XS_TRY(xs_op_elu(be, &h1, &h1, 1.0f));
    XS_TRY(mimi_bconv(c, &rb->c2, &h1, T, &h2));
    XS_TRY(mimi_tmp(c->sc, x->shape[0], x->shape[1], &out));
    XS_TRY(xs_op_add(be, &out, x, &h2));
    *y = out;
    return XS_OK;
}

/* pcm [1, n*T] -> [dimension, n*T/hop]. */
xs_status mimi_bseanet_encode(mimi_bctx *c, const mimi_model *m, const xs_tensor *x, int64_t T,
                              xs_tensor *y) {
    const mimi_config *cf = &m->cfg;
    xs_tensor h, r;
    XS_TRY(mimi_bconv(c, &m->enc.first, x, T, &h));
    for (int i = 0; i < cf->n_ratios; i++) {
        for (int j = 0; j < cf->n_residual_layers; j++) {
            XS_TRY(bresblock(c, &m->enc.res[i][j], &h, T, &r));
            h = r;
        }
        XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
        XS_TRY(mimi_bconv(c, &m->enc.down[i], &h, T, &r));
        T /= m->enc.down[i].stride;
        h = r;
    }
    XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
    return mimi_bconv(c, &m->enc.last, &h, T, y);
}

/* [dimension, n*T] -> [1, n*T*hop]. */
xs_status mimi_bseanet_decode(mimi_bctx *c, const mimi_model *m, const xs_tensor *x, int64_t T,
                              xs_tensor *y) {
    const mimi_config *cf = &m->cfg;
    xs_tensor h, r;
    XS_TRY(mimi_bconv(c, &m->dec.first, x, T, &h));
    for (int i = 0; i < cf->n_ratios; i++) {
        XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
        XS_TRY(mimi_bconvtr(c, &m->dec.up[i], &h, T, &r));
        T *= m->dec.up[i].stride;
        h = r;
        for (int j = 0; j < cf->n_residual_layers; j++) {
            XS_TRY(bresblock(c, &m->dec.res[i][j], &h, T, &r));
            h = r;
        }
    }
    XS_TRY(xs_op_elu(c->be, &h, &h, 1.0f));
    return mimi_bconv(c, &m->dec.last, &h, T, y);
}

/* ---- transformer ------------------------------------------------------------- */

/* One layer over res [T*n, D] (row t*n + i = stream i, step t); kv: the n
 * streams' caches of this layer; pos i32 [T*n]; h: as layer_run's in
 * mimi_transformer.c (in: LN1(x) when h_ready; out: next's LN1(x)). */
static xs_status blayer(mimi_bctx *c, const mimi_config *cf, const mimi_tlayer *ly,
                        const mimi_tlayer *next, xs_kv_cache *const *kv, const xs_tensor *pos,
                        int64_t T, xs_tensor *x, xs_tensor *h, bool h_ready) {
    xs_backend *be = c->be;
    const int n = c->n;
    const int64_t chunk = mimi_downsample_stride(cf);
    mimi_layer_io io;
    XS_TRY(mimi_layer_qkv(c->sc, cf, ly, pos, x, h_ready ? h : NULL, &io));
    const float scale = 1.0f / sqrtf((float)(cf->d_model / cf->num_heads));
    /* Kyutai's ring order (mimi_transformer.c, invariant 2): a chunk's keys
     * are all stored before its queries attend. Each call below has one
     * row per stream, so every row has its own cache. */
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        const int64_t t1 = t0 + chunk < T ? t0 + chunk : T;
        for (int64_t t = t0; t < t1; t++) {
            xs_tensor kt = xs_tensor_slice(&io.k, 0, t * n, n);
            xs_tensor vt = xs_tensor_slice(&io.v, 0, t * n, n);
            xs_tensor pt = xs_tensor_slice(pos, 0, t * n, n);
            XS_TRY(xs_op_kv_store_rows(be, kv, n, &kt, &vt, &pt));
        }
        for (int64_t t = t0; t < t1; t++) {
            xs_tensor qt = xs_tensor_slice(&io.q, 0, t * n, n);
            xs_tensor at = xs_tensor_slice(&io.att, 0, t * n, n);
            xs_tensor pt = xs_tensor_slice(pos, 0, t * n, n);
            XS_TRY(xs_op_attention_rows(be, &at, &qt, (const xs_kv_cache *const *)kv, n, &pt,
                                        cf->num_heads, cf->context, scale));
        }
    }
    XS_TRY(mimi_layer_tail(c->sc, ly, next, &io, x));
    *h = io.h;
    return XS_OK;
}

/* x [D, n*T] (conv layout) -> *y [D, n*T]; layer l's caches of the n
 * streams at kv + l * kv_stride. */
xs_status mimi_btransformer(mimi_bctx *c, const mimi_model *m, const mimi_transformer *tr,
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
    xs_tensor h = {0};
    for (int l = 0; l < tr->n_layers; l++) {
        const mimi_tlayer *next = l + 1 < tr->n_layers ? &tr->layers[l + 1] : NULL;
        XS_TRY(blayer(c, &m->cfg, &tr->layers[l], next, kv + (size_t)l * kv_stride, pos, T, &res,
                      &h, l > 0));
    }
    XS_TRY(mimi_tmp(c->sc, D, n * T, &out));
    xs_tensor o3 = view3(out.data, D, n, T, n * T, T, 1);
    xs_tensor rv = view3(res.data, D, n, T, 1, D, n * D);
    XS_TRY(xs_op_copy(c->be, &o3, &rv));
    *y = out;
    return XS_OK;
}

