/* test_options.c - fan_create_options and the _ex loaders: the struct_size rule, detailed
   messages delivered to errmsg, the load budget (refused before allocating), and compressed
   input that claims more than it holds. */
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

#include "testutil.h"

/* The test allocator refuses any single request above this, and records the largest. */
#define ALLOC_CAP ((size_t)64 << 20)
/* The fixed read buffer of the CSV loader, independent of the input. */
#define IO_SCRATCH 65536u

typedef struct watch {
    size_t largest, live, count;
} watch;

static void *watch_alloc(void *ud, size_t n)
{
    watch *w = ud;
    if (n > w->largest) w->largest = n;
    if (n > ALLOC_CAP) return NULL;
    void *p = malloc(n);
    if (p != NULL) {
        w->live++;
        w->count++;
    }
    return p;
}

static void watch_free(void *ud, void *p)
{
    ((watch *)ud)->live--;
    free(p);
}

typedef struct fixture {
    watch w;
    fan_allocator al;
    char msg[256];
    fan_create_options o;
} fixture;

static void fixture_init(fixture *f, uint64_t budget)
{
    memset(f, 0, sizeof *f);
    f->al.alloc = watch_alloc;
    f->al.free = watch_free;
    f->al.ud = &f->w;
    f->o.struct_size = sizeof f->o;
    f->o.alloc = &f->al;
    f->o.errmsg = f->msg;
    f->o.errmsg_cap = sizeof f->msg;
    f->o.max_load_bytes = budget;
    strcpy(f->msg, "untouched");
}

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/fan_options_XXXXXX");
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

static const char *const tmp_names[] = {"img", "lab", "c", "csv", "net"};

static int teardown_dir(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof tmp_names / sizeof tmp_names[0]; k++)
        (void)remove(tmp_path(tmp_names[k]));
    return rmdir(tmpdir);
}

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}

/* 4 images of 2 x 3 pixels and their labels. */
static uint8_t img[16 + 24], lab[8 + 4];

static void make_idx(void)
{
    size_t n = put_be32(img, 0x803);
    n += put_be32(img + n, 4);
    n += put_be32(img + n, 2);
    n += put_be32(img + n, 3);
    for (size_t k = 0; k < 24; k++) img[n + k] = (uint8_t)k;
    n = put_be32(lab, 0x801);
    n += put_be32(lab + n, 4);
    for (size_t k = 0; k < 4; k++) lab[n + k] = (uint8_t)k;
}

/* ---- the struct_size rule ---------------------------------------------------------------- */

static void test_struct_size_rule_reads_only_covered_fields_and_refuses_unknown_ones(void **state)
{
    (void)state;
    make_idx();
    fan_dataset *ds = NULL;
    /* NULL options: defaults. */
    TU_OK(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, NULL));
    fan_dataset_free(ds);

    /* struct_size 0: the caller forgot it. errmsg lies beyond struct_size, so it is not read:
       the status alone says what is wrong. */
    fixture f;
    fixture_init(&f, 0);
    f.o.struct_size = 0;
    ds = (fan_dataset *)&f;
    assert_int_equal(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &f.o),
                     FAN_E_INVALID);
    assert_null(ds);
    assert_string_equal(f.msg, "untouched");
    f.o.struct_size = (size_t)1 << 20; /* garbage, not a newer header */
    assert_int_equal(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &f.o),
                     FAN_E_INVALID);
    assert_int_equal(f.w.count, 0);
    /* struct_size covering errmsg, but implausible as a size: not trusted either. */
    f.o.struct_size = 4097;
    assert_int_equal(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &f.o),
                     FAN_E_INVALID);
    assert_string_equal(f.msg, "untouched");

    /* An older caller's struct that ends after alloc: the allocator is used, errmsg (beyond
       struct_size) is not read, the budget is the default. */
    fixture_init(&f, 1);
    f.o.struct_size = offsetof(fan_create_options, errmsg);
    TU_OK(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &f.o));
    assert_true(f.w.live > 0);
    fan_dataset_free(ds);
    assert_int_equal(f.w.live, 0);
    assert_string_equal(f.msg, "untouched");

    /* A newer caller's larger struct: zero unknown fields are fine, a set one is refused. */
    struct newer {
        fan_create_options base;
        uint64_t future_field;
    } n;
    memset(&n, 0, sizeof n);
    n.base.struct_size = sizeof n;
    char msg[256];
    n.base.errmsg = msg;
    n.base.errmsg_cap = sizeof msg;
    TU_OK(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &n.base));
    assert_string_equal(msg, "");
    fan_dataset_free(ds);
    n.future_field = 1;
    assert_int_equal(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &n.base),
                     FAN_E_UNSUPPORTED);
    assert_null(ds);
    assert_true(strstr(msg, "knows only") != NULL);
    assert_int_equal(fan_net_load_mem_ex(NULL, img, 1, &n.base), FAN_E_UNSUPPORTED);

    /* A message longer than the buffer is cut and terminated. */
    fixture_init(&f, 0);
    f.o.errmsg_cap = 8;
    img[3] = 0x04; /* bad magic */
    assert_int_equal(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &f.o),
                     FAN_E_FORMAT);
    assert_int_equal(strlen(f.msg), 7);
    img[3] = 0x03;
}

