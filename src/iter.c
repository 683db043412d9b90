/*
 * iter.c - batch streams: shuffled epochs of mini-batches over a dataset, and the endless
 * random-noise source of the paper's pretraining (Cheon, Lee, Paik 2024; docs/paper.md, section 3).
 * Both hand out borrowed views into buffers allocated at creation, so that a training loop
 * allocates nothing per step.
 */
#include "iter_impl.h"
#include "kernels.h"
#include "options.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Inputs and labels of the noise source come from streams of different purposes
   (fan__rng_purpose) so that the labels are independent of the inputs, as the paper requires,
   and so that switching the label mode does not change the inputs that follow. */


/* ---- construction ------------------------------------------------------------------------- */

/* Allocates the handle and its rows x dim input and rows label buffers. */
static fan_status iter_alloc(fan_iter **out, size_t rows, size_t dim, const fan_allocator *alloc,
                             char *err)
{
    size_t elems, bytes;
    FAN__FAIL_IF(err, !fan__mul_ok(rows, dim, &elems) || !fan__mul_ok(elems, sizeof(float), &bytes),
                 FAN_E_LIMIT, "batches of %zu rows of %zu values overflow", rows, dim);
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    fan_iter *it = fan__calloc(&al, 1, sizeof *it);
    FAN__FAIL_IF(err, it == NULL, FAN_E_NOMEM, "out of memory for the iterator handle");
    it->alloc = al;
    it->err = fan__msg_init(&it->err_storage);
    it->x = fan__alloc(&al, bytes);
    it->labels = fan__calloc(&al, rows, sizeof *it->labels);
    if (it->x == NULL || it->labels == NULL) {
        fan_iter_free(it);
        return fan__fail(err, FAN_E_NOMEM, "out of memory for a batch of %zu rows of %zu values",
                         rows, dim);
    }
    *out = it;
    return FAN_OK;
}

static void restart(fan_iter *it)
{
    it->index = 0;
    it->epochs = 0;
    if (it->is_noise) {
        fan__rng_seed_stream(&it->input_rng, it->seed, FAN__RNG_NOISE_INPUT, 0);
        fan__rng_seed_stream(&it->label_rng, it->seed, FAN__RNG_NOISE_LABEL, 0);
    } else {
        fan__rng_seed_stream(&it->order_rng, it->seed, FAN__RNG_SHUFFLE, 0);
        it->epoch_rng = it->order_rng;
        it->pos = 0;
        it->at_boundary = 1;
    }
}

