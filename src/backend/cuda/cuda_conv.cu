/*
 * cuda_conv.cu — conv1d (stride, dilation, groups) and conv_transpose1d
 * (groups, PyTorch weight layout [Cin, Cout/groups, K]). One thread per
 * output sample, f32 accumulation; x and w may be strided views.
 *
 * The transposed convolution is written in gather form (each output sums
 * the inputs that land on it) so no two threads write the same element and
 * no atomics are needed: output t receives input s at tap k = t - s*stride.
 *
 * conv1d has two kernels. The old one (one thread per output, the whole
 * Cin*K reduction in one dependent FMA chain) leaves the GPU idle on
 * Mimi's shallow SEANet convs: 128->256 k10 at 96 columns is 24k threads
 * each running 1280 serial FMAs. The split one (default) gives each block
 * CV_CO output channels x CV_T columns (one column per lane, CV_CO
 * accumulators per lane, so each x load feeds CV_CO FMAs and the warp-
 * uniform weight loads are broadcasts) and spreads the input channels over
 * 8, 16 or 32 warps (picked by the reduction length Cin*K alone), whose
 * partial sums are added in shared memory in a fixed warp order:
 * deterministic, f32 throughout. XSWARM_CUDA_CONV=old selects
 * the old kernel (one-binary A/B).
 *
 * The tiled one (k_conv1d_tile) computes EXACTLY the split kernel's sums
 * with a register tile per thread, for the wide calls where there are
 * enough tiles to fill the GPU (batched Mimi: 40 sessions' 24 kHz layers
 * side by side, ~77k columns). Why: the split kernel does one weight load
 * (an L1 broadcast) per FMA, so it runs at the load units' rate, a few
 * percent of the FMA rate. Here a block owns 32 output channels x 128
 * columns (64 when that leaves fewer than ~2 blocks per SM); per pass it
 * stages a few input channels' columns (split into
 * stride phases, so lanes read consecutive words at any stride) and their
 * weights in shared memory, and each thread keeps 8 channels x 4 columns of
 * accumulators: per (channel, tap) 4 x reads + 2 float4 weight broadcasts
 * feed 32 FMAs. The order is the split kernel's: it visits the input
 * channels warp-slice by warp-slice (ci = q, q + NW, ... for q = 0, 1, ...,
 * NW picked by the same rule), each slice an fmaf chain from 0 over
 * (ci, k) ascending, the slice partials added in q order to a total from
 * 0, then the bias; so which kernel runs is timing only, never bits
 * (cu_conv1d picks it by the number of tiles: batch-1 keeps the split one).
 * XSWARM_CUDA_CONV=split|tile force one (xs_cuda_conv_select: tests).
 *
 * conv1d_add (Mimi's residual blocks): the split and tiled kernels add the
 * skip r to each output as they store it, with the add op's rounding.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define CV_CO 8 /* output channels per block */
#define CV_T 32 /* output columns per block: one per lane */

/* NW warps split the input channels: more for long reductions over few
 * columns (the downsampling convs), so their FMA chains stay short. */
/* conv1d_add (backend.h): the add op's r + y on a finished output. */
__device__ __forceinline__ float cv_res_add(float r, float v) {
    return (float)((double)r + (double)v);
}

