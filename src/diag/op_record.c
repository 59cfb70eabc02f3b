/*
 * op_record.c — capturing one op call (see op_record.h): the argument
 * layout of every op, running a captured call on a backend, comparing two
 * runs, saving, and the recorder diagnose arms around a re-run of B.
 */
#include "diag/op_record.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backend/op_hook.h"
#include "backend/ops.h"
#include "formats/safetensors.h"

/* ---- argument layout of each op ------------------------------------------------
 * In the order XS_DISPATCH passes them after `be` (= the iface signatures).
 * Y: output tensor (read too: in place / views), T: input tensor (may be
 * NULL), C: kv cache read, K: kv cache written, I: int, F: float (a double in
 * the va_list), L: int64, U: uint64. */
typedef struct argspec {
    char kind;
    const char *role;
} argspec;

static const argspec k_spec[XS_OP_COUNT][10] = {
    [XS_OP_MATMUL] = {{'Y', "y"}, {'T', "x"}, {'T', "w"}, {'T', "bias"}},
    [XS_OP_CONV1D] = {{'Y', "y"}, {'T', "x"}, {'T', "w"}, {'T', "bias"}, {'I', "stride"},
                      {'I', "dilation"}, {'I', "groups"}},
    [XS_OP_CONV_TRANSPOSE1D] = {{'Y', "y"}, {'T', "x"}, {'T', "w"}, {'T', "bias"},
                                {'I', "stride"}, {'I', "groups"}},
    [XS_OP_LAYER_NORM] = {{'Y', "y"}, {'T', "x"}, {'T', "w"}, {'T', "b"}, {'F', "eps"}},
    [XS_OP_RMS_NORM] = {{'Y', "y"}, {'T', "x"}, {'T', "alpha"}, {'F', "eps"}},
    [XS_OP_ROPE] = {{'Y', "x"}, {'T', "pos"}, {'F', "max_period"}},
    [XS_OP_SOFTMAX] = {{'Y', "y"}, {'T', "x"}},
    [XS_OP_KV_STORE] = {{'K', "cache"}, {'T', "k"}, {'T', "v"}, {'T', "pos"}},
    [XS_OP_ATTENTION] = {{'Y', "y"}, {'T', "q"}, {'C', "cache"}, {'T', "pos"}, {'I', "n_heads"},
                         {'L', "context"}, {'F', "scale"}},
    [XS_OP_ELU] = {{'Y', "y"}, {'T', "x"}, {'F', "alpha"}},
    [XS_OP_GELU] = {{'Y', "y"}, {'T', "x"}},
    [XS_OP_SILU_MUL] = {{'Y', "y"}, {'T', "x"}},
    [XS_OP_EMBEDDING] = {{'Y', "y"}, {'T', "table"}, {'T', "ids"}},
    [XS_OP_ADD] = {{'Y', "y"}, {'T', "a"}, {'T', "b"}},
    [XS_OP_MUL] = {{'Y', "y"}, {'T', "a"}, {'T', "b"}},
    [XS_OP_SCALE] = {{'Y', "y"}, {'T', "x"}, {'F', "s"}, {'F', "b"}},
    [XS_OP_COPY] = {{'Y', "y"}, {'T', "x"}},
    [XS_OP_FILL] = {{'Y', "y"}, {'F', "value"}},
    [XS_OP_ARGMAX] = {{'Y', "ids"}, {'T', "logits"}},
    [XS_OP_SAMPLE_TOPK] = {{'Y', "ids"}, {'T', "logits"}, {'F', "temp"}, {'I', "top_k"},
                           {'U', "seed"}, {'U', "stream"}, {'U', "counter"}, {'T', "counter_t"}},
};

/* Tolerances of the parity suite (diag/parity.c), by op class. */
double xs_opcall_tolerance(xs_op op) {
    switch (op) {
    case XS_OP_MATMUL: case XS_OP_CONV1D: case XS_OP_CONV_TRANSPOSE1D: case XS_OP_ATTENTION:
        return 1e-9;
    case XS_OP_ELU: case XS_OP_GELU: case XS_OP_SILU_MUL: case XS_OP_LAYER_NORM:
    case XS_OP_RMS_NORM: case XS_OP_SOFTMAX: case XS_OP_ROPE:
        return 1e-10;
    case XS_OP_ARGMAX: case XS_OP_SAMPLE_TOPK:
        return 0;
    default:
        return 1e-12; /* add, mul, scale, copy, fill, embedding, kv_store */
    }
}

