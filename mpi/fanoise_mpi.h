/**
 * @file fanoise_mpi.h
 * Data-parallel training of one libfanoise network over the processes of an MPI communicator.
 *
 * A companion to libfanoise, which itself never links MPI: this module is built only where
 * `mpicc` exists (mk/mpi.mk), into build/mpi/libfanoise_mpi.a, and builds entirely on the core's
 * public hooks: the parameter and gradient views (fan_net_parameters, fan_net_gradients), the
 * gradient hook between gradients and update (fan_net_set_gradient_hook) and iterator sharding
 * (FAN_ITER_SHARD_INDEX / FAN_ITER_SHARD_COUNT).
 *
 * How it works. Every process (rank) holds a replica of the same net and an iterator over the
 * same dataset with the same batch size and seed. fan_mpi_dp_create broadcasts rank 0's net
 * (weights, biases, feedback matrices, settings) to every rank; fan_mpi_shard makes each rank's
 * iterator return its part of every global batch. In each
 * step of fan_mpi_train / fan_mpi_train_steps every rank computes the gradients of its part, the
 * gradient hook replaces them with their row-weighted mean over all ranks (one MPI_Allreduce of
 * the whole gradient block, plus one of four doubles: rows, loss, failures, stop requests), and
 * every rank applies the same update, so the replicas stay bit-identical and together take the
 * step a single process would take on the whole global batch (up to float summation order).
 *
 * Agreement. Every decision that ends or skips a step is taken by all ranks together, so a
 * failure on one rank never leaves the others waiting in a collective: a gradient computation
 * that fails on one rank (non-finite input or loss) aborts the step on every rank with every net
 * unchanged, and a progress callback that asks to stop on any rank stops every rank after the
 * same step. Calling fan_train / fan_train_steps / fan_pretrain_noise directly on a net with the
 * companion's hook installed also averages gradients, but only as an unweighted mean (exact only
 * when every part has the same rows) and without that agreement: use the functions below.
 *
 * Conventions follow libfanoise's: functions return fan_status, record a message readable with
 * fan_mpi_dp_errmsg, and never print, exit or abort. Functions marked collective must be called
 * by every rank of the communicator, in the same order. MPI must be initialised by the caller
 * (any thread level; the calls are made from the calling thread only). One context per net.
 */
#ifndef FANOISE_MPI_H
#define FANOISE_MPI_H

#include <mpi.h>

#include "fanoise.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A data-parallel context: the communicator, the replica net and the per-step bookkeeping. */
typedef struct fan_mpi_dp fan_mpi_dp;

/**
 * Collective. Makes every rank's *net a replica of rank 0's and installs the gradient hook: rank
 * 0's net is broadcast as its saved form (fan_net_save_mem: sizes, settings, rule, W, b, feedback
 * matrices, rule state) and loaded on every other rank, so those ranks need not build the net
 * themselves (a model rank 0 loaded or pretrained is what every rank trains). A hash of every
 * replica's saved form is then compared as a guard.
 * @param out   receives the context (NULL on failure, on every rank).
 * @param comm  the communicator (duplicated: the context's messages never mix with the caller's).
 * @param net   on rank 0, the net to train (kept). On the other ranks, *net may be NULL or a net,
 *              which is freed and replaced by the replica (pointers and views taken from the old
 *              handle are then invalid; take them after this call). The replica must outlive the
 *              context.
 * @param alloc allocator of the replicas made on ranks other than 0 (NULL: malloc/free).
 * @return FAN_OK on every rank, or the same error on every rank (nothing changed then): FAN_E_NULL
 *         (out or net NULL on some rank, *net NULL on rank 0); FAN_E_STATE (an MPI call failed, or
 *         the replicas differ after loading); FAN_E_NOMEM; any status of fan_net_save_mem or
 *         fan_net_load_mem.
 */
FAN_NODISCARD fan_status fan_mpi_dp_create(fan_mpi_dp **out, MPI_Comm comm, fan_net **net,
                                           const fan_allocator *alloc);

/** Removes the gradient hook from the net and frees the context (not collective). NULL is a no-op. */
void fan_mpi_dp_free(fan_mpi_dp *dp);

