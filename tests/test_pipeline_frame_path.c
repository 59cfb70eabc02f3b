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

#include "frame_check.h"

int main(void) {
    fc_golden gold;
    fc_golden_open(&gold);
    xs_backend *ref = NULL, *cpu = NULL;
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    CHECK(xs_backend_open("cpu", 2, &cpu) == XS_OK, "open cpu");
    fc_run three, frame;
    bool ok = fc_session(ref, &gold.bundle, "0", 0, 76, 0, gold.in.pcm, &three);
    ok &= fc_session(ref, &gold.bundle, "eager", 0, 76, 0, gold.in.pcm, &frame);
    if (ok) {
        fc_compare("pipeline_tiny ref: frame piece vs three calls", &frame, &three, 0.0);
        CHECK(three.frame_path == 0, "XSWARM_FRAME_GRAPH=0: no frame through the piece");
        CHECK(frame.frame_path == 74, "frames 2..75 through the piece (got %d)", frame.frame_path);
        fc_check_golden(&gold, &frame);
    }
    fc_free(&three);
    fc_free(&frame);

    /* the embedded tiny bundle, sampled, with a reset */
    char dir[] = "/tmp/xs_fg_tiny_XXXXXX";
    xs_bundle tb;
    if (fc_tiny_bundle(dir, &tb)) {
        if (fc_session(cpu, &tb, "0", 7, 40, 25, gold.in.pcm, &three) &&
            fc_session(cpu, &tb, "eager", 7, 40, 25, gold.in.pcm, &frame)) {
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
    fc_golden_close(&gold);
    return test_summary("pipeline_frame_path");
}
