/*
 * bench_ops.c — `xswarm bench ops`: kernel timings next to the machine's
 * floors, measured in the same run.
 *
 *  1. memory read bandwidth (GB/s) and the sgemm FLOP rate (diag/membw.h);
 *  2. GEMV (one activation row, the LM step) per weight dtype at Moshi 7B
 *     shapes, reported as GB/s of weights read and as a fraction of the
 *     measured bandwidth. The weights are cycled through several copies
 *     (>= 512 MiB in all) so they come from DRAM as in a real 7B step (8 GB
 *     in Q8_0), not from the last-level cache;
 *  3. Mimi's SEANet convolutions for one 80 ms frame;
 *  4. attention of one query over a full ring KV cache (7B, Mimi, depformer).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/ops.h"
#include "cli/cli.h"
#include "core/quant.h"
#include "diag/membw.h"

static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 1 + (c[1] == ' ');
                c[strcspn(c, "\n")] = 0;
                snprintf(buf, n, "%s", c);
            }
            break;
        }
    }
    fclose(f);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Random weight bytes of dtype dt for an [n, k] matrix (fast: no quantizer). */
static void fill_weight(uint8_t *p, xs_dtype dt, int64_t n, int64_t k) {
    size_t nb = xs_dtype_row_bytes(dt, k) * (size_t)n;
    if (dt == XS_F32) {
        float *f = (float *)p;
        for (size_t i = 0; i < nb / 4; i++) f[i] = (float)(mix(i) >> 40) * 0x1.0p-24f - 0.5f;
    } else if (dt == XS_F16 || dt == XS_BF16) {
        uint16_t *h = (uint16_t *)p;
        for (size_t i = 0; i < nb / 2; i++) {
            float v = (float)(mix(i) >> 40) * 0x1.0p-24f - 0.5f;
            h[i] = dt == XS_F16 ? xs_f32_to_f16(v) : xs_f32_to_bf16(v);
        }
    } else {
        size_t bs = dt == XS_Q8_0 ? sizeof(xs_block_q8_0) : sizeof(xs_block_q4_0);
        for (size_t b = 0; b < nb / bs; b++) {
            uint8_t *blk = p + b * bs;
            uint16_t d = xs_f32_to_f16(0.01f);
            memcpy(blk, &d, 2);
            uint64_t r = mix(b);
            for (size_t i = 2; i < bs; i++) {
                if ((i & 7) == 2) r = mix(r + i);
                blk[i] = (uint8_t)(r >> (8 * (i & 7)));
            }
        }
    }
}

typedef struct gemv_shape {
    const char *what;
    int64_t n, k;
} gemv_shape;

