/*
 * diag.c - diagnostics of a network's matrices: alignment of forward and feedback weights (per
 * unit and whole matrix) under every rule, alignment of the error signals a rule sends down with
 * BP's, singular spectra and their summaries, and principal angles between W's and B's dominant
 * subspaces. Everything here reads the net and writes only caller buffers and scratch from the
 * net's allocator.
 */
#include "spectral.h"

#include <math.h>
#include <string.h>

/* Columns handled per pass of the alignment: three double accumulators per column stay in L1
   (6 KB), and each row segment of both matrices is read contiguously exactly once. */
#define ALIGN_BLOCK 256

/* Degrees per radian, from pi to double precision. */
#define DEG_PER_RAD (180.0 / 3.14159265358979323846)

static fan_status check_layer(const fan_net *net, size_t layer)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), layer >= fan_net_num_layers(net), FAN_E_INVALID,
                 "layer %zu does not exist (the net has %zu weight layers)", layer,
                 fan_net_num_layers(net));
    return FAN_OK;
}

/* Records a message for a failed SVD-based computation and returns st. */
static fan_status svd_failed(const fan_net *net, fan_status st, size_t layer, const char *what)
{
    if (st == FAN_E_NOMEM)
        return fan__fail(fan__net_errbuf(net), st, "layer %zu: cannot allocate scratch for %s",
                         layer, what);
    if (st == FAN_E_NONFINITE)
        return fan__fail(fan__net_errbuf(net), st, "layer %zu: the matrix for %s holds NaN or "
                         "infinity", layer, what);
    return fan__fail(fan__net_errbuf(net), st, "layer %zu: the SVD for %s did not converge", layer,
                     what);
}

/* ---- alignment of forward and feedback weights --------------------------------------------- */

/* Per-column angles between two rows x cols matrices f and b, their mean, and the angle between
   the whole matrices. */
static void column_angles(const float *f, const float *b, size_t rows, size_t cols,
                          double *per_unit_deg, double *mean_deg, double *matrix_deg)
{
    double dot_all = 0.0, ff_all = 0.0, bb_all = 0.0, deg_sum = 0.0;
    double dot[ALIGN_BLOCK], ff[ALIGN_BLOCK], bb[ALIGN_BLOCK];
    for (size_t c0 = 0; c0 < cols; c0 += ALIGN_BLOCK) {
        const size_t nc = cols - c0 < ALIGN_BLOCK ? cols - c0 : ALIGN_BLOCK;
        memset(dot, 0, nc * sizeof *dot);
        memset(ff, 0, nc * sizeof *ff);
        memset(bb, 0, nc * sizeof *bb);
        for (size_t r = 0; r < rows; r++) {
            const float *fr = f + r * cols + c0, *br = b + r * cols + c0;
            for (size_t j = 0; j < nc; j++) {
                const double x = fr[j], y = br[j];
                dot[j] += x * y;
                ff[j] += x * x;
                bb[j] += y * y;
            }
        }
        for (size_t j = 0; j < nc; j++) {
            const double deg = fan__angle_from_dots(dot[j], ff[j], bb[j]);
            if (per_unit_deg) per_unit_deg[c0 + j] = deg;
            deg_sum += deg;
            dot_all += dot[j];
            ff_all += ff[j];
            bb_all += bb[j];
        }
    }
    if (mean_deg) *mean_deg = deg_sum / (double)cols;
    if (matrix_deg) *matrix_deg = fan__angle_from_dots(dot_all, ff_all, bb_all);
}

/*
 * The two sides every alignment measure compares, for layer l under the net's rule, both rows x
 * cols: the forward side is W_l, or for DFA the product of the forward weights from layer l to
 * the output, which is what DFA's B_l stands in for; the feedback side is the matrix the rule's
 * error pass multiplies by (computed from W for the sign-concordant rules), or for BP, which has
 * none, the stored B that FA would use.
 */
typedef struct pair_view {
    const float *f, *b;
    size_t rows, cols;
    float *owned[3];
} pair_view;

static void pair_close(const fan_net *net, pair_view *v)
{
    for (int i = 0; i < 3; i++) fan__free(fan__net_allocator(net), v->owned[i]);
}

