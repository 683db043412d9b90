/*
 * diag_data.c - diagnostics that run the network on data: the Gram-matrix effective
 * dimensionality of a hidden layer, readout statistics of the softmax outputs, and the expected
 * calibration error. The net is only read: forward passes go into scratch from net->alloc, never
 * into the net's workspace, and no weight or gradient changes.
 */
#include "spectral.h"

#include <math.h>
#include <string.h>

/* Rows per forward pass. It bounds scratch memory (about 0.9 MB for 784-100-10 with its input
   rows) while keeping each GEMM large enough to run near full speed. */
#define DIAG_CHUNK 256

/* Scratch for forward passes of up to `rows` rows: optional input rows and labels, then the
   activations of every layer (hs[l], l = 1..L). One allocation. */
_Static_assert(sizeof(int32_t) == sizeof(float), "labels share the float scratch block");

typedef struct chunk_ws {
    void *block;
    float *x;
    int32_t *labels;
    float *hs[FAN_MAX_LAYERS + 1];
} chunk_ws;

static fan_status chunk_alloc(const fan_net *net, size_t rows, size_t x_dim, int with_labels,
                              chunk_ws *ws)
{
    memset(ws, 0, sizeof *ws);
    size_t per_row = x_dim + (with_labels ? 1 : 0); /* int32_t and float have one size here */
    for (size_t l = 1; l <= fan_net_num_layers(net); l++) per_row += fan__net_sizes(net)[l];
    size_t total;
    FAN__FAIL_IF(fan__net_errbuf(net), !fan__mul_ok(per_row, rows, &total) || total > SIZE_MAX / sizeof(float),
                 FAN_E_NOMEM, "forward passes of %zu rows need more scratch than can be addressed",
                 rows);
    float *p = fan__alloc(fan__net_allocator(net), total * sizeof(float));
    FAN__FAIL_IF(fan__net_errbuf(net), p == NULL, FAN_E_NOMEM,
                 "cannot allocate scratch for forward passes of %zu rows", rows);
    ws->block = p;
    for (size_t l = 1; l <= fan_net_num_layers(net); l++) {
        ws->hs[l] = p;
        p += rows * fan__net_sizes(net)[l];
    }
    if (x_dim) {
        ws->x = p;
        p += rows * x_dim;
    }
    /* Floats and int32 labels share the block: both are 4-byte aligned 4-byte values. */
    if (with_labels) ws->labels = (int32_t *)(void *)p;
    return FAN_OK;
}

/* Checks the dataset against the net's input width; counts the samples to use. */
static fan_status check_dataset(const fan_net *net, const fan_dataset *ds, size_t max_samples,
                                size_t *n)
{
    FAN__FAIL_IF(fan__net_errbuf(net), fan_dataset_dim(ds) != fan__net_sizes(net)[0], FAN_E_SHAPE,
                 "the dataset has %zu values per sample; the net takes %zu inputs",
                 fan_dataset_dim(ds), fan__net_sizes(net)[0]);
    const size_t size = fan_dataset_size(ds);
    FAN__FAIL_IF(fan__net_errbuf(net), size == 0, FAN_E_INVALID, "the dataset is empty");
    *n = max_samples == 0 || max_samples > size ? size : max_samples;
    return FAN_OK;
}

/* ---- Gram-matrix dimensionality ----------------------------------------------------------- */