/* ---- storages -------------------------------------------------------------------- */

/* Bytes the view spans from its data pointer (strides >= 0; quantized:
 * contiguous). 0 with *ok false when it cannot be captured. */
static size_t span_bytes(const xs_tensor *t, bool *ok) {
    *ok = true;
    if (xs_dtype_is_quantized(t->dtype)) {
        if (!xs_tensor_is_contiguous(t)) *ok = false;
        return *ok ? xs_tensor_nbytes(t) : 0;
    }
    if (xs_tensor_numel(t) == 0) return 0;
    int64_t ext = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (t->stride[d] < 0) *ok = false;
        ext += (t->shape[d] - 1) * t->stride[d];
    }
    return *ok ? (size_t)ext * xs_dtype_row_bytes(t->dtype, 1) : 0;
}

void xs_opcall_free(xs_opcall *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++)
        if (c->a[i].owned) free(c->a[i].host);
    memset(c, 0, sizeof *c);
}

void xs_opcall_out_free(xs_opcall_out *o) {
    if (!o) return;
    for (int i = 0; i < o->n; i++) free(o->host[i]);
    memset(o, 0, sizeof *o);
}

/* Walk the va_list of op: the tensor pointers (caches expanded into k, v,
 * pos) into t[], their roles/flags into c (no data), scalars into c. */
static int walk(xs_op op, va_list ap, xs_opcall *c, const xs_tensor **t) {
    memset(c, 0, sizeof *c);
    c->op = op;
    int ni = 0, nf = 0, nu = 0;
    for (const argspec *s = k_spec[op]; s->kind && c->n < XS_OPCALL_MAX_ARGS; s++) {
        switch (s->kind) {
        case 'Y': case 'T': {
            const xs_tensor *p = va_arg(ap, const xs_tensor *);
            xs_opcall_arg *a = &c->a[c->n];
            snprintf(a->role, sizeof a->role, "%s", s->role);
            a->output = s->kind == 'Y';
            t[c->n++] = p;
            break;
        }
        case 'C': case 'K': {
            const xs_kv_cache *kv = va_arg(ap, const xs_kv_cache *);
            static const char *const roles[3] = {"cache.k", "cache.v", "cache.pos"};
            for (int j = 0; j < 3 && c->n < XS_OPCALL_MAX_ARGS; j++) {
                xs_opcall_arg *a = &c->a[c->n];
                snprintf(a->role, sizeof a->role, "%s", roles[j]);
                a->output = s->kind == 'K';
                t[c->n++] = kv ? (j == 0 ? &kv->k : j == 1 ? &kv->v : &kv->pos) : NULL;
            }
            c->capacity = kv ? kv->capacity : 0;
            break;
        }
        case 'I': if (ni < 3) c->ints[ni++] = va_arg(ap, int); break;
        case 'F': if (nf < 2) c->f[nf++] = va_arg(ap, double); break;
        case 'L': c->i64 = va_arg(ap, int64_t); break;
        case 'U': if (nu < 3) c->u64[nu++] = va_arg(ap, uint64_t); break;
        }
    }
    return c->n;
}

/* Views and storage sizes of the walked tensors, aliases detected. */
static xs_status describe_args(xs_opcall *c, const xs_tensor **t) {
    for (int i = 0; i < c->n; i++) {
        xs_opcall_arg *a = &c->a[i];
        a->same_as = -1;
        a->present = t[i] != NULL && (t[i]->data || xs_tensor_numel(t[i]) == 0);
        if (!a->present) continue;
        a->dtype = t[i]->dtype;
        a->ndim = t[i]->ndim;
        memcpy(a->shape, t[i]->shape, sizeof a->shape);
        memcpy(a->stride, t[i]->stride, sizeof a->stride);
        bool ok;
        a->nbytes = span_bytes(t[i], &ok);
        if (!ok)
            return xs_error(XS_ERR_UNSUPPORTED, "op record: %s: %s %s view cannot be captured",
                            xs_op_name(c->op), a->role, xs_dtype_name(a->dtype));
        for (int j = 0; j < i; j++)
            if (c->a[j].present && t[j]->data == t[i]->data && t[i]->data) {
                a->same_as = j;
                if (c->a[j].nbytes < a->nbytes) c->a[j].nbytes = a->nbytes; /* one storage */
                break;
            }
    }
    return XS_OK;
}

