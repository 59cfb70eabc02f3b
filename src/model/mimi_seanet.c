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

/* Whether Mimi's fused forms run (the elu in a gather, the
 * skip add reading y^T where it lies): the backend runs overlap_add
 * natively (it stands for them: XSWARM_FUSE, XSWARM_FUSE_MIMI, no op hook
 * or fault). Where they do not, every op below is the one the unfused code
 * ran, so ref and cpu keep their op sequence. */
static bool mimi_fused_forms(xs_backend *be) {
    return xs_op_fused_native(be, XS_OP_FUSED_OVERLAP_ADD);
}

/* Matmul form of a conv (the deep layers, few columns per frame): gather
 * the windows into im[t, ci*k + j] = xin[ci, t*stride + j*dilation] with one
 * strided copy, then y^T = im . wm^T (+ bias): the weights stream once per
 * frame, in bf16 when the model keeps matmul weights in bf16. elu: the
 * gather is the elu op on the windows (elu then copy, in one kernel). */
static xs_status conv_matmul(mimi_scratch *sc, const mimi_conv *cv, const xs_tensor *xin,
                             bool elu, const xs_tensor *res, xs_tensor *out) {
    xs_backend *be = sc->be;
    int64_t Tout = out->shape[1];
    int64_t ws[3] = {Tout, cv->cin, cv->k};
    xs_tensor win = xs_tensor_make(XS_F32, 3, ws, xin->data), im, im3, yt;
    win.stride[0] = cv->stride * xin->stride[1];
    win.stride[1] = xin->stride[0];
    win.stride[2] = (int64_t)cv->dilation * xin->stride[1];
    XS_TRY(mimi_tmp(sc, Tout, (int64_t)cv->cin * cv->k, &im));
    XS_TRY(xs_tensor_reshape(&im, 3, ws, &im3));
    if (elu) XS_TRY(xs_op_elu(be, &im3, &win, 1.0f));
    else XS_TRY(xs_op_copy(be, &im3, &win));
    XS_TRY(mimi_tmp(sc, Tout, cv->cout, &yt));
    XS_TRY(xs_op_matmul(be, &yt, &im, &cv->wm, cv->b.data ? &cv->b : NULL));
    xs_tensor ytt = xs_tensor_transpose(&yt, 0, 1);
    /* + res: the add reads y^T where it lies (the copy then add, in one) */
    if (res && mimi_fused_forms(be)) return xs_op_add(be, out, res, &ytt);
    XS_TRY(xs_op_copy(be, out, &ytt));
    return res ? xs_op_add(be, out, res, out) : XS_OK;
}

