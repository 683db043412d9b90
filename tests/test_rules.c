/* test_rules.c - every learning rule against a double-precision reference written here from the
   rules' equations (docs/rules.md), and the properties each rule promises: DFA equals FA with one
   hidden layer, KP's exact contraction of W - B, weight mirrors aligning B with W, brSF's
   reproducible per-batch draws, save/load round trips, version-1 files, noise pretraining. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fanoise.h"
#include "testutil.h"

#define N_RULES 8
static const fan_rule ALL_RULES[N_RULES] = {FAN_RULE_BP,   FAN_RULE_FA,   FAN_RULE_DFA,
                                            FAN_RULE_USF,  FAN_RULE_BRSF, FAN_RULE_FRSF,
                                            FAN_RULE_KP,   FAN_RULE_WM};

/* A 6-5-4-3 net: two hidden layers, so that DFA differs from FA, with tanh and leaky ReLU so
   that the derivative matters. */
static const size_t SIZES[] = {6, 5, 4, 3};
#define NL 3
#define BATCH 7

static fan_net *make_net(fan_rule rule, uint64_t wseed, uint64_t fseed)
{
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, SIZES, NL + 1, NULL));
    TU_OK(fan_net_set_activation(net, 0, FAN_ACT_TANH));
    TU_OK(fan_net_set_activation(net, 1, FAN_ACT_LEAKY_RELU));
    TU_OK(fan_net_set(net, FAN_NET_LEAKY_SLOPE, 0.1));
    TU_OK(fan_net_set_rule(net, rule));
    TU_OK(fan_net_init(net, wseed, fseed));
    /* Non-zero biases, so that their gradients and the forward pass are exercised too. */
    for (size_t l = 0; l < NL; l++) {
        float b[8];
        tu_fill(b, SIZES[l + 1], 100 + l, -0.2f, 0.2f);
        TU_OK(fan_net_set_weights(net, l, NULL, 0, b, SIZES[l + 1]));
    }
    return net;
}

static void batch(float *x, int32_t *y, uint64_t seed)
{
    tu_fill(x, BATCH * SIZES[0], seed, -1.5f, 1.5f);
    for (size_t i = 0; i < BATCH; i++) y[i] = (int32_t)((i * 7 + seed) % SIZES[NL]);
}

/* ---- the reference ------------------------------------------------------------------------- */

typedef struct mat {
    size_t rows, cols;
    double v[64];
} mat;

static double act_of(fan_activation a, double z)
{
    return a == FAN_ACT_TANH ? tanh(z) : a == FAN_ACT_LEAKY_RELU ? (z > 0 ? z : 0.1 * z) : z;
}

/* phi'(z) from h = phi(z). */
static double dact_of(fan_activation a, double h)
{
    return a == FAN_ACT_TANH ? 1 - h * h : a == FAN_ACT_LEAKY_RELU ? (h > 0 ? 1 : 0.1) : 1;
}

static void get_w(const fan_net *net, size_t l, mat *w, double *b)
{
    float wf[64], bf[8];
    const size_t out = SIZES[l + 1], in = SIZES[l];
    TU_OK(fan_net_get_weights(net, l, wf, out * in, bf, out));
    w->rows = out;
    w->cols = in;
    for (size_t i = 0; i < out * in; i++) w->v[i] = wf[i];
    for (size_t i = 0; i < out; i++) b[i] = bf[i];
}

/* The feedback matrix the test expects rule `r` to use at layer l, built from W and the stored
   B (read under FA, which keeps it), never from the library's own effective matrix. */
static void expected_feedback(fan_rule r, const mat *w, const mat *stored, mat *m)
{
    *m = *stored;
    if (r == FAN_RULE_BP) {
        *m = *w;
    } else if (r == FAN_RULE_USF) {
        const double s = sqrt(2.0 / (double)w->cols); /* He-normal's std for fan_in = cols */
        for (size_t i = 0; i < w->rows * w->cols; i++)
            m->v[i] = w->v[i] > 0 ? s : w->v[i] < 0 ? -s : 0;
    } else if (r == FAN_RULE_FRSF) {
        for (size_t i = 0; i < w->rows * w->cols; i++)
            m->v[i] = w->v[i] > 0 ? fabs(stored->v[i]) : w->v[i] < 0 ? -fabs(stored->v[i]) : 0;
    }
}

