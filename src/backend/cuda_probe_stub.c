/*
 * cuda_probe_stub.c — cuda_probe.h without CUDA: every probe says
 * "unsupported", so benchmarks fall back to host figures with no #ifdef.
 * With CUDA the real ones live in backend/cuda/cuda_probe.cu.
 */
#include "backend/cuda_probe.h"

#include <string.h>

bool xs_backend_is_cuda(const xs_backend *be) {
    return be && be->iface && be->iface->name && !strcmp(be->iface->name, "cuda");
}

#ifndef XSWARM_HAVE_CUDA
static xs_status no_cuda(const char *what) {
    return xs_error(XS_ERR_UNSUPPORTED, "%s: built without CUDA", what);
}
xs_status xs_cuda_measure_bandwidth(xs_backend *be, double *gbs) {
    (void)be; (void)gbs;
    return no_cuda("cuda bandwidth");
}
xs_status xs_cuda_measure_copy_bandwidth(xs_backend *be, double *gbs) {
    (void)be; (void)gbs;
    return no_cuda("cuda copy bandwidth");
}
xs_status xs_cuda_mem_info(xs_backend *be, size_t *f, size_t *t) {
    (void)be; (void)f; (void)t;
    return no_cuda("cuda memory info");
}
xs_status xs_cuda_device_desc(xs_backend *be, char *buf, size_t n) {
    (void)be;
    if (buf && n) buf[0] = 0;
    return no_cuda("cuda device");
}
xs_status xs_cuda_timer_mark(xs_backend *be, int slot) {
    (void)be; (void)slot;
    return no_cuda("cuda timer");
}
xs_status xs_cuda_timer_ms(xs_backend *be, int a, int b, double *ms) {
    (void)be; (void)a; (void)b; (void)ms;
    return no_cuda("cuda timer");
}
xs_status xs_cuda_stall(xs_backend *be, double ms) {
    (void)be; (void)ms;
    return no_cuda("cuda stall");
}
void xs_cuda_gemv_select(bool old, int rows, int quant_chunk) {
    (void)old; (void)rows; (void)quant_chunk;
}
void xs_cuda_gemv_quant_select(bool prev) {
    (void)prev;
}
void xs_cuda_gemv_quant_async_select(int stages) {
    (void)stages;
}
void xs_cuda_mma_select(bool on, int cfg, int ks_rule) {
    (void)on; (void)cfg; (void)ks_rule;
}
void xs_cuda_sgemm_select(int mode) {
    (void)mode;
}
void xs_cuda_conv_select(int mode) {
    (void)mode;
}
void xs_cuda_pdl_select(bool on) {
    (void)on;
}
bool xs_cuda_pdl_possible(void) {
    return false;
}
long xs_cuda_pdl_edges_last(void) {
    return 0;
}
xs_status xs_cuda_prof_begin(xs_backend *be) {
    (void)be;
    return no_cuda("cuda profiler");
}
xs_status xs_cuda_prof_end(xs_backend *be, FILE *out, int steps, double *busy) {
    (void)be; (void)out; (void)steps; (void)busy;
    return no_cuda("cuda profiler");
}
#endif
