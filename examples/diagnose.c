/*
 * diagnose.c - prints a per-layer diagnostic report of a saved network: shape and rule,
 * alignment of forward and feedback weights, singular spectra, effective ranks and the principal
 * angles between the dominant subspaces of W and B.
 *
 *   diagnose MODEL_FILE     report on a net saved with fan_net_save
 *   diagnose --demo         create a 784-100-10 net, save it to a temporary file and report on
 *                           it (needs no data)
 *
 * Exit status: 0 on success, 1 when the library fails, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fanoise.h"

/* Principal angles reported per layer (fewer when the layer is narrower). */
#define TOP_ANGLES 5
/* Room for the library's detail message of a failed load. */
#define ERRMSG_CAP 256


static int failed(const fan_net *net, fan_status st, const char *what)
{
    fprintf(stderr, "diagnose: %s: %s (%s)\n", what, fan_strerror(st), fan_net_errmsg(net));
    return 1;
}

/* Per-unit angle statistics and the matrix angle of layer l (l >= 1). */
static int report_alignment(const fan_net *net, size_t l)
{
    const size_t in = fan_net_layer_inputs(net, l);
    double *per = malloc(in * sizeof *per), mean = 0, mat = 0;
    if (per == NULL) {
        fprintf(stderr, "diagnose: out of memory\n");
        return 1;
    }
    fan_status st = fan_diag_alignment(net, l, per, in, &mean, &mat);
    if (st != FAN_OK) {
        free(per);
        return failed(net, st, "alignment");
    }
    double var = 0, lo = per[0], hi = per[0];
    for (size_t i = 0; i < in; i++) {
        var += (per[i] - mean) * (per[i] - mean);
        lo = per[i] < lo ? per[i] : lo;
        hi = per[i] > hi ? per[i] : hi;
    }
    const double sd = in > 1 ? sqrt(var / (double)(in - 1)) : 0.0;
    printf("  alignment W vs B (%zu units): mean %.2f  sd %.2f  min %.2f  max %.2f  "
           "matrix %.2f deg\n", in, mean, sd, lo, hi, mat);
    free(per);
    return 0;
}

/* Singular value summary and the three rank measures of W_l or B_l. */
static int report_spectrum(const fan_net *net, size_t l, fan_matrix which)
{
    /* The feedback matrix has W's shape except under DFA (outputs x inputs). */
    size_t rows = fan_net_layer_outputs(net, l), cols = fan_net_layer_inputs(net, l);
    if (which == FAN_MATRIX_FEEDBACK && fan_net_feedback_shape(net, l, &rows, &cols) != FAN_OK)
        return failed(net, FAN_E_INVALID, "feedback shape");
    const size_t k = rows < cols ? rows : cols;
    double *sv = malloc(k * sizeof *sv), erank = 0, pr = 0, srank = 0;
    if (sv == NULL) {
        fprintf(stderr, "diagnose: out of memory\n");
        return 1;
    }
    /* One SVD, summarised with fan_spectrum_summary, rather than one per measure. */
    fan_status st = fan_diag_singular_values(net, l, which, sv, k);
    if (st == FAN_OK) st = fan_spectrum_summary(sv, k, &erank, &pr, &srank);
    if (st != FAN_OK) {
        free(sv);
        return failed(net, st, "singular values");
    }
    const double smax = sv[0], smin = sv[k - 1];
    printf("  %s: sv max %.4g  min %.4g  condition ", which == FAN_MATRIX_WEIGHTS ? "W" : "B",
           smax, smin);
    if (smin > 0)
        printf("%.4g", smax / smin);
    else
        printf("inf");
    printf("  | effective rank %.2f  participation ratio %.2f  stable rank %.2f (of %zu)\n",
           erank, pr, srank, k);
    free(sv);
    return 0;
}

static int report_angles(const fan_net *net, size_t l)
{
    size_t rows = 0, cols = 0;
    if (fan_net_feedback_shape(net, l, &rows, &cols) != FAN_OK)
        return failed(net, FAN_E_INVALID, "feedback shape");
    size_t k = rows < cols ? rows : cols;
    k = k < TOP_ANGLES ? k : TOP_ANGLES;
    double deg[TOP_ANGLES];
    const fan_status st = fan_diag_principal_angles(net, l, k, deg, k);
    if (st != FAN_OK) return failed(net, st, "principal angles");
    printf("  principal angles, top-%zu left singular subspaces of W and B (deg):", k);
    for (size_t i = 0; i < k; i++) printf(" %.2f", deg[i]);
    printf("\n");
    return 0;
}

static int report(const fan_net *net, const char *path)
{
    const size_t L = fan_net_num_layers(net);
    printf("model %s\n", path);
    printf("%zu weight layers: %zu", L, fan_net_input_size(net));
    for (size_t l = 0; l < L; l++) printf("-%zu", fan_net_layer_outputs(net, l));
    printf("; rule %s; loss %s\n", fan_rule_name(fan_net_rule(net)),
           fan_loss_name(fan_net_loss(net)));
    for (size_t l = 0; l < L; l++) {
        printf("layer %zu: W %zu x %zu, activation %s\n", l, fan_net_layer_outputs(net, l),
               fan_net_layer_inputs(net, l), fan_activation_name(fan_net_activation(net, l)));
        /* The paper's per-unit angle concerns hidden neurons, the inputs of layers >= 1. */
        if (l >= 1 && report_alignment(net, l) != 0) return 1;
        if (report_spectrum(net, l, FAN_MATRIX_WEIGHTS) != 0) return 1;
        if (report_spectrum(net, l, FAN_MATRIX_FEEDBACK) != 0) return 1;
        if (report_angles(net, l) != 0) return 1;
    }
    return 0;
}

static int load_and_report(const char *path)
{
    fan_net *net = NULL;
    char msg[ERRMSG_CAP] = "";
    const fan_status st = fan_net_load_v2(&net, path, NULL, 0, NULL, msg, sizeof msg);
    if (st != FAN_OK) {
        fprintf(stderr, "diagnose: cannot load %s: %s (%s)\n", path, fan_strerror(st), msg);
        return 1;
    }
    const int rc = report(net, path);
    fan_net_free(net);
    return rc;
}

/* Creates the paper's 784-100-10 net, saves it to a fresh temporary file and reports on it. */
static int demo(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    const int len = snprintf(path, sizeof path, "%s/fanoise-diagnose-XXXXXX",
                             dir && dir[0] ? dir : "/tmp");
    if (len < 0 || (size_t)len >= sizeof path) {
        fprintf(stderr, "diagnose: TMPDIR is too long\n");
        return 1;
    }
    const int fd = mkstemp(path);
    if (fd < 0) {
        perror("diagnose: mkstemp");
        return 1;
    }
    close(fd);
    const size_t sizes[3] = {784, 100, 10};
    fan_net *net = NULL;
    fan_status st = fan_net_create(&net, sizes, 3, NULL);
    if (st == FAN_OK) st = fan_net_save(net, path);
    int rc = 0;
    if (st != FAN_OK) {
        rc = failed(net, st, "creating and saving the demo net");
    } else {
        rc = load_and_report(path);
    }
    fan_net_free(net);
    remove(path);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fprintf(stderr, "usage: %s MODEL_FILE | --demo\n", argv[0]);
        return 2;
    }
    return strcmp(argv[1], "--demo") == 0 ? demo() : load_and_report(argv[1]);
}
