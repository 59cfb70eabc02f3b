/*
 * mimi_seanet.c — streaming causal convolutions and the SEANet encoder and
 * decoder built from them; also the per-call scratch and the tap helpers.
 *
 * Streaming convs (what Kyutai's StreamingConv1d / StreamingConvTranspose1d
 * do, restated so the C version can be checked against it):
 *  - Conv1d, effective kernel k_eff = (k-1)*dilation + 1: the input of a
 *    call is prefixed with the last k_eff - stride input columns of the
 *    previous call (zeros at the stream start; the replicate-padded
 *    downsample instead starts from copies of its very first column), then a
 *    valid conv runs. T input columns (a multiple of stride) give T/stride
 *    outputs, so every call returns its outputs at once: no look-ahead.
 *  - ConvTranspose1d, kernel K, stride s: the full output of T inputs is
 *    T*s + K - s columns; the first T*s leave now, the last K - s (minus the
 *    bias, which the next call adds again) are added to the next call's first
 *    K - s columns. The SEANet decoder's K = 2s layers run as one matmul plus
 *    an overlap-add (convtr_matmul); others use the conv_transpose1d op.
 */
#include <stdio.h>
#include <string.h>

#include "backend/ops.h"
#include "model/mimi_internal.h"

/* ---- scratch ----------------------------------------------------------- */

xs_status mimi_tmp_dtype(mimi_scratch *sc, xs_dtype dt, int64_t d0, int64_t d1, xs_tensor *out) {
    if (sc->n == MIMI_SCRATCH_MAX)
        return xs_error(XS_ERR_INTERNAL, "mimi: scratch exhausted (%d tensors in one call)",
                        MIMI_SCRATCH_MAX);
    if (xs_dtype_row_bytes(dt, 1) != 4)
        return xs_error(XS_ERR_INTERNAL, "mimi: scratch of dtype %s", xs_dtype_name(dt));
    int64_t shape[2] = {d0, d1}, need = d0 * d1 * 4;
    int i = sc->n;
    if (sc->cap[i] < need) {
        xs_tensor_free(sc->be, &sc->slot[i]);
        memset(&sc->slot[i], 0, sizeof sc->slot[i]);
        sc->cap[i] = 0;
        int64_t n = need > 0 ? need / 4 : 1;
        XS_TRY(xs_tensor_alloc(sc->be, XS_F32, 1, &n, &sc->slot[i]));
        sc->cap[i] = n * 4;
    }
    *out = xs_tensor_make(dt, 2, shape, sc->slot[i].data);
    sc->n++;
    return XS_OK;
}

xs_status mimi_tmp(mimi_scratch *sc, int64_t d0, int64_t d1, xs_tensor *out) {
    return mimi_tmp_dtype(sc, XS_F32, d0, d1, out);
}

void mimi_scratch_release(mimi_scratch *sc) { sc->n = 0; }

void mimi_scratch_free(mimi_scratch *sc) {
    for (int i = 0; i < MIMI_SCRATCH_MAX; i++)
        if (sc->cap[i]) xs_tensor_free(sc->be, &sc->slot[i]);
    memset(sc->slot, 0, sizeof sc->slot);
    memset(sc->cap, 0, sizeof sc->cap);
    sc->n = 0;
}

/* ---- taps ---------------------------------------------------------------- */

xs_status mimi_tap_ct(mimi_scratch *sc, mimi_stream *s, const char *name, const xs_tensor *x,
                      int64_t cols) {
    if (!s->taps || cols == 0) return XS_OK;
    int64_t C = x->shape[0], T = x->shape[1];
    xs_tensor src = *x;
    if (cols > 0 && cols < T) {
        xs_tensor part = xs_tensor_slice(x, 1, 0, cols);
        XS_TRY(mimi_tmp(sc, C, cols, &src));
        XS_TRY(xs_op_copy(sc->be, &src, &part));
        T = cols;
    }
    int64_t shape[3] = {1, C, T};
    xs_tensor v;
    XS_TRY(xs_tensor_reshape(&src, 3, shape, &v));
    return xs_tap_record(s->taps, sc->be, name, &v, 2);
}

xs_status mimi_tap_tc(mimi_stream *s, const char *name, const xs_tensor *x) {
    if (!s->taps) return XS_OK;
    int64_t shape[3] = {1, x->shape[0], x->shape[1]};
    xs_tensor v;
    XS_TRY(xs_tensor_reshape(x, 3, shape, &v));
    return xs_tap_record(s->taps, s->m->be, name, &v, 1);
}

/* ---- streaming convs ------------------------------------------------------ */

static xs_tensor state_view(mimi_stream *s, int64_t off, int64_t rows, int64_t cols) {
    return xs_tensor_2d(XS_F32, (float *)s->conv_state.data + off, rows, cols);
}

