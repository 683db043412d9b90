/*
 * dp_train.c - data-parallel training of one network on Fashion-MNIST over MPI ranks, timed: the
 * example of fanoise_mpi.h and the program behind docs/scale-out.md's data-parallel numbers.
 *
 *   mpirun -np N build/mpi/dp_train [--data DIR] [--width W] [--depth D] [--batch B]
 *                                   [--steps S] [--rule fa|bp|dfa|...] [--lr X] [--plain]
 *                                   [--save FILE] [--synthetic N]
 *
 * Every rank loads the data (a shared file system is assumed) and iterates over the same
 * shuffled order with its shard of every global batch of B rows; rank 0's net is broadcast,
 * gradients are averaged with MPI_Allreduce in the gradient hook. --plain (one rank only) trains
 * with fan_train_steps and no companion, the baseline the speed-up is measured against. Prints
 * the wall time of the training steps, steps and samples per second, the bytes each rank sends
 * into the collectives per step, and rank 0's test accuracy. --synthetic N replaces the data with
 * 10,000 random 8-bit images of N pixels (for timing other input sizes, e.g. 3072 for CIFAR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fanoise_mpi.h"

static void die(int rank, const char *what, const char *msg)
{
    fprintf(stderr, "dp_train (rank %d): %s: %s\n", rank, what, msg);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

#define TRY(rank, call, msg)                                                                       \
    do {                                                                                           \
        const fan_status s_ = (call);                                                              \
        if (s_ != FAN_OK) die(rank, #call, (msg));                                                 \
    } while (0)

static fan_rule rule_of(const char *name)
{
    for (int r = 0; r < 8; r++)
        if (strcmp(fan_rule_name((fan_rule)r), name) == 0) return (fan_rule)r;
    return FAN_RULE_FA;
}

/* Random 8-bit images and labels: the same on every rank (fixed generator). */
static fan_dataset *synthetic(int rank, size_t pixels)
{
    const size_t n = 10000;
    uint8_t *px = malloc(n * pixels);
    int32_t *y = malloc(n * sizeof *y);
    if (px == NULL || y == NULL) die(rank, "--synthetic", "out of memory");
    uint64_t s = 88172645463325252ull;
    for (size_t i = 0; i < n * pixels; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        px[i] = (uint8_t)(s >> 24);
    }
    for (size_t i = 0; i < n; i++) y[i] = (int32_t)(i % 10);
    fan_dataset *ds = NULL;
    TRY(rank, fan_dataset_from_u8(&ds, px, y, n, pixels, 1, 1, 10, NULL), "fan_dataset_from_u8");
    free(px);
    free(y);
    return ds;
}

