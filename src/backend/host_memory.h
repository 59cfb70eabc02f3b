/*
 * host_memory.h — memory functions shared by the host backends (ref, cpu):
 * 64-byte aligned malloc, memcpy for upload/download.
 */
#ifndef XS_BACKEND_HOST_MEMORY_H
#define XS_BACKEND_HOST_MEMORY_H

#include "backend/backend.h"

void *xs_host_alloc(xs_backend *be, size_t nbytes);
void xs_host_free(xs_backend *be, void *p);
xs_status xs_host_upload(xs_backend *be, void *dst, const void *src, size_t nbytes);
xs_status xs_host_download(xs_backend *be, void *dst, const void *src, size_t nbytes);
xs_status xs_host_synchronize(xs_backend *be);

#endif
