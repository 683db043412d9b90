/* test_loaders.c - IDX and CIFAR loaders on small files written here in the real formats,
   corrupt and truncated inputs, out-of-memory sweeps, and the real Fashion-MNIST when installed.
   The CSV loader is tested in test_csv.c. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, rmdir */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"

/* A non-NULL pointer that constructors must overwrite with NULL when they fail. */
static max_align_t sentinel_storage;
#define SENTINEL ((fan_dataset *)(void *)&sentinel_storage)

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define CIFAR_REC 3072

/* ---- helpers ----------------------------------------------------------------------------- */

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* IDX image file: magic, n, rows, cols, then n * rows * cols pixels (pixel k = 10 * k % 256). */
static size_t idx_images(uint8_t *out, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols,
                         size_t pixels)
{
    size_t len = put_be32(out, magic);
    len += put_be32(out + len, n);
    len += put_be32(out + len, rows);
    len += put_be32(out + len, cols);
    for (size_t k = 0; k < pixels; k++) out[len++] = (uint8_t)(10 * k % 256);
    return len;
}

static size_t idx_labels(uint8_t *out, uint32_t magic, uint32_t n, const uint8_t *labels,
                         size_t count)
{
    size_t len = put_be32(out, magic);
    len += put_be32(out + len, n);
    if (count > 0) memcpy(out + len, labels, count);
    return len + count;
}

/* The standard small set: 3 images of 2 rows x 3 columns, labels 1, 0, 3. */
static const uint8_t std_labels[3] = {1, 0, 3};
static uint8_t std_img[64], std_lab[16];
static size_t std_img_len, std_lab_len;

static void make_std(void)
{
    std_img_len = idx_images(std_img, 0x803, 3, 2, 3, 18);
    std_lab_len = idx_labels(std_lab, 0x801, 3, std_labels, 3);
}

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/fan_loaders_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static const char *const tmp_names[] = {"img", "lab", "img.gz", "lab.gz", "c1",
                                        "c2",  "c3",  "bigimg", "biglab"};

static int teardown_dir(void **state)
{
    (void)state;
    char p[128];
    for (size_t k = 0; k < sizeof tmp_names / sizeof tmp_names[0]; k++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, tmp_names[k]);
        (void)remove(p);
    }
    return rmdir(tmpdir);
}

static const char *tmp_path(const char *name)
{
    static char p[8][128];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(p[slot], sizeof p[slot], "%s/%s", tmpdir, name);
    return p[slot];
}

/* ---- IDX --------------------------------------------------------------------------------- */

static void test_idx_raw_memory_loads_pixels_labels_shape_and_classes(void **state)
{
    (void)state;
    make_std();
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_load_idx_mem(&ds, std_img, std_img_len, std_lab, std_lab_len, &a));
    assert_int_equal(fan_dataset_size(ds), 3);
    assert_int_equal(fan_dataset_dim(ds), 6);
    assert_int_equal(fan_dataset_classes(ds), 10); /* max label 3, at least 10 */
    size_t w, h, ch;
    TU_OK(fan_dataset_shape(ds, &w, &h, &ch));
    assert_int_equal(w, 3);
    assert_int_equal(h, 2);
    assert_int_equal(ch, 1);
    float x[6];
    int32_t l;
    TU_OK(fan_dataset_get(ds, 1, x, 6, &l)); /* default FAN_NORM_SCALE */
    assert_int_equal(l, 0);
    TU_CLOSE(x[0], 60.0 / 255.0, 1e-7, 0);
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_NONE, 0, 0));
    TU_OK(fan_dataset_get(ds, 2, x, 6, &l));
    assert_int_equal(l, 3);
    for (size_t j = 0; j < 6; j++) TU_CLOSE(x[j], (double)(10 * (12 + j) % 256), 0, 0);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_idx_class_count_is_max_label_plus_one_when_above_ten(void **state)
{
    (void)state;
    make_std();
    const uint8_t labels[3] = {11, 0, 2};
    uint8_t lab[16];
    size_t lab_len = idx_labels(lab, 0x801, 3, labels, 3);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_load_idx_mem(&ds, std_img, std_img_len, lab, lab_len, NULL));
    assert_int_equal(fan_dataset_classes(ds), 12);
    fan_dataset_free(ds);
}

