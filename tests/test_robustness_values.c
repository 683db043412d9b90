/* test_robustness_values.c - bad values across the public API: nets and data of different
   shapes, buffer lengths that do not match, NaN and infinity in inputs, weights, targets and
   settings, losses that overflow, and labels out of range. Each gives its documented status and
   message and leaves every handle exactly as it was (see robustness_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "robustness_fixture.h"

/* ---- shapes that do not match ------------------------------------------------------------- */

static fan_dataset *dataset_of(size_t dim, size_t classes, const fan_allocator *al)
{
    float x[SAMPLES * (IN + 1)];
    int32_t y[SAMPLES];
    tu_fill(x, SAMPLES * dim, 11, -1.0f, 1.0f);
    for (size_t i = 0; i < SAMPLES; i++) y[i] = (int32_t)(i % classes);
    fan_dataset *d = NULL;
    TU_OK(fan_dataset_from_arrays(&d, x, y, SAMPLES, dim, classes, al));
    return d;
}

static void test_net_and_data_of_different_shapes_give_e_shape(void **state)
{
    (void)state;
    fan_dataset *wide = dataset_of(IN + 1, OUT, &F.al), *more = dataset_of(IN, OUT + 1, &F.al);
    fan_iter *wide_it = NULL, *more_it = NULL, *wide_noise = NULL, *more_noise = NULL;
    TU_OK(fan_iter_create_batches(&wide_it, wide, ROWS, 1, &F.al));
    TU_OK(fan_iter_create_batches(&more_it, more, ROWS, 1, &F.al));
    TU_OK(fan_iter_create_noise(&wide_noise, IN + 1, OUT, ROWS, 1, &F.al));
    TU_OK(fan_iter_create_noise(&more_noise, IN, OUT + 1, ROWS, 1, &F.al));
    const size_t other_sizes[] = {IN, HID + 1, OUT};
    fan_net *other = NULL;
    fan_optimizer *other_opt = NULL;
    TU_OK(fan_net_create(&other, other_sizes, 3, &F.al));
    TU_OK(fan_optimizer_create(&other_opt, FAN_OPTIMIZER_SGD, other, &F.al));
    snapshot();
    double a;
    EXPECT_MSG(FAN_E_SHAPE, fan_train(F.net, F.opt, wide_it, 1, NULL, NULL), NET_MSG, "inputs");
    EXPECT(FAN_E_SHAPE, fan_train(F.net, F.opt, more_it, 1, NULL, NULL));
    EXPECT(FAN_E_SHAPE, fan_train_steps(F.net, F.opt, wide_it, 1, NULL, NULL));
    EXPECT(FAN_E_SHAPE, fan_pretrain_noise(F.net, F.opt, wide_noise, 1, NULL, NULL));
    EXPECT(FAN_E_SHAPE, fan_pretrain_noise(F.net, F.opt, more_noise, 1, NULL, NULL));
    EXPECT(FAN_E_SHAPE, fan_net_evaluate(F.net, wide, &a, &a));
    EXPECT(FAN_E_SHAPE, fan_net_evaluate(F.net, more, &a, &a));
    EXPECT(FAN_E_SHAPE, fan_diag_gram_dimensionality(F.net, 1, wide, 0, &a));
    EXPECT(FAN_E_SHAPE, fan_diag_calibration_error(F.net, wide, 4, &a));
    EXPECT(FAN_E_SHAPE, fan_diag_calibration_error(F.net, more, 4, &a));
    /* An optimizer sized for another net. */
    EXPECT_MSG(FAN_E_SHAPE, fan_optimizer_step(other_opt, F.net), fan_optimizer_errmsg(other_opt), "shape");
    EXPECT(FAN_E_SHAPE, fan_net_train_batch(F.net, other_opt, F.x, F.y, ROWS, NULL));
    EXPECT(FAN_E_SHAPE, fan_train(F.net, other_opt, F.it, 1, NULL, NULL));
    /* Training loops over the wrong kind of iterator. */
    EXPECT(FAN_E_INVALID, fan_train(F.net, F.opt, F.noise, 1, NULL, NULL));
    EXPECT(FAN_E_INVALID, fan_pretrain_noise(F.net, F.opt, F.it, 1, NULL, NULL));
    assert_unchanged();
    fan_optimizer_free(other_opt);
    fan_net_free(other);
    fan_iter_free(wide_it);
    fan_iter_free(more_it);
    fan_iter_free(wide_noise);
    fan_iter_free(more_noise);
    fan_dataset_free(wide);
    fan_dataset_free(more);
}

