/*
 * cpu_conv.c — conv1d and conv_transpose1d (Mimi's SEANet) as
 * im2col / col2im around single-threaded OpenBLAS sgemm.
 *
 *  conv1d, groups = 1: col[Cin*K, Tout] gathers the shifted input rows once,
 *    then y[Cout, Tout] = w[Cout, Cin*K] . col, threaded over fixed blocks
 *    of CONV_CO_BLOCK output channels.
 *  conv_transpose1d, groups = 1: for a block of output channels,
 *    col[cb*K, Tin] = w[:, block]^T . x (one sgemm), then col2im adds
 *    col[co*K + k, t] into y[co, t*stride + k] in (t, k) order.
 *  few frames (<= CONV_FEW_FRAMES, the wide layers of a streaming frame):
 *    conv1d runs as a GEMV over the weights, conv_transpose1d as axpy over
 *    weight rows; both stream the weights once instead of packing them.
 *  stride 1 with few channels (Cout < 8 or Cin*K < 16): direct axpy rows.
 *  groups > 1: one task per group doing the same on the group's slices;
 *    one input and one output channel per group (Mimi's depthwise upsample)
 *    is a direct loop.
 * Blocks are fixed, so results do not depend on the thread count.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/ref/ref.h"

#define CONV_CO_BLOCK 32
/* At most this many frames, convs use the GEMV / axpy paths instead of
 * sgemm, whose packing does not pay for so few columns. */
#define CONV_FEW_FRAMES 16
/* Output channels per task on the few-frames transposed path: long
 * contiguous weight row segments (128 * K floats) stream better than many
 * short ones. */
#define CONVTR_FEW_BLOCK 128

typedef struct conv_job {
    cpu_ctx *c;
    float *y;
    const float *x;
    const float *w;
    const float *bias;
    float *col; /* shared im2col buffer (groups = 1 conv1d) */
    int64_t cin, tin, cout, kk, tout;
    int stride, dilation, groups;
} conv_job;

/* Row r = ci*K + k of col: x[ci, t*stride + k*dilation] for t < Tout. */
static void im2col_rows(void *arg, int64_t r0, int64_t r1, int tid) {
    (void)tid;
    const conv_job *j = arg;
    for (int64_t r = r0; r < r1; r++) {
        int64_t ci = r / j->kk, k = r % j->kk;
        const float *src = j->x + ci * j->tin + k * j->dilation;
        float *dst = j->col + r * j->tout;
        if (j->stride == 1) memcpy(dst, src, (size_t)j->tout * sizeof *dst);
        else
            for (int64_t t = 0; t < j->tout; t++) dst[t] = src[t * j->stride];
    }
}

static void add_bias_rows(float *y, const float *bias, int64_t c0, int64_t c1, int64_t t) {
    if (!bias) return;
    for (int64_t c = c0; c < c1; c++)
        for (int64_t i = 0; i < t; i++) y[c * t + i] += bias[c];
}

static void conv1d_co_blocks(void *arg, int64_t b0, int64_t b1, int tid) {
    (void)tid;
    const conv_job *j = arg;
    int64_t ck = j->cin * j->kk;
    for (int64_t b = b0; b < b1; b++) {
        int64_t c0 = b * CONV_CO_BLOCK;
        int64_t nc = j->cout - c0 < CONV_CO_BLOCK ? j->cout - c0 : CONV_CO_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nc, (int)j->tout, (int)ck,
                    1.0f, j->w + c0 * ck, (int)ck, j->col, (int)j->tout, 0.0f,
                    j->y + c0 * j->tout, (int)j->tout);
        add_bias_rows(j->y, j->bias, c0, c0 + nc, j->tout);
    }
}

/* Direct conv1d for stride 1 and few channels (Mimi's first and last
 * convs: 1 -> 64 and 64 -> 1, kernel 7): y[co, :] += w[co, ci, k] *
 * x[ci, k*dil : k*dil + Tout], one contiguous axpy per weight, where
 * im2col + sgemm would pack a tall, thin matrix for little work. */
