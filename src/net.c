/*
 * net.c - the network handle: construction, settings, the rule and the storage it needs,
 * initialisation, shape queries and copies of its matrices. The forward and backward passes are
 * in net_pass.c, the rules in rule_*.c.
 */
#include "net_impl.h"

#include <math.h>
#include <string.h>

/* ---- construction ------------------------------------------------------------------------- */

/* Lays out parameter and gradient offsets; fails on overflow or a bound. */
static fan_status layout(fan_net *net, char *err)
{
    size_t off = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        size_t in = net->sizes[l], out = net->sizes[l + 1], wn;
        FAN__FAIL_IF(err, !fan__mul_ok(out, in, &wn) || wn > FAN_MAX_MATRIX, FAN_E_LIMIT,
                     "layer %zu: %zu x %zu weights exceed FAN_MAX_MATRIX", l, out, in);
        FAN__FAIL_IF(err, off > SIZE_MAX / 8 - wn - out, FAN_E_LIMIT,
                     "total parameter count overflows");
        net->w_off[l] = off;
        net->b_off[l] = off + wn;
        off += wn + out;
    }
    net->n_params = off;
    return FAN_OK;
}

size_t fan__rule_feedback_rows(const fan__rule_ops *rule, const size_t *sizes, size_t n_layers,
                               size_t l)
{
    return rule->direct ? sizes[n_layers] : sizes[l + 1];
}

/* The rule's resources, allocated together so that a rule change either gets all of them or
   changes nothing. */
typedef struct rule_blocks {
    float *feedback, *rule_ws, *magnitudes, *fb_backup;
    fan__normal_tables *tables;
    size_t fb_rows[FAN_MAX_LAYERS], fb_off[FAN_MAX_LAYERS], n_feedback;
    size_t mag_off[FAN_MAX_LAYERS];
} rule_blocks;

static void blocks_free(const fan_allocator *al, rule_blocks *b)
{
    fan__free(al, b->feedback);
    fan__free(al, b->rule_ws);
    fan__free(al, b->magnitudes);
    fan__free(al, b->fb_backup);
    fan__free(al, b->tables);
}

static fan_status blocks_alloc(const fan_net *net, const fan__rule_ops *rule, rule_blocks *b,
                               char *err)
{
    memset(b, 0, sizeof *b);
    const size_t L = net->n_layers;
    size_t fb = 0, hidden_w = 0, max_hidden_w = 0;
    for (size_t l = 0; l < L; l++) {
        /* rows <= FAN_MAX_WIDTH and cols <= FAN_MAX_WIDTH, and with DFA rows <= outputs, so
           each B_l is within the bounds layout() checked for some W of this net... except a
           DFA B_l of a net whose outputs exceed a hidden layer's: check it too. */
        const size_t rows = fan__rule_feedback_rows(rule, net->sizes, L, l);
        size_t bn;
        FAN__FAIL_IF(err, !fan__mul_ok(rows, net->sizes[l], &bn) || bn > FAN_MAX_MATRIX,
                     FAN_E_LIMIT, "layer %zu: a %zu x %zu feedback matrix exceeds FAN_MAX_MATRIX",
                     l, rows, net->sizes[l]);
        b->fb_rows[l] = rows;
        b->fb_off[l] = fb;
        fb += bn;
        if (l >= 1) {
            b->mag_off[l] = hidden_w;
            hidden_w += fan__net_wn(net, l);
            if (fan__net_wn(net, l) > max_hidden_w) max_hidden_w = fan__net_wn(net, l);
        }
    }
    b->n_feedback = fb;
    const fan_allocator *al = &net->alloc;
    int ok = (b->feedback = fan__calloc(al, fb, sizeof(float))) != NULL;
    if (ok && rule->computed) ok = (b->rule_ws = fan__calloc(al, max_hidden_w, sizeof(float))) != NULL;
    if (ok && rule->magnitudes)
        ok = (b->magnitudes = fan__calloc(al, hidden_w, sizeof(float))) != NULL &&
             (b->tables = fan__alloc(al, sizeof *b->tables)) != NULL;
    if (ok && rule->moves_b) ok = (b->fb_backup = fan__calloc(al, fb, sizeof(float))) != NULL;
    if (!ok) {
        blocks_free(al, b);
        return fan__fail(err, FAN_E_NOMEM, "cannot allocate the feedback matrices of rule %s",
                         fan_rule_name(rule->id));
    }
    if (b->tables) fan__normal_tables_init(b->tables);
    return FAN_OK;
}

