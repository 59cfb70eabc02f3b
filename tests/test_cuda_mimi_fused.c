/*
 * test_cuda_mimi_fused.c — Mimi's fused ops (ops.h: add_scaled_layer_norm,
 * matmul_gelu, matmul_cat, conv_input, overlap_add, conv1d_add) against their
 * definition, the composition of single ops.
 *
 * Everywhere (no GPU needed): on ref and cpu the wrappers run the
 * composition, bit for bit what the single ops give; bad arguments are
 * refused; an op hook sees the single ops unless it opts in.
 * With a usable GPU: the cuda kernels at Mimi's shapes equal the cuda
 * composition bit for bit, and ref (exactly for copies, adds, the layer
 * scale and residual; within tolerance for norms, matmuls and elu):
 * rows of 512 (one stream's 2 rows, 80 streams' 160), lin1 2048 x 512 at
 * M = 1, 2, 160 (the few-rows and the tiled sgemm kernels) and a weight the
 * sgemm kernels do not take; q|k|v from one in_proj at M = 1, 2, 160 and
 * from separate weights; conv_input at the SEANet shapes, elu or not,
 * contexts longer than the input; overlap_add at the decoder's shapes;
 * conv1d_add through the split and the tiled conv kernel (and grouped:
 * composed); the stateful ones over three calls in a row. The same inside a replayed
 * CUDA graph; and a whole random preset Mimi (8 + 8 layers) encodes and
 * decodes to the same codes and pcm, bit for bit, with fusion on and off.
 * Without a GPU that part is skipped.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backend/graph.h"
#include "backend/op_hook.h"
#include "backend/ops.h"
#include "model/mimi.h"
#include "testutil.h"

#define TOL_NORM 1e-10
#define TOL_MM 1e-9

/* ---- add_scaled_layer_norm ---------------------------------------------------------- */

typedef struct as_case {
    const char *what;
    int64_t rows, d;
    bool norm, bias;
} as_case;

static const as_case k_as[] = {
    {"one stream: 2 rows of 512, + norm", 2, 512, true, true},
    {"80 streams: 160 rows of 512, + norm", 160, 512, true, true},
    {"last layer: 2 rows of 512, no norm", 2, 512, false, false},
    {"norm without bias", 3, 512, true, false},
    {"odd width (composed on cuda too)", 3, 37, true, true},
};

typedef struct as_bufs {
    xs_tensor x, h, y, s, w, b;
} as_bufs;

static xs_status as_alloc(xs_backend *be, const as_case *c, uint64_t seed, as_bufs *t) {
    const int64_t n = c->rows * c->d, shape[2] = {c->rows, c->d}, d = c->d;
    float *hx = malloc((size_t)n * sizeof *hx), *hh = malloc((size_t)n * sizeof *hh);
    float *hs = malloc((size_t)d * sizeof *hs), *hw = malloc((size_t)d * sizeof *hw);
    float *hb = malloc((size_t)d * sizeof *hb);
    test_fill_uniform(hx, n, seed, -2.0f, 2.0f);
    test_fill_uniform(hh, n, seed + 1, -1.0f, 1.0f);
    test_fill_uniform(hs, d, seed + 2, -0.3f, 0.3f); /* layer scales: small, either sign */
    test_fill_uniform(hw, d, seed + 3, 0.5f, 1.5f);
    test_fill_uniform(hb, d, seed + 4, -0.25f, 0.25f);
    memset(t, 0, sizeof *t);
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, shape, &t->x);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, shape, &t->h);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, shape, &t->y);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 1, &d, &t->s);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 1, &d, &t->w);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 1, &d, &t->b);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &t->x, hx);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &t->h, hh);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &t->s, hs);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &t->w, hw);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &t->b, hb);
    if (rc == XS_OK) { /* y starts non-zero: a path that skips it would show */
        for (int64_t i = 0; i < n; i++) hx[i] = 7.0f;
        rc = xs_tensor_upload(be, &t->y, hx);
    }
    free(hx), free(hh), free(hs), free(hw), free(hb);
    return rc;
}

static void as_free(xs_backend *be, as_bufs *t) {
    xs_tensor *all[] = {&t->x, &t->h, &t->y, &t->s, &t->w, &t->b};
    for (int i = 0; i < 6; i++) xs_tensor_free(be, all[i]);
}

static xs_status as_apply(xs_backend *be, const as_case *c, bool composed, as_bufs *t) {
    const xs_tensor *w = c->norm ? &t->w : NULL, *b = c->norm && c->bias ? &t->b : NULL;
    if (!composed)
        return xs_op_add_scaled_layer_norm(be, c->norm ? &t->y : NULL, &t->x, &t->h, &t->s, w,
                                           b, 1e-5f);
    XS_TRY(xs_op_mul(be, &t->h, &t->h, &t->s));
    XS_TRY(xs_op_add(be, &t->x, &t->x, &t->h));
    return c->norm ? xs_op_layer_norm(be, &t->y, &t->x, w, b, 1e-5f) : XS_OK;
}

/* out: x, h, y (3 * rows * d floats) */
static xs_status as_run(xs_backend *be, const as_case *c, bool composed, uint64_t seed,
                        float *out) {
    const int64_t n = c->rows * c->d;
    as_bufs t;
    xs_status rc = as_alloc(be, c, seed, &t);
    if (rc == XS_OK) rc = as_apply(be, c, composed, &t);
    if (rc == XS_OK) rc = xs_tensor_download(be, out, &t.x);
    if (rc == XS_OK) rc = xs_tensor_download(be, out + n, &t.h);
    if (rc == XS_OK) rc = xs_tensor_download(be, out + 2 * n, &t.y);
    as_free(be, &t);
    return rc;
}