template <int NW>
__global__ void __launch_bounds__(NW * 32)
    k_conv1d_split(float *__restrict__ y, const float *__restrict__ x, cu_view xv,
                   const float *__restrict__ w, cu_view wv, const float *__restrict__ bias,
                   int64_t cout, int64_t tout, int64_t cin_g, int kk, int stride,
                   int dilation, int64_t cout_g, const float *__restrict__ res) {
    cu_pdl_enter();
    __shared__ float part[NW][CV_CO][CV_T];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int64_t t = (int64_t)blockIdx.x * CV_T + lane;
    const int64_t co0 = (int64_t)blockIdx.y * CV_CO;
    const int64_t g = co0 / cout_g; /* launched with groups = 1 only: g = 0 */
    /* lanes past the end compute column 0 (valid memory) and store nothing */
    const int64_t tx = (t < tout ? t : 0) * stride;
    const int64_t xs0 = xv.stride[0], xs1 = xv.stride[1], xstep = (int64_t)dilation * xs1;
    const int64_t ws1 = wv.stride[1], ws2 = wv.stride[2];
    int64_t wrow[CV_CO]; /* rows past cout repeat the last one; never stored */
#pragma unroll
    for (int j = 0; j < CV_CO; j++)
        wrow[j] = (co0 + j < cout ? co0 + j : cout - 1) * wv.stride[0];
    float acc[CV_CO];
#pragma unroll
    for (int j = 0; j < CV_CO; j++) acc[j] = 0.0f;
    for (int64_t ci = warp; ci < cin_g; ci += NW) {
        const float *xp = x + (g * cin_g + ci) * xs0 + tx * xs1;
        const float *wp = w + ci * ws1;
        for (int k = 0; k < kk; k++, xp += xstep, wp += ws2) {
            const float xval = __ldg(xp);
#pragma unroll
            for (int j = 0; j < CV_CO; j++) acc[j] = fmaf(__ldg(wp + wrow[j]), xval, acc[j]);
        }
    }
#pragma unroll
    for (int j = 0; j < CV_CO; j++) part[warp][j][lane] = acc[j];
    __syncthreads();
    /* the first CV_CO * CV_T threads add the warps' partials, in warp order */
    if (threadIdx.x >= CV_CO * CV_T) return;
    const int j = threadIdx.x / CV_T, l = threadIdx.x % CV_T;
    const int64_t co = co0 + j, to = (int64_t)blockIdx.x * CV_T + l;
    if (co >= cout || to >= tout) return;
    float sum = part[0][j][l];
#pragma unroll
    for (int q = 1; q < NW; q++) sum += part[q][j][l];
    if (bias) sum += bias[co];
    y[co * tout + to] = res ? cv_res_add(res[co * tout + to], sum) : sum;
}

/* ---- many columns: register tiles through shared memory ------------------ */
#define CT_CO 32          /* output channels per block: 4 warps x 8 */
#define CT_T 128          /* output columns per block (TPL = 4 per lane, 32 apart) */
#define CT_THREADS 128
#define CT_KMAX 16        /* taps */
#define CT_CMAX 32        /* input channels staged per pass */
#define CT_SMEM 40960     /* bytes staged per pass (x phases + weights) */
#define CT_MIN_BLOCKS 96  /* fewer tiles than this: the split kernel fills the GPU better */
#define CT_LD 8           /* staging loads a thread issues before storing them */
#define CT_HALF_BELOW 264 /* 128-column tiles below this (2 per SM): 64-column ones */

/* Columns of one stride phase a block stages: output column l reads phase
 * (k*dil) % s at l + (k*dil) / s. */
static int ct_phase_len(int ct_t, int kk, int stride, int dilation) {
    return ct_t + (kk - 1) * dilation / stride + 1;
}

/* Input channels per pass (0: one does not fit; the split kernel runs). */
static int ct_chunk(int64_t cin, int kk, int stride, int dilation) {
    const int64_t per = (int64_t)stride * ct_phase_len(CT_T, kk, stride, dilation) + (int64_t)kk * CT_CO;
    int64_t cc = (CT_SMEM / 4 - 4) / per;
    if (cc > CT_CMAX) cc = CT_CMAX;
    if (cc > cin) cc = cin;
    return (int)cc;
}

