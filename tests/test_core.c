/* test_core.c - status texts, versions and the random number generators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "kernels.h"
#include "testutil.h"

static void test_every_status_has_distinct_text(void **state)
{
    (void)state;
    const fan_status all[] = {FAN_OK, FAN_E_NULL, FAN_E_INVALID, FAN_E_SHAPE, FAN_E_NOMEM,
                              FAN_E_NUMERIC, FAN_E_IO, FAN_E_FORMAT, FAN_E_VERSION, FAN_E_LIMIT,
                              FAN_E_STATE, FAN_E_LAPACK, FAN_E_CHECKSUM, FAN_E_NONFINITE,
                              FAN_E_LABEL, FAN_E_UNSUPPORTED, FAN_DONE, FAN_STOPPED};
    const size_t n = sizeof all / sizeof all[0];
    for (size_t i = 0; i < n; i++) {
        const char *t = fan_strerror(all[i]);
        assert_non_null(t);
        assert_string_not_equal(t, "unknown status");
        for (size_t j = 0; j < i; j++) assert_string_not_equal(t, fan_strerror(all[j]));
    }
    assert_string_equal(fan_strerror((fan_status)12345), "unknown status");
    /* The values are part of the ABI. */
    assert_int_equal(FAN_E_UNSUPPORTED, 15);
    assert_int_equal(FAN_DONE, 100);
    assert_int_equal(FAN_STOPPED, 101);
}

static void test_enum_names_are_distinct_and_unknown_for_bad_values(void **state)
{
    (void)state;
    const char *rules[] = {"bp", "fa", "dfa", "usf", "brsf", "frsf", "kp", "wm"};
    for (int r = 0; r < 8; r++) assert_string_equal(fan_rule_name((fan_rule)r), rules[r]);
    assert_string_equal(fan_rule_name((fan_rule)8), "unknown");
    assert_string_equal(fan_rule_name((fan_rule)-1), "unknown");
    const char *acts[] = {"linear", "relu", "leaky_relu", "tanh", "sigmoid"};
    for (int a = 0; a < 5; a++) assert_string_equal(fan_activation_name((fan_activation)a), acts[a]);
    assert_string_equal(fan_activation_name((fan_activation)5), "unknown");
    assert_string_equal(fan_loss_name(FAN_LOSS_CROSS_ENTROPY), "cross_entropy");
    assert_string_equal(fan_loss_name(FAN_LOSS_MSE), "mse");
    assert_string_equal(fan_loss_name((fan_loss)2), "unknown");
    const char *opts[] = {"sgd", "adam", "adamw", "rmsprop"};
    for (int k = 0; k < 4; k++)
        assert_string_equal(fan_optimizer_kind_name((fan_optimizer_kind)k), opts[k]);
    assert_string_equal(fan_optimizer_kind_name((fan_optimizer_kind)4), "unknown");
    assert_string_equal(fan_init_name(FAN_INIT_HE_NORMAL), "he_normal");
    assert_string_equal(fan_init_name(FAN_INIT_XAVIER_UNIFORM), "xavier_uniform");
    assert_string_equal(fan_init_name(FAN_INIT_LECUN_NORMAL), "lecun_normal");
    assert_string_equal(fan_init_name((fan_init)3), "unknown");
    /* The pinned values of the rules. */
    assert_int_equal(FAN_RULE_DFA, 2);
    assert_int_equal(FAN_RULE_WM, 7);
}

static void test_versions_agree_everywhere(void **state)
{
    (void)state;
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", FANOISE_VERSION_MAJOR, FANOISE_VERSION_MINOR,
             FANOISE_VERSION_PATCH);
    assert_string_equal(buf, FANOISE_VERSION_STRING);
    assert_string_equal(fan_version_string(), FANOISE_VERSION_STRING);
    assert_int_equal(fan_version_number(), FANOISE_VERSION_NUMBER);
    assert_int_equal(FANOISE_VERSION_NUMBER, FANOISE_VERSION_MAJOR * 10000 +
                                                 FANOISE_VERSION_MINOR * 100 +
                                                 FANOISE_VERSION_PATCH);
#ifdef FAN_TEST_MAKE_VERSION
    assert_string_equal(FAN_TEST_MAKE_VERSION, FANOISE_VERSION_STRING);
#endif
}

static void test_rng_streams_are_reproducible_and_distinct(void **state)
{
    (void)state;
    fan__rng a, b, c;
    fan__rng_seed_stream(&a, 7, FAN__RNG_WEIGHTS, 0);
    fan__rng_seed_stream(&b, 7, FAN__RNG_WEIGHTS, 0);
    fan__rng_seed_stream(&c, 7, FAN__RNG_WEIGHTS, 1);
    int same_ab = 1, same_ac = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = fan__rng_next(&a), y = fan__rng_next(&b), z = fan__rng_next(&c);
        same_ab &= x == y;
        same_ac += x == z;
    }
    assert_true(same_ab);
    assert_int_equal(same_ac, 0);
}

