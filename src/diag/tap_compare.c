/*
 * tap_compare.c — see tap_compare.h. Everything is computed in double on
 * host copies; taps are small enough (one run of a few frames) that two
 * passes over them cost nothing next to the runs that produced them.
 */
#include "diag/tap_compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "formats/weights.h"

int xs_tap_time_axis(const char *name, int ndim) {
    if (ndim <= 1 || !name) return 0;
    if (!strncmp(name, "lm.", 3)) return 0;
    if (!strncmp(name, "mimi.", 5) || !strncmp(name, "act.", 4)) {
        /* [1, T, C] time-major transformer residuals; everything else [1, C, T]. */
        if (strstr(name, "transformer.layer")) return ndim >= 2 ? 1 : 0;
        return ndim - 1;
    }
    return 0;
}

static bool dtype_integer(xs_dtype t) {
    return t == XS_I32 || t == XS_I64 || t == XS_I8 || t == XS_U8 || t == XS_BOOL;
}

static bool dtype_readable(xs_dtype t) {
    return t == XS_F32 || t == XS_F16 || t == XS_BF16 || t == XS_I32 || t == XS_I64 ||
           t == XS_I8 || t == XS_U8 || t == XS_BOOL;
}

static double value_at(const xs_tensor *t, const int64_t *idx) {
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    switch (t->dtype) {
    case XS_F32: return ((const float *)t->data)[off];
    case XS_F16: return xs_f16_to_f32(((const uint16_t *)t->data)[off]);
    case XS_BF16: return xs_bf16_to_f32(((const uint16_t *)t->data)[off]);
    case XS_I32: return ((const int32_t *)t->data)[off];
    case XS_I64: return (double)((const int64_t *)t->data)[off];
    case XS_I8: return ((const int8_t *)t->data)[off];
    case XS_U8:
    case XS_BOOL: return ((const uint8_t *)t->data)[off];
    default: return NAN;
    }
}

/* Advance a multi-index over `shape` (last dim fastest); false when done. */
static bool next_index(int64_t *idx, const int64_t *shape, int ndim) {
    for (int d = ndim - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) return true;
        idx[d] = 0;
    }
    return false;
}

static void keep_worst(xs_tap_diff *d, const int64_t *idx, double err) {
    int n = d->n_worst;
    if (n == XS_TAPCMP_WORST && err <= d->worst_err[n - 1]) return;
    int pos = n < XS_TAPCMP_WORST ? n : XS_TAPCMP_WORST - 1;
    while (pos > 0 && d->worst_err[pos - 1] < err) {
        d->worst_err[pos] = d->worst_err[pos - 1];
        memcpy(d->worst[pos], d->worst[pos - 1], sizeof d->worst[0]);
        pos--;
    }
    d->worst_err[pos] = err;
    memset(d->worst[pos], 0, sizeof d->worst[0]);
    memcpy(d->worst[pos], idx, sizeof(int64_t) * (size_t)d->ndim);
    if (n < XS_TAPCMP_WORST) d->n_worst = n + 1;
}

