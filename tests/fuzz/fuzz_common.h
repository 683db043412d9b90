/* fuzz_common.h - shared pieces of the libFuzzer targets: the entry point's prototype, a
   counting allocator that turns leaks into crashes even without LeakSanitizer (the replay
   driver is built with plain gcc), and an assertion that aborts, which libFuzzer and the replay
   driver both report as a failure. Test code only: the library itself never aborts. */
#ifndef FAN_FUZZ_COMMON_H
#define FAN_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_ASSERT(cond)                                                                          \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);    \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

/* Largest single allocation a target lets the library make. The loaders must bound every size
   by the input's length before allocating, so anything this large from a few kilobytes of
   input is a bug worth a crash report (libFuzzer's -malloc_limit_mb catches it too, but the
   replay driver has no such limit). */
#define FZ_MAX_ALLOC ((size_t)256 << 20)

typedef struct fz_counter {
    size_t live;
} fz_counter;

static inline void *fz_alloc(void *ud, size_t size)
{
    FZ_ASSERT(size <= FZ_MAX_ALLOC);
    void *p = malloc(size ? size : 1);
    if (p) ((fz_counter *)ud)->live++;
    return p;
}

static inline void fz_free(void *ud, void *ptr)
{
    FZ_ASSERT(ptr != NULL); /* the allocator contract: free is never called with NULL */
    FZ_ASSERT(((fz_counter *)ud)->live > 0);
    ((fz_counter *)ud)->live--;
    free(ptr);
}

static inline fan_allocator fz_allocator(fz_counter *c)
{
    fan_allocator a = {fz_alloc, fz_free, c};
    return a;
}

/* Every status a public function may return, per the header. */
static inline int fz_known_status(fan_status s)
{
    return (s >= FAN_OK && s <= FAN_E_UNSUPPORTED) || s == FAN_DONE || s == FAN_STOPPED ||
           s == FAN_EARLY_STOPPED;
}

/* The loaders' documented failure statuses. */
static inline int fz_loader_status(fan_status s)
{
    return s == FAN_OK || s == FAN_E_FORMAT || s == FAN_E_LIMIT || s == FAN_E_NOMEM ||
           s == FAN_E_LABEL || s == FAN_E_NONFINITE || s == FAN_E_VERSION ||
           s == FAN_E_CHECKSUM || s == FAN_E_INVALID;
}

/* A little-endian byte reader over the fuzz input that yields zeros once exhausted. */
typedef struct fz_reader {
    const uint8_t *p;
    size_t n;
} fz_reader;

static inline uint8_t fz_u8(fz_reader *r)
{
    if (r->n == 0) return 0;
    r->n--;
    return *r->p++;
}

static inline uint32_t fz_u32(fz_reader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)fz_u8(r) << (8 * i);
    return v;
}

#endif
