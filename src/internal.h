/*
 * internal.h - shared internals of libfanoise. Never installed; names are fan__ (hidden).
 */
#ifndef FAN_INTERNAL_H
#define FAN_INTERNAL_H

#include "fanoise.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors (error.c) ------------------------------------------------------------------- */

/** Capacity of every handle's message buffer, terminating NUL included. */
#define FAN__ERRMSG_CAP 256

/**
 * A message buffer: its text and the flag that serialises the threads writing it. Handles keep
 * one, behind a `char *err` member pointing at its text, so that const handles can still record
 * why a call failed (the one write a const call makes, and only on failure), and so that two
 * threads failing at once on one const handle take turns instead of racing. Every buffer that
 * fan__fail writes is the text of one of these: fan__fail finds the flag from the text.
 */
typedef struct fan__msg {
    atomic_flag busy;
    char text[FAN__ERRMSG_CAP];
} fan__msg;

/** Makes m empty with its flag free; returns m->text, the buffer fan__fail takes. */
char *fan__msg_init(fan__msg *m);

/**
 * Records a formatted message in err (may be NULL; else the text of a fan__msg) and returns
 * status. The message is formatted first, then copied in while holding the buffer's flag.
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
/** Advances *x by the golden gamma and returns it mixed (splitmix64): the seeding sequence. */
uint64_t fan__splitmix64(uint64_t *x);
/**
 * What a random stream is for. Streams of different purposes never share a state, even when a
 * user passes the same seed to a net and an iterator, so W_0's draws, the shuffle and the noise
 * stay independent. Values are part of the reproducibility contract: never renumber.
 */
typedef enum fan__rng_purpose {
    FAN__RNG_WEIGHTS = 1,     /* W_l; index l */
    FAN__RNG_FEEDBACK = 2,    /* B_l; index l */
    FAN__RNG_SHUFFLE = 3,     /* epoch permutations of a batch iterator */
    FAN__RNG_NOISE_INPUT = 4, /* inputs of a noise iterator */
    FAN__RNG_NOISE_LABEL = 5, /* labels of a noise iterator */
    FAN__RNG_SUBSET = 6,      /* random subsets and splits of a dataset */
    FAN__RNG_MAGNITUDE = 7,   /* brSF's per-batch feedback magnitudes */
    FAN__RNG_MIRROR = 8       /* the inputs of fan_net_mirror */
} fan__rng_purpose;
/** Seeds stream (purpose, index) of `seed`: distinct pairs of one seed are independent. */
void fan__rng_seed_stream(fan__rng *r, uint64_t seed, fan__rng_purpose purpose, uint64_t index);
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
/**
 * The ziggurat's slow path for a 32-bit draw split into a layer iz and a signed position hz that
 * fell outside its layer's rectangle: draws from r until it accepts. Shared by the one-at-a-time
 * and the bulk generators (rng_bulk.c).
 */
float fan__zig_slow(fan__rng *r, const fan__normal_tables *t, int32_t hz, unsigned iz);
/** Fills out[0..n) with U[lo, hi) floats. */
void fan__rng_fill_uniform(fan__rng *r, float *out, size_t n, float lo, float hi);
/** Fisher-Yates shuffle of idx[0..n). */
void fan__rng_shuffle(fan__rng *r, size_t *idx, size_t n);

/* ---- instruction sets (kernels.c) -------------------------------------------------------- */

/**
 * Which vector code the hot paths run (the GEMM kernels, the bulk normal generator, the optimizer's
 * update). Values order the sets: a higher one needs more of the CPU.
 */
typedef enum fan__kernels {
    FAN__KERNELS_CBLAS = 0,  /* the BLAS the library links: any CPU */
    FAN__KERNELS_AVX2 = 1,   /* AVX2 + FMA, 256-bit (x86-64-v3) */
    FAN__KERNELS_AVX512 = 2  /* AVX-512F, 512-bit */
} fan__kernels;

/**
 * The best set this CPU and OS support (CPUID feature bits and the register state the OS saves,
 * XCR0), lowered to FANOISE_KERNELS when that environment variable names a set ("cblas",
 * "avx2", "avx512"; anything else is ignored). Reads only; called when a net or a noise iterator
 * is created.
 */
