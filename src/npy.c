/*
 * npy.c - NumPy's .npy format: reading and checking headers, reading and writing arrays, and
 * datasets loaded from an images file and a labels file. A net's matrices as .npy files are in
 * npy_net.c. Every length in a header is checked against the input's size and the library's
 * bounds before anything is allocated from it.
 */
#include "dataset_internal.h"
#include "npy_internal.h"
#include "options.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The six magic bytes; then major and minor version bytes. */
static const unsigned char MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
#define PREAMBLE 8u
/* NumPy pads the header so that the array starts at a multiple of this (format.py, ARRAY_ALIGN). */
#define ARRAY_ALIGN 64u
/* Bytes converted at a time between file and floats: a stack buffer, no allocation. */
#define CHUNK 4096u
/* Characters of the longest descr the library reads ("<u8"), with room to report longer ones. */
#define DESCR_CAP 16u

/* ---- sources ------------------------------------------------------------------------------ */

fan_status fan__npy_open(fan__npy_src *s, const char *path, char *err)
{
    memset(s, 0, sizeof *s);
    s->name = path;
    s->f.fd = -1;
    return fan__file_open_regular(&s->f, NULL, path, &s->size, err);
}

void fan__npy_open_mem(fan__npy_src *s, const void *buf, size_t len, const char *name)
{
    memset(s, 0, sizeof *s);
    s->f.fd = -1;
    s->mem = buf;
    s->mem_len = len;
    s->size = len;
    s->name = name;
}

void fan__npy_close(fan__npy_src *s)
{
    /* Only read: a failing close loses nothing. */
    if (s->f.fd >= 0) (void)fan__file_close(&s->f, NULL);
}

/* Reads exactly n bytes; the caller has checked that the input holds them. */
static fan_status src_read(fan__npy_src *s, void *dst, size_t n, char *err)
{
    if (s->f.fd >= 0) {
        size_t got = 0;
        FAN__CHECK(fan__file_read(&s->f, dst, n, &got, err));
        FAN__FAIL_IF(err, got != n, FAN_E_IO, "%s: the file became shorter while it was read",
                     s->name);
    } else {
        FAN__FAIL_IF(err, n > s->mem_len - s->pos, FAN_E_FORMAT, "%s is truncated", s->name);
        memcpy(dst, s->mem + s->pos, n);
    }
    s->pos += n;
    return FAN_OK;
}

/* ---- the header --------------------------------------------------------------------------- */

typedef struct parser {
    const char *start, *p, *end;
    const char *name;
    char *err;
} parser;

static void skip_space(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

/* Skips space, then consumes c if it is next; returns 1 if it did. */
static int accept(parser *ps, char c)
{
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return 1;
    }
    return 0;
}

static fan_status bad_header(const parser *ps, const char *what)
{
    return fan__fail(ps->err, FAN_E_FORMAT, "%s: bad .npy header: %s at byte %zu of the dict",
                     ps->name, what, (size_t)(ps->p - ps->start));
}

/* A quoted Python string without escapes (no key or dtype the format uses needs one). */
static fan_status parse_string(parser *ps, char *out, size_t cap)
{
    skip_space(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"')) return bad_header(ps, "expected a string");
    const char quote = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != quote) {
        if (*ps->p == '\\') return bad_header(ps, "escape in a string");
        if (n + 1 < cap) out[n++] = *ps->p;
        ps->p++;
    }
    if (ps->p >= ps->end) return bad_header(ps, "unterminated string");
    ps->p++;
    out[n] = '\0';
    return FAN_OK;
}

static int accept_word(parser *ps, const char *w)
{
    skip_space(ps);
    const size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, w, n) == 0) {
        ps->p += n;
        return 1;
    }
    return 0;
}

