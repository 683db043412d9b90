/*
 * net_parallel.c - the net's passes as jobs for its threads (pool.h), and the optimizer's update
 * cut the same way.
 *
 * Every layer's output units are cut into blocks, and a block has one home thread for the whole
 * step: it computes those units' activations (the forward GEMM with those rows of W), their
 * weight gradient (those rows of dW) and, in the optimizer's update, those rows of W and of the
 * optimizer's state. Parameters, gradients and optimizer state therefore stay in one core's
 * caches from step to step; what moves between cores is activations and errors, a few tens of
 * KB per step for 784-100-10 at batch 64 against about a megabyte of parameters and state. (Cut
 * by rows of the batch instead, every thread read all of W every step while another one wrote
 * it: two threads ran no faster than one.)
 *
 * The phases of a training pass: forward layer by layer (unit blocks), the output layer's forward
 * with the loss and output error (blocks of rows: softmax needs whole rows, and the output
 * layer's W is small), then for each layer from the top the weight
 * gradient (unit blocks of its outputs) together with the error sent down (unit blocks of its
 * inputs, owned like the layer below's outputs), preceded for a rule that computes its feedback
 * by one item computing it. When the rule's feedback is stored (not computed per step), the
 * error sent down from the output layer is computed in the output phase instead, by the same
 * rows (it needs only those rows of the output error, and the thread has them in its cache),
 * and the output layer's weight gradient joins the next layer's phase: one phase fewer, and
 * at two threads 784-100-10 at batch 64 trains about 5% faster (no change at one thread).
 * No value depends on the blocks or the thread that computes it: every element is the same
 * sequence of operations as in one call on the whole batch.
 */
#include "net_impl.h"

#include <stdatomic.h>
#include <string.h>

/* Units of a block are a multiple of BLOCK_GRAIN, which the kernels' register blocks (4 or 6
   rows of W, 6 rows of dW) divide, and at least 2 * BLOCK_GRAIN. With several threads each gets
   up to BLOCKS_PER_THREAD blocks of each width: a faster core then takes the slower one's last
   blocks (the two cores of a virtual machine seldom run at the same speed), which made
   784-1000-1000-10 at batch 128 4-14% faster on two threads than 2 blocks per thread; narrow
   layers keep 2 per thread through the size limit (100 units: 4 blocks), where blocks moving
   between cores cost more than they balance (8 blocks of 12 units: 3% slower). One thread
   cuts a width in ONE_THREAD_BLOCKS. Rows of the loss phase come in blocks of at least
   ROW_BLOCK. */
#define BLOCK_GRAIN 12
#define BLOCKS_PER_THREAD 8
#define ONE_THREAD_BLOCKS 2
#define ROW_BLOCK 16

/* Blocks of a width s for t threads. */
static size_t unit_blocks(size_t s, size_t t)
{
    size_t nb = t > 1 ? BLOCKS_PER_THREAD * t : ONE_THREAD_BLOCKS;
    const size_t most = s / (2 * BLOCK_GRAIN);
    if (nb > most) nb = most > 0 ? most : 1;
    return nb < FAN__POOL_MAX_ITEMS ? nb : FAN__POOL_MAX_ITEMS;
}

/* First unit of block k of nb over a width s (k = nb gives s). */
static size_t block_start(size_t s, size_t nb, size_t k)
{
    if (k >= nb) return s;
    const size_t at = (k * s / nb + BLOCK_GRAIN / 2) / BLOCK_GRAIN * BLOCK_GRAIN;
    return at < s ? at : s;
}

/* Block k of nb has home thread k * t / nb (the pool deals a segment of nb items so): the same
   for every phase and step that touches the same units. */

typedef enum phase_kind { FORWARD, OUTPUT, FEEDBACK, BACKWARD } phase_kind;