/* Gradients of the mean cross-entropy by the rule's equations: dW[l] (out x in) and db[l]. */
static void reference_gradients(fan_rule r, const fan_net *net, const mat *fb, const float *x,
                                const int32_t *y, double dw[NL][64], double db[NL][8])
{
    mat w[NL];
    double b[NL][8], h[NL + 1][BATCH][8], d[NL + 1][BATCH][8];
    for (size_t l = 0; l < NL; l++) get_w(net, l, &w[l], b[l]);
    for (size_t i = 0; i < BATCH; i++)
        for (size_t j = 0; j < SIZES[0]; j++) h[0][i][j] = x[i * SIZES[0] + j];
    for (size_t l = 0; l < NL; l++)
        for (size_t i = 0; i < BATCH; i++)
            for (size_t o = 0; o < SIZES[l + 1]; o++) {
                double z = b[l][o];
                for (size_t k = 0; k < SIZES[l]; k++) z += w[l].v[o * SIZES[l] + k] * h[l][i][k];
                h[l + 1][i][o] = act_of(fan_net_activation(net, l), z);
            }
    /* Output error of softmax + cross-entropy, with the 1/n of the mean. */
    for (size_t i = 0; i < BATCH; i++) {
        double mx = h[NL][i][0], sum = 0;
        for (size_t o = 1; o < SIZES[NL]; o++) mx = h[NL][i][o] > mx ? h[NL][i][o] : mx;
        for (size_t o = 0; o < SIZES[NL]; o++) sum += exp(h[NL][i][o] - mx);
        for (size_t o = 0; o < SIZES[NL]; o++)
            d[NL][i][o] = (exp(h[NL][i][o] - mx) / sum - (y[i] == (int32_t)o)) / BATCH;
    }
    for (size_t l = NL; l-- > 1;) {
        /* The error at the inputs of layer l: from the layer above (delta * M), or for DFA
           from the output error (e * B_l). */
        double(*src)[8] = r == FAN_RULE_DFA ? d[NL] : d[l + 1];
        for (size_t i = 0; i < BATCH; i++)
            for (size_t k = 0; k < SIZES[l]; k++) {
                double s = 0;
                for (size_t o = 0; o < fb[l].rows; o++) s += src[i][o] * fb[l].v[o * SIZES[l] + k];
                d[l][i][k] = s * dact_of(fan_net_activation(net, l - 1), h[l][i][k]);
            }
    }
    for (size_t l = 0; l < NL; l++) {
        for (size_t o = 0; o < SIZES[l + 1]; o++) {
            db[l][o] = 0;
            for (size_t i = 0; i < BATCH; i++) db[l][o] += d[l + 1][i][o];
            for (size_t k = 0; k < SIZES[l]; k++) {
                double s = 0;
                for (size_t i = 0; i < BATCH; i++) s += d[l + 1][i][o] * h[l][i][k];
                dw[l][o * SIZES[l] + k] = s;
            }
        }
    }
}

/* The stored B_l of a net, read under FA (every rule but DFA keeps W's shape and FA's B). */
static void stored_feedback(fan_net *net, size_t l, mat *m)
{
    const fan_rule r = fan_net_rule(net);
    if (r != FAN_RULE_DFA) TU_OK(fan_net_set_rule(net, FAN_RULE_FA));
    size_t rows, cols;
    TU_OK(fan_net_feedback_shape(net, l, &rows, &cols));
    float f[64];
    TU_OK(fan_net_get_feedback(net, l, f, rows * cols));
    m->rows = rows;
    m->cols = cols;
    for (size_t i = 0; i < rows * cols; i++) m->v[i] = f[i];
    if (r != FAN_RULE_DFA) TU_OK(fan_net_set_rule(net, r));
}

static void assert_gradients_match(const fan_net *net, double dw[NL][64], double db[NL][8])
{
    for (size_t l = 0; l < NL; l++) {
        float gw[64], gb[8];
        const size_t out = SIZES[l + 1], in = SIZES[l];
        TU_OK(fan_net_get_gradients(net, l, gw, out * in, gb, out));
        for (size_t i = 0; i < out * in; i++) TU_CLOSE(gw[i], dw[l][i], 1e-4, 1e-6);
        for (size_t i = 0; i < out; i++) TU_CLOSE(gb[i], db[l][i], 1e-4, 1e-6);
    }
}

