// spm_shim.cc — the one C++ file of xswarm: a thin extern "C" layer over
// Debian's libsentencepiece (whose only API is C++). See spm.h for the
// contract and for Kyutai's streaming-text conventions implemented here.
//
// Every entry point catches C++ exceptions (bad_alloc, anything the library
// throws) and turns them into a status: no exception may cross into C.

// status.h declares C functions without its own extern "C" block.
extern "C" {
#include "core/status.h"
}
#include "formats/spm.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <vector>

struct xs_spm {
    sentencepiece::SentencePieceProcessor sp;
    std::string path; // for messages
};

namespace {

// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's word-boundary marker.
const char k_marker[] = "\xE2\x96\x81";
const size_t k_marker_len = 3;

// Kyutai's decoders skip these two ids (moshi/server.py: `not in (0, 3)`).
bool spm_is_silent_token(int id) { return id == 0 || id == 3; }

int spm_hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// "<0xNN>" -> NN, or -1 when the piece does not have that form.
int spm_byte_piece_value(const std::string &piece) {
    if (piece.size() != 6 || piece.compare(0, 3, "<0x") != 0 || piece[5] != '>') return -1;
    int hi = spm_hex_digit(piece[3]), lo = spm_hex_digit(piece[4]);
    if (hi < 0 || lo < 0) return -1;
    return hi * 16 + lo;
}

// Feeds the trainer from a C array of strings instead of a corpus file.
class spm_array_iterator : public sentencepiece::SentenceIterator {
  public:
    spm_array_iterator(const char *const *s, size_t n) : s_(s), n_(n) { load(); }
    bool done() const override { return i_ >= n_; }
    void Next() override {
        i_++;
        load();
    }
    const std::string &value() const override { return cur_; }
    sentencepiece::util::Status status() const override { return {}; }

  private:
    void load() {
        if (i_ < n_) cur_ = s_[i_] ? s_[i_] : "";
    }
    const char *const *s_;
    size_t n_, i_ = 0;
    std::string cur_;
};

} // namespace

