/*
 * kernels_avx2.c - the step's GEMMs with 256-bit AVX2 + FMA vectors (see kernels.h), the set every
 * x86-64 CPU since Haswell (2013) and Zen (2017) has. Each function carries its own target
 * attribute, so the file compiles with the library's ordinary flags; kernels.c calls into it only
 * when CPUID says the CPU and the OS support AVX2 and FMA. The same blocking as the AVX-512 file,
 * narrowed to 16 vector registers.
 */
#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

/* Floats per vector. */
#define VL 8

/* Lane masks for maskload/maskstore: row r has its first r lanes set. */
static const int32_t lane_mask[VL + 1][VL] = {
    {0, 0, 0, 0, 0, 0, 0, 0},         {-1, 0, 0, 0, 0, 0, 0, 0},
    {-1, -1, 0, 0, 0, 0, 0, 0},       {-1, -1, -1, 0, 0, 0, 0, 0},
    {-1, -1, -1, -1, 0, 0, 0, 0},     {-1, -1, -1, -1, -1, 0, 0, 0},
    {-1, -1, -1, -1, -1, -1, 0, 0},   {-1, -1, -1, -1, -1, -1, -1, 0},
    {-1, -1, -1, -1, -1, -1, -1, -1},
};

INLINE __m256i mask_of(size_t lanes)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)lane_mask[lanes]);
}

/* ---- NT: C[i][j] = sum_p A[i][p] B[j][p] ---------------------------------------------------- */

/* 3 rows of A by 4 rows of B: 12 accumulators, 3 A vectors and one B vector fill the 16
   registers; 7 loads feed 12 FMAs per p step. */
#define NT_MR 3
#define NT_NR 4
/* Floats of k per pass: NT_NR rows of B take 16 KB, a third of a 48 KB (half of a 32 KB) L1. */
#define NT_KC 1024

/* The sums of four vectors, lane q = sum of v_q: fold 8 lanes to 4, then two levels of pairwise
   horizontal adds, the same sequence for every element of C. */
INLINE __m128 sum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
#define FOLD(v) _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps((v), 1))
    const __m128 h01 = _mm_hadd_ps(FOLD(v0), FOLD(v1));
    const __m128 h23 = _mm_hadd_ps(FOLD(v2), FOLD(v3));
#undef FOLD
    return _mm_hadd_ps(h01, h23);
}

/* One block of mr (3, 2 or 1: a compile-time constant after inlining) rows of A by NT_NR rows of
   B, so that a batch that is not a multiple of NT_MR (64 = 21 x 3 + 1) does not pay for a whole
   block in its last rows. Rows of B past the end repeat its last real one (so every load is in
   bounds) and are not stored. */