static void conv1d_direct_rows(void *arg, int64_t c0, int64_t c1, int tid) {
    (void)tid;
    const conv_job *j = arg;
    for (int64_t co = c0; co < c1; co++) {
        float *yc = j->y + co * j->tout;
        const float b = j->bias ? j->bias[co] : 0.0f;
        for (int64_t t = 0; t < j->tout; t++) yc[t] = b;
        for (int64_t ci = 0; ci < j->cin; ci++)
            for (int64_t k = 0; k < j->kk; k++)
                j->c->k.axpy(yc, j->x + ci * j->tin + k * j->dilation,
                             j->w[(co * j->cin + ci) * j->kk + k], j->tout);
    }
}

/* groups > 1: one group per index; im2col of the group into thread scratch. */
static void conv1d_groups(void *arg, int64_t g0, int64_t g1, int tid) {
    const conv_job *j = arg;
    int64_t cig = j->cin / j->groups, cog = j->cout / j->groups, ck = cig * j->kk;
    float *col = cpu_scratch(j->c, tid);
    for (int64_t g = g0; g < g1; g++) {
        const float *xg = j->x + g * cig * j->tin;
        const float *wg = j->w + g * cog * ck;
        float *yg = j->y + g * cog * j->tout;
        if (cig == 1 && cog == 1) { /* depthwise: direct */
            for (int64_t t = 0; t < j->tout; t++) {
                const float *xs = xg + t * j->stride;
                float s = 0;
                for (int64_t k = 0; k < j->kk; k++) s += wg[k] * xs[k * j->dilation];
                yg[t] = s;
            }
        } else {
            for (int64_t r = 0; r < ck; r++) {
                const float *src = xg + (r / j->kk) * j->tin + (r % j->kk) * j->dilation;
                for (int64_t t = 0; t < j->tout; t++) col[r * j->tout + t] = src[t * j->stride];
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cog, (int)j->tout,
                        (int)ck, 1.0f, wg, (int)ck, col, (int)j->tout, 0.0f, yg, (int)j->tout);
        }
        add_bias_rows(j->y, j->bias, g * cog, (g + 1) * cog, j->tout);
    }
}

/* Gather x and w into contiguous memory when they are views. */
typedef struct conv_inputs {
    const float *x, *w;
    float *x_owned, *w_owned;
} conv_inputs;

static xs_status conv_inputs_get(conv_inputs *in, const xs_tensor *x, const xs_tensor *w) {
    in->x = cpu_contig_f32(x, &in->x_owned);
    in->w = cpu_contig_f32(w, &in->w_owned);
    if (!in->x || !in->w) {
        free(in->x_owned);
        free(in->w_owned);
        return xs_error(XS_ERR_NOMEM, "cpu conv: out of memory copying inputs");
    }
    return XS_OK;
}

