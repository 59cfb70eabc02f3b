/*
 * ops.c — the xs_op_* wrappers model code calls, and backend memory helpers.
 *
 * Each wrapper: (1) checks dtypes and shapes on the host (never values: a
 * device backend must be able to capture a frame, so nothing here reads
 * tensor data); (2) runs the backend's op, or `ref` when a host-memory
 * backend declines it (op pointer NULL), or fails with XS_ERR_UNSUPPORTED;
 * (3) calls xs_fault_after() — the one hook point for fault injection.
 *
 * Outputs must be contiguous, except for copy and fill (whose purpose is to
 * write into views) and rope (in place on a possibly strided view).
 */
#include "backend/ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/fault.h"
#include "backend/op_hook.h"
#include "backend/ref/ref.h"

/* ---- op names -------------------------------------------------------------- */

static const char *const k_op_names[XS_OP_COUNT] = {
    "matmul", "conv1d", "conv_transpose1d", "layer_norm", "rms_norm", "rope", "softmax",
    "kv_store", "attention", "elu", "gelu", "silu_mul", "embedding", "add", "mul", "scale",
    "copy", "fill", "argmax", "sample_topk",
};

const char *xs_op_name(xs_op op) {
    if (op == XS_OP_FUSED_ADD_NORM) return "add_norm"; /* fused (ops_fused.c) */
    if (op == XS_OP_FUSED_EMBEDDING_SUM) return "embedding_sum";
    if (op == XS_OP_FUSED_ADD_SCALED_NORM) return "add_scaled_norm";
    if (op == XS_OP_FUSED_MATMUL_GELU) return "matmul_gelu";
    if (op == XS_OP_FUSED_MATMUL_CAT) return "matmul_cat";
    if (op == XS_OP_FUSED_CONV_INPUT) return "conv_input";
    if (op == XS_OP_FUSED_OVERLAP_ADD) return "overlap_add";
    if (op == XS_OP_FUSED_CONV1D_ADD) return "conv1d_add";
    if ((int)op < 0 || op >= XS_OP_COUNT) return "?";
    return k_op_names[op];
}

int xs_op_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < XS_OP_COUNT; i++)
        if (!strcmp(name, k_op_names[i])) return i;
    return -1;
}

/* ---- validation helpers ------------------------------------------------------ */

/* "x 'lm.layers.0.w' [64, 32] bf16" (the role names the argument, the name the tensor). */
static const char *describe(const xs_tensor *t, const char *role, char *buf, size_t n) {
    char shp[96];
    xs_tensor_shape_str(t, shp, sizeof shp);
    if (t->name)
        snprintf(buf, n, "%s '%s' %s %s", role, t->name, shp, xs_dtype_name(t->dtype));
    else
        snprintf(buf, n, "%s %s %s", role, shp, xs_dtype_name(t->dtype));
    return buf;
}

static xs_status need_tensor(xs_op op, const char *role, const xs_tensor *t) {
    if (!t) return xs_error(XS_ERR_ARG, "%s: %s is NULL", xs_op_name(op), role);
    if (!t->data && xs_tensor_numel(t) > 0)
        return xs_error(XS_ERR_ARG, "%s: %s has no data (unallocated or invalid view)",
                        xs_op_name(op), role);
    return XS_OK;
}

static xs_status need_dtype(xs_op op, const char *role, const xs_tensor *t, xs_dtype dt) {
    XS_TRY(need_tensor(op, role, t));
    char d[200];
    if (t->dtype != dt)
        return xs_error(XS_ERR_DTYPE, "%s: %s: expected %s", xs_op_name(op),
                        describe(t, role, d, sizeof d), xs_dtype_name(dt));
    return XS_OK;
}

static xs_status need_ndim(xs_op op, const char *role, const xs_tensor *t, int ndim) {
    char d[200];
    if (t->ndim != ndim)
        return xs_error(XS_ERR_SHAPE, "%s: %s: expected %d dims", xs_op_name(op),
                        describe(t, role, d, sizeof d), ndim);
    return XS_OK;
}