xs_status mimi_conv_run_act(mimi_scratch *sc, const mimi_conv *cv, mimi_stream *s,
                            const xs_tensor *x, bool elu, xs_tensor *scratch,
                            const xs_tensor *res, xs_tensor *y) {
    xs_backend *be = sc->be;
    int64_t T = x->shape[1], P = cv->ctx_len;
    if (x->ndim != 2 || x->shape[0] != cv->cin)
        return xs_error(XS_ERR_SHAPE, "mimi conv: input has %lld channels, want %d",
                        (long long)x->shape[0], cv->cin);
    if (T <= 0 || T % cv->stride != 0)
        return xs_error(XS_ERR_SHAPE, "mimi conv: %lld steps are not a multiple of stride %d",
                        (long long)T, cv->stride);
    if (elu && (!scratch || !xs_tensor_same_shape(scratch, x)))
        return xs_error(XS_ERR_ARG, "mimi conv: elu needs a scratch of the input's shape");
    if (res && (res->ndim != 2 || res->shape[0] != cv->cout || res->shape[1] != T / cv->stride))
        return xs_error(XS_ERR_SHAPE, "mimi conv: the residual is not of the output's shape");
    /* elu in the matmul form's gather (no context: x is the conv input) */
    bool elu_gather = false;
    if (elu && P == 0 && cv->wm.data && mimi_fused_forms(be)) {
        elu_gather = true;
        elu = false;
    }
    if (elu && (P == 0 || (cv->replicate && !s->downsample_primed))) {
        /* nothing to fuse into (or the replicate padding reads act(x)) */
        XS_TRY(xs_op_elu(be, scratch, x, 1.0f));
        x = scratch;
        elu = false;
    }
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
        /* xin = [ctx | act(x)], and the new context = the last P columns
         * of xin (may reach into the old one): one fused op (ops.h) */
        XS_TRY(mimi_tmp(sc, cv->cin, P + T, &xin));
        XS_TRY(xs_op_conv_input(be, &xin, &ctx, x, elu, 1.0f, scratch));
    }
    if (cv->wm.data)
        XS_TRY(conv_matmul(sc, cv, &xin, elu_gather, res, &out));
    else if (res) /* the skip added as the conv stores (ops.h) */
        XS_TRY(xs_op_conv1d_add(be, &out, &xin, &cv->w, bias, cv->stride, cv->dilation,
                                cv->groups, res));
    else
        XS_TRY(xs_op_conv1d(be, &out, &xin, &cv->w, bias, cv->stride, cv->dilation, cv->groups));
    if (P > 0 && cv->replicate) s->downsample_primed = true;
    *y = out;
    return XS_OK;
}

xs_status mimi_conv_run(mimi_scratch *sc, const mimi_conv *cv, mimi_stream *s,
                        const xs_tensor *x, xs_tensor *y) {
    return mimi_conv_run_act(sc, cv, s, x, false, NULL, NULL, y);
}

/* Matmul form of a K = 2S transposed conv: col[t, co*K + k] = sum_ci
 * x[ci, t] w[ci, co, k] (+ bias on taps k < S) is one matmul, so the weights
 * stream once per frame (and may be bf16). Output block t (S columns) is
 * then A_t + B_{t-1}: the first S taps of input t plus the last S taps of
 * input t-1, where B_{-1} is the tail carried from the previous call and
 * B_{T-1} becomes the new tail (bias-free by construction). */
static xs_status convtr_matmul(mimi_scratch *sc, const mimi_convtr *ct, mimi_stream *s,
                               const xs_tensor *x, bool elu, xs_tensor *y) {
    xs_backend *be = sc->be;
    int64_t T = x->shape[1], S = ct->stride, C = ct->cout;
    xs_tensor xt, col, out, q;
    XS_TRY(mimi_tmp(sc, T, ct->cin, &xt));
    xs_tensor xtv = xs_tensor_transpose(x, 0, 1);
    /* x^T, through the elu (elu then transpose, one kernel) when asked */
    if (elu) XS_TRY(xs_op_elu(be, &xt, &xtv, 1.0f));
    else XS_TRY(xs_op_copy(be, &xt, &xtv));
    XS_TRY(mimi_tmp(sc, T, C * ct->k, &col));
    XS_TRY(xs_op_matmul(be, &col, &xt, &ct->wt, &ct->bias_col));
    XS_TRY(mimi_tmp(sc, C, T * S, &out));
    XS_TRY(mimi_tmp(sc, C, T * S, &q));
    /* out block t = A_t + B_{t-1} (B_{-1} = the tail), then the new tail:
     * xs_op_overlap_add (ops.h), these copies and add in one kernel */
    xs_tensor tail = state_view(s, ct->state_off, C, S);
    XS_TRY(xs_op_overlap_add(be, &out, &col, &tail, &q));
    *y = out;
    return XS_OK;
}

