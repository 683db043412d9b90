/*
 * cmd_eval.c - `fanoise eval MODEL --data DIR`: test loss and accuracy of a saved model, on data
 * prepared as `fanoise train` prepares it (same data options, same normalisation defaults).
 */
#include "cli.h"

#include <string.h>

typedef struct eval_args {
    data_opts data;
    int csv;
} eval_args;

#define A(m) offsetof(eval_args, m)
static const cli_opt OPTS[] = {
    CLI_DATA_OPTIONS(eval_args, data),
    {"csv", OPT_FLAG, A(csv), NULL, "print 'samples,loss,accuracy' as CSV (a header line, then the values)", NULL},
};
#undef A

static void defaults(void *p)
{
    eval_args *a = p;
    memset(a, 0, sizeof *a);
    cli_data_defaults(&a->data);
}

static int eval_run(void *args, char **pos, size_t n_pos)
{
    (void)n_pos;
    const eval_args *a = args;
    char msg[256];
    fan_net *net = NULL;
    fan_status s = fan_net_load_v2(&net, pos[0], NULL, 0, NULL, msg, sizeof msg);
    if (s != FAN_OK) return cli_lib_error(pos[0], s, msg);
    fan_dataset *train = NULL, *test = NULL;
    int rc = cli_load_data(&a->data, 0, 1, fan_net_output_size(net), &train, &test, NULL);
    if (rc == CLI_OK && test == NULL)
        rc = cli_usage_error("no test set: give --data DIR, --test-csv FILE or --test-npy IMAGES,LABELS");
    if (rc == CLI_OK && (fan_dataset_dim(test) != fan_net_input_size(net) ||
                         fan_dataset_classes(test) != fan_net_output_size(net))) {
        cli_error("the test set has %zu values per sample and %zu classes; %s takes %zu inputs and "
                  "has %zu outputs", fan_dataset_dim(test), fan_dataset_classes(test), pos[0],
                  fan_net_input_size(net), fan_net_output_size(net));
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK) {
        double loss = 0.0, acc = 0.0;
        s = fan_net_evaluate(net, test, &loss, &acc);
        if (s != FAN_OK) rc = cli_lib_error("evaluating", s, fan_net_errmsg(net));
        else if (a->csv) printf("samples,loss,accuracy\n%zu,%.6f,%.6f\n", fan_dataset_size(test), loss, acc);
        else printf("test loss %.4f, accuracy %.4f (%zu samples)\n", loss, acc, fan_dataset_size(test));
    }
    fan_dataset_free(test);
    fan_net_free(net);
    return rc;
}

const cmd_spec CMD_EVAL = {
    "eval", "MODEL",
    "Prints the mean test loss and the accuracy of a model saved by `fanoise train`. Give the\n"
    "data and normalisation options the model was trained with (a --config file shared with\n"
    "train does that); standardisation statistics default to those of the training file.\n"
    "  fanoise eval model.fan --data DIR",
    OPTS, sizeof OPTS / sizeof *OPTS, 1, 1, sizeof(eval_args), defaults, eval_run};
