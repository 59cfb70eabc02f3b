/*
 * lm_cond.c — LUT conditioners fused by "sum" (Kyutai's ConditionFuser
 * get_sum): one vector, the sum over conditioners of the selected value's
 * output_proj . embed row (precomputed in lm_weights.c), added to the input
 * embedding of every temporal step, before the temporal transformer only
 * (the depformer never sees it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/lm.h"

/* "a, b, c" into buf (truncated with "..." when too long). */
static const char *join(char *buf, size_t n, int count, const char *(*at)(const lm_config *, int, int),
                        const lm_config *c, int ci) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < count; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", at(c, ci, i));
        if (w < 0 || (size_t)w >= n - used) {
            if (n > 4) strcpy(buf + n - 4, "...");
            break;
        }
        used += (size_t)w;
    }
    return buf;
}
static const char *cond_name(const lm_config *c, int ci, int i) { (void)ci; return c->cond[i].name; }
static const char *cond_value(const lm_config *c, int ci, int i) { return c->cond[ci].values[i]; }

xs_status lm_cond_find(const lm_config *c, const char *name, const char *value, int *ci, int *vi) {
    char list[1024];
    if (!c->n_cond)
        return xs_error(XS_ERR_ARG, "lm: condition '%s': this model has no conditioners", name);
    int k = -1;
    for (int i = 0; i < c->n_cond; i++)
        if (!strcmp(c->cond[i].name, name)) k = i;
    if (k < 0)
        return xs_error(XS_ERR_ARG, "lm: unknown conditioner '%s' (this model has: %s)", name,
                        join(list, sizeof list, c->n_cond, cond_name, c, 0));
    const lm_cond_config *cc = &c->cond[k];
    for (int i = 0; i < cc->n_values; i++)
        if (!strcmp(cc->values[i], value)) {
            *ci = k;
            *vi = i;
            return XS_OK;
        }
    return xs_error(XS_ERR_ARG, "lm: conditioner '%s' has no value '%s' (allowed: %s)", name, value,
                    join(list, sizeof list, cc->n_values, cond_value, c, k));
}

xs_status lm_exec_set_condition(lm_exec *e, const int *sel) {
    const lm_model *m = e->m;
    const lm_config *c = &m->cfg;
    if (!c->n_cond) return XS_OK;
    const int64_t D = c->dim;
    for (int i = 0; sel && i < c->n_cond; i++)
        if (sel[i] < -1 || sel[i] >= c->cond[i].n_values)
            return xs_error(XS_ERR_ARG, "lm: conditioner '%s': value index %d out of range -1..%d",
                            c->cond[i].name, sel[i], c->cond[i].n_values - 1);
    if (!e->cond.data) {
        int64_t s[2] = {1, D};
        XS_TRY(xs_tensor_alloc(e->be, XS_F32, 2, s, &e->cond));
    }
    float *sum = calloc((size_t)D, sizeof *sum);
    if (!sum) return xs_error(XS_ERR_NOMEM, "lm: conditioning: out of memory");
    for (int i = 0; i < c->n_cond; i++) {
        int row = (sel && sel[i] >= 0) ? sel[i] : c->cond[i].n_values; /* last row: no value */
        const float *v = m->cond_vec[i] + (int64_t)row * D;
        for (int64_t r = 0; r < D; r++) sum[r] += v[r];
    }
    xs_status rc = xs_tensor_upload(e->be, &e->cond, sum);
    free(sum);
    return rc;
}
