/*
 * mpi_dp_check.c - the data-parallel companion under mpirun (mk/mpi.mk runs it with -np 2 and
 * -np 3): for BP, FA and DFA, 100 data-parallel steps match one process trained on the same
 * global batches within float summation tolerance (parts uneven at -np 3 and in the last batch
 * of an epoch), the replicas stay bit-identical, epochs end together, a failure on one rank and a
 * stop asked by one rank end every rank at the same step with nothing applied, rank 0 saves
 * the model, and a run resumed from rank 0's checkpoint equals the uninterrupted run bit for bit. Usage: mpirun -np N mpi_dp_check DIR (DIR: where the saved model goes).
 * Prints "mpi-dp np=N: P passed, F failed" on rank 0; exits 1 if any check failed on any rank.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise_mpi.h"

#define SAMPLES 203 /* batches of 32: the epoch's last has 11 rows */
#define DIM 20
#define CLASSES 4
#define BATCH 32
#define STEPS 100
/* Parts of a batch are summed in another order than one process sums the whole batch, and
   momentum carries those roundings through 100 steps: both sides agree to about 1e-6. */
#define REL_TOL 1e-4
#define ABS_TOL 1e-5

static int g_rank, g_size, g_pass, g_fail;

static void check(int ok, const char *what, const char *detail)
{
    if (ok) {
        g_pass++;
    } else {
        g_fail++;
        fprintf(stderr, "rank %d: FAILED %s%s%s\n", g_rank, what, detail ? ": " : "",
                detail ? detail : "");
    }
}

/* The same dataset on every rank: points around one centre per class, drawn by an LCG. */
static fan_dataset *make_data(void)
{
    float *x = malloc(SAMPLES * DIM * sizeof *x);
    int32_t *y = malloc(SAMPLES * sizeof *y);
    uint64_t s = 12345;
    for (size_t i = 0; i < SAMPLES; i++) {
        y[i] = (int32_t)(i % CLASSES);
        for (size_t j = 0; j < DIM; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            const float u = (float)((s >> 40) & 0xffffff) / 16777216.0f - 0.5f;
            x[i * DIM + j] = u + (j % CLASSES == (size_t)y[i] ? 1.5f : 0.0f);
        }
    }
    fan_dataset *ds = NULL;
    if (fan_dataset_from_arrays(&ds, x, y, SAMPLES, DIM, CLASSES, NULL) != FAN_OK) abort();
    free(x);
    free(y);
    return ds;
}

static fan_net *make_net(fan_rule rule)
{
    const size_t sizes[] = {DIM, 24, 16, CLASSES};
    fan_net *net = NULL;
    if (fan_net_create(&net, sizes, 4, NULL) != FAN_OK || fan_net_set_rule(net, rule) != FAN_OK ||
        fan_net_init(net, 5, 6) != FAN_OK)
        abort();
    return net;
}

static fan_optimizer *make_opt(const fan_net *net)
{
    fan_optimizer *opt = NULL;
    if (fan_optimizer_create(&opt, FAN_OPTIMIZER_SGD, net, NULL) != FAN_OK ||
        fan_optimizer_set(opt, FAN_OPT_LR, 0.02) != FAN_OK ||
        fan_optimizer_set(opt, FAN_OPT_MOMENTUM, 0.9) != FAN_OK)
        abort();
    return opt;
}

static fan_iter *make_iter(const fan_dataset *ds, int shuffle)
{
    fan_iter *it = NULL;
    if (fan_iter_create_batches(&it, ds, BATCH, 9, NULL) != FAN_OK ||
        fan_iter_set(it, FAN_ITER_SHUFFLE, shuffle) != FAN_OK)
        abort();
    return it;
}

typedef struct record {
    double loss[STEPS + 1];
    size_t steps, samples, epochs_ended, stop_at;
    double lr;
} record;

