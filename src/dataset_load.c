/* dataset_load.c - loaders for IDX (raw or gzip), CIFAR binary batches and CSV (raw or gzip),
   from files or memory. Every size read from a header is checked against the documented limits,
   against the load budget (fan_create_options.max_load_bytes) and against what the input can
   still hold before anything is allocated from it; compressed input is decompressed once to
   prove it holds what its header declares before the dataset is allocated. The input itself is
   read through byte_source.c. */
#include "byte_source.h"
#include "dataset_internal.h"
#include "options.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* Bytes the CSV parser reads at a time. */
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

/* ---- IDX --------------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Reads an IDX header of n_dims dimensions of u8 elements into dims. */
static fan_status idx_header(fan__source *s, unsigned n_dims, uint32_t *dims, const char *what)
{
    uint8_t h[4 + 4 * IDX_IMAGE_DIMS];
    FAN__CHECK(fan__source_read_exact(s, h, 4 + 4 * (size_t)n_dims));
    FAN__FAIL_IF(s->err, h[0] != 0 || h[1] != 0 || h[2] != IDX_TYPE_U8 || h[3] != n_dims,
                 FAN_E_FORMAT, "%s: bad IDX magic 0x%08x, expected 0x%08x", what,
                 (unsigned)be32(h), IDX_TYPE_U8 << 8 | n_dims);
    for (unsigned d = 0; d < n_dims; d++) {
        dims[d] = be32(h + 4 + 4 * d);
        FAN__FAIL_IF(s->err, dims[d] == 0, FAN_E_FORMAT, "%s: IDX dimension %u is 0", what, d);
    }
    return FAN_OK;
}

/* Compressed input: decompresses the rest once, without storing it, to prove it holds exactly
   `len` more bytes, then starts again after the header. A small stream claiming a huge count is
   refused here, before the dataset is allocated for it. */
static fan_status idx_verify(fan__source *s, unsigned n_dims, const uint32_t *dims, uint64_t len,
                             const char *what)
{
    if (!s->gz) return FAN_OK;
    FAN__CHECK(fan__source_verify_rest(s, len));
    FAN__CHECK(fan__source_rewind(s));
    uint32_t again[IDX_IMAGE_DIMS];
    FAN__CHECK(idx_header(s, n_dims, again, what));
    FAN__FAIL_IF(s->err, memcmp(again, dims, n_dims * sizeof *dims) != 0, FAN_E_IO,
                 "%s changed while loading", what);
    return FAN_OK;
}

