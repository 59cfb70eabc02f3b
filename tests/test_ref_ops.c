/*
 * test_ref_ops.c — every op of the ref backend through the ops.h wrappers,
 * against values computed independently here (hand values, or naive loops
 * written in a different form: gather instead of scatter, direct formulas),
 * with strided inputs. Also the wrappers' shape/dtype checks and dispatch.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/quant.h"
#include "core/rng.h"
#include "testutil.h"

static xs_backend *be;

static int close_all(const float *got, const double *want, int64_t n, double tol) {
    for (int64_t i = 0; i < n; i++)
        if (!(fabs((double)got[i] - want[i]) <= tol * fmax(1.0, fabs(want[i])))) {
            fprintf(stderr, "  [%lld] got %.9g want %.9g\n", (long long)i, got[i], want[i]);
            return 0;
        }
    return 1;
}

/* ---- matmul / embedding ---- */

static void test_matmul(void) {
    enum { M = 3, K = 64, N = 5 };
    float xbuf[K * M], w[N * K], bias[N], y[M * N];
    test_fill_uniform(xbuf, K * M, 1, -1, 1);
    test_fill_uniform(w, N * K, 2, -1, 1);
    test_fill_uniform(bias, N, 3, -1, 1);
    /* x [M, K] as a transposed view of a [K, M] buffer: strides {1, M} */
    xs_tensor xt = xs_tensor_2d(XS_F32, xbuf, K, M);
    xs_tensor x = xs_tensor_transpose(&xt, 0, 1);
    xs_tensor yt = xs_tensor_2d(XS_F32, y, M, N);
    xs_tensor bt = xs_tensor_1d(XS_F32, bias, N);

    const xs_dtype types[5] = {XS_F32, XS_F16, XS_BF16, XS_Q8_0, XS_Q4_0};
    for (int ti = 0; ti < 5; ti++) {
        xs_dtype dt = types[ti];
        unsigned char *wq = malloc(xs_dtype_row_bytes(dt, N * K));
        float wd[N * K]; /* what the weight file means, dequantized independently */
        for (int i = 0; i < N * K; i++) {
            if (dt == XS_F16) ((uint16_t *)wq)[i] = xs_f32_to_f16(w[i]);
            if (dt == XS_BF16) ((uint16_t *)wq)[i] = xs_f32_to_bf16(w[i]);
        }
        if (dt == XS_F32) memcpy(wq, w, sizeof w);
        if (dt == XS_Q8_0) xs_quantize_row_q8_0(w, (xs_block_q8_0 *)wq, N * K);
        if (dt == XS_Q4_0) xs_quantize_row_q4_0(w, (xs_block_q4_0 *)wq, N * K);
        xs_convert_to_f32(wd, wq, dt, N * K);
        xs_tensor wt = xs_tensor_2d(dt, wq, N, K);
        CHECK(xs_op_matmul(be, &yt, &x, &wt, &bt) == XS_OK, "matmul %s: %s", xs_dtype_name(dt),
              xs_error_msg());
        double want[M * N];
        for (int n = 0; n < N; n++)
            for (int m = 0; m < M; m++) {
                double s = bias[n];
                for (int k = 0; k < K; k++) s += (double)xbuf[k * M + m] * wd[n * K + k];
                want[m * N + n] = s;
            }
        CHECK(close_all(y, want, M * N, 1e-6), "matmul %s values (strided x, bias)",
              xs_dtype_name(dt));
        if (dt == XS_F32) {
            /* no bias, x of 3 dims [1, M, K], y [1, M, N] */
            xs_tensor x3 = x;
            x3.ndim = 3;
            x3.shape[0] = 1; x3.shape[1] = M; x3.shape[2] = K;
            x3.stride[0] = K * M; x3.stride[1] = 1; x3.stride[2] = M;
            xs_tensor y3 = xs_tensor_3d(XS_F32, y, 1, M, N);
            CHECK(xs_op_matmul(be, &y3, &x3, &wt, NULL) == XS_OK, "matmul 3-D");
            for (int i = 0; i < M * N; i++) want[i] -= bias[i % N];
            CHECK(close_all(y, want, M * N, 1e-6), "matmul 3-D values, no bias");
        }
        free(wq);
    }
    /* hand case: [1 2] . [[3 4] [5 6]]^T = [11 17] */
    float hx[2] = {1, 2}, hw[4] = {3, 4, 5, 6}, hy[2];
    xs_tensor a = xs_tensor_2d(XS_F32, hx, 1, 2), b = xs_tensor_2d(XS_F32, hw, 2, 2),
              c = xs_tensor_2d(XS_F32, hy, 1, 2);
    CHECK(xs_op_matmul(be, &c, &a, &b, NULL) == XS_OK && hy[0] == 11 && hy[1] == 17, "matmul hand");
}

