/*
 * bench_gemv_kernels.c — compute ceiling of each dot kernel: one thread,
 * weights small enough to stay in L2, so the number is what the kernel can
 * chew, not what memory delivers. Usage: bench_gemv_kernels [K] [isa]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/quant.h"
#include "diag/membw.h"

int main(int argc, char **argv) {
    int64_t K = argc > 1 ? atoll(argv[1]) : 4096;
    cpu_isa best = cpu_isa_detect();
    const xs_dtype types[] = {XS_F32, XS_BF16, XS_F16, XS_Q8_0, XS_Q4_0};
    const int64_t N = 64;
    float *x = malloc(sizeof(float) * 4 * (size_t)K);
    for (int64_t i = 0; i < 4 * K; i++) x[i] = (float)(i % 7) * 0.1f;
    float *wf = malloc(sizeof(float) * (size_t)(N * K));
    for (int64_t i = 0; i < N * K; i++) wf[i] = (float)(i % 13) * 0.05f - 0.3f;
    printf("K=%lld, N=%lld rows in L2, 1 thread; GB/s of weights\n", (long long)K, (long long)N);
    printf("%-8s %-6s %8s %8s\n", "isa", "dtype", "nx=1", "nx=4");
    for (int isa = 0; isa <= (int)best; isa++) {
        cpu_kernels k = cpu_kernels_for((cpu_isa)isa);
        for (size_t t = 0; t < 5; t++) {
            size_t rb = xs_dtype_row_bytes(types[t], K);
            uint8_t *w = malloc(rb * (size_t)N);
            for (int64_t r = 0; r < N; r++) {
                uint8_t *d = w + rb * (size_t)r;
                const float *s = wf + r * K;
                if (types[t] == XS_F32) memcpy(d, s, rb);
                else if (types[t] == XS_BF16) for (int64_t i = 0; i < K; i++) ((uint16_t *)d)[i] = xs_f32_to_bf16(s[i]);
                else if (types[t] == XS_F16) for (int64_t i = 0; i < K; i++) ((uint16_t *)d)[i] = xs_f32_to_f16(s[i]);
                else if (types[t] == XS_Q8_0) xs_quantize_row_q8_0(s, (xs_block_q8_0 *)d, K);
                else xs_quantize_row_q4_0(s, (xs_block_q4_0 *)d, K);
            }
            double rate[2];
            for (int v = 0; v < 2; v++) {
                int nx = v ? 4 : 1;
                float y[4];
                double best_t = 1e9;
                for (int rep = 0; rep < 30; rep++) {
                    double t0 = xs_now_seconds();
                    for (int64_t r = 0; r < N; r++) k.dot[types[t]](w + rb * (size_t)r, x, K, nx, K, y);
                    double dt = xs_now_seconds() - t0;
                    if (dt < best_t) best_t = dt;
                }
                rate[v] = (double)rb * (double)N / best_t / 1e9;
            }
            printf("%-8s %-6s %8.1f %8.1f\n", cpu_isa_name((cpu_isa)isa), xs_dtype_name(types[t]), rate[0], rate[1]);
            free(w);
        }
    }
    return 0;
}
