/* test_cli.c - the fanoise command-line tool, run for real on small data this test writes: exit
   statuses (0 done, 1 failed while running, 2 bad usage), what each command prints, the round
   trip train -> eval -> info -> diag, logs, config files, every input format and every rule name
   the library knows. The tool is the one built next to this test (../bin/fanoise), or
   $FANOISE_CLI. */
#define _XOPEN_SOURCE 700 /* mkdtemp, posix_spawn, readlink */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <libgen.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fanoise.h"
#include "testutil.h"

extern char **environ;

#define SIDE 4
#define DIM (SIDE * SIDE)
#define CLASSES 10
#define N_TRAIN 400
#define N_TEST 120
#define OUT_CAP 65536

static char g_cli[4096];
static char g_dir[64];

typedef struct result {
    int status;
    char out[OUT_CAP], err[OUT_CAP];
} result;

static void slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
}

/* Runs the tool with the NULL-terminated arguments; captures exit status, stdout and stderr. */
static void run(result *r, const char *const *args)
{
    /* posix_spawn takes char *const argv[]: writable copies of the arguments. */
    char *argv[64];
    size_t n = 0;
    argv[n++] = strdup(g_cli);
    for (; args[n - 1] != NULL && n < 63; n++) argv[n] = strdup(args[n - 1]);
    argv[n] = NULL;
    char out[128], err[128];
    snprintf(out, sizeof out, "%s/stdout.txt", g_dir);
    snprintf(err, sizeof err, "%s/stderr.txt", g_dir);
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644), 0);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, g_cli, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    for (size_t i = 0; i < n; i++) free(argv[i]);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws)); /* never a crash */
    r->status = WEXITSTATUS(ws);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
}

#define RUN(r, ...)                                                                              \
    do {                                                                                         \
        const char *const a_[] = {__VA_ARGS__, NULL};                                            \
        run((r), a_);                                                                            \
    } while (0)

static void expect(const result *r, int status, const char *in_out, const char *in_err)
{
    if (r->status != status || (in_out && !strstr(r->out, in_out)) || (in_err && !strstr(r->err, in_err)))
        print_error("exit %d (wanted %d)\nstdout:\n%s\nstderr:\n%s\n(wanted '%s' / '%s')\n", r->status,
                    status, r->out, r->err, in_out ? in_out : "", in_err ? in_err : "");
    assert_int_equal(r->status, status);
    if (in_out) assert_non_null(strstr(r->out, in_out));
    if (in_err) assert_non_null(strstr(r->err, in_err));
}