/* elu: the transposed conv of elu(x), x clobbered (it may hold elu(x)). */
static xs_status convtr_run(mimi_scratch *sc, const mimi_convtr *ct, mimi_stream *s,
                            xs_tensor *x, bool elu, xs_tensor *y) {
    xs_backend *be = sc->be;
    int64_t T = x->shape[1], S = ct->stride, P = ct->tail_len;
    if (x->ndim != 2 || x->shape[0] != ct->cin || T <= 0)
        return xs_error(XS_ERR_SHAPE, "mimi convtr: input has %lld channels, want %d",
                        (long long)x->shape[0], ct->cin);
    if (elu && ct->wt.data && mimi_fused_forms(be)) return convtr_matmul(sc, ct, s, x, true, y);
    if (elu) XS_TRY(xs_op_elu(be, x, x, 1.0f));
    if (ct->wt.data) return convtr_matmul(sc, ct, s, x, false, y);
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

xs_status mimi_convtr_run(mimi_scratch *sc, const mimi_convtr *ct, mimi_stream *s,
                          const xs_tensor *x, xs_tensor *y) {
    xs_tensor xv = *x;
    return convtr_run(sc, ct, s, &xv, false, y);
}

/* ---- SEANet ----------------------------------------------------------------- */

static xs_status resblock_run(mimi_scratch *sc, const mimi_resblock *rb, mimi_stream *s,
                              const xs_tensor *x, xs_tensor *y) {
    xs_tensor e, h1;
    XS_TRY(mimi_tmp(sc, x->shape[0], x->shape[1], &e));
    /* conv(elu(x)): the elu goes into the conv's input op where it can
     * (e: where the composition puts elu(x); x stays for the skip) */
    XS_TRY(mimi_conv_run_act(sc, &rb->c1, s, x, true, &e, NULL, &h1));
    /* y = x + conv(elu(h1)): the true skip (identity shortcut), added as
     * the conv stores its outputs where the backend fuses it */
    return mimi_conv_run_act(sc, &rb->c2, s, &h1, true, &h1, x, y);
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
        idx++; /* ELU: in the conv's input */
        XS_TRY(mimi_conv_run_act(sc, &m->enc.down[i], s, &h, true, &h, NULL, &r));
        h = r;
        XS_TRY(tap_child(sc, s, "enc", idx++, "StreamingConv1d", &h, f0, nf));
    }
    idx++; /* ELU: in the conv's input */
    XS_TRY(mimi_conv_run_act(sc, &m->enc.last, s, &h, true, &h, NULL, &r));
    XS_TRY(tap_child(sc, s, "enc", idx++, "StreamingConv1d", &r, f0, nf));
    *y = r;
    return XS_OK;
}

xs_status mimi_seanet_decode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *x,
                             xs_tensor *y) {
    const mimi_model *m = s->m;
    const mimi_config *c = &m->cfg;
    int64_t f0 = s->dec_frames, nf = x->shape[1] / mimi_downsample_stride(c);
    xs_tensor h, r;
    int idx = 0;
    XS_TRY(mimi_conv_run(sc, &m->dec.first, s, x, &h));
    XS_TRY(tap_child(sc, s, "dec", idx++, "StreamingConv1d", &h, f0, nf));
    for (int i = 0; i < c->n_ratios; i++) {
        idx++; /* ELU: with the transposed conv's input */
        XS_TRY(convtr_run(sc, &m->dec.up[i], s, &h, true, &r));
        h = r;
        XS_TRY(tap_child(sc, s, "dec", idx++, "StreamingConvTranspose1d", &h, f0, nf));
        for (int j = 0; j < c->n_residual_layers; j++) {
            XS_TRY(resblock_run(sc, &m->dec.res[i][j], s, &h, &r));
            h = r;
            XS_TRY(tap_child(sc, s, "dec", idx++, "SEANetResnetBlock", &h, f0, nf));
        }
    }
    idx++; /* ELU: in the conv's input */
    XS_TRY(mimi_conv_run_act(sc, &m->dec.last, s, &h, true, &h, NULL, &r));
    XS_TRY(tap_child(sc, s, "dec", idx++, "StreamingConv1d", &r, f0, nf));
    *y = r;
    return XS_OK;
}
