/* test_checkpoint.c - exact resume: a run stopped, checkpointed, freed, loaded and continued ends
   with bit-identical weights and optimizer state to the run done in one go, for every optimizer,
   every rule, batch and noise iterators, at epoch boundaries and mid-epoch; optimizer and
   iterator state blobs on their own; mismatched datasets and damaged files refused with their
   statuses and messages; no leak on any allocation failure. */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fanoise.h"
#include "testutil.h"

#define N_SAMPLES 50
#define DIM 12
#define CLASSES 3
#define BATCH 8 /* 50 samples: 6 full batches and one of 2 per epoch */

/* ---- the runs ------------------------------------------------------------------------------ */

typedef struct opt_setup {
    const char *name;
    fan_optimizer_kind kind;
    double lr, momentum, nesterov, weight_decay;
} opt_setup;

/* Every optimizer of the library; weight decay on some, so that KP's decay of B is exercised. */
static const opt_setup OPTIMIZERS[] = {
    {"sgd", FAN_OPTIMIZER_SGD, 0.05, 0.0, 0.0, 0.0},
    {"sgd momentum", FAN_OPTIMIZER_SGD, 0.05, 0.9, 0.0, 1e-3},
    {"nesterov", FAN_OPTIMIZER_SGD, 0.05, 0.9, 1.0, 0.0},
    {"adam", FAN_OPTIMIZER_ADAM, 0.01, 0.0, 0.0, 1e-4},
    {"adamw", FAN_OPTIMIZER_ADAMW, 0.01, 0.0, 0.0, 0.01},
    {"rmsprop", FAN_OPTIMIZER_RMSPROP, 0.01, 0.5, 0.0, 0.0},
};
#define N_OPTIMIZERS (sizeof OPTIMIZERS / sizeof OPTIMIZERS[0])
#define N_RULES 8 /* fan_rule values 0..7: bp fa dfa usf brsf frsf kp wm */

typedef enum run_kind {
    RUN_EPOCHS,    /* fan_train 2 epochs; stop after 1 */
    RUN_MID_EPOCH, /* fan_train_steps 10 batches; stop after 4 (inside epoch 1) */
    RUN_CROSSING,  /* fan_train_steps 11; stop after 9 (inside epoch 2), then a call of fan_train */
    RUN_NOISE      /* fan_pretrain_noise 10 steps; stop after 4 */
} run_kind;

static fan_dataset *make_data(int label_shift)
{
    float x[N_SAMPLES * DIM];
    int32_t labels[N_SAMPLES];
    tu_fill(x, N_SAMPLES * DIM, 17, -1.0f, 1.0f);
    for (int i = 0; i < N_SAMPLES; i++) labels[i] = (int32_t)((i + label_shift) % CLASSES);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, labels, N_SAMPLES, DIM, CLASSES, NULL));
    return ds;
}

static void make_handles(fan_rule rule, const opt_setup *o, run_kind kind, const fan_dataset *ds,
                         fan_net **net, fan_optimizer **opt, fan_iter **it)
{
    const size_t sizes[] = {DIM, 10, 8, CLASSES};
    TU_OK(fan_net_create(net, sizes, 4, NULL));
    TU_OK_NET(*net, fan_net_set_rule(*net, rule));
    TU_OK_NET(*net, fan_net_init(*net, 5, 6));
    TU_OK(fan_optimizer_create(opt, o->kind, *net, NULL));
    TU_OK(fan_optimizer_set(*opt, FAN_OPT_LR, o->lr));
    TU_OK(fan_optimizer_set(*opt, FAN_OPT_MOMENTUM, o->momentum));
    TU_OK(fan_optimizer_set(*opt, FAN_OPT_NESTEROV, o->nesterov));
    TU_OK(fan_optimizer_set(*opt, FAN_OPT_WEIGHT_DECAY, o->weight_decay));
    if (kind == RUN_NOISE) {
        TU_OK(fan_iter_create_noise(it, DIM, CLASSES, BATCH, 9, NULL));
    } else {
        TU_OK(fan_iter_create_batches(it, ds, BATCH, 9, NULL));
    }
}

/* Runs the first (part 0) or second (part 1) half of a run; both halves for `whole`. */
static void train_part(fan_net *net, fan_optimizer *opt, fan_iter *it, run_kind kind, int part)
{
    switch (kind) {
    case RUN_EPOCHS: TU_OK_NET(net, fan_train(net, opt, it, 1, NULL, NULL)); break;
    case RUN_MID_EPOCH:
        TU_OK_NET(net, fan_train_steps(net, opt, it, part == 0 ? 4 : 6, NULL, NULL));
        break;
    case RUN_CROSSING:
        if (part == 0) {
            TU_OK_NET(net, fan_train_steps(net, opt, it, 9, NULL, NULL));
        } else {
            /* Finishes epoch 2 (5 batches), then one more epoch (7). */
            TU_OK_NET(net, fan_train(net, opt, it, 1, NULL, NULL));
        }
        break;
    case RUN_NOISE:
        TU_OK_NET(net, fan_pretrain_noise(net, opt, it, part == 0 ? 4 : 6, NULL, NULL));
        break;
    }
}

