/*
 * fanoise_mpi.c - data-parallel training over MPI on libfanoise's public hooks (fanoise_mpi.h).
 *
 * One step: each rank's training call computes the gradients of its shard; the gradient hook
 * below agrees with the other ranks on the step (rows, loss, failures, stop requests: one small
 * MPI_Allreduce) and, if every rank is ready, replaces the gradients with their row-weighted mean
 * (one MPI_Allreduce of the gradient block); the core then applies them. A rank whose gradient
 * computation failed before the hook still joins the small collective (join_failed_step), so the
 * others learn of it, refuse the step in their hook (which undoes it) and nobody waits forever.
 */
#include "fanoise_mpi.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRMSG_CAP 256
/* MPI counts are int: the gradient block goes in pieces of at most this many floats. */
#define MAX_CHUNK (1 << 30)

/* The step's agreement, summed over ranks: rows of the parts, rows * loss, ranks whose step
   failed before the hook, ranks whose progress callback asked to stop. */
enum { META_ROWS = 0, META_LOSS = 1, META_FAILED = 2, META_STOP = 3, META_N = 4 };

struct fan_mpi_dp {
    MPI_Comm comm;
    int rank, size;
    fan_net *net;
    char err[ERRMSG_CAP];
    /* Set by the loops around each training call and read by the hook. */
    int in_loop;         /* 0: a direct fan_train call, rows unknown (weights 1) */
    double rows;         /* rows of this rank's part of the step */
    const float *loss;   /* the training call's loss output (written before the hook runs) */
    int stop_requested;  /* this rank's callback asked to stop after the previous step */
    int hook_ran;        /* the hook ran in the current training call */
    int others_failed;   /* the hook refused because another rank failed */
    int stop_agreed;     /* the hook refused because some rank asked to stop */
    double global_rows, global_loss;
};