extern "C" xs_status xs_spm_load(const char *path, xs_spm **out) {
    if (!path || !out) return xs_error(XS_ERR_ARG, "xs_spm_load: NULL argument");
    // Check existence ourselves: the library's own message for a missing
    // file is terse and does not distinguish "missing" from "broken".
    struct stat st;
    if (stat(path, &st) != 0)
        return xs_error(errno == ENOENT ? XS_ERR_NOT_FOUND : XS_ERR_IO,
                        "%s: cannot open SentencePiece tokenizer: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return xs_error(XS_ERR_IO, "%s: SentencePiece tokenizer is not a regular file", path);
    if (st.st_size == 0)
        return xs_error(XS_ERR_FORMAT, "%s: SentencePiece tokenizer file is empty", path);
    xs_spm *tok = nullptr;
    try {
        tok = new xs_spm();
        tok->path = path;
        const auto status = tok->sp.Load(path);
        if (!status.ok()) {
            std::string why = status.ToString();
            delete tok;
            return xs_error(XS_ERR_FORMAT, "%s: not a valid SentencePiece model (%s)", path,
                            why.c_str());
        }
        if (tok->sp.GetPieceSize() <= 0) {
            delete tok;
            return xs_error(XS_ERR_FORMAT, "%s: SentencePiece model has no pieces", path);
        }
    } catch (const std::bad_alloc &) {
        delete tok;
        return xs_error(XS_ERR_NOMEM, "%s: out of memory loading SentencePiece model", path);
    } catch (...) {
        delete tok;
        return xs_error(XS_ERR_FORMAT, "%s: SentencePiece library failed to load the model", path);
    }
    *out = tok;
    return XS_OK;
}

extern "C" void xs_spm_free(xs_spm *tok) { delete tok; }

extern "C" int xs_spm_vocab_size(const xs_spm *tok) { return tok ? tok->sp.GetPieceSize() : 0; }

extern "C" const char *xs_spm_id_to_piece(const xs_spm *tok, int id) {
    if (!tok || id < 0 || id >= tok->sp.GetPieceSize()) return nullptr;
    // IdToPiece returns a reference into the loaded model: stable while tok lives.
    return tok->sp.IdToPiece(id).c_str();
}

extern "C" int xs_spm_decode_token(const xs_spm *tok, int id, char *buf, size_t n) {
    if (buf && n > 0) buf[0] = '\0';
    if (!tok || !buf || n == 0) return -1;
    if (id < 0 || id >= tok->sp.GetPieceSize()) return -1;
    if (spm_is_silent_token(id)) return 0;

    const std::string &piece = tok->sp.IdToPiece(id);
    if (tok->sp.IsByte(id)) {
        int byte = spm_byte_piece_value(piece);
        if (byte >= 0) {
            if (n < 2) return -1;
            buf[0] = (char)byte;
            buf[1] = '\0';
            // A 0x00 byte piece prints one NUL byte: the caller uses the length.
            return 1;
        }
    }
    size_t len = 0;
    for (size_t i = 0; i < piece.size();) {
        const bool marker = piece.compare(i, k_marker_len, k_marker) == 0;
        if (len + 1 >= n) {
            buf[0] = '\0';
            return -1;
        }
        buf[len++] = marker ? ' ' : piece[i];
        i += marker ? k_marker_len : 1;
    }
    buf[len] = '\0';
    return (int)len;
}

extern "C" xs_status xs_spm_encode(const xs_spm *tok, const char *text, int *ids, size_t max,
                                   size_t *n) {
    if (!tok || !text || !n || (!ids && max > 0))
        return xs_error(XS_ERR_ARG, "xs_spm_encode: NULL argument");
    try {
        std::vector<int> v;
        const auto status = tok->sp.Encode(text, &v);
        if (!status.ok())
            return xs_error(XS_ERR_ARG, "%s: cannot encode text: %s", tok->path.c_str(),
                            status.ToString().c_str());
        if (ids && v.size() > max) {
            *n = v.size();
            return xs_error(XS_ERR_ARG, "%s: text encodes to %zu ids, buffer holds %zu",
                            tok->path.c_str(), v.size(), max);
        }
        if (ids && !v.empty()) std::memcpy(ids, v.data(), v.size() * sizeof(int));
        *n = v.size();
    } catch (const std::bad_alloc &) {
        return xs_error(XS_ERR_NOMEM, "%s: out of memory encoding text", tok->path.c_str());
    } catch (...) {
        return xs_error(XS_ERR_INTERNAL, "%s: SentencePiece failed encoding text",
                        tok->path.c_str());
    }
    return XS_OK;
}

extern "C" xs_status xs_spm_decode(const xs_spm *tok, const int *ids, size_t n_ids, char *buf,
                                   size_t n) {
    if (!tok || (!ids && n_ids > 0) || !buf || n == 0)
        return xs_error(XS_ERR_ARG, "xs_spm_decode: NULL argument");
    buf[0] = '\0';
    const int size = tok->sp.GetPieceSize();
    // Validate first: the library's behaviour on out-of-range ids varies by version.
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= size)
            return xs_error(XS_ERR_ARG, "%s: id %d at position %zu is outside the vocabulary (%d)",
                            tok->path.c_str(), ids[i], i, size);
    try {
        std::vector<int> v(ids, ids + n_ids);
        std::string text;
        const auto status = tok->sp.Decode(v, &text);
        if (!status.ok())
            return xs_error(XS_ERR_ARG, "%s: cannot decode ids: %s", tok->path.c_str(),
                            status.ToString().c_str());
        if (text.size() + 1 > n)
            return xs_error(XS_ERR_ARG, "%s: decoded text needs %zu bytes, buffer holds %zu",
                            tok->path.c_str(), text.size() + 1, n);
        std::memcpy(buf, text.c_str(), text.size() + 1);
    } catch (const std::bad_alloc &) {
        return xs_error(XS_ERR_NOMEM, "%s: out of memory decoding ids", tok->path.c_str());
    } catch (...) {
        return xs_error(XS_ERR_INTERNAL, "%s: SentencePiece failed decoding ids",
                        tok->path.c_str());
    }
    return XS_OK;
}

extern "C" xs_status xs_spm_train(const char *const *sentences, size_t n_sentences, int vocab_size,
                                  const char *options, const char *model_path) {
    if (!sentences || n_sentences == 0 || !model_path || vocab_size <= 0)
        return xs_error(XS_ERR_ARG, "xs_spm_train: no sentences, no path or vocab size <= 0");
    try {
        // minloglevel=2 silences the trainer's progress log (it writes to
        // stderr); the model comes back serialized, so no model_prefix files.
        std::string args = "--vocab_size=" + std::to_string(vocab_size) + " --minloglevel=2";
        if (options && *options) args += std::string(" ") + options;
        spm_array_iterator it(sentences, n_sentences);
        std::string proto;
        const auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &proto);
        if (!status.ok())
            return xs_error(XS_ERR_ARG, "%s: SentencePiece training failed: %s", model_path,
                            status.ToString().c_str());
        std::ofstream f(model_path, std::ios::binary | std::ios::trunc);
        f.write(proto.data(), (std::streamsize)proto.size());
        f.close();
        if (!f)
            return xs_error(XS_ERR_IO, "%s: cannot write SentencePiece model: %s", model_path,
                            strerror(errno));
    } catch (const std::bad_alloc &) {
        return xs_error(XS_ERR_NOMEM, "%s: out of memory training SentencePiece model", model_path);
    } catch (...) {
        return xs_error(XS_ERR_INTERNAL, "%s: SentencePiece trainer failed", model_path);
    }
    return XS_OK;
}
