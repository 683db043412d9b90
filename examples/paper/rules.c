/*
 * rules - does random-noise pretraining help every learning rule without weight transport, and
 * through what? For each rule (BP, FA, DFA, uSF, brSF, frSF, KP, WM), dataset and depth, paired
 * nets are trained on data with and without noise pretraining (same W, B and batches), over
 * several seeds. Reports test-accuracy AUC and final accuracy, the alignment of the last and the
 * first hidden layer at initialisation, after noise and after data, the effective rank of the
 * last layer's W, and the angle between the rule's error signal and BP's at the first hidden
 * layer after data training, with paired t-tests of noise against no noise.
 *
 * The data-phase recipe (optimizer and learning rate) is chosen per rule and dataset on a
 * validation split carved from the training data, never on the test set: every recipe of the
 * grid is tried on separate selection seeds, with and without noise, and the one of highest mean
 * validation AUC is used for the final runs, which train on the same training part and report
 * the test set. Every recipe tried and its validation score is written to recipes.csv.
 *
 * WM nets run a mirror phase (fan_net_mirror) at the start of each phase and every
 * --mirror-every steps, in noise and data training alike.
 *
 * A run that diverges (a step fails with FAN_E_NUMERIC: the library changes nothing on such a
 * step) stops training there; its remaining evaluation points are those of the net as it was, and
 * results.csv marks it. Weights can also stay finite yet grow so large that the test images
 * overflow a forward pass (fan_net_evaluate then fails with FAN_E_NUMERIC): that run is marked
 * diverged too, stops training, and each evaluation that overflows counts at chance accuracy
 * (1 / classes: the net gives no prediction); its error-signal angle is NaN. With --resume, a
 * run that was interrupted continues: the recipes of recipes.csv are reused and the seeds already
 * in results.csv are read back instead of rerun.
 */
#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_RULES 8
#define MAX_DATASETS 2
#define MAX_DEPTHS 4
#define N_RECIPES 5
#define FEEDBACK_SEED_OFFSET 1000
#define NOISE_SEED_OFFSET 2000
#define SHUFFLE_SEED_OFFSET 4000
#define MIRROR_SEED_OFFSET 6000
/* Selection runs use seeds of their own, so that the final runs' seeds never informed a choice. */
#define SELECTION_SEED0 101
#define DELTA_ROWS 256

static const fan_rule RULES[N_RULES] = {FAN_RULE_BP,   FAN_RULE_FA,   FAN_RULE_DFA,
                                        FAN_RULE_USF,  FAN_RULE_BRSF, FAN_RULE_FRSF,
                                        FAN_RULE_KP,   FAN_RULE_WM};

/* The grid of data-phase recipes each rule chooses from. The weight-decay entry is there for KP,
   whose B converges to W only through weight decay (W - B shrinks by lr * wd per step); every
   rule may choose it. */
static const struct {
    const char *opt;
    double lr, wd;
} GRID[N_RECIPES] = {
    {"sgd", 0.01, 0}, {"sgd", 0.05, 0}, {"adam", 3e-4, 0}, {"adam", 1e-3, 0}, {"sgd", 0.05, 0.01}};

typedef struct settings {
    ek_recipe r;
    size_t val_n;          /* validation samples carved from the training set */
    size_t select_seeds;   /* seeds per recipe in the selection */
    size_t mirror_every;   /* WM: training steps between mirror phases */
    size_t mirror_steps;   /* WM: steps of one mirror phase */
    double mirror_lr, mirror_decay;
    const char *datasets, *depths, *rules;
    int resume; /* reuse recipes.csv and the finished seeds of results.csv in --out */
} settings;

/* ---- WM's mirror phases, run from the progress callback between training steps ----------- */

typedef struct mirror_hook {
    fan_net *net;
    const settings *s;
    uint64_t seed;
    size_t since; /* steps since the last mirror phase */
    ek_progress *pg;
} mirror_hook;

static void mirror_now(mirror_hook *h)
{
    EK_TRY(fan_net_mirror(h->net, h->s->mirror_steps, h->s->r.noise_batch, h->s->mirror_lr,
                          h->s->mirror_decay, h->seed++),
           fan_net_errmsg(h->net));
    h->since = 0;
}

/* Callbacks may change the net between steps: the training loop reads B afresh every step. */
static int hook_cb(const fan_progress *p, void *user)
{
    mirror_hook *h = user;
    if (h->s != NULL && ++h->since >= h->s->mirror_every) mirror_now(h);
    return h->pg ? ek_progress_cb(p, h->pg) : 0;
}

