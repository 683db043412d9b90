/*
 * rng_bulk.c - normal noise in bulk: the ziggurat of rng.c run on LANES xoshiro256** streams side
 * by side, for the noise iterator's batches (50,176 normals per 64 x 784 batch).
 *
 * One stream gives a normal per 32 bits, but each state depends on the last, so a loop over it
 * runs one value at a time: 1.8-2.4 ns per normal, a quarter of a noise-pretraining step. Here a
 * call draws one seed from the caller's stream and cuts its values into blocks of
 * FAN__NORMAL_BLOCK. Block k seeds LANES streams and a stream for its slow path through
 * splitmix64 from (seed, k) (the seeding the generator's authors advise for parallel streams),
 * keeps one state word of all lanes in one vector, and takes the ziggurat's fast path for a whole
 * vector of draws at once. Values outside their layer's rectangle (2.8%: the top layer always,
 * the others at their edges) are redrawn at the end of each chunk of CHUNK_ROUNDS rounds, one at
 * a time, in index order, from the block's slow-path stream; deferring them keeps the vector loop
 * free of calls, around which every register would be saved. Blocks depend on nothing but the
 * seed and their index: the net's threads fill a batch's blocks in any order (iter.c).
 *
 * Three versions give the same bits: a portable one, AVX2 (table lookups by gather) and AVX-512
 * (the 128-entry tables held in registers, looked up by permutes). Each value is integer work,
 * one conversion, one multiply by the layer's width, then * std and + mean as separate
 * operations in that order (never fused into an FMA).
 */
#include "kernels.h"

#include <string.h>

#define LANES 8
/* Normals per round: the low and high halves of every lane's 64-bit output. */
#define ROUND (2 * LANES)
#define LAYERS FAN__ZIG_LAYERS
/* Rounds between two passes of the slow path: their draws (4 KB) stay in L1. */
#define CHUNK_ROUNDS 64

/* The states of the lanes, word by word: s[w][l] is word w of lane l. */
typedef struct lane_state {
    uint64_t s[4][LANES];
} lane_state;

/* The streams of block k of a call with this seed: LANES lanes, and r for the slow path. */
static void seed_block(uint64_t seed, size_t k, lane_state *L, fan__rng *r)
{
    /* The block index goes through splitmix64 before it meets the seed, so neighbouring
       blocks start far apart in splitmix64's sequence. */
    uint64_t y = (uint64_t)k;
    uint64_t x = seed ^ fan__splitmix64(&y);
    for (int l = 0; l < LANES; l++)
        for (int w = 0; w < 4; w++) L->s[w][l] = fan__splitmix64(&x);
    for (int w = 0; w < 4; w++) r->s[w] = fan__splitmix64(&x);
}

/* Rewrites out[j] for every j whose bit is set in `slow` (in increasing j) with the slow path of
   draw u[j]. */
static void fix_slow(fan__rng *r, const fan__normal_tables *t, const uint32_t *u, uint32_t slow,
                     float *out, float mean, float std)
{
    while (slow != 0) {
        /* The lowest set bit: values are redrawn in increasing index order. */
        int j = 0;
        while (!(slow >> j & 1u)) j++;
        slow &= slow - 1u;
        const unsigned iz = u[j] & (LAYERS - 1);
        const int32_t hz = (int32_t)(u[j] & ~(uint32_t)(LAYERS - 1));
        const float scaled = std * fan__zig_slow(r, t, hz, iz);
        out[j] = mean + scaled;
    }
}

/* The draws and slow-path masks of the rounds of one chunk. */
typedef struct chunk {
    uint32_t u[CHUNK_ROUNDS][ROUND];
    uint32_t slow[CHUNK_ROUNDS];
} chunk;

static void fix_chunk(fan__rng *r, const fan__normal_tables *t, const chunk *c, size_t rounds,
                      float *out, float mean, float std)
{
    for (size_t q = 0; q < rounds; q++)
        if (c->slow[q]) fix_slow(r, t, c->u[q], c->slow[q], out + q * ROUND, mean, std);
}

/* Runs `body` (which fills out[i, i + ROUND) from the next round, storing its draws in c->u[q]
   and returning its slow mask) over all of out[0, n): whole rounds in chunks, each followed by
   its slow path, then the last partial round through a buffer. */
