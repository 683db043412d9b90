/* test_optimizer.c - update rules against double-precision references of PyTorch's formulas,
   hyperparameter validation and bounds, and the step's preconditions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

#define NP 4 /* a 3-1 net: 3 weights and 1 bias */
#define STEPS 6

typedef struct ref_opt {
    fan_optimizer_kind kind;
    double lr, mu, wd, b1, b2, eps, alpha;
    int nesterov;
    double m[NP], v[NP];
    int t;
} ref_opt;

/* One step of the reference on parameters p with gradient g, following torch.optim. */
static void ref_step(ref_opt *o, double *p, const double *g)
{
    o->t++;
    for (int i = 0; i < NP; i++) {
        double d = g[i];
        switch (o->kind) {
        case FAN_OPTIMIZER_SGD:
            d += o->wd * p[i];
            if (o->mu != 0) {
                o->m[i] = o->t == 1 ? d : o->mu * o->m[i] + d;
                d = o->nesterov ? d + o->mu * o->m[i] : o->m[i];
            }
            p[i] -= o->lr * d;
            break;
        case FAN_OPTIMIZER_ADAM:
        case FAN_OPTIMIZER_ADAMW:
            if (o->kind == FAN_OPTIMIZER_ADAMW)
                p[i] *= 1 - o->lr * o->wd;
            else
                d += o->wd * p[i];
            o->m[i] = o->b1 * o->m[i] + (1 - o->b1) * d;
            o->v[i] = o->b2 * o->v[i] + (1 - o->b2) * d * d;
            {
                double mh = o->m[i] / (1 - pow(o->b1, o->t));
                double vh = o->v[i] / (1 - pow(o->b2, o->t));
                p[i] -= o->lr * mh / (sqrt(vh) + o->eps);
            }
            break;
        case FAN_OPTIMIZER_RMSPROP:
            d += o->wd * p[i];
            o->v[i] = o->alpha * o->v[i] + (1 - o->alpha) * d * d;
            {
                double u = d / (sqrt(o->v[i]) + o->eps);
                if (o->mu > 0) {
                    o->m[i] = o->mu * o->m[i] + u;
                    u = o->m[i];
                }
                p[i] -= o->lr * u;
            }
            break;
        }
    }
}

static void run_case(fan_optimizer_kind kind, double lr, double mu, int nesterov, double wd)
{
    const size_t sizes[] = {3, 1};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    TU_OK(fan_net_create(&net, sizes, 2, NULL));
    TU_OK(fan_optimizer_create(&opt, kind, net, NULL));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, lr));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_MOMENTUM, mu));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_NESTEROV, nesterov));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_WEIGHT_DECAY, wd));
    ref_opt ref = {kind, lr, mu, wd, 0.9, 0.999, 1e-8, 0.99, nesterov, {0}, {0}, 0};
    float w[3] = {0.5f, -0.25f, 0.125f}, b = 0.75f;
    TU_OK(fan_net_set_weights(net, 0, w, 3, &b, 1));
    double p[NP] = {0.5, -0.25, 0.125, 0.75};
    for (int s = 0; s < STEPS; s++) {
        /* Gradients that change sign and size, exactly representable in float. */
        float gw[3] = {0.5f - 0.25f * (float)s, 0.125f * (float)(s % 3), -1.0f + 0.5f * (float)s},
              gb = s % 2 ? 0.25f : -0.5f;
        TU_OK(fan_net_set_gradients(net, 0, gw, 3, &gb, 1));
        TU_OK(fan_optimizer_step(opt, net));
        double g[NP] = {gw[0], gw[1], gw[2], gb};
        ref_step(&ref, p, g);
    }
    TU_OK(fan_net_get_weights(net, 0, w, 3, &b, 1));
    for (int i = 0; i < 3; i++) TU_CLOSE(w[i], p[i], 1e-5, 1e-7);
    TU_CLOSE(b, p[3], 1e-5, 1e-7);
    assert_int_equal(fan_optimizer_steps(opt), STEPS);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_sgd_matches_reference(void **state)
{
    (void)state;
    run_case(FAN_OPTIMIZER_SGD, 0.1, 0, 0, 0);
    run_case(FAN_OPTIMIZER_SGD, 0.1, 0, 0, 0.01);
}

static void test_sgd_momentum_and_nesterov_match_reference(void **state)
{
    (void)state;
    run_case(FAN_OPTIMIZER_SGD, 0.05, 0.9, 0, 0);
    run_case(FAN_OPTIMIZER_SGD, 0.05, 0.9, 1, 0.001);
}

static void test_adam_matches_reference(void **state)
{
    (void)state;
    run_case(FAN_OPTIMIZER_ADAM, 0.01, 0, 0, 0);
    run_case(FAN_OPTIMIZER_ADAM, 0.001, 0, 0, 0.1);
}

static void test_adamw_decouples_weight_decay(void **state)
{
    (void)state;
    run_case(FAN_OPTIMIZER_ADAMW, 0.01, 0, 0, 0.1);
}

