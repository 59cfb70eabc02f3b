/*
 * graph.h — run a fixed piece of device work as a recorded graph (CUDA
 * graphs), falling back to plain eager calls where a backend has none.
 *
 * A "piece" is a function that only enqueues ops (no upload, download,
 * synchronize, allocation): its pointers, shapes and scalars must be the
 * same at every call with the same key, and everything that changes from
 * call to call must be read by the kernels from device tensors staged
 * before the call. xs_graph_run then:
 *   - runs fn eagerly while the backend has no graph ops, graphs are off
 *     (XSWARM_CUDA_GRAPHS=0, fault injection or an op hook active), or
 *     capture failed once for this key;
 *   - runs fn eagerly once per new key (the warm-up: lazy allocations, such
 *     as work buffers and rope tables, happen outside the capture);
 *   - then records fn once, and from then on only launches the recording.
 * When the key changes (other shapes, other buffers) the old recording is
 * dropped. Capture failures are not errors: fn runs eagerly instead (so fn
 * must not change host state that a second run would change again) and
 * one warning names the reason.
 */
#ifndef XS_BACKEND_GRAPH_H
#define XS_BACKEND_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"

typedef xs_status (*xs_graph_fn)(void *ctx);

typedef struct xs_graph {
    void *exec;        /* the backend's recording, NULL until captured */
    uint64_t key;      /* what the recording depends on (caller-defined) */
    bool keyed;        /* key is set */
    int warm;          /* eager runs done with this key */
    bool failed;       /* capture failed for this key: stay eager */
    /* set by the caller before a run: the recording may let each kernel
     * start while the one before it runs (CUDA: programmatic edges,
     * cuda_pdl.cuh). Pays for latency-bound pieces (one session: -0.5 ms a
     * q8_0 frame on an H100) and cost +2.7 ms a frame at 80 sessions, so
     * only single-session pieces ask for it (docs/PERF.md, "Session 9"). */
    bool programmatic;
    int64_t captures;  /* statistics: recordings made, launches, eager runs */
    int64_t launches;
    int64_t eager;
} xs_graph;

/* true when be can record graphs, XSWARM_CUDA_GRAPHS is not "0", and no
 * fault injection or op hook (which must see every op call) is active. */
bool xs_graph_available(xs_backend *be);
/* Run fn(ctx) through g (see above). */
xs_status xs_graph_run(xs_backend *be, xs_graph *g, uint64_t key, xs_graph_fn fn, void *ctx);
/* Drop the recording (safe on a zeroed graph); g is zeroed. */
void xs_graph_free(xs_backend *be, xs_graph *g);
/* Fold v into a key (FNV-1a over its 8 bytes). Start from XS_GRAPH_KEY0. */
#define XS_GRAPH_KEY0 1469598103934665603ull
uint64_t xs_graph_key_add(uint64_t key, uint64_t v);

#endif
