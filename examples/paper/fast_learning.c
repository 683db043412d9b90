/*
 * fast_learning - the paper's Fig. 2 and Table 1 (claims 5, 6, 8): FA without noise, FA after
 * noise pretraining and BP, on MNIST-10k and Fashion-MNIST, at several depths. The three nets of
 * a seed start from identical W; the two FA nets also share B, and all three see the same batches.
 * Noise pretraining does not depend on the dataset, so one pretrained net per depth and seed
 * serves every dataset. Reports test accuracy over training, its area (AUC), final accuracy
 * and the last layer's alignment angle before and after data training, with Welch and paired
 * t-tests against FA without noise.
 */
#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_CONDS 3
#define MAX_DATASETS 3
#define MAX_DEPTHS 8
#define FEEDBACK_SEED_OFFSET 1000
#define NOISE_SEED_OFFSET 2000
#define SHUFFLE_SEED_OFFSET 4000

enum { C_FA = 0, C_FA_NOISE = 1, C_BP = 2 };
static const char *const COND_KEY[N_CONDS] = {"fa", "fa_noise", "bp"};
static const char *const COND_NAME[N_CONDS] = {"FA without noise", "FA after noise", "BP"};

/* Results of one (dataset, depth) cell: [cond][seed] scalars and [cond][seed][point] curves. */
typedef struct cell {
    double *auc[N_CONDS], *final_acc[N_CONDS], *final_loss[N_CONDS];
    double *angle0[N_CONDS], *angle1[N_CONDS], *matrix1[N_CONDS];
    double *acc[N_CONDS], *loss[N_CONDS];
} cell;

static void cell_alloc(cell *c, size_t seeds, size_t points)
{
    for (int k = 0; k < N_CONDS; k++) {
        c->auc[k] = ek_xcalloc(seeds, sizeof(double));
        c->final_acc[k] = ek_xcalloc(seeds, sizeof(double));
        c->final_loss[k] = ek_xcalloc(seeds, sizeof(double));
        c->angle0[k] = ek_xcalloc(seeds, sizeof(double));
        c->angle1[k] = ek_xcalloc(seeds, sizeof(double));
        c->matrix1[k] = ek_xcalloc(seeds, sizeof(double));
        c->acc[k] = ek_xcalloc(seeds * points, sizeof(double));
        c->loss[k] = ek_xcalloc(seeds * points, sizeof(double));
    }
}

static void cell_free(cell *c)
{
    for (int k = 0; k < N_CONDS; k++) {
        free(c->auc[k]), free(c->final_acc[k]), free(c->final_loss[k]);
        free(c->angle0[k]), free(c->angle1[k]), free(c->matrix1[k]);
        free(c->acc[k]), free(c->loss[k]);
    }
}

static void print_cell(const char *dataset, size_t depth, const cell *c, size_t seeds)
{
    char b[8][64];
    printf("\n%s, %zu weight layers, %zu seeds (p: Welch t-test vs FA without noise; paired in "
           "brackets)\n", dataset, depth, seeds);
    printf("%-17s %-13s %-13s %-15s %-19s %-15s %-19s\n", "condition", "angle before",
           "angle after", "test-acc AUC", "p AUC", "final accuracy", "p final");
    for (int k = 0; k < N_CONDS; k++) {
        char pa[48] = "", pf[48] = "";
        if (k != C_FA) {
            const st_ttest w = st_ttest_welch(c->auc[k], seeds, c->auc[C_FA], seeds);
            const st_ttest pr = st_ttest_paired(c->auc[k], c->auc[C_FA], seeds);
            const st_ttest wf = st_ttest_welch(c->final_acc[k], seeds, c->final_acc[C_FA], seeds);
            const st_ttest pf2 = st_ttest_paired(c->final_acc[k], c->final_acc[C_FA], seeds);
            snprintf(pa, sizeof pa, "%s (%s)", st_format_p(w.p, b[4], 64), st_format_p(pr.p, b[5], 64));
            snprintf(pf, sizeof pf, "%s (%s)", st_format_p(wf.p, b[6], 64), st_format_p(pf2.p, b[7], 64));
        }
        printf("%-17s %-13s %-13s %-15s %-19s %-15s %-19s\n", COND_NAME[k],
               ek_fmt_msd(c->angle0[k], seeds, 1, b[0], 64),
               ek_fmt_msd(c->angle1[k], seeds, 1, b[1], 64),
               ek_fmt_msd(c->auc[k], seeds, 4, b[2], 64), pa,
               ek_fmt_msd(c->final_acc[k], seeds, 4, b[3], 64), pf);
    }
    const double fa = st_mean(c->auc[C_FA], seeds), nz = st_mean(c->auc[C_FA_NOISE], seeds),
                 bp = st_mean(c->auc[C_BP], seeds);
    if (bp != fa)
        printf("noise closed %.0f%% of the AUC gap between FA and BP\n", 100.0 * (nz - fa) / (bp - fa));
}

