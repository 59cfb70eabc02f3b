/*
 * test_cuda_conv.c — the CUDA conv1d kernels (src/backend/cuda/cuda_conv.cu):
 * the tiled kernel (k_conv1d_tile, taken for wide calls such as 40 sessions'
 * batched SEANet layers) must give the split kernel's bits, since the
 * batch-1 path keeps the split one and batched Mimi must equal solo Mimi
 * bit for bit. For each shape:
 *  (a) tiled (xs_cuda_conv_select 3), split (2) and by-shape (0) outputs
 *      are equal bit for bit;
 *  (b) the first columns of a wide call equal a narrow call on the same
 *      first input columns (a column does not depend on how many there are);
 *  (c) vs the ref backend: nmse <= 1e-10 (on calls of at most a few
 *      thousand columns: the ref conv is slow);
 *  (d) the element-wise ops on strided views (copy, add, mul, elu, fill:
 *      cuda_elementwise.cu's collapsed-index kernels) vs ref;
 * at Mimi's conv1d layers (the 24 kHz / 480 / 96 column SEANet convs at one
 * and 40 sessions' widths), odd shapes (stride with dilation, channels not
 * multiples of the tiles, cin < the warp slices, 16 taps, one output
 * channel) and strided x views. Skips (77) without a GPU.
 *
 * `test_cuda_conv bench`: us per call of the split and the tiled kernel at
 * Mimi's layers for 1 and 40 sessions (CUDA events, 20 calls after 3).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cuda_probe.h"
#include "backend/ops.h"
#include "testutil.h"

typedef struct conv_shape {
    const char *name;
    int cin, cout, k, stride, dil;
    int64_t cols; /* input columns of one session (L: context + frame + pad) */
} conv_shape;

/* Mimi's conv1d calls (mimi_bconv: [cin, n*L]); decoder res blocks have
 * the encoder's shapes, its final conv is 64 -> 1 k7 */
static const conv_shape mimi[] = {
    {"conv0 1->64 k7", 1, 64, 7, 1, 1, 1926},
    {"res64 k3 64->32", 64, 32, 3, 1, 1, 1922},
    {"res64 k1 32->64", 32, 64, 1, 1, 1, 1920},
    {"down 64->128 k8 s4", 64, 128, 8, 4, 1, 1924},
    {"res128 k3 128->64", 128, 64, 3, 1, 1, 482},
    {"res128 k1 64->128", 64, 128, 1, 1, 1, 480},
    {"down 128->256 k10 s5", 128, 256, 10, 5, 1, 485},
    {"res256 k3 256->128", 256, 128, 3, 1, 1, 98},
    {"res256 k1 128->256", 128, 256, 1, 1, 1, 96},
    {"dec final 64->1 k7", 64, 1, 7, 1, 1, 1926},
};

static bool upload(xs_backend *be, int nd, const int64_t *shape, const float *h, xs_tensor *t) {
    return xs_tensor_alloc(be, XS_F32, nd, shape, t) == XS_OK && xs_tensor_upload(be, t, h) == XS_OK;
}

/* y = conv1d(x[:, :tin]) where x is [cin, ld] on be (ld >= tin: a strided view) */
static bool run(xs_backend *be, const xs_tensor *x, int64_t tin, const xs_tensor *w,
                const xs_tensor *b, const conv_shape *s, float *yh, int64_t *tout) {
    xs_tensor xv = xs_tensor_slice(x, 1, 0, tin), y = {0};
    const int64_t span = (int64_t)s->dil * (s->k - 1) + 1;
    *tout = (tin - span) / s->stride + 1;
    int64_t ys[2] = {s->cout, *tout};
    bool ok = xs_tensor_alloc(be, XS_F32, 2, ys, &y) == XS_OK &&
              xs_op_conv1d(be, &y, &xv, w, b, s->stride, s->dil, 1) == XS_OK &&
              xs_tensor_download(be, yh, &y) == XS_OK;
    xs_tensor_free(be, &y);
    return ok;
}