static void check_as(xs_backend *be, const char *bn, const as_case *c, const float *ref,
                     float *fo) {
    const int64_t n = c->rows * c->d;
    float *co = malloc((size_t)(3 * n) * sizeof *co);
    CHECK(as_run(be, c, false, 31, fo) == XS_OK, "%s %s fused: %s", bn, c->what,
          xs_error_msg());
    CHECK(as_run(be, c, true, 31, co) == XS_OK, "%s %s composed: %s", bn, c->what,
          xs_error_msg());
    CHECK(!memcmp(fo, co, (size_t)(3 * n) * sizeof *fo),
          "%s %s: fused differs from mul, add, norm (max |d| x %g h %g y %g)", bn, c->what,
          test_max_abs_diff(fo, co, n), test_max_abs_diff(fo + n, co + n, n),
          test_max_abs_diff(fo + 2 * n, co + 2 * n, n));
    if (ref) {
        CHECK(!memcmp(fo, ref, (size_t)(2 * n) * sizeof *fo), "%s %s: x or h differs from ref",
              bn, c->what);
        if (c->norm) {
            const double e = test_nmse(ref + 2 * n, fo + 2 * n, n);
            CHECK(e <= TOL_NORM, "%s %s: y nmse %g vs ref", bn, c->what, e);
        }
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs(fo[n + i]);
    CHECK(s > 0, "%s %s: h all zeros", bn, c->what);
    free(co);
}

/* ---- matmul_gelu ------------------------------------------------------------------- */

typedef struct mg_case {
    const char *what;
    int64_t m, n, k;
    bool bias, strided; /* strided: x is a transposed view */
} mg_case;

static const mg_case k_mg[] = {
    {"lin1 2048x512, one stream (M = 2)", 2, 2048, 512, false, false},
    {"lin1 2048x512, M = 1", 1, 2048, 512, false, false},
    {"lin1 2048x512, 80 streams (M = 160, tiled)", 160, 2048, 512, false, false},
    {"lin1 with bias, M = 5", 5, 2048, 512, true, false},
    {"x a strided view, M = 3", 3, 2048, 512, false, true},
    {"512x512: not an sgemm weight (two ops)", 2, 512, 512, true, false},
};

static xs_status mg_run(xs_backend *be, const mg_case *c, bool composed, float *out) {
    const int64_t xs[2] = {c->m, c->k}, xts[2] = {c->k, c->m}, ws[2] = {c->n, c->k};
    const int64_t ys[2] = {c->m, c->n}, nb = c->n;
    float *hx = malloc((size_t)(c->m * c->k) * sizeof *hx);
    float *hw = malloc((size_t)(c->n * c->k) * sizeof *hw), *hb = malloc((size_t)nb * sizeof *hb);
    test_fill_uniform(hx, c->m * c->k, 41, -1.5f, 1.5f);
    test_fill_uniform(hw, c->n * c->k, 42, -0.08f, 0.08f); /* outputs O(1): gelu's both sides */
    test_fill_uniform(hb, nb, 43, -0.5f, 0.5f);
    xs_tensor hwt = xs_tensor_make(XS_F32, 2, ws, hw);
    xs_tensor x = {0}, w = {0}, b = {0}, y = {0};
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, c->strided ? xts : xs, &x);
    if (rc == XS_OK) rc = xs_backend_weight(be, &hwt, &w);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 1, &nb, &b);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ys, &y);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &x, hx);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &b, hb);
    xs_tensor xv = c->strided ? xs_tensor_transpose(&x, 0, 1) : x;
    const xs_tensor *bp = c->bias ? &b : NULL;
    if (rc == XS_OK && composed) {
        rc = xs_op_matmul(be, &y, &xv, &w, bp);
        if (rc == XS_OK) rc = xs_op_gelu(be, &y, &y);
    } else if (rc == XS_OK) {
        rc = xs_op_matmul_gelu(be, &y, &xv, &w, bp);
    }
    if (rc == XS_OK) rc = xs_tensor_download(be, out, &y);
    if (w.data && w.data != hw) xs_backend_weight_release(be, &w);
    xs_tensor_free(be, &x), xs_tensor_free(be, &b), xs_tensor_free(be, &y);
    free(hx), free(hw), free(hb);
    return rc;
}

static void check_mg(xs_backend *be, const char *bn, const mg_case *c, const float *ref,
                     float *fo) {
    const int64_t n = c->m * c->n;
    float *co = malloc((size_t)n * sizeof *co);
    CHECK(mg_run(be, c, false, fo) == XS_OK, "%s %s fused: %s", bn, c->what, xs_error_msg());
    CHECK(mg_run(be, c, true, co) == XS_OK, "%s %s composed: %s", bn, c->what, xs_error_msg());
    CHECK(!memcmp(fo, co, (size_t)n * sizeof *fo),
          "%s %s: fused differs from matmul then gelu (max %g)", bn, c->what,
          test_max_abs_diff(fo, co, n));
    if (ref) {
        const double e = test_nmse(ref, fo, n);
        CHECK(e <= TOL_MM, "%s %s: nmse %g vs ref", bn, c->what, e);
    }
    int neg = 0, pos = 0;
    for (int64_t i = 0; i < n; i++) neg += fo[i] < 0, pos += fo[i] > 0.5f;
    CHECK(neg > 0 && pos > 0, "%s %s: gelu's both sides exercised (%d, %d)", bn, c->what, neg,
          pos);
    free(co);
}

/* ---- matmul_cat ----------------------------------------------------------------------- */

typedef struct mc_case {
    const char *what;
    int64_t m, d; /* x [m, d]; three [d, d] weights */
    bool adjacent; /* row blocks of one [3d, d] matrix (Mimi's in_proj) */
} mc_case;

static const mc_case k_mc[] = {
    {"in_proj q|k|v 512, one stream (M = 2)", 2, 512, true},
    {"in_proj q|k|v 512, M = 1", 1, 512, true},
    {"in_proj q|k|v 512, 80 streams (M = 160)", 160, 512, true},
    {"three separate weights (composed on cuda)", 3, 512, false},
    {"K = 40 (not the wide-load path)", 2, 40, true},
};

/* out: y [m, 3d]; `separate`: three xs_op_matmul into their own tensors,
 * placed side by side on the host (the definition, without matmul_cat) */