/* Matmul form of a conv (the deep layers, few columns per frame): gather
 * the windows into im[t, ci*k + j] = xin[ci, t*stride + j*dilation] with one
 * strided copy, then y^T = im . wm^T (+ bias): the weights stream once per
 * frame, in bf16 when the model keeps matmul weights in bf16. */
static xs_status conv_matmul(mimi_scratch *sc, const mimi_conv *cv, const xs_tensor *xin,
                             xs_tensor *out) {
    xs_backend *be = sc->be;
    int64_t Tout = out->shape[1];
    int64_t ws[3] = {Tout, cv->cin, cv->k};
    xs_tensor win = xs_tensor_make(XS_F32, 3, ws, xin->data), im, im3, yt;
    win.stride[0] = cv->stride * xin->stride[1];
    win.stride[1] = xin->stride[0];
    win.stride[2] = (int64_t)cv->dilation * xin->stride[1];
    XS_TRY(mimi_tmp(sc, Tout, (int64_t)cv->cin * cv->k, &im));
    XS_TRY(xs_tensor_reshape(&im, 3, ws, &im3));
    XS_TRY(xs_op_copy(be, &im3, &win));
    XS_TRY(mimi_tmp(sc, Tout, cv->cout, &yt));
    XS_TRY(xs_op_matmul(be, &yt, &im, &cv->wm, cv->b.data ? &cv->b : NULL));
    xs_tensor ytt = xs_tensor_transpose(&yt, 0, 1);
    return xs_op_copy(be, out, &ytt);
}

xs_status mimi_conv_run(mimi_scratch *sc, const mimi_conv *cv, mimi_stream *s,
                        const xs_tensor *x, xs_tensor *y) {
    xs_backend *be = sc->be;
    int64_t T = x->shape[1], P = cv->ctx_len;
    if (x->ndim != 2 || x->shape[0] != cv->cin)
        return xs_error(XS_ERR_SHAPE, "mimi conv: input has %lld channels, want %d",
                        (long long)x->shape[0], cv->cin);
    if (T <= 0 || T % cv->stride != 0)
        return xs_error(XS_ERR_SHAPE, "mimi conv: %lld steps are not a multiple of stride %d",
                        (long long)T, cv->stride);
    xs_tensor out, xin = *x;
    XS_TRY(mimi_tmp(sc, cv->cout, T / cv->stride, &out));
    const xs_tensor *bias = cv->b.data ? &cv->b : NULL;
    xs_tensor ctx = state_view(s, cv->state_off, cv->cin, P > 0 ? P : 1);
    if (P > 0) {
        if (cv->replicate && !s->downsample_primed) {
            /* Replicate padding: the context starts as copies of the first column. */
            xs_tensor first = xs_tensor_slice(x, 1, 0, 1);
            for (int64_t j = 0; j < P; j++) {
                xs_tensor dst = xs_tensor_slice(&ctx, 1, j, 1);
                XS_TRY(xs_op_copy(be, &dst, &first));
            }
        }
        XS_TRY(mimi_tmp(sc, cv->cin, P + T, &xin));
        xs_tensor head = xs_tensor_slice(&xin, 1, 0, P), body = xs_tensor_slice(&xin, 1, P, T);
        XS_TRY(xs_op_copy(be, &head, &ctx));
        XS_TRY(xs_op_copy(be, &body, x));
    }
    if (cv->wm.data)
        XS_TRY(conv_matmul(sc, cv, &xin, &out));
    else
        XS_TRY(xs_op_conv1d(be, &out, &xin, &cv->w, bias, cv->stride, cv->dilation, cv->groups));
    if (P > 0) {
        /* the new context: the last P columns seen (may reach into the old one) */
        xs_tensor keep = xs_tensor_slice(&xin, 1, T, P);
        XS_TRY(xs_op_copy(be, &ctx, &keep));
        if (cv->replicate) s->downsample_primed = true;
    }
    *y = out;
    return XS_OK;
}

/* A [C, T, S] view of col [T, C*2S] picking taps half*S .. half*S + S-1. */
static xs_tensor taps_half(const xs_tensor *col, int64_t C, int64_t T, int64_t S, int half) {
    int64_t shape[3] = {C, T, S};
    xs_tensor v = xs_tensor_make(XS_F32, 3, shape, (float *)col->data + half * S);
    v.stride[0] = 2 * S;
    v.stride[1] = C * 2 * S;
    v.stride[2] = 1;
    return v;
}

/* Matmul form of a K = 2S transposed conv: col[t, co*K + k] = sum_ci
 * x[ci, t] w[ci, co, k] (+ bias on taps k < S) is one matmul, so the weights
 * stream once per frame (and may be bf16). Output block t (S columns) is
 * then A_t + B_{t-1}: the first S taps of input t plus the last S taps of
 * input t-1, where B_{-1} is the tail carried from the previous call and
 * B_{T-1} becomes the new tail (bias-free by construction). */
