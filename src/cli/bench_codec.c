/*
 * bench_codec.c — `xswarm bench codec`: per-frame Mimi encode and decode time
 * at the released model's sizes (random weights generated in memory, scaled
 * so activations stay O(1)), next to the floor measured in the same run:
 *   floor = max(weight bytes read per frame / memory bandwidth,
 *               FLOPs per frame / measured matmul FLOP rate).
 * Real time means encode + decode of one 80 ms frame well under 80 ms.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/ops.h"
#include "cli/cli.h"
#include "backend/cuda_probe.h"
#include "diag/membw.h"
#include "model/mimi.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    int i = (int)ceil(p / 100.0 * n) - 1;
    return v[i < 0 ? 0 : (i >= n ? n - 1 : i)];
}

/* FLOPs of one frame, from the config (2 per multiply-add). */
typedef struct cost {
    double enc_flops, dec_flops;
} cost;

static cost frame_cost(const mimi_config *c) {
    cost k = {0, 0};
    double T = mimi_frame_samples(c), nf = c->n_filters, D = c->dimension;
    double rk = c->residual_kernel_size, cp = c->compress;
    /* encoder SEANet */
    double ch = nf;
    k.enc_flops += 2 * nf * c->channels * c->kernel_size * T;
    for (int i = c->n_ratios - 1; i >= 0; i--) {
        double r = c->ratios[i];
        k.enc_flops +=
            c->n_residual_layers * (2 * (ch / cp) * ch * rk * T + 2 * ch * (ch / cp) * T);
        T /= r;
        k.enc_flops += 2 * (2 * ch) * ch * (2 * r) * T;
        ch *= 2;
    }
    k.enc_flops += 2 * D * ch * c->last_kernel_size * T;
    /* decoder SEANet mirrors it */
    double Td = T;
    k.dec_flops += 2 * ch * D * c->kernel_size * Td;
    for (int i = 0; i < c->n_ratios; i++) {
        double r = c->ratios[i];
        k.dec_flops += 2 * ch * (ch / 2) * (2 * r) * Td;
        Td *= r;
        ch /= 2;
        k.dec_flops +=
            c->n_residual_layers * (2 * (ch / cp) * ch * rk * Td + 2 * ch * (ch / cp) * Td);
    }
    k.dec_flops += 2 * c->channels * ch * c->last_kernel_size * Td;
    /* transformers: T positions at 25 Hz, full context for attention */
    double P = T, F = c->dim_feedforward;
    double tr = c->num_layers * (P * (2 * 4 * D * D + 2 * 2 * D * F) + 2 * 2 * P * c->context * D);
    k.enc_flops += tr;
    k.dec_flops += tr;
    double ds = mimi_downsample_stride(c);
    k.enc_flops += 2 * D * D * 2 * ds;          /* downsample, one output */
    k.dec_flops += 2 * D * 2 * ds;              /* depthwise upsample */
    double Q = c->q_dimension, K = c->num_codebooks;
    k.enc_flops += 2 * 2 * Q * D + K * 2 * c->bins * Q;
    k.dec_flops += 2 * 2 * Q * D;
    return k;
}

static void synth_speech(float *x, int64_t n) {
    /* voiced-like harmonics with a syllable envelope plus a little noise */
    uint64_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        double t = i / 24000.0, f0 = 120 + 30 * sin(2 * M_PI * 0.7 * t);
        double env = 0.5 + 0.5 * sin(2 * M_PI * 4.0 * t);
        double v = 0;
        for (int h = 1; h <= 8; h++) v += sin(2 * M_PI * f0 * h * t) / h;
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double noise = ((double)(s >> 11) * 0x1.0p-53 - 0.5) * 0.02;
        x[i] = (float)(0.2 * env * v + noise);
    }
}

