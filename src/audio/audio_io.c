/*
 * audio_io.c — audio files in and out.
 *
 * Reading goes through libsndfile (WAV, FLAC, OGG, and MP3 since 1.1), which
 * hands us floats already normalized so that int16 v becomes exactly
 * v / 32768: that is what makes a written-then-read 16-bit file come back
 * bit-exact, and what the goldens (int16/32768) expect. Channels are averaged
 * to mono; the rate is converted with libsoxr's HQ preset.
 */
#include "audio/audio_io.h"
#include "audio/audio_raw.h"

#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

/* Frames read per sf_readf_float call: bounded memory for interleaved data. */
#define AUDIO_READ_CHUNK 65536

static void audio_format_name(int format, char *buf, size_t n) {
    SF_FORMAT_INFO fi;
    memset(&fi, 0, sizeof fi);
    fi.format = format & SF_FORMAT_TYPEMASK;
    const char *name = "unknown";
    if (sf_command(NULL, SFC_GET_FORMAT_INFO, &fi, sizeof fi) == 0 && fi.name) name = fi.name;
    /* libsndfile names are long ("WAV (Microsoft)"); keep the first word. */
    size_t k = 0;
    while (name[k] && name[k] != ' ' && k + 1 < n) {
        buf[k] = name[k];
        k++;
    }
    buf[k] = 0;
}

xs_status xs_audio_resample(const float *in, int64_t n, int in_rate, int out_rate, float **out,
                            int64_t *out_n) {
    if (!in || n <= 0 || in_rate <= 0 || out_rate <= 0 || !out || !out_n)
        return xs_error(XS_ERR_ARG, "resample: bad arguments (n=%lld, %d -> %d Hz)", (long long)n,
                        in_rate, out_rate);
    /* Output length rounds to nearest so that a round trip A->B->A keeps n. */
    int64_t on = (int64_t)llround((double)n * out_rate / in_rate);
    if (on < 1) on = 1;
    float *o = malloc((size_t)on * sizeof *o);
    if (!o) return xs_error(XS_ERR_NOMEM, "resample: out of memory (%lld samples)", (long long)on);
    if (in_rate == out_rate) {
        memcpy(o, in, (size_t)n * sizeof *o);
        *out = o;
        *out_n = n;
        return XS_OK;
    }
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    size_t odone = 0;
    soxr_error_t err = soxr_oneshot((double)in_rate, (double)out_rate, 1, in, (size_t)n, NULL, o,
                                    (size_t)on, &odone, &io, &q, NULL);
    if (err) {
        free(o);
        return xs_error(XS_ERR_INTERNAL, "resample %d -> %d Hz: soxr: %s", in_rate, out_rate, err);
    }
    /* soxr may deliver a sample less than the rounded length: pad with 0. */
    for (size_t i = odone; i < (size_t)on; i++) o[i] = 0.0f;
    *out = o;
    *out_n = on;
    return XS_OK;
}

