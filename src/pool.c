/*
 * pool.c - the threads behind FAN_NET_THREADS.
 *
 * The caller publishes a job's description under a version number (a seqlock: odd while it is
 * being written) and wakes the workers; every thread then goes through the phases, first running
 * the unclaimed items of which it is the home, then any unclaimed item. A thread reads nothing of
 * the caller's but through items it has claimed: homes are part of the description. An item is
 * claimed by writing its phase's epoch into the item's slot; epochs only grow, so a slot claimed in this
 * phase or later refuses the claim. A worker that read a description which has since been
 * replaced can therefore never claim anything: every item of a finished job holds an epoch at
 * least as new as the one it would write. Nobody waits for a thread, only for items in flight.
 *
 * Waiting threads first spin for a short while (a futex wake-up costs tens of microseconds in a
 * virtual machine, a training step a few hundred) and only then sleep on a condition variable: a
 * pool with no work uses no CPU once SPIN_SECONDS have passed.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, pthreads */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* How long a waiting thread polls before it sleeps: longer than the serial work between two
   jobs of a training step, short enough that an idle pool gives its cores back at once. */
#define SPIN_SECONDS 100e-6
/* Polls between two readings of the clock. */
#define SPIN_CHECK 64
/* Counters that one core writes while another polls them sit on cache lines of their own. */
#define CACHE_LINE 64

struct fan__pool {
    size_t n;
    pthread_t threads[FAN_MAX_THREADS];
    struct worker {
        fan__pool *pool;
        size_t tid;
    } workers[FAN_MAX_THREADS];
    size_t started; /* workers created (for cleanup after a failed create) */

    /* Sleeping threads wait on cv under mu; wakers take mu only when someone sleeps. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint sleepers;
    atomic_int stop;

    char pad0[CACHE_LINE];
    uint64_t next_epoch; /* the caller's: epoch of the next job's phase 0 */
    char pad_epoch[CACHE_LINE];
    atomic_uint version; /* of the job description: odd while the caller rewrites it */
    char pad1[CACHE_LINE];
    atomic_size_t done; /* items of the current job that have ended */
    char pad2[CACHE_LINE];

    /* The current job. Atomic, read with relaxed loads inside the seqlock, so that a worker may
       copy it while the caller rewrites it (the version then tells the worker to drop it). */
    _Atomic(fan__pool_task) fn;
    _Atomic(void *) ctx;
    atomic_size_t n_phases, n_segments;
    _Atomic uint64_t epoch;
    atomic_size_t end[FAN__POOL_MAX_PHASES]; /* items of phases 0..p together */
    atomic_size_t segment[FAN__POOL_MAX_SEGMENTS];
    char pad3[CACHE_LINE];

    _Atomic uint64_t claim[FAN__POOL_MAX_ITEMS]; /* epoch of each item slot's last claim */
};

/* A thread's copy of the current job. */
typedef struct job {
    unsigned version;
    fan__pool_task fn;
    void *ctx;
    size_t n_phases, n_segments; /* n_segments 0: one per phase */
    uint64_t epoch;
    size_t end[FAN__POOL_MAX_PHASES];
    size_t segment[FAN__POOL_MAX_SEGMENTS];
} job;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* What a thread waits for: at least `count` items done in the job of `version`, or a job other
   than `version` (for count = 0: only that). */
typedef struct waiting {
    unsigned version;
    size_t count;
} waiting;

static int ready(fan__pool *p, const waiting *w)
{
    /* Stopping ends every wait: a worker may have taken the version bump that announces the
       stop for a job of its own, and would otherwise wait for a version that never comes. */
    if (atomic_load(&p->stop)) return 1;
    if (atomic_load(&p->version) != w->version) return 1;
    return w->count > 0 && atomic_load(&p->done) >= w->count;
}

/* Waits until ready: spins, then sleeps. Whoever makes it hold calls wake(); the sleeper count
   and the conditions are sequentially consistent, so either the waker sees this sleeper and
   broadcasts under mu, or this thread sees the condition hold. */