/* Moves the blocks into the net (freeing the old ones) and makes `rule` the net's rule. */
static void blocks_install(fan_net *net, const fan__rule_ops *rule, rule_blocks *b)
{
    rule_blocks old = {0};
    old.feedback = net->feedback;
    old.rule_ws = net->rule_ws;
    old.magnitudes = net->magnitudes;
    old.fb_backup = net->fb_backup;
    old.tables = net->tables;
    blocks_free(&net->alloc, &old);
    net->feedback = b->feedback;
    net->rule_ws = b->rule_ws;
    net->magnitudes = b->magnitudes;
    net->fb_backup = b->fb_backup;
    net->tables = b->tables;
    net->n_feedback = b->n_feedback;
    memcpy(net->fb_rows, b->fb_rows, sizeof net->fb_rows);
    memcpy(net->fb_off, b->fb_off, sizeof net->fb_off);
    memcpy(net->mag_off, b->mag_off, sizeof net->mag_off);
    net->rule = rule;
}

/* Allocates the handle and its parameter blocks; settings are defaults, values zero. */
static fan_status net_alloc(fan_net **out, const size_t *sizes, size_t n_sizes,
                            const fan_allocator *alloc, char *err)
{
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    fan_net *net = fan__calloc(&al, 1, sizeof *net);
    FAN__FAIL_IF(err, net == NULL, FAN_E_NOMEM,
                 "cannot allocate the handle of a net of %zu weight layers", n_sizes - 1);
    net->alloc = al;
    net->err = fan__msg_init(&net->err_storage);
    net->n_layers = n_sizes - 1;
    memcpy(net->sizes, sizes, n_sizes * sizeof *sizes);
    for (size_t l = 0; l < net->n_layers; l++)
        net->act[l] = l + 1 < net->n_layers ? FAN_ACT_RELU : FAN_ACT_LINEAR;
    net->rule = &fan__rule_fa;
    net->loss = FAN_LOSS_CROSS_ENTROPY;
    net->init_w = FAN_INIT_HE_NORMAL;
    net->init_b = FAN_INIT_HE_NORMAL;
    net->leaky_slope = 0.01f;
    net->kernels = fan__kernels_detect();
    fan_status st = layout(net, err);
    if (st == FAN_OK) {
        net->params = fan__calloc(&al, net->n_params, sizeof(float));
        net->grads = fan__calloc(&al, net->n_params, sizeof(float));
        net->grads_next = fan__calloc(&al, net->n_params, sizeof(float));
        if (!net->params || !net->grads || !net->grads_next)
            st = fan__fail(err, FAN_E_NOMEM, "cannot allocate %zu parameters", net->n_params * 3);
    }
    rule_blocks b;
    if (st == FAN_OK) st = blocks_alloc(net, net->rule, &b, err);
    if (st != FAN_OK) {
        fan_net_free(net);
        return st;
    }
    blocks_install(net, net->rule, &b);
    *out = net;
    return FAN_OK;
}

static fan_status validate_sizes(const size_t *sizes, size_t n_sizes, char *err)
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

