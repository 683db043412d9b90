/*
 * checkpoint.c - one file that holds everything a training run needs to continue exactly where
 * it stopped: the net (a model file, format version 2), the optimizer's state, the iterator's
 * position and a fingerprint of the dataset the iterator runs over. The byte layout is in
 * docs/file-format.md ("Checkpoint files"); the parts are the blobs that fan_net_save_mem,
 * fan_optimizer_save_mem and fan_iter_get_state write, so each keeps its own checks.
 */
#include "byteorder.h"
#include "iter_internal.h"
#include "options.h"

#include <string.h>
#include <zlib.h>

/* "FANCKPT" and 0x1a, as the model file's magic. */
static const unsigned char CKPT_MAGIC[8] = {'F', 'A', 'N', 'C', 'K', 'P', 'T', 0x1a};
#define CKPT_VERSION 1u
#define CKPT_HEADER 96u /* magic, version, flags, three lengths, the fingerprint */
#define CKPT_FP_OFFSET 40u
/* Flags: which parts the file holds. */
#define CKPT_HAS_OPT 1u
#define CKPT_HAS_ITER 2u
#define CKPT_HAS_FP 4u

/* The three parts of a checkpoint as they will be written. */
typedef struct parts {
    size_t net_len, opt_len, iter_len;
    int has_fp;
    fan__dataset_fp fp;
} parts;

static fan_status measure(const fan_net *net, const fan_optimizer *opt, const fan_iter *it,
                          parts *p)
{
    memset(p, 0, sizeof *p);
    char *err = fan__net_errbuf(net);
    fan_status st = fan_net_save_mem(net, NULL, 0, &p->net_len);
    FAN__FAIL_IF(err, st != FAN_OK, st, "%s", fan_net_errmsg(net));
    if (opt != NULL) {
        FAN__FAIL_IF(err,
                     !fan__optimizer_fits(opt, fan__net_sizes(net), fan_net_num_layers(net),
                                          fan_net_num_params(net)),
                     FAN_E_SHAPE,
                     "the optimizer was created for a net of other layer shapes than this one");
        st = fan_optimizer_save_mem(opt, NULL, 0, &p->opt_len);
        FAN__FAIL_IF(err, st != FAN_OK, st, "%s", fan_optimizer_errmsg(opt));
    }
    if (it != NULL) {
        FAN__FAIL_IF(err, fan_iter_dim(it) != fan_net_input_size(net) ||
                              fan_iter_classes(it) != fan_net_output_size(net),
                     FAN_E_SHAPE,
                     "the iterator's batches (%zu inputs, %zu classes) do not fit the net (%zu "
                     "inputs, %zu outputs)",
                     fan_iter_dim(it), fan_iter_classes(it), fan_net_input_size(net),
                     fan_net_output_size(net));
        st = fan_iter_get_state(it, NULL, 0, &p->iter_len);
        FAN__FAIL_IF(err, st != FAN_OK, st, "%s", fan_iter_errmsg(it));
        p->has_fp = !fan_iter_is_noise(it);
    }
    return FAN_OK;
}

static size_t total_size(const parts *p)
{
    return CKPT_HEADER + p->net_len + p->opt_len + p->iter_len + 4;
}

/* Writes the whole checkpoint into out (total_size(p) bytes). */
static fan_status encode(const fan_net *net, const fan_optimizer *opt, const fan_iter *it,
                         parts *p, unsigned char *out)
{
    if (p->has_fp) fan__dataset_fingerprint(fan__iter_dataset(it), &p->fp);
    fan__wcur w = {out, 0};
    fan__w_bytes(&w, CKPT_MAGIC, sizeof CKPT_MAGIC);
    fan__w_u32(&w, CKPT_VERSION);
    fan__w_u32(&w, (opt ? CKPT_HAS_OPT : 0u) | (it ? CKPT_HAS_ITER : 0u) |
                       (p->has_fp ? CKPT_HAS_FP : 0u));
    fan__w_u64(&w, p->net_len);
    fan__w_u64(&w, p->opt_len);
    fan__w_u64(&w, p->iter_len);
    fan__w_u64(&w, p->fp.count);
    fan__w_u64(&w, p->fp.dim);
    fan__w_u64(&w, p->fp.classes);
    fan__w_u32(&w, p->fp.storage);
    fan__w_u32(&w, p->fp.norm);
    fan__w_f64(&w, p->fp.mean);
    fan__w_f64(&w, p->fp.std);
    fan__w_u64(&w, p->fp.hash);
    size_t n = 0;
    /* The sizes were measured a moment ago on the same const handles: these cannot fail but
       for a broken invariant, which is then reported rather than written. */
    fan_status st = fan_net_save_mem(net, out + w.pos, p->net_len, &n);
    w.pos += p->net_len;
    if (st == FAN_OK && opt != NULL) st = fan_optimizer_save_mem(opt, out + w.pos, p->opt_len, &n);
    w.pos += p->opt_len;
    if (st == FAN_OK && it != NULL) st = fan_iter_get_state(it, out + w.pos, p->iter_len, &n);
    w.pos += p->iter_len;
    FAN__FAIL_IF(fan__net_errbuf(net), st != FAN_OK, st, "cannot serialise a part of the checkpoint");
    fan__put_u32(out + w.pos, (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), out, w.pos));
    return FAN_OK;
}