fan_status fan__iter_create_batches(fan_iter **out, const fan_dataset *ds, size_t batch,
                                   uint64_t shuffle_seed, const fan_allocator *alloc, char *err)
{
    FAN__FAIL_IF(err, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(err, ds == NULL, FAN_E_NULL, "ds is NULL");
    FAN__FAIL_IF(err, batch == 0, FAN_E_INVALID, "batch size 0");
    const size_t size = fan_dataset_size(ds);
    FAN__FAIL_IF(err, size == 0, FAN_E_INVALID, "the dataset is empty");
    /* A batch larger than the dataset is one short batch per epoch: no need for more rows. */
    const size_t rows = batch < size ? batch : size;
    fan_iter *it = NULL;
    FAN__CHECK(iter_alloc(&it, rows, fan_dataset_dim(ds), alloc, err));
    it->perm = fan__calloc(&it->alloc, size, sizeof *it->perm);
    if (it->perm == NULL) {
        fan_iter_free(it);
        return fan__fail(err, FAN_E_NOMEM, "out of memory for the order of %zu samples", size);
    }
    it->ds = ds;
    it->size = size;
    it->dim = fan_dataset_dim(ds);
    it->classes = fan_dataset_classes(ds);
    it->batch = batch;
    it->seed = shuffle_seed;
    it->shuffle = 1;
    it->shard_count = 1;
    restart(it);
    *out = it;
    return FAN_OK;
}

fan_status fan_iter_create_batches(fan_iter **out, const fan_dataset *ds, size_t batch,
                                   uint64_t shuffle_seed, const fan_allocator *alloc)
{
    return fan__iter_create_batches(out, ds, batch, shuffle_seed, alloc, NULL);
}

fan_status fan__iter_create_noise(fan_iter **out, size_t dim, size_t n_classes, size_t batch,
                                  uint64_t seed, const fan_allocator *alloc, char *err)
{
    FAN__FAIL_IF(err, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(err, dim == 0 || n_classes == 0 || batch == 0, FAN_E_INVALID,
                 "zero size (dim %zu, n_classes %zu, batch %zu)", dim, n_classes, batch);
    FAN__FAIL_IF(err, n_classes > FAN_MAX_CLASSES, FAN_E_INVALID,
                 "n_classes %zu exceeds FAN_MAX_CLASSES (%u)", n_classes, FAN_MAX_CLASSES);
    FAN__FAIL_IF(err, dim > FAN_MAX_WIDTH, FAN_E_LIMIT, "dim %zu exceeds FAN_MAX_WIDTH (%u)", dim,
                 FAN_MAX_WIDTH);
    FAN__FAIL_IF(err, batch > FAN_MAX_SAMPLES, FAN_E_LIMIT,
                 "batch %zu exceeds FAN_MAX_SAMPLES (%u)", batch, FAN_MAX_SAMPLES);
    size_t t_elems, t_bytes;
    FAN__FAIL_IF(err,
                 !fan__mul_ok(batch, n_classes, &t_elems) ||
                     !fan__mul_ok(t_elems, sizeof(float), &t_bytes),
                 FAN_E_LIMIT, "batch %zu x n_classes %zu overflows", batch, n_classes);
    fan_iter *it = NULL;
    FAN__CHECK(iter_alloc(&it, batch, dim, alloc, err));
    it->targets = fan__alloc(&it->alloc, t_bytes);
    if (it->targets == NULL) {
        fan_iter_free(it);
        return fan__fail(err, FAN_E_NOMEM, "out of memory for %zu soft targets", t_elems);
    }
    it->is_noise = 1;
    it->dim = dim;
    it->classes = n_classes;
    it->batch = batch;
    it->seed = seed;
    it->kind = FAN_NOISE_GAUSSIAN;
    it->label_mode = FAN_LABELS_HARD;
    it->mean = 0.0;
    it->std = 1.0;
    fan__normal_tables_init(&it->tables);
    it->isa = fan__kernels_detect();
    restart(it);
    *out = it;
    return FAN_OK;
}

fan_status fan_iter_create_noise(fan_iter **out, size_t dim, size_t n_classes, size_t batch,
                                 uint64_t seed, const fan_allocator *alloc)
{
    return fan__iter_create_noise(out, dim, n_classes, batch, seed, alloc, NULL);
}

fan_status fan_iter_create_batches_ex(fan_iter **out, const fan_dataset *ds, size_t batch,
                                      uint64_t shuffle_seed, const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK) st = fan__iter_create_batches(out, ds, batch, shuffle_seed, &o.alloc, o.err);
    return fan__opts_finish(&o, st);
}

fan_status fan_iter_create_noise_ex(fan_iter **out, size_t dim, size_t n_classes, size_t batch,
                                    uint64_t seed, const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK) st = fan__iter_create_noise(out, dim, n_classes, batch, seed, &o.alloc, o.err);
    return fan__opts_finish(&o, st);
}

void fan_iter_free(fan_iter *it)
{
    if (it == NULL) return;
    const fan_allocator al = it->alloc;
    fan__free(&al, it->targets);
    fan__free(&al, it->perm);
    fan__free(&al, it->labels);
    fan__free(&al, it->x);
    fan__free(&al, it);
}

const char *fan_iter_errmsg(const fan_iter *it)
{
    return it == NULL ? "iterator is NULL" : it->err;
}

/* ---- settings ----------------------------------------------------------------------------- */

