/* test_threads.c - the threading contract of fanoise.h: distinct handles may be used from
   different threads at once, and concurrent const calls on one handle are safe. Several threads
   each pretrain on noise and train their own net, optimizer and iterators at the same time,
   while all of them also read one shared dataset (borrowed by their iterators) and one shared
   const net (diagnostics, serialisation). The results must equal the same jobs run one after
   another. Then a net's own threads (FAN_NET_THREADS): results repeat bit for bit at a given
   count, match one thread within float rounding under every rule and kernel set (bit for bit on
   the library's own kernels), and steps allocate nothing. `make tsan` runs this file under
   ThreadSanitizer. */
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
#include "iter_internal.h"
#include "kernels.h"
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


/* ---- a net's own threads (FAN_NET_THREADS) --------------------------------------------------- */

/* Shapes that cut the batch and the columns at ragged places for 2, 3 and 4 threads (rows go in
   twelves, columns in sixteens), with a 5-output layer that leaves some threads no columns. */
#define T_IN 40
#define T_H1 35
#define T_H2 18
#define T_OUT 5
#define T_ROWS 50
#define T_BATCH 23
#define T_STEPS 6

typedef struct run_result {
    unsigned char *bytes; /* the saved net */
    size_t len;
    float loss;
    double eval_loss, eval_acc, loss_value;
    float probs[T_ROWS * T_OUT];
} run_result;

static fan_dataset *thread_data(void)
{
    float x[T_ROWS * T_IN];
    int32_t y[T_ROWS];
    tu_fill(x, T_ROWS * T_IN, 77, -1.0f, 1.0f);
    for (size_t i = 0; i < T_ROWS; i++) {
        y[i] = (int32_t)(i % T_OUT);
        x[i * T_IN + (size_t)y[i]] += 2.0f;
    }
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, y, T_ROWS, T_IN, T_OUT, NULL));
    return ds;
}

/* Trains a fresh net of `rule` with `threads` threads (and kernel set `ks`) on data and on noise
   with Adam, then runs every inference call. */
static void thread_run(fan_rule rule, fan_loss loss, size_t threads, fan__kernels ks,
                       const fan_dataset *ds, run_result *out)
{
    const size_t sizes[] = {T_IN, T_H1, T_H2, T_OUT};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL, *noise = NULL;
    TU_OK(fan_net_create(&net, sizes, 4, NULL));
    fan__net_set_kernels(net, ks);
    TU_OK_NET(net, fan_net_set_rule(net, rule));
    TU_OK_NET(net, fan_net_set_loss(net, loss));
    TU_OK_NET(net, fan_net_set_activation(net, 1, FAN_ACT_TANH));
    TU_OK_NET(net, fan_net_set(net, FAN_NET_THREADS, (double)threads));
    TU_OK_NET(net, fan_net_init(net, 8, 9));
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, 0.01));
    TU_OK(fan_iter_create_batches(&it, ds, T_BATCH, 3, NULL));
    TU_OK(fan_iter_create_noise(&noise, T_IN, T_OUT, T_BATCH, 4, NULL));
    TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, T_STEPS, NULL, NULL));
    TU_OK_NET(net, fan_train(net, opt, it, 2, NULL, NULL));
    float x[T_ROWS * T_IN];
    int32_t y[T_ROWS];
    tu_fill(x, T_ROWS * T_IN, 78, -1.0f, 1.0f);
    for (size_t i = 0; i < T_ROWS; i++) y[i] = (int32_t)((i * 3) % T_OUT);
    TU_OK_NET(net, fan_net_train_batch(net, opt, x, y, T_ROWS, &out->loss));
    TU_OK_NET(net, fan_net_evaluate(net, ds, &out->eval_loss, &out->eval_acc));
    TU_OK_NET(net, fan_net_loss_value(net, x, y, T_ROWS, &out->loss_value));
    TU_OK_NET(net, fan_net_forward(net, x, T_ROWS, out->probs, T_ROWS * T_OUT));
    TU_OK(fan_net_save_mem(net, NULL, 0, &out->len));
    out->bytes = malloc(out->len);
    assert_non_null(out->bytes);
    TU_OK(fan_net_save_mem(net, out->bytes, out->len, &out->len));
    fan_iter_free(noise);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void assert_runs_close(const run_result *a, const run_result *b, double tol)
{
    const size_t sizes[] = {T_IN, T_H1, T_H2, T_OUT};
    fan_net *na = NULL, *nb = NULL;
    TU_OK(fan_net_load_mem(&na, a->bytes, a->len, NULL));
    TU_OK(fan_net_load_mem(&nb, b->bytes, b->len, NULL));
    float wa[T_IN * T_H1], wb[T_IN * T_H1];
    for (size_t l = 0; l < 3; l++) {
        const size_t len = sizes[l] * sizes[l + 1];
        TU_OK(fan_net_get_weights(na, l, wa, len, NULL, 0));
        TU_OK(fan_net_get_weights(nb, l, wb, len, NULL, 0));
        for (size_t i = 0; i < len; i++) TU_CLOSE(wa[i], wb[i], tol, tol);
    }
    TU_CLOSE(a->loss, b->loss, tol, tol);
    TU_CLOSE(a->eval_loss, b->eval_loss, tol, tol);
    TU_CLOSE(a->loss_value, b->loss_value, tol, tol);
    for (size_t i = 0; i < T_ROWS * T_OUT; i++) TU_CLOSE(a->probs[i], b->probs[i], tol, tol);
    fan_net_free(na);
    fan_net_free(nb);
}