/* ---- messages ------------------------------------------------------------------------------ */

static void test_loader_messages_reach_errmsg(void **state)
{
    (void)state;
    make_idx();
    fixture f;
    fixture_init(&f, 0);
    fan_dataset *ds = NULL;
    img[3] = 0x04;
    assert_int_equal(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &f.o),
                     FAN_E_FORMAT);
    assert_true(strstr(f.msg, "images: bad IDX magic") != NULL);
    img[3] = 0x03;
    tu_write_file(tmp_path("img"), img, sizeof img);
    tu_write_file(tmp_path("lab"), lab, sizeof lab - 1);
    assert_int_equal(fan_dataset_load_idx_ex(&ds, tmp_path("img"), tmp_path("lab"), &f.o),
                     FAN_E_FORMAT);
    assert_true(strstr(f.msg, "input can hold") != NULL);
    assert_int_equal(fan_dataset_load_idx_ex(&ds, tmp_path("img"), tmpdir, &f.o), FAN_E_IO);
    assert_true(strstr(f.msg, "a directory") != NULL);
    assert_int_equal(fan_dataset_load_idx_ex(&ds, tmp_path("img"), tmp_path("none"), &f.o),
                     FAN_E_IO);
    assert_true(strstr(f.msg, "cannot open") != NULL && strstr(f.msg, "none") != NULL);

    const char *csv = "1,2,0\n3,x,1\n";
    assert_int_equal(fan_dataset_load_csv_mem_ex(&ds, csv, strlen(csv), FAN_CSV_LAST_COLUMN, 0,
                                                 &f.o),
                     FAN_E_FORMAT);
    assert_string_equal(f.msg, "row 2, column 1: \"x\" is not a number");
    uint8_t rec[3073] = {12};
    assert_int_equal(fan_dataset_load_cifar_mem_ex(&ds, rec, sizeof rec, 1, &f.o), FAN_E_LABEL);
    assert_true(strstr(f.msg, "label 12") != NULL);
    assert_int_equal(fan_dataset_load_cifar_mem_ex(&ds, rec, sizeof rec, 3, &f.o),
                     FAN_E_INVALID);
    assert_true(strstr(f.msg, "n_label_bytes") != NULL);
    assert_int_equal(fan_net_load_mem_ex(&(fan_net *){NULL}, rec, 100, &f.o), FAN_E_FORMAT);
    assert_true(strstr(f.msg, "magic") != NULL);
    assert_int_equal(fan_dataset_load_csv_ex(&ds, NULL, 0, 0, &f.o), FAN_E_NULL);
    assert_true(strstr(f.msg, "path is NULL") != NULL);
    assert_int_equal(f.w.live, 0);
    /* Success clears the buffer. */
    TU_OK(fan_dataset_load_idx_mem_ex(&ds, img, sizeof img, lab, sizeof lab, &f.o));
    assert_string_equal(f.msg, "");
    fan_dataset_free(ds);
}

/* ---- the budget ---------------------------------------------------------------------------- */

/* Loads with budget `need - 1` (must fail before allocating anything of the data's size) and
   `need` (must succeed). */
typedef fan_status (*budget_load)(fan_dataset **out, const fan_create_options *o);

