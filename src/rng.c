/*
 * rng.c - xoshiro256** (Blackman and Vigna 2018) seeded through splitmix64, and the normal
 * generators: polar Box-Muller in double for initialisation, a ziggurat (Marsaglia and Tsang 2000,
 * 128 layers) in float (its bulk form, many streams side by side, is rng_bulk.c). State lives in
 * the caller's handle; nothing here is global.
 */
#include "internal.h"

#include <math.h>

uint64_t fan__splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void fan__rng_seed(fan__rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = fan__splitmix64(&x);
}

void fan__rng_seed_stream(fan__rng *r, uint64_t seed, fan__rng_purpose purpose, uint64_t index)
{
    /* The (purpose, index) pair goes through splitmix64 twice before it meets the seed, so that
       neighbouring pairs of one seed, and the same pair of neighbouring seeds, land far apart in
       splitmix64's sequence. */
    uint64_t x = (uint64_t)purpose;
    uint64_t y = fan__splitmix64(&x) ^ index;
    fan__rng_seed(r, seed ^ fan__splitmix64(&y));
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t fan__rng_next(fan__rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double fan__rng_uniform(fan__rng *r) { return (double)(fan__rng_next(r) >> 11) * 0x1.0p-53; }

uint64_t fan__rng_below(fan__rng *r, uint64_t n)
{
    /* Rejection on the top of the range removes the modulo bias. */
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = fan__rng_next(r);
    } while (x >= limit);
    return x % n;
}

double fan__rng_normal(fan__rng *r)
{
    double u, v, s;
    do {
        u = 2.0 * fan__rng_uniform(r) - 1.0;
        v = 2.0 * fan__rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    /* The polar method yields two normals; one is dropped so that the state advances by a fixed
       amount per accepted pair, which keeps the code simple. */
    return u * sqrt(-2.0 * log(s) / s);
}

/* ---- ziggurat ---------------------------------------------------------------------------- */

/* Right edge and common area of the 128-layer normal ziggurat (Marsaglia and Tsang 2000). */
#define ZIG_R 3.442619855899
#define ZIG_V 9.91256303526217e-3
#define ZIG_LAYERS FAN__ZIG_LAYERS

typedef fan__normal_tables zig_tables;

void fan__normal_tables_init(fan__normal_tables *t)
{
    const double m1 = 2147483648.0; /* 2^31: magnitudes are 31-bit */
    double dn = ZIG_R, tn = dn;
    const double q = ZIG_V / exp(-0.5 * dn * dn);
    t->k[0] = (uint32_t)((dn / q) * m1);
    t->k[1] = 0;
    t->w[0] = (float)(q / m1);
    t->w[ZIG_LAYERS - 1] = (float)(dn / m1);
    t->f[0] = 1.0f;
    t->f[ZIG_LAYERS - 1] = (float)exp(-0.5 * dn * dn);
    for (int i = ZIG_LAYERS - 2; i >= 1; i--) {
        dn = sqrt(-2.0 * log(ZIG_V / dn + exp(-0.5 * dn * dn)));
        t->k[i + 1] = (uint32_t)((dn / tn) * m1);
        tn = dn;
        t->f[i] = (float)exp(-0.5 * dn * dn);
        t->w[i] = (float)(dn / m1);
    }
}

/* The slow path: the sample fell outside the rectangle of its layer. */
float fan__zig_slow(fan__rng *r, const fan__normal_tables *t, int32_t hz, unsigned iz)
{
    for (;;) {
        float x = (float)hz * t->w[iz];
        if (iz == 0) {
            double xt, y;
            do {
                xt = -log(1.0 - fan__rng_uniform(r)) / ZIG_R;
                y = -log(1.0 - fan__rng_uniform(r));
            } while (y + y < xt * xt);
            return (float)(hz > 0 ? ZIG_R + xt : -ZIG_R - xt);
        }
        if (t->f[iz] + (float)fan__rng_uniform(r) * (t->f[iz - 1] - t->f[iz]) <
            expf(-0.5f * x * x))
            return x;
        uint64_t u = fan__rng_next(r);
        iz = (unsigned)(u & (ZIG_LAYERS - 1));
        hz = (int32_t)(uint32_t)(u >> 32);
        uint32_t mag = hz < 0 ? (uint32_t)(-(int64_t)hz) : (uint32_t)hz;
        if (mag < t->k[iz]) return (float)hz * t->w[iz];
    }
}

/* One normal from 32 random bits: the low 7 pick the layer, the high 25 are the signed position
   in it (low bits zero, so the scale of hz and of the k table stays 2^31). 25 bits exceed a
   float's 24-bit significand, so nothing visible is lost, and index and magnitude use disjoint
   bits, which avoids the original's correlation between the two. */
static inline float zig_draw(fan__rng *r, const zig_tables *t, uint32_t u)
{
    const unsigned iz = (unsigned)(u & (ZIG_LAYERS - 1));
    const int32_t hz = (int32_t)(u & ~(uint32_t)(ZIG_LAYERS - 1));
    const uint32_t mag = hz < 0 ? (uint32_t)(-(int64_t)hz) : (uint32_t)hz;
    return mag < t->k[iz] ? (float)hz * t->w[iz] : fan__zig_slow(r, t, hz, iz);
}

void fan__rng_fill_normal(fan__rng *r, const fan__normal_tables *tables, float *out, size_t n,
                          float mean, float std)
{
    const zig_tables *t = tables;
    size_t i = 0;
    /* Two normals per 64-bit draw halve the generator's share of the cost. */
    for (; i + 1 < n; i += 2) {
        const uint64_t u = fan__rng_next(r);
        out[i] = mean + std * zig_draw(r, t, (uint32_t)u);
        out[i + 1] = mean + std * zig_draw(r, t, (uint32_t)(u >> 32));
    }
    if (i < n) out[i] = mean + std * zig_draw(r, t, (uint32_t)fan__rng_next(r));
}

void fan__rng_fill_uniform(fan__rng *r, float *out, size_t n, float lo, float hi)
{
    const float span = hi - lo;
    for (size_t i = 0; i < n; i++) {
        /* 24 random bits: every float in [0, 1) with that spacing, never 1.0f. */
        float u = (float)(fan__rng_next(r) >> 40) * 0x1.0p-24f;
        out[i] = lo + span * u;
    }
}

void fan__rng_shuffle(fan__rng *r, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)fan__rng_below(r, (uint64_t)i);
        size_t tmp = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = tmp;
    }
}
