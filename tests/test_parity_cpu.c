/*
 * test_parity_cpu.c — every op of the cpu backend against ref on random
 * inputs (small odd sizes, strided views, and the real Mimi / Moshi 7B
 * shapes, a few rows each). The seed is printed with every failure;
 * XSWARM_PARITY_SEED=N reruns with another one.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "diag/parity.h"
#include "testutil.h"

static void run_set(const char *label, int threads, bool real) {
    xs_backend *ref = NULL, *cpu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    CHECK(xs_backend_open("cpu", threads, &cpu) == XS_OK, "open cpu (%d threads)", threads);
    if (!ref || !cpu) return;
    int pass = 0, fail = 0;
    printf("== %s (cpu threads %d)\n", label, threads);
    xs_status rc = xs_parity_run(ref, cpu, NULL, real, stdout, &pass, &fail);
    CHECK(rc == XS_OK, "%s: harness failed: %s", label, xs_error_msg());
    CHECK(fail == 0, "%s: %d of %d parity cases failed", label, fail, pass + fail);
    CHECK(pass > (real ? 100 : 60), "%s: only %d cases ran", label, pass);
    xs_backend_close(cpu);
    xs_backend_close(ref);
}

/* A deliberately broken backend: the harness must catch it. gelu is off by
 * 1e-3 in one element; softmax leaves NaN in its last element. */
static const xs_backend_iface *g_cpu_iface;
static xs_status broken_gelu(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    xs_status rc = g_cpu_iface->gelu(be, y, x);
    ((float *)y->data)[1] += 1e-3f;
    return rc;
}
static xs_status broken_softmax(xs_backend *be, xs_tensor *y, const xs_tensor *x) {
    xs_status rc = g_cpu_iface->softmax(be, y, x);
    ((float *)y->data)[xs_tensor_numel(y) - 1] = NAN;
    return rc;
}

static void check_harness_catches_bugs(void) {
    xs_backend *ref = NULL, *cpu = NULL;
    if (xs_backend_open("ref", 1, &ref) != XS_OK || xs_backend_open("cpu", 2, &cpu) != XS_OK) {
        CHECK(0, "open backends");
        return;
    }
    g_cpu_iface = cpu->iface;
    xs_backend_iface broken = *cpu->iface;
    broken.gelu = broken_gelu;
    broken.softmax = broken_softmax;
    cpu->iface = &broken;
    int pass = 0, fail = 0;
    xs_parity_run(ref, cpu, "gelu,softmax,add", false, NULL, &pass, &fail);
    CHECK(fail == 5 && pass == 4, "broken gelu/softmax: %d failed (want 5), %d passed (want 4)",
          fail, pass);
    cpu->iface = g_cpu_iface;
    xs_backend_close(cpu);
    xs_backend_close(ref);
}

int main(void) {
    check_harness_catches_bugs();
    run_set("small and real shapes", 2, true);
    run_set("small shapes, odd thread count", 3, false);
    /* Every kernel twin this CPU can run (XSWARM_CPU_ISA lowers the choice
     * when the backend opens). */
    const char *isas[] = {"generic", "avx2"};
    for (int i = 0; i < 2; i++) {
        setenv("XSWARM_CPU_ISA", isas[i], 1);
        char label[64];
        snprintf(label, sizeof label, "small shapes, %s kernels", isas[i]);
        run_set(label, 2, false);
    }
    unsetenv("XSWARM_CPU_ISA");
    /* A filter selects by op and dtype. */
    xs_backend *ref = NULL, *cpu = NULL;
    if (xs_backend_open("ref", 1, &ref) == XS_OK && xs_backend_open("cpu", 2, &cpu) == XS_OK) {
        int pass = 0, fail = 0;
        xs_parity_run(ref, cpu, "matmul/q4_0,argmax", false, NULL, &pass, &fail);
        CHECK(pass == 5 && fail == 0, "filter: %d passed %d failed, expected 5 / 0", pass, fail);
    }
    xs_backend_close(cpu);
    xs_backend_close(ref);
    return test_summary("test_parity_cpu");
}
