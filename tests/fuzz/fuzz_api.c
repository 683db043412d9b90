/* fuzz_api.c - libFuzzer target that drives the public API with random shapes, arguments and
   call orders. The input is a script: a few bytes choose a network, then each group of bytes
   is one call with fuzz-chosen arguments (valid most of the time, out of range, mismatched or
   non-finite otherwise). Oracles, from the header's conventions:
   - every status is a documented value; a failure leaves a message in the handle;
   - a failed call leaves the net exactly as it was (its serialised bytes are compared), as
     does FAN_E_NUMERIC from a training step;
   - diagnostics and other const calls change neither the net nor its gradients;
   - clones and save/load round trips serialise to the same bytes;
   - handles keep working after failures, and nothing leaks. */
#include <math.h>

#include "fuzz_common.h"

#define MAX_WIDTH 8u   /* widths 1..8: every code path, fast SVDs */
#define MAX_ROWS 6u    /* batch rows per call */
#define MAX_SAMPLES 20u
#define MAX_STEPS 3u
#define MAX_OPS 64u

typedef struct world {
    fz_reader r;
    fz_counter c;
    fan_allocator al;
    fan_net *net;
    fan_optimizer *opt;
    fan_dataset *ds;
    fan_iter *batches, *noise;
    uint8_t *snap; /* the net's bytes before a call */
    size_t snap_len;
} world;

/* Mostly ordinary values, sometimes the ones that break arithmetic. */
static double pick_double(world *w)
{
    static const double special[] = {0.0,     1.0,      -1.0,   0.5,     1e30,   -1e30,
                                     NAN,     INFINITY, -INFINITY, 1e-40, 3.4e38, 1e-8};
    const uint8_t b = fz_u8(&w->r);
    if (b < 200) return ((double)b - 100.0) / 25.0;
    return special[b % (sizeof special / sizeof special[0])];
}

static float *pick_floats(world *w, size_t n)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    FZ_ASSERT(v != NULL);
    for (size_t i = 0; i < n; i++) v[i] = (float)pick_double(w);
    return v;
}

/* A length that is right most of the time and off by one otherwise. */
static size_t pick_len(world *w, size_t right)
{
    const uint8_t b = fz_u8(&w->r) % 8;
    if (b == 6) return right + 1;
    if (b == 7 && right > 0) return right - 1;
    return right;
}

static size_t pick_layer(world *w)
{
    return fz_u8(&w->r) % (fan_net_num_layers(w->net) + 2);
}

static void snapshot(world *w)
{
    free(w->snap);
    FZ_ASSERT(fan_net_save_mem(w->net, NULL, 0, &w->snap_len) == FAN_OK);
    w->snap = malloc(w->snap_len);
    FZ_ASSERT(w->snap != NULL);
    size_t got;
    FZ_ASSERT(fan_net_save_mem(w->net, w->snap, w->snap_len, &got) == FAN_OK);
}

static int same_as_snapshot(const world *w)
{
    size_t len;
    FZ_ASSERT(fan_net_save_mem(w->net, NULL, 0, &len) == FAN_OK);
    if (len != w->snap_len) return 0;
    uint8_t *now = malloc(len);
    FZ_ASSERT(now != NULL);
    FZ_ASSERT(fan_net_save_mem(w->net, now, len, &len) == FAN_OK);
    const int same = memcmp(now, w->snap, len) == 0;
    free(now);
    return same;
}

/* The checks every call on the net gets: documented status; on failure a message and no change. */
static void after_net_call(world *w, fan_status s, const char *what)
{
    if (getenv("FZ_TRACE") != NULL)
        fprintf(stderr, "%s -> %d (%s)\n", what, (int)s, s ? fan_net_errmsg(w->net) : "");
    FZ_ASSERT(fz_known_status(s));
    if (s != FAN_OK && s != FAN_DONE && s != FAN_STOPPED) {
        /* The training steps record optimizer-side failures (a NULL or mismatched optimizer)
           in the optimizer only, and a NULL optimizer nowhere (reported upstream). */
        if (strncmp(what, "train_batch", 11) != 0)
            FZ_ASSERT(fan_net_errmsg(w->net)[0] != '\0');
        else if (w->opt != NULL)
            FZ_ASSERT(fan_net_errmsg(w->net)[0] != '\0' || fan_optimizer_errmsg(w->opt)[0] != '\0');
        FZ_ASSERT(same_as_snapshot(w));
    }
}