static fan_status pair_open(const fan_net *net, size_t layer, int want_forward, pair_view *v)
{
    memset(v, 0, sizeof *v);
    const fan_rule rule = fan_net_rule(net);
    const fan_allocator *al = fan__net_allocator(net);
    v->cols = fan__net_sizes(net)[layer];
    v->rows = fan__net_feedback_rows(net, layer);
    v->f = fan__net_weights(net, layer);
    int ok = 1;
    if (want_forward && fan__net_rule_is_direct(net) && layer + 1 < fan_net_num_layers(net)) {
        ok = (v->owned[0] = fan__calloc(al, fan__net_product_floats(net), sizeof(float))) &&
             (v->owned[1] = fan__calloc(al, fan__net_product_floats(net), sizeof(float)));
        if (ok) fan__net_weight_product(net, layer, v->owned[0], v->owned[1]);
        v->f = v->owned[0];
        if (ok && !fan__all_finite(v->f, v->rows * v->cols)) {
            pair_close(net, v);
            return fan__fail(fan__net_errbuf(net), FAN_E_NUMERIC,
                             "layer %zu: the product of the forward weights above it overflowed",
                             layer);
        }
    }
    const size_t need = fan__net_rule_scratch_floats(net, rule);
    if (ok && need > 0) ok = (v->owned[2] = fan__calloc(al, need, sizeof(float))) != NULL;
    if (!ok) {
        pair_close(net, v);
        return fan__fail(fan__net_errbuf(net), FAN_E_NOMEM,
                         "layer %zu: cannot allocate scratch for the feedback matrix", layer);
    }
    v->b = fan__net_rule_is_backprop(net)
               ? fan__net_feedback(net, layer)
               : fan__net_feedback_matrix(net, rule, layer, v->owned[2], &v->rows);
    return FAN_OK;
}

fan_status fan_diag_alignment(const fan_net *net, size_t layer, double *per_unit_deg, size_t n,
                              double *mean_deg, double *matrix_deg)
{
    FAN__CHECK(check_layer(net, layer));
    const size_t in = fan__net_sizes(net)[layer];
    FAN__FAIL_IF(fan__net_errbuf(net), per_unit_deg != NULL && n != in, FAN_E_SHAPE,
                 "per_unit_deg has length %zu; layer %zu has %zu inputs", n, layer, in);
    pair_view v;
    FAN__CHECK(pair_open(net, layer, 1, &v));
    column_angles(v.f, v.b, v.rows, v.cols, per_unit_deg, mean_deg, matrix_deg);
    pair_close(net, &v);
    return FAN_OK;
}

/* ---- alignment of the error signals ------------------------------------------------------- */

