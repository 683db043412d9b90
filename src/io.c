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
#define FORMAT_VERSION 2u /* written; versions 1 and 2 are read */
#define FIXED_HEADER 56u   /* bytes before the layer table */
/* Largest rule state a file may declare (brSF keeps 32 bytes); checked before anything is read. */
#define MAX_RULE_STATE 4096u

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

/* ---- a sink: memory buffer or a file being saved, with a running CRC ------------------------ */

typedef struct sink {
    unsigned char *buf; /* memory sink, or NULL */
    size_t cap, pos;
    fan__writer *w; /* file sink (fan__save_atomic), or NULL */
    uLong crc;
} sink;

static void sink_write(sink *s, const unsigned char *p, size_t n)
{
    if (n == 0) return;
    s->crc = crc32_z(s->crc, p, n);
    if (s->w != NULL) {
        fan__writer_put(s->w, p, n);
    } else if (s->buf != NULL) {
        memcpy(s->buf + s->pos, p, n);
    }
    s->pos += n;
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

/* Bytes of the layer table: widths, activations, and (version 2) the feedback rows and the
   rule state's length. */
static size_t table_size(uint32_t version, size_t L)
{
    return 8 * (L + 1) + 4 * L + (version >= 2 ? 8 * L + 8 : 0);
}

static size_t encoded_size(const fan_net *net)
{
    const size_t L = fan_net_num_layers(net), *sizes = fan__net_sizes(net);
    size_t floats = fan_net_num_params(net);
    for (size_t l = 0; l < L; l++) floats += fan__net_feedback_rows(net, l) * sizes[l];
    return FIXED_HEADER + table_size(FORMAT_VERSION, L) + fan__net_rule_state_size(net) +
           4 * floats + 4;
}

static void encode(const fan_net *net, sink *s)
{
    fan__net_desc d;
    fan__net_describe(net, &d);
    const size_t L = d.n_layers;
    unsigned char h[FIXED_HEADER];
    memcpy(h, MAGIC, 8);
    put_u32(h + 8, FORMAT_VERSION);
    put_u32(h + 12, 0); /* flags: none defined */
    put_u32(h + 16, (uint32_t)L);
    put_u32(h + 20, (uint32_t)d.rule);
    put_u32(h + 24, (uint32_t)d.loss);
    put_u32(h + 28, (uint32_t)d.init_w);
    put_u32(h + 32, (uint32_t)d.init_b);
    put_u32(h + 36, f32_bits(d.leaky_slope));
    put_u64(h + 40, d.weight_seed);
    put_u64(h + 48, d.feedback_seed);
    sink_write(s, h, sizeof h);
    unsigned char b[8];
    for (size_t l = 0; l <= L; l++) {
        put_u64(b, (uint64_t)d.sizes[l]);
        sink_write(s, b, 8);
    }
    for (size_t l = 0; l < L; l++) {
        put_u32(b, (uint32_t)d.act[l]);
        sink_write(s, b, 4);
    }
    for (size_t l = 0; l < L; l++) {
        put_u64(b, (uint64_t)fan__net_feedback_rows(net, l));
        sink_write(s, b, 8);
    }
    const size_t state = fan__net_rule_state_size(net);
    put_u64(b, (uint64_t)state);
    sink_write(s, b, 8);
    if (state > 0) {
        unsigned char st[MAX_RULE_STATE];
        fan__net_rule_state_write(net, st);
        sink_write(s, st, state);
    }
    for (size_t l = 0; l < L; l++) {
        const size_t in = d.sizes[l], out = d.sizes[l + 1];
        sink_floats(s, fan__net_weights(net, l), out * in);
        sink_floats(s, fan__net_bias(net, l), out);
        sink_floats(s, fan__net_feedback(net, l), fan__net_feedback_rows(net, l) * in);
    }
    unsigned char c[4];
    put_u32(c, (uint32_t)s->crc);
    sink_write(s, c, 4);
}

/* A saved file must load, and fan_net_load refuses non-finite parameters (as
   fan_net_set_weights and fan_net_set_feedback do): refuse to write them in the first place. */
static fan_status check_finite(const fan_net *net)
{
    FAN__FAIL_IF(fan__net_errbuf(net), !fan__net_all_finite(net), FAN_E_NONFINITE,
                 "the net holds NaN or infinite weights, biases or feedback; a saved file "
                 "would not load");
    return FAN_OK;
}

fan_status fan_net_save_mem(const fan_net *net, void *buf, size_t cap, size_t *written)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), written == NULL, FAN_E_NULL, "written is NULL");
    const size_t need = encoded_size(net);
    *written = need;
    if (buf == NULL) return FAN_OK;
    FAN__FAIL_IF(fan__net_errbuf(net), cap < need, FAN_E_SHAPE, "buffer of %zu bytes; the net needs %zu",
                 cap, need);
    FAN__CHECK(check_finite(net));
    sink s = {buf, cap, 0, NULL, crc32(0L, Z_NULL, 0)};
    encode(net, &s);
    return FAN_OK;
}

