/* test_npy.c - NumPy .npy files: datasets from images + labels, a net's matrices exported and
   imported, and hostile input (truncation at every byte, huge shapes, wrong dtypes, malformed
   headers, random corruption) that must fail with a specific status, allocate nothing it cannot
   justify, and leak nothing. The files are built byte by byte here exactly as numpy.save writes
   them; bindings/python/tests/test_npy.py checks the same files against NumPy itself. */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fanoise.h"
#include "testutil.h"

#define CAP 65536u
/* Fuzz iterations of the random-corruption test (each one a load from memory). */
#define FUZZ_ROUNDS 4000

/* Builds a .npy file: magic, version, header dict text as given (padded with spaces and '\n' to
   a multiple of 64, as NumPy pads), then data. Returns its length. */
static size_t npy_build(unsigned char *out, size_t cap, unsigned major, const char *dict,
                        const void *data, size_t data_len)
{
    const size_t len_bytes = major == 1 ? 2 : 4;
    const size_t pre = 8 + len_bytes, body = strlen(dict) + 1;
    const size_t total_hdr = (pre + body + 63) / 64 * 64, hlen = total_hdr - pre;
    assert_true(total_hdr + data_len <= cap);
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < len_bytes; i++) out[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(out + pre, dict, body - 1);
    memset(out + pre + body - 1, ' ', hlen - body);
    out[total_hdr - 1] = '\n';
    if (data_len) memcpy(out + total_hdr, data, data_len);
    return total_hdr + data_len;
}

static size_t npy_simple(unsigned char *out, const char *descr, const char *shape,
                         const void *data, size_t data_len)
{
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
             shape);
    return npy_build(out, CAP, 1, dict, data, data_len);
}

/* 6 images of 2 x 3 floats, labels 0..2 as int64: the running example. */
static const float IMG[6][6] = {{0, 1, 2, 3, 4, 5},       {-1, -2, -3, -4, -5, -6},
                                {0.5f, 0, 0, 0, 0, 0},    {1e-3f, 2, 3, 4, 5, 6},
                                {9, 9, 9, 9, 9, 9},       {1e30f, -1e30f, 0, 0, 0, 7}};
static const int64_t LAB[6] = {0, 1, 2, 2, 1, 0};

typedef struct pair {
    unsigned char img[CAP], lab[CAP];
    size_t img_len, lab_len;
} pair;

static pair *good_pair(void)
{
    pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->img_len = npy_simple(p->img, "<f4", "(6, 2, 3)", IMG, sizeof IMG);
    p->lab_len = npy_simple(p->lab, "<i8", "(6,)", LAB, sizeof LAB);
    return p;
}

/* Options carrying a message buffer (of 256 bytes) and an allocator (may be NULL). */
static fan_create_options opts_of(char *msg, const fan_allocator *a)
{
    fan_create_options o = {sizeof o, a, msg, msg ? 256 : 0, 0};
    return o;
}

static fan_status load_pair(const pair *p, size_t classes, fan_dataset **ds, char *msg)
{
    const fan_create_options o = opts_of(msg, NULL);
    return fan_dataset_load_npy_mem_ex(ds, p->img, p->img_len, p->lab, p->lab_len, classes, &o);
}

static void test_float32_images_and_int64_labels_load_with_their_shape(void **state)
{
    (void)state;
    pair *p = good_pair();
    fan_dataset *ds = NULL;
    char msg[256];
    TU_OK(load_pair(p, 0, &ds, msg));
    assert_string_equal(msg, "");
    assert_int_equal(fan_dataset_size(ds), 6);
    assert_int_equal(fan_dataset_dim(ds), 6);
    assert_int_equal(fan_dataset_classes(ds), 3);
    size_t w, h, c;
    TU_OK(fan_dataset_shape(ds, &w, &h, &c));
    assert_int_equal(w, 3);
    assert_int_equal(h, 2);
    assert_int_equal(c, 1);
    for (size_t i = 0; i < 6; i++) {
        float x[6];
        int32_t y;
        TU_OK(fan_dataset_get(ds, i, x, 6, &y));
        assert_int_equal(y, LAB[i]);
        /* float data is stored as is: FAN_NORM_NONE */
        assert_memory_equal(x, IMG[i], sizeof x);
    }
    fan_dataset_free(ds);
    free(p);
}

