/* test_scaleout.c - the core's hooks for scale-out (mpi/ builds on them): the parameter and
   gradient views, the gradient hook between gradients and update (including a refusing hook
   that must leave everything as it was), and iterator sharding (the parts of every step are
   the single-process batch, in order, for even and uneven counts), ending with data-parallel
   training simulated in one process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static fan_net *make_net(fan_rule rule, uint64_t seed)
{
    const size_t sizes[] = {6, 5, 4, 3};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 4, NULL));
    TU_OK_NET(net, fan_net_set_rule(net, rule));
    TU_OK_NET(net, fan_net_init(net, seed, seed + 1));
    return net;
}

/* A batch of n rows for make_net's shape, drawn from seed. */
typedef struct batch {
    float x[64 * 6];
    int32_t y[64];
    size_t n;
} batch;

static void make_batch(batch *b, size_t n, uint64_t seed)
{
    assert_true(n <= 64);
    tu_fill(b->x, n * 6, seed, -2.0f, 2.0f);
    for (size_t i = 0; i < n; i++) b->y[i] = (int32_t)((i * 7 + seed) % 3);
    b->n = n;
}

/* The whole net as bytes (settings, W, b, B, rule state): equal bytes, equal nets. */
static unsigned char *net_bytes(const fan_net *net, size_t *len)
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
    size_t la = 0, lb = 0;
    unsigned char *ba = net_bytes(a, &la), *bb = net_bytes(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(ba);
    free(bb);
}

/* All gradients of a net through the copying API, in the view's layout. */
static float *copy_gradients(const fan_net *net)
{
    float *g = calloc(fan_net_num_params(net), sizeof *g);
    size_t off = 0;
    for (size_t l = 0; l < fan_net_num_layers(net); l++) {
        const size_t wn = fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l);
        const size_t bn = fan_net_layer_outputs(net, l);
        TU_OK(fan_net_get_gradients(net, l, g + off, wn, g + off + wn, bn));
        off += wn + bn;
    }
    return g;
}

/* ---- views -------------------------------------------------------------------------------- */

static void test_parameter_view_is_w_then_b_layer_by_layer(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 3);
    float *p = NULL;
    size_t len = 0;
    TU_OK(fan_net_parameters(net, &p, &len));
    assert_int_equal(len, fan_net_num_params(net));
    assert_int_equal(len, 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3);
    TU_OK(fan_net_set_weights(net, 1, NULL, 0, (const float[]){1, 2, 3, 4}, 4));
    size_t off = 0;
    for (size_t l = 0; l < 3; l++) {
        const size_t wn = fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l);
        const size_t bn = fan_net_layer_outputs(net, l);
        float w[30], b[5];
        TU_OK(fan_net_get_weights(net, l, w, wn, b, bn));
        assert_memory_equal(p + off, w, wn * sizeof *w);
        assert_memory_equal(p + off + wn, b, bn * sizeof *b);
        off += wn + bn;
    }
    assert_true(p[6 * 5 + 5 + 5 * 4 + 2] == 3.0f); /* b_1[2] */
    fan_net_free(net);
}

static void test_writes_through_the_parameter_view_reach_the_net(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_BP, 4);
    float *p = NULL;
    size_t len = 0;
    TU_OK(fan_net_parameters(net, &p, &len));
    for (size_t i = 0; i < len; i++) p[i] = (float)i * 0.001f;
    float w[12], b[3];
    TU_OK(fan_net_get_weights(net, 2, w, 12, b, 3));
    const size_t off = 6 * 5 + 5 + 5 * 4 + 4;
    for (size_t i = 0; i < 12; i++) assert_true(w[i] == (float)(off + i) * 0.001f);
    for (size_t i = 0; i < 3; i++) assert_true(b[i] == (float)(off + 12 + i) * 0.001f);
    fan_net_free(net);
}

