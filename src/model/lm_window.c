/*
 * lm_window.c — the device delay window (lm_window.h).
 */
#include "model/lm_window.h"

#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"

void lm_window_free(lm_window *w) {
    if (!w) return;
    xs_tensor_free(w->be, &w->win);
    xs_tensor_free(w->be, &w->tmp);
    free(w->host);
    memset(w, 0, sizeof *w);
}

xs_status lm_window_init(xs_backend *be, const lm_config *c, lm_window *w) {
    memset(w, 0, sizeof *w);
    if (c->n_delays < 1 || c->n_delays > LM_MAX_STREAMS || c->dep_q < 0 || c->dep_q >= c->n_delays)
        return xs_error(XS_ERR_ARG, "lm window: %d streams, %d sampled", c->n_delays, c->dep_q);
    w->be = be;
    w->nd = c->n_delays;
    w->dq = c->dep_q;
    w->D = lm_config_max_delay(c);
    w->W = 2 * w->D + 2;
    memcpy(w->delays, c->delays, sizeof w->delays);
    int64_t n = (int64_t)w->W * w->nd, nt = n - w->nd;
    w->host = malloc((size_t)n * sizeof *w->host);
    xs_status rc = w->host ? xs_tensor_alloc(be, XS_I32, 1, &n, &w->win)
                           : xs_error(XS_ERR_NOMEM, "lm window: out of memory");
    if (rc == XS_OK) rc = xs_tensor_alloc(be, XS_I32, 1, &nt, &w->tmp);
    if (rc != XS_OK) lm_window_free(w);
    return rc;
}

/* Steps t whose slot of stream k the ring still reads after step s starts:
 * a user stream its pending codes [s, s + d_k); a sampled stream its
 * tokens back to the oldest output read, s + 1 - D + d_k, and step s's
 * input. */
static void live_range(const lm_window *w, int k, int64_t s, int64_t *lo, int64_t *hi) {
    int d = w->delays[k];
    if (k > w->dq) {
        *lo = s;
        *hi = s + d - 1;
    } else {
        int64_t a = s + 1 - w->D + d;
        *lo = a < s ? a : s;
        *hi = s;
    }
    if (*lo < 0) *lo = 0;
}

xs_status lm_window_load(lm_window *w, const int32_t *ring, int ct, int64_t s) {
    if (!w->win.data || !ring || ct < w->D + 2 || s < 0)
        return xs_error(XS_ERR_ARG, "lm window: load from a ring of %d slots at step %lld", ct,
                        (long long)s);
    for (int i = 0; i < w->W * w->nd; i++) w->host[i] = -1;
    for (int k = 0; k < w->nd; k++) {
        int64_t lo, hi;
        live_range(w, k, s, &lo, &hi);
        for (int64_t t = lo; t <= hi; t++)
            w->host[(t - s + w->D) * w->nd + k] = ring[k * ct + (int)(t % ct)];
    }
    return xs_tensor_upload(w->be, &w->win, w->host);
}

xs_status lm_window_store(const lm_window *w, int32_t *ring, int ct, int64_t s) {
    if (!w->win.data || !ring || ct < w->D + 2 || s < 0)
        return xs_error(XS_ERR_ARG, "lm window: store into a ring of %d slots at step %lld", ct,
                        (long long)s);
    XS_TRY(xs_tensor_download(w->be, w->host, &w->win));
    for (int k = 0; k < w->nd; k++) {
        int64_t lo, hi;
        live_range(w, k, s, &lo, &hi);
        for (int64_t t = lo; t <= hi; t++)
            ring[k * ct + (int)(t % ct)] = w->host[(t - s + w->D) * w->nd + k];
    }
    return XS_OK;
}

/* i32 [n] view at element off of t. */
static xs_tensor at(const xs_tensor *t, int64_t off, int64_t n) {
    return xs_tensor_1d(XS_I32, (int32_t *)t->data + off, n);
}

static xs_status check_vec(const lm_window *w, const xs_tensor *t, int64_t n, const char *what) {
    if (!w->win.data || !t || t->dtype != XS_I32 || xs_tensor_numel(t) != n)
        return xs_error(XS_ERR_SHAPE, "lm window: %s: expected i32 [%lld]", what, (long long)n);
    return XS_OK;
}

/* Copy streams [k0, k1) between the window and vec (vec index k - k0): into
 * the window (to_win) at row row0 + delay, or out of it; one copy per run
 * of consecutive streams with equal delays (Moshi: 2 runs per side). */
static xs_status runs(lm_window *w, const xs_tensor *vec, int k0, int k1, int row0, bool to_win) {
    for (int a = k0; a < k1;) {
        int b = a + 1;
        while (b < k1 && w->delays[b] == w->delays[a]) b++;
        xs_tensor win = at(&w->win, (int64_t)(row0 + w->delays[a]) * w->nd + a, b - a);
        xs_tensor v = at(vec, a - k0, b - a);
        XS_TRY(to_win ? xs_op_copy(w->be, &win, &v) : xs_op_copy(w->be, &v, &win));
        a = b;
    }
    return XS_OK;
}

xs_status lm_window_put_user(lm_window *w, const xs_tensor *user) {
    XS_TRY(check_vec(w, user, w->nd - 1 - w->dq, "user codes"));
    return runs(w, user, 1 + w->dq, w->nd, w->D, true);
}

xs_status lm_window_take_input(lm_window *w, xs_tensor *ids) {
    XS_TRY(check_vec(w, ids, w->nd, "input ids"));
    xs_tensor row = at(&w->win, (int64_t)w->D * w->nd, w->nd);
    return xs_op_copy(w->be, ids, &row);
}

xs_status lm_window_put_sampled(lm_window *w, const xs_tensor *sampled) {
    XS_TRY(check_vec(w, sampled, 1 + w->dq, "sampled tokens"));
    xs_tensor row = at(&w->win, (int64_t)(w->D + 1) * w->nd, 1 + w->dq);
    return xs_op_copy(w->be, &row, sampled);
}

xs_status lm_window_take_output(lm_window *w, xs_tensor *out) {
    XS_TRY(check_vec(w, out, 1 + w->dq, "output frame"));
    return runs(w, out, 0, 1 + w->dq, 1, false);
}

xs_status lm_window_shift(lm_window *w) {
    if (!w->win.data) return xs_error(XS_ERR_ARG, "lm window: not initialized");
    int64_t n = (int64_t)(w->W - 1) * w->nd;
    xs_tensor src = at(&w->win, w->nd, n), dst = at(&w->win, 0, n);
    XS_TRY(xs_op_copy(w->be, &w->tmp, &src));
    return xs_op_copy(w->be, &dst, &w->tmp);
}
