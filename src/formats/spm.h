/*
 * spm.h — the SentencePiece text tokenizer (`tokenizer_spm_32k_3.model`).
 *
 * A thin C interface over Debian's libsentencepiece (src/formats/spm_shim.cc
 * is the only C++ in the project; no C++ type crosses this header).
 *
 * Streaming text follows Kyutai's convention (moshi/server.py and
 * run_inference.py print one piece per LM step):
 *   - text tokens 0 and 3 print nothing (in Moshi's tokenizer 0 is the
 *     "end of padding" token and 3 the padding token: the model emits them
 *     on almost every step while it is silent);
 *   - otherwise the piece is printed with every word-boundary marker U+2581
 *     ("▁") replaced by a space, so " Hello" follows " you" naturally;
 *   - byte-fallback pieces "<0xNN>" become the single byte 0xNN, so that the
 *     bytes of a multi-byte UTF-8 character, streamed as consecutive tokens,
 *     concatenate into that character (Kyutai's Python prints "<0xNN>";
 *     bytes are what a reader of the stream expects).
 * Control pieces other than 0 and 3 (e.g. "<s>", "</s>") are printed as
 * their piece text, as Kyutai does.
 */
#ifndef XS_FORMATS_SPM_H
#define XS_FORMATS_SPM_H

#include <stddef.h>

#include "core/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_spm xs_spm;

/* Load a SentencePiece model file. On error returns XS_ERR_NOT_FOUND
 * (missing file), XS_ERR_IO (unreadable) or XS_ERR_FORMAT (not a
 * SentencePiece model) with a message naming the file, and leaves *out
 * unchanged. Free with xs_spm_free. */
xs_status xs_spm_load(const char *path, xs_spm **out);
void xs_spm_free(xs_spm *tok); /* NULL is fine */

/* Number of pieces (ids are 0 .. size-1). */
int xs_spm_vocab_size(const xs_spm *tok);

/* The raw piece of id (with its U+2581 markers, "<0x41>" for a byte piece),
 * owned by tok; NULL when id is out of range. */
const char *xs_spm_id_to_piece(const xs_spm *tok, int id);

/* The text to print for one streamed text token (conventions above),
 * NUL-terminated into buf[n]. Returns its length in bytes: 0 when the token
 * prints nothing (ids 0 and 3), -1 when id is out of range (e.g. Moshi's
 * initial text token 32000, which is never sampled) or buf is too small;
 * buf then holds "" (when n > 0). Any piece fits in 64 bytes in practice. */
int xs_spm_decode_token(const xs_spm *tok, int id, char *buf, size_t n);

/* Text (UTF-8) to ids. Writes at most max ids and sets *n to the number of
 * ids the text encodes to. With ids == NULL and max == 0, only counts.
 * Returns XS_ERR_ARG (naming the count needed) when max is too small and
 * ids is not NULL; *n is set in that case too. */
xs_status xs_spm_encode(const xs_spm *tok, const char *text, int *ids, size_t max, size_t *n);

/* Ids back to text with SentencePiece's own full decoder (leading space of
 * the first word dropped, byte pieces merged), NUL-terminated into buf[n].
 * XS_ERR_ARG when buf is too small or an id is out of range. For whole
 * transcripts; streaming uses xs_spm_decode_token. */
xs_status xs_spm_decode(const xs_spm *tok, const int *ids, size_t n_ids, char *buf, size_t n);

/* Train a SentencePiece model on in-memory sentences (UTF-8, one per entry)
 * with libsentencepiece's own trainer and write it to model_path: used by
 * `gen-model` to give a generated bundle a real tokenizer file, and by tests.
 * options: extra trainer flags in spm_train syntax ("--model_type=bpe
 * --byte_fallback=true --pad_id=3"), or NULL. Fails with XS_ERR_ARG (the
 * trainer's message) when the options or the vocabulary size do not suit
 * the text, XS_ERR_IO when model_path cannot be written. The library logs
 * one "Running command" line to stderr (it does so before reading
 * --minloglevel); the training log itself is silenced. */
xs_status xs_spm_train(const char *const *sentences, size_t n_sentences, int vocab_size,
                       const char *options, const char *model_path);

#ifdef __cplusplus
}
#endif
#endif
