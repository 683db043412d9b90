/* test_dataset.c - dataset construction, normalisation, statistics, gathering and subsets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

/* A non-NULL pointer that constructors must overwrite with NULL when they fail. */
static max_align_t sentinel_storage;
#define SENTINEL ((fan_dataset *)(void *)&sentinel_storage)

/* A float dataset whose sample i has value i + j / 10 in column j and label labels[i]. */
static fan_dataset *make_indexed(tu_counter *c, size_t n, size_t dim, const int32_t *labels,
                                 size_t classes)
{
    float x[64 * 4];
    assert_true(n * dim <= sizeof x / sizeof x[0]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < dim; j++) x[i * dim + j] = (float)i + (float)j / 10.0f;
    }
    fan_allocator a = tu_allocator(c);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, labels, n, dim, classes, &a));
    return ds;
}

/* The source index of sample k of ds built by make_indexed (column 0 holds it). */
static size_t source_index(const fan_dataset *ds, size_t k)
{
    float x[4];
    TU_OK(fan_dataset_get(ds, k, x, fan_dataset_dim(ds), NULL));
    return (size_t)x[0];
}

static void test_from_arrays_copies_values_labels_and_reports_sizes(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    float x[6] = {1.5f, -2.0f, 3.0f, 4.0f, 0.0f, -7.25f};
    int32_t y[3] = {2, 0, 1};
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, y, 3, 2, 3, &a));
    x[0] = 99.0f; /* the dataset holds a copy */
    y[0] = 1;
    assert_int_equal(fan_dataset_size(ds), 3);
    assert_int_equal(fan_dataset_dim(ds), 2);
    assert_int_equal(fan_dataset_classes(ds), 3);
    size_t w, h, ch;
    TU_OK(fan_dataset_shape(ds, &w, &h, &ch));
    assert_int_equal(w, 2);
    assert_int_equal(h, 1);
    assert_int_equal(ch, 1);
    float row[2];
    int32_t label = -1;
    TU_OK(fan_dataset_get(ds, 0, row, 2, &label));
    TU_CLOSE(row[0], 1.5, 0, 0);
    TU_CLOSE(row[1], -2.0, 0, 0);
    assert_int_equal(label, 2);
    TU_OK(fan_dataset_get(ds, 2, row, 2, &label));
    TU_CLOSE(row[1], -7.25, 0, 0);
    assert_int_equal(label, 1);
    assert_string_equal(fan_dataset_errmsg(ds), "");
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_from_arrays_rejects_bad_arguments_with_specific_status(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    float x[4] = {0, 1, 2, 3};
    int32_t y[2] = {0, 1};
    fan_dataset *ds = SENTINEL; /* must be reset to NULL on failure */
    assert_int_equal(fan_dataset_from_arrays(NULL, x, y, 2, 2, 2, &a), FAN_E_NULL);
    assert_int_equal(fan_dataset_from_arrays(&ds, NULL, y, 2, 2, 2, &a), FAN_E_NULL);
    assert_null(ds);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, NULL, 2, 2, 2, &a), FAN_E_NULL);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 0, 2, 2, &a), FAN_E_INVALID);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 2, 0, 2, &a), FAN_E_INVALID);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 2, 2, 0, &a), FAN_E_INVALID);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 2, 2, 1, &a), FAN_E_LABEL);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, (size_t)FAN_MAX_SAMPLES + 1, 2, 2, &a),
                     FAN_E_LIMIT);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 2, 2, (size_t)FAN_MAX_CLASSES + 1, &a),
                     FAN_E_LIMIT);
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 2, SIZE_MAX / 2 + 1, 2, &a),
                     FAN_E_LIMIT);
    int32_t neg[2] = {0, -1};
    assert_int_equal(fan_dataset_from_arrays(&ds, x, neg, 2, 2, 2, &a), FAN_E_LABEL);
    x[3] = NAN;
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 2, 2, 2, &a), FAN_E_NONFINITE);
    x[3] = INFINITY;
    assert_int_equal(fan_dataset_from_arrays(&ds, x, y, 2, 2, 2, &a), FAN_E_NONFINITE);
    assert_null(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_null_dataset_accessors_are_safe(void **state)
{
    (void)state;
    fan_dataset_free(NULL);
    assert_int_equal(fan_dataset_size(NULL), 0);
    assert_int_equal(fan_dataset_dim(NULL), 0);
    assert_int_equal(fan_dataset_classes(NULL), 0);
    assert_non_null(fan_dataset_errmsg(NULL));
    assert_int_equal(fan_dataset_shape(NULL, NULL, NULL, NULL), FAN_E_NULL);
    assert_int_equal(fan_dataset_set_shape(NULL, 1, 1, 1), FAN_E_NULL);
    assert_int_equal(fan_dataset_set_normalization(NULL, FAN_NORM_NONE, 0, 1), FAN_E_NULL);
    double m, s;
    assert_int_equal(fan_dataset_compute_stats(NULL, &m, &s), FAN_E_NULL);
    assert_int_equal(fan_dataset_get(NULL, 0, NULL, 0, NULL), FAN_E_NULL);
    size_t counts[1];
    assert_int_equal(fan_dataset_class_counts(NULL, counts, 1), FAN_E_NULL);
}

static void test_u8_scale_maps_0_and_255_to_0_and_1(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    const uint8_t px[4] = {0, 255, 51, 128};
    const int32_t y[1] = {0};
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_u8(&ds, px, y, 1, 2, 2, 1, 1, &a));
    size_t w, h;
    TU_OK(fan_dataset_shape(ds, &w, &h, NULL));
    assert_int_equal(w, 2);
    assert_int_equal(h, 2);
    float x[4];
    TU_OK(fan_dataset_get(ds, 0, x, 4, NULL)); /* FAN_NORM_SCALE is the default for uint8 */
    assert_true(x[0] == 0.0f);
    assert_true(x[1] == 1.0f);
    TU_CLOSE(x[2], 0.2, 1e-7, 0);
    TU_CLOSE(x[3], 128.0 / 255.0, 1e-7, 0);

    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_NONE, 0, 0));
    TU_OK(fan_dataset_get(ds, 0, x, 4, NULL));
    TU_CLOSE(x[1], 255.0, 0, 0);
    TU_CLOSE(x[3], 128.0, 0, 0);

    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.5, 0.25));
    TU_OK(fan_dataset_get(ds, 0, x, 4, NULL));
    TU_CLOSE(x[0], -2.0, 1e-6, 0);
    TU_CLOSE(x[1], 2.0, 1e-6, 0);
    TU_CLOSE(x[2], (0.2 - 0.5) / 0.25, 1e-6, 0);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_float_normalisation_scale_is_identity_and_standardize_applies(void **state)
{
    (void)state;
    tu_counter c = {0};
    const int32_t y[2] = {0, 1};
    fan_dataset *ds = make_indexed(&c, 2, 2, y, 2); /* values 0, 0.1, 1, 1.1 */
    float x[2];
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_SCALE, 0, 0));
    TU_OK(fan_dataset_get(ds, 1, x, 2, NULL));
    TU_CLOSE(x[1], 1.1, 1e-6, 0);
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 1.0, 2.0));
    TU_OK(fan_dataset_get(ds, 1, x, 2, NULL));
    TU_CLOSE(x[0], 0.0, 0, 1e-7);
    TU_CLOSE(x[1], 0.05, 1e-5, 0);
    TU_OK(fan_dataset_get(ds, 0, x, 2, NULL));
    TU_CLOSE(x[0], -0.5, 1e-6, 0);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_bad_normalisation_is_rejected_and_leaves_state(void **state)
{
    (void)state;
    tu_counter c = {0};
    const int32_t y[1] = {0};
    fan_dataset *ds = make_indexed(&c, 1, 2, y, 1);
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.1, 0.5));
    assert_int_equal(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.0, 0.0),
                     FAN_E_INVALID);
    assert_true(strlen(fan_dataset_errmsg(ds)) > 0);
    assert_int_equal(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.0, -1.0),
                     FAN_E_INVALID);
    assert_int_equal(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, NAN, 1.0),
                     FAN_E_INVALID);
    assert_int_equal(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.0, INFINITY),
                     FAN_E_INVALID);
    assert_int_equal(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.0, 1e-300),
                     FAN_E_INVALID);
    assert_int_equal(fan_dataset_set_normalization(ds, (fan_norm)7, 0.0, 1.0), FAN_E_INVALID);
    float x[2];
    TU_OK(fan_dataset_get(ds, 0, x, 2, NULL));
    TU_CLOSE(x[1], (0.1 - 0.1) / 0.5, 0, 1e-7); /* still the first standardisation */
    TU_CLOSE(x[0], (0.0 - 0.1) / 0.5, 1e-6, 0);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_compute_stats_gives_population_mean_and_std_after_scaling(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    const uint8_t px[4] = {0, 51, 102, 153}; /* 0, .2, .4, .6 after scaling */
    const int32_t y[2] = {0, 0};
    fan_dataset *u8 = NULL;
    TU_OK(fan_dataset_from_u8(&u8, px, y, 2, 2, 1, 1, 1, &a));
    double m = 0, s = 0;
    TU_OK(fan_dataset_compute_stats(u8, &m, &s));
    TU_CLOSE(m, 0.3, 1e-12, 0);
    TU_CLOSE(s, sqrt(0.05), 1e-12, 0);
    /* The current normalisation does not change the statistics. */
    TU_OK(fan_dataset_set_normalization(u8, FAN_NORM_STANDARDIZE, 0.3, 0.2));
    TU_OK(fan_dataset_compute_stats(u8, &m, &s));
    TU_CLOSE(m, 0.3, 1e-12, 0);
    assert_int_equal(fan_dataset_compute_stats(u8, NULL, &s), FAN_E_NULL);

    const float x[4] = {1, 2, 3, 4};
    fan_dataset *f = NULL;
    TU_OK(fan_dataset_from_arrays(&f, x, y, 2, 2, 1, &a));
    TU_OK(fan_dataset_compute_stats(f, &m, &s));
    TU_CLOSE(m, 2.5, 1e-12, 0);
    TU_CLOSE(s, sqrt(1.25), 1e-12, 0);
    fan_dataset_free(f);
    fan_dataset_free(u8);
    assert_int_equal(c.live_blocks, 0);
}

