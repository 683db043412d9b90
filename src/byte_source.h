/*
 * byte_source.h - the input of the dataset loaders (byte_source.c): a memory buffer or a file,
 * raw or gzip/zlib-compressed (detected from the first bytes), read sequentially, rewindable.
 * Files are read through the file layer (fileio.h). Never installed.
 */
#ifndef FAN_BYTE_SOURCE_H
#define FAN_BYTE_SOURCE_H

#include "fileio.h"

#ifndef ZLIB_CONST
#define ZLIB_CONST /* next_in points to const, so const buffers need no cast */
#endif
#include <zlib.h>

/** Which compressed formats a source recognises by its first bytes. */
typedef enum fan__detect {
    FAN__DETECT_NONE = 0,     /* always raw (CIFAR: records start with a free label byte) */
    FAN__DETECT_GZIP = 1,     /* gzip only (text could begin with a valid zlib header) */
    FAN__DETECT_GZIP_ZLIB = 2 /* gzip or zlib (IDX, whose raw form starts with two zeros) */
} fan__detect;

typedef struct fan__source {
    fan_allocator al; /* zlib's state and the file chunk */
    char *err;        /* the call's message buffer */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    fan__file file;   /* a file source when file.fd >= 0 */
    uint64_t in_size; /* input bytes: buffer or file length */
    uint64_t consumed; /* raw: bytes delivered so far */
    uint64_t produced; /* compressed: bytes inflated so far */
    uint64_t limit;    /* compressed: most bytes to inflate, 0 for no limit (FAN_E_LIMIT) */
    int gz, z_ready, z_end;
    z_stream zs;
    uint8_t *chunk; /* file + compressed: compressed input */
} fan__source;

/** Opens len bytes at buf. */
fan_status fan__source_open_mem(fan__source *s, const void *buf, size_t len, fan__detect d,
                                const fan_allocator *al, char *err);
/** Opens the regular file at path (borrowed until the source is closed). */
fan_status fan__source_open_file(fan__source *s, const fan__fileio *io, const char *path,
                                 fan__detect d, const fan_allocator *al, char *err);
/** Releases everything; reports a failure to close the file (message in s->err). */
fan_status fan__source_close(fan__source *s);
/** Starts again from the first byte. */
fan_status fan__source_rewind(fan__source *s);
/** Most bytes the rest of the source can deliver (compressed input: by zlib's 1032:1 bound). */
uint64_t fan__source_bound(const fan__source *s);
/** Reads up to cap bytes; *got = 0 only at the end of the data. */
fan_status fan__source_read_some(fan__source *s, uint8_t *dst, size_t cap, size_t *got);
/** Reads exactly len bytes (FAN_E_FORMAT if the data ends first). */
fan_status fan__source_read_exact(fan__source *s, uint8_t *dst, size_t len);
/** Succeeds only at the exact end of the data: no trailing bytes, a complete gzip stream. */
fan_status fan__source_finish(fan__source *s);
/**
 * Checks, without storing them, that exactly len more bytes follow (then the end of the data):
 * how a loader proves that compressed input holds what its header declares before it allocates
 * for it. Uses one 64 KiB scratch block from the allocator.
 */
fan_status fan__source_verify_rest(fan__source *s, uint64_t len);

#endif /* FAN_BYTE_SOURCE_H */
