/*
 * c_reference.c - the reference run that test_reproducible.py repeats through the Python
 * binding: noise pretraining, then data training, with fixed seeds. It prints every step's loss,
 * the evaluation and an FNV-1a hash of all weights, so the test can demand bit-identical results.
 * The constants below must stay equal to REFERENCE in test_reproducible.py.
 */
#include <fanoise.h>

#include <stdio.h>
#include <string.h>

#define DIM 20
#define HIDDEN1 16
#define HIDDEN2 12
#define CLASSES 4
#define WEIGHT_SEED 11u
#define FEEDBACK_SEED 12u
#define NOISE_SEED 13u
#define SHUFFLE_SEED 14u
#define NOISE_BATCH 8
#define NOISE_STEPS 60
#define NOISE_LR 1e-3
#define SAMPLES 96
#define DATA_BATCH 16
#define DATA_EPOCHS 3
#define DATA_LR 0.05
#define DATA_MOMENTUM 0.9
/* Largest step count the run makes (DATA_EPOCHS * SAMPLES / DATA_BATCH = 18). */
#define MAX_STEPS 64

/* FNV-1a, 64-bit: offset basis and prime from the FNV specification. */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

typedef struct losses {
    double v[MAX_STEPS];
    size_t n;
} losses;

static int record(const fan_progress *p, void *user)
{
    losses *l = user;
    if (l->n < MAX_STEPS) l->v[l->n++] = p->loss;
    return 0;
}

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static void print_losses(const char *name, const losses *l)
{
    printf("%s", name);
    for (size_t i = 0; i < l->n; i++) printf(" %.17g", l->v[i]);
    printf("\n");
}

static int fail(const char *what, fan_status st, const char *msg)
{
    fprintf(stderr, "c_reference: %s: %s (%s)\n", what, fan_strerror(st), msg);
    return 1;
}

int main(void)
{
    static float x[SAMPLES * DIM];
    static int32_t labels[SAMPLES];
    /* Exactly representable inputs built in double and rounded once, as Python does. */
    for (size_t i = 0; i < SAMPLES; i++) {
        for (size_t j = 0; j < DIM; j++)
            x[i * DIM + j] = (float)((double)((i * 31 + j * 17) % 23) / 11.0 - 1.0);
        /* The class is the quartile of the first input, so the data is learnable. */
        labels[i] = (int32_t)((i * 31 % 23) * CLASSES / 23);
    }

    const size_t sizes[] = {DIM, HIDDEN1, HIDDEN2, CLASSES};
    fan_net *net = NULL;
    fan_optimizer *adam = NULL, *sgd = NULL;
    fan_iter *noise = NULL, *batches = NULL;
    fan_dataset *ds = NULL;
    fan_status st;
    if ((st = fan_net_create(&net, sizes, 4, NULL)) != FAN_OK) return fail("net", st, "");
    if ((st = fan_net_init(net, WEIGHT_SEED, FEEDBACK_SEED)) != FAN_OK ||
        (st = fan_net_set_rule(net, FAN_RULE_FA)) != FAN_OK)
        return fail("init", st, fan_net_errmsg(net));
    if ((st = fan_optimizer_create(&adam, FAN_OPTIMIZER_ADAM, net, NULL)) != FAN_OK ||
        (st = fan_optimizer_set(adam, FAN_OPT_LR, NOISE_LR)) != FAN_OK)
        return fail("adam", st, fan_optimizer_errmsg(adam));
    if ((st = fan_iter_create_noise(&noise, DIM, CLASSES, NOISE_BATCH, NOISE_SEED, NULL)) !=
        FAN_OK)
        return fail("noise", st, "");
    losses noise_losses = {{0}, 0}, train_losses = {{0}, 0};
    if ((st = fan_pretrain_noise(net, adam, noise, NOISE_STEPS, record, &noise_losses)) != FAN_OK)
        return fail("pretrain", st, fan_net_errmsg(net));

    if ((st = fan_dataset_from_arrays(&ds, x, labels, SAMPLES, DIM, CLASSES, NULL)) != FAN_OK)
        return fail("dataset", st, "");
    if ((st = fan_iter_create_batches(&batches, ds, DATA_BATCH, SHUFFLE_SEED, NULL)) != FAN_OK)
        return fail("batches", st, "");
    if ((st = fan_optimizer_create(&sgd, FAN_OPTIMIZER_SGD, net, NULL)) != FAN_OK ||
        (st = fan_optimizer_set(sgd, FAN_OPT_LR, DATA_LR)) != FAN_OK ||
        (st = fan_optimizer_set(sgd, FAN_OPT_MOMENTUM, DATA_MOMENTUM)) != FAN_OK)
        return fail("sgd", st, fan_optimizer_errmsg(sgd));
    if ((st = fan_train(net, sgd, batches, DATA_EPOCHS, record, &train_losses)) != FAN_OK)
        return fail("train", st, fan_net_errmsg(net));

    double eval_loss = 0, accuracy = 0, align_mean = 0, align_matrix = 0;
    if ((st = fan_net_evaluate(net, ds, &eval_loss, &accuracy)) != FAN_OK ||
        (st = fan_diag_alignment(net, 2, NULL, 0, &align_mean, &align_matrix)) != FAN_OK)
        return fail("evaluate", st, fan_net_errmsg(net));

    uint64_t h = FNV_OFFSET;
    static float w[HIDDEN1 * DIM], b[HIDDEN1], fb[HIDDEN1 * DIM];
    for (size_t l = 0; l < fan_net_num_layers(net); l++) {
        const size_t rows = fan_net_layer_outputs(net, l), cols = fan_net_layer_inputs(net, l);
        if ((st = fan_net_get_weights(net, l, w, rows * cols, b, rows)) != FAN_OK ||
            (st = fan_net_get_feedback(net, l, fb, rows * cols)) != FAN_OK)
            return fail("weights", st, fan_net_errmsg(net));
        h = fnv1a(h, w, rows * cols * sizeof *w);
        h = fnv1a(h, b, rows * sizeof *b);
        h = fnv1a(h, fb, rows * cols * sizeof *fb);
    }

    print_losses("noise_losses", &noise_losses);
    print_losses("train_losses", &train_losses);
    printf("eval_loss %.17g\naccuracy %.17g\nalign_mean %.17g\nalign_matrix %.17g\n", eval_loss,
           accuracy, align_mean, align_matrix);
    printf("weights_fnv1a %016llx\n", (unsigned long long)h);

    fan_optimizer_free(sgd);
    fan_optimizer_free(adam);
    fan_iter_free(batches);
    fan_iter_free(noise);
    fan_dataset_free(ds);
    fan_net_free(net);
    return 0;
}