static xs_status need_min_ndim(xs_op op, const char *role, const xs_tensor *t, int ndim) {
    char d[200];
    if (t->ndim < ndim)
        return xs_error(XS_ERR_SHAPE, "%s: %s: expected at least %d dims", xs_op_name(op),
                        describe(t, role, d, sizeof d), ndim);
    return XS_OK;
}

static xs_status need_contiguous(xs_op op, const char *role, const xs_tensor *t) {
    char d[200];
    if (!xs_tensor_is_contiguous(t))
        return xs_error(XS_ERR_SHAPE, "%s: %s must be contiguous", xs_op_name(op),
                        describe(t, role, d, sizeof d));
    return XS_OK;
}

static xs_status need_dim(xs_op op, const char *role, const xs_tensor *t, int dim, int64_t want,
                          const char *why) {
    char d[200];
    if (dim < 0) dim += t->ndim;
    if (dim < 0 || dim >= t->ndim || t->shape[dim] != want)
        return xs_error(XS_ERR_SHAPE, "%s: %s: dim %d must be %lld (%s)", xs_op_name(op),
                        describe(t, role, d, sizeof d), dim, (long long)want, why);
    return XS_OK;
}

static xs_status need_same_shape(xs_op op, const char *ra, const xs_tensor *a, const char *rb,
                                 const xs_tensor *b) {
    char da[200], db[200];
    if (!xs_tensor_same_shape(a, b))
        return xs_error(XS_ERR_SHAPE, "%s: %s and %s must have the same shape", xs_op_name(op),
                        describe(a, ra, da, sizeof da), describe(b, rb, db, sizeof db));
    return XS_OK;
}

/* A per-feature vector (bias, norm weight): contiguous f32 with numel == n.
 * Any rank is accepted because checkpoints store e.g. RMSNorm alpha as [1, 1, D]. */
static xs_status need_vector(xs_op op, const char *role, const xs_tensor *t, int64_t n) {
    XS_TRY(need_dtype(op, role, t, XS_F32));
    char d[200];
    if (xs_tensor_numel(t) != n || !xs_tensor_is_contiguous(t))
        return xs_error(XS_ERR_SHAPE, "%s: %s: expected a contiguous vector of %lld values",
                        xs_op_name(op), describe(t, role, d, sizeof d), (long long)n);
    return XS_OK;
}

/* A weight matrix/table: 2-D, contiguous, dtype in the matmul/embedding set. */
static xs_status need_weight2d(xs_op op, const char *role, const xs_tensor *w) {
    XS_TRY(need_tensor(op, role, w));
    char d[200];
    switch (w->dtype) {
    case XS_F32: case XS_F16: case XS_BF16: case XS_Q8_0: case XS_Q4_0: break;
    default:
        return xs_error(XS_ERR_DTYPE, "%s: %s: expected f32, f16, bf16, q8_0 or q4_0",
                        xs_op_name(op), describe(w, role, d, sizeof d));
    }
    XS_TRY(need_ndim(op, role, w, 2));
    XS_TRY(need_contiguous(op, role, w));
    if (xs_dtype_is_quantized(w->dtype) && w->shape[1] % XS_QK)
        return xs_error(XS_ERR_SHAPE, "%s: %s: innermost dim is not a multiple of %d",
                        xs_op_name(op), describe(w, role, d, sizeof d), XS_QK);
    return XS_OK;
}

static int64_t inner(const xs_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }
static int64_t rows(const xs_tensor *t) {
    int64_t in = inner(t);
    return in ? xs_tensor_numel(t) / in : 0;
}

/* y rows/inner must match the given counts (leading dims may be shaped freely). */
static xs_status need_rows_inner(xs_op op, const char *role, const xs_tensor *t, int64_t m,
                                 int64_t n, const char *why) {
    char d[200];
    if (t->ndim < 1 || inner(t) != n || rows(t) != m)
        return xs_error(XS_ERR_SHAPE, "%s: %s: expected %lld rows of %lld (%s)", xs_op_name(op),
                        describe(t, role, d, sizeof d), (long long)m, (long long)n, why);
    return XS_OK;
}

static xs_status need_backend(xs_backend *be, xs_op op) {
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", xs_op_name(op));
    return XS_OK;
}

