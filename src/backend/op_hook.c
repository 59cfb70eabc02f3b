/* op_hook.c — the hook pointer of op_hook.h (NULL: no observer). */
#include "backend/op_hook.h"

xs_op_hook_fn xs_op_hook_ = NULL;
bool xs_op_hook_takes_fused_ = false;
