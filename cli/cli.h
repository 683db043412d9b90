/*
 * cli.h - the fanoise command-line tool: what its files share. The tool uses only the public
 * header of the library.
 *
 *   main.c       dispatch to a command, --help and --version of the tool
 *   options.c    command-line and config-file parsing, usage text (exit status 2 on bad input)
 *   names.c      the library's enumeration names as command-line choices
 *   data.c       datasets from IDX folders, CSV and .npy files, normalisation
 *   progress.c   progress bar (terminal) or plain lines, and the CSV log
 *   cmd_*.c      one command each: train, eval, diag, info, export
 */
#ifndef FANOISE_CLI_H
#define FANOISE_CLI_H

#include "fanoise.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses: success, a failure while running (file, data, library), a usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* ---- options ------------------------------------------------------------------------------ */

typedef enum opt_type {
    OPT_FLAG = 0,   /* int: --name sets 1, --no-name sets 0; config: true/false/yes/no/1/0 */
    OPT_STRING = 1, /* const char *, borrowed from argv or the config file's storage */
    OPT_SIZE = 2,   /* size_t, a non-negative decimal integer */
    OPT_U64 = 3,    /* uint64_t, a non-negative decimal integer (seeds) */
    OPT_DOUBLE = 4  /* double, finite */
} opt_type;

/* One option: --name, stored at byte offset `off` of the command's argument struct. */
typedef struct cli_opt {
    const char *name;
    opt_type type;
    size_t off;
    const char *metavar; /* shown in the usage ("N", "FILE"); NULL for flags */
    const char *help;
    /* For a choice among the library's names: writes them into buf (shown by --help). */
    const char *(*choices)(char *buf, size_t cap);
} cli_opt;

/* A command: its options, positional arguments and entry point. */
typedef struct cmd_spec {
    const char *name;     /* "train" */
    const char *args;     /* positional part of the usage line, e.g. "MODEL" ("" for none) */
    const char *summary;  /* what it does, a few lines */
    const cli_opt *opts;
    size_t n_opts;
    size_t min_pos, max_pos; /* how many positional arguments it takes */
    size_t args_size;        /* sizeof its argument struct */
    void (*defaults)(void *args);
    int (*run)(void *args, char **pos, size_t n_pos); /* returns an exit status */
} cmd_spec;

/* Every command, for dispatch, `fanoise --help` and config files shared between commands. */
extern const cmd_spec CMD_TRAIN, CMD_EVAL, CMD_DIAG, CMD_INFO, CMD_EXPORT;
extern const cmd_spec *const CLI_COMMANDS[];
extern const size_t CLI_N_COMMANDS;

/*
 * Runs a command: defaults, then `--config FILE` if given (key = value lines; keys are option
 * names; a key that only other commands take is ignored, an unknown key is an error), then the
 * command line, which overrides the file. --help prints the usage. Returns the exit status.
 */
int cli_run(const cmd_spec *spec, int argc, char **argv);
/* Prints the command's usage and options with their defaults. */
void cli_usage(const cmd_spec *spec, FILE *f);

/* Messages on stderr: "fanoise CMD: ..." */
void cli_set_command(const char *name);
void cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* A usage error: the message, a pointer to --help; returns CLI_USAGE. */
int cli_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* A failed library call: what was being done, the status text and the handle's message. */
int cli_lib_error(const char *what, fan_status s, const char *detail);

/* ---- names -------------------------------------------------------------------------------- */

/* Parses a name the library gives through fan_*_name into its value; 0 if unknown. */
int cli_rule(const char *name, fan_rule *out);
int cli_activation(const char *name, fan_activation *out);
int cli_loss(const char *name, fan_loss *out);
int cli_optimizer(const char *name, fan_optimizer_kind *out);
int cli_init(const char *name, fan_init *out);
/* Writes the known names of one of the above, comma-separated, into buf. */
const char *cli_rule_names(char *buf, size_t cap);
const char *cli_activation_names(char *buf, size_t cap);
const char *cli_loss_names(char *buf, size_t cap);
const char *cli_optimizer_names(char *buf, size_t cap);
const char *cli_init_names(char *buf, size_t cap);

/* Parses "784,100,10" into sizes (cap entries); returns the count, 0 on a malformed list. */
size_t cli_parse_sizes(const char *s, size_t *sizes, size_t cap);

/* ---- data --------------------------------------------------------------------------------- */

