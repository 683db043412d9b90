/*
 * meta_loss - the paper's Fig. 6 (claim 11): during noise pretraining, take checkpoints; at each,
 * copy the net, adapt it briefly to each task (a few SGD steps with the net's rule) and measure
 * the task's test loss. The sum over tasks is the meta-loss; the claim is that it falls as noise
 * pretraining goes on. Tasks here: MNIST-10k, Fashion-MNIST and the scikit-learn digits (the
 * paper's third task, Kuzushiji-MNIST, is not available). A BP net trained on the same noise is
 * the control.
 */
#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_CONDS 2
#define MAX_TASKS 3
#define FEEDBACK_SEED_OFFSET 1000
#define NOISE_SEED_OFFSET 2000
#define SHUFFLE_SEED_OFFSET 4000

static const char *const COND_KEY[N_CONDS] = {"fa", "bp"};

typedef struct args {
    ek_recipe r;
    const char *tasks;
    size_t every, adapt_steps, task_train_n;
    int bp_control;
    uint64_t subset_seed;
} args;

/* Copies net, trains the copy for `steps` batches of the task with a fresh data-phase
   optimizer, returns its test loss. */
static double adapted_loss(const fan_net *net, const args *a, const ek_task *t, uint64_t seed,
                           double *acc)
{
    fan_net *copy = NULL;
    EK_TRY(fan_net_clone(&copy, net), fan_net_errmsg(net));
    fan_iter *it = NULL;
    EK_TRY(fan_iter_create_batches(&it, t->train, a->r.batch, seed, NULL), "");
    fan_optimizer *opt = ek_make_opt(a->r.opt, a->r.lr, a->r.momentum, copy);
    if (a->adapt_steps > 0)
        EK_TRY(fan_train_steps(copy, opt, it, a->adapt_steps, NULL, NULL), fan_net_errmsg(copy));
    double loss = NAN;
    EK_TRY(fan_net_evaluate(copy, t->test, &loss, acc), fan_net_errmsg(copy));
    fan_optimizer_free(opt);
    fan_iter_free(it);
    fan_net_free(copy);
    return loss;
}

