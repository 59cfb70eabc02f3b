/*
 * weights_index.h — name -> tensor lookup for the model-file readers
 * (private to src/formats). Real checkpoints have ~600 tensors and model
 * loading looks each one up, so lookups use a sorted index (binary search)
 * instead of a linear scan.
 */
#ifndef XS_FORMATS_WEIGHTS_INDEX_H
#define XS_FORMATS_WEIGHTS_INDEX_H

#include "core/tensor.h"

/* Sorted positions of tensors[0..n) by name; NULL on allocation failure
 * (callers then fall back to a linear scan). Free with free(). */
int *weights_index_build(const xs_tensor *tensors, int n);
/* Position of the tensor named `name`, or -1. index may be NULL. */
int weights_index_find(const xs_tensor *tensors, const int *index, int n, const char *name);
/* Position of the first duplicate name found (index required), or -1. */
int weights_index_first_duplicate(const xs_tensor *tensors, const int *index, int n);

#endif
