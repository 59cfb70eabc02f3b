/*
 * ops_fused.c — the fused wrappers of ops.h (add_rms_norm, add_layer_norm,
 * embedding_sum).
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

static bool fuse_on(void) {
    const int m = atomic_load(&g_fuse_mode);
    if (m >= 0) return m == 1;
    int e = atomic_load(&g_fuse_env);
    if (e < 0) { /* every thread computes the same value */
        const char *v = getenv("XSWARM_FUSE");
        e = !(v && !strcmp(v, "0"));
        atomic_store(&g_fuse_env, e);
    }
    return e == 1;
}

bool xs_op_fused_native(xs_backend *be, xs_op op) {
    if (!be || !be->iface || !fuse_on()) return false;
    if (xs_op_hook_ && !xs_op_hook_takes_fused_) return false;
    if (xs_fault_active()) return false;
    if (op == XS_OP_FUSED_ADD_NORM) return be->iface->add_norm != NULL;
    if (op == XS_OP_FUSED_EMBEDDING_SUM) return be->iface->embedding_sum != NULL;
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