/* A tuple of non-negative integers: "()", "(5,)", "(3, 4)", "(3, 4,)". */
static fan_status parse_shape(parser *ps, fan__npy_header *h)
{
    if (!accept(ps, '(')) return bad_header(ps, "shape is not a tuple");
    h->ndim = 0;
    if (accept(ps, ')')) return FAN_OK;
    for (;;) {
        skip_space(ps);
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return bad_header(ps, "expected a non-negative integer in the shape");
        uint64_t v = 0;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            const unsigned d = (unsigned)(*ps->p++ - '0');
            FAN__FAIL_IF(ps->err, v > (UINT64_MAX - d) / 10, FAN_E_LIMIT,
                         "%s: a dimension of the shape overflows", ps->name);
            v = v * 10 + d;
        }
        FAN__FAIL_IF(ps->err, (uint64_t)(size_t)v != v, FAN_E_LIMIT,
                     "%s: a dimension of the shape overflows size_t", ps->name);
        FAN__FAIL_IF(ps->err, h->ndim == FAN__NPY_MAX_DIMS, FAN_E_LIMIT,
                     "%s: more than %d dimensions", ps->name, FAN__NPY_MAX_DIMS);
        h->shape[h->ndim++] = (size_t)v;
        const int comma = accept(ps, ',');
        if (accept(ps, ')')) {
            /* "(5)" is the integer 5 in Python, not a tuple; NumPy refuses it too. */
            if (h->ndim == 1 && !comma) return bad_header(ps, "shape (n) without a comma");
            return FAN_OK;
        }
        if (!comma) return bad_header(ps, "expected ',' or ')' in the shape");
    }
}

/* Maps a descr to a type. Byte order matters only for items wider than one byte. */
static fan_status parse_descr(const parser *ps, const char *d, fan__npy_header *h)
{
    snprintf(h->descr, sizeof h->descr, "%s", d);
    const char order = d[0];
    const int known_order = order == '<' || order == '>' || order == '|' || order == '=';
    char kind = 0;
    unsigned size = 0;
    if (known_order && strlen(d) == 3 && d[2] >= '1' && d[2] <= '8') {
        kind = d[1];
        size = (unsigned)(d[2] - '0');
    }
    const int one_byte = size == 1;
    if ((kind == 'f' && (size == 4 || size == 8)) ||
        ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8))) {
        FAN__FAIL_IF(ps->err, !one_byte && order != '<', FAN_E_UNSUPPORTED,
                     "%s: dtype '%s' is not little-endian ('<'); convert it with "
                     "astype('<%c%u')", ps->name, d, kind, size);
        h->itemsize = size;
        h->is_signed = kind == 'i';
        h->type = kind == 'f' ? (size == 4 ? FAN__NPY_F32 : FAN__NPY_F64)
                  : (kind == 'u' && one_byte) ? FAN__NPY_U8
                                              : FAN__NPY_INT;
        return FAN_OK;
    }
    return fan__fail(ps->err, FAN_E_UNSUPPORTED,
                     "%s: dtype '%s' is not supported (float32, float64, uint8 or another integer "
                     "type)", ps->name, d);
}

/* Parses the dict text of len bytes (NUL bytes already refused). */
static fan_status parse_dict(const char *text, size_t len, const char *name, fan__npy_header *h,
                             char *err)
{
    parser ps = {text, text, text + len, name, err};
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!accept(&ps, '{')) return bad_header(&ps, "the header is not a dict");
    while (!accept(&ps, '}')) {
        char key[32];
        FAN__CHECK(parse_string(&ps, key, sizeof key));
        if (!accept(&ps, ':')) return bad_header(&ps, "expected ':'");
        if (strcmp(key, "descr") == 0 && !have_descr) {
            skip_space(&ps);
            FAN__FAIL_IF(err, ps.p < ps.end && *ps.p == '[', FAN_E_UNSUPPORTED,
                         "%s: structured dtypes are not supported", name);
            char d[DESCR_CAP];
            FAN__CHECK(parse_string(&ps, d, sizeof d));
            FAN__CHECK(parse_descr(&ps, d, h));
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if (accept_word(&ps, "True"))
                return fan__fail(err, FAN_E_UNSUPPORTED,
                                 "%s: the array is in Fortran (column-major) order; save it from "
                                 "numpy.ascontiguousarray(a)", name);
            if (!accept_word(&ps, "False")) return bad_header(&ps, "fortran_order is not a bool");
            have_order = 1;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            FAN__CHECK(parse_shape(&ps, h));
            have_shape = 1;
        } else {
            return fan__fail(err, FAN_E_FORMAT, "%s: bad .npy header: unknown or repeated key '%s'",
                             name, key);
        }
        if (!accept(&ps, ',')) {
            if (accept(&ps, '}')) break;
            return bad_header(&ps, "expected ',' or '}'");
        }
    }
    skip_space(&ps);
    if (ps.p != ps.end) return bad_header(&ps, "text after the dict");
    FAN__FAIL_IF(err, !have_descr || !have_order || !have_shape, FAN_E_FORMAT,
                 "%s: bad .npy header: it lacks '%s'", name,
                 !have_descr ? "descr" : !have_order ? "fortran_order" : "shape");
    return FAN_OK;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

