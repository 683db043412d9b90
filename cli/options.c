/*
 * options.c - options from the command line and from config files, and the usage text.
 * Every malformed input ends the tool with exit status 2 and a message saying what was wrong
 * and where; nothing is guessed.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A config file larger than this is surely not a config file. */
#define CONFIG_MAX_BYTES (1u << 20)

static const char *g_command = "";

void cli_set_command(const char *name) { g_command = name; }

#if defined(__GNUC__)
__attribute__((format(printf, 1, 0)))
#endif
static void vmessage(const char *fmt, va_list ap)
{
    fprintf(stderr, "fanoise%s%s: ", g_command[0] ? " " : "", g_command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fprintf(stderr, "(see: fanoise %s%s--help)\n", g_command, g_command[0] ? " " : "");
    return CLI_USAGE;
}

int cli_lib_error(const char *what, fan_status s, const char *detail)
{
    if (detail != NULL && detail[0] != '\0')
        cli_error("%s: %s (%s)", what, detail, fan_strerror(s));
    else
        cli_error("%s: %s", what, fan_strerror(s));
    return CLI_FAIL;
}

/* ---- values --------------------------------------------------------------------------------- */

static const cli_opt *find_opt(const cmd_spec *spec, const char *name, size_t len)
{
    for (size_t i = 0; i < spec->n_opts; i++)
        if (strlen(spec->opts[i].name) == len && strncmp(spec->opts[i].name, name, len) == 0)
            return &spec->opts[i];
    return NULL;
}

static int parse_unsigned(const char *s, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9') return 0; /* no sign, no space, not empty */
    errno = 0;
    char *end;
    const unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return 0;
    *out = (uint64_t)v;
    return 1;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *out = strcmp(s, yes[i]) == 0;
            return 1;
        }
    }
    return 0;
}

/* Stores text as option o's value; where says where it came from ("--epochs", "run.conf:3"). */
static int set_value(const cli_opt *o, void *args, const char *text, const char *where)
{
    char *field = (char *)args + o->off;
    uint64_t u;
    switch (o->type) {
    case OPT_FLAG: {
        int b;
        if (!parse_bool(text, &b))
            return cli_usage_error("%s: expected true or false, got '%s'", where, text);
        memcpy(field, &b, sizeof b);
        return CLI_OK;
    }
    case OPT_STRING:
        memcpy(field, &text, sizeof text);
        return CLI_OK;
    case OPT_SIZE:
    case OPT_U64:
        if (!parse_unsigned(text, &u))
            return cli_usage_error("%s: expected a non-negative integer, got '%s'", where, text);
        if (o->type == OPT_SIZE) {
            if (u > SIZE_MAX) return cli_usage_error("%s: %s is too large", where, text);
            const size_t z = (size_t)u;
            memcpy(field, &z, sizeof z);
        } else {
            memcpy(field, &u, sizeof u);
        }
        return CLI_OK;
    case OPT_DOUBLE: {
        errno = 0;
        char *end;
        const double v = strtod(text, &end);
        if (text[0] == '\0' || *end != '\0' || errno == ERANGE || !isfinite(v))
            return cli_usage_error("%s: expected a finite number, got '%s'", where, text);
        memcpy(field, &v, sizeof v);
        return CLI_OK;
    }
    }
    return cli_usage_error("%s: unknown option type", where);
}

/* ---- config files ----------------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

/* 1 if some other command takes the option `key`: a shared config file may set it. */
static int other_command_takes(const cmd_spec *spec, const char *key)
{
    for (size_t c = 0; c < CLI_N_COMMANDS; c++)
        if (CLI_COMMANDS[c] != spec && find_opt(CLI_COMMANDS[c], key, strlen(key)) != NULL) return 1;
    return 0;
}

