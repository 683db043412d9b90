/* dataset_subset.c - datasets derived from another by choosing samples: the first n, a random
   draw, a stratified draw, listed indices, and splits into training and validation parts. The
   work is done by the fan__dataset_* functions, given the allocator and message buffer of the
   call (fan__derive); the public functions here use the source's, the _ex variants
   (dataset_ex.c) the caller's options. */
#include "dataset_internal.h"

#include <stdlib.h> /* qsort */
#include <string.h>

/* Makes a dataset of the samples idx[0..n) of ds (indices already checked). */
static fan_status subset_from_indices(fan_dataset **out, const fan_dataset *ds, const size_t *idx,
                                      size_t n, const fan__derive *d)
{
    fan_dataset *s;
    FAN__CHECK(fan__dataset_new(&s, n, ds->dim, ds->classes, ds->u8 != NULL, d->al, d->err));
    s->width = ds->width;
    s->height = ds->height;
    s->channels = ds->channels;
    fan__dataset_copy_norm(s, ds);
    const size_t dim = ds->dim;
    for (size_t r = 0; r < n; r++) {
        size_t i = idx[r];
        if (ds->u8 != NULL) {
            memcpy(s->u8 + r * dim, ds->u8 + i * dim, dim);
        } else {
            memcpy(s->f32 + r * dim, ds->f32 + i * dim, dim * sizeof(float));
        }
        s->labels[r] = ds->labels[i];
    }
    *out = s;
    return FAN_OK;
}

/* Allocates idx[0..n) from the derived dataset's allocator. */
static fan_status alloc_indices(const fan__derive *d, size_t n, size_t **idx)
{
    *idx = fan__calloc(d->al, n, sizeof **idx);
    FAN__FAIL_IF(d->err, *idx == NULL, FAN_E_NOMEM, "out of memory for %zu indices", n);
    return FAN_OK;
}

/* Draws the first k entries of a uniform random permutation of [0, n) into perm (length n):
   a partial Fisher-Yates shuffle, so the k drawn indices are distinct and in drawn order. */