static void test_gradient_view_follows_every_computation_at_one_address(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 5);
    float *g = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    TU_OK(fan_net_gradients(net, &g, &len));
    assert_int_equal(len, fan_net_num_params(net));
    for (uint64_t s = 0; s < 3; s++) {
        batch b;
        make_batch(&b, 16, 10 + s);
        TU_OK_NET(net, fan_net_compute_gradients(net, b.x, b.y, b.n, NULL));
        float *copy = copy_gradients(net);
        assert_memory_equal(g, copy, len * sizeof *g);
        free(copy);
    }
    TU_OK(fan_net_gradients(net, &again, &len2));
    assert_ptr_equal(again, g);
    fan_net_free(net);
}

static void test_gradients_changed_through_the_view_are_what_the_step_applies(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 6);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, 0.5));
    batch b;
    make_batch(&b, 8, 1);
    TU_OK_NET(net, fan_net_compute_gradients(net, b.x, b.y, b.n, NULL));
    float *g = NULL, *p = NULL;
    size_t len = 0;
    TU_OK(fan_net_gradients(net, &g, &len));
    TU_OK(fan_net_parameters(net, &p, &len));
    float *before = malloc(len * sizeof *before);
    memcpy(before, p, len * sizeof *p);
    for (size_t i = 0; i < len; i++) g[i] = (i % 2) ? 0.25f : -1.0f;
    TU_OK(fan_optimizer_step(opt, net));
    for (size_t i = 0; i < len; i++)
        assert_true(p[i] == before[i] - 0.5f * ((i % 2) ? 0.25f : -1.0f));
    /* The step's finiteness check still holds for gradients written through the view. */
    memcpy(before, p, len * sizeof *p);
    g[3] = INFINITY;
    assert_int_equal(fan_optimizer_step(opt, net), FAN_E_NUMERIC);
    assert_memory_equal(p, before, len * sizeof *p);
    free(before);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

/* A hook that makes the update overflow: gradients near FLT_MAX times a learning rate of 10. */
static fan_status huge_gradients(fan_net *net, void *user)
{
    (void)user;
    float *g = NULL;
    size_t len = 0;
    if (fan_net_gradients(net, &g, &len) != FAN_OK) return FAN_E_STATE;
    for (size_t i = 0; i < len; i++) g[i] = 3e38f;
    return FAN_OK;
}

static void test_a_failed_step_puts_the_previous_gradients_back_into_the_view(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_BP, 7);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    float *g = NULL, *p = NULL;
    size_t len = 0;
    TU_OK(fan_net_gradients(net, &g, &len));
    TU_OK(fan_net_parameters(net, &p, &len));
    batch b;
    make_batch(&b, 8, 2);
    TU_OK_NET(net, fan_net_train_batch(net, opt, b.x, b.y, b.n, NULL));
    float *prev = copy_gradients(net);
    float *params = malloc(len * sizeof *params);
    memcpy(params, p, len * sizeof *p);
    TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, 10.0));
    TU_OK(fan_net_set_gradient_hook(net, huge_gradients, NULL));
    make_batch(&b, 8, 3);
    assert_int_equal(fan_net_train_batch(net, opt, b.x, b.y, b.n, NULL), FAN_E_NUMERIC);
    float *now = NULL;
    TU_OK(fan_net_gradients(net, &now, &len));
    assert_ptr_equal(now, g);
    assert_memory_equal(g, prev, len * sizeof *g);
    assert_memory_equal(p, params, len * sizeof *p);
    free(params);
    free(prev);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_views_refuse_null_and_a_clone_has_views_of_its_own(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 8), *copy = NULL;
    float *d = NULL, *dc = NULL;
    size_t len = 0;
    assert_int_equal(fan_net_parameters(NULL, &d, &len), FAN_E_NULL);
    assert_int_equal(fan_net_parameters(net, NULL, &len), FAN_E_NULL);
    assert_int_equal(fan_net_gradients(net, &d, NULL), FAN_E_NULL);
    assert_non_null(strstr(fan_net_errmsg(net), "len"));
    assert_int_equal(fan_net_gradients(NULL, &d, &len), FAN_E_NULL);
    assert_null(d);
    TU_OK(fan_net_gradients(net, &d, &len));
    TU_OK(fan_net_clone(&copy, net));
    TU_OK(fan_net_gradients(copy, &dc, &len));
    assert_ptr_not_equal(d, dc);
    TU_OK(fan_net_parameters(net, &d, &len));
    TU_OK(fan_net_parameters(copy, &dc, &len));
    assert_ptr_not_equal(d, dc);
    assert_memory_equal(d, dc, len * sizeof *d);
    fan_net_free(copy);
    fan_net_free(net);
}

