/*
 * noise_alignment - the paper's Fig. 1 (claims 1-4): a 784-100-10 network trained with feedback
 * alignment on random noise (Gaussian inputs, random labels). Every --log-every steps it records
 * the loss, the last layer's per-unit alignment angle between W and B (mean and spread), the
 * whole-matrix angle, the effective rank of every W and the readout on fresh noise. A BP net
 * trained on the same noise from the same W is the control: without B in the loop nothing
 * should pull W toward B. One-sample t-tests of the per-unit angles against 90 degrees at the
 * start and at the end, per seed.
 */
#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RIGHT_ANGLE 90.0
#define N_CONDS 2 /* FA on noise, and the BP control */
/* Seed offsets: feedback, noise stream and probe batch draw from streams apart from W's. */
#define FEEDBACK_SEED_OFFSET 1000
#define NOISE_SEED_OFFSET 2000
#define PROBE_SEED_OFFSET 3000

typedef struct args {
    ek_recipe r;
    size_t log_every, probe, bins;
    int bp_control;
} args;

/* Per condition: metrics [seed][point]. */
typedef struct series {
    double *loss, *angle, *angle_sd, *matrix, *maxprob, *entropy;
    double *erank[FAN_MAX_LAYERS];
    double *layer_angle[FAN_MAX_LAYERS]; /* mean per-unit angle of every layer l >= 1 */
    double *start_units, *end_units; /* [seed][unit] of the last layer */
    double *hist_start, *hist_end;   /* [seed][bin] */
} series;

static void alloc_series(series *s, size_t seeds, size_t points, size_t layers, size_t units,
                         size_t bins)
{
    const size_t n = seeds * points;
    s->loss = ek_xcalloc(n, sizeof(double));
    s->angle = ek_xcalloc(n, sizeof(double));
    s->angle_sd = ek_xcalloc(n, sizeof(double));
    s->matrix = ek_xcalloc(n, sizeof(double));
    s->maxprob = ek_xcalloc(n, sizeof(double));
    s->entropy = ek_xcalloc(n, sizeof(double));
    for (size_t l = 0; l < layers; l++) s->erank[l] = ek_xcalloc(n, sizeof(double));
    for (size_t l = 0; l < layers; l++) s->layer_angle[l] = ek_xcalloc(n, sizeof(double));
    s->start_units = ek_xcalloc(seeds * units, sizeof(double));
    s->end_units = ek_xcalloc(seeds * units, sizeof(double));
    s->hist_start = ek_xcalloc(seeds * bins, sizeof(double));
    s->hist_end = ek_xcalloc(seeds * bins, sizeof(double));
}

static void free_series(series *s, size_t layers)
{
    free(s->loss);
    free(s->angle);
    free(s->angle_sd);
    free(s->matrix);
    free(s->maxprob);
    free(s->entropy);
    for (size_t l = 0; l < layers; l++) free(s->erank[l]), free(s->layer_angle[l]);
    free(s->start_units);
    free(s->end_units);
    free(s->hist_start);
    free(s->hist_end);
}

/* A fixed batch of fresh noise (never trained on) for the readout and the step-0 loss. */
typedef struct probe {
    float *x;
    int32_t *y;
    size_t n;
} probe;

static probe make_probe(const ek_recipe *r, size_t dim, size_t classes, size_t n, uint64_t seed)
{
    ek_recipe pr = *r;
    pr.noise_batch = n;
    pr.noise_labels = "hard"; /* the probe's labels are only for the step-0 loss */
    fan_iter *it = ek_make_noise(&pr, dim, classes, seed);
    const float *x = NULL;
    const int32_t *y = NULL;
    size_t got = 0;
    EK_TRY(fan_iter_next(it, &x, &y, NULL, &got), fan_iter_errmsg(it));
    probe p = {ek_xcalloc(n * dim, sizeof(float)), ek_xcalloc(n, sizeof(int32_t)), n};
    memcpy(p.x, x, n * dim * sizeof(float));
    memcpy(p.y, y, n * sizeof(int32_t));
    fan_iter_free(it);
    return p;
}

