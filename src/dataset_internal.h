/*
 * dataset_internal.h - the dataset handle, shared by dataset.c, dataset_load.c and
 * dataset_transform.c only. Other modules use the fan__dataset_* functions of internal.h.
 */
#ifndef FAN_DATASET_INTERNAL_H
#define FAN_DATASET_INTERNAL_H

#include "internal.h"

/* Value range of uint8 storage: FAN_NORM_SCALE divides by it. */
#define FAN__U8_RANGE 255.0
/* Number of distinct uint8 values (bins of the statistics histogram). */
#define FAN__U8_LEVELS 256

struct fan_dataset {
    fan_allocator alloc;
    char *err; /* points at err_storage.text; see fan__fail */
    fan__msg err_storage;

    size_t n, dim, classes;
    size_t width, height, channels; /* width * height * channels == dim */

    /* Exactly one of u8 / f32 holds the n x dim samples (row-major, channel-planar). */
    uint8_t *u8;
    float *f32;
    int32_t *labels;

    fan_norm norm;
    double mean, std; /* FAN_NORM_STANDARDIZE only, applied after scaling */
    double range;     /* FAN_NORM_SCALE divisor: 255 for uint8 storage, 1 for float */

    /* A batch value is stored * scale + offset, both derived from norm / mean / std / range
       whenever the normalisation changes: one multiply-add per value, which compilers
       vectorise for uint8 and float storage alike (faster than a 256-entry look-up table). */
    float scale, offset;
    /* Vector width of the batch conversion, chosen at creation (every width, the same bits). */
    fan__kernels isa;
};

/**
 * Allocates a dataset of n samples of dim values (uint8 storage when is_u8, else float) with
 * uninitialised samples and labels, shape dim x 1 x 1, the given class count, and normalisation
 * FAN_NORM_SCALE for uint8 / FAN_NORM_NONE for float. Checks n, dim and classes against the
 * documented limits before allocating. Returns FAN_OK, FAN_E_INVALID, FAN_E_LIMIT or FAN_E_NOMEM
 * (message in err, which may be NULL).
 */
fan_status fan__dataset_new(fan_dataset **out, size_t n, size_t dim, size_t classes, int is_u8,
                            const fan_allocator *alloc, char *err);

/** Copies src's normalisation (mode, mean, std, range, scale, offset) into dst. */
void fan__dataset_copy_norm(fan_dataset *dst, const fan_dataset *src);

/**
 * Where a dataset made from another one (subsets, splits, transforms) gets its memory and where
 * the message of a failure goes: the source's allocator and buffer for the public functions,
 * the caller's options for the _ex variants (dataset_ex.c).
 */
typedef struct fan__derive {
    const fan_allocator *al;
    char *err;
} fan__derive;

static inline fan__derive fan__derive_from(const fan_dataset *ds)
{
    fan__derive d = {&ds->alloc, ds->err};
    return d;
}

/* The work of the derived-dataset constructors; out (train, val) and ds are not NULL. */
fan_status fan__dataset_subset_first(fan_dataset **out, const fan_dataset *ds, size_t n,
                                     const fan__derive *d);
fan_status fan__dataset_subset_random(fan_dataset **out, const fan_dataset *ds, size_t n,
                                      uint64_t seed, const fan__derive *d);
fan_status fan__dataset_subset_stratified(fan_dataset **out, const fan_dataset *ds,
                                          size_t n_per_class, uint64_t seed, const fan__derive *d);
fan_status fan__dataset_subset_indices(fan_dataset **out, const fan_dataset *ds,
                                       const size_t *indices, size_t n, const fan__derive *d);
fan_status fan__dataset_split(fan_dataset **train, fan_dataset **val, const fan_dataset *ds,
                              size_t n_val, uint64_t seed, const fan__derive *d);
fan_status fan__dataset_split_stratified(fan_dataset **train, fan_dataset **val,
                                         const fan_dataset *ds, size_t n_val, uint64_t seed,
                                         const fan__derive *d);
fan_status fan__dataset_translate(fan_dataset **out, const fan_dataset *ds, double dx, double dy,
                                  const fan__derive *d);
fan_status fan__dataset_rotate(fan_dataset **out, const fan_dataset *ds, double degrees,
                               const fan__derive *d);
fan_status fan__dataset_scale(fan_dataset **out, const fan_dataset *ds, double factor,
                              const fan__derive *d);
fan_status fan__dataset_resize(fan_dataset **out, const fan_dataset *ds, size_t width,
                               size_t height, const fan__derive *d);
/* The array constructors with an allocator and a message buffer (may be NULL); out is not
   NULL. */
fan_status fan__dataset_from_arrays(fan_dataset **out, const float *x, const int32_t *labels,
                                    size_t n, size_t dim, size_t n_classes,
                                    const fan_allocator *alloc, char *err);
fan_status fan__dataset_from_u8(fan_dataset **out, const uint8_t *pixels, const int32_t *labels,
                                size_t n, size_t width, size_t height, size_t channels,
                                size_t n_classes, const fan_allocator *alloc, char *err);

#endif /* FAN_DATASET_INTERNAL_H */
