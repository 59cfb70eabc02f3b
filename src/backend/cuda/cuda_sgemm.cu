/*
 * cuda_sgemm.cu — y = x . w^T (+ bias) for f32 weights at any M, with ONE
 * summation order per output that depends on K only.
 *
 * Why: batched Mimi (model/mimi_batch.c) multiplies the N sessions' rows
 * (thousands: the decoder's transposed convs at N x 480 rows, the deep
 * convs at N x 16) by f32 weights, and the GEMV kernels of cuda_matmul.cu,
 * built for a few rows, reuse each loaded value only a few times (~1-2 T
 * FMA/s). A session's codes must still equal its solo codes bit for bit,
 * so a row's result may depend neither on M nor on where the row sits.
 *
 * The order (every kernel here, every M; cu_sgemm_ref_order in the test
 * restates it on the host): K is cut into chunks of SG_CHUNK = 32
 * consecutive k (the last one may be shorter); each chunk's partial is a
 * sequential fmaf chain from 0 in ascending k; the partials are added in
 * ascending chunk order to a total that starts at 0; then + bias[n].
 *
 * Kernels:
 *  - k_sgemm_tiled<TM, TN> (many rows): a block of 256 threads owns a
 *    (16 TM) x (16 TN) tile of y; x and w tiles of 16 k go through
 *    double-buffered shared memory (k-major, so each thread reads its TM x
 *    and TN w values as float4s), each thread keeps a TM x TN register tile
 *    of chunk partials (two stages = one chunk) and one of totals;
 *  - k_sgemm_small<MT> (few rows): one thread per (weight row, chunk) for
 *    MT x rows, the chunk partials go to shared memory and one thread per
 *    output adds them in order: parallel over K where the tiled kernel
 *    would have no rows to fill its tile.
 * The choice among them (cu_sgemm_matmul) is timing only: the bits are the
 * same. Which weights take them at all (mode, sg_weight_rule) depends on
 * the weight's shape only, never on M.
 */
#include "backend/cuda/cuda_sgemm.cuh"

extern "C" {
#include "backend/cuda_probe.h"
}

#include <stdlib.h>
#include <string.h>

#define SG_CHUNK 32
#define SG_THREADS 256
#define SG_BK 16               /* k per shared-memory stage: two stages per chunk */
#define SG_SMALL_SMEM 49152    /* partials of one small block (default limit) */

/* ---- mode: XSWARM_CUDA_SGEMM, read once -------------------------------------------
 * 0 = off (the GEMV kernels); 1 = the weights of sg_weight_rule, kernel by
 * shape (the default: unset or any other value; H100, 80 sessions' batched
 * Mimi decode 19.8 -> 12.9 ms, batch-1 Mimi unchanged); 5 ("all") = every f32
 * weight, kernel by shape; 2 = every f32 weight, the small kernel only;
 * 3 / 4 = every f32 weight, the 128 x 128 / 64 x 64 tiled kernel wherever x
 * allows (tests and timing). Modes 1-5 give the same bits wherever they
 * take a weight. */
static int sg_mode = -1;

static void sg_read_env(void) {
    if (sg_mode >= 0) return;
    const char *v = getenv("XSWARM_CUDA_SGEMM");
    sg_mode = 1; /* docs/PERF.md "f32 matmul with an M-independent order" */
    if (v && !strcmp(v, "0")) sg_mode = 0;
    else if (v && !strcmp(v, "all")) sg_mode = 5;
    else if (v && !strcmp(v, "small")) sg_mode = 2;
    else if (v && !strcmp(v, "tiled")) sg_mode = 3;
    else if (v && !strcmp(v, "tiled64")) sg_mode = 4;
}

bool cu_sgemm_on(void) {
    sg_read_env();
    return sg_mode != 0;
}

extern "C" void xs_cuda_sgemm_select(int mode) {
    sg_read_env();
    if (mode >= 0 && mode <= 5) sg_mode = mode;
}

/* ---- few rows: one thread per (weight row, chunk) ---------------------------------
 * Block: nb weight rows x tpc threads (tpc = min(chunks, 256)); thread c0
 * of a row computes chunks c0, c0 + tpc, ... for the MT x rows of this
 * block and stores each partial in part[row][chunk][j]; then thread
 * (row, j) adds that row's partials in chunk order. Weights: 32 floats per
 * thread and chunk (8 float4s of one 128-byte line); x: the same chunk for
 * every weight row of the block, so L1 serves all but the first. */