static void test_idx_gzip_and_zlib_memory_match_raw(void **state)
{
    (void)state;
    make_std();
    uint8_t gi[256], gl[256], zi[256], zl[256];
    size_t gi_len = tu_gzip_mem(std_img, std_img_len, gi, sizeof gi);
    size_t gl_len = tu_gzip_mem(std_lab, std_lab_len, gl, sizeof gl);
    uLongf zi_len = sizeof zi, zl_len = sizeof zl;
    assert_int_equal(compress(zi, &zi_len, std_img, std_img_len), Z_OK);
    assert_int_equal(compress(zl, &zl_len, std_lab, std_lab_len), Z_OK);
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *raw = NULL, *gz = NULL, *zl_ds = NULL, *mixed = NULL;
    TU_OK(fan_dataset_load_idx_mem(&raw, std_img, std_img_len, std_lab, std_lab_len, &a));
    TU_OK(fan_dataset_load_idx_mem(&gz, gi, gi_len, gl, gl_len, &a));
    TU_OK(fan_dataset_load_idx_mem(&zl_ds, zi, zi_len, zl, zl_len, &a));
    TU_OK(fan_dataset_load_idx_mem(&mixed, gi, gi_len, std_lab, std_lab_len, &a));
    tu_assert_same_dataset(raw, gz);
    tu_assert_same_dataset(raw, zl_ds);
    tu_assert_same_dataset(raw, mixed);
    fan_dataset_free(raw);
    fan_dataset_free(gz);
    fan_dataset_free(zl_ds);
    fan_dataset_free(mixed);
    assert_int_equal(c.live_blocks, 0);
}

static void test_idx_files_raw_and_gzopen_written_load_the_same(void **state)
{
    (void)state;
    make_std();
    tu_write_file(tmp_path("img"), std_img, std_img_len);
    tu_write_file(tmp_path("lab"), std_lab, std_lab_len);
    tu_write_gz_file(tmp_path("img.gz"), std_img, std_img_len);
    tu_write_gz_file(tmp_path("lab.gz"), std_lab, std_lab_len);
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *mem = NULL, *raw = NULL, *gz = NULL;
    TU_OK(fan_dataset_load_idx_mem(&mem, std_img, std_img_len, std_lab, std_lab_len, &a));
    TU_OK(fan_dataset_load_idx(&raw, tmp_path("img"), tmp_path("lab"), &a));
    TU_OK(fan_dataset_load_idx(&gz, tmp_path("img.gz"), tmp_path("lab.gz"), &a));
    tu_assert_same_dataset(mem, raw);
    tu_assert_same_dataset(mem, gz);
    fan_dataset_free(mem);
    fan_dataset_free(raw);
    fan_dataset_free(gz);
    fan_dataset *ds = SENTINEL;
    assert_int_equal(fan_dataset_load_idx(&ds, tmp_path("missing"), tmp_path("lab"), &a),
                     FAN_E_IO);
    assert_null(ds);
    assert_int_equal(fan_dataset_load_idx(&ds, tmp_path("img"), tmp_path("missing"), &a),
                     FAN_E_IO);
    assert_int_equal(fan_dataset_load_idx(&ds, NULL, tmp_path("lab"), &a), FAN_E_NULL);
    assert_int_equal(fan_dataset_load_idx(NULL, tmp_path("img"), tmp_path("lab"), &a),
                     FAN_E_NULL);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, NULL, 4, std_lab, std_lab_len, &a),
                     FAN_E_NULL);
    assert_int_equal(c.live_blocks, 0);
}

