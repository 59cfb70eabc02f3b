/*
 * cuda_matmul.cu — matmul (y = x . w^T + bias) and embedding over f32, f16,
 * bf16, q8_0 and q4_0 weights. Weights stay in their file dtype in GPU
 * memory; each element is dequantized in registers exactly as ref does
 * (d * q in f32) and accumulated in f32.
 *
 * Kernels, by shape (K % 32 == 0, x contiguous and 16-byte aligned: every
 * real shape; chosen in launch_gemv):
 *  - k_gemv_split / k_gemv_quant_split (cuda_gemv_rows.cuh,
 *    cuda_gemv_quant.cuh): narrow matrices, one row per block of 4 warps;
 *  - k_gemv_rows / k_gemv_quant_rows: a warp owns R weight rows x MT rows
 *    of x, x-row tiles on the grid's fast dimension, so M = B batched rows
 *    read each weight from DRAM once (at M = 1 in the common layout:
 *    k_gemv_quant_rows_full, or k_gemv_quant_rows_async by gq_async's rule);
 *  - k_matmul_vec / k_gemv_quant: the previous one-row-per-warp kernels,
 *    kept for XSWARM_CUDA_GEMV=old (A/B timing) and N beyond grid limits;
 *  - k_matmul (odd K, strided x): element by element;
 *  - with XSWARM_CUDA_GEMV=mma (or xs_cuda_mma_select), bf16 / q8_0 / q4_0
 *    weights take the tensor-core kernel of cuda_mma.cu at every M instead
 *    (x split in three bf16 parts: f32-exact products, another fixed order).
 * All dequantize each weight to f32 exactly as ref does (d * q rounded to
 * f32) and accumulate in f32; the order of a row's sum depends on (N, K)
 * only, never on M, so a batched row equals the batch-1 row bit for bit.
 */
#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_gemv_quant.cuh"
#include "backend/cuda/cuda_gemv_quant_prev.cuh"
extern "C" {
#include "backend/cuda_probe.h"
}
#include "backend/cuda/cuda_gemv_rows.cuh"
#include "backend/cuda/cuda_mma.cuh"
#include "backend/cuda/cuda_sgemm.cuh"

#include <stdlib.h>
#include <string.h>

#define MM_ROWS 4
#define MM_WARPS 8

template <int DT>
__global__ void k_matmul(float *y, const float *x, cu_view xv, const unsigned char *w,
                         size_t row_bytes, const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    const int64_t n = (int64_t)blockIdx.x * MM_WARPS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (n >= N) return;
    const unsigned char *wr = w + (size_t)n * row_bytes;
    const int64_t xs = cu_inner_stride(xv);
    for (int64_t m0 = 0; m0 < M; m0 += MM_ROWS) {
        const int mt = (int)(M - m0 < MM_ROWS ? M - m0 : MM_ROWS);
        int64_t xo[MM_ROWS];
        float acc[MM_ROWS];
#pragma unroll
        for (int j = 0; j < MM_ROWS; j++) {
            xo[j] = j < mt ? cu_row_off(xv, m0 + j) : 0;
            acc[j] = 0.0f;
        }
        for (int64_t c = lane; c < K; c += 32) {
            const float wv = cu_weight_at<DT>(wr, c);
#pragma unroll
            for (int j = 0; j < MM_ROWS; j++)
                if (j < mt) acc[j] = fmaf(x[xo[j] + c * xs], wv, acc[j]);
        }
#pragma unroll
        for (int j = 0; j < MM_ROWS; j++)
            for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
        if (lane == 0)
            for (int j = 0; j < mt; j++)
                y[(m0 + j) * N + n] = bias ? acc[j] + bias[n] : acc[j];
    }
}

/* Eight consecutive weights of a float row from one 16-byte load (f16/bf16)
 * or two (f32). `row` is 16-byte aligned, c a multiple of 8. */
