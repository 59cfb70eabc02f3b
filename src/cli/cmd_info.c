/*
 * cmd_info.c — `xswarm info FILE [--json]`: what a model file holds.
 *
 * The layout and model kind come from the same detection the loaders use
 * (xs_weights_layout), so `info` shows exactly what `run` would assume.
 * Metadata (safetensors __metadata__, GGUF key/values) is read through the
 * format's own reader, which maps the file a second time: mappings are
 * cheap and this keeps the xs_weights API small.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "formats/gguf.h"
#include "formats/safetensors.h"
#include "formats/weights.h"

/* Longer GGUF arrays (tokenizer vocabularies) are summarized. */
#define INFO_MAX_ARRAY 64
#define INFO_HEAD 8

static void info_usage(FILE *f) {
    fprintf(f,
            "usage: xswarm info FILE [--json]\n\n"
            "Describe a model file: format (safetensors | gguf), the checkpoint layout detected\n"
            "from the tensor names (pytorch | candle | pytorch-int8 | mimi | unknown), the model\n"
            "kind, metadata, and every tensor (name, dtype, shape in PyTorch order, bytes), with\n"
            "totals.\n\n"
            "  --json   print one JSON object instead: {file, format, layout, model, version,\n"
            "           tensor_count, params, bytes, metadata, tensors: [{name, dtype, shape,\n"
            "           bytes}]}; GGUF arrays longer than %d elements appear as\n"
            "           {element_type, length, head: [first %d]}\n\n"
            "Exit status: 0 ok, 1 the file cannot be read or is malformed, 2 usage error.\n",
            INFO_MAX_ARRAY, INFO_HEAD);
}

static const char *info_model_kind(xs_layout l) {
    switch (l) {
    case XS_LAYOUT_PYTORCH: case XS_LAYOUT_CANDLE: case XS_LAYOUT_PYTORCH_INT8: return "moshi-lm";
    case XS_LAYOUT_MIMI: return "mimi";
    default: return "unknown";
    }
}