static void measure(fan_net *net, const probe *pb, series *s, size_t idx, size_t layers,
                    double *units, size_t n_units, double *hist, size_t bins)
{
    const size_t last = layers - 1;
    double sdv;
    s->angle[idx] = ek_angle(net, last, &s->matrix[idx], units, n_units);
    sdv = st_sd(units, n_units);
    s->angle_sd[idx] = sdv;
    for (size_t l = 0; l < layers; l++) s->erank[l][idx] = ek_erank(net, l);
    /* Hidden layers too: in deeper nets the question is whether alignment reaches them. */
    for (size_t l = 1; l < layers; l++) s->layer_angle[l][idx] = ek_angle(net, l, NULL, NULL, 0);
    EK_TRY(fan_diag_readout(net, pb->x, pb->n, &s->maxprob[idx], &s->entropy[idx], hist,
                            hist ? bins : 0),
           fan_net_errmsg(net));
}

static void print_row(const char *name, const series *s, size_t seeds, size_t points,
                      size_t units, size_t layers)
{
    double *a0 = ek_xcalloc(seeds, sizeof(double)), *a1 = ek_xcalloc(seeds, sizeof(double));
    double *p0 = ek_xcalloc(seeds, sizeof(double)), *p1 = ek_xcalloc(seeds, sizeof(double));
    double *l1 = ek_xcalloc(seeds, sizeof(double)), *e0 = ek_xcalloc(seeds, sizeof(double));
    double *e1 = ek_xcalloc(seeds, sizeof(double)), *m0 = ek_xcalloc(seeds, sizeof(double));
    double *m1 = ek_xcalloc(seeds, sizeof(double)), *l0 = ek_xcalloc(seeds, sizeof(double));
    for (size_t k = 0; k < seeds; k++) {
        a0[k] = s->angle[k * points];
        a1[k] = s->angle[k * points + points - 1];
        p0[k] = st_ttest_one(s->start_units + k * units, units, RIGHT_ANGLE).p;
        p1[k] = st_ttest_one(s->end_units + k * units, units, RIGHT_ANGLE).p;
        l0[k] = s->loss[k * points];
        l1[k] = s->loss[k * points + points - 1];
        e0[k] = s->erank[0][k * points];
        e1[k] = s->erank[0][k * points + points - 1];
        m0[k] = s->maxprob[k * points];
        m1[k] = s->maxprob[k * points + points - 1];
    }
    /* Per-seed p-values of the 100-unit tests: report the largest (the least significant). */
    double p0max = 0, p1max = 0, p0min = 1, p1min = 1;
    for (size_t k = 0; k < seeds; k++) {
        p0max = fmax(p0max, p0[k]);
        p1max = fmax(p1max, p1[k]);
        p0min = fmin(p0min, p0[k]);
        p1min = fmin(p1min, p1[k]);
    }
    char b[12][64];
    printf("%-9s %-15s %-15s %-8s..%-8s %-8s..%-8s %-14s %-14s %-14s %-14s\n", name,
           ek_fmt_msd(a0, seeds, 1, b[0], 64), ek_fmt_msd(a1, seeds, 1, b[1], 64),
           st_format_p(p0min, b[2], 64), st_format_p(p0max, b[3], 64),
           st_format_p(p1min, b[4], 64), st_format_p(p1max, b[5], 64),
           ek_fmt_msd(l0, seeds, 3, b[6], 64), ek_fmt_msd(l1, seeds, 3, b[7], 64),
           ek_fmt_msd(e0, seeds, 2, b[8], 64), ek_fmt_msd(e1, seeds, 2, b[9], 64));
    printf("%-9s readout mean max-prob on fresh noise: %s -> %s (chance 0.1)\n", "",
           ek_fmt_msd(m0, seeds, 3, b[10], 64), ek_fmt_msd(m1, seeds, 3, b[11], 64));
    (void)layers;
    free(a0), free(a1), free(p0), free(p1), free(l0), free(l1), free(e0), free(e1), free(m0),
        free(m1);
}

