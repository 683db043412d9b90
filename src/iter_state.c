/*
 * iter_state.c - an iterator's position as a state blob (fan_iter_get_state/set_state, and the
 * checkpoint's fan__iter_from_state): docs/file-format.md, "Iterator state". A batch iterator's
 * permutation is not stored: it is redrawn from the generator state saved before it was drawn.
 */
#include "byteorder.h"
#include "iter_impl.h"

#include <string.h>
#include <zlib.h>

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
        FAN__FAIL_IF(err, !fan__iter_noise_range_ok(st->mean, st->std), FAN_E_FORMAT,
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
    FAN__FAIL_IF(it->err, fan__iter_smallest_batch(it, drop_last) < it->shard_count, FAN_E_INVALID,
                 "the state's drop-last setting leaves a batch of %zu rows for %zu shards",
                 fan__iter_smallest_batch(it, drop_last), it->shard_count);
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
        s = fan__iter_create_noise(&it, (size_t)st.dim, (size_t)st.classes, (size_t)st.batch, st.seed,
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
        s = fan__iter_create_batches(&it, ds, (size_t)st.batch, st.seed, alloc, err);
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
