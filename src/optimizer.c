/*
 * optimizer.c - SGD (with classical or Nesterov momentum), Adam, AdamW and RMSprop as small loops
 * over flat parameter and gradient arrays, following PyTorch's update rules so that results
 * compare one to one. Optimizers only update: the training step, with its checks, is train.c's.
 */
#include "byteorder.h"
#include "kernels.h"
#include "options.h"

#include <math.h>
#include <string.h>
#include <zlib.h>

/* pi to double precision (M_PI is not ISO C). */
#define M_PI_VALUE 3.14159265358979323846

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
    fan__msg err_storage; /* err points at its text; see fan__fail */
    fan_optimizer_kind kind;
    double hp[FAN__OPT_COUNT];
    uint64_t t;
    double lr_now; /* the learning rate of the last update, from the schedule */
    /* The shape of the net the state was sized for. */
    size_t n_layers;
    size_t sizes[FAN_MAX_LAYERS + 1];
    size_t n_params;
    float *m; /* momentum buffer / Adam first moment */
    float *v; /* Adam second moment / RMSprop square average */
    /* A copy of the parameters and the state before the current step, so that a step whose
       result is not finite can be undone exactly (fan__optimizer_update_range / _rollback). */
    float *saved_p, *saved_m, *saved_v;
    uint64_t saved_t;
    coeffs step; /* of the step in progress (fan__optimizer_begin_step) */
};

/* Largest step count a schedule setting takes: 2^53, where doubles stop being exact integers. */
#define MAX_STEPS 9007199254740992.0

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
    [FAN_OPT_SCHEDULE] = {0.0, 3.0, FAN_SCHEDULE_CONSTANT},
    [FAN_OPT_STEP_SIZE] = {1.0, MAX_STEPS, 1.0},
    [FAN_OPT_GAMMA] = {0.0, 1.0, 0.1},
    [FAN_OPT_T_MAX] = {1.0, MAX_STEPS, 1.0},
    [FAN_OPT_LR_MIN] = {0.0, 1e6, 0.0},
    [FAN_OPT_WARMUP_STEPS] = {0.0, MAX_STEPS, 0.0},
};

/* Parameters that take whole numbers: enumerations, flags and step counts. */
static int integer_param(fan_optimizer_param p)
{
    return p == FAN_OPT_NESTEROV || p == FAN_OPT_SCHEDULE || p == FAN_OPT_STEP_SIZE ||
           p == FAN_OPT_T_MAX || p == FAN_OPT_WARMUP_STEPS;
}

fan_status fan_optimizer_param_bounds(fan_optimizer_param p, double *lo, double *hi, double *def)
{
    FAN__FAIL_IF(NULL, (unsigned)p >= FAN__OPT_COUNT, FAN_E_INVALID, "unknown parameter");
    if (lo) *lo = bounds[p].lo;
    if (hi) *hi = bounds[p].hi;
    if (def) *def = bounds[p].def;
    return FAN_OK;
}

/* The optimizer of a net of the given widths, with default hyperparameters and zero state. */
static fan_status opt_new(fan_optimizer **out, fan_optimizer_kind kind, const size_t *sizes,
                          size_t L, size_t n_params, const fan_allocator *alloc, char *err)
{
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    fan_optimizer *opt = fan__calloc(&al, 1, sizeof *opt);
    FAN__FAIL_IF(err, opt == NULL, FAN_E_NOMEM, "out of memory for the optimizer handle");
    opt->alloc = al;
    opt->err = fan__msg_init(&opt->err_storage);
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
        return fan__fail(err, FAN_E_NOMEM, "out of memory for the state of %zu parameters",
                         n_params);
    }
    *out = opt;
    return FAN_OK;
}

static int kind_known(fan_optimizer_kind kind)
{
    return kind == FAN_OPTIMIZER_SGD || kind == FAN_OPTIMIZER_ADAM ||
           kind == FAN_OPTIMIZER_ADAMW || kind == FAN_OPTIMIZER_RMSPROP;
}