static void test_idx_rejects_wrong_magic(void **state)
{
    (void)state;
    make_std();
    uint8_t img[64], lab[16];
    fan_dataset *ds = NULL;
    const uint32_t bad_image_magic[] = {0x801, 0x903, 0x802, 0x10803, 0x804, 0x08000803};
    for (size_t k = 0; k < sizeof bad_image_magic / sizeof bad_image_magic[0]; k++) {
        size_t len = idx_images(img, bad_image_magic[k], 3, 2, 3, 18);
        assert_int_equal(fan_dataset_load_idx_mem(&ds, img, len, std_lab, std_lab_len, NULL),
                         FAN_E_FORMAT);
    }
    size_t len = idx_labels(lab, 0x803, 3, std_labels, 3);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, std_img, std_img_len, lab, len, NULL),
                     FAN_E_FORMAT);
    /* Images and labels swapped. */
    assert_int_equal(
        fan_dataset_load_idx_mem(&ds, std_lab, std_lab_len, std_img, std_img_len, NULL),
        FAN_E_FORMAT);
    assert_null(ds);
}

static void test_idx_truncated_at_every_offset_or_with_trailing_bytes_fails(void **state)
{
    (void)state;
    make_std();
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *ds = NULL;
    for (size_t len = 0; len < std_img_len; len++) {
        assert_int_equal(fan_dataset_load_idx_mem(&ds, std_img, len, std_lab, std_lab_len, &a),
                         FAN_E_FORMAT);
    }
    for (size_t len = 0; len < std_lab_len; len++) {
        assert_int_equal(fan_dataset_load_idx_mem(&ds, std_img, std_img_len, std_lab, len, &a),
                         FAN_E_FORMAT);
    }
    /* One byte more than the header promises. */
    assert_int_equal(
        fan_dataset_load_idx_mem(&ds, std_img, std_img_len + 1, std_lab, std_lab_len, &a),
        FAN_E_FORMAT);
    assert_int_equal(
        fan_dataset_load_idx_mem(&ds, std_img, std_img_len, std_lab, std_lab_len + 1, &a),
        FAN_E_FORMAT);
    assert_null(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_idx_gzip_truncated_or_corrupted_anywhere_fails(void **state)
{
    (void)state;
    make_std();
    uint8_t gi[256], bad[256];
    size_t gi_len = tu_gzip_mem(std_img, std_img_len, gi, sizeof gi);
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *ds = NULL;
    for (size_t len = 0; len < gi_len; len++) {
        assert_int_equal(fan_dataset_load_idx_mem(&ds, gi, len, std_lab, std_lab_len, &a),
                         FAN_E_FORMAT);
    }
    /* Every byte after the 10-byte gzip header is covered by the deflate format, the CRC-32
       or the length check. */
    const size_t gzip_header = 10;
    for (size_t k = gzip_header; k < gi_len; k++) {
        memcpy(bad, gi, gi_len);
        bad[k] ^= 0x41;
        assert_int_equal(fan_dataset_load_idx_mem(&ds, bad, gi_len, std_lab, std_lab_len, &a),
                         FAN_E_FORMAT);
    }
    /* Garbage after a complete gzip member. */
    memcpy(bad, gi, gi_len);
    memcpy(bad + gi_len, "junk", 4);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, bad, gi_len + 4, std_lab, std_lab_len, &a),
                     FAN_E_FORMAT);
    assert_null(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_idx_concatenated_gzip_members_load_as_one_file(void **state)
{
    (void)state;
    make_std();
    uint8_t g[512];
    size_t half = 11;
    size_t len = tu_gzip_mem(std_img, half, g, sizeof g);
    len += tu_gzip_mem(std_img + half, std_img_len - half, g + len, sizeof g - len);
    fan_dataset *raw = NULL, *cat = NULL;
    TU_OK(fan_dataset_load_idx_mem(&raw, std_img, std_img_len, std_lab, std_lab_len, NULL));
    TU_OK(fan_dataset_load_idx_mem(&cat, g, len, std_lab, std_lab_len, NULL));
    tu_assert_same_dataset(raw, cat);
    fan_dataset_free(raw);
    fan_dataset_free(cat);
}

static void test_idx_counts_that_disagree_or_zero_sizes_fail_with_format(void **state)
{
    (void)state;
    make_std();
    uint8_t img[64], lab[16];
    fan_dataset *ds = NULL;
    size_t len = idx_labels(lab, 0x801, 2, std_labels, 2);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, std_img, std_img_len, lab, len, NULL),
                     FAN_E_FORMAT);
    len = idx_labels(lab, 0x801, 4, (const uint8_t[]){1, 0, 3, 2}, 4);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, std_img, std_img_len, lab, len, NULL),
                     FAN_E_FORMAT);
    len = idx_images(img, 0x803, 3, 0, 3, 0);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, img, len, std_lab, std_lab_len, NULL),
                     FAN_E_FORMAT);
    len = idx_images(img, 0x803, 0, 2, 3, 0);
    uint8_t lab0[8];
    size_t lab0_len = idx_labels(lab0, 0x801, 0, NULL, 0);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, img, len, lab0, lab0_len, NULL),
                     FAN_E_FORMAT);
    assert_null(ds);
}

