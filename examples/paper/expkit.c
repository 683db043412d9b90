/*
 * expkit.c - command line, recipe, progress, training helpers and output of the experiment
 * programs. Data loading is in expkit_data.c. See expkit.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "expkit.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Progress lines: redraw a terminal line at most this often, and write a new line to a log
   file (non-terminal stderr) at most this often, so nohup logs stay readable. */
#define PROGRESS_TTY_PERIOD_S 0.25
#define PROGRESS_LOG_PERIOD_S 20.0

static const char *g_prog = "paper"; /* set once by ek_parse, for messages */

void ek_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", g_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *ek_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL) ek_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

double ek_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------- */
/* Command line */

static void format_value(const ek_option *o, char *buf, size_t cap)
{
    switch (o->type) {
    case EK_SIZE: snprintf(buf, cap, "%zu", *(const size_t *)o->ptr); break;
    case EK_U64: snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)o->ptr); break;
    case EK_DOUBLE: snprintf(buf, cap, "%g", *(const double *)o->ptr); break;
    case EK_STRING: snprintf(buf, cap, "%s", *(const char *const *)o->ptr); break;
    case EK_FLAG: snprintf(buf, cap, "%s", *(const int *)o->ptr ? "on" : "off"); break;
    }
}

static void usage(const ek_common *c, const char *summary, const ek_option *opts, size_t n)
{
    char v[64];
    printf("usage: %s [options]\n\n%s\n\noptions (default in brackets):\n", c->prog, summary);
    printf("  %-22s paired seeds (networks per condition) [%zu]\n", "--seeds N", c->seeds);
    printf("  %-22s first seed; seed k is S + k [%llu]\n", "--seed0 S", (unsigned long long)c->seed0);
    printf("  %-22s where CSV files go [%s]\n", "--out DIR", c->out);
    printf("  %-22s data directory (scripts/get-data.sh fills it) [%s]\n", "--data DIR", c->data_dir);
    printf("  %-22s no progress on stderr, only the summary\n", "--quiet");
    printf("  %-22s this text\n", "--help");
    for (size_t i = 0; i < n; i++) {
        format_value(&opts[i], v, sizeof v);
        char name[48];
        if (opts[i].type == EK_FLAG)
            snprintf(name, sizeof name, "--[no-]%s", opts[i].name);
        else
            snprintf(name, sizeof name, "--%s %s", opts[i].name,
                     opts[i].type == EK_STRING ? "S" : opts[i].type == EK_DOUBLE ? "X" : "N");
        printf("  %-22s %s [%s]\n", name, opts[i].help, v);
    }
}

static void set_value(const ek_option *o, const char *arg)
{
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case EK_SIZE:
    case EK_U64: {
        if (arg[0] == '-') ek_die("--%s: expected a non-negative integer, got '%s'", o->name, arg);
        const unsigned long long v = strtoull(arg, &end, 10);
        if (errno || end == arg || *end) ek_die("--%s: expected an integer, got '%s'", o->name, arg);
        if (o->type == EK_SIZE) {
            if (v > SIZE_MAX) ek_die("--%s: %s is too large", o->name, arg);
            *(size_t *)o->ptr = (size_t)v;
        } else {
            *(uint64_t *)o->ptr = (uint64_t)v;
        }
        break;
    }
    case EK_DOUBLE: {
        const double v = strtod(arg, &end);
        if (errno || end == arg || *end || !isfinite(v))
            ek_die("--%s: expected a number, got '%s'", o->name, arg);
        *(double *)o->ptr = v;
        break;
    }
    case EK_STRING: *(const char **)o->ptr = arg; break;
    case EK_FLAG: break;
    }
}

