/*
 * cmd_quantize.c — `xswarm quantize IN OUT --type q8_0|q4_0`.
 *
 * Writes exactly what candle's `tensor-tools quantize` writes for a
 * safetensors input: GGUF version 2, no key/values, 32-byte alignment,
 * tensors in input order; a tensor is quantized iff it has rank 2 and its
 * last (PyTorch) dimension is a multiple of 32, everything else is F32.
 * Block bytes come from the reference quantizers (xs_quantize_row_*), which
 * are bit-exact with ggml's, so the output is byte-identical to candle's.
 *
 * A candle-layout (or any non-LM) input keeps its names and order. A
 * PyTorch-layout Moshi LM is first mapped to the candle layout (lm_names.h:
 * the depformer split per step, renames, norms repeated), as Kyutai's
 * import_rust.py does before candle's quantizer, so candle users get the
 * file they expect; its tensors are written sorted by name. That needs the
 * model configuration: --config, else config.json beside the input, else
 * the Moshiko 7B preset.
 *
 * Tensor data are produced at save time, one tensor at a time, so a 15 GB
 * BF16 checkpoint needs only its largest tensor in memory (plus the mmap).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/quant.h"
#include "formats/gguf.h"
#include "formats/weights.h"
#include "model/lm_names.h"

static void quantize_usage(FILE *f) {
    fprintf(f,
            "usage: xswarm quantize IN.safetensors OUT.gguf --type q8_0|q4_0 [--config config.json]\n\n"
            "Quantize an f32 / f16 / bf16 safetensors model (candle or PyTorch layout) into\n"
            "a GGUF file the way candle's tensor-tools does: rank-2 tensors whose last\n"
            "dimension is a multiple of 32 become q8_0 (or q4_0), every other tensor is\n"
            "stored as f32; GGUF version 2, no metadata. A PyTorch-layout Moshi LM is written\n"
            "in the candle layout (the names candle's Moshi expects, depformer split per step);\n"
            "its configuration comes from --config, else config.json beside IN, else the\n"
            "Moshiko 7B preset. Other inputs keep their tensor names.\n"
            "Progress goes to stderr.\n\n"
            "Exit status: 0 ok, 1 the input cannot be read or converted, 2 usage error.\n");
}

typedef struct quantize_job {
    const xs_weights *in;
    xs_dtype qtype;
    int *src_of;          /* output position -> input position */
    bool *quantized;      /* per output position */
    const lm_name_plan *plan; /* PyTorch input: src_of indexes plan->e */
    uint64_t total_bytes; /* of the input tensors, for the progress */
    uint64_t done_bytes;
    int last_percent;
    bool tty;
} quantize_job;

static uint64_t quantize_src_bytes(const xs_tensor *t) {
    return (uint64_t)xs_dtype_row_bytes(t->dtype, xs_tensor_numel(t));
}

static void quantize_progress(quantize_job *job, const char *name) {
    int pct = job->total_bytes ? (int)(100.0 * (double)job->done_bytes / (double)job->total_bytes) : 100;
    if (job->tty) {
        char bar[31];
        for (int k = 0; k < 30; k++) bar[k] = k < pct * 30 / 100 ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\rquantize [%s] %3d%%  %-40.40s", bar, pct, name);
        if (pct == 100) fprintf(stderr, "\n");
    } else if (pct / 25 > job->last_percent / 25 || (pct == 100 && job->last_percent != 100)) {
        /* logs: a line at 25, 50, 75 and 100 % only */
        fprintf(stderr, "quantize: %d%%\n", pct / 25 * 25);
    }
    job->last_percent = pct;
}

/* Fill one output tensor of a PyTorch-layout input: its candle entry's
 * values (a row range of a source tensor) -> f32 -> blocks or f32. */
static xs_status quantize_fill_mapped(quantize_job *job, int i, void *dst) {
    const lm_name_entry *e = &job->plan->e[job->src_of[i]];
    int64_t n = lm_name_entry_numel(e);
    float *x = job->quantized[i] ? malloc((size_t)n * sizeof *x + 1) : dst;
    if (!x) return xs_error(XS_ERR_NOMEM, "tensor '%s': out of memory", e->name);
    xs_status rc = lm_names_read_f32(e, job->in, x);
    if (rc == XS_OK && job->quantized[i]) {
        if (job->qtype == XS_Q8_0) xs_quantize_row_q8_0(x, dst, n);
        else xs_quantize_row_q4_0(x, dst, n);
    }
    if (x != dst) free(x);
    job->done_bytes += (uint64_t)xs_dtype_row_bytes(xs_weights_find(job->in, e->source)->dtype, n);
    quantize_progress(job, e->name);
    return rc;
}

