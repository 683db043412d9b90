/* test_net.c - the network handle: construction, settings, the forward pass, BP gradients
   against finite differences, FA's relation to BP, failure atomicity and allocation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise.h"
#include "testutil.h"

/* ---- a double-precision reference network, written independently of the library ---------- */

typedef struct ref_net {
    size_t L, sizes[8];
    double *w[8], *b[8];
    fan_activation act[8];
    fan_loss loss;
    double slope;
} ref_net;

static void ref_from(ref_net *r, const fan_net *net)
{
    r->L = fan_net_num_layers(net);
    r->loss = fan_net_loss(net);
    assert_int_equal(fan_net_get(net, FAN_NET_LEAKY_SLOPE, &r->slope), FAN_OK);
    for (size_t l = 0; l < r->L; l++) {
        size_t in = fan_net_layer_inputs(net, l), out = fan_net_layer_outputs(net, l);
        r->sizes[l] = in;
        r->sizes[l + 1] = out;
        r->act[l] = fan_net_activation(net, l);
        float *w = malloc(in * out * sizeof *w), *b = malloc(out * sizeof *b);
        TU_OK(fan_net_get_weights(net, l, w, in * out, b, out));
        r->w[l] = malloc(in * out * sizeof(double));
        r->b[l] = malloc(out * sizeof(double));
        for (size_t i = 0; i < in * out; i++) r->w[l][i] = w[i];
        for (size_t i = 0; i < out; i++) r->b[l][i] = b[i];
        free(w);
        free(b);
    }
}

static void ref_free(ref_net *r)
{
    for (size_t l = 0; l < r->L; l++) {
        free(r->w[l]);
        free(r->b[l]);
    }
}

static double ref_act(fan_activation a, double v, double slope)
{
    switch (a) {
    case FAN_ACT_RELU: return v > 0 ? v : 0;
    case FAN_ACT_LEAKY_RELU: return v > 0 ? v : slope * v;
    case FAN_ACT_TANH: return tanh(v);
    case FAN_ACT_SIGMOID: return 1 / (1 + exp(-v));
    default: return v;
    }
}

/* Mean loss over n rows of x with targets t (n x outputs). */
static double ref_loss(const ref_net *r, const float *x, const float *t, size_t n)
{
    double total = 0, h[2][256];
    const size_t C = r->sizes[r->L];
    for (size_t s = 0; s < n; s++) {
        for (size_t i = 0; i < r->sizes[0]; i++) h[0][i] = x[s * r->sizes[0] + i];
        int cur = 0;
        for (size_t l = 0; l < r->L; l++) {
            size_t in = r->sizes[l], out = r->sizes[l + 1];
            for (size_t o = 0; o < out; o++) {
                double z = r->b[l][o];
                for (size_t i = 0; i < in; i++) z += r->w[l][o * in + i] * h[cur][i];
                h[1 - cur][o] = ref_act(r->act[l], z, r->slope);
            }
            cur = 1 - cur;
        }
        const double *y = h[cur];
        if (r->loss == FAN_LOSS_CROSS_ENTROPY) {
            double mx = y[0], sum = 0;
            for (size_t j = 1; j < C; j++) mx = fmax(mx, y[j]);
            for (size_t j = 0; j < C; j++) sum += exp(y[j] - mx);
            for (size_t j = 0; j < C; j++) total += t[s * C + j] * (mx + log(sum) - y[j]);
        } else {
            for (size_t j = 0; j < C; j++) total += (y[j] - t[s * C + j]) * (y[j] - t[s * C + j]) / C;
        }
    }
    return total / n;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static fan_net *make_net(const size_t *sizes, size_t n_sizes)
{
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, n_sizes, NULL));
    assert_non_null(net);
    return net;
}

static void onehot(const int32_t *labels, size_t n, size_t C, float *t)
{
    memset(t, 0, n * C * sizeof *t);
    for (size_t i = 0; i < n; i++) t[i * C + (size_t)labels[i]] = 1;
}

