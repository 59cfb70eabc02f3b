/*
 * lanes.h — run independent pieces of device work side by side (see the
 * ordering contract at xs_lanes_iface in backend.h). On backends without
 * lanes every function here is the one-lane equivalent: lanes() is 1,
 * set_lane(0) is fine, host memory is malloc and download_async is a plain
 * (waiting) download, so callers need no special case.
 */
#ifndef XS_BACKEND_LANES_H
#define XS_BACKEND_LANES_H

#include <stddef.h>

#include "backend/backend.h"

/* Make at least n lanes (n >= 1); returns how many the backend has (1
 * without lanes; may be fewer than n when the backend has a limit). */
int xs_backend_lanes(xs_backend *be, int n);
/* Lanes the backend has now (1 without lanes). */
int xs_backend_lane_count(xs_backend *be);
/* Make lane i current (0 <= i < lanes). */
xs_status xs_backend_set_lane(xs_backend *be, int lane);
int xs_backend_current_lane(xs_backend *be);
/* Lane 0 waits for every lane's work so far (device-side). */
xs_status xs_backend_join_lanes(xs_backend *be);
/* Pinned host memory where the backend has it, else malloc. */
void *xs_backend_host_alloc(xs_backend *be, size_t nbytes);
void xs_backend_host_free(xs_backend *be, void *p);
/* Enqueue a download into dst (from xs_backend_host_alloc) on the current
 * lane; valid after xs_backend_synchronize. Without lanes: a plain download. */
xs_status xs_backend_download_async(xs_backend *be, void *dst_host, const void *src,
                                    size_t nbytes);
/* Wait for the current lane (the whole backend without lanes). */
xs_status xs_backend_synchronize(xs_backend *be);

/* XSWARM_MIMI_LANES (default 8 on a backend with lanes, 1 elsewhere),
 * clamped to 1..64. */
int xs_lanes_from_env(xs_backend *be);

#endif