fan_status fan__net_create(fan_net **out, const size_t *sizes, size_t n_sizes,
                           const fan_allocator *alloc, char *err)
{
    FAN__FAIL_IF(err, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__CHECK(validate_sizes(sizes, n_sizes, err));
    fan_net *net = NULL;
    FAN__CHECK(net_alloc(&net, sizes, n_sizes, alloc, err));
    fan_status st = fan_net_init(net, 0, 1);
    if (st != FAN_OK) {
        fan_net_free(net);
        return st;
    }
    *out = net;
    return FAN_OK;
}

fan_status fan_net_create(fan_net **out, const size_t *sizes, size_t n_sizes,
                          const fan_allocator *alloc)
{
    return fan__net_create(out, sizes, n_sizes, alloc, NULL);
}

void fan_net_free(fan_net *net)
{
    if (net == NULL) return;
    const fan_allocator al = net->alloc;
    fan__net_free_exec(net);
    rule_blocks b = {0};
    b.feedback = net->feedback;
    b.rule_ws = net->rule_ws;
    b.magnitudes = net->magnitudes;
    b.fb_backup = net->fb_backup;
    b.tables = net->tables;
    blocks_free(&al, &b);
    fan__free(&al, net->ws);
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
    return fan__net_clone(out, src, &src->alloc, src->err);
}

fan_status fan__net_clone(fan_net **out, const fan_net *src, const fan_allocator *alloc,
                          char *err)
{
    /* A net with every setting of src, then its values; pointers and workspace stay its own. */
    fan__net_desc d;
    fan__net_describe(src, &d);
    FAN__CHECK(fan__net_from_desc(out, &d, alloc, err));
    fan_net *net = *out;
    fan__net_copy_exec(net, src);
    net->has_grads = src->has_grads;
    memcpy(net->params, src->params, src->n_params * sizeof(float));
    memcpy(net->grads, src->grads, src->n_params * sizeof(float));
    memcpy(net->feedback, src->feedback, src->n_feedback * sizeof(float));
    if (src->magnitudes) {
        size_t hidden_w = 0;
        for (size_t l = 1; l < src->n_layers; l++) hidden_w += fan__net_wn(src, l);
        memcpy(net->magnitudes, src->magnitudes, hidden_w * sizeof(float));
    }
    net->magnitude_rng = src->magnitude_rng;
    net->magnitude_rng_last = src->magnitude_rng_last;
    return FAN_OK;
}

/* ---- settings ----------------------------------------------------------------------------- */

fan_status fan_net_set_rule(fan_net *net, fan_rule rule)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    const fan__rule_ops *ops = fan__rule_lookup(rule);
    FAN__FAIL_IF(net->err, ops == NULL, FAN_E_INVALID, "unknown rule %d", (int)rule);
    if (ops == net->rule) return FAN_OK;
    rule_blocks b;
    FAN__CHECK(blocks_alloc(net, ops, &b, net->err));
    /* B_l whose shape the new rule keeps carries over (so FA -> KP -> FA keeps the same B);
       one whose shape changes is drawn anew from the feedback seed, as fan_net_init would. */
    for (size_t l = 0; l < net->n_layers; l++) {
        const size_t n = b.fb_rows[l] * net->sizes[l];
        if (b.fb_rows[l] == net->fb_rows[l]) {
            memcpy(b.feedback + b.fb_off[l], fan__net_fb(net, l), n * sizeof(float));
        } else {
            fan__rng r;
            fan__rng_seed_stream(&r, net->feedback_seed, FAN__RNG_FEEDBACK, l);
            fan__net_draw(b.feedback + b.fb_off[l], b.fb_rows[l], net->sizes[l], net->init_b, &r);
        }
    }
    blocks_install(net, ops, &b);
    if (ops->reset_state) ops->reset_state(net);
    return FAN_OK;
}

fan_rule fan_net_rule(const fan_net *net) { return net == NULL ? FAN_RULE_FA : net->rule->id; }

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
    if (p == FAN_NET_THREADS) return fan__net_set_threads(net, value);
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
    if (p == FAN_NET_THREADS) {
        *value = (double)fan__net_threads(net);
        return FAN_OK;
    }
    FAN__FAIL_IF(net->err, p != FAN_NET_LEAKY_SLOPE, FAN_E_INVALID, "unknown net parameter %d",
                 (int)p);
    *value = net->leaky_slope;
    return FAN_OK;
}

