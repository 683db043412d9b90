/*
 * bench.h - shared pieces of the C benchmark harness (bench.c, bench_ceiling.c).
 *
 * The harness is a client of libfanoise: it uses only the public header. The GEMM ceiling calls
 * cblas_sgemm directly, because it measures the BLAS the library sits on, not the library.
 * Every measurement is printed as one JSON object on stdout; progress goes to stderr. The driver
 * bench/run.py owns the row table and runs this program and bench/peer_torch.py side by side.
 */
#ifndef FAN_BENCH_H
#define FAN_BENCH_H

#include <stddef.h>
#include <stdio.h>

/** Largest number of widths a row may give (input, hidden..., output). */
#define BENCH_MAX_SIZES 16
/** Largest number of repetitions of one row. */
#define BENCH_MAX_REPS 32

/** Wall-clock seconds from a monotonic clock. */
double bench_now(void);
/** User + system CPU seconds of this process (all threads). */
double bench_cpu(void);
/** Median of v[0..n) (sorts v in place); 0 for n = 0. */
double bench_median(double *v, size_t n);
/** Prints `"key": [v0, v1, ...]` with %.6g numbers. */
void bench_json_array(FILE *f, const char *key, const double *v, size_t n);

/**
 * Floating-point operations of one training sample through the GEMMs of a dense net of widths
 * sizes[0..n_sizes): forward 2*in*out per layer, the weight gradient 2*in*out per layer, and the
 * error sent down 2*in*out for every layer but the first (nothing needs the input's error).
 */
double bench_gemm_flops_per_sample(const size_t *sizes, size_t n_sizes);

/**
 * Measures cblas_sgemm at the shapes of one training step of a net of widths sizes at batch
 * `batch` (the three GEMMs per layer above, in the library's row-major layout) and prints, as the
 * JSON object's members, each shape's GFLOP/s, the time of the step's GEMMs alone and the
 * GEMM-bound limit in samples per second. Returns 0, or 1 on an allocation failure.
 */
int bench_gemm_step(FILE *f, const size_t *sizes, size_t n_sizes, size_t batch);

/**
 * As bench_gemm_step, quicker and silent: the seconds one step's GEMMs take. Run right after each
 * training repetition so that the limit is measured under the same machine load. Returns 0, or 1
 * on an allocation failure.
 */
int bench_gemm_step_time(const size_t *sizes, size_t n_sizes, size_t batch, double *seconds);

/** Measures a large square sgemm (the BLAS's best case) and prints its GFLOP/s. */
int bench_gemm_peak(FILE *f, size_t dim);

/** Prints OpenBLAS's version/config string, core name and thread count as JSON members. */
void bench_blas_info(FILE *f);

#endif /* FAN_BENCH_H */
