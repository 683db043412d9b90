/* test_iter.c - batch iterators (epoch semantics, order, reproducibility, settings) and the
   noise source (distribution of inputs and labels, modes, reproducibility), allocation
   behaviour and allocation failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

/* Deviations allowed in the statistical tests, in standard errors. With a fixed seed the tests
   are deterministic; 5 standard errors leaves room for any seed while catching real bias. */
#define N_SIGMA 5.0
/* Two-sided standard-normal tail probabilities P(|z| > 3.5) and P(|z| > 4): erfc(t / sqrt 2). */
#define P_TAIL_3_5 4.6525e-4
#define P_TAIL_4_0 6.3342e-5

/* ---- helpers ------------------------------------------------------------------------------ */

/* Moments of a stream of values, accumulated in double. */
typedef struct moments {
    double n, sum, sum2, sum3, sum4, lo, hi;
    double beyond_3_5, beyond_4;
} moments;

static void moments_init(moments *m)
{
    memset(m, 0, sizeof *m);
    m->lo = INFINITY;
    m->hi = -INFINITY;
}

static void moments_add(moments *m, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const double x = v[i], x2 = x * x;
        m->sum += x;
        m->sum2 += x2;
        m->sum3 += x2 * x;
        m->sum4 += x2 * x2;
        m->lo = x < m->lo ? x : m->lo;
        m->hi = x > m->hi ? x : m->hi;
        m->beyond_3_5 += fabs(x) > 3.5;
        m->beyond_4 += fabs(x) > 4.0;
    }
    m->n += (double)n;
}

static double m_mean(const moments *m) { return m->sum / m->n; }

static double m_var(const moments *m)
{
    const double mu = m_mean(m);
    return m->sum2 / m->n - mu * mu;
}

/* Kurtosis (not excess) about the sample mean: 3 for a normal, 1.8 for a uniform. */
static double m_kurtosis(const moments *m)
{
    const double mu = m_mean(m), e2 = m->sum2 / m->n, e3 = m->sum3 / m->n, e4 = m->sum4 / m->n;
    const double c4 = e4 - 4 * mu * e3 + 6 * mu * mu * e2 - 3 * mu * mu * mu * mu;
    const double v = m_var(m);
    return c4 / (v * v);
}

/* Draws `batches` batches from a noise iterator into moments and label counts (may be NULL). */
static void draw_noise(fan_iter *it, size_t batches, moments *m, size_t *counts)
{
    const size_t dim = fan_iter_dim(it), classes = fan_iter_classes(it);
    for (size_t b = 0; b < batches; b++) {
        const float *x = NULL, *t = NULL;
        const int32_t *y = NULL;
        size_t n = 0;
        TU_OK(fan_iter_next(it, &x, &y, &t, &n));
        moments_add(m, x, n * dim);
        if (counts != NULL) {
            assert_non_null(y);
            assert_null(t);
            for (size_t i = 0; i < n; i++) {
                assert_true(y[i] >= 0 && (size_t)y[i] < classes);
                counts[y[i]]++;
            }
        }
    }
}

/* n samples of dim values: sample i holds i * 100 + j at position j, so a row tells which
   sample it is; labels are i % classes. */
static fan_dataset *make_indexed(size_t n, size_t dim, size_t classes, const fan_allocator *al)
{
    float *x = malloc(n * dim * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dim; j++) x[i * dim + j] = (float)(i * 100 + j);
        y[i] = (int32_t)(i % classes);
    }
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, y, n, dim, classes, al));
    free(x);
    free(y);
    return ds;
}

/* Reads one batch and writes the sample indices of its rows to idx (checking rows and labels
   are consistent with make_indexed); returns the status and the row count in *n. */
static fan_status read_batch(fan_iter *it, size_t dim, size_t classes, size_t *idx, size_t *n)
{
    const float *x = NULL, *t = NULL;
    const int32_t *y = NULL;
    fan_status st = fan_iter_next(it, &x, &y, &t, n);
    assert_null(t);
    if (st != FAN_OK) return st;
    for (size_t r = 0; r < *n; r++) {
        const size_t i = (size_t)(x[r * dim] / 100.0f);
        for (size_t j = 0; j < dim; j++) assert_true(x[r * dim + j] == (float)(i * 100 + j));
        assert_int_equal(y[r], (int32_t)(i % classes));
        idx[r] = i;
    }
    return st;
}

