/*
 * diag.c - diagnostics of a network's matrices: alignment of forward and feedback weights (per
 * unit and whole matrix), alignment of the error signals FA sends down with BP's, singular
 * spectra and their summaries, and principal angles between W's and B's dominant subspaces.
 * Everything here reads the net and writes only caller buffers and scratch from net->alloc.
 */
#include "spectral.h"

#include <math.h>
#include <string.h>

/* Columns handled per pass of the alignment: three double accumulators per column stay in L1
   (6 KB), and each row segment of W and B is read contiguously exactly once. */
#define ALIGN_BLOCK 256

/* Degrees per radian, from pi to double precision. */
#define DEG_PER_RAD (180.0 / 3.14159265358979323846)

static fan_status check_layer(const fan_net *net, size_t layer)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, layer >= net->n_layers, FAN_E_INVALID,
                 "layer %zu does not exist (the net has %zu weight layers)", layer, net->n_layers);
    return FAN_OK;
}

/* Records a message for a failed SVD-based computation and returns st. */
static fan_status svd_failed(const fan_net *net, fan_status st, size_t layer, const char *what)
{
    if (st == FAN_E_NOMEM)
        return fan__fail(net->err, st, "layer %zu: cannot allocate scratch for %s", layer, what);
    return fan__fail(net->err, st, "layer %zu: the SVD for %s did not converge", layer, what);
}

/* ---- alignment of W and B ----------------------------------------------------------------- */

fan_status fan_diag_alignment(const fan_net *net, size_t layer, double *per_unit_deg, size_t n,
                              double *mean_deg, double *matrix_deg)
{
    FAN__CHECK(check_layer(net, layer));
    const size_t in = net->sizes[layer], out = net->sizes[layer + 1];
    FAN__FAIL_IF(net->err, per_unit_deg != NULL && n != in, FAN_E_SHAPE,
                 "per_unit_deg has length %zu; layer %zu has %zu inputs", n, layer, in);
    const float *w = fan__net_w(net, layer), *b = fan__net_fb(net, layer);
    double dot_all = 0.0, ww_all = 0.0, bb_all = 0.0, deg_sum = 0.0;
    double dot[ALIGN_BLOCK], ww[ALIGN_BLOCK], bb[ALIGN_BLOCK];
    for (size_t c0 = 0; c0 < in; c0 += ALIGN_BLOCK) {
        const size_t nc = in - c0 < ALIGN_BLOCK ? in - c0 : ALIGN_BLOCK;
        memset(dot, 0, nc * sizeof *dot);
        memset(ww, 0, nc * sizeof *ww);
        memset(bb, 0, nc * sizeof *bb);
        for (size_t r = 0; r < out; r++) {
            const float *wr = w + r * in + c0, *br = b + r * in + c0;
            for (size_t j = 0; j < nc; j++) {
                const double x = wr[j], y = br[j];
                dot[j] += x * y;
                ww[j] += x * x;
                bb[j] += y * y;
            }
        }
        for (size_t j = 0; j < nc; j++) {
            const double deg = fan__angle_from_dots(dot[j], ww[j], bb[j]);
            if (per_unit_deg) per_unit_deg[c0 + j] = deg;
            deg_sum += deg;
            dot_all += dot[j];
            ww_all += ww[j];
            bb_all += bb[j];
        }
    }
    if (mean_deg) *mean_deg = deg_sum / (double)in;
    if (matrix_deg) *matrix_deg = fan__angle_from_dots(dot_all, ww_all, bb_all);
    return FAN_OK;
}

/* ---- alignment of the error signals ------------------------------------------------------- */

fan_status fan_diag_delta_alignment(fan_net *net, const float *x, const int32_t *labels, size_t n,
                                    double *deg_per_layer, size_t n_layers)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, x == NULL || labels == NULL || deg_per_layer == NULL, FAN_E_NULL,
                 "%s is NULL", x == NULL ? "x" : labels == NULL ? "labels" : "deg_per_layer");
    FAN__FAIL_IF(net->err, n == 0, FAN_E_INVALID, "batch of 0 rows");
    const size_t L = net->n_layers, c = net->sizes[L];
    FAN__FAIL_IF(net->err, n_layers != L, FAN_E_SHAPE,
                 "deg_per_layer has length %zu; the net has %zu weight layers", n_layers, L);
    FAN__CHECK(fan__net_check_labels(net, labels, n));
    /* BP sends BP's error by definition; FA's output error is exact, so the last entry is 0 and
       a one-layer net has nothing to compare. */
    if (net->rule == FAN_RULE_BP || L == 1) {
        memset(deg_per_layer, 0, L * sizeof *deg_per_layer);
        return FAN_OK;
    }

    /* Scratch: activations of every layer, the one-hot targets and two ping-pong error buffers
       per rule, all for n rows. */
    size_t maxw = 0, per_row = c;
    for (size_t l = 1; l <= L; l++) {
        maxw = net->sizes[l] > maxw ? net->sizes[l] : maxw;
        per_row += net->sizes[l];
    }
    per_row += 4 * maxw;
    size_t total;
    /* An unaddressable request is reported as what it is to the caller: memory not available. */
    FAN__FAIL_IF(net->err, !fan__mul_ok(per_row, n, &total) || total > SIZE_MAX / sizeof(float),
                 FAN_E_NOMEM, "a batch of %zu rows needs more scratch than can be addressed", n);
    float *ws = fan__alloc(&net->alloc, total * sizeof(float));
    FAN__FAIL_IF(net->err, ws == NULL, FAN_E_NOMEM,
                 "cannot allocate scratch for the error signals of %zu rows", n);
    float *hs[FAN_MAX_LAYERS + 1] = {NULL};
    float *p = ws;
    for (size_t l = 1; l <= L; l++) {
        hs[l] = p;
        p += n * net->sizes[l];
    }
    float *targets = p, *fa[2], *bp[2];
    p += n * c;
    fa[0] = p, fa[1] = p + n * maxw, bp[0] = p + 2 * n * maxw, bp[1] = p + 3 * n * maxw;

    fan__one_hot(labels, n, c, targets);
    fan__net_forward_into(net, x, n, hs, 0);
    (void)fan__net_output_delta(net, hs[L], targets, n, fa[0]);

    /* Both chains start from the same exact output error; each then follows its own rule all
       the way down, as each rule's training would. */
    const float *d_fa = fa[0], *d_bp = fa[0];
    deg_per_layer[L - 1] = 0.0;
    for (size_t l = L - 1, k = 1; l >= 1; l--, k ^= 1) {
        fan__net_delta_down(net, FAN_RULE_FA, l, d_fa, hs[l], n, fa[k]);
        fan__net_delta_down(net, FAN_RULE_BP, l, d_bp, hs[l], n, bp[k]);
        d_fa = fa[k];
        d_bp = bp[k];
        deg_per_layer[l - 1] = fan__vec_angle_deg(d_fa, d_bp, n * net->sizes[l]);
    }
    fan__free(&net->alloc, ws);
    return FAN_OK;
}

