/*
 * mimi_stream.c — per-stream state and the encode / decode calls.
 *
 * State machine of a stream (host counters; backend buffers follow them):
 *
 *   fresh --encode/decode--> running --reset--> fresh
 *
 * "fresh": conv contexts and convtr tails zero, KV rings empty (pos -1),
 * positions and frame counters 0, downsample not primed. Encode and decode
 * touch disjoint parts of the state (as in Kyutai's Mimi, one stream may do
 * both, e.g. a conversation encodes the user and decodes the model).
 */
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/kv_rings.h"
#include "model/mimi_internal.h"

void mimi_stream_free(mimi_stream *s) {
    if (!s) return;
    xs_backend *be = s->m->be;
    xs_graph_free(be, &s->enc_graph);
    xs_graph_free(be, &s->dec_graph);
    xs_tensor_free(be, &s->conv_state);
    mimi_scratch_free(&s->scratch);
    if (s->enc_kv) kv_rings_free(be, 2 * s->m->cfg.num_layers, s->enc_kv, &s->kv_block);
    free(s->enc_kv); /* dec_kv is its second half */
    free(s);
}

/* The encoder's and the decoder's rings, all in one backend allocation
 * (kv_rings.h: one device page of rounding per stream, not one per ring). */
static xs_status alloc_kv(mimi_stream *s) {
    const mimi_config *c = &s->m->cfg;
    int L = c->num_layers;
    xs_kv_cache *kv = calloc((size_t)(L > 0 ? 2 * L : 1), sizeof *kv);
    if (!kv) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    s->enc_kv = kv;
    s->dec_kv = kv + L;
    if (L < 1) return XS_OK;
    return kv_rings_alloc(s->m->be, 2 * L, c->context, c->d_model, XS_F32, kv, &s->kv_block);
}

xs_status mimi_stream_reset(mimi_stream *s) {
    if (!s) return xs_error(XS_ERR_ARG, "mimi_stream_reset: NULL stream");
    xs_backend *be = s->m->be;
    if (s->conv_state.data) XS_TRY(xs_op_fill(be, &s->conv_state, 0.0f));
    for (int i = 0; i < s->m->cfg.num_layers; i++) {
        /* zero the rows too, so that a dump after reset equals a fresh one */
        xs_kv_cache *kv[2] = {&s->enc_kv[i], &s->dec_kv[i]};
        for (int j = 0; j < 2; j++) {
            XS_TRY(xs_kv_cache_reset(be, kv[j]));
            XS_TRY(xs_op_fill(be, &kv[j]->k, 0.0f));
            XS_TRY(xs_op_fill(be, &kv[j]->v, 0.0f));
        }
    }
    s->enc_pos = s->dec_pos = 0;
    s->enc_frames = s->dec_frames = 0;
    s->downsample_primed = false;
    return XS_OK;
}

xs_status mimi_stream_new(mimi_model *m, mimi_stream **out) {
    if (!m || !out) return xs_error(XS_ERR_ARG, "mimi_stream_new: NULL argument");
    mimi_stream *s = calloc(1, sizeof *s);
    if (!s) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    s->m = m;
    s->scratch.be = m->be;
    xs_status rc = XS_OK;
    if (m->conv_state_floats > 0) {
        int64_t n = m->conv_state_floats;
        rc = xs_tensor_alloc(m->be, XS_F32, 1, &n, &s->conv_state);
    }
    if (rc == XS_OK) rc = alloc_kv(s);
    if (rc == XS_OK) rc = mimi_stream_reset(s);
    if (rc != XS_OK) {
        mimi_stream_free(s);
        return rc;
    }
    *out = s;
    return XS_OK;
}

static xs_status copy_kv(xs_backend *be, xs_kv_cache *d, const xs_kv_cache *s) {
    XS_TRY(xs_op_copy(be, &d->k, &s->k));
    XS_TRY(xs_op_copy(be, &d->v, &s->v));
    return xs_op_copy(be, &d->pos, &s->pos);
}

