/*
 * op_hook.h — an observer of every xs_op_* call (diagnose's op recorder,
 * diag/op_record.h). XS_DISPATCH in ops.c calls the hook twice per op when
 * one is installed: phase BEFORE (inputs intact: in-place ops such as rope
 * and kv_store have not overwritten them yet) and phase AFTER (the output is
 * final, fault injection included). The variadic part is exactly the
 * argument list the wrapper passes to the backend's op after `be` (see the
 * xs_backend_iface signatures; floats arrive promoted to double).
 *
 * Cost when no hook is installed: one load and one predictable branch per
 * phase. Install/remove only while no op runs on another thread.
 */
#ifndef XS_BACKEND_OP_HOOK_H
#define XS_BACKEND_OP_HOOK_H

#include "backend/backend.h"

enum { XS_OP_HOOK_BEFORE = 0, XS_OP_HOOK_AFTER = 1 };

typedef void (*xs_op_hook_fn)(xs_backend *be, xs_op op, int phase, ...);

extern xs_op_hook_fn xs_op_hook_;

/* Set by a hook that can take fused ops (backend.h XS_OP_FUSED_*; the
 * profiler): the fused wrappers (ops_fused.c) then still run fused and call
 * the hook with their own id and argument list (ops_fused.c says which).
 * Otherwise an installed hook makes them run their composition, so the hook
 * sees only the ops of XS_OP_COUNT. */
extern bool xs_op_hook_takes_fused_;

#define XS_OP_HOOK_CALL(be, op, phase, ...)                                    \
    do {                                                                       \
        if (__builtin_expect(xs_op_hook_ != NULL, 0))                          \
            xs_op_hook_((be), (op), (phase), __VA_ARGS__);                     \
    } while (0)

#endif
