/*
 * cmd_codec.c — `xswarm codec encode | decode | roundtrip`: the Mimi codec
 * alone, streaming one 80 ms frame per call exactly as a conversation would.
 *
 *   encode    audio file -> codes (safetensors, tensor `codes`, I64 [frames, N])
 *   decode    codes (I64 or I32 [frames, N]) -> WAV, or safetensors `pcm` F32
 *   roundtrip audio file -> codes -> WAV (to hear what Mimi does)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audio/audio_io.h"
#include "cli/cli.h"
#include "formats/safetensors.h"
#include "model/bundle.h"
#include "model/mimi.h"

typedef struct codec_opts {
    cli_common common;
    const char *mimi, *mimi_config, *in, *out, *dump_taps, *hf_repo;
    xs_bundle bundle; /* when --mimi is a folder or --hf-repo is given */
    int codebooks; /* 0: the config's num_codebooks */
    bool bf16;     /* transformer matmul weights in bf16 */
} codec_opts;

static void usage(FILE *f, const char *verb) {
    if (!verb || !strcmp(verb, "encode"))
        fprintf(f, "usage: xswarm codec encode --mimi FILE [--mimi-config FILE] [--codebooks N]\n"
                   "                          [--bf16] [--backend ref|cpu|cuda] [--threads N]\n"
                   "                          [--dump-taps FILE] IN -o OUT.safetensors\n"
                   "  IN: any audio file (WAV, FLAC, OGG, MP3), mixed to mono, resampled to\n"
                   "  24 kHz, zero-padded to a multiple of 1920 samples, encoded frame by frame.\n"
                   "  OUT gets tensor `codes`, I64 [frames, N] (N = --codebooks, default 8).\n");
    if (!verb || !strcmp(verb, "decode"))
        fprintf(f, "usage: xswarm codec decode --mimi FILE [--mimi-config FILE] [--bf16]\n"
                   "                          [--backend ref|cpu|cuda] [--threads N]\n"
                   "                          [--dump-taps FILE] IN.safetensors -o OUT\n"
                   "  IN holds tensor `codes`, I64 or I32 [frames, N]; decoded frame by frame.\n"
                   "  OUT ending in .safetensors gets tensor `pcm` (F32 [samples]); anything\n"
                   "  else is written as a 16-bit 24 kHz WAV.\n");
    if (!verb || !strcmp(verb, "roundtrip"))
        fprintf(f, "usage: xswarm codec roundtrip --mimi FILE [--mimi-config FILE]\n"
                   "                             [--codebooks N] [--bf16]\n"
                   "                             [--backend ...] [--threads N] IN -o OUT.wav\n"
                   "  encode then decode, frame by frame; OUT is cut to IN's length.\n");
    if (!verb)
        fprintf(f, "\n--mimi: the Mimi weights (tokenizer-e351c8d8-checkpoint125.safetensors or a\n"
                   "file with the same names, f32/bf16), or a model folder holding one; --hf-repo\n"
                   "kyutai/NAME uses that repo's snapshot in the local Hugging Face cache (no\n"
                   "network). Config: --mimi-config, else\n"
                   "mimi_config.json or a Mimi config.json next to the weights, else the released\n"
                   "Mimi's preset. --dump-taps FILE records intermediate tensors (names as in\n"
                   "golden/mimi_tiny, mimi.* for act.*). --bf16 keeps the matmul weights\n"
                   "(transformers, deep convs) in bf16: faster; exact for a bf16 file, rounds an\n"
                   "f32 one.\n");
}