/* Run the backend's op, or ref on host-memory backends, then the fault hook. */
#define XS_DISPATCH(OP, FIELD, YT, ...)                                                    \
    do {                                                                                   \
        xs_status rc_;                                                                     \
        XS_OP_HOOK_CALL(be, OP, XS_OP_HOOK_BEFORE, __VA_ARGS__); /* diagnose's recorder */ \
        if (be->iface->FIELD)                                                              \
            rc_ = be->iface->FIELD(be, __VA_ARGS__);                                       \
        else if (be->iface->host_memory)                                                   \
            rc_ = ref_##FIELD(be, __VA_ARGS__);                                            \
        else                                                                               \
            return xs_error(XS_ERR_UNSUPPORTED, "%s: not supported by backend '%s'",       \
                            xs_op_name(OP), be->iface->name);                              \
        if (rc_ != XS_OK) return rc_;                                                      \
        /* ---- fault injection hook: the one place an op's output may be corrupted ---- */ \
        xs_fault_after(be, OP, YT);                                                        \
        XS_OP_HOOK_CALL(be, OP, XS_OP_HOOK_AFTER, __VA_ARGS__);                            \
        return XS_OK;                                                                      \
    } while (0)

/* ---- memory ------------------------------------------------------------------ */

xs_status xs_tensor_alloc(xs_backend *be, xs_dtype dtype, int ndim, const int64_t *shape,
                          xs_tensor *out) {
    if (!be || !be->iface || !be->iface->alloc) return xs_error(XS_ERR_ARG, "tensor alloc: no backend");
    if ((int)dtype < 0 || dtype >= XS_DTYPE_COUNT)
        return xs_error(XS_ERR_DTYPE, "tensor alloc: unknown dtype %d", (int)dtype);
    if (ndim < 0 || ndim > XS_MAX_DIMS)
        return xs_error(XS_ERR_SHAPE, "tensor alloc: %d dims (max %d)", ndim, XS_MAX_DIMS);
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) return xs_error(XS_ERR_SHAPE, "tensor alloc: negative dim %d", d);
    xs_tensor t = xs_tensor_make(dtype, ndim, shape, NULL);
    if (xs_dtype_is_quantized(dtype) && (ndim == 0 || shape[ndim - 1] % XS_QK))
        return xs_error(XS_ERR_SHAPE, "tensor alloc: %s needs an innermost dim multiple of %d",
                        xs_dtype_name(dtype), XS_QK);
    size_t nb = xs_tensor_nbytes(&t);
    t.data = be->iface->alloc(be, nb);
    if (!t.data) {
        char s[96];
        return xs_error(XS_ERR_NOMEM, "tensor alloc: %zu bytes for %s %s on backend '%s' failed",
                        nb, xs_dtype_name(dtype), xs_tensor_shape_str(&t, s, sizeof s),
                        be->iface->name);
    }
    *out = t;
    return XS_OK;
}

void xs_tensor_free(xs_backend *be, xs_tensor *t) {
    if (!t) return;
    if (t->data && be && be->iface && be->iface->free) be->iface->free(be, t->data);
    memset(t, 0, sizeof *t);
}

xs_status xs_tensor_upload(xs_backend *be, xs_tensor *dst, const void *host) {
    if (!be || !dst || (!host && xs_tensor_numel(dst) > 0))
        return xs_error(XS_ERR_ARG, "tensor upload: NULL argument");
    if (!xs_tensor_is_contiguous(dst))
        return xs_error(XS_ERR_SHAPE, "tensor upload: destination %s is not contiguous",
                        dst->name ? dst->name : "tensor");
    return be->iface->upload(be, dst->data, host, xs_tensor_nbytes(dst));
}

xs_status xs_tensor_download(xs_backend *be, void *host, const xs_tensor *src) {
    if (!be || !src || (!host && xs_tensor_numel(src) > 0))
        return xs_error(XS_ERR_ARG, "tensor download: NULL argument");
    if (!xs_tensor_is_contiguous(src))
        return xs_error(XS_ERR_SHAPE, "tensor download: source %s is not contiguous",
                        src->name ? src->name : "tensor");
    return be->iface->download(be, host, src->data, xs_tensor_nbytes(src));
}

