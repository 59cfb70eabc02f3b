/*
 * op_replay.c — `xswarm diagnose --replay FILE`: load one recorded op call
 * (op_record.h), run only that call on backends A and B, and say whether
 * they differ beyond the op's tolerance. The file comes from anywhere (a
 * user attaches it to a bug report), so everything in it is validated
 * before a single op runs: storages must exist, have the dtype and the
 * size the views need, and every view must stay inside its storage.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diag/op_record.h"
#include "formats/safetensors.h"

static xs_status bad(const char *path, const char *what, const char *role) {
    return xs_error(XS_ERR_FORMAT, "%s: not a valid xswarm op call: %s%s%s", path, what,
                    role ? " of argument " : "", role ? role : "");
}

static bool get_dims(const cJSON *arr, int64_t *v, int *n) {
    if (!cJSON_IsArray(arr)) return false;
    int k = cJSON_GetArraySize(arr);
    if (k < 0 || k > XS_MAX_DIMS) return false;
    for (int i = 0; i < k; i++) {
        const cJSON *e = cJSON_GetArrayItem(arr, i);
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 1e12 ||
            e->valuedouble != floor(e->valuedouble))
            return false;
        v[i] = (int64_t)e->valuedouble;
    }
    *n = k;
    return true;
}

static double num(const cJSON *o, const char *key, double dflt) {
    const cJSON *e = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(e) ? e->valuedouble : dflt;
}

/* One argument: its view from the JSON, its storage from the file. */
static xs_status load_arg(const char *path, const xs_safetensors *st, const cJSON *o, int i,
                          xs_opcall *c) {
    xs_opcall_arg *a = &c->a[i];
    const cJSON *role = cJSON_GetObjectItem(o, "role");
    if (!cJSON_IsString(role) || strlen(role->valuestring) >= sizeof a->role)
        return bad(path, "missing role", NULL);
    snprintf(a->role, sizeof a->role, "%s", role->valuestring);
    a->present = cJSON_IsTrue(cJSON_GetObjectItem(o, "present"));
    a->output = cJSON_IsTrue(cJSON_GetObjectItem(o, "output"));
    a->same_as = (int)num(o, "same_as", -1);
    if (!a->present) return XS_OK;
    const cJSON *dt = cJSON_GetObjectItem(o, "dtype");
    int d = cJSON_IsString(dt) ? xs_dtype_from_name(dt->valuestring) : -1;
    if (d < 0) return bad(path, "unknown dtype", a->role);
    a->dtype = (xs_dtype)d;
    int ns = -1, nt = -2;
    if (!get_dims(cJSON_GetObjectItem(o, "shape"), a->shape, &ns) ||
        !get_dims(cJSON_GetObjectItem(o, "stride"), a->stride, &nt) || ns != nt)
        return bad(path, "bad shape or stride", a->role);
    a->ndim = ns;
    /* the span the view needs, in bytes */
    size_t need = 0;
    xs_tensor t = xs_tensor_make(a->dtype, a->ndim, a->shape, NULL);
    if (xs_dtype_is_quantized(a->dtype)) {
        memcpy(t.stride, a->stride, sizeof t.stride);
        if (a->ndim < 1 || a->shape[a->ndim - 1] % XS_QK || !xs_tensor_is_contiguous(&t))
            return bad(path, "quantized view not contiguous", a->role);
        need = xs_tensor_nbytes(&t);
    } else if (xs_tensor_numel(&t) > 0) {
        double ext = 1;
        for (int k = 0; k < a->ndim; k++) ext += (double)(a->shape[k] - 1) * (double)a->stride[k];
        if (ext > 1e11) return bad(path, "view too large", a->role);
        need = (size_t)ext * xs_dtype_row_bytes(a->dtype, 1);
    }
    if (xs_tensor_numel(&t) > (int64_t)1e11) return bad(path, "view too large", a->role);
    if (a->same_as >= 0) {
        if (a->same_as >= i || !c->a[a->same_as].present || c->a[a->same_as].same_as >= 0)
            return bad(path, "bad alias", a->role);
        xs_opcall_arg *o2 = &c->a[a->same_as];
        if (xs_dtype_row_bytes(o2->dtype, 1) != xs_dtype_row_bytes(a->dtype, 1) ||
            need > o2->nbytes)
            return bad(path, "alias outside its storage", a->role);
        a->nbytes = need;
        return XS_OK;
    }
    char name[64];
    snprintf(name, sizeof name, "in.%d.%s", i, a->role);
    const xs_tensor *s = xs_st_find(st, name);
    if (!s) return bad(path, "missing storage tensor", a->role);
    const bool raw = xs_dtype_is_quantized(a->dtype) || a->dtype == XS_BOOL;
    if (s->ndim != 1 || s->dtype != (raw ? XS_U8 : a->dtype))
        return bad(path, "storage tensor of the wrong dtype or rank", a->role);
    size_t have = (size_t)s->shape[0] * xs_dtype_row_bytes(s->dtype, 1);
    if (have < need) return bad(path, "storage smaller than the view", a->role);
    a->nbytes = have;
    a->host = s->data;
    a->owned = false;
    return XS_OK;
}