fan_status fan__npy_read_header(fan__npy_src *s, fan__npy_header *h, char *err)
{
    memset(h, 0, sizeof *h);
    unsigned char pre[PREAMBLE + 4];
    FAN__FAIL_IF(err, s->size < PREAMBLE + 2, FAN_E_FORMAT,
                 "%s is not a .npy file (%llu bytes)", s->name, (unsigned long long)s->size);
    FAN__CHECK(src_read(s, pre, PREAMBLE, err));
    FAN__FAIL_IF(err, memcmp(pre, MAGIC, sizeof MAGIC) != 0, FAN_E_FORMAT,
                 "%s is not a .npy file (no \\x93NUMPY magic)", s->name);
    const unsigned major = pre[6], minor = pre[7];
    FAN__FAIL_IF(err, major < 1 || major > 3 || minor != 0, FAN_E_VERSION,
                 "%s: .npy format version %u.%u (this library reads 1.0, 2.0 and 3.0)", s->name,
                 major, minor);
    const size_t len_bytes = major == 1 ? 2 : 4;
    FAN__FAIL_IF(err, s->size < PREAMBLE + len_bytes, FAN_E_FORMAT, "%s: truncated .npy header",
                 s->name);
    FAN__CHECK(src_read(s, pre + PREAMBLE, len_bytes, err));
    const uint32_t hlen = major == 1 ? (uint32_t)pre[8] | (uint32_t)pre[9] << 8 : le32(pre + 8);
    FAN__FAIL_IF(err, hlen > FAN__NPY_MAX_HEADER, FAN_E_LIMIT,
                 "%s: .npy header of %u bytes (at most %u accepted)", s->name, (unsigned)hlen,
                 FAN__NPY_MAX_HEADER);
    h->data_offset = PREAMBLE + len_bytes + hlen;
    FAN__FAIL_IF(err, s->size < h->data_offset, FAN_E_FORMAT,
                 "%s: truncated .npy header (%u bytes announced, %llu in the file)", s->name,
                 (unsigned)hlen, (unsigned long long)(s->size - PREAMBLE - len_bytes));

    /* The header text is parsed in pieces of at most CHUNK bytes held on the stack: only its
       first CHUNK bytes can hold the dict (a longer header would be all padding). */
    char text[CHUNK];
    const size_t keep = hlen < sizeof text ? hlen : sizeof text;
    FAN__CHECK(src_read(s, text, keep, err));
    for (size_t left = hlen - keep; left > 0;) {
        char pad[CHUNK];
        const size_t k = left < sizeof pad ? left : sizeof pad;
        FAN__CHECK(src_read(s, pad, k, err));
        for (size_t i = 0; i < k; i++)
            FAN__FAIL_IF(err, pad[i] != ' ' && pad[i] != '\n', FAN_E_FORMAT,
                         "%s: bad .npy header: a dict longer than %u bytes", s->name, CHUNK);
        left -= k;
    }
    FAN__FAIL_IF(err, memchr(text, '\0', keep) != NULL, FAN_E_FORMAT,
                 "%s: bad .npy header: a NUL byte", s->name);
    FAN__CHECK(parse_dict(text, keep, s->name, h, err));

    h->count = 1;
    for (size_t i = 0; i < h->ndim; i++)
        FAN__FAIL_IF(err, !fan__mul_ok(h->count, h->shape[i], &h->count), FAN_E_LIMIT,
                     "%s: the shape's element count overflows", s->name);
    FAN__FAIL_IF(err, !fan__mul_ok(h->count, h->itemsize, &h->data_bytes), FAN_E_LIMIT,
                 "%s: the array's size overflows", s->name);
    return FAN_OK;
}

fan_status fan__npy_check_data(const fan__npy_src *s, const fan__npy_header *h, char *err)
{
    const uint64_t have = s->size - h->data_offset;
    FAN__FAIL_IF(err, have < h->data_bytes, FAN_E_FORMAT,
                 "%s is truncated: the header announces %zu bytes of data, the file has %llu",
                 s->name, h->data_bytes, (unsigned long long)have);
    FAN__FAIL_IF(err, have > h->data_bytes, FAN_E_FORMAT,
                 "%s: %llu bytes after the array the header announces", s->name,
                 (unsigned long long)(have - h->data_bytes));
    return FAN_OK;
}

/* ---- arrays --------------------------------------------------------------------------------- */