static void test_uint8_images_scale_and_four_dimensions_are_channel_planar(void **state)
{
    (void)state;
    unsigned char *img = malloc(CAP), *lab = malloc(CAP);
    uint8_t px[2 * 3 * 2 * 2];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 10);
    const uint8_t labels[2] = {4, 1};
    const size_t li = npy_simple(img, "|u1", "(2, 3, 2, 2)", px, sizeof px);
    const size_t ll = npy_simple(lab, "|u1", "(2, 1)", labels, sizeof labels);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_load_npy_mem(&ds, img, li, lab, ll, 10, NULL));
    assert_int_equal(fan_dataset_classes(ds), 10);
    size_t w, h, c;
    TU_OK(fan_dataset_shape(ds, &w, &h, &c));
    assert_int_equal(w, 2);
    assert_int_equal(h, 2);
    assert_int_equal(c, 3);
    float x[12];
    int32_t y;
    TU_OK(fan_dataset_get(ds, 1, x, 12, &y));
    assert_int_equal(y, 1);
    for (size_t j = 0; j < 12; j++) TU_CLOSE(x[j], (double)px[12 + j] / 255.0, 1e-6, 1e-7);
    fan_dataset_free(ds);
    free(img);
    free(lab);
}

static void test_every_integer_label_dtype_is_read(void **state)
{
    (void)state;
    pair *p = good_pair();
    const char *descr[] = {"|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8"};
    for (size_t k = 0; k < sizeof descr / sizeof *descr; k++) {
        const size_t size = (size_t)(descr[k][2] - '0');
        unsigned char raw[6 * 8];
        for (size_t i = 0; i < 6; i++)
            for (size_t b = 0; b < size; b++) raw[i * size + b] = b == 0 ? (unsigned char)LAB[i] : 0;
        p->lab_len = npy_simple(p->lab, descr[k], "(6,)", raw, 6 * size);
        fan_dataset *ds = NULL;
        char msg[256];
        TU_OK(load_pair(p, 0, &ds, msg));
        for (size_t i = 0; i < 6; i++) {
            int32_t y;
            TU_OK(fan_dataset_get(ds, i, NULL, 0, &y));
            assert_int_equal(y, LAB[i]);
        }
        fan_dataset_free(ds);
    }
    free(p);
}

static void test_format_versions_two_and_three_are_read_and_four_is_refused(void **state)
{
    (void)state;
    pair *p = good_pair();
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), }";
    for (unsigned major = 2; major <= 4; major++) {
        p->img_len = npy_build(p->img, CAP, major, dict, IMG, sizeof IMG);
        fan_dataset *ds = NULL;
        char msg[256];
        const fan_status s = load_pair(p, 0, &ds, msg);
        assert_int_equal(s, major <= 3 ? FAN_OK : FAN_E_VERSION);
        if (major == 4) assert_non_null(strstr(msg, "version 4.0"));
        fan_dataset_free(ds);
    }
    free(p);
}

/* Loads the pair with the images replaced by dict + data; expects status and a message part. */
static void expect_images(const char *dict, const void *data, size_t len, fan_status want,
                          const char *part)
{
    pair *p = good_pair();
    p->img_len = npy_build(p->img, CAP, 1, dict, data, len);
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *ds = (fan_dataset *)p; /* not NULL: the loader must reset it */
    char msg[256];
    const fan_create_options o = opts_of(msg, &a);
    const fan_status s =
        fan_dataset_load_npy_mem_ex(&ds, p->img, p->img_len, p->lab, p->lab_len, 0, &o);
    if (s != want || strstr(msg, part) == NULL)
        print_error("dict %s: status %d (%s), message '%s'; wanted %d and '%s'\n", dict, (int)s,
                    fan_strerror(s), msg, (int)want, part);
    assert_int_equal(s, want);
    assert_non_null(strstr(msg, part));
    assert_null(ds);
    assert_int_equal(c.live_blocks, 0);
    free(p);
}

