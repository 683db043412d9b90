/* dataset_load.c - loaders for IDX (raw or gzip), CIFAR binary batches and CSV (raw or gzip),
   from files or memory. Every size read from a header is checked against the documented limits
   and against what the input can still hold before anything is allocated from it. */
#include "dataset_internal.h"

#define ZLIB_CONST /* makes next_in a pointer to const, so const buffers need no cast */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

/* zlib's technical details: deflate cannot compress better than 1032:1, so a compressed input
   of k bytes never expands to more than 1032 * k. */
#define DEFLATE_MAX_RATIO 1032u
/* inflateInit2 window bits: 15 for the 32 KiB window, + 32 to accept gzip and zlib headers. */
#define INFLATE_WINDOW_BITS (15 + 32)
/* Gzip member identification bytes (RFC 1952, 2.3.1). */
#define GZIP_ID1 0x1f
#define GZIP_ID2 0x8b
/* Bytes read from a file (or handed to inflate) at a time. */
#define IO_CHUNK 65536u

/* IDX (LeCun et al.): magic is 0, 0, element type, number of dimensions; then big-endian
   32-bit dimension sizes. */
#define IDX_TYPE_U8 0x08
#define IDX_IMAGE_DIMS 3
#define IDX_LABEL_DIMS 1
/* The header documents at least 10 classes for IDX sets, so a subset missing the last digits
   still has the class count of its family. */
#define IDX_MIN_CLASSES 10

/* CIFAR binary version (Krizhevsky 2009): label byte(s), then 32x32x3 channel-planar pixels. */
#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE * CIFAR_CHANNELS)
#define CIFAR10_CLASSES 10
#define CIFAR100_CLASSES 100
#define CIFAR100_COARSE_CLASSES 20

/* Longest CSV field accepted (a double needs fewer than 30 characters). */
#define CSV_MAX_FIELD 128
/* A CSV row may not have more feature columns than a network may have inputs. */
#define CSV_MAX_COLUMNS ((size_t)FAN_MAX_WIDTH + 1)
/* Initial capacity of the row buffer, grown by doubling on the first row. */
#define CSV_ROW_START 64

/* ---- byte sources: memory or file, raw or gzip ------------------------------------------- */

typedef struct src {
    fan_allocator al; /* for zlib's state and the file chunk */
    const uint8_t *mem;
    size_t mem_len, mem_pos;
    FILE *fp;
    uint64_t in_size;  /* input bytes: buffer or file length */
    uint64_t consumed; /* raw mode: bytes delivered so far */
    int gz, z_ready, z_end;
    z_stream zs;
    uint8_t *chunk; /* file + gzip: compressed input */
} src;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    return fan__calloc(opaque, items, size);
}

static void z_free(voidpf opaque, voidpf p) { fan__free(opaque, p); }

/* Which compressed formats a loader recognises by their first bytes. Text could begin with
   bytes that pass the zlib header check ("8" is a valid CMF byte), so only IDX, whose raw form
   starts with two zero bytes, accepts zlib streams; CIFAR records start with a free label byte
   and are always read raw. */
typedef enum detect { DETECT_NONE = 0, DETECT_GZIP = 1, DETECT_GZIP_ZLIB = 2 } detect;

/* zlib header (RFC 1950, 2.2): method 8 (deflate), window <= 32K, check bits, no dictionary. */
#define ZLIB_METHOD_DEFLATE 8
#define ZLIB_MAX_WINDOW_CODE 7
#define ZLIB_FDICT 0x20
#define ZLIB_CHECK_MOD 31

static int is_compressed(const uint8_t *b, size_t len, detect d)
{
    if (d == DETECT_NONE || len < 2) return 0;
    if (b[0] == GZIP_ID1 && b[1] == GZIP_ID2) return 1;
    return d == DETECT_GZIP_ZLIB && (b[0] & 0x0f) == ZLIB_METHOD_DEFLATE &&
           (b[0] >> 4) <= ZLIB_MAX_WINDOW_CODE && (b[1] & ZLIB_FDICT) == 0 &&
           ((unsigned)b[0] << 8 | b[1]) % ZLIB_CHECK_MOD == 0;
}

