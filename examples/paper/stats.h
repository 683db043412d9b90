/*
 * stats.h - the statistics the paper's experiments report: mean, standard deviation, one-sample,
 * paired and Welch t-tests with exact two-sided p-values (through the regularised incomplete
 * beta function), and the trapezoid area under a curve. Double precision throughout; no state.
 */
#ifndef EXPKIT_STATS_H
#define EXPKIT_STATS_H

#include <stddef.h>

/** Result of a t-test: statistic, degrees of freedom, two-sided p-value. */
typedef struct st_ttest {
    double t;
    double df;
    double p;
} st_ttest;

/** Arithmetic mean of n values (NaN for n = 0). */
double st_mean(const double *x, size_t n);
/** Sample standard deviation, divisor n - 1 (NaN for n < 2). */
double st_sd(const double *x, size_t n);
/** Sample variance, divisor n - 1 (NaN for n < 2). */
double st_var(const double *x, size_t n);

/**
 * Regularised incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1, by the continued
 * fraction of Numerical Recipes (modified Lentz), accurate to about 1e-14. NaN outside the domain.
 */
double st_betainc(double a, double b, double x);

/** Two-sided p-value P(|T| >= |t|) of Student's t with df > 0 degrees of freedom. */
double st_t_pvalue(double t, double df);

/**
 * One-sample t-test of mean(x) against mu0 (df = n - 1). With n < 2, or zero variance and the
 * mean equal to mu0, every field is NaN; zero variance with a different mean gives t = +-inf, p = 0.
 */
st_ttest st_ttest_one(const double *x, size_t n, double mu0);

/** Paired t-test of x - y (one-sample test of the differences against 0). */
st_ttest st_ttest_paired(const double *x, const double *y, size_t n);

/**
 * Welch's unequal-variance t-test of mean(x) - mean(y); df by the Welch-Satterthwaite formula
 * (v1 + v2)^2 / (v1^2 / (n1 - 1) + v2^2 / (n2 - 1)), v = s^2 / n. NaN fields when either sample
 * has fewer than two values or both variances are zero and the means are equal.
 */
st_ttest st_ttest_welch(const double *x, size_t nx, const double *y, size_t ny);

/**
 * Trapezoid area under the points (x_i, y_i), i = 0 .. n-1, x increasing, divided by the span
 * x_{n-1} - x_0 so that a constant curve y = c has area c (the mean height). For n = 1 returns y_0;
 * NaN for n = 0.
 */
double st_auc_normalized(const double *x, const double *y, size_t n);

/** Formats a p-value compactly ("0.012", "3.1e-05", "<1e-300") into buf (cap >= 12). */
const char *st_format_p(double p, char *buf, size_t cap);

#endif
