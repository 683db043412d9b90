/*
 * pool.h - a small fixed-size pool of threads owned by one handle (a net's FAN_NET_THREADS).
 * Never installed. The pool has no global state: each handle that wants threads owns one.
 */
#ifndef FAN_POOL_H
#define FAN_POOL_H

#include "internal.h"

/** Work run on every thread of a pool: tid in [0, n_threads), the caller being tid 0. */
typedef void (*fan__pool_fn)(void *ctx, size_t tid, size_t n_threads);

typedef struct fan__pool fan__pool;

/**
 * Starts n - 1 worker threads (2 <= n <= FAN_MAX_THREADS); the calling thread is the n-th in
 * every run. The pool's memory comes from al. Returns FAN_OK, or FAN_E_NOMEM when memory or a
 * thread could not be had (nothing is left running then). Records no message.
 */
fan_status fan__pool_create(fan__pool **out, size_t n, const fan_allocator *al);
/** Stops and joins the workers and frees the pool; NULL is a no-op. No run may be in progress. */
void fan__pool_free(fan__pool *p, const fan_allocator *al);
/** Threads of a run, the caller included. */
size_t fan__pool_size(const fan__pool *p);
/**
 * Runs fn(ctx, tid, n) on all n threads at once and returns when every one has returned. Writes
 * made by any thread before its fn returned are visible to the caller afterwards. Called by one
 * thread at a time (the handle's owner).
 */
void fan__pool_run(fan__pool *p, fan__pool_fn fn, void *ctx);
/**
 * Inside fn: waits until every thread of the run has reached the barrier; writes before it are
 * visible to all threads after it. Every thread must call it the same number of times.
 */
void fan__pool_barrier(fan__pool *p);

#endif /* FAN_POOL_H */
