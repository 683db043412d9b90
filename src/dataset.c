/* dataset.c - the dataset handle: construction from arrays, accessors, normalisation, batch
   gathering, statistics and subsets. Loaders are in dataset_load.c, transforms in
   dataset_transform.c. */
#include "byteorder.h"
#include "dataset_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <zlib.h>

/* The batch conversion is compiled for several vector widths and must give the same bits on all:
   no fusing of a * b + c into an FMA where one width has it (clang's default; GCC's -std=c11
   never fuses, and rejects this pragma). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- construction ------------------------------------------------------------------------ */

/* Derives the batch transform stored * scale + offset from norm / mean / std / range. */
static void rebuild_tables(fan_dataset *ds)
{
    double a = 1.0, b = 0.0;
    if (ds->norm == FAN_NORM_SCALE) {
        a = 1.0 / ds->range;
    } else if (ds->norm == FAN_NORM_STANDARDIZE) {
        a = 1.0 / (ds->range * ds->std);
        b = -ds->mean / ds->std;
    }
    ds->scale = (float)a;
    ds->offset = (float)b;
}

fan_status fan__dataset_new(fan_dataset **out, size_t n, size_t dim, size_t classes, int is_u8,
                            const fan_allocator *alloc, char *err)
{
    *out = NULL;
    FAN__FAIL_IF(err, n == 0 || dim == 0 || classes == 0, FAN_E_INVALID,
                 "zero size (n %zu, dim %zu, classes %zu)", n, dim, classes);
    FAN__FAIL_IF(err, n > FAN_MAX_SAMPLES, FAN_E_LIMIT, "%zu samples exceed FAN_MAX_SAMPLES (%u)",
                 n, FAN_MAX_SAMPLES);
    FAN__FAIL_IF(err, classes > FAN_MAX_CLASSES, FAN_E_LIMIT,
                 "%zu classes exceed FAN_MAX_CLASSES (%u)", classes, FAN_MAX_CLASSES);
    size_t values, bytes;
    FAN__FAIL_IF(err,
                 !fan__mul_ok(n, dim, &values) ||
                     !fan__mul_ok(values, is_u8 ? sizeof(uint8_t) : sizeof(float), &bytes) ||
                     !fan__mul_ok(n, sizeof(int32_t), &(size_t){0}),
                 FAN_E_LIMIT, "%zu samples of %zu values overflow size_t", n, dim);

    fan_allocator al;
    fan__alloc_init(&al, alloc);
    fan_dataset *ds = fan__alloc(&al, sizeof *ds);
    FAN__FAIL_IF(err, ds == NULL, FAN_E_NOMEM, "out of memory for the dataset handle");
    memset(ds, 0, sizeof *ds);
    ds->alloc = al;
    ds->err = fan__msg_init(&ds->err_storage);
    ds->n = n;
    ds->dim = dim;
    ds->classes = classes;
    ds->width = dim;
    ds->height = 1;
    ds->channels = 1;
    ds->isa = fan__kernels_detect();
    ds->labels = fan__alloc(&al, n * sizeof(int32_t));
    if (is_u8) {
        ds->u8 = fan__alloc(&al, bytes);
    } else {
        ds->f32 = fan__alloc(&al, bytes);
    }
    if (ds->labels == NULL || (ds->u8 == NULL && ds->f32 == NULL)) {
        fan_dataset_free(ds);
        return fan__fail(err, FAN_E_NOMEM, "out of memory for %zu samples of %zu values", n, dim);
    }
    ds->norm = is_u8 ? FAN_NORM_SCALE : FAN_NORM_NONE;
    ds->mean = 0.0;
    ds->std = 1.0;
    ds->range = is_u8 ? FAN__U8_RANGE : 1.0;
    rebuild_tables(ds);
    *out = ds;
    return FAN_OK;
}

void fan__dataset_copy_norm(fan_dataset *dst, const fan_dataset *src)
{
    dst->norm = src->norm;
    dst->mean = src->mean;
    dst->std = src->std;
    dst->range = src->range;
    rebuild_tables(dst);
}

