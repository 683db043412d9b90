/* test_io.c - model files: exact round trips, every kind of corruption rejected with its status,
   and saves that never destroy the previous file. */
#define _XOPEN_SOURCE 700 /* mkdtemp, setrlimit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fanoise.h"
#include "testutil.h"

static fan_net *sample_net(void)
{
    const size_t sizes[] = {6, 5, 4, 3};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 4, NULL));
    TU_OK(fan_net_set_rule(net, FAN_RULE_BP));
    TU_OK(fan_net_set_loss(net, FAN_LOSS_MSE));
    TU_OK(fan_net_set_activation(net, 1, FAN_ACT_TANH));
    TU_OK(fan_net_set(net, FAN_NET_LEAKY_SLOPE, 0.2));
    TU_OK(fan_net_set_initializer(net, FAN_MATRIX_FEEDBACK, FAN_INIT_XAVIER_UNIFORM));
    TU_OK(fan_net_init(net, 77, 88));
    float b[5] = {0.5f, -1, 2, 0, 3};
    TU_OK(fan_net_set_weights(net, 0, NULL, 0, b, 5));
    return net;
}

static unsigned char *to_mem(const fan_net *net, size_t *len)
{
    TU_OK(fan_net_save_mem(net, NULL, 0, len));
    unsigned char *buf = malloc(*len);
    size_t written = 0;
    TU_OK(fan_net_save_mem(net, buf, *len, &written));
    assert_int_equal(written, *len);
    return buf;
}

static void assert_same_net(const fan_net *a, const fan_net *b)
{
    size_t la, lb;
    unsigned char *ba = to_mem(a, &la), *bb = to_mem(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
    assert_int_equal(fan_net_rule(b), FAN_RULE_BP);
    assert_int_equal(fan_net_loss(b), FAN_LOSS_MSE);
    assert_int_equal(fan_net_activation(b, 1), FAN_ACT_TANH);
    uint64_t ws, fs;
    TU_OK(fan_net_seeds(b, &ws, &fs));
    assert_int_equal(ws, 77);
    assert_int_equal(fs, 88);
}

/* Rewrites the trailing CRC so that a deliberate header edit reaches the later checks. */
static void fix_crc(unsigned char *buf, size_t len)
{
    uint32_t c = (uint32_t)crc32(crc32(0L, Z_NULL, 0), buf, (uInt)(len - 4));
    for (int i = 0; i < 4; i++) buf[len - 4 + (size_t)i] = (unsigned char)(c >> (8 * i));
}

static void test_memory_round_trip_is_exact(void **state)
{
    (void)state;
    fan_net *net = sample_net(), *back = NULL;
    size_t len;
    unsigned char *buf = to_mem(net, &len);
    /* 56 header + 8 * 4 sizes + 4 * 3 activations + floats + CRC */
    /* Version 2: header, widths, activations, feedback rows, rule-state length, W b B, CRC. */
    assert_int_equal(len, 56 + 32 + 12 + 24 + 8 + 4 * (2 * (30 + 20 + 12) + 5 + 4 + 3) + 4);
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    TU_OK(fan_net_load_mem(&back, buf, len, &al));
    assert_same_net(net, back);
    double slope;
    TU_OK(fan_net_get(back, FAN_NET_LEAKY_SLOPE, &slope));
    TU_CLOSE(slope, 0.2, 1e-6, 0);
    fan_net_free(back);
    assert_int_equal(c.live_blocks, 0);
    size_t w;
    assert_int_equal(fan_net_save_mem(net, buf, len - 1, &w), FAN_E_SHAPE);
    assert_int_equal(w, len);
    free(buf);
    fan_net_free(net);
}

static void test_file_round_trip_is_exact(void **state)
{
    (void)state;
    char dir[] = "/tmp/fan_io_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.fan", dir);
    fan_net *net = sample_net(), *back = NULL;
    TU_OK(fan_net_save(net, path));
    TU_OK(fan_net_load(&back, path, NULL));
    assert_same_net(net, back);
    fan_net_free(back);
    fan_net_free(net);
    unlink(path);
    rmdir(dir);
}

