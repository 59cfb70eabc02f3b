/*
 * weights_mmap.h — read-only mapping of a whole model file (private to
 * src/formats). Model files are read through the page cache, never copied:
 * a 15 GB checkpoint costs no heap, and tensor views point into the mapping.
 */
#ifndef XS_FORMATS_WEIGHTS_MMAP_H
#define XS_FORMATS_WEIGHTS_MMAP_H

#include <stddef.h>

#include "core/status.h"

typedef struct weights_map {
    void *data;  /* NULL for an empty file (mmap refuses length 0) */
    size_t size;
} weights_map;

/* Map `path` read-only. An empty file maps to {NULL, 0} with XS_OK: the
 * caller's format parser reports it as too short, naming the format. */
xs_status weights_map_file(const char *path, weights_map *out);
void weights_unmap(weights_map *m);

#endif
