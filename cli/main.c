/*
 * main.c - `fanoise COMMAND [options]`: dispatch, the tool's own --help and --version. Exit
 * status 0 on success, 1 when something failed while running, 2 for a usage error.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* OpenBLAS's thread setter, present when the BLAS is OpenBLAS (a weak reference: NULL with
   another BLAS). For nets of the paper's size one BLAS thread is fastest and its idle threads
   only spin (docs/performance.md), so the tool uses one unless OPENBLAS_NUM_THREADS says more. */
extern void openblas_set_num_threads(int n) __attribute__((weak));

const cmd_spec *const CLI_COMMANDS[] = {&CMD_TRAIN, &CMD_EVAL, &CMD_DIAG, &CMD_INFO, &CMD_EXPORT};
const size_t CLI_N_COMMANDS = sizeof CLI_COMMANDS / sizeof *CLI_COMMANDS;

static const char *const WHAT[] = {
    "train a network (optionally noise pretraining first) and save it",
    "test loss and accuracy of a saved model",
    "per layer: alignment angles, effective rank, singular values",
    "sizes, rule, activations, seeds, format version of a model file",
    "a model's W, b and B as NumPy .npy files",
};

static void usage(FILE *f)
{
    fprintf(f, "usage: fanoise COMMAND [options]     (libfanoise %s)\n\n"
               "Feedback alignment, backprop and other learning rules, random-noise pretraining\n"
               "and alignment diagnostics, from the command line.\n\ncommands:\n",
            fan_version_string());
    for (size_t i = 0; i < CLI_N_COMMANDS; i++)
        fprintf(f, "  %-8s %s\n", CLI_COMMANDS[i]->name, WHAT[i]);
    fprintf(f, "\n'fanoise COMMAND --help' lists a command's options; 'fanoise --version' prints "
               "the version.\n");
}

static const cmd_spec *find(const char *name)
{
    for (size_t i = 0; i < CLI_N_COMMANDS; i++)
        if (strcmp(CLI_COMMANDS[i]->name, name) == 0) return CLI_COMMANDS[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (openblas_set_num_threads != NULL && getenv("OPENBLAS_NUM_THREADS") == NULL)
        openblas_set_num_threads(1);
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("fanoise %s (libfanoise %s)\n", FANOISE_VERSION_STRING, fan_version_string());
        return CLI_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        const cmd_spec *spec = argc > 2 ? find(argv[2]) : NULL;
        if (spec != NULL) cli_usage(spec, stdout);
        else usage(stdout);
        return argc > 2 && spec == NULL ? CLI_USAGE : CLI_OK;
    }
    const cmd_spec *spec = find(cmd);
    if (spec == NULL) {
        fprintf(stderr, "fanoise: unknown command '%s' (train, eval, diag, info, export; see "
                        "fanoise --help)\n", cmd);
        return CLI_USAGE;
    }
    return cli_run(spec, argc - 1, argv + 1);
}
