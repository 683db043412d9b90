/* test_diag.c - diagnostics of a network: alignment angles of hand-built and random W/B, the
   error-signal alignment against a double-precision reference, Gram-matrix dimensionality,
   readout statistics, calibration error, argument checks, allocation failures, and proof that diagnostics never change training.
   The spectral diagnostics of the net's matrices are tested in test_spectral.c. */
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
/* Constructed matrices are exact in float, so their spectra match to LAPACK's accuracy. */
#define SV_TOL 1e-10

static fan_net *new_net(const size_t *sizes, size_t n, tu_counter *c)
{
    fan_allocator a = tu_allocator(c);
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, n, &a));
    return net;
}

/* Sets W_l (and optionally B_l) of a layer from double values; biases stay as they are. */
static void set_w(fan_net *net, size_t l, const float *w)
{
    const size_t len = fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l);
    TU_OK_NET(net, fan_net_set_weights(net, l, w, len, NULL, 0));
}

static void set_b(fan_net *net, size_t l, const float *b)
{
    const size_t len = fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l);
    TU_OK_NET(net, fan_net_set_feedback(net, l, b, len));
}

/* Copies W_l into B_l, the FA control under which FA computes BP's errors. */
static void feedback_equals_w(fan_net *net, size_t l, float sign)
{
    const size_t len = fan_net_layer_inputs(net, l) * fan_net_layer_outputs(net, l);
    float *w = malloc(len * sizeof *w);
    TU_OK(fan_net_get_weights(net, l, w, len, NULL, 0));
    for (size_t i = 0; i < len; i++) w[i] *= sign;
    set_b(net, l, w);
    free(w);
}

/* ---- alignment ---------------------------------------------------------------------------- */

