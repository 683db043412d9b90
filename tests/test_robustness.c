/* test_robustness.c - bad arguments across the whole public API, header section by header
   section: NULL wherever a pointer is taken, enumeration values out of range, batches of 0
   rows, layers of 0 units and layer indices past the last. Every failure must give its
   documented status, say why in the handle's message and leave every handle exactly as it
   was; and a run interleaved with every kind of failing call ends bit-identical to one without
   them. Bad values (shapes, lengths, NaN, labels) are in test_robustness_values.c, allocation
   failures in test_robustness_oom.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "robustness_fixture.h"

/* ---- NULL wherever a pointer is taken ----------------------------------------------------- */

static void test_null_pointers_to_network_functions_give_e_null(void **state)
{
    (void)state;
    snapshot();
    const size_t sizes[] = {IN, HID, OUT};
    fan_net *o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_net_create(NULL, sizes, 3, NULL));
    EXPECT(FAN_E_NULL, fan_net_create(&o, NULL, 3, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_net_set_rule(NULL, FAN_RULE_BP));
    EXPECT(FAN_E_NULL, fan_net_set_activation(NULL, 0, FAN_ACT_RELU));
    EXPECT(FAN_E_NULL, fan_net_set_loss(NULL, FAN_LOSS_MSE));
    EXPECT(FAN_E_NULL, fan_net_set(NULL, FAN_NET_LEAKY_SLOPE, 0.1));
    double v;
    EXPECT(FAN_E_NULL, fan_net_get(NULL, FAN_NET_LEAKY_SLOPE, &v));
    EXPECT_MSG(FAN_E_NULL, fan_net_get(F.net, FAN_NET_LEAKY_SLOPE, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_set_initializer(NULL, FAN_MATRIX_WEIGHTS, FAN_INIT_HE_NORMAL));
    EXPECT(FAN_E_NULL, fan_net_init(NULL, 1, 2));
    uint64_t s1, s2;
    EXPECT(FAN_E_NULL, fan_net_seeds(NULL, &s1, &s2));
    EXPECT(FAN_OK, fan_net_seeds(F.net, NULL, NULL)); /* either output may be NULL */
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_net_clone(&o, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_net_clone(NULL, F.net));

    float w[IN * HID], b[HID];
    EXPECT(FAN_E_NULL, fan_net_get_weights(NULL, 0, w, IN * HID, b, HID));
    EXPECT(FAN_OK, fan_net_get_weights(F.net, 0, NULL, 0, NULL, 0)); /* both skipped */
    EXPECT(FAN_E_NULL, fan_net_set_weights(NULL, 0, w, IN * HID, b, HID));
    EXPECT(FAN_OK, fan_net_set_weights(F.net, 0, NULL, 0, NULL, 0));
    EXPECT(FAN_E_NULL, fan_net_get_feedback(NULL, 0, w, IN * HID));
    EXPECT_MSG(FAN_E_NULL, fan_net_get_feedback(F.net, 0, NULL, IN * HID), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_set_feedback(NULL, 0, w, IN * HID));
    EXPECT_MSG(FAN_E_NULL, fan_net_set_feedback(F.net, 0, NULL, IN * HID), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_forward(NULL, F.x, ROWS, F.probs, ROWS * OUT));
    EXPECT_MSG(FAN_E_NULL, fan_net_forward(F.net, NULL, ROWS, F.probs, ROWS * OUT), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_net_forward(F.net, F.x, ROWS, NULL, ROWS * OUT), NET_MSG, "null");

    /* NULL handles to queries give the documented defaults. */
    assert_int_equal(fan_net_rule(NULL), FAN_RULE_FA);
    assert_int_equal(fan_net_activation(NULL, 0), FAN_ACT_LINEAR);
    assert_int_equal(fan_net_loss(NULL), FAN_LOSS_CROSS_ENTROPY);
    assert_int_equal(fan_net_num_layers(NULL), 0);
    assert_int_equal(fan_net_layer_inputs(NULL, 0), 0);
    assert_int_equal(fan_net_layer_outputs(NULL, 0), 0);
    assert_int_equal(fan_net_input_size(NULL), 0);
    assert_int_equal(fan_net_output_size(NULL), 0);
    assert_int_equal(fan_net_num_params(NULL), 0);
    assert_non_null(fan_net_errmsg(NULL));
    assert_true(fan_net_errmsg(NULL)[0] != '\0');
    fan_net_free(NULL);
    assert_unchanged();
}

static void test_null_pointers_to_gradient_and_io_functions_give_e_null(void **state)
{
    (void)state;
    snapshot();
    float loss;
    double dl;
    EXPECT(FAN_E_NULL, fan_net_compute_gradients(NULL, F.x, F.y, ROWS, &loss));
    EXPECT_MSG(FAN_E_NULL, fan_net_compute_gradients(F.net, NULL, F.y, ROWS, &loss), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_net_compute_gradients(F.net, F.x, NULL, ROWS, &loss), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_compute_gradients_targets(NULL, F.x, F.t, ROWS, &loss));
    EXPECT_MSG(FAN_E_NULL, fan_net_compute_gradients_targets(F.net, NULL, F.t, ROWS, NULL), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_net_compute_gradients_targets(F.net, F.x, NULL, ROWS, NULL), NET_MSG, "null");
    float g[IN * HID];
    EXPECT(FAN_E_NULL, fan_net_get_gradients(NULL, 0, g, IN * HID, NULL, 0));
    EXPECT(FAN_OK, fan_net_get_gradients(F.net, 0, NULL, 0, NULL, 0));
    EXPECT(FAN_E_NULL, fan_net_set_gradients(NULL, 0, g, IN * HID, NULL, 0));
    EXPECT(FAN_E_NULL, fan_net_loss_value(NULL, F.x, F.y, ROWS, &dl));
    EXPECT_MSG(FAN_E_NULL, fan_net_loss_value(F.net, NULL, F.y, ROWS, &dl), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_net_loss_value(F.net, F.x, NULL, ROWS, &dl), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_net_loss_value(F.net, F.x, F.y, ROWS, NULL), NET_MSG, "null");

    unsigned char buf[16];
    size_t written;
    fan_net *o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_net_save(NULL, "unused.fan"));
    EXPECT_MSG(FAN_E_NULL, fan_net_save(F.net, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_load(NULL, "unused.fan", NULL));
    EXPECT(FAN_E_NULL, fan_net_load(&o, NULL, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_net_save_mem(NULL, buf, sizeof buf, &written));
    EXPECT_MSG(FAN_E_NULL, fan_net_save_mem(F.net, buf, sizeof buf, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_load_mem(NULL, buf, sizeof buf, NULL));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_net_load_mem(&o, NULL, sizeof buf, NULL));
    assert_null(o);
    char msg[64];
    EXPECT(FAN_E_NULL, fan_net_load_v2(NULL, NULL, buf, sizeof buf, NULL, msg, sizeof msg));
    assert_true(mentions(msg, "null"));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_net_load_v2(&o, NULL, NULL, 0, NULL, msg, sizeof msg));
    assert_null(o);
    assert_true(mentions(msg, "null"));
    EXPECT(FAN_E_NULL, fan_net_load_v2(&o, NULL, NULL, 0, NULL, NULL, 0)); /* errmsg may be NULL */
    /* The _ex loaders: the message goes to the options' buffer; NULL options are defaults. */
    fan_create_options opts = {sizeof opts, NULL, msg, sizeof msg, 0};
    EXPECT(FAN_E_NULL, fan_net_load_ex(NULL, "unused.fan", &opts));
    assert_true(mentions(msg, "null"));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_net_load_ex(&o, NULL, &opts));
    assert_null(o);
    assert_true(mentions(msg, "null"));
    EXPECT(FAN_E_NULL, fan_net_load_ex(&o, NULL, NULL));
    EXPECT(FAN_E_NULL, fan_net_load_mem_ex(NULL, buf, sizeof buf, &opts));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_net_load_mem_ex(&o, NULL, sizeof buf, &opts));
    assert_null(o);
    assert_true(mentions(msg, "null"));
    assert_unchanged();
}