/* Copies of all gradients, to show that diagnostics leave them alone. */
static float *grads_copy(const fan_net *net)
{
    size_t total = 0;
    for (size_t l = 0; l < fan_net_num_layers(net); l++)
        total += (fan_net_layer_inputs(net, l) + 1) * fan_net_layer_outputs(net, l);
    float *g = malloc(total * sizeof *g + 1), *p = g;
    FZ_ASSERT(g != NULL);
    for (size_t l = 0; l < fan_net_num_layers(net); l++) {
        const size_t o = fan_net_layer_outputs(net, l), wn = o * fan_net_layer_inputs(net, l);
        FZ_ASSERT(fan_net_get_gradients(net, l, p, wn, p + wn, o) == FAN_OK);
        p += wn + o;
    }
    return g;
}

static void op_settings(world *w, uint8_t which)
{
    static const char *const names[] = {"set_rule", "set_activation", "set_loss", "net_set",
                                        "set_initializer", "mirror"};
    const char *what = names[which % 6];
    fan_status s;
    snapshot(w);
    switch (which % 6) {
    case 0: s = fan_net_set_rule(w->net, (fan_rule)(fz_u8(&w->r) % 9)); break;
    case 5: {
        const size_t steps = fz_u8(&w->r) % 4, batch = fz_u8(&w->r) % 9;
        const double lr = pick_double(w), wd = pick_double(w);
        s = fan_net_mirror(w->net, steps, batch, lr, wd, fz_u8(&w->r));
        break;
    }
    case 1: s = fan_net_set_activation(w->net, pick_layer(w), (fan_activation)(fz_u8(&w->r) % 6)); break;
    case 2: s = fan_net_set_loss(w->net, (fan_loss)(fz_u8(&w->r) % 3)); break;
    case 3: {
        /* Half the thread settings are valid counts, so that later calls run on the net's pool. */
        const fan_net_param p = (fan_net_param)(fz_u8(&w->r) % 2);
        const double v = p == FAN_NET_THREADS && (fz_u8(&w->r) & 1) ? 1 + fz_u8(&w->r) % 3
                                                                    : pick_double(w);
        s = fan_net_set(w->net, p, v);
        break;
    }
    default:
        s = fan_net_set_initializer(w->net, (fan_matrix)(fz_u8(&w->r) % 3),
                                    (fan_init)(fz_u8(&w->r) % 4));
        break;
    }
    after_net_call(w, s, what);
}

static void op_batch(world *w, uint8_t which)
{
    const size_t in = fan_net_input_size(w->net), out = fan_net_output_size(w->net);
    const size_t n = fz_u8(&w->r) % (MAX_ROWS + 1); /* 0 is invalid */
    float *x = pick_floats(w, n * in);
    int32_t labels[MAX_ROWS];
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(fz_u8(&w->r) % (out + 2)) - (i == 0 && (which & 8) ? 1 : 0);
    float *targets = pick_floats(w, n * out);
    float loss = 0.0f;
    double dloss = 0.0;
    static const char *const names[] = {"forward", "compute_gradients", "compute_gradients_targets",
                                        "train_batch", "train_batch_targets", "loss_value"};
    const char *what = names[which % 6];
    fan_status s;
    snapshot(w);
    switch (which % 6) {
    case 0: {
        const size_t plen = pick_len(w, n * out);
        float *probs = malloc((plen ? plen : 1) * sizeof *probs);
        FZ_ASSERT(probs != NULL);
        s = fan_net_forward(w->net, x, n, probs, plen);
        FZ_ASSERT(same_as_snapshot(w)); /* forward never changes weights */
        free(probs);
        break;
    }
    case 1: s = fan_net_compute_gradients(w->net, x, labels, n, &loss); break;
    case 2: s = fan_net_compute_gradients_targets(w->net, x, targets, n, NULL); break;
    case 3:
        s = fan_net_train_batch(w->net, w->opt, x, labels, n, &loss);
        if (w->opt == NULL) FZ_ASSERT(s == FAN_E_NULL);
        break;
    case 4: s = fan_net_train_batch_targets(w->net, w->opt, x, targets, n, &loss); break;
    default:
        s = fan_net_loss_value(w->net, x, labels, n, &dloss);
        FZ_ASSERT(same_as_snapshot(w));
        break;
    }
    after_net_call(w, s, what);
    free(x);
    free(targets);
}

