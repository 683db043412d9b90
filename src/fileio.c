/*
 * fileio.c - the library's only calls to the file system (see fileio.h): POSIX descriptors,
 * retried on EINTR and short transfers, each operation first offered to the test hook.
 */
#define _XOPEN_SOURCE 700 /* POSIX 2008 with XSI: O_CLOEXEC, O_NOFOLLOW, fchmod, XSI strerror_r */

#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h> /* flock: BSD, also on Linux and macOS; see file_replace.c */
#include <sys/stat.h>
#include <unistd.h>

/* Largest single read(2) or write(2): Linux transfers at most 0x7ffff000 bytes per call. */
#define IO_MAX_TRANSFER ((size_t)1 << 30)
/* A permission mask of mode_t (set-user-ID, set-group-ID, sticky and the nine rwx bits). */
#define PERM_BITS 07777u

fan_status fan__io_fail(char *err, fan_status status, int e, const char *what, const char *path)
{
    char reason[128];
    /* strerror_r, not strerror: the latter may use a static buffer shared by all threads. */
    if (e == 0 || strerror_r(e, reason, sizeof reason) != 0)
        (void)snprintf(reason, sizeof reason, "error %d", e);
    return fan__fail(err, status, "%s %s: %s", what, path, reason);
}

/* Asks the hook whether op on path must fail; returns the errno to fail with, or 0. */
static int injected(const fan__fileio *io, fan__fileop op, const char *path)
{
    if (io == NULL || io->fault == NULL) return 0;
    return io->fault(io->ud, op, path);
}

/* Records e as the file's last error and formats the message. */
static fan_status file_fail(fan__file *f, char *err, int e, const char *what)
{
    f->sys_errno = e;
    return fan__io_fail(err, FAN_E_IO, e, what, f->path);
}

static void fill_stat(fan__stat *out, const struct stat *st)
{
    memset(out, 0, sizeof *out);
    out->is_reg = S_ISREG(st->st_mode);
    out->is_dir = S_ISDIR(st->st_mode);
    out->is_link = S_ISLNK(st->st_mode);
    out->size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
    out->mode = (unsigned)st->st_mode & PERM_BITS;
    out->dev = (uint64_t)st->st_dev;
    out->ino = (uint64_t)st->st_ino;
    out->uid = (unsigned long)st->st_uid;
    out->nlink = (uint64_t)st->st_nlink;
}