static void test_gather_by_index_and_by_range_matches_get(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    uint8_t px[5 * 3];
    int32_t y[5] = {4, 3, 2, 1, 0};
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 17);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_u8(&ds, px, y, 5, 3, 1, 1, 5, &a));
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.25, 0.5));
    const size_t idx[3] = {4, 0, 4};
    float x[3 * 3], one[3];
    int32_t lab[3];
    fan__dataset_gather(ds, idx, 0, 3, x, lab);
    for (size_t r = 0; r < 3; r++) {
        int32_t l;
        TU_OK(fan_dataset_get(ds, idx[r], one, 3, &l));
        assert_int_equal(lab[r], l);
        for (size_t j = 0; j < 3; j++) TU_CLOSE(x[r * 3 + j], one[j], 0, 0);
        TU_CLOSE(one[1], (px[idx[r] * 3 + 1] / 255.0 - 0.25) / 0.5, 1e-6, 1e-7);
    }
    fan__dataset_gather(ds, NULL, 2, 2, x, NULL);
    TU_OK(fan_dataset_get(ds, 3, one, 3, NULL));
    TU_CLOSE(x[3 + 2], one[2], 0, 0);
    assert_ptr_equal(fan__dataset_allocator(ds)->ud, &c);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_get_checks_index_and_length(void **state)
{
    (void)state;
    tu_counter c = {0};
    const int32_t y[2] = {0, 1};
    fan_dataset *ds = make_indexed(&c, 2, 3, y, 2);
    float x[3];
    int32_t l = -1;
    assert_int_equal(fan_dataset_get(ds, 2, x, 3, &l), FAN_E_INVALID);
    assert_int_equal(fan_dataset_get(ds, 0, x, 2, &l), FAN_E_SHAPE);
    assert_non_null(strstr(fan_dataset_errmsg(ds), "3"));
    TU_OK(fan_dataset_get(ds, 1, NULL, 0, &l)); /* label only */
    assert_int_equal(l, 1);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_set_shape_requires_the_product_to_equal_dim(void **state)
{
    (void)state;
    tu_counter c = {0};
    const int32_t y[1] = {0};
    fan_dataset *ds = make_indexed(&c, 1, 12, y, 1);
    TU_OK(fan_dataset_set_shape(ds, 2, 3, 2));
    size_t w, h, ch;
    TU_OK(fan_dataset_shape(ds, &w, &h, &ch));
    assert_int_equal(w * 100 + h * 10 + ch, 232);
    assert_int_equal(fan_dataset_set_shape(ds, 3, 3, 1), FAN_E_SHAPE);
    assert_int_equal(fan_dataset_set_shape(ds, SIZE_MAX, 2, 1), FAN_E_SHAPE);
    assert_int_equal(fan_dataset_set_shape(ds, 0, 3, 4), FAN_E_SHAPE);
    TU_OK(fan_dataset_shape(ds, &w, NULL, NULL));
    assert_int_equal(w, 2);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_class_counts_counts_each_label(void **state)
{
    (void)state;
    tu_counter c = {0};
    const int32_t y[6] = {0, 2, 2, 3, 2, 0};
    fan_dataset *ds = make_indexed(&c, 6, 1, y, 5);
    size_t counts[5];
    TU_OK(fan_dataset_class_counts(ds, counts, 5));
    const size_t want[5] = {2, 0, 3, 1, 0};
    for (size_t k = 0; k < 5; k++) assert_int_equal(counts[k], want[k]);
    assert_int_equal(fan_dataset_class_counts(ds, counts, 4), FAN_E_SHAPE);
    assert_int_equal(fan_dataset_class_counts(ds, NULL, 5), FAN_E_NULL);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_subset_first_takes_leading_samples_and_keeps_settings(void **state)
{
    (void)state;
    tu_counter c = {0};
    const int32_t y[4] = {0, 1, 0, 1};
    fan_dataset *ds = make_indexed(&c, 4, 2, y, 3);
    TU_OK(fan_dataset_set_shape(ds, 1, 2, 1));
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 1.0, 4.0));
    fan_dataset *s = NULL;
    TU_OK(fan_dataset_subset_first(&s, ds, 3));
    assert_int_equal(fan_dataset_size(s), 3);
    assert_int_equal(fan_dataset_classes(s), 3);
    size_t w, h;
    TU_OK(fan_dataset_shape(s, &w, &h, NULL));
    assert_int_equal(w, 1);
    assert_int_equal(h, 2);
    float x[2];
    int32_t l;
    TU_OK(fan_dataset_get(s, 2, x, 2, &l));
    TU_CLOSE(x[0], (2.0 - 1.0) / 4.0, 1e-6, 0); /* standardisation carried over */
    assert_int_equal(l, 0);
    fan_dataset_free(s);
    s = SENTINEL;
    assert_int_equal(fan_dataset_subset_first(&s, ds, 0), FAN_E_INVALID);
    assert_null(s);
    assert_int_equal(fan_dataset_subset_first(&s, ds, 5), FAN_E_INVALID);
    assert_int_equal(fan_dataset_subset_first(&s, NULL, 1), FAN_E_NULL);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_subset_random_draws_distinct_samples_reproducibly(void **state)
{
    (void)state;
    tu_counter c = {0};
    int32_t y[50];
    for (int i = 0; i < 50; i++) y[i] = i % 5;
    fan_dataset *ds = make_indexed(&c, 50, 1, y, 5);
    fan_dataset *a = NULL, *b = NULL, *d = NULL;
    TU_OK(fan_dataset_subset_random(&a, ds, 20, 7));
    TU_OK(fan_dataset_subset_random(&b, ds, 20, 7));
    TU_OK(fan_dataset_subset_random(&d, ds, 20, 8));
    int seen[50] = {0}, differs = 0, sorted = 1;
    for (size_t k = 0; k < 20; k++) {
        size_t i = source_index(a, k);
        assert_true(i < 50);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        int32_t l;
        TU_OK(fan_dataset_get(a, k, NULL, 0, &l));
        assert_int_equal(l, y[i]);
        assert_int_equal(source_index(b, k), i);
        differs |= source_index(d, k) != i;
        if (k > 0 && source_index(a, k - 1) > i) sorted = 0;
    }
    assert_true(differs);
    assert_false(sorted); /* drawn order, not source order */
    fan_dataset_free(a);
    fan_dataset_free(b);
    fan_dataset_free(d);
    assert_int_equal(fan_dataset_subset_random(&a, ds, 51, 1), FAN_E_INVALID);
    assert_int_equal(fan_dataset_subset_random(&a, ds, 0, 1), FAN_E_INVALID);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_subset_random_picks_every_sample_with_equal_probability(void **state)
{
    (void)state;
    tu_counter c = {0};
    int32_t y[10] = {0};
    fan_dataset *ds = make_indexed(&c, 10, 1, y, 1);
    enum { TRIALS = 3000 };
    size_t hits[10] = {0};
    for (uint64_t seed = 0; seed < TRIALS; seed++) {
        fan_dataset *s = NULL;
        TU_OK(fan_dataset_subset_random(&s, ds, 3, seed));
        for (size_t k = 0; k < 3; k++) hits[source_index(s, k)]++;
        fan_dataset_free(s);
    }
    /* p = 0.3 per sample; 5 standard deviations of the binomial frequency. */
    const double p = 0.3, tol = 5 * sqrt(p * (1 - p) / TRIALS);
    for (size_t i = 0; i < 10; i++) TU_CLOSE((double)hits[i] / TRIALS, p, 0, tol);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_subset_stratified_takes_n_per_class_in_source_order(void **state)
{
    (void)state;
    tu_counter c = {0};
    int32_t y[40];
    for (int i = 0; i < 40; i++) y[i] = (i * 7) % 3 == 0 ? 0 : (i % 2 ? 1 : 2);
    fan_dataset *ds = make_indexed(&c, 40, 1, y, 3);
    size_t src_counts[3];
    TU_OK(fan_dataset_class_counts(ds, src_counts, 3));
    fan_dataset *s = NULL, *s2 = NULL, *s3 = NULL;
    TU_OK(fan_dataset_subset_stratified(&s, ds, 4, 11));
    TU_OK(fan_dataset_subset_stratified(&s2, ds, 4, 11));
    TU_OK(fan_dataset_subset_stratified(&s3, ds, 4, 12));
    assert_int_equal(fan_dataset_size(s), 12);
    size_t counts[3];
    TU_OK(fan_dataset_class_counts(s, counts, 3));
    for (size_t k = 0; k < 3; k++) assert_int_equal(counts[k], 4);
    int differs = 0;
    for (size_t k = 0; k < 12; k++) {
        size_t i = source_index(s, k);
        int32_t l;
        TU_OK(fan_dataset_get(s, k, NULL, 0, &l));
        assert_int_equal(l, y[i]);
        if (k > 0) assert_true(source_index(s, k - 1) < i);
        assert_int_equal(source_index(s2, k), i);
        differs |= source_index(s3, k) != i;
    }
    assert_true(differs);
    fan_dataset_free(s);
    fan_dataset_free(s2);
    fan_dataset_free(s3);
    size_t smallest = src_counts[0];
    for (size_t k = 1; k < 3; k++) smallest = src_counts[k] < smallest ? src_counts[k] : smallest;
    assert_int_equal(fan_dataset_subset_stratified(&s, ds, smallest + 1, 1), FAN_E_INVALID);
    assert_null(s);
    TU_OK(fan_dataset_subset_stratified(&s, ds, smallest, 1));
    fan_dataset_free(s);
    assert_int_equal(fan_dataset_subset_stratified(&s, ds, 0, 1), FAN_E_INVALID);
    assert_int_equal(fan_dataset_subset_stratified(&s, ds, SIZE_MAX / 2, 1), FAN_E_INVALID);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_subset_stratified_is_uniform_within_a_class(void **state)
{
    (void)state;
    tu_counter c = {0};
    int32_t y[12];
    for (int i = 0; i < 12; i++) y[i] = i < 8 ? 0 : 1; /* 8 of class 0, 4 of class 1 */
    fan_dataset *ds = make_indexed(&c, 12, 1, y, 2);
    enum { TRIALS = 3000 };
    size_t hits[12] = {0};
    for (uint64_t seed = 0; seed < TRIALS; seed++) {
        fan_dataset *s = NULL;
        TU_OK(fan_dataset_subset_stratified(&s, ds, 2, seed));
        for (size_t k = 0; k < 4; k++) hits[source_index(s, k)]++;
        fan_dataset_free(s);
    }
    for (size_t i = 0; i < 12; i++) {
        double p = i < 8 ? 2.0 / 8 : 2.0 / 4;
        TU_CLOSE((double)hits[i] / TRIALS, p, 0, 5 * sqrt(p * (1 - p) / TRIALS));
    }
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_subset_indices_allows_repeats_and_checks_range(void **state)
{
    (void)state;
    tu_counter c = {0};
    const int32_t y[3] = {0, 1, 2};
    fan_dataset *ds = make_indexed(&c, 3, 2, y, 3);
    const size_t idx[4] = {2, 2, 0, 1};
    fan_dataset *s = NULL;
    TU_OK(fan_dataset_subset_indices(&s, ds, idx, 4));
    assert_int_equal(fan_dataset_size(s), 4);
    for (size_t k = 0; k < 4; k++) assert_int_equal(source_index(s, k), idx[k]);
    fan_dataset_free(s);
    const size_t bad[2] = {0, 3};
    assert_int_equal(fan_dataset_subset_indices(&s, ds, bad, 2), FAN_E_INVALID);
    assert_int_equal(fan_dataset_subset_indices(&s, ds, NULL, 2), FAN_E_NULL);
    assert_int_equal(fan_dataset_subset_indices(&s, ds, idx, 0), FAN_E_INVALID);
    assert_null(s);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_split_is_disjoint_complete_and_reproducible(void **state)
{
    (void)state;
    tu_counter c = {0};
    int32_t y[30];
    for (int i = 0; i < 30; i++) y[i] = i % 4;
    fan_dataset *ds = make_indexed(&c, 30, 1, y, 4);
    fan_dataset *tr = NULL, *va = NULL, *rnd = NULL;
    TU_OK(fan_dataset_split(&tr, &va, ds, 8, 99));
    assert_int_equal(fan_dataset_size(tr), 22);
    assert_int_equal(fan_dataset_size(va), 8);
    int seen[30] = {0};
    for (size_t k = 0; k < 22; k++) {
        size_t i = source_index(tr, k);
        seen[i]++;
        if (k > 0) assert_true(source_index(tr, k - 1) < i); /* training keeps source order */
    }
    TU_OK(fan_dataset_subset_random(&rnd, ds, 8, 99));
    for (size_t k = 0; k < 8; k++) {
        size_t i = source_index(va, k);
        seen[i]++;
        assert_int_equal(source_index(rnd, k), i); /* validation = subset_random(n_val, seed) */
    }
    for (size_t i = 0; i < 30; i++) assert_int_equal(seen[i], 1);
    fan_dataset_free(rnd);
    fan_dataset_free(tr);
    fan_dataset_free(va);
    tr = va = SENTINEL;
    assert_int_equal(fan_dataset_split(&tr, &va, ds, 30, 1), FAN_E_INVALID);
    assert_null(tr);
    assert_null(va);
    assert_int_equal(fan_dataset_split(&tr, &va, ds, 0, 1), FAN_E_INVALID);
    assert_int_equal(fan_dataset_split(&tr, NULL, ds, 3, 1), FAN_E_NULL);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- out-of-memory sweeps: fail allocation N = 1, 2, ... until the call succeeds ---------- */

typedef fan_status (*make_fn)(fan_dataset **out, const fan_dataset *src, const fan_allocator *a);

/* Runs make with the Nth allocation failing for N = 1.. until it succeeds; every failure must
   be FAN_E_NOMEM with *out NULL and no leak. Returns the number of failing runs. */
static size_t oom_sweep(make_fn make, const fan_dataset *src)
{
    for (size_t n = 1;; n++) {
        tu_counter c = {0};
        c.fail_at = n;
        fan_allocator a = tu_allocator(&c);
        fan_dataset *out = SENTINEL;
        fan_status s = make(&out, src, &a);
        if (s == FAN_OK) {
            assert_non_null(out);
            fan_dataset_free(out);
            assert_int_equal(c.live_blocks, 0);
            return n - 1;
        }
        assert_int_equal(s, FAN_E_NOMEM);
        assert_null(out);
        assert_int_equal(c.live_blocks, 0);
        assert_true(n < 100);
    }
}

static const float oom_x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
static const int32_t oom_y[4] = {0, 1, 0, 1};
static const uint8_t oom_px[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static fan_status make_from_arrays(fan_dataset **out, const fan_dataset *src,
                                   const fan_allocator *a)
{
    (void)src;
    return fan_dataset_from_arrays(out, oom_x, oom_y, 4, 2, 2, a);
}

static fan_status make_from_u8(fan_dataset **out, const fan_dataset *src, const fan_allocator *a)
{
    (void)src;
    return fan_dataset_from_u8(out, oom_px, oom_y, 4, 1, 2, 1, 2, a);
}

/* Subsets allocate from the source's allocator, so the source is rebuilt on the sweep's. */
static fan_status with_source(fan_dataset **out, const fan_allocator *a, int which)
{
    fan_dataset *src = NULL;
    fan_status s = fan_dataset_from_u8(&src, oom_px, oom_y, 4, 1, 2, 1, 2, a);
    if (s != FAN_OK) {
        *out = NULL;
        return s;
    }
    const size_t idx[2] = {3, 1};
    fan_dataset *val = NULL;
    switch (which) {
    case 0: s = fan_dataset_subset_first(out, src, 2); break;
    case 1: s = fan_dataset_subset_random(out, src, 3, 5); break;
    case 2: s = fan_dataset_subset_stratified(out, src, 1, 5); break;
    case 3: s = fan_dataset_subset_indices(out, src, idx, 2); break;
    default:
        s = fan_dataset_split(out, &val, src, 1, 5);
        if (s == FAN_OK) assert_non_null(val);
        if (s != FAN_OK) assert_null(val);
        fan_dataset_free(val);
        break;
    }
    fan_dataset_free(src);
    return s;
}

static fan_status make_first(fan_dataset **o, const fan_dataset *s, const fan_allocator *a)
{
    (void)s;
    return with_source(o, a, 0);
}
static fan_status make_random(fan_dataset **o, const fan_dataset *s, const fan_allocator *a)
{
    (void)s;
    return with_source(o, a, 1);
}
static fan_status make_strat(fan_dataset **o, const fan_dataset *s, const fan_allocator *a)
{
    (void)s;
    return with_source(o, a, 2);
}
static fan_status make_indices(fan_dataset **o, const fan_dataset *s, const fan_allocator *a)
{
    (void)s;
    return with_source(o, a, 3);
}
static fan_status make_split(fan_dataset **o, const fan_dataset *s, const fan_allocator *a)
{
    (void)s;
    return with_source(o, a, 4);
}

static void test_constructors_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    assert_true(oom_sweep(make_from_arrays, NULL) >= 3);
    assert_true(oom_sweep(make_from_u8, NULL) >= 3);
    /* Each subset needs the source's 3 blocks plus at least its own 3. */
    assert_true(oom_sweep(make_first, NULL) >= 6);
    assert_true(oom_sweep(make_random, NULL) >= 6);
    assert_true(oom_sweep(make_strat, NULL) >= 6);
    assert_true(oom_sweep(make_indices, NULL) >= 6);
    assert_true(oom_sweep(make_split, NULL) >= 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_arrays_copies_values_labels_and_reports_sizes),
        cmocka_unit_test(test_from_arrays_rejects_bad_arguments_with_specific_status),
        cmocka_unit_test(test_null_dataset_accessors_are_safe),
        cmocka_unit_test(test_u8_scale_maps_0_and_255_to_0_and_1),
        cmocka_unit_test(test_float_normalisation_scale_is_identity_and_standardize_applies),
        cmocka_unit_test(test_bad_normalisation_is_rejected_and_leaves_state),
        cmocka_unit_test(test_compute_stats_gives_population_mean_and_std_after_scaling),
        cmocka_unit_test(test_gather_by_index_and_by_range_matches_get),
        cmocka_unit_test(test_get_checks_index_and_length),
        cmocka_unit_test(test_set_shape_requires_the_product_to_equal_dim),
        cmocka_unit_test(test_class_counts_counts_each_label),
        cmocka_unit_test(test_subset_first_takes_leading_samples_and_keeps_settings),
        cmocka_unit_test(test_subset_random_draws_distinct_samples_reproducibly),
        cmocka_unit_test(test_subset_random_picks_every_sample_with_equal_probability),
        cmocka_unit_test(test_subset_stratified_takes_n_per_class_in_source_order),
        cmocka_unit_test(test_subset_stratified_is_uniform_within_a_class),
        cmocka_unit_test(test_subset_indices_allows_repeats_and_checks_range),
        cmocka_unit_test(test_split_is_disjoint_complete_and_reproducible),
        cmocka_unit_test(test_constructors_fail_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