static void op_weights(world *w, uint8_t which)
{
    const size_t layer = pick_layer(w);
    const size_t o = fan_net_layer_outputs(w->net, layer), wn = o * fan_net_layer_inputs(w->net, layer);
    const size_t wl = pick_len(w, wn), bl = pick_len(w, o);
    float *wv = pick_floats(w, wl), *bv = pick_floats(w, bl);
    static const char *const names[] = {"get_weights", "set_weights", "get_feedback",
                                        "set_feedback", "get_gradients", "set_gradients"};
    const char *what = names[which % 6];
    fan_status s;
    snapshot(w);
    switch (which % 6) {
    case 0: s = fan_net_get_weights(w->net, layer, wv, wl, bv, bl); break;
    case 1: s = fan_net_set_weights(w->net, layer, wv, wl, (which & 8) ? NULL : bv, bl); break;
    case 2: s = fan_net_get_feedback(w->net, layer, wv, wl); break;
    case 3: s = fan_net_set_feedback(w->net, layer, wv, wl); break;
    case 4: s = fan_net_get_gradients(w->net, layer, wv, wl, bv, bl); break;
    default: s = fan_net_set_gradients(w->net, layer, wv, wl, bv, bl); break;
    }
    if (which % 2 == 0 || which % 6 == 5) FZ_ASSERT(same_as_snapshot(w));
    after_net_call(w, s, what);
    free(wv);
    free(bv);
}

static void op_optimizer(world *w, uint8_t which)
{
    fan_status s;
    switch (which % 5) {
    case 0:
        fan_optimizer_free(w->opt);
        w->opt = NULL;
        s = fan_optimizer_create(&w->opt, (fan_optimizer_kind)(fz_u8(&w->r) % 5), w->net, &w->al);
        FZ_ASSERT(fz_known_status(s) && (s == FAN_OK) == (w->opt != NULL));
        break;
    case 1: {
        if (w->opt == NULL) break;
        /* Every known parameter (schedules are 8 to 13) and one unknown. */
        const fan_optimizer_param p = (fan_optimizer_param)(fz_u8(&w->r) % 15);
        double before = 0.0, after = 0.0;
        const fan_status g = fan_optimizer_get(w->opt, p, &before);
        s = fan_optimizer_set(w->opt, p, pick_double(w));
        FZ_ASSERT(fz_known_status(s));
        if (s != FAN_OK && g == FAN_OK) {
            FZ_ASSERT(fan_optimizer_get(w->opt, p, &after) == FAN_OK && after == before);
            FZ_ASSERT(fan_optimizer_errmsg(w->opt)[0] != '\0');
        }
        break;
    }
    case 2:
        snapshot(w);
        s = fan_optimizer_step(w->opt, w->net);
        FZ_ASSERT(fz_known_status(s));
        if (s != FAN_OK) FZ_ASSERT(same_as_snapshot(w));
        break;
    case 3:
        if (w->opt != NULL) FZ_ASSERT(fan_optimizer_reset(w->opt) == FAN_OK && fan_optimizer_steps(w->opt) == 0);
        break;
    default:
        snapshot(w);
        s = fan_net_init(w->net, fz_u32(&w->r), fz_u32(&w->r));
        FZ_ASSERT(s == FAN_OK);
        break;
    }
}

/* A dataset of fuzz-chosen size (its dim and classes may not match the net), an iterator over
   it, and a few training steps or an epoch. */
