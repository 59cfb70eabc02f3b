/*
 * cuda_lanes.cu — lanes for the cuda backend (backend.h xs_lanes_iface):
 * one CUDA stream per lane, so that small independent pieces of work (one
 * Mimi frame of each of many sessions: hundreds of tiny kernels each) fill
 * the GPU side by side instead of one after another.
 *
 * Every op launches on cu_ctx.stream, and the attention / sampling kernels
 * take their work buffer from cu_ctx.scratch: switching lanes swaps those
 * two, so no op needs to know about lanes. Each lane has its own work
 * buffer because lanes run at the same time; a graph recorded on lane i
 * keeps lane i's buffer, so a piece of work that is recorded must always
 * run on the same lane (Mimi: a stream keeps its lane).
 *
 * Ordering (backend.h): set_lane(i != 0) makes lane i wait for lane 0's
 * work so far, with one event recorded on lane 0 per "lane 0 generation"
 * (a generation starts each time lane 0 becomes current again: only then
 * can new lane-0 work appear) and one stream wait per lane and generation;
 * join_lanes makes lane 0 wait for every lane used since the last join.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define CU_MAX_LANES 64

typedef struct cu_lane {
    cudaStream_t stream;  /* lane 0: the backend's own stream */
    void *scratch;        /* parked work buffer (the current lane's is in cu_ctx) */
    size_t scratch_bytes;
    cudaEvent_t done;     /* recorded by join_lanes */
    unsigned fork_gen;    /* lane-0 generation this lane last waited for */
    bool used;            /* current at some point since the last join */
} cu_lane;

struct cu_lanes {
    int n, cur;
    unsigned gen;          /* lane-0 generation, starts at 1 */
    unsigned fork_ev_gen;  /* generation fork_ev was recorded in (0: never) */
    cudaEvent_t fork_ev;   /* recorded on lane 0 */
    cu_lane lane[CU_MAX_LANES];
};

static xs_status cu_lane_err(const char *what, cudaError_t e) {
    cudaGetLastError(); /* not sticky: do not blame the next kernel launch */
    return xs_error(XS_ERR_BACKEND, "cuda lanes: %s: %s", what, cudaGetErrorString(e));
}