static xs_status audio_read_impl(const char *path, int target_rate, bool allow_nonfinite,
                                 xs_audio *out, xs_audio_info *info) {
    if (!path || !out) return xs_error(XS_ERR_ARG, "audio read: NULL argument");
    if (target_rate < 0) return xs_error(XS_ERR_ARG, "%s: bad target rate %d", path, target_rate);
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *sf = sf_open(path, SFM_READ, &si);
    if (!sf) return xs_error(XS_ERR_IO, "%s: cannot read audio: %s", path, sf_strerror(NULL));
    xs_status rc = XS_OK;
    float *mono = NULL, *chunk = NULL;
    if (si.channels <= 0 || si.samplerate <= 0) {
        rc = xs_error(XS_ERR_FORMAT, "%s: bad header (%d channels, %d Hz)", path, si.channels,
                      si.samplerate);
        goto done;
    }
    if (si.frames <= 0) {
        rc = xs_error(XS_ERR_FORMAT, "%s: empty audio (0 samples)", path);
        goto done;
    }
    if ((double)si.frames / si.samplerate > XS_AUDIO_MAX_SECONDS) {
        rc = xs_error(XS_ERR_FORMAT, "%s: %.0f s of audio is over the %d s limit", path,
                      (double)si.frames / si.samplerate, XS_AUDIO_MAX_SECONDS);
        goto done;
    }
    /* Some decoders (MP3) report an estimate: read until EOF, growing if needed. */
    int64_t cap = si.frames + 1, n = 0;
    mono = malloc((size_t)cap * sizeof *mono);
    chunk = malloc((size_t)AUDIO_READ_CHUNK * si.channels * sizeof *chunk);
    if (!mono || !chunk) {
        rc = xs_error(XS_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (;;) {
        sf_count_t got = sf_readf_float(sf, chunk, AUDIO_READ_CHUNK);
        if (got <= 0) break;
        if (n + got > cap) {
            int64_t ncap = (n + got) * 2;
            if ((double)ncap / si.samplerate > 2.0 * XS_AUDIO_MAX_SECONDS) {
                rc = xs_error(XS_ERR_FORMAT, "%s: audio longer than the %d s limit", path,
                              XS_AUDIO_MAX_SECONDS);
                goto done;
            }
            float *p = realloc(mono, (size_t)ncap * sizeof *p);
            if (!p) {
                rc = xs_error(XS_ERR_NOMEM, "%s: out of memory", path);
                goto done;
            }
            mono = p;
            cap = ncap;
        }
        for (sf_count_t f = 0; f < got; f++) {
            const float *fr = chunk + f * si.channels;
            double s = 0.0;
            for (int c = 0; c < si.channels; c++) s += fr[c];
            float v = si.channels == 1 ? fr[0] : (float)(s / si.channels);
            if (!isfinite(v) && !allow_nonfinite) {
                rc = xs_error(XS_ERR_FORMAT, "%s: non-finite sample at %.3f s", path,
                              (double)(n + f) / si.samplerate);
                goto done;
            }
            mono[n + f] = v;
        }
        n += got;
    }
    if (n <= 0) {
        rc = xs_error(XS_ERR_FORMAT, "%s: empty audio (no samples decoded)", path);
        goto done;
    }
    if ((double)n / si.samplerate > XS_AUDIO_MAX_SECONDS) {
        rc = xs_error(XS_ERR_FORMAT, "%s: %.0f s of audio is over the %d s limit", path,
                      (double)n / si.samplerate, XS_AUDIO_MAX_SECONDS);
        goto done;
    }
    int rate = si.samplerate;
    bool resampled = false;
    if (target_rate > 0 && target_rate != rate) {
        float *r = NULL;
        int64_t rn = 0;
        rc = xs_audio_resample(mono, n, rate, target_rate, &r, &rn);
        if (rc != XS_OK) {
            xs_error_prefix(rc, "%s: ", path);
            goto done;
        }
        free(mono);
        mono = r;
        n = rn;
        rate = target_rate;
        resampled = true;
    }
    out->pcm = mono;
    out->n = n;
    out->sample_rate = rate;
    mono = NULL;
    if (info) {
        memset(info, 0, sizeof *info);
        info->file_rate = si.samplerate;
        info->file_channels = si.channels;
        info->file_frames = si.frames;
        audio_format_name(si.format, info->format, sizeof info->format);
        info->mixed_down = si.channels > 1;
        info->resampled = resampled;
    }
done:
    free(chunk);
    free(mono);
    sf_close(sf);
    return rc;
}

xs_status xs_audio_write_wav(const char *path, const float *pcm, int64_t n, int sample_rate,
                             bool float32) {
    if (!path || (!pcm && n > 0) || n < 0 || sample_rate <= 0)
        return xs_error(XS_ERR_ARG, "%s: bad arguments for WAV write", path ? path : "(null)");
    SF_INFO si;
    memset(&si, 0, sizeof si);
    si.samplerate = sample_rate;
    si.channels = 1;
    si.format = SF_FORMAT_WAV | (float32 ? SF_FORMAT_FLOAT : SF_FORMAT_PCM_16);
    SNDFILE *sf = sf_open(path, SFM_WRITE, &si);
    if (!sf) return xs_error(XS_ERR_IO, "%s: cannot write: %s", path, sf_strerror(NULL));
    xs_status rc = XS_OK;
    enum { CH = 8192 };
    short buf[CH];
    for (int64_t i = 0; i < n && rc == XS_OK; i += CH) {
        int64_t m = n - i < CH ? n - i : CH;
        sf_count_t w;
        if (float32) {
            w = sf_write_float(sf, pcm + i, m);
        } else {
            /* Our own rounding rule, not libsndfile's: x*32768 rounded, clamped. */
            for (int64_t k = 0; k < m; k++) {
                double v = isfinite(pcm[i + k]) ? round((double)pcm[i + k] * 32768.0) : 0.0;
                buf[k] = (short)(v > 32767.0 ? 32767 : v < -32768.0 ? -32768 : v);
            }
            w = sf_write_short(sf, buf, m);
        }
        if (w != m) rc = xs_error(XS_ERR_IO, "%s: write failed: %s", path, sf_strerror(sf));
    }
    if (sf_close(sf) != 0 && rc == XS_OK) rc = xs_error(XS_ERR_IO, "%s: close failed", path);
    return rc;
}

xs_status xs_audio_read(const char *path, int target_rate, xs_audio *out, xs_audio_info *info) {
    return audio_read_impl(path, target_rate, false, out, info);
}

xs_status xs_audio_read_raw(const char *path, xs_audio *out, xs_audio_info *info) {
    return audio_read_impl(path, 0, true, out, info);
}

void xs_audio_free(xs_audio *a) {
    if (!a) return;
    free(a->pcm);
    a->pcm = NULL;
    a->n = 0;
}
