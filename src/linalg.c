/* linalg.c - the only file that includes cblas.h and lapacke.h; swapping the BLAS is this file. */
#include "internal.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>

/* Callers keep every dimension below FAN_MAX_MATRIX, which fits in a blasint. */
void fan__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                size_t ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha,
                a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

void fan__dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha,
                const double *a, size_t lda, const double *b, size_t ldb, double beta, double *c,
                size_t ldc)
{
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha,
                a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

fan_status fan__svd(const fan_allocator *al, double *a, size_t rows, size_t cols, double *sv,
                    double *u)
{
    /* A row-major rows x cols matrix is, unchanged in memory, the column-major cols x rows matrix
       A^T. Decomposing that with the column-major _work interface avoids LAPACKE's hidden
       transposition copies (and its malloc). A^T = U' S V'^T gives A = V' S U'^T, so A's left
       singular vectors are V'; LAPACK returns V'^T column-major (k x rows, ld k), which is V'
       row-major (rows x k): exactly the layout u wants. */
    /* LAPACK is never given NaN or infinity: dgesdd then prints through xerbla ("On entry to
       DLASCL parameter number 4 had an illegal value"), reports convergence with garbage, or
       does not return at all (seen with infinite entries). */
    for (size_t i = 0; i < rows * cols; i++)
        if (!isfinite(a[i])) return FAN_E_NONFINITE;
    const lapack_int m = (lapack_int)cols, n = (lapack_int)rows;
    const lapack_int k = m < n ? m : n;
    const char jobz = u != NULL ? 'S' : 'N';
    double *uprime = NULL; /* A's right singular vectors; computed because 'S' requires them */
    double query = 0.0;
    lapack_int info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, jobz, m, n, a, m, sv, uprime, m, u, k,
                                          &query, -1, NULL);
    if (info != 0) return FAN_E_LAPACK;
    size_t lwork = (size_t)query + 1;
    double *work = fan__calloc(al, lwork, sizeof *work);
    lapack_int *iwork = fan__calloc(al, 8 * (size_t)k, sizeof *iwork);
    if (u != NULL) uprime = fan__calloc(al, (size_t)m * (size_t)k, sizeof *uprime);
    fan_status st = FAN_E_NOMEM;
    if (work != NULL && iwork != NULL && (u == NULL || uprime != NULL)) {
        info = LAPACKE_dgesdd_work(LAPACK_COL_MAJOR, jobz, m, n, a, m, sv, uprime, m, u, k, work,
                                   (lapack_int)lwork, iwork);
        st = info == 0 ? FAN_OK : FAN_E_LAPACK;
    }
    fan__free(al, uprime);
    fan__free(al, iwork);
    fan__free(al, work);
    return st;
}