/* Checks labels[0..n) against [0, classes). */
static fan_status check_labels(const int32_t *labels, size_t n, size_t classes, char *err)
{
    for (size_t i = 0; i < n; i++) {
        FAN__FAIL_IF(err, labels[i] < 0 || (size_t)labels[i] >= classes, FAN_E_LABEL,
                     "label %d of sample %zu is outside [0, %zu)", (int)labels[i], i, classes);
    }
    return FAN_OK;
}

/* Sizes of an array dataset, checked before anything is read or allocated. */
static fan_status check_counts(size_t n, size_t n_classes, char *err)
{
    FAN__FAIL_IF(err, n == 0, FAN_E_INVALID, "n is 0: a dataset needs samples");
    FAN__FAIL_IF(err, n_classes == 0, FAN_E_INVALID, "n_classes is 0");
    FAN__FAIL_IF(err, n > FAN_MAX_SAMPLES, FAN_E_LIMIT, "n %zu exceeds FAN_MAX_SAMPLES (%u)", n,
                 FAN_MAX_SAMPLES);
    FAN__FAIL_IF(err, n_classes > FAN_MAX_CLASSES, FAN_E_LIMIT,
                 "n_classes %zu exceeds FAN_MAX_CLASSES (%u)", n_classes, FAN_MAX_CLASSES);
    return FAN_OK;
}

fan_status fan__dataset_from_arrays(fan_dataset **out, const float *x, const int32_t *labels,
                                    size_t n, size_t dim, size_t n_classes,
                                    const fan_allocator *alloc, char *err)
{
    *out = NULL;
    FAN__FAIL_IF(err, x == NULL || labels == NULL, FAN_E_NULL, "%s is NULL",
                 x == NULL ? "x" : "labels");
    FAN__FAIL_IF(err, dim == 0, FAN_E_INVALID, "dim is 0");
    FAN__CHECK(check_counts(n, n_classes, err));
    size_t values;
    FAN__FAIL_IF(err, !fan__mul_ok(n, dim, &values), FAN_E_LIMIT,
                 "%zu samples of dim %zu overflow", n, dim);
    FAN__CHECK(check_labels(labels, n, n_classes, err));
    if (!fan__all_finite(x, values)) {
        /* The fast check says whether; this finds where, for the message. */
        size_t i = 0;
        while (i < values && fan__all_finite(x + i, 1)) i++;
        return fan__fail(err, FAN_E_NONFINITE, "x[%zu] (sample %zu, value %zu) is %g", i,
                         i / dim, i % dim, (double)x[i]);
    }

    fan_dataset *ds;
    FAN__CHECK(fan__dataset_new(&ds, n, dim, n_classes, 0, alloc, err));
    memcpy(ds->f32, x, values * sizeof(float));
    memcpy(ds->labels, labels, n * sizeof(int32_t));
    *out = ds;
    return FAN_OK;
}

fan_status fan_dataset_from_arrays(fan_dataset **out, const float *x, const int32_t *labels,
                                   size_t n, size_t dim, size_t n_classes,
                                   const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    return fan__dataset_from_arrays(out, x, labels, n, dim, n_classes, alloc, NULL);
}

fan_status fan__dataset_from_u8(fan_dataset **out, const uint8_t *pixels, const int32_t *labels,
                                size_t n, size_t width, size_t height, size_t channels,
                                size_t n_classes, const fan_allocator *alloc, char *err)
{
    *out = NULL;
    FAN__FAIL_IF(err, pixels == NULL || labels == NULL, FAN_E_NULL, "%s is NULL",
                 pixels == NULL ? "pixels" : "labels");
    FAN__FAIL_IF(err, width == 0 || height == 0 || channels == 0, FAN_E_INVALID,
                 "image shape %zu x %zu x %zu has a zero side", width, height, channels);
    FAN__CHECK(check_counts(n, n_classes, err));
    size_t plane, dim, values;
    FAN__FAIL_IF(err,
                 !fan__mul_ok(width, height, &plane) || !fan__mul_ok(plane, channels, &dim) ||
                     !fan__mul_ok(n, dim, &values),
                 FAN_E_LIMIT, "%zu images of %zu x %zu x %zu overflow", n, width, height,
                 channels);
    FAN__CHECK(check_labels(labels, n, n_classes, err));

    fan_dataset *ds;
    FAN__CHECK(fan__dataset_new(&ds, n, dim, n_classes, 1, alloc, err));
    memcpy(ds->u8, pixels, values);
    memcpy(ds->labels, labels, n * sizeof(int32_t));
    ds->width = width;
    ds->height = height;
    ds->channels = channels;
    *out = ds;
    return FAN_OK;
}

