/*
 * test_lm_int8_layout.c — the PyTorch int8 layout (moshiko-pytorch-q8):
 * `<w>` int8 rows + `<w>_scb` f32 row absmax, W = q * scb / 127.
 *
 * lm_tiny's matrices are quantized that way at test time into an int8 file,
 * and the same int8 values dequantized exactly (q * scb / 127 in f32) into
 * an f32 file. The teacher-forced logits of both must agree up to the one
 * rounding the loader adds (scale stored as f16 in Q8_0 blocks: relative
 * 2^-11), far tighter than any wrong formula (scb/255, a missing /127, a
 * transposed scale) would give.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "formats/safetensors.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

static bool is_embedding(const char *name) {
    return strstr(name, "emb.") == name || strstr(name, "text_emb") || strstr(name, "depformer_emb");
}

int main(void) {
    xs_weights *src = NULL;
    if (xs_weights_open(golden_path("lm_tiny/model.safetensors"), &src) != XS_OK)
        test_skip("lm_tiny missing");
    char p8[128], pf[128];
    snprintf(p8, sizeof p8, "/tmp/xs_lm_int8_%d.safetensors", (int)getpid());
    snprintf(pf, sizeof pf, "/tmp/xs_lm_int8_ref_%d.safetensors", (int)getpid());
    xs_st_writer *w8 = xs_st_writer_new(), *wf = xs_st_writer_new();
    int n_int8 = 0;
    for (int i = 0; i < xs_weights_count(src); i++) {
        const xs_tensor *t = xs_weights_at(src, i);
        if (t->ndim != 2 || is_embedding(t->name)) {
            xs_st_writer_add_tensor(w8, t->name, t);
            xs_st_writer_add_tensor(wf, t->name, t);
            continue;
        }
        int64_t R = t->shape[0], Cn = t->shape[1];
        const float *x = t->data;
        int8_t *q = malloc((size_t)(R * Cn));
        float *scb = malloc((size_t)R * sizeof *scb), *deq = malloc((size_t)(R * Cn) * sizeof *deq);
        for (int64_t r = 0; r < R; r++) {
            float mx = 0;
            for (int64_t c = 0; c < Cn; c++) mx = fmaxf(mx, fabsf(x[r * Cn + c]));
            scb[r] = mx;
            for (int64_t c = 0; c < Cn; c++) {
                q[r * Cn + c] = (int8_t)lrintf(mx > 0 ? 127.f * x[r * Cn + c] / mx : 0);
                deq[r * Cn + c] = q[r * Cn + c] * scb[r] / 127.f;
            }
        }
        char sname[256];
        snprintf(sname, sizeof sname, "%s_scb", t->name);
        int64_t s2[2] = {R, Cn}, s1[1] = {R};
        xs_st_writer_add(w8, t->name, XS_I8, 2, s2, q);
        xs_st_writer_add(w8, sname, XS_F32, 1, s1, scb);
        xs_st_writer_add(wf, t->name, XS_F32, 2, s2, deq);
        n_int8++;
        free(q); free(scb); free(deq);
    }
    CHECK(n_int8 > 30, "int8 matrices written (%d)", n_int8);
    CHECK(xs_st_writer_save(w8, p8) == XS_OK, "save int8: %s", xs_error_msg());
    CHECK(xs_st_writer_save(wf, pf) == XS_OK, "save ref: %s", xs_error_msg());
    xs_st_writer_free(w8);
    xs_st_writer_free(wf);
    xs_weights_close(src);

    xs_backend *be = NULL;
    CHECK(xs_backend_open("ref", 1, &be) == XS_OK, "ref backend");
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s", golden_path("lm_tiny/config.json"));
    lm_model *m8 = NULL, *mf = NULL;
    CHECK(lm_model_load(p8, cfg, be, &m8) == XS_OK, "load int8: %s", xs_error_msg());
    CHECK(lm_model_load(pf, cfg, be, &mf) == XS_OK, "load ref: %s", xs_error_msg());
    if (m8 && mf) {
        CHECK(m8->layout == XS_LAYOUT_PYTORCH_INT8, "int8 layout detected");
        CHECK(m8->main.layers[0].sets[0].wqkv.dtype == XS_Q8_0, "main in_proj repacked to q8_0");
        CHECK(m8->main.layers[0].sets[0].ff_out.dtype == XS_F32, "linear_out (176 cols) in f32");
        /* 12 teacher-forced steps of random codes */
        enum { T = 12 };
        int K = 17;
        int64_t codes[17 * T];
        uint64_t h = 12345;
        for (int i = 0; i < K * T; i++) {
            h = h * 6364136223846793005ull + 1442695040888963407ull;
            codes[i] = (int64_t)((h >> 33) % (i / T == 0 ? 100 : 64));
        }
        size_t nl = (size_t)8 * T * 64, nt = (size_t)T * 100;
        float *l8 = malloc(nl * 4), *lf = malloc(nl * 4), *t8 = malloc(nt * 4), *tf = malloc(nt * 4);
        uint8_t mk[8 * T], tm[T];
        CHECK(lm_score(m8, codes, 1, T, l8, mk, t8, tm) == XS_OK, "score int8: %s", xs_error_msg());
        CHECK(lm_score(mf, codes, 1, T, lf, mk, tf, tm) == XS_OK, "score ref: %s", xs_error_msg());
        double err = 0, mx = 0;
        for (size_t i = 0; i < nl; i++) {
            if (isnan(lf[i])) continue;
            err = fmax(err, fabs(l8[i] - lf[i]));
            mx = fmax(mx, fabs(lf[i]));
        }
        for (size_t i = 0; i < nt; i++) {
            err = fmax(err, fabs(t8[i] - tf[i]));
            mx = fmax(mx, fabs(tf[i]));
        }
        if (getenv("XS_TEST_VERBOSE")) fprintf(stderr, "int8 vs dequantized: max err %.3g (max %.3g)\n", err, mx);
        CHECK(mx > 1 && err < 5e-3 * mx, "int8 logits match the dequantized model: %.3g (max %.3g)",
              err, mx);
        free(l8); free(lf); free(t8); free(tf);
    }
    lm_model_free(m8);
    lm_model_free(mf);
    xs_backend_close(be);
    unlink(p8);
    unlink(pf);
    return test_summary("test_lm_int8_layout");
}
