/* test_create_ex.c - the _ex constructors: every failure says why, naming the file or the
   offending value, in the caller's buffer; fan_create_options follows its struct_size rule; the
   options' allocator is the one the new handles use. (The loaders' _ex variants are tested
   with the loaders.) */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanoise.h"
#include "testutil.h"

#define MSG_CAP 256

/* Options with a message buffer, pre-filled with junk to see that success clears it. */
typedef struct msg_opts {
    fan_create_options o;
    char msg[MSG_CAP];
} msg_opts;

static void init_opts(msg_opts *m, const fan_allocator *al)
{
    memset(m, 0, sizeof *m);
    m->o.struct_size = sizeof m->o;
    m->o.alloc = al;
    m->o.errmsg = m->msg;
    m->o.errmsg_cap = sizeof m->msg;
    strcpy(m->msg, "junk");
}

/* Asserts the status and that the message holds every one of the NULL-terminated words. */
static void expect(fan_status got, fan_status want, const char *msg, ...)
{
    if (got != want) {
        print_error("status %d (%s), expected %d; message \"%s\"\n", (int)got, fan_strerror(got),
                    (int)want, msg);
        fail();
    }
    va_list ap;
    va_start(ap, msg);
    for (const char *w = va_arg(ap, const char *); w != NULL; w = va_arg(ap, const char *)) {
        if (strstr(msg, w) == NULL) {
            print_error("message \"%s\" lacks \"%s\"\n", msg, w);
            va_end(ap);
            fail();
        }
    }
    va_end(ap);
}

static fan_dataset *small_data(size_t n, size_t classes)
{
    float x[40 * 4];
    int32_t labels[40];
    assert_true(n <= 40);
    tu_fill(x, n * 4, 3, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(i % classes);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, labels, n, 4, classes, NULL));
    TU_OK(fan_dataset_set_shape(ds, 2, 2, 1));
    return ds;
}

/* ---- nets, optimizers, iterators -------------------------------------------------------------- */

static void test_net_create_ex_names_the_bad_size(void **s)
{
    (void)s;
    msg_opts m;
    init_opts(&m, NULL);
    fan_net *net = (fan_net *)&net;
    const size_t zero[] = {5, 0, 3};
    expect(fan_net_create_ex(&net, zero, 3, &m.o), FAN_E_INVALID, m.msg, "sizes[1] is 0", NULL);
    assert_null(net);
    expect(fan_net_create_ex(&net, zero, 1, &m.o), FAN_E_INVALID, m.msg, "n_sizes is 1", NULL);
    const size_t wide[] = {5, 16777217};
    expect(fan_net_create_ex(&net, wide, 2, &m.o), FAN_E_LIMIT, m.msg, "sizes[1] = 16777217",
           NULL);
    const size_t huge[] = {20000, 20000};
    expect(fan_net_create_ex(&net, huge, 2, &m.o), FAN_E_LIMIT, m.msg, "20000 x 20000", NULL);
    expect(fan_net_create_ex(&net, NULL, 2, &m.o), FAN_E_NULL, m.msg, "sizes is NULL", NULL);
    expect(fan_net_create_ex(NULL, zero, 3, &m.o), FAN_E_NULL, m.msg, "out is NULL", NULL);
    const size_t ok[] = {4, 3, 2};
    TU_OK(fan_net_create_ex(&net, ok, 3, &m.o));
    assert_string_equal(m.msg, "");
    fan_net_free(net);
    TU_OK(fan_net_create_ex(&net, ok, 3, NULL));
    fan_net_free(net);
}

