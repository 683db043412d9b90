/* test_robustness_oom.c - out-of-memory sweeps for the entry points that the module tests do not
   sweep: the first forward pass, gradient computation and training step at a batch size (they
   allocate the workspace), the training loops, cloning a net that has a workspace, model files
   (load from a path, save), every optimizer kind, and the raw-file IDX and plain-file CSV
   loaders. For N = 1, 2, ... the Nth allocation fails until the call succeeds; each failure
   must return FAN_E_NOMEM with a message, leak nothing, leave the handles as they were, and the
   same handles must then give exactly the result of a run that never failed. */
#define _POSIX_C_SOURCE 200809L /* unlink */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanoise.h"
#include "testutil.h"

#define IN 5
#define HID 4
#define OUT 3
#define ROWS 6
#define SAMPLES 14
#define STEPS 3
/* Far more failure points than any entry point here has: a sweep that reaches it loops. */
#define MAX_FAILURES 200

static size_t n_failures; /* allocation failures injected, printed at the end */

/* Every handle a training entry point needs, all from one counting allocator. */
typedef struct world {
    tu_counter c;
    fan_allocator al;
    fan_net *net;
    fan_optimizer *opt;
    fan_dataset *ds;
    fan_iter *it, *noise;
    float x[ROWS * IN], t[ROWS * OUT], out[ROWS * OUT];
    int32_t y[ROWS];
    double result[2];
} world;

static void world_make(world *w)
{
    memset(w, 0, sizeof *w);
    w->al = tu_allocator(&w->c);
    const size_t sizes[] = {IN, HID, OUT};
    TU_OK(fan_net_create(&w->net, sizes, 3, &w->al));
    TU_OK(fan_optimizer_create(&w->opt, FAN_OPTIMIZER_ADAM, w->net, &w->al));
    float dx[SAMPLES * IN];
    int32_t dy[SAMPLES];
    tu_fill(dx, SAMPLES * IN, 21, -1.0f, 1.0f);
    for (size_t i = 0; i < SAMPLES; i++) dy[i] = (int32_t)(i % OUT);
    TU_OK(fan_dataset_from_arrays(&w->ds, dx, dy, SAMPLES, IN, OUT, &w->al));
    TU_OK(fan_iter_create_batches(&w->it, w->ds, ROWS, 22, &w->al));
    TU_OK(fan_iter_create_noise(&w->noise, IN, OUT, ROWS, 23, &w->al));
    tu_fill(w->x, ROWS * IN, 24, -1.0f, 1.0f);
    tu_fill(w->t, ROWS * OUT, 25, 0.0f, 1.0f);
    for (size_t i = 0; i < ROWS; i++) w->y[i] = (int32_t)(i % OUT);
}

static void world_free(world *w)
{
    fan_iter_free(w->noise);
    fan_iter_free(w->it);
    fan_dataset_free(w->ds);
    fan_optimizer_free(w->opt);
    fan_net_free(w->net);
    assert_int_equal(w->c.live_blocks, 0);
}

static unsigned char *net_bytes(const fan_net *net, size_t *len)
{
    TU_OK(fan_net_save_mem(net, NULL, 0, len));
    unsigned char *b = malloc(*len);
    TU_OK(fan_net_save_mem(net, b, *len, len));
    return b;
}

static int mentions_memory(const char *msg)
{
    return strstr(msg, "alloc") != NULL || strstr(msg, "memory") != NULL;
}

/* ---- entry points that allocate on first use ----------------------------------------------- */

typedef fan_status (*entry_fn)(world *w);

