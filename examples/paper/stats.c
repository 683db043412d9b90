/*
 * stats.c - t-tests with exact p-values and the trapezoid AUC. See stats.h.
 */
#include "stats.h"

#include <math.h>
#include <stdio.h>

/* Continued-fraction settings: relative tolerance near double epsilon, a floor that keeps the
   Lentz recurrences away from division by zero, and an iteration cap that is ample for the
   parameters t-tests produce (the fraction needs O(sqrt(max(a, b))) terms). */
#define BETACF_EPS 1e-15
#define BETACF_TINY 1e-300
#define BETACF_MAXIT 100000

double st_mean(const double *x, size_t n)
{
    if (n == 0) return NAN;
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

double st_var(const double *x, size_t n)
{
    if (n < 2) return NAN;
    const double m = st_mean(x, n);
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (x[i] - m) * (x[i] - m);
    return s / (double)(n - 1);
}

double st_sd(const double *x, size_t n)
{
    return sqrt(st_var(x, n));
}

/* Continued fraction for I_x(a, b) (Numerical Recipes 6.4, modified Lentz). */
static double betacf(double a, double b, double x)
{
    const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
    double c = 1.0, d = 1.0 - qab * x / qap;
    if (fabs(d) < BETACF_TINY) d = BETACF_TINY;
    d = 1.0 / d;
    double h = d;
    for (int m = 1; m <= BETACF_MAXIT; m++) {
        const double m2 = 2.0 * m;
        double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < BETACF_TINY) d = BETACF_TINY;
        c = 1.0 + aa / c;
        if (fabs(c) < BETACF_TINY) c = BETACF_TINY;
        d = 1.0 / d;
        h *= d * c;
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if (fabs(d) < BETACF_TINY) d = BETACF_TINY;
        c = 1.0 + aa / c;
        if (fabs(c) < BETACF_TINY) c = BETACF_TINY;
        d = 1.0 / d;
        const double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < BETACF_EPS) return h;
    }
    return NAN; /* did not converge: say so rather than return a wrong number */
}

double st_betainc(double a, double b, double x)
{
    if (!(a > 0.0) || !(b > 0.0) || !(x >= 0.0) || !(x <= 1.0)) return NAN;
    if (x == 0.0) return 0.0;
    if (x == 1.0) return 1.0;
    const double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    const double bt = exp(lbt);
    /* The fraction converges fast for x below the mean-ish point; use the symmetry
       I_x(a, b) = 1 - I_{1-x}(b, a) above it. */
    if (x < (a + 1.0) / (a + b + 2.0)) return bt * betacf(a, b, x) / a;
    return 1.0 - bt * betacf(b, a, 1.0 - x) / b;
}

double st_t_pvalue(double t, double df)
{
    if (isnan(t) || !(df > 0.0)) return NAN;
    if (isinf(t)) return 0.0;
    /* P(|T| >= |t|) = I_{df / (df + t^2)}(df / 2, 1 / 2). */
    const double x = df / (df + t * t);
    return st_betainc(0.5 * df, 0.5, x);
}

static st_ttest nan_test(void)
{
    const st_ttest r = {NAN, NAN, NAN};
    return r;
}

/* t = diff / se with df; handles se = 0 as documented in stats.h. */
static st_ttest finish(double diff, double se, double df)
{
    st_ttest r;
    r.df = df;
    if (se == 0.0) {
        if (diff == 0.0) return nan_test();
        r.t = diff > 0.0 ? INFINITY : -INFINITY;
        r.p = 0.0;
        return r;
    }
    r.t = diff / se;
    r.p = st_t_pvalue(r.t, df);
    return r;
}

st_ttest st_ttest_one(const double *x, size_t n, double mu0)
{
    if (n < 2) return nan_test();
    const double m = st_mean(x, n), s = st_sd(x, n);
    return finish(m - mu0, s / sqrt((double)n), (double)(n - 1));
}

st_ttest st_ttest_paired(const double *x, const double *y, size_t n)
{
    if (n < 2) return nan_test();
    double m = 0.0, ss = 0.0;
    for (size_t i = 0; i < n; i++) m += x[i] - y[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++) {
        const double d = x[i] - y[i] - m;
        ss += d * d;
    }
    const double s = sqrt(ss / (double)(n - 1));
    return finish(m, s / sqrt((double)n), (double)(n - 1));
}

st_ttest st_ttest_welch(const double *x, size_t nx, const double *y, size_t ny)
{
    if (nx < 2 || ny < 2) return nan_test();
    const double v1 = st_var(x, nx) / (double)nx, v2 = st_var(y, ny) / (double)ny;
    const double den = v1 * v1 / (double)(nx - 1) + v2 * v2 / (double)(ny - 1);
    /* With both variances zero the df is undefined; finish() then reports 0 or NaN anyway. */
    const double df = den > 0.0 ? (v1 + v2) * (v1 + v2) / den : (double)(nx + ny - 2);
    return finish(st_mean(x, nx) - st_mean(y, ny), sqrt(v1 + v2), df);
}

double st_auc_normalized(const double *x, const double *y, size_t n)
{
    if (n == 0) return NAN;
    if (n == 1) return y[0];
    double area = 0.0;
    for (size_t i = 1; i < n; i++) area += 0.5 * (y[i] + y[i - 1]) * (x[i] - x[i - 1]);
    const double span = x[n - 1] - x[0];
    return span > 0.0 ? area / span : NAN;
}

const char *st_format_p(double p, char *buf, size_t cap)
{
    if (isnan(p))
        snprintf(buf, cap, "n/a");
    else if (p == 0.0)
        snprintf(buf, cap, "<1e-300");
    else if (p >= 0.001)
        snprintf(buf, cap, "%.3f", p);
    else
        snprintf(buf, cap, "%.1e", p);
    return buf;
}
