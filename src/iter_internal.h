/*
 * iter_internal.h - what the training loops (train.c) need to know about an iterator's position
 * that the public API does not expose. Owned by iter.c.
 */
#ifndef FAN_ITER_INTERNAL_H
#define FAN_ITER_INTERNAL_H

#include "internal.h"

/**
 * Batches already returned in the current epoch of a batch iterator (0 at an epoch boundary, that
 * is after creation, reset or FAN_DONE); for a noise iterator, batches since creation or reset.
 */
size_t fan__iter_batch_index(const fan_iter *it);
/**
 * Batches a batch iterator still returns before its FAN_DONE (the whole epoch at a boundary);
 * 0 for a noise iterator.
 */
size_t fan__iter_batches_left(const fan_iter *it);

/**
 * Something that runs items as fan__net_parallel does: n_phases phases of items[p] items,
 * fn(ctx, phase, item) each, in any order and on any thread within a phase.
 */
typedef void (*fan__runner)(void *runner, void (*fn)(void *ctx, size_t phase, size_t item),
                            void *ctx, const size_t *items, size_t n_phases);
/**
 * fan_iter_next, with the batch's bulk work (the gather of a batch iterator's rows, the normal
 * noise of a noise iterator) cut into items and run by run(runner, ...); run NULL runs them on
 * the caller's thread. The batch is the same whatever runs the items.
 */
fan_status fan__iter_next_on(fan_iter *it, fan__runner run, void *runner, const float **x,
                             const int32_t **labels, const float **targets, size_t *n);

#endif /* FAN_ITER_INTERNAL_H */
