/*
 * mimi_batch.c — one frame of n Mimi streams as ONE computation.
 *
 * Why: a stream's frame is ~300 small kernels (convs, the 8-layer 512-wide
 * transformer, RVQ). Run per stream, 80 sessions make 24,000 launches per
 * frame and the GPU waits on launches. Here every kernel serves all n
 * streams: the weights are read once and the kernels are n times wider.
 *
 * Layouts (n streams, T columns each at the current rate):
 *  - conv side: [C, n, T] (channels outermost, then stream, then time),
 *    i.e. the streams' [C, T] activations side by side along time;
 *  - transformer side: [T, n, D] (rows t-major), so that the rows of one
 *    time step of every stream are one contiguous block for the
 *    row-batched kv_store / attention ops (one cache per row);
 *  - RVQ: [D, n*Tq] is simply n*Tq rows for its matmuls and argmaxes, so
 *    mimi_rvq_encode / _decode serve the batch unchanged.
 *
 * Streaming convs. A conv with context P and stride s runs on
 *   xin [C, n, L],  L = roundup(P + T, s):  [ctx P | new T | pad]
 * per stream. One valid conv over the whole [C, n*L] gives every stream's
 * outputs at columns i*L/s + t (t < T/s; columns that straddle two streams
 * are computed and dropped), taken with one strided copy; the matmul form
 * gathers only the valid windows. The contexts live in every stream's
 * conv state at the same offset; with the states at a fixed stride in one
 * array (slots), "all contexts" is ONE strided view, so each conv costs the
 * same ~4 copies for n streams as for one.
 * A transposed conv (kernel K, stride S) would spill the last inputs of
 * stream i into stream i+1's outputs, so each stream's inputs are followed
 * by g = ceil((K-S)/S) zero columns; zero inputs add exact zeros, so every
 * kept output has the solo value.
 *
 * Slots. m->batch->slots is f32 [cap, F] (F = conv_state_floats). A batched
 * call with streams s[0..n) first moves s[i]'s conv state into slot i
 * (unless it is there already: the steady state moves nothing), evicting
 * the previous occupant to its home allocation. A stream's conv_state
 * points at wherever its state lives, so plain calls keep working; their
 * recordings are keyed by that pointer and re-record after a move.
 *
 * Exactness: cuda kernels compute each output column / row independently
 * of how many a call has (conv1d picks its warps by the reduction length,
 * matmul rows are M-independent, attention_rows = attention bit for bit),
 * so batched results equal solo ones bit for bit. The cpu matmul takes the
 * sgemm path above 16 rows, where sums may round differently (~1e-7).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/lanes.h"
#include "backend/ops.h"
#include "model/mimi_internal.h"

typedef struct mimi_batch_state mimi_batch_state;
struct mimi_batch_state {
    xs_tensor slots;        /* f32 [cap * F]; slot i at i * F */
    mimi_stream **occ;      /* [cap]: the stream whose state is in slot i, or NULL */
    int cap;
    mimi_scratch enc_sc, dec_sc; /* call scratch (one per kind: fixed buffers per n) */
    xs_graph enc_graph, dec_graph;
    xs_tensor enc_out, dec_out;  /* where the recorded run put codes / pcm */
    void *io;               /* pinned host staging */
    size_t io_cap;
    xs_kv_cache **kv;       /* [num_layers * n]: row i's cache of layer l at l * n + i */
    int kv_cap;
};

/* ---- switch ------------------------------------------------------------- */

static int g_mode = -1;

void mimi_batch_set_mode(int mode) { g_mode = mode < 0 ? -1 : mode != 0; }

bool mimi_batch_enabled(void) {
    static int env = -1; /* read once; a benign race sets the same value */
    if (g_mode >= 0) return g_mode == 1;
    if (env < 0) {
        const char *e = getenv("XSWARM_MIMI_BATCH");
        env = !(e && strcmp(e, "0") == 0);
    }
    return env == 1;
}

/* ---- slots ------------------------------------------------------------------- */

static xs_tensor slot_of(const mimi_batch_state *b, int64_t F, int i) {
    return xs_tensor_1d(XS_F32, (float *)b->slots.data + (int64_t)i * F, F);
}

