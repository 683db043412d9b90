/*
 * file_replace.c - replacing a file atomically: readers see the old content or the new one,
 * never a mix, and a crash at any point leaves the old file intact.
 *
 * Protocol (all through fileio.c):
 *  1. Resolve symbolic links from the given path to the final target, so that a save through a
 *     link replaces the file it points to and keeps the link. A target that exists must be a
 *     regular file; its permission bits are kept.
 *  2. The temporary file has one fixed name per target, next to it (rename(2) only replaces
 *     atomically within a file system): "." + up to 230 bytes of the target's name + "." + 16
 *     hex digits of a hash of the whole name + ".fantmp", at most 255 bytes (NAME_MAX of Linux,
 *     macOS and the BSDs) whatever the length of the target's name.
 *  3. The saver creates it with O_EXCL (mode 0666 & ~umask, as fopen would give a new file; then
 *     the old file's bits if there is one) and holds an exclusive flock(2) on it until the rename
 *     is done. The lock is released by the kernel when its holder dies, so a later save that
 *     finds the name taken takes the lock and, if the name still refers to the file it locked,
 *     knows the file is an orphan of a killed saver: it removes it and starts again. A live saver
 *     is waited for instead, so two saves of one target serialise rather than interleave.
 *  4. fsync of the file, rename over the target, fsync of the directory (otherwise the rename
 *     itself may be lost in a power failure).
 *
 * Why a fixed name rather than mkstemp's random one: a killed saver leaves at most one
 * temporary file per target, and the next save of that target reuses the name and so removes
 * it, without scanning the directory. Random names left 75 orphans after 100 kills, which no
 * later save could tell apart from another process's live file.
 *
 * Caveat: flock is advisory and per open file description (not per process, unlike fcntl
 * locks, so two threads of one process exclude each other too). On NFS, where Linux emulates
 * flock with fcntl locks, two threads of one process saving the same target at once may both
 * proceed; each still writes a complete file of its own before its rename.
 */
#define _XOPEN_SOURCE 700 /* geteuid */

#include "fileio.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* Symbolic links followed before giving up, as Linux's MAXSYMLINKS (ELOOP beyond). */
#define MAX_LINK_HOPS 40
/* The temporary name's parts: "." prefix "." hash TMP_SUFFIX, within NAME_MAX = 255. */
#define NAME_MAX_PORTABLE 255u
#define TMP_SUFFIX ".fantmp"
#define TMP_HASH_DIGITS 16u
#define TMP_PREFIX_MAX (NAME_MAX_PORTABLE - 2u - TMP_HASH_DIGITS - (sizeof TMP_SUFFIX - 1u))
/* Attempts to take the temporary name before concluding that others keep taking it. Each
   failed attempt means another saver of the same target made progress. */