static int record_cb(const fan_progress *p, void *user)
{
    record *r = user;
    if (p->step <= STEPS) r->loss[p->step] = p->loss;
    r->steps = p->step;
    r->samples = p->samples;
    r->epochs_ended += (size_t)p->end_of_epoch;
    r->lr = p->lr;
    return r->stop_at != 0 && p->step == r->stop_at && g_rank == 0;
}

static int close_enough(double a, double b)
{
    return fabs(a - b) <= ABS_TOL + REL_TOL * fmax(fabs(a), fabs(b));
}

/* 100 data-parallel steps against one process on the unsharded batches (rank 0 runs both). */
static void check_equivalence(fan_rule rule)
{
    char what[96];
    snprintf(what, sizeof what, "%s: data-parallel equals one process", fan_rule_name(rule));
    fan_dataset *ds = make_data();
    fan_net *net = g_rank == 0 ? make_net(rule) : NULL, *ref = NULL;
    if (g_rank == 0 && fan_net_clone(&ref, net) != FAN_OK) abort();
    fan_mpi_dp *dp = NULL;
    fan_status st = fan_mpi_dp_create(&dp, MPI_COMM_WORLD, &net, NULL);
    check(st == FAN_OK, what, fan_strerror(st));
    if (st != FAN_OK) return;
    fan_optimizer *opt = make_opt(net);
    fan_iter *it = make_iter(ds, 1);
    check(fan_mpi_shard(dp, it) == FAN_OK, what, fan_mpi_dp_errmsg(dp));
    record mine = {0};
    st = fan_mpi_train_steps(dp, opt, it, STEPS, record_cb, &mine);
    check(st == FAN_OK && mine.steps == STEPS, what, fan_mpi_dp_errmsg(dp));
    /* 100 steps of 7 batches per epoch, 203 rows each: the samples are the global batches'. */
    check(mine.samples == 14 * SAMPLES + 2 * BATCH, "samples count the global batches", NULL);
    check(mine.epochs_ended == 14, "every rank ends 14 epochs in 100 steps", NULL);
    check(fabs(mine.lr - 0.02) < 1e-12, "progress reports the step's learning rate", NULL);
    int same = 0;
    check(fan_mpi_check_replicas(dp, &same) == FAN_OK && same, "replicas stay bit-identical",
          fan_mpi_dp_errmsg(dp));
    if (g_rank == 0) {
        fan_optimizer *ropt = make_opt(ref);
        fan_iter *rit = make_iter(ds, 1);
        record theirs = {0};
        check(fan_train_steps(ref, ropt, rit, STEPS, record_cb, &theirs) == FAN_OK, what,
              fan_net_errmsg(ref));
        float *p = NULL, *q = NULL;
        size_t n = 0;
        if (fan_net_parameters(net, &p, &n) != FAN_OK || fan_net_parameters(ref, &q, &n) != FAN_OK)
            abort();
        double worst = 0.0;
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            worst = fmax(worst, fabs((double)p[i] - (double)q[i]));
            bad += !close_enough(p[i], q[i]);
        }
        size_t bad_loss = 0;
        for (size_t s = 1; s <= STEPS; s++) bad_loss += !close_enough(mine.loss[s], theirs.loss[s]);
        char detail[128];
        snprintf(detail, sizeof detail, "%zu of %zu parameters and %zu losses outside tolerance, "
                 "largest difference %.3g", bad, n, bad_loss, worst);
        check(bad == 0 && bad_loss == 0, what, detail);
        printf("%s, np=%d: %zu parameters after %d steps, largest difference %.3g\n",
               fan_rule_name(rule), g_size, n, STEPS, worst);
        fan_iter_free(rit);
        fan_optimizer_free(ropt);
    }
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_mpi_dp_free(dp);
    fan_net_free(ref);
    fan_net_free(net);
    fan_dataset_free(ds);
}