static fan_status z_start(src *s)
{
    s->zs.zalloc = z_alloc;
    s->zs.zfree = z_free;
    s->zs.opaque = &s->al;
    int rc = inflateInit2(&s->zs, INFLATE_WINDOW_BITS);
    FAN__FAIL_IF(NULL, rc == Z_MEM_ERROR, FAN_E_NOMEM, "out of memory for inflate");
    FAN__FAIL_IF(NULL, rc != Z_OK, FAN_E_IO, "inflateInit2 failed (%d)", rc);
    s->z_ready = 1;
    return FAN_OK;
}

static void src_close(src *s)
{
    if (s->z_ready) (void)inflateEnd(&s->zs);
    s->z_ready = 0;
    fan__free(&s->al, s->chunk);
    s->chunk = NULL;
    if (s->fp != NULL) (void)fclose(s->fp);
    s->fp = NULL;
}

static fan_status src_open_mem(src *s, const void *buf, size_t len, detect d,
                               const fan_allocator *al)
{
    memset(s, 0, sizeof *s);
    s->al = *al;
    s->mem = buf;
    s->mem_len = len;
    s->in_size = len;
    s->gz = is_compressed(s->mem, len, d);
    if (s->gz) return z_start(s);
    return FAN_OK;
}

static fan_status src_open_file(src *s, const char *path, detect d, const fan_allocator *al)
{
    memset(s, 0, sizeof *s);
    s->al = *al;
    s->fp = fopen(path, "rb");
    FAN__FAIL_IF(NULL, s->fp == NULL, FAN_E_IO, "cannot open %s", path);
    long size = -1;
    if (fseek(s->fp, 0, SEEK_END) == 0) size = ftell(s->fp);
    uint8_t head[2];
    size_t got = 0;
    if (size >= 0 && fseek(s->fp, 0, SEEK_SET) == 0) {
        got = fread(head, 1, sizeof head, s->fp);
        if (fseek(s->fp, 0, SEEK_SET) != 0) size = -1;
    }
    if (size < 0 || ferror(s->fp)) {
        src_close(s);
        return fan__fail(NULL, FAN_E_IO, "cannot read %s", path);
    }
    s->in_size = (uint64_t)size;
    s->gz = is_compressed(head, got, d);
    if (!s->gz) return FAN_OK;
    s->chunk = fan__alloc(&s->al, IO_CHUNK);
    fan_status st = s->chunk == NULL ? FAN_E_NOMEM : z_start(s);
    if (st != FAN_OK) src_close(s);
    return st;
}

/* Most bytes the rest of the source can deliver. */
static uint64_t src_bound(const src *s)
{
    if (!s->gz) return s->in_size - s->consumed;
    return s->in_size > UINT64_MAX / DEFLATE_MAX_RATIO ? UINT64_MAX
                                                        : s->in_size * DEFLATE_MAX_RATIO;
}

/* Gives inflate more input; leaves avail_in 0 at the end of the input. */
static fan_status z_refill(src *s)
{
    if (s->fp == NULL) {
        size_t left = s->mem_len - s->mem_pos, n = left < IO_CHUNK ? left : IO_CHUNK;
        s->zs.next_in = s->mem + s->mem_pos;
        s->zs.avail_in = (uInt)n;
        s->mem_pos += n;
        return FAN_OK;
    }
    size_t n = fread(s->chunk, 1, IO_CHUNK, s->fp);
    FAN__FAIL_IF(NULL, n == 0 && ferror(s->fp), FAN_E_IO, "read error");
    s->zs.next_in = s->chunk;
    s->zs.avail_in = (uInt)n;
    return FAN_OK;
}