xs_status xs_backend_weight(xs_backend *be, const xs_tensor *host, xs_tensor *out) {
    if (!be || !host || !out) return xs_error(XS_ERR_ARG, "backend weight: NULL argument");
    if (be->iface->weight_prepare) return be->iface->weight_prepare(be, host, out);
    *out = *host; /* host backends read the (mmapped) host memory directly */
    return XS_OK;
}

void xs_backend_weight_release(xs_backend *be, xs_tensor *w) {
    if (!w) return;
    if (be && be->iface && be->iface->weight_release && w->data) be->iface->weight_release(be, w);
    memset(w, 0, sizeof *w);
}

xs_status xs_kv_cache_alloc(xs_backend *be, int64_t capacity, int64_t width, xs_kv_cache *out) {
    return xs_kv_cache_alloc_dtype(be, capacity, width, XS_F32, out);
}

size_t xs_kv_cache_bytes(const xs_kv_cache *c) {
    if (!c || !c->k.data) return 0;
    return xs_tensor_nbytes(&c->k) + xs_tensor_nbytes(&c->v);
}

xs_status xs_kv_cache_alloc_dtype(xs_backend *be, int64_t capacity, int64_t width, xs_dtype dtype,
                                  xs_kv_cache *out) {
    if (capacity <= 0 || width <= 0)
        return xs_error(XS_ERR_ARG, "kv cache alloc: capacity %lld and width %lld must be > 0",
                        (long long)capacity, (long long)width);
    if (dtype != XS_F32 && dtype != XS_BF16 && dtype != XS_Q8_0)
        return xs_error(XS_ERR_DTYPE, "kv cache alloc: dtype %s (expected f32, bf16 or q8_0)",
                        xs_dtype_name(dtype));
    if (dtype == XS_Q8_0 && width % XS_QK)
        return xs_error(XS_ERR_SHAPE, "kv cache alloc: q8_0 cache width %lld is not a multiple "
                        "of %d (one row is whole Q8_0 blocks)", (long long)width, XS_QK);
    xs_kv_cache c;
    memset(&c, 0, sizeof c);
    int64_t kshape[2] = {capacity, width};
    xs_status rc = xs_tensor_alloc(be, dtype, 2, kshape, &c.k);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, dtype, 2, kshape, &c.v);
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_I32, 1, &capacity, &c.pos);
    c.capacity = capacity;
    if (rc == XS_OK) rc = xs_kv_cache_reset(be, &c);
    if (rc != XS_OK) {
        xs_kv_cache_free(be, &c);
        return rc;
    }
    c.k.name = "kv_cache.k";
    c.v.name = "kv_cache.v";
    c.pos.name = "kv_cache.pos";
    *out = c;
    return XS_OK;
}

xs_status xs_kv_cache_reset(xs_backend *be, xs_kv_cache *c) {
    if (!be || !c || !c->pos.data) return xs_error(XS_ERR_ARG, "kv cache reset: no cache");
    int32_t *neg = malloc((size_t)c->capacity * sizeof *neg);
    if (!neg) return xs_error(XS_ERR_NOMEM, "kv cache reset: out of memory");
    for (int64_t i = 0; i < c->capacity; i++) neg[i] = -1;
    xs_status rc = be->iface->upload(be, c->pos.data, neg, (size_t)c->capacity * sizeof *neg);
    free(neg);
    return rc;
}

void xs_kv_cache_free(xs_backend *be, xs_kv_cache *c) {
    if (!c) return;
    xs_tensor_free(be, &c->k);
    xs_tensor_free(be, &c->v);
    xs_tensor_free(be, &c->pos);
    c->capacity = 0;
}

/* ---- ops ---------------------------------------------------------------------- */

xs_status xs_op_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                       const xs_tensor *bias) {
    const xs_op op = XS_OP_MATMUL;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_weight2d(op, "w", w));
    XS_TRY(need_min_ndim(op, "x", x, 1));
    const int64_t n = w->shape[0], k = w->shape[1];
    XS_TRY(need_dim(op, "x", x, -1, k, "innermost dim of x = columns of w"));
    XS_TRY(need_rows_inner(op, "y", y, rows(x), n, "rows of x, rows of w"));
    XS_TRY(need_contiguous(op, "y", y));
    if (bias) XS_TRY(need_vector(op, "bias", bias, n));
    XS_DISPATCH(op, matmul, y, y, x, w, bias);
}