static void test_embedding(void) {
    enum { V = 4, D = 32 };
    float tab[V * D];
    test_fill_uniform(tab, V * D, 5, -2, 2);
    xs_block_q8_0 q[V];
    xs_quantize_row_q8_0(tab, q, V * D);
    uint16_t bf[V * D];
    for (int i = 0; i < V * D; i++) bf[i] = xs_f32_to_bf16(tab[i]);
    int32_t ids[3] = {2, -1, 0};
    xs_tensor it = xs_tensor_1d(XS_I32, ids, 3);
    float y[3 * D];
    xs_tensor yt = xs_tensor_2d(XS_F32, y, 3, D);
    xs_tensor t32 = xs_tensor_2d(XS_F32, tab, V, D);
    CHECK(xs_op_embedding(be, &yt, &t32, &it) == XS_OK, "embedding f32");
    int ok = 1;
    for (int c = 0; c < D; c++) ok &= y[c] == tab[2 * D + c] && y[D + c] == 0.0f && y[2 * D + c] == tab[c];
    CHECK(ok, "embedding f32 rows, id -1 -> zeros");
    xs_tensor tq = xs_tensor_2d(XS_Q8_0, q, V, D);
    CHECK(xs_op_embedding(be, &yt, &tq, &it) == XS_OK, "embedding q8_0");
    float deq[D];
    xs_dequantize_row_q8_0(&q[2], deq, D);
    CHECK(!memcmp(y, deq, sizeof deq), "embedding q8_0 = dequantized row");
    xs_tensor tb = xs_tensor_2d(XS_BF16, bf, V, D);
    CHECK(xs_op_embedding(be, &yt, &tb, &it) == XS_OK && y[2 * D + 5] == xs_bf16_to_f32(bf[5]),
          "embedding bf16");
    ids[1] = V;
    t32.name = "emb.table";
    xs_status rc = xs_op_embedding(be, &yt, &t32, &it);
    CHECK(rc == XS_ERR_ARG && strstr(xs_error_msg(), "emb.table"), "out-of-range id: %s",
          xs_error_msg());
}

/* ---- convolutions ---- */

static void test_conv1d(void) {
    /* hand: [1 2 3 4 5] * [1 0 -1] + 0.5 = [-1.5 -1.5 -1.5] */
    float hx[5] = {1, 2, 3, 4, 5}, hw[3] = {1, 0, -1}, hb[1] = {0.5f}, hy[3];
    xs_tensor x = xs_tensor_2d(XS_F32, hx, 1, 5), w = xs_tensor_3d(XS_F32, hw, 1, 1, 3),
              b = xs_tensor_1d(XS_F32, hb, 1), y = xs_tensor_2d(XS_F32, hy, 1, 3);
    CHECK(xs_op_conv1d(be, &y, &x, &w, &b, 1, 1, 1) == XS_OK && hy[0] == -1.5f &&
              hy[1] == -1.5f && hy[2] == -1.5f,
          "conv1d hand");

    /* random: Cin 4, Cout 6, groups 2, K 3, stride 2, dilation 2, Tin 15, x strided */
    enum { CI = 4, CO = 6, G = 2, KK = 3, S = 2, DL = 2, TI = 15 };
    const int TO = (TI - DL * (KK - 1) - 1) / S + 1;
    float xb[TI * CI], wb[CO * (CI / G) * KK], bb[CO], yb[CO * 8];
    test_fill_uniform(xb, TI * CI, 11, -1, 1);
    test_fill_uniform(wb, CO * (CI / G) * KK, 12, -1, 1);
    test_fill_uniform(bb, CO, 13, -1, 1);
    xs_tensor xt = xs_tensor_2d(XS_F32, xb, TI, CI);
    xs_tensor xv = xs_tensor_transpose(&xt, 0, 1); /* [CI, TI], strides {1, CI} */
    xs_tensor wv = xs_tensor_3d(XS_F32, wb, CO, CI / G, KK);
    xs_tensor bv = xs_tensor_1d(XS_F32, bb, CO);
    xs_tensor yv = xs_tensor_2d(XS_F32, yb, CO, TO);
    CHECK(xs_op_conv1d(be, &yv, &xv, &wv, &bv, S, DL, G) == XS_OK, "conv1d: %s", xs_error_msg());
    /* independent: for each output, gather the input window of its group */
    double want[CO * 8];
    for (int t = 0; t < TO; t++)
        for (int co = 0; co < CO; co++) {
            int g = co / (CO / G);
            double s = bb[co];
            for (int k = 0; k < KK; k++) {
                int tin = t * S + k * DL;
                for (int ci = g * (CI / G); ci < (g + 1) * (CI / G); ci++)
                    s += (double)xb[tin * CI + ci] * wb[(co * (CI / G) + ci - g * (CI / G)) * KK + k];
            }
            want[co * TO + t] = s;
        }
    CHECK(close_all(yb, want, CO * TO, 1e-6), "conv1d groups/stride/dilation, strided x");
    xs_tensor ybad = xs_tensor_2d(XS_F32, yb, CO, TO + 1);
    CHECK(xs_op_conv1d(be, &ybad, &xv, &wv, &bv, S, DL, G) == XS_ERR_SHAPE, "conv1d bad Tout");
}

