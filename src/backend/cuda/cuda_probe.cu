/*
 * cuda_probe.cu — the GPU's own floors (read and copy bandwidth), memory
 * use, device events, and the per-op profiler of backend/cuda_probe.h.
 *
 * Why a read kernel and not only cudaMemcpy: a step's floor is the bytes it
 * READS (weights + KV) over the rate at which the card can read them; a
 * copy also writes, and the two directions share the bus, so the copy rate
 * (read + write counted) is a different, usually lower, figure. Both are
 * reported; floors use the read one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

extern "C" {
#include "backend/cuda_probe.h"
#include "backend/op_hook.h"
}

#define PROBE_BYTES ((size_t)1 << 30)
#define PROBE_REPS 5

static xs_status cu_err(const char *what, cudaError_t e) {
    return xs_error(XS_ERR_BACKEND, "cuda %s: %s", what, cudaGetErrorString(e));
}

static xs_status need_cuda(xs_backend *be, const char *what) {
    if (!xs_backend_is_cuda(be)) return xs_error(XS_ERR_ARG, "%s: not a cuda backend", what);
    return XS_OK;
}

/* Sum of all words; one write per block so nothing is optimized away. */
__global__ void k_probe_read(const uint4 *p, size_t n, unsigned *out) {
    cu_pdl_enter();
    unsigned s = 0;
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    /* four independent loads in flight per thread */
    for (; i + 3 * stride < n; i += 4 * stride) {
        const uint4 a = __ldcs(p + i), b = __ldcs(p + i + stride);
        const uint4 c = __ldcs(p + i + 2 * stride), d = __ldcs(p + i + 3 * stride);
        s += a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^
             d.z ^ d.w;
    }
    for (; i < n; i += stride) {
        const uint4 a = __ldcs(p + i);
        s += a.x ^ a.y ^ a.z ^ a.w;
    }
    if (s == 0x12345678u) out[blockIdx.x] = s; /* practically never; keeps the loads */
}

static xs_status probe_buffers(void **a, void **b, unsigned **out) {
    cudaError_t e = cudaMalloc(a, PROBE_BYTES);
    if (e != cudaSuccess) return xs_error(XS_ERR_NOMEM, "cuda bandwidth probe: 1 GiB: %s", cudaGetErrorString(e));
    if (b && (e = cudaMalloc(b, PROBE_BYTES)) != cudaSuccess) {
        cudaFree(*a);
        return xs_error(XS_ERR_NOMEM, "cuda bandwidth probe: 2nd GiB: %s", cudaGetErrorString(e));
    }
    if (out && (e = cudaMalloc((void **)out, 65536 * sizeof(unsigned))) != cudaSuccess) {
        cudaFree(*a);
        if (b) cudaFree(*b);
        return cu_err("bandwidth probe", e);
    }
    cudaMemset(*a, 0x5b, PROBE_BYTES); /* not zeros: never time on zeros */
    return XS_OK;
}

extern "C" xs_status xs_cuda_measure_bandwidth(xs_backend *be, double *gbs) {
    xs_status rc = need_cuda(be, "cuda bandwidth");
    if (rc != XS_OK) return rc;
    cu_ctx *c = cu_ctx_of(be);
    void *a = NULL;
    unsigned *out = NULL;
    if ((rc = probe_buffers(&a, NULL, &out)) != XS_OK) return rc;
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, c->device);
    const unsigned blocks = (unsigned)(sms > 0 ? sms * 8 : 1024);
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    float best = 1e30f;
    const size_t n = PROBE_BYTES / 16;
    for (int r = 0; r < PROBE_REPS + 1; r++) { /* first run warms up */
        cudaEventRecord(e0, c->stream);
        k_probe_read<<<blocks, 256, 0, c->stream>>>((const uint4 *)a, n, out);
        cudaEventRecord(e1, c->stream);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (r && ms < best) best = ms;
    }
    cudaError_t e = cudaGetLastError();
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(out);
    if (e != cudaSuccess) return cu_err("bandwidth probe", e);
    *gbs = (double)PROBE_BYTES / (best * 1e-3) / 1e9;
    return XS_OK;
}