template <int TPL> /* columns per lane: 4 (128 per block) or 2 (64: twice the blocks) */
__global__ void __launch_bounds__(CT_THREADS)
    k_conv1d_tile(float *__restrict__ y, const float *__restrict__ x, cu_view xv, int64_t tin,
                  const float *__restrict__ w, cu_view wv, const float *__restrict__ bias,
                  int64_t cout, int64_t tout, int cin, int kk, int stride, int dilation, int nw,
                  int cc, int ph, int xsz, const float *__restrict__ res) {
    cu_pdl_enter();
    extern __shared__ __align__(16) float ct_sm[];
    float *xs = ct_sm;         /* [cc][stride][ph]: channel c, phase r, m at c*xch + r*ph + m */
    float *ws = ct_sm + xsz;   /* [cc][kk][CT_CO] (xsz: a multiple of 4 floats) */
    __shared__ int koff[CT_KMAX], cis[CT_CMAX], fresh[CT_CMAX];
    const int tid = threadIdx.x, lane = tid & 31, wg = tid >> 5;
    const int64_t t0 = (int64_t)blockIdx.x * (32 * TPL), co0 = (int64_t)blockIdx.y * CT_CO;
    const int64_t u0 = t0 * stride, xs0 = xv.stride[0], xs1 = xv.stride[1];
    const int64_t ws0 = wv.stride[0], ws1 = wv.stride[1], ws2 = wv.stride[2];
    const int xch = stride * ph;
    if (tid < kk) {
        const int d = tid * dilation;
        koff[tid] = (d % stride) * ph + d / stride;
    }
    /* slices: q < rem hold fl + 1 channels, the others fl (as the split
     * kernel's warp q takes ci = q, q + nw, ... below cin) */
    const int fl = cin / nw, rem = cin % nw;
    float acc[8][TPL], tot[8][TPL];
#pragma unroll
    for (int j = 0; j < 8; j++)
#pragma unroll
        for (int i = 0; i < TPL; i++) acc[j][i] = tot[j][i] = 0.0f;
    for (int p0 = 0; p0 < cin; p0 += cc) {
        const int n = cin - p0 < cc ? cin - p0 : cc;
        __syncthreads(); /* the previous pass is done with the staged data */
        if (tid < n) {
            const int p = p0 + tid;
            int q, j;
            if (p < rem * (fl + 1)) {
                q = p / (fl + 1);
                j = p % (fl + 1);
            } else {
                const int r = p - rem * (fl + 1);
                q = rem + r / fl;
                j = r % fl;
            }
            cis[tid] = q + nw * j;
            fresh[tid] = j == 0 && p > 0; /* first channel of a later slice */
        }
        __syncthreads();
        /* Stage x: element i of the chunk's [n][stride][ph] block is row
         * i / ph = c * stride + r (channel c, phase r), m = i % ph, i.e.
         * input column u0 + m * stride + r. Each thread walks its elements
         * (i += CT_THREADS: m wraps once or, for short phases, a few times)
         * with counters instead of divisions, and issues CT_LD loads before
         * it stores them, so several are in flight. */
        {
            const int total = n * xch;
            int m = tid, r = 0, c = 0; /* element tid */
            while (m >= ph) {
                m -= ph;
                if (++r == stride) {
                    r = 0;
                    c++;
                }
            }
            for (int base = tid; base < total; base += CT_LD * CT_THREADS) {
                float v[CT_LD];
#pragma unroll
                for (int q = 0; q < CT_LD; q++) {
                    v[q] = 0.0f;
                    if (base + q * CT_THREADS < total) {
                        const int64_t u = u0 + (int64_t)m * stride + r;
                        if (u < tin) v[q] = __ldg(x + (int64_t)cis[c] * xs0 + u * xs1);
                    }
                    m += CT_THREADS;
                    while (m >= ph) {
                        m -= ph;
                        if (++r == stride) {
                            r = 0;
                            c++;
                        }
                    }
                }
#pragma unroll
                for (int q = 0; q < CT_LD; q++)
                    if (base + q * CT_THREADS < total) xs[base + q * CT_THREADS] = v[q];
            }
        }
        /* Stage w: element i is [c][k][col], col = i % CT_CO; a step of
         * CT_THREADS elements moves (c, k) on by CT_THREADS / CT_CO taps. */
        {
            const int total = n * kk * CT_CO, col = tid % CT_CO;
            const int64_t co = co0 + col;
            int k = tid / CT_CO, c = 0;
            while (k >= kk) {
                k -= kk;
                c++;
            }
            for (int base = tid; base < total; base += CT_LD * CT_THREADS) {
                float v[CT_LD];
#pragma unroll
                for (int q = 0; q < CT_LD; q++) {
                    v[q] = 0.0f;
                    if (base + q * CT_THREADS < total && co < cout)
                        v[q] = __ldg(w + co * ws0 + (int64_t)cis[c] * ws1 + k * ws2);
                    k += CT_THREADS / CT_CO;
                    while (k >= kk) {
                        k -= kk;
                        c++;
                    }
                }
#pragma unroll
                for (int q = 0; q < CT_LD; q++)
                    if (base + q * CT_THREADS < total) ws[base + q * CT_THREADS] = v[q];
            }
        }
        __syncthreads();
        for (int c = 0; c < n; c++) {
            if (fresh[c]) { /* slice boundary: its partial joins the total */
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int i = 0; i < TPL; i++) {
                        tot[j][i] += acc[j][i];
                        acc[j][i] = 0.0f;
                    }
            }
            const float *xc = xs + c * xch + lane;
            const float *wc = ws + c * kk * CT_CO + wg * 8;
            for (int k = 0; k < kk; k++) {
                const float *xr = xc + koff[k];
                float xv4[TPL];
#pragma unroll
                for (int i = 0; i < TPL; i++) xv4[i] = xr[32 * i];
                const float4 wa = *(const float4 *)(wc + k * CT_CO);
                const float4 wb = *(const float4 *)(wc + k * CT_CO + 4);
                const float wv8[8] = {wa.x, wa.y, wa.z, wa.w, wb.x, wb.y, wb.z, wb.w};
#pragma unroll
                for (int j = 0; j < 8; j++)
#pragma unroll
                    for (int i = 0; i < TPL; i++) acc[j][i] = fmaf(wv8[j], xv4[i], acc[j][i]);
            }
        }
    }
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int64_t co = co0 + wg * 8 + j;
        if (co >= cout) continue;
        const float b = bias ? bias[co] : 0.0f;