static void test_conv_transpose1d(void) {
    /* hand: x [1 2], w [1 1 1], stride 2 -> [1 1 3 2 2] (+ bias 1) */
    float hx[2] = {1, 2}, hw[3] = {1, 1, 1}, hb[1] = {1}, hy[5];
    xs_tensor x = xs_tensor_2d(XS_F32, hx, 1, 2), w = xs_tensor_3d(XS_F32, hw, 1, 1, 3),
              b = xs_tensor_1d(XS_F32, hb, 1), y = xs_tensor_2d(XS_F32, hy, 1, 5);
    CHECK(xs_op_conv_transpose1d(be, &y, &x, &w, &b, 2, 1) == XS_OK && hy[0] == 2 && hy[1] == 2 &&
              hy[2] == 4 && hy[3] == 3 && hy[4] == 3,
          "conv_transpose1d hand");

    /* random, groups 2 and depthwise: Cin 4, Cout 6 (groups 2) / 4 (groups 4) */
    for (int pass = 0; pass < 2; pass++) {
        const int CI = 4, G = pass ? 4 : 2, COG = pass ? 1 : 3, KK = 4, S = 2, TI = 5;
        const int CO = COG * G, TO = (TI - 1) * S + KK;
        float xb[5 * 4], wb[4 * 3 * 4], bb[6], yb[6 * 12];
        test_fill_uniform(xb, TI * CI, 21 + pass, -1, 1);
        test_fill_uniform(wb, CI * COG * KK, 23 + pass, -1, 1);
        test_fill_uniform(bb, CO, 25, -1, 1);
        xs_tensor xt = xs_tensor_2d(XS_F32, xb, TI, CI);
        xs_tensor xv = xs_tensor_transpose(&xt, 0, 1);
        xs_tensor wv = xs_tensor_3d(XS_F32, wb, CI, COG, KK);
        xs_tensor bv = xs_tensor_1d(XS_F32, bb, CO);
        xs_tensor yv = xs_tensor_2d(XS_F32, yb, CO, TO);
        CHECK(xs_op_conv_transpose1d(be, &yv, &xv, &wv, &bv, S, G) == XS_OK, "convtr: %s",
              xs_error_msg());
        /* independent gather form: y[co, j] = sum over (ci, t) with k = j - t*S in [0, K) */
        double want[6 * 12];
        for (int co = 0; co < CO; co++)
            for (int j = 0; j < TO; j++) {
                int g = co / COG, c = co % COG;
                double s = bb[co];
                for (int ci = g * (CI / G); ci < (g + 1) * (CI / G); ci++)
                    for (int t = 0; t < TI; t++) {
                        int k = j - t * S;
                        if (k >= 0 && k < KK) s += (double)xb[t * CI + ci] * wb[(ci * COG + c) * KK + k];
                    }
                want[co * TO + j] = s;
            }
        CHECK(close_all(yb, want, CO * TO, 1e-6), "conv_transpose1d groups %d", G);
    }
}

/* ---- norms, softmax, rope ---- */

