/*
 * ops_fused.c — the fused wrappers of ops.h (add_rms_norm, add_layer_norm,
 * embedding_sum; Mimi's add_scaled_layer_norm, matmul_gelu, matmul_cat,
 * conv_input, overlap_add and conv1d_add).
 *
 * Why: a batch-1 LM step on a GPU is ~1000 small kernels, and even replayed
 * from a CUDA graph each costs a few microseconds of launch and drain; a
 * residual add followed by the next sublayer's norm, or 17 embedding
 * lookups joined by 16 adds, are one pass over the same row each.
 *
 * Each fused op is DEFINED by its composition of single ops (written out in
 * run_*_composed below). The wrapper runs that composition when the backend
 * has no fused kernel, with XSWARM_FUSE=0 (A/B timing), and while an op hook
 * (diagnose's recorder) or fault injection is active: those act per xs_op_*
 * call and must see, and be able to corrupt, the usual add / norm /
 * embedding. A hook that declares it can take fused ops
 * (xs_op_hook_takes_fused_: the profiler) gets the fused call instead, with
 * the op id XS_OP_FUSED_* and the backend op's argument list.
 *
 * Like ops.c, the checks read shapes and dtypes only, never values, and the
 * same checks run on both paths, so an argument error does not depend on the
 * backend.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "backend/fault.h"
#include "backend/op_hook.h"
#include "backend/ops.h"

/* -1: read XSWARM_FUSE on first use; 0 off; 1 on. */
static _Atomic int g_fuse_mode = -1;
static _Atomic int g_fuse_env = -1;

void xs_op_fuse_set(int mode) { atomic_store(&g_fuse_mode, mode < 0 ? -1 : mode ? 1 : 0); }

/* Whether the switch `name` is on (anything but "0", unset included), read
 * once into *cache; every thread computes the same value. */
static bool env_on(_Atomic int *cache, const char *name) {
    int e = atomic_load(cache);
    if (e < 0) {
        const char *v = getenv(name);
        e = !(v && !strcmp(v, "0"));
        atomic_store(cache, e);
    }
    return e == 1;
}

static bool fuse_on(void) {
    const int m = atomic_load(&g_fuse_mode);
    return m >= 0 ? m == 1 : env_on(&g_fuse_env, "XSWARM_FUSE");
}

/* XSWARM_FUSE_MIMI: 0 composes Mimi's fused ops (ids
 * XS_OP_FUSED_ADD_SCALED_NORM and up, and with them mimi_seanet.c's fused
 * forms), for an A/B of the codec alone while the LM keeps its fusions
 * (embedding_sum, which the RVQ decode also calls, included). */
static _Atomic int g_fuse_mimi = -1;

static bool fuse_mimi_on(void) { return env_on(&g_fuse_mimi, "XSWARM_FUSE_MIMI"); }

bool xs_op_fused_native(xs_backend *be, xs_op op) {
    if (!be || !be->iface || !fuse_on()) return false;
    if (xs_op_hook_ && !xs_op_hook_takes_fused_) return false;
    if (xs_fault_active()) return false;
    if (op == XS_OP_FUSED_ADD_NORM) return be->iface->add_norm != NULL;
    if (op == XS_OP_FUSED_EMBEDDING_SUM) return be->iface->embedding_sum != NULL;
    if (op == XS_OP_FUSED_ADD_SCALED_NORM)
        return be->iface->add_scaled_norm != NULL && fuse_mimi_on();
    if (op == XS_OP_FUSED_MATMUL_GELU) return be->iface->matmul_gelu != NULL && fuse_mimi_on();
    if (op == XS_OP_FUSED_MATMUL_CAT) return be->iface->matmul_cat != NULL && fuse_mimi_on();
    if (op == XS_OP_FUSED_CONV_INPUT) return be->iface->conv_input != NULL && fuse_mimi_on();
    if (op == XS_OP_FUSED_OVERLAP_ADD) return be->iface->overlap_add != NULL && fuse_mimi_on();
    if (op == XS_OP_FUSED_CONV1D_ADD) return be->iface->conv1d_add != NULL && fuse_mimi_on();
    return false;
}

