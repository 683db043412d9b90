/*
 * net.c - the network handle: layers, settings, initialisation, the forward pass and the learning
 * rules' backward pass (BP: errors through W; FA: errors through the fixed feedback B).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ---- construction ------------------------------------------------------------------------- */

/* Lays out parameter, gradient and feedback offsets; fails on overflow or a bound. */
static fan_status layout(fan_net *net, char *err)
{
    size_t off = 0, fb = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t in = net->sizes[l], out = net->sizes[l + 1], wn;
        FAN__FAIL_IF(err, !fan__mul_ok(out, in, &wn) || wn > FAN_MAX_MATRIX, FAN_E_LIMIT,
                     "layer %zu: %zu x %zu weights exceed FAN_MAX_MATRIX", l, out, in);
        FAN__FAIL_IF(err, off > SIZE_MAX / 8 - wn - out || fb > SIZE_MAX / 8 - wn, FAN_E_LIMIT,
                     "total parameter count overflows");
        net->w_off[l] = off;
        net->b_off[l] = off + wn;
        off += wn + out;
        net->fb_off[l] = fb;
        fb += wn;
    }
    net->n_params = off;
    net->n_feedback = fb;
    return FAN_OK;
}

/* Allocates the handle and its parameter blocks; settings are defaults, values zero. */
static fan_status net_alloc(fan_net **out, const size_t *sizes, size_t n_sizes,
                            const fan_allocator *alloc, char *err)
{
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    fan_net *net = fan__calloc(&al, 1, sizeof *net);
    FAN__FAIL_IF(err, net == NULL, FAN_E_NOMEM, "cannot allocate the network handle");
    net->alloc = al;
    net->err = net->err_storage;
    net->n_layers = n_sizes - 1;
    memcpy(net->sizes, sizes, n_sizes * sizeof *sizes);
    for (size_t l = 0; l < net->n_layers; l++)
        net->act[l] = l + 1 < net->n_layers ? FAN_ACT_RELU : FAN_ACT_LINEAR;
    net->rule = FAN_RULE_FA;
    net->loss = FAN_LOSS_CROSS_ENTROPY;
    net->init_w = FAN_INIT_HE_NORMAL;
    net->init_b = FAN_INIT_HE_NORMAL;
    net->leaky_slope = 0.01f;
    fan_status st = layout(net, err);
    if (st == FAN_OK) {
        net->params = fan__calloc(&al, net->n_params, sizeof(float));
        net->grads = fan__calloc(&al, net->n_params, sizeof(float));
        net->grads_next = fan__calloc(&al, net->n_params, sizeof(float));
        net->feedback = fan__calloc(&al, net->n_feedback, sizeof(float));
        if (!net->params || !net->grads || !net->grads_next || !net->feedback)
            st = fan__fail(err, FAN_E_NOMEM, "cannot allocate %zu parameters",
                           net->n_params * 3 + net->n_feedback);
    }
    if (st != FAN_OK) {
        fan_net_free(net);
        return st;
    }
    *out = net;
    return FAN_OK;
}

fan_status fan__net_validate_sizes(const size_t *sizes, size_t n_sizes, char *err)
{
    FAN__FAIL_IF(err, sizes == NULL, FAN_E_NULL, "sizes is NULL");
    FAN__FAIL_IF(err, n_sizes < 2 || n_sizes > FAN_MAX_LAYERS + 1, FAN_E_INVALID,
                 "n_sizes is %zu; it must be in [2, %d]", n_sizes, FAN_MAX_LAYERS + 1);
    for (size_t i = 0; i < n_sizes; i++) {
        FAN__FAIL_IF(err, sizes[i] == 0, FAN_E_INVALID, "sizes[%zu] is 0", i);
        FAN__FAIL_IF(err, sizes[i] > FAN_MAX_WIDTH, FAN_E_LIMIT,
                     "sizes[%zu] = %zu exceeds FAN_MAX_WIDTH", i, sizes[i]);
    }
    return FAN_OK;
}