fan_status fan_diag_delta_alignment(const fan_net *net, const float *x, const int32_t *labels,
                                    size_t n, double *deg_per_layer, size_t n_layers)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, x == NULL || labels == NULL || deg_per_layer == NULL, FAN_E_NULL,
                 "%s is NULL", x == NULL ? "x" : labels == NULL ? "labels" : "deg_per_layer");
    FAN__FAIL_IF(err, n == 0, FAN_E_INVALID, "batch of 0 rows");
    const size_t L = fan_net_num_layers(net), *sizes = fan__net_sizes(net), c = sizes[L];
    FAN__FAIL_IF(err, n_layers != L, FAN_E_SHAPE,
                 "deg_per_layer has length %zu; the net has %zu weight layers", n_layers, L);
    FAN__CHECK(fan__net_check_labels(net, labels, n));
    FAN__FAIL_IF(err, !fan__all_finite(x, n * sizes[0]), FAN_E_NONFINITE,
                 "input x contains NaN or infinity");
    const fan_rule rule = fan_net_rule(net);
    /* BP sends BP's error by definition; every rule's output error is exact, so the last entry
       is 0 and a one-layer net has nothing to compare. */
    if (fan__net_rule_is_backprop(net) || L == 1) {
        memset(deg_per_layer, 0, L * sizeof *deg_per_layer);
        return FAN_OK;
    }

    /* Scratch: activations of every layer, the targets, the output error, the error signals of
       both rules at every hidden layer, and the rule's computed feedback. */
    size_t per_row = 2 * c, hidden = 0;
    for (size_t l = 1; l <= L; l++) per_row += sizes[l];
    for (size_t l = 1; l < L; l++) hidden += sizes[l];
    per_row += 2 * hidden;
    size_t total;
    const size_t extra = fan__net_rule_scratch_floats(net, rule);
    /* An unaddressable request is reported as what it is to the caller: memory not available. */
    FAN__FAIL_IF(err, !fan__mul_ok(per_row, n, &total) || total > SIZE_MAX / sizeof(float) - extra,
                 FAN_E_NOMEM, "a batch of %zu rows needs more scratch than can be addressed", n);
    const fan_allocator *al = fan__net_allocator(net);
    float *ws = fan__alloc(al, (total + extra) * sizeof(float));
    FAN__FAIL_IF(err, ws == NULL, FAN_E_NOMEM,
                 "cannot allocate scratch for the error signals of %zu rows", n);
    float *hs[FAN_MAX_LAYERS + 1] = {NULL}, *mine[FAN_MAX_LAYERS + 1] = {NULL},
          *bp[FAN_MAX_LAYERS + 1] = {NULL};
    float *p = ws;
    for (size_t l = 1; l <= L; l++, p += n * sizes[l - 1]) hs[l] = p;
    for (size_t l = 1; l < L; l++, p += n * sizes[l - 1]) mine[l] = p;
    for (size_t l = 1; l < L; l++, p += n * sizes[l - 1]) bp[l] = p;
    float *targets = p, *e = p + n * c, *scratch = p + 2 * n * c;

    fan__one_hot(labels, n, c, targets);
    fan_status st = fan__net_forward_checked(net, x, n, hs, 0);
    if (st != FAN_OK) {
        fan__free(al, ws);
        return st;
    }
    (void)fan__net_output_delta(net, hs[L], targets, n, e);
    /* Both chains start from the same exact output error; each then follows its own rule all
       the way down, as each rule's training would. */
    fan__net_error_signals(net, rule, e, (const float *const *)hs, n, mine, scratch);
    fan__net_error_signals(net, FAN_RULE_BP, e, (const float *const *)hs, n, bp, NULL);
    double deg[FAN_MAX_LAYERS] = {0};
    for (size_t l = 1; l < L && st == FAN_OK; l++) {
        deg[l - 1] = fan__vec_angle_deg(mine[l], bp[l], n * sizes[l]);
        if (!isfinite(deg[l - 1]))
            st = fan__fail(err, FAN_E_NUMERIC, "the error signals at layer %zu overflowed to "
                           "infinity or NaN", l);
    }
    fan__free(al, ws);
    if (st == FAN_OK) memcpy(deg_per_layer, deg, L * sizeof *deg);
    return st;
}

/* ---- singular spectra --------------------------------------------------------------------- */

/* One SVD of a layer's matrix: W_l, dW_l, or the feedback matrix as fan_net_get_feedback gives
   it. sv has min(rows, cols) entries. */
static fan_status layer_svd(const fan_net *net, size_t layer, fan_matrix which, double *sv,
                            size_t n, const char *what)
{
    FAN__CHECK(check_layer(net, layer));
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, which != FAN_MATRIX_WEIGHTS && which != FAN_MATRIX_FEEDBACK &&
                          which != FAN_MATRIX_GRADIENTS,
                 FAN_E_INVALID, "unknown matrix %d", (int)which);
    FAN__FAIL_IF(err, sv == NULL, FAN_E_NULL, "the output pointer is NULL");
    pair_view v;
    FAN__CHECK(pair_open(net, layer, 0, &v));
    const float *m = which == FAN_MATRIX_FEEDBACK ? v.b
                     : which == FAN_MATRIX_WEIGHTS ? fan__net_weights(net, layer)
                                                   : fan__net_gradient(net, layer);
    const size_t rows = which == FAN_MATRIX_FEEDBACK ? v.rows : fan__net_sizes(net)[layer + 1];
    const size_t cols = v.cols, k = rows < cols ? rows : cols;
    fan_status st = FAN_OK;
    if (n != k)
        st = fan__fail(err, FAN_E_SHAPE, "sv has length %zu; layer %zu needs %zu", n, layer, k);
    else if ((st = fan__svd_floats(fan__net_allocator(net), m, rows, cols, sv, NULL)) != FAN_OK)
        st = svd_failed(net, st, layer, what);
    pair_close(net, &v);
    return st;
}

/* Number of singular values of a layer's matrix. */
static size_t layer_rank_bound(const fan_net *net, size_t layer, fan_matrix which)
{
    const size_t cols = fan__net_sizes(net)[layer];
    const size_t rows = which == FAN_MATRIX_FEEDBACK ? fan__net_feedback_rows(net, layer)
                                                     : fan__net_sizes(net)[layer + 1];
    return rows < cols ? rows : cols;
}

fan_status fan_diag_singular_values(const fan_net *net, size_t layer, fan_matrix which,
                                    double *sv, size_t n)
{
    return layer_svd(net, layer, which, sv, n, "the singular values");
}

