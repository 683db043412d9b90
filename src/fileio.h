/*
 * fileio.h - the one layer through which the library touches the file system (fileio.c), and
 * atomic replacement of a file built on it (file_replace.c). Never installed.
 *
 * Every open, read, write, fsync, rename, close, stat, unlink, lock, readlink, chmod and seek of
 * the library goes through these functions. Each takes a `const fan__fileio *`: NULL means the
 * plain system calls, which is what every public function passes. Tests pass a table whose
 * fault hook fails the Nth operation, in the manner of SQLite's test VFS. The hook travels with
 * the call, not in a global: the shipped object code is the code under test, and nothing in the
 * library is mutable process state (see docs/robustness.md, "I/O fault injection").
 */
#ifndef FAN_FILEIO_H
#define FAN_FILEIO_H

#include "internal.h"

/** The file operations the fault hook sees. Values are stable for the tests' tables. */
typedef enum fan__fileop {
    FAN__FOP_OPEN = 0,
    FAN__FOP_READ = 1,
    FAN__FOP_WRITE = 2,
    FAN__FOP_FSYNC = 3,
    FAN__FOP_RENAME = 4,
    FAN__FOP_CLOSE = 5,
    FAN__FOP_STAT = 6,
    FAN__FOP_UNLINK = 7,
    FAN__FOP_LOCK = 8,
    FAN__FOP_READLINK = 9,
    FAN__FOP_CHMOD = 10,
    FAN__FOP_SEEK = 11
} fan__fileop;

/**
 * Test hook table. fault(ud, op, path) is called before every operation; a non-zero return is
 * an errno value, and the operation then fails with it without being performed. Close is the
 * exception: the descriptor is always released (so that a fault never leaks one) and the close
 * is then reported as failed. path is the file the operation concerns (for read, write, fsync,
 * close, lock, chmod and seek: the path the file was opened under).
 */
typedef struct fan__fileio {
    int (*fault)(void *ud, fan__fileop op, const char *path);
    void *ud;
} fan__fileio;

/** An open file. path is borrowed from the opener and must outlive the handle. */
typedef struct fan__file {
    int fd; /* -1 when closed */
    int sys_errno; /* errno of the last failed operation, injected or real (0 if none) */
    const fan__fileio *io;
    const char *path;
} fan__file;

/** What the library needs to know from stat(2). */
typedef struct fan__stat {
    int is_reg, is_dir, is_link;
    uint64_t size;
    unsigned mode; /* permission bits (07777) */
    uint64_t dev, ino;
    unsigned long uid;
    uint64_t nlink;
} fan__stat;

/** How fan__file_open opens. */
typedef enum fan__open_mode {
    FAN__OPEN_READ = 0,        /* existing file, read-only; never blocks on a FIFO */
    FAN__OPEN_CREATE_NEW = 1,  /* read-write, created (0666 & ~umask); fails if it exists or is a link */
    FAN__OPEN_EXISTING_RW = 2, /* read-write, existing, not through a symbolic link */
    FAN__OPEN_DIRECTORY = 3    /* a directory, read-only, for fsync */
} fan__open_mode;

/**
 * Writes "what path: reason" into err (may be NULL), the reason being the system's text for
 * errno value e (obtained thread-safely), and returns status.
 */
fan_status fan__io_fail(char *err, fan_status status, int e, const char *what, const char *path);

/** Opens path. On failure f->fd is -1 and err says why (FAN_E_IO). */
fan_status fan__file_open(fan__file *f, const fan__fileio *io, const char *path,
                          fan__open_mode mode, char *err);
/**
 * Opens an existing regular file for reading and reports its size. A directory, FIFO, device
 * or socket fails with FAN_E_IO and a message saying what it is (and is closed again).
 */
fan_status fan__file_open_regular(fan__file *f, const fan__fileio *io, const char *path,
                                  uint64_t *size, char *err);
/** Reads up to cap bytes, retrying short reads; *got < cap only at the end of the file. */
fan_status fan__file_read(fan__file *f, void *buf, size_t cap, size_t *got, char *err);
/** Writes all n bytes (retrying short writes). */
fan_status fan__file_write(fan__file *f, const void *buf, size_t n, char *err);
fan_status fan__file_sync(fan__file *f, char *err);
fan_status fan__file_stat(fan__file *f, fan__stat *st, char *err);
/** Exclusive advisory lock (flock), waiting for a holder to release it. */
fan_status fan__file_lock(fan__file *f, char *err);
fan_status fan__file_chmod(fan__file *f, unsigned mode, char *err);
/** Moves to the start of the file. */
fan_status fan__file_rewind(fan__file *f, char *err);
/** Closes f (always releasing the descriptor); a no-op returning FAN_OK if it is closed. */
fan_status fan__file_close(fan__file *f, char *err);

/** lstat(2): *exists is 0 (and FAN_OK returned) when path does not exist. */
fan_status fan__path_lstat(const fan__fileio *io, const char *path, fan__stat *st, int *exists,
                           char *err);
/** readlink(2) into a NUL-terminated string from al (caller frees). */
fan_status fan__path_readlink(const fan__fileio *io, const char *path, const fan_allocator *al,
                              char **target, char *err);
fan_status fan__path_rename(const fan__fileio *io, const char *from, const char *to, char *err);
fan_status fan__path_unlink(const fan__fileio *io, const char *path, char *err);

/* ---- atomic replacement (file_replace.c) ------------------------------------------------- */

/**
 * A file being replaced: fan__replace_begin resolves symbolic links to the final target,
 * creates the temporary file next to it (one fixed name per target, see file_replace.c) with the
 * target's permission bits (or 0666 & ~umask for a new file), and holds an exclusive lock on it.
 * The caller writes through `file`, then calls fan__replace_commit (fsync, rename over the
 * target, fsync of the directory) or fan__replace_abort (removes the temporary file).
 */
typedef struct fan__replace {
    const fan__fileio *io;
    const fan_allocator *al;
    char *target; /* the file that will be replaced, symbolic links resolved */
    char *dir;    /* its directory, for the fsync after the rename */
    char *tmp;    /* the temporary file */
    fan__file file;
} fan__replace;

/** Starts replacing path. On failure nothing is left open or allocated and err says why. */
fan_status fan__replace_begin(fan__replace *r, const fan__fileio *io, const fan_allocator *al,
                              const char *path, char *err);
/** Makes the written bytes the content of the target. Always releases r. */
fan_status fan__replace_commit(fan__replace *r, char *err);
/** Abandons the replacement: the target keeps its old content. Always releases r. */
void fan__replace_abort(fan__replace *r);

/* ---- the file side of saving and loading (io.c), with the file layer named ----------------- */

/** fan__save_atomic (internal.h) through the file layer io (NULL: the system). */
fan_status fan__save_atomic_io(const char *path, fan__emit_fn emit, const void *ctx,
                               const fan_allocator *al, char *err, const fan__fileio *io);
/** fan__read_file (internal.h) through the file layer io (NULL: the system). */
fan_status fan__read_file_io(const char *path, uint64_t max_bytes, const fan_allocator *al,
                             unsigned char **data, size_t *len, char *err,
                             const fan__fileio *io);

#endif /* FAN_FILEIO_H */