static fan_status do_forward(world *w)
{
    return fan_net_forward(w->net, w->x, ROWS, w->out, ROWS * OUT);
}
static fan_status do_gradients(world *w)
{
    float loss = 0.0f;
    fan_status s = fan_net_compute_gradients(w->net, w->x, w->y, ROWS, &loss);
    w->result[0] = loss;
    return s;
}
static fan_status do_gradients_targets(world *w)
{
    float loss = 0.0f;
    fan_status s = fan_net_compute_gradients_targets(w->net, w->x, w->t, ROWS, &loss);
    w->result[0] = loss;
    return s;
}
static fan_status do_loss_value(world *w)
{
    return fan_net_loss_value(w->net, w->x, w->y, ROWS, &w->result[0]);
}
static fan_status do_train_batch(world *w)
{
    float loss = 0.0f;
    fan_status s = fan_net_train_batch(w->net, w->opt, w->x, w->y, ROWS, &loss);
    w->result[0] = loss;
    return s;
}
static fan_status do_train_batch_targets(world *w)
{
    float loss = 0.0f;
    fan_status s = fan_net_train_batch_targets(w->net, w->opt, w->x, w->t, ROWS, &loss);
    w->result[0] = loss;
    return s;
}
static fan_status do_train_epoch(world *w) { return fan_train(w->net, w->opt, w->it, 1, NULL, NULL); }
static fan_status do_train_steps(world *w)
{
    return fan_train_steps(w->net, w->opt, w->it, STEPS, NULL, NULL);
}
static fan_status do_pretrain_noise(world *w)
{
    return fan_pretrain_noise(w->net, w->opt, w->noise, STEPS, NULL, NULL);
}

/* The sweep: returns the number of allocation failures the entry point went through. A training
   loop whose step fails has already taken that step's batch from the iterator (the header
   promises the net as after the last good step, and says nothing of the iterator), so for the
   loops (rewind set) the iterators restart before the retry is compared with the reference. */
static size_t sweep(entry_fn call, const char *name, int rewind)
{
    world ref;
    world_make(&ref);
    TU_OK_NET(ref.net, call(&ref));
    size_t ref_len;
    unsigned char *ref_bytes = net_bytes(ref.net, &ref_len);
    const uint64_t ref_steps = fan_optimizer_steps(ref.opt);

    size_t k = 1;
    for (;; k++) {
        world w;
        world_make(&w);
        size_t before_len;
        unsigned char *before = net_bytes(w.net, &before_len);
        const size_t live = w.c.live_blocks;
        w.c.fail_at = w.c.total_allocs + k;
        const fan_status s = call(&w);
        w.c.fail_at = 0;
        if (s == FAN_OK) {
            free(before);
            world_free(&w);
            break;
        }
        if (s != FAN_E_NOMEM) print_error("%s, allocation %zu failing: status %d\n", name, k, (int)s);
        assert_int_equal(s, FAN_E_NOMEM);
        n_failures++;
        assert_true(mentions_memory(fan_net_errmsg(w.net)));
        if (w.c.live_blocks != live)
            print_error("%s, allocation %zu failing: %zu blocks live, %zu before (%s)\n", name, k,
                        w.c.live_blocks, live, fan_net_errmsg(w.net));
        assert_int_equal(w.c.live_blocks, live);
        size_t len;
        unsigned char *now = net_bytes(w.net, &len);
        assert_int_equal(len, before_len);
        assert_memory_equal(now, before, len);
        assert_int_equal(fan_optimizer_steps(w.opt), 0);
        /* The same handles, asked again with memory available, give the reference result. */
        if (rewind) {
            TU_OK(fan_iter_reset(w.it));
            TU_OK(fan_iter_reset(w.noise));
        }
        TU_OK_NET(w.net, call(&w));
        free(now);
        now = net_bytes(w.net, &len);
        assert_memory_equal(now, ref_bytes, ref_len);
        assert_int_equal(fan_optimizer_steps(w.opt), ref_steps);
        assert_memory_equal(w.result, ref.result, sizeof ref.result);
        assert_memory_equal(w.out, ref.out, sizeof ref.out);
        free(now);
        free(before);
        world_free(&w);
        assert_true(k < MAX_FAILURES);
    }
    free(ref_bytes);
    world_free(&ref);
    return k - 1;
}

static void test_first_forward_gradient_and_training_calls_survive_allocation_failure(void **state)
{
    (void)state;
    /* Each allocates the net's workspace on its first call at a batch size. */
    assert_true(sweep(do_forward, "forward", 0) >= 1);
    assert_true(sweep(do_gradients, "compute_gradients", 0) >= 1);
    assert_true(sweep(do_gradients_targets, "compute_gradients_targets", 0) >= 1);
    assert_true(sweep(do_loss_value, "loss_value", 0) >= 1);
    assert_true(sweep(do_train_batch, "train_batch", 0) >= 1);
    assert_true(sweep(do_train_batch_targets, "train_batch_targets", 0) >= 1);
}

