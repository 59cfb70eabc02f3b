/*
 * lanes.c — the lanes.h wrappers: forward to the backend's lanes hooks,
 * or act as the single lane of a backend without them.
 */
#include "backend/lanes.h"

#include <stdlib.h>
#include <string.h>

int xs_backend_lanes(xs_backend *be, int n) {
    if (!be || !be->lanes || !be->lanes->lanes) return 1;
    return be->lanes->lanes(be, n < 1 ? 1 : n);
}

int xs_backend_lane_count(xs_backend *be) { return xs_backend_lanes(be, 1); }

xs_status xs_backend_set_lane(xs_backend *be, int lane) {
    if (!be) return xs_error(XS_ERR_ARG, "set_lane: NULL backend");
    if (!be->lanes || !be->lanes->set_lane) {
        if (lane != 0)
            return xs_error(XS_ERR_ARG, "set_lane: backend %s has one lane (asked for %d)",
                            be->iface->name, lane);
        return XS_OK;
    }
    return be->lanes->set_lane(be, lane);
}

int xs_backend_current_lane(xs_backend *be) {
    if (!be || !be->lanes || !be->lanes->current_lane) return 0;
    return be->lanes->current_lane(be);
}

xs_status xs_backend_join_lanes(xs_backend *be) {
    if (!be || !be->lanes || !be->lanes->join_lanes) return XS_OK;
    return be->lanes->join_lanes(be);
}

void *xs_backend_host_alloc(xs_backend *be, size_t nbytes) {
    if (be && be->lanes && be->lanes->host_alloc) return be->lanes->host_alloc(be, nbytes);
    return malloc(nbytes ? nbytes : 1);
}

void xs_backend_host_free(xs_backend *be, void *p) {
    if (!p) return;
    if (be && be->lanes && be->lanes->host_free) be->lanes->host_free(be, p);
    else free(p);
}

xs_status xs_backend_download_async(xs_backend *be, void *dst_host, const void *src,
                                    size_t nbytes) {
    if (!be || (nbytes && (!dst_host || !src)))
        return xs_error(XS_ERR_ARG, "download_async: NULL argument");
    if (be->lanes && be->lanes->download_async)
        return be->lanes->download_async(be, dst_host, src, nbytes);
    return be->iface->download(be, dst_host, src, nbytes);
}

xs_status xs_backend_synchronize(xs_backend *be) {
    if (!be) return xs_error(XS_ERR_ARG, "synchronize: NULL backend");
    return be->iface->synchronize ? be->iface->synchronize(be) : XS_OK;
}

int xs_lanes_from_env(xs_backend *be) {
    int n = (be && be->lanes) ? 8 : 1;
    const char *e = getenv("XSWARM_MIMI_LANES");
    if (e && *e) {
        char *end = NULL;
        long v = strtol(e, &end, 10);
        if (end && !*end) n = v < 1 ? 1 : v > 64 ? 64 : (int)v;
    }
    return n;
}
