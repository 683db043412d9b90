/*
 * order_effect - the paper's Fig. 2f-g (claim 7): does the order of noise and data matter?
 * Three FA nets per seed from identical W and B: data only; noise then data; data then noise.
 * Along each phase it records the last layer's per-unit alignment angle, the whole-matrix angle
 * and the Frobenius distance ||W - B||, plus test accuracy, so the figure shows where each order
 * leaves the weights relative to the feedback matrix.
 */
#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_CONDS 3
#define MAX_PHASES 2
#define FEEDBACK_SEED_OFFSET 1000
#define NOISE_SEED_OFFSET 2000
#define SHUFFLE_SEED_OFFSET 4000

enum { C_DATA = 0, C_NOISE_DATA = 1, C_DATA_NOISE = 2 };
enum { PH_NOISE = 0, PH_DATA = 1 };
static const char *const COND_KEY[N_CONDS] = {"data", "noise_data", "data_noise"};
static const char *const COND_NAME[N_CONDS] = {"data only", "noise then data", "data then noise"};
static const int PHASES[N_CONDS][MAX_PHASES] = {{PH_DATA, -1}, {PH_NOISE, PH_DATA}, {PH_DATA, PH_NOISE}};
static const char *const PHASE_NAME[2] = {"noise", "data"};

typedef struct meas {
    double angle, matrix, dist, acc;
} meas;

typedef struct ctx {
    const ek_recipe *r;
    const ek_task *task;
    size_t logs_per_phase;
    FILE *traj;
    ek_progress *pg;
    size_t points;             /* 1 + MAX_PHASES * logs_per_phase */
    double *tr[N_CONDS][3];    /* angle, dist, acc: [seed * points + p], NaN past the end */
} ctx;

static meas measure(fan_net *net, const fan_dataset *test)
{
    meas m;
    const size_t last = fan_net_num_layers(net) - 1;
    m.angle = ek_angle(net, last, &m.matrix, NULL, 0);
    const size_t len = fan_net_layer_inputs(net, last) * fan_net_layer_outputs(net, last);
    float *w = ek_xcalloc(len, sizeof(float)), *b = ek_xcalloc(len, sizeof(float));
    EK_TRY(fan_net_get_weights(net, last, w, len, NULL, 0), fan_net_errmsg(net));
    EK_TRY(fan_net_get_feedback(net, last, b, len), fan_net_errmsg(net));
    double d2 = 0.0;
    for (size_t i = 0; i < len; i++) d2 += ((double)w[i] - b[i]) * ((double)w[i] - b[i]);
    m.dist = sqrt(d2);
    free(w);
    free(b);
    EK_TRY(fan_net_evaluate(net, test, NULL, &m.acc), fan_net_errmsg(net));
    return m;
}

static void log_row(const ctx *cx, int cond, uint64_t seed, int phase_idx, int phase,
                    double frac, const meas *m, size_t sd, size_t p)
{
    const size_t i = sd * cx->points + p;
    cx->tr[cond][0][i] = m->angle;
    cx->tr[cond][1][i] = m->dist;
    cx->tr[cond][2][i] = m->acc;
    fprintf(cx->traj, "%s,%llu,%d,%s,%.4f,%.4f,%.4f,%.4f,%.5f\n", COND_KEY[cond],
            (unsigned long long)seed, phase_idx, PHASE_NAME[phase], phase_idx + frac, m->angle,
            m->matrix, m->dist, m->acc);
}

/* Runs one phase in logs_per_phase chunks, logging after each; returns the final measurement. */
static meas run_phase(const ctx *cx, fan_net *net, int cond, uint64_t seed, size_t sd,
                      int phase_idx, int phase)
{
    const ek_recipe *r = cx->r;
    fan_iter *it = NULL;
    fan_optimizer *opt = NULL;
    size_t total;
    if (phase == PH_NOISE) {
        it = ek_make_noise(r, 784, 10, seed + NOISE_SEED_OFFSET);
        opt = ek_make_opt(r->noise_opt, r->noise_lr, r->noise_momentum, net);
        total = r->noise_steps;
    } else {
        EK_TRY(fan_iter_create_batches(&it, cx->task->train, r->batch, seed + SHUFFLE_SEED_OFFSET, NULL), "");
        opt = ek_make_opt(r->opt, r->lr, r->momentum, net);
        total = r->epochs * fan_iter_batches_per_epoch(it);
    }
    meas m = measure(net, cx->task->test);
    size_t done = 0;
    for (size_t k = 1; k <= cx->logs_per_phase; k++) {
        const size_t target = (k * total + cx->logs_per_phase / 2) / cx->logs_per_phase;
        if (target > done) {
            EK_TRY(fan_train_steps(net, opt, it, target - done, ek_progress_cb, cx->pg),
                   fan_net_errmsg(net));
            ek_progress_add(cx->pg, (double)(target - done));
            done = target;
        }
        m = measure(net, cx->task->test);
        log_row(cx, cond, seed, phase_idx, phase, (double)done / (double)total, &m, sd,
                (size_t)phase_idx * cx->logs_per_phase + k);
    }
    fan_optimizer_free(opt);
    fan_iter_free(it);
    return m;
}