static bool has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Returns 0 ok, 2 usage error, 1 when a named folder or repo has no Mimi. */
static int parse(codec_opts *o, int argc, char **argv, const char *verb) {
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_common_parse(&o->common, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char **slot = NULL;
        if (!strcmp(a, "--bf16")) {
            o->bf16 = true;
            continue;
        }
        if (!strcmp(a, "--mimi")) slot = &o->mimi;
        else if (!strcmp(a, "--mimi-config")) slot = &o->mimi_config;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) slot = &o->out;
        else if (!strcmp(a, "--dump-taps")) slot = &o->dump_taps;
        else if (!strcmp(a, "--hf-repo")) slot = &o->hf_repo;
        if (slot || !strcmp(a, "--codebooks")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "xswarm codec %s: %s needs a value\n", verb, a);
                return 2;
            }
            const char *v = argv[++i];
            if (slot) {
                *slot = v;
            } else {
                char *end;
                long n = strtol(v, &end, 10);
                if (*end || n < 1 || n > 64) {
                    fprintf(stderr, "xswarm codec %s: --codebooks must be 1..64 (got '%s')\n",
                            verb, v);
                    return 2;
                }
                o->codebooks = (int)n;
            }
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "xswarm codec %s: unknown option '%s' (try --help)\n", verb, a);
            return 2;
        }
        if (o->in) {
            fprintf(stderr, "xswarm codec %s: more than one input ('%s', '%s')\n", verb, o->in, a);
            return 2;
        }
        o->in = a;
    }
    /* --hf-repo or a folder: find the Mimi file (and mimi_config.json) in it */
    char dir[XS_PATH_MAX] = "";
    struct stat st;
    if (o->hf_repo && !o->mimi) {
        if (xs_hf_snapshot_dir(o->hf_repo, dir, sizeof dir) != XS_OK) {
            cli_fail("--hf-repo");
            return 1;
        }
    } else if (o->mimi && stat(o->mimi, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(dir, sizeof dir, "%s", o->mimi);
    }
    if (dir[0]) {
        if (xs_bundle_from_dir(dir, &o->bundle) != XS_OK ||
            xs_bundle_check(&o->bundle, false, true, false) != XS_OK) {
            cli_fail("no Mimi weights found");
            return 1;
        }
        o->mimi = o->bundle.mimi;
        if (!o->mimi_config && o->bundle.mimi_config[0]) o->mimi_config = o->bundle.mimi_config;
    }
    if (!o->mimi) {
        fprintf(stderr, "xswarm codec %s: --mimi FILE|DIR or --hf-repo REPO is required (the "
                        "Mimi weights, e.g. tokenizer-e351c8d8-checkpoint125.safetensors)\n",
                verb);
        return 2;
    }
    if (!o->in || !o->out) {
        fprintf(stderr, "xswarm codec %s: need an input and -o OUT (try --help)\n", verb);
        return 2;
    }
    return 0;
}

typedef struct codec_run {
    xs_backend *be;
    mimi_model *m;
    mimi_stream *s;
    xs_taps *taps;
} codec_run;

static int open_run(codec_run *r, const codec_opts *o) {
    memset(r, 0, sizeof *r);
    r->be = cli_backend_open(&o->common);
    if (!r->be) return 1;
    char used[4096];
    if (mimi_model_open(r->be, o->mimi, o->mimi_config, o->bf16, &r->m, used, sizeof used) !=
        XS_OK)
        return cli_fail("cannot load Mimi");
    if (mimi_stream_new(r->m, &r->s) != XS_OK) return cli_fail("cannot create a Mimi stream");
    const mimi_config *c = mimi_model_config(r->m);
    fprintf(stderr, "mimi: %s (config: %s; %lld params; %d of %d codebooks; backend %s)\n",
            o->mimi, used, (long long)mimi_model_params(r->m),
            o->codebooks ? o->codebooks : c->num_codebooks, c->n_q, r->be->iface->name);
    if (o->dump_taps) {
        r->taps = xs_taps_new();
        if (!r->taps) return cli_fail("out of memory");
        mimi_stream_set_taps(r->s, r->taps);
    }
    return 0;
}