/* ---- the gradient hook -------------------------------------------------------------------- */

typedef struct probe {
    size_t calls;
    fan_status answer;
    float scale;          /* multiplies the gradients when not 1 */
    const float *loss;    /* the training call's loss output, read during the hook */
    float loss_seen;
    fan_net *reference;   /* a clone that computes the same batch's gradients */
    const batch *b;
    const float *params_before;
    int grads_matched, params_untouched;
} probe;

static fan_status probe_hook(fan_net *net, void *user)
{
    probe *pr = user;
    pr->calls++;
    float *g = NULL, *p = NULL;
    size_t len = 0;
    if (fan_net_gradients(net, &g, &len) != FAN_OK) return FAN_E_STATE;
    if (fan_net_parameters(net, &p, &len) != FAN_OK) return FAN_E_STATE;
    if (pr->loss) pr->loss_seen = *pr->loss;
    if (pr->reference) {
        float *ref = NULL;
        if (fan_net_compute_gradients(pr->reference, pr->b->x, pr->b->y, pr->b->n, NULL) !=
                FAN_OK ||
            fan_net_gradients(pr->reference, &ref, &len) != FAN_OK)
            return FAN_E_STATE;
        pr->grads_matched = memcmp(g, ref, len * sizeof *g) == 0;
        pr->params_untouched = memcmp(p, pr->params_before, len * sizeof *p) == 0;
    }
    if (pr->scale != 1.0f)
        for (size_t i = 0; i < len; i++) g[i] *= pr->scale;
    return pr->answer;
}

static void test_hook_runs_after_the_gradients_and_before_the_update(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 9), *ref = NULL;
    TU_OK(fan_net_clone(&ref, net));
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
    batch b;
    make_batch(&b, 12, 4);
    float *p = NULL;
    size_t len = 0;
    TU_OK(fan_net_parameters(net, &p, &len));
    float *before = malloc(len * sizeof *before);
    memcpy(before, p, len * sizeof *p);
    float loss = -1.0f;
    probe pr = {.answer = FAN_OK, .scale = 1.0f, .loss = &loss, .reference = ref, .b = &b,
                .params_before = before};
    TU_OK(fan_net_set_gradient_hook(net, probe_hook, &pr));
    TU_OK_NET(net, fan_net_train_batch(net, opt, b.x, b.y, b.n, &loss));
    assert_int_equal(pr.calls, 1);
    assert_true(pr.grads_matched);
    assert_true(pr.params_untouched);
    assert_true(pr.loss_seen == loss && loss > 0.0f);
    assert_true(memcmp(p, before, len * sizeof *p) != 0);
    /* fan_net_compute_gradients and fan_optimizer_step are not training steps: no hook. */
    TU_OK(fan_net_set_gradient_hook(net, NULL, NULL));
    TU_OK(fan_net_set_gradient_hook(net, probe_hook, &pr));
    pr.reference = NULL;
    TU_OK_NET(net, fan_net_compute_gradients(net, b.x, b.y, b.n, NULL));
    TU_OK(fan_optimizer_step(opt, net));
    assert_int_equal(pr.calls, 1);
    free(before);
    fan_optimizer_free(opt);
    fan_net_free(ref);
    fan_net_free(net);
}

