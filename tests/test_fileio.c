/* test_fileio.c - I/O fault injection in the manner of SQLite's test VFS: every file operation
   of the library goes through fileio.c, whose per-call hook here fails the Nth operation (open,
   read, write, fsync, rename, close, stat, unlink, lock, readlink, chmod, seek). For every entry
   point that touches files, N sweeps from 1 until the call succeeds untouched, and each failure
   must return an error with a message, leak no memory and no descriptor, and leave the files as
   they were (a save: the previous model intact and loadable, or the new one if the failure came
   after the rename; any temporary file removed by the next save). Checkpoints, written and read
   through the same layer, are swept the same way. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, open, symlink */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fanoise.h"
#include "options.h"
#include "testutil.h"

/* The hook: counts operations and fails number fail_at (1-based; 0 never). */
typedef struct faults {
    size_t count, fail_at;
    fan__fileop failed_op;
    size_t rename_at; /* operation number of the rename, 0 if none happened */
    size_t by_op[FAN__FOP_SEEK + 1];
} faults;

static int fault_hook(void *ud, fan__fileop op, const char *path)
{
    (void)path;
    faults *f = ud;
    f->count++;
    f->by_op[op]++;
    if (f->count == f->fail_at) {
        f->failed_op = op;
        /* What a full disk or a failing device would say. */
        return op == FAN__FOP_WRITE ? ENOSPC : EIO;
    }
    if (op == FAN__FOP_RENAME) f->rename_at = f->count;
    return 0;
}

/* Totals over the whole test binary, printed at the end for docs/robustness.md. */
static size_t total_faults, total_by_op[FAN__FOP_SEEK + 1];

static void note_fault(const faults *f)
{
    total_faults++;
    total_by_op[f->failed_op]++;
}

/* The lowest free descriptor: unchanged across a call that leaks none. */
static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    close(fd);
    return fd;
}

static char dir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/fan_fileio_XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    DIR *d = opendir(dir);
    if (d == NULL) return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0))
            continue;
        char p[sizeof dir + 256 + 1];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        (void)unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

static const char *path_of(const char *name)
{
    static char p[8][128];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(p[slot], sizeof p[slot], "%s/%s", dir, name);
    return p[slot];
}

static size_t count_entries(void)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- saving --------------------------------------------------------------------------------- */

static unsigned char *bytes_of(const fan_net *net, size_t *len)
{
    TU_OK(fan_net_save_mem(net, NULL, 0, len));
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    TU_OK(fan_net_save_mem(net, b, *len, len));
    return b;
}

static int loads_as(const char *path, const fan_net *expect)
{
    fan_net *back = NULL;
    if (fan_net_load(&back, path, NULL) != FAN_OK) return 0;
    size_t la, lb;
    unsigned char *a = bytes_of(expect, &la), *b = bytes_of(back, &lb);
    const int same = la == lb && memcmp(a, b, la) == 0;
    free(a);
    free(b);
    fan_net_free(back);
    return same;
}

static int mode_of_target_is(const char *path, unsigned mode)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return ((unsigned)st.st_mode & 07777u) == mode;
}

/* Leaves an orphaned temporary file next to target: a save whose rename and cleanup fail. */
static int fail_rename_and_cleanup(void *ud, fan__fileop op, const char *path)
{
    (void)ud;
    (void)path;
    return op == FAN__FOP_RENAME || op == FAN__FOP_UNLINK ? EIO : 0;
}

typedef enum save_setup { PLAIN = 0, THROUGH_LINK = 1, WITH_ORPHAN = 2 } save_setup;

