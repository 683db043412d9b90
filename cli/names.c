/*
 * names.c - the library's enumeration names as command-line choices. The tool keeps no table of
 * its own: it asks fan_*_name for every value, so a rule or optimizer the library adds is a valid
 * choice as soon as the library knows its name. Whether the library accepts it for a net is the
 * library's answer (its status and message are shown as they are).
 */
#include "cli.h"

#include <string.h>

/* Enumerations are small, explicit and append-only; values above this are not looked at. */
#define MAX_ENUM_VALUE 256

typedef const char *(*name_fn)(int v);

static const char *rule_name(int v) { return fan_rule_name((fan_rule)v); }
static const char *activation_name(int v) { return fan_activation_name((fan_activation)v); }
static const char *loss_name(int v) { return fan_loss_name((fan_loss)v); }
static const char *optimizer_name(int v) { return fan_optimizer_kind_name((fan_optimizer_kind)v); }
static const char *init_name(int v) { return fan_init_name((fan_init)v); }

static int lookup(name_fn fn, const char *name, int *out)
{
    if (name == NULL) return 0;
    for (int v = 0; v < MAX_ENUM_VALUE; v++) {
        const char *n = fn(v);
        if (strcmp(n, "unknown") != 0 && strcmp(n, name) == 0) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

static const char *list(name_fn fn, char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int v = 0; v < MAX_ENUM_VALUE; v++) {
        const char *n = fn(v);
        if (strcmp(n, "unknown") == 0) continue;
        const int k = snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", n);
        if (k < 0 || (size_t)k >= cap - used) break;
        used += (size_t)k;
    }
    return buf;
}

int cli_rule(const char *name, fan_rule *out)
{
    int v;
    if (!lookup(rule_name, name, &v)) return 0;
    *out = (fan_rule)v;
    return 1;
}

int cli_activation(const char *name, fan_activation *out)
{
    int v;
    if (!lookup(activation_name, name, &v)) return 0;
    *out = (fan_activation)v;
    return 1;
}

int cli_loss(const char *name, fan_loss *out)
{
    int v;
    if (!lookup(loss_name, name, &v)) return 0;
    *out = (fan_loss)v;
    return 1;
}

int cli_optimizer(const char *name, fan_optimizer_kind *out)
{
    int v;
    if (!lookup(optimizer_name, name, &v)) return 0;
    *out = (fan_optimizer_kind)v;
    return 1;
}

int cli_init(const char *name, fan_init *out)
{
    int v;
    if (!lookup(init_name, name, &v)) return 0;
    *out = (fan_init)v;
    return 1;
}

const char *cli_rule_names(char *buf, size_t cap) { return list(rule_name, buf, cap); }
const char *cli_activation_names(char *buf, size_t cap) { return list(activation_name, buf, cap); }
const char *cli_loss_names(char *buf, size_t cap) { return list(loss_name, buf, cap); }
const char *cli_optimizer_names(char *buf, size_t cap) { return list(optimizer_name, buf, cap); }
const char *cli_init_names(char *buf, size_t cap) { return list(init_name, buf, cap); }

size_t cli_parse_sizes(const char *s, size_t *sizes, size_t cap)
{
    size_t n = 0;
    while (*s != '\0') {
        if (*s < '0' || *s > '9' || n == cap) return 0;
        size_t v = 0;
        while (*s >= '0' && *s <= '9') {
            const size_t d = (size_t)(*s++ - '0');
            if (v > (SIZE_MAX - d) / 10) return 0;
            v = v * 10 + d;
        }
        sizes[n++] = v;
        if (*s == ',') {
            s++;
            if (*s == '\0') return 0;
        } else if (*s != '\0') {
            return 0;
        }
    }
    return n;
}