INLINE void nt_block(const int mr, const float *const *ar, const float *const *br, size_t kc,
                     float *c, size_t ldc, size_t rows, size_t cols, int accumulate)
{
    __m256 acc[NT_MR][NT_NR];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int j = 0; j < NT_NR; j++) acc[i][j] = _mm256_setzero_ps();
    size_t p = 0;
    for (; p + VL <= kc; p += VL) {
        __m256 av[NT_MR];
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) av[i] = _mm256_loadu_ps(ar[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < NT_NR; j++) {
            const __m256 bv = _mm256_loadu_ps(br[j] + p);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    if (p < kc) {
        /* maskload reads zeros past the end (and never touches those addresses). */
        const __m256i mk = mask_of(kc - p);
        __m256 av[NT_MR];
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) av[i] = _mm256_maskload_ps(ar[i] + p, mk);
#pragma GCC unroll 8
        for (int j = 0; j < NT_NR; j++) {
            const __m256 bv = _mm256_maskload_ps(br[j] + p, mk);
#pragma GCC unroll 8
            for (int i = 0; i < mr; i++) acc[i][j] = _mm256_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    /* Constant bounds and indices here keep the accumulators in registers. */
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if ((size_t)i >= rows) break;
        float *ci = c + (size_t)i * ldc;
        const __m128 s = sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
        if (cols == NT_NR) {
            _mm_storeu_ps(ci, accumulate ? _mm_add_ps(_mm_loadu_ps(ci), s) : s);
        } else {
            float t[4];
            _mm_storeu_ps(t, s);
            for (size_t q = 0; q < cols; q++) ci[q] = accumulate ? ci[q] + t[q] : t[q];
        }
    }
}

TARGET void fan__gemm_nt_avx2(size_t m, size_t n, size_t k, const float *a, size_t lda,
                              const float *b, size_t ldb, float *c, size_t ldc)
{
    for (size_t p0 = 0; p0 < k; p0 += NT_KC) {
        const size_t kc = k - p0 < NT_KC ? k - p0 : NT_KC;
        for (size_t j0 = 0; j0 < n; j0 += NT_NR) {
            const size_t cols = n - j0 < NT_NR ? n - j0 : NT_NR;
            const float *br[NT_NR];
            for (size_t j = 0; j < NT_NR; j++) br[j] = b + (j0 + (j < cols ? j : cols - 1)) * ldb + p0;
            for (size_t i0 = 0; i0 < m; i0 += NT_MR) {
                const size_t rows = m - i0 < NT_MR ? m - i0 : NT_MR;
                const float *ar[NT_MR];
                for (size_t i = 0; i < NT_MR; i++)
                    ar[i] = a + (i0 + (i < rows ? i : rows - 1)) * lda + p0;
                float *cb = c + i0 * ldc + j0;
                /* One specialised copy per block height keeps the accumulators in registers. */
                if (rows == 3)
                    nt_block(3, ar, br, kc, cb, ldc, rows, cols, p0 > 0);
                else if (rows == 2)
                    nt_block(2, ar, br, kc, cb, ldc, rows, cols, p0 > 0);
                else
                    nt_block(1, ar, br, kc, cb, ldc, rows, cols, p0 > 0);
            }
        }
    }
}

/* ---- BN: C[i][j] = sum_p A(i, p) B[p][j], B contiguous along j -------------------------------- */

/* 6 rows by 2 vectors (16 columns): 12 accumulators, 2 B vectors and one broadcast. */
#define BN_MR 6
#define BN_NV 2
/* Rows of B per pass (16 KB of it in L1); later passes reload the accumulators from C, so each
   element is still one FMA chain over p in order. */
#define BN_KC 256

/* One block of mr rows (6, 4 or 2) and nv vectors, both compile-time constants after inlining,
   so that a layer's last units (100 = 16 x 6 + 4) do not pay for a whole block. */
INLINE void bn_block(const int mr, const int nv, const float *a, const size_t *arow, size_t csa,
                     size_t k, const float *b, size_t ldb, const __m256i *mask, float *c,
                     size_t ldc, size_t rows, int accumulate)
{
    __m256 acc[BN_MR][BN_NV];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[i][v] = accumulate && (size_t)i < rows
                            ? _mm256_maskload_ps(c + (size_t)i * ldc + v * VL, mask[v])
                            : _mm256_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        const float *bp = b + p * ldb;
        __m256 bv[BN_NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) bv[v] = _mm256_maskload_ps(bp + v * VL, mask[v]);
        const float *ap = a + p * csa;
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m256 ai = _mm256_broadcast_ss(ap + arow[i]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if ((size_t)i >= rows) break;
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) _mm256_maskstore_ps(c + (size_t)i * ldc + v * VL, mask[v], acc[i][v]);
    }
}

/* The same block with full vectors: plain loads and stores. */
INLINE void bn_block_full(const int mr, const float *a, const size_t *arow, size_t csa, size_t k,
                          const float *b, size_t ldb, float *c, size_t ldc, size_t rows,
                          int accumulate)
{
    __m256 acc[BN_MR][BN_NV];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < BN_NV; v++)
            acc[i][v] = accumulate && (size_t)i < rows
                            ? _mm256_loadu_ps(c + (size_t)i * ldc + v * VL)
                            : _mm256_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        const float *bp = b + p * ldb;
        __m256 bv[BN_NV];