xs_status xs_tap_diff_tensors(const char *name, const xs_tensor *ref, const xs_tensor *got,
                              int64_t calls, double rel_tol, xs_tap_diff *d) {
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name ? name : "?");
    d->first_time = d->first_step = -1;
    if (!ref || !got || !ref->data || !got->data)
        return xs_error(XS_ERR_ARG, "tap compare %s: missing tensor", d->name);
    if (rel_tol <= 0) rel_tol = 1e-4;
    d->integer = dtype_integer(ref->dtype) && dtype_integer(got->dtype);
    d->ndim = got->ndim;
    if (!dtype_readable(ref->dtype) || !dtype_readable(got->dtype)) {
        d->skipped = true;
        snprintf(d->why, sizeof d->why, "dtype %s vs %s not comparable",
                 xs_dtype_name(ref->dtype), xs_dtype_name(got->dtype));
        return XS_OK;
    }
    if (ref->ndim != got->ndim || got->ndim == 0) {
        d->skipped = true;
        snprintf(d->why, sizeof d->why, "rank %d vs %d", ref->ndim, got->ndim);
        return XS_OK;
    }
    const int nd = got->ndim;
    const int axis = xs_tap_time_axis(d->name, nd);
    d->axis = axis;
    for (int k = 0; k < nd; k++)
        if (k != axis && ref->shape[k] != got->shape[k]) {
            char a[64], b[64];
            d->skipped = true;
            snprintf(d->why, sizeof d->why, "shape %s vs %s",
                     xs_tensor_shape_str(ref, a, sizeof a), xs_tensor_shape_str(got, b, sizeof b));
            return XS_OK;
        }
    int64_t shape[XS_MAX_DIMS];
    memcpy(shape, got->shape, sizeof shape);
    shape[axis] = ref->shape[axis] < got->shape[axis] ? ref->shape[axis] : got->shape[axis];
    int64_t per_call = 1;
    if (calls > 0 && got->shape[axis] % calls == 0 && got->shape[axis] / calls > 0)
        per_call = got->shape[axis] / calls;
    d->steps = shape[axis] / per_call;
    for (int k = 0; k < nd; k++)
        if (shape[k] == 0) return XS_OK; /* nothing to compare */

    int64_t idx[XS_MAX_DIMS] = {0};
    double rmax = 0;
    do {
        double r = fabs(value_at(ref, idx));
        if (r > rmax) rmax = r; /* NaN never wins a > */
    } while (next_index(idx, shape, nd));
    d->ref_max = rmax;
    d->tol = d->integer ? 0 : rel_tol * (rmax > 1 ? rmax : 1);

    memset(idx, 0, sizeof idx);
    do {
        double r = value_at(ref, idx), g = value_at(got, idx);
        double err = fabs(r - g);
        if (isnan(r) && isnan(g)) err = 0;       /* both NaN (masked logits): agree */
        else if (!isfinite(err)) err = INFINITY; /* one NaN / inf: worst possible */
        if (err > d->max_abs) d->max_abs = err;
        if (err > d->tol) {
            d->over = true;
            if (d->first_time < 0 || idx[axis] < d->first_time) d->first_time = idx[axis];
        }
        if (err > 0) keep_worst(d, idx, err);
    } while (next_index(idx, shape, nd));
    d->max_rel = d->max_abs / (rmax > 1 ? rmax : 1);
    if (d->first_time >= 0) d->first_step = d->first_time / per_call;
    return XS_OK;
}

static bool skipped_by_prefix(const char *name, const char *list) {
    if (!list || !*list) return false;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len && !strncmp(name, p, len)) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* First divergence: earliest step, ties broken by execution order. */
static void report_finish(xs_tap_report *r) {
    r->first = -1;
    r->n_over = 0;
    for (int i = 0; i < r->n; i++) {
        const xs_tap_diff *d = &r->diffs[i];
        if (!d->over) continue;
        r->n_over++;
        if (r->first < 0 || d->first_step < r->diffs[r->first].first_step) r->first = i;
    }
}

typedef const xs_tensor *(*ref_lookup)(void *ctx, const char *tap);

static xs_status compare_with(ref_lookup find, void *ctx, const xs_taps *got,
                              const xs_tapcmp_opts *opts, xs_tap_report *out) {
    memset(out, 0, sizeof *out);
    out->first = -1;
    int n = xs_taps_count(got);
    out->diffs = calloc((size_t)(n > 0 ? n : 1), sizeof *out->diffs);
    if (!out->diffs) return xs_error(XS_ERR_NOMEM, "tap compare: out of memory");
    double rel = opts && opts->rel_tol > 0 ? opts->rel_tol : 1e-4;
    for (int i = 0; i < n; i++) {
        const xs_tensor *g = xs_taps_at(got, i);
        if (!g || !g->name || skipped_by_prefix(g->name, opts ? opts->skip : NULL)) continue;
        xs_tap_diff *d = &out->diffs[out->n];
        const xs_tensor *r = find(ctx, g->name);
        if (!r) {
            memset(d, 0, sizeof *d);
            snprintf(d->name, sizeof d->name, "%s", g->name);
            d->skipped = true;
            d->first_time = d->first_step = -1;
            snprintf(d->why, sizeof d->why, "not in the reference");
        } else {
            XS_TRY(xs_tap_diff_tensors(g->name, r, g, xs_taps_calls(got, g->name), rel, d));
        }
        out->n++;
    }
    report_finish(out);
    return XS_OK;
}

