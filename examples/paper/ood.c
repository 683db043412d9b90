/*
 * ood - the paper's Fig. 5 (claim 10): robustness out of distribution. FA without noise, FA after
 * noise and BP are trained on MNIST-10k (paired by seed) and tested on the MNIST test images
 * translated (mean over the four directions), rotated (mean over both senses) and scaled, at
 * several magnitudes, and on the scikit-learn handwritten digits, a different set of writers and
 * scanner standing in for USPS: resized from 8x8 to fill 28x28 (as USPS is usually resized) and,
 * MNIST-like, to 20x20 centred in 28x28.
 */
#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_CONDS 3
#define MAX_MAGS 16
#define FEEDBACK_SEED_OFFSET 1000
#define NOISE_SEED_OFFSET 2000
#define SHUFFLE_SEED_OFFSET 4000
/* MNIST centres each digit's 20x20 box in the 28x28 frame. */
#define MNIST_BOX 20
#define MNIST_PAD 4
#define MNIST_SIDE 28

enum { C_FA = 0, C_FA_NOISE = 1, C_BP = 2 };
static const char *const COND_KEY[N_CONDS] = {"fa", "fa_noise", "bp"};

enum { F_TRANSLATE = 0, F_ROTATE = 1, F_SCALE = 2, N_FAMILIES = 3 };
static const char *const FAMILY[N_FAMILIES] = {"translate", "rotate", "scale"};
/* Variants averaged per magnitude: 4 directions, 2 senses, 1 zoom. */
#define MAX_VARIANTS 4

typedef struct family {
    size_t n_mags;
    double mags[MAX_MAGS];
    size_t n_var;
    fan_dataset *sets[MAX_MAGS][MAX_VARIANTS];
} family;

static void build_family(family *f, int kind, const fan_dataset *test)
{
    for (size_t m = 0; m < f->n_mags; m++) {
        const double v = f->mags[m];
        if (kind == F_TRANSLATE) {
            const double d[MAX_VARIANTS][2] = {{v, 0}, {-v, 0}, {0, v}, {0, -v}};
            f->n_var = 4;
            for (size_t k = 0; k < 4; k++)
                EK_TRY(fan_dataset_translate(&f->sets[m][k], test, d[k][0], d[k][1]),
                       fan_dataset_errmsg(test));
        } else if (kind == F_ROTATE) {
            f->n_var = 2;
            EK_TRY(fan_dataset_rotate(&f->sets[m][0], test, v), fan_dataset_errmsg(test));
            EK_TRY(fan_dataset_rotate(&f->sets[m][1], test, -v), fan_dataset_errmsg(test));
        } else {
            f->n_var = 1;
            EK_TRY(fan_dataset_scale(&f->sets[m][0], test, v), fan_dataset_errmsg(test));
        }
    }
}

static double accuracy(fan_net *net, const fan_dataset *ds)
{
    double acc = NAN;
    EK_TRY(fan_net_evaluate(net, ds, NULL, &acc), fan_net_errmsg(net));
    return acc;
}

static void print_p(const double *x, const double *ref, size_t n, char *buf, size_t cap)
{
    char b1[24], b2[24];
    snprintf(buf, cap, "%s (%s)", st_format_p(st_ttest_welch(x, n, ref, n).p, b1, sizeof b1),
             st_format_p(st_ttest_paired(x, ref, n).p, b2, sizeof b2));
}