/* Reads a whole epoch (up to FAN_DONE) into order; returns the number of samples. Checks every
   batch has `batch` rows except possibly the last. */
static size_t read_epoch(fan_iter *it, size_t dim, size_t classes, size_t batch, size_t *order)
{
    size_t total = 0, n = 0, batches = 0;
    fan_status st;
    int short_seen = 0;
    while ((st = read_batch(it, dim, classes, order + total, &n)) == FAN_OK) {
        assert_false(short_seen); /* only the last batch may be short */
        assert_true(n >= 1 && n <= batch);
        short_seen = n < batch;
        total += n;
        batches++;
    }
    assert_int_equal(st, FAN_DONE);
    assert_int_equal(n, 0);
    assert_int_equal(batches, fan_iter_batches_per_epoch(it));
    return total;
}

/* ---- noise -------------------------------------------------------------------------------- */

static void test_gaussian_noise_matches_standard_normal_and_uniform_labels(void **state)
{
    (void)state;
    enum { DIM = 784, CLASSES = 10, BATCH = 64, BATCHES = 200 };
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_noise(&it, DIM, CLASSES, BATCH, 42, &al));
    moments m;
    moments_init(&m);
    size_t counts[CLASSES] = {0};
    draw_noise(it, BATCHES, &m, counts);
    const double n = m.n;
    assert_true(fabs(m_mean(&m)) < N_SIGMA / sqrt(n));
    /* Var of the sample variance of a normal is 2 / n; of the kurtosis about 24 / n. */
    TU_CLOSE(m_var(&m), 1.0, 0.0, N_SIGMA * sqrt(2.0 / n));
    TU_CLOSE(m_kurtosis(&m), 3.0, 0.0, N_SIGMA * sqrt(24.0 / n));
    /* The ziggurat's tail beyond r = 3.44 uses a separate algorithm: check its mass. */
    TU_CLOSE(m.beyond_3_5, n * P_TAIL_3_5, 0.0, N_SIGMA * sqrt(n * P_TAIL_3_5));
    TU_CLOSE(m.beyond_4, n * P_TAIL_4_0, 0.0, N_SIGMA * sqrt(n * P_TAIL_4_0));
    const double labels = (double)BATCH * BATCHES, p = 1.0 / CLASSES;
    for (size_t k = 0; k < CLASSES; k++)
        TU_CLOSE((double)counts[k], labels * p, 0.0, N_SIGMA * sqrt(labels * p * (1 - p)));
    fan_iter_free(it);
    assert_int_equal(c.live_blocks, 0);
}

static void test_gaussian_noise_honours_mean_and_std(void **state)
{
    (void)state;
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_noise(&it, 100, 3, 50, 7, NULL));
    TU_OK(fan_iter_set(it, FAN_ITER_NOISE_MEAN, 0.3));
    TU_OK(fan_iter_set(it, FAN_ITER_NOISE_STD, 0.5));
    moments m;
    moments_init(&m);
    draw_noise(it, 100, &m, NULL);
    TU_CLOSE(m_mean(&m), 0.3, 0.0, N_SIGMA * 0.5 / sqrt(m.n));
    TU_CLOSE(m_var(&m), 0.25, 0.0, N_SIGMA * 0.25 * sqrt(2.0 / m.n));
    fan_iter_free(it);
}

