/*
 * io.c - saving and loading networks in the byte format of docs/file-format.md: explicit
 * little-endian, every length checked against the data size before allocation, CRC-32 last,
 * atomic replacement of files on save (file_replace.c). Files are touched only through the
 * file layer of fileio.c.
 */
#include "options.h"

#include <string.h>
#include <zlib.h>

/* "FANOISE" and a 0x1a (Ctrl-Z) byte, which stops accidental text-mode reads, as PNG does. */
static const unsigned char MAGIC[8] = {'F', 'A', 'N', 'O', 'I', 'S', 'E', 0x1a};
#define FORMAT_VERSION 1u
#define FIXED_HEADER 56u /* bytes before the layer table */

/* ---- little-endian encoding ---------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- a sink: memory buffer or file, with a running CRC ------------------------------------ */

/* Bytes gathered before each write(2) of a file sink: few system calls for the small header
   fields, and a buffer small enough to take from any allocator. */
#define SINK_FILE_BUFFER 65536u

typedef struct sink {
    unsigned char *buf; /* memory sink: the caller's buffer; file sink: the write buffer */
    size_t cap, pos;    /* file sink: pos counts the bytes waiting in buf */
    fan__file *f;       /* file sink, or NULL */
    uLong crc;
    fan_status st; /* file sink: the first write failure */
    char *err;
} sink;

static void sink_flush(sink *s)
{
    if (s->f == NULL) return;
    if (s->st == FAN_OK && s->pos > 0) s->st = fan__file_write(s->f, s->buf, s->pos, s->err);
    s->pos = 0;
}

static void sink_write(sink *s, const unsigned char *p, size_t n)
{
    if (s->st != FAN_OK || n == 0) return;
    s->crc = crc32_z(s->crc, p, n);
    if (s->f == NULL) {
        if (s->buf != NULL) memcpy(s->buf + s->pos, p, n);
        s->pos += n;
        return;
    }
    while (n > 0 && s->st == FAN_OK) {
        if (s->pos == s->cap) sink_flush(s);
        const size_t k = n < s->cap - s->pos ? n : s->cap - s->pos;
        memcpy(s->buf + s->pos, p, k);
        s->pos += k;
        p += k;
        n -= k;
    }
}

static void sink_floats(sink *s, const float *v, size_t n)
{
    unsigned char chunk[4096];
    while (n > 0) {
        size_t k = n < sizeof chunk / 4 ? n : sizeof chunk / 4;
        for (size_t i = 0; i < k; i++) put_u32(chunk + 4 * i, f32_bits(v[i]));
        sink_write(s, chunk, 4 * k);
        v += k;
        n -= k;
    }
}

static size_t encoded_size(const fan_net *net)
{
    const size_t L = net->n_layers;
    return FIXED_HEADER + 8 * (L + 1) + 4 * L + 4 * (net->n_params + net->n_feedback) + 4;
}

static void encode(const fan_net *net, sink *s)
{
    const size_t L = net->n_layers;
    unsigned char h[FIXED_HEADER];
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, FORMAT_VERSION);
    put_u32(h + 12, 0); /* flags: none defined in version 1 */
    put_u32(h + 16, (uint32_t)L);
    put_u32(h + 20, (uint32_t)net->rule);
    put_u32(h + 24, (uint32_t)net->loss);
    put_u32(h + 28, (uint32_t)net->init_w);
    put_u32(h + 32, (uint32_t)net->init_b);
    put_u32(h + 36, f32_bits(net->leaky_slope));
    put_u64(h + 40, net->weight_seed);
    put_u64(h + 48, net->feedback_seed);
    sink_write(s, h, sizeof h);
    for (size_t l = 0; l <= L; l++) {
        unsigned char b[8];
        put_u64(b, (uint64_t)net->sizes[l]);
        sink_write(s, b, 8);
    }
    for (size_t l = 0; l < L; l++) {
        unsigned char b[4];
        put_u32(b, (uint32_t)net->act[l]);
        sink_write(s, b, 4);
    }
    for (size_t l = 0; l < L; l++) {
        const size_t wn = net->sizes[l] * net->sizes[l + 1];
        sink_floats(s, fan__net_w(net, l), wn);
        sink_floats(s, fan__net_b(net, l), net->sizes[l + 1]);
        sink_floats(s, fan__net_fb(net, l), wn);
    }
    unsigned char c[4];
    put_u32(c, (uint32_t)s->crc);
    sink_write(s, c, 4);
}

