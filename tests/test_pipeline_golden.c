/*
 * test_pipeline_golden.c — the whole conversation loop against Kyutai's
 * golden/pipeline_tiny (run_inference.py, greedy, tiny Mimi + tiny LM):
 *   - the session (model/session.h) on ref and cpu (and cuda when usable):
 *     step_out exact (all 77 rows), output_pcm within 1e-4;
 *   - the public xswarm_session API, pushed in odd-sized chunks: same pcm;
 *   - `xswarm run --greedy --codes-out`: the codes file's step_out exact, the
 *     16-bit WAV within 2e-4;
 *   - sampling: same seed twice -> byte-identical WAV; --threads 1 vs 2 ->
 *     identical tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "formats/safetensors.h"
#include "model/session.h"
#include "testutil.h"

#define N_FRAMES 76
#define N_STEPS 77

static xs_bundle g_bundle;
static const int64_t *g_step_out; /* golden [77, 9] */
static const float *g_pcm;        /* golden [145920] */

static void setup_bundle(void) {
    snprintf(g_bundle.lm, XS_PATH_MAX, "%s", golden_path("lm_tiny/model.safetensors"));
    snprintf(g_bundle.lm_config, XS_PATH_MAX, "%s", golden_path("lm_tiny/config.json"));
    snprintf(g_bundle.mimi, XS_PATH_MAX, "%s", golden_path("mimi_tiny/model.safetensors"));
    snprintf(g_bundle.mimi_config, XS_PATH_MAX, "%s", golden_path("mimi_tiny/config.json"));
}

/* The session API on one backend, greedy. */
static void check_backend(const char *name, const float *in) {
    xs_backend *be = NULL;
    if (xs_backend_open(name, 2, &be) != XS_OK) {
        CHECK(0, "%s: open backend: %s", name, xs_error_msg());
        return;
    }
    xswarm_model *m = NULL;
    xs_status rc = xs_pipe_model_load(be, &g_bundle, &m);
    CHECK(rc == XS_OK, "%s: load: %s", name, xs_error_msg());
    if (rc != XS_OK) {
        xs_backend_close(be);
        return;
    }
    lm_sampling smp;
    lm_sampling_default(&smp);
    smp.greedy = true;
    xswarm_session *s = NULL;
    rc = xs_pipe_session_new(m, &smp, NULL, &s);
    CHECK(rc == XS_OK, "%s: session: %s", name, xs_error_msg());
    float *out = calloc((size_t)N_STEPS * XSWARM_FRAME_SAMPLES, sizeof *out);
    int64_t n_out = 0, step = 0, bad_rows = 0, first_bad = -1;
    for (int f = 0; s && f < N_FRAMES; f++) {
        xs_pipe_frame_info info;
        rc = xs_pipe_session_frame(s, in + (int64_t)f * XSWARM_FRAME_SAMPLES,
                                   out + n_out, &info);
        if (rc != XS_OK) {
            CHECK(0, "%s: frame %d: %s", name, f, xs_error_msg());
            break;
        }
        n_out += (int64_t)info.n_out_frames * XSWARM_FRAME_SAMPLES;
        for (int k = 0; k < info.n_steps; k++, step++) {
            bool same = true;
            for (int j = 0; j < 9; j++) same &= info.step_out[k][j] == g_step_out[step * 9 + j];
            if (!same) {
                bad_rows++;
                if (first_bad < 0) first_bad = step;
            }
        }
    }
    CHECK(step == N_STEPS, "%s: %lld LM steps (want 77)", name, (long long)step);
    CHECK(bad_rows == 0, "%s: %lld of 77 step_out rows differ (first: step %lld)", name,
          (long long)bad_rows, (long long)first_bad);
    CHECK(n_out == 145920, "%s: %lld output samples (want 145920)", name, (long long)n_out);
    if (n_out == 145920) {
        double e = test_max_abs_diff(g_pcm, out, n_out);
        CHECK(e <= 1e-4, "%s: output_pcm max abs error %.3g (want <= 1e-4)", name, e);
        fprintf(stderr, "%s: step_out exact, output_pcm max abs error %.3g\n", name, e);
    }
    free(out);
    xswarm_session_free(s);
    xswarm_model_free(m);
    xs_backend_close(be);
}