fan_status fan_checkpoint_save_mem(void *buf, size_t cap, size_t *written, const fan_net *net,
                                   const fan_optimizer *opt, const fan_iter *it)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, written == NULL, FAN_E_NULL, "written is NULL");
    parts p;
    FAN__CHECK(measure(net, opt, it, &p));
    *written = total_size(&p);
    if (buf == NULL) return FAN_OK;
    FAN__FAIL_IF(err, cap < *written, FAN_E_SHAPE, "buffer of %zu bytes; the checkpoint needs %zu",
                 cap, *written);
    return encode(net, opt, it, &p, buf);
}

typedef struct bytes {
    const unsigned char *p;
    size_t len;
} bytes;

static void emit_bytes(const void *ctx, fan__writer *w)
{
    const bytes *b = ctx;
    fan__writer_put(w, b->p, b->len);
}

fan_status fan__checkpoint_save_io(const char *path, const fan_net *net,
                                   const fan_optimizer *opt, const fan_iter *it,
                                   const fan__fileio *io)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, path == NULL, FAN_E_NULL, "path is NULL");
    parts p;
    FAN__CHECK(measure(net, opt, it, &p));
    const size_t len = total_size(&p);
    const fan_allocator *al = fan__net_allocator(net);
    /* Built in memory first: the checksum covers the parts, and a failure to serialise never
       touches the file. */
    unsigned char *buf = fan__alloc(al, len);
    FAN__FAIL_IF(err, buf == NULL, FAN_E_NOMEM, "cannot allocate %zu bytes for the checkpoint",
                 len);
    fan_status st = encode(net, opt, it, &p, buf);
    if (st == FAN_OK) {
        const bytes b = {buf, len};
        st = fan__save_atomic_io(path, emit_bytes, &b, al, err, io);
    }
    fan__free(al, buf);
    return st;
}

fan_status fan_checkpoint_save(const char *path, const fan_net *net, const fan_optimizer *opt,
                               const fan_iter *it)
{
    return fan__checkpoint_save_io(path, net, opt, it, NULL);
}

/* ---- loading ------------------------------------------------------------------------------- */

/* Compares the saved fingerprint with data; the message goes to err and to data's buffer. */
static fan_status check_dataset(const fan__dataset_fp *saved, const fan_dataset *data, char *err)
{
    fan__dataset_fp now;
    fan__dataset_fingerprint(data, &now);
    fan_status st = FAN_OK;
    if (now.count != saved->count || now.dim != saved->dim || now.classes != saved->classes) {
        st = fan__fail(err, FAN_E_SHAPE,
                       "the checkpoint's iterator ran over %llu samples of dim %llu with %llu "
                       "classes; the dataset given has %llu samples of dim %llu with %llu classes",
                       (unsigned long long)saved->count, (unsigned long long)saved->dim,
                       (unsigned long long)saved->classes, (unsigned long long)now.count,
                       (unsigned long long)now.dim, (unsigned long long)now.classes);
    } else if (now.storage != saved->storage || now.norm != saved->norm ||
               now.mean != saved->mean || now.std != saved->std) {
        st = fan__fail(err, FAN_E_INVALID,
                       "the dataset given is stored or normalised differently from the one the "
                       "checkpoint's iterator ran over (%s storage, normalisation %u, mean %g, std "
                       "%g saved; %s, %u, %g, %g given)",
                       saved->storage ? "float" : "uint8", (unsigned)saved->norm, saved->mean,
                       saved->std, now.storage ? "float" : "uint8", (unsigned)now.norm, now.mean,
                       now.std);
    } else if (now.hash != saved->hash) {
        st = fan__fail(err, FAN_E_INVALID,
                       "the dataset given has the checkpoint's sizes but other %s (content hash "
                       "%016llx saved, %016llx given)",
                       (uint32_t)now.hash != (uint32_t)saved->hash ? "labels" : "samples",
                       (unsigned long long)saved->hash, (unsigned long long)now.hash);
    }
    if (st != FAN_OK) (void)fan__fail(fan__dataset_errbuf(data), st, "%s", err);
    return st;
}

