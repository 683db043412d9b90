/*
 * kernels.h - the single-precision GEMM kernels of the training step and their dispatch.
 *
 * The step's products come in three forms, all row-major with C overwritten (beta = 0):
 *   forward        Z = H W^T      "NT": both operands contiguous along the summed dimension
 *   weight grad    dW = D^T H     "TN": B contiguous along C's columns, A read down a column
 *   error down     D_in = D M     "NN": B contiguous along C's columns, A read along a row
 * The kernels of kernels_avx2.c and kernels_avx512.c take them without packing (every operand of
 * a 784-100-10 step fits in L2) and are compiled with per-function target attributes, so the
 * library still loads and runs on any x86-64: which set runs is decided from CPUID at run time,
 * never from a table of CPU models. CBLAS (linalg.c) is the portable path and the reference.
 *
 * Every kernel computes each element of C by one fixed sequence of operations that depends only
 * on its row of op(A), its column of op(B) and k, never on m, n, where the element sits in its
 * block or how the caller splits C into pieces: a batch split across threads gives the same bits
 * as one call on the whole batch.
 */
#ifndef FAN_KERNELS_H
#define FAN_KERNELS_H

#include "internal.h"

/**
 * C (m x n, ldc) = op(A) * op(B), op(A) m x k, op(B) k x n, row-major, op(X) = X^T when trans_x is
 * non-zero, with `kernels`, which the caller has checked the CPU supports. TT products, and every
 * product under FAN__KERNELS_CBLAS, go to fan__sgemm. k = 0 gives C = 0.
 */
void fan__gemm(fan__kernels kernels, int trans_a, int trans_b, size_t m, size_t n, size_t k,
               const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc);

/** fan__all_finite with the widest vectors of `isa` (the gradient scan of a pass that asks for one). */
int fan__all_finite_isa(fan__kernels isa, const float *v, size_t n);

/** A switch for the tests, which force each fallback on one net (lowered to what the CPU
    supports). Touches nothing but that net. */
void fan__net_set_kernels(fan_net *net, fan__kernels k);

/* The kernels themselves (defined as no-ops where the compiler cannot target x86-64 SIMD; never
   called then, since detection returns FAN__KERNELS_CBLAS). */

/** C[i][j] = sum_p A[i*lda + p] * B[j*ldb + p]: the NT form. */
void fan__gemm_nt_avx512(size_t m, size_t n, size_t k, const float *a, size_t lda,
                         const float *b, size_t ldb, float *c, size_t ldc);
void fan__gemm_nt_avx2(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                       size_t ldb, float *c, size_t ldc);
/**
 * C[i][j] = sum_p A(i, p) * B[p*ldb + j] with A(i, p) = a[i*rsa + p*csa]: NN (rsa = lda,
 * csa = 1) and TN (rsa = 1, csa = lda).
 */
void fan__gemm_bn_avx512(size_t m, size_t n, size_t k, const float *a, size_t rsa, size_t csa,
                         const float *b, size_t ldb, float *c, size_t ldc);
void fan__gemm_bn_avx2(size_t m, size_t n, size_t k, const float *a, size_t rsa, size_t csa,
                       const float *b, size_t ldb, float *c, size_t ldc);

#endif /* FAN_KERNELS_H */