/* GELU (xs_op_matmul_gelu): the gelu op's formula (cuda_elementwise.cu,
 * erf form, in double, rounded once) applied to the finished output, i.e.
 * to the float the matmul op would have stored: matmul then gelu, bit for
 * bit, in one kernel. */
__device__ __forceinline__ float sg_gelu(float x) {
    const double v = x;
    return (float)(0.5 * v * (1.0 + erf(__ddiv_rn(v, sqrt(2.0)))));
}

template <int MT, bool VEC, bool GELU>
__global__ void __launch_bounds__(SG_THREADS)
k_sgemm_small(float *y, const float *x, cu_view xv, const float *w, const float *bias,
              int64_t M, int64_t N, int64_t K, int tpc, int nb, int nc) {
    cu_pdl_enter();
    extern __shared__ float part[];
    const int t = threadIdx.x, nl = t / tpc, c0 = t % tpc;
    const int64_t n = (int64_t)blockIdx.y * nb + nl;
    const int64_t m0 = (int64_t)blockIdx.x * MT;
    const int mt = (int)(M - m0 < MT ? M - m0 : MT);
    if (nl < nb && n < N) {
        const float *wr = w + n * K;
        int64_t xo[MT];
        const int64_t xs = VEC ? 1 : cu_inner_stride(xv);
#pragma unroll
        for (int j = 0; j < MT; j++)
            xo[j] = VEC ? (m0 + (j < mt ? j : 0)) * K : cu_row_off(xv, m0 + (j < mt ? j : 0));
        for (int c = c0; c < nc; c += tpc) {
            const int64_t k0 = (int64_t)c * SG_CHUNK;
            float acc[MT];
#pragma unroll
            for (int j = 0; j < MT; j++) acc[j] = 0.0f;
            if (VEC && k0 + SG_CHUNK <= K) {
                float wv[SG_CHUNK];
#pragma unroll
                for (int q = 0; q < SG_CHUNK / 4; q++) {
                    const float4 a = __ldg((const float4 *)(wr + k0) + q);
                    wv[4 * q] = a.x; wv[4 * q + 1] = a.y; wv[4 * q + 2] = a.z; wv[4 * q + 3] = a.w;
                }
#pragma unroll
                for (int j = 0; j < MT; j++) {
                    if (j >= mt) break;
                    const float4 *xr = (const float4 *)(x + xo[j] + k0);
                    float s = 0.0f;
#pragma unroll
                    for (int q = 0; q < SG_CHUNK / 4; q++) {
                        const float4 a = __ldg(xr + q);
                        s = fmaf(a.x, wv[4 * q], s);
                        s = fmaf(a.y, wv[4 * q + 1], s);
                        s = fmaf(a.z, wv[4 * q + 2], s);
                        s = fmaf(a.w, wv[4 * q + 3], s);
                    }
                    acc[j] = s;
                }
            } else {
                const int kn = (int)(K - k0 < SG_CHUNK ? K - k0 : SG_CHUNK);
                for (int kk = 0; kk < kn; kk++) {
                    const float wv = wr[k0 + kk];
#pragma unroll
                    for (int j = 0; j < MT; j++)
                        if (j < mt) acc[j] = fmaf(x[xo[j] + (k0 + kk) * xs], wv, acc[j]);
                }
            }
#pragma unroll
            for (int j = 0; j < MT; j++) part[((size_t)nl * nc + c) * MT + j] = acc[j];
        }
    }
    __syncthreads();
    /* nb x MT outputs, which may outnumber the threads (few chunks: nb up
     * to 256 rows per block) */
    for (int q = t; q < nb * MT; q += blockDim.x) {
        const int nl2 = q / MT, j = q % MT;
        const int64_t n2 = (int64_t)blockIdx.y * nb + nl2;
        if (n2 < N && j < mt) {
            const float *p = part + (size_t)nl2 * nc * MT + j;
            float tot = 0.0f;
#pragma unroll 8
            for (int c = 0; c < nc; c++) tot += p[(size_t)c * MT];
            const float o = bias ? tot + bias[n2] : tot;
            y[(m0 + j) * N + n2] = GELU ? sg_gelu(o) : o;
        }
    }
}

