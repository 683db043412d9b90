/*
 * rules.c - the table of learning rules. Each rule lives in its own file (rule_*.c) as one
 * fan__rule_ops entry; the shared backward pass (net_pass.c) and the training step (train.c)
 * reach it only through this table.
 */
#include "net_impl.h"

const fan__rule_ops *fan__rule_lookup(fan_rule r)
{
    switch (r) {
    case FAN_RULE_BP: return &fan__rule_bp;
    case FAN_RULE_FA: return &fan__rule_fa;
    case FAN_RULE_DFA: return &fan__rule_dfa;
    case FAN_RULE_USF: return &fan__rule_usf;
    case FAN_RULE_BRSF: return &fan__rule_brsf;
    case FAN_RULE_FRSF: return &fan__rule_frsf;
    case FAN_RULE_KP: return &fan__rule_kp;
    case FAN_RULE_WM: return &fan__rule_wm;
    }
    return NULL;
}

int fan__rule_known(fan_rule r) { return fan__rule_lookup(r) != NULL; }
