/* fuzz_load_path.c - libFuzzer target for the path-based loaders (fan_net_load_ex,
   fan_dataset_load_idx_ex, _cifar_ex, _csv_ex) as the file system presents them: regular files,
   symbolic links, a directory, a FIFO and missing files, under a fuzzed load budget and with the
   Nth file operation failing through the file layer's fault hook (fileio.h).

   Input layout: byte 0 loader (bits 0-1: net, idx, cifar, csv; bit 2: gzip the first file here;
   bit 3: gzip the second); byte 1 kind of the first path (mod 5: regular file, symbolic link to
   it, directory, FIFO, dangling link); byte 2 budget (0: default, else 2^(b mod 40) bytes);
   bytes 3-4 the operation to fail (u16 little-endian, 0: none); byte 5 loader argument (CSV
   label column, 255 = last, else mod 8; CIFAR label bytes, 1 + bit 0); byte 6 bit 0 CSV
   skip_header, bit 1 CIFAR reads the second file too; bytes 7-8 length of the first file (u16
   little-endian, clamped); the first file; the second file (IDX labels, second CIFAR batch).

   Oracles: documented statuses only (loader statuses plus FAN_E_IO); FAN_E_IO for every path
   that is not a regular file and whenever the injected fault was reached; on failure *out NULL,
   a message, no memory and no descriptor leaked; on success the same result as the memory
   loader given the same bytes and budget, and a dataset or model within the budget. */
#include "fuzz_data.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "options.h"

/* Budget selector: 2^(b mod BUDGET_BITS) bytes, from 1 byte to 512 GiB. */
#define BUDGET_BITS 40

enum { L_NET = 0, L_IDX = 1, L_CIFAR = 2, L_CSV = 3 };
enum { K_REGULAR = 0, K_LINK = 1, K_DIR = 2, K_FIFO = 3, K_DANGLING = 4, K_COUNT = 5 };

static char dir[256];
static char p_a[300], p_b[300], p_link[300], p_dir[300], p_fifo[300], p_dangling[300];

static void cleanup(void)
{
    (void)unlink(p_a);
    (void)unlink(p_b);
    (void)unlink(p_link);
    (void)unlink(p_fifo);
    (void)unlink(p_dangling);
    (void)rmdir(p_dir);
    (void)rmdir(dir);
}

/* One directory per process, with the fixed entries every input may name. */
static void setup(void)
{
    if (dir[0] != '\0') return;
    const char *t = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/fanoise-fuzz-path-XXXXXX", t != NULL && t[0] ? t : "/tmp");
    FZ_ASSERT(mkdtemp(dir) != NULL);
    snprintf(p_a, sizeof p_a, "%s/a", dir);
    snprintf(p_b, sizeof p_b, "%s/b", dir);
    snprintf(p_link, sizeof p_link, "%s/link", dir);
    snprintf(p_dir, sizeof p_dir, "%s/sub", dir);
    snprintf(p_fifo, sizeof p_fifo, "%s/fifo", dir);
    snprintf(p_dangling, sizeof p_dangling, "%s/dangling", dir);
    FZ_ASSERT(symlink("a", p_link) == 0);
    FZ_ASSERT(symlink("missing", p_dangling) == 0);
    FZ_ASSERT(mkdir(p_dir, 0700) == 0);
    FZ_ASSERT(mkfifo(p_fifo, 0600) == 0);
    atexit(cleanup);
}

static void put_file(const char *path, const uint8_t *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FZ_ASSERT(fd >= 0);
    for (size_t done = 0; done < n;) {
        ssize_t w = write(fd, data + done, n - done);
        FZ_ASSERT(w > 0);
        done += (size_t)w;
    }
    FZ_ASSERT(close(fd) == 0);
}

static int lowest_free_fd(void)
{
    int fd = open("/dev/null", O_RDONLY);
    FZ_ASSERT(fd >= 0);
    close(fd);
    return fd;
}

/* The fault hook: fails operation number fail_at with EIO. */
typedef struct faults {
    unsigned count, fail_at;
} faults;

static int fail_nth(void *ud, fan__fileop op, const char *path)
{
    (void)op;
    (void)path;
    faults *f = ud;
    return ++f->count == f->fail_at ? EIO : 0;
}

/* What one fuzz input asks for. */
typedef struct job {
    int loader, kind;
    uint64_t budget; /* 0: default */
    unsigned fault;
    size_t col;
    int skip, two_files;
    size_t label_bytes;
    const uint8_t *a, *b; /* file contents as written */
    size_t na, nb;
} job;

