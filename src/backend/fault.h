/*
 * fault.h — the single hook where fault injection (XSWARM_FAULT=backend:op)
 * will plant a known bug into the output of one op of one backend.
 *
 * Every xs_op_* wrapper in ops.c calls xs_fault_after() once, right after the
 * op ran successfully, with the tensor the op wrote (for kv_store: the cache's
 * k tensor). For now it does nothing; the fault-injection engineer replaces
 * this body (it may become a real function in src/diag or src/backend).
 */
#ifndef XS_BACKEND_FAULT_H
#define XS_BACKEND_FAULT_H

#include "backend/backend.h"

static inline void xs_fault_after(xs_backend *be, xs_op op, xs_tensor *y) {
    (void)be;
    (void)op;
    (void)y;
}

#endif