/* Concatenated model file and optimizer state: equal bytes mean bit-identical W, b, B, rule
   state, moments and step count. */
static unsigned char *final_bytes(const fan_net *net, const fan_optimizer *opt, size_t *len)
{
    size_t nl = 0, ol = 0, w = 0;
    TU_OK(fan_net_save_mem(net, NULL, 0, &nl));
    TU_OK(fan_optimizer_save_mem(opt, NULL, 0, &ol));
    unsigned char *b = malloc(nl + ol);
    assert_non_null(b);
    TU_OK(fan_net_save_mem(net, b, nl, &w));
    TU_OK(fan_optimizer_save_mem(opt, b + nl, ol, &w));
    *len = nl + ol;
    return b;
}

/* One run, straight or with a checkpoint (through a file when `path` is not NULL) between the
   halves and every handle, dataset included, freed and made again in between. */
static unsigned char *run(fan_rule rule, const opt_setup *o, run_kind kind, int resume,
                          const char *path, size_t *len)
{
    fan_dataset *ds = make_data(0);
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    make_handles(rule, o, kind, ds, &net, &opt, &it);
    train_part(net, opt, it, kind, 0);
    if (resume) {
        unsigned char *ckpt = NULL;
        size_t n = 0;
        if (path != NULL) {
            TU_OK_NET(net, fan_checkpoint_save(path, net, opt, it));
        } else {
            TU_OK(fan_checkpoint_save_mem(NULL, 0, &n, net, opt, it));
            ckpt = malloc(n);
            assert_non_null(ckpt);
            size_t w = 0;
            TU_OK(fan_checkpoint_save_mem(ckpt, n, &w, net, opt, it));
            assert_int_equal(w, n);
        }
        fan_iter_free(it);
        fan_optimizer_free(opt);
        fan_net_free(net);
        fan_dataset_free(ds);
        ds = make_data(0);
        const fan_dataset *data = kind == RUN_NOISE ? NULL : ds;
        if (path != NULL) {
            TU_OK(fan_checkpoint_load(path, &net, &opt, &it, data, NULL));
        } else {
            TU_OK(fan_checkpoint_load_mem(ckpt, n, &net, &opt, &it, data, NULL));
        }
        free(ckpt);
        assert_non_null(net);
        assert_non_null(opt);
        assert_non_null(it);
        assert_int_equal(fan_net_rule(net), rule);
    }
    train_part(net, opt, it, kind, 1);
    unsigned char *b = final_bytes(net, opt, len);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    fan_dataset_free(ds);
    return b;
}

static void check_resume_matrix(run_kind kind)
{
    for (int rule = 0; rule < N_RULES; rule++) {
        for (size_t o = 0; o < N_OPTIMIZERS; o++) {
            size_t la = 0, lb = 0;
            unsigned char *a = run((fan_rule)rule, &OPTIMIZERS[o], kind, 0, NULL, &la);
            unsigned char *b = run((fan_rule)rule, &OPTIMIZERS[o], kind, 1, NULL, &lb);
            if (la != lb || memcmp(a, b, la) != 0) {
                print_error("rule %s, optimizer %s: resumed run differs from the straight one\n",
                            fan_rule_name((fan_rule)rule), OPTIMIZERS[o].name);
                fail();
            }
            free(a);
            free(b);
        }
    }
}

static void test_resume_at_epoch_boundary_is_bit_identical_for_every_rule_and_optimizer(void **s)
{
    (void)s;
    check_resume_matrix(RUN_EPOCHS);
}

static void test_resume_mid_epoch_is_bit_identical_for_every_rule_and_optimizer(void **s)
{
    (void)s;
    check_resume_matrix(RUN_MID_EPOCH);
}

static void test_resume_inside_a_later_epoch_then_fan_train_is_bit_identical(void **s)
{
    (void)s;
    check_resume_matrix(RUN_CROSSING);
}

static void test_resume_of_noise_pretraining_is_bit_identical_for_every_rule_and_optimizer(void **s)
{
    (void)s;
    check_resume_matrix(RUN_NOISE);
}