static void test_uniform_noise_has_matched_mean_and_std(void **state)
{
    (void)state;
    const double mean = 0.5, sd = 2.0, half = sqrt(3.0) * sd;
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_noise(&it, 200, 4, 64, 3, NULL));
    TU_OK(fan_iter_set(it, FAN_ITER_NOISE_KIND, FAN_NOISE_UNIFORM));
    TU_OK(fan_iter_set(it, FAN_ITER_NOISE_MEAN, mean));
    TU_OK(fan_iter_set(it, FAN_ITER_NOISE_STD, sd));
    double v;
    TU_OK(fan_iter_get(it, FAN_ITER_NOISE_KIND, &v));
    assert_true(v == FAN_NOISE_UNIFORM);
    moments m;
    moments_init(&m);
    draw_noise(it, 100, &m, NULL);
    TU_CLOSE(m_mean(&m), mean, 0.0, N_SIGMA * sd / sqrt(m.n));
    /* Var of the sample variance of a uniform is (mu4 - sigma^4) / n = 0.8 sigma^4 / n. */
    TU_CLOSE(m_var(&m), sd * sd, 0.0, N_SIGMA * sd * sd * sqrt(0.8 / m.n));
    TU_CLOSE(m_kurtosis(&m), 1.8, 0.0, 0.01);
    assert_true(m.lo >= mean - half && m.hi <= mean + half);
    /* The range is filled: the extremes lie within a hair of the ends. */
    assert_true(m.lo < mean - half + 1e-3 && m.hi > mean + half - 1e-3);
    fan_iter_free(it);
}

static void test_soft_labels_give_rows_of_one_over_c_and_no_labels(void **state)
{
    (void)state;
    enum { DIM = 5, CLASSES = 7, BATCH = 9 };
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_noise(&it, DIM, CLASSES, BATCH, 1, NULL));
    TU_OK(fan_iter_set(it, FAN_ITER_LABEL_MODE, FAN_LABELS_SOFT));
    for (int b = 0; b < 3; b++) {
        const float *x = NULL, *t = NULL;
        const int32_t *y = (const int32_t *)&b; /* must be overwritten with NULL */
        size_t n = 0;
        TU_OK(fan_iter_next(it, &x, &y, &t, &n));
        assert_int_equal(n, BATCH);
        assert_non_null(x);
        assert_null(y);
        assert_non_null(t);
        for (size_t i = 0; i < BATCH * CLASSES; i++) assert_true(t[i] == 1.0f / CLASSES);
    }
    /* Back to hard labels: targets are NULL again. */
    TU_OK(fan_iter_set(it, FAN_ITER_LABEL_MODE, FAN_LABELS_HARD));
    static const float sentinel = 0.0f;
    const float *x = NULL, *t = &sentinel;
    const int32_t *y = NULL;
    size_t n = 0;
    TU_OK(fan_iter_next(it, &x, &y, &t, &n));
    assert_non_null(y);
    assert_null(t);
    fan_iter_free(it);
}

static void test_noise_label_mode_does_not_change_the_inputs(void **state)
{
    (void)state;
    /* Inputs and labels come from separate streams: the labels cannot depend on the inputs, and
       the inputs are the same whatever the label mode. */
    fan_iter *hard = NULL, *soft = NULL;
    TU_OK(fan_iter_create_noise(&hard, 16, 3, 8, 99, NULL));
    TU_OK(fan_iter_create_noise(&soft, 16, 3, 8, 99, NULL));
    TU_OK(fan_iter_set(soft, FAN_ITER_LABEL_MODE, FAN_LABELS_SOFT));
    for (int b = 0; b < 5; b++) {
        const float *xh, *xs;
        size_t nh, ns;
        TU_OK(fan_iter_next(hard, &xh, NULL, NULL, &nh));
        TU_OK(fan_iter_next(soft, &xs, NULL, NULL, &ns));
        assert_int_equal(nh, ns);
        assert_memory_equal(xh, xs, nh * 16 * sizeof(float));
    }
    fan_iter_free(hard);
    fan_iter_free(soft);
}

static void test_noise_labels_do_not_depend_on_the_input_settings(void **state)
{
    (void)state;
    /* The ziggurat draws a variable number of random words per value and the uniform kind one:
       labels from their own stream stay the same whatever the input distribution. */
    enum { DIM = 50, BATCH = 32 };
    fan_iter *gauss = NULL, *unif = NULL;
    TU_OK(fan_iter_create_noise(&gauss, DIM, 10, BATCH, 77, NULL));
    TU_OK(fan_iter_create_noise(&unif, DIM, 10, BATCH, 77, NULL));
    TU_OK(fan_iter_set(unif, FAN_ITER_NOISE_KIND, FAN_NOISE_UNIFORM));
    TU_OK(fan_iter_set(unif, FAN_ITER_NOISE_STD, 3.0));
    for (int b = 0; b < 20; b++) {
        const float *xg, *xu;
        const int32_t *yg, *yu;
        size_t n;
        TU_OK(fan_iter_next(gauss, &xg, &yg, NULL, &n));
        TU_OK(fan_iter_next(unif, &xu, &yu, NULL, &n));
        assert_memory_equal(yg, yu, BATCH * sizeof *yg);
        assert_memory_not_equal(xg, xu, DIM * BATCH * sizeof *xg);
    }
    fan_iter_free(gauss);
    fan_iter_free(unif);
}