static fan_status gz_read(src *s, uint8_t *dst, size_t cap, size_t *got)
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
        if (rc == Z_STREAM_END) {
            /* Concatenated gzip members are one valid file (RFC 1952, 2.2): continue with the
               next member if input remains, and let trailing garbage fail as bad data. */
            if (s->zs.avail_in == 0) FAN__CHECK(z_refill(s));
            if (s->zs.avail_in == 0) {
                s->z_end = 1;
            } else {
                FAN__FAIL_IF(NULL, inflateReset(&s->zs) != Z_OK, FAN_E_FORMAT, "inflateReset");
            }
        } else if (rc == Z_MEM_ERROR) {
            return fan__fail(NULL, FAN_E_NOMEM, "out of memory in inflate");
        } else if (rc == Z_BUF_ERROR) {
            FAN__FAIL_IF(NULL, produced == 0 && s->zs.avail_in == in_before && in_before > 0,
                         FAN_E_FORMAT, "inflate made no progress");
        } else if (rc != Z_OK) {
            return fan__fail(NULL, FAN_E_FORMAT, "corrupt compressed data (%d)", rc);
        }
    }
    *got = done;
    return FAN_OK;
}

/* Reads up to cap bytes; *got = 0 only at the end of the data. */
static fan_status src_read_some(src *s, uint8_t *dst, size_t cap, size_t *got)
{
    if (s->gz) return gz_read(s, dst, cap, got);
    size_t n;
    if (s->fp == NULL) {
        size_t left = s->mem_len - s->mem_pos;
        n = cap < left ? cap : left;
        if (n > 0) memcpy(dst, s->mem + s->mem_pos, n);
        s->mem_pos += n;
    } else {
        n = fread(dst, 1, cap, s->fp);
        FAN__FAIL_IF(NULL, n < cap && ferror(s->fp), FAN_E_IO, "read error");
    }
    s->consumed += n;
    *got = n;
    return FAN_OK;
}

static fan_status src_read_exact(src *s, uint8_t *dst, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t got;
        FAN__CHECK(src_read_some(s, dst + done, len - done, &got));
        FAN__FAIL_IF(NULL, got == 0, FAN_E_FORMAT, "truncated: %zu of %zu bytes", done, len);
        done += got;
    }
    return FAN_OK;
}

/* Succeeds only at the exact end of the data: no trailing bytes, a complete gzip stream. */
static fan_status src_finish(src *s)
{
    uint8_t extra;
    size_t got;
    FAN__CHECK(src_read_some(s, &extra, 1, &got));
    FAN__FAIL_IF(NULL, got != 0, FAN_E_FORMAT, "trailing bytes after the data");
    FAN__FAIL_IF(NULL, s->gz && !s->z_end, FAN_E_FORMAT, "truncated gzip stream");
    return FAN_OK;
}

/* ---- IDX --------------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads an IDX header of n_dims dimensions of u8 elements into dims. */
static fan_status idx_header(src *s, unsigned n_dims, uint32_t *dims)
{
    uint8_t h[4 + 4 * IDX_IMAGE_DIMS];
    FAN__CHECK(src_read_exact(s, h, 4 + 4 * (size_t)n_dims));
    FAN__FAIL_IF(NULL, h[0] != 0 || h[1] != 0 || h[2] != IDX_TYPE_U8 || h[3] != n_dims,
                 FAN_E_FORMAT, "bad IDX magic 0x%08x, expected 0x%08x", (unsigned)be32(h),
                 IDX_TYPE_U8 << 8 | n_dims);
    for (unsigned d = 0; d < n_dims; d++) {
        dims[d] = be32(h + 4 + 4 * d);
        FAN__FAIL_IF(NULL, dims[d] == 0, FAN_E_FORMAT, "IDX dimension %u is 0", d);
    }
    return FAN_OK;
}