int cmd_bench_codec(int argc, char **argv) {
    cli_common common = {0};
    int frames = 50, warm = 3;
    const char *config = NULL;
    bool bf16 = false, json = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_parse(&common, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: xswarm bench codec [--frames N] [--threads N] [--backend ref|cpu|cuda]\n"
                   "                          [--mimi-config FILE] [--bf16] [--json]\n"
                   "Mimi per-frame encode and decode time (p50/p99) at the released model's\n"
                   "sizes with random weights, the real-time factor (80 ms / time) and the floor\n"
                   "max(weight bytes / bandwidth, FLOPs / matmul FLOP rate) measured in the same\n"
                   "run. Default backend cpu, 50 frames. --bf16: matmul weights (transformers,\n"
                   "deep convs) in bf16 (178 MB read per frame instead of 334 MB).\n");
            return 0;
        }
        if (!strcmp(argv[i], "--bf16")) {
            bf16 = true;
            continue;
        }
        if (!strcmp(argv[i], "--json")) {
            json = true;
            continue;
        }
        if ((!strcmp(argv[i], "--frames") || !strcmp(argv[i], "--mimi-config")) && i + 1 < argc) {
            if (!strcmp(argv[i], "--frames")) {
                frames = atoi(argv[++i]);
                if (frames < 1 || frames > 100000) {
                    fprintf(stderr, "xswarm bench codec: --frames must be 1..100000\n");
                    return 2;
                }
            } else {
                config = argv[++i];
            }
            continue;
        }
        fprintf(stderr, "xswarm bench codec: unknown option '%s' (try --help)\n", argv[i]);
        return 2;
    }
    if (!common.backend) common.backend = "cpu";
    mimi_config cfg;
    mimi_config_preset(&cfg);
    if (config && mimi_config_load(config, &cfg) != XS_OK) return cli_fail("bench codec");
    cfg.matmul_bf16 = bf16;
    xs_backend *be = cli_backend_open(&common);
    if (!be) return 1;
    uint64_t seed = 42;
    mimi_model *m = NULL;
    mimi_stream *s = NULL;
    double t0 = now_ms();
    if (mimi_model_load_from(be, &cfg, mimi_random_source, &seed, &m) != XS_OK ||
        mimi_stream_new(m, &s) != XS_OK) {
        xs_backend_close(be);
        return cli_fail("bench codec: cannot build the model");
    }
    double load_ms = now_ms() - t0;
    int FS = mimi_frame_samples(&cfg), K = cfg.num_codebooks;
    int total = frames + warm;
    float *x = malloc((size_t)total * FS * sizeof *x), *y = malloc((size_t)FS * sizeof *y);
    int32_t *codes = malloc((size_t)total * K * sizeof *codes);
    double *te = malloc((size_t)frames * sizeof *te), *td = malloc((size_t)frames * sizeof *td);
    double *tt = malloc((size_t)frames * sizeof *tt);
    synth_speech(x, (int64_t)total * FS);
    int rc = 0;
    for (int f = 0; f < total && rc == 0; f++) {
        double a = now_ms();
        if (mimi_encode(s, x + (int64_t)f * FS, FS, K, codes + f * K) != XS_OK) rc = 1;
        double b = now_ms();
        if (rc == 0 && mimi_decode(s, codes + f * K, 1, K, y) != XS_OK) rc = 1;
        double c = now_ms();
        if (f >= warm) {
            te[f - warm] = b - a;
            td[f - warm] = c - b;
            tt[f - warm] = c - a;
        }
    }
    /* XSWARM_CUDA_PROF=1: a few more frames, each half behind a stall kernel so
     * its ops run back to back and the event pairs time kernels, not launch
     * latency (as `bench lm` does); p50 - busy = the GPU's idle time. */
    const char *prof = getenv("XSWARM_CUDA_PROF");
    if (rc == 0 && xs_backend_is_cuda(be) && prof && strcmp(prof, "0")) {
        const int pframes = 3;
        double busy_ms = 0;
        xs_status pst = xs_cuda_prof_begin(be);
        for (int f = 0; pst == XS_OK && f < pframes; f++) {
            pst = xs_cuda_stall(be, 20.0);
            if (pst == XS_OK) pst = mimi_encode(s, x + (int64_t)(f % total) * FS, FS, K, codes);
            if (pst == XS_OK) pst = xs_cuda_stall(be, 20.0);
            if (pst == XS_OK) pst = mimi_decode(s, codes, 1, K, y);
        }
        if (pst != XS_OK) fprintf(stderr, "bench codec: profile: %s\n", xs_error_msg());
        if (xs_cuda_prof_end(be, stdout, pframes, &busy_ms) != XS_OK)
            fprintf(stderr, "bench codec: profile: %s\n", xs_error_msg());
        else
            printf("  profile: GPU busy %.3f ms per frame (encode + decode)\n", busy_ms);
    }
    if (rc) {
        cli_fail("bench codec");
    } else {
        cost k = frame_cost(&cfg);
        /* floors measured now, with the same thread count (diag/membw.h); the
         * FLOP rate is sgemm's, the path the SEANet convolutions take */
        double bw = 0, gf = 0;
        int nt = be->n_threads > 0 ? be->n_threads : 1;
        const bool on_gpu = xs_backend_is_cuda(be);
        /* on a GPU: its own read bandwidth; no FLOP floor (sgemm's rate is
         * the CPU's), so the floor is the bandwidth one alone */
        xs_status fr = on_gpu ? xs_cuda_measure_bandwidth(be, &bw)
                              : xs_membw_read(nt, 0, 3, &bw);
        if (fr == XS_OK && !on_gpu) fr = xs_sgemm_rate(nt, 256, 512, 1024, 5, &gf);
        if (fr != XS_OK) fprintf(stderr, "bench codec: floor measurement failed: %s\n", xs_error_msg());
        if (bw <= 0) bw = 1e-9;
        if (gf <= 0) gf = 1e-9;
        /* every weight is read once per frame, except the codebooks past K */
        double bytes = (double)mimi_model_frame_bytes(m, K);
        double floor_bw = bytes / (bw * 1e9) * 1e3;
        double floor_fl = on_gpu ? 0 : (k.enc_flops + k.dec_flops) / (gf * 1e9) * 1e3;
        double floor_ms = floor_bw > floor_fl ? floor_bw : floor_fl;
        double e50 = pct(te, frames, 50), e99 = pct(te, frames, 99);
        double d50 = pct(td, frames, 50), d99 = pct(td, frames, 99);
        double t50 = pct(tt, frames, 50), t99 = pct(tt, frames, 99);
        int uniq = 0;
        for (int v = 0; v < cfg.bins; v++)
            for (int f = warm; f < total; f++)
                if (codes[f * K] == v) {
                    uniq++;
                    break;
                }
        if (json) {
            printf("{\"bench\":\"codec\",\"backend\":\"%s\",\"threads\":%d,\"frames\":%d,"
                   "\"weights\":\"%s\",\"params\":%lld,\"encode_p50_ms\":%.3f,"
                   "\"encode_p99_ms\":%.3f,\"decode_p50_ms\":%.3f,\"decode_p99_ms\":%.3f,"
                   "\"total_p50_ms\":%.3f,\"total_p99_ms\":%.3f,\"rtf\":%.3f,"
                   "\"weight_bytes\":%.0f,\"read_gbs\":%.2f,\"gflop_frame\":%.4f,"
                   "\"gflops\":%.2f,\"floor_ms\":%.3f,\"x_floor\":%.2f}\n",
                   be->iface->name, be->n_threads, frames, bf16 ? "bf16" : "f32",
                   (long long)mimi_model_params(m), e50, e99, d50, d99, t50, t99, 80.0 / t50,
                   bytes, bw, (k.enc_flops + k.dec_flops) / 1e9, gf, floor_ms, t50 / floor_ms);
            goto done;
        }
        printf("bench codec: Mimi %d filters, dim %d, %d layers, %d codebooks; %.1fM params "
               "(random, built in %.0f ms; transformer weights %s); backend %s, %d thread(s), "
               "%d frames\n",
               cfg.n_filters, cfg.dimension, cfg.num_layers, K, mimi_model_params(m) / 1e6,
               load_ms, bf16 ? "bf16" : "f32", be->iface->name, be->n_threads, frames);
        printf("  encode  p50 %8.2f ms  p99 %8.2f ms  (%.2f GFLOP/frame)\n", e50, e99,
               k.enc_flops / 1e9);
        printf("  decode  p50 %8.2f ms  p99 %8.2f ms  (%.2f GFLOP/frame)\n", d50, d99,
               k.dec_flops / 1e9);
        printf("  total   p50 %8.2f ms  p99 %8.2f ms  real-time factor %.2fx (80 ms / p50)\n",
               t50, t99, 80.0 / t50);
        printf("  floor   %.2f ms = max(%.0f MB weights / %.1f GB/s = %.2f ms, %.2f GFLOP / %.1f "
               "GFLOP/s = %.2f ms); p50 = %.1fx floor\n",
               floor_ms, bytes / 1e6, bw, floor_bw, (k.enc_flops + k.dec_flops) / 1e9, gf,
               floor_fl, t50 / floor_ms);
        printf("  codebook 0 used %d distinct codes over %d frames\n", uniq, frames);
    }
done:
    free(x);
    free(y);
    free(codes);
    free(te);
    free(td);
    free(tt);
    mimi_stream_free(s);
    mimi_model_free(m);
    xs_backend_close(be);
    return rc;
}