template <int DT>
__device__ static inline void load8(const unsigned char *row, int64_t c, float wv[8]) {
    if (DT == XS_F32) {
        const float4 a = *(const float4 *)(row + c * 4), b = *(const float4 *)(row + c * 4 + 16);
        wv[0] = a.x; wv[1] = a.y; wv[2] = a.z; wv[3] = a.w;
        wv[4] = b.x; wv[5] = b.y; wv[6] = b.z; wv[7] = b.w;
    } else {
        const uint4 u = *(const uint4 *)(row + c * 2);
        const unsigned int p[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            if (DT == XS_BF16) {
                wv[2 * i] = __uint_as_float(p[i] << 16);
                wv[2 * i + 1] = __uint_as_float(p[i] & 0xffff0000u);
            } else {
                wv[2 * i] = __half2float(__ushort_as_half((unsigned short)(p[i] & 0xffffu)));
                wv[2 * i + 1] = __half2float(__ushort_as_half((unsigned short)(p[i] >> 16)));
            }
        }
    }
}

template <int DT>
__global__ void k_matmul_vec(float *y, const float *x, const unsigned char *w, size_t row_bytes,
                             const float *bias, int64_t M, int64_t N, int64_t K) {
    cu_pdl_enter();
    const int64_t n = (int64_t)blockIdx.x * MM_WARPS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (n >= N) return;
    const unsigned char *wr = w + (size_t)n * row_bytes;
    for (int64_t m0 = 0; m0 < M; m0 += MM_ROWS) {
        const int mt = (int)(M - m0 < MM_ROWS ? M - m0 : MM_ROWS);
        const float *xr = x + m0 * K;
        float acc[MM_ROWS];
#pragma unroll
        for (int j = 0; j < MM_ROWS; j++) acc[j] = 0.0f;
#pragma unroll 2
        for (int64_t c = (int64_t)lane * 8; c < K; c += 256) {
            float wv[8];
            load8<DT>(wr, c, wv);
#pragma unroll
            for (int j = 0; j < MM_ROWS; j++) {
                if (j >= mt) break;
                const float4 *xv = (const float4 *)(xr + j * K + c);
                const float4 a = __ldg(xv), bb = __ldg(xv + 1);
                acc[j] = fmaf(a.x, wv[0], acc[j]);
                acc[j] = fmaf(a.y, wv[1], acc[j]);
                acc[j] = fmaf(a.z, wv[2], acc[j]);
                acc[j] = fmaf(a.w, wv[3], acc[j]);
                acc[j] = fmaf(bb.x, wv[4], acc[j]);
                acc[j] = fmaf(bb.y, wv[5], acc[j]);
                acc[j] = fmaf(bb.z, wv[6], acc[j]);
                acc[j] = fmaf(bb.w, wv[7], acc[j]);
            }
        }
#pragma unroll
        for (int j = 0; j < MM_ROWS; j++)
            for (int o = 16; o > 0; o >>= 1) acc[j] += __shfl_xor_sync(0xffffffffu, acc[j], o);
        if (lane == 0)
            for (int j = 0; j < mt; j++)
                y[(m0 + j) * N + n] = bias ? acc[j] + bias[n] : acc[j];
    }
}

/* ---- the wide-load path: kernel choice ----------------------------------------
 * MT (x rows per warp) from M; R (weight rows per warp) from the shape: one
 * row per warp keeps the most warps in flight for narrow matrices, 2-4 rows
 * let each x load serve several rows when N is large or M > 1.
 * XSWARM_CUDA_GEMV=old selects the previous kernels (k_matmul_vec,
 * k_gemv_quant: one row per warp, 4 x rows per pass) and XSWARM_CUDA_GEMV_R
 * = 1|2|4 forces R, so one binary can compare them on the same card. */
static int gemv_env_old = -1, gemv_env_r = 0, gemv_env_chunk = 0;
/* XSWARM_CUDA_GEMV=rows0: the previous q8_0 / q4_0 warp-row and split
 * kernels (cuda_gemv_quant_prev.cuh; same bits) at every M; by default they
 * still take the 8-row x tiles (M > 4), where the current ones measured
 * 25-35% slower (docs/PERF.md, "q8_0 / q4_0 GEMV at batch 1"). */
static int gq_prev = 0;
/* XSWARM_CUDA_GEMV_FULL=0: batch-1 quantized rows in the common layout take
 * the general k_gemv_quant_rows instead of k_gemv_quant_rows_full (same
 * bits; timing only) */
