/*
 * test_cpu_kernels.c — the cpu backend's element kernels, every ISA twin
 * this CPU can run: ELU over its whole range (series branch near 0, exp
 * branch below -0.5, the -30 clamp, -0, NaN) against expm1 in double, and
 * axpy against a plain loop, at lengths that are not SIMD multiples.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "testutil.h"

static void check_elu(cpu_isa isa) {
    cpu_kernels k = cpu_kernels_for(isa);
    const int64_t n = 20011;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) x[i] = -40.0f + 45.0f * (float)i / (float)(n - 1);
    /* values around the branch points and tiny magnitudes */
    x[0] = -0.5f, x[1] = nextafterf(-0.5f, 0), x[2] = -1e-7f, x[3] = -0.0f, x[4] = 1e-30f;
    x[5] = -30.0f, x[6] = -87.0f, x[7] = -1e-3f, x[8] = -0.25f, x[9] = NAN;
    const float alpha = 1.3f;
    k.elu(y, x, alpha, n);
    double worst = 0;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) continue;
        double want = x[i] > 0 ? (double)x[i] : (double)alpha * expm1((double)x[i]);
        double rel = fabs(y[i] - want) / fmax(fabs(want), 1e-30);
        if (!(rel <= worst)) worst = rel, worst_i = i;
    }
    CHECK(worst < 1e-6, "%s elu: worst relative error %.3g at x=%.9g (got %.9g)", cpu_isa_name(isa),
          worst, x[worst_i], y[worst_i]);
    CHECK(isnan(y[9]), "%s elu(NaN) = %g, want NaN", cpu_isa_name(isa), y[9]);
    CHECK(y[3] == 0.0f, "%s elu(-0) = %g", cpu_isa_name(isa), y[3]);
    /* in place, odd length */
    float z[7] = {-2, -1, -0.1f, 0, 0.5f, 3, -10}, want[7];
    for (int i = 0; i < 7; i++) want[i] = z[i] > 0 ? z[i] : (float)(expm1((double)z[i]));
    k.elu(z, z, 1.0f, 7);
    for (int i = 0; i < 7; i++)
        CHECK(fabsf(z[i] - want[i]) <= 2e-7f * fmaxf(1, fabsf(want[i])), "%s elu in place [%d]: %g vs %g",
              cpu_isa_name(isa), i, z[i], want[i]);
    free(x);
    free(y);
}

static void check_axpy(cpu_isa isa) {
    cpu_kernels k = cpu_kernels_for(isa);
    for (int64_t n = 1; n < 70; n += 3) {
        float x[80], y[80], want[80];
        test_fill_uniform(x, n, (uint64_t)n, -1, 1);
        test_fill_uniform(y, n, (uint64_t)n + 100, -1, 1);
        for (int64_t i = 0; i < n; i++) want[i] = y[i] + 0.75f * x[i];
        k.axpy(y, x, 0.75f, n);
        CHECK(test_max_abs_diff(want, y, n) < 1e-6, "%s axpy n=%lld", cpu_isa_name(isa), (long long)n);
    }
}

int main(void) {
    cpu_isa best = cpu_isa_detect();
    for (int isa = 0; isa <= (int)best; isa++) {
        check_elu((cpu_isa)isa);
        check_axpy((cpu_isa)isa);
    }
    return test_summary("test_cpu_kernels");
}