#define FILL_ROUNDS(body)                                                                        \
    do {                                                                                         \
        chunk c;                                                                                 \
        size_t i = 0;                                                                            \
        while (i + ROUND <= n) {                                                                 \
            float *base = out + i;                                                               \
            size_t q = 0;                                                                        \
            for (; q < CHUNK_ROUNDS && i + ROUND <= n; q++, i += ROUND) {                        \
                float *o = out + i;                                                              \
                uint32_t *uq = c.u[q];                                                           \
                c.slow[q] = body;                                                                \
            }                                                                                    \
            fix_chunk(r, t, &c, q, base, mean, std);                                             \
        }                                                                                        \
        if (i < n) {                                                                             \
            float last[ROUND];                                                                   \
            float *o = last;                                                                     \
            uint32_t *uq = c.u[0];                                                               \
            c.slow[0] = body;                                                                    \
            fix_chunk(r, t, &c, 1, last, mean, std);                                             \
            memcpy(out + i, last, (n - i) * sizeof *out);                                        \
        }                                                                                        \
    } while (0)

/* ---- portable --------------------------------------------------------------------------------- */

static void next_scalar(lane_state *L, uint32_t *u)
{
    for (int l = 0; l < LANES; l++) {
        const uint64_t x = L->s[1][l] * 5;
        const uint64_t out = ((x << 7) | (x >> 57)) * 9;
        const uint64_t t = L->s[1][l] << 17;
        L->s[2][l] ^= L->s[0][l];
        L->s[3][l] ^= L->s[1][l];
        L->s[1][l] ^= L->s[2][l];
        L->s[0][l] ^= L->s[3][l];
        L->s[2][l] ^= t;
        L->s[3][l] = (L->s[3][l] << 45) | (L->s[3][l] >> 19);
        u[l] = (uint32_t)out;
        u[LANES + l] = (uint32_t)(out >> 32);
    }
}

static uint32_t round_scalar(const fan__normal_tables *t, const uint32_t *u, float *out,
                             float mean, float std)
{
    uint32_t slow = 0;
    for (int j = 0; j < ROUND; j++) {
        const uint32_t iz = u[j] & (LAYERS - 1);
        const int32_t hz = (int32_t)(u[j] & ~(uint32_t)(LAYERS - 1));
        const uint32_t mag = hz < 0 ? 0u - (uint32_t)hz : (uint32_t)hz;
        const float z = (float)hz * t->w[iz];
        const float scaled = std * z;
        out[j] = mean + scaled;
        slow |= (uint32_t)(mag >= t->k[iz]) << j;
    }
    return slow;
}

static uint32_t step_scalar(lane_state *L, const fan__normal_tables *t, uint32_t *u, float *out,
                            float mean, float std)
{
    next_scalar(L, u);
    return round_scalar(t, u, out, mean, std);
}