int main(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    ek_recipe_defaults(&a.r);
    a.tasks = "mnist,fashion,digits";
    a.every = 500;
    a.adapt_steps = 100;
    a.task_train_n = 0;
    a.bp_control = 1;
    ek_option opts[EK_RECIPE_NOPTS + 5];
    ek_recipe_options(&a.r, opts);
    size_t no = EK_RECIPE_NOPTS;
    opts[no++] = (ek_option){"tasks", EK_STRING, &a.tasks, "comma list of tasks: mnist, fashion, digits"};
    opts[no++] = (ek_option){"every", EK_SIZE, &a.every, "noise steps between checkpoints"};
    opts[no++] = (ek_option){"adapt-steps", EK_SIZE, &a.adapt_steps, "adaptation steps per task (data optimizer, lr, batch)"};
    opts[no++] = (ek_option){"bp-control", EK_FLAG, &a.bp_control, "also follow a BP net trained on the same noise"};
    opts[no++] = (ek_option){"subset-seed", EK_U64, &a.subset_seed, "seed of the task training subsets"};
    ek_common c = {.seeds = 10, .out = "out/paper/meta_loss"};
    if (ek_parse(argc, argv, &c,
                 "Fig. 6: the meta-loss (sum over tasks of the test loss after a short adaptation)\n"
                 "falls during noise pretraining (claim 11).",
                 opts, no))
        return 0;
    if (a.every == 0) ek_die("--every must be positive");
    ek_mkdir_out(&c);
    ek_write_settings(&c, opts, no);
    char tbuf[128];
    const char *tnames[MAX_TASKS];
    const size_t nt = ek_split(a.tasks, tbuf, sizeof tbuf, tnames, MAX_TASKS);
    ek_task tasks[MAX_TASKS];
    for (size_t t = 0; t < nt; t++) tasks[t] = ek_task_load(tnames[t], c.data_dir, a.r.train_n, a.subset_seed);

    const size_t points = a.r.noise_steps / a.every + 1 + (a.r.noise_steps % a.every != 0);
    const int nconds = a.bp_control ? N_CONDS : 1;
    /* [cond][task or meta = nt][seed * points + p] */
    double *loss[N_CONDS][MAX_TASKS + 1], *accs[N_CONDS][MAX_TASKS];
    for (int k = 0; k < nconds; k++) {
        for (size_t t = 0; t <= nt; t++) loss[k][t] = ek_xcalloc(c.seeds * points, sizeof(double));
        for (size_t t = 0; t < nt; t++) accs[k][t] = ek_xcalloc(c.seeds * points, sizeof(double));
    }
    double *steps = ek_xcalloc(points, sizeof(double));
    ek_progress pg;
    ek_progress_init(&pg, &c, (double)c.seeds * nconds * (double)(a.r.noise_steps + points * nt * a.adapt_steps));
    FILE *f = ek_csv_open(&c, "checkpoints.csv", "cond,seed,step,task,loss,acc");
    char phase[96];
    for (size_t sd = 0; sd < c.seeds; sd++) {
        const uint64_t seed = c.seed0 + sd;
        for (int k = 0; k < nconds; k++) {
            fan_net *net = ek_make_net(&a.r, 784, 10, k == 0 ? FAN_RULE_FA : FAN_RULE_BP, seed,
                                       seed + FEEDBACK_SEED_OFFSET);
            /* Adaptation always uses FA: the question is what noise did to an FA learner.
               The BP control only changes the rule during noise. */
            ek_noise_run nr;
            ek_noise_begin(&nr, &a.r, net, seed + NOISE_SEED_OFFSET);
            for (size_t p = 0; p < points; p++) {
                if (p > 0) {
                    snprintf(phase, sizeof phase, "seed %zu/%zu %s noise", sd + 1, c.seeds, COND_KEY[k]);
                    ek_progress_phase(&pg, phase);
                    size_t chunk = a.every;
                    if (chunk > a.r.noise_steps - nr.done) chunk = a.r.noise_steps - nr.done;
                    (void)ek_noise_steps(&nr, net, chunk, &pg);
                }
                steps[p] = (double)nr.done;
                fan_net *probe = NULL;
                EK_TRY(fan_net_clone(&probe, net), fan_net_errmsg(net));
                EK_TRY(fan_net_set_rule(probe, FAN_RULE_FA), fan_net_errmsg(probe));
                double meta = 0.0;
                snprintf(phase, sizeof phase, "seed %zu/%zu %s adapt", sd + 1, c.seeds, COND_KEY[k]);
                ek_progress_phase(&pg, phase);
                for (size_t t = 0; t < nt; t++) {
                    double acc = NAN;
                    const double l = adapted_loss(probe, &a, &tasks[t], seed + SHUFFLE_SEED_OFFSET, &acc);
                    ek_progress_add(&pg, (double)a.adapt_steps);
                    loss[k][t][sd * points + p] = l;
                    accs[k][t][sd * points + p] = acc;
                    meta += l;
                    fprintf(f, "%s,%llu,%zu,%s,%.5f,%.5f\n", COND_KEY[k], (unsigned long long)seed,
                            nr.done, tasks[t].name, l, acc);
                }
                loss[k][nt][sd * points + p] = meta;
                fprintf(f, "%s,%llu,%zu,meta,%.5f,\n", COND_KEY[k], (unsigned long long)seed,
                        nr.done, meta);
                fan_net_free(probe);
            }
            ek_noise_end(&nr);
            fan_net_free(net);
        }
    }
    ek_progress_done(&pg);
    ek_csv_close(f);

    ek_series s[N_CONDS * (MAX_TASKS + 1)];
    char names[N_CONDS * (MAX_TASKS + 1)][32];
    size_t ns = 0;
    for (int k = 0; k < nconds; k++)
        for (size_t t = 0; t <= nt; t++) {
            snprintf(names[ns], 32, "%s_%s", COND_KEY[k], t == nt ? "meta" : tasks[t].name);
            s[ns] = (ek_series){names[ns], loss[k][t]};
            ns++;
        }
    ek_write_bands(&c, "bands.csv", "step", steps, points, c.seeds, s, ns);

    char b[6][64];
    printf("\nMeta-loss: sum over %zu tasks of the test loss after %zu %s steps (lr %g, batch %zu) "
           "from each checkpoint; %zu seeds\n", nt, a.adapt_steps, a.r.opt, a.r.lr, a.r.batch, c.seeds);
    printf("%-10s %-10s %-18s %-18s %-10s", "noise by", "task", "step 0", "last step", "p paired");
    printf("\n");
    double *v0 = ek_xcalloc(c.seeds, sizeof(double)), *v1 = ek_xcalloc(c.seeds, sizeof(double));
    for (int k = 0; k < nconds; k++)
        for (size_t t = 0; t <= nt; t++) {
            for (size_t sd = 0; sd < c.seeds; sd++) {
                v0[sd] = loss[k][t][sd * points];
                v1[sd] = loss[k][t][sd * points + points - 1];
            }
            printf("%-10s %-10s %-18s %-18s %-10s\n", t == 0 ? (k == 0 ? "FA" : "BP") : "",
                   t == nt ? "meta-loss" : tasks[t].name, ek_fmt_msd(v0, c.seeds, 4, b[0], 64),
                   ek_fmt_msd(v1, c.seeds, 4, b[1], 64),
                   st_format_p(st_ttest_paired(v1, v0, c.seeds).p, b[2], 64));
        }
    /* Where along the way the FA meta-loss was lowest, on average. */
    size_t best = 0;
    double best_v = INFINITY;
    for (size_t p = 0; p < points; p++) {
        double m = 0;
        for (size_t sd = 0; sd < c.seeds; sd++) m += loss[0][nt][sd * points + p] / (double)c.seeds;
        if (m < best_v) best_v = m, best = p;
    }
    printf("FA meta-loss lowest at noise step %.0f (mean %.4f)\n", steps[best], best_v);
    ek_finish(&c);
    free(v0), free(v1), free(steps);
    for (int k = 0; k < nconds; k++) {
        for (size_t t = 0; t <= nt; t++) free(loss[k][t]);
        for (size_t t = 0; t < nt; t++) free(accs[k][t]);
    }
    for (size_t t = 0; t < nt; t++) ek_task_free(&tasks[t]);
    return 0;
}
