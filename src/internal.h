/*
 * internal.h - shared internals of libfanoise. Never installed; names are fan__ (hidden).
 */
#ifndef FAN_INTERNAL_H
#define FAN_INTERNAL_H

#include "fanoise.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors (error.c) ------------------------------------------------------------------- */

/** Capacity of every handle's message buffer, terminating NUL included. */
#define FAN__ERRMSG_CAP 256

/**
 * Records a formatted message in err (may be NULL) and returns status. Handles keep their
 * message behind a `char *err` member so that const handles can still record why a call failed,
 * the one write a const call makes, and only on failure.
 */
fan_status fan__fail(char *err, fan_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** Returns from the calling function with status and a message when cond holds. */
#define FAN__FAIL_IF(err, cond, status, ...)                                                    \
    do {                                                                                        \
        if (cond) return fan__fail((err), (status), __VA_ARGS__);                               \
    } while (0)

/** Returns the status of expr from the calling function unless it is FAN_OK. */
#define FAN__CHECK(expr)                                                                        \
    do {                                                                                        \
        fan_status fan__s = (expr);                                                             \
        if (fan__s != FAN_OK) return fan__s;                                                    \
    } while (0)

/* ---- memory (alloc.c) ------------------------------------------------------------------- */

/** Copies *a into the handle's allocator, or the malloc/free pair when a is NULL. */
void fan__alloc_init(fan_allocator *dst, const fan_allocator *a);
/** Allocates size bytes (size 0 gives a valid unique pointer); NULL on failure. */
void *fan__alloc(const fan_allocator *a, size_t size);
/** Allocates count * size zeroed bytes, NULL on overflow or failure. */
void *fan__calloc(const fan_allocator *a, size_t count, size_t size);
/** Frees p (NULL is a no-op). */
void fan__free(const fan_allocator *a, void *p);
/** Sets *out = a * b and returns 1, or returns 0 if it overflows size_t. */
int fan__mul_ok(size_t a, size_t b, size_t *out);

/* ---- random numbers (rng.c) ------------------------------------------------------------- */

/** xoshiro256** state; seeded by splitmix64 from a 64-bit seed. Each handle owns its streams. */
typedef struct fan__rng {
    uint64_t s[4];
} fan__rng;

void fan__rng_seed(fan__rng *r, uint64_t seed);
/** Seeds stream `stream` of `seed`: distinct streams of one seed are independent. */
void fan__rng_seed_stream(fan__rng *r, uint64_t seed, uint64_t stream);
uint64_t fan__rng_next(fan__rng *r);
/** Uniform double in [0, 1) with 53 random bits. */
double fan__rng_uniform(fan__rng *r);
/** Uniform integer in [0, n), unbiased; n > 0. */
uint64_t fan__rng_below(fan__rng *r, uint64_t n);
/** One standard normal draw (double precision). */
double fan__rng_normal(fan__rng *r);
/** Tables of the ziggurat normal generator; built once by the handle that draws noise. */
#define FAN__ZIG_LAYERS 128
typedef struct fan__normal_tables {
    uint32_t k[FAN__ZIG_LAYERS];
    float w[FAN__ZIG_LAYERS];
    float f[FAN__ZIG_LAYERS];
} fan__normal_tables;
void fan__normal_tables_init(fan__normal_tables *t);
/** Fills out[0..n) with N(mean, std^2) floats (ziggurat; tables from fan__normal_tables_init). */
void fan__rng_fill_normal(fan__rng *r, const fan__normal_tables *t, float *out, size_t n,
                          float mean, float std);
/** Fills out[0..n) with U[lo, hi) floats. */
void fan__rng_fill_uniform(fan__rng *r, float *out, size_t n, float lo, float hi);
/** Fisher-Yates shuffle of idx[0..n). */
void fan__rng_shuffle(fan__rng *r, size_t *idx, size_t n);

/* ---- linear algebra (linalg.c: the only file that includes cblas.h / lapacke.h) ----------- */

/**
 * C = alpha * op(A) * op(B) + beta * C, row-major, op(X) = X or X^T (trans_x non-zero).
 * op(A) is m x k, op(B) is k x n, C is m x n.
 */
void fan__sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                const float *a, size_t lda, const float *b, size_t ldb, float beta, float *c,
                size_t ldc);
/** Double-precision GEMM, same conventions. */
void fan__dgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, double alpha,
                const double *a, size_t lda, const double *b, size_t ldb, double beta, double *c,
                size_t ldc);
/**
 * Singular values (descending) of the row-major rows x cols double matrix a, which is destroyed.
 * sv has min(rows, cols) entries. If u is not NULL it receives the first min(rows, cols) left
 * singular vectors as columns of a row-major rows x min(rows, cols) matrix. LAPACK workspace comes
 * from al. Returns FAN_OK, FAN_E_NONFINITE (a holds NaN or infinity: LAPACK is not called),
 * FAN_E_NOMEM or FAN_E_LAPACK (no convergence); records no message.
 */
