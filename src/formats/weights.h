/*
 * weights.h — one opened model file (safetensors or GGUF), tensors by name.
 *
 * The file is mmapped read-only; tensor views point into the mapping (zero
 * copy) and stay valid until xs_weights_close(). Shapes are in PyTorch order
 * (outermost first) for both formats: GGUF's ggml order is reversed on load.
 */
#ifndef XS_FORMATS_WEIGHTS_H
#define XS_FORMATS_WEIGHTS_H

#include "core/tensor.h"

typedef struct xs_weights xs_weights;

typedef enum xs_layout {
    XS_LAYOUT_UNKNOWN = 0,
    XS_LAYOUT_PYTORCH,      /* Kyutai PyTorch LM names (depformer_in.{k}, linears.{k}, ...) */
    XS_LAYOUT_CANDLE,       /* Rust/candle LM names (depformer.{k}.linear_in, ...) */
    XS_LAYOUT_PYTORCH_INT8, /* PyTorch names, int8 *.weight + *.weight_scb f32 */
    XS_LAYOUT_MIMI          /* Mimi codec (encoder.*, decoder.*, quantizer.*) */
} xs_layout;

/* "unknown", "pytorch", "candle", "pytorch-int8", "mimi". */
const char *xs_layout_name(xs_layout l);

/* Open by content (GGUF magic, else safetensors). On error *out is unchanged
 * and the message names the file (and tensor / offset where relevant). */
xs_status xs_weights_open(const char *path, xs_weights **out);
void xs_weights_close(xs_weights *w);

const char *xs_weights_path(const xs_weights *w);
const char *xs_weights_format(const xs_weights *w); /* "safetensors" | "gguf" */
int xs_weights_count(const xs_weights *w);
const xs_tensor *xs_weights_at(const xs_weights *w, int i); /* NULL if out of range */
/* NULL when absent (no error set). Lookup is by name, never by position. */
const xs_tensor *xs_weights_find(const xs_weights *w, const char *name);
/* Like find, but sets an error naming the file, the tensor and the expected
 * shape/dtype when absent or mis-shaped. ndim 0 skips the shape check;
 * dtype -1 skips the dtype check. */
xs_status xs_weights_expect(const xs_weights *w, const char *name, int dtype, int ndim,
                            const int64_t *shape, const xs_tensor **out);
xs_layout xs_weights_layout(const xs_weights *w); /* detected from the names */

#endif
