/*
 * parity.c — the per-op parity suite (see parity.h).
 *
 * A case is one row of k_cases: the op, its weight dtype, whether it is a
 * real-model shape, op-specific sizes p[], layout flags and a tolerance.
 * Each op has one runner that builds identical inputs on both backends
 * (host data from a seeded splitmix64 generator, uploaded to each), runs
 * the op on each through the xs_op_* wrappers, and scores the outputs.
 *
 * The fused ops (ops.h: add + norm, embedding sum, Mimi's layer scale +
 * residual + norm, matmul + gelu, q|k|v matmul, conv input, overlap-add,
 * conv + skip) have cases too: a backend without the fused kernel (ref)
 * runs their composition, so `--backends ref,cuda` checks the kernels
 * against their definition, with the tolerance of the ops they fuse.
 *
 * Tolerances (nmse), and why:
 *   1e-12  ops that are exact or one f32 rounding away from ref's f64
 *          (add, mul, scale, copy, fill, embedding: conversions are exact)
 *   1e-10  element-wise transcendental and per-row reductions (elu, gelu,
 *          silu_mul, norms, softmax, rope): a few ulp of f32 libm / f32
 *          partial sums over <= 32000 values give nmse ~1e-14
 *   1e-9   dot-product ops (matmul for every weight dtype, conv,
 *          attention): f32 accumulation over K <= 11264 terms, blocked
 *          sgemm; weights are converted exactly (q8_0/q4_0 as d*q rounded
 *          once like ref's dequantizer) and activations stay f32, so the
 *          quantized paths need no looser tolerance
 *   exact  argmax, sample_topk, kv_store positions
 */
#include "diag/parity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "core/quant.h"

/* ---- the cases ------------------------------------------------------------- */

enum {
    PC_BIAS = 1,     /* matmul/conv: with bias; layer_norm: with b */
    PC_XT = 2,       /* input is a transposed view */
    PC_XS = 4,       /* input is a sliced view (row stride > row length) */
    PC_ALIAS = 8,    /* output aliases the input */
    PC_BCAST = 16,   /* add/mul: b is one row broadcast over a */
    PC_YS = 32,      /* copy: y is a column slice of a bigger tensor (concatenation) */
    PC_LN = 64,      /* add_norm: layer norm (else rms) */
    PC_NONORM = 128, /* add_scaled_norm: no norm after the residual */
};

typedef struct pcase {
    xs_op op;
    xs_dtype wt; /* weight/table dtype (matmul, embedding), i32 for copy, cache dtype
                    (kv_store, attention: f32, bf16 or q8_0); else f32 */
    bool real;
    const char *what;
    int64_t p[8];
    int flags;
    double tol;
} pcase;

#define TOL_EXACT 0.0
#define TOL_EW 1e-12
#define TOL_ROW 1e-10
#define TOL_DOT 1e-9

/* Matmul for every weight dtype: the same shapes, K a multiple of 32 where
 * quantized. */
#define MM_ALL(real, what, M, N, K, flags)                                     \
    {XS_OP_MATMUL, XS_F32, real, what, {M, N, K}, flags, TOL_DOT},             \
    {XS_OP_MATMUL, XS_F16, real, what, {M, N, K}, flags, TOL_DOT},             \
    {XS_OP_MATMUL, XS_BF16, real, what, {M, N, K}, flags, TOL_DOT},            \
    {XS_OP_MATMUL, XS_Q8_0, real, what, {M, N, K}, flags, TOL_DOT},            \
    {XS_OP_MATMUL, XS_Q4_0, real, what, {M, N, K}, flags, TOL_DOT}