static xs_status convtr_matmul(mimi_scratch *sc, const mimi_convtr *ct, mimi_stream *s,
                               const xs_tensor *x, xs_tensor *y) {
    xs_backend *be = sc->be;
    int64_t T = x->shape[1], S = ct->stride, C = ct->cout;
    xs_tensor xt, col, out, q;
    XS_TRY(mimi_tmp(sc, T, ct->cin, &xt));
    xs_tensor xtv = xs_tensor_transpose(x, 0, 1);
    XS_TRY(xs_op_copy(be, &xt, &xtv));
    XS_TRY(mimi_tmp(sc, T, C * ct->k, &col));
    XS_TRY(xs_op_matmul(be, &col, &xt, &ct->wt, &ct->bias_col));
    xs_tensor A = taps_half(&col, C, T, S, 0), B = taps_half(&col, C, T, S, 1);
    int64_t s3[3] = {C, T, S}, t3[3] = {C, 1, S};
    xs_tensor out3, q3, tail3;
    XS_TRY(mimi_tmp(sc, C, T * S, &out));
    XS_TRY(mimi_tmp(sc, C, T * S, &q));
    XS_TRY(xs_tensor_reshape(&out, 3, s3, &out3));
    XS_TRY(xs_tensor_reshape(&q, 3, s3, &q3));
    xs_tensor tail = state_view(s, ct->state_off, C, S);
    XS_TRY(xs_tensor_reshape(&tail, 3, t3, &tail3));
    XS_TRY(xs_op_copy(be, &out3, &A));
    xs_tensor q0 = xs_tensor_slice(&q3, 1, 0, 1);
    XS_TRY(xs_op_copy(be, &q0, &tail3));
    if (T > 1) {
        xs_tensor qr = xs_tensor_slice(&q3, 1, 1, T - 1), br = xs_tensor_slice(&B, 1, 0, T - 1);
        XS_TRY(xs_op_copy(be, &qr, &br));
    }
    XS_TRY(xs_op_add(be, &out, &out, &q));
    xs_tensor blast = xs_tensor_slice(&B, 1, T - 1, 1);
    XS_TRY(xs_op_copy(be, &tail3, &blast));
    *y = out;
    return XS_OK;
}

xs_status mimi_convtr_run(mimi_scratch *sc, const mimi_convtr *ct, mimi_stream *s,
                          const xs_tensor *x, xs_tensor *y) {
    xs_backend *be = sc->be;
    int64_t T = x->shape[1], S = ct->stride, P = ct->tail_len;
    if (x->ndim != 2 || x->shape[0] != ct->cin || T <= 0)
        return xs_error(XS_ERR_SHAPE, "mimi convtr: input has %lld channels, want %d",
                        (long long)x->shape[0], ct->cin);
    if (ct->wt.data) return convtr_matmul(sc, ct, s, x, y);
    xs_tensor full, out;
    XS_TRY(mimi_tmp(sc, ct->cout, (T - 1) * S + ct->k, &full));
    XS_TRY(xs_op_conv_transpose1d(be, &full, x, &ct->w, ct->b.data ? &ct->b : NULL, (int)S,
                                  ct->groups));
    if (P > 0) {
        xs_tensor tail = state_view(s, ct->state_off, ct->cout, P);
        /* overlap-add the previous call's tail into the first P columns */
        xs_tensor head = xs_tensor_slice(&full, 1, 0, P), tmp;
        XS_TRY(mimi_tmp(sc, ct->cout, P, &tmp));
        XS_TRY(xs_op_copy(be, &tmp, &head));
        XS_TRY(xs_op_add(be, &tmp, &tmp, &tail));
        XS_TRY(xs_op_copy(be, &head, &tmp));
        /* keep the new tail, bias removed (the next call's output adds it) */
        xs_tensor rest = xs_tensor_slice(&full, 1, T * S, P);
        XS_TRY(xs_op_copy(be, &tail, &rest));
        if (ct->neg_bias.data) XS_TRY(xs_op_add(be, &tail, &tail, &ct->neg_bias));
    }
    XS_TRY(mimi_tmp(sc, ct->cout, T * S, &out));
    xs_tensor emit = xs_tensor_slice(&full, 1, 0, T * S);
    XS_TRY(xs_op_copy(be, &out, &emit));
    *y = out;
    return XS_OK;
}

/* ---- SEANet ----------------------------------------------------------------- */

