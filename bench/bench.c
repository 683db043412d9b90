/*
 * bench.c - the libfanoise side of `make bench`. One invocation measures one row and prints one
 * JSON object on stdout; bench/run.py owns the row table, runs this program and the PyTorch peer
 * (bench/peer_torch.py, same command line) for every row and builds the table.
 *
 *   bench KIND [key=value ...]
 *   KIND  info   library and BLAS description
 *         train  training on Fashion-MNIST: a full epoch (steps=0) through fan_train with a
 *                shuffled batch iterator, or `steps` batches through fan_train_steps;
 *                feed=pregathered instead times fan_net_train_batch over batches gathered
 *                before the clock starts (isolates the iterator's cost)
 *         noise  fan_pretrain_noise on a Gaussian noise iterator (noise generation is timed)
 *         diag   fan_diag_alignment + fan_diag_spectrum (singular values and effective rank from
 *                one SVD) of weight layer 0 (rows = sizes[1], cols = sizes[0]); also times
 *                the single-figure calls, which run two SVDs
 *         gemm   cblas_sgemm at the shapes of one training step (bench_ceiling.c)
 *         peak   cblas_sgemm on a large square (the BLAS's best case)
 *         rss    a full Fashion-MNIST job (load train and test, one FA epoch at batch 64,
 *                evaluate) and its peak resident set size
 *         profile  set up, then only train: `reps` epochs through fan_train, or with steps > 0
 *                `steps` noise batches through fan_pretrain_noise (for perf record --delay or
 *                callgrind --toggle-collect)
 *   keys  sizes=784,100,10 rule=fa|bp batch=64 reps=5 steps=0 opt=sgd|adam lr=0.01
 *         warmup=20 eval=1 feed=iter|pregathered dim=1024 data=DIR threads=1 (FAN_NET_THREADS)
 *
 * Uses only the public header (plus cblas.h in bench_ceiling.c): the harness is a client.
 */
#define _POSIX_C_SOURCE 200809L
#include "bench.h"

#include "fanoise.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Pixel statistics of the Fashion-MNIST training set (docs/paper.md, section 3); both sides
   standardise with them. */
#define FMNIST_MEAN 0.286
#define FMNIST_STD 0.353
/* Batches of a `rss` job: the paper's main setting. */
#define RSS_BATCH 64
/* Steps at the end of a noise run whose mean loss is reported (a check that both sides did the
   same learning, not only the same arithmetic). */
#define NOISE_LOSS_TAIL 50
/* Seeds: repetition r uses weight seed r, feedback seed FEEDBACK_SEED_BASE + r and shuffle or
   noise seed DATA_SEED_BASE + r, so repetitions differ and runs repeat exactly. */
#define FEEDBACK_SEED_BASE 1000
#define DATA_SEED_BASE 2000
#define WARMUP_SEED 999

typedef struct opts {
    size_t sizes[BENCH_MAX_SIZES];
    size_t n_sizes;
    fan_rule rule;
    size_t batch, reps, steps, warmup, dim, threads;
    int adam, eval, pregathered;
    double lr;
    const char *data;
} opts;

/* ---- small utilities ---------------------------------------------------------------------- */

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0) return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void bench_json_array(FILE *f, const char *key, const double *v, size_t n)
{
    fprintf(f, "\"%s\": [", key);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%.6g", i ? ", " : "", v[i]);
    fprintf(f, "]");
}

/* Median of a copy, so the per-repetition array keeps its order for the JSON. */
static double median_of(const double *v, size_t n)
{
    double tmp[BENCH_MAX_REPS];
    memcpy(tmp, v, n * sizeof *v);
    return bench_median(tmp, n);
}

static long peak_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss; /* kilobytes on Linux */
}

static void die(const char *what, fan_status st, const char *detail)
{
    fprintf(stderr, "bench: %s failed: %s (%s)\n", what, fan_strerror(st), detail);
    exit(1);
}

