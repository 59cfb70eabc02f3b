/*
 * test_tap_compare.c — diag/tap_compare.h: tolerance 1e-4 * max(1, max|ref|)
 * for floats, exact for integers; the first divergence is the earliest step
 * (then execution order) with its worst indices; common-prefix comparison
 * along the time axis; and a real check: Mimi taps of 3 streamed frames on
 * `ref` agree with Kyutai's golden dump (mimi_tiny/golden.safetensors).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio_io.h"
#include "backend/ops.h"
#include "diag/tap_compare.h"
#include "model/mimi.h"
#include "testutil.h"

static void test_tensors(void) {
    enum { T = 6, C = 5 };
    float a[T * C], b[T * C];
    test_fill_uniform(a, T * C, 11, -3, 3);
    memcpy(b, a, sizeof a);
    xs_tensor ta = xs_tensor_2d(XS_F32, a, T, C), tb = xs_tensor_2d(XS_F32, b, T, C);
    xs_tap_diff d;
    CHECK(xs_tap_diff_tensors("lm.x", &ta, &tb, T, 0, &d) == XS_OK, "diff");
    CHECK(!d.over && d.max_abs == 0 && d.first_step == -1, "equal tensors over tolerance");
    /* just under and just over 1e-4 * max|ref| */
    double tol = 1e-4 * d.ref_max;
    CHECK(d.ref_max > 1 && fabs(d.tol - tol) < 1e-12, "tolerance %g want %g", d.tol, tol);
    b[3 * C + 2] += (float)(0.5 * tol);
    xs_tap_diff_tensors("lm.x", &ta, &tb, T, 0, &d);
    CHECK(!d.over, "half the tolerance flagged");
    b[4 * C + 1] += (float)(3 * tol);
    b[5 * C + 0] += (float)(2 * tol);
    xs_tap_diff_tensors("lm.x", &ta, &tb, T, 0, &d);
    CHECK(d.over && d.first_step == 4 && d.first_time == 4, "first step %lld",
          (long long)d.first_step);
    CHECK(d.n_worst == 3 && d.worst[0][0] == 4 && d.worst[0][1] == 1 && d.worst[1][0] == 5,
          "worst indices");
    CHECK(fabs(d.max_rel - 3e-4) < 1e-5, "max rel %g", d.max_rel);
    /* NaN in one side is over tolerance; NaN in both (masked logits) agrees */
    memcpy(b, a, sizeof a);
    b[7] = NAN;
    xs_tap_diff_tensors("lm.x", &ta, &tb, T, 0, &d);
    CHECK(d.over && isinf(d.max_abs) && d.first_step == 1, "NaN not caught");
    a[7] = NAN;
    xs_tap_diff_tensors("lm.x", &ta, &tb, T, 0, &d);
    CHECK(!d.over, "NaN in both flagged");

    /* integers: exact, i64 reference vs i32 run */
    int64_t ri[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int32_t gi[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    xs_tensor tr = xs_tensor_2d(XS_I64, ri, 4, 2), tg = xs_tensor_2d(XS_I32, gi, 4, 2);
    xs_tap_diff_tensors("lm.sampled_audio", &tr, &tg, 4, 0, &d);
    CHECK(d.integer && !d.over, "equal codes differ");
    gi[5] = 7;
    xs_tap_diff_tensors("lm.sampled_audio", &tr, &tg, 4, 0, &d);
    CHECK(d.integer && d.over && d.tol == 0 && d.first_step == 2, "code change missed");

    /* mimi [1, C, T] along the last axis, compared over the common length */
    float big[2 * 8], small[2 * 3];
    test_fill_uniform(big, 16, 5, -1, 1);
    for (int c = 0; c < 2; c++)
        for (int t = 0; t < 3; t++) small[c * 3 + t] = big[c * 8 + t];
    xs_tensor tbig = xs_tensor_3d(XS_F32, big, 1, 2, 8), tsm = xs_tensor_3d(XS_F32, small, 1, 2, 3);
    xs_tap_diff_tensors("mimi.enc.seanet_out", &tbig, &tsm, 3, 0, &d);
    CHECK(!d.skipped && !d.over && d.steps == 3 && d.axis == 2, "prefix compare (axis %d)", d.axis);
    small[1 * 3 + 2] += 0.5f;
    xs_tap_diff_tensors("mimi.enc.seanet_out", &tbig, &tsm, 3, 0, &d);
    CHECK(d.over && d.first_step == 2, "prefix compare step %lld", (long long)d.first_step);
    CHECK(xs_tap_time_axis("mimi.enc.transformer.layer0_out", 3) == 1, "transformer axis");
    /* incompatible shapes are skipped, not errors */
    xs_tensor t3 = xs_tensor_3d(XS_F32, big, 1, 4, 4);
    xs_tap_diff_tensors("mimi.enc.seanet_out", &t3, &tsm, 3, 0, &d);
    CHECK(d.skipped && !d.over, "incompatible shapes not skipped");
}

/* Two recordings of 3 steps; the second perturbed at step 2 in tap "lm.b"
 * and at step 1 in the later tap "lm.c": the first divergence is lm.c. */
static void test_taps(xs_backend *be) {
    xs_taps *ra = xs_taps_new(), *rb = xs_taps_new();
    float v[4];
    for (int s = 0; s < 3; s++) {
        const char *names[3] = {"lm.a", "lm.b", "lm.c"};
        for (int k = 0; k < 3; k++) {
            test_fill_uniform(v, 4, (uint64_t)(100 + 10 * s + k), -1, 1);
            xs_tensor t = xs_tensor_2d(XS_F32, v, 1, 4);
            CHECK(xs_tap_record(ra, be, names[k], &t, 0) == XS_OK, "record");
            if ((k == 1 && s == 2) || (k == 2 && s == 1)) v[2] += 0.01f;
            CHECK(xs_tap_record(rb, be, names[k], &t, 0) == XS_OK, "record");
        }
    }
    xs_tap_report rep;
    CHECK(xs_tap_compare(ra, rb, NULL, &rep) == XS_OK, "compare");
    CHECK(rep.n == 3 && rep.n_over == 2, "n %d over %d", rep.n, rep.n_over);
    CHECK(rep.first == 2 && !strcmp(rep.diffs[rep.first].name, "lm.c") &&
              rep.diffs[rep.first].first_step == 1,
          "first divergence %d", rep.first);
    xs_tap_report_free(&rep);
    xs_tapcmp_opts o = {.skip = "lm.c"};
    CHECK(xs_tap_compare(ra, rb, &o, &rep) == XS_OK && rep.n == 2 && rep.first == 1 &&
              rep.diffs[1].first_step == 2, "skip prefix");
    xs_tap_report_free(&rep);
    xs_taps_free(ra);
    xs_taps_free(rb);
}

/* ref Mimi, 3 streamed frames, against Kyutai's dump. */
static void test_golden(xs_backend *be) {
    char model[1024], cfg[1024]; /* golden_path returns a static buffer */
    snprintf(model, sizeof model, "%s", golden_path("mimi_tiny/model.safetensors"));
    snprintf(cfg, sizeof cfg, "%s", golden_path("mimi_tiny/config.json"));
    mimi_model *m = NULL;
    char used[256];
    if (mimi_model_open(be, model, cfg, false, &m, used,
                        sizeof used) != XS_OK) {
        CHECK(0, "mimi load: %s", xs_error_msg());
        return;
    }
    xs_audio in;
    CHECK(xs_audio_read(golden_path("mimi_tiny/input.wav"), 24000, &in, NULL) == XS_OK, "read");
    mimi_stream *s = NULL;
    CHECK(mimi_stream_new(m, &s) == XS_OK, "stream");
    xs_taps *taps = xs_taps_new();
    mimi_stream_set_taps(s, taps);
    int32_t codes[3 * 8];
    for (int f = 0; f < 3; f++)
        CHECK(mimi_encode(s, in.pcm + f * 1920, 1920, 8, codes + f * 8) == XS_OK, "encode");
    xs_tap_report rep;
    CHECK(xs_tap_compare_file(golden_path("mimi_tiny/golden.safetensors"), taps, NULL, &rep) ==
              XS_OK, "compare with golden: %s", xs_error_msg());
    int compared = 0;
    for (int i = 0; i < rep.n; i++) compared += !rep.diffs[i].skipped;
    CHECK(compared >= 10, "only %d taps matched golden tensors", compared);
    CHECK(rep.first < 0, "ref mimi diverges from golden at %s",
          rep.first >= 0 ? rep.diffs[rep.first].name : "");
    xs_tap_report_free(&rep);
    xs_taps_free(taps);
    mimi_stream_free(s);
    xs_audio_free(&in);
    mimi_model_free(m);
}

int main(void) {
    test_tensors();
    xs_backend *be = NULL;
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "open ref");
    if (be) {
        test_taps(be);
        test_golden(be);
        xs_backend_close(be);
    }
    return test_summary("tap_compare");
}