static const char *first_path(int kind)
{
    switch (kind) {
    case K_LINK: return p_link;
    case K_DIR: return p_dir;
    case K_FIFO: return p_fifo;
    case K_DANGLING: return p_dangling;
    default: return p_a;
    }
}

/* Runs the path loader; *net or *ds receives the result. */
static fan_status load_path(const job *j, fan__opts *o, fan_net **net, fan_dataset **ds)
{
    const char *pa = first_path(j->kind);
    switch (j->loader) {
    case L_NET: return fan__net_load_opts(net, pa, NULL, 0, o);
    case L_IDX: return fan__dataset_load_idx_opts(ds, pa, p_b, o);
    case L_CIFAR: {
        const char *paths[2] = {pa, p_b};
        return fan__dataset_load_cifar_opts(ds, paths, j->two_files ? 2 : 1, j->label_bytes, o);
    }
    default: return fan__dataset_load_csv_opts(ds, pa, j->col, j->skip, o);
    }
}

/* The memory loader on the same bytes, through the public _ex entry points. */
static fan_status load_mem(const job *j, const fan_create_options *opts, fan_net **net,
                           fan_dataset **ds)
{
    switch (j->loader) {
    case L_NET: return fan_net_load_mem_ex(net, j->a, j->na, opts);
    case L_IDX: return fan_dataset_load_idx_mem_ex(ds, j->a, j->na, j->b, j->nb, opts);
    case L_CIFAR: {
        if (!j->two_files) return fan_dataset_load_cifar_mem_ex(ds, j->a, j->na, j->label_bytes, opts);
        uint8_t *both = malloc(j->na + j->nb + 1);
        FZ_ASSERT(both != NULL);
        memcpy(both, j->a, j->na);
        if (j->nb) memcpy(both + j->na, j->b, j->nb);
        fan_status s = fan_dataset_load_cifar_mem_ex(ds, both, j->na + j->nb, j->label_bytes, opts);
        free(both);
        return s;
    }
    default: return fan_dataset_load_csv_mem_ex(ds, j->a, j->na, j->col, j->skip, opts);
    }
}

/* Bytes the loaded result stands for, as the budget counts them. */
static uint64_t budget_bytes(const job *j, const fan_dataset *ds)
{
    const uint64_t n = fan_dataset_size(ds), dim = fan_dataset_dim(ds);
    if (j->loader == L_CSV) return n * dim * 4 + n * 4;
    return n * dim + n * 4; /* uint8 storage and int32 labels */
}

/* Runs the path loader with the fault hook failing operation `fault` (0: none). */
static fan_status attempt(const job *j, unsigned fault, fz_counter *c, fan_net **net,
                          fan_dataset **ds, int *reached)
{
    fan_allocator al = fz_allocator(c);
    char msg[128];
    const fan_create_options opts = {sizeof opts, &al, msg, sizeof msg, j->budget};
    fan__opts o;
    FZ_ASSERT(fan__opts_read(&o, &opts) == FAN_OK);
    faults f = {0, fault};
    const fan__fileio io = {fail_nth, &f};
    o.io = &io;
    /* The internal entry points leave *out alone on failure (their public wrappers reset it,
       which the memory loaders' targets check). */
    *net = NULL;
    *ds = NULL;
    const int fd = lowest_free_fd();
    const fan_status s = load_path(j, &o, net, ds);
    FZ_ASSERT(lowest_free_fd() == fd);
    FZ_ASSERT(fz_known_status(s) && (fz_loader_status(s) || s == FAN_E_IO));
    if (s != FAN_OK) {
        FZ_ASSERT(*net == NULL && *ds == NULL && c->live == 0);
        FZ_ASSERT(o.err[0] != '\0');
    }
    *reached = fault != 0 && f.count >= fault;
    return s;
}