#define NET_OK(net, expr)                                                                       \
    do {                                                                                        \
        fan_status s_ = (expr);                                                                 \
        if (s_ != FAN_OK) die(#expr, s_, fan_net_errmsg(net));                                  \
    } while (0)

/* ---- options ------------------------------------------------------------------------------ */

static void parse_sizes(opts *o, const char *v)
{
    o->n_sizes = 0;
    while (*v != '\0' && o->n_sizes < BENCH_MAX_SIZES) {
        char *end = NULL;
        o->sizes[o->n_sizes++] = (size_t)strtoull(v, &end, 10);
        if (end == v) break;
        v = *end == ',' ? end + 1 : end;
    }
}

static void parse(opts *o, int argc, char **argv)
{
    static const size_t default_sizes[] = {784, 100, 10};
    memset(o, 0, sizeof *o);
    memcpy(o->sizes, default_sizes, sizeof default_sizes);
    o->n_sizes = 3;
    o->rule = FAN_RULE_FA;
    o->batch = 64;
    o->reps = 5;
    o->warmup = 20;
    o->dim = 1024;
    o->eval = 1;
    o->threads = 1;
    o->lr = 0.01;
    o->data = "/usr/share/datasets/fashion-mnist";
    for (int i = 2; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (eq == NULL) {
            fprintf(stderr, "bench: argument '%s' is not key=value\n", argv[i]);
            exit(2);
        }
        const size_t klen = (size_t)(eq - argv[i]);
        const char *v = eq + 1;
#define KEY(name) (klen == strlen(name) && strncmp(argv[i], name, klen) == 0)
        if (KEY("sizes")) parse_sizes(o, v);
        else if (KEY("rule")) o->rule = strcmp(v, "bp") == 0 ? FAN_RULE_BP : FAN_RULE_FA;
        else if (KEY("batch")) o->batch = (size_t)strtoull(v, NULL, 10);
        else if (KEY("reps")) o->reps = (size_t)strtoull(v, NULL, 10);
        else if (KEY("steps")) o->steps = (size_t)strtoull(v, NULL, 10);
        else if (KEY("warmup")) o->warmup = (size_t)strtoull(v, NULL, 10);
        else if (KEY("dim")) o->dim = (size_t)strtoull(v, NULL, 10);
        else if (KEY("threads")) o->threads = (size_t)strtoull(v, NULL, 10);
        else if (KEY("eval")) o->eval = atoi(v);
        else if (KEY("opt")) o->adam = strcmp(v, "adam") == 0;
        else if (KEY("lr")) o->lr = strtod(v, NULL);
        else if (KEY("feed")) o->pregathered = strcmp(v, "pregathered") == 0;
        else if (KEY("data")) o->data = v;
        else {
            fprintf(stderr, "bench: unknown key in '%s'\n", argv[i]);
            exit(2);
        }
#undef KEY
    }
    if (o->n_sizes < 2 || o->batch == 0 || o->reps == 0 || o->reps > BENCH_MAX_REPS) {
        fprintf(stderr, "bench: need >= 2 sizes, batch > 0 and reps in [1, %d]\n",
                BENCH_MAX_REPS);
        exit(2);
    }
}

/* ---- building blocks ---------------------------------------------------------------------- */

static fan_dataset *load_split(const opts *o, const char *prefix)
{
    char images[1024], labels[1024];
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", o->data, prefix);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", o->data, prefix);
    fan_dataset *ds = NULL;
    fan_status st = fan_dataset_load_idx(&ds, images, labels, NULL);
    if (st != FAN_OK) die("fan_dataset_load_idx", st, images);
    st = fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, FMNIST_MEAN, FMNIST_STD);
    if (st != FAN_OK) die("fan_dataset_set_normalization", st, fan_dataset_errmsg(ds));
    return ds;
}

static fan_net *make_net(const opts *o, uint64_t rep)
{
    fan_net *net = NULL;
    fan_status st = fan_net_create(&net, o->sizes, o->n_sizes, NULL);
    if (st != FAN_OK) die("fan_net_create", st, "");
    NET_OK(net, fan_net_set_rule(net, o->rule));
    NET_OK(net, fan_net_set(net, FAN_NET_THREADS, (double)o->threads));
    NET_OK(net, fan_net_init(net, rep, FEEDBACK_SEED_BASE + rep));
    return net;
}

static fan_optimizer *make_opt(const opts *o, const fan_net *net)
{
    fan_optimizer *opt = NULL;
    fan_status st = fan_optimizer_create(&opt, o->adam ? FAN_OPTIMIZER_ADAM : FAN_OPTIMIZER_SGD,
                                         net, NULL);
    if (st != FAN_OK) die("fan_optimizer_create", st, "");
    st = fan_optimizer_set(opt, FAN_OPT_LR, o->lr);
    if (st != FAN_OK) die("fan_optimizer_set", st, fan_optimizer_errmsg(opt));
    return opt;
}