fan_status fan__npy_read_floats(fan__npy_src *s, const fan__npy_header *h, float *dst, size_t n,
                                char *err)
{
    unsigned char buf[CHUNK];
    const size_t per = CHUNK / h->itemsize;
    for (size_t done = 0; done < n;) {
        const size_t k = n - done < per ? n - done : per;
        FAN__CHECK(src_read(s, buf, k * h->itemsize, err));
        for (size_t i = 0; i < k; i++) {
            const unsigned char *p = buf + i * h->itemsize;
            float v;
            if (h->type == FAN__NPY_F32) {
                const uint32_t u = le32(p);
                memcpy(&v, &u, sizeof v);
            } else {
                const uint64_t u = (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
                double d;
                memcpy(&d, &u, sizeof d);
                v = (float)d;
            }
            FAN__FAIL_IF(err, !isfinite(v), FAN_E_NONFINITE,
                         "%s: element %zu is NaN or infinite (as float32)", s->name, done + i);
            dst[done + i] = v;
        }
        done += k;
    }
    return FAN_OK;
}

/* Reads n integer labels, each in [0, limit), into dst; *max_label gets the largest. */
static fan_status read_labels(fan__npy_src *s, const fan__npy_header *h, int32_t *dst, size_t n,
                              uint64_t limit, int32_t *max_label, char *err)
{
    unsigned char buf[CHUNK];
    const size_t per = CHUNK / h->itemsize;
    int32_t mx = 0;
    for (size_t done = 0; done < n;) {
        const size_t k = n - done < per ? n - done : per;
        FAN__CHECK(src_read(s, buf, k * h->itemsize, err));
        for (size_t i = 0; i < k; i++) {
            const unsigned char *p = buf + i * h->itemsize;
            uint64_t u = 0;
            for (size_t b = 0; b < h->itemsize; b++) u |= (uint64_t)p[b] << (8 * b);
            /* The sign bit of the item, for signed types. */
            const int negative = h->is_signed && (p[h->itemsize - 1] & 0x80) != 0;
            FAN__FAIL_IF(err, negative || u >= limit, FAN_E_LABEL,
                         "%s: label %s%llu of sample %zu is outside [0, %llu)", s->name,
                         negative ? "(negative) " : "", (unsigned long long)u, done + i,
                         (unsigned long long)limit);
            dst[done + i] = (int32_t)u;
            if (dst[done + i] > mx) mx = dst[done + i];
        }
        done += k;
    }
    *max_label = mx;
    return FAN_OK;
}

/* The header of a C-order '<f4' array, padded to ARRAY_ALIGN as NumPy pads it; returns its
   length, 0 if it does not fit in cap. */
static size_t f32_header(unsigned char *out, size_t cap, const size_t *shape, size_t ndim)
{
    char dims[FAN__NPY_MAX_DIMS * 24] = "";
    size_t d = 0;
    for (size_t i = 0; i < ndim && i < FAN__NPY_MAX_DIMS; i++)
        d += (size_t)snprintf(dims + d, sizeof dims - d, i == 0 ? "%zu" : ", %zu", shape[i]);
    char dict[sizeof dims + 64];
    /* A one-element tuple needs its comma: "(5,)". */
    const int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%s%s), }",
                           dims, ndim == 1 ? "," : "");
    if (n <= 0 || (size_t)n >= sizeof dict) return 0;
    const size_t body = (size_t)n + 1; /* + the final newline */
    const size_t total = (PREAMBLE + 2 + body + ARRAY_ALIGN - 1) / ARRAY_ALIGN * ARRAY_ALIGN;
    if (total > cap) return 0;
    const size_t hlen = total - PREAMBLE - 2;
    memcpy(out, MAGIC, sizeof MAGIC);
    out[6] = 1;
    out[7] = 0;
    out[8] = (unsigned char)(hlen & 0xff);
    out[9] = (unsigned char)(hlen >> 8);
    memcpy(out + PREAMBLE + 2, dict, (size_t)n);
    memset(out + PREAMBLE + 2 + n, ' ', hlen - (size_t)n - 1);
    out[total - 1] = '\n';
    return total;
}

/* What fan__save_atomic writes: the header and the floats, little-endian whatever the host. */
typedef struct f32_file {
    const unsigned char *hdr;
    size_t hdr_len;
    const float *data;
    size_t count;
} f32_file;