static void test_every_rule_computes_the_gradients_of_its_equations(void **state)
{
    (void)state;
    float x[BATCH * 6];
    int32_t y[BATCH];
    batch(x, y, 3);
    for (int k = 0; k < N_RULES; k++) {
        const fan_rule r = ALL_RULES[k];
        fan_net *net = make_net(r, 11, 12);
        mat w, fb[NL];
        double b[8];
        float loss;
        TU_OK_NET(net, fan_net_compute_gradients(net, x, y, BATCH, &loss));
        for (size_t l = 0; l < NL; l++) {
            mat stored;
            get_w(net, l, &w, b);
            if (r == FAN_RULE_BRSF) {
                /* brSF's magnitudes are the batch's own draw: read the matrix it used, and
                   check that it is sign-concordant with W. */
                float f[64];
                TU_OK(fan_net_get_feedback(net, l, f, w.rows * w.cols));
                fb[l] = w;
                for (size_t i = 0; i < w.rows * w.cols; i++) {
                    fb[l].v[i] = f[i];
                    assert_true(f[i] * w.v[i] > 0 || (w.v[i] == 0 && f[i] == 0));
                }
            } else {
                stored_feedback(net, l, &stored);
                expected_feedback(r, &w, &stored, &fb[l]);
            }
        }
        double dw[NL][64], db[NL][8];
        reference_gradients(r, net, fb, x, y, dw, db);
        assert_gradients_match(net, dw, db);
        fan_net_free(net);
    }
}

static void test_dfa_equals_fa_bit_for_bit_with_one_hidden_layer(void **state)
{
    (void)state;
    const size_t sizes[] = {6, 5, 3};
    fan_net *fa = NULL, *dfa = NULL;
    TU_OK(fan_net_create(&fa, sizes, 3, NULL));
    TU_OK(fan_net_create(&dfa, sizes, 3, NULL));
    TU_OK(fan_net_set_rule(dfa, FAN_RULE_DFA));
    TU_OK(fan_net_init(fa, 5, 6));
    TU_OK(fan_net_init(dfa, 5, 6));
    float x[BATCH * 6], ga[30], gb[30], fa_b[15], dfa_b[15];
    int32_t y[BATCH];
    batch(x, y, 9);
    TU_OK(fan_net_get_feedback(fa, 1, fa_b, 15));
    TU_OK(fan_net_get_feedback(dfa, 1, dfa_b, 15));
    assert_memory_equal(fa_b, dfa_b, sizeof fa_b);
    TU_OK(fan_net_compute_gradients(fa, x, y, BATCH, NULL));
    TU_OK(fan_net_compute_gradients(dfa, x, y, BATCH, NULL));
    for (size_t l = 0; l < 2; l++) {
        const size_t n = sizes[l] * sizes[l + 1];
        TU_OK(fan_net_get_gradients(fa, l, ga, n, NULL, 0));
        TU_OK(fan_net_get_gradients(dfa, l, gb, n, NULL, 0));
        assert_memory_equal(ga, gb, n * sizeof *ga);
    }
    fan_net_free(fa);
    fan_net_free(dfa);
}

static void test_dfa_feedback_shapes_and_rule_switches(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 1, 2);
    float before[NL][64], after[64];
    for (size_t l = 0; l < NL; l++)
        TU_OK(fan_net_get_feedback(net, l, before[l], SIZES[l] * SIZES[l + 1]));
    TU_OK(fan_net_set_rule(net, FAN_RULE_DFA));
    size_t rows, cols;
    for (size_t l = 0; l < NL; l++) {
        TU_OK(fan_net_feedback_shape(net, l, &rows, &cols));
        assert_int_equal(rows, SIZES[NL]); /* (net outputs) x layer inputs */
        assert_int_equal(cols, SIZES[l]);
    }
    /* The top layer keeps its B; the others have a new shape, drawn from the feedback seed. */
    TU_OK(fan_net_get_feedback(net, NL - 1, after, SIZES[NL] * SIZES[NL - 1]));
    assert_memory_equal(after, before[NL - 1], SIZES[NL] * SIZES[NL - 1] * sizeof(float));
    assert_int_equal(fan_net_get_feedback(net, 0, after, SIZES[0] * SIZES[1]), FAN_E_SHAPE);
    assert_non_null(strstr(fan_net_errmsg(net), "18")); /* the length it needs: 3 x 6 */
    /* Back to FA: the same seed's draws, so the same B as before. */
    TU_OK(fan_net_set_rule(net, FAN_RULE_FA));
    for (size_t l = 0; l < NL; l++) {
        TU_OK(fan_net_feedback_shape(net, l, &rows, &cols));
        assert_int_equal(rows, SIZES[l + 1]);
        TU_OK(fan_net_get_feedback(net, l, after, rows * cols));
        assert_memory_equal(after, before[l], rows * cols * sizeof(float));
    }
    /* A B set by the user survives switches between rules that keep its shape. */
    float mine[64];
    tu_fill(mine, 20, 4, -1, 1);
    TU_OK(fan_net_set_feedback(net, 1, mine, 20));
    TU_OK(fan_net_set_rule(net, FAN_RULE_KP));
    TU_OK(fan_net_set_rule(net, FAN_RULE_FA));
    TU_OK(fan_net_get_feedback(net, 1, after, 20));
    assert_memory_equal(after, mine, 20 * sizeof(float));
    fan_net_free(net);
}

