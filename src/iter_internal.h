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

#endif /* FAN_ITER_INTERNAL_H */