static void test_noise_is_reproducible_fresh_per_batch_and_reset_restarts(void **state)
{
    (void)state;
    enum { DIM = 10, BATCH = 4, N = DIM * BATCH, BATCHES = 3 };
    fan_iter *a = NULL, *b = NULL, *other = NULL;
    TU_OK(fan_iter_create_noise(&a, DIM, 5, BATCH, 5, NULL));
    TU_OK(fan_iter_create_noise(&b, DIM, 5, BATCH, 5, NULL));
    TU_OK(fan_iter_create_noise(&other, DIM, 5, BATCH, 6, NULL));
    float first[BATCHES][N];
    int32_t first_y[BATCHES][BATCH];
    for (int k = 0; k < BATCHES; k++) {
        const float *xa, *xb, *xo;
        const int32_t *ya, *yb;
        size_t n;
        TU_OK(fan_iter_next(a, &xa, &ya, NULL, &n));
        assert_int_equal(n, BATCH);
        memcpy(first[k], xa, sizeof first[k]);
        memcpy(first_y[k], ya, sizeof first_y[k]);
        TU_OK(fan_iter_next(b, &xb, &yb, NULL, &n));
        assert_memory_equal(xb, first[k], sizeof first[k]);
        assert_memory_equal(yb, first_y[k], sizeof first_y[k]);
        TU_OK(fan_iter_next(other, &xo, NULL, NULL, &n));
        assert_memory_not_equal(xo, first[k], sizeof first[k]);
    }
    /* Fresh inputs every batch. */
    assert_memory_not_equal(first[0], first[1], sizeof first[0]);
    TU_OK(fan_iter_reset(a));
    for (int k = 0; k < BATCHES; k++) {
        const float *x;
        const int32_t *y;
        size_t n;
        TU_OK(fan_iter_next(a, &x, &y, NULL, &n));
        assert_memory_equal(x, first[k], sizeof first[k]);
        assert_memory_equal(y, first_y[k], sizeof first_y[k]);
    }
    fan_iter_free(a);
    fan_iter_free(b);
    fan_iter_free(other);
}

static void test_noise_never_ends(void **state)
{
    (void)state;
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_noise(&it, 2, 2, 3, 0, NULL));
    assert_int_equal(fan_iter_batches_per_epoch(it), 0);
    for (int k = 0; k < 1000; k++) {
        const float *x;
        size_t n = 0;
        TU_OK(fan_iter_next(it, &x, NULL, NULL, &n));
        assert_int_equal(n, 3);
    }
    fan_iter_free(it);
}

