/*
 * test_lm_real_layout.c — the released Moshi 7B files load by name.
 *
 * For each listing of ../shared/golden/real_checkpoints (every tensor name,
 * shape and dtype of Kyutai's released files) this writes a file with exactly
 * that header and a *sparse* data section (ftruncate: no disk blocks, reads
 * as zeros), so the real 15 GB / 8 GB layouts cost nothing, and runs the
 * real mapping code (lm_model_build with the built-in 7B preset) on it:
 *  - PyTorch BF16 safetensors (355 tensors) and candle Q8_0 GGUF (523): the
 *    whole model is mapped (zero-copy views on ref), and spot checks verify
 *    the row blocks land where the listing says;
 *  - PyTorch int8 (608): int8 rows are repacked, so only 1 temporal and 1
 *    depth layer are mapped (config with num_layers = depformer_num_layers = 1)
 *    to keep memory near 0.5 GB; names of all other tensors were covered above;
 *  - a listing with one tensor removed / one mis-shaped fails naming it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend/ops.h"
#include "formats/weights.h"
#include "model/lm.h"
#include "testutil.h"

static cJSON *read_listing(const char *rel) {
    FILE *f = fopen(golden_path(rel), "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    cJSON *j = cJSON_Parse(b);
    free(b);
    return j;
}

static const char *st_dtype(const char *d) {
    return !strcmp(d, "bf16") ? "BF16" : !strcmp(d, "f32") ? "F32" : !strcmp(d, "i8") ? "I8" : "?";
}
static int dsize(const char *d) { return !strcmp(d, "bf16") ? 2 : !strcmp(d, "f32") ? 4 : 1; }

/* Safetensors with the listing's header; skip = name to leave out; reshape =
 * name whose first dim is halved. */
static int write_st(const cJSON *listing, const char *path, const char *skip, const char *reshape) {
    cJSON *hdr = cJSON_CreateObject();
    long long off = 0;
    const cJSON *ts = cJSON_GetObjectItem(listing, "tensors"), *t;
    cJSON_ArrayForEach(t, ts) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        if (skip && !strcmp(name, skip)) continue;
        const char *dt = cJSON_GetObjectItem(t, "dtype")->valuestring;
        const cJSON *shape = cJSON_GetObjectItem(t, "shape"), *d;
        cJSON *e = cJSON_CreateObject(), *sh = cJSON_CreateArray();
        long long n = 1;
        int i = 0;
        cJSON_ArrayForEach(d, shape) {
            long long v = (long long)d->valuedouble;
            if (i++ == 0 && reshape && !strcmp(name, reshape)) v /= 2;
            n *= v;
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)v));
        }
        cJSON_AddStringToObject(e, "dtype", st_dtype(dt));
        cJSON_AddItemToObject(e, "shape", sh);
        cJSON *o = cJSON_CreateArray();
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        off += n * dsize(dt);
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToObject(e, "data_offsets", o);
        cJSON_AddItemToObject(hdr, name, e);
    }
    char *js0 = cJSON_PrintUnformatted(hdr);
    cJSON_Delete(hdr);
    /* pad the header with spaces to a multiple of 8, as safetensors writers
     * do, so the data section stays aligned */
    size_t l0 = strlen(js0);
    char *js = malloc(l0 + 8);
    memcpy(js, js0, l0);
    while (l0 % 8) js[l0++] = ' ';
    js[l0] = 0;
    free(js0);
    uint64_t hl = strlen(js);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    int ok = fd >= 0 && write(fd, &hl, 8) == 8 && write(fd, js, hl) == (ssize_t)hl &&
             ftruncate(fd, (off_t)(8 + hl + off)) == 0;
    if (fd >= 0) close(fd);
    free(js);
    return ok ? 0 : -1;
}

static void put(int fd, const void *p, size_t n, int *ok) {
    if (write(fd, p, n) != (ssize_t)n) *ok = 0;
}