xs_status cpu_conv1d(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w,
                     const xs_tensor *bias, int stride, int dilation, int groups) {
    cpu_ctx *c = cpu_ctx_of(be);
    if (!xs_tensor_is_contiguous(y) || (bias && !xs_tensor_is_contiguous(bias)))
        return ref_conv1d(be, y, x, w, bias, stride, dilation, groups);
    conv_inputs in;
    XS_TRY(conv_inputs_get(&in, x, w));
    conv_job j = {.c = c, .y = y->data, .x = in.x, .w = in.w,
                  .bias = bias ? bias->data : NULL,
                  .cin = x->shape[0], .tin = x->shape[1], .cout = w->shape[0],
                  .kk = w->shape[2], .tout = y->shape[1],
                  .stride = stride, .dilation = dilation, .groups = groups};
    xs_status rc = XS_OK;
    if (groups == 1 && j.tout <= CONV_FEW_FRAMES) {
        /* Few output frames (the deep, wide layers of a streaming frame):
         * y^T[Tout, Cout] = col^T[Tout, Cin*K] . w^T, the matmul GEMV path,
         * which streams the (large) weights once at memory speed. */
        int64_t ck = j.cin * j.kk;
        float *colt = malloc((size_t)(j.tout * ck) * sizeof(float));
        if (!colt) {
            rc = xs_error(XS_ERR_NOMEM, "cpu conv1d: out of memory (im2col)");
        } else {
            for (int64_t t = 0; t < j.tout; t++)
                for (int64_t ci = 0; ci < j.cin; ci++)
                    for (int64_t k = 0; k < j.kk; k++)
                        colt[t * ck + ci * j.kk + k] = j.x[ci * j.tin + t * stride + k * dilation];
            cpu_gemv(c, j.y, 1, j.tout, colt, ck, j.w, XS_F32, j.bias, j.tout, j.cout, ck);
            free(colt);
        }
    } else if (groups == 1 && stride == 1 && (j.cout < 8 || j.cin * j.kk < 16)) {
        xs_threadpool_for(c->pool, j.cout, cpu_grain((double)(j.cin * j.kk * j.tout)),
                          conv1d_direct_rows, &j);
    } else if (groups == 1) {
        int64_t rows = j.cin * j.kk;
        /* 1x1 conv with stride 1: x itself is the im2col matrix. */
        if (j.kk == 1 && stride == 1 && j.tout == j.tin) {
            j.col = (float *)in.x;
        } else {
            j.col = malloc((size_t)rows * (size_t)j.tout * sizeof(float));
            if (!j.col) rc = xs_error(XS_ERR_NOMEM, "cpu conv1d: out of memory (im2col)");
            else xs_threadpool_for(c->pool, rows, cpu_grain((double)j.tout), im2col_rows, &j);
        }
        if (rc == XS_OK)
            xs_threadpool_for(c->pool, (j.cout + CONV_CO_BLOCK - 1) / CONV_CO_BLOCK,
                              cpu_grain((double)CONV_CO_BLOCK * (double)(rows * j.tout)),
                              conv1d_co_blocks, &j);
        if (j.col != in.x) free(j.col);
    } else {
        int64_t cig = j.cin / groups;
        rc = cpu_scratch_reserve(c, (size_t)(cig * j.kk * j.tout));
        if (rc == XS_OK)
            xs_threadpool_for(c->pool, groups,
                              cpu_grain((double)(j.cout / groups) * (double)(cig * j.kk * j.tout)),
                              conv1d_groups, &j);
    }
    free(in.x_owned);
    free(in.w_owned);
    return rc;
}

/* ---- transposed ------------------------------------------------------------ */

/* Output channels [c0, c0+nc) of group g (channel indices within y). */
static void convtr_channels(const conv_job *j, float *col, int64_t g, int64_t c0, int64_t nc) {
    int64_t cig = j->cin / j->groups, cog = j->cout / j->groups, ldw = cog * j->kk;
    int64_t tin = j->tin, kk = j->kk, s = j->stride, tout = j->tout;
    const float *xg = j->x + g * cig * tin;
    int64_t cl = c0 - g * cog; /* channel within the group */
    /* col[nc*K, Tin] = w[g's Cin rows, cl*K .. (cl+nc)*K]^T . x_g */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(nc * kk), (int)tin, (int)cig,
                1.0f, j->w + g * cig * ldw + cl * kk, (int)ldw, xg, (int)tin, 0.0f, col,
                (int)tin);
    for (int64_t c = 0; c < nc; c++) {
        float *yc = j->y + (c0 + c) * tout;
        float b = j->bias ? j->bias[c0 + c] : 0.0f;
        for (int64_t t = 0; t < tout; t++) yc[t] = b;
        for (int64_t t = 0; t < tin; t++)
            for (int64_t k = 0; k < kk; k++) yc[t * s + k] += col[(c * kk + k) * tin + t];
    }
}

/* Few input frames: col^T[Tin, nc*K] = x^T . w[:, block], accumulated one
 * input channel at a time (axpy over a contiguous weight row segment), so
 * the weights stream once; then col2im as above. */
static void convtr_few_blocks(void *arg, int64_t b0, int64_t b1, int tid) {
    const conv_job *j = arg;
    float *acc = cpu_scratch(j->c, tid);
    const int64_t kk = j->kk, tin = j->tin, ldw = j->cout * kk;
    for (int64_t b = b0; b < b1; b++) {
        int64_t c0 = b * CONVTR_FEW_BLOCK;
        int64_t nc = j->cout - c0 < CONVTR_FEW_BLOCK ? j->cout - c0 : CONVTR_FEW_BLOCK;
        int64_t w = nc * kk;
        memset(acc, 0, (size_t)(tin * w) * sizeof *acc);
        for (int64_t ci = 0; ci < j->cin; ci++) {
            const float *wr = j->w + ci * ldw + c0 * kk;
            for (int64_t t = 0; t < tin; t++) j->c->k.axpy(acc + t * w, wr, j->x[ci * tin + t], w);
        }
        for (int64_t c = 0; c < nc; c++) {
            float *yc = j->y + (c0 + c) * j->tout;
            float bias = j->bias ? j->bias[c0 + c] : 0.0f;
            for (int64_t t = 0; t < j->tout; t++) yc[t] = bias;
            for (int64_t t = 0; t < tin; t++)
                for (int64_t k = 0; k < kk; k++) yc[t * j->stride + k] += acc[t * w + c * kk + k];
        }
    }
}