static void check_shape(xs_backend *ref, xs_backend *cu, const conv_shape *s, int64_t tin, int pad,
                        bool with_bias, uint64_t seed) {
    const int64_t ld = tin + pad, wn = (int64_t)s->cout * s->cin * s->k;
    float *xh = malloc((size_t)(s->cin * ld) * sizeof *xh), *wh = malloc((size_t)wn * sizeof *wh);
    float *bh = malloc((size_t)s->cout * sizeof *bh);
    float *y3 = malloc((size_t)(s->cout * tin) * sizeof *y3), *y2 = malloc((size_t)(s->cout * tin) * sizeof *y2);
    float *y0 = malloc((size_t)(s->cout * tin) * sizeof *y0), *yn = malloc((size_t)(s->cout * tin) * sizeof *yn);
    xs_tensor xc = {0}, wc = {0}, bc = {0}, xr = {0}, wr = {0}, br = {0};
    char what[160];
    snprintf(what, sizeof what, "%s (%d->%d k%d s%d d%d) tin %lld%s%s", s->name, s->cin, s->cout,
             s->k, s->stride, s->dil, (long long)tin, pad ? " strided x" : "", with_bias ? " +bias" : "");
    bool ok = xh && wh && bh && y3 && y2 && y0 && yn;
    CHECK(ok, "%s: host memory", what);
    if (!ok) goto out;
    test_fill_uniform(xh, s->cin * ld, seed, -2.0f, 2.0f);
    for (int64_t i = 0; i < s->cin * ld; i += 5) xh[i] *= 1e-3f; /* mixed magnitudes */
    for (int64_t c = 0; pad && c < s->cin; c++)
        for (int i = 0; i < pad; i++) xh[c * ld + tin + i] = 1e30f; /* must not be read */
    test_fill_uniform(wh, wn, seed + 1, -0.5f, 0.5f);
    test_fill_uniform(bh, s->cout, seed + 2, -0.5f, 0.5f);
    int64_t xs[2] = {s->cin, ld}, ws[3] = {s->cout, s->cin, s->k}, bs[1] = {s->cout};
    ok = upload(cu, 2, xs, xh, &xc) && upload(cu, 3, ws, wh, &wc) && upload(cu, 1, bs, bh, &bc);
    CHECK(ok, "%s: upload: %s", what, xs_error_msg());
    if (!ok) goto out;
    const xs_tensor *bcu = with_bias ? &bc : NULL;
    int64_t tout = 0, t2 = 0, t0 = 0;
    xs_cuda_conv_select(3);
    ok = run(cu, &xc, tin, &wc, bcu, s, y3, &tout);
    CHECK(ok, "%s: tiled: %s", what, xs_error_msg());
    xs_cuda_conv_select(2);
    ok = ok && run(cu, &xc, tin, &wc, bcu, s, y2, &t2);
    CHECK(ok, "%s: split: %s", what, xs_error_msg());
    xs_cuda_conv_select(0);
    ok = ok && run(cu, &xc, tin, &wc, bcu, s, y0, &t0);
    CHECK(ok, "%s: by shape: %s", what, xs_error_msg());
    if (!ok) goto out;
    /* (a) one set of bits */
    {
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < s->cout * tout; i++)
            if (memcmp(&y3[i], &y2[i], 4)) {
                if (first < 0) first = i;
                bad++;
            }
        if (bad)
            fprintf(stderr, "  %s: first difference at co %lld t %lld: tiled %.9g split %.9g\n", what,
                    (long long)(first / tout), (long long)(first % tout), y3[first], y2[first]);
        CHECK(bad == 0, "%s: %lld of %lld outputs of the tiled kernel differ from the split kernel",
              what, (long long)bad, (long long)(s->cout * tout));
        CHECK(memcmp(y0, y2, (size_t)(s->cout * tout) * 4) == 0,
              "%s: the kernel picked by shape differs from the split kernel", what);
        double sq = 0;
        for (int64_t i = 0; i < s->cout * tout; i++) sq += (double)y2[i] * y2[i];
        CHECK(sq > 0 && isfinite(sq), "%s: output all zero or not finite (%g)", what, sq);
    }
    /* (b) a narrower call (a third of the columns) on the same first columns */
    {
        const int64_t tn = tin / 3 > s->dil * (s->k - 1) + 1 ? tin / 3 : tin;
        int64_t tno = 0;
        xs_cuda_conv_select(3);
        ok = run(cu, &xc, tn, &wc, bcu, s, yn, &tno);
        xs_cuda_conv_select(0);
        CHECK(ok, "%s: narrow call: %s", what, xs_error_msg());
        int64_t bad = 0;
        for (int64_t c = 0; ok && c < s->cout; c++)
            bad += memcmp(yn + c * tno, y2 + c * tout, (size_t)tno * 4) != 0;
        CHECK(ok && bad == 0, "%s: %lld channels of a %lld-column call differ from the wide call",
              what, (long long)bad, (long long)tn);
    }
    /* (c) vs ref */
    if (tin <= 4096) {
        ok = upload(ref, 2, xs, xh, &xr) && upload(ref, 3, ws, wh, &wr) && upload(ref, 1, bs, bh, &br);
        int64_t tr = 0;
        ok = ok && run(ref, &xr, tin, &wr, with_bias ? &br : NULL, s, yn, &tr);
        CHECK(ok, "%s: ref: %s", what, xs_error_msg());
        if (ok) {
            const double e = test_nmse(yn, y3, s->cout * tout);
            CHECK(e <= 1e-10, "%s: nmse %.3g vs ref", what, e);
        }
    }
