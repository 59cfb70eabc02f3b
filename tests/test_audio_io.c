/*
 * test_audio_io.c — xs_audio_read / xs_audio_write_wav / xs_audio_resample:
 * 16-bit rounding rule and exact round trip, float WAV, stereo mixdown and
 * resampling (length and a sine's frequency), rejection of empty and NaN
 * files (message names the file), and the golden mimi_tiny input.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <sndfile.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "testutil.h"

static char g_tmp[256];
static const char *tmp_path(const char *name) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/xs_test_audio_%d_%s", (int)getpid(), name);
    return g_tmp;
}

/* Frequency of a sine by counting upward zero crossings over the middle. */
static double sine_freq(const float *x, int64_t n, int rate) {
    int64_t a = n / 10, b = n - n / 10, first = -1, last = -1, count = 0;
    for (int64_t i = a + 1; i < b; i++) {
        if (x[i - 1] < 0 && x[i] >= 0) {
            if (first < 0) first = i;
            last = i;
            count++;
        }
    }
    if (count < 2) return 0;
    return (double)(count - 1) * rate / (double)(last - first);
}

static void test_roundtrip_16bit(void) {
    enum { N = 4800 };
    float x[N], exact[N];
    test_fill_uniform(x, N, 7, -1.2f, 1.2f); /* includes values that must clamp */
    x[0] = 0.5f / 32768.0f;                   /* ties: round() goes away from zero */
    x[1] = -0.5f / 32768.0f;
    x[2] = 1.0f;
    x[3] = -1.0f;
    for (int i = 0; i < N; i++) {
        double v = round((double)x[i] * 32768.0);
        v = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
        exact[i] = (float)(v / 32768.0);
    }
    const char *p = tmp_path("rt16.wav");
    CHECK(xs_audio_write_wav(p, x, N, 24000, false) == XS_OK, "write 16-bit: %s", xs_error_msg());
    xs_audio a = {0};
    xs_audio_info info;
    CHECK(xs_audio_read(p, 0, &a, &info) == XS_OK, "read back: %s", xs_error_msg());
    CHECK(a.n == N && a.sample_rate == 24000, "length %lld rate %d", (long long)a.n,
          a.sample_rate);
    if (a.n == N) CHECK(test_max_abs_diff(exact, a.pcm, N) == 0.0, "16-bit rounding rule exact");
    if (a.n == N) CHECK(a.pcm[0] == 1.0f / 32768 && a.pcm[1] == -1.0f / 32768, "ties away from 0");
    if (a.n == N) CHECK(a.pcm[2] == 32767.0f / 32768 && a.pcm[3] == -1.0f, "clamp at full scale");
    CHECK(!info.mixed_down && !info.resampled && info.file_channels == 1, "info: nothing done");
    CHECK(strcmp(info.format, "WAV") == 0, "format WAV, got %s", info.format);
    xs_audio_free(&a);
    /* Writing what we read gives the same file content again. */
    unlink(p);

    const char *pf = tmp_path("rtf.wav");
    CHECK(xs_audio_write_wav(pf, x, N, 16000, true) == XS_OK, "write float");
    CHECK(xs_audio_read(pf, 0, &a, NULL) == XS_OK, "read float");
    if (a.n == N) CHECK(test_max_abs_diff(x, a.pcm, N) == 0.0, "float WAV exact");
    CHECK(a.sample_rate == 16000, "float rate");
    xs_audio_free(&a);
    unlink(pf);
}