static void draw_without_replacement(fan__rng *r, size_t *perm, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = 0; i < k; i++) {
        size_t j = i + (size_t)fan__rng_below(r, n - i);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

fan_status fan__dataset_subset_first(fan_dataset **out, const fan_dataset *ds, size_t n,
                                     const fan__derive *d)
{
    FAN__FAIL_IF(d->err, n == 0 || n > ds->n, FAN_E_INVALID, "n %zu is not in [1, %zu]", n,
                 ds->n);
    size_t *idx;
    FAN__CHECK(alloc_indices(d, n, &idx));
    for (size_t i = 0; i < n; i++) idx[i] = i;
    fan_status s = subset_from_indices(out, ds, idx, n, d);
    fan__free(d->al, idx);
    return s;
}

fan_status fan__dataset_subset_random(fan_dataset **out, const fan_dataset *ds, size_t n,
                                      uint64_t seed, const fan__derive *d)
{
    FAN__FAIL_IF(d->err, n == 0 || n > ds->n, FAN_E_INVALID, "n %zu is not in [1, %zu]", n,
                 ds->n);
    size_t *perm;
    FAN__CHECK(alloc_indices(d, ds->n, &perm));
    fan__rng r;
    fan__rng_seed_stream(&r, seed, FAN__RNG_SUBSET, 0);
    draw_without_replacement(&r, perm, ds->n, n);
    fan_status s = subset_from_indices(out, ds, perm, n, d);
    fan__free(d->al, perm);
    return s;
}

fan_status fan__dataset_subset_stratified(fan_dataset **out, const fan_dataset *ds,
                                          size_t n_per_class, uint64_t seed, const fan__derive *d)
{
    FAN__FAIL_IF(d->err, n_per_class == 0, FAN_E_INVALID, "n_per_class is 0");
    size_t total;
    FAN__FAIL_IF(d->err, !fan__mul_ok(n_per_class, ds->classes, &total) || total > ds->n,
                 FAN_E_INVALID, "%zu per class x %zu classes exceeds the %zu samples",
                 n_per_class, ds->classes, ds->n);

    /* remaining[c]: samples of class c not yet scanned; need[c]: still to pick. */
    size_t *remaining = fan__calloc(d->al, 2 * ds->classes, sizeof(size_t));
    FAN__FAIL_IF(d->err, remaining == NULL, FAN_E_NOMEM, "out of memory for class counts");
    size_t *need = remaining + ds->classes;
    for (size_t i = 0; i < ds->n; i++) remaining[ds->labels[i]]++;
    for (size_t c = 0; c < ds->classes; c++) {
        if (remaining[c] < n_per_class) {
            size_t have = remaining[c];
            fan__free(d->al, remaining);
            return fan__fail(d->err, FAN_E_INVALID, "class %zu has %zu samples, fewer than %zu",
                             c, have, n_per_class);
        }
        need[c] = n_per_class;
    }
    size_t *idx = fan__calloc(d->al, total, sizeof *idx);
    if (idx == NULL) {
        fan__free(d->al, remaining);
        return fan__fail(d->err, FAN_E_NOMEM, "out of memory for %zu indices", total);
    }
    /* Selection sampling (Knuth, TAOCP vol. 2, Algorithm S) per class in one scan: every
       n_per_class-subset of a class is equally likely and the result keeps source order. */
    fan__rng r;
    fan__rng_seed_stream(&r, seed, FAN__RNG_SUBSET, 0);
    size_t k = 0;
    for (size_t i = 0; i < ds->n; i++) {
        size_t c = (size_t)ds->labels[i];
        if (need[c] > 0 && fan__rng_below(&r, remaining[c]) < need[c]) {
            idx[k++] = i;
            need[c]--;
        }
        remaining[c]--;
    }
    fan_status s = subset_from_indices(out, ds, idx, k, d);
    fan__free(d->al, idx);
    fan__free(d->al, remaining);
    return s;
}

fan_status fan__dataset_subset_indices(fan_dataset **out, const fan_dataset *ds,
                                       const size_t *indices, size_t n, const fan__derive *d)
{
    FAN__FAIL_IF(d->err, indices == NULL, FAN_E_NULL, "indices is NULL");
    FAN__FAIL_IF(d->err, n == 0, FAN_E_INVALID, "n is 0");
    for (size_t i = 0; i < n; i++) {
        FAN__FAIL_IF(d->err, indices[i] >= ds->n, FAN_E_INVALID,
                     "indices[%zu] = %zu is not below size %zu", i, indices[i], ds->n);
    }
    return subset_from_indices(out, ds, indices, n, d);
}

fan_status fan__dataset_split(fan_dataset **train, fan_dataset **val, const fan_dataset *ds,
                              size_t n_val, uint64_t seed, const fan__derive *d)
{
    FAN__FAIL_IF(d->err, n_val == 0 || n_val >= ds->n, FAN_E_INVALID,
                 "n_val %zu is not in [1, %zu)", n_val, ds->n);
    /* One block: the permutation, then one "drawn" flag per sample. */
    size_t bytes = ds->n * sizeof(size_t) + ds->n;
    size_t *perm = fan__alloc(d->al, bytes);
    FAN__FAIL_IF(d->err, perm == NULL, FAN_E_NOMEM, "out of memory for %zu indices", ds->n);
    uint8_t *drawn = (uint8_t *)(perm + ds->n);
    /* The validation part is exactly fan_dataset_subset_random(n_val, seed); the training part
       keeps source order, so splitting does not reorder the data it trains on. */
    fan__rng r;
    fan__rng_seed_stream(&r, seed, FAN__RNG_SUBSET, 0);
    draw_without_replacement(&r, perm, ds->n, n_val);
    memset(drawn, 0, ds->n);
    for (size_t k = 0; k < n_val; k++) drawn[perm[k]] = 1;
    size_t *rest = perm + n_val, n_train = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (!drawn[i]) rest[n_train++] = i;
    }
    fan_status s = subset_from_indices(val, ds, perm, n_val, d);
    if (s == FAN_OK) {
        s = subset_from_indices(train, ds, rest, n_train, d);
        if (s != FAN_OK) {
            fan_dataset_free(*val);
            *val = NULL;
        }
    }
    fan__free(d->al, perm);
    return s;
}

/* Orders classes by the fractional part of their quota, largest first, then by class index:
   the largest-remainder rule (Hamilton's method) for rounding quotas to whole samples. */
typedef struct class_rem {
    uint64_t rem;
    size_t c;
} class_rem;

static int by_remainder(const void *a, const void *b)
{
    const class_rem *x = a, *y = b;
    if (x->rem != y->rem) return x->rem < y->rem ? 1 : -1;
    return x->c < y->c ? -1 : x->c > y->c;
}