static void wait_until(fan__pool *p, const waiting *w)
{
    double start = 0.0;
    for (unsigned i = 1;; i++) {
        if (ready(p, w)) return;
        cpu_relax();
        if (i % SPIN_CHECK == 0) {
            const double t = seconds();
            if (start == 0.0)
                start = t;
            else if (t - start > SPIN_SECONDS)
                break;
        }
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (!ready(p, w)) pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
}

static void wake(fan__pool *p)
{
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* Copies the current job description; returns 0 if there is none (version 0 or stopping). */
static int read_job(fan__pool *p, job *j)
{
    for (;;) {
        const unsigned v1 = atomic_load_explicit(&p->version, memory_order_acquire);
        if (v1 & 1u) {
            cpu_relax();
            continue;
        }
        j->fn = atomic_load_explicit(&p->fn, memory_order_relaxed);
        j->ctx = atomic_load_explicit(&p->ctx, memory_order_relaxed);
        j->epoch = atomic_load_explicit(&p->epoch, memory_order_relaxed);
        size_t n = atomic_load_explicit(&p->n_phases, memory_order_relaxed);
        n = n < FAN__POOL_MAX_PHASES ? n : FAN__POOL_MAX_PHASES;
        for (size_t ph = 0; ph < n; ph++)
            j->end[ph] = atomic_load_explicit(&p->end[ph], memory_order_relaxed);
        j->n_phases = n;
        size_t ns = atomic_load_explicit(&p->n_segments, memory_order_relaxed);
        ns = ns < FAN__POOL_MAX_SEGMENTS ? ns : FAN__POOL_MAX_SEGMENTS;
        for (size_t k = 0; k < ns; k++)
            j->segment[k] = atomic_load_explicit(&p->segment[k], memory_order_relaxed);
        j->n_segments = ns;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&p->version, memory_order_relaxed) == v1) {
            j->version = v1;
            return j->fn != NULL;
        }
    }
}

static int claim(fan__pool *p, size_t slot, uint64_t epoch)
{
    uint64_t v = atomic_load_explicit(&p->claim[slot], memory_order_relaxed);
    if (v >= epoch) return 0;
    return atomic_compare_exchange_strong_explicit(&p->claim[slot], &v, epoch,
                                                   memory_order_acq_rel, memory_order_relaxed);
}

/* The home of item i of a phase of `count` items whose segments start at segment[seg] (or that
   is one segment). */
static size_t home_of(const job *j, size_t seg, size_t i, size_t count, size_t n)
{
    if (j->n_segments == 0) return i * n / count;
    size_t start = 0;
    while (seg < j->n_segments && i >= start + j->segment[seg]) start += j->segment[seg++];
    if (seg >= j->n_segments || j->segment[seg] == 0) return 0;
    return (i - start) * n / j->segment[seg];
}

/* Thread `me` takes part in job j until every phase has been gone through, or the job is over. */
static void do_job(fan__pool *p, const job *j, size_t me)
{
    size_t seg = 0; /* first segment of the current phase */
    for (size_t ph = 0; ph < j->n_phases; ph++) {
        const size_t first = ph > 0 ? j->end[ph - 1] : 0, count = j->end[ph] - first;
        const size_t phase_seg = seg;
        if (j->n_segments > 0)
            for (size_t covered = 0; covered < count && seg < j->n_segments;) covered += j->segment[seg++];
        /* Every item of the earlier phases must have ended, not merely been claimed. */
        const waiting w = {j->version, first};
        if (first > 0 && !ready(p, &w)) wait_until(p, &w);
        if (atomic_load(&p->version) != j->version) return;
        const uint64_t epoch = j->epoch + ph;
        for (int steal = 0; steal < 2; steal++) {
            for (size_t i = 0; i < count; i++) {
                if (!steal && home_of(j, phase_seg, i, count, p->n) != me) continue;
                if (!claim(p, i, epoch)) continue;
                j->fn(j->ctx, ph, i);
                /* Once this item is counted the job may end and the caller rewrite it: nothing
                   of the job is read after this line but the local copy. */
                if (atomic_fetch_add(&p->done, 1) + 1 == j->end[ph]) wake(p);
            }
        }
    }
}

