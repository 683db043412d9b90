/* test_stats.c - the experiment programs' statistics (examples/paper/stats.c) against values
   known in closed form, printed in t tables, or computed here by hand (Welch-Satterthwaite). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>

#include "stats.h"
#include "testutil.h"

#define PI 3.14159265358979323846

/* Two-sided critical values of Student's t printed in every t table (e.g. Fisher and Yates):
   3 decimals, so the p-value they give is only good to about 2e-4. */
#define TABLE_TOL 2e-4

static void test_betainc_equals_x_for_a_b_one(void **state)
{
    (void)state;
    for (double x = 0.0; x <= 1.0; x += 0.125) TU_CLOSE(st_betainc(1.0, 1.0, x), x, 1e-13, 1e-15);
}

static void test_betainc_equals_x_to_the_a_when_b_is_one(void **state)
{
    (void)state;
    const double as[] = {0.5, 2.0, 3.7, 10.0};
    const double xs[] = {0.05, 0.3, 0.61, 0.95};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++)
            TU_CLOSE(st_betainc(as[i], 1.0, xs[j]), pow(xs[j], as[i]), 1e-12, 1e-15);
}

static void test_betainc_matches_closed_forms_and_symmetry(void **state)
{
    (void)state;
    /* I_x(1, b) = 1 - (1 - x)^b; I_x(2, 2) = 3x^2 - 2x^3 (CDF of Beta(2, 2)). */
    TU_CLOSE(st_betainc(1.0, 4.0, 0.2), 1.0 - pow(0.8, 4.0), 1e-12, 1e-15);
    TU_CLOSE(st_betainc(2.0, 2.0, 0.3), 3 * 0.09 - 2 * 0.027, 1e-12, 1e-15);
    /* I_{1/2}(a, a) = 1/2 by symmetry, and I_x(a, b) = 1 - I_{1-x}(b, a). */
    TU_CLOSE(st_betainc(7.5, 7.5, 0.5), 0.5, 1e-12, 1e-15);
    TU_CLOSE(st_betainc(2.5, 6.0, 0.37), 1.0 - st_betainc(6.0, 2.5, 0.63), 1e-12, 1e-15);
    assert_true(st_betainc(2.0, 3.0, 0.0) == 0.0);
    assert_true(st_betainc(2.0, 3.0, 1.0) == 1.0);
}

static void test_betainc_outside_domain_is_nan(void **state)
{
    (void)state;
    assert_true(isnan(st_betainc(0.0, 1.0, 0.5)));
    assert_true(isnan(st_betainc(1.0, -1.0, 0.5)));
    assert_true(isnan(st_betainc(1.0, 1.0, 1.5)));
    assert_true(isnan(st_betainc(1.0, 1.0, NAN)));
}

static void test_t_pvalue_matches_t_table(void **state)
{
    (void)state;
    TU_CLOSE(st_t_pvalue(2.228, 10.0), 0.05, 0.0, TABLE_TOL);
    TU_CLOSE(st_t_pvalue(3.169, 10.0), 0.01, 0.0, TABLE_TOL / 5);
    TU_CLOSE(st_t_pvalue(2.086, 20.0), 0.05, 0.0, TABLE_TOL);
    TU_CLOSE(st_t_pvalue(4.587, 10.0), 0.001, 0.0, TABLE_TOL / 20);
    /* Large df: the normal's 1.959964 gives 0.05. */
    TU_CLOSE(st_t_pvalue(1.959964, 1e8), 0.05, 0.0, 1e-6);
}

static void test_t_pvalue_matches_closed_forms_for_df_1_2_4(void **state)
{
    (void)state;
    /* df = 1 is the Cauchy: p = 1 - (2/pi) atan|t|. */
    TU_CLOSE(st_t_pvalue(1.0, 1.0), 0.5, 1e-12, 0.0);
    TU_CLOSE(st_t_pvalue(sqrt(3.0), 1.0), 1.0 / 3.0, 1e-12, 0.0);
    TU_CLOSE(st_t_pvalue(12.706, 1.0), 1.0 - 2.0 / PI * atan(12.706), 1e-12, 0.0);
    /* df = 2: p = 1 - |t| / sqrt(2 + t^2). */
    for (double t = 0.25; t < 20.0; t *= 2.0)
        TU_CLOSE(st_t_pvalue(t, 2.0), 1.0 - t / sqrt(2.0 + t * t), 1e-11, 1e-15);
    /* df = 4: F(t) = 1/2 + (3/8) u (1 - u^2 / 12 ... ) with u = t / sqrt(1 + t^2 / 4). */
    const double t = 1.3, q = 1.0 + t * t / 4.0;
    const double cdf = 0.5 + 0.375 * (t / sqrt(q)) * (1.0 - (t * t / q) / 12.0);
    TU_CLOSE(st_t_pvalue(t, 4.0), 2.0 * (1.0 - cdf), 1e-11, 0.0);
}

