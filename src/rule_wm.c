/*
 * rule_wm.c - weight mirrors (Akrout et al., NeurIPS 2019). Training uses FA's error pass through
 * B_l; between training phases fan_net_mirror drives every layer with its own zero-mean Gaussian
 * input x (unit variance, independent across layers, as the paper's mirror mode does) and lets
 * B_l learn from the correlation of that input with the layer's linear response y = W_l x:
 *     B_l <- (1 - lr * wd) B_l + lr * mean over the batch of y x^T.
 * Since E[y x^T] = W_l for unit-variance white input, B_l turns toward W_l, and with weight
 * decay it converges to W_l / wd. For DFA, whose B_l maps the output error to layer l, the
 * response is the output's, y = (W_{L-1} ... W_l) x, so B_l turns toward that product.
 */
#include "net_impl.h"

#include <math.h>
#include <string.h>

const fan__rule_ops fan__rule_wm = {
    .id = FAN_RULE_WM,
    .feedback = fan__rule_stored_feedback,
    .reads_stored_b = 1,
};

/* Scratch of one call: inputs, responses, the forward products of a direct rule, and a copy of
   B to restore if the phase diverges. */
typedef struct mirror_ws {
    float *x, *y, *products, *tmp, *backup;
    fan__normal_tables tables;
} mirror_ws;

static void mirror_free(const fan_net *net, mirror_ws *ws)
{
    fan__free(&net->alloc, ws->x);
    fan__free(&net->alloc, ws->y);
    fan__free(&net->alloc, ws->products);
    fan__free(&net->alloc, ws->tmp);
    fan__free(&net->alloc, ws->backup);
}

static fan_status mirror_alloc(fan_net *net, size_t batch, mirror_ws *ws)
{
    memset(ws, 0, sizeof *ws);
    const size_t L = net->n_layers, direct = (size_t)net->rule->direct;
    size_t max_in = 0, max_rows = 0, prod = 0;
    for (size_t l = 0; l < L; l++) {
        max_in = net->sizes[l] > max_in ? net->sizes[l] : max_in;
        max_rows = net->fb_rows[l] > max_rows ? net->fb_rows[l] : max_rows;
        prod += net->fb_rows[l] * net->sizes[l];
    }
    size_t nx, ny;
    FAN__FAIL_IF(net->err, !fan__mul_ok(batch, max_in, &nx) || !fan__mul_ok(batch, max_rows, &ny),
                 FAN_E_LIMIT, "a mirror batch of %zu rows needs too much scratch", batch);
    ws->x = fan__calloc(&net->alloc, nx, sizeof(float));
    ws->y = fan__calloc(&net->alloc, ny, sizeof(float));
    ws->backup = fan__calloc(&net->alloc, net->n_feedback, sizeof(float));
    int ok = ws->x && ws->y && ws->backup;
    if (ok && direct) {
        ws->products = fan__calloc(&net->alloc, prod, sizeof(float));
        ws->tmp = fan__calloc(&net->alloc, fan__net_product_floats(net), sizeof(float));
        ok = ws->products && ws->tmp;
    }
    if (!ok) {
        mirror_free(net, ws);
        return fan__fail(net->err, FAN_E_NOMEM, "cannot allocate scratch for mirroring");
    }
    fan__normal_tables_init(&ws->tables);
    return FAN_OK;
}

fan_status fan_net_mirror(fan_net *net, size_t steps, size_t batch, double lr,
                          double weight_decay, uint64_t seed)
{
    FAN__FAIL_IF(NULL, net == NULL, FAN_E_NULL, "net is NULL");
    FAN__FAIL_IF(net->err, !net->rule->reads_stored_b, FAN_E_UNSUPPORTED,
                 "rule %s does not send errors through a stored B; mirroring has nothing to train",
                 fan_rule_name(net->rule->id));
    FAN__FAIL_IF(net->err, batch == 0, FAN_E_INVALID, "batch is 0");
    FAN__FAIL_IF(net->err, !(lr >= 0.0 && lr <= 1e6), FAN_E_INVALID,
                 "learning rate %g is outside [0, 1e6]", lr);
    FAN__FAIL_IF(net->err, !(weight_decay >= 0.0 && weight_decay <= 1e6), FAN_E_INVALID,
                 "weight decay %g is outside [0, 1e6]", weight_decay);
    if (steps == 0) return FAN_OK;
    mirror_ws ws;
    FAN__CHECK(mirror_alloc(net, batch, &ws));
    const size_t L = net->n_layers;
    memcpy(ws.backup, net->feedback, net->n_feedback * sizeof(float));
    if (net->rule->direct) {
        /* The forward path does not change while mirroring: its products are computed once. */
        size_t off = 0;
        for (size_t l = 0; l < L; l++) {
            fan__net_weight_product(net, l, ws.products + off, ws.tmp);
            off += net->fb_rows[l] * net->sizes[l];
        }
    }
    fan__rng r;
    fan__rng_seed_stream(&r, seed, FAN__RNG_MIRROR, 0);
    const float keep = (float)(1.0 - lr * weight_decay), rate = (float)(lr / (double)batch);
    for (size_t s = 0; s < steps; s++) {
        size_t off = 0;
        for (size_t l = 0; l < L; l++) {
            const size_t in = net->sizes[l], rows = net->fb_rows[l];
            const float *m = net->rule->direct ? ws.products + off : fan__net_w(net, l);
            off += rows * in;
            fan__rng_fill_normal(&r, &ws.tables, ws.x, batch * in, 0.0f, 1.0f);
            /* y = x M^T (batch x rows), then B = keep * B + rate * y^T x. */
            fan__sgemm(0, 1, batch, rows, in, 1.0f, ws.x, in, m, in, 0.0f, ws.y, rows);
            fan__sgemm(1, 0, rows, in, batch, rate, ws.y, rows, ws.x, in, keep,
                       fan__net_fb(net, l), in);
        }
    }
    fan_status st = FAN_OK;
    if (!fan__all_finite(net->feedback, net->n_feedback)) {
        memcpy(net->feedback, ws.backup, net->n_feedback * sizeof(float));
        st = fan__fail(net->err, FAN_E_NUMERIC,
                       "mirroring diverged (lower lr or raise weight decay); B is unchanged");
    }
    mirror_free(net, &ws);
    return st;
}