static void test_norms(void) {
    float x[8] = {1, 2, 3, 4, 3, 4, 0, 0}, w[4] = {1, 1, 1, 1}, b[4] = {0, 0, 0, 0}, y[8];
    xs_tensor xt = xs_tensor_2d(XS_F32, x, 2, 4), yt = xs_tensor_2d(XS_F32, y, 2, 4);
    xs_tensor wt = xs_tensor_1d(XS_F32, w, 4), bt = xs_tensor_1d(XS_F32, b, 4);
    CHECK(xs_op_layer_norm(be, &yt, &xt, &wt, &bt, 1e-5f) == XS_OK, "layer_norm");
    /* row 0: mean 2.5, biased var 1.25 */
    double s = 1.0 / sqrt(1.25 + 1e-5);
    double want0[4] = {-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s};
    CHECK(close_all(y, want0, 4, 1e-6), "layer_norm hand row (biased variance, eps in sqrt)");
    float w2[4] = {2, 2, 2, 2}, b2[4] = {1, 1, 1, 1};
    xs_tensor w2t = xs_tensor_1d(XS_F32, w2, 4), b2t = xs_tensor_1d(XS_F32, b2, 4);
    CHECK(xs_op_layer_norm(be, &yt, &xt, &w2t, &b2t, 1e-5f) == XS_OK &&
              fabs(y[3] - (1.0 + 3.0 * s)) < 1e-6,
          "layer_norm weight and bias");
    CHECK(xs_op_layer_norm(be, &yt, &xt, &w2t, NULL, 1e-5f) == XS_OK && fabs(y[3] - 3.0 * s) < 1e-6,
          "layer_norm without bias");

    float rx[2] = {3, 4}, ra[2] = {1, 2}, ry[2];
    xs_tensor rxt = xs_tensor_2d(XS_F32, rx, 1, 2), ryt = xs_tensor_2d(XS_F32, ry, 1, 2);
    int64_t ash[3] = {1, 1, 2};
    xs_tensor rat = xs_tensor_make(XS_F32, 3, ash, ra); /* checkpoints store alpha as [1,1,D] */
    CHECK(xs_op_rms_norm(be, &ryt, &rxt, &rat, 1e-8f) == XS_OK, "rms_norm: %s", xs_error_msg());
    double rwant[2] = {3 / sqrt(12.5 + 1e-8), 8 / sqrt(12.5 + 1e-8)};
    CHECK(close_all(ry, rwant, 2, 1e-6), "rms_norm hand (mean of squares, no centering)");

    float sx[6] = {1, 2, 3, 1000, 1000, -1000};
    xs_tensor st = xs_tensor_2d(XS_F32, sx, 2, 3);
    CHECK(xs_op_softmax(be, &st, &st) == XS_OK, "softmax in place");
    double z = exp(1) + exp(2) + exp(3);
    double swant[6] = {exp(1) / z, exp(2) / z, exp(3) / z, 0.5, 0.5, 0};
    CHECK(close_all(sx, swant, 6, 1e-6), "softmax values, large logits stable");
}

static void test_rope(void) {
    enum { T = 2, H = 2, D = 6, DP = 8 };
    float buf[T * H * DP], orig[T * H * DP];
    test_fill_uniform(buf, T * H * DP, 31, -1, 1);
    memcpy(orig, buf, sizeof buf);
    xs_tensor full = xs_tensor_3d(XS_F32, buf, T, H, DP);
    xs_tensor x = xs_tensor_slice(&full, 2, 1, D); /* strided view: last 2 columns untouched */
    int32_t pos[T] = {3, 1000};
    xs_tensor pt = xs_tensor_1d(XS_I32, pos, T);
    CHECK(xs_op_rope(be, &x, &pt, 10000.0f) == XS_OK, "rope: %s", xs_error_msg());
    int ok = 1;
    double maxerr = 0;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const float *o = orig + (t * H + h) * DP + 1;
            const float *g = buf + (t * H + h) * DP + 1;
            for (int i = 0; i < D / 2; i++) {
                double ang = pos[t] * pow(10000.0, -2.0 * i / D);
                double re = o[2 * i] * cos(ang) - o[2 * i + 1] * sin(ang);
                double im = o[2 * i] * sin(ang) + o[2 * i + 1] * cos(ang);
                maxerr = fmax(maxerr, fmax(fabs(g[2 * i] - re), fabs(g[2 * i + 1] - im)));
            }
            ok &= buf[(t * H + h) * DP] == orig[(t * H + h) * DP] &&
                  buf[(t * H + h) * DP + 7] == orig[(t * H + h) * DP + 7];
        }
    /* f32 frequencies (Kyutai's order of operations) differ from the exact ones by
     * ~1 ulp; at position 1000 that moves the angle by ~1e-4 rad at most. */
    CHECK(maxerr < 2e-4, "rope matches the rotation (max err %g)", maxerr);
    CHECK(ok, "rope leaves elements outside the view alone");
    /* position 0 is the identity */
    float id[4] = {0.3f, -0.7f, 1.5f, 2.0f};
    int32_t p0 = 0;
    xs_tensor it = xs_tensor_3d(XS_F32, id, 1, 1, 4), p0t = xs_tensor_1d(XS_I32, &p0, 1);
    CHECK(xs_op_rope(be, &it, &p0t, 10000.0f) == XS_OK && id[0] == 0.3f && id[1] == -0.7f &&
              id[3] == 2.0f,
          "rope at position 0 is the identity");
}

