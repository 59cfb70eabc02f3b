/*
 * cuda_backend.cu — the `cuda` backend: probe, memory, weights, and the op
 * table. The ops live in cuda_*.cu (see cuda_internal.h for the rules they
 * follow: one stream, no host synchronization, device-side errors).
 *
 * Weights are uploaded as they are (f32/f16/bf16/q8_0/q4_0 keep their
 * bytes) and dequantized in registers by the kernels.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

extern "C" bool xs_cuda_probe(char *reason, size_t n);
extern "C" xs_status xs_backend_cuda_new(xs_backend **out);

extern "C" bool xs_cuda_probe(char *reason, size_t n) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        int drv = 0;
        cudaDriverGetVersion(&drv);
        if (reason && drv == 0)
            snprintf(reason, n, "no NVIDIA driver is installed (libcuda not found)");
        else if (reason)
            snprintf(reason, n, "no usable CUDA driver or GPU (driver %d.%d: %s: %s)", drv / 1000,
                     drv % 1000 / 10, cudaGetErrorName(e), cudaGetErrorString(e));
        cudaGetLastError(); /* clear the sticky-free error so later calls start clean */
        return false;
    }
    if (count < 1) {
        if (reason) snprintf(reason, n, "the CUDA driver found no GPU");
        return false;
    }
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        if (reason) snprintf(reason, n, "cannot query GPU 0");
        cudaGetLastError();
        return false;
    }
    if (reason)
        snprintf(reason, n, "%s (sm_%d%d, %.1f GiB)", p.name, p.major, p.minor,
                 (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return true;
}

xs_status cu_check_launch(const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return xs_error(XS_ERR_BACKEND, "cuda %s: %s (%s)", what, cudaGetErrorString(e),
                        cudaGetErrorName(e));
    return XS_OK;
}

xs_status cu_scratch(cu_ctx *c, size_t n, void **out) {
    if (n > c->scratch_bytes) {
        if (c->capturing)
            return xs_error(XS_ERR_BACKEND, "cuda: work buffer must grow to %zu bytes during "
                            "graph capture", n);
        if (c->scratch) {
            /* a recorded graph may still point at it: retire, free at destroy */
            if (c->n_retired < (int)(sizeof c->retired / sizeof c->retired[0]))
                c->retired[c->n_retired++] = c->scratch;
            else
                cudaFree(c->scratch); /* cudaFree waits for kernels using it */
        }
        size_t want = n < 65536 ? 65536 : n;
        if (want < 2 * c->scratch_bytes) want = 2 * c->scratch_bytes;
        c->scratch = NULL;
        c->scratch_bytes = 0;
        if (cudaMalloc(&c->scratch, want) != cudaSuccess) {
            cudaGetLastError();
            return xs_error(XS_ERR_NOMEM, "cuda: work buffer of %zu bytes: out of GPU memory",
                            want);
        }
        c->scratch_bytes = want;
        if (getenv("XSWARM_CUDA_ALLOC_LOG")) fprintf(stderr, "cuda alloc: work buffer %zu bytes\n", want);
    }
    *out = c->scratch;
    return XS_OK;
}

/* ---- device-value errors -> status ---------------------------------------------- */

static xs_status cu_take_error(cu_ctx *c) {
    cu_err_rec r;
    cudaError_t e = cudaMemcpy(&r, c->err, sizeof r, cudaMemcpyDeviceToHost);
    if (e != cudaSuccess)
        return xs_error(XS_ERR_BACKEND, "cuda: reading the error record: %s", cudaGetErrorString(e));
    if (r.code == CU_ERR_NONE) return XS_OK;
    cudaMemset(c->err, 0, sizeof r); /* report each error once */
    switch (r.code) {
    case CU_ERR_EMBED_ID:
        return xs_error(XS_ERR_ARG, "embedding: id %lld at index %lld out of range [0, %lld)",
                        r.b, r.a, r.c);
    case CU_ERR_KV_POS:
        return xs_error(XS_ERR_ARG, "kv_store: negative position %lld at row %lld", r.b, r.a);
    default:
        return xs_error(XS_ERR_BACKEND, "cuda: device error record %d (%lld, %lld, %lld)", r.code,
                        r.a, r.b, r.c);
    }
}

static xs_status cu_sync(cu_ctx *c) {
    cudaError_t e = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess)
        return xs_error(XS_ERR_BACKEND, "cuda: a kernel failed: %s (%s)", cudaGetErrorString(e),
                        cudaGetErrorName(e));
    return cu_take_error(c);
}

