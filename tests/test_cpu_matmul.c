/*
 * test_cpu_matmul.c — the cpu backend's matmul kernels and driver:
 *  - every ISA twin (generic, avx2, avx512 where the CPU has them) gives
 *    exact results on integer-valued data and agrees with an f64 dot on
 *    random data, for every weight dtype and lengths that are not
 *    multiples of the SIMD width;
 *  - a row's result does not depend on how many rows are tiled together;
 *  - the backend's matmul is bit-identical for 1, 2, 3 and 5 threads, on
 *    the GEMV (few rows) and sgemm (many rows) paths.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu.h"
#include "backend/ops.h"
#include "core/quant.h"
#include "testutil.h"

static const xs_dtype k_types[] = {XS_F32, XS_F16, XS_BF16, XS_Q8_0, XS_Q4_0};

/* Encode n f32 values (already representable) as dtype dt. */
static void *encode(xs_dtype dt, const float *f, int64_t rows, int64_t k) {
    size_t rb = xs_dtype_row_bytes(dt, k);
    uint8_t *b = malloc(rb * (size_t)rows);
    for (int64_t r = 0; r < rows; r++) {
        const float *s = f + r * k;
        uint8_t *d = b + rb * (size_t)r;
        if (dt == XS_F32) memcpy(d, s, rb);
        else if (dt == XS_F16) for (int64_t i = 0; i < k; i++) ((uint16_t *)d)[i] = xs_f32_to_f16(s[i]);
        else if (dt == XS_BF16) for (int64_t i = 0; i < k; i++) ((uint16_t *)d)[i] = xs_f32_to_bf16(s[i]);
        else if (dt == XS_Q8_0) xs_quantize_row_q8_0(s, (xs_block_q8_0 *)d, k);
        else xs_quantize_row_q4_0(s, (xs_block_q4_0 *)d, k);
    }
    return b;
}

static void check_kernels(cpu_isa isa) {
    cpu_kernels k = cpu_kernels_for(isa);
    const int64_t lens[] = {32, 96, 160, 4096, 67, 15, 1};
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        xs_dtype dt = k_types[ti];
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int64_t K = lens[li];
            if (xs_dtype_is_quantized(dt) && K % 32) continue;
            /* Integer data: q4_0 gets values -8..7 with a block max of -8 so
             * that d = 1 exactly; q8_0 -127..127 with a block max of 127. */
            float *w = malloc(sizeof(float) * (size_t)K), *x = malloc(sizeof(float) * 4 * (size_t)K);
            for (int64_t i = 0; i < K; i++) {
                int v = (int)((i * 7 + 3) % 15) - 7;
                if (dt == XS_Q8_0) v = (int)((i * 37) % 255) - 127;
                if (dt == XS_Q8_0 && i % 32 == 0) v = 127;
                if (dt == XS_Q4_0 && i % 32 == 0) v = -8;
                w[i] = (float)v;
            }
            for (int64_t i = 0; i < 4 * K; i++) x[i] = (float)((int)((i * 5 + 1) % 9) - 4);
            void *wq = encode(dt, w, 1, K);
            float got[4], one[4];
            k.dot[dt](wq, x, K, 4, K, got);
            for (int m = 0; m < 4; m++) {
                double want = 0;
                for (int64_t i = 0; i < K; i++) want += (double)w[i] * x[m * K + i];
                CHECK(got[m] == (float)want, "%s %s K=%lld row %d: integer dot %g, want %g",
                      cpu_isa_name(isa), xs_dtype_name(dt), (long long)K, m, got[m], want);
                k.dot[dt](wq, x + m * K, K, 1, K, &one[m]);
                CHECK(memcmp(&one[m], &got[m], sizeof(float)) == 0,
                      "%s %s K=%lld row %d: result depends on row tiling", cpu_isa_name(isa),
                      xs_dtype_name(dt), (long long)K, m);
            }
            free(wq);
            /* Random data against an f64 dot of the dequantized row. */
            test_fill_uniform(w, K, 11 + (uint64_t)K, -1, 1);
            test_fill_uniform(x, 4 * K, 12 + (uint64_t)K, -1, 1);
            wq = encode(dt, w, 1, K);
            float *wd = malloc(sizeof(float) * (size_t)K);
            xs_convert_to_f32(wd, wq, dt, K);
            k.dot[dt](wq, x, K, 3, K, got);
            for (int m = 0; m < 3; m++) {
                double want = 0, mag = 0;
                for (int64_t i = 0; i < K; i++) {
                    want += (double)wd[i] * x[m * K + i];
                    mag += fabs((double)wd[i] * x[m * K + i]);
                }
                CHECK(fabs(got[m] - want) <= 1e-6 * mag + 1e-30, "%s %s K=%lld: %g vs %g",
                      cpu_isa_name(isa), xs_dtype_name(dt), (long long)K, got[m], want);
            }
            /* Conversion kernel = the library's converter, bit for bit. */
            float *conv = malloc(sizeof(float) * (size_t)K);
            k.to_f32[dt](wq, conv, K);
            CHECK(memcmp(conv, wd, sizeof(float) * (size_t)K) == 0, "%s %s K=%lld: to_f32 differs",
                  cpu_isa_name(isa), xs_dtype_name(dt), (long long)K);
            free(conv);
            free(wd);
            free(wq);
            free(w);
            free(x);
        }
    }
}

