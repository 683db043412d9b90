/* test_kernels.c - the library's own GEMM kernels (src/kernels*.c) against CBLAS, the reference:
   every set the CPU supports, every form the training step uses, ragged sizes around every block
   edge and padded leading dimensions; the bits do not depend on how C is split; the environment
   and the per-net switch force each fallback; and a net trains the same, within float rounding,
   on every set. */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"
#include "fanoise.h"
#include "kernels.h"
#include "testutil.h"

/* Float sums of k products of values in [-1, 1] differ from the reference by rounding only:
   allow a few ulps of the sum of magnitudes. */
#define REL_TOL 1e-5

/* Elements past a matrix's columns that the kernels must leave alone. */
#define PAD 3
#define GUARD 12345.0f

/* One product C = op(A) op(B) under `kernels`, compared with CBLAS element by element. */
static void check_product(fan__kernels kernels, int ta, int tb, size_t m, size_t n, size_t k)
{
    const size_t rows_a = ta ? k : m, cols_a = ta ? m : k;
    const size_t rows_b = tb ? n : k, cols_b = tb ? k : n;
    const size_t lda = cols_a + PAD, ldb = cols_b + PAD, ldc = n + PAD;
    float *a = malloc(rows_a * lda * sizeof *a), *b = malloc(rows_b * ldb * sizeof *b);
    float *c = malloc(m * ldc * sizeof *c), *ref = malloc(m * ldc * sizeof *ref);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(ref);
    tu_fill(a, rows_a * lda, 11 + m, -1.0f, 1.0f);
    tu_fill(b, rows_b * ldb, 23 + n, -1.0f, 1.0f);
    for (size_t i = 0; i < m * ldc; i++) c[i] = ref[i] = GUARD;
    fan__gemm(kernels, ta, tb, m, n, k, a, lda, b, ldb, c, ldc);
    fan__sgemm(ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, ref, ldc);
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double mag = 0.0;
            for (size_t p = 0; p < k; p++) {
                const float x = ta ? a[p * lda + i] : a[i * lda + p];
                const float y = tb ? b[j * ldb + p] : b[p * ldb + j];
                mag += fabs((double)x * (double)y);
            }
            const double got = c[i * ldc + j], want = ref[i * ldc + j];
            if (fabs(got - want) > REL_TOL * mag + 1e-30) {
                print_error("%s ta=%d tb=%d m=%zu n=%zu k=%zu: C[%zu][%zu] = %.9g, CBLAS %.9g\n",
                            fan__kernels_name(kernels), ta, tb, m, n, k, i, j, got, want);
                fail();
            }
        }
        for (size_t j = n; j < ldc; j++) assert_true(c[i * ldc + j] == GUARD);
    }
    free(a);
    free(b);
    free(c);
    free(ref);
}

/* Sizes on both sides of every block edge of both kernel sets (rows 3, 4, 6, 12; columns 4, 6,
   8, 16, 64; k 8, 16, 1024), and the step's own shapes. */
static const size_t EDGE[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 31, 33, 63, 65};

static void check_all_forms(fan__kernels kernels)
{
    static const int forms[3][2] = {{0, 1}, {1, 0}, {0, 0}};
    for (size_t f = 0; f < 3; f++) {
        const int ta = forms[f][0], tb = forms[f][1];
        for (size_t i = 0; i < sizeof EDGE / sizeof EDGE[0]; i++)
            for (size_t j = 0; j < sizeof EDGE / sizeof EDGE[0]; j += 3)
                check_product(kernels, ta, tb, EDGE[i], EDGE[j], EDGE[(i + j) % 18] + 1);
        /* 784-100-10 at batch 64, and k past one 1024-float pass of the NT kernel. */
        check_product(kernels, 0, 1, 64, 100, 784);
        check_product(kernels, 1, 0, 100, 784, 64);
        check_product(kernels, 0, 0, 64, 100, 10);
        check_product(kernels, 0, 1, 13, 7, 2500);
        check_product(kernels, 0, 0, 7, 70, 300);
        check_product(kernels, 1, 0, 5, 33, 129);
    }
}

static void test_every_supported_kernel_set_matches_cblas(void **state)
{
    (void)state;
    const fan__kernels top = fan__kernels_supported();
    for (int k = FAN__KERNELS_CBLAS; k <= (int)top; k++) check_all_forms((fan__kernels)k);
    if (top == FAN__KERNELS_CBLAS) print_message("note: no AVX2 on this CPU; only CBLAS tested\n");
}

