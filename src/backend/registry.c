/*
 * registry.c — open a backend by name; pick the default one.
 */
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"

#ifdef XSWARM_HAVE_CUDA
bool xs_cuda_probe(char *reason, size_t n); /* backend/cuda */
#endif

bool xs_backend_cuda_usable(char *reason, size_t n) {
#ifdef XSWARM_HAVE_CUDA
    return xs_cuda_probe(reason, n);
#else
    if (reason) snprintf(reason, n, "this build has no CUDA backend (built with XSWARM_CUDA=OFF or without nvcc)");
    return false;
#endif
}

const char *xs_backend_default_name(void) {
    return xs_backend_cuda_usable(NULL, 0) ? "cuda" : "cpu";
}

xs_status xs_backend_open(const char *name, int n_threads, xs_backend **out) {
    if (!name) name = xs_backend_default_name();
    xs_status rc;
    if (!strcmp(name, "ref")) {
        rc = xs_backend_ref_new(out);
    } else if (!strcmp(name, "cpu")) {
        rc = xs_backend_cpu_new(n_threads, out);
    } else if (!strcmp(name, "cuda")) {
        char why[256];
        if (!xs_backend_cuda_usable(why, sizeof why))
            return xs_error(XS_ERR_BACKEND, "CUDA backend not usable: %s", why);
#ifdef XSWARM_HAVE_CUDA
        rc = xs_backend_cuda_new(out);
#else
        rc = XS_ERR_UNSUPPORTED;
#endif
    } else {
        return xs_error(XS_ERR_ARG, "unknown backend '%s' (expected ref, cpu or cuda)", name);
    }
    return rc;
}

void xs_backend_close(xs_backend *be) {
    if (be && be->iface->destroy) be->iface->destroy(be);
}
