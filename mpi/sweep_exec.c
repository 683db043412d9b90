/*
 * sweep_exec.c - one task of a sweep as a child process, its results published atomically, and
 * the merge of finished tasks' per-seed CSV files (sweep.h).
 *
 * Atomicity: a task writes only into its own temporary directory; when the program has exited
 * successfully, every file there is synced, task.txt is written and synced last, and one
 * rename() moves the directory to tasks/LABEL/seeds-A-B. A crash or a killed rank at any moment
 * leaves either no result or a complete one, never a partial one; reruns skip exactly the
 * published tasks.
 */
#define _GNU_SOURCE /* prctl, nftw flags */
#include "sweep.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#define PATH_CAP 4096

/* snprintf for paths: returns 0 when the result did not fit (the callers then give up). */
static int fmt_path(char *buf, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int fmt_path(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

double sw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int sw_mkdirs(const char *path)
{
    char buf[PATH_CAP];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1;; p++) {
        const char c = *p;
        if (c == '/' || c == '\0') {
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
            *p = c;
        }
        if (c == '\0') break;
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int sw_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int fsync_path(const char *path, int directory)
{
    const int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    const int r = fsync(fd);
    close(fd);
    return r;
}

int sw_write_atomic(const char *path, const char *data, size_t len)
{
    char tmp[PATH_CAP];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) return -1;
    int ok = fwrite(data, 1, len, f) == len && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

char *sw_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    for (size_t r; buf != NULL && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap) {
            char *nb = realloc(buf, 2 * cap + 1);
            if (nb == NULL) free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    const int bad = ferror(f);
    fclose(f);
    if (buf == NULL || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

int sw_task_finished(const char *out, const sw_task *t)
{
    char name[PATH_CAP / 2], path[PATH_CAP];
    sw_task_name(t, name, sizeof name);
    snprintf(path, sizeof path, "%s/tasks/%s/task.txt", out, name);
    return access(path, F_OK) == 0;
}

/* ---- running a task ------------------------------------------------------------------------ */

/* Everything the child needs, prepared before fork(): between fork and exec the child of a
   multi-threaded MPI process may only make async-signal-safe calls (no malloc, no stdio). */
typedef struct child_plan {
    char path[PATH_CAP], out_path[PATH_CAP], err_path[PATH_CAP];
    char seeds[32], seed0[32];
    char *argv[SW_MAX_ARGS + 10];
    char **envp;
} child_plan;

extern char **environ;

/* The environment with OPENBLAS_NUM_THREADS=1 added when it is unset: a sweep fills the cores
   with processes, and one BLAS thread each keeps the results bit-identical to a serial run's. */
static char **child_env(void)
{
    size_t n = 0;
    int has = 0;
    for (; environ[n] != NULL; n++)
        has |= strncmp(environ[n], "OPENBLAS_NUM_THREADS=", 21) == 0;
    char **env = calloc(n + 2, sizeof *env);
    if (env == NULL) return NULL;
    memcpy(env, environ, n * sizeof *env);
    if (!has) env[n] = "OPENBLAS_NUM_THREADS=1";
    return env;
}

static int plan_child(child_plan *c, const char *dir, const char *bin, const sw_task *t)
{
    if (!fmt_path(c->path, sizeof c->path, "%s/%s", bin, t->program) ||
        !fmt_path(c->out_path, sizeof c->out_path, "%s/stdout.txt", dir) ||
        !fmt_path(c->err_path, sizeof c->err_path, "%s/stderr.txt", dir))
        return 0;
    snprintf(c->seeds, sizeof c->seeds, "%" PRIu64, t->seeds);
    snprintf(c->seed0, sizeof c->seed0, "%" PRIu64, t->seed0);
    size_t a = 0;
    c->argv[a++] = c->path;
    c->argv[a++] = "--seeds";
    c->argv[a++] = c->seeds;
    c->argv[a++] = "--seed0";
    c->argv[a++] = c->seed0;
    c->argv[a++] = "--out";
    c->argv[a++] = (char *)(uintptr_t)dir;
    c->argv[a++] = "--quiet";
    for (size_t i = 0; i < t->n_args; i++) c->argv[a++] = t->args[i];
    c->argv[a] = NULL;
    c->envp = child_env();
    return c->envp != NULL;
}

static void say(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

/* The child: output into the task's directory, then the program; never returns. */
static void exec_child(const child_plan *c)
{
#if defined(__linux__)
    /* A killed rank takes its task with it, instead of leaving it running unsupervised. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(126);
#endif
    const int fo = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    const int fe = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0) _exit(126);
    close(fo);
    close(fe);
    execve(c->path, c->argv, c->envp);
    say(2, "fanoise-sweep: cannot run ");
    say(2, c->path);
    say(2, "\n");
    _exit(127);
}

/* Syncs every regular file of dir (a task's outputs), then dir itself. */
static int sync_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) return -1;
    int ok = 1;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char path[PATH_CAP];
        struct stat st;
        if (!fmt_path(path, sizeof path, "%s/%s", dir, e->d_name)) ok = 0;
        else if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && fsync_path(path, 0) != 0) ok = 0;
    }
    closedir(d);
    return ok && fsync_path(dir, 1) == 0 ? 0 : -1;
}

static void describe(const sw_task *t, const char *bin, int rank, int status, double seconds,
                     char *buf, size_t cap)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    int n = snprintf(buf, cap,
                     "label %s\nprogram %s\nseeds %" PRIu64 "-%" PRIu64 "\ncommand %s/%s "
                     "--seeds %" PRIu64 " --seed0 %" PRIu64 " --out DIR --quiet",
                     t->label, t->program, t->seed0, t->seed0 + t->seeds - 1, bin, t->program,
                     t->seeds, t->seed0);
    for (size_t i = 0; i < t->n_args && n > 0 && (size_t)n < cap; i++)
        n += snprintf(buf + n, cap - (size_t)n, " %s", t->args[i]);
    if (n > 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, "\nexit %d\nseconds %.2f\nrank %d\nhost %s\n", status,
                 seconds, rank, host);
}

static void task_paths(const char *out, const sw_task *t, int rank, char *flat, char *tmp,
                       char *final, char *parent)
{
    char name[PATH_CAP / 2];
    sw_task_name(t, name, sizeof name);
    snprintf(flat, PATH_CAP / 2, "%s", name);
    for (char *p = flat; *p; p++)
        if (*p == '/') *p = '.';
    snprintf(tmp, PATH_CAP, "%s/.tmp/%s.r%d.p%ld", out, flat, rank, (long)getpid());
    snprintf(final, PATH_CAP, "%s/tasks/%s", out, name);
    snprintf(parent, PATH_CAP, "%s/tasks/%s", out, t->label);
}

int sw_task_start(sw_running *r, const char *out, const char *bin, const sw_task *t, int rank)
{
    char flat[PATH_CAP / 2], tmp[PATH_CAP], final[PATH_CAP], parent[PATH_CAP];
    task_paths(out, t, rank, flat, tmp, final, parent);
    memset(r, 0, sizeof *r);
    r->task = t;
    r->rank = rank;
    r->pid = -1;
    if (sw_remove_tree(tmp) != 0 || sw_mkdirs(tmp) != 0) return -1;
    child_plan *plan = calloc(1, sizeof *plan);
    if (plan == NULL || !plan_child(plan, tmp, bin, t)) {
        free(plan);
        return -1;
    }
    r->t0 = sw_now();
    fflush(NULL);
    r->pid = fork();
    if (r->pid == 0) exec_child(plan);
    free(plan->envp);
    free(plan);
    return r->pid > 0 ? 0 : -1;
}

int sw_task_poll(sw_running *r, int block, int *wstatus)
{
    for (;;) {
        const pid_t got = waitpid(r->pid, wstatus, block ? 0 : WNOHANG);
        if (got == r->pid) return 1;
        if (got == 0) return 0;
        if (errno != EINTR) return -1;
    }
}

int sw_task_finish(sw_running *r, const char *out, const char *bin, int wstatus,
                   double *seconds)
{
    const sw_task *t = r->task;
    char flat[PATH_CAP / 2], tmp[PATH_CAP], final[PATH_CAP], parent[PATH_CAP], path[PATH_CAP];
    task_paths(out, t, r->rank, flat, tmp, final, parent);
    *seconds = sw_now() - r->t0;
    const int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
    char info[4096];
    describe(t, bin, r->rank, status, *seconds, info, sizeof info);
    if (status != 0) {
        /* Kept for its logs; a rerun tries the task again. */
        char failed[PATH_CAP];
        snprintf(failed, sizeof failed, "%s/failed/%s", out, flat);
        if (fmt_path(path, sizeof path, "%s/failed.txt", tmp))
            (void)sw_write_atomic(path, info, strlen(info));
        snprintf(path, sizeof path, "%s/failed", out);
        if (sw_mkdirs(path) != 0 || sw_remove_tree(failed) != 0 || rename(tmp, failed) != 0)
            (void)sw_remove_tree(tmp);
        return status;
    }
    if (!fmt_path(path, sizeof path, "%s/task.txt", tmp) || sync_dir(tmp) != 0 || sw_write_atomic(path, info, strlen(info)) != 0 ||
        fsync_path(tmp, 1) != 0 || sw_mkdirs(parent) != 0)
        return -1;
    if (rename(tmp, final) != 0) {
        /* Published meanwhile by an earlier run that this one did not see finish: keep that. */
        const int already = (errno == ENOTEMPTY || errno == EEXIST) && sw_task_finished(out, t);
        (void)sw_remove_tree(tmp);
        return already ? 0 : -1;
    }
    (void)fsync_path(parent, 1);
    return 0;
}

int sw_task_run(const char *out, const char *bin, const sw_task *t, int rank, double *seconds)
{
    sw_running r;
    int wstatus = 0;
    *seconds = 0.0;
    if (sw_task_start(&r, out, bin, t, rank) != 0 || sw_task_poll(&r, 1, &wstatus) != 1) return -1;
    return sw_task_finish(&r, out, bin, wstatus, seconds);
}

/* ---- merging ------------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The CSV files of a task directory, sorted; returns the count (names malloc'd). */
static size_t list_csv(const char *dir, char **names, size_t cap)
{
    DIR *d = opendir(dir);
    if (d == NULL) return 0;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL && n < cap;) {
        const size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".csv") == 0) names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    return n;
}