static int close_run(codec_run *r, const codec_opts *o, int rc) {
    if (rc == 0 && r->taps) {
        if (xs_taps_save(r->taps, o->dump_taps) != XS_OK) rc = cli_fail("cannot save taps");
        else fprintf(stderr, "taps: %d tensors -> %s\n", xs_taps_count(r->taps), o->dump_taps);
    }
    xs_taps_free(r->taps);
    mimi_stream_free(r->s);
    mimi_model_free(r->m);
    if (r->be) xs_backend_close(r->be);
    return rc;
}

static int n_codebooks(const codec_opts *o, const mimi_model *m) {
    const mimi_config *c = mimi_model_config(m);
    return o->codebooks ? o->codebooks : c->num_codebooks;
}

/* Read IN at 24 kHz, zero-padded to whole frames (*n_in: samples before padding). */
static int read_padded(const char *path, int frame, float **pcm, int64_t *n, int64_t *n_in) {
    xs_audio a = {0};
    xs_audio_info info;
    if (xs_audio_read(path, 24000, &a, &info) != XS_OK) return cli_fail("cannot read audio");
    int64_t np = (a.n + frame - 1) / frame * frame;
    float *p = calloc((size_t)np, sizeof *p);
    if (!p) {
        xs_audio_free(&a);
        return cli_fail("out of memory");
    }
    memcpy(p, a.pcm, (size_t)a.n * sizeof *p);
    fprintf(stderr, "input: %s: %s, %d Hz, %d ch, %lld samples%s%s -> %lld frames\n", path,
            info.format, info.file_rate, info.file_channels, (long long)info.file_frames,
            info.mixed_down ? ", mixed to mono" : "", info.resampled ? ", resampled" : "",
            (long long)(np / frame));
    *n_in = a.n;
    xs_audio_free(&a);
    *pcm = p;
    *n = np;
    return 0;
}

/* Progress on a terminal for long inputs (every 10 s of audio). */
static void progress(const char *what, int64_t t, int64_t frames) {
    if (frames < 250 || !isatty(2)) return;
    if (t % 125 == 0 || t == frames) fprintf(stderr, "\r%s: frame %lld / %lld", what,
                                             (long long)t, (long long)frames);
    if (t == frames) fprintf(stderr, "\n");
}

static int encode_all(codec_run *r, const float *pcm, int64_t n, int K, int32_t *codes) {
    int frame = mimi_frame_samples(mimi_model_config(r->m));
    int64_t frames = n / frame;
    for (int64_t t = 0; t < frames; t++) {
        if (mimi_encode(r->s, pcm + t * frame, frame, K, codes + t * K) != XS_OK)
            return cli_fail("encode failed");
        progress("encode", t + 1, frames);
    }
    return 0;
}

static int decode_all(codec_run *r, const int32_t *codes, int64_t frames, int K, float *pcm) {
    int frame = mimi_frame_samples(mimi_model_config(r->m));
    for (int64_t t = 0; t < frames; t++) {
        if (mimi_decode(r->s, codes + t * K, 1, K, pcm + t * frame) != XS_OK)
            return cli_fail("decode failed");
        progress("decode", t + 1, frames);
    }
    return 0;
}

/* The input side shared by encode and roundtrip: the codebook count (checked
 * against the model) and the audio, zero-padded to whole frames. */
static int read_input(codec_run *r, const codec_opts *o, const char *verb, int *K, float **pcm,
                      int64_t *n, int64_t *n_in, int64_t *frames) {
    *K = n_codebooks(o, r->m);
    const mimi_config *mc = mimi_model_config(r->m);
    if (*K > mc->n_q) {
        fprintf(stderr, "xswarm codec %s: --codebooks %d but the model has %d\n", verb, *K, mc->n_q);
        return 2;
    }
    int rc = read_padded(o->in, mimi_frame_samples(mc), pcm, n, n_in);
    *frames = rc == 0 ? *n / mimi_frame_samples(mc) : 0;
    return rc;
}