out:
    xs_tensor_free(cu, &xc);
    xs_tensor_free(cu, &wc);
    xs_tensor_free(cu, &bc);
    xs_tensor_free(ref, &xr);
    xs_tensor_free(ref, &wr);
    xs_tensor_free(ref, &br);
    free(xh);
    free(wh);
    free(bh);
    free(y3);
    free(y2);
    free(y0);
    free(yn);
}

/* (d) the element-wise ops on strided views (cuda_elementwise.cu's
 * collapsed-index kernels), as batched Mimi uses them: [C, n, T] views of
 * [C, n, L] blocks, 4-d views with a short inner dim, a broadcast-free add
 * of two views, fill of a view: copy / add / mul / fill bit for bit vs ref
 * (one rounding of an exact double result), elu within 1e-12 nmse. */
static xs_tensor view_of(const xs_tensor *t, int nd, const int64_t *shape, const int64_t *stride,
                         int64_t off) {
    xs_tensor v = xs_tensor_make(XS_F32, nd, shape, (float *)t->data + off);
    for (int d = 0; d < nd; d++) v.stride[d] = stride[d];
    return v;
}

static void check_elementwise(xs_backend *ref, xs_backend *cu, int nd, const int64_t *shape,
                              const int64_t *stride, int64_t span, uint64_t seed) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) n *= shape[d];
    float *h = malloc((size_t)span * sizeof *h), *h2 = malloc((size_t)span * sizeof *h2);
    float *out[2], *dsts[2], *fills[2];
    for (int b = 0; b < 2; b++) {
        out[b] = malloc((size_t)n * 4 * sizeof(float));
        dsts[b] = malloc((size_t)span * sizeof(float));
        fills[b] = malloc((size_t)span * sizeof(float));
    }
    char what[96];
    snprintf(what, sizeof what, "elementwise %dd view of %lld (first dim %lld)", nd, (long long)n,
             (long long)shape[0]);
    bool ok = h && h2 && out[0] && out[1] && dsts[0] && dsts[1] && fills[0] && fills[1];
    CHECK(ok, "%s: host memory", what);
    if (ok) {
        test_fill_uniform(h, span, seed, -3.0f, 3.0f);
        test_fill_uniform(h2, span, seed + 1, -3.0f, 3.0f);
    }
    int64_t cs[XS_MAX_DIMS], acc = 1; /* the contiguous strides of shape */
    for (int d = nd - 1; d >= 0; d--) {
        cs[d] = acc;
        acc *= shape[d];
    }
    xs_backend *be[2] = {ref, cu};
    for (int b = 0; ok && b < 2; b++) {
        xs_tensor src = {0}, src2 = {0}, dst = {0}, y = {0};
        int64_t sp[1] = {span}, ys[1] = {n};
        ok = upload(be[b], 1, sp, h, &src) && upload(be[b], 1, sp, h2, &src2) &&
             upload(be[b], 1, sp, h2, &dst) && xs_tensor_alloc(be[b], XS_F32, 1, ys, &y) == XS_OK;
        if (ok) {
            xs_tensor a = view_of(&src, nd, shape, stride, 3), c = view_of(&src2, nd, shape, stride, 1);
            xs_tensor dv = view_of(&dst, nd, shape, stride, 2), yv = view_of(&y, nd, shape, cs, 0);
            ok = xs_op_copy(be[b], &yv, &a) == XS_OK && xs_tensor_download(be[b], out[b], &y) == XS_OK &&
                 xs_op_add(be[b], &yv, &a, &c) == XS_OK &&
                 xs_tensor_download(be[b], out[b] + n, &y) == XS_OK &&
                 xs_op_mul(be[b], &yv, &c, &a) == XS_OK &&
                 xs_tensor_download(be[b], out[b] + 2 * n, &y) == XS_OK &&
                 xs_op_elu(be[b], &yv, &a, 1.0f) == XS_OK &&
                 xs_tensor_download(be[b], out[b] + 3 * n, &y) == XS_OK &&
                 xs_op_copy(be[b], &dv, &a) == XS_OK && xs_tensor_download(be[b], dsts[b], &dst) == XS_OK &&
                 xs_op_fill(be[b], &c, 0.25f) == XS_OK && xs_tensor_download(be[b], fills[b], &src2) == XS_OK;
        }
        CHECK(ok, "%s: %s: %s", what, b ? "cuda" : "ref", xs_error_msg());
        xs_tensor_free(be[b], &src);
        xs_tensor_free(be[b], &src2);
        xs_tensor_free(be[b], &dst);
        xs_tensor_free(be[b], &y);
    }
    if (ok) {
        CHECK(memcmp(out[0], out[1], (size_t)n * 4) == 0, "%s: copy differs from ref", what);
        CHECK(memcmp(out[0] + n, out[1] + n, (size_t)n * 4) == 0, "%s: add differs from ref", what);
        CHECK(memcmp(out[0] + 2 * n, out[1] + 2 * n, (size_t)n * 4) == 0, "%s: mul differs from ref", what);
        const double e = test_nmse(out[0] + 3 * n, out[1] + 3 * n, n);
        CHECK(e <= 1e-12, "%s: elu nmse %.3g vs ref", what, e);
        CHECK(memcmp(dsts[0], dsts[1], (size_t)span * 4) == 0, "%s: copy into a view differs", what);
        CHECK(memcmp(fills[0], fills[1], (size_t)span * 4) == 0, "%s: fill of a view differs", what);
    }
    free(h);
    free(h2);
    for (int b = 0; b < 2; b++) {
        free(out[b]);
        free(dsts[b]);
        free(fills[b]);
    }
}

