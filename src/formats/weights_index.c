#include "formats/weights_index.h"

#include <stdlib.h>
#include <string.h>

/* qsort has no context argument in C11: the tensor array is passed through a
 * thread-local so that concurrent loads on different threads stay safe. */
static _Thread_local const xs_tensor *g_sort_tensors;

static int cmp_by_name(const void *a, const void *b) {
    return strcmp(g_sort_tensors[*(const int *)a].name, g_sort_tensors[*(const int *)b].name);
}

int *weights_index_build(const xs_tensor *tensors, int n) {
    int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    if (!idx) return NULL;
    for (int i = 0; i < n; i++) idx[i] = i;
    g_sort_tensors = tensors;
    qsort(idx, (size_t)n, sizeof *idx, cmp_by_name);
    g_sort_tensors = NULL;
    return idx;
}

int weights_index_find(const xs_tensor *tensors, const int *index, int n, const char *name) {
    if (!name) return -1;
    if (!index) {
        for (int i = 0; i < n; i++)
            if (!strcmp(tensors[i].name, name)) return i;
        return -1;
    }
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(tensors[index[mid]].name, name);
        if (c == 0) return index[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int weights_index_first_duplicate(const xs_tensor *tensors, const int *index, int n) {
    for (int i = 1; i < n; i++)
        if (!strcmp(tensors[index[i - 1]].name, tensors[index[i]].name)) return index[i];
    return -1;
}
