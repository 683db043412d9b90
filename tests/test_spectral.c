/* test_spectral.c - spectra: the generic functions on a caller's matrix (singular values of
   constructed matrices, effective rank / participation ratio / stable rank against their
   formulas, the vector angle, spectrum summaries, argument checks, allocation failures) and the
   spectral diagnostics of a net's W, B and dW, with principal angles between W's and B's
   dominant subspaces. */
#define _POSIX_C_SOURCE 200809L /* dup, dup2, fileno, mkstemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanoise.h"
#include "spectral.h"
#include "testutil.h"

/* Singular values computed in double from exactly representable float inputs agree with the
   constructed ones to LAPACK's accuracy, far below this. */
#define SV_TOL 1e-10

/* Entry (r, c) of the 4 x 4 Hadamard matrix divided by 2, an orthogonal matrix whose entries
   (+-1/2) are exact in float. */
static double hadamard_half(size_t r, size_t c)
{
    /* Sylvester's construction: H[r][c] = (-1)^popcount(r & c). */
    unsigned bits = (unsigned)(r & c), parity = 0;
    while (bits) {
        parity ^= bits & 1u;
        bits >>= 1;
    }
    return parity ? -0.5 : 0.5;
}

/* Reference summaries, computed directly from their definitions. */
static double ref_erank(const double *s, size_t n)
{
    double sum = 0, h = 0;
    for (size_t i = 0; i < n; i++) sum += s[i];
    for (size_t i = 0; i < n; i++)
        if (s[i] > 0) h -= s[i] / sum * log(s[i] / sum);
    return exp(h);
}

static double ref_pr(const double *s, size_t n)
{
    double s2 = 0, s4 = 0;
    for (size_t i = 0; i < n; i++) {
        s2 += s[i] * s[i];
        s4 += s[i] * s[i] * s[i] * s[i];
    }
    return s2 * s2 / s4;
}

static double ref_srank(const double *s, size_t n)
{
    double s2 = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s2 += s[i] * s[i];
        mx = s[i] > mx ? s[i] : mx;
    }
    return s2 / (mx * mx);
}

static void test_angle_of_identical_negated_orthogonal_and_zero_vectors(void **state)
{
    (void)state;
    const float a[4] = {1, 2, -3, 0.5f}, neg[4] = {-2, -4, 6, -1}, orth[4] = {2, -1, 0, 0},
                zero[4] = {0, 0, 0, 0};
    const float e1[2] = {1, 0}, diag[2] = {1, 1};
    double deg = -1;
    TU_OK(fan_matrix_angle(a, a, 4, &deg));
    assert_true(deg == 0.0); /* exactly: identical vectors give a cosine of exactly 1 */
    TU_OK(fan_matrix_angle(a, neg, 4, &deg));
    TU_CLOSE(deg, 180.0, 0, 1e-9);
    TU_OK(fan_matrix_angle(a, orth, 4, &deg));
    TU_CLOSE(deg, 90.0, 0, 1e-12);
    TU_OK(fan_matrix_angle(a, zero, 4, &deg));
    TU_CLOSE(deg, 90.0, 0, 0);
    TU_OK(fan_matrix_angle(zero, zero, 4, &deg));
    TU_CLOSE(deg, 90.0, 0, 0);
    TU_OK(fan_matrix_angle(e1, diag, 2, &deg));
    TU_CLOSE(deg, 45.0, 0, 1e-12);
}

static void test_angle_rejects_null_empty_and_nonfinite_input(void **state)
{
    (void)state;
    const float a[2] = {1, 2}, bad[2] = {1, NAN};
    double deg = 7;
    assert_int_equal(fan_matrix_angle(NULL, a, 2, &deg), FAN_E_NULL);
    assert_int_equal(fan_matrix_angle(a, NULL, 2, &deg), FAN_E_NULL);
    assert_int_equal(fan_matrix_angle(a, a, 2, NULL), FAN_E_NULL);
    assert_int_equal(fan_matrix_angle(a, a, 0, &deg), FAN_E_INVALID);
    assert_int_equal(fan_matrix_angle(a, bad, 2, &deg), FAN_E_NONFINITE);
    assert_true(deg == 7); /* untouched on failure */
}