static mirror_hook hook_for(fan_net *net, const settings *s, uint64_t seed, ek_progress *pg)
{
    mirror_hook h = {net, fan_net_rule(net) == FAN_RULE_WM ? s : NULL, seed, 0, pg};
    if (h.s != NULL) mirror_now(&h);
    return h;
}

/* ---- one run ------------------------------------------------------------------------------ */

/* A training call that may diverge: FAN_E_NUMERIC (the failed step changed nothing) ends the
   run's training and returns 1; any other failure is a bug and ends the program. */
static int diverged(fan_status st, const fan_net *net)
{
    if (st == FAN_E_NUMERIC) return 1;
    EK_TRY(st, fan_net_errmsg(net));
    return 0;
}

/* Evaluates the net on eval into p; returns 1 if the forward pass overflowed, in which case the
   point counts at chance accuracy (see the top of the file). */
static int evaluate_point(fan_net *net, const fan_dataset *eval, ek_point *p)
{
    const fan_status st = fan_net_evaluate(net, eval, &p->test_loss, &p->test_acc);
    if (st == FAN_E_NUMERIC) {
        p->test_loss = NAN;
        p->test_acc = 1.0 / (double)fan_net_output_size(net);
        return 1;
    }
    EK_TRY(st, fan_net_errmsg(net));
    return 0;
}

/* Returns 1 if the noise phase diverged (the net is then as it was before the failing step). */
static int noise_phase(fan_net *net, const settings *s, uint64_t seed, ek_progress *pg)
{
    const ek_recipe *r = &s->r;
    fan_iter *it = ek_make_noise(r, fan_net_input_size(net), fan_net_output_size(net), seed);
    fan_optimizer *opt = ek_make_opt(r->noise_opt, r->noise_lr, r->noise_momentum, net);
    mirror_hook h = hook_for(net, s, seed + MIRROR_SEED_OFFSET, pg);
    const int bad = diverged(fan_pretrain_noise(net, opt, it, r->noise_steps, hook_cb, &h), net);
    if (pg) ek_progress_add(pg, (double)r->noise_steps);
    fan_optimizer_free(opt);
    fan_iter_free(it);
    return bad;
}

/* Trains on `train` with one recipe, evaluating on `eval` at evals_per_epoch points per epoch;
   returns the accuracy AUC and the final accuracy, and 1 if training diverged. */
static int data_phase(fan_net *net, const settings *s, size_t recipe, const fan_dataset *train,
                      const fan_dataset *eval, uint64_t seed, ek_progress *pg, double *auc,
                      double *final_acc)
{
    int bad = 0;
    const ek_recipe *r = &s->r;
    fan_iter *it = NULL;
    EK_TRY(fan_iter_create_batches(&it, train, r->batch, seed + SHUFFLE_SEED_OFFSET, NULL), "");
    fan_optimizer *opt = ek_make_opt(GRID[recipe].opt, GRID[recipe].lr, r->momentum, net);
    EK_TRY(fan_optimizer_set(opt, FAN_OPT_WEIGHT_DECAY, GRID[recipe].wd),
           fan_optimizer_errmsg(opt));
    mirror_hook h = hook_for(net, s, seed + 2 * MIRROR_SEED_OFFSET, pg);
    const size_t bpe = fan_iter_batches_per_epoch(it), np = ek_curve_points(r);
    ek_point *pts = ek_xcalloc(np, sizeof *pts);
    size_t done = 0, k = 0;
    pts[k].epoch = 0;
    bad |= evaluate_point(net, eval, &pts[k]);
    k++;
    for (size_t e = 0; e < r->epochs; e++)
        for (size_t q = 1; q <= r->evals_per_epoch; q++) {
            const size_t target =
                e * bpe + (q * bpe + r->evals_per_epoch / 2) / r->evals_per_epoch;
            if (target > done) {
                if (!bad)
                    bad = diverged(fan_train_steps(net, opt, it, target - done, hook_cb, &h),
                                   net);
                if (pg) ek_progress_add(pg, (double)(target - done));
                done = target;
            }
            /* After a divergence the points are those of the net as training left it. */
            pts[k].epoch = (double)done / (double)bpe;
            bad |= evaluate_point(net, eval, &pts[k]);
            k++;
        }
    *auc = ek_curve_auc(pts, k);
    *final_acc = pts[k - 1].test_acc;
    free(pts);
    fan_optimizer_free(opt);
    fan_iter_free(it);
    return bad;
}

