/*
 * rowops_check.h — shared by test_ops_rows.c (ref, cpu) and
 * test_cuda_rowops.c (cuda): the row-batched ops (ops.h *_rows) against a
 * loop of the single-row ops on the same backend (bit for bit), and against
 * ref (within tolerance for attention; exact bytes for the cache, exact
 * tokens for sampling).
 *
 * Caches differ per row in fill level and positions: empty, one slot, a
 * third, full, wrapped past the capacity (positions > capacity), so the
 * attention sees every ring shape; context may be below the capacity.
 */
#ifndef XS_TESTS_ROWOPS_CHECK_H
#define XS_TESTS_ROWOPS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "testutil.h"

/* CHECK as an expression: 1 when it passed. */
#define RCK(cond, ...)                                                                  \
    ((cond) ? (g_tests_passed++, 1)                                                     \
            : (g_tests_failed++, fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__),   \
               fprintf(stderr, __VA_ARGS__), fprintf(stderr, "\n"), 0))

typedef struct rc_shape {
    int64_t heads, head_dim, cap, context;
} rc_shape;

/* Fill level of row b's cache (cycling over ring shapes). */
static int64_t rc_fill(const rc_shape *sh, int b) {
    const int64_t cap = sh->cap;
    const int64_t f[] = {cap / 3, 0, cap, 1, cap + cap / 2, cap - 1, 5 < cap ? 5 : 1, 2 * cap - 3};
    return f[b % 8];
}

/* Set of B caches on be, filled by kv_store from the pool rows (row b: its
 * fill level, positions starting at 3b). */
static int rc_caches(xs_backend *be, const rc_shape *sh, xs_dtype dt, int B, const xs_tensor *pool,
                     xs_kv_cache *c) {
    const int64_t W = sh->heads * sh->head_dim;
    int bad = 0;
    for (int b = 0; b < B; b++) {
        bad += !RCK(xs_kv_cache_alloc_dtype(be, sh->cap, W, dt, &c[b]) == XS_OK, "alloc: %s",
                      xs_error_msg());
        const int64_t fill = rc_fill(sh, b);
        if (bad || fill == 0) continue;
        int32_t *ph = malloc((size_t)fill * sizeof *ph);
        for (int64_t i = 0; i < fill; i++) ph[i] = (int32_t)(3 * b + i);
        xs_tensor pt;
        bad += !RCK(xs_tensor_alloc(be, XS_I32, 1, &fill, &pt) == XS_OK, "alloc pos");
        bad += !RCK(xs_tensor_upload(be, &pt, ph) == XS_OK, "upload pos");
        const int64_t off = (int64_t)(b * 7) % (pool->shape[0] - fill - 1);
        xs_tensor k = xs_tensor_slice(pool, 0, off, fill), v = xs_tensor_slice(pool, 0, off + 1, fill);
        bad += !RCK(xs_op_kv_store(be, &c[b], &k, &v, &pt) == XS_OK, "prefill: %s", xs_error_msg());
        xs_tensor_free(be, &pt);
        free(ph);
    }
    return bad;
}

static xs_status rc_download_bytes(xs_backend *be, void *dst, const void *src, size_t n) {
    return be->iface->download(be, dst, src, n);
}

/* One step of B rows: kv_store_rows + attention_rows on set A vs the loop of
 * kv_store + attention on set B (same backend: identical bytes); when ref is
 * given, the same loop on ref (cache bytes identical, y within tolerance). */
