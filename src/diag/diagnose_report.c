/*
 * diagnose_report.c — naming the op behind a tap, and the report of a
 * diagnosis (JSON of issue 7 and a text summary).
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "diag/diagnose.h"

/* Append the comma-separated items of list to array a as strings. */
static void add_list(cJSON *a, const char *list) {
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        char item[160];
        snprintf(item, sizeof item, "%.*s", (int)(l < sizeof item ? l : sizeof item - 1), p);
        if (l) cJSON_AddItemToArray(a, cJSON_CreateString(item));
        p = e ? e + 1 : NULL;
    }
}

/* Ops that compute each kind of tap, most characteristic first. When several
 * ops fail parity, the first of these that failed is named. */
static const char *candidates(const char *tap) {
    if (strstr(tap, "seanet") || strstr(tap, "downsample") || strstr(tap, "upsample"))
        return "conv1d,conv_transpose1d,elu,matmul,add,copy,scale,mul,fill";
    if (strstr(tap, "transformer"))
        return "layer_norm,rope,attention,softmax,kv_store,gelu,matmul,add,mul,scale,copy";
    if (!strncmp(tap, "mimi.", 5)) /* quantizer */
        return "embedding,matmul,conv1d,argmax,add,copy,scale";
    if (strstr(tap, "emb")) return "embedding,add,matmul,copy,scale";
    if (!strncmp(tap, "lm.", 3))
        return "rms_norm,layer_norm,rope,attention,softmax,kv_store,silu_mul,gelu,matmul,"
               "embedding,add,mul,scale,copy";
    return "";
}

static bool in_list(const char *list, const char *name, size_t len) {
    const char *p = list;
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == len && !strncmp(p, name, len)) return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

void xs_diag_pick_op(const char *tap, const char *failing, char *op, size_t n) {
    op[0] = 0;
    if (!failing || !*failing) return;
    /* copy and fill build the (strided) inputs of other ops' parity cases:
     * when they fail, the other failures are their echo. */
    if (in_list(failing, "copy", 4) || in_list(failing, "fill", 4)) {
        snprintf(op, n, "%s", in_list(failing, "copy", 4) ? "copy" : "fill");
        return;
    }
    const char *p = candidates(tap ? tap : "");
    while (p && *p) {
        const char *e = strchr(p, ',');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (in_list(failing, p, l)) {
            snprintf(op, n, "%.*s", (int)l, p);
            return;
        }
        p = e ? e + 1 : NULL;
    }
    /* None of the usual suspects: the first failing op. */
    const char *e = strchr(failing, ',');
    snprintf(op, n, "%.*s", (int)(e ? (size_t)(e - failing) : strlen(failing)), failing);
}

static cJSON *audio_obj(double score, const char *defects) {
    cJSON *o = cJSON_CreateObject();
    if (score >= 0) cJSON_AddNumberToObject(o, "score", score);
    else cJSON_AddNullToObject(o, "score");
    cJSON *d = cJSON_AddArrayToObject(o, "defects");
    add_list(d, defects);
    return o;
}

