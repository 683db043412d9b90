/*
 * iter_internal.h - what the training loops (train.c) need to know about an iterator's position
 * that the public API does not expose, and the checkpoint's way to recreate one. Owned by iter.c and iter_state.c.
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
/** Byte of an iterator state blob that holds its kind: 0 batch, 1 noise (docs/file-format.md). */
#define FAN__ITER_STATE_KIND_OFFSET 12u
/**
 * Bytes the iterator a state blob describes would allocate (over ds for a batch iterator), so
 * that a loader can refuse a small input that asks for a huge allocation; 0 for a malformed
 * blob (its parser then says why).
 */
uint64_t fan__iter_state_alloc_bytes(const void *buf, size_t len, const fan_dataset *ds);
/** The dataset a batch iterator runs over; NULL for a noise iterator. */
const fan_dataset *fan__iter_dataset(const fan_iter *it);
/**
 * Creates the iterator a state blob (fan_iter_get_state) describes: a noise iterator from the
 * blob alone, a batch iterator over ds (which must match the blob's dim, classes and sample
 * count). The message of a failure goes to err (may be NULL).
 */
fan_status fan__iter_from_state(fan_iter **out, const void *buf, size_t len,
                                const fan_dataset *ds, const fan_allocator *alloc, char *err);

#endif /* FAN_ITER_INTERNAL_H */