static int bench_gemv(xs_backend *be, double bw, bool quick) {
    const gemv_shape shapes[] = {
        {"7B attn proj 4096x4096", 4096, 4096},
        {"7B ffn in 2x11264x4096", 22528, 4096},
        {"7B ffn out 4096x11264", 4096, 11264},
    };
    const xs_dtype types[] = {XS_F32, XS_BF16, XS_F16, XS_Q8_0, XS_Q4_0};
    const size_t min_total = quick ? (size_t)256 << 20 : (size_t)512 << 20;
    printf("\nGEMV, 1 activation row (one LM step), weights from DRAM (copies cycled, >= %zu MiB):\n",
           min_total >> 20);
    printf("  %-26s %-5s %10s %10s %9s %8s\n", "shape", "dtype", "MB/call", "p50 us", "GB/s",
           "% of bw");
    double q8_rate = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            const int64_t N = shapes[s].n, K = shapes[s].k;
            const size_t bytes = xs_dtype_row_bytes(types[t], K) * (size_t)N;
            int copies = (int)((min_total + bytes - 1) / bytes);
            if (copies < 2) copies = 2;
            uint8_t *w = NULL;
            if (posix_memalign((void **)&w, 64, bytes * (size_t)copies) != 0) {
                fprintf(stderr, "xswarm bench ops: out of memory for %s\n", shapes[s].what);
                return 1;
            }
            fill_weight(w, types[t], N, K);
            for (int c = 1; c < copies; c++) memcpy(w + bytes * (size_t)c, w, bytes);
            float *x = malloc(sizeof(float) * (size_t)K), *y = malloc(sizeof(float) * (size_t)N);
            for (int64_t i = 0; i < K; i++) x[i] = (float)(i % 7) * 0.1f - 0.3f;
            xs_tensor xt = xs_tensor_2d(XS_F32, x, 1, K), yt = xs_tensor_2d(XS_F32, y, 1, N);
            int64_t ws[2] = {N, K};
            /* ~0.5 s of calls per line, at least 2 rounds over the copies */
            int calls = (int)(0.5 * bw * 1e9 / (double)bytes);
            if (quick) calls /= 3;
            if (calls < 2 * copies) calls = 2 * copies;
            if (calls > 400) calls = 400;
            double *ts = malloc(sizeof(double) * (size_t)calls);
            xs_status rc = XS_OK;
            for (int i = -copies; i < calls && rc == XS_OK; i++) { /* first round warms up */
                int c = (i + copies) % copies;
                xs_tensor wt = xs_tensor_make(types[t], 2, ws, w + bytes * (size_t)c);
                double t0 = xs_now_seconds();
                rc = xs_op_matmul(be, &yt, &xt, &wt, NULL);
                if (i >= 0) ts[i] = xs_now_seconds() - t0;
            }
            if (rc != XS_OK) {
                free(ts), free(x), free(y), free(w);
                return cli_fail("bench ops: matmul");
            }
            qsort(ts, (size_t)calls, sizeof *ts, cmp_double);
            double p50 = ts[calls / 2], rate = (double)bytes / p50 / 1e9;
            printf("  %-26s %-5s %10.1f %10.1f %9.2f %7.0f%%\n", shapes[s].what,
                   xs_dtype_name(types[t]), (double)bytes / 1e6, p50 * 1e6, rate,
                   100.0 * rate / bw);
            if (types[t] == XS_Q8_0 && s == 1) q8_rate = rate;
            fflush(stdout);
            free(ts), free(x), free(y), free(w);
        }
    }
    /* The LM step floor: ~7.5e9 parameters, Q8_0 = 34 bytes per 32 weights. */
    const double step_bytes = 7.5e9 * 34.0 / 32.0;
    printf("  7B Q8_0 step: %.2f GB of weights -> floor %.0f ms at %.2f GB/s", step_bytes / 1e9,
           step_bytes / (bw * 1e9) * 1e3, bw);
    if (q8_rate > 0) printf("; at the q8_0 GEMV rate above: %.0f ms", step_bytes / (q8_rate * 1e9) * 1e3);
    printf("\n");
    return 0;
}

typedef struct conv_shape {
    const char *what;
    bool transposed;
    int64_t cin, cout, k, tin;
    int stride, groups;
} conv_shape;