void xs_diag_write_json(const xs_diag_result *r, FILE *f) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "verdict", r->verdict);
    cJSON *b = cJSON_AddArrayToObject(j, "backends");
    cJSON_AddItemToArray(b, cJSON_CreateString(r->backend_a));
    cJSON_AddItemToArray(b, cJSON_CreateString(r->backend_b));
    cJSON_AddNumberToObject(j, "frames", r->frames);
    if (r->has_div || r->op[0]) {
        cJSON *d = cJSON_AddObjectToObject(j, "first_divergence");
        if (r->has_div) {
            cJSON_AddStringToObject(d, "tap", r->div.name);
            cJSON_AddStringToObject(d, "stage", r->stage);
            cJSON_AddNumberToObject(d, "step", (double)r->div.first_step);
            cJSON_AddNumberToObject(d, "time_index", (double)r->div.first_time);
            cJSON_AddNumberToObject(d, "max_abs", r->div.max_abs);
            cJSON_AddNumberToObject(d, "max_rel", r->div.max_rel);
            cJSON_AddNumberToObject(d, "tolerance", r->div.tol);
            cJSON *w = cJSON_AddArrayToObject(d, "worst");
            for (int k = 0; k < r->div.n_worst; k++) {
                cJSON *e = cJSON_CreateObject();
                cJSON *ix = cJSON_AddArrayToObject(e, "index");
                for (int q = 0; q < r->div.ndim; q++)
                    cJSON_AddItemToArray(ix, cJSON_CreateNumber((double)r->div.worst[k][q]));
                cJSON_AddNumberToObject(e, "abs_error", r->div.worst_err[k]);
                cJSON_AddItemToArray(w, e);
            }
        } else {
            cJSON_AddNullToObject(d, "tap");
            cJSON_AddNullToObject(d, "step");
            cJSON_AddNullToObject(d, "max_abs");
            cJSON_AddNullToObject(d, "max_rel");
        }
        if (r->op[0]) cJSON_AddStringToObject(d, "op", r->op);
        else cJSON_AddNullToObject(d, "op");
        add_list(cJSON_AddArrayToObject(d, "later_taps"), r->later);
    } else {
        cJSON_AddNullToObject(j, "first_divergence");
    }
    cJSON_AddStringToObject(j, "failing_ops", r->failing_ops);
    cJSON *t = cJSON_AddObjectToObject(j, "token_agreement");
    cJSON_AddNumberToObject(t, "steps", r->tok_steps);
    cJSON_AddNumberToObject(t, "equal", r->tok_equal);
    if (r->tok_first_diff >= 0) {
        cJSON_AddNumberToObject(t, "first_difference", r->tok_first_diff);
        cJSON_AddStringToObject(t, "stream", r->tok_stream);
        if (r->tok_margin >= 0) cJSON_AddNumberToObject(t, "margin", r->tok_margin);
        else cJSON_AddNullToObject(t, "margin");
    } else {
        cJSON_AddNullToObject(t, "first_difference");
    }
    cJSON *a = cJSON_AddObjectToObject(j, "audio");
    cJSON_AddItemToObject(a, "A", audio_obj(r->score_a, r->defects_a));
    cJSON_AddItemToObject(a, "B", audio_obj(r->score_b, r->defects_b));
    cJSON *ck = cJSON_AddObjectToObject(j, "checks");
    cJSON_AddNumberToObject(ck, "input_rate", r->input_rate);
    cJSON_AddBoolToObject(ck, "input_resampled", r->input_resampled);
    if (r->score_input >= 0) cJSON_AddNumberToObject(ck, "input_score", r->score_input);
    else cJSON_AddNullToObject(ck, "input_score");
    if (r->score_roundtrip >= 0)
        cJSON_AddNumberToObject(ck, "codec_roundtrip_score", r->score_roundtrip);
    else cJSON_AddNullToObject(ck, "codec_roundtrip_score");
    if (r->weights.checked) {
        cJSON *w = cJSON_AddObjectToObject(j, "weights");
        cJSON_AddNumberToObject(w, "compared", r->weights.n_compared);
        cJSON_AddNumberToObject(w, "beyond_quantization", r->weights.n_over);
        cJSON_AddNumberToObject(w, "unmatched", r->weights.n_missing);
        cJSON_AddStringToObject(w, "worst", r->weights.worst);
        cJSON_AddNumberToObject(w, "worst_ratio", r->weights.worst_ratio);
    }
    if (r->against_checked) {
        cJSON *w = cJSON_AddObjectToObject(j, "against");
        cJSON_AddNumberToObject(w, "taps_compared", r->against_compared);
        if (r->against_over) {
            cJSON_AddStringToObject(w, "tap", r->against_first);
            cJSON_AddNumberToObject(w, "step", (double)r->against_step);
            cJSON_AddNumberToObject(w, "max_abs", r->against_max_abs);
            cJSON_AddNumberToObject(w, "max_rel", r->against_max_rel);
        } else {
            cJSON_AddNullToObject(w, "tap");
        }
    }
    if (r->repro[0]) cJSON_AddStringToObject(j, "reproduce", r->repro);
    if (r->call_found || r->call_note[0]) {
        cJSON *c = cJSON_AddObjectToObject(j, "op_call");
        if (r->call_found) {
            cJSON_AddStringToObject(c, "file", r->call_file);
            if (r->call_step >= 0) cJSON_AddNumberToObject(c, "step", r->call_step);
            else cJSON_AddNullToObject(c, "step");
            if (r->call_note[0]) cJSON_AddStringToObject(c, "note", r->call_note);
            cJSON_AddNumberToObject(c, "nmse", r->call_nmse);
            cJSON_AddNumberToObject(c, "tolerance", r->call_tol);
        } else {
            cJSON_AddNullToObject(c, "file");
            cJSON_AddStringToObject(c, "note", r->call_note);
        }
    }
    cJSON *kv = cJSON_AddObjectToObject(j, "kv_cache");
    cJSON_AddStringToObject(kv, "A", r->kv_a);
    cJSON_AddStringToObject(kv, "B", r->kv_b);
    cJSON_AddBoolToObject(kv, "differs", r->kv_differs);
    if (r->n_growth > 0) {
        cJSON *g = cJSON_AddObjectToObject(j, "error_growth");
        cJSON_AddStringToObject(g, "tap", r->growth_tap);
        cJSON *st = cJSON_AddArrayToObject(g, "steps"), *e = cJSON_AddArrayToObject(g, "max_rel");
        for (int i = 0; i < r->n_growth; i++) {
            cJSON_AddItemToArray(st, cJSON_CreateNumber(r->growth_step[i]));
            cJSON_AddItemToArray(e, cJSON_CreateNumber(r->growth[i]));
        }
    }
    char *s = cJSON_Print(j);
    if (s) fprintf(f, "%s\n", s);
    free(s);
    cJSON_Delete(j);
}

