/*
 * cuda_dep_chain.cu — what would the depformer's chain cost as ONE
 * persistent kernel, done the cheap way? A microbenchmark, not a model: the
 * depformer's 48 layers (8 sub-steps x 6) at their real bf16 shapes (D 1024,
 * 16 heads, FFN 2816 gated: 25.7 MB of weights a layer, distinct per layer),
 * with placeholder attention, so only the costs that matter here are real:
 * the weight bytes, the GEMV reductions and one grid barrier per phase.
 *
 * Layer = 5 phases, one barrier after each:
 *   1 qkv = norm(x) . wqkv^T      (norm computed by every block, in smem)
 *   2 att = f(qkv) per head       (placeholder for kv_store + attention)
 *   3 proj = att . wo^T
 *   4 ffa = silu(a) * b, [a | b] = norm(x + proj) . ff_in^T   (pairs j, F + j)
 *   5 proj = ffa . ff_out^T        (the residual add folds into the next norm)
 * Warps own rows round-robin over the blocks (spreads each phase over every
 * SM); lane L walks k = 8L + 256i like the library's GEMVs.
 * PF selects what a warp does with its NEXT phase's weight rows before it
 * waits at the barrier: 0 nothing, 1 cp.async them into its smem slice,
 * 2 L2 bulk prefetch.
 *
 * The values computed are meaningless (random weights, placeholder
 * attention); only the times are the point. Built with the CUDA backend as
 * build/bench_cuda_dep_chain; run: bench_cuda_dep_chain [reps] (prints us
 * per layer for each PF mode, the DRAM floor of the same bytes at the copy
 * rate measured in the run, and the cost of one barrier alone).
 * Results and what they mean for the real kernel: docs/PERF.md, "The
 * depformer chain's ceiling".
 */
#include <cuda_bf16.h>
#include <stdio.h>
#include <stdlib.h>

#define D 1024
#define F 2816
#define H 16
#define LAYERS 48
#define WARPS 32
#define THREADS (WARPS * 32)
#define SLICE (6 * 1024) /* smem bytes per warp for prefetched rows (ff_out: 5632) */

struct Layer {
    const unsigned char *wqkv, *wo, *ffi, *ffo; /* bf16 rows */
    const float *nrm1, *nrm2;
};

struct Params {
    Layer L[LAYERS];
    float *x0, *x1, *qkv, *att, *proj, *ffa;
    unsigned *bar;
    int layers;
};

__device__ __forceinline__ void grid_barrier(unsigned *bar, unsigned &target) {
    __syncthreads();
    target += gridDim.x;
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(bar, 1u);
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(bar) : "memory");
        } while ((int)(v - target) < 0);
    }
    __syncthreads();
}

/* the rows warp `s` (spread id) owns in a phase of n rows: s, s + S, ... */
__device__ __forceinline__ int spread_id() { return (threadIdx.x >> 5) * gridDim.x + blockIdx.x; }

template <int PF>
__device__ __forceinline__ void pf_rows(unsigned char *slice, const unsigned char *w, int n,
                                        int rb, int rows_per_item, int item_stride) {
    const int lane = threadIdx.x & 31;
    const int s = spread_id();
    if (s >= n) return;
    for (int r = 0; r < rows_per_item; r++) {
        const unsigned char *row = w + (size_t)(s + r * item_stride) * rb;
        if (PF == 1) {
            for (int o = lane * 16; o < rb; o += 512) {
                const unsigned sa = (unsigned)__cvta_generic_to_shared(slice + r * rb + o);
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(sa), "l"(row + o));
            }
        } else if (PF == 2 && lane == 0) {
#if __CUDA_ARCH__ >= 900
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(row), "r"(rb) : "memory");
#else
            for (int o = 0; o < rb; o += 128) asm volatile("prefetch.global.L2 [%0];" ::"l"(row + o));
#endif
        }
    }
    if (PF == 1) asm volatile("cp.async.commit_group;");
}

