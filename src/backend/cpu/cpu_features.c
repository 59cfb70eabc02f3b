/*
 * cpu_features.c — pick the instruction set once, when the backend opens
 * (like opus' arch tables: the portable C version is always slot 0).
 * XSWARM_CPU_ISA=generic|avx2|avx512 lowers the choice (never raises it
 * above what the CPU has), which is how tests exercise every twin.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "core/log.h"

const char *cpu_isa_name(cpu_isa isa) {
    switch (isa) {
    case CPU_ISA_AVX2: return "avx2";
    case CPU_ISA_AVX512: return "avx512";
    default: return "generic";
    }
}

cpu_isa cpu_isa_detect(void) {
    cpu_isa best = CPU_ISA_GENERIC;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = CPU_ISA_AVX2;
    if (best == CPU_ISA_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        best = CPU_ISA_AVX512;
#endif
    const char *want = getenv("XSWARM_CPU_ISA");
    if (want && *want) {
        cpu_isa w = CPU_ISA_COUNT;
        for (int i = 0; i < CPU_ISA_COUNT; i++)
            if (!strcmp(want, cpu_isa_name((cpu_isa)i))) w = (cpu_isa)i;
        if (w < best) best = w;
    }
    return best;
}

cpu_kernels cpu_kernels_for(cpu_isa isa) {
    cpu_kernels k = cpu_kernels_generic;
#if defined(__x86_64__)
    const cpu_kernels *fast = NULL;
    if (isa == CPU_ISA_AVX512) fast = &cpu_kernels_avx512;
    else if (isa == CPU_ISA_AVX2) fast = &cpu_kernels_avx2;
    if (fast) {
        if (fast->axpy) k.axpy = fast->axpy;
        if (fast->elu) k.elu = fast->elu;
        for (int t = 0; t < XS_DTYPE_COUNT; t++) {
            if (fast->dot[t]) k.dot[t] = fast->dot[t];
            if (fast->to_f32[t]) k.to_f32[t] = fast->to_f32[t];
        }
    }
#else
    (void)isa;
#endif
    return k;
}
