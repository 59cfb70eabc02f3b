/*
 * cpu_backend.c — the `cpu` backend: SIMD kernels chosen at run time,
 * threads from one xs_threadpool per backend, OpenBLAS sgemm for the
 * many-row products. Every op of backend.h has a cpu version; one that
 * meets an input layout it does not special-case (most strided views)
 * calls the ref function of the op itself (backend/ref/ref.h).
 */
#include <cblas.h>
#include <stdlib.h>

#include "backend/cpu/cpu.h"
#include "backend/host_memory.h"
#include "core/log.h"

xs_status cpu_scratch_reserve(cpu_ctx *c, size_t n) {
    if (n <= c->scratch_per_thread) return XS_OK;
    n = (n + 15) & ~(size_t)15; /* keep every thread's slice 64-byte aligned */
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float) * (size_t)c->n_threads) != 0)
        return xs_error(XS_ERR_NOMEM, "cpu backend: cannot allocate %zu floats of scratch",
                        n * (size_t)c->n_threads);
    free(c->scratch);
    c->scratch = p;
    c->scratch_per_thread = n;
    return XS_OK;
}

xs_status cpu_shared_reserve(cpu_ctx *c, size_t n) {
    if (n <= c->shared_n) return XS_OK;
    void *p = NULL;
    if (posix_memalign(&p, 64, n * sizeof(float)) != 0)
        return xs_error(XS_ERR_NOMEM, "cpu backend: cannot allocate %zu floats", n);
    free(c->shared);
    c->shared = p;
    c->shared_n = n;
    return XS_OK;
}

static void cpu_destroy(xs_backend *be) {
    cpu_ctx *c = be->ctx;
    if (c) {
        pthread_mutex_destroy(&c->lock);
        xs_threadpool_free(c->pool);
        free(c->scratch);
        free(c->shared);
        free(c);
    }
    free(be);
}

/* Each op runs under the backend's lock (see cpu_ctx.lock). */
#define LOCKED(NAME, PARAMS, ARGS)                          \
    static xs_status NAME##_locked PARAMS {                 \
        cpu_ctx *c_ = be->ctx;                              \
        pthread_mutex_lock(&c_->lock);                      \
        xs_status rc_ = NAME ARGS;                          \
        pthread_mutex_unlock(&c_->lock);                    \
        return rc_;                                         \
    }
LOCKED(cpu_matmul, (xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                    const xs_tensor *bias), (be, y, x, w, bias))
LOCKED(cpu_conv1d, (xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                    const xs_tensor *bias, int stride, int dilation, int groups),
       (be, y, x, w, bias, stride, dilation, groups))
LOCKED(cpu_conv_transpose1d, (xs_backend *be, xs_tensor *y, const xs_tensor *x,
                              const xs_tensor *w, const xs_tensor *bias, int stride, int groups),
       (be, y, x, w, bias, stride, groups))
LOCKED(cpu_layer_norm, (xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                        const xs_tensor *b, float eps), (be, y, x, w, b, eps))
LOCKED(cpu_rms_norm, (xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *a,
                      float eps), (be, y, x, a, eps))
LOCKED(cpu_rope, (xs_backend *be, xs_tensor *x, const xs_tensor *pos, float mp), (be, x, pos, mp))
LOCKED(cpu_softmax, (xs_backend *be, xs_tensor *y, const xs_tensor *x), (be, y, x))
LOCKED(cpu_attention, (xs_backend *be, xs_tensor *y, const xs_tensor *q, const xs_kv_cache *kv,
                       const xs_tensor *pos, int nh, int64_t ctx, float sc),
       (be, y, q, kv, pos, nh, ctx, sc))
LOCKED(cpu_elu, (xs_backend *be, xs_tensor *y, const xs_tensor *x, float a), (be, y, x, a))
LOCKED(cpu_gelu, (xs_backend *be, xs_tensor *y, const xs_tensor *x), (be, y, x))
LOCKED(cpu_silu_mul, (xs_backend *be, xs_tensor *y, const xs_tensor *x), (be, y, x))
LOCKED(cpu_embedding, (xs_backend *be, xs_tensor *y, const xs_tensor *t, const xs_tensor *ids),
       (be, y, t, ids))