fan_status fan__net_new(fan_net **out, const size_t *sizes, size_t n_sizes,
                        const fan_allocator *alloc, char *err)
{
    FAN__FAIL_IF(err, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__CHECK(fan__net_validate_sizes(sizes, n_sizes, err));
    return net_alloc(out, sizes, n_sizes, alloc, err);
}

fan_status fan_net_create(fan_net **out, const size_t *sizes, size_t n_sizes,
                          const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    fan_net *net = NULL;
    FAN__CHECK(fan__net_new(&net, sizes, n_sizes, alloc, NULL));
    fan_status st = fan_net_init(net, 0, 1);
    if (st != FAN_OK) {
        fan_net_free(net);
        return st;
    }
    *out = net;
    return FAN_OK;
}

void fan_net_free(fan_net *net)
{
    if (net == NULL) return;
    const fan_allocator al = net->alloc;
    fan__free(&al, net->ws);
    fan__free(&al, net->feedback);
    fan__free(&al, net->grads_next);
    fan__free(&al, net->grads);
    fan__free(&al, net->params);
    fan__free(&al, net);
}

const char *fan_net_errmsg(const fan_net *net)
{
    return net == NULL ? "net is NULL" : net->err;
}

fan_status fan_net_clone(fan_net **out, const fan_net *src)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, src == NULL, FAN_E_NULL, "src is NULL");
    fan_net *net = NULL;
    FAN__CHECK(net_alloc(&net, src->sizes, src->n_layers + 1, &src->alloc, src->err));
    /* Copy every setting, then restore what belongs to the new handle. */
    float *params = net->params, *grads = net->grads, *grads_next = net->grads_next,
          *feedback = net->feedback;
    memcpy(net, src, sizeof *net);
    net->err = net->err_storage;
    net->err[0] = '\0';
    net->params = params;
    net->grads = grads;
    net->grads_next = grads_next;
    net->feedback = feedback;
    net->ws = NULL;
    net->ws_rows = 0;
    memset(net->h, 0, sizeof net->h);
    net->delta_a = net->delta_b = net->onehot = NULL;
    memcpy(net->params, src->params, src->n_params * sizeof(float));
    memcpy(net->grads, src->grads, src->n_params * sizeof(float));
    memcpy(net->feedback, src->feedback, src->n_feedback * sizeof(float));
    *out = net;
    return FAN_OK;
}

/* ---- settings ----------------------------------------------------------------------------- */

fan_status fan_net_set_rule(fan_net *net, fan_rule rule)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, rule != FAN_RULE_BP && rule != FAN_RULE_FA, FAN_E_INVALID,
                 "unknown rule %d", (int)rule);
    net->rule = rule;
    return FAN_OK;
}

fan_rule fan_net_rule(const fan_net *net) { return net == NULL ? FAN_RULE_FA : net->rule; }

static int activation_ok(fan_activation a)
{
    return a == FAN_ACT_LINEAR || a == FAN_ACT_RELU || a == FAN_ACT_LEAKY_RELU ||
           a == FAN_ACT_TANH || a == FAN_ACT_SIGMOID;
}

fan_status fan_net_set_activation(fan_net *net, size_t layer, fan_activation act)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, layer >= net->n_layers, FAN_E_INVALID,
                 "layer %zu does not exist (the net has %zu weight layers)", layer, net->n_layers);
    FAN__FAIL_IF(net->err, !activation_ok(act), FAN_E_INVALID, "unknown activation %d",
                 (int)act);
    net->act[layer] = act;
    return FAN_OK;
}

fan_activation fan_net_activation(const fan_net *net, size_t layer)
{
    return net == NULL || layer >= net->n_layers ? FAN_ACT_LINEAR : net->act[layer];
}

fan_status fan_net_set_loss(fan_net *net, fan_loss loss)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, loss != FAN_LOSS_CROSS_ENTROPY && loss != FAN_LOSS_MSE, FAN_E_INVALID,
                 "unknown loss %d", (int)loss);
    net->loss = loss;
    return FAN_OK;
}

fan_loss fan_net_loss(const fan_net *net)
{
    return net == NULL ? FAN_LOSS_CROSS_ENTROPY : net->loss;
}

fan_status fan_net_set(fan_net *net, fan_net_param p, double value)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, p != FAN_NET_LEAKY_SLOPE, FAN_E_INVALID, "unknown net parameter %d",
                 (int)p);
    FAN__FAIL_IF(net->err, !(value >= 0.0 && value <= 1.0), FAN_E_INVALID,
                 "leaky slope %g is outside [0, 1]", value);
    net->leaky_slope = (float)value;
    return FAN_OK;
}

