/*
 * test_spm_train.c — xs_spm_train (libsentencepiece's trainer behind the C
 * shim): a 100-piece model like the tiny bundle's (text_card 100) and a
 * byte-fallback one with <pad> at 3 like Moshi's, loaded back and used; bad
 * options and unwritable paths give errors, not aborts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/spm.h"
#include "testutil.h"

#define N_SENT 300

static char *g_sent[N_SENT];

/* Sentences of made-up words (2-3 syllables out of 30): enough distinct
 * substrings for a 100-piece unigram model. The phrase check_model encodes
 * is in the corpus too. */
static void make_sentences(void) {
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ba", "de",
                                "fu", "go", "hi", "ja", "ke", "li", "mo", "nu", "pa", "qe",
                                "ri", "so", "tu", "va", "we", "xi", "yo", "za", "an", "el"};
    const unsigned ns = sizeof syl / sizeof syl[0];
    uint32_t s = 777;
    for (int i = 0; i < N_SENT; i++) {
        char line[256] = "";
        if (i % 10 == 0) {
            strcpy(line, "good morning how are you doing");
        } else {
            for (int w = 0; w < 7; w++) {
                if (w) strcat(line, " ");
                s = s * 1664525u + 1013904223u;
                int n = 2 + (int)((s >> 20) % 2);
                for (int k = 0; k < n; k++) {
                    s = s * 1664525u + 1013904223u;
                    strcat(line, syl[(s >> 16) % ns]);
                }
            }
        }
        g_sent[i] = strdup(line);
    }
}

static void check_model(const char *path, int want_vocab, const char *label) {
    xs_spm *tok = NULL;
    xs_status rc = xs_spm_load(path, &tok);
    CHECK(rc == XS_OK, "%s: load: %s", label, xs_error_msg());
    if (!tok) return;
    CHECK(xs_spm_vocab_size(tok) == want_vocab, "%s: vocab %d (want %d)", label,
          xs_spm_vocab_size(tok), want_vocab);
    const char *text = "good morning how are you doing";
    int ids[64];
    size_t n = 0;
    char back[256];
    rc = xs_spm_encode(tok, text, ids, 64, &n);
    CHECK(rc == XS_OK && n > 0 && n < 30, "%s: encode (%zu ids)", label, n);
    int in_range = 1;
    for (size_t i = 0; i < n; i++) in_range &= ids[i] >= 0 && ids[i] < want_vocab;
    CHECK(in_range, "%s: ids inside the vocabulary", label);
    CHECK(xs_spm_decode(tok, ids, n, back, sizeof back) == XS_OK && !strcmp(back, text),
          "%s: round trip '%s'", label, back);
    xs_spm_free(tok);
}

int main(void) {
    make_sentences();
    char dir[] = "/tmp/xs_test_spm_train_XXXXXX";
    if (!mkdtemp(dir)) test_skip("cannot create a temporary folder");
    char path[256];

    /* Like the tiny bundle: 100 pieces, no byte fallback (needs >= 260). */
    snprintf(path, sizeof path, "%s/tiny.model", dir);
    xs_status rc = xs_spm_train((const char *const *)g_sent, N_SENT, 100,
                                "--model_type=unigram --pad_id=3", path);
    CHECK(rc == XS_OK, "train 100-piece unigram: %s", xs_error_msg());
    if (rc == XS_OK) check_model(path, 100, "unigram 100");

    /* Like Moshi's: byte fallback, <pad> at 3. */
    snprintf(path, sizeof path, "%s/bytes.model", dir);
    rc = xs_spm_train((const char *const *)g_sent, N_SENT, 300,
                      "--model_type=bpe --byte_fallback=true --pad_id=3 --hard_vocab_limit=false",
                      path);
    CHECK(rc == XS_OK, "train byte-fallback bpe: %s", xs_error_msg());
    if (rc == XS_OK) {
        xs_spm *tok = NULL;
        if (xs_spm_load(path, &tok) == XS_OK) {
            char buf[16];
            const char *p3 = xs_spm_id_to_piece(tok, 3);
            CHECK(p3 && !strcmp(p3, "<pad>"), "piece 3 is <pad>");
            int ids[16];
            size_t n = 0;
            CHECK(xs_spm_encode(tok, "\xC3\xBC", ids, 16, &n) == XS_OK && n >= 2,
                  "u-umlaut encodes to byte pieces (%zu ids)", n);
            if (n >= 2) {
                int k = xs_spm_decode_token(tok, ids[n - 1], buf, sizeof buf);
                CHECK(k == 1 && (unsigned char)buf[0] == 0xBC, "last byte piece prints 0xBC");
            }
            xs_spm_free(tok);
        } else {
            CHECK(0, "load byte-fallback model: %s", xs_error_msg());
        }
    }

    /* Errors are statuses, never aborts. */
    snprintf(path, sizeof path, "%s/bad.model", dir);
    rc = xs_spm_train((const char *const *)g_sent, N_SENT, 100, "--model_type=nonsense", path);
    CHECK(rc == XS_ERR_ARG, "unknown model type: rc %d", rc);
    rc = xs_spm_train((const char *const *)g_sent, N_SENT, 100, "--no_such_flag=1", path);
    CHECK(rc == XS_ERR_ARG, "unknown flag: rc %d (%s)", rc, xs_error_msg());
    rc = xs_spm_train((const char *const *)g_sent, N_SENT, 100, "--hard_vocab_limit=false",
                      "/nonexistent/dir/x.model");
    CHECK(rc == XS_ERR_IO && strstr(xs_error_msg(), "/nonexistent/dir/x.model"),
          "unwritable path: rc %d (%s)", rc, xs_error_msg());
    CHECK(xs_spm_train(NULL, 0, 100, NULL, path) == XS_ERR_ARG, "no sentences");

    for (int i = 0; i < N_SENT; i++) free(g_sent[i]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (g_tests_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_summary("test_spm_train");
}