LOCKED(cpu_add, (xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b),
       (be, y, a, b))
LOCKED(cpu_mul, (xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b),
       (be, y, a, b))
LOCKED(cpu_scale, (xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b),
       (be, y, x, s, b))

static const xs_backend_iface k_cpu_iface = {
    .name = "cpu",
    .host_memory = true,
    .destroy = cpu_destroy,
    .alloc = xs_host_alloc,
    .free = xs_host_free,
    .upload = xs_host_upload,
    .download = xs_host_download,
    .synchronize = xs_host_synchronize,
    .matmul = cpu_matmul_locked,
    .conv1d = cpu_conv1d_locked,
    .conv_transpose1d = cpu_conv_transpose1d_locked,
    .layer_norm = cpu_layer_norm_locked,
    .rms_norm = cpu_rms_norm_locked,
    .rope = cpu_rope_locked,
    .softmax = cpu_softmax_locked,
    .attention = cpu_attention_locked,
    .elu = cpu_elu_locked,
    .gelu = cpu_gelu_locked,
    .silu_mul = cpu_silu_mul_locked,
    .embedding = cpu_embedding_locked,
    .add = cpu_add_locked,
    .mul = cpu_mul_locked,
    .scale = cpu_scale_locked,
    .kv_store = cpu_kv_store,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .argmax = cpu_argmax,
    .sample_topk = cpu_sample_topk,
};

xs_status xs_backend_cpu_new(int n_threads, xs_backend **out) {
    xs_backend *be = calloc(1, sizeof *be);
    cpu_ctx *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return xs_error(XS_ERR_NOMEM, "cpu backend: out of memory");
    }
    if (n_threads <= 0) n_threads = xs_cpu_count();
    c->pool = xs_threadpool_new(n_threads);
    if (!c->pool) {
        free(be);
        free(c);
        return xs_error(XS_ERR_NOMEM, "cpu backend: cannot start %d threads", n_threads);
    }
    pthread_mutex_init(&c->lock, NULL);
    c->n_threads = xs_threadpool_size(c->pool);
    c->isa = cpu_isa_detect();
    c->k = cpu_kernels_for(c->isa);
    /* We thread around OpenBLAS (one sgemm per block per pool thread), so
     * OpenBLAS itself must stay single-threaded or the two pools would
     * oversubscribe the cores. This is process-wide. */
    openblas_set_num_threads(1);
    be->iface = &k_cpu_iface;
    be->ctx = c;
    be->n_threads = c->n_threads;
    XS_LOGD("cpu backend: %d threads, kernels %s", c->n_threads, cpu_isa_name(c->isa));
    *out = be;
    return XS_OK;
}

/* Walk any strided view (<= 4 dims) in row-major order. */
const float *cpu_contig_f32(const xs_tensor *t, float **owned) {
    *owned = NULL;
    if (xs_tensor_is_contiguous(t)) return t->data;
    int64_t n = xs_tensor_numel(t);
    float *dst = malloc((size_t)(n > 0 ? n : 1) * sizeof *dst);
    if (!dst) return NULL;
    int64_t sh[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
    int off = 4 - t->ndim;
    for (int d = 0; d < t->ndim; d++) {
        sh[off + d] = t->shape[d];
        st[off + d] = t->stride[d];
    }
    const float *src = t->data;
    int64_t i = 0;
    for (int64_t a = 0; a < sh[0]; a++)
        for (int64_t b = 0; b < sh[1]; b++)
            for (int64_t c = 0; c < sh[2]; c++) {
                const float *row = src + a * st[0] + b * st[1] + c * st[2];
                for (int64_t d = 0; d < sh[3]; d++) dst[i++] = row[d * st[3]];
            }
    *owned = dst;
    return dst;
}