/* Copies W_l into B_l for every layer: the "sham" FA control. */
static void feedback_equals_weights(fan_net *net)
{
    for (size_t l = 0; l < fan_net_num_layers(net); l++) {
        size_t wn = fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l);
        float *w = malloc(wn * sizeof *w);
        TU_OK(fan_net_get_weights(net, l, w, wn, NULL, 0));
        TU_OK(fan_net_set_feedback(net, l, w, wn));
        free(w);
    }
}

static float *grads_of(const fan_net *net, size_t l, size_t *len)
{
    *len = fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l);
    float *g = malloc(*len * sizeof *g);
    TU_OK(fan_net_get_gradients(net, l, g, *len, NULL, 0));
    return g;
}

/* ---- construction and settings -------------------------------------------------------------- */

static void test_create_has_documented_defaults(void **state)
{
    (void)state;
    const size_t sizes[] = {784, 100, 10};
    fan_net *net = make_net(sizes, 3);
    assert_int_equal(fan_net_num_layers(net), 2);
    assert_int_equal(fan_net_layer_inputs(net, 0), 784);
    assert_int_equal(fan_net_layer_outputs(net, 0), 100);
    assert_int_equal(fan_net_layer_inputs(net, 1), 100);
    assert_int_equal(fan_net_layer_outputs(net, 1), 10);
    assert_int_equal(fan_net_num_params(net), 784 * 100 + 100 + 100 * 10 + 10);
    assert_int_equal(fan_net_rule(net), FAN_RULE_FA);
    assert_int_equal(fan_net_loss(net), FAN_LOSS_CROSS_ENTROPY);
    assert_int_equal(fan_net_activation(net, 0), FAN_ACT_RELU);
    assert_int_equal(fan_net_activation(net, 1), FAN_ACT_LINEAR);
    uint64_t ws = 99, fs = 99;
    TU_OK(fan_net_seeds(net, &ws, &fs));
    assert_int_equal(ws, 0);
    assert_int_equal(fs, 1);
    /* He-normal: sample variance of W_0 close to 2 / 784, biases zero. */
    float *w = malloc(78400 * sizeof *w), b[100];
    TU_OK(fan_net_get_weights(net, 0, w, 78400, b, 100));
    double ss = 0, mean = 0;
    for (size_t i = 0; i < 78400; i++) {
        ss += (double)w[i] * w[i];
        mean += w[i];
    }
    TU_CLOSE(ss / 78400, 2.0 / 784, 0.03, 0);
    TU_CLOSE(mean / 78400, 0, 0, 4 * sqrt(2.0 / 784 / 78400));
    for (int i = 0; i < 100; i++) assert_true(b[i] == 0.0f);
    free(w);
    fan_net_free(net);
}

static void test_create_rejects_bad_sizes_with_specific_status(void **state)
{
    (void)state;
    fan_net *net = (fan_net *)&net; /* any non-NULL value: must be reset to NULL */
    const size_t zero[] = {4, 0, 2}, one[] = {4}, huge[] = {FAN_MAX_WIDTH + 1u, 2};
    const size_t big[] = {FAN_MAX_WIDTH, FAN_MAX_WIDTH};
    assert_int_equal(fan_net_create(&net, zero, 3, NULL), FAN_E_INVALID);
    assert_null(net);
    assert_int_equal(fan_net_create(&net, one, 1, NULL), FAN_E_INVALID);
    assert_int_equal(fan_net_create(&net, huge, 2, NULL), FAN_E_LIMIT);
    assert_int_equal(fan_net_create(&net, big, 2, NULL), FAN_E_LIMIT);
    assert_int_equal(fan_net_create(&net, NULL, 3, NULL), FAN_E_NULL);
    assert_int_equal(fan_net_create(NULL, zero, 3, NULL), FAN_E_NULL);
    size_t many[FAN_MAX_LAYERS + 2];
    for (size_t i = 0; i < FAN_MAX_LAYERS + 2; i++) many[i] = 2;
    assert_int_equal(fan_net_create(&net, many, FAN_MAX_LAYERS + 2, NULL), FAN_E_INVALID);
    TU_OK(fan_net_create(&net, many, FAN_MAX_LAYERS + 1, NULL));
    fan_net_free(net);
    fan_net_free(NULL);
}