static fan_status load_idx(fan_dataset **out, src *img, src *lab, const fan_allocator *al)
{
    uint32_t idims[IDX_IMAGE_DIMS], ldims[IDX_LABEL_DIMS];
    FAN__CHECK(idx_header(img, IDX_IMAGE_DIMS, idims));
    FAN__CHECK(idx_header(lab, IDX_LABEL_DIMS, ldims));
    size_t n = idims[0], rows = idims[1], cols = idims[2], dim, total;
    FAN__FAIL_IF(NULL, !fan__mul_ok(rows, cols, &dim) || !fan__mul_ok(n, dim, &total),
                 FAN_E_LIMIT, "IDX image size %zu x %zu x %zu overflows", n, rows, cols);
    FAN__FAIL_IF(NULL, n > FAN_MAX_SAMPLES, FAN_E_LIMIT, "%zu images exceed FAN_MAX_SAMPLES", n);
    FAN__FAIL_IF(NULL, ldims[0] != n, FAN_E_FORMAT, "%zu images but %u labels", n,
                 (unsigned)ldims[0]);
    FAN__FAIL_IF(NULL, total > src_bound(img) || n > src_bound(lab), FAN_E_FORMAT,
                 "header sizes exceed what the input can hold");

    fan_dataset *ds;
    FAN__CHECK(fan__dataset_new(&ds, n, dim, IDX_MIN_CLASSES, 1, al, NULL));
    /* The u8 labels are read into the start of the int32 array and widened from the end, so
       that no byte is overwritten before it is read (labels[i] starts at byte 4i >= i). */
    uint8_t *raw = (uint8_t *)ds->labels;
    fan_status s = src_read_exact(lab, raw, n);
    if (s == FAN_OK) s = src_finish(lab);
    if (s == FAN_OK) s = src_read_exact(img, ds->u8, total);
    if (s == FAN_OK) s = src_finish(img);
    if (s != FAN_OK) {
        fan_dataset_free(ds);
        return s;
    }
    size_t max_label = 0;
    for (size_t i = n; i-- > 0;) {
        uint8_t v = raw[i];
        if (v > max_label) max_label = v;
        ds->labels[i] = v;
    }
    ds->classes = max_label + 1 > IDX_MIN_CLASSES ? max_label + 1 : IDX_MIN_CLASSES;
    ds->width = cols;
    ds->height = rows;
    ds->channels = 1;
    *out = ds;
    return FAN_OK;
}

fan_status fan_dataset_load_idx(fan_dataset **out, const char *images_path,
                                const char *labels_path, const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, images_path == NULL || labels_path == NULL, FAN_E_NULL, "path is NULL");
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    src img, lab;
    FAN__CHECK(src_open_file(&img, images_path, DETECT_GZIP_ZLIB, &al));
    fan_status s = src_open_file(&lab, labels_path, DETECT_GZIP_ZLIB, &al);
    if (s == FAN_OK) {
        s = load_idx(out, &img, &lab, &al);
        src_close(&lab);
    }
    src_close(&img);
    return s;
}

fan_status fan_dataset_load_idx_mem(fan_dataset **out, const void *images, size_t images_len,
                                    const void *labels, size_t labels_len,
                                    const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, images == NULL || labels == NULL, FAN_E_NULL, "buffer is NULL");
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    src img, lab;
    FAN__CHECK(src_open_mem(&img, images, images_len, DETECT_GZIP_ZLIB, &al));
    fan_status s = src_open_mem(&lab, labels, labels_len, DETECT_GZIP_ZLIB, &al);
    if (s == FAN_OK) {
        s = load_idx(out, &img, &lab, &al);
        src_close(&lab);
    }
    src_close(&img);
    return s;
}

/* ---- CIFAR ------------------------------------------------------------------------------- */

/* Validates and stores one record's labels and pixels as sample i. */
static fan_status cifar_record(fan_dataset *ds, size_t i, const uint8_t *rec, size_t n_label)
{
    if (n_label == 2) {
        FAN__FAIL_IF(NULL, rec[0] >= CIFAR100_COARSE_CLASSES, FAN_E_LABEL,
                     "record %zu: coarse label %u >= %d", i, rec[0], CIFAR100_COARSE_CLASSES);
    }
    uint8_t label = rec[n_label - 1];
    FAN__FAIL_IF(NULL, label >= ds->classes, FAN_E_LABEL, "record %zu: label %u >= %zu", i,
                 label, ds->classes);
    ds->labels[i] = label;
    memcpy(ds->u8 + i * CIFAR_PIXELS, rec + n_label, CIFAR_PIXELS);
    return FAN_OK;
}

