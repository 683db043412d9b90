/*
 * cmd_diag.c - `fanoise diag MODEL`: per weight layer, the alignment between forward and feedback
 * weights (the paper's per-unit angles and the whole-matrix angle), the effective rank of W and
 * of B, and a summary of W's singular values. One SVD of W and one of B per layer.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct diag_args {
    int csv;
} diag_args;

static const cli_opt OPTS[] = {
    {"csv", OPT_FLAG, offsetof(diag_args, csv), NULL, "print CSV (a header line, then one line per layer)", NULL},
};

static void defaults(void *p) { memset(p, 0, sizeof(diag_args)); }

typedef struct layer_diag {
    size_t rows, cols, fb_rows, fb_cols;
    double angle_mean, angle_min, angle_median, angle_max, angle_matrix;
    double erank_w, erank_b, sv_max, sv_min, stable_rank, participation;
} layer_diag;

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Effective rank of W_l or B_l, and (for W) the singular-value summary. */
static int spectrum(const fan_net *net, size_t l, fan_matrix which, size_t rows, size_t cols,
                    layer_diag *d)
{
    const size_t n = rows < cols ? rows : cols;
    double *sv = malloc(n * sizeof *sv);
    if (sv == NULL) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    double erank = NAN, pr = NAN, sr = NAN;
    fan_status s = fan_diag_singular_values(net, l, which, sv, n);
    if (s == FAN_OK) s = fan_spectrum_summary(sv, n, &erank, &pr, &sr);
    if (s == FAN_OK && which == FAN_MATRIX_WEIGHTS) {
        d->erank_w = erank;
        d->sv_max = sv[0];
        d->sv_min = sv[n - 1];
        d->stable_rank = sr;
        d->participation = pr;
    } else if (s == FAN_OK) {
        d->erank_b = erank;
    }
    free(sv);
    if (s != FAN_OK) {
        char what[64];
        snprintf(what, sizeof what, "singular values of %s_%zu", which == FAN_MATRIX_WEIGHTS ? "W" : "B", l);
        return cli_lib_error(what, s, fan_net_errmsg(net));
    }
    return CLI_OK;
}

static int diagnose_layer(const fan_net *net, size_t l, layer_diag *d)
{
    d->rows = fan_net_layer_outputs(net, l);
    d->cols = fan_net_layer_inputs(net, l);
    fan_status s = fan_net_feedback_shape(net, l, &d->fb_rows, &d->fb_cols);
    if (s != FAN_OK) return cli_lib_error("feedback shape", s, fan_net_errmsg(net));
    const size_t units = d->cols;
    double *deg = malloc(units * sizeof *deg);
    if (deg == NULL) {
        cli_error("out of memory");
        return CLI_FAIL;
    }
    s = fan_diag_alignment(net, l, deg, units, &d->angle_mean, &d->angle_matrix);
    if (s == FAN_OK) {
        qsort(deg, units, sizeof *deg, cmp_double);
        d->angle_min = deg[0];
        d->angle_max = deg[units - 1];
        d->angle_median = units % 2 ? deg[units / 2] : 0.5 * (deg[units / 2 - 1] + deg[units / 2]);
    }
    free(deg);
    if (s != FAN_OK) {
        char what[64];
        snprintf(what, sizeof what, "alignment of layer %zu", l);
        return cli_lib_error(what, s, fan_net_errmsg(net));
    }
    int rc = spectrum(net, l, FAN_MATRIX_WEIGHTS, d->rows, d->cols, d);
    if (rc == CLI_OK) rc = spectrum(net, l, FAN_MATRIX_FEEDBACK, d->fb_rows, d->fb_cols, d);
    return rc;
}

static void print_text(const char *path, const fan_net *net, const layer_diag *d, size_t layers)
{
    printf("%s: %zu", path, fan_net_input_size(net));
    for (size_t l = 0; l < layers; l++) printf("-%zu", d[l].rows);
    printf(", rule %s\n", fan_rule_name(fan_net_rule(net)));
    printf("angles between W and B in degrees, per unit (a unit is an input of the layer) and of "
           "the whole matrices;\neffective rank (Roy and Vetterli 2007) of W and B; W's singular "
           "values: largest, smallest,\nstable rank, participation ratio\n\n");
    printf("%-5s %-10s %-10s %6s %6s %6s %6s %6s %8s %8s %9s %9s %7s %8s\n", "layer", "W", "B",
           "mean", "min", "median", "max", "matrix", "erank W", "erank B", "sv max", "sv min",
           "stable", "particip");
    for (size_t l = 0; l < layers; l++) {
        char w[32], b[32];
        snprintf(w, sizeof w, "%zux%zu", d[l].rows, d[l].cols);
        snprintf(b, sizeof b, "%zux%zu", d[l].fb_rows, d[l].fb_cols);
        printf("%-5zu %-10s %-10s %6.1f %6.1f %6.1f %6.1f %6.1f %8.2f %8.2f %9.4g %9.4g %7.2f %8.2f\n",
               l, w, b, d[l].angle_mean, d[l].angle_min, d[l].angle_median, d[l].angle_max,
               d[l].angle_matrix, d[l].erank_w, d[l].erank_b, d[l].sv_max, d[l].sv_min,
               d[l].stable_rank, d[l].participation);
    }
}

static void print_csv(const layer_diag *d, size_t layers)
{
    printf("layer,rows,cols,fb_rows,fb_cols,angle_mean,angle_min,angle_median,angle_max,"
           "angle_matrix,erank_w,erank_b,sv_max,sv_min,stable_rank,participation_ratio\n");
    for (size_t l = 0; l < layers; l++)
        printf("%zu,%zu,%zu,%zu,%zu,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.9g,%.9g,%.6f,%.6f\n", l,
               d[l].rows, d[l].cols, d[l].fb_rows, d[l].fb_cols, d[l].angle_mean, d[l].angle_min,
               d[l].angle_median, d[l].angle_max, d[l].angle_matrix, d[l].erank_w, d[l].erank_b,
               d[l].sv_max, d[l].sv_min, d[l].stable_rank, d[l].participation);
}

static int diag_run(void *args, char **pos, size_t n_pos)
{
    (void)n_pos;
    const diag_args *a = args;
    char msg[256];
    fan_net *net = NULL;
    const fan_status s = fan_net_load_v2(&net, pos[0], NULL, 0, NULL, msg, sizeof msg);
    if (s != FAN_OK) return cli_lib_error(pos[0], s, msg);
    const size_t layers = fan_net_num_layers(net);
    layer_diag *d = calloc(layers, sizeof *d);
    int rc = d ? CLI_OK : CLI_FAIL;
    if (d == NULL) cli_error("out of memory");
    for (size_t l = 0; rc == CLI_OK && l < layers; l++) rc = diagnose_layer(net, l, &d[l]);
    if (rc == CLI_OK) {
        if (a->csv) print_csv(d, layers);
        else print_text(pos[0], net, d, layers);
    }
    free(d);
    fan_net_free(net);
    return rc;
}

const cmd_spec CMD_DIAG = {
    "diag", "MODEL",
    "Prints, per weight layer of a saved model: the angles between forward weights W and feedback\n"
    "matrix B (mean, min, median and max over units, and between the whole matrices), the\n"
    "effective rank of W and of B, and W's singular values (largest, smallest, stable rank,\n"
    "participation ratio).\n"
    "  fanoise diag model.fan",
    OPTS, sizeof OPTS / sizeof *OPTS, 1, 1, sizeof(diag_args), defaults, diag_run};