fan_status fan_diag_gram_dimensionality(const fan_net *net, size_t hidden, const fan_dataset *ds,
                                        size_t max_samples, double *erank)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), ds == NULL || erank == NULL, FAN_E_NULL, "%s is NULL",
                 ds == NULL ? "ds" : "erank");
    FAN__FAIL_IF(fan__net_errbuf(net), hidden == 0 || hidden >= fan_net_num_layers(net), FAN_E_INVALID,
                 "hidden layer %zu does not exist (valid: 1 .. %zu)", hidden, fan_net_num_layers(net) - 1);
    size_t n;
    FAN__CHECK(check_dataset(net, ds, max_samples, &n));
    const size_t w = fan__net_sizes(net)[hidden], dim = fan__net_sizes(net)[0];
    const size_t rows = n < DIAG_CHUNK ? n : DIAG_CHUNK;

    chunk_ws ws;
    FAN__CHECK(chunk_alloc(net, rows, dim, 0, &ws));
    const fan_allocator *al = fan__net_allocator(net);
    double *gram = fan__calloc(al, w, w * sizeof(double)); /* w * w * 8 overflow -> NULL */
    double *ad = fan__calloc(al, rows, w * sizeof(double));
    double *sv = fan__calloc(al, w, sizeof(double));
    fan_status st = gram && ad && sv ? FAN_OK : FAN_E_NOMEM;
    /* G = A^T A accumulated chunk by chunk in double: O(samples * w^2) time, and memory that
       does not grow with the number of samples. */
    for (size_t r0 = 0; st == FAN_OK && r0 < n; r0 += rows) {
        const size_t m = n - r0 < rows ? n - r0 : rows;
        fan__dataset_gather(ds, NULL, r0, m, ws.x, NULL);
        st = fan__net_forward_checked(net, ws.x, m, ws.hs, 0);
        if (st != FAN_OK) break;
        const float *a = ws.hs[hidden];
        for (size_t i = 0; i < m * w; i++) ad[i] = a[i];
        fan__dgemm(1, 0, w, w, m, 1.0, ad, w, ad, w, 1.0, gram, w);
    }
    if (st == FAN_OK) {
        /* Cosine similarity; a neuron with a zero activation vector has no direction, so its
           row and column are zero (it adds a zero eigenvalue, which the entropy ignores). */
        for (size_t i = 0; i < w; i++) sv[i] = gram[i * w + i];
        for (size_t i = 0; i < w; i++)
            for (size_t j = 0; j < w; j++) {
                const double d = sv[i] * sv[j];
                gram[i * w + j] = d > 0.0 ? gram[i * w + j] / sqrt(d) : 0.0;
            }
        /* The similarity matrix is symmetric positive semi-definite: its singular values are
           its eigenvalues. */
        st = fan__svd(al, gram, w, w, sv, NULL);
        if (st == FAN_OK) fan__spectrum_stats(sv, w, erank, NULL, NULL);
    }
    fan__free(al, sv);
    fan__free(al, ad);
    fan__free(al, gram);
    fan__free(al, ws.block);
    if (st == FAN_E_NUMERIC) return st; /* the forward pass said which layer overflowed */
    if (st == FAN_E_NOMEM)
        return fan__fail(fan__net_errbuf(net), st, "cannot allocate the %zu x %zu Gram matrix", w, w);
    FAN__FAIL_IF(fan__net_errbuf(net), st == FAN_E_NONFINITE, st, "the %zu x %zu Gram matrix "
                 "holds NaN or infinity (activations overflowed)", w, w);
    FAN__FAIL_IF(fan__net_errbuf(net), st != FAN_OK, st, "the SVD of the %zu x %zu Gram matrix did not "
                 "converge", w, w);
    return FAN_OK;
}

/* ---- readout and calibration -------------------------------------------------------------- */

/* Bin of a probability in n_bins equal bins of [0, 1]; p = 1 belongs to the last bin. */
static size_t prob_bin(double p, size_t n_bins)
{
    if (!(p > 0.0)) return 0;
    const size_t b = (size_t)(p * (double)n_bins);
    return b < n_bins ? b : n_bins - 1;
}