static int cu_lanes_make(xs_backend *be, int n) {
    cu_ctx *c = cu_ctx_of(be);
    if (n > CU_MAX_LANES) n = CU_MAX_LANES;
    if (!c->lanes) {
        if (n <= 1) return 1;
        cu_lanes *L = (cu_lanes *)calloc(1, sizeof *L);
        if (!L) return 1;
        if (cudaEventCreateWithFlags(&L->fork_ev, cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError();
            free(L);
            return 1;
        }
        L->n = 1;
        L->gen = 1;
        L->lane[0].stream = c->stream;
        if (cudaEventCreateWithFlags(&L->lane[0].done, cudaEventDisableTiming) != cudaSuccess)
            cudaGetLastError(); /* lane 0's is never recorded; harmless */
        c->lanes = L;
    }
    cu_lanes *L = c->lanes;
    while (L->n < n) {
        cu_lane *ln = &L->lane[L->n];
        memset(ln, 0, sizeof *ln);
        if (cudaStreamCreateWithFlags(&ln->stream, cudaStreamNonBlocking) != cudaSuccess) {
            cudaGetLastError();
            break;
        }
        if (cudaEventCreateWithFlags(&ln->done, cudaEventDisableTiming) != cudaSuccess) {
            cudaGetLastError();
            cudaStreamDestroy(ln->stream);
            break;
        }
        L->n++;
    }
    return L->n;
}

static xs_status cu_set_lane(xs_backend *be, int lane) {
    cu_ctx *c = cu_ctx_of(be);
    cu_lanes *L = c->lanes;
    const int n = L ? L->n : 1;
    if (lane < 0 || lane >= n)
        return xs_error(XS_ERR_ARG, "cuda lanes: lane %d of %d", lane, n);
    if (!L || lane == L->cur) return XS_OK;
    if (c->capturing)
        return xs_error(XS_ERR_BACKEND, "cuda lanes: set_lane(%d) during graph capture", lane);
    cu_lane *from = &L->lane[L->cur], *to = &L->lane[lane];
    if (lane != 0 && to->fork_gen != L->gen) {
        /* lane `lane` must see everything lane 0 was given so far */
        cudaError_t e = cudaSuccess;
        if (L->fork_ev_gen != L->gen) {
            e = cudaEventRecord(L->fork_ev, L->lane[0].stream);
            if (e != cudaSuccess) return cu_lane_err("fork record", e);
            L->fork_ev_gen = L->gen;
        }
        e = cudaStreamWaitEvent(to->stream, L->fork_ev, 0);
        if (e != cudaSuccess) return cu_lane_err("fork wait", e);
        to->fork_gen = L->gen;
    }
    from->scratch = c->scratch;
    from->scratch_bytes = c->scratch_bytes;
    c->stream = to->stream;
    c->scratch = to->scratch;
    c->scratch_bytes = to->scratch_bytes;
    L->cur = lane;
    to->used = true;
    if (lane == 0) L->gen++; /* lane 0 may get new work from now on */
    return XS_OK;
}

static int cu_current_lane(xs_backend *be) {
    cu_lanes *L = cu_ctx_of(be)->lanes;
    return L ? L->cur : 0;
}

static xs_status cu_join_lanes(xs_backend *be) {
    cu_ctx *c = cu_ctx_of(be);
    cu_lanes *L = c->lanes;
    if (!L) return XS_OK;
    if (c->capturing) return xs_error(XS_ERR_BACKEND, "cuda lanes: join during graph capture");
    for (int i = 1; i < L->n; i++) {
        cu_lane *ln = &L->lane[i];
        if (!ln->used) continue;
        cudaError_t e = cudaEventRecord(ln->done, ln->stream);
        if (e == cudaSuccess) e = cudaStreamWaitEvent(L->lane[0].stream, ln->done, 0);
        if (e != cudaSuccess) return cu_lane_err("join", e);
        ln->used = L->cur == i;
    }
    /* lane 0 got new work (the waits): lanes picked later wait for it too */
    L->gen++;
    return XS_OK;
}

static void *cu_host_alloc(xs_backend *be, size_t nbytes) {
    (void)be;
    void *p = NULL;
    if (cudaHostAlloc(&p, nbytes ? nbytes : 16, cudaHostAllocDefault) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return p;
}

static void cu_host_free(xs_backend *be, void *p) {
    (void)be;
    if (p) cudaFreeHost(p);
}

static xs_status cu_download_async(xs_backend *be, void *dst, const void *src, size_t nbytes) {
    if (!nbytes) return XS_OK;
    cudaError_t e = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, cu_ctx_of(be)->stream);
    if (e != cudaSuccess) return cu_lane_err("download", e);
    return XS_OK;
}

void cu_lanes_destroy(cu_ctx *c) {
    cu_lanes *L = c->lanes;
    if (!L) return;
    /* park the current lane, make lane 0 current again */
    L->lane[L->cur].scratch = c->scratch;
    L->lane[L->cur].scratch_bytes = c->scratch_bytes;
    c->stream = L->lane[0].stream;
    c->scratch = L->lane[0].scratch;
    c->scratch_bytes = L->lane[0].scratch_bytes;
    for (int i = 1; i < L->n; i++) {
        cu_lane *ln = &L->lane[i];
        cudaStreamSynchronize(ln->stream);
        if (ln->scratch) cudaFree(ln->scratch);
        cudaEventDestroy(ln->done);
        cudaStreamDestroy(ln->stream);
    }
    if (L->lane[0].done) cudaEventDestroy(L->lane[0].done);
    cudaEventDestroy(L->fork_ev);
    free(L);
    c->lanes = NULL;
}

const xs_lanes_iface cu_lanes_iface = {
    /* .lanes = */ cu_lanes_make,
    /* .set_lane = */ cu_set_lane,
    /* .current_lane = */ cu_current_lane,
    /* .join_lanes = */ cu_join_lanes,
    /* .host_alloc = */ cu_host_alloc,
    /* .host_free = */ cu_host_free,
    /* .download_async = */ cu_download_async,
};