static const char *param_name(fan_iter_param p)
{
    switch (p) {
    case FAN_ITER_NOISE_KIND: return "FAN_ITER_NOISE_KIND";
    case FAN_ITER_NOISE_MEAN: return "FAN_ITER_NOISE_MEAN";
    case FAN_ITER_NOISE_STD: return "FAN_ITER_NOISE_STD";
    case FAN_ITER_LABEL_MODE: return "FAN_ITER_LABEL_MODE";
    case FAN_ITER_DROP_LAST: return "FAN_ITER_DROP_LAST";
    case FAN_ITER_SHUFFLE: return "FAN_ITER_SHUFFLE";
    case FAN_ITER_SHARD_INDEX: return "FAN_ITER_SHARD_INDEX";
    case FAN_ITER_SHARD_COUNT: return "FAN_ITER_SHARD_COUNT";
    }
    return NULL;
}

static int is_noise_param(fan_iter_param p)
{
    return p == FAN_ITER_NOISE_KIND || p == FAN_ITER_NOISE_MEAN || p == FAN_ITER_NOISE_STD ||
           p == FAN_ITER_LABEL_MODE;
}

/* Checks that p exists and applies to this kind of iterator. */
static fan_status check_param(const fan_iter *it, fan_iter_param p)
{
    const char *name = param_name(p);
    FAN__FAIL_IF(it->err, name == NULL, FAN_E_INVALID, "unknown iterator parameter %d", (int)p);
    FAN__FAIL_IF(it->err, is_noise_param(p) != it->is_noise, FAN_E_INVALID,
                 "%s applies to %s iterators only", name, it->is_noise ? "batch" : "noise");
    return FAN_OK;
}

/* Noise values become floats, and the uniform kind spans 2 sqrt(3) std: keep both finite. */
int fan__iter_noise_range_ok(double mean, double std)
{
    return isfinite(mean) && isfinite(std) && std > 0.0 && fabs(mean) + SQRT3 * std < FLT_MAX / 2;
}

/* Rows of the smallest global batch an epoch yields under a drop-last setting: the final partial
   batch when it is kept, else a full one (setting drop-last needs size >= batch). */
size_t fan__iter_smallest_batch(const fan_iter *it, int drop_last)
{
    if (it->size <= it->batch) return it->size;
    const size_t last = it->size % it->batch;
    return drop_last || last == 0 ? it->batch : last;
}

/* A shard setting as an integer; 0 if value is not one in [0, FAN_MAX_SAMPLES]. */
static int shard_value(double value, size_t *out)
{
    if (!(value >= 0.0 && value <= (double)FAN_MAX_SAMPLES) || value != floor(value)) return 0;
    *out = (size_t)value;
    return 1;
}

/* Where this iterator's part of a global batch of g rows starts, and its rows: the first
   g % count parts get one row more than the others. */
static void shard_part(const fan_iter *it, size_t g, size_t *offset, size_t *rows)
{
    const size_t base = g / it->shard_count, extra = g % it->shard_count, i = it->shard_index;
    *rows = base + (i < extra);
    *offset = i * base + (i < extra ? i : extra);
}

