/* byte_source.c - sequential input of the dataset loaders: memory or file, raw or compressed
   (see byte_source.h). */
#include "byte_source.h"

#include <limits.h>
#include <string.h>

/* zlib's technical details: deflate cannot compress better than 1032:1, so a compressed input
   of k bytes never expands to more than 1032 * k. */
#define DEFLATE_MAX_RATIO 1032u
/* inflateInit2 window bits: 15 for the 32 KiB window, + 32 to accept gzip and zlib headers. */
#define INFLATE_WINDOW_BITS (15 + 32)
/* Gzip member identification bytes (RFC 1952, 2.3.1). */
#define GZIP_ID1 0x1f
#define GZIP_ID2 0x8b
/* zlib header (RFC 1950, 2.2): method 8 (deflate), window <= 32K, check bits, no dictionary. */
#define ZLIB_METHOD_DEFLATE 8
#define ZLIB_MAX_WINDOW_CODE 7
#define ZLIB_FDICT 0x20
#define ZLIB_CHECK_MOD 31
/* Bytes read from a file (or handed to inflate, or inflated for nothing) at a time. */
#define IO_CHUNK 65536u

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return fan__calloc(opaque, items, size);
}

static void z_free(voidpf opaque, voidpf p) { fan__free(opaque, p); }

static int is_compressed(const uint8_t *b, size_t len, fan__detect d)
{
    if (d == FAN__DETECT_NONE || len < 2) return 0;
    if (b[0] == GZIP_ID1 && b[1] == GZIP_ID2) return 1;
    return d == FAN__DETECT_GZIP_ZLIB && (b[0] & 0x0f) == ZLIB_METHOD_DEFLATE &&
           (b[0] >> 4) <= ZLIB_MAX_WINDOW_CODE && (b[1] & ZLIB_FDICT) == 0 &&
           ((unsigned)b[0] << 8 | b[1]) % ZLIB_CHECK_MOD == 0;
}

static fan_status z_start(fan__source *s)
{
    s->zs.zalloc = z_alloc;
    s->zs.zfree = z_free;
    s->zs.opaque = &s->al;
    int rc = inflateInit2(&s->zs, INFLATE_WINDOW_BITS);
    FAN__FAIL_IF(s->err, rc == Z_MEM_ERROR, FAN_E_NOMEM, "out of memory for inflate");
    FAN__FAIL_IF(s->err, rc != Z_OK, FAN_E_IO, "inflateInit2 failed (%d)", rc);
    s->z_ready = 1;
    return FAN_OK;
}

fan_status fan__source_close(fan__source *s)
{
    if (s->z_ready) (void)inflateEnd(&s->zs);
    s->z_ready = 0;
    fan__free(&s->al, s->chunk);
    s->chunk = NULL;
    return fan__file_close(&s->file, s->err);
}

static void source_init(fan__source *s, const fan_allocator *al, char *err)
{
    memset(s, 0, sizeof *s);
    s->al = *al;
    s->err = err;
    s->file.fd = -1;
}

fan_status fan__source_open_mem(fan__source *s, const void *buf, size_t len, fan__detect d,
                                const fan_allocator *al, char *err)
{
    source_init(s, al, err);
    s->mem = buf;
    s->mem_len = len;
    s->in_size = len;
    s->gz = is_compressed(s->mem, len, d);
    if (s->gz) return z_start(s);
    return FAN_OK;
}

fan_status fan__source_open_file(fan__source *s, const fan__fileio *io, const char *path,
                                 fan__detect d, const fan_allocator *al, char *err)
{
    source_init(s, al, err);
    FAN__CHECK(fan__file_open_regular(&s->file, io, path, &s->in_size, err));
    uint8_t head[2];
    size_t got = 0;
    fan_status st = FAN_OK;
    if (d != FAN__DETECT_NONE) {
        st = fan__file_read(&s->file, head, sizeof head, &got, err);
        if (st == FAN_OK) st = fan__file_rewind(&s->file, err);
    }
    if (st == FAN_OK) s->gz = is_compressed(head, got, d);
    if (st == FAN_OK && s->gz) {
        s->chunk = fan__alloc(&s->al, IO_CHUNK);
        st = s->chunk == NULL ? fan__fail(err, FAN_E_NOMEM, "out of memory for a read buffer")
                              : z_start(s);
    }
    if (st != FAN_OK) {
        s->err = NULL; /* keep the first failure's message */
        (void)fan__source_close(s);
    }
    return st;
}

fan_status fan__source_rewind(fan__source *s)
{
    if (s->file.fd >= 0) FAN__CHECK(fan__file_rewind(&s->file, s->err));
    s->mem_pos = 0;
    s->consumed = 0;
    s->produced = 0;
    if (s->gz) {
        FAN__FAIL_IF(s->err, inflateReset(&s->zs) != Z_OK, FAN_E_FORMAT, "inflateReset failed");
        s->zs.avail_in = 0;
        s->z_end = 0;
    }
    return FAN_OK;
}

uint64_t fan__source_bound(const fan__source *s)
{
    if (!s->gz) return s->in_size - s->consumed;
    return s->in_size > UINT64_MAX / DEFLATE_MAX_RATIO ? UINT64_MAX
                                                        : s->in_size * DEFLATE_MAX_RATIO;
}