/* ---- checks -------------------------------------------------------------------- */

static const char *shape_of(const xs_tensor *t, char *buf, size_t n) {
    return xs_tensor_shape_str(t, buf, n);
}

static xs_status need_f32(const char *op, const char *role, const xs_tensor *t) {
    if (!t) return xs_error(XS_ERR_ARG, "%s: %s is NULL", op, role);
    if (!t->data && xs_tensor_numel(t) > 0)
        return xs_error(XS_ERR_ARG, "%s: %s has no data (unallocated or invalid view)", op, role);
    if (t->dtype != XS_F32)
        return xs_error(XS_ERR_DTYPE, "%s: %s is %s (expected f32)", op, role,
                        xs_dtype_name(t->dtype));
    return XS_OK;
}

static int64_t inner_of(const xs_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

static xs_status need_vec(const char *op, const char *role, const xs_tensor *t, int64_t n) {
    XS_TRY(need_f32(op, role, t));
    if (xs_tensor_numel(t) != n || !xs_tensor_is_contiguous(t))
        return xs_error(XS_ERR_SHAPE, "%s: %s: expected a contiguous vector of %lld values", op,
                        role, (long long)n);
    return XS_OK;
}

static xs_status check_add_norm(const char *op, xs_backend *be, const xs_tensor *y,
                                const xs_tensor *x, const xs_tensor *h, const xs_tensor *w,
                                const xs_tensor *b) {
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    XS_TRY(need_f32(op, "y", y));
    XS_TRY(need_f32(op, "x", x));
    XS_TRY(need_f32(op, "h", h));
    char sa[96], sb[96], sc[96];
    if (x->ndim < 1) return xs_error(XS_ERR_SHAPE, "%s: x: expected at least 1 dim", op);
    if (!xs_tensor_same_shape(x, h) || !xs_tensor_same_shape(x, y))
        return xs_error(XS_ERR_SHAPE, "%s: x %s, h %s and y %s must have one shape", op,
                        shape_of(x, sa, sizeof sa), shape_of(h, sb, sizeof sb),
                        shape_of(y, sc, sizeof sc));
    if (!xs_tensor_is_contiguous(x) || !xs_tensor_is_contiguous(y))
        return xs_error(XS_ERR_SHAPE, "%s: x and y must be contiguous (x is written in place)", op);
    XS_TRY(need_vec(op, "w", w, inner_of(x)));
    if (b) XS_TRY(need_vec(op, "b", b, inner_of(x)));
    return XS_OK;
}

/* ---- add + norm ------------------------------------------------------------------- */

static xs_status add_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                          const xs_tensor *w, const xs_tensor *b, float eps, bool layer) {
    if (xs_op_fused_native(be, XS_OP_FUSED_ADD_NORM) && xs_tensor_is_contiguous(h)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_ADD_NORM, XS_OP_HOOK_BEFORE, y, x, h, w, b, eps, layer);
        XS_TRY(be->iface->add_norm(be, y, x, h, w, b, eps, layer));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_ADD_NORM, XS_OP_HOOK_AFTER, y, x, h, w, b, eps, layer);
        return XS_OK;
    }
    /* the definition */
    XS_TRY(xs_op_add(be, x, x, h));
    if (layer) return xs_op_layer_norm(be, y, x, w, b, eps);
    return xs_op_rms_norm(be, y, x, w, eps);
}

xs_status xs_op_add_rms_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                             const xs_tensor *alpha, float eps) {
    XS_TRY(check_add_norm("add_rms_norm", be, y, x, h, alpha, NULL));
    return add_norm(be, y, x, h, alpha, NULL, eps, false);
}

xs_status xs_op_add_layer_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                               const xs_tensor *w, const xs_tensor *b, float eps) {
    XS_TRY(check_add_norm("add_layer_norm", be, y, x, h, w, b));
    return add_norm(be, y, x, h, w, b, eps, true);
}

/* ---- embedding sum ---------------------------------------------------------------- */

#define EMB_SUM_MAX 1024