static void op_data(world *w, uint8_t which)
{
    fan_iter_free(w->batches);
    fan_dataset_free(w->ds);
    w->batches = NULL;
    w->ds = NULL;
    const int mismatch = (which & 8) != 0;
    const size_t n = 1 + fz_u8(&w->r) % MAX_SAMPLES;
    const size_t dim = mismatch ? 1 + fz_u8(&w->r) % MAX_WIDTH : fan_net_input_size(w->net);
    const size_t classes = mismatch ? 1 + fz_u8(&w->r) % MAX_WIDTH : fan_net_output_size(w->net);
    float *x = pick_floats(w, n * dim);
    int32_t labels[MAX_SAMPLES];
    for (size_t i = 0; i < n; i++) labels[i] = (int32_t)(fz_u8(&w->r) % classes);
    fan_status s = fan_dataset_from_arrays(&w->ds, x, labels, n, dim, classes, &w->al);
    free(x);
    FZ_ASSERT(fz_known_status(s) && (s == FAN_OK) == (w->ds != NULL));
    if (s != FAN_OK) return;
    const size_t batch = fz_u8(&w->r) % (MAX_ROWS + 1);
    s = fan_iter_create_batches(&w->batches, w->ds, batch, fz_u8(&w->r), &w->al);
    FZ_ASSERT((s == FAN_OK) == (batch > 0) && (s == FAN_OK) == (w->batches != NULL));
    if (s != FAN_OK || w->opt == NULL) return;
    /* Dropping the last partial batch is refused when it would leave empty epochs. */
    if (which & 16)
        FZ_ASSERT(fan_iter_set(w->batches, FAN_ITER_DROP_LAST, 1) == (n < batch ? FAN_E_INVALID : FAN_OK));
    /* Sharding: a count that leaves a part empty, or an index not below the count, is refused;
       a sharded iterator then trains like any other. */
    if (which & 64) {
        const size_t count = 1 + fz_u8(&w->r) % 4, index = fz_u8(&w->r) % 5;
        s = fan_iter_set(w->batches, FAN_ITER_SHARD_COUNT, (double)count);
        FZ_ASSERT(s == FAN_OK || s == FAN_E_INVALID);
        if (s == FAN_OK)
            FZ_ASSERT((fan_iter_set(w->batches, FAN_ITER_SHARD_INDEX, (double)index) == FAN_OK) ==
                      (index < count));
    }
    snapshot(w);
    s = (which & 32) ? fan_train(w->net, w->opt, w->batches, 1, NULL, NULL)
                     : fan_train_steps(w->net, w->opt, w->batches, 1 + fz_u8(&w->r) % MAX_STEPS, NULL, NULL);
    FZ_ASSERT(fz_known_status(s));
    if (s == FAN_E_SHAPE || s == FAN_E_NULL) FZ_ASSERT(same_as_snapshot(w));
    double loss = NAN, acc = NAN;
    snapshot(w);
    s = fan_net_evaluate(w->net, w->ds, &loss, &acc);
    FZ_ASSERT(fz_known_status(s) && same_as_snapshot(w));
    if (s == FAN_OK) FZ_ASSERT(acc >= 0.0 && acc <= 1.0);
}

static void op_noise(world *w, uint8_t which)
{
    fan_iter_free(w->noise);
    w->noise = NULL;
    const size_t dim = (which & 8) ? fz_u8(&w->r) % (MAX_WIDTH + 1) : fan_net_input_size(w->net);
    const size_t classes = (which & 16) ? fz_u8(&w->r) % (MAX_WIDTH + 1) : fan_net_output_size(w->net);
    const size_t batch = fz_u8(&w->r) % (MAX_ROWS + 1);
    fan_status s = fan_iter_create_noise(&w->noise, dim, classes, batch, fz_u32(&w->r), &w->al);
    FZ_ASSERT(fz_known_status(s) && (s == FAN_OK) == (w->noise != NULL));
    if (s != FAN_OK) return;
    s = fan_iter_set(w->noise, (fan_iter_param)(fz_u8(&w->r) % 7), pick_double(w));
    FZ_ASSERT(fz_known_status(s));
    if (w->opt == NULL) return;
    snapshot(w);
    s = fan_pretrain_noise(w->net, w->opt, w->noise, 1 + fz_u8(&w->r) % MAX_STEPS, NULL, NULL);
    FZ_ASSERT(fz_known_status(s));
    if (s == FAN_E_SHAPE || s == FAN_E_INVALID) FZ_ASSERT(same_as_snapshot(w));
    /* A data iterator is not noise, and a noise iterator cannot drive fan_train. */
    if (w->batches != NULL) FZ_ASSERT(fan_pretrain_noise(w->net, w->opt, w->batches, 1, NULL, NULL) == FAN_E_INVALID);
    FZ_ASSERT(fan_train(w->net, w->opt, w->noise, 1, NULL, NULL) == FAN_E_INVALID);
}