/* dot of row (global or smem copy) with xs (smem f32 [K]), lane L walks k = 8L + 256i */
template <int K, int PF>
__device__ __forceinline__ float row_dot(const unsigned char *grow, const unsigned char *srow,
                                         const float *xs) {
    const int lane = threadIdx.x & 31;
    float acc = 0.f;
#pragma unroll
    for (int i = 0; i < K / 256; i++) {
        const int k = 8 * lane + 256 * i;
        uint4 u = PF == 1 ? *(const uint4 *)(srow + 2 * k) : __ldg((const uint4 *)(grow + 2 * k));
        const unsigned p[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            acc = fmaf(xs[k + 2 * j], __uint_as_float(p[j] << 16), acc);
            acc = fmaf(xs[k + 2 * j + 1], __uint_as_float(p[j] & 0xffff0000u), acc);
        }
    }
#pragma unroll
    for (int o = 16; o; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
}

/* the warp's prefetched rows (PF 1: its cp.async copies) have landed */
template <int PF>
__device__ __forceinline__ void pf_wait() {
    if (PF == 1) {
        asm volatile("cp.async.wait_all;" ::: "memory");
        __syncwarp();
    }
}

/* out[n] = row n of w (n rows of K bf16) . xs for the warp's rows n = s, s + S, ... */
template <int K, int PF>
__device__ __forceinline__ void rows_dot(const unsigned char *w, int n_rows, float *out,
                                         const unsigned char *slice, const float *xs) {
    const int lane = threadIdx.x & 31, S = gridDim.x * WARPS;
    for (int n = spread_id(); n < n_rows; n += S) {
        const float v = row_dot<K, PF>(w + (size_t)n * 2 * K, slice, xs);
        if (lane == 0) out[n] = v;
    }
}

/* xs = src[0..n), every block its own copy (written by other SMs this launch: L2 loads) */
__device__ __forceinline__ void stage_x(float *xs, const float *src, int n) {
    for (int i = threadIdx.x; i < n; i += THREADS) xs[i] = __ldcg(src + i);
    __syncthreads();
}

/* xs = rms_norm(a (+ b)) * w, every block on its own; block 0 writes a + b to out */
__device__ void block_norm(float *xs, const float *a, const float *b, const float *w, float *out,
                           float *red) {
    float ss = 0.f;
    for (int i = threadIdx.x; i < D; i += THREADS) {
        float v = __ldcg(a + i) + (b ? __ldcg(b + i) : 0.f);
        xs[i] = v;
        ss += v * v;
    }
    for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = ss;
    __syncthreads();
    if (threadIdx.x < 32) {
        float t = red[threadIdx.x];
        for (int o = 16; o; o >>= 1) t += __shfl_xor_sync(0xffffffffu, t, o);
        if (threadIdx.x == 0) red[32] = rsqrtf(t / D + 1e-8f);
    }
    __syncthreads();
    const float r = red[32];
    for (int i = threadIdx.x; i < D; i += THREADS) {
        if (blockIdx.x == 0 && out) out[i] = xs[i];
        xs[i] = xs[i] * r * w[i];
    }
    __syncthreads();
}

template <int PF>
__global__ void __launch_bounds__(THREADS, 1) k_chain(Params p) {
    extern __shared__ __align__(16) unsigned char smem[];
    float *xs = (float *)smem;                       /* F floats */
    float *red = xs + F;                             /* 33 */
    unsigned char *slice = smem + (F + 64) * 4 + (threadIdx.x >> 5) * SLICE;
    const int lane = threadIdx.x & 31, s = spread_id(), S = gridDim.x * WARPS;
    unsigned target = 0;
    float *xa = p.x0, *xb = p.x1;
    if (PF) pf_rows<PF>(slice, p.L[0].wqkv, 3 * D, 2 * D, 1, 0);
    for (int l = 0; l < p.layers; l++) {
        const Layer &L = p.L[l];
        /* 1: norm (+ residual of the previous FFN), qkv */
        block_norm(xs, xa, l ? p.proj : NULL, L.nrm1, xb, red);
        pf_wait<PF>();
        rows_dot<D, PF>(L.wqkv, 3 * D, p.qkv, slice, xs);
        if (PF) pf_rows<PF>(slice, L.wo, D, 2 * D, 1, 0);
        grid_barrier(p.bar, target);
        { float *t = xa; xa = xb; xb = t; }
        /* 2: placeholder attention, one block per head */
        if (blockIdx.x < H)
            for (int i = threadIdx.x; i < D / H; i += THREADS) {
                const int c = blockIdx.x * (D / H) + i;
                p.att[c] = __ldcg(p.qkv + c) * __ldcg(p.qkv + D + c) + __ldcg(p.qkv + 2 * D + c);
            }
        grid_barrier(p.bar, target);
        /* 3: wo */
        stage_x(xs, p.att, D);
        pf_wait<PF>();
        rows_dot<D, PF>(L.wo, D, p.proj, slice, xs);
        __syncthreads();
        if (PF) pf_rows<PF>(slice, L.ffi, F, 2 * D, 2, F);
        grid_barrier(p.bar, target);
        /* 4: norm(x + proj), ff_in pairs with silu */
        block_norm(xs, xa, p.proj, L.nrm2, xb, red);
        pf_wait<PF>();
        for (int n = s; n < F; n += S) {
            const float a = row_dot<D, PF>(L.ffi + (size_t)n * 2 * D, slice, xs);
            const float b = row_dot<D, PF>(L.ffi + (size_t)(n + F) * 2 * D, slice + 2 * D, xs);
            if (lane == 0) p.ffa[n] = a / (1.f + __expf(-a)) * b;
        }
        __syncthreads();
        if (PF) pf_rows<PF>(slice, L.ffo, D, 2 * F, 1, 0);
        grid_barrier(p.bar, target);
        { float *t = xa; xa = xb; xb = t; }
        /* 5: ff_out */
        stage_x(xs, p.ffa, F);
        pf_wait<PF>();
        rows_dot<F, PF>(L.ffo, D, p.proj, slice, xs);
        __syncthreads();
        if (PF && l + 1 < p.layers) pf_rows<PF>(slice, p.L[l + 1].wqkv, 3 * D, 2 * D, 1, 0);
        grid_barrier(p.bar, target);
    }
}

__global__ void k_barriers(unsigned *bar, int n) {
    unsigned target = 0;
    for (int i = 0; i < n; i++) grid_barrier(bar, target);
}

__global__ void k_copy(uint4 *d, const uint4 *s, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        d[i] = __ldcs(s + i);
}

__global__ void k_fill(unsigned *p, size_t n, unsigned seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        unsigned v = (unsigned)i * 2654435761u ^ seed;
        v ^= v >> 13; v *= 0x5bd1e995u; v ^= v >> 15;
        /* two bf16 of magnitude in [1/128, 1/64), random signs */
        p[i] = (0x3c00u + (v & 0x7fu)) | ((v & 0x8000u)) | ((0x3c00u + ((v >> 16) & 0x7fu)) << 16) | (v & 0x80000000u);
    }
}

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); exit(1); } } while (0)

