/*
 * ref_norm.c — layer_norm, rms_norm and softmax over the innermost dim, in
 * double. Each row's statistics are computed before any of y is written, so
 * y may alias x.
 */
#include <math.h>
#include <stdlib.h>

#include "backend/ref/ref.h"

xs_status ref_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                         const xs_tensor *b, float eps) {
    (void)be;
    const int64_t d = ref_inner(x), m = ref_rows(x);
    const float *wv = w->data, *bv = b ? b->data : NULL;
    for (int64_t r = 0; r < m; r++) {
        const int64_t xo = ref_row_offset(x, r), yo = ref_row_offset(y, r);
        double mean = 0.0, var = 0.0;
        for (int64_t c = 0; c < d; c++) mean += *ref_f32_at(x, xo, c);
        mean /= (double)d;
        for (int64_t c = 0; c < d; c++) {
            double e = *ref_f32_at(x, xo, c) - mean;
            var += e * e;
        }
        var /= (double)d; /* biased, like torch.nn.LayerNorm */
        const double inv = 1.0 / sqrt(var + (double)eps);
        for (int64_t c = 0; c < d; c++) {
            double v = (*ref_f32_at(x, xo, c) - mean) * inv * wv[c];
            if (bv) v += bv[c];
            *ref_f32_at(y, yo, c) = (float)v;
        }
    }
    return XS_OK;
}

xs_status ref_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *alpha,
                       float eps) {
    (void)be;
    const int64_t d = ref_inner(x), m = ref_rows(x);
    const float *av = alpha->data;
    for (int64_t r = 0; r < m; r++) {
        const int64_t xo = ref_row_offset(x, r), yo = ref_row_offset(y, r);
        double ss = 0.0;
        for (int64_t c = 0; c < d; c++) {
            double v = *ref_f32_at(x, xo, c);
            ss += v * v;
        }
        const double inv = 1.0 / sqrt((double)eps + ss / (double)d);
        for (int64_t c = 0; c < d; c++)
            *ref_f32_at(y, yo, c) = (float)((double)*ref_f32_at(x, xo, c) * av[c] * inv);
    }
    return XS_OK;
}

xs_status ref_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    (void)be;
    const int64_t d = ref_inner(x), m = ref_rows(x);
    double *e = malloc((size_t)(d ? d : 1) * sizeof *e);
    if (!e) return xs_error(XS_ERR_NOMEM, "ref softmax: out of memory");
    for (int64_t r = 0; r < m; r++) {
        const int64_t xo = ref_row_offset(x, r), yo = ref_row_offset(y, r);
        double mx = -INFINITY, sum = 0.0;
        for (int64_t c = 0; c < d; c++)
            if (*ref_f32_at(x, xo, c) > mx) mx = *ref_f32_at(x, xo, c);
        for (int64_t c = 0; c < d; c++) {
            e[c] = exp((double)*ref_f32_at(x, xo, c) - mx);
            sum += e[c];
        }
        for (int64_t c = 0; c < d; c++) *ref_f32_at(y, yo, c) = (float)(e[c] / sum);
    }
    free(e);
    return XS_OK;
}
