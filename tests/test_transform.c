/* test_transform.c - translate, rotate, scale and resize on tiny images with known answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

static max_align_t sentinel_storage;
#define SENTINEL ((fan_dataset *)(void *)&sentinel_storage)

/* One-sample uint8 image dataset of w x h x ch (planar) with label 1 of 3 classes. */
static fan_dataset *u8_image(tu_counter *c, const uint8_t *px, size_t w, size_t h, size_t ch)
{
    fan_allocator a = tu_allocator(c);
    const int32_t y[1] = {1};
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_u8(&ds, px, y, 1, w, h, ch, 3, &a));
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_NONE, 0, 0)); /* read raw values back */
    return ds;
}

/* One-sample float image dataset of w x h. */
static fan_dataset *f32_image(tu_counter *c, const float *px, size_t w, size_t h)
{
    fan_allocator a = tu_allocator(c);
    const int32_t y[1] = {2};
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, px, y, 1, w * h, 3, &a));
    TU_OK(fan_dataset_set_shape(ds, w, h, 1));
    return ds;
}

/* Asserts sample 0 of ds equals want[0..n) within tol, and that the label survived. */
static void assert_image(const fan_dataset *ds, const float *want, size_t n, double tol)
{
    float x[28 * 28 * 2];
    assert_int_equal(fan_dataset_dim(ds), n);
    int32_t l = -1;
    TU_OK(fan_dataset_get(ds, 0, x, n, &l));
    assert_true(l == 1 || l == 2);
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(x[i] - want[i]) <= tol)) {
            print_error("pixel %zu: got %g, want %g\n", i, (double)x[i], (double)want[i]);
            fail();
        }
    }
}

