/* test_save.c - model files on disk: what a save leaves behind (permission bits, symbolic links,
   long names, temporary files after crashes, the directory sync) and what loading a path checks
   before it reads a file's body (regular files only, the header against the length). */
#define _XOPEN_SOURCE 700 /* mkdtemp, mkfifo, symlink, fork, kill, usleep-free nanosleep */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fanoise.h"
#include "options.h"
#include "testutil.h"

/* Kills of a saving child in the crash test (the audit used 100). */
#define KILL_ROUNDS 100

typedef struct tmpdir {
    char path[64];
} tmpdir;

static void make_dir(tmpdir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/fan_save_XXXXXX");
    assert_non_null(mkdtemp(d->path));
}

/* Removes the directory and everything directly in it. */
static void remove_dir(const tmpdir *d)
{
    DIR *dir = opendir(d->path);
    assert_non_null(dir);
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", d->path, e->d_name);
        if (unlink(p) != 0) assert_int_equal(rmdir(p), 0);
    }
    closedir(dir);
    assert_int_equal(rmdir(d->path), 0);
}

/* Number of directory entries other than "." and "..". */
static size_t count_entries(const char *path)
{
    DIR *dir = opendir(path);
    assert_non_null(dir);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dir);
    return n;
}

static fan_net *small_net(uint64_t seed)
{
    const size_t sizes[] = {5, 4, 3};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    TU_OK(fan_net_init(net, seed, seed + 1));
    return net;
}

/* 1 if the two nets serialise to the same bytes. */
static int nets_equal(const fan_net *x, const fan_net *y)
{
    size_t la = 0, lb = 0;
    TU_OK(fan_net_save_mem(x, NULL, 0, &la));
    TU_OK(fan_net_save_mem(y, NULL, 0, &lb));
    unsigned char *a = malloc(la), *b = malloc(lb);
    assert_non_null(a);
    assert_non_null(b);
    TU_OK(fan_net_save_mem(x, a, la, &la));
    TU_OK(fan_net_save_mem(y, b, lb, &lb));
    const int same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    return same;
}

/* 1 if path loads as a net serialising to the same bytes as expect. */
static int loads_as(const char *path, const fan_net *expect)
{
    fan_net *back = NULL;
    if (fan_net_load(&back, path, NULL) != FAN_OK) return 0;
    const int same = nets_equal(back, expect);
    fan_net_free(back);
    return same;
}

/* 1 if path loads as one of a and b: one load, so that a file replaced between two loads is not
   taken for a broken one. */
static int loads_as_either(const char *path, const fan_net *a, const fan_net *b)
{
    fan_net *back = NULL;
    if (fan_net_load(&back, path, NULL) != FAN_OK) return 0;
    const int same = nets_equal(back, a) || nets_equal(back, b);
    fan_net_free(back);
    return same;
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (unsigned)st.st_mode & 07777u;
}

/* ---- permission bits ------------------------------------------------------------------------ */

static void test_save_keeps_the_permission_bits_of_an_existing_file(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char path[128];
    snprintf(path, sizeof path, "%s/model.fan", d.path);
    fan_net *a = small_net(1), *b = small_net(2);
    const unsigned modes[] = {0644, 0600, 0640, 0444};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        TU_OK_NET(a, fan_net_save(a, path));
        assert_int_equal(chmod(path, modes[i]), 0);
        TU_OK_NET(b, fan_net_save(b, path));
        assert_int_equal(mode_of(path), modes[i]);
        assert_true(loads_as(path, b));
    }
    fan_net_free(a);
    fan_net_free(b);
    remove_dir(&d);
}

static void test_a_new_file_gets_0666_minus_the_umask(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    fan_net *a = small_net(1);
    const mode_t masks[] = {022, 077, 002};
    const mode_t keep = umask(022);
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/new%zu.fan", d.path, i);
        umask(masks[i]);
        TU_OK_NET(a, fan_net_save(a, path));
        assert_int_equal(mode_of(path), 0666u & ~(unsigned)masks[i]);
    }
    umask(keep);
    fan_net_free(a);
    remove_dir(&d);
}

/* ---- symbolic links ------------------------------------------------------------------------- */

