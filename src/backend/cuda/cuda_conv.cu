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
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"

#define CV_CO 8 /* output channels per block */
#define CV_T 32 /* output columns per block: one per lane */

/* NW warps split the input channels: more for long reductions over few
 * columns (the downsampling convs), so their FMA chains stay short. */
template <int NW>
__global__ void __launch_bounds__(NW * 32)
    k_conv1d_split(float *__restrict__ y, const float *__restrict__ x, cu_view xv,
                   const float *__restrict__ w, cu_view wv, const float *__restrict__ bias,
                   int64_t cout, int64_t tout, int64_t cin_g, int kk, int stride,
                   int dilation, int64_t cout_g) {
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
    y[co * tout + to] = sum;
}

static bool cu_conv_old(void) {
    static int old = -1; /* read once; a benign race sets the same value */
    if (old < 0) {
        const char *e = getenv("XSWARM_CUDA_CONV");
        old = e && !strcmp(e, "old");
    }
    return old != 0;
}

__global__ void k_conv1d(float *y, const float *x, cu_view xv, const float *w, cu_view wv,
                         const float *bias, int64_t cout, int64_t tout, int64_t cin_g,
                         int64_t kk, int stride, int dilation, int64_t cout_g) {
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

xs_status cu_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                    const xs_tensor *bias, int stride, int dilation, int groups) {
    const int64_t cout = w->shape[0], cin_g = w->shape[1], kk = w->shape[2];
    const int64_t tout = y->shape[1];
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
        if (nw == 32)
            k_conv1d_split<32><<<sgrid, 32 * 32, 0, st>>>(yd, xd, xv, wd, wv, bd, cout, tout, cin_g,
                                                          (int)kk, stride, dilation, cout_g);
        else if (nw == 16)
            k_conv1d_split<16><<<sgrid, 16 * 32, 0, st>>>(yd, xd, xv, wd, wv, bd, cout, tout, cin_g,
                                                          (int)kk, stride, dilation, cout_g);
        else
            k_conv1d_split<8><<<sgrid, 8 * 32, 0, st>>>(yd, xd, xv, wd, wv, bd, cout, tout, cin_g,
                                                        (int)kk, stride, dilation, cout_g);
        return cu_check_launch("conv1d");
    }
    const dim3 grid(cu_blocks(tout, 128), (unsigned)cout), block(128);
    k_conv1d<<<grid, block, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), (const float *)w->data,
        cu_view_of(w), bias ? (const float *)bias->data : NULL, cout, tout, cin_g, kk, stride,
        dilation, cout / groups);
    return cu_check_launch("conv1d");
}

__global__ void k_conv_transpose1d(float *y, const float *x, cu_view xv, const float *w,
                                   cu_view wv, const float *bias, int64_t cout, int64_t tout,
                                   int64_t tin, int64_t cin_g, int64_t cout_g, int64_t kk,
                                   int stride) {
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
