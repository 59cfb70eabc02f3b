/*
 * ref_backend.c — the `ref` backend: the oracle. (skeleton; ops to come)
 */
#include <stdlib.h>

#include "backend/host_memory.h"

static void ref_destroy(xs_backend *be) { free(be); }

static const xs_backend_iface k_ref_iface = {
    .name = "ref",
    .host_memory = true,
    .destroy = ref_destroy,
    .alloc = xs_host_alloc,
    .free = xs_host_free,
    .upload = xs_host_upload,
    .download = xs_host_download,
    .synchronize = xs_host_synchronize,
};

xs_status xs_backend_ref_new(xs_backend **out) {
    xs_backend *be = calloc(1, sizeof *be);
    if (!be) return xs_error(XS_ERR_NOMEM, "ref backend: out of memory");
    be->iface = &k_ref_iface;
    be->n_threads = 1;
    *out = be;
    return XS_OK;
}
