/* replay.c - runs a fuzz target's LLVMFuzzerTestOneInput on every file of the directories (or
   files) given on the command line, in name order, so that `make check` turns every committed
   corpus file, crash reproducers included, into a regression test without libFuzzer. A
   failing input aborts inside the target; the name printed last is the culprit. */
#define _POSIX_C_SOURCE 200809L /* opendir, readdir, stat */

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

/* Corpus files are small by construction (libFuzzer's -max_len); this only guards the driver. */
#define REPLAY_MAX_FILE ((size_t)64 << 20)

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_FILE);
    if (buf == NULL) {
        fclose(f);
        return 1;
    }
    size_t n = fread(buf, 1, REPLAY_MAX_FILE, f);
    int bad = ferror(f) != 0;
    fclose(f);
    if (!bad) {
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
        /* A copy of exactly n bytes, so that ASan catches a read one past the input. */
        uint8_t *exact = malloc(n ? n : 1);
        if (exact == NULL) {
            bad = 1;
        } else {
            memcpy(exact, buf, n);
            (void)LLVMFuzzerTestOneInput(exact, n);
            free(exact);
        }
    }
    free(buf);
    return bad;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open directory %s\n", dir);
        return 1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (grown == NULL) {
                bad = 1;
                break;
            }
            names = grown;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL) {
            bad = 1;
            break;
        }
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (names != NULL) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (!bad && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            bad |= run_file(names[i]);
            (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
            bad = 1;
        } else if (S_ISDIR(st.st_mode)) {
            bad = run_dir(argv[i], &count);
        } else {
            bad = run_file(argv[i]);
            count++;
        }
    }
    if (count == 0 && !bad) {
        fprintf(stderr, "replay: no corpus files found\n");
        bad = 1;
    }
    printf("replay %s: %zu inputs, %s\n", argc > 0 ? argv[0] : "?", count, bad ? "FAILED" : "ok");
    return bad ? 1 : 0;
}