/* ---- kv cache + attention ---- */

static void naive_attention(double *out, const float *q, const float *ks, const float *vs,
                            const int *kpos, int nk, int qpos, int context, int H, int D,
                            float scale) {
    for (int h = 0; h < H; h++) {
        double w[64], mx = -INFINITY, z = 0;
        for (int j = 0; j < nk; j++) {
            int d = qpos - kpos[j];
            w[j] = NAN;
            if (d < 0 || d >= context) continue;
            double s = 0;
            for (int c = 0; c < D; c++) s += (double)q[h * D + c] * ks[j * H * D + h * D + c];
            w[j] = s * scale;
            mx = fmax(mx, w[j]);
        }
        for (int c = 0; c < D; c++) out[h * D + c] = 0;
        for (int j = 0; j < nk; j++) {
            if (isnan(w[j])) continue;
            double e = exp(w[j] - mx);
            z += e;
            for (int c = 0; c < D; c++) out[h * D + c] += e * vs[j * H * D + h * D + c];
        }
        for (int c = 0; c < D; c++) out[h * D + c] /= z;
    }
}

static void test_attention(void) {
    enum { CAP = 4, H = 2, D = 3, HD = 6, CTX = 3, STEPS = 8 };
    xs_kv_cache c;
    CHECK(xs_kv_cache_alloc(be, CAP, HD, &c) == XS_OK, "kv alloc");
    int all_neg = 1;
    for (int i = 0; i < CAP; i++) all_neg &= ((int32_t *)c.pos.data)[i] == -1;
    CHECK(all_neg, "fresh cache: every slot empty (-1)");
    float ks[STEPS * HD], vs[STEPS * HD], qs[STEPS * HD];
    test_fill_uniform(ks, STEPS * HD, 41, -1, 1);
    test_fill_uniform(vs, STEPS * HD, 42, -1, 1);
    test_fill_uniform(qs, STEPS * HD, 43, -1, 1);
    int kpos[STEPS];
    for (int i = 0; i < STEPS; i++) kpos[i] = i;
    const float scale = 1.0f / sqrtf((float)D);
    int ok = 1;
    /* one position at a time for 0..5: the ring wraps at 4 */
    for (int p = 0; p < 6; p++) {
        int32_t pp = p;
        xs_tensor pt = xs_tensor_1d(XS_I32, &pp, 1);
        xs_tensor kt = xs_tensor_2d(XS_F32, ks + p * HD, 1, HD);
        xs_tensor vt = xs_tensor_2d(XS_F32, vs + p * HD, 1, HD);
        xs_tensor qt = xs_tensor_2d(XS_F32, qs + p * HD, 1, HD);
        float y[HD];
        xs_tensor yt = xs_tensor_2d(XS_F32, y, 1, HD);
        ok &= xs_op_kv_store(be, &c, &kt, &vt, &pt) == XS_OK;
        ok &= xs_op_attention(be, &yt, &qt, &c, &pt, H, CTX, scale) == XS_OK;
        double want[HD];
        naive_attention(want, qs + p * HD, ks, vs, kpos, p + 1, p, CTX, H, D, scale);
        ok &= close_all(y, want, HD, 1e-6);
    }
    CHECK(ok, "attention step by step over a wrapping ring, context 3 < capacity 4");
    const int32_t *cp = c.pos.data;
    CHECK(cp[0] == 4 && cp[1] == 5 && cp[2] == 2 && cp[3] == 3, "ring slots hold 4 5 2 3");
    /* two rows at once (positions 6, 7): row 6 must not see position 7 */
    int32_t p2[2] = {6, 7};
    xs_tensor pt = xs_tensor_1d(XS_I32, p2, 2);
    xs_tensor kt = xs_tensor_2d(XS_F32, ks + 6 * HD, 2, HD);
    xs_tensor vt = xs_tensor_2d(XS_F32, vs + 6 * HD, 2, HD);
    xs_tensor qt = xs_tensor_2d(XS_F32, qs + 6 * HD, 2, HD);
    float y[2 * HD];
    xs_tensor yt = xs_tensor_2d(XS_F32, y, 2, HD);
    CHECK(xs_op_kv_store(be, &c, &kt, &vt, &pt) == XS_OK, "kv_store 2 rows");
    CHECK(xs_op_attention(be, &yt, &qt, &c, &pt, H, CTX, scale) == XS_OK, "attention 2 rows");
    double want[2 * HD];
    naive_attention(want, qs + 6 * HD, ks, vs, kpos, 8, 6, CTX, H, D, scale);
    naive_attention(want + HD, qs + 7 * HD, ks, vs, kpos, 8, 7, CTX, H, D, scale);
    CHECK(close_all(y, want, 2 * HD, 1e-6), "attention rows are causal within one call");
    /* context 1: attend only to itself -> y = v of the same position */
    CHECK(xs_op_attention(be, &yt, &qt, &c, &pt, H, 1, scale) == XS_OK &&
              fabs(y[HD + 4] - vs[7 * HD + 4]) < 1e-6,
          "context 1 returns the own value");
    /* a NaN in a visible key must reach y (the oracle must not hide bad data) */
    float saved = ((float *)c.k.data)[3 * HD + 0]; /* slot 3 = position 7, head 0 */
    ((float *)c.k.data)[3 * HD + 0] = NAN;
    CHECK(xs_op_attention(be, &yt, &qt, &c, &pt, H, CTX, scale) == XS_OK && isnan(y[HD]) &&
              !isnan(y[HD + D]) && !isnan(y[0]),
          "NaN key propagates to its head only (and not to the query that cannot see it)");
    ((float *)c.k.data)[3 * HD + 0] = saved;
    CHECK(xs_kv_cache_reset(be, &c) == XS_OK && cp[2] == -1, "reset empties slots");
    xs_tensor ybad = xs_tensor_2d(XS_F32, y, 2, HD - 1);
    CHECK(xs_op_attention(be, &ybad, &qt, &c, &pt, H, CTX, scale) == XS_ERR_SHAPE,
          "attention bad y shape");
    CHECK(xs_op_attention(be, &yt, &qt, &c, &pt, 4, CTX, scale) == XS_ERR_SHAPE,
          "attention heads must divide width");
    xs_kv_cache_free(be, &c);
    CHECK(c.k.data == NULL && c.pos.data == NULL, "kv free");
}

