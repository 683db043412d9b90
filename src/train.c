/*
 * train.c - the training step (gradients by the net's rule, the optimizer's update, the rule's own
 * update, all checked and undone together on failure), the loop shared by data training and
 * random-noise pretraining, and evaluation over a dataset. Noise pretraining is "train on a noise
 * iterator", so every rule, optimizer and callback works the same for both streams.
 */
#include "iter_internal.h"

#include <stdatomic.h>
#include <string.h>

/* Rows per forward pass of fan_net_evaluate: enough for the GEMMs to run near full speed, few
   enough that the net's workspace stays small (784-100-10: about 0.3 MB). */
#define EVAL_CHUNK 256

/* ---- the step ------------------------------------------------------------------------------ */

/* Validates a (optimizer, net) pair; a failure is recorded on both handles, so the caller finds
   the message whichever one it asks. */
static fan_status check_pair(fan_optimizer *opt, const fan_net *net)
{
    FAN__FAIL_IF(net ? fan__net_errbuf(net) : NULL, opt == NULL, FAN_E_NULL, "optimizer is NULL");
    FAN__FAIL_IF(fan__optimizer_errbuf(opt), net == NULL, FAN_E_NULL, "net is NULL");
    if (!fan__optimizer_fits(opt, fan__net_sizes(net), fan_net_num_layers(net),
                             fan_net_num_params(net))) {
        char *err = fan__net_errbuf(net);
        (void)fan__fail(err, FAN_E_SHAPE,
                        "the net's layer shapes differ from those the optimizer was created for");
        return fan__fail(fan__optimizer_errbuf(opt), FAN_E_SHAPE, "%s", err);
    }
    return FAN_OK;
}

/* The optimizer's update on the net's threads, each range on the thread that computed its
   gradients (fan__net_parallel_params). */
typedef struct update {
    fan_optimizer *opt;
    fan__kernels isa;
    float *p;
    const float *g;
    atomic_int bad;
} update;

static void update_range(void *arg, size_t first, size_t count)
{
    update *u = arg;
    if (!fan__optimizer_update_range(u->opt, u->isa, u->p, u->g, first, count))
        atomic_store_explicit(&u->bad, 1, memory_order_relaxed);
}

/* Applies the net's gradients: the optimizer's update of W and b, then the rule's own update
   (KP moves B). If anything becomes non-finite, parameters, optimizer state and the rule's state
   are put back exactly and the step fails: no call leaves a net with non-finite weights. */
static fan_status apply(fan_optimizer *opt, fan_net *net, int undo_gradients)
{
    update u;
    size_t n;
    u.opt = opt;
    u.isa = fan__net_kernels(net);
    u.p = fan__net_params_mut(net, &n);
    u.g = fan__net_grads(net, &n);
    atomic_init(&u.bad, 0);
    fan__net_save_rule_state(net);
    fan__optimizer_begin_step(opt);
    fan__net_parallel_params(net, update_range, &u);
    int ok = !atomic_load(&u.bad);
    const float *before = fan__optimizer_end_step(opt);
    if (ok) ok = fan__net_after_update(net, before, fan__optimizer_contraction(opt));
    if (!ok) {
        fan__optimizer_rollback(opt, u.p, n);
        fan__net_restore_rule_state(net);
        if (undo_gradients) fan__net_undo_gradients(net);
        (void)fan__fail(fan__net_errbuf(net), FAN_E_NUMERIC,
                        "the update made a weight or optimizer state non-finite (a gradient "
                        "overflowed, or the learning rate or weight decay is too large for these "
                        "inputs); nothing was changed");
        return fan__fail(fan__optimizer_errbuf(opt), FAN_E_NUMERIC, "%s", fan_net_errmsg(net));
    }
    return FAN_OK;
}