#pragma unroll
        for (int i = 0; i < TPL; i++) {
            const int64_t t = t0 + lane + 32 * i;
            const float sum = tot[j][i] + acc[j][i];
            if (t < tout) {
                const float v = bias ? sum + b : sum;
                y[co * tout + t] = res ? cv_res_add(res[co * tout + t], v) : v;
            }
        }
    }
}

/* XSWARM_CUDA_CONV (read once) / xs_cuda_conv_select: 0 = by shape (the
 * default), 1 = old, 2 = split only, 3 = tile wherever it can run. */
static int g_conv_mode = -1;

static int cu_conv_mode(void) {
    if (g_conv_mode < 0) { /* a benign race sets the same value */
        const char *e = getenv("XSWARM_CUDA_CONV");
        g_conv_mode = !e ? 0 : !strcmp(e, "old") ? 1 : !strcmp(e, "split") ? 2
                      : !strcmp(e, "tile") ? 3 : 0;
    }
    return g_conv_mode;
}

extern "C" void xs_cuda_conv_select(int mode) {
    cu_conv_mode();
    if (mode >= 0 && mode <= 3) g_conv_mode = mode;
}

static bool cu_conv_old(void) { return cu_conv_mode() == 1; }

__global__ void k_conv1d(float *y, const float *x, cu_view xv, const float *w, cu_view wv,
                         const float *bias, int64_t cout, int64_t tout, int64_t cin_g,
                         int64_t kk, int stride, int dilation, int64_t cout_g) {
    cu_pdl_enter();
    const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t co = blockIdx.y;
    if (t >= tout || co >= cout) return;
    const int64_t g = co / cout_g;
    float acc = 0.0f;
    for (int64_t ci = 0; ci < cin_g; ci++) {
        const float *xr = x + (g * cin_g + ci) * xv.stride[0];
        const float *wr = w + co * wv.stride[0] + ci * wv.stride[1];
        for (int64_t k = 0; k < kk; k++)
            acc = fmaf(wr[k * wv.stride[2]], xr[(t * stride + k * dilation) * xv.stride[1]], acc);
    }
    if (bias) acc += bias[co];
    y[co * tout + t] = acc;
}

