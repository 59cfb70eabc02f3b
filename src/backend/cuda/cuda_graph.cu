/*
 * cuda_graph.cu — the backend's graph ops: record what the ops enqueue on
 * the backend's stream (cudaStreamBeginCapture), instantiate it once, and
 * launch it per frame. backend/graph.c drives them.
 *
 * Capture mode is thread-local: only this thread's unsafe calls (a
 * synchronous cudaMemcpy, cudaMalloc/cudaFree, a stream synchronize) are
 * refused during capture, so another session's thread is not disturbed.
 * Such a call makes the op fail and invalidates the capture; graph_end then
 * reports it, and the caller runs the work eagerly.
 */
#include "backend/cuda/cuda_internal.h"

xs_status cu_graph_begin(xs_backend *be) {
    cu_ctx *c = cu_ctx_of(be);
    cudaGetLastError(); /* a stale launch error would be blamed on the capture */
    cudaError_t e = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return xs_error(XS_ERR_BACKEND, "cuda graph: begin capture: %s", cudaGetErrorString(e));
    }
    c->capturing = true;
    return XS_OK;
}

xs_status cu_graph_end(xs_backend *be, void **out) {
    cu_ctx *c = cu_ctx_of(be);
    *out = NULL;
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(c->stream, &g);
    c->capturing = false;
    if (e != cudaSuccess || !g) {
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();
        return xs_error(XS_ERR_BACKEND,
                        "cuda graph: capture invalid (%s): an op in it synchronized, "
                        "copied from/to host memory or allocated",
                        e != cudaSuccess ? cudaGetErrorString(e) : "empty graph");
    }
    cudaGraphExec_t x = NULL;
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return xs_error(XS_ERR_BACKEND, "cuda graph: instantiate: %s", cudaGetErrorString(e));
    }
    *out = (void *)x;
    return XS_OK;
}

xs_status cu_graph_launch(xs_backend *be, void *graph) {
    cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)graph, cu_ctx_of(be)->stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return xs_error(XS_ERR_BACKEND, "cuda graph: launch: %s", cudaGetErrorString(e));
    }
    return XS_OK;
}

void cu_graph_free(xs_backend *be, void *graph) {
    (void)be;
    if (graph) cudaGraphExecDestroy((cudaGraphExec_t)graph);
}