static char *path(const char *name)
{
    static char buf[8][256];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* ---- data the tests write: CLASSES classes, class c has bright pixels c and c + 6 ------------- */

static uint64_t g_rng = 99;
static unsigned rnd(unsigned n)
{
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (unsigned)((g_rng >> 33) % n);
}

static void make_images(uint8_t *px, int32_t *labels, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const int c = (int)(i % CLASSES);
        labels[i] = c;
        for (int j = 0; j < DIM; j++)
            px[i * DIM + (size_t)j] = (uint8_t)(j == c || j == c + 6 ? 150 + rnd(100) : rnd(90));
    }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void write_idx(const char *prefix, size_t n, int gz)
{
    uint8_t *img = malloc(16 + n * DIM), *lab = malloc(8 + n);
    int32_t *labels = malloc(n * sizeof *labels);
    make_images(img + 16, labels, n);
    put_be32(img, 0x803), put_be32(img + 4, (uint32_t)n), put_be32(img + 8, SIDE), put_be32(img + 12, SIDE);
    put_be32(lab, 0x801), put_be32(lab + 4, (uint32_t)n);
    for (size_t i = 0; i < n; i++) lab[8 + i] = (uint8_t)labels[i];
    char a[128], b[128];
    snprintf(a, sizeof a, "idx/%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    snprintf(b, sizeof b, "idx/%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    (gz ? tu_write_gz_file : tu_write_file)(path(a), img, 16 + n * DIM);
    (gz ? tu_write_gz_file : tu_write_file)(path(b), lab, 8 + n);
    /* The same split as CSV (label last) and as .npy (float32 images, int64 labels). */
    snprintf(a, sizeof a, "%s.csv", prefix);
    FILE *f = fopen(path(a), "w");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < DIM; j++) fprintf(f, "%u,", img[16 + i * DIM + j]);
        fprintf(f, "%d\n", labels[i]);
    }
    fclose(f);
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %d), }", n, DIM);
    const size_t hlen = 128 - 10;
    uint8_t *npy = calloc(1, 128 + n * DIM * 4);
    memcpy(npy, "\x93NUMPY\x01\x00", 8);
    npy[8] = (uint8_t)hlen, npy[9] = 0;
    memset(npy + 10, ' ', hlen);
    memcpy(npy + 10, hdr, strlen(hdr));
    npy[127] = '\n';
    for (size_t i = 0; i < n * DIM; i++) {
        const float v = img[16 + i] / 255.0f;
        memcpy(npy + 128 + 4 * i, &v, 4); /* the host is little-endian, as the format */
    }
    snprintf(a, sizeof a, "%s_x.npy", prefix);
    tu_write_file(path(a), npy, 128 + n * DIM * 4);
    snprintf(hdr, sizeof hdr, "{'descr': '<i8', 'fortran_order': False, 'shape': (%zu,), }", n);
    memset(npy, 0, 128 + n * 8);
    memcpy(npy, "\x93NUMPY\x01\x00", 8);
    npy[8] = (uint8_t)hlen;
    memset(npy + 10, ' ', hlen);
    memcpy(npy + 10, hdr, strlen(hdr));
    npy[127] = '\n';
    for (size_t i = 0; i < n; i++) {
        const int64_t v = labels[i];
        memcpy(npy + 128 + 8 * i, &v, 8);
    }
    snprintf(a, sizeof a, "%s_y.npy", prefix);
    tu_write_file(path(a), npy, 128 + n * 8);
    free(npy);
    free(img);
    free(lab);
    free(labels);
}