static int init_ok(fan_init init)
{
    return init == FAN_INIT_HE_NORMAL || init == FAN_INIT_XAVIER_UNIFORM ||
           init == FAN_INIT_LECUN_NORMAL;
}

fan_status fan_net_set_initializer(fan_net *net, fan_matrix which, fan_init init)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, which != FAN_MATRIX_WEIGHTS && which != FAN_MATRIX_FEEDBACK,
                 FAN_E_INVALID, "initialisers apply to weights or feedback, not matrix %d",
                 (int)which);
    FAN__FAIL_IF(net->err, !init_ok(init), FAN_E_INVALID, "unknown initialiser %d", (int)init);
    if (which == FAN_MATRIX_WEIGHTS)
        net->init_w = init;
    else
        net->init_b = init;
    return FAN_OK;
}

double fan__init_std(fan_init init, size_t rows, size_t cols)
{
    switch (init) {
    case FAN_INIT_XAVIER_UNIFORM: return sqrt(2.0 / (double)(rows + cols)); /* a / sqrt(3) */
    case FAN_INIT_LECUN_NORMAL: return sqrt(1.0 / (double)cols);
    case FAN_INIT_HE_NORMAL: break;
    }
    return sqrt(2.0 / (double)cols);
}

void fan__net_draw(float *m, size_t rows, size_t cols, fan_init init, fan__rng *r)
{
    const size_t len = rows * cols;
    if (init == FAN_INIT_XAVIER_UNIFORM) {
        const double a = sqrt(6.0 / (double)(cols + rows));
        for (size_t i = 0; i < len; i++) m[i] = (float)(a * (2.0 * fan__rng_uniform(r) - 1.0));
        return;
    }
    const double sd = fan__init_std(init, rows, cols);
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
        fan__rng_seed_stream(&r, weight_seed, FAN__RNG_WEIGHTS, l);
        fan__net_draw(fan__net_w(net, l), net->sizes[l + 1], net->sizes[l], net->init_w, &r);
        fan__rng_seed_stream(&r, feedback_seed, FAN__RNG_FEEDBACK, l);
        fan__net_draw(fan__net_fb(net, l), net->fb_rows[l], net->sizes[l], net->init_b, &r);
    }
    net->weight_seed = weight_seed;
    net->feedback_seed = feedback_seed;
    net->has_grads = 0;
    if (net->rule->reset_state) net->rule->reset_state(net);
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

fan_status fan_net_feedback_shape(const fan_net *net, size_t layer, size_t *rows, size_t *cols)
{
    FAN__CHECK(check_layer(net, layer));
    if (rows) *rows = net->fb_rows[layer];
    if (cols) *cols = net->sizes[layer];
    return FAN_OK;
}

fan_status fan_net_get_feedback(const fan_net *net, size_t layer, float *B, size_t len)
{
    FAN__CHECK(check_layer(net, layer));
    FAN__FAIL_IF(net->err, B == NULL, FAN_E_NULL, "B is NULL");
    size_t rows = 0;
    FAN__CHECK(check_len(net, "B", len, net->fb_rows[layer] * net->sizes[layer]));
    /* The matrix the error pass would multiply by now: for the sign-concordant rules it is
       computed from W, and brSF's layer 0 (never used by an error pass) shows frSF's. */
    const float *m = fan__net_feedback_matrix(net, net->rule->id, layer, B, &rows);
    if (m != B) memcpy(B, m, len * sizeof *B);
    return FAN_OK;
}