extern "C" xs_status xs_cuda_measure_copy_bandwidth(xs_backend *be, double *gbs) {
    xs_status rc = need_cuda(be, "cuda copy bandwidth");
    if (rc != XS_OK) return rc;
    cu_ctx *c = cu_ctx_of(be);
    void *a = NULL, *b = NULL;
    if ((rc = probe_buffers(&a, &b, NULL)) != XS_OK) return rc;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    float best = 1e30f;
    for (int r = 0; r < PROBE_REPS + 1; r++) {
        cudaEventRecord(e0, c->stream);
        cudaMemcpyAsync(b, a, PROBE_BYTES, cudaMemcpyDeviceToDevice, c->stream);
        cudaEventRecord(e1, c->stream);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (r && ms < best) best = ms;
    }
    cudaError_t e = cudaGetLastError();
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    if (e != cudaSuccess) return cu_err("copy probe", e);
    *gbs = 2.0 * (double)PROBE_BYTES / (best * 1e-3) / 1e9;
    return XS_OK;
}

extern "C" xs_status xs_cuda_mem_info(xs_backend *be, size_t *free_bytes, size_t *total_bytes) {
    xs_status rc = need_cuda(be, "cuda memory info");
    if (rc != XS_OK) return rc;
    cudaSetDevice(cu_ctx_of(be)->device);
    size_t f = 0, t = 0;
    cudaError_t e = cudaMemGetInfo(&f, &t);
    if (e != cudaSuccess) return cu_err("memory info", e);
    if (free_bytes) *free_bytes = f;
    if (total_bytes) *total_bytes = t;
    return XS_OK;
}

extern "C" xs_status xs_cuda_device_desc(xs_backend *be, char *buf, size_t n) {
    xs_status rc = need_cuda(be, "cuda device");
    if (rc != XS_OK) return rc;
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, cu_ctx_of(be)->device);
    if (e != cudaSuccess) return cu_err("device properties", e);
    int drv = 0;
    cudaDriverGetVersion(&drv);
    snprintf(buf, n, "%s, %d SMs, %.1f GiB, sm_%d%d, CUDA driver API %d.%d", p.name,
             p.multiProcessorCount, p.totalGlobalMem / 1073741824.0, p.major, p.minor,
             drv / 1000, (drv % 1000) / 10);
    return XS_OK;
}

/* ---- events ---------------------------------------------------------------- */
#define TIMER_SLOTS 16
static cudaEvent_t g_timer[TIMER_SLOTS];

extern "C" xs_status xs_cuda_timer_mark(xs_backend *be, int slot) {
    xs_status rc = need_cuda(be, "cuda timer");
    if (rc != XS_OK) return rc;
    if (slot < 0 || slot >= TIMER_SLOTS) return xs_error(XS_ERR_ARG, "cuda timer: slot %d", slot);
    if (!g_timer[slot] && cudaEventCreate(&g_timer[slot]) != cudaSuccess)
        return cu_err("event", cudaGetLastError());
    cudaError_t e = cudaEventRecord(g_timer[slot], cu_ctx_of(be)->stream);
    return e == cudaSuccess ? XS_OK : cu_err("event record", e);
}

extern "C" xs_status xs_cuda_timer_ms(xs_backend *be, int from, int to, double *ms) {
    xs_status rc = need_cuda(be, "cuda timer");
    if (rc != XS_OK) return rc;
    if (from < 0 || to < 0 || from >= TIMER_SLOTS || to >= TIMER_SLOTS || !g_timer[from] || !g_timer[to])
        return xs_error(XS_ERR_ARG, "cuda timer: slots %d, %d not marked", from, to);
    cudaError_t e = cudaEventSynchronize(g_timer[to]);
    float f = 0;
    if (e == cudaSuccess) e = cudaEventElapsedTime(&f, g_timer[from], g_timer[to]);
    if (e != cudaSuccess) return cu_err("event time", e);
    *ms = f;
    return XS_OK;
}

__global__ void k_stall(long long cycles) {
    cu_pdl_enter();
    const long long t0 = clock64();
    while (clock64() - t0 < cycles) __nanosleep(1000);
}