static void test_setters_validate_and_leave_net_unchanged(void **state)
{
    (void)state;
    const size_t sizes[] = {3, 4, 2};
    fan_net *net = make_net(sizes, 3);
    assert_int_equal(fan_net_set_rule(net, (fan_rule)8), FAN_E_INVALID);
    assert_int_equal(fan_net_set_rule(net, (fan_rule)-1), FAN_E_INVALID);
    assert_int_equal(fan_net_rule(net), FAN_RULE_FA);
    assert_true(strstr(fan_net_errmsg(net), "rule") != NULL);
    assert_int_equal(fan_net_set_activation(net, 2, FAN_ACT_TANH), FAN_E_INVALID);
    assert_int_equal(fan_net_set_activation(net, 0, (fan_activation)9), FAN_E_INVALID);
    assert_int_equal(fan_net_activation(net, 0), FAN_ACT_RELU);
    assert_int_equal(fan_net_set_loss(net, (fan_loss)5), FAN_E_INVALID);
    assert_int_equal(fan_net_set(net, FAN_NET_LEAKY_SLOPE, NAN), FAN_E_INVALID);
    assert_int_equal(fan_net_set(net, FAN_NET_LEAKY_SLOPE, 1.5), FAN_E_INVALID);
    assert_int_equal(fan_net_set(net, (fan_net_param)3, 0.1), FAN_E_INVALID);
    double slope;
    TU_OK(fan_net_get(net, FAN_NET_LEAKY_SLOPE, &slope));
    TU_CLOSE(slope, 0.01, 1e-6, 0);
    assert_int_equal(fan_net_set_initializer(net, FAN_MATRIX_GRADIENTS, FAN_INIT_HE_NORMAL),
                     FAN_E_INVALID);
    assert_int_equal(fan_net_set_initializer(net, FAN_MATRIX_WEIGHTS, (fan_init)3), FAN_E_INVALID);
    float w[12];
    assert_int_equal(fan_net_get_weights(net, 0, w, 11, NULL, 0), FAN_E_SHAPE);
    assert_true(strstr(fan_net_errmsg(net), "12") != NULL);
    assert_int_equal(fan_net_get_weights(net, 5, w, 12, NULL, 0), FAN_E_INVALID);
    float before[12], bad[12];
    TU_OK(fan_net_get_weights(net, 0, before, 12, NULL, 0));
    memcpy(bad, before, sizeof bad);
    bad[3] = NAN;
    assert_int_equal(fan_net_set_weights(net, 0, bad, 12, NULL, 0), FAN_E_NONFINITE);
    assert_int_equal(fan_net_set_feedback(net, 0, bad, 12), FAN_E_NONFINITE);
    TU_OK(fan_net_get_weights(net, 0, w, 12, NULL, 0));
    assert_memory_equal(w, before, sizeof w);
    assert_int_equal(fan_net_set_rule(NULL, FAN_RULE_BP), FAN_E_NULL);
    assert_string_equal(fan_net_errmsg(NULL), "net is NULL");
    fan_net_free(net);
}

static void test_same_weight_seed_gives_identical_w_for_bp_and_fa(void **state)
{
    (void)state;
    const size_t sizes[] = {20, 16, 5};
    fan_net *a = make_net(sizes, 3), *b = make_net(sizes, 3);
    TU_OK(fan_net_set_rule(a, FAN_RULE_BP));
    TU_OK(fan_net_init(a, 42, 7));
    TU_OK(fan_net_init(b, 42, 1234));
    float wa[320], wb[320], fa[320], fb[320];
    TU_OK(fan_net_get_weights(a, 0, wa, 320, NULL, 0));
    TU_OK(fan_net_get_weights(b, 0, wb, 320, NULL, 0));
    assert_memory_equal(wa, wb, sizeof wa);
    TU_OK(fan_net_get_feedback(a, 0, fa, 320));
    TU_OK(fan_net_get_feedback(b, 0, fb, 320));
    assert_memory_not_equal(fa, fb, sizeof fa);
    /* A different weight seed changes W. */
    TU_OK(fan_net_init(b, 43, 7));
    TU_OK(fan_net_get_weights(b, 0, wb, 320, NULL, 0));
    assert_memory_not_equal(wa, wb, sizeof wa);
    fan_net_free(a);
    fan_net_free(b);
}