static void test_singular_values_of_permuted_diagonal_are_sorted_diagonal(void **state)
{
    (void)state;
    /* 5 x 3 with one non-zero per column, in scrambled rows and order of size. */
    float a[15] = {0};
    a[3 * 0 + 2] = 0.5f; /* (0, 2) */
    a[3 * 3 + 0] = -3.0f; /* (3, 0): the sign does not change a singular value */
    a[3 * 4 + 1] = 2.0f;  /* (4, 1) */
    double sv[3];
    TU_OK(fan_matrix_singular_values(a, 5, 3, sv, 3, NULL));
    TU_CLOSE(sv[0], 3.0, SV_TOL, 0);
    TU_CLOSE(sv[1], 2.0, SV_TOL, 0);
    TU_CLOSE(sv[2], 0.5, SV_TOL, 0);
}

static void test_singular_values_of_orthogonal_times_diagonal_times_permutation(void **state)
{
    (void)state;
    /* A = (H / 2) D P, D 4 x 3 = diag(5, 3, 1) over a zero row, P a 3 x 3 permutation: the
       entries are +-2.5, +-1.5, +-0.5, all exact in float, and sv(A) = (5, 3, 1). */
    const double d[3] = {5, 3, 1};
    const size_t perm[3] = {2, 0, 1}; /* column j of D P is column perm[j] of D */
    float tall[12], wide[12];
    for (size_t r = 0; r < 4; r++)
        for (size_t j = 0; j < 3; j++) {
            const size_t k = perm[j];
            tall[r * 3 + j] = (float)(hadamard_half(r, k) * d[k]);
            wide[j * 4 + r] = tall[r * 3 + j]; /* A^T has the same singular values */
        }
    double sv[3];
    TU_OK(fan_matrix_singular_values(tall, 4, 3, sv, 3, NULL));
    for (size_t i = 0; i < 3; i++) TU_CLOSE(sv[i], d[i], SV_TOL, 0);
    memset(sv, 0, sizeof sv);
    TU_OK(fan_matrix_singular_values(wide, 3, 4, sv, 3, NULL));
    for (size_t i = 0; i < 3; i++) TU_CLOSE(sv[i], d[i], SV_TOL, 0);
}

static void test_identity_has_full_effective_participation_and_stable_rank(void **state)
{
    (void)state;
    enum { N = 7 };
    float eye[N * N] = {0};
    for (size_t i = 0; i < N; i++) eye[i * N + i] = 1.0f;
    double e = 0, pr = 0, sr = 0;
    TU_OK(fan_matrix_effective_rank(eye, N, N, &e, NULL));
    TU_OK(fan_matrix_participation_ratio(eye, N, N, &pr, NULL));
    TU_OK(fan_matrix_stable_rank(eye, N, N, &sr, NULL));
    TU_CLOSE(e, N, 1e-12, 0);
    TU_CLOSE(pr, N, 1e-12, 0);
    TU_CLOSE(sr, N, 1e-12, 0);
}

static void test_rank_one_matrix_has_rank_one_by_every_measure(void **state)
{
    (void)state;
    /* Small integers make every product u_i v_j exact, so the float matrix is exactly rank 1. */
    const float u[6] = {1, -2, 3, 0, 2, -1}, v[5] = {2, 1, -3, 1, 1};
    float a[30];
    for (size_t i = 0; i < 6; i++)
        for (size_t j = 0; j < 5; j++) a[i * 5 + j] = u[i] * v[j];
    double e = 0, pr = 0, sr = 0;
    TU_OK(fan_matrix_effective_rank(a, 6, 5, &e, NULL));
    TU_OK(fan_matrix_participation_ratio(a, 6, 5, &pr, NULL));
    TU_OK(fan_matrix_stable_rank(a, 6, 5, &sr, NULL));
    TU_CLOSE(e, 1.0, 1e-9, 0);
    TU_CLOSE(pr, 1.0, 1e-12, 0);
    TU_CLOSE(sr, 1.0, 1e-12, 0);
}