static xs_status check_table(int i, const xs_tensor *t, int64_t d) {
    const char *op = "embedding_sum";
    if (!t) return xs_error(XS_ERR_ARG, "%s: table %d is NULL", op, i);
    const char *nm = t->name ? t->name : "";
    switch (t->dtype) {
    case XS_F32: case XS_F16: case XS_BF16: case XS_Q8_0: case XS_Q4_0: break;
    default:
        return xs_error(XS_ERR_DTYPE, "%s: table %d '%s' is %s (expected f32, f16, bf16, q8_0 "
                        "or q4_0)", op, i, nm, xs_dtype_name(t->dtype));
    }
    if (t->ndim != 2 || !xs_tensor_is_contiguous(t) || (!t->data && xs_tensor_numel(t) > 0))
        return xs_error(XS_ERR_SHAPE, "%s: table %d '%s': expected a contiguous 2-D table", op, i,
                        nm);
    if (t->shape[1] != d)
        return xs_error(XS_ERR_SHAPE, "%s: table %d '%s' is %lld wide, y %lld", op, i, nm,
                        (long long)t->shape[1], (long long)d);
    if (xs_dtype_is_quantized(t->dtype) && d % XS_QK)
        return xs_error(XS_ERR_SHAPE, "%s: table %d '%s': width %lld is not a multiple of %d", op,
                        i, nm, (long long)d, XS_QK);
    return XS_OK;
}

static xs_status check_embedding_sum(xs_backend *be, const xs_tensor *y, int count,
                                     const xs_tensor *const *tables, const xs_tensor *const *ids,
                                     bool accumulate, const xs_tensor *scratch) {
    const char *op = "embedding_sum";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    if (count < 1 || count > EMB_SUM_MAX)
        return xs_error(XS_ERR_ARG, "%s: %d terms (expected 1..%d)", op, count, EMB_SUM_MAX);
    if (!tables || !ids) return xs_error(XS_ERR_ARG, "%s: tables or ids is NULL", op);
    XS_TRY(need_f32(op, "y", y));
    if (y->ndim != 2 || !xs_tensor_is_contiguous(y))
        return xs_error(XS_ERR_SHAPE, "%s: y: expected a contiguous [n, D]", op);
    const int64_t n = y->shape[0], d = y->shape[1];
    for (int i = 0; i < count; i++) {
        XS_TRY(check_table(i, tables[i], d));
        const xs_tensor *id = ids[i];
        if (!id) return xs_error(XS_ERR_ARG, "%s: ids %d is NULL", op, i);
        if (id->dtype != XS_I32 || id->ndim != 1 || id->shape[0] != n ||
            (!id->data && n > 0))
            return xs_error(XS_ERR_SHAPE, "%s: ids %d: expected i32 [%lld] (one per row of y)", op,
                            i, (long long)n);
    }
    if (count > 1 || accumulate) { /* the composition needs it, whichever path runs */
        XS_TRY(need_f32(op, "scratch", scratch));
        if (!xs_tensor_same_shape(scratch, y) || !xs_tensor_is_contiguous(scratch))
            return xs_error(XS_ERR_SHAPE, "%s: scratch: expected a contiguous f32 [%lld, %lld]",
                            op, (long long)n, (long long)d);
    }
    return XS_OK;
}

xs_status xs_op_embedding_sum(xs_backend *be, xs_tensor *y, int count,
                              const xs_tensor *const *tables, const xs_tensor *const *ids,
                              bool accumulate, xs_tensor *scratch) {
    XS_TRY(check_embedding_sum(be, y, count, tables, ids, accumulate, scratch));
    if (xs_op_fused_native(be, XS_OP_FUSED_EMBEDDING_SUM)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_EMBEDDING_SUM, XS_OP_HOOK_BEFORE, y, count, tables, ids,
                        accumulate);
        XS_TRY(be->iface->embedding_sum(be, y, count, tables, ids, accumulate));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_EMBEDDING_SUM, XS_OP_HOOK_AFTER, y, count, tables, ids,
                        accumulate);
        return XS_OK;
    }
    /* the definition */
    for (int i = 0; i < count; i++) {
        if (i == 0 && !accumulate) {
            XS_TRY(xs_op_embedding(be, y, tables[0], ids[0]));
            continue;
        }
        XS_TRY(xs_op_embedding(be, scratch, tables[i], ids[i]));
        XS_TRY(xs_op_add(be, y, y, scratch));
    }
    return XS_OK;
}

