/*
 * audio_raw.h — reading audio as it is, for measurement tools (analyze):
 * the file's own rate, channels averaged, non-finite samples kept so that
 * they can be reported instead of refused. Same limits otherwise as
 * xs_audio_read (empty and over-long files are errors).
 */
#ifndef XS_AUDIO_AUDIO_RAW_H
#define XS_AUDIO_AUDIO_RAW_H

#include "audio/audio_io.h"

xs_status xs_audio_read_raw(const char *path, xs_audio *out, xs_audio_info *info);

#endif
