/* test_schedule.c - learning-rate schedules: the rates against their closed forms, the rate each
   step really uses (fan_progress.lr and the weights it produces), settings changed by a callback
   between steps, validation of the settings, and schedules surviving a checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

#define PI 3.14159265358979323846
#define DIM 5
#define CLASSES 3
#define N 40
#define BATCH 8

static fan_net *make_net(fan_rule rule)
{
    const size_t sizes[] = {DIM, 6, 4, CLASSES};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 4, NULL));
    TU_OK_NET(net, fan_net_set_rule(net, rule));
    TU_OK_NET(net, fan_net_init(net, 3, 4));
    return net;
}

static fan_dataset *make_data(void)
{
    float x[N * DIM];
    int32_t labels[N];
    tu_fill(x, N * DIM, 5, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) labels[i] = (i * 7) % CLASSES;
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, labels, N, DIM, CLASSES, NULL));
    return ds;
}

static void set(fan_optimizer *opt, fan_optimizer_param p, double v)
{
    tu_assert_ok(fan_optimizer_set(opt, p, v), fan_optimizer_errmsg(opt), "fan_optimizer_set",
                 __FILE__, __LINE__);
}

static double scheduled(const fan_optimizer *opt, uint64_t t)
{
    double lr = -1.0;
    TU_OK(fan_optimizer_scheduled_lr(opt, t, &lr));
    return lr;
}

/* ---- closed forms ---------------------------------------------------------------------------- */

static void test_step_decay_multiplies_by_gamma_every_step_size_steps(void **s)
{
    (void)s;
    fan_net *net = make_net(FAN_RULE_FA);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    set(opt, FAN_OPT_LR, 0.3);
    set(opt, FAN_OPT_SCHEDULE, FAN_SCHEDULE_STEP);
    set(opt, FAN_OPT_STEP_SIZE, 7);
    set(opt, FAN_OPT_GAMMA, 0.6);
    double expect = 0.3;
    for (uint64_t t = 0; t < 100; t++) {
        if (t > 0 && t % 7 == 0) expect *= 0.6;
        TU_CLOSE(scheduled(opt, t), expect, 1e-13, 0.0);
    }
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_exponential_decay_is_gamma_to_the_step(void **s)
{
    (void)s;
    fan_net *net = make_net(FAN_RULE_FA);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
    set(opt, FAN_OPT_LR, 0.002);
    set(opt, FAN_OPT_SCHEDULE, FAN_SCHEDULE_EXPONENTIAL);
    set(opt, FAN_OPT_GAMMA, 0.97);
    double expect = 0.002;
    for (uint64_t t = 0; t < 200; t++) {
        TU_CLOSE(scheduled(opt, t), expect, 1e-12, 0.0);
        expect *= 0.97;
    }
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_cosine_goes_from_lr_to_lr_min_in_t_max_steps_and_stays(void **s)
{
    (void)s;
    fan_net *net = make_net(FAN_RULE_FA);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    set(opt, FAN_OPT_LR, 0.1);
    set(opt, FAN_OPT_SCHEDULE, FAN_SCHEDULE_COSINE);
    set(opt, FAN_OPT_T_MAX, 50);
    set(opt, FAN_OPT_LR_MIN, 0.001);
    TU_CLOSE(scheduled(opt, 0), 0.1, 0.0, 1e-15);
    TU_CLOSE(scheduled(opt, 25), (0.1 + 0.001) / 2, 1e-14, 0.0);
    TU_CLOSE(scheduled(opt, 50), 0.001, 1e-14, 0.0);
    TU_CLOSE(scheduled(opt, 1000), 0.001, 1e-14, 0.0);
    for (uint64_t t = 0; t <= 50; t++)
        TU_CLOSE(scheduled(opt, t), 0.001 + 0.099 * 0.5 * (1.0 + cos(PI * (double)t / 50.0)),
                 1e-13, 1e-16);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_warmup_rises_linearly_then_hands_over_to_the_schedule(void **s)
{
    (void)s;
    fan_net *net = make_net(FAN_RULE_FA);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAMW, net, NULL));
    set(opt, FAN_OPT_LR, 0.01);
    set(opt, FAN_OPT_WARMUP_STEPS, 10);
    /* Alone: a ramp to lr, then lr. */
    for (uint64_t t = 0; t < 10; t++) TU_CLOSE(scheduled(opt, t), 0.01 * (double)(t + 1) / 10.0, 1e-14, 0.0);
    TU_CLOSE(scheduled(opt, 10), 0.01, 0.0, 0.0);
    TU_CLOSE(scheduled(opt, 500), 0.01, 0.0, 0.0);
    /* With cosine: the cosine starts where the warm-up ends. */
    set(opt, FAN_OPT_SCHEDULE, FAN_SCHEDULE_COSINE);
    set(opt, FAN_OPT_T_MAX, 20);
    TU_CLOSE(scheduled(opt, 9), 0.01, 1e-14, 0.0);
    TU_CLOSE(scheduled(opt, 10), 0.01, 1e-14, 0.0);
    TU_CLOSE(scheduled(opt, 20), 0.005, 1e-14, 0.0);
    TU_CLOSE(scheduled(opt, 30), 0.0, 0.0, 1e-18);
    /* With step decay. */
    set(opt, FAN_OPT_SCHEDULE, FAN_SCHEDULE_STEP);
    set(opt, FAN_OPT_STEP_SIZE, 5);
    set(opt, FAN_OPT_GAMMA, 0.5);
    TU_CLOSE(scheduled(opt, 14), 0.01, 0.0, 0.0);
    TU_CLOSE(scheduled(opt, 15), 0.005, 0.0, 0.0);
    TU_CLOSE(scheduled(opt, 24), 0.0025, 0.0, 0.0);
    TU_CLOSE(scheduled(opt, 29), 0.00125, 0.0, 0.0);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_schedule_settings_are_validated(void **s)
{
    (void)s;
    fan_net *net = make_net(FAN_RULE_FA);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_SCHEDULE, 4), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_SCHEDULE, 1.5), FAN_E_INVALID);
    assert_non_null(strstr(fan_optimizer_errmsg(opt), "whole number"));
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_STEP_SIZE, 0), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_STEP_SIZE, 2.5), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_T_MAX, 0), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_GAMMA, 1.5), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_GAMMA, NAN), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_WARMUP_STEPS, -1), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_LR_MIN, -0.1), FAN_E_INVALID);
    double lo, hi, def;
    TU_OK(fan_optimizer_param_bounds(FAN_OPT_SCHEDULE, &lo, &hi, &def));
    assert_true(lo == 0.0 && hi == 3.0 && def == FAN_SCHEDULE_CONSTANT);
    TU_OK(fan_optimizer_param_bounds(FAN_OPT_GAMMA, &lo, &hi, &def));
    assert_true(def == 0.1);
    double v;
    assert_int_equal(fan_optimizer_scheduled_lr(NULL, 0, &v), FAN_E_NULL);
    assert_int_equal(fan_optimizer_scheduled_lr(opt, 0, NULL), FAN_E_NULL);
    /* Nothing was changed by the refusals. */
    TU_OK(fan_optimizer_get(opt, FAN_OPT_SCHEDULE, &v));
    assert_true(v == FAN_SCHEDULE_CONSTANT);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

