/*
 * byteorder.h - explicit little-endian encoding for the state blobs and the checkpoint container
 * (optimizer.c, iter_state.c, checkpoint.c): the same bytes whatever the host, as
 * docs/file-format.md specifies. Never installed.
 */
#ifndef FAN_BYTEORDER_H
#define FAN_BYTEORDER_H

#include <stdint.h>
#include <string.h>

static inline void fan__put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline void fan__put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t fan__get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t fan__get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* IEEE-754 values travel as their bit patterns. */
static inline void fan__put_f32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    fan__put_u32(p, u);
}

static inline float fan__get_f32(const unsigned char *p)
{
    const uint32_t u = fan__get_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline void fan__put_f64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    fan__put_u64(p, u);
}

static inline double fan__get_f64(const unsigned char *p)
{
    const uint64_t u = fan__get_u64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ---- cursors ------------------------------------------------------------------------------ */

/* A writer over a buffer; with p NULL it only counts, so that one function gives both the size
   of a blob and its bytes. */
typedef struct fan__wcur {
    unsigned char *p;
    size_t pos;
} fan__wcur;

static inline void fan__w_bytes(fan__wcur *w, const void *src, size_t n)
{
    if (w->p != NULL && n > 0) memcpy(w->p + w->pos, src, n);
    w->pos += n;
}

static inline void fan__w_u32(fan__wcur *w, uint32_t v)
{
    if (w->p != NULL) fan__put_u32(w->p + w->pos, v);
    w->pos += 4;
}

static inline void fan__w_u64(fan__wcur *w, uint64_t v)
{
    if (w->p != NULL) fan__put_u64(w->p + w->pos, v);
    w->pos += 8;
}

static inline void fan__w_f64(fan__wcur *w, double v)
{
    if (w->p != NULL) fan__put_f64(w->p + w->pos, v);
    w->pos += 8;
}

static inline void fan__w_f32s(fan__wcur *w, const float *v, size_t n)
{
    if (w->p != NULL)
        for (size_t i = 0; i < n; i++) fan__put_f32(w->p + w->pos + 4 * i, v[i]);
    w->pos += 4 * n;
}

/* A reader that never reads past len: once a field does not fit, `over` is set and every later
   read yields zeros, so a parser checks once, after reading a group of fields. */
typedef struct fan__rcur {
    const unsigned char *p;
    size_t len, pos;
    int over;
} fan__rcur;

static inline const unsigned char *fan__r_take(fan__rcur *r, size_t n)
{
    if (r->over || r->len - r->pos < n) {
        r->over = 1;
        return NULL;
    }
    const unsigned char *at = r->p + r->pos;
    r->pos += n;
    return at;
}

static inline uint32_t fan__r_u32(fan__rcur *r)
{
    const unsigned char *at = fan__r_take(r, 4);
    return at ? fan__get_u32(at) : 0;
}

static inline uint64_t fan__r_u64(fan__rcur *r)
{
    const unsigned char *at = fan__r_take(r, 8);
    return at ? fan__get_u64(at) : 0;
}

static inline double fan__r_f64(fan__rcur *r)
{
    const unsigned char *at = fan__r_take(r, 8);
    return at ? fan__get_f64(at) : 0.0;
}

#endif /* FAN_BYTEORDER_H */