/* ---- atomic saves: the one path by which the library writes a file -------------------------- */

/* Bytes gathered before each write(2): few system calls for the small header fields, and a
   buffer small enough to take from any allocator. */
#define WRITER_BUFFER 65536u

struct fan__writer {
    fan__file *f;
    unsigned char *buf;
    size_t n;      /* bytes waiting in buf */
    fan_status st; /* the first failure; later writes do nothing */
    char *err;
};

static void writer_flush(fan__writer *w)
{
    if (w->st == FAN_OK && w->n > 0) w->st = fan__file_write(w->f, w->buf, w->n, w->err);
    w->n = 0;
}

void fan__writer_put(fan__writer *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0 && w->st == FAN_OK) {
        if (w->n == WRITER_BUFFER) writer_flush(w);
        const size_t k = n < WRITER_BUFFER - w->n ? n : WRITER_BUFFER - w->n;
        memcpy(w->buf + w->n, b, k);
        w->n += k;
        b += k;
        n -= k;
    }
}

fan_status fan__save_atomic_io(const char *path, fan__emit_fn emit, const void *ctx,
                               const fan_allocator *al, char *err, const fan__fileio *io)
{
    FAN__FAIL_IF(err, path == NULL, FAN_E_NULL, "path is NULL");
    unsigned char *buf = fan__alloc(al, WRITER_BUFFER);
    FAN__FAIL_IF(err, buf == NULL, FAN_E_NOMEM, "cannot allocate a write buffer");
    /* Readers see the old file or the new one, never a mix; see file_replace.c. */
    fan__replace r;
    fan_status st = fan__replace_begin(&r, io, al, path, err);
    if (st == FAN_OK) {
        fan__writer w = {&r.file, buf, 0, FAN_OK, err};
        emit(ctx, &w);
        writer_flush(&w);
        st = w.st;
        if (st == FAN_OK)
            st = fan__replace_commit(&r, err);
        else
            fan__replace_abort(&r);
    }
    fan__free(al, buf);
    return st;
}

fan_status fan__save_atomic(const char *path, fan__emit_fn emit, const void *ctx,
                            const fan_allocator *al, char *err)
{
    return fan__save_atomic_io(path, emit, ctx, al, err, NULL);
}

static void emit_net(const void *ctx, fan__writer *w)
{
    sink s = {NULL, 0, 0, w, crc32(0L, Z_NULL, 0)};
    encode(ctx, &s);
}

fan_status fan__net_save_io(const fan_net *net, const char *path, const fan__fileio *io)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(fan__net_errbuf(net), path == NULL, FAN_E_NULL, "path is NULL");
    FAN__CHECK(check_finite(net));
    return fan__save_atomic_io(path, emit_net, net, fan__net_allocator(net),
                               fan__net_errbuf(net), io);
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

/* What a model's header and layer table say, read from its first n bytes (the whole file when
   decoding; only the head when a path loader checks a file's size before reading it). */
typedef struct header {
    uint32_t version, L;
    size_t sizes[FAN_MAX_LAYERS + 1], fb_rows[FAN_MAX_LAYERS];
    size_t table, state; /* bytes of the layer table and of the rule state */
    size_t need;         /* bytes of the whole file the header describes */
} header;