/* ---- Mimi: layer scale + residual (+ norm), matmul + gelu ------------------------- */

xs_status xs_op_add_scaled_layer_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, xs_tensor *h,
                                      const xs_tensor *s, const xs_tensor *w, const xs_tensor *b,
                                      float eps) {
    const char *op = "add_scaled_layer_norm";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    XS_TRY(need_f32(op, "x", x));
    XS_TRY(need_f32(op, "h", h));
    char sa[96], sb[96];
    if (x->ndim < 1) return xs_error(XS_ERR_SHAPE, "%s: x: expected at least 1 dim", op);
    if (!xs_tensor_same_shape(x, h))
        return xs_error(XS_ERR_SHAPE, "%s: x %s and h %s must have one shape", op,
                        shape_of(x, sa, sizeof sa), shape_of(h, sb, sizeof sb));
    if (!xs_tensor_is_contiguous(x) || !xs_tensor_is_contiguous(h))
        return xs_error(XS_ERR_SHAPE, "%s: x and h must be contiguous (both are written)", op);
    XS_TRY(need_vec(op, "s", s, inner_of(x)));
    if (w) {
        XS_TRY(need_f32(op, "y", y));
        if (!xs_tensor_same_shape(x, y) || !xs_tensor_is_contiguous(y))
            return xs_error(XS_ERR_SHAPE, "%s: y %s: expected x's shape %s, contiguous", op,
                            shape_of(y, sa, sizeof sa), shape_of(x, sb, sizeof sb));
        XS_TRY(need_vec(op, "w", w, inner_of(x)));
        if (b) XS_TRY(need_vec(op, "b", b, inner_of(x)));
    } else if (b) {
        return xs_error(XS_ERR_ARG, "%s: b without w", op);
    }
    if (xs_op_fused_native(be, XS_OP_FUSED_ADD_SCALED_NORM)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_ADD_SCALED_NORM, XS_OP_HOOK_BEFORE, y, x, h, s, w, b,
                        eps);
        XS_TRY(be->iface->add_scaled_norm(be, y, x, h, s, w, b, eps));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_ADD_SCALED_NORM, XS_OP_HOOK_AFTER, y, x, h, s, w, b,
                        eps);
        return XS_OK;
    }
    /* the definition */
    XS_TRY(xs_op_mul(be, h, h, s));
    XS_TRY(xs_op_add(be, x, x, h));
    return w ? xs_op_layer_norm(be, y, x, w, b, eps) : XS_OK;
}

xs_status xs_op_matmul_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                            const xs_tensor *bias) {
    const char *op = "matmul_gelu";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    /* Only arguments xs_op_matmul accepts reach the fused kernel; anything
     * else runs the composition, whose xs_op_matmul reports it: an argument
     * error reads the same on every backend. */
    const bool fusable = w && x && y && y->dtype == XS_F32 && x->dtype == XS_F32 &&
                         w->ndim == 2 && x->ndim >= 1 && y->ndim >= 1 && x->data && y->data &&
                         w->data && xs_tensor_is_contiguous(y) &&
                         x->shape[x->ndim - 1] == w->shape[1] &&
                         y->shape[y->ndim - 1] == w->shape[0] &&
                         xs_tensor_numel(y) / w->shape[0] == xs_tensor_numel(x) / w->shape[1] &&
                         (!bias || (bias->dtype == XS_F32 && bias->data &&
                                    xs_tensor_numel(bias) == w->shape[0] &&
                                    xs_tensor_is_contiguous(bias)));
    if (fusable && w->shape[0] > 0 && w->shape[1] > 0 &&
        xs_op_fused_native(be, XS_OP_FUSED_MATMUL_GELU)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_MATMUL_GELU, XS_OP_HOOK_BEFORE, y, x, w, bias);
        XS_TRY(be->iface->matmul_gelu(be, y, x, w, bias));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_MATMUL_GELU, XS_OP_HOOK_AFTER, y, x, w, bias);
        return XS_OK;
    }
    /* the definition */
    XS_TRY(xs_op_matmul(be, y, x, w, bias));
    return xs_op_gelu(be, y, y);
}