int main(int argc, char **argv)
{
    ek_recipe r;
    ek_recipe_defaults(&r);
    const char *dataset = "fashion";
    size_t logs = 20;
    uint64_t subset_seed = 0;
    ek_option opts[EK_RECIPE_NOPTS + 3];
    ek_recipe_options(&r, opts);
    size_t no = EK_RECIPE_NOPTS;
    opts[no++] = (ek_option){"dataset", EK_STRING, &dataset, "fashion | mnist | digits"};
    opts[no++] = (ek_option){"logs-per-phase", EK_SIZE, &logs, "measurements per phase"};
    opts[no++] = (ek_option){"subset-seed", EK_U64, &subset_seed, "seed of the training subset"};
    ek_common c = {.seeds = 10, .out = "out/paper/order_effect"};
    if (ek_parse(argc, argv, &c,
                 "Fig. 2f-g: noise then data ends closer to B than data alone; data then noise\n"
                 "(claim 7). Last-layer angle and ||W - B|| after every phase.",
                 opts, no))
        return 0;
    if (logs == 0 || r.depth < 2) ek_die("--logs-per-phase must be positive and --depth at least 2");
    ek_mkdir_out(&c);
    ek_write_settings(&c, opts, no);
    ek_task task = ek_task_load(dataset, c.data_dir, r.train_n, subset_seed);
    const size_t data_steps = r.epochs * ((fan_dataset_size(task.train) + r.batch - 1) / r.batch);

    ek_progress pg;
    ek_progress_init(&pg, &c, (double)c.seeds * (3.0 * data_steps + 2.0 * r.noise_steps));
    ctx cx = {&r, &task, logs, NULL, &pg, 1 + MAX_PHASES * logs, {{NULL}}};
    for (int k = 0; k < N_CONDS; k++)
        for (int w = 0; w < 3; w++) {
            cx.tr[k][w] = ek_xcalloc(c.seeds * cx.points, sizeof(double));
            for (size_t i = 0; i < c.seeds * cx.points; i++) cx.tr[k][w][i] = NAN;
        }
    cx.traj = ek_csv_open(&c, "trajectory.csv",
                          "cond,seed,phase_idx,phase,x,angle,matrix_angle,dist,test_acc");
    FILE *fs = ek_csv_open(&c, "phases.csv",
                           "cond,seed,after,angle,matrix_angle,dist,test_acc");
    /* [cond][phase 0 = init, 1, 2][seed] */
    double *ang[N_CONDS][3], *dist[N_CONDS][3], *acc[N_CONDS][3];
    for (int k = 0; k < N_CONDS; k++)
        for (int p = 0; p < 3; p++) {
            ang[k][p] = ek_xcalloc(c.seeds, sizeof(double));
            dist[k][p] = ek_xcalloc(c.seeds, sizeof(double));
            acc[k][p] = ek_xcalloc(c.seeds, sizeof(double));
            for (size_t s = 0; s < c.seeds; s++) ang[k][p][s] = dist[k][p][s] = acc[k][p][s] = NAN;
        }
    char phase[96];
    for (size_t sd = 0; sd < c.seeds; sd++) {
        const uint64_t seed = c.seed0 + sd;
        for (int k = 0; k < N_CONDS; k++) {
            fan_net *net = ek_make_net(&r, 784, 10, FAN_RULE_FA, seed, seed + FEEDBACK_SEED_OFFSET);
            meas m = measure(net, task.test);
            log_row(&cx, k, seed, 0, PHASES[k][0], 0.0, &m, sd, 0);
            fprintf(fs, "%s,%llu,init,%.4f,%.4f,%.4f,%.5f\n", COND_KEY[k], (unsigned long long)seed,
                    m.angle, m.matrix, m.dist, m.acc);
            ang[k][0][sd] = m.angle, dist[k][0][sd] = m.dist, acc[k][0][sd] = m.acc;
            for (int p = 0; p < MAX_PHASES && PHASES[k][p] >= 0; p++) {
                snprintf(phase, sizeof phase, "seed %zu/%zu %s: %s", sd + 1, c.seeds, COND_KEY[k],
                         PHASE_NAME[PHASES[k][p]]);
                ek_progress_phase(&pg, phase);
                m = run_phase(&cx, net, k, seed, sd, p, PHASES[k][p]);
                fprintf(fs, "%s,%llu,%s,%.4f,%.4f,%.4f,%.5f\n", COND_KEY[k],
                        (unsigned long long)seed, PHASE_NAME[PHASES[k][p]], m.angle, m.matrix,
                        m.dist, m.acc);
                ang[k][p + 1][sd] = m.angle, dist[k][p + 1][sd] = m.dist, acc[k][p + 1][sd] = m.acc;
            }
            fan_net_free(net);
        }
    }
    ek_progress_done(&pg);
    ek_csv_close(cx.traj);
    ek_csv_close(fs);

    /* Trajectory bands: x = phases done (0..2), one column group per condition and measure. */
    double *xs = ek_xcalloc(cx.points, sizeof(double));
    for (size_t p = 0; p < cx.points; p++) xs[p] = (double)p / (double)logs;
    ek_series bs[N_CONDS * 3];
    char bnames[N_CONDS * 3][32];
    static const char *const what[3] = {"angle", "dist", "acc"};
    for (int k = 0; k < N_CONDS; k++)
        for (int w = 0; w < 3; w++) {
            snprintf(bnames[k * 3 + w], 32, "%s_%s", COND_KEY[k], what[w]);
            bs[k * 3 + w] = (ek_series){bnames[k * 3 + w], cx.tr[k][w]};
        }
    ek_write_bands(&c, "bands.csv", "phases", xs, cx.points, c.seeds, bs, N_CONDS * 3);
    free(xs);

    /* Mean +- sd after each phase, for the bar panel. */
    FILE *fb = ek_csv_open(&c, "phase_bars.csv",
                           "label,cond,after,angle_mean,angle_sd,dist_mean,dist_sd,acc_mean,acc_sd");
    char b[6][64];
    printf("\nOrder of noise and data (FA, %s, %zu seeds); last layer: per-unit angle (deg), "
           "||W - B||_F, test accuracy\n", task.name, c.seeds);
    printf("%-16s %-8s %-14s %-14s %-16s\n", "condition", "after", "angle", "||W-B||", "test acc");
    int label = 0;
    for (int k = 0; k < N_CONDS; k++)
        for (int p = 0; p < 3; p++) {
            if (p > 0 && (p > MAX_PHASES || PHASES[k][p - 1] < 0)) continue;
            const char *after = p == 0 ? "init" : PHASE_NAME[PHASES[k][p - 1]];
            printf("%-16s %-8s %-14s %-14s %-16s\n", p == 0 ? COND_NAME[k] : "", after,
                   ek_fmt_msd(ang[k][p], c.seeds, 1, b[0], 64),
                   ek_fmt_msd(dist[k][p], c.seeds, 2, b[1], 64),
                   ek_fmt_msd(acc[k][p], c.seeds, 4, b[2], 64));
            const size_t n = c.seeds;
            /* Every order starts from the same nets: the bar file has one "init" row. */
            if (p == 0 && k != C_DATA) continue;
            fprintf(fb, "%d,%s,%s,%.4f,%.4f,%.4f,%.4f,%.5f,%.5f\n", label++, COND_KEY[k], after,
                    st_mean(ang[k][p], n), n > 1 ? st_sd(ang[k][p], n) : 0.0,
                    st_mean(dist[k][p], n), n > 1 ? st_sd(dist[k][p], n) : 0.0,
                    st_mean(acc[k][p], n), n > 1 ? st_sd(acc[k][p], n) : 0.0);
        }
    ek_csv_close(fb);
    /* The claim's comparisons, paired by seed. */
    const size_t n = c.seeds;
    const st_ttest t1 = st_ttest_paired(ang[C_NOISE_DATA][2], ang[C_DATA][1], n);
    const st_ttest t2 = st_ttest_paired(ang[C_DATA_NOISE][2], ang[C_DATA_NOISE][1], n);
    const st_ttest t3 = st_ttest_paired(ang[C_DATA_NOISE][2], ang[C_NOISE_DATA][2], n);
    const st_ttest t4 = st_ttest_paired(dist[C_NOISE_DATA][2], dist[C_DATA][1], n);
    printf("noise->data vs data only, final angle: diff %+.2f deg, paired p = %s; ||W-B|| diff "
           "%+.3f, p = %s\n",
           st_mean(ang[C_NOISE_DATA][2], n) - st_mean(ang[C_DATA][1], n), st_format_p(t1.p, b[3], 64),
           st_mean(dist[C_NOISE_DATA][2], n) - st_mean(dist[C_DATA][1], n), st_format_p(t4.p, b[0], 64));
    printf("data->noise, noise phase moved the angle by %+.2f deg (paired p = %s); final angle vs "
           "noise->data: %+.2f deg (p = %s)\n",
           st_mean(ang[C_DATA_NOISE][2], n) - st_mean(ang[C_DATA_NOISE][1], n),
           st_format_p(t2.p, b[4], 64),
           st_mean(ang[C_DATA_NOISE][2], n) - st_mean(ang[C_NOISE_DATA][2], n),
           st_format_p(t3.p, b[5], 64));
    ek_finish(&c);
    for (int k = 0; k < N_CONDS; k++)
        for (int p = 0; p < 3; p++) free(ang[k][p]), free(dist[k][p]), free(acc[k][p]), free(cx.tr[k][p]);
    ek_task_free(&task);
    return 0;
}