/* Sweeps N over one save of `newer` over a file holding `old`. Returns the number of faults. */
static size_t sweep_save(save_setup setup)
{
    tu_counter mem = {0};
    const fan_allocator al = tu_allocator(&mem);
    const size_t sizes[] = {200, 100, 3}; /* 160 KB: three writes of the 64 KiB buffer */
    fan_net *old = NULL, *newer = NULL;
    TU_OK(fan_net_create(&old, sizes, 3, &al));
    TU_OK(fan_net_create(&newer, sizes, 3, &al));
    TU_OK(fan_net_init(newer, 11, 12));
    char target[128], link[128]; /* path_of's buffers are reused after a few calls */
    snprintf(target, sizeof target, "%s", path_of("model.fan"));
    snprintf(link, sizeof link, "%s", path_of("link.fan"));
    const char *path = setup == THROUGH_LINK ? link : target;
    if (setup == THROUGH_LINK) assert_int_equal(symlink("model.fan", link), 0);
    size_t n_faults = 0;
    for (size_t n = 1;; n++) {
        TU_OK_NET(old, fan_net_save(old, target));
        assert_int_equal(chmod(target, 0640), 0);
        if (setup == WITH_ORPHAN) {
            const fan__fileio leave = {fail_rename_and_cleanup, NULL};
            assert_int_equal(fan__net_save_io(newer, path, &leave), FAN_E_IO);
            assert_int_equal(count_entries(), 2);
        }
        faults f;
        memset(&f, 0, sizeof f);
        f.fail_at = n;
        const fan__fileio io = {fault_hook, &f};
        const size_t blocks = mem.live_blocks;
        const int fd = lowest_free_fd();
        const fan_status st = fan__net_save_io(newer, path, &io);
        assert_int_equal(lowest_free_fd(), fd);
        assert_int_equal(mem.live_blocks, blocks);
        if (f.count < n) { /* nothing failed: the sweep is complete */
            TU_OK_NET(newer, st);
            assert_true(loads_as(target, newer));
            break;
        }
        note_fault(&f);
        n_faults++;
        assert_int_equal(st, FAN_E_IO);
        assert_true(fan_net_errmsg(newer)[0] != '\0');
        /* Before the rename the old model is intact; after it (directory sync, closes) the new
           one is in place. Either way a complete model. */
        if (f.rename_at != 0)
            assert_true(loads_as(target, newer));
        else
            assert_true(loads_as(target, old));
        assert_int_equal(mode_of_target_is(target, 0640), 1);
        /* At most the temporary file is left, and the next save removes it. */
        assert_true(count_entries() <= (setup == THROUGH_LINK ? 3u : 2u));
        TU_OK_NET(old, fan_net_save(old, path));
        assert_int_equal(count_entries(), setup == THROUGH_LINK ? 2 : 1);
    }
    if (setup == THROUGH_LINK) assert_int_equal(unlink(link), 0);
    assert_int_equal(unlink(target), 0);
    fan_net_free(old);
    fan_net_free(newer);
    assert_int_equal(mem.live_blocks, 0);
    return n_faults;
}

static void test_every_failing_file_operation_of_a_save_keeps_a_loadable_model(void **state)
{
    (void)state;
    const size_t plain = sweep_save(PLAIN), link = sweep_save(THROUGH_LINK),
                 orphan = sweep_save(WITH_ORPHAN);
    print_message("save: %zu, through a link: %zu, over an orphan: %zu faults injected\n", plain,
                  link, orphan);
    /* The sweeps reached the operations they exist for. */
    assert_true(plain >= 10 && link > plain && orphan > plain);
}

/* ---- checkpoints --------------------------------------------------------------------------- */

/* The bytes fan_checkpoint_save writes for (net, opt, it), malloc'd. */
static unsigned char *checkpoint_bytes(const fan_net *net, const fan_optimizer *opt,
                                       const fan_iter *it, size_t *len)
{
    TU_OK(fan_checkpoint_save_mem(NULL, 0, len, net, opt, it));
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    TU_OK(fan_checkpoint_save_mem(b, *len, len, net, opt, it));
    return b;
}

/* 1 if the checkpoint at path loads and saves back to want[0..len). */
static int checkpoint_is(const char *path, const unsigned char *want, size_t len)
{
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    if (fan_checkpoint_load(path, &net, &opt, &it, NULL, NULL) != FAN_OK) return 0;
    size_t n = 0;
    unsigned char *got = checkpoint_bytes(net, opt, it, &n);
    const int same = n == len && memcmp(got, want, len) == 0;
    free(got);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    return same;
}

