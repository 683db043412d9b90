/*
 * iter.c - batch streams: shuffled epochs of mini-batches over a dataset, and the endless
 * random-noise source of the paper's pretraining (Cheon, Lee, Paik 2024; docs/paper.md, section 3).
 * Both hand out borrowed views into buffers allocated at creation, so that a training loop
 * allocates nothing per step.
 */
#include "byteorder.h"
#include "iter_internal.h"
#include "kernels.h"
#include "options.h"

#include <float.h>
#include <math.h>
#include <string.h>
#include <zlib.h>

/* Inputs and labels of the noise source come from streams of different purposes
   (fan__rng_purpose) so that the labels are independent of the inputs, as the paper requires,
   and so that switching the label mode does not change the inputs that follow. */

/* U[mean - a, mean + a] has standard deviation a / sqrt(3): a = sqrt(3) * std matches it. */
#define SQRT3 1.7320508075688772

struct fan_iter {
    fan_allocator alloc;
    char *err; /* points at err_storage.text; see fan__fail */
    fan__msg err_storage;

    int is_noise;
    size_t dim, classes;
    size_t batch;  /* requested rows per batch */
    uint64_t seed; /* shuffle seed or noise seed */
    float *x;      /* rows x dim: the batch handed out */
    int32_t *labels;
    size_t index;  /* batches returned in the current epoch (noise: since creation or reset) */
    uint64_t epochs; /* epochs finished (FAN_DONE returned) since creation or reset */

    /* Batch iterators. */
    const fan_dataset *ds; /* borrowed */
    size_t size;           /* samples in ds */
    size_t *perm;          /* this epoch's order when epoch_shuffled */
    size_t pos;            /* samples of this epoch already returned */
    int at_boundary;       /* the next call starts an epoch and draws its order */
    int epoch_shuffled;    /* the shuffle setting as it was when this epoch began */
    int drop_last, shuffle;
    fan__rng order_rng;
    fan__rng epoch_rng; /* order_rng before this epoch's permutation was drawn: a saved state
                           redraws the permutation from it instead of storing it */
    /* Sharding: this iterator returns part shard_index of shard_count of every global batch. */
    size_t shard_index, shard_count;

    /* Noise iterators. */
    fan__rng input_rng, label_rng;
    fan__normal_tables tables;
    fan__kernels isa; /* vector width of the bulk generator, chosen at creation (same bits) */
    fan_noise_kind kind;
    fan_label_mode label_mode;
    double mean, std;
    float *targets; /* batch x classes, every entry 1 / classes */
};

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

static fan_status create_batches(fan_iter **out, const fan_dataset *ds, size_t batch,
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
    return create_batches(out, ds, batch, shuffle_seed, alloc, NULL);
}

static fan_status create_noise(fan_iter **out, size_t dim, size_t n_classes, size_t batch,
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
    return create_noise(out, dim, n_classes, batch, seed, alloc, NULL);
}

fan_status fan_iter_create_batches_ex(fan_iter **out, const fan_dataset *ds, size_t batch,
                                      uint64_t shuffle_seed, const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK) st = create_batches(out, ds, batch, shuffle_seed, &o.alloc, o.err);
    return fan__opts_finish(&o, st);
}

fan_status fan_iter_create_noise_ex(fan_iter **out, size_t dim, size_t n_classes, size_t batch,
                                    uint64_t seed, const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK) st = create_noise(out, dim, n_classes, batch, seed, &o.alloc, o.err);
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
static int noise_range_ok(double mean, double std)
{
    return isfinite(mean) && isfinite(std) && std > 0.0 && fabs(mean) + SQRT3 * std < FLT_MAX / 2;
}

/* Rows of the smallest global batch an epoch yields under a drop-last setting: the final partial
   batch when it is kept, else a full one (setting drop-last needs size >= batch). */
