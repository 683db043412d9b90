/* test_csv.c - the CSV loader (plain and gzip, file and memory): values, labels, header and
   line handling, locale-free number parsing, malformed input, out-of-memory sweeps and the real
   scikit-learn digits file when installed. */
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

#define DIGITS_CSV "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/fan_csv_XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static const char *tmp_path(const char *name)
{
    static char p[4][128];
    static int slot;
    slot = (slot + 1) % 4;
    snprintf(p[slot], sizeof p[slot], "%s/%s", tmpdir, name);
    return p[slot];
}

static int teardown_dir(void **state)
{
    (void)state;
    (void)remove(tmp_path("x.csv"));
    (void)remove(tmp_path("x.csv.gz"));
    return rmdir(tmpdir);
}

/* ---- loading --------------------------------------------------------------------------------- */

static fan_status csv(fan_dataset **ds, const char *text, size_t label_column, int skip)
{
    return fan_dataset_load_csv_mem(ds, text, strlen(text), label_column, skip, NULL);
}

static void test_csv_loads_values_and_last_column_labels(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    const char *text = "1,2.5,-3e-1,0\n4,5,6,2\n";
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_load_csv_mem(&ds, text, strlen(text), FAN_CSV_LAST_COLUMN, 0, &a));
    assert_int_equal(fan_dataset_size(ds), 2);
    assert_int_equal(fan_dataset_dim(ds), 3);
    assert_int_equal(fan_dataset_classes(ds), 3);
    size_t w, h, ch;
    TU_OK(fan_dataset_shape(ds, &w, &h, &ch));
    assert_int_equal(w * 100 + h * 10 + ch, 311);
    float x[3];
    int32_t l;
    TU_OK(fan_dataset_get(ds, 0, x, 3, &l)); /* FAN_NORM_NONE: values as stored */
    assert_int_equal(l, 0);
    TU_CLOSE(x[0], 1.0, 0, 0);
    TU_CLOSE(x[1], 2.5, 0, 0);
    TU_CLOSE(x[2], -0.3, 1e-7, 0);
    TU_OK(fan_dataset_get(ds, 1, x, 3, &l));
    assert_int_equal(l, 2);
    TU_CLOSE(x[2], 6.0, 0, 0);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_csv_label_column_header_crlf_spaces_and_blank_lines(void **state)
{
    (void)state;
    fan_dataset *ds = NULL;
    TU_OK(csv(&ds, "label,a,b\r\n2, 1.5 ,7\r\n\r\n0,+3,.5\r\n  \n1.0,-0,1E2", 0, 1));
    assert_int_equal(fan_dataset_size(ds), 3);
    assert_int_equal(fan_dataset_dim(ds), 2);
    assert_int_equal(fan_dataset_classes(ds), 3);
    float x[2];
    int32_t l;
    TU_OK(fan_dataset_get(ds, 0, x, 2, &l));
    assert_int_equal(l, 2);
    TU_CLOSE(x[0], 1.5, 0, 0);
    TU_CLOSE(x[1], 7.0, 0, 0);
    TU_OK(fan_dataset_get(ds, 1, x, 2, &l));
    assert_int_equal(l, 0);
    TU_CLOSE(x[0], 3.0, 0, 0);
    TU_CLOSE(x[1], 0.5, 0, 0);
    TU_OK(fan_dataset_get(ds, 2, x, 2, &l));
    assert_int_equal(l, 1); /* "1.0" is an integer label */
    TU_CLOSE(x[1], 100.0, 0, 0);
    fan_dataset_free(ds);
}

static void test_csv_numbers_parse_exactly_where_representable(void **state)
{
    (void)state;
    fan_dataset *ds = NULL;
    TU_OK(csv(&ds,
              "0.1,1e2,-2.5E-1,12345678901234567890,1e-45,0.000001e6,3.4028234e38,"
              "123456789012345678901234567890e-20,0\n",
              FAN_CSV_LAST_COLUMN, 0));
    float x[8];
    TU_OK(fan_dataset_get(ds, 0, x, 8, NULL));
    assert_true(x[0] == 0.1f);
    assert_true(x[1] == 100.0f);
    assert_true(x[2] == -0.25f);
    assert_true(x[3] == 12345678901234567890.0f);
    TU_CLOSE(x[4], 1e-45, 0.5, 0); /* a float denormal */
    assert_true(x[5] == 1.0f);
    assert_true(x[6] == 3.4028234e38f);
    TU_CLOSE(x[7], 1234567890.1234567, 1e-7, 0);
    fan_dataset_free(ds);
}

