/*
 * fuzz_gguf.c — libFuzzer target for the GGUF reader: failure with a
 * status, or tensors whose bytes all lie inside the input and key/values
 * that can be walked to the bottom. Tensors of inputs that parse are
 * written back with our writer and must re-read identically.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "formats/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t walk(const xs_gguf_value *v, int depth) {
    uint64_t h = (uint64_t)xs_gguf_value_type(v);
    int64_t i;
    double d;
    uint64_t len;
    const char *s = xs_gguf_value_str(v, &len);
    if (s && len) h += (uint8_t)s[len - 1];
    if (xs_gguf_value_int(v, &i)) h += (uint64_t)i;
    if (xs_gguf_value_float(v, &d)) h += d == d;
    if (depth > 16) __builtin_trap(); /* the reader limits nesting */
    for (uint64_t k = 0; k < xs_gguf_value_array_len(v); k++) h += walk(xs_gguf_value_array_at(v, k), depth + 1);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xs_gguf *g = NULL;
    if (xs_gguf_open_memory(data, size, "fuzz.gguf", &g) != XS_OK) return 0;
    volatile uint64_t sink = 0;
    for (int i = 0; i < xs_gguf_kv_count(g); i++) {
        sink += walk(xs_gguf_kv_value(g, i), 0);
        if (xs_gguf_find_key(g, xs_gguf_kv_key(g, i)) < 0) __builtin_trap();
    }
    for (int i = 0; i < xs_gguf_count(g); i++) {
        const xs_tensor *t = xs_gguf_at(g, i);
        size_t n = xs_tensor_nbytes(t);
        if (n) sink += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[n - 1];
        if (xs_gguf_find(g, t->name) == NULL) __builtin_trap();
    }
    (void)sink;

    xs_gguf_writer *w = xs_gguf_writer_new(xs_gguf_version(g));
    bool added = w != NULL;
    for (int i = 0; added && i < xs_gguf_count(g); i++) {
        const xs_tensor *t = xs_gguf_at(g, i);
        added = xs_gguf_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) == XS_OK;
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_gguf_%d.gguf", (int)getpid());
    xs_gguf *back = NULL;
    if (added && xs_gguf_writer_save(w, path) == XS_OK) {
        if (xs_gguf_open(path, &back) != XS_OK) __builtin_trap(); /* we must read what we write */
        if (xs_gguf_count(back) != xs_gguf_count(g)) __builtin_trap();
        for (int i = 0; i < xs_gguf_count(g); i++) {
            const xs_tensor *a = xs_gguf_at(g, i), *b = xs_gguf_at(back, i);
            if (strcmp(a->name, b->name) || a->dtype != b->dtype || !xs_tensor_same_shape(a, b) ||
                memcmp(a->data, b->data, xs_tensor_nbytes(a)))
                __builtin_trap();
        }
        xs_gguf_close(back);
        unlink(path);
    }
    xs_gguf_writer_free(w);
    xs_gguf_close(g);
    return 0;
}