int ek_parse(int argc, char **argv, ek_common *c, const char *summary, const ek_option *opts,
             size_t n_opts)
{
    const char *slash = strrchr(argv[0], '/');
    c->prog = slash ? slash + 1 : argv[0];
    g_prog = c->prog;
    if (c->data_dir == NULL) c->data_dir = "data";
    c->t_start = ek_now();
    const ek_option common[] = {
        {"seeds", EK_SIZE, &c->seeds, ""},
        {"seed0", EK_U64, &c->seed0, ""},
        {"out", EK_STRING, &c->out, ""},
        {"data", EK_STRING, &c->data_dir, ""},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(c, summary, opts, n_opts);
            return 1;
        }
        if (strcmp(a, "--quiet") == 0) {
            c->quiet = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) ek_die("unexpected argument '%s' (see --help)", a);
        const char *name = a + 2;
        /* --name=value is accepted as well as --name value. */
        char key[64];
        const char *eq = strchr(name, '=');
        const size_t klen = eq ? (size_t)(eq - name) : strlen(name);
        if (klen >= sizeof key) ek_die("unknown option '%s' (see --help)", a);
        memcpy(key, name, klen);
        key[klen] = '\0';
        const ek_option *o = NULL;
        int negated = 0;
        for (size_t k = 0; k < sizeof common / sizeof common[0] && !o; k++)
            if (strcmp(key, common[k].name) == 0) o = &common[k];
        for (size_t k = 0; k < n_opts && !o; k++) {
            if (strcmp(key, opts[k].name) == 0) o = &opts[k];
            if (opts[k].type == EK_FLAG && strncmp(key, "no-", 3) == 0 &&
                strcmp(key + 3, opts[k].name) == 0) {
                o = &opts[k];
                negated = 1;
            }
        }
        if (o == NULL) ek_die("unknown option '%s' (see --help)", a);
        if (o->type == EK_FLAG) {
            if (eq) ek_die("--%s takes no value", key);
            *(int *)o->ptr = !negated;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (val == NULL) ek_die("--%s needs a value", key);
        set_value(o, val);
    }
    if (c->seeds == 0) ek_die("--seeds must be at least 1");
    return 0;
}

void ek_write_settings(const ek_common *c, const ek_option *opts, size_t n_opts)
{
    char v[64];
    FILE *f = ek_csv_open(c, "settings.txt", "");
    fprintf(f, "program = %s (libfanoise %s)\n", c->prog, fan_version_string());
    fprintf(f, "seeds = %zu\nseed0 = %llu\n", c->seeds, (unsigned long long)c->seed0);
    for (size_t i = 0; i < n_opts; i++) {
        format_value(&opts[i], v, sizeof v);
        fprintf(f, "%s = %s\n", opts[i].name, v);
    }
    ek_csv_close(f);
}

size_t ek_split(const char *s, char *buf, size_t buf_cap, const char **tok, size_t cap)
{
    const size_t len = strlen(s);
    if (len + 1 > buf_cap) ek_die("list '%s' is too long", s);
    memcpy(buf, s, len + 1);
    size_t n = 0;
    for (char *p = buf; *p;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (*p) {
            if (n == cap) ek_die("list '%s' has more than %zu entries", s, cap);
            tok[n++] = p;
        }
        if (!comma) break;
        p = comma + 1;
    }
    if (n == 0) ek_die("empty list '%s'", s);
    return n;
}

size_t ek_parse_sizes(const char *s, size_t *v, size_t cap)
{
    char buf[256];
    const char *tok[32];
    const size_t n = ek_split(s, buf, sizeof buf, tok, cap < 32 ? cap : 32);
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        const unsigned long long x = strtoull(tok[i], &end, 10);
        if (end == tok[i] || *end || tok[i][0] == '-') ek_die("bad number '%s' in '%s'", tok[i], s);
        v[i] = (size_t)x;
    }
    return n;
}

size_t ek_parse_doubles(const char *s, double *v, size_t cap)
{
    char buf[256];
    const char *tok[32];
    const size_t n = ek_split(s, buf, sizeof buf, tok, cap < 32 ? cap : 32);
    for (size_t i = 0; i < n; i++) {
        char *end = NULL;
        v[i] = strtod(tok[i], &end);
        if (end == tok[i] || *end || !isfinite(v[i])) ek_die("bad number '%s' in '%s'", tok[i], s);
    }
    return n;
}

/* ---------------------------------------------------------------------------------------- */
/* Recipe */

void ek_recipe_defaults(ek_recipe *r)
{
    r->width = 100;
    r->depth = 2;
    r->init = "he";
    r->noise_steps = 8000;
    r->noise_batch = 64;
    r->noise_opt = "adam";
    r->noise_lr = 1e-4;
    r->noise_momentum = 0.0;
    r->noise_kind = "gaussian";
    r->noise_labels = "hard";
    r->epochs = 5;
    r->batch = 64;
    r->train_n = 10000;
    /* Adam in the data phase: with plain SGD at lr 0.01 (the first recipe tried) FA itself is
       unstable at depth 4 and the final-accuracy differences need many seeds; see
       docs/reproduction.md, "Recipes tried". */
    r->opt = "adam";
    r->lr = 1e-3;
    r->momentum = 0.0;
    r->evals_per_epoch = 4;
}

