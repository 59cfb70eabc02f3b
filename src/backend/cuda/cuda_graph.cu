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
 *
 * When the caller asks for it (xs_graph.programmatic: single-session
 * pieces), every kernel -> kernel edge becomes programmatic before the
 * graph is instantiated (cuda_pdl.cuh: each kernel lets the next one start
 * early and waits for its inputs itself), the same edges a PDL launch
 * records when captured. XSWARM_CUDA_PDL=0 keeps ordinary edges (A/B; same
 * bits either way).
 */
#include "backend/cuda/cuda_internal.h"

#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend/cuda_probe.h"
}

/* compiled with the same flags as every kernel: its PTX version says
 * whether the code that runs here has the griddepcontrol instructions */
__global__ void k_pdl_probe(void) {
    cu_pdl_enter();
}

/* XSWARM_CUDA_PDL (read once) / xs_cuda_pdl_select: 1 = programmatic
 * edges (the default), 0 = ordinary ones. */
static int g_pdl_mode = -1;
static long g_pdl_edges_last; /* edges converted at the last instantiation */

void xs_cuda_pdl_select(bool on) {
    g_pdl_mode = on ? 1 : 0;
}

long xs_cuda_pdl_edges_last(void) {
    return g_pdl_edges_last;
}

/* PDL edges possible: an sm_90+ device running code built from sm_90+ PTX */
bool xs_cuda_pdl_possible(void) {
    static int possible = -1;
    if (possible < 0) {
        int dev = 0, major = 0;
        cudaFuncAttributes fa;
        possible = cudaGetDevice(&dev) == cudaSuccess &&
                   cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                   major >= 9 && cudaFuncGetAttributes(&fa, k_pdl_probe) == cudaSuccess && fa.ptxVersion >= 90;
        cudaGetLastError();
    }
    return possible == 1;
}

static bool pdl_on(void) {
    if (g_pdl_mode < 0) { /* a benign race sets the same value */
        const char *e = getenv("XSWARM_CUDA_PDL");
        g_pdl_mode = e && !strcmp(e, "0") ? 0 : 1;
    }
    return g_pdl_mode == 1 && xs_cuda_pdl_possible();
}

/* Make g's kernel -> kernel edges programmatic; the number converted, or
 * -1 when the graph API refused (g is then left with ordinary edges, or
 * the caller discards it). */
static long pdl_edges(cudaGraph_t g) {
    size_t n = 0;
    if (cudaGraphGetEdges(g, NULL, NULL, NULL, &n) != cudaSuccess) return -1;
    if (!n) return 0;
    cudaGraphNode_t *from = (cudaGraphNode_t *)malloc(n * sizeof *from);
    cudaGraphNode_t *to = (cudaGraphNode_t *)malloc(n * sizeof *to);
    cudaGraphEdgeData *ed = (cudaGraphEdgeData *)calloc(n, sizeof *ed);
    long k = -1;
    if (from && to && ed && cudaGraphGetEdges(g, from, to, ed, &n) == cudaSuccess) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            cudaGraphNodeType a, b;
            if (cudaGraphNodeGetType(from[i], &a) != cudaSuccess || cudaGraphNodeGetType(to[i], &b) != cudaSuccess)
                goto out;
            if (a != cudaGraphNodeTypeKernel || b != cudaGraphNodeTypeKernel || ed[i].type != cudaGraphDependencyTypeDefault ||
                ed[i].from_port != cudaGraphKernelNodePortDefault)
                continue;
            from[m] = from[i];
            to[m] = to[i];
            ed[m] = ed[i];
            m++;
        }
        if (m && cudaGraphRemoveDependencies(g, from, to, ed, m) != cudaSuccess) goto out;
        for (size_t i = 0; i < m; i++) {
            ed[i].from_port = cudaGraphKernelNodePortProgrammatic;
            ed[i].type = cudaGraphDependencyTypeProgrammatic;
        }
        if (m && cudaGraphAddDependencies(g, from, to, ed, m) != cudaSuccess) goto out;
        k = (long)m;
    }
out:
    free(from);
    free(to);
    free(ed);
    return k;
}

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

xs_status cu_graph_end(xs_backend *be, bool programmatic, void **out) {
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
    g_pdl_edges_last = programmatic && pdl_on() ? pdl_edges(g) : 0;
    if (g_pdl_edges_last < 0) {
        g_pdl_edges_last = 0;
        cudaGetLastError();
        cudaGraphDestroy(g); /* edges half converted: not a graph to run */
        return xs_error(XS_ERR_BACKEND, "cuda graph: making kernel edges programmatic failed "
                                        "(XSWARM_CUDA_PDL=0 keeps ordinary edges)");
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