/* Fill one output tensor: source -> f32 (through an aligned copy, as mmap
 * views of safetensors data need not be aligned) -> blocks or f32. */
static xs_status quantize_fill(void *user, int i, void *dst, size_t nbytes) {
    quantize_job *job = user;
    if (job->plan) return quantize_fill_mapped(job, i, dst);
    const xs_tensor *t = xs_weights_at(job->in, job->src_of[i]);
    int64_t n = xs_tensor_numel(t);
    size_t src_bytes = (size_t)quantize_src_bytes(t);
    void *raw = malloc(src_bytes ? src_bytes : 1);
    float *x = job->quantized[i] ? malloc((size_t)n * sizeof *x + 1) : dst;
    if (!raw || !x) {
        free(raw);
        if (x != dst) free(x);
        return xs_error(XS_ERR_NOMEM, "tensor '%s': out of memory", t->name);
    }
    memcpy(raw, t->data, src_bytes);
    xs_status rc = xs_convert_to_f32(x, raw, t->dtype, n);
    free(raw);
    if (rc == XS_OK && job->quantized[i]) {
        if (job->qtype == XS_Q8_0) xs_quantize_row_q8_0(x, dst, n);
        else xs_quantize_row_q4_0(x, dst, n);
    }
    if (x != dst) free(x);
    (void)nbytes;
    job->done_bytes += src_bytes;
    quantize_progress(job, t->name);
    return rc;
}

static const lm_name_plan *sort_plan; /* qsort has no user pointer */
static int quantize_by_name(const void *a, const void *b) {
    return strcmp(sort_plan->e[*(const int *)a].name, sort_plan->e[*(const int *)b].name);
}

/* PyTorch-layout LM: plan the candle tensors and queue them (sorted by name)
 * on the writer. Returns the number of tensors queued, -1 on error (printed),
 * 0 when the model has no candle layout (a structure candle's Moshi lacks,
 * e.g. Kyutai's test LM): the caller then keeps the names, which xswarm
 * still loads. */
static int quantize_add_mapped(quantize_job *job, xs_gguf_writer *w, lm_name_plan *plan,
                               const char *in_path, const char *config_path, int *n_q) {
    lm_config c;
    char beside[4096];
    if (!config_path) config_path = lm_config_beside(in_path, beside, sizeof beside);
    if (config_path) {
        if (lm_config_load(config_path, &c) != XS_OK) {
            fprintf(stderr, "xswarm quantize: %s\n", xs_error_msg());
            return -1;
        }
    } else {
        lm_config_moshi_7b(&c);
        fprintf(stderr, "quantize: no config.json beside %s: using the Moshiko 7B configuration\n", in_path);
    }
    xs_status rc = lm_names_candle_plan(&c, plan);
    if (rc == XS_ERR_UNSUPPORTED) {
        fprintf(stderr, "quantize: note: %s; tensor names kept (xswarm loads the result, candle does not)\n",
                xs_error_msg());
        return 0;
    }
    if (rc != XS_OK || lm_names_check(plan, job->in) != XS_OK) {
        fprintf(stderr, "xswarm quantize: %s\n", xs_error_msg());
        return -1;
    }
    int *order = realloc(job->src_of, ((size_t)plan->n + 1) * sizeof *order);
    if (order) job->src_of = order;
    bool *q = realloc(job->quantized, ((size_t)plan->n + 1) * sizeof *q);
    if (q) job->quantized = q;
    if (!order || !q) {
        fprintf(stderr, "xswarm quantize: out of memory\n");
        return -1;
    }
    for (int i = 0; i < plan->n; i++) order[i] = i;
    sort_plan = plan;
    qsort(order, (size_t)plan->n, sizeof *order, quantize_by_name);
    job->plan = plan;
    for (int i = 0; i < plan->n; i++) {
        const lm_name_entry *e = &plan->e[order[i]];
        q[i] = e->ndim == 2 && e->shape[1] % XS_QK == 0;
        *n_q += q[i];
        job->total_bytes += (uint64_t)xs_dtype_row_bytes(xs_weights_find(job->in, e->source)->dtype,
                                                         lm_name_entry_numel(e));
        if (xs_gguf_writer_add_lazy(w, e->name, q[i] ? job->qtype : XS_F32, e->ndim, e->shape, quantize_fill,
                                    job) != XS_OK) {
            fprintf(stderr, "xswarm quantize: %s: %s\n", in_path, xs_error_msg());
            return -1;
        }
    }
    fprintf(stderr, "quantize: %s is in the PyTorch layout: writing the candle layout (%d tensors from %d)\n",
            in_path, plan->n, xs_weights_count(job->in));
    return plan->n;
}

