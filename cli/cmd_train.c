/*
 * cmd_train.c - `fanoise train`: a network of --sizes with a learning rule, optionally pretrained
 * on random noise (the paper's method), then trained on data for some epochs, evaluated after
 * each epoch on a validation split and the test set, and saved.
 */
#include "cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct train_args {
    data_opts data;
    const char *sizes, *rule, *activation, *loss, *init;
    uint64_t weight_seed, feedback_seed;
    size_t train_samples, val;
    uint64_t subset_seed;
    size_t noise_steps, noise_batch;
    const char *noise_optimizer, *noise_kind, *noise_labels;
    double noise_lr;
    uint64_t noise_seed;
    size_t epochs, batch;
    const char *optimizer;
    double lr, momentum, weight_decay, beta1, beta2, eps;
    int nesterov;
    uint64_t shuffle_seed;
    const char *out, *log, *progress;
    size_t log_every;
    int quiet;
} train_args;

#define A(m) offsetof(train_args, m)
static const cli_opt OPTS[] = {
    CLI_DATA_OPTIONS(train_args, data),
    {"train-samples", OPT_SIZE, A(train_samples), "N", "train on N samples drawn by --subset-seed (0: all)", NULL},
    {"val", OPT_SIZE, A(val), "N", "hold out N training samples (drawn by --subset-seed) as a validation set, evaluated every epoch", NULL},
    {"subset-seed", OPT_U64, A(subset_seed), "S", "seed of --train-samples and --val", NULL},
    {"sizes", OPT_STRING, A(sizes), "LIST", "layer widths, inputs first: 784,100,10 (required)", NULL},
    {"rule", OPT_STRING, A(rule), "NAME", "learning rule", cli_rule_names},
    {"activation", OPT_STRING, A(activation), "NAME", "activation of the hidden layers", cli_activation_names},
    {"loss", OPT_STRING, A(loss), "NAME", "loss", cli_loss_names},
    {"init", OPT_STRING, A(init), "NAME", "initialiser of W and B", cli_init_names},
    {"weight-seed", OPT_U64, A(weight_seed), "S", "seed of W", NULL},
    {"feedback-seed", OPT_U64, A(feedback_seed), "S", "seed of the feedback matrices B", NULL},
    {"noise-steps", OPT_SIZE, A(noise_steps), "N", "random-noise pretraining steps before the data (0: none)", NULL},
    {"noise-batch", OPT_SIZE, A(noise_batch), "N", "noise batch size", NULL},
    {"noise-optimizer", OPT_STRING, A(noise_optimizer), "NAME", "optimizer of the noise phase", cli_optimizer_names},
    {"noise-lr", OPT_DOUBLE, A(noise_lr), "X", "learning rate of the noise phase", NULL},
    {"noise-kind", OPT_STRING, A(noise_kind), "KIND", "gaussian | uniform (same mean and std)", NULL},
    {"noise-labels", OPT_STRING, A(noise_labels), "KIND", "hard (random classes) | soft (1/C each)", NULL},
    {"noise-seed", OPT_U64, A(noise_seed), "S", "seed of the noise", NULL},
    {"epochs", OPT_SIZE, A(epochs), "E", "epochs of training on the data", NULL},
    {"batch", OPT_SIZE, A(batch), "N", "data batch size", NULL},
    {"optimizer", OPT_STRING, A(optimizer), "NAME", "optimizer of the data phase", cli_optimizer_names},
    {"lr", OPT_DOUBLE, A(lr), "X", "learning rate of the data phase", NULL},
    {"momentum", OPT_DOUBLE, A(momentum), "X", "momentum (sgd, rmsprop; default: the library's)", NULL},
    {"nesterov", OPT_FLAG, A(nesterov), NULL, "Nesterov momentum (sgd)", NULL},
    {"weight-decay", OPT_DOUBLE, A(weight_decay), "X", "weight decay (default: the library's)", NULL},
    {"beta1", OPT_DOUBLE, A(beta1), "X", "Adam's beta1 (default: the library's)", NULL},
    {"beta2", OPT_DOUBLE, A(beta2), "X", "Adam's beta2 (default: the library's)", NULL},
    {"eps", OPT_DOUBLE, A(eps), "X", "Adam's and RMSprop's epsilon (default: the library's)", NULL},
    {"shuffle-seed", OPT_U64, A(shuffle_seed), "S", "seed of the batch order", NULL},
    {"out", OPT_STRING, A(out), "FILE", "where the trained model goes (required)", NULL},
    {"log", OPT_STRING, A(log), "FILE", "CSV of every --log-every'th step and of each epoch's evaluation", NULL},
    {"log-every", OPT_SIZE, A(log_every), "N", "steps between log rows", NULL},
    {"progress", OPT_STRING, A(progress), "MODE", "auto (a bar on a terminal, plain lines otherwise) | bar | plain | none", NULL},
    {"quiet", OPT_FLAG, A(quiet), NULL, "print only errors (no progress, no epoch lines)", NULL},
};
#undef A