/* A fresh net of the recipe's shape under `rule`. */
static fan_net *fresh_net(const settings *s, size_t depth, fan_rule rule, uint64_t seed)
{
    ek_recipe r = s->r;
    r.depth = depth;
    return ek_make_net(&r, 784, 10, rule, seed, seed + FEEDBACK_SEED_OFFSET);
}

/* A copy of a start net to train on data, so one noise run serves every recipe and dataset. */
static fan_net *copy_of(const fan_net *net)
{
    fan_net *c = NULL;
    EK_TRY(fan_net_clone(&c, net), fan_net_errmsg(net));
    return c;
}

/* ---- the recipe selection ----------------------------------------------------------------- */

/* Start nets of the selection seeds at depth 2: [seed][0] fresh, [seed][1] after noise. */
typedef struct selection_nets {
    fan_net *net[8][2];
    size_t n;
} selection_nets;

static void selection_begin(selection_nets *sn, const settings *s, fan_rule rule, ek_progress *pg)
{
    sn->n = s->select_seeds;
    for (size_t si = 0; si < sn->n; si++) {
        const uint64_t seed = SELECTION_SEED0 + si;
        sn->net[si][0] = fresh_net(s, 2, rule, seed);
        sn->net[si][1] = copy_of(sn->net[si][0]);
        (void)noise_phase(sn->net[si][1], s, seed + NOISE_SEED_OFFSET, pg);
    }
}

static void selection_end(selection_nets *sn)
{
    for (size_t si = 0; si < sn->n; si++) {
        fan_net_free(sn->net[si][0]);
        fan_net_free(sn->net[si][1]);
    }
}

/* Returns the index of the chosen recipe for (dataset, rule); writes every score to csv. */
static size_t select_recipe(const settings *s, const char *dataset, fan_rule rule,
                            const selection_nets *sn, const fan_dataset *train,
                            const fan_dataset *val, FILE *csv, ek_progress *pg)
{
    double best = -1.0, score[N_RECIPES] = {0};
    size_t chosen = 0;
    for (size_t g = 0; g < N_RECIPES; g++) {
        double sum = 0.0;
        for (size_t si = 0; si < sn->n; si++)
            for (int noise = 0; noise <= 1; noise++) {
                fan_net *net = copy_of(sn->net[si][noise]);
                double auc, fin;
                (void)data_phase(net, s, g, train, val, SELECTION_SEED0 + si, pg, &auc, &fin);
                sum += isfinite(auc) ? auc : 0.0;
                fan_net_free(net);
            }
        score[g] = sum / (double)(2 * sn->n);
        if (score[g] > best) {
            best = score[g];
            chosen = g;
        }
    }
    for (size_t g = 0; g < N_RECIPES; g++)
        fprintf(csv, "%s,%s,%s,%g,%g,%.5f,%d\n", dataset, fan_rule_name(rule), GRID[g].opt,
                GRID[g].lr, GRID[g].wd, score[g], g == chosen);
    fflush(csv);
    return chosen;
}

/* ---- the study ---------------------------------------------------------------------------- */

/* Per (dataset, depth, rule): [cond][seed] results. */
typedef struct rule_cell {
    double *auc[2], *fin[2];
    double *last0[2], *last_noise[2], *last1[2]; /* last layer: init, after noise, after data */
    double *hid0[2], *hid_noise[2], *hid1[2];   /* first hidden layer (layer 1) */
    double *erank_noise[2], *erank1[2];          /* W of the last layer */
    double *delta1[2];                           /* error-signal angle to BP at layer 1, final */
    double *diverged[2];                         /* 1 if the noise or data phase diverged */
} rule_cell;

static void cell_alloc(rule_cell *c, size_t seeds)
{
    double **all[] = {c->auc,   c->fin,       c->last0,       c->last_noise, c->last1,
                      c->hid0,  c->hid_noise, c->hid1,        c->erank_noise, c->erank1,
                      c->delta1, c->diverged};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        for (int k = 0; k < 2; k++) all[i][k] = ek_xcalloc(seeds, sizeof(double));
}

static void cell_free(rule_cell *c)
{
    double **all[] = {c->auc,   c->fin,       c->last0,       c->last_noise, c->last1,
                      c->hid0,  c->hid_noise, c->hid1,        c->erank_noise, c->erank1,
                      c->delta1, c->diverged};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        for (int k = 0; k < 2; k++) free(all[i][k]);
}