/* ---- many rows: shared-memory tiles, register micro-tiles ------------------------
 * 16 x 16 threads; thread (ty, tx) owns x rows ty*H .. +H and BM/2 + ty*H
 * .. +H (H = TM/2), weight rows likewise with tx, TN: the two halves keep
 * a warp's shared-memory reads to two broadcast rows. Stage loads are
 * float4s of 4 consecutive k (x rows contiguous, K % 4 == 0), stored
 * k-major; zeros beyond M, N and K (a zero product leaves a partial as it
 * is, so the padded k do not change the chunk sums). */
template <int H>
__device__ __forceinline__ void sg_lds(const float *p, float *v) {
    if (H == 4) {
        const float4 a = *(const float4 *)p;
        v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    } else {
        const float2 a = *(const float2 *)p;
        v[0] = a.x; v[1] = a.y;
    }
}

template <int TM, int TN, bool GELU>
__global__ void __launch_bounds__(SG_THREADS, 1)
k_sgemm_tiled(float *y, const float *x, const float *w, const float *bias, int64_t M, int64_t N,
              int64_t K) {
    cu_pdl_enter();
    constexpr int BM = 16 * TM, BN = 16 * TN, HM = TM / 2, HN = TN / 2;
    constexpr int LDA = BM + 4, LDB = BN + 4;
    constexpr int LA = BM * SG_BK / 4 / SG_THREADS, LB = BN * SG_BK / 4 / SG_THREADS;
    __shared__ __align__(16) float As[2][SG_BK][LDA];
    __shared__ __align__(16) float Bs[2][SG_BK][LDB];
    const int t = threadIdx.x, tx = t & 15, ty = t >> 4;
    const int64_t bm = (int64_t)blockIdx.x * BM, bn = (int64_t)blockIdx.y * BN;
    float4 ra[LA], rb[LB];

    /* float4 i of a stage: row i >> 2, k 4 * (i & 3) */
    auto load = [&](int64_t k0) {
#pragma unroll
        for (int h = 0; h < LA; h++) {
            const int i = t + SG_THREADS * h;
            const int64_t gm = bm + (i >> 2), k = k0 + 4 * (i & 3);
            ra[h] = gm < M && k < K ? __ldg((const float4 *)(x + gm * K + k)) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
#pragma unroll
        for (int h = 0; h < LB; h++) {
            const int i = t + SG_THREADS * h;
            const int64_t gn = bn + (i >> 2), k = k0 + 4 * (i & 3);
            rb[h] = gn < N && k < K ? __ldg((const float4 *)(w + gn * K + k)) : make_float4(0.f, 0.f, 0.f, 0.f);
        }
    };
    auto store = [&](int b) {
#pragma unroll
        for (int h = 0; h < LA; h++) {
            const int i = t + SG_THREADS * h, r = i >> 2, k = 4 * (i & 3);
            As[b][k][r] = ra[h].x; As[b][k + 1][r] = ra[h].y;
            As[b][k + 2][r] = ra[h].z; As[b][k + 3][r] = ra[h].w;
        }
#pragma unroll
        for (int h = 0; h < LB; h++) {
            const int i = t + SG_THREADS * h, r = i >> 2, k = 4 * (i & 3);
            Bs[b][k][r] = rb[h].x; Bs[b][k + 1][r] = rb[h].y;
            Bs[b][k + 2][r] = rb[h].z; Bs[b][k + 3][r] = rb[h].w;
        }
    };

    float tot[TM][TN], acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) tot[i][j] = acc[i][j] = 0.0f;

    const int64_t nst = (K + SG_BK - 1) / SG_BK;
    load(0);
    store(0);
    __syncthreads();
    for (int64_t st = 0; st < nst; st++) {
        const int b = (int)(st & 1);
        if (st + 1 < nst) load((st + 1) * SG_BK);
        if (!(st & 1)) {
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
        }
#pragma unroll
        for (int kk = 0; kk < SG_BK; kk++) {
            float a[TM], bv[TN];
            sg_lds<HM>(&As[b][kk][ty * HM], a);
            sg_lds<HM>(&As[b][kk][BM / 2 + ty * HM], a + HM);
            sg_lds<HN>(&Bs[b][kk][tx * HN], bv);
            sg_lds<HN>(&Bs[b][kk][BN / 2 + tx * HN], bv + HN);
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) acc[i][j] = fmaf(a[i], bv[j], acc[i][j]);
        }
        if ((st & 1) || st + 1 == nst) {
#pragma unroll
            for (int i = 0; i < TM; i++)
#pragma unroll
                for (int j = 0; j < TN; j++) tot[i][j] += acc[i][j];
        }
        if (st + 1 < nst) store(b ^ 1);
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < TM; i++) {
        const int64_t m = bm + (i < HM ? ty * HM + i : BM / 2 + ty * HM + i - HM);
        if (m >= M) continue;
#pragma unroll
        for (int j = 0; j < TN; j++) {
            const int64_t n = bn + (j < HN ? tx * HN + j : BN / 2 + tx * HN + j - HN);
            if (n < N) {
                const float o = bias ? tot[i][j] + bias[n] : tot[i][j];
                y[m * N + n] = GELU ? sg_gelu(o) : o;
            }
        }
    }
}