/* Where the data comes from and how it is normalised; the data options of train and eval. */
typedef struct data_opts {
    const char *dir;        /* --data: a folder of IDX files */
    const char *train_csv, *test_csv;
    const char *csv_label;  /* "last" or a 0-based column number */
    int csv_header;
    const char *train_npy, *test_npy; /* "IMAGES.npy,LABELS.npy" */
    const char *normalize;  /* none | scale | standardize */
    double mean, std;       /* NaN: computed from the whole training file */
} data_opts;

/* The option table entries of data_opts member M of a command's argument struct T. */
#define CLI_DATA_OPTIONS(T, M)                                                                   \
    {"data", OPT_STRING, offsetof(T, M.dir), "DIR",                                             \
     "folder of IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, "                  \
     "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end in .gz)", NULL},                   \
    {"train-csv", OPT_STRING, offsetof(T, M.train_csv), "FILE",                                 \
     "training set as CSV (plain or gzip): a sample per line, one integer label column", NULL},       \
    {"test-csv", OPT_STRING, offsetof(T, M.test_csv), "FILE", "test set as CSV", NULL},               \
    {"csv-label", OPT_STRING, offsetof(T, M.csv_label), "N|last",                              \
     "the label's column in CSV files, 0-based", NULL},                                                \
    {"csv-header", OPT_FLAG, offsetof(T, M.csv_header), NULL,                                   \
     "CSV files start with a header line", NULL},                                                      \
    {"train-npy", OPT_STRING, offsetof(T, M.train_npy), "IMAGES,LABELS",                        \
     "training set as two .npy files: float32 or uint8 images, integer labels", NULL},                \
    {"test-npy", OPT_STRING, offsetof(T, M.test_npy), "IMAGES,LABELS",                          \
     "test set as two .npy files", NULL},                                                              \
    {"normalize", OPT_STRING, offsetof(T, M.normalize), "MODE",                                 \
     "none | scale (uint8 images to [0, 1]) | standardize (scale, then (v - mean) / std)", NULL},     \
    {"mean", OPT_DOUBLE, offsetof(T, M.mean), "X",                                              \
     "mean for standardize (default: of the whole training file, after scaling)", NULL},             \
    {"std", OPT_DOUBLE, offsetof(T, M.std), "X",                                                \
     "standard deviation for standardize (default: as for --mean)", NULL}

void cli_data_defaults(data_opts *d);

/*
 * Loads the training set (want_train) and/or the test set as the options say, with n_classes
 * for .npy labels (0: largest label + 1), normalised by the options. Statistics for
 * standardisation come from the whole training file when mean/std are not given (loaded for that
 * alone if only the test set is wanted). Prints what it did to `info` (may be NULL). Returns an
 * exit status; on success the caller owns *train and *test (NULL when not wanted or absent).
 */
int cli_load_data(const data_opts *d, int want_train, int want_test, size_t n_classes,
                  fan_dataset **train, fan_dataset **test, FILE *info);

/* ---- progress ----------------------------------------------------------------------------- */

typedef struct progress {
    int mode;            /* PROGRESS_* */
    double t0, last;     /* wall clock at start, at the last print */
    size_t total, done;  /* steps of the whole run; steps of the calls before the running one */
    size_t call_steps;   /* steps of the running (or last) library call */
    const char *phase;
    int bar_open;        /* a bar line is on the terminal without its newline */
    FILE *log;           /* --log CSV, or NULL */
    size_t log_every;
} progress;

enum { PROGRESS_NONE = 0, PROGRESS_PLAIN = 1, PROGRESS_BAR = 2 };

/* mode_name: auto (bar on a terminal, plain lines otherwise), bar, plain or none. Returns 1, 0
   for an unknown name, -1 if log_path (may be NULL) cannot be created; the log gets its header. */
int progress_init(progress *p, const char *mode_name, size_t total, const char *log_path,
                  size_t log_every);
/* Names what the next library calls do; counts the steps of the calls before. */
void progress_phase(progress *p, const char *phase);
/* The library's fan_progress_fn; user is the progress. */
int progress_cb(const fan_progress *fp, void *user);
/* Ends a bar line so that the next output starts on its own line. */
void progress_clear(progress *p);
/* A log row of an evaluation (NaN for what was not measured). */
void progress_log_eval(progress *p, size_t epoch, double train_loss, double val_loss,
                       double val_acc, double test_loss, double test_acc);
/* Closes the log; returns 0 if every write to it succeeded. */
int progress_close(progress *p);
double cli_now(void);

#endif /* FANOISE_CLI_H */