xs_status mimi_stream_copy(mimi_stream *dst, const mimi_stream *src) {
    if (!dst || !src) return xs_error(XS_ERR_ARG, "mimi_stream_copy: NULL stream");
    if (dst->m != src->m)
        return xs_error(XS_ERR_ARG, "mimi_stream_copy: streams of different models");
    if (dst == src) return XS_OK;
    xs_backend *be = src->m->be;
    if (src->conv_state.data) XS_TRY(xs_op_copy(be, &dst->conv_state, &src->conv_state));
    for (int i = 0; i < src->m->cfg.num_layers; i++) {
        XS_TRY(copy_kv(be, &dst->enc_kv[i], &src->enc_kv[i]));
        XS_TRY(copy_kv(be, &dst->dec_kv[i], &src->dec_kv[i]));
    }
    dst->enc_pos = src->enc_pos;
    dst->dec_pos = src->dec_pos;
    dst->enc_frames = src->enc_frames;
    dst->dec_frames = src->dec_frames;
    dst->downsample_primed = src->downsample_primed;
    return XS_OK;
}

void mimi_stream_set_taps(mimi_stream *s, xs_taps *taps) {
    if (s) s->taps = taps;
}

/* ---- encode / decode ---------------------------------------------------- */

/* Each call is three phases, so that the middle one can be recorded once as
 * a CUDA graph and replayed every frame (graph.h):
 *   1. stage (host -> device): the pcm or codes and the transformer
 *      positions go into scratch tensors;
 *   2. device: ops only, with arguments fixed for a given frame count;
 *   3. fetch (device -> host): one download of the codes or pcm; then the
 *      host counters advance.
 * The scratch hands out the same buffers every call of the same size, so
 * the recording stays valid; the graph key includes every scratch pointer,
 * so a reallocation (a call of another size grew a slot) records anew. */

/* What phase 2 needs; `n0` is the scratch slot where phase 2 starts, so a
 * second run (eager after a failed capture) requests the same slots. */
typedef struct mimi_job {
    mimi_scratch *sc;
    mimi_stream *s;
    int n0;
    int n_codebooks;
    xs_tensor in, pos; /* staged: pcm [1, n] or codes i32 [N, nf]; positions i32 [T] */
    xs_tensor out;     /* codes i32 [N, nf] or pcm [1, n] */
    int64_t T;         /* transformer steps of the call */
} mimi_job;

static xs_status check_steps(const xs_tensor *t, int64_t T, const char *what) {
    if (t->shape[1] != T)
        return xs_error(XS_ERR_INTERNAL, "mimi: %s has %lld steps, staged %lld positions", what,
                        (long long)t->shape[1], (long long)T);
    return XS_OK;
}

static xs_status encode_device(void *p) {
    mimi_job *j = p;
    mimi_scratch *sc = j->sc;
    mimi_stream *s = j->s;
    mimi_model *m = s->m;
    sc->n = j->n0;
    xs_tensor lat, tr, down;
    XS_TRY(mimi_seanet_encode(sc, s, &j->in, &lat));
    XS_TRY(check_steps(&lat, j->T, "the encoder latent"));
    XS_TRY(mimi_tap_ct(sc, s, "mimi.enc.seanet_out", &lat, -1));
    XS_TRY(mimi_transformer_run(sc, s, &m->enc_tr, s->enc_kv, &j->pos, "mimi.enc.transformer",
                                &lat, &tr));
    XS_TRY(mimi_conv_run(sc, &m->downsample, s, &tr, &down));
    XS_TRY(mimi_tap_ct(sc, s, "mimi.enc.downsample_out", &down, -1));
    XS_TRY(mimi_rvq_encode(sc, s, &down, j->n_codebooks, &j->out));
    s->enc_out = j->out;
    return XS_OK;
}

static xs_status decode_device(void *p) {
    mimi_job *j = p;
    mimi_scratch *sc = j->sc;
    mimi_stream *s = j->s;
    mimi_model *m = s->m;
    sc->n = j->n0;
    xs_tensor lat, up, tr;
    XS_TRY(mimi_rvq_decode(sc, s, &j->in, j->n_codebooks, &lat));
    XS_TRY(mimi_convtr_run(sc, &m->upsample, s, &lat, &up));
    XS_TRY(check_steps(&up, j->T, "the upsampled latent"));
    XS_TRY(mimi_tap_ct(sc, s, "mimi.dec.upsample_out", &up, -1));
    XS_TRY(mimi_transformer_run(sc, s, &m->dec_tr, s->dec_kv, &j->pos, "mimi.dec.transformer",
                                &up, &tr));
    XS_TRY(mimi_seanet_decode(sc, s, &tr, &j->out));
    s->dec_out = j->out;
    return XS_OK;
}