fan__kernels fan__kernels_detect(void);
/** Highest set the CPU supports, ignoring the environment. */
fan__kernels fan__kernels_supported(void);
/** "cblas", "avx2" or "avx512". */
const char *fan__kernels_name(fan__kernels k);

/**
 * Normal noise in bulk (rng_bulk.c): fan__rng_fill_normal's distribution, a different sequence.
 * The values of a call come in blocks of FAN__NORMAL_BLOCK; block k depends only on the call's
 * seed (one draw from r) and k, so blocks may be filled in any order, on any thread, and every
 * `isa` gives the same bits. fan__rng_fill_normal_bulk fills them all in order;
 * fan__rng_normal_block fills block k (count values, the last block may be short) of out.
 */
#define FAN__NORMAL_BLOCK 4096
void fan__rng_fill_normal_bulk(fan__kernels isa, fan__rng *r, const fan__normal_tables *t,
                               float *out, size_t n, float mean, float std);
void fan__rng_normal_block(fan__kernels isa, uint64_t seed, size_t k,
                           const fan__normal_tables *t, float *out, size_t count, float mean,
                           float std);

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

/* ---- the network (net*.c, rule*.c; its layout is private to them: net_impl.h) ------------ */

/* Reading the net from outside its own files. Pointers are borrowed from the net and valid
   until the next call that reshapes it (loading, a rule change that changes B's shape). */

/** The net's message buffer: the one thing a failing call on a const net writes. */
char *fan__net_errbuf(const fan_net *net);
const fan_allocator *fan__net_allocator(const fan_net *net);
/** Widths of the net: sizes[0] = inputs, sizes[L] = outputs (n_layers + 1 entries). */
const size_t *fan__net_sizes(const fan_net *net);
const float *fan__net_weights(const fan_net *net, size_t l);
const float *fan__net_bias(const fan_net *net, size_t l);
/** The stored B_l, fan__net_feedback_rows(net, l) x sizes[l]. */
const float *fan__net_feedback(const fan_net *net, size_t l);
size_t fan__net_feedback_rows(const fan_net *net, size_t l);
/** dW_l of the last gradient computation. */
const float *fan__net_gradient(const fan_net *net, size_t l);

/** fan_net_create recording why it failed in err (may be NULL). */
fan_status fan__net_create(fan_net **out, const size_t *sizes, size_t n_sizes,
                           const fan_allocator *alloc, char *err);
/** A deep copy of src (out and src not NULL) with another allocator, the failure told in err. */
fan_status fan__net_clone(fan_net **out, const fan_net *src, const fan_allocator *alloc,
                          char *err);

/** Everything but the numbers: what a file stores before W, b and B. */
typedef struct fan__net_desc {
    size_t n_layers;
    size_t sizes[FAN_MAX_LAYERS + 1];
    fan_activation act[FAN_MAX_LAYERS];
    fan_rule rule;
    fan_loss loss;
    fan_init init_w, init_b;
    float leaky_slope;
    uint64_t weight_seed, feedback_seed;
} fan__net_desc;
void fan__net_describe(const fan_net *net, fan__net_desc *d);
/**
 * A net with the description's settings and all-zero W, b and B (B shaped for d->rule), for a
 * loader to fill. Validates every field; records failures in err.
 */
fan_status fan__net_from_desc(fan_net **out, const fan__net_desc *d, const fan_allocator *alloc,
                              char *err);
/** Writable W_l / b_l / B_l, for a loader filling a new net. */
float *fan__net_weights_mut(fan_net *net, size_t l);
float *fan__net_bias_mut(fan_net *net, size_t l);
float *fan__net_feedback_mut(fan_net *net, size_t l);
/**
 * The rule's own state that a file must keep beyond B (brSF: the magnitude stream), as bytes:
 * size, then write into a buffer of that size, and read back into a net of the same rule (which
 * also rebuilds what the state determines). read fails with FAN_E_FORMAT on a bad length.
 */
