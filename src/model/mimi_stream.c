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

#include "backend/lanes.h"
#include "backend/ops.h"
#include "model/kv_rings.h"
#include "model/mimi_internal.h"

static void wait_pending(mimi_stream *s);
static void call_io_free(xs_backend *be, mimi_call *c);

/* Calls that touch the stream's device state from lane 0 refuse while a
 * begun call may still be running on the stream's lane. */
static xs_status check_idle(const mimi_stream *s, const char *what) {
    if (s->enc_call.pending || s->dec_call.pending)
        return xs_error(XS_ERR_ARG, "%s: the stream has a begun %s call; finish it first", what,
                        s->enc_call.pending ? "encode" : "decode");
    return XS_OK;
}

void mimi_stream_free(mimi_stream *s) {
    if (!s) return;
    xs_backend *be = s->m->be;
    wait_pending(s); /* transfers into the staging buffers may be in flight */
    call_io_free(be, &s->enc_call);
    call_io_free(be, &s->dec_call);
    xs_graph_free(be, &s->enc_graph);
    xs_graph_free(be, &s->dec_graph);
    mimi_batch_forget(s); /* its slot, if any, is free again */
    xs_tensor_free(be, &s->conv_home);
    memset(&s->conv_state, 0, sizeof s->conv_state);
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
    XS_TRY(check_idle(s, "mimi_stream_reset"));
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
    s->lane = -1;
    s->batch_slot = -1;
    s->scratch.be = m->be;
    xs_status rc = XS_OK;
    if (m->conv_state_floats > 0) {
        int64_t n = m->conv_state_floats;
        rc = xs_tensor_alloc(m->be, XS_F32, 1, &n, &s->conv_home);
        s->conv_state = s->conv_home;
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
    XS_TRY(check_idle(src, "mimi_stream_copy"));
    XS_TRY(check_idle(dst, "mimi_stream_copy"));
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
    return mimi_rvq_encode(sc, s, &down, j->n_codebooks, &j->out);
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
    return mimi_seanet_decode(sc, s, &tr, &j->out);
}

/* Key of a recording: everything its fixed arguments came from. */
static uint64_t job_key(const mimi_job *j, int64_t n) {
    const mimi_scratch *sc = j->sc;
    uint64_t k = XS_GRAPH_KEY0;
    k = xs_graph_key_add(k, (uint64_t)n);
    k = xs_graph_key_add(k, (uint64_t)j->n_codebooks);
    /* the lane: its backend work buffer is in the recording too */
    k = xs_graph_key_add(k, (uint64_t)j->s->lane);
    k = xs_graph_key_add(k, (uint64_t)j->s->m->lanes_epoch);
    /* the conv state: home, or the stream's slot of a batch (mimi_batch.c) */
    k = xs_graph_key_add(k, (uint64_t)(uintptr_t)j->s->conv_state.data);
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

/* ---- lanes ---------------------------------------------------------------- */

static void lanes_free(mimi_model *m) {
    for (int i = 0; i < m->n_lanes && m->lane_scratch; i++) mimi_scratch_free(&m->lane_scratch[i]);
    free(m->lane_scratch);
    free(m->lane_busy);
    m->lane_scratch = NULL;
    m->lane_busy = NULL;
    m->n_lanes = 1;
}

void mimi_model_lanes_free(mimi_model *m) { lanes_free(m); }

int mimi_model_set_lanes(mimi_model *m, int n) {
    if (!m) return 1;
    lanes_free(m);
    m->lanes_epoch++;
    m->next_lane = 0;
    if (!m->be || n <= 1) return 1;
    /* Mimi lane l is backend lane l + 1: lane 0 keeps the other work (the
     * LM), and a lane picked for a call waits only for that (backend.h:
     * set_lane waits for lane 0), not for Mimi calls queued there. */
    int have = xs_backend_lanes(m->be, n + 1) - 1; /* may exist already: >= n */
    if (have < n) n = have;
    if (n <= 1) return 1;
    m->lane_scratch = calloc((size_t)n, sizeof *m->lane_scratch);
    m->lane_busy = calloc((size_t)n, sizeof *m->lane_busy);
    if (!m->lane_scratch || !m->lane_busy) {
        lanes_free(m);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        m->lane_scratch[i].be = m->be;
        atomic_init(&m->lane_busy[i], false);
    }
    m->n_lanes = n;
    return n;
}

int mimi_model_lanes(const mimi_model *m) { return m && m->n_lanes > 0 ? m->n_lanes : 1; }

int mimi_stream_lane(const mimi_stream *s) { return s ? s->lane : -1; }

/* The backend lane of Mimi lane l (one Mimi lane: the backend's lane 0). */
static int backend_lane(const mimi_model *m, int l) { return m->n_lanes > 1 ? l + 1 : 0; }

/* The stream's lane: picked round-robin at its first call, then kept (its
 * recordings point at that lane's scratch and work buffer). */
static int stream_lane(mimi_stream *s) {
    mimi_model *m = s->m;
    if (s->lane < 0 || s->lane_epoch != m->lanes_epoch || s->lane >= mimi_model_lanes(m)) {
        s->lane = m->next_lane;
        s->lane_epoch = m->lanes_epoch;
        m->next_lane = (m->next_lane + 1) % mimi_model_lanes(m);
    }
    return s->lane;
}

/* The scratch of one call on `lane`: that lane's, unless another thread is
 * in a call on that lane right now (then this stream's own). Single-threaded
 * use (a server stepping its sessions in turn) thus keeps one set of call
 * buffers per lane instead of one per session, and a stream keeps getting
 * the same buffers, as its graph recordings want. The scratch is only held
 * while a call is enqueued: calls on one lane run in order on the device,
 * so the next call may reuse the buffers before the previous one ran. */
static mimi_scratch *scratch_take(mimi_stream *s, int lane) {
    mimi_model *m = s->m;
    bool idle = false;
    if (m->n_lanes <= 1) {
        if (atomic_compare_exchange_strong(&m->scratch_busy, &idle, true)) {
            m->scratch.be = m->be;
            return &m->scratch;
        }
    } else if (atomic_compare_exchange_strong(&m->lane_busy[lane], &idle, true)) {
        return &m->lane_scratch[lane];
    }
    return &s->scratch;
}

static void scratch_give(mimi_stream *s, mimi_scratch *sc) {
    mimi_model *m = s->m;
    mimi_scratch_release(sc);
    if (sc == &m->scratch) atomic_store(&m->scratch_busy, false);
    else if (sc != &s->scratch) atomic_store(&m->lane_busy[sc - m->lane_scratch], false);
}

/* Host staging of a call: grown to `need` bytes (no transfer of this
 * stream is in flight when a call begins). */
static xs_status call_io(xs_backend *be, mimi_call *c, size_t need) {
    if (c->io_cap >= need) return XS_OK;
    xs_backend_host_free(be, c->io);
    c->io_cap = 0;
    c->io = xs_backend_host_alloc(be, need);
    if (!c->io) return xs_error(XS_ERR_NOMEM, "mimi: %zu bytes of host staging memory", need);
    c->io_cap = need;
    return XS_OK;
}

static void call_io_free(xs_backend *be, mimi_call *c) {
    xs_backend_host_free(be, c->io);
    c->io = NULL;
    c->io_cap = 0;
}

/* Wait for the lane of the stream up to its pending calls (stream_free). */
static void wait_pending(mimi_stream *s) {
    if (!s->enc_call.pending && !s->dec_call.pending) return;
    xs_backend *be = s->m->be;
    int prev = xs_backend_current_lane(be);
    if (xs_backend_set_lane(be, backend_lane(s->m, s->lane)) == XS_OK) {
        (void)xs_backend_synchronize(be);
        (void)xs_backend_set_lane(be, prev);
    }
    s->enc_call.pending = s->dec_call.pending = false;
}

/* Run fn on the stream's lane with its scratch, then back to the lane that
 * was current. */
typedef xs_status (*lane_fn)(mimi_scratch *sc, mimi_stream *s, const void *in);

static xs_status on_lane(mimi_stream *s, lane_fn fn, const void *in) {
    xs_backend *be = s->m->be;
    int lane = stream_lane(s), prev = xs_backend_current_lane(be);
    XS_TRY(xs_backend_set_lane(be, backend_lane(s->m, lane)));
    mimi_scratch *sc = scratch_take(s, lane);
    xs_status rc = fn(sc, s, in);
    scratch_give(s, sc);
    xs_status r0 = xs_backend_set_lane(be, prev);
    return rc != XS_OK ? rc : r0;
}

/* ---- encode ------------------------------------------------------------- */

/* io layout of an encode: pcm [n] f32, positions [T] i32, codes [N * nf] i32 */
static xs_status encode_enqueue(mimi_scratch *sc, mimi_stream *s, const void *pcm) {
    mimi_model *m = s->m;
    mimi_call *c = &s->enc_call;
    mimi_job j = {.sc = sc, .s = s, .n_codebooks = c->n_codebooks, .T = c->T};
    float *io_pcm = c->io;
    int32_t *io_pos = (int32_t *)(io_pcm + c->n), *io_codes = io_pos + c->T;
    memcpy(io_pcm, pcm, (size_t)c->n * sizeof *io_pcm);
    /* 1. stage */
    XS_TRY(mimi_tmp(sc, 1, c->n, &j.in));
    XS_TRY(xs_tensor_upload(m->be, &j.in, io_pcm));
    XS_TRY(mimi_positions_stage(sc, s->enc_pos, j.T, io_pos, &j.pos));
    j.n0 = sc->n;
    /* 2. device */
    s->enc_graph.programmatic = true; /* one stream (graph.h) */
    if (use_graph(s, c->nf, true))
        XS_TRY(xs_graph_run(m->be, &s->enc_graph, job_key(&j, c->n), encode_device, &j));
    else
        XS_TRY(encode_device(&j));
    /* a replay does not run the piece: the output is where the run that was
     * recorded put it (kept per stream; the whole-frame graph has its own) */
    if (j.out.data) s->enc_out = j.out;
    else j.out = s->enc_out;
    /* 3. fetch, without waiting: [N, T] codebook-major */
    if (!xs_tensor_is_contiguous(&j.out))
        return xs_error(XS_ERR_INTERNAL, "mimi: encoder codes are not contiguous");
    return xs_backend_download_async(m->be, io_codes, j.out.data, xs_tensor_nbytes(&j.out));
}

xs_status mimi_encode_begin(mimi_stream *s, const float *pcm, int64_t n, int n_codebooks) {
    if (!s || !pcm) return xs_error(XS_ERR_ARG, "mimi_encode: NULL argument");
    const mimi_config *cfg = &s->m->cfg;
    int fs = mimi_frame_samples(cfg);
    if (n <= 0 || n % fs != 0)
        return xs_error(XS_ERR_ARG, "mimi_encode: %lld samples is not a positive multiple of "
                        "the %d-sample frame", (long long)n, fs);
    if (n_codebooks < 1 || n_codebooks > cfg->n_q)
        return xs_error(XS_ERR_ARG, "mimi_encode: %d codebooks (1..%d)", n_codebooks, cfg->n_q);
    mimi_call *c = &s->enc_call;
    if (c->pending)
        return xs_error(XS_ERR_ARG, "mimi_encode_begin: the previous encode of this stream is "
                        "not finished");
    c->nf = n / fs;
    c->n = n;
    c->T = n / mimi_hop(cfg);
    c->n_codebooks = n_codebooks;
    XS_TRY(call_io(s->m->be, c, (size_t)(n + c->T + c->nf * n_codebooks) * 4));
    XS_TRY(on_lane(s, encode_enqueue, pcm));
    c->pending = true;
    return XS_OK;
}

/* Wait for the stream's lane (up to its download). */
static xs_status lane_wait(mimi_stream *s) {
    xs_backend *be = s->m->be;
    int prev = xs_backend_current_lane(be);
    XS_TRY(xs_backend_set_lane(be, backend_lane(s->m, s->lane)));
    xs_status rc = xs_backend_synchronize(be);
    xs_status r0 = xs_backend_set_lane(be, prev);
    return rc != XS_OK ? rc : r0;
}

xs_status mimi_encode_finish(mimi_stream *s, int32_t *codes) {
    if (!s || !codes) return xs_error(XS_ERR_ARG, "mimi_encode_finish: NULL argument");
    mimi_call *c = &s->enc_call;
    if (!c->pending) return xs_error(XS_ERR_ARG, "mimi_encode_finish: no encode was begun");
    c->pending = false;
    XS_TRY(lane_wait(s));
    /* [N, T] codebook-major on the backend -> [T, N] frame-major */
    const int32_t *h = (const int32_t *)((const float *)c->io + c->n) + c->T;
    const int64_t nf = c->nf;
    const int N = c->n_codebooks;
    for (int64_t t = 0; t < nf; t++)
        for (int k = 0; k < N; k++) codes[t * N + k] = h[k * nf + t];
    s->enc_pos += c->T;
    s->enc_frames += nf;
    return XS_OK;
}

xs_status mimi_encode(mimi_stream *s, const float *pcm, int64_t n, int n_codebooks,
                      int32_t *codes) {
    if (!s || !pcm || !codes) return xs_error(XS_ERR_ARG, "mimi_encode: NULL argument");
    XS_TRY(mimi_encode_begin(s, pcm, n, n_codebooks));
    return mimi_encode_finish(s, codes);
}

/* ---- decode ------------------------------------------------------------- */

/* io layout of a decode: codes [N * nf] i32 (codebook-major), positions [T]
 * i32, pcm [n] f32 */
static xs_status decode_enqueue(mimi_scratch *sc, mimi_stream *s, const void *unused) {
    (void)unused;
    mimi_model *m = s->m;
    mimi_call *c = &s->dec_call;
    mimi_job j = {.sc = sc, .s = s, .n_codebooks = c->n_codebooks, .T = c->T};
    int32_t *io_codes = c->io, *io_pos = io_codes + c->nf * c->n_codebooks;
    float *io_pcm = (float *)(io_pos + c->T);
    /* 1. stage: codes as [N, T] codebook-major (already in io), positions */
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, c->n_codebooks, c->nf, &j.in));
    XS_TRY(xs_tensor_upload(m->be, &j.in, io_codes));
    XS_TRY(mimi_positions_stage(sc, s->dec_pos, j.T, io_pos, &j.pos));
    j.n0 = sc->n;
    /* 2. device */
    s->dec_graph.programmatic = true;
    if (use_graph(s, c->nf, false))
        XS_TRY(xs_graph_run(m->be, &s->dec_graph, job_key(&j, c->nf), decode_device, &j));
    else
        XS_TRY(decode_device(&j));
    /* a replay does not run the piece: the output is where the run that was
     * recorded put it (kept per stream; the whole-frame graph has its own) */
    if (j.out.data) s->dec_out = j.out;
    else j.out = s->dec_out;
    /* 3. fetch, without waiting */
    if (!xs_tensor_is_contiguous(&j.out) || xs_tensor_numel(&j.out) != c->n)
        return xs_error(XS_ERR_INTERNAL, "mimi: decoder output is not %lld contiguous samples",
                        (long long)c->n);
    return xs_backend_download_async(m->be, io_pcm, j.out.data, xs_tensor_nbytes(&j.out));
}