/* Key of a recording: everything its fixed arguments came from. */
static uint64_t job_key(const mimi_job *j, int64_t n) {
    const mimi_scratch *sc = j->sc;
    uint64_t k = XS_GRAPH_KEY0;
    k = xs_graph_key_add(k, (uint64_t)n);
    k = xs_graph_key_add(k, (uint64_t)j->n_codebooks);
    for (int i = 0; i < MIMI_SCRATCH_MAX; i++) {
        if (!sc->cap[i]) continue;
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)sc->slot[i].data);
        k = xs_graph_key_add(k, (uint64_t)sc->cap[i]);
    }
    return k;
}

/* Record one-frame calls only (the streaming case); taps download, and the
 * very first encode of a stream primes the replicate padding (other ops). */
static bool use_graph(const mimi_stream *s, int64_t nf, bool encode) {
    return nf == 1 && !s->taps && (!encode || s->downsample_primed) &&
           xs_graph_available(s->m->be);
}

/* The scratch of one call: the model's shared one, unless another thread is
 * in a call of a stream of this model right now (then this stream's own).
 * Single-threaded use (a server stepping its sessions in turn) thus keeps
 * one set of call buffers per model instead of one per session, and a
 * stream keeps getting the same buffers, as its graph recordings want. */
static mimi_scratch *scratch_take(mimi_stream *s) {
    mimi_model *m = s->m;
    bool idle = false;
    if (atomic_compare_exchange_strong(&m->scratch_busy, &idle, true)) {
        m->scratch.be = m->be;
        return &m->scratch;
    }
    return &s->scratch;
}

static void scratch_give(mimi_stream *s, mimi_scratch *sc) {
    mimi_scratch_release(sc);
    if (sc == &s->m->scratch) atomic_store(&s->m->scratch_busy, false);
}

static xs_status encode_frames(mimi_scratch *sc, mimi_stream *s, const float *pcm, int64_t n,
                               int n_codebooks, int32_t *codes) {
    mimi_model *m = s->m;
    const mimi_config *c = &m->cfg;
    int64_t nf = n / mimi_frame_samples(c);
    mimi_job j = {.sc = sc, .s = s, .n_codebooks = n_codebooks, .T = n / mimi_hop(c)};
    /* 1. stage */
    XS_TRY(mimi_tmp(sc, 1, n, &j.in));
    XS_TRY(xs_tensor_upload(m->be, &j.in, pcm));
    XS_TRY(mimi_positions_stage(sc, s->enc_pos, j.T, &j.pos));
    j.n0 = sc->n;
    /* 2. device */
    if (use_graph(s, nf, true))
        XS_TRY(xs_graph_run(m->be, &s->enc_graph, job_key(&j, n), encode_device, &j));
    else
        XS_TRY(encode_device(&j));
    j.out = s->enc_out; /* set by this run, or by the run that was recorded */
    /* 3. fetch: [N, T] codebook-major on the backend -> [T, N] frame-major */
    int32_t *h = malloc((size_t)(nf * n_codebooks) * sizeof *h);
    if (!h) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    xs_status rc = xs_tensor_download(m->be, h, &j.out);
    if (rc == XS_OK)
        for (int64_t t = 0; t < nf; t++)
            for (int k = 0; k < n_codebooks; k++) codes[t * n_codebooks + k] = h[k * nf + t];
    free(h);
    XS_TRY(rc);
    s->enc_pos += j.T;
    s->enc_frames += nf;
    return XS_OK;
}

xs_status mimi_encode(mimi_stream *s, const float *pcm, int64_t n, int n_codebooks,
                      int32_t *codes) {
    if (!s || !pcm || !codes) return xs_error(XS_ERR_ARG, "mimi_encode: NULL argument");
    int fs = mimi_frame_samples(&s->m->cfg);
    if (n <= 0 || n % fs != 0)
        return xs_error(XS_ERR_ARG, "mimi_encode: %lld samples is not a positive multiple of "
                        "the %d-sample frame", (long long)n, fs);
    if (n_codebooks < 1 || n_codebooks > s->m->cfg.n_q)
        return xs_error(XS_ERR_ARG, "mimi_encode: %d codebooks (1..%d)", n_codebooks,
                        s->m->cfg.n_q);
    mimi_scratch *sc = scratch_take(s);
    xs_status rc = encode_frames(sc, s, pcm, n, n_codebooks, codes);
    scratch_give(s, sc);
    return rc;
}