/* fan_mpi_train runs whole epochs on every rank. */
static void check_epochs(void)
{
    fan_dataset *ds = make_data();
    fan_net *net = g_rank == 0 ? make_net(FAN_RULE_FA) : NULL;
    fan_mpi_dp *dp = NULL;
    if (fan_mpi_dp_create(&dp, MPI_COMM_WORLD, &net, NULL) != FAN_OK) abort();
    fan_optimizer *opt = make_opt(net);
    fan_iter *it = make_iter(ds, 1);
    if (fan_mpi_shard(dp, it) != FAN_OK) abort();
    record r = {0};
    check(fan_mpi_train(dp, opt, it, 2, record_cb, &r) == FAN_OK && r.steps == 14 &&
              r.epochs_ended == 2 && r.samples == 2 * SAMPLES,
          "fan_mpi_train: two epochs of 7 steps on every rank", fan_mpi_dp_errmsg(dp));
    check(fan_mpi_train(dp, opt, NULL, 1, NULL, NULL) == FAN_E_NULL, "a NULL iterator is refused",
          NULL);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_mpi_dp_free(dp);
    fan_net_free(net);
    fan_dataset_free(ds);
}

/* Each rank trains on its own noise (the global batch is the union). The last rank passes an
   optimizer made for a net of another shape, so its step fails before the gradients are
   averaged: every rank ends that step with nothing applied, and nobody waits forever. Then a
   stop asked by rank 0 alone after step 3 stops every rank after step 3, and rank 0 saves. */
static void check_agreement(const char *dir)
{
    fan_net *net = g_rank == 0 ? make_net(FAN_RULE_DFA) : NULL;
    fan_mpi_dp *dp = NULL;
    if (fan_mpi_dp_create(&dp, MPI_COMM_WORLD, &net, NULL) != FAN_OK) abort();
    fan_optimizer *opt = make_opt(net), *wrong = opt;
    float *p = NULL;
    size_t n = 0;
    if (fan_net_parameters(net, &p, &n) != FAN_OK) abort();
    float *before = malloc(n * sizeof *before);
    memcpy(before, p, n * sizeof *p);
    fan_iter *noise = NULL;
    if (fan_iter_create_noise(&noise, DIM, CLASSES, 8, 100 + (uint64_t)g_rank, NULL) != FAN_OK)
        abort();
    fan_net *other = NULL;
    if (g_rank == g_size - 1) {
        const size_t sizes[] = {DIM, 7, CLASSES};
        if (fan_net_create(&other, sizes, 3, NULL) != FAN_OK) abort();
        wrong = make_opt(other);
    }
    record r = {0};
    const fan_status st = fan_mpi_train_steps(dp, wrong, noise, 5, record_cb, &r);
    const fan_status want = g_rank == g_size - 1 ? FAN_E_SHAPE : FAN_E_STATE;
    char detail[160];
    snprintf(detail, sizeof detail, "returned %s (%s)", fan_strerror(st), fan_mpi_dp_errmsg(dp));
    check(st == want && r.steps == 0, "a step failing on one rank fails on every rank", detail);
    check(memcmp(p, before, n * sizeof *p) == 0, "a step failing on one rank changes nothing",
          NULL);
    int same = 0;
    check(fan_mpi_check_replicas(dp, &same) == FAN_OK && same, "replicas agree after the failure",
          NULL);
    if (wrong != opt) fan_optimizer_free(wrong);
    fan_net_free(other);

    /* Stop asked by rank 0 only. */
    fan_iter_free(noise);
    if (fan_iter_create_noise(&noise, DIM, CLASSES, 8, 200 + (uint64_t)g_rank, NULL) != FAN_OK)
        abort();
    record s = {.stop_at = 3};
    check(fan_mpi_train_steps(dp, opt, noise, 10, record_cb, &s) == FAN_STOPPED && s.steps == 3,
          "a stop asked by rank 0 stops every rank after the same step", fan_mpi_dp_errmsg(dp));
    check(fan_mpi_check_replicas(dp, &same) == FAN_OK && same, "replicas agree after the stop",
          NULL);
    check(fan_mpi_train_steps(dp, opt, noise, 2, record_cb, &s) == FAN_OK && s.steps == 2,
          "training goes on after a stop", fan_mpi_dp_errmsg(dp));

    /* Rank 0 saves; the file is the replica every rank holds. */
    char path[512];
    snprintf(path, sizeof path, "%s/dp_model.fan", dir);
    check(fan_mpi_save(dp, path) == FAN_OK, "rank 0 saves the model", fan_mpi_dp_errmsg(dp));
    fan_net *loaded = NULL;
    const int ok = fan_net_load(&loaded, path, NULL) == FAN_OK;
    float *q = NULL;
    check(ok && fan_net_parameters(loaded, &q, &n) == FAN_OK && memcmp(p, q, n * sizeof *q) == 0,
          "every rank's replica equals the saved model", path);
    fan_net_free(loaded);
    free(before);
    fan_iter_free(noise);
    fan_optimizer_free(opt);
    fan_mpi_dp_free(dp);
    fan_net_free(net);
}