static void test_initializers_have_their_variances(void **state)
{
    (void)state;
    const size_t sizes[] = {400, 300};
    fan_net *net = make_net(sizes, 2);
    float *m = malloc(120000 * sizeof *m);
    struct {
        fan_init init;
        double var;
    } cases[] = {{FAN_INIT_HE_NORMAL, 2.0 / 400},
                 {FAN_INIT_LECUN_NORMAL, 1.0 / 400},
                 {FAN_INIT_XAVIER_UNIFORM, 2.0 / 700}};
    for (size_t c = 0; c < 3; c++) {
        TU_OK(fan_net_set_initializer(net, FAN_MATRIX_FEEDBACK, cases[c].init));
        TU_OK(fan_net_init(net, 3, 4));
        TU_OK(fan_net_get_feedback(net, 0, m, 120000));
        double ss = 0, mx = 0;
        for (size_t i = 0; i < 120000; i++) {
            ss += (double)m[i] * m[i];
            mx = fmax(mx, fabs(m[i]));
        }
        TU_CLOSE(ss / 120000, cases[c].var, 0.02, 0);
        if (cases[c].init == FAN_INIT_XAVIER_UNIFORM) assert_true(mx <= sqrt(6.0 / 700));
    }
    free(m);
    fan_net_free(net);
}

static void test_clone_is_deep_and_independent(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    const size_t sizes[] = {6, 5, 3};
    fan_net *net = NULL, *copy = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, &al));
    TU_OK(fan_net_set_rule(net, FAN_RULE_BP));
    TU_OK(fan_net_set_activation(net, 0, FAN_ACT_TANH));
    TU_OK(fan_net_clone(&copy, net));
    assert_int_equal(fan_net_rule(copy), FAN_RULE_BP);
    assert_int_equal(fan_net_activation(copy, 0), FAN_ACT_TANH);
    float w1[30], w2[30];
    TU_OK(fan_net_get_weights(net, 0, w1, 30, NULL, 0));
    TU_OK(fan_net_get_weights(copy, 0, w2, 30, NULL, 0));
    assert_memory_equal(w1, w2, sizeof w1);
    w2[0] += 1.0f;
    TU_OK(fan_net_set_weights(copy, 0, w2, 30, NULL, 0));
    TU_OK(fan_net_get_weights(net, 0, w1, 30, NULL, 0));
    assert_true(w1[0] != w2[0]);
    fan_net_free(net);
    fan_net_free(copy);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- forward ------------------------------------------------------------------------------- */

static void test_forward_gives_probabilities_matching_reference(void **state)
{
    (void)state;
    const size_t sizes[] = {7, 9, 6, 4};
    fan_net *net = make_net(sizes, 4);
    TU_OK(fan_net_set_activation(net, 1, FAN_ACT_TANH));
    float x[5 * 7], p[5 * 4];
    tu_fill(x, 35, 1, -1, 1);
    TU_OK(fan_net_forward(net, x, 5, p, 20));
    for (int r = 0; r < 5; r++) {
        double s = 0;
        for (int j = 0; j < 4; j++) s += p[r * 4 + j];
        TU_CLOSE(s, 1.0, 1e-6, 0);
    }
    /* The cross-entropy of the probabilities equals the reference loss. */
    ref_net ref;
    ref_from(&ref, net);
    int32_t labels[5] = {0, 1, 2, 3, 1};
    float t[20];
    onehot(labels, 5, 4, t);
    double ce = 0;
    for (int r = 0; r < 5; r++) ce -= log(p[r * 4 + labels[r]]);
    TU_CLOSE(ce / 5, ref_loss(&ref, x, t, 5), 1e-5, 0);
    double lv;
    TU_OK(fan_net_loss_value(net, x, labels, 5, &lv));
    TU_CLOSE(lv, ref_loss(&ref, x, t, 5), 1e-5, 0);
    assert_int_equal(fan_net_forward(net, x, 5, p, 19), FAN_E_SHAPE);
    assert_int_equal(fan_net_forward(net, x, 0, p, 0), FAN_E_INVALID);
    assert_int_equal(fan_net_forward(net, NULL, 5, p, 20), FAN_E_NULL);
    ref_free(&ref);
    fan_net_free(net);
}