xs_status xs_op_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                       const xs_tensor *bias, int stride, int dilation, int groups) {
    const xs_op op = XS_OP_CONV1D;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_dtype(op, "w", w, XS_F32));
    XS_TRY(need_ndim(op, "x", x, 2));
    XS_TRY(need_ndim(op, "w", w, 3));
    XS_TRY(need_ndim(op, "y", y, 2));
    if (stride < 1 || dilation < 1 || groups < 1)
        return xs_error(XS_ERR_ARG, "conv1d: stride %d, dilation %d, groups %d must be >= 1",
                        stride, dilation, groups);
    const int64_t cin = x->shape[0], tin = x->shape[1];
    const int64_t cout = w->shape[0], kk = w->shape[2];
    char d[200];
    if (cin % groups || cout % groups)
        return xs_error(XS_ERR_SHAPE, "conv1d: %s: channels not divisible by groups %d",
                        describe(w, "w", d, sizeof d), groups);
    XS_TRY(need_dim(op, "w", w, 1, cin / groups, "input channels of x / groups"));
    const int64_t span = (int64_t)dilation * (kk - 1) + 1;
    if (kk < 1 || tin < span)
        return xs_error(XS_ERR_SHAPE, "conv1d: %s shorter than the kernel span %lld",
                        describe(x, "x", d, sizeof d), (long long)span);
    const int64_t tout = (tin - span) / stride + 1;
    XS_TRY(need_dim(op, "y", y, 0, cout, "output channels of w"));
    XS_TRY(need_dim(op, "y", y, 1, tout, "(Tin - dilation*(K-1) - 1) / stride + 1"));
    XS_TRY(need_contiguous(op, "y", y));
    if (bias) XS_TRY(need_vector(op, "bias", bias, cout));
    XS_DISPATCH(op, conv1d, y, y, x, w, bias, stride, dilation, groups);
}

xs_status xs_op_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                                 const xs_tensor *w, const xs_tensor *bias, int stride,
                                 int groups) {
    const xs_op op = XS_OP_CONV_TRANSPOSE1D;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_dtype(op, "w", w, XS_F32));
    XS_TRY(need_ndim(op, "x", x, 2));
    XS_TRY(need_ndim(op, "w", w, 3));
    XS_TRY(need_ndim(op, "y", y, 2));
    if (stride < 1 || groups < 1)
        return xs_error(XS_ERR_ARG, "conv_transpose1d: stride %d, groups %d must be >= 1",
                        stride, groups);
    const int64_t cin = x->shape[0], tin = x->shape[1];
    const int64_t cout = w->shape[1] * groups, kk = w->shape[2];
    char d[200];
    if (cin % groups)
        return xs_error(XS_ERR_SHAPE, "conv_transpose1d: %s: channels not divisible by groups %d",
                        describe(x, "x", d, sizeof d), groups);
    XS_TRY(need_dim(op, "w", w, 0, cin, "input channels of x"));
    if (kk < 1 || tin < 1)
        return xs_error(XS_ERR_SHAPE, "conv_transpose1d: empty kernel or input (%s)",
                        describe(x, "x", d, sizeof d));
    XS_TRY(need_dim(op, "y", y, 0, cout, "w dim 1 * groups"));
    XS_TRY(need_dim(op, "y", y, 1, (tin - 1) * stride + kk, "(Tin - 1) * stride + K"));
    XS_TRY(need_contiguous(op, "y", y));
    if (bias) XS_TRY(need_vector(op, "bias", bias, cout));
    XS_DISPATCH(op, conv_transpose1d, y, y, x, w, bias, stride, groups);
}

