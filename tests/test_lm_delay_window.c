/*
 * test_lm_delay_window.c — the device delay window (model/lm_window.h)
 * against the host ring's rules (lm_gen.c, steps 1-4), on the ref and cpu
 * backends: random user codes and random "sampled" tokens for 50 steps
 * through the window, with a ring before (load at a step boundary) and
 * after (store back), for delay patterns with max delay 0, 1, 2 and 3.
 * Every step's LM input and returned frame must equal the ring's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/lm_window.h"
#include "testutil.h"

#define INIT (-7) /* the ring's "initial token" stand-in (any value no code takes) */

/* The host ring, written from lm_gen.c's rules, independently of lm_window. */
typedef struct ring {
    const lm_config *c;
    int ct;
    int32_t cache[LM_MAX_STREAMS * 16];
    int64_t s;
} ring;

static void ring_in(ring *r, const int32_t *user, int32_t *in) {
    const lm_config *c = r->c;
    int dq = c->dep_q;
    for (int j = 0; j < c->n_q - dq; j++) {
        int k = 1 + dq + j;
        r->cache[k * r->ct + (int)((r->s + c->delays[k]) % r->ct)] = user[j];
    }
    for (int k = 0; k < c->n_delays; k++)
        in[k] = r->s <= c->delays[k] ? INIT : r->cache[k * r->ct + (int)(r->s % r->ct)];
}

static bool ring_out(ring *r, const int32_t *sampled, int32_t *out) {
    const lm_config *c = r->c;
    int D = lm_config_max_delay(c);
    int64_t s1 = ++r->s;
    for (int k = 0; k <= c->dep_q; k++) r->cache[k * r->ct + (int)(s1 % r->ct)] = sampled[k];
    if (s1 <= D) return false;
    for (int k = 0; k <= c->dep_q; k++)
        out[k] = r->cache[k * r->ct + (int)((s1 - D + c->delays[k]) % r->ct)];
    return true;
}

static uint32_t lcg(uint32_t *x) {
    *x = *x * 1664525u + 1013904223u;
    return *x >> 8;
}