static void test_idx_header_dims_that_overflow_size_t_fail_with_limit(void **state)
{
    (void)state;
    uint8_t img[64], lab[16];
    fan_dataset *ds = NULL;
    /* 1000 x (2^32 - 1)^2 bytes overflows a 64-bit size_t. */
    size_t len = idx_images(img, 0x803, 1000, 0xFFFFFFFFu, 0xFFFFFFFFu, 8);
    size_t lab_len = idx_labels(lab, 0x801, 1000, std_labels, 3);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, img, len, lab, lab_len, NULL), FAN_E_LIMIT);
    /* More images than FAN_MAX_SAMPLES. */
    len = idx_images(img, 0x803, 0xFFFFFFFFu, 1, 1, 8);
    lab_len = idx_labels(lab, 0x801, 0xFFFFFFFFu, std_labels, 3);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, img, len, lab, lab_len, NULL), FAN_E_LIMIT);
    assert_null(ds);
}

/* An allocator that records the largest request. */
static void *big_alloc(void *ud, size_t size)
{
    size_t *largest = ud;
    if (size > *largest) *largest = size;
    return malloc(size);
}

static void big_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static void test_idx_count_beyond_input_size_fails_without_allocating_it(void **state)
{
    (void)state;
    uint8_t img[64], lab[16], gi[256], gl[256];
    size_t largest = 0;
    fan_allocator a = {big_alloc, big_free, &largest};
    fan_dataset *ds = NULL;
    /* One million 28 x 28 images claimed, three present. */
    const uint32_t claimed = 1000000;
    size_t len = idx_images(img, 0x803, claimed, 28, 28, 40);
    size_t lab_len = idx_labels(lab, 0x801, claimed, std_labels, 3);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, img, len, lab, lab_len, &a), FAN_E_FORMAT);
    /* Compressed, the same header must be bounded by deflate's 1032:1 ratio. */
    size_t gi_len = tu_gzip_mem(img, len, gi, sizeof gi);
    size_t gl_len = tu_gzip_mem(lab, lab_len, gl, sizeof gl);
    assert_int_equal(fan_dataset_load_idx_mem(&ds, gi, gi_len, gl, gl_len, &a), FAN_E_FORMAT);
    tu_write_file(tmp_path("bigimg"), img, len);
    tu_write_file(tmp_path("biglab"), lab, lab_len);
    assert_int_equal(fan_dataset_load_idx(&ds, tmp_path("bigimg"), tmp_path("biglab"), &a),
                     FAN_E_FORMAT);
    assert_null(ds);
    assert_true(largest < (size_t)claimed);
}

/* ---- CIFAR ------------------------------------------------------------------------------- */

/* Writes n records with n_label label bytes (labels[i * n_label + k]); pixel j of record i is
   (7 * i + j) % 256. */