/* A temporary directory per test, removed with its files. */
static char *temp_dir(void)
{
    char tmpl[] = "/tmp/fan_ckpt_XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void test_resume_through_a_file_is_bit_identical(void **s)
{
    (void)s;
    char *dir = temp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/run.ckpt", dir);
    size_t la = 0, lb = 0, lc = 0, ld = 0;
    unsigned char *a = run(FAN_RULE_KP, &OPTIMIZERS[3], RUN_MID_EPOCH, 0, NULL, &la);
    unsigned char *b = run(FAN_RULE_KP, &OPTIMIZERS[3], RUN_MID_EPOCH, 1, path, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    unsigned char *c = run(FAN_RULE_BRSF, &OPTIMIZERS[1], RUN_NOISE, 0, NULL, &lc);
    unsigned char *d = run(FAN_RULE_BRSF, &OPTIMIZERS[1], RUN_NOISE, 1, path, &ld);
    assert_int_equal(lc, ld);
    assert_memory_equal(c, d, lc);
    free(a);
    free(b);
    free(c);
    free(d);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

/* Saves a checkpoint at the end of the second epoch, then "crashes" (stops the loop). */
typedef struct crash {
    fan_net *net;
    fan_optimizer *opt;
    fan_iter *it;
    unsigned char *ckpt;
    size_t len;
} crash;

static int checkpoint_then_crash(const fan_progress *p, void *user)
{
    crash *c = user;
    if (!p->end_of_epoch) return 0;
    size_t w = 0;
    TU_OK(fan_checkpoint_save_mem(NULL, 0, &c->len, c->net, c->opt, c->it));
    free(c->ckpt);
    c->ckpt = malloc(c->len);
    assert_non_null(c->ckpt);
    TU_OK(fan_checkpoint_save_mem(c->ckpt, c->len, &w, c->net, c->opt, c->it));
    return p->epoch == 1;
}

static void test_checkpoints_written_by_the_callback_resume_with_the_epoch_count(void **s)
{
    (void)s;
    size_t la = 0, lb = 0;
    unsigned char *a = NULL, *b = NULL;
    for (int resume = 0; resume < 2; resume++) {
        fan_dataset *ds = make_data(0);
        crash c = {NULL, NULL, NULL, NULL, 0};
        make_handles(FAN_RULE_FA, &OPTIMIZERS[1], RUN_EPOCHS, ds, &c.net, &c.opt, &c.it);
        if (!resume) {
            TU_OK_NET(c.net, fan_train(c.net, c.opt, c.it, 4, NULL, NULL));
            a = final_bytes(c.net, c.opt, &la);
        } else {
            assert_int_equal(fan_train(c.net, c.opt, c.it, 4, checkpoint_then_crash, &c),
                             FAN_STOPPED);
            fan_iter_free(c.it);
            fan_optimizer_free(c.opt);
            fan_net_free(c.net);
            TU_OK(fan_checkpoint_load_mem(c.ckpt, c.len, &c.net, &c.opt, &c.it, ds, NULL));
            /* The epoch's last batch was returned before the save: it counts as finished. */
            assert_int_equal(fan_iter_epoch(c.it), 2);
            TU_OK_NET(c.net, fan_train(c.net, c.opt, c.it, 4 - fan_iter_epoch(c.it), NULL, NULL));
            assert_int_equal(fan_iter_epoch(c.it), 4);
            b = final_bytes(c.net, c.opt, &lb);
        }
        free(c.ckpt);
        fan_iter_free(c.it);
        fan_optimizer_free(c.opt);
        fan_net_free(c.net);
        fan_dataset_free(ds);
    }
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
}

/* ---- the iterator's own state --------------------------------------------------------------- */

static void next_batch(fan_iter *it, float *x, int32_t *labels, size_t *n)
{
    const float *bx = NULL;
    const int32_t *bl = NULL;
    const float *bt = NULL;
    fan_status st = fan_iter_next(it, &bx, &bl, &bt, n);
    assert_true(st == FAN_OK || st == FAN_DONE);
    if (*n > 0) {
        memcpy(x, bx, *n * DIM * sizeof *x);
        if (bl != NULL) memcpy(labels, bl, *n * sizeof *labels);
    }
}

static void test_iterator_state_continues_the_same_batches_with_noise_settings(void **s)
{
    (void)s;
    fan_iter *a = NULL, *b = NULL;
    TU_OK(fan_iter_create_noise(&a, DIM, CLASSES, 4, 3, NULL));
    TU_OK(fan_iter_set(a, FAN_ITER_NOISE_KIND, FAN_NOISE_UNIFORM));
    TU_OK(fan_iter_set(a, FAN_ITER_NOISE_MEAN, 0.5));
    TU_OK(fan_iter_set(a, FAN_ITER_NOISE_STD, 2.0));
    float x[4 * DIM], y[4 * DIM];
    int32_t la[4], lb[4];
    size_t n = 0, m = 0;
    for (int i = 0; i < 3; i++) next_batch(a, x, la, &n);
    unsigned char state[512];
    size_t len = 0;
    TU_OK(fan_iter_get_state(a, NULL, 0, &len));
    assert_int_equal(len, 156);
    TU_OK(fan_iter_get_state(a, state, sizeof state, &len));
    /* A different seed and default settings: all of it comes from the state. */
    TU_OK(fan_iter_create_noise(&b, DIM, CLASSES, 4, 99, NULL));
    TU_OK(fan_iter_set_state(b, state, len));
    double v = 0.0;
    TU_OK(fan_iter_get(b, FAN_ITER_NOISE_STD, &v));
    assert_true(v == 2.0);
    for (int i = 0; i < 3; i++) {
        next_batch(a, x, la, &n);
        next_batch(b, y, lb, &m);
        assert_int_equal(n, m);
        assert_memory_equal(x, y, sizeof x);
        assert_memory_equal(la, lb, sizeof la);
    }
    /* The seed came with the state: a reset restarts the saved stream on both. */
    TU_OK(fan_iter_reset(a));
    TU_OK(fan_iter_reset(b));
    next_batch(a, x, la, &n);
    next_batch(b, y, lb, &m);
    assert_memory_equal(x, y, sizeof x);
    fan_iter_free(a);
    fan_iter_free(b);
}

static void test_iterator_state_mid_epoch_restores_order_position_and_epoch_count(void **s)
{
    (void)s;
    fan_dataset *ds = make_data(0);
    fan_iter *a = NULL, *b = NULL;
    TU_OK(fan_iter_create_batches(&a, ds, BATCH, 3, NULL));
    TU_OK(fan_iter_set(a, FAN_ITER_DROP_LAST, 1));
    float x[BATCH * DIM], y[BATCH * DIM];
    int32_t la[BATCH], lb[BATCH];
    size_t n = 0, m = 0;
    /* One epoch of 6 batches and FAN_DONE, then 2 batches into the second. */
    for (int i = 0; i < 9; i++) next_batch(a, x, la, &n);
    assert_int_equal(fan_iter_epoch(a), 1);
    unsigned char state[256];
    size_t len = 0;
    TU_OK(fan_iter_get_state(a, state, sizeof state, &len));
    assert_int_equal(len, 152);
    TU_OK(fan_iter_create_batches(&b, ds, BATCH, 4, NULL));
    TU_OK(fan_iter_set_state(b, state, len));
    assert_int_equal(fan_iter_epoch(b), 1);
    double drop = 0.0;
    TU_OK(fan_iter_get(b, FAN_ITER_DROP_LAST, &drop));
    assert_true(drop == 1.0);
    /* The rest of epoch 2, its end, and all of epoch 3. */
    for (int i = 0; i < 12; i++) {
        next_batch(a, x, la, &n);
        next_batch(b, y, lb, &m);
        assert_int_equal(n, m);
        if (n > 0) {
            assert_memory_equal(x, y, n * DIM * sizeof *x);
            assert_memory_equal(la, lb, n * sizeof *la);
        }
    }
    assert_int_equal(fan_iter_epoch(a), 3);
    assert_int_equal(fan_iter_epoch(b), 3);
    fan_iter_free(a);
    fan_iter_free(b);
    fan_dataset_free(ds);
}

static void test_iterator_state_is_refused_by_an_unlike_iterator_which_stays_unchanged(void **s)
{
    (void)s;
    fan_dataset *ds = make_data(0);
    fan_iter *batches = NULL, *other = NULL, *noise = NULL;
    TU_OK(fan_iter_create_batches(&batches, ds, BATCH, 3, NULL));
    TU_OK(fan_iter_create_batches(&other, ds, BATCH + 1, 3, NULL));
    TU_OK(fan_iter_create_noise(&noise, DIM, CLASSES, BATCH, 3, NULL));
    unsigned char state[256];
    size_t len = 0;
    TU_OK(fan_iter_get_state(batches, state, sizeof state, &len));
    assert_int_equal(fan_iter_set_state(noise, state, len), FAN_E_INVALID);
    assert_non_null(strstr(fan_iter_errmsg(noise), "batch iterator"));
    assert_int_equal(fan_iter_set_state(other, state, len), FAN_E_SHAPE);
    assert_non_null(strstr(fan_iter_errmsg(other), "batch 8"));
    assert_int_equal(fan_iter_set_state(batches, state, len - 1), FAN_E_FORMAT);
    state[40] ^= 1; /* the seed: the checksum no longer matches */
    assert_int_equal(fan_iter_set_state(batches, state, len), FAN_E_CHECKSUM);
    state[40] ^= 1;
    state[8] = 2; /* a later version */
    assert_int_equal(fan_iter_set_state(batches, state, len), FAN_E_VERSION);
    assert_int_equal(fan_iter_set_state(batches, NULL, len), FAN_E_NULL);
    /* The failed calls changed nothing: the first batch is still the seed's first. */
    fan_iter *fresh = NULL;
    TU_OK(fan_iter_create_batches(&fresh, ds, BATCH, 3, NULL));
    float x[BATCH * DIM], y[BATCH * DIM];
    int32_t la[BATCH], lb[BATCH];
    size_t n = 0, m = 0;
    next_batch(batches, x, la, &n);
    next_batch(fresh, y, lb, &m);
    assert_memory_equal(x, y, sizeof x);
    fan_iter_free(fresh);
    fan_iter_free(noise);
    fan_iter_free(other);
    fan_iter_free(batches);
    fan_dataset_free(ds);
}

/* ---- the optimizer's own state -------------------------------------------------------------- */

static fan_net *small_net(void)
{
    const size_t sizes[] = {DIM, 6, CLASSES};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    return net;
}

static unsigned char *opt_blob(const fan_optimizer *opt, size_t *len)
{
    TU_OK(fan_optimizer_save_mem(opt, NULL, 0, len));
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    size_t w = 0;
    TU_OK(fan_optimizer_save_mem(opt, b, *len, &w));
    return b;
}

static void put_u32_le(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void fix_crc(unsigned char *b, size_t len)
{
    put_u32_le(b + len - 4, (uint32_t)crc32(crc32(0L, Z_NULL, 0), b, (uInt)(len - 4)));
}

static void test_optimizer_state_round_trips_hyperparameters_steps_and_moments(void **s)
{
    (void)s;
    fan_net *net = small_net();
    fan_optimizer *opt = NULL, *back = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAMW, net, NULL));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, 0.003));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_BETA2, 0.95));
    float x[4 * DIM];
    int32_t labels[4] = {0, 1, 2, 0};
    tu_fill(x, 4 * DIM, 3, -1, 1);
    for (int i = 0; i < 3; i++) TU_OK(fan_net_train_batch(net, opt, x, labels, 4, NULL));
    size_t len = 0;
    unsigned char *b = opt_blob(opt, &len);
    TU_OK(fan_optimizer_load_mem(&back, b, len, NULL));
    assert_int_equal(fan_optimizer_get_kind(back), FAN_OPTIMIZER_ADAMW);
    assert_int_equal(fan_optimizer_steps(back), 3);
    double v = 0.0;
    TU_OK(fan_optimizer_get(back, FAN_OPT_BETA2, &v));
    assert_true(v == 0.95);
    size_t len2 = 0;
    unsigned char *b2 = opt_blob(back, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(b, b2, len);
    /* The loaded one steps the net exactly as the original does. */
    fan_net *twin = NULL;
    TU_OK(fan_net_clone(&twin, net));
    TU_OK(fan_net_train_batch(net, opt, x, labels, 4, NULL));
    TU_OK(fan_net_train_batch(twin, back, x, labels, 4, NULL));
    float w1[6 * DIM], w2[6 * DIM];
    TU_OK(fan_net_get_weights(net, 0, w1, 6 * DIM, NULL, 0));
    TU_OK(fan_net_get_weights(twin, 0, w2, 6 * DIM, NULL, 0));
    assert_memory_equal(w1, w2, sizeof w1);
    free(b);
    free(b2);
    fan_optimizer_free(back);
    fan_optimizer_free(opt);
    fan_net_free(twin);
    fan_net_free(net);
}