int cmd_quantize(int argc, char **argv) {
    const char *in_path = NULL, *out_path = NULL, *type = NULL, *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { quantize_usage(stdout); return 0; }
        if (!strcmp(a, "--type")) {
            if (i + 1 >= argc) { fprintf(stderr, "xswarm quantize: --type needs a value (q8_0 or q4_0)\n"); return 2; }
            type = argv[++i];
            continue;
        }
        if (!strncmp(a, "--type=", 7)) { type = a + 7; continue; }
        if (!strcmp(a, "--config")) {
            if (i + 1 >= argc) { fprintf(stderr, "xswarm quantize: --config needs a file\n"); return 2; }
            config_path = argv[++i];
            continue;
        }
        if (!strncmp(a, "--config=", 9)) { config_path = a + 9; continue; }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "xswarm quantize: unknown option '%s' (try --help)\n", a);
            return 2;
        }
        if (!in_path) in_path = a;
        else if (!out_path) out_path = a;
        else { fprintf(stderr, "xswarm quantize: too many arguments ('%s')\n", a); return 2; }
    }
    if (!in_path || !out_path || !type) {
        quantize_usage(stderr);
        return 2;
    }
    xs_dtype qtype;
    if (!strcmp(type, "q8_0")) qtype = XS_Q8_0;
    else if (!strcmp(type, "q4_0")) qtype = XS_Q4_0;
    else {
        fprintf(stderr, "xswarm quantize: --type must be q8_0 or q4_0 (got '%s')\n", type);
        return 2;
    }

    xs_weights *in = NULL;
    if (xs_weights_open(in_path, &in) != XS_OK) {
        fprintf(stderr, "xswarm quantize: %s\n", xs_error_msg());
        return 1;
    }
    int n = xs_weights_count(in);
    quantize_job job = {in, qtype, calloc((size_t)n + 1, sizeof(int)), calloc((size_t)n + 1, sizeof(bool)), NULL,
                        0, 0, 0, isatty(2) == 1};
    lm_name_plan plan = {NULL, 0};
    xs_gguf_writer *w = xs_gguf_writer_new(2);
    int status = 1, n_q = 0;
    if (!job.src_of || !job.quantized || !w) {
        fprintf(stderr, "xswarm quantize: out of memory\n");
        goto out;
    }
    if (strcmp(xs_weights_format(in), "safetensors")) {
        fprintf(stderr, "xswarm quantize: %s: input must be safetensors (this is %s)\n", in_path,
                xs_weights_format(in));
        goto out;
    }
    for (int i = 0; i < n; i++) {
        const xs_tensor *t = xs_weights_at(in, i);
        if (t->dtype != XS_F32 && t->dtype != XS_F16 && t->dtype != XS_BF16) {
            fprintf(stderr, "xswarm quantize: %s: tensor '%s' is %s; only f32, f16 and bf16 inputs can be "
                    "quantized%s\n", in_path, t->name, xs_dtype_name(t->dtype),
                    xs_weights_layout(in) == XS_LAYOUT_PYTORCH_INT8 ? " (this is an int8 checkpoint)" : "");
            goto out;
        }
    }
    if (xs_weights_layout(in) == XS_LAYOUT_PYTORCH) {
        int mapped = quantize_add_mapped(&job, w, &plan, in_path, config_path, &n_q);
        if (mapped < 0) goto out;
        if (mapped > 0) n = mapped;
    } else if (config_path) {
        fprintf(stderr, "quantize: --config ignored: %s is not a PyTorch-layout LM (names kept)\n", in_path);
    }
    for (int i = 0; !job.plan && i < n; i++) {
        const xs_tensor *t = xs_weights_at(in, i);
        bool q = t->ndim == 2 && t->shape[1] % XS_QK == 0;
        job.src_of[i] = i;
        job.quantized[i] = q;
        n_q += q;
        job.total_bytes += quantize_src_bytes(t);
        if (xs_gguf_writer_add_lazy(w, t->name, q ? qtype : XS_F32, t->ndim, t->shape, quantize_fill, &job) != XS_OK) {
            fprintf(stderr, "xswarm quantize: %s: %s\n", in_path, xs_error_msg());
            goto out;
        }
    }
    if (xs_gguf_writer_save(w, out_path) != XS_OK) {
        if (job.tty) fprintf(stderr, "\n");
        fprintf(stderr, "xswarm quantize: %s\n", xs_error_msg());
        goto out;
    }
    if (n == 0) quantize_progress(&job, "");
    fprintf(stderr, "quantize: wrote %s: %d tensors (%d %s, %d f32)\n", out_path, n, n_q, xs_dtype_name(qtype),
            n - n_q);
    status = 0;
out:
    xs_gguf_writer_free(w);
    free(job.src_of);
    free(job.quantized);
    lm_name_plan_free(&plan);
    xs_weights_close(in);
    return status;
}
