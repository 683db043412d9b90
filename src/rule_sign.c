/*
 * rule_sign.c - the sign-concordant feedback rules (Liao, Leibo and Poggio, AAAI 2016; Moskovitz,
 * Litwin-Kumar and Abbott 2018). The error pass at layer l multiplies by M_l = sign(W_l) .* A_l,
 * recomputed from the current W_l at every pass, where the magnitudes A_l are
 *   uSF:  one positive scalar s_l for the whole layer, the standard deviation of the feedback
 *         initialiser for W_l's shape (He-normal: sqrt(2 / fan_in)), so that the three rules
 *         and FA send errors of the same root-mean-square size;
 *   brSF: |R_l|, R_l drawn from the feedback initialiser anew for every batch (from the
 *         feedback seed's own stream, so a run is reproducible);
 *   frSF: |B_l|, B_l the fixed feedback matrix drawn at initialisation.
 * sign(0) = 0, as in the papers' implementations. brSF draws no R_0 (no error pass uses layer 0's
 * feedback); its layer 0 reports frSF's matrix.
 */
#include "net_impl.h"

#include <math.h>
#include <string.h>

/* sign(w) * |a| for one element, written so that the loop vectorises. */
static inline float signed_magnitude(float w, float a)
{
    const float m = copysignf(fabsf(a), w);
    return w == 0.0f ? 0.0f : m;
}

static const float *usf_feedback(const fan_net *net, size_t l, float *scratch)
{
    const size_t n = fan__net_wn(net, l);
    const float s = (float)fan__init_std(net->init_b, net->sizes[l + 1], net->sizes[l]);
    const float *w = fan__net_w(net, l);
    for (size_t i = 0; i < n; i++) scratch[i] = signed_magnitude(w[i], s);
    return scratch;
}

static const float *frsf_feedback(const fan_net *net, size_t l, float *scratch)
{
    const size_t n = fan__net_wn(net, l);
    const float *w = fan__net_w(net, l), *b = fan__net_fb(net, l);
    for (size_t i = 0; i < n; i++) scratch[i] = signed_magnitude(w[i], b[i]);
    return scratch;
}

static const float *brsf_feedback(const fan_net *net, size_t l, float *scratch)
{
    if (l == 0) return frsf_feedback(net, l, scratch);
    const size_t n = fan__net_wn(net, l);
    const float *w = fan__net_w(net, l), *a = net->magnitudes + net->mag_off[l];
    for (size_t i = 0; i < n; i++) scratch[i] = signed_magnitude(w[i], a[i]);
    return scratch;
}

/* Draws |R_l| for every hidden layer from the magnitude stream, remembering where it started. */
static void brsf_draw(fan_net *net)
{
    net->magnitude_rng_last = net->magnitude_rng;
    for (size_t l = 1; l < net->n_layers; l++) {
        const size_t rows = net->sizes[l + 1], cols = net->sizes[l], n = rows * cols;
        float *a = net->magnitudes + net->mag_off[l];
        if (net->init_b == FAN_INIT_XAVIER_UNIFORM) {
            const float lim = (float)sqrt(6.0 / (double)(rows + cols));
            fan__rng_fill_uniform(&net->magnitude_rng, a, n, 0.0f, lim);
        } else {
            const float sd = (float)fan__init_std(net->init_b, rows, cols);
            fan__rng_fill_normal(&net->magnitude_rng, net->tables, a, n, 0.0f, sd);
            for (size_t i = 0; i < n; i++) a[i] = fabsf(a[i]);
        }
    }
}

static void brsf_reset(fan_net *net)
{
    fan__rng_seed_stream(&net->magnitude_rng, net->feedback_seed, FAN__RNG_MAGNITUDE, 0);
    brsf_draw(net);
}

/* The file keeps the stream's state before the current draw: reading it back and drawing again
   gives the same magnitudes and leaves the stream where it was. */
static void brsf_state_write(const fan_net *net, unsigned char *out)
{
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 8; i++)
            out[8 * k + i] = (unsigned char)(net->magnitude_rng_last.s[k] >> (8 * i));
}

static void brsf_state_read(fan_net *net, const unsigned char *in)
{
    for (int k = 0; k < 4; k++) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++) v |= (uint64_t)in[8 * k + i] << (8 * i);
        net->magnitude_rng.s[k] = v;
    }
    brsf_draw(net);
}

const fan__rule_ops fan__rule_usf = {
    .id = FAN_RULE_USF,
    .feedback = usf_feedback,
    .computed = 1,
};

const fan__rule_ops fan__rule_brsf = {
    .id = FAN_RULE_BRSF,
    .feedback = brsf_feedback,
    .computed = 1,
    .magnitudes = 1,
    .before_backward = brsf_draw,
    .reset_state = brsf_reset,
    .state_size = 32,
    .state_write = brsf_state_write,
    .state_read = brsf_state_read,
};

const fan__rule_ops fan__rule_frsf = {
    .id = FAN_RULE_FRSF,
    .feedback = frsf_feedback,
    .computed = 1,
    .reads_stored_b = 1,
};