static void test_fortran_order_is_refused_with_a_way_out(void **state)
{
    (void)state;
    expect_images("{'descr': '<f4', 'fortran_order': True, 'shape': (6, 6), }", IMG, sizeof IMG,
                  FAN_E_UNSUPPORTED, "ascontiguousarray");
}

static void test_other_dtypes_are_refused_as_unsupported(void **state)
{
    (void)state;
    const char *images[] = {"<f8", "<f2", ">f4", "=f4", "|b1", "<c8", "<i4", "|O", "<U3", "|S1",
                            "f4", "<f44", ""};
    for (size_t k = 0; k < sizeof images / sizeof *images; k++) {
        char dict[160];
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (6, 6), }",
                 images[k]);
        expect_images(dict, IMG, sizeof IMG, FAN_E_UNSUPPORTED, "dtype");
    }
    expect_images("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (6, 6), }", IMG,
                  sizeof IMG, FAN_E_UNSUPPORTED, "structured");
    /* Labels must be integers. */
    pair *p = good_pair();
    const float flabels[6] = {0, 1, 2, 2, 1, 0};
    p->lab_len = npy_simple(p->lab, "<f4", "(6,)", flabels, sizeof flabels);
    fan_dataset *ds = NULL;
    char msg[256];
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_UNSUPPORTED);
    assert_non_null(strstr(msg, "integers"));
    free(p);
}

static void test_malformed_headers_are_format_errors(void **state)
{
    (void)state;
    const char *bad[] = {
        "{'descr': '<f4', 'fortran_order': False}",                       /* no shape */
        "{'descr': '<f4', 'shape': (6, 6), }",                            /* no fortran_order */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), 'x': 1, }", /* unknown key */
        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (36), }",       /* an int, not a tuple */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6, -6), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [6, 6], }",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (6, 6), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), } x",  /* text after the dict */
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), 'x}",  /* unterminated */
        "{'descr': '<f\\x34', 'fortran_order': False, 'shape': (6, 6), }",
        "{'descr' '<f4', 'fortran_order': False, 'shape': (6, 6), }",
        "{'descr': '<f4' 'fortran_order': False, 'shape': (6, 6), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6 6), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), ",
        "('descr', '<f4')",
        "",
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        expect_images(bad[k], IMG, sizeof IMG, FAN_E_FORMAT, "header");
    /* Data that does not match the header's size, either way. */
    expect_images("{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), }", IMG,
                  sizeof IMG - 1, FAN_E_FORMAT, "truncated");
    unsigned char more[sizeof IMG + 1] = {0};
    memcpy(more, IMG, sizeof IMG);
    expect_images("{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), }", more, sizeof more,
                  FAN_E_FORMAT, "after the array");
}

static void test_a_nul_in_the_header_and_bad_magic_are_format_errors(void **state)
{
    (void)state;
    pair *p = good_pair();
    fan_dataset *ds = NULL;
    char msg[256];
    const unsigned char keep = p->img[20];
    p->img[20] = '\0';
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_FORMAT);
    assert_non_null(strstr(msg, "NUL"));
    p->img[20] = keep;
    p->img[1] = 'n';
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_FORMAT);
    assert_non_null(strstr(msg, "magic"));
    assert_null(ds);
    free(p);
}

