/* fuzz_cifar.c - libFuzzer target for the CIFAR loaders. Input layout: byte 0 gives
   n_label_bytes = byte & 3 (so 0 and 3 test the argument check), the rest is the batch. The
   memory loader, the file loader on one file and on the same file twice (two batches
   concatenated) must agree: same status; the same records, twice over for two files. */
#include "fuzz_data.h"

#define CIFAR_PIXELS 3072u
/* Two float roundings of a value in [0, 1]: 2 * 2^-24. */
#define FLOAT_ROUNDING 1.2e-7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const size_t n_label = data[0] & 3u;
    const uint8_t *buf = data + 1;
    const size_t len = size - 1;
    fz_counter c = {0};
    fan_allocator al = fz_allocator(&c);

    fan_dataset *mem = (fan_dataset *)&c;
    const fan_status s = fan_dataset_load_cifar_mem(&mem, buf, len, n_label, &al);
    FZ_ASSERT(fz_loader_status(s) && s != FAN_E_NONFINITE);
    if (n_label != 1 && n_label != 2) FZ_ASSERT(s == FAN_E_INVALID);
    if (s != FAN_OK) {
        FZ_ASSERT(mem == NULL && c.live == 0);
    } else {
        fz_check_dataset(mem, 1);
        FZ_ASSERT(fan_dataset_size(mem) == len / (n_label + CIFAR_PIXELS));
        FZ_ASSERT(fan_dataset_dim(mem) == CIFAR_PIXELS);
        FZ_ASSERT(fan_dataset_classes(mem) == (n_label == 1 ? 10u : 100u));
        /* Pixels are stored exactly: sample 0's first value is its first pixel byte / 255, to
           float rounding (the library multiplies by a float 1/255, one rounding more than a
           division). */
        float x[CIFAR_PIXELS];
        FZ_ASSERT(fan_dataset_get(mem, 0, x, CIFAR_PIXELS, NULL) == FAN_OK);
        FZ_ASSERT(fabs(x[0] - buf[n_label] / 255.0) <= FLOAT_ROUNDING);
    }

    char *path = fz_temp_file(buf, len);
    const char *const one[1] = {path};
    const char *const two[2] = {path, path};
    fan_dataset *file = NULL, *twice = NULL;
    const fan_status s1 = fan_dataset_load_cifar(&file, one, 1, n_label, &al);
    const fan_status s2 = fan_dataset_load_cifar(&twice, two, 2, n_label, &al);
    fz_remove_temp(path);
    FZ_ASSERT(s1 == s && s2 == s);
    if (s == FAN_OK) {
        fz_same_dataset(mem, file);
        const size_t n = fan_dataset_size(mem);
        FZ_ASSERT(fan_dataset_size(twice) == 2 * n);
        fan_dataset *second = NULL;
        FZ_ASSERT(fan_dataset_subset_first(&second, twice, n) == FAN_OK);
        fz_same_dataset(mem, second);
        fan_dataset_free(second);
    }
    fan_dataset_free(mem);
    fan_dataset_free(file);
    fan_dataset_free(twice);
    FZ_ASSERT(c.live == 0);
    return 0;
}