/* Angle between the rule's and BP's error signal at layer 1's inputs, on the first rows of ds. */
static double delta_angle(const fan_net *net, const fan_dataset *ds)
{
    const size_t L = fan_net_num_layers(net), n = DELTA_ROWS;
    float *x = ek_xcalloc(n * 784, sizeof *x);
    int32_t *y = ek_xcalloc(n, sizeof *y);
    for (size_t i = 0; i < n; i++)
        EK_TRY(fan_dataset_get(ds, i, x + i * 784, 784, &y[i]), fan_dataset_errmsg(ds));
    double deg[FAN_MAX_LAYERS];
    const fan_status st = fan_diag_delta_alignment(net, x, y, n, deg, L);
    if (st == FAN_E_NUMERIC) deg[0] = NAN; /* a diverged net's forward pass overflowed */
    else EK_TRY(st, fan_net_errmsg(net));
    free(x);
    free(y);
    return deg[0];
}

typedef struct task_set {
    size_t n;
    const char *name[MAX_DATASETS];
    const fan_dataset *train[MAX_DATASETS], *test[MAX_DATASETS];
    size_t recipe[MAX_DATASETS][N_RULES];
} task_set;

/* One seed of one (depth, rule): the fresh and the noise-pretrained start nets are made once
   and trained on every dataset. Writes cells[d] for each dataset d. */
static void run_seed(const settings *s, size_t depth, size_t k, uint64_t seed, size_t si,
                     const task_set *ts, rule_cell *cells, FILE *csv, ek_progress *pg)
{
    const fan_rule rule = RULES[k];
    const size_t last = depth - 1;
    fan_net *start[2];
    start[0] = fresh_net(s, depth, rule, seed);
    start[1] = copy_of(start[0]);
    const double last0 = ek_angle(start[0], last, NULL, NULL, 0);
    const double hid0 = ek_angle(start[0], 1, NULL, NULL, 0);
    const int noise_bad = noise_phase(start[1], s, seed + NOISE_SEED_OFFSET, pg);
    for (size_t d = 0; d < ts->n; d++) {
        rule_cell *cell = &cells[d];
        const size_t recipe = ts->recipe[d][k];
        for (int noise = 0; noise <= 1; noise++) {
            fan_net *net = copy_of(start[noise]);
            cell->last0[noise][si] = last0;
            cell->hid0[noise][si] = hid0;
            cell->last_noise[noise][si] = ek_angle(net, last, NULL, NULL, 0);
            cell->hid_noise[noise][si] = ek_angle(net, 1, NULL, NULL, 0);
            cell->erank_noise[noise][si] = ek_erank(net, last);
            const int bad = data_phase(net, s, recipe, ts->train[d], ts->test[d], seed, pg,
                                       &cell->auc[noise][si], &cell->fin[noise][si]);
            cell->diverged[noise][si] = bad || (noise && noise_bad);
            cell->last1[noise][si] = ek_angle(net, last, NULL, NULL, 0);
            cell->hid1[noise][si] = ek_angle(net, 1, NULL, NULL, 0);
            cell->erank1[noise][si] = ek_erank(net, last);
            cell->delta1[noise][si] = delta_angle(net, ts->test[d]);
            fprintf(csv, "%s,%zu,%s,%s,%llu,%s,%g,%g,%.5f,%.5f,%.3f,%.3f,%.3f,%.3f,%.3f,%.3f,"
                         "%.4f,%.4f,%.3f,%d\n",
                    ts->name[d], depth, fan_rule_name(rule), noise ? "noise" : "none",
                    (unsigned long long)seed, GRID[recipe].opt, GRID[recipe].lr,
                    GRID[recipe].wd, cell->auc[noise][si], cell->fin[noise][si],
                    cell->last0[noise][si], cell->last_noise[noise][si], cell->last1[noise][si],
                    cell->hid0[noise][si], cell->hid_noise[noise][si], cell->hid1[noise][si],
                    cell->erank_noise[noise][si], cell->erank1[noise][si],
                    cell->delta1[noise][si], (int)cell->diverged[noise][si]);
            fflush(csv);
            fan_net_free(net);
        }
    }
    fan_net_free(start[0]);
    fan_net_free(start[1]);
}

static void print_header(const char *dataset, size_t depth, size_t seeds)
{
    printf("\n%s, %zu weight layers, %zu paired seeds (p: paired t-test, noise vs none)\n",
           dataset, depth, seeds);
    printf("%-5s %-18s %-15s %-15s %-9s %-15s %-9s %-22s %-22s %-13s %-13s %-9s\n", "rule",
           "recipe", "AUC none", "AUC noise", "p AUC", "final gain", "p final",
           "last angle 0>noise>data", "hidden angle 0>noise>data", "erank n/y", "delta n/y",
           "diverged");
}