fan_status fan_net_get(const fan_net *net, fan_net_param p, double *value)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, value == NULL, FAN_E_NULL, "value is NULL");
    FAN__FAIL_IF(net->err, p != FAN_NET_LEAKY_SLOPE, FAN_E_INVALID, "unknown net parameter %d",
                 (int)p);
    *value = net->leaky_slope;
    return FAN_OK;
}

fan_status fan_net_set_initializer(fan_net *net, fan_matrix which, fan_init init)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, which != FAN_MATRIX_WEIGHTS && which != FAN_MATRIX_FEEDBACK,
                 FAN_E_INVALID, "initialisers apply to weights or feedback, not matrix %d",
                 (int)which);
    FAN__FAIL_IF(net->err,
                 init != FAN_INIT_HE_NORMAL && init != FAN_INIT_XAVIER_UNIFORM &&
                     init != FAN_INIT_LECUN_NORMAL,
                 FAN_E_INVALID, "unknown initialiser %d", (int)init);
    if (which == FAN_MATRIX_WEIGHTS)
        net->init_w = init;
    else
        net->init_b = init;
    return FAN_OK;
}

static void draw(float *m, size_t out, size_t in, fan_init init, fan__rng *r)
{
    const size_t len = out * in;
    if (init == FAN_INIT_XAVIER_UNIFORM) {
        const double a = sqrt(6.0 / (double)(in + out));
        for (size_t i = 0; i < len; i++) m[i] = (float)(a * (2.0 * fan__rng_uniform(r) - 1.0));
        return;
    }
    const double sd = sqrt((init == FAN_INIT_HE_NORMAL ? 2.0 : 1.0) / (double)in);
    for (size_t i = 0; i < len; i++) m[i] = (float)(sd * fan__rng_normal(r));
}

fan_status fan_net_init(fan_net *net, uint64_t weight_seed, uint64_t feedback_seed)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    memset(net->params, 0, net->n_params * sizeof(float));
    memset(net->grads, 0, net->n_params * sizeof(float));
    for (size_t l = 0; l < net->n_layers; l++) {
        /* One stream per layer and matrix: W_l depends only on weight_seed, l and the layer's
           shape, never on the rule, the feedback seed or the other layers. */
        fan__rng r;
        fan__rng_seed_stream(&r, weight_seed, 2 * (uint64_t)l);
        draw(fan__net_w(net, l), net->sizes[l + 1], net->sizes[l], net->init_w, &r);
        fan__rng_seed_stream(&r, feedback_seed, 2 * (uint64_t)l + 1);
        draw(fan__net_fb(net, l), net->sizes[l + 1], net->sizes[l], net->init_b, &r);
    }
    net->weight_seed = weight_seed;
    net->feedback_seed = feedback_seed;
    net->has_grads = 0;
    return FAN_OK;
}

fan_status fan_net_seeds(const fan_net *net, uint64_t *weight_seed, uint64_t *feedback_seed)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    if (weight_seed) *weight_seed = net->weight_seed;
    if (feedback_seed) *feedback_seed = net->feedback_seed;
    return FAN_OK;
}

/* ---- shape queries ------------------------------------------------------------------------ */

size_t fan_net_num_layers(const fan_net *net) { return net ? net->n_layers : 0; }

size_t fan_net_layer_inputs(const fan_net *net, size_t layer)
{
    return net && layer < net->n_layers ? net->sizes[layer] : 0;
}

size_t fan_net_layer_outputs(const fan_net *net, size_t layer)
{
    return net && layer < net->n_layers ? net->sizes[layer + 1] : 0;
}

size_t fan_net_input_size(const fan_net *net) { return net ? net->sizes[0] : 0; }

size_t fan_net_output_size(const fan_net *net) { return net ? net->sizes[net->n_layers] : 0; }

size_t fan_net_num_params(const fan_net *net) { return net ? net->n_params : 0; }

/* ---- matrix access ------------------------------------------------------------------------ */

int fan__all_finite(const float *v, size_t n)
{
    /* An exponent of all ones is Inf or NaN; an integer OR-reduction vectorises, unlike a
       floating-point one. */
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        bad |= (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
    }
    return bad == 0;
}