fan_status fan__dataset_split_stratified(fan_dataset **train, fan_dataset **val,
                                         const fan_dataset *ds, size_t n_val, uint64_t seed,
                                         const fan__derive *d)
{
    FAN__FAIL_IF(d->err, n_val == 0 || n_val >= ds->n, FAN_E_INVALID,
                 "n_val %zu is not in [1, %zu)", n_val, ds->n);
    const size_t C = ds->classes;
    /* One block: per class its count, quota and what is left to scan; the remainders; then
       the indices of the validation part followed by those of the training part. */
    size_t *counts = fan__calloc(d->al, 3 * C + ds->n, sizeof(size_t));
    class_rem *rems = fan__calloc(d->al, C, sizeof *rems);
    if (counts == NULL || rems == NULL) {
        fan__free(d->al, counts);
        fan__free(d->al, rems);
        return fan__fail(d->err, FAN_E_NOMEM, "out of memory for a split of %zu samples", ds->n);
    }
    size_t *quota = counts + C, *left = quota + C, *idx = left + C;
    for (size_t i = 0; i < ds->n; i++) counts[ds->labels[i]]++;
    /* Class c gets n_val * counts[c] / n, rounded by largest remainder so that the quotas add
       up to n_val (both factors are at most FAN_MAX_SAMPLES: the product fits in 64 bits). */
    size_t given = 0;
    for (size_t c = 0; c < C; c++) {
        const uint64_t share = (uint64_t)n_val * counts[c];
        quota[c] = (size_t)(share / ds->n);
        rems[c].rem = share % ds->n;
        rems[c].c = c;
        given += quota[c];
        left[c] = counts[c];
    }
    qsort(rems, C, sizeof *rems, by_remainder);
    for (size_t k = 0; given < n_val; k++, given++) quota[rems[k].c]++;
    fan__free(d->al, rems);
    /* Selection sampling per class in one scan (as fan_dataset_subset_stratified): each class's
       validation samples are a uniform draw of its quota, and both parts keep source order. */
    fan__rng r;
    fan__rng_seed_stream(&r, seed, FAN__RNG_SUBSET, 1);
    size_t nv = 0, nt = n_val;
    for (size_t i = 0; i < ds->n; i++) {
        const size_t c = (size_t)ds->labels[i];
        if (quota[c] > 0 && fan__rng_below(&r, left[c]) < quota[c]) {
            idx[nv++] = i;
            quota[c]--;
        } else {
            idx[nt++] = i;
        }
        left[c]--;
    }
    fan_status st = subset_from_indices(val, ds, idx, n_val, d);
    if (st == FAN_OK) {
        st = subset_from_indices(train, ds, idx + n_val, ds->n - n_val, d);
        if (st != FAN_OK) {
            fan_dataset_free(*val);
            *val = NULL;
        }
    }
    fan__free(d->al, counts);
    return st;
}

/* ---- the public functions, on the source's allocator and message buffer ------------------- */

static fan_status args(fan_dataset **out, const fan_dataset *ds, fan__derive *d)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    *d = fan__derive_from(ds);
    return FAN_OK;
}

static fan_status split_args(fan_dataset **train, fan_dataset **val, const fan_dataset *ds,
                             fan__derive *d)
{
    FAN__FAIL_IF(NULL, train == NULL || val == NULL, FAN_E_NULL, "train or val is NULL");
    *train = NULL;
    *val = NULL;
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    *d = fan__derive_from(ds);
    return FAN_OK;
}

fan_status fan_dataset_subset_first(fan_dataset **out, const fan_dataset *ds, size_t n)
{
    fan__derive d;
    FAN__CHECK(args(out, ds, &d));
    return fan__dataset_subset_first(out, ds, n, &d);
}

fan_status fan_dataset_subset_random(fan_dataset **out, const fan_dataset *ds, size_t n,
                                     uint64_t seed)
{
    fan__derive d;
    FAN__CHECK(args(out, ds, &d));
    return fan__dataset_subset_random(out, ds, n, seed, &d);
}

fan_status fan_dataset_subset_stratified(fan_dataset **out, const fan_dataset *ds,
                                         size_t n_per_class, uint64_t seed)
{
    fan__derive d;
    FAN__CHECK(args(out, ds, &d));
    return fan__dataset_subset_stratified(out, ds, n_per_class, seed, &d);
}

fan_status fan_dataset_subset_indices(fan_dataset **out, const fan_dataset *ds,
                                      const size_t *indices, size_t n)
{
    fan__derive d;
    FAN__CHECK(args(out, ds, &d));
    return fan__dataset_subset_indices(out, ds, indices, n, &d);
}

fan_status fan_dataset_split(fan_dataset **train, fan_dataset **val, const fan_dataset *ds,
                             size_t n_val, uint64_t seed)
{
    fan__derive d;
    FAN__CHECK(split_args(train, val, ds, &d));
    return fan__dataset_split(train, val, ds, n_val, seed, &d);
}

fan_status fan_dataset_split_stratified(fan_dataset **train, fan_dataset **val,
                                        const fan_dataset *ds, size_t n_val, uint64_t seed)
{
    fan__derive d;
    FAN__CHECK(split_args(train, val, ds, &d));
    return fan__dataset_split_stratified(train, val, ds, n_val, seed, &d);
}