fan_status fan_dataset_from_u8(fan_dataset **out, const uint8_t *pixels, const int32_t *labels,
                               size_t n, size_t width, size_t height, size_t channels,
                               size_t n_classes, const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    return fan__dataset_from_u8(out, pixels, labels, n, width, height, channels, n_classes,
                                alloc, NULL);
}

void fan_dataset_free(fan_dataset *ds)
{
    if (ds == NULL) return;
    fan_allocator al = ds->alloc;
    fan__free(&al, ds->u8);
    fan__free(&al, ds->f32);
    fan__free(&al, ds->labels);
    fan__free(&al, ds);
}

/* ---- accessors --------------------------------------------------------------------------- */

size_t fan_dataset_size(const fan_dataset *ds) { return ds == NULL ? 0 : ds->n; }
size_t fan_dataset_dim(const fan_dataset *ds) { return ds == NULL ? 0 : ds->dim; }
size_t fan_dataset_classes(const fan_dataset *ds) { return ds == NULL ? 0 : ds->classes; }

const char *fan_dataset_errmsg(const fan_dataset *ds)
{
    return ds == NULL ? "dataset is NULL" : ds->err;
}

const fan_allocator *fan__dataset_allocator(const fan_dataset *ds) { return &ds->alloc; }

char *fan__dataset_errbuf(const fan_dataset *ds) { return ds->err; }

/* Bytes per chunk of the little-endian image of float samples and labels that is hashed. */
#define FP_CHUNK 4096

void fan__dataset_fingerprint(const fan_dataset *ds, fan__dataset_fp *fp)
{
    memset(fp, 0, sizeof *fp);
    fp->count = ds->n;
    fp->dim = ds->dim;
    fp->classes = ds->classes;
    fp->storage = ds->u8 != NULL ? 0u : 1u;
    fp->norm = (uint32_t)ds->norm;
    fp->mean = ds->mean;
    fp->std = ds->std;
    const size_t values = ds->n * ds->dim;
    uLong samples = crc32(0L, Z_NULL, 0), labels = crc32(0L, Z_NULL, 0);
    unsigned char chunk[FP_CHUNK];
    if (ds->u8 != NULL) {
        samples = crc32_z(samples, ds->u8, values);
    } else {
        /* Hashed as the little-endian bit patterns, so that hosts agree. */
        for (size_t i = 0; i < values; i += FP_CHUNK / 4) {
            const size_t k = values - i < FP_CHUNK / 4 ? values - i : FP_CHUNK / 4;
            for (size_t j = 0; j < k; j++) fan__put_f32(chunk + 4 * j, ds->f32[i + j]);
            samples = crc32_z(samples, chunk, 4 * k);
        }
    }
    for (size_t i = 0; i < ds->n; i += FP_CHUNK / 4) {
        const size_t k = ds->n - i < FP_CHUNK / 4 ? ds->n - i : FP_CHUNK / 4;
        for (size_t j = 0; j < k; j++) fan__put_u32(chunk + 4 * j, (uint32_t)ds->labels[i + j]);
        labels = crc32_z(labels, chunk, 4 * k);
    }
    fp->hash = (uint64_t)(uint32_t)samples << 32 | (uint32_t)labels;
}

fan_status fan_dataset_shape(const fan_dataset *ds, size_t *width, size_t *height,
                             size_t *channels)
{
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    if (width != NULL) *width = ds->width;
    if (height != NULL) *height = ds->height;
    if (channels != NULL) *channels = ds->channels;
    return FAN_OK;
}