static int runs_identical(const run_result *a, const run_result *b)
{
    return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0 && a->loss == b->loss &&
           a->eval_loss == b->eval_loss && a->eval_acc == b->eval_acc &&
           a->loss_value == b->loss_value && memcmp(a->probs, b->probs, sizeof a->probs) == 0;
}

static void test_thread_count_is_a_net_setting_with_default_one(void **state)
{
    (void)state;
    const size_t sizes[] = {3, 2};
    fan_net *net = NULL, *copy = NULL;
    double v = 0.0;
    TU_OK(fan_net_create(&net, sizes, 2, NULL));
    TU_OK(fan_net_get(net, FAN_NET_THREADS, &v));
    assert_true(v == 1.0);
    TU_OK(fan_net_set(net, FAN_NET_THREADS, 3.0));
    TU_OK(fan_net_get(net, FAN_NET_THREADS, &v));
    assert_true(v == 3.0);
    TU_OK(fan_net_clone(&copy, net));
    TU_OK(fan_net_get(copy, FAN_NET_THREADS, &v));
    assert_true(v == 3.0);
    /* Not part of the model: a loaded net runs on one thread until told otherwise. */
    size_t len = 0;
    TU_OK(fan_net_save_mem(net, NULL, 0, &len));
    unsigned char *buf = malloc(len);
    TU_OK(fan_net_save_mem(net, buf, len, &len));
    fan_net *back = NULL;
    TU_OK(fan_net_load_mem(&back, buf, len, NULL));
    TU_OK(fan_net_get(back, FAN_NET_THREADS, &v));
    assert_true(v == 1.0);
    free(buf);
    fan_net_free(back);
    fan_net_free(copy);
    fan_net_free(net);
}

static void test_threaded_training_repeats_bit_for_bit(void **state)
{
    (void)state;
    fan_dataset *ds = thread_data();
    for (size_t threads = 2; threads <= 3; threads++) {
        run_result a, b;
        thread_run(FAN_RULE_FA, FAN_LOSS_CROSS_ENTROPY, threads, fan__kernels_supported(), ds, &a);
        thread_run(FAN_RULE_FA, FAN_LOSS_CROSS_ENTROPY, threads, fan__kernels_supported(), ds, &b);
        assert_true(runs_identical(&a, &b));
        free(a.bytes);
        free(b.bytes);
    }
    fan_dataset_free(ds);
}

/* Every rule, both losses, the CBLAS path and the library's own kernels: 2 and 4 threads against
   one. On the library's own kernels nothing depends on the split, so the bits match too. */
static void test_threads_match_one_thread_under_every_rule_and_kernel_set(void **state)
{
    (void)state;
    static const fan_rule rules[] = {FAN_RULE_BP, FAN_RULE_FA, FAN_RULE_DFA, FAN_RULE_USF,
                                     FAN_RULE_BRSF, FAN_RULE_FRSF, FAN_RULE_KP, FAN_RULE_WM};
    fan_dataset *ds = thread_data();
    const fan__kernels top = fan__kernels_supported();
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        for (int k = FAN__KERNELS_CBLAS; k <= (int)top; k++) {
            const fan_loss loss = r % 2 ? FAN_LOSS_MSE : FAN_LOSS_CROSS_ENTROPY;
            run_result one, many;
            thread_run(rules[r], loss, 1, (fan__kernels)k, ds, &one);
            for (size_t threads = 2; threads <= 4; threads += 2) {
                thread_run(rules[r], loss, threads, (fan__kernels)k, ds, &many);
                assert_runs_close(&one, &many, 1e-4);
                if (k != FAN__KERNELS_CBLAS) assert_true(runs_identical(&one, &many));
                free(many.bytes);
            }
            free(one.bytes);
        }
    }
    fan_dataset_free(ds);
}

