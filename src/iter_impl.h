/*
 * iter_impl.h - the iterator's struct, shared by its own two files: iter.c (construction,
 * settings, the batch streams) and iter_state.c (saved state). Nothing else includes it.
 */
#ifndef FAN_ITER_IMPL_H
#define FAN_ITER_IMPL_H

#include "iter_internal.h"
#include "kernels.h"

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

/* Constructors behind the public ones and fan__iter_from_state; the message goes to err. */
fan_status fan__iter_create_batches(fan_iter **out, const fan_dataset *ds, size_t batch,
                                    uint64_t shuffle_seed, const fan_allocator *alloc, char *err);
fan_status fan__iter_create_noise(fan_iter **out, size_t dim, size_t n_classes, size_t batch,
                                  uint64_t seed, const fan_allocator *alloc, char *err);
/* 1 if a noise mean and std give finite floats for both noise kinds. */
int fan__iter_noise_range_ok(double mean, double std);
/* Rows of the smallest global batch an epoch yields under a drop-last setting. */
size_t fan__iter_smallest_batch(const fan_iter *it, int drop_last);

#endif