xs_status xs_op_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                           const xs_tensor *b, float eps) {
    const xs_op op = XS_OP_LAYER_NORM;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_min_ndim(op, "x", x, 1));
    XS_TRY(need_same_shape(op, "y", y, "x", x));
    XS_TRY(need_contiguous(op, "y", y));
    XS_TRY(need_tensor(op, "w", w));
    XS_TRY(need_vector(op, "w", w, inner(x)));
    if (b) XS_TRY(need_vector(op, "b", b, inner(x)));
    XS_DISPATCH(op, layer_norm, y, y, x, w, b, eps);
}

xs_status xs_op_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                         const xs_tensor *alpha, float eps) {
    const xs_op op = XS_OP_RMS_NORM;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_min_ndim(op, "x", x, 1));
    XS_TRY(need_same_shape(op, "y", y, "x", x));
    XS_TRY(need_contiguous(op, "y", y));
    XS_TRY(need_tensor(op, "alpha", alpha));
    XS_TRY(need_vector(op, "alpha", alpha, inner(x)));
    XS_DISPATCH(op, rms_norm, y, y, x, alpha, eps);
}

xs_status xs_op_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period) {
    const xs_op op = XS_OP_ROPE;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_dtype(op, "pos", pos, XS_I32));
    XS_TRY(need_ndim(op, "x", x, 3));
    XS_TRY(need_ndim(op, "pos", pos, 1));
    XS_TRY(need_dim(op, "pos", pos, 0, x->shape[0], "one position per row T of x"));
    char d[200];
    if (x->shape[2] % 2)
        return xs_error(XS_ERR_SHAPE, "rope: %s: head dim must be even",
                        describe(x, "x", d, sizeof d));
    if (!(max_period > 0.0f))
        return xs_error(XS_ERR_ARG, "rope: max_period %g must be > 0", (double)max_period);
    XS_DISPATCH(op, rope, x, x, pos, max_period);
}

xs_status xs_op_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const xs_op op = XS_OP_SOFTMAX;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_min_ndim(op, "x", x, 1));
    XS_TRY(need_same_shape(op, "y", y, "x", x));
    XS_TRY(need_contiguous(op, "y", y));
    XS_DISPATCH(op, softmax, y, y, x);
}

static xs_status check_cache(xs_op op, const xs_kv_cache *c) {
    if (!c) return xs_error(XS_ERR_ARG, "%s: cache is NULL", xs_op_name(op));
    /* k and v: both f32, both bf16 or both q8_0 (see xs_kv_cache_alloc_dtype) */
    XS_TRY(need_dtype(op, "cache.k", &c->k,
                      c->k.dtype == XS_BF16 || c->k.dtype == XS_Q8_0 ? c->k.dtype : XS_F32));
    XS_TRY(need_dtype(op, "cache.v", &c->v, c->k.dtype));
    XS_TRY(need_dtype(op, "cache.pos", &c->pos, XS_I32));
    XS_TRY(need_ndim(op, "cache.k", &c->k, 2));
    XS_TRY(need_same_shape(op, "cache.k", &c->k, "cache.v", &c->v));
    XS_TRY(need_dim(op, "cache.k", &c->k, 0, c->capacity, "capacity"));
    XS_TRY(need_ndim(op, "cache.pos", &c->pos, 1));
    XS_TRY(need_dim(op, "cache.pos", &c->pos, 0, c->capacity, "capacity"));
    if (c->k.dtype == XS_Q8_0 && c->k.shape[1] % XS_QK)
        return xs_error(XS_ERR_SHAPE, "%s: q8_0 cache width %lld is not a multiple of %d",
                        xs_op_name(op), (long long)c->k.shape[1], XS_QK);
    return XS_OK;
}

xs_status xs_op_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                         const xs_tensor *v, const xs_tensor *pos) {
    const xs_op op = XS_OP_KV_STORE;
    XS_TRY(need_backend(be, op));
    XS_TRY(check_cache(op, cache));
    XS_TRY(need_dtype(op, "k", k, XS_F32));
    XS_TRY(need_dtype(op, "v", v, XS_F32));
    XS_TRY(need_dtype(op, "pos", pos, XS_I32));
    XS_TRY(need_ndim(op, "pos", pos, 1));
    const int64_t t = pos->shape[0], hd = cache->k.shape[1];
    XS_TRY(need_rows_inner(op, "k", k, t, hd, "one row per position, cache width"));
    XS_TRY(need_rows_inner(op, "v", v, t, hd, "one row per position, cache width"));
    XS_DISPATCH(op, kv_store, &cache->k, cache, k, v, pos);
}

