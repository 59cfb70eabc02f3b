/*
 * diagnose_weights.c — "is the quantized export corrupt?", tested: every
 * tensor of the quantized LM file against the tensor of the same name in
 * its float source, block by block, against what the storage type's
 * rounding can explain:
 *   q8_0: scale d = amax/127, error <= d/2, plus the f16 rounding of d
 *         (2^-11 relative, times up to 127 steps): amax * (0.5/127 + 1e-3);
 *   q4_0: scale d = amax/8, nearest rounding with clamping at the extreme:
 *         error <= d: amax * (1/8 + 1e-3);
 *   f16 / bf16: 2^-11 / 2^-8 relative per element (+ a tiny floor);
 *   f32: 1e-6 relative.
 * A tensor whose worst block exceeds its allowance is beyond quantization
 * error: a corrupt or mismatched export.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diagnose.h"
#include "formats/weights.h"

static double allowed_err(xs_dtype t, double amax, double v) {
    switch (t) {
    case XS_Q8_0: return amax * (0.5 / 127.0 + 1e-3) * 1.01 + 1e-12;
    case XS_Q4_0: return amax * (1.0 / 8.0 + 1e-3) * 1.01 + 1e-12;
    case XS_F16: return fabs(v) * 0x1p-10 + 1e-7;
    case XS_BF16: return fabs(v) * 0x1p-7 + 1e-30;
    default: return fabs(v) * 1e-6 + 1e-30;
    }
}

xs_status xs_diag_compare_weights(const char *quant_path, const char *ref_path, FILE *log,
                                  xs_diag_weights *out) {
    memset(out, 0, sizeof *out);
    xs_weights *q = NULL, *r = NULL;
    XS_TRY(xs_weights_open(quant_path, &q));
    xs_status rc = xs_weights_open(ref_path, &r);
    if (rc != XS_OK) {
        xs_weights_close(q);
        return rc;
    }
    out->checked = true;
    for (int i = 0; rc == XS_OK && i < xs_weights_count(q); i++) {
        const xs_tensor *tq = xs_weights_at(q, i);
        const xs_tensor *tr = tq && tq->name ? xs_weights_find(r, tq->name) : NULL;
        if (!tr) {
            out->n_missing++;
            continue;
        }
        int64_t n = xs_tensor_numel(tq);
        if (n != xs_tensor_numel(tr) || xs_dtype_is_quantized(tr->dtype) ||
            tq->dtype == XS_I64 || tq->dtype == XS_I32 || tq->dtype == XS_I8 ||
            tq->dtype == XS_U8 || tq->dtype == XS_BOOL) {
            out->n_missing++;
            continue;
        }
        float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
        if (!a || !b) {
            free(a);
            free(b);
            rc = xs_error(XS_ERR_NOMEM, "diagnose: out of memory comparing weights");
            break;
        }
        rc = xs_convert_to_f32(a, tq->data, tq->dtype, n);
        if (rc == XS_OK) rc = xs_convert_to_f32(b, tr->data, tr->dtype, n);
        double worst = 0;
        int64_t block = xs_dtype_is_quantized(tq->dtype) ? XS_QK : 1;
        for (int64_t s = 0; rc == XS_OK && s < n; s += block) {
            int64_t e = s + block < n ? s + block : n;
            double amax = 0;
            for (int64_t j = s; j < e; j++)
                if (fabs(b[j]) > amax) amax = fabs(b[j]);
            for (int64_t j = s; j < e; j++) {
                double err = fabs((double)a[j] - b[j]);
                double ratio = isfinite(err) ? err / allowed_err(tq->dtype, amax, b[j]) : INFINITY;
                if (ratio > worst) worst = ratio;
            }
        }
        free(a);
        free(b);
        if (rc != XS_OK) break;
        out->n_compared++;
        if (worst > 1) {
            out->n_over++;
            if (log)
                fprintf(log, "weights: %s (%s) differs from its source by %.2fx what %s rounding "
                             "allows\n", tq->name, xs_dtype_name(tq->dtype), worst,
                        xs_dtype_name(tq->dtype));
        }
        if (worst > out->worst_ratio) {
            out->worst_ratio = worst;
            snprintf(out->worst, sizeof out->worst, "%s", tq->name);
        }
    }
    xs_weights_close(q);
    xs_weights_close(r);
    return rc;
}