static void test_save_through_a_symbolic_link_replaces_its_target_and_keeps_the_link(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char sub[128], target[160], link1[128], link2[128];
    snprintf(sub, sizeof sub, "%s/models", d.path);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(target, sizeof target, "%s/real.fan", sub);
    snprintf(link1, sizeof link1, "%s/current.fan", d.path);
    snprintf(link2, sizeof link2, "%s/alias.fan", d.path);
    /* current.fan -> models/real.fan (relative to the link's directory); alias -> current. */
    assert_int_equal(symlink("models/real.fan", link1), 0);
    assert_int_equal(symlink(link1, link2), 0);
    fan_net *a = small_net(1), *b = small_net(2);

    /* A dangling link: the save creates the file it points to. */
    TU_OK_NET(a, fan_net_save(a, link2));
    assert_true(loads_as(target, a));
    assert_int_equal(chmod(target, 0640), 0);
    TU_OK_NET(b, fan_net_save(b, link2));
    struct stat st;
    assert_int_equal(lstat(link1, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(lstat(link2, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_true(loads_as(target, b));
    assert_true(loads_as(link2, b));
    assert_int_equal(mode_of(target), 0640);
    /* Nothing but the two links and the directory at the top, the model alone below. */
    assert_int_equal(count_entries(d.path), 3);
    assert_int_equal(count_entries(sub), 1);
    assert_int_equal(unlink(target), 0);
    assert_int_equal(rmdir(sub), 0);

    /* A loop of links fails with an I/O error instead of spinning. */
    char loop[128];
    snprintf(loop, sizeof loop, "%s/loop.fan", d.path);
    assert_int_equal(symlink("loop.fan", loop), 0);
    assert_int_equal(fan_net_save(a, loop), FAN_E_IO);
    assert_true(strstr(fan_net_errmsg(a), "symbolic links") != NULL);
    fan_net_free(a);
    fan_net_free(b);
    remove_dir(&d);
}

/* ---- names ---------------------------------------------------------------------------------- */

static void test_names_of_245_to_255_bytes_save_and_load(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    fan_net *a = small_net(3);
    for (size_t len = 245; len <= 255; len++) {
        char path[400];
        int n = snprintf(path, sizeof path, "%s/", d.path);
        memset(path + n, 'm', len);
        path[(size_t)n + len] = '\0';
        TU_OK_NET(a, fan_net_save(a, path));
        assert_true(loads_as(path, a));
        TU_OK_NET(a, fan_net_save(a, path)); /* over an existing file too */
        assert_int_equal(count_entries(d.path), 1);
        assert_int_equal(unlink(path), 0);
    }
    fan_net_free(a);
    remove_dir(&d);
}

/* ---- what a save refuses -------------------------------------------------------------------- */

static void test_save_refuses_nets_with_nonfinite_parameters_and_writes_nothing(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char path[128];
    snprintf(path, sizeof path, "%s/model.fan", d.path);
    fan_net *good = small_net(4), *bad = small_net(5);
    TU_OK_NET(good, fan_net_save(good, path));
    /* No public call leaves non-finite parameters in a net (that is what the check guards);
       the test writes one directly, as a bug elsewhere could. */
    const float poison[] = {NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < 3; i++) {
        fan__net_weights_mut(bad, 1)[2] = poison[i];
        assert_int_equal(fan_net_save(bad, path), FAN_E_NONFINITE);
        assert_true(strstr(fan_net_errmsg(bad), "would not load") != NULL);
        assert_true(loads_as(path, good));
        assert_int_equal(count_entries(d.path), 1);
        size_t need = 0, written = 0;
        TU_OK(fan_net_save_mem(bad, NULL, 0, &need));
        unsigned char *buf = calloc(need, 1), *zero = calloc(need, 1);
        assert_int_equal(fan_net_save_mem(bad, buf, need, &written), FAN_E_NONFINITE);
        assert_memory_equal(buf, zero, need);
        free(buf);
        free(zero);
    }
    fan__net_weights_mut(bad, 1)[2] = 0.5f;
    fan__net_feedback_mut(bad, 0)[0] = NAN;
    assert_int_equal(fan_net_save(bad, path), FAN_E_NONFINITE);
    fan__net_feedback_mut(bad, 0)[0] = 0.5f;
    fan__net_bias_mut(bad, 0)[1] = INFINITY;
    assert_int_equal(fan_net_save(bad, path), FAN_E_NONFINITE);
    fan__net_bias_mut(bad, 0)[1] = 0.0f;
    TU_OK_NET(bad, fan_net_save(bad, path));
    assert_true(loads_as(path, bad));
    fan_net_free(good);
    fan_net_free(bad);
    remove_dir(&d);
}

static void test_save_refuses_to_replace_a_directory_or_a_fifo(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char sub[128], fifo[128];
    snprintf(sub, sizeof sub, "%s/dir.fan", d.path);
    snprintf(fifo, sizeof fifo, "%s/pipe.fan", d.path);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    fan_net *a = small_net(6);
    assert_int_equal(fan_net_save(a, sub), FAN_E_IO);
    assert_true(strstr(fan_net_errmsg(a), "directory") != NULL);
    assert_int_equal(fan_net_save(a, fifo), FAN_E_IO);
    assert_true(strstr(fan_net_errmsg(a), "not a regular file") != NULL);
    struct stat st;
    assert_int_equal(lstat(fifo, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    assert_int_equal(count_entries(d.path), 2);
    fan_net_free(a);
    remove_dir(&d);
}

/* ---- crashes and temporary files ------------------------------------------------------------ */

/* A fault hook that kills its own process just before the rename: a saver dying at the worst
   moment, with the complete temporary file written and synced. */
static int die_before_rename(void *ud, fan__fileop op, const char *path)
{
    (void)ud;
    (void)path;
    if (op == FAN__FOP_RENAME) raise(SIGKILL);
    return 0;
}

/* Runs fan__net_save_io(net, path, io) in a child process; returns its wait status. */
static int save_in_child(const fan_net *net, const char *path, const fan__fileio *io)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(fan__net_save_io(net, path, io) == FAN_OK ? 0 : 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

static void test_the_temporary_file_of_a_killed_save_is_removed_by_the_next_save(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char path[128];
    snprintf(path, sizeof path, "%s/model.fan", d.path);
    fan_net *a = small_net(7), *b = small_net(8);
    TU_OK_NET(a, fan_net_save(a, path));
    assert_int_equal(chmod(path, 0604), 0);
    const fan__fileio killer = {die_before_rename, NULL};
    for (int round = 0; round < 3; round++) {
        const int status = save_in_child(b, path, &killer);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* The old model is intact; one orphan, however many kills. */
        assert_true(loads_as(path, a));
        assert_int_equal(count_entries(d.path), 2);
    }
    TU_OK_NET(b, fan_net_save(b, path));
    assert_int_equal(count_entries(d.path), 1);
    assert_true(loads_as(path, b));
    assert_int_equal(mode_of(path), 0604);
    fan_net_free(a);
    fan_net_free(b);
    remove_dir(&d);
}

/* Deterministic pseudo-random delays for the kill test (xorshift64). */
static uint64_t next_delay(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void test_kill_during_saves_keeps_a_loadable_model_and_at_most_one_temporary(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char path[128];
    snprintf(path, sizeof path, "%s/model.fan", d.path);
    /* About 1 MB per file, so that a kill often lands inside a save. */
    const size_t sizes[] = {784, 160, 10};
    fan_net *a = NULL, *b = NULL;
    TU_OK(fan_net_create(&a, sizes, 3, NULL));
    TU_OK(fan_net_create(&b, sizes, 3, NULL));
    TU_OK(fan_net_init(b, 5, 6));
    TU_OK_NET(a, fan_net_save(a, path));
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t max_entries = 0;
    for (int round = 0; round < KILL_ROUNDS; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            for (unsigned i = 0;; i++)
                if (fan_net_save(i % 2 ? a : b, path) != FAN_OK) _exit(1);
        }
        /* 0 to 20 ms: from before the first save's temporary file exists to several saves in. */
        struct timespec ts = {0, (long)(next_delay(&x) % 20000000u)};
        nanosleep(&ts, NULL);
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* it never failed on its own */
        assert_true(loads_as_either(path, a, b));
        const size_t n = count_entries(d.path);
        max_entries = n > max_entries ? n : max_entries;
        assert_true(n <= 2);
    }
    print_message("kill test: %d kills, at most %zu entries in the directory\n", KILL_ROUNDS,
                  max_entries);
    TU_OK_NET(a, fan_net_save(a, path));
    assert_int_equal(count_entries(d.path), 1);
    fan_net_free(a);
    fan_net_free(b);
    remove_dir(&d);
}

/* Two threads of one process saving different nets to one target, many times over: each save
   waits for the other's lock, so every intermediate state is a complete model. */
typedef struct saver {
    const fan_net *net;
    const char *path;
    int rounds, failures;
} saver;

static void *save_loop(void *arg)
{
    saver *sv = arg;
    for (int i = 0; i < sv->rounds; i++) sv->failures += fan_net_save(sv->net, sv->path) != FAN_OK;
    return NULL;
}

static void test_threads_saving_one_target_take_turns(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char path[128];
    snprintf(path, sizeof path, "%s/model.fan", d.path);
    fan_net *a = small_net(11), *b = small_net(12);
    TU_OK_NET(a, fan_net_save(a, path));
    saver sa = {a, path, 30, 0}, sb = {b, path, 30, 0};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, save_loop, &sa), 0);
    assert_int_equal(pthread_create(&tb, NULL, save_loop, &sb), 0);
    for (int i = 0; i < 30; i++) {
        assert_true(loads_as_either(path, a, b));
        assert_true(count_entries(d.path) <= 2);
    }
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    assert_int_equal(sa.failures + sb.failures, 0);
    assert_int_equal(count_entries(d.path), 1);
    fan_net_free(a);
    fan_net_free(b);
    remove_dir(&d);
}

/* ---- the directory sync --------------------------------------------------------------------- */

typedef struct op_log {
    fan__fileop ops[64];
    char paths[64][160];
    size_t n;
} op_log;

static int record_op(void *ud, fan__fileop op, const char *path)
{
    op_log *log = ud;
    if (log->n < 64) {
        log->ops[log->n] = op;
        snprintf(log->paths[log->n], sizeof log->paths[0], "%s", path);
        log->n++;
    }
    return 0;
}

static void test_the_directory_is_synced_after_the_rename(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char path[128];
    snprintf(path, sizeof path, "%s/model.fan", d.path);
    fan_net *a = small_net(9);
    op_log log;
    memset(&log, 0, sizeof log);
    const fan__fileio io = {record_op, &log};
    TU_OK_NET(a, fan__net_save_io(a, path, &io));
    size_t rename_at = log.n, file_sync_at = log.n, dir_sync_at = log.n;
    for (size_t i = 0; i < log.n; i++) {
        if (log.ops[i] == FAN__FOP_RENAME) rename_at = i;
        if (log.ops[i] == FAN__FOP_FSYNC && strcmp(log.paths[i], d.path) == 0) dir_sync_at = i;
        if (log.ops[i] == FAN__FOP_FSYNC && strstr(log.paths[i], ".fantmp") != NULL)
            file_sync_at = i;
    }
    assert_true(file_sync_at < rename_at);
    assert_true(rename_at < log.n && dir_sync_at < log.n && rename_at < dir_sync_at);
    assert_string_equal(log.paths[rename_at], path);
    assert_true(loads_as(path, a));
    fan_net_free(a);
    remove_dir(&d);
}

/* ---- loading a path ------------------------------------------------------------------------- */

/* An allocator that records the largest request. */
typedef struct biggest {
    size_t largest, live;
} biggest;

static void *big_alloc(void *ud, size_t n)
{
    biggest *b = ud;
    if (n > b->largest) b->largest = n;
    void *p = malloc(n);
    if (p) b->live++;
    return p;
}

static void big_free(void *ud, void *p)
{
    ((biggest *)ud)->live--;
    free(p);
}

static void on_alarm(int sig)
{
    (void)sig;
    /* Reached only if a load blocks (a FIFO opened without O_NONBLOCK waits for a writer). */
    _exit(3);
}

static void test_loading_a_directory_or_fifo_fails_with_io_and_a_message(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char fifo[128], msg[256];
    snprintf(fifo, sizeof fifo, "%s/pipe.fan", d.path);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    biggest b = {0, 0};
    const fan_allocator al = {big_alloc, big_free, &b};
    fan_create_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.alloc = &al;
    o.errmsg = msg;
    o.errmsg_cap = sizeof msg;
    fan_net *net = NULL;
    assert_int_equal(fan_net_load_ex(&net, d.path, &o), FAN_E_IO);
    assert_null(net);
    assert_true(strstr(msg, "a directory") != NULL);
    signal(SIGALRM, on_alarm);
    alarm(10);
    assert_int_equal(fan_net_load_ex(&net, fifo, &o), FAN_E_IO);
    alarm(0);
    assert_true(strstr(msg, "not a regular file") != NULL);
    assert_int_equal(fan_net_load(&net, d.path, &al), FAN_E_IO);
    assert_int_equal(b.largest, 0);
    assert_int_equal(b.live, 0);
    remove_dir(&d);
}

static void test_a_long_file_with_a_valid_header_fails_before_its_body_is_allocated(void **state)
{
    (void)state;
    tmpdir d;
    make_dir(&d);
    char path[128], msg[256];
    snprintf(path, sizeof path, "%s/model.fan", d.path);
    fan_net *a = small_net(10);
    TU_OK_NET(a, fan_net_save(a, path));
    size_t real = 0;
    TU_OK(fan_net_save_mem(a, NULL, 0, &real));
    /* 1 GiB, sparse: the header still describes a file of `real` bytes. */
    assert_int_equal(truncate(path, (off_t)1 << 30), 0);
    biggest b = {0, 0};
    const fan_allocator al = {big_alloc, big_free, &b};
    fan_create_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.alloc = &al;
    o.errmsg = msg;
    o.errmsg_cap = sizeof msg;
    fan_net *net = NULL;
    assert_int_equal(fan_net_load_ex(&net, path, &o), FAN_E_FORMAT);
    assert_true(strstr(msg, "header describes") != NULL);
    assert_int_equal(fan_net_load(&net, path, &al), FAN_E_FORMAT);
    assert_int_equal(b.largest, 0);
    /* One byte short of the header's length: the same. */
    assert_int_equal(truncate(path, (off_t)real - 1), 0);
    assert_int_equal(fan_net_load_ex(&net, path, &o), FAN_E_FORMAT);
    assert_int_equal(b.largest, 0);
    assert_int_equal(b.live, 0);
    /* The real length loads; a budget below it refuses before allocating anything. */
    TU_OK_NET(a, fan_net_save(a, path));
    o.max_load_bytes = real - 1;
    assert_int_equal(fan_net_load_ex(&net, path, &o), FAN_E_LIMIT);
    assert_true(strstr(msg, "max_load_bytes") != NULL);
    assert_int_equal(b.largest, 0);
    o.max_load_bytes = real;
    TU_OK(fan_net_load_ex(&net, path, &o));
    assert_string_equal(msg, "");
    fan_net_free(net);
    assert_int_equal(b.live, 0);
    fan_net_free(a);
    remove_dir(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_save_keeps_the_permission_bits_of_an_existing_file),
        cmocka_unit_test(test_a_new_file_gets_0666_minus_the_umask),
        cmocka_unit_test(test_save_through_a_symbolic_link_replaces_its_target_and_keeps_the_link),
        cmocka_unit_test(test_names_of_245_to_255_bytes_save_and_load),
        cmocka_unit_test(test_save_refuses_nets_with_nonfinite_parameters_and_writes_nothing),
        cmocka_unit_test(test_save_refuses_to_replace_a_directory_or_a_fifo),
        cmocka_unit_test(test_the_temporary_file_of_a_killed_save_is_removed_by_the_next_save),
        cmocka_unit_test(test_kill_during_saves_keeps_a_loadable_model_and_at_most_one_temporary),
        cmocka_unit_test(test_threads_saving_one_target_take_turns),
        cmocka_unit_test(test_the_directory_is_synced_after_the_rename),
        cmocka_unit_test(test_loading_a_directory_or_fifo_fails_with_io_and_a_message),
        cmocka_unit_test(test_a_long_file_with_a_valid_header_fails_before_its_body_is_allocated),
    };
    return cmocka_run_group_tests_name("save", tests, NULL, NULL);
}
