/*
 * cuda_norm.cu — layer_norm, rms_norm and softmax over the innermost dim.
 * One block per row; the row statistics are reduced in double (like ref),
 * and every read of a row finishes before any write, so y may alias x.
 *
 * Fast path (contiguous rows of d % 4 == 0 floats, d <= 4096, 16-byte
 * aligned): each thread loads its up to 4 float4s of the row into
 * registers at once, so the row costs ONE memory round trip instead of
 * one per loop iteration (the generic loop below issued its loads one
 * after another: ~10 us for a 4096-float row, almost all of it latency),
 * and the second pass reuses the registers instead of re-reading x. The
 * per-element output formula is the generic one; only the order of the
 * double sum differs.
 *
 * add_norm (backend.h, fused): the same fast kernels with ADD = true first
 * form x + h per element exactly as the add op does ((float)((double)x +
 * h)), store it to x, and normalize those registers: the result is add then
 * norm bit for bit (same sums in the same order), in one launch instead of
 * two. Rows the fast path cannot take run the two ops.
 *
 * add_scaled_norm (Mimi): the same with h *= s before the add (the mul
 * op's rounding), the norm optional.
 *
 * The generic kernels (strided rows, softmax) find their row through a
 * cu_rowg (cuda_row_geom.cuh: no per-thread stack copy of the view, 32-bit
 * row split); XSWARM_CUDA_ROWG=old (or EW=old) gives them the cu_view (A/B).
 */
#include <math.h>

#include "backend/cuda/cuda_row_geom.cuh"

#define NORM_THREADS 256
#define NORM_VEC 4 /* float4s per thread in the fast path: d <= 256 * 4 * 4 */

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


/* True when the fast (register) path can take rows of x (and write y). */
static bool norm_fast_ok(const xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                         const xs_tensor *b, int64_t d) {
    if (d % 4 || d > (int64_t)NORM_THREADS * NORM_VEC * 4) return false;
    if (!xs_tensor_is_contiguous(x)) return false;
    const uintptr_t m = (uintptr_t)x->data | (uintptr_t)y->data | (uintptr_t)w->data |
                        (uintptr_t)(b ? b->data : NULL);
    return (m & 15u) == 0;
}

/* Row r of x (d floats, contiguous) into registers: v[k] = float4 k*NT + tid. */
__device__ static inline void norm_load(float4 *v, const float4 *xr, int n4) {
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) {
        const int j = k * NORM_THREADS + threadIdx.x;
        v[k] = j < n4 ? xr[j] : make_float4(0.f, 0.f, 0.f, 0.f);
    }
}

/* ADD: v += h (registers of row r of h), rounded as the add op rounds, and
 * stored back to x. Every load of a kernel (x, h, the weights) is issued
 * before its first store: a store could alias a later load as far as the
 * compiler knows, so loads after a store would wait one round trip each. */
__device__ static inline void norm_add(float4 *v, const float4 *h, float4 *xr, int n4) {
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) {
        const int j = k * NORM_THREADS + threadIdx.x;
        if (j >= n4) break;
        v[k].x = (float)((double)v[k].x + (double)h[k].x);
        v[k].y = (float)((double)v[k].y + (double)h[k].y);
        v[k].z = (float)((double)v[k].z + (double)h[k].z);
        v[k].w = (float)((double)v[k].w + (double)h[k].w);
        xr[j] = v[k];
    }
}