void ek_recipe_options(ek_recipe *r, ek_option *o)
{
    const ek_option list[EK_RECIPE_NOPTS] = {
        {"width", EK_SIZE, &r->width, "hidden layer width"},
        {"depth", EK_SIZE, &r->depth, "weight layers (2 = 784-W-10)"},
        {"init", EK_STRING, &r->init, "initialiser of W and B: he | xavier | lecun"},
        {"noise-steps", EK_SIZE, &r->noise_steps, "noise pretraining steps"},
        {"noise-batch", EK_SIZE, &r->noise_batch, "noise batch size"},
        {"noise-opt", EK_STRING, &r->noise_opt, "noise optimizer: sgd|momentum|adam|adamw|rmsprop"},
        {"noise-lr", EK_DOUBLE, &r->noise_lr, "noise learning rate"},
        {"noise-momentum", EK_DOUBLE, &r->noise_momentum, "momentum of the noise optimizer (momentum: 0.9 if 0)"},
        {"noise-kind", EK_STRING, &r->noise_kind, "noise inputs: gaussian | uniform"},
        {"noise-labels", EK_STRING, &r->noise_labels, "noise labels: hard | soft"},
        {"epochs", EK_SIZE, &r->epochs, "data training epochs"},
        {"batch", EK_SIZE, &r->batch, "data batch size"},
        {"train-n", EK_SIZE, &r->train_n, "training images (0 = all)"},
        {"opt", EK_STRING, &r->opt, "data optimizer: sgd|momentum|adam|adamw|rmsprop"},
        {"lr", EK_DOUBLE, &r->lr, "data learning rate"},
        {"momentum", EK_DOUBLE, &r->momentum, "momentum of sgd/momentum/rmsprop (momentum: 0.9 if 0)"},
        {"evals-per-epoch", EK_SIZE, &r->evals_per_epoch, "test evaluations per epoch"},
    };
    memcpy(o, list, sizeof list);
}

fan_net *ek_make_net(const ek_recipe *r, size_t inputs, size_t classes, fan_rule rule,
                     uint64_t weight_seed, uint64_t feedback_seed)
{
    if (r->depth < 1 || r->depth > FAN_MAX_LAYERS) ek_die("--depth must be in 1..%d", FAN_MAX_LAYERS);
    size_t sizes[FAN_MAX_LAYERS + 1];
    sizes[0] = inputs;
    for (size_t i = 1; i < r->depth; i++) sizes[i] = r->width;
    sizes[r->depth] = classes;
    fan_init init;
    if (strcmp(r->init, "he") == 0)
        init = FAN_INIT_HE_NORMAL;
    else if (strcmp(r->init, "xavier") == 0)
        init = FAN_INIT_XAVIER_UNIFORM;
    else if (strcmp(r->init, "lecun") == 0)
        init = FAN_INIT_LECUN_NORMAL;
    else
        ek_die("--init: unknown initialiser '%s'", r->init);
    fan_net *net = NULL;
    EK_TRY(fan_net_create(&net, sizes, r->depth + 1, NULL), "");
    EK_TRY(fan_net_set_initializer(net, FAN_MATRIX_WEIGHTS, init), fan_net_errmsg(net));
    EK_TRY(fan_net_set_initializer(net, FAN_MATRIX_FEEDBACK, init), fan_net_errmsg(net));
    EK_TRY(fan_net_init(net, weight_seed, feedback_seed), fan_net_errmsg(net));
    EK_TRY(fan_net_set_rule(net, rule), fan_net_errmsg(net));
    return net;
}

/* Momentum optimizer's default when --momentum is left at 0 (the usual PyTorch choice). */
#define DEFAULT_MOMENTUM 0.9

