/*
 * npy_net.c - a net's matrices as NumPy .npy files: weights_L.npy (W_l), bias_L.npy (b_l) and
 * feedback_L.npy (B_l) for every weight layer L. Only the public API and the net's allocator and
 * message buffer are used, so the files keep working whatever the net's internals become.
 */
#include "npy_internal.h"

#include <stdio.h>
#include <string.h>

/* What each layer's three files hold. */
enum { PART_W = 0, PART_B = 1, PART_FB = 2, N_PARTS = 3 };
static const char *const PART_NAME[N_PARTS] = {"weights", "bias", "feedback"};
/* Room for "/feedback_63.npy" and the NUL. */
#define NAME_ROOM 32u

/* Shape of one part: rows x cols (cols = 0 for the 1-D bias). */
static fan_status part_shape(const fan_net *net, size_t l, int part, size_t *rows, size_t *cols)
{
    if (part == PART_FB) return fan_net_feedback_shape(net, l, rows, cols);
    *rows = fan_net_layer_outputs(net, l);
    *cols = part == PART_W ? fan_net_layer_inputs(net, l) : 0;
    return FAN_OK;
}

/* dir/NAME_L.npy into path (cap bytes). */
static void part_path(char *path, size_t cap, const char *dir, int part, size_t l)
{
    (void)snprintf(path, cap, "%s/%s_%zu.npy", dir, PART_NAME[part], l);
}

/* The largest matrix of the net, in floats (bias vectors are never larger than their W). */
static fan_status largest_part(const fan_net *net, size_t *floats)
{
    *floats = 0;
    for (size_t l = 0; l < fan_net_num_layers(net); l++)
        for (int part = PART_W; part < N_PARTS; part++) {
            size_t r, c;
            FAN__CHECK(part_shape(net, l, part, &r, &c));
            const size_t k = r * (c ? c : 1);
            if (k > *floats) *floats = k;
        }
    return FAN_OK;
}

fan_status fan_net_export_npy(const fan_net *net, const char *dir)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, dir == NULL, FAN_E_NULL, "dir is NULL");
    const fan_allocator *al = fan__net_allocator(net);
    size_t most;
    FAN__CHECK(largest_part(net, &most));
    const size_t dlen = strlen(dir);
    char *path = fan__alloc(al, dlen + NAME_ROOM);
    float *buf = fan__alloc(al, most * sizeof *buf);
    fan_status st = FAN_OK;
    if (path == NULL || buf == NULL)
        st = fan__fail(err, FAN_E_NOMEM, "out of memory for a matrix of %zu floats", most);
    for (size_t l = 0; st == FAN_OK && l < fan_net_num_layers(net); l++) {
        for (int part = PART_W; st == FAN_OK && part < N_PARTS; part++) {
            size_t shape[2];
            st = part_shape(net, l, part, &shape[0], &shape[1]);
            const size_t ndim = shape[1] ? 2 : 1, count = shape[0] * (shape[1] ? shape[1] : 1);
            if (st == FAN_OK)
                st = part == PART_W    ? fan_net_get_weights(net, l, buf, count, NULL, 0)
                     : part == PART_B  ? fan_net_get_weights(net, l, NULL, 0, buf, count)
                                       : fan_net_get_feedback(net, l, buf, count);
            part_path(path, dlen + NAME_ROOM, dir, part, l);
            if (st == FAN_OK) st = fan__npy_write_f32(path, buf, shape, ndim, al, err);
        }
    }
    fan__free(al, buf);
    fan__free(al, path);
    return st;
}

