/*
 * fuzz_json.c — libFuzzer target for the JSON we read: the input is used
 * (1) as a safetensors header (cJSON parse + our header validation), with a
 * small data block after it, and (2) as an LM config.json (cJSON parse +
 * lm_config validation). Both must fail cleanly or succeed; never crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "model/lm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DATA_BLOCK 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *img = malloc(8 + size + DATA_BLOCK);
    if (!img) return 0;
    for (int i = 0; i < 8; i++) img[i] = (uint8_t)((uint64_t)size >> (8 * i));
    memcpy(img + 8, data, size);
    for (int i = 0; i < DATA_BLOCK; i++) img[8 + size + i] = (uint8_t)i;
    xs_safetensors *st = NULL;
    if (xs_st_open_memory(img, 8 + size + DATA_BLOCK, "fuzz.json", &st) == XS_OK) {
        volatile uint8_t sink = 0;
        for (int i = 0; i < xs_st_count(st); i++) {
            const xs_tensor *t = xs_st_at(st, i);
            size_t n = xs_tensor_nbytes(t);
            if (n) sink ^= ((const uint8_t *)t->data)[n - 1];
        }
        (void)sink;
        xs_st_close(st);
    }
    free(img);

    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    lm_config cfg;
    lm_config_moshi_7b(&cfg);
    (void)lm_config_parse(text, "fuzz-config.json", &cfg);
    free(text);
    return 0;
}