/* us per call of mode (2 split, 3 tiled) */
static double time_mode(xs_backend *cu, int mode, const xs_tensor *x, const xs_tensor *w,
                        const xs_tensor *b, xs_tensor *y, const conv_shape *s) {
    xs_cuda_conv_select(mode);
    double ms = -1;
    bool ok = true;
    for (int i = 0; ok && i < 3; i++) ok = xs_op_conv1d(cu, y, x, w, b, s->stride, s->dil, 1) == XS_OK;
    ok = ok && xs_cuda_timer_mark(cu, 0) == XS_OK;
    for (int i = 0; ok && i < 20; i++) ok = xs_op_conv1d(cu, y, x, w, b, s->stride, s->dil, 1) == XS_OK;
    ok = ok && xs_cuda_timer_mark(cu, 1) == XS_OK && xs_cuda_timer_ms(cu, 0, 1, &ms) == XS_OK;
    xs_cuda_conv_select(0);
    return ok ? ms * 1e3 / 20 : -1;
}

/* us per call of an element-wise op at 40 sessions' 24 kHz size (64 x 40 x
 * 1920 floats): op 0 elu, 1 add, 2 copy into a [C, n, L] view (a conv's
 * input block), 3 copy out of one (its valid outputs) */
static double time_ew(xs_backend *cu, int op, xs_tensor *a, xs_tensor *b, xs_tensor *big) {
    const int64_t C = 64, n = 40, T = 1920, L = 1922;
    int64_t sh[3] = {C, n, T};
    xs_tensor a3 = xs_tensor_make(XS_F32, 3, sh, a->data);
    xs_tensor v = xs_tensor_make(XS_F32, 3, sh, (float *)big->data + 2);
    v.stride[0] = n * L;
    v.stride[1] = L;
    v.stride[2] = 1;
    double ms = -1;
    bool ok = true;
    for (int it = 0; ok && it < 23; it++) {
        if (it == 3) ok = xs_cuda_timer_mark(cu, 0) == XS_OK;
        xs_status rc = op == 0   ? xs_op_elu(cu, b, a, 1.0f)
                       : op == 1 ? xs_op_add(cu, b, a, b)
                       : op == 2 ? xs_op_copy(cu, &v, &a3)
                                 : xs_op_copy(cu, &a3, &v);
        ok = ok && rc == XS_OK;
    }
    ok = ok && xs_cuda_timer_mark(cu, 1) == XS_OK && xs_cuda_timer_ms(cu, 0, 1, &ms) == XS_OK;
    return ok ? ms * 1e3 / 20 : -1;
}

