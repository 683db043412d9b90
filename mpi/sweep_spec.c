/*
 * sweep_spec.c - reading a sweep file into its task list (format in sweep.h).
 */
#include "sweep.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Labels become directory names: keep them to a safe alphabet. */
static int name_ok(const char *s)
{
    if (*s == '\0' || *s == '.' || strlen(s) >= SW_MAX_NAME) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
    return 1;
}

static int parse_u64(const char *s, uint64_t *v)
{
    if (!isdigit((unsigned char)*s)) return 0;
    errno = 0;
    char *end = NULL;
    const unsigned long long x = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return 0;
    *v = (uint64_t)x;
    return 1;
}

/* "A" or "A-B" with A <= B. */
static int parse_seeds(char *s, uint64_t *first, uint64_t *last)
{
    char *dash = strchr(s, '-');
    if (dash == NULL) {
        if (!parse_u64(s, first)) return 0;
        *last = *first;
        return 1;
    }
    *dash = '\0';
    return parse_u64(s, first) && parse_u64(dash + 1, last) && *first <= *last;
}

/* Splits a line at whitespace in place; returns the number of tokens (at most cap). */
static size_t split(char *line, char **tok, size_t cap, int *too_many)
{
    size_t n = 0;
    *too_many = 0;
    for (char *p = line;;) {
        while (*p && isspace((unsigned char)*p)) p++;
        if (*p == '\0') break;
        if (n == cap) {
            *too_many = 1;
            break;
        }
        tok[n++] = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if (*p == '\0') break;
        *p++ = '\0';
    }
    return n;
}

static int add_task(sw_sweep *sw, size_t *cap, const sw_task *t)
{
    if (sw->n_tasks == *cap) {
        const size_t nc = *cap ? 2 * *cap : 64;
        sw_task *nt = realloc(sw->tasks, nc * sizeof *nt);
        if (nt == NULL) return 0;
        sw->tasks = nt;
        *cap = nc;
    }
    sw->tasks[sw->n_tasks++] = *t;
    return 1;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, err_cap, __VA_ARGS__);                                                       \
        sw_sweep_free(sw);                                                                         \
        return -1;                                                                                 \
    } while (0)

int sw_sweep_parse(sw_sweep *sw, char *text, char *err, size_t err_cap)
{
    memset(sw, 0, sizeof *sw);
    sw->text = text;
    size_t cap = 0, line_no = 0;
    char *labels[4096];
    size_t n_labels = 0;
    for (char *line = text; line != NULL;) {
        char *next = strchr(line, '\n');
        if (next) *next++ = '\0';
        line_no++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *tok[SW_MAX_ARGS + 4];
        int too_many = 0;
        const size_t n = split(line, tok, SW_MAX_ARGS + 4, &too_many);
        line = next;
        if (n == 0) continue;
        if (too_many) FAIL("line %zu: more than %d arguments", line_no, SW_MAX_ARGS);
        if (n < 4) FAIL("line %zu: expected LABEL PROGRAM SEEDS PER_TASK [ARGUMENTS...]", line_no);
        if (!name_ok(tok[0])) FAIL("line %zu: label '%s' must be letters, digits, _ - . "
                                   "(not starting with .)", line_no, tok[0]);
        if (!name_ok(tok[1])) FAIL("line %zu: program '%s' is not a plain file name", line_no, tok[1]);
        for (size_t i = 0; i < n_labels; i++)
            if (strcmp(labels[i], tok[0]) == 0) FAIL("line %zu: label '%s' used twice", line_no, tok[0]);
        if (n_labels == sizeof labels / sizeof labels[0]) FAIL("line %zu: too many labels", line_no);
        labels[n_labels++] = tok[0];
        uint64_t first = 0, last = 0, per = 0;
        char seeds[64];
        snprintf(seeds, sizeof seeds, "%s", tok[2]); /* parse_seeds cuts its argument */
        if (!parse_seeds(tok[2], &first, &last))
            FAIL("line %zu: seeds '%s' is not A or A-B (A <= B)", line_no, seeds);
        if (!parse_u64(tok[3], &per) || per == 0)
            FAIL("line %zu: seeds per task '%s' is not a positive integer", line_no, tok[3]);
        for (size_t i = 4; i < n; i++)
            if (strcmp(tok[i], "--seeds") == 0 || strcmp(tok[i], "--seed0") == 0 ||
                strcmp(tok[i], "--out") == 0)
                FAIL("line %zu: %s is set by the sweep, not in the arguments", line_no, tok[i]);
        for (uint64_t s = first;; s += per) {
            sw_task t;
            memset(&t, 0, sizeof t);
            snprintf(t.label, sizeof t.label, "%s", tok[0]);
            snprintf(t.program, sizeof t.program, "%s", tok[1]);
            t.seed0 = s;
            t.seeds = last - s + 1 < per ? last - s + 1 : per;
            t.line = line_no;
            t.n_args = n - 4;
            for (size_t i = 4; i < n; i++) t.args[i - 4] = tok[i];
            if (!add_task(sw, &cap, &t)) FAIL("out of memory");
            if (last - s < per) break;
        }
    }
    if (sw->n_tasks == 0) FAIL("the sweep file names no task");
    return 0;
}

void sw_sweep_free(sw_sweep *sw)
{
    free(sw->tasks);
    free(sw->text);
    memset(sw, 0, sizeof *sw);
}

void sw_task_name(const sw_task *t, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/seeds-%" PRIu64 "-%" PRIu64, t->label, t->seed0,
             t->seed0 + t->seeds - 1);
}
