/*
 * sweep.h - the sweep runner's parts (build/mpi/fanoise-sweep, docs/scale-out.md): the task list
 * read from a sweep file (sweep_spec.c), running one task as a child process and publishing its
 * results atomically (sweep_exec.c), and spreading the tasks over MPI ranks (sweep_main.c).
 *
 * A sweep file has one condition per line:  LABEL PROGRAM SEEDS PER_TASK [ARGUMENTS...]
 * SEEDS is "A" or "A-B" (inclusive); each task runs PROGRAM for PER_TASK consecutive seeds
 * (the last task of a line may have fewer) as
 *     BIN/PROGRAM --seeds K --seed0 S --out TMP --quiet ARGUMENTS...
 * '#' starts a comment; arguments are split at whitespace (no quoting).
 *
 * Output directory layout:
 *     tasks/LABEL/seeds-A-B/   a finished task: the program's files, stdout.txt, stderr.txt and
 *                              task.txt (written last, before the rename that publishes the
 *                              directory). Its presence is what "finished" means on a rerun.
 *     results/LABEL/FILE.csv   every CSV with a "seed" column, the rows of all of LABEL's tasks
 *                              in seed order (written once every task of LABEL has finished).
 *     failed/LABEL.seeds-A-B/  the last failed attempt of a task, for its logs.
 *     .tmp/                    tasks in progress (removed when a run starts).
 *     .run/rank-R.pid          the process id of each rank of the current run.
 *     sweep.txt                what the last run did: tasks run, skipped, failed, wall times.
 */
#ifndef FANOISE_SWEEP_H
#define FANOISE_SWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SW_MAX_ARGS 64
#define SW_MAX_NAME 64

typedef struct sw_task {
    char label[SW_MAX_NAME];
    char program[SW_MAX_NAME];
    uint64_t seed0;
    uint64_t seeds;
    size_t line;               /* of the sweep file, for messages */
    size_t n_args;
    char *args[SW_MAX_ARGS];   /* borrowed from the sweep's text buffer */
} sw_task;

typedef struct sw_sweep {
    char *text;      /* the sweep file, tokenised in place */
    sw_task *tasks;  /* in file order, seeds ascending within a line */
    size_t n_tasks;
} sw_sweep;

/**
 * Parses a sweep file's text (the buffer is taken over and freed by sw_sweep_free). Returns 0,
 * or -1 with a message in err (line number included).
 */
int sw_sweep_parse(sw_sweep *sw, char *text, char *err, size_t err_cap);
void sw_sweep_free(sw_sweep *sw);

/** "LABEL/seeds-A-B": where a task's results live under tasks/. */
void sw_task_name(const sw_task *t, char *buf, size_t cap);

/** 1 if out/tasks/NAME/task.txt exists. */
int sw_task_finished(const char *out, const sw_task *t);

/** A task whose program is running. */
typedef struct sw_running {
    const sw_task *task;
    int rank;
    pid_t pid;
    double t0;
} sw_running;

/** Starts a task's program in a fresh temporary directory under out/.tmp; 0 or -1. */
int sw_task_start(sw_running *r, const char *out, const char *bin, const sw_task *t, int rank);
/** 1 when the program has exited (*wstatus as waitpid's), 0 while it runs (block = 0), -1 on error. */
int sw_task_poll(sw_running *r, int block, int *wstatus);
/**
 * Publishes an exited task (see sw_task_run); returns the program's exit status (0 = published)
 * or -1 if publishing failed.
 */
int sw_task_finish(sw_running *r, const char *out, const char *bin, int wstatus, double *seconds);

/**
 * Runs one task as a child process (killed with this process on Linux) into a fresh temporary
 * directory under out/.tmp, then publishes it: task.txt, fsync, rename to out/tasks/NAME. A
 * failed task's directory goes to out/failed/. Returns the child's exit status (0 = published),
 * or -1 if it could not be started or published; *seconds receives the wall time.
 */
int sw_task_run(const char *out, const char *bin, const sw_task *t, int rank, double *seconds);

/**
 * Merges every label whose tasks have all finished: results/LABEL/FILE for every CSV of the
 * tasks whose header names a "seed" column, rows in task order, written atomically. Prints one
 * line per label to stdout. Returns the number of labels left unmerged (tasks missing).
 */
size_t sw_merge(const char *out, const sw_sweep *sw);

/** mkdir -p; returns 0 or -1 (errno set). */
int sw_mkdirs(const char *path);
/** rm -rf of a directory tree (a missing path is fine); returns 0 or -1. */
int sw_remove_tree(const char *path);
/** Writes len bytes to path through path.tmp, fsync and rename; returns 0 or -1. */
int sw_write_atomic(const char *path, const char *data, size_t len);
/** Reads a whole file (NUL-terminated, *len without the NUL); NULL on failure. */
char *sw_read_file(const char *path, size_t *len);
/** Monotonic wall clock in seconds. */
double sw_now(void);

#endif
