/*
 * sweep_main.c - fanoise-sweep: runs the tasks of a sweep file over the ranks of an MPI job,
 * skipping tasks a previous run finished, then merges the per-seed results (sweep.h for the
 * file format and the output layout; docs/scale-out.md for usage on one machine and on Slurm).
 *
 *   mpirun -np N build/mpi/fanoise-sweep SWEEP_FILE [--out DIR] [--bin DIR] [--list]
 *                                                   [--merge-only]
 *
 * Scheduling: rank 0 hands out task indices on request (dynamic, so long and short tasks
 * balance) and runs tasks itself between requests; the other ranks ask, run, report, ask again.
 * Every wait polls with short sleeps instead of spinning in MPI, so that ranks idle at the end of
 * a sweep leave the cores to the tasks still running.
 */
#define _POSIX_C_SOURCE 200809L
#include "sweep.h"

#include <mpi.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAG_REPORT 1 /* worker -> 0: {finished task or -1, its status, its seconds} */
#define TAG_ASSIGN 2 /* 0 -> worker: task index, or -1 when there is none left */
#define POLL_NS 2000000L
#define MAX_OUT 1024

typedef struct options {
    const char *file, *out, *bin;
    int list, merge_only;
} options;

typedef struct outcome {
    int state;   /* 0 pending, 1 skipped (finished before), 2 ran ok, 3 failed */
    int status, rank;
    double seconds;
} outcome;

static void nap(void)
{
    struct timespec ts = {0, POLL_NS};
    nanosleep(&ts, NULL);
}

/* Waits for a request without spinning: idle ranks must not take a core from running tasks. */
static void wait_gently(MPI_Request *req)
{
    for (int done = 0;;) {
        MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        nap();
    }
}

static int usage(int rank)
{
    if (rank == 0)
        fprintf(stderr,
                "usage: fanoise-sweep SWEEP_FILE [--out DIR] [--bin DIR] [--list] [--merge-only]\n"
                "  --out DIR     results directory [out/sweep]\n"
                "  --bin DIR     where the programs are [build/paper]\n"
                "  --list        print every task and whether it has finished; run nothing\n"
                "  --merge-only  merge the labels whose tasks have all finished; run nothing\n"
                "Sweep file lines: LABEL PROGRAM SEEDS PER_TASK [ARGUMENTS...] (see "
                "docs/scale-out.md)\n");
    return 2;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->out = "out/sweep";
    o->bin = "build/paper";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            o->out = argv[++i];
        else if (strcmp(argv[i], "--bin") == 0 && i + 1 < argc)
            o->bin = argv[++i];
        else if (strcmp(argv[i], "--list") == 0)
            o->list = 1;
        else if (strcmp(argv[i], "--merge-only") == 0)
            o->merge_only = 1;
        else if (argv[i][0] != '-' && o->file == NULL)
            o->file = argv[i];
        else
            return 0;
    }
    return o->file != NULL && strlen(o->out) < MAX_OUT && strlen(o->bin) < MAX_OUT;
}

