/*
 * analyze_png.c — the analysis as a picture: title with score and verdict,
 * waveform (min/max per column) with defect intervals tinted, speech
 * activity bar, spectrogram 0-8 kHz, pitch track (50-400 Hz, log), the 80 ms
 * codec frame grid, one lane per defect, a time axis and the key measures.
 * Pixels are drawn by hand into an RGB buffer; libpng writes it.
 */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/analyze_font.h"
#include "diag/analyze_internal.h"

typedef struct canvas { int w, h; uint8_t *px; } canvas;

enum { PNG_W = 1280, LEFT = 136, RIGHT = 12, TITLE_H = 28, WAVE_H = 150, ACT_H = 6, SPEC_H = 200,
       PITCH_H = 60, AXIS_H = 18, LANE_H = 14 };

static void put(canvas *c, int x, int y, uint32_t rgb, float alpha) {
    if (x < 0 || y < 0 || x >= c->w || y >= c->h) return;
    uint8_t *p = c->px + ((size_t)y * c->w + x) * 3;
    uint8_t col[3] = {(uint8_t)(rgb >> 16), (uint8_t)(rgb >> 8), (uint8_t)rgb};
    for (int k = 0; k < 3; k++) p[k] = (uint8_t)(p[k] * (1 - alpha) + col[k] * alpha + 0.5f);
}

static void rect(canvas *c, int x0, int y0, int x1, int y1, uint32_t rgb, float alpha) {
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) put(c, x, y, rgb, alpha);
}

static int text(canvas *c, int x, int y, const char *s, uint32_t rgb, int scale) {
    for (; *s; s++) {
        const uint8_t *g = an_font_glyph(*s);
        if (g)
            for (int r = 0; r < 7; r++)
                for (int b = 0; b < 5; b++)
                    if (g[r] & (0x10 >> b)) rect(c, x + b * scale, y + r * scale, x + (b + 1) * scale,
                                                 y + (r + 1) * scale, rgb, 1.0f);
        x += 6 * scale;
    }
    return x;
}

/* Dark blue -> purple -> orange -> pale yellow: readable in print and on screen. */
static uint32_t heat(double v) {
    static const double stops[5][3] = {{10, 10, 30}, {60, 20, 110}, {190, 50, 80}, {250, 150, 30},
                                       {255, 250, 200}};
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    double p = v * 4;
    int i = (int)p;
    if (i >= 4) i = 3;
    double f = p - i;
    uint32_t out = 0;
    for (int k = 0; k < 3; k++) {
        int cv = (int)(stops[i][k] * (1 - f) + stops[i + 1][k] * f);
        out = (out << 8) | (uint32_t)cv;
    }
    return out;
}

static const uint32_t k_defect_colors[] = {0xD62728, 0xFF7F0E, 0x9467BD, 0x2CA02C, 0x1F77B4,
                                           0x8C564B, 0xE377C2, 0x17BECF};