/* 1 if the first line (the header) has a column named exactly "seed". */
static int has_seed_column(const char *text)
{
    const char *end = strchr(text, '\n');
    const size_t len = end ? (size_t)(end - text) : strlen(text);
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && text[j] != ',') j++;
        if (j - i == 4 && strncmp(text + i, "seed", 4) == 0) return 1;
        i = j + 1;
    }
    return 0;
}

static int append(char **buf, size_t *n, size_t *cap, const char *s, size_t len)
{
    if (*n + len + 1 > *cap) {
        size_t nc = *cap ? *cap : 1 << 16;
        while (*n + len + 1 > nc) nc *= 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL) return 0;
        *buf = nb;
        *cap = nc;
    }
    memcpy(*buf + *n, s, len);
    *n += len;
    (*buf)[*n] = '\0';
    return 1;
}

/* Merges one file of one label: the header once, then every task's rows in task order. */
static int merge_file(const char *out, const sw_sweep *sw, size_t first, size_t last,
                      const char *file)
{
    char *merged = NULL;
    size_t n = 0, cap = 0;
    int ok = 1;
    for (size_t i = first; ok && i < last; i++) {
        char name[PATH_CAP / 2], path[PATH_CAP];
        sw_task_name(&sw->tasks[i], name, sizeof name);
        snprintf(path, sizeof path, "%s/tasks/%s/%s", out, name, file);
        size_t len = 0;
        char *text = sw_read_file(path, &len);
        if (text == NULL) {
            ok = 0;
            break;
        }
        const char *body = strchr(text, '\n');
        body = body ? body + 1 : text + len;
        if (i == first) ok = append(&merged, &n, &cap, text, (size_t)(body - text));
        if (ok) ok = append(&merged, &n, &cap, body, len - (size_t)(body - text));
        free(text);
    }
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/results/%s/%s", out, sw->tasks[first].label, file);
    if (ok) ok = sw_write_atomic(path, merged ? merged : "", n) == 0;
    free(merged);
    return ok;
}