static fan_status load_idx(fan_dataset **out, fan__source *img, fan__source *lab, fan__opts *o)
{
    uint32_t idims[IDX_IMAGE_DIMS], ldims[IDX_LABEL_DIMS];
    FAN__CHECK(idx_header(img, IDX_IMAGE_DIMS, idims, "images"));
    FAN__CHECK(idx_header(lab, IDX_LABEL_DIMS, ldims, "labels"));
    size_t n = idims[0], rows = idims[1], cols = idims[2], dim, total;
    FAN__FAIL_IF(o->err, !fan__mul_ok(rows, cols, &dim) || !fan__mul_ok(n, dim, &total),
                 FAN_E_LIMIT, "IDX image size %zu x %zu x %zu overflows", n, rows, cols);
    FAN__FAIL_IF(o->err, n > FAN_MAX_SAMPLES, FAN_E_LIMIT, "%zu images exceed FAN_MAX_SAMPLES",
                 n);
    FAN__FAIL_IF(o->err, ldims[0] != n, FAN_E_FORMAT, "%zu images but %u labels", n,
                 (unsigned)ldims[0]);
    FAN__FAIL_IF(o->err, total > fan__source_bound(img) || n > fan__source_bound(lab),
                 FAN_E_FORMAT, "header sizes exceed what the input can hold");
    /* The dataset stores the pixels as bytes and the labels as int32. */
    FAN__CHECK(fan__opts_check_budget(o, (uint64_t)total + 4 * (uint64_t)n, "the IDX dataset"));
    FAN__CHECK(idx_verify(lab, IDX_LABEL_DIMS, ldims, n, "labels"));
    FAN__CHECK(idx_verify(img, IDX_IMAGE_DIMS, idims, total, "images"));

    fan_dataset *ds;
    FAN__CHECK(fan__dataset_new(&ds, n, dim, IDX_MIN_CLASSES, 1, &o->alloc, o->err));
    /* The u8 labels are read into the start of the int32 array and widened from the end, so
       that no byte is overwritten before it is read (labels[i] starts at byte 4i >= i). */
    uint8_t *raw = (uint8_t *)ds->labels;
    fan_status s = fan__source_read_exact(lab, raw, n);
    if (s == FAN_OK) s = fan__source_finish(lab);
    if (s == FAN_OK) s = fan__source_read_exact(img, ds->u8, total);
    if (s == FAN_OK) s = fan__source_finish(img);
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

/* Closes both sources; a failure to close fails a load that had succeeded. */
static fan_status idx_finish(fan_dataset **out, fan_status s, fan__source *img, fan__source *lab)
{
    if (s != FAN_OK) img->err = lab->err = NULL; /* keep the first message */
    const fan_status cl = fan__source_close(lab);
    if (s == FAN_OK && cl != FAN_OK) img->err = NULL;
    const fan_status ci = fan__source_close(img);
    if (s == FAN_OK) s = cl != FAN_OK ? cl : ci;
    if (s != FAN_OK && *out != NULL) {
        fan_dataset_free(*out);
        *out = NULL;
    }
    return s;
}

fan_status fan__dataset_load_idx_opts(fan_dataset **out, const char *images_path,
                                      const char *labels_path, fan__opts *o)
{
    fan__source img, lab;
    FAN__CHECK(fan__source_open_file(&img, o->io, images_path, FAN__DETECT_GZIP_ZLIB, &o->alloc,
                                     o->err));
    fan_status s = fan__source_open_file(&lab, o->io, labels_path, FAN__DETECT_GZIP_ZLIB,
                                         &o->alloc, o->err);
    if (s != FAN_OK) {
        img.err = NULL;
        (void)fan__source_close(&img);
        return s;
    }
    return idx_finish(out, load_idx(out, &img, &lab, o), &img, &lab);
}

/* The start of every _ex loader: reads the options, checks out and the pointer arguments. */
static fan_status begin(fan__opts *o, const fan_create_options *opts, fan_dataset **out,
                        int args_null, const char *what)
{
    if (out != NULL) *out = NULL;
    FAN__CHECK(fan__opts_read(o, opts));
    FAN__FAIL_IF(o->err, out == NULL, FAN_E_NULL, "out is NULL");
    FAN__FAIL_IF(o->err, args_null, FAN_E_NULL, "%s is NULL", what);
    return FAN_OK;
}

fan_status fan_dataset_load_idx_ex(fan_dataset **out, const char *images_path,
                                   const char *labels_path, const fan_create_options *opts)
{
    fan__opts o;
    fan_status s = begin(&o, opts, out, images_path == NULL || labels_path == NULL, "a path");
    if (s == FAN_OK) s = fan__dataset_load_idx_opts(out, images_path, labels_path, &o);
    return fan__opts_finish(&o, s);
}

fan_status fan_dataset_load_idx_mem_ex(fan_dataset **out, const void *images, size_t images_len,
                                       const void *labels, size_t labels_len,
                                       const fan_create_options *opts)
{
    fan__opts o;
    fan_status s = begin(&o, opts, out, images == NULL || labels == NULL, "a buffer");
    if (s != FAN_OK) return fan__opts_finish(&o, s);
    fan__source img, lab;
    s = fan__source_open_mem(&img, images, images_len, FAN__DETECT_GZIP_ZLIB, &o.alloc, o.err);
    if (s != FAN_OK) return fan__opts_finish(&o, s);
    s = fan__source_open_mem(&lab, labels, labels_len, FAN__DETECT_GZIP_ZLIB, &o.alloc, o.err);
    if (s != FAN_OK) {
        (void)fan__source_close(&img);
        return fan__opts_finish(&o, s);
    }
    return fan__opts_finish(&o, idx_finish(out, load_idx(out, &img, &lab, &o), &img, &lab));
}

fan_status fan_dataset_load_idx(fan_dataset **out, const char *images_path,
                                const char *labels_path, const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_dataset_load_idx_ex(out, images_path, labels_path, &o);
}

fan_status fan_dataset_load_idx_mem(fan_dataset **out, const void *images, size_t images_len,
                                    const void *labels, size_t labels_len,
                                    const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_dataset_load_idx_mem_ex(out, images, images_len, labels, labels_len, &o);
}

/* ---- CIFAR ------------------------------------------------------------------------------- */

/* Validates and stores one record's labels and pixels as sample i. */
static fan_status cifar_record(fan_dataset *ds, size_t i, const uint8_t *rec, size_t n_label,
                               char *err)
{
    if (n_label == 2) {
        FAN__FAIL_IF(err, rec[0] >= CIFAR100_COARSE_CLASSES, FAN_E_LABEL,
                     "record %zu: coarse label %u >= %d", i, rec[0], CIFAR100_COARSE_CLASSES);
    }
    uint8_t label = rec[n_label - 1];
    FAN__FAIL_IF(err, label >= ds->classes, FAN_E_LABEL, "record %zu: label %u >= %zu", i, label,
                 ds->classes);
    ds->labels[i] = label;
    memcpy(ds->u8 + i * CIFAR_PIXELS, rec + n_label, CIFAR_PIXELS);
    return FAN_OK;
}

static fan_status cifar_new(fan_dataset **out, size_t n, size_t n_label, fan__opts *o)
{
    FAN__FAIL_IF(o->err, n == 0, FAN_E_FORMAT, "no CIFAR records");
    FAN__FAIL_IF(o->err, n > FAN_MAX_SAMPLES, FAN_E_LIMIT, "%zu records exceed FAN_MAX_SAMPLES",
                 n);
    FAN__CHECK(fan__opts_check_budget(o, (uint64_t)n * (CIFAR_PIXELS + 4), "the CIFAR dataset"));
    FAN__CHECK(fan__dataset_new(out, n, CIFAR_PIXELS,
                                n_label == 1 ? CIFAR10_CLASSES : CIFAR100_CLASSES, 1, &o->alloc,
                                o->err));
    (*out)->width = CIFAR_SIDE;
    (*out)->height = CIFAR_SIDE;
    (*out)->channels = CIFAR_CHANNELS;
    return FAN_OK;
}

static fan_status check_label_bytes(size_t n_label_bytes, char *err)
{
    FAN__FAIL_IF(err, n_label_bytes != 1 && n_label_bytes != 2, FAN_E_INVALID,
                 "n_label_bytes is %zu; it must be 1 (CIFAR-10) or 2 (CIFAR-100)", n_label_bytes);
    return FAN_OK;
}

fan_status fan_dataset_load_cifar_mem_ex(fan_dataset **out, const void *buf, size_t len,
                                         size_t n_label_bytes, const fan_create_options *opts)
{
    fan__opts o;
    fan_status s = begin(&o, opts, out, buf == NULL, "buf");
    if (s == FAN_OK) s = check_label_bytes(n_label_bytes, o.err);
    const size_t rec = n_label_bytes + CIFAR_PIXELS;
    if (s == FAN_OK && len % rec != 0)
        s = fan__fail(o.err, FAN_E_FORMAT, "length %zu is not whole %zu-byte records", len, rec);
    fan_dataset *ds = NULL;
    if (s == FAN_OK) s = cifar_new(&ds, len / rec, n_label_bytes, &o);
    const uint8_t *p = buf;
    for (size_t i = 0; s == FAN_OK && i < ds->n; i++)
        s = cifar_record(ds, i, p + i * rec, n_label_bytes, o.err);
    if (s != FAN_OK) {
        fan_dataset_free(ds);
    } else {
        *out = ds;
    }
    return fan__opts_finish(&o, s);
}

fan_status fan_dataset_load_cifar_mem(fan_dataset **out, const void *buf, size_t len,
                                      size_t n_label_bytes, const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_dataset_load_cifar_mem_ex(out, buf, len, n_label_bytes, &o);
}

/* Reads the records of one open raw file into ds from sample *next on. */
static fan_status cifar_read_file(fan_dataset *ds, fan__source *f, size_t n_label, size_t count,
                                  size_t *next)
{
    uint8_t rec[2 + CIFAR_PIXELS];
    for (size_t r = 0; r < count; r++) {
        FAN__CHECK(fan__source_read_exact(f, rec, n_label + CIFAR_PIXELS));
        FAN__CHECK(cifar_record(ds, (*next)++, rec, n_label, f->err));
    }
    return fan__source_finish(f);
}

/* Opens, reads and closes one file; reports the first failure. */
static fan_status cifar_file(fan_dataset *ds, const char *path, size_t n_label, size_t *next,
                             fan__opts *o)
{
    const size_t rec = n_label + CIFAR_PIXELS;
    fan__source f;
    FAN__CHECK(fan__source_open_file(&f, o->io, path, FAN__DETECT_NONE, &o->alloc, o->err));
    fan_status s = f.in_size % rec != 0 || f.in_size / rec > ds->n - *next
                       ? fan__fail(o->err, FAN_E_IO, "%s changed while loading", path)
                       : cifar_read_file(ds, &f, n_label, (size_t)(f.in_size / rec), next);
    if (s != FAN_OK) f.err = NULL;
    const fan_status c = fan__source_close(&f);
    return s != FAN_OK ? s : c;
}

fan_status fan__dataset_load_cifar_opts(fan_dataset **out, const char *const *paths,
                                        size_t n_paths, size_t n_label_bytes, fan__opts *o)
{
    const size_t rec = n_label_bytes + CIFAR_PIXELS;
    /* First pass: file sizes only, so that the dataset is allocated once at its exact size. */
    size_t n = 0;
    for (size_t k = 0; k < n_paths; k++) {
        fan__source f;
        FAN__CHECK(fan__source_open_file(&f, o->io, paths[k], FAN__DETECT_NONE, &o->alloc,
                                         o->err));
        const uint64_t size = f.in_size;
        FAN__CHECK(fan__source_close(&f));
        FAN__FAIL_IF(o->err, size % rec != 0, FAN_E_FORMAT,
                     "%s has %llu bytes, not whole %zu-byte records", paths[k],
                     (unsigned long long)size, rec);
        FAN__FAIL_IF(o->err, size / rec > FAN_MAX_SAMPLES - n, FAN_E_LIMIT,
                     "records exceed FAN_MAX_SAMPLES");
        n += (size_t)(size / rec);
    }
    fan_dataset *ds;
    FAN__CHECK(cifar_new(&ds, n, n_label_bytes, o));
    size_t next = 0;
    fan_status s = FAN_OK;
    for (size_t k = 0; k < n_paths && s == FAN_OK; k++)
        s = cifar_file(ds, paths[k], n_label_bytes, &next, o);
    if (s == FAN_OK && next != n) s = fan__fail(o->err, FAN_E_IO, "files changed while loading");
    if (s != FAN_OK) {
        fan_dataset_free(ds);
        return s;
    }
    *out = ds;
    return FAN_OK;
}

fan_status fan_dataset_load_cifar_ex(fan_dataset **out, const char *const *paths, size_t n_paths,
                                     size_t n_label_bytes, const fan_create_options *opts)
{
    fan__opts o;
    fan_status s = begin(&o, opts, out, paths == NULL, "paths");
    if (s == FAN_OK && n_paths == 0) s = fan__fail(o.err, FAN_E_INVALID, "no paths");
    if (s == FAN_OK) s = check_label_bytes(n_label_bytes, o.err);
    for (size_t k = 0; s == FAN_OK && k < n_paths; k++)
        if (paths[k] == NULL) s = fan__fail(o.err, FAN_E_NULL, "paths[%zu] is NULL", k);
    if (s == FAN_OK) s = fan__dataset_load_cifar_opts(out, paths, n_paths, n_label_bytes, &o);
    return fan__opts_finish(&o, s);
}

fan_status fan_dataset_load_cifar(fan_dataset **out, const char *const *paths, size_t n_paths,
                                  size_t n_label_bytes, const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_dataset_load_cifar_ex(out, paths, n_paths, n_label_bytes, &o);
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
    fan__opts *o;
    uint8_t *chunk;
    double *row;
    size_t row_cap;
} csv_work;

static fan_status csv_grow_row(csv_work *w)
{
    size_t cap = w->row_cap == 0 ? CSV_ROW_START : 2 * w->row_cap;
    if (cap > CSV_MAX_COLUMNS) cap = CSV_MAX_COLUMNS;
    /* One more column than those read would already make a single row's floats pass the
       budget: stop before the row buffer (8 bytes per column) grows for it. */
    FAN__FAIL_IF(w->o->err, (uint64_t)(w->row_cap + 1) * 4 > w->o->max_load_bytes, FAN_E_LIMIT,
                 "a CSV row of more than %zu columns exceeds the load budget of %llu bytes "
                 "(max_load_bytes)", w->row_cap, (unsigned long long)w->o->max_load_bytes);
    double *row = fan__calloc(&w->o->alloc, cap, sizeof *row);
    FAN__FAIL_IF(w->o->err, row == NULL, FAN_E_NOMEM, "out of memory for a CSV row of %zu columns",
                 cap);
    if (w->row_cap > 0) memcpy(row, w->row, w->row_cap * sizeof *row);
    fan__free(&w->o->alloc, w->row);
    w->row = row;
    w->row_cap = cap;
    return FAN_OK;
}

/* Validates one complete row of `cols` values; stores it as sample shape->rows in fill. */
static fan_status csv_row(csv_shape *sh, const double *row, size_t cols, size_t label_column,
                          fan_dataset *fill, fan__opts *o)
{
    char *err = o->err;
    if (sh->cols == 0) {
        FAN__FAIL_IF(err, cols < 2, FAN_E_FORMAT, "a CSV row needs a label and a value");
        sh->label_col = label_column == FAN_CSV_LAST_COLUMN ? cols - 1 : label_column;
        FAN__FAIL_IF(err, sh->label_col >= cols, FAN_E_INVALID,
                     "label column %zu, but rows have %zu columns", label_column, cols);
        sh->cols = cols;
    }
    FAN__FAIL_IF(err, cols != sh->cols, FAN_E_FORMAT, "row %zu has %zu columns, not %zu",
                 sh->rows + 1, cols, sh->cols);
    FAN__FAIL_IF(err, sh->rows >= FAN_MAX_SAMPLES, FAN_E_LIMIT, "rows exceed FAN_MAX_SAMPLES");
    double lab = row[sh->label_col];
    FAN__FAIL_IF(err, !(lab >= 0.0) || lab >= (double)FAN_MAX_CLASSES || lab != floor(lab),
                 FAN_E_LABEL, "row %zu: label %g is not an integer in [0, %u)", sh->rows + 1, lab,
                 FAN_MAX_CLASSES);
    if (fill != NULL) {
        FAN__FAIL_IF(err, sh->rows >= fill->n, FAN_E_IO, "input changed while loading");
        float *x = fill->f32 + sh->rows * fill->dim;
        for (size_t j = 0; j < cols; j++) {
            if (j != sh->label_col) *x++ = (float)row[j];
        }
        fill->labels[sh->rows] = (int32_t)lab;
    } else {
        for (size_t j = 0; j < cols; j++) {
            /* Compared in double: converting an out-of-range double to float is undefined. */
            FAN__FAIL_IF(err, j != sh->label_col && !(fabs(row[j]) <= FLT_MAX), FAN_E_NONFINITE,
                         "row %zu, column %zu is not a finite float", sh->rows + 1, j);
        }
        if ((int32_t)lab > sh->max_label) sh->max_label = (int32_t)lab;
        /* The dataset will hold rows x (cols - 1) floats and rows int32 labels: stop as soon
           as that passes the budget, not after parsing all of a huge input. */
        FAN__CHECK(fan__opts_check_budget(o, (uint64_t)(sh->rows + 1) * cols * 4,
                                          "the CSV dataset"));
    }
    sh->rows++;
    return FAN_OK;
}

/* One pass over the CSV text: validates (fill NULL) or stores rows (fill set). */
static fan_status csv_pass(fan__source *s, csv_work *w, size_t label_column, int skip_header,
                           csv_shape *sh, fan_dataset *fill)
{
    char *err = w->o->err;
    char field[CSV_MAX_FIELD];
    size_t flen = 0, col = 0, avail = 0, pos = 0;
    int in_header = skip_header != 0, space_after = 0;
    for (;;) {
        int c = -1;
        if (pos == avail) {
            FAN__CHECK(fan__source_read_some(s, w->chunk, IO_CHUNK, &avail));
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
                FAN__FAIL_IF(err, flen == 0, FAN_E_FORMAT, "row %zu, column %zu is empty",
                             sh->rows + 1, col);
                /* Checked for every field: the row buffer's growth alone would let a row of
                   up to twice the limit through. */
                FAN__FAIL_IF(err, col == CSV_MAX_COLUMNS, FAN_E_LIMIT,
                             "row %zu has more than %zu columns (FAN_MAX_WIDTH features and a "
                             "label)", sh->rows + 1, CSV_MAX_COLUMNS);
                if (col == w->row_cap) FAN__CHECK(csv_grow_row(w));
                FAN__FAIL_IF(err, parse_number(field, flen, &w->row[col]) != FAN_OK,
                             FAN_E_FORMAT, "row %zu, column %zu: \"%.*s\" is not a number",
                             sh->rows + 1, col, (int)flen, field);
                col++;
            }
            if (c != ',' && col > 0) {
                FAN__CHECK(csv_row(sh, w->row, col, label_column, fill, w->o));
                col = 0;
            }
            flen = 0;
            space_after = 0;
            if (c == -1) break;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            space_after = flen > 0;
        } else {
            FAN__FAIL_IF(err, space_after, FAN_E_FORMAT, "row %zu, column %zu: space inside a "
                         "field", sh->rows + 1, col);
            FAN__FAIL_IF(err, flen == CSV_MAX_FIELD, FAN_E_FORMAT,
                         "row %zu, column %zu: field longer than %d characters", sh->rows + 1,
                         col, CSV_MAX_FIELD);
            field[flen++] = (char)c;
        }
    }
    return fan__source_finish(s);
}