static fan_status create(fan_optimizer **out, fan_optimizer_kind kind, const fan_net *net,
                         const fan_allocator *alloc, char *err)
{
    FAN__FAIL_IF(err, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(err, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(err, !kind_known(kind), FAN_E_INVALID,
                 "unknown optimizer kind %d (0 sgd, 1 adam, 2 adamw, 3 rmsprop)", (int)kind);
    return opt_new(out, kind, fan__net_sizes(net), fan_net_num_layers(net),
                   fan_net_num_params(net), alloc, err);
}

fan_status fan_optimizer_create(fan_optimizer **out, fan_optimizer_kind kind, const fan_net *net,
                                const fan_allocator *alloc)
{
    return create(out, kind, net, alloc, NULL);
}

fan_status fan_optimizer_create_ex(fan_optimizer **out, fan_optimizer_kind kind,
                                   const fan_net *net, const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK) st = create(out, kind, net, &o.alloc, o.err);
    return fan__opts_finish(&o, st);
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
    FAN__FAIL_IF(opt->err, integer_param(p) && value != floor(value), FAN_E_INVALID,
                 "parameter %d takes a whole number, not %g", (int)p, value);
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

/* ---- learning-rate schedules (formulas in fanoise.h, fan_optimizer_param) ------------------- */

static double lr_at(const double *hp, uint64_t t)
{
    const double lr = hp[FAN_OPT_LR];
    const uint64_t warmup = (uint64_t)hp[FAN_OPT_WARMUP_STEPS];
    if (t < warmup) return lr * (double)(t + 1) / (double)warmup;
    const uint64_t u = t - warmup;
    switch ((fan_schedule)hp[FAN_OPT_SCHEDULE]) {
    case FAN_SCHEDULE_CONSTANT: break;
    case FAN_SCHEDULE_STEP:
        return lr * pow(hp[FAN_OPT_GAMMA], (double)(u / (uint64_t)hp[FAN_OPT_STEP_SIZE]));
    case FAN_SCHEDULE_EXPONENTIAL: return lr * pow(hp[FAN_OPT_GAMMA], (double)u);
    case FAN_SCHEDULE_COSINE: {
        const double T = hp[FAN_OPT_T_MAX], lo = hp[FAN_OPT_LR_MIN];
        const double done = (double)u < T ? (double)u : T;
        return lo + (lr - lo) * (1.0 + cos(M_PI_VALUE * done / T)) / 2.0;
    }
    }
    return lr;
}

fan_status fan_optimizer_scheduled_lr(const fan_optimizer *opt, uint64_t step, double *lr)
{
    FAN__FAIL_IF(NULL, opt == NULL, FAN_E_NULL, "optimizer is NULL");
    FAN__FAIL_IF(opt->err, lr == NULL, FAN_E_NULL, "lr is NULL");
    *lr = lr_at(opt->hp, step);
    return FAN_OK;
}

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
    c->lr = (float)o->lr_now;
    c->mu = (float)o->hp[FAN_OPT_MOMENTUM];
    c->wd = (float)o->hp[FAN_OPT_WEIGHT_DECAY];
    c->eps = (float)o->hp[FAN_OPT_EPSILON];
    c->alpha = (float)o->hp[FAN_OPT_ALPHA];
    c->nesterov = o->hp[FAN_OPT_NESTEROV] != 0.0;
    /* PyTorch starts the momentum buffer at the first gradient (no dampening). */
    c->first = o->t == 0;
    const double lr = o->lr_now, b1 = o->hp[FAN_OPT_BETA1], b2 = o->hp[FAN_OPT_BETA2];
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

/* The update loops write p and the state slices they are given, and first copy every value they
   change into the same place of the undo arrays (sp, sm, sv: one pass reads each value once),
   and nothing else, so disjoint ranges can run on several threads at once. The arrays never
   overlap (restrict), without which GCC does not vectorise loops over seven of them. Each loop
   is compiled into every vector width below; separate IEEE operations in a fixed order give the
   same bits on all of them. */
#define LOOP static inline __attribute__((always_inline)) uint32_t

LOOP sgd(const coeffs *c, float *restrict p, const float *restrict g, float *restrict buf,
         size_t n, float *restrict sp, float *restrict sb)
{
    const float lr = c->lr, mu = c->mu, wd = c->wd;
    uint32_t bad = 0;
    if (mu == 0.0f) {
        for (size_t i = 0; i < n; i++) {
            sp[i] = p[i];
            p[i] -= lr * (g[i] + wd * p[i]);
            bad |= not_finite(p[i]);
        }
        return bad;
    }
    for (size_t i = 0; i < n; i++) {
        sp[i] = p[i];
        sb[i] = buf[i];
        const float d = g[i] + wd * p[i];
        buf[i] = c->first ? d : mu * buf[i] + d;
        p[i] -= lr * (c->nesterov ? d + mu * buf[i] : buf[i]);
        bad |= not_finite(p[i]) | not_finite(buf[i]);
    }
    return bad;
}

LOOP adam(const coeffs *c, float *restrict p, const float *restrict g, float *restrict m,
          float *restrict v, size_t n, float *restrict sp, float *restrict sm, float *restrict sv)
{
    const float fb1 = c->fb1, fb2 = c->fb2, step = c->step, bc2 = c->bc2, eps = c->eps;
    const float decay = c->decay, l2 = c->l2;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        sp[i] = p[i];
        sm[i] = m[i];
        sv[i] = v[i];
        p[i] *= decay;
        const float d = g[i] + l2 * p[i];
        m[i] = fb1 * m[i] + (1.0f - fb1) * d;
        v[i] = fb2 * v[i] + (1.0f - fb2) * d * d;
        p[i] -= step * m[i] / (sqrtf(v[i]) / bc2 + eps);
        bad |= not_finite(p[i]) | not_finite(m[i]) | not_finite(v[i]);
    }
    return bad;
}

LOOP rmsprop(const coeffs *c, float *restrict p, const float *restrict g, float *restrict buf,
             float *restrict v, size_t n, float *restrict sp, float *restrict sb,
             float *restrict sv)
{
    const float lr = c->lr, a = c->alpha, eps = c->eps, wd = c->wd, mu = c->mu;
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        sp[i] = p[i];
        sv[i] = v[i];
        const float d = g[i] + wd * p[i];
        v[i] = a * v[i] + (1.0f - a) * d * d;
        const float u = d / (sqrtf(v[i]) + eps);
        if (mu > 0.0f) {
            sb[i] = buf[i];
            buf[i] = mu * buf[i] + u;
            p[i] -= lr * buf[i];
        } else {
            p[i] -= lr * u;
        }
        bad |= not_finite(p[i]) | not_finite(v[i]) | not_finite(buf[i]);
    }
    return bad;
}