extern "C" xs_status xs_cuda_stall(xs_backend *be, double ms) {
    xs_status rc = need_cuda(be, "cuda stall");
    if (rc != XS_OK) return rc;
    int khz = 0;
    cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, cu_ctx_of(be)->device);
    if (khz <= 0) khz = 1800000;
    k_stall<<<1, 1, 0, cu_ctx_of(be)->stream>>>((long long)(ms * khz));
    return cu_check_launch("stall");
}

/* ---- profiler ---------------------------------------------------------------- */
#define PROF_MAX_EV 65536
#define PROF_MAX_KEYS 256

typedef struct prof_key {
    char name[80];
    int cls;        /* 0 matmul temporal-size, 1 matmul depformer-size, 2 attention, 3 other */
    double ms;
    long calls;
    double bytes;   /* weight bytes read (matmul) */
} prof_key;

typedef struct prof_state {
    xs_backend *be;
    cudaEvent_t *ev;  /* 2 per op */
    int *key_of;      /* per op */
    int n_ops;
    prof_key keys[PROF_MAX_KEYS];
    int n_keys;
    int overflow;
} prof_state;

static prof_state g_prof;

static int prof_key_index(const char *name, int cls, double bytes) {
    for (int i = 0; i < g_prof.n_keys; i++)
        if (!strcmp(g_prof.keys[i].name, name)) return i;
    if (g_prof.n_keys == PROF_MAX_KEYS) return PROF_MAX_KEYS - 1;
    prof_key *k = &g_prof.keys[g_prof.n_keys];
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", name);
    k->cls = cls;
    k->bytes = bytes;
    return g_prof.n_keys++;
}

static void prof_hook(xs_backend *be, xs_op op, int phase, ...) {
    if (be != g_prof.be) return;
    if (phase == XS_OP_HOOK_BEFORE) {
        if (g_prof.n_ops >= PROF_MAX_EV / 2) { g_prof.overflow = 1; return; }
        char name[80];
        int cls = 3;
        double bytes = 0;
        va_list ap;
        va_start(ap, phase);
        if (op == XS_OP_MATMUL) {
            const xs_tensor *y = va_arg(ap, const xs_tensor *);
            const xs_tensor *x = va_arg(ap, const xs_tensor *);
            const xs_tensor *w = va_arg(ap, const xs_tensor *);
            (void)y;
            const long long N = w->shape[0], K = w->shape[1];
            long long M = 1;
            for (int d = 0; d + 1 < x->ndim; d++) M *= x->shape[d];
            snprintf(name, sizeof name, "matmul %s %lldx%lld M=%lld", xs_dtype_name(w->dtype), N, K, M);
            cls = (N > 2048 && K > 2048) || N == 32000 ? 0 : 1;
            bytes = (double)xs_dtype_row_bytes(w->dtype, K) * (double)N;
        } else if (op == XS_OP_ATTENTION) {
            (void)va_arg(ap, xs_tensor *);
            (void)va_arg(ap, const xs_tensor *);
            const xs_kv_cache *cache = va_arg(ap, const xs_kv_cache *);
            (void)va_arg(ap, const xs_tensor *);
            const int heads = va_arg(ap, int);
            snprintf(name, sizeof name, "attention H=%d cap=%lld %s", heads, (long long)cache->capacity,
                     xs_dtype_name(cache->k.dtype));
            cls = 2;
        } else {
            snprintf(name, sizeof name, "%s", xs_op_name(op));
        }
        va_end(ap);
        const int i = g_prof.n_ops;
        g_prof.key_of[i] = prof_key_index(name, cls, bytes);
        cudaEventRecord(g_prof.ev[2 * i], cu_ctx_of(be)->stream);
    } else {
        if (g_prof.overflow) return;
        const int i = g_prof.n_ops++;
        cudaEventRecord(g_prof.ev[2 * i + 1], cu_ctx_of(be)->stream);
    }
}