/** The last failure's message ("" if none; a static text for NULL). */
const char *fan_mpi_dp_errmsg(const fan_mpi_dp *dp);

/** This process's rank and the number of ranks (either pointer may be NULL). */
void fan_mpi_dp_rank(const fan_mpi_dp *dp, int *rank, int *size);

/**
 * Sets a batch iterator's FAN_ITER_SHARD_COUNT to the number of ranks and FAN_ITER_SHARD_INDEX
 * to this rank (not collective; call it on every rank with iterators made from the same dataset,
 * batch size and seed). Noise iterators are not sharded: give each rank its own noise iterator
 * with its own seed, and the global batch is the union of the ranks' batches.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (a noise iterator, or a batch too small to give every
 *         rank a row: see FAN_ITER_SHARD_COUNT).
 */
FAN_NODISCARD fan_status fan_mpi_shard(fan_mpi_dp *dp, fan_iter *it);

/**
 * Collective. Trains for exactly `steps` steps, each on every rank's next batch of `it` (a
 * sharded batch iterator, which rolls over epochs, or a noise iterator), with the row-weighted
 * mean of the ranks' gradients. cb (may be NULL) runs on every rank after every step, with
 * loss, epoch_loss and samples of the global batch (all ranks see the same values); a non-zero
 * return on any rank stops every rank after the same step, with FAN_STOPPED.
 * @return FAN_OK; FAN_STOPPED; FAN_E_NULL; any status of fan_net_train_batch on the rank where it
 *         arose, and FAN_E_STATE on the others ("another rank failed"): in both cases that step
 *         changed nothing on any rank.
 */
FAN_NODISCARD fan_status fan_mpi_train_steps(fan_mpi_dp *dp, fan_optimizer *opt, fan_iter *it,
                                             size_t steps, fan_progress_fn cb, void *user);

/**
 * Collective. As fan_mpi_train_steps on a sharded batch iterator, until the iterator has ended an
 * epoch `epochs` times (from an iterator at an epoch boundary, exactly `epochs` epochs). Every
 * shard ends its epochs at the same step. FAN_E_INVALID for a noise iterator.
 */
FAN_NODISCARD fan_status fan_mpi_train(fan_mpi_dp *dp, fan_optimizer *opt, fan_iter *it,
                                       size_t epochs, fan_progress_fn cb, void *user);

/**
 * Collective. Rank 0 saves its replica with fan_net_save (atomic: temporary file and rename);
 * every rank returns rank 0's status. The replicas are identical, so rank 0's file is the model.
 * @return FAN_OK; FAN_E_NULL; any status of fan_net_save.
 */
FAN_NODISCARD fan_status fan_mpi_save(fan_mpi_dp *dp, const char *path);

/**
 * Collective. Rank 0 writes a checkpoint of its replica, opt and it with fan_checkpoint_save
 * (atomic); every rank returns rank 0's status. The iterator's state is the global stream
 * position, the same on every rank (shard settings are not part of it). To resume, every rank
 * loads the file with fan_checkpoint_load (net, optimizer and iterator, over its own copy of the
 * dataset), then calls fan_mpi_dp_create with the loaded net and fan_mpi_shard with the loaded
 * iterator, and trains on: the run continues exactly as if it had not stopped.
 * @return FAN_OK; FAN_E_NULL; any status of fan_checkpoint_save.
 */
FAN_NODISCARD fan_status fan_mpi_checkpoint_save(fan_mpi_dp *dp, const fan_optimizer *opt,
                                                 const fan_iter *it, const char *path);

/**
 * Collective. Sets *identical to 1 on every rank if every replica's saved form (W, b, B,
 * settings, rule state) hashes the same, else 0. A cheap guard for long jobs.
 * @return FAN_OK; FAN_E_NULL; FAN_E_NOMEM; FAN_E_STATE (an MPI call failed).
 */
FAN_NODISCARD fan_status fan_mpi_check_replicas(fan_mpi_dp *dp, int *identical);

/** Bytes one rank contributes to the collectives of one step: the gradient block (4 bytes per
    parameter) and the four doubles of the step's agreement. */
size_t fan_mpi_step_bytes(const fan_net *net);

#ifdef __cplusplus
}
#endif

#endif /* FANOISE_MPI_H */