typedef struct pass {
    fan_net *net;
    const float *x; /* n x inputs, dense */
    const float *targets;
    size_t n, threads;
    fan__pass_mode mode;
    size_t nb[FAN_MAX_LAYERS + 1]; /* unit blocks of every width */
    size_t row_blocks;
    phase_kind kind[FAN__POOL_MAX_PHASES];
    size_t layer[FAN__POOL_MAX_PHASES];
    size_t top[FAN__POOL_MAX_PHASES]; /* a phase's first items: the output layer's gradient */
    int early; /* the output layer's error sent down is computed in the output phase */
    int scan;  /* the gradients are scanned for non-finite values */
    const float *m; /* a computed feedback matrix, in the rule's scratch */
    atomic_int bad; /* a gradient is not finite */
} pass;

/* Input of weight layer l and its row stride. */
static const float *layer_input(const pass *ps, size_t l, size_t *ld)
{
    *ld = l == 0 ? ps->net->sizes[0] : ps->net->ld[l];
    return l == 0 ? ps->x : ps->net->h[l];
}

static void forward_item(pass *ps, size_t l, size_t k)
{
    fan_net *net = ps->net;
    const size_t ni = net->sizes[l], no = net->sizes[l + 1];
    const size_t u0 = block_start(no, ps->nb[l + 1], k), u1 = block_start(no, ps->nb[l + 1], k + 1);
    if (u1 == u0) return;
    size_t ldi;
    const float *in = layer_input(ps, l, &ldi);
    float *out = net->h[l + 1] + u0;
    /* z = h W^T for units [u0, u1): those rows of W. */
    fan__gemm(net->kernels, 0, 1, ps->n, u1 - u0, ni, in, ldi, fan__net_w(net, l) + u0 * ni, ni,
              out, net->ld[l + 1]);
    fan__bias_activate(out, net->ld[l + 1], fan__net_b(net, l) + u0, ps->n, u1 - u0, net->act[l],
                       net->leaky_slope);
}

/* Rows [r0, r1) and units [i0, i1) of the error sent down through weight layer l >= 1:
   (src * M_l) .* phi'(h_l), src the error at layer l's outputs, or the net's output error for a
   direct rule. Each element is the same sequence of operations whatever the rectangle. */
static void error_rect(pass *ps, size_t l, size_t r0, size_t r1, size_t i0, size_t i1)
{
    fan_net *net = ps->net;
    const fan__rule_ops *ops = net->rule;
    const size_t L = net->n_layers, ni = net->sizes[l];
    const size_t from = ops->direct ? L : l + 1;
    const float *m = ops->computed ? ps->m : ops->feedback(net, l, NULL);
    float *d = net->d[l] + r0 * net->ld[l] + i0;
    fan__gemm(net->kernels, 0, 0, r1 - r0, i1 - i0, net->fb_rows[l],
              net->d[from] + r0 * net->ld[from], net->ld[from], m + i0, ni, d, net->ld[l]);
    fan__mul_derivative(d, net->ld[l], net->h[l] + r0 * net->ld[l] + i0, net->ld[l], r1 - r0,
                        i1 - i0, net->act[l - 1], net->leaky_slope);
}

static void output_item(pass *ps, size_t k)
{
    fan_net *net = ps->net;
    const size_t L = net->n_layers, c = net->sizes[L], ni = net->sizes[L - 1];
    const size_t per = (ps->n + ps->row_blocks - 1) / ps->row_blocks;
    const size_t r0 = k * per < ps->n ? k * per : ps->n;
    const size_t r1 = r0 + per < ps->n ? r0 + per : ps->n;
    if (r1 == r0) return;
    size_t ldi;
    const float *in = layer_input(ps, L - 1, &ldi);
    float *out = net->h[L] + r0 * net->ld[L];
    fan__gemm(net->kernels, 0, 1, r1 - r0, c, ni, in + r0 * ldi, ldi, fan__net_w(net, L - 1), ni,
              out, net->ld[L]);
    fan__bias_activate(out, net->ld[L], fan__net_b(net, L - 1), r1 - r0, c, net->act[L - 1],
                       net->leaky_slope);
    if (ps->mode == FAN__PASS_PROBS) {
        if (net->loss == FAN_LOSS_CROSS_ENTROPY)
            fan__softmax_rows(net->h[L] + r0 * net->ld[L], net->ld[L], r1 - r0, c);
        return;
    }
    (void)fan__output_rows(net, net->h[L], net->ld[L], ps->targets, r0, r1, ps->n, net->d[L],
                           net->row_loss);
    /* The error sent down through the output layer, by these rows (ps->early: stored feedback). */
    if (ps->early) error_rect(ps, L - 1, r0, r1, 0, net->sizes[L - 1]);
}