/* ---- memory ---------------------------------------------------------------------- */

static void cu_destroy(xs_backend *be) {
    if (!be) return;
    cu_ctx *c = cu_ctx_of(be);
    if (c) {
        cu_lanes_destroy(c); /* lane 0's stream and work buffer are freed below */
        cudaStreamSynchronize(c->stream);
        for (int i = 0; i < c->n_rope; i++) cudaFree(c->rope[i].freq);
        if (c->scratch) cudaFree(c->scratch);
        for (int i = 0; i < c->n_retired; i++) cudaFree(c->retired[i]);
        cu_wpool_destroy(c);
        if (c->err) cudaFree(c->err);
        cudaStreamDestroy(c->stream);
        free(c);
    }
    free(be);
}

static void *cu_alloc(xs_backend *be, size_t nbytes) {
    (void)be;
    void *p = NULL;
    /* XSWARM_CUDA_ALLOC_LOG=1: each allocation's size and what the card lost
     * for it (the driver rounds allocations up to its page sizes). */
    static int log = -1;
    if (log < 0) log = getenv("XSWARM_CUDA_ALLOC_LOG") && strcmp(getenv("XSWARM_CUDA_ALLOC_LOG"), "0");
    size_t f0 = 0, f1 = 0, total = 0;
    if (log) cudaMemGetInfo(&f0, &total);
    /* Never 0 bytes: callers treat NULL as failure. */
    if (cudaMalloc(&p, nbytes ? nbytes : 16) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    if (log) {
        cudaMemGetInfo(&f1, &total);
        fprintf(stderr, "cuda alloc: %zu bytes, card free -%zu\n", nbytes, f0 > f1 ? f0 - f1 : 0);
    }
    return p;
}

static void cu_free(xs_backend *be, void *p) {
    (void)be;
    if (p) cudaFree(p); /* synchronizes: kernels still reading p finish first */
}

static xs_status cu_upload(xs_backend *be, void *dst, const void *src, size_t nbytes) {
    if (!nbytes) return XS_OK;
    /* From pageable memory this returns once src is staged: the caller may
     * reuse src right away; ordering with kernels follows the stream. */
    cudaError_t e =
        cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, cu_ctx_of(be)->stream);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* not sticky: do not blame the next kernel launch */
        return xs_error(XS_ERR_BACKEND, "cuda upload of %zu bytes: %s", nbytes,
                        cudaGetErrorString(e));
    }
    return XS_OK;
}

static xs_status cu_download(xs_backend *be, void *dst, const void *src, size_t nbytes) {
    cu_ctx *c = cu_ctx_of(be);
    if (nbytes) {
        cudaError_t e = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, c->stream);
        if (e != cudaSuccess) {
            cudaGetLastError(); /* not sticky: do not blame the next kernel launch */
            return xs_error(XS_ERR_BACKEND, "cuda download of %zu bytes: %s", nbytes,
                            cudaGetErrorString(e));
        }
    }
    return cu_sync(c);
}

static xs_status cu_synchronize(xs_backend *be) { return cu_sync(cu_ctx_of(be)); }

static xs_status cu_weight_prepare(xs_backend *be, const xs_tensor *host, xs_tensor *out) {
    const char *nm = host->name ? host->name : "weight";
    if (!xs_tensor_is_contiguous(host))
        return xs_error(XS_ERR_SHAPE, "cuda: weight '%s' is not contiguous", nm);
    const size_t nb = xs_tensor_nbytes(host);
    cu_ctx *c = cu_ctx_of(be);
    void *d = cu_wpool_alloc(c, nb);
    if (!d)
        return xs_error(XS_ERR_NOMEM, "cuda: weight '%s' (%s): %zu bytes: out of GPU memory", nm,
                        xs_dtype_name(host->dtype), nb);
    xs_status rc = cu_upload(be, d, host->data, nb);
    if (rc != XS_OK) {
        cu_wpool_free(c, d);
        return rc;
    }
    *out = *host;
    out->data = d;
    return XS_OK;
}