static void check_budget(budget_load load, uint64_t need)
{
    fixture f;
    fixture_init(&f, need - 1);
    fan_dataset *ds = (fan_dataset *)&f;
    assert_int_equal(load(&ds, &f.o), FAN_E_LIMIT);
    assert_null(ds);
    assert_true(strstr(f.msg, "max_load_bytes") != NULL);
    /* Nothing of the data's size; fixed scratch (the CSV reader's 64 KiB chunk) may come first. */
    assert_true(f.w.largest < need || f.w.largest == IO_SCRATCH);
    assert_int_equal(f.w.live, 0);
    fixture_init(&f, need);
    TU_OK(load(&ds, &f.o));
    fan_dataset_free(ds);
    assert_int_equal(f.w.live, 0);
}

static fan_status idx_mem(fan_dataset **out, const fan_create_options *o)
{
    return fan_dataset_load_idx_mem_ex(out, img, sizeof img, lab, sizeof lab, o);
}

static fan_status idx_file(fan_dataset **out, const fan_create_options *o)
{
    return fan_dataset_load_idx_ex(out, tmp_path("img"), tmp_path("lab"), o);
}

static uint8_t cifar[2 * 3073];

static fan_status cifar_mem(fan_dataset **out, const fan_create_options *o)
{
    return fan_dataset_load_cifar_mem_ex(out, cifar, sizeof cifar, 1, o);
}

static fan_status cifar_file(fan_dataset **out, const fan_create_options *o)
{
    const char *p[] = {tmp_path("c")};
    return fan_dataset_load_cifar_ex(out, p, 1, 1, o);
}

static const char csv_text[] = "1,2,3,0\n4,5,6,1\n7,8,9,0\n";

static fan_status csv_mem(fan_dataset **out, const fan_create_options *o)
{
    return fan_dataset_load_csv_mem_ex(out, csv_text, sizeof csv_text - 1, 3, 0, o);
}

static fan_status csv_file(fan_dataset **out, const fan_create_options *o)
{
    return fan_dataset_load_csv_ex(out, tmp_path("csv"), 3, 0, o);
}

static void test_every_loader_refuses_input_above_the_budget_before_allocating(void **state)
{
    (void)state;
    make_idx();
    tu_write_file(tmp_path("img"), img, sizeof img);
    tu_write_file(tmp_path("lab"), lab, sizeof lab);
    /* 24 pixel bytes plus 4 int32 labels. */
    check_budget(idx_mem, 24 + 16);
    check_budget(idx_file, 24 + 16);
    memset(cifar, 0, sizeof cifar);
    tu_write_file(tmp_path("c"), cifar, sizeof cifar);
    check_budget(cifar_mem, 2 * 3076);
    check_budget(cifar_file, 2 * 3076);
    tu_write_file(tmp_path("csv"), csv_text, sizeof csv_text - 1);
    check_budget(csv_mem, 3 * 4 * 4);
    check_budget(csv_file, 3 * 4 * 4);

    /* Models: the budget is the encoding's length. */
    const size_t sizes[] = {3, 2};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 2, NULL));
    size_t len = 0;
    TU_OK(fan_net_save_mem(net, NULL, 0, &len));
    uint8_t *buf = malloc(len);
    TU_OK(fan_net_save_mem(net, buf, len, &len));
    TU_OK(fan_net_save(net, tmp_path("net")));
    fixture f;
    fixture_init(&f, len - 1);
    fan_net *back = NULL;
    assert_int_equal(fan_net_load_mem_ex(&back, buf, len, &f.o), FAN_E_LIMIT);
    assert_int_equal(fan_net_load_ex(&back, tmp_path("net"), &f.o), FAN_E_LIMIT);
    assert_int_equal(f.w.count, 0);
    f.o.max_load_bytes = len;
    TU_OK(fan_net_load_mem_ex(&back, buf, len, &f.o));
    fan_net_free(back);
    TU_OK(fan_net_load_ex(&back, tmp_path("net"), &f.o));
    fan_net_free(back);
    assert_int_equal(f.w.live, 0);
    free(buf);
    fan_net_free(net);
}

/* ---- compressed input that claims more than it holds --------------------------------------- */

/* Deterministic incompressible bytes. */
static void noise_bytes(uint8_t *p, size_t n, uint64_t x)
{
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)(x >> 32);
    }
}

