/*
 * generalization - the paper's Fig. 4 (claim 9): a depth-3 net (784-100-100-10) trained on only
 * 1,600 images (160 per class). Per epoch: training and test loss, their gap, test accuracy and
 * the Gram-matrix effective dimensionality of the last hidden layer on the test images. Also the
 * distribution of readout probabilities on test images before and after noise pretraining.
 * Conditions: FA without noise, FA after noise, BP; paired by seed as in fast_learning.
 */
#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_CONDS 3
#define FEEDBACK_SEED_OFFSET 1000
#define NOISE_SEED_OFFSET 2000
#define SHUFFLE_SEED_OFFSET 4000
/* Epochs at the end over which the gap is averaged for the test (one epoch is noisy). */
#define TAIL_EPOCHS 10

enum { C_FA = 0, C_FA_NOISE = 1, C_BP = 2 };
static const char *const COND_KEY[N_CONDS] = {"fa", "fa_noise", "bp"};
static const char *const COND_NAME[N_CONDS] = {"FA without noise", "FA after noise", "BP"};

typedef struct args {
    ek_recipe r;
    const char *dataset;
    size_t per_class, gram_samples, bins;
    uint64_t subset_seed;
} args;

/* Copies a dataset's first n normalised samples into a float array (the readout's inputs). */
static float *dataset_rows(const fan_dataset *ds, size_t n)
{
    const size_t dim = fan_dataset_dim(ds);
    float *x = ek_xcalloc(n * dim, sizeof(float));
    for (size_t i = 0; i < n; i++)
        EK_TRY(fan_dataset_get(ds, i, x + i * dim, dim, NULL), fan_dataset_errmsg(ds));
    return x;
}