fan_optimizer *ek_make_opt(const char *name, double lr, double momentum, const fan_net *net)
{
    fan_optimizer_kind kind;
    int use_momentum = 0;
    if (strcmp(name, "sgd") == 0) {
        kind = FAN_OPTIMIZER_SGD;
        use_momentum = momentum != 0.0;
    } else if (strcmp(name, "momentum") == 0) {
        kind = FAN_OPTIMIZER_SGD;
        use_momentum = 1;
        if (momentum == 0.0) momentum = DEFAULT_MOMENTUM;
    } else if (strcmp(name, "adam") == 0) {
        kind = FAN_OPTIMIZER_ADAM;
    } else if (strcmp(name, "adamw") == 0) {
        kind = FAN_OPTIMIZER_ADAMW;
    } else if (strcmp(name, "rmsprop") == 0) {
        kind = FAN_OPTIMIZER_RMSPROP;
        use_momentum = momentum != 0.0;
    } else {
        ek_die("unknown optimizer '%s' (sgd, momentum, adam, adamw, rmsprop)", name);
    }
    fan_optimizer *opt = NULL;
    EK_TRY(fan_optimizer_create(&opt, kind, net, NULL), "");
    EK_TRY(fan_optimizer_set(opt, FAN_OPT_LR, lr), fan_optimizer_errmsg(opt));
    if (use_momentum) EK_TRY(fan_optimizer_set(opt, FAN_OPT_MOMENTUM, momentum), fan_optimizer_errmsg(opt));
    return opt;
}

fan_iter *ek_make_noise(const ek_recipe *r, size_t dim, size_t classes, uint64_t seed)
{
    fan_iter *it = NULL;
    EK_TRY(fan_iter_create_noise(&it, dim, classes, r->noise_batch, seed, NULL), "");
    if (strcmp(r->noise_kind, "uniform") == 0)
        EK_TRY(fan_iter_set(it, FAN_ITER_NOISE_KIND, FAN_NOISE_UNIFORM), fan_iter_errmsg(it));
    else if (strcmp(r->noise_kind, "gaussian") != 0)
        ek_die("--noise-kind: '%s' is neither gaussian nor uniform", r->noise_kind);
    if (strcmp(r->noise_labels, "soft") == 0)
        EK_TRY(fan_iter_set(it, FAN_ITER_LABEL_MODE, FAN_LABELS_SOFT), fan_iter_errmsg(it));
    else if (strcmp(r->noise_labels, "hard") != 0)
        ek_die("--noise-labels: '%s' is neither hard nor soft", r->noise_labels);
    return it;
}

/* ---------------------------------------------------------------------------------------- */
/* Progress */

void ek_progress_init(ek_progress *pg, const ek_common *c, double total_units)
{
    memset(pg, 0, sizeof *pg);
    pg->quiet = c->quiet;
    pg->tty = isatty(fileno(stderr));
    pg->phase = "";
    pg->total_units = total_units;
    pg->t0 = ek_now();
    pg->last_print = pg->t0;
}

void ek_progress_phase(ek_progress *pg, const char *phase)
{
    pg->phase = phase;
}

static void fmt_time(double s, char *buf, size_t cap)
{
    if (!(s >= 0.0) || s > 1e7) {
        snprintf(buf, cap, "--:--");
        return;
    }
    const unsigned long t = (unsigned long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%lu:%02lu:%02lu", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%lu:%02lu", t / 60, t % 60);
}

static void print_progress(ek_progress *pg, double loss, int force)
{
    if (pg->quiet) return;
    const double now = ek_now();
    const double period = pg->tty ? PROGRESS_TTY_PERIOD_S : PROGRESS_LOG_PERIOD_S;
    if (!force && now - pg->last_print < period) return;
    pg->last_print = now;
    const double done = pg->done_units + pg->call_units;
    const double frac = pg->total_units > 0 ? done / pg->total_units : 0.0;
    const double el = now - pg->t0;
    char e[32], eta[32];
    fmt_time(el, e, sizeof e);
    fmt_time(frac > 0.001 ? el * (1.0 - frac) / frac : -1.0, eta, sizeof eta);
    fprintf(stderr, "%s%-34.34s %5.1f%%  elapsed %s  ETA %s  loss %.4f%s", pg->tty ? "\r" : "",
            pg->phase, 100.0 * (frac > 1.0 ? 1.0 : frac), e, eta, loss, pg->tty ? "\033[K" : "\n");
    fflush(stderr);
}