#pragma GCC unroll 8
        for (int v = 0; v < BN_NV; v++) bv[v] = _mm256_loadu_ps(bp + v * VL);
        const float *ap = a + p * csa;
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m256 ai = _mm256_broadcast_ss(ap + arow[i]);
#pragma GCC unroll 8
            for (int v = 0; v < BN_NV; v++) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if ((size_t)i >= rows) break;
#pragma GCC unroll 8
        for (int v = 0; v < BN_NV; v++) _mm256_storeu_ps(c + (size_t)i * ldc + v * VL, acc[i][v]);
    }
}

TARGET void fan__gemm_bn_avx2(size_t m, size_t n, size_t k, const float *a, size_t rsa,
                              size_t csa, const float *b, size_t ldb, float *c, size_t ldc)
{
    const size_t panel = BN_NV * VL;
    for (size_t j0 = 0; j0 < n; j0 += panel) {
        const size_t cols = n - j0 < panel ? n - j0 : panel;
        __m256i mask[BN_NV];
        for (int v = 0; v < BN_NV; v++) {
            const size_t left = cols > (size_t)v * VL ? cols - (size_t)v * VL : 0;
            mask[v] = mask_of(left < VL ? left : VL);
        }
        for (size_t p0 = 0; p0 < k; p0 += BN_KC) {
            const size_t kc = k - p0 < BN_KC ? k - p0 : BN_KC;
            const float *ap = a + p0 * csa, *bb = b + p0 * ldb + j0;
            const int acc = p0 > 0;
            for (size_t i0 = 0; i0 < m; i0 += BN_MR) {
                const size_t rows = m - i0 < BN_MR ? m - i0 : BN_MR;
                size_t arow[BN_MR];
                for (size_t i = 0; i < BN_MR; i++) arow[i] = (i0 + (i < rows ? i : rows - 1)) * rsa;
                float *cb = c + i0 * ldc + j0;
                /* One specialised copy per block shape keeps the accumulators in registers
                   (nv 0: two whole vectors, plain loads and stores). */
                const int mr = rows > 4 ? 6 : rows > 2 ? 4 : 2;
                const int nv = cols == panel ? 0 : cols > VL ? 2 : 1;
#define FULL(r) bn_block_full(r, ap, arow, csa, kc, bb, ldb, cb, ldc, rows, acc)
#define PART(r, v) bn_block(r, v, ap, arow, csa, kc, bb, ldb, mask, cb, ldc, rows, acc)
                switch (mr * 10 + nv) {
                case 60: FULL(6); break;
                case 40: FULL(4); break;
                case 20: FULL(2); break;
                case 62: PART(6, 2); break;
                case 42: PART(4, 2); break;
                case 22: PART(2, 2); break;
                case 61: PART(6, 1); break;
                case 41: PART(4, 1); break;
                default: PART(2, 1); break;
                }
#undef FULL
#undef PART
            }
        }
    }
}

#else /* no x86-64 SIMD from this compiler: never called (kernels.c detects FAN__KERNELS_CBLAS) */

void fan__gemm_nt_avx2(size_t m, size_t n, size_t k, const float *a, size_t lda, const float *b,
                       size_t ldb, float *c, size_t ldc)
{
    fan__sgemm(0, 1, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

void fan__gemm_bn_avx2(size_t m, size_t n, size_t k, const float *a, size_t rsa, size_t csa,
                       const float *b, size_t ldb, float *c, size_t ldc)
{
    fan__sgemm(csa == 1 ? 0 : 1, 0, m, n, k, 1.0f, a, csa == 1 ? rsa : csa, b, ldb, 0.0f, c, ldc);
}

#endif