static void test_null_pointers_to_optimizer_functions_give_e_null(void **state)
{
    (void)state;
    snapshot();
    fan_optimizer *o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_optimizer_create(NULL, FAN_OPTIMIZER_SGD, F.net, NULL));
    EXPECT(FAN_E_NULL, fan_optimizer_create(&o, FAN_OPTIMIZER_SGD, NULL, NULL));
    assert_null(o);
    double v;
    EXPECT(FAN_E_NULL, fan_optimizer_set(NULL, FAN_OPT_LR, 0.1));
    EXPECT(FAN_E_NULL, fan_optimizer_get(NULL, FAN_OPT_LR, &v));
    EXPECT_MSG(FAN_E_NULL, fan_optimizer_get(F.opt, FAN_OPT_LR, NULL), OPT_MSG, "null");
    EXPECT(FAN_OK, fan_optimizer_param_bounds(FAN_OPT_LR, NULL, NULL, NULL));
    EXPECT(FAN_E_NULL, fan_optimizer_reset(NULL));
    EXPECT(FAN_E_NULL, fan_optimizer_step(NULL, F.net));
    EXPECT_MSG(FAN_E_NULL, fan_optimizer_step(F.opt, NULL), OPT_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_train_batch(NULL, F.opt, F.x, F.y, ROWS, NULL));
    EXPECT(FAN_E_NULL, fan_net_train_batch(F.net, NULL, F.x, F.y, ROWS, NULL));
    EXPECT_MSG(FAN_E_NULL, fan_net_train_batch(F.net, F.opt, NULL, F.y, ROWS, NULL), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_net_train_batch(F.net, F.opt, F.x, NULL, ROWS, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_net_train_batch_targets(NULL, F.opt, F.x, F.t, ROWS, NULL));
    EXPECT(FAN_E_NULL, fan_net_train_batch_targets(F.net, NULL, F.x, F.t, ROWS, NULL));
    EXPECT_MSG(FAN_E_NULL, fan_net_train_batch_targets(F.net, F.opt, F.x, NULL, ROWS, NULL), NET_MSG, "null");
    assert_int_equal(fan_optimizer_get_kind(NULL), FAN_OPTIMIZER_SGD);
    assert_int_equal(fan_optimizer_steps(NULL), 0);
    assert_true(fan_optimizer_errmsg(NULL) != NULL && fan_optimizer_errmsg(NULL)[0] != '\0');
    fan_optimizer_free(NULL);
    assert_unchanged();
}