static void test_gradients_scaled_by_the_hook_are_the_ones_applied(void **state)
{
    (void)state;
    /* SGD with lr on gradients halved by the hook equals SGD with lr / 2: a power of two scales
       without rounding, so the results are bit-identical. */
    fan_net *net = make_net(FAN_RULE_DFA, 10), *ref = NULL;
    TU_OK(fan_net_clone(&ref, net));
    fan_optimizer *opt = NULL, *opt_ref = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    TU_OK(fan_optimizer_create(&opt_ref, FAN_OPTIMIZER_SGD, ref, NULL));
    TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, 0.2));
    TU_OK(fan_optimizer_set(opt_ref, FAN_OPT_LR, 0.1));
    probe pr = {.answer = FAN_OK, .scale = 0.5f};
    TU_OK(fan_net_set_gradient_hook(net, probe_hook, &pr));
    for (uint64_t s = 0; s < 5; s++) {
        batch b;
        make_batch(&b, 10, 20 + s);
        TU_OK_NET(net, fan_net_train_batch(net, opt, b.x, b.y, b.n, NULL));
        TU_OK_NET(ref, fan_net_train_batch(ref, opt_ref, b.x, b.y, b.n, NULL));
    }
    assert_int_equal(pr.calls, 5);
    assert_same_net(net, ref);
    fan_optimizer_free(opt);
    fan_optimizer_free(opt_ref);
    fan_net_free(ref);
    fan_net_free(net);
}

/* A refusing hook, with or without a view handed out, under a rule with per-batch draws (brSF)
   and one that moves B (KP): the net, its gradients and the optimizer are as before, so the
   next good step matches a net that never saw the refused one. */
static void refusing_hook_changes_nothing(fan_rule rule, int with_view)
{
    fan_net *net = make_net(rule, 11), *ref = NULL;
    fan_optimizer *opt = NULL, *opt_ref = NULL;
    TU_OK(fan_net_clone(&ref, net));
    if (with_view) {
        float *g = NULL;
        size_t len = 0;
        TU_OK(fan_net_gradients(net, &g, &len));
    }
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
    TU_OK(fan_optimizer_create(&opt_ref, FAN_OPTIMIZER_ADAM, ref, NULL));
    for (uint64_t s = 0; s < 2; s++) {
        batch b;
        make_batch(&b, 9, 30 + s);
        TU_OK_NET(net, fan_net_train_batch(net, opt, b.x, b.y, b.n, NULL));
        TU_OK_NET(ref, fan_net_train_batch(ref, opt_ref, b.x, b.y, b.n, NULL));
    }
    size_t len = 0;
    unsigned char *bytes_before = net_bytes(net, &len);
    float *grads_before = copy_gradients(net);
    const uint64_t steps_before = fan_optimizer_steps(opt);

    probe pr = {.answer = FAN_E_IO, .scale = -3.0f}; /* scribbles on the gradients, then refuses */
    TU_OK(fan_net_set_gradient_hook(net, probe_hook, &pr));
    batch b2;
    make_batch(&b2, 9, 32);
    float loss = 0.0f;
    assert_int_equal(fan_net_train_batch(net, opt, b2.x, b2.y, b2.n, &loss), FAN_E_IO);
    assert_int_equal(pr.calls, 1);
    assert_non_null(strstr(fan_net_errmsg(net), "hook"));
    assert_non_null(strstr(fan_optimizer_errmsg(opt), "hook"));
    size_t len_after = 0;
    unsigned char *bytes_after = net_bytes(net, &len_after);
    assert_int_equal(len, len_after);
    assert_memory_equal(bytes_before, bytes_after, len);
    float *grads_after = copy_gradients(net);
    assert_memory_equal(grads_before, grads_after, fan_net_num_params(net) * sizeof(float));
    assert_int_equal(fan_optimizer_steps(opt), steps_before);

    /* The next good step is the one the reference takes from the same state. */
    TU_OK(fan_net_set_gradient_hook(net, NULL, NULL));
    TU_OK_NET(net, fan_net_train_batch(net, opt, b2.x, b2.y, b2.n, NULL));
    TU_OK_NET(ref, fan_net_train_batch(ref, opt_ref, b2.x, b2.y, b2.n, NULL));
    assert_same_net(net, ref);
    free(bytes_before);
    free(bytes_after);
    free(grads_before);
    free(grads_after);
    fan_optimizer_free(opt);
    fan_optimizer_free(opt_ref);
    fan_net_free(ref);
    fan_net_free(net);
}