static void test_noise_creation_and_settings_are_validated(void **state)
{
    (void)state;
    fan_iter *it = (fan_iter *)&it;
    assert_int_equal(fan_iter_create_noise(NULL, 4, 2, 2, 0, NULL), FAN_E_NULL);
    assert_int_equal(fan_iter_create_noise(&it, 0, 2, 2, 0, NULL), FAN_E_INVALID);
    assert_null(it);
    assert_int_equal(fan_iter_create_noise(&it, 4, 0, 2, 0, NULL), FAN_E_INVALID);
    assert_int_equal(fan_iter_create_noise(&it, 4, 2, 0, 0, NULL), FAN_E_INVALID);
    assert_int_equal(fan_iter_create_noise(&it, 4, FAN_MAX_CLASSES + 1, 2, 0, NULL),
                     FAN_E_INVALID);
    assert_int_equal(fan_iter_create_noise(&it, (size_t)FAN_MAX_WIDTH + 1, 2, 2, 0, NULL),
                     FAN_E_LIMIT);
    assert_int_equal(fan_iter_create_noise(&it, FAN_MAX_WIDTH, 2, SIZE_MAX / 2, 0, NULL),
                     FAN_E_LIMIT);
    assert_null(it);

    TU_OK(fan_iter_create_noise(&it, 4, 2, 2, 0, NULL));
    const struct {
        fan_iter_param p;
        double v;
    } bad[] = {
        {FAN_ITER_NOISE_KIND, 2},   {FAN_ITER_NOISE_KIND, 0.5},  {FAN_ITER_NOISE_KIND, NAN},
        {FAN_ITER_NOISE_STD, 0},    {FAN_ITER_NOISE_STD, -1},    {FAN_ITER_NOISE_STD, NAN},
        {FAN_ITER_NOISE_STD, INFINITY}, {FAN_ITER_NOISE_STD, 1e39}, {FAN_ITER_NOISE_MEAN, NAN},
        {FAN_ITER_NOISE_MEAN, -INFINITY}, {FAN_ITER_NOISE_MEAN, 1e39},
        {FAN_ITER_LABEL_MODE, -1},  {FAN_ITER_DROP_LAST, 1},     {FAN_ITER_SHUFFLE, 0},
        {(fan_iter_param)99, 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(fan_iter_set(it, bad[i].p, bad[i].v), FAN_E_INVALID);
        assert_true(strlen(fan_iter_errmsg(it)) > 0);
    }
    /* Failed calls changed nothing. */
    double v;
    TU_OK(fan_iter_get(it, FAN_ITER_NOISE_KIND, &v));
    assert_true(v == FAN_NOISE_GAUSSIAN);
    TU_OK(fan_iter_get(it, FAN_ITER_NOISE_MEAN, &v));
    assert_true(v == 0.0);
    TU_OK(fan_iter_get(it, FAN_ITER_NOISE_STD, &v));
    assert_true(v == 1.0);
    TU_OK(fan_iter_get(it, FAN_ITER_LABEL_MODE, &v));
    assert_true(v == FAN_LABELS_HARD);
    assert_int_equal(fan_iter_get(it, FAN_ITER_SHUFFLE, &v), FAN_E_INVALID);
    assert_int_equal(fan_iter_get(it, FAN_ITER_NOISE_STD, NULL), FAN_E_NULL);
    assert_int_equal(fan_iter_get(NULL, FAN_ITER_NOISE_STD, &v), FAN_E_NULL);
    assert_int_equal(fan_iter_set(NULL, FAN_ITER_NOISE_STD, 1), FAN_E_NULL);
    const float *x;
    size_t n;
    assert_int_equal(fan_iter_next(it, NULL, NULL, NULL, &n), FAN_E_NULL);
    assert_int_equal(fan_iter_next(it, &x, NULL, NULL, NULL), FAN_E_NULL);
    assert_int_equal(fan_iter_next(NULL, &x, NULL, NULL, &n), FAN_E_NULL);
    assert_int_equal(fan_iter_reset(NULL), FAN_E_NULL);
    assert_true(fan_iter_is_noise(it));
    assert_int_equal(fan_iter_dim(it), 4);
    assert_int_equal(fan_iter_classes(it), 2);
    fan_iter_free(it);
    fan_iter_free(NULL);
    assert_false(fan_iter_is_noise(NULL));
    assert_int_equal(fan_iter_dim(NULL), 0);
    assert_int_equal(fan_iter_classes(NULL), 0);
    assert_int_equal(fan_iter_batches_per_epoch(NULL), 0);
    assert_true(strlen(fan_iter_errmsg(NULL)) > 0);
}

/* ---- batches ------------------------------------------------------------------------------ */

static void test_every_sample_appears_exactly_once_per_epoch(void **state)
{
    (void)state;
    enum { N = 10, DIM = 3, CLASSES = 4, BATCH = 3 };
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    fan_dataset *ds = make_indexed(N, DIM, CLASSES, &al);
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_batches(&it, ds, BATCH, 11, &al));
    assert_false(fan_iter_is_noise(it));
    assert_int_equal(fan_iter_dim(it), DIM);
    assert_int_equal(fan_iter_classes(it), CLASSES);
    assert_int_equal(fan_iter_batches_per_epoch(it), 4);
    for (int epoch = 0; epoch < 3; epoch++) {
        size_t order[N];
        assert_int_equal(read_epoch(it, DIM, CLASSES, BATCH, order), N);
        int seen[N] = {0};
        for (size_t i = 0; i < N; i++) seen[order[i]]++;
        for (size_t i = 0; i < N; i++) assert_int_equal(seen[i], 1);
    }
    fan_iter_free(it);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_epochs_differ_and_same_seed_gives_same_order(void **state)
{
    (void)state;
    enum { N = 40, DIM = 2, CLASSES = 3, BATCH = 7, EPOCHS = 3 };
    fan_dataset *ds = make_indexed(N, DIM, CLASSES, NULL);
    fan_iter *a = NULL, *b = NULL, *other = NULL;
    TU_OK(fan_iter_create_batches(&a, ds, BATCH, 123, NULL));
    TU_OK(fan_iter_create_batches(&b, ds, BATCH, 123, NULL));
    TU_OK(fan_iter_create_batches(&other, ds, BATCH, 124, NULL));
    size_t oa[EPOCHS][N], ob[EPOCHS][N], oo[EPOCHS][N], identity[N];
    for (size_t i = 0; i < N; i++) identity[i] = i;
    for (int e = 0; e < EPOCHS; e++) {
        read_epoch(a, DIM, CLASSES, BATCH, oa[e]);
        read_epoch(b, DIM, CLASSES, BATCH, ob[e]);
        read_epoch(other, DIM, CLASSES, BATCH, oo[e]);
        assert_memory_equal(oa[e], ob[e], sizeof oa[e]);
        assert_memory_not_equal(oa[e], oo[e], sizeof oa[e]);
        assert_memory_not_equal(oa[e], identity, sizeof identity);
    }
    assert_memory_not_equal(oa[0], oa[1], sizeof oa[0]);
    assert_memory_not_equal(oa[1], oa[2], sizeof oa[0]);
    /* Reset replays the sequence from creation, epoch boundaries included. */
    size_t order[N];
    TU_OK(fan_iter_reset(a));
    for (int e = 0; e < EPOCHS; e++) {
        read_epoch(a, DIM, CLASSES, BATCH, order);
        assert_memory_equal(order, oa[e], sizeof order);
    }
    /* Also from part-way through an epoch. */
    size_t n;
    TU_OK(read_batch(b, DIM, CLASSES, order, &n));
    TU_OK(fan_iter_reset(b));
    read_epoch(b, DIM, CLASSES, BATCH, order);
    assert_memory_equal(order, oa[0], sizeof order);
    fan_iter_free(a);
    fan_iter_free(b);
    fan_iter_free(other);
    fan_dataset_free(ds);
}

static void test_drop_last_skips_the_partial_batch(void **state)
{
    (void)state;
    enum { N = 10, DIM = 2, CLASSES = 2, BATCH = 3 };
    fan_dataset *ds = make_indexed(N, DIM, CLASSES, NULL);
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_batches(&it, ds, BATCH, 1, NULL));
    TU_OK(fan_iter_set(it, FAN_ITER_DROP_LAST, 1));
    double v;
    TU_OK(fan_iter_get(it, FAN_ITER_DROP_LAST, &v));
    assert_true(v == 1.0);
    assert_int_equal(fan_iter_batches_per_epoch(it), 3);
    size_t order[N];
    for (int e = 0; e < 2; e++) {
        assert_int_equal(read_epoch(it, DIM, CLASSES, BATCH, order), 9);
        int seen[N] = {0};
        for (size_t i = 0; i < 9; i++) assert_int_equal(seen[order[i]]++, 0);
    }
    TU_OK(fan_iter_set(it, FAN_ITER_DROP_LAST, 0));
    assert_int_equal(fan_iter_batches_per_epoch(it), 4);
    assert_int_equal(read_epoch(it, DIM, CLASSES, BATCH, order), N);
    fan_iter_free(it);

    /* A batch larger than the dataset: one short batch per epoch, which drop_last would drop. */
    TU_OK(fan_iter_create_batches(&it, ds, N + 5, 1, NULL));
    assert_int_equal(fan_iter_batches_per_epoch(it), 1);
    assert_int_equal(read_epoch(it, DIM, CLASSES, N + 5, order), N);
    assert_int_equal(fan_iter_set(it, FAN_ITER_DROP_LAST, 1), FAN_E_INVALID);
    assert_int_equal(fan_iter_batches_per_epoch(it), 1);
    fan_iter_free(it);
    fan_dataset_free(ds);
}