static const pcase k_cases[] = {
    /* matmul: p = {M, N, K} */
    {XS_OP_MATMUL, XS_F32, false, "odd K", {3, 37, 67}, PC_BIAS, TOL_DOT},
    {XS_OP_MATMUL, XS_F16, false, "odd K", {2, 19, 45}, 0, TOL_DOT},
    {XS_OP_MATMUL, XS_BF16, false, "odd K", {5, 23, 131}, PC_BIAS, TOL_DOT},
    MM_ALL(false, "small", 1, 45, 96, PC_BIAS),
    MM_ALL(false, "x transposed", 5, 33, 64, PC_XT),
    MM_ALL(false, "x sliced", 4, 17, 160, PC_XS),
    MM_ALL(false, "gemm path", 21, 70, 128, PC_BIAS),
    MM_ALL(true, "7B attn rows", 1, 256, 4096, 0),
    MM_ALL(true, "7B ffn_in rows", 1, 512, 4096, 0),
    MM_ALL(true, "7B ffn_out rows", 1, 128, 11264, 0),
    MM_ALL(true, "depformer ffn_out", 1, 1024, 2816, 0),
    MM_ALL(true, "mimi ffn, 17 frames", 17, 2048, 512, PC_BIAS),
    {XS_OP_MATMUL, XS_Q8_0, true, "7B text head", {1, 32000, 4096}, 0, TOL_DOT},
    {XS_OP_MATMUL, XS_BF16, true, "depformer audio head", {1, 2048, 1024}, 0, TOL_DOT},
    {XS_OP_MATMUL, XS_F32, true, "mimi in_proj, 4 frames", {4, 1536, 512}, 0, TOL_DOT},

    /* conv1d: p = {Cin, Cout, K, Tin, stride, dilation, groups} */
    {XS_OP_CONV1D, XS_F32, false, "odd", {5, 7, 3, 29, 2, 2, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, false, "groups 3", {6, 9, 3, 20, 1, 1, 3}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, false, "depthwise", {8, 8, 4, 21, 2, 1, 8}, 0, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, false, "x transposed", {6, 10, 5, 33, 1, 1, 1}, PC_XT | PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, false, "1x1", {12, 5, 1, 17, 1, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, false, "one output channel", {9, 1, 7, 45, 1, 2, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, false, "one input channel", {1, 11, 7, 50, 1, 1, 1}, 0, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet dec out 64->1 k7", {64, 1, 7, 1926, 1, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet in 1->64 k7", {1, 64, 7, 1926, 1, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet res 64->32 k3 d1", {64, 32, 3, 1922, 1, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet res 32->64 k1", {32, 64, 1, 1920, 1, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet down 64->128 k16 s8", {64, 128, 16, 1928, 8, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet down 128->256 k12 s6", {128, 256, 12, 246, 6, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet down 256->512 k10 s5", {256, 512, 10, 45, 5, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet down 512->1024 k8 s4", {512, 1024, 8, 12, 4, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "seanet out 1024->512 k3", {1024, 512, 3, 4, 1, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "mimi downsample 512 k4 s2", {512, 512, 4, 6, 2, 1, 1}, 0, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, true, "decoder in 512->1024 k7", {512, 1024, 7, 8, 1, 1, 1}, PC_BIAS, TOL_DOT},

    /* conv_transpose1d: p = {Cin, Cout, K, Tin, stride, groups} */
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, false, "odd", {5, 6, 3, 11, 2, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, false, "groups 2", {6, 4, 4, 9, 2, 2}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, false, "depthwise", {7, 7, 4, 10, 2, 7}, 0, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, false, "x transposed", {9, 5, 6, 7, 3, 1}, PC_XT, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, false, "many frames", {6, 35, 4, 23, 2, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV1D, XS_F32, false, "many frames, dilation 3", {7, 36, 3, 40, 1, 3, 1}, 0, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, true, "mimi upsample depthwise 512 k4 s2", {512, 512, 4, 2, 2, 512}, 0, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, true, "seanet up 1024->512 k16 s8", {1024, 512, 16, 2, 8, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, true, "seanet up 512->256 k12 s6", {512, 256, 12, 8, 6, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, true, "seanet up 256->128 k10 s5", {256, 128, 10, 48, 5, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_CONV_TRANSPOSE1D, XS_F32, true, "seanet up 128->64 k8 s4", {128, 64, 8, 240, 4, 1}, PC_BIAS, TOL_DOT},

    /* layer_norm / rms_norm / softmax: p = {rows, D} */
    {XS_OP_LAYER_NORM, XS_F32, false, "odd", {3, 37}, PC_BIAS, TOL_ROW},
    {XS_OP_LAYER_NORM, XS_F32, false, "no bias, sliced", {4, 50}, PC_XS, TOL_ROW},
    {XS_OP_LAYER_NORM, XS_F32, true, "mimi 512", {4, 512}, PC_BIAS, TOL_ROW},
    {XS_OP_RMS_NORM, XS_F32, false, "odd", {5, 99}, 0, TOL_ROW},
    {XS_OP_RMS_NORM, XS_F32, false, "sliced", {3, 40}, PC_XS, TOL_ROW},
    {XS_OP_RMS_NORM, XS_F32, true, "7B 4096", {1, 4096}, 0, TOL_ROW},
    {XS_OP_RMS_NORM, XS_F32, true, "depformer 1024", {8, 1024}, 0, TOL_ROW},
    {XS_OP_SOFTMAX, XS_F32, false, "odd", {3, 37}, 0, TOL_ROW},
    {XS_OP_SOFTMAX, XS_F32, false, "in place", {2, 100}, PC_ALIAS, TOL_ROW},
    {XS_OP_SOFTMAX, XS_F32, false, "sliced", {3, 33}, PC_XS, TOL_ROW},
    {XS_OP_SOFTMAX, XS_F32, true, "text vocab", {1, 32000}, 0, TOL_ROW},
    {XS_OP_SOFTMAX, XS_F32, true, "audio card", {8, 2048}, 0, TOL_ROW},

    /* rope: p = {T, H, D, first position} */
    {XS_OP_ROPE, XS_F32, false, "odd heads", {3, 3, 10, 5}, 0, TOL_ROW},
    {XS_OP_ROPE, XS_F32, true, "7B", {1, 32, 128, 2999}, 0, TOL_ROW},
    {XS_OP_ROPE, XS_F32, true, "mimi", {4, 8, 64, 1000}, 0, TOL_ROW},
    {XS_OP_ROPE, XS_F32, true, "depformer", {1, 16, 64, 7}, 0, TOL_ROW},

    /* kv_store: p = {capacity, width, T, first position} */
    {XS_OP_KV_STORE, XS_F32, false, "wrap", {7, 12, 4, 5}, 0, TOL_EXACT},
    {XS_OP_KV_STORE, XS_F32, true, "7B ring", {3000, 4096, 1, 4321}, 0, TOL_EXACT},
    /* bf16 cache: both backends round to nearest even, bit for bit */
    {XS_OP_KV_STORE, XS_BF16, false, "bf16 wrap, odd width", {7, 13, 4, 5}, 0, TOL_EXACT},
    {XS_OP_KV_STORE, XS_BF16, true, "bf16 7B ring", {3000, 4096, 1, 4321}, 0, TOL_EXACT},
    /* q8_0 cache: both backends quantize as xs_quantize_row_q8_0, byte for byte
     * (the width is whole blocks: 3 of 32 here) */
    {XS_OP_KV_STORE, XS_Q8_0, false, "q8 wrap, 3 blocks", {7, 96, 4, 5}, 0, TOL_EXACT},
    {XS_OP_KV_STORE, XS_Q8_0, false, "q8 several rows, one slot twice", {3, 64, 5, 1}, 0, TOL_EXACT},
    {XS_OP_KV_STORE, XS_Q8_0, true, "q8 7B ring", {3000, 4096, 1, 4321}, 0, TOL_EXACT},

    /* attention: p = {capacity, heads, head_dim, T, last position, context} */
    {XS_OP_ATTENTION, XS_F32, false, "ring wrapped", {7, 3, 10, 2, 12, 6}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_F32, false, "partly filled", {16, 2, 9, 3, 5, 16}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_F32, false, "long ring, short context", {300, 3, 8, 3, 700, 200}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_F32, true, "mimi 8x64 ctx 250", {250, 8, 64, 2, 600, 250}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_F32, true, "7B 32x128 ctx 3000", {3000, 32, 128, 1, 4500, 3000}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_F32, true, "depformer 16x64", {8, 16, 64, 1, 5, 8}, 0, TOL_DOT},
    /* bf16 cache: the same bf16 values read exactly on both backends */
    {XS_OP_ATTENTION, XS_BF16, false, "bf16 ring wrapped, odd dim", {7, 3, 10, 2, 12, 6}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_BF16, false, "bf16 partly filled", {16, 2, 9, 3, 5, 16}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_BF16, false, "bf16 long ring, short context", {300, 3, 8, 3, 700, 200}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_BF16, true, "bf16 7B 32x128 ctx 3000", {3000, 32, 128, 1, 4500, 3000}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_BF16, true, "bf16 7B 32x128 ring wrapped", {3000, 32, 128, 1, 7777, 3000}, 0, TOL_DOT},
    /* q8_0 cache: the same d * q values read on both backends (head dim whole blocks) */
    {XS_OP_ATTENTION, XS_Q8_0, false, "q8 ring wrapped", {7, 3, 32, 2, 12, 6}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_Q8_0, false, "q8 partly filled", {16, 2, 64, 3, 5, 16}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_Q8_0, false, "q8 long ring, short context", {300, 3, 32, 3, 700, 200}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_Q8_0, true, "q8 7B 32x128 ctx 3000", {3000, 32, 128, 1, 4500, 3000}, 0, TOL_DOT},
    {XS_OP_ATTENTION, XS_Q8_0, true, "q8 7B 32x128 ring wrapped", {3000, 32, 128, 1, 7777, 3000}, 0, TOL_DOT},

    /* elementwise: p = {rows, D} */
    {XS_OP_ELU, XS_F32, false, "odd", {3, 41}, 0, TOL_ROW},
    {XS_OP_ELU, XS_F32, false, "in place", {2, 77}, PC_ALIAS, TOL_ROW},
    {XS_OP_ELU, XS_F32, false, "transposed", {6, 13}, PC_XT, TOL_ROW},
    {XS_OP_ELU, XS_F32, true, "seanet 64 x 1920", {64, 1920}, 0, TOL_ROW},
    {XS_OP_GELU, XS_F32, false, "odd", {3, 41}, 0, TOL_ROW},
    {XS_OP_GELU, XS_F32, false, "transposed", {6, 13}, PC_XT, TOL_ROW},
    {XS_OP_GELU, XS_F32, true, "mimi ffn 2048", {4, 2048}, 0, TOL_ROW},
    {XS_OP_SILU_MUL, XS_F32, false, "odd", {3, 37}, 0, TOL_ROW},
    {XS_OP_SILU_MUL, XS_F32, true, "7B 2x11264", {1, 11264}, 0, TOL_ROW},
    {XS_OP_SILU_MUL, XS_F32, true, "depformer 2x2816", {1, 2816}, 0, TOL_ROW},
    {XS_OP_ADD, XS_F32, false, "odd", {3, 37}, 0, TOL_EW},
    {XS_OP_ADD, XS_F32, false, "row broadcast", {4, 33}, PC_BCAST, TOL_EW},
    {XS_OP_ADD, XS_F32, false, "in place", {2, 50}, PC_ALIAS, TOL_EW},
    {XS_OP_ADD, XS_F32, false, "a transposed", {5, 9}, PC_XT, TOL_EW},
    {XS_OP_ADD, XS_F32, true, "7B residual", {1, 4096}, 0, TOL_EW},
    {XS_OP_MUL, XS_F32, false, "odd", {3, 37}, 0, TOL_EW},
    {XS_OP_MUL, XS_F32, false, "layer scale broadcast", {4, 512}, PC_BCAST, TOL_EW},
    {XS_OP_MUL, XS_F32, false, "a transposed", {5, 9}, PC_XT, TOL_EW},
    {XS_OP_SCALE, XS_F32, false, "odd", {3, 37}, 0, TOL_EW},
    {XS_OP_SCALE, XS_F32, false, "transposed", {4, 11}, PC_XT, TOL_EW},
    {XS_OP_SCALE, XS_F32, true, "pcm frame", {1, 1920}, 0, TOL_EW},
    {XS_OP_COPY, XS_F32, false, "transpose", {7, 13}, PC_XT, TOL_EW},
    {XS_OP_COPY, XS_F32, false, "slice", {5, 20}, PC_XS, TOL_EW},
    {XS_OP_COPY, XS_F32, false, "into a slice (concat)", {6, 21}, PC_YS, TOL_EW},
    {XS_OP_COPY, XS_F32, false, "transpose into a slice", {6, 21}, PC_YS | PC_XT, TOL_EW},
    {XS_OP_COPY, XS_I32, false, "i32 transpose", {6, 9}, PC_XT, TOL_EXACT},
    {XS_OP_COPY, XS_F32, true, "mimi [T, C] -> [C, T]", {16, 512}, PC_XT, TOL_EW},
    {XS_OP_FILL, XS_F32, false, "contiguous", {3, 37}, 0, TOL_EW},
    {XS_OP_FILL, XS_F32, false, "into a slice", {4, 30}, PC_XS, TOL_EW},

    /* embedding: p = {table rows, D, n ids} */
    {XS_OP_EMBEDDING, XS_F32, false, "odd", {11, 37, 5}, 0, TOL_EW},
    {XS_OP_EMBEDDING, XS_F16, false, "small", {9, 64, 4}, 0, TOL_EW},
    {XS_OP_EMBEDDING, XS_BF16, false, "small", {9, 64, 4}, 0, TOL_EW},
    {XS_OP_EMBEDDING, XS_Q8_0, false, "small", {9, 64, 4}, 0, TOL_EW},
    {XS_OP_EMBEDDING, XS_Q4_0, false, "small", {9, 64, 4}, 0, TOL_EW},
    {XS_OP_EMBEDDING, XS_BF16, true, "7B audio emb 2049 x 4096", {2049, 4096, 16}, 0, TOL_EW},
    {XS_OP_EMBEDDING, XS_Q8_0, true, "7B text emb rows x 4096", {300, 4096, 1}, 0, TOL_EW},
    {XS_OP_EMBEDDING, XS_F32, true, "mimi codebook 2048 x 256", {2048, 256, 8}, 0, TOL_EW},

    /* argmax: p = {rows, V}; sample_topk: p = {rows, V, top_k, temp * 1000} */
    {XS_OP_ARGMAX, XS_F32, false, "ties", {3, 37}, 0, TOL_EXACT},
    {XS_OP_ARGMAX, XS_F32, true, "text vocab", {1, 32000}, 0, TOL_EXACT},
    {XS_OP_ARGMAX, XS_F32, true, "audio card", {8, 2048}, 0, TOL_EXACT},
    {XS_OP_SAMPLE_TOPK, XS_F32, false, "top 5", {4, 37, 5, 800}, 0, TOL_EXACT},
    {XS_OP_SAMPLE_TOPK, XS_F32, false, "all, temp 1", {3, 50, 0, 1000}, 0, TOL_EXACT},
    {XS_OP_SAMPLE_TOPK, XS_F32, true, "text top 25", {1, 32000, 25, 700}, 0, TOL_EXACT},
    {XS_OP_SAMPLE_TOPK, XS_F32, true, "audio top 250", {8, 2048, 250, 800}, 0, TOL_EXACT},

    /* fused ops (ops.h), against their compositions on the oracle */
    /* add_norm: p = {rows, D} */
    {XS_OP_FUSED_ADD_NORM, XS_F32, false, "rms, odd", {3, 37}, 0, TOL_ROW},
    {XS_OP_FUSED_ADD_NORM, XS_F32, false, "layer, no bias", {2, 52}, PC_LN, TOL_ROW},
    {XS_OP_FUSED_ADD_NORM, XS_F32, true, "7B rms 4096", {1, 4096}, 0, TOL_ROW},
    {XS_OP_FUSED_ADD_NORM, XS_F32, true, "depformer rms 1024", {8, 1024}, 0, TOL_ROW},
    {XS_OP_FUSED_ADD_NORM, XS_F32, true, "mimi layer 512", {4, 512}, PC_LN | PC_BIAS, TOL_ROW},
    /* embedding_sum of two tables: p = {table rows, D, n ids, accumulate} */
    {XS_OP_FUSED_EMBEDDING_SUM, XS_F32, false, "accumulate", {9, 64, 4, 1}, 0, TOL_EW},
    {XS_OP_FUSED_EMBEDDING_SUM, XS_Q4_0, false, "small", {9, 64, 3, 0}, 0, TOL_EW},
    {XS_OP_FUSED_EMBEDDING_SUM, XS_BF16, true, "7B audio tables", {2049, 4096, 1, 0}, 0, TOL_EW},
    {XS_OP_FUSED_EMBEDDING_SUM, XS_Q8_0, true, "7B tables, accumulate", {2049, 4096, 1, 1}, 0, TOL_EW},
    {XS_OP_FUSED_EMBEDDING_SUM, XS_F32, true, "mimi codebooks", {2048, 256, 2, 0}, 0, TOL_EW},
    /* add_scaled_norm: p = {rows, D} */
    {XS_OP_FUSED_ADD_SCALED_NORM, XS_F32, false, "odd", {3, 37}, PC_BIAS, TOL_ROW},
    {XS_OP_FUSED_ADD_SCALED_NORM, XS_F32, true, "mimi 512", {4, 512}, PC_BIAS, TOL_ROW},
    {XS_OP_FUSED_ADD_SCALED_NORM, XS_F32, true, "mimi 512, no norm", {4, 512}, PC_NONORM, TOL_ROW},
    /* matmul_gelu, matmul_cat (three weights [N, K]): p = {M, N, K} */
    {XS_OP_FUSED_MATMUL_GELU, XS_F32, false, "small", {3, 45, 96}, PC_BIAS, TOL_DOT},
    {XS_OP_FUSED_MATMUL_GELU, XS_F32, true, "mimi ffn, 17 frames", {17, 2048, 512}, PC_BIAS, TOL_DOT},
    {XS_OP_FUSED_MATMUL_GELU, XS_BF16, true, "mimi ffn bf16, 1 frame", {1, 2048, 512}, PC_BIAS, TOL_DOT},
    {XS_OP_FUSED_MATMUL_CAT, XS_F32, false, "small", {2, 33, 64}, 0, TOL_DOT},
    {XS_OP_FUSED_MATMUL_CAT, XS_F32, true, "mimi q|k|v, 1 frame", {1, 512, 512}, 0, TOL_DOT},
    {XS_OP_FUSED_MATMUL_CAT, XS_BF16, true, "mimi q|k|v bf16, 4 frames", {4, 512, 512}, 0, TOL_DOT},
    /* conv_input: p = {C, P, T, elu} */
    {XS_OP_FUSED_CONV_INPUT, XS_F32, false, "elu", {5, 3, 17, 1}, 0, TOL_ROW},
    {XS_OP_FUSED_CONV_INPUT, XS_F32, false, "context longer than the input", {4, 9, 6, 0}, 0, TOL_EW},
    {XS_OP_FUSED_CONV_INPUT, XS_F32, true, "seanet res k3, elu", {64, 2, 1920, 1}, 0, TOL_ROW},
    {XS_OP_FUSED_CONV_INPUT, XS_F32, true, "seanet down k8 s4, elu", {512, 4, 12, 1}, 0, TOL_ROW},
    /* overlap_add: p = {C, T, S} */
    {XS_OP_FUSED_OVERLAP_ADD, XS_F32, false, "one step", {2, 1, 3}, 0, TOL_EW},
    {XS_OP_FUSED_OVERLAP_ADD, XS_F32, false, "odd", {3, 5, 2}, 0, TOL_EW},
    {XS_OP_FUSED_OVERLAP_ADD, XS_F32, true, "seanet up 1024->512 s8", {512, 2, 8}, 0, TOL_EW},
    {XS_OP_FUSED_OVERLAP_ADD, XS_F32, true, "seanet up 128->64 s4", {64, 240, 4}, 0, TOL_EW},
    /* conv1d_add (conv1d, then + r): p as conv1d */
    {XS_OP_FUSED_CONV1D_ADD, XS_F32, false, "odd", {5, 7, 3, 29, 1, 1, 1}, PC_BIAS, TOL_DOT},
    {XS_OP_FUSED_CONV1D_ADD, XS_F32, true, "seanet res 32->64 k1 + skip", {32, 64, 1, 1920, 1, 1, 1}, PC_BIAS, TOL_DOT},
};

#define N_CASES ((int)(sizeof k_cases / sizeof k_cases[0]))

int xs_parity_case_count(void) { return N_CASES; }

static void shape_desc(const pcase *c, char *buf, size_t n) {
    const int64_t *p = c->p;
    switch (c->op) {
    case XS_OP_MATMUL:
    case XS_OP_FUSED_MATMUL_GELU:
    case XS_OP_FUSED_MATMUL_CAT:
        snprintf(buf, n, "[%lld,%lld]x[%lld,%lld]^T", (long long)p[0], (long long)p[2],
                 (long long)p[1], (long long)p[2]);
        break;
    case XS_OP_CONV1D:
    case XS_OP_FUSED_CONV1D_ADD:
        snprintf(buf, n, "ci%lld co%lld k%lld t%lld s%lld d%lld g%lld", (long long)p[0],
                 (long long)p[1], (long long)p[2], (long long)p[3], (long long)p[4],
                 (long long)p[5], (long long)p[6]);
        break;
    case XS_OP_CONV_TRANSPOSE1D:
        snprintf(buf, n, "ci%lld co%lld k%lld t%lld s%lld g%lld", (long long)p[0],
                 (long long)p[1], (long long)p[2], (long long)p[3], (long long)p[4],
                 (long long)p[5]);
        break;
    case XS_OP_ROPE:
        snprintf(buf, n, "[%lld,%lld,%lld] pos%lld", (long long)p[0], (long long)p[1],
                 (long long)p[2], (long long)p[3]);
        break;
    case XS_OP_KV_STORE:
        snprintf(buf, n, "cap%lld w%lld t%lld pos%lld", (long long)p[0], (long long)p[1],
                 (long long)p[2], (long long)p[3]);
        break;
    case XS_OP_ATTENTION:
        snprintf(buf, n, "cap%lld h%lld d%lld t%lld pos%lld ctx%lld", (long long)p[0],
                 (long long)p[1], (long long)p[2], (long long)p[3], (long long)p[4],
                 (long long)p[5]);
        break;
    case XS_OP_EMBEDDING:
    case XS_OP_FUSED_EMBEDDING_SUM:
        snprintf(buf, n, "[%lld,%lld] ids%lld", (long long)p[0], (long long)p[1],
                 (long long)p[2]);
        break;
    case XS_OP_FUSED_CONV_INPUT:
        snprintf(buf, n, "c%lld ctx%lld t%lld%s", (long long)p[0], (long long)p[1],
                 (long long)p[2], p[3] ? " elu" : "");
        break;
    case XS_OP_FUSED_OVERLAP_ADD:
        snprintf(buf, n, "c%lld t%lld s%lld", (long long)p[0], (long long)p[1], (long long)p[2]);
        break;
    case XS_OP_SAMPLE_TOPK:
        snprintf(buf, n, "[%lld,%lld] k%lld t%.2f", (long long)p[0], (long long)p[1],
                 (long long)p[2], (double)p[3] / 1000.0);
        break;
    default:
        snprintf(buf, n, "[%lld,%lld]", (long long)p[0], (long long)p[1]);
        break;
    }
}

const char *xs_parity_case_desc(int i, char *buf, size_t n) {
    if (i < 0 || i >= N_CASES) return NULL;
    char s[96];
    shape_desc(&k_cases[i], s, sizeof s);
    snprintf(buf, n, "%s %s %s (%s%s)", xs_op_name(k_cases[i].op), s,
             xs_dtype_name(k_cases[i].wt), k_cases[i].what, k_cases[i].real ? ", real" : "");
    return buf;
}

/* ---- per-case context: identical inputs on both backends ----------------------------- */

#define P_MAX_ALLOC 16
#define P_MAX_WEIGHTS 3 /* matmul_cat's q, k, v */

typedef struct pctx {
    xs_backend *be[2];
    uint64_t rng;
    xs_tensor alloc[2][P_MAX_ALLOC];
    int n_alloc;
    void *host[P_MAX_ALLOC];
    int n_host;
    xs_tensor weight[2][P_MAX_WEIGHTS];
    int n_weight;
    xs_kv_cache cache[2];
    bool have_cache;
} pctx;

static uint64_t p_next(pctx *c) {
    uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float p_uniform(pctx *c, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(p_next(c) >> 11) * 0x1.0p-53);
}

static void *p_host(pctx *c, size_t nbytes) {
    if (c->n_host >= P_MAX_ALLOC) return NULL;
    void *p = malloc(nbytes ? nbytes : 1);
    if (p) c->host[c->n_host++] = p;
    return p;
}

static float *p_rand(pctx *c, int64_t n, float lo, float hi) {
    float *x = p_host(c, (size_t)n * sizeof *x);
    if (x)
        for (int64_t i = 0; i < n; i++) x[i] = p_uniform(c, lo, hi);
    return x;
}

static void p_release(pctx *c) {
    for (int i = 0; i < c->n_alloc; i++)
        for (int b = 0; b < 2; b++) xs_tensor_free(c->be[b], &c->alloc[b][i]);
    for (int i = 0; i < c->n_weight; i++)
        for (int b = 0; b < 2; b++) xs_backend_weight_release(c->be[b], &c->weight[b][i]);
    if (c->have_cache)
        for (int b = 0; b < 2; b++) xs_kv_cache_free(c->be[b], &c->cache[b]);
    for (int i = 0; i < c->n_host; i++) free(c->host[i]);
    c->n_alloc = c->n_host = c->n_weight = 0;
    c->have_cache = false;
}

/* Allocate a contiguous tensor on both backends; upload `host` when given. */
static xs_status p_tensor(pctx *c, xs_dtype dt, int ndim, const int64_t *shape, const void *host,
                          xs_tensor out[2]) {
    if (c->n_alloc >= P_MAX_ALLOC) return xs_error(XS_ERR_INTERNAL, "parity: too many tensors");
    int slot = c->n_alloc++;
    for (int b = 0; b < 2; b++) {
        memset(&c->alloc[b][slot], 0, sizeof c->alloc[b][slot]);
        XS_TRY(xs_tensor_alloc(c->be[b], dt, ndim, shape, &c->alloc[b][slot]));
        if (host) XS_TRY(xs_tensor_upload(c->be[b], &c->alloc[b][slot], host));
        out[b] = c->alloc[b][slot];
    }
    return XS_OK;
}

/* Random f32 input of the given shape, uniform in [lo, hi). */
static xs_status p_input(pctx *c, int ndim, const int64_t *shape, float lo, float hi,
                         xs_tensor out[2]) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    float *h = p_rand(c, n, lo, hi);
    if (!h) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    return p_tensor(c, XS_F32, ndim, shape, h, out);
}

/* A 2-D f32 input [r, d] laid out as asked: contiguous, transposed view of
 * a [d, r] tensor (PC_XT), or a column slice of an [r, d + 7] tensor (PC_XS). */
static xs_status p_input2d(pctx *c, int64_t r, int64_t d, int flags, float lo, float hi,
                           xs_tensor out[2]) {
    if (flags & PC_XT) {
        int64_t s[2] = {d, r};
        XS_TRY(p_input(c, 2, s, lo, hi, out));
        for (int b = 0; b < 2; b++) out[b] = xs_tensor_transpose(&out[b], 0, 1);
    } else if (flags & PC_XS) {
        int64_t s[2] = {r, d + 7};
        XS_TRY(p_input(c, 2, s, lo, hi, out));
        for (int b = 0; b < 2; b++) out[b] = xs_tensor_slice(&out[b], 1, 3, d);
    } else {
        int64_t s[2] = {r, d};
        XS_TRY(p_input(c, 2, s, lo, hi, out));
    }
    return XS_OK;
}

/* An output tensor pre-filled with NaN on both backends, so an element the
 * op forgets to write fails the comparison. */
static xs_status p_output(pctx *c, xs_dtype dt, int ndim, const int64_t *shape, xs_tensor out[2]) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    uint32_t *h = p_host(c, (size_t)n * 4);
    if (!h) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    for (int64_t i = 0; i < n; i++) h[i] = dt == XS_F32 ? 0x7fc00000u : 0x7fffffffu;
    return p_tensor(c, dt, ndim, shape, h, out);
}

/* A weight [n, k] of dtype dt from random f32 values, as each backend wants it. */
static xs_status p_weight(pctx *c, xs_dtype dt, int64_t n, int64_t k, float lo, float hi,
                          xs_tensor out[2]) {
    if (c->n_weight >= P_MAX_WEIGHTS) return xs_error(XS_ERR_INTERNAL, "parity: too many weights");
    float *f = p_rand(c, n * k, lo, hi);
    size_t rb = xs_dtype_row_bytes(dt, k);
    uint8_t *bytes = p_host(c, rb * (size_t)n);
    if (!f || !bytes || !rb) return xs_error(XS_ERR_NOMEM, "parity: weight %s [%lld, %lld]",
                                             xs_dtype_name(dt), (long long)n, (long long)k);
    for (int64_t r = 0; r < n; r++) {
        const float *src = f + r * k;
        uint8_t *dst = bytes + (size_t)r * rb;
        switch (dt) {
        case XS_F32: memcpy(dst, src, rb); break;
        case XS_F16:
            for (int64_t i = 0; i < k; i++) ((uint16_t *)dst)[i] = xs_f32_to_f16(src[i]);
            break;
        case XS_BF16:
            for (int64_t i = 0; i < k; i++) ((uint16_t *)dst)[i] = xs_f32_to_bf16(src[i]);
            break;
        case XS_Q8_0: xs_quantize_row_q8_0(src, (xs_block_q8_0 *)dst, k); break;
        case XS_Q4_0: xs_quantize_row_q4_0(src, (xs_block_q4_0 *)dst, k); break;
        default: return xs_error(XS_ERR_DTYPE, "parity: weight dtype %s", xs_dtype_name(dt));
        }
    }
    int64_t shape[2] = {n, k};
    xs_tensor host = xs_tensor_make(dt, 2, shape, bytes);
    host.name = "parity.w";
    int slot = c->n_weight++;
    for (int b = 0; b < 2; b++) {
        memset(&c->weight[b][slot], 0, sizeof c->weight[b][slot]);
        XS_TRY(xs_backend_weight(c->be[b], &host, &c->weight[b][slot]));
        out[b] = c->weight[b][slot];
    }
    return XS_OK;
}

/* i32 tensor on both backends from host values. */
static xs_status p_ids(pctx *c, const int32_t *v, int64_t n, xs_tensor out[2]) {
    return p_tensor(c, XS_I32, 1, &n, v, out);
}

/* Download a contiguous tensor from both backends into host buffers. */
static xs_status p_fetch(pctx *c, const xs_tensor y[2], void **ha, void **hb) {
    size_t nb = xs_tensor_nbytes(&y[0]);
    *ha = p_host(c, nb);
    *hb = p_host(c, nb);
    if (!*ha || !*hb) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    XS_TRY(xs_tensor_download(c->be[0], *ha, &y[0]));
    XS_TRY(xs_tensor_download(c->be[1], *hb, &y[1]));
    return XS_OK;
}

static double nmse_f32(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)a[i] * a[i];
    }
    return den > 0 ? num / den : num;
}

/* Score an f32 output (nmse) or an i32 / bf16 one (number of differing
 * elements). */
static xs_status p_score(pctx *c, const xs_tensor y[2], double *err) {
    void *ha, *hb;
    XS_TRY(p_fetch(c, y, &ha, &hb));
    int64_t n = xs_tensor_numel(&y[0]);
    if (y[0].dtype == XS_F32) {
        *err = nmse_f32(ha, hb, n);
    } else if (y[0].dtype == XS_BF16) {
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += ((uint16_t *)ha)[i] != ((uint16_t *)hb)[i];
        *err = (double)bad;
    } else if (xs_dtype_is_quantized(y[0].dtype)) { /* a q8_0 KV cache: differing bytes */
        const size_t nb = xs_tensor_nbytes(&y[0]);
        int64_t bad = 0;
        for (size_t i = 0; i < nb; i++) bad += ((uint8_t *)ha)[i] != ((uint8_t *)hb)[i];
        *err = (double)bad;
    } else {
        int64_t bad = 0;
        for (int64_t i = 0; i < n; i++) bad += ((int32_t *)ha)[i] != ((int32_t *)hb)[i];
        *err = (double)bad;
    }
    return XS_OK;
}

/* ---- runners: one per op ------------------------------------------------------- */

/* Run the same call on both backends (i = 0, 1), stopping at the first error. */
#define BOTH(call)                                                  \
    do {                                                            \
        for (int i = 0; i < 2; i++) {                               \
            xs_backend *be = c->be[i];                              \
            xs_status rc_ = (call);                                 \
            if (rc_ != XS_OK)                                       \
                return xs_error_prefix(rc_, "on backend %s: ", be->iface->name); \
        }                                                           \
    } while (0)

static xs_status run_matmul(pctx *c, const pcase *pc, double *err) {
    const int64_t M = pc->p[0], N = pc->p[1], K = pc->p[2];
    xs_tensor x[2], w[2], bias[2], y[2];
    XS_TRY(p_input2d(c, M, K, pc->flags, -1, 1, x));
    XS_TRY(p_weight(c, pc->wt, N, K, -1, 1, w));
    if (pc->flags & PC_BIAS) XS_TRY(p_input(c, 1, &N, -1, 1, bias));
    int64_t ys[2] = {M, N};
    XS_TRY(p_output(c, XS_F32, 2, ys, y));
    if (pc->op == XS_OP_FUSED_MATMUL_GELU)
        BOTH(xs_op_matmul_gelu(be, &y[i], &x[i], &w[i], (pc->flags & PC_BIAS) ? &bias[i] : NULL));
    else
        BOTH(xs_op_matmul(be, &y[i], &x[i], &w[i], (pc->flags & PC_BIAS) ? &bias[i] : NULL));
    return p_score(c, y, err);
}

static xs_status run_conv1d(pctx *c, const pcase *pc, double *err) {
    const int64_t *p = pc->p;
    const int64_t cin = p[0], cout = p[1], kk = p[2], tin = p[3];
    const int stride = (int)p[4], dil = (int)p[5], groups = (int)p[6];
    xs_tensor x[2], w[2], bias[2], y[2];
    XS_TRY(p_input2d(c, cin, tin, pc->flags, -1, 1, x));
    int64_t ws[3] = {cout, cin / groups, kk};
    XS_TRY(p_input(c, 3, ws, -0.5f, 0.5f, w));
    if (pc->flags & PC_BIAS) XS_TRY(p_input(c, 1, &cout, -1, 1, bias));
    int64_t tout = (tin - (int64_t)dil * (kk - 1) - 1) / stride + 1;
    int64_t ys[2] = {cout, tout};
    XS_TRY(p_output(c, XS_F32, 2, ys, y));
    if (pc->op == XS_OP_FUSED_CONV1D_ADD) {
        xs_tensor r[2];
        XS_TRY(p_input(c, 2, ys, -1, 1, r));
        BOTH(xs_op_conv1d_add(be, &y[i], &x[i], &w[i], (pc->flags & PC_BIAS) ? &bias[i] : NULL,
                              stride, dil, groups, &r[i]));
    } else {
        BOTH(xs_op_conv1d(be, &y[i], &x[i], &w[i], (pc->flags & PC_BIAS) ? &bias[i] : NULL,
                          stride, dil, groups));
    }
    return p_score(c, y, err);
}

static xs_status run_convtr(pctx *c, const pcase *pc, double *err) {
    const int64_t *p = pc->p;
    const int64_t cin = p[0], cout = p[1], kk = p[2], tin = p[3];
    const int stride = (int)p[4], groups = (int)p[5];
    xs_tensor x[2], w[2], bias[2], y[2];
    XS_TRY(p_input2d(c, cin, tin, pc->flags, -1, 1, x));
    int64_t ws[3] = {cin, cout / groups, kk};
    XS_TRY(p_input(c, 3, ws, -0.5f, 0.5f, w));
    if (pc->flags & PC_BIAS) XS_TRY(p_input(c, 1, &cout, -1, 1, bias));
    int64_t ys[2] = {cout, (tin - 1) * stride + kk};
    XS_TRY(p_output(c, XS_F32, 2, ys, y));
    BOTH(xs_op_conv_transpose1d(be, &y[i], &x[i], &w[i], (pc->flags & PC_BIAS) ? &bias[i] : NULL,
                                stride, groups));
    return p_score(c, y, err);
}

static xs_status run_rowop(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], d = pc->p[1];
    int64_t ys[2] = {r, d};
    xs_tensor x[2], y[2], w[2], b[2];
    /* Offset inputs (mean 0.3, not 0) make layer_norm's centering matter;
     * the activations get a range that reaches their saturated parts. */
    const bool act = pc->op == XS_OP_ELU || pc->op == XS_OP_GELU;
    XS_TRY(p_input2d(c, r, d, pc->flags, act ? -6.0f : -0.7f, act ? 4.0f : 1.3f, x));
    if (pc->flags & PC_ALIAS) {
        y[0] = x[0];
        y[1] = x[1];
    } else {
        XS_TRY(p_output(c, XS_F32, 2, ys, y));
    }
    switch (pc->op) {
    case XS_OP_LAYER_NORM:
        XS_TRY(p_input(c, 1, &d, 0.5f, 1.5f, w));
        if (pc->flags & PC_BIAS) XS_TRY(p_input(c, 1, &d, -1, 1, b));
        BOTH(xs_op_layer_norm(be, &y[i], &x[i], &w[i], (pc->flags & PC_BIAS) ? &b[i] : NULL,
                              1e-5f));
        break;
    case XS_OP_RMS_NORM:
        XS_TRY(p_input(c, 1, &d, 0.5f, 1.5f, w));
        BOTH(xs_op_rms_norm(be, &y[i], &x[i], &w[i], 1e-8f));
        break;
    case XS_OP_SOFTMAX: BOTH(xs_op_softmax(be, &y[i], &x[i])); break;
    case XS_OP_ELU: BOTH(xs_op_elu(be, &y[i], &x[i], 1.0f)); break;
    case XS_OP_GELU: BOTH(xs_op_gelu(be, &y[i], &x[i])); break;
    case XS_OP_SCALE: BOTH(xs_op_scale(be, &y[i], &x[i], 0.37f, -0.11f)); break;
    default: return xs_error(XS_ERR_INTERNAL, "parity: %s is not a row op", xs_op_name(pc->op));
    }
    /* An aliased output is the input view: score a contiguous copy of it. */
    if (pc->flags & PC_ALIAS) {
        xs_tensor out[2];
        XS_TRY(p_output(c, XS_F32, 2, ys, out));
        BOTH(xs_op_copy(be, &out[i], &y[i]));
        return p_score(c, out, err);
    }
    return p_score(c, y, err);
}

static xs_status run_silu_mul(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], h = pc->p[1];
    int64_t xs[2] = {r, 2 * h}, ys[2] = {r, h};
    xs_tensor x[2], y[2];
    XS_TRY(p_input(c, 2, xs, -4, 4, x));
    XS_TRY(p_output(c, XS_F32, 2, ys, y));
    BOTH(xs_op_silu_mul(be, &y[i], &x[i]));
    return p_score(c, y, err);
}

static xs_status run_binary(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], d = pc->p[1];
    int64_t ys[2] = {r, d};
    xs_tensor a[2], b[2], y[2];
    XS_TRY(p_input2d(c, r, d, pc->flags, -1, 1, a));
    if (pc->flags & PC_BCAST) XS_TRY(p_input(c, 1, &d, -1, 1, b));
    else XS_TRY(p_input(c, 2, ys, -1, 1, b));
    if (pc->flags & PC_ALIAS) {
        y[0] = a[0];
        y[1] = a[1];
    } else {
        XS_TRY(p_output(c, XS_F32, 2, ys, y));
    }
    if (pc->op == XS_OP_ADD) BOTH(xs_op_add(be, &y[i], &a[i], &b[i]));
    else BOTH(xs_op_mul(be, &y[i], &a[i], &b[i]));
    return p_score(c, y, err); /* aliased a is contiguous here */
}

static xs_status run_copy(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], d = pc->p[1];
    int64_t ys[2] = {r, d};
    xs_tensor x[2], y[2];
    if (pc->wt == XS_I32) {
        int64_t n = r * d, s[2] = {d, r};
        int32_t *h = p_host(c, (size_t)n * 4);
        if (!h) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
        for (int64_t i = 0; i < n; i++) h[i] = (int32_t)(p_next(c) % 100000) - 50000;
        XS_TRY(p_tensor(c, XS_I32, 2, s, h, x));
        for (int i = 0; i < 2; i++) x[i] = xs_tensor_transpose(&x[i], 0, 1);
        XS_TRY(p_output(c, XS_I32, 2, ys, y));
    } else if (pc->flags & PC_YS) {
        /* y = columns [5, 5 + d) of a random [r, d + 9] tensor; score all of it. */
        XS_TRY(p_input2d(c, r, d, pc->flags & PC_XT, -1, 1, x));
        int64_t big[2] = {r, d + 9};
        xs_tensor whole[2];
        XS_TRY(p_input(c, 2, big, -1, 1, whole));
        for (int i = 0; i < 2; i++) y[i] = xs_tensor_slice(&whole[i], 1, 5, d);
        BOTH(xs_op_copy(be, &y[i], &x[i]));
        return p_score(c, whole, err);
    } else {
        XS_TRY(p_input2d(c, r, d, pc->flags, -1, 1, x));
        XS_TRY(p_output(c, XS_F32, 2, ys, y));
    }
    BOTH(xs_op_copy(be, &y[i], &x[i]));
    return p_score(c, y, err);
}

static xs_status run_fill(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], d = pc->p[1];
    xs_tensor y[2];
    if (pc->flags & PC_XS) {
        /* Fill a column slice of a random tensor: the rest must stay. */
        int64_t s[2] = {r, d};
        XS_TRY(p_input(c, 2, s, -1, 1, y));
        xs_tensor v[2];
        for (int i = 0; i < 2; i++) v[i] = xs_tensor_slice(&y[i], 1, 2, d / 2);
        BOTH(xs_op_fill(be, &v[i], 0.625f));
    } else {
        int64_t s[2] = {r, d};
        XS_TRY(p_output(c, XS_F32, 2, s, y));
        BOTH(xs_op_fill(be, &y[i], -1.75f));
    }
    return p_score(c, y, err);
}

static xs_status run_rope(pctx *c, const pcase *pc, double *err) {
    const int64_t T = pc->p[0], H = pc->p[1], D = pc->p[2];
    int64_t xs[3] = {T, H, D};
    xs_tensor x[2], pos[2];
    XS_TRY(p_input(c, 3, xs, -1, 1, x));
    int32_t *pv = p_host(c, (size_t)T * 4);
    if (!pv) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    for (int64_t t = 0; t < T; t++) pv[t] = (int32_t)(pc->p[3] + t);
    XS_TRY(p_ids(c, pv, T, pos));
    BOTH(xs_op_rope(be, &x[i], &pos[i], 10000.0f));
    return p_score(c, x, err);
}

/* A KV cache (f32, bf16 or q8_0) on both backends with random k/v and positions:
 * slot s holds the newest position <= last with residue s, except that a
 * few slots are left empty (-1) to exercise the mask. */
static xs_status p_cache(pctx *c, xs_dtype dt, int64_t cap, int64_t width, int64_t last,
                         bool some_empty) {
    for (int b = 0; b < 2; b++) {
        memset(&c->cache[b], 0, sizeof c->cache[b]);
        XS_TRY(xs_kv_cache_alloc_dtype(c->be[b], cap, width, dt, &c->cache[b]));
        c->have_cache = true;
    }
    void *k = p_rand(c, cap * width, -1, 1), *v = p_rand(c, cap * width, -1, 1);
    int32_t *pos = p_host(c, (size_t)cap * 4);
    if (!k || !v || !pos) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    if (dt == XS_BF16) {
        uint16_t *kb = p_host(c, (size_t)(cap * width) * 2), *vb = p_host(c, (size_t)(cap * width) * 2);
        if (!kb || !vb) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
        for (int64_t i = 0; i < cap * width; i++) {
            kb[i] = xs_f32_to_bf16(((const float *)k)[i]);
            vb[i] = xs_f32_to_bf16(((const float *)v)[i]);
        }
        k = kb, v = vb;
    } else if (dt == XS_Q8_0) { /* the model-file quantizer: what kv_store would write */
        const size_t rb = xs_dtype_row_bytes(XS_Q8_0, width);
        uint8_t *kq = p_host(c, rb * (size_t)cap), *vq = p_host(c, rb * (size_t)cap);
        if (!kq || !vq) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
        for (int64_t r = 0; r < cap; r++) {
            xs_quantize_row_q8_0((const float *)k + r * width, (xs_block_q8_0 *)(kq + r * rb), width);
            xs_quantize_row_q8_0((const float *)v + r * width, (xs_block_q8_0 *)(vq + r * rb), width);
        }
        k = kq, v = vq;
    }
    for (int64_t s = 0; s < cap; s++) {
        int64_t p = last - ((last - s) % cap + cap) % cap; /* newest <= last with p % cap == s */
        pos[s] = p >= 0 ? (int32_t)p : -1;
        if (some_empty && s % 5 == 3) pos[s] = -1;
    }
    for (int b = 0; b < 2; b++) {
        XS_TRY(xs_tensor_upload(c->be[b], &c->cache[b].k, k));
        XS_TRY(xs_tensor_upload(c->be[b], &c->cache[b].v, v));
        XS_TRY(xs_tensor_upload(c->be[b], &c->cache[b].pos, pos));
    }
    return XS_OK;
}

static xs_status run_kv_store(pctx *c, const pcase *pc, double *err) {
    const int64_t cap = pc->p[0], width = pc->p[1], T = pc->p[2], p0 = pc->p[3];
    XS_TRY(p_cache(c, pc->wt, cap, width, p0 - 1, false));
    int64_t s[2] = {T, width};
    xs_tensor k[2], v[2], pos[2];
    XS_TRY(p_input(c, 2, s, -1, 1, k));
    XS_TRY(p_input(c, 2, s, -1, 1, v));
    int32_t *pv = p_host(c, (size_t)T * 4);
    if (!pv) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    for (int64_t t = 0; t < T; t++) pv[t] = (int32_t)(p0 + t);
    XS_TRY(p_ids(c, pv, T, pos));
    BOTH(xs_op_kv_store(be, &c->cache[i], &k[i], &v[i], &pos[i]));
    /* Everything must match exactly: k, v and the positions. */
    double e1, e2, e3;
    xs_tensor t2[2] = {c->cache[0].k, c->cache[1].k};
    XS_TRY(p_score(c, t2, &e1));
    t2[0] = c->cache[0].v, t2[1] = c->cache[1].v;
    XS_TRY(p_score(c, t2, &e2));
    t2[0] = c->cache[0].pos, t2[1] = c->cache[1].pos;
    XS_TRY(p_score(c, t2, &e3));
    *err = e1 + e2 + e3;
    return XS_OK;
}

static xs_status run_attention(pctx *c, const pcase *pc, double *err) {
    const int64_t cap = pc->p[0], H = pc->p[1], D = pc->p[2], T = pc->p[3];
    const int64_t last = pc->p[4], ctx = pc->p[5];
    XS_TRY(p_cache(c, pc->wt, cap, H * D, last, cap < 20));
    int64_t qs[2] = {T, H * D};
    xs_tensor q[2], y[2], pos[2];
    XS_TRY(p_input(c, 2, qs, -1, 1, q));
    XS_TRY(p_output(c, XS_F32, 2, qs, y));
    int32_t *pv = p_host(c, (size_t)T * 4);
    if (!pv) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    for (int64_t t = 0; t < T; t++) pv[t] = (int32_t)(last - (T - 1) + t);
    XS_TRY(p_ids(c, pv, T, pos));
    const float scale = 1.0f / sqrtf((float)D);
    BOTH(xs_op_attention(be, &y[i], &q[i], &c->cache[i], &pos[i], (int)H, ctx, scale));
    return p_score(c, y, err);
}

static xs_status run_embedding(pctx *c, const pcase *pc, double *err) {
    const int64_t rows = pc->p[0], D = pc->p[1], n = pc->p[2];
    xs_tensor t[2], ids[2], y[2];
    XS_TRY(p_weight(c, pc->wt, rows, D, -1, 1, t));
    int32_t *iv = p_host(c, (size_t)n * 4);
    if (!iv) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    for (int64_t i = 0; i < n; i++) iv[i] = (int32_t)(p_next(c) % (uint64_t)rows);
    if (n > 2) iv[1] = -1; /* the "no token" id gives a zero row */
    iv[n - 1] = (int32_t)(rows - 1);
    XS_TRY(p_ids(c, iv, n, ids));
    int64_t ys[2] = {n, D};
    XS_TRY(p_output(c, XS_F32, 2, ys, y));
    BOTH(xs_op_embedding(be, &y[i], &t[i], &ids[i]));
    return p_score(c, y, err);
}

/* Logits with planted ties (argmax must pick the lowest index) and a
 * spread that makes top-k and temperature matter. */
static float *p_logits(pctx *c, int64_t r, int64_t v) {
    float *l = p_rand(c, r * v, -3, 3);
    if (!l) return NULL;
    for (int64_t i = 0; i < r; i++) {
        int64_t a = (int64_t)(p_next(c) % (uint64_t)v), b = (int64_t)(p_next(c) % (uint64_t)v);
        l[i * v + a] = 5.5f;
        l[i * v + b] = 5.5f;
    }
    return l;
}

static xs_status run_argmax_sample(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], v = pc->p[1];
    int64_t ls[2] = {r, v};
    float *h = p_logits(c, r, v);
    if (!h) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    xs_tensor l[2], ids[2];
    XS_TRY(p_tensor(c, XS_F32, 2, ls, h, l));
    XS_TRY(p_output(c, XS_I32, 1, &r, ids));
    if (pc->op == XS_OP_ARGMAX) {
        BOTH(xs_op_argmax(be, &ids[i], &l[i]));
    } else {
        const float temp = (float)pc->p[3] / 1000.0f;
        /* step 1000 = 900 on the host + 100 read from a device counter tensor
         * (what a replayed CUDA graph does) */
        const int32_t part = 100;
        const int64_t one = 1;
        xs_tensor ctr[2];
        XS_TRY(p_tensor(c, XS_I32, 1, &one, &part, ctr));
        BOTH(xs_op_sample_topk_at(be, &ids[i], &l[i], temp, (int)pc->p[2], 42, 3, 900, &ctr[i]));
    }
    return p_score(c, ids, err);
}

/* ---- fused ops ------------------------------------------------------------------ */

/* The worst of several outputs' scores (NaN if any is NaN). */
static xs_status p_score_all(pctx *c, xs_tensor (*outs)[2], int n, double *err) {
    double worst = 0.0;
    for (int k = 0; k < n; k++) {
        double e = NAN;
        XS_TRY(p_score(c, outs[k], &e));
        if (e != e) worst = NAN;
        else if (worst == worst && e > worst) worst = e;
    }
    *err = worst;
    return XS_OK;
}

/* x += h, y = norm(x): both x and y are scored. */
static xs_status run_add_norm(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], d = pc->p[1];
    int64_t s[2] = {r, d};
    xs_tensor o[2][2], h[2], w[2], b[2]; /* o[0]: y, o[1]: x */
    XS_TRY(p_input(c, 2, s, -0.7f, 1.3f, o[1]));
    XS_TRY(p_input(c, 2, s, -1, 1, h));
    XS_TRY(p_input(c, 1, &d, 0.5f, 1.5f, w));
    XS_TRY(p_output(c, XS_F32, 2, s, o[0]));
    const bool hb = pc->flags & PC_BIAS;
    if (hb) XS_TRY(p_input(c, 1, &d, -1, 1, b));
    if (pc->flags & PC_LN)
        BOTH(xs_op_add_layer_norm(be, &o[0][i], &o[1][i], &h[i], &w[i], hb ? &b[i] : NULL, 1e-5f));
    else
        BOTH(xs_op_add_rms_norm(be, &o[0][i], &o[1][i], &h[i], &w[i], 1e-8f));
    return p_score_all(c, o, 2, err);
}

static xs_status emb_sum2(xs_backend *be, xs_tensor *y, const xs_tensor *t0, const xs_tensor *t1,
                          const xs_tensor *i0, const xs_tensor *i1, bool acc, xs_tensor *sc) {
    const xs_tensor *tabs[2] = {t0, t1}, *ids[2] = {i0, i1};
    return xs_op_embedding_sum(be, y, 2, tabs, ids, acc, sc);
}

/* y (= or +=) t0[i0] + t1[i1], with a "no token" id (-1: a zero row). */
static xs_status run_embedding_sum(pctx *c, const pcase *pc, double *err) {
    const int64_t rows = pc->p[0], D = pc->p[1], n = pc->p[2];
    const bool acc = pc->p[3] != 0;
    xs_tensor t0[2], t1[2], i0[2], i1[2], y[2], sc[2];
    XS_TRY(p_weight(c, pc->wt, rows, D, -1, 1, t0));
    XS_TRY(p_weight(c, pc->wt, rows, D, -1, 1, t1));
    int32_t *iv = p_host(c, (size_t)(2 * n) * 4);
    if (!iv) return xs_error(XS_ERR_NOMEM, "parity: out of memory");
    for (int64_t i = 0; i < 2 * n; i++) iv[i] = (int32_t)(p_next(c) % (uint64_t)rows);
    iv[2 * n - 1] = n > 1 ? -1 : (int32_t)(rows - 1);
    XS_TRY(p_ids(c, iv, n, i0));
    XS_TRY(p_ids(c, iv + n, n, i1));
    int64_t ys[2] = {n, D};
    if (acc) XS_TRY(p_input(c, 2, ys, -1, 1, y));
    else XS_TRY(p_output(c, XS_F32, 2, ys, y));
    XS_TRY(p_output(c, XS_F32, 2, ys, sc));
    BOTH(emb_sum2(be, &y[i], &t0[i], &t1[i], &i0[i], &i1[i], acc, &sc[i]));
    return p_score(c, y, err);
}

/* h *= s, x += h (, y = layer_norm(x)): h, x (and y) scored. */
static xs_status run_add_scaled_norm(pctx *c, const pcase *pc, double *err) {
    const int64_t r = pc->p[0], d = pc->p[1];
    int64_t s[2] = {r, d};
    const bool norm = !(pc->flags & PC_NONORM), hb = pc->flags & PC_BIAS;
    xs_tensor o[3][2], sc[2], w[2], b[2]; /* o: x, h, y */
    XS_TRY(p_input(c, 2, s, -0.7f, 1.3f, o[0]));
    XS_TRY(p_input(c, 2, s, -1, 1, o[1]));
    XS_TRY(p_input(c, 1, &d, 0.05f, 0.3f, sc)); /* a layer scale's range */
    if (norm) {
        XS_TRY(p_input(c, 1, &d, 0.5f, 1.5f, w));
        if (hb) XS_TRY(p_input(c, 1, &d, -1, 1, b));
        XS_TRY(p_output(c, XS_F32, 2, s, o[2]));
    }
    BOTH(xs_op_add_scaled_layer_norm(be, norm ? &o[2][i] : NULL, &o[0][i], &o[1][i], &sc[i],
                                     norm ? &w[i] : NULL, norm && hb ? &b[i] : NULL, 1e-5f));
    return p_score_all(c, o, norm ? 3 : 2, err);
}

static xs_status mm_cat3(xs_backend *be, xs_tensor *y, const xs_tensor *x, const xs_tensor *w0,
                         const xs_tensor *w1, const xs_tensor *w2, xs_tensor *sc) {
    const xs_tensor *ws[3] = {w0, w1, w2};
    return xs_op_matmul_cat(be, y, x, 3, ws, sc);
}

/* y [M, 3N] = [x . w0^T | x . w1^T | x . w2^T]. */
static xs_status run_matmul_cat(pctx *c, const pcase *pc, double *err) {
    const int64_t M = pc->p[0], N = pc->p[1], K = pc->p[2];
    xs_tensor x[2], w[3][2], y[2], sc[2];
    int64_t xs[2] = {M, K}, ys[2] = {M, 3 * N}, ss[2] = {M, N};
    XS_TRY(p_input(c, 2, xs, -1, 1, x));
    for (int k = 0; k < 3; k++) XS_TRY(p_weight(c, pc->wt, N, K, -1, 1, w[k]));
    XS_TRY(p_output(c, XS_F32, 2, ys, y));
    XS_TRY(p_output(c, XS_F32, 2, ss, sc));
    BOTH(mm_cat3(be, &y[i], &x[i], &w[0][i], &w[1][i], &w[2][i], &sc[i]));
    return p_score(c, y, err);
}

/* xin = [ctx | act(x)], then ctx = xin's last P columns: xin and ctx scored. */
static xs_status run_conv_input(pctx *c, const pcase *pc, double *err) {
    const int64_t C = pc->p[0], P = pc->p[1], T = pc->p[2];
    const bool elu = pc->p[3] != 0;
    int64_t cs[2] = {C, P}, xs[2] = {C, T}, is[2] = {C, P + T};
    xs_tensor o[2][2], x[2], sc[2]; /* o: xin, ctx */
    XS_TRY(p_input(c, 2, cs, -1, 1, o[1]));
    XS_TRY(p_input(c, 2, xs, -3, 2, x));
    XS_TRY(p_output(c, XS_F32, 2, is, o[0]));
    XS_TRY(p_output(c, XS_F32, 2, xs, sc));
    BOTH(xs_op_conv_input(be, &o[0][i], &o[1][i], &x[i], elu, 1.0f, &sc[i]));
    return p_score_all(c, o, 2, err);
}

/* y block t = taps 0..S-1 of step t + taps S..2S-1 of step t-1 (tail for
 * t = 0), then tail = the last step's second half: y and tail scored. */
static xs_status run_overlap_add(pctx *c, const pcase *pc, double *err) {
    const int64_t C = pc->p[0], T = pc->p[1], S = pc->p[2];
    int64_t cols[2] = {T, C * 2 * S}, ts[2] = {C, S}, ys[2] = {C, T * S};
    xs_tensor col[2], o[2][2], sc[2]; /* o: y, tail */
    XS_TRY(p_input(c, 2, cols, -1, 1, col));
    XS_TRY(p_input(c, 2, ts, -1, 1, o[1]));
    XS_TRY(p_output(c, XS_F32, 2, ys, o[0]));
    XS_TRY(p_output(c, XS_F32, 2, ys, sc));
    BOTH(xs_op_overlap_add(be, &o[0][i], &col[i], &o[1][i], &sc[i]));
    return p_score_all(c, o, 2, err);
}

static xs_status run_case(pctx *c, const pcase *pc, double *err) {
    switch (pc->op) {
    case XS_OP_MATMUL: return run_matmul(c, pc, err);
    case XS_OP_CONV1D: return run_conv1d(c, pc, err);
    case XS_OP_CONV_TRANSPOSE1D: return run_convtr(c, pc, err);
    case XS_OP_LAYER_NORM:
    case XS_OP_RMS_NORM:
    case XS_OP_SOFTMAX:
    case XS_OP_ELU:
    case XS_OP_GELU:
    case XS_OP_SCALE: return run_rowop(c, pc, err);
    case XS_OP_ROPE: return run_rope(c, pc, err);
    case XS_OP_KV_STORE: return run_kv_store(c, pc, err);
    case XS_OP_ATTENTION: return run_attention(c, pc, err);
    case XS_OP_SILU_MUL: return run_silu_mul(c, pc, err);
    case XS_OP_EMBEDDING: return run_embedding(c, pc, err);
    case XS_OP_ADD:
    case XS_OP_MUL: return run_binary(c, pc, err);
    case XS_OP_COPY: return run_copy(c, pc, err);
    case XS_OP_FILL: return run_fill(c, pc, err);
    case XS_OP_ARGMAX:
    case XS_OP_SAMPLE_TOPK: return run_argmax_sample(c, pc, err);
    case XS_OP_FUSED_ADD_NORM: return run_add_norm(c, pc, err);
    case XS_OP_FUSED_EMBEDDING_SUM: return run_embedding_sum(c, pc, err);
    case XS_OP_FUSED_ADD_SCALED_NORM: return run_add_scaled_norm(c, pc, err);
    case XS_OP_FUSED_MATMUL_GELU: return run_matmul(c, pc, err);
    case XS_OP_FUSED_MATMUL_CAT: return run_matmul_cat(c, pc, err);
    case XS_OP_FUSED_CONV_INPUT: return run_conv_input(c, pc, err);
    case XS_OP_FUSED_OVERLAP_ADD: return run_overlap_add(c, pc, err);
    case XS_OP_FUSED_CONV1D_ADD: return run_conv1d(c, pc, err);
    default: return xs_error(XS_ERR_INTERNAL, "parity: no runner for %s", xs_op_name(pc->op));
    }
}

/* ---- driver ------------------------------------------------------------------ */

static bool token_matches(const pcase *pc, const char *tok, size_t len) {
    char full[64];
    snprintf(full, sizeof full, "%s/%s", xs_op_name(pc->op), xs_dtype_name(pc->wt));
    const char *op = xs_op_name(pc->op);
    if (strlen(op) == len && !strncmp(op, tok, len)) return true;
    if (strlen(full) == len && !strncmp(full, tok, len)) return true;
    if (len == 4 && !strncmp(tok, "real", 4)) return pc->real;
    if (len == 5 && !strncmp(tok, "small", 5)) return !pc->real;
    return false;
}

static bool case_selected(const pcase *pc, const char *filter) {
    if (!filter || !*filter) return true;
    const char *s = filter;
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len && token_matches(pc, s, len)) return true;
        if (!e) break;
        s = e + 1;
    }
    return false;
}