static void defaults(void *p)
{
    train_args *a = p;
    memset(a, 0, sizeof *a);
    cli_data_defaults(&a->data);
    a->rule = "fa";
    a->activation = "relu";
    a->loss = "cross_entropy";
    a->init = "he_normal";
    a->weight_seed = 0;
    a->feedback_seed = 1;
    a->noise_seed = 2;
    a->shuffle_seed = 3;
    a->subset_seed = 4;
    a->noise_batch = 64;
    a->noise_optimizer = "adam";
    a->noise_lr = 1e-4;
    a->noise_kind = "gaussian";
    a->noise_labels = "hard";
    a->epochs = 5;
    a->batch = 64;
    a->optimizer = "adam";
    a->lr = 1e-3;
    a->momentum = a->weight_decay = a->beta1 = a->beta2 = a->eps = NAN;
    a->log_every = 50;
    a->progress = "auto";
}

/* Everything a run holds, freed in one place. */
typedef struct run {
    fan_dataset *train, *val, *test;
    fan_net *net;
    fan_optimizer *opt;
    fan_iter *it;
    progress pg;
    double epoch_loss; /* mean training loss of the running epoch or noise phase */
    double step_loss;  /* loss of the last step's batch */
} run;

static void run_free(run *r)
{
    fan_iter_free(r->it);
    fan_optimizer_free(r->opt);
    fan_net_free(r->net);
    fan_dataset_free(r->train);
    fan_dataset_free(r->val);
    fan_dataset_free(r->test);
}

static int data_cb(const fan_progress *fp, void *user)
{
    run *r = user;
    /* The mean loss of the epoch so far (of the call so far, for noise): the last step's value
       is the phase's mean, as each data call trains one epoch. */
    r->epoch_loss = fp->epoch_loss;
    r->step_loss = fp->loss;
    return progress_cb(fp, &r->pg);
}

/* Checks every name before any data is loaded, so that a typo costs nothing. */
static int check_names(const train_args *a, fan_rule *rule, fan_activation *act, fan_loss *loss,
                       fan_init *init, fan_optimizer_kind *opt, fan_optimizer_kind *nopt)
{
    char names[512];
    if (!cli_rule(a->rule, rule))
        return cli_usage_error("--rule: unknown rule '%s' (the library knows: %s)", a->rule,
                               cli_rule_names(names, sizeof names));
    if (!cli_activation(a->activation, act))
        return cli_usage_error("--activation: unknown '%s' (%s)", a->activation,
                               cli_activation_names(names, sizeof names));
    if (!cli_loss(a->loss, loss))
        return cli_usage_error("--loss: unknown '%s' (%s)", a->loss, cli_loss_names(names, sizeof names));
    if (!cli_init(a->init, init))
        return cli_usage_error("--init: unknown '%s' (%s)", a->init, cli_init_names(names, sizeof names));
    if (!cli_optimizer(a->optimizer, opt))
        return cli_usage_error("--optimizer: unknown '%s' (%s)", a->optimizer,
                               cli_optimizer_names(names, sizeof names));
    if (!cli_optimizer(a->noise_optimizer, nopt))
        return cli_usage_error("--noise-optimizer: unknown '%s' (%s)", a->noise_optimizer,
                               cli_optimizer_names(names, sizeof names));
    if (strcmp(a->noise_kind, "gaussian") != 0 && strcmp(a->noise_kind, "uniform") != 0)
        return cli_usage_error("--noise-kind: expected gaussian or uniform, got '%s'", a->noise_kind);
    if (strcmp(a->noise_labels, "hard") != 0 && strcmp(a->noise_labels, "soft") != 0)
        return cli_usage_error("--noise-labels: expected hard or soft, got '%s'", a->noise_labels);
    if (a->sizes == NULL) return cli_usage_error("--sizes is required (e.g. --sizes 784,100,10)");
    if (a->out == NULL) return cli_usage_error("--out is required: where the model goes");
    if (a->batch == 0 || a->noise_batch == 0) return cli_usage_error("batch sizes must be at least 1");
    return CLI_OK;
}