template <int PF>
static float run(Params p, int blocks, int reps, cudaStream_t st) {
    const size_t shm = (F + 64) * 4 + (size_t)WARPS * SLICE;
    CK(cudaFuncSetAttribute(k_chain<PF>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shm));
    cudaEvent_t a, b;
    cudaEventCreate(&a);
    cudaEventCreate(&b);
    float best = 1e30f;
    for (int r = 0; r < reps; r++) {
        CK(cudaMemsetAsync(p.bar, 0, 4, st));
        cudaEventRecord(a, st);
        k_chain<PF><<<blocks, THREADS, shm, st>>>(p);
        cudaEventRecord(b, st);
        CK(cudaStreamSynchronize(st));
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        if (r && ms < best) best = ms;
    }
    return best * 1000.f / p.layers;
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 20;
    int sms;
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const size_t per = (size_t)(3 * D * D + D * D + 2 * F * D + D * F) * 2;
    unsigned char *w;
    CK(cudaMalloc(&w, per * LAYERS));
    k_fill<<<1024, 256>>>((unsigned *)w, per * LAYERS / 4, 12345u);
    float *act, *nrm;
    CK(cudaMalloc(&act, 16 * D * 4 + 4 * F * 4));
    CK(cudaMalloc(&nrm, 2 * D * 4));
    k_fill<<<64, 256>>>((unsigned *)nrm, 2 * D, 7u); /* any finite values */
    k_fill<<<64, 256>>>((unsigned *)act, 16 * D + 4 * F, 9u);
    Params p;
    for (int l = 0; l < LAYERS; l++) {
        unsigned char *b = w + per * l;
        p.L[l].wqkv = b;
        p.L[l].wo = b + (size_t)3 * D * D * 2;
        p.L[l].ffi = b + (size_t)4 * D * D * 2;
        p.L[l].ffo = b + (size_t)(4 * D * D + 2 * F * D) * 2;
        p.L[l].nrm1 = nrm;
        p.L[l].nrm2 = nrm + D;
    }
    p.x0 = act; p.x1 = act + D; p.qkv = act + 2 * D; p.att = act + 5 * D; p.proj = act + 6 * D;
    p.ffa = act + 8 * D;
    CK(cudaMalloc(&p.bar, 256));
    p.layers = LAYERS;
    cudaStream_t st;
    CK(cudaStreamCreate(&st));
    /* copy bandwidth over the same bytes: the floor's rate */
    uint4 *dst;
    CK(cudaMalloc(&dst, per * LAYERS));
    cudaEvent_t a, b;
    cudaEventCreate(&a); cudaEventCreate(&b);
    float cbest = 1e30f;
    for (int r = 0; r < 5; r++) {
        cudaEventRecord(a, st);
        k_copy<<<sms * 8, 256, 0, st>>>(dst, (const uint4 *)w, per * LAYERS / 16);
        cudaEventRecord(b, st);
        CK(cudaStreamSynchronize(st));
        float ms; cudaEventElapsedTime(&ms, a, b);
        if (ms < cbest) cbest = ms;
    }
    const double read_gbs = per * LAYERS / (cbest * 1e-3) / 1e9 * 2.0; /* read + write */
    printf("SMs %d, %.1f MB a layer, copy %.0f GB/s (read+write) -> floor %.2f us a layer\n", sms,
           per / 1e6, read_gbs, per / (read_gbs * 1e3));
    printf("blocks %d x %d threads: PF0 %.2f  PF1(smem) %.2f  PF2(L2) %.2f us a layer\n", sms,
           THREADS, run<0>(p, sms, reps, st), run<1>(p, sms, reps, st), run<2>(p, sms, reps, st));
    /* barrier alone */
    for (int r = 0; r < 3; r++) {
        CK(cudaMemsetAsync(p.bar, 0, 4, st));
        cudaEventRecord(a, st);
        k_barriers<<<sms, THREADS, 0, st>>>(p.bar, 1000);
        cudaEventRecord(b, st);
        CK(cudaStreamSynchronize(st));
        float ms; cudaEventElapsedTime(&ms, a, b);
        if (r == 2) printf("barrier alone: %.2f us each (%d blocks)\n", ms, sms);
    }
    CK(cudaGetLastError());
    return 0;
}
