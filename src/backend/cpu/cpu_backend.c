/*
 * cpu_backend.c — the `cpu` backend: SIMD + threads. (skeleton: every op
 * declined, so the ops.h wrappers fall back to ref)
 */
#include <stdlib.h>

#include "backend/host_memory.h"

static void cpu_destroy(xs_backend *be) { free(be); }

static const xs_backend_iface k_cpu_iface = {
    .name = "cpu",
    .host_memory = true,
    .destroy = cpu_destroy,
    .alloc = xs_host_alloc,
    .free = xs_host_free,
    .upload = xs_host_upload,
    .download = xs_host_download,
    .synchronize = xs_host_synchronize,
};

xs_status xs_backend_cpu_new(int n_threads, xs_backend **out) {
    xs_backend *be = calloc(1, sizeof *be);
    if (!be) return xs_error(XS_ERR_NOMEM, "cpu backend: out of memory");
    be->iface = &k_cpu_iface;
    be->n_threads = n_threads;
    *out = be;
    return XS_OK;
}