void xs_diag_print_text(const xs_diag_result *r, FILE *f) {
    fprintf(f, "verdict: %s  (A = %s reference, B = %s under suspicion; %d frames)\n", r->verdict,
            r->backend_a, r->backend_b, r->frames);
    if (r->kv_differs)
        fprintf(f, "NOTE: B used a different KV cache dtype (A %s, B %s): the drift below is "
                   "(at least partly) the cost of B's KV cache, by design, not a bug.\n",
                r->kv_a, r->kv_b);
    if (r->has_div)
        fprintf(f, "first divergence: %s (%s) at step %lld: max abs %.3g, max rel %.3g "
                   "(tolerance %.3g)\n", r->div.name, r->stage, (long long)r->div.first_step,
                r->div.max_abs, r->div.max_rel, r->div.tol);
    else
        fprintf(f, "no tap over tolerance (teacher-forced, every step)\n");
    if (r->later[0]) fprintf(f, "later divergent taps: %s\n", r->later);
    if (r->op[0]) {
        fprintf(f, "op: %s fails parity on %s (failing: %s)\n", r->op, r->backend_b,
                r->failing_ops);
        if (r->call_found && r->call_step >= 0)
            fprintf(f, "op call: first call of %s over tolerance at step %d (nmse %.3g > %.1e), "
                       "inputs and both outputs in %s\n", r->op, r->call_step, r->call_nmse,
                    r->call_tol, r->call_file);
        else if (r->call_found)
            fprintf(f, "op call: %s (nmse %.3g > %.1e): %s\n", r->call_note, r->call_nmse,
                    r->call_tol, r->call_file);
        else if (r->call_note[0])
            fprintf(f, "op call: not recorded: %s\n", r->call_note);
        fprintf(f, "reproduce: %s\n", r->repro);
    }
    if (r->n_growth > 1 && (r->kv_differs || r->has_div)) {
        fprintf(f, "error growth (%s, max |A-B| / max(1, max |A|) per LM step):\n ", r->growth_tap);
        for (int i = 0; i < r->n_growth; i++)
            fprintf(f, " %d:%.2g", r->growth_step[i], r->growth[i]);
        fputc('\n', f);
    }
    fprintf(f, "free-running tokens: %d of %d steps equal", r->tok_equal, r->tok_steps);
    if (r->tok_first_diff >= 0) {
        fprintf(f, ", first difference at step %d (%s", r->tok_first_diff, r->tok_stream);
        if (r->tok_margin >= 0) fprintf(f, ", A's top-2 logit margin there %.3g", r->tok_margin);
        fputc(')', f);
    }
    fputc('\n', f);
    fprintf(f, "checks: input %d Hz%s, analyzer score %.1f; codec round trip (A) score %.1f\n",
            r->input_rate, r->input_resampled ? " (resampled to 24 kHz)" : "", r->score_input,
            r->score_roundtrip);
    fprintf(f, "audio: A score %.1f [%s], B score %.1f [%s]\n", r->score_a, r->defects_a,
            r->score_b, r->defects_b);
    if (r->weights.checked)
        fprintf(f, "weights: %d tensors compared, %d beyond quantization error (worst %s: "
                   "%.2fx), %d unmatched\n", r->weights.n_compared, r->weights.n_over,
                r->weights.worst, r->weights.worst_ratio, r->weights.n_missing);
    if (r->against_checked) {
        if (r->against_over)
            fprintf(f, "against dump: first divergence %s at step %lld (max abs %.3g, rel %.3g)\n",
                    r->against_first, (long long)r->against_step, r->against_max_abs,
                    r->against_max_rel);
        else if (r->against_compared == 0)
            fprintf(f, "against dump: no tap of this run has a tensor in the dump\n");
        else
            fprintf(f, "against dump: all %d shared taps within tolerance\n", r->against_compared);
    }
    if (!strcmp(r->verdict, "consistent"))
        fprintf(f,
                "A and B agree: if the audio is bad, suspect the model code, its configuration or "
                "the weights next (--reference-weights, codec round trip, sample rate, "
                "codebook order).\n");
    else if (!strcmp(r->verdict, "numerics") && r->kv_differs)
        fprintf(f, "no single op fails parity: the drift is what B's %s KV cache costs against "
                   "A's %s (see the error growth over steps above).\n", r->kv_b, r->kv_a);
    else if (!strcmp(r->verdict, "numerics"))
        fprintf(f, "no single op fails parity: the error grows through the model (low-precision "
                   "accumulation?); see the later divergent taps for where it grows.\n");
}