static size_t smallest_batch(const fan_iter *it, int drop_last)
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
        FAN__FAIL_IF(it->err, !noise_range_ok(value, it->std), FAN_E_INVALID,
                     "noise mean %g is not finite or too large for float noise", value);
        it->mean = value;
        break;
    case FAN_ITER_NOISE_STD:
        FAN__FAIL_IF(it->err, !noise_range_ok(it->mean, value), FAN_E_INVALID,
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
        FAN__FAIL_IF(it->err, smallest_batch(it, flag) < it->shard_count, FAN_E_INVALID,
                     "a batch of %zu rows cannot be split into %zu non-empty shards",
                     smallest_batch(it, flag), it->shard_count);
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
        FAN__FAIL_IF(it->err, smallest_batch(it, it->drop_last) < v, FAN_E_INVALID,
                     "the smallest batch of an epoch has %zu rows: it cannot be split into %zu "
                     "non-empty shards", smallest_batch(it, it->drop_last), v);
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
        batch_work w = {it, NULL, 0, 0, fan__rng_next(&it->input_rng)};
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
    batch_work w = {it, it->epoch_shuffled ? it->perm + it->pos + off : NULL, it->pos + off, part, 0};
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

/* ---- saved state (docs/file-format.md, "Iterator state") ---------------------------------- */

/* "FANITER" and 0x1a, as the model file's magic. */
static const unsigned char ITER_MAGIC[8] = {'F', 'A', 'N', 'I', 'T', 'E', 'R', 0x1a};
#define ITER_STATE_VERSION 1u
#define ITER_BATCH_BYTES 152u /* whole state of a batch iterator, CRC included */
#define ITER_NOISE_BYTES 156u /* ... of a noise iterator */
/* Flags of a batch iterator's state. */
#define ST_AT_BOUNDARY 1u
#define ST_EPOCH_SHUFFLED 2u
#define ST_DROP_LAST 4u
#define ST_SHUFFLE 8u

/* A state as read, validated against itself but not yet against an iterator. */
typedef struct iter_state {
    int is_noise;
    uint64_t dim, classes, batch, seed, index, epochs;
    uint64_t size, pos; /* batch */
    uint32_t flags;
    fan__rng order_rng, epoch_rng;
    fan_noise_kind kind; /* noise */
    fan_label_mode label_mode;
    double mean, std;
    fan__rng input_rng, label_rng;
} iter_state;

static void w_rng(fan__wcur *w, const fan__rng *r)
{
    for (int k = 0; k < 4; k++) fan__w_u64(w, r->s[k]);
}

static void r_rng(fan__rcur *r, fan__rng *g)
{
    for (int k = 0; k < 4; k++) g->s[k] = fan__r_u64(r);
}

static void iter_encode(const fan_iter *it, fan__wcur *w)
{
    fan__w_bytes(w, ITER_MAGIC, sizeof ITER_MAGIC);
    fan__w_u32(w, ITER_STATE_VERSION);
    fan__w_u32(w, (uint32_t)it->is_noise);
    fan__w_u64(w, it->dim);
    fan__w_u64(w, it->classes);
    fan__w_u64(w, it->batch);
    fan__w_u64(w, it->seed);
    fan__w_u64(w, it->index);
    fan__w_u64(w, it->epochs);
    if (it->is_noise) {
        fan__w_u32(w, (uint32_t)it->kind);
        fan__w_u32(w, (uint32_t)it->label_mode);
        fan__w_f64(w, it->mean);
        fan__w_f64(w, it->std);
        w_rng(w, &it->input_rng);
        w_rng(w, &it->label_rng);
    } else {
        fan__w_u64(w, it->size);
        fan__w_u64(w, it->pos);
        fan__w_u32(w, (it->at_boundary ? ST_AT_BOUNDARY : 0u) |
                          (it->epoch_shuffled ? ST_EPOCH_SHUFFLED : 0u) |
                          (it->drop_last ? ST_DROP_LAST : 0u) | (it->shuffle ? ST_SHUFFLE : 0u));
        w_rng(w, &it->order_rng);
        w_rng(w, &it->epoch_rng);
    }
    if (w->p != NULL)
        fan__put_u32(w->p + w->pos, (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), w->p, w->pos));
    w->pos += 4;
}

