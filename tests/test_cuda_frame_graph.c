/*
 * test_cuda_frame_graph.c — a solo session's whole frame recorded as ONE
 * CUDA graph (model/frame_graph.h) gives the tokens of the three-graph path
 * (XSWARM_FRAME_GRAPH=0) and of ref. Skips (77) without a usable GPU.
 *   - pipeline_tiny golden (greedy, 76 frames): identical step_out and user
 *     codes on cuda frame graph / cuda three graphs / ref, the golden
 *     step_out exactly, pcm within the golden tolerance (1e-4); the frame
 *     graph is captured once and replayed for the other frames;
 *   - the embedded tiny bundle (gen-model --preset tiny), sampled, 40 frames
 *     with a reset after 25: the same three-way identity, and the frames
 *     after the reset repeat the first ones (the recording replays on the
 *     fresh state).
 * The same piece run eagerly on CPU backends: test_pipeline_frame_path.c.
 */
#include <unistd.h>

#include "frame_check.h"

/* cuda frame graph vs cuda three graphs vs ref on one bundle. */
static void three_way(xs_backend *cuda, xs_backend *ref, const xs_bundle *b, const char *name,
                      uint64_t seed, int frames, int reset_at, const float *in, fc_run *fg) {
    fc_run three, r;
    bool ok = fc_session(cuda, b, "1", seed, frames, reset_at, in, fg);
    ok &= fc_session(cuda, b, "0", seed, frames, reset_at, in, &three);
    ok &= fc_session(ref, b, "0", seed, frames, reset_at, in, &r);
    if (ok) {
        char w[256];
        snprintf(w, sizeof w, "%s: cuda frame graph vs cuda three graphs", name);
        fc_compare(w, fg, &three, FC_PCM_TOL);
        snprintf(w, sizeof w, "%s: cuda frame graph vs ref", name);
        fc_compare(w, fg, &r, FC_PCM_TOL);
        CHECK(three.frame_path == 0, "%s: XSWARM_FRAME_GRAPH=0 kept the three graphs", name);
        CHECK(fg->frame_path >= frames - 4, "%s: %d of %d frames through the frame graph", name,
              fg->frame_path, frames);
        /* stats are taken before the reset; a few warm-up frames run eagerly */
        CHECK(fg->captures == 1 && fg->launches >= (reset_at ? reset_at : frames) - 8,
              "%s: captured once, replayed (%lld captures, %lld launches, %lld eager)", name,
              (long long)fg->captures, (long long)fg->launches, (long long)fg->eager);
    }
    fc_free(&three);
    fc_free(&r);
}

int main(void) {
    char why[256];
    if (!xs_backend_cuda_usable(why, sizeof why)) test_skip(why);
    fc_golden gold;
    fc_golden_open(&gold);
    xs_backend *cuda = NULL, *ref = NULL;
    CHECK(xs_backend_open("cuda", 1, &cuda) == XS_OK, "open cuda: %s", xs_error_msg());
    CHECK(xs_backend_open("ref", 1, &ref) == XS_OK, "open ref");
    if (cuda && ref) {
        unsetenv("XSWARM_CUDA_GRAPHS");
        fc_run fg;
        three_way(cuda, ref, &gold.bundle, "pipeline_tiny", 0, 76, 0, gold.in.pcm, &fg);
        fc_check_golden(&gold, &fg);
        fc_free(&fg);

        char dir[] = "/tmp/xs_cfg_tiny_XXXXXX";
        xs_bundle tb;
        if (fc_tiny_bundle(dir, &tb)) {
            three_way(cuda, ref, &tb, "tiny bundle, sampled, reset", 7, 40, 25, gold.in.pcm, &fg);
            fc_check_reset("tiny bundle cuda frame graph", &fg, 26);
            fc_free(&fg);
            fc_remove_dir(dir);
        }
    }
    xs_backend_close(cuda);
    xs_backend_close(ref);
    fc_golden_close(&gold);
    return test_summary("cuda_frame_graph");
}