static int codec_encode(int argc, char **argv) {
    codec_opts o;
    int prc = parse(&o, argc, argv, "encode");
    if (prc) return prc;
    codec_run r;
    int rc = open_run(&r, &o);
    float *pcm = NULL;
    int32_t *codes = NULL;
    int64_t *c64 = NULL;
    int64_t n = 0, n_in = 0;
    int K = 0;
    int64_t frames = 0;
    if (rc == 0) rc = read_input(&r, &o, "encode", &K, &pcm, &n, &n_in, &frames);
    if (rc == 0) {
        codes = malloc((size_t)(frames * K) * sizeof *codes);
        c64 = malloc((size_t)(frames * K) * sizeof *c64);
        if (!codes || !c64) rc = cli_fail("out of memory");
    }
    if (rc == 0) rc = encode_all(&r, pcm, n, K, codes);
    if (rc == 0) {
        for (int64_t i = 0; i < frames * K; i++) c64[i] = codes[i];
        xs_st_writer *w = xs_st_writer_new();
        int64_t shape[2] = {frames, K};
        if (!w || xs_st_writer_add(w, "codes", XS_I64, 2, shape, c64) != XS_OK ||
            xs_st_writer_set_metadata(w, "mimi", o.mimi) != XS_OK ||
            xs_st_writer_save(w, o.out) != XS_OK)
            rc = cli_fail("cannot write codes");
        xs_st_writer_free(w);
        if (rc == 0)
            fprintf(stderr, "encoded %lld frames x %d codebooks -> %s\n", (long long)frames, K,
                    o.out);
    }
    free(pcm);
    free(codes);
    free(c64);
    return close_run(&r, &o, rc);
}

/* Read tensor `codes` ([frames, N], I64 or I32) from a safetensors file. */
static int read_codes(const char *path, int32_t **codes, int64_t *frames, int *K) {
    xs_safetensors *st = NULL;
    if (xs_st_open(path, &st) != XS_OK) return cli_fail("cannot read codes");
    const xs_tensor *t = xs_st_find(st, "codes");
    int rc = 0;
    if (!t) {
        fprintf(stderr, "xswarm codec decode: %s: no tensor `codes`\n", path);
        rc = 1;
    } else if (t->ndim != 2 || (t->dtype != XS_I64 && t->dtype != XS_I32) || t->shape[0] < 1 ||
               t->shape[1] < 1) {
        char b[64];
        fprintf(stderr, "xswarm codec decode: %s: tensor `codes` is %s %s, want I64 or I32 "
                        "[frames, N]\n", path, xs_dtype_name(t->dtype),
                xs_tensor_shape_str(t, b, sizeof b));
        rc = 1;
    }
    if (rc == 0) {
        int64_t m = t->shape[0] * t->shape[1];
        int32_t *c = malloc((size_t)m * sizeof *c);
        if (!c) rc = cli_fail("out of memory");
        for (int64_t i = 0; c && i < m; i++) {
            int64_t v = t->dtype == XS_I64 ? ((const int64_t *)t->data)[i]
                                           : ((const int32_t *)t->data)[i];
            if (v < 0 || v > INT32_MAX) {
                fprintf(stderr, "xswarm codec decode: %s: code %lld at frame %lld is negative "
                                "or too large\n", path, (long long)v, (long long)(i / t->shape[1]));
                free(c);
                c = NULL;
                rc = 1;
                break;
            }
            c[i] = (int32_t)v;
        }
        *codes = c;
        *frames = t->shape[0];
        *K = (int)t->shape[1];
    }
    xs_st_close(st);
    return rc;
}

static int write_pcm(const char *path, const float *pcm, int64_t n) {
    if (has_suffix(path, ".safetensors")) {
        xs_st_writer *w = xs_st_writer_new();
        int rc = 0;
        if (!w || xs_st_writer_add(w, "pcm", XS_F32, 1, &n, pcm) != XS_OK ||
            xs_st_writer_save(w, path) != XS_OK)
            rc = cli_fail("cannot write pcm");
        xs_st_writer_free(w);
        return rc;
    }
    if (xs_audio_write_wav(path, pcm, n, 24000, false) != XS_OK)
        return cli_fail("cannot write WAV");
    return 0;
}

