/*
 * ref_matmul.c — matmul and embedding over f32/f16/bf16/q8_0/q4_0 weights:
 * each weight row is dequantized to f32 (exactly what the file means), then
 * dotted in double.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/ref/ref.h"

xs_status ref_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias) {
    (void)be;
    const int64_t n = w->shape[0], k = w->shape[1], m = ref_rows(x);
    const int64_t xs = x->stride[x->ndim - 1];
    float *wrow = malloc((size_t)(k ? k : 1) * sizeof *wrow);
    if (!wrow) return xs_error(XS_ERR_NOMEM, "ref matmul: out of memory");
    /* Weight row outer: each row is dequantized once, then used by every x row. */
    for (int64_t j = 0; j < n; j++) {
        xs_status rc = ref_weight_row(w, j, wrow);
        if (rc != XS_OK) {
            free(wrow);
            return rc;
        }
        for (int64_t i = 0; i < m; i++) {
            const float *xr = (const float *)x->data + ref_row_offset(x, i);
            double acc = 0.0;
            for (int64_t c = 0; c < k; c++) acc += (double)xr[c * xs] * (double)wrow[c];
            if (bias) acc += (double)((const float *)bias->data)[j];
            *ref_f32_at(y, ref_row_offset(y, i), j) = (float)acc;
        }
    }
    free(wrow);
    return XS_OK;
}

xs_status ref_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                        const xs_tensor *ids) {
    (void)be;
    const int64_t v = table->shape[0], d = table->shape[1], n = ids->shape[0];
    float *row = malloc((size_t)(d ? d : 1) * sizeof *row);
    if (!row) return xs_error(XS_ERR_NOMEM, "ref embedding: out of memory");
    for (int64_t i = 0; i < n; i++) {
        const int32_t id = ((const int32_t *)ids->data)[i * ids->stride[0]];
        if (id == -1) {
            memset(row, 0, (size_t)d * sizeof *row); /* zero_token_id: embeds to zeros */
        } else if (id < 0 || id >= v) {
            free(row);
            return xs_error(XS_ERR_ARG, "embedding: %s: id %d at index %lld out of range [0, %lld)",
                            table->name ? table->name : "table", (int)id, (long long)i,
                            (long long)v);
        } else {
            xs_status rc = ref_weight_row(table, id, row);
            if (rc != XS_OK) {
                free(row);
                return rc;
            }
        }
        const int64_t yo = ref_row_offset(y, i);
        for (int64_t c = 0; c < d; c++) *ref_f32_at(y, yo, c) = row[c];
    }
    free(row);
    return XS_OK;
}