fan_status fan_dataset_set_shape(fan_dataset *ds, size_t width, size_t height, size_t channels)
{
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    size_t plane, dim;
    FAN__FAIL_IF(ds->err,
                 !fan__mul_ok(width, height, &plane) || !fan__mul_ok(plane, channels, &dim) ||
                     dim != ds->dim,
                 FAN_E_SHAPE, "shape %zu x %zu x %zu does not give dim %zu", width, height,
                 channels, ds->dim);
    ds->width = width;
    ds->height = height;
    ds->channels = channels;
    return FAN_OK;
}

fan_status fan_dataset_set_normalization(fan_dataset *ds, fan_norm norm, double mean, double std)
{
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    FAN__FAIL_IF(ds->err,
                 norm != FAN_NORM_NONE && norm != FAN_NORM_SCALE && norm != FAN_NORM_STANDARDIZE,
                 FAN_E_INVALID, "unknown normalisation %d", (int)norm);
    if (norm == FAN_NORM_STANDARDIZE) {
        FAN__FAIL_IF(ds->err, !isfinite(mean) || !isfinite(std) || !(std > 0.0), FAN_E_INVALID,
                     "standardisation needs finite mean and std > 0 (got %g, %g)", mean, std);
        /* A std so small that 1/std overflows float would turn batches into infinities. */
        FAN__FAIL_IF(ds->err,
                     !(1.0 / (ds->range * std) <= FLT_MAX) || !(fabs(mean / std) <= FLT_MAX),
                     FAN_E_INVALID, "mean %g / std %g overflow float", mean, std);
        ds->mean = mean;
        ds->std = std;
    } else {
        ds->mean = 0.0;
        ds->std = 1.0;
    }
    ds->norm = norm;
    rebuild_tables(ds);
    return FAN_OK;
}

/* ---- gathering --------------------------------------------------------------------------- */

/* uint8 to normalised float: one multiply and one add per value. Compiled for SSE2, AVX2 and
   AVX-512 (8 and 16 values per instruction, and a wide zero-extension instead of SSE2's unpack
   ladder); separate operations, never fused, give the same bits on every width. */
static inline __attribute__((always_inline)) void convert_u8(const uint8_t *p, float *x,
                                                             size_t dim, float a, float b)
{
    for (size_t j = 0; j < dim; j++) x[j] = (float)p[j] * a + b;
}

