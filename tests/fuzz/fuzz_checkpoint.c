/* fuzz_checkpoint.c - libFuzzer target for the checkpoint parser (fan_checkpoint_load_mem_ex), and
   through it the optimizer and iterator state parsers. A batch iterator's checkpoint must match
   one fixed dataset (FZ_CK_* below; make_seeds.py writes its fingerprint). Each input is tried
   as given and again with every checksum recomputed (each part's where the container's lengths
   locate it, then the container's), so that mutations reach the checks behind the checksums. A
   failed load leaves nothing behind and says why; a checkpoint that loads saves back to bytes
   that load and save back unchanged, and trains a step. */
#include <zlib.h>

#include "fuzz_common.h"

/* The dataset every batch-iterator checkpoint of the corpus ran over: 5 samples of 3 floats,
   (i % 7) / 4 - 0.5 for value i, labels 0 1 0 1 0, 2 classes, no normalisation. */
#define FZ_CK_N 5
#define FZ_CK_DIM 3
#define FZ_CK_CLASSES 2
/* The load budget of the target (FZ_MAX_ALLOC is the allocation that fails the run). */
#define FZ_BUDGET ((uint64_t)64 << 20)
/* Container offsets (docs/file-format.md, "Checkpoint files"). */
#define CK_HEADER 96u
#define CK_LENGTHS 16u

static fan_dataset *fixed_dataset(void)
{
    float x[FZ_CK_N * FZ_CK_DIM];
    int32_t labels[FZ_CK_N];
    for (int i = 0; i < FZ_CK_N * FZ_CK_DIM; i++) x[i] = (float)(i % 7) / 4.0f - 0.5f;
    for (int i = 0; i < FZ_CK_N; i++) labels[i] = i % 2;
    fan_dataset *ds = NULL;
    FZ_ASSERT(fan_dataset_from_arrays(&ds, x, labels, FZ_CK_N, FZ_CK_DIM, FZ_CK_CLASSES, NULL) ==
              FAN_OK);
    return ds;
}

static int ckpt_status(fan_status s)
{
    return s == FAN_OK || s == FAN_E_FORMAT || s == FAN_E_LIMIT || s == FAN_E_NOMEM ||
           s == FAN_E_VERSION || s == FAN_E_CHECKSUM || s == FAN_E_SHAPE ||
           s == FAN_E_INVALID || s == FAN_E_NULL;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void put_crc(uint8_t *p, size_t len)
{
    const uint32_t crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), p, len - 4);
    for (int i = 0; i < 4; i++) p[len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
}

static uint8_t *save(const fan_net *net, const fan_optimizer *opt, const fan_iter *it, size_t *len)
{
    FZ_ASSERT(fan_checkpoint_save_mem(NULL, 0, len, net, opt, it) == FAN_OK);
    uint8_t *b = malloc(*len);
    FZ_ASSERT(b != NULL);
    size_t w = 0;
    FZ_ASSERT(fan_checkpoint_save_mem(b, *len, &w, net, opt, it) == FAN_OK && w == *len);
    return b;
}

static void check_loaded(fan_net *net, fan_optimizer *opt, fan_iter *it, const fan_dataset *ds)
{
    /* Saved again, it loads, and saves back to the same bytes (a first save may upgrade an
       older model or optimizer layout; after that the bytes are stable). */
    size_t len = 0, len2 = 0;
    uint8_t *once = save(net, opt, it, &len);
    fan_net *n2 = NULL;
    fan_optimizer *o2 = NULL;
    fan_iter *i2 = NULL;
    FZ_ASSERT(fan_checkpoint_load_mem(once, len, &n2, &o2, &i2, ds, NULL) == FAN_OK);
    FZ_ASSERT((o2 == NULL) == (opt == NULL) && (i2 == NULL) == (it == NULL));
    uint8_t *twice = save(n2, o2, i2, &len2);
    FZ_ASSERT(len == len2 && memcmp(once, twice, len) == 0);
    free(twice);
    free(once);
    fan_iter_free(i2);
    fan_optimizer_free(o2);
    fan_net_free(n2);
    /* A step of training on what was loaded, when the parts fit together and are small. */
    if (opt != NULL && it != NULL && fan_iter_dim(it) == fan_net_input_size(net) &&
        fan_iter_classes(it) == fan_net_output_size(net) && fan_net_num_params(net) < 100000 &&
        fan_iter_dim(it) * 64 < 100000) {
        const fan_status s = fan_train_steps(net, opt, it, 1, NULL, NULL);
        FZ_ASSERT(s == FAN_OK || s == FAN_E_NUMERIC || s == FAN_E_SHAPE);
    }
}

static void try_load(const uint8_t *data, size_t size, const fan_dataset *ds)
{
    fz_counter c = {0};
    fan_allocator al = fz_allocator(&c);
    fan_net *net = (fan_net *)&c; /* not NULL, to see that failure resets them */
    fan_optimizer *opt = (fan_optimizer *)&c;
    fan_iter *it = (fan_iter *)&c;
    /* A budget below FZ_MAX_ALLOC: a few bytes may declare a huge iterator batch, which the
       loader must refuse (FAN_E_LIMIT) before allocating it. */
    char msg[128];
    msg[0] = 'x';
    fan_create_options o = {sizeof o, &al, msg, sizeof msg, FZ_BUDGET};
    fan_status s = fan_checkpoint_load_mem_ex(data, size, &net, &opt, &it, ds, &o);
    FZ_ASSERT(fz_known_status(s) && ckpt_status(s));
    if (s != FAN_OK) {
        FZ_ASSERT(net == NULL && opt == NULL && it == NULL);
        FZ_ASSERT(c.live == 0);
        FZ_ASSERT(msg[0] != '\0' && memchr(msg, '\0', sizeof msg) != NULL);
        return;
    }
    FZ_ASSERT(msg[0] == '\0');
    FZ_ASSERT(net != NULL);
    check_loaded(net, opt, it, ds);
    fan_iter_free(it);
    fan_optimizer_free(opt);
    fan_net_free(net);
    FZ_ASSERT(c.live == 0);
}

/* Recomputes the checksum of each part the container's lengths locate, then the container's. */
static void fix_checksums(uint8_t *p, size_t size)
{
    if (size < CK_HEADER + 4) return;
    size_t at = CK_HEADER;
    for (int part = 0; part < 3; part++) {
        const uint64_t len = get_u64(p + CK_LENGTHS + 8 * (size_t)part);
        if (len == 0) continue; /* an absent part */
        if (len < 4 || len > size - 4 - at) break;
        put_crc(p + at, (size_t)len);
        at += (size_t)len;
    }
    put_crc(p, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fan_dataset *ds = fixed_dataset();
    try_load(data, size, ds);
    if (size >= 4) {
        uint8_t *fixed = malloc(size);
        FZ_ASSERT(fixed != NULL);
        memcpy(fixed, data, size);
        fix_checksums(fixed, size);
        try_load(fixed, size, ds);
        free(fixed);
    }
    fan_dataset_free(ds);
    return 0;
}
