/*
 * fault.c — see fault.h. The corruption is deliberately deterministic and
 * op-agnostic in form (one lane per row) but tied to one op of one backend,
 * so a diagnosis that names the op is checkable.
 */
#include "backend/fault.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"

_Atomic int xs_fault_state_ = 0;

static struct {
    char backend[32];
    int op;                 /* xs_op */
    int64_t from_call;      /* first corrupted call (0-based) */
    int64_t until_call;     /* first call no longer corrupted, -1: never ends */
    _Atomic int64_t calls;  /* calls of that op on that backend so far */
    _Atomic int64_t hits;
} g_fault;

static pthread_mutex_t g_fault_lock = PTHREAD_MUTEX_INITIALIZER;

/* Parse "<backend>:<op>[@step=N]" into g_fault (not armed on error). */
static xs_status fault_parse(const char *spec) {
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof g_fault.backend)
        return xs_error(XS_ERR_ARG, "XSWARM_FAULT '%s': expected <backend>:<op>[@step=N]", spec);
    char opname[64];
    const char *at = strchr(colon + 1, '@');
    size_t oplen = at ? (size_t)(at - colon - 1) : strlen(colon + 1);
    if (oplen == 0 || oplen >= sizeof opname)
        return xs_error(XS_ERR_ARG, "XSWARM_FAULT '%s': missing op name", spec);
    memcpy(opname, colon + 1, oplen);
    opname[oplen] = 0;
    int op = xs_op_from_name(opname);
    if (op < 0)
        return xs_error(XS_ERR_ARG, "XSWARM_FAULT '%s': unknown op '%s'", spec, opname);
    int64_t from = 0, until = -1;
    for (const char *opt = at; opt; opt = strchr(opt + 1, '@')) {
        int64_t *dst = !strncmp(opt + 1, "step=", 5) ? &from
                       : !strncmp(opt + 1, "until=", 6) ? &until : NULL;
        const char *v = dst ? strchr(opt, '=') + 1 : NULL;
        char *end = NULL;
        long long n = v ? strtoll(v, &end, 10) : -1;
        if (!v || end == v || (*end && *end != '@') || n < 0)
            return xs_error(XS_ERR_ARG,
                            "XSWARM_FAULT '%s': options are @step=N and @until=M (N, M >= 0)", spec);
        *dst = n;
    }
    if (until >= 0 && until <= from)
        return xs_error(XS_ERR_ARG, "XSWARM_FAULT '%s': @until must be after @step", spec);
    memcpy(g_fault.backend, spec, (size_t)(colon - spec));
    g_fault.backend[colon - spec] = 0;
    g_fault.op = op;
    g_fault.from_call = from;
    g_fault.until_call = until;
    return XS_OK;
}

const char *xs_fault_describe(char *buf, size_t n) {
    if (!buf || n == 0) return "";
    buf[0] = 0;
    if (atomic_load(&xs_fault_state_) != 2) return buf;
    int w = snprintf(buf, n, "%s:%s", g_fault.backend, xs_op_name((xs_op)g_fault.op));
    if (g_fault.from_call > 0 && w >= 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, "@step=%lld", (long long)g_fault.from_call);
    if (g_fault.until_call >= 0 && w >= 0 && (size_t)w < n)
        snprintf(buf + w, n - (size_t)w, "@until=%lld", (long long)g_fault.until_call);
    return buf;
}

static void fault_announce(void) {
    char d[128];
    fprintf(stderr,
            "\n*** xswarm: FAULT INJECTION ACTIVE (XSWARM_FAULT=%s): outputs of op '%s' on "
            "backend '%s' are DELIBERATELY CORRUPTED%s. Results are wrong on purpose. ***\n\n",
            xs_fault_describe(d, sizeof d), xs_op_name((xs_op)g_fault.op), g_fault.backend,
            g_fault.from_call > 0 || g_fault.until_call >= 0 ? " for some calls only" : "");
    fflush(stderr);
}