fan_status fan_iter_get_state(const fan_iter *it, void *buf, size_t cap, size_t *written)
{
    FAN__FAIL_IF(NULL, it == NULL, FAN_E_NULL, "iterator is NULL");
    FAN__FAIL_IF(it->err, written == NULL, FAN_E_NULL, "written is NULL");
    fan__wcur count = {NULL, 0};
    iter_encode(it, &count);
    *written = count.pos;
    if (buf == NULL) return FAN_OK;
    FAN__FAIL_IF(it->err, cap < count.pos, FAN_E_SHAPE,
                 "buffer of %zu bytes; the iterator's state needs %zu", cap, count.pos);
    fan__wcur w = {buf, 0};
    iter_encode(it, &w);
    return FAN_OK;
}

/* Reads and checks a state on its own: format, checksum, every value in its range. */
static fan_status parse_state(const void *buf, size_t len, iter_state *st, char *err)
{
    memset(st, 0, sizeof *st);
    fan__rcur r = {buf, len, 0, 0};
    const unsigned char *magic = fan__r_take(&r, sizeof ITER_MAGIC);
    const uint32_t version = fan__r_u32(&r), kind = fan__r_u32(&r);
    FAN__FAIL_IF(err, r.over, FAN_E_FORMAT, "%zu bytes is shorter than an iterator state", len);
    FAN__FAIL_IF(err, memcmp(magic, ITER_MAGIC, sizeof ITER_MAGIC) != 0, FAN_E_FORMAT,
                 "not a libfanoise iterator state (bad magic)");
    FAN__FAIL_IF(err, version != ITER_STATE_VERSION, FAN_E_VERSION,
                 "iterator state version %u; this library reads version %u", (unsigned)version,
                 ITER_STATE_VERSION);
    FAN__FAIL_IF(err, kind > 1, FAN_E_FORMAT, "unknown iterator kind %u", (unsigned)kind);
    const size_t need = kind ? ITER_NOISE_BYTES : ITER_BATCH_BYTES;
    FAN__FAIL_IF(err, len != need, FAN_E_FORMAT, "iterator state has %zu bytes; a %s iterator's has %zu",
                 len, kind ? "noise" : "batch", need);
    const uint32_t stored = fan__get_u32((const unsigned char *)buf + len - 4);
    const uint32_t actual = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, len - 4);
    FAN__FAIL_IF(err, stored != actual, FAN_E_CHECKSUM,
                 "iterator state CRC-32 mismatch (stored %08x, computed %08x)", (unsigned)stored,
                 (unsigned)actual);
    st->is_noise = (int)kind;
    st->dim = fan__r_u64(&r);
    st->classes = fan__r_u64(&r);
    st->batch = fan__r_u64(&r);
    st->seed = fan__r_u64(&r);
    st->index = fan__r_u64(&r);
    st->epochs = fan__r_u64(&r);
    FAN__FAIL_IF(err, st->dim == 0 || st->dim > FAN_MAX_WIDTH || st->classes == 0 ||
                          st->classes > FAN_MAX_CLASSES || st->batch == 0 ||
                          st->batch > FAN_MAX_SAMPLES,
                 FAN_E_FORMAT, "iterator state with dim %llu, %llu classes, batch %llu",
                 (unsigned long long)st->dim, (unsigned long long)st->classes,
                 (unsigned long long)st->batch);
    if (kind) {
        st->kind = (fan_noise_kind)fan__r_u32(&r);
        st->label_mode = (fan_label_mode)fan__r_u32(&r);
        st->mean = fan__r_f64(&r);
        st->std = fan__r_f64(&r);
        r_rng(&r, &st->input_rng);
        r_rng(&r, &st->label_rng);
        FAN__FAIL_IF(err, (unsigned)st->kind > 1 || (unsigned)st->label_mode > 1, FAN_E_FORMAT,
                     "unknown noise kind %u or label mode %u", (unsigned)st->kind,
                     (unsigned)st->label_mode);
        FAN__FAIL_IF(err, !noise_range_ok(st->mean, st->std), FAN_E_FORMAT,
                     "noise mean %g / std %g out of range", st->mean, st->std);
        return FAN_OK;
    }
    st->size = fan__r_u64(&r);
    st->pos = fan__r_u64(&r);
    st->flags = fan__r_u32(&r);
    r_rng(&r, &st->order_rng);
    r_rng(&r, &st->epoch_rng);
    FAN__FAIL_IF(err, st->flags > 15u, FAN_E_FORMAT, "unknown iterator flags 0x%x",
                 (unsigned)st->flags);
    FAN__FAIL_IF(err, st->size == 0 || st->size > FAN_MAX_SAMPLES || st->pos > st->size,
                 FAN_E_FORMAT, "position %llu in a dataset of %llu samples",
                 (unsigned long long)st->pos, (unsigned long long)st->size);
    if (!(st->flags & ST_AT_BOUNDARY)) {
        /* Inside an epoch the position follows from the batches returned (both factors are
           at most FAN_MAX_SAMPLES, so the product fits). */
        const uint64_t full = st->index * st->batch;
        const uint64_t expect = full < st->size ? full : st->size;
        FAN__FAIL_IF(err, st->index == 0 || st->index > st->size ||
                              full - st->batch >= st->size || st->pos != expect ||
                              ((st->flags & ST_DROP_LAST) && full > st->size),
                     FAN_E_FORMAT, "position %llu does not follow from %llu batches of %llu",
                     (unsigned long long)st->pos, (unsigned long long)st->index,
                     (unsigned long long)st->batch);
    }
    return FAN_OK;
}