static void test_a_refusing_hook_leaves_net_gradients_and_optimizer_unchanged(void **state)
{
    (void)state;
    const fan_rule rules[] = {FAN_RULE_BP, FAN_RULE_FA, FAN_RULE_BRSF, FAN_RULE_KP};
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++)
        for (int view = 0; view <= 1; view++) refusing_hook_changes_nothing(rules[r], view);
}

static fan_dataset *small_dataset(size_t n, uint64_t seed)
{
    float *x = malloc(n * 6 * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    tu_fill(x, n * 6, seed, -1.0f, 1.0f);
    for (size_t i = 0; i < n; i++) y[i] = (int32_t)(i % 3);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, y, n, 6, 3, NULL));
    free(x);
    free(y);
    return ds;
}

static void test_hook_runs_in_every_training_loop_and_its_refusal_ends_it(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 12);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
    fan_dataset *ds = small_dataset(50, 1);
    fan_iter *it = NULL, *noise = NULL;
    TU_OK(fan_iter_create_batches(&it, ds, 8, 3, NULL)); /* 7 batches per epoch */
    TU_OK(fan_iter_create_noise(&noise, 6, 3, 4, 5, NULL));
    probe pr = {.answer = FAN_OK, .scale = 1.0f};
    TU_OK(fan_net_set_gradient_hook(net, probe_hook, &pr));
    TU_OK_NET(net, fan_train(net, opt, it, 2, NULL, NULL));
    assert_int_equal(pr.calls, 14);
    TU_OK_NET(net, fan_train_steps(net, opt, it, 3, NULL, NULL));
    assert_int_equal(pr.calls, 17);
    TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, 4, NULL, NULL));
    assert_int_equal(pr.calls, 21);
    fan_train_options o = {sizeof o, ds, 0, 0, 0.0};
    TU_OK(fan_iter_reset(it));
    TU_OK_NET(net, fan_train_v2(net, opt, it, 1, &o, NULL, NULL));
    assert_int_equal(pr.calls, 28);
    pr.answer = FAN_E_LIMIT;
    assert_int_equal(fan_train(net, opt, it, 1, NULL, NULL), FAN_E_LIMIT);
    assert_int_equal(pr.calls, 29);
    assert_non_null(strstr(fan_net_errmsg(net), "step 1"));
    /* A clone starts without the hook; removing it stops the calls. */
    fan_net *copy = NULL;
    TU_OK(fan_net_clone(&copy, net));
    TU_OK_NET(copy, fan_train_steps(copy, opt, noise, 2, NULL, NULL));
    TU_OK(fan_net_set_gradient_hook(net, NULL, &pr));
    TU_OK_NET(net, fan_train_steps(net, opt, noise, 2, NULL, NULL));
    assert_int_equal(pr.calls, 29);
    assert_int_equal(fan_net_set_gradient_hook(NULL, probe_hook, &pr), FAN_E_NULL);
    fan_net_free(copy);
    fan_iter_free(noise);
    fan_iter_free(it);
    fan_dataset_free(ds);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

/* ---- sharding ----------------------------------------------------------------------------- */

static fan_iter *batches(const fan_dataset *ds, size_t rows, int shuffle, int drop_last,
                         size_t index, size_t count)
{
    fan_iter *it = NULL;
    TU_OK(fan_iter_create_batches(&it, ds, rows, 77, NULL));
    TU_OK(fan_iter_set(it, FAN_ITER_SHUFFLE, shuffle));
    TU_OK(fan_iter_set(it, FAN_ITER_DROP_LAST, drop_last));
    TU_OK(fan_iter_set(it, FAN_ITER_SHARD_COUNT, (double)count));
    TU_OK(fan_iter_set(it, FAN_ITER_SHARD_INDEX, (double)index));
    return it;
}

/* For two epochs and one batch more, the COUNT shards' parts of every step, joined in shard
   order, are the unsharded batch; part sizes follow the documented split; every shard reports
   FAN_DONE at the same step. */