/* ---- what training really uses ---------------------------------------------------------------- */

typedef struct lr_log {
    double lr[64];
    size_t n;
    fan_optimizer *opt; /* for the callback that changes settings */
} lr_log;

static int record_lr(const fan_progress *p, void *user)
{
    lr_log *log = user;
    assert_true(p->struct_size >= offsetof(fan_progress, lr) + sizeof p->lr);
    if (log->n < 64) log->lr[log->n++] = p->lr;
    return 0;
}

static void test_progress_reports_the_rate_of_each_step_and_reset_restarts_it(void **s)
{
    (void)s;
    fan_dataset *ds = make_data();
    fan_net *net = make_net(FAN_RULE_FA);
    fan_optimizer *opt = NULL;
    fan_iter *it = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
    set(opt, FAN_OPT_LR, 0.004);
    set(opt, FAN_OPT_WARMUP_STEPS, 4);
    set(opt, FAN_OPT_SCHEDULE, FAN_SCHEDULE_COSINE);
    set(opt, FAN_OPT_T_MAX, 10);
    TU_OK(fan_iter_create_batches(&it, ds, BATCH, 1, NULL));
    lr_log log = {{0}, 0, NULL};
    TU_OK_NET(net, fan_train(net, opt, it, 3, record_lr, &log)); /* 15 steps */
    assert_int_equal(log.n, 15);
    for (size_t t = 0; t < 15; t++) {
        const double expect = t < 4 ? 0.004 * (double)(t + 1) / 4.0
                              : 0.002 * (1.0 + cos(PI * (double)(t < 14 ? t - 4 : 10) / 10.0));
        TU_CLOSE(log.lr[t], expect, 1e-13, 1e-18);
    }
    TU_OK(fan_optimizer_reset(opt));
    log.n = 0;
    TU_OK_NET(net, fan_train_steps(net, opt, it, 2, record_lr, &log));
    TU_CLOSE(log.lr[0], 0.001, 1e-15, 0.0);
    TU_CLOSE(log.lr[1], 0.002, 1e-15, 0.0);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    fan_dataset_free(ds);
}