static void test_buffer_lengths_that_do_not_match_give_e_shape(void **state)
{
    (void)state;
    snapshot();
    float w[IN * HID + 1], b[HID + 1], p[ROWS * OUT + 1];
    double v[HID + 2], a;
    char need[32];
    /* The message says the required size. */
    snprintf(need, sizeof need, "%d", ROWS * OUT);
    EXPECT_MSG(FAN_E_SHAPE, fan_net_forward(F.net, F.x, ROWS, p, ROWS * OUT + 1), NET_MSG, need);
    EXPECT(FAN_E_SHAPE, fan_net_forward(F.net, F.x, ROWS, p, ROWS * OUT - 1));
    snprintf(need, sizeof need, "%d", IN * HID);
    EXPECT_MSG(FAN_E_SHAPE, fan_net_get_weights(F.net, 0, w, IN * HID + 1, NULL, 0), NET_MSG, need);
    EXPECT(FAN_E_SHAPE, fan_net_get_weights(F.net, 0, NULL, 0, b, HID + 1));
    EXPECT(FAN_E_SHAPE, fan_net_set_weights(F.net, 0, w, IN * HID - 1, NULL, 0));
    EXPECT(FAN_E_SHAPE, fan_net_set_weights(F.net, 0, w, IN * HID, b, HID - 1)); /* W must stay too */
    EXPECT(FAN_E_SHAPE, fan_net_get_feedback(F.net, 0, w, IN * HID + 1));
    EXPECT(FAN_E_SHAPE, fan_net_set_feedback(F.net, 0, w, 0));
    EXPECT(FAN_E_SHAPE, fan_net_get_gradients(F.net, 0, w, 1, NULL, 0));
    EXPECT(FAN_E_SHAPE, fan_net_set_gradients(F.net, 0, NULL, 0, b, HID + 1));
    EXPECT(FAN_E_SHAPE, fan_diag_alignment(F.net, 1, v, HID + 1, &a, NULL));
    EXPECT(FAN_E_SHAPE, fan_diag_singular_values(F.net, 0, FAN_MATRIX_WEIGHTS, v, HID + 1));
    EXPECT(FAN_E_SHAPE, fan_diag_delta_alignment(F.net, F.x, F.y, ROWS, v, 3));
    EXPECT(FAN_E_SHAPE, fan_diag_principal_angles(F.net, 0, 1, v, 2));
    EXPECT(FAN_E_INVALID, fan_diag_principal_angles(F.net, 0, HID + 1, v, HID + 1)); /* k > min */
    size_t written = 0;
    unsigned char small[8];
    EXPECT(FAN_E_SHAPE, fan_net_save_mem(F.net, small, sizeof small, &written));
    assert_int_equal(written, F.snap_len); /* the size needed */
    float row[IN + 1];
    size_t counts[OUT + 1];
    EXPECT_MSG(FAN_E_SHAPE, fan_dataset_get(F.ds, 0, row, IN + 1, NULL), DS_MSG, "dim");
    EXPECT(FAN_E_SHAPE, fan_dataset_class_counts(F.ds, counts, OUT + 1));
    EXPECT(FAN_E_SHAPE, fan_dataset_set_shape(F.ds, 3, 1, 1));
    EXPECT(FAN_E_INVALID, fan_dataset_get(F.ds, SAMPLES, row, IN, NULL));
    size_t width, height, ch;
    TU_OK(fan_dataset_shape(F.ds, &width, &height, &ch));
    assert_true(width == IN && height == 1 && ch == 1); /* the failed set_shape changed nothing */
    assert_unchanged();
}