fan_status fan_diag_spectrum(const fan_net *net, size_t layer, fan_matrix which, double *sv,
                             size_t n, double *erank, double *pr, double *srank)
{
    FAN__CHECK(layer_svd(net, layer, which, sv, n, "the spectrum"));
    fan__spectrum_stats(sv, n, erank, pr, srank);
    return FAN_OK;
}

/* One SVD of the layer's matrix, then the requested summaries (outputs may be NULL). */
static fan_status layer_stats(const fan_net *net, size_t layer, fan_matrix which, const void *out,
                              double *erank, double *pr, double *srank)
{
    FAN__CHECK(check_layer(net, layer));
    FAN__FAIL_IF(fan__net_errbuf(net), out == NULL, FAN_E_NULL, "the output pointer is NULL");
    const size_t k = layer_rank_bound(net, layer, which);
    double *sv = fan__calloc(fan__net_allocator(net), k, sizeof *sv);
    FAN__FAIL_IF(fan__net_errbuf(net), sv == NULL, FAN_E_NOMEM,
                 "layer %zu: cannot allocate %zu values", layer, k);
    const fan_status st = layer_svd(net, layer, which, sv, k, "the spectrum");
    if (st == FAN_OK) fan__spectrum_stats(sv, k, erank, pr, srank);
    fan__free(fan__net_allocator(net), sv);
    return st;
}

fan_status fan_diag_effective_rank(const fan_net *net, size_t layer, fan_matrix which,
                                   double *erank)
{
    return layer_stats(net, layer, which, erank, erank, NULL, NULL);
}

fan_status fan_diag_participation_ratio(const fan_net *net, size_t layer, fan_matrix which,
                                        double *pr)
{
    return layer_stats(net, layer, which, pr, NULL, pr, NULL);
}

fan_status fan_diag_stable_rank(const fan_net *net, size_t layer, fan_matrix which,
                                double *srank)
{
    return layer_stats(net, layer, which, srank, NULL, NULL, srank);
}

/* ---- principal angles --------------------------------------------------------------------- */

fan_status fan_diag_principal_angles(const fan_net *net, size_t layer, size_t k, double *deg,
                                     size_t n)
{
    FAN__CHECK(check_layer(net, layer));
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, deg == NULL, FAN_E_NULL, "deg is NULL");
    const size_t rows = fan__net_feedback_rows(net, layer), cols = fan__net_sizes(net)[layer];
    const size_t m = rows < cols ? rows : cols;
    FAN__FAIL_IF(err, k == 0 || k > m, FAN_E_INVALID, "k = %zu is outside [1, %zu] for layer %zu",
                 k, m, layer);
    FAN__FAIL_IF(err, n != k, FAN_E_SHAPE, "deg has length %zu; k = %zu angles", n, k);
    pair_view v;
    FAN__CHECK(pair_open(net, layer, 1, &v));

    const fan_allocator *al = fan__net_allocator(net);
    double *uw = fan__calloc(al, rows * m, sizeof *uw); /* rows * m <= FAN_MAX_MATRIX */
    double *ub = fan__calloc(al, rows * m, sizeof *ub);
    double *sv = fan__calloc(al, m, sizeof *sv);
    double *cross = fan__calloc(al, k * k, sizeof *cross);
    fan_status st = FAN_E_NOMEM;
    if (uw && ub && sv && cross) {
        st = fan__svd_floats(al, v.f, rows, cols, sv, uw);
        if (st == FAN_OK) st = fan__svd_floats(al, v.b, rows, cols, sv, ub);
    }
    if (st == FAN_OK) {
        /* The cosines of the principal angles are the singular values of U_W^T U_B, restricted
           to the first k columns of each (Bjorck and Golub 1973). */
        fan__dgemm(1, 0, k, k, rows, 1.0, uw, m, ub, m, 0.0, cross, k);
        st = fan__svd(al, cross, k, k, sv, NULL);
    }
    if (st == FAN_OK) {
        /* Descending cosines give ascending angles. */
        for (size_t i = 0; i < k; i++) {
            const double c = sv[i] > 1.0 ? 1.0 : sv[i];
            deg[i] = acos(c) * DEG_PER_RAD;
        }
    }
    fan__free(al, cross);
    fan__free(al, sv);
    fan__free(al, ub);
    fan__free(al, uw);
    pair_close(net, &v);
    return st == FAN_OK ? FAN_OK : svd_failed(net, st, layer, "the principal angles");
}