/* Slot i's stream goes home (its state copied back). */
static xs_status evict(mimi_model *m, mimi_batch_state *b, int i) {
    mimi_stream *s = b->occ[i];
    b->occ[i] = NULL;
    if (!s) return XS_OK;
    xs_tensor src = slot_of(b, m->conv_state_floats, i);
    s->conv_state = s->conv_home;
    s->batch_slot = -1;
    return xs_op_copy(m->be, &s->conv_home, &src);
}

/* Put s[i]'s conv state into slot i, for every i. */
static xs_status place(mimi_model *m, mimi_batch_state *b, mimi_stream *const *s, int n) {
    const int64_t F = m->conv_state_floats;
    if (F <= 0) return XS_OK;
    if (n > b->cap) {
        for (int i = 0; i < b->cap; i++) XS_TRY(evict(m, b, i));
        xs_tensor_free(m->be, &b->slots);
        memset(&b->slots, 0, sizeof b->slots);
        free(b->occ);
        b->occ = NULL;
        b->cap = 0;
        int cap = (n + 7) / 8 * 8;
        int64_t total = (int64_t)cap * F;
        b->occ = calloc((size_t)cap, sizeof *b->occ);
        if (!b->occ) return xs_error(XS_ERR_NOMEM, "mimi batch: out of memory");
        XS_TRY(xs_tensor_alloc(m->be, XS_F32, 1, &total, &b->slots));
        b->cap = cap;
        /* recordings pointed at the old slots */
        xs_graph_free(m->be, &b->enc_graph);
        xs_graph_free(m->be, &b->dec_graph);
    }
    for (int i = 0; i < n; i++) {
        mimi_stream *st = s[i];
        if (st->batch_slot == i) continue;
        if (b->occ[i]) XS_TRY(evict(m, b, i));
        xs_tensor dst = slot_of(b, F, i);
        if (st->batch_slot >= 0) {
            xs_tensor src = slot_of(b, F, st->batch_slot);
            b->occ[st->batch_slot] = NULL;
            XS_TRY(xs_op_copy(m->be, &dst, &src));
        } else {
            XS_TRY(xs_op_copy(m->be, &dst, &st->conv_home));
        }
        st->conv_state = dst;
        st->batch_slot = i;
        b->occ[i] = st;
    }
    return XS_OK;
}

void mimi_batch_forget(mimi_stream *s) {
    if (!s || !s->m || !s->m->batch) return;
    mimi_batch_state *b = s->m->batch;
    if (s->batch_slot >= 0 && s->batch_slot < b->cap && b->occ[s->batch_slot] == s)
        b->occ[s->batch_slot] = NULL;
    s->batch_slot = -1;
    s->conv_state = s->conv_home;
    /* the recordings may hold this stream's caches */
    xs_graph_free(s->m->be, &b->enc_graph);
    xs_graph_free(s->m->be, &b->dec_graph);
}

void mimi_batch_state_free(mimi_model *m) {
    mimi_batch_state *b = m ? m->batch : NULL;
    if (!b) return;
    for (int i = 0; i < b->cap; i++) /* streams still alive go home (no copy: model is going) */
        if (b->occ[i]) {
            b->occ[i]->conv_state = b->occ[i]->conv_home;
            b->occ[i]->batch_slot = -1;
        }
    xs_graph_free(m->be, &b->enc_graph);
    xs_graph_free(m->be, &b->dec_graph);
    mimi_scratch_free(&b->enc_sc);
    mimi_scratch_free(&b->dec_sc);
    xs_tensor_free(m->be, &b->slots);
    xs_backend_host_free(m->be, b->io);
    free(b->occ);
    free(b->kv);
    free(b);
    m->batch = NULL;
}

void mimi_batch_graph_stats(const mimi_model *m, int64_t *captures, int64_t *launches) {
    const mimi_batch_state *b = m ? m->batch : NULL;
    *captures = b ? b->enc_graph.captures + b->dec_graph.captures : 0;
    *launches = b ? b->enc_graph.launches + b->dec_graph.launches : 0;
}