/* Progress callback state: samples of the call and the mean loss of its last steps. */
typedef struct tally {
    size_t samples, tail_from;
    double tail_loss;
    size_t tail_steps;
} tally;

static int count_cb(const fan_progress *p, void *user)
{
    tally *t = user;
    t->samples = p->samples;
    if (p->step > t->tail_from) {
        t->tail_loss += p->loss;
        t->tail_steps++;
    }
    return 0;
}

/* ---- rows --------------------------------------------------------------------------------- */

static void print_header(const opts *o, const char *kind)
{
    printf("{\"side\": \"libfanoise\", \"kind\": \"%s\", \"sizes\": [", kind);
    for (size_t i = 0; i < o->n_sizes; i++) printf("%s%zu", i ? ", " : "", o->sizes[i]);
    const char *blas = getenv("OPENBLAS_NUM_THREADS");
    printf("], \"batch\": %zu, \"threads\": %zu, \"openblas_threads\": %ld, ", o->batch,
           o->threads, blas != NULL ? strtol(blas, NULL, 10) : 0L); /* 0: OpenBLAS's default */
}

/* The GEMM-bound limit (samples/s) measured now, right after a repetition, so that the
   repetition and its limit see the same load from other processes. */
static double limit_now(const opts *o)
{
    double step = 0.0;
    if (bench_gemm_step_time(o->sizes, o->n_sizes, o->batch, &step) != 0)
        die("bench_gemm_step_time", FAN_E_NOMEM, "buffers");
    return (double)o->batch / step;
}

static void print_timing(const double *sec, const double *cpu, const double *rate,
                         const double *limit, size_t reps)
{
    double frac[BENCH_MAX_REPS];
    for (size_t r = 0; r < reps; r++) frac[r] = rate[r] / limit[r];
    bench_json_array(stdout, "seconds", sec, reps);
    printf(", ");
    bench_json_array(stdout, "cpu_seconds", cpu, reps);
    printf(", ");
    bench_json_array(stdout, "samples_per_s", rate, reps);
    printf(", \"median_samples_per_s\": %.1f, ", median_of(rate, reps));
    bench_json_array(stdout, "limit_samples_per_s", limit, reps);
    printf(", \"median_limit_samples_per_s\": %.1f, ", median_of(limit, reps));
    bench_json_array(stdout, "gemm_fraction", frac, reps);
    printf(", \"median_gemm_fraction\": %.4f", median_of(frac, reps));
}

/* One epoch of batches gathered by an iterator into one buffer, for feed=pregathered. */
typedef struct gathered {
    float *x;
    int32_t *labels;
    size_t *rows; /* rows of each batch */
    size_t n_batches, dim;
} gathered;

static gathered gather_epoch(const opts *o, const fan_dataset *ds)
{
    gathered g;
    memset(&g, 0, sizeof g);
    fan_iter *it = NULL;
    fan_status st = fan_iter_create_batches(&it, ds, o->batch, DATA_SEED_BASE, NULL);
    if (st != FAN_OK) die("fan_iter_create_batches", st, "");
    const size_t n = fan_dataset_size(ds);
    g.dim = fan_dataset_dim(ds);
    g.n_batches = fan_iter_batches_per_epoch(it);
    g.x = malloc(n * g.dim * sizeof *g.x);
    g.labels = malloc(n * sizeof *g.labels);
    g.rows = malloc(g.n_batches * sizeof *g.rows);
    if (g.x == NULL || g.labels == NULL || g.rows == NULL) die("malloc", FAN_E_NOMEM, "gather");
    size_t at = 0;
    for (size_t b = 0; b < g.n_batches; b++) {
        const float *x = NULL;
        const int32_t *lab = NULL;
        size_t rows = 0;
        st = fan_iter_next(it, &x, &lab, NULL, &rows);
        if (st != FAN_OK) die("fan_iter_next", st, fan_iter_errmsg(it));
        memcpy(g.x + at * g.dim, x, rows * g.dim * sizeof *x);
        memcpy(g.labels + at, lab, rows * sizeof *lab);
        g.rows[b] = rows;
        at += rows;
    }
    fan_iter_free(it);
    return g;
}