static void test_every_failing_file_operation_of_a_checkpoint_save_keeps_the_old_one(void **state)
{
    (void)state;
    tu_counter mem = {0};
    const fan_allocator al = tu_allocator(&mem);
    const size_t sizes[] = {6, 5, 3};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, &al));
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, &al));
    TU_OK(fan_iter_create_noise(&it, 6, 3, 4, 7, &al));
    char path[128], other[128]; /* path_of's buffers are reused after a few calls */
    snprintf(path, sizeof path, "%s", path_of("run.ckpt"));
    snprintf(other, sizeof other, "%s", path_of("other.ckpt"));
    TU_OK_NET(net, fan_checkpoint_save(path, net, opt, it));
    size_t old_len = 0, new_len = 0;
    unsigned char *old = checkpoint_bytes(net, opt, it, &old_len);
    assert_true(checkpoint_is(path, old, old_len));
    TU_OK_NET(net, fan_train_steps(net, opt, it, 3, NULL, NULL));
    unsigned char *newer = checkpoint_bytes(net, opt, it, &new_len);
    size_t n_faults = 0;
    for (size_t n = 1;; n++) {
        faults f;
        memset(&f, 0, sizeof f);
        f.fail_at = n;
        const fan__fileio io = {fault_hook, &f};
        const size_t blocks = mem.live_blocks;
        const int fd = lowest_free_fd();
        const fan_status st = fan__checkpoint_save_io(path, net, opt, it, &io);
        assert_int_equal(lowest_free_fd(), fd);
        assert_int_equal(mem.live_blocks, blocks);
        if (f.count < n) {
            TU_OK_NET(net, st);
            assert_true(checkpoint_is(path, newer, new_len));
            break;
        }
        note_fault(&f);
        n_faults++;
        assert_int_equal(st, FAN_E_IO);
        assert_true(fan_net_errmsg(net)[0] != '\0');
        assert_true(checkpoint_is(path, f.rename_at != 0 ? newer : old,
                                  f.rename_at != 0 ? new_len : old_len));
        /* Back to the old checkpoint for the next round; any temporary file goes. */
        assert_int_equal(unlink(path), 0);
        tu_write_file(path, old, old_len);
        TU_OK_NET(net, fan_checkpoint_save(other, net, opt, it));
        assert_int_equal(unlink(other), 0);
    }
    print_message("checkpoint save: %zu faults injected\n", n_faults);
    assert_true(n_faults >= 10);
    /* The sweep's own leftovers: at most the target's temporary file, which a save removes. */
    TU_OK_NET(net, fan_checkpoint_save(path, net, opt, it));
    assert_int_equal(count_entries(), 1);
    assert_int_equal(unlink(path), 0);
    free(old);
    free(newer);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    assert_int_equal(mem.live_blocks, 0);
}

/* ---- loading ------------------------------------------------------------------------------ */

/* FNV-1a 64 (Fowler, Noll, Vo) of a byte range, chained. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t digest_dataset(const fan_dataset *ds)
{
    const size_t n = fan_dataset_size(ds), dim = fan_dataset_dim(ds), k = fan_dataset_classes(ds);
    uint64_t h = fnv(0xcbf29ce484222325ull, &n, sizeof n);
    h = fnv(h, &dim, sizeof dim);
    h = fnv(h, &k, sizeof k);
    float *x = malloc(dim * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) {
        int32_t label;
        TU_OK(fan_dataset_get(ds, i, x, dim, &label));
        h = fnv(h, x, dim * sizeof *x);
        h = fnv(h, &label, sizeof label);
    }
    free(x);
    return h;
}

/* A loader under test: loads through o, digests and frees what it loaded. */
typedef fan_status (*load_fn)(fan__opts *o, uint64_t *digest);

static fan_status finish_dataset(fan_status st, fan_dataset *ds, uint64_t *digest)
{
    if (st != FAN_OK) {
        assert_null(ds);
        return st;
    }
    *digest = digest_dataset(ds);
    fan_dataset_free(ds);
    return FAN_OK;
}

static fan_status load_net(fan__opts *o, uint64_t *digest)
{
    fan_net *net = NULL;
    const fan_status st = fan__net_load_opts(&net, path_of("net.fan"), NULL, 0, o);
    if (st != FAN_OK) {
        assert_null(net);
        return st;
    }
    size_t len;
    unsigned char *b = bytes_of(net, &len);
    *digest = fnv(0xcbf29ce484222325ull, b, len);
    free(b);
    fan_net_free(net);
    return FAN_OK;
}