static xs_status batch_state(mimi_model *m, mimi_batch_state **out) {
    if (!m->batch) {
        mimi_batch_state *b = calloc(1, sizeof *b);
        if (!b) return xs_error(XS_ERR_NOMEM, "mimi batch: out of memory");
        b->enc_sc.be = b->dec_sc.be = m->be;
        m->batch = b;
    }
    *out = m->batch;
    return XS_OK;
}

/* ---- calls ------------------------------------------------------------------- */

bool mimi_batch_usable(mimi_stream *const *s, int n) {
    if (!s || n < 1 || !s[0]) return false;
    for (int i = 0; i < n; i++) {
        if (!s[i] || s[i]->m != s[0]->m || s[i]->taps || s[i]->enc_call.pending ||
            s[i]->dec_call.pending)
            return false;
        for (int j = 0; j < i; j++)
            if (s[j] == s[i]) return false;
    }
    return true;
}

static xs_status check_args(mimi_stream *const *s, int n, int n_codebooks, const char *what) {
    if (!s || n < 1) return xs_error(XS_ERR_ARG, "%s: %d streams", what, n);
    if (!mimi_batch_usable(s, n))
        return xs_error(XS_ERR_ARG, "%s: the streams must be distinct, of one model, without "
                        "taps and without a begun call", what);
    const mimi_config *c = &s[0]->m->cfg;
    if (n_codebooks < 1 || n_codebooks > c->n_q)
        return xs_error(XS_ERR_ARG, "%s: %d codebooks (1..%d)", what, n_codebooks, c->n_q);
    return XS_OK;
}

/* ---- groups -----------------------------------------------------------------
 * The call scratch grows with the streams of one computation (~17 MB per
 * stream for Moshi's Mimi, encode + decode). Above `group max` streams
 * (XSWARM_MIMI_BATCH_MAX, default 64) a call runs as several equal groups,
 * one after another on the same scratch, all in one recording: at 80
 * sessions two groups of 40 (~600 launches instead of ~300, ~0.7 GB of
 * scratch instead of 1.4 GB, next to 80 x 0.87 GB of LM caches). Every
 * staged array is group-major, so each group's inputs and outputs are
 * contiguous. */
static int g_group_max = 0;

void mimi_batch_set_group_max(int n) { g_group_max = n > 0 ? n : 0; }

static int group_max(void) {
    static int env = 0; /* read once; a benign race sets the same value */
    if (g_group_max > 0) return g_group_max;
    if (env == 0) {
        const char *e = getenv("XSWARM_MIMI_BATCH_MAX");
        int v = e ? atoi(e) : 0;
        env = v > 0 ? v : 64;
    }
    return env;
}

/* Group g of n streams in ng groups: first stream *g0, *cnt streams. */
static void group_of(int n, int ng, int g, int *g0, int *cnt) {
    const int base = n / ng, extra = n % ng;
    *g0 = g * base + (g < extra ? g : extra);
    *cnt = base + (g < extra);
}

/* The piece a recording replays: ops only, fixed arguments for a given key. */
typedef struct bjob {
    const mimi_model *m;
    mimi_scratch *sc;
    xs_backend *be;
    mimi_stream *const *s;
    int n, ng;                /* streams, groups */
    float *state;             /* slot 0's conv state */
    int n0, n_codebooks;
    xs_tensor in, pos, out;   /* staged input and positions (group-major); output */
    int64_t T;                /* transformer steps per stream */
    xs_kv_cache *const *kv;   /* [L * n]: layer l of stream i at l * n + i */
} bjob;

/* The context of group g, and its first stream. */
static mimi_bctx group_ctx(const bjob *j, int g, int *g0) {
    int cnt;
    group_of(j->n, j->ng, g, g0, &cnt);
    const int64_t F = j->m->conv_state_floats;
    mimi_bctx c = {.sc = j->sc, .be = j->be, .s = j->s + *g0, .n = cnt,
              .state = j->state ? j->state + (int64_t)*g0 * F : NULL, .F = F};
    return c;
}

