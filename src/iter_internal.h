/*
 * iter_internal.h - what the training loops (train.c) need to know about an iterator's position
 * that the public API does not expose, and the checkpoint's way to recreate one. Owned by iter.c.
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
