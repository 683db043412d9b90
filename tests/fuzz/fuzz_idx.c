/* fuzz_idx.c - libFuzzer target for the IDX loaders (fan_dataset_load_idx_mem and, through
   temporary files, fan_dataset_load_idx). Input layout: byte 0 flags (bit 0: gzip the images
   part, bit 1: gzip the labels part, done here so that mutations of the uncompressed bytes
   reach the parser through inflate), bytes 1-2 the images part's length (u16 little-endian,
   clamped), the images part, then the labels part. Oracles: documented statuses only, nothing
   leaked, *out NULL on failure, dataset invariants on success, and the same outcome from
   memory and from files, raw and compressed. */
#include "fuzz_data.h"

/* First byte of a raw IDX file: the magic starts with two zero bytes, and 0 is never the first
   byte of a gzip or zlib stream, so such a part is read raw by the loader. */
#define IDX_RAW_FIRST_BYTE 0x00

static fan_status load_mem(const uint8_t *img, size_t ni, const uint8_t *lab, size_t nl,
                           fan_dataset **out, fz_counter *c)
{
    fan_allocator al = fz_allocator(c);
    *out = (fan_dataset *)c; /* not NULL, to see that failure resets it */
    fan_status s = fan_dataset_load_idx_mem(out, img, ni, lab, nl, &al);
    FZ_ASSERT(fz_loader_status(s) && s != FAN_E_LABEL && s != FAN_E_NONFINITE);
    if (s != FAN_OK) {
        FZ_ASSERT(*out == NULL && c->live == 0);
    } else {
        FZ_ASSERT(*out != NULL);
    }
    return s;
}

static fan_status load_files(const uint8_t *img, size_t ni, const uint8_t *lab, size_t nl,
                             fan_dataset **out, fz_counter *c)
{
    char *pi = fz_temp_file(img, ni), *pl = fz_temp_file(lab, nl);
    fan_allocator al = fz_allocator(c);
    fan_status s = fan_dataset_load_idx(out, pi, pl, &al);
    fz_remove_temp(pi);
    fz_remove_temp(pl);
    if (s != FAN_OK) FZ_ASSERT(*out == NULL && c->live == 0);
    return s;
}

static int reads_raw(const uint8_t *part, size_t n) { return n < 2 || part[0] == IDX_RAW_FIRST_BYTE; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    const uint8_t flags = fz_u8(&r);
    size_t ni = (size_t)fz_u8(&r) | (size_t)fz_u8(&r) << 8;
    if (ni > r.n) ni = r.n;
    const uint8_t *img = r.p, *lab = r.p + ni;
    const size_t nl = r.n - ni;

    fz_counter c = {0};
    fan_dataset *raw = NULL;
    const fan_status s_raw = load_mem(img, ni, lab, nl, &raw, &c);
    if (s_raw == FAN_OK) {
        fz_check_dataset(raw, 1);
        FZ_ASSERT(fan_dataset_classes(raw) >= 10);
    }

    /* The same bytes behind gzip must load to the same dataset (or fail the same way). */
    uint8_t *zi = NULL, *zl = NULL;
    size_t nzi = ni, nzl = nl;
    const uint8_t *vi = img, *vl = lab;
    if (flags & 1) vi = zi = fz_gzip(img, ni, &nzi);
    if (flags & 2) vl = zl = fz_gzip(lab, nl, &nzl);
    fan_dataset *var = NULL;
    fan_status s_var = s_raw;
    if (flags & 3) {
        s_var = load_mem(vi, nzi, vl, nzl, &var, &c);
        if (reads_raw(img, ni) && reads_raw(lab, nl)) {
            FZ_ASSERT(s_var == s_raw);
            if (s_raw == FAN_OK) fz_same_dataset(raw, var);
        } else if (s_var == FAN_OK) {
            fz_check_dataset(var, 1);
        }
    }

    /* Files take another code path (chunked reads, size from the file system). */
    fan_dataset *from_file = NULL;
    const fan_status s_file = load_files(vi, nzi, vl, nzl, &from_file, &c);
    FZ_ASSERT(s_file == s_var);
    if (s_file == FAN_OK) fz_same_dataset(var ? var : raw, from_file);

    fan_dataset_free(raw);
    fan_dataset_free(var);
    fan_dataset_free(from_file);
    FZ_ASSERT(c.live == 0);
    free(zi);
    free(zl);
    return 0;
}