static xs_status mc_run(xs_backend *be, const mc_case *c, int mode, float *out) {
    const int64_t d = c->d, m = c->m, big[2] = {3 * d, d}, one[2] = {d, d};
    const int64_t xs[2] = {m, d}, ys[2] = {m, 3 * d}, ss[2] = {m, d};
    float *hx = malloc((size_t)(m * d) * sizeof *hx);
    float *hw = malloc((size_t)(3 * d * d) * sizeof *hw);
    float *part = malloc((size_t)(m * d) * sizeof *part);
    test_fill_uniform(hx, m * d, 61, -1.0f, 1.0f);
    test_fill_uniform(hw, 3 * d * d, 62, -0.1f, 0.1f);
    xs_tensor x = {0}, y = {0}, sc = {0}, wbig = {0}, wsep[3], sep[3];
    memset(wsep, 0, sizeof wsep), memset(sep, 0, sizeof sep);
    const xs_tensor *ws[3];
    xs_tensor views[3];
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, xs, &x);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ys, &y);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ss, &sc);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &x, hx);
    if (c->adjacent) {
        xs_tensor h = xs_tensor_make(XS_F32, 2, big, hw);
        if (rc == XS_OK) rc = xs_backend_weight(be, &h, &wbig);
        for (int i = 0; i < 3; i++) {
            views[i] = rc == XS_OK ? xs_tensor_slice(&wbig, 0, i * d, d) : wbig;
            ws[i] = &views[i];
        }
    } else {
        for (int i = 0; i < 3; i++) {
            xs_tensor h = xs_tensor_make(XS_F32, 2, one, hw + i * d * d);
            if (rc == XS_OK) rc = xs_backend_weight(be, &h, &wsep[i]);
            ws[i] = &wsep[i];
        }
    }
    if (rc == XS_OK && mode == 0) {
        rc = xs_op_matmul_cat(be, &y, &x, 3, ws, &sc);
        if (rc == XS_OK) rc = xs_tensor_download(be, out, &y);
    } else if (rc == XS_OK) {
        for (int i = 0; rc == XS_OK && i < 3; i++) {
            rc = xs_tensor_alloc(be, XS_F32, 2, ss, &sep[i]);
            if (rc == XS_OK) rc = xs_op_matmul(be, &sep[i], &x, ws[i], NULL);
            if (rc == XS_OK) rc = xs_tensor_download(be, part, &sep[i]);
            for (int64_t r = 0; rc == XS_OK && r < m; r++)
                memcpy(out + r * 3 * d + i * d, part + r * d, (size_t)d * sizeof *out);
        }
    }
    if (wbig.data && wbig.data != hw) xs_backend_weight_release(be, &wbig);
    for (int i = 0; i < 3; i++) {
        if (wsep[i].data && wsep[i].data != hw + i * d * d) xs_backend_weight_release(be, &wsep[i]);
        xs_tensor_free(be, &sep[i]);
    }
    xs_tensor_free(be, &x), xs_tensor_free(be, &y), xs_tensor_free(be, &sc);
    free(hx), free(hw), free(part);
    return rc;
}

static void check_mc(xs_backend *be, const char *bn, const mc_case *c, const float *ref,
                     float *fo) {
    const int64_t n = c->m * 3 * c->d;
    float *so = malloc((size_t)n * sizeof *so);
    CHECK(mc_run(be, c, 0, fo) == XS_OK, "%s %s matmul_cat: %s", bn, c->what, xs_error_msg());
    CHECK(mc_run(be, c, 1, so) == XS_OK, "%s %s 3 matmuls: %s", bn, c->what, xs_error_msg());
    CHECK(!memcmp(fo, so, (size_t)n * sizeof *fo),
          "%s %s: matmul_cat differs from three matmuls (max %g)", bn, c->what,
          test_max_abs_diff(fo, so, n));
    if (ref) {
        const double e = test_nmse(ref, fo, n);
        CHECK(e <= TOL_MM, "%s %s: nmse %g vs ref", bn, c->what, e);
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += fabs(fo[i]);
    CHECK(s > 0, "%s %s: all zeros", bn, c->what);
    free(so);
}

/* ---- conv_input ----------------------------------------------------------------------- */

typedef struct ci_case {
    const char *what;
    int64_t c, p, t;
    bool elu, strided_x; /* strided_x: x a transposed view */
} ci_case;

static const ci_case k_ci[] = {
    {"encoder first conv: 1 x (6 | 1920)", 1, 6, 1920, false, false},
    {"resblock c1: 64 x (2 | 1920), elu", 64, 2, 1920, true, false},
    {"down conv: 512 x (8 | 16), elu", 512, 8, 16, true, false},
    {"last conv: 512 x (2 | 2), elu", 512, 2, 2, true, false},
    {"decoder first: 512 x (6 | 2): context longer than the input", 512, 6, 2, false, false},
    {"P > T with elu", 33, 5, 3, true, false},
    {"x a strided view, elu", 48, 4, 40, true, true},
};

/* Three calls in a row (the context carries over); out: xin after each call
 * then the final context: (3 * (p + t) + p) * c floats. */
static xs_status ci_run(xs_backend *be, const ci_case *c, bool composed, float *out) {
    const int64_t C = c->c, P = c->p, T = c->t, W = P + T;
    const int64_t xsh[2] = {C, T}, xtsh[2] = {T, C}, stsh[2] = {C + 1, P}, wsh[2] = {C, W};
    float *hx = malloc((size_t)(C * T) * sizeof *hx);
    float *hs = malloc((size_t)((C + 1) * P) * sizeof *hs);
    test_fill_uniform(hs, (C + 1) * P, 71, -2.0f, 2.0f);
    xs_tensor x = {0}, st = {0}, xin = {0}, sc = {0};
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, c->strided_x ? xtsh : xsh, &x);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, stsh, &st);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, wsh, &xin);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, xsh, &sc);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &st, hs);
    /* the context: rows 1..C of a state array (as a stream's conv state) */
    xs_tensor ctx = rc == XS_OK ? xs_tensor_slice(&st, 0, 1, C) : st;
    for (int call = 0; rc == XS_OK && call < 3; call++) {
        test_fill_uniform(hx, C * T, 72 + (uint64_t)call, -3.0f, 3.0f);
        hx[0] = -0.0f;
        rc = xs_tensor_upload(be, &x, hx);
        xs_tensor xv = c->strided_x ? xs_tensor_transpose(&x, 0, 1) : x;
        if (rc == XS_OK && !composed) {
            rc = xs_op_conv_input(be, &xin, &ctx, &xv, c->elu, 1.0f, &sc);
        } else if (rc == XS_OK) {
            const xs_tensor *src = &xv;
            if (c->elu) {
                rc = xs_op_elu(be, &sc, &xv, 1.0f);
                src = &sc;
            }
            xs_tensor head = xs_tensor_slice(&xin, 1, 0, P), body = xs_tensor_slice(&xin, 1, P, T);
            xs_tensor keep = xs_tensor_slice(&xin, 1, T, P);
            if (rc == XS_OK) rc = xs_op_copy(be, &head, &ctx);
            if (rc == XS_OK) rc = xs_op_copy(be, &body, src);
            if (rc == XS_OK) rc = xs_op_copy(be, &ctx, &keep);
        }
        if (rc == XS_OK) rc = xs_tensor_download(be, out + call * C * W, &xin);
    }
    if (rc == XS_OK) { /* the whole state array: row 0 must be untouched */
        float *all = malloc((size_t)((C + 1) * P) * sizeof *all);
        rc = xs_tensor_download(be, all, &st);
        if (rc == XS_OK && memcmp(all, hs, (size_t)P * sizeof *all))
            rc = xs_error(XS_ERR_INTERNAL, "conv_input wrote outside its context");
        if (rc == XS_OK) memcpy(out + 3 * C * W, all + P, (size_t)(C * P) * sizeof *all);
        free(all);
    }
    xs_tensor_free(be, &x), xs_tensor_free(be, &st), xs_tensor_free(be, &xin);
    xs_tensor_free(be, &sc);
    free(hx), free(hs);
    return rc;
}

