/*
 * pool.c - the threads behind FAN_NET_THREADS.
 *
 * A job's items are claimed through one atomic ticket holding the job's number, its item count
 * and the next unclaimed item; a thread that claims an item has the job to itself until it
 * reports the item done, so the job's description stays valid for exactly as long as it is read.
 * Nobody waits for a thread, only for items in flight: on a machine whose cores are shared with
 * other programs, a worker the OS has not scheduled simply gets fewer items (with barriers, every
 * descheduled worker would stall every step by a time slice).
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
   steps of training (fetching the next batch, ~10 us), short enough that an idle pool gives its
   cores back at once. */
#define SPIN_SECONDS 100e-6
/* Polls between two readings of the clock. */
#define SPIN_CHECK 64

/* The ticket: job number (24 bits) | item count (20 bits) | next item (20 bits). */
#define ITEM_BITS 20
#define ITEM_MASK (((uint64_t)1 << ITEM_BITS) - 1)
#define JOB_MASK ((1u << 24) - 1)
#define TICKET(job, total, next)                                                                 \
    (((uint64_t)(job) << (2 * ITEM_BITS)) | ((uint64_t)(total) << ITEM_BITS) | (uint64_t)(next))
#define TICKET_JOB(t) ((unsigned)((t) >> (2 * ITEM_BITS)) & JOB_MASK)
#define TICKET_TOTAL(t) ((size_t)(((t) >> ITEM_BITS) & ITEM_MASK))
#define TICKET_NEXT(t) ((size_t)((t)&ITEM_MASK))

struct fan__pool {
    size_t n;
    pthread_t threads[FAN_MAX_THREADS];
    struct worker {
        fan__pool *pool;
    } workers[FAN_MAX_THREADS];
    size_t started; /* workers created (for cleanup after a failed create) */

    /* Sleeping threads wait on cv under mu; wakers take mu only when someone sleeps. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint sleepers;

    atomic_uint job; /* bumped to start a job (or to stop) */
    atomic_int stop;
    _Atomic uint64_t ticket;
    atomic_size_t done; /* items of the current job that have ended */

    /* The current job: written by the caller before it publishes the ticket, read by a thread
       only after it has claimed one of its items. */
    unsigned number;
    fan__pool_task fn;
    void *ctx;
    size_t n_phases;
    size_t end[FAN__POOL_MAX_PHASES]; /* items of phases 0..p together */
};

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

/* Spins until ready(p, arg) holds or SPIN_SECONDS pass; returns whether it holds. */
static int spin_until(fan__pool *p, int (*ready)(fan__pool *, uintptr_t), uintptr_t arg)
{
    double start = 0.0;
    for (unsigned i = 1;; i++) {
        if (ready(p, arg)) return 1;
        cpu_relax();
        if (i % SPIN_CHECK == 0) {
            const double t = seconds();
            if (start == 0.0)
                start = t;
            else if (t - start > SPIN_SECONDS)
                return 0;
        }
    }
}

/* Waits until ready(p, arg) holds: spins, then sleeps. Whoever makes it hold calls wake(); the
   sleeper count and the conditions are sequentially consistent, so either the waker sees this
   sleeper and broadcasts under mu, or this thread sees the condition hold. */
static void wait_until(fan__pool *p, int (*ready)(fan__pool *, uintptr_t), uintptr_t arg)
{
    if (spin_until(p, ready, arg)) return;
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (!ready(p, arg)) pthread_cond_wait(&p->cv, &p->mu);
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

static int job_changed(fan__pool *p, uintptr_t seen) { return atomic_load(&p->job) != seen; }
static int items_done(fan__pool *p, uintptr_t count) { return atomic_load(&p->done) >= count; }

/* Runs item `idx` of the current job, which the caller has claimed. */
static void run_item(fan__pool *p, size_t idx)
{
    size_t phase = 0;
    while (idx >= p->end[phase]) phase++;
    const size_t first = phase > 0 ? p->end[phase - 1] : 0;
    /* Items are claimed in order, so every item of the earlier phases is claimed: wait for
       those still running. */
    if (!items_done(p, first)) wait_until(p, items_done, first);
    const size_t last = p->end[phase];
    p->fn(p->ctx, phase, idx - first);
    /* Once this item is counted the job may end and the caller rewrite it: nothing of the job
       is read after this line. */
    if (atomic_fetch_add(&p->done, 1) + 1 == last) wake(p); /* someone may wait for the phase */
}

/* Claims and runs items of job `job` until none is left. */
static void work(fan__pool *p, unsigned job)
{
    for (;;) {
        uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
        if (TICKET_JOB(t) != job || TICKET_NEXT(t) >= TICKET_TOTAL(t)) return;
        if (atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            run_item(p, TICKET_NEXT(t));
    }
}

static void *worker_main(void *arg)
{
    fan__pool *p = ((const struct worker *)arg)->pool;
    unsigned seen = 0;
    for (;;) {
        if (!job_changed(p, seen)) wait_until(p, job_changed, seen);
        seen = atomic_load(&p->job);
        if (atomic_load(&p->stop)) return NULL;
        work(p, seen & JOB_MASK);
    }
}

void fan__pool_run(fan__pool *p, fan__pool_task fn, void *ctx, const size_t *items,
                   size_t n_phases)
{
    if (p == NULL) {
        for (size_t ph = 0; ph < n_phases; ph++)
            for (size_t i = 0; i < items[ph]; i++) fn(ctx, ph, i);
        return;
    }
    size_t total = 0;
    for (size_t ph = 0; ph < n_phases; ph++) {
        total += items[ph];
        p->end[ph] = total;
    }
    if (total == 0) return;
    p->fn = fn;
    p->ctx = ctx;
    p->n_phases = n_phases;
    /* The last job's items have all ended (and nothing runs between jobs), so nothing can
       touch the counter while it is reset. */
    atomic_store(&p->done, 0);
    p->number = (p->number + 1) & JOB_MASK;
    atomic_store_explicit(&p->ticket, TICKET(p->number, total, 0), memory_order_release);
    atomic_store(&p->job, p->number);
    wake(p);
    work(p, p->number);
    if (!items_done(p, total)) wait_until(p, items_done, total);
}

fan_status fan__pool_create(fan__pool **out, size_t n, const fan_allocator *al)
{
    *out = NULL;
    fan__pool *p = fan__calloc(al, 1, sizeof *p);
    if (p == NULL) return FAN_E_NOMEM;
    p->n = n;
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->job, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->ticket, TICKET(0, 0, 0));
    atomic_init(&p->done, 0);
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
    /* A new job number that no ticket carries: workers wake, see stop, and leave. */
    atomic_store(&p->job, (p->number + 1) & JOB_MASK);
    wake(p);
    for (size_t i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    fan__free(al, p);
}
