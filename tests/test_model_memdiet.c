/*
 * test_model_memdiet.c — the per-session memory layout changes of issue 8
 * keep every value:
 *  - kv_rings: n rings in one allocation are the tensors
 *    xs_kv_cache_alloc_dtype makes (dtype, shape, empty positions),
 *    256-byte aligned, disjoint, inside the block; kv_store + attention on
 *    a ring view give bit-for-bit the output of a separately allocated
 *    cache (f32, bf16, q8_0);
 *  - Mimi's shared call scratch (golden/mimi_tiny, cpu backend): streams
 *    use the model's scratch and allocate none of their own; a stream whose
 *    model scratch is busy (another thread) falls back to its own and
 *    computes the same codes and pcm.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "formats/safetensors.h"
#include "model/kv_rings.h"
#include "model/mimi_internal.h"
#include "testutil.h"

#define CAP 48
#define W 64
#define NR 3

static float frand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* Store 20 positions (wrapping the ring) and attend: y of the last 4 queries. */
static xs_status store_attend(xs_backend *be, xs_kv_cache *c, float *y_out) {
    enum { TS = 60, TQ = 4, H = 2 };
    static float k[TS * W], v[TS * W], q[TQ * W];
    int32_t pos[TS];
    uint64_t s = 7;
    for (int i = 0; i < TS * W; i++) k[i] = frand(&s), v[i] = frand(&s);
    for (int i = 0; i < TQ * W; i++) q[i] = frand(&s);
    for (int i = 0; i < TS; i++) pos[i] = i;
    xs_tensor kt = xs_tensor_2d(XS_F32, k, TS, W), vt = xs_tensor_2d(XS_F32, v, TS, W);
    xs_tensor pt = xs_tensor_1d(XS_I32, pos, TS);
    XS_TRY(xs_op_kv_store(be, c, &kt, &vt, &pt));
    xs_tensor qt = xs_tensor_2d(XS_F32, q, TQ, W), yt = xs_tensor_2d(XS_F32, y_out, TQ, W);
    xs_tensor qp = xs_tensor_1d(XS_I32, pos + TS - TQ, TQ);
    return xs_op_attention(be, &yt, &qt, c, &qp, H, 40, 0.125f);
}

static void check_rings(xs_backend *be, xs_dtype dt) {
    xs_kv_cache kv[NR], ref;
    xs_tensor block;
    const char *dn = xs_dtype_name(dt);
    CHECK(kv_rings_alloc(be, NR, CAP, W, dt, kv, &block) == XS_OK, "%s rings: %s", dn,
          xs_error_msg());
    CHECK(xs_kv_cache_alloc_dtype(be, CAP, W, dt, &ref) == XS_OK, "%s ref cache", dn);
    CHECK(xs_tensor_nbytes(&block) == kv_rings_bytes(NR, CAP, W, dt), "%s block size", dn);
    const char *lo = block.data, *hi = lo + xs_tensor_nbytes(&block);
    for (int i = 0; i < NR; i++) {
        const xs_tensor *parts[3] = {&kv[i].k, &kv[i].v, &kv[i].pos};
        const xs_tensor *want[3] = {&ref.k, &ref.v, &ref.pos};
        for (int p = 0; p < 3; p++) {
            const char *d = parts[p]->data;
            CHECK(parts[p]->dtype == want[p]->dtype && xs_tensor_same_shape(parts[p], want[p]) &&
                      xs_tensor_is_contiguous(parts[p]),
                  "%s ring %d part %d: dtype/shape", dn, i, p);
            CHECK((size_t)(d - lo) % 256 == 0 && d >= lo && d + xs_tensor_nbytes(parts[p]) <= hi,
                  "%s ring %d part %d: aligned, inside the block", dn, i, p);
            /* disjoint from the next part */
            const char *next = p < 2 ? parts[p + 1]->data : (i + 1 < NR ? kv[i + 1].k.data : hi);
            CHECK(d + xs_tensor_nbytes(parts[p]) <= next, "%s ring %d part %d: disjoint", dn, i, p);
        }
        CHECK(kv[i].capacity == CAP, "%s capacity", dn);
        int32_t p[CAP];
        CHECK(xs_tensor_download(be, p, &kv[i].pos) == XS_OK, "download pos");
        int empty = 1;
        for (int j = 0; j < CAP; j++) empty &= p[j] == -1;
        CHECK(empty, "%s ring %d starts empty", dn, i);
    }
    /* the middle ring computes exactly what a separate cache computes */
    static float ya[4 * W], yb[4 * W];
    CHECK(store_attend(be, &kv[1], ya) == XS_OK, "%s attend ring: %s", dn, xs_error_msg());
    CHECK(store_attend(be, &ref, yb) == XS_OK, "%s attend ref: %s", dn, xs_error_msg());
    double sum = 0;
    for (int i = 0; i < 4 * W; i++) sum += fabs(ya[i]);
    CHECK(sum > 1e-3, "%s attention output not all zero", dn);
    CHECK(!memcmp(ya, yb, sizeof ya), "%s ring view == separate cache, bit for bit", dn);
    /* the neighbours were not touched by the middle ring's stores */
    int32_t p0[CAP], p2[CAP];
    CHECK(xs_tensor_download(be, p0, &kv[0].pos) == XS_OK &&
              xs_tensor_download(be, p2, &kv[2].pos) == XS_OK, "download");
    CHECK(p0[0] == -1 && p2[0] == -1 && p0[CAP - 1] == -1 && p2[CAP - 1] == -1,
          "%s other rings still empty", dn);
    kv_rings_free(be, NR, kv, &block);
    CHECK(!block.data && !kv[0].k.data && !kv[NR - 1].pos.data, "%s freed and cleared", dn);
    xs_kv_cache_free(be, &ref);
}