/* candle GGUF v2, no key/values, tensors in listing order, data sparse. */
static int write_gguf(const cJSON *listing, const char *path) {
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0) return -1;
    int ok = 1;
    const cJSON *ts = cJSON_GetObjectItem(listing, "tensors"), *t;
    uint32_t ver = 2;
    uint64_t n = (uint64_t)cJSON_GetArraySize(ts), nkv = 0, off = 0;
    put(fd, "GGUF", 4, &ok);
    put(fd, &ver, 4, &ok);
    put(fd, &n, 8, &ok);
    put(fd, &nkv, 8, &ok);
    cJSON_ArrayForEach(t, ts) {
        const char *name = cJSON_GetObjectItem(t, "name")->valuestring;
        uint64_t len = strlen(name);
        put(fd, &len, 8, &ok);
        put(fd, name, len, &ok);
        const cJSON *ne = cJSON_GetObjectItem(t, "ne"), *d;
        uint32_t nd = (uint32_t)cJSON_GetArraySize(ne);
        put(fd, &nd, 4, &ok);
        cJSON_ArrayForEach(d, ne) {
            uint64_t v = (uint64_t)d->valuedouble;
            put(fd, &v, 8, &ok);
        }
        uint32_t type = !strcmp(cJSON_GetObjectItem(t, "q8_type")->valuestring, "q8_0") ? 8 : 0;
        put(fd, &type, 4, &ok);
        put(fd, &off, 8, &ok);
        uint64_t nb = (uint64_t)cJSON_GetObjectItem(t, "nbytes")->valuedouble;
        off += (nb + 31) / 32 * 32;
    }
    off_t pos = lseek(fd, 0, SEEK_CUR);
    off_t data = (pos + 31) / 32 * 32;
    if (ftruncate(fd, data + (off_t)off) != 0) ok = 0;
    close(fd);
    return ok ? 0 : -1;
}

static xs_status build(const char *path, const lm_config *c, xs_backend *be, lm_model **m,
                       xs_weights **w) {
    *m = NULL;
    *w = NULL;
    XS_TRY(xs_weights_open(path, w));
    return lm_model_build(c, *w, be, m);
}