static void test_shuffle_off_keeps_dataset_order(void **state)
{
    (void)state;
    enum { N = 11, DIM = 2, CLASSES = 3, BATCH = 4 };
    fan_dataset *ds = make_indexed(N, DIM, CLASSES, NULL);
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_batches(&it, ds, BATCH, 1, NULL));
    TU_OK(fan_iter_set(it, FAN_ITER_SHUFFLE, 0));
    double v;
    TU_OK(fan_iter_get(it, FAN_ITER_SHUFFLE, &v));
    assert_true(v == 0.0);
    size_t order[N];
    for (int e = 0; e < 2; e++) {
        assert_int_equal(read_epoch(it, DIM, CLASSES, BATCH, order), N);
        for (size_t i = 0; i < N; i++) assert_int_equal(order[i], i);
    }
    /* Switching shuffling on takes effect at the next epoch. */
    TU_OK(fan_iter_set(it, FAN_ITER_SHUFFLE, 1));
    read_epoch(it, DIM, CLASSES, BATCH, order);
    size_t identity[N];
    for (size_t i = 0; i < N; i++) identity[i] = i;
    assert_memory_not_equal(order, identity, sizeof order);
    fan_iter_free(it);
    fan_dataset_free(ds);
}

static void test_batches_use_the_dataset_normalisation(void **state)
{
    (void)state;
    const float x[4] = {1, 3, 5, 7};
    const int32_t y[2] = {0, 1};
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, y, 2, 2, 2, NULL));
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 4.0, 2.0));
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_batches(&it, ds, 2, 0, NULL));
    TU_OK(fan_iter_set(it, FAN_ITER_SHUFFLE, 0));
    const float *b;
    const int32_t *lab;
    size_t n;
    TU_OK(fan_iter_next(it, &b, &lab, NULL, &n));
    assert_int_equal(n, 2);
    const float want[4] = {-1.5f, -0.5f, 0.5f, 1.5f};
    for (int i = 0; i < 4; i++) TU_CLOSE(b[i], want[i], 1e-6, 1e-6);
    assert_int_equal(lab[0], 0);
    assert_int_equal(lab[1], 1);
    fan_iter_free(it);
    fan_dataset_free(ds);
}