static int gq_full = 1;
/* Batch-1 quantized rows in the common layout through
 * k_gemv_quant_rows_async (same bits): by default with 2 slots for q4_0 and
 * for q8_0 rows longer than 4096 (H100, session 10: 4096 x 11264 q8_0 21.8
 * vs 24.6 us, q4_0 16.9 vs 17.9; the q4_0 step 4.44 vs 4.80 ms; q8_0 at
 * K = 4096 no faster, 22528 x 4096 slower: 41.2 vs 40.5 us; 3-4 slots were
 * slower everywhere but the depformer's 1024-wide rows). -1 = that rule;
 * XSWARM_CUDA_GQ_ASYNC=0 never, =2|3|4 always with that many slots. */
static int gq_async = -1;
/* XSWARM_CUDA_GEMV=mma: bf16 / q8_0 / q4_0 weights take the tensor-core
 * kernel (cuda_mma.cu) at EVERY M, so batched rows still equal batch-1 rows.
 * Off by default: at M = 1 it is 15-70% slower than the GEMV kernels
 * (docs/PERF.md, "Tensor-core matmul"), 3-4x faster from M = 16 on; a
 * server stepping many sessions turns it on for the whole process.
 * =rows (the default) / =old pick the GEMV kernels above;
 * XSWARM_CUDA_MMA_CFG=0..12 forces its tile config, -2 the previous
 * config rule (timing only: same bits), XSWARM_CUDA_MMA_KS=b the other K split (other bits, same at every M). */
static int mma_on = 0, mma_cfg = -1, mma_rule = 1;

static void gemv_read_env(void) {
    if (gemv_env_old >= 0) return;
    const char *v = getenv("XSWARM_CUDA_GEMV");
    gemv_env_old = v && !strcmp(v, "old");
    gq_prev = v && !strcmp(v, "rows0");
    mma_on = v && !strcmp(v, "mma");
    const char *mc = getenv("XSWARM_CUDA_MMA_CFG");
    mma_cfg = mc ? atoi(mc) : -1;
    const char *mk = getenv("XSWARM_CUDA_MMA_KS"); /* a | b: K split rule (cuda_mma.cu) */
    mma_rule = mk && !strcmp(mk, "b") ? 2 : 1;
    const char *r = getenv("XSWARM_CUDA_GEMV_R");
    gemv_env_r = r ? atoi(r) : 0;
    if (gemv_env_r != 1 && gemv_env_r != 2 && gemv_env_r != 4) gemv_env_r = 0;
    const char *c = getenv("XSWARM_CUDA_GEMV_CHUNK");
    gemv_env_chunk = c ? atoi(c) : 0;
    if (gemv_env_chunk != 32 && gemv_env_chunk != 64) gemv_env_chunk = 0;
    const char *f = getenv("XSWARM_CUDA_GEMV_FULL");
    gq_full = !(f && !strcmp(f, "0"));
    const char *ga = getenv("XSWARM_CUDA_GQ_ASYNC");
    gq_async = ga ? atoi(ga) : -1;
    if (gq_async != 0 && (gq_async < 2 || gq_async > 4)) gq_async = -1;
}

extern "C" void xs_cuda_gemv_select(bool old, int rows, int quant_chunk) {
    gemv_read_env();
    gemv_env_old = old ? 1 : 0;
    mma_on = 0; /* these select among the GEMV kernels */
    gemv_env_r = rows == 1 || rows == 2 || rows == 4 ? rows : 0;
    gemv_env_chunk = quant_chunk == 32 || quant_chunk == 64 ? quant_chunk : 0;
}

extern "C" void xs_cuda_gemv_quant_async_select(int stages) {
    gemv_read_env();
    gq_async = stages >= 2 && stages <= 4 ? stages : stages == 0 ? 0 : -1;
}

extern "C" void xs_cuda_gemv_quant_select(bool prev) {
    gemv_read_env();
    gq_prev = prev ? 1 : 0;
}

