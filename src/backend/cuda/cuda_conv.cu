/*
 * cuda_conv.cu — conv1d (stride, dilation, groups) and conv_transpose1d
 * (groups, PyTorch weight layout [Cin, Cout/groups, K]). One thread per
 * output sample, f32 accumulation; x and w may be strided views.
 *
 * The transposed convolution is written in gather form (each output sums
 * the inputs that land on it) so no two threads write the same element and
 * no atomics are needed: output t receives input s at tap k = t - s*stride.
 */
#include "backend/cuda/cuda_internal.h"

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