/* res: NULL, or r of conv1d_add (then only the split and tiled kernels:
 * *declined is set for the rest, which the caller composes). */
static xs_status conv1d_run(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                            const xs_tensor *bias, int stride, int dilation, int groups,
                            const float *res, bool *declined) {
    const int64_t cout = w->shape[0], cin_g = w->shape[1], kk = w->shape[2];
    const int64_t tout = y->shape[1];
    *declined = false;
    if (!cout || !tout) return XS_OK;
    if (cout > 65535) return xs_error(XS_ERR_UNSUPPORTED, "cuda conv1d: %lld output channels", (long long)cout);
    const int64_t cout_g = cout / groups;
    /* grouped convs (only tiny depthwise ones in Mimi) keep the old kernel */
    if (!cu_conv_old() && groups == 1) {
        const dim3 sgrid(cu_blocks(tout, CV_T), (unsigned)((cout + CV_CO - 1) / CV_CO));
        const int64_t red = cin_g * kk; /* the reduction length: picks the warps */
        const int nw = red >= 2048 && cin_g >= 32 ? 32 : red >= 512 && cin_g >= 16 ? 16 : 8;
        float *yd = (float *)y->data;
        const float *xd = (const float *)x->data, *wd = (const float *)w->data;
        const float *bd = bias ? (const float *)bias->data : NULL;
        const cu_view xv = cu_view_of(x), wv = cu_view_of(w);
        cudaStream_t st = cu_ctx_of(be)->stream;
        const int mode = cu_conv_mode();
        const int cc = kk <= CT_KMAX && cin_g <= (1 << 24) ? ct_chunk(cin_g, (int)kk, stride, dilation) : 0;
        const int64_t co_tiles = (cout + CT_CO - 1) / CT_CO;
        const int64_t tiles = (int64_t)cu_blocks(tout, CT_T) * co_tiles;
        if (cc > 0 && (mode == 3 || (mode == 0 && cout >= 16 && tiles >= CT_MIN_BLOCKS))) {
            /* fewer than ~2 blocks per SM: half-width tiles, twice the blocks */
            const int tpl = tiles < CT_HALF_BELOW ? 2 : 4, ct_t = 32 * tpl;
            const int ph = ct_phase_len(ct_t, (int)kk, stride, dilation);
            const int xsz = (int)(((int64_t)cc * stride * ph + 3) / 4 * 4);
            const size_t smem = ((size_t)xsz + (size_t)cc * kk * CT_CO) * sizeof(float);
            const dim3 tgrid(cu_blocks(tout, ct_t), (unsigned)co_tiles);
            if (tpl == 2)
                k_conv1d_tile<2><<<tgrid, CT_THREADS, smem, st>>>(yd, xd, xv, x->shape[1], wd, wv, bd,
                                                                 cout, tout, (int)cin_g, (int)kk,
                                                                 stride, dilation, nw, cc, ph, xsz, res);
            else
                k_conv1d_tile<4><<<tgrid, CT_THREADS, smem, st>>>(yd, xd, xv, x->shape[1], wd, wv, bd,
                                                                 cout, tout, (int)cin_g, (int)kk,
                                                                 stride, dilation, nw, cc, ph, xsz, res);
            return cu_check_launch("conv1d tile");
        }
        if (nw == 32)
            k_conv1d_split<32><<<sgrid, 32 * 32, 0, st>>>(yd, xd, xv, wd, wv, bd, cout, tout, cin_g,
                                                          (int)kk, stride, dilation, cout_g, res);
        else if (nw == 16)
            k_conv1d_split<16><<<sgrid, 16 * 32, 0, st>>>(yd, xd, xv, wd, wv, bd, cout, tout, cin_g,
                                                          (int)kk, stride, dilation, cout_g, res);
        else
            k_conv1d_split<8><<<sgrid, 8 * 32, 0, st>>>(yd, xd, xv, wd, wv, bd, cout, tout, cin_g,
                                                        (int)kk, stride, dilation, cout_g, res);
        return cu_check_launch("conv1d");
    }
    if (res) {
        *declined = true;
        return XS_OK;
    }
    const dim3 grid(cu_blocks(tout, 128), (unsigned)cout), block(128);
    k_conv1d<<<grid, block, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), (const float *)w->data,
        cu_view_of(w), bias ? (const float *)bias->data : NULL, cout, tout, cin_g, kk, stride,
        dilation, cout / groups);
    return cu_check_launch("conv1d");
}

