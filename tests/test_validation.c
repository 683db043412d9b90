/* test_validation.c - stratified validation splits, and fan_train_v2: validation results in
   fan_progress, early stopping after the patience, the best epoch's weights restored exactly,
   and the options struct's struct_size rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

#define DIM 6
#define CLASSES 3
#define N 60
#define BATCH 10
#define MAX_EPOCHS 16

/* ---- stratified split ------------------------------------------------------------------------ */

/* n samples whose first value is their index, so that a subset tells where its samples came from;
   class c has counts[c] samples, interleaved. */
static fan_dataset *indexed(const size_t *counts, size_t classes, size_t *n_out)
{
    size_t n = 0, left[8];
    for (size_t c = 0; c < classes; c++) n += counts[c], left[c] = counts[c];
    float *x = calloc(n * 2, sizeof *x);
    int32_t *labels = calloc(n, sizeof *labels);
    assert_non_null(x);
    assert_non_null(labels);
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        while (left[c] == 0) c = (c + 1) % classes;
        labels[i] = (int32_t)c;
        left[c]--;
        x[2 * i] = (float)i;
        c = (c + 1) % classes;
    }
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, labels, n, 2, classes, NULL));
    free(x);
    free(labels);
    *n_out = n;
    return ds;
}

/* Marks seen[index] for each sample of part, checking source order and class. */
static void mark(const fan_dataset *part, const fan_dataset *ds, unsigned char *seen,
                 size_t *per_class)
{
    float x[2], y[2];
    int prev = -1;
    for (size_t i = 0; i < fan_dataset_size(part); i++) {
        int32_t l = -1, l0 = -1;
        TU_OK(fan_dataset_get(part, i, x, 2, &l));
        const int idx = (int)x[0];
        assert_true(idx > prev); /* source order */
        prev = idx;
        TU_OK(fan_dataset_get(ds, (size_t)idx, y, 2, &l0));
        assert_int_equal(l, l0);
        seen[idx]++;
        per_class[l]++;
    }
}

static void test_stratified_split_keeps_class_proportions_and_every_sample_once(void **s)
{
    (void)s;
    const size_t counts[3] = {60, 30, 10};
    size_t n = 0;
    fan_dataset *ds = indexed(counts, 3, &n);
    fan_dataset *train = NULL, *val = NULL;
    TU_OK(fan_dataset_split_stratified(&train, &val, ds, 20, 7));
    assert_int_equal(fan_dataset_size(val), 20);
    assert_int_equal(fan_dataset_size(train), 80);
    unsigned char seen[100] = {0};
    size_t in_val[3] = {0}, in_train[3] = {0};
    mark(val, ds, seen, in_val);
    mark(train, ds, seen, in_train);
    for (size_t i = 0; i < n; i++) assert_int_equal(seen[i], 1);
    /* 20% of each class. */
    assert_int_equal(in_val[0], 12);
    assert_int_equal(in_val[1], 6);
    assert_int_equal(in_val[2], 2);
    /* The same seed draws the same samples; another seed others. */
    fan_dataset *t2 = NULL, *v2 = NULL, *t3 = NULL, *v3 = NULL;
    TU_OK(fan_dataset_split_stratified(&t2, &v2, ds, 20, 7));
    TU_OK(fan_dataset_split_stratified(&t3, &v3, ds, 20, 8));
    tu_assert_same_dataset(val, v2);
    float a[2], b[2];
    int differ = 0;
    for (size_t i = 0; i < 20; i++) {
        TU_OK(fan_dataset_get(val, i, a, 2, NULL));
        TU_OK(fan_dataset_get(v3, i, b, 2, NULL));
        differ |= a[0] != b[0];
    }
    assert_true(differ);
    fan_dataset_free(t2);
    fan_dataset_free(v2);
    fan_dataset_free(t3);
    fan_dataset_free(v3);
    fan_dataset_free(train);
    fan_dataset_free(val);
    fan_dataset_free(ds);
}