static void test_diagonal_matrix_ranks_match_the_formulas(void **state)
{
    (void)state;
    const double s[6] = {4, 2, 1, 1, 0.5, 0}; /* a zero value contributes nothing */
    float a[36] = {0};
    for (size_t i = 0; i < 6; i++) a[i * 6 + (5 - i)] = (float)s[i]; /* anti-diagonal */
    double e = 0, pr = 0, sr = 0;
    TU_OK(fan_matrix_effective_rank(a, 6, 6, &e, NULL));
    TU_OK(fan_matrix_participation_ratio(a, 6, 6, &pr, NULL));
    TU_OK(fan_matrix_stable_rank(a, 6, 6, &sr, NULL));
    TU_CLOSE(e, ref_erank(s, 6), 1e-12, 0);
    TU_CLOSE(pr, ref_pr(s, 6), 1e-12, 0);
    TU_CLOSE(sr, ref_srank(s, 6), 1e-12, 0);
    /* The values themselves, so the test cannot pass by coincidence of two wrong formulas:
       sum s^2 = 22.25, sum s^4 = 274.0625, s_max^2 = 16. */
    TU_CLOSE(pr, 22.25 * 22.25 / 274.0625, 1e-12, 0);
    TU_CLOSE(sr, 22.25 / 16.0, 1e-12, 0);
    assert_true(e > 3.0 && e < 5.0);
}

static void test_zero_matrix_has_zero_ranks(void **state)
{
    (void)state;
    const float z[12] = {0};
    double e = 1, pr = 1, sr = 1, sv[3] = {1, 1, 1};
    TU_OK(fan_matrix_effective_rank(z, 3, 4, &e, NULL));
    TU_OK(fan_matrix_participation_ratio(z, 3, 4, &pr, NULL));
    TU_OK(fan_matrix_stable_rank(z, 3, 4, &sr, NULL));
    TU_OK(fan_matrix_singular_values(z, 3, 4, sv, 3, NULL));
    assert_true(e == 0 && pr == 0 && sr == 0);
    assert_true(sv[0] == 0 && sv[1] == 0 && sv[2] == 0);
}

static void test_spectrum_summary_matches_formulas_in_any_order(void **state)
{
    (void)state;
    const double s[5] = {0.3, 2.0, 0.0, 1.1, 0.7};
    double e, pr, sr;
    TU_OK(fan_spectrum_summary(s, 5, &e, &pr, &sr));
    TU_CLOSE(e, ref_erank(s, 5), 1e-13, 0);
    TU_CLOSE(pr, ref_pr(s, 5), 1e-13, 0);
    TU_CLOSE(sr, ref_srank(s, 5), 1e-13, 0);
    /* Any output may be NULL. */
    double e2 = 0;
    TU_OK(fan_spectrum_summary(s, 5, &e2, NULL, NULL));
    assert_true(e2 == e);
    /* Scale invariance, at magnitudes where s^4 overflows double unless rescaled. */
    const double big[3] = {1e200, 1e200, 1e200};
    TU_OK(fan_spectrum_summary(big, 3, &e, &pr, &sr));
    TU_CLOSE(e, 3.0, 1e-12, 0);
    TU_CLOSE(pr, 3.0, 1e-12, 0);
    TU_CLOSE(sr, 3.0, 1e-12, 0);
    const double zero[2] = {0, 0};
    TU_OK(fan_spectrum_summary(zero, 2, &e, &pr, &sr));
    assert_true(e == 0 && pr == 0 && sr == 0);
}

static void test_spectrum_summary_rejects_bad_values(void **state)
{
    (void)state;
    const double neg[2] = {1, -0.5}, nan_[2] = {1, NAN}, inf[2] = {INFINITY, 1};
    double e = 5;
    assert_int_equal(fan_spectrum_summary(NULL, 2, &e, NULL, NULL), FAN_E_NULL);
    assert_int_equal(fan_spectrum_summary(neg, 0, &e, NULL, NULL), FAN_E_INVALID);
    assert_int_equal(fan_spectrum_summary(neg, 2, &e, NULL, NULL), FAN_E_INVALID);
    assert_int_equal(fan_spectrum_summary(nan_, 2, &e, NULL, NULL), FAN_E_INVALID);
    assert_int_equal(fan_spectrum_summary(inf, 2, &e, NULL, NULL), FAN_E_INVALID);
    assert_true(e == 5);
}