static void convtr_co_blocks(void *arg, int64_t b0, int64_t b1, int tid) {
    const conv_job *j = arg;
    float *col = cpu_scratch(j->c, tid);
    for (int64_t b = b0; b < b1; b++) {
        int64_t c0 = b * CONV_CO_BLOCK;
        int64_t nc = j->cout - c0 < CONV_CO_BLOCK ? j->cout - c0 : CONV_CO_BLOCK;
        convtr_channels(j, col, 0, c0, nc);
    }
}

static void convtr_groups(void *arg, int64_t g0, int64_t g1, int tid) {
    const conv_job *j = arg;
    int64_t cig = j->cin / j->groups, cog = j->cout / j->groups;
    float *col = cpu_scratch(j->c, tid);
    for (int64_t g = g0; g < g1; g++) {
        if (cig == 1 && cog == 1) { /* depthwise upsample: direct */
            const float *xg = j->x + g * j->tin, *wg = j->w + g * j->kk;
            float *yg = j->y + g * j->tout;
            float b = j->bias ? j->bias[g] : 0.0f;
            for (int64_t t = 0; t < j->tout; t++) yg[t] = b;
            for (int64_t t = 0; t < j->tin; t++)
                for (int64_t k = 0; k < j->kk; k++) yg[t * j->stride + k] += xg[t] * wg[k];
        } else {
            convtr_channels(j, col, g, g * cog, cog);
        }
    }
}

xs_status cpu_conv_transpose1d(xs_backend *be, xs_tensor *y, const xs_tensor *x,
                               const xs_tensor *w, const xs_tensor *bias, int stride,
                               int groups) {
    cpu_ctx *c = cpu_ctx_of(be);
    if (!xs_tensor_is_contiguous(y) || (bias && !xs_tensor_is_contiguous(bias)))
        return ref_conv_transpose1d(be, y, x, w, bias, stride, groups);
    conv_inputs in;
    XS_TRY(conv_inputs_get(&in, x, w));
    conv_job j = {.c = c, .y = y->data, .x = in.x, .w = in.w,
                  .bias = bias ? bias->data : NULL,
                  .cin = x->shape[0], .tin = x->shape[1], .cout = y->shape[0],
                  .kk = w->shape[2], .tout = y->shape[1],
                  .stride = stride, .dilation = 1, .groups = groups};
    xs_status rc;
    if (groups == 1 && j.tin <= CONV_FEW_FRAMES) {
        rc = cpu_scratch_reserve(c, (size_t)(CONVTR_FEW_BLOCK * j.kk * j.tin));
        if (rc == XS_OK)
            xs_threadpool_for(c->pool, (j.cout + CONVTR_FEW_BLOCK - 1) / CONVTR_FEW_BLOCK,
                              cpu_grain((double)CONVTR_FEW_BLOCK * (double)(j.kk * j.tin * j.cin)),
                              convtr_few_blocks, &j);
    } else if (groups == 1) {
        rc = cpu_scratch_reserve(c, (size_t)(CONV_CO_BLOCK * j.kk * j.tin));
        if (rc == XS_OK)
            xs_threadpool_for(c->pool, (j.cout + CONV_CO_BLOCK - 1) / CONV_CO_BLOCK,
                              cpu_grain((double)CONV_CO_BLOCK * (double)(j.kk * j.tin * j.cin)),
                              convtr_co_blocks, &j);
    } else {
        rc = cpu_scratch_reserve(c, (size_t)((j.cout / groups) * j.kk * j.tin));
        if (rc == XS_OK)
            xs_threadpool_for(c->pool, groups,
                              cpu_grain((double)(j.cin / groups) * (double)(j.cout / groups) *
                                        (double)(j.kk * j.tin)),
                              convtr_groups, &j);
    }
    free(in.x_owned);
    free(in.w_owned);
    return rc;
}