static int setup(void **state)
{
    (void)state;
    const char *env = getenv("FANOISE_CLI");
    if (env != NULL) {
        snprintf(g_cli, sizeof g_cli, "%s", env);
    } else {
        char self[4096];
        const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        assert_true(n > 0);
        self[n] = '\0';
        snprintf(g_cli, sizeof g_cli, "%s/../bin/fanoise", dirname(self));
    }
    if (access(g_cli, X_OK) != 0) {
        print_error("no fanoise tool at %s (build it: make cli; or set FANOISE_CLI)\n", g_cli);
        return -1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/fan_cli_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    assert_int_equal(mkdir(path("idx"), 0755), 0);
    write_idx("train", N_TRAIN, 1);
    write_idx("t10k", N_TEST, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- usage ------------------------------------------------------------------------------------- */

static void test_no_arguments_or_an_unknown_command_exit_2(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    const char *const none[] = {NULL};
    run(r, none);
    expect(r, 2, NULL, "usage: fanoise COMMAND");
    RUN(r, "trian");
    expect(r, 2, NULL, "unknown command 'trian'");
    RUN(r, "--version");
    expect(r, 0, FANOISE_VERSION_STRING, NULL);
    free(r);
}

static void test_every_command_answers_help_with_its_usage(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "--help");
    expect(r, 0, "commands:", NULL);
    const char *cmds[] = {"train", "eval", "diag", "info", "export"};
    for (size_t i = 0; i < 5; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: fanoise %s", cmds[i]);
        RUN(r, cmds[i], "--help");
        expect(r, 0, want, NULL);
        RUN(r, "help", cmds[i]);
        expect(r, 0, want, NULL);
    }
    /* --help wins over anything malformed around it. */
    RUN(r, "train", "--epochs", "x", "--help");
    expect(r, 0, "--noise-steps N", NULL);
    free(r);
}

static void test_bad_flags_exit_2_with_a_clear_message(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--bogus");
    expect(r, 2, NULL, "unknown option '--bogus'");
    RUN(r, "train", "--epochs", "two");
    expect(r, 2, NULL, "--epochs: expected a non-negative integer, got 'two'");
    RUN(r, "train", "--epochs=-3");
    expect(r, 2, NULL, "expected a non-negative integer, got '-3'");
    RUN(r, "train", "--lr", "nan");
    expect(r, 2, NULL, "--lr: expected a finite number");
    RUN(r, "train", "--epochs");
    expect(r, 2, NULL, "--epochs needs a value");
    RUN(r, "train", "--rule", "xx", "--sizes", "16,10", "--out", path("m.fan"));
    expect(r, 2, NULL, "unknown rule 'xx' (the library knows: bp, fa");
    RUN(r, "train", "--data", path("idx"), "--out", path("m.fan"));
    expect(r, 2, NULL, "--sizes is required");
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,,10", "--out", path("m.fan"));
    expect(r, 2, NULL, "--sizes: expected at least two");
    RUN(r, "train", "--sizes", "16,10", "--out", path("m.fan"), "--progress", "loud");
    expect(r, 2, NULL, "--progress: expected auto, bar, plain or none");
    RUN(r, "train", "stray");
    expect(r, 2, NULL, "unexpected argument 'stray'");
    RUN(r, "eval");
    expect(r, 2, NULL, "missing MODEL");
    RUN(r, "info", "a.fan", "b.fan");
    expect(r, 2, NULL, "unexpected argument 'b.fan'");
    RUN(r, "train", "--data", path("idx"), "--train-csv", path("train.csv"), "--sizes", "16,10",
        "--out", path("m.fan"));
    expect(r, 2, NULL, "give the training set one way");
    free(r);
}

/* ---- the round trip ---------------------------------------------------------------------------- */

/* The number after `key` in text, or -1. */
static double number_after(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? atof(p + strlen(key)) : -1.0;
}

static const char *last_of(const char *text, const char *key)
{
    const char *last = NULL;
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) last = p;
    return last ? last : "";
}

/* The test accuracy of the last epoch training printed; it must exceed `least`. */
static double final_accuracy(const result *r, double least)
{
    const double acc = number_after(last_of(r->out, "test accuracy"), "test accuracy ");
    if (!(acc > least)) print_error("final test accuracy %g, wanted above %g:\n%s\n", acc, least, r->out);
    assert_true(acc > least);
    return acc;
}

static void test_train_eval_info_diag_round_trip(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,8,10", "--rule", "fa", "--noise-steps",
        "100", "--epochs", "10", "--lr", "0.05", "--weight-seed", "5", "--feedback-seed", "6",
        "--log", path("log.csv"), "--log-every", "10", "--out", path("m.fan"));
    expect(r, 0, "epoch 10/10", NULL);
    assert_non_null(strstr(r->out, "noise: 100 steps of adam"));
    assert_non_null(strstr(r->out, "saved "));
    /* The classes are easy: a trained net must be far above chance (0.1). */
    const double train_acc = final_accuracy(r, 0.8);
    const double train_loss = number_after(last_of(r->out, "test loss"), "test loss ");

    RUN(r, "eval", path("m.fan"), "--data", path("idx"));
    expect(r, 0, "test loss", NULL);
    /* The same data, prepared the same way: eval prints what training printed last. */
    TU_CLOSE(number_after(r->out, "accuracy "), train_acc, 0, 1e-9);
    TU_CLOSE(number_after(r->out, "test loss "), train_loss, 0, 1e-9);
    assert_non_null(strstr(r->out, "(120 samples)"));
    RUN(r, "eval", path("m.fan"), "--data", path("idx"), "--csv");
    expect(r, 0, "samples,loss,accuracy\n120,", NULL);

    /* The version the file's own header bytes hold (docs/file-format.md: after the magic). */
    unsigned char head[12];
    FILE *f = fopen(path("m.fan"), "rb");
    assert_non_null(f);
    assert_int_equal(fread(head, 1, sizeof head, f), sizeof head);
    fclose(f);
    char version[64];
    snprintf(version, sizeof version, "format:       version %u\n",
             (unsigned)head[8] | (unsigned)head[9] << 8 | (unsigned)head[10] << 16 | (unsigned)head[11] << 24);
    RUN(r, "info", path("m.fan"));
    expect(r, 0, version, NULL);
    assert_non_null(strstr(r->out, "sizes:        16-8-10 (2 weight layers, 226 parameters)"));
    assert_non_null(strstr(r->out, "rule:         fa"));
    assert_non_null(strstr(r->out, "activations:  relu, linear"));
    assert_non_null(strstr(r->out, "seeds:        weight 5, feedback 6"));

    RUN(r, "diag", path("m.fan"));
    expect(r, 0, "erank W", NULL);
    assert_non_null(strstr(r->out, "\n0     8x16       8x16 "));
    assert_non_null(strstr(r->out, "\n1     10x8       10x8 "));
    RUN(r, "diag", path("m.fan"), "--csv");
    expect(r, 0, "layer,rows,cols,fb_rows,fb_cols,angle_mean", NULL);
    const char *row1 = strstr(r->out, "\n1,10,8,10,8,");
    assert_non_null(row1);
    const double angle = atof(row1 + strlen("\n1,10,8,10,8,"));
    assert_true(angle > 0.0 && angle < 180.0);

    /* The log: a header, step rows every 10 steps, one evaluation row per epoch. */
    char *log = malloc(OUT_CAP);
    slurp(path("log.csv"), log, OUT_CAP);
    assert_memory_equal(log, "phase,step,epoch,batch,samples,loss,mean_loss,train_loss,val_loss,"
                             "val_acc,test_loss,test_acc,seconds\nnoise,10,", 97);
    size_t evals = 0;
    for (const char *p = strstr(log, "\neval,"); p; p = strstr(p + 1, "\neval,")) evals++;
    assert_int_equal(evals, 10);
    free(log);
    free(r);
}