/* Reads one part's file into dst after checking its dtype and shape against the net's. */
static fan_status read_part(const char *path, size_t l, int part, const size_t shape[2],
                            float *dst, char *err)
{
    fan__npy_src s;
    FAN__CHECK(fan__npy_open(&s, path, err));
    fan__npy_header h;
    fan_status st = fan__npy_read_header(&s, &h, err);
    const size_t ndim = shape[1] ? 2 : 1;
    if (st == FAN_OK && h.type != FAN__NPY_F32 && h.type != FAN__NPY_F64)
        st = fan__fail(err, FAN_E_UNSUPPORTED, "%s: dtype '%s'; weights must be float32 or float64",
                       path, h.descr);
    if (st == FAN_OK && (h.ndim != ndim || h.shape[0] != shape[0] || (ndim == 2 && h.shape[1] != shape[1]))) {
        char want[64], got[64];
        (void)snprintf(want, sizeof want, ndim == 2 ? "(%zu, %zu)" : "(%zu,)", shape[0], shape[1]);
        if (h.ndim == 2)
            (void)snprintf(got, sizeof got, "(%zu, %zu)", h.shape[0], h.shape[1]);
        else if (h.ndim == 1)
            (void)snprintf(got, sizeof got, "(%zu,)", h.shape[0]);
        else
            (void)snprintf(got, sizeof got, "%zu dimensions", h.ndim);
        st = fan__fail(err, FAN_E_SHAPE, "%s: shape %s; %s of layer %zu is %s", path, got,
                       PART_NAME[part], l, want);
    }
    if (st == FAN_OK) st = fan__npy_check_data(&s, &h, err);
    if (st == FAN_OK) st = fan__npy_read_floats(&s, &h, dst, h.count, err);
    fan__npy_close(&s);
    return st;
}

fan_status fan_net_import_npy(fan_net *net, const char *dir)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    char *err = fan__net_errbuf(net);
    FAN__FAIL_IF(err, dir == NULL, FAN_E_NULL, "dir is NULL");
    const fan_allocator *al = fan__net_allocator(net);
    const size_t layers = fan_net_num_layers(net);

    /* Every file is read and checked into scratch memory before the net changes. */
    size_t total = 0;
    for (size_t l = 0; l < layers; l++)
        for (int part = PART_W; part < N_PARTS; part++) {
            size_t r, c;
            FAN__CHECK(part_shape(net, l, part, &r, &c));
            total += r * (c ? c : 1);
        }
    const size_t dlen = strlen(dir);
    char *path = fan__alloc(al, dlen + NAME_ROOM);
    size_t bytes;
    FAN__FAIL_IF(err, !fan__mul_ok(total, sizeof(float), &bytes), FAN_E_LIMIT,
                 "the net's matrices overflow size_t");
    float *all = fan__alloc(al, bytes);
    fan_status st = FAN_OK;
    if (path == NULL || all == NULL)
        st = fan__fail(err, FAN_E_NOMEM, "out of memory for %zu floats", total);
    size_t off = 0;
    for (size_t l = 0; st == FAN_OK && l < layers; l++)
        for (int part = PART_W; st == FAN_OK && part < N_PARTS; part++) {
            size_t shape[2];
            st = part_shape(net, l, part, &shape[0], &shape[1]);
            part_path(path, dlen + NAME_ROOM, dir, part, l);
            if (st == FAN_OK) st = read_part(path, l, part, shape, all + off, err);
            off += shape[0] * (shape[1] ? shape[1] : 1);
        }
    /* Rules that draw their feedback from W (uSF, brSF) have no B to set: setting layer 0's
       current feedback back tells, without changing anything, before the net changes. */
    int set_b = 1;
    if (st == FAN_OK && layers > 0) {
        size_t r, c;
        (void)part_shape(net, 0, PART_FB, &r, &c);
        float *probe = fan__alloc(al, r * c * sizeof *probe);
        st = probe == NULL ? fan__fail(err, FAN_E_NOMEM, "out of memory") : fan_net_get_feedback(net, 0, probe, r * c);
        if (st == FAN_OK) {
            st = fan_net_set_feedback(net, 0, probe, r * c);
            if (st == FAN_E_UNSUPPORTED) {
                set_b = 0;
                st = FAN_OK;
            }
        }
        fan__free(al, probe);
    }
    off = 0;
    for (size_t l = 0; st == FAN_OK && l < layers; l++) {
        size_t r, c, fr, fc;
        (void)part_shape(net, l, PART_W, &r, &c);
        (void)part_shape(net, l, PART_FB, &fr, &fc);
        const float *w = all + off, *b = w + r * c, *fb = b + r;
        st = fan_net_set_weights(net, l, w, r * c, b, r);
        if (st == FAN_OK && set_b) st = fan_net_set_feedback(net, l, fb, fr * fc);
        off += r * c + r + fr * fc;
    }
    fan__free(al, all);
    fan__free(al, path);
    return st;
}