static fan_status fail(fan_mpi_dp *dp, fan_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static fan_status fail(fan_mpi_dp *dp, fan_status st, const char *fmt, ...)
{
    if (dp != NULL) {
        va_list ap;
        va_start(ap, fmt);
        (void)vsnprintf(dp->err, sizeof dp->err, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* ---- the hook ------------------------------------------------------------------------------ */

static int allreduce_floats(float *v, size_t n, MPI_Comm comm)
{
    for (size_t off = 0; off < n; off += MAX_CHUNK) {
        const int count = (int)(n - off < MAX_CHUNK ? n - off : MAX_CHUNK);
        if (MPI_Allreduce(MPI_IN_PLACE, v + off, count, MPI_FLOAT, MPI_SUM, comm) != MPI_SUCCESS)
            return 0;
    }
    return 1;
}

/* The small collective of a step, from a rank that got as far as the hook (failed = 0) or not. */
static int agree(fan_mpi_dp *dp, double rows, double loss, int failed, double *meta)
{
    meta[META_ROWS] = rows;
    meta[META_LOSS] = rows * loss;
    meta[META_FAILED] = failed;
    meta[META_STOP] = dp->stop_requested;
    return MPI_Allreduce(MPI_IN_PLACE, meta, META_N, MPI_DOUBLE, MPI_SUM, dp->comm) == MPI_SUCCESS;
}

static fan_status dp_hook(fan_net *net, void *user)
{
    fan_mpi_dp *dp = user;
    dp->hook_ran = 1;
    /* Outside the companion's loops the rows are unknown: each rank counts once. */
    const double rows = dp->in_loop ? dp->rows : 1.0;
    const double loss = dp->in_loop && dp->loss != NULL ? (double)*dp->loss : 0.0;
    double meta[META_N];
    if (!agree(dp, rows, loss, 0, meta)) return FAN_E_STATE;
    if (meta[META_FAILED] > 0) {
        dp->others_failed = 1;
        return FAN_E_STATE;
    }
    if (meta[META_STOP] > 0) {
        dp->stop_agreed = 1;
        return FAN_STOPPED;
    }
    float *g = NULL;
    size_t n = 0;
    if (fan_net_gradients(net, &g, &n) != FAN_OK) return FAN_E_STATE;
    /* Each part's gradient is a mean over its rows: weighting by rows / total makes the sum the
       mean over the global batch, also when the parts are uneven. */
    const float w = (float)(rows / meta[META_ROWS]);
    for (size_t i = 0; i < n; i++) g[i] *= w;
    if (!allreduce_floats(g, n, dp->comm)) return FAN_E_STATE;
    dp->global_rows = meta[META_ROWS];
    dp->global_loss = meta[META_LOSS] / meta[META_ROWS];
    return FAN_OK;
}

/* ---- the context --------------------------------------------------------------------------- */

/* Removing a hook from a non-NULL net cannot fail. */
static void unhook(fan_net *net)
{
    if (fan_net_set_gradient_hook(net, NULL, NULL) != FAN_OK) return;
}

/* FNV-1a over the net's saved form: equal hashes, (almost surely) equal replicas. */
static fan_status replica_hash(const fan_net *net, uint64_t *hash)
{
    size_t len = 0;
    fan_status st = fan_net_save_mem(net, NULL, 0, &len);
    if (st != FAN_OK) return st;
    unsigned char *buf = malloc(len);
    if (buf == NULL) return FAN_E_NOMEM;
    st = fan_net_save_mem(net, buf, len, &len);
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; st == FAN_OK && i < len; i++) h = (h ^ buf[i]) * 1099511628211ull;
    free(buf);
    *hash = h;
    return st;
}

/* Collective: every rank learns the worst status (largest code) any rank had. */
static fan_status agree_status(MPI_Comm comm, fan_status st)
{
    int local = (int)st, worst = 0;
    if (MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS) return FAN_E_STATE;
    return (fan_status)worst;
}

/* Collective: 1 on every rank if every replica hashes the same. */
static fan_status replicas_agree(fan_mpi_dp *dp, int *same)
{
    uint64_t h = 0;
    fan_status st = agree_status(dp->comm, replica_hash(dp->net, &h));
    if (st != FAN_OK) return fail(dp, st, "cannot serialise a replica to compare: %s",
                                  fan_strerror(st));
    unsigned long long lo = h, hi = h;
    if (MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, dp->comm) != MPI_SUCCESS ||
        MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, dp->comm) != MPI_SUCCESS)
        return fail(dp, FAN_E_STATE, "MPI_Allreduce of the replica hashes failed");
    *same = lo == hi;
    return FAN_OK;
}

/* Collective: broadcasts n bytes from rank 0, in pieces that fit an int count. */
static int bcast_bytes(unsigned char *buf, size_t n, MPI_Comm comm)
{
    for (size_t off = 0; off < n; off += MAX_CHUNK) {
        const int c = (int)(n - off < MAX_CHUNK ? n - off : MAX_CHUNK);
        if (MPI_Bcast(buf + off, c, MPI_UNSIGNED_CHAR, 0, comm) != MPI_SUCCESS) return 0;
    }
    return 1;
}

/* Collective: rank 0's saved net, on every rank (buf allocated here, freed by the caller). */
static fan_status broadcast_model(fan_mpi_dp *dp, const fan_net *root_net, unsigned char **buf,
                                  size_t *len)
{
    fan_status st = FAN_OK;
    size_t n = 0;
    if (dp->rank == 0) st = fan_net_save_mem(root_net, NULL, 0, &n);
    unsigned long long shared = n;
    if (MPI_Bcast(&shared, 1, MPI_UNSIGNED_LONG_LONG, 0, dp->comm) != MPI_SUCCESS) st = FAN_E_STATE;
    n = (size_t)shared;
    *buf = st == FAN_OK ? malloc(n) : NULL;
    if (st == FAN_OK && *buf == NULL) st = FAN_E_NOMEM;
    if (st == FAN_OK && dp->rank == 0) st = fan_net_save_mem(root_net, *buf, n, &n);
    st = agree_status(dp->comm, st);
    if (st == FAN_OK && !bcast_bytes(*buf, n, dp->comm)) st = FAN_E_STATE;
    st = agree_status(dp->comm, st);
    *len = n;
    return st;
}

fan_status fan_mpi_dp_create(fan_mpi_dp **out, MPI_Comm comm, fan_net **net,
                             const fan_allocator *alloc)
{
    /* Every check is agreed on by all ranks before anyone returns, so that a bad argument on
       one rank cannot leave the others inside a collective. */
    int rank = 0;
    if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS) return FAN_E_STATE;
    fan_status st = out == NULL || net == NULL || (rank == 0 && *net == NULL) ? FAN_E_NULL : FAN_OK;
    if (out != NULL) *out = NULL;
    fan_mpi_dp *dp = st == FAN_OK ? calloc(1, sizeof *dp) : NULL;
    if (st == FAN_OK && dp == NULL) st = FAN_E_NOMEM;
    st = agree_status(comm, st);
    if (st != FAN_OK) {
        free(dp);
        return st;
    }
    if (MPI_Comm_dup(comm, &dp->comm) != MPI_SUCCESS) {
        free(dp);
        return FAN_E_STATE;
    }
    MPI_Comm_rank(dp->comm, &dp->rank);
    MPI_Comm_size(dp->comm, &dp->size);
    unsigned char *buf = NULL;
    size_t len = 0;
    st = broadcast_model(dp, *net, &buf, &len);
    fan_net *replica = NULL;
    if (st == FAN_OK && dp->rank != 0) st = fan_net_load_mem(&replica, buf, len, alloc);
    free(buf);
    st = agree_status(dp->comm, st);
    if (st == FAN_OK) {
        dp->net = dp->rank == 0 ? *net : replica;
        int same = 0;
        st = replicas_agree(dp, &same);
        if (st == FAN_OK && !same) st = FAN_E_STATE;
    }
    if (st == FAN_OK) st = agree_status(dp->comm, fan_net_set_gradient_hook(dp->net, dp_hook, dp));
    if (st != FAN_OK) {
        if (dp->net != NULL) unhook(dp->net);
        fan_net_free(replica);
        MPI_Comm_free(&dp->comm);
        free(dp);
        return st;
    }
    if (dp->rank != 0) {
        fan_net_free(*net);
        *net = replica;
    }
    *out = dp;
    return FAN_OK;
}