static void run_train(const opts *o)
{
    fan_dataset *train = load_split(o, "train"), *test = o->eval ? load_split(o, "t10k") : NULL;
    gathered g;
    memset(&g, 0, sizeof g);
    if (o->pregathered) g = gather_epoch(o, train);

    /* Warm-up on a throwaway net: OpenBLAS starts its threads, pages fault in. */
    {
        fan_net *net = make_net(o, WARMUP_SEED);
        fan_optimizer *opt = make_opt(o, net);
        fan_iter *it = NULL;
        fan_status st = fan_iter_create_batches(&it, train, o->batch, WARMUP_SEED, NULL);
        if (st != FAN_OK) die("fan_iter_create_batches", st, "");
        if (o->warmup > 0) NET_OK(net, fan_train_steps(net, opt, it, o->warmup, NULL, NULL));
        fan_iter_free(it);
        fan_optimizer_free(opt);
        fan_net_free(net);
    }

    double sec[BENCH_MAX_REPS], cpu[BENCH_MAX_REPS], rate[BENCH_MAX_REPS], acc[BENCH_MAX_REPS];
    double limit[BENCH_MAX_REPS];
    size_t samples = 0;
    for (size_t r = 0; r < o->reps; r++) {
        fan_net *net = make_net(o, r);
        fan_optimizer *opt = make_opt(o, net);
        fan_iter *it = NULL;
        fan_status st = fan_iter_create_batches(&it, train, o->batch, DATA_SEED_BASE + r, NULL);
        if (st != FAN_OK) die("fan_iter_create_batches", st, "");
        tally t;
        memset(&t, 0, sizeof t);
        t.tail_from = SIZE_MAX;
        const double c0 = bench_cpu(), t0 = bench_now();
        if (o->pregathered) {
            size_t at = 0;
            for (size_t b = 0; b < g.n_batches; b++) {
                NET_OK(net, fan_net_train_batch(net, opt, g.x + at * g.dim, g.labels + at,
                                                g.rows[b], NULL));
                at += g.rows[b];
            }
            t.samples = at;
        } else if (o->steps > 0) {
            NET_OK(net, fan_train_steps(net, opt, it, o->steps, count_cb, &t));
        } else {
            NET_OK(net, fan_train(net, opt, it, 1, count_cb, &t));
        }
        sec[r] = bench_now() - t0;
        cpu[r] = bench_cpu() - c0;
        samples = t.samples;
        rate[r] = (double)t.samples / sec[r];
        limit[r] = limit_now(o);
        acc[r] = NAN;
        if (test != NULL) NET_OK(net, fan_net_evaluate(net, test, NULL, &acc[r]));
        fprintf(stderr, "  libfanoise rep %zu: %.3f s, %.0f samples/s (limit %.0f), acc %.4f\n",
                r, sec[r], rate[r], limit[r], acc[r]);
        fan_iter_free(it);
        fan_optimizer_free(opt);
        fan_net_free(net);
    }
    print_header(o, "train");
    printf("\"rule\": \"%s\", \"feed\": \"%s\", \"samples\": %zu, ",
           o->rule == FAN_RULE_BP ? "bp" : "fa",
           o->pregathered ? "fan_net_train_batch over pre-gathered batches"
                          : (o->steps > 0 ? "fan_train_steps + batch iterator"
                                          : "fan_train + batch iterator"),
           samples);
    print_timing(sec, cpu, rate, limit, o->reps);
    if (test != NULL) {
        printf(", ");
        bench_json_array(stdout, "accuracy", acc, o->reps);
        printf(", \"median_accuracy\": %.6f", median_of(acc, o->reps));
    }
    printf("}\n");
    free(g.x);
    free(g.labels);
    free(g.rows);
    fan_dataset_free(test);
    fan_dataset_free(train);
}