fan_status fan_net_set_feedback(fan_net *net, size_t layer, const float *B, size_t len)
{
    FAN__CHECK(check_layer(net, layer));
    FAN__FAIL_IF(net->err, B == NULL, FAN_E_NULL, "B is NULL");
    /* uSF and brSF compute their feedback from W and never read a stored B. */
    FAN__FAIL_IF(net->err, net->rule->computed && !net->rule->reads_stored_b, FAN_E_UNSUPPORTED,
                 "rule %s draws its feedback from W; it has no B to set",
                 fan_rule_name(net->rule->id));
    const size_t bn = net->fb_rows[layer] * net->sizes[layer];
    FAN__CHECK(check_len(net, "B", len, bn));
    FAN__FAIL_IF(net->err, !fan__all_finite(B, bn), FAN_E_NONFINITE,
                 "layer %zu: B contains NaN or infinity", layer);
    memcpy(fan__net_fb(net, layer), B, bn * sizeof *B);
    return FAN_OK;
}

/* ---- accessors for the rest of the library (internal.h) ------------------------------------ */

char *fan__net_errbuf(const fan_net *net) { return net->err; }
const fan_allocator *fan__net_allocator(const fan_net *net) { return &net->alloc; }
const size_t *fan__net_sizes(const fan_net *net) { return net->sizes; }
const float *fan__net_weights(const fan_net *net, size_t l) { return fan__net_w(net, l); }
const float *fan__net_bias(const fan_net *net, size_t l) { return fan__net_b(net, l); }
const float *fan__net_feedback(const fan_net *net, size_t l) { return fan__net_fb(net, l); }
size_t fan__net_feedback_rows(const fan_net *net, size_t l) { return net->fb_rows[l]; }
const float *fan__net_gradient(const fan_net *net, size_t l)
{
    return net->grads + net->w_off[l];
}
float *fan__net_weights_mut(fan_net *net, size_t l) { return fan__net_w(net, l); }
float *fan__net_bias_mut(fan_net *net, size_t l) { return fan__net_b(net, l); }
float *fan__net_feedback_mut(fan_net *net, size_t l) { return fan__net_fb(net, l); }

float *fan__net_params_mut(fan_net *net, size_t *n)
{
    *n = net->n_params;
    return net->params;
}

const float *fan__net_grads(const fan_net *net, size_t *n)
{
    *n = net->n_params;
    return net->grads;
}

int fan__net_has_grads(const fan_net *net) { return net->has_grads; }

int fan__net_rule_is_backprop(const fan_net *net) { return net->rule->backprop; }
int fan__net_rule_is_direct(const fan_net *net) { return net->rule->direct; }

int fan__net_all_finite(const fan_net *net)
{
    return fan__all_finite(net->params, net->n_params) &&
           fan__all_finite(net->feedback, net->n_feedback);
}

void fan__net_describe(const fan_net *net, fan__net_desc *d)
{
    memset(d, 0, sizeof *d);
    d->n_layers = net->n_layers;
    memcpy(d->sizes, net->sizes, sizeof d->sizes);
    memcpy(d->act, net->act, sizeof d->act);
    d->rule = net->rule->id;
    d->loss = net->loss;
    d->init_w = net->init_w;
    d->init_b = net->init_b;
    d->leaky_slope = net->leaky_slope;
    d->weight_seed = net->weight_seed;
    d->feedback_seed = net->feedback_seed;
}

fan_status fan__net_from_desc(fan_net **out, const fan__net_desc *d, const fan_allocator *alloc,
                              char *err)
{
    *out = NULL;
    FAN__CHECK(validate_sizes(d->sizes, d->n_layers + 1, err));
    const fan__rule_ops *ops = fan__rule_lookup(d->rule);
    FAN__FAIL_IF(err, ops == NULL, FAN_E_FORMAT, "unknown rule %d", (int)d->rule);
    FAN__FAIL_IF(err, d->loss != FAN_LOSS_CROSS_ENTROPY && d->loss != FAN_LOSS_MSE, FAN_E_FORMAT,
                 "unknown loss %d", (int)d->loss);
    FAN__FAIL_IF(err, !init_ok(d->init_w) || !init_ok(d->init_b), FAN_E_FORMAT,
                 "unknown initialiser");
    FAN__FAIL_IF(err, !(d->leaky_slope >= 0.0f && d->leaky_slope <= 1.0f), FAN_E_FORMAT,
                 "leaky slope outside [0, 1]");
    for (size_t l = 0; l < d->n_layers; l++)
        FAN__FAIL_IF(err, !activation_ok(d->act[l]), FAN_E_FORMAT,
                     "unknown activation %d for layer %zu", (int)d->act[l], l);
    fan_net *net = NULL;
    FAN__CHECK(net_alloc(&net, d->sizes, d->n_layers + 1, alloc, err));
    if (ops != net->rule) {
        rule_blocks b;
        fan_status st = blocks_alloc(net, ops, &b, err);
        if (st != FAN_OK) {
            fan_net_free(net);
            return st;
        }
        blocks_install(net, ops, &b);
    }
    memcpy(net->act, d->act, sizeof net->act);
    net->loss = d->loss;
    net->init_w = d->init_w;
    net->init_b = d->init_b;
    net->leaky_slope = d->leaky_slope;
    net->weight_seed = d->weight_seed;
    net->feedback_seed = d->feedback_seed;
    if (ops->reset_state) ops->reset_state(net);
    *out = net;
    return FAN_OK;
}

