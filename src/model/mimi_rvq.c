/*
 * mimi_rvq.c — Mimi's split residual vector quantizer.
 *
 * Encode: codebook 0 quantizes rvq_first.input_proj(latent); codebooks
 * 1..N-1 quantize, residually, rvq_rest.input_proj(latent) — the SAME latent,
 * not what codebook 0 left over. Nearest centroid in Euclidean distance is
 * argmax over entries of x.c - |c|^2/2 (|x|^2 is the same for every entry),
 * which is one matmul with a bias and one argmax per codebook; ties go to
 * the lowest index, like torch.argmin.
 * Decode: rvq_first.output_proj(c0) + rvq_rest.output_proj(c1 + ... + cN-1).
 *
 * Codes live in backend memory as i32 [N, T] (codebook-major), so a frame
 * needs no host round trip between codebooks.
 */
#include "backend/ops.h"
#include "model/mimi_internal.h"

#define RVQ_SUM_MAX 64 /* codebooks summed by one embedding_sum call */

static xs_tensor codes_row(const xs_tensor *codes, int k) {
    int64_t T = codes->shape[1];
    return xs_tensor_1d(XS_I32, (int32_t *)codes->data + (int64_t)k * T, T);
}

/* Tap a [T, C] tensor in the golden's conv layout [1, C, T]. */
static xs_status tap_as_ct(mimi_scratch *sc, mimi_stream *s, const char *name,
                           const xs_tensor *x_tc) {
    if (!s->taps) return XS_OK;
    xs_tensor ct, tr = xs_tensor_transpose(x_tc, 0, 1);
    XS_TRY(mimi_tmp(sc, x_tc->shape[1], x_tc->shape[0], &ct));
    XS_TRY(xs_op_copy(sc->be, &ct, &tr));
    return mimi_tap_ct(sc, s, name, &ct, -1);
}

static xs_status nearest(mimi_scratch *sc, const mimi_codebook *cb, const xs_tensor *x,
                         xs_tensor *scores, xs_tensor *ids) {
    XS_TRY(xs_op_matmul(sc->be, scores, x, &cb->centroids, &cb->neg_half_sq));
    return xs_op_argmax(sc->be, ids, scores);
}

xs_status mimi_rvq_encode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *latent,
                          int n_codebooks, xs_tensor *codes) {
    xs_backend *be = sc->be;
    const mimi_config *c = &s->m->cfg;
    const mimi_rvq *q = &s->m->rvq;
    int64_t D = latent->shape[0], T = latent->shape[1], Q = c->q_dimension;
    if (n_codebooks < 1 || n_codebooks > c->n_q)
        return xs_error(XS_ERR_ARG, "mimi encode: %d codebooks (1..%d)", n_codebooks, c->n_q);
    xs_tensor lt, xf, scores, out;
    XS_TRY(mimi_tmp(sc, T, D, &lt));
    xs_tensor tr = xs_tensor_transpose(latent, 0, 1);
    XS_TRY(xs_op_copy(be, &lt, &tr));
    XS_TRY(mimi_tmp(sc, T, Q, &xf));
    XS_TRY(mimi_tmp(sc, T, c->bins, &scores));
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, n_codebooks, T, &out));

    XS_TRY(xs_op_matmul(be, &xf, &lt, &q->first_in, NULL));
    XS_TRY(tap_as_ct(sc, s, "mimi.enc.q_first_proj_in", &xf));
    xs_tensor ids = codes_row(&out, 0);
    XS_TRY(nearest(sc, &q->books[0], &xf, &scores, &ids));

    if (n_codebooks > 1) {
        xs_tensor res, emb;
        XS_TRY(mimi_tmp(sc, T, Q, &res));
        XS_TRY(mimi_tmp(sc, T, Q, &emb));
        XS_TRY(xs_op_matmul(be, &res, &lt, &q->rest_in, NULL));
        XS_TRY(tap_as_ct(sc, s, "mimi.enc.q_rest_proj_in", &res));
        for (int k = 1; k < n_codebooks; k++) {
            ids = codes_row(&out, k);
            XS_TRY(nearest(sc, &q->books[k], &res, &scores, &ids));
            if (k + 1 < n_codebooks) {
                XS_TRY(xs_op_embedding(be, &emb, &q->books[k].centroids, &ids));
                XS_TRY(xs_op_scale(be, &emb, &emb, -1.0f, 0.0f));
                XS_TRY(xs_op_add(be, &res, &res, &emb));
            }
        }
    }
    *codes = out;
    return XS_OK;
}

xs_status mimi_rvq_decode(mimi_scratch *sc, mimi_stream *s, const xs_tensor *codes,
                          int n_codebooks, xs_tensor *latent) {
    xs_backend *be = sc->be;
    const mimi_config *c = &s->m->cfg;
    const mimi_rvq *q = &s->m->rvq;
    int64_t T = codes->shape[1], D = c->dimension, Q = c->q_dimension;
    if (n_codebooks < 1 || n_codebooks > c->n_q)
        return xs_error(XS_ERR_ARG, "mimi decode: %d codebooks (1..%d)", n_codebooks, c->n_q);
    xs_tensor e, acc, lat, part, out;
    XS_TRY(mimi_tmp(sc, T, Q, &e));
    XS_TRY(mimi_tmp(sc, T, D, &lat));
    xs_tensor ids = codes_row(codes, 0);
    XS_TRY(xs_op_embedding(be, &e, &q->books[0].centroids, &ids));
    XS_TRY(xs_op_matmul(be, &lat, &e, &q->first_out, NULL));
    XS_TRY(tap_as_ct(sc, s, "mimi.dec.q_first_proj_out", &lat));
    if (n_codebooks > 1) {
        XS_TRY(mimi_tmp(sc, T, Q, &acc));
        XS_TRY(mimi_tmp(sc, T, D, &part));
        /* acc = c1 + ... + cN-1, left to right: xs_op_embedding_sum is
         * defined as exactly this embedding / add chain (ops.h; one kernel
         * where the backend fuses it), and a chunk after the first adds on
         * in the same order (accumulate) */
        const int n = n_codebooks - 1;
        const xs_tensor *tabs[RVQ_SUM_MAX], *idv[RVQ_SUM_MAX];
        xs_tensor idr[RVQ_SUM_MAX];
        for (int k0 = 0; k0 < n; k0 += RVQ_SUM_MAX) {
            const int m = n - k0 < RVQ_SUM_MAX ? n - k0 : RVQ_SUM_MAX;
            for (int k = 0; k < m; k++) {
                idr[k] = codes_row(codes, k0 + k + 1);
                tabs[k] = &q->books[k0 + k + 1].centroids;
                idv[k] = &idr[k];
            }
            XS_TRY(xs_op_embedding_sum(be, &acc, m, tabs, idv, k0 > 0, &e));
        }
        XS_TRY(xs_op_matmul(be, &part, &acc, &q->rest_out, NULL));
        XS_TRY(tap_as_ct(sc, s, "mimi.dec.q_rest_proj_out", &part));
        XS_TRY(xs_op_add(be, &lat, &lat, &part));
    }
    XS_TRY(mimi_tmp(sc, D, T, &out));
    xs_tensor tr = xs_tensor_transpose(&lat, 0, 1);
    XS_TRY(xs_op_copy(be, &out, &tr));
    XS_TRY(mimi_tap_ct(sc, s, "mimi.dec.dequant_latent", &out, -1));
    *latent = out;
    return XS_OK;
}