/* Download the storage of every present argument (aliases share one). */
static xs_status download_args(xs_backend *be, xs_opcall *c, const xs_tensor **t) {
    for (int i = 0; i < c->n; i++) {
        xs_opcall_arg *a = &c->a[i];
        if (!a->present || a->same_as >= 0) continue;
        a->host = malloc(a->nbytes ? a->nbytes : 1);
        if (!a->host) return xs_error(XS_ERR_NOMEM, "op record: out of memory");
        a->owned = true;
        if (a->nbytes) XS_TRY(be->iface->download(be, a->host, t[i]->data, a->nbytes));
    }
    return XS_OK;
}

/* The storage owner of argument i (itself, or the argument it aliases). */
static int owner(const xs_opcall *c, int i) { return c->a[i].same_as >= 0 ? c->a[i].same_as : i; }

static xs_status download_outputs(xs_backend *be, const xs_opcall *c, const xs_tensor **t,
                                  xs_opcall_out *o) {
    memset(o, 0, sizeof *o);
    for (int i = 0; i < c->n; i++) {
        const xs_opcall_arg *a = &c->a[i];
        if (!a->output || !a->present) continue;
        const int s = owner(c, i);
        const size_t nb = c->a[s].nbytes;
        void *h = malloc(nb ? nb : 1);
        if (!h) return xs_error(XS_ERR_NOMEM, "op record: out of memory");
        o->idx[o->n] = i;
        o->host[o->n] = h;
        o->nbytes[o->n++] = nb;
        if (nb) XS_TRY(be->iface->download(be, h, t[s]->data, nb));
    }
    return XS_OK;
}

/* ---- running a call ----------------------------------------------------------------- */

static xs_status call_op(xs_backend *be, const xs_opcall *c, xs_tensor *v, xs_kv_cache *kv) {
    const xs_tensor *bias = NULL;
    switch (c->op) {
    case XS_OP_MATMUL:
        bias = c->a[3].present ? &v[3] : NULL;
        return xs_op_matmul(be, &v[0], &v[1], &v[2], bias);
    case XS_OP_CONV1D:
        bias = c->a[3].present ? &v[3] : NULL;
        return xs_op_conv1d(be, &v[0], &v[1], &v[2], bias, c->ints[0], c->ints[1], c->ints[2]);
    case XS_OP_CONV_TRANSPOSE1D:
        bias = c->a[3].present ? &v[3] : NULL;
        return xs_op_conv_transpose1d(be, &v[0], &v[1], &v[2], bias, c->ints[0], c->ints[1]);
    case XS_OP_LAYER_NORM:
        return xs_op_layer_norm(be, &v[0], &v[1], &v[2], c->a[3].present ? &v[3] : NULL,
                                (float)c->f[0]);
    case XS_OP_RMS_NORM: return xs_op_rms_norm(be, &v[0], &v[1], &v[2], (float)c->f[0]);
    case XS_OP_ROPE: return xs_op_rope(be, &v[0], &v[1], (float)c->f[0]);
    case XS_OP_SOFTMAX: return xs_op_softmax(be, &v[0], &v[1]);
    case XS_OP_KV_STORE: return xs_op_kv_store(be, kv, &v[3], &v[4], &v[5]);
    case XS_OP_ATTENTION:
        return xs_op_attention(be, &v[0], &v[1], kv, &v[5], c->ints[0], c->i64, (float)c->f[0]);
    case XS_OP_ELU: return xs_op_elu(be, &v[0], &v[1], (float)c->f[0]);
    case XS_OP_GELU: return xs_op_gelu(be, &v[0], &v[1]);
    case XS_OP_SILU_MUL: return xs_op_silu_mul(be, &v[0], &v[1]);
    case XS_OP_EMBEDDING: return xs_op_embedding(be, &v[0], &v[1], &v[2]);
    case XS_OP_ADD: return xs_op_add(be, &v[0], &v[1], &v[2]);
    case XS_OP_MUL: return xs_op_mul(be, &v[0], &v[1], &v[2]);
    case XS_OP_SCALE: return xs_op_scale(be, &v[0], &v[1], (float)c->f[0], (float)c->f[1]);
    case XS_OP_COPY: return xs_op_copy(be, &v[0], &v[1]);
    case XS_OP_FILL: return xs_op_fill(be, &v[0], (float)c->f[0]);
    case XS_OP_ARGMAX: return xs_op_argmax(be, &v[0], &v[1]);
    case XS_OP_SAMPLE_TOPK:
        return xs_op_sample_topk_at(be, &v[0], &v[1], (float)c->f[0], c->ints[0], c->u64[0],
                                    c->u64[1], c->u64[2], c->a[2].present ? &v[2] : NULL);
    default: return xs_error(XS_ERR_ARG, "op replay: unknown op %d", (int)c->op);
    }
}