static int bench_conv(xs_backend *be, bool quick) {
    /* Mimi SEANet for one 80 ms frame (1920 samples), causal padding included. */
    const conv_shape shapes[] = {
        {"enc in 1->64 k7", false, 1, 64, 7, 1926, 1, 1},
        {"enc res 64->32 k3", false, 64, 32, 3, 1922, 1, 1},
        {"enc res 32->64 k1", false, 32, 64, 1, 1920, 1, 1},
        {"enc down 64->128 k16 s8", false, 64, 128, 16, 1928, 8, 1},
        {"enc down 128->256 k12 s6", false, 128, 256, 12, 246, 6, 1},
        {"enc down 256->512 k10 s5", false, 256, 512, 10, 45, 5, 1},
        {"enc down 512->1024 k8 s4", false, 512, 1024, 8, 12, 4, 1},
        {"enc out 1024->512 k3", false, 1024, 512, 3, 4, 1, 1},
        {"dec in 512->1024 k7", false, 512, 1024, 7, 8, 1, 1},
        {"dec upsample dw 512 k4 s2", true, 512, 512, 4, 1, 2, 512},
        {"dec up 1024->512 k16 s8", true, 1024, 512, 16, 2, 8, 1},
        {"dec up 512->256 k12 s6", true, 512, 256, 12, 8, 6, 1},
        {"dec up 256->128 k10 s5", true, 256, 128, 10, 48, 5, 1},
        {"dec up 128->64 k8 s4", true, 128, 64, 8, 240, 4, 1},
        {"dec out 64->1 k7", false, 64, 1, 7, 1926, 1, 1},
    };
    printf("\nconv (Mimi SEANet, one 80 ms frame):\n");
    printf("  %-28s %10s %10s\n", "layer", "p50 us", "GFLOP/s");
    double total = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const conv_shape *c = &shapes[s];
        int64_t tout = c->transposed ? (c->tin - 1) * c->stride + c->k
                                     : (c->tin - c->k) / c->stride + 1;
        int64_t wn = c->transposed ? c->cin * (c->cout / c->groups) * c->k
                                   : c->cout * (c->cin / c->groups) * c->k;
        float *x = malloc(sizeof(float) * (size_t)(c->cin * c->tin));
        float *w = malloc(sizeof(float) * (size_t)wn);
        float *b = malloc(sizeof(float) * (size_t)c->cout);
        float *y = malloc(sizeof(float) * (size_t)(c->cout * tout));
        for (int64_t i = 0; i < c->cin * c->tin; i++) x[i] = (float)(i % 11) * 0.1f - 0.5f;
        for (int64_t i = 0; i < wn; i++) w[i] = (float)(i % 5) * 0.01f - 0.02f;
        for (int64_t i = 0; i < c->cout; i++) b[i] = 0.1f;
        xs_tensor xt = xs_tensor_2d(XS_F32, x, c->cin, c->tin);
        xs_tensor wt = c->transposed ? xs_tensor_3d(XS_F32, w, c->cin, c->cout / c->groups, c->k)
                                     : xs_tensor_3d(XS_F32, w, c->cout, c->cin / c->groups, c->k);
        xs_tensor bt = xs_tensor_1d(XS_F32, b, c->cout), yt = xs_tensor_2d(XS_F32, y, c->cout, tout);
        int reps = quick ? 20 : 60;
        double ts[60];
        xs_status rc = XS_OK;
        for (int i = -3; i < reps && rc == XS_OK; i++) {
            double t0 = xs_now_seconds();
            rc = c->transposed ? xs_op_conv_transpose1d(be, &yt, &xt, &wt, &bt, c->stride, c->groups)
                               : xs_op_conv1d(be, &yt, &xt, &wt, &bt, c->stride, 1, c->groups);
            if (i >= 0) ts[i] = xs_now_seconds() - t0;
        }
        free(x), free(w), free(b), free(y);
        if (rc != XS_OK) return cli_fail("bench ops: conv");
        qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
        double flops = 2.0 * (double)c->cout * (double)(c->cin / c->groups) * (double)c->k *
                       (double)(c->transposed ? c->tin : tout);
        if (c->transposed) flops = 2.0 * (double)c->cin * (double)(c->cout / c->groups) *
                                   (double)c->k * (double)c->tin;
        printf("  %-28s %10.1f %10.2f\n", c->what, ts[reps / 2] * 1e6, flops / ts[reps / 2] / 1e9);
        total += ts[reps / 2];
    }
    printf("  SEANet convs of one frame (encoder + decoder): %.2f ms of the 80 ms budget\n",
           total * 1e3);
    return 0;
}

/* One query against a full ring KV cache (one layer of a step): the cache
 * is read once, so report GB/s of K + V against the bandwidth. */
static int bench_attention(xs_backend *be, double bw, bool quick) {
    const struct { const char *what; int64_t cap, heads, dim; } shapes[] = {
        {"7B layer, ctx 3000, 32x128", 3000, 32, 128},
        {"mimi layer, ctx 250, 8x64", 250, 8, 64},
        {"depformer, ctx 8, 16x64", 8, 16, 64},
    };
    printf("\nattention, 1 query over a full ring KV cache (f32 K and V):\n");
    printf("  %-28s %10s %10s %9s %8s\n", "shape", "MB/call", "p50 us", "GB/s", "% of bw");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t cap = shapes[s].cap, hd = shapes[s].heads * shapes[s].dim;
        xs_kv_cache kv;
        if (xs_kv_cache_alloc(be, cap, hd, &kv) != XS_OK) return cli_fail("bench ops: kv cache");
        float *k = kv.k.data, *v = kv.v.data;
        int32_t *cp = kv.pos.data;
        for (int64_t i = 0; i < cap * hd; i++) {
            k[i] = (float)(mix((uint64_t)i) >> 40) * 0x1.0p-24f - 0.5f;
            v[i] = (float)(mix((uint64_t)i + 7) >> 40) * 0x1.0p-24f - 0.5f;
        }
        const int32_t last = (int32_t)(2 * cap + 5);
        for (int64_t sl = 0; sl < cap; sl++) cp[sl] = last - (int32_t)(((last - sl) % cap + cap) % cap);
        float *q = malloc(sizeof(float) * (size_t)hd), *y = malloc(sizeof(float) * (size_t)hd);
        for (int64_t i = 0; i < hd; i++) q[i] = (float)(i % 9) * 0.1f - 0.4f;
        xs_tensor qt = xs_tensor_2d(XS_F32, q, 1, hd), yt = xs_tensor_2d(XS_F32, y, 1, hd);
        xs_tensor pt = xs_tensor_1d(XS_I32, (void *)&last, 1);
        const int reps = quick ? 20 : 60;
        double ts[60];
        xs_status rc = XS_OK;
        for (int i = -3; i < reps && rc == XS_OK; i++) {
            double t0 = xs_now_seconds();
            rc = xs_op_attention(be, &yt, &qt, &kv, &pt, (int)shapes[s].heads, cap,
                                 1.0f / sqrtf((float)shapes[s].dim));
            if (i >= 0) ts[i] = xs_now_seconds() - t0;
        }
        free(q), free(y);
        xs_kv_cache_free(be, &kv);
        if (rc != XS_OK) return cli_fail("bench ops: attention");
        qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
        double bytes = 2.0 * (double)cap * (double)hd * 4.0, p50 = ts[reps / 2];
        printf("  %-28s %10.2f %10.1f %9.2f %7.0f%%\n", shapes[s].what, bytes / 1e6, p50 * 1e6,
               bytes / p50 / 1e9, 100.0 * bytes / p50 / 1e9 / bw);
    }
    return 0;
}

