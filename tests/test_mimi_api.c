/*
 * test_mimi_api.c — the Mimi stream API on golden/mimi_tiny (ref backend):
 *  - two streams sharing one model, calls interleaved frame by frame, give
 *    the codes of two separate runs (no hidden shared state);
 *  - bad arguments are errors with a message, never crashes, and leave the
 *    stream usable: wrong sample counts, codebook counts, out-of-range codes;
 *  - state dumps: identical streams dump identically, a frame changes it;
 *  - mimi_stream_copy: the copy continues exactly like its source.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "formats/safetensors.h"
#include "model/mimi.h"
#include "testutil.h"

#define FRAME 1920
#define T 20

int main(void) {
    xs_backend *be = NULL;
    mimi_model *m = NULL;
    xs_safetensors *g = NULL;
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "ref backend");
    CHECK(mimi_model_open(be, golden_path("mimi_tiny/model.safetensors"), NULL, false, &m, NULL,
                          0) == XS_OK,
          "load: %s", xs_error_msg());
    CHECK(xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &g) == XS_OK, "golden");
    if (!m || !g) return test_summary("test_mimi_api");
    const xs_tensor *in = xs_st_find(g, "input_pcm");
    const xs_tensor *want = xs_st_find(g, "codes_stream");
    CHECK(in && want, "golden tensors");
    if (!in || !want) return test_summary("test_mimi_api");
    const float *x = in->data;
    const int64_t *w = want->data;
    int K = 8;

    /* stream B encodes the input from frame 30 on: different codes than A */
    mimi_stream *a = NULL, *b = NULL, *c = NULL;
    CHECK(mimi_stream_new(m, &a) == XS_OK && mimi_stream_new(m, &b) == XS_OK &&
              mimi_stream_new(m, &c) == XS_OK,
          "streams");
    int32_t ca[T * 8], cb[T * 8], cc[T * 8];
    for (int t = 0; t < T; t++) {
        CHECK(mimi_encode(a, x + t * FRAME, FRAME, K, ca + t * K) == XS_OK, "enc a");
        CHECK(mimi_encode(b, x + (30 + t) * FRAME, FRAME, K, cb + t * K) == XS_OK, "enc b");
    }
    int bad = 0;
    for (int i = 0; i < T * K; i++) bad += ca[i] != (int32_t)w[i];
    CHECK(bad == 0, "interleaved stream A == codes_stream (%d differ)", bad);
    for (int t = 0; t < T; t++)
        CHECK(mimi_encode(c, x + (30 + t) * FRAME, FRAME, K, cc + t * K) == XS_OK, "enc c");
    CHECK(memcmp(cb, cc, sizeof cb) == 0, "interleaved stream B == B run alone");
    CHECK(memcmp(ca, cb, sizeof ca) != 0, "the two inputs give different codes");

    /* dumps: B and C went through the same frames */
    int64_t ns = mimi_stream_state_size(b);
    float *d1 = malloc((size_t)ns * sizeof *d1), *d2 = malloc((size_t)ns * sizeof *d2);
    CHECK(ns > 0 && mimi_stream_state_dump(b, d1) == XS_OK &&
              mimi_stream_state_dump(c, d2) == XS_OK,
          "dumps");
    CHECK(memcmp(d1, d2, (size_t)ns * sizeof *d1) == 0, "same history, same state");
    CHECK(mimi_encode(c, x, FRAME, K, cc) == XS_OK, "one more frame");
    CHECK(mimi_stream_state_dump(c, d2) == XS_OK, "dump");
    CHECK(memcmp(d1, d2, (size_t)ns * sizeof *d1) != 0, "a frame changes the state");
    CHECK(d2[ns - 5] == 2 * (T + 1) && d2[ns - 3] == T + 1, "counters: %g positions, %g frames",
          d2[ns - 5], d2[ns - 3]);

    /* copy: a copy of B continues exactly like B (C is overwritten) */
    CHECK(mimi_stream_copy(c, b) == XS_OK, "copy: %s", xs_error_msg());
    CHECK(mimi_stream_state_dump(c, d2) == XS_OK && mimi_stream_state_dump(b, d1) == XS_OK,
          "dumps");
    CHECK(memcmp(d1, d2, (size_t)ns * sizeof *d1) == 0, "copied state equals the source");
    for (int t = 0; t < 4; t++) {
        CHECK(mimi_encode(b, x + (50 + t) * FRAME, FRAME, K, cb + t * K) == XS_OK, "enc b");
        CHECK(mimi_encode(c, x + (50 + t) * FRAME, FRAME, K, cc + t * K) == XS_OK, "enc c");
    }
    CHECK(memcmp(cb, cc, 4 * K * sizeof *cb) == 0, "the copy goes on like the source");

    /* errors: message set, stream unchanged and still usable */
    int32_t codes[8 * 4];
    float pcm[FRAME];
    CHECK(mimi_encode(a, x, 1000, K, codes) == XS_ERR_ARG && strstr(xs_error_msg(), "1920"),
          "1000 samples rejected: %s", xs_error_msg());
    CHECK(mimi_encode(a, x, 0, K, codes) == XS_ERR_ARG, "0 samples rejected");
    CHECK(mimi_encode(a, x, FRAME, 0, codes) == XS_ERR_ARG, "0 codebooks rejected");
    CHECK(mimi_encode(a, x, FRAME, 17, codes) == XS_ERR_ARG, "17 of 16 codebooks rejected");
    CHECK(mimi_encode(a, NULL, FRAME, K, codes) == XS_ERR_ARG, "NULL pcm rejected");
    int32_t badc[8] = {1, 2, 3, 64, 5, 6, 7, 8};
    CHECK(mimi_decode(a, badc, 1, K, pcm) == XS_ERR_ARG && strstr(xs_error_msg(), "64"),
          "code 64 of 64 bins rejected: %s", xs_error_msg());
    badc[3] = -1;
    CHECK(mimi_decode(a, badc, 1, K, pcm) == XS_ERR_ARG, "code -1 rejected");
    CHECK(mimi_decode(a, badc, 0, K, pcm) == XS_ERR_ARG, "0 frames rejected");
    CHECK(mimi_encode(a, x + T * FRAME, FRAME, K, codes) == XS_OK, "stream A goes on");
    bad = 0;
    for (int k = 0; k < K; k++) bad += codes[k] != (int32_t)w[T * K + k];
    CHECK(bad == 0, "after the errors, frame %d of A still equals codes_stream", T);

    /* fewer codebooks: a prefix of the 8-codebook codes (residual order) */
    mimi_stream_reset(c);
    CHECK(mimi_encode(c, x, FRAME, 3, codes) == XS_OK, "3 codebooks");
    CHECK(codes[0] == w[0] && codes[1] == w[1] && codes[2] == w[2], "3-codebook codes = prefix");
    CHECK(mimi_decode(c, codes, 1, 3, pcm) == XS_OK, "decode 3 codebooks");
    double e = 0;
    for (int i = 0; i < FRAME; i++) e += pcm[i] * pcm[i];
    CHECK(e > 0, "decoded audio is not silent");

    free(d1);
    free(d2);
    mimi_stream_free(a);
    mimi_stream_free(b);
    mimi_stream_free(c);
    mimi_model_free(m);
    xs_st_close(g);
    xs_backend_close(be);
    return test_summary("test_mimi_api");
}