/* Where the CSV text comes from: opened once per pass. */
typedef struct csv_input {
    const char *path; /* a file, or */
    const void *buf;  /* a buffer of len bytes */
    size_t len;
} csv_input;

static fan_status csv_open(fan__source *s, const csv_input *in, fan__opts *o)
{
    if (in->path != NULL) {
        FAN__CHECK(fan__source_open_file(s, o->io, in->path, FAN__DETECT_GZIP, &o->alloc, o->err));
    } else {
        FAN__CHECK(fan__source_open_mem(s, in->buf, in->len, FAN__DETECT_GZIP, &o->alloc, o->err));
    }
    /* Decompressed text is bounded by the budget too: parsing it costs time even where it
       allocates nothing. */
    if (s->gz) s->limit = o->max_load_bytes;
    return FAN_OK;
}

static fan_status load_csv(fan_dataset **out, const csv_input *in, size_t label_column,
                           int skip_header, fan__opts *o)
{
    csv_work w = {o, NULL, NULL, 0};
    csv_shape sh = {0, 0, 0, -1};
    fan_dataset *ds = NULL;
    fan_status st = FAN_OK;
    w.chunk = fan__alloc(&o->alloc, IO_CHUNK);
    FAN__FAIL_IF(o->err, w.chunk == NULL, FAN_E_NOMEM, "out of memory for a read buffer");

    /* Pass 1 validates everything and finds the size; pass 2 fills an exactly-sized dataset. */
    for (int pass = 0; pass < 2 && st == FAN_OK; pass++) {
        if (pass == 1) {
            st = sh.rows == 0 ? fan__fail(o->err, FAN_E_FORMAT, "no data rows")
                              : fan__dataset_new(&ds, sh.rows, sh.cols - 1,
                                                 (size_t)sh.max_label + 1, 0, &o->alloc, o->err);
            if (st != FAN_OK) break;
            sh.rows = 0;
        }
        fan__source s;
        st = csv_open(&s, in, o);
        if (st != FAN_OK) break;
        st = csv_pass(&s, &w, label_column, skip_header, &sh, ds);
        if (st != FAN_OK) s.err = NULL;
        const fan_status c = fan__source_close(&s);
        if (st == FAN_OK) st = c;
    }
    if (st == FAN_OK && sh.rows != ds->n) st = fan__fail(o->err, FAN_E_IO, "input changed");
    fan__free(&o->alloc, w.row);
    fan__free(&o->alloc, w.chunk);
    if (st != FAN_OK) {
        fan_dataset_free(ds);
        return st;
    }
    *out = ds;
    return FAN_OK;
}

