/*
 * test_spm_tokenizer.c — the SentencePiece shim against a tiny model trained
 * here with Debian's spm_train (byte fallback on, <pad> at id 3 as in
 * Moshi's tokenizer): encode/decode round trips, U+2581 -> space, byte
 * pieces -> bytes, ids 0 and 3 silent, errors naming the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "formats/spm.h"
#include "testutil.h"

static char g_dir[256];

/* A small deterministic corpus: sentences drawn from a fixed word list. */
static int write_corpus(const char *path) {
    static const char *words[] = {"hello", "world", "can",     "you",   "tell", "me",
                                  "what",  "the",   "weather", "is",    "like", "today",
                                  "moshi", "speaks", "and",    "listens", "at", "same",
                                  "time",  "small", "model",   "test",  "question", "answer"};
    const unsigned nw = sizeof words / sizeof words[0];
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    uint32_t s = 12345;
    for (int line = 0; line < 400; line++) {
        for (int w = 0; w < 9; w++) {
            s = s * 1664525u + 1013904223u; /* LCG: fixed corpus on every machine */
            fprintf(f, "%s%s", w ? " " : "", words[(s >> 16) % nw]);
        }
        fputc('\n', f);
    }
    return fclose(f);
}

static const char *train_model(void) {
    static char model[320];
    if (system("command -v spm_train >/dev/null 2>&1") != 0)
        test_skip("spm_train not found (Debian package sentencepiece)");
    snprintf(g_dir, sizeof g_dir, "/tmp/xs_test_spm_XXXXXX");
    if (!mkdtemp(g_dir)) test_skip("cannot create a temporary folder");
    char corpus[300], cmd[1200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", g_dir);
    if (write_corpus(corpus) != 0) test_skip("cannot write the corpus");
    /* bpe: deterministic merges; hard_vocab_limit off so the tiny corpus
     * never fails the run; pad_id=3 mirrors Moshi's tokenizer. */
    snprintf(cmd, sizeof cmd,
             "spm_train --input=%s --model_prefix=%s/m --vocab_size=400 --model_type=bpe "
             "--byte_fallback=true --pad_id=3 --character_coverage=1.0 "
             "--hard_vocab_limit=false --minloglevel=2 >%s/train.log 2>&1",
             corpus, g_dir, g_dir);
    int rc = system(cmd);
    CHECK(rc == 0, "spm_train failed (rc %d), see %s/train.log", rc, g_dir);
    snprintf(model, sizeof model, "%s/m.model", g_dir);
    return model;
}

/* Concatenate the streamed text of ids, the way a live transcript is built. */
static size_t stream_text(const xs_spm *tok, const int *ids, size_t n, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char piece[64];
        int k = xs_spm_decode_token(tok, ids[i], piece, sizeof piece);
        CHECK(k >= 0, "decode_token(%d) failed", ids[i]);
        if (k <= 0 || len + (size_t)k + 1 > cap) continue;
        memcpy(out + len, piece, (size_t)k);
        len += (size_t)k;
        out[len] = '\0';
    }
    return len;
}

static void test_errors(void) {
    xs_spm *tok = (xs_spm *)0x1; /* must stay untouched on error */
    xs_status rc = xs_spm_load("/nonexistent/xswarm/tokenizer_spm_32k_3.model", &tok);
    CHECK(rc == XS_ERR_NOT_FOUND, "missing file: rc %d", rc);
    CHECK(strstr(xs_error_msg(), "/nonexistent/xswarm/tokenizer_spm_32k_3.model") != NULL,
          "missing file: message names the file: %s", xs_error_msg());
    CHECK(tok == (xs_spm *)0x1, "out-parameter unchanged on error");

    char bad[320];
    snprintf(bad, sizeof bad, "%s/corpus.txt", g_dir); /* text, not a model */
    rc = xs_spm_load(bad, &tok);
    CHECK(rc == XS_ERR_FORMAT, "text file as model: rc %d (%s)", rc, xs_error_msg());
    CHECK(strstr(xs_error_msg(), bad) != NULL, "invalid file: message names the file: %s",
          xs_error_msg());

    snprintf(bad, sizeof bad, "%s/empty.model", g_dir);
    FILE *f = fopen(bad, "w");
    if (f) fclose(f);
    rc = xs_spm_load(bad, &tok);
    CHECK(rc == XS_ERR_FORMAT, "empty file: rc %d", rc);
    CHECK(tok == (xs_spm *)0x1, "out-parameter unchanged on error");
}

static void test_pieces(const xs_spm *tok) {
    int v = xs_spm_vocab_size(tok);
    CHECK(v > 300 && v <= 400, "vocab size %d (256 bytes + 4 specials + merges)", v);
    const char *p0 = xs_spm_id_to_piece(tok, 0), *p3 = xs_spm_id_to_piece(tok, 3);
    CHECK(p0 && !strcmp(p0, "<unk>"), "piece 0 is <unk>: %s", p0 ? p0 : "(null)");
    CHECK(p3 && !strcmp(p3, "<pad>"), "piece 3 is <pad>: %s", p3 ? p3 : "(null)");
    CHECK(xs_spm_id_to_piece(tok, v) == NULL, "id == vocab size has no piece");
    CHECK(xs_spm_id_to_piece(tok, -1) == NULL, "negative id has no piece");

    /* Ids 0 and 3 print nothing (Kyutai: `if text_token not in (0, 3)`). */
    char buf[64] = "x";
    CHECK(xs_spm_decode_token(tok, 0, buf, sizeof buf) == 0 && buf[0] == '\0', "id 0 silent");
    strcpy(buf, "x");
    CHECK(xs_spm_decode_token(tok, 3, buf, sizeof buf) == 0 && buf[0] == '\0', "id 3 silent");
    /* Other control pieces print as themselves, as in Kyutai's server. */
    CHECK(xs_spm_decode_token(tok, 2, buf, sizeof buf) == 4 && !strcmp(buf, "</s>"),
          "id 2 prints its piece: %s", buf);
    CHECK(xs_spm_decode_token(tok, v, buf, sizeof buf) == -1 && buf[0] == '\0',
          "out-of-range id gives -1 and empty text");
    CHECK(xs_spm_decode_token(tok, 32000, buf, sizeof buf) == -1, "Moshi's initial text token");
}