/* Gives inflate more input; leaves avail_in 0 at the end of the input. */
static fan_status z_refill(fan__source *s)
{
    if (s->file.fd < 0) {
        size_t left = s->mem_len - s->mem_pos, n = left < IO_CHUNK ? left : IO_CHUNK;
        s->zs.next_in = s->mem + s->mem_pos;
        s->zs.avail_in = (uInt)n;
        s->mem_pos += n;
        return FAN_OK;
    }
    size_t n = 0;
    FAN__CHECK(fan__file_read(&s->file, s->chunk, IO_CHUNK, &n, s->err));
    s->zs.next_in = s->chunk;
    s->zs.avail_in = (uInt)n;
    return FAN_OK;
}

static fan_status gz_read(fan__source *s, uint8_t *dst, size_t cap, size_t *got)
{
    size_t done = 0;
    while (done < cap && !s->z_end) {
        if (s->zs.avail_in == 0) {
            FAN__CHECK(z_refill(s));
            if (s->zs.avail_in == 0) break; /* input ended early: the caller sees a short read */
        }
        size_t want = cap - done;
        if (want > UINT_MAX) want = UINT_MAX;
        s->zs.next_out = dst + done;
        s->zs.avail_out = (uInt)want;
        uInt in_before = s->zs.avail_in;
        int rc = inflate(&s->zs, Z_NO_FLUSH);
        size_t produced = want - s->zs.avail_out;
        done += produced;
        s->produced += produced;
        FAN__FAIL_IF(s->err, s->limit != 0 && s->produced > s->limit, FAN_E_LIMIT,
                     "the decompressed input exceeds the load budget of %llu bytes "
                     "(max_load_bytes)", (unsigned long long)s->limit);
        if (rc == Z_STREAM_END) {
            /* Concatenated gzip members are one valid file (RFC 1952, 2.2): continue with the
               next member if input remains, and let trailing garbage fail as bad data. */
            if (s->zs.avail_in == 0) FAN__CHECK(z_refill(s));
            if (s->zs.avail_in == 0) {
                s->z_end = 1;
            } else {
                FAN__FAIL_IF(s->err, inflateReset(&s->zs) != Z_OK, FAN_E_FORMAT,
                             "inflateReset failed");
            }
        } else if (rc == Z_MEM_ERROR) {
            return fan__fail(s->err, FAN_E_NOMEM, "out of memory in inflate");
        } else if (rc == Z_BUF_ERROR) {
            FAN__FAIL_IF(s->err, produced == 0 && s->zs.avail_in == in_before && in_before > 0,
                         FAN_E_FORMAT, "inflate made no progress");
        } else if (rc != Z_OK) {
            return fan__fail(s->err, FAN_E_FORMAT, "corrupt compressed data (zlib status %d)",
                             rc);
        }
    }
    *got = done;
    return FAN_OK;
}

fan_status fan__source_read_some(fan__source *s, uint8_t *dst, size_t cap, size_t *got)
{
    if (s->gz) return gz_read(s, dst, cap, got);
    size_t n;
    if (s->file.fd < 0) {
        size_t left = s->mem_len - s->mem_pos;
        n = cap < left ? cap : left;
        if (n > 0) memcpy(dst, s->mem + s->mem_pos, n);
        s->mem_pos += n;
    } else {
        FAN__CHECK(fan__file_read(&s->file, dst, cap, &n, s->err));
    }
    s->consumed += n;
    *got = n;
    return FAN_OK;
}

fan_status fan__source_read_exact(fan__source *s, uint8_t *dst, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t got;
        FAN__CHECK(fan__source_read_some(s, dst + done, len - done, &got));
        FAN__FAIL_IF(s->err, got == 0, FAN_E_FORMAT, "truncated: %zu of %zu bytes", done, len);
        done += got;
    }
    return FAN_OK;
}

fan_status fan__source_finish(fan__source *s)
{
    uint8_t extra;
    size_t got;
    FAN__CHECK(fan__source_read_some(s, &extra, 1, &got));
    FAN__FAIL_IF(s->err, got != 0, FAN_E_FORMAT, "trailing bytes after the data");
    FAN__FAIL_IF(s->err, s->gz && !s->z_end, FAN_E_FORMAT, "truncated gzip stream");
    return FAN_OK;
}

fan_status fan__source_verify_rest(fan__source *s, uint64_t len)
{
    uint8_t *scratch = fan__alloc(&s->al, IO_CHUNK);
    FAN__FAIL_IF(s->err, scratch == NULL, FAN_E_NOMEM, "out of memory for a read buffer");
    fan_status st = FAN_OK;
    for (uint64_t done = 0; st == FAN_OK && done < len;) {
        const size_t want = len - done < IO_CHUNK ? (size_t)(len - done) : IO_CHUNK;
        size_t got = 0;
        st = fan__source_read_some(s, scratch, want, &got);
        if (st == FAN_OK && got == 0)
            st = fan__fail(s->err, FAN_E_FORMAT, "truncated: the data holds %llu of the %llu "
                           "bytes its header declares", (unsigned long long)done,
                           (unsigned long long)len);
        done += got;
    }
    fan__free(&s->al, scratch);
    return st == FAN_OK ? fan__source_finish(s) : st;
}