static void test_every_truncation_of_both_files_fails_cleanly(void **state)
{
    (void)state;
    pair *p = good_pair();
    for (int which = 0; which < 2; which++) {
        const size_t full = which ? p->lab_len : p->img_len;
        for (size_t len = 0; len < full; len++) {
            tu_counter c = {0};
            fan_allocator a = tu_allocator(&c);
            fan_dataset *ds = NULL;
            const fan_status s = fan_dataset_load_npy_mem(
                &ds, p->img, which ? p->img_len : len, p->lab, which ? len : p->lab_len, 0, &a);
            assert_int_equal(s, FAN_E_FORMAT);
            assert_null(ds);
            /* Nothing is allocated from a header that the input cannot back. */
            assert_int_equal(c.total_allocs, 0);
        }
    }
    free(p);
}

static void test_huge_shapes_are_refused_before_any_allocation(void **state)
{
    (void)state;
    static const struct {
        const char *shape;
        fan_status want;
    } cases[] = {
        {"(1099511627776, 784)", FAN_E_LIMIT},           /* 2^40 samples */
        {"(10, 1073741824)", FAN_E_LIMIT},               /* 2^30 values per sample */
        {"(4294967296, 4294967296, 4294967296)", FAN_E_LIMIT}, /* the count overflows */
        {"(99999999999999999999999, 2)", FAN_E_LIMIT},   /* a dimension overflows */
        {"(200000000, 1)", FAN_E_LIMIT},                 /* above FAN_MAX_SAMPLES */
        {"(6, 100000)", FAN_E_FORMAT},                   /* legal, but the data is not there */
        {"(0, 6)", FAN_E_INVALID},
        {"(6,)", FAN_E_UNSUPPORTED},
        {"(1, 1, 1, 1, 6)", FAN_E_UNSUPPORTED},
        {"(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
         "1, 1, 1, 1)", FAN_E_LIMIT},                    /* 33 dimensions */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        pair *p = good_pair();
        char dict[300];
        snprintf(dict, sizeof dict, "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }",
                 cases[k].shape);
        p->img_len = npy_build(p->img, CAP, 1, dict, IMG, 36);
        tu_counter c = {0};
        fan_allocator a = tu_allocator(&c);
        fan_dataset *ds = NULL;
        char msg[256];
        const fan_create_options o = opts_of(msg, &a);
        const fan_status s = fan_dataset_load_npy_mem_ex(&ds, p->img, p->img_len, p->lab,
                                                         p->lab_len, 0, &o);
        if (s != cases[k].want) print_error("shape %s: %s (%s)\n", cases[k].shape, fan_strerror(s), msg);
        assert_int_equal(s, cases[k].want);
        assert_int_equal(c.total_allocs, 0);
        free(p);
    }
}

static void test_a_header_length_field_beyond_the_limit_or_the_file_is_refused(void **state)
{
    (void)state;
    pair *p = good_pair();
    fan_dataset *ds = NULL;
    char msg[256];
    /* Version 2.0 with a 1 GiB header length. */
    p->img_len = npy_build(p->img, CAP, 2, "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 6), }",
                           IMG, sizeof IMG);
    p->img[8] = 0, p->img[9] = 0, p->img[10] = 0, p->img[11] = 0x40;
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_LIMIT);
    /* Version 1.0 whose length runs past the end of the file. */
    p->img_len = npy_simple(p->img, "<f4", "(6, 6)", IMG, sizeof IMG);
    p->img[8] = 0xff, p->img[9] = 0xff;
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_FORMAT);
    assert_non_null(strstr(msg, "truncated"));
    free(p);
}