static void bulk_scalar(fan__rng *r, lane_state *seeded, const fan__normal_tables *t, float *out,
                        size_t n, float mean, float std)
{
    lane_state L = *seeded;
    FILL_ROUNDS(step_scalar(&L, t, uq, o, mean, std));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

/* ---- AVX2 ------------------------------------------------------------------------------------ */

#define AVX2 __attribute__((target("avx2,fma")))

/* xoshiro256** on four lanes; returns their outputs. */
static inline __attribute__((always_inline)) AVX2 __m256i next4(__m256i *s)
{
    const __m256i x = _mm256_add_epi64(_mm256_slli_epi64(s[1], 2), s[1]); /* s1 * 5 */
    const __m256i rot = _mm256_or_si256(_mm256_slli_epi64(x, 7), _mm256_srli_epi64(x, 57));
    const __m256i out = _mm256_add_epi64(_mm256_slli_epi64(rot, 3), rot); /* * 9 */
    const __m256i t = _mm256_slli_epi64(s[1], 17);
    s[2] = _mm256_xor_si256(s[2], s[0]);
    s[3] = _mm256_xor_si256(s[3], s[1]);
    s[1] = _mm256_xor_si256(s[1], s[2]);
    s[0] = _mm256_xor_si256(s[0], s[3]);
    s[2] = _mm256_xor_si256(s[2], t);
    s[3] = _mm256_or_si256(_mm256_slli_epi64(s[3], 45), _mm256_srli_epi64(s[3], 19));
    return out;
}

/* Eight values from eight draws; returns the mask of those needing the slow path. */
static inline __attribute__((always_inline)) AVX2 uint32_t zig8(const fan__normal_tables *t,
                                                                __m256i u, float *out,
                                                                __m256 mean, __m256 std)
{
    const __m256i low = _mm256_set1_epi32(LAYERS - 1);
    const __m256i iz = _mm256_and_si256(u, low);
    const __m256i hz = _mm256_andnot_si256(low, u);
    const __m256i mag = _mm256_abs_epi32(hz); /* INT32_MIN stays 2^31 read unsigned */
    const __m256i k = _mm256_i32gather_epi32((const int *)(const void *)t->k, iz, 4);
    const __m256 w = _mm256_i32gather_ps(t->w, iz, 4);
    const __m256 z = _mm256_mul_ps(_mm256_cvtepi32_ps(hz), w);
    _mm256_storeu_ps(out, _mm256_add_ps(mean, _mm256_mul_ps(std, z)));
    /* mag >= k, unsigned: max(mag, k) == mag. */
    const __m256i slow = _mm256_cmpeq_epi32(_mm256_max_epu32(mag, k), mag);
    return (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(slow));
}

/* One round: 16 values into out, their draws into u; returns the slow mask. */
static inline __attribute__((always_inline)) AVX2 uint32_t round_avx2(
    __m256i *a, __m256i *b, __m256i halves, const fan__normal_tables *t, uint32_t *u, float *out,
    __m256 vm, __m256 vs)
{
    const __m256i pa = _mm256_permutevar8x32_epi32(next4(a), halves);
    const __m256i pb = _mm256_permutevar8x32_epi32(next4(b), halves);
    const __m256i lo = _mm256_permute2x128_si256(pa, pb, 0x20); /* lanes 0-7, low */
    const __m256i hi = _mm256_permute2x128_si256(pa, pb, 0x31); /* lanes 0-7, high */
    _mm256_storeu_si256((__m256i *)(void *)u, lo);
    _mm256_storeu_si256((__m256i *)(void *)(u + LANES), hi);
    return zig8(t, lo, out, vm, vs) | zig8(t, hi, out + LANES, vm, vs) << LANES;
}

static AVX2 void bulk_avx2(fan__rng *r, lane_state *seeded, const fan__normal_tables *t,
                           float *out, size_t n, float mean, float std)
{
    const lane_state L = *seeded;
    __m256i a[4], b[4]; /* lanes 0-3 and 4-7 */
    for (int w = 0; w < 4; w++) {
        a[w] = _mm256_loadu_si256((const __m256i *)(const void *)&L.s[w][0]);
        b[w] = _mm256_loadu_si256((const __m256i *)(const void *)&L.s[w][4]);
    }
    const __m256 vm = _mm256_set1_ps(mean), vs = _mm256_set1_ps(std);
    /* Gathers the 32-bit halves: even positions are the low halves, odd the high ones. */
    const __m256i halves = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    FILL_ROUNDS(round_avx2(a, b, halves, t, uq, o, vm, vs));
}

/* ---- AVX-512 ------------------------------------------------------------------------------- */

#define AVX512 __attribute__((target("avx512f,avx512vl")))

static inline __attribute__((always_inline)) AVX512 __m512i next8(__m512i *s)
{
    const __m512i x = _mm512_add_epi64(_mm512_slli_epi64(s[1], 2), s[1]);
    const __m512i rot = _mm512_rol_epi64(x, 7);
    const __m512i out = _mm512_add_epi64(_mm512_slli_epi64(rot, 3), rot);
    const __m512i t = _mm512_slli_epi64(s[1], 17);
    s[2] = _mm512_xor_si512(s[2], s[0]);
    s[3] = _mm512_xor_si512(s[3], s[1]);
    s[1] = _mm512_xor_si512(s[1], s[2]);
    s[0] = _mm512_xor_si512(s[0], s[3]);
    s[2] = _mm512_xor_si512(s[2], t);
    s[3] = _mm512_rol_epi64(s[3], 45);
    return out;
}

/* A 128-entry table in eight registers, looked up by two-source permutes on the low 5 bits of the
   index and blends on bits 5 and 6: a handful of register operations instead of a gather. */
typedef struct table128 {
    __m512 q[8];
} table128;

static inline __attribute__((always_inline)) AVX512 __m512 lookup128(const table128 *tb,
                                                                     __m512i idx)
{
    const __mmask16 b5 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(32));
    const __mmask16 b6 = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(64));
    const __m512 r0 = _mm512_permutex2var_ps(tb->q[0], idx, tb->q[1]);
    const __m512 r1 = _mm512_permutex2var_ps(tb->q[2], idx, tb->q[3]);
    const __m512 r2 = _mm512_permutex2var_ps(tb->q[4], idx, tb->q[5]);
    const __m512 r3 = _mm512_permutex2var_ps(tb->q[6], idx, tb->q[7]);
    const __m512 lo = _mm512_mask_blend_ps(b5, r0, r1), hi = _mm512_mask_blend_ps(b5, r2, r3);
    return _mm512_mask_blend_ps(b6, lo, hi);
}