static void test_kp_shrinks_w_minus_b_by_one_minus_lr_times_decay(void **state)
{
    (void)state;
    const double lr = 0.05, wd = 0.2;
    const fan_optimizer_kind kinds[] = {FAN_OPTIMIZER_SGD, FAN_OPTIMIZER_ADAM};
    for (int k = 0; k < 2; k++) {
        fan_net *net = make_net(FAN_RULE_KP, 3, 4);
        fan_optimizer *opt = NULL;
        TU_OK(fan_optimizer_create(&opt, kinds[k], net, NULL));
        TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, lr));
        TU_OK(fan_optimizer_set(opt, FAN_OPT_WEIGHT_DECAY, wd));
        float x[BATCH * 6];
        int32_t y[BATCH];
        for (int step = 0; step < 20; step++) {
            float w0[NL][64], b0[NL][64], w1[64], b1[64];
            for (size_t l = 0; l < NL; l++) {
                const size_t n = SIZES[l] * SIZES[l + 1];
                TU_OK(fan_net_get_weights(net, l, w0[l], n, NULL, 0));
                TU_OK(fan_net_get_feedback(net, l, b0[l], n));
            }
            batch(x, y, 20 + (uint64_t)step);
            TU_OK_NET(net, fan_net_train_batch(net, opt, x, y, BATCH, NULL));
            for (size_t l = 0; l < NL; l++) {
                const size_t n = SIZES[l] * SIZES[l + 1];
                TU_OK(fan_net_get_weights(net, l, w1, n, NULL, 0));
                TU_OK(fan_net_get_feedback(net, l, b1, n));
                for (size_t i = 0; i < n; i++) {
                    const double d0 = (double)w0[l][i] - b0[l][i], d1 = (double)w1[i] - b1[i];
                    TU_CLOSE(d1, (1 - lr * wd) * d0, 1e-4, 2e-7);
                }
                if (kinds[k] == FAN_OPTIMIZER_SGD) {
                    /* Plain SGD: B gets exactly W's gradient step and its own decay. */
                    float g[64];
                    TU_OK(fan_net_get_gradients(net, l, g, n, NULL, 0));
                    for (size_t i = 0; i < n; i++)
                        TU_CLOSE(b1[i], b0[l][i] - lr * (g[i] + wd * b0[l][i]), 1e-4, 2e-7);
                }
            }
        }
        fan_optimizer_free(opt);
        fan_net_free(net);
    }
}

