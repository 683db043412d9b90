/*
 * optimizer.c - SGD (with classical or Nesterov momentum), Adam, AdamW and RMSprop as small loops
 * over flat parameter and gradient arrays, following PyTorch's update rules so that results
 * compare one to one. Optimizers only update: the training step, with its checks, is train.c's.
 */
#include "kernels.h"

#include <math.h>
#include <string.h>

/* The update loops are compiled for several vector widths and must give the same bits on all:
   no fusing of a * b + c into an FMA where one width has it (clang's default; GCC's -std=c11
   already never fuses, and rejects this pragma). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* The coefficients of one step, computed once by fan__optimizer_begin_step rather than by every
   range of the update (Adam's bias corrections cost two pow calls). */
typedef struct coeffs {
    fan_optimizer_kind kind;
    float lr, mu, wd, eps, alpha;
    int nesterov, first;
    float fb1, fb2, step, bc2, decay, l2; /* Adam */
} coeffs;

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
    coeffs step; /* of the step in progress (fan__optimizer_begin_step) */
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

static void step_coeffs(const fan_optimizer *o, coeffs *c)
{
    c->kind = o->kind;
    c->lr = (float)o->hp[FAN_OPT_LR];
    c->mu = (float)o->hp[FAN_OPT_MOMENTUM];
    c->wd = (float)o->hp[FAN_OPT_WEIGHT_DECAY];
    c->eps = (float)o->hp[FAN_OPT_EPSILON];
    c->alpha = (float)o->hp[FAN_OPT_ALPHA];
    c->nesterov = o->hp[FAN_OPT_NESTEROV] != 0.0;
    /* PyTorch starts the momentum buffer at the first gradient (no dampening). */
    c->first = o->t == 0;
    const double lr = o->hp[FAN_OPT_LR], b1 = o->hp[FAN_OPT_BETA1], b2 = o->hp[FAN_OPT_BETA2];
    const double t = (double)(o->t + 1);
    c->fb1 = (float)b1;
    c->fb2 = (float)b2;
    /* Bias corrections folded into the step size and denominator, as PyTorch does. */
    c->step = (float)(lr / (1.0 - pow(b1, t)));
    c->bc2 = (float)sqrt(1.0 - pow(b2, t));
    const int decoupled = o->kind == FAN_OPTIMIZER_ADAMW;
    c->decay = decoupled ? 1.0f - (float)lr * c->wd : 1.0f;
    c->l2 = decoupled ? 0.0f : c->wd;
}

/* The update loops write p and the state slices they are given and nothing else, so disjoint
   ranges can run on several threads at once. Each is compiled into every vector width below;
   separate IEEE operations in a fixed order give the same bits on all of them. */
#define LOOP static inline __attribute__((always_inline)) uint32_t

LOOP sgd(const coeffs *c, float *p, const float *g, float *buf, size_t n)
{
    const float lr = c->lr, mu = c->mu, wd = c->wd;
    uint32_t bad = 0;
    if (mu == 0.0f) {
        for (size_t i = 0; i < n; i++) {
            p[i] -= lr * (g[i] + wd * p[i]);
            bad |= not_finite(p[i]);
        }
        return bad;
    }
    for (size_t i = 0; i < n; i++) {
        const float d = g[i] + wd * p[i];
        buf[i] = c->first ? d : mu * buf[i] + d;
        p[i] -= lr * (c->nesterov ? d + mu * buf[i] : buf[i]);
        bad |= not_finite(p[i]) | not_finite(buf[i]);
    }
    return bad;
}