/* One range: p, g and the state from the range's start, and the undo arrays likewise. */
typedef struct range {
    float *p, *m, *v;
    const float *g;
    float *sp, *sm, *sv;
    size_t n;
} range;

LOOP update_any(const coeffs *c, const range *r)
{
    switch (c->kind) {
    case FAN_OPTIMIZER_SGD: return sgd(c, r->p, r->g, r->m, r->n, r->sp, r->sm);
    case FAN_OPTIMIZER_ADAM:
    case FAN_OPTIMIZER_ADAMW: return adam(c, r->p, r->g, r->m, r->v, r->n, r->sp, r->sm, r->sv);
    case FAN_OPTIMIZER_RMSPROP:
        return rmsprop(c, r->p, r->g, r->m, r->v, r->n, r->sp, r->sm, r->sv);
    }
    return 0;
}

static uint32_t update_base(const coeffs *c, const range *r) { return update_any(c, r); }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/* Adam's square root and two divisions per parameter are a third of a noise-pretraining step in
   SSE2; AVX2 and AVX-512 take 8 and 16 at a time. */
__attribute__((target("avx2"))) static uint32_t update_avx2(const coeffs *c, const range *r)
{
    return update_any(c, r);
}

__attribute__((target("avx512f"))) static uint32_t update_avx512(const coeffs *c, const range *r)
{
    return update_any(c, r);
}
#endif