static void run_noise(const opts *o)
{
    const size_t dim = o->sizes[0], classes = o->sizes[o->n_sizes - 1];
    const size_t steps = o->steps > 0 ? o->steps : 1000;
    double sec[BENCH_MAX_REPS], cpu[BENCH_MAX_REPS], rate[BENCH_MAX_REPS], loss[BENCH_MAX_REPS];
    double limit[BENCH_MAX_REPS];
    for (size_t r = 0; r <= o->reps; r++) {
        const int warm = r == 0; /* repetition 0 is the warm-up and is not reported */
        fan_net *net = make_net(o, warm ? WARMUP_SEED : r - 1);
        fan_optimizer *opt = make_opt(o, net);
        fan_iter *it = NULL;
        fan_status st = fan_iter_create_noise(&it, dim, classes, o->batch,
                                              DATA_SEED_BASE + r, NULL);
        if (st != FAN_OK) die("fan_iter_create_noise", st, "");
        tally t;
        memset(&t, 0, sizeof t);
        const size_t run = warm ? o->warmup : steps;
        t.tail_from = run > NOISE_LOSS_TAIL ? run - NOISE_LOSS_TAIL : 0;
        const double c0 = bench_cpu(), t0 = bench_now();
        if (run > 0) NET_OK(net, fan_pretrain_noise(net, opt, it, run, count_cb, &t));
        const double s = bench_now() - t0, c = bench_cpu() - c0;
        if (!warm) {
            sec[r - 1] = s;
            cpu[r - 1] = c;
            rate[r - 1] = (double)t.samples / s;
            loss[r - 1] = t.tail_steps ? t.tail_loss / (double)t.tail_steps : NAN;
            limit[r - 1] = limit_now(o);
            fprintf(stderr,
                    "  libfanoise noise rep %zu: %.3f s, %.0f samples/s (limit %.0f), loss %.4f\n",
                    r - 1, s, rate[r - 1], limit[r - 1], loss[r - 1]);
        }
        fan_iter_free(it);
        fan_optimizer_free(opt);
        fan_net_free(net);
    }
    print_header(o, "noise");
    printf("\"rule\": \"%s\", \"samples\": %zu, ", o->rule == FAN_RULE_BP ? "bp" : "fa",
           steps * o->batch);
    print_timing(sec, cpu, rate, limit, o->reps);
    printf(", ");
    bench_json_array(stdout, "tail_loss", loss, o->reps);
    printf(", \"median_tail_loss\": %.6f}\n", median_of(loss, o->reps));
}

static void run_diag(const opts *o)
{
    fan_net *net = make_net(o, 0);
    const size_t rows = o->sizes[1], cols = o->sizes[0];
    const size_t k = rows < cols ? rows : cols;
    double *angles = malloc(cols * sizeof *angles), *sv = malloc(k * sizeof *sv);
    if (angles == NULL || sv == NULL) die("malloc", FAN_E_NOMEM, "diag");
    double sec[BENCH_MAX_REPS], three[BENCH_MAX_REPS], mean_deg = 0.0, matrix_deg = 0.0;
    double erank = 0.0, erank_three = 0.0;
    for (size_t r = 0; r <= o->reps; r++) { /* r = 0 warms up */
        /* Alignment, singular values and effective rank: two calls, one SVD. */
        double t0 = bench_now();
        NET_OK(net, fan_diag_alignment(net, 0, angles, cols, &mean_deg, &matrix_deg));
        NET_OK(net, fan_diag_spectrum(net, 0, FAN_MATRIX_WEIGHTS, sv, k, &erank, NULL, NULL));
        if (r > 0) sec[r - 1] = bench_now() - t0;
        /* The same through the single-figure calls (round one's row): two SVDs. */
        t0 = bench_now();
        NET_OK(net, fan_diag_alignment(net, 0, angles, cols, &mean_deg, &matrix_deg));
        NET_OK(net, fan_diag_singular_values(net, 0, FAN_MATRIX_WEIGHTS, sv, k));
        NET_OK(net, fan_diag_effective_rank(net, 0, FAN_MATRIX_WEIGHTS, &erank_three));
        if (r > 0) three[r - 1] = bench_now() - t0;
    }
    print_header(o, "diag");
    printf("\"rows\": %zu, \"cols\": %zu, ", rows, cols);
    bench_json_array(stdout, "seconds", sec, o->reps);
    printf(", \"median_seconds\": %.6f, ", median_of(sec, o->reps));
    bench_json_array(stdout, "seconds_two_svds", three, o->reps);
    printf(", \"median_seconds_two_svds\": %.6f, \"mean_deg\": %.4f, \"matrix_deg\": %.4f, "
           "\"sv_max\": %.6f, \"effective_rank\": %.4f, \"effective_rank_two_svds\": %.4f}\n",
           median_of(three, o->reps), mean_deg, matrix_deg, sv[0], erank, erank_three);
    free(sv);
    free(angles);
    fan_net_free(net);
}