/* Validates a (layer, buffer, length) triple; buf NULL is allowed when optional. */
static fan_status check_layer(const fan_net *net, size_t layer)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, layer >= net->n_layers, FAN_E_INVALID,
                 "layer %zu does not exist (the net has %zu weight layers)", layer, net->n_layers);
    return FAN_OK;
}

static fan_status check_len(const fan_net *net, const char *what, size_t len, size_t need)
{
    FAN__FAIL_IF(net->err, len != need, FAN_E_SHAPE, "%s has length %zu; layer needs %zu", what,
                 len, need);
    return FAN_OK;
}

/* Copies a W-shaped and a b-shaped block out of a parameter-layout array. */
static fan_status get_pair(const fan_net *net, const float *base, size_t layer, float *w,
                           size_t w_len, float *b, size_t b_len)
{
    FAN__CHECK(check_layer(net, layer));
    const size_t out = net->sizes[layer + 1], wn = out * net->sizes[layer];
    if (w) FAN__CHECK(check_len(net, "w", w_len, wn));
    if (b) FAN__CHECK(check_len(net, "b", b_len, out));
    if (w) memcpy(w, base + net->w_off[layer], wn * sizeof *w);
    if (b) memcpy(b, base + net->b_off[layer], out * sizeof *b);
    return FAN_OK;
}

static fan_status set_pair(fan_net *net, float *base, size_t layer, const float *w, size_t w_len,
                           const float *b, size_t b_len)
{
    FAN__CHECK(check_layer(net, layer));
    const size_t out = net->sizes[layer + 1], wn = out * net->sizes[layer];
    if (w) FAN__CHECK(check_len(net, "w", w_len, wn));
    if (b) FAN__CHECK(check_len(net, "b", b_len, out));
    FAN__FAIL_IF(net->err, (w && !fan__all_finite(w, wn)) || (b && !fan__all_finite(b, out)),
                 FAN_E_NONFINITE, "layer %zu: values contain NaN or infinity", layer);
    if (w) memcpy(base + net->w_off[layer], w, wn * sizeof *w);
    if (b) memcpy(base + net->b_off[layer], b, out * sizeof *b);
    return FAN_OK;
}

fan_status fan_net_get_weights(const fan_net *net, size_t layer, float *w, size_t w_len, float *b,
                               size_t b_len)
{
    return get_pair(net, net ? net->params : NULL, layer, w, w_len, b, b_len);
}

fan_status fan_net_set_weights(fan_net *net, size_t layer, const float *w, size_t w_len,
                               const float *b, size_t b_len)
{
    return set_pair(net, net ? net->params : NULL, layer, w, w_len, b, b_len);
}

fan_status fan_net_get_gradients(const fan_net *net, size_t layer, float *dw, size_t dw_len,
                                 float *db, size_t db_len)
{
    return get_pair(net, net ? net->grads : NULL, layer, dw, dw_len, db, db_len);
}

fan_status fan_net_set_gradients(fan_net *net, size_t layer, const float *dw, size_t dw_len,
                                 const float *db, size_t db_len)
{
    FAN__CHECK(set_pair(net, net ? net->grads : NULL, layer, dw, dw_len, db, db_len));
    net->has_grads = 1;
    return FAN_OK;
}

fan_status fan_net_get_feedback(const fan_net *net, size_t layer, float *B, size_t len)
{
    FAN__CHECK(check_layer(net, layer));
    FAN__FAIL_IF(net->err, B == NULL, FAN_E_NULL, "B is NULL");
    const size_t wn = net->sizes[layer + 1] * net->sizes[layer];
    FAN__CHECK(check_len(net, "B", len, wn));
    memcpy(B, fan__net_fb(net, layer), wn * sizeof *B);
    return FAN_OK;
}

fan_status fan_net_set_feedback(fan_net *net, size_t layer, const float *B, size_t len)
{
    FAN__CHECK(check_layer(net, layer));
    FAN__FAIL_IF(net->err, B == NULL, FAN_E_NULL, "B is NULL");
    const size_t wn = net->sizes[layer + 1] * net->sizes[layer];
    FAN__CHECK(check_len(net, "B", len, wn));
    FAN__FAIL_IF(net->err, !fan__all_finite(B, wn), FAN_E_NONFINITE,
                 "layer %zu: B contains NaN or infinity", layer);
    memcpy(fan__net_fb(net, layer), B, wn * sizeof *B);
    return FAN_OK;
}

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

