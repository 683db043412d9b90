/* testutil.h - shared test helpers: a leak-checking allocator, a failing allocator for OOM
   sweeps, tolerance comparisons and small random data. Include after cmocka.h. */
#ifndef FAN_TESTUTIL_H
#define FAN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "fanoise.h"

/* An allocator that counts live blocks and bytes and can fail the Nth allocation. */
typedef struct tu_counter {
    size_t live_blocks, total_allocs;
    size_t fail_at; /* 1-based allocation number to fail; 0 = never */
} tu_counter;

/* Returns an allocator bound to c (zeroed by the caller). */
fan_allocator tu_allocator(tu_counter *c);

/* Asserts |a - b| <= abs_tol + rel_tol * max(|a|, |b|), reporting both values. */
void tu_assert_close(double a, double b, double rel_tol, double abs_tol, const char *what,
                     const char *file, int line);
#define TU_CLOSE(a, b, rel, abs_) tu_assert_close((a), (b), (rel), (abs_), #a " vs " #b, __FILE__, __LINE__)

/* Asserts a call returned FAN_OK, printing the status text and a message on failure. */
void tu_assert_ok(fan_status s, const char *msg, const char *expr, const char *file, int line);
#define TU_OK(expr) tu_assert_ok((expr), "", #expr, __FILE__, __LINE__)
#define TU_OK_NET(net, expr) tu_assert_ok((expr), fan_net_errmsg(net), #expr, __FILE__, __LINE__)

/* Fills v with deterministic pseudo-random floats in [lo, hi) from seed. */
void tu_fill(float *v, size_t n, uint64_t seed, float lo, float hi);

/* Fills p with deterministic pseudo-random bytes from seed. */
void tu_fill_bytes(uint8_t *p, size_t n, uint64_t seed);

/* Gzip (RFC 1952) of in[0..len) into out (cap bytes); returns the compressed length. */
size_t tu_gzip_mem(const void *in, size_t len, uint8_t *out, size_t cap);
/* Writes len bytes to path, plain or through gzopen (level 9). */
void tu_write_file(const char *path, const void *data, size_t len);
void tu_write_gz_file(const char *path, const void *data, size_t len);
/* Asserts two datasets hold the same sizes, classes, samples and labels (normalised values). */
void tu_assert_same_dataset(const fan_dataset *a, const fan_dataset *b);

/* A dataset constructor under test, taking the allocator to use. */
typedef fan_status (*tu_dataset_load_fn)(fan_dataset **out, const fan_allocator *a);
/* Fails allocation N = 1.. until load succeeds; each failure must be FAN_E_NOMEM with *out NULL
   and nothing leaked (a loaded dataset holds three blocks). Returns the number of failed runs. */
size_t tu_dataset_oom_sweep(tu_dataset_load_fn load);

#endif