/* Offsets of the optimizer state (docs/file-format.md). */
#define OPT_KIND_AT 12
#define OPT_NHP_AT 16
#define OPT_HP_AT(L) (40 + 8 * ((L) + 1))

static void test_optimizer_state_of_an_older_library_loads_missing_values_as_defaults(void **s)
{
    (void)s;
    fan_net *net = small_net();
    fan_optimizer *opt = NULL, *back = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, 0.5));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_MOMENTUM, 0.7));
    size_t len = 0;
    unsigned char *b = opt_blob(opt, &len);
    /* As a library knowing only the first two hyperparameters would have written it. */
    const uint32_t n_hp = b[OPT_NHP_AT] | (uint32_t)b[OPT_NHP_AT + 1] << 8;
    const size_t hp_at = OPT_HP_AT(2), cut = 8 * (n_hp - 2);
    unsigned char *old = malloc(len - cut);
    assert_non_null(old);
    memcpy(old, b, hp_at + 16);
    memcpy(old + hp_at + 16, b + hp_at + 8 * n_hp, len - hp_at - 8 * n_hp);
    put_u32_le(old + OPT_NHP_AT, 2);
    fix_crc(old, len - cut);
    TU_OK(fan_optimizer_load_mem(&back, old, len - cut, NULL));
    double v = 0.0, def = 0.0;
    TU_OK(fan_optimizer_get(back, FAN_OPT_MOMENTUM, &v));
    assert_true(v == 0.7);
    TU_OK(fan_optimizer_get(back, FAN_OPT_WEIGHT_DECAY, &v));
    TU_OK(fan_optimizer_param_bounds(FAN_OPT_WEIGHT_DECAY, NULL, NULL, &def));
    assert_true(v == def);
    fan_optimizer_free(back);
    /* One hyperparameter more than this library knows: a newer writer. */
    put_u32_le(b + OPT_NHP_AT, n_hp + 1);
    fix_crc(b, len);
    assert_int_equal(fan_optimizer_load_mem(&back, b, len, NULL), FAN_E_VERSION);
    assert_null(back);
    free(old);
    free(b);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_optimizer_state_damage_gives_specific_statuses(void **s)
{
    (void)s;
    fan_net *net = small_net();
    fan_optimizer *opt = NULL, *back = (fan_optimizer *)&back;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_RMSPROP, net, NULL));
    size_t len = 0;
    unsigned char *b = opt_blob(opt, &len);
    assert_int_equal(fan_optimizer_load_mem(&back, b, len - 1, NULL), FAN_E_FORMAT);
    assert_null(back);
    assert_int_equal(fan_optimizer_load_mem(&back, b, 10, NULL), FAN_E_FORMAT);
    b[len - 10] ^= 0x40;
    assert_int_equal(fan_optimizer_load_mem(&back, b, len, NULL), FAN_E_CHECKSUM);
    b[len - 10] ^= 0x40;
    put_u32_le(b + OPT_KIND_AT, 9);
    fix_crc(b, len);
    assert_int_equal(fan_optimizer_load_mem(&back, b, len, NULL), FAN_E_FORMAT);
    put_u32_le(b + OPT_KIND_AT, FAN_OPTIMIZER_RMSPROP);
    /* A learning rate of -1. */
    const double bad = -1.0;
    uint64_t bits;
    memcpy(&bits, &bad, sizeof bits);
    for (int i = 0; i < 8; i++) b[OPT_HP_AT(2) + i] = (unsigned char)(bits >> (8 * i));
    fix_crc(b, len);
    assert_int_equal(fan_optimizer_load_mem(&back, b, len, NULL), FAN_E_FORMAT);
    assert_int_equal(fan_optimizer_load_mem(&back, NULL, len, NULL), FAN_E_NULL);
    assert_int_equal(fan_optimizer_load_mem(NULL, b, len, NULL), FAN_E_NULL);
    free(b);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