static void test_training_loops_survive_allocation_failure(void **state)
{
    (void)state;
    assert_true(sweep(do_train_epoch, "train", 1) >= 1);
    assert_true(sweep(do_train_steps, "train_steps", 1) >= 1);
    assert_true(sweep(do_pretrain_noise, "pretrain_noise", 1) >= 1);
}

/* ---- constructors: clone, optimizers -------------------------------------------------------- */

static void test_clone_of_a_used_net_and_every_optimizer_survive_allocation_failure(void **state)
{
    (void)state;
    world w;
    world_make(&w);
    TU_OK_NET(w.net, do_train_batch(&w)); /* gradients and a workspace to copy (or not) */
    size_t ref_len;
    unsigned char *ref = net_bytes(w.net, &ref_len);
    size_t failures = 0;
    for (size_t k = 1;; k++) {
        const size_t live = w.c.live_blocks;
        w.c.fail_at = w.c.total_allocs + k;
        fan_net *copy = (fan_net *)&w; /* not NULL, to see it reset */
        const fan_status s = fan_net_clone(&copy, w.net);
        w.c.fail_at = 0;
        if (s == FAN_OK) {
            size_t len;
            unsigned char *b = net_bytes(copy, &len);
            assert_memory_equal(b, ref, ref_len);
            free(b);
            fan_net_free(copy);
            break;
        }
        assert_int_equal(s, FAN_E_NOMEM);
        n_failures++;
        assert_null(copy);
        assert_int_equal(w.c.live_blocks, live);
        failures++;
        assert_true(k < MAX_FAILURES);
    }
    assert_true(failures >= 1);

    const fan_optimizer_kind kinds[] = {FAN_OPTIMIZER_SGD, FAN_OPTIMIZER_ADAM, FAN_OPTIMIZER_ADAMW,
                                        FAN_OPTIMIZER_RMSPROP};
    for (size_t i = 0; i < 4; i++) {
        for (size_t k = 1;; k++) {
            const size_t live = w.c.live_blocks;
            w.c.fail_at = w.c.total_allocs + k;
            fan_optimizer *o = (fan_optimizer *)&w;
            const fan_status s = fan_optimizer_create(&o, kinds[i], w.net, &w.al);
            w.c.fail_at = 0;
            if (s == FAN_OK) {
                fan_optimizer_free(o);
                assert_true(k >= 2); /* every kind allocates at least its handle */
                break;
            }
            assert_int_equal(s, FAN_E_NOMEM);
            n_failures++;
            assert_null(o);
            assert_int_equal(w.c.live_blocks, live);
            assert_true(k < MAX_FAILURES);
        }
    }
    free(ref);
    world_free(&w);
}

/* ---- files ---------------------------------------------------------------------------------- */