/* Rank 0 reads the sweep file and every rank gets its text, so it need exist on one node only. */
static char *shared_text(const char *file, int rank, char *err, size_t err_cap)
{
    long long len = -1;
    char *text = NULL;
    if (rank == 0) {
        size_t n = 0;
        text = sw_read_file(file, &n);
        if (text != NULL) len = (long long)n;
        else snprintf(err, err_cap, "cannot read %s: %s", file, strerror(errno));
    }
    MPI_Bcast(&len, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    if (len < 0) return NULL;
    if (rank != 0) text = malloc((size_t)len + 1);
    if (text == NULL) MPI_Abort(MPI_COMM_WORLD, 3);
    MPI_Bcast(text, (int)len, MPI_CHAR, 0, MPI_COMM_WORLD);
    text[len] = '\0';
    return text;
}

static void write_pid(const char *out, int rank)
{
    char path[MAX_OUT + 64], pid[32];
    snprintf(path, sizeof path, "%s/.run/rank-%d.pid", out, rank);
    snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (sw_write_atomic(path, pid, strlen(pid)) != 0)
        fprintf(stderr, "fanoise-sweep: rank %d cannot write %s\n", rank, path);
}

static void report(const sw_sweep *sw, outcome *oc, size_t *done, size_t total, int idx,
                   int status, double seconds, int rank)
{
    oc[idx] = (outcome){status == 0 ? 2 : 3, status, rank, seconds};
    char name[256];
    sw_task_name(&sw->tasks[idx], name, sizeof name);
    ++*done;
    printf("[%zu/%zu] %-40s rank %d %8.1f s %s\n", *done, total, name, rank, seconds,
           status == 0 ? "ok" : "FAILED (log in failed/)");
    fflush(stdout);
}

/* Rank 0: hands out the pending tasks and runs some itself. */
static void lead(const options *o, const sw_sweep *sw, const int *pending, size_t n_pending,
                 outcome *oc, int size)
{
    size_t next = 0, done = 0;
    int workers = size - 1, busy = 0;
    sw_running local;
    while (workers > 0 || busy || next < n_pending) {
        int moved = 0, flag = 0;
        MPI_Status ms;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_REPORT, MPI_COMM_WORLD, &flag, &ms);
        if (flag) {
            double msg[3];
            MPI_Recv(msg, 3, MPI_DOUBLE, ms.MPI_SOURCE, TAG_REPORT, MPI_COMM_WORLD,
                     MPI_STATUS_IGNORE);
            if (msg[0] >= 0)
                report(sw, oc, &done, n_pending, (int)msg[0], (int)msg[1], msg[2], ms.MPI_SOURCE);
            const int assign = next < n_pending ? pending[next++] : -1;
            MPI_Send(&assign, 1, MPI_INT, ms.MPI_SOURCE, TAG_ASSIGN, MPI_COMM_WORLD);
            if (assign < 0) workers--;
            moved = 1;
        }
        if (!busy && next < n_pending) {
            const int idx = pending[next++];
            if (sw_task_start(&local, o->out, o->bin, &sw->tasks[idx], 0) == 0)
                busy = 1;
            else
                report(sw, oc, &done, n_pending, idx, -1, 0.0, 0);
            moved = 1;
        }
        if (busy) {
            int wstatus = 0;
            const int r = sw_task_poll(&local, 0, &wstatus);
            if (r != 0) {
                double seconds = 0.0;
                const int st = r == 1 ? sw_task_finish(&local, o->out, o->bin, wstatus, &seconds) : -1;
                report(sw, oc, &done, n_pending, (int)(local.task - sw->tasks), st, seconds, 0);
                busy = 0;
                moved = 1;
            }
        }
        if (!moved) nap();
    }
}

/* The other ranks: ask, run, report, until rank 0 has no task left. */
static void follow(const options *o, const sw_sweep *sw, int rank)
{
    double msg[3] = {-1.0, 0.0, 0.0};
    for (;;) {
        MPI_Send(msg, 3, MPI_DOUBLE, 0, TAG_REPORT, MPI_COMM_WORLD);
        int idx = -1;
        MPI_Request req;
        MPI_Irecv(&idx, 1, MPI_INT, 0, TAG_ASSIGN, MPI_COMM_WORLD, &req);
        wait_gently(&req);
        if (idx < 0) return;
        double seconds = 0.0;
        const int st = sw_task_run(o->out, o->bin, &sw->tasks[idx], rank, &seconds);
        msg[0] = idx;
        msg[1] = st;
        msg[2] = seconds;
    }
}

static void list_tasks(const options *o, const sw_sweep *sw)
{
    size_t finished = 0;
    for (size_t i = 0; i < sw->n_tasks; i++) {
        char name[256];
        sw_task_name(&sw->tasks[i], name, sizeof name);
        const int f = sw_task_finished(o->out, &sw->tasks[i]);
        finished += (size_t)f;
        printf("%-40s %s\n", name, f ? "finished" : "pending");
    }
    printf("%zu tasks, %zu finished, %zu pending\n", sw->n_tasks, finished, sw->n_tasks - finished);
}