static void run(const job *j)
{
    fz_counter c = {0};
    fan_net *net = NULL;
    fan_dataset *ds = NULL;
    int reached = 0;
    const fan_status s = attempt(j, 0, &c, &net, &ds, &reached);
    const int regular = j->kind == K_REGULAR || j->kind == K_LINK;
    if (!regular) FZ_ASSERT(s == FAN_E_IO);
    /* Two CIFAR files are one memory buffer only if the first holds whole records (the path
       loader checks each file; their concatenation can be whole when the parts are not). */
    const size_t rec = j->label_bytes + 3072;
    const int split_record = j->loader == L_CIFAR && j->two_files && j->na % rec != 0;
    if (regular && split_record) FZ_ASSERT(s == FAN_E_FORMAT);
    if (regular && !split_record) {
        /* Memory and path loaders agree on the same bytes and budget. */
        fan_allocator al = fz_allocator(&c);
        const fan_create_options opts = {sizeof opts, &al, NULL, 0, j->budget};
        fan_net *mnet = NULL;
        fan_dataset *mds = NULL;
        const fan_status ms = load_mem(j, &opts, &mnet, &mds);
        FZ_ASSERT((s == FAN_OK) == (ms == FAN_OK));
        if (s == FAN_OK && j->loader == L_NET) {
            size_t la = 0, lb = 0;
            FZ_ASSERT(fan_net_save_mem(net, NULL, 0, &la) == FAN_OK);
            FZ_ASSERT(fan_net_save_mem(mnet, NULL, 0, &lb) == FAN_OK && lb == la);
            FZ_ASSERT(j->budget == 0 || j->na <= j->budget);
            uint8_t *ba = malloc(la), *bb = malloc(lb);
            FZ_ASSERT(ba != NULL && bb != NULL);
            FZ_ASSERT(fan_net_save_mem(net, ba, la, &la) == FAN_OK);
            FZ_ASSERT(fan_net_save_mem(mnet, bb, lb, &lb) == FAN_OK);
            FZ_ASSERT(memcmp(ba, bb, la) == 0);
            /* A file of the current format version saves back to exactly its bytes (an older
               version is upgraded on save; fuzz_net_load checks the upgrade). */
            if (j->na >= 12 && j->a[8] == ba[8] && j->a[9] == ba[9] && j->a[10] == ba[10] &&
                j->a[11] == ba[11])
                FZ_ASSERT(la == j->na && memcmp(ba, j->a, la) == 0);
            free(ba);
            free(bb);
        } else if (s == FAN_OK) {
            fz_same_dataset(ds, mds);
            FZ_ASSERT(j->budget == 0 || budget_bytes(j, ds) <= j->budget);
            fz_check_dataset(ds, j->loader != L_CSV);
        }
        fan_net_free(mnet);
        fan_dataset_free(mds);
    }
    fan_net_free(net);
    fan_dataset_free(ds);
    FZ_ASSERT(c.live == 0);
    if (j->fault == 0) return;
    /* The same load with operation `fault` failing: an I/O error, or, when the fault hit the
       cleanup after a failure of the input itself, that failure. */
    const fan_status sf = attempt(j, j->fault, &c, &net, &ds, &reached);
    if (reached) FZ_ASSERT(sf == FAN_E_IO || (sf == s && s != FAN_OK));
    else FZ_ASSERT(sf == s);
    fan_net_free(net);
    fan_dataset_free(ds);
    FZ_ASSERT(c.live == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    fz_reader r = {data, size};
    const uint8_t flags = fz_u8(&r), kind = fz_u8(&r), budget = fz_u8(&r);
    job j;
    memset(&j, 0, sizeof j);
    j.loader = flags & 3;
    j.kind = kind % K_COUNT;
    j.budget = budget == 0 ? 0 : (uint64_t)1 << (budget % BUDGET_BITS);
    j.fault = fz_u8(&r);
    j.fault |= (unsigned)fz_u8(&r) << 8;
    const uint8_t param = fz_u8(&r), param2 = fz_u8(&r);
    j.col = param == 255 ? FAN_CSV_LAST_COLUMN : param % 8u;
    j.label_bytes = 1 + (param & 1u); /* 1 or 2: the internal entry point takes checked values */
    j.skip = param2 & 1;
    j.two_files = (param2 >> 1) & 1;
    size_t na = (size_t)fz_u8(&r);
    na |= (size_t)fz_u8(&r) << 8;
    if (na > r.n) na = r.n;
    if (j.loader == L_NET || j.loader == L_CSV) na = r.n; /* one file: all of the rest */
    const uint8_t *a = r.p, *b = r.p + na;
    size_t nb = r.n - na;

    /* gzip parts here, so that mutations of the plain bytes reach the parsers through inflate
       (CIFAR is read raw: a gzipped batch is simply a malformed one). */
    uint8_t *za = NULL, *zb = NULL;
    if (flags & 4) a = za = fz_gzip(a, na, &na);
    if (flags & 8) b = zb = fz_gzip(b, nb, &nb);
    j.a = a;
    j.na = na;
    j.b = b;
    j.nb = nb;
    put_file(p_a, a, na);
    put_file(p_b, b, nb);
    run(&j);
    free(za);
    free(zb);
    return 0;
}