#define MATMUL_CAT_MAX 4

xs_status xs_op_matmul_cat(xs_backend *be, xs_tensor *y, const xs_tensor *x, int count,
                           const xs_tensor *const *ws, xs_tensor *scratch) {
    const char *op = "matmul_cat";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    if (count < 1 || count > MATMUL_CAT_MAX || !ws)
        return xs_error(XS_ERR_ARG, "%s: %d weights (expected 1..%d)", op, count,
                        MATMUL_CAT_MAX);
    XS_TRY(need_f32(op, "x", x));
    XS_TRY(need_f32(op, "y", y));
    XS_TRY(need_f32(op, "scratch", scratch));
    if (x->ndim != 2 || y->ndim != 2 || !xs_tensor_is_contiguous(y) ||
        !xs_tensor_is_contiguous(scratch))
        return xs_error(XS_ERR_SHAPE, "%s: expected a 2-D x, a contiguous 2-D y and a "
                        "contiguous scratch", op);
    const int64_t m = x->shape[0], k = x->shape[1];
    int64_t ntot = 0, nmax = 0;
    for (int i = 0; i < count; i++) {
        const xs_tensor *w = ws[i];
        if (!w || w->ndim != 2 || (!w->data && xs_tensor_numel(w) > 0))
            return xs_error(XS_ERR_SHAPE, "%s: weight %d: expected a 2-D tensor", op, i);
        if (w->shape[1] != k)
            return xs_error(XS_ERR_SHAPE, "%s: weight %d is %lld wide, x %lld", op, i,
                            (long long)w->shape[1], (long long)k);
        ntot += w->shape[0];
        if (w->shape[0] > nmax) nmax = w->shape[0];
    }
    if (y->shape[0] != m || y->shape[1] != ntot)
        return xs_error(XS_ERR_SHAPE, "%s: y is [%lld, %lld], expected [%lld, %lld]", op,
                        (long long)y->shape[0], (long long)y->shape[1], (long long)m,
                        (long long)ntot);
    if (xs_tensor_numel(scratch) < m * nmax)
        return xs_error(XS_ERR_SHAPE, "%s: scratch holds %lld values, needs %lld", op,
                        (long long)xs_tensor_numel(scratch), (long long)(m * nmax));
    if (xs_op_fused_native(be, XS_OP_FUSED_MATMUL_CAT)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_MATMUL_CAT, XS_OP_HOOK_BEFORE, y, x, count, ws);
        XS_TRY(be->iface->matmul_cat(be, y, x, count, ws, scratch));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_MATMUL_CAT, XS_OP_HOOK_AFTER, y, x, count, ws);
        return XS_OK;
    }
    /* the definition */
    int64_t off = 0;
    for (int i = 0; i < count; i++) {
        const int64_t n = ws[i]->shape[0];
        xs_tensor part = xs_tensor_2d(XS_F32, scratch->data, m, n);
        xs_tensor blk = xs_tensor_2d(XS_F32, (float *)y->data + off, m, n);
        blk.stride[0] = ntot; /* y's column block */
        XS_TRY(xs_op_matmul(be, &part, x, ws[i], NULL));
        XS_TRY(xs_op_copy(be, &blk, &part));
        off += n;
    }
    return XS_OK;
}

static xs_status need_2d_f32(const char *op, const char *role, const xs_tensor *t) {
    XS_TRY(need_f32(op, role, t));
    if (t->ndim != 2) return xs_error(XS_ERR_SHAPE, "%s: %s: expected 2 dims", op, role);
    return XS_OK;
}