xs_status xs_op_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                          const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                          int64_t context, float scale) {
    const xs_op op = XS_OP_ATTENTION;
    XS_TRY(need_backend(be, op));
    XS_TRY(check_cache(op, cache));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "q", q, XS_F32));
    XS_TRY(need_dtype(op, "pos", pos, XS_I32));
    XS_TRY(need_ndim(op, "pos", pos, 1));
    const int64_t t = pos->shape[0], hd = cache->k.shape[1];
    if (n_heads < 1 || hd % n_heads)
        return xs_error(XS_ERR_SHAPE, "attention: cache width %lld not divisible by %d heads",
                        (long long)hd, n_heads);
    if (context < 1)
        return xs_error(XS_ERR_ARG, "attention: context %lld must be >= 1", (long long)context);
    /* a head must start on a block boundary so that backends can read its
     * blocks in place (the 7B's 128 = 4 blocks) */
    if (cache->k.dtype == XS_Q8_0 && (hd / n_heads) % XS_QK)
        return xs_error(XS_ERR_SHAPE, "attention: q8_0 cache: head dim %lld is not a multiple of "
                        "%d", (long long)(hd / n_heads), XS_QK);
    XS_TRY(need_rows_inner(op, "q", q, t, hd, "one row per position, cache width"));
    XS_TRY(need_rows_inner(op, "y", y, t, hd, "one row per position, cache width"));
    XS_TRY(need_contiguous(op, "y", y));
    XS_DISPATCH(op, attention, y, y, q, cache, pos, n_heads, context, scale);
}

static xs_status check_unary(xs_op op, xs_backend *be, const xs_tensor *y, const xs_tensor *x) {
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_same_shape(op, "y", y, "x", x));
    XS_TRY(need_contiguous(op, "y", y));
    return XS_OK;
}

xs_status xs_op_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha) {
    XS_TRY(check_unary(XS_OP_ELU, be, y, x));
    XS_DISPATCH(XS_OP_ELU, elu, y, y, x, alpha);
}

xs_status xs_op_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    XS_TRY(check_unary(XS_OP_GELU, be, y, x));
    XS_DISPATCH(XS_OP_GELU, gelu, y, y, x);
}

xs_status xs_op_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const xs_op op = XS_OP_SILU_MUL;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "x", x, XS_F32));
    XS_TRY(need_min_ndim(op, "x", x, 1));
    char d[200];
    if (inner(x) % 2)
        return xs_error(XS_ERR_SHAPE, "silu_mul: %s: innermost dim must be even",
                        describe(x, "x", d, sizeof d));
    XS_TRY(need_rows_inner(op, "y", y, rows(x), inner(x) / 2, "rows of x, half its width"));
    XS_TRY(need_contiguous(op, "y", y));
    XS_DISPATCH(op, silu_mul, y, y, x);
}

xs_status xs_op_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                          const xs_tensor *ids) {
    const xs_op op = XS_OP_EMBEDDING;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_weight2d(op, "table", table));
    XS_TRY(need_dtype(op, "ids", ids, XS_I32));
    XS_TRY(need_ndim(op, "ids", ids, 1));
    XS_TRY(need_rows_inner(op, "y", y, ids->shape[0], table->shape[1],
                           "one row per id, table width"));
    XS_TRY(need_contiguous(op, "y", y));
    XS_DISPATCH(op, embedding, y, y, table, ids);
}

static xs_status check_binary(xs_op op, xs_backend *be, const xs_tensor *y, const xs_tensor *a,
                              const xs_tensor *b) {
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_TRY(need_dtype(op, "a", a, XS_F32));
    XS_TRY(need_dtype(op, "b", b, XS_F32));
    XS_TRY(need_same_shape(op, "y", y, "a", a));
    XS_TRY(need_contiguous(op, "y", y));
    if (xs_tensor_same_shape(a, b)) return XS_OK;
    char da[200], db[200];
    if (b->ndim == 1 && a->ndim >= 1 && b->shape[0] == inner(a)) return XS_OK;
    return xs_error(XS_ERR_SHAPE, "%s: %s must have the shape of %s or be a row [%lld]",
                    xs_op_name(op), describe(b, "b", db, sizeof db), describe(a, "a", da, sizeof da),
                    (long long)inner(a));
}

