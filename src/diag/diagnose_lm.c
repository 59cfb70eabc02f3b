/*
 * diagnose_lm.c — the LM steps of backend B driven by A's picks.
 *
 * Same bookkeeping as LMGen.step (see the delay-cache comment of
 * model/lm_gen.c): user codes go to their delayed slots, the model sees the
 * initial token while s <= delay, and the tokens of step s land in slot
 * s + 1. The only difference: the tokens of step s are given (picks), and
 * they are uploaded into e->sampled before the depformer runs, so sub-step
 * k embeds A's token k exactly as if B had picked it.
 */
#include <stdlib.h>
#include <string.h>

#include "diag/diagnose.h"
#include "diag/op_record.h"

xs_status xs_diag_lm_forced(const lm_model *m, xs_taps *taps, int n_steps, const int32_t *user,
                            const int32_t *picks) {
    const lm_config *c = &m->cfg;
    const int n = c->n_delays, dq = c->dep_q, n_user = c->n_q - c->dep_q;
    const int ct = lm_config_max_delay(c) + 2;
    int32_t *cache = malloc((size_t)n * (size_t)ct * sizeof *cache);
    if (!cache) return xs_error(XS_ERR_NOMEM, "diagnose: out of memory");
    for (int i = 0; i < n * ct; i++) cache[i] = -1;
    lm_exec e;
    memset(&e, 0, sizeof e);
    xs_status rc = lm_exec_init(&e, m, taps);
    for (int s = 0; rc == XS_OK && s < n_steps; s++) {
        xs_oprec_set_step(s); /* the op recorder's step (diagnose.c) */
        for (int j = 0; j < n_user; j++) {
            int k = 1 + dq + j;
            cache[k * ct + (s + c->delays[k]) % ct] = user[(size_t)s * n_user + j];
        }
        int32_t in[LM_MAX_STREAMS];
        for (int k = 0; k < n; k++)
            in[k] = s <= c->delays[k] ? (k == 0 ? c->text_card : c->card) : cache[k * ct + s % ct];
        rc = lm_exec_main(&e, in);
        const int32_t *p = picks + (size_t)s * (1 + dq);
        if (rc == XS_OK) rc = xs_tensor_upload(e.be, &e.sampled, p);
        for (int k = 0; rc == XS_OK && k < dq; k++) {
            xs_tensor prev = lm_slot(&e.sampled, k);
            rc = lm_exec_dep(&e, k, &prev);
        }
        for (int k = 0; k <= dq; k++) cache[k * ct + (s + 1) % ct] = p[k];
    }
    lm_exec_free(&e);
    free(cache);
    return rc;
}