static void test_a_validation_split_is_reported_every_epoch(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,10", "--epochs", "2", "--val", "100",
        "--train-samples", "300", "--out", path("v.fan"), "--progress", "none");
    expect(r, 0, "200 training samples (after the validation split)", NULL);
    assert_non_null(strstr(r->out, "epoch 2/2: train loss"));
    assert_non_null(strstr(r->out, "val accuracy"));
    free(r);
}

static void test_config_file_sets_options_and_the_command_line_wins(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    FILE *f = fopen(path("run.conf"), "w");
    fprintf(f, "# a run\ndata = %s\nsizes = 16,8,10\nepochs = 3\nnoise_steps = 20\n"
               "out = \"%s\"\ncsv = true   \n", path("idx"), path("c.fan"));
    fclose(f);
    RUN(r, "train", "--config", path("run.conf"), "--epochs", "1", "--progress", "none");
    expect(r, 0, "epoch 1/1", NULL);
    assert_non_null(strstr(r->out, "noise: 20 steps"));
    /* eval takes the data options from the same file and ignores train's keys. */
    RUN(r, "eval", path("c.fan"), "--config", path("run.conf"));
    expect(r, 0, "samples,loss,accuracy", NULL);
    f = fopen(path("bad.conf"), "w");
    fprintf(f, "epochs = 2\nepoch = 3\n");
    fclose(f);
    RUN(r, "train", "--config", path("bad.conf"));
    expect(r, 2, NULL, "bad.conf:2: unknown key 'epoch'");
    f = fopen(path("bad.conf"), "w");
    fprintf(f, "epochs 2\n");
    fclose(f);
    RUN(r, "train", "--config", path("bad.conf"));
    expect(r, 2, NULL, "bad.conf:1: expected 'key = value'");
    RUN(r, "train", "--config", path("missing.conf"));
    expect(r, 2, NULL, "cannot open");
    free(r);
}