static const uint8_t img3[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void test_translate_by_one_pixel_shifts_and_zero_fills(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_dataset *ds = u8_image(&c, img3, 3, 3, 1), *t = NULL;
    TU_OK(fan_dataset_translate(&t, ds, 1.0, 0.0)); /* right */
    assert_image(t, (const float[]){0, 1, 2, 0, 4, 5, 0, 7, 8}, 9, 0);
    fan_dataset_free(t);
    TU_OK(fan_dataset_translate(&t, ds, 0.0, -1.0)); /* up */
    assert_image(t, (const float[]){4, 5, 6, 7, 8, 9, 0, 0, 0}, 9, 0);
    fan_dataset_free(t);
    TU_OK(fan_dataset_translate(&t, ds, -2.0, 1.0));
    assert_image(t, (const float[]){0, 0, 0, 3, 0, 0, 6, 0, 0}, 9, 0);
    fan_dataset_free(t);
    TU_OK(fan_dataset_translate(&t, ds, 1e300, 0.0)); /* far away: all zero, no overflow */
    assert_image(t, (const float[]){0, 0, 0, 0, 0, 0, 0, 0, 0}, 9, 0);
    fan_dataset_free(t);
    TU_OK(fan_dataset_translate(&t, ds, 0.0, 0.0));
    assert_image(t, (const float[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, 9, 0);
    fan_dataset_free(t);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_fractional_translate_interpolates_bilinearly(void **state)
{
    (void)state;
    tu_counter c = {0};
    const float px[3] = {2, 4, 8};
    fan_dataset *ds = f32_image(&c, px, 3, 1), *t = NULL;
    TU_OK(fan_dataset_translate(&t, ds, 0.5, 0.0));
    /* Output x samples the source at x - 0.5; outside pixels count as 0. */
    assert_image(t, (const float[]){1, 3, 6}, 3, 1e-6);
    fan_dataset_free(t);
    TU_OK(fan_dataset_translate(&t, ds, -0.25, 0.0));
    assert_image(t, (const float[]){2.5f, 5, 6}, 3, 1e-6);
    fan_dataset_free(t);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_rotate_quarter_turns_permute_pixels_exactly(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_dataset *ds = u8_image(&c, img3, 3, 3, 1), *r = NULL;
    TU_OK(fan_dataset_rotate(&r, ds, 90.0)); /* counter-clockwise on screen */
    assert_image(r, (const float[]){3, 6, 9, 2, 5, 8, 1, 4, 7}, 9, 0);
    fan_dataset_free(r);
    TU_OK(fan_dataset_rotate(&r, ds, 180.0));
    assert_image(r, (const float[]){9, 8, 7, 6, 5, 4, 3, 2, 1}, 9, 0);
    fan_dataset_free(r);
    TU_OK(fan_dataset_rotate(&r, ds, -90.0));
    assert_image(r, (const float[]){7, 4, 1, 8, 5, 2, 9, 6, 3}, 9, 0);
    fan_dataset_free(r);
    TU_OK(fan_dataset_rotate(&r, ds, 450.0));
    assert_image(r, (const float[]){3, 6, 9, 2, 5, 8, 1, 4, 7}, 9, 0);
    fan_dataset_free(r);
    fan_dataset_free(ds);

    /* An even side rotates about a point between pixels: still an exact permutation. */
    float px4[16];
    for (int i = 0; i < 16; i++) px4[i] = (float)i;
    ds = f32_image(&c, px4, 4, 4);
    TU_OK(fan_dataset_rotate(&r, ds, 90.0));
    float want[16];
    for (int y = 0; y < 4; y++) {
        for (int x = 0; x < 4; x++) want[y * 4 + x] = px4[x * 4 + (3 - y)];
    }
    assert_image(r, want, 16, 0);
    fan_dataset_free(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_rotate_zero_and_scale_one_are_identity(void **state)
{
    (void)state;
    tu_counter c = {0};
    float px[20];
    tu_fill(px, 20, 3, -1.0f, 1.0f);
    fan_dataset *ds = f32_image(&c, px, 5, 4), *r = NULL;
    TU_OK(fan_dataset_rotate(&r, ds, 0.0));
    assert_image(r, px, 20, 0);
    fan_dataset_free(r);
    TU_OK(fan_dataset_rotate(&r, ds, 360.0));
    assert_image(r, px, 20, 0);
    fan_dataset_free(r);
    TU_OK(fan_dataset_scale(&r, ds, 1.0));
    assert_image(r, px, 20, 0);
    fan_dataset_free(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_rotate_45_keeps_the_centre_and_blends_the_rest(void **state)
{
    (void)state;
    tu_counter c = {0};
    const uint8_t px[9] = {0, 0, 0, 0, 200, 0, 0, 0, 0};
    fan_dataset *ds = u8_image(&c, px, 3, 3, 1), *r = NULL;
    TU_OK(fan_dataset_rotate(&r, ds, 45.0));
    float x[9];
    TU_OK(fan_dataset_get(r, 0, x, 9, NULL));
    TU_CLOSE(x[4], 200.0, 0, 0);
    /* Output (1, 0) samples the source at distance 1 from the centre on the diagonal:
       (1 - s)(1 - s) of the centre with s = sin 45 deg, rounded to the nearest uint8. */
    const double s = sqrt(0.5);
    TU_CLOSE(x[1], floor(200.0 * (1 - s) * (1 - s) + 0.5), 0, 0);
    fan_dataset_free(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_scale_two_zooms_about_the_centre(void **state)
{
    (void)state;
    tu_counter c = {0};
    const float px[9] = {0, 0, 0, 0, 8, 4, 0, 0, 0};
    fan_dataset *ds = f32_image(&c, px, 3, 3), *r = NULL;
    TU_OK(fan_dataset_scale(&r, ds, 2.0));
    /* Output (x, y) samples source (1 + (x - 1) / 2, 1 + (y - 1) / 2). */
    assert_image(r, (const float[]){2, 4, 3, 4, 8, 6, 2, 4, 3}, 9, 1e-6);
    fan_dataset_free(r);
    TU_OK(fan_dataset_scale(&r, ds, 0.5));
    /* Shrinking: output (2, 1) samples source (3, 1), outside. */
    assert_image(r, (const float[]){0, 0, 0, 0, 8, 0, 0, 0, 0}, 9, 1e-6);
    fan_dataset_free(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_resize_2x2_to_4x4_gives_the_bilinear_values_of_image_libraries(void **state)
{
    (void)state;
    tu_counter c = {0};
    const float px[4] = {0, 4, 8, 12};
    fan_dataset *ds = f32_image(&c, px, 2, 2), *r = NULL;
    TU_OK(fan_dataset_resize(&r, ds, 4, 4));
    /* PyTorch interpolate(mode="bilinear", align_corners=False) gives the same numbers. */
    const float want[16] = {0, 1, 3, 4, 2, 3, 5, 6, 6, 7, 9, 10, 8, 9, 11, 12};
    assert_image(r, want, 16, 1e-6);
    size_t w, h, ch;
    TU_OK(fan_dataset_shape(r, &w, &h, &ch));
    assert_int_equal(w * 100 + h * 10 + ch, 441);
    fan_dataset_free(r);
    /* Downsampling 4x4 -> 2x2 averages each 2x2 block. */
    float px4[16];
    for (int i = 0; i < 16; i++) px4[i] = (float)i;
    fan_dataset *ds4 = f32_image(&c, px4, 4, 4);
    TU_OK(fan_dataset_resize(&r, ds4, 2, 2));
    assert_image(r, (const float[]){2.5f, 4.5f, 10.5f, 12.5f}, 4, 1e-6);
    fan_dataset_free(r);
    fan_dataset_free(ds4);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_resize_8x8_to_28x28_keeps_a_constant_image_constant(void **state)
{
    (void)state;
    tu_counter c = {0};
    uint8_t px[64];
    memset(px, 137, sizeof px);
    fan_dataset *ds = u8_image(&c, px, 8, 8, 1), *r = NULL;
    TU_OK(fan_dataset_resize(&r, ds, 28, 28));
    assert_int_equal(fan_dataset_dim(r), 784);
    float want[784];
    for (int i = 0; i < 784; i++) want[i] = 137.0f;
    assert_image(r, want, 784, 0);
    fan_dataset_free(r);
    fan_dataset_free(ds);
    float fx[64];
    for (int i = 0; i < 64; i++) fx[i] = 0.3f;
    ds = f32_image(&c, fx, 8, 8);
    TU_OK(fan_dataset_resize(&r, ds, 28, 28));
    for (int i = 0; i < 784; i++) want[i] = 0.3f;
    assert_image(r, want, 784, 1e-6);
    fan_dataset_free(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_transforms_treat_channel_planes_separately(void **state)
{
    (void)state;
    tu_counter c = {0};
    const uint8_t px[8] = {10, 20, 30, 40, 200, 100, 50, 0}; /* two 2x2 planes */
    fan_dataset *ds = u8_image(&c, px, 2, 2, 2), *r = NULL;
    TU_OK(fan_dataset_translate(&r, ds, 1.0, 0.0));
    assert_image(r, (const float[]){0, 10, 0, 30, 0, 200, 0, 50}, 8, 0);
    fan_dataset_free(r);
    TU_OK(fan_dataset_resize(&r, ds, 1, 1));
    size_t ch;
    TU_OK(fan_dataset_shape(r, NULL, NULL, &ch));
    assert_int_equal(ch, 2);
    assert_image(r, (const float[]){25, 88}, 2, 0); /* 87.5 rounds to nearest */
    fan_dataset_free(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_transforms_keep_labels_classes_storage_and_normalisation(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator a = tu_allocator(&c);
    const uint8_t px[8] = {0, 255, 255, 0, 51, 51, 51, 51};
    const int32_t y[2] = {4, 1};
    fan_dataset *ds = NULL, *r = NULL;
    TU_OK(fan_dataset_from_u8(&ds, px, y, 2, 2, 2, 1, 5, &a));
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.2, 0.5));
    TU_OK(fan_dataset_rotate(&r, ds, 90.0));
    assert_int_equal(fan_dataset_size(r), 2);
    assert_int_equal(fan_dataset_classes(r), 5);
    float x[4];
    int32_t l;
    TU_OK(fan_dataset_get(r, 1, x, 4, &l));
    assert_int_equal(l, 1);
    TU_CLOSE(x[0], 0.0, 0, 1e-6); /* (51 / 255 - 0.2) / 0.5 */
    TU_OK(fan_dataset_get(r, 0, x, 4, &l));
    assert_int_equal(l, 4);
    TU_CLOSE(x[0], (1.0 - 0.2) / 0.5, 1e-6, 0); /* the 255 in the top right turned to top left */
    fan_dataset_free(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

static void test_transforms_reject_bad_arguments(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_dataset *ds = u8_image(&c, img3, 3, 3, 1), *r = SENTINEL;
    assert_int_equal(fan_dataset_translate(&r, ds, NAN, 0), FAN_E_INVALID);
    assert_null(r);
    assert_int_equal(fan_dataset_translate(&r, ds, 0, INFINITY), FAN_E_INVALID);
    assert_int_equal(fan_dataset_rotate(&r, ds, NAN), FAN_E_INVALID);
    assert_int_equal(fan_dataset_scale(&r, ds, 0.0), FAN_E_INVALID);
    assert_int_equal(fan_dataset_scale(&r, ds, -2.0), FAN_E_INVALID);
    assert_int_equal(fan_dataset_scale(&r, ds, INFINITY), FAN_E_INVALID);
    assert_int_equal(fan_dataset_resize(&r, ds, 0, 4), FAN_E_INVALID);
    assert_int_equal(fan_dataset_resize(&r, ds, SIZE_MAX, 2), FAN_E_LIMIT);
    assert_true(strlen(fan_dataset_errmsg(ds)) > 0);
    assert_int_equal(fan_dataset_resize(&r, NULL, 2, 2), FAN_E_NULL);
    assert_int_equal(fan_dataset_rotate(NULL, ds, 1.0), FAN_E_NULL);
    assert_null(r);
    fan_dataset_free(ds);
    assert_int_equal(c.live_blocks, 0);
}

/* Each transform, with the Nth allocation failing for N = 1.. until it succeeds. */
static void test_transforms_fail_cleanly_at_every_allocation(void **state)
{
    (void)state;
    for (int which = 0; which < 4; which++) {
        size_t n = 1;
        for (;; n++) {
            tu_counter c = {0};
            fan_dataset *ds = u8_image(&c, img3, 3, 3, 1), *r = SENTINEL;
            c.fail_at = c.total_allocs + n;
            fan_status s;
            switch (which) {
            case 0: s = fan_dataset_translate(&r, ds, 0.5, 1); break;
            case 1: s = fan_dataset_rotate(&r, ds, 30); break;
            case 2: s = fan_dataset_scale(&r, ds, 1.5); break;
            default: s = fan_dataset_resize(&r, ds, 7, 5); break;
            }
            if (s == FAN_OK) {
                fan_dataset_free(r);
            } else {
                assert_int_equal(s, FAN_E_NOMEM);
                assert_null(r);
            }
            fan_dataset_free(ds);
            assert_int_equal(c.live_blocks, 0);
            if (s == FAN_OK) break;
            assert_true(n < 50);
        }
        assert_true(n >= 4); /* taps, handle, labels, samples */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate_by_one_pixel_shifts_and_zero_fills),
        cmocka_unit_test(test_fractional_translate_interpolates_bilinearly),
        cmocka_unit_test(test_rotate_quarter_turns_permute_pixels_exactly),
        cmocka_unit_test(test_rotate_zero_and_scale_one_are_identity),
        cmocka_unit_test(test_rotate_45_keeps_the_centre_and_blends_the_rest),
        cmocka_unit_test(test_scale_two_zooms_about_the_centre),
        cmocka_unit_test(test_resize_2x2_to_4x4_gives_the_bilinear_values_of_image_libraries),
        cmocka_unit_test(test_resize_8x8_to_28x28_keeps_a_constant_image_constant),
        cmocka_unit_test(test_transforms_treat_channel_planes_separately),
        cmocka_unit_test(test_transforms_keep_labels_classes_storage_and_normalisation),
        cmocka_unit_test(test_transforms_reject_bad_arguments),
        cmocka_unit_test(test_transforms_fail_cleanly_at_every_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