static fan_status load_idx_raw(fan__opts *o, uint64_t *digest)
{
    fan_dataset *ds = NULL;
    const fan_status st = fan__dataset_load_idx_opts(&ds, path_of("img"), path_of("lab"), o);
    return finish_dataset(st, ds, digest);
}

static fan_status load_idx_gz(fan__opts *o, uint64_t *digest)
{
    fan_dataset *ds = NULL;
    const fan_status st =
        fan__dataset_load_idx_opts(&ds, path_of("img.gz"), path_of("lab.gz"), o);
    return finish_dataset(st, ds, digest);
}

static fan_status load_cifar(fan__opts *o, uint64_t *digest)
{
    fan_dataset *ds = NULL;
    const char *paths[] = {path_of("c1"), path_of("c2")};
    const fan_status st = fan__dataset_load_cifar_opts(&ds, paths, 2, 1, o);
    return finish_dataset(st, ds, digest);
}

static fan_status load_csv(fan__opts *o, uint64_t *digest)
{
    fan_dataset *ds = NULL;
    const fan_status st = fan__dataset_load_csv_opts(&ds, path_of("d.csv"), 0, 1, o);
    return finish_dataset(st, ds, digest);
}

static fan_status load_checkpoint(fan__opts *o, uint64_t *digest)
{
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    const fan_status st = fan__checkpoint_load_opts(path_of("c.ckpt"), &net, &opt, &it, NULL, o);
    if (st != FAN_OK) {
        assert_true(net == NULL && opt == NULL && it == NULL);
        return st;
    }
    size_t len = 0;
    unsigned char *b = checkpoint_bytes(net, opt, it, &len);
    *digest = fnv(0xcbf29ce484222325ull, b, len);
    free(b);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    return FAN_OK;
}

static fan_status load_csv_gz(fan__opts *o, uint64_t *digest)
{
    fan_dataset *ds = NULL;
    const fan_status st = fan__dataset_load_csv_opts(&ds, path_of("d.csv.gz"), 0, 1, o);
    return finish_dataset(st, ds, digest);
}

/* Sweeps N over one loader; returns the number of faults injected. */
static size_t sweep_load(const char *name, load_fn load)
{
    fan__opts o;
    TU_OK(fan__opts_read(&o, NULL));
    uint64_t want = 0, got = 0;
    TU_OK(load(&o, &want));
    size_t n_faults = 0;
    for (size_t n = 1;; n++) {
        tu_counter mem = {0};
        const fan_allocator al = tu_allocator(&mem);
        const fan_create_options opts = {sizeof(fan_create_options), &al, NULL, 0, 0};
        TU_OK(fan__opts_read(&o, &opts));
        faults f;
        memset(&f, 0, sizeof f);
        f.fail_at = n;
        const fan__fileio io = {fault_hook, &f};
        o.io = &io;
        const int fd = lowest_free_fd();
        const fan_status st = load(&o, &got);
        assert_int_equal(lowest_free_fd(), fd);
        assert_int_equal(mem.live_blocks, 0);
        if (f.count < n) {
            TU_OK(st);
            assert_true(got == want);
            break;
        }
        note_fault(&f);
        n_faults++;
        if (st != FAN_E_IO)
            print_error("%s: fault %zu (operation %d) gave status %d: %s\n", name, n,
                        (int)f.failed_op, (int)st, o.err);
        assert_int_equal(st, FAN_E_IO);
        assert_true(o.err[0] != '\0');
    }
    /* The files were only read: they load as before. */
    TU_OK(fan__opts_read(&o, NULL));
    TU_OK(load(&o, &got));
    assert_true(got == want);
    return n_faults;
}