static uint32_t update_range_isa(fan__kernels isa, const coeffs *c, const range *r)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (isa == FAN__KERNELS_AVX512) return update_avx512(c, r);
    if (isa == FAN__KERNELS_AVX2) return update_avx2(c, r);
#endif
    (void)isa;
    return update_base(c, r);
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

/* Which state arrays an update writes under the current settings (the loops' own tests, on the
   float coefficients): only those are restored by an undo. */
static int writes_m(const fan_optimizer *o)
{
    switch (o->kind) {
    case FAN_OPTIMIZER_SGD: return (float)o->hp[FAN_OPT_MOMENTUM] != 0.0f;
    case FAN_OPTIMIZER_RMSPROP: return (float)o->hp[FAN_OPT_MOMENTUM] > 0.0f;
    case FAN_OPTIMIZER_ADAM:
    case FAN_OPTIMIZER_ADAMW: break;
    }
    return 1;
}

static int writes_v(const fan_optimizer *o) { return o->v != NULL; }

int fan__optimizer_update_range(fan_optimizer *opt, fan__kernels isa, float *p, const float *g,
                                size_t first, size_t count)
{
    range r;
    r.p = p + first;
    r.g = g + first;
    r.m = opt->m + first;
    r.v = opt->v != NULL ? opt->v + first : NULL;
    r.sp = opt->saved_p + first;
    r.sm = opt->saved_m + first;
    r.sv = opt->saved_v != NULL ? opt->saved_v + first : NULL;
    r.n = count;
    return update_range_isa(isa, &opt->step, &r) == 0;
}

void fan__optimizer_begin_step(fan_optimizer *opt)
{
    opt->lr_now = lr_at(opt->hp, opt->t);
    step_coeffs(opt, &opt->step);
}

const float *fan__optimizer_end_step(fan_optimizer *opt)
{
    opt->saved_t = opt->t;
    opt->t++;
    return opt->saved_p;
}

double fan__optimizer_contraction(const fan_optimizer *opt)
{
    return opt->lr_now * opt->hp[FAN_OPT_WEIGHT_DECAY];
}

double fan__optimizer_last_lr(const fan_optimizer *opt) { return opt->lr_now; }

void fan__optimizer_rollback(fan_optimizer *opt, float *p, size_t n)
{
    memcpy(p, opt->saved_p, n * sizeof(float));
    if (writes_m(opt)) memcpy(opt->m, opt->saved_m, n * sizeof(float));
    if (writes_v(opt)) memcpy(opt->v, opt->saved_v, n * sizeof(float));
    opt->t = opt->saved_t;
}

/* ---- state blobs (docs/file-format.md, "Optimizer state") ---------------------------------- */

/* "FANOPTS" and 0x1a, as the model file's magic. */
static const unsigned char OPT_MAGIC[8] = {'F', 'A', 'N', 'O', 'P', 'T', 'S', 0x1a};
#define OPT_STATE_VERSION 1u
#define OPT_FIXED 40u /* bytes before the widths */

/* Writes the blob through w (counting only when w->p is NULL). */
static void opt_encode(const fan_optimizer *opt, fan__wcur *w)
{
    const size_t start = w->pos;
    fan__w_bytes(w, OPT_MAGIC, sizeof OPT_MAGIC);
    fan__w_u32(w, OPT_STATE_VERSION);
    fan__w_u32(w, (uint32_t)opt->kind);
    fan__w_u32(w, FAN__OPT_COUNT);
    fan__w_u32(w, (uint32_t)opt->n_layers);
    fan__w_u64(w, opt->t);
    fan__w_u64(w, (uint64_t)opt->n_params);
    for (size_t l = 0; l <= opt->n_layers; l++) fan__w_u64(w, (uint64_t)opt->sizes[l]);
    for (int i = 0; i < FAN__OPT_COUNT; i++) fan__w_f64(w, opt->hp[i]);
    fan__w_f32s(w, opt->m, opt->n_params);
    if (opt->v != NULL) fan__w_f32s(w, opt->v, opt->n_params);
    if (w->p != NULL) {
        const uint32_t crc =
            (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), w->p + start, w->pos - start);
        fan__put_u32(w->p + w->pos, crc);
    }
    w->pos += 4;
}

