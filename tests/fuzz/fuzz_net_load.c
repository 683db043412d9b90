/* fuzz_net_load.c - libFuzzer target for the model parser (fan_net_load_mem / _v2).
   Each input is tried twice: as given, and with its last four bytes replaced by the CRC-32 of
   the rest, so that mutations reach the checks behind the checksum (enumerations, layer table,
   sizes, allocation) instead of stopping at FAN_E_CHECKSUM. A model that loads must save back
   to exactly the bytes it came from, hold only finite parameters (what fan_net_set_weights and
   fan_net_set_feedback enforce, so what every saved model holds) and run a forward pass. */
#include <math.h>
#include <zlib.h>

#include "fuzz_common.h"

/* Forward passes on huge (but legal) layers would make the fuzzer slow without finding more. */
#define FORWARD_MAX_PARAMS 1000000u

static void check_loaded(fan_net *net, const uint8_t *data, size_t size)
{
    size_t need = 0;
    FZ_ASSERT(fan_net_save_mem(net, NULL, 0, &need) == FAN_OK);
    uint8_t *back = malloc(need);
    FZ_ASSERT(back != NULL);
    size_t written = 0;
    FZ_ASSERT(fan_net_save_mem(net, back, need, &written) == FAN_OK && written == need);
    if (data[8] == 2) {
        /* A current-version file saves back to exactly its bytes. */
        FZ_ASSERT(need == size);
        FZ_ASSERT(memcmp(back, data, size) == 0);
    } else {
        /* An older version is upgraded on save: the upgrade loads and saves back unchanged. */
        fan_net *again = NULL;
        FZ_ASSERT(fan_net_load_mem(&again, back, need, NULL) == FAN_OK);
        uint8_t *twice = malloc(need);
        FZ_ASSERT(twice != NULL);
        FZ_ASSERT(fan_net_save_mem(again, twice, need, &written) == FAN_OK && written == need);
        FZ_ASSERT(memcmp(back, twice, need) == 0);
        free(twice);
        fan_net_free(again);
    }
    free(back);

    const size_t L = fan_net_num_layers(net);
    FZ_ASSERT(L >= 1 && L <= FAN_MAX_LAYERS);
    for (size_t l = 0; l + 1 < L; l++)
        FZ_ASSERT(fan_net_layer_outputs(net, l) == fan_net_layer_inputs(net, l + 1));
    for (size_t l = 0; l < L; l++) {
        const size_t o = fan_net_layer_outputs(net, l), wn = o * fan_net_layer_inputs(net, l);
        size_t rows = 0, cols = 0;
        FZ_ASSERT(fan_net_feedback_shape(net, l, &rows, &cols) == FAN_OK);
        FZ_ASSERT(cols == fan_net_layer_inputs(net, l));
        const size_t bn = rows * cols;
        float *w = malloc(wn * sizeof *w), *b = malloc(o * sizeof *b), *fb = malloc(bn * sizeof *fb);
        FZ_ASSERT(w != NULL && b != NULL && fb != NULL);
        FZ_ASSERT(fan_net_get_weights(net, l, w, wn, b, o) == FAN_OK);
        FZ_ASSERT(fan_net_get_feedback(net, l, fb, bn) == FAN_OK);
        for (size_t i = 0; i < wn; i++) FZ_ASSERT(isfinite(w[i]));
        for (size_t i = 0; i < bn; i++) FZ_ASSERT(isfinite(fb[i]));
        for (size_t i = 0; i < o; i++) FZ_ASSERT(isfinite(b[i]));
        free(w);
        free(b);
        free(fb);
    }
    if (fan_net_num_params(net) <= FORWARD_MAX_PARAMS) {
        const size_t in = fan_net_input_size(net), out = fan_net_output_size(net);
        float *x = calloc(in, sizeof *x), *p = malloc(out * sizeof *p);
        FZ_ASSERT(x != NULL && p != NULL);
        /* Finite but huge weights may overflow the outputs: that is reported, never returned
           as FAN_OK with infinities. */
        const fan_status fs = fan_net_forward(net, x, 1, p, out);
        FZ_ASSERT(fs == FAN_OK || fs == FAN_E_NUMERIC);
        for (size_t i = 0; fs == FAN_OK && i < out; i++) FZ_ASSERT(isfinite(p[i]));
        free(x);
        free(p);
    }
}

static void try_load(const uint8_t *data, size_t size)
{
    fz_counter c = {0};
    fan_allocator al = fz_allocator(&c);
    fan_net *net = (fan_net *)&c; /* not NULL, to see that failure resets it */
    char msg[128];
    msg[0] = 'x';
    fan_status s = fan_net_load_v2(&net, NULL, data, size, &al, msg, sizeof msg);
    FZ_ASSERT(fz_known_status(s) && fz_loader_status(s));
    if (s != FAN_OK) {
        FZ_ASSERT(net == NULL);
        FZ_ASSERT(c.live == 0);
        FZ_ASSERT(msg[0] != '\0' && memchr(msg, '\0', sizeof msg) != NULL);
    } else {
        FZ_ASSERT(net != NULL);
        check_loaded(net, data, size);
        fan_net_free(net);
        FZ_ASSERT(c.live == 0);
    }
    /* The plain entry point must agree with _v2. */
    fan_net *again = NULL;
    fan_status s2 = fan_net_load_mem(&again, data, size, &al);
    FZ_ASSERT(s2 == s);
    fan_net_free(again);
    FZ_ASSERT(c.live == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_load(data, size);
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        FZ_ASSERT(fixed != NULL);
        memcpy(fixed, data, size);
        const uint32_t crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), fixed, size - 4);
        for (int i = 0; i < 4; i++) fixed[size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
        try_load(fixed, size);
        free(fixed);
    }
    return 0;
}
