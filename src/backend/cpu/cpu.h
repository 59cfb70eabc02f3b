/*
 * cpu.h — internals of the `cpu` backend (not for model code).
 *
 * Layout of the folder:
 *   cpu_backend.c     the iface table (each op under the backend lock),
 *                     context (thread pool, per-thread scratch)
 *   cpu_features.c    which ISA this machine has, chosen once at open
 *   cpu_kernels_*.c   dot, axpy, ELU kernels: generic (plain C, always built),
 *                     avx2 (+fma, f16c) and avx512 (f, bw, vl) via target
 *                     attributes, so the base build stays portable x86-64
 *   cpu_matmul.c      matmul driver: GEMV kernels for few rows, per-block
 *                     OpenBLAS sgemm (dequantized weight tile) for many
 *   cpu_conv.c        conv1d / conv_transpose1d (im2col + sgemm, GEMV or
 *                     axpy for few frames, direct for few channels)
 *   cpu_rowops.c      norms, softmax, activations, attention, rope, copy...
 * Inputs the fast paths do not handle (strided views of most row ops) go
 * to the ref implementation of the op (backend/ref/ref.h), call by call.
 *
 * Determinism: every op splits work over independent outputs (rows,
 * channels, heads) and computes each from its index alone, so results are
 * bit-identical for any thread count (tests/test_cpu_matmul.c checks it).
 * XSWARM_CPU_ISA=generic|avx2 lowers the kernel choice (tests use it).
 */
#ifndef XS_BACKEND_CPU_CPU_H
#define XS_BACKEND_CPU_CPU_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "core/threadpool.h"

/* ---- instruction sets ---------------------------------------------------- */
typedef enum cpu_isa {
    CPU_ISA_GENERIC = 0, /* plain C */
    CPU_ISA_AVX2,        /* avx2 + fma + f16c */
    CPU_ISA_AVX512,      /* avx512 f + bw + vl (+ fma, f16c) */
    CPU_ISA_COUNT
} cpu_isa;

const char *cpu_isa_name(cpu_isa isa);
/* Best ISA of this machine, lowered by XSWARM_CPU_ISA=generic|avx2|avx512. */
cpu_isa cpu_isa_detect(void);

/* ---- dot-product kernels ----------------------------------------------------
 * y[m] = sum_k w[k] * x[m * ldx + k] for m < nx (1..CPU_MAX_NX), w one weight
 * row of K values in its dtype (K a multiple of 32 for q8_0 / q4_0). Each row
 * of x is accumulated the same way whatever nx is, so tiling x rows never
 * changes a result. */
#define CPU_MAX_NX 4
typedef void (*cpu_dot_fn)(const void *w, const float *x, int64_t ldx, int nx, int64_t K,
                           float *y);
/* Dequantize/convert n values of a weight row to f32. */
typedef void (*cpu_to_f32_fn)(const void *w, float *y, int64_t n);

/* y[i] += a * x[i] for i < n. */
typedef void (*cpu_axpy_fn)(float *y, const float *x, float a, int64_t n);
/* y[i] = x[i] > 0 ? x[i] : alpha * expm1(x[i]) (y may alias x). The SIMD
 * versions (avx2, avx512) use a degree-9 expm1 series on (-0.5, 0] and a
 * range-reduced degree-7 exp below: a few ulp, NaN passed through. */
typedef void (*cpu_elu_fn)(float *y, const float *x, float alpha, int64_t n);

typedef struct cpu_kernels {
    cpu_dot_fn dot[XS_DTYPE_COUNT];       /* indexed by weight dtype; NULL = none */
    cpu_axpy_fn axpy;
    cpu_elu_fn elu;
    cpu_to_f32_fn to_f32[XS_DTYPE_COUNT];
} cpu_kernels;

extern const cpu_kernels cpu_kernels_generic;
#if defined(__x86_64__)
extern const cpu_kernels cpu_kernels_avx2;
extern const cpu_kernels cpu_kernels_avx512;
#endif
/* The kernel table of an ISA, empty slots filled from the generic table. */
cpu_kernels cpu_kernels_for(cpu_isa isa);