static void test_csv_rejects_malformed_input_with_specific_status(void **state)
{
    (void)state;
    const struct {
        const char *text;
        size_t label_column;
        fan_status want;
    } cases[] = {
        {"1,nan,0\n", FAN_CSV_LAST_COLUMN, FAN_E_NONFINITE},
        {"1,NaN,0\n", FAN_CSV_LAST_COLUMN, FAN_E_NONFINITE},
        {"1,-inf,0\n", FAN_CSV_LAST_COLUMN, FAN_E_NONFINITE},
        {"1,Infinity,0\n", FAN_CSV_LAST_COLUMN, FAN_E_NONFINITE},
        {"1,1e39,0\n", FAN_CSV_LAST_COLUMN, FAN_E_NONFINITE}, /* beyond float */
        {"1,1e400,0\n", FAN_CSV_LAST_COLUMN, FAN_E_NONFINITE},
        {"1,2,-1\n", FAN_CSV_LAST_COLUMN, FAN_E_LABEL},
        {"1,2,2.5\n", FAN_CSV_LAST_COLUMN, FAN_E_LABEL},
        {"1,2,nan\n", FAN_CSV_LAST_COLUMN, FAN_E_LABEL},
        {"1,2,65536\n", FAN_CSV_LAST_COLUMN, FAN_E_LABEL}, /* FAN_MAX_CLASSES */
        {"1,2,0\n3,4,-0.5\n", FAN_CSV_LAST_COLUMN, FAN_E_LABEL},
        {"1,abc,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,2x,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,.,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,1e,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,--1,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,2,0\n1,2\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,2,0\n1,2,3,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1,2,\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"1 2,0\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"\n\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT},
        {"3\n4\n", FAN_CSV_LAST_COLUMN, FAN_E_FORMAT}, /* a label but no values */
        {"1,2,0\n", 3, FAN_E_INVALID},
        {"1,2,0\n", 17, FAN_E_INVALID},
        {"1,2,0\n", 0, FAN_OK},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        fan_dataset *ds = NULL;
        fan_status s = csv(&ds, cases[k].text, cases[k].label_column, 0);
        if (s != cases[k].want) {
            print_error("case %zu (%s): got %d, want %d\n", k, cases[k].text, (int)s,
                        (int)cases[k].want);
            fail();
        }
        if (s != FAN_OK) assert_null(ds);
        fan_dataset_free(ds);
    }
    fan_dataset *ds = NULL;
    assert_int_equal(csv(&ds, "h1,h2\n", FAN_CSV_LAST_COLUMN, 1), FAN_E_FORMAT); /* header only */
    /* A 200-character field: longer than any number needs. */
    char long_field[256] = "1,";
    memset(long_field + 2, '0', 200);
    strcpy(long_field + 202, "1,0\n");
    assert_int_equal(csv(&ds, long_field, FAN_CSV_LAST_COLUMN, 0), FAN_E_FORMAT);
    assert_int_equal(fan_dataset_load_csv_mem(&ds, NULL, 3, 0, 0, NULL), FAN_E_NULL);
    assert_int_equal(fan_dataset_load_csv(&ds, tmp_path("nope.csv"), 0, 0, NULL), FAN_E_IO);
    assert_null(ds);
}

static void test_csv_gzip_memory_and_files_match_plain(void **state)
{
    (void)state;
    const char *text = "0.5,1,2,1\n-1,0.25,3,0\n9,8,7,4\n";
    uint8_t gz[256];
    size_t gz_len = tu_gzip_mem(text, strlen(text), gz, sizeof gz);
    tu_write_file(tmp_path("x.csv"), text, strlen(text));
    tu_write_gz_file(tmp_path("x.csv.gz"), text, strlen(text));
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    fan_dataset *plain = NULL, *gzm = NULL, *f = NULL, *fgz = NULL;
    TU_OK(fan_dataset_load_csv_mem(&plain, text, strlen(text), FAN_CSV_LAST_COLUMN, 0, &a));
    TU_OK(fan_dataset_load_csv_mem(&gzm, gz, gz_len, FAN_CSV_LAST_COLUMN, 0, &a));
    TU_OK(fan_dataset_load_csv(&f, tmp_path("x.csv"), FAN_CSV_LAST_COLUMN, 0, &a));
    TU_OK(fan_dataset_load_csv(&fgz, tmp_path("x.csv.gz"), FAN_CSV_LAST_COLUMN, 0, &a));
    assert_int_equal(fan_dataset_classes(plain), 5);
    tu_assert_same_dataset(plain, gzm);
    tu_assert_same_dataset(plain, f);
    tu_assert_same_dataset(plain, fgz);
    fan_dataset_free(plain);
    fan_dataset_free(gzm);
    fan_dataset_free(f);
    fan_dataset_free(fgz);
    for (size_t len = 2; len < gz_len; len++) { /* every truncation of the gzip stream */
        assert_int_equal(fan_dataset_load_csv_mem(&f, gz, len, FAN_CSV_LAST_COLUMN, 0, &a),
                         FAN_E_FORMAT);
    }
    assert_null(f);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- out-of-memory sweeps ---------------------------------------------------------------- */


static const char oom_csv[] = "1,2,0\n3,4,1\n";
static uint8_t oom_csv_gz[128];
static size_t oom_csv_gz_len;

static fan_status load_csv_plain(fan_dataset **o, const fan_allocator *a)
{
    return fan_dataset_load_csv_mem(o, oom_csv, strlen(oom_csv), FAN_CSV_LAST_COLUMN, 0, a);
}
static fan_status load_csv_gz(fan_dataset **o, const fan_allocator *a)
{
    return fan_dataset_load_csv_mem(o, oom_csv_gz, oom_csv_gz_len, FAN_CSV_LAST_COLUMN, 0, a);
}
static fan_status load_csv_gz_file(fan_dataset **o, const fan_allocator *a)
{
    return fan_dataset_load_csv(o, tmp_path("x.csv.gz"), FAN_CSV_LAST_COLUMN, 0, a);
}

static void test_csv_loader_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
    oom_csv_gz_len = tu_gzip_mem(oom_csv, strlen(oom_csv), oom_csv_gz, sizeof oom_csv_gz);
    tu_write_gz_file(tmp_path("x.csv.gz"), oom_csv, strlen(oom_csv));
    /* The read chunk, the row buffer and the dataset's three blocks. */
    assert_true(tu_dataset_oom_sweep(load_csv_plain) >= 5);
    /* Plus inflate's state and window, from the same allocator. */
    assert_true(tu_dataset_oom_sweep(load_csv_gz) >= 7);
    assert_true(tu_dataset_oom_sweep(load_csv_gz_file) >= 7);
}

/* ---- the real data set ------------------------------------------------------------------- */

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f != NULL) fclose(f);
    return f != NULL;
}