static void check_ci(xs_backend *be, const char *bn, const ci_case *c, const float *ref,
                     float *fo) {
    const int64_t n = 3 * c->c * (c->p + c->t) + c->c * c->p;
    float *co = malloc((size_t)n * sizeof *co);
    CHECK(ci_run(be, c, false, fo) == XS_OK, "%s %s fused: %s", bn, c->what, xs_error_msg());
    CHECK(ci_run(be, c, true, co) == XS_OK, "%s %s composed: %s", bn, c->what, xs_error_msg());
    CHECK(!memcmp(fo, co, (size_t)n * sizeof *fo),
          "%s %s: conv_input differs from elu + 3 copies (max %g)", bn, c->what,
          test_max_abs_diff(fo, co, n));
    if (ref) {
        if (c->elu) {
            const double e = test_nmse(ref, fo, n);
            CHECK(e <= 1e-12, "%s %s: nmse %g vs ref", bn, c->what, e);
        } else {
            CHECK(!memcmp(fo, ref, (size_t)n * sizeof *fo), "%s %s: differs from ref", bn,
                  c->what);
        }
    }
    free(co);
}

/* ---- overlap_add ---------------------------------------------------------------------- */

typedef struct ol_case {
    const char *what;
    int64_t c, t, s;
} ol_case;

static const ol_case k_ol[] = {
    {"decoder up, ratio 8: 256 ch, 2 steps", 256, 2, 8},
    {"ratio 6: 128 ch, 16 steps", 128, 16, 6},
    {"ratio 4: 32 ch, 480 steps", 32, 480, 4},
    {"one step (no shifted copy)", 64, 1, 5},
};

/* Three calls (the tail carries over); tail rows strided (row stride S + 3).
 * out: y of each call, then the final tail: (3 * t + 1) * c * s floats. */
static xs_status ol_run(xs_backend *be, const ol_case *c, bool composed, float *out) {
    const int64_t C = c->c, T = c->t, S = c->s, R = C * 2 * S, SS = S + 3;
    const int64_t csh[2] = {T, R}, ysh[2] = {C, T * S}, tsh[2] = {C, SS};
    float *hc = malloc((size_t)(T * R) * sizeof *hc), *ht = malloc((size_t)(C * SS) * sizeof *ht);
    test_fill_uniform(ht, C * SS, 81, -1.0f, 1.0f);
    xs_tensor col = {0}, y = {0}, q = {0}, tb = {0};
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, csh, &col);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ysh, &y);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ysh, &q);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, tsh, &tb);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &tb, ht);
    xs_tensor tail = rc == XS_OK ? xs_tensor_slice(&tb, 1, 1, S) : tb; /* [C, S], stride S + 3 */
    for (int call = 0; rc == XS_OK && call < 3; call++) {
        test_fill_uniform(hc, T * R, 82 + (uint64_t)call, -2.0f, 2.0f);
        rc = xs_tensor_upload(be, &col, hc);
        if (rc == XS_OK && !composed) {
            rc = xs_op_overlap_add(be, &y, &col, &tail, &q);
        } else if (rc == XS_OK) { /* mimi_seanet.c's convtr_matmul before the fusion */
            int64_t s3[3] = {C, T, S};
            xs_tensor A = xs_tensor_make(XS_F32, 3, s3, col.data), B = A, y3, q3, t3;
            A.stride[0] = B.stride[0] = 2 * S;
            A.stride[1] = B.stride[1] = R;
            A.stride[2] = B.stride[2] = 1;
            B.data = (float *)col.data + S;
            y3 = xs_tensor_make(XS_F32, 3, s3, y.data);
            q3 = xs_tensor_make(XS_F32, 3, s3, q.data);
            int64_t one[3] = {C, 1, S};
            t3 = xs_tensor_make(XS_F32, 3, one, tail.data);
            t3.stride[0] = SS, t3.stride[1] = SS, t3.stride[2] = 1;
            rc = xs_op_copy(be, &y3, &A);
            xs_tensor q0 = xs_tensor_slice(&q3, 1, 0, 1);
            if (rc == XS_OK) rc = xs_op_copy(be, &q0, &t3);
            if (rc == XS_OK && T > 1) {
                xs_tensor qr = xs_tensor_slice(&q3, 1, 1, T - 1);
                xs_tensor br = xs_tensor_slice(&B, 1, 0, T - 1);
                rc = xs_op_copy(be, &qr, &br);
            }
            if (rc == XS_OK) rc = xs_op_add(be, &y, &y, &q);
            xs_tensor bl = xs_tensor_slice(&B, 1, T - 1, 1);
            if (rc == XS_OK) rc = xs_op_copy(be, &t3, &bl);
        }
        if (rc == XS_OK) rc = xs_tensor_download(be, out + call * C * T * S, &y);
    }
    if (rc == XS_OK) {
        float *all = malloc((size_t)(C * SS) * sizeof *all);
        rc = xs_tensor_download(be, all, &tb);
        for (int64_t r = 0; rc == XS_OK && r < C; r++) {
            if (all[r * SS] != ht[r * SS] || all[r * SS + S + 1] != ht[r * SS + S + 1])
                rc = xs_error(XS_ERR_INTERNAL, "overlap_add wrote outside its tail");
            memcpy(out + 3 * C * T * S + r * S, all + r * SS + 1, (size_t)S * sizeof *all);
        }
        free(all);
    }
    xs_tensor_free(be, &col), xs_tensor_free(be, &y), xs_tensor_free(be, &q);
    xs_tensor_free(be, &tb);
    free(hc), free(ht);
    return rc;
}

