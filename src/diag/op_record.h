/*
 * op_record.h — one op call, captured on one backend and replayed on any.
 *
 * Why: when `xswarm diagnose` finds a backend bug in op X, the useful
 * reproduction is not "X on random data" (the bug may need the exact
 * values, the exact strides — the candle ELU bug was only on non-contiguous
 * tensors) but "this very call". So while diagnose re-runs B at the
 * divergent step, a recorder hooked into every op (backend/op_hook.h)
 * downloads the inputs of each call of X (storage span, shape and strides:
 * views are rebuilt as views), runs the same call on A, and keeps the FIRST
 * call whose output differs beyond X's tolerance. It is written to
 * op-<op>-step<N>.safetensors: inputs, A's and B's outputs, scalars and
 * views in the metadata; `xswarm diagnose --replay FILE` runs only that
 * call on both backends (op_replay.c).
 *
 * File layout (safetensors): tensor "in.<i>.<role>" = storage of argument i
 * (1-D: the elements its view spans, or raw bytes as u8 for q8_0/q4_0);
 * "outA.<i>.<role>" / "outB.<i>.<role>" = the same storages after the op on
 * A and B (outputs only). Metadata "xswarm.op_call" = JSON {op, backend_a,
 * backend_b, step, call, nmse, tolerance, scalars{...}, args[{role, dtype,
 * shape, stride, present, output, same_as}]}.
 */
#ifndef XS_DIAG_OP_RECORD_H
#define XS_DIAG_OP_RECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/backend.h"

#define XS_OPCALL_MAX_ARGS 8

typedef struct xs_opcall_arg {
    char role[16];       /* "y", "x", "w", "cache.k", ... */
    bool present;        /* false: a NULL argument (no bias) */
    bool output;         /* written by the op (compared) */
    int same_as;         /* -1, or index of an earlier argument with the same data pointer */
    xs_dtype dtype;
    int ndim;
    int64_t shape[XS_MAX_DIMS], stride[XS_MAX_DIMS];
    size_t nbytes;       /* storage bytes the view spans */
    void *host;          /* that storage on the host */
    bool owned;          /* host is malloc'ed by us (else borrowed, e.g. a mapped file) */
} xs_opcall_arg;

typedef struct xs_opcall {
    xs_op op;
    int n;
    xs_opcall_arg a[XS_OPCALL_MAX_ARGS];
    int ints[3];         /* stride/dilation/groups, n_heads, top_k */
    double f[2];         /* eps, alpha, max_period, scale, s/b, value, temp */
    int64_t i64;         /* attention context */
    uint64_t u64[3];     /* sample_topk seed, stream, counter */
    int64_t capacity;    /* kv cache */
} xs_opcall;

/* Outputs of one run: host copies of the storages of the output args. */
typedef struct xs_opcall_out {
    int n;
    int idx[XS_OPCALL_MAX_ARGS]; /* argument index of each output */
    void *host[XS_OPCALL_MAX_ARGS];
    size_t nbytes[XS_OPCALL_MAX_ARGS];
} xs_opcall_out;

void xs_opcall_free(xs_opcall *c);
void xs_opcall_out_free(xs_opcall_out *o);

/* Parity tolerance (nmse) of an op's outputs; 0: exact (integer outputs). */
double xs_opcall_tolerance(xs_op op);

/* Run c on backend be (inputs uploaded into fresh buffers, views rebuilt
 * with the recorded strides, aliases kept) and download the outputs. */
xs_status xs_opcall_run(xs_backend *be, const xs_opcall *c, xs_opcall_out *out);

/* Error between two runs' outputs: the largest over outputs of nmse (f32,
 * f16, bf16, q8_0, q4_0 storages, values compared over the view) or of the
 * count of differing elements (integers); worst_role names that output. */
double xs_opcall_error(const xs_opcall *c, const xs_opcall_out *a, const xs_opcall_out *b,
                       const char **worst_role);

/* Save a captured call with both outputs (and the run's context). */
typedef struct xs_opcall_meta {
    const char *backend_a, *backend_b;
    int step;
    int64_t call;        /* index among that op's calls on B while armed */
    double nmse, tol;
} xs_opcall_meta;
xs_status xs_opcall_save(const char *path, const xs_opcall *c, const xs_opcall_out *a,
                         const xs_opcall_out *b, const xs_opcall_meta *m);

/* Load a file written by xs_opcall_save: *c borrows the storages of *st
 * (keep it open), meta strings point into static buffers of the loader.
 * Every field is validated; a file that is not an op call gives XS_ERR_FORMAT
 * naming what is wrong. */
typedef struct xs_safetensors xs_safetensors;
xs_status xs_opcall_load(const char *path, xs_safetensors **st, xs_opcall *c, xs_opcall_meta *m,
                         char *backend_a, char *backend_b, size_t bn);

/* ---- the recorder (diagnose) ---- */
/* Arm: every call of `op` on backend `b` while the step (xs_oprec_set_step)
 * is >= from_step is captured, run on `a` too, and the first whose output
 * differs beyond the op's tolerance is saved to dir/op-<op>-step<N>.safetensors;
 * recording then stops. */
/* tag: NULL names the file by step (op-<op>-step<N>); else op-<op>-<tag>. */
xs_status xs_oprec_arm(xs_backend *a, xs_backend *b, xs_op op, int from_step, const char *dir,
                       const char *tag);
void xs_oprec_set_step(int step);
typedef struct xs_oprec_result {
    bool found;
    char path[1024];
    int step;
    int64_t calls_checked;
    double nmse, tol;
    char error[256];     /* a failure of the recorder itself ("" if none) */
} xs_oprec_result;
/* Disarm and report. */
void xs_oprec_disarm(xs_oprec_result *r);

/* ---- replay (op_replay.c) ---- */
/* Load FILE, run its call on backends a_name and b_name (NULL: the ones
 * recorded), print the error against the tolerance to f. *over: beyond it. */
xs_status xs_op_replay(const char *path, const char *a_name, const char *b_name, int threads,
                       FILE *f, bool *over);

#endif
