/*
 * pool.c - the threads behind FAN_NET_THREADS. Workers wait for a run, run one piece of it, and
 * meet at barriers. A training step is a few hundred microseconds with two to four barriers, so
 * waiting threads first spin for a short while (a futex wake-up costs tens of microseconds in a
 * virtual machine) and only then sleep on a condition variable: a pool that is not running work
 * uses no CPU once SPIN_SECONDS have passed.
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

    /* The current run: fn and ctx are written by the caller before it bumps job (a release
       store), and read by workers after they see the new value (an acquire load). */
    fan__pool_fn fn;
    void *ctx;
    atomic_uint job;
    atomic_int stop;

    /* Barrier: arrivals counted in `arrived`; the last one resets it and bumps `phase`. */
    atomic_size_t arrived;
    atomic_uint phase;
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

/* Returns once *word differs from old. */
static void wait_change(fan__pool *p, atomic_uint *word, unsigned old)
{
    double start = 0.0;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(word, memory_order_acquire) != old) return;
        cpu_relax();
        if (i % SPIN_CHECK == 0) {
            const double t = seconds();
            if (start == 0.0)
                start = t;
            else if (t - start > SPIN_SECONDS)
                break;
        }
    }
    /* Sleep. The sleeper count and the word are both sequentially consistent, so either the
       waker sees this sleeper and broadcasts under mu, or this thread sees the new value. */
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    while (atomic_load(word) == old) pthread_cond_wait(&p->cv, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
}

static void publish(fan__pool *p, atomic_uint *word, unsigned value)
{
    atomic_store(word, value);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

void fan__pool_barrier(fan__pool *p)
{
    const unsigned phase = atomic_load_explicit(&p->phase, memory_order_acquire);
    if (atomic_fetch_add_explicit(&p->arrived, 1, memory_order_acq_rel) + 1 == p->n) {
        atomic_store_explicit(&p->arrived, 0, memory_order_relaxed);
        publish(p, &p->phase, phase + 1);
    } else {
        wait_change(p, &p->phase, phase);
    }
}

static void *worker_main(void *arg)
{
    const struct worker *w = arg;
    fan__pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        wait_change(p, &p->job, seen);
        seen = atomic_load_explicit(&p->job, memory_order_acquire);
        if (atomic_load(&p->stop)) return NULL;
        p->fn(p->ctx, w->tid, p->n);
        fan__pool_barrier(p);
    }
}

size_t fan__pool_size(const fan__pool *p) { return p->n; }

void fan__pool_run(fan__pool *p, fan__pool_fn fn, void *ctx)
{
    p->fn = fn;
    p->ctx = ctx;
    publish(p, &p->job, atomic_load_explicit(&p->job, memory_order_relaxed) + 1);
    fn(ctx, 0, p->n);
    fan__pool_barrier(p);
}

static void stop_workers(fan__pool *p)
{
    atomic_store(&p->stop, 1);
    publish(p, &p->job, atomic_load(&p->job) + 1);
    for (size_t i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
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
    atomic_init(&p->arrived, 0);
    atomic_init(&p->phase, 0);
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
    stop_workers(p);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    fan__free(al, p);
}