/* Reads path into *text (caller frees) and applies its key = value lines. */
static int load_config(const cmd_spec *spec, void *args, const char *path, char **text)
{
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return cli_usage_error("--config: cannot open %s: %s", path, strerror(errno));
    char *buf = malloc(CONFIG_MAX_BYTES + 1);
    size_t len = buf ? fread(buf, 1, CONFIG_MAX_BYTES + 1, f) : 0;
    const int read_error = buf == NULL || ferror(f);
    fclose(f);
    if (read_error) {
        free(buf);
        return cli_usage_error("--config: cannot read %s", path);
    }
    if (len > CONFIG_MAX_BYTES) {
        free(buf);
        return cli_usage_error("--config: %s is larger than %u bytes", path, CONFIG_MAX_BYTES);
    }
    buf[len] = '\0';
    *text = buf;
    if (memchr(buf, '\0', len) != NULL) return cli_usage_error("--config: %s is not text", path);
    size_t line_no = 0;
    for (char *line = buf; line != NULL;) {
        char *next = strchr(line, '\n');
        if (next != NULL) *next++ = '\0';
        line_no++;
        char *s = trim(line);
        char where[512];
        snprintf(where, sizeof where, "%s:%zu", path, line_no);
        if (s[0] != '\0' && s[0] != '#') {
            char *eq = strchr(s, '=');
            if (eq == NULL) return cli_usage_error("%s: expected 'key = value', got '%s'", where, s);
            *eq = '\0';
            char *key = trim(s), *value = trim(eq + 1);
            for (char *k = key; *k; k++)
                if (*k == '_') *k = '-'; /* noise_steps and noise-steps are the same key */
            const size_t vl = strlen(value);
            if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
                value[vl - 1] = '\0';
                value++;
            }
            const cli_opt *o = find_opt(spec, key, strlen(key));
            if (o != NULL && strcmp(key, "config") != 0) {
                snprintf(where, sizeof where, "%s:%zu: %s", path, line_no, key);
                const int rc = set_value(o, args, value, where);
                if (rc != CLI_OK) return rc;
            } else if (!other_command_takes(spec, key)) {
                return cli_usage_error("%s: unknown key '%s'", where, key);
            }
        }
        line = next;
    }
    return CLI_OK;
}

/* ---- the command line -------------------------------------------------------------------------- */

/* Finds --help and --config FILE before anything else is parsed. Returns 1 for --help. */
static int prescan(int argc, char **argv, const char **config)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) *config = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0) *config = argv[i] + 9;
    }
    return 0;
}

static int parse_args(const cmd_spec *spec, void *args, int argc, char **argv, char **pos,
                      size_t *n_pos)
{
    int options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
            if (*n_pos >= spec->max_pos)
                return cli_usage_error("unexpected argument '%s'", a);
            pos[(*n_pos)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) return cli_usage_error("unknown option '%s'", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        const size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && strncmp(name, "config", 6) == 0) {
            if (eq == NULL) i++; /* read by prescan */
            if (i >= argc) return cli_usage_error("--config needs a file");
            continue;
        }
        const cli_opt *o = find_opt(spec, name, len);
        if (o == NULL && len > 3 && strncmp(name, "no-", 3) == 0) {
            const cli_opt *neg = find_opt(spec, name + 3, len - 3);
            if (neg != NULL && neg->type == OPT_FLAG && eq == NULL) {
                const int zero = 0;
                memcpy((char *)args + neg->off, &zero, sizeof zero);
                continue;
            }
        }
        if (o == NULL) return cli_usage_error("unknown option '--%.*s'", (int)len, name);
        char where[128];
        snprintf(where, sizeof where, "--%s", o->name);
        const char *value;
        if (o->type == OPT_FLAG) {
            value = eq ? eq + 1 : "1";
        } else if (eq != NULL) {
            value = eq + 1;
        } else {
            if (i + 1 >= argc) return cli_usage_error("%s needs a value (%s)", where, o->metavar);
            value = argv[++i];
        }
        const int rc = set_value(o, args, value, where);
        if (rc != CLI_OK) return rc;
    }
    if (*n_pos < spec->min_pos)
        return cli_usage_error("missing %s", spec->args);
    return CLI_OK;
}