fan_status fan_optimizer_save_mem(const fan_optimizer *opt, void *buf, size_t cap,
                                  size_t *written)
{
    FAN__FAIL_IF(NULL, opt == NULL, FAN_E_NULL, "optimizer is NULL");
    FAN__FAIL_IF(opt->err, written == NULL, FAN_E_NULL, "written is NULL");
    fan__wcur count = {NULL, 0};
    opt_encode(opt, &count);
    *written = count.pos;
    if (buf == NULL) return FAN_OK;
    FAN__FAIL_IF(opt->err, cap < count.pos, FAN_E_SHAPE,
                 "buffer of %zu bytes; the optimizer's state needs %zu", cap, count.pos);
    fan__wcur w = {buf, 0};
    opt_encode(opt, &w);
    return FAN_OK;
}

static void read_f32s(float *dst, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = fan__get_f32(p + 4 * i);
}

fan_status fan__optimizer_load(fan_optimizer **out, const void *buf, size_t len,
                               const fan_allocator *alloc, char *err)
{
    *out = NULL;
    fan__rcur r = {buf, len, 0, 0};
    const unsigned char *magic = fan__r_take(&r, sizeof OPT_MAGIC);
    const uint32_t version = fan__r_u32(&r);
    const uint32_t kind = fan__r_u32(&r), n_hp = fan__r_u32(&r), L = fan__r_u32(&r);
    const uint64_t t = fan__r_u64(&r), n_params = fan__r_u64(&r);
    FAN__FAIL_IF(err, r.over || len < OPT_FIXED + 4, FAN_E_FORMAT,
                 "%zu bytes is shorter than the smallest optimizer state", len);
    FAN__FAIL_IF(err, memcmp(magic, OPT_MAGIC, sizeof OPT_MAGIC) != 0, FAN_E_FORMAT,
                 "not a libfanoise optimizer state (bad magic)");
    FAN__FAIL_IF(err, version != OPT_STATE_VERSION, FAN_E_VERSION,
                 "optimizer state version %u; this library reads version %u", (unsigned)version,
                 OPT_STATE_VERSION);
    FAN__FAIL_IF(err, L < 1 || L > FAN_MAX_LAYERS, FAN_E_FORMAT,
                 "layer count %u is outside [1, %d]", (unsigned)L, FAN_MAX_LAYERS);
    /* A later library may append hyperparameters; values it did not write keep their defaults
       here, and values this library does not know cannot be honoured. */
    FAN__FAIL_IF(err, n_hp > FAN__OPT_COUNT, FAN_E_VERSION,
                 "the state holds %u hyperparameters; this library knows %d (written by a newer "
                 "version)", (unsigned)n_hp, FAN__OPT_COUNT);
    size_t sizes[FAN_MAX_LAYERS + 1], expect = 0;
    for (uint32_t l = 0; l <= L; l++) {
        const uint64_t w = fan__r_u64(&r);
        FAN__FAIL_IF(err, r.over, FAN_E_FORMAT, "optimizer state truncated in its layer widths");
        FAN__FAIL_IF(err, w == 0 || w > FAN_MAX_WIDTH, FAN_E_LIMIT,
                     "layer width %llu is outside [1, FAN_MAX_WIDTH]", (unsigned long long)w);
        sizes[l] = (size_t)w;
    }
    for (uint32_t l = 0; l < L; l++) {
        size_t wn;
        FAN__FAIL_IF(err, !fan__mul_ok(sizes[l], sizes[l + 1], &wn) || wn > FAN_MAX_MATRIX,
                     FAN_E_LIMIT, "layer %u: the weight matrix exceeds FAN_MAX_MATRIX",
                     (unsigned)l);
        expect += wn + sizes[l + 1];
    }
    FAN__FAIL_IF(err, n_params != expect, FAN_E_FORMAT,
                 "the state declares %llu parameters; its layer widths give %zu",
                 (unsigned long long)n_params, expect);
    /* Known sizes from here on (each below 2^40 bytes): the exact length check comes before
       anything is allocated, so a short input never causes a large allocation. */
    const size_t buffers = kind == FAN_OPTIMIZER_SGD ? 1 : 2;
    const size_t need = r.pos + 8 * (size_t)n_hp + 4 * buffers * expect + 4;
    FAN__FAIL_IF(err, len != need, FAN_E_FORMAT,
                 "optimizer state has %zu bytes; its header describes %zu", len, need);
    const uint32_t stored = fan__get_u32((const unsigned char *)buf + len - 4);
    const uint32_t actual = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, len - 4);
    FAN__FAIL_IF(err, stored != actual, FAN_E_CHECKSUM,
                 "optimizer state CRC-32 mismatch (stored %08x, computed %08x)",
                 (unsigned)stored, (unsigned)actual);
    FAN__FAIL_IF(err, !kind_known((fan_optimizer_kind)kind), FAN_E_FORMAT,
                 "unknown optimizer kind %u", (unsigned)kind);
    double hp[FAN__OPT_COUNT];
    for (int i = 0; i < FAN__OPT_COUNT; i++) hp[i] = bounds[i].def;
    for (uint32_t i = 0; i < n_hp; i++) {
        hp[i] = fan__r_f64(&r);
        FAN__FAIL_IF(err, !(hp[i] >= bounds[i].lo && hp[i] <= bounds[i].hi), FAN_E_FORMAT,
                     "hyperparameter %u is %g, outside [%g, %g]", (unsigned)i, hp[i],
                     bounds[i].lo, bounds[i].hi);
    }
    for (int i = 0; i < FAN__OPT_COUNT; i++)
        FAN__FAIL_IF(err, integer_param((fan_optimizer_param)i) && hp[i] != floor(hp[i]),
                     FAN_E_FORMAT, "hyperparameter %d is %g, not a whole number", i, hp[i]);
    fan_optimizer *opt = NULL;
    FAN__CHECK(opt_new(&opt, (fan_optimizer_kind)kind, sizes, L, expect, alloc, err));
    memcpy(opt->hp, hp, sizeof hp);
    opt->t = t;
    read_f32s(opt->m, fan__r_take(&r, 4 * expect), expect);
    if (opt->v != NULL) read_f32s(opt->v, fan__r_take(&r, 4 * expect), expect);
    if (!fan__all_finite(opt->m, expect) || (opt->v && !fan__all_finite(opt->v, expect))) {
        fan_optimizer_free(opt);
        return fan__fail(err, FAN_E_FORMAT, "non-finite moment in the optimizer state");
    }
    *out = opt;
    return FAN_OK;
}

fan_status fan_optimizer_load_mem(fan_optimizer **out, const void *buf, size_t len,
                                  const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, buf == NULL, FAN_E_NULL, "buf is NULL");
    return fan__optimizer_load(out, buf, len, alloc, NULL);
}

fan_status fan_optimizer_load_mem_ex(fan_optimizer **out, const void *buf, size_t len,
                                     const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && out == NULL) st = fan__fail(o.err, FAN_E_NULL, "out is NULL");
    if (st == FAN_OK && buf == NULL) st = fan__fail(o.err, FAN_E_NULL, "buf is NULL");
    /* The state's buffers are as large as its bytes (the exact length is checked before
       anything is allocated), so the budget applies to len. */
    if (st == FAN_OK) st = fan__opts_check_budget(&o, len, "the optimizer state");
    if (st == FAN_OK) st = fan__optimizer_load(out, buf, len, &o.alloc, o.err);
    return fan__opts_finish(&o, st);
}
