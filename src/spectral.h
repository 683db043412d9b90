/*
 * spectral.h - internals shared by the diagnostics (diag.c, diag_data.c) and the generic
 * spectral functions (spectral.c). Never installed.
 */
#ifndef FAN_SPECTRAL_H
#define FAN_SPECTRAL_H

#include "internal.h"

/**
 * Angle in degrees between two vectors given their dot product and squared norms: 90 when either
 * norm is zero (no direction to compare), the cosine clamped to [-1, 1] against rounding.
 * NaN inputs give NaN.
 */
double fan__angle_from_dots(double dot, double aa, double bb);
/** Angle in degrees between a[0..len) and b[0..len), accumulated in double. */
double fan__vec_angle_deg(const float *a, const float *b, size_t len);
/**
 * Effective rank, participation ratio and stable rank of non-negative, finite singular values
 * sv[0..n) in any order (outputs may be NULL); all 0 for an all-zero spectrum. Not validated.
 */
void fan__spectrum_stats(const double *sv, size_t n, double *erank, double *pr, double *srank);
/**
 * Singular values (descending, min(rows, cols) of them) and optionally the left singular vectors
 * (see fan__svd) of the row-major float matrix a, which is only read: it is copied into double
 * scratch from al. Returns FAN_OK, FAN_E_NONFINITE, FAN_E_NOMEM or FAN_E_LAPACK and records no
 * message.
 */
fan_status fan__svd_floats(const fan_allocator *al, const float *a, size_t rows, size_t cols,
                           double *sv, double *u);

#endif /* FAN_SPECTRAL_H */
