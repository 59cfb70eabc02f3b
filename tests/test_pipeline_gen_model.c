/*
 * test_pipeline_gen_model.c — `gen-model --preset tiny` (xs_gen_model):
 * the bundle has every part, loads as a whole model, Mimi encodes the test
 * utterance to DIVERSE codes (several distinct codes per codebook), the
 * tokenizer loads, a session turns speech into audio and text, and the
 * weights are a deterministic function of the seed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "model/gen_model.h"
#include "model/session.h"
#include "testutil.h"

static bool same_file(const char *a, const char *b) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return system(cmd) == 0;
}

int main(void) {
    char utt[1024];
    snprintf(utt, sizeof utt, "%s/assets/test-utterance.wav", XS_SOURCE_DIR);
    if (access(utt, R_OK) != 0) test_skip("assets/test-utterance.wav missing");
    char dir[] = "/tmp/xs_gen_tiny_XXXXXX";
    if (!mkdtemp(dir)) test_skip("mkdtemp failed");
    char a[1200], b[1200], c[1200];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    xs_gen_opts o = {.preset = "tiny", .dtype = XS_F32, .seed = 5, .out_dir = a, .utterance = utt};
    xs_status rc = xs_gen_model(&o);
    CHECK(rc == XS_OK, "gen tiny: %s", xs_error_msg());
    o.out_dir = b;
    CHECK(xs_gen_model(&o) == XS_OK, "gen tiny again: %s", xs_error_msg());
    o.out_dir = c;
    o.seed = 6;
    o.dtype = XS_BF16;
    CHECK(xs_gen_model(&o) == XS_OK, "gen tiny bf16 seed 6: %s", xs_error_msg());

    xs_bundle bun;
    CHECK(xs_bundle_from_dir(a, &bun) == XS_OK, "bundle folder");
    CHECK(xs_bundle_check(&bun, true, true, true) == XS_OK, "all parts present: %s", xs_error_msg());
    CHECK(bun.lm_config[0] && bun.mimi_config[0], "configs present");

    char pa[1400], pb[1400];
    snprintf(pa, sizeof pa, "%s/%s", a, XS_GEN_LM_FILE);
    snprintf(pb, sizeof pb, "%s/%s", b, XS_GEN_LM_FILE);
    CHECK(same_file(pa, pb), "same seed: identical LM file");
    snprintf(pa, sizeof pa, "%s/%s", a, XS_GEN_MIMI_FILE);
    snprintf(pb, sizeof pb, "%s/%s", b, XS_GEN_MIMI_FILE);
    CHECK(same_file(pa, pb), "same seed: identical Mimi file");
    snprintf(pb, sizeof pb, "%s/%s", c, XS_GEN_MIMI_FILE);
    CHECK(!same_file(pa, pb), "other seed: other Mimi weights");

    /* diverse codes on speech */
    xs_audio in = {0};
    CHECK(xs_audio_read(utt, 24000, &in, NULL) == XS_OK, "read utterance");
    xs_backend *be = NULL;
    CHECK(xs_backend_open("cpu", 1, &be) == XS_OK, "cpu backend");
    xswarm_model *m = NULL;
    rc = be ? xs_pipe_model_load(be, &bun, &m) : XS_ERR_BACKEND;
    CHECK(rc == XS_OK, "load the generated bundle: %s", xs_error_msg());
    if (m && in.pcm) {
        CHECK(m->spm != NULL, "tokenizer loaded");
        CHECK(m->spm && xs_spm_vocab_size(m->spm) <= m->lm->cfg.text_card &&
                  xs_spm_vocab_size(m->spm) > 20,
              "tokenizer vocab %d within text_card %d", m->spm ? xs_spm_vocab_size(m->spm) : -1,
              m->lm->cfg.text_card);
        mimi_stream *s = NULL;
        CHECK(mimi_stream_new(m->mimi, &s) == XS_OK, "mimi stream");
        int64_t T = in.n / 1920;
        int32_t *codes = calloc((size_t)T * 8, sizeof *codes);
        for (int64_t f = 0; s && f < T; f++)
            if (mimi_encode(s, in.pcm + f * 1920, 1920, 8, codes + f * 8) != XS_OK) {
                CHECK(0, "encode frame %lld: %s", (long long)f, xs_error_msg());
                break;
            }
        int min_distinct = 1 << 30;
        for (int k = 0; k < 8; k++) {
            int distinct = 0;
            for (int64_t f = 0; f < T; f++) {
                bool seen = false;
                for (int64_t g = 0; g < f && !seen; g++) seen = codes[g * 8 + k] == codes[f * 8 + k];
                distinct += !seen;
            }
            if (distinct < min_distinct) min_distinct = distinct;
        }
        CHECK(min_distinct >= 8, "every codebook gives >= 8 distinct codes over %lld frames (min %d)",
              (long long)T, min_distinct);
        free(codes);
        mimi_stream_free(s);

        /* a short turn: audio comes out, finite and not silent */
        xswarm_session *ss = NULL;
        CHECK(xs_pipe_session_new(m, NULL, NULL, &ss) == XS_OK, "session");
        float out[4 * 1920];
        double energy = 0;
        int bad = 0;
        for (int f = 0; ss && f < 20 && f < T; f++) {
            xs_pipe_frame_info info;
            if (xs_pipe_session_frame(ss, in.pcm + f * 1920, out, &info) != XS_OK) {
                CHECK(0, "frame %d: %s", f, xs_error_msg());
                break;
            }
            for (int i = 0; i < info.n_out_frames * 1920; i++) {
                if (!(out[i] == out[i]) || out[i] > 1e3f || out[i] < -1e3f) bad++;
                energy += (double)out[i] * out[i];
            }
        }
        CHECK(bad == 0 && energy > 0, "response finite and not silent (energy %g)", energy);
        CHECK(ss && strlen(xs_pipe_session_text(ss)) > 0, "text came out: '%s'",
              ss ? xs_pipe_session_text(ss) : "");
        xswarm_session_free(ss);
    }
    xswarm_model_free(m);
    if (be) xs_backend_close(be);
    xs_audio_free(&in);

    /* bad requests are errors, not crashes */
    xs_gen_opts bad = {.preset = "huge", .dtype = XS_F32, .out_dir = a};
    CHECK(xs_gen_model(&bad) == XS_ERR_ARG, "unknown preset rejected");
    bad.preset = "tiny";
    bad.dtype = XS_Q4_0;
    CHECK(xs_gen_model(&bad) == XS_ERR_UNSUPPORTED, "q4_0 says not written yet");
    bad.dtype = XS_F32;
    bad.out_dir = "/proc/no/such/dir";
    CHECK(xs_gen_model(&bad) != XS_OK, "unwritable folder is an error");

    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("pipeline_gen_model");
}