static int bench(xs_backend *cu) {
    {
        const int64_t C = 64, n = 40, T = 1920, L = 1922;
        int64_t s2[2] = {C, n * T}, sb[1] = {C * n * L + 8};
        xs_tensor a = {0}, b = {0}, big = {0};
        float *h = malloc((size_t)sb[0] * sizeof *h);
        bool ok = h != NULL;
        if (ok) test_fill_uniform(h, sb[0], 9, -2, 2);
        ok = ok && upload(cu, 2, s2, h, &a) && upload(cu, 2, s2, h, &b) && upload(cu, 1, sb, h, &big);
        const char *getenv_ew = getenv("XSWARM_CUDA_EW");
        printf("element-wise ops at 64 x 40 x 1920 floats (19.7 MB), kernels %s: us per call "
               "(20 after 3), GB/s of bytes moved\n",
               getenv_ew && !strcmp(getenv_ew, "old") ? "generic (XSWARM_CUDA_EW=old)" : "collapsed-index");
        static const char *names[] = {"elu (contiguous)", "add (contiguous)", "copy into [C, n, L] view",
                                      "copy out of [C, n, L] view"};
        static const double bytes[] = {8, 12, 8, 8};
        for (int op = 0; ok && op < 4; op++) {
            const double us = time_ew(cu, op, &a, &b, &big);
            printf("  %-28s %8.1f us %8.0f GB/s\n", names[op], us,
                   us > 0 ? bytes[op] * C * n * T / (us * 1e-6) / 1e9 : 0);
        }
        if (!ok) printf("  element-wise bench: %s\n", xs_error_msg());
        xs_tensor_free(cu, &a);
        xs_tensor_free(cu, &b);
        xs_tensor_free(cu, &big);
        free(h);
    }
    printf("conv1d, us per call (CUDA events, 20 calls after 3); GFMA/s of the tiled kernel\n");
    printf("  %-24s %8s %8s %10s %10s %8s %8s\n", "layer", "sessions", "columns", "split", "tiled",
           "speedup", "TFMA/s");
    static const int ns[] = {1, 40};
    for (size_t i = 0; i < sizeof mimi / sizeof mimi[0]; i++)
        for (int j = 0; j < 2; j++) {
            const conv_shape *s = &mimi[i];
            const int64_t tin = s->cols * ns[j], span = (int64_t)s->dil * (s->k - 1) + 1;
            const int64_t tout = (tin - span) / s->stride + 1;
            int64_t xs[2] = {s->cin, tin}, ws[3] = {s->cout, s->cin, s->k}, bs[1] = {s->cout},
                    ys[2] = {s->cout, tout};
            float *xh = malloc((size_t)(s->cin * tin) * sizeof *xh);
            float *wh = malloc((size_t)(s->cout * s->cin * s->k) * sizeof *wh);
            float *bh = malloc((size_t)s->cout * sizeof *bh);
            xs_tensor x = {0}, w = {0}, b = {0}, y = {0};
            if (xh && wh && bh) {
                test_fill_uniform(xh, s->cin * tin, 5, -1, 1);
                test_fill_uniform(wh, (int64_t)s->cout * s->cin * s->k, 6, -1, 1);
                test_fill_uniform(bh, s->cout, 7, -1, 1);
            }
            if (xh && wh && bh && upload(cu, 2, xs, xh, &x) && upload(cu, 3, ws, wh, &w) &&
                upload(cu, 1, bs, bh, &b) && xs_tensor_alloc(cu, XS_F32, 2, ys, &y) == XS_OK) {
                const double a = time_mode(cu, 2, &x, &w, &b, &y, s);
                const double t = time_mode(cu, 3, &x, &w, &b, &y, s);
                const double fma = (double)s->cout * s->cin * s->k * tout;
                printf("  %-24s %8d %8lld %10.1f %10.1f %7.2fx %8.2f\n", s->name, ns[j],
                       (long long)tout, a, t, t > 0 ? a / t : 0, t > 0 ? fma / (t * 1e-6) / 1e12 : 0);
            } else {
                printf("  %-24s %8d: %s\n", s->name, ns[j], xs_error_msg());
            }
            xs_tensor_free(cu, &x);
            xs_tensor_free(cu, &w);
            xs_tensor_free(cu, &b);
            xs_tensor_free(cu, &y);
            free(xh);
            free(wh);
            free(bh);
        }
    return 0;
}