int main(void) {
    xs_backend *be = NULL;
    if (xs_backend_open("ref", 1, &be) != XS_OK) test_skip("no ref backend");
    char dir[] = "/tmp/xs_lm_real_XXXXXX";
    if (!mkdtemp(dir)) test_skip("no temp dir");
    char path[256];
    lm_config c;
    lm_config_moshi_7b(&c);
    lm_model *m = NULL;
    xs_weights *w = NULL;

    /* 1. PyTorch BF16 */
    cJSON *pt = read_listing("real_checkpoints/moshi_7b_pytorch.json");
    CHECK(pt != NULL, "pytorch listing readable");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (pt && write_st(pt, path, NULL, NULL) == 0) {
        xs_status rc = build(path, &c, be, &m, &w);
        CHECK(rc == XS_OK, "pytorch 7B maps: %s", xs_error_msg());
        if (m) {
            CHECK(m->layout == XS_LAYOUT_PYTORCH, "layout pytorch");
            CHECK(m->main.hidden == 11264 && m->dep.hidden == 2816, "FFN hidden 11264 / 2816");
            CHECK(m->dep.n_sets == 8 && m->dep.layers[5].sets[7].wqkv.dtype == XS_BF16, "8 sets, bf16");
            const xs_tensor *ip = xs_weights_find(w, "depformer.layers.5.self_attn.in_proj_weight");
            const xs_tensor *op = xs_weights_find(w, "depformer.layers.5.self_attn.out_proj.weight");
            /* set 7: in_proj rows 7*3072.., out_proj rows 7*1024.. */
            CHECK(ip && (char *)m->dep.layers[5].sets[7].wqkv.data ==
                            (char *)ip->data + (int64_t)(7 * 3072) * 1024 * 2,
                  "depformer set 7 qkv rows at the right offset");
            CHECK(op && (char *)m->dep.layers[5].sets[7].wo.data ==
                            (char *)op->data + (int64_t)(7 * 1024) * 1024 * 2,
                  "depformer set 7 out_proj rows at the right offset");
            CHECK(m->dep.layers[5].sets[7].wqkv.shape[0] == 3072, "qkv block 3072 rows");
        }
        lm_model_free(m);
        xs_weights_close(w);
        /* a missing tensor and a mis-shaped one are named */
        write_st(pt, path, "depformer_in.3.weight", NULL);
        rc = build(path, &c, be, &m, &w);
        CHECK(rc == XS_ERR_NOT_FOUND && strstr(xs_error_msg(), "depformer_in.3.weight") &&
                  strstr(xs_error_msg(), "[1024, 4096]"),
              "missing tensor named with its shape: %s", xs_error_msg());
        lm_model_free(m);
        xs_weights_close(w);
        write_st(pt, path, NULL, "transformer.layers.7.gating.linear_out.weight");
        rc = build(path, &c, be, &m, &w);
        CHECK(rc == XS_ERR_SHAPE && strstr(xs_error_msg(), "layers.7.gating.linear_out.weight") &&
                  strstr(xs_error_msg(), "[4096, 11264]"),
              "mis-shaped tensor named: %s", xs_error_msg());
        lm_model_free(m);
        xs_weights_close(w);
    } else {
        CHECK(0, "writing %s", path);
    }
    unlink(path);
    cJSON_Delete(pt);

    /* 2. candle Q8_0 GGUF */
    cJSON *cd = read_listing("real_checkpoints/moshi_7b_candle.json");
    snprintf(path, sizeof path, "%s/model.q8.gguf", dir);
    CHECK(cd != NULL, "candle listing readable");
    if (cd && write_gguf(cd, path) == 0) {
        xs_status rc = build(path, &c, be, &m, &w);
        CHECK(rc == XS_OK, "candle q8 7B maps: %s", xs_error_msg());
        if (m) {
            CHECK(m->layout == XS_LAYOUT_CANDLE, "layout candle");
            CHECK(m->main.layers[31].sets[0].ff_out.dtype == XS_Q8_0, "linear_out stays q8_0");
            CHECK(m->text_emb.table.dtype == XS_Q8_0 && m->text_emb.table.shape[0] == 32001,
                  "text_emb q8_0 [32001, 4096]");
            const xs_tensor *ip =
                xs_weights_find(w, "depformer.6.transformer.layers.2.self_attn.in_proj_weight");
            CHECK(ip && m->dep.layers[2].sets[6].wqkv.data == ip->data &&
                      m->dep.layers[2].sets[6].wqkv.shape[0] == 3072,
                  "candle step 6 in_proj mapped whole");
        }
        lm_model_free(m);
        xs_weights_close(w);
    } else {
        CHECK(0, "writing %s", path);
    }
    unlink(path);
    cJSON_Delete(cd);

    /* 3. PyTorch int8 (first layers only, see top) */
    cJSON *q8 = read_listing("real_checkpoints/moshi_7b_pytorch_q8.json");
    snprintf(path, sizeof path, "%s/model.q8.safetensors", dir);
    CHECK(q8 != NULL, "int8 listing readable");
    if (q8 && write_st(q8, path, NULL, NULL) == 0) {
        lm_config c1 = c;
        c1.num_layers = 1;
        c1.dep_layers = 1;
        xs_status rc = build(path, &c1, be, &m, &w);
        CHECK(rc == XS_OK, "pytorch int8 7B maps: %s", xs_error_msg());
        if (m) {
            CHECK(m->layout == XS_LAYOUT_PYTORCH_INT8, "layout pytorch-int8");
            CHECK(m->text_linear.dtype == XS_Q8_0 && m->dep.layers[0].sets[3].wqkv.dtype == XS_Q8_0,
                  "int8 rows repacked as q8_0");
            CHECK(m->emb[5].table.dtype == XS_BF16, "embeddings stay bf16");
        }
        lm_model_free(m);
        xs_weights_close(w);
    } else {
        CHECK(0, "writing %s", path);
    }
    unlink(path);
    cJSON_Delete(q8);
    rmdir(dir);
    xs_backend_close(be);
    return test_summary("test_lm_real_layout");
}