static void emit_f32(const void *ctx, fan__writer *w)
{
    const f32_file *f = ctx;
    fan__writer_put(w, f->hdr, f->hdr_len);
    unsigned char buf[CHUNK];
    const size_t per = CHUNK / 4;
    for (size_t done = 0; done < f->count;) {
        const size_t k = f->count - done < per ? f->count - done : per;
        for (size_t i = 0; i < k; i++) {
            uint32_t u;
            memcpy(&u, &f->data[done + i], sizeof u);
            for (int b = 0; b < 4; b++) buf[4 * i + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        fan__writer_put(w, buf, 4 * k);
        done += k;
    }
}

fan_status fan__npy_write_f32(const char *path, const float *data, const size_t *shape,
                              size_t ndim, const fan_allocator *al, char *err)
{
    unsigned char hdr[CHUNK];
    const size_t hdr_len = f32_header(hdr, sizeof hdr, shape, ndim);
    FAN__FAIL_IF(err, hdr_len == 0, FAN_E_LIMIT, "%s: shape too long for a header", path);
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++) count *= shape[i]; /* a net's matrix: cannot overflow */
    const f32_file f = {hdr, hdr_len, data, count};
    return fan__save_atomic(path, emit_f32, &f, al, err);
}

/* ---- datasets ------------------------------------------------------------------------------- */

/* Checks an images header; sets n, dim and the image shape. */
static fan_status check_images(const fan__npy_src *s, const fan__npy_header *h, size_t *n,
                               size_t *dim, size_t shape3[3], char *err)
{
    FAN__FAIL_IF(err, h->type != FAN__NPY_F32 && h->type != FAN__NPY_U8, FAN_E_UNSUPPORTED,
                 "%s: images of dtype '%s'; the library reads float32 ('<f4') or uint8 ('|u1')",
                 s->name, h->descr);
    FAN__FAIL_IF(err, h->ndim < 2 || h->ndim > 4, FAN_E_UNSUPPORTED,
                 "%s: images of %zu dimensions; expected (n, dim), (n, height, width) or "
                 "(n, channels, height, width)", s->name, h->ndim);
    for (size_t i = 0; i < h->ndim; i++)
        FAN__FAIL_IF(err, h->shape[i] == 0, FAN_E_INVALID, "%s: dimension %zu of the shape is 0",
                     s->name, i);
    *n = h->shape[0];
    FAN__FAIL_IF(err, *n > FAN_MAX_SAMPLES, FAN_E_LIMIT, "%s: %zu samples exceed FAN_MAX_SAMPLES (%u)",
                 s->name, *n, FAN_MAX_SAMPLES);
    *dim = h->count / *n;
    FAN__FAIL_IF(err, *dim > FAN_MAX_WIDTH, FAN_E_LIMIT,
                 "%s: %zu values per sample exceed FAN_MAX_WIDTH (%u)", s->name, *dim, FAN_MAX_WIDTH);
    /* width, height, channels */
    shape3[0] = h->shape[h->ndim - 1];
    shape3[1] = h->ndim >= 3 ? h->shape[h->ndim - 2] : 1;
    shape3[2] = h->ndim == 4 ? h->shape[1] : 1;
    return FAN_OK;
}

static fan_status check_labels_header(const fan__npy_src *s, const fan__npy_header *h, size_t n,
                                      char *err)
{
    FAN__FAIL_IF(err, h->type != FAN__NPY_INT && h->type != FAN__NPY_U8, FAN_E_UNSUPPORTED,
                 "%s: labels of dtype '%s'; labels must be integers (e.g. '<i8', '|u1')", s->name,
                 h->descr);
    FAN__FAIL_IF(err, !(h->ndim == 1 || (h->ndim == 2 && h->shape[1] == 1)), FAN_E_SHAPE,
                 "%s: labels must have shape (n,) or (n, 1); this has %zu dimensions", s->name,
                 h->ndim);
    FAN__FAIL_IF(err, h->shape[0] != n, FAN_E_SHAPE, "%s: %zu labels for %zu images", s->name,
                 h->shape[0], n);
    return FAN_OK;
}

/* Both sources open; reads them into a new dataset with o's allocator, budget and message. */
static fan_status load_npy(fan_dataset **out, fan__npy_src *img, fan__npy_src *lab,
                           size_t n_classes, fan__opts *o)
{
    char *err = o->err;
    FAN__FAIL_IF(err, n_classes > FAN_MAX_CLASSES, FAN_E_LIMIT,
                 "n_classes %zu exceeds FAN_MAX_CLASSES (%u)", n_classes, FAN_MAX_CLASSES);
    fan__npy_header hi, hl;
    size_t n = 0, dim = 0, shape3[3] = {1, 1, 1};
    FAN__CHECK(fan__npy_read_header(img, &hi, err));
    FAN__CHECK(check_images(img, &hi, &n, &dim, shape3, err));
    FAN__CHECK(fan__npy_check_data(img, &hi, err));
    FAN__CHECK(fan__npy_read_header(lab, &hl, err));
    FAN__CHECK(check_labels_header(lab, &hl, n, err));
    FAN__CHECK(fan__npy_check_data(lab, &hl, err));
    /* What the dataset will hold: the samples as stored, and the labels as int32 (twice, while
       the scratch copy below lives). */
    FAN__CHECK(fan__opts_check_budget(o, (uint64_t)hi.data_bytes + 2 * (uint64_t)n * sizeof(int32_t),
                                      "the .npy dataset"));

    /* Labels first, into scratch memory: the class count they give sizes the dataset. */
    const fan_allocator *al = &o->alloc;
    int32_t *labels = fan__alloc(al, n * sizeof *labels);
    FAN__FAIL_IF(err, labels == NULL, FAN_E_NOMEM, "out of memory for %zu labels", n);
    int32_t max_label = 0;
    fan_status st = read_labels(lab, &hl, labels, n, n_classes ? n_classes : FAN_MAX_CLASSES,
                                &max_label, err);
    fan_dataset *ds = NULL;
    if (st == FAN_OK)
        st = fan__dataset_new(&ds, n, dim, n_classes ? n_classes : (size_t)max_label + 1,
                              hi.type == FAN__NPY_U8, al, err);
    if (st == FAN_OK) {
        memcpy(ds->labels, labels, n * sizeof *labels);
        if (hi.type == FAN__NPY_U8)
            st = src_read(img, ds->u8, n * dim, err);
        else
            st = fan__npy_read_floats(img, &hi, ds->f32, n * dim, err);
    }
    fan__free(al, labels);
    if (st != FAN_OK) {
        fan_dataset_free(ds);
        return st;
    }
    ds->width = shape3[0];
    ds->height = shape3[1];
    ds->channels = shape3[2];
    *out = ds;
    return FAN_OK;
}

fan_status fan_dataset_load_npy_ex(fan_dataset **out, const char *images_path,
                                   const char *labels_path, size_t n_classes,
                                   const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && (out == NULL || images_path == NULL || labels_path == NULL))
        st = fan__fail(o.err, FAN_E_NULL, "%s is NULL",
                       out == NULL ? "out" : images_path == NULL ? "images_path" : "labels_path");
    if (st == FAN_OK) {
        fan__npy_src img, lab;
        st = fan__npy_open(&img, images_path, o.err);
        if (st == FAN_OK) {
            st = fan__npy_open(&lab, labels_path, o.err);
            if (st == FAN_OK) {
                st = load_npy(out, &img, &lab, n_classes, &o);
                fan__npy_close(&lab);
            }
            fan__npy_close(&img);
        }
    }
    return fan__opts_finish(&o, st);
}