xs_status cu_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                    const xs_tensor *bias, int stride, int dilation, int groups) {
    bool declined;
    return conv1d_run(be, y, x, w, bias, stride, dilation, groups, NULL, &declined);
}

/* conv1d_add (backend.h): the split and tiled kernels add r as they store
 * (cv_res_add: the add op's rounding on the stored value); the old and the
 * grouped kernel run conv1d then add. */
xs_status cu_conv1d_add(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                        const xs_tensor *bias, int stride, int dilation, int groups,
                        const xs_tensor *r) {
    bool declined;
    XS_TRY(conv1d_run(be, y, x, w, bias, stride, dilation, groups, (const float *)r->data,
                      &declined));
    if (!declined) return XS_OK;
    XS_TRY(cu_conv1d(be, y, x, w, bias, stride, dilation, groups));
    return cu_add(be, y, r, y);
}

__global__ void k_conv_transpose1d(float *y, const float *x, cu_view xv, const float *w,
                                   cu_view wv, const float *bias, int64_t cout, int64_t tout,
                                   int64_t tin, int64_t cin_g, int64_t cout_g, int64_t kk,
                                   int stride) {
    cu_pdl_enter();
    const int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t co = blockIdx.y;
    if (t >= tout || co >= cout) return;
    const int64_t g = co / cout_g, c = co % cout_g;
    /* inputs s with 0 <= t - s*stride < kk and 0 <= s < tin */
    int64_t s_hi = t / stride;
    if (s_hi > tin - 1) s_hi = tin - 1;
    int64_t s_lo = t - kk + 1 <= 0 ? 0 : (t - kk + 1 + stride - 1) / stride;
    float acc = 0.0f;
    for (int64_t ci = g * cin_g; ci < (g + 1) * cin_g; ci++) {
        const float *xr = x + ci * xv.stride[0];
        const float *wr = w + ci * wv.stride[0] + c * wv.stride[1];
        for (int64_t s = s_lo; s <= s_hi; s++)
            acc = fmaf(xr[s * xv.stride[1]], wr[(t - s * stride) * wv.stride[2]], acc);
    }
    if (bias) acc += bias[co];
    y[co * tout + t] = acc;
}

xs_status cu_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                              const xs_tensor *w, const xs_tensor *bias, int stride, int groups) {
    const int64_t cin = x->shape[0], tin = x->shape[1];
    const int64_t cout_g = w->shape[1], kk = w->shape[2];
    const int64_t cout = y->shape[0], tout = y->shape[1];
    if (!cout || !tout) return XS_OK;
    if (cout > 65535) return xs_error(XS_ERR_UNSUPPORTED, "cuda conv_transpose1d: %lld output channels", (long long)cout);
    const dim3 grid(cu_blocks(tout, 128), (unsigned)cout), block(128);
    k_conv_transpose1d<<<grid, block, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), (const float *)w->data,
        cu_view_of(w), bias ? (const float *)bias->data : NULL, cout, tout, tin, cin / groups,
        cout_g, kk, stride);
    return cu_check_launch("conv_transpose1d");
}