static void test_nan_and_infinity_are_rejected_where_documented(void **state)
{
    (void)state;
    const float bad[] = {NAN, INFINITY, -INFINITY};
    make_overflowable();
    snapshot();
    for (size_t k = 0; k < 3; k++) {
        float x[ROWS * IN], t[ROWS * OUT], w[IN * HID], b[HID];
        memcpy(x, F.x, sizeof x);
        memcpy(t, F.t, sizeof t);
        x[ROWS * IN - 1] = bad[k]; /* the last element, so a check that stops early misses it */
        t[ROWS * OUT - 1] = bad[k];
        for (size_t i = 0; i < IN * HID; i++) w[i] = 0.5f;
        for (size_t i = 0; i < HID; i++) b[i] = 0.5f;
        w[IN * HID - 1] = bad[k];
        b[0] = bad[k];
        float loss;
        double dl;
        EXPECT_MSG(FAN_E_NONFINITE, fan_net_compute_gradients(F.net, x, F.y, ROWS, &loss), NET_MSG, "x");
        EXPECT(FAN_E_NONFINITE, fan_net_compute_gradients_targets(F.net, x, F.t, ROWS, &loss));
        EXPECT(FAN_E_NONFINITE, fan_net_compute_gradients_targets(F.net, F.x, t, ROWS, &loss));
        EXPECT(FAN_E_NONFINITE, fan_net_train_batch(F.net, F.opt, x, F.y, ROWS, &loss));
        EXPECT(FAN_E_NONFINITE, fan_net_train_batch_targets(F.net, F.opt, F.x, t, ROWS, &loss));
        EXPECT(FAN_E_NONFINITE, fan_net_loss_value(F.net, x, F.y, ROWS, &dl));
        EXPECT(FAN_E_NONFINITE, fan_net_set_weights(F.net, 0, w, IN * HID, NULL, 0));
        EXPECT(FAN_E_NONFINITE, fan_net_set_weights(F.net, 0, NULL, 0, b, HID));
        EXPECT(FAN_E_NONFINITE, fan_net_set_feedback(F.net, 0, w, IN * HID));
        EXPECT(FAN_E_NONFINITE, fan_net_set_gradients(F.net, 0, w, IN * HID, NULL, 0));
        fan_dataset *d = SENTINEL;
        EXPECT(FAN_E_NONFINITE, fan_dataset_from_arrays(&d, x, F.y, ROWS, IN, OUT, &F.al));
        assert_null(d);
        /* Settings: NaN and infinity are outside every range. */
        EXPECT(FAN_E_INVALID, fan_net_set(F.net, FAN_NET_LEAKY_SLOPE, bad[k]));
        EXPECT(FAN_E_INVALID, fan_optimizer_set(F.opt, FAN_OPT_LR, bad[k]));
        EXPECT(FAN_E_INVALID, fan_optimizer_set(F.opt, FAN_OPT_BETA2, bad[k]));
        EXPECT(FAN_E_INVALID, fan_iter_set(F.noise, FAN_ITER_NOISE_STD, bad[k]));
        EXPECT(FAN_E_INVALID, fan_iter_set(F.noise, FAN_ITER_NOISE_MEAN, bad[k]));
        EXPECT(FAN_E_INVALID, fan_iter_set(F.it, FAN_ITER_SHUFFLE, bad[k]));
        EXPECT(FAN_E_INVALID, fan_dataset_set_normalization(F.ds, FAN_NORM_STANDARDIZE, bad[k], 1));
        EXPECT(FAN_E_INVALID, fan_dataset_set_normalization(F.ds, FAN_NORM_STANDARDIZE, 0, bad[k]));
        EXPECT(FAN_E_INVALID, fan_dataset_translate(&d, F.img, bad[k], 0));
        EXPECT(FAN_E_INVALID, fan_dataset_rotate(&d, F.img, bad[k]));
        EXPECT(FAN_E_INVALID, fan_dataset_scale(&d, F.img, bad[k]));
        assert_null(d);
        const double sv[2] = {1.0, bad[k]};
        double a;
        EXPECT(FAN_E_INVALID, fan_spectrum_summary(sv, 2, &a, &a, &a));
        EXPECT(FAN_E_NONFINITE, fan_matrix_singular_values(w, HID, IN, &a, 1 < HID ? HID : 1, NULL));
        EXPECT(FAN_E_NONFINITE, fan_matrix_effective_rank(w, HID, IN, &a, NULL));
        EXPECT(FAN_E_NONFINITE, fan_matrix_angle(w, w, IN * HID, &a));
    }
    /* Finite inputs whose loss overflows: FAN_E_NUMERIC, nothing applied. */
    float huge[ROWS * IN];
    for (size_t i = 0; i < ROWS * IN; i++) huge[i] = HUGE_INPUT;
    float loss;
    EXPECT_MSG(FAN_E_NUMERIC, fan_net_train_batch(F.net, F.opt, huge, F.y, ROWS, &loss), NET_MSG, "no update");
    assert_unchanged();
}

/* ---- labels ------------------------------------------------------------------------------- */

static void test_labels_out_of_range_give_e_label(void **state)
{
    (void)state;
    snapshot();
    const int32_t bad[] = {OUT, -1, INT32_MAX, INT32_MIN};
    for (size_t k = 0; k < 4; k++) {
        int32_t y[ROWS];
        memcpy(y, F.y, sizeof y);
        y[ROWS - 1] = bad[k];
        float loss;
        double dl, v[2];
        EXPECT_MSG(FAN_E_LABEL, fan_net_compute_gradients(F.net, F.x, y, ROWS, &loss), NET_MSG, "label");
        EXPECT(FAN_E_LABEL, fan_net_train_batch(F.net, F.opt, F.x, y, ROWS, &loss));
        EXPECT(FAN_E_LABEL, fan_net_loss_value(F.net, F.x, y, ROWS, &dl));
        EXPECT(FAN_E_LABEL, fan_diag_delta_alignment(F.net, F.x, y, ROWS, v, 2));
        fan_dataset *d = SENTINEL;
        EXPECT(FAN_E_LABEL, fan_dataset_from_arrays(&d, F.x, y, ROWS, IN, OUT, &F.al));
        assert_null(d);
        const uint8_t px[ROWS] = {0};
        EXPECT(FAN_E_LABEL, fan_dataset_from_u8(&d, px, y, ROWS, 1, 1, 1, OUT, &F.al));
        assert_null(d);
    }
    assert_unchanged();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_net_and_data_of_different_shapes_give_e_shape, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_buffer_lengths_that_do_not_match_give_e_shape, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_nan_and_infinity_are_rejected_where_documented, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_labels_out_of_range_give_e_label, fx_setup, fx_teardown),
    };
    const int failed = cmocka_run_group_tests(tests, NULL, NULL);
    printf("robustness values: %zu bad-input cases checked\n", n_cases);
    return failed;
}