static void test_stratified_split_rounds_by_largest_remainder(void **s)
{
    (void)s;
    /* 7 samples to split as 5 : 3 : 2 of 10 -> quotas 3.5, 2.1, 1.4: 3 + 1 by the largest
       remainder (class 0's .5) gives 4, 2, 1. */
    const size_t counts[3] = {5, 3, 2};
    size_t n = 0;
    fan_dataset *ds = indexed(counts, 3, &n);
    fan_dataset *train = NULL, *val = NULL;
    TU_OK(fan_dataset_split_stratified(&train, &val, ds, 7, 1));
    size_t got[3] = {0};
    TU_OK(fan_dataset_class_counts(val, got, 3));
    assert_int_equal(got[0], 4);
    assert_int_equal(got[1], 2);
    assert_int_equal(got[2], 1);
    fan_dataset_free(train);
    fan_dataset_free(val);
    assert_int_equal(fan_dataset_split_stratified(&train, &val, ds, 10, 1), FAN_E_INVALID);
    assert_null(train);
    assert_null(val);
    assert_non_null(strstr(fan_dataset_errmsg(ds), "n_val 10"));
    assert_int_equal(fan_dataset_split_stratified(&train, &val, ds, 0, 1), FAN_E_INVALID);
    assert_int_equal(fan_dataset_split_stratified(&train, NULL, ds, 3, 1), FAN_E_NULL);
    fan_dataset_free(ds);
}

/* ---- training with validation ---------------------------------------------------------------- */

/* Training data whose labels the net learns; the validation set has the same inputs with one
   label in three shifted, so its loss first falls as the net learns, then rises as the net fits
   the training labels harder (measured: lowest at epoch 5 of 9): the best epoch is neither the
   first nor the last, and the patience runs out. */
static fan_dataset *make_data(int shift)
{
    float x[N * DIM];
    int32_t labels[N];
    tu_fill(x, N * DIM, 11, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) {
        const int y = x[i * DIM] > 0.3f ? 0 : x[i * DIM + 1] > 0.0f ? 1 : 2;
        labels[i] = (int32_t)((y + (i % 3 == 0 ? shift : 0)) % CLASSES);
    }
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, labels, N, DIM, CLASSES, NULL));
    return ds;
}

typedef struct setup {
    fan_dataset *train, *val;
    fan_net *net;
    fan_optimizer *opt;
    fan_iter *it;
} setup;

static setup make_setup(void)
{
    setup su;
    su.train = make_data(0);
    su.val = make_data(1);
    const size_t sizes[] = {DIM, 12, CLASSES};
    TU_OK(fan_net_create(&su.net, sizes, 3, NULL));
    TU_OK_NET(su.net, fan_net_init(su.net, 1, 2));
    TU_OK(fan_optimizer_create(&su.opt, FAN_OPTIMIZER_ADAM, su.net, NULL));
    TU_OK(fan_optimizer_set(su.opt, FAN_OPT_LR, 0.02));
    TU_OK(fan_iter_create_batches(&su.it, su.train, BATCH, 3, NULL));
    return su;
}

static void free_setup(setup *su)
{
    fan_iter_free(su->it);
    fan_optimizer_free(su->opt);
    fan_net_free(su->net);
    fan_dataset_free(su->val);
    fan_dataset_free(su->train);
}

static unsigned char *net_bytes(const fan_net *net, size_t *len)
{
    TU_OK(fan_net_save_mem(net, NULL, 0, len));
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    size_t w = 0;
    TU_OK(fan_net_save_mem(net, b, *len, &w));
    return b;
}

/* What the callback saw at the end of each epoch. */
typedef struct epochs_seen {
    const fan_dataset *val;
    fan_net *net;
    size_t n;
    double val_loss[MAX_EPOCHS];
    unsigned char *bytes[MAX_EPOCHS];
    size_t len;
    size_t best_epoch;
    double best_val_loss;
} epochs_seen;

static int watch_epochs(const fan_progress *p, void *user)
{
    epochs_seen *e = user;
    assert_true(p->struct_size >= offsetof(fan_progress, validated) + sizeof p->validated);
    assert_int_equal(p->validated, p->end_of_epoch);
    if (!p->validated) return 0;
    assert_int_equal(p->epoch, e->n);
    /* The reported numbers are the net's on the validation set right now. */
    double loss = 0.0, acc = 0.0;
    TU_OK(fan_net_evaluate(e->net, e->val, &loss, &acc));
    assert_true(loss == p->val_loss);
    assert_true(acc == p->val_accuracy);
    e->val_loss[e->n] = p->val_loss;
    e->bytes[e->n] = net_bytes(e->net, &e->len);
    e->best_epoch = p->best_epoch;
    e->best_val_loss = p->best_val_loss;
    e->n++;
    return 0;
}