size_t sw_merge(const char *out, const sw_sweep *sw)
{
    size_t unmerged = 0;
    for (size_t first = 0; first < sw->n_tasks;) {
        size_t last = first;
        size_t done = 0;
        while (last < sw->n_tasks && strcmp(sw->tasks[last].label, sw->tasks[first].label) == 0)
            done += (size_t)sw_task_finished(out, &sw->tasks[last++]);
        const char *label = sw->tasks[first].label;
        if (done < last - first) {
            printf("%-24s %zu of %zu tasks finished: not merged\n", label, done, last - first);
            unmerged++;
            first = last;
            continue;
        }
        char name[PATH_CAP / 2], dir[PATH_CAP];
        sw_task_name(&sw->tasks[first], name, sizeof name);
        snprintf(dir, sizeof dir, "%s/tasks/%s", out, name);
        char *files[256];
        const size_t nf = list_csv(dir, files, 256);
        snprintf(dir, sizeof dir, "%s/results/%s", out, label);
        size_t merged = 0;
        int ok = sw_mkdirs(dir) == 0;
        for (size_t f = 0; f < nf; f++) {
            char path[PATH_CAP];
            snprintf(path, sizeof path, "%s/tasks/%s/%s", out, name, files[f]);
            char *text = sw_read_file(path, NULL);
            if (ok && text != NULL && has_seed_column(text)) {
                ok = merge_file(out, sw, first, last, files[f]);
                merged++;
            }
            free(text);
            free(files[f]);
        }
        printf("%-24s %zu tasks: %zu per-seed files merged into results/%s/%s\n", label,
               last - first, merged, label, ok ? "" : " (FAILED to write)");
        unmerged += (size_t)!ok;
        first = last;
    }
    return unmerged;
}