static void test_weight_mirror_turns_b_toward_w(void **state)
{
    (void)state;
    const fan_rule rules[] = {FAN_RULE_WM, FAN_RULE_FA, FAN_RULE_KP, FAN_RULE_DFA};
    for (int k = 0; k < 4; k++) {
        fan_net *net = make_net(rules[k], 7, 8);
        double before[NL], after[NL];
        for (size_t l = 0; l < NL; l++)
            TU_OK(fan_diag_alignment(net, l, NULL, 0, NULL, &before[l]));
        float w0[64], w1[64];
        TU_OK(fan_net_get_weights(net, 1, w0, 20, NULL, 0));
        TU_OK_NET(net, fan_net_mirror(net, 300, 32, 0.05, 0.5, 99));
        TU_OK(fan_net_get_weights(net, 1, w1, 20, NULL, 0));
        assert_memory_equal(w0, w1, sizeof(float) * 20); /* W untouched */
        for (size_t l = 0; l < NL; l++) {
            TU_OK(fan_diag_alignment(net, l, NULL, 0, NULL, &after[l]));
            assert_true(before[l] > 45.0);
            assert_true(after[l] < 20.0);
        }
        fan_net_free(net);
    }
    /* Rules whose error pass reads no stored B have nothing to mirror. */
    const fan_rule none[] = {FAN_RULE_BP, FAN_RULE_USF, FAN_RULE_BRSF};
    for (int k = 0; k < 3; k++) {
        fan_net *net = make_net(none[k], 7, 8);
        assert_int_equal(fan_net_mirror(net, 10, 8, 0.1, 0, 1), FAN_E_UNSUPPORTED);
        assert_non_null(strstr(fan_net_errmsg(net), fan_rule_name(none[k])));
        fan_net_free(net);
    }
    fan_net *net = make_net(FAN_RULE_WM, 7, 8);
    assert_int_equal(fan_net_mirror(NULL, 10, 8, 0.1, 0, 1), FAN_E_NULL);
    assert_int_equal(fan_net_mirror(net, 10, 0, 0.1, 0, 1), FAN_E_INVALID);
    assert_int_equal(fan_net_mirror(net, 10, 8, -0.1, 0, 1), FAN_E_INVALID);
    assert_int_equal(fan_net_mirror(net, 10, 8, NAN, 0, 1), FAN_E_INVALID);
    assert_int_equal(fan_net_mirror(net, 10, 8, 0.1, -1, 1), FAN_E_INVALID);
    /* A mirror phase that diverges leaves B exactly as it was. */
    float b0[30], b1[30];
    TU_OK(fan_net_get_feedback(net, 0, b0, 30));
    assert_int_equal(fan_net_mirror(net, 10, 8, 1e6, 1e6, 1), FAN_E_NUMERIC);
    TU_OK(fan_net_get_feedback(net, 0, b1, 30));
    assert_memory_equal(b0, b1, sizeof b0);
    fan_net_free(net);
}

static void test_brsf_redraws_every_batch_reproducibly(void **state)
{
    (void)state;
    fan_net *a = make_net(FAN_RULE_BRSF, 1, 2), *b = make_net(FAN_RULE_BRSF, 1, 2);
    float x[BATCH * 6], fa[20], fb[20], prev[20], ga[20], gb[20];
    int32_t y[BATCH];
    batch(x, y, 5);
    TU_OK(fan_net_get_feedback(a, 1, prev, 20));
    for (int step = 0; step < 4; step++) {
        TU_OK(fan_net_compute_gradients(a, x, y, BATCH, NULL));
        TU_OK(fan_net_compute_gradients(b, x, y, BATCH, NULL));
        TU_OK(fan_net_get_feedback(a, 1, fa, 20));
        TU_OK(fan_net_get_feedback(b, 1, fb, 20));
        assert_memory_equal(fa, fb, sizeof fa); /* same seed, same draws */
        assert_memory_not_equal(fa, prev, sizeof fa); /* a new draw for every batch */
        TU_OK(fan_net_get_gradients(a, 1, ga, 20, NULL, 0));
        TU_OK(fan_net_get_gradients(b, 1, gb, 20, NULL, 0));
        assert_memory_equal(ga, gb, sizeof ga);
        memcpy(prev, fa, sizeof fa);
    }
    /* Another feedback seed draws other magnitudes. */
    fan_net *c = make_net(FAN_RULE_BRSF, 1, 3);
    TU_OK(fan_net_compute_gradients(c, x, y, BATCH, NULL));
    float fc[20];
    TU_OK(fan_net_get_feedback(c, 1, fc, 20));
    TU_OK(fan_net_compute_gradients(a, x, y, BATCH, NULL));
    TU_OK(fan_net_get_feedback(a, 1, fa, 20));
    assert_memory_not_equal(fa, fc, sizeof fa);
    /* brSF and uSF have no B of their own to set. */
    assert_int_equal(fan_net_set_feedback(a, 1, fa, 20), FAN_E_UNSUPPORTED);
    TU_OK(fan_net_set_rule(c, FAN_RULE_USF));
    assert_int_equal(fan_net_set_feedback(c, 1, fa, 20), FAN_E_UNSUPPORTED);
    fan_net_free(a);
    fan_net_free(b);
    fan_net_free(c);
}