static void print_row(fan_rule rule, size_t recipe, const rule_cell *c, size_t n, FILE *summary,
                      const char *dataset, size_t depth)
{
    char b[10][64], rec[32];
    const st_ttest pa = st_ttest_paired(c->auc[1], c->auc[0], n);
    const st_ttest pf = st_ttest_paired(c->fin[1], c->fin[0], n);
    double gain[64];
    for (size_t i = 0; i < n && i < 64; i++) gain[i] = c->fin[1][i] - c->fin[0][i];
    if (GRID[recipe].wd > 0)
        snprintf(rec, sizeof rec, "%s %g wd %g", GRID[recipe].opt, GRID[recipe].lr,
                 GRID[recipe].wd);
    else
        snprintf(rec, sizeof rec, "%s %g", GRID[recipe].opt, GRID[recipe].lr);
    char ang[64], hang[64];
    snprintf(ang, sizeof ang, "%.1f>%.1f>%.1f", st_mean(c->last0[1], n),
             st_mean(c->last_noise[1], n), st_mean(c->last1[1], n));
    snprintf(hang, sizeof hang, "%.1f>%.1f>%.1f", st_mean(c->hid0[1], n),
             st_mean(c->hid_noise[1], n), st_mean(c->hid1[1], n));
    char er[64];
    snprintf(er, sizeof er, "%.2f/%.2f", st_mean(c->erank_noise[0], n),
             st_mean(c->erank_noise[1], n));
    char dl[64];
    snprintf(dl, sizeof dl, "%.1f/%.1f", st_mean(c->delta1[0], n), st_mean(c->delta1[1], n));
    unsigned div[2] = {0, 0};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 2; k++) div[k] += c->diverged[k][i] != 0.0;
    char dv[32];
    snprintf(dv, sizeof dv, "%u/%u", div[0], div[1]);
    printf("%-5s %-18s %-15s %-15s %-9s %-15s %-9s %-22s %-22s %-13s %-13s %-9s\n",
           fan_rule_name(rule), rec, ek_fmt_msd(c->auc[0], n, 4, b[0], 64),
           ek_fmt_msd(c->auc[1], n, 4, b[1], 64), st_format_p(pa.p, b[2], 64),
           ek_fmt_msd(gain, n, 4, b[3], 64), st_format_p(pf.p, b[4], 64), ang, hang, er, dl,
           dv);
    fprintf(summary,
            "%s,%zu,%s,%s,%g,%g,%.5f,%.5f,%.5f,%.5f,%.3g,%.5f,%.5f,%.3g,%.2f,%.2f,%.2f,%.2f,%.2f,"
            "%.2f,%.2f,%.2f,%.3f,%.3f,%.2f,%.2f,%u,%u\n",
            dataset, depth, fan_rule_name(rule), GRID[recipe].opt, GRID[recipe].lr,
            GRID[recipe].wd,
            st_mean(c->auc[0], n), st_sd(c->auc[0], n), st_mean(c->auc[1], n),
            st_sd(c->auc[1], n), pa.p, st_mean(c->fin[0], n), st_mean(c->fin[1], n), pf.p,
            st_mean(c->last0[1], n), st_mean(c->last_noise[1], n), st_mean(c->last1[0], n),
            st_mean(c->last1[1], n), st_mean(c->hid_noise[1], n), st_mean(c->hid1[0], n),
            st_mean(c->hid1[1], n), st_mean(c->last0[0], n), st_mean(c->erank_noise[0], n),
            st_mean(c->erank_noise[1], n), st_mean(c->delta1[0], n), st_mean(c->delta1[1], n),
            div[0], div[1]);
    fflush(summary);
}

/* ---- resuming an interrupted study -------------------------------------------------------- */

typedef struct study {
    const char *dsets[MAX_DATASETS];
    size_t nd, depths[MAX_DEPTHS], ndep, seeds;
    uint64_t seed0;
    int have_recipe[MAX_DATASETS][N_RULES];
    /* result rows read back per (depth, rule, seed); a seed is done with 2 per dataset */
    unsigned char rows[MAX_DEPTHS][N_RULES][64];
} study;

static int index_of(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return (int)i;
    return -1;
}

static int rule_index(const char *name)
{
    for (int k = 0; k < N_RULES; k++)
        if (strcmp(fan_rule_name(RULES[k]), name) == 0) return k;
    return -1;
}