static const xs_tensor *find_in_taps(void *ctx, const char *tap) {
    return xs_taps_find((const xs_taps *)ctx, tap);
}

xs_status xs_tap_compare(const xs_taps *ref, const xs_taps *got, const xs_tapcmp_opts *opts,
                         xs_tap_report *out) {
    if (!ref || !got) return xs_error(XS_ERR_ARG, "tap compare: NULL taps");
    xs_status rc = compare_with(find_in_taps, (void *)ref, got, opts, out);
    if (rc != XS_OK) xs_tap_report_free(out);
    return rc;
}

static const xs_tensor *find_in_file(void *ctx, const char *tap) {
    const xs_weights *w = ctx;
    char buf[160];
    const char *g = xs_tap_golden_name(tap, buf, sizeof buf);
    const xs_tensor *t = g ? xs_weights_find(w, g) : NULL;
    return t ? t : xs_weights_find(w, tap);
}

xs_status xs_tap_compare_file(const char *dump_path, const xs_taps *got,
                              const xs_tapcmp_opts *opts, xs_tap_report *out) {
    if (!dump_path || !got) return xs_error(XS_ERR_ARG, "tap compare: no dump or taps");
    xs_weights *w = NULL;
    XS_TRY(xs_weights_open(dump_path, &w));
    xs_status rc = compare_with(find_in_file, w, got, opts, out);
    xs_weights_close(w);
    if (rc != XS_OK) xs_tap_report_free(out);
    return rc;
}

void xs_tap_report_free(xs_tap_report *r) {
    if (!r) return;
    free(r->diffs);
    memset(r, 0, sizeof *r);
    r->first = -1;
}

static void print_index(FILE *f, const int64_t *idx, int nd) {
    fputc('[', f);
    for (int k = 0; k < nd; k++) fprintf(f, "%s%lld", k ? "," : "", (long long)idx[k]);
    fputc(']', f);
}

void xs_tap_report_print(const xs_tap_report *r, FILE *f) {
    int skipped = 0;
    for (int i = 0; i < r->n; i++) skipped += r->diffs[i].skipped;
    fprintf(f, "taps compared: %d (%d skipped), over tolerance: %d\n", r->n - skipped, skipped,
            r->n_over);
    if (r->first < 0) {
        fprintf(f, "no tap over tolerance\n");
        return;
    }
    const xs_tap_diff *d = &r->diffs[r->first];
    fprintf(f, "FIRST divergence: %s at step %lld (time index %lld along axis %d): max abs %.3g, "
               "max rel %.3g (tolerance %.3g, max |ref| %.3g)\n",
            d->name, (long long)d->first_step, (long long)d->first_time, d->axis, d->max_abs,
            d->max_rel, d->tol, d->ref_max);
    fprintf(f, "  worst indices:");
    for (int k = 0; k < d->n_worst; k++) {
        fputc(' ', f);
        print_index(f, d->worst[k], d->ndim);
        fprintf(f, " %.3g", d->worst_err[k]);
    }
    fputc('\n', f);
    int later = 0;
    for (int i = 0; i < r->n; i++) {
        const xs_tap_diff *o = &r->diffs[i];
        if (!o->over || i == r->first) continue;
        if (!later++) fprintf(f, "later divergent taps:\n");
        fprintf(f, "  %-36s from step %lld, max abs %.3g, max rel %.3g\n", o->name,
                (long long)o->first_step, o->max_abs, o->max_rel);
    }
}
