/* test_threads.c - the threading contract of fanoise.h: distinct handles may be used from
   different threads at once, and concurrent const calls on one handle are safe. Several threads
   each pretrain on noise and train their own net, optimizer and iterators at the same time,
   while all of them also read one shared dataset (borrowed by their iterators) and one shared
   const net (diagnostics, serialisation). The results must equal the same jobs run one after
   another. `make tsan` runs this file under ThreadSanitizer. */
#define _POSIX_C_SOURCE 200809L /* pthreads */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

/* Small enough that OpenBLAS runs every product on the calling thread (its threading threshold
   is far above these sizes), so the summation order, and so the bits, do not depend on load. */
#define N_THREADS 4
#define DIM 16
#define HIDDEN 12
#define CLASSES 4
#define SAMPLES 64
#define BATCH 8
#define NOISE_STEPS 20
#define EPOCHS 10
#define LR 0.01

/* Everything one job produces; the main thread compares these (cmocka asserts only there). */
typedef struct job {
    uint64_t seed;
    const fan_dataset *shared_ds;
    const fan_net *shared_net;
    const char *failed; /* the call that failed, or NULL */
    fan_status status;
    tu_counter counter; /* the job's own allocator: counters are not shared across threads */
    unsigned char *net_bytes;
    size_t net_len;
    double loss, accuracy;     /* of the job's net on the shared dataset */
    double shared_align;       /* a const diagnostic of the shared net */
    double shared_sv[DIM < HIDDEN ? DIM : HIDDEN];
    uint32_t shared_bytes_sum; /* checksum of the shared net's serialisation */
    uint64_t opt_steps;
} job;

#define JOB_CHECK(j, call)                                                                       \
    do {                                                                                         \
        fan_status s_ = (call);                                                                  \
        if (s_ != FAN_OK) {                                                                      \
            (j)->failed = #call;                                                                 \
            (j)->status = s_;                                                                    \
            goto done;                                                                           \
        }                                                                                        \
    } while (0)

static fan_dataset *make_data(uint64_t seed, const fan_allocator *al)
{
    float x[SAMPLES * DIM];
    int32_t y[SAMPLES];
    tu_fill(x, SAMPLES * DIM, seed, -1.0f, 1.0f);
    for (size_t i = 0; i < SAMPLES; i++) {
        y[i] = (int32_t)(i % CLASSES);
        x[i * DIM + (size_t)y[i]] += 3.0f; /* separable classes, so training has a signal */
    }
    fan_dataset *ds = NULL;
    if (fan_dataset_from_arrays(&ds, x, y, SAMPLES, DIM, CLASSES, al) != FAN_OK) return NULL;
    return ds;
}