/* ---- singular spectra --------------------------------------------------------------------- */

/* Validates which and returns the matrix of the layer it names (NULL when invalid). */
static const float *layer_matrix(const fan_net *net, size_t layer, fan_matrix which)
{
    switch (which) {
    case FAN_MATRIX_WEIGHTS: return fan__net_w(net, layer);
    case FAN_MATRIX_FEEDBACK: return fan__net_fb(net, layer);
    case FAN_MATRIX_GRADIENTS: return net->grads + net->w_off[layer];
    }
    return NULL;
}

static fan_status check_matrix(const fan_net *net, size_t layer, fan_matrix which,
                               const float **m)
{
    FAN__CHECK(check_layer(net, layer));
    *m = layer_matrix(net, layer, which);
    FAN__FAIL_IF(net->err, *m == NULL, FAN_E_INVALID, "unknown matrix %d", (int)which);
    return FAN_OK;
}

fan_status fan_diag_singular_values(const fan_net *net, size_t layer, fan_matrix which,
                                    double *sv, size_t n)
{
    const float *m = NULL;
    FAN__CHECK(check_matrix(net, layer, which, &m));
    FAN__FAIL_IF(net->err, sv == NULL, FAN_E_NULL, "sv is NULL");
    const size_t rows = net->sizes[layer + 1], cols = net->sizes[layer];
    const size_t k = rows < cols ? rows : cols;
    FAN__FAIL_IF(net->err, n != k, FAN_E_SHAPE, "sv has length %zu; layer %zu needs %zu", n,
                 layer, k);
    const fan_status st = fan__svd_floats(&net->alloc, m, rows, cols, sv, NULL);
    return st == FAN_OK ? FAN_OK : svd_failed(net, st, layer, "the singular values");
}

/* One SVD of the layer's matrix, then the requested summaries (outputs may be NULL). */
static fan_status layer_stats(const fan_net *net, size_t layer, fan_matrix which, const void *out,
                              double *erank, double *pr, double *srank)
{
    const float *m = NULL;
    FAN__CHECK(check_matrix(net, layer, which, &m));
    FAN__FAIL_IF(net->err, out == NULL, FAN_E_NULL, "the output pointer is NULL");
    const size_t rows = net->sizes[layer + 1], cols = net->sizes[layer];
    const size_t k = rows < cols ? rows : cols;
    double *sv = fan__calloc(&net->alloc, k, sizeof *sv);
    FAN__FAIL_IF(net->err, sv == NULL, FAN_E_NOMEM, "layer %zu: cannot allocate %zu values",
                 layer, k);
    const fan_status st = fan__svd_floats(&net->alloc, m, rows, cols, sv, NULL);
    if (st == FAN_OK) fan__spectrum_stats(sv, k, erank, pr, srank);
    fan__free(&net->alloc, sv);
    return st == FAN_OK ? FAN_OK : svd_failed(net, st, layer, "the spectrum");
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
    FAN__FAIL_IF(net->err, deg == NULL, FAN_E_NULL, "deg is NULL");
    const size_t rows = net->sizes[layer + 1], cols = net->sizes[layer];
    const size_t m = rows < cols ? rows : cols;
    FAN__FAIL_IF(net->err, k == 0 || k > m, FAN_E_INVALID,
                 "k = %zu is outside [1, %zu] for layer %zu", k, m, layer);
    FAN__FAIL_IF(net->err, n != k, FAN_E_SHAPE, "deg has length %zu; k = %zu angles", n, k);

    const fan_allocator *al = &net->alloc;
    double *uw = fan__calloc(al, rows * m, sizeof *uw); /* rows * m <= FAN_MAX_MATRIX */
    double *ub = fan__calloc(al, rows * m, sizeof *ub);
    double *sv = fan__calloc(al, m, sizeof *sv);
    double *cross = fan__calloc(al, k * k, sizeof *cross);
    fan_status st = FAN_E_NOMEM;
    if (uw && ub && sv && cross) {
        st = fan__svd_floats(al, fan__net_w(net, layer), rows, cols, sv, uw);
        if (st == FAN_OK) st = fan__svd_floats(al, fan__net_fb(net, layer), rows, cols, sv, ub);
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
    return st == FAN_OK ? FAN_OK : svd_failed(net, st, layer, "the principal angles");
}