/* 30 steps, a checkpoint, 30 more; against: load the checkpoint on every rank, rebuild the
   context and the shards, 30 steps. Both end bit for bit at the same weights. */
static void check_resume(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/dp_resume.ckpt", dir);
    fan_dataset *ds = make_data();
    fan_net *net = g_rank == 0 ? make_net(FAN_RULE_FA) : NULL;
    fan_mpi_dp *dp = NULL;
    if (fan_mpi_dp_create(&dp, MPI_COMM_WORLD, &net, NULL) != FAN_OK) abort();
    fan_optimizer *opt = NULL;
    if (fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL) != FAN_OK) abort();
    fan_iter *it = make_iter(ds, 1);
    if (fan_mpi_shard(dp, it) != FAN_OK) abort();
    int ok = fan_mpi_train_steps(dp, opt, it, 30, NULL, NULL) == FAN_OK &&
             fan_mpi_checkpoint_save(dp, opt, it, path) == FAN_OK &&
             fan_mpi_train_steps(dp, opt, it, 30, NULL, NULL) == FAN_OK;
    check(ok, "train, checkpoint, train", fan_mpi_dp_errmsg(dp));

    fan_net *back = NULL;
    fan_optimizer *bopt = NULL;
    fan_iter *bit = NULL;
    fan_mpi_dp *bdp = NULL;
    ok = fan_checkpoint_load(path, &back, &bopt, &bit, ds, NULL) == FAN_OK &&
         fan_mpi_dp_create(&bdp, MPI_COMM_WORLD, &back, NULL) == FAN_OK &&
         fan_mpi_shard(bdp, bit) == FAN_OK &&
         fan_mpi_train_steps(bdp, bopt, bit, 30, NULL, NULL) == FAN_OK;
    check(ok, "resume from the checkpoint on every rank", path);
    float *p = NULL, *q = NULL;
    size_t n = 0, m = 0;
    check(ok && fan_net_parameters(net, &p, &n) == FAN_OK &&
              fan_net_parameters(back, &q, &m) == FAN_OK && n == m &&
              memcmp(p, q, n * sizeof *p) == 0,
          "a resumed data-parallel run equals the uninterrupted one bit for bit", NULL);
    fan_mpi_dp_free(bdp);
    fan_iter_free(bit);
    fan_optimizer_free(bopt);
    fan_net_free(back);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_mpi_dp_free(dp);
    fan_net_free(net);
    fan_dataset_free(ds);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    const char *dir = argc > 1 ? argv[1] : ".";
    check_equivalence(FAN_RULE_BP);
    check_equivalence(FAN_RULE_FA);
    check_equivalence(FAN_RULE_DFA);
    check_epochs();
    check_agreement(dir);
    check_resume(dir);
    int counts[2] = {g_pass, g_fail}, total[2] = {0, 0};
    MPI_Reduce(counts, total, 2, MPI_INT, MPI_SUM, 0, MPI_COMM_WORLD);
    int any = g_fail, fails = 0;
    MPI_Allreduce(&any, &fails, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (g_rank == 0) printf("mpi-dp np=%d: %d passed, %d failed\n", g_size, total[0], total[1]);
    MPI_Finalize();
    return fails ? 1 : 0;
}