static void test_net_create_ex_uses_the_allocator_and_reports_its_failure(void **s)
{
    (void)s;
    const size_t sizes[] = {4, 3, 2};
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    msg_opts m;
    init_opts(&m, &al);
    fan_net *net = NULL;
    TU_OK(fan_net_create_ex(&net, sizes, 3, &m.o));
    assert_true(c.live_blocks > 0);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
    c.fail_at = c.total_allocs + 1;
    expect(fan_net_create_ex(&net, sizes, 3, &m.o), FAN_E_NOMEM, m.msg, "allocate",
           "2 weight layers", NULL);
    assert_null(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_net_clone_ex_copies_into_the_allocator_it_is_given(void **s)
{
    (void)s;
    const size_t sizes[] = {4, 3, 2};
    fan_net *src = NULL, *copy = NULL;
    TU_OK(fan_net_create(&src, sizes, 3, NULL));
    msg_opts m;
    init_opts(&m, NULL);
    TU_OK(fan_net_clone_ex(&copy, src, &m.o));
    assert_string_equal(m.msg, "");
    fan_net_free(copy);
    tu_counter c = {0};
    fan_allocator other = tu_allocator(&c);
    init_opts(&m, &other);
    TU_OK(fan_net_clone_ex(&copy, src, &m.o));
    assert_true(c.live_blocks > 0); /* the copy lives in the other allocator */
    size_t la, lb;
    TU_OK(fan_net_save_mem(src, NULL, 0, &la));
    TU_OK(fan_net_save_mem(copy, NULL, 0, &lb));
    assert_int_equal(la, lb);
    fan_net_free(copy);
    assert_int_equal(c.live_blocks, 0);
    c.fail_at = c.total_allocs + 1;
    expect(fan_net_clone_ex(&copy, src, &m.o), FAN_E_NOMEM, m.msg, "allocate", NULL);
    assert_null(copy);
    assert_int_equal(c.live_blocks, 0);
    expect(fan_net_clone_ex(&copy, NULL, &m.o), FAN_E_NULL, m.msg, "src is NULL", NULL);
    fan_net_free(src);
}

static void test_optimizer_create_ex_names_the_unknown_kind(void **s)
{
    (void)s;
    const size_t sizes[] = {4, 3, 2};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    msg_opts m;
    init_opts(&m, NULL);
    fan_optimizer *opt = (fan_optimizer *)&opt;
    expect(fan_optimizer_create_ex(&opt, (fan_optimizer_kind)9, net, &m.o), FAN_E_INVALID, m.msg,
           "unknown optimizer kind 9", NULL);
    assert_null(opt);
    expect(fan_optimizer_create_ex(&opt, FAN_OPTIMIZER_ADAM, NULL, &m.o), FAN_E_NULL, m.msg,
           "net is NULL", NULL);
    TU_OK(fan_optimizer_create_ex(&opt, FAN_OPTIMIZER_ADAM, net, &m.o));
    assert_string_equal(m.msg, "");
    /* Its state back through the loader: damage and the budget are named. */
    size_t len = 0, w = 0;
    TU_OK(fan_optimizer_save_mem(opt, NULL, 0, &len));
    unsigned char *b = malloc(len);
    assert_non_null(b);
    TU_OK(fan_optimizer_save_mem(opt, b, len, &w));
    fan_optimizer *back = NULL;
    char has[64];
    snprintf(has, sizeof has, "has %zu bytes; its header describes %zu", len - 3, len);
    expect(fan_optimizer_load_mem_ex(&back, b, len - 3, &m.o), FAN_E_FORMAT, m.msg, has, NULL);
    m.o.max_load_bytes = 100;
    expect(fan_optimizer_load_mem_ex(&back, b, len, &m.o), FAN_E_LIMIT, m.msg, "budget of 100",
           NULL);
    m.o.max_load_bytes = 0;
    TU_OK(fan_optimizer_load_mem_ex(&back, b, len, &m.o));
    assert_int_equal(fan_optimizer_get_kind(back), FAN_OPTIMIZER_ADAM);
    fan_optimizer_free(back);
    free(b);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_iterator_ex_constructors_name_the_bad_value(void **s)
{
    (void)s;
    fan_dataset *ds = small_data(10, 2);
    msg_opts m;
    init_opts(&m, NULL);
    fan_iter *it = (fan_iter *)&it;
    expect(fan_iter_create_batches_ex(&it, ds, 0, 1, &m.o), FAN_E_INVALID, m.msg, "batch size 0",
           NULL);
    assert_null(it);
    expect(fan_iter_create_batches_ex(&it, NULL, 4, 1, &m.o), FAN_E_NULL, m.msg, "ds is NULL",
           NULL);
    expect(fan_iter_create_noise_ex(&it, 784, 70000, 4, 1, &m.o), FAN_E_INVALID, m.msg,
           "n_classes 70000", NULL);
    expect(fan_iter_create_noise_ex(&it, 784, 10, 0, 1, &m.o), FAN_E_INVALID, m.msg, "batch 0",
           NULL);
    expect(fan_iter_create_noise_ex(&it, 16777217, 10, 4, 1, &m.o), FAN_E_LIMIT, m.msg,
           "dim 16777217", NULL);
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    init_opts(&m, &al);
    TU_OK(fan_iter_create_batches_ex(&it, ds, 4, 1, &m.o));
    assert_true(c.live_blocks > 0);
    fan_iter_free(it);
    c.fail_at = c.total_allocs + 2;
    expect(fan_iter_create_noise_ex(&it, 784, 10, 64, 1, &m.o), FAN_E_NOMEM, m.msg,
           "64 rows of 784", NULL);
    assert_int_equal(c.live_blocks, 0);
    fan_dataset_free(ds);
}

/* ---- datasets ----------------------------------------------------------------------------------- */

static void test_dataset_from_arrays_ex_names_the_bad_label_or_value(void **s)
{
    (void)s;
    float x[6 * 3];
    int32_t labels[6] = {0, 1, 2, 0, 7, 1};
    tu_fill(x, 18, 1, 0.0f, 1.0f);
    msg_opts m;
    init_opts(&m, NULL);
    fan_dataset *ds = (fan_dataset *)&ds;
    expect(fan_dataset_from_arrays_ex(&ds, x, labels, 6, 3, 3, &m.o), FAN_E_LABEL, m.msg,
           "label 7 of sample 4", "[0, 3)", NULL);
    assert_null(ds);
    labels[4] = 2;
    x[13] = NAN;
    expect(fan_dataset_from_arrays_ex(&ds, x, labels, 6, 3, 3, &m.o), FAN_E_NONFINITE, m.msg,
           "x[13] (sample 4, value 1)", NULL);
    x[13] = 0.5f;
    expect(fan_dataset_from_arrays_ex(&ds, x, labels, 6, 0, 3, &m.o), FAN_E_INVALID, m.msg,
           "dim is 0", NULL);
    expect(fan_dataset_from_arrays_ex(&ds, x, labels, 6, 3, 70000, &m.o), FAN_E_LIMIT, m.msg,
           "n_classes 70000", NULL);
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    init_opts(&m, &al);
    TU_OK(fan_dataset_from_arrays_ex(&ds, x, labels, 6, 3, 3, &m.o));
    assert_int_equal(c.live_blocks, 3);
    assert_string_equal(m.msg, "");
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
    uint8_t px[6 * 4] = {0};
    expect(fan_dataset_from_u8_ex(&ds, px, labels, 6, 0, 2, 1, 3, &m.o), FAN_E_INVALID, m.msg,
           "0 x 2 x 1", NULL);
    labels[0] = -1;
    expect(fan_dataset_from_u8_ex(&ds, px, labels, 6, 2, 2, 1, 3, &m.o), FAN_E_LABEL, m.msg,
           "label -1 of sample 0", NULL);
}

static void test_derived_dataset_ex_constructors_name_the_bad_value(void **s)
{
    (void)s;
    fan_dataset *ds = small_data(10, 3); /* classes of 4, 3 and 3 samples */
    msg_opts m;
    init_opts(&m, NULL);
    fan_dataset *out = (fan_dataset *)&out, *val = (fan_dataset *)&val;
    expect(fan_dataset_subset_first_ex(&out, ds, 700, &m.o), FAN_E_INVALID, m.msg,
           "n 700 is not in [1, 10]", NULL);
    assert_null(out);
    /* The plain functions' place for the message gets it too. */
    assert_string_equal(fan_dataset_errmsg(ds), m.msg);
    expect(fan_dataset_subset_random_ex(&out, ds, 0, 1, &m.o), FAN_E_INVALID, m.msg, "n 0", NULL);
    expect(fan_dataset_subset_stratified_ex(&out, ds, 4, 1, &m.o), FAN_E_INVALID, m.msg,
           "4 per class x 3 classes exceeds the 10 samples", NULL);
    const size_t pick[6] = {0, 1, 2, 3, 4, 6}; /* labels 0 1 2 0 1 0 */
    fan_dataset *uneven = NULL;
    TU_OK(fan_dataset_subset_indices(&uneven, ds, pick, 6));
    expect(fan_dataset_subset_stratified_ex(&out, uneven, 2, 1, &m.o), FAN_E_INVALID, m.msg,
           "class 2 has 1 samples, fewer than 2", NULL);
    fan_dataset_free(uneven);
    const size_t idx[3] = {0, 99, 2};
    expect(fan_dataset_subset_indices_ex(&out, ds, idx, 3, &m.o), FAN_E_INVALID, m.msg,
           "indices[1] = 99", NULL);
    expect(fan_dataset_split_ex(&out, &val, ds, 10, 1, &m.o), FAN_E_INVALID, m.msg,
           "n_val 10 is not in [1, 10)", NULL);
    assert_null(out);
    assert_null(val);
    expect(fan_dataset_split_stratified_ex(&out, &val, ds, 0, 1, &m.o), FAN_E_INVALID, m.msg,
           "n_val 0", NULL);
    expect(fan_dataset_split_ex(&out, NULL, ds, 3, 1, &m.o), FAN_E_NULL, m.msg, "val is NULL",
           NULL);
    expect(fan_dataset_translate_ex(&out, ds, NAN, 0.0, &m.o), FAN_E_INVALID, m.msg,
           "shift (nan, 0)", NULL);
    expect(fan_dataset_rotate_ex(&out, ds, INFINITY, &m.o), FAN_E_INVALID, m.msg, "angle inf",
           NULL);
    expect(fan_dataset_scale_ex(&out, ds, -1.0, &m.o), FAN_E_INVALID, m.msg, "scale factor -1",
           NULL);
    expect(fan_dataset_resize_ex(&out, ds, 0, 5, &m.o), FAN_E_INVALID, m.msg, "0 x 5", NULL);
    expect(fan_dataset_resize_ex(&out, NULL, 2, 5, &m.o), FAN_E_NULL, m.msg,
           "source dataset is NULL", NULL);
    /* Successes, on the source's allocator by default and on the options' when given. */
    TU_OK(fan_dataset_split_stratified_ex(&out, &val, ds, 3, 1, &m.o));
    assert_string_equal(m.msg, "");
    assert_int_equal(fan_dataset_size(val), 3);
    fan_dataset_free(out);
    fan_dataset_free(val);
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    init_opts(&m, &al);
    TU_OK(fan_dataset_resize_ex(&out, ds, 3, 3, &m.o));
    assert_int_equal(c.live_blocks, 3);
    TU_OK(fan_dataset_subset_first_ex(&val, out, 5, NULL)); /* the source's: the counter's */
    assert_int_equal(c.live_blocks, 6);
    fan_dataset_free(val);
    fan_dataset_free(out);
    assert_int_equal(c.live_blocks, 0);
    fan_dataset_free(ds);
}

/* ---- checkpoints ------------------------------------------------------------------------------- */

static void test_checkpoint_load_ex_names_the_file_and_the_reason(void **s)
{
    (void)s;
    char dir_tmpl[] = "/tmp/fan_ex_XXXXXX";
    char *dir = mkdtemp(dir_tmpl);
    assert_non_null(dir);
    char path[300], missing[300];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    snprintf(missing, sizeof missing, "%s/nowhere.ckpt", dir);
    fan_dataset *ds = small_data(10, 2);
    const size_t sizes[] = {4, 3, 2};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    TU_OK(fan_iter_create_batches(&it, ds, 4, 1, NULL));
    TU_OK_NET(net, fan_checkpoint_save(path, net, opt, it));
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    msg_opts m;
    init_opts(&m, NULL);
    expect(fan_checkpoint_load_ex(missing, &net, &opt, &it, ds, &m.o), FAN_E_IO, m.msg,
           "cannot open", missing, "No such file", NULL);
    assert_null(net);
    fan_dataset *other = small_data(9, 2);
    expect(fan_checkpoint_load_ex(path, &net, &opt, &it, other, &m.o), FAN_E_SHAPE, m.msg, path,
           "10 samples", "9 samples", NULL);
    expect(fan_checkpoint_load_ex(path, &net, &opt, &it, NULL, &m.o), FAN_E_NULL, m.msg, path,
           "pass the dataset", NULL);
    m.o.max_load_bytes = 64;
    expect(fan_checkpoint_load_ex(path, &net, &opt, &it, ds, &m.o), FAN_E_LIMIT, m.msg, path,
           "more than this load accepts", NULL);
    m.o.max_load_bytes = 0;
    TU_OK(fan_checkpoint_load_ex(path, &net, &opt, &it, ds, &m.o));
    assert_string_equal(m.msg, "");
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    expect(fan_checkpoint_load_mem_ex("FANCKPT", 7, &net, &opt, &it, ds, &m.o), FAN_E_FORMAT,
           m.msg, "7 bytes", NULL);
    expect(fan_checkpoint_load_mem_ex(NULL, 7, &net, &opt, &it, ds, &m.o), FAN_E_NULL, m.msg,
           "buf is NULL", NULL);
    fan_dataset_free(other);
    fan_dataset_free(ds);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* ---- the options struct --------------------------------------------------------------------------- */

static void test_create_options_follow_the_struct_size_rule(void **s)
{
    (void)s;
    const size_t sizes[] = {4, 3, 2};
    fan_net *net = NULL;
    char msg[MSG_CAP] = "untouched";
    /* A struct_size that does not even cover the message buffer's fields: refused, and the
       buffer, which the library cannot know is there, is left alone. */
    fan_create_options bad = {0, NULL, msg, sizeof msg, 0};
    expect(fan_net_create_ex(&net, sizes, 3, &bad), FAN_E_INVALID, msg, "untouched", NULL);
    assert_null(net);
    /* A newer caller's struct with a field this library does not know. */
    struct {
        fan_create_options known;
        uint64_t future;
    } newer = {{sizeof newer, NULL, msg, sizeof msg, 0}, 5};
    expect(fan_net_create_ex(&net, sizes, 3, &newer.known), FAN_E_UNSUPPORTED, msg,
           "knows only the first", NULL);
    newer.future = 0; /* zeroed, it is ignored */
    TU_OK(fan_net_create_ex(&net, sizes, 3, &newer.known));
    fan_net_free(net);
    /* An older caller's struct without max_load_bytes: the default budget. */
    fan_create_options older = {offsetof(fan_create_options, max_load_bytes), NULL, msg,
                                sizeof msg, 1};
    TU_OK(fan_net_create_ex(&net, sizes, 3, &older));
    fan_net_free(net);
    /* A short buffer gets a truncated, terminated message. */
    char tiny[8];
    fan_create_options t = {sizeof t, NULL, tiny, sizeof tiny, 0};
    const size_t zero[] = {4, 0};
    assert_int_equal(fan_net_create_ex(&net, zero, 2, &t), FAN_E_INVALID);
    assert_string_equal(tiny, "sizes[1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_create_ex_names_the_bad_size),
        cmocka_unit_test(test_net_create_ex_uses_the_allocator_and_reports_its_failure),
        cmocka_unit_test(test_net_clone_ex_copies_into_the_allocator_it_is_given),
        cmocka_unit_test(test_optimizer_create_ex_names_the_unknown_kind),
        cmocka_unit_test(test_iterator_ex_constructors_name_the_bad_value),
        cmocka_unit_test(test_dataset_from_arrays_ex_names_the_bad_label_or_value),
        cmocka_unit_test(test_derived_dataset_ex_constructors_name_the_bad_value),
        cmocka_unit_test(test_checkpoint_load_ex_names_the_file_and_the_reason),
        cmocka_unit_test(test_create_options_follow_the_struct_size_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