/* Reads the chosen recipes of an earlier run (rows with chosen = 1). */
static void load_recipes(const char *path, study *st, task_set *ts)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    char line[512], ds[32], rule[16], opt[16];
    double lr, wd, score;
    int chosen;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%31[^,],%15[^,],%15[^,],%lf,%lf,%lf,%d", ds, rule, opt, &lr, &wd,
                   &score, &chosen) == 7 &&
            chosen == 1) {
            const int d = index_of(st->dsets, st->nd, ds), k = rule_index(rule);
            if (d < 0 || k < 0) continue;
            for (size_t g = 0; g < N_RECIPES; g++)
                if (strcmp(GRID[g].opt, opt) == 0 && GRID[g].lr == lr && GRID[g].wd == wd) {
                    ts->recipe[d][k] = g;
                    st->have_recipe[d][k] = 1;
                }
        }
    fclose(f);
}

/* Reads the per-seed rows of an earlier run back into the cells. */
static void load_results(const char *path, study *st,
                         rule_cell cells[MAX_DEPTHS][N_RULES][MAX_DATASETS])
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    char line[1024], ds[32], rule[16], cond[16], opt[16];
    size_t depth;
    unsigned long long seed;
    double lr, wd, v[11];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        const int n = sscanf(line,
                             "%31[^,],%zu,%15[^,],%15[^,],%llu,%15[^,],%lf,%lf,%lf,%lf,%lf,%lf,"
                             "%lf,%lf,%lf,%lf,%lf,%lf,%lf,%d",
                             ds, &depth, rule, cond, &seed, opt, &lr, &wd, &v[0], &v[1], &v[2],
                             &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &bad);
        if (n < 19) continue; /* the header, or a row cut short by the interruption */
        if (n == 19) bad = 0;  /* rows of a build that did not mark divergence */
        const int d = index_of(st->dsets, st->nd, ds), k = rule_index(rule);
        int i = -1;
        for (size_t j = 0; j < st->ndep; j++)
            if (st->depths[j] == depth) i = (int)j;
        if (d < 0 || k < 0 || i < 0 || seed < st->seed0 || seed - st->seed0 >= st->seeds)
            continue;
        const size_t si = (size_t)(seed - st->seed0);
        const int noise = strcmp(cond, "noise") == 0;
        rule_cell *c = &cells[i][k][d];
        c->auc[noise][si] = v[0];
        c->fin[noise][si] = v[1];
        c->last0[noise][si] = v[2];
        c->last_noise[noise][si] = v[3];
        c->last1[noise][si] = v[4];
        c->hid0[noise][si] = v[5];
        c->hid_noise[noise][si] = v[6];
        c->hid1[noise][si] = v[7];
        c->erank_noise[noise][si] = v[8];
        c->erank1[noise][si] = v[9];
        c->delta1[noise][si] = v[10];
        c->diverged[noise][si] = bad;
        st->rows[i][k][si]++;
    }
    fclose(f);
}

/* Opens an output CSV: appended to when resuming a file that exists, else new with a header. */
static FILE *csv_for(const ek_common *c, int resume, const char *name, const char *header)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", c->out, name);
    FILE *probe = resume ? fopen(path, "r") : NULL;
    if (probe == NULL) return ek_csv_open(c, name, header);
    fclose(probe);
    FILE *f = fopen(path, "a");
    if (f == NULL) ek_die("cannot append to %s", path);
    return f;
}

static int rule_wanted(const char *list, fan_rule r)
{
    if (strcmp(list, "all") == 0) return 1;
    char buf[256];
    const char *tok[N_RULES * 2];
    const size_t n = ek_split(list, buf, sizeof buf, tok, N_RULES * 2);
    for (size_t i = 0; i < n; i++)
        if (strcmp(tok[i], fan_rule_name(r)) == 0) return 1;
    return 0;
}