static void check_shards(size_t size, size_t rows, size_t count, int shuffle, int drop_last)
{
    fan_dataset *ds = small_dataset(size, size * 31 + rows);
    fan_iter *whole = batches(ds, rows, shuffle, drop_last, 0, 1);
    fan_iter *part[8];
    assert_true(count <= 8);
    for (size_t i = 0; i < count; i++) part[i] = batches(ds, rows, shuffle, drop_last, i, count);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(fan_iter_batches_per_epoch(part[i]), fan_iter_batches_per_epoch(whole));
    const size_t steps = 2 * (fan_iter_batches_per_epoch(whole) + 1) + 1;
    for (size_t s = 0; s < steps; s++) {
        const float *x = NULL;
        const int32_t *y = NULL;
        size_t n = 0;
        const fan_status st = fan_iter_next(whole, &x, &y, NULL, &n);
        size_t row = 0;
        for (size_t i = 0; i < count; i++) {
            const float *px = NULL;
            const int32_t *py = NULL;
            size_t pn = 99;
            assert_int_equal(fan_iter_next(part[i], &px, &py, NULL, &pn), st);
            if (st == FAN_DONE) {
                assert_int_equal(pn, 0);
                continue;
            }
            const size_t expect = n / count + (i < n % count);
            assert_int_equal(pn, expect);
            assert_true(pn >= 1);
            assert_memory_equal(px, x + row * 6, pn * 6 * sizeof *x);
            assert_memory_equal(py, y + row, pn * sizeof *y);
            row += pn;
        }
        if (st == FAN_OK) assert_int_equal(row, n);
    }
    for (size_t i = 0; i < count; i++) fan_iter_free(part[i]);
    fan_iter_free(whole);
    fan_dataset_free(ds);
}

static void test_shards_of_every_step_join_into_the_single_batch_in_order(void **state)
{
    (void)state;
    for (size_t count = 1; count <= 5; count++)
        for (int shuffle = 0; shuffle <= 1; shuffle++) {
            check_shards(53, 16, count, shuffle, 0); /* last batch of 5: uneven for 2, 3, 4 */
            check_shards(53, 16, count, shuffle, 1);
            check_shards(48, 12, count, shuffle, 0); /* every batch 12 rows */
        }
    check_shards(23, 7, 2, 1, 0); /* odd batch, last batch of 2 */
}

static void test_shard_settings_are_checked_and_read_back(void **state)
{
    (void)state;
    fan_dataset *ds = small_dataset(10, 2);
    fan_iter *it = NULL, *noise = NULL;
    TU_OK(fan_iter_create_batches(&it, ds, 4, 1, NULL)); /* batches of 4, 4, 2 */
    double v = -1.0;
    TU_OK(fan_iter_get(it, FAN_ITER_SHARD_INDEX, &v));
    assert_true(v == 0.0);
    TU_OK(fan_iter_get(it, FAN_ITER_SHARD_COUNT, &v));
    assert_true(v == 1.0);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_INDEX, 1), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_COUNT, 0), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_COUNT, 1.5), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_COUNT, -2), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_COUNT, NAN), FAN_E_INVALID);
    /* The last batch has 2 rows: 3 shards would leave one empty, unless it is dropped. */
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_COUNT, 3), FAN_E_INVALID);
    assert_non_null(strstr(fan_iter_errmsg(it), "2 rows"));
    TU_OK(fan_iter_set(it, FAN_ITER_DROP_LAST, 1));
    TU_OK(fan_iter_set(it, FAN_ITER_SHARD_COUNT, 3));
    assert_int_equal(fan_iter_set(it, FAN_ITER_DROP_LAST, 0), FAN_E_INVALID);
    TU_OK(fan_iter_get(it, FAN_ITER_DROP_LAST, &v));
    assert_true(v == 1.0);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_COUNT, 5), FAN_E_INVALID);
    TU_OK(fan_iter_set(it, FAN_ITER_SHARD_INDEX, 2));
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_INDEX, 3), FAN_E_INVALID);
    assert_int_equal(fan_iter_set(it, FAN_ITER_SHARD_COUNT, 2), FAN_E_INVALID); /* index 2 */
    TU_OK(fan_iter_get(it, FAN_ITER_SHARD_INDEX, &v));
    assert_true(v == 2.0);
    TU_OK(fan_iter_get(it, FAN_ITER_SHARD_COUNT, &v));
    assert_true(v == 3.0);
    TU_OK(fan_iter_create_noise(&noise, 6, 3, 4, 1, NULL));
    assert_int_equal(fan_iter_set(noise, FAN_ITER_SHARD_COUNT, 2), FAN_E_INVALID);
    assert_int_equal(fan_iter_get(noise, FAN_ITER_SHARD_INDEX, &v), FAN_E_INVALID);
    fan_iter_free(noise);
    fan_iter_free(it);
    fan_dataset_free(ds);
}

