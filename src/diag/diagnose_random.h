/*
 * diagnose_random.h — random-weight models at real shapes for diagnose
 * (--random moshi-7b[:DTYPE], --random tiny[:DTYPE]); see diagnose_random.c.
 * One store serves both backends, so A and B compute with identical weights.
 */
#ifndef XS_DIAG_DIAGNOSE_RANDOM_H
#define XS_DIAG_DIAGNOSE_RANDOM_H

#include <stddef.h>

#include "model/lm.h"
#include "model/mimi.h"

typedef struct xs_diag_random xs_diag_random;

/* spec: "moshi-7b", "moshi-7b:q8_0", "tiny:bf16", ... (default dtype bf16). */
xs_status xs_diag_random_new(const char *spec, xs_diag_random **out);
const lm_config *xs_diag_random_lm_config(const xs_diag_random *r);
xs_status xs_diag_random_lm(xs_diag_random *r, xs_backend *be, lm_model **out);
xs_status xs_diag_random_mimi(xs_diag_random *r, xs_backend *be, mimi_model **out);
size_t xs_diag_random_bytes(const xs_diag_random *r); /* LM weights generated so far */
void xs_diag_random_free(xs_diag_random *r);

#endif