static void test_rmsprop_matches_reference(void **state)
{
    (void)state;
    run_case(FAN_OPTIMIZER_RMSPROP, 0.01, 0, 0, 0);
    run_case(FAN_OPTIMIZER_RMSPROP, 0.01, 0.5, 0, 0.01);
}

static void test_parameters_have_bounds_and_defaults(void **state)
{
    (void)state;
    const size_t sizes[] = {3, 2};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    TU_OK(fan_net_create(&net, sizes, 2, NULL));
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
    const double defaults[] = {0.01, 0, 0, 0, 0.9, 0.999, 1e-8, 0.99};
    for (int p = 0; p <= FAN_OPT_ALPHA; p++) {
        double lo, hi, def, v;
        TU_OK(fan_optimizer_param_bounds((fan_optimizer_param)p, &lo, &hi, &def));
        TU_CLOSE(def, defaults[p], 1e-12, 0);
        TU_OK(fan_optimizer_get(opt, (fan_optimizer_param)p, &v));
        TU_CLOSE(v, def, 1e-12, 0);
        assert_int_equal(fan_optimizer_set(opt, (fan_optimizer_param)p, hi * 2 + 1), FAN_E_INVALID);
        assert_int_equal(fan_optimizer_set(opt, (fan_optimizer_param)p, -1), FAN_E_INVALID);
        assert_int_equal(fan_optimizer_set(opt, (fan_optimizer_param)p, NAN), FAN_E_INVALID);
        TU_OK(fan_optimizer_get(opt, (fan_optimizer_param)p, &v));
        TU_CLOSE(v, def, 1e-12, 0); /* unchanged after the failures */
    }
    assert_int_equal(fan_optimizer_set(opt, FAN_OPT_NESTEROV, 0.5), FAN_E_INVALID);
    assert_int_equal(fan_optimizer_param_bounds((fan_optimizer_param)99, NULL, NULL, NULL),
                     FAN_E_INVALID);
    assert_int_equal(fan_optimizer_set(opt, (fan_optimizer_param)99, 1), FAN_E_INVALID);
    assert_true(strlen(fan_optimizer_errmsg(opt)) > 0);
    assert_int_equal(fan_optimizer_get_kind(opt), FAN_OPTIMIZER_ADAM);
    fan_optimizer_free(opt);
    fan_optimizer_free(NULL);
    fan_net_free(net);
}

static void test_step_needs_gradients_and_matching_net(void **state)
{
    (void)state;
    const size_t a[] = {3, 2}, b[] = {3, 3};
    fan_net *na = NULL, *nb = NULL;
    fan_optimizer *opt = NULL;
    TU_OK(fan_net_create(&na, a, 2, NULL));
    TU_OK(fan_net_create(&nb, b, 2, NULL));
    assert_int_equal(fan_optimizer_create(&opt, (fan_optimizer_kind)9, na, NULL), FAN_E_INVALID);
    assert_null(opt);
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, na, NULL));
    assert_int_equal(fan_optimizer_step(opt, na), FAN_E_STATE);
    assert_int_equal(fan_optimizer_step(opt, nb), FAN_E_SHAPE);
    assert_int_equal(fan_optimizer_step(opt, NULL), FAN_E_NULL);
    float x[3] = {1, 2, 3};
    int32_t y = 1;
    assert_int_equal(fan_net_train_batch(nb, opt, x, &y, 1, NULL), FAN_E_SHAPE);
    TU_OK(fan_net_train_batch(na, opt, x, &y, 1, NULL));
    assert_int_equal(fan_optimizer_steps(opt), 1);
    TU_OK(fan_optimizer_reset(opt));
    assert_int_equal(fan_optimizer_steps(opt), 0);
    fan_optimizer_free(opt);
    fan_net_free(na);
    fan_net_free(nb);
}

static void test_optimizer_creation_survives_allocation_failures(void **state)
{
    (void)state;
    const size_t sizes[] = {3, 2};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 2, NULL));
    for (fan_optimizer_kind k = FAN_OPTIMIZER_SGD; k <= FAN_OPTIMIZER_RMSPROP; k++) {
        for (size_t n = 1;; n++) {
            tu_counter c = {0};
            c.fail_at = n;
            fan_allocator al = tu_allocator(&c);
            fan_optimizer *opt = NULL;
            fan_status st = fan_optimizer_create(&opt, k, net, &al);
            fan_optimizer_free(opt);
            assert_int_equal(c.live_blocks, 0);
            if (st == FAN_OK) break;
            assert_int_equal(st, FAN_E_NOMEM);
            assert_null(opt);
        }
    }
    fan_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_matches_reference),
        cmocka_unit_test(test_sgd_momentum_and_nesterov_match_reference),
        cmocka_unit_test(test_adam_matches_reference),
        cmocka_unit_test(test_adamw_decouples_weight_decay),
        cmocka_unit_test(test_rmsprop_matches_reference),
        cmocka_unit_test(test_parameters_have_bounds_and_defaults),
        cmocka_unit_test(test_step_needs_gradients_and_matching_net),
        cmocka_unit_test(test_optimizer_creation_survives_allocation_failures),
    };
    return cmocka_run_group_tests_name("optimizer", tests, NULL, NULL);
}