static void test_rng_purposes_never_share_a_state_for_one_seed(void **state)
{
    (void)state;
    /* A user passing seed 5 to a net and to an iterator: W_0, B_0, the shuffle, the noise and
       the rest must all start from different states. */
    const fan__rng_purpose all[] = {FAN__RNG_WEIGHTS,     FAN__RNG_FEEDBACK,    FAN__RNG_SHUFFLE,
                                    FAN__RNG_NOISE_INPUT, FAN__RNG_NOISE_LABEL, FAN__RNG_SUBSET,
                                    FAN__RNG_MAGNITUDE,   FAN__RNG_MIRROR};
    const size_t n = sizeof all / sizeof all[0];
    uint64_t first[8 * 3];
    for (size_t p = 0; p < n; p++)
        for (uint64_t idx = 0; idx < 3; idx++) {
            fan__rng r;
            fan__rng_seed_stream(&r, 5, all[p], idx);
            first[p * 3 + idx] = fan__rng_next(&r);
        }
    for (size_t i = 0; i < n * 3; i++)
        for (size_t j = 0; j < i; j++) assert_true(first[i] != first[j]);
    /* Nor does (purpose, index) of one seed meet the same pair of the next seed. */
    fan__rng a, b;
    fan__rng_seed_stream(&a, 5, FAN__RNG_WEIGHTS, 0);
    fan__rng_seed_stream(&b, 6, FAN__RNG_WEIGHTS, 0);
    assert_true(fan__rng_next(&a) != fan__rng_next(&b));
}

static void test_below_is_uniform(void **state)
{
    (void)state;
    fan__rng r;
    fan__rng_seed(&r, 3);
    size_t counts[7] = {0};
    const size_t n = 70000;
    for (size_t i = 0; i < n; i++) counts[fan__rng_below(&r, 7)]++;
    for (int k = 0; k < 7; k++) {
        /* 5 binomial standard deviations around n / 7. */
        double sd = sqrt(n * (1.0 / 7) * (6.0 / 7));
        TU_CLOSE((double)counts[k], n / 7.0, 0, 5 * sd);
    }
}

/* Moments and tails of the ziggurat normal generator. */
static void test_ziggurat_normals_have_normal_moments_and_tails(void **state)
{
    (void)state;
    fan__rng r;
    fan__normal_tables t;
    fan__normal_tables_init(&t);
    fan__rng_seed(&r, 11);
    enum { N = 2000000 };
    static float v[N];
    fan__rng_fill_normal(&r, &t, v, N, 0.0f, 1.0f);
    double m1 = 0, m2 = 0, m4 = 0;
    size_t tail = 0, beyond_r = 0;
    for (size_t i = 0; i < N; i++) {
        double x = v[i];
        m1 += x;
        m2 += x * x;
        m4 += x * x * x * x;
        tail += fabs(x) > 2.0;
        beyond_r += fabs(x) > 3.5; /* past the ziggurat's base strip at 3.44 */
    }
    m1 /= N;
    m2 /= N;
    m4 /= N;
    TU_CLOSE(m1, 0.0, 0, 5 * sqrt(1.0 / N));
    TU_CLOSE(m2, 1.0, 0, 5 * sqrt(2.0 / N));
    TU_CLOSE(m4, 3.0, 0, 5 * sqrt(96.0 / N));
    /* P(|Z| > 2) = 0.0455003, P(|Z| > 3.5) = 4.6525e-4 */
    const double p2 = 0.0455003, p35 = 4.6525e-4;
    TU_CLOSE((double)tail / N, p2, 0, 5 * sqrt(p2 * (1 - p2) / N));
    TU_CLOSE((double)beyond_r / N, p35, 0, 5 * sqrt(p35 / N));
    /* mean and std are applied */
    fan__rng_fill_normal(&r, &t, v, 100000, 3.0f, 0.5f);
    double s = 0, ss = 0;
    for (size_t i = 0; i < 100000; i++) {
        s += v[i];
        ss += (double)v[i] * v[i];
    }
    TU_CLOSE(s / 1e5, 3.0, 0, 0.01);
    TU_CLOSE(sqrt(ss / 1e5 - (s / 1e5) * (s / 1e5)), 0.5, 0.01, 0);
}