/* ---- element-wise, copy, fill, argmax, sampling ---- */

static void test_elementwise(void) {
    float x[6] = {-2, -0.5f, 0, 0.5f, 1, 3}, y[6];
    xs_tensor xt = xs_tensor_2d(XS_F32, x, 2, 3), yt = xs_tensor_2d(XS_F32, y, 2, 3);
    double want[6];
    CHECK(xs_op_elu(be, &yt, &xt, 1.0f) == XS_OK, "elu");
    for (int i = 0; i < 6; i++) want[i] = x[i] > 0 ? x[i] : exp(x[i]) - 1;
    CHECK(close_all(y, want, 6, 1e-6), "elu values");
    CHECK(xs_op_gelu(be, &yt, &xt) == XS_OK, "gelu");
    /* erf form: gelu(1) = 0.841344746..., gelu(-2) = -0.0455002639... */
    CHECK(fabs(y[4] - 0.8413447460685429) < 1e-6 && fabs(y[0] + 0.04550026389635842) < 1e-7,
          "gelu erf values %.9g %.9g", y[4], y[0]);
    CHECK(xs_op_scale(be, &yt, &xt, 2.0f, 1.0f) == XS_OK && y[5] == 7.0f && y[0] == -3.0f, "scale");
    /* silu_mul: first half gated */
    float sx[4] = {1, -1, 2, 3}, sy[2];
    xs_tensor sxt = xs_tensor_2d(XS_F32, sx, 1, 4), syt = xs_tensor_2d(XS_F32, sy, 1, 2);
    CHECK(xs_op_silu_mul(be, &syt, &sxt) == XS_OK, "silu_mul");
    double swant[2] = {1 / (1 + exp(-1.0)) * 2, -1 / (1 + exp(1.0)) * 3};
    CHECK(close_all(sy, swant, 2, 1e-6), "silu_mul values (first half gated)");
    /* add / mul with row broadcast, aliasing y = a */
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30}, full[6] = {1, 1, 1, 2, 2, 2};
    xs_tensor at = xs_tensor_2d(XS_F32, a, 2, 3), bt = xs_tensor_1d(XS_F32, b, 3),
              ft = xs_tensor_2d(XS_F32, full, 2, 3);
    CHECK(xs_op_add(be, &at, &at, &bt) == XS_OK && a[0] == 11 && a[5] == 36, "add row broadcast");
    CHECK(xs_op_mul(be, &at, &at, &ft) == XS_OK && a[0] == 11 && a[5] == 72, "mul same shape");
    xs_tensor bad = xs_tensor_1d(XS_F32, b, 2);
    CHECK(xs_op_add(be, &at, &at, &bad) == XS_ERR_SHAPE, "add bad broadcast");
}