xs_status xs_op_conv_input(xs_backend *be, xs_tensor *xin, xs_tensor *ctx, const xs_tensor *x,
                           bool elu, float alpha, xs_tensor *scratch) {
    const char *op = "conv_input";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    XS_TRY(need_2d_f32(op, "xin", xin));
    XS_TRY(need_2d_f32(op, "ctx", ctx));
    XS_TRY(need_2d_f32(op, "x", x));
    const int64_t C = x->shape[0], T = x->shape[1], P = ctx->shape[1];
    if (ctx->shape[0] != C || xin->shape[0] != C || xin->shape[1] != P + T || P < 1 || T < 1)
        return xs_error(XS_ERR_SHAPE, "%s: ctx [%lld, %lld], x [%lld, %lld], xin [%lld, %lld] "
                        "(expected [C, P], [C, T], [C, P + T], P, T >= 1)", op,
                        (long long)ctx->shape[0], (long long)P, (long long)C, (long long)T,
                        (long long)xin->shape[0], (long long)xin->shape[1]);
    if (!xs_tensor_is_contiguous(xin))
        return xs_error(XS_ERR_SHAPE, "%s: xin must be contiguous", op);
    if (elu) {
        XS_TRY(need_2d_f32(op, "scratch", scratch));
        if (!xs_tensor_same_shape(scratch, x) || !xs_tensor_is_contiguous(scratch))
            return xs_error(XS_ERR_SHAPE, "%s: scratch: expected a contiguous [%lld, %lld]", op,
                            (long long)C, (long long)T);
    }
    if (xs_op_fused_native(be, XS_OP_FUSED_CONV_INPUT)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_CONV_INPUT, XS_OP_HOOK_BEFORE, xin, ctx, x, elu,
                        (double)alpha);
        XS_TRY(be->iface->conv_input(be, xin, ctx, x, elu, alpha));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_CONV_INPUT, XS_OP_HOOK_AFTER, xin, ctx, x, elu,
                        (double)alpha);
        return XS_OK;
    }
    /* the definition */
    const xs_tensor *body_src = x;
    if (elu) {
        XS_TRY(xs_op_elu(be, scratch, x, alpha));
        body_src = scratch;
    }
    xs_tensor head = xs_tensor_slice(xin, 1, 0, P), body = xs_tensor_slice(xin, 1, P, T);
    XS_TRY(xs_op_copy(be, &head, ctx));
    XS_TRY(xs_op_copy(be, &body, body_src));
    xs_tensor keep = xs_tensor_slice(xin, 1, T, P);
    return xs_op_copy(be, ctx, &keep);
}

/* A [C, T, S] view of taps half*S .. half*S + S-1 of col [T, C*2S]. */
static xs_tensor ola_taps(const xs_tensor *col, int64_t C, int64_t T, int64_t S, int half) {
    int64_t shape[3] = {C, T, S};
    xs_tensor v = xs_tensor_make(XS_F32, 3, shape, (float *)col->data + half * S);
    v.stride[0] = 2 * S;
    v.stride[1] = C * 2 * S;
    v.stride[2] = 1;
    return v;
}