extern "C" void xs_cuda_mma_select(bool on, int cfg, int ks_rule) {
    gemv_read_env();
    mma_on = on ? 1 : 0;
    mma_cfg = cfg;
    if (ks_rule == 1 || ks_rule == 2) mma_rule = ks_rule;
}

template <int DT, int R, int MT>
static void launch_rows(cudaStream_t s, float *yp, const float *xp, const unsigned char *wp,
                        size_t rb, const float *bp, int64_t m, int64_t n, int64_t k, int chp) {
    const bool quant = DT == XS_Q8_0 || DT == XS_Q4_0;
    const int warps = quant ? GQR_WARPS : GV_WARPS;
    const dim3 grid((unsigned)((m + MT - 1) / MT), cu_blocks(n, warps * R));
    if constexpr (DT == XS_Q8_0 || DT == XS_Q4_0) {
        /* 64-block chunks for long rows: more bytes in flight per warp */
        const int ch = gemv_env_chunk ? gemv_env_chunk : chp ? chp : k >= 8192 ? 64 : 32;
        /* the common layout at M = 1: k_gemv_quant_rows_full (same bits) */
        const bool full = MT == 1 && gq_full && (uintptr_t)wp % 16 == 0 && rb % 16 == 0 && (k >> 5) % ch == 0;
        const int slots = gq_async >= 0 ? gq_async : DT == XS_Q4_0 || k > 4096 ? 2 : 0;
        if (full && !gq_prev && slots) { /* full: whole 32-block chunks too */
            if (slots == 2)
                k_gemv_quant_rows_async<DT, R, 2><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, n, k);
            else if (slots == 3)
                k_gemv_quant_rows_async<DT, R, 3><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, n, k);
            else
                k_gemv_quant_rows_async<DT, R, 4><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, n, k);
        } else if (full && !gq_prev) {
            if (ch == 64)
                k_gemv_quant_rows_full<DT, R, 64><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, n, k);
            else
                k_gemv_quant_rows_full<DT, R, 32><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, n, k);
        } else if (gq_prev || MT > 4) {
            if (ch == 64)
                k_gemv_quant_rows_prev<DT, R, MT, 64><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
            else
                k_gemv_quant_rows_prev<DT, R, MT, 32><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
        } else if (ch == 64) {
            k_gemv_quant_rows<DT, R, MT, 64><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
        } else {
            k_gemv_quant_rows<DT, R, MT, 32><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
        }
    } else {
        k_gemv_rows<DT, R, MT><<<grid, 32 * warps, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
    }
}

template <int DT, int R>
static void launch_mt(cudaStream_t s, float *yp, const float *xp, const unsigned char *wp,
                      size_t rb, const float *bp, int64_t m, int64_t n, int64_t k, int chp) {
    if (m == 1) launch_rows<DT, R, 1>(s, yp, xp, wp, rb, bp, m, n, k, chp);
    else if (m <= 4) launch_rows<DT, R, 4>(s, yp, xp, wp, rb, bp, m, n, k, chp);
    else launch_rows<DT, R, 8>(s, yp, xp, wp, rb, bp, m, n, k, chp);
}

/* k_gemv_quant_split for M x rows in tiles of 1 or 4 (its previous version
 * for tiles of 8, or with rows0), CH-block chunks */
template <int DT, int CH>
static void launch_quant_split(cudaStream_t s, unsigned gx, float *yp, const float *xp,
                               const unsigned char *wp, size_t rb, const float *bp, int64_t m,
                               int64_t n, int64_t k) {
    const dim3 grid(gx, (unsigned)n), block(32 * GQR_WARPS);
    if (gq_prev || m > 4) {
        if (m == 1) k_gemv_quant_split_prev<DT, 1, CH><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
        else if (m <= 4) k_gemv_quant_split_prev<DT, 4, CH><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
        else k_gemv_quant_split_prev<DT, 8, CH><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
        return;
    }
    if (m == 1) k_gemv_quant_split<DT, 1, CH><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
    else k_gemv_quant_split<DT, 4, CH><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
}

/* Rows per warp, measured on an H200 (docs/PERF.md): N >= 8192 2 rows (4
 * for float N >= 12288 at M = 1: each x load serves 4 rows), else 1; at
 * M >= 8, 4 rows when N leaves enough warps. */
