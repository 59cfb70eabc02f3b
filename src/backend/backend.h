/*
 * backend.h — the op interface. Model code (src/model) calls the xs_op_*
 * wrappers of ops.h; each backend fills one static xs_backend_iface.
 *
 * Conventions for every op:
 *  - Activations are f32 tensors in the backend's memory. Weights may be any
 *    dtype the op lists; they come from xs_backend_weight().
 *  - Shapes are outermost first. "Rows" are the leading dims flattened; the
 *    innermost dim is the feature dim. Outputs are contiguous unless stated.
 *  - Inputs may be strided views (non-contiguous) unless stated: the `ref`
 *    backend handles any strides; a fast backend may copy or decline.
 *  - An op returns XS_OK or a status with xs_error() set.
 *  - An op pointer left NULL means "declined": on host-memory backends the
 *    ops.h wrapper then runs `ref`; elsewhere the call fails with
 *    XS_ERR_UNSUPPORTED naming the op and backend.
 *  - No op synchronizes with the host or reads device values on the host
 *    (positions are tensors), so a device backend can capture a whole frame.
 */
#ifndef XS_BACKEND_BACKEND_H
#define XS_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "core/tensor.h"

typedef struct xs_backend xs_backend;

/* Ops, in the order the parity suite and fault injection name them. */
typedef enum xs_op {
    XS_OP_MATMUL = 0,
    XS_OP_CONV1D,
    XS_OP_CONV_TRANSPOSE1D,
    XS_OP_LAYER_NORM,
    XS_OP_RMS_NORM,
    XS_OP_ROPE,
    XS_OP_SOFTMAX,
    XS_OP_KV_STORE,
    XS_OP_ATTENTION,
    XS_OP_ELU,
    XS_OP_GELU,
    XS_OP_SILU_MUL,
    XS_OP_EMBEDDING,
    XS_OP_ADD,
    XS_OP_MUL,
    XS_OP_SCALE,
    XS_OP_COPY,
    XS_OP_FILL,
    XS_OP_ARGMAX,
    XS_OP_SAMPLE_TOPK,
    XS_OP_COUNT,
    /* Fused ops (ops.h: xs_op_add_rms_norm / xs_op_add_layer_norm,
     * xs_op_embedding_sum) are NOT counted in XS_OP_COUNT: parity, fault
     * injection, diagnose and op hooks see their composition of the ops
     * above, unless a hook opts in (op_hook.h: xs_op_hook_takes_fused_);
     * only then does it get these ids (xs_op_name names them). */
    XS_OP_FUSED_ADD_NORM = 64,
    XS_OP_FUSED_EMBEDDING_SUM,
    /* Mimi's transformer layer (ops.h: xs_op_add_scaled_layer_norm,
     * xs_op_matmul_gelu); fixed ids apart from the LM's fused ops */
    XS_OP_FUSED_ADD_SCALED_NORM = 80,
    XS_OP_FUSED_MATMUL_GELU = 81,
    XS_OP_FUSED_MATMUL_CAT = 82,
    XS_OP_FUSED_CONV_INPUT = 83,
    XS_OP_FUSED_OVERLAP_ADD = 84,
    XS_OP_FUSED_CONV1D_ADD = 85
} xs_op;

/* "matmul", "conv1d", "conv_transpose1d", "layer_norm", ... */
const char *xs_op_name(xs_op op);
int xs_op_from_name(const char *name); /* -1 if unknown */

/* A ring KV cache for one attention layer. Slot of position p is
 * p % capacity. pos[slot] is the position stored there, -1 when empty.
 * Invariant: every filled slot holds the newest position with that residue.
 * k and v are both f32, or both bf16: kv_store then rounds each value to
 * nearest even (xs_f32_to_bf16) and attention reads them back exactly as
 * f32, so every backend sees the same cached values.
 * Or both q8_0 (the 8-bit cache): each row of n_kv_heads * head_dim values
 * (a multiple of 32; head_dim too, so a head is whole blocks) is stored as
 * Q8_0 blocks of 32, byte for byte as xs_quantize_row_q8_0 makes them:
 * amax = max |x| (f32), d = amax / 127 (f32 division), id = d ? 1 / d : 0,
 * q = roundf(x * id) (f32 product, halves away from zero), the block's
 * scale stored as xs_f32_to_f16(d) (nearest even) while q used the
 * unrounded d. A block holding a NaN or an infinity (where that recipe
 * has no defined bytes) is stored as d = f16 NaN (0x7e00), q = 0, so the
 * whole block reads back NaN and diagnosis sees it; one so tiny that 1 / d
 * overflows (amax < 127 * 2^-128, below f16's range: it reads back 0
 * anyway) is stored as d = 0, q = 0. Attention reads
 * f16_to_f32(d) * q (exact in f32) wherever it reads a cached value. */