static void test_labels_out_of_range_mismatched_counts_and_nan_are_refused(void **state)
{
    (void)state;
    pair *p = good_pair();
    fan_dataset *ds = NULL;
    char msg[256];
    int64_t lab[6];
    memcpy(lab, LAB, sizeof lab);
    lab[3] = -1;
    p->lab_len = npy_simple(p->lab, "<i8", "(6,)", lab, sizeof lab);
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_LABEL);
    assert_non_null(strstr(msg, "sample 3"));
    lab[3] = 7;
    p->lab_len = npy_simple(p->lab, "<i8", "(6,)", lab, sizeof lab);
    assert_int_equal(load_pair(p, 5, &ds, msg), FAN_E_LABEL);
    lab[3] = 70000; /* above FAN_MAX_CLASSES */
    p->lab_len = npy_simple(p->lab, "<i8", "(6,)", lab, sizeof lab);
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_LABEL);
    p->lab_len = npy_simple(p->lab, "<i8", "(5,)", LAB, 5 * sizeof *LAB);
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_SHAPE);
    assert_non_null(strstr(msg, "5 labels for 6 images"));
    p->lab_len = npy_simple(p->lab, "<i8", "(3, 2)", LAB, sizeof LAB);
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_SHAPE);
    p->lab_len = npy_simple(p->lab, "<i8", "(6,)", LAB, sizeof LAB);
    float img[36];
    memcpy(img, IMG, sizeof img);
    img[20] = NAN;
    p->img_len = npy_simple(p->img, "<f4", "(6, 6)", img, sizeof img);
    assert_int_equal(load_pair(p, 0, &ds, msg), FAN_E_NONFINITE);
    assert_int_equal(load_pair(p, 70000, &ds, msg), FAN_E_LIMIT);
    assert_null(ds);
    free(p);
}

static const pair *g_oom_pair;
static fan_status oom_load(fan_dataset **out, const fan_allocator *a)
{
    return fan_dataset_load_npy_mem(out, g_oom_pair->img, g_oom_pair->img_len, g_oom_pair->lab,
                                    g_oom_pair->lab_len, 0, a);
}

static void test_every_failed_allocation_is_reported_and_leaks_nothing(void **state)
{
    (void)state;
    pair *p = good_pair();
    g_oom_pair = p;
    /* The scratch labels, then the dataset's handle, labels and samples. */
    assert_int_equal(tu_dataset_oom_sweep(oom_load), 4);
    free(p);
}

static void test_random_corruption_never_crashes_or_leaks(void **state)
{
    (void)state;
    pair *p = good_pair();
    unsigned char *mut = malloc(CAP);
    uint64_t x = 12345;
    size_t ok = 0;
    for (int round = 0; round < FUZZ_ROUNDS; round++) {
        memcpy(mut, p->img, p->img_len);
        size_t len = p->img_len;
        /* 1 to 4 edits, most in the header where the parser works. */
        for (int e = 0; e < 1 + round % 4; e++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            const size_t at = (size_t)(x >> 33) % (round % 3 ? 80 : len);
            const unsigned char v = (unsigned char)(x >> 20);
            if ((x >> 60) == 0) len = at; /* sometimes truncate instead */
            else mut[at] = v;
        }
        tu_counter c = {0};
        fan_allocator a = tu_allocator(&c);
        fan_dataset *ds = NULL;
        const fan_status s = fan_dataset_load_npy_mem(&ds, mut, len, p->lab, p->lab_len, 0, &a);
        assert_true(s == FAN_OK || s == FAN_E_FORMAT || s == FAN_E_UNSUPPORTED ||
                    s == FAN_E_LIMIT || s == FAN_E_VERSION || s == FAN_E_SHAPE ||
                    s == FAN_E_INVALID || s == FAN_E_NONFINITE);
        if (s == FAN_OK) {
            ok++;
            assert_int_equal(fan_dataset_size(ds), 6);
            fan_dataset_free(ds);
        } else {
            assert_null(ds);
        }
        assert_int_equal(c.live_blocks, 0);
    }
    /* Some edits land in padding or data and leave a valid file. */
    assert_true(ok > 0);
    free(mut);
    free(p);
}