template <int DT>
static void launch_gemv(cudaStream_t s, float *yp, const float *xp, const unsigned char *wp,
                        size_t rb, const float *bp, int64_t m, int64_t n, int64_t k) {
    const bool quant = DT == XS_Q8_0 || DT == XS_Q4_0;
    int r = gemv_env_r;
    /* narrow matrix: split each row over a block of warps. Measured (H200,
     * docs/PERF.md): always a gain for float rows at N <= 4096; for
     * quantized rows only where one warp per row leaves too few warps
     * (N <= 1024) or rows are long (K > 4096: ff_out), else a loss
     * (4096 x 4096 q8_0 16.1 us split vs 12.2 us one row per warp). The
     * quantized K > 4096 rows (ff_out) were split too until the warp-row
     * kernel with 2 rows per warp measured faster (H100, 4096 x 11264, M =
     * 1: q8_0 30.6 vs 32.5 us, q4_0 22.9 vs 26.7; another fixed order, the
     * same at every M). */
    const bool split = n <= 4096 && (!quant || n <= 1024);
    if (!r && split) {
        const unsigned gx = (unsigned)(m == 1 ? m : m <= 4 ? (m + 3) / 4 : (m + 7) / 8);
        const dim3 grid(gx, (unsigned)n);
        if (!quant) {
            if (m == 1) k_gemv_split<DT, 1><<<grid, 32 * GS_WARPS, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
            else if (m <= 4) k_gemv_split<DT, 4><<<grid, 32 * GS_WARPS, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
            else k_gemv_split<DT, 8><<<grid, 32 * GS_WARPS, 0, s>>>(yp, xp, wp, rb, bp, m, n, k);
        } else if (k <= 4096) { /* <= 128 blocks: 8-block chunks give every warp work */
            launch_quant_split<DT, 8>(s, gx, yp, xp, wp, rb, bp, m, n, k);
        } else {
            launch_quant_split<DT, 32>(s, gx, yp, xp, wp, rb, bp, m, n, k);
        }
        return;
    }
    /* rows per warp and (quantized) blocks per chunk change the speed only,
     * never the bits. Quantized rows at M = 1, H100 (docs/PERF.md "Narrow
     * matrices..." and "Session 8"): by shape below; 64-block chunks for
     * the tall matrices, N >= 12288 (22528 x 4096 q8_0 44.3 vs 45.3 us,
     * 32000 x 4096 58.3 vs 60.1; q8_0 12288 x 4096 was slower with them,
     * 28.9 vs 28.4, until k_gemv_quant_rows_full: 24.7 vs 27.8, session 8). */
    int chp = 0;
    if (!r && quant && m == 1) {
        /* with whole chunks (k_gemv_quant_rows_full), H100 session 8: 4096 x
         * 11264 q8_0 R1 C32 24.3 vs R2 C64 27.9 us, q4_0 R2 C32 17.9 vs
         * 18.7; 4096 x 4096 q8_0 R1 10.6 vs R4 11.5, q4_0 R2 8.7 vs 9.4 */
        if (n <= 4096 && k > 4096) {
            r = DT == XS_Q8_0 ? 1 : 2;
            chp = 32;
        } else if (n >= 4096 && n < 8192 && k == 4096) {
            r = DT == XS_Q8_0 ? 1 : 2;
        }
        if (n >= 12288 && k <= 8192) chp = 64;
    }
    if (!r) r = m >= 8 && n >= 4096 ? 4 : n >= 8192 ? (m == 1 && !quant && n >= 12288 ? 4 : 2) : 1;
    if (r == 4) launch_mt<DT, 4>(s, yp, xp, wp, rb, bp, m, n, k, chp);
    else if (r == 2) launch_mt<DT, 2>(s, yp, xp, wp, rb, bp, m, n, k, chp);
    else launch_mt<DT, 1>(s, yp, xp, wp, rb, bp, m, n, k, chp);
}

