/*
 * net_impl.h - the network's private layout and the learning rules' table of operations.
 *
 * Included only by the net's own files (net.c, net_pass.c, rules.c and rule_*.c). Everything
 * else reaches the net through the accessors of internal.h, so that a new rule, layer kind or
 * training hook changes these files and nothing outside them.
 */
#ifndef FAN_NET_IMPL_H
#define FAN_NET_IMPL_H

#include "internal.h"
#include "kernels.h"
#include "pool.h"

/*
 * A learning rule, as the shared backward pass and the training step see it. A rule is one
 * entry of the table in rules.c and lives in its own file (rule_*.c); adding one touches that
 * table, its file, the public enum, its docs and its tests.
 *
 * The backward pass (net_pass.c) is the same for every rule: for l = L-1 down to 1 it forms
 * delta_in = (src * M_l) .* phi'(h_l), where src is the error at layer l's outputs (or the
 * net's output error e for a `direct` rule) and M_l is the matrix that `feedback` returns.
 */
typedef struct fan__rule_ops {
    fan_rule id;
    /* Hidden layers receive the output error e directly (DFA), not the error of the layer
       above; B_l then has the net's output count as rows. */
    int direct;
    /* The matrix the error pass multiplies by at layer l: W_l, the stored B_l, or a matrix the
       rule computes into scratch (sized as W_l) and returns. Reads the net only. */
    const float *(*feedback)(const fan_net *net, size_t l, float *scratch);
    /* `feedback` computes into scratch rather than pointing at a stored matrix. */
    int computed;
    /* The error pass reads W itself (BP): the rule sends backprop's errors and has no feedback
       matrix of its own; diagnostics compare W with the stored B as a control. */
    int backprop;
    /* The error pass reads the stored B (fan_net_mirror may train it). */
    int reads_stored_b;
    /* Keeps per-batch random magnitudes (brSF) in net->magnitudes. */
    int magnitudes;
    /* B moves with W (KP): the step keeps a copy of B to restore on failure. */
    int moves_b;
    /* Before each backward pass that trains (brSF draws new magnitudes). May be NULL. */
    void (*before_backward)(fan_net *net);
    /* After the optimizer changed W and b: the rule's own update of its state from the
       parameters before the step (same layout as net->params) and lr * weight decay. Returns 0
       if it produced a non-finite value. May be NULL. */
    int (*after_update)(fan_net *net, const float *params_before, double contraction);
    /* Resets the rule's random state to the start of its stream (init, rule change). May be
       NULL. */
    void (*reset_state)(fan_net *net);
    /* State a file keeps beyond B (bytes), and its encoding; NULL when there is none. */
    size_t state_size;
    void (*state_write)(const fan_net *net, unsigned char *out);
    void (*state_read)(fan_net *net, const unsigned char *in);
} fan__rule_ops;

/* The table: NULL for a value the library does not know. */
const fan__rule_ops *fan__rule_lookup(fan_rule r);

extern const fan__rule_ops fan__rule_bp, fan__rule_fa, fan__rule_dfa, fan__rule_usf,
    fan__rule_brsf, fan__rule_frsf, fan__rule_kp, fan__rule_wm;

struct fan_net {
    fan_allocator alloc;
    char *err; /* points at err_storage.text; see fan__fail */
    fan__msg err_storage;

    size_t n_layers;                    /* weight layers L */
    size_t sizes[FAN_MAX_LAYERS + 1];   /* widths, sizes[0] = inputs */
    fan_activation act[FAN_MAX_LAYERS]; /* activation of each weight layer's outputs */
    const fan__rule_ops *rule;
    fan_loss loss;
    fan_init init_w, init_b;
    float leaky_slope;
    uint64_t weight_seed, feedback_seed;

    /* Parameters in one block, per layer W_l (out x in) then b_l (out); gradients share the
       layout so optimizers are loops over flat arrays. */
    size_t n_params;
    size_t w_off[FAN_MAX_LAYERS], b_off[FAN_MAX_LAYERS];
    float *params;
    float *grads;      /* the last good gradients */
    float *grads_next; /* computed here first, swapped with grads only when finite */
    int has_grads;
    /* What the last gradient computation replaced, so that a training step whose update fails
       can put it back (fan__net_undo_gradients). */
    int prev_has_grads;
    fan__rng prev_magnitude_rng_last;
    /* The block fan_net_gradients handed out (NULL until then). From then on `grads` is this
       block between calls, whatever the swaps of a gradient computation do inside one
       (fan__net_grads_prepare / fan__net_grads_settle). */
    float *grads_view;
    /* fan_net_set_gradient_hook: run by the training step between gradients and update. */
    fan_gradient_hook hook;
    void *hook_user;

    /* Stored feedback B_l, fb_rows[l] x sizes[l] (the rule decides the rows), one block. */
    size_t n_feedback;
    size_t fb_rows[FAN_MAX_LAYERS], fb_off[FAN_MAX_LAYERS];
    float *feedback;

    /* Rule resources, allocated when the rule is set, never per step. */
    float *rule_ws;              /* computed feedback: one matrix of the largest hidden W */
    float *magnitudes;           /* brSF: |R_l| for l >= 1, packed at mag_off[l] */
    size_t mag_off[FAN_MAX_LAYERS];
    fan__rng magnitude_rng;      /* brSF: the stream R is drawn from ... */
    fan__rng magnitude_rng_last; /* ... and its state before the current R was drawn */
    fan__normal_tables *tables;  /* brSF: ziggurat tables */
    float *fb_backup;            /* KP: B before a step, restored if the step fails */