static void convert_base(const uint8_t *p, float *x, size_t dim, float a, float b)
{
    convert_u8(p, x, dim, a, b);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static void convert_avx2(const uint8_t *p, float *x, size_t dim,
                                                         float a, float b)
{
    convert_u8(p, x, dim, a, b);
}

__attribute__((target("avx512f,avx512bw"))) static void convert_avx512(const uint8_t *p, float *x,
                                                                       size_t dim, float a,
                                                                       float b)
{
    convert_u8(p, x, dim, a, b);
}
#endif

/* Writes sample i, normalised, into x[0..dim). */
static void gather_one(const fan_dataset *ds, size_t i, float *x)
{
    const size_t dim = ds->dim;
    const float a = ds->scale, b = ds->offset;
    if (ds->u8 != NULL) {
        const uint8_t *p = ds->u8 + i * dim;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        if (ds->isa == FAN__KERNELS_AVX512) {
            convert_avx512(p, x, dim, a, b);
            return;
        }
        if (ds->isa == FAN__KERNELS_AVX2) {
            convert_avx2(p, x, dim, a, b);
            return;
        }
#endif
        convert_base(p, x, dim, a, b);
        return;
    }
    const float *p = ds->f32 + i * dim;
    if (a == 1.0f && b == 0.0f) {
        memcpy(x, p, dim * sizeof(float));
    } else {
        for (size_t j = 0; j < dim; j++) x[j] = p[j] * a + b;
    }
}

/* Rows of a shuffled batch lie anywhere in the dataset, so the first load of each row misses the
   caches: the iterator asks for the next batch's rows and labels while this batch trains
   (fan__dataset_prefetch), which makes a 784-100-10 step at batch 64 about 11% faster. */
#define GATHER_CACHE_LINE 64

/* Row i's bytes. */
static const char *row_bytes(const fan_dataset *ds, size_t i, size_t *bytes)
{
    if (ds->u8 != NULL) {
        *bytes = ds->dim;
        return (const char *)(ds->u8 + i * ds->dim);
    }
    *bytes = ds->dim * sizeof(float);
    return (const char *)(ds->f32 + i * ds->dim);
}

/* Rows and their labels to stay cached through a training step: a temporal request (a
   non-temporal one is evicted long before the next batch is gathered). One plain loop: GCC 12
   drops both loops of a function that picks between two prefetch localities with a flag, which
   had silently removed the gather's own prefetch of the row two ahead (not restored: with the
   next batch requested in advance it measured no faster than none). */
void fan__dataset_prefetch(const fan_dataset *ds, const size_t *idx, size_t n)
{
#if defined(__GNUC__)
    for (size_t r = 0; r < n; r++) {
        size_t bytes;
        const char *row = row_bytes(ds, idx[r], &bytes);
        for (size_t off = 0; off < bytes; off += GATHER_CACHE_LINE)
            __builtin_prefetch(row + off, 0, 3);
        /* The label too: 60,000 of them are 240 KB, and a shuffled batch's 64 labels were
           otherwise 64 misses, 4% of a 784-100-10 step. */
        __builtin_prefetch(ds->labels + idx[r], 0, 3);
    }
#else
    (void)ds;
    (void)idx;
    (void)n;
#endif
}

void fan__dataset_gather(const fan_dataset *ds, const size_t *idx, size_t first, size_t n,
                         float *x, int32_t *labels)
{
    for (size_t r = 0; r < n; r++) {
        size_t i = idx != NULL ? idx[r] : first + r;
        gather_one(ds, i, x + r * ds->dim);
        if (labels != NULL) labels[r] = ds->labels[i];
    }
}

fan_status fan_dataset_get(const fan_dataset *ds, size_t index, float *x, size_t x_len,
                           int32_t *label)
{
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    FAN__FAIL_IF(ds->err, index >= ds->n, FAN_E_INVALID, "index %zu is not below size %zu", index,
                 ds->n);
    if (x != NULL) {
        FAN__FAIL_IF(ds->err, x_len != ds->dim, FAN_E_SHAPE, "x_len %zu, dim is %zu", x_len,
                     ds->dim);
        gather_one(ds, index, x);
    }
    if (label != NULL) *label = ds->labels[index];
    return FAN_OK;
}

fan_status fan_dataset_class_counts(const fan_dataset *ds, size_t *counts, size_t len)
{
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    FAN__FAIL_IF(ds->err, counts == NULL, FAN_E_NULL, "counts is NULL");
    FAN__FAIL_IF(ds->err, len != ds->classes, FAN_E_SHAPE, "len %zu, classes is %zu", len,
                 ds->classes);
    memset(counts, 0, len * sizeof *counts);
    for (size_t i = 0; i < ds->n; i++) counts[ds->labels[i]]++;
    return FAN_OK;
}

fan_status fan_dataset_compute_stats(const fan_dataset *ds, double *mean, double *std)
{
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    FAN__FAIL_IF(ds->err, mean == NULL || std == NULL, FAN_E_NULL, "mean or std is NULL");
    const size_t total = ds->n * ds->dim; /* checked against overflow at creation */
    double m = 0.0, var = 0.0;
    if (ds->u8 != NULL) {
        /* A histogram makes the statistics exact sums of at most 256 terms. */
        uint64_t hist[FAN__U8_LEVELS] = {0};
        for (size_t i = 0; i < total; i++) hist[ds->u8[i]]++;
        for (int v = 0; v < FAN__U8_LEVELS; v++) m += (double)hist[v] * (v / ds->range);
        m /= (double)total;
        for (int v = 0; v < FAN__U8_LEVELS; v++) {
            double d = v / ds->range - m;
            var += (double)hist[v] * d * d;
        }
    } else {
        /* Two passes: the second sums squared deviations, which avoids the cancellation of
           E[x^2] - E[x]^2. */
        for (size_t i = 0; i < total; i++) m += ds->f32[i] / ds->range;
        m /= (double)total;
        for (size_t i = 0; i < total; i++) {
            double d = ds->f32[i] / ds->range - m;
            var += d * d;
        }
    }
    *mean = m;
    *std = sqrt(var / (double)total);
    return FAN_OK;
}