static void test_truncation_at_every_offset_is_a_format_error(void **state)
{
    (void)state;
    fan_net *net = sample_net(), *back = NULL;
    size_t len;
    unsigned char *buf = to_mem(net, &len);
    for (size_t cut = 0; cut < len; cut++) {
        fan_status st = fan_net_load_mem(&back, buf, cut, NULL);
        assert_int_equal(st, FAN_E_FORMAT);
        assert_null(back);
    }
    free(buf);
    fan_net_free(net);
}

static void test_every_flipped_byte_is_detected(void **state)
{
    (void)state;
    fan_net *net = sample_net(), *back = NULL;
    size_t len;
    unsigned char *buf = to_mem(net, &len);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x5a;
        fan_status st = fan_net_load_mem(&back, buf, len, NULL);
        assert_int_not_equal(st, FAN_OK);
        assert_null(back);
        buf[i] ^= 0x5a;
    }
    TU_OK(fan_net_load_mem(&back, buf, len, NULL));
    fan_net_free(back);
    free(buf);
    fan_net_free(net);
}

static void test_header_problems_get_specific_statuses(void **state)
{
    (void)state;
    fan_net *net = sample_net(), *back = NULL;
    size_t len;
    unsigned char *buf = to_mem(net, &len), *copy = malloc(len);
    char msg[256];

    memcpy(copy, buf, len);
    copy[0] = 'X';
    assert_int_equal(fan_net_load_v2(&back, NULL, copy, len, NULL, msg, sizeof msg), FAN_E_FORMAT);
    assert_true(strstr(msg, "magic") != NULL);

    memcpy(copy, buf, len);
    copy[8] = 3;
    assert_int_equal(fan_net_load_mem(&back, copy, len, NULL), FAN_E_VERSION);
    copy[8] = 0;
    assert_int_equal(fan_net_load_mem(&back, copy, len, NULL), FAN_E_VERSION);

    memcpy(copy, buf, len);
    copy[len - 10] ^= 1; /* a weight bit */
    assert_int_equal(fan_net_load_v2(&back, NULL, copy, len, NULL, msg, sizeof msg),
                     FAN_E_CHECKSUM);
    assert_true(strstr(msg, "CRC") != NULL);

    /* A width whose product overflows size_t must not be trusted or allocated. */
    memcpy(copy, buf, len);
    for (int i = 0; i < 8; i++) copy[56 + i] = 0xff;
    fix_crc(copy, len);
    assert_int_equal(fan_net_load_mem(&back, copy, len, NULL), FAN_E_LIMIT);

    /* A plausible width that does not match the data length. */
    memcpy(copy, buf, len);
    copy[56] = 200;
    fix_crc(copy, len);
    assert_int_equal(fan_net_load_v2(&back, NULL, copy, len, NULL, msg, sizeof msg), FAN_E_FORMAT);
    assert_true(strstr(msg, "describes") != NULL);

    memcpy(copy, buf, len);
    copy[16] = 0; /* zero layers */
    fix_crc(copy, len);
    assert_int_equal(fan_net_load_mem(&back, copy, len, NULL), FAN_E_FORMAT);

    memcpy(copy, buf, len);
    copy[20] = 9; /* unknown rule, CRC consistent */
    fix_crc(copy, len);
    assert_int_equal(fan_net_load_mem(&back, copy, len, NULL), FAN_E_FORMAT);

    /* A NaN weight under a correct CRC: refused like fan_net_set_weights refuses it. */
    memcpy(copy, buf, len);
    const size_t first_weight = 56 + 32 + 12 + 24 + 8;
    copy[first_weight + 2] = 0xc0;
    copy[first_weight + 3] = 0x7f;
    fix_crc(copy, len);
    assert_int_equal(fan_net_load_v2(&back, NULL, copy, len, NULL, msg, sizeof msg), FAN_E_FORMAT);
    assert_true(strstr(msg, "non-finite") != NULL);
    assert_null(back);

    assert_int_equal(fan_net_load_mem(&back, NULL, len, NULL), FAN_E_NULL);
    assert_int_equal(fan_net_load_mem(NULL, buf, len, NULL), FAN_E_NULL);
    assert_int_equal(fan_net_load(&back, "/nonexistent/dir/model.fan", NULL), FAN_E_IO);
    assert_null(back);
    free(copy);
    free(buf);
    fan_net_free(net);
}