static void test_files_load_like_buffers_and_paths_are_checked(void **state)
{
    (void)state;
    char dir[] = "/tmp/fan_npy_XXXXXX", img[64], lab[64], msg[256];
    assert_non_null(mkdtemp(dir));
    snprintf(img, sizeof img, "%s/x.npy", dir);
    snprintf(lab, sizeof lab, "%s/y.npy", dir);
    pair *p = good_pair();
    tu_write_file(img, p->img, p->img_len);
    tu_write_file(lab, p->lab, p->lab_len);
    fan_dataset *a = NULL, *b = NULL;
    fan_create_options o = opts_of(msg, NULL);
    TU_OK(fan_dataset_load_npy_ex(&a, img, lab, 0, &o));
    assert_string_equal(msg, "");
    TU_OK(load_pair(p, 0, &b, msg));
    tu_assert_same_dataset(a, b);
    fan_dataset_free(a);
    fan_dataset_free(b);
    TU_OK(fan_dataset_load_npy(&a, img, lab, 0, NULL));
    fan_dataset_free(a);
    assert_int_equal(fan_dataset_load_npy_ex(&a, dir, lab, 0, &o), FAN_E_IO);
    assert_non_null(strstr(msg, "not a regular file"));
    assert_int_equal(fan_dataset_load_npy_ex(&a, "/nonexistent/x.npy", lab, 0, &o), FAN_E_IO);
    assert_non_null(strstr(msg, "/nonexistent/x.npy"));
    assert_int_equal(fan_dataset_load_npy_ex(&a, img, NULL, 0, &o), FAN_E_NULL);
    assert_int_equal(fan_dataset_load_npy(NULL, img, lab, 0, NULL), FAN_E_NULL);
    /* A message is truncated to the buffer and always terminated. */
    char tiny[8] = "xxxxxxx";
    fan_create_options t = {sizeof t, NULL, tiny, 5, 0};
    assert_int_equal(fan_dataset_load_npy_ex(&a, "/nonexistent/x.npy", lab, 0, &t), FAN_E_IO);
    assert_int_equal(strlen(tiny), 4);
    /* The load budget counts the image data and the labels, before anything is allocated. */
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    fan_create_options small = {sizeof small, &al, msg, 256, 100};
    assert_int_equal(fan_dataset_load_npy_ex(&a, img, lab, 0, &small), FAN_E_LIMIT);
    assert_non_null(strstr(msg, "load budget"));
    assert_int_equal(c.total_allocs, 0);
    small.max_load_bytes = sizeof IMG + 2 * 6 * sizeof(int32_t);
    TU_OK(fan_dataset_load_npy_ex(&a, img, lab, 0, &small));
    fan_dataset_free(a);
    assert_int_equal(c.live_blocks, 0);
    assert_int_equal(unlink(img), 0);
    assert_int_equal(unlink(lab), 0);
    assert_int_equal(rmdir(dir), 0);
    free(p);
}

/* ---- a net's matrices ---------------------------------------------------------------------- */

static fan_net *small_net(uint64_t ws, uint64_t fs)
{
    const size_t sizes[] = {5, 4, 3};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    TU_OK(fan_net_init(net, ws, fs));
    float b[4] = {0.5f, -0.25f, 1, 2};
    TU_OK(fan_net_set_weights(net, 0, NULL, 0, b, 4));
    return net;
}

static void assert_same_matrices(const fan_net *a, const fan_net *b)
{
    for (size_t l = 0; l < 2; l++) {
        float wa[20], wb[20], ba[4], bb[4], fa[20], fb[20];
        const size_t o = fan_net_layer_outputs(a, l), n = o * fan_net_layer_inputs(a, l);
        TU_OK(fan_net_get_weights(a, l, wa, n, ba, o));
        TU_OK(fan_net_get_weights(b, l, wb, n, bb, o));
        TU_OK(fan_net_get_feedback(a, l, fa, n));
        TU_OK(fan_net_get_feedback(b, l, fb, n));
        assert_memory_equal(wa, wb, n * sizeof(float));
        assert_memory_equal(ba, bb, o * sizeof(float));
        assert_memory_equal(fa, fb, n * sizeof(float));
    }
}