/* An optimizer of `kind` with the learning rate and whichever settings were given. */
static int make_optimizer(const train_args *a, fan_optimizer_kind kind, double lr, int data_phase,
                          const fan_net *net, fan_optimizer **out)
{
    fan_status s = fan_optimizer_create(out, kind, net, NULL);
    if (s != FAN_OK) return cli_lib_error("creating the optimizer", s, NULL);
    const struct { fan_optimizer_param p; double v; const char *flag; } set[] = {
        {FAN_OPT_LR, lr, data_phase ? "--lr" : "--noise-lr"},
        {FAN_OPT_MOMENTUM, data_phase ? a->momentum : NAN, "--momentum"},
        {FAN_OPT_NESTEROV, data_phase && a->nesterov ? 1.0 : NAN, "--nesterov"},
        {FAN_OPT_WEIGHT_DECAY, data_phase ? a->weight_decay : NAN, "--weight-decay"},
        {FAN_OPT_BETA1, data_phase ? a->beta1 : NAN, "--beta1"},
        {FAN_OPT_BETA2, data_phase ? a->beta2 : NAN, "--beta2"},
        {FAN_OPT_EPSILON, data_phase ? a->eps : NAN, "--eps"},
    };
    for (size_t i = 0; i < sizeof set / sizeof *set; i++) {
        if (isnan(set[i].v)) continue;
        s = fan_optimizer_set(*out, set[i].p, set[i].v);
        if (s != FAN_OK) return cli_lib_error(set[i].flag, s, fan_optimizer_errmsg(*out));
    }
    return CLI_OK;
}

/* Subsets and the validation split, then the shapes against --sizes. */
static int prepare_data(const train_args *a, run *r, const size_t *sizes, size_t n_sizes)
{
    fan_status s;
    if (a->train_samples > 0 && a->train_samples < fan_dataset_size(r->train)) {
        fan_dataset *sub = NULL;
        s = fan_dataset_subset_random(&sub, r->train, a->train_samples, a->subset_seed);
        if (s != FAN_OK) return cli_lib_error("--train-samples", s, fan_dataset_errmsg(r->train));
        fan_dataset_free(r->train);
        r->train = sub;
    }
    if (a->val > 0) {
        fan_dataset *tr = NULL;
        s = fan_dataset_split(&tr, &r->val, r->train, a->val, a->subset_seed);
        if (s != FAN_OK) return cli_lib_error("--val", s, fan_dataset_errmsg(r->train));
        fan_dataset_free(r->train);
        r->train = tr;
    }
    const fan_dataset *sets[3] = {r->train, r->val, r->test};
    const char *names[3] = {"training", "validation", "test"};
    for (int k = 0; k < 3; k++) {
        if (sets[k] == NULL) continue;
        if (fan_dataset_dim(sets[k]) != sizes[0] || fan_dataset_classes(sets[k]) != sizes[n_sizes - 1]) {
            cli_error("the %s set has %zu values per sample and %zu classes; --sizes %s needs %zu "
                      "and %zu", names[k], fan_dataset_dim(sets[k]), fan_dataset_classes(sets[k]),
                      a->sizes, sizes[0], sizes[n_sizes - 1]);
            return CLI_FAIL;
        }
    }
    return CLI_OK;
}