    /* Forward/backward workspace for up to ws_rows rows; grown, never shrunk (net_pass.c). */
    size_t ws_rows;
    float *ws;
    float *h[FAN_MAX_LAYERS + 1]; /* h[l], l >= 1: activations after layer l - 1, rows x ld[l] */
    float *d[FAN_MAX_LAYERS + 1]; /* d[l], l >= 1: the error at those outputs; d[L] is e */
    size_t ld[FAN_MAX_LAYERS + 1]; /* floats per row of h[l] and d[l]: sizes[l] padded */
    float *onehot;                /* rows x outputs, targets built from labels */
    double *row_loss;             /* rows: each row's loss, summed in order by one thread */

    /* How the net runs (net_exec.c): the GEMM kernels chosen from CPUID when the net was
       created, FAN_NET_THREADS (0 stands for the default, 1) and the pool of those threads,
       started by the first call that needs it. */
    fan__kernels kernels;
    size_t threads;
    fan__pool *pool;
};

static inline float *fan__net_w(const fan_net *net, size_t l) { return net->params + net->w_off[l]; }
static inline float *fan__net_b(const fan_net *net, size_t l) { return net->params + net->b_off[l]; }
static inline float *fan__net_fb(const fan_net *net, size_t l) { return net->feedback + net->fb_off[l]; }
/* Elements of W_l. */
static inline size_t fan__net_wn(const fan_net *net, size_t l)
{
    return net->sizes[l] * net->sizes[l + 1];
}

/* ---- execution (net_exec.c) ---- */

/** FAN_NET_THREADS of the net: 1 to FAN_MAX_THREADS. */
size_t fan__net_threads(const fan_net *net);
/** Starts the net's pool if FAN_NET_THREADS > 1 and it is not running; FAN_E_NOMEM on failure. */
fan_status fan__net_ensure_pool(fan_net *net);
/** Kernels and threads as fan_net_set/fan_net_get and fan_net_clone see them. */
fan_status fan__net_set_threads(fan_net *net, double value);
/** Settings a clone copies; the pool is never shared. */
void fan__net_copy_exec(fan_net *dst, const fan_net *src);
/** Stops the pool; called by fan_net_free. */
void fan__net_free_exec(fan_net *net);

/* ---- passes (net_pass.c, net_parallel.c) ---- */

/* Elementwise parts on n rows of width w with row strides ld: bias and activation; softmax;
   times phi'(o) expressed through h = phi(o); and the loss's output error for rows [r0, r1) of a
   batch of n (targets n x outputs, dense), each row's loss into row_loss (may be NULL), returning
   their sum in row order. */
void fan__bias_activate(float *z, size_t ld, const float *bias, size_t n, size_t w,
                        fan_activation act, float slope);
void fan__softmax_rows(float *z, size_t ld, size_t n, size_t w);
void fan__mul_derivative(float *d, size_t ldd, const float *h, size_t ldh, size_t n, size_t w,
                         fan_activation act, float slope);
double fan__output_rows(const fan_net *net, const float *y, size_t ld, const float *targets,
                        size_t r0, size_t r1, size_t n, float *delta, double *row_loss);

/* What a pass of the net's workspace computes. */
typedef enum fan__pass_mode {
    FAN__PASS_PROBS = 1, /* forward, softmax probabilities in h[L] */
    FAN__PASS_LOSS = 2,  /* forward, each row's loss in row_loss (targets given) */
    FAN__PASS_TRAIN = 3, /* and the error pass and the gradients into grads_next, scanned */
    /* FAN__PASS_TRAIN without the scan of the gradients for non-finite values: for a training
       step whose update finds them itself (train.c, fan__net_gradients_labels) */
    FAN__PASS_TRAIN_UNSCANNED = 4
} fan__pass_mode;
/**
 * One pass over n rows of x on the net's threads (net_parallel.c), in the workspace (reserved
 * for n rows). Returns 1 if a gradient came out non-finite (FAN__PASS_TRAIN), else 0. A rule's
 * per-batch feedback is drawn before the call.
 */
int fan__net_run_pass(fan_net *net, const float *x, const float *targets, size_t n,
                      fan__pass_mode mode);

/* The stored B_l, for rules whose error pass reads it as it is. */
const float *fan__rule_stored_feedback(const fan_net *net, size_t l, float *scratch);

/*
 * Keeping the gradient view's address fixed. A gradient computation writes into grads_next and
 * swaps it with grads when all is finite; once a view is out, prepare (before the backward pass)
 * copies the current gradients aside and points grads_next at the view, and settle (after a
 * failed computation or an undo) copies the gradients that must stay back into the view.
 * Both do nothing for a net that never handed out a view.
 */
void fan__net_grads_prepare(fan_net *net);
void fan__net_grads_settle(fan_net *net);

/* Draws a rows x cols matrix from an initialiser (fan_in = cols, fan_out = rows). */
void fan__net_draw(float *m, size_t rows, size_t cols, fan_init init, fan__rng *r);
/* Standard deviation of an initialiser's draws for a rows x cols matrix. */
double fan__init_std(fan_init init, size_t rows, size_t cols);
/* Rows of B_l under a rule. */
size_t fan__rule_feedback_rows(const fan__rule_ops *rule, const size_t *sizes, size_t n_layers,
                               size_t l);

#endif /* FAN_NET_IMPL_H */