static void test_copy_fill(void) {
    float src[6] = {1, 2, 3, 4, 5, 6}, dst[6];
    xs_tensor s = xs_tensor_2d(XS_F32, src, 2, 3);
    xs_tensor st = xs_tensor_transpose(&s, 0, 1); /* [3, 2] */
    xs_tensor d = xs_tensor_2d(XS_F32, dst, 3, 2);
    CHECK(xs_op_copy(be, &d, &st) == XS_OK && dst[0] == 1 && dst[1] == 4 && dst[2] == 2 &&
              dst[5] == 6,
          "copy of a transposed view");
    int32_t is[3] = {7, 8, 9}, id[6] = {0};
    xs_tensor ist = xs_tensor_1d(XS_I32, is, 3);
    xs_tensor idt = xs_tensor_2d(XS_I32, id, 3, 2);
    xs_tensor col = xs_tensor_slice(&idt, 1, 1, 1); /* [3, 1] strided column */
    xs_tensor colr = col;
    colr.ndim = 1;
    colr.shape[0] = 3;
    colr.stride[0] = 2;
    CHECK(xs_op_copy(be, &colr, &ist) == XS_OK && id[1] == 7 && id[3] == 8 && id[5] == 9 &&
              id[0] == 0,
          "i32 copy into a strided column");
    xs_tensor mixed = xs_tensor_1d(XS_F32, dst, 3);
    CHECK(xs_op_copy(be, &mixed, &ist) == XS_ERR_DTYPE, "copy dtype mismatch");
    float f[6] = {0};
    xs_tensor ftt = xs_tensor_2d(XS_F32, f, 2, 3);
    xs_tensor fs = xs_tensor_slice(&ftt, 1, 1, 2);
    CHECK(xs_op_fill(be, &fs, 2.5f) == XS_OK && f[0] == 0 && f[1] == 2.5f && f[2] == 2.5f &&
              f[3] == 0 && f[5] == 2.5f,
          "fill a strided view only");
}

static void test_argmax_sample(void) {
    float l[8] = {1, 5, 5, 2, -1, -3, -1, -2};
    int32_t ids[2];
    xs_tensor lt = xs_tensor_2d(XS_F32, l, 2, 4), it = xs_tensor_1d(XS_I32, ids, 2);
    CHECK(xs_op_argmax(be, &it, &lt) == XS_OK && ids[0] == 1 && ids[1] == 0,
          "argmax ties to the lowest index (%d %d)", ids[0], ids[1]);
    enum { M = 3, V = 50 };
    float big[M * V];
    test_fill_uniform(big, M * V, 51, -3, 3);
    int32_t sid[M];
    xs_tensor bt = xs_tensor_2d(XS_F32, big, M, V), st = xs_tensor_1d(XS_I32, sid, M);
    CHECK(xs_op_sample_topk(be, &st, &bt, 0.8f, 10, 1234, 2, 100) == XS_OK, "sample_topk");
    int ok = 1;
    for (int m = 0; m < M; m++) {
        float u = xs_rng_uniform(1234, 2, 100 + (uint64_t)m, 0);
        ok &= sid[m] == xs_sample_topk_ref(big + m * V, V, 0.8f, 10, u);
    }
    CHECK(ok, "sample_topk row m uses xs_rng_uniform(seed, stream, counter + m, 0)");
    CHECK(xs_op_sample_topk(be, &st, &bt, 0.0f, 10, 1234, 2, 100) == XS_OK, "sample temp 0");
    int32_t am[M];
    xs_tensor amt = xs_tensor_1d(XS_I32, am, M);
    xs_op_argmax(be, &amt, &bt);
    CHECK(sid[0] == am[0] && sid[1] == am[1] && sid[2] == am[2], "temp 0 = argmax");
}

/* ---- wrappers: checks, names, dispatch ---- */

static int g_fake_called;
static xs_status fake_scale(xs_backend *b, xs_tensor *y, const xs_tensor *x, float s, float o) {
    (void)b; (void)y; (void)x; (void)s; (void)o;
    g_fake_called++;
    return XS_OK;
}