static void free_seen(epochs_seen *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->bytes[i]);
}

static size_t argmin(const double *v, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] < v[best]) best = i;
    return best;
}

static void test_early_stopping_restores_the_best_epochs_weights_exactly(void **s)
{
    (void)s;
    setup su = make_setup();
    epochs_seen e = {su.val, su.net, 0, {0}, {NULL}, 0, 0, 0.0};
    fan_train_options o = {sizeof o, su.val, 3, 1, 0.0};
    const fan_status st = fan_train_v2(su.net, su.opt, su.it, MAX_EPOCHS, &o, watch_epochs, &e);
    assert_int_equal(st, FAN_EARLY_STOPPED);
    const size_t best = argmin(e.val_loss, e.n);
    /* Stopped after exactly `patience` epochs without improvement. */
    assert_int_equal(e.n, best + 1 + 3);
    assert_true(e.n < MAX_EPOCHS);
    assert_int_equal(e.best_epoch, best);
    assert_true(e.best_val_loss == e.val_loss[best]);
    /* Neither the first nor the last epoch: improvement was tracked, and restoring changes the
       net. */
    assert_true(best > 0 && best < e.n - 1);
    size_t len = 0;
    unsigned char *now = net_bytes(su.net, &len);
    assert_int_equal(len, e.len);
    assert_memory_equal(now, e.bytes[best], len);
    assert_memory_not_equal(now, e.bytes[e.n - 1], len);
    free(now);
    free_seen(&e);
    free_setup(&su);
}

static void test_without_restore_the_last_epochs_weights_stay(void **s)
{
    (void)s;
    setup su = make_setup();
    epochs_seen e = {su.val, su.net, 0, {0}, {NULL}, 0, 0, 0.0};
    fan_train_options o = {sizeof o, su.val, 2, 0, 0.0};
    assert_int_equal(fan_train_v2(su.net, su.opt, su.it, MAX_EPOCHS, &o, watch_epochs, &e),
                     FAN_EARLY_STOPPED);
    size_t len = 0;
    unsigned char *now = net_bytes(su.net, &len);
    assert_memory_equal(now, e.bytes[e.n - 1], len);
    free(now);
    free_seen(&e);
    free_setup(&su);
}

static void test_patience_zero_runs_every_epoch_and_can_still_restore_the_best(void **s)
{
    (void)s;
    setup su = make_setup();
    epochs_seen e = {su.val, su.net, 0, {0}, {NULL}, 0, 0, 0.0};
    fan_train_options o = {sizeof o, su.val, 0, 1, 0.0};
    TU_OK_NET(su.net, fan_train_v2(su.net, su.opt, su.it, 6, &o, watch_epochs, &e));
    assert_int_equal(e.n, 6);
    size_t len = 0;
    unsigned char *now = net_bytes(su.net, &len);
    assert_memory_equal(now, e.bytes[argmin(e.val_loss, e.n)], len);
    free(now);
    free_seen(&e);
    free_setup(&su);
}

static int stop_at_epoch_2(const fan_progress *p, void *user)
{
    (void)user;
    return p->validated && p->epoch == 2;
}

static void test_without_options_or_validation_fan_train_v2_is_fan_train(void **s)
{
    (void)s;
    setup a = make_setup(), b = make_setup(), c = make_setup();
    TU_OK_NET(a.net, fan_train(a.net, a.opt, a.it, 3, NULL, NULL));
    TU_OK_NET(b.net, fan_train_v2(b.net, b.opt, b.it, 3, NULL, NULL, NULL));
    fan_train_options o = {sizeof o, NULL, 1, 1, 0.0}; /* no validation set: no stopping */
    TU_OK_NET(c.net, fan_train_v2(c.net, c.opt, c.it, 3, &o, NULL, NULL));
    size_t la, lb, lc;
    unsigned char *ba = net_bytes(a.net, &la), *bb = net_bytes(b.net, &lb),
                  *bc = net_bytes(c.net, &lc);
    assert_memory_equal(ba, bb, la);
    assert_memory_equal(ba, bc, la);
    free(ba);
    free(bb);
    free(bc);
    /* A callback's stop ends the call with the best weights restored too. */
    setup d = make_setup();
    fan_train_options od = {sizeof od, d.val, 0, 1, 0.0};
    assert_int_equal(fan_train_v2(d.net, d.opt, d.it, 8, &od, stop_at_epoch_2, NULL), FAN_STOPPED);
    free_setup(&a);
    free_setup(&b);
    free_setup(&c);
    free_setup(&d);
}