static fan_dataset *load(int rank, const char *dir, const char *images, const char *labels)
{
    char ip[1024], lp[1024];
    snprintf(ip, sizeof ip, "%s/fashion-mnist/%s", dir, images);
    snprintf(lp, sizeof lp, "%s/fashion-mnist/%s", dir, labels);
    fan_dataset *ds = NULL;
    TRY(rank, fan_dataset_load_idx(&ds, ip, lp, NULL), ip);
    /* The training set's pixel statistics (docs/reproduction.md). */
    TRY(rank, fan_dataset_set_normalization(ds, FAN_NORM_STANDARDIZE, 0.286, 0.353),
        fan_dataset_errmsg(ds));
    return ds;
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const char *data = "data", *rule = "fa", *save = NULL;
    size_t width = 100, depth = 2, batch = 64, steps = 2000, pixels = 0;
    double lr = 1e-3;
    int plain = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--plain") == 0) { plain = 1; continue; }
        if (v == NULL) die(rank, a, "needs a value");
        if (strcmp(a, "--data") == 0) data = v;
        else if (strcmp(a, "--rule") == 0) rule = v;
        else if (strcmp(a, "--save") == 0) save = v;
        else if (strcmp(a, "--width") == 0) width = strtoul(v, NULL, 10);
        else if (strcmp(a, "--depth") == 0) depth = strtoul(v, NULL, 10);
        else if (strcmp(a, "--batch") == 0) batch = strtoul(v, NULL, 10);
        else if (strcmp(a, "--steps") == 0) steps = strtoul(v, NULL, 10);
        else if (strcmp(a, "--lr") == 0) lr = strtod(v, NULL);
        else if (strcmp(a, "--synthetic") == 0) pixels = strtoul(v, NULL, 10);
        else die(rank, a, "unknown option");
        i++;
    }
    if (plain && size != 1) die(rank, "--plain", "runs on one rank only");
    if (depth < 1 || depth > 16 || width == 0 || batch == 0) die(rank, "sizes", "out of range");

    fan_dataset *train = pixels ? synthetic(rank, pixels)
                                : load(rank, data, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
    fan_dataset *test = pixels ? synthetic(rank, pixels)
                               : load(rank, data, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
    size_t sizes[18];
    sizes[0] = pixels ? pixels : 784;
    for (size_t l = 1; l < depth; l++) sizes[l] = width;
    sizes[depth] = 10;
    /* Only rank 0 builds the net: fan_mpi_dp_create gives every other rank a replica. */
    fan_net *net = NULL;
    if (rank == 0 || plain) {
        TRY(rank, fan_net_create(&net, sizes, depth + 1, NULL), "fan_net_create");
        TRY(rank, fan_net_set_rule(net, rule_of(rule)), fan_net_errmsg(net));
        TRY(rank, fan_net_init(net, 1, 2), fan_net_errmsg(net));
    }
    fan_mpi_dp *dp = NULL;
    if (!plain) TRY(rank, fan_mpi_dp_create(&dp, MPI_COMM_WORLD, &net, NULL), "fan_mpi_dp_create");
    fan_optimizer *opt = NULL;
    TRY(rank, fan_optimizer_create(&opt, FAN_OPTIMIZER_ADAM, net, NULL), fan_net_errmsg(net));
    TRY(rank, fan_optimizer_set(opt, FAN_OPT_LR, lr), fan_optimizer_errmsg(opt));
    fan_iter *it = NULL;
    TRY(rank, fan_iter_create_batches(&it, train, batch, 3, NULL), "fan_iter_create_batches");
    if (!plain) TRY(rank, fan_mpi_shard(dp, it), fan_mpi_dp_errmsg(dp));

    MPI_Barrier(MPI_COMM_WORLD);
    const double t0 = MPI_Wtime();
    if (plain)
        TRY(rank, fan_train_steps(net, opt, it, steps, NULL, NULL), fan_net_errmsg(net));
    else
        TRY(rank, fan_mpi_train_steps(dp, opt, it, steps, NULL, NULL), fan_mpi_dp_errmsg(dp));
    MPI_Barrier(MPI_COMM_WORLD);
    const double wall = MPI_Wtime() - t0;

    if (rank == 0) {
        double loss = 0.0, acc = 0.0;
        TRY(rank, fan_net_evaluate(net, test, &loss, &acc), fan_net_errmsg(net));
        printf("%s %zu-layer width %zu (%zu parameters), global batch %zu, %zu steps, %d rank%s%s\n",
               rule, depth, width, fan_net_num_params(net), batch, steps, size, size > 1 ? "s" : "",
               plain ? " (plain fan_train_steps)" : "");
        printf("wall %.2f s: %.1f steps/s, %.0f samples/s; %zu bytes per rank per step into the "
               "collectives; test accuracy %.4f\n",
               wall, (double)steps / wall, (double)(steps * batch) / wall,
               plain ? (size_t)0 : fan_mpi_step_bytes(net), acc);
    }
    if (save != NULL && !plain) TRY(rank, fan_mpi_save(dp, save), fan_mpi_dp_errmsg(dp));
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_mpi_dp_free(dp);
    fan_net_free(net);
    fan_dataset_free(test);
    fan_dataset_free(train);
    MPI_Finalize();
    return 0;
}
