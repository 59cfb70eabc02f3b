/*
 * ref_backend.c — the `ref` backend: the oracle. Plain loops, double
 * accumulation, any input strides. Its ops live in ref_*.c (see ref.h).
 */
#include <stdlib.h>

#include "backend/host_memory.h"
#include "backend/ref/ref.h"

static void ref_destroy(xs_backend *be) { free(be); }

static const xs_backend_iface k_ref_iface = {
    .name = "ref",
    .host_memory = true,
    .destroy = ref_destroy,
    .alloc = xs_host_alloc,
    .free = xs_host_free,
    .upload = xs_host_upload,
    .download = xs_host_download,
    .synchronize = xs_host_synchronize,
    .matmul = ref_matmul,
    .conv1d = ref_conv1d,
    .conv_transpose1d = ref_conv_transpose1d,
    .layer_norm = ref_layer_norm,
    .rms_norm = ref_rms_norm,
    .rope = ref_rope,
    .softmax = ref_softmax,
    .kv_store = ref_kv_store,
    .attention = ref_attention,
    .elu = ref_elu,
    .gelu = ref_gelu,
    .silu_mul = ref_silu_mul,
    .embedding = ref_embedding,
    .add = ref_add,
    .mul = ref_mul,
    .scale = ref_scale,
    .copy = ref_copy,
    .fill = ref_fill,
    .argmax = ref_argmax,
    .sample_topk = ref_sample_topk,
};

xs_status xs_backend_ref_new(xs_backend **out) {
    xs_backend *be = calloc(1, sizeof *be);
    if (!be) return xs_error(XS_ERR_NOMEM, "ref backend: out of memory");
    be->iface = &k_ref_iface;
    be->n_threads = 1;
    *out = be;
    return XS_OK;
}