#define FRAME 1920
#define NF 4

/* Encode NF frames and decode their codes on a fresh stream. */
static void run_stream(mimi_model *m, const float *x, bool model_scratch_busy, int32_t *codes,
                       float *pcm, mimi_stream **keep) {
    mimi_stream *s = NULL;
    CHECK(mimi_stream_new(m, &s) == XS_OK, "stream");
    if (!s) return;
    atomic_store(&m->scratch_busy, model_scratch_busy);
    for (int t = 0; t < NF; t++) {
        CHECK(mimi_encode(s, x + t * FRAME, FRAME, 8, codes + t * 8) == XS_OK, "enc: %s",
              xs_error_msg());
        CHECK(mimi_decode(s, codes + t * 8, 1, 8, pcm + t * FRAME) == XS_OK, "dec: %s",
              xs_error_msg());
    }
    CHECK(atomic_load(&m->scratch_busy) == model_scratch_busy, "busy flag restored");
    atomic_store(&m->scratch_busy, false);
    *keep = s;
}

int main(void) {
    xs_backend *be = NULL;
    CHECK(xs_backend_open("cpu", 1, &be) == XS_OK, "cpu backend");
    if (!be) return test_summary("test_model_memdiet");
    check_rings(be, XS_F32);
    check_rings(be, XS_BF16);
    check_rings(be, XS_Q8_0);

    mimi_model *m = NULL;
    xs_safetensors *g = NULL;
    CHECK(mimi_model_open(be, golden_path("mimi_tiny/model.safetensors"), NULL, false, &m, NULL,
                          0) == XS_OK,
          "load: %s", xs_error_msg());
    CHECK(xs_st_open(golden_path("mimi_tiny/golden.safetensors"), &g) == XS_OK, "golden");
    const xs_tensor *in = g ? xs_st_find(g, "input_pcm") : NULL;
    CHECK(in != NULL, "input_pcm");
    if (m && in) {
        const float *x = in->data;
        static int32_t ca[NF * 8], cb[NF * 8];
        static float pa[NF * FRAME], pb[NF * FRAME];
        mimi_stream *a = NULL, *b = NULL;
        run_stream(m, x, false, ca, pa, &a);
        run_stream(m, x, true, cb, pb, &b);
        if (a && b) {
            CHECK(a->scratch.cap[0] == 0, "stream a allocated no scratch of its own");
            CHECK(m->scratch.cap[0] > 0, "the model's shared scratch was used");
            CHECK(b->scratch.cap[0] > 0, "busy model scratch: stream b used its own");
            int distinct = 0;
            double e = 0;
            for (int i = 0; i < NF * 8; i++) distinct |= ca[i] != ca[0];
            for (int i = 0; i < NF * FRAME; i++) e += fabs(pa[i]);
            CHECK(distinct && e > 1e-3, "codes vary, pcm not silent");
            CHECK(!memcmp(ca, cb, sizeof ca), "same codes with either scratch");
            CHECK(!memcmp(pa, pb, sizeof pa), "same pcm with either scratch");
        }
        mimi_stream_free(a);
        mimi_stream_free(b);
    }
    xs_st_close(g);
    mimi_model_free(m);
    xs_backend_close(be);
    return test_summary("test_model_memdiet");
}
