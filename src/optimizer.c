/*
 * optimizer.c - SGD (with classical or Nesterov momentum), Adam, AdamW and RMSprop as small loops
 * over flat parameter and gradient arrays, following PyTorch's update rules so that results
 * compare one to one. Optimizers only update: the training step, with its checks, is train.c's.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

struct fan_optimizer {
    fan_allocator alloc;
    char *err;
    char err_storage[FAN__ERRMSG_CAP];
    fan_optimizer_kind kind;
    double hp[FAN__OPT_COUNT];
    uint64_t t;
    /* The shape of the net the state was sized for. */
    size_t n_layers;
    size_t sizes[FAN_MAX_LAYERS + 1];
    size_t n_params;
    float *m; /* momentum buffer / Adam first moment */
    float *v; /* Adam second moment / RMSprop square average */
    /* A copy of the parameters and the state before the current step, so that a step whose
       result is not finite can be undone exactly (fan__optimizer_save / _rollback). */
    float *saved_p, *saved_m, *saved_v;
    uint64_t saved_t;
};

/* Ranges and defaults, indexed by fan_optimizer_param. */
static const struct {
    double lo, hi, def;
} bounds[FAN__OPT_COUNT] = {
    [FAN_OPT_LR] = {0.0, 1e6, 0.01},
    [FAN_OPT_MOMENTUM] = {0.0, 1.0, 0.0},
    [FAN_OPT_NESTEROV] = {0.0, 1.0, 0.0},
    [FAN_OPT_WEIGHT_DECAY] = {0.0, 1e6, 0.0},
    [FAN_OPT_BETA1] = {0.0, 1.0, 0.9},
    [FAN_OPT_BETA2] = {0.0, 1.0, 0.999},
    [FAN_OPT_EPSILON] = {0.0, 1.0, 1e-8},
    [FAN_OPT_ALPHA] = {0.0, 1.0, 0.99},
};

fan_status fan_optimizer_param_bounds(fan_optimizer_param p, double *lo, double *hi, double *def)
{
    FAN__FAIL_IF(NULL, (unsigned)p >= FAN__OPT_COUNT, FAN_E_INVALID, "unknown parameter");
    if (lo) *lo = bounds[p].lo;
    if (hi) *hi = bounds[p].hi;
    if (def) *def = bounds[p].def;
    return FAN_OK;
}

fan_status fan_optimizer_create(fan_optimizer **out, fan_optimizer_kind kind, const fan_net *net,
                                const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    const size_t *sizes = fan__net_sizes(net), L = fan_net_num_layers(net);
    const size_t n_params = fan_net_num_params(net);
    FAN__FAIL_IF(NULL,
                 kind != FAN_OPTIMIZER_SGD && kind != FAN_OPTIMIZER_ADAM &&
                     kind != FAN_OPTIMIZER_ADAMW && kind != FAN_OPTIMIZER_RMSPROP,
                 FAN_E_INVALID, "unknown optimizer kind");
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    fan_optimizer *opt = fan__calloc(&al, 1, sizeof *opt);
    if (opt == NULL) return FAN_E_NOMEM;
    opt->alloc = al;
    opt->err = opt->err_storage;
    opt->kind = kind;
    for (int i = 0; i < FAN__OPT_COUNT; i++) opt->hp[i] = bounds[i].def;
    opt->n_layers = L;
    memcpy(opt->sizes, sizes, (L + 1) * sizeof *sizes);
    opt->n_params = n_params;
    /* Every kind keeps a first buffer (momentum or first moment); the adaptive ones a second. */
    opt->m = fan__calloc(&al, n_params, sizeof(float));
    if (kind != FAN_OPTIMIZER_SGD) opt->v = fan__calloc(&al, n_params, sizeof(float));
    /* The undo copy of a step is allocated here, so that training steps never allocate. */
    opt->saved_p = fan__calloc(&al, n_params, sizeof(float));
    opt->saved_m = fan__calloc(&al, n_params, sizeof(float));
    if (kind != FAN_OPTIMIZER_SGD) opt->saved_v = fan__calloc(&al, n_params, sizeof(float));
    if (opt->m == NULL || opt->saved_p == NULL || opt->saved_m == NULL ||
        (kind != FAN_OPTIMIZER_SGD && (opt->v == NULL || opt->saved_v == NULL))) {
        fan_optimizer_free(opt);
        return FAN_E_NOMEM;
    }
    *out = opt;
    return FAN_OK;
}