static void cu_weight_release(xs_backend *be, xs_tensor *w) {
    if (!cu_wpool_free(cu_ctx_of(be), w->data)) cu_free(be, w->data);
    w->data = NULL;
}

static const xs_backend_iface k_cuda_iface = {
    /* .name = */ "cuda",
    /* .host_memory = */ false,
    /* .destroy = */ cu_destroy,
    /* .alloc = */ cu_alloc,
    /* .free = */ cu_free,
    /* .upload = */ cu_upload,
    /* .download = */ cu_download,
    /* .synchronize = */ cu_synchronize,
    /* .weight_prepare = */ cu_weight_prepare,
    /* .weight_release = */ cu_weight_release,
    /* .matmul = */ cu_matmul,
    /* .conv1d = */ cu_conv1d,
    /* .conv_transpose1d = */ cu_conv_transpose1d,
    /* .layer_norm = */ cu_layer_norm,
    /* .rms_norm = */ cu_rms_norm,
    /* .rope = */ cu_rope,
    /* .softmax = */ cu_softmax,
    /* .kv_store = */ cu_kv_store,
    /* .attention = */ cu_attention,
    /* .elu = */ cu_elu,
    /* .gelu = */ cu_gelu,
    /* .silu_mul = */ cu_silu_mul,
    /* .embedding = */ cu_embedding,
    /* .add = */ cu_add,
    /* .mul = */ cu_mul,
    /* .scale = */ cu_scale,
    /* .copy = */ cu_copy,
    /* .fill = */ cu_fill,
    /* .argmax = */ cu_argmax,
    /* .sample_topk = */ cu_sample_topk,
    /* .graph_begin = */ cu_graph_begin,
    /* .graph_end = */ cu_graph_end,
    /* .graph_launch = */ cu_graph_launch,
    /* .graph_free = */ cu_graph_free,
    /* .kv_store_rows = */ cu_kv_store_rows,
    /* .attention_rows = */ cu_attention_rows,
    /* .sample_rows = */ cu_sample_rows,
    /* .add_norm = */ cu_add_norm,
    /* .embedding_sum = */ cu_embedding_sum,
    /* .add_scaled_norm = */ cu_add_scaled_norm,
    /* .matmul_gelu = */ cu_matmul_gelu,
    /* .matmul_cat = */ cu_matmul_cat,
    /* .conv_input = */ cu_conv_input,
    /* .overlap_add = */ cu_overlap_add,
    /* .conv1d_add = */ cu_conv1d_add,
};

extern "C" xs_status xs_backend_cuda_new(xs_backend **out) {
    char why[256];
    if (!xs_cuda_probe(why, sizeof why))
        return xs_error(XS_ERR_BACKEND, "CUDA backend not usable: %s", why);
    xs_backend *be = (xs_backend *)calloc(1, sizeof *be);
    cu_ctx *c = (cu_ctx *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return xs_error(XS_ERR_NOMEM, "cuda backend: out of host memory");
    }
    snprintf(c->name, sizeof c->name, "%s", why);
    cudaError_t e = cudaSetDevice(0);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e == cudaSuccess) e = cudaMalloc(&c->err, sizeof(cu_err_rec));
    if (e == cudaSuccess) e = cudaMemset(c->err, 0, sizeof(cu_err_rec));
    /* The driver reserves the stack limit for every thread the card can hold
     * (1 KiB by default: ~0.26 GiB on an H100). Our kernels need at most 240
     * bytes (cuobjdump --dump-resource-usage, 2026-11-26), and the driver
     * raises the limit itself for a kernel that needs more: 256 saves 0.2 GiB. */
    if (e == cudaSuccess) e = cudaDeviceSetLimit(cudaLimitStackSize, 256);
    if (e != cudaSuccess) {
        if (c->err) cudaFree(c->err);
        free(be);
        free(c);
        return xs_error(XS_ERR_BACKEND, "cuda backend: set-up failed: %s", cudaGetErrorString(e));
    }
    c->matmul_plain = getenv("XSWARM_CUDA_NO_VEC") != NULL;
    be->iface = &k_cuda_iface;
    be->lanes = &cu_lanes_iface;
    be->ctx = c;
    be->n_threads = 1;
    *out = be;
    return XS_OK;
}