xs_status mimi_decode_begin(mimi_stream *s, const int32_t *codes, int64_t n_frames,
                            int n_codebooks) {
    if (!s || !codes) return xs_error(XS_ERR_ARG, "mimi_decode: NULL argument");
    const mimi_config *cfg = &s->m->cfg;
    if (n_frames <= 0) return xs_error(XS_ERR_ARG, "mimi_decode: %lld frames", (long long)n_frames);
    if (n_codebooks < 1 || n_codebooks > cfg->n_q)
        return xs_error(XS_ERR_ARG, "mimi_decode: %d codebooks (1..%d)", n_codebooks, cfg->n_q);
    for (int64_t i = 0; i < n_frames * n_codebooks; i++)
        if (codes[i] < 0 || codes[i] >= cfg->bins)
            return xs_error(XS_ERR_ARG, "mimi_decode: code %d at frame %lld codebook %lld is "
                            "outside 0..%d", codes[i], (long long)(i / n_codebooks),
                            (long long)(i % n_codebooks), cfg->bins - 1);
    mimi_call *c = &s->dec_call;
    if (c->pending)
        return xs_error(XS_ERR_ARG, "mimi_decode_begin: the previous decode of this stream is "
                        "not finished");
    c->nf = n_frames;
    c->n = n_frames * mimi_frame_samples(cfg);
    c->T = n_frames * mimi_downsample_stride(cfg);
    c->n_codebooks = n_codebooks;
    XS_TRY(call_io(s->m->be, c, (size_t)(n_frames * n_codebooks + c->T + c->n) * 4));
    int32_t *h = c->io;
    for (int64_t t = 0; t < n_frames; t++)
        for (int k = 0; k < n_codebooks; k++)
            h[k * n_frames + t] = codes[t * n_codebooks + k];
    XS_TRY(on_lane(s, decode_enqueue, NULL));
    c->pending = true;
    return XS_OK;
}

