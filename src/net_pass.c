/*
 * net_pass.c - the forward pass, the loss and its output error, and the backward pass shared by
 * every learning rule: errors go down through the matrix the rule provides (rules.c), gradients
 * of the mean loss go into the net. Here: the elementwise parts, the passes the diagnostics run
 * on buffers of their own, the net's workspace and the public calls; the net's own passes, cut
 * into pieces for its threads, are in net_parallel.c.
 */
#include "net_impl.h"

#include <math.h>
#include <string.h>

/* ---- elementwise parts (rows of width w, stride ld) --------------------------------------- */

void fan__bias_activate(float *z, size_t ld, const float *bias, size_t n, size_t w,
                        fan_activation act, float slope)
{
    for (size_t r = 0; r < n; r++) {
        float *row = z + r * ld;
        switch (act) {
        case FAN_ACT_RELU:
            for (size_t j = 0; j < w; j++) {
                float v = row[j] + bias[j];
                row[j] = v > 0.0f ? v : 0.0f;
            }
            break;
        case FAN_ACT_LEAKY_RELU:
            for (size_t j = 0; j < w; j++) {
                float v = row[j] + bias[j];
                row[j] = v > 0.0f ? v : slope * v;
            }
            break;
        case FAN_ACT_TANH:
            for (size_t j = 0; j < w; j++) row[j] = tanhf(row[j] + bias[j]);
            break;
        case FAN_ACT_SIGMOID:
            for (size_t j = 0; j < w; j++) row[j] = 1.0f / (1.0f + expf(-(row[j] + bias[j])));
            break;
        case FAN_ACT_LINEAR:
        default:
            for (size_t j = 0; j < w; j++) row[j] += bias[j];
            break;
        }
    }
}