static void check_ol(xs_backend *be, const char *bn, const ol_case *c, const float *ref,
                     float *fo) {
    const int64_t n = (3 * c->t + 1) * c->c * c->s;
    float *co = malloc((size_t)n * sizeof *co);
    CHECK(ol_run(be, c, false, fo) == XS_OK, "%s %s fused: %s", bn, c->what, xs_error_msg());
    CHECK(ol_run(be, c, true, co) == XS_OK, "%s %s composed: %s", bn, c->what, xs_error_msg());
    CHECK(!memcmp(fo, co, (size_t)n * sizeof *fo),
          "%s %s: overlap_add differs from 4 copies + add (max %g)", bn, c->what,
          test_max_abs_diff(fo, co, n));
    if (ref)
        CHECK(!memcmp(fo, ref, (size_t)n * sizeof *fo), "%s %s: differs from ref (max %g)", bn,
              c->what, test_max_abs_diff(fo, ref, n));
    free(co);
}

/* ---- conv1d_add ----------------------------------------------------------------------- */

typedef struct cr_case {
    const char *what;
    int64_t cin, cout, tin;
    int k, stride, groups;
    bool bias;
} cr_case;

static const cr_case k_cr[] = {
    {"resblock c2 32 -> 64, k1, 1920 cols (split kernel)", 32, 64, 1920, 1, 1, 1, true},
    {"resblock c2 256 -> 512, k1, 16 cols", 256, 512, 16, 1, 1, 1, true},
    {"64 -> 64 k3 over 15360 cols (tiled kernel)", 64, 64, 15362, 3, 1, 1, true},
    {"strided, no bias", 48, 32, 99, 4, 2, 1, false},
    {"groups 2 (conv then add on cuda)", 16, 16, 40, 3, 1, 2, true},
};

static xs_status cr_run(xs_backend *be, const cr_case *c, bool composed, float *out) {
    const int64_t tout = (c->tin - c->k) / c->stride + 1;
    const int64_t xs[2] = {c->cin, c->tin}, ws[3] = {c->cout, c->cin / c->groups, c->k};
    const int64_t ys[2] = {c->cout, tout}, nb = c->cout;
    const int64_t nx = c->cin * c->tin, nw = ws[0] * ws[1] * ws[2], ny = c->cout * tout;
    float *hx = malloc((size_t)nx * sizeof *hx), *hw = malloc((size_t)nw * sizeof *hw);
    float *hb = malloc((size_t)nb * sizeof *hb), *hr = malloc((size_t)ny * sizeof *hr);
    test_fill_uniform(hx, nx, 91, -1.0f, 1.0f);
    test_fill_uniform(hw, nw, 92, -0.2f, 0.2f);
    test_fill_uniform(hb, nb, 93, -0.1f, 0.1f);
    test_fill_uniform(hr, ny, 94, -2.0f, 2.0f);
    xs_tensor x = {0}, w = {0}, b = {0}, r = {0}, y = {0};
    xs_status rc = xs_tensor_alloc(be, XS_F32, 2, xs, &x);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 3, ws, &w);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 1, &nb, &b);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ys, &r);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_F32, 2, ys, &y);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &x, hx);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &w, hw);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &b, hb);
    if (rc == XS_OK) rc = xs_tensor_upload(be, &r, hr);
    const xs_tensor *bp = c->bias ? &b : NULL;
    if (rc == XS_OK && composed) {
        rc = xs_op_conv1d(be, &y, &x, &w, bp, c->stride, 1, c->groups);
        if (rc == XS_OK) rc = xs_op_add(be, &y, &r, &y);
    } else if (rc == XS_OK) {
        rc = xs_op_conv1d_add(be, &y, &x, &w, bp, c->stride, 1, c->groups, &r);
    }
    if (rc == XS_OK) rc = xs_tensor_download(be, out, &y);
    xs_tensor *all[] = {&x, &w, &b, &r, &y};
    for (int i = 0; i < 5; i++) xs_tensor_free(be, all[i]);
    free(hx), free(hw), free(hb), free(hr);
    return rc;
}

static void check_cr(xs_backend *be, const char *bn, const cr_case *c, const float *ref,
                     float *fo) {
    const int64_t n = c->cout * ((c->tin - c->k) / c->stride + 1);
    float *co = malloc((size_t)n * sizeof *co);
    CHECK(cr_run(be, c, false, fo) == XS_OK, "%s %s fused: %s", bn, c->what, xs_error_msg());
    CHECK(cr_run(be, c, true, co) == XS_OK, "%s %s composed: %s", bn, c->what, xs_error_msg());
    CHECK(!memcmp(fo, co, (size_t)n * sizeof *fo),
          "%s %s: conv1d_add differs from conv1d then add (max %g)", bn, c->what,
          test_max_abs_diff(fo, co, n));
    if (ref) {
        const double e = test_nmse(ref, fo, n);
        CHECK(e <= TOL_MM, "%s %s: nmse %g vs ref", bn, c->what, e);
    }
    free(co);
}