template <bool ADD>
__global__ void __launch_bounds__(NORM_THREADS)
    k_rms_norm_fast(float *y, float *x, const float *h, const float *alpha, int64_t d, float eps) {
    cu_pdl_enter();
    __shared__ double sh[32];
    const int n4 = (int)(d / 4);
    const int64_t r = blockIdx.x;
    float4 v[NORM_VEC], hv[NORM_VEC], a[NORM_VEC];
    norm_load(v, (const float4 *)(x + r * d), n4);
    if (ADD) norm_load(hv, (const float4 *)(h + r * d), n4);
    norm_load(a, (const float4 *)alpha, n4);
    if (ADD) norm_add(v, hv, (float4 *)(x + r * d), n4);
    double s = 0.0;
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) {
        s += (double)v[k].x * v[k].x;
        s += (double)v[k].y * v[k].y;
        s += (double)v[k].z * v[k].z;
        s += (double)v[k].w * v[k].w;
    }
    const double inv = 1.0 / sqrt((double)eps + block_sum(s, sh) / (double)d);
    float4 *yr = (float4 *)(y + r * d);
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) {
        const int j = k * NORM_THREADS + threadIdx.x;
        if (j >= n4) break;
        float4 o;
        o.x = (float)__dmul_rn(__dmul_rn((double)v[k].x, (double)a[k].x), inv);
        o.y = (float)__dmul_rn(__dmul_rn((double)v[k].y, (double)a[k].y), inv);
        o.z = (float)__dmul_rn(__dmul_rn((double)v[k].z, (double)a[k].z), inv);
        o.w = (float)__dmul_rn(__dmul_rn((double)v[k].w, (double)a[k].w), inv);
        yr[j] = o;
    }
}

__device__ static inline double ln_out(float x, double mean, double inv, float w, bool has_b,
                                       float b) {
    double o = __dmul_rn(__dmul_rn((double)x - mean, inv), (double)w);
    if (has_b) o += b;
    return o;
}

/* The layer norm of a row held in registers (v: the block's float4s of x,
 * a / bb: of the weight and bias) into yr: the fast kernels' shared tail,
 * double sums over the block in a fixed order. */
__device__ __forceinline__ void ln_fast_tail(float *yr_f, const float4 (&v)[NORM_VEC],
                                             const float4 (&a)[NORM_VEC],
                                             const float4 (&bb)[NORM_VEC], bool hb, int n4,
                                             int64_t d, float eps, double *sh) {
    double s = 0.0;
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) s += (double)v[k].x + v[k].y + v[k].z + v[k].w;
    const double mean = block_sum(s, sh) / (double)d;
    double q = 0.0;
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) {
        if (k * NORM_THREADS + (int)threadIdx.x >= n4) break; /* padding is not x - mean */
        const double ex = v[k].x - mean, ey = v[k].y - mean, ez = v[k].z - mean,
                     ew = v[k].w - mean;
        q += ex * ex;
        q += ey * ey;
        q += ez * ez;
        q += ew * ew;
    }
    const double var = block_sum(q, sh) / (double)d; /* biased, like torch */
    const double inv = 1.0 / sqrt(var + (double)eps);
    float4 *yr = (float4 *)yr_f;
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) {
        const int j = k * NORM_THREADS + threadIdx.x;
        if (j >= n4) break;
        float4 o;
        o.x = (float)ln_out(v[k].x, mean, inv, a[k].x, hb, hb ? bb[k].x : 0.f);
        o.y = (float)ln_out(v[k].y, mean, inv, a[k].y, hb, hb ? bb[k].y : 0.f);
        o.z = (float)ln_out(v[k].z, mean, inv, a[k].z, hb, hb ? bb[k].z : 0.f);
        o.w = (float)ln_out(v[k].w, mean, inv, a[k].w, hb, hb ? bb[k].w : 0.f);
        yr[j] = o;
    }
}

template <bool ADD>
__global__ void __launch_bounds__(NORM_THREADS)
    k_layer_norm_fast(float *y, float *x, const float *h, const float *w, const float *b,
                      int64_t d, float eps) {
    cu_pdl_enter();
    __shared__ double sh[32];
    const int n4 = (int)(d / 4);
    const int64_t r = blockIdx.x;
    float4 v[NORM_VEC], hv[NORM_VEC], a[NORM_VEC], bb[NORM_VEC];
    norm_load(v, (const float4 *)(x + r * d), n4);
    if (ADD) norm_load(hv, (const float4 *)(h + r * d), n4);
    norm_load(a, (const float4 *)w, n4);
    if (b) norm_load(bb, (const float4 *)b, n4);
    if (ADD) norm_add(v, hv, (float4 *)(x + r * d), n4);
    ln_fast_tail(y + r * d, v, a, bb, b != NULL, n4, d, eps, sh);
}

