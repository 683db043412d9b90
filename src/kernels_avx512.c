/*
 * kernels_avx512.c - the step's GEMMs with 512-bit AVX-512F vectors (see kernels.h). Each function
 * carries its own target attribute: the file compiles with the library's ordinary flags, and
 * kernels.c calls into it only when CPUID says the CPU and the OS support AVX-512.
 *
 * Neither form packs its operands. At the step's shapes (784-100-10 at batch 64: X 200 KB, W
 * 313 KB, errors 25 KB) everything sits in the 1-2 MB L2 of current cores, and packing would
 * cost a pass over each operand per call, which is what OpenBLAS spends 7% of a step on.
 */
#include "kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>
#include <string.h>

#define TARGET __attribute__((target("avx512f,avx2,fma")))
#define INLINE static inline __attribute__((always_inline)) TARGET

/* Floats per vector. */
#define VL 16

/* ---- NT: C[i][j] = sum_p A[i][p] B[j][p] ---------------------------------------------------- */

/* A block is NT_MR rows of A against NT_NR rows of B: 24 accumulators, the 4 A vectors of the
   current p and one B vector take 29 of the 32 registers, and each p step's 10 loads feed 24
   FMAs, so the loop is bound by the FMA units, not by loads. */
#define NT_MR 4
#define NT_NR 6
/* Floats of k summed per pass: NT_NR rows of B (the block reused across all of A) take
   NT_NR * NT_KC * 4 = 24 KB, half of a 48 KB L1. */
#define NT_KC 1024

/* The sums of the lanes of several vectors at once, every sum by one fixed tree:
   sum(v) = (f0 + f1) + (f2 + f3), f_q = (v_q + v_{q+8}) + (v_{q+4} + v_{q+12}).
   Each level adds two shuffles of a pair of vectors, so one add serves 2, 4, 8 and 16 sums at
   levels 1-4; reducing each vector on its own (halves, then horizontal adds) gives the same
   bits but spends most of its shuffles on idle lanes: the forward GEMM of 784-100-10 at batch
   64 ran 5-7% slower that way. */

/* Level 1: lanes 0-7 hold a_q + a_{q+8}, lanes 8-15 hold b_q + b_{q+8}. */
INLINE __m512 halves(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}

/* Level 2, on two level-1 results: 128-bit lane L holds f of the L-th of their four vectors. */
INLINE __m512 quarters(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
}

/* Levels 3 and 4: adjacent pairs within each 128-bit lane, a's two sums then b's. */
INLINE __m512 pairs(__m512 a, __m512 b)
{
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xDD));
}

/* 128-bit lane i of v. */
INLINE __m128 lane(__m512 v, int i)
{
    switch (i) {
    case 0: return _mm512_extractf32x4_ps(v, 0);
    case 1: return _mm512_extractf32x4_ps(v, 1);
    case 2: return _mm512_extractf32x4_ps(v, 2);
    default: return _mm512_extractf32x4_ps(v, 3);
    }
}

/* Writes (accumulate: adds) the first `cols` of 4 sums to c. */
INLINE void store4(float *c, __m128 s, size_t cols, int accumulate)
{
    if (cols == 4) {
        _mm_storeu_ps(c, accumulate ? _mm_add_ps(_mm_loadu_ps(c), s) : s);
        return;
    }
    float t[4];
    _mm_storeu_ps(t, s);
    for (size_t q = 0; q < cols; q++) c[q] = accumulate ? c[q] + t[q] : t[q];
}

/* Row i's sums of columns j..j+3 in 128-bit lane i: vector 4c + i of the tree is acc[i][j + c]. */
#define SUMS4(acc, j)                                                                              \
    pairs(pairs(quarters(halves(acc[0][j], acc[1][j]), halves(acc[2][j], acc[3][j])),            \
                quarters(halves(acc[0][(j) + 1], acc[1][(j) + 1]),                               \
                         halves(acc[2][(j) + 1], acc[3][(j) + 1]))),                             \
          pairs(quarters(halves(acc[0][(j) + 2], acc[1][(j) + 2]),                               \
                         halves(acc[2][(j) + 2], acc[3][(j) + 2])),                              \
                quarters(halves(acc[0][(j) + 3], acc[1][(j) + 3]),                               \
                         halves(acc[2][(j) + 3], acc[3][(j) + 3]))))

