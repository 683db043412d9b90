/*
 * pool.h - a small fixed-size pool of threads owned by one handle (a net's FAN_NET_THREADS).
 * Never installed. The pool has no global state: each handle that wants threads owns one.
 *
 * Work comes as a job: a sequence of phases, each a number of independent items. Any thread
 * runs any item; every item of a phase ends before any item of the next phase begins. Threads
 * claim items one at a time, so a thread that the OS has not scheduled yet holds nothing up: the
 * others take its share. What an item computes must not depend on which thread runs it.
 */
#ifndef FAN_POOL_H
#define FAN_POOL_H

#include "internal.h"

/** Phases per job: the passes of a net use at most 2 * FAN_MAX_LAYERS + 1. */
#define FAN__POOL_MAX_PHASES (2 * FAN_MAX_LAYERS + 2)
/** Items per job, all phases together. */
#define FAN__POOL_MAX_ITEMS ((size_t)1 << 20)

/** One item of a job: item `item` (from 0) of phase `phase`. */
typedef void (*fan__pool_task)(void *ctx, size_t phase, size_t item);

typedef struct fan__pool fan__pool;

/**
 * Starts n - 1 worker threads (2 <= n <= FAN_MAX_THREADS); the calling thread is the n-th in
 * every job. The pool's memory comes from al. Returns FAN_OK, or FAN_E_NOMEM when memory or a
 * thread could not be had (nothing is left running then). Records no message.
 */
fan_status fan__pool_create(fan__pool **out, size_t n, const fan_allocator *al);
/** Stops and joins the workers and frees the pool; NULL is a no-op. No job may be running. */
void fan__pool_free(fan__pool *p, const fan_allocator *al);
/**
 * Runs a job of n_phases phases (<= FAN__POOL_MAX_PHASES), phase p having items[p] items (0 is
 * allowed; FAN__POOL_MAX_ITEMS in all at most), and returns when every item has run. With p NULL
 * the caller runs the items itself, in order. Writes made by an item are visible to the items
 * of later phases and to the caller afterwards. Called by one thread at a time.
 */
void fan__pool_run(fan__pool *p, fan__pool_task fn, void *ctx, const size_t *items,
                   size_t n_phases);

#endif /* FAN_POOL_H */
