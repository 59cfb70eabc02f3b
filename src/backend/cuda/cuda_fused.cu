/*
 * cuda_fused.cu — embedding_sum (backend.h, fused ops): the LM input of a
 * step, y = emb_0[id_0] + emb_1[id_1] + ... (Kyutai's order: audio streams,
 * then text), in one launch instead of one embedding per table and one add
 * per term (33 kernels for the 7B's 17 tables).
 *
 * Each element is computed exactly as the composition computes it: term 0
 * is the table value as the embedding op dequantizes it (cu_weight_at; id
 * -1 gives +0), each further term is added as the add op adds,
 * (float)((double)acc + (double)term), left to right; so the result is the
 * composition's bit for bit. One thread per (row, column): a row's result
 * never depends on the other rows. Up to EMB_SUM_TERMS tables go in one
 * launch (their descriptors passed by value); more run as further launches
 * that accumulate.
 *
 * add_norm lives in cuda_norm.cu (it is the fast norm kernel with an add).
 */
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define EMB_SUM_TERMS 24
#define EMB_SUM_THREADS 256

typedef struct emb_terms {
    const unsigned char *table[EMB_SUM_TERMS];
    const int32_t *ids[EMB_SUM_TERMS];
    int64_t ids_stride[EMB_SUM_TERMS];
    int64_t rows[EMB_SUM_TERMS];
    int64_t row_bytes[EMB_SUM_TERMS];
    int dtype[EMB_SUM_TERMS];
    int count;
} emb_terms;

/* Element c of a table row, by the table's dtype (uniform across a warp). */
__device__ static inline float emb_value(int dt, const unsigned char *row, int64_t c) {
    switch (dt) {
    case XS_F32: return cu_weight_at<XS_F32>(row, c);
    case XS_F16: return cu_weight_at<XS_F16>(row, c);
    case XS_BF16: return cu_weight_at<XS_BF16>(row, c);
    case XS_Q8_0: return cu_weight_at<XS_Q8_0>(row, c);
    default: return cu_weight_at<XS_Q4_0>(row, c);
    }
}

__global__ void k_embedding_sum(float *y, int64_t n, int64_t d, const emb_terms t,
                                bool accumulate, cu_err_rec *err) {
    cu_pdl_enter();
    const int64_t i = blockIdx.y;
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || c >= d) return;
    /* all ids, then all table values, in flight at once (two memory round
     * trips, not two per term); then the adds in order */
    int32_t id[EMB_SUM_TERMS];
    float v[EMB_SUM_TERMS];
#pragma unroll
    for (int k = 0; k < EMB_SUM_TERMS; k++)
        if (k < t.count) id[k] = t.ids[k][i * t.ids_stride[k]];
#pragma unroll
    for (int k = 0; k < EMB_SUM_TERMS; k++) {
        v[k] = 0.0f;
        if (k >= t.count) continue;
        if (id[k] >= 0 && id[k] < t.rows[k])
            v[k] = emb_value(t.dtype[k], t.table[k] + (size_t)id[k] * (size_t)t.row_bytes[k], c);
        else if (id[k] != -1 && c == 0)
            cu_report(err, CU_ERR_EMBED_ID, i, id[k], t.rows[k]);
    }
    float acc = accumulate ? y[i * d + c] : 0.0f;
#pragma unroll
    for (int k = 0; k < EMB_SUM_TERMS; k++) {
        if (k >= t.count) break;
        /* term 0 of a fresh sum is written as the embedding op writes it */
        acc = (k == 0 && !accumulate) ? v[k] : (float)((double)acc + (double)v[k]);
    }
    y[i * d + c] = acc;
}

xs_status cu_embedding_sum(xs_backend *be, xs_tensor *y, int count,
                           const xs_tensor *const *tables, const xs_tensor *const *ids,
                           bool accumulate) {
    const int64_t n = y->shape[0], d = y->shape[1];
    if (!n || !d || count < 1) return XS_OK;
    if (n > 65535)
        return xs_error(XS_ERR_UNSUPPORTED, "cuda embedding_sum: %lld rows (max 65535)",
                        (long long)n);
    cu_ctx *c = cu_ctx_of(be);
    const dim3 grid(cu_blocks(d, EMB_SUM_THREADS), (unsigned)n), block(EMB_SUM_THREADS);
    for (int k0 = 0; k0 < count; k0 += EMB_SUM_TERMS) {
        emb_terms t;
        memset(&t, 0, sizeof t);
        t.count = count - k0 < EMB_SUM_TERMS ? count - k0 : EMB_SUM_TERMS;
        for (int k = 0; k < t.count; k++) {
            const xs_tensor *tb = tables[k0 + k], *id = ids[k0 + k];
            t.table[k] = (const unsigned char *)tb->data;
            t.rows[k] = tb->shape[0];
            t.row_bytes[k] = (int64_t)xs_dtype_row_bytes(tb->dtype, d);
            t.dtype[k] = (int)tb->dtype;
            t.ids[k] = (const int32_t *)id->data;
            t.ids_stride[k] = id->stride[0];
        }
        k_embedding_sum<<<grid, block, 0, c->stream>>>((float *)y->data, n, d, t,
                                                         accumulate || k0 > 0, c->err);
        XS_TRY(cu_check_launch("embedding_sum"));
    }
    return XS_OK;
}