/* A saved file must load, and fan_net_load refuses non-finite parameters (as
   fan_net_set_weights and fan_net_set_feedback do): refuse to write them in the first place. */
static fan_status check_finite(const fan_net *net)
{
    FAN__FAIL_IF(net->err,
                 !fan__all_finite(net->params, net->n_params) ||
                     !fan__all_finite(net->feedback, net->n_feedback),
                 FAN_E_NONFINITE,
                 "the net holds NaN or infinite weights, biases or feedback; a saved file "
                 "would not load");
    return FAN_OK;
}

fan_status fan_net_save_mem(const fan_net *net, void *buf, size_t cap, size_t *written)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, written == NULL, FAN_E_NULL, "written is NULL");
    const size_t need = encoded_size(net);
    *written = need;
    if (buf == NULL) return FAN_OK;
    FAN__FAIL_IF(net->err, cap < need, FAN_E_SHAPE, "buffer of %zu bytes; the net needs %zu",
                 cap, need);
    FAN__CHECK(check_finite(net));
    sink s = {buf, cap, 0, NULL, crc32(0L, Z_NULL, 0), FAN_OK, NULL};
    encode(net, &s);
    return FAN_OK;
}

fan_status fan__net_save_io(const fan_net *net, const char *path, const fan__fileio *io)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, path == NULL, FAN_E_NULL, "path is NULL");
    FAN__CHECK(check_finite(net));
    unsigned char *wbuf = fan__alloc(&net->alloc, SINK_FILE_BUFFER);
    FAN__FAIL_IF(net->err, wbuf == NULL, FAN_E_NOMEM, "cannot allocate a write buffer");
    /* Readers see the old model or the new one, never a mix; see file_replace.c. */
    fan__replace r;
    fan_status st = fan__replace_begin(&r, io, &net->alloc, path, net->err);
    if (st == FAN_OK) {
        sink s = {wbuf, SINK_FILE_BUFFER, 0, &r.file, crc32(0L, Z_NULL, 0), FAN_OK, net->err};
        encode(net, &s);
        sink_flush(&s);
        st = s.st;
        if (st == FAN_OK)
            st = fan__replace_commit(&r, net->err);
        else
            fan__replace_abort(&r);
    }
    fan__free(&net->alloc, wbuf);
    return st;
}

fan_status fan_net_save(const fan_net *net, const char *path)
{
    return fan__net_save_io(net, path, NULL);
}

/* ---- loading ------------------------------------------------------------------------------- */

static void read_floats(float *dst, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) dst[i] = bits_f32(get_u32(p + 4 * i));
}