static xs_status encode_device(void *p) {
    bjob *j = p;
    const mimi_model *m = j->m;
    const int64_t fs = mimi_frame_samples(&m->cfg), T = j->T;
    const int64_t Tq = T / mimi_downsample_stride(&m->cfg), N = j->n_codebooks;
    j->sc->n = j->n0;
    xs_tensor all = {0};
    if (j->ng > 1) XS_TRY(mimi_tmp_dtype(j->sc, XS_I32, N * Tq, j->n, &all));
    const int mark = j->sc->n;
    for (int g = 0; g < j->ng; g++) {
        int g0;
        mimi_bctx c = group_ctx(j, g, &g0);
        j->sc->n = mark;
        xs_tensor in = xs_tensor_2d(XS_F32, (float *)j->in.data + g0 * fs, 1, c.n * fs);
        xs_tensor pos = xs_tensor_1d(XS_I32, (int32_t *)j->pos.data + g0 * T, c.n * T);
        xs_tensor lat, tr, down, codes;
        XS_TRY(mimi_bseanet_encode(&c, m, &in, fs, &lat));
        XS_TRY(mimi_btransformer(&c, m, &m->enc_tr, j->kv + g0, j->n, &pos, &lat, T, &tr));
        XS_TRY(mimi_bconv(&c, &m->downsample, &tr, T, &down));
        XS_TRY(mimi_rvq_encode(j->sc, c.s[0], &down, j->n_codebooks, &codes));
        if (j->ng == 1) {
            j->out = codes;
        } else { /* group-major: group g's [N, cnt*Tq] block */
            xs_tensor src = xs_tensor_1d(XS_I32, codes.data, N * c.n * Tq);
            xs_tensor dst = xs_tensor_1d(XS_I32, (int32_t *)all.data + N * g0 * Tq, N * c.n * Tq);
            XS_TRY(xs_op_copy(j->be, &dst, &src));
        }
    }
    if (j->ng > 1) j->out = all;
    return XS_OK;
}

static xs_status decode_device(void *p) {
    bjob *j = p;
    const mimi_model *m = j->m;
    const int64_t fs = mimi_frame_samples(&m->cfg), T = j->T, N = j->n_codebooks, Tq = 1;
    j->sc->n = j->n0;
    xs_tensor all = {0};
    if (j->ng > 1) XS_TRY(mimi_tmp(j->sc, 1, j->n * fs, &all));
    const int mark = j->sc->n;
    for (int g = 0; g < j->ng; g++) {
        int g0;
        mimi_bctx c = group_ctx(j, g, &g0);
        j->sc->n = mark;
        xs_tensor codes = xs_tensor_2d(XS_I32, (int32_t *)j->in.data + N * g0 * Tq, N, c.n * Tq);
        xs_tensor pos = xs_tensor_1d(XS_I32, (int32_t *)j->pos.data + g0 * T, c.n * T);
        xs_tensor lat, up, tr, pcm;
        XS_TRY(mimi_rvq_decode(j->sc, c.s[0], &codes, j->n_codebooks, &lat));
        XS_TRY(mimi_bconvtr(&c, &m->upsample, &lat, Tq, &up));
        XS_TRY(mimi_btransformer(&c, m, &m->dec_tr, j->kv + g0, j->n, &pos, &up, T, &tr));
        XS_TRY(mimi_bseanet_decode(&c, m, &tr, T, &pcm));
        if (j->ng == 1) {
            j->out = pcm;
        } else {
            xs_tensor src = xs_tensor_1d(XS_F32, pcm.data, c.n * fs);
            xs_tensor dst = xs_tensor_1d(XS_F32, (float *)all.data + g0 * fs, c.n * fs);
            XS_TRY(xs_op_copy(j->be, &dst, &src));
        }
    }
    if (j->ng > 1) j->out = all;
    return XS_OK;
}