int main(int argc, char **argv) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("cuda", 1, &cu) == XS_OK, "open cuda: %s", xs_error_msg());
    if (argc > 1 && !strcmp(argv[1], "bench")) {
        const int rc = cu ? bench(cu) : 1;
        xs_backend_close(cu);
        return rc;
    }
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref: %s", xs_error_msg());
    if (!ref || !cu) return test_summary("cuda_conv");
    /* Mimi's layers: 2 sessions' width (vs ref too) and 40 sessions' (bits) */
    for (size_t i = 0; i < sizeof mimi / sizeof mimi[0]; i++) {
        check_shape(ref, cu, &mimi[i], 2 * mimi[i].cols, 0, true, 10 + i);
        check_shape(ref, cu, &mimi[i], 40 * mimi[i].cols, 0, i % 2 == 0, 40 + i);
    }
    /* odd shapes: stride with dilation, channels off the tiles, cin below
     * the warp slices, 16 taps, 32 warp slices (Cin*K >= 2048), strided x */
    static const conv_shape odd[] = {
        {"odd s3 d2", 37, 45, 5, 3, 2, 1000}, {"odd nw32", 300, 70, 7, 1, 1, 700},
        {"odd s2", 5, 33, 2, 2, 1, 999},       {"odd k16", 3, 20, 16, 1, 1, 300},
        {"odd d3", 17, 9, 3, 1, 3, 513},       {"odd s6 k12", 40, 48, 12, 6, 1, 2000},
        {"odd k1 s1", 1, 17, 1, 1, 1, 129},
    };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        check_shape(ref, cu, &odd[i], odd[i].cols, i % 3 == 0 ? 13 : 0, i % 2 == 1, 80 + i);
    check_shape(ref, cu, &mimi[3], 2 * mimi[3].cols, 7, true, 99); /* strided, stride 4 */
    /* element-wise views: [C, n, T] of [C, n, L]; [C, n, T, S] with a short
     * inner dim (the transposed convs' blocks); a permuted 2-d view; 1-d */
    {
        const int64_t s3[3] = {24, 5, 190}, t3[3] = {5 * 197, 197, 1};
        check_elementwise(ref, cu, 3, s3, t3, 24 * 5 * 197 + 8, 500);
        const int64_t s4[4] = {6, 4, 33, 4}, t4[4] = {4 * 33 * 8 + 3, 33 * 8, 8, 1};
        check_elementwise(ref, cu, 4, s4, t4, 6 * (4 * 33 * 8 + 3) + 8, 501);
        const int64_t s2[2] = {70, 90}, t2[2] = {1, 70};
        check_elementwise(ref, cu, 2, s2, t2, 70 * 90 + 8, 502);
        const int64_t s1[1] = {1000}, t1[1] = {3};
        check_elementwise(ref, cu, 1, s1, t1, 3000 + 8, 503);
        const int64_t s5[3] = {3, 1, 77}, t5[3] = {100, 5, 1}; /* a size-1 dim */
        check_elementwise(ref, cu, 3, s5, t5, 300 + 8, 504);
    }
    check_shape(ref, cu, &mimi[6], 3 * mimi[6].cols, 3, false, 98); /* strided, stride 5 */
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_conv");
}
