/*
 * ref_misc.c — element-wise ops, copy/fill, argmax and top-k sampling.
 * Element-wise ops read x[i] before writing y[i], so y may alias x.
 */
#include <math.h>
#include <stdlib.h>

#include "backend/ref/ref.h"
#include "core/rng.h"

/* y[i] = EXPR(v = x[i]) over every element, both walked through their strides. */
#define REF_UNARY(Y, X, EXPR)                                                   \
    do {                                                                        \
        const int64_t n_ = xs_tensor_numel(X);                                  \
        const bool cx_ = xs_tensor_is_contiguous(X), cy_ = xs_tensor_is_contiguous(Y); \
        for (int64_t i_ = 0; i_ < n_; i_++) {                                   \
            const double v =                                                    \
                ((const float *)(X)->data)[cx_ ? i_ : ref_elem_offset(X, i_)];  \
            ((float *)(Y)->data)[cy_ ? i_ : ref_elem_offset(Y, i_)] = (float)(EXPR); \
        }                                                                       \
    } while (0)

xs_status ref_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha) {
    (void)be;
    REF_UNARY(y, x, v > 0.0 ? v : (double)alpha * expm1(v));
    return XS_OK;
}

xs_status ref_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    (void)be;
    REF_UNARY(y, x, 0.5 * v * (1.0 + erf(v / sqrt(2.0))));
    return XS_OK;
}

xs_status ref_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b) {
    (void)be;
    REF_UNARY(y, x, v * (double)s + (double)b);
    return XS_OK;
}

xs_status ref_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    (void)be;
    const int64_t h = ref_inner(y), m = ref_rows(x);
    for (int64_t r = 0; r < m; r++) {
        const int64_t xo = ref_row_offset(x, r), yo = ref_row_offset(y, r);
        for (int64_t c = 0; c < h; c++) {
            const double g = *ref_f32_at(x, xo, c), u = *ref_f32_at(x, xo, h + c);
            *ref_f32_at(y, yo, c) = (float)(g / (1.0 + exp(-g)) * u);
        }
    }
    return XS_OK;
}

/* b either has a's shape or is one row [D] broadcast over a's rows. */
static xs_status ref_binary(xs_tensor *y, const xs_tensor *a, const xs_tensor *b, int is_mul) {
    const int64_t n = xs_tensor_numel(a), d = ref_inner(a);
    const int bcast = !xs_tensor_same_shape(a, b);
    /* contiguous fast path only skips index arithmetic; values are the same */
    const bool ca = xs_tensor_is_contiguous(a), cb = xs_tensor_is_contiguous(b),
               cy = xs_tensor_is_contiguous(y);
    for (int64_t i = 0; i < n; i++) {
        const double av = ((const float *)a->data)[ca ? i : ref_elem_offset(a, i)];
        const double bv = ((const float *)b->data)[bcast ? (i % d) * b->stride[0]
                                                   : cb  ? i
                                                         : ref_elem_offset(b, i)];
        ((float *)y->data)[cy ? i : ref_elem_offset(y, i)] = (float)(is_mul ? av * bv : av + bv);
    }
    return XS_OK;
}

xs_status ref_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    (void)be;
    return ref_binary(y, a, b, 0);
}

xs_status ref_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    (void)be;
    return ref_binary(y, a, b, 1);
}

xs_status ref_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    (void)be;
    const int64_t n = xs_tensor_numel(x);
    /* f32 and i32 are both 4 bytes: copy the bits, no conversion. */
    const bool cx = xs_tensor_is_contiguous(x), cy = xs_tensor_is_contiguous(y);
    for (int64_t i = 0; i < n; i++)
        ((uint32_t *)y->data)[cy ? i : ref_elem_offset(y, i)] =
            ((const uint32_t *)x->data)[cx ? i : ref_elem_offset(x, i)];
    return XS_OK;
}

xs_status ref_fill(xs_backend *be, xs_tensor *y, float value) {
    (void)be;
    const int64_t n = xs_tensor_numel(y);
    const bool cy = xs_tensor_is_contiguous(y);
    for (int64_t i = 0; i < n; i++) ((float *)y->data)[cy ? i : ref_elem_offset(y, i)] = value;
    return XS_OK;
}

xs_status ref_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits) {
    (void)be;
    const int64_t v = ref_inner(logits), m = ref_rows(logits);
    for (int64_t r = 0; r < m; r++) {
        const int64_t lo = ref_row_offset(logits, r);
        int64_t best = 0;
        float bv = *ref_f32_at(logits, lo, 0);
        for (int64_t c = 1; c < v; c++) {
            const float lv = *ref_f32_at(logits, lo, c);
            /* strict > keeps the lowest index on ties; a NaN never wins over a number
             * (unlike torch.argmax, which returns a NaN's index) */
            if (lv > bv || (bv != bv && lv == lv)) {
                bv = lv;
                best = c;
            }
        }
        ((int32_t *)ids->data)[r] = (int32_t)best;
    }
    return XS_OK;
}

uint64_t ref_sample_counter(uint64_t counter, const xs_tensor *counter_t) {
    if (!counter_t) return counter;
    const int64_t v = counter_t->dtype == XS_I64 ? *(const int64_t *)counter_t->data
                                                 : (int64_t) * (const int32_t *)counter_t->data;
    return counter + (uint64_t)v; /* wrap-around: a negative part counts back */
}

xs_status ref_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits, float temp,
                          int top_k, uint64_t seed, uint64_t stream, uint64_t counter,
                          const xs_tensor *counter_t) {
    (void)be;
    counter = ref_sample_counter(counter, counter_t);
    const int64_t v = ref_inner(logits), m = ref_rows(logits);
    float *row = malloc((size_t)v * sizeof *row);
    if (!row) return xs_error(XS_ERR_NOMEM, "ref sample_topk: out of memory");
    for (int64_t r = 0; r < m; r++) {
        const int64_t lo = ref_row_offset(logits, r);
        for (int64_t c = 0; c < v; c++) row[c] = *ref_f32_at(logits, lo, c);
        const float u = xs_rng_uniform(seed, stream, counter + (uint64_t)r, 0);
        const int id = xs_sample_topk_ref(row, v, temp, top_k, u);
        if (id < 0) {
            free(row);
            return xs_error(XS_ERR_NOMEM, "ref sample_topk: out of memory");
        }
        ((int32_t *)ids->data)[r] = id;
    }
    free(row);
    return XS_OK;
}