static void op_diag(world *w, uint8_t which)
{
    const size_t layer = pick_layer(w);
    const size_t in = fan_net_input_size(w->net);
    double v[MAX_WIDTH * MAX_WIDTH + 2], a = 0.0, b = 0.0;
    const size_t k = fz_u8(&w->r) % (MAX_WIDTH + 2);
    const size_t n = pick_len(w, k);
    const size_t rows = 1 + fz_u8(&w->r) % MAX_ROWS;
    float *x = pick_floats(w, rows * in);
    int32_t labels[MAX_ROWS];
    for (size_t i = 0; i < rows; i++) labels[i] = (int32_t)(fz_u8(&w->r) % (fan_net_output_size(w->net) + 1));
    const fan_matrix m = (fan_matrix)(fz_u8(&w->r) % 4);
    snapshot(w);
    float *g = grads_copy(w->net);
    fan_status s;
    switch (which % 10) {
    case 0: s = fan_diag_alignment(w->net, layer, v, n, &a, &b); break;
    case 1: s = fan_diag_singular_values(w->net, layer, m, v, n); break;
    case 2: s = fan_diag_effective_rank(w->net, layer, m, &a); break;
    case 3: s = fan_diag_participation_ratio(w->net, layer, m, &a); break;
    case 4: s = fan_diag_stable_rank(w->net, layer, m, &a); break;
    case 5: s = fan_diag_principal_angles(w->net, layer, k, v, n); break;
    case 6: s = fan_diag_delta_alignment(w->net, x, labels, rows, v, pick_len(w, fan_net_num_layers(w->net))); break;
    case 7: s = fan_diag_readout(w->net, x, rows, &a, &b, v, k); break;
    case 8: s = w->ds ? fan_diag_gram_dimensionality(w->net, layer, w->ds, k, &a) : FAN_OK; break;
    default: s = w->ds ? fan_diag_calibration_error(w->net, w->ds, k, &a) : FAN_OK; break;
    }
    FZ_ASSERT(fz_known_status(s));
    FZ_ASSERT(same_as_snapshot(w));
    float *g2 = grads_copy(w->net);
    size_t total = 0;
    for (size_t l = 0; l < fan_net_num_layers(w->net); l++)
        total += (fan_net_layer_inputs(w->net, l) + 1) * fan_net_layer_outputs(w->net, l);
    FZ_ASSERT(memcmp(g, g2, total * sizeof *g) == 0);
    if (s != FAN_OK) FZ_ASSERT(fan_net_errmsg(w->net)[0] != '\0');
    free(g);
    free(g2);
    free(x);
}

static void op_copies(world *w, uint8_t which)
{
    snapshot(w);
    fan_net *other = NULL;
    if (which & 8) {
        FZ_ASSERT(fan_net_clone(&other, w->net) == FAN_OK);
    } else {
        FZ_ASSERT(fan_net_load_mem(&other, w->snap, w->snap_len, &w->al) == FAN_OK);
    }
    fan_net *keep = w->net;
    w->net = other;
    FZ_ASSERT(same_as_snapshot(w));
    /* Either one goes on with the optimizer and iterators: a copy must be a full replacement
       that shares no memory with its source. */
    if (which & 16) {
        w->net = keep;
        fan_net_free(other);
    } else {
        fan_net_free(keep);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    world w;
    memset(&w, 0, sizeof w);
    w.r.p = data;
    w.r.n = size;
    w.al = fz_allocator(&w.c);

    size_t sizes[5];
    const size_t n_sizes = 2 + fz_u8(&w.r) % 3;
    for (size_t i = 0; i < n_sizes; i++) {
        const uint8_t b = fz_u8(&w.r);
        sizes[i] = b == 255 ? 0 : 1 + b % MAX_WIDTH;
    }
    fan_status s = fan_net_create(&w.net, sizes, n_sizes, &w.al);
    FZ_ASSERT(s == FAN_OK || s == FAN_E_INVALID);
    if (s != FAN_OK) {
        FZ_ASSERT(w.net == NULL && w.c.live == 0);
        return 0;
    }
    for (size_t ops = 0; ops < MAX_OPS && w.r.n > 0; ops++) {
        const uint8_t op = fz_u8(&w.r);
        switch (op % 9) {
        case 0: op_settings(&w, op / 9); break;
        case 1:
        case 2: op_batch(&w, op / 9); break;
        case 3: op_weights(&w, op / 9); break;
        case 4: op_optimizer(&w, op / 9); break;
        case 5: op_data(&w, op); break;
        case 6: op_noise(&w, op); break;
        case 7: op_diag(&w, op / 9); break;
        default: op_copies(&w, op); break;
        }
    }
    fan_iter_free(w.noise);
    fan_iter_free(w.batches);
    fan_dataset_free(w.ds);
    fan_optimizer_free(w.opt);
    fan_net_free(w.net);
    free(w.snap);
    FZ_ASSERT(w.c.live == 0);
    return 0;
}