static fan_status decode(fan_net **out, const unsigned char *p, size_t len,
                         const fan_allocator *alloc, char *err)
{
    FAN__FAIL_IF(err, len < FIXED_HEADER + 4, FAN_E_FORMAT,
                 "%zu bytes is shorter than the smallest model file", len);
    FAN__FAIL_IF(err, memcmp(p, MAGIC, sizeof MAGIC) != 0, FAN_E_FORMAT,
                 "not a libfanoise model (bad magic)");
    const uint32_t version = get_u32(p + 8);
    FAN__FAIL_IF(err, version != FORMAT_VERSION, FAN_E_VERSION,
                 "format version %u; this library reads version %u", (unsigned)version,
                 FORMAT_VERSION);
    FAN__FAIL_IF(err, get_u32(p + 12) != 0, FAN_E_FORMAT, "unknown header flags 0x%x",
                 (unsigned)get_u32(p + 12));
    const uint32_t L = get_u32(p + 16);
    FAN__FAIL_IF(err, L < 1 || L > FAN_MAX_LAYERS, FAN_E_FORMAT,
                 "layer count %u is outside [1, %d]", (unsigned)L, FAN_MAX_LAYERS);
    /* The layer table must fit before the sizes are read. */
    const size_t table = (size_t)8 * (L + 1) + (size_t)4 * L;
    FAN__FAIL_IF(err, len - 4 - FIXED_HEADER < table, FAN_E_FORMAT,
                 "file truncated inside the layer table");
    size_t sizes[FAN_MAX_LAYERS + 1];
    for (uint32_t l = 0; l <= L; l++) {
        const uint64_t s = get_u64(p + FIXED_HEADER + 8 * l);
        FAN__FAIL_IF(err, s == 0 || s > FAN_MAX_WIDTH, FAN_E_LIMIT,
                     "layer width %llu is outside [1, FAN_MAX_WIDTH]", (unsigned long long)s);
        sizes[l] = (size_t)s;
    }
    /* Expected size, computed with the bounds above (each matrix <= FAN_MAX_MATRIX, <= 64 of
       them): no overflow on 64-bit size_t, and checked anyway. */
    size_t body = 0;
    for (uint32_t l = 0; l < L; l++) {
        size_t wn;
        FAN__FAIL_IF(err, !fan__mul_ok(sizes[l], sizes[l + 1], &wn) || wn > FAN_MAX_MATRIX,
                     FAN_E_LIMIT, "layer %u: %zu x %zu exceeds FAN_MAX_MATRIX", (unsigned)l,
                     sizes[l + 1], sizes[l]);
        body += 4 * (2 * wn + sizes[l + 1]);
    }
    const size_t need = FIXED_HEADER + table + body + 4;
    FAN__FAIL_IF(err, len != need, FAN_E_FORMAT,
                 "file has %zu bytes; its header describes %zu", len, need);
    const uint32_t crc_stored = get_u32(p + len - 4);
    const uint32_t crc_actual = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), p, len - 4);
    FAN__FAIL_IF(err, crc_stored != crc_actual, FAN_E_CHECKSUM,
                 "CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt",
                 (unsigned)crc_stored, (unsigned)crc_actual);

    /* The bytes are now trusted to be what was written; still validate the enumerations. */
    const uint32_t rule = get_u32(p + 20), loss = get_u32(p + 24), iw = get_u32(p + 28),
                   ib = get_u32(p + 32);
    const float slope = bits_f32(get_u32(p + 36));
    FAN__FAIL_IF(err, rule > FAN_RULE_FA || loss > FAN_LOSS_MSE || iw > FAN_INIT_LECUN_NORMAL ||
                          ib > FAN_INIT_LECUN_NORMAL || !(slope >= 0.0f && slope <= 1.0f),
                 FAN_E_FORMAT, "unknown rule, loss, initialiser or slope in the header");
    const unsigned char *acts = p + FIXED_HEADER + 8 * (L + 1);
    for (uint32_t l = 0; l < L; l++)
        FAN__FAIL_IF(err, get_u32(acts + 4 * l) > FAN_ACT_SIGMOID, FAN_E_FORMAT,
                     "unknown activation %u for layer %u", (unsigned)get_u32(acts + 4 * l),
                     (unsigned)l);

    fan_net *net = NULL;
    FAN__CHECK(fan__net_new(&net, sizes, (size_t)L + 1, alloc, err));
    net->rule = (fan_rule)rule;
    net->loss = (fan_loss)loss;
    net->init_w = (fan_init)iw;
    net->init_b = (fan_init)ib;
    net->leaky_slope = slope;
    net->weight_seed = get_u64(p + 40);
    net->feedback_seed = get_u64(p + 48);
    for (uint32_t l = 0; l < L; l++) net->act[l] = (fan_activation)get_u32(acts + 4 * l);
    const unsigned char *q = acts + 4 * L;
    for (uint32_t l = 0; l < L; l++) {
        const size_t wn = sizes[l] * sizes[l + 1];
        read_floats(fan__net_w(net, l), q, wn);
        q += 4 * wn;
        read_floats(fan__net_b(net, l), q, sizes[l + 1]);
        q += 4 * sizes[l + 1];
        read_floats(fan__net_fb(net, l), q, wn);
        q += 4 * wn;
    }
    /* A file with a good CRC can still carry NaN or infinity (written by another tool, or
       corrupted before the CRC was computed); fan_net_set_weights refuses those, so does load. */
    if (!fan__all_finite(net->params, net->n_params) ||
        !fan__all_finite(net->feedback, net->n_feedback)) {
        fan_net_free(net);
        return fan__fail(err, FAN_E_FORMAT, "non-finite weight, bias or feedback value");
    }
    *out = net;
    return FAN_OK;
}