static void test_wrappers(void) {
    for (int i = 0; i < XS_OP_COUNT; i++)
        CHECK(xs_op_from_name(xs_op_name((xs_op)i)) == i, "op name round trip %s",
              xs_op_name((xs_op)i));
    CHECK(xs_op_from_name("sample_topk") == XS_OP_SAMPLE_TOPK && xs_op_from_name("nope") == -1,
          "op names");
    float x[6] = {1, 2, 3, 4, 5, 6}, y[6];
    xs_tensor xt = xs_tensor_2d(XS_F32, x, 2, 3), yt = xs_tensor_2d(XS_F32, y, 3, 2);
    xt.name = "mimi.x";
    yt.name = "mimi.y";
    CHECK(xs_op_gelu(be, &yt, &xt) == XS_ERR_SHAPE && strstr(xs_error_msg(), "mimi.x") &&
              strstr(xs_error_msg(), "[3, 2]"),
          "shape error names tensors and shapes: %s", xs_error_msg());
    int32_t ix[6];
    xs_tensor it = xs_tensor_2d(XS_I32, ix, 2, 3);
    CHECK(xs_op_gelu(be, &it, &xt) == XS_ERR_DTYPE && strstr(xs_error_msg(), "i32"),
          "dtype error: %s", xs_error_msg());
    xs_tensor w = xs_tensor_2d(XS_F32, y, 2, 2);
    xs_tensor y2 = xs_tensor_2d(XS_F32, y, 2, 2);
    CHECK(xs_op_matmul(be, &y2, &xt, &w, NULL) == XS_ERR_SHAPE, "matmul K mismatch: %s",
          xs_error_msg());
    xs_tensor inval = xs_tensor_slice(&xt, 0, 1, 5);
    xs_tensor yy = xs_tensor_2d(XS_F32, y, 2, 3);
    CHECK(xs_op_gelu(be, &yy, &inval) != XS_OK, "invalid view refused");

    /* dispatch: a host backend declining an op falls back to ref; a device one fails */
    xs_backend_iface fake = *be->iface;
    fake.name = "fakehost";
    fake.gelu = NULL;
    fake.scale = fake_scale;
    xs_backend fb = {&fake, NULL, 1, NULL};
    CHECK(xs_op_gelu(&fb, &yy, &xt) == XS_OK && fabs(y[0] - 0.8413447) < 1e-6,
          "declined op on a host backend runs ref");
    CHECK(xs_op_scale(&fb, &yy, &xt, 1, 0) == XS_OK && g_fake_called == 1,
          "backend's own op is called");
    fake.host_memory = false;
    fake.name = "fakedev";
    CHECK(xs_op_gelu(&fb, &yy, &xt) == XS_ERR_UNSUPPORTED && strstr(xs_error_msg(), "fakedev") &&
              strstr(xs_error_msg(), "gelu"),
          "declined op on a device backend: %s", xs_error_msg());

    /* memory helpers */
    xs_tensor a;
    int64_t shp[2] = {3, 64};
    CHECK(xs_tensor_alloc(be, XS_Q4_0, 2, shp, &a) == XS_OK && a.data, "alloc q4_0");
    xs_tensor_free(be, &a);
    CHECK(a.data == NULL, "free zeroes the tensor");
    xs_tensor_free(be, &a); /* safe twice */
    int64_t bad[1] = {33};
    CHECK(xs_tensor_alloc(be, XS_Q8_0, 1, bad, &a) == XS_ERR_SHAPE, "alloc q8_0 partial block");
    CHECK(xs_tensor_alloc(be, XS_F32, 2, shp, &a) == XS_OK, "alloc f32");
    float host[192], back[192];
    test_fill_uniform(host, 192, 61, -1, 1);
    CHECK(xs_tensor_upload(be, &a, host) == XS_OK && xs_tensor_download(be, back, &a) == XS_OK &&
              !memcmp(host, back, sizeof host),
          "upload/download round trip");
    xs_tensor wv;
    xs_tensor hw = xs_tensor_2d(XS_F32, host, 3, 64);
    CHECK(xs_backend_weight(be, &hw, &wv) == XS_OK && wv.data == host, "host weight is a view");
    xs_backend_weight_release(be, &wv);
    xs_tensor_free(be, &a);
}

int main(void) {
    if (xs_backend_ref_new(&be) != XS_OK) return 1;
    test_matmul();
    test_embedding();
    test_conv1d();
    test_conv_transpose1d();
    test_norms();
    test_rope();
    test_attention();
    test_elementwise();
    test_copy_fill();
    test_argmax_sample();
    test_wrappers();
    xs_backend_close(be);
    return test_summary("test_ref_ops");
}