static void test_generic_functions_validate_arguments(void **state)
{
    (void)state;
    const float a[6] = {1, 2, 3, 4, 5, 6}, bad[6] = {1, 2, INFINITY, 4, 5, 6};
    double sv[2], x;
    assert_int_equal(fan_matrix_singular_values(NULL, 2, 3, sv, 2, NULL), FAN_E_NULL);
    assert_int_equal(fan_matrix_singular_values(a, 2, 3, NULL, 2, NULL), FAN_E_NULL);
    assert_int_equal(fan_matrix_singular_values(a, 0, 3, sv, 0, NULL), FAN_E_INVALID);
    assert_int_equal(fan_matrix_singular_values(a, 2, 0, sv, 0, NULL), FAN_E_INVALID);
    assert_int_equal(fan_matrix_singular_values(a, 2, 3, sv, 3, NULL), FAN_E_SHAPE);
    assert_int_equal(fan_matrix_singular_values(bad, 2, 3, sv, 2, NULL), FAN_E_NONFINITE);
    /* Sizes are checked before the matrix is read, so a huge claimed size is safe to pass. */
    assert_int_equal(fan_matrix_singular_values(a, (size_t)1 << 15, (size_t)1 << 14, sv, 2, NULL),
                     FAN_E_LIMIT);
    assert_int_equal(fan_matrix_effective_rank(a, SIZE_MAX, 2, &x, NULL), FAN_E_LIMIT);
    assert_int_equal(fan_matrix_effective_rank(a, 2, 3, NULL, NULL), FAN_E_NULL);
    assert_int_equal(fan_matrix_participation_ratio(a, 0, 3, &x, NULL), FAN_E_INVALID);
    assert_int_equal(fan_matrix_stable_rank(bad, 3, 2, &x, NULL), FAN_E_NONFINITE);
}

static void test_generic_functions_leak_nothing_and_survive_allocation_failures(void **state)
{
    (void)state;
    float a[40];
    tu_fill(a, 40, 3, -1, 1);
    double ref = 0;
    TU_OK(fan_matrix_effective_rank(a, 8, 5, &ref, NULL));
    tu_counter c = {0};
    fan_allocator al = tu_allocator(&c);
    double e = 0;
    TU_OK(fan_matrix_effective_rank(a, 8, 5, &e, &al));
    assert_true(e == ref);
    assert_true(c.total_allocs > 0); /* the scratch really came from this allocator */
    assert_int_equal(c.live_blocks, 0);
    const size_t needed = c.total_allocs;
    for (size_t k = 1; k <= needed; k++) {
        memset(&c, 0, sizeof c);
        c.fail_at = k;
        double out = -1;
        assert_int_equal(fan_matrix_effective_rank(a, 8, 5, &out, &al), FAN_E_NOMEM);
        assert_true(out == -1);
        assert_int_equal(c.live_blocks, 0);
        double sv[5];
        memset(&c, 0, sizeof c);
        c.fail_at = k;
        const fan_status st = fan_matrix_singular_values(a, 8, 5, sv, 5, &al);
        assert_true(st == FAN_E_NOMEM || (st == FAN_OK && k > c.total_allocs));
        assert_int_equal(c.live_blocks, 0);
    }
}

/* ---- spectral diagnostics of a net's matrices --------------------------------------------- */

static fan_net *new_net(const size_t *sizes, size_t n, tu_counter *c)
{
    fan_allocator a = tu_allocator(c);
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, n, &a));
    return net;
}