/* The bulk generator: the same moments and tails, and the same bits on every vector width. */
static void test_bulk_normals_have_normal_moments_and_the_same_bits_on_every_isa(void **state)
{
    (void)state;
    fan__normal_tables t;
    fan__normal_tables_init(&t);
    enum { N = 2000000 };
    static float v[N], w[N];
    fan__rng r;
    fan__rng_seed(&r, 12);
    fan__rng_fill_normal_bulk(fan__kernels_supported(), &r, &t, v, N, 0.0f, 1.0f);
    double m1 = 0, m2 = 0, m4 = 0;
    size_t tail = 0, beyond_r = 0;
    for (size_t i = 0; i < N; i++) {
        const double x = v[i];
        m1 += x;
        m2 += x * x;
        m4 += x * x * x * x;
        tail += fabs(x) > 2.0;
        beyond_r += fabs(x) > 3.5;
    }
    TU_CLOSE(m1 / N, 0.0, 0, 5 * sqrt(1.0 / N));
    TU_CLOSE(m2 / N, 1.0, 0, 5 * sqrt(2.0 / N));
    TU_CLOSE(m4 / N, 3.0, 0, 5 * sqrt(96.0 / N));
    const double p2 = 0.0455003, p35 = 4.6525e-4;
    TU_CLOSE((double)tail / N, p2, 0, 5 * sqrt(p2 * (1 - p2) / N));
    TU_CLOSE((double)beyond_r / N, p35, 0, 5 * sqrt(p35 / N));
    /* Neighbouring values come from different streams: no correlation between them. */
    double lag = 0.0;
    for (size_t i = 0; i + 1 < N; i++) lag += (double)v[i] * v[i + 1];
    TU_CLOSE(lag / (N - 1), 0.0, 0, 5 * sqrt(1.0 / N));
    /* Every length (whole rounds, chunks and a partial last round) and every vector width give
       the same values, and leave the caller's stream in the same state. */
    static const size_t lens[] = {1, 15, 16, 17, 1023, 1024, 1025, 50176};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        fan__rng a, b;
        fan__rng_seed(&a, 40 + li);
        w[lens[li]] = 7.0f;
        fan__rng_fill_normal_bulk(FAN__KERNELS_CBLAS, &a, &t, w, lens[li], 1.5f, 0.25f);
        assert_true(w[lens[li]] == 7.0f); /* nothing written past the end */
        for (int isa = FAN__KERNELS_AVX2; isa <= (int)fan__kernels_supported(); isa++) {
            fan__rng_seed(&b, 40 + li);
            fan__rng_fill_normal_bulk((fan__kernels)isa, &b, &t, v, lens[li], 1.5f, 0.25f);
            assert_memory_equal(v, w, lens[li] * sizeof *v);
            assert_memory_equal(&a, &b, sizeof a);
        }
    }
    /* Blocks depend only on the call's seed and their index: filled backwards, the same. */
    fan__rng c;
    fan__rng_seed(&c, 77);
    fan__rng_fill_normal_bulk(FAN__KERNELS_CBLAS, &c, &t, w, 50176, 0.0f, 1.0f);
    fan__rng_seed(&c, 77);
    const uint64_t seed = fan__rng_next(&c);
    for (size_t k = 50176 / FAN__NORMAL_BLOCK + 1; k-- > 0;) {
        const size_t left = 50176 - k * FAN__NORMAL_BLOCK;
        fan__rng_normal_block(fan__kernels_supported(), seed, k, &t, v,
                              left < FAN__NORMAL_BLOCK ? left : FAN__NORMAL_BLOCK, 0.0f, 1.0f);
    }
    assert_memory_equal(v, w, 50176 * sizeof *v);
}

static void test_uniform_fill_stays_in_range_with_right_moments(void **state)
{
    (void)state;
    fan__rng r;
    fan__rng_seed(&r, 5);
    static float v[400000];
    fan__rng_fill_uniform(&r, v, 400000, -1.0f, 3.0f);
    double s = 0, ss = 0;
    for (size_t i = 0; i < 400000; i++) {
        assert_true(v[i] >= -1.0f && v[i] < 3.0f);
        s += v[i];
        ss += (double)v[i] * v[i];
    }
    double mean = s / 4e5;
    TU_CLOSE(mean, 1.0, 0, 0.01);
    TU_CLOSE(ss / 4e5 - mean * mean, 16.0 / 12, 0.01, 0);
}

static void test_shuffle_is_a_permutation(void **state)
{
    (void)state;
    fan__rng r;
    fan__rng_seed(&r, 9);
    size_t idx[1000], seen[1000] = {0};
    for (size_t i = 0; i < 1000; i++) idx[i] = i;
    fan__rng_shuffle(&r, idx, 1000);
    size_t fixed = 0;
    for (size_t i = 0; i < 1000; i++) {
        seen[idx[i]]++;
        fixed += idx[i] == i;
    }
    for (size_t i = 0; i < 1000; i++) assert_int_equal(seen[i], 1);
    assert_true(fixed < 10); /* a shuffle leaves about one element in place */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_status_has_distinct_text),
        cmocka_unit_test(test_versions_agree_everywhere),
        cmocka_unit_test(test_enum_names_are_distinct_and_unknown_for_bad_values),
        cmocka_unit_test(test_rng_streams_are_reproducible_and_distinct),
        cmocka_unit_test(test_rng_purposes_never_share_a_state_for_one_seed),
        cmocka_unit_test(test_below_is_uniform),
        cmocka_unit_test(test_ziggurat_normals_have_normal_moments_and_tails),
        cmocka_unit_test(test_bulk_normals_have_normal_moments_and_the_same_bits_on_every_isa),
        cmocka_unit_test(test_uniform_fill_stays_in_range_with_right_moments),
        cmocka_unit_test(test_shuffle_is_a_permutation),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