size_t fan__net_rule_state_size(const fan_net *net);
void fan__net_rule_state_write(const fan_net *net, unsigned char *out);
fan_status fan__net_rule_state_read(fan_net *net, const unsigned char *in, size_t len, char *err);
/** What the net's rule is, for code that must not name rules: it sends backprop's errors
    (BP); its hidden layers get the output error directly (DFA). */
int fan__net_rule_is_backprop(const fan_net *net);
int fan__net_rule_is_direct(const fan_net *net);
/** 1 if every parameter, and the stored feedback, is finite. */
int fan__net_all_finite(const fan_net *net);

/* The training step (train.c) on the net's flat arrays. */
/** All W and b in one block of *n floats; gradients share the layout. */
float *fan__net_params_mut(fan_net *net, size_t *n);
const float *fan__net_grads(const fan_net *net, size_t *n);
int fan__net_has_grads(const fan_net *net);
/**
 * After the optimizer changed the parameters: the rule's own update (KP moves B with W).
 * params_before holds the parameters before the step; contraction is lr * weight decay. Returns
 * 0 if the rule's state became non-finite, after restoring it (the caller then restores W).
 */
int fan__net_after_update(fan_net *net, const float *params_before, double contraction);
/** Keeps a copy of what fan__net_after_update may change, for fan__net_restore_rule_state. */
void fan__net_save_rule_state(fan_net *net);
void fan__net_restore_rule_state(fan_net *net);

/**
 * Forward pass of n rows of x into caller-provided buffers: hs[l] for l = 1..L holds n x
 * sizes[l] post-activation values (hs[0] is ignored). Under cross-entropy hs[L] holds the softmax
 * probabilities when `softmax` is non-zero, else the output activations. Reads the net only.
 */
void fan__net_forward_into(const fan_net *net, const float *x, size_t n, float *const *hs,
                           int softmax);
/**
 * fan__net_forward_into, then FAN_E_NUMERIC (recorded on net) if any layer's activations are not
 * finite: what every call that reports results from a forward pass uses.
 */
fan_status fan__net_forward_checked(const fan_net *net, const float *x, size_t n,
                                   float *const *hs, int softmax);
/**
 * Output error of the loss for a batch whose output activations are in y (n x outputs),
 * writing dL/d(pre-activation) of the output layer into delta and returning the mean loss
 * (double). targets is n x outputs.
 */
double fan__net_output_delta(const fan_net *net, const float *y, const float *targets, size_t n,
                             float *delta);
/**
 * Error signals of a rule: from the output error e (n x outputs) and the activations hs of a
 * forward pass, writes into deltas[l] (n x sizes[l], l = 1..L-1) the error at the outputs of
 * weight layer l - 1 as `rule`'s backward pass computes it (FAN_RULE_BP for backprop's).
 * scratch holds the rule's computed feedback matrices (fan__net_rule_scratch_floats floats, may
 * be NULL when that is 0). Reads the net only.
 */
void fan__net_error_signals(const fan_net *net, fan_rule rule, const float *e,
                            const float *const *hs, size_t n, float *const *deltas,
                            float *scratch);
size_t fan__net_rule_scratch_floats(const fan_net *net, fan_rule rule);
/**
 * The matrix rule's error pass multiplies by at layer l >= 1 (stored B, W, or computed into
 * scratch of sizes[l + 1] * sizes[l] floats), with *rows rows and sizes[l] columns.
 */
const float *fan__net_feedback_matrix(const fan_net *net, fan_rule rule, size_t l,
                                      float *scratch, size_t *rows);
/**
 * The product of the forward weights from weight layer l to the output, W_{L-1} ... W_l
 * ((net outputs) x sizes[l]): DFA's B_l is compared with it. out and tmp each hold
 * fan__net_product_floats(net) floats.
 */
void fan__net_weight_product(const fan_net *net, size_t l, float *out, float *tmp);
size_t fan__net_product_floats(const fan_net *net);
/** 1 for a rule value the library implements. */
int fan__rule_known(fan_rule r);
/**
 * fan_net_compute_gradients / _targets, shared with the training step. With scan = 0 the
 * gradients are not scanned for non-finite values (only the loss is checked): for a step whose
 * update finds them itself.
 */