static inline __attribute__((always_inline)) AVX512 uint32_t round_avx512(
    __m512i *s, const table128 *tk, const table128 *tw, uint32_t *u, float *out, __m512 vm,
    __m512 vs)
{
    const __m512i low = _mm512_set1_epi32(LAYERS - 1);
    const __m512i x = next8(s);
    /* Lanes' low halves, then their high halves: 16 draws. */
    const __m256i lo = _mm512_cvtepi64_epi32(x);
    const __m256i hi = _mm512_cvtepi64_epi32(_mm512_srli_epi64(x, 32));
    const __m512i d = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    _mm512_storeu_si512((void *)u, d);
    const __m512i iz = _mm512_and_si512(d, low);
    const __m512i hz = _mm512_andnot_si512(low, d);
    const __m512i mag = _mm512_abs_epi32(hz); /* INT32_MIN stays 2^31 read unsigned */
    const __m512i k = _mm512_castps_si512(lookup128(tk, iz));
    const __m512 z = _mm512_mul_ps(_mm512_cvtepi32_ps(hz), lookup128(tw, iz));
    _mm512_storeu_ps(out, _mm512_add_ps(vm, _mm512_mul_ps(vs, z)));
    return _mm512_cmpge_epu32_mask(mag, k);
}

static AVX512 void bulk_avx512(fan__rng *r, lane_state *seeded, const fan__normal_tables *t,
                               float *out, size_t n, float mean, float std)
{
    const lane_state L = *seeded;
    __m512i s[4];
    for (int w = 0; w < 4; w++) s[w] = _mm512_loadu_si512((const void *)&L.s[w][0]);
    table128 tk, tw;
    for (int q = 0; q < 8; q++) {
        tk.q[q] = _mm512_loadu_ps((const void *)(t->k + 16 * q)); /* bits, moved as floats */
        tw.q[q] = _mm512_loadu_ps(t->w + 16 * q);
    }
    const __m512 vm = _mm512_set1_ps(mean), vs = _mm512_set1_ps(std);
    FILL_ROUNDS(round_avx512(s, &tk, &tw, uq, o, vm, vs));
}
#endif

void fan__rng_normal_block(fan__kernels isa, uint64_t seed, size_t k,
                           const fan__normal_tables *t, float *out, size_t count, float mean,
                           float std)
{
    lane_state L;
    fan__rng r;
    seed_block(seed, k, &L, &r);
    out += k * FAN__NORMAL_BLOCK;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (isa == FAN__KERNELS_AVX512) {
        bulk_avx512(&r, &L, t, out, count, mean, std);
        return;
    }
    if (isa == FAN__KERNELS_AVX2) {
        bulk_avx2(&r, &L, t, out, count, mean, std);
        return;
    }
#endif
    (void)isa;
    bulk_scalar(&r, &L, t, out, count, mean, std);
}

void fan__rng_fill_normal_bulk(fan__kernels isa, fan__rng *r, const fan__normal_tables *t,
                               float *out, size_t n, float mean, float std)
{
    const uint64_t seed = fan__rng_next(r);
    for (size_t k = 0; k * FAN__NORMAL_BLOCK < n; k++) {
        const size_t left = n - k * FAN__NORMAL_BLOCK;
        fan__rng_normal_block(isa, seed, k, t, out, left < FAN__NORMAL_BLOCK ? left : FAN__NORMAL_BLOCK,
                              mean, std);
    }
}
