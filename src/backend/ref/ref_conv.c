/*
 * ref_conv.c — conv1d (stride, dilation, groups) and conv_transpose1d
 * (groups, PyTorch weight layout [Cin, Cout/groups, K]), direct loops.
 */
#include <stdlib.h>

#include "backend/ref/ref.h"

/* Element (i, j) of a strided 2-D f32 tensor; (i, j, l) of a 3-D one. */
static inline float at2(const xs_tensor *t, int64_t i, int64_t j) {
    return ((const float *)t->data)[i * t->stride[0] + j * t->stride[1]];
}
static inline float at3(const xs_tensor *t, int64_t i, int64_t j, int64_t l) {
    return ((const float *)t->data)[i * t->stride[0] + j * t->stride[1] + l * t->stride[2]];
}

xs_status ref_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias, int stride, int dilation, int groups) {
    (void)be;
    const int64_t cout = w->shape[0], cin_g = w->shape[1], kk = w->shape[2];
    const int64_t cout_g = cout / groups, tout = y->shape[1];
    for (int64_t co = 0; co < cout; co++) {
        const int64_t g = co / cout_g;
        for (int64_t t = 0; t < tout; t++) {
            double acc = bias ? (double)((const float *)bias->data)[co] : 0.0;
            for (int64_t ci = 0; ci < cin_g; ci++)
                for (int64_t k = 0; k < kk; k++)
                    acc += (double)at3(w, co, ci, k) *
                           (double)at2(x, g * cin_g + ci, t * stride + k * dilation);
            ((float *)y->data)[co * y->stride[0] + t * y->stride[1]] = (float)acc;
        }
    }
    return XS_OK;
}

xs_status ref_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                               const xs_tensor *w, const xs_tensor *bias, int stride, int groups) {
    (void)be;
    const int64_t cin = x->shape[0], tin = x->shape[1];
    const int64_t cout_g = w->shape[1], kk = w->shape[2];
    const int64_t cin_g = cin / groups, cout = y->shape[0], tout = y->shape[1];
    double *acc = calloc((size_t)(cout * tout > 0 ? cout * tout : 1), sizeof *acc);
    if (!acc) return xs_error(XS_ERR_NOMEM, "ref conv_transpose1d: out of memory");
    /* Scatter form, the definition: input sample (ci, t) adds w[ci, co, k] to y[co, t*s + k]. */
    for (int64_t ci = 0; ci < cin; ci++) {
        const int64_t g = ci / cin_g;
        for (int64_t t = 0; t < tin; t++) {
            const double xv = at2(x, ci, t);
            for (int64_t c = 0; c < cout_g; c++)
                for (int64_t k = 0; k < kk; k++)
                    acc[(g * cout_g + c) * tout + t * stride + k] += xv * (double)at3(w, ci, c, k);
        }
    }
    for (int64_t co = 0; co < cout; co++)
        for (int64_t t = 0; t < tout; t++) {
            double v = acc[co * tout + t];
            if (bias) v += (double)((const float *)bias->data)[co];
            ((float *)y->data)[co * y->stride[0] + t * y->stride[1]] = (float)v;
        }
    free(acc);
    return XS_OK;
}