fan_status fan_iter_set(fan_iter *it, fan_iter_param p, double value)
{
    FAN__FAIL_IF(NULL, it == NULL, FAN_E_NULL, "iterator is NULL");
    FAN__CHECK(check_param(it, p));
    const int flag = value == 0.0 ? 0 : value == 1.0 ? 1 : -1;
    switch (p) {
    case FAN_ITER_NOISE_KIND:
        FAN__FAIL_IF(it->err, flag < 0, FAN_E_INVALID,
                     "noise kind %g is neither FAN_NOISE_GAUSSIAN nor FAN_NOISE_UNIFORM", value);
        it->kind = flag ? FAN_NOISE_UNIFORM : FAN_NOISE_GAUSSIAN;
        break;
    case FAN_ITER_NOISE_MEAN:
        FAN__FAIL_IF(it->err, !fan__iter_noise_range_ok(value, it->std), FAN_E_INVALID,
                     "noise mean %g is not finite or too large for float noise", value);
        it->mean = value;
        break;
    case FAN_ITER_NOISE_STD:
        FAN__FAIL_IF(it->err, !fan__iter_noise_range_ok(it->mean, value), FAN_E_INVALID,
                     "noise std %g must be finite, > 0 and representable as float noise", value);
        it->std = value;
        break;
    case FAN_ITER_LABEL_MODE:
        FAN__FAIL_IF(it->err, flag < 0, FAN_E_INVALID,
                     "label mode %g is neither FAN_LABELS_HARD nor FAN_LABELS_SOFT", value);
        it->label_mode = flag ? FAN_LABELS_SOFT : FAN_LABELS_HARD;
        break;
    case FAN_ITER_DROP_LAST:
        FAN__FAIL_IF(it->err, flag < 0, FAN_E_INVALID, "FAN_ITER_DROP_LAST takes 0 or 1, not %g",
                     value);
        /* Epochs without a single batch would make every epoch-based loop spin on FAN_DONE. */
        FAN__FAIL_IF(it->err, flag && it->size < it->batch, FAN_E_INVALID,
                     "dropping the last partial batch leaves no batch: %zu samples < batch %zu",
                     it->size, it->batch);
        FAN__FAIL_IF(it->err, fan__iter_smallest_batch(it, flag) < it->shard_count, FAN_E_INVALID,
                     "a batch of %zu rows cannot be split into %zu non-empty shards",
                     fan__iter_smallest_batch(it, flag), it->shard_count);
        it->drop_last = flag;
        break;
    case FAN_ITER_SHUFFLE:
        /* Takes effect at the next epoch: the current one keeps the order it started with. */
        FAN__FAIL_IF(it->err, flag < 0, FAN_E_INVALID, "FAN_ITER_SHUFFLE takes 0 or 1, not %g",
                     value);
        it->shuffle = flag;
        break;
    case FAN_ITER_SHARD_INDEX: {
        size_t v = 0;
        FAN__FAIL_IF(it->err, !shard_value(value, &v) || v >= it->shard_count, FAN_E_INVALID,
                     "shard index %g is not an integer in [0, %zu) (set FAN_ITER_SHARD_COUNT "
                     "first)", value, it->shard_count);
        it->shard_index = v;
        break;
    }
    case FAN_ITER_SHARD_COUNT: {
        size_t v = 0;
        FAN__FAIL_IF(it->err, !shard_value(value, &v) || v == 0, FAN_E_INVALID,
                     "shard count %g is not a positive integer", value);
        FAN__FAIL_IF(it->err, it->shard_index >= v, FAN_E_INVALID,
                     "shard count %zu leaves the shard index %zu out of range (lower the index "
                     "first)", v, it->shard_index);
        /* Every shard must get rows in every step, or the processes would disagree on whether
           there is a step at all. */
        FAN__FAIL_IF(it->err, fan__iter_smallest_batch(it, it->drop_last) < v, FAN_E_INVALID,
                     "the smallest batch of an epoch has %zu rows: it cannot be split into %zu "
                     "non-empty shards", fan__iter_smallest_batch(it, it->drop_last), v);
        it->shard_count = v;
        break;
    }
    }
    return FAN_OK;
}

fan_status fan_iter_get(const fan_iter *it, fan_iter_param p, double *value)
{
    FAN__FAIL_IF(NULL, it == NULL, FAN_E_NULL, "iterator is NULL");
    FAN__FAIL_IF(it->err, value == NULL, FAN_E_NULL, "value is NULL");
    FAN__CHECK(check_param(it, p));
    switch (p) {
    case FAN_ITER_NOISE_KIND: *value = (double)it->kind; break;
    case FAN_ITER_NOISE_MEAN: *value = it->mean; break;
    case FAN_ITER_NOISE_STD: *value = it->std; break;
    case FAN_ITER_LABEL_MODE: *value = (double)it->label_mode; break;
    case FAN_ITER_DROP_LAST: *value = (double)it->drop_last; break;
    case FAN_ITER_SHUFFLE: *value = (double)it->shuffle; break;
    case FAN_ITER_SHARD_INDEX: *value = (double)it->shard_index; break;
    case FAN_ITER_SHARD_COUNT: *value = (double)it->shard_count; break;
    }
    return FAN_OK;
}

/* ---- the streams -------------------------------------------------------------------------- */

static size_t ceil_div(size_t a, size_t b) { return a / b + (a % b != 0); }

/* Batches that `left` remaining samples make under the drop-last setting. */
static size_t batches_for(const fan_iter *it, size_t left)
{
    return it->drop_last ? left / it->batch : ceil_div(left, it->batch);
}