void fan__softmax_rows(float *z, size_t ld, size_t n, size_t w)
{
    for (size_t r = 0; r < n; r++) {
        float *row = z + r * ld, mx = row[0];
        for (size_t j = 1; j < w; j++) mx = row[j] > mx ? row[j] : mx;
        float sum = 0.0f;
        for (size_t j = 0; j < w; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        const float inv = 1.0f / sum;
        for (size_t j = 0; j < w; j++) row[j] *= inv;
    }
}

void fan__mul_derivative(float *d, size_t ldd, const float *h, size_t ldh, size_t n, size_t w,
                         fan_activation act, float slope)
{
    for (size_t r = 0; r < n; r++) {
        float *dr = d + r * ldd;
        const float *hr = h + r * ldh;
        switch (act) {
        case FAN_ACT_RELU:
            for (size_t i = 0; i < w; i++) dr[i] = hr[i] > 0.0f ? dr[i] : 0.0f;
            break;
        case FAN_ACT_LEAKY_RELU:
            for (size_t i = 0; i < w; i++) dr[i] = hr[i] > 0.0f ? dr[i] : dr[i] * slope;
            break;
        case FAN_ACT_TANH:
            for (size_t i = 0; i < w; i++) dr[i] *= 1.0f - hr[i] * hr[i];
            break;
        case FAN_ACT_SIGMOID:
            for (size_t i = 0; i < w; i++) dr[i] *= hr[i] * (1.0f - hr[i]);
            break;
        case FAN_ACT_LINEAR:
        default:
            return;
        }
    }
}

double fan__output_rows(const fan_net *net, const float *y, size_t ld, const float *targets,
                        size_t r0, size_t r1, size_t n, float *delta, double *row_loss)
{
    const size_t c = net->sizes[net->n_layers];
    double total = 0.0;
    for (size_t r = r0; r < r1; r++) {
        const float *z = y + r * ld, *t = targets + r * c;
        float *d = delta + r * ld;
        double row = 0.0;
        if (net->loss == FAN_LOSS_CROSS_ENTROPY) {
            /* y holds the output activations z; the loss of a row is sum_j t_j (lse(z) - z_j),
               and its gradient p_j * sum(t) - t_j, computed from z without forming log p. */
            const float scale = 1.0f / (float)n;
            float mx = z[0];
            for (size_t j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
            float sum = 0.0f, tsum = 0.0f;
            double tz = 0.0;
            for (size_t j = 0; j < c; j++) {
                d[j] = expf(z[j] - mx);
                sum += d[j];
                tsum += t[j];
                tz += (double)t[j] * (double)(z[j] - mx);
            }
            row = (double)tsum * log((double)sum) - tz;
            const float inv = 1.0f / sum;
            for (size_t j = 0; j < c; j++) d[j] = (d[j] * inv * tsum - t[j]) * scale;
        } else {
            const float scale = 2.0f / ((float)n * (float)c);
            for (size_t j = 0; j < c; j++) {
                const float e = z[j] - t[j];
                row += (double)e * (double)e;
                d[j] = e * scale;
            }
        }
        if (row_loss) row_loss[r] = row;
        total += row;
    }
    /* The output activation sits between the pre-activation and the loss. */
    fan__mul_derivative(delta + r0 * ld, ld, y + r0 * ld, ld, r1 - r0, c,
                        net->act[net->n_layers - 1], net->leaky_slope);
    return total;
}

/* The mean loss from the sum of the row losses of a batch of n rows. */
static double mean_loss(const fan_net *net, double sum, size_t n)
{
    const double per_row = net->loss == FAN_LOSS_CROSS_ENTROPY ? 1.0 : (double)net->sizes[net->n_layers];
    return sum / ((double)n * per_row);
}

/* The mean loss of the rows of the last pass, added in row order whatever the threads. */
static double pass_loss(const fan_net *net, size_t n)
{
    double sum = 0.0;
    for (size_t r = 0; r < n; r++) sum += net->row_loss[r];
    return mean_loss(net, sum, n);
}

/* ---- passes on caller buffers (the diagnostics'), rows of exactly the widths ---------------- */

void fan__net_forward_into(const fan_net *net, const float *x, size_t n, float *const *hs,
                           int softmax)
{
    const float *in = x;
    for (size_t l = 0; l < net->n_layers; l++) {
        const size_t ni = net->sizes[l], no = net->sizes[l + 1];
        /* z = h W^T: (n x ni) times (ni x no), W stored no x ni. */
        fan__gemm(net->kernels, 0, 1, n, no, ni, in, ni, fan__net_w(net, l), ni, hs[l + 1], no);
        fan__bias_activate(hs[l + 1], no, fan__net_b(net, l), n, no, net->act[l],
                           net->leaky_slope);
        in = hs[l + 1];
    }
    if (softmax && net->loss == FAN_LOSS_CROSS_ENTROPY) {
        const size_t c = net->sizes[net->n_layers];
        fan__softmax_rows(hs[net->n_layers], c, n, c);
    }
}

fan_status fan__net_forward_checked(const fan_net *net, const float *x, size_t n,
                                   float *const *hs, int softmax)
{
    fan__net_forward_into(net, x, n, hs, softmax);
    /* Every layer, not only the outputs: ReLU maps a NaN born of an overflow (inf - inf) to 0,
       which would hide it from the outputs. */
    for (size_t l = 1; l <= net->n_layers; l++)
        FAN__FAIL_IF(net->err, !fan__all_finite(hs[l], n * net->sizes[l]), FAN_E_NUMERIC,
                     "the activations of layer %zu overflowed to infinity or NaN (weights too "
                     "large for these inputs)", l);
    return FAN_OK;
}

double fan__net_output_delta(const fan_net *net, const float *y, const float *targets, size_t n,
                             float *delta)
{
    const size_t c = net->sizes[net->n_layers];
    return mean_loss(net, fan__output_rows(net, y, c, targets, 0, n, n, delta, NULL), n);
}

const float *fan__net_feedback_matrix(const fan_net *net, fan_rule rule, size_t l,
                                      float *scratch, size_t *rows)
{
    /* Only the net's own rule and BP can be asked: the stored B has the net's rule's shapes. */
    const fan__rule_ops *ops = fan__rule_lookup(rule);
    *rows = fan__rule_feedback_rows(ops, net->sizes, net->n_layers, l);
    return ops->feedback(net, l, scratch);
}

size_t fan__net_rule_scratch_floats(const fan_net *net, fan_rule rule)
{
    if (!fan__rule_lookup(rule)->computed) return 0;
    size_t most = 0;
    for (size_t l = 0; l < net->n_layers; l++)
        if (fan__net_wn(net, l) > most) most = fan__net_wn(net, l);
    return most;
}

void fan__net_error_signals(const fan_net *net, fan_rule rule, const float *e,
                            const float *const *hs, size_t n, float *const *deltas,
                            float *scratch)
{
    const fan__rule_ops *ops = fan__rule_lookup(rule);
    const float *d = e;
    for (size_t l = net->n_layers - 1; l >= 1; l--) {
        /* delta_l = (src * M_l) .* phi'(h_l), src the error of layer l's outputs (or e for a
           direct rule), M_l (rows x ni) the matrix of the rule's error pass. */
        const size_t ni = net->sizes[l];
        const size_t rows = fan__rule_feedback_rows(ops, net->sizes, net->n_layers, l);
        const float *src = ops->direct ? e : d;
        fan__gemm(net->kernels, 0, 0, n, ni, rows, src, rows, ops->feedback(net, l, scratch), ni,
                  deltas[l], ni);
        fan__mul_derivative(deltas[l], ni, hs[l], ni, n, ni, net->act[l - 1], net->leaky_slope);
        d = deltas[l];
    }
}

/* ---- workspace ---------------------------------------------------------------------------- */

/* Floats per padded row of a width: whole 64-byte lines, so that threads writing neighbouring
   column blocks of the same rows never write the same cache line. */
#define ROW_ALIGN 16

static fan_status reserve(fan_net *net, size_t n)
{
    FAN__CHECK(fan__net_ensure_pool(net));
    if (n <= net->ws_rows) return FAN_OK;
    const size_t L = net->n_layers;
    size_t per_row = 0, ld[FAN_MAX_LAYERS + 1] = {0};
    for (size_t l = 1; l <= L; l++) {
        ld[l] = (net->sizes[l] + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
        per_row += 2 * ld[l]; /* activations and errors */
    }
    /* The targets, and each row's loss (a double, first in the block for its alignment). */
    per_row += net->sizes[L] + sizeof(double) / sizeof(float);
    size_t total;
    FAN__FAIL_IF(net->err, !fan__mul_ok(per_row, n, &total) || total > SIZE_MAX / sizeof(float),
                 FAN_E_LIMIT, "a batch of %zu rows needs too much workspace", n);
    float *ws = fan__alloc(&net->alloc, total * sizeof(float));
    FAN__FAIL_IF(net->err, ws == NULL, FAN_E_NOMEM, "cannot allocate workspace for %zu rows", n);
    fan__free(&net->alloc, net->ws);
    net->ws = ws;
    net->ws_rows = n;
    net->row_loss = (double *)(void *)ws;
    float *p = ws + n * (sizeof(double) / sizeof(float));
    net->h[0] = NULL;
    net->d[0] = NULL;
    net->ld[0] = net->sizes[0];
    for (size_t l = 1; l <= L; l++) {
        net->ld[l] = ld[l];
        net->h[l] = p;
        p += n * ld[l];
        net->d[l] = p;
        p += n * ld[l];
    }
    net->onehot = p;
    return FAN_OK;
}

fan_status fan__net_check_labels(const fan_net *net, const int32_t *labels, size_t n)
{
    const int64_t c = (int64_t)net->sizes[net->n_layers];
    for (size_t i = 0; i < n; i++)
        FAN__FAIL_IF(net->err, labels[i] < 0 || (int64_t)labels[i] >= c, FAN_E_LABEL,
                     "labels[%zu] = %d is outside [0, %lld)", i, (int)labels[i], (long long)c);
    return FAN_OK;
}

/* ---- public forward and gradients --------------------------------------------------------- */

static fan_status check_batch(const fan_net *net, const float *x, size_t n)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, x == NULL, FAN_E_NULL, "x is NULL");
    FAN__FAIL_IF(net->err, n == 0, FAN_E_INVALID, "batch of 0 rows");
    return FAN_OK;
}

/* fan__net_forward_checked's check on the workspace of the last pass of n rows. */
static fan_status check_activations(const fan_net *net, size_t n)
{
    for (size_t l = 1; l <= net->n_layers; l++)
        for (size_t r = 0; r < n; r++)
            FAN__FAIL_IF(net->err, !fan__all_finite_isa(net->kernels, net->h[l] + r * net->ld[l],
                                                        net->sizes[l]),
                         FAN_E_NUMERIC,
                         "the activations of layer %zu overflowed to infinity or NaN (weights "
                         "too large for these inputs)", l);
    return FAN_OK;
}

fan_status fan_net_forward(fan_net *net, const float *x, size_t n, float *probs, size_t probs_len)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, probs == NULL, FAN_E_NULL, "probs is NULL");
    const size_t c = net->sizes[net->n_layers];
    FAN__FAIL_IF(net->err, probs_len / c < n || probs_len != n * c, FAN_E_SHAPE,
                 "probs has length %zu; %zu rows need %zu", probs_len, n, n * c);
    /* ReLU maps NaN to 0, so a NaN input would otherwise give confident outputs. */
    FAN__FAIL_IF(net->err, !fan__all_finite(x, n * net->sizes[0]), FAN_E_NONFINITE,
                 "input x contains NaN or infinity");
    FAN__CHECK(reserve(net, n));
    (void)fan__net_run_pass(net, x, NULL, n, FAN__PASS_PROBS);
    FAN__CHECK(check_activations(net, n));
    const float *out = net->h[net->n_layers];
    const size_t ld = net->ld[net->n_layers];
    for (size_t r = 0; r < n; r++) memcpy(probs + r * c, out + r * ld, c * sizeof *probs);
    return FAN_OK;
}

