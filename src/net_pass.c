/*
 * net_pass.c - the forward pass, the loss and its output error, and the backward pass shared by
 * every learning rule: errors go down through the matrix the rule provides (rules.c), gradients
 * of the mean loss go into the net.
 *
 * A pass is written as items over ranges so that the net's threads (FAN_NET_THREADS, net_exec.c)
 * can share it: the forward pass, the loss and the errors sent down are row-local, so an item is
 * a range of the batch's rows; the gradients sum over rows, so an item is a range of their
 * columns instead, over all rows. Nothing is reduced across threads or items: results do not
 * depend on the number of threads.
 */
#include "net_impl.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- forward ------------------------------------------------------------------------------ */

/* Adds the bias and applies the activation to n rows of width w, in one pass. */
static void bias_activate(float *z, const float *bias, size_t n, size_t w, fan_activation act,
                          float slope)
{
    for (size_t r = 0; r < n; r++) {
        float *row = z + r * w;
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

/* In-place softmax of n rows of width w, stable by the row maximum. */
static void softmax_rows(float *z, size_t n, size_t w)
{
    for (size_t r = 0; r < n; r++) {
        float *row = z + r * w, mx = row[0];
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

/* Rows [r0, r1) of the forward pass of x into hs (see fan__net_forward_into). */
static void forward_rows(const fan_net *net, const float *x, size_t r0, size_t r1,
                         float *const *hs, int softmax)
{
    const size_t rows = r1 - r0;
    if (rows == 0) return;
    const float *in = x + r0 * net->sizes[0];
    for (size_t l = 0; l < net->n_layers; l++) {
        const size_t ni = net->sizes[l], no = net->sizes[l + 1];
        float *out = hs[l + 1] + r0 * no;
        /* z = h W^T: (rows x ni) times (ni x no), W stored no x ni. */
        fan__gemm(net->kernels, 0, 1, rows, no, ni, in, ni, fan__net_w(net, l), ni, out, no);
        bias_activate(out, fan__net_b(net, l), rows, no, net->act[l], net->leaky_slope);
        in = out;
    }
    if (softmax && net->loss == FAN_LOSS_CROSS_ENTROPY) {
        const size_t c = net->sizes[net->n_layers];
        softmax_rows(hs[net->n_layers] + r0 * c, rows, c);
    }
}

void fan__net_forward_into(const fan_net *net, const float *x, size_t n, float *const *hs,
                           int softmax)
{
    forward_rows(net, x, 0, n, hs, softmax);
}

/* ---- the loss and the learning rules ------------------------------------------------------ */

/* phi'(o) expressed through h = phi(o), multiplied into d (n x w) in place. */
static void mul_derivative(float *d, const float *h, size_t count, fan_activation act,
                           float slope)
{
    switch (act) {
    case FAN_ACT_RELU:
        for (size_t i = 0; i < count; i++) d[i] = h[i] > 0.0f ? d[i] : 0.0f;
        break;
    case FAN_ACT_LEAKY_RELU:
        for (size_t i = 0; i < count; i++) d[i] = h[i] > 0.0f ? d[i] : d[i] * slope;
        break;
    case FAN_ACT_TANH:
        for (size_t i = 0; i < count; i++) d[i] *= 1.0f - h[i] * h[i];
        break;
    case FAN_ACT_SIGMOID:
        for (size_t i = 0; i < count; i++) d[i] *= h[i] * (1.0f - h[i]);
        break;
    case FAN_ACT_LINEAR:
    default:
        break;
    }
}

/* Output error of rows [r0, r1) of a batch of n rows (the gradient of the batch's mean loss), and
   the loss of each row, before the division by n (and by the outputs for MSE), into row_loss
   (may be NULL). Returns the sum of those row losses, added in row order. */
static double output_rows(const fan_net *net, const float *y, const float *targets, size_t r0,
                          size_t r1, size_t n, float *delta, double *row_loss)
{
    const size_t c = net->sizes[net->n_layers];
    double total = 0.0;
    for (size_t r = r0; r < r1; r++) {
        const float *z = y + r * c, *t = targets + r * c;
        float *d = delta + r * c;
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
    mul_derivative(delta + r0 * c, y + r0 * c, (r1 - r0) * c, net->act[net->n_layers - 1],
                   net->leaky_slope);
    return total;
}

/* The mean loss from the sum of the row losses of a batch of n rows. */
static double mean_loss(const fan_net *net, double sum, size_t n)
{
    const double per_row = net->loss == FAN_LOSS_CROSS_ENTROPY ? 1.0 : (double)net->sizes[net->n_layers];
    return sum / ((double)n * per_row);
}

double fan__net_output_delta(const fan_net *net, const float *y, const float *targets, size_t n,
                             float *delta)
{
    return mean_loss(net, output_rows(net, y, targets, 0, n, n, delta, NULL), n);
}

/* ---- the backward pass, shared by every rule ------------------------------------------------ */

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

/* Rows [r0, r1) of the error sent down through weight layer l >= 1: delta_in (n x sizes[l]) =
   (src * M) .* phi'(h_l), where M (mrows x sizes[l]) is the matrix of the rule's error pass and
   src (n x mrows) the error of layer l's outputs, or the net's output error for a direct rule. */
static void delta_rows(const fan_net *net, size_t l, const float *m, size_t mrows,
                       const float *src, const float *h_l, size_t r0, size_t r1, float *delta_in)
{
    const size_t ni = net->sizes[l], rows = r1 - r0;
    if (rows == 0) return;
    fan__gemm(net->kernels, 0, 0, rows, ni, mrows, src + r0 * mrows, mrows, m, ni,
              delta_in + r0 * ni, ni);
    mul_derivative(delta_in + r0 * ni, h_l + r0 * ni, rows * ni, net->act[l - 1],
                   net->leaky_slope);
}

void fan__net_error_signals(const fan_net *net, fan_rule rule, const float *e,
                            const float *const *hs, size_t n, float *const *deltas,
                            float *scratch)
{
    const fan__rule_ops *ops = fan__rule_lookup(rule);
    const float *d = e;
    for (size_t l = net->n_layers - 1; l >= 1; l--) {
        const size_t rows = fan__rule_feedback_rows(ops, net->sizes, net->n_layers, l);
        delta_rows(net, l, ops->feedback(net, l, scratch), rows, ops->direct ? e : d, hs[l], 0, n,
                   deltas[l]);
        d = deltas[l];
    }
}

/* Columns [c0, c1) of dW_l = delta^T h_l (delta: n x no, already carrying the 1/n; h_l: n x ni)
   and entries [j0, j1) of db_l, into grads_next. Returns 1 if any of them is not finite. */
static int gradient_part(fan_net *net, size_t l, const float *d, const float *h_l, size_t n,
                         size_t c0, size_t c1, size_t j0, size_t j1)
{
    const size_t ni = net->sizes[l], no = net->sizes[l + 1];
    float *dw = net->grads_next + net->w_off[l], *db = net->grads_next + net->b_off[l];
    int bad = 0;
    if (c1 > c0) {
        fan__gemm(net->kernels, 1, 0, no, c1 - c0, n, d, no, h_l + c0, ni, dw + c0, ni);
        /* Checked while the rows are still in cache. */
        for (size_t j = 0; j < no; j++)
            bad |= !fan__all_finite_isa(net->kernels, dw + j * ni + c0, c1 - c0);
    }
    if (j1 > j0) {
        memset(db + j0, 0, (j1 - j0) * sizeof *db);
        for (size_t r = 0; r < n; r++)
            for (size_t j = j0; j < j1; j++) db[j] += d[r * no + j];
        bad |= !fan__all_finite_isa(net->kernels, db + j0, j1 - j0);
    }
    return bad;
}

/* ---- splitting a pass between threads ------------------------------------------------------ */

/* A pass is a job for the net's threads (pool.h): phases of items, each item a range of rows
   (the forward pass, the loss, the errors sent down, all row-local) or of columns (the
   gradients, which sum over all rows). Item sizes depend on the batch and the widths, never on
   the number of threads, and no item adds into another's results: every value is computed the
   same way whatever the threads, so results repeat bit for bit at any count. Rows come in
   multiples of ROW_ITEM (the kernels' row blocks divide it), columns in multiples of COL_ITEM
   (the AVX-512 kernels' column panel), more per item when a phase would pass MAX_ITEMS. */
#define ROW_ITEM 16
#define COL_ITEM 64
#define MAX_ITEMS 2048

/* Units per item for `n` units of work in multiples of `grain`. */
static size_t item_size(size_t n, size_t grain)
{
    const size_t need = (n + MAX_ITEMS - 1) / MAX_ITEMS;
    return need <= grain ? grain : (need + grain - 1) / grain * grain;
}

static size_t count_items(size_t n, size_t size) { return (n + size - 1) / size; }

/* One pass over a batch. */
typedef struct pass {
    fan_net *net;
    const float *x;       /* n x inputs */
    const float *targets; /* n x outputs, or NULL for inference */
    size_t n, rows;       /* rows of the batch; rows per item */
    int softmax;          /* inference: softmax probabilities in h[L] */
    int train;            /* error pass and gradients after the loss */
    /* Gradient items, layer by layer: column items of dW_l, then items of db_l. */
    size_t cols[FAN_MAX_LAYERS], first[FAN_MAX_LAYERS + 1];
    const float *m; /* the feedback matrix computed for the current layer (computed rules) */
    atomic_int bad; /* a gradient is not finite */
} pass;

/* Phase layout: 0 rows (forward, loss and, for stored-feedback rules, every error); for a rule
   that computes its feedback, then per layer l = L-1..1 a phase of one item computing M_l and
   a phase of rows sending the error through it; last, the gradients. */
enum { PHASE_ROWS = 0 };

static void row_item(pass *ps, size_t item)
{
    fan_net *net = ps->net;
    const fan__rule_ops *ops = net->rule;
    const size_t L = net->n_layers;
    const size_t r0 = item * ps->rows, r1 = r0 + ps->rows < ps->n ? r0 + ps->rows : ps->n;
    forward_rows(net, ps->x, r0, r1, net->h, ps->softmax);
    if (ps->targets == NULL) return;
    (void)output_rows(net, net->h[L], ps->targets, r0, r1, ps->n, net->d[L], net->row_loss);
    if (!ps->train || ops->computed) return;
    for (size_t l = L - 1; l >= 1; l--)
        delta_rows(net, l, ops->feedback(net, l, NULL), net->fb_rows[l],
                   ops->direct ? net->d[L] : net->d[l + 1], net->h[l], r0, r1, net->d[l]);
}

static void gradient_item(pass *ps, size_t item)
{
    fan_net *net = ps->net;
    size_t l = 0;
    while (item >= ps->first[l + 1]) l++;
    const size_t k = item - ps->first[l];
    const size_t ni = net->sizes[l], no = net->sizes[l + 1];
    const float *h_l = l == 0 ? ps->x : net->h[l];
    int bad;
    if (k < ps->cols[l]) {
        const size_t per = item_size(ni, COL_ITEM), c0 = k * per;
        bad = gradient_part(net, l, net->d[l + 1], h_l, ps->n, c0, c0 + per < ni ? c0 + per : ni,
                            0, 0);
    } else {
        const size_t per = item_size(no, COL_ITEM), j0 = (k - ps->cols[l]) * per;
        bad = gradient_part(net, l, net->d[l + 1], h_l, ps->n, 0, 0, j0,
                            j0 + per < no ? j0 + per : no);
    }
    if (bad) atomic_store_explicit(&ps->bad, 1, memory_order_relaxed);
}

static void pass_item(void *arg, size_t phase, size_t item)
{
    pass *ps = arg;
    fan_net *net = ps->net;
    const size_t L = net->n_layers;
    const size_t fb_phases = net->rule->computed && ps->train ? 2 * (L - 1) : 0;
    if (phase == PHASE_ROWS) {
        row_item(ps, item);
    } else if (phase <= fb_phases) {
        /* Phases 2k+1 and 2k+2 serve layer l = L-1-k. */
        const size_t l = L - 1 - (phase - 1) / 2;
        if (phase % 2 == 1) {
            ps->m = net->rule->feedback(net, l, net->rule_ws);
        } else {
            const size_t r0 = item * ps->rows;
            const size_t r1 = r0 + ps->rows < ps->n ? r0 + ps->rows : ps->n;
            delta_rows(net, l, ps->m, net->fb_rows[l],
                       net->rule->direct ? net->d[L] : net->d[l + 1], net->h[l], r0, r1,
                       net->d[l]);
        }
    } else {
        gradient_item(ps, item);
    }
}

/* Runs a pass on the net's threads. */
static void run_pass(fan_net *net, pass *ps)
{
    const size_t L = net->n_layers;
    size_t items[FAN__POOL_MAX_PHASES], phases = 0;
    ps->rows = item_size(ps->n, ROW_ITEM);
    const size_t row_items = count_items(ps->n, ps->rows);
    items[phases++] = row_items;
    if (ps->train) {
        if (net->rule->computed) {
            for (size_t l = L - 1; l >= 1; l--) {
                items[phases++] = 1;
                items[phases++] = row_items;
            }
        }
        ps->first[0] = 0;
        for (size_t l = 0; l < L; l++) {
            ps->cols[l] = count_items(net->sizes[l], item_size(net->sizes[l], COL_ITEM));
            const size_t bias = count_items(net->sizes[l + 1], item_size(net->sizes[l + 1], COL_ITEM));
            ps->first[l + 1] = ps->first[l] + ps->cols[l] + bias;
        }
        items[phases++] = ps->first[L];
    }
    fan__net_parallel(net, pass_item, ps, items, phases);
}

/* The mean loss of the rows of the last pass, added in row order whatever the threads. */
static double pass_loss(const fan_net *net, size_t n)
{
    double sum = 0.0;
    for (size_t r = 0; r < n; r++) sum += net->row_loss[r];
    return mean_loss(net, sum, n);
}

/* ---- workspace ---------------------------------------------------------------------------- */

static fan_status reserve(fan_net *net, size_t n)
{
    FAN__CHECK(fan__net_ensure_pool(net));
    if (n <= net->ws_rows) return FAN_OK;
    const size_t L = net->n_layers;
    size_t per_row = 0;
    for (size_t l = 1; l <= L; l++) per_row += 2 * net->sizes[l]; /* activations and errors */
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
    for (size_t l = 1; l <= L; l++) {
        net->h[l] = p;
        p += n * net->sizes[l];
        net->d[l] = p;
        p += n * net->sizes[l];
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

/* Forward pass of n rows on the net's threads, and with targets, the loss of each row; returns
   the mean loss (0 without targets). */
static double forward(fan_net *net, const float *x, const float *targets, size_t n, int softmax)
{
    pass ps;
    memset(&ps, 0, sizeof ps);
    ps.net = net;
    ps.x = x;
    ps.targets = targets;
    ps.n = n;
    ps.softmax = softmax;
    atomic_init(&ps.bad, 0);
    run_pass(net, &ps);
    return targets == NULL ? 0.0 : pass_loss(net, n);
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
    (void)forward(net, x, NULL, n, 1);
    FAN__FAIL_IF(net->err, !fan__all_finite(net->h[net->n_layers], n * c), FAN_E_NUMERIC,
                 "the outputs overflowed to infinity or NaN");
    memcpy(probs, net->h[net->n_layers], n * c * sizeof *probs);
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

/* Forward and backward by the net's rule into grads_next; swaps it in when all is finite. */
static fan_status gradients(fan_net *net, const float *x, const float *targets, size_t n,
                            float *loss)
{
    const fan__rule_ops *ops = net->rule;
    /* A rule with per-batch feedback draws it before the pass; a failed step puts the previous
       draw back. */
    const fan__rng before = net->magnitude_rng_last;
    if (ops->before_backward) ops->before_backward(net);
    pass ps;
    memset(&ps, 0, sizeof ps);
    ps.net = net;
    ps.x = x;
    ps.targets = targets;
    ps.n = n;
    ps.train = 1;
    atomic_init(&ps.bad, 0);
    run_pass(net, &ps);
    const double lv = pass_loss(net, n);
    if (!isfinite(lv) || atomic_load(&ps.bad)) {
        if (ops->before_backward) {
            net->magnitude_rng = before;
            ops->before_backward(net);
        }
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
    net->has_grads = net->prev_has_grads;
    if (net->rule->before_backward) {
        /* Drawing again from the state before the previous draw gives back the previous
           magnitudes and leaves the stream where it was before this computation. */
        net->magnitude_rng = net->prev_magnitude_rng_last;
        net->rule->before_backward(net);
    }
}

fan_status fan__net_gradients_labels(fan_net *net, const float *x, const int32_t *labels,
                                     size_t n, float *loss)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, labels == NULL, FAN_E_NULL, "labels is NULL");
    FAN__CHECK(fan__net_check_labels(net, labels, n));
    FAN__CHECK(reserve(net, n));
    fan__one_hot(labels, n, net->sizes[net->n_layers], net->onehot);
    return gradients(net, x, net->onehot, n, loss);
}

fan_status fan__net_gradients_targets(fan_net *net, const float *x, const float *targets,
                                      size_t n, float *loss)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, targets == NULL, FAN_E_NULL, "targets is NULL");
    const size_t c = net->sizes[net->n_layers];
    FAN__FAIL_IF(net->err, !fan__all_finite(targets, n * c), FAN_E_NONFINITE,
                 "targets contain NaN or infinity");
    FAN__CHECK(reserve(net, n));
    return gradients(net, x, targets, n, loss);
}

fan_status fan_net_compute_gradients(fan_net *net, const float *x, const int32_t *labels,
                                     size_t n, float *loss)
{
    return fan__net_gradients_labels(net, x, labels, n, loss);
}

fan_status fan_net_compute_gradients_targets(fan_net *net, const float *x, const float *targets,
                                             size_t n, float *loss)
{
    return fan__net_gradients_targets(net, x, targets, n, loss);
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
    *loss = forward(net, x, net->onehot, n, 0);
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
    *loss_sum += forward(net, x, net->onehot, m, 0) * (double)m;
    const float *out = net->h[L];
    for (size_t i = 0; i < m; i++) *correct += argmax(out + i * c, c) == (size_t)labels[i];
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