static size_t cifar_records(uint8_t *out, const uint8_t *labels, size_t n, size_t n_label)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < n_label; k++) out[len++] = labels[i * n_label + k];
        for (size_t j = 0; j < CIFAR_REC; j++) out[len++] = (uint8_t)((7 * i + j) % 256);
    }
    return len;
}

static uint8_t cifar_buf[4 * (CIFAR_REC + 2)];

static void test_cifar10_records_load_labels_planar_pixels_and_shape(void **state)
{
    (void)state;
    const uint8_t labels[3] = {0, 9, 5};
    size_t len = cifar_records(cifar_buf, labels, 3, 1);
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 1, &a));
    assert_int_equal(fan_dataset_size(ds), 3);
    assert_int_equal(fan_dataset_dim(ds), CIFAR_REC);
    assert_int_equal(fan_dataset_classes(ds), 10);
    size_t w, h, ch;
    TU_OK(fan_dataset_shape(ds, &w, &h, &ch));
    assert_int_equal(w, 32);
    assert_int_equal(h, 32);
    assert_int_equal(ch, 3);
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_NONE, 0, 0));
    static float x[CIFAR_REC];
    int32_t l;
    TU_OK(fan_dataset_get(ds, 2, x, CIFAR_REC, &l));
    assert_int_equal(l, 5);
    const size_t blue_x5_y7 = 2 * 1024 + 7 * 32 + 5; /* channel-planar: plane, row, column */
    TU_CLOSE(x[blue_x5_y7], (double)((14 + blue_x5_y7) % 256), 0, 0);
    TU_OK(fan_dataset_get(ds, 1, x, CIFAR_REC, &l));
    assert_int_equal(l, 9);
    TU_CLOSE(x[0], 7.0, 0, 0);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_cifar100_uses_the_fine_label_and_100_classes(void **state)
{
    (void)state;
    const uint8_t labels[4] = {19, 99, 3, 42}; /* coarse, fine per record */
    size_t len = cifar_records(cifar_buf, labels, 2, 2);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 2, NULL));
    assert_int_equal(fan_dataset_size(ds), 2);
    assert_int_equal(fan_dataset_classes(ds), 100);
    int32_t l;
    float x[CIFAR_REC];
    TU_OK(fan_dataset_get(ds, 0, NULL, 0, &l));
    assert_int_equal(l, 99);
    TU_OK(fan_dataset_get(ds, 1, x, CIFAR_REC, &l));
    assert_int_equal(l, 42);
    TU_CLOSE(x[1], 8.0 / 255.0, 1e-7, 0); /* labels are not pixels */
    fan_dataset_free(ds);
}