static void test_null_pointers_to_dataset_functions_give_e_null(void **state)
{
    (void)state;
    snapshot();
    const float x[2] = {0, 1};
    const int32_t y[2] = {0, 1};
    const uint8_t px[2] = {0, 1};
    fan_dataset *o = SENTINEL, *o2 = SENTINEL;
    const char *paths[2] = {"a", NULL};
    EXPECT(FAN_E_NULL, fan_dataset_load_idx(NULL, "i", "l", NULL));
    EXPECT(FAN_E_NULL, fan_dataset_load_idx(&o, NULL, "l", NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_load_idx(&o, "i", NULL, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_mem(NULL, px, 2, px, 2, NULL));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_mem(&o, NULL, 2, px, 2, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_mem(&o, px, 2, NULL, 2, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar(NULL, paths, 1, 1, NULL));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar(&o, NULL, 1, 1, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar(&o, paths, 2, 1, NULL)); /* paths[1] is NULL */
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar_mem(NULL, px, 2, 1, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar_mem(&o, NULL, 2, 1, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_load_csv(NULL, "f.csv", FAN_CSV_LAST_COLUMN, 0, NULL));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_load_csv(&o, NULL, FAN_CSV_LAST_COLUMN, 0, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_load_csv_mem(NULL, px, 2, FAN_CSV_LAST_COLUMN, 0, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_load_csv_mem(&o, NULL, 2, FAN_CSV_LAST_COLUMN, 0, NULL));
    char msg[64];
    const fan_create_options opts = {sizeof opts, NULL, msg, sizeof msg, 0};
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_ex(NULL, "i", "l", &opts));
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_ex(&o, "i", NULL, &opts));
    assert_null(o);
    assert_true(mentions(msg, "null"));
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_ex(&o, NULL, "l", NULL));
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_mem_ex(NULL, px, 2, px, 2, &opts));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_mem_ex(&o, px, 2, NULL, 2, &opts));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_load_idx_mem_ex(&o, NULL, 2, px, 2, &opts));
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar_ex(NULL, paths, 1, 1, &opts));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar_ex(&o, NULL, 1, 1, &opts));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar_ex(&o, paths, 2, 1, &opts));
    assert_true(mentions(msg, "paths[1]"));
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar_mem_ex(NULL, px, 2, 1, &opts));
    EXPECT(FAN_E_NULL, fan_dataset_load_cifar_mem_ex(&o, NULL, 2, 1, &opts));
    EXPECT(FAN_E_NULL, fan_dataset_load_csv_ex(NULL, "f.csv", FAN_CSV_LAST_COLUMN, 0, &opts));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_load_csv_ex(&o, NULL, FAN_CSV_LAST_COLUMN, 0, &opts));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_load_csv_mem_ex(NULL, px, 2, FAN_CSV_LAST_COLUMN, 0, &opts));
    EXPECT(FAN_E_NULL, fan_dataset_load_csv_mem_ex(&o, NULL, 2, FAN_CSV_LAST_COLUMN, 0, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_from_arrays(NULL, x, y, 2, 1, 2, NULL));
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_from_arrays(&o, NULL, y, 2, 1, 2, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_from_arrays(&o, x, NULL, 2, 1, 2, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_from_u8(NULL, px, y, 2, 1, 1, 1, 2, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_from_u8(&o, NULL, y, 2, 1, 1, 1, 2, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_from_u8(&o, px, NULL, 2, 1, 1, 1, 2, NULL));

    size_t w, counts[OUT];
    double m, sd;
    float row[IN];
    EXPECT(FAN_E_NULL, fan_dataset_shape(NULL, &w, &w, &w));
    EXPECT(FAN_OK, fan_dataset_shape(F.ds, NULL, NULL, NULL));
    EXPECT(FAN_E_NULL, fan_dataset_set_shape(NULL, IN, 1, 1));
    EXPECT(FAN_E_NULL, fan_dataset_set_normalization(NULL, FAN_NORM_NONE, 0, 1));
    EXPECT(FAN_E_NULL, fan_dataset_compute_stats(NULL, &m, &sd));
    EXPECT(FAN_E_NULL, fan_dataset_get(NULL, 0, row, IN, NULL));
    EXPECT(FAN_OK, fan_dataset_get(F.ds, 0, NULL, 0, NULL)); /* either output may be NULL */
    EXPECT(FAN_E_NULL, fan_dataset_class_counts(NULL, counts, OUT));
    EXPECT_MSG(FAN_E_NULL, fan_dataset_class_counts(F.ds, NULL, OUT), DS_MSG, "null");
    const size_t idx[1] = {0};
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_subset_first(&o, NULL, 1));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_dataset_subset_first(NULL, F.ds, 1));
    EXPECT(FAN_E_NULL, fan_dataset_subset_random(NULL, F.ds, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_subset_random(&o, NULL, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_subset_stratified(NULL, F.ds, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_subset_stratified(&o, NULL, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_subset_indices(NULL, F.ds, idx, 1));
    EXPECT(FAN_E_NULL, fan_dataset_subset_indices(&o, NULL, idx, 1));
    o = SENTINEL;
    EXPECT_MSG(FAN_E_NULL, fan_dataset_subset_indices(&o, F.ds, NULL, 1), DS_MSG, "null");
    assert_null(o);
    o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_dataset_split(&o, &o2, NULL, 1, 0));
    assert_null(o);
    assert_null(o2);
    EXPECT(FAN_E_NULL, fan_dataset_split(NULL, &o2, F.ds, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_split(&o, NULL, F.ds, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_translate(NULL, F.img, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_translate(&o, NULL, 1, 0));
    EXPECT(FAN_E_NULL, fan_dataset_rotate(NULL, F.img, 90));
    EXPECT(FAN_E_NULL, fan_dataset_rotate(&o, NULL, 90));
    EXPECT(FAN_E_NULL, fan_dataset_scale(NULL, F.img, 2));
    EXPECT(FAN_E_NULL, fan_dataset_scale(&o, NULL, 2));
    EXPECT(FAN_E_NULL, fan_dataset_resize(NULL, F.img, 2, 2));
    EXPECT(FAN_E_NULL, fan_dataset_resize(&o, NULL, 2, 2));
    assert_null(o);
    assert_int_equal(fan_dataset_size(NULL), 0);
    assert_int_equal(fan_dataset_dim(NULL), 0);
    assert_int_equal(fan_dataset_classes(NULL), 0);
    assert_true(fan_dataset_errmsg(NULL) != NULL && fan_dataset_errmsg(NULL)[0] != '\0');
    fan_dataset_free(NULL);
    assert_int_equal(fan_dataset_size(F.ds), SAMPLES);
    assert_unchanged();
}

static void test_null_pointers_to_iterators_and_training_loops_give_e_null(void **state)
{
    (void)state;
    fan_iter *o = SENTINEL;
    EXPECT(FAN_E_NULL, fan_iter_create_batches(NULL, F.ds, 2, 0, NULL));
    EXPECT(FAN_E_NULL, fan_iter_create_batches(&o, NULL, 2, 0, NULL));
    assert_null(o);
    EXPECT(FAN_E_NULL, fan_iter_create_noise(NULL, IN, OUT, 2, 0, NULL));
    double v;
    EXPECT(FAN_E_NULL, fan_iter_set(NULL, FAN_ITER_SHUFFLE, 0));
    EXPECT(FAN_E_NULL, fan_iter_get(NULL, FAN_ITER_SHUFFLE, &v));
    EXPECT_MSG(FAN_E_NULL, fan_iter_get(F.it, FAN_ITER_SHUFFLE, NULL), IT_MSG, "null");
    const float *bx;
    const int32_t *by;
    size_t n;
    EXPECT(FAN_E_NULL, fan_iter_next(NULL, &bx, &by, NULL, &n));
    EXPECT_MSG(FAN_E_NULL, fan_iter_next(F.it, NULL, &by, NULL, &n), IT_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_iter_next(F.it, &bx, &by, NULL, NULL), IT_MSG, "null");
    EXPECT(FAN_E_NULL, fan_iter_reset(NULL));
    /* The failed calls did not advance the stream: the first batch is the first batch. */
    const float *first;
    EXPECT(FAN_OK, fan_iter_next(F.it, &first, NULL, NULL, &n));
    float row0[IN];
    memcpy(row0, first, sizeof row0);
    EXPECT(FAN_OK, fan_iter_reset(F.it));
    EXPECT(FAN_OK, fan_iter_next(F.it, &bx, NULL, NULL, &n));
    assert_memory_equal(bx, row0, sizeof row0);
    EXPECT(FAN_OK, fan_iter_reset(F.it));
    assert_int_equal(fan_iter_is_noise(NULL), 0);
    assert_int_equal(fan_iter_dim(NULL), 0);
    assert_int_equal(fan_iter_classes(NULL), 0);
    assert_int_equal(fan_iter_batches_per_epoch(NULL), 0);
    assert_true(fan_iter_errmsg(NULL) != NULL && fan_iter_errmsg(NULL)[0] != '\0');
    fan_iter_free(NULL);

    snapshot();
    EXPECT(FAN_E_NULL, fan_train(NULL, F.opt, F.it, 1, NULL, NULL));
    EXPECT_MSG(FAN_E_NULL, fan_train(F.net, NULL, F.it, 1, NULL, NULL), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_train(F.net, F.opt, NULL, 1, NULL, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_train_steps(NULL, F.opt, F.it, 1, NULL, NULL));
    EXPECT_MSG(FAN_E_NULL, fan_train_steps(F.net, NULL, F.it, 1, NULL, NULL), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_train_steps(F.net, F.opt, NULL, 1, NULL, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_pretrain_noise(NULL, F.opt, F.noise, 1, NULL, NULL));
    EXPECT_MSG(FAN_E_NULL, fan_pretrain_noise(F.net, NULL, F.noise, 1, NULL, NULL), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_pretrain_noise(F.net, F.opt, NULL, 1, NULL, NULL), NET_MSG, "null");
    double loss, acc;
    EXPECT(FAN_E_NULL, fan_net_evaluate(NULL, F.ds, &loss, &acc));
    EXPECT_MSG(FAN_E_NULL, fan_net_evaluate(F.net, NULL, &loss, &acc), NET_MSG, "null");
    EXPECT(FAN_OK, fan_net_evaluate(F.net, F.ds, NULL, NULL)); /* outputs may be NULL */
    assert_unchanged();
}

static void test_null_pointers_to_diagnostics_give_e_null(void **state)
{
    (void)state;
    snapshot();
    double v[IN * OUT], a;
    float m[6] = {1, 0, 0, 1, 0, 0};
    EXPECT(FAN_E_NULL, fan_diag_alignment(NULL, 1, v, HID, &a, &a));
    EXPECT(FAN_OK, fan_diag_alignment(F.net, 1, NULL, 0, NULL, NULL)); /* all outputs optional */
    EXPECT(FAN_E_NULL, fan_diag_delta_alignment(NULL, F.x, F.y, ROWS, v, 2));
    EXPECT_MSG(FAN_E_NULL, fan_diag_delta_alignment(F.net, NULL, F.y, ROWS, v, 2), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_diag_delta_alignment(F.net, F.x, NULL, ROWS, v, 2), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_diag_delta_alignment(F.net, F.x, F.y, ROWS, NULL, 2), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_diag_singular_values(NULL, 0, FAN_MATRIX_WEIGHTS, v, HID));
    EXPECT_MSG(FAN_E_NULL, fan_diag_singular_values(F.net, 0, FAN_MATRIX_WEIGHTS, NULL, HID), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_diag_effective_rank(NULL, 0, FAN_MATRIX_WEIGHTS, &a));
    EXPECT_MSG(FAN_E_NULL, fan_diag_effective_rank(F.net, 0, FAN_MATRIX_WEIGHTS, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_diag_participation_ratio(NULL, 0, FAN_MATRIX_WEIGHTS, &a));
    EXPECT_MSG(FAN_E_NULL, fan_diag_participation_ratio(F.net, 0, FAN_MATRIX_FEEDBACK, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_diag_stable_rank(NULL, 0, FAN_MATRIX_WEIGHTS, &a));
    EXPECT_MSG(FAN_E_NULL, fan_diag_stable_rank(F.net, 0, FAN_MATRIX_GRADIENTS, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_diag_principal_angles(NULL, 0, 1, v, 1));
    EXPECT_MSG(FAN_E_NULL, fan_diag_principal_angles(F.net, 0, 1, NULL, 1), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_diag_gram_dimensionality(NULL, 1, F.ds, 0, &a));
    EXPECT_MSG(FAN_E_NULL, fan_diag_gram_dimensionality(F.net, 1, NULL, 0, &a), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_diag_gram_dimensionality(F.net, 1, F.ds, 0, NULL), NET_MSG, "null");
    EXPECT(FAN_E_NULL, fan_diag_readout(NULL, F.x, ROWS, &a, &a, v, 4));
    EXPECT_MSG(FAN_E_NULL, fan_diag_readout(F.net, NULL, ROWS, &a, &a, v, 4), NET_MSG, "null");
    EXPECT(FAN_OK, fan_diag_readout(F.net, F.x, ROWS, NULL, NULL, NULL, 0)); /* outputs optional */
    EXPECT(FAN_E_NULL, fan_diag_calibration_error(NULL, F.ds, 4, &a));
    EXPECT_MSG(FAN_E_NULL, fan_diag_calibration_error(F.net, NULL, 4, &a), NET_MSG, "null");
    EXPECT_MSG(FAN_E_NULL, fan_diag_calibration_error(F.net, F.ds, 4, NULL), NET_MSG, "null");

    /* Handle-free functions: the status is all there is. */
    EXPECT(FAN_E_NULL, fan_matrix_singular_values(NULL, 2, 3, v, 2, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_singular_values(m, 2, 3, NULL, 2, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_effective_rank(NULL, 2, 3, &a, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_effective_rank(m, 2, 3, NULL, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_participation_ratio(NULL, 2, 3, &a, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_participation_ratio(m, 2, 3, NULL, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_stable_rank(NULL, 2, 3, &a, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_stable_rank(m, 2, 3, NULL, NULL));
    EXPECT(FAN_E_NULL, fan_matrix_angle(NULL, m, 6, &a));
    EXPECT(FAN_E_NULL, fan_matrix_angle(m, NULL, 6, &a));
    EXPECT(FAN_E_NULL, fan_matrix_angle(m, m, 6, NULL));
    EXPECT(FAN_E_NULL, fan_spectrum_summary(NULL, 2, &a, &a, &a));
    const double sv[2] = {2, 1};
    EXPECT(FAN_OK, fan_spectrum_summary(sv, 2, NULL, NULL, NULL));
    assert_unchanged();
}

/* ---- values out of range ------------------------------------------------------------------ */

static void test_enumeration_values_out_of_range_are_invalid(void **state)
{
    (void)state;
    snapshot();
    EXPECT_MSG(FAN_E_INVALID, fan_net_set_rule(F.net, (fan_rule)8), NET_MSG, "rule");
    EXPECT(FAN_E_INVALID, fan_net_set_rule(F.net, (fan_rule)-1));
    EXPECT(FAN_E_INVALID, fan_net_set_activation(F.net, 0, (fan_activation)5));
    EXPECT(FAN_E_INVALID, fan_net_set_loss(F.net, (fan_loss)2));
    EXPECT(FAN_E_INVALID, fan_net_set(F.net, (fan_net_param)2, 0.1));
    double v;
    EXPECT(FAN_E_INVALID, fan_net_get(F.net, (fan_net_param)2, &v));
    /* Thread counts are whole numbers in [1, FAN_MAX_THREADS]. */
    EXPECT_MSG(FAN_E_INVALID, fan_net_set(F.net, FAN_NET_THREADS, 0.0), NET_MSG, "threads");
    EXPECT(FAN_E_INVALID, fan_net_set(F.net, FAN_NET_THREADS, 1.5));
    EXPECT(FAN_E_INVALID, fan_net_set(F.net, FAN_NET_THREADS, FAN_MAX_THREADS + 1.0));
    EXPECT(FAN_E_INVALID, fan_net_set(F.net, FAN_NET_THREADS, NAN));
    EXPECT(FAN_E_INVALID, fan_net_set_initializer(F.net, FAN_MATRIX_GRADIENTS, FAN_INIT_HE_NORMAL));
    EXPECT(FAN_E_INVALID, fan_net_set_initializer(F.net, FAN_MATRIX_WEIGHTS, (fan_init)3));
    fan_optimizer *o = SENTINEL;
    EXPECT(FAN_E_INVALID, fan_optimizer_create(&o, (fan_optimizer_kind)4, F.net, &F.al));
    assert_null(o);
    /* 14: the first value after FAN_OPT_WARMUP_STEPS. */
    EXPECT(FAN_E_INVALID, fan_optimizer_set(F.opt, (fan_optimizer_param)14, 0.1));
    EXPECT(FAN_E_INVALID, fan_optimizer_get(F.opt, (fan_optimizer_param)14, &v));
    EXPECT(FAN_E_INVALID, fan_optimizer_param_bounds((fan_optimizer_param)14, &v, &v, &v));
    /* 8: the first value after FAN_ITER_SHARD_COUNT. */
    EXPECT(FAN_E_INVALID, fan_iter_set(F.it, (fan_iter_param)8, 0));
    EXPECT(FAN_E_INVALID, fan_iter_set(F.noise, FAN_ITER_NOISE_KIND, 2));
    EXPECT(FAN_E_INVALID, fan_iter_set(F.noise, FAN_ITER_LABEL_MODE, 2));
    EXPECT(FAN_E_INVALID, fan_iter_set(F.it, FAN_ITER_NOISE_STD, 2)); /* wrong kind of iterator */
    EXPECT(FAN_E_INVALID, fan_iter_set(F.noise, FAN_ITER_DROP_LAST, 1));
    EXPECT(FAN_E_INVALID, fan_dataset_set_normalization(F.ds, (fan_norm)3, 0, 1));
    EXPECT(FAN_E_INVALID, fan_diag_singular_values(F.net, 0, (fan_matrix)3, &v, 1));
    fan_dataset *d = SENTINEL;
    EXPECT(FAN_E_INVALID, fan_dataset_load_cifar_mem(&d, "x", 1, 3, &F.al));
    assert_null(d);
    assert_string_equal(fan_strerror((fan_status)999), "unknown status");
    assert_unchanged();
}

static void test_batches_of_zero_rows_are_invalid(void **state)
{
    (void)state;
    snapshot();
    float loss;
    double a, v[2];
    EXPECT_MSG(FAN_E_INVALID, fan_net_forward(F.net, F.x, 0, F.probs, 0), NET_MSG, "rows");
    EXPECT(FAN_E_INVALID, fan_net_compute_gradients(F.net, F.x, F.y, 0, &loss));
    EXPECT(FAN_E_INVALID, fan_net_compute_gradients_targets(F.net, F.x, F.t, 0, &loss));
    EXPECT(FAN_E_INVALID, fan_net_loss_value(F.net, F.x, F.y, 0, &a));
    EXPECT(FAN_E_INVALID, fan_net_train_batch(F.net, F.opt, F.x, F.y, 0, &loss));
    EXPECT(FAN_E_INVALID, fan_net_train_batch_targets(F.net, F.opt, F.x, F.t, 0, &loss));
    EXPECT(FAN_E_INVALID, fan_diag_delta_alignment(F.net, F.x, F.y, 0, v, 2));
    EXPECT(FAN_E_INVALID, fan_diag_readout(F.net, F.x, 0, &a, &a, NULL, 0));
    fan_iter *it = SENTINEL;
    EXPECT(FAN_E_INVALID, fan_iter_create_batches(&it, F.ds, 0, 0, &F.al));
    assert_null(it);
    it = SENTINEL;
    EXPECT(FAN_E_INVALID, fan_iter_create_noise(&it, IN, OUT, 0, 0, &F.al));
    assert_null(it);
    fan_dataset *d = SENTINEL;
    EXPECT(FAN_E_INVALID, fan_dataset_from_arrays(&d, F.x, F.y, 0, IN, OUT, &F.al));
    assert_null(d);
    EXPECT(FAN_E_INVALID, fan_dataset_subset_first(&d, F.ds, 0));
    EXPECT(FAN_E_INVALID, fan_dataset_subset_random(&d, F.ds, 0, 1));
    EXPECT(FAN_E_INVALID, fan_dataset_subset_stratified(&d, F.ds, 0, 1));
    EXPECT(FAN_E_INVALID, fan_dataset_subset_indices(&d, F.ds, (const size_t[]){0}, 0));
    assert_null(d);
    assert_unchanged();
}

static void test_layers_of_zero_units_and_bad_layer_counts_are_rejected(void **state)
{
    (void)state;
    static const size_t zero_mid[] = {4, 0, 2}, zero_in[] = {0, 3}, zero_out[] = {4, 3, 0};
    static const size_t too_wide[] = {FAN_MAX_WIDTH + 1u, 2};
    /* 16385 x 16384 > FAN_MAX_MATRIX = 2^28 although each width is legal. */
    static const size_t too_big[] = {16385, 16384};
    size_t many[FAN_MAX_LAYERS + 2];
    for (size_t i = 0; i < FAN_MAX_LAYERS + 2; i++) many[i] = 1;
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    const struct {
        const size_t *sizes;
        size_t n;
        fan_status want;
    } cases[] = {
        {zero_mid, 3, FAN_E_INVALID}, {zero_in, 2, FAN_E_INVALID},   {zero_out, 3, FAN_E_INVALID},
        {zero_mid, 0, FAN_E_INVALID}, {zero_mid, 1, FAN_E_INVALID},  {many, FAN_MAX_LAYERS + 2, FAN_E_INVALID},
        {too_wide, 2, FAN_E_LIMIT},   {too_big, 2, FAN_E_LIMIT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fan_net *net = SENTINEL;
        EXPECT(cases[i].want, fan_net_create(&net, cases[i].sizes, cases[i].n, &al));
        assert_null(net);
        assert_int_equal(c.live_blocks, 0);
    }
    fan_net *deep = NULL; /* the largest legal depth works */
    TU_OK(fan_net_create(&deep, many, FAN_MAX_LAYERS + 1, &al));
    assert_int_equal(fan_net_num_layers(deep), FAN_MAX_LAYERS);
    fan_net_free(deep);

    /* Zero sizes elsewhere: datasets, noise, images. */
    fan_dataset *d = SENTINEL;
    EXPECT(FAN_E_INVALID, fan_dataset_from_arrays(&d, F.x, F.y, ROWS, 0, OUT, &al));
    EXPECT(FAN_E_INVALID, fan_dataset_from_arrays(&d, F.x, F.y, ROWS, IN, 0, &al));
    EXPECT(FAN_E_INVALID, fan_dataset_from_u8(&d, (const uint8_t *)F.x, F.y, ROWS, 0, 1, 1, OUT, &al));
    EXPECT(FAN_E_INVALID, fan_dataset_resize(&d, F.img, 0, 2));
    assert_null(d);
    fan_iter *it = SENTINEL;
    EXPECT(FAN_E_INVALID, fan_iter_create_noise(&it, 0, OUT, 2, 0, &al));
    EXPECT(FAN_E_INVALID, fan_iter_create_noise(&it, IN, 0, 2, 0, &al));
    EXPECT(FAN_E_INVALID, fan_iter_create_noise(&it, IN, FAN_MAX_CLASSES + 1u, 2, 0, &al));
    assert_null(it);
    assert_int_equal(c.live_blocks, 0);

    /* Layer indices past the last layer, in every per-layer function. */
    snapshot();
    const size_t L = fan_net_num_layers(F.net), bad[] = {L, SIZE_MAX};
    float w[IN * HID], b[HID];
    double v[HID], a;
    for (size_t k = 0; k < 2; k++) {
        const size_t l = bad[k];
        EXPECT_MSG(FAN_E_INVALID, fan_net_set_activation(F.net, l, FAN_ACT_TANH), NET_MSG, "layer");
        assert_int_equal(fan_net_activation(F.net, l), FAN_ACT_LINEAR);
        assert_int_equal(fan_net_layer_inputs(F.net, l), 0);
        assert_int_equal(fan_net_layer_outputs(F.net, l), 0);
        EXPECT(FAN_E_INVALID, fan_net_get_weights(F.net, l, w, IN * HID, b, HID));
        EXPECT(FAN_E_INVALID, fan_net_set_weights(F.net, l, w, IN * HID, b, HID));
        EXPECT(FAN_E_INVALID, fan_net_get_feedback(F.net, l, w, IN * HID));
        EXPECT(FAN_E_INVALID, fan_net_set_feedback(F.net, l, w, IN * HID));
        EXPECT(FAN_E_INVALID, fan_net_get_gradients(F.net, l, w, IN * HID, b, HID));
        EXPECT(FAN_E_INVALID, fan_net_set_gradients(F.net, l, w, IN * HID, b, HID));
        EXPECT(FAN_E_INVALID, fan_diag_alignment(F.net, l, v, HID, &a, &a));
        EXPECT(FAN_E_INVALID, fan_diag_singular_values(F.net, l, FAN_MATRIX_WEIGHTS, v, HID));
        EXPECT(FAN_E_INVALID, fan_diag_effective_rank(F.net, l, FAN_MATRIX_WEIGHTS, &a));
        EXPECT(FAN_E_INVALID, fan_diag_participation_ratio(F.net, l, FAN_MATRIX_WEIGHTS, &a));
        EXPECT(FAN_E_INVALID, fan_diag_stable_rank(F.net, l, FAN_MATRIX_WEIGHTS, &a));
        EXPECT(FAN_E_INVALID, fan_diag_principal_angles(F.net, l, 1, v, 1));
        EXPECT(FAN_E_INVALID, fan_diag_gram_dimensionality(F.net, l, F.ds, 0, &a));
    }
    EXPECT(FAN_E_INVALID, fan_diag_gram_dimensionality(F.net, 0, F.ds, 0, &a)); /* inputs are not hidden */
    assert_unchanged();
}

/* ---- handles keep working after failures -------------------------------------------------- */

/* Every kind of failing call from the tests above, on the fixture's handles. */
static void fail_everything_once(void)
{
    float p[ROWS * OUT], x[ROWS * IN], huge[ROWS * IN];
    int32_t y[ROWS];
    memcpy(x, F.x, sizeof x);
    x[0] = NAN;
    memcpy(y, F.y, sizeof y);
    y[0] = OUT;
    for (size_t i = 0; i < ROWS * IN; i++) huge[i] = HUGE_INPUT;
    float loss;
    const float *bx;
    size_t n;
    double a;
    EXPECT(FAN_E_NONFINITE, fan_net_train_batch(F.net, F.opt, x, F.y, ROWS, &loss));
    EXPECT(FAN_E_LABEL, fan_net_train_batch(F.net, F.opt, F.x, y, ROWS, &loss));
    EXPECT(FAN_E_NUMERIC, fan_net_train_batch(F.net, F.opt, huge, F.y, ROWS, &loss));
    EXPECT(FAN_E_NUMERIC, fan_net_compute_gradients(F.net, huge, F.y, ROWS, &loss));
    EXPECT(FAN_E_INVALID, fan_net_train_batch(F.net, F.opt, F.x, F.y, 0, &loss));
    EXPECT(FAN_E_SHAPE, fan_net_forward(F.net, F.x, ROWS, p, 1));
    EXPECT(FAN_E_INVALID, fan_net_set_rule(F.net, (fan_rule)9));
    EXPECT(FAN_E_NONFINITE, fan_net_set_weights(F.net, 1, (const float[HID * OUT]){NAN}, HID * OUT, NULL, 0));
    EXPECT(FAN_E_INVALID, fan_optimizer_set(F.opt, FAN_OPT_LR, -1.0));
    EXPECT(FAN_E_INVALID, fan_optimizer_set(F.opt, FAN_OPT_BETA1, 1.5));
    EXPECT(FAN_E_NULL, fan_iter_next(F.it, &bx, NULL, NULL, NULL));
    EXPECT(FAN_E_INVALID, fan_iter_set(F.it, FAN_ITER_DROP_LAST, 2));
    EXPECT(FAN_E_INVALID, fan_iter_set(F.noise, FAN_ITER_NOISE_STD, 0));
    EXPECT(FAN_E_NULL, fan_iter_next(F.noise, NULL, NULL, NULL, &n));
    EXPECT(FAN_E_INVALID, fan_dataset_set_normalization(F.ds, FAN_NORM_STANDARDIZE, 0, 0));
    EXPECT(FAN_E_INVALID, fan_diag_readout(F.net, F.x, 0, &a, NULL, NULL, 0));
    EXPECT(FAN_E_IO, fan_net_save(F.net, "/nonexistent-dir/x.fan"));
}

/* Two identical runs over all handles; run B meets every failure between its steps. */
static void run_steps(int with_failures, unsigned char **bytes, size_t *len, double *losses)
{
    fx_setup(NULL);
    make_overflowable();
    for (size_t s = 0; s < 6; s++) {
        if (with_failures) fail_everything_once();
        float loss;
        TU_OK_NET(F.net, fan_net_train_batch(F.net, F.opt, F.x, F.y, ROWS, &loss));
        losses[4 * s] = loss;
        TU_OK_NET(F.net, fan_train_steps(F.net, F.opt, F.it, 1, NULL, NULL));
        TU_OK_NET(F.net, fan_pretrain_noise(F.net, F.opt, F.noise, 1, NULL, NULL));
        TU_OK_NET(F.net, fan_net_evaluate(F.net, F.ds, &losses[4 * s + 1], &losses[4 * s + 2]));
        losses[4 * s + 3] = (double)fan_optimizer_steps(F.opt);
    }
    *bytes = net_bytes(F.net, len);
    fx_teardown(NULL);
}

static void test_handles_work_after_failed_calls_exactly_as_without_them(void **state)
{
    (void)state;
    fx_teardown(NULL); /* this test builds its own fixtures twice */
    unsigned char *a, *b;
    size_t la, lb;
    double loss_a[24], loss_b[24];
    run_steps(0, &a, &la, loss_a);
    run_steps(1, &b, &lb, loss_b);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    assert_memory_equal(loss_a, loss_b, sizeof loss_a);
    assert_true(loss_a[23] == 1 + 6 * 3); /* the fixture's step plus three per round */
    free(a);
    free(b);
    fx_setup(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_null_pointers_to_network_functions_give_e_null, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_null_pointers_to_gradient_and_io_functions_give_e_null, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_null_pointers_to_optimizer_functions_give_e_null, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_null_pointers_to_dataset_functions_give_e_null, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_null_pointers_to_iterators_and_training_loops_give_e_null, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_null_pointers_to_diagnostics_give_e_null, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_enumeration_values_out_of_range_are_invalid, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_batches_of_zero_rows_are_invalid, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_layers_of_zero_units_and_bad_layer_counts_are_rejected, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_handles_work_after_failed_calls_exactly_as_without_them, fx_setup, fx_teardown),
    };
    const int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("robustness: %zu bad-input cases checked\n", n_cases);
    return failed;
}