fan_status fan_optimizer_step(fan_optimizer *opt, fan_net *net)
{
    FAN__CHECK(check_pair(opt, net));
    FAN__FAIL_IF(fan__optimizer_errbuf(opt), !fan__net_has_grads(net), FAN_E_STATE,
                 "the net has no gradients yet: call fan_net_compute_gradients first");
    return apply(opt, net, 0);
}

/* Copies the net's message into the optimizer's when a gradient computation failed, so the
   caller finds it on either handle. */
static fan_status step_after(fan_optimizer *opt, fan_net *net, fan_status st)
{
    if (st != FAN_OK) return fan__fail(fan__optimizer_errbuf(opt), st, "%s", fan_net_errmsg(net));
    /* The gradient hook (fan_net_set_gradient_hook) sits between gradients and update; when it
       refuses, the step ends as a failed update does, with this call's gradients undone. */
    void *user = NULL;
    const fan_gradient_hook hook = fan__net_gradient_hook(net, &user);
    if (hook != NULL && (st = hook(net, user)) != FAN_OK) {
        fan__net_undo_gradients(net);
        (void)fan__fail(fan__net_errbuf(net), st,
                        "the gradient hook returned %d (%s); the step was not applied", (int)st,
                        fan_strerror(st));
        return fan__fail(fan__optimizer_errbuf(opt), st, "%s", fan_net_errmsg(net));
    }
    /* The gradients this call computed are undone with the update, so a failed step leaves the
       net exactly as it was. */
    return apply(opt, net, 1);
}

/* Whether the step's gradients need their own scan for non-finite values. Without a gradient
   hook nothing reads them before the update, and the update finds a non-finite gradient itself:
   every optimizer turns one into a non-finite parameter or state (even a learning rate of 0:
   0 times infinity is NaN), which undoes the step with FAN_E_NUMERIC. A hook (a data-parallel
   companion's allreduce) only ever sees gradients that passed the scan. The scan is a pass over
   every gradient, 2% of a 784-100-10 step. */
static int scan_gradients(const fan_net *net)
{
    void *user = NULL;
    return fan__net_gradient_hook(net, &user) != NULL;
}

/* The status of an unscanned step whose update failed: a NaN or infinity in x can leave the
   loss finite (ReLU maps NaN to 0) and show only in the gradients; the scan would have blamed
   the input, and so does this, on both handles. */
static fan_status blame_input(fan_optimizer *opt, fan_net *net, const float *x, size_t n,
                              fan_status st)
{
    if (st != FAN_E_NUMERIC || fan__all_finite(x, n * fan__net_sizes(net)[0])) return st;
    (void)fan__fail(fan__net_errbuf(net), FAN_E_NONFINITE, "input x contains NaN or infinity");
    return fan__fail(fan__optimizer_errbuf(opt), FAN_E_NONFINITE, "%s", fan_net_errmsg(net));
}

fan_status fan_net_train_batch(fan_net *net, fan_optimizer *opt, const float *x,
                               const int32_t *labels, size_t n, float *loss)
{
    FAN__CHECK(check_pair(opt, net));
    const int scan = scan_gradients(net);
    const fan_status st =
        step_after(opt, net, fan__net_gradients_labels(net, x, labels, n, loss, scan));
    return scan ? st : blame_input(opt, net, x, n, st);
}

fan_status fan_net_train_batch_targets(fan_net *net, fan_optimizer *opt, const float *x,
                                       const float *targets, size_t n, float *loss)
{
    FAN__CHECK(check_pair(opt, net));
    const int scan = scan_gradients(net);
    const fan_status st =
        step_after(opt, net, fan__net_gradients_targets(net, x, targets, n, loss, scan));
    return scan ? st : blame_input(opt, net, x, n, st);
}

/* ---- the loop ------------------------------------------------------------------------------ */

typedef enum run_mode {
    RUN_EPOCHS, /* count full epochs, after finishing a part-way epoch */
    RUN_STEPS   /* exactly count batches, rolling over epochs */
} run_mode;