/* The order stream's state after drawing a permutation of n from `from`: what fan__rng_shuffle
   consumes depends on n alone, not on the array. */
static fan__rng after_shuffle(fan__rng from, size_t n)
{
    for (size_t i = n; i > 1; i--) (void)fan__rng_below(&from, (uint64_t)i);
    return from;
}

static int same_rng(const fan__rng *a, const fan__rng *b)
{
    return memcmp(a->s, b->s, sizeof a->s) == 0;
}

/* Checks st against the iterator (nothing is changed on failure), then applies it. */
static fan_status apply_state(fan_iter *it, const iter_state *st)
{
    FAN__FAIL_IF(it->err, st->is_noise != it->is_noise, FAN_E_INVALID,
                 "the state is a %s iterator's; this is a %s iterator",
                 st->is_noise ? "noise" : "batch", it->is_noise ? "noise" : "batch");
    FAN__FAIL_IF(it->err, st->dim != it->dim || st->classes != it->classes ||
                              st->batch != it->batch,
                 FAN_E_SHAPE,
                 "the state is of an iterator of dim %llu, %llu classes, batch %llu; this one "
                 "has dim %zu, %zu classes, batch %zu",
                 (unsigned long long)st->dim, (unsigned long long)st->classes,
                 (unsigned long long)st->batch, it->dim, it->classes, it->batch);
    if (it->is_noise) {
        it->seed = st->seed;
        it->index = (size_t)st->index;
        it->epochs = st->epochs;
        it->kind = st->kind;
        it->label_mode = st->label_mode;
        it->mean = st->mean;
        it->std = st->std;
        it->input_rng = st->input_rng;
        it->label_rng = st->label_rng;
        return FAN_OK;
    }
    FAN__FAIL_IF(it->err, st->size != it->size, FAN_E_SHAPE,
                 "the state is of an iterator over %llu samples; this one's dataset has %zu",
                 (unsigned long long)st->size, it->size);
    const int at_boundary = (st->flags & ST_AT_BOUNDARY) != 0;
    const int shuffled = (st->flags & ST_EPOCH_SHUFFLED) != 0;
    const int drop_last = (st->flags & ST_DROP_LAST) != 0;
    FAN__FAIL_IF(it->err, drop_last && it->size < it->batch, FAN_E_FORMAT,
                 "drop-last is set but %zu samples make no batch of %zu", it->size, it->batch);
    /* Shard settings are the process's own, not part of a state; they must still fit. */
    FAN__FAIL_IF(it->err, smallest_batch(it, drop_last) < it->shard_count, FAN_E_INVALID,
                 "the state's drop-last setting leaves a batch of %zu rows for %zu shards",
                 smallest_batch(it, drop_last), it->shard_count);
    if (!at_boundary) {
        const fan__rng expect = shuffled ? after_shuffle(st->epoch_rng, it->size) : st->epoch_rng;
        FAN__FAIL_IF(it->err, !same_rng(&expect, &st->order_rng), FAN_E_FORMAT,
                     "inconsistent iterator state: the shuffle stream does not follow from the "
                     "epoch's start");
    }
    it->seed = st->seed;
    it->index = (size_t)st->index;
    it->epochs = st->epochs;
    it->pos = (size_t)st->pos;
    it->at_boundary = at_boundary;
    it->epoch_shuffled = shuffled;
    it->drop_last = drop_last;
    it->shuffle = (st->flags & ST_SHUFFLE) != 0;
    it->order_rng = st->order_rng;
    it->epoch_rng = st->epoch_rng;
    if (!at_boundary && shuffled) {
        /* The permutation of the current epoch, drawn again from where it was drawn. */
        fan__rng r = st->epoch_rng;
        for (size_t i = 0; i < it->size; i++) it->perm[i] = i;
        fan__rng_shuffle(&r, it->perm, it->size);
    }
    return FAN_OK;
}