void fan_mpi_dp_free(fan_mpi_dp *dp)
{
    if (dp == NULL) return;
    unhook(dp->net);
    MPI_Comm_free(&dp->comm);
    free(dp);
}

const char *fan_mpi_dp_errmsg(const fan_mpi_dp *dp)
{
    return dp == NULL ? "data-parallel context is NULL" : dp->err;
}

void fan_mpi_dp_rank(const fan_mpi_dp *dp, int *rank, int *size)
{
    if (rank) *rank = dp ? dp->rank : 0;
    if (size) *size = dp ? dp->size : 1;
}

fan_status fan_mpi_shard(fan_mpi_dp *dp, fan_iter *it)
{
    if (dp == NULL) return FAN_E_NULL;
    if (it == NULL) return fail(dp, FAN_E_NULL, "iterator is NULL");
    if (fan_iter_is_noise(it))
        return fail(dp, FAN_E_INVALID, "noise iterators are not sharded: give each rank its own "
                                       "seed instead");
    /* The index goes to 0 first, so that any count can be set, then count and index. */
    fan_status st = fan_iter_set(it, FAN_ITER_SHARD_INDEX, 0);
    if (st == FAN_OK) st = fan_iter_set(it, FAN_ITER_SHARD_COUNT, (double)dp->size);
    if (st == FAN_OK) st = fan_iter_set(it, FAN_ITER_SHARD_INDEX, (double)dp->rank);
    if (st != FAN_OK) return fail(dp, st, "sharding over %d ranks: %s", dp->size, fan_iter_errmsg(it));
    return FAN_OK;
}

/* ---- the loops ----------------------------------------------------------------------------- */

/* A rank whose step failed before the hook (iterator or gradient computation) still takes part
   in the step's agreement, so that the others refuse the step instead of waiting. */
static void join_failed_step(fan_mpi_dp *dp)
{
    double meta[META_N];
    (void)agree(dp, 0.0, 0.0, 1, meta);
}

typedef enum run_mode { RUN_EPOCHS, RUN_STEPS } run_mode;