xs_status cu_matmul(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                    const xs_tensor *bias) {
    const int64_t n = w->shape[0], k = w->shape[1], m = cu_rows(x);
    if (!n || !m) return XS_OK;
    const size_t rb = xs_dtype_row_bytes(w->dtype, k);
    const cu_view xv = cu_view_of(x);
    const float *bp = bias ? (const float *)bias->data : NULL;
    const unsigned char *wp = (const unsigned char *)w->data;
    float *yp = (float *)y->data;
    const float *xp = (const float *)x->data;
    cudaStream_t s = cu_ctx_of(be)->stream;
    const dim3 grid(cu_blocks(n, MM_WARPS)), block(32 * MM_WARPS);
    /* wide-load path: whole 32-element chunks, x rows contiguous and 16-byte
     * aligned, float weight rows 16-byte aligned (quantized rows: 2-byte, as the
     * f16 scales need; k_gemv_quant loads the 16-byte span around them) */
    const bool quant = xs_dtype_is_quantized(w->dtype);
    const bool vec = k % 32 == 0 && xs_tensor_is_contiguous(x) && (uintptr_t)xp % 16 == 0 &&
                     (uintptr_t)wp % (quant ? 2 : 16) == 0 &&
                     !cu_ctx_of(be)->matmul_plain;
    gemv_read_env();
    /* short-row f32 weights (Mimi): cuda_sgemm.cu at every M (one sum order
     * per K, tiled for many rows); XSWARM_CUDA_SGEMM=0 keeps the kernels below */
    if (w->dtype == XS_F32 && cu_sgemm_on() && cu_sgemm_takes(n, k)) {
        const bool sv = k % 4 == 0 && xs_tensor_is_contiguous(x) && (uintptr_t)xp % 16 == 0 &&
                        (uintptr_t)wp % 16 == 0 && !cu_ctx_of(be)->matmul_plain;
        cu_sgemm_matmul(s, yp, xp, xv, sv, (const float *)wp, bp, m, n, k);
        return cu_check_launch("matmul (sgemm)");
    }
    if (vec && mma_on && cu_mma_takes(w->dtype, wp, m, n, k)) {
        cu_mma_matmul(cu_ctx_of(be), s, w->dtype, yp, xp, wp, rb, bp, m, n, k, mma_cfg, mma_rule);
        return cu_check_launch("matmul (mma)");
    }
    /* grid.y counts blocks of weight rows (<= 65535): N beyond R = 1's reach
     * takes the previous kernels, which have no such limit */
    if (vec && !gemv_env_old && cu_blocks(n, 4) <= 65535u && (m + 7) / 8 <= 2147483647LL) {
        switch (w->dtype) {
        case XS_F32: launch_gemv<XS_F32>(s, yp, xp, wp, rb, bp, m, n, k); break;
        case XS_F16: launch_gemv<XS_F16>(s, yp, xp, wp, rb, bp, m, n, k); break;
        case XS_BF16: launch_gemv<XS_BF16>(s, yp, xp, wp, rb, bp, m, n, k); break;
        case XS_Q8_0: launch_gemv<XS_Q8_0>(s, yp, xp, wp, rb, bp, m, n, k); break;
        case XS_Q4_0: launch_gemv<XS_Q4_0>(s, yp, xp, wp, rb, bp, m, n, k); break;
        default:
            return xs_error(XS_ERR_DTYPE, "cuda matmul: weight dtype %s", xs_dtype_name(w->dtype));
        }
        return cu_check_launch("matmul");
    }
    if (vec) {
        switch (w->dtype) {
        case XS_F32: k_matmul_vec<XS_F32><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k); break;
        case XS_F16: k_matmul_vec<XS_F16><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k); break;
        case XS_BF16: k_matmul_vec<XS_BF16><<<grid, block, 0, s>>>(yp, xp, wp, rb, bp, m, n, k); break;
        /* quantized rows: k_gemv_quant (cuda_gemv_quant.cuh) */
        case XS_Q8_0: k_gemv_quant<XS_Q8_0><<<cu_blocks(n, GQ_WARPS), 32 * GQ_WARPS, 0, s>>>(yp, xp, wp, rb, bp, m, n, k); break;
        case XS_Q4_0: k_gemv_quant<XS_Q4_0><<<cu_blocks(n, GQ_WARPS), 32 * GQ_WARPS, 0, s>>>(yp, xp, wp, rb, bp, m, n, k); break;
        default:
            return xs_error(XS_ERR_DTYPE, "cuda matmul: weight dtype %s", xs_dtype_name(w->dtype));
        }
        return cu_check_launch("matmul");
    }
    switch (w->dtype) {
    case XS_F32: k_matmul<XS_F32><<<grid, block, 0, s>>>(yp, xp, xv, wp, rb, bp, m, n, k); break;
    case XS_F16: k_matmul<XS_F16><<<grid, block, 0, s>>>(yp, xp, xv, wp, rb, bp, m, n, k); break;
    case XS_BF16: k_matmul<XS_BF16><<<grid, block, 0, s>>>(yp, xp, xv, wp, rb, bp, m, n, k); break;
    case XS_Q8_0: k_matmul<XS_Q8_0><<<grid, block, 0, s>>>(yp, xp, xv, wp, rb, bp, m, n, k); break;
    case XS_Q4_0: k_matmul<XS_Q4_0><<<grid, block, 0, s>>>(yp, xp, xv, wp, rb, bp, m, n, k); break;
    default:
        return xs_error(XS_ERR_DTYPE, "cuda matmul: weight dtype %s", xs_dtype_name(w->dtype));
    }
    return cu_check_launch("matmul");
}

