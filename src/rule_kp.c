/*
 * rule_kp.c - Kolen-Pollack learning (Kolen and Pollack 1994; Akrout et al., NeurIPS 2019). The
 * error pass reads B_l as FA does, and B_l receives the same increment as W_l at every step,
 * weight decay applying to both: with D_l = W_l - B_l before the step and contraction c = lr *
 * weight decay,
 *     B_l' = W_l' - (1 - c) * D_l,
 * which is B_l + (W_l' - W_l) - c * (B_l - W_l). Under plain SGD, W_l' = W_l - lr * (g + wd W_l),
 * this is exactly B_l' = B_l - lr * (g + wd B_l) (Akrout et al.'s equations 16 and 17), and
 * W_l - B_l shrinks by (1 - c) per step whatever the optimizer, so B_l converges to W_l.
 */
#include "net_impl.h"

static int kp_after_update(fan_net *net, const float *params_before, double contraction)
{
    const float keep = (float)(1.0 - contraction);
    uint32_t bad = 0;
    for (size_t l = 0; l < net->n_layers; l++) {
        const size_t n = fan__net_wn(net, l);
        const float *w_new = fan__net_w(net, l), *w_old = params_before + net->w_off[l];
        float *b = fan__net_fb(net, l);
        for (size_t i = 0; i < n; i++) {
            const float v = w_new[i] - keep * (w_old[i] - b[i]);
            b[i] = v;
            bad |= (uint32_t)!(v - v == 0.0f); /* NaN or infinity */
        }
    }
    return bad == 0;
}

const fan__rule_ops fan__rule_kp = {
    .id = FAN_RULE_KP,
    .feedback = fan__rule_stored_feedback,
    .reads_stored_b = 1,
    .moves_b = 1,
    .after_update = kp_after_update,
};