static char g_ba[32], g_bb[32];

xs_status xs_opcall_load(const char *path, xs_safetensors **stp, xs_opcall *c, xs_opcall_meta *m,
                         char *backend_a, char *backend_b, size_t bn) {
    memset(c, 0, sizeof *c);
    memset(m, 0, sizeof *m);
    *stp = NULL;
    xs_safetensors *st = NULL;
    XS_TRY(xs_st_open(path, &st));
    const char *js = xs_st_metadata(st, "xswarm.op_call");
    if (!js) {
        xs_st_close(st);
        return bad(path, "no 'xswarm.op_call' metadata (was it written by xswarm diagnose?)",
                   NULL);
    }
    cJSON *j = cJSON_Parse(js);
    xs_status rc = XS_OK;
    const cJSON *op = cJSON_GetObjectItem(j, "op");
    int opi = cJSON_IsString(op) ? xs_op_from_name(op->valuestring) : -1;
    const cJSON *args = cJSON_GetObjectItem(j, "args");
    const cJSON *sc = cJSON_GetObjectItem(j, "scalars");
    if (!j) rc = bad(path, "metadata is not JSON", NULL);
    else if (opi < 0) rc = bad(path, "unknown op", NULL);
    else if (!cJSON_IsArray(args) || cJSON_GetArraySize(args) > XS_OPCALL_MAX_ARGS)
        rc = bad(path, "bad argument list", NULL);
    else if (!cJSON_IsObject(sc)) rc = bad(path, "no scalars", NULL);
    if (rc == XS_OK) {
        c->op = (xs_op)opi;
        c->n = cJSON_GetArraySize(args);
        for (int i = 0; rc == XS_OK && i < c->n; i++)
            rc = load_arg(path, st, cJSON_GetArrayItem(args, i), i, c);
    }
    if (rc == XS_OK) {
        const cJSON *ints = cJSON_GetObjectItem(sc, "ints"), *fl = cJSON_GetObjectItem(sc, "floats");
        const cJSON *u = cJSON_GetObjectItem(sc, "u64");
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(ints, i);
            double v = cJSON_IsNumber(e) ? e->valuedouble : 0;
            c->ints[i] = v > -1e9 && v < 1e9 ? (int)v : 0;
        }
        for (int i = 0; i < 2; i++) {
            const cJSON *e = cJSON_GetArrayItem(fl, i);
            c->f[i] = cJSON_IsNumber(e) ? e->valuedouble : 0;
        }
        for (int i = 0; i < 3; i++) {
            const cJSON *e = cJSON_GetArrayItem(u, i);
            c->u64[i] = cJSON_IsString(e) ? strtoull(e->valuestring, NULL, 10) : 0;
        }
        double i64 = num(sc, "i64", 0), cap = num(sc, "capacity", 0);
        c->i64 = i64 > -1e15 && i64 < 1e15 ? (int64_t)i64 : 0;
        c->capacity = cap > 0 && cap < 1e12 ? (int64_t)cap : 0;
        const cJSON *ba = cJSON_GetObjectItem(j, "backend_a"), *bb = cJSON_GetObjectItem(j, "backend_b");
        snprintf(backend_a ? backend_a : g_ba, backend_a ? bn : sizeof g_ba, "%s",
                 cJSON_IsString(ba) ? ba->valuestring : "");
        snprintf(backend_b ? backend_b : g_bb, backend_b ? bn : sizeof g_bb, "%s",
                 cJSON_IsString(bb) ? bb->valuestring : "");
        m->step = (int)num(j, "step", -1);
        m->call = (int64_t)num(j, "call", -1);
        m->nmse = num(j, "nmse", -1);
        m->tol = num(j, "tolerance", -1);
    }
    /* positions index ring slots: negative ones would address outside the cache */
    for (int i = 0; rc == XS_OK && i < c->n; i++) {
        const xs_opcall_arg *a = &c->a[i];
        if (!a->present || a->dtype != XS_I32 || strcmp(a->role, "pos") || a->same_as >= 0)
            continue;
        for (size_t k = 0; k < a->nbytes / 4; k++)
            if (((const int32_t *)a->host)[k] < 0) {
                rc = bad(path, "negative position", a->role);
                break;
            }
    }
    cJSON_Delete(j);
    if (rc != XS_OK) {
        xs_st_close(st);
        memset(c, 0, sizeof *c);
        return rc;
    }
    *stp = st;
    return XS_OK;
}