static fan_status cifar_new(fan_dataset **out, size_t n, size_t n_label, const fan_allocator *al)
{
    FAN__FAIL_IF(NULL, n == 0, FAN_E_FORMAT, "no CIFAR records");
    FAN__FAIL_IF(NULL, n > FAN_MAX_SAMPLES, FAN_E_LIMIT, "%zu records exceed FAN_MAX_SAMPLES", n);
    FAN__CHECK(fan__dataset_new(out, n, CIFAR_PIXELS,
                                n_label == 1 ? CIFAR10_CLASSES : CIFAR100_CLASSES, 1, al, NULL));
    (*out)->width = CIFAR_SIDE;
    (*out)->height = CIFAR_SIDE;
    (*out)->channels = CIFAR_CHANNELS;
    return FAN_OK;
}

fan_status fan_dataset_load_cifar_mem(fan_dataset **out, const void *buf, size_t len,
                                      size_t n_label_bytes, const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, buf == NULL, FAN_E_NULL, "buf is NULL");
    FAN__FAIL_IF(NULL, n_label_bytes != 1 && n_label_bytes != 2, FAN_E_INVALID,
                 "n_label_bytes must be 1 or 2");
    const size_t rec = n_label_bytes + CIFAR_PIXELS;
    FAN__FAIL_IF(NULL, len % rec != 0, FAN_E_FORMAT, "length %zu is not whole %zu-byte records",
                 len, rec);
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    fan_dataset *ds;
    FAN__CHECK(cifar_new(&ds, len / rec, n_label_bytes, &al));
    const uint8_t *p = buf;
    for (size_t i = 0; i < ds->n; i++) {
        fan_status s = cifar_record(ds, i, p + i * rec, n_label_bytes);
        if (s != FAN_OK) {
            fan_dataset_free(ds);
            return s;
        }
    }
    *out = ds;
    return FAN_OK;
}

/* Reads the records of one open raw file into ds from sample *next on. */
static fan_status cifar_read_file(fan_dataset *ds, src *f, size_t n_label, size_t count,
                                  size_t *next)
{
    uint8_t rec[2 + CIFAR_PIXELS];
    for (size_t r = 0; r < count; r++) {
        FAN__CHECK(src_read_exact(f, rec, n_label + CIFAR_PIXELS));
        FAN__CHECK(cifar_record(ds, (*next)++, rec, n_label));
    }
    return src_finish(f);
}

fan_status fan_dataset_load_cifar(fan_dataset **out, const char *const *paths, size_t n_paths,
                                  size_t n_label_bytes, const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, paths == NULL, FAN_E_NULL, "paths is NULL");
    FAN__FAIL_IF(NULL, n_paths == 0, FAN_E_INVALID, "no paths");
    FAN__FAIL_IF(NULL, n_label_bytes != 1 && n_label_bytes != 2, FAN_E_INVALID,
                 "n_label_bytes must be 1 or 2");
    for (size_t k = 0; k < n_paths; k++) {
        FAN__FAIL_IF(NULL, paths[k] == NULL, FAN_E_NULL, "paths[%zu] is NULL", k);
    }
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    const size_t rec = n_label_bytes + CIFAR_PIXELS;

    /* First pass: file sizes only, so that the dataset is allocated once at its exact size. */
    size_t n = 0;
    for (size_t k = 0; k < n_paths; k++) {
        src f;
        FAN__CHECK(src_open_file(&f, paths[k], DETECT_NONE, &al));
        uint64_t size = f.in_size;
        src_close(&f);
        FAN__FAIL_IF(NULL, size % rec != 0, FAN_E_FORMAT, "%s is not whole records", paths[k]);
        FAN__FAIL_IF(NULL, size / rec > FAN_MAX_SAMPLES - n, FAN_E_LIMIT,
                     "records exceed FAN_MAX_SAMPLES");
        n += (size_t)(size / rec);
    }
    fan_dataset *ds;
    FAN__CHECK(cifar_new(&ds, n, n_label_bytes, &al));
    size_t next = 0;
    fan_status s = FAN_OK;
    for (size_t k = 0; k < n_paths && s == FAN_OK; k++) {
        src f;
        s = src_open_file(&f, paths[k], DETECT_NONE, &al);
        if (s != FAN_OK) break;
        s = f.in_size % rec != 0 || f.in_size / rec > n - next
                ? fan__fail(NULL, FAN_E_IO, "%s changed while loading", paths[k])
                : cifar_read_file(ds, &f, n_label_bytes, (size_t)(f.in_size / rec), &next);
        src_close(&f);
    }
    if (s == FAN_OK && next != n) s = fan__fail(NULL, FAN_E_IO, "files changed while loading");
    if (s != FAN_OK) {
        fan_dataset_free(ds);
        return s;
    }
    *out = ds;
    return FAN_OK;
}

