/* dataset_transform.c - image transforms that make new datasets: translate, rotate, scale
   (zero fill outside the source) and resize (edge-clamped), all bilinear per channel plane.

   Pixel centres sit at integer coordinates 0 .. width - 1; the image centre is
   ((width - 1) / 2, (height - 1) / 2). Every transform is an affine map from output to source
   coordinates, turned once into a table of four taps per output pixel that all samples and
   channels share. */
#include "dataset_internal.h"

#include <math.h>
#include <string.h>

/* Source coordinates this close to an integer are taken as that integer, so that exact
   transforms (integer shifts, quarter turns, scale 1) copy pixels without blending in a
   neighbour with a weight of 1e-16. */
#define SNAP_EPS 1e-9
#define DEGREES_PER_TURN 360.0
#define DEGREES_PER_QUARTER 90.0
#define PI 3.14159265358979323846 /* M_PI is POSIX, not C11 */

/* Output = sum of w[k] * source[idx[k]]; taps outside the source have weight 0. */
typedef struct tap {
    size_t idx[4];
    float w[4];
} tap;

/* source x = ax * x + bx * y + cx, source y = ay * x + by * y + cy (output pixel x, y). */
typedef struct affine {
    double ax, bx, cx, ay, by, cy;
} affine;

static double snap(double v)
{
    double r = floor(v + 0.5);
    return fabs(v - r) < SNAP_EPS ? r : v;
}

/* Fills the taps of one output pixel sampling the w x h plane at (sx, sy). clamp: coordinates
   are held inside the plane (resize); otherwise pixels outside it count as 0. */