static void test_alignment_of_identical_negated_and_orthogonal_matrices(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {4, 6, 3};
    fan_net *net = new_net(sizes, 3, &c);
    double per[6], mean, mat;
    feedback_equals_w(net, 1, 1.0f);
    TU_OK_NET(net, fan_diag_alignment(net, 1, per, 6, &mean, &mat));
    for (size_t i = 0; i < 6; i++) assert_true(per[i] == 0.0);
    assert_true(mean == 0.0 && mat == 0.0);
    feedback_equals_w(net, 1, -1.0f);
    TU_OK_NET(net, fan_diag_alignment(net, 1, per, 6, &mean, &mat));
    for (size_t i = 0; i < 6; i++) TU_CLOSE(per[i], 180.0, 0, 1e-6);
    TU_CLOSE(mean, 180.0, 0, 1e-6);
    TU_CLOSE(mat, 180.0, 0, 1e-6);
    /* W lives in row 0 and B in row 1: every column pair, and the matrices, are orthogonal. */
    float w[18] = {0}, b[18] = {0};
    for (size_t i = 0; i < 6; i++) {
        w[i] = (float)(i + 1);
        b[6 + i] = (float)(7 - i);
    }
    set_w(net, 1, w);
    set_b(net, 1, b);
    TU_OK_NET(net, fan_diag_alignment(net, 1, per, 6, &mean, &mat));
    for (size_t i = 0; i < 6; i++) TU_CLOSE(per[i], 90.0, 0, 1e-12);
    TU_CLOSE(mat, 90.0, 0, 1e-12);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_alignment_of_hand_built_units(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {2, 5, 2};
    fan_net *net = new_net(sizes, 3, &c);
    /* W_1 is 2 x 5; unit i is column i. Columns (W; B): (1,0;1,0) 0 deg, (1,1;-1,1) 90,
       (1,0;1,1) 45, (0,0;3,4) zero forward vector 90, (2,1;-4,-2) 180. */
    const float w[10] = {1, 1, 1, 0, 2, /* row 0 */ 0, 1, 0, 0, 1};
    const float b[10] = {1, -1, 1, 3, -4, /* row 1 */ 0, 1, 1, 4, -2};
    set_w(net, 1, w);
    set_b(net, 1, b);
    const double want[5] = {0, 90, 45, 90, 180};
    double per[5], mean, mat;
    TU_OK_NET(net, fan_diag_alignment(net, 1, per, 5, &mean, &mat));
    for (size_t i = 0; i < 5; i++) TU_CLOSE(per[i], want[i], 0, 1e-6);
    TU_CLOSE(mean, 81.0, 0, 1e-6);
    /* vec(W).vec(B) = -8, |W|^2 = 9, |B|^2 = 50. */
    TU_CLOSE(mat, acos(-8.0 / sqrt(450.0)) * 180.0 / PI, 1e-12, 0);
    /* Scalars alone, and per-unit alone. */
    double m2 = -1;
    TU_OK_NET(net, fan_diag_alignment(net, 1, NULL, 0, &m2, NULL));
    assert_true(m2 == mean);
    TU_OK_NET(net, fan_diag_alignment(net, 1, per, 5, NULL, NULL));
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_alignment_matches_naive_columns_across_blocks(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {784, 100, 10}; /* 784 inputs span several column blocks */
    fan_net *net = new_net(sizes, 3, &c);
    const size_t in = 784, out = 100;
    float *w = malloc(in * out * sizeof *w), *b = malloc(in * out * sizeof *b);
    TU_OK(fan_net_get_weights(net, 0, w, in * out, NULL, 0));
    TU_OK(fan_net_get_feedback(net, 0, b, in * out));
    double *per = malloc(in * sizeof *per), mean, mat;
    TU_OK_NET(net, fan_diag_alignment(net, 0, per, in, &mean, &mat));
    double sum = 0;
    for (size_t i = 0; i < in; i++) {
        double d = 0, ww = 0, bb = 0;
        for (size_t r = 0; r < out; r++) {
            d += (double)w[r * in + i] * b[r * in + i];
            ww += (double)w[r * in + i] * w[r * in + i];
            bb += (double)b[r * in + i] * b[r * in + i];
        }
        const double want = acos(d / sqrt(ww * bb)) * 180.0 / PI;
        TU_CLOSE(per[i], want, 0, 1e-9);
        sum += want;
    }
    TU_CLOSE(mean, sum / (double)in, 0, 1e-9);
    double fa_deg;
    TU_OK(fan_matrix_angle(w, b, in * out, &fa_deg));
    TU_CLOSE(mat, fa_deg, 1e-12, 0);
    free(per);
    free(w);
    free(b);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_random_he_normal_net_is_near_ninety_degrees(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {784, 100, 10};
    fan_net *net = new_net(sizes, 3, &c);
    double per[100], mean, mat;
    TU_OK_NET(net, fan_diag_alignment(net, 1, per, 100, &mean, &mat));
    /* Units of layer 1 are 10-vectors: one angle has sd ~19 deg, the mean of 100 ~1.9 deg and
       the matrix angle (1,000 entries) ~1.8 deg. 5 deg is beyond 2.5 sd. */
    TU_CLOSE(mean, 90.0, 0, 5.0);
    TU_CLOSE(mat, 90.0, 0, 5.0);
    double lo = 180, hi = 0;
    for (size_t i = 0; i < 100; i++) {
        lo = per[i] < lo ? per[i] : lo;
        hi = per[i] > hi ? per[i] : hi;
    }
    assert_true(lo < 70 && hi > 110); /* a real spread, not a constant */
    TU_OK_NET(net, fan_diag_alignment(net, 0, NULL, 0, NULL, &mat));
    TU_CLOSE(mat, 90.0, 0, 1.0); /* 78,400 entries: sd ~0.2 deg */
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_alignment_rejects_bad_arguments_with_a_message(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {4, 6, 3};
    fan_net *net = new_net(sizes, 3, &c);
    const fan_net *cnet = net; /* every spectral diagnostic takes a const net */
    double per[6] = {0}, mean = -1;
    assert_int_equal(fan_diag_alignment(NULL, 1, per, 6, &mean, NULL), FAN_E_NULL);
    assert_int_equal(fan_diag_alignment(cnet, 2, per, 6, &mean, NULL), FAN_E_INVALID);
    assert_non_null(strstr(fan_net_errmsg(net), "layer 2"));
    assert_int_equal(fan_diag_alignment(cnet, 1, per, 4, &mean, NULL), FAN_E_SHAPE);
    assert_non_null(strstr(fan_net_errmsg(net), "6"));
    assert_true(mean == -1);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- error-signal alignment --------------------------------------------------------------- */

/* Reference: ReLU hidden layers, linear output, softmax cross-entropy, all in double. Returns
   the angle at the outputs of each weight layer between FA's and BP's errors. */
static void ref_delta_alignment(const fan_net *net, const float *x, const int32_t *y, size_t n,
                                double *deg)
{
    const size_t L = fan_net_num_layers(net);
    size_t sz[8];
    double *w[8], *bfb[8], *bias[8], *h[9];
    for (size_t l = 0; l < L; l++) {
        const size_t in = fan_net_layer_inputs(net, l), out = fan_net_layer_outputs(net, l);
        sz[l] = in;
        sz[l + 1] = out;
        float *wf = malloc(in * out * sizeof *wf), *bf = malloc(in * out * sizeof *bf),
              *cf = malloc(out * sizeof *cf);
        TU_OK(fan_net_get_weights(net, l, wf, in * out, cf, out));
        TU_OK(fan_net_get_feedback(net, l, bf, in * out));
        w[l] = malloc(in * out * sizeof(double));
        bfb[l] = malloc(in * out * sizeof(double));
        bias[l] = malloc(out * sizeof(double));
        for (size_t i = 0; i < in * out; i++) w[l][i] = wf[i], bfb[l][i] = bf[i];
        for (size_t i = 0; i < out; i++) bias[l][i] = cf[i];
        free(wf), free(bf), free(cf);
    }
    for (size_t l = 0; l <= L; l++) h[l] = calloc(n * sz[l], sizeof(double));
    for (size_t i = 0; i < n * sz[0]; i++) h[0][i] = x[i];
    for (size_t l = 0; l < L; l++)
        for (size_t r = 0; r < n; r++)
            for (size_t o = 0; o < sz[l + 1]; o++) {
                double z = bias[l][o];
                for (size_t i = 0; i < sz[l]; i++) z += w[l][o * sz[l] + i] * h[l][r * sz[l] + i];
                h[l + 1][r * sz[l + 1] + o] = l + 1 < L && z < 0 ? 0 : z;
            }
    const size_t c = sz[L], maxw = 64;
    double *fa = calloc(n * maxw, sizeof(double)), *bp = calloc(n * maxw, sizeof(double));
    double *t1 = calloc(n * maxw, sizeof(double)), *t2 = calloc(n * maxw, sizeof(double));
    for (size_t r = 0; r < n; r++) {
        const double *z = h[L] + r * c;
        double mx = z[0], s = 0;
        for (size_t j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
        for (size_t j = 0; j < c; j++) s += exp(z[j] - mx);
        for (size_t j = 0; j < c; j++)
            fa[r * c + j] = bp[r * c + j] =
                (exp(z[j] - mx) / s - (j == (size_t)y[r] ? 1.0 : 0.0)) / (double)n;
    }
    deg[L - 1] = 0;
    for (size_t l = L - 1; l >= 1; l--) {
        double dot = 0, aa = 0, bb = 0;
        for (size_t r = 0; r < n; r++)
            for (size_t i = 0; i < sz[l]; i++) {
                double sf = 0, sb = 0;
                for (size_t o = 0; o < sz[l + 1]; o++) {
                    sf += fa[r * sz[l + 1] + o] * bfb[l][o * sz[l] + i];
                    sb += bp[r * sz[l + 1] + o] * w[l][o * sz[l] + i];
                }
                const int on = h[l][r * sz[l] + i] > 0;
                t1[r * sz[l] + i] = on ? sf : 0;
                t2[r * sz[l] + i] = on ? sb : 0;
                dot += t1[r * sz[l] + i] * t2[r * sz[l] + i];
                aa += t1[r * sz[l] + i] * t1[r * sz[l] + i];
                bb += t2[r * sz[l] + i] * t2[r * sz[l] + i];
            }
        deg[l - 1] = acos(dot / sqrt(aa * bb)) * 180.0 / PI;
        memcpy(fa, t1, n * sz[l] * sizeof(double));
        memcpy(bp, t2, n * sz[l] * sizeof(double));
    }
    for (size_t l = 0; l < L; l++) free(w[l]), free(bfb[l]), free(bias[l]);
    for (size_t l = 0; l <= L; l++) free(h[l]);
    free(fa), free(bp), free(t1), free(t2);
}

static void test_delta_alignment_is_zero_for_bp_and_for_fa_with_b_equal_w(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[4] = {8, 7, 6, 4};
    fan_net *net = new_net(sizes, 4, &c);
    enum { N = 12 };
    float x[N * 8];
    int32_t y[N];
    tu_fill(x, N * 8, 5, -1, 1);
    for (size_t i = 0; i < N; i++) y[i] = (int32_t)(i % 4);
    double deg[3] = {-1, -1, -1};
    /* Random B: errors below the output layer really differ. */
    TU_OK_NET(net, fan_diag_delta_alignment(net, x, y, N, deg, 3));
    assert_true(deg[0] > 1.0 && deg[1] > 1.0);
    assert_true(deg[2] == 0.0);
    TU_OK(fan_net_set_rule(net, FAN_RULE_BP));
    TU_OK_NET(net, fan_diag_delta_alignment(net, x, y, N, deg, 3));
    assert_true(deg[0] == 0.0 && deg[1] == 0.0 && deg[2] == 0.0);
    TU_OK(fan_net_set_rule(net, FAN_RULE_FA));
    for (size_t l = 0; l < 3; l++) feedback_equals_w(net, l, 1.0f);
    deg[0] = deg[1] = -1;
    TU_OK_NET(net, fan_diag_delta_alignment(net, x, y, N, deg, 3));
    for (size_t l = 0; l < 3; l++) TU_CLOSE(deg[l], 0.0, 0, 1e-6);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_delta_alignment_matches_double_reference_and_keeps_gradients(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[4] = {9, 8, 6, 5};
    fan_net *net = new_net(sizes, 4, &c);
    enum { N = 16 };
    float x[N * 9];
    int32_t y[N];
    tu_fill(x, N * 9, 7, -1.5f, 1.5f);
    for (size_t i = 0; i < N; i++) y[i] = (int32_t)((i * 3) % 5);
    /* Gradients of another batch exist beforehand; the diagnostic must not touch them. */
    float loss, g0[72], g1[72];
    TU_OK_NET(net, fan_net_compute_gradients(net, x + 9, y + 1, N - 1, &loss));
    TU_OK(fan_net_get_gradients(net, 0, g0, 72, NULL, 0));
    double deg[3], want[3];
    TU_OK_NET(net, fan_diag_delta_alignment(net, x, y, N, deg, 3));
    ref_delta_alignment(net, x, y, N, want);
    for (size_t l = 0; l < 3; l++) TU_CLOSE(deg[l], want[l], 0, 1e-3);
    assert_true(want[0] > 1.0);
    TU_OK(fan_net_get_gradients(net, 0, g1, 72, NULL, 0));
    assert_memory_equal(g0, g1, sizeof g0);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_delta_alignment_rejects_bad_arguments(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {3, 4, 2};
    fan_net *net = new_net(sizes, 3, &c);
    const float x[6] = {1, 2, 3, 4, 5, 6};
    const int32_t y[2] = {0, 1}, bad[2] = {0, 2};
    double deg[2] = {-1, -1};
    assert_int_equal(fan_diag_delta_alignment(NULL, x, y, 2, deg, 2), FAN_E_NULL);
    assert_int_equal(fan_diag_delta_alignment(net, NULL, y, 2, deg, 2), FAN_E_NULL);
    assert_int_equal(fan_diag_delta_alignment(net, x, NULL, 2, deg, 2), FAN_E_NULL);
    assert_int_equal(fan_diag_delta_alignment(net, x, y, 2, NULL, 2), FAN_E_NULL);
    assert_int_equal(fan_diag_delta_alignment(net, x, y, 0, deg, 2), FAN_E_INVALID);
    assert_int_equal(fan_diag_delta_alignment(net, x, y, 2, deg, 3), FAN_E_SHAPE);
    assert_int_equal(fan_diag_delta_alignment(net, x, bad, 2, deg, 2), FAN_E_LABEL);
    assert_non_null(strstr(fan_net_errmsg(net), "labels[1]"));
    assert_true(deg[0] == -1 && deg[1] == -1);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- Gram-matrix dimensionality ----------------------------------------------------------- */

static fan_dataset *new_dataset(const float *x, const int32_t *y, size_t n, size_t dim,
                                size_t classes, tu_counter *c)
{
    fan_allocator a = tu_allocator(c);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, y, n, dim, classes, &a));
    return ds;
}

static void test_gram_dimensionality_collapses_to_the_number_of_distinct_neurons(void **state)
{
    (void)state;
    tu_counter c = {0};
    enum { D = 12 };
    const size_t sizes[3] = {D, D, 2};
    fan_net *net = new_net(sizes, 3, &c);
    float x[D * D] = {0}, w[D * D] = {0};
    int32_t y[D];
    for (size_t i = 0; i < D; i++) x[i * D + i] = 1.0f, y[i] = (int32_t)(i % 2);
    fan_dataset *ds = new_dataset(x, y, D, D, 2, &c);
    /* W_0 = I and one-hot inputs: every neuron fires on its own sample only, the similarity is
       the identity, and all 12 dimensions count. */
    for (size_t i = 0; i < D; i++) w[i * D + i] = 1.0f;
    set_w(net, 0, w);
    double e = 0;
    TU_OK_NET(net, fan_diag_gram_dimensionality(net, 1, ds, 0, &e));
    TU_CLOSE(e, 12.0, 1e-9, 0);
    /* Neuron i copies neuron i mod 3: three blocks of four identical neurons, eigenvalues
       (4, 4, 4, 0, ...), effective rank exactly 3. */
    memset(w, 0, sizeof w);
    for (size_t i = 0; i < D; i++) w[i * D + i % 3] = 1.0f;
    set_w(net, 0, w);
    TU_OK_NET(net, fan_diag_gram_dimensionality(net, 1, ds, 0, &e));
    TU_CLOSE(e, 3.0, 1e-9, 0);
    fan_dataset_free(ds);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_gram_dimensionality_of_copies_equals_that_of_the_originals(void **state)
{
    (void)state;
    tu_counter c = {0};
    enum { N = 40, D = 6 };
    float x[N * D], rows[3 * D];
    int32_t y[N];
    tu_fill(x, N * D, 11, -1, 1);
    tu_fill(rows, 3 * D, 12, -1, 1);
    for (size_t i = 0; i < N; i++) y[i] = (int32_t)(i % 2);
    fan_dataset *ds = new_dataset(x, y, N, D, 2, &c);
    /* Net A: 12 copies (4 of each original) plus one neuron that never fires. */
    const size_t sa[3] = {D, 13, 2}, sb[3] = {D, 3, 2};
    fan_net *a = new_net(sa, 3, &c), *b = new_net(sb, 3, &c);
    float wa[13 * D] = {0}, ba[13] = {0}, zb[3] = {0};
    for (size_t i = 0; i < 12; i++) memcpy(wa + i * D, rows + (i % 3) * D, D * sizeof(float));
    ba[12] = -100.0f; /* inputs are in [-1, 1]: this neuron is always off */
    TU_OK(fan_net_set_weights(a, 0, wa, 13 * D, ba, 13));
    TU_OK(fan_net_set_weights(b, 0, rows, 3 * D, zb, 3));
    double ea = 0, eb = 0;
    TU_OK_NET(a, fan_diag_gram_dimensionality(a, 1, ds, 0, &ea));
    TU_OK_NET(b, fan_diag_gram_dimensionality(b, 1, ds, 0, &eb));
    TU_CLOSE(ea, eb, 1e-9, 0);
    assert_true(eb > 1.0 && eb < 3.0);
    fan_dataset_free(ds);
    fan_net_free(a);
    fan_net_free(b);
    assert_int_equal(c.live_blocks, 0);
}

/* Independent Gram dimensionality of hidden layer 1 over the first n samples, in double. */
static double ref_gram_erank(const fan_net *net, const float *x, size_t n)
{
    const size_t in = fan_net_layer_inputs(net, 0), w = fan_net_layer_outputs(net, 0);
    float *wf = malloc(in * w * sizeof *wf), *bf = malloc(w * sizeof *bf);
    TU_OK(fan_net_get_weights(net, 0, wf, in * w, bf, w));
    double *h = calloc(n * w, sizeof *h), *g = calloc(w * w, sizeof *g);
    for (size_t r = 0; r < n; r++)
        for (size_t o = 0; o < w; o++) {
            double z = bf[o];
            for (size_t i = 0; i < in; i++) z += (double)wf[o * in + i] * x[r * in + i];
            h[r * w + o] = z > 0 ? z : 0;
        }
    for (size_t i = 0; i < w; i++)
        for (size_t j = 0; j < w; j++)
            for (size_t r = 0; r < n; r++) g[i * w + j] += h[r * w + i] * h[r * w + j];
    float *cs = malloc(w * w * sizeof *cs);
    for (size_t i = 0; i < w; i++)
        for (size_t j = 0; j < w; j++) {
            const double d = g[i * w + i] * g[j * w + j];
            cs[i * w + j] = d > 0 ? (float)(g[i * w + j] / sqrt(d)) : 0.0f;
        }
    double e = 0;
    TU_OK(fan_matrix_effective_rank(cs, w, w, &e, NULL));
    free(wf), free(bf), free(h), free(g), free(cs);
    return e;
}

static void test_gram_dimensionality_matches_reference_over_several_chunks(void **state)
{
    (void)state;
    tu_counter c = {0};
    enum { N = 600, D = 20 };
    float *x = malloc(N * D * sizeof *x);
    int32_t y[N];
    tu_fill(x, N * D, 13, -1, 1);
    for (size_t i = 0; i < N; i++) y[i] = (int32_t)(i % 3);
    fan_dataset *ds = new_dataset(x, y, N, D, 3, &c);
    const size_t sizes[3] = {D, 8, 3};
    fan_net *net = new_net(sizes, 3, &c);
    double e550 = 0, eall = 0, ebig = 0;
    TU_OK_NET(net, fan_diag_gram_dimensionality(net, 1, ds, 550, &e550));
    /* The reference's similarity matrix passes through float: agreement to ~1e-6. */
    TU_CLOSE(e550, ref_gram_erank(net, x, 550), 1e-5, 0);
    TU_OK_NET(net, fan_diag_gram_dimensionality(net, 1, ds, 0, &eall));
    TU_OK_NET(net, fan_diag_gram_dimensionality(net, 1, ds, 100000, &ebig));
    TU_CLOSE(eall, ref_gram_erank(net, x, N), 1e-5, 0);
    assert_true(ebig == eall); /* more than the dataset holds means all of it */
    assert_true(eall > 2.0 && eall < 8.0);
    free(x);
    fan_dataset_free(ds);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_gram_dimensionality_rejects_bad_arguments(void **state)
{
    (void)state;
    tu_counter c = {0};
    const float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const int32_t y[2] = {0, 1};
    fan_dataset *ds = new_dataset(x, y, 2, 4, 2, &c);
    const size_t sizes[3] = {4, 3, 2}, wrong[3] = {5, 3, 2};
    fan_net *net = new_net(sizes, 3, &c), *other = new_net(wrong, 3, &c);
    double e = -1;
    assert_int_equal(fan_diag_gram_dimensionality(NULL, 1, ds, 0, &e), FAN_E_NULL);
    assert_int_equal(fan_diag_gram_dimensionality(net, 1, NULL, 0, &e), FAN_E_NULL);
    assert_int_equal(fan_diag_gram_dimensionality(net, 1, ds, 0, NULL), FAN_E_NULL);
    assert_int_equal(fan_diag_gram_dimensionality(net, 0, ds, 0, &e), FAN_E_INVALID);
    assert_int_equal(fan_diag_gram_dimensionality(net, 2, ds, 0, &e), FAN_E_INVALID);
    assert_int_equal(fan_diag_gram_dimensionality(other, 1, ds, 0, &e), FAN_E_SHAPE);
    assert_non_null(strstr(fan_net_errmsg(other), "5 inputs"));
    assert_true(e == -1);
    fan_dataset_free(ds);
    fan_net_free(net);
    fan_net_free(other);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- readout and calibration -------------------------------------------------------------- */

static void test_readout_of_zero_weights_is_uniform(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[2] = {5, 4};
    fan_net *net = new_net(sizes, 2, &c);
    const float w[20] = {0};
    set_w(net, 0, w);
    float x[3 * 5];
    tu_fill(x, 15, 17, -2, 2);
    double mx = 0, ent = 0, hist[10];
    TU_OK_NET(net, fan_diag_readout(net, x, 3, &mx, &ent, hist, 10));
    TU_CLOSE(mx, 0.25, 1e-7, 0);
    TU_CLOSE(ent, log(4.0), 1e-7, 0);
    for (size_t b = 0; b < 10; b++) TU_CLOSE(hist[b], b == 2 ? 1.0 : 0.0, 0, 0);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_readout_puts_probability_one_in_the_last_bin(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[2] = {3, 2};
    fan_net *net = new_net(sizes, 2, &c);
    /* A logit gap of 200 underflows exp in float: probabilities exactly (1, 0). */
    const float w[6] = {0}, bias[2] = {200, 0};
    TU_OK(fan_net_set_weights(net, 0, w, 6, bias, 2));
    const float x[6] = {1, 2, 3, 4, 5, 6};
    double mx = 0, ent = 1, hist[4];
    TU_OK_NET(net, fan_diag_readout(net, x, 2, &mx, &ent, hist, 4));
    assert_true(mx == 1.0 && ent == 0.0);
    assert_true(hist[0] == 0.5 && hist[1] == 0 && hist[2] == 0 && hist[3] == 0.5);
    /* Scalars only, histogram only. */
    TU_OK_NET(net, fan_diag_readout(net, x, 2, NULL, NULL, hist, 4));
    TU_OK_NET(net, fan_diag_readout(net, x, 2, &mx, NULL, NULL, 0));
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_readout_matches_forward_probabilities(void **state)
{
    (void)state;
    tu_counter c = {0};
    enum { N = 600, D = 20, C = 10, BINS = 7 };
    const size_t sizes[3] = {D, 16, C};
    fan_net *net = new_net(sizes, 3, &c);
    float *x = malloc(N * D * sizeof *x), *p = malloc(N * C * sizeof *p);
    tu_fill(x, N * D, 19, -3, 3);
    TU_OK(fan_net_forward(net, x, N, p, N * C));
    double want_mx = 0, want_ent = 0, want_hist[BINS] = {0};
    for (size_t r = 0; r < N; r++) {
        double m = 0;
        for (size_t j = 0; j < C; j++) {
            const double q = p[r * C + j];
            m = q > m ? q : m;
            if (q > 0) want_ent -= q * log(q);
            size_t b = (size_t)(q * BINS);
            want_hist[b < BINS ? b : BINS - 1] += 1.0 / (N * C);
        }
        want_mx += m / N;
    }
    want_ent /= N;
    double mx, ent, hist[BINS];
    TU_OK_NET(net, fan_diag_readout(net, x, N, &mx, &ent, hist, BINS));
    TU_CLOSE(mx, want_mx, 1e-6, 0);
    TU_CLOSE(ent, want_ent, 1e-6, 0);
    double total = 0;
    for (size_t b = 0; b < BINS; b++) {
        TU_CLOSE(hist[b], want_hist[b], 0, 2.0 / (N * C)); /* a value on a bin edge may move */
        total += hist[b];
    }
    TU_CLOSE(total, 1.0, 1e-12, 0);
    assert_true(mx > 0.2 && mx < 1.0); /* a trained-looking spread, not a degenerate case */
    free(x), free(p);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_readout_rejects_bad_arguments_and_mse(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[2] = {3, 2};
    fan_net *net = new_net(sizes, 2, &c);
    const float x[3] = {1, 2, 3};
    double mx = -1, hist[2];
    assert_int_equal(fan_diag_readout(NULL, x, 1, &mx, NULL, NULL, 0), FAN_E_NULL);
    assert_int_equal(fan_diag_readout(net, NULL, 1, &mx, NULL, NULL, 0), FAN_E_NULL);
    assert_int_equal(fan_diag_readout(net, x, 0, &mx, NULL, NULL, 0), FAN_E_INVALID);
    assert_int_equal(fan_diag_readout(net, x, 1, &mx, NULL, hist, 0), FAN_E_SHAPE);
    TU_OK(fan_net_set_loss(net, FAN_LOSS_MSE));
    assert_int_equal(fan_diag_readout(net, x, 1, &mx, NULL, hist, 2), FAN_E_UNSUPPORTED);
    assert_non_null(strstr(fan_net_errmsg(net), "cross-entropy"));
    assert_true(mx == -1);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_calibration_error_of_calibrated_toys_is_zero(void **state)
{
    (void)state;
    tu_counter c = {0};
    /* Zero weights: every probability is exactly 1/4, ties go to the first maximum (class 0),
       and labels with a quarter of zeros make accuracy equal confidence. */
    const size_t s4[2] = {3, 4};
    fan_net *net = new_net(s4, 2, &c);
    const float w[12] = {0};
    set_w(net, 0, w);
    float x[8 * 3];
    tu_fill(x, 24, 23, -1, 1);
    const int32_t cal[8] = {0, 1, 2, 3, 3, 2, 1, 0}, zeros[8] = {0};
    fan_dataset *ds = new_dataset(x, cal, 8, 3, 4, &c), *dz = new_dataset(x, zeros, 8, 3, 4, &c);
    double ece = -1;
    TU_OK_NET(net, fan_diag_calibration_error(net, ds, 10, &ece));
    assert_true(ece == 0.0);
    TU_OK_NET(net, fan_diag_calibration_error(net, dz, 10, &ece));
    TU_CLOSE(ece, 0.75, 1e-12, 0); /* accuracy 1 at confidence 1/4 */
    fan_net_free(net);
    /* Two classes with logits (ln 3, 0): confidence 0.75 on class 0 for every sample. */
    const size_t s2[2] = {3, 2};
    net = new_net(s2, 2, &c);
    const float w2[6] = {0}, bias[2] = {(float)log(3.0), 0};
    TU_OK(fan_net_set_weights(net, 0, w2, 6, bias, 2));
    const int32_t three[4] = {0, 1, 0, 0}, half[4] = {0, 1, 1, 0};
    fan_dataset *d3 = new_dataset(x, three, 4, 3, 2, &c), *dh = new_dataset(x, half, 4, 3, 2, &c);
    TU_OK_NET(net, fan_diag_calibration_error(net, d3, 15, &ece));
    TU_CLOSE(ece, 0.0, 0, 1e-7);
    TU_OK_NET(net, fan_diag_calibration_error(net, dh, 15, &ece));
    TU_CLOSE(ece, 0.25, 0, 1e-7);
    fan_net_free(net);
    fan_dataset_free(ds), fan_dataset_free(dz), fan_dataset_free(d3), fan_dataset_free(dh);
    assert_int_equal(c.live_blocks, 0);
}

static void test_calibration_error_matches_reference_over_several_chunks(void **state)
{
    (void)state;
    tu_counter c = {0};
    enum { N = 700, D = 12, C = 5, BINS = 10 };
    float *x = malloc(N * D * sizeof *x), *p = malloc(N * C * sizeof *p);
    int32_t y[N];
    tu_fill(x, N * D, 29, -2, 2);
    for (size_t i = 0; i < N; i++) y[i] = (int32_t)((i * 7) % C);
    fan_dataset *ds = new_dataset(x, y, N, D, C, &c);
    const size_t sizes[3] = {D, 10, C};
    fan_net *net = new_net(sizes, 3, &c);
    TU_OK(fan_net_forward(net, x, N, p, N * C));
    double conf[BINS] = {0}, corr[BINS] = {0}, want = 0;
    for (size_t r = 0; r < N; r++) {
        size_t best = 0;
        for (size_t j = 1; j < C; j++)
            if (p[r * C + j] > p[r * C + best]) best = j;
        size_t b = (size_t)(p[r * C + best] * BINS);
        b = b < BINS ? b : BINS - 1;
        conf[b] += p[r * C + best];
        corr[b] += best == (size_t)y[r];
    }
    for (size_t b = 0; b < BINS; b++) want += fabs(corr[b] - conf[b]) / N;
    double ece = -1;
    TU_OK_NET(net, fan_diag_calibration_error(net, ds, BINS, &ece));
    TU_CLOSE(ece, want, 1e-6, 1e-9);
    assert_true(want > 0.05); /* an untrained net on arbitrary labels is miscalibrated */
    free(x), free(p);
    fan_dataset_free(ds);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_calibration_error_rejects_bad_arguments(void **state)
{
    (void)state;
    tu_counter c = {0};
    const float x[6] = {1, 2, 3, 4, 5, 6};
    const int32_t y[2] = {0, 2};
    fan_dataset *ds = new_dataset(x, y, 2, 3, 3, &c);
    const size_t sizes[2] = {3, 3}, two[2] = {3, 2}, dim4[2] = {4, 3};
    fan_net *net = new_net(sizes, 2, &c), *n2 = new_net(two, 2, &c), *n4 = new_net(dim4, 2, &c);
    double ece = -1;
    assert_int_equal(fan_diag_calibration_error(NULL, ds, 5, &ece), FAN_E_NULL);
    assert_int_equal(fan_diag_calibration_error(net, NULL, 5, &ece), FAN_E_NULL);
    assert_int_equal(fan_diag_calibration_error(net, ds, 5, NULL), FAN_E_NULL);
    assert_int_equal(fan_diag_calibration_error(net, ds, 0, &ece), FAN_E_INVALID);
    assert_int_equal(fan_diag_calibration_error(n2, ds, 5, &ece), FAN_E_SHAPE);
    assert_int_equal(fan_diag_calibration_error(n4, ds, 5, &ece), FAN_E_SHAPE);
    TU_OK(fan_net_set_loss(net, FAN_LOSS_MSE));
    assert_int_equal(fan_diag_calibration_error(net, ds, 5, &ece), FAN_E_UNSUPPORTED);
    assert_true(ece == -1);
    fan_dataset_free(ds);
    fan_net_free(net), fan_net_free(n2), fan_net_free(n4);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- diagnostics never change training; allocation failures ------------------------------- */

enum { T_N = 64, T_D = 20, T_C = 5, T_BATCH = 16, T_STEPS = 6 };

/* Calls every diagnostic once on net; returns the first failure (FAN_OK if all succeed). */
static fan_status run_diagnostic(fan_net *net, const fan_dataset *ds, const float *x,
                                 const int32_t *y, size_t which)
{
    const size_t L = fan_net_num_layers(net);
    double buf[64], v;
    switch (which) {
    case 0: return fan_diag_alignment(net, 1, buf, fan_net_layer_inputs(net, 1), &v, &v);
    case 1: return fan_diag_delta_alignment(net, x, y, T_BATCH, buf, L);
    case 2: return fan_diag_singular_values(net, 0, FAN_MATRIX_GRADIENTS, buf,
                                            fan_net_layer_outputs(net, 0));
    case 3: return fan_diag_effective_rank(net, 1, FAN_MATRIX_WEIGHTS, &v);
    case 4: return fan_diag_participation_ratio(net, 0, FAN_MATRIX_FEEDBACK, &v);
    case 5: return fan_diag_stable_rank(net, 2, FAN_MATRIX_WEIGHTS, &v);
    case 6: return fan_diag_principal_angles(net, 1, 3, buf, 3);
    case 7: return fan_diag_gram_dimensionality(net, 2, ds, 0, &v);
    case 8: return fan_diag_readout(net, x, T_BATCH, &v, &v, buf, 10);
    case 9: return fan_diag_calibration_error(net, ds, 10, &v);
    case 10: return fan_diag_spectrum(net, 1, FAN_MATRIX_FEEDBACK, buf,
                                      fan_net_layer_outputs(net, 1), &v, &v, &v);
    }
    return FAN_E_INVALID;
}
#define N_DIAGNOSTICS 11

static void test_diagnostics_between_steps_leave_training_bit_identical(void **state)
{
    (void)state;
    tu_counter c = {0};
    float *x = malloc(T_N * T_D * sizeof *x);
    int32_t y[T_N];
    tu_fill(x, T_N * T_D, 31, -1, 1);
    for (size_t i = 0; i < T_N; i++) y[i] = (int32_t)((i * 3) % T_C);
    fan_dataset *ds = new_dataset(x, y, T_N, T_D, T_C, &c);
    const size_t sizes[4] = {T_D, 16, 12, T_C};
    fan_net *a = new_net(sizes, 4, &c), *b = NULL;
    TU_OK(fan_net_clone(&b, a));
    fan_allocator al = tu_allocator(&c);
    fan_optimizer *oa = NULL, *ob = NULL;
    TU_OK(fan_optimizer_create(&oa, FAN_OPTIMIZER_SGD, a, &al));
    TU_OK(fan_optimizer_create(&ob, FAN_OPTIMIZER_SGD, b, &al));
    TU_OK(fan_optimizer_set(oa, FAN_OPT_MOMENTUM, 0.9));
    TU_OK(fan_optimizer_set(ob, FAN_OPT_MOMENTUM, 0.9));
    for (size_t s = 0; s < T_STEPS; s++) {
        const float *xb = x + (s % 4) * T_BATCH * T_D;
        const int32_t *yb = y + (s % 4) * T_BATCH;
        float la, lb;
        TU_OK_NET(a, fan_net_train_batch(a, oa, xb, yb, T_BATCH, &la));
        for (size_t d = 0; d < N_DIAGNOSTICS; d++) TU_OK_NET(a, run_diagnostic(a, ds, xb, yb, d));
        TU_OK_NET(b, fan_net_train_batch(b, ob, xb, yb, T_BATCH, &lb));
        assert_memory_equal(&la, &lb, sizeof la);
    }
    for (size_t l = 0; l < 3; l++) {
        const size_t wn = sizes[l] * sizes[l + 1], bn = sizes[l + 1];
        float *pa = malloc((2 * wn + bn) * sizeof *pa), *pb = malloc((2 * wn + bn) * sizeof *pb);
        TU_OK(fan_net_get_weights(a, l, pa, wn, pa + wn, bn));
        TU_OK(fan_net_get_weights(b, l, pb, wn, pb + wn, bn));
        TU_OK(fan_net_get_feedback(a, l, pa + wn + bn, wn));
        TU_OK(fan_net_get_feedback(b, l, pb + wn + bn, wn));
        assert_memory_equal(pa, pb, (2 * wn + bn) * sizeof *pa);
        TU_OK(fan_net_get_gradients(a, l, pa, wn, pa + wn, bn));
        TU_OK(fan_net_get_gradients(b, l, pb, wn, pb + wn, bn));
        assert_memory_equal(pa, pb, (wn + bn) * sizeof *pa);
        free(pa), free(pb);
    }
    fan_optimizer_free(oa), fan_optimizer_free(ob);
    fan_net_free(a), fan_net_free(b);
    fan_dataset_free(ds);
    free(x);
    assert_int_equal(c.live_blocks, 0);
}

static void test_diagnostics_survive_every_allocation_failure(void **state)
{
    (void)state;
    tu_counter c = {0};
    float *x = malloc(T_N * T_D * sizeof *x);
    int32_t y[T_N];
    tu_fill(x, T_N * T_D, 37, -1, 1);
    for (size_t i = 0; i < T_N; i++) y[i] = (int32_t)(i % T_C);
    fan_dataset *ds = new_dataset(x, y, T_N, T_D, T_C, &c);
    const size_t sizes[4] = {T_D, 16, 12, T_C};
    fan_net *net = new_net(sizes, 4, &c);
    float loss;
    TU_OK_NET(net, fan_net_compute_gradients(net, x, y, T_BATCH, &loss));
    const size_t live = c.live_blocks;
    for (size_t d = 0; d < N_DIAGNOSTICS; d++) {
        const size_t before = c.total_allocs;
        TU_OK_NET(net, run_diagnostic(net, ds, x, y, d));
        const size_t needed = c.total_allocs - before;
        assert_int_equal(c.live_blocks, live);
        if (d != 0) assert_true(needed > 0); /* only the alignment works without scratch */
        for (size_t k = 1; k <= needed; k++) {
            c.fail_at = c.total_allocs + k;
            assert_int_equal(run_diagnostic(net, ds, x, y, d), FAN_E_NOMEM);
            assert_true(fan_net_errmsg(net)[0] != '\0');
            assert_int_equal(c.live_blocks, live);
            c.fail_at = 0;
        }
    }
    fan_net_free(net);
    fan_dataset_free(ds);
    free(x);
    assert_int_equal(c.live_blocks, 0);
}

/* A net whose weights are finite but so large that every forward pass overflows: no call may
   report FAN_OK with infinities or NaN, and none may write its outputs. */
static void test_overflowing_nets_get_numeric_errors_never_nan_results(void **state)
{
    (void)state;
    const size_t sizes[] = {4, 3, 3, 2};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 4, NULL));
    TU_OK(fan_net_set_rule(net, FAN_RULE_DFA));
    for (size_t l = 0; l < 3; l++) {
        float w[12];
        for (int i = 0; i < 12; i++) w[i] = 1e30f;
        TU_OK(fan_net_set_weights(net, l, w, sizes[l] * sizes[l + 1], NULL, 0));
    }
    float x[8] = {1, 2, 3, 4, 4, 3, 2, 1}, p[4];
    const int32_t y[2] = {0, 1};
    int32_t labels[2] = {0, 1};
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_arrays(&ds, x, labels, 2, 4, 2, NULL));
    assert_int_equal(fan_net_forward(net, x, 2, p, 4), FAN_E_NUMERIC);
    assert_non_null(strstr(fan_net_errmsg(net), "overflowed"));
    double v = -1, hist[4], deg[3] = {-1, -1, -1};
    assert_int_equal(fan_net_evaluate(net, ds, &v, NULL), FAN_E_NUMERIC);
    assert_int_equal(fan_diag_readout(net, x, 2, &v, NULL, hist, 4), FAN_E_NUMERIC);
    assert_int_equal(fan_diag_calibration_error(net, ds, 5, &v), FAN_E_NUMERIC);
    assert_int_equal(fan_diag_gram_dimensionality(net, 1, ds, 0, &v), FAN_E_NUMERIC);
    assert_int_equal(fan_diag_delta_alignment(net, x, y, 2, deg, 3), FAN_E_NUMERIC);
    for (int i = 0; i < 3; i++) assert_true(deg[i] == -1.0);
    /* DFA compares B_1 with W_2 W_1, a product that overflows. */
    assert_int_equal(fan_diag_alignment(net, 1, NULL, 0, &v, NULL), FAN_E_NUMERIC);
    assert_true(v == -1.0 || isfinite(v));
    fan_dataset_free(ds);
    fan_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment_of_identical_negated_and_orthogonal_matrices),
        cmocka_unit_test(test_alignment_of_hand_built_units),
        cmocka_unit_test(test_alignment_matches_naive_columns_across_blocks),
        cmocka_unit_test(test_random_he_normal_net_is_near_ninety_degrees),
        cmocka_unit_test(test_alignment_rejects_bad_arguments_with_a_message),
        cmocka_unit_test(test_delta_alignment_is_zero_for_bp_and_for_fa_with_b_equal_w),
        cmocka_unit_test(test_delta_alignment_matches_double_reference_and_keeps_gradients),
        cmocka_unit_test(test_delta_alignment_rejects_bad_arguments),
        cmocka_unit_test(test_gram_dimensionality_collapses_to_the_number_of_distinct_neurons),
        cmocka_unit_test(test_gram_dimensionality_of_copies_equals_that_of_the_originals),
        cmocka_unit_test(test_gram_dimensionality_matches_reference_over_several_chunks),
        cmocka_unit_test(test_gram_dimensionality_rejects_bad_arguments),
        cmocka_unit_test(test_readout_of_zero_weights_is_uniform),
        cmocka_unit_test(test_readout_puts_probability_one_in_the_last_bin),
        cmocka_unit_test(test_readout_matches_forward_probabilities),
        cmocka_unit_test(test_readout_rejects_bad_arguments_and_mse),
        cmocka_unit_test(test_calibration_error_of_calibrated_toys_is_zero),
        cmocka_unit_test(test_calibration_error_matches_reference_over_several_chunks),
        cmocka_unit_test(test_calibration_error_rejects_bad_arguments),
        cmocka_unit_test(test_diagnostics_between_steps_leave_training_bit_identical),
        cmocka_unit_test(test_diagnostics_survive_every_allocation_failure),
        cmocka_unit_test(test_overflowing_nets_get_numeric_errors_never_nan_results),
    };
    return cmocka_run_group_tests_name("diag", tests, NULL, NULL);
}