void fan_optimizer_free(fan_optimizer *opt)
{
    if (opt == NULL) return;
    const fan_allocator al = opt->alloc;
    fan__free(&al, opt->saved_v);
    fan__free(&al, opt->saved_m);
    fan__free(&al, opt->saved_p);
    fan__free(&al, opt->v);
    fan__free(&al, opt->m);
    fan__free(&al, opt);
}

const char *fan_optimizer_errmsg(const fan_optimizer *opt)
{
    return opt == NULL ? "optimizer is NULL" : opt->err;
}

fan_status fan_optimizer_set(fan_optimizer *opt, fan_optimizer_param p, double value)
{
    FAN__FAIL_IF(NULL, opt == NULL, FAN_E_NULL, "optimizer is NULL");
    FAN__FAIL_IF(opt->err, (unsigned)p >= FAN__OPT_COUNT, FAN_E_INVALID,
                 "unknown optimizer parameter %d", (int)p);
    FAN__FAIL_IF(opt->err, !(value >= bounds[p].lo && value <= bounds[p].hi), FAN_E_INVALID,
                 "parameter %d: %g is outside [%g, %g]", (int)p, value, bounds[p].lo,
                 bounds[p].hi);
    FAN__FAIL_IF(opt->err, p == FAN_OPT_NESTEROV && value != 0.0 && value != 1.0, FAN_E_INVALID,
                 "nesterov is 0 or 1, not %g", value);
    opt->hp[p] = value;
    return FAN_OK;
}

fan_status fan_optimizer_get(const fan_optimizer *opt, fan_optimizer_param p, double *value)
{
    FAN__FAIL_IF(NULL, opt == NULL, FAN_E_NULL, "optimizer is NULL");
    FAN__FAIL_IF(opt->err, value == NULL, FAN_E_NULL, "value is NULL");
    FAN__FAIL_IF(opt->err, (unsigned)p >= FAN__OPT_COUNT, FAN_E_INVALID,
                 "unknown optimizer parameter %d", (int)p);
    *value = opt->hp[p];
    return FAN_OK;
}

fan_optimizer_kind fan_optimizer_get_kind(const fan_optimizer *opt)
{
    return opt == NULL ? FAN_OPTIMIZER_SGD : opt->kind;
}

uint64_t fan_optimizer_steps(const fan_optimizer *opt) { return opt == NULL ? 0 : opt->t; }

fan_status fan_optimizer_reset(fan_optimizer *opt)
{
    FAN__FAIL_IF(NULL, opt == NULL, FAN_E_NULL, "optimizer is NULL");
    memset(opt->m, 0, opt->n_params * sizeof(float));
    if (opt->v) memset(opt->v, 0, opt->n_params * sizeof(float));
    opt->t = 0;
    return FAN_OK;
}

/* ---- update rules (PyTorch's torch.optim semantics) ----------------------------------------- */

/* 1 where a float is NaN or infinite: its exponent bits are all ones. An integer OR over the
   results vectorises with the update loops, so checking costs almost nothing. */
static inline uint32_t not_finite(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (uint32_t)((bits & 0x7f800000u) == 0x7f800000u);
}

static uint32_t sgd(fan_optimizer *o, float *p, const float *g, size_t n)
{
    const float lr = (float)o->hp[FAN_OPT_LR], mu = (float)o->hp[FAN_OPT_MOMENTUM],
                wd = (float)o->hp[FAN_OPT_WEIGHT_DECAY];
    const int nesterov = o->hp[FAN_OPT_NESTEROV] != 0.0;
    float *buf = o->m;
    uint32_t bad = 0;
    if (mu == 0.0f) {
        for (size_t i = 0; i < n; i++) {
            p[i] -= lr * (g[i] + wd * p[i]);
            bad |= not_finite(p[i]);
        }
        return bad;
    }
    /* PyTorch starts the momentum buffer at the first gradient (no dampening). */
    const int first = o->t == 0;
    for (size_t i = 0; i < n; i++) {
        const float d = g[i] + wd * p[i];
        buf[i] = first ? d : mu * buf[i] + d;
        p[i] -= lr * (nesterov ? d + mu * buf[i] : buf[i]);
        bad |= not_finite(p[i]) | not_finite(buf[i]);
    }
    return bad;
}