static int rc_check_kv_attn(xs_backend *be, xs_backend *ref, rc_shape sh, xs_dtype dt, int B,
                            uint64_t seed) {
    const int64_t W = sh.heads * sh.head_dim, P = 2 * sh.cap + 8;
    const size_t rowb = xs_dtype_row_bytes(dt, W);
    int bad = 0;
    float *poolh = malloc((size_t)(P * W) * sizeof *poolh);
    float *qkvh = malloc((size_t)(B * 3 * W) * sizeof *qkvh);
    int32_t *posh = malloc((size_t)B * sizeof *posh);
    test_fill_uniform(poolh, P * W, seed, -1.0f, 1.0f);
    test_fill_uniform(qkvh, B * 3 * W, seed + 1, -1.0f, 1.0f);
    for (int b = 0; b < B; b++) posh[b] = (int32_t)(3 * b + rc_fill(&sh, b));
    xs_backend *bes[2] = {be, ref};
    xs_kv_cache *set[3] = {calloc((size_t)B, sizeof(xs_kv_cache)),
                           calloc((size_t)B, sizeof(xs_kv_cache)),
                           calloc((size_t)B, sizeof(xs_kv_cache))};
    xs_tensor pool[2], qkv[2], pos[2], y[3];
    float *yh[3] = {malloc((size_t)(B * W) * sizeof(float)), malloc((size_t)(B * W) * sizeof(float)),
                    malloc((size_t)(B * W) * sizeof(float))};
    int64_t ps[2] = {P, W}, qs[2] = {B, 3 * W}, ys[2] = {B, W}, nb = B;
    for (int i = 0; i < 2 && bes[i]; i++) {
        xs_backend *x = bes[i];
        bad += !RCK(xs_tensor_alloc(x, XS_F32, 2, ps, &pool[i]) == XS_OK &&
                          xs_tensor_upload(x, &pool[i], poolh) == XS_OK &&
                          xs_tensor_alloc(x, XS_F32, 2, qs, &qkv[i]) == XS_OK &&
                          xs_tensor_upload(x, &qkv[i], qkvh) == XS_OK &&
                          xs_tensor_alloc(x, XS_I32, 1, &nb, &pos[i]) == XS_OK &&
                          xs_tensor_upload(x, &pos[i], posh) == XS_OK,
                      "setup: %s", xs_error_msg());
    }
    if (bad) goto done;
    bad += rc_caches(be, &sh, dt, B, &pool[0], set[0]);
    bad += rc_caches(be, &sh, dt, B, &pool[0], set[1]);
    if (ref) bad += rc_caches(ref, &sh, dt, B, &pool[1], set[2]);
    for (int i = 0; i < 3; i++)
        if (i < 2 || ref)
            bad += !RCK(xs_tensor_alloc(i < 2 ? be : ref, XS_F32, 2, ys, &y[i]) == XS_OK, "y");
    if (bad) goto done;
    const float scale = 1.0f / sqrtf((float)sh.head_dim);
    /* A: the rows ops */
    {
        xs_tensor q = xs_tensor_slice(&qkv[0], 1, 0, W), k = xs_tensor_slice(&qkv[0], 1, W, W);
        xs_tensor v = xs_tensor_slice(&qkv[0], 1, 2 * W, W);
        xs_kv_cache **pa = malloc((size_t)B * sizeof *pa);
        for (int b = 0; b < B; b++) pa[b] = &set[0][b];
        bad += !RCK(xs_op_kv_store_rows(be, pa, B, &k, &v, &pos[0]) == XS_OK, "kv_store_rows: %s",
                      xs_error_msg());
        bad += !RCK(xs_op_attention_rows(be, &y[0], &q, (const xs_kv_cache *const *)pa, B,
                                           &pos[0], (int)sh.heads, sh.context, scale) == XS_OK,
                      "attention_rows: %s", xs_error_msg());
        free(pa);
    }
    /* B (and ref): the loop of single-row ops */
    for (int i = 1; i < 3; i++) {
        xs_backend *x = i == 1 ? be : ref;
        if (!x) continue;
        xs_tensor *qt = &qkv[i == 1 ? 0 : 1], *pt = &pos[i == 1 ? 0 : 1];
        for (int b = 0; b < B && !bad; b++) {
            xs_tensor row = xs_tensor_slice(qt, 0, b, 1);
            xs_tensor q = xs_tensor_slice(&row, 1, 0, W), k = xs_tensor_slice(&row, 1, W, W);
            xs_tensor v = xs_tensor_slice(&row, 1, 2 * W, W), p = xs_tensor_slice(pt, 0, b, 1);
            xs_tensor yb = xs_tensor_slice(&y[i], 0, b, 1);
            bad += !RCK(xs_op_kv_store(x, &set[i][b], &k, &v, &p) == XS_OK, "kv_store: %s",
                          xs_error_msg());
            bad += !RCK(xs_op_attention(x, &yb, &q, &set[i][b], &p, (int)sh.heads, sh.context,
                                          scale) == XS_OK, "attention: %s", xs_error_msg());
        }
    }
    if (bad) goto done;
    for (int i = 0; i < 3; i++)
        if (i < 2 || ref)
            bad += !RCK(xs_tensor_download(i < 2 ? be : ref, yh[i], &y[i]) == XS_OK, "download y: %s",
                          xs_error_msg());
    if (bad) goto done;
    /* y: rows op == loop, bit for bit; vs ref within tolerance */
    int diff_rows = 0;
    for (int b = 0; b < B; b++)
        diff_rows += memcmp(yh[0] + (size_t)b * W, yh[1] + (size_t)b * W, (size_t)W * sizeof(float)) != 0;
    bad += !RCK(diff_rows == 0, "%s B=%d W=%lld cap=%lld: attention_rows differs from the loop in %d rows",
                  xs_dtype_name(dt), B, (long long)W, (long long)sh.cap, diff_rows);
    double amax = 0;
    for (int64_t i = 0; i < B * W; i++) amax += fabs(yh[1][i]);
    bad += !RCK(amax > 0, "attention output is all zeros");
    if (ref) {
        double md = test_max_abs_diff(yh[2], yh[0], B * W);
        bad += !RCK(md < 2e-5, "%s B=%d: attention_rows vs ref: max abs diff %g", xs_dtype_name(dt),
                      B, md);
    }
    /* the stored slot and the position table: rows op == loop (== ref) */
    {
        unsigned char *ra = malloc(rowb), *rb = malloc(rowb);
        int32_t *pa = malloc((size_t)sh.cap * 4), *pb = malloc((size_t)sh.cap * 4);
        int diff = 0;
        for (int b = 0; b < B; b++) {
            const int64_t slot = posh[b] % sh.cap;
            for (int i = 1; i < 3; i++) {
                xs_backend *x = i == 1 ? be : ref;
                if (!x) continue;
                const xs_kv_cache *c0 = &set[0][b], *ci = &set[i][b];
                for (int kv = 0; kv < 2; kv++) {
                    const xs_tensor *t0 = kv ? &c0->v : &c0->k, *ti = kv ? &ci->v : &ci->k;
                    bad += rc_download_bytes(be, ra, (const char *)t0->data + slot * rowb, rowb) != XS_OK;
                    bad += rc_download_bytes(x, rb, (const char *)ti->data + slot * rowb, rowb) != XS_OK;
                    diff += memcmp(ra, rb, rowb) != 0;
                }
                bad += rc_download_bytes(be, pa, c0->pos.data, (size_t)sh.cap * 4) != XS_OK;
                bad += rc_download_bytes(x, pb, ci->pos.data, (size_t)sh.cap * 4) != XS_OK;
                diff += memcmp(pa, pb, (size_t)sh.cap * 4) != 0;
                diff += pa[slot] != posh[b];
            }
        }
        bad += !RCK(diff == 0, "%s B=%d: kv_store_rows: %d cache rows/tables differ", xs_dtype_name(dt),
                      B, diff);
        free(ra), free(rb), free(pa), free(pb);
    }
done:
    for (int i = 0; i < 3; i++) {
        xs_backend *x = i < 2 ? be : ref;
        if (x) {
            for (int b = 0; b < B; b++) xs_kv_cache_free(x, &set[i][b]);
            xs_tensor_free(x, &y[i]);
        }
        free(set[i]);
        free(yh[i]);
    }
    for (int i = 0; i < 2; i++)
        if (bes[i]) {
            xs_tensor_free(bes[i], &pool[i]);
            xs_tensor_free(bes[i], &qkv[i]);
            xs_tensor_free(bes[i], &pos[i]);
        }
    free(poolh), free(qkvh), free(posh);
    return bad;
}