size_t fan__net_rule_state_size(const fan_net *net) { return net->rule->state_size; }

void fan__net_rule_state_write(const fan_net *net, unsigned char *out)
{
    if (net->rule->state_write) net->rule->state_write(net, out);
}

fan_status fan__net_rule_state_read(fan_net *net, const unsigned char *in, size_t len, char *err)
{
    FAN__FAIL_IF(err, len != net->rule->state_size, FAN_E_FORMAT,
                 "rule %s keeps %zu bytes of state; the file has %zu",
                 fan_rule_name(net->rule->id), net->rule->state_size, len);
    if (net->rule->state_read) net->rule->state_read(net, in);
    return FAN_OK;
}

int fan__net_after_update(fan_net *net, const float *params_before, double contraction)
{
    return net->rule->after_update == NULL ||
           net->rule->after_update(net, params_before, contraction);
}

void fan__net_save_rule_state(fan_net *net)
{
    if (net->fb_backup) memcpy(net->fb_backup, net->feedback, net->n_feedback * sizeof(float));
}

void fan__net_restore_rule_state(fan_net *net)
{
    if (net->fb_backup) memcpy(net->feedback, net->fb_backup, net->n_feedback * sizeof(float));
}

/* ---- views and the training hook (scale-out: mpi/fanoise_mpi.h builds on these) ----------- */

fan_status fan_net_parameters(fan_net *net, float **data, size_t *len)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, data == NULL || len == NULL, FAN_E_NULL, "%s is NULL",
                 data == NULL ? "data" : "len");
    *data = net->params;
    *len = net->n_params;
    return FAN_OK;
}

fan_status fan_net_gradients(fan_net *net, float **data, size_t *len)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, data == NULL || len == NULL, FAN_E_NULL, "%s is NULL",
                 data == NULL ? "data" : "len");
    /* Between calls `grads` holds the current gradients; from now on it stays this block. */
    if (net->grads_view == NULL) net->grads_view = net->grads;
    *data = net->grads_view;
    *len = net->n_params;
    return FAN_OK;
}

void fan__net_grads_prepare(fan_net *net)
{
    if (net->grads_view == NULL) return;
    memcpy(net->grads_next, net->grads_view, net->n_params * sizeof(float));
    net->grads = net->grads_next;
    net->grads_next = net->grads_view;
}

void fan__net_grads_settle(fan_net *net)
{
    if (net->grads_view == NULL || net->grads == net->grads_view) return;
    memcpy(net->grads_view, net->grads, net->n_params * sizeof(float));
    net->grads_next = net->grads;
    net->grads = net->grads_view;
}

fan_status fan_net_set_gradient_hook(fan_net *net, fan_gradient_hook fn, void *user)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    net->hook = fn;
    net->hook_user = fn != NULL ? user : NULL;
    return FAN_OK;
}

fan_gradient_hook fan__net_gradient_hook(const fan_net *net, void **user)
{
    *user = net->hook_user;
    return net->hook;
}