/* Raw bytes of every W, b and B: equal bytes, bit-identical nets. */
static unsigned char *net_bytes(const fan_net *net, size_t *len)
{
    TU_OK(fan_net_save_mem(net, NULL, 0, len));
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    size_t w = 0;
    TU_OK(fan_net_save_mem(net, b, *len, &w));
    return b;
}

/* Trains `steps` batches of `it` by hand, setting the constant learning rate lr_of(t) before
   step t. */
static void train_by_hand(fan_net *net, fan_optimizer *opt, fan_iter *it, size_t steps,
                          double (*lr_of)(uint64_t))
{
    for (size_t t = 0; t < steps;) {
        const float *x = NULL;
        const int32_t *labels = NULL;
        size_t n = 0;
        fan_status st = fan_iter_next(it, &x, &labels, NULL, &n);
        if (st == FAN_DONE) continue;
        TU_OK(st);
        set(opt, FAN_OPT_LR, lr_of(t));
        TU_OK_NET(net, fan_net_train_batch(net, opt, x, labels, n, NULL));
        t++;
    }
}

/* Powers of two: the closed form is exact in double, so both runs see the same rates. */
static double step_decay_lr(uint64_t t) { return 0.25 * ldexp(1.0, -(int)(t / 3)); }

static void test_every_optimizer_and_kp_use_the_scheduled_rate_in_the_update(void **s)
{
    (void)s;
    const fan_optimizer_kind kinds[] = {FAN_OPTIMIZER_SGD, FAN_OPTIMIZER_ADAM,
                                        FAN_OPTIMIZER_ADAMW, FAN_OPTIMIZER_RMSPROP};
    for (size_t k = 0; k < 4; k++) {
        fan_dataset *ds = make_data();
        fan_net *a = make_net(FAN_RULE_KP), *b = make_net(FAN_RULE_KP);
        fan_optimizer *oa = NULL, *ob = NULL;
        fan_iter *ia = NULL, *ib = NULL;
        TU_OK(fan_optimizer_create(&oa, kinds[k], a, NULL));
        TU_OK(fan_optimizer_create(&ob, kinds[k], b, NULL));
        /* Weight decay: AdamW's decoupled decay and KP's decay of B both scale with the rate. */
        set(oa, FAN_OPT_WEIGHT_DECAY, 0.01);
        set(ob, FAN_OPT_WEIGHT_DECAY, 0.01);
        set(oa, FAN_OPT_LR, 0.25);
        set(oa, FAN_OPT_SCHEDULE, FAN_SCHEDULE_STEP);
        set(oa, FAN_OPT_STEP_SIZE, 3);
        set(oa, FAN_OPT_GAMMA, 0.5);
        TU_OK(fan_iter_create_batches(&ia, ds, BATCH, 2, NULL));
        TU_OK(fan_iter_create_batches(&ib, ds, BATCH, 2, NULL));
        TU_OK_NET(a, fan_train_steps(a, oa, ia, 12, NULL, NULL));
        train_by_hand(b, ob, ib, 12, step_decay_lr);
        size_t la, lb;
        unsigned char *ba = net_bytes(a, &la), *bb = net_bytes(b, &lb);
        assert_int_equal(la, lb);
        if (memcmp(ba, bb, la) != 0) {
            print_error("%s: the scheduled run differs from the hand-set rates\n",
                        fan_optimizer_kind_name(kinds[k]));
            fail();
        }
        free(ba);
        free(bb);
        fan_iter_free(ia);
        fan_iter_free(ib);
        fan_optimizer_free(oa);
        fan_optimizer_free(ob);
        fan_net_free(a);
        fan_net_free(b);
        fan_dataset_free(ds);
    }
}

static double callback_lr(uint64_t t) { return 0.01 * (double)(t + 1); }

/* Sets the learning rate of the next step from the callback. */
static int change_lr(const fan_progress *p, void *user)
{
    lr_log *log = user;
    if (log->n < 64) log->lr[log->n++] = p->lr;
    TU_OK(fan_optimizer_set(log->opt, FAN_OPT_LR, callback_lr(p->step)));
    return 0;
}