/* Everything up to the parts: checked before anything is allocated. */
typedef struct header {
    uint32_t flags;
    size_t net_len, opt_len, iter_len;
    fan__dataset_fp fp;
} header;

static fan_status read_header(const unsigned char *buf, size_t len, header *h, char *err)
{
    fan__rcur r = {buf, len, 0, 0};
    const unsigned char *magic = fan__r_take(&r, sizeof CKPT_MAGIC);
    const uint32_t version = fan__r_u32(&r);
    h->flags = fan__r_u32(&r);
    const uint64_t net_len = fan__r_u64(&r), opt_len = fan__r_u64(&r), iter_len = fan__r_u64(&r);
    h->fp.count = fan__r_u64(&r);
    h->fp.dim = fan__r_u64(&r);
    h->fp.classes = fan__r_u64(&r);
    h->fp.storage = fan__r_u32(&r);
    h->fp.norm = fan__r_u32(&r);
    h->fp.mean = fan__r_f64(&r);
    h->fp.std = fan__r_f64(&r);
    h->fp.hash = fan__r_u64(&r);
    FAN__FAIL_IF(err, r.over || len < CKPT_HEADER + 4, FAN_E_FORMAT,
                 "%zu bytes is shorter than the smallest checkpoint", len);
    FAN__FAIL_IF(err, memcmp(magic, CKPT_MAGIC, sizeof CKPT_MAGIC) != 0, FAN_E_FORMAT,
                 "not a libfanoise checkpoint (bad magic)");
    FAN__FAIL_IF(err, version != CKPT_VERSION, FAN_E_VERSION,
                 "checkpoint format version %u; this library reads version %u", (unsigned)version,
                 CKPT_VERSION);
    FAN__FAIL_IF(err, h->flags & ~(CKPT_HAS_OPT | CKPT_HAS_ITER | CKPT_HAS_FP), FAN_E_FORMAT,
                 "unknown checkpoint flags 0x%x", (unsigned)h->flags);
    /* Each length is below len before they are added, so the sum cannot overflow. */
    const uint64_t room = len - CKPT_HEADER - 4;
    FAN__FAIL_IF(err, net_len > room || opt_len > room || iter_len > room ||
                          net_len + opt_len + iter_len != room,
                 FAN_E_FORMAT,
                 "checkpoint has %zu bytes; its header describes parts of %llu + %llu + %llu "
                 "bytes (truncated or padded)",
                 len, (unsigned long long)net_len, (unsigned long long)opt_len,
                 (unsigned long long)iter_len);
    const uint32_t stored = fan__get_u32(buf + len - 4);
    const uint32_t actual = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, len - 4);
    FAN__FAIL_IF(err, stored != actual, FAN_E_CHECKSUM,
                 "checkpoint CRC-32 mismatch (stored %08x, computed %08x): the file is corrupt",
                 (unsigned)stored, (unsigned)actual);
    FAN__FAIL_IF(err, net_len == 0, FAN_E_FORMAT, "the checkpoint holds no net");
    FAN__FAIL_IF(err, ((h->flags & CKPT_HAS_OPT) != 0) != (opt_len != 0) ||
                          ((h->flags & CKPT_HAS_ITER) != 0) != (iter_len != 0) ||
                          ((h->flags & CKPT_HAS_FP) && !(h->flags & CKPT_HAS_ITER)),
                 FAN_E_FORMAT, "checkpoint flags 0x%x disagree with its part lengths",
                 (unsigned)h->flags);
    h->net_len = (size_t)net_len;
    h->opt_len = (size_t)opt_len;
    h->iter_len = (size_t)iter_len;
    return FAN_OK;
}

