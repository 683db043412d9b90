/* testutil.c - see testutil.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

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

void tu_fill_bytes(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 32);
    }
}

size_t tu_gzip_mem(const void *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16 asks zlib for a gzip wrapper instead of a zlib one. */
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

void tu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

void tu_write_gz_file(const char *path, const void *data, size_t len)
{
    gzFile g = gzopen(path, "wb9");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(g), Z_OK);
}

void tu_assert_same_dataset(const fan_dataset *a, const fan_dataset *b)
{
    assert_int_equal(fan_dataset_size(a), fan_dataset_size(b));
    assert_int_equal(fan_dataset_dim(a), fan_dataset_dim(b));
    assert_int_equal(fan_dataset_classes(a), fan_dataset_classes(b));
    const size_t dim = fan_dataset_dim(a);
    float *x = malloc(dim * sizeof *x), *y = malloc(dim * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    for (size_t i = 0; i < fan_dataset_size(a); i++) {
        int32_t la, lb;
        TU_OK(fan_dataset_get(a, i, x, dim, &la));
        TU_OK(fan_dataset_get(b, i, y, dim, &lb));
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, dim * sizeof(float));
    }
    free(x);
    free(y);
}

size_t tu_dataset_oom_sweep(tu_dataset_load_fn load)
{
    static max_align_t sentinel_storage; /* a non-NULL *out that the loader must reset */
    for (size_t n = 1;; n++) {
        tu_counter c = {0};
        c.fail_at = n;
        fan_allocator a = tu_allocator(&c);
        fan_dataset *out = (fan_dataset *)(void *)&sentinel_storage;
        fan_status s = load(&out, &a);
        assert_int_equal(c.live_blocks, out == NULL ? 0 : 3);
        if (s == FAN_OK) {
            fan_dataset_free(out);
            assert_int_equal(c.live_blocks, 0);
            return n - 1;
        }
        assert_int_equal(s, FAN_E_NOMEM);
        assert_null(out);
        assert_true(n < 100);
    }
}