/* ---- a CUDA graph replays the fused kernels ------------------------------------------- */

typedef struct gr_job {
    xs_backend *be;
    const as_case *c;
    as_bufs *t;
    xs_tensor *scratch; /* [2, 248] */
} gr_job;

static xs_status gr_fn(void *ctx) {
    gr_job *j = ctx;
    XS_TRY(as_apply(j->be, j->c, false, j->t));
    /* a conv input from h into y, the context in x's first row: the state
     * moves on with each replay */
    xs_tensor xin = xs_tensor_2d(XS_F32, j->t->y.data, 2, 256); /* [2, 8 | 248] */
    xs_tensor cx = xs_tensor_2d(XS_F32, j->t->x.data, 2, 8);
    xs_tensor src = xs_tensor_2d(XS_F32, j->t->h.data, 2, 248);
    src.stride[0] = 512;
    cx.stride[0] = 512;
    return xs_op_conv_input(j->be, &xin, &cx, &src, true, 1.0f, j->scratch);
}

static xs_status gr_composed(xs_backend *be, as_bufs *t) {
    XS_TRY(as_apply(be, &k_as[0], true, t));
    xs_tensor xin = xs_tensor_2d(XS_F32, t->y.data, 2, 256);
    xs_tensor cx = xs_tensor_2d(XS_F32, t->x.data, 2, 8);
    xs_tensor src = xs_tensor_2d(XS_F32, t->h.data, 2, 248);
    src.stride[0] = 512;
    cx.stride[0] = 512;
    xs_tensor e;
    const int64_t es[2] = {2, 248};
    XS_TRY(xs_tensor_alloc(be, XS_F32, 2, es, &e));
    xs_status rc = xs_op_elu(be, &e, &src, 1.0f);
    xs_tensor head = xs_tensor_slice(&xin, 1, 0, 8), body = xs_tensor_slice(&xin, 1, 8, 248);
    xs_tensor keep = xs_tensor_slice(&xin, 1, 248, 8);
    if (rc == XS_OK) rc = xs_op_copy(be, &head, &cx);
    if (rc == XS_OK) rc = xs_op_copy(be, &body, &e);
    if (rc == XS_OK) rc = xs_op_copy(be, &cx, &keep);
    xs_tensor_free(be, &e);
    return rc;
}

static void test_graph(xs_backend *be) {
    const as_case *c = &k_as[0];
    const int64_t n = c->rows * c->d;
    as_bufs t, e;
    CHECK(as_alloc(be, c, 51, &t) == XS_OK && as_alloc(be, c, 51, &e) == XS_OK, "graph bufs: %s",
          xs_error_msg());
    xs_graph g;
    memset(&g, 0, sizeof g);
    xs_tensor sc = {0};
    const int64_t ss[2] = {2, 248};
    CHECK(xs_tensor_alloc(be, XS_F32, 2, ss, &sc) == XS_OK, "graph scratch");
    gr_job j = {be, c, &t, &sc};
    float *a = malloc((size_t)(3 * n) * sizeof *a), *b = malloc((size_t)(3 * n) * sizeof *b);
    bool same = true;
    for (int it = 0; it < 4; it++) { /* the state (x, h) moves on each run */
        CHECK(xs_graph_run(be, &g, 7, gr_fn, &j) == XS_OK, "graph run %d: %s", it,
              xs_error_msg());
        CHECK(gr_composed(be, &e) == XS_OK, "eager composed %d: %s", it, xs_error_msg());
        xs_tensor_download(be, a, &t.x), xs_tensor_download(be, a + n, &t.h);
        xs_tensor_download(be, a + 2 * n, &t.y);
        xs_tensor_download(be, b, &e.x), xs_tensor_download(be, b + n, &e.h);
        xs_tensor_download(be, b + 2 * n, &e.y);
        same = same && !memcmp(a, b, (size_t)(3 * n) * sizeof *a);
    }
    CHECK(same, "graph-replayed fused ops (add_scaled_norm, conv_input) == eager composition "
                "over 4 runs");
    CHECK(!xs_graph_available(be) || (g.captures == 1 && g.launches >= 2),
          "the fused op was recorded and replayed (%lld captures, %lld launches)",
          (long long)g.captures, (long long)g.launches);
    xs_graph_free(be, &g);
    xs_tensor_free(be, &sc);
    as_free(be, &t), as_free(be, &e);
    free(a), free(b);
}

/* ---- hooks, bad arguments ------------------------------------------------------------- */

static int g_seen[64], g_nseen;
static void count_hook(xs_backend *be, xs_op op, int phase, ...) {
    (void)be;
    if (phase == XS_OP_HOOK_BEFORE && g_nseen < 64) g_seen[g_nseen++] = (int)op;
}

static void test_hooks(xs_backend *be, const char *bn, bool fuses) {
    float out[3 * 2 * 512];
    xs_op_hook_takes_fused_ = false;
    xs_op_hook_ = count_hook;
    g_nseen = 0;
    CHECK(as_run(be, &k_as[0], false, 5, out) == XS_OK, "hooked: %s", xs_error_msg());
    CHECK(g_nseen == 3 && g_seen[0] == XS_OP_MUL && g_seen[1] == XS_OP_ADD &&
              g_seen[2] == XS_OP_LAYER_NORM,
          "%s: a hook sees mul, add, layer_norm (%d ops)", bn, g_nseen);
    xs_op_hook_takes_fused_ = true;
    g_nseen = 0;
    CHECK(as_run(be, &k_as[0], false, 5, out) == XS_OK, "hooked: %s", xs_error_msg());
    if (fuses)
        CHECK(g_nseen == 1 && g_seen[0] == XS_OP_FUSED_ADD_SCALED_NORM,
              "%s: an opted-in hook sees the fused op (%d ops)", bn, g_nseen);
    else
        CHECK(g_nseen == 3, "%s: no fused kernel: the composition (%d ops)", bn, g_nseen);
    xs_op_hook_ = NULL;
    xs_op_hook_takes_fused_ = false;
    CHECK(!strcmp(xs_op_name(XS_OP_FUSED_ADD_SCALED_NORM), "add_scaled_norm") &&
              !strcmp(xs_op_name(XS_OP_FUSED_MATMUL_GELU), "matmul_gelu") &&
              !strcmp(xs_op_name(XS_OP_FUSED_MATMUL_CAT), "matmul_cat"),
          "fused op names");
}