int cli_run(const cmd_spec *spec, int argc, char **argv)
{
    cli_set_command(spec->name);
    const char *config = NULL;
    if (prescan(argc, argv, &config)) {
        cli_usage(spec, stdout);
        return CLI_OK;
    }
    void *args = calloc(1, spec->args_size);
    char **pos = calloc((size_t)argc + 1, sizeof *pos);
    char *config_text = NULL;
    int rc = args && pos ? CLI_OK : CLI_FAIL;
    if (rc != CLI_OK) cli_error("out of memory");
    if (rc == CLI_OK) spec->defaults(args);
    if (rc == CLI_OK && config != NULL) rc = load_config(spec, args, config, &config_text);
    size_t n_pos = 0;
    if (rc == CLI_OK) rc = parse_args(spec, args, argc, argv, pos, &n_pos);
    if (rc == CLI_OK) rc = spec->run(args, pos, n_pos);
    free(config_text);
    free(pos);
    free(args);
    return rc;
}

/* ---- usage ------------------------------------------------------------------------------------ */

static void format_default(const cli_opt *o, const void *defaults, char *buf, size_t cap)
{
    const char *field = (const char *)defaults + o->off;
    buf[0] = '\0';
    switch (o->type) {
    case OPT_FLAG: {
        int v;
        memcpy(&v, field, sizeof v);
        if (v) snprintf(buf, cap, " [on]");
        break;
    }
    case OPT_STRING: {
        const char *v;
        memcpy(&v, field, sizeof v);
        if (v != NULL) snprintf(buf, cap, " [%s]", v);
        break;
    }
    case OPT_SIZE: {
        size_t v;
        memcpy(&v, field, sizeof v);
        snprintf(buf, cap, " [%zu]", v);
        break;
    }
    case OPT_U64: {
        uint64_t v;
        memcpy(&v, field, sizeof v);
        snprintf(buf, cap, " [%llu]", (unsigned long long)v);
        break;
    }
    case OPT_DOUBLE: {
        double v;
        memcpy(&v, field, sizeof v);
        if (!isnan(v)) snprintf(buf, cap, " [%g]", v);
        break;
    }
    }
}

/* Prints text from column `indent` (the cursor is there), wrapped at USAGE_WIDTH columns. */
#define USAGE_WIDTH 100
static void print_wrapped(FILE *f, const char *text, size_t indent)
{
    size_t col = indent;
    while (*text != '\0') {
        while (*text == ' ') text++;
        size_t w = strcspn(text, " ");
        if (w == 0) break;
        if (col > indent && col + 1 + w > USAGE_WIDTH) {
            fprintf(f, "\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%.*s", (int)w, text);
        col += w;
        text += w;
    }
    fputc('\n', f);
}

void cli_usage(const cmd_spec *spec, FILE *f)
{
    fprintf(f, "usage: fanoise %s%s%s [options]\n\n%s\n\noptions (default in brackets):\n",
            spec->name, spec->args[0] ? " " : "", spec->args, spec->summary);
    void *defaults = calloc(1, spec->args_size);
    if (defaults != NULL) spec->defaults(defaults);
    enum { HEAD = 26 };
    for (size_t i = 0; i < spec->n_opts; i++) {
        const cli_opt *o = &spec->opts[i];
        char head[64], def[96] = "", names[512] = "", text[1024];
        snprintf(head, sizeof head, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        if (defaults != NULL) format_default(o, defaults, def, sizeof def);
        if (o->choices != NULL) {
            char list[480];
            snprintf(names, sizeof names, ": %s", o->choices(list, sizeof list));
        }
        snprintf(text, sizeof text, "%s%s%s", o->help, names, def);
        /* A long head gets its own line. */
        if (strlen(head) + 3 > HEAD) fprintf(f, "  %s\n%*s", head, HEAD, "");
        else fprintf(f, "  %-*s", HEAD - 2, head);
        print_wrapped(f, text, HEAD);
    }
    fprintf(f, "  %-*s", HEAD - 2, "--config FILE");
    print_wrapped(f, "options from FILE, one 'name = value' per line ('#' starts a comment line); "
                     "the command line overrides them", HEAD);
    fprintf(f, "  %-*s", HEAD - 2, "--help");
    print_wrapped(f, "this text", HEAD);
    free(defaults);
}