template <typename RV>
__global__ void k_layer_norm(float *y, const float *x, RV xv, const float *w, const float *b,
                             int64_t d, float eps) {
    cu_pdl_enter();
    __shared__ double sh[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + cu_row_at(xv, r);
    const int64_t xs = cu_inner_at(xv);
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
    if (norm_fast_ok(y, x, w, b, d)) {
        k_layer_norm_fast<false><<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (float *)x->data, NULL, (const float *)w->data,
            b ? (const float *)b->data : NULL, d, eps);
        return cu_check_launch("layer_norm");
    }
    cu_rowg g;
    if (cu_rowg_of(x, &g))
        k_layer_norm<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)x->data, g, (const float *)w->data,
            b ? (const float *)b->data : NULL, d, eps);
    else
        k_layer_norm<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)x->data, cu_view_of(x), (const float *)w->data,
            b ? (const float *)b->data : NULL, d, eps);
    return cu_check_launch("layer_norm");
}

template <typename RV>
__global__ void k_rms_norm(float *y, const float *x, RV xv, const float *alpha, int64_t d,
                           float eps) {
    cu_pdl_enter();
    __shared__ double sh[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + cu_row_at(xv, r);
    const int64_t xs = cu_inner_at(xv);
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
    if (norm_fast_ok(y, x, alpha, NULL, d)) {
        k_rms_norm_fast<false><<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (float *)x->data, NULL, (const float *)alpha->data, d, eps);
        return cu_check_launch("rms_norm");
    }
    cu_rowg g;
    if (cu_rowg_of(x, &g))
        k_rms_norm<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)x->data, g, (const float *)alpha->data, d, eps);
    else
        k_rms_norm<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)x->data, cu_view_of(x), (const float *)alpha->data,
            d, eps);
    return cu_check_launch("rms_norm");
}

xs_status cu_add_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, const xs_tensor *h,
                      const xs_tensor *w, const xs_tensor *b, float eps, bool layer) {
    const int64_t m = cu_rows(x), d = cu_inner(x);
    if (!m || !d) return XS_OK;
    if (!norm_fast_ok(y, x, w, b, d) || !xs_tensor_is_contiguous(h) ||
        ((uintptr_t)h->data & 15u)) {
        XS_TRY(cu_add(be, x, x, h));
        return layer ? cu_layer_norm(be, y, x, w, b, eps) : cu_rms_norm(be, y, x, w, eps);
    }
    cudaStream_t st = cu_ctx_of(be)->stream;
    if (layer)
        k_layer_norm_fast<true><<<(unsigned)m, NORM_THREADS, 0, st>>>(
            (float *)y->data, (float *)x->data, (const float *)h->data, (const float *)w->data,
            b ? (const float *)b->data : NULL, d, eps);
    else
        k_rms_norm_fast<true><<<(unsigned)m, NORM_THREADS, 0, st>>>(
            (float *)y->data, (float *)x->data, (const float *)h->data, (const float *)w->data, d,
            eps);
    return cu_check_launch("add_norm");
}

/* add_scaled_norm (backend.h, Mimi's layer scale + residual + next norm):
 * h *= s as the mul op rounds ((float)((double)h * s)), stored back to h;
 * x += h as the add op rounds (norm_add), stored to x; then, when NORM,
 * layer_norm of those registers exactly as k_layer_norm_fast computes it
 * (same sums in the same order): mul, add and layer_norm in one launch. */