static int make_net(const train_args *a, run *r, const size_t *sizes, size_t n_sizes,
                    fan_rule rule, fan_activation act, fan_loss loss, fan_init init)
{
    fan_status s = fan_net_create(&r->net, sizes, n_sizes, NULL);
    if (s != FAN_OK) return cli_lib_error("creating the network", s, NULL);
    fan_net *n = r->net;
    /* The rule as the library takes it: a rule it names but does not (yet) train says so. */
    s = fan_net_set_rule(n, rule);
    if (s != FAN_OK) return cli_lib_error("--rule", s, fan_net_errmsg(n));
    for (size_t l = 0; l + 1 < fan_net_num_layers(n); l++) {
        s = fan_net_set_activation(n, l, act);
        if (s != FAN_OK) return cli_lib_error("--activation", s, fan_net_errmsg(n));
    }
    s = fan_net_set_loss(n, loss);
    if (s == FAN_OK) s = fan_net_set_initializer(n, FAN_MATRIX_WEIGHTS, init);
    if (s == FAN_OK) s = fan_net_set_initializer(n, FAN_MATRIX_FEEDBACK, init);
    if (s == FAN_OK) s = fan_net_init(n, a->weight_seed, a->feedback_seed);
    if (s != FAN_OK) return cli_lib_error("setting up the network", s, fan_net_errmsg(n));
    return CLI_OK;
}

static int noise_phase(const train_args *a, run *r, fan_optimizer_kind kind, int quiet)
{
    fan_optimizer *opt = NULL;
    fan_iter *noise = NULL;
    const double t = cli_now();
    int rc = make_optimizer(a, kind, a->noise_lr, 0, r->net, &opt);
    fan_status s = FAN_OK;
    if (rc == CLI_OK) {
        s = fan_iter_create_noise(&noise, fan_net_input_size(r->net), fan_net_output_size(r->net),
                                  a->noise_batch, a->noise_seed, NULL);
        if (s == FAN_OK && strcmp(a->noise_kind, "uniform") == 0)
            s = fan_iter_set(noise, FAN_ITER_NOISE_KIND, FAN_NOISE_UNIFORM);
        if (s == FAN_OK && strcmp(a->noise_labels, "soft") == 0)
            s = fan_iter_set(noise, FAN_ITER_LABEL_MODE, FAN_LABELS_SOFT);
        if (s != FAN_OK) rc = cli_lib_error("creating the noise source", s, fan_iter_errmsg(noise));
    }
    if (rc == CLI_OK) {
        progress_phase(&r->pg, "noise");
        r->epoch_loss = NAN;
        s = fan_pretrain_noise(r->net, opt, noise, a->noise_steps, data_cb, r);
        progress_clear(&r->pg);
        if (s != FAN_OK) rc = cli_lib_error("noise pretraining", s, fan_net_errmsg(r->net));
    }
    if (rc == CLI_OK && !quiet) {
        double angle = NAN;
        if (fan_net_num_layers(r->net) > 1)
            if (fan_diag_alignment(r->net, fan_net_num_layers(r->net) - 1, NULL, 0, &angle, NULL) != FAN_OK)
                angle = NAN;
        printf("noise: %zu steps of %s lr %g, batch %zu: last loss %.4f (ln C = %.4f), mean %.4f; "
               "last-layer angle %.1f deg (%.1f s)\n",
               a->noise_steps, a->noise_optimizer, a->noise_lr, a->noise_batch, r->step_loss,
               log((double)fan_net_output_size(r->net)), r->epoch_loss, angle, cli_now() - t);
    }
    fan_iter_free(noise);
    fan_optimizer_free(opt);
    return rc;
}

/* Mean loss and accuracy on ds into the two outputs; NaN for a missing set. */
static int evaluate(run *r, const fan_dataset *ds, const char *name, double *loss, double *acc)
{
    *loss = *acc = NAN;
    if (ds == NULL) return CLI_OK;
    const fan_status s = fan_net_evaluate(r->net, ds, loss, acc);
    if (s != FAN_OK) {
        char what[64];
        snprintf(what, sizeof what, "evaluating on the %s set", name);
        return cli_lib_error(what, s, fan_net_errmsg(r->net));
    }
    return CLI_OK;
}