/* ---- launch --------------------------------------------------------------------- */

/* the small kernel's layout for K: threads per weight row, rows per block */
static void sg_small_layout(int64_t K, int *tpc, int *nb, int *nc) {
    *nc = (int)((K + SG_CHUNK - 1) / SG_CHUNK);
    *tpc = *nc < SG_THREADS ? *nc : SG_THREADS;
    *nb = SG_THREADS / *tpc;
}

/* Which weights mode 1 gives these kernels: short rows (K <= 512) and at
 * least twice as many outputs (N >= 2K). Measured on the H100 at Mimi's
 * shapes (docs/PERF.md), the GEMV kernels stay faster at one session's rows
 * AND at 40 sessions' rows for the others (512 x 512 q/k/v/o: 14 vs 23 us at
 * M = 80; 1024 x 8192: 230 vs 335 us), while these are faster at 40
 * sessions' rows (512 x 128 at M = 19200: 1981 vs 99 us; 2048 x 512 at
 * M = 80: 45 vs 23 us) and within a few us at one session's. The rule
 * depends on the weight only, so every M of a weight takes one order. */
static bool sg_weight_rule(int64_t N, int64_t K) { return K <= 512 && N >= 2 * K; }

bool cu_sgemm_takes(int64_t N, int64_t K) {
    sg_read_env();
    if (K <= 0 || N <= 0 || K > ((int64_t)1 << 30) / SG_CHUNK) return false;
    if (sg_mode == 1 && !sg_weight_rule(N, K)) return false;
    int tpc, nb, nc;
    sg_small_layout(K, &tpc, &nb, &nc);
    /* the MT = 1 small kernel's partials must fit one block's shared memory,
     * its weight-row blocks grid.y, the tiled kernel's tiles grid.y too */
    return (size_t)nb * nc * sizeof(float) <= SG_SMALL_SMEM && (N + nb - 1) / nb <= 65535 &&
           (N + 63) / 64 <= 65535;
}

template <int MT, bool VEC>
static void sg_small(cudaStream_t s, float *y, const float *x, const cu_view &xv, const float *w,
                     const float *bias, int64_t M, int64_t N, int64_t K, bool gelu) {
    int tpc, nb, nc;
    sg_small_layout(K, &tpc, &nb, &nc);
    const dim3 grid((unsigned)((M + MT - 1) / MT), (unsigned)((N + nb - 1) / nb));
    const size_t smem = (size_t)nb * nc * MT * sizeof(float);
    if (gelu)
        k_sgemm_small<MT, VEC, true><<<grid, nb * tpc, smem, s>>>(y, x, xv, w, bias, M, N, K, tpc, nb, nc);
    else
        k_sgemm_small<MT, VEC, false><<<grid, nb * tpc, smem, s>>>(y, x, xv, w, bias, M, N, K, tpc, nb, nc);
}

/* Rows per small block: as many as the partials' shared memory allows
 * (MT = 1 always fits: cu_sgemm_takes). */
