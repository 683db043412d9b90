/*
 * bench_kernels.c - the library's own GEMM kernels against the BLAS at the exact shapes of a
 * training step, and the core's fused multiply-add peak. An internal benchmark (it includes
 * src/kernels.h), built by `make bench-kernels`; bench/run.py uses its JSON for the "% of FMA
 * peak" column.
 *
 *   bench_kernels fma                          FMA peak of one core: GFLOP/s at 256 and 512 bits
 *   bench_kernels step sizes=784,100,10 batch=64   each GEMM of one step under every kernel set
 *   bench_kernels cores                        what sharing work between CPUs 0 and 1 costs: a cache
 *                                              line's trip between them, 100 KB written by one and
 *                                              read by the other, and the pool's own cost per step
 *
 * Times are the minimum over repetitions of the mean over a chunk of calls: on a shared machine
 * the minimum is the figure least disturbed by other processes. Prints one JSON object.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include "kernels.h"
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIZES 16
#define CHUNKS 15
#define CHUNK_SECONDS 0.01

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void fill(float *v, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        v[i] = (float)((double)(s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
}

/* ---- FMA peak -------------------------------------------------------------------------------- */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* Independent accumulator chains: enough to cover the FMA latency (4-5 cycles) times the number
   of FMA pipes (2) on current cores, so the loop is bound by throughput alone. */
#define CHAINS 12

#define FMA_LOOP(T, SET1, FMA, ADD, STORE, LANES)                                                \
    T acc[CHAINS];                                                                               \
    const T x = SET1(1.0000001f), y = SET1(0.9999999f);                                          \
    for (int c = 0; c < CHAINS; c++) acc[c] = SET1((float)c);                                    \
    for (size_t it = 0; it < iters; it++) {                                                      \
        _Pragma("GCC unroll 12") for (int c = 0; c < CHAINS; c++) acc[c] = FMA(acc[c], x, y);    \
    }                                                                                            \
    T s = acc[0];                                                                                \
    for (int c = 1; c < CHAINS; c++) s = ADD(s, acc[c]);                                         \
    float out[LANES];                                                                            \
    STORE(out, s);                                                                               \
    return out[0];

__attribute__((target("avx2,fma"))) static float fma256(size_t iters)
{
    FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8)
}

__attribute__((target("avx512f"))) static float fma512(size_t iters)
{
    FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16)
}

/* GFLOP/s of `lanes`-wide FMAs (2 flops per lane), best of several runs. */
static double fma_rate(float (*f)(size_t), int lanes)
{
    const size_t iters = 2000000;
    double best = 1e30;
    volatile float sink = 0.0f;
    for (int r = 0; r < CHUNKS; r++) {
        const double t0 = now();
        sink += f(iters);
        const double t = now() - t0;
        best = t < best ? t : best;
    }
    (void)sink;
    return (double)iters * CHAINS * lanes * 2.0 / best * 1e-9;
}
#endif

static void run_fma(void)
{
    const fan__kernels k = fan__kernels_supported();
    printf("{\"kind\": \"fma\", \"supported\": \"%s\"", fan__kernels_name(k));
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (k >= FAN__KERNELS_AVX2) printf(", \"fma256_gflops\": %.1f", fma_rate(fma256, 8));
    if (k >= FAN__KERNELS_AVX512) printf(", \"fma512_gflops\": %.1f", fma_rate(fma512, 16));
#endif
    printf("}\n");
}

/* ---- the two cores ----------------------------------------------------------------------- */

#define PINGPONG_ROUNDS 200000
#define SHARED_BYTES (100 * 1024) /* about half a 784-100-10 batch of 64 rows in float */
#define SHARED_ROUNDS 2000
#define POOL_STEPS 20000

/* Reads both copies of each round, so that neither copy is optimised away. */
static volatile unsigned char copies_seen;

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

typedef struct partner {
    atomic_uint turn; /* odd: the partner's move, even: main's */
    unsigned char *buf;
} partner;