/* Number of argument slots each op's call_op reads (checks a loaded file). */
static int expected_args(xs_op op) {
    int n = 0;
    for (const argspec *s = k_spec[op]; s->kind; s++)
        n += s->kind == 'C' || s->kind == 'K' ? 3 : (s->kind == 'Y' || s->kind == 'T');
    return n;
}

xs_status xs_opcall_run(xs_backend *be, const xs_opcall *c, xs_opcall_out *out) {
    memset(out, 0, sizeof *out);
    if ((int)c->op < 0 || c->op >= XS_OP_COUNT || c->n != expected_args(c->op))
        return xs_error(XS_ERR_ARG, "op replay: %s: %d arguments (expected %d)",
                        xs_op_name(c->op), c->n, (int)c->op >= 0 && c->op < XS_OP_COUNT ?
                        expected_args(c->op) : 0);
    xs_tensor v[XS_OPCALL_MAX_ARGS];
    void *buf[XS_OPCALL_MAX_ARGS] = {0};
    const xs_tensor *tp[XS_OPCALL_MAX_ARGS] = {0};
    memset(v, 0, sizeof v);
    xs_status rc = XS_OK;
    for (int i = 0; rc == XS_OK && i < c->n; i++) {
        const xs_opcall_arg *a = &c->a[i];
        if (!a->present) continue;
        if (a->same_as < 0) {
            buf[i] = be->iface->alloc(be, a->nbytes ? a->nbytes : 1);
            if (!buf[i]) {
                rc = xs_error(XS_ERR_NOMEM, "op replay: %zu bytes on backend %s", a->nbytes,
                              be->iface->name);
                break;
            }
            if (a->nbytes) rc = be->iface->upload(be, buf[i], a->host, a->nbytes);
        }
        v[i].dtype = a->dtype;
        v[i].ndim = a->ndim;
        memcpy(v[i].shape, a->shape, sizeof v[i].shape);
        memcpy(v[i].stride, a->stride, sizeof v[i].stride);
        v[i].data = buf[owner(c, i)];
        v[i].name = a->role;
        tp[i] = &v[i];
    }
    xs_kv_cache kv;
    memset(&kv, 0, sizeof kv);
    if (c->op == XS_OP_KV_STORE || c->op == XS_OP_ATTENTION) {
        const int k0 = c->op == XS_OP_KV_STORE ? 0 : 2;
        kv.k = v[k0];
        kv.v = v[k0 + 1];
        kv.pos = v[k0 + 2];
        kv.capacity = c->capacity;
    }
    if (rc == XS_OK) rc = call_op(be, c, v, &kv);
    if (rc == XS_OK) rc = download_outputs(be, c, tp, out);
    for (int i = 0; i < c->n; i++)
        if (buf[i]) be->iface->free(be, buf[i]);
    if (rc != XS_OK) xs_opcall_out_free(out);
    return rc;
}

/* ---- comparing two runs ------------------------------------------------------------ */

/* Value j of a strided view over a host storage, as double. */
static double value_at(const void *base, const xs_opcall_arg *a, int64_t j) {
    int64_t off = 0;
    for (int d = a->ndim - 1; d >= 0; d--) {
        off += (j % a->shape[d]) * a->stride[d];
        j /= a->shape[d];
    }
    switch (a->dtype) {
    case XS_F32: return ((const float *)base)[off];
    case XS_F16: return xs_f16_to_f32(((const uint16_t *)base)[off]);
    case XS_BF16: return xs_bf16_to_f32(((const uint16_t *)base)[off]);
    case XS_I32: return ((const int32_t *)base)[off];
    case XS_I64: return (double)((const int64_t *)base)[off];
    case XS_I8: return ((const int8_t *)base)[off];
    default: return ((const uint8_t *)base)[off];
    }
}

