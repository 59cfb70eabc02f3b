/*
 * fuzz_safetensors.c — libFuzzer target: any byte string given to the
 * safetensors reader either fails with a status or yields tensors whose
 * every byte lies inside the input (ASan checks the reads below). Inputs
 * that parse are also written back with our writer and re-read: the same
 * tensors must come back (writer/reader agreement).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    xs_safetensors *st = NULL;
    if (xs_st_open_memory(data, size, "fuzz.safetensors", &st) != XS_OK) return 0;
    volatile uint8_t sink = 0;
    for (int i = 0; i < xs_st_count(st); i++) {
        const xs_tensor *t = xs_st_at(st, i);
        size_t n = xs_tensor_nbytes(t);
        if (n) sink ^= ((const uint8_t *)t->data)[0] ^ ((const uint8_t *)t->data)[n - 1];
        if (xs_st_find(st, t->name) == NULL) __builtin_trap(); /* every name must be found */
    }
    (void)xs_st_metadata(st, "format");
    (void)sink;

    xs_st_writer *w = xs_st_writer_new();
    bool added = w != NULL;
    for (int i = 0; added && i < xs_st_count(st); i++) {
        const xs_tensor *t = xs_st_at(st, i);
        added = xs_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) == XS_OK;
    }
    char path[64];
    snprintf(path, sizeof path, "/tmp/fuzz_st_%d.safetensors", (int)getpid());
    xs_safetensors *back = NULL;
    if (added && xs_st_writer_save(w, path) == XS_OK) {
        if (xs_st_open(path, &back) != XS_OK) __builtin_trap(); /* we must read what we write */
        if (xs_st_count(back) != xs_st_count(st)) __builtin_trap();
        for (int i = 0; i < xs_st_count(st); i++) {
            const xs_tensor *a = xs_st_at(st, i), *b = xs_st_at(back, i);
            if (strcmp(a->name, b->name) || a->dtype != b->dtype || !xs_tensor_same_shape(a, b) ||
                memcmp(a->data, b->data, xs_tensor_nbytes(a)))
                __builtin_trap();
        }
        xs_st_close(back);
        unlink(path);
    }
    xs_st_writer_free(w);
    xs_st_close(st);
    return 0;
}