static void make_tap(tap *t, double sx, double sy, size_t w, size_t h, int clamp)
{
    memset(t, 0, sizeof *t);
    if (clamp) {
        sx = fmin(fmax(sx, 0.0), (double)(w - 1));
        sy = fmin(fmax(sy, 0.0), (double)(h - 1));
    }
    /* Outside (-1, w) x (-1, h) no neighbour is inside; this also keeps huge coordinates away
       from the integer conversions below. */
    if (!(sx > -1.0 && sx < (double)w && sy > -1.0 && sy < (double)h)) return;
    double fx0 = floor(sx), fy0 = floor(sy);
    double fx = sx - fx0, fy = sy - fy0;
    long x0 = (long)fx0, y0 = (long)fy0;
    const double wt[4] = {(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy};
    for (int k = 0; k < 4; k++) {
        long x = x0 + (k & 1), y = y0 + (k >> 1);
        if (x < 0 || y < 0 || x >= (long)w || y >= (long)h || wt[k] == 0.0) continue;
        t->idx[k] = (size_t)y * w + (size_t)x;
        t->w[k] = (float)wt[k];
    }
}

/* Applies the map to every channel plane of every sample of ds into a new out_w x out_h
   dataset. */
static fan_status warp(fan_dataset **out, const fan_dataset *ds, size_t out_w, size_t out_h,
                       const affine *m, int clamp, const fan__derive *d)
{
    const size_t w = ds->width, h = ds->height, ch = ds->channels;
    size_t plane, dim;
    FAN__FAIL_IF(d->err, !fan__mul_ok(out_w, out_h, &plane) || !fan__mul_ok(plane, ch, &dim),
                 FAN_E_LIMIT, "output size %zu x %zu x %zu overflows", out_w, out_h, ch);
    tap *taps = fan__calloc(d->al, plane, sizeof *taps);
    FAN__FAIL_IF(d->err, taps == NULL, FAN_E_NOMEM, "out of memory for %zu taps", plane);
    fan_dataset *r;
    fan_status s = fan__dataset_new(&r, ds->n, dim, ds->classes, ds->u8 != NULL, d->al,
                                    d->err);
    if (s != FAN_OK) {
        fan__free(d->al, taps);
        return s;
    }
    for (size_t y = 0; y < out_h; y++) {
        for (size_t x = 0; x < out_w; x++) {
            double sx = snap(m->ax * (double)x + m->bx * (double)y + m->cx);
            double sy = snap(m->ay * (double)x + m->by * (double)y + m->cy);
            make_tap(&taps[y * out_w + x], sx, sy, w, h, clamp);
        }
    }
    const size_t in_plane = w * h;
    for (size_t i = 0; i < ds->n; i++) {
        for (size_t c = 0; c < ch; c++) {
            const size_t src_off = i * ds->dim + c * in_plane, dst_off = i * dim + c * plane;
            for (size_t p = 0; p < plane; p++) {
                const tap *t = &taps[p];
                float v = 0.0f;
                if (ds->u8 != NULL) {
                    const uint8_t *in = ds->u8 + src_off;
                    for (int k = 0; k < 4; k++) v += t->w[k] * (float)in[t->idx[k]];
                    /* Round to nearest; weights sum to at most 1, so v stays within 0..255. */
                    float q = floorf(v + 0.5f);
                    r->u8[dst_off + p] = (uint8_t)(q > 255.0f ? 255.0f : q);
                } else {
                    const float *in = ds->f32 + src_off;
                    for (int k = 0; k < 4; k++) {
                        if (t->w[k] != 0.0f) v += t->w[k] * in[t->idx[k]];
                    }
                    r->f32[dst_off + p] = v;
                }
            }
        }
    }
    fan__free(d->al, taps);
    memcpy(r->labels, ds->labels, ds->n * sizeof *r->labels);
    r->width = out_w;
    r->height = out_h;
    r->channels = ch;
    fan__dataset_copy_norm(r, ds);
    *out = r;
    return FAN_OK;
}

/* Checks the arguments every transform shares. */

fan_status fan__dataset_translate(fan_dataset **out, const fan_dataset *ds, double dx, double dy,
                                  const fan__derive *d)
{
    FAN__FAIL_IF(d->err, !isfinite(dx) || !isfinite(dy), FAN_E_INVALID,
                 "shift (%g, %g) is not finite", dx, dy);
    const affine m = {1.0, 0.0, -dx, 0.0, 1.0, -dy};
    return warp(out, ds, ds->width, ds->height, &m, 0, d);
}

fan_status fan__dataset_rotate(fan_dataset **out, const fan_dataset *ds, double degrees,
                               const fan__derive *d)
{
    FAN__FAIL_IF(d->err, !isfinite(degrees), FAN_E_INVALID, "angle %g is not finite", degrees);
    double turn = fmod(degrees, DEGREES_PER_TURN);
    if (turn < 0) turn += DEGREES_PER_TURN;
    double c, s;
    /* Quarter turns use exact sines, so they permute pixels without blending. */
    if (turn == 0.0) {
        c = 1.0, s = 0.0;
    } else if (turn == DEGREES_PER_QUARTER) {
        c = 0.0, s = 1.0;
    } else if (turn == 2 * DEGREES_PER_QUARTER) {
        c = -1.0, s = 0.0;
    } else if (turn == 3 * DEGREES_PER_QUARTER) {
        c = 0.0, s = -1.0;
    } else {
        double rad = turn * (PI / (DEGREES_PER_TURN / 2));
        c = cos(rad), s = sin(rad);
    }
    /* With y pointing down, turning the content counter-clockwise on screen by t maps output
       offset (u, v) from the centre back to source offset (u cos t - v sin t, u sin t + v cos t). */
    const double px = ((double)ds->width - 1) / 2, py = ((double)ds->height - 1) / 2;
    const affine m = {c, -s, px - c * px + s * py, s, c, py - s * px - c * py};
    return warp(out, ds, ds->width, ds->height, &m, 0, d);
}

fan_status fan__dataset_scale(fan_dataset **out, const fan_dataset *ds, double factor,
                              const fan__derive *d)
{
    FAN__FAIL_IF(d->err, !isfinite(factor) || !(factor > 0.0), FAN_E_INVALID,
                 "scale factor %g is not finite and positive", factor);
    const double px = ((double)ds->width - 1) / 2, py = ((double)ds->height - 1) / 2;
    const double k = 1.0 / factor;
    const affine m = {k, 0.0, px - k * px, 0.0, k, py - k * py};
    return warp(out, ds, ds->width, ds->height, &m, 0, d);
}

fan_status fan__dataset_resize(fan_dataset **out, const fan_dataset *ds, size_t width,
                               size_t height, const fan__derive *d)
{
    FAN__FAIL_IF(d->err, width == 0 || height == 0, FAN_E_INVALID,
                 "output size %zu x %zu has a zero side", width, height);
    /* Align-corners off (OpenCV, PIL, PyTorch's default): output pixel x covers the source
       interval scaled from [x, x + 1), so its centre maps to (x + 0.5) * in / out - 0.5.
       Samples near the border clamp to the edge pixels instead of fading to zero, so a
       constant image stays constant. */
    const double kx = (double)ds->width / (double)width, ky = (double)ds->height / (double)height;
    const affine m = {kx, 0.0, 0.5 * kx - 0.5, 0.0, ky, 0.5 * ky - 0.5};
    return warp(out, ds, width, height, &m, 1, d);
}

/* ---- the public functions, on the source's allocator and message buffer ------------------- */

static fan_status check_args(fan_dataset **out, const fan_dataset *ds, fan__derive *d)
{
    FAN__FAIL_IF(NULL, out == NULL, FAN_E_NULL, "out is NULL");
    *out = NULL;
    FAN__FAIL_IF(NULL, ds == NULL, FAN_E_NULL, "dataset is NULL");
    *d = fan__derive_from(ds);
    return FAN_OK;
}

fan_status fan_dataset_translate(fan_dataset **out, const fan_dataset *ds, double dx, double dy)
{
    fan__derive d;
    FAN__CHECK(check_args(out, ds, &d));
    return fan__dataset_translate(out, ds, dx, dy, &d);
}

fan_status fan_dataset_rotate(fan_dataset **out, const fan_dataset *ds, double degrees)
{
    fan__derive d;
    FAN__CHECK(check_args(out, ds, &d));
    return fan__dataset_rotate(out, ds, degrees, &d);
}

fan_status fan_dataset_scale(fan_dataset **out, const fan_dataset *ds, double factor)
{
    fan__derive d;
    FAN__CHECK(check_args(out, ds, &d));
    return fan__dataset_scale(out, ds, factor, &d);
}

fan_status fan_dataset_resize(fan_dataset **out, const fan_dataset *ds, size_t width,
                              size_t height)
{
    fan__derive d;
    FAN__CHECK(check_args(out, ds, &d));
    return fan__dataset_resize(out, ds, width, height, &d);
}