fan_status fan_iter_set_state(fan_iter *it, const void *buf, size_t len)
{
    FAN__FAIL_IF(NULL, it == NULL, FAN_E_NULL, "iterator is NULL");
    FAN__FAIL_IF(it->err, buf == NULL, FAN_E_NULL, "buf is NULL");
    iter_state st;
    FAN__CHECK(parse_state(buf, len, &st, it->err));
    return apply_state(it, &st);
}

uint64_t fan__iter_state_alloc_bytes(const void *buf, size_t len, const fan_dataset *ds)
{
    iter_state st;
    if (parse_state(buf, len, &st, NULL) != FAN_OK) return 0;
    /* Each factor is bounded (FAN_MAX_SAMPLES, FAN_MAX_WIDTH, FAN_MAX_CLASSES): no overflow. */
    if (st.is_noise)
        return st.batch * (st.dim + 1 + st.classes) * sizeof(float);
    const uint64_t size = ds != NULL ? fan_dataset_size(ds) : st.size;
    const uint64_t rows = st.batch < size ? st.batch : size;
    return rows * (st.dim + 1) * sizeof(float) + size * sizeof(size_t);
}

fan_status fan__iter_from_state(fan_iter **out, const void *buf, size_t len,
                                const fan_dataset *ds, const fan_allocator *alloc, char *err)
{
    *out = NULL;
    iter_state st;
    FAN__CHECK(parse_state(buf, len, &st, err));
    fan_iter *it = NULL;
    fan_status s;
    if (st.is_noise) {
        s = create_noise(&it, (size_t)st.dim, (size_t)st.classes, (size_t)st.batch, st.seed,
                         alloc, err);
    } else {
        FAN__FAIL_IF(err, ds == NULL, FAN_E_NULL,
                     "a batch iterator was saved: pass the dataset it ran over");
        FAN__FAIL_IF(err, fan_dataset_dim(ds) != st.dim || fan_dataset_classes(ds) != st.classes,
                     FAN_E_SHAPE,
                     "the saved iterator ran over samples of dim %llu with %llu classes; the "
                     "dataset has dim %zu and %zu classes",
                     (unsigned long long)st.dim, (unsigned long long)st.classes,
                     fan_dataset_dim(ds), fan_dataset_classes(ds));
        s = create_batches(&it, ds, (size_t)st.batch, st.seed, alloc, err);
    }
    if (s != FAN_OK) return s;
    s = apply_state(it, &st);
    if (s != FAN_OK) {
        (void)fan__fail(err, s, "%s", it->err);
        fan_iter_free(it);
        return s;
    }
    *out = it;
    return FAN_OK;
}