#define ACQUIRE_TRIES 64
/* FNV-1a 64-bit parameters (Fowler, Noll, Vo). */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static char *dup_range(const fan_allocator *al, const char *s, size_t n)
{
    char *d = fan__alloc(al, n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

/* Length of the directory part of path including its last '/', 0 if there is none. */
static size_t dir_prefix_len(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash == NULL ? 0 : (size_t)(slash - path) + 1;
}

/* Follows symbolic links from path; *target receives the final name (from al). *exists and
   *mode describe the final file (a dangling link's target does not exist yet). */
static fan_status resolve(fan__replace *r, const char *path, int *exists, unsigned *mode,
                          char *err)
{
    char *cur = dup_range(r->al, path, strlen(path));
    FAN__FAIL_IF(err, cur == NULL, FAN_E_NOMEM, "cannot allocate a path");
    for (int hops = 0;; hops++) {
        fan__stat st;
        fan_status s = fan__path_lstat(r->io, cur, &st, exists, err);
        if (s == FAN_OK && *exists && st.is_link) {
            if (hops == MAX_LINK_HOPS) {
                s = fan__fail(err, FAN_E_IO, "cannot save %s: more than %d symbolic links",
                              path, MAX_LINK_HOPS);
            } else {
                char *link = NULL;
                s = fan__path_readlink(r->io, cur, r->al, &link, err);
                if (s == FAN_OK) {
                    /* A relative link is relative to the directory holding the link. */
                    const size_t keep = link[0] == '/' ? 0 : dir_prefix_len(cur),
                                 ll = strlen(link);
                    char *next = fan__alloc(r->al, keep + ll + 1);
                    if (next == NULL) {
                        s = fan__fail(err, FAN_E_NOMEM, "cannot allocate a path");
                    } else {
                        memcpy(next, cur, keep);
                        memcpy(next + keep, link, ll + 1);
                        fan__free(r->al, cur);
                        cur = next;
                    }
                    fan__free(r->al, link);
                    if (s == FAN_OK) continue;
                }
            }
        } else if (s == FAN_OK && *exists && !st.is_reg) {
            s = fan__fail(err, FAN_E_IO, "cannot save over %s: it is %s, not a regular file", cur,
                          st.is_dir ? "a directory" : "a FIFO, device or socket");
        }
        if (s != FAN_OK) {
            fan__free(r->al, cur);
            return s;
        }
        *mode = *exists ? st.mode : 0;
        r->target = cur;
        return FAN_OK;
    }
}

/* Builds r->dir and r->tmp from r->target. */
static fan_status name_temporary(fan__replace *r, char *err)
{
    const char *t = r->target;
    const size_t pre = dir_prefix_len(t), blen = strlen(t + pre);
    FAN__FAIL_IF(err, blen == 0, FAN_E_IO, "cannot save to %s: it names a directory", t);
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < blen; i++) h = (h ^ (unsigned char)t[pre + i]) * FNV_PRIME;
    const size_t keep = blen < TMP_PREFIX_MAX ? blen : TMP_PREFIX_MAX;
    const size_t tlen = pre + 1 + keep + 1 + TMP_HASH_DIGITS + sizeof TMP_SUFFIX;
    r->tmp = fan__alloc(r->al, tlen);
    /* The directory for the final fsync: "." for a bare name, "/" for a name in the root. */
    r->dir = pre == 0 ? dup_range(r->al, ".", 1) : dup_range(r->al, t, pre > 1 ? pre - 1 : 1);
    FAN__FAIL_IF(err, r->tmp == NULL || r->dir == NULL, FAN_E_NOMEM, "cannot allocate a path");
    char *p = r->tmp;
    memcpy(p, t, pre);
    p += pre;
    *p++ = '.';
    memcpy(p, t + pre, keep);
    p += keep;
    *p++ = '.';
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < TMP_HASH_DIGITS; i++) *p++ = hex[(h >> (60 - 4 * i)) & 0xf];
    memcpy(p, TMP_SUFFIX, sizeof TMP_SUFFIX);
    return FAN_OK;
}

/* Takes the temporary name: created by this call, locked, and still the file the name refers
   to. See the protocol above. */
static fan_status acquire(fan__replace *r, char *err)
{
    fan__file *f = &r->file;
    for (int attempt = 0; attempt < ACQUIRE_TRIES; attempt++) {
        int fresh = 1;
        fan_status s = fan__file_open(f, r->io, r->tmp, FAN__OPEN_CREATE_NEW, err);
        if (s != FAN_OK && f->sys_errno == EEXIST) {
            fresh = 0;
            s = fan__file_open(f, r->io, r->tmp, FAN__OPEN_EXISTING_RW, err);
            if (s != FAN_OK && f->sys_errno == ENOENT) continue; /* removed meanwhile */
        }
        FAN__CHECK(s);
        fan__stat mine, named;
        int exists = 0;
        s = fan__file_lock(f, err);
        if (s == FAN_OK) s = fan__file_stat(f, &mine, err);
        if (s == FAN_OK) s = fan__path_lstat(r->io, r->tmp, &named, &exists, err);
        if (s == FAN_OK && exists && named.dev == mine.dev && named.ino == mine.ino) {
            if (fresh) return FAN_OK;
            /* An orphan: its saver died holding the lock (the kernel released it), or it is a
               file of ours that a failed cleanup left. Anything else with the reserved name is
               not ours to remove. */
            if (!mine.is_reg || mine.nlink != 1 || mine.uid != (unsigned long)geteuid())
                s = fan__fail(err, FAN_E_IO, "cannot save %s: %s exists and is not a temporary "
                              "file of this user", r->target, r->tmp);
            else
                s = fan__path_unlink(r->io, r->tmp, err);
        }
        /* Also when the name now refers to another file: a previous holder renamed or removed
           the one this call locked. Either way, start again. */
        const fan_status c = fan__file_close(f, err);
        FAN__CHECK(s);
        FAN__CHECK(c);
    }
    return fan__fail(err, FAN_E_IO, "cannot save %s: other saves keep taking %s", r->target,
                     r->tmp);
}