void fan__one_hot(const int32_t *labels, size_t n, size_t c, float *targets)
{
    memset(targets, 0, n * c * sizeof *targets);
    for (size_t i = 0; i < n; i++) targets[i * c + (size_t)labels[i]] = 1.0f;
}

/* Explains a non-finite loss: bad input data, or divergence. */
static fan_status nonfinite(const fan_net *net, const float *x, size_t n)
{
    FAN__FAIL_IF(net->err, !fan__all_finite(x, n * net->sizes[0]), FAN_E_NONFINITE,
                 "input x contains NaN or infinity");
    return fan__fail(net->err, FAN_E_NUMERIC, "non-finite loss or gradient: training diverged "
                                              "(lower the learning rate); no update applied");
}

/* Forward and backward by the net's rule into grads_next; swaps it in when the loss is finite
   and, when `scan` is set, every gradient too. */
static fan_status gradients(fan_net *net, const float *x, const float *targets, size_t n,
                            float *loss, int scan)
{
    const fan__rule_ops *ops = net->rule;
    /* A rule with per-batch feedback draws it before the pass; a failed step puts the previous
       draw back. */
    const fan__rng before = net->magnitude_rng_last;
    if (ops->before_backward) ops->before_backward(net);
    fan__net_grads_prepare(net);
    int bad = fan__net_run_pass(net, x, targets, n,
                                scan ? FAN__PASS_TRAIN : FAN__PASS_TRAIN_UNSCANNED);
    const double lv = pass_loss(net, n);
    if (!isfinite(lv) || bad) {
        if (ops->before_backward) {
            net->magnitude_rng = before;
            ops->before_backward(net);
        }
        fan__net_grads_settle(net);
        return nonfinite(net, x, n);
    }
    float *t = net->grads;
    net->grads = net->grads_next;
    net->grads_next = t;
    net->prev_has_grads = net->has_grads;
    net->prev_magnitude_rng_last = before;
    net->has_grads = 1;
    if (loss) *loss = (float)lv;
    return FAN_OK;
}