static void test_threaded_steps_allocate_nothing_and_free_everything(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    const size_t sizes[] = {T_IN, T_H1, T_OUT};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *noise = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, &al));
    TU_OK_NET(net, fan_net_set(net, FAN_NET_THREADS, 3.0));
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, &al));
    TU_OK(fan_iter_create_noise(&noise, T_IN, T_OUT, T_BATCH, 1, &al));
    TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, 2, NULL, NULL));
    const size_t allocs = c.total_allocs;
    TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, 20, NULL, NULL));
    assert_int_equal(c.total_allocs, allocs);
    /* A new count stops the old pool; the next call starts the new one. */
    TU_OK_NET(net, fan_net_set(net, FAN_NET_THREADS, 2.0));
    TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, 2, NULL, NULL));
    TU_OK_NET(net, fan_net_set(net, FAN_NET_THREADS, 1.0));
    TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, 2, NULL, NULL));
    TU_OK_NET(net, fan_net_set(net, FAN_NET_THREADS, 4.0));
    TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, 2, NULL, NULL));
    fan_iter_free(noise);
    fan_optimizer_free(opt);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

/* Runs a batch's items backwards, phase by phase: any order must give the same batch. */
static void backwards(void *runner, void (*fn)(void *ctx, size_t phase, size_t item), void *ctx,
                      const size_t *items, size_t n_phases)
{
    (*(size_t *)runner)++;
    for (size_t ph = 0; ph < n_phases; ph++)
        for (size_t i = items[ph]; i-- > 0;) fn(ctx, ph, i);
}

static void test_iterator_batches_do_not_depend_on_who_runs_their_items(void **state)
{
    (void)state;
    fan_dataset *ds = thread_data();
    fan_iter *a = NULL, *b = NULL, *na = NULL, *nb = NULL;
    TU_OK(fan_iter_create_batches(&a, ds, T_BATCH, 6, NULL));
    TU_OK(fan_iter_create_batches(&b, ds, T_BATCH, 6, NULL));
    /* 3 blocks of noise per batch, the last one short. */
    TU_OK(fan_iter_create_noise(&na, 1000, T_OUT, 9, 6, NULL));
    TU_OK(fan_iter_create_noise(&nb, 1000, T_OUT, 9, 6, NULL));
    size_t runs = 0;
    for (int k = 0; k < 8; k++) {
        fan_iter *its[2][2] = {{a, b}, {na, nb}};
        for (int kind = 0; kind < 2; kind++) {
            const float *xa, *xb;
            const int32_t *la, *lb;
            size_t n1 = 0, n2 = 0;
            const fan_status s1 = fan_iter_next(its[kind][0], &xa, &la, NULL, &n1);
            const fan_status s2 =
                fan__iter_next_on(its[kind][1], backwards, &runs, &xb, &lb, NULL, &n2);
            assert_int_equal(s1, s2);
            assert_int_equal(n1, n2);
            if (s1 != FAN_OK) continue;
            assert_memory_equal(xa, xb, n1 * fan_iter_dim(its[kind][0]) * sizeof *xa);
            assert_memory_equal(la, lb, n1 * sizeof *la);
        }
    }
    assert_true(runs > 8);
    fan_iter_free(a);
    fan_iter_free(b);
    fan_iter_free(na);
    fan_iter_free(nb);
    fan_dataset_free(ds);
}

/* A non-finite loss on a threaded net fails the step and changes nothing, as on one thread. */
static void test_threaded_divergence_changes_nothing(void **state)
{
    (void)state;
    const size_t sizes[] = {T_IN, T_H1, T_OUT};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    TU_OK_NET(net, fan_net_set_rule(net, FAN_RULE_BRSF));
    TU_OK_NET(net, fan_net_set(net, FAN_NET_THREADS, 2.0));
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    float x[T_ROWS * T_IN];
    int32_t y[T_ROWS] = {0};
    tu_fill(x, T_ROWS * T_IN, 5, -1.0f, 1.0f);
    TU_OK_NET(net, fan_net_train_batch(net, opt, x, y, T_ROWS, NULL));
    size_t len = 0;
    TU_OK(fan_net_save_mem(net, NULL, 0, &len));
    unsigned char *before = malloc(len), *after = malloc(len);
    TU_OK(fan_net_save_mem(net, before, len, &len));
    for (size_t i = 0; i < T_IN; i++) x[7 * T_IN + i] = 3e38f; /* overflows the forward pass */
    assert_int_equal(fan_net_train_batch(net, opt, x, y, T_ROWS, NULL), FAN_E_NUMERIC);
    TU_OK(fan_net_save_mem(net, after, len, &len));
    assert_memory_equal(before, after, len);
    free(before);
    free(after);
    fan_optimizer_free(opt);
    fan_net_free(net);
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
        cmocka_unit_test(test_thread_count_is_a_net_setting_with_default_one),
        cmocka_unit_test(test_threaded_training_repeats_bit_for_bit),
        cmocka_unit_test(test_threads_match_one_thread_under_every_rule_and_kernel_set),
        cmocka_unit_test(test_threaded_steps_allocate_nothing_and_free_everything),
        cmocka_unit_test(test_threaded_divergence_changes_nothing),
        cmocka_unit_test(test_iterator_batches_do_not_depend_on_who_runs_their_items),
        cmocka_unit_test(test_failing_calls_on_one_const_net_take_turns_with_its_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
