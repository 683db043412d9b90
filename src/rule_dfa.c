/*
 * rule_dfa.c - direct feedback alignment (Nokland, NeurIPS 2016). Every hidden layer receives the
 * net's output error e through its own fixed random matrix: the error at the inputs of weight
 * layer l >= 1 is (e * B_l) .* phi'(h_l), with B_l of (net outputs) x layer_inputs(l). The top
 * layer's B_{L-1} has W_{L-1}'s shape, so a net with one hidden layer learns exactly as FA does
 * from the same B.
 */
#include "net_impl.h"

const fan__rule_ops fan__rule_dfa = {
    .id = FAN_RULE_DFA,
    .direct = 1,
    .feedback = fan__rule_stored_feedback,
    .reads_stored_b = 1,
};