static int codec_decode(int argc, char **argv) {
    codec_opts o;
    int prc = parse(&o, argc, argv, "decode");
    if (prc) return prc;
    int32_t *codes = NULL;
    int64_t frames = 0;
    int K = 0;
    int rc = read_codes(o.in, &codes, &frames, &K);
    if (rc) return rc;
    codec_run r;
    rc = open_run(&r, &o);
    float *pcm = NULL;
    int64_t n = 0;
    if (rc == 0 && K > mimi_model_config(r.m)->n_q) {
        fprintf(stderr, "xswarm codec decode: %s has %d codebooks, the model %d\n", o.in, K,
                mimi_model_config(r.m)->n_q);
        rc = 1;
    }
    if (rc == 0) {
        n = frames * mimi_frame_samples(mimi_model_config(r.m));
        pcm = malloc((size_t)n * sizeof *pcm);
        if (!pcm) rc = cli_fail("out of memory");
    }
    if (rc == 0) rc = decode_all(&r, codes, frames, K, pcm);
    if (rc == 0) rc = write_pcm(o.out, pcm, n);
    if (rc == 0)
        fprintf(stderr, "decoded %lld frames x %d codebooks -> %lld samples -> %s\n",
                (long long)frames, K, (long long)n, o.out);
    free(codes);
    free(pcm);
    return close_run(&r, &o, rc);
}

static int codec_roundtrip(int argc, char **argv) {
    codec_opts o;
    int prc = parse(&o, argc, argv, "roundtrip");
    if (prc) return prc;
    codec_run r;
    int rc = open_run(&r, &o);
    float *pcm = NULL, *out = NULL;
    int32_t *codes = NULL;
    int64_t n = 0, n_in = 0;
    int K = 0;
    int64_t frames = 0;
    if (rc == 0) rc = read_input(&r, &o, "roundtrip", &K, &pcm, &n, &n_in, &frames);
    if (rc == 0) {
        codes = malloc((size_t)(frames * K) * sizeof *codes);
        out = malloc((size_t)n * sizeof *out);
        if (!codes || !out) rc = cli_fail("out of memory");
    }
    if (rc == 0) rc = encode_all(&r, pcm, n, K, codes);
    if (rc == 0) rc = decode_all(&r, codes, frames, K, out);
    if (rc == 0) rc = write_pcm(o.out, out, n_in);
    if (rc == 0)
        fprintf(stderr, "roundtrip: %lld frames x %d codebooks -> %s\n", (long long)frames, K,
                o.out);
    free(pcm);
    free(out);
    free(codes);
    return close_run(&r, &o, rc);
}

int cmd_codec(int argc, char **argv) {
    const char *verb = argc >= 2 ? argv[1] : NULL;
    bool known = verb && (!strcmp(verb, "encode") || !strcmp(verb, "decode") ||
                          !strcmp(verb, "roundtrip"));
    if (!verb || (!known && (!strcmp(verb, "--help") || !strcmp(verb, "-h")))) {
        usage(verb ? stdout : stderr, NULL);
        return verb ? 0 : 2;
    }
    if (!known) {
        fprintf(stderr, "xswarm codec: unknown subcommand '%s' (encode, decode or roundtrip)\n",
                verb);
        return 2;
    }
    if (cli_wants_help(argc - 1, argv + 1)) {
        usage(stdout, verb);
        return 0;
    }
    if (!strcmp(verb, "encode")) return codec_encode(argc, argv);
    if (!strcmp(verb, "decode")) return codec_decode(argc, argv);
    return codec_roundtrip(argc, argv);
}
