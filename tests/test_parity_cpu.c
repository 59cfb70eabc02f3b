/*
 * test_parity_cpu.c — every op of the cpu backend against ref on random
 * inputs (small odd sizes, strided views, and the real Mimi / Moshi 7B
 * shapes, a few rows each). The seed is printed with every failure;
 * XSWARM_PARITY_SEED=N reruns with another one.
 */
#include <stdio.h>

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

int main(void) {
    run_set("small and real shapes", 2, true);
    run_set("small shapes, odd thread count", 3, false);
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