static xs_status write_png(const canvas *c, const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return xs_error(XS_ERR_IO, "%s: cannot create PNG", path);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        fclose(f);
        return xs_error(XS_ERR_NOMEM, "%s: libpng init failed", path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return xs_error(XS_ERR_IO, "%s: PNG write failed", path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++) png_write_row(png, c->px + (size_t)y * c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(f) != 0) return xs_error(XS_ERR_IO, "%s: PNG close failed", path);
    return XS_OK;
}

xs_status xs_an_write_png(const xs_analysis *a, const char *path, const char *title) {
    const int nd = a->n_defects;
    const int y_wave = TITLE_H + 4, y_act = y_wave + WAVE_H + 2, y_spec = y_act + ACT_H + 4;
    const int y_pitch = y_spec + SPEC_H + 4, y_axis = y_pitch + PITCH_H + 2;
    const int y_lanes = y_axis + AXIS_H + 4, y_foot = y_lanes + (nd > 0 ? nd : 1) * LANE_H + 6;
    canvas c = {PNG_W, y_foot + 14, NULL};
    c.px = malloc((size_t)c.w * c.h * 3);
    if (!c.px) return xs_error(XS_ERR_NOMEM, "%s: out of memory for the picture", path);
    memset(c.px, 255, (size_t)c.w * c.h * 3);
    const int pw = PNG_W - LEFT - RIGHT;
    const double dur = a->n > 0 ? (double)a->n / XS_AN_RATE : 1.0;
    char buf[256];

    /* Title: file, score, verdict. */
    snprintf(buf, sizeof buf, "%.0f/100 %s", a->score, xs_an_verdict_str(a->verdict));
    uint32_t vcol = a->verdict == XS_AN_CLEAR ? 0x1A7F2A : a->verdict == XS_AN_DEGRADED ? 0xC06000 : 0xB01010;
    int x = text(&c, 8, 7, buf, vcol, 2);
    snprintf(buf, sizeof buf, "%.90s", title ? title : "");
    text(&c, x + 16, 10, buf, 0x303030, 1);

    /* Panel backgrounds and labels. */
    rect(&c, LEFT, y_wave, LEFT + pw, y_wave + WAVE_H, 0xF6F6F8, 1);
    text(&c, 8, y_wave + 4, "WAVEFORM", 0x404040, 1);
    text(&c, 8, y_act - 1, "SPEECH", 0x404040, 1);
    text(&c, 8, y_spec + 4, "SPECTROGRAM", 0x404040, 1);
    text(&c, 8, y_spec + 14, "0-8 KHZ", 0x808080, 1);
    text(&c, 8, y_pitch + 4, "PITCH", 0x404040, 1);
    text(&c, 8, y_pitch + 14, "50-400 HZ", 0x808080, 1);

    /* Defect intervals tinted behind the waveform. */
    for (int i = 0; i < nd; i++) {
        const xs_an_defect *d = &a->defects[i];
        uint32_t col = k_defect_colors[i % 8];
        for (int k = 0; k < d->n_times; k++) {
            int x0 = LEFT + (int)(d->times[k][0] / dur * pw), x1 = LEFT + (int)ceil(d->times[k][1] / dur * pw);
            if (x1 <= x0) x1 = x0 + 1;
            rect(&c, x0, y_wave, x1, y_wave + WAVE_H, col, 0.12f);
        }
    }
    /* Waveform: min/max of the samples under each column; quiet files are
     * magnified (and say so) so that their shape stays visible. */
    const int mid = y_wave + WAVE_H / 2;
    double pk = pow(10.0, a->m.peak_dbfs / 20.0), gain = 1.0;
    if (pk > 1e-6 && pk < 0.5) gain = floor(0.9 / pk * 2) / 2; /* steps of 0.5x */
    if (gain > 1.0) {
        snprintf(buf, sizeof buf, "X%.1f", gain);
        text(&c, 8, y_wave + 24, buf, 0xC06000, 1);
    }
    for (int px = 0; px < pw; px++) put(&c, LEFT + px, mid, 0xB0B0B0, 1);
    for (int px = 0; px < pw && a->n > 0; px++) {
        int64_t s = (int64_t)((double)px / pw * a->n), e = (int64_t)((double)(px + 1) / pw * a->n);
        if (e <= s) e = s + 1;
        float lo = 1, hi = -1;
        for (int64_t i = s; i < e && i < a->n; i++) {
            lo = a->pcm[i] < lo ? a->pcm[i] : lo;
            hi = a->pcm[i] > hi ? a->pcm[i] : hi;
        }
        hi = (float)(hi * gain);
        lo = (float)(lo * gain);
        int y0 = mid - (int)(hi * (WAVE_H / 2 - 2)), y1 = mid - (int)(lo * (WAVE_H / 2 - 2));
        for (int y = y0; y <= y1; y++) put(&c, LEFT + px, y, 0x1F4E9A, 1);
    }
    /* Activity bar and spectrogram, frame by column. */
    double top = -1e9;
    for (int t = 0; t < a->n_frames; t++) top = a->frame_db[t] > top ? a->frame_db[t] : top;
    top += 6; /* bin levels sit a few dB under frame level */
    const int kmax = 8000 * XS_AN_NFFT / XS_AN_RATE;
    for (int px = 0; px < pw && a->n_frames > 0; px++) {
        double tsec = (px + 0.5) / pw * dur;
        int t = (int)((tsec * XS_AN_RATE - XS_AN_NFFT / 2) / XS_AN_HOP + 0.5);
        if (t < 0) t = 0;
        if (t >= a->n_frames) t = a->n_frames - 1;
        if (a->active[t]) rect(&c, LEFT + px, y_act, LEFT + px + 1, y_act + ACT_H, 0x2CA02C, 1);
        const float *sp = a->spec_db + (size_t)t * XS_AN_NBIN;
        for (int y = 0; y < SPEC_H; y++) {
            double fk = (double)(SPEC_H - 1 - y) / (SPEC_H - 1) * kmax;
            int k = (int)fk;
            double v = k + 1 < XS_AN_NBIN ? sp[k] + (sp[k + 1] - sp[k]) * (fk - k) : sp[k];
            put(&c, LEFT + px, y_spec + y, heat((v - (top - 80)) / 80), 1);
        }
        float f0 = a->pitch_hz[t];
        if (f0 > 0) {
            int y = y_pitch + PITCH_H - 1 - (int)(log(f0 / 50.0) / log(8.0) * (PITCH_H - 1));
            rect(&c, LEFT + px, y - 1, LEFT + px + 1, y + 2, 0xD62728, 1);
        }
    }
    rect(&c, LEFT, y_pitch, LEFT + pw, y_pitch + 1, 0xD0D0D0, 1);
    rect(&c, LEFT, y_pitch + PITCH_H - 1, LEFT + pw, y_pitch + PITCH_H, 0xD0D0D0, 1);
    for (int hz = 100; hz <= 400; hz *= 2) { /* 100, 200, 400 Hz guides */
        int y = y_pitch + PITCH_H - 1 - (int)(log(hz / 50.0) / log(8.0) * (PITCH_H - 1));
        for (int px = 0; px < pw; px += 3) put(&c, LEFT + px, y, 0xA0A0A0, 1);
        snprintf(buf, sizeof buf, "%d", hz);
        text(&c, LEFT - 6 * (int)strlen(buf) - 4, y - 3, buf, 0x808080, 1);
    }
    /* The 80 ms codec frame grid, where it is at least 4 px apart. */
    double grid_px = (double)XS_AN_GRID / XS_AN_RATE / dur * pw;
    if (grid_px >= 4) {
        for (double gx = grid_px; gx < pw; gx += grid_px) {
            int gxi = LEFT + (int)gx;
            for (int y = y_wave; y < y_wave + WAVE_H; y += 2) put(&c, gxi, y, 0x909090, 0.5f);
            for (int y = y_spec; y < y_spec + SPEC_H; y += 2) put(&c, gxi, y, 0xFFFFFF, 0.25f);
        }
        text(&c, 8, y_wave + 14, "GRID 80 MS", 0x909090, 1);
    }
    /* Time axis: ticks every 0.5, 1, 2, 5 or 10 s. */
    double step = dur <= 3 ? 0.5 : dur <= 12 ? 1 : dur <= 30 ? 2 : dur <= 90 ? 5 : 10;
    for (double ts = 0; ts <= dur + 1e-9; ts += step) {
        int tx = LEFT + (int)(ts / dur * pw);
        rect(&c, tx, y_axis, tx + 1, y_axis + 4, 0x404040, 1);
        snprintf(buf, sizeof buf, "%gs", ts);
        text(&c, tx - 3 * (int)strlen(buf), y_axis + 7, buf, 0x404040, 1);
    }
    /* One lane per defect: name + severity on the left, intervals as bars. */
    if (nd == 0) text(&c, 8, y_lanes + 3, "NO DEFECT FOUND", 0x1A7F2A, 1);
    for (int i = 0; i < nd; i++) {
        const xs_an_defect *d = &a->defects[i];
        uint32_t col = k_defect_colors[i % 8];
        int y = y_lanes + i * LANE_H;
        text(&c, 8, y + 3, d->name, col, 1);
        rect(&c, LEFT, y + 2, LEFT + pw, y + LANE_H - 2, col, 0.08f);
        for (int k = 0; k < d->n_times; k++) {
            int x0 = LEFT + (int)(d->times[k][0] / dur * pw), x1 = LEFT + (int)ceil(d->times[k][1] / dur * pw);
            if (x1 <= x0) x1 = x0 + 1;
            rect(&c, x0, y + 2, x1, y + LANE_H - 2, col, 0.85f);
        }
        snprintf(buf, sizeof buf, "%s %.0f%%  %.80s", xs_an_severity_str(d->severity), 100 * d->confidence,
                 d->detail);
        int tw = 6 * (int)strlen(buf);
        rect(&c, LEFT + 4, y + 2, LEFT + 8 + tw, y + LANE_H - 2, 0xFFFFFF, 0.75f);
        text(&c, LEFT + 6, y + 3, buf, 0x202020, 1);
    }
    /* Footer: the basic measures. */
    const xs_an_metrics *m = &a->m;
    snprintf(buf, sizeof buf,
             "%.2fs  rms %.1f dBFS  peak %.1f dBFS  snr %.0f dB  speech %.0f%%  pitch %.0f-%.0f hz",
             m->duration_s, m->rms_dbfs, m->peak_dbfs, m->snr_db, 100 * m->speech_fraction,
             m->pitch_min_hz, m->pitch_max_hz);
    text(&c, 8, y_foot + 2, buf, 0x404040, 1);
    xs_status rc = write_png(&c, path);
    free(c.px);
    return rc;
}