static void test_t_pvalue_is_even_and_one_at_zero(void **state)
{
    (void)state;
    assert_true(st_t_pvalue(0.0, 7.0) == 1.0);
    TU_CLOSE(st_t_pvalue(-2.5, 7.0), st_t_pvalue(2.5, 7.0), 1e-15, 0.0);
    assert_true(st_t_pvalue(INFINITY, 3.0) == 0.0);
    assert_true(isnan(st_t_pvalue(1.0, 0.0)));
    /* Far tails stay positive and tiny rather than cancelling to 0. */
    const double p = st_t_pvalue(40.0, 99.0);
    assert_true(p > 0.0 && p < 1e-50);
}

/* Student's t density, for an independent p-value by quadrature. */
static double t_pdf(double x, double df)
{
    const double c = exp(lgamma(0.5 * (df + 1.0)) - lgamma(0.5 * df)) / sqrt(df * PI);
    return c * pow(1.0 + x * x / df, -0.5 * (df + 1.0));
}

/* p = 1 - 2 * integral_0^|t| pdf, composite Simpson with 4000 intervals (error ~1e-13 here). */
static double t_pvalue_by_simpson(double t, double df)
{
    const int n = 4000;
    const double h = fabs(t) / n;
    double s = t_pdf(0.0, df) + t_pdf(fabs(t), df);
    for (int i = 1; i < n; i++) s += (i % 2 ? 4.0 : 2.0) * t_pdf(i * h, df);
    return 1.0 - 2.0 * s * h / 3.0;
}

static void test_t_pvalue_agrees_with_quadrature_for_fractional_df(void **state)
{
    (void)state;
    const double dfs[] = {1.5, 3.3, 6.97, 17.2};
    const double ts[] = {0.4, 1.7, 2.9};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 3; j++)
            TU_CLOSE(st_t_pvalue(ts[j], dfs[i]), t_pvalue_by_simpson(ts[j], dfs[i]), 1e-9, 1e-12);
}

static void test_mean_and_sd_use_n_minus_one(void **state)
{
    (void)state;
    const double x[] = {2, 4, 4, 4, 5, 5, 7, 9};
    TU_CLOSE(st_mean(x, 8), 5.0, 1e-15, 0.0);
    TU_CLOSE(st_var(x, 8), 32.0 / 7.0, 1e-14, 0.0);
    TU_CLOSE(st_sd(x, 8), sqrt(32.0 / 7.0), 1e-14, 0.0);
    assert_true(isnan(st_sd(x, 1)));
    assert_true(isnan(st_mean(x, 0)));
}

static void test_one_sample_ttest_by_hand(void **state)
{
    (void)state;
    /* mean 3, sd sqrt(2.5), se sqrt(0.5): t = (3 - 2) / sqrt(0.5) = sqrt(2), df 4. */
    const double x[] = {1, 2, 3, 4, 5};
    const st_ttest r = st_ttest_one(x, 5, 2.0);
    TU_CLOSE(r.t, sqrt(2.0), 1e-14, 0.0);
    TU_CLOSE(r.df, 4.0, 0.0, 0.0);
    const double q = 1.5, u = sqrt(2.0) / sqrt(q);
    TU_CLOSE(r.p, 2.0 * (0.5 - 0.375 * u * (1.0 - (2.0 / q) / 12.0)), 1e-11, 0.0);
}

static void test_one_sample_ttest_degenerate_cases(void **state)
{
    (void)state;
    const double same[] = {90, 90, 90};
    const st_ttest a = st_ttest_one(same, 3, 90.0);
    assert_true(isnan(a.t) && isnan(a.p));
    const st_ttest b = st_ttest_one(same, 3, 80.0);
    assert_true(isinf(b.t) && b.t > 0 && b.p == 0.0);
    assert_true(isnan(st_ttest_one(same, 1, 0.0).p));
}