static void write_inputs(void)
{
    const size_t sizes[] = {5, 4, 2};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    TU_OK(fan_net_save(net, path_of("net.fan")));
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    TU_OK(fan_iter_create_noise(&it, 5, 2, 3, 1, NULL));
    TU_OK(fan_checkpoint_save(path_of("c.ckpt"), net, opt, it));
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);

    /* IDX: 70 images of 30 x 40, enough that the gzip stream spans several reads. */
    const size_t n = 70, rows = 30, cols = 40;
    uint8_t *img = malloc(16 + n * rows * cols), lab[8 + 70];
    assert_non_null(img);
    const uint32_t hi[4] = {0x803, (uint32_t)n, (uint32_t)rows, (uint32_t)cols};
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 4; b++) img[4 * k + b] = (uint8_t)(hi[k] >> (24 - 8 * b));
    tu_fill_bytes(img + 16, n * rows * cols, 7);
    const uint32_t hl[2] = {0x801, (uint32_t)n};
    for (int k = 0; k < 2; k++)
        for (int b = 0; b < 4; b++) lab[4 * k + b] = (uint8_t)(hl[k] >> (24 - 8 * b));
    for (size_t i = 0; i < n; i++) lab[8 + i] = (uint8_t)(i % 10);
    tu_write_file(path_of("img"), img, 16 + n * rows * cols);
    tu_write_file(path_of("lab"), lab, sizeof lab);
    tu_write_gz_file(path_of("img.gz"), img, 16 + n * rows * cols);
    tu_write_gz_file(path_of("lab.gz"), lab, sizeof lab);
    free(img);

    uint8_t rec[3 * 3073];
    tu_fill_bytes(rec, sizeof rec, 9);
    for (size_t r = 0; r < 3; r++) rec[r * 3073] = (uint8_t)r;
    tu_write_file(path_of("c1"), rec, 2 * 3073);
    tu_write_file(path_of("c2"), rec + 2 * 3073, 3073);

    char csv[4096];
    size_t len = (size_t)snprintf(csv, sizeof csv, "label,a,b,c\n");
    for (int r = 0; r < 100; r++)
        len += (size_t)snprintf(csv + len, sizeof csv - len, "%d,%d.5,-%d,%de-3\n", r % 4, r,
                                r * 3, r);
    tu_write_file(path_of("d.csv"), csv, len);
    tu_write_gz_file(path_of("d.csv.gz"), csv, len);
}

static void test_every_failing_file_operation_of_a_loader_fails_cleanly(void **state)
{
    (void)state;
    write_inputs();
    const struct {
        const char *name;
        load_fn fn;
    } loaders[] = {{"net", load_net},     {"idx raw", load_idx_raw}, {"idx gzip", load_idx_gz},
                   {"cifar", load_cifar}, {"csv", load_csv},         {"csv gzip", load_csv_gz},
                   {"checkpoint", load_checkpoint}};
    for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++) {
        const size_t k = sweep_load(loaders[i].name, loaders[i].fn);
        print_message("%s: %zu faults injected\n", loaders[i].name, k);
        assert_true(k >= 4); /* open, stat, read, close at least */
    }
    print_message("total: %zu faults (open %zu, read %zu, write %zu, fsync %zu, rename %zu, "
                  "close %zu, stat %zu, unlink %zu, lock %zu, readlink %zu, chmod %zu, seek "
                  "%zu)\n",
                  total_faults, total_by_op[FAN__FOP_OPEN], total_by_op[FAN__FOP_READ],
                  total_by_op[FAN__FOP_WRITE], total_by_op[FAN__FOP_FSYNC],
                  total_by_op[FAN__FOP_RENAME], total_by_op[FAN__FOP_CLOSE],
                  total_by_op[FAN__FOP_STAT], total_by_op[FAN__FOP_UNLINK],
                  total_by_op[FAN__FOP_LOCK], total_by_op[FAN__FOP_READLINK],
                  total_by_op[FAN__FOP_CHMOD], total_by_op[FAN__FOP_SEEK]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_failing_file_operation_of_a_save_keeps_a_loadable_model),
        cmocka_unit_test(test_every_failing_file_operation_of_a_checkpoint_save_keeps_the_old_one),
        cmocka_unit_test(test_every_failing_file_operation_of_a_loader_fails_cleanly),
    };
    return cmocka_run_group_tests_name("fileio", tests, setup_dir, teardown_dir);
}