static fan_status check_args(fan_net *net, const fan_optimizer *opt, const fan_iter *it)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), opt == NULL, FAN_E_NULL, "optimizer is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), it == NULL, FAN_E_NULL, "iterator is NULL");
    return FAN_OK;
}

/* Checked before the first step, so that a mismatch fails with nothing changed. */
static fan_status check_shapes(fan_net *net, const fan_iter *it)
{
    const size_t dim = fan_iter_dim(it), classes = fan_iter_classes(it);
    FAN__FAIL_IF(fan__net_errbuf(net), dim != fan_net_input_size(net), FAN_E_SHAPE,
                 "the iterator's batches have %zu inputs per row; the net takes %zu", dim,
                 fan_net_input_size(net));
    FAN__FAIL_IF(fan__net_errbuf(net), classes != fan_net_output_size(net), FAN_E_SHAPE,
                 "the iterator has %zu classes; the net has %zu outputs", classes,
                 fan_net_output_size(net));
    return FAN_OK;
}

/* Steps the call will make if not stopped; 0 (unknown) if that overflows. */
static size_t planned_steps(const fan_iter *it, run_mode mode, size_t count, int partial)
{
    if (mode == RUN_STEPS) return count;
    size_t total;
    if (!fan__mul_ok(count, fan_iter_batches_per_epoch(it), &total)) return 0;
    const size_t extra = partial ? fan__iter_batches_left(it) : 0;
    return total > SIZE_MAX - extra ? 0 : total + extra;
}

/* The iterator's bulk work (gather or noise) runs on the net's threads, as the step does: with
   two threads a batch gathered on one would be a fifth of a 784-100-10 step left serial. */
static void on_net_threads(void *net, void (*fn)(void *ctx, size_t phase, size_t item), void *ctx,
                           const size_t *items, size_t n_phases)
{
    fan__net_parallel(net, fn, ctx, items, n_phases);
}

/* ---- validation, early stopping and the best epoch's weights (fan_train_v2) ----------------- */

/* What fan_train_v2 adds to the loop: a validation set, the best epoch so far and a copy of the
   net's W, b and B at that epoch. A loop without options has val == NULL and does nothing here. */
typedef struct watch {
    const fan_dataset *val;
    size_t patience;
    int restore_best;
    double min_delta;
    int seen;          /* a validation has run */
    size_t since_best; /* validations since the best one */
    float *best;       /* W and b (net params layout), then every B_l; NULL unless restore_best */
    size_t n_params, n_feedback;
} watch;

static size_t feedback_floats(const fan_net *net)
{
    const size_t *sizes = fan__net_sizes(net);
    size_t n = 0;
    for (size_t l = 0; l < fan_net_num_layers(net); l++) n += fan__net_feedback_rows(net, l) * sizes[l];
    return n;
}

/* Copies W, b, B into (save) or out of (!save) w->best. */
static void snapshot(fan_net *net, watch *w, int save)
{
    size_t n;
    float *p = fan__net_params_mut(net, &n);
    float *q = w->best + n;
    if (save)
        memcpy(w->best, p, n * sizeof *p);
    else
        memcpy(p, w->best, n * sizeof *p);
    const size_t *sizes = fan__net_sizes(net);
    for (size_t l = 0; l < fan_net_num_layers(net); l++) {
        const size_t k = fan__net_feedback_rows(net, l) * sizes[l];
        if (save)
            memcpy(q, fan__net_feedback(net, l), k * sizeof *q);
        else
            memcpy(fan__net_feedback_mut(net, l), q, k * sizeof *q);
        q += k;
    }
}

/* Fills w from the caller's options (NULL: none) under the struct_size rule and allocates the
   snapshot. */
