/*
 * cmd_info.c - `fanoise info MODEL`: what a model file holds. The format version is read from the
 * file's own header bytes (docs/file-format.md: 8 magic bytes, then a little-endian u32 version),
 * so it is shown even for a version this library cannot load.
 */
#include "cli.h"

#include <errno.h>
#include <string.h>

/* docs/file-format.md: "FANOISE" and 0x1a, then the u32 format version. */
static const unsigned char MAGIC[8] = {'F', 'A', 'N', 'O', 'I', 'S', 'E', 0x1a};
#define HEADER_BYTES 12

typedef struct info_args {
    int unused;
} info_args;

static void defaults(void *p) { memset(p, 0, sizeof(info_args)); }

/* Reads the magic and the version; returns an exit status. */
static int read_version(const char *path, uint32_t *version, long *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        cli_error("cannot open %s: %s", path, strerror(errno));
        return CLI_FAIL;
    }
    unsigned char h[HEADER_BYTES];
    const size_t got = fread(h, 1, sizeof h, f);
    *size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    fclose(f);
    if (got < sizeof h || memcmp(h, MAGIC, sizeof MAGIC) != 0) {
        cli_error("%s is not a libfanoise model file (no FANOISE magic)", path);
        return CLI_FAIL;
    }
    *version = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    return CLI_OK;
}

static int info_run(void *args, char **pos, size_t n_pos)
{
    (void)args;
    (void)n_pos;
    const char *path = pos[0];
    uint32_t version = 0;
    long size = -1;
    int rc = read_version(path, &version, &size);
    if (rc != CLI_OK) return rc;
    printf("file:         %s (%ld bytes)\n", path, size);
    printf("format:       version %u\n", (unsigned)version);
    fflush(stdout);
    char msg[256];
    fan_net *net = NULL;
    const fan_status s = fan_net_load_v2(&net, path, NULL, 0, NULL, msg, sizeof msg);
    if (s != FAN_OK) return cli_lib_error(path, s, msg);
    const size_t layers = fan_net_num_layers(net);
    printf("sizes:        %zu", fan_net_input_size(net));
    for (size_t l = 0; l < layers; l++) printf("-%zu", fan_net_layer_outputs(net, l));
    printf(" (%zu weight layers, %zu parameters)\n", layers, fan_net_num_params(net));
    printf("rule:         %s\n", fan_rule_name(fan_net_rule(net)));
    printf("activations:  ");
    for (size_t l = 0; l < layers; l++)
        printf("%s%s", l ? ", " : "", fan_activation_name(fan_net_activation(net, l)));
    printf("\nloss:         %s\n", fan_loss_name(fan_net_loss(net)));
    uint64_t ws = 0, fs = 0;
    if (fan_net_seeds(net, &ws, &fs) == FAN_OK)
        printf("seeds:        weight %llu, feedback %llu\n", (unsigned long long)ws, (unsigned long long)fs);
    double slope = 0.0;
    if (fan_net_get(net, FAN_NET_LEAKY_SLOPE, &slope) == FAN_OK) printf("leaky slope:  %g\n", slope);
    printf("feedback:     ");
    for (size_t l = 0; l < layers; l++) {
        size_t r = 0, c = 0;
        if (fan_net_feedback_shape(net, l, &r, &c) == FAN_OK) printf("%s%zux%zu", l ? ", " : "", r, c);
    }
    printf(" (B per layer, rows x columns)\n");
    fan_net_free(net);
    return CLI_OK;
}

const cmd_spec CMD_INFO = {
    "info", "MODEL",
    "Prints what a model file holds: its format version, layer sizes, rule, activations, loss,\n"
    "seeds and the shape of every feedback matrix.\n"
    "  fanoise info model.fan",
    NULL, 0, 1, 1, sizeof(info_args), defaults, info_run};
