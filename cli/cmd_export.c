/*
 * cmd_export.c - `fanoise export MODEL --npy DIR`: a model's W, b and B of every layer as .npy
 * files for NumPy (fan_net_export_npy), in DIR, created if missing.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

typedef struct export_args {
    const char *npy;
} export_args;

static const cli_opt OPTS[] = {
    {"npy", OPT_STRING, offsetof(export_args, npy), "DIR",
     "directory for weights_L.npy, bias_L.npy and feedback_L.npy of every layer L (required)", NULL},
};

static void defaults(void *p) { memset(p, 0, sizeof(export_args)); }

static int export_run(void *args, char **pos, size_t n_pos)
{
    (void)n_pos;
    const export_args *a = args;
    if (a->npy == NULL) return cli_usage_error("--npy DIR is required");
    char msg[256];
    fan_net *net = NULL;
    fan_status s = fan_net_load_v2(&net, pos[0], NULL, 0, NULL, msg, sizeof msg);
    if (s != FAN_OK) return cli_lib_error(pos[0], s, msg);
    int rc = CLI_OK;
    if (mkdir(a->npy, 0777) != 0 && errno != EEXIST) {
        cli_error("cannot create %s: %s", a->npy, strerror(errno));
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK) {
        s = fan_net_export_npy(net, a->npy);
        if (s != FAN_OK) rc = cli_lib_error("exporting", s, fan_net_errmsg(net));
        else
            printf("wrote %zu layers to %s/ (weights_L.npy, bias_L.npy, feedback_L.npy)\n",
                   fan_net_num_layers(net), a->npy);
    }
    fan_net_free(net);
    return rc;
}

const cmd_spec CMD_EXPORT = {
    "export", "MODEL",
    "Writes a model's matrices as NumPy .npy files: for every weight layer L, weights_L.npy\n"
    "(W, outputs x inputs), bias_L.npy and feedback_L.npy (B), all float32.\n"
    "  fanoise export model.fan --npy weights/   then in Python: numpy.load('weights/weights_0.npy')",
    OPTS, sizeof OPTS / sizeof *OPTS, 1, 1, sizeof(export_args), defaults, export_run};