static void test_load_survives_every_allocation_failure(void **state)
{
    (void)state;
    fan_net *net = sample_net();
    size_t len;
    unsigned char *buf = to_mem(net, &len);
    for (size_t n = 1;; n++) {
        tu_counter c = {0};
        c.fail_at = n;
        fan_allocator al = tu_allocator(&c);
        fan_net *back = NULL;
        fan_status st = fan_net_load_mem(&back, buf, len, &al);
        fan_net_free(back);
        assert_int_equal(c.live_blocks, 0);
        if (st == FAN_OK) break;
        assert_int_equal(st, FAN_E_NOMEM);
    }
    free(buf);
    fan_net_free(net);
}

static int file_loads_as(const char *path, const fan_net *expect)
{
    fan_net *back = NULL;
    if (fan_net_load(&back, path, NULL) != FAN_OK) return 0;
    size_t la, lb;
    unsigned char *a = to_mem(expect, &la), *b = to_mem(back, &lb);
    int same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    fan_net_free(back);
    return same;
}

static void test_failed_save_into_unwritable_directory_keeps_old_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/fan_io_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.fan", dir);
    fan_net *old = sample_net(), *newer = sample_net();
    TU_OK(fan_net_init(newer, 1, 2));
    TU_OK(fan_net_save(old, path));
    /* Root ignores permission bits, so make the directory unwritable for everyone by
       replacing the target's directory entry with one we cannot create files next to: a path
       whose parent is a regular file. */
    char bad[96];
    snprintf(bad, sizeof bad, "%s/model.fan/inner.fan", dir);
    assert_int_equal(fan_net_save(newer, bad), FAN_E_IO);
    assert_true(strstr(fan_net_errmsg(newer), "inner.fan") != NULL);
    chmod(dir, 0500);
    fan_status st = fan_net_save(newer, path);
    if (geteuid() != 0) assert_int_equal(st, FAN_E_IO);
    chmod(dir, 0700);
    if (geteuid() != 0) assert_true(file_loads_as(path, old));
    fan_net_free(old);
    fan_net_free(newer);
    unlink(path);
    rmdir(dir);
}

static void test_write_failing_half_way_keeps_old_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/fan_io_XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.fan", dir);
    const size_t big[] = {300, 200, 10};
    fan_net *old = sample_net(), *newer = NULL;
    TU_OK(fan_net_create(&newer, big, 3, NULL));
    TU_OK(fan_net_save(old, path));
    size_t need;
    TU_OK(fan_net_save_mem(newer, NULL, 0, &need));
    /* The kernel refuses writes past RLIMIT_FSIZE: an injected disk-full half way through. */
    struct rlimit keep, lim;
    getrlimit(RLIMIT_FSIZE, &keep);
    signal(SIGXFSZ, SIG_IGN);
    lim.rlim_cur = need / 2;
    lim.rlim_max = keep.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    fan_status st = fan_net_save(newer, path);
    setrlimit(RLIMIT_FSIZE, &keep);
    assert_int_equal(st, FAN_E_IO);
    assert_true(strstr(fan_net_errmsg(newer), "cannot write") != NULL);
    assert_true(file_loads_as(path, old));
    /* No temporary file is left behind. */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "test $(ls %s | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);
    TU_OK(fan_net_save(newer, path));
    assert_true(file_loads_as(path, newer));
    fan_net_free(old);
    fan_net_free(newer);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_round_trip_is_exact),
        cmocka_unit_test(test_file_round_trip_is_exact),
        cmocka_unit_test(test_truncation_at_every_offset_is_a_format_error),
        cmocka_unit_test(test_every_flipped_byte_is_detected),
        cmocka_unit_test(test_header_problems_get_specific_statuses),
        cmocka_unit_test(test_load_survives_every_allocation_failure),
        cmocka_unit_test(test_failed_save_into_unwritable_directory_keeps_old_file),
        cmocka_unit_test(test_write_failing_half_way_keeps_old_file),
    };
    return cmocka_run_group_tests_name("io", tests, NULL, NULL);
}