static uint64_t bjob_key(const bjob *j, bool encode) {
    const mimi_scratch *sc = j->sc;
    uint64_t k = xs_graph_key_add(XS_GRAPH_KEY0, encode ? 1u : 2u);
    k = xs_graph_key_add(k, (uint64_t)j->n);
    k = xs_graph_key_add(k, (uint64_t)j->ng);
    k = xs_graph_key_add(k, (uint64_t)j->n_codebooks);
    k = xs_graph_key_add(k, (uint64_t)(uintptr_t)j->state);
    for (int i = 0; i < j->n; i++) { /* the ordered streams: their caches are in it */
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)j->s[i]);
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)j->s[i]->kv_block.data);
    }
    for (int i = 0; i < MIMI_SCRATCH_MAX; i++) {
        if (!sc->cap[i]) continue;
        k = xs_graph_key_add(k, (uint64_t)(uintptr_t)sc->slot[i].data);
        k = xs_graph_key_add(k, (uint64_t)sc->cap[i]);
    }
    return k;
}

static xs_status io_reserve(mimi_batch_state *b, xs_backend *be, size_t need) {
    if (b->io_cap >= need) return XS_OK;
    xs_backend_host_free(be, b->io);
    b->io_cap = 0;
    b->io = xs_backend_host_alloc(be, need);
    if (!b->io) return xs_error(XS_ERR_NOMEM, "mimi batch: %zu bytes of host staging", need);
    b->io_cap = need;
    return XS_OK;
}

/* Per-row caches of every layer: kv[l * n + i] = stream i's layer l. */
static xs_status kv_rows(mimi_batch_state *b, mimi_stream *const *s, int n, int L, bool enc) {
    if (b->kv_cap < L * n) {
        free(b->kv);
        b->kv_cap = 0;
        b->kv = malloc((size_t)(L * n > 0 ? L * n : 1) * sizeof *b->kv);
        if (!b->kv) return xs_error(XS_ERR_NOMEM, "mimi batch: out of memory");
        b->kv_cap = L * n;
    }
    for (int l = 0; l < L; l++)
        for (int i = 0; i < n; i++) b->kv[(size_t)l * n + i] = enc ? &s[i]->enc_kv[l]
                                                                    : &s[i]->dec_kv[l];
    return XS_OK;
}

/* Common start of a call: lane 0 after every lane's work, the states in
 * their slots, the staging buffer, the per-row caches. */
static xs_status call_begin(mimi_stream *const *s, int n, bool enc, size_t io_bytes,
                            mimi_batch_state **bo, int *prev_lane) {
    mimi_model *m = s[0]->m;
    xs_backend *be = m->be;
    mimi_batch_state *b = NULL;
    XS_TRY(batch_state(m, &b));
    *prev_lane = xs_backend_current_lane(be);
    /* plain calls of these streams may have run on Mimi lanes */
    XS_TRY(xs_backend_join_lanes(be));
    XS_TRY(xs_backend_set_lane(be, 0));
    XS_TRY(place(m, b, s, n));
    XS_TRY(io_reserve(b, be, io_bytes));
    XS_TRY(kv_rows(b, s, n, m->cfg.num_layers, enc));
    *bo = b;
    return XS_OK;
}

/* Positions, group-major: group g's [T, cnt] block (row t*cnt + i) at g0*T. */
static void stage_positions(int32_t *hp, mimi_stream *const *s, int n, int ng, int64_t T,
                            bool enc) {
    for (int g = 0; g < ng; g++) {
        int g0, cnt;
        group_of(n, ng, g, &g0, &cnt);
        for (int64_t t = 0; t < T; t++)
            for (int i = 0; i < cnt; i++) {
                const mimi_stream *st = s[g0 + i];
                hp[g0 * T + t * cnt + i] = (int32_t)((enc ? st->enc_pos : st->dec_pos) + t);
            }
    }
}

static int groups_for(int n) {
    const int G = group_max();
    return (n + G - 1) / G;
}