/* Rows [j0, j1) of dW_l = e^T h_l (e: the error at layer l's outputs, carrying the 1/n) and of
   db_l; returns 1 if the pass scans its gradients and any value is not finite. */
static int gradient_block(pass *ps, size_t l, size_t j0, size_t j1)
{
    fan_net *net = ps->net;
    const size_t ni = net->sizes[l], ld = net->ld[l + 1];
    const float *e = net->d[l + 1];
    size_t ldh;
    const float *h = layer_input(ps, l, &ldh);
    float *dw = net->grads_next + net->w_off[l] + j0 * ni, *db = net->grads_next + net->b_off[l];
    fan__gemm(net->kernels, 1, 0, j1 - j0, ni, ps->n, e + j0, ld, h, ldh, dw, ni);
    memset(db + j0, 0, (j1 - j0) * sizeof *db);
    for (size_t r = 0; r < ps->n; r++)
        for (size_t j = j0; j < j1; j++) db[j] += e[r * ld + j];
    return ps->scan && (!fan__all_finite_isa(net->kernels, dw, (j1 - j0) * ni) ||
                        !fan__all_finite_isa(net->kernels, db + j0, j1 - j0));
}

static void backward_item(pass *ps, size_t l, size_t k)
{
    const size_t *sizes = ps->net->sizes;
    if (k < ps->nb[l + 1]) {
        const size_t nb = ps->nb[l + 1];
        const size_t j0 = block_start(sizes[l + 1], nb, k), j1 = block_start(sizes[l + 1], nb, k + 1);
        if (j1 > j0 && gradient_block(ps, l, j0, j1))
            atomic_store_explicit(&ps->bad, 1, memory_order_relaxed);
        return;
    }
    k -= ps->nb[l + 1];
    const size_t i0 = block_start(sizes[l], ps->nb[l], k), i1 = block_start(sizes[l], ps->nb[l], k + 1);
    if (i1 > i0) error_rect(ps, l, 0, ps->n, i0, i1);
}

static void pass_item(void *arg, size_t phase, size_t item)
{
    pass *ps = arg;
    const size_t l = ps->layer[phase];
    switch (ps->kind[phase]) {
    case FORWARD: forward_item(ps, l, item); break;
    case OUTPUT: output_item(ps, item); break;
    case FEEDBACK: ps->m = ps->net->rule->feedback(ps->net, l, ps->net->rule_ws); break;
    case BACKWARD:
        if (item < ps->top[phase])
            backward_item(ps, ps->net->n_layers - 1, item); /* a gradient block: item < nb[L] */
        else
            backward_item(ps, l, item - ps->top[phase]);
        break;
    }
}