/* y[i, c] = table[ids[i], c]; id -1 -> zeros; other ids out of range are
 * recorded (first one) and give zeros. */
template <int DT>
__global__ void k_embedding(float *y, const unsigned char *table, size_t row_bytes, int64_t V,
                            int64_t D, const int32_t *ids, int64_t ids_stride, int64_t n,
                            cu_err_rec *err) {
    cu_pdl_enter();
    const int64_t i = blockIdx.y;
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || c >= D) return;
    const int32_t id = ids[i * ids_stride];
    float v = 0.0f;
    if (id >= 0 && id < V) {
        v = cu_weight_at<DT>(table + (size_t)id * row_bytes, c);
    } else if (id != -1 && c == 0) {
        cu_report(err, CU_ERR_EMBED_ID, i, id, V);
    }
    y[i * D + c] = v;
}

xs_status cu_embedding(xs_backend *be, xs_tensor *y, const xs_tensor *table,
                       const xs_tensor *ids) {
    const int64_t v = table->shape[0], d = table->shape[1], n = ids->shape[0];
    if (!n || !d) return XS_OK;
    if (n > 65535) return xs_error(XS_ERR_UNSUPPORTED, "cuda embedding: %lld ids (max 65535)", (long long)n);
    cu_ctx *c = cu_ctx_of(be);
    const size_t rb = xs_dtype_row_bytes(table->dtype, d);
    const unsigned char *tp = (const unsigned char *)table->data;
    const int32_t *ip = (const int32_t *)ids->data;
    float *yp = (float *)y->data;
    const dim3 grid(cu_blocks(d, 256), (unsigned)n), block(256);
    const int64_t is = ids->stride[0];
    switch (table->dtype) {
    case XS_F32: k_embedding<XS_F32><<<grid, block, 0, c->stream>>>(yp, tp, rb, v, d, ip, is, n, c->err); break;
    case XS_F16: k_embedding<XS_F16><<<grid, block, 0, c->stream>>>(yp, tp, rb, v, d, ip, is, n, c->err); break;
    case XS_BF16: k_embedding<XS_BF16><<<grid, block, 0, c->stream>>>(yp, tp, rb, v, d, ip, is, n, c->err); break;
    case XS_Q8_0: k_embedding<XS_Q8_0><<<grid, block, 0, c->stream>>>(yp, tp, rb, v, d, ip, is, n, c->err); break;
    case XS_Q4_0: k_embedding<XS_Q4_0><<<grid, block, 0, c->stream>>>(yp, tp, rb, v, d, ip, is, n, c->err); break;
    default:
        return xs_error(XS_ERR_DTYPE, "cuda embedding: table dtype %s", xs_dtype_name(table->dtype));
    }
    return cu_check_launch("embedding");
}