static void test_paired_ttest_by_hand(void **state)
{
    (void)state;
    /* Differences 1, 2, 3: mean 2, sd 1, t = 2 sqrt(3), df 2, p = 1 - t / sqrt(2 + t^2). */
    const double x[] = {5, 7, 9}, y[] = {4, 5, 6};
    const st_ttest r = st_ttest_paired(x, y, 3);
    const double t = 2.0 * sqrt(3.0);
    TU_CLOSE(r.t, t, 1e-14, 0.0);
    TU_CLOSE(r.df, 2.0, 0.0, 0.0);
    TU_CLOSE(r.p, 1.0 - t / sqrt(14.0), 1e-11, 0.0);
}

static void test_welch_ttest_by_hand(void **state)
{
    (void)state;
    /* x: mean 3, var 5/2, n 5 -> v1 = 1/2. y: mean 7, var 14, n 6 -> v2 = 7/3.
       t = -4 / sqrt(17/6). df = (17/6)^2 / ((1/2)^2 / 4 + (7/3)^2 / 5) = 5780 / 829. */
    const double x[] = {1, 2, 3, 4, 5}, y[] = {2, 4, 6, 8, 10, 12};
    const st_ttest r = st_ttest_welch(x, 5, y, 6);
    TU_CLOSE(r.t, -4.0 / sqrt(17.0 / 6.0), 1e-14, 0.0);
    TU_CLOSE(r.df, 5780.0 / 829.0, 1e-14, 0.0);
    TU_CLOSE(r.p, t_pvalue_by_simpson(r.t, 5780.0 / 829.0), 1e-9, 0.0);
    /* Symmetric in the order of the samples, up to the sign of t. */
    const st_ttest s = st_ttest_welch(y, 6, x, 5);
    TU_CLOSE(s.t, -r.t, 1e-14, 0.0);
    TU_CLOSE(s.p, r.p, 1e-14, 0.0);
}

static void test_welch_equals_student_for_equal_n_and_variance(void **state)
{
    (void)state;
    /* Equal n and equal variances: Welch's df is 2n - 2 and t is Student's. */
    const double x[] = {1, 3, 5}, y[] = {4, 6, 8};
    const st_ttest r = st_ttest_welch(x, 3, y, 3);
    TU_CLOSE(r.df, 4.0, 1e-14, 0.0);
    TU_CLOSE(r.t, -3.0 / sqrt(8.0 / 3.0), 1e-14, 0.0);
    assert_true(isnan(st_ttest_welch(x, 1, y, 3).p));
}

static void test_auc_is_mean_height_of_trapezoids(void **state)
{
    (void)state;
    const double x[] = {0, 1, 3}, y1[] = {0.7, 0.7, 0.7}, y2[] = {0, 1, 1};
    TU_CLOSE(st_auc_normalized(x, y1, 3), 0.7, 1e-15, 0.0);
    TU_CLOSE(st_auc_normalized(x, y2, 3), 2.5 / 3.0, 1e-15, 0.0);
    TU_CLOSE(st_auc_normalized(x, y2, 1), 0.0, 0.0, 0.0);
    assert_true(isnan(st_auc_normalized(x, y2, 0)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_betainc_equals_x_for_a_b_one),
        cmocka_unit_test(test_betainc_equals_x_to_the_a_when_b_is_one),
        cmocka_unit_test(test_betainc_matches_closed_forms_and_symmetry),
        cmocka_unit_test(test_betainc_outside_domain_is_nan),
        cmocka_unit_test(test_t_pvalue_matches_t_table),
        cmocka_unit_test(test_t_pvalue_matches_closed_forms_for_df_1_2_4),
        cmocka_unit_test(test_t_pvalue_is_even_and_one_at_zero),
        cmocka_unit_test(test_t_pvalue_agrees_with_quadrature_for_fractional_df),
        cmocka_unit_test(test_mean_and_sd_use_n_minus_one),
        cmocka_unit_test(test_one_sample_ttest_by_hand),
        cmocka_unit_test(test_one_sample_ttest_degenerate_cases),
        cmocka_unit_test(test_paired_ttest_by_hand),
        cmocka_unit_test(test_welch_ttest_by_hand),
        cmocka_unit_test(test_welch_equals_student_for_equal_n_and_variance),
        cmocka_unit_test(test_auc_is_mean_height_of_trapezoids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