static void test_csv_and_npy_inputs_train_like_idx(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--train-csv", path("train.csv"), "--test-csv", path("t10k.csv"), "--sizes",
        "16,10", "--epochs", "10", "--lr", "0.05", "--out", path("csv.fan"), "--progress", "none");
    expect(r, 0, "epoch 10/10", NULL);
    (void)final_accuracy(r, 0.8);
    char pair[2][300];
    snprintf(pair[0], sizeof pair[0], "%s,%s", path("train_x.npy"), path("train_y.npy"));
    snprintf(pair[1], sizeof pair[1], "%s,%s", path("t10k_x.npy"), path("t10k_y.npy"));
    RUN(r, "train", "--train-npy", pair[0], "--test-npy", pair[1], "--sizes", "16,10", "--epochs",
        "10", "--lr", "0.05", "--out", path("npy.fan"), "--progress", "none");
    expect(r, 0, "epoch 10/10", NULL);
    (void)final_accuracy(r, 0.8);
    RUN(r, "eval", path("npy.fan"), "--test-npy", pair[1], "--train-npy", pair[0]);
    expect(r, 0, "(120 samples)", NULL);
    /* Standardising needs the training set or explicit statistics. */
    RUN(r, "eval", path("npy.fan"), "--test-npy", pair[1]);
    expect(r, 2, NULL, "needs --mean and --std");
    RUN(r, "train", "--train-npy", path("train_x.npy"), "--sizes", "16,10", "--out", path("x.fan"));
    expect(r, 2, NULL, "expected IMAGES.npy,LABELS.npy");
    free(r);
}

static void test_export_writes_npy_files_the_library_reads_back(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,8,10", "--epochs", "1", "--out",
        path("e.fan"), "--progress", "none");
    expect(r, 0, "saved", NULL);
    RUN(r, "export", path("e.fan"), "--npy", path("npy"));
    expect(r, 0, "wrote 2 layers", NULL);
    fan_net *a = NULL, *b = NULL;
    TU_OK(fan_net_load(&a, path("e.fan"), NULL));
    TU_OK(fan_net_load(&b, path("e.fan"), NULL));
    TU_OK(fan_net_init(b, 77, 78));
    TU_OK_NET(b, fan_net_import_npy(b, path("npy")));
    float wa[8 * 16], wb[8 * 16];
    TU_OK(fan_net_get_weights(a, 0, wa, 128, NULL, 0));
    TU_OK(fan_net_get_weights(b, 0, wb, 128, NULL, 0));
    assert_memory_equal(wa, wb, sizeof wa);
    fan_net_free(a);
    fan_net_free(b);
    RUN(r, "export", path("e.fan"));
    expect(r, 2, NULL, "--npy DIR is required");
    free(r);
}

static void test_every_rule_name_goes_to_the_library_unchanged(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    for (int v = 0; v < 256; v++) {
        const char *name = fan_rule_name((fan_rule)v);
        if (strcmp(name, "unknown") == 0) continue;
        RUN(r, "train", "--data", path("idx"), "--sizes", "16,8,10", "--rule", name, "--epochs",
            "1", "--noise-steps", "5", "--out", path("rule.fan"), "--progress", "none");
        /* Trained (0), or refused by the library with its own message (1); never a usage error. */
        if (r->status == 1) {
            assert_non_null(strstr(r->err, "--rule: "));
        } else {
            expect(r, 0, "saved", NULL);
            char want[64];
            snprintf(want, sizeof want, "rule:         %s\n", name);
            RUN(r, "info", path("rule.fan"));
            expect(r, 0, want, NULL);
        }
        if (v <= FAN_RULE_FA) assert_int_equal(r->status, 0);
    }
    free(r);
}