/* ---- gradients ----------------------------------------------------------------------------- */

/* Compares every gradient entry of a BP net with central differences of the double reference. */
static void check_bp_against_finite_differences(fan_activation hidden, fan_activation output,
                                                fan_loss loss, int soft)
{
    const size_t sizes[] = {5, 6, 4, 3};
    const size_t n = 4, C = 3;
    fan_net *net = make_net(sizes, 4);
    TU_OK(fan_net_set_rule(net, FAN_RULE_BP));
    TU_OK(fan_net_set_loss(net, loss));
    TU_OK(fan_net_set_activation(net, 0, hidden));
    TU_OK(fan_net_set_activation(net, 1, hidden));
    TU_OK(fan_net_set_activation(net, 2, output));
    TU_OK(fan_net_init(net, 11, 12));
    /* Non-zero biases exercise the bias gradient. */
    for (size_t l = 0; l < 3; l++) {
        float b[6];
        tu_fill(b, sizes[l + 1], 50 + l, -0.3f, 0.3f);
        TU_OK(fan_net_set_weights(net, l, NULL, 0, b, sizes[l + 1]));
    }
    float x[20], t[12];
    tu_fill(x, 20, 5, -1.5f, 1.5f);
    int32_t labels[4] = {2, 0, 1, 2};
    if (soft) {
        tu_fill(t, 12, 9, 0.05f, 1.0f);
        if (loss == FAN_LOSS_CROSS_ENTROPY)
            for (size_t r = 0; r < n; r++) {
                float s = t[r * C] + t[r * C + 1] + t[r * C + 2];
                for (size_t j = 0; j < C; j++) t[r * C + j] /= s;
            }
        TU_OK_NET(net, fan_net_compute_gradients_targets(net, x, t, n, NULL));
    } else {
        onehot(labels, n, C, t);
        TU_OK_NET(net, fan_net_compute_gradients(net, x, labels, n, NULL));
    }
    ref_net ref;
    ref_from(&ref, net);
    const double eps = 1e-6;
    double worst = 0;
    for (size_t l = 0; l < 3; l++) {
        const size_t in = sizes[l], out = sizes[l + 1];
        float dw[30], db[6];
        TU_OK(fan_net_get_gradients(net, l, dw, in * out, db, out));
        for (size_t i = 0; i < in * out + out; i++) {
            double *p = i < in * out ? &ref.w[l][i] : &ref.b[l][i - in * out];
            const double keep = *p;
            *p = keep + eps;
            const double up = ref_loss(&ref, x, t, n);
            *p = keep - eps;
            const double down = ref_loss(&ref, x, t, n);
            *p = keep;
            const double fd = (up - down) / (2 * eps);
            const double g = i < in * out ? dw[i] : db[i - in * out];
            const double rel = fabs(g - fd) / fmax(fmax(fabs(g), fabs(fd)), 1e-4);
            worst = fmax(worst, rel);
            if (rel >= 1e-3)
                print_error("layer %zu param %zu: library %.9g, finite difference %.9g\n", l, i,
                            g, fd);
        }
    }
    assert_true(worst < 1e-3);
    ref_free(&ref);
    fan_net_free(net);
}

static void test_bp_gradients_match_finite_differences_relu_ce(void **state)
{
    (void)state;
    check_bp_against_finite_differences(FAN_ACT_RELU, FAN_ACT_LINEAR, FAN_LOSS_CROSS_ENTROPY, 0);
}