/* ---- backend context ----------------------------------------------------- */
typedef struct cpu_ctx {
    /* One op at a time per backend: the pool is not reentrant and the
     * scratch is shared, so sessions on several threads sharing one
     * backend are serialized here (uncontended: ~20 ns per op). */
    pthread_mutex_t lock;
    xs_threadpool *pool;
    int n_threads;
    cpu_isa isa;
    cpu_kernels k;
    /* Per-thread scratch (grows on demand, never shrinks): pool threads use
     * scratch + tid * scratch_per_thread floats. */
    float *scratch;
    size_t scratch_per_thread;
    /* One buffer shared by all threads of an op (e.g. attention's per-block
     * partial results), grown on demand. */
    float *shared;
    size_t shared_n;
} cpu_ctx;

static inline cpu_ctx *cpu_ctx_of(xs_backend *be) { return (cpu_ctx *)be->ctx; }
/* Make sure every thread has `n` floats of scratch. */
xs_status cpu_scratch_reserve(cpu_ctx *c, size_t n);
/* Make sure the shared buffer holds `n` floats. */
xs_status cpu_shared_reserve(cpu_ctx *c, size_t n);
static inline float *cpu_scratch(cpu_ctx *c, int tid) {
    return c->scratch + (size_t)tid * c->scratch_per_thread;
}

/* Contiguous f32 data of t: t's own pointer when contiguous, else a gathered
 * copy in *owned (free() it; NULL when not needed). NULL on out of memory. */
const float *cpu_contig_f32(const xs_tensor *t, float **owned);

/* The GEMV path of matmul with a strided output, for other ops (conv with
 * few output frames): y[m*ys_m + n*ys_n] = x[m, :K] . w[n, :] (+ bias[n]),
 * M <= 16 for speed, threaded over n. */
void cpu_gemv(cpu_ctx *c, float *y, int64_t ys_m, int64_t ys_n, const float *x, int64_t ldx,
              const void *w, xs_dtype wt, const float *bias, int64_t M, int64_t N, int64_t K);

/* ---- ops ----------------------------------------------------------------- */
xs_status cpu_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias);
xs_status cpu_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias, int stride, int dilation, int groups);
xs_status cpu_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                               const xs_tensor *w, const xs_tensor *bias, int stride, int groups);
xs_status cpu_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                         const xs_tensor *b, float eps);
xs_status cpu_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *alpha,
                       float eps);
xs_status cpu_rope(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period);
xs_status cpu_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cpu_kv_store(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                       const xs_tensor *v, const xs_tensor *pos);
xs_status cpu_attention(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                        const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                        int64_t context, float scale);
xs_status cpu_elu(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha);
xs_status cpu_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cpu_silu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cpu_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                        const xs_tensor *ids);
xs_status cpu_add(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status cpu_mul(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
xs_status cpu_scale(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b);
xs_status cpu_copy(xs_backend *be, xs_tensor *y, const xs_tensor *x);
xs_status cpu_fill(xs_backend *be, xs_tensor *y, float value);
xs_status cpu_argmax(xs_backend *be, xs_tensor *ids, const xs_tensor *logits);
xs_status cpu_sample_topk(xs_backend *be, xs_tensor *ids, const xs_tensor *logits, float temp,
                          int top_k, uint64_t seed, uint64_t stream, uint64_t counter,
                          const xs_tensor *counter_t);

/* Grain (items per chunk) so that each chunk does at least ~64K units of
 * work (multiply-adds, elements): below that, waking another thread costs
 * more than it saves, and on a busy machine a preempted helper can stall
 * the whole op. */
#define CPU_MIN_CHUNK_WORK 65536.0
static inline int64_t cpu_grain(double work_per_item) {
    if (work_per_item <= 0) return 1 << 30;
    double g = CPU_MIN_CHUNK_WORK / work_per_item;
    return g < 1 ? 1 : g > (double)(1 << 30) ? (1 << 30) : (int64_t)g + 1;
}

#endif
