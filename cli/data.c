/*
 * data.c - where the tool's datasets come from: a folder of IDX files (--data, the four standard
 * names, gzipped or not), CSV files or .npy pairs, and how they are normalised. Train and eval
 * share these options so that a model is evaluated on data prepared exactly as it was trained on.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_CAP 4096

void cli_data_defaults(data_opts *d)
{
    memset(d, 0, sizeof *d);
    d->csv_label = "last";
    d->normalize = "standardize";
    d->mean = NAN;
    d->std = NAN;
}

/* dir/name.gz or dir/name, whichever exists; 0 if neither. */
static int find_idx(const char *dir, const char *name, char *out)
{
    snprintf(out, PATH_CAP, "%s/%s.gz", dir, name);
    if (access(out, R_OK) == 0) return 1;
    snprintf(out, PATH_CAP, "%s/%s", dir, name);
    return access(out, R_OK) == 0;
}

static int load_idx(const char *dir, int train, fan_dataset **out, FILE *info)
{
    const char *pre = train ? "train" : "t10k";
    char names[2][64], paths[2][PATH_CAP];
    snprintf(names[0], sizeof names[0], "%s-images-idx3-ubyte", pre);
    snprintf(names[1], sizeof names[1], "%s-labels-idx1-ubyte", pre);
    for (int k = 0; k < 2; k++)
        if (!find_idx(dir, names[k], paths[k])) {
            cli_error("--data %s: no %s or %s.gz there", dir, names[k], names[k]);
            return CLI_FAIL;
        }
    const fan_status s = fan_dataset_load_idx(out, paths[0], paths[1], NULL);
    if (s != FAN_OK) {
        char what[2 * PATH_CAP + 32];
        snprintf(what, sizeof what, "loading %s and %s", paths[0], paths[1]);
        return cli_lib_error(what, s, NULL);
    }
    if (info) fprintf(info, "data: %s set %s (%zu samples)\n", train ? "training" : "test", paths[0],
                      fan_dataset_size(*out));
    return CLI_OK;
}

static int load_csv(const data_opts *d, const char *path, fan_dataset **out, FILE *info)
{
    size_t column = FAN_CSV_LAST_COLUMN;
    if (strcmp(d->csv_label, "last") != 0) {
        const size_t n = cli_parse_sizes(d->csv_label, &column, 1);
        if (n != 1) return cli_usage_error("--csv-label: expected 'last' or a column number, got '%s'", d->csv_label);
    }
    const fan_status s = fan_dataset_load_csv(out, path, column, d->csv_header, NULL);
    if (s != FAN_OK) {
        char what[PATH_CAP + 16];
        snprintf(what, sizeof what, "loading %s", path);
        return cli_lib_error(what, s, NULL);
    }
    if (info) fprintf(info, "data: %s (%zu samples)\n", path, fan_dataset_size(*out));
    return CLI_OK;
}

static int load_npy(const char *opt_name, const char *pair, size_t n_classes, fan_dataset **out,
                    FILE *info)
{
    const char *comma = strchr(pair, ',');
    if (comma == NULL || comma == pair || comma[1] == '\0' || strchr(comma + 1, ',') != NULL)
        return cli_usage_error("--%s: expected IMAGES.npy,LABELS.npy, got '%s'", opt_name, pair);
    char images[PATH_CAP];
    snprintf(images, sizeof images, "%.*s", (int)(comma - pair), pair);
    char msg[256];
    fan_create_options o = {sizeof o, NULL, msg, sizeof msg, 0};
    const fan_status s = fan_dataset_load_npy_ex(out, images, comma + 1, n_classes, &o);
    if (s != FAN_OK) return cli_lib_error("loading .npy data", s, msg);
    if (info) fprintf(info, "data: %s (%zu samples)\n", images, fan_dataset_size(*out));
    return CLI_OK;
}