/* The public API, input pushed in chunks that do not align with frames. */
static void check_public_api(const float *in) {
    xswarm_model *m = NULL;
    xswarm_status rc = xswarm_model_load_parts(g_bundle.lm, g_bundle.lm_config, g_bundle.mimi,
                                               g_bundle.mimi_config, NULL, "cpu", 1, &m);
    CHECK(rc == XSWARM_OK, "public load: %s", xswarm_last_error());
    if (rc != XSWARM_OK) return;
    xswarm_session *s = NULL;
    CHECK(xswarm_session_new(m, 1, &s) == XSWARM_OK, "public session: %s", xswarm_last_error());
    if (!s) {
        xswarm_model_free(m);
        return;
    }
    CHECK(xswarm_session_set_sampling(s, 1, 0, 0, 0, 0) == XSWARM_OK, "greedy: %s",
          xswarm_last_error());
    const int64_t n_in = (int64_t)N_FRAMES * XSWARM_FRAME_SAMPLES + 1000; /* + a partial frame */
    float *out = calloc(200000, sizeof *out);
    size_t got = 0;
    for (int64_t i = 0; i < n_in;) {
        int64_t chunk = 1234 + (i % 777);
        if (chunk > n_in - i) chunk = n_in - i;
        if (xswarm_session_push(s, in + i, (size_t)chunk) != XSWARM_OK) {
            CHECK(0, "push: %s", xswarm_last_error());
            break;
        }
        got += xswarm_session_pull(s, out + got, 200000 - got);
        i += chunk;
    }
    CHECK(got == 145920, "public API: %zu samples pulled (want 145920)", got);
    if (got == 145920) {
        double e = test_max_abs_diff(g_pcm, out, 145920);
        CHECK(e <= 1e-4, "public API: max abs error %.3g", e);
    }
    char text[16];
    CHECK(xswarm_session_pull_text(s, text, sizeof text) == 0 && text[0] == 0,
          "no tokenizer: no text");
    /* two sessions of one model, frames interleaved: each is its own
     * conversation (the model is shared, the state is not) */
    xswarm_session *s2 = NULL, *s3 = NULL;
    CHECK(xswarm_session_new(m, 1, &s2) == XSWARM_OK && xswarm_session_new(m, 1, &s3) == XSWARM_OK,
          "two more sessions");
    if (s2 && s3) {
        xswarm_session_set_sampling(s2, 1, 0, 0, 0, 0);
        xswarm_session_set_sampling(s3, 1, 0, 0, 0, 0);
        float *o2 = calloc(10 * XSWARM_FRAME_SAMPLES, sizeof *o2);
        float *o3 = calloc(10 * XSWARM_FRAME_SAMPLES, sizeof *o3);
        size_t g2 = 0, g3 = 0;
        for (int f = 0; f < 10; f++) {
            /* s3 hears frames in reverse order: a different conversation */
            xswarm_session_push(s2, in + (int64_t)f * XSWARM_FRAME_SAMPLES, XSWARM_FRAME_SAMPLES);
            xswarm_session_push(s3, in + (int64_t)(60 - f) * XSWARM_FRAME_SAMPLES, XSWARM_FRAME_SAMPLES);
            g2 += xswarm_session_pull(s2, o2 + g2, 10 * XSWARM_FRAME_SAMPLES - g2);
            g3 += xswarm_session_pull(s3, o3 + g3, 10 * XSWARM_FRAME_SAMPLES - g3);
        }
        CHECK(g2 == 10 * XSWARM_FRAME_SAMPLES && test_max_abs_diff(g_pcm, o2, (int64_t)g2) <= 1e-4,
              "interleaved session equals the golden run (%zu samples)", g2);
        CHECK(g3 == 10 * XSWARM_FRAME_SAMPLES && test_max_abs_diff(g_pcm, o3, (int64_t)g3) > 1e-3,
              "the other session answered its own input");
        free(o2);
        free(o3);
    }
    xswarm_session_free(s2);
    xswarm_session_free(s3);
    /* reset gives a fresh conversation: the first frames again */
    CHECK(xswarm_session_reset(s) == XSWARM_OK, "reset");
    CHECK(xswarm_session_push(s, in, 2 * XSWARM_FRAME_SAMPLES) == XSWARM_OK, "push after reset");
    size_t again = xswarm_session_pull(s, out, 200000);
    CHECK(again == 2 * XSWARM_FRAME_SAMPLES &&
              test_max_abs_diff(g_pcm, out, (int64_t)again) <= 1e-4,
          "after reset: %zu samples equal to the first ones", again);
    free(out);
    xswarm_session_free(s);
    xswarm_model_free(m);
}

static int run_cli(const char *extra, const char *out_wav, const char *codes) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "%s --quiet run --lm %s --config %s --mimi %s --mimi-config %s %s -o %s "
             "--codes-out %s %s 2>/dev/null",
             test_binary(), g_bundle.lm, g_bundle.lm_config, g_bundle.mimi, g_bundle.mimi_config,
             golden_path("mimi_tiny/input.wav"), out_wav, codes, extra);
    return system(cmd);
}