fan_status fan__file_open(fan__file *f, const fan__fileio *io, const char *path,
                          fan__open_mode mode, char *err)
{
    f->fd = -1;
    f->sys_errno = 0;
    f->io = io;
    f->path = path;
    int e = injected(io, FAN__FOP_OPEN, path);
    if (e != 0) return file_fail(f, err, e, "cannot open");
    int flags = O_CLOEXEC;
    switch (mode) {
    case FAN__OPEN_READ:
        /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. It changes
           nothing for regular files, the only kind read further. */
        flags |= O_RDONLY | O_NOCTTY | O_NONBLOCK;
        break;
    case FAN__OPEN_CREATE_NEW: flags |= O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW; break;
    case FAN__OPEN_EXISTING_RW: flags |= O_RDWR | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK; break;
    case FAN__OPEN_DIRECTORY: flags |= O_RDONLY | O_DIRECTORY; break;
    }
    int fd;
    do {
        /* 0666: the process umask then gives what fopen(path, "w") would create. */
        fd = open(path, flags, 0666);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return file_fail(f, err, errno, "cannot open");
    f->fd = fd;
    return FAN_OK;
}

fan_status fan__file_open_regular(fan__file *f, const fan__fileio *io, const char *path,
                                  uint64_t *size, char *err)
{
    FAN__CHECK(fan__file_open(f, io, path, FAN__OPEN_READ, err));
    fan__stat st;
    fan_status s = fan__file_stat(f, &st, err);
    if (s == FAN_OK && !st.is_reg)
        s = fan__fail(err, FAN_E_IO, "cannot read %s: it is %s, not a regular file", path,
                      st.is_dir ? "a directory" : "a FIFO, device or socket");
    if (s != FAN_OK) {
        (void)fan__file_close(f, NULL);
        return s;
    }
    *size = st.size;
    return FAN_OK;
}

fan_status fan__file_read(fan__file *f, void *buf, size_t cap, size_t *got, char *err)
{
    *got = 0;
    int e = injected(f->io, FAN__FOP_READ, f->path);
    if (e != 0) return file_fail(f, err, e, "cannot read");
    unsigned char *p = buf;
    size_t done = 0;
    while (done < cap) {
        size_t want = cap - done < IO_MAX_TRANSFER ? cap - done : IO_MAX_TRANSFER;
        ssize_t n = read(f->fd, p + done, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return file_fail(f, err, errno, "cannot read");
        if (n == 0) break;
        done += (size_t)n;
    }
    *got = done;
    return FAN_OK;
}

fan_status fan__file_write(fan__file *f, const void *buf, size_t n, char *err)
{
    int e = injected(f->io, FAN__FOP_WRITE, f->path);
    if (e != 0) return file_fail(f, err, e, "cannot write");
    const unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        size_t want = n - done < IO_MAX_TRANSFER ? n - done : IO_MAX_TRANSFER;
        ssize_t w = write(f->fd, p + done, want);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return file_fail(f, err, errno, "cannot write");
        /* write(2) returns 0 only for a zero count; treat it as a full device anyway. */
        if (w == 0) return file_fail(f, err, ENOSPC, "cannot write");
        done += (size_t)w;
    }
    return FAN_OK;
}

fan_status fan__file_sync(fan__file *f, char *err)
{
    int e = injected(f->io, FAN__FOP_FSYNC, f->path);
    if (e == 0 && fsync(f->fd) != 0) e = errno;
    return e != 0 ? file_fail(f, err, e, "cannot sync") : FAN_OK;
}

fan_status fan__file_stat(fan__file *f, fan__stat *out, char *err)
{
    int e = injected(f->io, FAN__FOP_STAT, f->path);
    struct stat st;
    if (e == 0 && fstat(f->fd, &st) != 0) e = errno;
    if (e != 0) return file_fail(f, err, e, "cannot stat");
    fill_stat(out, &st);
    return FAN_OK;
}

fan_status fan__file_lock(fan__file *f, char *err)
{
    int e = injected(f->io, FAN__FOP_LOCK, f->path);
    if (e == 0) {
        int rc;
        do {
            rc = flock(f->fd, LOCK_EX);
        } while (rc != 0 && errno == EINTR);
        if (rc != 0) e = errno;
    }
    return e != 0 ? file_fail(f, err, e, "cannot lock") : FAN_OK;
}

fan_status fan__file_chmod(fan__file *f, unsigned mode, char *err)
{
    int e = injected(f->io, FAN__FOP_CHMOD, f->path);
    if (e == 0 && fchmod(f->fd, (mode_t)(mode & PERM_BITS)) != 0) e = errno;
    return e != 0 ? file_fail(f, err, e, "cannot set the permissions of") : FAN_OK;
}

fan_status fan__file_rewind(fan__file *f, char *err)
{
    int e = injected(f->io, FAN__FOP_SEEK, f->path);
    if (e == 0 && lseek(f->fd, 0, SEEK_SET) != 0) e = errno;
    return e != 0 ? file_fail(f, err, e, "cannot seek in") : FAN_OK;
}

fan_status fan__file_close(fan__file *f, char *err)
{
    if (f->fd < 0) return FAN_OK;
    int e = injected(f->io, FAN__FOP_CLOSE, f->path);
    /* close(2) is not retried on EINTR: on Linux the descriptor is released whatever it
       returns, and a retry could close a descriptor another thread has just been given. */
    if (close(f->fd) != 0 && e == 0) e = errno == EINTR ? 0 : errno;
    f->fd = -1;
    return e != 0 ? file_fail(f, err, e, "cannot close") : FAN_OK;
}

fan_status fan__path_lstat(const fan__fileio *io, const char *path, fan__stat *out, int *exists,
                           char *err)
{
    *exists = 0;
    int e = injected(io, FAN__FOP_STAT, path);
    struct stat st;
    if (e == 0 && lstat(path, &st) != 0) {
        if (errno == ENOENT) return FAN_OK;
        e = errno;
    }
    if (e != 0) return fan__io_fail(err, FAN_E_IO, e, "cannot stat", path);
    fill_stat(out, &st);
    *exists = 1;
    return FAN_OK;
}

fan_status fan__path_readlink(const fan__fileio *io, const char *path, const fan_allocator *al,
                              char **target, char *err)
{
    *target = NULL;
    int e = injected(io, FAN__FOP_READLINK, path);
    if (e != 0) return fan__io_fail(err, FAN_E_IO, e, "cannot read the link", path);
    /* The link's length is not trusted (it can change, and some file systems report 0): grow
       the buffer until the whole target fits with room to spare. */
    for (size_t cap = 256;; cap *= 2) {
        char *buf = fan__alloc(al, cap);
        FAN__FAIL_IF(err, buf == NULL, FAN_E_NOMEM, "cannot allocate %zu bytes for a link", cap);
        ssize_t n = readlink(path, buf, cap);
        if (n < 0) {
            e = errno;
            fan__free(al, buf);
            return fan__io_fail(err, FAN_E_IO, e, "cannot read the link", path);
        }
        if ((size_t)n < cap) {
            buf[n] = '\0';
            *target = buf;
            return FAN_OK;
        }
        fan__free(al, buf);
        FAN__FAIL_IF(err, cap >= ((size_t)1 << 20), FAN_E_IO, "the link %s is too long", path);
    }
}

fan_status fan__path_rename(const fan__fileio *io, const char *from, const char *to, char *err)
{
    int e = injected(io, FAN__FOP_RENAME, to);
    if (e == 0 && rename(from, to) != 0) e = errno;
    return e != 0 ? fan__io_fail(err, FAN_E_IO, e, "cannot rename a temporary file to", to)
                  : FAN_OK;
}

fan_status fan__path_unlink(const fan__fileio *io, const char *path, char *err)
{
    int e = injected(io, FAN__FOP_UNLINK, path);
    if (e == 0 && unlink(path) != 0) e = errno;
    return e != 0 ? fan__io_fail(err, FAN_E_IO, e, "cannot remove", path) : FAN_OK;
}