void fan__net_forward_into(const fan_net *net, const float *x, size_t n, float *const *hs,
                           int softmax)
{
    const float *in = x;
    for (size_t l = 0; l < net->n_layers; l++) {
        const size_t ni = net->sizes[l], no = net->sizes[l + 1];
        /* z = h W^T: (n x ni) times (ni x no), W stored no x ni. */
        fan__sgemm(0, 1, n, no, ni, 1.0f, in, ni, fan__net_w(net, l), ni, 0.0f, hs[l + 1], no);
        bias_activate(hs[l + 1], fan__net_b(net, l), n, no, net->act[l], net->leaky_slope);
        in = hs[l + 1];
    }
    if (softmax && net->loss == FAN_LOSS_CROSS_ENTROPY)
        softmax_rows(hs[net->n_layers], n, net->sizes[net->n_layers]);
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

double fan__net_output_delta(const fan_net *net, const float *y, const float *targets, size_t n,
                             float *delta)
{
    const size_t c = net->sizes[net->n_layers];
    double total = 0.0;
    if (net->loss == FAN_LOSS_CROSS_ENTROPY) {
        /* y holds the output activations z; the loss of a row is sum_j t_j (lse(z) - z_j), and
           its gradient p_j * sum(t) - t_j, computed from z without forming log p. */
        const float scale = 1.0f / (float)n;
        for (size_t r = 0; r < n; r++) {
            const float *z = y + r * c, *t = targets + r * c;
            float *d = delta + r * c, mx = z[0];
            for (size_t j = 1; j < c; j++) mx = z[j] > mx ? z[j] : mx;
            float sum = 0.0f, tsum = 0.0f;
            double tz = 0.0;
            for (size_t j = 0; j < c; j++) {
                d[j] = expf(z[j] - mx);
                sum += d[j];
                tsum += t[j];
                tz += (double)t[j] * (double)(z[j] - mx);
            }
            total += (double)tsum * log((double)sum) - tz;
            const float inv = 1.0f / sum;
            for (size_t j = 0; j < c; j++) d[j] = (d[j] * inv * tsum - t[j]) * scale;
        }
        total /= (double)n;
    } else {
        const float scale = 2.0f / ((float)n * (float)c);
        for (size_t i = 0; i < n * c; i++) {
            const float e = y[i] - targets[i];
            total += (double)e * (double)e;
            delta[i] = e * scale;
        }
        total /= (double)n * (double)c;
    }
    /* The output activation sits between the pre-activation and the loss. */
    mul_derivative(delta, y, n * c, net->act[net->n_layers - 1], net->leaky_slope);
    return total;
}

void fan__net_delta_down(const fan_net *net, fan_rule rule, size_t l, const float *delta_out,
                         const float *h_l, size_t n, float *delta_in)
{
    const size_t ni = net->sizes[l], no = net->sizes[l + 1];
    const float *m = rule == FAN_RULE_BP ? fan__net_w(net, l) : fan__net_fb(net, l);
    /* delta_in = delta_out (n x no) times M (no x ni): B has W's shape, so FA and BP differ only
       in which matrix is read here. */
    fan__sgemm(0, 0, n, ni, no, 1.0f, delta_out, no, m, ni, 0.0f, delta_in, ni);
    mul_derivative(delta_in, h_l, n * ni, net->act[l - 1], net->leaky_slope);
}

/* ---- workspace ---------------------------------------------------------------------------- */

fan_status fan__net_reserve(fan_net *net, size_t n)
{
    if (n <= net->ws_rows) return FAN_OK;
    const size_t L = net->n_layers;
    size_t maxw = 0, per_row = 0;
    for (size_t l = 1; l <= L; l++) {
        maxw = net->sizes[l] > maxw ? net->sizes[l] : maxw;
        per_row += net->sizes[l];
    }
    per_row += 2 * maxw + net->sizes[L]; /* two delta buffers and the targets */
    size_t total;
    FAN__FAIL_IF(net->err, !fan__mul_ok(per_row, n, &total) || total > SIZE_MAX / sizeof(float),
                 FAN_E_LIMIT, "a batch of %zu rows needs too much workspace", n);
    float *ws = fan__alloc(&net->alloc, total * sizeof(float));
    FAN__FAIL_IF(net->err, ws == NULL, FAN_E_NOMEM, "cannot allocate workspace for %zu rows", n);
    fan__free(&net->alloc, net->ws);
    net->ws = ws;
    net->ws_rows = n;
    float *p = ws;
    net->h[0] = NULL;
    for (size_t l = 1; l <= L; l++) {
        net->h[l] = p;
        p += n * net->sizes[l];
    }
    net->delta_a = p;
    p += n * maxw;
    net->delta_b = p;
    p += n * maxw;
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

fan_status fan_net_forward(fan_net *net, const float *x, size_t n, float *probs, size_t probs_len)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, probs == NULL, FAN_E_NULL, "probs is NULL");
    const size_t c = net->sizes[net->n_layers];
    FAN__FAIL_IF(net->err, probs_len / c < n || probs_len != n * c, FAN_E_SHAPE,
                 "probs has length %zu; %zu rows need %zu", probs_len, n, n * c);
    FAN__CHECK(fan__net_reserve(net, n));
    fan__net_forward_into(net, x, n, net->h, 1);
    memcpy(probs, net->h[net->n_layers], n * c * sizeof *probs);
    return FAN_OK;
}