int fan__net_run_pass(fan_net *net, const float *x, const float *targets, size_t n,
                      fan__pass_mode mode)
{
    const size_t L = net->n_layers;
    pass ps;
    memset(&ps, 0, sizeof ps);
    ps.net = net;
    ps.x = x;
    ps.targets = targets;
    ps.n = n;
    ps.mode = mode;
    ps.threads = fan__pool_size(net->pool);
    atomic_init(&ps.bad, 0);
    for (size_t l = 0; l <= L; l++) ps.nb[l] = unit_blocks(net->sizes[l], ps.threads);
    ps.row_blocks = n / ROW_BLOCK < 2 * ps.threads ? n / ROW_BLOCK : 2 * ps.threads;
    if (ps.row_blocks == 0) ps.row_blocks = 1;

    /* Phases, and their items' homes as segments: every block list of a width is one segment,
       whose block k has home thread k * threads / blocks. */
    size_t items[FAN__POOL_MAX_PHASES], np = 0, segs[FAN__POOL_MAX_SEGMENTS], ns = 0;
    for (size_t l = 0; l + 1 < L; l++) {
        ps.kind[np] = FORWARD;
        ps.layer[np] = l;
        items[np++] = segs[ns++] = ps.nb[l + 1];
    }
    ps.kind[np] = OUTPUT;
    items[np++] = segs[ns++] = ps.row_blocks;
    /* A computed feedback matrix is made in a phase of its own after the output phase. */
    const int train = mode == FAN__PASS_TRAIN || mode == FAN__PASS_TRAIN_UNSCANNED;
    ps.scan = mode == FAN__PASS_TRAIN;
    ps.early = train && L >= 2 && !net->rule->computed;
    if (train) {
        size_t top = 0; /* the output layer's gradient blocks, waiting for the next phase */
        for (size_t l = L; l-- > 0;) {
            if (ps.early && l == L - 1) {
                top = ps.nb[L];
                continue;
            }
            if (l >= 1 && net->rule->computed) {
                ps.kind[np] = FEEDBACK;
                ps.layer[np] = l;
                items[np++] = segs[ns++] = 1;
            }
            ps.kind[np] = BACKWARD;
            ps.layer[np] = l;
            ps.top[np] = top;
            if (top > 0) segs[ns++] = top;
            items[np++] = top + ps.nb[l + 1] + (l >= 1 ? ps.nb[l] : 0);
            top = 0;
            segs[ns++] = ps.nb[l + 1];
            if (l >= 1) segs[ns++] = ps.nb[l];
        }
    }
    fan__pool_run(net->pool, pass_item, &ps, items, np, segs, ns);
    return atomic_load(&ps.bad);
}

/* ---- the optimizer's update, block by block ----------------------------------------------- */

/* One item per block of a layer's output units: W's rows and b's entries of those units, on the
   thread that computed their gradients; one phase when the items fit in one, else one per
   layer. */
typedef struct params_job {
    fan_net *net;
    void (*fn)(void *ctx, size_t first, size_t count);
    void *ctx;
    int per_layer; /* phase = layer, else one phase over every layer's items */
    size_t nb[FAN_MAX_LAYERS + 1];
    size_t first[FAN_MAX_LAYERS + 1]; /* items of layers 0..l-1 (one phase) */
} params_job;

/* The layer of an item, which becomes the block's index within its layer. */
static size_t params_layer(const params_job *pj, size_t phase, size_t *item)
{
    if (pj->per_layer) return phase;
    size_t l = 0;
    while (*item >= pj->first[l + 1]) l++;
    *item -= pj->first[l];
    return l;
}

static void params_item(void *arg, size_t phase, size_t k)
{
    const params_job *pj = arg;
    const fan_net *net = pj->net;
    const size_t l = params_layer(pj, phase, &k), no = net->sizes[l + 1], ni = net->sizes[l];
    const size_t j0 = block_start(no, pj->nb[l + 1], k), j1 = block_start(no, pj->nb[l + 1], k + 1);
    if (j1 == j0) return;
    pj->fn(pj->ctx, net->w_off[l] + j0 * ni, (j1 - j0) * ni);
    pj->fn(pj->ctx, net->b_off[l] + j0, j1 - j0);
}

void fan__net_parallel_params(fan_net *net, void (*fn)(void *ctx, size_t first, size_t count),
                              void *ctx)
{
    params_job pj;
    memset(&pj, 0, sizeof pj);
    pj.net = net;
    pj.fn = fn;
    pj.ctx = ctx;
    const size_t t = fan__pool_size(net->pool), L = net->n_layers;
    size_t items[FAN_MAX_LAYERS];
    for (size_t l = 0; l < L; l++) {
        pj.nb[l + 1] = unit_blocks(net->sizes[l + 1], t);
        items[l] = pj.nb[l + 1];
        pj.first[l + 1] = pj.first[l] + pj.nb[l + 1];
    }
    /* Each layer's blocks are one segment, dealt out over the threads as in the pass. */
    pj.per_layer = pj.first[L] > FAN__POOL_MAX_ITEMS;
    if (pj.per_layer)
        fan__pool_run(net->pool, params_item, &pj, items, L, items, L);
    else
        fan__pool_run(net->pool, params_item, &pj, &pj.first[L], 1, items, L);
}