/* One split from whichever source the options name; *out stays NULL when none does. */
static int load_split(const data_opts *d, int train, size_t n_classes, fan_dataset **out, FILE *info)
{
    const char *csv = train ? d->train_csv : d->test_csv, *npy = train ? d->train_npy : d->test_npy;
    *out = NULL;
    if ((d->dir != NULL) + (csv != NULL) + (npy != NULL) > 1)
        return cli_usage_error("give the %s set one way: --data, --%s-csv or --%s-npy",
                               train ? "training" : "test", train ? "train" : "test",
                               train ? "train" : "test");
    if (d->dir != NULL) return load_idx(d->dir, train, out, info);
    if (csv != NULL) return load_csv(d, csv, out, info);
    if (npy != NULL) return load_npy(train ? "train-npy" : "test-npy", npy, n_classes, out, info);
    return CLI_OK;
}

/* The normalisation the options ask for, with statistics from `stats_from` when not given. */
static int normalization(const data_opts *d, const fan_dataset *stats_from, fan_norm *norm,
                         double *mean, double *std, FILE *info)
{
    *mean = 0.0;
    *std = 1.0;
    if (strcmp(d->normalize, "none") == 0) *norm = FAN_NORM_NONE;
    else if (strcmp(d->normalize, "scale") == 0) *norm = FAN_NORM_SCALE;
    else if (strcmp(d->normalize, "standardize") == 0) *norm = FAN_NORM_STANDARDIZE;
    else return cli_usage_error("--normalize: expected none, scale or standardize, got '%s'", d->normalize);
    if (*norm != FAN_NORM_STANDARDIZE) return CLI_OK;
    if (isnan(d->mean) != isnan(d->std)) return cli_usage_error("give both --mean and --std, or neither");
    if (!isnan(d->mean)) {
        if (!(d->std > 0.0)) return cli_usage_error("--std must be positive");
        *mean = d->mean;
        *std = d->std;
        if (info) fprintf(info, "data: standardize with mean %.4f, std %.4f (given)\n", *mean, *std);
        return CLI_OK;
    }
    if (stats_from == NULL)
        return cli_usage_error("--normalize standardize needs --mean and --std, or the training "
                               "set (--data, --train-csv or --train-npy) to compute them from");
    const fan_status s = fan_dataset_compute_stats(stats_from, mean, std);
    if (s != FAN_OK) return cli_lib_error("computing the training set's statistics", s, fan_dataset_errmsg(stats_from));
    if (!(*std > 0.0)) {
        cli_error("the training set is constant (std 0): use --normalize none or scale");
        return CLI_FAIL;
    }
    if (info)
        fprintf(info, "data: standardize with mean %.4f, std %.4f (of the whole training file)\n",
                *mean, *std);
    return CLI_OK;
}

int cli_load_data(const data_opts *d, int want_train, int want_test, size_t n_classes,
                  fan_dataset **train, fan_dataset **test, FILE *info)
{
    *train = *test = NULL;
    fan_dataset *tr = NULL, *te = NULL;
    fan_norm norm = FAN_NORM_NONE;
    double mean = 0.0, std = 1.0;
    const int need_stats = strcmp(d->normalize, "standardize") == 0 && isnan(d->mean);
    int rc = CLI_OK;
    if (want_train || need_stats) rc = load_split(d, 1, n_classes, &tr, want_train ? info : NULL);
    if (rc == CLI_OK && want_train && tr == NULL)
        rc = cli_usage_error("no training set: give --data DIR, --train-csv FILE or --train-npy IMAGES,LABELS");
    if (rc == CLI_OK && want_test) rc = load_split(d, 0, n_classes, &te, info);
    if (rc == CLI_OK) rc = normalization(d, tr, &norm, &mean, &std, info);
    fan_dataset *sets[2] = {tr, te};
    for (int k = 0; rc == CLI_OK && k < 2; k++) {
        if (sets[k] == NULL) continue;
        const fan_status s = fan_dataset_set_normalization(sets[k], norm, mean, std);
        if (s != FAN_OK) rc = cli_lib_error("setting the normalisation", s, fan_dataset_errmsg(sets[k]));
    }
    if (rc != CLI_OK || !want_train) {
        fan_dataset_free(tr);
        tr = NULL;
    }
    if (rc != CLI_OK) {
        fan_dataset_free(te);
        te = NULL;
    }
    *train = tr;
    *test = te;
    return rc;
}