/* ---- refusing what does not match ------------------------------------------------------------ */

typedef struct saved {
    unsigned char *bytes;
    size_t len;
} saved;

/* A checkpoint of a short run with a batch iterator over make_data(0). */
static saved batch_checkpoint(void)
{
    fan_dataset *ds = make_data(0);
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    make_handles(FAN_RULE_FA, &OPTIMIZERS[3], RUN_MID_EPOCH, ds, &net, &opt, &it);
    TU_OK_NET(net, fan_train_steps(net, opt, it, 3, NULL, NULL));
    saved sv = {NULL, 0};
    TU_OK(fan_checkpoint_save_mem(NULL, 0, &sv.len, net, opt, it));
    sv.bytes = malloc(sv.len);
    assert_non_null(sv.bytes);
    size_t w = 0;
    TU_OK(fan_checkpoint_save_mem(sv.bytes, sv.len, &w, net, opt, it));
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    fan_dataset_free(ds);
    return sv;
}

static void expect_refused(const saved *sv, const fan_dataset *data, fan_status want,
                           const char *words)
{
    fan_net *net = (fan_net *)&net;
    fan_optimizer *opt = (fan_optimizer *)&opt;
    fan_iter *it = (fan_iter *)&it;
    assert_int_equal(fan_checkpoint_load_mem(sv->bytes, sv->len, &net, &opt, &it, data, NULL),
                     want);
    assert_null(net);
    assert_null(opt);
    assert_null(it);
    if (words != NULL && strstr(fan_dataset_errmsg(data), words) == NULL) {
        print_error("message \"%s\" lacks \"%s\"\n", fan_dataset_errmsg(data), words);
        fail();
    }
}