/* A state carries the stream, not the shard settings: every process restores the same state
   and keeps its own part; a state whose drop-last setting would empty a part is refused. */
static void test_iterator_states_leave_the_shard_settings_alone(void **state)
{
    (void)state;
    fan_dataset *ds = small_dataset(10, 3);
    fan_iter *whole = batches(ds, 4, 1, 1, 0, 1), *part = batches(ds, 4, 1, 1, 1, 3);
    const float *x = NULL, *px = NULL;
    const int32_t *y = NULL;
    size_t n = 0, pn = 0;
    TU_OK(fan_iter_next(whole, &x, &y, NULL, &n));
    unsigned char buf[512];
    size_t len = 0;
    TU_OK(fan_iter_get_state(whole, buf, sizeof buf, &len));
    TU_OK(fan_iter_set_state(part, buf, len));
    double v = 0.0;
    TU_OK(fan_iter_get(part, FAN_ITER_SHARD_INDEX, &v));
    assert_true(v == 1.0);
    TU_OK(fan_iter_get(part, FAN_ITER_SHARD_COUNT, &v));
    assert_true(v == 3.0);
    /* Both continue with the second batch: the part is its rows 2 and 3 (4 = 2 + 1 + 1). */
    TU_OK(fan_iter_next(whole, &x, &y, NULL, &n));
    TU_OK(fan_iter_next(part, &px, &y, NULL, &pn));
    assert_int_equal(pn, 1);
    assert_memory_equal(px, x + 2 * 6, 6 * sizeof *x);
    /* A state without drop-last brings back the last batch of 2 rows: not enough for 3 parts. */
    fan_iter *keep_last = batches(ds, 4, 1, 0, 0, 1);
    TU_OK(fan_iter_get_state(keep_last, buf, sizeof buf, &len));
    assert_int_equal(fan_iter_set_state(part, buf, len), FAN_E_INVALID);
    assert_non_null(strstr(fan_iter_errmsg(part), "shards"));
    TU_OK(fan_iter_get(part, FAN_ITER_DROP_LAST, &v));
    assert_true(v == 1.0);
    fan_iter_free(keep_last);
    fan_iter_free(part);
    fan_iter_free(whole);
    fan_dataset_free(ds);
}

/* ---- data parallelism in one process ------------------------------------------------------ */

/* What the MPI companion does, with the reduction written out: COUNT replicas each compute the
   gradients of their shard; the row-weighted mean goes into every replica's view; each steps.
   The replicas stay identical and track one net trained on the whole batches. */