static void remove_exports(const char *dir)
{
    const char *names[] = {"weights", "bias", "feedback"};
    char path[128];
    for (int l = 0; l < 2; l++)
        for (int k = 0; k < 3; k++) {
            snprintf(path, sizeof path, "%s/%s_%d.npy", dir, names[k], l);
            (void)unlink(path);
        }
    assert_int_equal(rmdir(dir), 0);
}

static void test_export_then_import_restores_w_b_and_b_bit_for_bit(void **state)
{
    (void)state;
    char dir[] = "/tmp/fan_npy_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    fan_net *src = small_net(1, 2), *dst = small_net(3, 4);
    TU_OK_NET(src, fan_net_export_npy(src, dir));
    TU_OK_NET(dst, fan_net_import_npy(dst, dir));
    assert_same_matrices(src, dst);

    /* The files are what numpy.save writes for float32 arrays of these shapes. */
    snprintf(path, sizeof path, "%s/weights_0.npy", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char head[128];
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    (void)fclose(f);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 5), }";
    assert_memory_equal(head, "\x93NUMPY\x01\x00\x76\x00", 10);
    assert_memory_equal(head + 10, dict, strlen(dict));
    assert_int_equal(head[127], '\n');
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 128 + 4 * 20);
    snprintf(path, sizeof path, "%s/bias_1.npy", dir);
    f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(head, 1, 96, f), 96);
    (void)fclose(f);
    char text[97];
    memcpy(text, head, 96);
    text[96] = '\0';
    assert_non_null(strstr(text + 10, "'shape': (3,), }"));
    fan_net_free(src);
    fan_net_free(dst);
    remove_exports(dir);
}

static void test_import_checks_every_file_before_changing_the_net(void **state)
{
    (void)state;
    char dir[] = "/tmp/fan_npy_XXXXXX", path[128];
    assert_non_null(mkdtemp(dir));
    fan_net *src = small_net(1, 2), *dst = small_net(3, 4), *before = small_net(3, 4);
    TU_OK(fan_net_export_npy(src, dir));
    unsigned char *buf = malloc(CAP);
    /* The last file has the wrong shape: nothing may change, the message names file and shapes. */
    snprintf(path, sizeof path, "%s/feedback_1.npy", dir);
    float z[12] = {0};
    tu_write_file(path, buf, npy_simple(buf, "<f4", "(4, 3)", z, sizeof z));
    assert_int_equal(fan_net_import_npy(dst, dir), FAN_E_SHAPE);
    assert_non_null(strstr(fan_net_errmsg(dst), "feedback_1.npy: shape (4, 3); feedback of layer 1 is (3, 4)"));
    assert_same_matrices(dst, before);
    /* Float64 is accepted and rounded; a NaN is not. */
    double zd[12] = {0};
    tu_write_file(path, buf, npy_simple(buf, "<f8", "(3, 4)", zd, sizeof zd));
    TU_OK_NET(dst, fan_net_import_npy(dst, dir));
    zd[5] = NAN;
    tu_write_file(path, buf, npy_simple(buf, "<f8", "(3, 4)", zd, sizeof zd));
    assert_int_equal(fan_net_import_npy(before, dir), FAN_E_NONFINITE);
    tu_write_file(path, buf, npy_simple(buf, "|u1", "(3, 4)", zd, 12));
    assert_int_equal(fan_net_import_npy(before, dir), FAN_E_UNSUPPORTED);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(fan_net_import_npy(before, dir), FAN_E_IO);
    assert_non_null(strstr(fan_net_errmsg(before), "feedback_1.npy"));
    fan_net *ref = small_net(3, 4);
    assert_same_matrices(before, ref);
    fan_net_free(ref);
    assert_int_equal(fan_net_export_npy(src, "/nonexistent/dir"), FAN_E_IO);
    assert_int_equal(fan_net_export_npy(NULL, dir), FAN_E_NULL);
    assert_int_equal(fan_net_import_npy(dst, NULL), FAN_E_NULL);
    free(buf);
    fan_net_free(src);
    fan_net_free(dst);
    fan_net_free(before);
    remove_exports(dir);
}

