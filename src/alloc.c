/* alloc.c - the one place that calls malloc/free: the default allocator and checked helpers. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void *default_alloc(void *ud, size_t size)
{
    (void)ud;
    return malloc(size);
}

static void default_free(void *ud, void *ptr)
{
    (void)ud;
    free(ptr);
}

void fan__alloc_init(fan_allocator *dst, const fan_allocator *a)
{
    if (a != NULL && a->alloc != NULL && a->free != NULL) {
        *dst = *a;
    } else {
        dst->alloc = default_alloc;
        dst->free = default_free;
        dst->ud = NULL;
    }
}

void *fan__alloc(const fan_allocator *a, size_t size)
{
    /* Asking for 1 byte when 0 is requested keeps "NULL means failure" unambiguous. */
    return a->alloc(a->ud, size ? size : 1);
}

void *fan__calloc(const fan_allocator *a, size_t count, size_t size)
{
    size_t bytes;
    if (!fan__mul_ok(count, size, &bytes)) return NULL;
    void *p = fan__alloc(a, bytes);
    if (p != NULL) memset(p, 0, bytes);
    return p;
}

void fan__free(const fan_allocator *a, void *p)
{
    if (p != NULL) a->free(a->ud, p);
}

int fan__mul_ok(size_t a, size_t b, size_t *out)
{
    if (b != 0 && a > SIZE_MAX / b) return 0;
    *out = a * b;
    return 1;
}