static void usage(void) {
    printf("usage: xswarm bench ops [--threads N] [--quick] [--membw-mib N] [--skip-gemv] "
           "[--skip-conv] [--skip-attention]\n"
           "Measures memory read bandwidth and the sgemm rate, then times the cpu backend's\n"
           "GEMV per weight dtype at Moshi 7B shapes (GB/s and %% of the bandwidth), Mimi's\n"
           "SEANet convolutions for one 80 ms frame, and attention over a full KV ring.\n"
           "--quick: smaller buffers, fewer calls.\n");
}

int cmd_bench_ops(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        usage();
        return 0;
    }
    cli_common com = {.backend = "cpu", .threads = 0};
    bool quick = false, skip_gemv = false, skip_conv = false, skip_attn = false;
    long mib = 1024;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_parse(&com, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--skip-gemv")) skip_gemv = true;
        else if (!strcmp(argv[i], "--skip-conv")) skip_conv = true;
        else if (!strcmp(argv[i], "--skip-attention")) skip_attn = true;
        else if (!strcmp(argv[i], "--membw-mib") && i + 1 < argc) {
            mib = strtol(argv[++i], NULL, 10);
            if (mib < 1 || mib > 65536) {
                fprintf(stderr, "xswarm bench ops: --membw-mib must be in 1..65536\n");
                return 2;
            }
        } else {
            fprintf(stderr, "xswarm bench ops: unknown option '%s'\n", argv[i]);
            usage();
            return 2;
        }
    }
    if (quick && mib == 1024) mib = 256;
    xs_backend *be = cli_backend_open(&com);
    if (!be) return 1;
    if (strcmp(be->iface->name, "cpu")) {
        fprintf(stderr, "xswarm bench ops: only the cpu backend is benchmarked here (got %s)\n",
                be->iface->name);
        xs_backend_close(be);
        return 2;
    }
    const cpu_ctx *cc = be->ctx;
    char model[256];
    cpu_model(model, sizeof model);
    printf("machine: %s, %d threads, kernels %s\n", model, be->n_threads, cpu_isa_name(cc->isa));

    double bw = 0, gf = 0;
    if (xs_membw_read(be->n_threads, (size_t)mib << 20, quick ? 3 : 5, &bw) != XS_OK) {
        xs_backend_close(be);
        return cli_fail("bench ops: memory bandwidth");
    }
    printf("memory read bandwidth: %.2f GB/s (%ld MiB buffer, %d threads, best of %d)\n", bw, mib,
           be->n_threads, quick ? 3 : 5);
    if (xs_sgemm_rate(be->n_threads, 256, 1024, 1024, quick ? 2 : 5, &gf) != XS_OK) {
        xs_backend_close(be);
        return cli_fail("bench ops: sgemm rate");
    }
    printf("sgemm (cpu matmul, f32 weights, M=256 N=1024 K=1024): %.1f GFLOP/s\n", gf);
    int rc = 0;
    if (!skip_gemv) rc = bench_gemv(be, bw, quick);
    if (!rc && !skip_conv) rc = bench_conv(be, quick);
    if (!rc && !skip_attn) rc = bench_attention(be, bw, quick);
    xs_backend_close(be);
    return rc;
}