xs_status xs_op_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    XS_TRY(check_binary(XS_OP_ADD, be, y, a, b));
    XS_DISPATCH(XS_OP_ADD, add, y, y, a, b);
}

xs_status xs_op_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b) {
    XS_TRY(check_binary(XS_OP_MUL, be, y, a, b));
    XS_DISPATCH(XS_OP_MUL, mul, y, y, a, b);
}

xs_status xs_op_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b) {
    XS_TRY(check_unary(XS_OP_SCALE, be, y, x));
    XS_DISPATCH(XS_OP_SCALE, scale, y, y, x, s, b);
}

xs_status xs_op_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const xs_op op = XS_OP_COPY;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_tensor(op, "y", y));
    XS_TRY(need_tensor(op, "x", x));
    char d[200];
    if (x->dtype != XS_F32 && x->dtype != XS_I32)
        return xs_error(XS_ERR_DTYPE, "copy: %s: expected f32 or i32", describe(x, "x", d, sizeof d));
    XS_TRY(need_dtype(op, "y", y, x->dtype));
    XS_TRY(need_same_shape(op, "y", y, "x", x));
    XS_DISPATCH(op, copy, y, y, x);
}

xs_status xs_op_fill(xs_backend *be, xs_tensor *y, float value) {
    const xs_op op = XS_OP_FILL;
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "y", y, XS_F32));
    XS_DISPATCH(op, fill, y, y, value);
}

static xs_status check_pick(xs_op op, xs_backend *be, const xs_tensor *ids,
                            const xs_tensor *logits) {
    XS_TRY(need_backend(be, op));
    XS_TRY(need_dtype(op, "ids", ids, XS_I32));
    XS_TRY(need_dtype(op, "logits", logits, XS_F32));
    XS_TRY(need_min_ndim(op, "logits", logits, 1));
    char d[200];
    if (inner(logits) < 1)
        return xs_error(XS_ERR_SHAPE, "%s: %s: empty vocabulary", xs_op_name(op),
                        describe(logits, "logits", d, sizeof d));
    if (xs_tensor_numel(ids) != rows(logits) || !xs_tensor_is_contiguous(ids))
        return xs_error(XS_ERR_SHAPE, "%s: %s: expected %lld contiguous ids (rows of logits)",
                        xs_op_name(op), describe(ids, "ids", d, sizeof d), (long long)rows(logits));
    return XS_OK;
}

xs_status xs_op_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits) {
    XS_TRY(check_pick(XS_OP_ARGMAX, be, ids, logits));
    XS_DISPATCH(XS_OP_ARGMAX, argmax, ids, ids, logits);
}

xs_status xs_op_sample_topk_at(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                               float temp, int top_k, uint64_t seed, uint64_t stream,
                               uint64_t counter, const xs_tensor *counter_t) {
    const xs_op op = XS_OP_SAMPLE_TOPK;
    XS_TRY(check_pick(op, be, ids, logits));
    if (counter_t) {
        char d[200];
        if ((counter_t->dtype != XS_I32 && counter_t->dtype != XS_I64) ||
            xs_tensor_numel(counter_t) != 1 || !counter_t->data)
            return xs_error(XS_ERR_ARG, "%s: %s: the counter must be one i32 or i64 value",
                            xs_op_name(op), describe(counter_t, "counter", d, sizeof d));
    }
    XS_DISPATCH(op, sample_topk, ids, ids, logits, temp, top_k, seed, stream, counter,
                counter_t);
}

xs_status xs_op_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                            float temp, int top_k, uint64_t seed, uint64_t stream,
                            uint64_t counter) {
    return xs_op_sample_topk_at(be, ids, logits, temp, top_k, seed, stream, counter, NULL);
}