static xs_status decode_frames(mimi_scratch *sc, mimi_stream *s, const int32_t *codes,
                               int64_t nf, int n_codebooks, float *pcm) {
    mimi_model *m = s->m;
    mimi_job j = {.sc = sc, .s = s, .n_codebooks = n_codebooks,
                  .T = nf * mimi_downsample_stride(&m->cfg)};
    /* 1. stage: codes as [N, T] codebook-major, positions */
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, n_codebooks, nf, &j.in));
    int32_t *h = malloc((size_t)(nf * n_codebooks) * sizeof *h);
    if (!h) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    for (int64_t t = 0; t < nf; t++)
        for (int k = 0; k < n_codebooks; k++) h[k * nf + t] = codes[t * n_codebooks + k];
    xs_status rc = xs_tensor_upload(m->be, &j.in, h);
    free(h);
    XS_TRY(rc);
    XS_TRY(mimi_positions_stage(sc, s->dec_pos, j.T, &j.pos));
    j.n0 = sc->n;
    /* 2. device */
    if (use_graph(s, nf, false))
        XS_TRY(xs_graph_run(m->be, &s->dec_graph, job_key(&j, nf), decode_device, &j));
    else
        XS_TRY(decode_device(&j));
    j.out = s->dec_out; /* set by this run, or by the run that was recorded */
    /* 3. fetch */
    XS_TRY(xs_tensor_download(m->be, pcm, &j.out));
    s->dec_pos += j.T;
    s->dec_frames += nf;
    return XS_OK;
}

xs_status mimi_decode(mimi_stream *s, const int32_t *codes, int64_t n_frames, int n_codebooks,
                      float *pcm) {
    if (!s || !codes || !pcm) return xs_error(XS_ERR_ARG, "mimi_decode: NULL argument");
    const mimi_config *c = &s->m->cfg;
    if (n_frames <= 0) return xs_error(XS_ERR_ARG, "mimi_decode: %lld frames", (long long)n_frames);
    if (n_codebooks < 1 || n_codebooks > c->n_q)
        return xs_error(XS_ERR_ARG, "mimi_decode: %d codebooks (1..%d)", n_codebooks, c->n_q);
    for (int64_t i = 0; i < n_frames * n_codebooks; i++)
        if (codes[i] < 0 || codes[i] >= c->bins)
            return xs_error(XS_ERR_ARG, "mimi_decode: code %d at frame %lld codebook %lld is "
                            "outside 0..%d", codes[i], (long long)(i / n_codebooks),
                            (long long)(i % n_codebooks), c->bins - 1);
    mimi_scratch *sc = scratch_take(s);
    xs_status rc = decode_frames(sc, s, codes, n_frames, n_codebooks, pcm);
    scratch_give(s, sc);
    return rc;
}

/* ---- dump ------------------------------------------------------------------ */

#define MIMI_HOST_COUNTERS 5

int64_t mimi_stream_state_size(const mimi_stream *s) {
    const mimi_config *c = &s->m->cfg;
    int64_t per_kv = (int64_t)c->context * c->d_model * 2 + c->context;
    return s->m->conv_state_floats + 2 * (int64_t)c->num_layers * per_kv + MIMI_HOST_COUNTERS;
}

static xs_status dump_kv(xs_backend *be, const xs_kv_cache *kv, float *dst, int64_t *off) {
    int64_t n = xs_tensor_numel(&kv->k);
    XS_TRY(xs_tensor_download(be, dst + *off, &kv->k));
    *off += n;
    XS_TRY(xs_tensor_download(be, dst + *off, &kv->v));
    *off += n;
    int32_t *p = malloc((size_t)kv->capacity * sizeof *p);
    if (!p) return xs_error(XS_ERR_NOMEM, "mimi: out of memory");
    xs_status rc = xs_tensor_download(be, p, &kv->pos);
    for (int64_t i = 0; rc == XS_OK && i < kv->capacity; i++) dst[*off + i] = (float)p[i];
    free(p);
    *off += kv->capacity;
    return rc;
}

