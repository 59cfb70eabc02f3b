#include "formats/weights_mmap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

xs_status weights_map_file(const char *path, weights_map *out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return xs_error(XS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return xs_error(XS_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return xs_error(XS_ERR_IO, "%s: not a regular file", path);
    }
    weights_map m = {NULL, (size_t)sb.st_size};
    if (m.size > 0) {
        m.data = mmap(NULL, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m.data == MAP_FAILED) {
            int e = errno;
            close(fd);
            return xs_error(XS_ERR_IO, "%s: cannot mmap %zu bytes: %s", path, m.size, strerror(e));
        }
    }
    close(fd); /* the mapping keeps the file alive */
    *out = m;
    return XS_OK;
}

void weights_unmap(weights_map *m) {
    if (m && m->data) munmap(m->data, m->size);
    if (m) { m->data = NULL; m->size = 0; }
}