static bool is_float(xs_dtype t) {
    return t == XS_F32 || t == XS_F16 || t == XS_BF16 || xs_dtype_is_quantized(t);
}

/* nmse (sum (a-b)^2 / sum a^2) of two value arrays; bitwise-equal pairs add
 * nothing (so never-written garbage or NaN slots of a cache do not count). */
typedef struct acc {
    double num, den;
    bool inf;
} acc;

static void acc_add(acc *s, double x, double y) {
    if (x == y || (isnan(x) && isnan(y))) {
        if (isfinite(x)) s->den += x * x;
        return;
    }
    if (!isfinite(x) || !isfinite(y)) s->inf = true;
    double d = x - y;
    s->num += d * d;
    s->den += x * x;
}

static double one_error(const xs_opcall_arg *a, const void *ha, const void *hb, size_t nb) {
    if (xs_dtype_is_quantized(a->dtype)) {
        int64_t n = 1;
        for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
        float *fa = malloc((size_t)n * sizeof *fa + 1), *fb = malloc((size_t)n * sizeof *fb + 1);
        double e = INFINITY;
        if (fa && fb && nb >= xs_dtype_row_bytes(a->dtype, XS_QK) * (size_t)(n / XS_QK) &&
            xs_convert_to_f32(fa, ha, a->dtype, n) == XS_OK &&
            xs_convert_to_f32(fb, hb, a->dtype, n) == XS_OK) {
            acc s = {0, 0, false};
            for (int64_t i = 0; i < n; i++) acc_add(&s, fa[i], fb[i]);
            e = s.inf ? INFINITY : s.den > 0 ? s.num / s.den : s.num;
        }
        xs_error_clear();
        free(fa);
        free(fb);
        return e;
    }
    int64_t n = 1;
    for (int d = 0; d < a->ndim; d++) n *= a->shape[d];
    if (!is_float(a->dtype)) {
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += value_at(ha, a, i) != value_at(hb, a, i);
        return (double)bad;
    }
    acc s = {0, 0, false};
    for (int64_t i = 0; i < n; i++) acc_add(&s, value_at(ha, a, i), value_at(hb, a, i));
    return s.inf ? INFINITY : s.den > 0 ? s.num / s.den : s.num;
}

double xs_opcall_error(const xs_opcall *c, const xs_opcall_out *a, const xs_opcall_out *b,
                       const char **worst_role) {
    double worst = 0;
    if (worst_role) *worst_role = "";
    for (int k = 0; k < a->n && k < b->n; k++) {
        const xs_opcall_arg *arg = &c->a[a->idx[k]];
        /* The view is relative to the storage of the argument's owner: same base. */
        if (a->nbytes[k] != b->nbytes[k]) return INFINITY;
        double e = one_error(arg, a->host[k], b->host[k], a->nbytes[k]);
        if (!(e <= worst)) {
            worst = e;
            if (worst_role) *worst_role = arg->role;
        }
    }
    return worst;
}

/* ---- saving ------------------------------------------------------------------------ */

static xs_status add_storage(xs_st_writer *w, const char *name, const xs_opcall_arg *a,
                             const void *host, size_t nb) {
    if (xs_dtype_is_quantized(a->dtype) || a->dtype == XS_BOOL) {
        int64_t n = (int64_t)nb;
        return xs_st_writer_add(w, name, XS_U8, 1, &n, host);
    }
    int64_t n = (int64_t)(nb / xs_dtype_row_bytes(a->dtype, 1));
    return xs_st_writer_add(w, name, a->dtype, 1, &n, host);
}

static cJSON *int_array(const int64_t *v, int n) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateNumber((double)v[i]));
    return arr;
}