int main(int argc, char **argv)
{
    args a;
    memset(&a, 0, sizeof a);
    ek_recipe_defaults(&a.r);
    a.log_every = 200;
    a.probe = 1000;
    a.bins = 50;
    a.bp_control = 1;
    ek_option opts[EK_RECIPE_NOPTS + 4];
    ek_recipe_options(&a.r, opts);
    size_t no = EK_RECIPE_NOPTS;
    opts[no++] = (ek_option){"log-every", EK_SIZE, &a.log_every, "noise steps between measurements"};
    opts[no++] = (ek_option){"probe", EK_SIZE, &a.probe, "fresh noise samples for the readout"};
    opts[no++] = (ek_option){"bins", EK_SIZE, &a.bins, "readout histogram bins over [0, 1]"};
    opts[no++] = (ek_option){"bp-control", EK_FLAG, &a.bp_control, "also train a BP net on the noise"};
    ek_common c = {.seeds = 10, .out = "out/paper/noise_alignment"};
    if (ek_parse(argc, argv, &c,
                 "Fig. 1: FA on random noise aligns W with B, the loss falls to ln C, the readout\n"
                 "goes to chance and the effective rank falls (claims 1-4). Only the recipe's\n"
                 "noise-phase and network settings matter here.",
                 opts, no))
        return 0;
    if (a.log_every == 0 || a.probe == 0 || a.bins == 0 || a.r.noise_steps == 0 || a.r.depth < 2)
        ek_die("--log-every, --probe, --bins, --noise-steps must be positive, --depth at least 2");
    ek_mkdir_out(&c);
    ek_write_settings(&c, opts, no);

    const size_t in = 784, classes = 10, layers = a.r.depth;
    const size_t points = a.r.noise_steps / a.log_every + 1 + (a.r.noise_steps % a.log_every != 0);
    const int nconds = a.bp_control ? N_CONDS : 1;
    const char *cname[N_CONDS] = {"fa", "bp"};
    series s[N_CONDS];
    double *steps = ek_xcalloc(points, sizeof(double));
    fan_net *probe_net = ek_make_net(&a.r, in, classes, FAN_RULE_FA, 0, 1);
    const size_t units = fan_net_layer_inputs(probe_net, layers - 1);
    fan_net_free(probe_net);
    for (int k = 0; k < nconds; k++) alloc_series(&s[k], c.seeds, points, layers, units, a.bins);

    ek_progress pg;
    ek_progress_init(&pg, &c, (double)(c.seeds * nconds * a.r.noise_steps));
    char phase[64];
    for (size_t sd = 0; sd < c.seeds; sd++) {
        const uint64_t seed = c.seed0 + sd;
        probe pb = make_probe(&a.r, in, classes, a.probe, seed + PROBE_SEED_OFFSET);
        for (int k = 0; k < nconds; k++) {
            snprintf(phase, sizeof phase, "seed %zu/%zu %s on noise", sd + 1, c.seeds,
                     k == 0 ? "FA" : "BP");
            ek_progress_phase(&pg, phase);
            fan_net *net = ek_make_net(&a.r, in, classes, k == 0 ? FAN_RULE_FA : FAN_RULE_BP,
                                       seed, seed + FEEDBACK_SEED_OFFSET);
            ek_noise_run nr;
            /* The same noise stream for FA and BP: the rule is the only difference. */
            ek_noise_begin(&nr, &a.r, net, seed + NOISE_SEED_OFFSET);
            size_t p = 0;
            double l0 = NAN;
            EK_TRY(fan_net_loss_value(net, pb.x, pb.y, pb.n, &l0), fan_net_errmsg(net));
            const size_t base = sd * points;
            s[k].loss[base] = l0;
            steps[0] = 0;
            measure(net, &pb, &s[k], base, layers, s[k].start_units + sd * units, units,
                    s[k].hist_start + sd * a.bins, a.bins);
            double *units_buf = ek_xcalloc(units, sizeof(double));
            while (nr.done < a.r.noise_steps) {
                size_t chunk = a.log_every;
                if (chunk > a.r.noise_steps - nr.done) chunk = a.r.noise_steps - nr.done;
                const double loss = ek_noise_steps(&nr, net, chunk, &pg);
                p++;
                steps[p] = (double)nr.done;
                s[k].loss[base + p] = loss;
                const int last = nr.done == a.r.noise_steps;
                measure(net, &pb, &s[k], base + p, layers,
                        last ? s[k].end_units + sd * units : units_buf, units,
                        last ? s[k].hist_end + sd * a.bins : NULL, a.bins);
            }
            free(units_buf);
            ek_noise_end(&nr);
            fan_net_free(net);
        }
        free(pb.x);
        free(pb.y);
    }
    ek_progress_done(&pg);

    /* Long-format trajectory, one row per condition, seed and measurement. */
    char hdr[1024];
    int off = snprintf(hdr, sizeof hdr,
                       "cond,seed,step,loss,angle_mean,angle_sd,angle_matrix,max_prob,entropy");
    for (size_t l = 0; l < layers && off < (int)sizeof hdr - 16; l++)
        off += snprintf(hdr + off, sizeof hdr - (size_t)off, ",erank_w%zu", l);
    for (size_t l = 1; l < layers && off < (int)sizeof hdr - 16; l++)
        off += snprintf(hdr + off, sizeof hdr - (size_t)off, ",angle_l%zu", l);
    FILE *f = ek_csv_open(&c, "trajectory.csv", hdr);
    for (int k = 0; k < nconds; k++)
        for (size_t sd = 0; sd < c.seeds; sd++)
            for (size_t p = 0; p < points; p++) {
                const size_t i = sd * points + p;
                fprintf(f, "%s,%llu,%.0f,%.6f,%.4f,%.4f,%.4f,%.6f,%.6f", cname[k],
                        (unsigned long long)(c.seed0 + sd), steps[p], s[k].loss[i], s[k].angle[i],
                        s[k].angle_sd[i], s[k].matrix[i], s[k].maxprob[i], s[k].entropy[i]);
                for (size_t l = 0; l < layers; l++) fprintf(f, ",%.5f", s[k].erank[l][i]);
                for (size_t l = 1; l < layers; l++) fprintf(f, ",%.4f", s[k].layer_angle[l][i]);
                fputc('\n', f);
            }
    ek_csv_close(f);

    /* Bands for the figure: FA and BP, mean -+ sd over seeds. */
    ek_series bs[2 * 6];
    char names[2 * 6][32];
    size_t nb = 0;
    for (int k = 0; k < nconds; k++) {
        const double *vals[6] = {s[k].loss, s[k].angle, s[k].matrix, s[k].erank[0],
                                 s[k].erank[layers - 1], s[k].maxprob};
        const char *mn[6] = {"loss", "angle", "matrix", "erank_first", "erank_last", "maxprob"};
        for (int m = 0; m < 6; m++) {
            snprintf(names[nb], sizeof names[nb], "%s_%s", cname[k], mn[m]);
            bs[nb] = (ek_series){names[nb], vals[m]};
            nb++;
        }
    }
    ek_write_bands(&c, "bands.csv", "step", steps, points, c.seeds, bs, nb);

    f = ek_csv_open(&c, "unit_angles.csv", "cond,seed,unit,start_deg,end_deg");
    for (int k = 0; k < nconds; k++)
        for (size_t sd = 0; sd < c.seeds; sd++)
            for (size_t u = 0; u < units; u++)
                fprintf(f, "%s,%llu,%zu,%.4f,%.4f\n", cname[k], (unsigned long long)(c.seed0 + sd),
                        u, s[k].start_units[sd * units + u], s[k].end_units[sd * units + u]);
    ek_csv_close(f);

    /* Readout histograms averaged over seeds (fractions of all probabilities per bin). */
    f = ek_csv_open(&c, "readout_hist.csv", a.bp_control
                                                 ? "prob,fa_start,fa_end,bp_end"
                                                 : "prob,fa_start,fa_end");
    for (size_t b = 0; b < a.bins; b++) {
        double v[3] = {0, 0, 0};
        for (size_t sd = 0; sd < c.seeds; sd++) {
            v[0] += s[0].hist_start[sd * a.bins + b] / (double)c.seeds;
            v[1] += s[0].hist_end[sd * a.bins + b] / (double)c.seeds;
            if (a.bp_control) v[2] += s[1].hist_end[sd * a.bins + b] / (double)c.seeds;
        }
        fprintf(f, "%.4f,%.6f,%.6f", (b + 0.5) / (double)a.bins, v[0], v[1]);
        if (a.bp_control) fprintf(f, ",%.6f", v[2]);
        fputc('\n', f);
    }
    ek_csv_close(f);

    /* Per-seed tests against 90 degrees. */
    f = ek_csv_open(&c, "summary.csv",
                    "cond,seed,angle_start,angle_end,t_start,p_start,t_end,p_end,matrix_start,"
                    "matrix_end,loss_start,loss_end,erank_w0_start,erank_w0_end,max_prob_start,"
                    "max_prob_end");
    for (int k = 0; k < nconds; k++)
        for (size_t sd = 0; sd < c.seeds; sd++) {
            const size_t i0 = sd * points, i1 = i0 + points - 1;
            const st_ttest t0 = st_ttest_one(s[k].start_units + sd * units, units, RIGHT_ANGLE);
            const st_ttest t1 = st_ttest_one(s[k].end_units + sd * units, units, RIGHT_ANGLE);
            fprintf(f, "%s,%llu,%.4f,%.4f,%.4f,%.4g,%.4f,%.4g,%.4f,%.4f,%.5f,%.5f,%.4f,%.4f,%.5f,%.5f\n",
                    cname[k], (unsigned long long)(c.seed0 + sd), s[k].angle[i0], s[k].angle[i1],
                    t0.t, t0.p, t1.t, t1.p, s[k].matrix[i0], s[k].matrix[i1], s[k].loss[i0],
                    s[k].loss[i1], s[k].erank[0][i0], s[k].erank[0][i1], s[k].maxprob[i0],
                    s[k].maxprob[i1]);
        }
    ek_csv_close(f);

    printf("\nNoise pretraining, %zu-layer net, %zu steps (%s lr %g, batch %zu), %zu seeds\n",
           layers, a.r.noise_steps, a.r.noise_opt, a.r.noise_lr, a.r.noise_batch, c.seeds);
    printf("last-layer per-unit angle (deg), t-test of %zu units vs 90 per seed (p range over "
           "seeds)\n", units);
    printf("%-9s %-15s %-15s %-18s %-18s %-14s %-14s %-14s %-14s\n", "rule", "angle start",
           "angle end", "p start (min..max)", "p end (min..max)", "loss start", "loss end",
           "erank W0 start", "erank W0 end");
    for (int k = 0; k < nconds; k++)
        print_row(k == 0 ? "FA noise" : "BP noise", &s[k], c.seeds, points, units, layers);
    printf("(ln 10 = %.3f)\n", log((double)classes));
    ek_finish(&c);
    for (int k = 0; k < nconds; k++) free_series(&s[k], layers);
    free(steps);
    return 0;
}