static void test_batch_creation_and_settings_are_validated(void **state)
{
    (void)state;
    fan_dataset *ds = make_indexed(5, 2, 2, NULL);
    fan_iter *it = (fan_iter *)&it;
    assert_int_equal(fan_iter_create_batches(NULL, ds, 2, 0, NULL), FAN_E_NULL);
    assert_int_equal(fan_iter_create_batches(&it, NULL, 2, 0, NULL), FAN_E_NULL);
    assert_null(it);
    it = (fan_iter *)&it;
    assert_int_equal(fan_iter_create_batches(&it, ds, 0, 0, NULL), FAN_E_INVALID);
    assert_null(it);
    TU_OK(fan_iter_create_batches(&it, ds, 2, 0, NULL));
    assert_int_equal(fan_iter_set(it, FAN_ITER_NOISE_STD, 1.0), FAN_E_INVALID);
    assert_true(strstr(fan_iter_errmsg(it), "noise") != NULL);
    assert_int_equal(fan_iter_set(it, FAN_ITER_NOISE_KIND, 0), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_LABEL_MODE, 0), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHUFFLE, 2), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_DROP_LAST, 0.5), FAN_E_INVALID);
    double v;
    assert_int_equal(fan_iter_get(it, FAN_ITER_NOISE_MEAN, &v), FAN_E_INVALID);
    TU_OK(fan_iter_get(it, FAN_ITER_SHUFFLE, &v));
    assert_true(v == 1.0);
    TU_OK(fan_iter_get(it, FAN_ITER_DROP_LAST, &v));
    assert_true(v == 0.0);
    /* labels and targets may be skipped; targets of a batch iterator are NULL. */
    const float *x, *t = (const float *)&v;
    size_t n;
    TU_OK(fan_iter_next(it, &x, NULL, &t, &n));
    assert_null(t);
    assert_int_equal(n, 2);
    fan_iter_free(it);
    fan_dataset_free(ds);
}