xs_status mimi_stream_state_dump(const mimi_stream *s, float *dst) {
    if (!s || !dst) return xs_error(XS_ERR_ARG, "mimi_stream_state_dump: NULL argument");
    xs_backend *be = s->m->be;
    int64_t off = 0;
    if (s->conv_state.data) XS_TRY(xs_tensor_download(be, dst, &s->conv_state));
    off += s->m->conv_state_floats;
    for (int i = 0; i < s->m->cfg.num_layers; i++) XS_TRY(dump_kv(be, &s->enc_kv[i], dst, &off));
    for (int i = 0; i < s->m->cfg.num_layers; i++) XS_TRY(dump_kv(be, &s->dec_kv[i], dst, &off));
    dst[off++] = (float)s->enc_pos;
    dst[off++] = (float)s->dec_pos;
    dst[off++] = (float)s->enc_frames;
    dst[off++] = (float)s->dec_frames;
    dst[off++] = s->downsample_primed ? 1.0f : 0.0f;
    return XS_OK;
}

/* ---- one frame inside a recorded whole frame (mimi_internal.h) ---------- */

bool mimi_frame_ready(const mimi_stream *s) {
    return s && !s->taps && s->downsample_primed;
}

xs_status mimi_frame_begin(mimi_stream *s, const float *pcm, int nq_enc, int nq_dec,
                           mimi_frame *f) {
    memset(f, 0, sizeof *f);
    if (!s || !pcm) return xs_error(XS_ERR_ARG, "mimi frame: NULL argument");
    const mimi_config *c = &s->m->cfg;
    if (nq_enc < 1 || nq_enc > c->n_q || nq_dec < 1 || nq_dec > c->n_q)
        return xs_error(XS_ERR_ARG, "mimi frame: %d / %d codebooks (1..%d)", nq_enc, nq_dec,
                        c->n_q);
    const int64_t n = mimi_frame_samples(c);
    f->s = s;
    f->nq_enc = nq_enc;
    f->nq_dec = nq_dec;
    f->T_enc = n / mimi_hop(c);
    f->T_dec = mimi_downsample_stride(c);
    /* The stream's own scratch, not the model's shared one: the recording
     * points at these buffers, which no other stream may regrow (that would
     * drop the recording) or use on another queue meanwhile. */
    f->sc = &s->scratch;
    xs_status rc = mimi_tmp(f->sc, 1, n, &f->pcm);
    if (rc == XS_OK) rc = xs_tensor_upload(s->m->be, &f->pcm, pcm);
    if (rc == XS_OK) rc = mimi_positions_stage(f->sc, s->enc_pos, f->T_enc, &f->enc_pos);
    if (rc == XS_OK) rc = mimi_tmp_dtype(f->sc, XS_I32, nq_dec, 1, &f->codes);
    if (rc == XS_OK) rc = mimi_positions_stage(f->sc, s->dec_pos, f->T_dec, &f->dec_pos);
    f->n0 = f->sc->n;
    if (rc != XS_OK) mimi_frame_end(f, false);
    return rc;
}

/* Both device parts start at slot n0: decode reuses encode's slots, whose
 * contents (but for the codes, consumed in between) are dead by then. */
xs_status mimi_frame_encode_device(mimi_frame *f, xs_tensor *codes) {
    mimi_job j = {.sc = f->sc, .s = f->s, .n0 = f->n0, .n_codebooks = f->nq_enc,
                  .in = f->pcm, .pos = f->enc_pos, .T = f->T_enc};
    XS_TRY(encode_device(&j));
    *codes = j.out;
    return XS_OK;
}

xs_status mimi_frame_decode_device(mimi_frame *f, xs_tensor *pcm) {
    mimi_job j = {.sc = f->sc, .s = f->s, .n0 = f->n0, .n_codebooks = f->nq_dec,
                  .in = f->codes, .pos = f->dec_pos, .T = f->T_dec};
    XS_TRY(decode_device(&j));
    *pcm = j.out;
    return XS_OK;
}

uint64_t mimi_frame_key(const mimi_frame *f, uint64_t key) {
    mimi_job j = {.sc = f->sc, .n_codebooks = f->nq_enc};
    key = xs_graph_key_add(key, (uint64_t)(uintptr_t)f->s);
    key = xs_graph_key_add(key, (uint64_t)f->nq_dec);
    return xs_graph_key_add(key, job_key(&j, 1));
}

void mimi_frame_end(mimi_frame *f, bool ok) {
    if (!f->sc) return;
    if (ok) {
        f->s->enc_pos += f->T_enc;
        f->s->dec_pos += f->T_dec;
        f->s->enc_frames++;
        f->s->dec_frames++;
    }
    mimi_scratch_release(f->sc);
    f->sc = NULL;
}