void fan__one_hot(const int32_t *labels, size_t n, size_t c, float *targets)
{
    memset(targets, 0, n * c * sizeof *targets);
    for (size_t i = 0; i < n; i++) targets[i * c + (size_t)labels[i]] = 1.0f;
}

/* Fills the workspace's target rows with one-hot vectors of labels. */
static void one_hot(fan_net *net, const int32_t *labels, size_t n)
{
    fan__one_hot(labels, n, net->sizes[net->n_layers], net->onehot);
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
    const size_t L = net->n_layers;
    fan__net_forward_into(net, x, n, net->h, 0);
    float *d = net->delta_a, *d_next = net->delta_b;
    const double lv = fan__net_output_delta(net, net->h[L], targets, n, d);
    if (!isfinite(lv)) return nonfinite(net, x, n);
    for (size_t l = L; l-- > 0;) {
        const size_t ni = net->sizes[l], no = net->sizes[l + 1];
        const float *h_l = l == 0 ? x : net->h[l];
        float *dw = net->grads_next + net->w_off[l], *db = net->grads_next + net->b_off[l];
        /* dW_l = delta^T (no x n) times h_l (n x ni); delta already carries the 1/n. */
        fan__sgemm(1, 0, no, ni, n, 1.0f, d, no, h_l, ni, 0.0f, dw, ni);
        memset(db, 0, no * sizeof *db);
        for (size_t r = 0; r < n; r++)
            for (size_t j = 0; j < no; j++) db[j] += d[r * no + j];
        if (l > 0) {
            fan__net_delta_down(net, net->rule, l, d, h_l, n, d_next);
            float *t = d;
            d = d_next;
            d_next = t;
        }
    }
    if (!fan__all_finite(net->grads_next, net->n_params)) return nonfinite(net, x, n);
    float *t = net->grads;
    net->grads = net->grads_next;
    net->grads_next = t;
    net->has_grads = 1;
    if (loss) *loss = (float)lv;
    return FAN_OK;
}

fan_status fan__net_gradients_labels(fan_net *net, const float *x, const int32_t *labels,
                                     size_t n, float *loss)
{
    FAN__CHECK(check_batch(net, x, n));
    FAN__FAIL_IF(net->err, labels == NULL, FAN_E_NULL, "labels is NULL");
    FAN__CHECK(fan__net_check_labels(net, labels, n));
    FAN__CHECK(fan__net_reserve(net, n));
    one_hot(net, labels, n);
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
    FAN__CHECK(fan__net_reserve(net, n));
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
    FAN__CHECK(fan__net_reserve(net, n));
    one_hot(net, labels, n);
    fan__net_forward_into(net, x, n, net->h, 0);
    *loss = fan__net_output_delta(net, net->h[net->n_layers], net->onehot, n, net->delta_a);
    return FAN_OK;
}

fan_status fan_net_feedback_shape(const fan_net *net, size_t layer, size_t *rows, size_t *cols)
{
    FAN__CHECK(check_layer(net, layer));
    if (rows) *rows = net->sizes[layer + 1];
    if (cols) *cols = net->sizes[layer];
    return FAN_OK;
}
