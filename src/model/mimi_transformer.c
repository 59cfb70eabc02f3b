/*
 * mimi_transformer.c — Mimi's encoder/decoder transformer, streaming.
 *
 * Pre-norm layers on the residual stream x [T, D]:
 *   x += ls1 * out_proj(attn(rope(q), rope(k), v))   with q, k, v from LN1(x)
 *   x += ls2 * linear2(gelu_erf(linear1(LN2(x))))
 * LayerNorm eps 1e-5, no attention/FFN biases, softmax scale 1/sqrt(head_dim).
 *
 * KV ring invariants (they reproduce Kyutai's RingKVCache exactly):
 *  1. capacity == context (250): position p lives in slot p % capacity.
 *  2. Keys are stored one chunk at a time — `chunk` = downsample stride
 *     positions, i.e. one 80 ms frame — and only then attended to. So when a
 *     chunk of 2 is stored, the second key overwrites the slot of the oldest
 *     key the first query could still see: past the context, the first
 *     position of each frame sees 249 keys, the second 250. The reference does
 *     exactly this, and codes_stream_long depends on it. A one-shot call of
 *     many frames runs the same chunks, so it equals frame-by-frame calls.
 *  3. A query at position q sees slot positions p with 0 <= q - p < context.
 * Positions count from 0 at the stream start and never wrap.
 *
 * The positions of a call come in as a device tensor staged before it
 * (mimi_positions_stage), so that the run itself enqueues only ops with
 * fixed arguments and can be recorded once as a CUDA graph and replayed.
 */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>

#include "backend/ops.h"
#include "model/mimi_internal.h"

xs_status mimi_layer_qkv(mimi_scratch *sc, const mimi_config *c, const mimi_tlayer *ly,
                        const xs_tensor *pos, const xs_tensor *x, const xs_tensor *h_ready,
                        mimi_layer_io *io) {
    xs_backend *be = sc->be;
    const int64_t R = x->shape[0], D = c->d_model, F = c->dim_feedforward;
    const int H = c->num_heads;
    const bool cat = xs_op_fused_native(be, XS_OP_FUSED_MATMUL_CAT);
    if (h_ready) io->h = *h_ready;
    else XS_TRY(mimi_tmp(sc, R, D, &io->h));
    if (!cat) {
        XS_TRY(mimi_tmp(sc, R, D, &io->q));
        XS_TRY(mimi_tmp(sc, R, D, &io->k));
        XS_TRY(mimi_tmp(sc, R, D, &io->v));
    }
    XS_TRY(mimi_tmp(sc, R, D, &io->att));
    XS_TRY(mimi_tmp(sc, R, D, &io->o));
    XS_TRY(mimi_tmp(sc, R, F, &io->f));

    if (!h_ready) XS_TRY(xs_op_layer_norm(be, &io->h, x, &ly->norm1_w, &ly->norm1_b, 1e-5f));
    if (cat) {
        /* q | k | v side by side in one [R, 3D] (one launch; each block the
         * bits of its own matmul), q and k roped as one [R, 2H, D/H] view
         * (rope treats every head of a row alike, at the row's position);
         * io->q, k, v are column views (row stride 3D) the kv store and
         * attention read as they are. io->att is free until attention. */
        xs_tensor qkv;
        XS_TRY(mimi_tmp(sc, R, 3 * D, &qkv));
        const xs_tensor *ws[3] = {&ly->wq, &ly->wk, &ly->wv};
        XS_TRY(xs_op_matmul_cat(be, &qkv, &io->h, 3, ws, &io->att));
        xs_tensor *cols[3] = {&io->q, &io->k, &io->v};
        for (int i = 0; i < 3; i++) {
            *cols[i] = xs_tensor_2d(XS_F32, (float *)qkv.data + i * D, R, D);
            cols[i]->stride[0] = 3 * D;
        }
        int64_t qk_shape[3] = {R, 2 * H, D / H};
        xs_tensor qk = xs_tensor_make(XS_F32, 3, qk_shape, qkv.data);
        qk.stride[0] = 3 * D;
        qk.stride[1] = D / H;
        qk.stride[2] = 1;
        return xs_op_rope(be, &qk, pos, c->max_period);
    }
    XS_TRY(xs_op_matmul(be, &io->q, &io->h, &ly->wq, NULL));
    XS_TRY(xs_op_matmul(be, &io->k, &io->h, &ly->wk, NULL));
    XS_TRY(xs_op_matmul(be, &io->v, &io->h, &ly->wv, NULL));
    int64_t heads[3] = {R, H, D / H};
    xs_tensor q3, k3;
    XS_TRY(xs_tensor_reshape(&io->q, 3, heads, &q3));
    XS_TRY(xs_tensor_reshape(&io->k, 3, heads, &k3));
    XS_TRY(xs_op_rope(be, &q3, pos, c->max_period));
    return xs_op_rope(be, &k3, pos, c->max_period);
}

/* The fused ops are defined as the single ops they replace (ops.h), in
 * the same order: mul(ls1), add, layer_norm(norm2) | matmul(lin1), gelu |
 * mul(ls2), add, and the next layer's layer_norm(norm1) — so this is the
 * unfused layer op for op wherever the backend composes them. */
