/*
 * cuda_pdl.cuh — programmatic dependent launch (PDL, sm_90+) inside the
 * backend's captured graphs. A graph's kernel -> kernel edges are made
 * programmatic when it is instantiated (cuda_graph.cu): a kernel's blocks
 * may then be scheduled while the kernel before it still runs, so its
 * launch latency overlaps that kernel instead of following it (a batch-1
 * step is ~830 small dependent kernels).
 *
 * The contract, kept by EVERY kernel of the backend (the test
 * cuda_pdl_entry checks the sources): its first statement is
 * cu_pdl_enter(). That lets the next kernel start (launch_dependents) and
 * then waits until every kernel it depends on has completed and its
 * writes are visible (griddepcontrol.wait); nothing is read or written
 * before it, so each kernel sees exactly what it saw with ordinary edges
 * and the results do not change by one bit. Outside a programmatic edge
 * (eager launches, edges from copies) both instructions are no-ops.
 * Below sm_90 the helper compiles to nothing, and cuda_graph.cu converts
 * edges only where the device and the code that runs are sm_90+.
 */
#pragma once

__device__ __forceinline__ void cu_pdl_enter(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