static fan_status decode(const unsigned char *buf, size_t len, fan_net **net,
                         fan_optimizer **opt, fan_iter **it, const fan_dataset *data,
                         const fan_allocator *alloc, uint64_t max_bytes, char *err)
{
    header h;
    memset(&h, 0, sizeof h);
    FAN__CHECK(read_header(buf, len, &h, err));
    const unsigned char *net_at = buf + CKPT_HEADER, *opt_at = net_at + h.net_len,
                        *iter_at = opt_at + h.opt_len;
    const int want_iter = it != NULL && (h.flags & CKPT_HAS_ITER);
    /* The net and the optimizer decode to about their bytes; the iterator's batch buffers are
       declared by a few numbers and may be far larger. */
    const uint64_t iter_bytes =
        want_iter ? fan__iter_state_alloc_bytes(iter_at, h.iter_len, data) : 0;
    FAN__FAIL_IF(err, iter_bytes > max_bytes || len > max_bytes - iter_bytes, FAN_E_LIMIT,
                 "the checkpoint decodes to %llu bytes (%zu of file, %llu of iterator buffers), "
                 "above the load budget of %llu",
                 (unsigned long long)(len + iter_bytes), len, (unsigned long long)iter_bytes,
                 (unsigned long long)max_bytes);
    if (want_iter) {
        /* A batch iterator's state carries the fingerprint; a noise iterator's does not. */
        const int noise = h.iter_len > FAN__ITER_STATE_KIND_OFFSET &&
                          iter_at[FAN__ITER_STATE_KIND_OFFSET] == 1;
        FAN__FAIL_IF(err, noise == ((h.flags & CKPT_HAS_FP) != 0), FAN_E_FORMAT,
                     "the checkpoint's dataset fingerprint flag disagrees with its iterator");
        if (!noise) {
            FAN__FAIL_IF(err, data == NULL, FAN_E_NULL,
                         "the checkpoint holds a batch iterator: pass the dataset it ran over "
                         "(or NULL for the iterator to skip it)");
            FAN__CHECK(check_dataset(&h.fp, data, err));
        }
    }
    fan__msg msg_buf;
    char *msg = fan__msg_init(&msg_buf);
    fan_status st = fan_net_load_v2(net, NULL, net_at, h.net_len, alloc, msg, FAN__ERRMSG_CAP);
    FAN__FAIL_IF(err, st != FAN_OK, st, "the checkpoint's net: %s", msg);
    if (opt != NULL && (h.flags & CKPT_HAS_OPT)) {
        st = fan__optimizer_load(opt, opt_at, h.opt_len, alloc, msg);
        if (st == FAN_OK && !fan__optimizer_fits(*opt, fan__net_sizes(*net),
                                                 fan_net_num_layers(*net),
                                                 fan_net_num_params(*net))) {
            st = fan__fail(msg, FAN_E_FORMAT, "it was sized for a net of other layer shapes");
        }
        if (st != FAN_OK) (void)fan__fail(err, st, "the checkpoint's optimizer: %s", msg);
    }
    if (st == FAN_OK && want_iter) {
        st = fan__iter_from_state(it, iter_at, h.iter_len, data, alloc, msg);
        if (st == FAN_OK && (fan_iter_dim(*it) != fan_net_input_size(*net) ||
                             fan_iter_classes(*it) != fan_net_output_size(*net)))
            st = fan__fail(msg, FAN_E_FORMAT, "its batches do not fit the checkpoint's net");
        if (st != FAN_OK) (void)fan__fail(err, st, "the checkpoint's iterator: %s", msg);
    }
    return st;
}

/* Sets every requested output to NULL. */
static void clear_outputs(fan_net **net, fan_optimizer **opt, fan_iter **it)
{
    *net = NULL;
    if (opt != NULL) *opt = NULL;
    if (it != NULL) *it = NULL;
}

/* Frees what a failed load made and clears the outputs. */
static fan_status undo(fan_status st, fan_net **net, fan_optimizer **opt, fan_iter **it)
{
    if (st == FAN_OK) return st;
    if (it != NULL) fan_iter_free(*it);
    if (opt != NULL) fan_optimizer_free(*opt);
    fan_net_free(*net);
    clear_outputs(net, opt, it);
    return st;
}

