/*
 * rule_fa.c - backpropagation and feedback alignment, the two rules every other one is measured
 * against. Both send the error of layer l's outputs down as delta_out * M_l; BP reads M_l = W_l,
 * FA (Lillicrap et al., Nature Communications 2016) a fixed random B_l of W_l's shape. With B_l =
 * W_l for every layer, FA computes BP's gradients bit for bit.
 */
#include "net_impl.h"

static const float *forward_weights(const fan_net *net, size_t l, float *scratch)
{
    (void)scratch;
    return fan__net_w(net, l);
}

const float *fan__rule_stored_feedback(const fan_net *net, size_t l, float *scratch)
{
    (void)scratch;
    return fan__net_fb(net, l);
}

const fan__rule_ops fan__rule_bp = {
    .id = FAN_RULE_BP,
    .feedback = forward_weights,
    .backprop = 1,
};

const fan__rule_ops fan__rule_fa = {
    .id = FAN_RULE_FA,
    .feedback = fan__rule_stored_feedback,
    .reads_stored_b = 1,
};
