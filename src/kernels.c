/*
 * kernels.c - which GEMM code runs: CPUID feature bits decide, not a table of CPU models, so a CPU
 * newer than the BLAS build still gets the widest vectors it has. The choice is made when a net
 * is created and kept in the net (never in a global); FANOISE_KERNELS can only lower it.
 */
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define FAN__X86 1
#else
#define FAN__X86 0
#endif

#if FAN__X86
/* CPUID leaf 1, ECX; leaf 7 sub-leaf 0, EBX (Intel SDM vol. 2A, "CPUID"). */
#define ECX1_FMA (1u << 12)
#define ECX1_OSXSAVE (1u << 27)
#define ECX1_AVX (1u << 28)
#define EBX7_AVX2 (1u << 5)
#define EBX7_AVX512F (1u << 16)
#define EBX7_AVX512BW (1u << 30)
#define EBX7_AVX512VL (1u << 31)
/* The AVX-512 code is compiled for F, BW and VL (byte conversions, 256-bit masked forms): a CPU
   with F alone (Xeon Phi) takes the AVX2 path. */
#define EBX7_AVX512 (EBX7_AVX512F | EBX7_AVX512BW | EBX7_AVX512VL)
/* XCR0 state the OS must save: SSE and AVX registers; and for AVX-512 also the opmask and both
   halves of the upper ZMM state. */
#define XCR0_AVX 0x06u
#define XCR0_AVX512 0xe6u

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

fan__kernels fan__kernels_supported(void)
{
#if FAN__X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return FAN__KERNELS_CBLAS;
    const unsigned need = ECX1_FMA | ECX1_OSXSAVE | ECX1_AVX;
    if ((c & need) != need) return FAN__KERNELS_CBLAS;
    const uint64_t xcr0 = xgetbv0();
    if ((xcr0 & XCR0_AVX) != XCR0_AVX) return FAN__KERNELS_CBLAS;
    if (__get_cpuid_max(0, NULL) < 7) return FAN__KERNELS_CBLAS;
    __cpuid_count(7, 0, a, b, c, d);
    if (!(b & EBX7_AVX2)) return FAN__KERNELS_CBLAS;
    if ((b & EBX7_AVX512) == EBX7_AVX512 && (xcr0 & XCR0_AVX512) == XCR0_AVX512)
        return FAN__KERNELS_AVX512;
    return FAN__KERNELS_AVX2;
#else
    return FAN__KERNELS_CBLAS;
#endif
}

/* 1 if every float of v[0..n) is finite: an exponent of all ones is Inf or NaN. An integer
   OR-reduction vectorises where a floating-point test would not; the AVX2 and AVX-512 copies
   check 8 and 16 values per instruction instead of SSE2's 4. */
static inline __attribute__((always_inline)) int finite_any(const float *v, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

#if FAN__X86
__attribute__((target("avx2"))) static int finite_avx2(const float *v, size_t n)
{
    return finite_any(v, n);
}

__attribute__((target("avx512f,avx512bw"))) static int finite_avx512(const float *v, size_t n)
{
    return finite_any(v, n);
}
#endif

int fan__all_finite_isa(fan__kernels isa, const float *v, size_t n)
{
#if FAN__X86
    if (isa == FAN__KERNELS_AVX512) return finite_avx512(v, n);
    if (isa == FAN__KERNELS_AVX2) return finite_avx2(v, n);
#endif
    (void)isa;
    return finite_any(v, n);
}

fan__kernels fan__kernels_detect(void)
{
    fan__kernels k = fan__kernels_supported();
    /* A read of the environment, never a write: lets a user or a test pin a narrower set. */
    const char *env = getenv("FANOISE_KERNELS");
    if (env != NULL) {
        for (int s = FAN__KERNELS_CBLAS; s <= FAN__KERNELS_AVX512; s++)
            if (strcmp(env, fan__kernels_name((fan__kernels)s)) == 0 && s < (int)k)
                k = (fan__kernels)s;
    }
    return k;
}

const char *fan__kernels_name(fan__kernels k)
{
    switch (k) {
    case FAN__KERNELS_AVX2: return "avx2";
    case FAN__KERNELS_AVX512: return "avx512";
    case FAN__KERNELS_CBLAS: break;
    }
    return "cblas";
}

void fan__gemm(fan__kernels kernels, int trans_a, int trans_b, size_t m, size_t n, size_t k,
               const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc)
{
    if (m == 0 || n == 0) return;
    if (kernels == FAN__KERNELS_CBLAS || (trans_a && trans_b)) {
        fan__sgemm(trans_a, trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, ldc);
        return;
    }
    if (k == 0) {
        for (size_t i = 0; i < m; i++) memset(c + i * ldc, 0, n * sizeof *c);
        return;
    }
    const int wide = kernels == FAN__KERNELS_AVX512;
    if (trans_b) {
        (wide ? fan__gemm_nt_avx512 : fan__gemm_nt_avx2)(m, n, k, a, lda, b, ldb, c, ldc);
    } else {
        /* op(A)(i, p) is a[i*lda + p], or for A^T a[p*lda + i]. */
        const size_t rsa = trans_a ? 1 : lda, csa = trans_a ? lda : 1;
        (wide ? fan__gemm_bn_avx512 : fan__gemm_bn_avx2)(m, n, k, a, rsa, csa, b, ldb, c, ldc);
    }
}