static void *run_job(void *arg)
{
    job *j = arg;
    fan_allocator al = tu_allocator(&j->counter);
    const size_t sizes[] = {DIM, HIDDEN, CLASSES};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_dataset *own = NULL;
    fan_iter *noise = NULL, *batches = NULL, *shared_batches = NULL;

    JOB_CHECK(j, fan_net_create(&net, sizes, 3, &al));
    JOB_CHECK(j, fan_net_init(net, j->seed, j->seed + 1));
    JOB_CHECK(j, fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, &al));
    JOB_CHECK(j, fan_optimizer_set(opt, FAN_OPT_LR, LR));
    own = make_data(j->seed + 2, &al);
    if (own == NULL) {
        j->failed = "make_data";
        goto done;
    }
    JOB_CHECK(j, fan_iter_create_noise(&noise, DIM, CLASSES, BATCH, j->seed + 3, &al));
    JOB_CHECK(j, fan_iter_create_batches(&batches, own, BATCH, j->seed + 4, &al));
    /* Every job's iterator borrows the same const dataset at the same time. */
    JOB_CHECK(j, fan_iter_create_batches(&shared_batches, j->shared_ds, BATCH, j->seed + 5, &al));

    JOB_CHECK(j, fan_pretrain_noise(net, opt, noise, NOISE_STEPS, NULL, NULL));
    JOB_CHECK(j, fan_train(net, opt, batches, EPOCHS, NULL, NULL));
    JOB_CHECK(j, fan_train(net, opt, shared_batches, 1, NULL, NULL));
    JOB_CHECK(j, fan_net_evaluate(net, j->shared_ds, &j->loss, &j->accuracy));

    /* Const calls on the shared net from every thread at once. */
    JOB_CHECK(j, fan_diag_alignment(j->shared_net, 1, NULL, 0, &j->shared_align, NULL));
    JOB_CHECK(j, fan_diag_singular_values(j->shared_net, 0, FAN_MATRIX_WEIGHTS, j->shared_sv,
                                          sizeof j->shared_sv / sizeof j->shared_sv[0]));
    size_t len = 0;
    JOB_CHECK(j, fan_net_save_mem(j->shared_net, NULL, 0, &len));
    unsigned char *tmp = malloc(len);
    if (tmp == NULL) {
        j->failed = "malloc";
        goto done;
    }
    fan_status s = fan_net_save_mem(j->shared_net, tmp, len, &len);
    for (size_t i = 0; i < len; i++) j->shared_bytes_sum = j->shared_bytes_sum * 31u + tmp[i];
    free(tmp);
    JOB_CHECK(j, s);

    JOB_CHECK(j, fan_net_save_mem(net, NULL, 0, &j->net_len));
    j->net_bytes = malloc(j->net_len);
    if (j->net_bytes == NULL) {
        j->failed = "malloc";
        goto done;
    }
    JOB_CHECK(j, fan_net_save_mem(net, j->net_bytes, j->net_len, &j->net_len));
    j->opt_steps = fan_optimizer_steps(opt);
done:
    fan_iter_free(shared_batches);
    fan_iter_free(batches);
    fan_iter_free(noise);
    fan_dataset_free(own);
    fan_optimizer_free(opt);
    fan_net_free(net);
    return NULL;
}

static void init_jobs(job *jobs, const fan_dataset *ds, const fan_net *net)
{
    memset(jobs, 0, N_THREADS * sizeof *jobs);
    for (size_t i = 0; i < N_THREADS; i++) {
        jobs[i].seed = 1000 * (i + 1);
        jobs[i].shared_ds = ds;
        jobs[i].shared_net = net;
    }
}

static void assert_job_ok(const job *j)
{
    if (j->failed != NULL) {
        print_error("job %llu: %s returned %d (%s)\n", (unsigned long long)j->seed, j->failed,
                    (int)j->status, fan_strerror(j->status));
        fail();
    }
    assert_int_equal(j->counter.live_blocks, 0);
}

static void test_concurrent_jobs_give_the_same_results_as_sequential_ones(void **state)
{
    (void)state;
    /* Const calls that need scratch memory (the diagnostics) take it from the handle's
       allocator, so concurrent const calls on one handle call that allocator concurrently:
       the shared handles use malloc/free, which are thread-safe (tu_counter is not). */
    fan_dataset *shared_ds = make_data(7, NULL);
    assert_non_null(shared_ds);
    const size_t sizes[] = {DIM, HIDDEN, CLASSES};
    fan_net *shared_net = NULL;
    TU_OK(fan_net_create(&shared_net, sizes, 3, NULL));
    size_t before_len = 0;
    TU_OK(fan_net_save_mem(shared_net, NULL, 0, &before_len));
    unsigned char *before = malloc(before_len);
    TU_OK(fan_net_save_mem(shared_net, before, before_len, &before_len));

    job seq[N_THREADS], par[N_THREADS];
    init_jobs(seq, shared_ds, shared_net);
    init_jobs(par, shared_ds, shared_net);
    for (size_t i = 0; i < N_THREADS; i++) run_job(&seq[i]);

    pthread_t th[N_THREADS];
    for (size_t i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, run_job, &par[i]), 0);
    for (size_t i = 0; i < N_THREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);

    for (size_t i = 0; i < N_THREADS; i++) {
        assert_job_ok(&seq[i]);
        assert_job_ok(&par[i]);
        /* Bit-identical nets, losses and diagnostics. */
        assert_int_equal(par[i].net_len, seq[i].net_len);
        assert_memory_equal(par[i].net_bytes, seq[i].net_bytes, seq[i].net_len);
        assert_true(par[i].loss == seq[i].loss && par[i].accuracy == seq[i].accuracy);
        assert_true(par[i].shared_align == seq[0].shared_align);
        assert_memory_equal(par[i].shared_sv, seq[0].shared_sv, sizeof seq[0].shared_sv);
        assert_int_equal(par[i].shared_bytes_sum, seq[0].shared_bytes_sum);
        assert_int_equal(par[i].opt_steps,
                         NOISE_STEPS + (EPOCHS + 1) * (SAMPLES / BATCH));
        /* Training did something: a separable problem is learned well above chance (0.25). */
        if (!(seq[i].accuracy > 0.5)) print_error("accuracy %g\n", seq[i].accuracy);
        assert_true(seq[i].accuracy > 0.5);
        assert_true(isfinite(seq[i].loss));
    }
    /* Different seeds gave different nets, so the equalities above are not trivial. */
    for (size_t i = 1; i < N_THREADS; i++) {
        assert_int_equal(seq[i].net_len, seq[0].net_len);
        assert_true(memcmp(seq[i].net_bytes, seq[0].net_bytes, seq[0].net_len) != 0);
    }
    /* The shared net was only read. */
    unsigned char *after = malloc(before_len);
    size_t after_len = 0;
    TU_OK(fan_net_save_mem(shared_net, after, before_len, &after_len));
    assert_memory_equal(after, before, before_len);

    for (size_t i = 0; i < N_THREADS; i++) {
        free(seq[i].net_bytes);
        free(par[i].net_bytes);
    }
    free(before);
    free(after);
    fan_net_free(shared_net);
    fan_dataset_free(shared_ds);
}

