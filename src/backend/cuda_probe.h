/*
 * cuda_probe.h — what the GPU itself can do, measured in the same run as a
 * benchmark (so a floor is the card's, not the host's), its memory use, and
 * a small per-op timer for finding where a step's GPU time goes.
 *
 * Everything takes an open "cuda" backend. Without CUDA compiled in (CI,
 * CPU-only builds) every function returns XS_ERR_UNSUPPORTED (stubs in
 * cuda_probe_stub.c), so callers need no #ifdef.
 */
#ifndef XS_BACKEND_CUDA_PROBE_H
#define XS_BACKEND_CUDA_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "backend/backend.h"
#include "core/status.h"

/* true when be is the cuda backend (name "cuda"). */
bool xs_backend_is_cuda(const xs_backend *be);

/* Best-of-5 device READ bandwidth in GB/s (1e9 B/s): a kernel sums a 1 GiB
 * buffer (16-byte loads, grid sized to the SMs). This is the figure a
 * weight-streaming GEMV can reach, so floors divide by it. *gbs untouched on
 * error. */
xs_status xs_cuda_measure_bandwidth(xs_backend *be, double *gbs);
/* Best-of-5 cudaMemcpy device-to-device of 1 GiB, counting bytes read plus
 * written (the figure the anchor uses). */
xs_status xs_cuda_measure_copy_bandwidth(xs_backend *be, double *gbs);
/* cudaMemGetInfo of be's device (bytes). */
xs_status xs_cuda_mem_info(xs_backend *be, size_t *free_bytes, size_t *total_bytes);
/* Device name, driver version ("580.159") and SM count, for reports. */
xs_status xs_cuda_device_desc(xs_backend *be, char *buf, size_t n);

/* ---- timing on the device ---------------------------------------------------
 * Events on be's stream: mark slot 0..15, then ms between two marks (waits
 * for the later one). */
xs_status xs_cuda_timer_mark(xs_backend *be, int slot);
xs_status xs_cuda_timer_ms(xs_backend *be, int from, int to, double *ms);
/* Enqueue a kernel that spins ~ms milliseconds: work enqueued after it
 * piles up, so the GPU later runs it back to back and event pairs around
 * each kernel time the kernel alone, not the host's launch latency. */
xs_status xs_cuda_stall(xs_backend *be, double ms);

/* ---- per-op profiler (XSWARM_CUDA_PROF=1 in `xswarm bench lm`) --------------
 * begin installs an op hook (backend/op_hook.h) that brackets every op run
 * on be with two events and files it under a key (matmul by dtype and
 * N x K x M, attention by heads, else the op name). Graph replays run no
 * ops: profile with XSWARM_CUDA_GRAPHS=0. end waits, prints a table (time
 * per step of each key, calls per step, weight GB/s of matmuls, totals by
 * class) to out, divides by `steps`, and removes the hook. */
xs_status xs_cuda_prof_begin(xs_backend *be);
xs_status xs_cuda_prof_end(xs_backend *be, FILE *out, int steps, double *busy_ms_per_step);

/* ---- GEMV kernel selection (tests and benchmarks only) ----------------------
 * old = true: the previous kernels (one weight row per warp, 4 x rows per
 * pass); rows = 1, 2 or 4 forces the weight rows per warp of the new ones,
 * 0 = chosen by shape; quant_chunk = 32 or 64 forces the q8_0/q4_0 blocks
 * staged per chunk (0 = by K). Process-wide; the environment variables
 * XSWARM_CUDA_GEMV=old, XSWARM_CUDA_GEMV_R=N and XSWARM_CUDA_GEMV_CHUNK=N
 * set the same at startup. */
void xs_cuda_gemv_select(bool old, int rows, int quant_chunk);

/* q8_0 / q4_0 GEMV kernels (tests and benchmarks only): prev = true takes
 * their previous versions at every M (same bits; XSWARM_CUDA_GEMV=rows0).
 * Process-wide. */
void xs_cuda_gemv_quant_select(bool prev);

/* Batch-1 q8_0 / q4_0 rows in the common layout through
 * k_gemv_quant_rows_async with `stages` (2..4) slots of chunks in flight a
 * warp, 0 = never (k_gemv_quant_rows_full), -1 = by shape, the default
 * (same bits every way; XSWARM_CUDA_GQ_ASYNC=N). Process-wide. */
void xs_cuda_gemv_quant_async_select(int stages);

/* Tensor-core matmul (cuda_mma.cu) for bf16 / q8_0 / q4_0 weights: on =
 * true takes it at every M (off by default; xs_cuda_gemv_select turns it
 * off); a process serving batches turns it on before its first step;
 * cfg = 0..12 forces its tile config, -1 = by shape, -2 = the previous
 * rule (timing only: same bits);
 * ks_rule = 1 | 2 picks how K is split over warps (other bits, the same at
 * every M), 0 keeps the current one. XSWARM_CUDA_GEMV=mma|rows|old,
 * XSWARM_CUDA_MMA_CFG=N and XSWARM_CUDA_MMA_KS=a|b set the same at startup. */
void xs_cuda_mma_select(bool on, int cfg, int ks_rule);

/* f32-weight matmul kernels (cuda_sgemm.cu; tests and benchmarks only):
 * mode 0 = off (the GEMV kernels), 1 = on for short-row weights (K <= 512,
 * N >= 2K; the default), 5 = on for every f32 weight (kernel by
 * shape), 2 = every f32 weight, the few-rows kernel only, 3 / 4 = every f32
 * weight, the 128 x 128 / 64 x 64 tiled kernel wherever x is contiguous
 * (modes 1-5 give the same bits where they take a weight). Process-wide;
 * XSWARM_CUDA_SGEMM=0|1|all|small|tiled|tiled64 sets the same at startup. */
void xs_cuda_sgemm_select(int mode);

/* conv1d kernels (cuda_conv.cu; tests and benchmarks only): mode 0 = by
 * shape (the default: the tiled kernel for wide calls, else the split one),
 * 1 = the old one-thread-per-output kernel, 2 = the split kernel only,
 * 3 = the tiled kernel wherever it can run. Modes 0, 2 and 3 give the same
 * bits. Process-wide; XSWARM_CUDA_CONV=old|split|tile sets the same at
 * startup. */
void xs_cuda_conv_select(int mode);

/* Programmatic edges in captured graphs (cuda_graph.cu, cuda_pdl.cuh):
 * on = false instantiates the next graphs with ordinary edges (same bits;
 * tests and A/B timing). Process-wide; XSWARM_CUDA_PDL=0 sets it at
 * startup. xs_cuda_pdl_possible: the device and the built code are sm_90+.
 * xs_cuda_pdl_edges_last: kernel -> kernel edges made programmatic in the
 * last graph instantiated (0 when off or not possible). */
void xs_cuda_pdl_select(bool on);
bool xs_cuda_pdl_possible(void);
long xs_cuda_pdl_edges_last(void);

#endif