static xs_status resblock_run(mimi_scratch *sc, const mimi_resblock *rb, mimi_stream *s,
                              const xs_tensor *x, xs_tensor *y) {
    xs_backend *be = sc->be;
    xs_tensor e, h1, h2, out;
    XS_TRY(mimi_tmp(sc, x->shape[0], x->shape[1], &e));
    XS_TRY(xs_op_elu(be, &e, x, 1.0f));
    XS_TRY(mimi_conv_run(sc, &rb->c1, s, &e, &h1));
    XS_TRY(xs_op_elu(be, &h1, &h1, 1.0f));
    XS_TRY(mimi_conv_run(sc, &rb->c2, s, &h1, &h2));
    XS_TRY(mimi_tmp(sc, x->shape[0], x->shape[1], &out));
    XS_TRY(xs_op_add(be, &out, x, &h2)); /* true skip: identity shortcut */
    *y = out;
    return XS_OK;
}

/* The golden files keep SEANet children for the first 3 frames only: the
 * columns of y that belong to frames < 3 of the stream. */
#define MIMI_SEANET_TAP_FRAMES 3
static int64_t tap_cols(const xs_tensor *y, int64_t frames_before, int64_t frames_now) {
    if (frames_before >= MIMI_SEANET_TAP_FRAMES || frames_now <= 0) return 0;
    int64_t per = y->shape[1] / frames_now;
    int64_t want = (MIMI_SEANET_TAP_FRAMES - frames_before) * per;
    return want < y->shape[1] ? want : y->shape[1];
}

static xs_status tap_child(mimi_scratch *sc, mimi_stream *s, const char *side, int idx,
                           const char *module, const xs_tensor *y, int64_t f0, int64_t nf) {
    if (!s->taps) return XS_OK;
    char name[96];
    snprintf(name, sizeof name, "mimi.%s.seanet.%02d.%s", side, idx, module);
    return mimi_tap_ct(sc, s, name, y, tap_cols(y, f0, nf));
}

xs_status mimi_seanet_encode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *x,
                             xs_tensor *y) {
    const mimi_model *m = s->m;
    const mimi_config *c = &m->cfg;
    xs_backend *be = sc->be;
    int64_t f0 = s->enc_frames, nf = x->shape[1] / mimi_frame_samples(c);
    xs_tensor h, r;
    int idx = 0;
    XS_TRY(mimi_conv_run(sc, &m->enc.first, s, x, &h));
    XS_TRY(tap_child(sc, s, "enc", idx++, "StreamingConv1d", &h, f0, nf));
    for (int i = 0; i < c->n_ratios; i++) {
        for (int j = 0; j < c->n_residual_layers; j++) {
            XS_TRY(resblock_run(sc, &m->enc.res[i][j], s, &h, &r));
            h = r;
            XS_TRY(tap_child(sc, s, "enc", idx++, "SEANetResnetBlock", &h, f0, nf));
        }
        XS_TRY(xs_op_elu(be, &h, &h, 1.0f));
        idx++;
        XS_TRY(mimi_conv_run(sc, &m->enc.down[i], s, &h, &r));
        h = r;
        XS_TRY(tap_child(sc, s, "enc", idx++, "StreamingConv1d", &h, f0, nf));
    }
    XS_TRY(xs_op_elu(be, &h, &h, 1.0f));
    idx++;
    XS_TRY(mimi_conv_run(sc, &m->enc.last, s, &h, &r));
    XS_TRY(tap_child(sc, s, "enc", idx++, "StreamingConv1d", &r, f0, nf));
    *y = r;
    return XS_OK;
}

xs_status mimi_seanet_decode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *x,
                             xs_tensor *y) {
    const mimi_model *m = s->m;
    const mimi_config *c = &m->cfg;
    xs_backend *be = sc->be;
    int64_t f0 = s->dec_frames, nf = x->shape[1] / mimi_downsample_stride(c);
    xs_tensor h, r;
    int idx = 0;
    XS_TRY(mimi_conv_run(sc, &m->dec.first, s, x, &h));
    XS_TRY(tap_child(sc, s, "dec", idx++, "StreamingConv1d", &h, f0, nf));
    for (int i = 0; i < c->n_ratios; i++) {
        XS_TRY(xs_op_elu(be, &h, &h, 1.0f));
        idx++;
        XS_TRY(mimi_convtr_run(sc, &m->dec.up[i], s, &h, &r));
        h = r;
        XS_TRY(tap_child(sc, s, "dec", idx++, "StreamingConvTranspose1d", &h, f0, nf));
        for (int j = 0; j < c->n_residual_layers; j++) {
            XS_TRY(resblock_run(sc, &m->dec.res[i][j], s, &h, &r));
            h = r;
            XS_TRY(tap_child(sc, s, "dec", idx++, "SEANetResnetBlock", &h, f0, nf));
        }
    }
    XS_TRY(xs_op_elu(be, &h, &h, 1.0f));
    idx++;
    XS_TRY(mimi_conv_run(sc, &m->dec.last, s, &h, &r));
    XS_TRY(tap_child(sc, s, "dec", idx++, "StreamingConv1d", &r, f0, nf));
    *y = r;
    return XS_OK;
}