static void test_k_zero_gives_a_zero_product(void **state)
{
    (void)state;
    float c[6] = {1, 2, 3, 4, 5, 6};
    const float a[1] = {7}, b[1] = {8};
    for (int k = FAN__KERNELS_CBLAS; k <= (int)fan__kernels_supported(); k++) {
        for (size_t i = 0; i < 6; i++) c[i] = 9.0f;
        fan__gemm((fan__kernels)k, 0, 0, 2, 3, 0, a, 1, b, 3, c, 3);
        for (size_t i = 0; i < 6; i++) assert_true(c[i] == 0.0f);
    }
}

/* What lets threads split a pass without changing results: C computed in row or column pieces
   equals C computed whole, bit for bit, on the library's own kernels. */
static void test_own_kernels_give_the_same_bits_for_any_split(void **state)
{
    (void)state;
    const size_t m = 61, n = 83, k = 97;
    float *a = malloc(m * k * sizeof *a), *b = malloc(k * n * sizeof *b), *bt = malloc(n * k * sizeof *bt);
    float *whole = malloc(m * n * sizeof *whole), *parts = malloc(m * n * sizeof *parts);
    tu_fill(a, m * k, 5, -1.0f, 1.0f);
    tu_fill(b, k * n, 6, -1.0f, 1.0f);
    for (size_t p = 0; p < k; p++)
        for (size_t j = 0; j < n; j++) bt[j * k + p] = b[p * n + j];
    for (int kk = FAN__KERNELS_AVX2; kk <= (int)fan__kernels_supported(); kk++) {
        const fan__kernels ks = (fan__kernels)kk;
        /* NT and NN split by rows at odd places. */
        for (int nt = 0; nt < 2; nt++) {
            const float *bb = nt ? bt : b;
            const size_t ldb = nt ? k : n;
            fan__gemm(ks, 0, nt, m, n, k, a, k, bb, ldb, whole, n);
            const size_t cut[] = {0, 5, 17, 18, 40, m};
            for (size_t s = 0; s + 1 < sizeof cut / sizeof cut[0]; s++)
                fan__gemm(ks, 0, nt, cut[s + 1] - cut[s], n, k, a + cut[s] * k, k, bb, ldb,
                          parts + cut[s] * n, n);
            assert_memory_equal(whole, parts, m * n * sizeof *whole);
        }
        /* NT split by columns (rows of B), so that pieces 1 to 5 wide take the narrower blocks
           the kernels keep for a layer's last units: the same bits as the whole call's. */
        fan__gemm(ks, 0, 1, m, n, k, a, k, bt, k, whole, n);
        const size_t cols[] = {0, 1, 3, 7, 11, 16, 18, 23, 28, n};
        for (size_t s = 0; s + 1 < sizeof cols / sizeof cols[0]; s++)
            fan__gemm(ks, 0, 1, m, cols[s + 1] - cols[s], k, a, k, bt + cols[s] * k, k,
                      parts + cols[s], n);
        assert_memory_equal(whole, parts, m * n * sizeof *whole);
        /* TN (A is k x m) split by columns, then by rows into pieces 1 to 5 high. */
        fan__gemm(ks, 1, 0, m, n, k, a, m, b, n, whole, n);
        const size_t cut[] = {0, 16, 19, 48, n};
        for (size_t s = 0; s + 1 < sizeof cut / sizeof cut[0]; s++)
            fan__gemm(ks, 1, 0, m, cut[s + 1] - cut[s], k, a, m, b + cut[s], n, parts + cut[s], n);
        assert_memory_equal(whole, parts, m * n * sizeof *whole);
        const size_t rows[] = {0, 1, 3, 7, 11, 16, 18, 23, 28, m};
        for (size_t s = 0; s + 1 < sizeof rows / sizeof rows[0]; s++)
            fan__gemm(ks, 1, 0, rows[s + 1] - rows[s], n, k, a + rows[s], m, b, n,
                      parts + rows[s] * n, n);
        assert_memory_equal(whole, parts, m * n * sizeof *whole);
    }
    free(a);
    free(b);
    free(bt);
    free(whole);
    free(parts);
}