void fan__net_undo_gradients(fan_net *net)
{
    float *t = net->grads;
    net->grads = net->grads_next;
    net->grads_next = t;
    fan__net_grads_settle(net);
    net->has_grads = net->prev_has_grads;
    if (net->rule->before_backward) {
        /* Drawing again from the state before the previous draw gives back the previous
           magnitudes and leaves the stream where it was before this computation. */
        net->magnitude_rng = net->prev_magnitude_rng_last;
        net->rule->before_backward(net);
    }
}

fan_status fan__net_gradients_labels(fan_net *net, const float *x, const int32_t *labels,
                                     size_t n, float *loss, int scan)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, labels == NULL, FAN_E_NULL, "labels is NULL");
    FAN__CHECK(fan__net_check_labels(net, labels, n));
    FAN__CHECK(reserve(net, n));
    fan__one_hot(labels, n, net->sizes[net->n_layers], net->onehot);
    return gradients(net, x, net->onehot, n, loss, scan);
}

fan_status fan__net_gradients_targets(fan_net *net, const float *x, const float *targets,
                                      size_t n, float *loss, int scan)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, targets == NULL, FAN_E_NULL, "targets is NULL");
    const size_t c = net->sizes[net->n_layers];
    FAN__FAIL_IF(net->err, !fan__all_finite(targets, n * c), FAN_E_NONFINITE,
                 "targets contain NaN or infinity");
    FAN__CHECK(reserve(net, n));
    return gradients(net, x, targets, n, loss, scan);
}