/* Saves a net to memory; the caller frees. */
static unsigned char *save(const fan_net *net, size_t *len)
{
    TU_OK(fan_net_save_mem(net, NULL, 0, len));
    unsigned char *buf = malloc(*len);
    size_t written;
    TU_OK(fan_net_save_mem(net, buf, *len, &written));
    assert_int_equal(written, *len);
    return buf;
}

static void test_save_load_round_trip_is_bit_identical_for_every_rule(void **state)
{
    (void)state;
    float x[BATCH * 6];
    int32_t y[BATCH];
    for (int k = 0; k < N_RULES; k++) {
        fan_net *net = make_net(ALL_RULES[k], 21, 22), *back = NULL;
        fan_optimizer *opt = NULL;
        TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
        for (int s = 0; s < 3; s++) {
            batch(x, y, 40 + (uint64_t)s);
            TU_OK_NET(net, fan_net_train_batch(net, opt, x, y, BATCH, NULL));
        }
        size_t len, len2;
        unsigned char *buf = save(net, &len);
        char msg[256];
        TU_OK(fan_net_load_v2(&back, NULL, buf, len, NULL, msg, sizeof msg));
        assert_int_equal(fan_net_rule(back), ALL_RULES[k]);
        unsigned char *again = save(back, &len2);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, again, len);
        /* The loaded net continues exactly as the original would (brSF: the same draws). */
        batch(x, y, 50);
        TU_OK(fan_net_compute_gradients(net, x, y, BATCH, NULL));
        TU_OK(fan_net_compute_gradients(back, x, y, BATCH, NULL));
        for (size_t l = 0; l < NL; l++) {
            float ga[64], gb[64];
            const size_t n = SIZES[l] * SIZES[l + 1];
            TU_OK(fan_net_get_gradients(net, l, ga, n, NULL, 0));
            TU_OK(fan_net_get_gradients(back, l, gb, n, NULL, 0));
            assert_memory_equal(ga, gb, n * sizeof *ga);
        }
        /* A clone is as exact as a file. */
        fan_net *copy = NULL;
        TU_OK(fan_net_clone(&copy, back));
        free(again);
        again = save(copy, &len2);
        free(buf);
        buf = save(back, &len);
        assert_memory_equal(buf, again, len);
        fan_net_free(copy);
        free(again);
        free(buf);
        fan_optimizer_free(opt);
        fan_net_free(back);
        fan_net_free(net);
    }
}

/* Writes the version-1 layout of docs/file-format.md by hand: what the first release wrote. */
static unsigned char *version1_file(const fan_net *net, uint32_t rule, size_t *len)
{
    const size_t L = fan_net_num_layers(net);
    size_t floats = 0;
    for (size_t l = 0; l < L; l++)
        floats += 2 * fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l) +
                  fan_net_layer_outputs(net, l);
    *len = 56 + 8 * (L + 1) + 4 * L + 4 * floats + 4;
    unsigned char *p = calloc(1, *len), *q = p;
    memcpy(q, "FANOISE\x1a", 8);
    const uint32_t head[] = {1, 0, (uint32_t)L, rule, 0, 0, 0};
    for (int i = 0; i < 7; i++)
        for (int b = 0; b < 4; b++) q[8 + 4 * i + b] = (unsigned char)(head[i] >> (8 * b));
    float slope = 0.1f;
    memcpy(q + 36, &slope, 4);
    q[40] = 21; /* weight seed 21 */
    q[48] = 22; /* feedback seed 22 */
    q += 56;
    for (size_t l = 0; l <= L; l++, q += 8) q[0] = (unsigned char)SIZES[l];
    for (size_t l = 0; l < L; l++, q += 4) q[0] = (unsigned char)fan_net_activation(net, l);
    for (size_t l = 0; l < L; l++) {
        const size_t out = SIZES[l + 1], n = out * SIZES[l];
        float w[64], b[8], fb[64];
        TU_OK(fan_net_get_weights(net, l, w, n, b, out));
        TU_OK(fan_net_get_feedback(net, l, fb, n));
        memcpy(q, w, 4 * n); /* this host is little-endian, like the format */
        q += 4 * n;
        memcpy(q, b, 4 * out);
        q += 4 * out;
        memcpy(q, fb, 4 * n);
        q += 4 * n;
    }
    const uint32_t crc = (uint32_t)crc32(0L, p, (uInt)(*len - 4));
    for (int b = 0; b < 4; b++) q[b] = (unsigned char)(crc >> (8 * b));
    return p;
}