/* One NT_MR x nr block over kc floats of k, nr = 6, 4 or 2 (a compile-time constant after
   inlining): a block of a layer's last units computes only the columns it has, up to one more,
   so a width that is not a multiple of NT_NR (784-100-10: 100 = 16 x 6 + 4) does not pay for a
   whole block. Rows past the end of A or columns past the end of B repeat the block's last real
   one (so every load is in bounds) and are not stored. */
INLINE void nt_block(const int nr, const float *const *ar, const float *const *br, size_t kc,
                     float *c, size_t ldc, size_t rows, size_t cols, int accumulate)
{
    __m512 acc[NT_MR][NT_NR];
#pragma GCC unroll 8
    for (int i = 0; i < NT_MR; i++)
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) acc[i][j] = _mm512_setzero_ps();
    size_t p = 0;
    for (; p + VL <= kc; p += VL) {
        __m512 av[NT_MR];
#pragma GCC unroll 8
        for (int i = 0; i < NT_MR; i++) av[i] = _mm512_loadu_ps(ar[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const __m512 bv = _mm512_loadu_ps(br[j] + p);
#pragma GCC unroll 8
            for (int i = 0; i < NT_MR; i++) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    if (p < kc) {
        /* The last partial vector: masked loads read zeros past the end, which add nothing. */
        const __mmask16 mk = (__mmask16)((1u << (kc - p)) - 1u);
        __m512 av[NT_MR];
#pragma GCC unroll 8
        for (int i = 0; i < NT_MR; i++) av[i] = _mm512_maskz_loadu_ps(mk, ar[i] + p);
#pragma GCC unroll 8
        for (int j = 0; j < nr; j++) {
            const __m512 bv = _mm512_maskz_loadu_ps(mk, br[j] + p);
#pragma GCC unroll 8
            for (int i = 0; i < NT_MR; i++) acc[i][j] = _mm512_fmadd_ps(av[i], bv, acc[i][j]);
        }
    }
    /* Four columns: 128-bit lane i of the sums holds row i's four. Two columns: the same tree
       on 8 vectors, whose last level adds the result to itself; lane i holds row i's two sums
       and two unused ones. Every sum is the same tree whichever columns share its block. */
    __m512 s4 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps();
    if (nr >= 4) s4 = SUMS4(acc, 0);
    if (nr != 4) {
        const int j = nr - 2;
        const __m512 u = pairs(quarters(halves(acc[0][j], acc[1][j]), halves(acc[2][j], acc[3][j])),
                               quarters(halves(acc[0][j + 1], acc[1][j + 1]),
                                        halves(acc[2][j + 1], acc[3][j + 1])));
        s2 = pairs(u, u);
    }
    /* Constant bounds and indices here keep the accumulators in registers. */
#pragma GCC unroll 8
    for (int i = 0; i < NT_MR; i++) {
        if ((size_t)i >= rows) break;
        float *ci = c + (size_t)i * ldc;
        if (nr == 2) {
            store4(ci, lane(s2, i), cols, accumulate);
            continue;
        }
        store4(ci, lane(s4, i), cols < 4 ? cols : 4, accumulate);
        if (cols > 4) store4(ci + 4, lane(s2, i), cols - 4, accumulate);
    }
}

TARGET void fan__gemm_nt_avx512(size_t m, size_t n, size_t k, const float *a, size_t lda,
                                const float *b, size_t ldb, float *c, size_t ldc)
{
    for (size_t p0 = 0; p0 < k; p0 += NT_KC) {
        const size_t kc = k - p0 < NT_KC ? k - p0 : NT_KC;
        /* B's block outside, so that its NT_NR rows stay in L1 while all of A streams past. */
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
                /* One specialised copy per block width keeps the accumulators in registers. */
                if (cols > 4)
                    nt_block(6, ar, br, kc, cb, ldc, rows, cols, p0 > 0);
                else if (cols > 2)
                    nt_block(4, ar, br, kc, cb, ldc, rows, cols, p0 > 0);
                else
                    nt_block(2, ar, br, kc, cb, ldc, rows, cols, p0 > 0);
            }
        }
    }
}

/* ---- BN: C[i][j] = sum_p A(i, p) B[p][j], B contiguous along j -------------------------------- */

/* BN_MR rows of C by BN_NV vectors of columns: 24 accumulators, the block's B vectors and one
   broadcast of A; per p step BN_NV loads and BN_MR broadcasts feed 24 FMAs. */