static fan_status parse_header(const unsigned char *p, size_t n, header *h, char *err)
{
    FAN__FAIL_IF(err, n < FIXED_HEADER + 4, FAN_E_FORMAT,
                 "%zu bytes is shorter than the smallest model file", n);
    FAN__FAIL_IF(err, memcmp(p, MAGIC, sizeof MAGIC) != 0, FAN_E_FORMAT,
                 "not a libfanoise model (bad magic)");
    h->version = get_u32(p + 8);
    FAN__FAIL_IF(err, h->version < 1 || h->version > FORMAT_VERSION, FAN_E_VERSION,
                 "format version %u; this library reads versions 1 to %u",
                 (unsigned)h->version, FORMAT_VERSION);
    FAN__FAIL_IF(err, get_u32(p + 12) != 0, FAN_E_FORMAT, "unknown header flags 0x%x",
                 (unsigned)get_u32(p + 12));
    h->L = get_u32(p + 16);
    FAN__FAIL_IF(err, h->L < 1 || h->L > FAN_MAX_LAYERS, FAN_E_FORMAT,
                 "layer count %u is outside [1, %d]", (unsigned)h->L, FAN_MAX_LAYERS);
    const size_t L = h->L;
    /* The layer table must fit before the sizes are read. */
    h->table = table_size(h->version, L);
    FAN__FAIL_IF(err, n - 4 - FIXED_HEADER < h->table, FAN_E_FORMAT,
                 "file truncated inside the layer table");
    for (size_t l = 0; l <= L; l++) {
        const uint64_t s = get_u64(p + FIXED_HEADER + 8 * l);
        FAN__FAIL_IF(err, s == 0 || s > FAN_MAX_WIDTH, FAN_E_LIMIT,
                     "layer width %llu is outside [1, FAN_MAX_WIDTH]", (unsigned long long)s);
        h->sizes[l] = (size_t)s;
    }
    const unsigned char *rows_at = p + FIXED_HEADER + 8 * (L + 1) + 4 * L;
    h->state = 0;
    for (size_t l = 0; l < L; l++) {
        /* Version 1 stored B with W's shape. */
        const uint64_t r = h->version >= 2 ? get_u64(rows_at + 8 * l) : h->sizes[l + 1];
        FAN__FAIL_IF(err, r == 0 || r > FAN_MAX_WIDTH, FAN_E_LIMIT,
                     "feedback rows %llu of layer %zu are outside [1, FAN_MAX_WIDTH]",
                     (unsigned long long)r, l);
        h->fb_rows[l] = (size_t)r;
    }
    if (h->version >= 2) {
        const uint64_t sl = get_u64(rows_at + 8 * L);
        FAN__FAIL_IF(err, sl > MAX_RULE_STATE, FAN_E_FORMAT,
                     "rule state of %llu bytes exceeds %u", (unsigned long long)sl,
                     MAX_RULE_STATE);
        h->state = (size_t)sl;
    }
    /* Each width is at most 2^24 and each matrix at most FAN_MAX_MATRIX (<= 64 of each kind):
       no overflow on 64-bit size_t, and checked anyway. */
    size_t body = 0;
    for (size_t l = 0; l < L; l++) {
        size_t wn, bn;
        FAN__FAIL_IF(err, !fan__mul_ok(h->sizes[l], h->sizes[l + 1], &wn) ||
                              wn > FAN_MAX_MATRIX ||
                              !fan__mul_ok(h->sizes[l], h->fb_rows[l], &bn) || bn > FAN_MAX_MATRIX,
                     FAN_E_LIMIT, "layer %zu: a matrix exceeds FAN_MAX_MATRIX", l);
        body += 4 * (wn + h->sizes[l + 1] + bn);
    }
    h->need = FIXED_HEADER + h->table + h->state + body + 4;
    return FAN_OK;
}