fan_status fan_net_compute_gradients(fan_net *net, const float *x, const int32_t *labels,
                                     size_t n, float *loss)
{
    return fan__net_gradients_labels(net, x, labels, n, loss, 1);
}

fan_status fan_net_compute_gradients_targets(fan_net *net, const float *x, const float *targets,
                                             size_t n, float *loss)
{
    return fan__net_gradients_targets(net, x, targets, n, loss, 1);
}

fan_status fan_net_loss_value(fan_net *net, const float *x, const int32_t *labels, size_t n,
                              double *loss)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, labels == NULL || loss == NULL, FAN_E_NULL,
                 labels == NULL ? "labels is NULL" : "loss is NULL");
    FAN__CHECK(fan__net_check_labels(net, labels, n));
    FAN__FAIL_IF(net->err, !fan__all_finite(x, n * net->sizes[0]), FAN_E_NONFINITE,
                 "input x contains NaN or infinity");
    FAN__CHECK(reserve(net, n));
    fan__one_hot(labels, n, net->sizes[net->n_layers], net->onehot);
    (void)fan__net_run_pass(net, x, net->onehot, n, FAN__PASS_LOSS);
    *loss = pass_loss(net, n);
    return FAN_OK;
}

/* ---- evaluation --------------------------------------------------------------------------- */

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

fan_status fan__net_eval_chunk(fan_net *net, const float *x, const int32_t *labels, size_t m,
                               double *loss_sum, size_t *correct)
{
    const size_t L = net->n_layers, c = net->sizes[L];
    /* The dataset guarantees labels below its class count, which equals c; checking again keeps
       a bad dataset from writing outside the target rows. */
    FAN__CHECK(fan__net_check_labels(net, labels, m));
    FAN__CHECK(reserve(net, m));
    fan__one_hot(labels, m, c, net->onehot);
    /* The loss routine of training gives the exact loss from the output activations; the error
       it also writes goes to scratch space and is discarded. */
    (void)fan__net_run_pass(net, x, net->onehot, m, FAN__PASS_LOSS);
    FAN__CHECK(check_activations(net, m));
    *loss_sum += pass_loss(net, m) * (double)m;
    const float *out = net->h[L];
    for (size_t i = 0; i < m; i++)
        *correct += argmax(out + i * net->ld[L], c) == (size_t)labels[i];
    return FAN_OK;
}

/* ---- products of forward weights ----------------------------------------------------------- */

size_t fan__net_product_floats(const fan_net *net)
{
    size_t most = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const size_t n = net->sizes[net->n_layers] * net->sizes[l];
        most = n > most ? n : most;
    }
    return most;
}

void fan__net_weight_product(const fan_net *net, size_t l, float *out, float *tmp)
{
    const size_t L = net->n_layers, c = net->sizes[L];
    /* P = W_{L-1}; then P = P * W_k for k = L-2 down to l, ping-ponging so that the last
       product lands in out. */
    size_t steps = L - 1 - l;
    float *cur = steps % 2 == 0 ? out : tmp, *other = steps % 2 == 0 ? tmp : out;
    memcpy(cur, fan__net_w(net, L - 1), c * net->sizes[L - 1] * sizeof(float));
    for (size_t k = L - 1; k-- > l;) {
        /* (c x sizes[k+1]) times W_k (sizes[k+1] x sizes[k]). */
        fan__gemm(net->kernels, 0, 0, c, net->sizes[k], net->sizes[k + 1], cur, net->sizes[k + 1],
                  fan__net_w(net, k), net->sizes[k], other, net->sizes[k]);
        float *t = cur;
        cur = other;
        other = t;
    }
}