xs_status xs_op_replay(const char *path, const char *a_name, const char *b_name, int threads,
                       FILE *f, bool *over) {
    *over = false;
    xs_safetensors *st = NULL;
    xs_opcall c;
    xs_opcall_meta m;
    char ra[32], rb[32];
    XS_TRY(xs_opcall_load(path, &st, &c, &m, ra, rb, sizeof ra));
    if (!a_name || !*a_name) a_name = ra[0] ? ra : "ref";
    if (!b_name || !*b_name) b_name = rb[0] ? rb : "cpu";
    xs_backend *A = NULL, *B = NULL;
    xs_opcall_out oa, ob;
    memset(&oa, 0, sizeof oa);
    memset(&ob, 0, sizeof ob);
    xs_status rc = xs_backend_open(a_name, threads, &A);
    if (rc == XS_OK) rc = xs_backend_open(b_name, threads, &B);
    if (f && rc == XS_OK) {
        fprintf(f, "replay: op %s (recorded at step %d, call %lld: %s vs %s, nmse %.3g)\n",
                xs_op_name(c.op), m.step, (long long)m.call, ra, rb, m.nmse);
        for (int i = 0; i < c.n; i++) {
            const xs_opcall_arg *a = &c.a[i];
            if (!a->present) {
                fprintf(f, "  %-10s (none)\n", a->role);
                continue;
            }
            xs_tensor t = xs_tensor_make(a->dtype, a->ndim, a->shape, NULL);
            memcpy(t.stride, a->stride, sizeof t.stride);
            char s[96];
            fprintf(f, "  %-10s %s %s stride [", a->role, xs_dtype_name(a->dtype),
                    xs_tensor_shape_str(&t, s, sizeof s));
            for (int d = 0; d < a->ndim; d++)
                fprintf(f, "%s%lld", d ? ", " : "", (long long)a->stride[d]);
            fprintf(f, "]%s%s%s\n", xs_tensor_is_contiguous(&t) ? "" : " (non-contiguous view)",
                    a->output ? " (output)" : "", a->same_as >= 0 ? " (aliases an input)" : "");
        }
    }
    if (rc == XS_OK) rc = xs_opcall_run(A, &c, &oa);
    if (rc != XS_OK) rc = xs_error_prefix(rc, "replay on %s: ", a_name);
    if (rc == XS_OK) {
        rc = xs_opcall_run(B, &c, &ob);
        if (rc != XS_OK) rc = xs_error_prefix(rc, "replay on %s: ", b_name);
    }
    if (rc == XS_OK) {
        const char *role = "";
        const double e = xs_opcall_error(&c, &oa, &ob, &role);
        const double tol = xs_opcall_tolerance(c.op);
        *over = !(e <= tol);
        if (f) {
            if (tol == 0)
                fprintf(f, "%s: %s vs %s: %.0f differing elements of %s (must be exact): %s\n",
                        xs_op_name(c.op), a_name, b_name, e, role[0] ? role : "output",
                        *over ? "BEYOND TOLERANCE" : "within tolerance");
            else
                fprintf(f, "%s: %s vs %s: nmse %.3g%s%s (tolerance %.1e): %s\n", xs_op_name(c.op),
                        a_name, b_name, e, role[0] ? " in " : "", role,
                        tol, *over ? "BEYOND TOLERANCE" : "within tolerance");
        }
    }
    xs_opcall_out_free(&oa);
    xs_opcall_out_free(&ob);
    xs_backend_close(B);
    xs_backend_close(A);
    xs_st_close(st);
    return rc;
}