/* ---- allocation --------------------------------------------------------------------------- */

static void test_next_allocates_nothing(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    fan_dataset *ds = make_indexed(9, 3, 2, &al);
    fan_iter *batches = NULL, *noise = NULL;
    TU_OK(fan_iter_create_batches(&batches, ds, 4, 0, &al));
    TU_OK(fan_iter_create_noise(&noise, 3, 2, 4, 0, &al));
    const size_t allocs = c.total_allocs;
    for (int k = 0; k < 40; k++) {
        const float *x;
        size_t n;
        fan_status st = fan_iter_next(batches, &x, NULL, NULL, &n);
        assert_true(st == FAN_OK || st == FAN_DONE);
        TU_OK(fan_iter_next(noise, &x, NULL, NULL, &n));
        if (k == 20) TU_OK(fan_iter_set(noise, FAN_ITER_LABEL_MODE, FAN_LABELS_SOFT));
    }
    TU_OK(fan_iter_reset(batches));
    TU_OK(fan_iter_reset(noise));
    assert_int_equal(c.total_allocs, allocs);
    fan_iter_free(batches);
    fan_iter_free(noise);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_constructors_survive_every_allocation_failure(void **state)
{
    (void)state;
    fan_dataset *ds = make_indexed(6, 2, 2, NULL);
    for (int kind = 0; kind < 2; kind++) {
        int succeeded = 0;
        for (size_t fail_at = 1; fail_at < 20 && !succeeded; fail_at++) {
            tu_counter c = {0};
            c.fail_at = fail_at;
            fan_allocator al = tu_allocator(&c);
            fan_iter *it = (fan_iter *)&it;
            fan_status st = kind == 0 ? fan_iter_create_batches(&it, ds, 4, 0, &al)
                                      : fan_iter_create_noise(&it, 8, 3, 4, 0, &al);
            if (st == FAN_OK) {
                succeeded = 1;
                assert_non_null(it);
                fan_iter_free(it);
            } else {
                assert_int_equal(st, FAN_E_NOMEM);
                assert_null(it);
            }
            assert_int_equal(c.live_blocks, 0);
        }
        assert_true(succeeded);
    }
    fan_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gaussian_noise_matches_standard_normal_and_uniform_labels),
        cmocka_unit_test(test_gaussian_noise_honours_mean_and_std),
        cmocka_unit_test(test_uniform_noise_has_matched_mean_and_std),
        cmocka_unit_test(test_soft_labels_give_rows_of_one_over_c_and_no_labels),
        cmocka_unit_test(test_noise_label_mode_does_not_change_the_inputs),
        cmocka_unit_test(test_noise_labels_do_not_depend_on_the_input_settings),
        cmocka_unit_test(test_noise_is_reproducible_fresh_per_batch_and_reset_restarts),
        cmocka_unit_test(test_noise_never_ends),
        cmocka_unit_test(test_noise_creation_and_settings_are_validated),
        cmocka_unit_test(test_every_sample_appears_exactly_once_per_epoch),
        cmocka_unit_test(test_epochs_differ_and_same_seed_gives_same_order),
        cmocka_unit_test(test_drop_last_skips_the_partial_batch),
        cmocka_unit_test(test_shuffle_off_keeps_dataset_order),
        cmocka_unit_test(test_batches_use_the_dataset_normalisation),
        cmocka_unit_test(test_batch_creation_and_settings_are_validated),
        cmocka_unit_test(test_next_allocates_nothing),
        cmocka_unit_test(test_constructors_survive_every_allocation_failure),
    };
    return cmocka_run_group_tests_name("iter", tests, NULL, NULL);
}
