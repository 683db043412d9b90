/* fuzz_data.h - checks shared by the dataset loader targets: what every loaded dataset must
   satisfy, dataset equality for differential checks (memory vs file, raw vs gzip), gzip
   compression of a fuzz-chosen part, and temporary files for the path entry points. */
#ifndef FAN_FUZZ_DATA_H
#define FAN_FUZZ_DATA_H

#define _POSIX_C_SOURCE 200809L /* mkstemp, write, close, unlink */

#include <math.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_common.h"

/* Mini-batch size for the iteration check: odd, so the last batch of an epoch is partial. */
#define FZ_BATCH 7

/* Checks the invariants of a loaded dataset; `scaled` means values must lie in [0, 1]. */
static inline void fz_check_dataset(fan_dataset *ds, int scaled)
{
    const size_t n = fan_dataset_size(ds), dim = fan_dataset_dim(ds), k = fan_dataset_classes(ds);
    FZ_ASSERT(n >= 1 && n <= FAN_MAX_SAMPLES);
    FZ_ASSERT(dim >= 1 && k >= 1 && k <= FAN_MAX_CLASSES);
    size_t w = 0, h = 0, c = 0;
    FZ_ASSERT(fan_dataset_shape(ds, &w, &h, &c) == FAN_OK && w * h * c == dim);

    size_t *counts = calloc(k, sizeof *counts);
    float *x = malloc(dim * sizeof *x);
    FZ_ASSERT(counts != NULL && x != NULL);
    FZ_ASSERT(fan_dataset_class_counts(ds, counts, k) == FAN_OK);
    size_t total = 0;
    for (size_t j = 0; j < k; j++) total += counts[j];
    FZ_ASSERT(total == n);
    for (size_t i = 0; i < n; i++) {
        int32_t label = -1;
        FZ_ASSERT(fan_dataset_get(ds, i, x, dim, &label) == FAN_OK);
        FZ_ASSERT(label >= 0 && (size_t)label < k);
        for (size_t j = 0; j < dim; j++) {
            FZ_ASSERT(isfinite(x[j]));
            if (scaled) FZ_ASSERT(x[j] >= 0.0f && x[j] <= 1.0f);
        }
    }
    FZ_ASSERT(fan_dataset_get(ds, n, x, dim, NULL) == FAN_E_INVALID);
    double mean = NAN, sd = NAN;
    FZ_ASSERT(fan_dataset_compute_stats(ds, &mean, &sd) == FAN_OK);
    FZ_ASSERT(isfinite(mean) && isfinite(sd) && sd >= 0.0);

    /* One epoch of unshuffled batches sees every sample once, with labels in range. */
    fan_iter *it = NULL;
    FZ_ASSERT(fan_iter_create_batches(&it, ds, FZ_BATCH, 1, NULL) == FAN_OK);
    FZ_ASSERT(fan_iter_set(it, FAN_ITER_SHUFFLE, 0) == FAN_OK);
    size_t seen = 0;
    for (;;) {
        const float *bx;
        const int32_t *bl;
        size_t bn = 0;
        fan_status s = fan_iter_next(it, &bx, &bl, NULL, &bn);
        if (s == FAN_DONE) break;
        FZ_ASSERT(s == FAN_OK && bn >= 1 && bn <= FZ_BATCH);
        for (size_t i = 0; i < bn; i++) FZ_ASSERT(bl[i] >= 0 && (size_t)bl[i] < k);
        seen += bn;
    }
    FZ_ASSERT(seen == n);
    fan_iter_free(it);
    free(counts);
    free(x);
}

/* Asserts that two datasets hold the same samples, labels, shape and classes. */
static inline void fz_same_dataset(const fan_dataset *a, const fan_dataset *b)
{
    const size_t n = fan_dataset_size(a), dim = fan_dataset_dim(a);
    FZ_ASSERT(n == fan_dataset_size(b) && dim == fan_dataset_dim(b));
    FZ_ASSERT(fan_dataset_classes(a) == fan_dataset_classes(b));
    size_t sa[3], sb[3];
    FZ_ASSERT(fan_dataset_shape(a, &sa[0], &sa[1], &sa[2]) == FAN_OK);
    FZ_ASSERT(fan_dataset_shape(b, &sb[0], &sb[1], &sb[2]) == FAN_OK);
    FZ_ASSERT(memcmp(sa, sb, sizeof sa) == 0);
    float *xa = malloc(dim * sizeof *xa), *xb = malloc(dim * sizeof *xb);
    FZ_ASSERT(xa != NULL && xb != NULL);
    for (size_t i = 0; i < n; i++) {
        int32_t la, lb;
        FZ_ASSERT(fan_dataset_get(a, i, xa, dim, &la) == FAN_OK);
        FZ_ASSERT(fan_dataset_get(b, i, xb, dim, &lb) == FAN_OK);
        FZ_ASSERT(la == lb && memcmp(xa, xb, dim * sizeof *xa) == 0);
    }
    free(xa);
    free(xb);
}

/* gzip-compresses in[0..n) into a malloc'd buffer. */
static inline uint8_t *fz_gzip(const uint8_t *in, size_t n, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* windowBits 15 + 16 writes a gzip wrapper (zlib manual, deflateInit2). */
    FZ_ASSERT(deflateInit2(&zs, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    const uLong cap = deflateBound(&zs, (uLong)n);
    uint8_t *out = malloc(cap);
    FZ_ASSERT(out != NULL);
    zs.next_in = (Bytef *)(uintptr_t)in; /* zlib's API is not const-correct without ZLIB_CONST */
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    FZ_ASSERT(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    *out_len = (size_t)zs.total_out;
    deflateEnd(&zs);
    return out;
}

/* Writes data to a new temporary file; the caller unlinks and frees the returned path. */
static inline char *fz_temp_file(const uint8_t *data, size_t n)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0') dir = "/tmp";
    const size_t len = strlen(dir) + sizeof "/fanoise-fuzz-XXXXXX";
    char *path = malloc(len);
    FZ_ASSERT(path != NULL);
    snprintf(path, len, "%s/fanoise-fuzz-XXXXXX", dir);
    int fd = mkstemp(path);
    FZ_ASSERT(fd >= 0);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        FZ_ASSERT(w > 0);
        done += (size_t)w;
    }
    FZ_ASSERT(close(fd) == 0);
    return path;
}

static inline void fz_remove_temp(char *path)
{
    (void)unlink(path);
    free(path);
}

#endif