static void release(fan__replace *r)
{
    fan__free(r->al, r->tmp);
    fan__free(r->al, r->dir);
    fan__free(r->al, r->target);
    r->tmp = r->dir = r->target = NULL;
}

fan_status fan__replace_begin(fan__replace *r, const fan__fileio *io, const fan_allocator *al,
                              const char *path, char *err)
{
    memset(r, 0, sizeof *r);
    r->io = io;
    r->al = al;
    r->file.fd = -1;
    FAN__FAIL_IF(err, path[0] == '\0', FAN_E_IO, "cannot save: the path is empty");
    int exists = 0;
    unsigned mode = 0;
    FAN__CHECK(resolve(r, path, &exists, &mode, err));
    fan_status s = name_temporary(r, err);
    if (s == FAN_OK) s = acquire(r, err);
    /* Before any byte is written: a private target's data is never readable by others. */
    if (s == FAN_OK && exists) {
        s = fan__file_chmod(&r->file, mode, err);
        if (s != FAN_OK) {
            (void)fan__path_unlink(io, r->tmp, NULL);
            (void)fan__file_close(&r->file, NULL);
        }
    }
    if (s != FAN_OK) release(r);
    return s;
}

/* fsync of the directory holding the target, so that the rename is durable. */
static fan_status sync_dir(fan__replace *r, char *err)
{
    fan__file d;
    FAN__CHECK(fan__file_open(&d, r->io, r->dir, FAN__OPEN_DIRECTORY, err));
    fan_status s = fan__file_sync(&d, err);
    /* Some file systems cannot sync a directory; there is nothing more to do there. */
    if (s != FAN_OK && (d.sys_errno == EINVAL || d.sys_errno == ENOTSUP)) s = FAN_OK;
    const fan_status c = fan__file_close(&d, s == FAN_OK ? err : NULL);
    return s != FAN_OK ? s : c;
}

fan_status fan__replace_commit(fan__replace *r, char *err)
{
    fan_status s = fan__file_sync(&r->file, err);
    /* The lock is held through the rename: a concurrent saver must not take the name for an
       orphan between this file's last write and its rename. */
    if (s == FAN_OK) s = fan__path_rename(r->io, r->tmp, r->target, err);
    if (s != FAN_OK) {
        (void)fan__path_unlink(r->io, r->tmp, NULL);
        (void)fan__file_close(&r->file, NULL);
        release(r);
        return s;
    }
    /* From here on the target holds the new content; a failure only weakens durability. */
    fan__msg why_buf;
    char *why = fan__msg_init(&why_buf);
    s = fan__file_close(&r->file, why);
    if (s == FAN_OK) s = sync_dir(r, why);
    if (s != FAN_OK)
        s = fan__fail(err, s, "%s was replaced, but may not survive a power failure: %s",
                      r->target, why);
    release(r);
    return s;
}

void fan__replace_abort(fan__replace *r)
{
    if (r->file.fd >= 0) {
        (void)fan__path_unlink(r->io, r->tmp, NULL);
        (void)fan__file_close(&r->file, NULL);
    }
    release(r);
}