static fan_status watch_init(watch *w, fan_net *net, const fan_train_options *o)
{
    char *err = fan__net_errbuf(net);
    memset(w, 0, sizeof *w);
    if (o == NULL) return FAN_OK;
    const size_t n = o->struct_size;
    /* A struct_size beyond this is an uninitialised field, not a newer header. */
    FAN__FAIL_IF(err, n < sizeof(size_t) || n > 4096, FAN_E_INVALID,
                 "fan_train_options: struct_size %zu is not a size of the struct (set it to "
                 "sizeof(fan_train_options), %zu in this library)",
                 n, sizeof(fan_train_options));
    for (size_t i = sizeof(fan_train_options); i < n; i++)
        FAN__FAIL_IF(err, ((const unsigned char *)o)[i] != 0, FAN_E_UNSUPPORTED,
                     "fan_train_options: byte %zu of the caller's %zu-byte struct is set, but "
                     "this library (%s) knows only the first %zu bytes",
                     i, n, FANOISE_VERSION_STRING, sizeof(fan_train_options));
#define COVERS(m) (n >= offsetof(fan_train_options, m) + sizeof o->m)
    if (COVERS(validation)) w->val = o->validation;
    if (COVERS(patience)) w->patience = o->patience;
    if (COVERS(restore_best)) w->restore_best = o->restore_best != 0;
    if (COVERS(min_delta)) w->min_delta = o->min_delta;
#undef COVERS
    FAN__FAIL_IF(err, !(w->min_delta >= 0.0), FAN_E_INVALID,
                 "fan_train_options: min_delta %g is negative or NaN", w->min_delta);
    if (w->val == NULL) return FAN_OK;
    FAN__FAIL_IF(err, fan_dataset_dim(w->val) != fan_net_input_size(net), FAN_E_SHAPE,
                 "the validation set has %zu inputs per sample; the net takes %zu",
                 fan_dataset_dim(w->val), fan_net_input_size(net));
    FAN__FAIL_IF(err, fan_dataset_classes(w->val) != fan_net_output_size(net), FAN_E_SHAPE,
                 "the validation set has %zu classes; the net has %zu outputs",
                 fan_dataset_classes(w->val), fan_net_output_size(net));
    if (w->restore_best) {
        w->n_params = fan_net_num_params(net);
        w->n_feedback = feedback_floats(net);
        w->best = fan__calloc(fan__net_allocator(net), w->n_params + w->n_feedback, sizeof(float));
        FAN__FAIL_IF(err, w->best == NULL, FAN_E_NOMEM,
                     "cannot allocate a copy of %zu weights for restore_best",
                     w->n_params + w->n_feedback);
    }
    return FAN_OK;
}

/* At the end of an epoch: evaluates, updates the best epoch and fills p's validation fields. */
static fan_status watch_epoch(watch *w, fan_net *net, fan_progress *p)
{
    FAN__CHECK(fan_net_evaluate(net, w->val, &p->val_loss, &p->val_accuracy));
    p->validated = 1;
    if (!w->seen || p->val_loss < p->best_val_loss - w->min_delta) {
        w->seen = 1;
        w->since_best = 0;
        p->best_val_loss = p->val_loss;
        p->best_epoch = p->epoch;
        if (w->best != NULL) snapshot(net, w, 1);
    } else {
        w->since_best++;
    }
    return FAN_OK;
}

/* The call ends with st: puts the best epoch back when asked, and frees the copy. */
static fan_status watch_end(watch *w, fan_net *net, fan_status st)
{
    if (w->best != NULL && w->seen &&
        (st == FAN_OK || st == FAN_EARLY_STOPPED || st == FAN_STOPPED))
        snapshot(net, w, 0);
    fan__free(fan__net_allocator(net), w->best);
    w->best = NULL;
    return st;
}