/* Logits on a grid of quarter steps: many exact ties. */
static void rc_logits(float *l, int64_t n, uint64_t seed) {
    test_fill_uniform(l, n, seed, -6.0f, 6.0f);
    for (int64_t i = 0; i < n; i++) l[i] = roundf(l[i] * 4.0f) / 4.0f;
}

/* sample_rows with mixed per-row settings vs the loop of argmax /
 * sample_topk_at (same backend, and ref when given): the same tokens. */
static int rc_check_sample(xs_backend *be, xs_backend *ref, int64_t V, int B, uint64_t seed,
                           bool big_k) {
    int bad = 0;
    float *lh = malloc((size_t)(B * V) * sizeof *lh);
    int32_t *ch = malloc((size_t)B * sizeof *ch), *ta = malloc((size_t)B * 4), *tb = malloc((size_t)B * 4);
    xs_sample_row *rows = calloc((size_t)B, sizeof *rows);
    rc_logits(lh, B * V, seed);
    const int ks[] = {25, 250, 1, 2048};
    const float temps[] = {0.7f, 0.8f, 1.3f, 0.0f, 0.5f};
    for (int b = 0; b < B; b++) {
        ch[b] = (int32_t)(b * 131 + (int)seed % 97);
        rows[b].seed = seed + (uint64_t)b * 0x9e37ull;
        rows[b].temp = temps[b % 5];
        rows[b].top_k = ks[b % 4];
        if (big_k && b % 7 == 2) rows[b].top_k = 0; /* all of V: past one block's k */
        rows[b].greedy = b % 6 == 1;
    }
    int64_t ls[2] = {B, V}, nb = B;
    xs_backend *bes[2] = {be, ref};
    for (int i = 0; i < 2 && bes[i] && !bad; i++) {
        xs_backend *x = bes[i];
        xs_tensor lt, ct, ia, ib;
        bad += !RCK(xs_tensor_alloc(x, XS_F32, 2, ls, &lt) == XS_OK &&
                          xs_tensor_upload(x, &lt, lh) == XS_OK &&
                          xs_tensor_alloc(x, XS_I32, 1, &nb, &ct) == XS_OK &&
                          xs_tensor_upload(x, &ct, ch) == XS_OK &&
                          xs_tensor_alloc(x, XS_I32, 1, &nb, &ia) == XS_OK &&
                          xs_tensor_alloc(x, XS_I32, 1, &nb, &ib) == XS_OK,
                      "sample setup: %s", xs_error_msg());
        if (bad) break;
        if (i == 0)
            bad += !RCK(xs_op_sample_rows(x, &ia, &lt, rows, 3, &ct) == XS_OK, "sample_rows: %s",
                          xs_error_msg());
        for (int b = 0; b < B && !bad; b++) {
            int64_t one = 1;
            xs_tensor id = xs_tensor_make(XS_I32, 1, &one, (int32_t *)ib.data + b);
            xs_tensor lb = xs_tensor_slice(&lt, 0, b, 1), cb = xs_tensor_slice(&ct, 0, b, 1);
            xs_status rc = rows[b].greedy ? xs_op_argmax(x, &id, &lb)
                                          : xs_op_sample_topk_at(x, &id, &lb, rows[b].temp,
                                                                 rows[b].top_k, rows[b].seed, 3,
                                                                 0, &cb);
            bad += !RCK(rc == XS_OK, "single pick: %s", xs_error_msg());
        }
        if (!bad) {
            if (i == 0) bad += !RCK(xs_tensor_download(x, ta, &ia) == XS_OK, "download");
            bad += !RCK(xs_tensor_download(x, tb, &ib) == XS_OK, "download");
            int diff = 0;
            for (int b = 0; b < B; b++) diff += ta[b] != tb[b];
            bad += !RCK(diff == 0, "V=%lld B=%d: sample_rows differs from the %s loop in %d rows",
                          (long long)V, B, i ? "ref" : "same-backend", diff);
        }
        xs_tensor_free(x, &lt), xs_tensor_free(x, &ct), xs_tensor_free(x, &ia), xs_tensor_free(x, &ib);
    }
    free(lh), free(ch), free(ta), free(tb), free(rows);
    return bad;
}

#endif
