/*
 * test_fault_inject.c — XSWARM_FAULT machinery (backend/fault.h): a fault
 * on cpu:<op> corrupts exactly one lane per row of that op's output on cpu
 * (also when cpu falls back to ref), never on ref, never another op;
 * @step=N spares the first N calls, @until=M the calls from M on; bad
 * specs are refused; disarming
 * restores exact results.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/fault.h"
#include "backend/ops.h"
#include "core/status.h"
#include "testutil.h"

enum { R = 5, D = 37 };

/* elu of the same input on ref and cpu; returns lanes that differ (per row in rows_bad). */
static int elu_diff(xs_backend *ref, xs_backend *cpu, const float *x, int *rows_bad, int *lane) {
    float yr[R * D], yc[R * D], xin[R * D];
    memcpy(xin, x, sizeof xin);
    xs_tensor tx = xs_tensor_2d(XS_F32, xin, R, D);
    xs_tensor tr = xs_tensor_2d(XS_F32, yr, R, D), tc = xs_tensor_2d(XS_F32, yc, R, D);
    CHECK(xs_op_elu(ref, &tr, &tx, 1.0f) == XS_OK, "elu on ref: %s", xs_error_msg());
    CHECK(xs_op_elu(cpu, &tc, &tx, 1.0f) == XS_OK, "elu on cpu: %s", xs_error_msg());
    int n = 0;
    *rows_bad = 0;
    for (int r = 0; r < R; r++) {
        int bad = 0;
        for (int i = 0; i < D; i++)
            if (fabsf(yr[r * D + i] - yc[r * D + i]) > 1e-5f) {
                bad++;
                *lane = i;
            }
        n += bad;
        *rows_bad += bad > 0;
    }
    return n;
}

int main(void) {
    xs_backend *ref = NULL, *cpu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    CHECK(xs_backend_open("cpu", 1, &cpu) == XS_OK, "open cpu");
    if (!ref || !cpu) return test_summary("fault_inject");
    float x[R * D];
    test_fill_uniform(x, R * D, 7, -2.0f, 2.0f);
    int rows = 0, lane = -1;

    /* bad specs are refused and arm nothing */
    const char *bad[] = {"cpu",           ":elu",           "cpu:",
                         "cpu:nosuch",    "cpu:elu@step=",  "cpu:elu@step=-1",
                         "cpu:elu@when=3", "cpu:elu@step=3x", "cpu:elu@step=5@until=5"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK(xs_fault_configure(bad[i]) == XS_ERR_ARG, "spec '%s' accepted", bad[i]);
        CHECK(!xs_fault_active(), "spec '%s' armed a fault", bad[i]);
    }
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == 0, "no fault: cpu elu differs from ref");

    /* cpu:elu: one lane (D/3) of every row */
    CHECK(xs_fault_configure("cpu:elu") == XS_OK, "configure cpu:elu");
    CHECK(xs_fault_active(), "cpu:elu not active");
    char d[64];
    CHECK(!strcmp(xs_fault_describe(d, sizeof d), "cpu:elu"), "describe: %s", d);
    int n = elu_diff(ref, cpu, x, &rows, &lane);
    CHECK(n == R && rows == R && lane == D / 3, "cpu:elu: %d lanes in %d rows, lane %d", n, rows,
          lane);
    CHECK(xs_fault_hits() == 1, "hits %lld", (long long)xs_fault_hits());

    /* another op on cpu is untouched */
    {
        float y1[R * D], y2[R * D];
        xs_tensor tx = xs_tensor_2d(XS_F32, x, R, D);
        xs_tensor a = xs_tensor_2d(XS_F32, y1, R, D), b = xs_tensor_2d(XS_F32, y2, R, D);
        CHECK(xs_op_gelu(ref, &a, &tx) == XS_OK && xs_op_gelu(cpu, &b, &tx) == XS_OK, "gelu");
        CHECK(test_max_abs_diff(y1, y2, R * D) < 1e-5, "cpu:elu fault changed gelu");
    }

    /* ref:elu corrupts ref, not cpu */
    CHECK(xs_fault_configure("ref:elu") == XS_OK, "configure ref:elu");
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == R, "ref:elu: not one lane per row");

    /* @step=2: calls 0 and 1 are exact, call 2 on is corrupted */
    CHECK(xs_fault_configure("cpu:elu@step=2") == XS_OK, "configure @step=2");
    CHECK(!strcmp(xs_fault_describe(d, sizeof d), "cpu:elu@step=2"), "describe: %s", d);
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == 0, "@step=2: call 0 corrupted");
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == 0, "@step=2: call 1 corrupted");
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == R, "@step=2: call 2 not corrupted");

    /* @step=1@until=2: only call 1 (a transient glitch) */
    CHECK(xs_fault_configure("cpu:elu@step=1@until=2") == XS_OK, "configure @until");
    CHECK(!strcmp(xs_fault_describe(d, sizeof d), "cpu:elu@step=1@until=2"), "describe: %s", d);
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == 0, "@until: call 0 corrupted");
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == R, "@until: call 1 not corrupted");
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == 0, "@until: call 2 corrupted");

    /* strided in-place output (rope on a view) stays inside the view */
    {
        CHECK(xs_fault_configure("cpu:rope") == XS_OK, "configure cpu:rope");
        enum { T = 3, H = 2, HD = 8 };
        float buf[T * H * HD * 2], keep[T * H * HD * 2];
        test_fill_uniform(buf, T * H * HD * 2, 3, -1, 1);
        memcpy(keep, buf, sizeof buf);
        int32_t pos[T] = {0, 1, 2};
        xs_tensor whole = xs_tensor_3d(XS_F32, buf, T, H, 2 * HD);
        xs_tensor v = xs_tensor_slice(&whole, 2, 0, HD); /* strided [T, H, HD] */
        xs_tensor tp = xs_tensor_1d(XS_I32, pos, T);
        CHECK(xs_op_rope(cpu, &v, &tp, 10000.0f) == XS_OK, "rope: %s", xs_error_msg());
        int outside = 0;
        for (int i = 0; i < T * H; i++)
            for (int j = HD; j < 2 * HD; j++)
                outside += buf[i * 2 * HD + j] != keep[i * 2 * HD + j];
        CHECK(outside == 0, "rope fault wrote %d values outside the view", outside);
        CHECK(xs_fault_hits() == 1, "rope fault not applied");
    }

    /* disarmed: exact again */
    CHECK(xs_fault_configure(NULL) == XS_OK && !xs_fault_active(), "disarm");
    CHECK(elu_diff(ref, cpu, x, &rows, &lane) == 0, "disarmed: cpu elu still differs");
    xs_backend_close(cpu);
    xs_backend_close(ref);
    return test_summary("fault_inject");
}