static void test_a_mismatched_dataset_is_refused_with_a_message_saying_how(void **s)
{
    (void)s;
    saved sv = batch_checkpoint();
    fan_dataset *other_labels = make_data(1);
    expect_refused(&sv, other_labels, FAN_E_INVALID, "other labels");
    fan_dataset *same = make_data(0);
    TU_OK(fan_dataset_set_normalization(same, FAN_NORM_STANDARDIZE, 0.5, 2.0));
    expect_refused(&sv, same, FAN_E_INVALID, "normalised differently");
    fan_dataset *fewer = NULL;
    TU_OK(fan_dataset_subset_first(&fewer, other_labels, N_SAMPLES - 1));
    expect_refused(&sv, fewer, FAN_E_SHAPE, "49 samples");
    float x[N_SAMPLES * DIM];
    int32_t labels[N_SAMPLES];
    tu_fill(x, N_SAMPLES * DIM, 18, -1.0f, 1.0f);
    for (int i = 0; i < N_SAMPLES; i++) labels[i] = i % CLASSES;
    fan_dataset *other_x = NULL;
    TU_OK(fan_dataset_from_arrays(&other_x, x, labels, N_SAMPLES, DIM, CLASSES, NULL));
    expect_refused(&sv, other_x, FAN_E_INVALID, "other samples");
    /* No dataset for a saved batch iterator: refused unless the iterator is skipped. */
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    assert_int_equal(fan_checkpoint_load_mem(sv.bytes, sv.len, &net, &opt, &it, NULL, NULL),
                     FAN_E_NULL);
    assert_null(net);
    TU_OK(fan_checkpoint_load_mem(sv.bytes, sv.len, &net, &opt, NULL, NULL, NULL));
    assert_non_null(net);
    assert_int_equal(fan_optimizer_steps(opt), 3);
    fan_optimizer_free(opt);
    fan_net_free(net);
    /* The matching dataset loads; the new iterator continues at batch 4. */
    fan_dataset *orig = make_data(0);
    TU_OK(fan_checkpoint_load_mem(sv.bytes, sv.len, &net, &opt, &it, orig, NULL));
    assert_int_equal(fan_iter_epoch(it), 0);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    fan_dataset_free(orig);
    fan_dataset_free(other_x);
    fan_dataset_free(fewer);
    fan_dataset_free(same);
    fan_dataset_free(other_labels);
    free(sv.bytes);
}

/* ---- damaged files --------------------------------------------------------------------------- */

/* Offsets of the container (docs/file-format.md). */
#define CK_VERSION_AT 8
#define CK_FLAGS_AT 12
#define CK_HEADER 96