static void test_stereo_8k(void) {
    enum { N = 8000 }; /* 1 s at 8 kHz */
    float *st = malloc(2 * N * sizeof *st);
    for (int i = 0; i < N; i++) {
        float s = 0.5f * sinf(2.0f * (float)M_PI * 440.0f * i / 8000.0f);
        st[2 * i] = s + 0.2f; /* opposite offsets cancel in the mixdown */
        st[2 * i + 1] = s - 0.2f;
    }
    SF_INFO si = {.samplerate = 8000, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    const char *p = tmp_path("st8k.wav");
    SNDFILE *sf = sf_open(p, SFM_WRITE, &si);
    CHECK(sf != NULL, "open stereo for write");
    if (!sf) return;
    sf_writef_float(sf, st, N);
    sf_close(sf);
    free(st);
    xs_audio a = {0};
    xs_audio_info info;
    CHECK(xs_audio_read(p, 24000, &a, &info) == XS_OK, "read stereo: %s", xs_error_msg());
    CHECK(a.n == 3 * N, "length 3x: %lld", (long long)a.n);
    CHECK(a.sample_rate == 24000, "rate 24k");
    CHECK(info.mixed_down && info.resampled && info.file_rate == 8000 && info.file_channels == 2,
          "info says mixed and resampled");
    double f = sine_freq(a.pcm, a.n, 24000);
    CHECK(fabs(f - 440.0) < 0.5, "sine 440 Hz preserved, got %.3f", f);
    double mean = 0, pk = 0;
    for (int64_t i = a.n / 4; i < 3 * a.n / 4; i++) {
        mean += a.pcm[i];
        if (fabs(a.pcm[i]) > pk) pk = fabs(a.pcm[i]);
    }
    mean /= a.n / 2;
    CHECK(fabs(mean) < 1e-3, "offsets cancelled in mixdown, mean %.5f", mean);
    CHECK(fabs(pk - 0.5) < 0.01, "amplitude kept, peak %.4f", pk);
    xs_audio_free(&a);
    unlink(p);

    /* Resample round trip 24k -> 16k -> 24k keeps the length. */
    float x[2401], *y = NULL, *z = NULL;
    int64_t ny = 0, nz = 0;
    for (int i = 0; i < 2401; i++) x[i] = sinf(0.05f * i);
    CHECK(xs_audio_resample(x, 2401, 24000, 16000, &y, &ny) == XS_OK && ny == 1601, "down %lld",
          (long long)ny);
    CHECK(xs_audio_resample(y, ny, 16000, 24000, &z, &nz) == XS_OK && nz == 2402 - 1 + 1,
          "up %lld", (long long)nz);
    if (z && nz >= 2401) CHECK(test_max_abs_diff(x + 200, z + 200, 2000) < 2e-3, "round trip close");
    free(y);
    free(z);
    CHECK(xs_audio_resample(x, 0, 24000, 16000, &y, &ny) != XS_OK, "n=0 refused");
}

static void test_rejects(void) {
    xs_audio a = {0};
    const char *p = tmp_path("empty.wav");
    CHECK(xs_audio_write_wav(p, NULL, 0, 24000, false) == XS_OK, "write empty");
    CHECK(xs_audio_read(p, 24000, &a, NULL) != XS_OK, "empty refused");
    CHECK(strstr(xs_error_msg(), p) != NULL, "empty: message names file: %s", xs_error_msg());
    CHECK(strstr(xs_error_msg(), "empty") != NULL, "says empty: %s", xs_error_msg());
    unlink(p);

    float x[100];
    test_fill_uniform(x, 100, 3, -0.5f, 0.5f);
    x[50] = NAN;
    p = tmp_path("nan.wav");
    CHECK(xs_audio_write_wav(p, x, 100, 24000, true) == XS_OK, "write NaN float wav");
    CHECK(xs_audio_read(p, 0, &a, NULL) != XS_OK, "NaN refused");
    CHECK(strstr(xs_error_msg(), p) != NULL, "NaN: names file: %s", xs_error_msg());
    CHECK(strstr(xs_error_msg(), "non-finite") != NULL, "says non-finite: %s", xs_error_msg());
    unlink(p);

    p = tmp_path("garbage.wav");
    FILE *f = fopen(p, "wb");
    fputs("this is not audio at all", f);
    fclose(f);
    CHECK(xs_audio_read(p, 0, &a, NULL) != XS_OK, "garbage refused");
    CHECK(strstr(xs_error_msg(), p) != NULL, "garbage: names file: %s", xs_error_msg());
    unlink(p);
    CHECK(xs_audio_read("/nonexistent/x.wav", 0, &a, NULL) != XS_OK, "missing refused");
}

/* Read tensor `name` (F32) from a safetensors file; test-only parser. */
static float *st_read_f32(const char *path, const char *name, int64_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint64_t hl = 0;
    float *out = NULL;
    char *hdr = NULL;
    if (fread(&hl, 8, 1, f) != 1 || hl > (1u << 26)) goto end;
    hdr = calloc(hl + 1, 1);
    if (fread(hdr, 1, hl, f) != hl) goto end;
    cJSON *j = cJSON_Parse(hdr);
    cJSON *t = cJSON_GetObjectItem(j, name);
    cJSON *off = cJSON_GetObjectItem(t, "data_offsets");
    if (off && cJSON_GetArraySize(off) == 2) {
        long b = (long)cJSON_GetArrayItem(off, 0)->valuedouble;
        long e = (long)cJSON_GetArrayItem(off, 1)->valuedouble;
        *n = (e - b) / 4;
        out = malloc((size_t)(e - b));
        fseek(f, (long)(8 + hl) + b, SEEK_SET);
        if (fread(out, 1, (size_t)(e - b), f) != (size_t)(e - b)) {
            free(out);
            out = NULL;
        }
    }
    cJSON_Delete(j);
end:
    free(hdr);
    fclose(f);
    return out;
}

static void test_golden_input(void) {
    xs_audio a = {0};
    const char *wav = golden_path("mimi_tiny/input.wav");
    CHECK(xs_audio_read(wav, 24000, &a, NULL) == XS_OK, "read golden wav: %s", xs_error_msg());
    int64_t n = 0;
    float *ref = st_read_f32(golden_path("mimi_tiny/golden.safetensors"), "input_pcm", &n);
    CHECK(ref != NULL && n == 147422, "golden input_pcm (n=%lld)", (long long)n);
    CHECK(a.n == 147422, "wav length %lld", (long long)a.n);
    if (ref && a.n == n) CHECK(test_max_abs_diff(ref, a.pcm, n) == 0.0, "wav == input_pcm exactly");
    free(ref);
    xs_audio_free(&a);
}

int main(void) {
    test_roundtrip_16bit();
    test_stereo_8k();
    test_rejects();
    test_golden_input();
    return test_summary("test_audio_io");
}
