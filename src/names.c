/* names.c - static names of enumeration values, for printing and for parsing user input. */
#include "internal.h"

const char *fan_rule_name(fan_rule r)
{
    switch (r) {
    case FAN_RULE_BP: return "bp";
    case FAN_RULE_FA: return "fa";
    case FAN_RULE_DFA: return "dfa";
    case FAN_RULE_USF: return "usf";
    case FAN_RULE_BRSF: return "brsf";
    case FAN_RULE_FRSF: return "frsf";
    case FAN_RULE_KP: return "kp";
    case FAN_RULE_WM: return "wm";
    }
    return "unknown";
}

const char *fan_activation_name(fan_activation a)
{
    switch (a) {
    case FAN_ACT_LINEAR: return "linear";
    case FAN_ACT_RELU: return "relu";
    case FAN_ACT_LEAKY_RELU: return "leaky_relu";
    case FAN_ACT_TANH: return "tanh";
    case FAN_ACT_SIGMOID: return "sigmoid";
    }
    return "unknown";
}

const char *fan_loss_name(fan_loss l)
{
    switch (l) {
    case FAN_LOSS_CROSS_ENTROPY: return "cross_entropy";
    case FAN_LOSS_MSE: return "mse";
    }
    return "unknown";
}

const char *fan_optimizer_kind_name(fan_optimizer_kind k)
{
    switch (k) {
    case FAN_OPTIMIZER_SGD: return "sgd";
    case FAN_OPTIMIZER_ADAM: return "adam";
    case FAN_OPTIMIZER_ADAMW: return "adamw";
    case FAN_OPTIMIZER_RMSPROP: return "rmsprop";
    }
    return "unknown";
}

const char *fan_init_name(fan_init i)
{
    switch (i) {
    case FAN_INIT_HE_NORMAL: return "he_normal";
    case FAN_INIT_XAVIER_UNIFORM: return "xavier_uniform";
    case FAN_INIT_LECUN_NORMAL: return "lecun_normal";
    }
    return "unknown";
}
