/*
 * ref_util.c — strided indexing and weight-row dequantization for ref ops.
 */
#include <string.h>

#include "backend/ref/ref.h"

int64_t ref_inner(const xs_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

int64_t ref_rows(const xs_tensor *t) {
    int64_t in = ref_inner(t);
    return in ? xs_tensor_numel(t) / in : 0;
}

int64_t ref_row_offset(const xs_tensor *t, int64_t r) {
    int64_t off = 0;
    for (int d = t->ndim - 2; d >= 0; d--) {
        off += (r % t->shape[d]) * t->stride[d];
        r /= t->shape[d];
    }
    return off;
}

int64_t ref_elem_offset(const xs_tensor *t, int64_t i) {
    int64_t off = 0;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return off;
}

xs_status ref_weight_row(const xs_tensor *w, int64_t r, float *out) {
    const int64_t k = w->shape[1];
    const size_t rb = xs_dtype_row_bytes(w->dtype, k);
    return xs_convert_to_f32(out, (const char *)w->data + (size_t)r * rb, w->dtype, k);
}
