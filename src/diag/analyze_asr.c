/*
 * analyze_asr.c — intelligibility for `analyze --expect-text`: run Debian's
 * offline recognizer (pocketsphinx_continuous with the en-us model) on the
 * audio and score the word error rate against the expected text.
 *
 * The recognizer runs as a separate program (popen) so that the library
 * does not link it; its absence is not an error, just "not available".
 * Generic en-us language model: synthetic voices are recognized poorly, so
 * the WER is folded into the score gently (at most -20%).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "diag/analyze.h"

#define ASR_MODEL "/usr/share/pocketsphinx/model/en-us"
#define ASR_MAX_WORDS 512

bool xs_an_asr_available(void) {
    return access("/usr/bin/pocketsphinx_continuous", X_OK) == 0 &&
           access(ASR_MODEL "/en-us.lm.bin", R_OK) == 0 &&
           access(ASR_MODEL "/cmudict-en-us.dict", R_OK) == 0;
}

/* Lower-case words of letters, digits and apostrophes; returns the count. */
static int asr_words(const char *s, char words[][32], int max) {
    int n = 0;
    while (*s && n < max) {
        while (*s && !(isalnum((unsigned char)*s) || *s == '\'')) s++;
        int k = 0;
        while (*s && (isalnum((unsigned char)*s) || *s == '\'')) {
            if (k < 31) words[n][k++] = (char)tolower((unsigned char)*s);
            s++;
        }
        if (k > 0) words[n++][k] = 0;
    }
    return n;
}

double xs_an_wer(const char *ref, const char *hyp) {
    static char rw[ASR_MAX_WORDS][32], hw[ASR_MAX_WORDS][32];
    int nr = asr_words(ref, rw, ASR_MAX_WORDS), nh = asr_words(hyp, hw, ASR_MAX_WORDS);
    if (nr == 0) return nh == 0 ? 0.0 : 1.0;
    int *prev = malloc(sizeof(int) * (size_t)(nh + 1)), *cur = malloc(sizeof(int) * (size_t)(nh + 1));
    if (!prev || !cur) {
        free(prev);
        free(cur);
        return 1.0;
    }
    for (int j = 0; j <= nh; j++) prev[j] = j;
    for (int i = 1; i <= nr; i++) { /* Levenshtein distance over words */
        cur[0] = i;
        for (int j = 1; j <= nh; j++) {
            int sub = prev[j - 1] + (strcmp(rw[i - 1], hw[j - 1]) != 0);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        int *t = prev; prev = cur; cur = t;
    }
    double wer = (double)prev[nh] / nr;
    free(prev);
    free(cur);
    return wer;
}

xs_status xs_an_recognize(const xs_analysis *a, char *hyp, size_t hyp_size) {
    if (!xs_an_asr_available())
        return xs_error(XS_ERR_UNSUPPORTED, "pocketsphinx with its en-us model is not installed");
    float *y = NULL;
    int64_t ny = 0;
    XS_TRY(xs_audio_resample(a->pcm, a->n, XS_AN_RATE, 16000, &y, &ny)); /* its model is 16 kHz */
    char tmp[] = "/tmp/xswarm_asr_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(y);
        return xs_error(XS_ERR_IO, "recognizer: cannot create a temporary file");
    }
    close(fd);
    xs_status rc = xs_audio_write_wav(tmp, y, ny, 16000, false);
    free(y);
    if (rc != XS_OK) {
        remove(tmp);
        return rc;
    }
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "pocketsphinx_continuous -infile '%s' -hmm " ASR_MODEL "/en-us -lm " ASR_MODEL
             "/en-us.lm.bin -dict " ASR_MODEL "/cmudict-en-us.dict -logfn /dev/null 2>/dev/null",
             tmp);
    FILE *p = popen(cmd, "r");
    if (!p) {
        remove(tmp);
        return xs_error(XS_ERR_IO, "recognizer: cannot run pocketsphinx_continuous");
    }
    size_t used = 0;
    hyp[0] = 0;
    char line[4096];
    while (fgets(line, sizeof line, p)) { /* one line per utterance */
        line[strcspn(line, "\n")] = 0;
        int w = snprintf(hyp + used, hyp_size - used, "%s%s", used ? " " : "", line);
        if (w > 0 && (size_t)w < hyp_size - used) used += (size_t)w;
    }
    int st = pclose(p);
    remove(tmp);
    if (st != 0) return xs_error(XS_ERR_IO, "recognizer: pocketsphinx_continuous failed (%d)", st);
    return XS_OK;
}

void xs_an_fold_intelligibility(xs_analysis *a, double wer) {
    /* A generic recognizer misses words even in clean speech (pocketsphinx
     * gets ~90% WER on espeak-ng voices): full intelligibility loss costs at
     * most 20% of the score, so that recognition alone never turns a clean
     * file (100) into a degraded one (< 80), but adds to real defects. */
    double intel = 1.0 - (wer > 1 ? 1 : wer < 0 ? 0 : wer);
    a->score *= 0.8 + 0.2 * intel;
}