static uint32_t adam(fan_optimizer *o, float *p, const float *g, size_t n, int decoupled)
{
    const double lr = o->hp[FAN_OPT_LR], b1 = o->hp[FAN_OPT_BETA1], b2 = o->hp[FAN_OPT_BETA2];
    const double t = (double)(o->t + 1);
    const float wd = (float)o->hp[FAN_OPT_WEIGHT_DECAY], eps = (float)o->hp[FAN_OPT_EPSILON];
    const float fb1 = (float)b1, fb2 = (float)b2;
    /* Bias corrections folded into the step size and denominator, as PyTorch does. */
    const float step = (float)(lr / (1.0 - pow(b1, t)));
    const float bc2 = (float)sqrt(1.0 - pow(b2, t));
    const float decay = decoupled ? 1.0f - (float)lr * wd : 1.0f;
    const float l2 = decoupled ? 0.0f : wd;
    float *m = o->m, *v = o->v;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        const float d = g[i] + l2 * p[i];
        m[i] = fb1 * m[i] + (1.0f - fb1) * d;
        v[i] = fb2 * v[i] + (1.0f - fb2) * d * d;
        p[i] -= step * m[i] / (sqrtf(v[i]) / bc2 + eps);
        bad |= not_finite(p[i]) | not_finite(m[i]) | not_finite(v[i]);
    }
    return bad;
}

static uint32_t rmsprop(fan_optimizer *o, float *p, const float *g, size_t n)
{
    const float lr = (float)o->hp[FAN_OPT_LR], a = (float)o->hp[FAN_OPT_ALPHA],
                eps = (float)o->hp[FAN_OPT_EPSILON], wd = (float)o->hp[FAN_OPT_WEIGHT_DECAY],
                mu = (float)o->hp[FAN_OPT_MOMENTUM];
    float *v = o->v, *buf = o->m;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        const float d = g[i] + wd * p[i];
        v[i] = a * v[i] + (1.0f - a) * d * d;
        const float u = d / (sqrtf(v[i]) + eps);
        if (mu > 0.0f) {
            buf[i] = mu * buf[i] + u;
            p[i] -= lr * buf[i];
        } else {
            p[i] -= lr * u;
        }
        bad |= not_finite(p[i]) | not_finite(v[i]) | not_finite(buf[i]);
    }
    return bad;
}

/* ---- what the training step (train.c) uses ------------------------------------------------- */

char *fan__optimizer_errbuf(const fan_optimizer *opt) { return opt->err; }

int fan__optimizer_fits(const fan_optimizer *opt, const size_t *sizes, size_t n_layers,
                        size_t n_params)
{
    if (n_layers != opt->n_layers || n_params != opt->n_params) return 0;
    for (size_t l = 0; l <= n_layers; l++)
        if (sizes[l] != opt->sizes[l]) return 0;
    return 1;
}

int fan__optimizer_update(fan_optimizer *opt, float *p, const float *g, size_t n)
{
    uint32_t bad = 0;
    switch (opt->kind) {
    case FAN_OPTIMIZER_SGD: bad = sgd(opt, p, g, n); break;
    case FAN_OPTIMIZER_ADAM: bad = adam(opt, p, g, n, 0); break;
    case FAN_OPTIMIZER_ADAMW: bad = adam(opt, p, g, n, 1); break;
    case FAN_OPTIMIZER_RMSPROP: bad = rmsprop(opt, p, g, n); break;
    }
    opt->t++;
    return bad == 0;
}

double fan__optimizer_contraction(const fan_optimizer *opt)
{
    return opt->hp[FAN_OPT_LR] * opt->hp[FAN_OPT_WEIGHT_DECAY];
}

const float *fan__optimizer_save(fan_optimizer *opt, const float *p, size_t n)
{
    memcpy(opt->saved_p, p, n * sizeof(float));
    memcpy(opt->saved_m, opt->m, n * sizeof(float));
    if (opt->v) memcpy(opt->saved_v, opt->v, n * sizeof(float));
    opt->saved_t = opt->t;
    return opt->saved_p;
}

void fan__optimizer_rollback(fan_optimizer *opt, float *p, size_t n)
{
    memcpy(p, opt->saved_p, n * sizeof(float));
    memcpy(opt->m, opt->saved_m, n * sizeof(float));
    if (opt->v) memcpy(opt->v, opt->saved_v, n * sizeof(float));
    opt->t = opt->saved_t;
}