static void run_pattern(xs_backend *be, const char *name, int n_q, int dep_q, const int *delays) {
    lm_config c;
    memset(&c, 0, sizeof c);
    c.n_q = n_q;
    c.dep_q = dep_q;
    c.n_delays = 1 + n_q;
    memcpy(c.delays, delays, (size_t)c.n_delays * sizeof *delays);
    const int D = lm_config_max_delay(&c), nd = c.n_delays, ns = 1 + dep_q, nu = n_q - dep_q;
    ring a = {.c = &c, .ct = D + 2}, b = {.c = &c, .ct = D + 2}; /* a: reference; b: hybrid */
    lm_window w;
    xs_status rc = lm_window_init(be, &c, &w);
    CHECK(rc == XS_OK, "%s: init: %s", name, xs_error_msg());
    if (rc != XS_OK) return;
    int64_t one_u = nu, one_d = nd, one_s = ns;
    xs_tensor tu, ti, ts, to;
    bool ok = xs_tensor_alloc(be, XS_I32, 1, &one_u, &tu) == XS_OK &&
              xs_tensor_alloc(be, XS_I32, 1, &one_d, &ti) == XS_OK &&
              xs_tensor_alloc(be, XS_I32, 1, &one_s, &ts) == XS_OK &&
              xs_tensor_alloc(be, XS_I32, 1, &one_s, &to) == XS_OK;
    CHECK(ok, "%s: alloc", name);
    uint32_t seed = 12345u + (uint32_t)D * 77u;
    const int64_t enter = D + 2, leave = enter + 50, end = leave + 10;
    int bad_in = 0, bad_out = 0, distinct = 0;
    int32_t prev_out0 = -100;
    for (int64_t s = 0; ok && s < end; s++) {
        int32_t user[LM_MAX_STREAMS], samp[LM_MAX_STREAMS], in_a[LM_MAX_STREAMS],
            in_b[LM_MAX_STREAMS], out_a[LM_MAX_STREAMS], out_b[LM_MAX_STREAMS];
        for (int j = 0; j < nu; j++) user[j] = (int32_t)(lcg(&seed) % 2048);
        for (int k = 0; k < ns; k++) samp[k] = (int32_t)(lcg(&seed) % 2048);
        ring_in(&a, user, in_a);
        bool va = ring_out(&a, samp, out_a), vb;
        if (s == enter) ok &= lm_window_load(&w, b.cache, b.ct, b.s) == XS_OK;
        if (s == leave) ok &= lm_window_store(&w, b.cache, b.ct, b.s) == XS_OK;
        if (s >= enter && s < leave) {
            ok &= xs_tensor_upload(be, &tu, user) == XS_OK;
            ok &= lm_window_put_user(&w, &tu) == XS_OK;
            ok &= lm_window_take_input(&w, &ti) == XS_OK;
            ok &= xs_tensor_download(be, in_b, &ti) == XS_OK;
            ok &= xs_tensor_upload(be, &ts, samp) == XS_OK;
            ok &= lm_window_put_sampled(&w, &ts) == XS_OK;
            ok &= lm_window_take_output(&w, &to) == XS_OK;
            ok &= lm_window_shift(&w) == XS_OK;
            ok &= xs_tensor_download(be, out_b, &to) == XS_OK;
            b.s++;
            vb = true;
        } else {
            ring_in(&b, user, in_b);
            vb = ring_out(&b, samp, out_b);
        }
        bad_in += memcmp(in_a, in_b, (size_t)nd * sizeof *in_a) != 0;
        bad_out += va != vb || (va && memcmp(out_a, out_b, (size_t)ns * sizeof *out_a) != 0);
        if (va && out_a[0] != prev_out0) distinct++;
        if (va) prev_out0 = out_a[0];
    }
    CHECK(ok, "%s: window ops: %s", name, xs_error_msg());
    CHECK(bad_in == 0, "%s: %d of %lld steps with other LM inputs", name, bad_in, (long long)end);
    CHECK(bad_out == 0, "%s: %d of %lld steps with other output frames", name, bad_out,
          (long long)end);
    CHECK(distinct > 40, "%s: outputs vary (%d changes)", name, distinct);
    xs_tensor_free(be, &tu);
    xs_tensor_free(be, &ti);
    xs_tensor_free(be, &ts);
    xs_tensor_free(be, &to);
    lm_window_free(&w);
}

int main(void) {
    const char *names[] = {"ref", "cpu"};
    for (int i = 0; i < 2; i++) {
        xs_backend *be = NULL;
        if (xs_backend_open(names[i], 1, &be) != XS_OK) {
            CHECK(0, "%s: open: %s", names[i], xs_error_msg());
            continue;
        }
        char nm[64];
        /* max delay 0; Moshi's (text 0, audio 0 then 1); 2 with mixed runs; 3 on text */
        const int d0[] = {0, 0, 0, 0, 0, 0, 0};
        const int moshi[] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
        const int d2[] = {1, 0, 2, 1, 1, 0, 2, 2};
        const int d3[] = {3, 0, 1, 2, 0};
        snprintf(nm, sizeof nm, "%s max_delay 0", names[i]);
        run_pattern(be, nm, 6, 3, d0);
        snprintf(nm, sizeof nm, "%s moshi delays", names[i]);
        run_pattern(be, nm, 16, 8, moshi);
        snprintf(nm, sizeof nm, "%s max_delay 2", names[i]);
        run_pattern(be, nm, 7, 3, d2);
        snprintf(nm, sizeof nm, "%s max_delay 3 on text", names[i]);
        run_pattern(be, nm, 4, 2, d3);
        xs_backend_close(be);
    }
    return test_summary("lm_delay_window");
}