xs_status mimi_layer_tail(mimi_scratch *sc, const mimi_tlayer *ly, const mimi_tlayer *next,
                          mimi_layer_io *io, xs_tensor *x) {
    xs_backend *be = sc->be;
    XS_TRY(xs_op_matmul(be, &io->o, &io->att, &ly->wo, NULL));
    XS_TRY(xs_op_add_scaled_layer_norm(be, &io->h, x, &io->o, &ly->ls1, &ly->norm2_w,
                                       &ly->norm2_b, 1e-5f));
    XS_TRY(xs_op_matmul_gelu(be, &io->f, &io->h, &ly->lin1, NULL));
    XS_TRY(xs_op_matmul(be, &io->o, &io->f, &ly->lin2, NULL));
    if (!next) return xs_op_add_scaled_layer_norm(be, NULL, x, &io->o, &ly->ls2, NULL, NULL, 0.0f);
    return xs_op_add_scaled_layer_norm(be, &io->h, x, &io->o, &ly->ls2, &next->norm1_w,
                                       &next->norm1_b, 1e-5f);
}

/* h: in, LN1(x) when the previous layer's tail left it there (else NULL);
 * out, next's LN1(x) (next NULL: untouched). */
static xs_status layer_run(mimi_scratch *sc, const mimi_config *c, const mimi_tlayer *ly,
                           const mimi_tlayer *next, xs_kv_cache *kv, const xs_tensor *pos,
                           int64_t chunk, xs_tensor *x, xs_tensor *h, bool h_ready) {
    xs_backend *be = sc->be;
    const int64_t T = x->shape[0];
    mimi_layer_io io;
    XS_TRY(mimi_layer_qkv(sc, c, ly, pos, x, h_ready ? h : NULL, &io));
    const float scale = 1.0f / sqrtf((float)(c->d_model / c->num_heads));
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
        int64_t n = T - t0 < chunk ? T - t0 : chunk;
        xs_tensor kc = xs_tensor_slice(&io.k, 0, t0, n), vc = xs_tensor_slice(&io.v, 0, t0, n);
        xs_tensor qc = xs_tensor_slice(&io.q, 0, t0, n), ac = xs_tensor_slice(&io.att, 0, t0, n);
        xs_tensor pc = xs_tensor_slice(pos, 0, t0, n);
        XS_TRY(xs_op_kv_store(be, kv, &kc, &vc, &pc));
        XS_TRY(xs_op_attention(be, &ac, &qc, kv, &pc, c->num_heads, c->context, scale));
    }
    XS_TRY(mimi_layer_tail(sc, ly, next, &io, x));
    *h = io.h;
    return XS_OK;
}

xs_status mimi_positions_stage(mimi_scratch *sc, int64_t pos0, int64_t T, int32_t *host,
                               xs_tensor *pos) {
    xs_tensor t;
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, T, 1, &t));
    *pos = xs_tensor_1d(XS_I32, t.data, T);
    int32_t *hp = host ? host : malloc((size_t)(T > 0 ? T : 1) * sizeof *hp);
    if (!hp) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    for (int64_t i = 0; i < T; i++) hp[i] = (int32_t)(pos0 + i);
    xs_status rc = xs_tensor_upload(sc->be, pos, hp);
    if (!host) free(hp);
    return rc;
}

xs_status mimi_transformer_run(mimi_scratch *sc, mimi_stream *s, const mimi_transformer *tr,
                               xs_kv_cache *kv, const xs_tensor *pos, const char *tap_prefix,
                               const xs_tensor *x, xs_tensor *y) {
    xs_backend *be = sc->be;
    const mimi_config *c = &s->m->cfg;
    int64_t D = x->shape[0], T = x->shape[1];
    if (D != c->d_model)
        return xs_error(XS_ERR_SHAPE, "mimi transformer: input width %lld, want %d",
                        (long long)D, c->d_model);
    if (pos->dtype != XS_I32 || xs_tensor_numel(pos) != T)
        return xs_error(XS_ERR_SHAPE, "mimi transformer: %lld positions for %lld steps",
                        (long long)xs_tensor_numel(pos), (long long)T);
    /* conv layout [D, T] -> residual stream [T, D] */
    xs_tensor res, out;
    XS_TRY(mimi_tmp(sc, T, D, &res));
    xs_tensor xt = xs_tensor_transpose(x, 0, 1);
    XS_TRY(xs_op_copy(be, &res, &xt));


    int64_t chunk = mimi_downsample_stride(c);
    char name[96];
    xs_tensor h = {0}; /* LN1 of the next layer, left by each layer's tail */
    for (int l = 0; l < tr->n_layers; l++) {
        const mimi_tlayer *next = l + 1 < tr->n_layers ? &tr->layers[l + 1] : NULL;
        XS_TRY(layer_run(sc, c, &tr->layers[l], next, &kv[l], pos, chunk, &res, &h, l > 0));
        if (s->taps) {
            snprintf(name, sizeof name, "%s.layer%d_out", tap_prefix, l);
            XS_TRY(mimi_tap_tc(s, name, &res));
        }
    }
    XS_TRY(mimi_tmp(sc, D, T, &out));
    xs_tensor rt = xs_tensor_transpose(&res, 0, 1);
    XS_TRY(xs_op_copy(be, &out, &rt));
    snprintf(name, sizeof name, "%s_out", tap_prefix);
    XS_TRY(mimi_tap_ct(sc, s, name, &out, -1));
    *y = out;
    return XS_OK;
}