static int data_phase(const train_args *a, run *r, int quiet)
{
    fan_status s = fan_iter_create_batches(&r->it, r->train, a->batch, a->shuffle_seed, NULL);
    if (s != FAN_OK) return cli_lib_error("creating the batch iterator", s, NULL);
    for (size_t e = 1; e <= a->epochs; e++) {
        const double t = cli_now();
        progress_phase(&r->pg, "data");
        s = fan_train(r->net, r->opt, r->it, 1, data_cb, r);
        progress_clear(&r->pg);
        if (s != FAN_OK) return cli_lib_error("training", s, fan_net_errmsg(r->net));
        double vl, va, tl, ta;
        int rc = evaluate(r, r->val, "validation", &vl, &va);
        if (rc == CLI_OK) rc = evaluate(r, r->test, "test", &tl, &ta);
        if (rc != CLI_OK) return rc;
        progress_log_eval(&r->pg, e, r->epoch_loss, vl, va, tl, ta);
        if (quiet) continue;
        printf("epoch %zu/%zu: train loss %.4f", e, a->epochs, r->epoch_loss);
        if (r->val) printf(", val loss %.4f, val accuracy %.4f", vl, va);
        if (r->test) printf(", test loss %.4f, test accuracy %.4f", tl, ta);
        printf(" (%.1f s)\n", cli_now() - t);
        fflush(stdout);
    }
    return CLI_OK;
}

static int train_run(void *args, char **pos, size_t n_pos)
{
    (void)pos;
    (void)n_pos;
    const train_args *a = args;
    fan_rule rule;
    fan_activation act;
    fan_loss loss;
    fan_init init;
    fan_optimizer_kind kind, nkind;
    int rc = check_names(a, &rule, &act, &loss, &init, &kind, &nkind);
    if (rc != CLI_OK) return rc;
    size_t sizes[FAN_MAX_LAYERS + 2];
    const size_t n_sizes = cli_parse_sizes(a->sizes, sizes, FAN_MAX_LAYERS + 2);
    if (n_sizes < 2)
        return cli_usage_error("--sizes: expected at least two comma-separated widths such as "
                               "784,100,10, got '%s'", a->sizes);
    const int quiet = a->quiet;
    run r;
    memset(&r, 0, sizeof r);
    const int pr = progress_init(&r.pg, quiet ? "none" : a->progress, 0, a->log, a->log_every);
    if (pr == 0) return cli_usage_error("--progress: expected auto, bar, plain or none, got '%s'", a->progress);
    if (pr < 0) {
        cli_error("--log: cannot create %s", a->log);
        return CLI_FAIL;
    }
    /* The net first: what the library refuses (a rule, a width) is said before data loads. */
    rc = make_net(a, &r, sizes, n_sizes, rule, act, loss, init);
    if (rc == CLI_OK)
        rc = cli_load_data(&a->data, 1, 1, sizes[n_sizes - 1], &r.train, &r.test, quiet ? NULL : stdout);
    if (rc == CLI_OK) rc = prepare_data(a, &r, sizes, n_sizes);
    if (rc == CLI_OK) rc = make_optimizer(a, kind, a->lr, 1, r.net, &r.opt);
    if (rc == CLI_OK) {
        const size_t per_epoch = (fan_dataset_size(r.train) + a->batch - 1) / a->batch;
        r.pg.total = a->noise_steps + a->epochs * per_epoch;
        if (!quiet)
            printf("net: %s, rule %s, %s hidden, %s, %zu parameters; %zu training samples%s\n",
                   a->sizes, fan_rule_name(fan_net_rule(r.net)), a->activation, a->loss, fan_net_num_params(r.net),
                   fan_dataset_size(r.train), r.val ? " (after the validation split)" : "");
    }
    if (rc == CLI_OK && a->noise_steps > 0) rc = noise_phase(a, &r, nkind, quiet);
    if (rc == CLI_OK) rc = data_phase(a, &r, quiet);
    if (rc == CLI_OK) {
        const fan_status s = fan_net_save(r.net, a->out);
        if (s != FAN_OK) rc = cli_lib_error("saving the model", s, fan_net_errmsg(r.net));
        else if (!quiet) printf("saved %s\n", a->out);
    }
    if (progress_close(&r.pg) != 0 && rc == CLI_OK) {
        cli_error("--log: writing %s failed", a->log);
        rc = CLI_FAIL;
    }
    run_free(&r);
    return rc;
}

const cmd_spec CMD_TRAIN = {
    "train", "",
    "Trains a network and saves it. With --noise-steps N the network first trains on random\n"
    "noise (Gaussian inputs, random labels) with the same rule, as in Cheon, Lee and Paik\n"
    "(NeurIPS 2024), then on the data. Progress goes to stderr, results to stdout.\n"
    "  fanoise train --data DIR --sizes 784,100,10 --rule fa --noise-steps 8000 --out model.fan",
    OPTS, sizeof OPTS / sizeof *OPTS, 0, 0, sizeof(train_args), defaults, train_run};