static void test_bad_args(xs_backend *be) {
    const int64_t s2[2] = {2, 8}, s3[2] = {3, 8}, d8 = 8, d7 = 7;
    xs_tensor x, h, y, y3, s, s7;
    CHECK(xs_tensor_alloc(be, XS_F32, 2, s2, &x) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 2, s2, &h) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 2, s2, &y) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 2, s3, &y3) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 1, &d8, &s) == XS_OK &&
              xs_tensor_alloc(be, XS_F32, 1, &d7, &s7) == XS_OK,
          "alloc");
    float hx[16];
    test_fill_uniform(hx, 16, 9, -1, 1);
    xs_tensor_upload(be, &x, hx), xs_tensor_upload(be, &h, hx), xs_tensor_upload(be, &s, hx);
    xs_tensor xt = xs_tensor_transpose(&x, 0, 1);
    CHECK(xs_op_add_scaled_layer_norm(NULL, &y, &x, &h, &s, &s, NULL, 1e-5f) == XS_ERR_ARG,
          "NULL backend");
    CHECK(xs_op_add_scaled_layer_norm(be, &y, &x, &h, &s7, &s, NULL, 1e-5f) == XS_ERR_SHAPE &&
              strstr(xs_error_msg(), "add_scaled_layer_norm"),
          "scale of 7: %s", xs_error_msg());
    CHECK(xs_op_add_scaled_layer_norm(be, &y3, &x, &h, &s, &s, NULL, 1e-5f) == XS_ERR_SHAPE,
          "y of another shape");
    CHECK(xs_op_add_scaled_layer_norm(be, &y, &xt, &h, &s, &s, NULL, 1e-5f) == XS_ERR_SHAPE,
          "strided x");
    CHECK(xs_op_add_scaled_layer_norm(be, NULL, &x, &h, &s, NULL, &s, 1e-5f) == XS_ERR_ARG,
          "bias without weight");
    CHECK(xs_op_add_scaled_layer_norm(be, &y, &x, &h, &s, &s7, NULL, 1e-5f) == XS_ERR_SHAPE,
          "norm weight of 7");
    float back[16];
    xs_tensor_download(be, back, &x);
    CHECK(!memcmp(back, hx, sizeof hx), "a refused call leaves x as it was");
    /* matmul_gelu: what xs_op_matmul refuses, it refuses */
    CHECK(xs_op_matmul_gelu(be, &y3, &x, &s7, NULL) != XS_OK, "matmul_gelu: 1-D weight");
    CHECK(xs_op_matmul_gelu(be, &y, &x, &y3, NULL) != XS_OK, "matmul_gelu: K mismatch");
    xs_tensor *all[] = {&x, &h, &y, &y3, &s, &s7};
    for (int i = 0; i < 6; i++) xs_tensor_free(be, all[i]);
}

/* ---- a whole Mimi, fusion on vs off ------------------------------------------------ */

#define MF_FRAMES 3

/* codes [MF_FRAMES][n_q] and pcm [MF_FRAMES * 1920] of a fresh stream */
static xs_status mimi_run(mimi_model *m, const float *pcm_in, int32_t *codes, float *pcm_out) {
    mimi_stream *s = NULL;
    const int nq = mimi_model_config(m)->n_q, fs = mimi_frame_samples(mimi_model_config(m));
    XS_TRY(mimi_stream_new(m, &s));
    xs_status rc = XS_OK;
    for (int f = 0; rc == XS_OK && f < MF_FRAMES; f++) /* frame by frame: graph replays */
        rc = mimi_encode(s, pcm_in + (size_t)f * fs, fs, nq, codes + (size_t)f * nq);
    for (int f = 0; rc == XS_OK && f < MF_FRAMES; f++)
        rc = mimi_decode(s, codes + (size_t)f * nq, 1, nq, pcm_out + (size_t)f * fs);
    mimi_stream_free(s);
    return rc;
}

static void test_mimi_ab(xs_backend *be) {
    mimi_config cfg;
    mimi_config_preset(&cfg);
    uint64_t seed = 1234;
    mimi_model *m = NULL;
    CHECK(mimi_model_load_from(be, &cfg, mimi_random_source, &seed, &m) == XS_OK,
          "random preset Mimi: %s", xs_error_msg());
    if (!m) return;
    const int nq = cfg.n_q, fs = mimi_frame_samples(&cfg);
    const size_t ns = (size_t)MF_FRAMES * fs, nc = (size_t)MF_FRAMES * nq;
    float *pcm = malloc(ns * sizeof *pcm), *o1 = malloc(ns * sizeof *o1),
          *o0 = malloc(ns * sizeof *o0);
    int32_t *c1 = malloc(nc * sizeof *c1), *c0 = malloc(nc * sizeof *c0);
    for (size_t i = 0; i < ns; i++) /* speech-like: a few tones and noise */
        pcm[i] = 0.3f * sinf(0.031f * (float)i) + 0.2f * sinf(0.0071f * (float)i * (1 + i % 3));
    xs_op_fuse_set(1);
    CHECK(xs_op_fused_native(be, XS_OP_FUSED_ADD_SCALED_NORM) &&
              xs_op_fused_native(be, XS_OP_FUSED_MATMUL_GELU), "cuda fuses Mimi's ops");
    CHECK(mimi_run(m, pcm, c1, o1) == XS_OK, "Mimi fused: %s", xs_error_msg());
    xs_op_fuse_set(0);
    CHECK(mimi_run(m, pcm, c0, o0) == XS_OK, "Mimi composed: %s", xs_error_msg());
    xs_op_fuse_set(1);
    CHECK(!memcmp(c1, c0, nc * sizeof *c1), "Mimi codes: fused == composed");
    CHECK(!memcmp(o1, o0, ns * sizeof *o1), "Mimi pcm: fused == composed bit for bit (max %g)",
          test_max_abs_diff(o1, o0, (int64_t)ns));
    int distinct = 0;
    for (size_t i = 1; i < nc; i++) distinct += c1[i] != c1[0];
    double e = 0;
    for (size_t i = 0; i < ns; i++) e += fabs(o1[i]);
    CHECK(distinct > 0 && e > 0, "Mimi output is not trivial (%d distinct codes, |pcm| %g)",
          distinct, e);
    mimi_model_free(m);
    free(pcm), free(o1), free(o0), free(c1), free(c0);
}