typedef struct xs_kv_cache {
    xs_tensor k;    /* f32, bf16 or q8_0 [capacity, n_kv_heads * head_dim] */
    xs_tensor v;    /* same dtype and shape as k */
    xs_tensor pos;  /* i32 [capacity] */
    int64_t capacity;
} xs_kv_cache;

/* Sampling settings of one row of sample_rows (host memory; a device
 * backend passes them to its kernel by value, so a graph replays them).
 * greedy or temp <= 0: argmax (ties to the lowest index); else
 * sample_topk(temp, top_k, seed) of that row. */
typedef struct xs_sample_row {
    uint64_t seed;
    float temp;
    int32_t top_k;
    bool greedy;
} xs_sample_row;

typedef struct xs_backend_iface {
    const char *name;
    bool host_memory; /* data pointers are plain host memory (ref, cpu) */

    void (*destroy)(xs_backend *be);

    /* ---- memory ---- */
    void *(*alloc)(xs_backend *be, size_t nbytes);   /* NULL on failure */
    void (*free)(xs_backend *be, void *p);
    xs_status (*upload)(xs_backend *be, void *dst, const void *src_host, size_t nbytes);
    xs_status (*download)(xs_backend *be, void *dst_host, const void *src, size_t nbytes);
    xs_status (*synchronize)(xs_backend *be);
    /* Make a host weight tensor usable by this backend's ops: zero-copy view
     * on host backends, upload (maybe repacked) on devices. `out` borrows
     * from `host` on host backends: keep the host memory alive. (optional:
     * NULL = use the host view as is) */
    xs_status (*weight_prepare)(xs_backend *be, const xs_tensor *host, xs_tensor *out);
    void (*weight_release)(xs_backend *be, xs_tensor *w); /* (optional) */

    /* ---- ops ---- */
    /* y[M, N] = x[M, K] . w[N, K]^T (+ bias[N]). w: f32, f16, bf16, q8_0,
     * q4_0 (contiguous rows); bias f32 or NULL. */
    xs_status (*matmul)(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                        const xs_tensor *w, const xs_tensor *bias);
    /* Valid (unpadded) 1-D convolution, one sequence:
     * y[Cout, Tout] = conv(x[Cin, Tin], w[Cout, Cin/groups, K]) (+ bias[Cout]),
     * Tout = (Tin - dilation*(K-1) - 1) / stride + 1. Streaming padding is the
     * model's job. w f32. */
    xs_status (*conv1d)(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                        const xs_tensor *bias, int stride, int dilation, int groups);
    /* Full transposed convolution, no cropping:
     * y[Cout, (Tin-1)*stride + K] from x[Cin, Tin], w[Cin, Cout/groups, K]
     * (PyTorch ConvTranspose1d layout) (+ bias[Cout] added everywhere). */
    xs_status (*conv_transpose1d)(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                                  const xs_tensor *w, const xs_tensor *bias, int stride,
                                  int groups);
    /* Over the innermost dim D: y = (x - mean) / sqrt(var + eps) * w + b
     * (biased variance; w, b f32 [D], b may be NULL). */
    xs_status (*layer_norm)(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                            const xs_tensor *w, const xs_tensor *b, float eps);
    /* y = x * alpha / sqrt(eps + mean(x^2)) over the innermost dim, in f32. */
    xs_status (*rms_norm)(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                          const xs_tensor *alpha, float eps);
    /* Rotary embedding, interleaved pairs (2i, 2i+1) of each head:
     * x[T, H, D] rotated in place by angle pos[t] * max_period^(-2i/D).
     * pos: i32 [T]. */
    xs_status (*rope)(xs_backend *be, xs_tensor *x, const xs_tensor *pos, float max_period);
    /* Softmax over the innermost dim (y may alias x). */
    xs_status (*softmax)(xs_backend *be, xs_tensor *y, const xs_tensor *x);
    /* Write rows k[T, HD], v[T, HD] of positions pos[T] (i32) into their ring
     * slots (pos % capacity) and set cache->pos of those slots. */
    xs_status (*kv_store)(xs_backend *be, xs_kv_cache *cache, const xs_tensor *k,
                          const xs_tensor *v, const xs_tensor *pos);
    /* y[T, H*D] = softmax(q k^T * scale) v per head, for each query t over
     * the slots whose position p satisfies 0 <= pos[t] - p < context (and
     * p >= 0). q[T, H*D]; the cache holds n_kv_heads = H heads of D. */
    xs_status (*attention)(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                           const xs_kv_cache *cache, const xs_tensor *pos, int n_heads,
                           int64_t context, float scale);
    /* Element-wise activations (y may alias x). */
    xs_status (*elu)(xs_backend *be, xs_tensor *y, const xs_tensor *x, float alpha);
    xs_status (*gelu)(xs_backend *be, xs_tensor *y, const xs_tensor *x); /* erf form */
    /* y[M, H] = silu(x[M, 0:H]) * x[M, H:2H] (first half gated, not interleaved). */
    xs_status (*silu_mul)(xs_backend *be, xs_tensor *y, const xs_tensor *x);
    /* y[n, D] = table[ids[i], :]; ids i32 [n]; id -1 gives a zero row.
     * table: f32, f16, bf16, q8_0, q4_0. Out-of-range ids are an error. */
    xs_status (*embedding)(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                           const xs_tensor *ids);
    /* y = a + b, y = a * b. b has a's shape, or is broadcast along rows
     * (b [D] with a [..., D]). y may alias a. */
    xs_status (*add)(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
    xs_status (*mul)(xs_backend *be, xs_tensor *y, const xs_tensor *a, const xs_tensor *b);
    /* y = x * s + b */
    xs_status (*scale)(xs_backend *be, xs_tensor *y, const xs_tensor *x, float s, float b);
    /* Strided copy between views of equal shape (transpose, slice, concat);
     * f32 or i32. */
    xs_status (*copy)(xs_backend *be, xs_tensor *y, const xs_tensor *x);
    /* y[...] = value (f32). */
    xs_status (*fill)(xs_backend *be, xs_tensor *y, float value);
    /* ids[M] (i32) = argmax over V of logits[M, V]; ties to the lowest index. */
    xs_status (*argmax)(xs_backend *be, xs_tensor *ids, const xs_tensor *logits);
    /* ids[M] (i32): sample from softmax(logits / temp) restricted to the top_k
     * largest logits (top_k <= 0: all), with uniforms from xs_rng_uniform(seed,
     * stream, c + m, 0), c = counter + counter_t[0] (uint64 wrap-around), where
     * counter_t is an i32 or i64 [1] tensor in backend memory, or NULL (c =
     * counter). The device part lets a replayed CUDA graph advance the step
     * without re-capturing: the host counter would be frozen into the graph.
     * See core/rng.h for the exact procedure. */
    xs_status (*sample_topk)(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                             float temp, int top_k, uint64_t seed, uint64_t stream,
                             uint64_t counter, const xs_tensor *counter_t);

    /* ---- graphs (optional; NULL on host backends: callers run eagerly) ----
     * graph_begin starts recording every op enqueued on the backend's stream
     * by this thread (nothing runs); graph_end stops and returns an executable
     * graph, or an error when something in between was not capturable (a
     * download, synchronize, upload from pageable memory, an allocation) —
     * capture is then over and nothing was recorded. graph_launch enqueues a
     * recorded graph (asynchronous, like an op): the same kernels with the
     * same pointers and scalars, reading whatever the device tensors hold
     * now. programmatic: the backend may let each kernel of the recording
     * start while the one before it still runs (same results; see
     * xs_graph.programmatic). Use them through backend/graph.h. */
    xs_status (*graph_begin)(xs_backend *be);
    xs_status (*graph_end)(xs_backend *be, bool programmatic, void **graph);
    xs_status (*graph_launch)(xs_backend *be, void *graph);
    void (*graph_free)(xs_backend *be, void *graph);

    /* ---- row-batched ops (optional; see ops.h xs_op_*_rows) ----
     * One call for the B rows of a batched step, where each row has its own
     * KV cache / position / sampling settings: what a loop over b of the
     * single-row op with row b's arguments computes, bit for bit, in one
     * launch. caches[b] are distinct and alike (same dtype, capacity,
     * width). NULL: the ops.h wrapper runs that loop. */
    xs_status (*kv_store_rows)(xs_backend *be, xs_kv_cache *const *caches, int B,
                               const xs_tensor *k, const xs_tensor *v, const xs_tensor *pos);
    xs_status (*attention_rows)(xs_backend *be, xs_tensor *y, const xs_tensor *q,
                                const xs_kv_cache *const *caches, int B, const xs_tensor *pos,
                                int n_heads, int64_t context, float scale);
    xs_status (*sample_rows)(xs_backend *be, xs_tensor *ids, const xs_tensor *logits,
                             const struct xs_sample_row *rows, uint64_t stream,
                             const xs_tensor *counters);

    /* ---- fused ops (optional; NULL: the ops.h wrapper runs their
     * composition of the ops above, ops_fused.c). A backend's fused op gives
     * what that composition gives on the same backend (bit for bit where it
     * can), and a row's result never depends on the number of rows.
     * add_norm: x += h (x, h contiguous f32 of one shape; x written in
     * place), then y = layer_norm(x; w, b, eps) when `layer`, else
     * rms_norm(x; w, eps) (b NULL). */
    xs_status (*add_norm)(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                          const xs_tensor *w, const xs_tensor *b, float eps, bool layer);
    /* embedding_sum: y[n, D] = (accumulate ? y : 0 +) tables[0][ids[0]] + ...
     * + tables[count-1][ids[count-1]], left to right, one f32 rounding per
     * add (the add op's), each term as the embedding op reads it (id -1:
     * zeros). count >= 1, every table D wide, ids[i] i32 [n]. */
    xs_status (*embedding_sum)(xs_backend *be, xs_tensor *y, int count,
                               const xs_tensor *const *tables, const xs_tensor *const *ids,
                               bool accumulate);
    /* add_scaled_norm (Mimi's layer scale + residual): h *= s (s [D] over
     * h's rows, the mul op's rounding), x += h (the add op's), then, when w
     * is not NULL, y = layer_norm(x; w, b, eps). x, h contiguous f32 of one
     * shape [.., D], both written; y contiguous (unused when w is NULL). */
    xs_status (*add_scaled_norm)(xs_backend *be, xs_tensor *y, xs_tensor *x, xs_tensor *h,
                                 const xs_tensor *s, const xs_tensor *w, const xs_tensor *b,
                                 float eps);
    /* matmul_gelu: y = gelu(x . w^T + bias), the matmul op then the gelu op
     * (erf form) on its result, bit for bit. */
    xs_status (*matmul_gelu)(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                             const xs_tensor *bias);
    /* matmul_cat: y [M, N_0 + .. + N_{count-1}] (contiguous) = the matmuls
     * of x by ws[0..count-1] (one K, no bias) side by side, column block i
     * bit for bit what the matmul op gives for ws[i]; scratch: contiguous
     * f32 of >= M * max N_i values the backend may use. */
    xs_status (*matmul_cat)(xs_backend *be, xs_tensor *y, const xs_tensor *x, int count,
                            const xs_tensor *const *ws, xs_tensor *scratch);
    /* conv_input (a streaming conv's input): xin [C, P + T] (contiguous) =
     * [ctx | act(x)], then ctx = xin's last P columns; act = the elu op
     * (alpha) when `elu`, else a copy. ctx [C, P] and x [C, T]: 2-D f32
     * views (any strides), not overlapping each other or xin. */
    xs_status (*conv_input)(xs_backend *be, xs_tensor *xin, xs_tensor *ctx, const xs_tensor *x,
                            bool elu, float alpha);
    /* overlap_add (a K = 2S transposed conv in matmul form): col [T, C*2S]
     * contiguous, tail [C, S] (any strides), y [C, T*S] contiguous:
     * y[c, t*S + s] = col[t, c*2S + s] + (t ? col[t-1, c*2S + S + s] :
     * tail[c, s]) (the add op's rounding), then tail[c, s] = col[T-1,
     * c*2S + S + s]. None overlap. */
    xs_status (*overlap_add)(xs_backend *be, xs_tensor *y, const xs_tensor *col, xs_tensor *tail);
    /* conv1d_add: y = r + conv1d(x; w, bias, stride, dilation, groups): the
     * conv1d op's outputs, then the add op (a = r, b = the conv output)
     * on each; r contiguous f32 of y's shape (not y). */
    xs_status (*conv1d_add)(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                            const xs_tensor *bias, int stride, int dilation, int groups,
                            const xs_tensor *r);
} xs_backend_iface;

/* ---- lanes (optional; backend/lanes.h wraps them) ----
 * A lane is an independent queue of device work (a CUDA stream). Lane 0 is
 * the backend's own queue; everything runs there unless set_lane picks
 * another. Host backends have no lanes (xs_backend.lanes NULL): every call
 * is one lane and runs at once.
 * Ordering contract:
 *  - work (ops, uploads, downloads, graph launches) enqueued while lane i
 *    is current runs in order on lane i;
 *  - set_lane(i), i != 0, first makes lane i wait (on the device, no host
 *    wait) for everything enqueued on lane 0 so far: a lane sees what lane
 *    0 did before it was picked;
 *  - lane 0 does NOT wait for other lanes until join_lanes (lane 0 waits,
 *    on the device, for everything enqueued on every lane so far);
 *  - lanes other than 0 are unordered with each other: work on two lanes
 *    must touch disjoint memory (the device work buffer is per lane);
 *  - synchronize and download wait for the current lane only;
 *  - the current lane is backend state: one thread drives a backend;
 *  - graph capture records the current lane; don't switch lanes inside it.
 * download_async enqueues a copy into host memory from host_alloc (pinned)
 * on the current lane without waiting: the bytes are there after the next
 * synchronize of that lane. Uploads from host_alloc memory return at once;
 * the memory must stay unchanged until the lane has run the copy. */
typedef struct xs_lanes_iface {
    int (*lanes)(xs_backend *be, int n);         /* make >= n lanes; returns how many exist */
    xs_status (*set_lane)(xs_backend *be, int lane);
    int (*current_lane)(xs_backend *be);
    xs_status (*join_lanes)(xs_backend *be);
    void *(*host_alloc)(xs_backend *be, size_t nbytes); /* pinned host memory, NULL on failure */
    void (*host_free)(xs_backend *be, void *p);
    xs_status (*download_async)(xs_backend *be, void *dst_host, const void *src, size_t nbytes);
} xs_lanes_iface;

struct xs_backend {
    const xs_backend_iface *iface;
    void *ctx;      /* backend private state */
    int n_threads;  /* compute threads (host backends) */
    const xs_lanes_iface *lanes; /* NULL: one lane (host backends) */
};

/* ---- registry ---------------------------------------------------------- */
/* name: "ref", "cpu", "cuda". n_threads <= 0 means one per CPU core. */
xs_status xs_backend_open(const char *name, int n_threads, xs_backend **out);
void xs_backend_close(xs_backend *be);
/* true when a CUDA device is usable (driver + GPU present). reason gets why
 * not (or the device name) when non-NULL. */
bool xs_backend_cuda_usable(char *reason, size_t n);
/* "cuda" when usable, else "cpu". */
const char *xs_backend_default_name(void);

/* Constructors of each backend (registry.c calls them). */
xs_status xs_backend_ref_new(xs_backend **out);
xs_status xs_backend_cpu_new(int n_threads, xs_backend **out);
#ifdef XSWARM_HAVE_CUDA
xs_status xs_backend_cuda_new(xs_backend **out);
#endif

#endif