/* ---- loading from a path ------------------------------------------------------------------ */

/* Header bytes up to the end of the layer table of a file with the most layers. */
#define HEADER_MAX (FIXED_HEADER + 8u * (FAN_MAX_LAYERS + 1u) + 4u * FAN_MAX_LAYERS)

/*
 * The file size that a header declares, from its first n bytes (n is the file size or
 * HEADER_MAX, whichever is smaller), so that a file is judged before its body is read. Checks
 * what decode() checks first, in the same order and with the same statuses; decode() still
 * validates the whole file afterwards.
 */
static fan_status declared_size(const unsigned char *p, size_t n, uint64_t *need, char *err)
{
    FAN__FAIL_IF(err, n < FIXED_HEADER + 4, FAN_E_FORMAT,
                 "%zu bytes is shorter than the smallest model file", n);
    FAN__FAIL_IF(err, memcmp(p, MAGIC, sizeof MAGIC) != 0, FAN_E_FORMAT,
                 "not a libfanoise model (bad magic)");
    const uint32_t version = get_u32(p + 8);
    FAN__FAIL_IF(err, version != FORMAT_VERSION, FAN_E_VERSION,
                 "format version %u; this library reads version %u", (unsigned)version,
                 FORMAT_VERSION);
    const uint32_t L = get_u32(p + 16);
    FAN__FAIL_IF(err, L < 1 || L > FAN_MAX_LAYERS, FAN_E_FORMAT,
                 "layer count %u is outside [1, %d]", (unsigned)L, FAN_MAX_LAYERS);
    const size_t table = (size_t)8 * (L + 1) + (size_t)4 * L;
    FAN__FAIL_IF(err, n - 4 - FIXED_HEADER < table, FAN_E_FORMAT,
                 "file truncated inside the layer table");
    uint64_t total = FIXED_HEADER + table + 4, prev = 0;
    for (uint32_t l = 0; l <= L; l++) {
        const uint64_t w = get_u64(p + FIXED_HEADER + 8 * l);
        FAN__FAIL_IF(err, w == 0 || w > FAN_MAX_WIDTH, FAN_E_LIMIT,
                     "layer width %llu is outside [1, FAN_MAX_WIDTH]", (unsigned long long)w);
        if (l > 0) {
            FAN__FAIL_IF(err, prev * w > FAN_MAX_MATRIX, FAN_E_LIMIT,
                         "layer %u: %llu x %llu exceeds FAN_MAX_MATRIX", (unsigned)(l - 1),
                         (unsigned long long)w, (unsigned long long)prev);
            total += 4 * (2 * prev * w + w); /* W, b, B; at most 64 x 2 GiB: no overflow */
        }
        prev = w;
    }
    *need = total;
    return FAN_OK;
}

/* Reads a model file into memory from o's allocator, after checking its header against its
   size and the load budget: nothing is allocated for a file that cannot load. */
