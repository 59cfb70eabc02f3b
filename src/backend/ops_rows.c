/*
 * ops_rows.c — the row-batched wrappers of ops.h (kv_store_rows,
 * attention_rows, sample_rows).
 *
 * A batched LM step serves B sessions; each row has its own KV cache,
 * position and sampling settings, so these ops used to be B single-row
 * calls each (B launches on a GPU, ~20,000 a 7B step at B = 80). A backend
 * that implements the row-batched op does all rows in one call; the
 * wrapper otherwise runs the loop of single-row xs_op_* calls, which is
 * also the definition of the result: the backend must match it bit for bit.
 *
 * The loop also runs while an op hook (diagnose's recorder) or fault
 * injection is active: they act per xs_op_* call and must see (and be able
 * to corrupt) the usual per-row kv_store / attention / argmax /
 * sample_topk. XSWARM_ROWOPS=0 forces the loop (A/B timing).
 *
 * Like ops.c, the checks here read shapes and dtypes only, never values.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/fault.h"
#include "backend/op_hook.h"
#include "backend/ops.h"

/* XSWARM_ROWOPS=0 disables the backends' row-batched ops (read once). */
static int rowops_env(void) {
    static int cached = -1; /* a benign race: every thread computes the same value */
    if (cached < 0) {
        const char *e = getenv("XSWARM_ROWOPS");
        cached = !(e && !strcmp(e, "0"));
    }
    return cached;
}

static bool native_ok(xs_backend *be) {
    return be && be->iface && rowops_env() && !xs_op_hook_ && !xs_fault_active();
}

bool xs_op_rows_native(xs_backend *be) {
    return native_ok(be) && be->iface->attention_rows != NULL;
}

/* ---- checks ------------------------------------------------------------------ */

static xs_status need_f32_rows(const char *op, const char *role, const xs_tensor *t, int B,
                               int64_t w) {
    if (!t) return xs_error(XS_ERR_ARG, "%s: %s is NULL", op, role);
    if (t->dtype != XS_F32)
        return xs_error(XS_ERR_DTYPE, "%s: %s is %s (expected f32)", op, role,
                        xs_dtype_name(t->dtype));
    if (t->ndim != 2 || t->shape[0] != B || t->shape[1] != w)
        return xs_error(XS_ERR_SHAPE, "%s: %s must be [%d, %lld] (rows, cache width)", op, role,
                        B, (long long)w);
    if (!t->data) return xs_error(XS_ERR_ARG, "%s: %s has no data", op, role);
    return XS_OK;
}

static xs_status need_i32_vec(const char *op, const char *role, const xs_tensor *t, int B) {
    if (!t) return xs_error(XS_ERR_ARG, "%s: %s is NULL", op, role);
    if (t->dtype != XS_I32 || t->ndim != 1 || t->shape[0] != B || !t->data)
        return xs_error(XS_ERR_SHAPE, "%s: %s must be i32 [%d] (one per row)", op, role, B);
    return XS_OK;
}

/* Every cache present, well formed, and like caches[0]. */
static xs_status need_caches(const char *op, const xs_kv_cache *const *caches, int B) {
    if (!caches) return xs_error(XS_ERR_ARG, "%s: caches is NULL", op);
    if (B < 1) return xs_error(XS_ERR_ARG, "%s: %d rows", op, B);
    const xs_kv_cache *c0 = caches[0];
    for (int b = 0; b < B; b++) {
        const xs_kv_cache *c = caches[b];
        if (!c) return xs_error(XS_ERR_ARG, "%s: cache of row %d is NULL", op, b);
        const xs_dtype dt = c->k.dtype;
        if ((dt != XS_F32 && dt != XS_BF16 && dt != XS_Q8_0) || c->v.dtype != dt ||
            c->pos.dtype != XS_I32)
            return xs_error(XS_ERR_DTYPE, "%s: cache of row %d: k %s, v %s, pos %s (expected k, "
                            "v both f32, bf16 or q8_0, pos i32)", op, b, xs_dtype_name(dt),
                            xs_dtype_name(c->v.dtype), xs_dtype_name(c->pos.dtype));
        if (c->k.ndim != 2 || !xs_tensor_same_shape(&c->k, &c->v) || c->k.shape[0] != c->capacity ||
            c->pos.ndim != 1 || c->pos.shape[0] != c->capacity || c->capacity < 1)
            return xs_error(XS_ERR_SHAPE, "%s: cache of row %d: k, v must be [capacity, width], "
                            "pos [capacity]", op, b);
        if (!c->k.data || !c->v.data || !c->pos.data)
            return xs_error(XS_ERR_ARG, "%s: cache of row %d has no data", op, b);
        if (dt != c0->k.dtype || c->capacity != c0->capacity || c->k.shape[1] != c0->k.shape[1])
            return xs_error(XS_ERR_SHAPE, "%s: cache of row %d (%s, %lld x %lld) differs from "
                            "row 0's (%s, %lld x %lld)", op, b, xs_dtype_name(dt),
                            (long long)c->capacity, (long long)c->k.shape[1],
                            xs_dtype_name(c0->k.dtype), (long long)c0->capacity,
                            (long long)c0->k.shape[1]);
    }
    return XS_OK;
}