static void test_cifar_rejects_bad_labels_sizes_and_arguments(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *ds = NULL;
    size_t len = cifar_records(cifar_buf, (const uint8_t[]){3, 10}, 2, 1);
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 1, &a), FAN_E_LABEL);
    len = cifar_records(cifar_buf, (const uint8_t[]){3, 100}, 1, 2);
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 2, &a), FAN_E_LABEL);
    len = cifar_records(cifar_buf, (const uint8_t[]){20, 1}, 1, 2);
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 2, &a), FAN_E_LABEL);
    len = cifar_records(cifar_buf, (const uint8_t[]){1, 2}, 2, 1);
    for (size_t cut = 1; cut < len; cut += 1531) { /* not whole records */
        assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, len - cut, 1, &a),
                         FAN_E_FORMAT);
    }
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, 0, 1, &a), FAN_E_FORMAT);
    /* A CIFAR-10 batch read as CIFAR-100 is not whole records. */
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 2, &a), FAN_E_FORMAT);
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 3, &a), FAN_E_INVALID);
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, cifar_buf, len, 0, &a), FAN_E_INVALID);
    assert_int_equal(fan_dataset_load_cifar_mem(&ds, NULL, len, 1, &a), FAN_E_NULL);
    assert_null(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_cifar_files_are_concatenated_in_order(void **state)
{
    (void)state;
    const uint8_t labels[3] = {4, 7, 2};
    size_t len = cifar_records(cifar_buf, labels, 3, 1);
    const size_t rec = CIFAR_REC + 1;
    tu_write_file(tmp_path("c1"), cifar_buf, 2 * rec);
    tu_write_file(tmp_path("c2"), cifar_buf + 2 * rec, rec);
    tu_write_file(tmp_path("c3"), cifar_buf, rec + 100); /* truncated second record */
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *files = NULL, *mem = NULL;
    const char *paths[2] = {tmp_path("c1"), tmp_path("c2")};
    TU_OK(fan_dataset_load_cifar(&files, paths, 2, 1, &a));
    TU_OK(fan_dataset_load_cifar_mem(&mem, cifar_buf, len, 1, &a));
    tu_assert_same_dataset(files, mem);
    fan_dataset_free(files);
    fan_dataset_free(mem);
    const char *bad[2] = {tmp_path("c1"), tmp_path("c3")};
    assert_int_equal(fan_dataset_load_cifar(&files, bad, 2, 1, &a), FAN_E_FORMAT);
    const char *missing[1] = {tmp_path("nope")};
    assert_int_equal(fan_dataset_load_cifar(&files, missing, 1, 1, &a), FAN_E_IO);
    assert_int_equal(fan_dataset_load_cifar(&files, paths, 0, 1, &a), FAN_E_INVALID);
    const char *null_path[1] = {NULL};
    assert_int_equal(fan_dataset_load_cifar(&files, null_path, 1, 1, &a), FAN_E_NULL);
    assert_null(files);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- out-of-memory sweeps ---------------------------------------------------------------- */


static uint8_t oom_gi[256], oom_gl[256];
static size_t oom_gi_len, oom_gl_len;

static fan_status load_idx_raw(fan_dataset **o, const fan_allocator *a)
{
    return fan_dataset_load_idx_mem(o, std_img, std_img_len, std_lab, std_lab_len, a);
}
static fan_status load_idx_gz(fan_dataset **o, const fan_allocator *a)
{
    return fan_dataset_load_idx_mem(o, oom_gi, oom_gi_len, oom_gl, oom_gl_len, a);
}
static fan_status load_idx_gz_file(fan_dataset **o, const fan_allocator *a)
{
    return fan_dataset_load_idx(o, tmp_path("img.gz"), tmp_path("lab.gz"), a);
}
static fan_status load_cifar_mem(fan_dataset **o, const fan_allocator *a)
{
    return fan_dataset_load_cifar_mem(o, cifar_buf, 2 * (CIFAR_REC + 1), 1, a);
}
static fan_status load_cifar_files(fan_dataset **o, const fan_allocator *a)
{
    const char *paths[2] = {tmp_path("c1"), tmp_path("c2")};
    return fan_dataset_load_cifar(o, paths, 2, 1, a);
}
static void test_loaders_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    make_std();
    oom_gi_len = tu_gzip_mem(std_img, std_img_len, oom_gi, sizeof oom_gi);
    oom_gl_len = tu_gzip_mem(std_lab, std_lab_len, oom_gl, sizeof oom_gl);
    tu_write_gz_file(tmp_path("img.gz"), std_img, std_img_len);
    tu_write_gz_file(tmp_path("lab.gz"), std_lab, std_lab_len);
    size_t len = cifar_records(cifar_buf, (const uint8_t[]){1, 2, 3}, 3, 1);
    tu_write_file(tmp_path("c1"), cifar_buf, 2 * (CIFAR_REC + 1));
    tu_write_file(tmp_path("c2"), cifar_buf + 2 * (CIFAR_REC + 1), len - 2 * (CIFAR_REC + 1));

    assert_true(tu_dataset_oom_sweep(load_idx_raw) >= 3);
    /* inflate's state and window come from the same allocator. */
    assert_true(tu_dataset_oom_sweep(load_idx_gz) >= 5);
    assert_true(tu_dataset_oom_sweep(load_idx_gz_file) >= 5);
    assert_true(tu_dataset_oom_sweep(load_cifar_mem) >= 3);
    assert_true(tu_dataset_oom_sweep(load_cifar_files) >= 3);
}

/* ---- the real data sets ------------------------------------------------------------------ */

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f != NULL) fclose(f);
    return f != NULL;
}