fan_status fan_dataset_load_npy(fan_dataset **out, const char *images_path,
                                const char *labels_path, size_t n_classes,
                                const fan_allocator *alloc)
{
    fan_create_options o = {sizeof o, alloc, NULL, 0, 0};
    return fan_dataset_load_npy_ex(out, images_path, labels_path, n_classes, &o);
}

fan_status fan_dataset_load_npy_mem_ex(fan_dataset **out, const void *images, size_t images_len,
                                       const void *labels, size_t labels_len, size_t n_classes,
                                       const fan_create_options *opts)
{
    if (out != NULL) *out = NULL;
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && (out == NULL || images == NULL || labels == NULL))
        st = fan__fail(o.err, FAN_E_NULL, "%s is NULL",
                       out == NULL ? "out" : images == NULL ? "images" : "labels");
    if (st == FAN_OK) {
        fan__npy_src img, lab;
        fan__npy_open_mem(&img, images, images_len, "images buffer");
        fan__npy_open_mem(&lab, labels, labels_len, "labels buffer");
        st = load_npy(out, &img, &lab, n_classes, &o);
    }
    return fan__opts_finish(&o, st);
}

fan_status fan_dataset_load_npy_mem(fan_dataset **out, const void *images, size_t images_len,
                                    const void *labels, size_t labels_len, size_t n_classes,
                                    const fan_allocator *alloc)
{
    fan_create_options o = {sizeof o, alloc, NULL, 0, 0};
    return fan_dataset_load_npy_mem_ex(out, images, images_len, labels, labels_len, n_classes, &o);
}