/* A batch's bulk work as items: the rows of a gather, or the blocks of normal noise. */
typedef struct batch_work {
    fan_iter *it;
    const size_t *idx; /* the epoch's order from the batch's first row, or NULL */
    size_t first, rows;
    const size_t *next_idx; /* the next batch's rows in the epoch's order, or NULL */
    size_t next_rows;
    uint64_t seed; /* normal noise: the call's seed */
} batch_work;

/* Rows per gather item: whole cache lines of the float rows whatever the dimension. */
#define GATHER_ITEM 16

static void gather_item(void *arg, size_t phase, size_t item)
{
    (void)phase;
    const batch_work *w = arg;
    const size_t r0 = item * GATHER_ITEM;
    const size_t m = w->rows - r0 < GATHER_ITEM ? w->rows - r0 : GATHER_ITEM;
    fan__dataset_gather(w->it->ds, w->idx ? w->idx + r0 : NULL, w->first + r0, m,
                        w->it->x + r0 * w->it->dim, w->it->labels + r0);
    /* The same rows of the next batch, which this thread will most likely gather (items keep
       their home thread), arrive in its caches while this batch trains: shuffled rows are
       otherwise a wait on memory for every row (docs/performance.md). */
    if (w->next_idx != NULL && r0 < w->next_rows) {
        const size_t ahead = w->next_rows - r0 < m ? w->next_rows - r0 : m;
        fan__dataset_prefetch(w->it->ds, w->next_idx + r0, ahead);
    }
}

static void noise_item(void *arg, size_t phase, size_t item)
{
    (void)phase;
    const batch_work *w = arg;
    const fan_iter *it = w->it;
    const size_t count = it->batch * it->dim, left = count - item * FAN__NORMAL_BLOCK;
    fan__rng_normal_block(it->isa, w->seed, item, &it->tables, it->x,
                          left < FAN__NORMAL_BLOCK ? left : FAN__NORMAL_BLOCK, (float)it->mean,
                          (float)it->std);
}

/* Runs a batch's items through run, or on this thread when run is NULL. */
static void run_items(fan__runner run, void *runner, void (*fn)(void *, size_t, size_t),
                      batch_work *w, size_t items)
{
    if (run != NULL) {
        run(runner, fn, w, &items, 1);
        return;
    }
    for (size_t i = 0; i < items; i++) fn(w, 0, i);
}

static void next_noise(fan_iter *it, fan__runner run, void *runner, const int32_t **labels,
                       const float **targets)
{
    const size_t count = it->batch * it->dim;
    if (it->kind == FAN_NOISE_GAUSSIAN) {
        batch_work w = {it, NULL, 0, 0, NULL, 0, fan__rng_next(&it->input_rng)};
        run_items(run, runner, noise_item, &w, (count + FAN__NORMAL_BLOCK - 1) / FAN__NORMAL_BLOCK);
    } else {
        const double a = SQRT3 * it->std;
        fan__rng_fill_uniform(&it->input_rng, it->x, count, (float)(it->mean - a),
                              (float)(it->mean + a));
    }
    if (it->label_mode == FAN_LABELS_HARD) {
        for (size_t i = 0; i < it->batch; i++)
            it->labels[i] = (int32_t)fan__rng_below(&it->label_rng, (uint64_t)it->classes);
        if (labels) *labels = it->labels;
        if (targets) *targets = NULL;
    } else {
        /* Rewritten every batch: the views are const, but a caller writing through them must
           not change later batches. */
        const float p = 1.0f / (float)it->classes;
        for (size_t i = 0; i < it->batch * it->classes; i++) it->targets[i] = p;
        if (labels) *labels = NULL;
        if (targets) *targets = it->targets;
    }
}