int main(int argc, char **argv)
{
    ek_recipe r;
    ek_recipe_defaults(&r);
    const char *dataset = "mnist";
    const char *lists[N_FAMILIES] = {"1,2,3,4,5,6", "10,20,30,40,50,60", "0.5,0.6,0.7,0.8,0.9,1.1,1.2,1.3,1.4,1.5"};
    uint64_t subset_seed = 0;
    ek_option opts[EK_RECIPE_NOPTS + 5];
    ek_recipe_options(&r, opts);
    size_t no = EK_RECIPE_NOPTS;
    opts[no++] = (ek_option){"dataset", EK_STRING, &dataset, "training set: mnist | fashion"};
    opts[no++] = (ek_option){"translations", EK_STRING, &lists[0], "shifts in pixels (4 directions each)"};
    opts[no++] = (ek_option){"rotations", EK_STRING, &lists[1], "angles in degrees (both senses each)"};
    opts[no++] = (ek_option){"scales", EK_STRING, &lists[2], "zoom factors about the centre"};
    opts[no++] = (ek_option){"subset-seed", EK_U64, &subset_seed, "seed of the training subset"};
    ek_common c = {.seeds = 10, .out = "out/paper/ood"};
    if (ek_parse(argc, argv, &c,
                 "Fig. 5: trained on MNIST, FA after noise scores higher on translated, rotated and\n"
                 "scaled test digits and on another set of handwritten digits (claim 10).",
                 opts, no))
        return 0;
    ek_mkdir_out(&c);
    ek_write_settings(&c, opts, no);
    ek_task task = ek_task_load(dataset, c.data_dir, r.train_n, subset_seed);
    family fam[N_FAMILIES];
    memset(fam, 0, sizeof fam);
    for (int f = 0; f < N_FAMILIES; f++) {
        fam[f].n_mags = ek_parse_doubles(lists[f], fam[f].mags, MAX_MAGS);
        build_family(&fam[f], f, task.test);
    }
    /* The digits in MNIST's normalisation: the nets see them as they saw MNIST. */
    fan_dataset *digits[2];
    digits[0] = ek_load_digits(c.data_dir, MNIST_SIDE, 0);
    digits[1] = ek_load_digits(c.data_dir, MNIST_BOX, MNIST_PAD);
    for (int k = 0; k < 2; k++)
        EK_TRY(fan_dataset_set_normalization(digits[k], FAN_NORM_STANDARDIZE, task.mean, task.std),
               fan_dataset_errmsg(digits[k]));
    static const char *const DIGITS_KEY[2] = {"digits_full", "digits_box20"};

    /* [cond][family][mag][seed], plus clean and digits [cond][seed]. */
    double *acc[N_CONDS][N_FAMILIES][MAX_MAGS], *clean[N_CONDS], *dig[N_CONDS][2];
    for (int k = 0; k < N_CONDS; k++) {
        clean[k] = ek_xcalloc(c.seeds, sizeof(double));
        for (int d = 0; d < 2; d++) dig[k][d] = ek_xcalloc(c.seeds, sizeof(double));
        for (int f = 0; f < N_FAMILIES; f++)
            for (size_t m = 0; m < fam[f].n_mags; m++) acc[k][f][m] = ek_xcalloc(c.seeds, sizeof(double));
    }
    const size_t bpe = (fan_dataset_size(task.train) + r.batch - 1) / r.batch;
    ek_progress pg;
    ek_progress_init(&pg, &c, (double)c.seeds * (double)(r.noise_steps + N_CONDS * r.epochs * bpe));
    ek_point *pts = ek_xcalloc(ek_curve_points(&r), sizeof(ek_point));
    FILE *fo = ek_csv_open(&c, "ood.csv", "cond,seed,test,magnitude,acc");
    char phase[96];
    for (size_t sd = 0; sd < c.seeds; sd++) {
        const uint64_t seed = c.seed0 + sd;
        fan_net *net[N_CONDS];
        net[C_FA] = ek_make_net(&r, 784, 10, FAN_RULE_FA, seed, seed + FEEDBACK_SEED_OFFSET);
        EK_TRY(fan_net_clone(&net[C_FA_NOISE], net[C_FA]), fan_net_errmsg(net[C_FA]));
        EK_TRY(fan_net_clone(&net[C_BP], net[C_FA]), fan_net_errmsg(net[C_FA]));
        EK_TRY(fan_net_set_rule(net[C_BP], FAN_RULE_BP), fan_net_errmsg(net[C_BP]));
        snprintf(phase, sizeof phase, "seed %zu/%zu noise", sd + 1, c.seeds);
        ek_progress_phase(&pg, phase);
        ek_noise_pretrain(net[C_FA_NOISE], &r, seed + NOISE_SEED_OFFSET, &pg);
        for (int k = 0; k < N_CONDS; k++) {
            snprintf(phase, sizeof phase, "seed %zu/%zu %s", sd + 1, c.seeds, COND_KEY[k]);
            ek_progress_phase(&pg, phase);
            (void)ek_train_curve(net[k], &r, task.train, task.test, seed + SHUFFLE_SEED_OFFSET, 0,
                                 pts, &pg);
            clean[k][sd] = accuracy(net[k], task.test);
            fprintf(fo, "%s,%llu,clean,0,%.5f\n", COND_KEY[k], (unsigned long long)seed, clean[k][sd]);
            for (int f = 0; f < N_FAMILIES; f++)
                for (size_t m = 0; m < fam[f].n_mags; m++) {
                    double sum = 0.0;
                    for (size_t v = 0; v < fam[f].n_var; v++) sum += accuracy(net[k], fam[f].sets[m][v]);
                    acc[k][f][m][sd] = sum / (double)fam[f].n_var;
                    fprintf(fo, "%s,%llu,%s,%g,%.5f\n", COND_KEY[k], (unsigned long long)seed,
                            FAMILY[f], fam[f].mags[m], acc[k][f][m][sd]);
                }
            for (int d = 0; d < 2; d++) {
                dig[k][d][sd] = accuracy(net[k], digits[d]);
                fprintf(fo, "%s,%llu,%s,0,%.5f\n", COND_KEY[k], (unsigned long long)seed,
                        DIGITS_KEY[d], dig[k][d][sd]);
            }
        }
        for (int k = 0; k < N_CONDS; k++) fan_net_free(net[k]);
    }
    ek_progress_done(&pg);
    ek_csv_close(fo);

    /* Per family: magnitude, then mean/sd/lo/hi per condition (for the figure). The clean test
       set joins each curve at the identity transform (shift 0, rotation 0, zoom 1). */
    for (int f = 0; f < N_FAMILIES; f++) {
        char file[64];
        snprintf(file, sizeof file, "bands_%s.csv", FAMILY[f]);
        const double identity = f == F_SCALE ? 1.0 : 0.0;
        const size_t nm = fam[f].n_mags + 1;
        size_t at = 0;
        while (at < fam[f].n_mags && fam[f].mags[at] < identity) at++;
        double *xm = ek_xcalloc(nm, sizeof(double));
        double *v[N_CONDS];
        ek_series s[N_CONDS];
        for (int k = 0; k < N_CONDS; k++) {
            /* ek_write_bands wants [seed][point]; ours is [point][seed]. */
            v[k] = ek_xcalloc(c.seeds * nm, sizeof(double));
            for (size_t m = 0; m < nm; m++) {
                const int is_clean = m == at;
                const size_t src = m < at ? m : m - 1;
                xm[m] = is_clean ? identity : fam[f].mags[src];
                for (size_t sd = 0; sd < c.seeds; sd++)
                    v[k][sd * nm + m] = is_clean ? clean[k][sd] : acc[k][f][src][sd];
            }
            s[k] = (ek_series){COND_KEY[k], v[k]};
        }
        ek_write_bands(&c, file, "magnitude", xm, nm, c.seeds, s, N_CONDS);
        for (int k = 0; k < N_CONDS; k++) free(v[k]);
        free(xm);
    }
    FILE *fb = ek_csv_open(&c, "bars.csv", "label,test,fa_mean,fa_sd,fa_noise_mean,fa_noise_sd,bp_mean,bp_sd");
    const char *bar_name[3] = {"clean test", "digits 28x28", "digits 20x20 in 28x28"};
    for (int i = 0; i < 3; i++) {
        fprintf(fb, "%d,\"%s\"", i, bar_name[i]);
        for (int k = 0; k < N_CONDS; k++) {
            const double *x = i == 0 ? clean[k] : dig[k][i - 1];
            fprintf(fb, ",%.5f,%.5f", st_mean(x, c.seeds), c.seeds > 1 ? st_sd(x, c.seeds) : 0.0);
        }
        fputc('\n', fb);
    }
    ek_csv_close(fb);

    char b[4][64], pbuf[2][48];
    printf("\nOut-of-distribution accuracy; trained on %s (%zu images), %zu seeds. p: Welch vs FA "
           "without noise (paired in brackets)\n", task.name, fan_dataset_size(task.train), c.seeds);
    printf("%-28s %-16s %-16s %-19s %-16s %-19s\n", "test", "FA", "FA after noise", "p",
           "BP", "p");
    /* Then the same relative to each net's own clean accuracy: a net that is better on clean
       digits is also better on shifted ones; the ratio asks whether it degrades less. */
    FILE *ft = ek_csv_open(&c, "table.csv",
                           "measure,test,fa_mean,fa_sd,fa_noise_mean,fa_noise_sd,bp_mean,bp_sd,"
                           "p_noise_welch,p_noise_paired,p_bp_welch,p_bp_paired");
    for (int rel = 0; rel < 2; rel++) {
        if (rel)
            printf("\nRelative to clean accuracy (accuracy on the test / the same net's clean accuracy)\n");
        for (int row = rel; row < 3 + N_FAMILIES; row++) {
            double *v[N_CONDS];
            char label[64];
            for (int k = 0; k < N_CONDS; k++) {
                v[k] = ek_xcalloc(c.seeds, sizeof(double));
                for (size_t sd = 0; sd < c.seeds; sd++) {
                    if (row == 0)
                        v[k][sd] = clean[k][sd];
                    else if (row <= N_FAMILIES) {
                        /* mean over the family's magnitudes */
                        double sum = 0;
                        const int f = row - 1;
                        for (size_t m = 0; m < fam[f].n_mags; m++) sum += acc[k][f][m][sd];
                        v[k][sd] = sum / (double)fam[f].n_mags;
                    } else {
                        v[k][sd] = dig[k][row - N_FAMILIES - 1][sd];
                    }
                    if (rel) v[k][sd] /= clean[k][sd];
                }
            }
            if (row == 0)
                snprintf(label, sizeof label, "clean %s test", task.name);
            else if (row <= N_FAMILIES)
                snprintf(label, sizeof label, "%s (mean over sizes)", FAMILY[row - 1]);
            else
                snprintf(label, sizeof label, "%s", bar_name[row - N_FAMILIES]);
            print_p(v[C_FA_NOISE], v[C_FA], c.seeds, pbuf[0], sizeof pbuf[0]);
            print_p(v[C_BP], v[C_FA], c.seeds, pbuf[1], sizeof pbuf[1]);
            printf("%-28.28s %-16s %-16s %-19s %-16s %-19s\n", label,
                   ek_fmt_msd(v[C_FA], c.seeds, 4, b[0], 64),
                   ek_fmt_msd(v[C_FA_NOISE], c.seeds, 4, b[1], 64), pbuf[0],
                   ek_fmt_msd(v[C_BP], c.seeds, 4, b[2], 64), pbuf[1]);
            const size_t n = c.seeds;
            fprintf(ft, "%s,\"%s\"", rel ? "relative" : "accuracy", label);
            for (int k = 0; k < N_CONDS; k++)
                fprintf(ft, ",%.5f,%.5f", st_mean(v[k], n), n > 1 ? st_sd(v[k], n) : 0.0);
            fprintf(ft, ",%.4g,%.4g,%.4g,%.4g\n", st_ttest_welch(v[C_FA_NOISE], n, v[C_FA], n).p,
                    st_ttest_paired(v[C_FA_NOISE], v[C_FA], n).p,
                    st_ttest_welch(v[C_BP], n, v[C_FA], n).p, st_ttest_paired(v[C_BP], v[C_FA], n).p);
            for (int k = 0; k < N_CONDS; k++) free(v[k]);
        }
    }
    ek_csv_close(ft);
    ek_finish(&c);
    for (int k = 0; k < N_CONDS; k++) {
        free(clean[k]);
        for (int d = 0; d < 2; d++) free(dig[k][d]);
        for (int f = 0; f < N_FAMILIES; f++)
            for (size_t m = 0; m < fam[f].n_mags; m++) free(acc[k][f][m]);
    }
    for (int f = 0; f < N_FAMILIES; f++)
        for (size_t m = 0; m < fam[f].n_mags; m++)
            for (size_t v = 0; v < fam[f].n_var; v++) fan_dataset_free(fam[f].sets[m][v]);
    fan_dataset_free(digits[0]);
    fan_dataset_free(digits[1]);
    free(pts);
    ek_task_free(&task);
    return 0;
}