static fan_status run(fan_net *net, fan_optimizer *opt, fan_iter *it, run_mode mode, size_t count,
                      watch *w, fan_progress_fn cb, void *user)
{
    FAN__CHECK(check_shapes(net, it));
    const int noise = fan_iter_is_noise(it);
    /* An epoch the iterator is part-way through is finished first and not counted. */
    int partial = mode == RUN_EPOCHS && fan__iter_batch_index(it) > 0;
    fan_progress p;
    memset(&p, 0, sizeof p);
    p.struct_size = sizeof p;
    p.total_steps = planned_steps(it, mode, count, partial);
    size_t epochs_done = 0, epoch_steps = 0;
    double epoch_sum = 0.0;
    int empty_epoch = 0; /* FAN_DONE came right after another FAN_DONE */
    for (;;) {
        if (mode == RUN_STEPS ? p.step == count : !partial && epochs_done == count) return FAN_OK;
        const float *x = NULL, *targets = NULL;
        const int32_t *labels = NULL;
        size_t n = 0;
        fan_status st = fan__iter_next_on(it, on_net_threads, net, &x, &labels, &targets, &n);
        if (st == FAN_DONE) {
            /* Cannot happen with the iterator's own validation; guards against a loop that
               would never end. */
            FAN__FAIL_IF(fan__net_errbuf(net), empty_epoch, FAN_E_STATE, "the iterator yields empty epochs");
            empty_epoch = 1;
            if (partial)
                partial = 0;
            else
                epochs_done++;
            if (p.step > 0) p.epoch++;
            epoch_steps = 0;
            epoch_sum = 0.0;
            continue;
        }
        if (st != FAN_OK) return fan__fail(fan__net_errbuf(net), st, "iterator: %s", fan_iter_errmsg(it));
        empty_epoch = 0;
        float loss = 0.0f;
        st = targets != NULL ? fan_net_train_batch_targets(net, opt, x, targets, n, &loss)
                             : fan_net_train_batch(net, opt, x, labels, n, &loss);
        /* The optimizer's message covers both its own checks and the net's failures (which it
           copies); the loop reports it on the net, the handle the caller passed first. */
        if (st != FAN_OK)
            return fan__fail(fan__net_errbuf(net), st, "step %zu: %s", p.step + 1, fan_optimizer_errmsg(opt));
        p.step++;
        p.batch_in_epoch = noise ? p.step - 1 : fan__iter_batch_index(it) - 1;
        p.samples += n;
        p.loss = (double)loss;
        p.lr = fan__optimizer_last_lr(opt);
        epoch_steps++;
        epoch_sum += (double)loss;
        p.epoch_loss = epoch_sum / (double)epoch_steps;
        p.end_of_epoch = !noise && fan__iter_batches_left(it) == 0;
        p.validated = 0;
        if (w->val != NULL && p.end_of_epoch) FAN__CHECK(watch_epoch(w, net, &p));
        if (cb != NULL && cb(&p, user) != 0) return FAN_STOPPED;
        if (p.validated && w->patience > 0 && w->since_best >= w->patience)
            return FAN_EARLY_STOPPED;
    }
}

fan_status fan_train(fan_net *net, fan_optimizer *opt, fan_iter *it, size_t epochs,
                     fan_progress_fn cb, void *user)
{
    FAN__CHECK(check_args(net, opt, it));
    FAN__FAIL_IF(fan__net_errbuf(net), fan_iter_is_noise(it), FAN_E_INVALID,
                 "a noise iterator has no epochs: use fan_train_steps or fan_pretrain_noise");
    watch w = {0};
    return run(net, opt, it, RUN_EPOCHS, epochs, &w, cb, user);
}

fan_status fan_train_v2(fan_net *net, fan_optimizer *opt, fan_iter *it, size_t epochs,
                        const fan_train_options *options, fan_progress_fn cb, void *user)
{
    FAN__CHECK(check_args(net, opt, it));
    FAN__FAIL_IF(fan__net_errbuf(net), fan_iter_is_noise(it), FAN_E_INVALID,
                 "a noise iterator has no epochs: use fan_train_steps or fan_pretrain_noise");
    FAN__CHECK(check_shapes(net, it));
    watch w;
    FAN__CHECK(watch_init(&w, net, options));
    return watch_end(&w, net, run(net, opt, it, RUN_EPOCHS, epochs, &w, cb, user));
}