xs_status xs_opcall_save(const char *path, const xs_opcall *c, const xs_opcall_out *oa,
                         const xs_opcall_out *ob, const xs_opcall_meta *m) {
    xs_st_writer *w = xs_st_writer_new();
    cJSON *j = cJSON_CreateObject();
    if (!w || !j) {
        xs_st_writer_free(w);
        cJSON_Delete(j);
        return xs_error(XS_ERR_NOMEM, "op record: out of memory");
    }
    xs_status rc = XS_OK;
    char name[64];
    cJSON_AddStringToObject(j, "op", xs_op_name(c->op));
    cJSON_AddStringToObject(j, "backend_a", m->backend_a ? m->backend_a : "");
    cJSON_AddStringToObject(j, "backend_b", m->backend_b ? m->backend_b : "");
    cJSON_AddNumberToObject(j, "step", m->step);
    cJSON_AddNumberToObject(j, "call", (double)m->call);
    cJSON_AddNumberToObject(j, "nmse", isfinite(m->nmse) ? m->nmse : 1e300);
    cJSON_AddNumberToObject(j, "tolerance", m->tol);
    cJSON *sc = cJSON_AddObjectToObject(j, "scalars");
    cJSON *ints = cJSON_AddArrayToObject(sc, "ints");
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(ints, cJSON_CreateNumber(c->ints[i]));
    cJSON *fl = cJSON_AddArrayToObject(sc, "floats");
    for (int i = 0; i < 2; i++) cJSON_AddItemToArray(fl, cJSON_CreateNumber(c->f[i]));
    cJSON_AddNumberToObject(sc, "i64", (double)c->i64);
    cJSON *u = cJSON_AddArrayToObject(sc, "u64"); /* as strings: doubles lose bits */
    for (int i = 0; i < 3; i++) {
        char b[32];
        snprintf(b, sizeof b, "%llu", (unsigned long long)c->u64[i]);
        cJSON_AddItemToArray(u, cJSON_CreateString(b));
    }
    cJSON_AddNumberToObject(sc, "capacity", (double)c->capacity);
    cJSON *args = cJSON_AddArrayToObject(j, "args");
    for (int i = 0; rc == XS_OK && i < c->n; i++) {
        const xs_opcall_arg *a = &c->a[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(args, o);
        cJSON_AddStringToObject(o, "role", a->role);
        cJSON_AddBoolToObject(o, "present", a->present);
        cJSON_AddBoolToObject(o, "output", a->output);
        cJSON_AddNumberToObject(o, "same_as", a->same_as);
        if (!a->present) continue;
        cJSON_AddStringToObject(o, "dtype", xs_dtype_name(a->dtype));
        cJSON_AddItemToObject(o, "shape", int_array(a->shape, a->ndim));
        cJSON_AddItemToObject(o, "stride", int_array(a->stride, a->ndim));
        cJSON_AddNumberToObject(o, "nbytes", (double)a->nbytes);
        if (a->same_as >= 0) continue;
        snprintf(name, sizeof name, "in.%d.%s", i, a->role);
        rc = add_storage(w, name, a, a->host, a->nbytes);
    }
    for (int side = 0; rc == XS_OK && side < 2; side++) {
        const xs_opcall_out *o = side ? ob : oa;
        for (int k = 0; rc == XS_OK && o && k < o->n; k++) {
            const xs_opcall_arg *a = &c->a[o->idx[k]];
            snprintf(name, sizeof name, "out%c.%d.%s", side ? 'B' : 'A', o->idx[k], a->role);
            rc = add_storage(w, name, a, o->host[k], o->nbytes[k]);
        }
    }
    char *js = cJSON_PrintUnformatted(j);
    if (rc == XS_OK && !js) rc = xs_error(XS_ERR_NOMEM, "op record: out of memory");
    if (rc == XS_OK) rc = xs_st_writer_set_metadata(w, "xswarm.op_call", js);
    if (rc == XS_OK) rc = xs_st_writer_set_metadata(w, "op", xs_op_name(c->op));
    if (rc == XS_OK) rc = xs_st_writer_save(w, path);
    free(js);
    cJSON_Delete(j);
    xs_st_writer_free(w);
    return rc;
}

/* ---- the recorder -------------------------------------------------------------------- */

static struct {
    bool armed, busy, done, have;
    xs_backend *a, *b;
    xs_op op;
    int step, from_step;
    char dir[900], tag[32];
    xs_opcall pending;   /* inputs of the current call of op on b */
    xs_oprec_result res;
} g_rec;

static void rec_fail(const char *what) {
    snprintf(g_rec.res.error, sizeof g_rec.res.error, "%s: %s", what, xs_error_msg());
    xs_error_clear();
    g_rec.done = true; /* stop: a half-working recorder would mislead */
}

static void rec_after(xs_backend *be, xs_op op, va_list ap) {
    xs_opcall now;
    const xs_tensor *t[XS_OPCALL_MAX_ARGS] = {0};
    walk(op, ap, &now, t);
    xs_opcall_out ob, oa;
    memset(&oa, 0, sizeof oa);
    if (download_outputs(be, &g_rec.pending, t, &ob) != XS_OK) {
        xs_opcall_out_free(&ob);
        rec_fail("downloading B's output");
        return;
    }
    g_rec.busy = true; /* A's run goes through the same hook */
    xs_status rc = xs_opcall_run(g_rec.a, &g_rec.pending, &oa);
    g_rec.busy = false;
    const int64_t call = g_rec.res.calls_checked++;
    if (rc != XS_OK) {
        xs_opcall_out_free(&ob);
        rec_fail("running the call on A");
        return;
    }
    const double tol = xs_opcall_tolerance(op);
    const double e = xs_opcall_error(&g_rec.pending, &oa, &ob, NULL);
    if (!(e > tol)) {
        xs_opcall_out_free(&oa);
        xs_opcall_out_free(&ob);
        return;
    }
    xs_oprec_result *r = &g_rec.res;
    if (g_rec.tag[0])
        snprintf(r->path, sizeof r->path, "%s/op-%s-%s.safetensors", g_rec.dir, xs_op_name(op),
                 g_rec.tag);
    else
        snprintf(r->path, sizeof r->path, "%s/op-%s-step%d.safetensors", g_rec.dir,
                 xs_op_name(op), g_rec.step);
    xs_opcall_meta m = {.backend_a = g_rec.a->iface->name, .backend_b = be->iface->name,
                        .step = g_rec.step, .call = call, .nmse = e, .tol = tol};
    if (xs_opcall_save(r->path, &g_rec.pending, &oa, &ob, &m) != XS_OK) {
        rec_fail("saving the call");
    } else {
        r->found = true;
        r->step = g_rec.step;
        r->nmse = e;
        r->tol = tol;
        g_rec.done = true;
    }
    xs_opcall_out_free(&oa);
    xs_opcall_out_free(&ob);
}

static void rec_hook(xs_backend *be, xs_op op, int phase, ...) {
    if (!g_rec.armed || g_rec.busy || g_rec.done || be != g_rec.b || op != g_rec.op ||
        g_rec.step < g_rec.from_step)
        return;
    va_list ap;
    va_start(ap, phase);
    if (phase == XS_OP_HOOK_BEFORE) {
        xs_opcall_free(&g_rec.pending);
        g_rec.have = false;
        const xs_tensor *t[XS_OPCALL_MAX_ARGS] = {0};
        walk(op, ap, &g_rec.pending, t);
        if (describe_args(&g_rec.pending, t) != XS_OK ||
            download_args(be, &g_rec.pending, t) != XS_OK)
            rec_fail("capturing the inputs");
        else
            g_rec.have = true;
    } else if (g_rec.have) {
        g_rec.have = false;
        rec_after(be, op, ap);
    }
    va_end(ap);
}

xs_status xs_oprec_arm(xs_backend *a, xs_backend *b, xs_op op, int from_step, const char *dir,
                       const char *tag) {
    if (!a || !b || (int)op < 0 || op >= XS_OP_COUNT || !dir)
        return xs_error(XS_ERR_ARG, "op record: bad arguments");
    xs_opcall_free(&g_rec.pending);
    memset(&g_rec, 0, sizeof g_rec);
    g_rec.a = a;
    g_rec.b = b;
    g_rec.op = op;
    g_rec.from_step = from_step;
    snprintf(g_rec.dir, sizeof g_rec.dir, "%s", dir);
    snprintf(g_rec.tag, sizeof g_rec.tag, "%s", tag ? tag : "");
    g_rec.armed = true;
    xs_op_hook_ = rec_hook;
    return XS_OK;
}

void xs_oprec_set_step(int step) { g_rec.step = step; }

void xs_oprec_disarm(xs_oprec_result *r) {
    xs_op_hook_ = NULL;
    if (r) *r = g_rec.res;
    xs_opcall_free(&g_rec.pending);
    memset(&g_rec, 0, sizeof g_rec);
}