static fan_status one_step(fan_mpi_dp *dp, fan_optimizer *opt, const float *x,
                           const int32_t *labels, const float *targets, size_t n, float *loss)
{
    dp->in_loop = 1;
    dp->rows = (double)n;
    dp->loss = loss;
    dp->hook_ran = dp->others_failed = dp->stop_agreed = 0;
    fan_status st = targets != NULL ? fan_net_train_batch_targets(dp->net, opt, x, targets, n, loss)
                                    : fan_net_train_batch(dp->net, opt, x, labels, n, loss);
    dp->in_loop = 0;
    if (!dp->hook_ran) {
        join_failed_step(dp);
        return fail(dp, st, "this rank's step failed before the gradients were averaged: %s",
                    fan_net_errmsg(dp->net));
    }
    if (dp->others_failed)
        return fail(dp, FAN_E_STATE, "another rank's step failed; no rank applied it");
    if (dp->stop_agreed) return FAN_STOPPED;
    if (st != FAN_OK) return fail(dp, st, "%s", fan_net_errmsg(dp->net));
    return FAN_OK;
}

static fan_status run(fan_mpi_dp *dp, fan_optimizer *opt, fan_iter *it, run_mode mode,
                      size_t count, fan_progress_fn cb, void *user)
{
    fan_progress p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    const size_t bpe = fan_iter_batches_per_epoch(it);
    p.total_steps = mode == RUN_STEPS ? count : (bpe != 0 && count <= SIZE_MAX / bpe ? count * bpe : 0);
    size_t epochs_done = 0, epoch_steps = 0, in_epoch = 0;
    double epoch_sum = 0.0;
    dp->stop_requested = 0;
    fan_status st = FAN_OK;
    for (;;) {
        if (mode == RUN_STEPS ? p.step == count : epochs_done == count) break;
        const float *x = NULL, *targets = NULL;
        const int32_t *labels = NULL;
        size_t n = 0;
        st = fan_iter_next(it, &x, &labels, &targets, &n);
        if (st == FAN_DONE) {
            /* Sharded iterators end their epochs at the same step on every rank. */
            epochs_done++;
            if (p.step > 0) p.epoch++;
            epoch_steps = in_epoch = 0;
            epoch_sum = 0.0;
            st = FAN_OK;
            continue;
        }
        if (st != FAN_OK) {
            join_failed_step(dp);
            return fail(dp, st, "iterator: %s", fan_iter_errmsg(it));
        }
        /* The rate this step will use, as fan_train reports it (the same on every rank). */
        double lr = 0.0;
        if (fan_optimizer_scheduled_lr(opt, fan_optimizer_steps(opt), &lr) != FAN_OK) lr = 0.0;
        float loss = 0.0f;
        st = one_step(dp, opt, x, labels, targets, n, &loss);
        if (st != FAN_OK) return st;
        p.lr = lr;
        p.step++;
        p.batch_in_epoch = in_epoch++;
        p.samples += (size_t)dp->global_rows;
        p.loss = dp->global_loss;
        epoch_steps++;
        epoch_sum += dp->global_loss;
        p.epoch_loss = epoch_sum / (double)epoch_steps;
        p.end_of_epoch = bpe != 0 && in_epoch == bpe;
        /* A request to stop travels with the next step's agreement, so that every rank stops
           after the same step. */
        if (cb != NULL && cb(&p, user) != 0) dp->stop_requested = 1;
    }
    /* A request made after the last step: agree on it, so that every rank returns the same. */
    int stop = dp->stop_requested;
    if (MPI_Allreduce(MPI_IN_PLACE, &stop, 1, MPI_INT, MPI_MAX, dp->comm) != MPI_SUCCESS)
        return fail(dp, FAN_E_STATE, "MPI_Allreduce of the stop flag failed");
    return stop ? FAN_STOPPED : FAN_OK;
}

/* Collective: the arguments of a loop on this rank, agreed with every other rank's, so that all
   start the loop or none does. */