static void test_every_rule_round_trips_what_it_stores(void **state)
{
    (void)state;
    char dir[] = "/tmp/fan_npy_XXXXXX";
    assert_non_null(mkdtemp(dir));
    for (int r = 0; r < 256; r++) {
        if (strcmp(fan_rule_name((fan_rule)r), "unknown") == 0) continue;
        fan_net *src = small_net(1, 2), *dst = small_net(3, 4);
        if (fan_net_set_rule(src, (fan_rule)r) != FAN_OK) { /* a rule this build does not train */
            fan_net_free(src);
            fan_net_free(dst);
            continue;
        }
        TU_OK_NET(dst, fan_net_set_rule(dst, (fan_rule)r));
        TU_OK_NET(src, fan_net_export_npy(src, dir));
        TU_OK_NET(dst, fan_net_import_npy(dst, dir));
        /* W and b always; the feedback as the rule's error pass sees it, which for the rules
           that draw it from W (uSF, brSF) follows from W. */
        for (size_t l = 0; l < 2; l++) {
            float wa[20], wb[20], ba[4], bb[4];
            const size_t o = fan_net_layer_outputs(src, l), n = o * fan_net_layer_inputs(src, l);
            TU_OK(fan_net_get_weights(src, l, wa, n, ba, o));
            TU_OK(fan_net_get_weights(dst, l, wb, n, bb, o));
            assert_memory_equal(wa, wb, n * sizeof(float));
            assert_memory_equal(ba, bb, o * sizeof(float));
        }
        if (r != FAN_RULE_BRSF) { /* brSF's magnitudes are per batch: not a stored matrix */
            size_t rows, cols;
            TU_OK(fan_net_feedback_shape(src, 1, &rows, &cols));
            float fa[40], fb[40];
            TU_OK(fan_net_get_feedback(src, 1, fa, rows * cols));
            TU_OK(fan_net_get_feedback(dst, 1, fb, rows * cols));
            assert_memory_equal(fa, fb, rows * cols * sizeof(float));
        }
        fan_net_free(src);
        fan_net_free(dst);
    }
    remove_exports(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float32_images_and_int64_labels_load_with_their_shape),
        cmocka_unit_test(test_uint8_images_scale_and_four_dimensions_are_channel_planar),
        cmocka_unit_test(test_every_integer_label_dtype_is_read),
        cmocka_unit_test(test_format_versions_two_and_three_are_read_and_four_is_refused),
        cmocka_unit_test(test_fortran_order_is_refused_with_a_way_out),
        cmocka_unit_test(test_other_dtypes_are_refused_as_unsupported),
        cmocka_unit_test(test_malformed_headers_are_format_errors),
        cmocka_unit_test(test_a_nul_in_the_header_and_bad_magic_are_format_errors),
        cmocka_unit_test(test_every_truncation_of_both_files_fails_cleanly),
        cmocka_unit_test(test_huge_shapes_are_refused_before_any_allocation),
        cmocka_unit_test(test_a_header_length_field_beyond_the_limit_or_the_file_is_refused),
        cmocka_unit_test(test_labels_out_of_range_mismatched_counts_and_nan_are_refused),
        cmocka_unit_test(test_every_failed_allocation_is_reported_and_leaks_nothing),
        cmocka_unit_test(test_random_corruption_never_crashes_or_leaks),
        cmocka_unit_test(test_files_load_like_buffers_and_paths_are_checked),
        cmocka_unit_test(test_export_then_import_restores_w_b_and_b_bit_for_bit),
        cmocka_unit_test(test_import_checks_every_file_before_changing_the_net),
        cmocka_unit_test(test_every_rule_round_trips_what_it_stores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