int ek_progress_cb(const fan_progress *p, void *user)
{
    ek_progress *pg = user;
    pg->call_units = (double)p->step;
    print_progress(pg, p->loss, 0);
    return 0;
}

void ek_progress_add(ek_progress *pg, double units)
{
    pg->done_units += units;
    pg->call_units = 0.0;
}

void ek_progress_done(ek_progress *pg)
{
    if (pg->quiet) return;
    char e[32];
    fmt_time(ek_now() - pg->t0, e, sizeof e);
    fprintf(stderr, "%sdone in %s%s\n", pg->tty ? "\r" : "", e, pg->tty ? "\033[K" : "");
}

/* ---------------------------------------------------------------------------------------- */
/* Training */

void ek_noise_begin(ek_noise_run *nr, const ek_recipe *r, const fan_net *net, uint64_t seed)
{
    nr->it = ek_make_noise(r, fan_net_input_size(net), fan_net_output_size(net), seed);
    nr->opt = ek_make_opt(r->noise_opt, r->noise_lr, r->noise_momentum, net);
    nr->done = 0;
}

typedef struct loss_acc {
    ek_progress *pg;
    double sum;
} loss_acc;

static int noise_cb(const fan_progress *p, void *user)
{
    loss_acc *la = user;
    la->sum += p->loss;
    return la->pg ? ek_progress_cb(p, la->pg) : 0;
}

double ek_noise_steps(ek_noise_run *nr, fan_net *net, size_t steps, ek_progress *pg)
{
    if (steps == 0) return NAN;
    loss_acc la = {pg, 0.0};
    EK_TRY(fan_pretrain_noise(net, nr->opt, nr->it, steps, noise_cb, &la), fan_net_errmsg(net));
    if (pg) ek_progress_add(pg, (double)steps);
    nr->done += steps;
    return la.sum / (double)steps;
}

void ek_noise_end(ek_noise_run *nr)
{
    fan_iter_free(nr->it);
    fan_optimizer_free(nr->opt);
    nr->it = NULL;
    nr->opt = NULL;
}

void ek_noise_pretrain(fan_net *net, const ek_recipe *r, uint64_t seed, ek_progress *pg)
{
    ek_noise_run nr;
    ek_noise_begin(&nr, r, net, seed);
    (void)ek_noise_steps(&nr, net, r->noise_steps, pg);
    ek_noise_end(&nr);
}

size_t ek_curve_points(const ek_recipe *r)
{
    return 1 + r->epochs * r->evals_per_epoch;
}

static void eval_point(fan_net *net, const fan_dataset *train, const fan_dataset *test,
                       int eval_train, double epoch, ek_point *pt)
{
    pt->epoch = epoch;
    EK_TRY(fan_net_evaluate(net, test, &pt->test_loss, &pt->test_acc), fan_net_errmsg(net));
    pt->train_loss = pt->train_acc = NAN;
    if (eval_train)
        EK_TRY(fan_net_evaluate(net, train, &pt->train_loss, &pt->train_acc), fan_net_errmsg(net));
}

size_t ek_train_curve(fan_net *net, const ek_recipe *r, const fan_dataset *train,
                      const fan_dataset *test, uint64_t shuffle_seed, int eval_train,
                      ek_point *pts, ek_progress *pg)
{
    if (r->evals_per_epoch == 0) ek_die("--evals-per-epoch must be at least 1");
    fan_iter *it = NULL;
    EK_TRY(fan_iter_create_batches(&it, train, r->batch, shuffle_seed, NULL), "");
    fan_optimizer *opt = ek_make_opt(r->opt, r->lr, r->momentum, net);
    const size_t bpe = fan_iter_batches_per_epoch(it);
    size_t np = 0, done = 0;
    eval_point(net, train, test, eval_train, 0.0, &pts[np++]);
    for (size_t e = 0; e < r->epochs; e++) {
        for (size_t k = 1; k <= r->evals_per_epoch; k++) {
            /* Evaluation points at equal fractions of the epoch, rounded to whole batches. */
            const size_t target = e * bpe + (k * bpe + r->evals_per_epoch / 2) / r->evals_per_epoch;
            const size_t steps = target - done;
            if (steps > 0) {
                EK_TRY(fan_train_steps(net, opt, it, steps, pg ? ek_progress_cb : NULL, pg),
                       fan_net_errmsg(net));
                if (pg) ek_progress_add(pg, (double)steps);
                done = target;
            }
            eval_point(net, train, test, eval_train, (double)done / (double)bpe, &pts[np++]);
        }
    }
    fan_optimizer_free(opt);
    fan_iter_free(it);
    return np;
}