/* Index of the largest of v[0..c); ties go to the first maximum, as argmax usually does. */
static size_t argmax(const float *v, size_t c)
{
    size_t best = 0;
    for (size_t j = 1; j < c; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

static fan_status check_softmax(const fan_net *net)
{
    FAN__FAIL_IF(fan__net_errbuf(net), fan_net_loss(net) != FAN_LOSS_CROSS_ENTROPY, FAN_E_UNSUPPORTED,
                 "readout probabilities need the cross-entropy (softmax) loss");
    return FAN_OK;
}

fan_status fan_diag_readout(const fan_net *net, const float *x, size_t n, double *mean_max_prob,
                            double *mean_entropy, double *hist, size_t n_bins)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), x == NULL, FAN_E_NULL, "x is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), n == 0, FAN_E_INVALID, "batch of 0 rows");
    FAN__FAIL_IF(fan__net_errbuf(net), hist != NULL && n_bins == 0, FAN_E_SHAPE,
                 "hist has 0 bins; it needs at least 1");
    FAN__CHECK(check_softmax(net));
    const size_t L = fan_net_num_layers(net), c = fan__net_sizes(net)[L], dim = fan__net_sizes(net)[0];
    FAN__FAIL_IF(fan__net_errbuf(net), !fan__all_finite(x, n * dim), FAN_E_NONFINITE,
                 "input x contains NaN or infinity");
    const size_t rows = n < DIAG_CHUNK ? n : DIAG_CHUNK;
    chunk_ws ws;
    FAN__CHECK(chunk_alloc(net, rows, 0, 0, &ws));

    if (hist) memset(hist, 0, n_bins * sizeof *hist);
    double max_sum = 0.0, ent_sum = 0.0;
    for (size_t r0 = 0; r0 < n; r0 += rows) {
        const size_t m = n - r0 < rows ? n - r0 : rows;
        const fan_status st = fan__net_forward_checked(net, x + r0 * dim, m, ws.hs, 1);
        if (st != FAN_OK) {
            fan__free(fan__net_allocator(net), ws.block);
            return st;
        }
        for (size_t r = 0; r < m; r++) {
            const float *p = ws.hs[L] + r * c;
            double mx = 0.0, ent = 0.0;
            for (size_t j = 0; j < c; j++) {
                const double pj = p[j];
                mx = pj > mx ? pj : mx;
                if (pj > 0.0) ent -= pj * log(pj);
                if (hist) hist[prob_bin(pj, n_bins)] += 1.0; /* counts stay exact in double */
            }
            max_sum += mx;
            ent_sum += ent;
        }
    }
    fan__free(fan__net_allocator(net), ws.block);
    if (hist) {
        const double total = (double)n * (double)c;
        for (size_t b = 0; b < n_bins; b++) hist[b] /= total;
    }
    if (mean_max_prob) *mean_max_prob = max_sum / (double)n;
    if (mean_entropy) *mean_entropy = ent_sum / (double)n;
    return FAN_OK;
}

fan_status fan_diag_calibration_error(const fan_net *net, const fan_dataset *ds, size_t n_bins,
                                      double *ece)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), ds == NULL || ece == NULL, FAN_E_NULL, "%s is NULL",
                 ds == NULL ? "ds" : "ece");
    FAN__FAIL_IF(fan__net_errbuf(net), n_bins == 0, FAN_E_INVALID, "n_bins is 0");
    size_t n;
    FAN__CHECK(check_dataset(net, ds, 0, &n));
    const size_t L = fan_net_num_layers(net), c = fan__net_sizes(net)[L], dim = fan__net_sizes(net)[0];
    FAN__FAIL_IF(fan__net_errbuf(net), fan_dataset_classes(ds) != c, FAN_E_SHAPE,
                 "the dataset has %zu classes; the net has %zu outputs", fan_dataset_classes(ds),
                 c);
    FAN__CHECK(check_softmax(net));
    const size_t rows = n < DIAG_CHUNK ? n : DIAG_CHUNK;
    chunk_ws ws;
    FAN__CHECK(chunk_alloc(net, rows, dim, 1, &ws));
    /* Per bin: summed confidence and number correct. (|b| / N) |acc_b - conf_b| equals
       |correct_b - sum conf_b| / N, so bin sizes are not needed. */
    double *bins = fan__calloc(fan__net_allocator(net), n_bins, 2 * sizeof(double));
    if (bins == NULL) {
        fan__free(fan__net_allocator(net), ws.block);
        return fan__fail(fan__net_errbuf(net), FAN_E_NOMEM, "cannot allocate %zu calibration bins", n_bins);
    }
    for (size_t r0 = 0; r0 < n; r0 += rows) {
        const size_t m = n - r0 < rows ? n - r0 : rows;
        fan__dataset_gather(ds, NULL, r0, m, ws.x, ws.labels);
        const fan_status st = fan__net_forward_checked(net, ws.x, m, ws.hs, 1);
        if (st != FAN_OK) {
            fan__free(fan__net_allocator(net), bins);
            fan__free(fan__net_allocator(net), ws.block);
            return st;
        }
        for (size_t r = 0; r < m; r++) {
            const float *p = ws.hs[L] + r * c;
            const size_t pred = argmax(p, c);
            const size_t b = prob_bin(p[pred], n_bins);
            bins[2 * b] += p[pred];
            bins[2 * b + 1] += pred == (size_t)ws.labels[r] ? 1.0 : 0.0;
        }
    }
    double sum = 0.0;
    for (size_t b = 0; b < n_bins; b++) sum += fabs(bins[2 * b + 1] - bins[2 * b]);
    fan__free(fan__net_allocator(net), bins);
    fan__free(fan__net_allocator(net), ws.block);
    *ece = sum / (double)n;
    return FAN_OK;
}