/* Many threads asking for static text at once: the always-safe functions. */
static void *read_static(void *arg)
{
    size_t *bad = arg;
    for (int k = 0; k < 1000; k++) {
        if (fan_strerror(FAN_E_NOMEM)[0] == '\0' || fan_version_string()[0] == '\0' ||
            fan_version_number() != FANOISE_VERSION_NUMBER || fan_net_errmsg(NULL)[0] == '\0')
            (*bad)++;
    }
    return NULL;
}

static void test_static_functions_are_safe_from_many_threads(void **state)
{
    (void)state;
    pthread_t th[N_THREADS];
    size_t bad[N_THREADS] = {0};
    for (size_t i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, read_static, &bad[i]), 0);
    for (size_t i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(bad[i], 0);
    }
}

/* Threads failing at once on one const net: each call records its message on the handle (the
   documented exception to "const changes nothing"). The writes take turns: under
   ThreadSanitizer (make tsan) this test reported a data race before messages had a flag. */
typedef struct failing {
    const fan_net *net;
    size_t wrong_status;
} failing;

static void *fail_on_const_net(void *arg)
{
    failing *f = arg;
    double deg;
    float w[4];
    for (int k = 0; k < 2000; k++) {
        if (fan_diag_alignment(f->net, 99, NULL, 0, &deg, NULL) != FAN_E_INVALID) f->wrong_status++;
        if (fan_net_get_weights(f->net, 0, w, 4, NULL, 0) != FAN_E_SHAPE) f->wrong_status++;
    }
    return NULL;
}

static void test_failing_calls_on_one_const_net_take_turns_with_its_message(void **state)
{
    (void)state;
    const size_t sizes[] = {5, 4, 3};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    pthread_t th[N_THREADS];
    failing f[N_THREADS];
    for (size_t i = 0; i < N_THREADS; i++) {
        f[i] = (failing){net, 0};
        assert_int_equal(pthread_create(&th[i], NULL, fail_on_const_net, &f[i]), 0);
    }
    for (size_t i = 0; i < N_THREADS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(f[i].wrong_status, 0);
    }
    /* The message is one whole message of the two kinds, never a mix. */
    const char *m = fan_net_errmsg(net);
    assert_true(strstr(m, "layer 99 does not exist") == m || strstr(m, "w has length 4") == m);
    fan_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_jobs_give_the_same_results_as_sequential_ones),
        cmocka_unit_test(test_static_functions_are_safe_from_many_threads),
        cmocka_unit_test(test_failing_calls_on_one_const_net_take_turns_with_its_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