/* ---- main ------------------------------------------------------------------------ */

int main(void) {
    xs_backend *ref = NULL, *cpu = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cpu", 2, &cpu) == XS_OK, "cpu: %s", xs_error_msg());
    if (!ref || !cpu) return test_summary("test_cuda_mimi_fused");
    if (xs_backend_cuda_usable(NULL, 0))
        CHECK(xs_backend_open("cuda", 0, &cu) == XS_OK, "cuda: %s", xs_error_msg());
    else
        printf("test_cuda_mimi_fused: cuda part skipped: no usable GPU\n");
    xs_op_fuse_set(1);
    CHECK(!xs_op_fused_native(ref, XS_OP_FUSED_ADD_SCALED_NORM) &&
              !xs_op_fused_native(cpu, XS_OP_FUSED_MATMUL_GELU), "host backends compose");
    if (cu) {
        xs_op_fuse_set(0);
        CHECK(!xs_op_fused_native(cu, XS_OP_FUSED_ADD_SCALED_NORM), "fuse off: composed");
        xs_op_fuse_set(1);
        CHECK(xs_op_fused_native(cu, XS_OP_FUSED_OVERLAP_ADD) &&
                  xs_op_fused_native(cu, XS_OP_FUSED_CONV1D_ADD),
              "overlap_add and conv1d_add fused by default");
    }

    for (size_t i = 0; i < sizeof k_as / sizeof *k_as; i++) {
        const as_case *c = &k_as[i];
        const size_t n3 = (size_t)(3 * c->rows * c->d);
        float *r = malloc(n3 * sizeof *r), *f = malloc(n3 * sizeof *f);
        check_as(ref, "ref", c, NULL, r);
        check_as(cpu, "cpu", c, r, f);
        if (cu) check_as(cu, "cuda", c, r, f);
        free(r), free(f);
    }
    for (size_t i = 0; i < sizeof k_mg / sizeof *k_mg; i++) {
        const mg_case *c = &k_mg[i];
        const size_t n = (size_t)(c->m * c->n);
        float *r = malloc(n * sizeof *r), *f = malloc(n * sizeof *f);
        check_mg(ref, "ref", c, NULL, r);
        if (i < 2 || i == 4) check_mg(cpu, "cpu", c, r, f); /* cpu: a few (2-core CI) */
        if (cu) check_mg(cu, "cuda", c, r, f);
        free(r), free(f);
    }
    for (size_t i = 0; i < sizeof k_mc / sizeof *k_mc; i++) {
        const mc_case *c = &k_mc[i];
        const size_t n = (size_t)(c->m * 3 * c->d);
        float *r = malloc(n * sizeof *r), *f = malloc(n * sizeof *f);
        check_mc(ref, "ref", c, NULL, r);
        if (i == 0 || i == 3) check_mc(cpu, "cpu", c, r, f);
        if (cu) check_mc(cu, "cuda", c, r, f);
        free(r), free(f);
    }
    for (size_t i = 0; i < sizeof k_ci / sizeof *k_ci; i++) {
        const ci_case *c = &k_ci[i];
        const size_t n = (size_t)(3 * c->c * (c->p + c->t) + c->c * c->p);
        float *r = malloc(n * sizeof *r), *f = malloc(n * sizeof *f);
        check_ci(ref, "ref", c, NULL, r);
        check_ci(cpu, "cpu", c, r, f);
        if (cu) check_ci(cu, "cuda", c, r, f);
        free(r), free(f);
    }
    for (size_t i = 0; i < sizeof k_ol / sizeof *k_ol; i++) {
        const ol_case *c = &k_ol[i];
        const size_t n = (size_t)((3 * c->t + 1) * c->c * c->s);
        float *r = malloc(n * sizeof *r), *f = malloc(n * sizeof *f);
        check_ol(ref, "ref", c, NULL, r);
        check_ol(cpu, "cpu", c, r, f);
        if (cu) check_ol(cu, "cuda", c, r, f);
        free(r), free(f);
    }
    for (size_t i = 0; i < sizeof k_cr / sizeof *k_cr; i++) {
        const cr_case *c = &k_cr[i];
        const size_t n = (size_t)(c->cout * ((c->tin - c->k) / c->stride + 1));
        float *r = malloc(n * sizeof *r), *f = malloc(n * sizeof *f);
        check_cr(ref, "ref", c, NULL, r);
        if (i != 2) check_cr(cpu, "cpu", c, r, f); /* (the big one: ref and cuda only) */
        if (cu) check_cr(cu, "cuda", c, r, f);
        free(r), free(f);
    }
    if (cu) { /* a row's result does not depend on the other rows */
        mg_case one = k_mg[2];
        one.m = 1;
        float *many = malloc((size_t)(160 * 2048) * sizeof *many);
        float *alone = malloc(2048 * sizeof *alone);
        CHECK(mg_run(cu, &k_mg[2], false, many) == XS_OK && mg_run(cu, &one, false, alone) == XS_OK,
              "rows: %s", xs_error_msg());
        CHECK(!memcmp(many, alone, 2048 * sizeof *alone),
              "matmul_gelu: row 0 of 160 (tiled) equals the row alone (few-rows kernel)");
        free(many), free(alone);
    }
    test_hooks(cpu, "cpu", false);
    test_bad_args(cpu);
    test_graph(cpu); /* no graphs on cpu: the same calls, eager */
    if (cu) {
        test_hooks(cu, "cuda", true);
        test_bad_args(cu);
        test_graph(cu);
        test_mimi_ab(cu);
    }
    if (cu) xs_backend_close(cu);
    xs_backend_close(cpu);
    xs_backend_close(ref);
    return test_summary("test_cuda_mimi_fused");
}
