/*
 * graph.c — record-once, replay-after driver over the backend's optional
 * graph ops (see graph.h for the contract).
 */
#include "backend/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/fault.h"
#include "backend/op_hook.h"
#include "core/log.h"

bool xs_graph_available(xs_backend *be) {
    if (!be || !be->iface || !be->iface->graph_begin || !be->iface->graph_end ||
        !be->iface->graph_launch || !be->iface->graph_free)
        return false;
    /* Fault injection and op observers act per op call on the host; a
     * replay makes no op calls, so they would silently stop seeing ops. */
    if (xs_fault_active() || xs_op_hook_) return false;
    const char *env = getenv("XSWARM_CUDA_GRAPHS");
    return !(env && !strcmp(env, "0"));
}

uint64_t xs_graph_key_add(uint64_t key, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        key ^= (v >> (8 * i)) & 0xffu;
        key *= 1099511628211ull;
    }
    return key;
}

void xs_graph_free(xs_backend *be, xs_graph *g) {
    if (!g) return;
    if (g->exec && be && be->iface && be->iface->graph_free) be->iface->graph_free(be, g->exec);
    memset(g, 0, sizeof *g);
}

static xs_status run_eager(xs_graph *g, xs_graph_fn fn, void *ctx) {
    g->eager++;
    return fn(ctx);
}

xs_status xs_graph_run(xs_backend *be, xs_graph *g, uint64_t key, xs_graph_fn fn, void *ctx) {
    if (!g || !xs_graph_available(be)) return fn(ctx);
    if (!g->keyed || g->key != key) {
        /* other shapes or buffers: the old recording would run stale pointers */
        if (g->exec) be->iface->graph_free(be, g->exec);
        g->exec = NULL;
        g->key = key;
        g->keyed = true;
        g->warm = 0;
        g->failed = false;
    }
    if (g->exec) {
        xs_status rc = be->iface->graph_launch(be, g->exec);
        if (rc == XS_OK) g->launches++;
        return rc;
    }
    if (g->failed) return run_eager(g, fn, ctx);
    if (g->warm < 1) {
        g->warm++;
        return run_eager(g, fn, ctx);
    }
    /* Record. Nothing runs during capture, so on failure the device state is
     * untouched and fn can simply run eagerly. */
    xs_status rc = be->iface->graph_begin(be);
    if (rc == XS_OK) {
        xs_status rf = fn(ctx);
        char why[256] = "";
        if (rf != XS_OK) snprintf(why, sizeof why, "%s", xs_error_msg());
        void *exec = NULL;
        xs_status re = be->iface->graph_end(be, g->programmatic, &exec);
        if (re != XS_OK && !why[0]) snprintf(why, sizeof why, "%s", xs_error_msg());
        if (rf == XS_OK && re == XS_OK) {
            g->exec = exec;
            g->captures++;
            rc = be->iface->graph_launch(be, g->exec);
            if (rc == XS_OK) g->launches++;
            return rc;
        }
        if (exec) be->iface->graph_free(be, exec);
        XS_LOGW("%s: graph capture failed, running eagerly: %s", be->iface->name, why);
    } else {
        XS_LOGW("%s: graph capture unavailable, running eagerly: %s", be->iface->name,
                xs_error_msg());
    }
    g->failed = true;
    return run_eager(g, fn, ctx);
}