static fan_status decode(fan_net **out, const unsigned char *p, size_t len,
                         const fan_allocator *alloc, char *err)
{
    header h;
    FAN__CHECK(parse_header(p, len, &h, err));
    const uint32_t version = h.version, L = h.L;
    const size_t table = h.table, state = h.state, *fb_rows = h.fb_rows;
    FAN__FAIL_IF(err, len != h.need, FAN_E_FORMAT,
                 "file has %zu bytes; its header describes %zu", len, h.need);
    fan__net_desc d;
    memset(&d, 0, sizeof d);
    d.n_layers = L;
    memcpy(d.sizes, h.sizes, sizeof d.sizes);
    const unsigned char *acts = p + FIXED_HEADER + 8 * (L + 1);
    const uint32_t crc_stored = get_u32(p + len - 4);
    const uint32_t crc_actual = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), p, len - 4);
    FAN__FAIL_IF(err, crc_stored != crc_actual, FAN_E_CHECKSUM,
                 "CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt",
                 (unsigned)crc_stored, (unsigned)crc_actual);

    /* The bytes are now trusted to be what was written; the net validates the enumerations. */
    d.rule = (fan_rule)get_u32(p + 20);
    d.loss = (fan_loss)get_u32(p + 24);
    d.init_w = (fan_init)get_u32(p + 28);
    d.init_b = (fan_init)get_u32(p + 32);
    d.leaky_slope = bits_f32(get_u32(p + 36));
    d.weight_seed = get_u64(p + 40);
    d.feedback_seed = get_u64(p + 48);
    for (uint32_t l = 0; l < L; l++) d.act[l] = (fan_activation)get_u32(acts + 4 * l);
    FAN__FAIL_IF(err, version == 1 && d.rule != FAN_RULE_BP && d.rule != FAN_RULE_FA,
                 FAN_E_FORMAT, "a version 1 file can only hold a BP or FA net (rule %u)",
                 (unsigned)get_u32(p + 20));
    fan_net *net = NULL;
    FAN__CHECK(fan__net_from_desc(&net, &d, alloc, err));
    fan_status st = FAN_OK;
    for (uint32_t l = 0; l < L && st == FAN_OK; l++)
        if (fan__net_feedback_rows(net, l) != fb_rows[l])
            st = fan__fail(err, FAN_E_FORMAT, "layer %u: rule %s needs %zu feedback rows, the "
                           "file has %zu", (unsigned)l, fan_rule_name(d.rule),
                           fan__net_feedback_rows(net, l), fb_rows[l]);
    const unsigned char *q = p + FIXED_HEADER + table;
    if (st == FAN_OK) st = fan__net_rule_state_read(net, q, state, err);
    q += state;
    for (uint32_t l = 0; l < L && st == FAN_OK; l++) {
        const size_t in = d.sizes[l], o = d.sizes[l + 1], bn = fb_rows[l] * in;
        read_floats(fan__net_weights_mut(net, l), q, o * in);
        q += 4 * o * in;
        read_floats(fan__net_bias_mut(net, l), q, o);
        q += 4 * o;
        read_floats(fan__net_feedback_mut(net, l), q, bn);
        q += 4 * bn;
    }
    /* A file with a good CRC can still carry NaN or infinity (written by another tool, or
       corrupted before the CRC was computed); fan_net_set_weights refuses those, so does load. */
    if (st == FAN_OK && !fan__net_all_finite(net))
        st = fan__fail(err, FAN_E_FORMAT, "non-finite weight, bias or feedback value");
    if (st != FAN_OK) {
        fan_net_free(net);
        return st;
    }
    *out = net;
    return FAN_OK;
}

fan_status fan__read_file_io(const char *path, uint64_t max_bytes, const fan_allocator *al,
                             unsigned char **data, size_t *len, char *err,
                             const fan__fileio *io)
{
    *data = NULL;
    *len = 0;
    fan__file f;
    uint64_t size = 0;
    FAN__CHECK(fan__file_open_regular(&f, io, path, &size, err));
    fan_status st = FAN_OK;
    if (size > SIZE_MAX / 2 || (max_bytes != 0 && size > max_bytes)) {
        st = fan__fail(err, FAN_E_LIMIT, "%s has %llu bytes, more than this load accepts (%llu)",
                       path, (unsigned long long)size,
                       (unsigned long long)(max_bytes != 0 ? max_bytes : SIZE_MAX / 2));
    } else {
        *len = (size_t)size;
        *data = fan__alloc(al, *len);
        if (*data == NULL)
            st = fan__fail(err, FAN_E_NOMEM, "cannot allocate %zu bytes for %s", *len, path);
    }
    size_t got = 0;
    if (st == FAN_OK) st = fan__file_read(&f, *data, *len, &got, err);
    if (st == FAN_OK && got != *len)
        st = fan__fail(err, FAN_E_IO, "%s shrank while it was read", path);
    const fan_status c = fan__file_close(&f, st == FAN_OK ? err : NULL);
    if (st == FAN_OK) st = c;
    if (st != FAN_OK) {
        fan__free(al, *data);
        *data = NULL;
        *len = 0;
    }
    return st;
}

fan_status fan__read_file(const char *path, uint64_t max_bytes, const fan_allocator *al,
                          unsigned char **data, size_t *len, char *err)
{
    return fan__read_file_io(path, max_bytes, al, data, len, err, NULL);
}

/* ---- loading from a path ------------------------------------------------------------------ */

/* Header bytes up to the end of the layer table of a file with the most layers, plus the
   CRC's 4 bytes that the smallest-file check counts. */
#define HEADER_MAX (FIXED_HEADER + 8u * (FAN_MAX_LAYERS + 1u) + 4u * FAN_MAX_LAYERS + \
                    8u * FAN_MAX_LAYERS + 8u + 4u)

/* The size of the whole file that a model's head describes, checked as far as the head goes;
   decode() still validates the whole file afterwards. */
static fan_status declared_size(const unsigned char *p, size_t n, uint64_t *need, char *err)
{
    header h;
    FAN__CHECK(parse_header(p, n, &h, err));
    *need = h.need;
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