/* Returns the size of the next batch of the epoch, or 0 at its end. */
static size_t next_batch_rows(fan_iter *it)
{
    if (it->at_boundary) {
        /* The order of an epoch is drawn from the stream when the epoch starts, so epochs
           differ and the sequence after creation or reset depends only on the seed. */
        it->epoch_shuffled = it->shuffle;
        it->epoch_rng = it->order_rng;
        if (it->shuffle) {
            for (size_t i = 0; i < it->size; i++) it->perm[i] = i;
            fan__rng_shuffle(&it->order_rng, it->perm, it->size);
        }
        it->at_boundary = 0;
        it->pos = 0;
        it->index = 0;
    }
    const size_t left = it->size - it->pos;
    if (left == 0 || (it->drop_last && left < it->batch)) return 0;
    return left < it->batch ? left : it->batch;
}

fan_status fan__iter_next_on(fan_iter *it, fan__runner run, void *runner, const float **x,
                             const int32_t **labels, const float **targets, size_t *n)
{
    FAN__FAIL_IF(NULL, it == NULL, FAN_E_NULL, "iterator is NULL");
    FAN__FAIL_IF(it->err, x == NULL || n == NULL, FAN_E_NULL, "%s is NULL", x == NULL ? "x" : "n");
    if (it->is_noise) {
        next_noise(it, run, runner, labels, targets);
        it->index++;
        *x = it->x;
        *n = it->batch;
        return FAN_OK;
    }
    if (targets) *targets = NULL;
    const size_t rows = next_batch_rows(it);
    if (rows == 0) {
        it->at_boundary = 1;
        it->epochs++;
        *x = NULL;
        if (labels) *labels = NULL;
        *n = 0;
        return FAN_DONE;
    }
    /* The position advances by the whole global batch, so every shard keeps the same epoch
       bookkeeping; only the rows handed out are this shard's part. */
    size_t off = 0, part = rows;
    if (it->shard_count > 1) shard_part(it, rows, &off, &part);
    batch_work w = {it, it->epoch_shuffled ? it->perm + it->pos + off : NULL, it->pos + off, part,
                    NULL, 0, 0};
    /* The next batch of the epoch starts `rows` further on; this shard's part of it starts at
       about the same offset (only a hint, never read past the epoch's order). */
    const size_t next = it->pos + off + rows;
    if (w.idx != NULL && next < it->size) {
        w.next_idx = it->perm + next;
        w.next_rows = it->size - next < part ? it->size - next : part;
    }
    run_items(run, runner, gather_item, &w, (part + GATHER_ITEM - 1) / GATHER_ITEM);
    it->pos += rows;
    it->index++;
    *x = it->x;
    if (labels) *labels = it->labels;
    *n = part;
    return FAN_OK;
}

fan_status fan_iter_next(fan_iter *it, const float **x, const int32_t **labels,
                         const float **targets, size_t *n)
{
    return fan__iter_next_on(it, NULL, NULL, x, labels, targets, n);
}

fan_status fan_iter_reset(fan_iter *it)
{
    FAN__FAIL_IF(NULL, it == NULL, FAN_E_NULL, "iterator is NULL");
    restart(it);
    return FAN_OK;
}

/* ---- queries ------------------------------------------------------------------------------ */

int fan_iter_is_noise(const fan_iter *it) { return it != NULL && it->is_noise; }

size_t fan_iter_dim(const fan_iter *it) { return it ? it->dim : 0; }

size_t fan_iter_classes(const fan_iter *it) { return it ? it->classes : 0; }

size_t fan_iter_batches_per_epoch(const fan_iter *it)
{
    return it == NULL || it->is_noise ? 0 : batches_for(it, it->size);
}

const fan_dataset *fan__iter_dataset(const fan_iter *it) { return it->is_noise ? NULL : it->ds; }

uint64_t fan_iter_epoch(const fan_iter *it)
{
    if (it == NULL || it->is_noise) return 0;
    /* An epoch whose last batch was returned is finished, though FAN_DONE is still to come: a
       checkpoint written at that step (fan_progress.end_of_epoch) then counts it. */
    return it->epochs + (!it->at_boundary && fan__iter_batches_left(it) == 0);
}

size_t fan__iter_batch_index(const fan_iter *it) { return it->at_boundary ? 0 : it->index; }

size_t fan__iter_batches_left(const fan_iter *it)
{
    if (it->is_noise) return 0;
    return batches_for(it, it->at_boundary ? it->size : it->size - it->pos);
}