#define BN_MR 6
#define BN_NV 4
/* Rows of B per pass: BN_KC x 64 floats of B (32 KB) stay in L1 while every row block of C
   passes over them. A later pass reloads the accumulators from C, which holds their exact
   values, so each element is still one FMA chain over p in order. */
#define BN_KC 128

/* One block of mr rows (6, 4 or 2) and nv vectors (nv <= BN_NV), both compile-time constants
   after inlining, so that a layer's last units (100 = 16 x 6 + 4) do not pay for a whole block;
   `mask` gives the valid lanes of each vector. Each element is one FMA chain over p in order. */
INLINE void bn_block(const int mr, const int nv, const float *a, const size_t *arow, size_t csa,
                     size_t k, const float *b, size_t ldb, const __mmask16 *mask, float *c,
                     size_t ldc, size_t rows, int accumulate)
{
    __m512 acc[BN_MR][BN_NV];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++)
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            acc[i][v] = accumulate && (size_t)i < rows
                            ? _mm512_maskz_loadu_ps(mask[v], c + (size_t)i * ldc + v * VL)
                            : _mm512_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        const float *bp = b + p * ldb;
        __m512 bv[BN_NV];
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++) bv[v] = _mm512_maskz_loadu_ps(mask[v], bp + v * VL);
        const float *ap = a + p * csa;
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            const __m512 ai = _mm512_set1_ps(ap[arow[i]]);
#pragma GCC unroll 8
            for (int v = 0; v < nv; v++) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        if ((size_t)i >= rows) break;
#pragma GCC unroll 8
        for (int v = 0; v < nv; v++)
            _mm512_mask_storeu_ps(c + (size_t)i * ldc + v * VL, mask[v], acc[i][v]);
    }
}

TARGET void fan__gemm_bn_avx512(size_t m, size_t n, size_t k, const float *a, size_t rsa,
                                size_t csa, const float *b, size_t ldb, float *c, size_t ldc)
{
    const size_t panel = BN_NV * VL;
    /* A panel of B's columns outside: for the weight gradient (k = batch) it stays in L1 while
       every row block of C passes over it. */
    for (size_t j0 = 0; j0 < n; j0 += panel) {
        const size_t cols = n - j0 < panel ? n - j0 : panel;
        const int nv = (int)((cols + VL - 1) / VL);
        __mmask16 mask[BN_NV];
        for (int v = 0; v < BN_NV; v++) {
            const size_t left = cols > (size_t)v * VL ? cols - (size_t)v * VL : 0;
            mask[v] = left >= VL ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
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
                /* One specialised copy per block shape keeps the accumulators in registers. */
                const int mr = rows > 4 ? 6 : rows > 2 ? 4 : 2;
#define BLOCK(r, v) bn_block(r, v, ap, arow, csa, kc, bb, ldb, mask, cb, ldc, rows, acc)
                switch (mr * 10 + nv) {
                case 64: BLOCK(6, 4); break;
                case 63: BLOCK(6, 3); break;
                case 62: BLOCK(6, 2); break;
                case 61: BLOCK(6, 1); break;
                case 44: BLOCK(4, 4); break;
                case 43: BLOCK(4, 3); break;
                case 42: BLOCK(4, 2); break;
                case 41: BLOCK(4, 1); break;
                case 24: BLOCK(2, 4); break;
                case 23: BLOCK(2, 3); break;
                case 22: BLOCK(2, 2); break;
                default: BLOCK(2, 1); break;
                }
#undef BLOCK
            }
        }
    }
}

#else /* no x86-64 SIMD from this compiler: never called (kernels.c detects FAN__KERNELS_CBLAS) */

void fan__gemm_nt_avx512(size_t m, size_t n, size_t k, const float *a, size_t lda,
                         const float *b, size_t ldb, float *c, size_t ldc)
{
    fan__sgemm(0, 1, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
}

void fan__gemm_bn_avx512(size_t m, size_t n, size_t k, const float *a, size_t rsa, size_t csa,
                         const float *b, size_t ldb, float *c, size_t ldc)
{
    fan__sgemm(csa == 1 ? 0 : 1, 0, m, n, k, 1.0f, a, csa == 1 ? rsa : csa, b, ldb, 0.0f, c, ldc);
}

#endif