static void test_net_spectra_select_weights_feedback_and_gradients(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {4, 4, 3};
    fan_net *net = new_net(sizes, 3, &c);
    /* W = (H / 2) diag(4, 3, 2, 1); B = a permutation of diag(5, 0.5, 2, 1); dW = 2 I. */
    const double dw[4] = {4, 3, 2, 1}, db[4] = {5, 0.5, 2, 1};
    const size_t perm[4] = {1, 3, 0, 2};
    float w[16], b[16] = {0}, g[16] = {0};
    for (size_t r = 0; r < 4; r++) {
        for (size_t k = 0; k < 4; k++) w[r * 4 + k] = (float)(hadamard_half(r, k) * dw[k]);
        b[r * 4 + perm[r]] = (float)db[r];
        g[r * 4 + r] = 2.0f;
    }
    TU_OK(fan_net_set_weights(net, 0, w, 16, NULL, 0));
    TU_OK(fan_net_set_feedback(net, 0, b, 16));
    TU_OK(fan_net_set_gradients(net, 0, g, 16, NULL, 0));
    const fan_net *cnet = net; /* the spectral diagnostics take a const net */
    double sv[4];
    TU_OK_NET(net, fan_diag_singular_values(cnet, 0, FAN_MATRIX_WEIGHTS, sv, 4));
    for (size_t i = 0; i < 4; i++) TU_CLOSE(sv[i], dw[i], SV_TOL, 0);
    TU_OK_NET(net, fan_diag_singular_values(cnet, 0, FAN_MATRIX_FEEDBACK, sv, 4));
    const double db_sorted[4] = {5, 2, 1, 0.5};
    for (size_t i = 0; i < 4; i++) TU_CLOSE(sv[i], db_sorted[i], SV_TOL, 0);
    TU_OK_NET(net, fan_diag_singular_values(cnet, 0, FAN_MATRIX_GRADIENTS, sv, 4));
    for (size_t i = 0; i < 4; i++) TU_CLOSE(sv[i], 2.0, SV_TOL, 0);
    double e, pr, sr;
    TU_OK_NET(net, fan_diag_effective_rank(cnet, 0, FAN_MATRIX_WEIGHTS, &e));
    TU_OK_NET(net, fan_diag_participation_ratio(cnet, 0, FAN_MATRIX_WEIGHTS, &pr));
    TU_OK_NET(net, fan_diag_stable_rank(cnet, 0, FAN_MATRIX_WEIGHTS, &sr));
    TU_CLOSE(e, ref_erank(dw, 4), 1e-12, 0);
    TU_CLOSE(pr, ref_pr(dw, 4), 1e-12, 0);
    TU_CLOSE(sr, 30.0 / 16.0, 1e-12, 0);
    TU_OK_NET(net, fan_diag_effective_rank(cnet, 0, FAN_MATRIX_FEEDBACK, &e));
    TU_CLOSE(e, ref_erank(db, 4), 1e-12, 0);
    TU_OK_NET(net, fan_diag_effective_rank(cnet, 0, FAN_MATRIX_GRADIENTS, &e));
    TU_CLOSE(e, 4.0, 1e-12, 0);
    /* All of it from one SVD: the same values and summaries, bit for bit; outputs may be NULL. */
    double sv1[4], e1, pr1, sr1;
    TU_OK_NET(net, fan_diag_spectrum(cnet, 0, FAN_MATRIX_FEEDBACK, sv1, 4, &e1, &pr1, &sr1));
    TU_OK_NET(net, fan_diag_singular_values(cnet, 0, FAN_MATRIX_FEEDBACK, sv, 4));
    assert_memory_equal(sv1, sv, sizeof sv);
    TU_OK_NET(net, fan_diag_effective_rank(cnet, 0, FAN_MATRIX_FEEDBACK, &e));
    TU_OK_NET(net, fan_diag_participation_ratio(cnet, 0, FAN_MATRIX_FEEDBACK, &pr));
    TU_OK_NET(net, fan_diag_stable_rank(cnet, 0, FAN_MATRIX_FEEDBACK, &sr));
    assert_true(e1 == e && pr1 == pr && sr1 == sr);
    TU_CLOSE(sr1, (25.0 + 0.25 + 4.0 + 1.0) / 25.0, 1e-12, 0);
    TU_OK_NET(net, fan_diag_spectrum(cnet, 0, FAN_MATRIX_WEIGHTS, sv1, 4, NULL, NULL, &sr1));
    TU_CLOSE(sr1, 30.0 / 16.0, 1e-12, 0);
    /* Layer 1 is 3 x 4: three singular values, matching the generic function on W_1. */
    float w1[12];
    double want[3];
    TU_OK(fan_net_get_weights(net, 1, w1, 12, NULL, 0));
    TU_OK(fan_matrix_singular_values(w1, 3, 4, want, 3, NULL));
    TU_OK_NET(net, fan_diag_singular_values(cnet, 1, FAN_MATRIX_WEIGHTS, sv, 3));
    for (size_t i = 0; i < 3; i++) assert_true(sv[i] == want[i]);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_net_gradient_spectrum_is_zero_before_any_gradient(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {5, 4, 3};
    fan_net *net = new_net(sizes, 3, &c);
    double e = -1, sr = -1;
    TU_OK_NET(net, fan_diag_effective_rank(net, 0, FAN_MATRIX_GRADIENTS, &e));
    TU_OK_NET(net, fan_diag_stable_rank(net, 1, FAN_MATRIX_GRADIENTS, &sr));
    assert_true(e == 0 && sr == 0);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_net_spectra_reject_bad_arguments(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {5, 4, 3};
    fan_net *net = new_net(sizes, 3, &c);
    double sv[4] = {-1, -1, -1, -1}, v = -1;
    assert_int_equal(fan_diag_singular_values(NULL, 0, FAN_MATRIX_WEIGHTS, sv, 4), FAN_E_NULL);
    assert_int_equal(fan_diag_singular_values(net, 2, FAN_MATRIX_WEIGHTS, sv, 4), FAN_E_INVALID);
    assert_int_equal(fan_diag_singular_values(net, 0, (fan_matrix)3, sv, 4), FAN_E_INVALID);
    assert_non_null(strstr(fan_net_errmsg(net), "matrix 3"));
    assert_int_equal(fan_diag_singular_values(net, 0, FAN_MATRIX_WEIGHTS, NULL, 4), FAN_E_NULL);
    assert_int_equal(fan_diag_singular_values(net, 0, FAN_MATRIX_WEIGHTS, sv, 5), FAN_E_SHAPE);
    assert_non_null(strstr(fan_net_errmsg(net), "needs 4"));
    assert_int_equal(fan_diag_effective_rank(net, 0, FAN_MATRIX_WEIGHTS, NULL), FAN_E_NULL);
    assert_int_equal(fan_diag_participation_ratio(net, 9, FAN_MATRIX_WEIGHTS, &v), FAN_E_INVALID);
    assert_int_equal(fan_diag_stable_rank(NULL, 0, FAN_MATRIX_WEIGHTS, &v), FAN_E_NULL);
    assert_int_equal(fan_diag_spectrum(NULL, 0, FAN_MATRIX_WEIGHTS, sv, 4, &v, NULL, NULL),
                     FAN_E_NULL);
    assert_int_equal(fan_diag_spectrum(net, 0, FAN_MATRIX_WEIGHTS, NULL, 4, &v, NULL, NULL),
                     FAN_E_NULL);
    assert_int_equal(fan_diag_spectrum(net, 0, FAN_MATRIX_WEIGHTS, sv, 3, &v, NULL, NULL),
                     FAN_E_SHAPE);
    assert_int_equal(fan_diag_spectrum(net, 5, FAN_MATRIX_WEIGHTS, sv, 4, &v, NULL, NULL),
                     FAN_E_INVALID);
    assert_true(sv[0] == -1 && v == -1);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

/* Rounding in two identical SVDs leaves cosines within a few ulps of 1: ~1e-6 degrees. */
#define ANGLE_ZERO_TOL 1e-5

static void test_principal_angles_vanish_for_the_same_and_the_negated_matrix(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {20, 12, 5};
    fan_net *net = new_net(sizes, 3, &c);
    double deg[5];
    /* Random B: the top-5 subspaces of a 12-dimensional space differ. */
    TU_OK_NET(net, fan_diag_principal_angles(net, 0, 5, deg, 5));
    assert_true(deg[4] > 10.0);
    for (size_t i = 0; i + 1 < 5; i++) assert_true(deg[i] <= deg[i + 1] && deg[i] >= 0);
    assert_true(deg[4] <= 90.0);
    for (int sign = 1; sign >= -1; sign -= 2) {
        float w[240];
        TU_OK(fan_net_get_weights(net, 0, w, 240, NULL, 0));
        for (size_t i = 0; i < 240; i++) w[i] *= (float)sign;
        TU_OK(fan_net_set_feedback(net, 0, w, 240));
        TU_OK_NET(net, fan_diag_principal_angles(net, 0, 5, deg, 5));
        for (size_t i = 0; i < 5; i++) TU_CLOSE(deg[i], 0.0, 0, ANGLE_ZERO_TOL);
    }
    /* k = rows: both subspaces are the whole 5-dimensional output space of layer 1. */
    TU_OK_NET(net, fan_diag_principal_angles(net, 1, 5, deg, 5));
    for (size_t i = 0; i < 5; i++) TU_CLOSE(deg[i], 0.0, 0, ANGLE_ZERO_TOL);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_principal_angles_of_constructed_subspaces(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {3, 3, 2};
    fan_net *net = new_net(sizes, 3, &c);
    /* W = diag(3, 2, 1): top left singular vectors e1, e2. B has columns (3, 4, 0) and
       (0, 0, 1): singular values 5 and 1 with left vectors (0.6, 0.8, 0) and e3. */
    const float w[9] = {3, 0, 0, 0, 2, 0, 0, 0, 1};
    const float b[9] = {3, 0, 0, 4, 0, 0, 0, 1, 0};
    TU_OK(fan_net_set_weights(net, 0, w, 9, NULL, 0));
    TU_OK(fan_net_set_feedback(net, 0, b, 9));
    double deg[2];
    TU_OK_NET(net, fan_diag_principal_angles(net, 0, 1, deg, 1));
    TU_CLOSE(deg[0], atan2(4.0, 3.0) * 180.0 / 3.14159265358979323846, 1e-10, 0);
    /* span(e1, e2) contains (0.6, 0.8, 0) and is orthogonal to e3. */
    TU_OK_NET(net, fan_diag_principal_angles(net, 0, 2, deg, 2));
    TU_CLOSE(deg[0], 0.0, 0, ANGLE_ZERO_TOL);
    TU_CLOSE(deg[1], 90.0, 0, 1e-8);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

static void test_principal_angles_reject_bad_arguments(void **state)
{
    (void)state;
    tu_counter c = {0};
    const size_t sizes[3] = {6, 4, 3};
    fan_net *net = new_net(sizes, 3, &c);
    double deg[5] = {-1, -1, -1, -1, -1};
    assert_int_equal(fan_diag_principal_angles(NULL, 0, 2, deg, 2), FAN_E_NULL);
    assert_int_equal(fan_diag_principal_angles(net, 0, 2, NULL, 2), FAN_E_NULL);
    assert_int_equal(fan_diag_principal_angles(net, 2, 2, deg, 2), FAN_E_INVALID);
    assert_int_equal(fan_diag_principal_angles(net, 0, 0, deg, 0), FAN_E_INVALID);
    assert_int_equal(fan_diag_principal_angles(net, 0, 5, deg, 5), FAN_E_INVALID);
    assert_non_null(strstr(fan_net_errmsg(net), "[1, 4]"));
    assert_int_equal(fan_diag_principal_angles(net, 0, 2, deg, 3), FAN_E_SHAPE);
    assert_true(deg[0] == -1);
    fan_net_free(net);
    assert_int_equal(c.live_blocks, 0);
}

/* ---- non-finite matrices never reach LAPACK ----------------------------------------------- */

/* Redirects stdout and stderr into a temporary file while a block of calls runs, so that the
   test can check that the library (and LAPACK under it) printed nothing. */
typedef struct capture {
    int saved_out, saved_err, fd;
    char path[32];
} capture;

static void capture_begin(capture *c)
{
    fflush(stdout);
    fflush(stderr);
    strcpy(c->path, "/tmp/fan_capture_XXXXXX");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    c->saved_out = dup(1);
    c->saved_err = dup(2);
    assert_true(dup2(c->fd, 1) == 1 && dup2(c->fd, 2) == 2);
}

/* Restores the streams; returns the number of bytes printed meanwhile. */
static long capture_end(capture *c)
{
    fflush(stdout);
    fflush(stderr);
    dup2(c->saved_out, 1);
    dup2(c->saved_err, 2);
    close(c->saved_out);
    close(c->saved_err);
    const long n = (long)lseek(c->fd, 0, SEEK_END);
    close(c->fd);
    unlink(c->path);
    return n;
}

/* Statuses collected while the output is captured, checked once it is restored (a failing
   assertion inside the capture would print into the capture file). */
#define MAX_CALLS 32

static void assert_all(const fan_status *got, size_t n, fan_status want)
{
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want) print_error("call %zu returned %d, not %d\n", i, got[i], want);
        assert_int_equal(got[i], want);
    }
}

static void test_svd_of_nonfinite_matrices_fails_without_calling_lapack(void **state)
{
    (void)state;
    tu_counter cnt = {0};
    fan_allocator al = tu_allocator(&cnt);
    const float poison[] = {NAN, INFINITY, -INFINITY};
    fan_status st[MAX_CALLS];
    size_t k = 0;
    capture c;
    capture_begin(&c);
    for (size_t p = 0; p < 3; p++) {
        float a[12];
        double d[12], sv[3];
        tu_fill(a, 12, p, -1, 1);
        a[7] = poison[p];
        for (size_t i = 0; i < 12; i++) d[i] = a[i];
        st[k++] = fan__svd_floats(&al, a, 4, 3, sv, NULL);
        st[k++] = fan__svd(&al, d, 4, 3, sv, NULL);
    }
    assert_int_equal(capture_end(&c), 0);
    assert_all(st, k, FAN_E_NONFINITE);
    assert_int_equal(cnt.live_blocks, 0);
}

/* A net whose weights are not finite (no public call makes one; the test writes one directly)
   and a net whose activations overflow: every SVD-based diagnostic fails with
   FAN_E_NONFINITE, prints nothing and returns, where before LAPACK returned FAN_OK with an
   effective rank of 0 for infinite weights, or did not return at all (principal angles). */
static void test_spectral_diagnostics_of_nonfinite_nets_fail_with_nonfinite(void **state)
{
    (void)state;
    const size_t sizes[] = {6, 5, 4};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 3, NULL));
    fan_status st[MAX_CALLS];
    size_t k = 0;
    double v = -1.0;
    capture c;
    capture_begin(&c);
    const float poison[] = {NAN, INFINITY, -INFINITY};
    for (size_t p = 0; p < 3; p++) {
        fan__net_weights_mut(net, 1)[3] = poison[p];
        double sv[4], deg[2];
        st[k++] = fan_diag_singular_values(net, 1, FAN_MATRIX_WEIGHTS, sv, 4);
        st[k++] = fan_diag_effective_rank(net, 1, FAN_MATRIX_WEIGHTS, &v);
        st[k++] = fan_diag_participation_ratio(net, 1, FAN_MATRIX_WEIGHTS, &v);
        st[k++] = fan_diag_stable_rank(net, 1, FAN_MATRIX_WEIGHTS, &v);
        st[k++] = fan_diag_principal_angles(net, 1, 2, deg, 2);
    }
    fan__net_weights_mut(net, 1)[3] = 0.0f;
    /* Finite weights and inputs whose products overflow: the forward pass reports it
       (FAN_E_NUMERIC) before any Gram matrix is formed. */
    float w[30], x[12];
    for (size_t i = 0; i < 30; i++) w[i] = 3e38f;
    for (size_t i = 0; i < 12; i++) x[i] = 3e38f;
    const fan_status set = fan_net_set_weights(net, 0, w, 30, NULL, 0);
    const int32_t labels[2] = {0, 1};
    fan_dataset *ds = NULL;
    const fan_status made = fan_dataset_from_arrays(&ds, x, labels, 2, 6, 4, NULL);
    fan_status gram = FAN_OK;
    if (made == FAN_OK) gram = fan_diag_gram_dimensionality(net, 1, ds, 0, &v);
    assert_int_equal(capture_end(&c), 0);
    TU_OK(set);
    TU_OK(made);
    assert_all(st, k, FAN_E_NONFINITE);
    assert_int_equal(gram, FAN_E_NUMERIC);
    assert_true(v == -1.0);
    fan_dataset_free(ds);
    fan_net_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_angle_of_identical_negated_orthogonal_and_zero_vectors),
        cmocka_unit_test(test_angle_rejects_null_empty_and_nonfinite_input),
        cmocka_unit_test(test_singular_values_of_permuted_diagonal_are_sorted_diagonal),
        cmocka_unit_test(test_singular_values_of_orthogonal_times_diagonal_times_permutation),
        cmocka_unit_test(test_identity_has_full_effective_participation_and_stable_rank),
        cmocka_unit_test(test_rank_one_matrix_has_rank_one_by_every_measure),
        cmocka_unit_test(test_diagonal_matrix_ranks_match_the_formulas),
        cmocka_unit_test(test_zero_matrix_has_zero_ranks),
        cmocka_unit_test(test_spectrum_summary_matches_formulas_in_any_order),
        cmocka_unit_test(test_spectrum_summary_rejects_bad_values),
        cmocka_unit_test(test_generic_functions_validate_arguments),
        cmocka_unit_test(test_generic_functions_leak_nothing_and_survive_allocation_failures),
        cmocka_unit_test(test_net_spectra_select_weights_feedback_and_gradients),
        cmocka_unit_test(test_net_gradient_spectrum_is_zero_before_any_gradient),
        cmocka_unit_test(test_net_spectra_reject_bad_arguments),
        cmocka_unit_test(test_principal_angles_vanish_for_the_same_and_the_negated_matrix),
        cmocka_unit_test(test_principal_angles_of_constructed_subspaces),
        cmocka_unit_test(test_principal_angles_reject_bad_arguments),
        cmocka_unit_test(test_svd_of_nonfinite_matrices_fails_without_calling_lapack),
        cmocka_unit_test(test_spectral_diagnostics_of_nonfinite_nets_fail_with_nonfinite),
    };
    return cmocka_run_group_tests_name("spectral", tests, NULL, NULL);
}