static const char *info_gguf_type_name(xs_gguf_type t) {
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static uint64_t info_tensor_bytes(const xs_tensor *t) {
    int64_t n = xs_tensor_numel(t);
    return (uint64_t)xs_dtype_row_bytes(t->dtype, n);
}

/* ---- JSON ----------------------------------------------------------------- */

static cJSON *info_gguf_value_json(const xs_gguf_value *v) {
    int64_t i;
    uint64_t u;
    double d;
    switch (xs_gguf_value_type(v)) {
    case XS_GGUF_BOOL: return cJSON_CreateBool(xs_gguf_value_int(v, &i) && i);
    case XS_GGUF_STRING: return cJSON_CreateString(xs_gguf_value_str(v, NULL));
    case XS_GGUF_FLOAT32: case XS_GGUF_FLOAT64:
        xs_gguf_value_float(v, &d);
        return cJSON_CreateNumber(d);
    case XS_GGUF_ARRAY: {
        uint64_t n = xs_gguf_value_array_len(v);
        if (n <= INFO_MAX_ARRAY) {
            cJSON *a = cJSON_CreateArray();
            for (uint64_t k = 0; k < n; k++) cJSON_AddItemToArray(a, info_gguf_value_json(xs_gguf_value_array_at(v, k)));
            return a;
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "element_type", info_gguf_type_name(xs_gguf_value_array_type(v)));
        cJSON_AddNumberToObject(o, "length", (double)n);
        cJSON *h = cJSON_AddArrayToObject(o, "head");
        for (uint64_t k = 0; k < INFO_HEAD; k++) cJSON_AddItemToArray(h, info_gguf_value_json(xs_gguf_value_array_at(v, k)));
        return o;
    }
    default:
        if (xs_gguf_value_int(v, &i)) return cJSON_CreateNumber((double)i);
        if (xs_gguf_value_u64(v, &u)) return cJSON_CreateNumber((double)u);
        return cJSON_CreateNull();
    }
}

static int info_print_json(const xs_weights *w, const xs_safetensors *st, const xs_gguf *gg,
                           const char *const *mkeys, int n_mkeys) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", xs_weights_path(w));
    cJSON_AddStringToObject(o, "format", xs_weights_format(w));
    cJSON_AddStringToObject(o, "layout", xs_layout_name(xs_weights_layout(w)));
    cJSON_AddStringToObject(o, "model", info_model_kind(xs_weights_layout(w)));
    if (gg) {
        cJSON_AddNumberToObject(o, "version", xs_gguf_version(gg));
        cJSON_AddNumberToObject(o, "alignment", xs_gguf_alignment(gg));
        cJSON_AddNumberToObject(o, "data_offset", (double)xs_gguf_data_offset(gg));
    }
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    for (int i = 0; st && i < n_mkeys; i++) cJSON_AddStringToObject(meta, mkeys[i], xs_st_metadata(st, mkeys[i]));
    if (gg)
        for (int i = 0; i < xs_gguf_kv_count(gg); i++)
            cJSON_AddItemToObject(meta, xs_gguf_kv_key(gg, i), info_gguf_value_json(xs_gguf_kv_value(gg, i)));
    uint64_t params = 0, bytes = 0;
    cJSON *ts = cJSON_CreateArray();
    for (int i = 0; i < xs_weights_count(w); i++) {
        const xs_tensor *t = xs_weights_at(w, i);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", t->name);
        cJSON_AddStringToObject(e, "dtype", xs_dtype_name(t->dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        uint64_t b = info_tensor_bytes(t);
        cJSON_AddNumberToObject(e, "bytes", (double)b);
        cJSON_AddItemToArray(ts, e);
        params += (uint64_t)xs_tensor_numel(t);
        bytes += b;
    }
    cJSON_AddNumberToObject(o, "tensor_count", xs_weights_count(w));
    cJSON_AddNumberToObject(o, "params", (double)params);
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    cJSON_AddItemToObject(o, "tensors", ts);
    char *s = cJSON_PrintUnformatted(o);
    int rc = 0;
    if (s) {
        puts(s);
        free(s);
    } else {
        fprintf(stderr, "xswarm info: out of memory building the JSON\n");
        rc = 1;
    }
    cJSON_Delete(o);
    return rc;
}

/* ---- text ----------------------------------------------------------------- */

static void info_print_gguf_value(const xs_gguf_value *v, int depth) {
    int64_t i;
    uint64_t u;
    double d;
    switch (xs_gguf_value_type(v)) {
    case XS_GGUF_STRING: {
        uint64_t n;
        const char *s = xs_gguf_value_str(v, &n);
        printf("\"%.*s%s\"", n > 60 ? 60 : (int)n, s, n > 60 ? "..." : "");
        break;
    }
    case XS_GGUF_BOOL: printf("%s", xs_gguf_value_int(v, &i) && i ? "true" : "false"); break;
    case XS_GGUF_FLOAT32: case XS_GGUF_FLOAT64: xs_gguf_value_float(v, &d); printf("%g", d); break;
    case XS_GGUF_ARRAY: {
        uint64_t n = xs_gguf_value_array_len(v);
        printf("[%s x %llu]", info_gguf_type_name(xs_gguf_value_array_type(v)), (unsigned long long)n);
        if (depth > 0) break;
        printf(" ");
        for (uint64_t k = 0; k < n && k < INFO_HEAD; k++) {
            if (k) printf(", ");
            info_print_gguf_value(xs_gguf_value_array_at(v, k), depth + 1);
        }
        if (n > INFO_HEAD) printf(", ...");
        break;
    }
    default:
        if (xs_gguf_value_int(v, &i)) printf("%lld", (long long)i);
        else if (xs_gguf_value_u64(v, &u)) printf("%llu", (unsigned long long)u);
        break;
    }
}

static void info_human_bytes(uint64_t b, char *buf, size_t n) {
    if (b >= 1000000000ull) snprintf(buf, n, "%.2f GB", b / 1e9);
    else if (b >= 1000000ull) snprintf(buf, n, "%.2f MB", b / 1e6);
    else if (b >= 1000ull) snprintf(buf, n, "%.1f kB", b / 1e3);
    else snprintf(buf, n, "%llu B", (unsigned long long)b);
}

static int info_print_text(const xs_weights *w, const xs_safetensors *st, const xs_gguf *gg,
                           const char *const *mkeys, int n_mkeys) {
    xs_layout l = xs_weights_layout(w);
    printf("file:     %s\n", xs_weights_path(w));
    if (gg)
        printf("format:   gguf v%u (%d key/values, alignment %u, data at byte %llu)\n", xs_gguf_version(gg),
               xs_gguf_kv_count(gg), xs_gguf_alignment(gg), (unsigned long long)xs_gguf_data_offset(gg));
    else
        printf("format:   safetensors\n");
    printf("layout:   %s\n", xs_layout_name(l));
    printf("model:    %s\n", info_model_kind(l));
    if (st)
        for (int i = 0; i < n_mkeys; i++) printf("metadata: %s = %s\n", mkeys[i], xs_st_metadata(st, mkeys[i]));
    if (gg)
        for (int i = 0; i < xs_gguf_kv_count(gg); i++) {
            printf("metadata: %s = ", xs_gguf_kv_key(gg, i));
            info_print_gguf_value(xs_gguf_kv_value(gg, i), 0);
            printf("\n");
        }
    int n = xs_weights_count(w), width = 6;
    uint64_t params = 0, bytes = 0, per_type[XS_DTYPE_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        int k = (int)strlen(xs_weights_at(w, i)->name);
        if (k > width) width = k;
    }
    if (width > 72) width = 72;
    printf("\n%-*s  %-5s  %-22s  %12s\n", width, "tensor", "dtype", "shape", "bytes");
    for (int i = 0; i < n; i++) {
        const xs_tensor *t = xs_weights_at(w, i);
        char shape[96];
        xs_tensor_shape_str(t, shape, sizeof shape);
        uint64_t b = info_tensor_bytes(t);
        printf("%-*s  %-5s  %-22s  %12llu\n", width, t->name, xs_dtype_name(t->dtype), shape, (unsigned long long)b);
        params += (uint64_t)xs_tensor_numel(t);
        bytes += b;
        per_type[t->dtype]++;
    }
    char hb[32];
    info_human_bytes(bytes, hb, sizeof hb);
    printf("\ntotal:    %d tensors (", n);
    bool first = true;
    for (int d = 0; d < XS_DTYPE_COUNT; d++)
        if (per_type[d]) {
            printf("%s%llu %s", first ? "" : ", ", (unsigned long long)per_type[d], xs_dtype_name((xs_dtype)d));
            first = false;
        }
    printf("), %llu params, %llu bytes (%s)\n", (unsigned long long)params, (unsigned long long)bytes, hb);
    return 0;
}

/* Keys of a safetensors __metadata__, in header order (the reader keeps
 * only a lookup, so re-read the header: it is small and already validated). */
static int info_st_meta_keys(const char *path, char ***keys_out) {
    *keys_out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    uint8_t len8[8];
    int n = 0;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t hn = 0;
        for (int i = 7; i >= 0; i--) hn = hn << 8 | len8[i];
        char *h = hn < 100000000 ? malloc((size_t)hn + 1) : NULL;
        if (h && fread(h, 1, (size_t)hn, f) == hn) {
            h[hn] = 0;
            cJSON *root = cJSON_ParseWithLength(h, (size_t)hn);
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
            int cnt = cJSON_GetArraySize(m);
            char **keys = cnt > 0 ? calloc((size_t)cnt, sizeof *keys) : NULL;
            for (const cJSON *e = m ? m->child : NULL; keys && e; e = e->next) {
                keys[n] = malloc(strlen(e->string) + 1);
                if (keys[n]) strcpy(keys[n++], e->string);
            }
            *keys_out = keys;
            cJSON_Delete(root);
        }
        free(h);
    }
    fclose(f);
    return n;
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { info_usage(stdout); return 0; }
        if (!strcmp(a, "--json")) { json = true; continue; }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "xswarm info: unknown option '%s' (try --help)\n", a);
            return 2;
        }
        if (path) {
            fprintf(stderr, "xswarm info: one FILE only (got '%s' and '%s')\n", path, a);
            return 2;
        }
        path = a;
    }
    if (!path) {
        info_usage(stderr);
        return 2;
    }
    xs_weights *w = NULL;
    if (xs_weights_open(path, &w) != XS_OK) {
        fprintf(stderr, "xswarm info: %s\n", xs_error_msg());
        return 1;
    }
    xs_safetensors *st = NULL;
    xs_gguf *gg = NULL;
    xs_status rc = !strcmp(xs_weights_format(w), "gguf") ? xs_gguf_open(path, &gg) : xs_st_open(path, &st);
    if (rc != XS_OK) { /* only if the file changed under us */
        fprintf(stderr, "xswarm info: %s\n", xs_error_msg());
        xs_weights_close(w);
        return 1;
    }
    char **mkeys = NULL;
    int n_mkeys = st ? info_st_meta_keys(path, &mkeys) : 0;
    int status;
    if (json) status = info_print_json(w, st, gg, (const char *const *)mkeys, n_mkeys);
    else status = info_print_text(w, st, gg, (const char *const *)mkeys, n_mkeys);
    for (int i = 0; i < n_mkeys; i++) free(mkeys[i]);
    free(mkeys);
    xs_st_close(st);
    xs_gguf_close(gg);
    xs_weights_close(w);
    return status;
}
