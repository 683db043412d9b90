/*
 * pool.h - a small fixed-size pool of threads owned by one handle (a net's FAN_NET_THREADS).
 * Never installed. The pool has no global state: each handle that wants threads owns one.
 *
 * Work comes as a job: a sequence of phases, each a number of independent items. Every item of a
 * phase ends before any item of the next phase begins. Each item has a home thread, which runs
 * it unless it is still unclaimed when another thread has run out of its own: giving the items
 * that touch the same data the same home keeps that data in one core's caches from step to step,
 * and a thread the OS has not scheduled holds nothing up, since the others take its items. Homes
 * come from segments: a phase's items are cut into consecutive segments, and each segment's
 * items are dealt out over the threads in order, a run of consecutive items per thread. What an
 * item computes must not depend on which thread runs it.
 */
#ifndef FAN_POOL_H
#define FAN_POOL_H

#include "internal.h"

/** Phases per job: a net's training pass uses at most 3 * FAN_MAX_LAYERS + 1. */
#define FAN__POOL_MAX_PHASES (3 * FAN_MAX_LAYERS + 2)
/** Items per phase. */
#define FAN__POOL_MAX_ITEMS 4096
/** Segments per job: a net's training pass uses at most 4 * FAN_MAX_LAYERS. */
#define FAN__POOL_MAX_SEGMENTS (4 * FAN_MAX_LAYERS + 8)

/** One item of a job: item `item` (from 0) of phase `phase`. */
typedef void (*fan__pool_task)(void *ctx, size_t phase, size_t item);

typedef struct fan__pool fan__pool;

/**
 * Starts n - 1 worker threads (2 <= n <= FAN_MAX_THREADS); the calling thread is thread 0 of
 * every job. The pool's memory comes from al. Returns FAN_OK, or FAN_E_NOMEM when memory or a
 * thread could not be had (nothing is left running then). Records no message.
 */
fan_status fan__pool_create(fan__pool **out, size_t n, const fan_allocator *al);
/** Stops and joins the workers and frees the pool; NULL is a no-op. No job may be running. */
void fan__pool_free(fan__pool *p, const fan_allocator *al);
/** Threads of the pool, the caller included; 1 for NULL. */
size_t fan__pool_size(const fan__pool *p);
/**
 * Runs a job of n_phases phases (<= FAN__POOL_MAX_PHASES), phase p having items[p] items
 * (<= FAN__POOL_MAX_ITEMS, 0 allowed), and returns when every item has run. segments lists the
 * sizes of the segments of phase 0, then phase 1, ... (n_segments <= FAN__POOL_MAX_SEGMENTS in
 * all; each phase's add up to its items); NULL makes each phase one segment. With p NULL the
 * caller runs the items itself, in order. Writes made by an item are visible to the items of
 * later phases and to the caller afterwards. Called by one thread at a time.
 */
void fan__pool_run(fan__pool *p, fan__pool_task fn, void *ctx, const size_t *items,
                   size_t n_phases, const size_t *segments, size_t n_segments);

#endif /* FAN_POOL_H */