static fan_status read_model_file(const char *path, fan__opts *o, unsigned char **data,
                                  size_t *len)
{
    fan__file f;
    uint64_t size = 0;
    FAN__CHECK(fan__file_open_regular(&f, o->io, path, &size, o->err));
    unsigned char head[HEADER_MAX];
    const size_t want = size < HEADER_MAX ? (size_t)size : HEADER_MAX;
    size_t got = 0;
    uint64_t need = 0;
    fan_status st = fan__file_read(&f, head, want, &got, o->err);
    if (st == FAN_OK && got != want)
        st = fan__fail(o->err, FAN_E_IO, "%s shrank while it was read", path);
    if (st == FAN_OK) st = declared_size(head, got, &need, o->err);
    if (st == FAN_OK && need != size)
        st = fan__fail(o->err, FAN_E_FORMAT, "%s has %llu bytes; its header describes %llu",
                       path, (unsigned long long)size, (unsigned long long)need);
    if (st == FAN_OK) st = fan__opts_check_budget(o, size, "the model file");
    if (st == FAN_OK && size > SIZE_MAX)
        st = fan__fail(o->err, FAN_E_LIMIT, "%s does not fit in this process's memory", path);
    *data = NULL;
    if (st == FAN_OK) {
        *len = (size_t)size;
        *data = fan__alloc(&o->alloc, *len);
        if (*data == NULL)
            st = fan__fail(o->err, FAN_E_NOMEM, "cannot allocate %zu bytes for %s", *len, path);
    }
    if (st == FAN_OK) {
        memcpy(*data, head, got);
        size_t rest = 0;
        st = fan__file_read(&f, *data + got, *len - got, &rest, o->err);
        if (st == FAN_OK && rest != *len - got)
            st = fan__fail(o->err, FAN_E_IO, "%s shrank while it was read", path);
    }
    const fan_status c = fan__file_close(&f, st == FAN_OK ? o->err : NULL);
    if (st == FAN_OK) st = c;
    if (st != FAN_OK) {
        fan__free(&o->alloc, *data);
        *data = NULL;
    }
    return st;
}

fan_status fan__net_load_opts(fan_net **out, const char *path, const void *buf, size_t len,
                              fan__opts *o)
{
    if (path != NULL) {
        unsigned char *data = NULL;
        size_t n = 0;
        FAN__CHECK(read_model_file(path, o, &data, &n));
        const fan_status st = decode(out, data, n, o->user_alloc, o->err);
        fan__free(&o->alloc, data);
        return st;
    }
    /* A model's decoded parameters take as many bytes as its encoding. */
    FAN__CHECK(fan__opts_check_budget(o, len, "the model"));
    return decode(out, buf, len, o->user_alloc, o->err);
}

fan_status fan_net_load_ex(fan_net **out, const char *path, const fan_create_options *opts)
{
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (out != NULL) *out = NULL;
    if (st == FAN_OK && out == NULL) st = fan__fail(o.err, FAN_E_NULL, "out is NULL");
    if (st == FAN_OK && path == NULL) st = fan__fail(o.err, FAN_E_NULL, "path is NULL");
    if (st == FAN_OK) st = fan__net_load_opts(out, path, NULL, 0, &o);
    return fan__opts_finish(&o, st);
}

fan_status fan_net_load_mem_ex(fan_net **out, const void *buf, size_t len,
                               const fan_create_options *opts)
{
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (out != NULL) *out = NULL;
    if (st == FAN_OK && out == NULL) st = fan__fail(o.err, FAN_E_NULL, "out is NULL");
    if (st == FAN_OK && buf == NULL) st = fan__fail(o.err, FAN_E_NULL, "buf is NULL");
    if (st == FAN_OK) st = fan__net_load_opts(out, NULL, buf, len, &o);
    return fan__opts_finish(&o, st);
}

fan_status fan_net_load_v2(fan_net **out, const char *path, const void *buf, size_t len,
                           const fan_allocator *alloc, char *errmsg, size_t errmsg_cap)
{
    fan_create_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.alloc = alloc;
    o.errmsg = errmsg;
    o.errmsg_cap = errmsg_cap;
    if (path == NULL && buf == NULL) {
        fan__opts r;
        (void)fan__opts_read(&r, &o);
        if (out != NULL) *out = NULL;
        return fan__opts_finish(&r, fan__fail(r.err, FAN_E_NULL, "%s",
                                              out == NULL ? "out is NULL"
                                                          : "both path and buf are NULL"));
    }
    return path != NULL ? fan_net_load_ex(out, path, &o) : fan_net_load_mem_ex(out, buf, len, &o);
}

fan_status fan_net_load(fan_net **out, const char *path, const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_net_load_ex(out, path, &o);
}

fan_status fan_net_load_mem(fan_net **out, const void *buf, size_t len,
                            const fan_allocator *alloc)
{
    const fan_create_options o = fan__opts_with_alloc(alloc);
    return fan_net_load_mem_ex(out, buf, len, &o);
}