template <bool NORM>
__global__ void __launch_bounds__(NORM_THREADS)
    k_add_scaled_norm_fast(float *y, float *x, float *h, const float *sc, const float *w,
                           const float *b, int64_t d, float eps) {
    cu_pdl_enter();
    __shared__ double sh[32];
    const int n4 = (int)(d / 4);
    const int64_t r = blockIdx.x;
    float4 v[NORM_VEC], hv[NORM_VEC], sv[NORM_VEC], a[NORM_VEC], bb[NORM_VEC];
    norm_load(v, (const float4 *)(x + r * d), n4);
    norm_load(hv, (const float4 *)(h + r * d), n4);
    norm_load(sv, (const float4 *)sc, n4);
    if (NORM) norm_load(a, (const float4 *)w, n4);
    if (NORM && b) norm_load(bb, (const float4 *)b, n4);
    float4 *hr = (float4 *)(h + r * d);
#pragma unroll
    for (int k = 0; k < NORM_VEC; k++) {
        const int j = k * NORM_THREADS + threadIdx.x;
        if (j >= n4) break;
        hv[k].x = (float)((double)hv[k].x * (double)sv[k].x);
        hv[k].y = (float)((double)hv[k].y * (double)sv[k].y);
        hv[k].z = (float)((double)hv[k].z * (double)sv[k].z);
        hv[k].w = (float)((double)hv[k].w * (double)sv[k].w);
        hr[j] = hv[k];
    }
    norm_add(v, hv, (float4 *)(x + r * d), n4);
    if (!NORM) return;
    ln_fast_tail(y + r * d, v, a, bb, b != NULL, n4, d, eps, sh);
}

xs_status cu_add_scaled_norm(xs_backend *be, xs_tensor *y, xs_tensor *x, xs_tensor *h,
                             const xs_tensor *s, const xs_tensor *w, const xs_tensor *b,
                             float eps) {
    const int64_t m = cu_rows(x), d = cu_inner(x);
    if (!m || !d) return XS_OK;
    /* norm_fast_ok's test with the tensors at hand (y and w only with NORM) */
    const bool fast = norm_fast_ok(w ? y : x, x, w ? w : s, b, d) &&
                      xs_tensor_is_contiguous(h) && !((uintptr_t)h->data & 15u) &&
                      !((uintptr_t)s->data & 15u);
    if (!fast) {
        XS_TRY(cu_mul(be, h, h, s));
        XS_TRY(cu_add(be, x, x, h));
        return w ? cu_layer_norm(be, y, x, w, b, eps) : XS_OK;
    }
    cudaStream_t st = cu_ctx_of(be)->stream;
    float *yp = w ? (float *)y->data : NULL;
    const float *wp = w ? (const float *)w->data : NULL, *bp = b ? (const float *)b->data : NULL;
    if (w)
        k_add_scaled_norm_fast<true><<<(unsigned)m, NORM_THREADS, 0, st>>>(
            yp, (float *)x->data, (float *)h->data, (const float *)s->data, wp, bp, d, eps);
    else
        k_add_scaled_norm_fast<false><<<(unsigned)m, NORM_THREADS, 0, st>>>(
            yp, (float *)x->data, (float *)h->data, (const float *)s->data, wp, bp, d, eps);
    return cu_check_launch("add_scaled_norm");
}

template <typename RV>
__global__ void k_softmax(float *y, const float *x, RV xv, int64_t d) {
    cu_pdl_enter();
    __shared__ double sh[32];
    __shared__ float shm[32];
    const int64_t r = blockIdx.x;
    const float *xr = x + cu_row_at(xv, r);
    const int64_t xs = cu_inner_at(xv);
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
    cu_rowg g;
    if (cu_rowg_of(x, &g))
        k_softmax<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)x->data, g, d);
    else
        k_softmax<<<(unsigned)m, NORM_THREADS, 0, cu_ctx_of(be)->stream>>>(
            (float *)y->data, (const float *)x->data, cu_view_of(x), d);
    return cu_check_launch("softmax");
}