static void test_version_1_files_still_load(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_FA, 21, 22), *back = NULL;
    size_t len;
    unsigned char *v1 = version1_file(net, FAN_RULE_FA, &len);
    char msg[256] = "";
    TU_OK(fan_net_load_v2(&back, NULL, v1, len, NULL, msg, sizeof msg));
    assert_int_equal(fan_net_rule(back), FAN_RULE_FA);
    for (size_t l = 0; l < NL; l++) {
        float a[64], b[64];
        const size_t n = SIZES[l] * SIZES[l + 1];
        TU_OK(fan_net_get_weights(net, l, a, n, NULL, 0));
        TU_OK(fan_net_get_weights(back, l, b, n, NULL, 0));
        assert_memory_equal(a, b, n * sizeof *a);
        TU_OK(fan_net_get_feedback(net, l, a, n));
        TU_OK(fan_net_get_feedback(back, l, b, n));
        assert_memory_equal(a, b, n * sizeof *a);
    }
    fan_net_free(back);
    free(v1);
    /* Version 1 knew only BP and FA: a file claiming another rule is malformed. */
    v1 = version1_file(net, FAN_RULE_DFA, &len);
    assert_int_equal(fan_net_load_v2(&back, NULL, v1, len, NULL, msg, sizeof msg), FAN_E_FORMAT);
    assert_null(back);
    assert_non_null(strstr(msg, "version 1"));
    free(v1);
    fan_net_free(net);
}

static void test_a_file_whose_feedback_shapes_disagree_with_its_rule_is_refused(void **state)
{
    (void)state;
    /* An FA file relabelled DFA, CRC fixed: the stored rows say W's shape, DFA needs outputs. */
    fan_net *net = make_net(FAN_RULE_FA, 1, 2), *back = NULL;
    size_t len;
    unsigned char *buf = save(net, &len);
    buf[20] = FAN_RULE_DFA;
    const uint32_t crc = (uint32_t)crc32(0L, buf, (uInt)(len - 4));
    for (int b = 0; b < 4; b++) buf[len - 4 + b] = (unsigned char)(crc >> (8 * b));
    char msg[256];
    assert_int_equal(fan_net_load_v2(&back, NULL, buf, len, NULL, msg, sizeof msg), FAN_E_FORMAT);
    assert_non_null(strstr(msg, "feedback rows"));
    free(buf);
    fan_net_free(net);
}

static void test_noise_pretraining_runs_for_every_rule(void **state)
{
    (void)state;
    for (int k = 0; k < N_RULES; k++) {
        fan_net *net = make_net(ALL_RULES[k], 31, 32);
        fan_optimizer *opt = NULL;
        fan_iter *noise = NULL;
        TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
        TU_OK(fan_optimizer_set(opt, FAN_OPT_LR, 1e-3));
        TU_OK(fan_iter_create_noise(&noise, SIZES[0], SIZES[NL], 16, 33, NULL));
        float w0[30], w1[30];
        TU_OK(fan_net_get_weights(net, 0, w0, 30, NULL, 0));
        TU_OK_NET(net, fan_pretrain_noise(net, opt, noise, 200, NULL, NULL));
        assert_int_equal(fan_optimizer_steps(opt), 200);
        TU_OK(fan_net_get_weights(net, 0, w1, 30, NULL, 0));
        assert_memory_not_equal(w0, w1, sizeof w0);
        for (int i = 0; i < 30; i++) assert_true(isfinite(w1[i]));
        /* On noise with random labels the best a net can do is chance: the loss heads to ln 3. */
        float x[16 * 6];
        int32_t y[16];
        tu_fill(x, 16 * 6, 77, -1.7f, 1.7f);
        for (int i = 0; i < 16; i++) y[i] = i % 3;
        double loss;
        TU_OK(fan_net_loss_value(net, x, y, 16, &loss));
        TU_CLOSE(loss, log(3.0), 0, 0.35);
        fan_iter_free(noise);
        fan_optimizer_free(opt);
        fan_net_free(net);
    }
}

