/* dataset_ex.c - the _ex variants of the dataset constructors that are not loaders: datasets
   from arrays, subsets, splits and transforms, taking fan_create_options (an allocator, a
   buffer for the reason of a failure). A dataset made from another one uses the source's
   allocator unless the options name one, as the plain functions do. */
#include "dataset_internal.h"
#include "options.h"

/* Reads the options and checks the output pointers (set to NULL); out2 may be NULL. */
static fan_status begin(fan__opts *o, const fan_create_options *opts, fan_dataset **out,
                        fan_dataset **out2)
{
    if (out != NULL) *out = NULL;
    if (out2 != NULL) *out2 = NULL;
    FAN__CHECK(fan__opts_read(o, opts));
    FAN__FAIL_IF(o->err, out == NULL, FAN_E_NULL, "out is NULL");
    return FAN_OK;
}

/* For a derived dataset: checks the source, and sets where memory and messages go. */
static fan_status derive(fan__opts *o, const fan_dataset *ds, fan__derive *d)
{
    FAN__FAIL_IF(o->err, ds == NULL, FAN_E_NULL, "the source dataset is NULL");
    d->al = o->user_alloc != NULL ? &o->alloc : fan__dataset_allocator(ds);
    d->err = o->err;
    return FAN_OK;
}

/* Ends a derived constructor: a failure's message also goes to the source, as the plain
   functions record it there. */
static fan_status finish_derived(fan__opts *o, const fan_dataset *ds, fan_status st)
{
    if (st != FAN_OK && ds != NULL && o->err[0] != '\0')
        (void)fan__fail(fan__dataset_errbuf(ds), st, "%s", o->err);
    return fan__opts_finish(o, st);
}

fan_status fan_dataset_from_arrays_ex(fan_dataset **out, const float *x, const int32_t *labels,
                                      size_t n, size_t dim, size_t n_classes,
                                      const fan_create_options *opts)
{
    fan__opts o;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK)
        st = fan__dataset_from_arrays(out, x, labels, n, dim, n_classes, &o.alloc, o.err);
    return fan__opts_finish(&o, st);
}

fan_status fan_dataset_from_u8_ex(fan_dataset **out, const uint8_t *pixels,
                                  const int32_t *labels, size_t n, size_t width, size_t height,
                                  size_t channels, size_t n_classes,
                                  const fan_create_options *opts)
{
    fan__opts o;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK)
        st = fan__dataset_from_u8(out, pixels, labels, n, width, height, channels, n_classes,
                                  &o.alloc, o.err);
    return fan__opts_finish(&o, st);
}

fan_status fan_dataset_subset_first_ex(fan_dataset **out, const fan_dataset *ds, size_t n,
                                       const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_subset_first(out, ds, n, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_subset_random_ex(fan_dataset **out, const fan_dataset *ds, size_t n,
                                        uint64_t seed, const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_subset_random(out, ds, n, seed, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_subset_stratified_ex(fan_dataset **out, const fan_dataset *ds,
                                            size_t n_per_class, uint64_t seed,
                                            const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_subset_stratified(out, ds, n_per_class, seed, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_subset_indices_ex(fan_dataset **out, const fan_dataset *ds,
                                         const size_t *indices, size_t n,
                                         const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_subset_indices(out, ds, indices, n, &d);
    return finish_derived(&o, ds, st);
}

/* The splits' two outputs are checked as one. */
static fan_status split_begin(fan__opts *o, const fan_create_options *opts, fan_dataset **train,
                              fan_dataset **val)
{
    FAN__CHECK(begin(o, opts, train, val));
    FAN__FAIL_IF(o->err, val == NULL, FAN_E_NULL, "val is NULL");
    return FAN_OK;
}

fan_status fan_dataset_split_ex(fan_dataset **train, fan_dataset **val, const fan_dataset *ds,
                                size_t n_val, uint64_t seed, const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = split_begin(&o, opts, train, val);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_split(train, val, ds, n_val, seed, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_split_stratified_ex(fan_dataset **train, fan_dataset **val,
                                           const fan_dataset *ds, size_t n_val, uint64_t seed,
                                           const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = split_begin(&o, opts, train, val);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_split_stratified(train, val, ds, n_val, seed, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_translate_ex(fan_dataset **out, const fan_dataset *ds, double dx,
                                    double dy, const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_translate(out, ds, dx, dy, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_rotate_ex(fan_dataset **out, const fan_dataset *ds, double degrees,
                                 const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_rotate(out, ds, degrees, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_scale_ex(fan_dataset **out, const fan_dataset *ds, double factor,
                                const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_scale(out, ds, factor, &d);
    return finish_derived(&o, ds, st);
}

fan_status fan_dataset_resize_ex(fan_dataset **out, const fan_dataset *ds, size_t width,
                                 size_t height, const fan_create_options *opts)
{
    fan__opts o;
    fan__derive d;
    fan_status st = begin(&o, opts, out, NULL);
    if (st == FAN_OK) st = derive(&o, ds, &d);
    if (st == FAN_OK) st = fan__dataset_resize(out, ds, width, height, &d);
    return finish_derived(&o, ds, st);
}