int main(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    ek_recipe_defaults(&a.r);
    a.r.depth = 3;
    a.r.epochs = 100;
    a.r.evals_per_epoch = 1;
    a.r.train_n = 0; /* unused: --per-class picks the training set */
    a.dataset = "mnist";
    a.per_class = 160;
    a.gram_samples = 0;
    a.bins = 50;
    ek_option opts[EK_RECIPE_NOPTS + 5];
    ek_recipe_options(&a.r, opts);
    size_t no = EK_RECIPE_NOPTS;
    opts[no++] = (ek_option){"dataset", EK_STRING, &a.dataset, "mnist | fashion | digits"};
    opts[no++] = (ek_option){"per-class", EK_SIZE, &a.per_class, "training images per class"};
    opts[no++] = (ek_option){"gram-samples", EK_SIZE, &a.gram_samples, "test images for the Gram dimensionality (0 = all)"};
    opts[no++] = (ek_option){"bins", EK_SIZE, &a.bins, "readout histogram bins"};
    opts[no++] = (ek_option){"subset-seed", EK_U64, &a.subset_seed, "seed of the training subset"};
    ek_common c = {.seeds = 10, .out = "out/paper/generalization"};
    if (ek_parse(argc, argv, &c,
                 "Fig. 4: with little data (1,600 images, depth 3) FA after noise has a smaller\n"
                 "train-test loss gap and a lower Gram-matrix effective dimensionality (claim 9).",
                 opts, no))
        return 0;
    if (a.r.depth < 2 || a.per_class == 0 || a.bins == 0 || a.r.evals_per_epoch == 0)
        ek_die("--depth must be at least 2; --per-class, --bins, --evals-per-epoch positive");
    ek_mkdir_out(&c);
    ek_write_settings(&c, opts, no);

    ek_task task = ek_task_load(a.dataset, c.data_dir, 0, a.subset_seed);
    fan_dataset *small = NULL;
    EK_TRY(fan_dataset_subset_stratified(&small, task.train, a.per_class, a.subset_seed),
           fan_dataset_errmsg(task.train));
    const size_t n_test = fan_dataset_size(task.test);
    float *xtest = dataset_rows(task.test, n_test);
    const size_t hidden = a.r.depth - 1, last = a.r.depth - 1;
    const size_t points = ek_curve_points(&a.r);
    const size_t bpe = (fan_dataset_size(small) + a.r.batch - 1) / a.r.batch;

    /* [cond][seed * points + p] */
    double *gap[N_CONDS], *tacc[N_CONDS], *gram[N_CONDS], *trl[N_CONDS], *tel[N_CONDS];
    double *gram0[N_CONDS], *tail_gap[N_CONDS], *final_acc[N_CONDS], *gram_end[N_CONDS];
    for (int k = 0; k < N_CONDS; k++) {
        gap[k] = ek_xcalloc(c.seeds * points, sizeof(double));
        tacc[k] = ek_xcalloc(c.seeds * points, sizeof(double));
        gram[k] = ek_xcalloc(c.seeds * points, sizeof(double));
        trl[k] = ek_xcalloc(c.seeds * points, sizeof(double));
        tel[k] = ek_xcalloc(c.seeds * points, sizeof(double));
        gram0[k] = ek_xcalloc(c.seeds, sizeof(double));
        tail_gap[k] = ek_xcalloc(c.seeds, sizeof(double));
        final_acc[k] = ek_xcalloc(c.seeds, sizeof(double));
        gram_end[k] = ek_xcalloc(c.seeds, sizeof(double));
    }
    double *hist[4]; /* init and after noise, on test images; mean over seeds */
    for (int h = 0; h < 4; h++) hist[h] = ek_xcalloc(a.bins, sizeof(double));
    double *hbuf = ek_xcalloc(a.bins, sizeof(double));
    double *mp[2] = {ek_xcalloc(c.seeds, sizeof(double)), ek_xcalloc(c.seeds, sizeof(double))};

    ek_progress pg;
    ek_progress_init(&pg, &c, (double)c.seeds * (double)(a.r.noise_steps + N_CONDS * a.r.epochs * bpe));
    FILE *fc = ek_csv_open(&c, "curves.csv",
                           "cond,seed,epoch,train_loss,test_loss,gap,train_acc,test_acc,gram_erank");
    char phase[96];
    for (size_t sd = 0; sd < c.seeds; sd++) {
        const uint64_t seed = c.seed0 + sd;
        fan_net *base[N_CONDS];
        base[C_FA] = ek_make_net(&a.r, 784, 10, FAN_RULE_FA, seed, seed + FEEDBACK_SEED_OFFSET);
        EK_TRY(fan_net_clone(&base[C_FA_NOISE], base[C_FA]), fan_net_errmsg(base[C_FA]));
        EK_TRY(fan_net_clone(&base[C_BP], base[C_FA]), fan_net_errmsg(base[C_FA]));
        EK_TRY(fan_net_set_rule(base[C_BP], FAN_RULE_BP), fan_net_errmsg(base[C_BP]));
        EK_TRY(fan_diag_readout(base[C_FA], xtest, n_test, &mp[0][sd], NULL, hbuf, a.bins),
               fan_net_errmsg(base[C_FA]));
        for (size_t b = 0; b < a.bins; b++) hist[0][b] += hbuf[b] / (double)c.seeds;
        snprintf(phase, sizeof phase, "seed %zu/%zu noise", sd + 1, c.seeds);
        ek_progress_phase(&pg, phase);
        ek_noise_pretrain(base[C_FA_NOISE], &a.r, seed + NOISE_SEED_OFFSET, &pg);
        EK_TRY(fan_diag_readout(base[C_FA_NOISE], xtest, n_test, &mp[1][sd], NULL, hbuf, a.bins),
               fan_net_errmsg(base[C_FA_NOISE]));
        for (size_t b = 0; b < a.bins; b++) hist[1][b] += hbuf[b] / (double)c.seeds;

        for (int k = 0; k < N_CONDS; k++) {
            snprintf(phase, sizeof phase, "seed %zu/%zu %s", sd + 1, c.seeds, COND_KEY[k]);
            ek_progress_phase(&pg, phase);
            fan_net *net = base[k];
            EK_TRY(fan_diag_gram_dimensionality(net, hidden, task.test, a.gram_samples, &gram0[k][sd]),
                   fan_net_errmsg(net));
            fan_iter *it = NULL;
            EK_TRY(fan_iter_create_batches(&it, small, a.r.batch, seed + SHUFFLE_SEED_OFFSET, NULL), "");
            fan_optimizer *opt = ek_make_opt(a.r.opt, a.r.lr, a.r.momentum, net);
            size_t done = 0;
            for (size_t p = 0; p < points; p++) {
                const size_t target = (p * bpe + a.r.evals_per_epoch / 2) / a.r.evals_per_epoch;
                if (target > done) {
                    EK_TRY(fan_train_steps(net, opt, it, target - done, ek_progress_cb, &pg),
                           fan_net_errmsg(net));
                    ek_progress_add(&pg, (double)(target - done));
                    done = target;
                }
                double trloss, tracc, teloss, teacc, g;
                EK_TRY(fan_net_evaluate(net, small, &trloss, &tracc), fan_net_errmsg(net));
                EK_TRY(fan_net_evaluate(net, task.test, &teloss, &teacc), fan_net_errmsg(net));
                EK_TRY(fan_diag_gram_dimensionality(net, hidden, task.test, a.gram_samples, &g),
                       fan_net_errmsg(net));
                const size_t i = sd * points + p;
                gap[k][i] = teloss - trloss;
                tacc[k][i] = teacc;
                gram[k][i] = g;
                trl[k][i] = trloss;
                tel[k][i] = teloss;
                fprintf(fc, "%s,%llu,%.3f,%.5f,%.5f,%.5f,%.5f,%.5f,%.4f\n", COND_KEY[k],
                        (unsigned long long)seed, (double)done / (double)bpe, trloss, teloss,
                        teloss - trloss, tracc, teacc, g);
            }
            /* The gap averaged over the last epochs' evaluations, and the end state. */
            size_t tail = TAIL_EPOCHS * a.r.evals_per_epoch;
            if (tail > points - 1) tail = points - 1;
            double sum = 0.0;
            for (size_t p = points - tail; p < points; p++) sum += gap[k][sd * points + p];
            tail_gap[k][sd] = tail ? sum / (double)tail : gap[k][sd * points];
            final_acc[k][sd] = tacc[k][sd * points + points - 1];
            gram_end[k][sd] = gram[k][sd * points + points - 1];
            fan_optimizer_free(opt);
            fan_iter_free(it);
        }
        (void)last;
        for (int k = 0; k < N_CONDS; k++) fan_net_free(base[k]);
    }
    ek_progress_done(&pg);
    ek_csv_close(fc);

    double *x = ek_xcalloc(points, sizeof(double));
    for (size_t p = 0; p < points; p++) x[p] = (double)p / (double)a.r.evals_per_epoch;
    ek_series s[N_CONDS * 5];
    char names[N_CONDS * 5][32];
    size_t ns = 0;
    for (int k = 0; k < N_CONDS; k++) {
        const double *v[5] = {gap[k], tacc[k], gram[k], trl[k], tel[k]};
        const char *m[5] = {"gap", "test_acc", "gram", "train_loss", "test_loss"};
        for (int j = 0; j < 5; j++) {
            snprintf(names[ns], 32, "%s_%s", COND_KEY[k], m[j]);
            s[ns] = (ek_series){names[ns], v[j]};
            ns++;
        }
    }
    ek_write_bands(&c, "bands.csv", "epoch", x, points, c.seeds, s, ns);
    free(x);
    FILE *fh = ek_csv_open(&c, "readout_hist.csv", "prob,init,after_noise");
    for (size_t b = 0; b < a.bins; b++)
        fprintf(fh, "%.4f,%.6f,%.6f\n", (b + 0.5) / (double)a.bins, hist[0][b], hist[1][b]);
    ek_csv_close(fh);
    FILE *fs = ek_csv_open(&c, "summary.csv", "cond,seed,gram_before,gram_after,tail_gap,final_test_acc");
    for (int k = 0; k < N_CONDS; k++)
        for (size_t sd = 0; sd < c.seeds; sd++)
            fprintf(fs, "%s,%llu,%.4f,%.4f,%.5f,%.5f\n", COND_KEY[k],
                    (unsigned long long)(c.seed0 + sd), gram0[k][sd], gram_end[k][sd],
                    tail_gap[k][sd], final_acc[k][sd]);
    ek_csv_close(fs);

    char b[8][64];
    printf("\nGeneralisation with %zu training images (%s, %zu per class), %zu weight layers, "
           "%zu epochs, %zu seeds\n", fan_dataset_size(small), task.name, a.per_class, a.r.depth,
           a.r.epochs, c.seeds);
    printf("gap = test loss - training loss, mean of the last %d epochs; Gram: effective "
           "dimensionality of hidden layer %zu on %zu test images\n", TAIL_EPOCHS, hidden,
           a.gram_samples ? a.gram_samples : n_test);
    printf("%-17s %-16s %-10s %-15s %-15s %-10s %-16s\n", "condition", "loss gap", "p gap",
           "Gram before data", "Gram after data", "p Gram", "final test acc");
    for (int k = 0; k < N_CONDS; k++) {
        char pg1[32] = "", pg2[32] = "";
        if (k != C_FA) {
            st_format_p(st_ttest_welch(tail_gap[k], c.seeds, tail_gap[C_FA], c.seeds).p, pg1, 32);
            st_format_p(st_ttest_welch(gram_end[k], c.seeds, gram_end[C_FA], c.seeds).p, pg2, 32);
        }
        printf("%-17s %-16s %-10s %-15s %-15s %-10s %-16s\n", COND_NAME[k],
               ek_fmt_msd(tail_gap[k], c.seeds, 4, b[0], 64), pg1,
               ek_fmt_msd(gram0[k], c.seeds, 2, b[1], 64),
               ek_fmt_msd(gram_end[k], c.seeds, 2, b[2], 64), pg2,
               ek_fmt_msd(final_acc[k], c.seeds, 4, b[3], 64));
    }
    printf("readout on test images, mean max-probability: %s at init -> %s after noise (chance "
           "0.1)\n", ek_fmt_msd(mp[0], c.seeds, 3, b[4], 64), ek_fmt_msd(mp[1], c.seeds, 3, b[5], 64));
    ek_finish(&c);
    for (int k = 0; k < N_CONDS; k++) {
        free(gap[k]), free(tacc[k]), free(gram[k]), free(trl[k]), free(tel[k]);
        free(gram0[k]), free(tail_gap[k]), free(final_acc[k]), free(gram_end[k]);
    }
    for (int h = 0; h < 4; h++) free(hist[h]);
    free(hbuf), free(mp[0]), free(mp[1]), free(xtest);
    fan_dataset_free(small);
    ek_task_free(&task);
    return 0;
}