static const char *tmp_path(const char *name)
{
    static char buf[256];
    const char *dir = getenv("TMPDIR");
    snprintf(buf, sizeof buf, "%s/fanoise-oom-%ld-%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             name);
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_model_files_survive_allocation_failure(void **state)
{
    (void)state;
    world w;
    world_make(&w);
    size_t len;
    unsigned char *bytes = net_bytes(w.net, &len);
    char path[256];
    snprintf(path, sizeof path, "%s", tmp_path("model.fan"));
    TU_OK_NET(w.net, fan_net_save(w.net, path));

    /* Load from a path, through both entry points. */
    for (int v2 = 0; v2 < 2; v2++) {
        size_t failures = 0;
        for (size_t k = 1;; k++) {
            tu_counter c = {0};
            c.fail_at = k;
            fan_allocator al = tu_allocator(&c);
            fan_net *back = (fan_net *)&c;
            char msg[128] = "";
            const fan_status s = v2 ? fan_net_load_v2(&back, path, NULL, 0, &al, msg, sizeof msg)
                                    : fan_net_load(&back, path, &al);
            if (s == FAN_OK) {
                size_t blen;
                unsigned char *b = net_bytes(back, &blen);
                assert_int_equal(blen, len);
                assert_memory_equal(b, bytes, len);
                free(b);
                fan_net_free(back);
                assert_int_equal(c.live_blocks, 0);
                break;
            }
            assert_int_equal(s, FAN_E_NOMEM);
            n_failures++;
            assert_null(back);
            assert_int_equal(c.live_blocks, 0);
            if (v2) assert_true(mentions_memory(msg));
            failures++;
            assert_true(k < MAX_FAILURES);
        }
        assert_true(failures >= 2); /* the file's bytes, then the net */
    }

    /* Saving over an existing model while memory runs out leaves the old model in place. */
    TU_OK_NET(w.net, do_train_batch(&w));
    size_t failures = 0;
    for (size_t k = 1;; k++) {
        const size_t live = w.c.live_blocks;
        w.c.fail_at = w.c.total_allocs + k;
        const fan_status s = fan_net_save(w.net, path);
        w.c.fail_at = 0;
        if (s == FAN_OK) break;
        assert_int_equal(s, FAN_E_NOMEM);
        n_failures++;
        assert_int_equal(w.c.live_blocks, live);
        fan_net *old = NULL;
        TU_OK(fan_net_load(&old, path, NULL));
        size_t olen;
        unsigned char *ob = net_bytes(old, &olen);
        assert_memory_equal(ob, bytes, len); /* still the model saved before training */
        free(ob);
        fan_net_free(old);
        failures++;
        assert_true(k < MAX_FAILURES);
    }
    assert_true(failures >= 1);
    fan_net *now = NULL;
    TU_OK(fan_net_load(&now, path, NULL));
    size_t nlen;
    unsigned char *nb = net_bytes(now, &nlen), *cur = net_bytes(w.net, &len);
    assert_memory_equal(nb, cur, len);
    free(nb);
    free(cur);
    fan_net_free(now);
    free(bytes);
    unlink(path);
    world_free(&w);
}

/* The loader sweeps of test_loaders.c and test_csv.c cover memory buffers, gzip files and CIFAR
   files; these are the remaining paths: a raw IDX pair on disk and a plain CSV file. */
static void test_raw_idx_files_and_plain_csv_files_survive_allocation_failure(void **state)
{
    (void)state;
    /* Two 2x3 images with labels 4 and 7 (IDX: big-endian magic 0x803 / 0x801 and sizes). */
    const uint8_t images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
                              1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const uint8_t labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 4, 7};
    const char csv[] = "x,y,label\n0.5,1,0\n2,3.25,2\n-1,0,1\n";
    char ipath[256], lpath[256], cpath[256];
    snprintf(ipath, sizeof ipath, "%s", tmp_path("img.idx"));
    snprintf(lpath, sizeof lpath, "%s", tmp_path("lab.idx"));
    snprintf(cpath, sizeof cpath, "%s", tmp_path("data.csv"));
    write_file(ipath, images, sizeof images);
    write_file(lpath, labels, sizeof labels);
    write_file(cpath, csv, sizeof csv - 1);
    for (int which = 0; which < 2; which++) {
        size_t failures = 0;
        for (size_t k = 1;; k++) {
            tu_counter c = {0};
            c.fail_at = k;
            fan_allocator al = tu_allocator(&c);
            fan_dataset *ds = (fan_dataset *)&c;
            const fan_status s = which == 0 ? fan_dataset_load_idx(&ds, ipath, lpath, &al)
                                            : fan_dataset_load_csv(&ds, cpath, FAN_CSV_LAST_COLUMN,
                                                                   1, &al);
            if (s == FAN_OK) {
                assert_int_equal(fan_dataset_size(ds), which == 0 ? 2 : 3);
                assert_int_equal(fan_dataset_dim(ds), which == 0 ? 6 : 2);
                fan_dataset_free(ds);
                assert_int_equal(c.live_blocks, 0);
                break;
            }
            assert_int_equal(s, FAN_E_NOMEM);
            n_failures++;
            assert_null(ds);
            assert_int_equal(c.live_blocks, 0);
            failures++;
            assert_true(k < MAX_FAILURES);
        }
        assert_true(failures >= 3); /* at least the dataset's handle, samples and labels */
    }
    unlink(ipath);
    unlink(lpath);
    unlink(cpath);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_forward_gradient_and_training_calls_survive_allocation_failure),
        cmocka_unit_test(test_training_loops_survive_allocation_failure),
        cmocka_unit_test(test_clone_of_a_used_net_and_every_optimizer_survive_allocation_failure),
        cmocka_unit_test(test_model_files_survive_allocation_failure),
        cmocka_unit_test(test_raw_idx_files_and_plain_csv_files_survive_allocation_failure),
    };
    const int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("robustness oom: %zu allocation failures injected\n", n_failures);
    return failed;
}
