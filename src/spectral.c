/*
 * spectral.c - spectra of a caller's own matrix (the fan_matrix_* functions), the angle between
 * two vectors, spectrum summaries, and the helpers the network diagnostics share with them.
 */
#include "spectral.h"

#include <math.h>

/* Degrees per radian, from pi to double precision. */
#define DEG_PER_RAD (180.0 / 3.14159265358979323846)

double fan__angle_from_dots(double dot, double aa, double bb)
{
    if (aa == 0.0 || bb == 0.0) return 90.0;
    /* sqrt(aa * bb) rather than sqrt(aa) * sqrt(bb): for identical vectors dot == aa == bb and
       sqrt(fl(d * d)) == d exactly, so the angle is exactly 0 instead of a rounding residue. */
    double c = dot / sqrt(aa * bb);
    if (c > 1.0) c = 1.0;
    if (c < -1.0) c = -1.0;
    return acos(c) * DEG_PER_RAD;
}

double fan__vec_angle_deg(const float *a, const float *b, size_t len)
{
    double dot = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < len; i++) {
        const double x = a[i], y = b[i];
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    return fan__angle_from_dots(dot, aa, bb);
}

void fan__spectrum_stats(const double *sv, size_t n, double *erank, double *pr, double *srank)
{
    double smax = 0.0;
    for (size_t i = 0; i < n; i++) smax = sv[i] > smax ? sv[i] : smax;
    if (smax == 0.0) {
        if (erank) *erank = 0.0;
        if (pr) *pr = 0.0;
        if (srank) *srank = 0.0;
        return;
    }
    /* All three measures are scale invariant; dividing by s_max first keeps s^4 from
       overflowing or underflowing for matrices with very large or very small entries. */
    double sum = 0.0, s2 = 0.0, s4 = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double t = sv[i] / smax, t2 = t * t;
        sum += t;
        s2 += t2;
        s4 += t2 * t2;
    }
    if (erank) {
        double h = 0.0;
        for (size_t i = 0; i < n; i++) {
            const double p = sv[i] / smax / sum;
            if (p > 0.0) h -= p * log(p); /* lim p->0 of p log p is 0 */
        }
        *erank = exp(h);
    }
    if (pr) *pr = s2 * s2 / s4;
    if (srank) *srank = s2; /* the largest scaled value is exactly 1 */
}

fan_status fan__svd_floats(const fan_allocator *al, const float *a, size_t rows, size_t cols,
                           double *sv, double *u)
{
    const size_t len = rows * cols; /* callers bound rows * cols by FAN_MAX_MATRIX */
    if (!fan__all_finite(a, len)) return FAN_E_NONFINITE; /* before allocating the copy */
    double *d = fan__calloc(al, len, sizeof *d);
    if (d == NULL) return FAN_E_NOMEM;
    for (size_t i = 0; i < len; i++) d[i] = a[i];
    const fan_status st = fan__svd(al, d, rows, cols, sv, u);
    fan__free(al, d);
    return st;
}

/* ---- the public generic functions --------------------------------------------------------- */

/* Argument checks shared by the fan_matrix_* functions; out is the caller's output pointer. */
static fan_status check_matrix(const float *a, size_t rows, size_t cols, const void *out)
{
    if (a == NULL || out == NULL) return FAN_E_NULL;
    if (rows == 0 || cols == 0) return FAN_E_INVALID;
    size_t len;
    if (!fan__mul_ok(rows, cols, &len) || len > FAN_MAX_MATRIX) return FAN_E_LIMIT;
    if (!fan__all_finite(a, len)) return FAN_E_NONFINITE;
    return FAN_OK;
}

fan_status fan_matrix_singular_values(const float *a, size_t rows, size_t cols, double *sv,
                                      size_t n, const fan_allocator *alloc)
{
    FAN__CHECK(check_matrix(a, rows, cols, sv));
    if (n != (rows < cols ? rows : cols)) return FAN_E_SHAPE;
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    return fan__svd_floats(&al, a, rows, cols, sv, NULL);
}

/* Computes the spectrum into scratch and summarises it; outputs may be NULL. */
static fan_status matrix_stats(const float *a, size_t rows, size_t cols, double *erank,
                               double *pr, double *srank, const void *out,
                               const fan_allocator *alloc)
{
    FAN__CHECK(check_matrix(a, rows, cols, out));
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    const size_t m = rows < cols ? rows : cols;
    double *sv = fan__calloc(&al, m, sizeof *sv);
    if (sv == NULL) return FAN_E_NOMEM;
    const fan_status st = fan__svd_floats(&al, a, rows, cols, sv, NULL);
    if (st == FAN_OK) fan__spectrum_stats(sv, m, erank, pr, srank);
    fan__free(&al, sv);
    return st;
}

fan_status fan_matrix_effective_rank(const float *a, size_t rows, size_t cols, double *erank,
                                     const fan_allocator *alloc)
{
    return matrix_stats(a, rows, cols, erank, NULL, NULL, erank, alloc);
}

fan_status fan_matrix_participation_ratio(const float *a, size_t rows, size_t cols, double *pr,
                                          const fan_allocator *alloc)
{
    return matrix_stats(a, rows, cols, NULL, pr, NULL, pr, alloc);
}

fan_status fan_matrix_stable_rank(const float *a, size_t rows, size_t cols, double *srank,
                                  const fan_allocator *alloc)
{
    return matrix_stats(a, rows, cols, NULL, NULL, srank, srank, alloc);
}

fan_status fan_matrix_angle(const float *a, const float *b, size_t len, double *deg)
{
    if (a == NULL || b == NULL || deg == NULL) return FAN_E_NULL;
    if (len == 0) return FAN_E_INVALID;
    if (!fan__all_finite(a, len) || !fan__all_finite(b, len)) return FAN_E_NONFINITE;
    *deg = fan__vec_angle_deg(a, b, len);
    return FAN_OK;
}

fan_status fan_spectrum_summary(const double *sv, size_t n, double *erank, double *pr,
                                double *srank)
{
    if (sv == NULL) return FAN_E_NULL;
    if (n == 0) return FAN_E_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!(sv[i] >= 0.0) || !isfinite(sv[i])) return FAN_E_INVALID; /* NaN fails >= */
    fan__spectrum_stats(sv, n, erank, pr, srank);
    return FAN_OK;
}