static void test_a_callback_may_change_optimizer_settings_between_steps(void **s)
{
    (void)s;
    fan_dataset *ds = make_data();
    fan_net *a = make_net(FAN_RULE_FA), *b = make_net(FAN_RULE_FA);
    fan_optimizer *oa = NULL, *ob = NULL;
    fan_iter *ia = NULL, *ib = NULL;
    TU_OK(fan_optimizer_create(&oa, FAN_OPTIMIZER_SGD, a, NULL));
    TU_OK(fan_optimizer_create(&ob, FAN_OPTIMIZER_SGD, b, NULL));
    set(oa, FAN_OPT_MOMENTUM, 0.9);
    set(ob, FAN_OPT_MOMENTUM, 0.9);
    set(oa, FAN_OPT_LR, callback_lr(0));
    TU_OK(fan_iter_create_batches(&ia, ds, BATCH, 2, NULL));
    TU_OK(fan_iter_create_batches(&ib, ds, BATCH, 2, NULL));
    lr_log log = {{0}, 0, oa};
    TU_OK_NET(a, fan_train(a, oa, ia, 2, change_lr, &log));
    assert_int_equal(log.n, 10);
    /* Each step ran with the rate the callback set after the step before. */
    for (size_t t = 0; t < log.n; t++) TU_CLOSE(log.lr[t], callback_lr(t), 0.0, 0.0);
    train_by_hand(b, ob, ib, 10, callback_lr);
    size_t la, lb;
    unsigned char *ba = net_bytes(a, &la), *bb = net_bytes(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
    fan_iter_free(ia);
    fan_iter_free(ib);
    fan_optimizer_free(oa);
    fan_optimizer_free(ob);
    fan_net_free(a);
    fan_net_free(b);
    fan_dataset_free(ds);
}

static void test_a_schedule_continues_exactly_after_a_checkpoint(void **s)
{
    (void)s;
    unsigned char *result[2];
    size_t len[2];
    for (int resume = 0; resume < 2; resume++) {
        fan_dataset *ds = make_data();
        fan_net *net = make_net(FAN_RULE_FA);
        fan_optimizer *opt = NULL;
        fan_iter *it = NULL;
        TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAMW, net, NULL));
        set(opt, FAN_OPT_LR, 0.01);
        set(opt, FAN_OPT_WEIGHT_DECAY, 0.01);
        set(opt, FAN_OPT_WARMUP_STEPS, 5);
        set(opt, FAN_OPT_SCHEDULE, FAN_SCHEDULE_COSINE);
        set(opt, FAN_OPT_T_MAX, 12);
        TU_OK(fan_iter_create_batches(&it, ds, BATCH, 2, NULL));
        TU_OK_NET(net, fan_train_steps(net, opt, it, 3, NULL, NULL)); /* inside the warm-up */
        if (resume) {
            size_t n = 0, w = 0;
            TU_OK(fan_checkpoint_save_mem(NULL, 0, &n, net, opt, it));
            unsigned char *ck = malloc(n);
            assert_non_null(ck);
            TU_OK(fan_checkpoint_save_mem(ck, n, &w, net, opt, it));
            fan_iter_free(it);
            fan_optimizer_free(opt);
            fan_net_free(net);
            TU_OK(fan_checkpoint_load_mem(ck, n, &net, &opt, &it, ds, NULL));
            free(ck);
            double v = 0.0;
            TU_OK(fan_optimizer_get(opt, FAN_OPT_T_MAX, &v));
            assert_true(v == 12.0);
        }
        TU_OK_NET(net, fan_train_steps(net, opt, it, 14, NULL, NULL));
        result[resume] = net_bytes(net, &len[resume]);
        fan_iter_free(it);
        fan_optimizer_free(opt);
        fan_net_free(net);
        fan_dataset_free(ds);
    }
    assert_int_equal(len[0], len[1]);
    assert_memory_equal(result[0], result[1], len[0]);
    free(result[0]);
    free(result[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_decay_multiplies_by_gamma_every_step_size_steps),
        cmocka_unit_test(test_exponential_decay_is_gamma_to_the_step),
        cmocka_unit_test(test_cosine_goes_from_lr_to_lr_min_in_t_max_steps_and_stays),
        cmocka_unit_test(test_warmup_rises_linearly_then_hands_over_to_the_schedule),
        cmocka_unit_test(test_schedule_settings_are_validated),
        cmocka_unit_test(test_progress_reports_the_rate_of_each_step_and_reset_restarts_it),
        cmocka_unit_test(test_every_optimizer_and_kp_use_the_scheduled_rate_in_the_update),
        cmocka_unit_test(test_a_callback_may_change_optimizer_settings_between_steps),
        cmocka_unit_test(test_a_schedule_continues_exactly_after_a_checkpoint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
