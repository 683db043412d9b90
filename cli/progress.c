/*
 * progress.c - what a long run shows while it runs: on a terminal one bar line with an ETA,
 * redrawn in place; otherwise (a pipe, a file, a batch job's log) a plain line every tenth of the
 * run, so logs stay readable. Both go to stderr; results go to stdout. --log FILE keeps every
 * step's numbers as CSV. Fed by the library's fan_progress callback.
 */
#define _POSIX_C_SOURCE 200809L

#include "cli.h"

#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Seconds between redraws of the bar (a terminal gains nothing from more). */
#define BAR_PERIOD 0.1
/* Characters of the bar itself. */
#define BAR_WIDTH 28
/* Plain lines: one per tenth of the run, at most one per PLAIN_GAP seconds (a short run prints
   none), and at least one every PLAIN_PERIOD seconds. */
#define PLAIN_PARTS 10
#define PLAIN_GAP 2.0
#define PLAIN_PERIOD 60.0

static const char LOG_HEADER[] =
    "phase,step,epoch,batch,samples,loss,mean_loss,train_loss,val_loss,val_acc,test_loss,test_acc,seconds\n";

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int progress_init(progress *p, const char *mode_name, size_t total, const char *log_path,
                  size_t log_every)
{
    memset(p, 0, sizeof *p);
    if (strcmp(mode_name, "auto") == 0) p->mode = isatty(fileno(stderr)) ? PROGRESS_BAR : PROGRESS_PLAIN;
    else if (strcmp(mode_name, "bar") == 0) p->mode = PROGRESS_BAR;
    else if (strcmp(mode_name, "plain") == 0) p->mode = PROGRESS_PLAIN;
    else if (strcmp(mode_name, "none") == 0) p->mode = PROGRESS_NONE;
    else return 0;
    p->t0 = p->last = cli_now();
    p->total = total;
    p->phase = "";
    p->log_every = log_every ? log_every : 1;
    if (log_path != NULL) {
        p->log = fopen(log_path, "w");
        if (p->log == NULL) return -1;
        fputs(LOG_HEADER, p->log);
    }
    return 1;
}

void progress_phase(progress *p, const char *phase)
{
    p->done += p->call_steps;
    p->call_steps = 0;
    p->phase = phase;
}

static void fmt_time(double s, char *buf, size_t cap)
{
    if (!(s >= 0.0) || s > 359999.0) {
        snprintf(buf, cap, "--:--");
        return;
    }
    const unsigned t = (unsigned)lround(s);
    if (t >= 3600) snprintf(buf, cap, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%u:%02u", t / 60, t % 60);
}

void progress_clear(progress *p)
{
    if (p->bar_open) {
        fputc('\n', stderr);
        p->bar_open = 0;
    }
}

static void show(progress *p, size_t step, double loss, double now, int last)
{
    const double frac = p->total ? (double)step / (double)p->total : 0.0;
    const double elapsed = now - p->t0;
    char eta[32], took[32];
    fmt_time(step ? elapsed * ((double)p->total - (double)step) / (double)step : -1.0, eta, sizeof eta);
    fmt_time(elapsed, took, sizeof took);
    if (p->mode == PROGRESS_BAR) {
        if (!last && now - p->last < BAR_PERIOD) return;
        char bar[BAR_WIDTH + 1];
        const size_t fill = (size_t)(frac * BAR_WIDTH + 0.5);
        for (size_t i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = '\0';
        fprintf(stderr, "\r%-6s [%s] %3.0f%% %zu/%zu loss %.4f, %s, ETA %s  ", p->phase, bar,
                100.0 * frac, step, p->total, loss, took, eta);
        p->bar_open = 1;
    } else if (p->mode == PROGRESS_PLAIN) {
        const size_t part = p->total ? (size_t)(frac * PLAIN_PARTS) : 0,
                     before = p->total ? (size_t)((double)(step - 1) / (double)p->total * PLAIN_PARTS) : 0;
        if ((part == before || now - p->last < PLAIN_GAP) && now - p->last < PLAIN_PERIOD) return;
        fprintf(stderr, "%s: %3.0f%% (%zu/%zu steps), loss %.4f, %s elapsed, ETA %s\n", p->phase,
                100.0 * frac, step, p->total, loss, took, eta);
    }
    fflush(stderr);
    p->last = now;
}

int progress_cb(const fan_progress *fp, void *user)
{
    progress *p = user;
    p->call_steps = fp->step;
    const size_t step = p->done + fp->step;
    const double now = cli_now();
    if (p->log != NULL && (fp->step % p->log_every == 0 || fp->end_of_epoch))
        fprintf(p->log, "%s,%zu,%zu,%zu,%zu,%.9g,%.9g,,,,,,%.3f\n", p->phase, step, fp->epoch,
                fp->batch_in_epoch, fp->samples, fp->loss, fp->epoch_loss, now - p->t0);
    if (p->mode != PROGRESS_NONE) show(p, step, fp->loss, now, step == p->total);
    return 0;
}

static void log_number(FILE *f, double v)
{
    if (isnan(v)) fputc(',', f);
    else fprintf(f, ",%.9g", v);
}

void progress_log_eval(progress *p, size_t epoch, double train_loss, double val_loss,
                       double val_acc, double test_loss, double test_acc)
{
    if (p->log == NULL) return;
    fprintf(p->log, "eval,%zu,%zu,,,,", p->done + p->call_steps, epoch);
    log_number(p->log, train_loss);
    log_number(p->log, val_loss);
    log_number(p->log, val_acc);
    log_number(p->log, test_loss);
    log_number(p->log, test_acc);
    fprintf(p->log, ",%.3f\n", cli_now() - p->t0);
}

int progress_close(progress *p)
{
    progress_clear(p);
    if (p->log == NULL) return 0;
    const int bad = ferror(p->log) != 0;
    const int closed = fclose(p->log);
    p->log = NULL;
    return bad || closed != 0 ? -1 : 0;
}