static void test_train_options_follow_the_struct_size_rule(void **s)
{
    (void)s;
    setup su = make_setup();
    /* An older caller's struct: only struct_size and validation. */
    fan_train_options o = {offsetof(fan_train_options, patience), su.val, 1, 1, 0.0};
    TU_OK_NET(su.net, fan_train_v2(su.net, su.opt, su.it, 2, &o, NULL, NULL));
    /* A newer caller's struct with an unknown field set. */
    struct {
        fan_train_options known;
        double extra;
    } newer = {{sizeof newer, su.val, 0, 0, 0.0}, 1.0};
    assert_int_equal(fan_train_v2(su.net, su.opt, su.it, 1, &newer.known, NULL, NULL),
                     FAN_E_UNSUPPORTED);
    assert_non_null(strstr(fan_net_errmsg(su.net), "knows only the first"));
    newer.extra = 0.0; /* zeroed unknown fields are fine */
    TU_OK_NET(su.net, fan_train_v2(su.net, su.opt, su.it, 1, &newer.known, NULL, NULL));
    fan_train_options bad = {0, su.val, 0, 0, 0.0};
    assert_int_equal(fan_train_v2(su.net, su.opt, su.it, 1, &bad, NULL, NULL), FAN_E_INVALID);
    bad.struct_size = sizeof bad;
    bad.min_delta = -1.0;
    assert_int_equal(fan_train_v2(su.net, su.opt, su.it, 1, &bad, NULL, NULL), FAN_E_INVALID);
    bad.min_delta = 0.0;
    fan_dataset *wide = NULL;
    float x[2 * (DIM + 1)] = {0};
    int32_t labels[2] = {0, 1};
    TU_OK(fan_dataset_from_arrays(&wide, x, labels, 2, DIM + 1, CLASSES, NULL));
    bad.validation = wide;
    assert_int_equal(fan_train_v2(su.net, su.opt, su.it, 1, &bad, NULL, NULL), FAN_E_SHAPE);
    assert_non_null(strstr(fan_net_errmsg(su.net), "validation set has 7 inputs"));
    fan_dataset_free(wide);
    fan_iter *noise = NULL;
    TU_OK(fan_iter_create_noise(&noise, DIM, CLASSES, 4, 1, NULL));
    assert_int_equal(fan_train_v2(su.net, su.opt, noise, 1, NULL, NULL, NULL), FAN_E_INVALID);
    fan_iter_free(noise);
    assert_string_equal(fan_strerror(FAN_EARLY_STOPPED),
                        "stopped early: validation loss stopped improving");
    free_setup(&su);
}

static void test_restore_best_survives_allocation_failure_cleanly(void **s)
{
    (void)s;
    setup su = make_setup();
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    fan_net *net = NULL;
    const size_t sizes[] = {DIM, 12, CLASSES};
    TU_OK(fan_net_create(&net, sizes, 3, &al));
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    size_t len0 = 0;
    unsigned char *before = net_bytes(net, &len0);
    c.fail_at = c.total_allocs + 1; /* the snapshot */
    fan_train_options o = {sizeof o, su.val, 1, 1, 0.0};
    assert_int_equal(fan_train_v2(net, opt, su.it, 2, &o, NULL, NULL), FAN_E_NOMEM);
    size_t len1 = 0;
    unsigned char *after = net_bytes(net, &len1);
    assert_memory_equal(before, after, len0); /* no step was taken */
    free(before);
    free(after);
    fan_optimizer_free(opt);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
    free_setup(&su);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stratified_split_keeps_class_proportions_and_every_sample_once),
        cmocka_unit_test(test_stratified_split_rounds_by_largest_remainder),
        cmocka_unit_test(test_early_stopping_restores_the_best_epochs_weights_exactly),
        cmocka_unit_test(test_without_restore_the_last_epochs_weights_stay),
        cmocka_unit_test(test_patience_zero_runs_every_epoch_and_can_still_restore_the_best),
        cmocka_unit_test(test_without_options_or_validation_fan_train_v2_is_fan_train),
        cmocka_unit_test(test_train_options_follow_the_struct_size_rule),
        cmocka_unit_test(test_restore_best_survives_allocation_failure_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
