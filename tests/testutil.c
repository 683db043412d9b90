/* testutil.c - see testutil.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

static void *tu_alloc(void *ud, size_t size)
{
    tu_counter *c = ud;
    c->total_allocs++;
    if (c->fail_at != 0 && c->total_allocs == c->fail_at) return NULL;
    void *p = malloc(size);
    if (p) c->live_blocks++;
    return p;
}

static void tu_free(void *ud, void *ptr)
{
    tu_counter *c = ud;
    c->live_blocks--;
    free(ptr);
}

fan_allocator tu_allocator(tu_counter *c)
{
    fan_allocator a = {tu_alloc, tu_free, c};
    return a;
}

void tu_assert_close(double a, double b, double rel_tol, double abs_tol, const char *what,
                     const char *file, int line)
{
    double diff = fabs(a - b), scale = fmax(fabs(a), fabs(b));
    if (!(diff <= abs_tol + rel_tol * scale)) {
        print_error("%s:%d: %s: %.17g vs %.17g (diff %.3g, rel tol %.3g, abs tol %.3g)\n", file,
                    line, what, a, b, diff, rel_tol, abs_tol);
        fail();
    }
}

void tu_assert_ok(fan_status s, const char *msg, const char *expr, const char *file, int line)
{
    if (s != FAN_OK) {
        print_error("%s:%d: %s returned %d (%s): %s\n", file, line, expr, (int)s,
                    fan_strerror(s), msg);
        fail();
    }
}

void tu_fill(float *v, size_t n, uint64_t seed, float lo, float hi)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = lo + (hi - lo) * (float)((x >> 40) * 0x1.0p-24);
    }
}