xs_status mimi_decode_finish(mimi_stream *s, float *pcm) {
    if (!s || !pcm) return xs_error(XS_ERR_ARG, "mimi_decode_finish: NULL argument");
    mimi_call *c = &s->dec_call;
    if (!c->pending) return xs_error(XS_ERR_ARG, "mimi_decode_finish: no decode was begun");
    c->pending = false;
    XS_TRY(lane_wait(s));
    const float *h = (const float *)((const int32_t *)c->io + c->nf * c->n_codebooks + c->T);
    memcpy(pcm, h, (size_t)c->n * sizeof *pcm);
    s->dec_pos += c->T;
    s->dec_frames += c->nf;
    return XS_OK;
}

xs_status mimi_decode(mimi_stream *s, const int32_t *codes, int64_t n_frames, int n_codebooks,
                      float *pcm) {
    if (!s || !codes || !pcm) return xs_error(XS_ERR_ARG, "mimi_decode: NULL argument");
    XS_TRY(mimi_decode_begin(s, codes, n_frames, n_codebooks));
    return mimi_decode_finish(s, pcm);
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
    XS_TRY(check_idle(s, "mimi_stream_state_dump"));
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
    if (rc == XS_OK) rc = mimi_positions_stage(f->sc, s->enc_pos, f->T_enc, NULL, &f->enc_pos);
    if (rc == XS_OK) rc = mimi_tmp_dtype(f->sc, XS_I32, nq_dec, 1, &f->codes);
    if (rc == XS_OK) rc = mimi_positions_stage(f->sc, s->dec_pos, f->T_dec, NULL, &f->dec_pos);
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
    mimi_job j = {.sc = f->sc, .s = f->s, .n_codebooks = f->nq_enc};
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