fan_status fan__svd(const fan_allocator *al, double *a, size_t rows, size_t cols, double *sv,
                    double *u);

/* ---- the network (net.c) ----------------------------------------------------------------- */

struct fan_net {
    fan_allocator alloc;
    char *err; /* points at err_storage; see fan__fail */
    char err_storage[FAN__ERRMSG_CAP];

    size_t n_layers;                      /* weight layers L */
    size_t sizes[FAN_MAX_LAYERS + 1];     /* widths, sizes[0] = inputs */
    fan_activation act[FAN_MAX_LAYERS];   /* activation of each weight layer's outputs */
    fan_rule rule;
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

    size_t n_feedback;              /* sum of out * in */
    size_t fb_off[FAN_MAX_LAYERS];
    float *feedback;                /* B_l with W_l's shape */

    /* Forward/backward workspace for up to ws_rows rows; grown, never shrunk. */
    size_t ws_rows;
    float *ws;
    float *h[FAN_MAX_LAYERS + 1];   /* h[l], l >= 1: activations after layer l - 1 (rows x sizes[l]) */
    float *delta_a, *delta_b;       /* rows x max width */
    float *onehot;                  /* rows x outputs, targets built from labels */
};

static inline float *fan__net_w(const fan_net *net, size_t l) { return net->params + net->w_off[l]; }
static inline float *fan__net_b(const fan_net *net, size_t l) { return net->params + net->b_off[l]; }
static inline float *fan__net_fb(const fan_net *net, size_t l) { return net->feedback + net->fb_off[l]; }

/**
 * Forward pass of n rows of x into caller-provided buffers: hs[l] for l = 1..L holds n x
 * sizes[l] post-activation values (hs[0] is ignored). Under cross-entropy hs[L] holds the softmax
 * probabilities when `softmax` is non-zero, else the output activations. Reads the net only.
 */
void fan__net_forward_into(const fan_net *net, const float *x, size_t n, float *const *hs,
                           int softmax);
/**
 * Output error of the loss for a batch whose outputs (probabilities under cross-entropy) are in
 * y (n x outputs), writing dL/d(pre-activation) of the output layer into delta and returning the
 * mean loss (double). targets is n x outputs.
 */
double fan__net_output_delta(const fan_net *net, const float *y, const float *targets, size_t n,
                             float *delta);
/**
 * Sends the error delta_out (n x sizes[l + 1], w.r.t. pre-activations of layer l's outputs)
 * down through layer l by `rule`: delta_in = (delta_out * M_l) .* phi'(h_l), with M_l = W_l for
 * BP and B_l for FA. h_l = hs[l] (l >= 1).
 */
void fan__net_delta_down(const fan_net *net, fan_rule rule, size_t l, const float *delta_out,
                         const float *h_l, size_t n, float *delta_in);
/** Validates layer widths for a constructor or loader. */
fan_status fan__net_validate_sizes(const size_t *sizes, size_t n_sizes, char *err);
/** Allocates a net with default settings and all-zero W, b, B (no initialisation drawn). */
fan_status fan__net_new(fan_net **out, const size_t *sizes, size_t n_sizes,
                        const fan_allocator *alloc, char *err);
/** 1 if every float of v[0..n) is finite. */
int fan__all_finite(const float *v, size_t n);
/** fan_net_compute_gradients / _targets, shared with the training step. */
fan_status fan__net_gradients_labels(fan_net *net, const float *x, const int32_t *labels,
                                     size_t n, float *loss);
fan_status fan__net_gradients_targets(fan_net *net, const float *x, const float *targets,
                                      size_t n, float *loss);
/** Ensures the workspace holds n rows. */
fan_status fan__net_reserve(fan_net *net, size_t n);
/** Writes n one-hot rows of width c for labels into targets; the caller has checked labels < c. */
void fan__one_hot(const int32_t *labels, size_t n, size_t c, float *targets);
/** Checks labels are in [0, outputs); records the message on net. */
fan_status fan__net_check_labels(const fan_net *net, const int32_t *labels, size_t n);

/* ---- optimizer (optimizer.c) ------------------------------------------------------------- */

/** Number of hyperparameters (FAN_OPT_* values are 0 .. FAN__OPT_COUNT - 1). */
#define FAN__OPT_COUNT 8

/* ---- datasets (dataset.c) ---------------------------------------------------------------- */

/**
 * Writes samples idx[0..n) (or n consecutive samples from `first` when idx is NULL) as
 * normalised float rows into x (n x dim) and their labels into labels (may be NULL).
 * The caller has checked every index.
 */
void fan__dataset_gather(const fan_dataset *ds, const size_t *idx, size_t first, size_t n,
                         float *x, int32_t *labels);
/** The dataset's allocator. */
const fan_allocator *fan__dataset_allocator(const fan_dataset *ds);

#endif /* FAN_INTERNAL_H */