/* For perf and callgrind: prepares the data, prints a line to stderr, then only trains, so that
   a profiler started after the set-up (perf record --delay, callgrind --toggle-collect=fan_train
   or fan_pretrain_noise) sees the step alone. Data: `reps` epochs through fan_train. With
   steps > 0: `steps` noise batches through fan_pretrain_noise instead. */
static void run_profile(const opts *o)
{
    const int noise = o->steps > 0;
    fan_dataset *train = noise ? NULL : load_split(o, "train");
    fan_net *net = make_net(o, 0);
    fan_optimizer *opt = make_opt(o, net);
    fan_iter *it = NULL;
    fan_status st = noise ? fan_iter_create_noise(&it, o->sizes[0], o->sizes[o->n_sizes - 1],
                                                  o->batch, DATA_SEED_BASE, NULL)
                          : fan_iter_create_batches(&it, train, o->batch, DATA_SEED_BASE, NULL);
    if (st != FAN_OK) die("fan_iter_create", st, "");
    fprintf(stderr, "profile: set up, training\n");
    const double t0 = bench_now();
    if (noise)
        NET_OK(net, fan_pretrain_noise(net, opt, it, o->steps, NULL, NULL));
    else
        NET_OK(net, fan_train(net, opt, it, o->reps, NULL, NULL));
    const double sec = bench_now() - t0;
    const double samples = noise ? (double)o->steps * (double)o->batch
                                 : (double)o->reps * (double)fan_dataset_size(train);
    printf("{\"side\": \"libfanoise\", \"kind\": \"profile\", \"source\": \"%s\", "
           "\"seconds\": %.3f, \"samples_per_s\": %.1f}\n",
           noise ? "noise" : "data", sec, samples / sec);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    fan_dataset_free(train);
}

static void run_rss(const opts *o)
{
    fan_dataset *train = load_split(o, "train"), *test = load_split(o, "t10k");
    const long after_load = peak_rss_kb();
    opts fa = *o;
    fa.rule = FAN_RULE_FA;
    fan_net *net = make_net(&fa, 0);
    fan_optimizer *opt = make_opt(&fa, net);
    fan_iter *it = NULL;
    fan_status st = fan_iter_create_batches(&it, train, RSS_BATCH, DATA_SEED_BASE, NULL);
    if (st != FAN_OK) die("fan_iter_create_batches", st, "");
    const double t0 = bench_now();
    NET_OK(net, fan_train(net, opt, it, 1, NULL, NULL));
    const double sec = bench_now() - t0;
    double acc = 0.0;
    NET_OK(net, fan_net_evaluate(net, test, NULL, &acc));
    printf("{\"side\": \"libfanoise\", \"kind\": \"rss\", \"batch\": %d, \"seconds\": %.3f, "
           "\"accuracy\": %.6f, \"rss_after_load_kb\": %ld, \"peak_rss_kb\": %ld}\n",
           RSS_BATCH, sec, acc, after_load, peak_rss_kb());
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    fan_dataset_free(test);
    fan_dataset_free(train);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench info|train|noise|diag|gemm|peak|rss|profile [key=value ...]\n");
        return 2;
    }
    opts o;
    parse(&o, argc, argv);
    const char *kind = argv[1];
    if (strcmp(kind, "info") == 0) {
        printf("{\"side\": \"libfanoise\", \"kind\": \"info\", \"version\": \"%s\", ",
               fan_version_string());
        bench_blas_info(stdout);
        printf("}\n");
    } else if (strcmp(kind, "train") == 0) {
        run_train(&o);
    } else if (strcmp(kind, "noise") == 0) {
        run_noise(&o);
    } else if (strcmp(kind, "diag") == 0) {
        run_diag(&o);
    } else if (strcmp(kind, "gemm") == 0) {
        print_header(&o, "gemm");
        if (bench_gemm_step(stdout, o.sizes, o.n_sizes, o.batch) != 0) return 1;
        printf(", ");
        bench_blas_info(stdout);
        printf("}\n");
    } else if (strcmp(kind, "peak") == 0) {
        printf("{\"side\": \"libfanoise\", \"kind\": \"peak\", ");
        if (bench_gemm_peak(stdout, o.dim) != 0) return 1;
        printf("}\n");
    } else if (strcmp(kind, "rss") == 0) {
        run_rss(&o);
    } else if (strcmp(kind, "profile") == 0) {
        run_profile(&o);
    } else {
        fprintf(stderr, "bench: unknown kind '%s'\n", kind);
        return 2;
    }
    return 0;
}
