/*
 * fuzz_safetensors.c — libFuzzer target: any byte string given to the
 * safetensors reader either fails with a status or yields tensors whose
 * every byte lies inside the input (ASan checks the reads below).
 */
#include <stdint.h>
#include <string.h>

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
    xs_st_close(st);
    return 0;
}
