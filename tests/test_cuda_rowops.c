/*
 * test_cuda_rowops.c — the row-batched ops on cuda (one launch for all rows)
 * against the loop of single-row cuda ops (bit for bit) and against ref
 * (cache bytes exact, attention within tolerance, tokens exact), at the 7B's
 * shapes: temporal 32 heads x 128 (ring of 5 chunks, context below the
 * capacity), depformer 16 x 64 (one chunk: the direct path); B in
 * {1, 3, 17, 80} (and 150: several launches); every KV dtype; rings empty,
 * partly filled, full and wrapped. Sampling: mixed greedy / top-k rows at
 * the text (32000) and audio (2048) vocabularies. Skips (77) without a GPU.
 */
#include "rowops_check.h"

int main(void) {
    if (!xs_backend_cuda_usable(NULL, 0)) test_skip("no usable CUDA device");
    xs_backend *ref = NULL, *cu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "ref: %s", xs_error_msg());
    CHECK(xs_backend_open("cuda", 0, &cu) == XS_OK, "cuda: %s", xs_error_msg());
    if (!ref || !cu) return test_summary("cuda_rowops");
    CHECK(xs_op_rows_native(cu), "cuda runs the rows ops natively");
    const xs_dtype dts[] = {XS_F32, XS_BF16, XS_Q8_0};
    const int Bs[] = {1, 3, 17, 80, 150};
    const rc_shape temporal = {32, 128, 640, 500}, dep = {16, 64, 8, 8};
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < 5; i++) {
            /* ref at the largest B costs host time only: compare it up to 17 rows */
            xs_backend *r = Bs[i] <= 17 ? ref : NULL;
            int bad = rc_check_kv_attn(cu, r, temporal, dts[d], Bs[i], 11 + (uint64_t)(d * 7 + i));
            bad += rc_check_kv_attn(cu, ref, dep, dts[d], Bs[i], 51 + (uint64_t)(d * 7 + i));
            printf("kv/attention %-5s B=%3d: %s\n", xs_dtype_name(dts[d]), Bs[i], bad ? "FAIL" : "ok");
        }
    for (int i = 0; i < 5; i++) {
        int bad = rc_check_sample(cu, ref, 2048, Bs[i], 5 + (uint64_t)i, false);
        bad += rc_check_sample(cu, Bs[i] <= 17 ? ref : NULL, 32000, Bs[i], 9 + (uint64_t)i, i == 2);
        printf("sample_rows B=%3d: %s\n", Bs[i], bad ? "FAIL" : "ok");
    }
    xs_backend_close(cu);
    xs_backend_close(ref);
    return test_summary("cuda_rowops");
}