static void test_environment_can_only_lower_the_kernel_set(void **state)
{
    (void)state;
    const fan__kernels top = fan__kernels_supported();
    const char *names[] = {"cblas", "avx2", "avx512"};
    for (int k = FAN__KERNELS_CBLAS; k <= FAN__KERNELS_AVX512; k++) {
        assert_int_equal(setenv("FANOISE_KERNELS", names[k], 1), 0);
        assert_int_equal(fan__kernels_detect(), k < (int)top ? k : (int)top);
        /* A net takes the set when it is created. */
        const size_t sizes[] = {4, 3};
        fan_net *net = NULL;
        TU_OK(fan_net_create(&net, sizes, 2, NULL));
        assert_int_equal(fan__net_kernels(net), k < (int)top ? k : (int)top);
        fan_net_free(net);
    }
    assert_int_equal(setenv("FANOISE_KERNELS", "sse9", 1), 0);
    assert_int_equal(fan__kernels_detect(), top);
    assert_int_equal(unsetenv("FANOISE_KERNELS"), 0);
    assert_int_equal(fan__kernels_detect(), top);
    assert_string_equal(fan__kernels_name(FAN__KERNELS_AVX512), "avx512");
}

static void test_per_net_switch_cannot_exceed_the_cpu(void **state)
{
    (void)state;
    const size_t sizes[] = {4, 3};
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 2, NULL));
    fan__net_set_kernels(net, FAN__KERNELS_AVX512);
    assert_int_equal(fan__net_kernels(net), fan__kernels_supported());
    fan__net_set_kernels(net, FAN__KERNELS_CBLAS);
    assert_int_equal(fan__net_kernels(net), FAN__KERNELS_CBLAS);
    /* A clone runs as its source does. */
    fan_net *copy = NULL;
    TU_OK(fan_net_clone(&copy, net));
    assert_int_equal(fan__net_kernels(copy), FAN__KERNELS_CBLAS);
    fan_net_free(copy);
    fan_net_free(net);
}

/* Gradients, one SGD step and the loss of a net under every rule, loss and kernel set: each fast
   path against the CBLAS path of the same net. */
static void test_every_rule_trains_alike_on_every_kernel_set(void **state)
{
    (void)state;
    enum { IN = 37, H1 = 29, H2 = 19, OUT = 7, N = 26 };
    const size_t sizes[] = {IN, H1, H2, OUT};
    static const fan_rule rules[] = {FAN_RULE_BP, FAN_RULE_FA, FAN_RULE_DFA, FAN_RULE_USF,
                                     FAN_RULE_BRSF, FAN_RULE_FRSF, FAN_RULE_KP, FAN_RULE_WM};
    float x[N * IN];
    int32_t y[N];
    tu_fill(x, N * IN, 3, -2.0f, 2.0f);
    for (size_t i = 0; i < N; i++) y[i] = (int32_t)(i % OUT);
    float wa[H1 * IN], wb[H1 * IN], ga[H2 * H1], gb[H2 * H1];
    for (int ks = FAN__KERNELS_AVX2; ks <= (int)fan__kernels_supported(); ks++) {
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
            for (int loss = 0; loss < 2; loss++) {
                fan_net *ref = NULL, *fast = NULL;
                fan_optimizer *oa = NULL, *ob = NULL;
                TU_OK(fan_net_create(&ref, sizes, 4, NULL));
                TU_OK(fan_net_set_rule(ref, rules[r]));
                TU_OK(fan_net_set_loss(ref, loss ? FAN_LOSS_MSE : FAN_LOSS_CROSS_ENTROPY));
                TU_OK(fan_net_set_activation(ref, 1, FAN_ACT_TANH));
                TU_OK(fan_net_init(ref, 4, 5));
                TU_OK(fan_net_clone(&fast, ref));
                fan__net_set_kernels(ref, FAN__KERNELS_CBLAS);
                fan__net_set_kernels(fast, (fan__kernels)ks);
                TU_OK(fan_optimizer_create(&oa, FAN_OPTIMIZER_SGD, ref, NULL));
                TU_OK(fan_optimizer_create(&ob, FAN_OPTIMIZER_SGD, fast, NULL));
                float la = 0.0f, lb = 0.0f;
                for (int step = 0; step < 3; step++) {
                    TU_OK_NET(ref, fan_net_train_batch(ref, oa, x, y, N, &la));
                    TU_OK_NET(fast, fan_net_train_batch(fast, ob, x, y, N, &lb));
                }
                TU_CLOSE(la, lb, 1e-5, 1e-6);
                TU_OK(fan_net_get_gradients(ref, 1, ga, H2 * H1, NULL, 0));
                TU_OK(fan_net_get_gradients(fast, 1, gb, H2 * H1, NULL, 0));
                for (size_t i = 0; i < H2 * H1; i++) TU_CLOSE(ga[i], gb[i], 1e-3, 1e-6);
                TU_OK(fan_net_get_weights(ref, 0, wa, H1 * IN, NULL, 0));
                TU_OK(fan_net_get_weights(fast, 0, wb, H1 * IN, NULL, 0));
                for (size_t i = 0; i < H1 * IN; i++) TU_CLOSE(wa[i], wb[i], 1e-4, 1e-6);
                fan_optimizer_free(oa);
                fan_optimizer_free(ob);
                fan_net_free(ref);
                fan_net_free(fast);
            }
        }
    }
}