template <bool VEC>
static void sg_small_mt(cudaStream_t s, float *y, const float *x, const cu_view &xv, const float *w,
                        const float *bias, int64_t M, int64_t N, int64_t K, bool gelu) {
    int tpc, nb, nc;
    sg_small_layout(K, &tpc, &nb, &nc);
    const size_t per_row = (size_t)nb * nc * sizeof(float);
    int mt = M == 1 ? 1 : M == 2 ? 2 : M <= 4 ? 4 : 8;
    while (mt > 1 && per_row * mt > SG_SMALL_SMEM) mt /= 2;
    if (mt == 8) sg_small<8, VEC>(s, y, x, xv, w, bias, M, N, K, gelu);
    else if (mt == 4) sg_small<4, VEC>(s, y, x, xv, w, bias, M, N, K, gelu);
    else if (mt == 2) sg_small<2, VEC>(s, y, x, xv, w, bias, M, N, K, gelu);
    else sg_small<1, VEC>(s, y, x, xv, w, bias, M, N, K, gelu);
}

static int64_t sg_tiles(int64_t M, int64_t N, int64_t bm, int64_t bn) {
    return ((M + bm - 1) / bm) * ((N + bn - 1) / bn);
}

void cu_sgemm_matmul(cudaStream_t s, float *y, const float *x, const cu_view &xv, bool vec,
                     const float *w, const float *bias, int64_t M, int64_t N, int64_t K,
                     bool gelu) {
    sg_read_env();
    if (!vec) {
        sg_small_mt<false>(s, y, x, xv, w, bias, M, N, K, gelu);
        return;
    }
    /* Measured on the H100 at Mimi's shapes (docs/PERF.md): the 64 x 64
     * tiles beat the 128 x 128 ones nearly everywhere (more blocks in
     * flight, two per SM) and the small kernel from M = 8 once there are
     * 16 tiles (512 x 512 at M = 80: 23 vs 33 us; 256 x 1536 at M = 16,
     * 4 tiles: 58 vs 12 us). */
    int tile = 0; /* 0 small, 1 = 64 x 64, 2 = 128 x 128 */
    if (sg_mode == 3) tile = 2;
    else if (sg_mode == 4) tile = 1;
    else if ((sg_mode == 1 || sg_mode == 5) && M >= 8 && sg_tiles(M, N, 64, 64) >= 16) tile = 1;
    if (tile == 2) {
        const dim3 grid((unsigned)((M + 127) / 128), (unsigned)((N + 127) / 128));
        if (gelu) k_sgemm_tiled<8, 8, true><<<grid, SG_THREADS, 0, s>>>(y, x, w, bias, M, N, K);
        else k_sgemm_tiled<8, 8, false><<<grid, SG_THREADS, 0, s>>>(y, x, w, bias, M, N, K);
    } else if (tile == 1) {
        const dim3 grid((unsigned)((M + 63) / 64), (unsigned)((N + 63) / 64));
        if (gelu) k_sgemm_tiled<4, 4, true><<<grid, SG_THREADS, 0, s>>>(y, x, w, bias, M, N, K);
        else k_sgemm_tiled<4, 4, false><<<grid, SG_THREADS, 0, s>>>(y, x, w, bias, M, N, K);
    } else {
        sg_small_mt<true>(s, y, x, xv, w, bias, M, N, K, gelu);
    }
}

/* xs_op_matmul_gelu (backend.h matmul_gelu): where cu_matmul would take the
 * kernels above (the same test, first in cu_matmul), they apply the gelu
 * to each output as they store it; elsewhere the two ops run. */
xs_status cu_matmul_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                         const xs_tensor *bias) {
    const int64_t n = w->shape[0], k = w->shape[1], m = cu_rows(x);
    if (!n || !m) return XS_OK;
    if (w->dtype == XS_F32 && cu_sgemm_on() && cu_sgemm_takes(n, k)) {
        const float *xp = (const float *)x->data, *wp = (const float *)w->data;
        const bool sv = k % 4 == 0 && xs_tensor_is_contiguous(x) && (uintptr_t)xp % 16 == 0 &&
                        (uintptr_t)wp % 16 == 0 && !cu_ctx_of(be)->matmul_plain;
        cu_sgemm_matmul(cu_ctx_of(be)->stream, (float *)y->data, xp, cu_view_of(x), sv, wp,
                        bias ? (const float *)bias->data : NULL, m, n, k, true);
        return cu_check_launch("matmul_gelu (sgemm)");
    }
    XS_TRY(cu_matmul(be, y, x, w, bias));
    return cu_gelu(be, y, y);
}