static void replicas_track_the_single_net(fan_rule rule, size_t count)
{
    fan_dataset *ds = small_dataset(61, 40 + count); /* batches of 13, 13, 13, 13, 9 */
    fan_net *single = make_net(rule, 50), *rep[4];
    fan_optimizer *opt_single = NULL, *opt[4];
    fan_iter *whole = batches(ds, 13, 1, 0, 0, 1), *it[4];
    TU_OK(fan_optimizer_create(&opt_single, FAN_OPTIMIZER_SGD, single, NULL));
    TU_OK(fan_optimizer_set(opt_single, FAN_OPT_LR, 0.05));
    float *g[4], *p[4];
    size_t len = 0;
    for (size_t r = 0; r < count; r++) {
        TU_OK(fan_net_clone(&rep[r], single));
        TU_OK(fan_optimizer_create(&opt[r], FAN_OPTIMIZER_SGD, rep[r], NULL));
        TU_OK(fan_optimizer_set(opt[r], FAN_OPT_LR, 0.05));
        it[r] = batches(ds, 13, 1, 0, r, count);
        TU_OK(fan_net_gradients(rep[r], &g[r], &len));
        TU_OK(fan_net_parameters(rep[r], &p[r], &len));
    }
    float *sum = malloc(len * sizeof *sum);
    for (size_t step = 0; step < 40;) {
        const float *x = NULL;
        const int32_t *y = NULL;
        size_t n = 0;
        if (fan_iter_next(whole, &x, &y, NULL, &n) == FAN_DONE) {
            for (size_t r = 0; r < count; r++)
                assert_int_equal(fan_iter_next(it[r], &x, &y, NULL, &n), FAN_DONE);
            continue;
        }
        TU_OK_NET(single, fan_net_train_batch(single, opt_single, x, y, n, NULL));
        memset(sum, 0, len * sizeof *sum);
        for (size_t r = 0; r < count; r++) {
            size_t nr = 0;
            TU_OK(fan_iter_next(it[r], &x, &y, NULL, &nr));
            TU_OK_NET(rep[r], fan_net_compute_gradients(rep[r], x, y, nr, NULL));
            for (size_t i = 0; i < len; i++) sum[i] += g[r][i] * ((float)nr / (float)n);
        }
        for (size_t r = 0; r < count; r++) {
            memcpy(g[r], sum, len * sizeof *sum);
            TU_OK(fan_optimizer_step(opt[r], rep[r]));
        }
        step++;
    }
    float *ps = NULL;
    TU_OK(fan_net_parameters(single, &ps, &len));
    for (size_t r = 0; r < count; r++) {
        assert_memory_equal(p[r], p[0], len * sizeof *p[0]);
        for (size_t i = 0; i < len; i++) TU_CLOSE(p[r][i], ps[i], 1e-4, 1e-5);
    }
    free(sum);
    for (size_t r = 0; r < count; r++) {
        fan_iter_free(it[r]);
        fan_optimizer_free(opt[r]);
        fan_net_free(rep[r]);
    }
    fan_iter_free(whole);
    fan_optimizer_free(opt_single);
    fan_net_free(single);
    fan_dataset_free(ds);
}

static void test_row_weighted_shard_gradients_reproduce_single_process_training(void **state)
{
    (void)state;
    const fan_rule rules[] = {FAN_RULE_BP, FAN_RULE_FA, FAN_RULE_DFA};
    for (size_t r = 0; r < 3; r++)
        for (size_t count = 2; count <= 4; count++) replicas_track_the_single_net(rules[r], count);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parameter_view_is_w_then_b_layer_by_layer),
        cmocka_unit_test(test_writes_through_the_parameter_view_reach_the_net),
        cmocka_unit_test(test_gradient_view_follows_every_computation_at_one_address),
        cmocka_unit_test(test_gradients_changed_through_the_view_are_what_the_step_applies),
        cmocka_unit_test(test_a_failed_step_puts_the_previous_gradients_back_into_the_view),
        cmocka_unit_test(test_views_refuse_null_and_a_clone_has_views_of_its_own),
        cmocka_unit_test(test_hook_runs_after_the_gradients_and_before_the_update),
        cmocka_unit_test(test_gradients_scaled_by_the_hook_are_the_ones_applied),
        cmocka_unit_test(test_a_refusing_hook_leaves_net_gradients_and_optimizer_unchanged),
        cmocka_unit_test(test_hook_runs_in_every_training_loop_and_its_refusal_ends_it),
        cmocka_unit_test(test_shards_of_every_step_join_into_the_single_batch_in_order),
        cmocka_unit_test(test_shard_settings_are_checked_and_read_back),
        cmocka_unit_test(test_iterator_states_leave_the_shard_settings_alone),
        cmocka_unit_test(test_row_weighted_shard_gradients_reproduce_single_process_training),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