LOOP adam(const coeffs *c, float *p, const float *g, float *m, float *v, size_t n)
{
    const float fb1 = c->fb1, fb2 = c->fb2, step = c->step, bc2 = c->bc2, eps = c->eps;
    const float decay = c->decay, l2 = c->l2;
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

LOOP rmsprop(const coeffs *c, float *p, const float *g, float *buf, float *v, size_t n)
{
    const float lr = c->lr, a = c->alpha, eps = c->eps, wd = c->wd, mu = c->mu;
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

LOOP update_any(const coeffs *c, float *p, const float *g, float *m, float *v, size_t n)
{
    switch (c->kind) {
    case FAN_OPTIMIZER_SGD: return sgd(c, p, g, m, n);
    case FAN_OPTIMIZER_ADAM:
    case FAN_OPTIMIZER_ADAMW: return adam(c, p, g, m, v, n);
    case FAN_OPTIMIZER_RMSPROP: return rmsprop(c, p, g, m, v, n);
    }
    return 0;
}

static uint32_t update_base(const coeffs *c, float *p, const float *g, float *m, float *v,
                            size_t n)
{
    return update_any(c, p, g, m, v, n);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* Adam's square root and two divisions per parameter are a third of a noise-pretraining step in
   SSE2; AVX2 and AVX-512 take 8 and 16 at a time. */
__attribute__((target("avx2"))) static uint32_t update_avx2(const coeffs *c, float *p,
                                                            const float *g, float *m, float *v,
                                                            size_t n)
{
    return update_any(c, p, g, m, v, n);
}

__attribute__((target("avx512f"))) static uint32_t update_avx512(const coeffs *c, float *p,
                                                                 const float *g, float *m,
                                                                 float *v, size_t n)
{
    return update_any(c, p, g, m, v, n);
}
#endif

static uint32_t update_chunk(fan__kernels isa, const coeffs *c, float *p, const float *g,
                             float *m, float *v, size_t n)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (isa == FAN__KERNELS_AVX512) return update_avx512(c, p, g, m, v, n);
    if (isa == FAN__KERNELS_AVX2) return update_avx2(c, p, g, m, v, n);
#endif
    (void)isa;
    return update_base(c, p, g, m, v, n);
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

/* Which state arrays an update writes under the current settings: only those are saved for an
   undo, and only those restored. */
static int writes_m(const fan_optimizer *o)
{
    switch (o->kind) {
    case FAN_OPTIMIZER_SGD: return o->hp[FAN_OPT_MOMENTUM] != 0.0;
    case FAN_OPTIMIZER_RMSPROP: return o->hp[FAN_OPT_MOMENTUM] > 0.0;
    case FAN_OPTIMIZER_ADAM:
    case FAN_OPTIMIZER_ADAMW: break;
    }
    return 1;
}

static int writes_v(const fan_optimizer *o) { return o->v != NULL; }

/* Elements saved and then updated at a time: the chunk's parameters and state (at most six
   arrays of 4 KB with the copies) are still in L1 when the update reads what the copy touched,
   so the undo copy costs no second trip to L2. */
#define UPDATE_CHUNK 1024

int fan__optimizer_update_range(fan_optimizer *opt, fan__kernels isa, float *p, const float *g,
                                size_t first, size_t count)
{
    const int save_m = writes_m(opt), save_v = writes_v(opt);
    const coeffs *c = &opt->step;
    uint32_t bad = 0;
    for (size_t i = first; i < first + count; i += UPDATE_CHUNK) {
        const size_t n = first + count - i < UPDATE_CHUNK ? first + count - i : UPDATE_CHUNK;
        memcpy(opt->saved_p + i, p + i, n * sizeof(float));
        if (save_m) memcpy(opt->saved_m + i, opt->m + i, n * sizeof(float));
        if (save_v) memcpy(opt->saved_v + i, opt->v + i, n * sizeof(float));
        bad |= update_chunk(isa, c, p + i, g + i, opt->m + i, opt->v != NULL ? opt->v + i : NULL,
                            n);
    }
    return bad == 0;
}

void fan__optimizer_begin_step(fan_optimizer *opt) { step_coeffs(opt, &opt->step); }

const float *fan__optimizer_end_step(fan_optimizer *opt)
{
    opt->saved_t = opt->t;
    opt->t++;
    return opt->saved_p;
}

double fan__optimizer_contraction(const fan_optimizer *opt)
{
    return opt->hp[FAN_OPT_LR] * opt->hp[FAN_OPT_WEIGHT_DECAY];
}

void fan__optimizer_rollback(fan_optimizer *opt, float *p, size_t n)
{
    memcpy(p, opt->saved_p, n * sizeof(float));
    if (writes_m(opt)) memcpy(opt->m, opt->saved_m, n * sizeof(float));
    if (writes_v(opt)) memcpy(opt->v, opt->saved_v, n * sizeof(float));
    opt->t = opt->saved_t;
}