/* Caller holds g_fault_lock. */
static xs_status fault_configure_locked(const char *spec) {
    xs_status rc = XS_OK;
    atomic_store(&g_fault.calls, 0);
    atomic_store(&g_fault.hits, 0);
    if (!spec || !*spec) {
        atomic_store(&xs_fault_state_, 1);
    } else if ((rc = fault_parse(spec)) == XS_OK) {
        atomic_store(&xs_fault_state_, 2);
        fault_announce();
    } else {
        atomic_store(&xs_fault_state_, 1);
    }
    return rc;
}

xs_status xs_fault_configure(const char *spec) {
    pthread_mutex_lock(&g_fault_lock);
    xs_status rc = fault_configure_locked(spec);
    pthread_mutex_unlock(&g_fault_lock);
    return rc;
}

/* First use: read XSWARM_FAULT once (under the lock: ops may start on
 * several threads at once). A bad value is reported loudly and ignored
 * (library code never exits). */
static void fault_init_from_env(void) {
    pthread_mutex_lock(&g_fault_lock);
    if (atomic_load(&xs_fault_state_) == 0 &&
        fault_configure_locked(getenv("XSWARM_FAULT")) != XS_OK) {
        fprintf(stderr, "*** xswarm: XSWARM_FAULT ignored: %s ***\n", xs_error_msg());
        xs_error_clear();
    }
    pthread_mutex_unlock(&g_fault_lock);
}

bool xs_fault_active(void) {
    if (atomic_load(&xs_fault_state_) == 0) fault_init_from_env();
    return atomic_load(&xs_fault_state_) == 2;
}

int64_t xs_fault_hits(void) { return atomic_load(&g_fault.hits); }

/* Corrupt lane D/3 of every row of a strided f32 host tensor. */
static void fault_corrupt_host(float *base, const xs_tensor *y) {
    const int nd = y->ndim;
    const int64_t D = nd ? y->shape[nd - 1] : 1;
    const int64_t ds = nd ? y->stride[nd - 1] : 1;
    const int64_t lane = D / 3;
    int64_t rows = 1;
    for (int d = 0; d < nd - 1; d++) rows *= y->shape[d];
    for (int64_t r = 0; r < rows; r++) {
        /* offset of row r: unravel over the leading dims */
        int64_t off = 0, rem = r;
        for (int d = nd - 2; d >= 0; d--) {
            off += (rem % y->shape[d]) * y->stride[d];
            rem /= y->shape[d];
        }
        float *row = base + off;
        double ss = 0;
        for (int64_t i = 0; i < D; i++) ss += (double)row[i * ds] * row[i * ds];
        float rms = (float)sqrt(ss / (double)(D > 0 ? D : 1));
        float *v = &row[lane * ds];
        *v = -*v + 0.05f * rms + 0.01f;
    }
}

void xs_fault_apply(xs_backend *be, xs_op op, xs_tensor *y) {
    if (!xs_fault_active()) return;
    if ((int)op != g_fault.op || !be || !be->iface || !be->iface->name ||
        strcmp(be->iface->name, g_fault.backend) != 0)
        return;
    int64_t call = atomic_fetch_add(&g_fault.calls, 1);
    if (call < g_fault.from_call || (g_fault.until_call >= 0 && call >= g_fault.until_call)) return;
    if (!y || !y->data || y->dtype != XS_F32 || xs_tensor_numel(y) == 0) return;
    if (be->iface->host_memory) {
        fault_corrupt_host((float *)y->data, y);
    } else {
        /* Device: only contiguous outputs (every op but rope/copy/fill writes one). */
        if (!xs_tensor_is_contiguous(y) || !be->iface->download || !be->iface->upload) return;
        size_t nb = xs_tensor_nbytes(y);
        float *h = malloc(nb);
        if (!h) return;
        if (be->iface->download(be, h, y->data, nb) == XS_OK) {
            xs_tensor hv = *y;
            hv.data = h;
            fault_corrupt_host(h, &hv);
            (void)be->iface->upload(be, y->data, h, nb);
        }
        free(h);
    }
    atomic_fetch_add(&g_fault.hits, 1);
}
