/* fuzz_csv.c - libFuzzer target for the CSV loaders. Input layout: byte 0 label column (255 =
   FAN_CSV_LAST_COLUMN, else byte % 8), byte 1 flags (bit 0 skip_header, bit 1 gzip the text
   here so that mutations of the text reach the parser through inflate), then the text.
   Oracles: documented statuses, nothing leaked, finite values and labels in range on success,
   and the same result from memory and file, plain and gzip. */
#include "fuzz_data.h"

#define ALL_COLUMNS_BYTE 255u
#define LABEL_COLUMN_MOD 8u

static fan_status load_mem(const uint8_t *p, size_t n, size_t col, int skip, fan_dataset **out,
                           fz_counter *c)
{
    fan_allocator al = fz_allocator(c);
    *out = (fan_dataset *)c;
    fan_status s = fan_dataset_load_csv_mem(out, p, n, col, skip, &al);
    FZ_ASSERT(fz_loader_status(s));
    if (s != FAN_OK) {
        FZ_ASSERT(*out == NULL && c->live == 0);
    } else {
        fz_check_dataset(*out, 0);
        size_t w, h, ch;
        FZ_ASSERT(fan_dataset_shape(*out, &w, &h, &ch) == FAN_OK && h == 1 && ch == 1);
    }
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_reader r = {data, size};
    const uint8_t colb = fz_u8(&r), flags = fz_u8(&r);
    const size_t col = colb == ALL_COLUMNS_BYTE ? FAN_CSV_LAST_COLUMN : colb % LABEL_COLUMN_MOD;
    const int skip = flags & 1;
    fz_counter c = {0};

    fan_dataset *plain = NULL;
    const fan_status s = load_mem(r.p, r.n, col, skip, &plain, &c);

    /* Text starting with the gzip magic is itself decompressed, so only other text is
       compared with its compressed form. */
    const int is_gzip_text = r.n >= 2 && r.p[0] == 0x1f && r.p[1] == 0x8b;
    uint8_t *z = NULL;
    size_t nz = r.n;
    const uint8_t *v = r.p;
    fan_dataset *var = NULL;
    fan_status s_var = s;
    if (flags & 2) {
        v = z = fz_gzip(r.p, r.n, &nz);
        s_var = load_mem(v, nz, col, skip, &var, &c);
        if (!is_gzip_text) {
            FZ_ASSERT(s_var == s);
            if (s == FAN_OK) fz_same_dataset(plain, var);
        }
    }

    char *path = fz_temp_file(v, nz);
    fan_allocator al = fz_allocator(&c);
    fan_dataset *file = NULL;
    const fan_status s_file = fan_dataset_load_csv(&file, path, col, skip, &al);
    fz_remove_temp(path);
    FZ_ASSERT(s_file == s_var);
    if (s_file == FAN_OK) fz_same_dataset(var ? var : plain, file);

    fan_dataset_free(plain);
    fan_dataset_free(var);
    fan_dataset_free(file);
    FZ_ASSERT(c.live == 0);
    free(z);
    return 0;
}