static void test_gzip_idx_claiming_1e9_pixels_fails_without_allocating_them(void **state)
{
    (void)state;
    /* 1 MiB of incompressible pixels behind a header claiming 10^6 images of 1000 x 1 = 10^9
       pixels: about 1 MiB of gzip, which the 1032:1 bound of deflate cannot rule out. */
    const size_t body = (size_t)1 << 20, n = 1000000;
    uint8_t *raw = malloc(16 + body);
    assert_non_null(raw);
    size_t k = put_be32(raw, 0x803);
    k += put_be32(raw + k, (uint32_t)n);
    k += put_be32(raw + k, 1000);
    k += put_be32(raw + k, 1);
    noise_bytes(raw + k, body, 42);
    const size_t cap = 2 * body;
    uint8_t *gz = malloc(cap);
    const size_t gz_len = tu_gzip_mem(raw, 16 + body, gz, cap);
    /* Labels that are really there: 10^6 zero bytes. */
    uint8_t *labels = calloc(8 + n, 1), *gl = malloc(8 + n);
    put_be32(labels, 0x801);
    put_be32(labels + 4, (uint32_t)n);
    const size_t gl_len = tu_gzip_mem(labels, 8 + n, gl, 8 + n);

    watch w = {0, 0, 0};
    const fan_allocator al = {watch_alloc, watch_free, &w};
    fan_dataset *ds = NULL;
    /* The old entry points, with their default budget of 4 GiB, which 10^9 is below. */
    assert_int_equal(fan_dataset_load_idx_mem(&ds, gz, gz_len, gl, gl_len, &al), FAN_E_FORMAT);
    assert_null(ds);
    assert_true(w.largest <= ((size_t)1 << 16)); /* zlib's window and a scratch chunk */
    tu_write_file(tmp_path("img"), gz, gz_len);
    tu_write_file(tmp_path("lab"), gl, gl_len);
    assert_int_equal(fan_dataset_load_idx(&ds, tmp_path("img"), tmp_path("lab"), &al),
                     FAN_E_FORMAT);
    assert_true(w.largest <= ((size_t)1 << 16));
    assert_int_equal(w.live, 0);
    free(raw);
    free(gz);
    free(labels);
    free(gl);
}

static void test_csv_bombs_stop_at_the_budget(void **state)
{
    (void)state;
    /* 400,000 rows of 50 zeros: 40 MB of text, 80 MB of floats, about 80 KB of gzip. */
    const size_t rows = 400000, cols = 50, len = rows * cols * 2;
    char *text = malloc(len);
    assert_non_null(text);
    for (size_t i = 0; i < rows * cols; i++) {
        text[2 * i] = '0';
        text[2 * i + 1] = (i + 1) % cols == 0 ? '\n' : ',';
    }
    uint8_t *gz = malloc(len / 64);
    const size_t gz_len = tu_gzip_mem(text, len, gz, len / 64);
    fixture f;
    fixture_init(&f, (uint64_t)1 << 20);
    fan_dataset *ds = NULL;
    assert_int_equal(fan_dataset_load_csv_mem_ex(&ds, gz, gz_len, 0, 0, &f.o), FAN_E_LIMIT);
    assert_true(strstr(f.msg, "the CSV dataset") != NULL);
    assert_true(f.w.largest <= ((size_t)1 << 16));
    /* A header line of 40 MB, skipped: no rows, but the decompressed text passes the budget. */
    memset(text, 'h', len - 1);
    const size_t hz_len = tu_gzip_mem(text, len, gz, len / 64);
    assert_int_equal(fan_dataset_load_csv_mem_ex(&ds, gz, hz_len, 0, 1, &f.o), FAN_E_LIMIT);
    assert_true(strstr(f.msg, "decompressed") != NULL);
    /* A single row wider than the budget allows fails before its row buffer grows past it. */
    fixture_init(&f, 4096);
    for (size_t i = 0; i < 4096; i++) {
        text[2 * i] = '0';
        text[2 * i + 1] = ',';
    }
    text[2 * 4096 - 1] = '\n';
    assert_int_equal(fan_dataset_load_csv_mem_ex(&ds, text, 2 * 4096, 0, 0, &f.o), FAN_E_LIMIT);
    assert_true(f.w.largest <= 4096 + 65536);
    assert_int_equal(f.w.live, 0);
    free(text);
    free(gz);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_struct_size_rule_reads_only_covered_fields_and_refuses_unknown_ones),
        cmocka_unit_test(test_loader_messages_reach_errmsg),
        cmocka_unit_test(test_every_loader_refuses_input_above_the_budget_before_allocating),
        cmocka_unit_test(test_gzip_idx_claiming_1e9_pixels_fails_without_allocating_them),
        cmocka_unit_test(test_csv_bombs_stop_at_the_budget),
    };
    return cmocka_run_group_tests_name("options", tests, setup_dir, teardown_dir);
}
