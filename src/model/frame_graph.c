/*
 * frame_graph.c — a solo session's whole frame as one recorded piece
 * (frame_graph.h).
 */
#include "model/frame_graph.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/graph.h"
#include "backend/ops.h"
#include "model/lm_window.h"
#include "model/mimi_internal.h"

struct xs_frame_graph {
    xs_backend *be;
    lm_window win;
    xs_tensor pack; /* f32 [fs + ns + nu]: pcm, then i32 output tokens, then i32 user codes */
    float *host;    /* the pack, downloaded */
    int fs, ns, nu;
    xs_graph graph;
    bool active;    /* the window holds gen's delay state; its host ring is stale */
    lm_gen *gen;
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void xs_frame_graph_free(xs_frame_graph *fg, xs_backend *be) {
    if (!fg) return;
    xs_graph_free(be, &fg->graph);
    lm_window_free(&fg->win);
    xs_tensor_free(be, &fg->pack);
    free(fg->host);
    free(fg);
}

static xs_status frame_graph_new(xswarm_model *m, xs_frame_graph **out) {
    xs_frame_graph *fg = calloc(1, sizeof *fg);
    if (!fg) return xs_error(XS_ERR_NOMEM, "frame graph: out of memory");
    fg->be = m->be;
    fg->fs = XSWARM_FRAME_SAMPLES;
    fg->ns = 1 + m->dep_q;
    fg->nu = m->user_codes;
    int64_t n = (int64_t)fg->fs + fg->ns + fg->nu;
    fg->host = malloc((size_t)n * sizeof *fg->host);
    xs_status rc = fg->host ? lm_window_init(m->be, &m->lm->cfg, &fg->win)
                            : xs_error(XS_ERR_NOMEM, "frame graph: out of memory");
    if (rc == XS_OK) rc = xs_tensor_alloc(m->be, XS_F32, 1, &n, &fg->pack);
    if (rc != XS_OK) {
        xs_frame_graph_free(fg, m->be);
        return rc;
    }
    *out = fg;
    return XS_OK;
}

xs_status xs_frame_graph_leave(xs_frame_graph *fg, lm_gen *gen) {
    if (!fg || !fg->active) return XS_OK;
    fg->active = false;
    return fg->gen == gen ? lm_gen_window_store(gen, &fg->win) : XS_OK;
}

void xs_frame_graph_reset(xs_frame_graph *fg) {
    if (fg) fg->active = false;
}

void xs_frame_graph_stats(const xs_frame_graph *fg, int64_t *captures, int64_t *launches,
                          int64_t *eager) {
    *captures = fg ? fg->graph.captures : 0;
    *launches = fg ? fg->graph.launches : 0;
    *eager = fg ? fg->graph.eager : 0;
}

/* i32 [n] view of the pack from element off. */
static xs_tensor pack_i32(const xs_frame_graph *fg, int64_t off, int64_t n) {
    return xs_tensor_1d(XS_I32, (float *)fg->pack.data + off, n);
}

typedef struct frame_job {
    xs_frame_graph *fg;
    mimi_frame *mf;
    lm_gen *gen;
} frame_job;

/* The piece: device ops only, every pointer fixed for a given session. */
static xs_status frame_device(void *p) {
    const frame_job *j = p;
    xs_frame_graph *fg = j->fg;
    lm_window *w = &fg->win;
    xs_tensor codes, pcm;
    XS_TRY(mimi_frame_encode_device(j->mf, &codes));
    xs_tensor user = xs_tensor_1d(XS_I32, codes.data, fg->nu);
    xs_tensor user_out = pack_i32(fg, fg->fs + fg->ns, fg->nu);
    XS_TRY(xs_op_copy(fg->be, &user_out, &user)); /* before decode reuses the encoder's slots */
    XS_TRY(lm_window_put_user(w, &user));
    lm_batch *b = lm_gen_solo(j->gen);
    xs_tensor ids_all = lm_batch_ids(b), sampled_all = lm_batch_sampled(b);
    xs_tensor ids = xs_tensor_1d(XS_I32, ids_all.data, w->nd);
    xs_tensor sampled = xs_tensor_1d(XS_I32, sampled_all.data, fg->ns);
    XS_TRY(lm_window_take_input(w, &ids));
    XS_TRY(lm_gen_device_step(j->gen));
    XS_TRY(lm_window_put_sampled(w, &sampled));
    xs_tensor out = pack_i32(fg, fg->fs, fg->ns);
    XS_TRY(lm_window_take_output(w, &out));
    xs_tensor audio = xs_tensor_2d(XS_I32, (int32_t *)out.data + 1, fg->ns - 1, 1);
    XS_TRY(xs_op_copy(fg->be, &j->mf->codes, &audio));
    XS_TRY(mimi_frame_decode_device(j->mf, &pcm));
    xs_tensor pcm_out = xs_tensor_2d(XS_F32, fg->pack.data, 1, fg->fs);
    XS_TRY(xs_op_copy(fg->be, &pcm_out, &pcm));
    return lm_window_shift(w);
}

xs_status xs_frame_graph_run(xs_frame_graph **fgp, xswarm_model *m, mimi_stream *ms, lm_gen *gen,
                             const float *pcm, float *out_pcm, xs_pipe_frame_info *info,
                             bool *done) {
    *done = false;
    const char *env = getenv("XSWARM_FRAME_GRAPH");
    bool off = env && !strcmp(env, "0"), eager = env && !strcmp(env, "eager");
    uint64_t lm_key = 0;
    if (off || !(eager || xs_graph_available(m->be)) || !mimi_frame_ready(ms) ||
        !lm_gen_device_ready(gen) || !lm_gen_device_key(gen, &lm_key))
        return xs_frame_graph_leave(*fgp, gen);
    if (!*fgp) XS_TRY(frame_graph_new(m, fgp));
    xs_frame_graph *fg = *fgp;
    if (fg->active && fg->gen != gen) fg->active = false; /* another generator: its ring holds it */
    if (!fg->active) {
        XS_TRY(lm_gen_window_load(gen, &fg->win));
        fg->active = true;
        fg->gen = gen;
    }
    double t0 = now_ms();
    mimi_frame mf;
    XS_TRY(mimi_frame_begin(ms, pcm, fg->nu, fg->ns - 1, &mf));
    xs_status rc = lm_gen_device_stage(gen);
    frame_job j = {fg, &mf, gen};
    uint64_t key = mimi_frame_key(&mf, lm_key);
    key = xs_graph_key_add(key, (uint64_t)(uintptr_t)fg->win.win.data);
    key = xs_graph_key_add(key, (uint64_t)(uintptr_t)fg->pack.data);
    fg->graph.programmatic = true; /* one session's frame (graph.h) */
    if (rc == XS_OK)
        rc = eager ? frame_device(&j) : xs_graph_run(m->be, &fg->graph, key, frame_device, &j);
    if (rc == XS_OK) rc = xs_tensor_download(m->be, fg->host, &fg->pack); /* the one sync */
    mimi_frame_end(&mf, rc == XS_OK);
    XS_TRY(rc);
    lm_gen_device_done(gen);
    memset(info, 0, sizeof *info);
    memcpy(out_pcm, fg->host, (size_t)fg->fs * sizeof *out_pcm);
    memcpy(info->step_out[0], fg->host + fg->fs, (size_t)fg->ns * sizeof(int32_t));
    memcpy(info->frame_codes, fg->host + fg->fs + fg->ns, (size_t)fg->nu * sizeof(int32_t));
    info->n_steps = 1;
    info->step_valid[0] = true;
    info->n_out_frames = 1;
    info->lm_ms = now_ms() - t0; /* the whole frame: its parts are not separable any more */
    info->one_graph = true;
    *done = true;
    return XS_OK;
}