static void test_real_fashion_mnist_has_published_counts_and_first_label(void **state)
{
    (void)state;
    if (!file_exists(FASHION_DIR "/train-labels-idx1-ubyte.gz")) {
        skip(); /* CI installs dataset-fashion-mnist, so this runs there */
    }
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *train = NULL, *test = NULL;
    TU_OK(fan_dataset_load_idx(&train, FASHION_DIR "/train-images-idx3-ubyte.gz",
                               FASHION_DIR "/train-labels-idx1-ubyte.gz", &a));
    TU_OK(fan_dataset_load_idx(&test, FASHION_DIR "/t10k-images-idx3-ubyte.gz",
                               FASHION_DIR "/t10k-labels-idx1-ubyte.gz", &a));
    assert_int_equal(fan_dataset_size(train), 60000);
    assert_int_equal(fan_dataset_size(test), 10000);
    assert_int_equal(fan_dataset_dim(train), 784);
    assert_int_equal(fan_dataset_classes(train), 10);
    assert_int_equal(fan_dataset_classes(test), 10);
    size_t w, h, ch;
    TU_OK(fan_dataset_shape(train, &w, &h, &ch));
    assert_int_equal(w, 28);
    assert_int_equal(h, 28);
    assert_int_equal(ch, 1);
    int32_t l;
    TU_OK(fan_dataset_get(train, 0, NULL, 0, &l));
    assert_int_equal(l, 9); /* "Ankle boot" */
    size_t counts[10];
    TU_OK(fan_dataset_class_counts(train, counts, 10));
    for (size_t k = 0; k < 10; k++) assert_int_equal(counts[k], 6000);
    double mean, std;
    TU_OK(fan_dataset_compute_stats(train, &mean, &std));
    TU_CLOSE(mean, 0.2860, 0, 5e-4); /* the values used to standardise Fashion-MNIST */
    TU_CLOSE(std, 0.3530, 0, 5e-4);
    fan_dataset_free(train);
    fan_dataset_free(test);
    assert_int_equal(c.live_blocks, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_raw_memory_loads_pixels_labels_shape_and_classes),
        cmocka_unit_test(test_idx_class_count_is_max_label_plus_one_when_above_ten),
        cmocka_unit_test(test_idx_gzip_and_zlib_memory_match_raw),
        cmocka_unit_test(test_idx_files_raw_and_gzopen_written_load_the_same),
        cmocka_unit_test(test_idx_rejects_wrong_magic),
        cmocka_unit_test(test_idx_truncated_at_every_offset_or_with_trailing_bytes_fails),
        cmocka_unit_test(test_idx_gzip_truncated_or_corrupted_anywhere_fails),
        cmocka_unit_test(test_idx_concatenated_gzip_members_load_as_one_file),
        cmocka_unit_test(test_idx_counts_that_disagree_or_zero_sizes_fail_with_format),
        cmocka_unit_test(test_idx_header_dims_that_overflow_size_t_fail_with_limit),
        cmocka_unit_test(test_idx_count_beyond_input_size_fails_without_allocating_it),
        cmocka_unit_test(test_cifar10_records_load_labels_planar_pixels_and_shape),
        cmocka_unit_test(test_cifar100_uses_the_fine_label_and_100_classes),
        cmocka_unit_test(test_cifar_rejects_bad_labels_sizes_and_arguments),
        cmocka_unit_test(test_cifar_files_are_concatenated_in_order),
        cmocka_unit_test(test_loaders_fail_cleanly_at_every_allocation),
        cmocka_unit_test(test_real_fashion_mnist_has_published_counts_and_first_label),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