static xs_status encode_run(mimi_batch_state *b, mimi_stream *const *s, int n,
                            const float *const *pcm, int n_codebooks, int32_t *const *codes) {
    mimi_model *m = s[0]->m;
    xs_backend *be = m->be;
    const mimi_config *cf = &m->cfg;
    const int64_t fs = mimi_frame_samples(cf), T = fs / mimi_hop(cf);
    const int64_t Tq = T / mimi_downsample_stride(cf), N = n_codebooks;
    float *io_pcm = b->io;
    int32_t *io_pos = (int32_t *)(io_pcm + n * fs), *io_codes = io_pos + n * T;
    mimi_scratch *sc = &b->enc_sc;
    bjob j = {.m = m, .sc = sc, .be = be, .s = s, .n = n, .ng = groups_for(n),
              .state = b->slots.data, .n_codebooks = n_codebooks, .T = T, .kv = b->kv};
    for (int i = 0; i < n; i++) memcpy(io_pcm + i * fs, pcm[i], (size_t)fs * sizeof *io_pcm);
    stage_positions(io_pos, s, n, j.ng, T, true);
    sc->n = 0;
    XS_TRY(mimi_tmp(sc, 1, n * fs, &j.in));
    XS_TRY(xs_tensor_upload(be, &j.in, io_pcm));
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, T * n, 1, &j.pos));
    j.pos = xs_tensor_1d(XS_I32, j.pos.data, T * n);
    XS_TRY(xs_tensor_upload(be, &j.pos, io_pos));
    j.n0 = sc->n;
    bool primed = true;
    for (int i = 0; i < n; i++) primed = primed && s[i]->downsample_primed;
    /* the first frame of a stream primes its replicate padding: other ops */
    if (primed && xs_graph_available(be))
        XS_TRY(xs_graph_run(be, &b->enc_graph, bjob_key(&j, true), encode_device, &j));
    else
        XS_TRY(encode_device(&j));
    /* a replay does not run the piece: the codes are where the recorded run put them */
    if (j.out.data) b->enc_out = j.out;
    else j.out = b->enc_out;
    if (!xs_tensor_is_contiguous(&j.out) || xs_tensor_numel(&j.out) != N * n * Tq)
        return xs_error(XS_ERR_INTERNAL, "mimi batch: codes are not [%d, %lld]", n_codebooks,
                        (long long)(n * Tq));
    XS_TRY(xs_backend_download_async(be, io_codes, j.out.data, xs_tensor_nbytes(&j.out)));
    XS_TRY(xs_backend_synchronize(be));
    /* group-major [N, cnt*Tq] blocks -> stream i's [Tq][N] */
    for (int g = 0; g < j.ng; g++) {
        int g0, cnt;
        group_of(n, j.ng, g, &g0, &cnt);
        const int32_t *blk = io_codes + N * g0 * Tq;
        for (int i = 0; i < cnt; i++)
            for (int64_t t = 0; t < Tq; t++)
                for (int64_t k = 0; k < N; k++)
                    codes[g0 + i][t * N + k] = blk[k * cnt * Tq + i * Tq + t];
    }
    for (int i = 0; i < n; i++) {
        s[i]->enc_pos += T;
        s[i]->enc_frames++;
        s[i]->downsample_primed = true;
    }
    return XS_OK;
}

xs_status mimi_encode_batch(mimi_stream *const *s, int n, const float *const *pcm,
                            int n_codebooks, int32_t *const *codes) {
    XS_TRY(check_args(s, n, n_codebooks, "mimi_encode_batch"));
    if (!pcm || !codes) return xs_error(XS_ERR_ARG, "mimi_encode_batch: NULL argument");
    for (int i = 0; i < n; i++)
        if (!pcm[i] || !codes[i])
            return xs_error(XS_ERR_ARG, "mimi_encode_batch: stream %d: NULL pcm or codes", i);
    const mimi_config *cf = &s[0]->m->cfg;
    const int64_t fs = mimi_frame_samples(cf), T = fs / mimi_hop(cf);
    const int64_t Tq = T / mimi_downsample_stride(cf);
    size_t io = (size_t)n * (size_t)(fs + T + Tq * n_codebooks) * 4;
    mimi_batch_state *b = NULL;
    int prev = 0;
    xs_status rc = call_begin(s, n, true, io, &b, &prev);
    if (rc == XS_OK) rc = encode_run(b, s, n, pcm, n_codebooks, codes);
    if (b) mimi_scratch_release(&b->enc_sc);
    xs_status r0 = xs_backend_set_lane(s[0]->m->be, prev);
    return rc != XS_OK ? rc : r0;
}