/* sweep.txt: what this run did, for the docs' speed-up numbers and for the curious. */
static void write_summary(const options *o, const sw_sweep *sw, const outcome *oc, int size,
                          double wall, size_t *failed)
{
    size_t cap = 4096 + sw->n_tasks * 160, n = 0, ran = 0, skipped = 0;
    char *buf = malloc(cap);
    if (buf == NULL) return;
    double busy = 0.0;
    *failed = 0;
    for (size_t i = 0; i < sw->n_tasks; i++) {
        ran += oc[i].state >= 2;
        skipped += oc[i].state == 1;
        *failed += oc[i].state == 3;
        busy += oc[i].seconds;
    }
    n += (size_t)snprintf(buf + n, cap - n,
                          "sweep %s\nranks %d\ntasks %zu\nskipped %zu (finished before)\nran %zu\n"
                          "failed %zu\nwall_seconds %.2f\ntask_seconds %.2f\n"
                          "# task rank seconds status\n",
                          o->file, size, sw->n_tasks, skipped, ran, *failed, wall, busy);
    for (size_t i = 0; i < sw->n_tasks && n < cap; i++) {
        if (oc[i].state < 2) continue;
        char name[256];
        sw_task_name(&sw->tasks[i], name, sizeof name);
        n += (size_t)snprintf(buf + n, cap - n, "%s %d %.2f %d\n", name, oc[i].rank,
                              oc[i].seconds, oc[i].status);
    }
    char path[MAX_OUT + 32];
    snprintf(path, sizeof path, "%s/sweep.txt", o->out);
    if (sw_write_atomic(path, buf, n < cap ? n : cap - 1) != 0)
        fprintf(stderr, "fanoise-sweep: cannot write %s\n", path);
    printf("%d ranks: %zu tasks ran (%zu failed), %zu skipped as finished before; wall %.1f s, "
           "task time %.1f s\n", size, ran, *failed, skipped, wall, busy);
    free(buf);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    int rank = 0, size = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    options o;
    int code = 0;
    char err[512] = "";
    sw_sweep sw = {0};
    char *text = NULL;
    if (!parse_args(argc, argv, &o)) {
        code = usage(rank);
        goto done;
    }
    text = shared_text(o.file, rank, err, sizeof err);
    if (text == NULL || sw_sweep_parse(&sw, text, err, sizeof err) != 0) {
        if (rank == 0) fprintf(stderr, "fanoise-sweep: %s: %s\n", o.file, err);
        code = 2;
        goto done;
    }
    if (o.list || o.merge_only) {
        if (rank == 0 && o.list) list_tasks(&o, &sw);
        if (rank == 0 && o.merge_only) code = sw_merge(o.out, &sw) ? 1 : 0;
        goto done;
    }
    const double t0 = sw_now();
    /* Leftovers of a killed run go before anyone starts a task. */
    char path[MAX_OUT + 32];
    int ready = 1;
    if (rank == 0) {
        snprintf(path, sizeof path, "%s/.tmp", o.out);
        ready = sw_remove_tree(path) == 0 && sw_mkdirs(path) == 0;
        snprintf(path, sizeof path, "%s/.run", o.out);
        ready = ready && sw_mkdirs(path) == 0;
        if (!ready) fprintf(stderr, "fanoise-sweep: cannot prepare %s: %s\n", o.out, strerror(errno));
    }
    MPI_Bcast(&ready, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (!ready) {
        code = 1;
        goto done;
    }
    write_pid(o.out, rank);
    if (rank == 0) {
        outcome *oc = calloc(sw.n_tasks, sizeof *oc);
        int *pending = calloc(sw.n_tasks, sizeof *pending);
        if (oc == NULL || pending == NULL) MPI_Abort(MPI_COMM_WORLD, 3);
        size_t n_pending = 0;
        for (size_t i = 0; i < sw.n_tasks; i++) {
            if (sw_task_finished(o.out, &sw.tasks[i]))
                oc[i].state = 1;
            else
                pending[n_pending++] = (int)i;
        }
        printf("fanoise-sweep: %zu tasks, %zu finished before, %zu to run on %d ranks\n",
               sw.n_tasks, sw.n_tasks - n_pending, n_pending, size);
        fflush(stdout);
        lead(&o, &sw, pending, n_pending, oc, size);
        size_t failed = 0;
        write_summary(&o, &sw, oc, size, sw_now() - t0, &failed);
        const size_t unmerged = sw_merge(o.out, &sw);
        code = failed || unmerged ? 1 : 0;
        free(pending);
        free(oc);
    } else {
        follow(&o, &sw, rank);
    }
    /* Everyone waits here, gently, until rank 0 has merged. */
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    wait_gently(&req);
done:
    sw_sweep_free(&sw);
    MPI_Finalize();
    return code;
}