fan_status fan_train_steps(fan_net *net, fan_optimizer *opt, fan_iter *it, size_t steps,
                           fan_progress_fn cb, void *user)
{
    FAN__CHECK(check_args(net, opt, it));
    watch w = {0};
    return run(net, opt, it, RUN_STEPS, steps, &w, cb, user);
}

fan_status fan_pretrain_noise(fan_net *net, fan_optimizer *opt, fan_iter *noise, size_t steps,
                              fan_progress_fn cb, void *user)
{
    FAN__CHECK(check_args(net, opt, noise));
    FAN__FAIL_IF(fan__net_errbuf(net), !fan_iter_is_noise(noise), FAN_E_INVALID,
                 "fan_pretrain_noise needs a noise iterator (fan_iter_create_noise)");
    watch w = {0};
    return run(net, opt, noise, RUN_STEPS, steps, &w, cb, user);
}

/* ---- evaluation --------------------------------------------------------------------------- */

/* Rows of an evaluation chunk gathered per item on the net's threads. */
#define EVAL_GATHER_ITEM 16

typedef struct eval_gather {
    const fan_dataset *ds;
    size_t first, rows, dim;
    float *x;
    int32_t *labels;
} eval_gather;

static void eval_gather_item(void *arg, size_t phase, size_t item)
{
    (void)phase;
    const eval_gather *g = arg;
    const size_t r0 = item * EVAL_GATHER_ITEM;
    const size_t m = g->rows - r0 < EVAL_GATHER_ITEM ? g->rows - r0 : EVAL_GATHER_ITEM;
    fan__dataset_gather(g->ds, NULL, g->first + r0, m, g->x + r0 * g->dim, g->labels + r0);
}

fan_status fan_net_evaluate(fan_net *net, const fan_dataset *ds, double *mean_loss,
                            double *accuracy)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, ds == NULL, FAN_E_NULL, "ds is NULL");
    const size_t dim = fan_net_input_size(net), c = fan_net_output_size(net);
    const size_t size = fan_dataset_size(ds);
    FAN__FAIL_IF(err, fan_dataset_dim(ds) != dim, FAN_E_SHAPE,
                 "the dataset has %zu inputs per sample; the net takes %zu", fan_dataset_dim(ds),
                 dim);
    FAN__FAIL_IF(err, fan_dataset_classes(ds) != c, FAN_E_SHAPE,
                 "the dataset has %zu classes; the net has %zu outputs", fan_dataset_classes(ds),
                 c);
    FAN__FAIL_IF(err, size == 0, FAN_E_INVALID, "the dataset is empty");
    const size_t chunk = size < EVAL_CHUNK ? size : EVAL_CHUNK;
    const fan_allocator *al = fan__net_allocator(net);
    float *x = fan__calloc(al, chunk * dim, sizeof *x);
    int32_t *labels = fan__calloc(al, chunk, sizeof *labels);
    fan_status st = FAN_OK;
    if (x == NULL || labels == NULL)
        st = fan__fail(err, FAN_E_NOMEM, "cannot allocate an evaluation buffer of %zu rows", chunk);
    double loss_sum = 0.0;
    size_t correct = 0;
    for (size_t first = 0; st == FAN_OK && first < size; first += chunk) {
        const size_t m = size - first < chunk ? size - first : chunk;
        eval_gather g = {ds, first, m, dim, x, labels};
        const size_t items = (m + EVAL_GATHER_ITEM - 1) / EVAL_GATHER_ITEM;
        fan__net_parallel(net, eval_gather_item, &g, &items, 1);
        st = fan__net_eval_chunk(net, x, labels, m, &loss_sum, &correct);
    }
    fan__free(al, labels);
    fan__free(al, x);
    if (st != FAN_OK) return st;
    if (mean_loss) *mean_loss = loss_sum / (double)size;
    if (accuracy) *accuracy = (double)correct / (double)size;
    return FAN_OK;
}