static xs_status decode_run(mimi_batch_state *b, mimi_stream *const *s, int n,
                            const int32_t *const *codes, int n_codebooks, float *const *pcm) {
    mimi_model *m = s[0]->m;
    xs_backend *be = m->be;
    const mimi_config *cf = &m->cfg;
    const int64_t fs = mimi_frame_samples(cf), T = mimi_downsample_stride(cf), N = n_codebooks;
    int32_t *io_codes = b->io, *io_pos = io_codes + N * n;
    float *io_pcm = (float *)(io_pos + n * T);
    mimi_scratch *sc = &b->dec_sc;
    bjob j = {.m = m, .sc = sc, .be = be, .s = s, .n = n, .ng = groups_for(n),
              .state = b->slots.data, .n_codebooks = n_codebooks, .T = T, .kv = b->kv};
    /* group-major: group g's codes [N, cnt] at N * g0 */
    for (int g = 0; g < j.ng; g++) {
        int g0, cnt;
        group_of(n, j.ng, g, &g0, &cnt);
        for (int i = 0; i < cnt; i++)
            for (int64_t k = 0; k < N; k++) io_codes[N * g0 + k * cnt + i] = codes[g0 + i][k];
    }
    stage_positions(io_pos, s, n, j.ng, T, false);
    sc->n = 0;
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, N, n, &j.in));
    XS_TRY(xs_tensor_upload(be, &j.in, io_codes));
    XS_TRY(mimi_tmp_dtype(sc, XS_I32, T * n, 1, &j.pos));
    j.pos = xs_tensor_1d(XS_I32, j.pos.data, T * n);
    XS_TRY(xs_tensor_upload(be, &j.pos, io_pos));
    j.n0 = sc->n;
    if (xs_graph_available(be))
        XS_TRY(xs_graph_run(be, &b->dec_graph, bjob_key(&j, false), decode_device, &j));
    else
        XS_TRY(decode_device(&j));
    if (j.out.data) b->dec_out = j.out;
    else j.out = b->dec_out;
    if (!xs_tensor_is_contiguous(&j.out) || xs_tensor_numel(&j.out) != n * fs)
        return xs_error(XS_ERR_INTERNAL, "mimi batch: decoder output is not %lld samples",
                        (long long)(n * fs));
    XS_TRY(xs_backend_download_async(be, io_pcm, j.out.data, xs_tensor_nbytes(&j.out)));
    XS_TRY(xs_backend_synchronize(be));
    for (int i = 0; i < n; i++) memcpy(pcm[i], io_pcm + i * fs, (size_t)fs * sizeof *io_pcm);
    for (int i = 0; i < n; i++) {
        s[i]->dec_pos += T;
        s[i]->dec_frames++;
    }
    return XS_OK;
}

xs_status mimi_decode_batch(mimi_stream *const *s, int n, const int32_t *const *codes,
                            int n_codebooks, float *const *pcm) {
    XS_TRY(check_args(s, n, n_codebooks, "mimi_decode_batch"));
    if (!pcm || !codes) return xs_error(XS_ERR_ARG, "mimi_decode_batch: NULL argument");
    const mimi_config *cf = &s[0]->m->cfg;
    for (int i = 0; i < n; i++) {
        if (!pcm[i] || !codes[i])
            return xs_error(XS_ERR_ARG, "mimi_decode_batch: stream %d: NULL pcm or codes", i);
        for (int k = 0; k < n_codebooks; k++)
            if (codes[i][k] < 0 || codes[i][k] >= cf->bins)
                return xs_error(XS_ERR_ARG, "mimi_decode_batch: stream %d: code %d of codebook "
                                "%d is outside 0..%d", i, codes[i][k], k, cf->bins - 1);
    }
    const int64_t fs = mimi_frame_samples(cf), T = mimi_downsample_stride(cf);
    size_t io = (size_t)n * (size_t)(n_codebooks + T + fs) * 4;
    mimi_batch_state *b = NULL;
    int prev = 0;
    xs_status rc = call_begin(s, n, false, io, &b, &prev);
    if (rc == XS_OK) rc = decode_run(b, s, n, codes, n_codebooks, pcm);
    if (b) mimi_scratch_release(&b->dec_sc);
    xs_status r0 = xs_backend_set_lane(s[0]->m->be, prev);
    return rc != XS_OK ? rc : r0;
}