fan_status fan__net_gradients_labels(fan_net *net, const float *x, const int32_t *labels,
                                     size_t n, float *loss, int scan);
fan_status fan__net_gradients_targets(fan_net *net, const float *x, const float *targets,
                                      size_t n, float *loss, int scan);
/** The hook of fan_net_set_gradient_hook (NULL if none) and its user pointer, for the step. */
fan_gradient_hook fan__net_gradient_hook(const fan_net *net, void **user);
/**
 * Runs a job on the net's threads (pool.h): n_phases phases of items[p] items, fn(ctx, phase,
 * item) each, any item on any thread, phase after phase; returns when all have run. With one
 * thread, or before the pool has started, the caller runs them in order. What an item computes
 * must not depend on the thread that runs it.
 */
void fan__net_parallel(fan_net *net, void (*fn)(void *ctx, size_t phase, size_t item), void *ctx,
                       const size_t *items, size_t n_phases);
/**
 * Calls fn(ctx, first, count) on the net's threads for ranges covering all its parameters (the
 * layout of fan__net_params_mut), each range on the thread that computes its gradients in a
 * training pass, so that an update finds them in that core's caches. Ranges are disjoint; any
 * order; returns when all are done.
 */
void fan__net_parallel_params(fan_net *net, void (*fn)(void *ctx, size_t first, size_t count),
                              void *ctx);
/** The instruction set the net's hot paths use, chosen when it was created (net_exec.c). */
fan__kernels fan__net_kernels(const fan_net *net);
/**
 * Puts back what the last successful gradient computation replaced (the previous gradients, and
 * for brSF the previous magnitudes), for a training step whose update then failed. Valid once,
 * right after that computation.
 */
void fan__net_undo_gradients(fan_net *net);
/** Loss and number of correct argmax predictions of m rows, in the net's workspace. */
fan_status fan__net_eval_chunk(fan_net *net, const float *x, const int32_t *labels, size_t m,
                               double *loss_sum, size_t *correct);
/** 1 if every float of v[0..n) is finite. */
int fan__all_finite(const float *v, size_t n);
/** Writes n one-hot rows of width c for labels into targets; the caller has checked labels < c. */
void fan__one_hot(const int32_t *labels, size_t n, size_t c, float *targets);
/** Checks labels are in [0, outputs); records the message on net. */
fan_status fan__net_check_labels(const fan_net *net, const int32_t *labels, size_t n);

/* ---- optimizer (optimizer.c) ------------------------------------------------------------- */

/** Number of hyperparameters (FAN_OPT_* values are 0 .. FAN__OPT_COUNT - 1). */
#define FAN__OPT_COUNT 14

/* Optimizers only update (the step itself, with its checks, is in train.c). */
char *fan__optimizer_errbuf(const fan_optimizer *opt);
/** 1 if the optimizer's state was sized for a net of these widths. */
int fan__optimizer_fits(const fan_optimizer *opt, const size_t *sizes, size_t n_layers,
                        size_t n_params);
/** Starts a step: computes the coefficients every range of it uses. */
void fan__optimizer_begin_step(fan_optimizer *opt);
/**
 * Saves p[first, first + count) and the optimizer's state there, so that fan__optimizer_rollback
 * can restore them exactly, then applies one update to them from g with the coefficients of
 * fan__optimizer_begin_step, without advancing the step count. isa picks the vector width; every
 * width gives the same bits. Disjoint ranges may be updated from different threads at once.
 * Returns 1 if every updated parameter and state value is finite. Never allocates: the copy is
 * made at creation.
 */
int fan__optimizer_update_range(fan_optimizer *opt, fan__kernels isa, float *p, const float *g,
                                size_t first, size_t count);
/**
 * Ends a step whose ranges have all been updated: advances the step count, and returns the
 * parameters as they were before the step, readable until the next step.
 */
const float *fan__optimizer_end_step(fan_optimizer *opt);
/**
 * Scheduled lr * weight decay of the last update: how much a step of plain SGD shrank a parameter
 * towards zero.
 */