static void test_marker_and_round_trip(const xs_spm *tok) {
    int ids[64];
    size_t n = 0;
    xs_status rc = xs_spm_encode(tok, "weather", ids, 64, &n);
    CHECK(rc == XS_OK && n == 1, "'weather' is one piece: rc %d n %zu", rc, n);
    if (rc == XS_OK && n >= 1) {
        const char *piece = xs_spm_id_to_piece(tok, ids[0]);
        CHECK(piece && !strcmp(piece, "\xE2\x96\x81weather"), "raw piece keeps U+2581: %s",
              piece ? piece : "(null)");
        char buf[64];
        int k = xs_spm_decode_token(tok, ids[0], buf, sizeof buf);
        CHECK(k == 8 && !strcmp(buf, " weather"), "U+2581 prints as a space: '%s' (%d)", buf, k);
        char tiny[4];
        CHECK(xs_spm_decode_token(tok, ids[0], tiny, sizeof tiny) == -1 && tiny[0] == '\0',
              "too small buffer gives -1 and empty text");
    }

    const char *text = "hello world, can you tell me what the weather is like today?";
    rc = xs_spm_encode(tok, text, ids, 64, &n);
    CHECK(rc == XS_OK && n > 5 && n < 40, "encode sentence: rc %d n %zu", rc, n);
    char streamed[256], full[256];
    stream_text(tok, ids, n, streamed, sizeof streamed);
    CHECK(streamed[0] == ' ' && !strcmp(streamed + 1, text),
          "streamed pieces give ' ' + text: '%s'", streamed);
    rc = xs_spm_decode(tok, ids, n, full, sizeof full);
    CHECK(rc == XS_OK && !strcmp(full, text), "full decode round trip: '%s'", full);

    /* Count-only call, then a too-small buffer. */
    size_t count = 0;
    CHECK(xs_spm_encode(tok, text, NULL, 0, &count) == XS_OK && count == n,
          "count-only encode gives %zu (expected %zu)", count, n);
    size_t need = 0;
    rc = xs_spm_encode(tok, text, ids, 2, &need);
    CHECK(rc == XS_ERR_ARG && need == n, "too-small id buffer: rc %d need %zu", rc, need);
    rc = xs_spm_decode(tok, ids, n, full, 4);
    CHECK(rc == XS_ERR_ARG, "too-small text buffer: rc %d", rc);
    int bad_id = 99999;
    CHECK(xs_spm_decode(tok, &bad_id, 1, full, sizeof full) == XS_ERR_ARG,
          "full decode rejects an out-of-range id");
}

static void test_byte_fallback(const xs_spm *tok) {
    /* 'é' (C3 A9) and '€' (E2 82 AC) never appear in the corpus: byte pieces. */
    const char *text = "hello \xC3\xA9t\xC3\xA9 \xE2\x82\xAC";
    int ids[64];
    size_t n = 0;
    xs_status rc = xs_spm_encode(tok, text, ids, 64, &n);
    CHECK(rc == XS_OK, "encode with unknown chars: rc %d", rc);
    int n_byte_pieces = 0, saw_c3 = 0;
    for (size_t i = 0; i < n; i++) {
        const char *piece = xs_spm_id_to_piece(tok, ids[i]);
        if (piece && !strncmp(piece, "<0x", 3)) {
            n_byte_pieces++;
            char buf[8];
            int k = xs_spm_decode_token(tok, ids[i], buf, sizeof buf);
            CHECK(k == 1, "byte piece %s prints one byte (%d)", piece, k);
            if (!strcmp(piece, "<0xC3>")) {
                saw_c3 = 1;
                CHECK((unsigned char)buf[0] == 0xC3, "<0xC3> prints byte 0xC3: %02x",
                      (unsigned char)buf[0]);
            }
        }
    }
    CHECK(n_byte_pieces == 7, "7 byte pieces (2 x e-acute, euro sign): %d", n_byte_pieces);
    CHECK(saw_c3, "a <0xC3> piece was produced");
    char streamed[256], full[256];
    stream_text(tok, ids, n, streamed, sizeof streamed);
    CHECK(streamed[0] == ' ' && !strcmp(streamed + 1, text),
          "streamed bytes rebuild the UTF-8 text: '%s'", streamed);
    CHECK(xs_spm_decode(tok, ids, n, full, sizeof full) == XS_OK && !strcmp(full, text),
          "full decode merges byte pieces: '%s'", full);
}

int main(void) {
    const char *model = train_model();
    test_errors();
    xs_spm *tok = NULL;
    xs_status rc = xs_spm_load(model, &tok);
    CHECK(rc == XS_OK && tok, "load trained model: %s", xs_error_msg());
    if (tok) {
        test_pieces(tok);
        test_marker_and_round_trip(tok);
        test_byte_fallback(tok);
        xs_spm_free(tok);
    }
    xs_spm_free(NULL);
    char cmd[320];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    if (g_tests_failed == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_summary("test_spm_tokenizer");
}