extern "C" xs_status xs_cuda_prof_begin(xs_backend *be) {
    xs_status rc = need_cuda(be, "cuda profiler");
    if (rc != XS_OK) return rc;
    if (xs_op_hook_) return xs_error(XS_ERR_ARG, "cuda profiler: another op hook is installed");
    memset(&g_prof, 0, sizeof g_prof);
    g_prof.ev = (cudaEvent_t *)calloc(PROF_MAX_EV, sizeof(cudaEvent_t));
    g_prof.key_of = (int *)calloc(PROF_MAX_EV / 2, sizeof(int));
    if (!g_prof.ev || !g_prof.key_of) {
        free(g_prof.ev);
        free(g_prof.key_of);
        return xs_error(XS_ERR_NOMEM, "cuda profiler: event table");
    }
    for (int i = 0; i < PROF_MAX_EV; i++)
        if (cudaEventCreate(&g_prof.ev[i]) != cudaSuccess) return cu_err("profiler events", cudaGetLastError());
    g_prof.be = be;
    xs_op_hook_takes_fused_ = true; /* time the fused kernels as they run (ops_fused.c) */
    xs_op_hook_ = prof_hook;
    return XS_OK;
}

static int cmp_key_ms(const void *a, const void *b) {
    const double x = ((const prof_key *)a)->ms, y = ((const prof_key *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

extern "C" xs_status xs_cuda_prof_end(xs_backend *be, FILE *out, int steps, double *busy_ms) {
    xs_status rc = need_cuda(be, "cuda profiler");
    if (rc != XS_OK) return rc;
    if (g_prof.be != be) return xs_error(XS_ERR_ARG, "cuda profiler: not started on this backend");
    xs_op_hook_ = NULL;
    xs_op_hook_takes_fused_ = false;
    cudaError_t e = cudaStreamSynchronize(cu_ctx_of(be)->stream);
    if (e != cudaSuccess) rc = cu_err("profiler sync", e);
    double total = 0, cls_ms[4] = {0, 0, 0, 0}, cls_bytes[2] = {0, 0};
    for (int i = 0; rc == XS_OK && i < g_prof.n_ops; i++) {
        float ms = 0;
        cudaEventElapsedTime(&ms, g_prof.ev[2 * i], g_prof.ev[2 * i + 1]);
        prof_key *k = &g_prof.keys[g_prof.key_of[i]];
        k->ms += ms;
        k->calls++;
        total += ms;
        cls_ms[k->cls] += ms;
        if (k->cls < 2) cls_bytes[k->cls] += k->bytes;
    }
    if (rc == XS_OK && out) {
        const double s = steps > 0 ? steps : 1;
        qsort(g_prof.keys, (size_t)g_prof.n_keys, sizeof(prof_key), cmp_key_ms);
        fprintf(out, "cuda profile: %d ops over %d steps%s; GPU time per step by op (kernels run back to back)\n",
                g_prof.n_ops, steps, g_prof.overflow ? " (event table full: truncated)" : "");
        fprintf(out, "  %-44s %9s %7s %8s %9s\n", "op", "us/step", "calls", "us/call", "GB/s");
        for (int i = 0; i < g_prof.n_keys; i++) {
            const prof_key *k = &g_prof.keys[i];
            if (!k->calls) continue;
            fprintf(out, "  %-44s %9.1f %7.1f %8.2f", k->name, 1e3 * k->ms / s, k->calls / s,
                    1e3 * k->ms / (double)k->calls);
            if (k->bytes > 0) fprintf(out, " %9.0f", k->bytes / (k->ms / k->calls * 1e-3) / 1e9);
            fputc('\n', out);
        }
        fprintf(out, "  classes per step: matmul 4096-wide %.3f ms (%.0f GB/s), matmul depformer-size "
                     "%.3f ms (%.0f GB/s), attention %.3f ms, other %.3f ms; total %.3f ms\n",
                cls_ms[0] / s, cls_ms[0] > 0 ? cls_bytes[0] / (cls_ms[0] * 1e-3) / 1e9 : 0, cls_ms[1] / s,
                cls_ms[1] > 0 ? cls_bytes[1] / (cls_ms[1] * 1e-3) / 1e9 : 0, cls_ms[2] / s, cls_ms[3] / s,
                total / s);
    }
    if (busy_ms) *busy_ms = total / (steps > 0 ? steps : 1);
    for (int i = 0; i < PROF_MAX_EV; i++)
        if (g_prof.ev[i]) cudaEventDestroy(g_prof.ev[i]);
    free(g_prof.ev);
    free(g_prof.key_of);
    memset(&g_prof, 0, sizeof g_prof);
    return rc;
}