/* A row of FAN_MAX_WIDTH + 2 columns (one more feature than a net may take): 33.5 MB of "0,". */
static void test_csv_row_wider_than_the_column_limit_fails_with_limit(void **state)
{
    (void)state;
    const size_t cols = (size_t)FAN_MAX_WIDTH + 2, len = 2 * cols;
    char *text = malloc(len);
    assert_non_null(text);
    for (size_t i = 0; i < cols; i++) {
        text[2 * i] = '0';
        text[2 * i + 1] = ',';
    }
    text[len - 1] = '\n';
    char msg[256];
    fan_create_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.errmsg = msg;
    o.errmsg_cap = sizeof msg;
    fan_dataset *ds = NULL;
    assert_int_equal(fan_dataset_load_csv_mem_ex(&ds, text, len, FAN_CSV_LAST_COLUMN, 0, &o),
                     FAN_E_LIMIT);
    assert_null(ds);
    assert_true(strstr(msg, "columns") != NULL);
    /* The same through the old entry point (which a row of this width used to pass). */
    assert_int_equal(fan_dataset_load_csv_mem(&ds, text, len, FAN_CSV_LAST_COLUMN, 0, NULL),
                     FAN_E_LIMIT);
    assert_null(ds);
    free(text);
}

static void test_real_sklearn_digits_csv_has_1797_rows_of_64(void **state)
{
    (void)state;
    if (!file_exists(DIGITS_CSV)) skip();
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_load_csv(&ds, DIGITS_CSV, FAN_CSV_LAST_COLUMN, 0, NULL));
    assert_int_equal(fan_dataset_size(ds), 1797);
    assert_int_equal(fan_dataset_dim(ds), 64);
    assert_int_equal(fan_dataset_classes(ds), 10);
    float x[64];
    int32_t l;
    TU_OK(fan_dataset_get(ds, 0, x, 64, &l));
    assert_int_equal(l, 0);
    TU_CLOSE(x[2], 5.0, 0, 0); /* first row: 0,0,5,13,9,1,... */
    TU_CLOSE(x[3], 13.0, 0, 0);
    fan_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_loads_values_and_last_column_labels),
        cmocka_unit_test(test_csv_label_column_header_crlf_spaces_and_blank_lines),
        cmocka_unit_test(test_csv_numbers_parse_exactly_where_representable),
        cmocka_unit_test(test_csv_rejects_malformed_input_with_specific_status),
        cmocka_unit_test(test_csv_gzip_memory_and_files_match_plain),
        cmocka_unit_test(test_csv_loader_fails_cleanly_at_every_allocation),
        cmocka_unit_test(test_csv_row_wider_than_the_column_limit_fails_with_limit),
        cmocka_unit_test(test_real_sklearn_digits_csv_has_1797_rows_of_64),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
