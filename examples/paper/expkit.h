/*
 * expkit.h - the small kit the paper's experiment programs share: command-line options, the
 * training recipe (every setting a flag), data loading, nets and optimizers from the recipe,
 * progress with ETA on stderr through fan_progress, CSV output and summary helpers.
 *
 * This is example code, not library code: it prints, and on an error it reports the library's
 * message and exits (ek_die), which keeps the six programs short.
 */
#ifndef EXPKIT_H
#define EXPKIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fanoise.h"
#include "stats.h"

/* ---------------------------------------------------------------------------------------- */
/* Errors */

/** Prints "prog: message" to stderr and exits with status 1. */
void ek_die(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;
/** Dies with the call text, the status text and the handle's message when s != FAN_OK. */
#define EK_TRY(call, errmsg_expr)                                                                  \
    do {                                                                                           \
        const fan_status ek_s_ = (call);                                                           \
        if (ek_s_ != FAN_OK) ek_die("%s failed: %s (%s)", #call, fan_strerror(ek_s_), (errmsg_expr)); \
    } while (0)
/** Allocation that dies on failure (the programs' own buffers). */
void *ek_xcalloc(size_t n, size_t size);

/* ---------------------------------------------------------------------------------------- */
/* Command line */

typedef enum ek_opt_type {
    EK_SIZE,   /* size_t, decimal */
    EK_U64,    /* uint64_t, decimal */
    EK_DOUBLE, /* double, any strtod syntax */
    EK_STRING, /* const char *, borrowed from argv */
    EK_FLAG    /* int: present = 1; "--no-NAME" = 0 */
} ek_opt_type;

/** One "--name VALUE" option; ptr points to storage of the type; help names the default. */
typedef struct ek_option {
    const char *name;
    ek_opt_type type;
    void *ptr;
    const char *help;
} ek_option;

/** Options every program has. */
typedef struct ek_common {
    size_t seeds;         /* --seeds N: number of paired seeds */
    uint64_t seed0;       /* --seed0 S: first seed; seed k is seed0 + k */
    const char *out;      /* --out DIR: CSV (and figure) directory */
    const char *data_dir; /* --data DIR: where data/ lives */
    int quiet;            /* --quiet: no progress, summary only */
    const char *prog;     /* program name for messages */
    double t_start;       /* wall clock at parse time, for the "took" line */
} ek_common;

/**
 * Parses argv. Common options first set to defaults (seeds, out given by the caller), then
 * program options from opts. Prints usage for --help and returns 1 (caller exits 0); dies on a
 * bad option or value; returns 0 to go on.
 */
int ek_parse(int argc, char **argv, ek_common *c, const char *summary, const ek_option *opts,
             size_t n_opts);
/** Writes every option and its value as "name = value" lines to c->out/settings.txt. */
void ek_write_settings(const ek_common *c, const ek_option *opts, size_t n_opts);
/** Parses a comma-separated list of sizes ("2,3,4") into v (cap entries); dies on bad input. */
size_t ek_parse_sizes(const char *s, size_t *v, size_t cap);
/** Parses a comma-separated list of numbers ("0.8,1.2") into v (cap entries); dies on bad input. */
size_t ek_parse_doubles(const char *s, double *v, size_t cap);
/** Splits a comma-separated list into at most cap borrowed tokens in buf storage. */
size_t ek_split(const char *s, char *buf, size_t buf_cap, const char **tok, size_t cap);

/* ---------------------------------------------------------------------------------------- */
/* The recipe: network, noise phase, data phase */

typedef struct ek_recipe {
    size_t width;  /* hidden width */
    size_t depth;  /* weight layers: 2 is 784-W-10 */
    const char *init; /* he | xavier | lecun, for both W and B */
    /* noise phase */
    size_t noise_steps;
    size_t noise_batch;
    const char *noise_opt; /* sgd | momentum | adam | adamw | rmsprop */
    double noise_lr;
    double noise_momentum; /* used by the sgd, momentum and rmsprop noise optimizers */
    const char *noise_kind;   /* gaussian | uniform */
    const char *noise_labels; /* hard | soft */
    /* data phase */
    size_t epochs;
    size_t batch;
    size_t train_n; /* training images (0 = all) */
    const char *opt;
    double lr;
    double momentum; /* used by sgd and momentum optimizers, and rmsprop */
    size_t evals_per_epoch;
} ek_recipe;

/** The defaults this work settled on (docs/reproduction.md says why). */
void ek_recipe_defaults(ek_recipe *r);
/** Number of recipe options ek_recipe_options adds. */
#define EK_RECIPE_NOPTS 17
/** Writes the recipe's EK_RECIPE_NOPTS options, bound to r, to opts. */
void ek_recipe_options(ek_recipe *r, ek_option *opts);

/** Creates a net of the recipe's shape (input 784 by default, 10 classes), rule, seeds. */
fan_net *ek_make_net(const ek_recipe *r, size_t inputs, size_t classes, fan_rule rule,
                     uint64_t weight_seed, uint64_t feedback_seed);
/** Creates an optimizer by name for net, with lr and momentum. */
fan_optimizer *ek_make_opt(const char *name, double lr, double momentum, const fan_net *net);
/** Creates the recipe's noise iterator (kind, labels, batch) for a net's shape. */
fan_iter *ek_make_noise(const ek_recipe *r, size_t dim, size_t classes, uint64_t seed);

/* ---------------------------------------------------------------------------------------- */
/* Progress on stderr with ETA, fed by the library's fan_progress callback */

typedef struct ek_progress {
    int quiet, tty;
    const char *phase;
    double total_units; /* whole program: steps, with evaluations counted as equivalent steps */
    double done_units;  /* finished before the running call */
    double call_units;  /* of the running call */
    double t0, last_print;
} ek_progress;

void ek_progress_init(ek_progress *pg, const ek_common *c, double total_units);
/** Names the phase shown on the progress line. */
void ek_progress_phase(ek_progress *pg, const char *phase);
/** The fan_progress_fn: pass the ek_progress as user data. Never asks to stop. */
int ek_progress_cb(const fan_progress *p, void *user);
/** Adds finished units that ran outside a library loop (evaluations). */
void ek_progress_add(ek_progress *pg, double units);
/** Ends the progress line and prints the elapsed wall time. */
void ek_progress_done(ek_progress *pg);
/** Wall clock in seconds (monotonic). */
double ek_now(void);

/* ---------------------------------------------------------------------------------------- */
/* Training helpers */

/** Noise pretraining state kept across chunks so that optimizer moments persist. */
typedef struct ek_noise_run {
    fan_iter *it;
    fan_optimizer *opt;
    size_t done;
} ek_noise_run;

void ek_noise_begin(ek_noise_run *nr, const ek_recipe *r, const fan_net *net, uint64_t seed);
/** Runs `steps` more noise steps; returns the mean loss over them. */
double ek_noise_steps(ek_noise_run *nr, fan_net *net, size_t steps, ek_progress *pg);
void ek_noise_end(ek_noise_run *nr);
/** The whole noise phase of the recipe in one call (fresh optimizer). */
void ek_noise_pretrain(fan_net *net, const ek_recipe *r, uint64_t seed, ek_progress *pg);

/** One evaluation point of a data-training curve. */
typedef struct ek_point {
    double epoch; /* fractional epochs of training done */
    double test_acc, test_loss, train_loss, train_acc;
} ek_point;

/**
 * Trains net on train for the recipe's epochs with a fresh optimizer, evaluating on test
 * (and train, if eval_train) at the start and evals_per_epoch times per epoch. pts receives
 * 1 + epochs * evals_per_epoch points (ek_curve_points). Returns the number of points.
 */
size_t ek_train_curve(fan_net *net, const ek_recipe *r, const fan_dataset *train,
                      const fan_dataset *test, uint64_t shuffle_seed, int eval_train,
                      ek_point *pts, ek_progress *pg);
size_t ek_curve_points(const ek_recipe *r);
/** Accuracy AUC of a curve, from its first point after the start (see docs/reproduction.md). */
double ek_curve_auc(const ek_point *pts, size_t n);

/** Mean per-unit and whole-matrix angle of layer `layer` (per_unit may be NULL). */
double ek_angle(const fan_net *net, size_t layer, double *matrix_deg, double *per_unit,
                size_t n);
/** Effective rank of W_l. */
double ek_erank(const fan_net *net, size_t layer);

/* ---------------------------------------------------------------------------------------- */
/* Data */

/** A task: training and test sets with the same normalisation. */
typedef struct ek_task {
    const char *name;
    fan_dataset *train, *test;
    double mean, std; /* the standardisation both use (after scaling to [0, 1]) */
} ek_task;

/**
 * Loads "fashion" (Fashion-MNIST), "mnist" (MNIST-10k: 8,000 / 2,000) or "digits" (scikit-learn
 * digits, resized to 28x28, split 1,297 / 500 by split_seed). Standardised by the training
 * set's pixel statistics (Fashion-MNIST: 0.286 / 0.353). train_n > 0 keeps that many training
 * samples drawn at random by subset_seed. Dies with the command to fetch data when missing.
 */
ek_task ek_task_load(const char *name, const char *data_dir, size_t train_n, uint64_t subset_seed);
void ek_task_free(ek_task *t);
/**
 * The scikit-learn digits as 8-bit images resized to side x side and, with pad > 0, centred in
 * a frame of pad zero pixels on each side; normalisation FAN_NORM_SCALE.
 */
fan_dataset *ek_load_digits(const char *data_dir, size_t side, size_t pad);
/** Reports where each dataset was found (or "-"), for the summary. */
const char *ek_data_source(const char *name);

/* ---------------------------------------------------------------------------------------- */
/* Output */

/** Creates directory c->out (and parents); dies on failure. */
void ek_mkdir_out(const ek_common *c);
/** Opens c->out/name for writing; writes the header line; dies on failure. */
FILE *ek_csv_open(const ek_common *c, const char *name, const char *header);
void ek_csv_close(FILE *f);
/** Formats "mean +- sd" of n values into buf. */
const char *ek_fmt_msd(const double *x, size_t n, int decimals, char *buf, size_t cap);
/** A metric over seeds and points: v[seed * points + point] (NaN = missing). */
typedef struct ek_series {
    const char *name;
    const double *v;
} ek_series;
/**
 * Writes a wide CSV for figures with error bands: the x column, then per series NAME_mean,
 * NAME_sd, NAME_lo, NAME_hi (mean -+ sd over seeds; sd 0 with one seed).
 */
void ek_write_bands(const ek_common *c, const char *file, const char *xname, const double *x,
                    size_t points, size_t seeds, const ek_series *s, size_t ns);
/** Prints the "results in DIR" line and the elapsed time (unless quiet: then only the dir). */
void ek_finish(const ek_common *c);

#endif