int main(int argc, char **argv)
{
    ek_recipe r;
    ek_recipe_defaults(&r);
    const char *datasets_arg = "fashion,mnist", *depths_arg = "2,3,4";
    uint64_t subset_seed = 0;
    ek_option opts[EK_RECIPE_NOPTS + 3];
    ek_recipe_options(&r, opts);
    size_t no = EK_RECIPE_NOPTS;
    opts[no++] = (ek_option){"datasets", EK_STRING, &datasets_arg, "comma list: fashion, mnist, digits"};
    opts[no++] = (ek_option){"depths", EK_STRING, &depths_arg, "comma list of weight-layer counts (overrides --depth)"};
    opts[no++] = (ek_option){"subset-seed", EK_U64, &subset_seed, "seed of the training subset (the same for every net)"};
    ek_common c = {.seeds = 10, .out = "out/paper/fast_learning"};
    if (ek_parse(argc, argv, &c,
                 "Fig. 2 / Table 1: FA after noise learns faster and ends closer to BP than FA\n"
                 "without noise (claims 5, 6, 8).",
                 opts, no))
        return 0;
    char dbuf[128];
    const char *dnames[MAX_DATASETS];
    const size_t nd = ek_split(datasets_arg, dbuf, sizeof dbuf, dnames, MAX_DATASETS);
    size_t depths[MAX_DEPTHS];
    const size_t ndep = ek_parse_sizes(depths_arg, depths, MAX_DEPTHS);
    for (size_t i = 0; i < ndep; i++)
        if (depths[i] < 2) ek_die("--depths: %zu is below 2 (the angle needs a hidden layer)", depths[i]);
    ek_mkdir_out(&c);
    ek_write_settings(&c, opts, no);

    ek_task tasks[MAX_DATASETS];
    size_t steps_data = 0;
    for (size_t d = 0; d < nd; d++) {
        tasks[d] = ek_task_load(dnames[d], c.data_dir, r.train_n, subset_seed);
        steps_data += r.epochs * ((fan_dataset_size(tasks[d].train) + r.batch - 1) / r.batch);
    }
    const size_t points = ek_curve_points(&r);
    cell *cells = ek_xcalloc(nd * ndep, sizeof(cell));
    for (size_t i = 0; i < nd * ndep; i++) cell_alloc(&cells[i], c.seeds, points);
    ek_point *pts = ek_xcalloc(points, sizeof(ek_point));

    /* Deeper nets cost more per step; count work in steps scaled by the depth, roughly. */
    double total = 0.0;
    for (size_t i = 0; i < ndep; i++)
        total += (double)c.seeds * (double)(r.noise_steps + N_CONDS * steps_data);
    ek_progress pg;
    ek_progress_init(&pg, &c, total);

    FILE *fc = ek_csv_open(&c, "curves.csv", "dataset,depth,cond,seed,epoch,test_acc,test_loss");
    FILE *fs = ek_csv_open(&c, "summary.csv",
                           "dataset,depth,cond,seed,auc,final_acc,final_loss,angle_before,"
                           "angle_after,matrix_after");
    char phase[96];
    for (size_t di = 0; di < ndep; di++) {
        ek_recipe rd = r;
        rd.depth = depths[di];
        const size_t last = rd.depth - 1;
        for (size_t sd = 0; sd < c.seeds; sd++) {
            const uint64_t seed = c.seed0 + sd;
            fan_net *base[N_CONDS];
            base[C_FA] = ek_make_net(&rd, 784, 10, FAN_RULE_FA, seed, seed + FEEDBACK_SEED_OFFSET);
            EK_TRY(fan_net_clone(&base[C_FA_NOISE], base[C_FA]), fan_net_errmsg(base[C_FA]));
            EK_TRY(fan_net_clone(&base[C_BP], base[C_FA]), fan_net_errmsg(base[C_FA]));
            EK_TRY(fan_net_set_rule(base[C_BP], FAN_RULE_BP), fan_net_errmsg(base[C_BP]));
            snprintf(phase, sizeof phase, "depth %zu seed %zu/%zu noise", rd.depth, sd + 1, c.seeds);
            ek_progress_phase(&pg, phase);
            ek_noise_pretrain(base[C_FA_NOISE], &rd, seed + NOISE_SEED_OFFSET, &pg);
            for (size_t t = 0; t < nd; t++) {
                cell *ce = &cells[t * ndep + di];
                for (int k = 0; k < N_CONDS; k++) {
                    snprintf(phase, sizeof phase, "depth %zu seed %zu/%zu %s %s", rd.depth, sd + 1,
                             c.seeds, tasks[t].name, COND_KEY[k]);
                    ek_progress_phase(&pg, phase);
                    fan_net *net = NULL;
                    EK_TRY(fan_net_clone(&net, base[k]), fan_net_errmsg(base[k]));
                    ce->angle0[k][sd] = ek_angle(net, last, NULL, NULL, 0);
                    const size_t np = ek_train_curve(net, &rd, tasks[t].train, tasks[t].test,
                                                     seed + SHUFFLE_SEED_OFFSET, 0, pts, &pg);
                    ce->angle1[k][sd] = ek_angle(net, last, &ce->matrix1[k][sd], NULL, 0);
                    ce->auc[k][sd] = ek_curve_auc(pts, np);
                    ce->final_acc[k][sd] = pts[np - 1].test_acc;
                    ce->final_loss[k][sd] = pts[np - 1].test_loss;
                    for (size_t p = 0; p < np; p++) {
                        ce->acc[k][sd * points + p] = pts[p].test_acc;
                        ce->loss[k][sd * points + p] = pts[p].test_loss;
                        fprintf(fc, "%s,%zu,%s,%llu,%.4f,%.5f,%.5f\n", tasks[t].name, rd.depth,
                                COND_KEY[k], (unsigned long long)seed, pts[p].epoch,
                                pts[p].test_acc, pts[p].test_loss);
                    }
                    fprintf(fs, "%s,%zu,%s,%llu,%.5f,%.5f,%.5f,%.3f,%.3f,%.3f\n", tasks[t].name,
                            rd.depth, COND_KEY[k], (unsigned long long)seed, ce->auc[k][sd],
                            ce->final_acc[k][sd], ce->final_loss[k][sd], ce->angle0[k][sd],
                            ce->angle1[k][sd], ce->matrix1[k][sd]);
                    fan_net_free(net);
                }
            }
            for (int k = 0; k < N_CONDS; k++) fan_net_free(base[k]);
        }
    }
    ek_progress_done(&pg);
    ek_csv_close(fc);
    ek_csv_close(fs);

    /* Figure bands: one file per dataset and depth. */
    /* Evaluation points in epochs, as the last run placed them (whole batches). */
    double *x = ek_xcalloc(points, sizeof(double));
    for (size_t p = 0; p < points; p++) x[p] = pts[p].epoch;
    for (size_t t = 0; t < nd; t++)
        for (size_t di = 0; di < ndep; di++) {
            const cell *ce = &cells[t * ndep + di];
            ek_series s[2 * N_CONDS];
            char names[2 * N_CONDS][32];
            for (int k = 0; k < N_CONDS; k++) {
                snprintf(names[2 * k], 32, "%s_acc", COND_KEY[k]);
                snprintf(names[2 * k + 1], 32, "%s_loss", COND_KEY[k]);
                s[2 * k] = (ek_series){names[2 * k], ce->acc[k]};
                s[2 * k + 1] = (ek_series){names[2 * k + 1], ce->loss[k]};
            }
            char file[96];
            snprintf(file, sizeof file, "bands_%s_d%zu.csv", tasks[t].name, depths[di]);
            ek_write_bands(&c, file, "epoch", x, points, c.seeds, s, 2 * N_CONDS);
        }
    free(x);
    /* Statistics against depth, one file per dataset: depth, then per condition AUC, final
       accuracy and final angle (ek_write_bands wants [seed][depth]). */
    double *xd = ek_xcalloc(ndep, sizeof(double));
    for (size_t di = 0; di < ndep; di++) xd[di] = (double)depths[di];
    for (size_t t = 0; t < nd; t++) {
        double *v[N_CONDS][3];
        ek_series s[N_CONDS * 3];
        char names[N_CONDS * 3][32];
        static const char *const what[3] = {"auc", "acc", "angle"};
        for (int k = 0; k < N_CONDS; k++)
            for (int w = 0; w < 3; w++) {
                v[k][w] = ek_xcalloc(c.seeds * ndep, sizeof(double));
                for (size_t di = 0; di < ndep; di++) {
                    const cell *ce = &cells[t * ndep + di];
                    const double *src = w == 0 ? ce->auc[k] : w == 1 ? ce->final_acc[k] : ce->angle1[k];
                    for (size_t sd = 0; sd < c.seeds; sd++) v[k][w][sd * ndep + di] = src[sd];
                }
                snprintf(names[k * 3 + w], 32, "%s_%s", COND_KEY[k], what[w]);
                s[k * 3 + w] = (ek_series){names[k * 3 + w], v[k][w]};
            }
        char file[96];
        snprintf(file, sizeof file, "depth_%s.csv", tasks[t].name);
        ek_write_bands(&c, file, "depth", xd, ndep, c.seeds, s, N_CONDS * 3);
        for (int k = 0; k < N_CONDS; k++)
            for (int w = 0; w < 3; w++) free(v[k][w]);
    }
    free(xd);

    /* Table 1 shape: per dataset and depth, mean +- sd of every statistic. */
    FILE *ft = ek_csv_open(&c, "table.csv",
                           "dataset,depth,cond,n,auc_mean,auc_sd,final_acc_mean,final_acc_sd,"
                           "angle_before_mean,angle_after_mean,angle_after_sd,p_auc_welch,"
                           "p_auc_paired,p_final_welch,p_final_paired,p_angle_welch");
    for (size_t t = 0; t < nd; t++)
        for (size_t di = 0; di < ndep; di++) {
            const cell *ce = &cells[t * ndep + di];
            for (int k = 0; k < N_CONDS; k++) {
                const size_t n = c.seeds;
                double p[5] = {NAN, NAN, NAN, NAN, NAN};
                if (k != C_FA) {
                    p[0] = st_ttest_welch(ce->auc[k], n, ce->auc[C_FA], n).p;
                    p[1] = st_ttest_paired(ce->auc[k], ce->auc[C_FA], n).p;
                    p[2] = st_ttest_welch(ce->final_acc[k], n, ce->final_acc[C_FA], n).p;
                    p[3] = st_ttest_paired(ce->final_acc[k], ce->final_acc[C_FA], n).p;
                    p[4] = st_ttest_welch(ce->angle1[k], n, ce->angle1[C_FA], n).p;
                }
                fprintf(ft, "%s,%zu,%s,%zu,%.5f,%.5f,%.5f,%.5f,%.3f,%.3f,%.3f,%.4g,%.4g,%.4g,%.4g,%.4g\n",
                        tasks[t].name, depths[di], COND_KEY[k], n, st_mean(ce->auc[k], n),
                        n > 1 ? st_sd(ce->auc[k], n) : 0.0, st_mean(ce->final_acc[k], n),
                        n > 1 ? st_sd(ce->final_acc[k], n) : 0.0, st_mean(ce->angle0[k], n),
                        st_mean(ce->angle1[k], n), n > 1 ? st_sd(ce->angle1[k], n) : 0.0, p[0],
                        p[1], p[2], p[3], p[4]);
            }
        }
    ek_csv_close(ft);

    printf("\nData phase: %s lr %g, batch %zu, %zu epochs; noise: %zu steps of %s lr %g, batch %zu\n"
           "(angle: last layer, mean over units, deg; AUC: mean test accuracy over the %zu "
           "epochs, %zu evaluations per epoch)\n",
           r.opt, r.lr, r.batch, r.epochs, r.noise_steps, r.noise_opt, r.noise_lr, r.noise_batch,
           r.epochs, r.evals_per_epoch);
    for (size_t t = 0; t < nd; t++)
        printf("%s: %zu training / %zu test images from %s\n", tasks[t].name,
               fan_dataset_size(tasks[t].train), fan_dataset_size(tasks[t].test),
               ek_data_source(tasks[t].name));
    for (size_t t = 0; t < nd; t++)
        for (size_t di = 0; di < ndep; di++) print_cell(tasks[t].name, depths[di], &cells[t * ndep + di], c.seeds);
    ek_finish(&c);
    for (size_t i = 0; i < nd * ndep; i++) cell_free(&cells[i]);
    free(cells);
    free(pts);
    for (size_t t = 0; t < nd; t++) ek_task_free(&tasks[t]);
    return 0;
}
