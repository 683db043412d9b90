/* robustness_fixture.h - the fixture shared by test_robustness.c and
   test_robustness_values.c: one of every handle over a 4-3-2 net, snapshots of the net and
   optimizer to prove that failed calls change nothing, and status/message assertions that count
   the cases they check. Test code only; every function is static inline so that a file that does
   not use one does not warn. */
#ifndef FAN_ROBUSTNESS_FIXTURE_H
#define FAN_ROBUSTNESS_FIXTURE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

/* ---- fixture: one of every handle, over a 4-3-2 net ---------------------------------------- */

#define IN 4
#define HID 3
#define OUT 2
#define ROWS 5
#define SAMPLES 12
#define IMG_W 3
#define IMG_H 2

typedef struct fx {
    tu_counter c;
    fan_allocator al;
    fan_net *net;
    fan_optimizer *opt;
    fan_dataset *ds;  /* SAMPLES x IN, OUT classes */
    fan_dataset *img; /* SAMPLES u8 images IMG_W x IMG_H x 1 */
    fan_iter *it, *noise;
    float x[ROWS * IN], t[ROWS * OUT], probs[ROWS * OUT];
    int32_t y[ROWS];
    unsigned char *snap;
    size_t snap_len, live_before;
    uint64_t steps_before;
} fx;

static fx F; /* one fixture per test, set up and torn down by cmocka */

static inline int fx_setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    F.al = tu_allocator(&F.c);
    const size_t sizes[] = {IN, HID, OUT};
    TU_OK(fan_net_create(&F.net, sizes, 3, &F.al));
    TU_OK(fan_optimizer_create(&F.opt, FAN_OPTIMIZER_ADAM, F.net, &F.al));
    float dx[SAMPLES * IN];
    int32_t dy[SAMPLES];
    uint8_t px[SAMPLES * IMG_W * IMG_H];
    tu_fill(dx, SAMPLES * IN, 3, -1.0f, 1.0f);
    for (size_t i = 0; i < SAMPLES; i++) dy[i] = (int32_t)(i % OUT);
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 37);
    TU_OK(fan_dataset_from_arrays(&F.ds, dx, dy, SAMPLES, IN, OUT, &F.al));
    TU_OK(fan_dataset_from_u8(&F.img, px, dy, SAMPLES, IMG_W, IMG_H, 1, OUT, &F.al));
    TU_OK(fan_iter_create_batches(&F.it, F.ds, ROWS, 9, &F.al));
    TU_OK(fan_iter_create_noise(&F.noise, IN, OUT, ROWS, 10, &F.al));
    tu_fill(F.x, ROWS * IN, 4, -1.0f, 1.0f);
    tu_fill(F.t, ROWS * OUT, 5, 0.0f, 1.0f);
    for (size_t i = 0; i < ROWS; i++) F.y[i] = (int32_t)(i % OUT);
    /* Gradients and optimizer moments that are not zero, so "unchanged" means something. */
    TU_OK(fan_net_train_batch(F.net, F.opt, F.x, F.y, ROWS, NULL));
    return 0;
}

static inline int fx_teardown(void **state)
{
    (void)state;
    fan_iter_free(F.noise);
    fan_iter_free(F.it);
    fan_dataset_free(F.img);
    fan_dataset_free(F.ds);
    fan_optimizer_free(F.opt);
    fan_net_free(F.net);
    free(F.snap);
    assert_int_equal(F.c.live_blocks, 0);
    return 0;
}

static inline unsigned char *net_bytes(const fan_net *net, size_t *len)
{
    TU_OK(fan_net_save_mem(net, NULL, 0, len));
    unsigned char *b = malloc(*len);
    TU_OK(fan_net_save_mem(net, b, *len, len));
    return b;
}

/* Remembers the net's bytes (settings, W, b, B), its gradients' effect and the optimizer. */
static inline void snapshot(void)
{
    free(F.snap);
    F.snap = net_bytes(F.net, &F.snap_len);
    F.steps_before = fan_optimizer_steps(F.opt);
    F.live_before = F.c.live_blocks;
}

static inline void assert_unchanged(void)
{
    size_t len;
    unsigned char *now = net_bytes(F.net, &len);
    assert_int_equal(len, F.snap_len);
    assert_memory_equal(now, F.snap, len);
    free(now);
    assert_int_equal(fan_optimizer_steps(F.opt), F.steps_before);
    assert_int_equal(F.c.live_blocks, F.live_before); /* a failure leaks nothing */
}