static void test_bp_gradients_match_finite_differences_tanh_soft_ce(void **state)
{
    (void)state;
    check_bp_against_finite_differences(FAN_ACT_TANH, FAN_ACT_LINEAR, FAN_LOSS_CROSS_ENTROPY, 1);
}

static void test_bp_gradients_match_finite_differences_sigmoid_mse(void **state)
{
    (void)state;
    check_bp_against_finite_differences(FAN_ACT_SIGMOID, FAN_ACT_SIGMOID, FAN_LOSS_MSE, 1);
}

static void test_bp_gradients_match_finite_differences_leaky_mse_labels(void **state)
{
    (void)state;
    check_bp_against_finite_differences(FAN_ACT_LEAKY_RELU, FAN_ACT_LINEAR, FAN_LOSS_MSE, 0);
}

static void test_fa_equals_bp_when_feedback_is_w_transpose(void **state)
{
    (void)state;
    const size_t sizes[] = {30, 20, 15, 5};
    fan_net *bp = make_net(sizes, 4), *fa = make_net(sizes, 4);
    TU_OK(fan_net_set_rule(bp, FAN_RULE_BP));
    feedback_equals_weights(fa);
    float x[8 * 30];
    tu_fill(x, 240, 3, -1, 1);
    int32_t labels[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    float lb, lf;
    TU_OK(fan_net_compute_gradients(bp, x, labels, 8, &lb));
    TU_OK(fan_net_compute_gradients(fa, x, labels, 8, &lf));
    assert_true(lb == lf);
    for (size_t l = 0; l < 3; l++) {
        size_t len;
        float *gb = grads_of(bp, l, &len), *gf = grads_of(fa, l, &len);
        /* Same operands in the same order: identical to the bit, not just to rounding. */
        assert_memory_equal(gb, gf, len * sizeof *gb);
        free(gb);
        free(gf);
    }
    fan_net_free(bp);
    fan_net_free(fa);
}

static void test_fa_with_random_feedback_differs_only_below_the_output(void **state)
{
    (void)state;
    const size_t sizes[] = {30, 20, 15, 5};
    fan_net *bp = make_net(sizes, 4), *fa = make_net(sizes, 4);
    TU_OK(fan_net_set_rule(bp, FAN_RULE_BP));
    float x[8 * 30];
    tu_fill(x, 240, 3, -1, 1);
    int32_t labels[8] = {0, 1, 2, 3, 4, 0, 1, 2};
    TU_OK(fan_net_compute_gradients(bp, x, labels, 8, NULL));
    TU_OK(fan_net_compute_gradients(fa, x, labels, 8, NULL));
    size_t len;
    float *gb = grads_of(bp, 2, &len), *gf = grads_of(fa, 2, &len);
    assert_memory_equal(gb, gf, len * sizeof *gb); /* the output error is exact under FA */
    free(gb);
    free(gf);
    for (size_t l = 0; l < 2; l++) {
        gb = grads_of(bp, l, &len);
        gf = grads_of(fa, l, &len);
        double dot = 0, nb = 0, nf = 0;
        for (size_t i = 0; i < len; i++) {
            dot += (double)gb[i] * gf[i];
            nb += (double)gb[i] * gb[i];
            nf += (double)gf[i] * gf[i];
        }
        /* Random B sends a different error: the hidden gradients are far from parallel. */
        assert_true(nb > 0 && nf > 0);
        assert_true(fabs(dot / sqrt(nb * nf)) < 0.9);
        free(gb);
        free(gf);
    }
    fan_net_free(bp);
    fan_net_free(fa);
}

static void test_bad_labels_and_nonfinite_input_are_rejected(void **state)
{
    (void)state;
    const size_t sizes[] = {4, 3, 2};
    fan_net *net = make_net(sizes, 3);
    float x[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
    int32_t bad[2] = {0, 2}, neg[2] = {-1, 0}, ok[2] = {0, 1};
    assert_int_equal(fan_net_compute_gradients(net, x, bad, 2, NULL), FAN_E_LABEL);
    assert_true(strstr(fan_net_errmsg(net), "labels[1]") != NULL);
    assert_int_equal(fan_net_compute_gradients(net, x, neg, 2, NULL), FAN_E_LABEL);
    assert_int_equal(fan_net_compute_gradients(net, x, ok, 0, NULL), FAN_E_INVALID);
    assert_int_equal(fan_net_compute_gradients(net, x, NULL, 2, NULL), FAN_E_NULL);
    x[5] = NAN;
    assert_int_equal(fan_net_compute_gradients(net, x, ok, 2, NULL), FAN_E_NONFINITE);
    x[5] = INFINITY;
    assert_int_equal(fan_net_compute_gradients(net, x, ok, 2, NULL), FAN_E_NONFINITE);
    /* The handle stays usable. */
    x[5] = 0.6f;
    TU_OK(fan_net_compute_gradients(net, x, ok, 2, NULL));
    fan_net_free(net);
}

static void test_diverging_step_returns_numeric_and_changes_nothing(void **state)
{
    (void)state;
    const size_t sizes[] = {4, 3, 2};
    fan_net *net = make_net(sizes, 3);
    fan_optimizer *opt = NULL;
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL));
    float x[8], big[8];
    tu_fill(x, 8, 1, -1, 1);
    int32_t y[2] = {0, 1};
    TU_OK(fan_net_train_batch(net, opt, x, y, 2, NULL));
    /* Huge but finite weights overflow the float forward pass. */
    float w[12];
    for (int i = 0; i < 12; i++) w[i] = 3e37f;
    TU_OK(fan_net_set_weights(net, 0, w, 12, NULL, 0));
    size_t size;
    TU_OK(fan_net_save_mem(net, NULL, 0, &size));
    unsigned char *before = malloc(size), *after = malloc(size);
    TU_OK(fan_net_save_mem(net, before, size, &size));
    float g_before[12], g_after[12];
    TU_OK(fan_net_get_gradients(net, 0, g_before, 12, NULL, 0));
    uint64_t steps = fan_optimizer_steps(opt);
    for (int i = 0; i < 8; i++) big[i] = 1e4f;
    assert_int_equal(fan_net_train_batch(net, opt, big, y, 2, NULL), FAN_E_NUMERIC);
    assert_true(strstr(fan_net_errmsg(net), "non-finite") != NULL);
    assert_true(strstr(fan_optimizer_errmsg(opt), "non-finite") != NULL);
    TU_OK(fan_net_save_mem(net, after, size, &size));
    assert_memory_equal(before, after, size);
    TU_OK(fan_net_get_gradients(net, 0, g_after, 12, NULL, 0));
    assert_memory_equal(g_before, g_after, sizeof g_before);
    assert_int_equal(fan_optimizer_steps(opt), steps);
    free(before);
    free(after);
    fan_optimizer_free(opt);
    fan_net_free(net);
}

