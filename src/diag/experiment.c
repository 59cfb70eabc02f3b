#include "diag/experiment.h"

#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

xs_status xs_mkdir_p(const char *path) {
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return xs_error(XS_ERR_ARG, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return xs_error(XS_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return xs_error(XS_ERR_IO, "%s: cannot create folder: %s", tmp, strerror(errno));
    return XS_OK;
}

xs_status xs_experiment_create(const char *root, const char *tag, char *out, size_t n) {
    XS_TRY(xs_mkdir_p(root));
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int k = 1; k < 1000; k++) {
        if (k == 1) snprintf(out, n, "%s/%s-%s", root, stamp, tag);
        else snprintf(out, n, "%s/%s-%s-%d", root, stamp, tag, k);
        if (mkdir(out, 0755) == 0) return XS_OK;
        if (errno != EEXIST)
            return xs_error(XS_ERR_IO, "%s: cannot create folder: %s", out, strerror(errno));
    }
    return xs_error(XS_ERR_IO, "%s: too many experiment folders with stamp %s", root, stamp);
}

xs_status xs_sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return xs_error(XS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        fclose(f);
        EVP_MD_CTX_free(ctx);
        return xs_error(XS_ERR_INTERNAL, "sha256: OpenSSL init failed");
    }
    static _Thread_local unsigned char buf[1 << 20];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, got);
    int err = ferror(f);
    fclose(f);
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (err) return xs_error(XS_ERR_IO, "%s: read error", path);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return XS_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double xs_percentile(const double *v, int64_t n, double p) {
    if (n <= 0) return NAN;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    int64_t rank = (int64_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    double r = s[rank - 1];
    free(s);
    return r;
}
