/*
 * cuda_norm.cu — layer_norm, rms_norm and softmax over the innermost dim.
 * One block per row; the row statistics are reduced in double (like ref),
 * and every read of a row finishes before any write, so y may alias x.
 */
#include <math.h>

#include "backend/cuda/cuda_internal.h"

#define NORM_THREADS 256

/* Sum of v over the block (every thread gets the result). */
__device__ static double block_sum(double v, double *sh) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0) sh[w] = v;
    __syncthreads();
    double t = 0.0;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++) t += sh[i];
    return t;
}

__global__ void k_layer_norm(float *y, const float *x, cu_view xv, const float *w,
                             const float *b, int64_t d, float eps) {
    __shared__ double sh[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + cu_row_off(xv, r);
    const int64_t xs = cu_inner_stride(xv);
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) s += xr[c * xs];
    const double mean = block_sum(s, sh) / (double)d;
    double v = 0.0;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        const double e = xr[c * xs] - mean;
        v += e * e;
    }
    const double var = block_sum(v, sh) / (double)d; /* biased, like torch */
    const double inv = 1.0 / sqrt(var + (double)eps);
    __syncthreads();
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        double o = __dmul_rn(__dmul_rn((double)xr[c * xs] - mean, inv), (double)w[c]);
        if (b) o += b[c];
        y[r * d + c] = (float)o;
    }
}

xs_status cu_layer_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                        const xs_tensor *b, float eps) {
    const int64_t m = cu_rows(x), d = cu_inner(x);
    if (!m || !d) return XS_OK;
    k_layer_norm<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), (const float *)w->data,
        b ? (const float *)b->data : NULL, d, eps);
    return cu_check_launch("layer_norm");
}

__global__ void k_rms_norm(float *y, const float *x, cu_view xv, const float *alpha, int64_t d,
                           float eps) {
    __shared__ double sh[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + cu_row_off(xv, r);
    const int64_t xs = cu_inner_stride(xv);
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) {
        const double v = xr[c * xs];
        s += v * v;
    }
    const double inv = 1.0 / sqrt((double)eps + block_sum(s, sh) / (double)d);
    __syncthreads();
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x)
        y[r * d + c] = (float)__dmul_rn(__dmul_rn((double)xr[c * xs], (double)alpha[c]), inv);
}

xs_status cu_rms_norm(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *alpha,
                      float eps) {
    const int64_t m = cu_rows(x), d = cu_inner(x);
    if (!m || !d) return XS_OK;
    k_rms_norm<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), (const float *)alpha->data, d,
        eps);
    return cu_check_launch("rms_norm");
}

__global__ void k_softmax(float *y, const float *x, cu_view xv, int64_t d) {
    __shared__ double sh[32];
    __shared__ float shm[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + cu_row_off(xv, r);
    const int64_t xs = cu_inner_stride(xv);
    /* max as ref takes it: '>' comparisons starting from -inf (NaN never wins) */
    float mx = -INFINITY;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x)
        if (xr[c * xs] > mx) mx = xr[c * xs];
    for (int o = 16; o > 0; o >>= 1) {
        const float other = __shfl_xor_sync(0xffffffffu, mx, o);
        if (other > mx) mx = other;
    }
    if ((threadIdx.x & 31) == 0) shm[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int i = 0; i < (int)(blockDim.x >> 5); i++)
        if (shm[i] > mx) mx = shm[i];
    double s = 0.0;
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x) s += exp((double)xr[c * xs] - mx);
    const double sum = block_sum(s, sh);
    __syncthreads();
    for (int64_t c = threadIdx.x; c < d; c += blockDim.x)
        y[r * d + c] = (float)(exp((double)xr[c * xs] - mx) / sum);
}

xs_status cu_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    const int64_t m = cu_rows(x), d = cu_inner(x);
    if (!m || !d) return XS_OK;
    k_softmax<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
        (float *)y->data, (const float *)x->data, cu_view_of(x), d);
    return cu_check_launch("softmax");
}