fan_status fan__dataset_load_csv_opts(fan_dataset **out, const char *path, size_t label_column,
                                      int skip_header, fan__opts *o)
{
    const csv_input in = {path, NULL, 0};
    return load_csv(out, &in, label_column, skip_header, o);
}

fan_status fan_dataset_load_csv_ex(fan_dataset **out, const char *path, size_t label_column,
                                   int skip_header, const fan_create_options *opts)
{
    fan__opts o;
    fan_status s = begin(&o, opts, out, path == NULL, "path");
    if (s == FAN_OK) s = fan__dataset_load_csv_opts(out, path, label_column, skip_header, &o);
    return fan__opts_finish(&o, s);
}

fan_status fan_dataset_load_csv_mem_ex(fan_dataset **out, const void *buf, size_t len,
                                       size_t label_column, int skip_header,
                                       const fan_create_options *opts)
{
    fan__opts o;
    fan_status s = begin(&o, opts, out, buf == NULL, "buf");
    const csv_input in = {NULL, buf, len};
    if (s == FAN_OK) s = load_csv(out, &in, label_column, skip_header, &o);
    return fan__opts_finish(&o, s);
}

fan_status fan_dataset_load_csv(fan_dataset **out, const char *path, size_t label_column,
                                int skip_header, const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_dataset_load_csv_ex(out, path, label_column, skip_header, &o);
}

fan_status fan_dataset_load_csv_mem(fan_dataset **out, const void *buf, size_t len,
                                    size_t label_column, int skip_header,
                                    const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_dataset_load_csv_mem_ex(out, buf, len, label_column, skip_header, &o);
}
