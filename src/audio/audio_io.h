/*
 * audio_io.h — read any audio file libsndfile knows (WAV, FLAC, OGG, MP3),
 * mix down to mono, resample with libsoxr (high quality); write WAV.
 */
#ifndef XS_AUDIO_AUDIO_IO_H
#define XS_AUDIO_AUDIO_IO_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

/* Mono float PCM in [-1, 1]. */
typedef struct xs_audio {
    float *pcm;       /* owned; free with xs_audio_free */
    int64_t n;        /* samples */
    int sample_rate;  /* Hz */
} xs_audio;

/* What xs_audio_read found and did, for "say what was done" messages. */
typedef struct xs_audio_info {
    int file_rate;
    int file_channels;
    int64_t file_frames;
    char format[32];   /* "WAV", "FLAC", ... */
    bool mixed_down;
    bool resampled;
} xs_audio_info;

#define XS_AUDIO_MAX_SECONDS (60 * 60) /* longer input is refused as absurd */

/* Read, mix down and resample to target_rate (0 keeps the file's rate).
 * Rejects empty files, non-finite samples and input over
 * XS_AUDIO_MAX_SECONDS with a message naming the file. info may be NULL. */
xs_status xs_audio_read(const char *path, int target_rate, xs_audio *out, xs_audio_info *info);
/* WAV: 16-bit PCM (int16 = clamp(round(x * 32768))) or 32-bit float. */
xs_status xs_audio_write_wav(const char *path, const float *pcm, int64_t n, int sample_rate,
                             bool float32);
/* Resample mono float PCM with soxr HQ; *out is malloc'd. */
xs_status xs_audio_resample(const float *in, int64_t n, int in_rate, int out_rate, float **out,
                            int64_t *out_n);
void xs_audio_free(xs_audio *a);

#endif
