/*
 * membw.h — machine floors for benchmarks: memory read bandwidth and the
 * f32 FLOP rate of the cpu backend's sgemm, measured in the same run as
 * the benchmark they qualify (DESIGN.md: "report time as a multiple of
 * that floor").
 */
#ifndef XS_DIAG_MEMBW_H
#define XS_DIAG_MEMBW_H

#include <stddef.h>

#include "core/status.h"

/* Seconds from a monotonic clock (for benchmarks). */
double xs_now_seconds(void);

/* Best-of-`reps` read bandwidth in GB/s (1e9 bytes/s) of summing an
 * `nbytes` buffer split over `n_threads` threads (<= 0: one per core).
 * The buffer is written once first so every page is really mapped. Use a
 * buffer several times the last-level cache (default 1 GiB when nbytes is
 * 0) to measure DRAM. *gbs is left alone on error. */
xs_status xs_membw_read(int n_threads, size_t nbytes, int reps, double *gbs);

/* Best-of-`reps` GFLOP/s (2*M*N*K per product) of the cpu backend's matmul
 * with f32 weights at [M, K] x [N, K]^T, with `n_threads` threads. M > 16
 * takes the sgemm path. *gflops is left alone on error. */
xs_status xs_sgemm_rate(int n_threads, int M, int N, int K, int reps, double *gflops);

#endif