/* ---- status and message checks ------------------------------------------------------------ */

static size_t n_cases; /* printed at the end, for docs/robustness.md */

static inline void expect(fan_status want, fan_status got, const char *expr, const char *file, int line)
{
    n_cases++;
    if (got != want) {
        print_error("%s:%d: %s returned %d (%s), expected %d (%s)\n", file, line, expr, (int)got,
                    fan_strerror(got), (int)want, fan_strerror(want));
        fail();
    }
}
#define EXPECT(want, call) expect((want), (call), #call, __FILE__, __LINE__)

/* Case-insensitive substring test for messages. */
static inline int mentions(const char *msg, const char *word)
{
    for (const char *p = msg; *p; p++) {
        size_t i = 0;
        while (word[i] && p[i] && (p[i] | 0x20) == (word[i] | 0x20)) i++;
        if (word[i] == '\0') return 1;
    }
    return 0;
}

static inline void expect_msg(const char *msg, const char *word, const char *expr, const char *file,
                       int line)
{
    if (msg == NULL || !mentions(msg, word)) {
        print_error("%s:%d: after %s the message \"%s\" does not mention \"%s\"\n", file, line,
                    expr, msg ? msg : "(null)", word);
        fail();
    }
}

/* Messages persist until the next failure, so each check first plants an unrelated message
   (by a call that fails for another reason), then sees that the call under test replaced it. */
static inline void plant_messages(void)
{
    /* Not counted as cases: these only prepare the message check. */
    const size_t counted = n_cases;
    EXPECT(FAN_E_INVALID, fan_net_set_rule(F.net, (fan_rule)77));
    EXPECT(FAN_E_INVALID, fan_optimizer_set(F.opt, (fan_optimizer_param)77, 0.0));
    EXPECT(FAN_E_SHAPE, fan_dataset_set_shape(F.ds, 77, 1, 1));
    EXPECT(FAN_E_SHAPE, fan_dataset_set_shape(F.img, 77, 1, 1));
    EXPECT(FAN_E_INVALID, fan_iter_set(F.it, (fan_iter_param)77, 0.0));
    EXPECT(FAN_E_INVALID, fan_iter_set(F.noise, (fan_iter_param)77, 0.0));
    n_cases = counted;
}

/* call must fail with status want and the message on `msg` (an expression read after the
   call) must mention word. */
#define EXPECT_MSG(want, call, msg, word)                                                        \
    do {                                                                                         \
        plant_messages();                                                                        \
        expect((want), (call), #call, __FILE__, __LINE__);                                       \
        expect_msg((msg), (word), #call, __FILE__, __LINE__);                                    \
    } while (0)

#define NET_MSG fan_net_errmsg(F.net)
#define OPT_MSG fan_optimizer_errmsg(F.opt)
#define DS_MSG fan_dataset_errmsg(F.ds)
#define IMG_MSG fan_dataset_errmsg(F.img)
#define IT_MSG fan_iter_errmsg(F.it)
#define NOISE_MSG fan_iter_errmsg(F.noise)

/* A non-NULL pointer that must come back as NULL from a failed constructor. */
static int sentinel_storage;
#define SENTINEL ((void *)&sentinel_storage)

/* ---- NaN and infinity --------------------------------------------------------------------- */

/* Positive first-layer weights and mixed-sign output weights: inputs of 3e38 then overflow to
   +inf in every hidden unit and to inf - inf = NaN at the outputs, a sure non-finite loss
   (with random weights, ReLU may silence every overflowing unit and keep the loss finite). */
#define HUGE_INPUT 3e38f
static inline void make_overflowable(void)
{
    float w0[IN * HID], w1[HID * OUT];
    for (size_t i = 0; i < IN * HID; i++) w0[i] = 0.5f;
    for (size_t i = 0; i < HID * OUT; i++) w1[i] = i % 2 ? -0.5f : 0.5f;
    TU_OK_NET(F.net, fan_net_set_weights(F.net, 0, w0, IN * HID, NULL, 0));
    TU_OK_NET(F.net, fan_net_set_weights(F.net, 1, w1, HID * OUT, NULL, 0));
}

#endif