static void *worker_main(void *arg)
{
    const struct worker *wk = arg;
    fan__pool *p = wk->pool;
    unsigned seen = 0;
    for (;;) {
        const waiting w = {seen, 0};
        if (!ready(p, &w)) wait_until(p, &w);
        if (atomic_load(&p->stop)) return NULL;
        job j;
        const int have = read_job(p, &j);
        seen = j.version;
        if (have) do_job(p, &j, wk->tid);
    }
}

size_t fan__pool_size(const fan__pool *p) { return p != NULL ? p->n : 1; }

void fan__pool_run(fan__pool *p, fan__pool_task fn, void *ctx, const size_t *items,
                   size_t n_phases, const size_t *segments, size_t n_segments)
{
    if (p == NULL) {
        for (size_t ph = 0; ph < n_phases; ph++)
            for (size_t i = 0; i < items[ph]; i++) fn(ctx, ph, i);
        return;
    }
    job j;
    j.fn = fn;
    j.ctx = ctx;
    j.n_phases = n_phases;
    j.n_segments = segments != NULL ? n_segments : 0;
    for (size_t k = 0; k < j.n_segments; k++) j.segment[k] = segments[k];
    j.epoch = p->next_epoch;
    size_t total = 0;
    for (size_t ph = 0; ph < n_phases; ph++) {
        total += items[ph];
        j.end[ph] = total;
    }
    if (total == 0) return;
    p->next_epoch += n_phases;
    /* Publish: odd version, the description, then the next even version. */
    const unsigned v = atomic_load_explicit(&p->version, memory_order_relaxed);
    atomic_store_explicit(&p->version, v + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&p->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&p->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&p->n_segments, j.n_segments, memory_order_relaxed);
    for (size_t k = 0; k < j.n_segments; k++)
        atomic_store_explicit(&p->segment[k], j.segment[k], memory_order_relaxed);
    atomic_store_explicit(&p->epoch, j.epoch, memory_order_relaxed);
    atomic_store_explicit(&p->n_phases, n_phases, memory_order_relaxed);
    for (size_t ph = 0; ph < n_phases; ph++)
        atomic_store_explicit(&p->end[ph], j.end[ph], memory_order_relaxed);
    /* The last job's items have all ended, so nothing else touches the counter now. */
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    j.version = v + 2;
    atomic_store(&p->version, v + 2);
    wake(p);
    do_job(p, &j, 0);
    const waiting w = {j.version, total};
    if (!ready(p, &w)) wait_until(p, &w);
}

fan_status fan__pool_create(fan__pool **out, size_t n, const fan_allocator *al)
{
    *out = NULL;
    fan__pool *p = fan__calloc(al, 1, sizeof *p);
    if (p == NULL) return FAN_E_NOMEM;
    p->n = n;
    p->next_epoch = 1; /* item slots start at 0: claimable */
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->version, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    atomic_init(&p->n_phases, 0);
    atomic_init(&p->n_segments, 0);
    for (size_t k = 0; k < FAN__POOL_MAX_SEGMENTS; k++) atomic_init(&p->segment[k], 0);
    atomic_init(&p->epoch, 0);
    for (size_t ph = 0; ph < FAN__POOL_MAX_PHASES; ph++) atomic_init(&p->end[ph], 0);
    for (size_t i = 0; i < FAN__POOL_MAX_ITEMS; i++) atomic_init(&p->claim[i], 0);
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        fan__free(al, p);
        return FAN_E_NOMEM;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        fan__free(al, p);
        return FAN_E_NOMEM;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        p->workers[i].pool = p;
        p->workers[i].tid = i + 1;
        if (pthread_create(&p->threads[i], NULL, worker_main, &p->workers[i]) != 0) {
            fan__pool_free(p, al);
            return FAN_E_NOMEM;
        }
        p->started++;
    }
    *out = p;
    return FAN_OK;
}

void fan__pool_free(fan__pool *p, const fan_allocator *al)
{
    if (p == NULL) return;
    atomic_store(&p->stop, 1);
    /* A new even version: waiting workers wake, see stop, and leave. */
    atomic_fetch_add(&p->version, 2);
    wake(p);
    for (size_t i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    fan__free(al, p);
}