static fan_status check_loop(fan_mpi_dp *dp, const fan_optimizer *opt, const fan_iter *it,
                             int need_batches)
{
    fan_status st = FAN_OK;
    if (opt == NULL || it == NULL)
        st = fail(dp, FAN_E_NULL, "%s is NULL", opt == NULL ? "optimizer" : "iterator");
    else if (need_batches && fan_iter_is_noise(it))
        st = fail(dp, FAN_E_INVALID, "fan_mpi_train needs a batch iterator (epochs)");
    else if (fan_iter_dim(it) != fan_net_input_size(dp->net) ||
             fan_iter_classes(it) != fan_net_output_size(dp->net))
        st = fail(dp, FAN_E_SHAPE, "the iterator's batches (%zu inputs, %zu classes) do not fit "
                  "the net (%zu inputs, %zu outputs)", fan_iter_dim(it), fan_iter_classes(it),
                  fan_net_input_size(dp->net), fan_net_output_size(dp->net));
    const fan_status all = agree_status(dp->comm, st);
    if (all != FAN_OK && st == FAN_OK)
        return fail(dp, all, "another rank's arguments were refused (%s)", fan_strerror(all));
    return all;
}

fan_status fan_mpi_train_steps(fan_mpi_dp *dp, fan_optimizer *opt, fan_iter *it, size_t steps,
                               fan_progress_fn cb, void *user)
{
    if (dp == NULL) return FAN_E_NULL;
    const fan_status st = check_loop(dp, opt, it, 0);
    return st != FAN_OK ? st : run(dp, opt, it, RUN_STEPS, steps, cb, user);
}

fan_status fan_mpi_train(fan_mpi_dp *dp, fan_optimizer *opt, fan_iter *it, size_t epochs,
                         fan_progress_fn cb, void *user)
{
    if (dp == NULL) return FAN_E_NULL;
    const fan_status st = check_loop(dp, opt, it, 1);
    return st != FAN_OK ? st : run(dp, opt, it, RUN_EPOCHS, epochs, cb, user);
}

fan_status fan_mpi_save(fan_mpi_dp *dp, const char *path)
{
    if (dp == NULL) return FAN_E_NULL;
    fan_status st = FAN_OK;
    if (dp->rank == 0) st = path == NULL ? FAN_E_NULL : fan_net_save(dp->net, path);
    int code = (int)st;
    if (MPI_Bcast(&code, 1, MPI_INT, 0, dp->comm) != MPI_SUCCESS)
        return fail(dp, FAN_E_STATE, "MPI_Bcast of the save status failed");
    if (code != FAN_OK)
        return fail(dp, (fan_status)code, "rank 0 could not save: %s",
                    dp->rank == 0 ? fan_net_errmsg(dp->net) : fan_strerror((fan_status)code));
    return FAN_OK;
}

fan_status fan_mpi_checkpoint_save(fan_mpi_dp *dp, const fan_optimizer *opt, const fan_iter *it,
                                   const char *path)
{
    if (dp == NULL) return FAN_E_NULL;
    fan_status st = FAN_OK;
    if (dp->rank == 0) st = path == NULL ? FAN_E_NULL : fan_checkpoint_save(path, dp->net, opt, it);
    int code = (int)st;
    if (MPI_Bcast(&code, 1, MPI_INT, 0, dp->comm) != MPI_SUCCESS)
        return fail(dp, FAN_E_STATE, "MPI_Bcast of the checkpoint status failed");
    if (code != FAN_OK)
        return fail(dp, (fan_status)code, "rank 0 could not write the checkpoint: %s",
                    dp->rank == 0 ? fan_net_errmsg(dp->net) : fan_strerror((fan_status)code));
    return FAN_OK;
}

fan_status fan_mpi_check_replicas(fan_mpi_dp *dp, int *identical)
{
    if (dp == NULL) return FAN_E_NULL;
    fan_status st = agree_status(dp->comm, identical == NULL ? FAN_E_NULL : FAN_OK);
    if (st != FAN_OK) return fail(dp, st, "identical is NULL on some rank");
    return replicas_agree(dp, identical);
}

size_t fan_mpi_step_bytes(const fan_net *net)
{
    return fan_net_num_params(net) * sizeof(float) + META_N * sizeof(double);
}
