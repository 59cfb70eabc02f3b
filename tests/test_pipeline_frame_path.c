/*
 * test_pipeline_frame_path.c — the whole-frame piece (model/frame_graph.h)
 * on CPU backends, run eagerly (XSWARM_FRAME_GRAPH=eager): the device delay
 * window, the encoder -> LM -> decoder copies and the single download give
 * exactly the three-call path (XSWARM_FRAME_GRAPH=0), bit for bit:
 *   - pipeline_tiny golden (greedy, 76 frames) on ref: also the golden
 *     step_out exactly and output_pcm within 1e-4;
 *   - the embedded tiny bundle (gen-model --preset tiny), sampled, 40 frames
 *     with a reset after 25 on cpu: the frames after the reset repeat the
 *     first ones.
 * The recorded version on a GPU: test_cuda_frame_graph.c.
 */
#include <unistd.h>

#include "audio/audio_io.h"
#include "formats/safetensors.h"
#include "model/gen_model.h"
#include "frame_check.h"

static void golden_bundle(xs_bundle *b) {
    memset(b, 0, sizeof *b);
    snprintf(b->lm, XS_PATH_MAX, "%s", golden_path("lm_tiny/model.safetensors"));
    snprintf(b->lm_config, XS_PATH_MAX, "%s", golden_path("lm_tiny/config.json"));
    snprintf(b->mimi, XS_PATH_MAX, "%s", golden_path("mimi_tiny/model.safetensors"));
    snprintf(b->mimi_config, XS_PATH_MAX, "%s", golden_path("mimi_tiny/config.json"));
}

int main(void) {
    xs_safetensors *gold = NULL;
    if (xs_st_open(golden_path("pipeline_tiny/golden.safetensors"), &gold) != XS_OK)
        test_skip("pipeline_tiny/golden.safetensors not readable");
    const xs_tensor *so = xs_st_find(gold, "step_out");
    const xs_tensor *op = xs_st_find(gold, "output_pcm");
    xs_audio in = {0};
    if (!so || !op || xs_audio_read(golden_path("mimi_tiny/input.wav"), 24000, &in, NULL) != XS_OK)
        test_skip("pipeline_tiny golden or mimi_tiny/input.wav not readable");
    xs_backend *ref = NULL, *cpu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    CHECK(xs_backend_open("cpu", 2, &cpu) == XS_OK, "open cpu");
    xs_bundle b;
    golden_bundle(&b);
    fc_run three, frame;
    bool ok = fc_session(ref, &b, "0", 0, 76, 0, in.pcm, &three);
    ok &= fc_session(ref, &b, "eager", 0, 76, 0, in.pcm, &frame);
    if (ok) {
        fc_compare("pipeline_tiny ref: frame piece vs three calls", &frame, &three, 0.0);
        CHECK(three.frame_path == 0, "XSWARM_FRAME_GRAPH=0: no frame through the piece");
        CHECK(frame.frame_path == 74, "frames 2..75 through the piece (got %d)", frame.frame_path);
        const int64_t *g = so->data;
        int bad = 0;
        for (int i = 0; i < frame.n_steps && i < 77; i++)
            for (int j = 0; j < 9; j++) bad += frame.step_out[i][j] != g[i * 9 + j];
        CHECK(frame.n_steps == 77 && bad == 0, "golden step_out: %d values differ", bad);
        if (frame.n_pcm == 145920) {
            double e = test_max_abs_diff(op->data, frame.pcm, frame.n_pcm);
            CHECK(e <= 1e-4, "golden output_pcm: max abs error %.3g", e);
        }
    }
    fc_free(&three);
    fc_free(&frame);

    /* the embedded tiny bundle, sampled, with a reset */
    char dir[] = "/tmp/xs_fg_tiny_XXXXXX";
    xs_bundle tb;
    if (fc_tiny_bundle(dir, &tb)) {
        if (fc_session(cpu, &tb, "0", 7, 40, 25, in.pcm, &three) &&
            fc_session(cpu, &tb, "eager", 7, 40, 25, in.pcm, &frame)) {
            fc_compare("tiny bundle cpu, sampled, reset: frame piece vs three calls", &frame,
                       &three, 0.0);
            CHECK(frame.frame_path >= 30, "%d frames through the piece", frame.frame_path);
            fc_check_reset("tiny bundle cpu", &frame, 26);
        }
        fc_free(&three);
        fc_free(&frame);
        fc_remove_dir(dir);
    }
    xs_backend_close(ref);
    xs_backend_close(cpu);
    xs_audio_free(&in);
    xs_st_close(gold);
    return test_summary("pipeline_frame_path");
}