static void test_delta_alignment_measures_each_rules_own_error_signal(void **state)
{
    (void)state;
    float x[BATCH * 6];
    int32_t y[BATCH];
    batch(x, y, 13);
    double deg[NL];
    for (int k = 0; k < N_RULES; k++) {
        fan_net *net = make_net(ALL_RULES[k], 41, 42);
        TU_OK(fan_diag_delta_alignment(net, x, y, BATCH, deg, NL));
        assert_true(deg[NL - 1] == 0.0); /* the output error is exact under every rule */
        if (ALL_RULES[k] == FAN_RULE_BP) {
            for (size_t l = 0; l < NL; l++) assert_true(deg[l] == 0.0);
        } else {
            /* Random feedback: the hidden errors point elsewhere than BP's. */
            assert_true(deg[1] > 5.0);
        }
        fan_net_free(net);
    }
    /* FA with B = W sends BP's errors; so does DFA with B_l = the product of the forward
       weights above layer l, for the layer right below the output. */
    fan_net *net = make_net(FAN_RULE_FA, 41, 42);
    for (size_t l = 0; l < NL; l++) {
        float w[64];
        const size_t n = SIZES[l] * SIZES[l + 1];
        TU_OK(fan_net_get_weights(net, l, w, n, NULL, 0));
        TU_OK(fan_net_set_feedback(net, l, w, n));
    }
    TU_OK(fan_diag_delta_alignment(net, x, y, BATCH, deg, NL));
    for (size_t l = 0; l < NL; l++) TU_CLOSE(deg[l], 0.0, 0, 1e-3);
    fan_net_free(net);
}

static void test_alignment_under_dfa_compares_b_with_the_forward_product(void **state)
{
    (void)state;
    fan_net *net = make_net(FAN_RULE_DFA, 51, 52);
    /* P_1 = W_2 W_1 (3 x 5): setting B_1 to it makes every unit of layer 1 aligned. */
    float w1[20], w2[12], p[15];
    TU_OK(fan_net_get_weights(net, 1, w1, 20, NULL, 0));
    TU_OK(fan_net_get_weights(net, 2, w2, 12, NULL, 0));
    for (size_t o = 0; o < 3; o++)
        for (size_t k = 0; k < 5; k++) {
            double s = 0;
            for (size_t j = 0; j < 4; j++) s += (double)w2[o * 4 + j] * w1[j * 5 + k];
            p[o * 5 + k] = (float)s;
        }
    double per_unit[5], mean, whole;
    TU_OK(fan_diag_alignment(net, 1, per_unit, 5, &mean, &whole));
    assert_true(whole > 20.0);
    TU_OK(fan_net_set_feedback(net, 1, p, 15));
    TU_OK(fan_diag_alignment(net, 1, per_unit, 5, &mean, &whole));
    for (int i = 0; i < 5; i++) TU_CLOSE(per_unit[i], 0.0, 0, 0.05);
    TU_CLOSE(whole, 0.0, 0, 0.05);
    /* Under uSF the feedback is s * sign(W): each unit's angle is acos(|w|_1 / (sqrt(m) |w|_2)). */
    TU_OK(fan_net_set_rule(net, FAN_RULE_USF));
    TU_OK(fan_diag_alignment(net, 1, per_unit, 5, &mean, NULL));
    for (size_t k = 0; k < 5; k++) {
        double l1 = 0, l2 = 0;
        for (size_t j = 0; j < 4; j++) {
            l1 += fabs(w1[j * 5 + k]);
            l2 += (double)w1[j * 5 + k] * w1[j * 5 + k];
        }
        TU_CLOSE(per_unit[k], acos(l1 / (2.0 * sqrt(l2))) * 180 / 3.14159265358979323846, 1e-6, 1e-6);
    }
    fan_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_rule_computes_the_gradients_of_its_equations),
        cmocka_unit_test(test_dfa_equals_fa_bit_for_bit_with_one_hidden_layer),
        cmocka_unit_test(test_dfa_feedback_shapes_and_rule_switches),
        cmocka_unit_test(test_kp_shrinks_w_minus_b_by_one_minus_lr_times_decay),
        cmocka_unit_test(test_weight_mirror_turns_b_toward_w),
        cmocka_unit_test(test_brsf_redraws_every_batch_reproducibly),
        cmocka_unit_test(test_save_load_round_trip_is_bit_identical_for_every_rule),
        cmocka_unit_test(test_version_1_files_still_load),
        cmocka_unit_test(test_a_file_whose_feedback_shapes_disagree_with_its_rule_is_refused),
        cmocka_unit_test(test_noise_pretraining_runs_for_every_rule),
        cmocka_unit_test(test_delta_alignment_measures_each_rules_own_error_signal),
        cmocka_unit_test(test_alignment_under_dfa_compares_b_with_the_forward_product),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