static void test_info_shows_any_format_version_it_finds(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,10", "--epochs", "1", "--out",
        path("v1.fan"), "--progress", "none");
    expect(r, 0, "saved", NULL);
    char *buf = malloc(OUT_CAP);
    FILE *f = fopen(path("v1.fan"), "rb");
    const size_t n = fread(buf, 1, OUT_CAP, f);
    fclose(f);
    buf[8] = 7; /* version 7: no library reads it (and the CRC no longer matches) */
    tu_write_file(path("v7.fan"), buf, n);
    RUN(r, "info", path("v7.fan"));
    expect(r, 1, "format:       version 7", path("v7.fan"));
    buf[0] = 'X';
    tu_write_file(path("bad.fan"), buf, n);
    RUN(r, "info", path("bad.fan"));
    expect(r, 1, NULL, "not a libfanoise model file");
    RUN(r, "eval", path("missing.fan"), "--data", path("idx"));
    expect(r, 1, NULL, "missing.fan");
    RUN(r, "diag", path("bad.fan"));
    expect(r, 1, NULL, "bad.fan");
    free(buf);
    free(r);
}

static void test_progress_is_a_bar_on_request_and_plain_lines_otherwise(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,10", "--epochs", "1", "--noise-steps",
        "50", "--out", path("p.fan"), "--progress", "bar");
    expect(r, 0, "saved", "ETA");
    assert_non_null(strchr(r->err, '\r'));
    /* Not a terminal here: auto means plain lines, never carriage returns. */
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,10", "--epochs", "1", "--noise-steps",
        "50", "--out", path("p.fan"));
    expect(r, 0, "saved", NULL);
    assert_null(strchr(r->err, '\r'));
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,10", "--epochs", "1", "--out",
        path("p.fan"), "--quiet");
    expect(r, 0, NULL, NULL);
    assert_string_equal(r->out, "");
    assert_string_equal(r->err, "");
    free(r);
}

static void test_data_that_does_not_fit_the_net_fails_with_exit_1(void **state)
{
    (void)state;
    result *r = malloc(sizeof *r);
    RUN(r, "train", "--data", path("idx"), "--sizes", "15,10", "--out", path("x.fan"), "--quiet");
    expect(r, 1, NULL, "16 values per sample and 10 classes; --sizes 15,10 needs 15 and 10");
    RUN(r, "train", "--data", path("nowhere"), "--sizes", "16,10", "--out", path("x.fan"), "--quiet");
    expect(r, 1, NULL, "no train-images-idx3-ubyte");
    RUN(r, "train", "--data", path("idx"), "--sizes", "16,10", "--out", path("no/such/dir/x.fan"),
        "--quiet");
    expect(r, 1, NULL, "saving the model");
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_arguments_or_an_unknown_command_exit_2),
        cmocka_unit_test(test_every_command_answers_help_with_its_usage),
        cmocka_unit_test(test_bad_flags_exit_2_with_a_clear_message),
        cmocka_unit_test(test_train_eval_info_diag_round_trip),
        cmocka_unit_test(test_a_validation_split_is_reported_every_epoch),
        cmocka_unit_test(test_config_file_sets_options_and_the_command_line_wins),
        cmocka_unit_test(test_csv_and_npy_inputs_train_like_idx),
        cmocka_unit_test(test_export_writes_npy_files_the_library_reads_back),
        cmocka_unit_test(test_every_rule_name_goes_to_the_library_unchanged),
        cmocka_unit_test(test_info_shows_any_format_version_it_finds),
        cmocka_unit_test(test_progress_is_a_bar_on_request_and_plain_lines_otherwise),
        cmocka_unit_test(test_data_that_does_not_fit_the_net_fails_with_exit_1),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