xs_status xs_op_overlap_add(xs_backend *be, xs_tensor *y, const xs_tensor *col, xs_tensor *tail,
                            xs_tensor *scratch) {
    const char *op = "overlap_add";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    XS_TRY(need_2d_f32(op, "y", y));
    XS_TRY(need_2d_f32(op, "col", col));
    XS_TRY(need_2d_f32(op, "tail", tail));
    XS_TRY(need_2d_f32(op, "scratch", scratch));
    const int64_t C = tail->shape[0], S = tail->shape[1], T = col->shape[0];
    if (S < 1 || T < 1 || col->shape[1] != C * 2 * S || y->shape[0] != C ||
        y->shape[1] != T * S || !xs_tensor_same_shape(scratch, y))
        return xs_error(XS_ERR_SHAPE, "%s: col [%lld, %lld], tail [%lld, %lld], y [%lld, %lld] "
                        "(expected [T, C*2S], [C, S], [C, T*S]; scratch as y)", op,
                        (long long)T, (long long)col->shape[1], (long long)C, (long long)S,
                        (long long)y->shape[0], (long long)y->shape[1]);
    if (!xs_tensor_is_contiguous(y) || !xs_tensor_is_contiguous(col) ||
        !xs_tensor_is_contiguous(scratch))
        return xs_error(XS_ERR_SHAPE, "%s: y, col and scratch must be contiguous", op);
    if (xs_op_fused_native(be, XS_OP_FUSED_OVERLAP_ADD)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_OVERLAP_ADD, XS_OP_HOOK_BEFORE, y, col, tail);
        XS_TRY(be->iface->overlap_add(be, y, col, tail));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_OVERLAP_ADD, XS_OP_HOOK_AFTER, y, col, tail);
        return XS_OK;
    }
    /* the definition */
    xs_tensor A = ola_taps(col, C, T, S, 0), B = ola_taps(col, C, T, S, 1);
    int64_t s3[3] = {C, T, S}, t3[3] = {C, 1, S};
    xs_tensor y3, q3, tail3;
    XS_TRY(xs_tensor_reshape(y, 3, s3, &y3));
    XS_TRY(xs_tensor_reshape(scratch, 3, s3, &q3));
    tail3 = xs_tensor_make(XS_F32, 3, t3, tail->data);
    tail3.stride[0] = tail->stride[0];
    tail3.stride[1] = tail->stride[0]; /* a size-1 dim */
    tail3.stride[2] = tail->stride[1];
    XS_TRY(xs_op_copy(be, &y3, &A));
    xs_tensor q0 = xs_tensor_slice(&q3, 1, 0, 1);
    XS_TRY(xs_op_copy(be, &q0, &tail3));
    if (T > 1) {
        xs_tensor qr = xs_tensor_slice(&q3, 1, 1, T - 1), br = xs_tensor_slice(&B, 1, 0, T - 1);
        XS_TRY(xs_op_copy(be, &qr, &br));
    }
    XS_TRY(xs_op_add(be, y, y, scratch));
    xs_tensor blast = xs_tensor_slice(&B, 1, T - 1, 1);
    return xs_op_copy(be, &tail3, &blast);
}

/* What xs_op_conv1d accepts (ops.c), restated without the messages. */
static bool conv1d_args_ok(const xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                           const xs_tensor *bias, int stride, int dilation, int groups) {
    if (!y || !x || !w || y->dtype != XS_F32 || x->dtype != XS_F32 || w->dtype != XS_F32 ||
        x->ndim != 2 || w->ndim != 3 || y->ndim != 2 || stride < 1 || dilation < 1 ||
        groups < 1 || !x->data || !w->data || !y->data)
        return false;
    const int64_t cin = x->shape[0], tin = x->shape[1], cout = w->shape[0], kk = w->shape[2];
    if (cin % groups || cout % groups || w->shape[1] != cin / groups || kk < 1) return false;
    const int64_t span = (int64_t)dilation * (kk - 1) + 1;
    if (tin < span) return false;
    if (y->shape[0] != cout || y->shape[1] != (tin - span) / stride + 1 ||
        !xs_tensor_is_contiguous(y))
        return false;
    return !bias || (bias->dtype == XS_F32 && bias->data && xs_tensor_numel(bias) == cout &&
                     xs_tensor_is_contiguous(bias));
}

xs_status xs_op_conv1d_add(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                           const xs_tensor *bias, int stride, int dilation, int groups,
                           const xs_tensor *r) {
    const char *op = "conv1d_add";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    XS_TRY(need_f32(op, "r", r));
    if (!y || !xs_tensor_same_shape(r, y) || !xs_tensor_is_contiguous(r) || r->data == y->data)
        return xs_error(XS_ERR_SHAPE, "%s: r: expected a contiguous tensor of y's shape, not y",
                        op);
    /* arguments xs_op_conv1d refuses run the composition, which reports them */
    if (conv1d_args_ok(y, x, w, bias, stride, dilation, groups) &&
        xs_op_fused_native(be, XS_OP_FUSED_CONV1D_ADD)) {
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_CONV1D_ADD, XS_OP_HOOK_BEFORE, y, x, w, bias, stride,
                        dilation, groups, r);
        XS_TRY(be->iface->conv1d_add(be, y, x, w, bias, stride, dilation, groups, r));
        XS_OP_HOOK_CALL(be, XS_OP_FUSED_CONV1D_ADD, XS_OP_HOOK_AFTER, y, x, w, bias, stride,
                        dilation, groups, r);
        return XS_OK;
    }
    /* the definition */
    XS_TRY(xs_op_conv1d(be, y, x, w, bias, stride, dilation, groups));
    return xs_op_add(be, y, r, y);
}