/* ---- CSV --------------------------------------------------------------------------------- */

static int is_digit(int c) { return c >= '0' && c <= '9'; }

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

/* 1 if f[0..len) equals the lower-case word w, ignoring case. */
static int word_is(const char *f, size_t len, const char *w)
{
    size_t i = 0;
    for (; i < len && w[i] != '\0'; i++) {
        if (lower((unsigned char)f[i]) != w[i]) return 0;
    }
    return i == len && w[i] == '\0';
}

/*
 * Parses a decimal number (sign, digits, optional fraction, optional exponent) without strtod,
 * whose decimal point follows the process locale. "nan", "inf" and "infinity" parse as
 * non-finite values for the caller to reject; anything else that is not a number is
 * FAN_E_FORMAT. Up to 19 significant digits are kept; the result is exact when the digits fit
 * in 53 bits and the power of ten in [1e-22, 1e22] (both exact doubles), and otherwise within an
 * ulp or two, far below float precision.
 */
static fan_status parse_number(const char *f, size_t len, double *out)
{
    size_t i = 0;
    int neg = 0;
    if (i < len && (f[i] == '+' || f[i] == '-')) neg = f[i++] == '-';
    if (word_is(f + i, len - i, "nan")) {
        *out = NAN;
        return FAN_OK;
    }
    if (word_is(f + i, len - i, "inf") || word_is(f + i, len - i, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return FAN_OK;
    }
    const uint64_t mant_cap = (UINT64_MAX - 9) / 10;
    uint64_t mant = 0;
    long exp10 = 0;
    int any = 0;
    for (; i < len && is_digit(f[i]); i++, any = 1) {
        if (mant <= mant_cap) {
            mant = mant * 10 + (uint64_t)(f[i] - '0');
        } else {
            exp10++;
        }
    }
    if (i < len && f[i] == '.') {
        for (i++; i < len && is_digit(f[i]); i++, any = 1) {
            if (mant <= mant_cap) {
                mant = mant * 10 + (uint64_t)(f[i] - '0');
                exp10--;
            }
        }
    }
    FAN__FAIL_IF(NULL, !any, FAN_E_FORMAT, "not a number");
    if (i < len && (f[i] == 'e' || f[i] == 'E')) {
        int eneg = 0;
        long e = 0;
        i++;
        if (i < len && (f[i] == '+' || f[i] == '-')) eneg = f[i++] == '-';
        FAN__FAIL_IF(NULL, i >= len || !is_digit(f[i]), FAN_E_FORMAT, "bad exponent");
        /* Exponents beyond any double's range are clamped; the value saturates the same. */
        for (; i < len && is_digit(f[i]); i++) {
            if (e < 100000) e = e * 10 + (f[i] - '0');
        }
        exp10 += eneg ? -e : e;
    }
    FAN__FAIL_IF(NULL, i != len, FAN_E_FORMAT, "not a number");
    double v;
    const uint64_t exact_mant = (uint64_t)1 << 53;
    const long exact_exp = 22;
    if (mant == 0) {
        v = 0.0;
    } else if (mant <= exact_mant && exp10 >= -exact_exp && exp10 <= exact_exp) {
        double p = 1.0;
        for (long k = 0; k < (exp10 < 0 ? -exp10 : exp10); k++) p *= 10.0;
        v = exp10 < 0 ? (double)mant / p : (double)mant * p;
    } else {
        v = (double)mant * pow(10.0, (double)exp10);
    }
    *out = neg ? -v : v;
    return FAN_OK;
}

/* What the first pass learns and the second pass checks. */
typedef struct csv_shape {
    size_t rows, cols, label_col;
    int32_t max_label;
} csv_shape;

/* Scratch shared by both passes. */
typedef struct csv_work {
    const fan_allocator *al;
    uint8_t *chunk;
    double *row;
    size_t row_cap;
} csv_work;

static fan_status csv_grow_row(csv_work *w)
{
    size_t cap = w->row_cap == 0 ? CSV_ROW_START : 2 * w->row_cap;
    FAN__FAIL_IF(NULL, w->row_cap >= CSV_MAX_COLUMNS, FAN_E_LIMIT, "too many CSV columns");
    double *row = fan__calloc(w->al, cap, sizeof *row);
    FAN__FAIL_IF(NULL, row == NULL, FAN_E_NOMEM, "out of memory for a CSV row");
    if (w->row_cap > 0) memcpy(row, w->row, w->row_cap * sizeof *row);
    fan__free(w->al, w->row);
    w->row = row;
    w->row_cap = cap;
    return FAN_OK;
}

/* Validates one complete row of `cols` values; stores it as sample shape->rows in fill. */
static fan_status csv_row(csv_shape *sh, const double *row, size_t cols, size_t label_column,
                          fan_dataset *fill)
{
    if (sh->cols == 0) {
        FAN__FAIL_IF(NULL, cols < 2, FAN_E_FORMAT, "a CSV row needs a label and a value");
        sh->label_col = label_column == FAN_CSV_LAST_COLUMN ? cols - 1 : label_column;
        FAN__FAIL_IF(NULL, sh->label_col >= cols, FAN_E_INVALID,
                     "label column %zu, but rows have %zu columns", label_column, cols);
        sh->cols = cols;
    }
    FAN__FAIL_IF(NULL, cols != sh->cols, FAN_E_FORMAT, "row %zu has %zu columns, not %zu",
                 sh->rows + 1, cols, sh->cols);
    FAN__FAIL_IF(NULL, sh->rows >= FAN_MAX_SAMPLES, FAN_E_LIMIT, "rows exceed FAN_MAX_SAMPLES");
    double lab = row[sh->label_col];
    FAN__FAIL_IF(NULL, !(lab >= 0.0) || lab >= (double)FAN_MAX_CLASSES || lab != floor(lab),
                 FAN_E_LABEL, "row %zu: label %g is not an integer in [0, %u)", sh->rows + 1, lab,
                 FAN_MAX_CLASSES);
    if (fill != NULL) {
        FAN__FAIL_IF(NULL, sh->rows >= fill->n, FAN_E_IO, "input changed while loading");
        float *x = fill->f32 + sh->rows * fill->dim;
        for (size_t j = 0; j < cols; j++) {
            if (j != sh->label_col) *x++ = (float)row[j];
        }
        fill->labels[sh->rows] = (int32_t)lab;
    } else {
        for (size_t j = 0; j < cols; j++) {
            /* Compared in double: converting an out-of-range double to float is undefined. */
            FAN__FAIL_IF(NULL, j != sh->label_col && !(fabs(row[j]) <= FLT_MAX),
                         FAN_E_NONFINITE, "row %zu, column %zu is not a finite float",
                         sh->rows + 1, j);
        }
        if ((int32_t)lab > sh->max_label) sh->max_label = (int32_t)lab;
    }
    sh->rows++;
    return FAN_OK;
}

/* One pass over the CSV text: validates (fill NULL) or stores rows (fill set). */
static fan_status csv_pass(src *s, csv_work *w, size_t label_column, int skip_header,
                           csv_shape *sh, fan_dataset *fill)
{
    char field[CSV_MAX_FIELD];
    size_t flen = 0, col = 0, avail = 0, pos = 0;
    int in_header = skip_header != 0, space_after = 0;
    for (;;) {
        int c = -1;
        if (pos == avail) {
            FAN__CHECK(src_read_some(s, w->chunk, IO_CHUNK, &avail));
            pos = 0;
        }
        if (pos < avail) c = w->chunk[pos++];
        if (in_header) {
            if (c == '\n') in_header = 0;
            if (c == -1) break;
            continue;
        }
        if (c == ',' || c == '\n' || c == -1) {
            if (c == ',' || flen > 0 || col > 0) {
                FAN__FAIL_IF(NULL, flen == 0, FAN_E_FORMAT, "empty field in row %zu",
                             sh->rows + 1);
                if (col == w->row_cap) FAN__CHECK(csv_grow_row(w));
                FAN__CHECK(parse_number(field, flen, &w->row[col]));
                col++;
            }
            if (c != ',' && col > 0) {
                FAN__CHECK(csv_row(sh, w->row, col, label_column, fill));
                col = 0;
            }
            flen = 0;
            space_after = 0;
            if (c == -1) break;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            space_after = flen > 0;
        } else {
            FAN__FAIL_IF(NULL, space_after, FAN_E_FORMAT, "space inside a field");
            FAN__FAIL_IF(NULL, flen == CSV_MAX_FIELD, FAN_E_FORMAT, "field too long");
            field[flen++] = (char)c;
        }
    }
    return src_finish(s);
}

/* Loads CSV through `open`, called once per pass. */
typedef fan_status (*csv_open_fn)(src *s, const void *arg, size_t len, const fan_allocator *al);

static fan_status open_path(src *s, const void *arg, size_t len, const fan_allocator *al)
{
    (void)len;
    return src_open_file(s, arg, DETECT_GZIP, al);
}

static fan_status load_csv(fan_dataset **out, csv_open_fn open, const void *arg, size_t len,
                           size_t label_column, int skip_header, const fan_allocator *alloc)
{
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    csv_work w = {&al, NULL, NULL, 0};
    csv_shape sh = {0, 0, 0, -1};
    fan_dataset *ds = NULL;
    src s;
    fan_status st = FAN_OK;
    w.chunk = fan__alloc(&al, IO_CHUNK);
    if (w.chunk == NULL) return FAN_E_NOMEM;

    /* Pass 1 validates everything and finds the size; pass 2 fills an exactly-sized dataset. */
    for (int pass = 0; pass < 2 && st == FAN_OK; pass++) {
        if (pass == 1) {
            st = sh.rows == 0 ? fan__fail(NULL, FAN_E_FORMAT, "no data rows")
                              : fan__dataset_new(&ds, sh.rows, sh.cols - 1,
                                                 (size_t)sh.max_label + 1, 0, &al, NULL);
            if (st != FAN_OK) break;
            sh.rows = 0;
        }
        st = open(&s, arg, len, &al);
        if (st != FAN_OK) break;
        st = csv_pass(&s, &w, label_column, skip_header, &sh, ds);
        src_close(&s);
    }
    if (st == FAN_OK && sh.rows != ds->n) st = fan__fail(NULL, FAN_E_IO, "input changed");
    fan__free(&al, w.row);
    fan__free(&al, w.chunk);
    if (st != FAN_OK) {
        fan_dataset_free(ds);
        return st;
    }
    *out = ds;
    return FAN_OK;
}

fan_status fan_dataset_load_csv(fan_dataset **out, const char *path, size_t label_column,
                                int skip_header, const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, path == NULL, FAN_E_NULL, "path is NULL");
    return load_csv(out, open_path, path, 0, label_column, skip_header, alloc);
}

static fan_status open_mem(src *s, const void *arg, size_t len, const fan_allocator *al)
{
    return src_open_mem(s, arg, len, DETECT_GZIP, al);
}

fan_status fan_dataset_load_csv_mem(fan_dataset **out, const void *buf, size_t len,
                                    size_t label_column, int skip_header,
                                    const fan_allocator *alloc)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, buf == NULL, FAN_E_NULL, "buf is NULL");
    return load_csv(out, open_mem, buf, len, label_column, skip_header, alloc);
}