int main(int argc, char **argv)
{
    settings s;
    ek_recipe_defaults(&s.r);
    s.val_n = 2000;
    s.select_seeds = 2;
    s.mirror_every = 50;
    s.mirror_steps = 10;
    s.mirror_lr = 0.1;
    s.mirror_decay = 1.0;
    s.datasets = "fashion,mnist";
    s.depths = "2,4";
    s.rules = "all";
    s.resume = 0;
    ek_common c = {.seeds = 10, .out = "out/rules"};
    ek_option opts[EK_RECIPE_NOPTS + 11];
    ek_recipe_options(&s.r, opts);
    const ek_option mine[] = {
        {"datasets", EK_STRING, &s.datasets, "comma-separated: fashion, mnist"},
        {"depths", EK_STRING, &s.depths, "comma-separated weight-layer counts"},
        {"rules", EK_STRING, &s.rules, "comma-separated rule names, or all"},
        {"val", EK_SIZE, &s.val_n, "validation samples carved from the training set"},
        {"select-seeds", EK_SIZE, &s.select_seeds, "seeds per recipe in the selection"},
        {"mirror-every", EK_SIZE, &s.mirror_every, "WM: training steps between mirror phases"},
        {"mirror-steps", EK_SIZE, &s.mirror_steps, "WM: steps of one mirror phase"},
        {"mirror-lr", EK_DOUBLE, &s.mirror_lr, "WM: mirror learning rate"},
        {"mirror-decay", EK_DOUBLE, &s.mirror_decay, "WM: mirror weight decay"},
        {"resume", EK_FLAG, &s.resume, "continue an interrupted run in --out"},
    };
    const size_t n_mine = sizeof mine / sizeof mine[0];
    memcpy(opts + EK_RECIPE_NOPTS, mine, sizeof mine);
    if (ek_parse(argc, argv, &c,
                 "Every learning rule with and without noise pretraining (docs/rules.md).", opts,
                 EK_RECIPE_NOPTS + n_mine))
        return 0;
    if (c.seeds < 2) ek_die("--seeds must be at least 2 for the paired tests");
    if (s.mirror_every == 0) ek_die("--mirror-every must be at least 1");
    if (s.select_seeds < 1 || s.select_seeds > 8) ek_die("--select-seeds must be in [1, 8]");
    ek_mkdir_out(&c);
    ek_write_settings(&c, opts, EK_RECIPE_NOPTS + n_mine);

    char dbuf[128];
    const char *dsets[MAX_DATASETS + 1];
    const size_t nd = ek_split(s.datasets, dbuf, sizeof dbuf, dsets, MAX_DATASETS + 1);
    if (nd == 0 || nd > MAX_DATASETS) ek_die("--datasets takes one or two of fashion, mnist");
    size_t depths[MAX_DEPTHS];
    const size_t ndep = ek_parse_sizes(s.depths, depths, MAX_DEPTHS);
    for (size_t i = 0; i < ndep; i++)
        if (depths[i] < 2) ek_die("--depths: every depth needs a hidden layer (>= 2)");
    size_t nr = 0;
    for (size_t k = 0; k < N_RULES; k++) nr += (size_t)rule_wanted(s.rules, RULES[k]);
    if (nr == 0) ek_die("--rules names no known rule");

    if (c.seeds > 64) ek_die("--seeds must be at most 64");
    study st = {.nd = nd, .ndep = ndep, .seeds = c.seeds, .seed0 = c.seed0};
    memcpy(st.dsets, dsets, nd * sizeof *dsets);
    memcpy(st.depths, depths, ndep * sizeof *depths);
    rule_cell cells[MAX_DEPTHS][N_RULES][MAX_DATASETS];
    for (size_t i = 0; i < ndep; i++)
        for (size_t k = 0; k < N_RULES; k++)
            for (size_t d = 0; d < nd; d++) cell_alloc(&cells[i][k][d], c.seeds);
    task_set ts = {.n = nd};
    if (s.resume) {
        char path[1024];
        snprintf(path, sizeof path, "%s/recipes.csv", c.out);
        load_recipes(path, &st, &ts);
        snprintf(path, sizeof path, "%s/results.csv", c.out);
        load_results(path, &st, cells);
    }
    /* A seed is done when all its rows were read back; a partly written seed is run again
       (its rows then appear twice in results.csv; the later ones are the ones used). */
    size_t todo_select = 0;
    double todo_final = 0;
    for (size_t k = 0; k < N_RULES; k++) {
        if (!rule_wanted(s.rules, RULES[k])) continue;
        for (size_t d = 0; d < nd; d++) todo_select += !st.have_recipe[d][k];
        for (size_t i = 0; i < ndep; i++)
            for (size_t si = 0; si < c.seeds; si++)
                if (st.rows[i][k][si] < 2 * nd) todo_final += (double)depths[i] / 2.0;
    }

    /* Progress units: noise steps and data steps (a data step costs about a noise step). */
    const double data_steps = (double)s.r.epochs * (double)(s.r.train_n - s.val_n) /
                              (double)s.r.batch;
    const double noise = (double)s.r.noise_steps;
    const double units =
        (double)todo_select * (double)s.select_seeds * (noise + N_RECIPES * 2.0 * data_steps) +
        todo_final * (noise + (double)nd * 2.0 * data_steps);
    ek_progress pg;
    ek_progress_init(&pg, &c, units);

    FILE *recipes = csv_for(&c, s.resume, "recipes.csv",
                            "dataset,rule,optimizer,lr,weight_decay,val_auc,chosen");
    FILE *results = csv_for(&c, s.resume, "results.csv",
                            "dataset,depth,rule,cond,seed,optimizer,lr,weight_decay,auc,"
                            "final_acc,last_init,last_noise,last_final,hidden_init,"
                            "hidden_noise,hidden_final,erank_last_noise,erank_last_final,"
                            "delta_hidden,diverged");
    FILE *summary = ek_csv_open(
        &c, "summary.csv",
        "dataset,depth,rule,optimizer,lr,weight_decay,auc_none,auc_none_sd,auc_noise,"
        "auc_noise_sd,p_auc,final_none,final_noise,p_final,last_init,last_after_noise,"
        "last_final_none,last_final_noise,hidden_after_noise,hidden_final_none,"
        "hidden_final_noise,last_init_none,erank_none,erank_noise,delta_none,delta_noise,"
        "diverged_none,diverged_noise");

    /* The data: training sets with their validation part carved out (the final runs train on
       the same part the selection trained on), and the test sets. */
    ek_task task[MAX_DATASETS];
    fan_dataset *train[MAX_DATASETS], *val[MAX_DATASETS];
    for (size_t d = 0; d < nd; d++) {
        task[d] = ek_task_load(dsets[d], c.data_dir, s.r.train_n, 7);
        EK_TRY(fan_dataset_split(&train[d], &val[d], task[d].train, s.val_n, 11),
               fan_dataset_errmsg(task[d].train));
        ts.name[d] = dsets[d];
        ts.train[d] = train[d];
        ts.test[d] = task[d].test;
    }
    for (size_t k = 0; k < N_RULES; k++) {
        if (!rule_wanted(s.rules, RULES[k])) continue;
        int need = 0;
        for (size_t d = 0; d < nd; d++) need |= !st.have_recipe[d][k];
        if (!need) continue;
        char phase[64];
        snprintf(phase, sizeof phase, "choosing %s's recipe", fan_rule_name(RULES[k]));
        ek_progress_phase(&pg, phase);
        selection_nets sn;
        selection_begin(&sn, &s, RULES[k], &pg);
        for (size_t d = 0; d < nd; d++)
            if (!st.have_recipe[d][k])
                ts.recipe[d][k] =
                    select_recipe(&s, dsets[d], RULES[k], &sn, train[d], val[d], recipes, &pg);
        selection_end(&sn);
    }
    for (size_t i = 0; i < ndep; i++)
        for (size_t k = 0; k < N_RULES; k++) {
            if (!rule_wanted(s.rules, RULES[k])) continue;
            char phase[64];
            snprintf(phase, sizeof phase, "depth %zu: %s", depths[i], fan_rule_name(RULES[k]));
            ek_progress_phase(&pg, phase);
            for (size_t si = 0; si < c.seeds; si++)
                if (st.rows[i][k][si] < 2 * nd)
                    run_seed(&s, depths[i], k, c.seed0 + si, si, &ts, cells[i][k], results,
                             &pg);
        }
    ek_progress_done(&pg);
    for (size_t d = 0; d < nd; d++)
        for (size_t i = 0; i < ndep; i++) {
            print_header(dsets[d], depths[i], c.seeds);
            for (size_t k = 0; k < N_RULES; k++)
                if (rule_wanted(s.rules, RULES[k]))
                    print_row(RULES[k], ts.recipe[d][k], &cells[i][k][d], c.seeds, summary,
                              dsets[d], depths[i]);
        }
    for (size_t i = 0; i < ndep; i++)
        for (size_t k = 0; k < N_RULES; k++)
            for (size_t d = 0; d < nd; d++) cell_free(&cells[i][k][d]);
    for (size_t d = 0; d < nd; d++) {
        fan_dataset_free(val[d]);
        fan_dataset_free(train[d]);
        ek_task_free(&task[d]);
    }
    ek_csv_close(summary);
    ek_csv_close(results);
    ek_csv_close(recipes);
    printf("\nrecipes chosen on validation: %s/recipes.csv\n", c.out);
    ek_finish(&c);
    return 0;
}