static bool read_i64(const char *path, const char *name, int64_t *dst, int64_t n) {
    xs_safetensors *st = NULL;
    if (xs_st_open(path, &st) != XS_OK) return false;
    const xs_tensor *t = xs_st_find(st, name);
    bool ok = t && t->dtype == XS_I64 && xs_tensor_numel(t) == n;
    if (ok) memcpy(dst, t->data, (size_t)n * sizeof *dst);
    xs_st_close(st);
    return ok;
}

static bool files_equal(const char *a, const char *b) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

static void check_cli(void) {
    char dir[] = "/tmp/xs_pipe_golden_XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    char wav[256], codes[256], wav2[256], codes2[256], wav3[256], codes3[256];
    snprintf(wav, sizeof wav, "%s/out.wav", dir);
    snprintf(codes, sizeof codes, "%s/codes.safetensors", dir);
    CHECK(run_cli("--greedy --backend cpu", wav, codes) == 0, "xswarm run --greedy exits 0");
    int64_t so[N_STEPS * 9];
    CHECK(read_i64(codes, "step_out", so, N_STEPS * 9), "codes file has step_out I64 [77, 9]");
    CHECK(!memcmp(so, g_step_out, sizeof so), "CLI step_out equals the golden one");
    int64_t fc[N_FRAMES * 8];
    CHECK(read_i64(codes, "frame_codes", fc, N_FRAMES * 8), "codes file has frame_codes [76, 8]");
    xs_audio a = {0};
    if (xs_audio_read(wav, 24000, &a, NULL) == XS_OK) {
        CHECK(a.n == 145920, "WAV has %lld samples", (long long)a.n);
        if (a.n == 145920) {
            double e = test_max_abs_diff(g_pcm, a.pcm, a.n);
            CHECK(e <= 2e-4, "WAV vs output_pcm max abs error %.3g (want <= 2e-4)", e);
        }
        xs_audio_free(&a);
    } else {
        CHECK(0, "read the response WAV: %s", xs_error_msg());
    }
    /* sampling: determinism and thread independence */
    snprintf(wav, sizeof wav, "%s/s1.wav", dir);
    snprintf(codes, sizeof codes, "%s/s1.safetensors", dir);
    snprintf(wav2, sizeof wav2, "%s/s2.wav", dir);
    snprintf(codes2, sizeof codes2, "%s/s2.safetensors", dir);
    snprintf(wav3, sizeof wav3, "%s/s3.wav", dir);
    snprintf(codes3, sizeof codes3, "%s/s3.safetensors", dir);
    CHECK(run_cli("--seed 7 --backend cpu --threads 2", wav, codes) == 0, "sampled run 1");
    CHECK(run_cli("--seed 7 --backend cpu --threads 2", wav2, codes2) == 0, "sampled run 2");
    CHECK(run_cli("--seed 7 --backend cpu --threads 1", wav3, codes3) == 0, "sampled run, 1 thread");
    CHECK(files_equal(wav, wav2), "same seed, same backend: byte-identical WAV");
    int64_t s1[N_STEPS * 9], s3[N_STEPS * 9];
    bool ok1 = read_i64(codes, "step_out", s1, N_STEPS * 9);
    bool ok3 = read_i64(codes3, "step_out", s3, N_STEPS * 9);
    CHECK(ok1 && ok3 && !memcmp(s1, s3, sizeof s1), "--threads 1 vs 2: identical tokens");
    CHECK(ok1 && memcmp(s1, g_step_out, sizeof s1) != 0, "sampling differs from greedy");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

int main(void) {
    setup_bundle();
    xs_safetensors *gold = NULL;
    if (xs_st_open(golden_path("pipeline_tiny/golden.safetensors"), &gold) != XS_OK)
        test_skip("pipeline_tiny/golden.safetensors not readable");
    const xs_tensor *so = xs_st_find(gold, "step_out");
    const xs_tensor *op = xs_st_find(gold, "output_pcm");
    CHECK(so && so->dtype == XS_I64 && xs_tensor_numel(so) == N_STEPS * 9, "golden step_out");
    CHECK(op && op->dtype == XS_F32 && xs_tensor_numel(op) == 145920, "golden output_pcm");
    if (!so || !op) return test_summary("pipeline_golden");
    g_step_out = so->data;
    g_pcm = op->data;
    xs_audio in = {0};
    if (xs_audio_read(golden_path("mimi_tiny/input.wav"), 24000, &in, NULL) != XS_OK)
        test_skip("mimi_tiny/input.wav not readable");
    CHECK(in.n >= N_FRAMES * XSWARM_FRAME_SAMPLES + 1000, "input has %lld samples", (long long)in.n);
    check_backend("ref", in.pcm);
    check_backend("cpu", in.pcm);
    if (xs_backend_cuda_usable(NULL, 0)) check_backend("cuda", in.pcm); /* GPU machines only */
    check_public_api(in.pcm);
    check_cli();
    xs_audio_free(&in);
    xs_st_close(gold);
    return test_summary("pipeline_golden");
}