static void test_training_is_bit_reproducible(void **state)
{
    (void)state;
    const size_t sizes[] = {12, 10, 4};
    float out[2][120];
    for (int rep = 0; rep < 2; rep++) {
        fan_net *net = make_net(sizes, 3);
        TU_OK(fan_net_init(net, 5, 6));
        fan_optimizer *opt = NULL;
        TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL));
        TU_OK(fan_optimizer_set(opt, FAN_OPT_MOMENTUM, 0.9));
        for (int s = 0; s < 50; s++) {
            float x[16 * 12];
            int32_t y[16];
            tu_fill(x, 192, 100 + (uint64_t)s, -1, 1);
            for (int i = 0; i < 16; i++) y[i] = (s + i) % 4;
            TU_OK(fan_net_train_batch(net, opt, x, y, 16, NULL));
        }
        TU_OK(fan_net_get_weights(net, 0, out[rep], 120, NULL, 0));
        fan_optimizer_free(opt);
        fan_net_free(net);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
}

static void test_train_batch_allocates_nothing_after_first_call(void **state)
{
    (void)state;
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    const size_t sizes[] = {20, 16, 8, 4};
    fan_net *net = NULL;
    fan_optimizer *opt = NULL;
    TU_OK(fan_net_create(&net, sizes, 4, &al));
    TU_OK(fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, &al));
    float x[32 * 20], t[32 * 4];
    int32_t y[32];
    tu_fill(x, 640, 1, -1, 1);
    tu_fill(t, 128, 2, 0, 0.5f);
    for (int i = 0; i < 32; i++) y[i] = i % 4;
    TU_OK(fan_net_train_batch(net, opt, x, y, 32, NULL));
    const size_t after_first = c.total_allocs;
    for (int s = 0; s < 20; s++) {
        TU_OK(fan_net_train_batch(net, opt, x, y, 32, NULL));
        TU_OK(fan_net_train_batch(net, opt, x, y, 17, NULL)); /* smaller batches reuse it */
        TU_OK(fan_net_train_batch_targets(net, opt, x, t, 32, NULL));
        float p[32 * 4];
        TU_OK(fan_net_forward(net, x, 32, p, 128));
    }
    assert_int_equal(c.total_allocs, after_first);
    fan_optimizer_free(opt);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_create_and_clone_survive_every_allocation_failure(void **state)
{
    (void)state;
    const size_t sizes[] = {5, 4, 3};
    for (size_t n = 1;; n++) {
        tu_counter c = {0};
        c.fail_at = n;
        fan_allocator al = tu_allocator(&c);
        fan_net *net = NULL;
        fan_status st = fan_net_create(&net, sizes, 3, &al);
        if (st == FAN_OK) {
            fan_net *copy = NULL;
            fan_optimizer *opt = NULL;
            /* Later failures land in clone and optimizer creation and the first step. */
            fan_status s2 = fan_net_clone(&copy, net);
            fan_status s3 = fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, &al);
            float x[10] = {0};
            int32_t y[2] = {0, 1};
            fan_status s4 = opt ? fan_net_train_batch(net, opt, x, y, 2, NULL) : FAN_E_NOMEM;
            fan_optimizer_free(opt);
            fan_net_free(copy);
            fan_net_free(net);
            assert_int_equal(c.live_blocks, 0);
            if (s2 == FAN_OK && s3 == FAN_OK && s4 == FAN_OK) break;
            assert_true(s2 == FAN_E_NOMEM || s3 == FAN_E_NOMEM || s4 == FAN_E_NOMEM);
            continue;
        }
        assert_int_equal(st, FAN_E_NOMEM);
        assert_null(net);
        assert_int_equal(c.live_blocks, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_has_documented_defaults),
        cmocka_unit_test(test_create_rejects_bad_sizes_with_specific_status),
        cmocka_unit_test(test_setters_validate_and_leave_net_unchanged),
        cmocka_unit_test(test_same_weight_seed_gives_identical_w_for_bp_and_fa),
        cmocka_unit_test(test_initializers_have_their_variances),
        cmocka_unit_test(test_clone_is_deep_and_independent),
        cmocka_unit_test(test_forward_gives_probabilities_matching_reference),
        cmocka_unit_test(test_bp_gradients_match_finite_differences_relu_ce),
        cmocka_unit_test(test_bp_gradients_match_finite_differences_tanh_soft_ce),
        cmocka_unit_test(test_bp_gradients_match_finite_differences_sigmoid_mse),
        cmocka_unit_test(test_bp_gradients_match_finite_differences_leaky_mse_labels),
        cmocka_unit_test(test_fa_equals_bp_when_feedback_is_w_transpose),
        cmocka_unit_test(test_fa_with_random_feedback_differs_only_below_the_output),
        cmocka_unit_test(test_bad_labels_and_nonfinite_input_are_rejected),
        cmocka_unit_test(test_diverging_step_returns_numeric_and_changes_nothing),
        cmocka_unit_test(test_training_is_bit_reproducible),
        cmocka_unit_test(test_train_batch_allocates_nothing_after_first_call),
        cmocka_unit_test(test_create_and_clone_survive_every_allocation_failure),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