/* ---- wrappers ------------------------------------------------------------------ */

xs_status xs_op_kv_store_rows(xs_backend *be, xs_kv_cache *const *caches, int B,
                              const xs_tensor *k, const xs_tensor *v, const xs_tensor *pos) {
    const char *op = "kv_store_rows";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    XS_TRY(need_caches(op, (const xs_kv_cache *const *)caches, B));
    const int64_t w = caches[0]->k.shape[1];
    XS_TRY(need_f32_rows(op, "k", k, B, w));
    XS_TRY(need_f32_rows(op, "v", v, B, w));
    XS_TRY(need_i32_vec(op, "pos", pos, B));
    if (native_ok(be) && be->iface->kv_store_rows)
        return be->iface->kv_store_rows(be, caches, B, k, v, pos);
    for (int b = 0; b < B; b++) {
        xs_tensor kb = xs_tensor_slice(k, 0, b, 1), vb = xs_tensor_slice(v, 0, b, 1);
        xs_tensor pb = xs_tensor_slice(pos, 0, b, 1);
        XS_TRY(xs_op_kv_store(be, caches[b], &kb, &vb, &pb));
    }
    return XS_OK;
}

xs_status xs_op_attention_rows(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                               const xs_kv_cache *const *caches, int B, const xs_tensor *pos,
                               int n_heads, int64_t context, float scale) {
    const char *op = "attention_rows";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    XS_TRY(need_caches(op, caches, B));
    const int64_t w = caches[0]->k.shape[1];
    XS_TRY(need_f32_rows(op, "y", y, B, w));
    XS_TRY(need_f32_rows(op, "q", q, B, w));
    XS_TRY(need_i32_vec(op, "pos", pos, B));
    if (!xs_tensor_is_contiguous(y))
        return xs_error(XS_ERR_SHAPE, "%s: y must be contiguous", op);
    if (n_heads < 1 || w % n_heads)
        return xs_error(XS_ERR_SHAPE, "%s: cache width %lld not divisible by %d heads", op,
                        (long long)w, n_heads);
    if (context < 1) return xs_error(XS_ERR_ARG, "%s: context %lld must be >= 1", op,
                                     (long long)context);
    if (caches[0]->k.dtype == XS_Q8_0 && (w / n_heads) % XS_QK)
        return xs_error(XS_ERR_SHAPE, "%s: q8_0 cache: head dim %lld is not a multiple of %d", op,
                        (long long)(w / n_heads), XS_QK);
    if (native_ok(be) && be->iface->attention_rows)
        return be->iface->attention_rows(be, y, q, caches, B, pos, n_heads, context, scale);
    for (int b = 0; b < B; b++) {
        xs_tensor yb = xs_tensor_slice(y, 0, b, 1), qb = xs_tensor_slice(q, 0, b, 1);
        xs_tensor pb = xs_tensor_slice(pos, 0, b, 1);
        XS_TRY(xs_op_attention(be, &yb, &qb, caches[b], &pb, n_heads, context, scale));
    }
    return XS_OK;
}

xs_status xs_op_sample_rows(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                            const xs_sample_row *rows, uint64_t stream,
                            const xs_tensor *counters) {
    const char *op = "sample_rows";
    if (!be || !be->iface) return xs_error(XS_ERR_ARG, "%s: backend is NULL", op);
    if (!ids || !logits || !rows) return xs_error(XS_ERR_ARG, "%s: NULL argument", op);
    if (logits->dtype != XS_F32 || logits->ndim != 2 || logits->shape[1] < 1 || !logits->data)
        return xs_error(XS_ERR_SHAPE, "%s: logits must be f32 [B, V] with V >= 1", op);
    const int64_t B = logits->shape[0];
    if (B < 1 || B > 1 << 20) return xs_error(XS_ERR_SHAPE, "%s: %lld rows", op, (long long)B);
    if (ids->dtype != XS_I32 || xs_tensor_numel(ids) != B || !xs_tensor_is_contiguous(ids) ||
        !ids->data)
        return xs_error(XS_ERR_SHAPE, "%s: ids must be %lld contiguous i32 (rows of logits)", op,
                        (long long)B);
    if (counters) XS_TRY(need_i32_vec(op, "counters", counters, (int)B));
    if (native_ok(be) && be->iface->sample_rows)
        return be->iface->sample_rows(be, ids, logits, rows, stream, counters);
    for (int64_t b = 0; b < B; b++) {
        int64_t one = 1;
        xs_tensor ib = xs_tensor_make(XS_I32, 1, &one, (int32_t *)ids->data + b);
        xs_tensor lb = xs_tensor_slice(logits, 0, b, 1);
        xs_tensor cb = counters ? xs_tensor_slice(counters, 0, b, 1) : (xs_tensor){0};
        const xs_sample_row *s = &rows[b];
        if (s->greedy) XS_TRY(xs_op_argmax(be, &ib, &lb));
        else
            XS_TRY(xs_op_sample_topk_at(be, &ib, &lb, s->temp, s->top_k, s->seed, stream, 0,
                                        counters ? &cb : NULL));
    }
    return XS_OK;
}