/* The optimizer's update loops, compiled for every vector width, give the same bits. */
static void test_optimizer_updates_are_the_same_on_every_isa(void **state)
{
    (void)state;
    enum { N = 3000 };
    static const fan_optimizer_kind kinds[] = {FAN_OPTIMIZER_SGD, FAN_OPTIMIZER_ADAM,
                                               FAN_OPTIMIZER_ADAMW, FAN_OPTIMIZER_RMSPROP};
    const size_t sizes[] = {59, 50}; /* 3000 parameters */
    fan_net *net = NULL;
    TU_OK(fan_net_create(&net, sizes, 2, NULL));
    static float g[N], ref[N], p[N];
    tu_fill(g, N, 8, -1.0f, 1.0f);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int isa = FAN__KERNELS_CBLAS; isa <= (int)fan__kernels_supported(); isa++) {
            fan_optimizer *opt = NULL;
            TU_OK(fan_optimizer_create(&opt, kinds[k], net, NULL));
            TU_OK(fan_optimizer_set(opt, FAN_OPT_MOMENTUM, 0.9));
            TU_OK(fan_optimizer_set(opt, FAN_OPT_WEIGHT_DECAY, 0.01));
            tu_fill(p, N, 9, -1.0f, 1.0f);
            for (int step = 0; step < 3; step++) {
                fan__optimizer_begin_step(opt);
                assert_true(fan__optimizer_update_range(opt, (fan__kernels)isa, p, g, 0, 1234));
                assert_true(fan__optimizer_update_range(opt, (fan__kernels)isa, p, g, 1234, N - 1234));
                (void)fan__optimizer_end_step(opt);
            }
            if (isa == FAN__KERNELS_CBLAS)
                memcpy(ref, p, sizeof p);
            else
                assert_memory_equal(p, ref, sizeof p);
            fan_optimizer_free(opt);
        }
    }
    fan_net_free(net);
}

/* The batch gather converts uint8 pixels with the widest vectors the dataset chose at creation;
   every width gives the same bits, and so does the finiteness check of every gradient. */
static void test_gather_and_finiteness_check_are_the_same_on_every_isa(void **state)
{
    (void)state;
    enum { N = 37, W = 29, H = 27 };
    static uint8_t px[N * W * H];
    int32_t y[N];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)((i * 2654435761u) >> 13);
    for (size_t i = 0; i < N; i++) y[i] = (int32_t)(i % 3);
    fan_dataset *ds = NULL;
    TU_OK(fan_dataset_from_u8(&ds, px, y, N, W, H, 1, 3, NULL));
    TU_OK(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.3, 0.35));
    const size_t idx[5] = {36, 0, 17, 17, 5};
    static float ref[5 * W * H], got[5 * W * H];
    for (int isa = FAN__KERNELS_CBLAS; isa <= (int)fan__kernels_supported(); isa++) {
        ds->isa = (fan__kernels)isa;
        fan__dataset_gather(ds, idx, 0, 5, isa == 0 ? ref : got, NULL);
        if (isa > 0) assert_memory_equal(ref, got, sizeof ref);
        const float inf = INFINITY;
        for (size_t k = 0; k < 5 * W * H; k += 97) {
            const float keep = got[k];
            got[k] = inf;
            assert_false(fan__all_finite_isa((fan__kernels)isa, got, 5 * W * H));
            got[k] = keep;
        }
        assert_true(fan__all_finite_isa((fan__kernels)isa, ref, 5 * W * H));
    }
    TU_CLOSE(ref[0], ((double)px[36 * W * H] / 255.0 - 0.3) / 0.35, 1e-6, 1e-6);
    fan_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_supported_kernel_set_matches_cblas),
        cmocka_unit_test(test_k_zero_gives_a_zero_product),
        cmocka_unit_test(test_own_kernels_give_the_same_bits_for_any_split),
        cmocka_unit_test(test_environment_can_only_lower_the_kernel_set),
        cmocka_unit_test(test_per_net_switch_cannot_exceed_the_cpu),
        cmocka_unit_test(test_every_rule_trains_alike_on_every_kernel_set),
        cmocka_unit_test(test_optimizer_updates_are_the_same_on_every_isa),
        cmocka_unit_test(test_gather_and_finiteness_check_are_the_same_on_every_isa),
    };
    return cmocka_run_group_tests_name("kernels", tests, NULL, NULL);
}