double ek_curve_auc(const ek_point *pts, size_t n)
{
    /* The AUC skips the point before training: every condition starts near chance there, and
       including it would weight the first evaluation interval by an untrained net. */
    if (n < 2) return NAN;
    double *x = ek_xcalloc(n, sizeof *x), *y = ek_xcalloc(n, sizeof *y);
    for (size_t i = 1; i < n; i++) {
        x[i - 1] = pts[i].epoch;
        y[i - 1] = pts[i].test_acc;
    }
    const double auc = st_auc_normalized(x, y, n - 1);
    free(x);
    free(y);
    return auc;
}

double ek_angle(const fan_net *net, size_t layer, double *matrix_deg, double *per_unit, size_t n)
{
    double mean = NAN;
    EK_TRY(fan_diag_alignment(net, layer, per_unit, per_unit ? n : 0, &mean, matrix_deg),
           fan_net_errmsg(net));
    return mean;
}

double ek_erank(const fan_net *net, size_t layer)
{
    double e = NAN;
    EK_TRY(fan_diag_effective_rank(net, layer, FAN_MATRIX_WEIGHTS, &e), fan_net_errmsg(net));
    return e;
}

/* ---------------------------------------------------------------------------------------- */
/* Output */

void ek_mkdir_out(const ek_common *c)
{
    char path[1024];
    const size_t len = strlen(c->out);
    if (len == 0 || len >= sizeof path) ek_die("--out: bad directory '%s'", c->out);
    memcpy(path, c->out, len + 1);
    for (char *p = path + 1;; p++) {
        const char ch = *p;
        if (ch == '/' || ch == '\0') {
            *p = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST)
                ek_die("cannot create directory %s: %s", path, strerror(errno));
            *p = ch;
        }
        if (ch == '\0') break;
    }
}

FILE *ek_csv_open(const ek_common *c, const char *name, const char *header)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", c->out, name);
    FILE *f = fopen(path, "w");
    if (f == NULL) ek_die("cannot write %s: %s", path, strerror(errno));
    if (header[0]) fprintf(f, "%s\n", header);
    return f;
}

void ek_csv_close(FILE *f)
{
    if (ferror(f) | fclose(f)) ek_die("writing a CSV file failed (disk full?)");
}

const char *ek_fmt_msd(const double *x, size_t n, int decimals, char *buf, size_t cap)
{
    if (n >= 2)
        snprintf(buf, cap, "%.*f +- %.*f", decimals, st_mean(x, n), decimals, st_sd(x, n));
    else
        snprintf(buf, cap, "%.*f", decimals, n ? x[0] : NAN);
    return buf;
}

void ek_write_bands(const ek_common *c, const char *file, const char *xname, const double *x,
                    size_t points, size_t seeds, const ek_series *s, size_t ns)
{
    FILE *f = ek_csv_open(c, file, "");
    fprintf(f, "%s", xname);
    for (size_t k = 0; k < ns; k++)
        fprintf(f, ",%s_mean,%s_sd,%s_lo,%s_hi", s[k].name, s[k].name, s[k].name, s[k].name);
    fputc('\n', f);
    double *col = ek_xcalloc(seeds, sizeof *col);
    for (size_t p = 0; p < points; p++) {
        fprintf(f, "%.6g", x[p]);
        for (size_t k = 0; k < ns; k++) {
            size_t n = 0;
            for (size_t sd = 0; sd < seeds; sd++) {
                const double v = s[k].v[sd * points + p];
                if (!isnan(v)) col[n++] = v;
            }
            const double m = n ? st_mean(col, n) : NAN, d = n >= 2 ? st_sd(col, n) : 0.0;
            fprintf(f, ",%.6g,%.6g,%.6g,%.6g", m, d, m - d, m + d);
        }
        fputc('\n', f);
    }
    free(col);
    ek_csv_close(f);
}

void ek_finish(const ek_common *c)
{
    printf("CSV written to %s/ (took %.1f s)\n", c->out, ek_now() - c->t_start);
}