double fan__optimizer_contraction(const fan_optimizer *opt);
/** The learning rate the last update used (the schedule's value at its step). */
double fan__optimizer_last_lr(const fan_optimizer *opt);
/** Undoes the last step on p[0..n) (n = the state's size) and the optimizer's state. */
void fan__optimizer_rollback(fan_optimizer *opt, float *p, size_t n);
/** fan_optimizer_load_mem with its message in err (may be NULL); buf is not NULL. */
fan_status fan__optimizer_load(fan_optimizer **out, const void *buf, size_t len,
                               const fan_allocator *alloc, char *err);

/* ---- saving files (io.c) ------------------------------------------------------------------- */

/** A file being written by fan__save_atomic (opaque; io.c). */
typedef struct fan__writer fan__writer;
/** Appends n bytes to the file; after a failed write later calls do nothing (the save fails). */
void fan__writer_put(fan__writer *w, const void *p, size_t n);
/** Produces the whole content of a file, in order, through fan__writer_put. */
typedef void (*fan__emit_fn)(const void *ctx, fan__writer *w);
/**
 * Replaces the file at path atomically with the bytes emit(ctx, w) produces, by the protocol of
 * file_replace.c: symbolic links followed to their target, whose permission bits are kept; the
 * bytes go to the target's one temporary name (removed again by the next save if a crash leaves
 * it), which is synced and renamed over the target, and the directory is synced. On any failure
 * before the rename the target is left as it was, and err (may be NULL) says why. Every file the
 * library writes (models, checkpoints) goes through here, and all of it through the file layer
 * (fileio.h), so that the save path is one piece of code under the fault-injection tests.
 * @return FAN_OK; FAN_E_NULL (path); FAN_E_IO; FAN_E_NOMEM.
 */
fan_status fan__save_atomic(const char *path, fan__emit_fn emit, const void *ctx,
                            const fan_allocator *al, char *err);

/**
 * Reads the whole regular file at path into *data (len bytes from al; the caller frees it). A
 * directory, FIFO or device fails with FAN_E_IO; a file larger than max_bytes (0: no bound but
 * half the address space) fails with FAN_E_LIMIT before anything is allocated.
 * @return FAN_OK; FAN_E_IO; FAN_E_LIMIT; FAN_E_NOMEM (message in err).
 */
fan_status fan__read_file(const char *path, uint64_t max_bytes, const fan_allocator *al,
                          unsigned char **data, size_t *len, char *err);

/* ---- datasets (dataset.c) ---------------------------------------------------------------- */

/**
 * Writes samples idx[0..n) (or n consecutive samples from `first` when idx is NULL) as
 * normalised float rows into x (n x dim) and their labels into labels (may be NULL).
 * The caller has checked every index.
 */
void fan__dataset_gather(const fan_dataset *ds, const size_t *idx, size_t first, size_t n,
                         float *x, int32_t *labels);
/* Asks the caches for the rows idx[0..n) of a later gather and their labels, without waiting
   for them (a hint: no effect on any result). */
void fan__dataset_prefetch(const fan_dataset *ds, const size_t *idx, size_t n);
/** The dataset's allocator. */
const fan_allocator *fan__dataset_allocator(const fan_dataset *ds);
/** The dataset's message buffer (a failing call on a const dataset records its message). */
char *fan__dataset_errbuf(const fan_dataset *ds);

/** What identifies a dataset's batches: sizes, storage, normalisation and a content hash. */
typedef struct fan__dataset_fp {
    uint64_t count, dim, classes;
    uint32_t storage; /* 0: uint8 samples, 1: float samples */
    uint32_t norm;    /* fan_norm */
    double mean, std; /* FAN_NORM_STANDARDIZE's; 0 and 1 otherwise */
    uint64_t hash;    /* CRC-32 of the samples << 32 | CRC-32 of the labels (docs/file-format.md) */
} fan__dataset_fp;
/** Fills fp; reads every sample once (zlib's CRC-32, a few GB/s). */
void fan__dataset_fingerprint(const fan_dataset *ds, fan__dataset_fp *fp);

#endif /* FAN_INTERNAL_H */