static fan_status load_bytes(const unsigned char *b, size_t len, const fan_dataset *data)
{
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    fan_net *net = (fan_net *)&net;
    fan_optimizer *opt = (fan_optimizer *)&opt;
    fan_iter *it = (fan_iter *)&it;
    fan_status st = fan_checkpoint_load_mem(b, len, &net, &opt, &it, data, &al);
    if (st != FAN_OK) {
        assert_null(net);
        assert_null(opt);
        assert_null(it);
    }
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
    return st;
}

static void test_damaged_checkpoints_get_specific_statuses_and_leak_nothing(void **s)
{
    (void)s;
    saved sv = batch_checkpoint();
    fan_dataset *data = make_data(0);
    unsigned char *b = malloc(sv.len + 1);
    assert_non_null(b);
    memcpy(b, sv.bytes, sv.len);
    assert_int_equal(load_bytes(b, sv.len, data), FAN_OK);
    /* Truncated anywhere: at the header, inside the net, at the last byte. */
    assert_int_equal(load_bytes(b, 50, data), FAN_E_FORMAT);
    assert_int_equal(load_bytes(b, sv.len / 2, data), FAN_E_FORMAT);
    assert_int_equal(load_bytes(b, sv.len - 1, data), FAN_E_FORMAT);
    assert_int_equal(load_bytes(b, 0, data), FAN_E_FORMAT);
    b[sv.len] = 0; /* padded */
    assert_int_equal(load_bytes(b, sv.len + 1, data), FAN_E_FORMAT);
    /* One bit flipped in the middle. */
    b[sv.len / 2] ^= 0x10;
    assert_int_equal(load_bytes(b, sv.len, data), FAN_E_CHECKSUM);
    /* The same flip with the outer checksum redone: the net's own CRC still catches it. */
    fix_crc(b, sv.len);
    assert_int_equal(load_bytes(b, sv.len, data), FAN_E_CHECKSUM);
    memcpy(b, sv.bytes, sv.len);
    b[0] = 'X';
    assert_int_equal(load_bytes(b, sv.len, data), FAN_E_FORMAT);
    memcpy(b, sv.bytes, sv.len);
    put_u32_le(b + CK_VERSION_AT, 2);
    fix_crc(b, sv.len);
    assert_int_equal(load_bytes(b, sv.len, data), FAN_E_VERSION);
    memcpy(b, sv.bytes, sv.len);
    put_u32_le(b + CK_FLAGS_AT, 0x10); /* an unknown part */
    fix_crc(b, sv.len);
    assert_int_equal(load_bytes(b, sv.len, data), FAN_E_FORMAT);
    memcpy(b, sv.bytes, sv.len);
    put_u32_le(b + CK_FLAGS_AT, 3); /* says no fingerprint though a batch iterator follows */
    fix_crc(b, sv.len);
    assert_int_equal(load_bytes(b, sv.len, data), FAN_E_FORMAT);
    memcpy(b, sv.bytes, sv.len);
    b[CK_HEADER] = 'Y'; /* the net's magic, outer checksum redone */
    fix_crc(b, sv.len);
    assert_int_equal(load_bytes(b, sv.len, data), FAN_E_FORMAT);
    assert_int_equal(fan_checkpoint_load_mem(NULL, 1, NULL, NULL, NULL, NULL, NULL), FAN_E_NULL);
    free(b);
    fan_dataset_free(data);
    free(sv.bytes);
}