xs_status xs_parity_run_opts(xs_backend *a, xs_backend *b, const xs_parity_opts *o,
                             int *n_pass, int *n_fail) {
    if (!a || !b || !o) return xs_error(XS_ERR_ARG, "parity: NULL backend or options");
    const double tscale = o->tol_scale > 0 ? o->tol_scale : 1.0;
    int pass = 0, fail = 0;
    FILE *f = o->report;
    if (f)
        fprintf(f, "parity: %s (oracle) vs %s, seed %llu%s\n", a->iface->name, b->iface->name,
                (unsigned long long)o->seed, o->real_shapes ? ", real shapes" : "");
    for (int i = 0; i < N_CASES; i++) {
        const pcase *pc = &k_cases[i];
        if (pc->real && !o->real_shapes) continue;
        if (!case_selected(pc, o->filter)) continue;
        pctx c;
        memset(&c, 0, sizeof c);
        c.be[0] = a;
        c.be[1] = b;
        const uint64_t seed = o->seed + 7919ull * (uint64_t)i;
        c.rng = seed;
        double err = NAN;
        xs_error_clear();
        xs_status rc = run_case(&c, pc, &err);
        p_release(&c);
        const double tol = pc->tol * tscale;
        /* written so that NaN fails */
        const bool ok = rc == XS_OK && (pc->tol == TOL_EXACT ? err == 0.0 : err <= tol);
        if (ok) pass++;
        else fail++;
        if (f && (!ok || o->verbose)) {
            char s[96];
            shape_desc(pc, s, sizeof s);
            fprintf(f, "%-16s %-40s %-5s %-34s nmse=%-10.3e tol=%-8.1e %s", xs_op_name(pc->op), s,
                    xs_dtype_name(pc->wt), pc->what, err, tol, ok ? "PASS" : "FAIL");
            if (!ok) fprintf(f, " (case %d, seed %llu)", i, (unsigned long long)seed);
            if (rc != XS_OK) fprintf(f, " error: %s", xs_error_msg());
            fputc('\n', f);
        }
    }
    if (f) fprintf(f, "parity: %d passed, %d failed\n", pass, fail);
    if (n_pass) *n_pass = pass;
    if (n_fail) *n_fail = fail;
    return XS_OK;
}

xs_status xs_parity_run(xs_backend *a, xs_backend *b, const char *filter, bool real_shapes,
                        FILE *report, int *n_pass, int *n_fail) {
    xs_parity_opts o = {.filter = filter, .real_shapes = real_shapes, .seed = XS_PARITY_SEED,
                        .tol_scale = 1.0, .report = report, .verbose = true};
    const char *env = getenv("XSWARM_PARITY_SEED");
    if (env && *env) o.seed = strtoull(env, NULL, 0);
    return xs_parity_run_opts(a, b, &o, n_pass, n_fail);
}