/* fan_checkpoint_load (path, read through the file layer io) or _load_mem (buf, len); err is
   not NULL. */
static fan_status load(const char *path, const void *buf, size_t len, fan_net **net,
                       fan_optimizer **opt, fan_iter **it, const fan_dataset *data,
                       const fan_allocator *alloc, uint64_t max_bytes, char *err,
                       const fan__fileio *io)
{
    FAN__FAIL_IF(err, net == NULL, FAN_E_NULL, "net (the output) is NULL");
    clear_outputs(net, opt, it);
    if (path == NULL) {
        FAN__FAIL_IF(err, buf == NULL, FAN_E_NULL, "buf is NULL");
        return undo(decode(buf, len, net, opt, it, data, alloc, max_bytes, err), net, opt, it);
    }
    fan_allocator al;
    fan__alloc_init(&al, alloc);
    unsigned char *data_bytes = NULL;
    size_t n = 0;
    FAN__CHECK(fan__read_file_io(path, max_bytes, &al, &data_bytes, &n, err, io));
    fan_status st = decode(data_bytes, n, net, opt, it, data, alloc, max_bytes, err);
    if (st != FAN_OK) {
        /* The file's name leads the message, so a user with several checkpoints knows which. */
        char inner[FAN__ERRMSG_CAP]; /* only read: a plain buffer */
        memcpy(inner, err, sizeof inner);
        (void)fan__fail(err, st, "%s: %s", path, inner);
    }
    fan__free(&al, data_bytes);
    return undo(st, net, opt, it);
}

fan_status fan__checkpoint_load_opts(const char *path, fan_net **net, fan_optimizer **opt,
                                     fan_iter **it, const fan_dataset *data, fan__opts *o)
{
    return load(path, NULL, 0, net, opt, it, data, o->user_alloc, o->max_load_bytes, o->err,
                o->io);
}

fan_status fan_checkpoint_load(const char *path, fan_net **net, fan_optimizer **opt, fan_iter **it,
                               const fan_dataset *data, const fan_allocator *alloc)
{
    if (path == NULL) {
        if (net != NULL) clear_outputs(net, opt, it);
        return FAN_E_NULL;
    }
    fan__msg msg;
    return load(path, NULL, 0, net, opt, it, data, alloc, FAN_DEFAULT_MAX_LOAD_BYTES,
                fan__msg_init(&msg), NULL);
}

fan_status fan_checkpoint_load_mem(const void *buf, size_t len, fan_net **net,
                                   fan_optimizer **opt, fan_iter **it, const fan_dataset *data,
                                   const fan_allocator *alloc)
{
    if (buf == NULL) {
        if (net != NULL) clear_outputs(net, opt, it);
        return FAN_E_NULL;
    }
    fan__msg msg;
    return load(NULL, buf, len, net, opt, it, data, alloc, FAN_DEFAULT_MAX_LOAD_BYTES,
                fan__msg_init(&msg), NULL);
}

fan_status fan_checkpoint_load_ex(const char *path, fan_net **net, fan_optimizer **opt,
                                  fan_iter **it, const fan_dataset *data,
                                  const fan_create_options *opts)
{
    if (net != NULL) clear_outputs(net, opt, it);
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && path == NULL) st = fan__fail(o.err, FAN_E_NULL, "path is NULL");
    if (st == FAN_OK) st = fan__checkpoint_load_opts(path, net, opt, it, data, &o);
    return fan__opts_finish(&o, st);
}

fan_status fan_checkpoint_load_mem_ex(const void *buf, size_t len, fan_net **net,
                                      fan_optimizer **opt, fan_iter **it,
                                      const fan_dataset *data, const fan_create_options *opts)
{
    if (net != NULL) clear_outputs(net, opt, it);
    fan__opts o;
    fan_status st = fan__opts_read(&o, opts);
    if (st == FAN_OK && buf == NULL) st = fan__fail(o.err, FAN_E_NULL, "buf is NULL");
    if (st == FAN_OK)
        st = load(NULL, buf, len, net, opt, it, data, o.user_alloc, o.max_load_bytes, o.err,
                  NULL);
    return fan__opts_finish(&o, st);
}
