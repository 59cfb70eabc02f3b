/*
 * fault.h — fault injection: XSWARM_FAULT=<backend>:<op>[@step=N] plants a
 * known, subtle bug into the output of one op of one backend, so that
 * `xswarm diagnose` (and its tests) can prove it finds backend bugs and
 * names the op.
 *
 * Every xs_op_* wrapper in ops.c calls xs_fault_after() once, right after
 * the op ran (also when a host backend fell back to `ref`: the hook sees
 * the backend the model asked for), with the tensor the op wrote.
 *
 * Cost when XSWARM_FAULT is unset: one relaxed load and one predictable
 * branch per op. The variable is read once, on the first op (or by
 * xs_fault_configure); when set, a banner goes to stderr.
 *
 * The corruption (fault.c): in every row of the output (innermost dim D),
 * lane D/3 gets its sign flipped plus a small offset (5% of the row's RMS +
 * 0.01) — like a kernel that mishandles one lane of one SIMD block. Device
 * backends: download, modify, upload (only while a fault is armed).
 * @step=N: only calls N, N+1, ... of that op on that backend (0-based) are
 * corrupted: a bug that shows up late in a run. @until=M: calls from M on
 * are exact again (a transient glitch: no later op test reproduces it).
 * Options combine: cpu:matmul@step=300@until=320.
 */
#ifndef XS_BACKEND_FAULT_H
#define XS_BACKEND_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* 0: XSWARM_FAULT not read yet, 1: no fault, 2: a fault is armed. */
extern _Atomic int xs_fault_state_;

/* Slow path of the hook (reads the variable on first use). */
void xs_fault_apply(xs_backend *be, xs_op op, xs_tensor *y);

static inline void xs_fault_after(xs_backend *be, xs_op op, xs_tensor *y) {
    if (__builtin_expect(atomic_load_explicit(&xs_fault_state_, memory_order_relaxed) != 1, 0))
        xs_fault_apply(be, op, y);
}

/* Arm a fault from a spec like "cpu:matmul" or "cpu:elu@step=40@until=50" (NULL or
 * "": disarm). Replaces XSWARM_FAULT (which is then never read). Announces
 * on stderr. XS_ERR_ARG naming the problem for a bad spec (nothing armed).
 * Not meant to be called while ops run on other threads. */
xs_status xs_fault_configure(const char *spec);
/* Whether a fault is armed (reads XSWARM_FAULT if not done yet). */
bool xs_fault_active(void);
/* "cpu:matmul@step=40", or "" when none. */
const char *xs_fault_describe(char *buf, size_t n);
/* Calls corrupted so far (since the last configure). */
int64_t xs_fault_hits(void);

#endif