/* The backend's matmul output for a given thread count. */
static float *run_matmul(int threads, xs_dtype dt, int64_t M, int64_t N, int64_t K,
                         const float *xf, const void *wbytes) {
    xs_backend *be = NULL;
    if (xs_backend_open("cpu", threads, &be) != XS_OK) return NULL;
    int64_t ws[2] = {N, K};
    xs_tensor w = xs_tensor_make(dt, 2, ws, (void *)wbytes);
    xs_tensor x = xs_tensor_2d(XS_F32, (void *)xf, M, K);
    float *y = malloc(sizeof(float) * (size_t)(M * N));
    xs_tensor yt = xs_tensor_2d(XS_F32, y, M, N);
    xs_status rc = xs_op_matmul(be, &yt, &x, &w, NULL);
    CHECK(rc == XS_OK, "matmul: %s", xs_error_msg());
    xs_backend_close(be);
    return y;
}

static void check_threads(void) {
    const int64_t N = 301, K = 512;
    const int64_t Ms[] = {1, 3, 20};
    float *wf = malloc(sizeof(float) * (size_t)(N * K)), *xf = malloc(sizeof(float) * 20 * K);
    test_fill_uniform(wf, N * K, 5, -1, 1);
    test_fill_uniform(xf, 20 * K, 6, -1, 1);
    for (size_t ti = 0; ti < sizeof k_types / sizeof k_types[0]; ti++) {
        void *wb = encode(k_types[ti], wf, N, K);
        for (int mi = 0; mi < 3; mi++) {
            int64_t M = Ms[mi];
            float *base = run_matmul(1, k_types[ti], M, N, K, xf, wb);
            const int threads[] = {2, 3, 5};
            for (int t = 0; t < 3; t++) {
                float *y = run_matmul(threads[t], k_types[ti], M, N, K, xf, wb);
                CHECK(base && y && memcmp(base, y, sizeof(float) * (size_t)(M * N)) == 0,
                      "%s M=%lld: %d threads differ from 1 thread", xs_dtype_name(k_types[ti]),
                      (long long)M, threads[t]);
                free(y);
            }
            CHECK(base && fabsf(base[0]) + fabsf(base[M * N - 1]) > 0, "non-trivial output");
            free(base);
        }
        free(wb);
    }
    free(wf);
    free(xf);
}

/* Attention over a long ring: split into fixed slot blocks, merged in
 * order, so 1 and 3 threads agree bit for bit. */
static void check_attention_threads(void) {
    enum { T = 2, H = 4, D = 32 };
    const int64_t cap = 1000;
    float *out[2];
    for (int r = 0; r < 2; r++) {
        xs_backend *be = NULL;
        if (xs_backend_open("cpu", r ? 3 : 1, &be) != XS_OK) {
            CHECK(0, "open cpu");
            return;
        }
        xs_kv_cache kv;
        CHECK(xs_kv_cache_alloc(be, cap, H * D, &kv) == XS_OK, "kv alloc");
        test_fill_uniform(kv.k.data, cap * H * D, 31, -1, 1);
        test_fill_uniform(kv.v.data, cap * H * D, 32, -1, 1);
        for (int64_t s = 0; s < cap; s++) ((int32_t *)kv.pos.data)[s] = (int32_t)(s < 900 ? 1000 + s : s);
        float q[T * H * D];
        test_fill_uniform(q, T * H * D, 33, -1, 1);
        int32_t pos[T] = {1850, 1899};
        out[r] = malloc(sizeof(float) * T * H * D);
        xs_tensor qt = xs_tensor_2d(XS_F32, q, T, H * D), yt = xs_tensor_2d(XS_F32, out[r], T, H * D);
        xs_tensor pt = xs_tensor_1d(XS_I32, pos, T);
        CHECK(xs_op_attention(be, &yt, &qt, &kv, &pt, (int)H, 700, 0.17f) == XS_OK, "attention: %s",
              xs_error_msg());
        xs_kv_cache_free(be, &kv);
        xs_backend_close(be);
    }
    CHECK(memcmp(out[0], out[1], sizeof(float) * T * H * D) == 0,
          "attention: 3 threads differ from 1 thread");
    CHECK(out[0][0] != 0 && out[0][T * H * D - 1] != 0, "attention output non-trivial");
    free(out[0]);
    free(out[1]);
}

int main(void) {
    cpu_isa best = cpu_isa_detect();
    printf("best ISA here: %s\n", cpu_isa_name(best));
    for (int isa = 0; isa <= (int)best; isa++) check_kernels((cpu_isa)isa);
    check_threads();
    check_attention_threads();
    return test_summary("test_cpu_matmul");
}