/* Answers every odd turn with the next even one: a cache line going back and forth. */
static void *pong(void *arg)
{
    partner *pt = arg;
    if (pin(1) != 0) return NULL;
    for (unsigned i = 0; i < PINGPONG_ROUNDS; i++) {
        while (atomic_load_explicit(&pt->turn, memory_order_acquire) != 2 * i + 1) continue;
        atomic_store_explicit(&pt->turn, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

/* Writes the buffer every odd turn, then hands it over. */
static void *writer(void *arg)
{
    partner *pt = arg;
    if (pin(1) != 0) return NULL;
    for (unsigned r = 0; r < SHARED_ROUNDS; r++) {
        while (atomic_load_explicit(&pt->turn, memory_order_acquire) != 2 * r + 1) continue;
        memset(pt->buf, (int)(r & 0xff), SHARED_BYTES);
        atomic_store_explicit(&pt->turn, 2 * r + 2, memory_order_release);
    }
    return NULL;
}

static void empty_item(void *ctx, size_t phase, size_t item)
{
    (void)phase;
    atomic_fetch_add_explicit((atomic_size_t *)ctx, item, memory_order_relaxed);
}

/* Seconds per step of a pool of two running empty items in the jobs of a 784-100-10 training
   step at batch 64: the gather (4 items), the pass (forward, output, backward: 4, 4 and 5) and
   the update (5). */
static double pool_step(void)
{
    fan_allocator al;
    fan__alloc_init(&al, NULL);
    fan__pool *p = NULL;
    if (fan__pool_create(&p, 2, &al) != FAN_OK) return 0.0;
    atomic_size_t count;
    atomic_init(&count, 0);
    const size_t gather[1] = {4}, pass[3] = {4, 4, 5}, update[1] = {5};
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        const double t0 = now();
        for (int s = 0; s < POOL_STEPS; s++) {
            fan__pool_run(p, empty_item, &count, gather, 1, NULL, 0);
            fan__pool_run(p, empty_item, &count, pass, 3, NULL, 0);
            fan__pool_run(p, empty_item, &count, update, 1, NULL, 0);
        }
        const double t = (now() - t0) / POOL_STEPS;
        best = t < best ? t : best;
    }
    fan__pool_free(p, &al);
    return best;
}

static void run_cores(void)
{
    printf("{\"kind\": \"cores\"");
    partner pt;
    pthread_t th;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || !CPU_ISSET(0, &allowed) ||
        !CPU_ISSET(1, &allowed) || pin(0) != 0) {
        printf(", \"error\": \"cannot run on CPUs 0 and 1\"}\n");
        return;
    }
    atomic_init(&pt.turn, 0);
    if (pthread_create(&th, NULL, pong, &pt) != 0) return;
    double t0 = now();
    for (unsigned i = 0; i < PINGPONG_ROUNDS; i++) {
        atomic_store_explicit(&pt.turn, 2 * i + 1, memory_order_release);
        while (atomic_load_explicit(&pt.turn, memory_order_acquire) != 2 * i + 2) continue;
    }
    const double trip = (now() - t0) / PINGPONG_ROUNDS;
    pthread_join(th, NULL);
    printf(", \"line_one_way_ns\": %.0f", trip / 2 * 1e9);

    pt.buf = aligned_alloc(64, SHARED_BYTES);
    unsigned char *first = aligned_alloc(64, SHARED_BYTES), *again = aligned_alloc(64, SHARED_BYTES);
    if (pt.buf == NULL || first == NULL || again == NULL) {
        free(pt.buf);
        free(first);
        free(again);
        printf("}\n");
        return;
    }
    memset(first, 0, SHARED_BYTES);
    memset(again, 0, SHARED_BYTES);

    atomic_init(&pt.turn, 0);
    if (pthread_create(&th, NULL, writer, &pt) != 0) return;
    double remote = 0.0, local = 0.0;
    for (unsigned r = 0; r < SHARED_ROUNDS; r++) {
        atomic_store_explicit(&pt.turn, 2 * r + 1, memory_order_release);
        while (atomic_load_explicit(&pt.turn, memory_order_acquire) != 2 * r + 2) continue;
        t0 = now();
        memcpy(first, pt.buf, SHARED_BYTES); /* lines the other core just wrote */
        const double t1 = now();
        memcpy(again, pt.buf, SHARED_BYTES); /* the same lines, now in this core's caches */
        remote += t1 - t0;
        local += now() - t1;
        copies_seen ^= (unsigned char)(first[r % SHARED_BYTES] ^ again[(r * 61) % SHARED_BYTES]);
    }
    pthread_join(th, NULL);
    free(pt.buf);
    free(first);
    free(again);
    printf(", \"read_100kb_written_by_other_core_us\": %.2f, \"read_100kb_local_us\": %.2f",
           remote / SHARED_ROUNDS * 1e6, local / SHARED_ROUNDS * 1e6);
    printf(", \"pool_empty_step_us\": %.2f}\n", pool_step() * 1e6);
}

/* ---- GEMMs of one step --------------------------------------------------------------------- */

typedef struct shape {
    const char *op;
    size_t layer;
    int ta, tb;
    size_t m, n, k;
} shape;

/* Minimum over chunks of the mean seconds per call. */
static double time_gemm(fan__kernels kk, const shape *s, const float *a, const float *b, float *c)
{
    const size_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    double best = 1e30;
    for (int w = 0; w < 3; w++) fan__gemm(kk, s->ta, s->tb, s->m, s->n, s->k, a, lda, b, ldb, c, s->n);
    for (int ch = 0; ch < CHUNKS; ch++) {
        size_t calls = 0;
        const double t0 = now();
        double t;
        do {
            fan__gemm(kk, s->ta, s->tb, s->m, s->n, s->k, a, lda, b, ldb, c, s->n);
            calls++;
            t = now() - t0;
        } while (t < CHUNK_SECONDS);
        const double per = t / (double)calls;
        best = per < best ? per : best;
    }
    return best;
}

static void run_step(const size_t *sizes, size_t n_sizes, size_t batch)
{
    shape shapes[3 * MAX_SIZES];
    size_t ns = 0;
    for (size_t l = 0; l + 1 < n_sizes; l++) {
        const size_t in = sizes[l], out = sizes[l + 1];
        shapes[ns++] = (shape){"forward", l, 0, 1, batch, out, in};
        shapes[ns++] = (shape){"weight_grad", l, 1, 0, out, in, batch};
        if (l > 0) shapes[ns++] = (shape){"delta", l, 0, 0, batch, in, out};
    }
    const fan__kernels best = fan__kernels_supported();
    printf("{\"kind\": \"step\", \"batch\": %zu, \"supported\": \"%s\", \"gemms\": [", batch,
           fan__kernels_name(best));
    double total[3] = {0, 0, 0};
    for (size_t i = 0; i < ns; i++) {
        const shape *s = &shapes[i];
        float *a = malloc(s->m * s->k * sizeof *a), *b = malloc(s->k * s->n * sizeof *b);
        float *c = malloc(s->m * s->n * sizeof *c), *ref = malloc(s->m * s->n * sizeof *ref);
        if (!a || !b || !c || !ref) exit(1);
        fill(a, s->m * s->k, 1);
        fill(b, s->k * s->n, 2);
        const size_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
        fan__gemm(FAN__KERNELS_CBLAS, s->ta, s->tb, s->m, s->n, s->k, a, lda, b, ldb, ref, s->n);
        printf("%s{\"op\": \"%s\", \"layer\": %zu, \"m\": %zu, \"n\": %zu, \"k\": %zu", i ? ", " : "",
               s->op, s->layer, s->m, s->n, s->k);
        for (int kk = FAN__KERNELS_CBLAS; kk <= (int)best; kk++) {
            const double sec = time_gemm((fan__kernels)kk, s, a, b, c);
            double err = 0.0;
            for (size_t e = 0; e < s->m * s->n; e++) {
                const double d = fabs((double)c[e] - (double)ref[e]);
                err = d > err ? d : err;
            }
            total[kk] += sec;
            printf(", \"%s_us\": %.2f, \"%s_gflops\": %.1f, \"%s_maxerr\": %.2g",
                   fan__kernels_name((fan__kernels)kk), sec * 1e6,
                   fan__kernels_name((fan__kernels)kk),
                   2.0 * (double)s->m * (double)s->n * (double)s->k / sec * 1e-9,
                   fan__kernels_name((fan__kernels)kk), err);
        }
        printf("}");
        free(a);
        free(b);
        free(c);
        free(ref);
    }
    printf("]");
    for (int kk = FAN__KERNELS_CBLAS; kk <= (int)best; kk++)
        printf(", \"%s_step_us\": %.2f", fan__kernels_name((fan__kernels)kk), total[kk] * 1e6);
    printf("}\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_kernels fma | cores | step [sizes=784,100,10] [batch=64]\n");
        return 2;
    }
    size_t sizes[MAX_SIZES] = {784, 100, 10}, n_sizes = 3, batch = 64;
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "sizes=", 6) == 0) {
            const char *v = argv[i] + 6;
            n_sizes = 0;
            while (*v && n_sizes < MAX_SIZES) {
                char *end;
                sizes[n_sizes++] = (size_t)strtoull(v, &end, 10);
                v = *end == ',' ? end + 1 : end;
            }
        } else if (strncmp(argv[i], "batch=", 6) == 0) {
            batch = (size_t)strtoull(argv[i] + 6, NULL, 10);
        }
    }
    if (strcmp(argv[1], "fma") == 0)
        run_fma();
    else if (strcmp(argv[1], "cores") == 0)
        run_cores();
    else
        run_step(sizes, n_sizes, batch);
    return 0;
}