static uint64_t get_u64_le(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void test_a_small_checkpoint_declaring_huge_iterator_buffers_is_refused(void **s)
{
    (void)s;
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    make_handles(FAN_RULE_FA, &OPTIMIZERS[0], RUN_NOISE, NULL, &net, &opt, &it);
    size_t len = 0, w = 0;
    TU_OK(fan_checkpoint_save_mem(NULL, 0, &len, net, NULL, it));
    unsigned char *b = malloc(len);
    assert_non_null(b);
    TU_OK(fan_checkpoint_save_mem(b, len, &w, net, NULL, it));
    /* The noise iterator's batch (offset 32 of its state) becomes 10^8 rows of 16 floats:
       6.4 GB of buffers from a file of a few kilobytes. */
    const size_t iter_at = CK_HEADER + (size_t)get_u64_le(b + 16), iter_len = get_u64_le(b + 32);
    const uint64_t rows = 100000000u;
    for (int i = 0; i < 8; i++) b[iter_at + 32 + (size_t)i] = (unsigned char)(rows >> (8 * i));
    fix_crc(b + iter_at, iter_len);
    fix_crc(b, len);
    fan_net *back = NULL;
    fan_iter *it2 = NULL;
    assert_int_equal(fan_checkpoint_load_mem(b, len, &back, NULL, &it2, NULL, NULL), FAN_E_LIMIT);
    assert_null(back);
    /* Without asking for the iterator, the rest loads. */
    TU_OK(fan_checkpoint_load_mem(b, len, &back, NULL, NULL, NULL, NULL));
    fan_net_free(back);
    /* An iterator that does not feed this net is not saved with it. */
    fan_iter *other = NULL;
    TU_OK(fan_iter_create_noise(&other, DIM + 1, CLASSES, BATCH, 1, NULL));
    assert_int_equal(fan_checkpoint_save_mem(NULL, 0, &len, net, opt, other), FAN_E_SHAPE);
    assert_non_null(strstr(fan_net_errmsg(net), "do not fit"));
    fan_iter_free(other);
    free(b);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_checkpoint_files_are_atomic_and_missing_files_fail_with_io(void **s)
{
    (void)s;
    char *dir = temp_dir();
    char path[256], bad[300];
    snprintf(path, sizeof path, "%s/a.ckpt", dir);
    snprintf(bad, sizeof bad, "%s/no/such/dir/a.ckpt", dir);
    fan_net *net = small_net();
    assert_int_equal(fan_checkpoint_save(bad, net, NULL, NULL), FAN_E_IO);
    assert_non_null(strstr(fan_net_errmsg(net), "no/such/dir"));
    assert_int_equal(fan_checkpoint_save(NULL, net, NULL, NULL), FAN_E_NULL);
    assert_int_equal(fan_checkpoint_save(path, NULL, NULL, NULL), FAN_E_NULL);
    TU_OK_NET(net, fan_checkpoint_save(path, net, NULL, NULL));
    fan_net *back = NULL;
    fan_optimizer *opt = (fan_optimizer *)&opt;
    fan_iter *it = (fan_iter *)&it;
    /* Neither an optimizer nor an iterator was saved: both outputs come back NULL. */
    TU_OK(fan_checkpoint_load(path, &back, &opt, &it, NULL, NULL));
    assert_non_null(back);
    assert_null(opt);
    assert_null(it);
    fan_net_free(back);
    assert_int_equal(fan_checkpoint_load(bad, &back, NULL, NULL, NULL, NULL), FAN_E_IO);
    assert_null(back);
    /* An optimizer made for another net is not saved with this one. */
    const size_t other[] = {DIM, 7, CLASSES};
    fan_net *net2 = NULL;
    TU_OK(fan_net_create(&net2, other, 3, NULL));
    fan_optimizer *wrong = NULL;
    TU_OK(fan_optimizer_create(&wrong, FAN_OPTIMIZER_SGD, net2, NULL));
    assert_int_equal(fan_checkpoint_save(path, net, wrong, NULL), FAN_E_SHAPE);
    fan_optimizer_free(wrong);
    fan_net_free(net2);
    /* The earlier good file is still there and still loads. */
    TU_OK(fan_checkpoint_load(path, &back, NULL, NULL, NULL, NULL));
    fan_net_free(back);
    fan_net_free(net);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

static void test_checkpoint_load_survives_every_allocation_failure(void **s)
{
    (void)s;
    saved sv = batch_checkpoint();
    fan_dataset *data = make_data(0);
    for (size_t n = 1;; n++) {
        tu_counter c = {0};
        c.fail_at = n;
        fan_allocator al = tu_allocator(&c);
        fan_net *net = NULL;
        fan_optimizer *opt = NULL;
        fan_iter *it = NULL;
        fan_status st = fan_checkpoint_load_mem(sv.bytes, sv.len, &net, &opt, &it, data, &al);
        if (st == FAN_OK) {
            fan_iter_free(it);
            fan_optimizer_free(opt);
            fan_net_free(net);
            assert_int_equal(c.live_blocks, 0);
            assert_true(n > 3);
            break;
        }
        assert_int_equal(st, FAN_E_NOMEM);
        assert_null(net);
        assert_null(opt);
        assert_null(it);
        assert_int_equal(c.live_blocks, 0);
        assert_true(n < 200);
    }
    fan_dataset_free(data);
    free(sv.bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_at_epoch_boundary_is_bit_identical_for_every_rule_and_optimizer),
        cmocka_unit_test(test_resume_mid_epoch_is_bit_identical_for_every_rule_and_optimizer),
        cmocka_unit_test(test_resume_inside_a_later_epoch_then_fan_train_is_bit_identical),
        cmocka_unit_test(test_resume_of_noise_pretraining_is_bit_identical_for_every_rule_and_optimizer),
        cmocka_unit_test(test_resume_through_a_file_is_bit_identical),
        cmocka_unit_test(test_checkpoints_written_by_the_callback_resume_with_the_epoch_count),
        cmocka_unit_test(test_iterator_state_continues_the_same_batches_with_noise_settings),
        cmocka_unit_test(test_iterator_state_mid_epoch_restores_order_position_and_epoch_count),
        cmocka_unit_test(test_iterator_state_is_refused_by_an_unlike_iterator_which_stays_unchanged),
        cmocka_unit_test(test_optimizer_state_round_trips_hyperparameters_steps_and_moments),
        cmocka_unit_test(test_optimizer_state_of_an_older_library_loads_missing_values_as_defaults),
        cmocka_unit_test(test_optimizer_state_damage_gives_specific_statuses),
        cmocka_unit_test(test_a_mismatched_dataset_is_refused_with_a_message_saying_how),
        cmocka_unit_test(test_damaged_checkpoints_get_specific_statuses_and_leak_nothing),
        cmocka_unit_test(test_a_small_checkpoint_declaring_huge_iterator_buffers_is_refused),
        cmocka_unit_test(test_checkpoint_files_are_atomic_and_missing_files_fail_with_io),
        cmocka_unit_test(test_checkpoint_load_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
