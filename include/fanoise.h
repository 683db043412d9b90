/**
 * @file fanoise.h
 * libfanoise: learning without weight transport.
 *
 * Feedback alignment (FA) and backprop (BP) training of multilayer networks, random-noise
 * pretraining (Cheon, Lee, Paik, NeurIPS 2024) and SVD-based diagnostics of alignment and
 * dimensionality. This header is the whole public interface and its reference documentation.
 *
 * Conventions that hold for every function below unless its block says otherwise:
 * - Functions returning fan_status return FAN_OK (0) on success and a positive error code on
 *   failure. A failed call leaves its handles exactly as they were before the call, and records a
 *   message readable with the handle's fan_*_errmsg function.
 * - Constructors take `T **out`; on failure `*out` is set to NULL (when out itself is not NULL)
 *   and nothing is leaked. Destructors accept NULL. Every constructor has an _ex variant taking
 *   `const fan_create_options *` in place of the allocator: with it the caller learns why a
 *   constructor failed (which file, which value), since a failed constructor has no handle.
 * - Matrices are row-major float arrays. W_l (weight layer l) has layer_outputs(l) rows and
 *   layer_inputs(l) columns. The feedback matrix B_l has W_l's shape for every rule but DFA
 *   (fan_net_feedback_shape), so the error pass is delta_in = delta_out * B_l exactly as BP's is
 *   delta_out * W_l.
 * - Output buffers come with their length in elements; a length that does not match the required
 *   size fails with FAN_E_SHAPE and the message says the required size.
 * - Const handles: a function taking a const handle changes nothing in it, with one exception: a
 *   failing call records its message, readable with fan_*_errmsg.
 * - Thread safety: distinct handles may be used from different threads at once; one handle needs
 *   external locking. Concurrent calls taking the same const handle are safe, failing ones
 *   included: their messages take turns, and the handle holds one whole message. Reading the
 *   message (fan_*_errmsg) is safe once no other thread may still fail on that handle: a reader
 *   racing a writer can see a message being replaced. A custom allocator of a handle that several
 *   threads use at once, even through const calls, must itself be thread-safe: diagnostics take
 *   scratch memory from it. fan_strerror and the version functions are always safe. A net with
 *   FAN_NET_THREADS > 1 runs parts of its calls on threads it owns; they return before the call
 *   does, and only the calling thread ever calls the allocator.
 * - Memory goes through the fan_allocator given at creation (NULL means the C library's
 *   malloc/free); the library never prints, exits, aborts or keeps global mutable state.
 */
#ifndef FANOISE_H
#define FANOISE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Version
 *  The macros are the single source of truth; the Makefile reads them.
 *  @{ */
/** Major version: the ABI is stable within one major version (SONAME libfanoise.so.MAJOR). */
#define FANOISE_VERSION_MAJOR 0
/** Minor version: additions only. */
#define FANOISE_VERSION_MINOR 2
/** Patch version: fixes only. */
#define FANOISE_VERSION_PATCH 0
/** MAJOR * 10000 + MINOR * 100 + PATCH. */
#define FANOISE_VERSION_NUMBER \
    (FANOISE_VERSION_MAJOR * 10000 + FANOISE_VERSION_MINOR * 100 + FANOISE_VERSION_PATCH)
/** "MAJOR.MINOR.PATCH". */
#define FANOISE_VERSION_STRING "0.2.0"
/** @} */

/**
 * Warns when a caller ignores a returned status. Under C23 (or a compiler's C2x mode that has
 * it) and C++17 it is the standard [[nodiscard]], which a cast to void silences where a caller
 * means to ignore a status: `(void)fan_net_init(net, 1, 2);`. Otherwise it is GCC's and clang's
 * warn_unused_result, which GCC reports even through a cast to void.
 */
#if defined(__cplusplus) && __cplusplus >= 201703L
#define FAN_NODISCARD [[nodiscard]]
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ > 201710L && \
    defined(__has_c_attribute)
#if __has_c_attribute(nodiscard)
#define FAN_NODISCARD [[nodiscard]]
#endif
#endif

/**
 * Marks a function as part of the exported ABI. Where FAN_NODISCARD is a standard attribute, so
 * is this one: a GNU __attribute__ may not precede a standard attribute.
 */
#if defined(FAN_BUILDING_LIBRARY) && defined(__GNUC__) && defined(FAN_NODISCARD)
#define FAN_API [[gnu::visibility("default")]]
#elif defined(FAN_BUILDING_LIBRARY) && defined(__GNUC__)
#define FAN_API __attribute__((visibility("default")))
#else
#define FAN_API
#endif

#ifndef FAN_NODISCARD
#if defined(__GNUC__) || defined(__clang__)
#define FAN_NODISCARD __attribute__((warn_unused_result))
#else
#define FAN_NODISCARD
#endif
#endif

/* ------------------------------------------------------------------------------------------ */
/** @name Status codes
 *  @{ */
/** What a call did: FAN_OK, an error (> 0) or an informational code (>= 100). Values are explicit
 *  and append-only: a value is never renumbered or reused. */
typedef enum fan_status {
    FAN_OK = 0,               /**< Success. */
    FAN_E_NULL = 1,           /**< A required pointer argument was NULL. */
    FAN_E_INVALID = 2,        /**< An argument is out of its documented range. */
    FAN_E_SHAPE = 3,          /**< A length or size does not match what the handle requires. */
    FAN_E_NOMEM = 4,          /**< The allocator returned NULL. */
    FAN_E_NUMERIC = 5,        /**< A computation overflowed to NaN or infinity (a loss, gradient,
                                   update or forward pass); nothing was changed. */
    FAN_E_IO = 6,             /**< A file could not be opened, read, written or renamed. */
    FAN_E_FORMAT = 7,         /**< Data is malformed: bad magic, truncated, inconsistent. */
    FAN_E_VERSION = 8,        /**< A file uses a format version this library cannot read. */
    FAN_E_LIMIT = 9,          /**< A size exceeds a documented bound or would overflow. */
    FAN_E_STATE = 10,         /**< The call is not valid in the handle's current state. */
    FAN_E_LAPACK = 11,        /**< LAPACK reported a failure (the SVD did not converge). */
    FAN_E_CHECKSUM = 12,      /**< A file's CRC-32 does not match its contents. */
    FAN_E_NONFINITE = 13,     /**< Input data contains NaN or infinity. */
    FAN_E_LABEL = 14,         /**< A class label is negative or not below the class count. */
    FAN_E_UNSUPPORTED = 15,   /**< The combination of settings is not supported. */
    FAN_DONE = 100,           /**< Not an error: an iterator reached the end of an epoch. */
    FAN_STOPPED = 101,        /**< Not an error: a progress callback asked training to stop. */
    FAN_EARLY_STOPPED = 102   /**< Not an error: validation stopped improving (fan_train_v2). */
} fan_status;
/** @} */

/**
 * Returns a static, human-readable description of a status code. Never NULL; unknown values
 * give "unknown status". Thread-safe.
 */
FAN_API const char *fan_strerror(fan_status s);

/** Returns FANOISE_VERSION_NUMBER of the library actually linked. Thread-safe. */
FAN_API unsigned fan_version_number(void);
/** Returns FANOISE_VERSION_STRING of the library actually linked. Static storage. Thread-safe. */
FAN_API const char *fan_version_string(void);

/* ------------------------------------------------------------------------------------------ */
/**
 * A custom allocator. alloc(ud, size) returns memory aligned for any type or NULL; free(ud, ptr)
 * releases it and is never called with NULL. This struct is frozen for the life of the ABI.
 */
typedef struct fan_allocator {
    void *(*alloc)(void *ud, size_t size); /**< Returns size bytes, or NULL on failure. */
    void (*free)(void *ud, void *ptr);     /**< Releases a block returned by alloc. */
    void *ud;                              /**< Passed unchanged to alloc and free. */
} fan_allocator;

/* ------------------------------------------------------------------------------------------ */
/**
 * Default of fan_create_options.max_load_bytes: 4 GiB. It admits every legal single weight
 * matrix (FAN_MAX_MATRIX floats are 1 GiB; a model file holds W and B) and the datasets of the
 * paper many times over (Fashion-MNIST 47 MB, CIFAR-10 154 MB as stored), and it keeps a hostile
 * header from making a loader ask for more than half of an 8 GiB machine. Set a larger budget to
 * load larger data, a smaller one to run loaders on untrusted input.
 */
#define FAN_DEFAULT_MAX_LOAD_BYTES ((uint64_t)4 << 30)

/**
 * Options of the _ex constructors. Callers set struct_size = sizeof(fan_create_options) and
 * zero what they do not use (`fan_create_options o = {sizeof o};` in C, `= {}` plus struct_size
 * in C++). Fields are only ever appended: the library reads only the fields that the caller's
 * struct_size covers, so a program built against an older header keeps working; a caller built
 * against a newer header that sets a field this library does not know gets FAN_E_UNSUPPORTED,
 * and zeroed unknown fields are ignored. A NULL options pointer means all defaults.
 */
typedef struct fan_create_options {
    size_t struct_size;         /**< sizeof(fan_create_options) as the caller compiled it. */
    const fan_allocator *alloc; /**< Allocator, copied into the handle; NULL: malloc/free. */
    char *errmsg;               /**< NULL, or a buffer receiving the reason of a failure
                                     (NUL-terminated, truncated to errmsg_cap; "" on success). */
    size_t errmsg_cap;          /**< Bytes at errmsg. */
    uint64_t max_load_bytes;    /**< Loaders: refuse with FAN_E_LIMIT, before allocating, input
                                     whose declared decoded size exceeds this (see each loader
                                     for what it counts); 0 = FAN_DEFAULT_MAX_LOAD_BYTES. */
} fan_create_options;

/* ------------------------------------------------------------------------------------------ */
/** @name Enumerations
 *  @{ */

/**
 * Learning rule: how errors are sent down to hidden layers, and what happens to the feedback
 * matrices B_l. docs/rules.md gives every rule's equations and its source.
 */
typedef enum fan_rule {
    FAN_RULE_BP = 0,   /**< Backpropagation: errors pass through the forward weights W_l. */
    FAN_RULE_FA = 1,   /**< Feedback alignment (Lillicrap et al. 2016): errors pass through fixed
                            random matrices B_l of W_l's shape. */
    FAN_RULE_DFA = 2,  /**< Direct feedback alignment (Nokland 2016): each hidden layer gets the
                            output error through its own fixed B_l, (net outputs) x layer inputs. */
    FAN_RULE_USF = 3,  /**< Uniform sign-concordant feedback (Liao, Leibo, Poggio 2016): B_l =
                            sign(W_l) each step, times one positive scalar per layer. */
    FAN_RULE_BRSF = 4, /**< Batchwise random-magnitude sign-concordant feedback (Moskovitz et al.
                            2018): sign(W_l) * |R_l|, R_l redrawn for every batch. */
    FAN_RULE_FRSF = 5, /**< Fixed random-magnitude sign-concordant feedback: sign(W_l) * |B_l|,
                            B_l fixed (same scalar as uSF). */
    FAN_RULE_KP = 6,   /**< Kolen-Pollack (Akrout et al. 2019): errors through B_l, and B_l
                            receives the same update as W_l, weight decay included. */
    FAN_RULE_WM = 7    /**< Weight mirror (Akrout et al. 2019): FA's backward pass; B_l is
                            learned in mirror phases (fan_net_mirror). */
} fan_rule;

/** Activation applied to a weight layer's outputs. */
typedef enum fan_activation {
    FAN_ACT_LINEAR = 0,     /**< Identity. */
    FAN_ACT_RELU = 1,       /**< max(0, x). */
    FAN_ACT_LEAKY_RELU = 2, /**< x if x > 0, else slope * x (FAN_NET_LEAKY_SLOPE). */
    FAN_ACT_TANH = 3,       /**< tanh(x). */
    FAN_ACT_SIGMOID = 4     /**< 1 / (1 + exp(-x)). */
} fan_activation;

/** Loss applied to the output layer's activations. */
typedef enum fan_loss {
    FAN_LOSS_CROSS_ENTROPY = 0, /**< Softmax, then mean cross-entropy over the batch. */
    FAN_LOSS_MSE = 1            /**< Mean over batch and outputs of (y - t)^2 (PyTorch's MSELoss). */
} fan_loss;

/** Random initialiser for W or B (fan_in = layer inputs, fan_out = layer outputs). */
typedef enum fan_init {
    FAN_INIT_HE_NORMAL = 0,      /**< N(0, 2 / fan_in). */
    FAN_INIT_XAVIER_UNIFORM = 1, /**< U(-a, a), a = sqrt(6 / (fan_in + fan_out)). */
    FAN_INIT_LECUN_NORMAL = 2    /**< N(0, 1 / fan_in). */
} fan_init;

/** Which matrix of a layer a diagnostic or initialiser refers to. */
typedef enum fan_matrix {
    FAN_MATRIX_WEIGHTS = 0,  /**< W_l. */
    FAN_MATRIX_FEEDBACK = 1, /**< B_l as fan_net_get_feedback gives it (fan_net_feedback_shape). */
    FAN_MATRIX_GRADIENTS = 2 /**< dW_l from the last gradient computation (zero before any). */
} fan_matrix;

/** Scalar settings of a network, for fan_net_set / fan_net_get. */
typedef enum fan_net_param {
    FAN_NET_LEAKY_SLOPE = 0, /**< Negative slope of FAN_ACT_LEAKY_RELU; default 0.01, [0, 1]. */
    /**
     * Threads the net's own calls use: a whole number in [1, FAN_MAX_THREADS], default 1.
     * Every training, inference and evaluation call on the net (fan_net_train_batch, fan_train,
     * fan_pretrain_noise, fan_net_compute_gradients, fan_net_forward, fan_net_loss_value,
     * fan_net_evaluate, fan_optimizer_step, and the batches fan_train and fan_pretrain_noise
     * draw) shares its work between that many threads, which the net starts on its first such
     * call after the setting and stops in fan_net_free (or when the setting changes). The work
     * is cut into pieces of rows and columns whose size does not depend on the count, each
     * computed by single-threaded kernels, nothing summed across pieces: results are
     * bit-identical from run to run, and with the library's own AVX2 / AVX-512 kernels equal to
     * one thread's bit for bit (on the BLAS path, within float rounding). A thread the OS has
     * not scheduled holds nothing up (the others take its pieces); waiting threads spin for up
     * to 0.1 ms, then sleep. On the BLAS path (a CPU without AVX2, or FANOISE_KERNELS=cblas) set
     * OPENBLAS_NUM_THREADS=1 so that the two kinds of threads do not compete for cores. Not
     * saved in model files; copied by fan_net_clone.
     */
    FAN_NET_THREADS = 1
} fan_net_param;

/** Optimizer algorithms. */
typedef enum fan_optimizer_kind {
    FAN_OPTIMIZER_SGD = 0,    /**< SGD with optional (Nesterov) momentum and L2 weight decay. */
    FAN_OPTIMIZER_ADAM = 1,   /**< Adam with bias correction; weight decay added to the gradient. */
    FAN_OPTIMIZER_ADAMW = 2,  /**< Adam with decoupled weight decay. */
    FAN_OPTIMIZER_RMSPROP = 3 /**< RMSprop (uncentred), with optional momentum. */
} fan_optimizer_kind;

/**
 * Optimizer hyperparameters; see fan_optimizer_param_bounds for ranges and defaults.
 *
 * Learning-rate schedules are hyperparameters too (values 8 to 13), so they are set, bounded,
 * read and saved (fan_optimizer_save_mem, checkpoints) like the others. With t the optimizer's
 * step count before a step (fan_optimizer_steps: 0 for the first step after creation or reset),
 * W = FAN_OPT_WARMUP_STEPS, lr = FAN_OPT_LR and u = t - W the steps since the warm-up ended,
 * the step uses the learning rate
 *   - t < W (linear warm-up):        lr * (t + 1) / W;
 *   - otherwise, by FAN_OPT_SCHEDULE:
 *     FAN_SCHEDULE_CONSTANT:          lr;
 *     FAN_SCHEDULE_STEP:              lr * gamma^floor(u / FAN_OPT_STEP_SIZE);
 *     FAN_SCHEDULE_EXPONENTIAL:       lr * gamma^u;
 *     FAN_SCHEDULE_COSINE:            lr_min + (lr - lr_min) * (1 + cos(pi * min(u, T) / T)) / 2,
 *                                     T = FAN_OPT_T_MAX (lr_min from step T on, no restart).
 * Every update (fan_optimizer_step, fan_net_train_batch, the training loops) uses it, AdamW's
 * decoupled decay and KP's decay of B included; fan_optimizer_scheduled_lr computes it and
 * fan_progress.lr reports the one a step used. fan_optimizer_reset restarts the schedule.
 */
typedef enum fan_optimizer_param {
    FAN_OPT_LR = 0,           /**< Learning rate (the schedule's base); default 0.01. */
    FAN_OPT_MOMENTUM = 1,     /**< SGD / RMSprop momentum; default 0. */
    FAN_OPT_NESTEROV = 2,     /**< SGD: 1 for Nesterov momentum, 0 for classical; default 0. */
    FAN_OPT_WEIGHT_DECAY = 3, /**< L2 (decoupled for AdamW); default 0. */
    FAN_OPT_BETA1 = 4,        /**< Adam first-moment decay; default 0.9. */
    FAN_OPT_BETA2 = 5,        /**< Adam second-moment decay; default 0.999. */
    FAN_OPT_EPSILON = 6,      /**< Adam / RMSprop denominator term; default 1e-8. */
    FAN_OPT_ALPHA = 7,        /**< RMSprop smoothing constant; default 0.99. */
    FAN_OPT_SCHEDULE = 8,     /**< A fan_schedule value; default FAN_SCHEDULE_CONSTANT. */
    FAN_OPT_STEP_SIZE = 9,    /**< Step decay: steps between two decays, an integer >= 1;
                                   default 1. */
    FAN_OPT_GAMMA = 10,       /**< Step and exponential decay factor, [0, 1]; default 0.1. */
    FAN_OPT_T_MAX = 11,       /**< Cosine annealing: steps from lr to lr_min, an integer >= 1;
                                   default 1. */
    FAN_OPT_LR_MIN = 12,      /**< Cosine annealing: final learning rate; default 0. */
    FAN_OPT_WARMUP_STEPS = 13 /**< Linear warm-up length in steps, an integer >= 0 (0: none),
                                   combinable with any schedule; default 0. */
} fan_optimizer_param;

/** Learning-rate schedules, the values of FAN_OPT_SCHEDULE (see fan_optimizer_param). */
typedef enum fan_schedule {
    FAN_SCHEDULE_CONSTANT = 0,    /**< lr throughout. */
    FAN_SCHEDULE_STEP = 1,        /**< Multiplied by gamma every FAN_OPT_STEP_SIZE steps. */
    FAN_SCHEDULE_EXPONENTIAL = 2, /**< Multiplied by gamma every step. */
    FAN_SCHEDULE_COSINE = 3       /**< Half a cosine from lr down to lr_min over T_MAX steps. */
} fan_schedule;
/** @} */

/**
 * @name Names of enumeration values
 * Static lower-case names for printing and for parsing command lines and config files: "bp",
 * "fa", "dfa", "usf", "brsf", "frsf", "kp", "wm"; "linear", "relu", "leaky_relu", "tanh",
 * "sigmoid"; "cross_entropy", "mse"; "sgd", "adam", "adamw", "rmsprop"; "he_normal",
 * "xavier_uniform", "lecun_normal". A value the library does not know gives "unknown". Never
 * NULL; thread-safe.
 * @{ */
/** Name of a learning rule. */
FAN_API const char *fan_rule_name(fan_rule r);
/** Name of an activation. */
FAN_API const char *fan_activation_name(fan_activation a);
/** Name of a loss. */
FAN_API const char *fan_loss_name(fan_loss l);
/** Name of an optimizer algorithm. */
FAN_API const char *fan_optimizer_kind_name(fan_optimizer_kind k);
/** Name of an initialiser. */
FAN_API const char *fan_init_name(fan_init i);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Network
 *  @{ */

/** A multilayer network with its forward weights, feedback matrices, gradients and workspace. */
typedef struct fan_net fan_net;

/** Largest number of weight layers a network may have. */
#define FAN_MAX_LAYERS 64
/** Largest FAN_NET_THREADS. */
#define FAN_MAX_THREADS 64
/** Largest width of any layer (inputs, hidden or outputs). */
#define FAN_MAX_WIDTH 16777216u
/** Largest number of elements of one weight matrix. */
#define FAN_MAX_MATRIX 268435456u

/**
 * Creates a network with layer widths sizes[0] (inputs), sizes[1..n_sizes-2] (hidden),
 * sizes[n_sizes-1] (outputs): n_sizes - 1 weight layers. Defaults: hidden activations ReLU, output
 * activation linear, loss softmax cross-entropy, rule FA, W and B drawn He-normal from weight seed
 * 0 and feedback seed 1 (as fan_net_init(net, 0, 1)), zero biases, leaky slope 0.01.
 *
 * @param out     receives the network, or NULL on failure.
 * @param sizes   n_sizes widths, each in [1, FAN_MAX_WIDTH].
 * @param n_sizes number of widths, in [2, FAN_MAX_LAYERS + 1].
 * @param alloc   allocator, copied into the handle; NULL for malloc/free.
 * @return FAN_OK; FAN_E_NULL if out or sizes is NULL; FAN_E_INVALID for a width of 0 or a bad
 *         n_sizes; FAN_E_LIMIT when a width or matrix exceeds the bounds above; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_net_create(fan_net **out, const size_t *sizes, size_t n_sizes,
                                                const fan_allocator *alloc);
/**
 * As fan_net_create, with options (NULL: defaults): the allocator (NULL: malloc/free) and a
 * buffer for the reason of a failure, which names the offending value ("sizes[1] is 0",
 * "layer 0: 20000 x 20000 weights exceed FAN_MAX_MATRIX").
 * @return as fan_net_create, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_net_create_ex(fan_net **out, const size_t *sizes,
                                                   size_t n_sizes,
                                                   const fan_create_options *opts);

/** Frees a network and everything it owns. NULL is a no-op. */
FAN_API void fan_net_free(fan_net *net);

/**
 * Returns the detail of the last failure on this network ("" if none). The string belongs to the
 * handle and is valid until the next call that changes it. NULL net gives a static message.
 */
FAN_API const char *fan_net_errmsg(const fan_net *net);

/**
 * Sets the learning rule used by every later gradient computation and training step. A feedback
 * matrix B_l whose shape the new rule keeps is kept (so FA -> KP -> FA keeps the same B, trained
 * by KP); one whose shape changes (to or from DFA, for every layer but the last) is drawn anew
 * from the feedback seed with the feedback initialiser, exactly as fan_net_init would draw it.
 * brSF's magnitude stream starts again from the feedback seed when brSF is set. Setting the
 * net's current rule changes nothing.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for an unknown rule; FAN_E_LIMIT (a DFA feedback
 *         matrix above FAN_MAX_MATRIX); FAN_E_NOMEM (the net is then unchanged).
 */
FAN_API FAN_NODISCARD fan_status fan_net_set_rule(fan_net *net, fan_rule rule);
/** Returns the net's rule (FAN_RULE_FA for NULL). */
FAN_API fan_rule fan_net_rule(const fan_net *net);

/**
 * Sets the activation applied to the outputs of weight layer `layer` (0-based). For the output
 * layer the activation is applied before the loss (with cross-entropy, softmax follows it).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for a bad layer or activation.
 */
FAN_API FAN_NODISCARD fan_status fan_net_set_activation(fan_net *net, size_t layer,
                                                        fan_activation act);
/** Returns the activation of weight layer `layer` (FAN_ACT_LINEAR for NULL or a bad layer). */
FAN_API fan_activation fan_net_activation(const fan_net *net, size_t layer);

/** Sets the loss. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for an unknown loss. */
FAN_API FAN_NODISCARD fan_status fan_net_set_loss(fan_net *net, fan_loss loss);
/** Returns the loss (FAN_LOSS_CROSS_ENTROPY for NULL). */
FAN_API fan_loss fan_net_loss(const fan_net *net);

/**
 * Sets a scalar network setting. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for an unknown
 * parameter or a value outside its range (NaN included).
 */
FAN_API FAN_NODISCARD fan_status fan_net_set(fan_net *net, fan_net_param p, double value);
/** Reads a scalar network setting into *value. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID. */
FAN_API FAN_NODISCARD fan_status fan_net_get(const fan_net *net, fan_net_param p, double *value);

/**
 * Chooses the initialisers used by the next fan_net_init: `which` is FAN_MATRIX_WEIGHTS or
 * FAN_MATRIX_FEEDBACK. Nothing is redrawn until fan_net_init is called.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for a bad matrix or initialiser.
 */
FAN_API FAN_NODISCARD fan_status fan_net_set_initializer(fan_net *net, fan_matrix which,
                                                         fan_init init);

/**
 * Redraws every W_l from weight_seed and every B_l from feedback_seed with the chosen
 * initialisers, sets biases and gradients to zero. The W stream does not depend on the rule or on
 * feedback_seed, so two nets initialised with the same weight_seed have bit-identical W.
 * @return FAN_OK; FAN_E_NULL.
 */
FAN_API FAN_NODISCARD fan_status fan_net_init(fan_net *net, uint64_t weight_seed,
                                              uint64_t feedback_seed);
/** Reads the seeds of the last fan_net_init (either pointer may be NULL). @return FAN_OK; FAN_E_NULL. */
FAN_API FAN_NODISCARD fan_status fan_net_seeds(const fan_net *net, uint64_t *weight_seed,
                                               uint64_t *feedback_seed);

/**
 * Makes an independent deep copy of src (weights, feedback, gradients, settings) using src's
 * allocator. The copy's workspace is fresh.
 * @return FAN_OK; FAN_E_NULL; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_net_clone(fan_net **out, const fan_net *src);
/**
 * As fan_net_clone, with options (NULL: defaults) and their message buffer. The clone uses
 * opts->alloc when it is set (a net may be copied into another allocator), else src's.
 * @return as fan_net_clone, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_net_clone_ex(fan_net **out, const fan_net *src,
                                                  const fan_create_options *opts);

/** Number of weight layers (2 for 784-100-10); 0 for NULL. */
FAN_API size_t fan_net_num_layers(const fan_net *net);
/** Inputs of weight layer `layer`; 0 for NULL or a bad layer. */
FAN_API size_t fan_net_layer_inputs(const fan_net *net, size_t layer);
/** Outputs of weight layer `layer`; 0 for NULL or a bad layer. */
FAN_API size_t fan_net_layer_outputs(const fan_net *net, size_t layer);
/** Width of the network's input (sizes[0]); 0 for NULL. */
FAN_API size_t fan_net_input_size(const fan_net *net);
/** Width of the network's output (last size); 0 for NULL. */
FAN_API size_t fan_net_output_size(const fan_net *net);
/** Total number of trainable parameters (all W and b); 0 for NULL. */
FAN_API size_t fan_net_num_params(const fan_net *net);

/**
 * Copies W_l (w_len = outputs * inputs) and b_l (b_len = outputs) out. Either w or b may be NULL
 * to skip it (its length is then ignored).
 * @return FAN_OK; FAN_E_NULL if net is NULL; FAN_E_INVALID for a bad layer; FAN_E_SHAPE.
 */
FAN_API FAN_NODISCARD fan_status fan_net_get_weights(const fan_net *net, size_t layer, float *w,
                                                     size_t w_len, float *b, size_t b_len);
/**
 * Replaces W_l and/or b_l (NULL skips). Values must be finite.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID; FAN_E_SHAPE; FAN_E_NONFINITE.
 */
FAN_API FAN_NODISCARD fan_status fan_net_set_weights(fan_net *net, size_t layer, const float *w,
                                                     size_t w_len, const float *b, size_t b_len);
/**
 * Shape of the feedback matrix B_l of weight layer `layer` under the net's current rule. For every
 * rule but DFA it is W_l's shape: *rows = layer_outputs(layer), *cols = layer_inputs(layer), and
 * the error pass is delta_in = delta_out * B_l. Under FAN_RULE_DFA, *rows = the net's output size
 * and *cols = layer_inputs(layer): the error at layer l's input is e * B_l, e the output error.
 * fan_net_get_feedback and fan_net_set_feedback use this shape. Either output may be NULL.
 * @return FAN_OK; FAN_E_NULL (net); FAN_E_INVALID (layer).
 */
FAN_API FAN_NODISCARD fan_status fan_net_feedback_shape(const fan_net *net, size_t layer,
                                                        size_t *rows, size_t *cols);
/**
 * Copies the feedback matrix of layer `layer` as the rule's error pass would use it now (len =
 * rows * cols of fan_net_feedback_shape): the stored B_l for FA, DFA, KP and WM (and, unused by
 * BP, for BP); s_l * sign(W_l) for uSF; sign(W_l) .* |B_l| for frSF; sign(W_l) .* |R_l| with the
 * current batch's magnitudes for brSF (layer 0, which no error pass uses, shows frSF's matrix).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID; FAN_E_SHAPE.
 */
FAN_API FAN_NODISCARD fan_status fan_net_get_feedback(const fan_net *net, size_t layer, float *B,
                                                      size_t len);
/**
 * Replaces the stored B_l (len = rows * cols of fan_net_feedback_shape). Setting B_l = W_l for
 * every layer makes FA compute exactly BP's gradients. Under frSF only its magnitudes |B_l| are
 * used. uSF and brSF draw their feedback from W and have no B to set.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID; FAN_E_SHAPE; FAN_E_NONFINITE; FAN_E_UNSUPPORTED
 *         (uSF, brSF).
 */
FAN_API FAN_NODISCARD fan_status fan_net_set_feedback(fan_net *net, size_t layer, const float *B,
                                                      size_t len);

/**
 * Weight mirroring (Akrout et al., NeurIPS 2019): trains the stored feedback matrices B_l without
 * reading W into them. For `steps` steps, every weight layer l is driven by its own batch x of
 * `batch` rows of independent N(0, 1) inputs (drawn from `seed`), its linear response y = W_l x
 * is formed (for DFA, the output's response (W_{L-1} ... W_l) x, the matrix DFA's B_l is compared
 * with), and B_l <- (1 - lr * weight_decay) B_l + lr * (y^T x) / batch. Since the mean of y x^T
 * is W_l, B_l turns toward W_l (to W_l / weight_decay when weight_decay > 0). W, b, gradients and
 * the net's other random streams are not touched. Valid for every rule whose error pass reads a
 * stored B (FA, DFA, frSF, KP, WM); under FAN_RULE_WM, training calls use FA's error pass and
 * this call is its mirror phase. Cost per step: two GEMMs per layer of batch x the layer's size.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (batch 0, lr or weight_decay negative, NaN or above
 *         1e6); FAN_E_UNSUPPORTED (BP, uSF, brSF); FAN_E_LIMIT; FAN_E_NOMEM; FAN_E_NUMERIC if B
 *         became non-finite (B is then restored to what it was before the call).
 */
FAN_API FAN_NODISCARD fan_status fan_net_mirror(fan_net *net, size_t steps, size_t batch,
                                                double lr, double weight_decay, uint64_t seed);

/**
 * Runs the network on n input rows x (n x inputs) and writes n output rows to probs
 * (probs_len = n * outputs): softmax probabilities under cross-entropy, the output activations
 * under MSE. Uses the net's workspace (allocated on first use at a batch size, then reused).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for n = 0; FAN_E_SHAPE; FAN_E_NONFINITE if x has NaN
 *         or infinity (ReLU would otherwise hide it); FAN_E_NUMERIC if the outputs overflowed;
 *         FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_net_forward(fan_net *net, const float *x, size_t n,
                                                 float *probs, size_t probs_len);

/**
 * Computes the gradients of the mean loss over the batch by the net's rule and stores them in
 * the net; applies no update. labels are n class indices in [0, outputs). loss may be NULL.
 * Under the MSE loss, labels stand for one-hot targets.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for n = 0; FAN_E_LABEL; FAN_E_NONFINITE if x has
 *         NaN/Inf; FAN_E_NUMERIC for a non-finite loss or gradient (stored gradients then
 *         unchanged); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_net_compute_gradients(fan_net *net, const float *x,
                                                           const int32_t *labels, size_t n,
                                                           float *loss);
/**
 * As fan_net_compute_gradients with soft targets: n rows of `outputs` floats (probability
 * vectors for cross-entropy, regression targets for MSE).
 */
FAN_API FAN_NODISCARD fan_status fan_net_compute_gradients_targets(fan_net *net, const float *x,
                                                                   const float *targets, size_t n,
                                                                   float *loss);
/** Copies dW_l and/or db_l of the last gradient computation (NULL skips). Same statuses as get_weights. */
FAN_API FAN_NODISCARD fan_status fan_net_get_gradients(const fan_net *net, size_t layer, float *dw,
                                                       size_t dw_len, float *db, size_t db_len);
/** Replaces dW_l and/or db_l (NULL skips), e.g. for a custom rule. Same statuses as set_weights. */
FAN_API FAN_NODISCARD fan_status fan_net_set_gradients(fan_net *net, size_t layer, const float *dw,
                                                       size_t dw_len, const float *db,
                                                       size_t db_len);

/**
 * Borrowed view of every trainable parameter in one contiguous block of *len floats
 * (*len = fan_net_num_params): W_0 (row-major, outputs x inputs), b_0, W_1, b_1, ... in layer
 * order. Writing through the view changes the net directly (a data-parallel companion broadcasts
 * the initial weights into it); the caller must write finite values only: a later training step
 * that finds non-finite parameters fails with FAN_E_NUMERIC and leaves them as they are.
 * The pointer stays valid until the net is freed; nothing a net does after creation or loading
 * moves its parameters (a rule change reshapes only the feedback matrices).
 * @param net  the network.
 * @param data receives the block (borrowed: never free it).
 * @param len  receives the number of floats.
 * @return FAN_OK; FAN_E_NULL (net, data or len; the outputs are then untouched).
 * Thread safety: as any call on the net; the view itself must not be written while another
 * thread uses the net.
 */
FAN_API FAN_NODISCARD fan_status fan_net_parameters(fan_net *net, float **data, size_t *len);
/**
 * Borrowed view of the gradients of the last gradient computation (dW_0, db_0, dW_1, db_1, ...),
 * one contiguous block of *len floats in exactly the layout of fan_net_parameters. The block is
 * updated in place by every later gradient computation (fan_net_compute_gradients, the training
 * steps) and stays at the same address until the net is freed, so a caller can take the view
 * once and reuse it for every step. Gradients changed through the view are the ones the next
 * fan_optimizer_step applies (it still needs one gradient computation or fan_net_set_gradients
 * since the net's creation, load or init, else FAN_E_STATE), and the step's finiteness check
 * still holds: an update that turns anything non-finite is undone and fails with FAN_E_NUMERIC.
 * Cost: once a net has handed out this view, each gradient computation copies the previous
 * gradients aside (one pass over the block) so that a failed step can still put them back.
 * @param net  the network.
 * @param data receives the block (borrowed: never free it).
 * @param len  receives the number of floats (= fan_net_num_params).
 * @return FAN_OK; FAN_E_NULL (net, data or len; the outputs are then untouched).
 * Thread safety: as fan_net_parameters.
 */
FAN_API FAN_NODISCARD fan_status fan_net_gradients(fan_net *net, float **data, size_t *len);

/**
 * Computes the mean loss of a batch without storing gradients (loss must not be NULL).
 * Same statuses as fan_net_compute_gradients, except that a non-finite loss is reported as a
 * value, not as FAN_E_NUMERIC.
 */
FAN_API FAN_NODISCARD fan_status fan_net_loss_value(fan_net *net, const float *x,
                                                    const int32_t *labels, size_t n, double *loss);

/**
 * Saves the network (settings, seeds, W, b, B; not gradients or optimizer state) to path in the
 * format of docs/file-format.md. Atomic: the bytes go to a temporary file next to the target,
 * which is synced and renamed over it, and the directory is then synced; on any failure the
 * target is left as it was. A symbolic link is followed: the file it points to is replaced and
 * the link kept. An existing target keeps its permission bits; a new one gets 0666 minus the
 * umask, as fopen would give it. The temporary file is named "." + the target's name (cut to
 * 230 bytes) + "." + 16 hex digits + ".fantmp", so any name up to NAME_MAX can be saved; a save
 * killed part-way leaves that one file, which the next save of the same target removes. Two saves
 * of one target at once (threads or processes) run one after the other.
 * @return FAN_OK; FAN_E_NULL; FAN_E_NONFINITE if a weight, bias or feedback value is NaN or
 *         infinite (fan_net_load would refuse the file; nothing is written); FAN_E_IO (also when
 *         the target exists and is not a regular file, or when the rename succeeded but the
 *         directory could not be synced: the message says which); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_net_save(const fan_net *net, const char *path);
/**
 * Loads a network saved by fan_net_save, with default options (see fan_net_load_ex).
 * @return FAN_OK; FAN_E_NULL; FAN_E_IO; FAN_E_FORMAT; FAN_E_VERSION; FAN_E_LIMIT;
 *         FAN_E_CHECKSUM; FAN_E_NOMEM. There is no handle on failure: the message is only
 *         available through fan_net_load_ex's errmsg buffer.
 */
FAN_API FAN_NODISCARD fan_status fan_net_load(fan_net **out, const char *path,
                                              const fan_allocator *alloc);
/**
 * Serialises the network into buf (cap bytes). With buf NULL, only writes the needed size to
 * *written. @return FAN_OK; FAN_E_NULL (net or written); FAN_E_SHAPE if cap is too small
 * (*written then holds the size needed); FAN_E_NONFINITE as fan_net_save (nothing written).
 */
FAN_API FAN_NODISCARD fan_status fan_net_save_mem(const fan_net *net, void *buf, size_t cap,
                                                  size_t *written);
/** Loads a network from len bytes at buf. Same checks and statuses as fan_net_load, minus IO. */
FAN_API FAN_NODISCARD fan_status fan_net_load_mem(fan_net **out, const void *buf, size_t len,
                                                  const fan_allocator *alloc);
/**
 * As fan_net_load_mem (path == NULL, buf != NULL) or fan_net_load (path != NULL), and on
 * failure writes the detail message (NUL-terminated, truncated to errmsg_cap) to errmsg, which
 * may be NULL. Superseded by fan_net_load_ex and fan_net_load_mem_ex.
 */
FAN_API FAN_NODISCARD fan_status fan_net_load_v2(fan_net **out, const char *path, const void *buf,
                                                 size_t len, const fan_allocator *alloc,
                                                 char *errmsg, size_t errmsg_cap);
/**
 * Loads a network from the file at path. The file must be a regular file (a directory, FIFO,
 * device or socket fails with FAN_E_IO). Its header is read first: a file whose length differs
 * from the length its header declares fails with FAN_E_FORMAT, and one longer than
 * opts->max_load_bytes with FAN_E_LIMIT, before anything is allocated for its body. Then magic,
 * version, every length, the CRC-32 and the finiteness of every parameter are checked before
 * anything is trusted.
 * @param out  receives the network, or NULL on failure.
 * @param path the file.
 * @param opts options (NULL: defaults): allocator, message buffer, load budget (here: the file's
 *             length).
 * @return FAN_OK; FAN_E_NULL (out, path); FAN_E_INVALID / FAN_E_UNSUPPORTED (opts, see
 *         fan_create_options); FAN_E_IO; FAN_E_FORMAT; FAN_E_VERSION; FAN_E_LIMIT;
 *         FAN_E_CHECKSUM; FAN_E_NOMEM. Thread-safe for distinct out pointers.
 */
FAN_API FAN_NODISCARD fan_status fan_net_load_ex(fan_net **out, const char *path,
                                                 const fan_create_options *opts);
/**
 * As fan_net_load_ex from len bytes at buf (which the call only reads); the load budget applies
 * to len. @return as fan_net_load_ex minus FAN_E_IO; FAN_E_NULL also for buf.
 */
FAN_API FAN_NODISCARD fan_status fan_net_load_mem_ex(fan_net **out, const void *buf, size_t len,
                                                     const fan_create_options *opts);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Optimizer
 *  @{ */

/** An optimizer: algorithm, hyperparameters and per-parameter state sized to one network. */
typedef struct fan_optimizer fan_optimizer;

/**
 * Creates an optimizer whose state fits `net` (same layer shapes); the net is only read.
 * Hyperparameters start at the defaults listed in fan_optimizer_param.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for an unknown kind; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_create(fan_optimizer **out, fan_optimizer_kind kind,
                                                      const fan_net *net,
                                                      const fan_allocator *alloc);
/**
 * As fan_optimizer_create, with options (NULL: defaults): the allocator (NULL: malloc/free) and
 * a buffer for the reason of a failure ("unknown optimizer kind 9 (0 sgd, ...)").
 * @return as fan_optimizer_create, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_create_ex(fan_optimizer **out,
                                                         fan_optimizer_kind kind,
                                                         const fan_net *net,
                                                         const fan_create_options *opts);
/** Frees an optimizer. NULL is a no-op. */
FAN_API void fan_optimizer_free(fan_optimizer *opt);
/** Last failure detail ("" if none); valid until the next failing call. */
FAN_API const char *fan_optimizer_errmsg(const fan_optimizer *opt);
/**
 * Sets a hyperparameter. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for an unknown parameter or a
 * value outside fan_optimizer_param_bounds (NaN included).
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_set(fan_optimizer *opt, fan_optimizer_param p,
                                                   double value);
/** Reads a hyperparameter. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID. */
FAN_API FAN_NODISCARD fan_status fan_optimizer_get(const fan_optimizer *opt, fan_optimizer_param p,
                                                   double *value);
/**
 * Reports the accepted closed range [*lo, *hi] and the default of a parameter (any output may be
 * NULL). Does not need a handle. @return FAN_OK; FAN_E_INVALID for an unknown parameter.
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_param_bounds(fan_optimizer_param p, double *lo,
                                                            double *hi, double *def);
/** Returns the optimizer's algorithm (FAN_OPTIMIZER_SGD for NULL). */
FAN_API fan_optimizer_kind fan_optimizer_get_kind(const fan_optimizer *opt);
/** Number of steps applied since creation or the last reset; 0 for NULL. */
FAN_API uint64_t fan_optimizer_steps(const fan_optimizer *opt);
/**
 * The learning rate the optimizer's schedule gives step `step` (0-based, counted as
 * fan_optimizer_steps counts), with the current settings; the next step uses
 * fan_optimizer_scheduled_lr(opt, fan_optimizer_steps(opt), &lr).
 * @return FAN_OK; FAN_E_NULL (opt or lr).
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_scheduled_lr(const fan_optimizer *opt,
                                                            uint64_t step, double *lr);
/** Zeroes the state (moments, step count); hyperparameters are kept. @return FAN_OK; FAN_E_NULL. */
FAN_API FAN_NODISCARD fan_status fan_optimizer_reset(fan_optimizer *opt);
/**
 * Serialises the optimizer's whole state into buf (cap bytes): algorithm, every hyperparameter,
 * the step count, the moment buffers and the layer shapes it was sized for, in the versioned,
 * checksummed layout of docs/file-format.md ("Optimizer state"). With buf NULL, only writes the
 * needed size to *written. Loading it back with fan_optimizer_load_mem gives an optimizer whose
 * next steps are bit-identical to this one's.
 * @return FAN_OK; FAN_E_NULL (opt or written); FAN_E_SHAPE if cap is too small (*written then
 *         holds the size needed). Safe on a const optimizer from several threads.
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_save_mem(const fan_optimizer *opt, void *buf,
                                                        size_t cap, size_t *written);
/**
 * Creates an optimizer from len bytes written by fan_optimizer_save_mem (buf is only read). It
 * fits nets of the saved layer shapes; fan_optimizer_step checks that as usual. A state written
 * by an older library with fewer hyperparameters loads with the missing ones at their defaults.
 * @param out   receives the optimizer, or NULL on failure.
 * @param buf   the state's bytes.
 * @param len   their number.
 * @param alloc allocator, copied into the handle; NULL for malloc/free.
 * @return FAN_OK; FAN_E_NULL (out, buf); FAN_E_FORMAT (bad magic, truncated or padded, unknown
 *         kind, a value out of range, non-finite moments); FAN_E_VERSION (a layout or
 *         hyperparameter this library does not know); FAN_E_LIMIT (a layer width or matrix above
 *         the limits); FAN_E_CHECKSUM; FAN_E_NOMEM. There is no handle on failure.
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_load_mem(fan_optimizer **out, const void *buf,
                                                        size_t len, const fan_allocator *alloc);
/**
 * As fan_optimizer_load_mem, with options (NULL: defaults): the allocator, a buffer for the
 * reason of a failure, and the load budget, which applies to len (the state allocates about its
 * own size).
 * @return as fan_optimizer_load_mem, plus FAN_E_LIMIT (len above max_load_bytes) and
 *         FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_load_mem_ex(fan_optimizer **out, const void *buf,
                                                           size_t len,
                                                           const fan_create_options *opts);
/**
 * Applies the net's current gradients: the optimizer's update of every W and b, then the rule's
 * own update (KP: B_l receives W_l's increment and its own weight decay). If any weight, bias,
 * feedback value or optimizer state would become NaN or infinite, everything is put back exactly
 * as it was and the call fails with FAN_E_NUMERIC: no step leaves a net or optimizer with
 * non-finite values. Never allocates.
 * @return FAN_OK; FAN_E_NULL; FAN_E_STATE if the net has no gradients since its creation, load or
 *         last init; FAN_E_SHAPE if the net's shapes differ from the net the optimizer was created
 *         for; FAN_E_NUMERIC.
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_step(fan_optimizer *opt, fan_net *net);

/**
 * The hot path: forward, gradients by the net's rule and one checked optimizer step (see
 * fan_optimizer_step). Allocates only on the first call at a batch size larger than any before.
 * On FAN_E_NUMERIC, weights, feedback and optimizer state are exactly as before the call.
 * Statuses as fan_net_compute_gradients and fan_optimizer_step.
 */
FAN_API FAN_NODISCARD fan_status fan_net_train_batch(fan_net *net, fan_optimizer *opt,
                                                     const float *x, const int32_t *labels,
                                                     size_t n, float *loss);
/** As fan_net_train_batch with soft targets (n x outputs floats). */
FAN_API FAN_NODISCARD fan_status fan_net_train_batch_targets(fan_net *net, fan_optimizer *opt,
                                                             const float *x, const float *targets,
                                                             size_t n, float *loss);

/**
 * A function run by every training step between computing the gradients and applying them, for
 * instance to average gradients over the processes of a data-parallel job (mpi/fanoise_mpi.h
 * does this with MPI_Allreduce). It receives the net and the user pointer given to
 * fan_net_set_gradient_hook. When it runs, the gradients of this step's batch are in the net
 * (fan_net_gradients gives a view to change them in place) and the step's loss output, if the
 * caller passed one, already holds the batch's loss. It may read the net and change its
 * gradients; it must not train, re-initialise, reshape or free the net, nor compute gradients
 * on it. It returns FAN_OK to let the step apply the gradients; any other status aborts the
 * step with the net and optimizer exactly as before the step (the gradients this step computed
 * are put back too), and the training call returns that status.
 */
typedef fan_status (*fan_gradient_hook)(fan_net *net, void *user);

/**
 * Installs fn as the net's gradient hook (replacing any previous one), or removes it when fn is
 * NULL. The hook runs inside every training step on this net: fan_net_train_batch,
 * fan_net_train_batch_targets and hence fan_train, fan_train_v2, fan_train_steps and
 * fan_pretrain_noise; it
 * does not run in fan_net_compute_gradients or fan_optimizer_step, which a caller sequences
 * itself. A clone or a loaded net starts without a hook; fan_net_init keeps it. The hook only
 * sees finite gradients: a step on a net with a hook checks every gradient first (one pass over
 * them, about 2% of a 784-100-10 step), where a step without one leaves that to the update,
 * which fails on a non-finite gradient as on any non-finite result.
 * @param net  the network.
 * @param fn   the hook, or NULL to remove it.
 * @param user passed unchanged to fn; borrowed, never freed by the library.
 * @return FAN_OK; FAN_E_NULL (net).
 * Thread safety: as any call on the net. The hook runs on the thread of the training call.
 */
FAN_API FAN_NODISCARD fan_status fan_net_set_gradient_hook(fan_net *net, fan_gradient_hook fn,
                                                           void *user);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Datasets
 *  @{ */

/** Samples (uint8 images stay uint8 until batched), labels, image shape, class count, normalisation. */
typedef struct fan_dataset fan_dataset;

/** Largest number of samples a dataset may hold. */
#define FAN_MAX_SAMPLES 100000000u
/** Largest number of classes. */
#define FAN_MAX_CLASSES 65536u

/** How stored values become the floats of a batch. */
typedef enum fan_norm {
    FAN_NORM_NONE = 0,       /**< Stored value as float (uint8 0..255 becomes 0..255). */
    FAN_NORM_SCALE = 1,      /**< Divided by the value range (255 for uint8 images, 1 for float data). */
    FAN_NORM_STANDARDIZE = 2 /**< Scaled as FAN_NORM_SCALE, then (v - mean) / std. */
} fan_norm;

/**
 * Loads IDX files (MNIST, Fashion-MNIST, Kuzushiji-MNIST), gzip, zlib or raw (detected by content),
 * with default options (see fan_dataset_load_idx_ex).
 * Images: magic 0x00000803, u8, n x rows x cols; labels: magic 0x00000801, u8, n. The class count
 * is max label + 1 (at least 10). Normalisation starts as FAN_NORM_SCALE (values in [0, 1]).
 * @return FAN_OK; FAN_E_NULL; FAN_E_IO; FAN_E_FORMAT (magic, truncation, counts that disagree);
 *         FAN_E_LIMIT; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_idx(fan_dataset **out, const char *images_path,
                                                      const char *labels_path,
                                                      const fan_allocator *alloc);
/** As fan_dataset_load_idx from memory buffers (raw or gzip). */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_idx_mem(fan_dataset **out, const void *images,
                                                          size_t images_len, const void *labels,
                                                          size_t labels_len,
                                                          const fan_allocator *alloc);
/**
 * Loads a pair of IDX files as fan_dataset_load_idx does, with options. The files must be
 * regular files. The load budget (opts->max_load_bytes) applies to the dataset's storage, n x
 * rows x cols bytes of pixels plus 4 n bytes of labels, as the headers declare it, and is checked
 * before anything is allocated. Compressed input is decompressed once without being stored, to
 * prove that it holds exactly what its header declares, before the dataset is allocated: a small
 * stream claiming a huge count fails with FAN_E_FORMAT having allocated nothing for it.
 * @param out         receives the dataset, or NULL on failure.
 * @param images_path the images file.
 * @param labels_path the labels file.
 * @param opts        options (NULL: defaults): allocator (copied into the dataset), message
 *                    buffer, load budget.
 * @return as fan_dataset_load_idx; FAN_E_LIMIT also above the budget; FAN_E_INVALID /
 *         FAN_E_UNSUPPORTED for bad options (see fan_create_options). Thread-safe for distinct
 *         outputs.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_idx_ex(fan_dataset **out,
                                                         const char *images_path,
                                                         const char *labels_path,
                                                         const fan_create_options *opts);
/** As fan_dataset_load_idx_ex from memory buffers (raw, gzip or zlib), which are only read. */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_idx_mem_ex(fan_dataset **out,
                                                             const void *images,
                                                             size_t images_len,
                                                             const void *labels,
                                                             size_t labels_len,
                                                             const fan_create_options *opts);
/**
 * Loads CIFAR binary batches: each record is 1 label byte (CIFAR-10; n_label_bytes = 1) or a
 * coarse and a fine label byte (CIFAR-100; n_label_bytes = 2, the fine label is used), then 3072
 * pixel bytes (32x32, channel-planar R, G, B). n_paths files are concatenated. Classes: 10 or 100.
 * Files are read raw (not gzipped). Default options (see fan_dataset_load_cifar_ex).
 * @return as fan_dataset_load_idx, FAN_E_INVALID for n_label_bytes not 1 or 2, FAN_E_LABEL for a
 *         label not below the class count (or a CIFAR-100 coarse label >= 20).
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_cifar(fan_dataset **out,
                                                        const char *const *paths, size_t n_paths,
                                                        size_t n_label_bytes,
                                                        const fan_allocator *alloc);
/** As fan_dataset_load_cifar from one memory buffer. */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_cifar_mem(fan_dataset **out, const void *buf,
                                                            size_t len, size_t n_label_bytes,
                                                            const fan_allocator *alloc);
/**
 * As fan_dataset_load_cifar, with options. The files must be regular files. The load budget
 * applies to the dataset's storage, 3076 bytes per record (pixels and an int32 label), counted
 * from the files' sizes before anything is allocated.
 * @return as fan_dataset_load_cifar; FAN_E_LIMIT also above the budget; FAN_E_INVALID /
 *         FAN_E_UNSUPPORTED for bad options.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_cifar_ex(fan_dataset **out,
                                                           const char *const *paths,
                                                           size_t n_paths, size_t n_label_bytes,
                                                           const fan_create_options *opts);
/** As fan_dataset_load_cifar_ex from one memory buffer, which is only read. */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_cifar_mem_ex(fan_dataset **out,
                                                               const void *buf, size_t len,
                                                               size_t n_label_bytes,
                                                               const fan_create_options *opts);
/** Label column value meaning "the last column" for the CSV loaders. */
#define FAN_CSV_LAST_COLUMN ((size_t)-1)
/**
 * Loads a comma-separated file, plain or gzipped: one sample per line, numeric fields, one of
 * them (label_column, 0-based, or FAN_CSV_LAST_COLUMN) an integer class label >= 0. With
 * skip_header non-zero the first line is skipped. The class count is max label + 1. Values are
 * stored as float; normalisation starts as FAN_NORM_NONE; the shape is dim x 1 x 1. A row may
 * have at most FAN_MAX_WIDTH + 1 columns (FAN_E_LIMIT beyond). Default options (see
 * fan_dataset_load_csv_ex).
 * @return as fan_dataset_load_idx, plus FAN_E_LABEL, FAN_E_NONFINITE.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_csv(fan_dataset **out, const char *path,
                                                      size_t label_column, int skip_header,
                                                      const fan_allocator *alloc);
/** As fan_dataset_load_csv from a memory buffer (plain or gzip). */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_csv_mem(fan_dataset **out, const void *buf,
                                                          size_t len, size_t label_column,
                                                          int skip_header,
                                                          const fan_allocator *alloc);
/**
 * As fan_dataset_load_csv, with options. The file must be a regular file. The text is read
 * twice (validation, then filling an exactly sized dataset). The load budget applies to the
 * dataset's storage, rows x columns x 4 bytes, and parsing stops with FAN_E_LIMIT as soon as the
 * rows read so far pass it (a single row too wide for it fails before its scratch buffer grows),
 * and for gzip input also to the decompressed text.
 * @return as fan_dataset_load_csv; FAN_E_LIMIT also above the budget; FAN_E_INVALID /
 *         FAN_E_UNSUPPORTED for bad options.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_csv_ex(fan_dataset **out, const char *path,
                                                         size_t label_column, int skip_header,
                                                         const fan_create_options *opts);
/** As fan_dataset_load_csv_ex from a memory buffer (plain or gzip), which is only read. */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_csv_mem_ex(fan_dataset **out, const void *buf,
                                                             size_t len, size_t label_column,
                                                             int skip_header,
                                                             const fan_create_options *opts);
/**
 * Makes a dataset by copying n rows of dim floats and n labels in [0, n_classes).
 * Shape dim x 1 x 1, normalisation FAN_NORM_NONE.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (zero sizes); FAN_E_LABEL; FAN_E_NONFINITE;
 *         FAN_E_LIMIT; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_from_arrays(fan_dataset **out, const float *x,
                                                         const int32_t *labels, size_t n,
                                                         size_t dim, size_t n_classes,
                                                         const fan_allocator *alloc);
/**
 * As fan_dataset_from_arrays, with options (NULL: defaults): the allocator (NULL: malloc/free)
 * and a buffer for the reason of a failure, which names the offending value ("label 7 of sample
 * 4 is outside [0, 3)", "x[13] (sample 2, value 1) is nan").
 * @return as fan_dataset_from_arrays, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_from_arrays_ex(fan_dataset **out, const float *x,
                                                            const int32_t *labels, size_t n,
                                                            size_t dim, size_t n_classes,
                                                            const fan_create_options *opts);
/**
 * Makes an image dataset by copying n uint8 images of width x height x channels (channel-planar)
 * and n labels. Normalisation starts as FAN_NORM_SCALE.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_from_u8(fan_dataset **out, const uint8_t *pixels,
                                                     const int32_t *labels, size_t n, size_t width,
                                                     size_t height, size_t channels,
                                                     size_t n_classes, const fan_allocator *alloc);
/** As fan_dataset_from_u8 with options, as fan_dataset_from_arrays_ex. */
FAN_API FAN_NODISCARD fan_status fan_dataset_from_u8_ex(fan_dataset **out, const uint8_t *pixels,
                                                        const int32_t *labels, size_t n,
                                                        size_t width, size_t height,
                                                        size_t channels, size_t n_classes,
                                                        const fan_create_options *opts);
/** Frees a dataset. NULL is a no-op. */
FAN_API void fan_dataset_free(fan_dataset *ds);
/** Number of samples; 0 for NULL. */
FAN_API size_t fan_dataset_size(const fan_dataset *ds);
/** Floats per sample (width * height * channels); 0 for NULL. */
FAN_API size_t fan_dataset_dim(const fan_dataset *ds);
/** Number of classes; 0 for NULL. */
FAN_API size_t fan_dataset_classes(const fan_dataset *ds);
/** Last failure detail ("" if none). */
FAN_API const char *fan_dataset_errmsg(const fan_dataset *ds);
/** Reads the image shape (any pointer may be NULL). @return FAN_OK; FAN_E_NULL (ds). */
FAN_API FAN_NODISCARD fan_status fan_dataset_shape(const fan_dataset *ds, size_t *width,
                                                   size_t *height, size_t *channels);
/** Sets the image shape; width * height * channels must equal dim. @return FAN_OK; FAN_E_NULL; FAN_E_SHAPE. */
FAN_API FAN_NODISCARD fan_status fan_dataset_set_shape(fan_dataset *ds, size_t width,
                                                       size_t height, size_t channels);
/**
 * Chooses the normalisation of batches. mean and std are used by FAN_NORM_STANDARDIZE only
 * (std > 0, both finite) and apply after scaling.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_set_normalization(fan_dataset *ds, fan_norm norm,
                                                               double mean, double std);
/**
 * Computes the mean and standard deviation (population) over all stored values after scaling
 * (FAN_NORM_SCALE), whatever the current normalisation. @return FAN_OK; FAN_E_NULL.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_compute_stats(const fan_dataset *ds, double *mean,
                                                           double *std);
/**
 * Copies sample `index`, normalised, into x (x_len = dim) and its label into *label (either
 * output may be NULL). @return FAN_OK; FAN_E_NULL (ds); FAN_E_INVALID (index); FAN_E_SHAPE.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_get(const fan_dataset *ds, size_t index, float *x,
                                                 size_t x_len, int32_t *label);
/** Counts samples per class into counts (len = classes). @return FAN_OK; FAN_E_NULL; FAN_E_SHAPE. */
FAN_API FAN_NODISCARD fan_status fan_dataset_class_counts(const fan_dataset *ds, size_t *counts,
                                                          size_t len);

/**
 * Subsets: each makes a new dataset with the source's allocator, shape, classes and
 * normalisation. This one takes the first n samples.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0 or above the size); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_first(fan_dataset **out, const fan_dataset *ds,
                                                          size_t n);
/**
 * The _ex variants of the subsets, splits and transforms below take options (NULL: defaults):
 * an allocator for the new datasets (NULL: the source's, as the plain functions use) and a
 * buffer for the reason of a failure, which names the offending value ("n 700 is not in [1,
 * 600]"); the message is also recorded on the source, as the plain functions do. They return
 * what the plain function returns, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options
 * (see fan_create_options).
 */
/** As fan_dataset_subset_first with options (see above). */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_first_ex(fan_dataset **out,
                                                             const fan_dataset *ds, size_t n,
                                                             const fan_create_options *opts);
/**
 * A subset of n samples drawn without replacement by `seed`, in drawn order.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0 or above the size); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_random(fan_dataset **out, const fan_dataset *ds,
                                                           size_t n, uint64_t seed);
/** As fan_dataset_subset_random with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_random_ex(fan_dataset **out,
                                                              const fan_dataset *ds, size_t n,
                                                              uint64_t seed,
                                                              const fan_create_options *opts);
/**
 * A stratified subset: n_per_class samples of each class, drawn by `seed`, in source order.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n_per_class = 0, or a class with fewer samples);
 *         FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_stratified(fan_dataset **out,
                                                               const fan_dataset *ds,
                                                               size_t n_per_class, uint64_t seed);
/** As fan_dataset_subset_stratified with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_stratified_ex(fan_dataset **out,
                                                                  const fan_dataset *ds,
                                                                  size_t n_per_class, uint64_t seed,
                                                                  const fan_create_options *opts);
/**
 * A subset of the listed samples, in the listed order (repeats allowed).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0, an index out of range); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_indices(fan_dataset **out,
                                                            const fan_dataset *ds,
                                                            const size_t *indices, size_t n);
/** As fan_dataset_subset_indices with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_indices_ex(fan_dataset **out,
                                                               const fan_dataset *ds,
                                                               const size_t *indices, size_t n,
                                                               const fan_create_options *opts);
/**
 * Splits ds at random (by seed) into n_val validation samples and the rest for training. val equals
 * fan_dataset_subset_random(ds, n_val, seed); train keeps source order.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n_val = 0 or n_val >= size); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_split(fan_dataset **train, fan_dataset **val,
                                                   const fan_dataset *ds, size_t n_val,
                                                   uint64_t seed);
/** As fan_dataset_split with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_split_ex(fan_dataset **train, fan_dataset **val,
                                                      const fan_dataset *ds, size_t n_val,
                                                      uint64_t seed,
                                                      const fan_create_options *opts);
/**
 * Splits ds by seed into n_val validation samples and the rest for training, stratified by
 * class: class c contributes n_val * count_c / size samples to the validation part, rounded to
 * whole samples by largest remainder (ties to the lower class) so that the parts add up to
 * n_val; which samples of a class go there is a uniform draw by seed. Both parts keep source
 * order and share ds's allocator, shape, classes and normalisation; every sample lands in exactly
 * one part.
 * @param train receives the training part, or NULL on failure.
 * @param val   receives the validation part, or NULL on failure.
 * @param ds    the dataset, only read.
 * @param n_val validation samples, in [1, size).
 * @param seed  which samples of each class are drawn.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n_val, the message says the range); FAN_E_NOMEM.
 *         Messages are recorded on ds. Thread-safe for distinct outputs.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_split_stratified(fan_dataset **train,
                                                              fan_dataset **val,
                                                              const fan_dataset *ds, size_t n_val,
                                                              uint64_t seed);
/** As fan_dataset_split_stratified with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_split_stratified_ex(fan_dataset **train,
                                                                 fan_dataset **val,
                                                                 const fan_dataset *ds,
                                                                 size_t n_val, uint64_t seed,
                                                                 const fan_create_options *opts);

/**
 * Image transforms: each returns a new dataset of the same size and labels, with stored values
 * transformed per channel plane (bilinear interpolation) and areas from outside the source filled
 * with 0. Results keep the source's storage type (uint8 rounds to nearest) and normalisation.
 * This one moves the content by (dx, dy) pixels (x right, y down; fractional shifts
 * interpolate).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (non-finite shift); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_translate(fan_dataset **out, const fan_dataset *ds,
                                                       double dx, double dy);
/** As fan_dataset_translate with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_translate_ex(fan_dataset **out, const fan_dataset *ds,
                                                          double dx, double dy,
                                                          const fan_create_options *opts);
/**
 * Turns the content by `degrees` counter-clockwise about the image centre (see
 * fan_dataset_translate for the common rules). @return FAN_OK; FAN_E_NULL; FAN_E_INVALID
 * (non-finite angle); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_rotate(fan_dataset **out, const fan_dataset *ds,
                                                    double degrees);
/** As fan_dataset_rotate with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_rotate_ex(fan_dataset **out, const fan_dataset *ds,
                                                       double degrees,
                                                       const fan_create_options *opts);
/**
 * Zooms the content by `factor` about the image centre (> 1 enlarges; see fan_dataset_translate
 * for the common rules). @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (non-finite or non-positive
 * factor); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_scale(fan_dataset **out, const fan_dataset *ds,
                                                   double factor);
/** As fan_dataset_scale with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_scale_ex(fan_dataset **out, const fan_dataset *ds,
                                                      double factor,
                                                      const fan_create_options *opts);
/**
 * Resamples every image to width x height (bilinear, align-corners off, as image libraries do).
 * Unlike the other transforms it clamps samples to the edge pixels (no zero fill), so a constant
 * image stays constant. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (zero size); FAN_E_LIMIT;
 * FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_resize(fan_dataset **out, const fan_dataset *ds,
                                                    size_t width, size_t height);
/** As fan_dataset_resize with options (see the note before fan_dataset_subset_first_ex). */
FAN_API FAN_NODISCARD fan_status fan_dataset_resize_ex(fan_dataset **out, const fan_dataset *ds,
                                                       size_t width, size_t height,
                                                       const fan_create_options *opts);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Iterators
 *  @{ */

/** A stream of batches: shuffled epochs over a dataset, or an endless noise source. */
typedef struct fan_iter fan_iter;

/** Iterator settings for fan_iter_set / fan_iter_get. */
typedef enum fan_iter_param {
    FAN_ITER_NOISE_KIND = 0, /**< Noise only: FAN_NOISE_GAUSSIAN (default) or FAN_NOISE_UNIFORM. */
    FAN_ITER_NOISE_MEAN = 1, /**< Noise only: mean of every element; default 0. */
    FAN_ITER_NOISE_STD = 2,  /**< Noise only: standard deviation (> 0); default 1. */
    FAN_ITER_LABEL_MODE = 3, /**< Noise only: FAN_LABELS_HARD (default) or FAN_LABELS_SOFT. */
    FAN_ITER_DROP_LAST = 4,  /**< Batches only: 1 drops a final partial batch; default 0. */
    FAN_ITER_SHUFFLE = 5,    /**< Batches only: 0 keeps dataset order; default 1. */
    FAN_ITER_SHARD_INDEX = 6, /**< Batches only: which part of every batch this iterator returns,
                                   in [0, FAN_ITER_SHARD_COUNT); default 0. See below. */
    FAN_ITER_SHARD_COUNT = 7  /**< Batches only: number of parts every batch is split into;
                                   default 1 (no sharding). See below. */
} fan_iter_param;

/** Noise distributions (uniform has the same mean and std as the Gaussian would). */
typedef enum fan_noise_kind { FAN_NOISE_GAUSSIAN = 0, FAN_NOISE_UNIFORM = 1 } fan_noise_kind;
/** Noise labels: random hard class indices, or soft uniform targets 1/C. */
typedef enum fan_label_mode { FAN_LABELS_HARD = 0, FAN_LABELS_SOFT = 1 } fan_label_mode;

/**
 * Creates an iterator of shuffled mini-batches over ds. Each pass is one epoch: fan_iter_next
 * returns FAN_DONE (with *n = 0) after the last batch, and the next call starts a new epoch with
 * a new permutation drawn from the same seeded stream. The dataset is borrowed: it must outlive
 * the iterator and must not be freed while it is in use.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (batch = 0, empty dataset); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_iter_create_batches(fan_iter **out, const fan_dataset *ds,
                                                         size_t batch, uint64_t shuffle_seed,
                                                         const fan_allocator *alloc);
/**
 * As fan_iter_create_batches, with options (NULL: defaults): the allocator (NULL: malloc/free)
 * and a buffer for the reason of a failure ("batch size 0").
 * @return as fan_iter_create_batches, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_iter_create_batches_ex(fan_iter **out,
                                                            const fan_dataset *ds, size_t batch,
                                                            uint64_t shuffle_seed,
                                                            const fan_create_options *opts);
/**
 * Creates an endless noise source: every batch has fresh inputs drawn N(0, 1) per element (see
 * FAN_ITER_NOISE_*) and labels drawn uniformly from n_classes, independent of the inputs.
 * Never returns FAN_DONE.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (zero sizes, n_classes > FAN_MAX_CLASSES);
 *         FAN_E_LIMIT; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_iter_create_noise(fan_iter **out, size_t dim,
                                                       size_t n_classes, size_t batch,
                                                       uint64_t seed, const fan_allocator *alloc);
/**
 * As fan_iter_create_noise, with options as fan_iter_create_batches_ex ("n_classes 70000
 * exceeds FAN_MAX_CLASSES (65536)").
 */
FAN_API FAN_NODISCARD fan_status fan_iter_create_noise_ex(fan_iter **out, size_t dim,
                                                          size_t n_classes, size_t batch,
                                                          uint64_t seed,
                                                          const fan_create_options *opts);
/**
 * Changes a setting. A setting that shapes batches (FAN_ITER_DROP_LAST, the shard settings)
 * applies from the next batch; FAN_ITER_SHUFFLE from the next epoch.
 *
 * Sharding (data-parallel training over COUNT processes, each with its own iterator made from
 * the same dataset, batch size and seed): every global batch, the batch a single unsharded
 * iterator would return, is split into COUNT contiguous parts of its rows, in order, and this
 * iterator returns part INDEX. When the global batch has g rows, part i has g / COUNT rows, plus
 * one for each of the first g % COUNT parts; so parts differ in size by at most one row, and the
 * COUNT parts of one step together are exactly the single-process batch, in its order. Epochs,
 * the shuffled order (drawn from the seed as without sharding), FAN_DONE and
 * fan_iter_batches_per_epoch are the same on every shard, so every process takes the same number
 * of steps. Because gradients are means over a batch's rows, averaging the parts' gradients must
 * weight each part by its row count (sum of rows_i * g_i, divided by g) whenever the parts are
 * uneven; an unweighted mean is only right when COUNT divides every batch. Set FAN_ITER_SHARD_COUNT
 * before FAN_ITER_SHARD_INDEX (each value is checked against the other). Every part must have at
 * least one row: a count larger than the smallest global batch (the last partial batch unless
 * FAN_ITER_DROP_LAST is on) is refused, and so is turning FAN_ITER_DROP_LAST off when the
 * partial batch it would bring back is smaller than the count.
 *
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (unknown parameter, value out of range or not an
 *         integer where one is needed, a setting for the other kind of iterator, a shard index
 *         not below the count, a count with an empty part); the iterator is then unchanged.
 */
FAN_API FAN_NODISCARD fan_status fan_iter_set(fan_iter *it, fan_iter_param p, double value);
/** Reads a setting. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID. */
FAN_API FAN_NODISCARD fan_status fan_iter_get(const fan_iter *it, fan_iter_param p, double *value);
/**
 * Produces the next batch. *x points to *n rows of dim floats; *labels to *n class indices (NULL
 * when soft labels are on); *targets to *n rows of n_classes floats when soft labels are on, else
 * NULL. The views are borrowed and valid until the next call on the iterator. labels and targets
 * may be NULL pointers-to-pointer to skip them.
 * @return FAN_OK; FAN_DONE at the end of an epoch (*n = 0); FAN_E_NULL (it, x or n).
 */
FAN_API FAN_NODISCARD fan_status fan_iter_next(fan_iter *it, const float **x,
                                               const int32_t **labels, const float **targets,
                                               size_t *n);
/**
 * Restarts the stream from its seed: the next batches are those after creation.
 * @return FAN_OK; FAN_E_NULL.
 */
FAN_API FAN_NODISCARD fan_status fan_iter_reset(fan_iter *it);
/** Frees an iterator. NULL is a no-op. */
FAN_API void fan_iter_free(fan_iter *it);
/**
 * Serialises where the iterator is, so that fan_iter_set_state on an equal iterator continues
 * the same stream of batches bit for bit: for a batch iterator its seed, settings, position in
 * the epoch, epochs finished and shuffle stream (the epoch's permutation is redrawn from the
 * stream, not stored: the state is 152 bytes whatever the dataset); for a noise iterator its
 * seed, settings and both random streams (156 bytes). Versioned and checksummed
 * (docs/file-format.md, "Iterator state"). With buf NULL, only writes the size to *written.
 * @return FAN_OK; FAN_E_NULL (it or written); FAN_E_SHAPE if cap is too small.
 */
FAN_API FAN_NODISCARD fan_status fan_iter_get_state(const fan_iter *it, void *buf, size_t cap,
                                                    size_t *written);
/**
 * Restores a state written by fan_iter_get_state: the seed and settings (fan_iter_set values)
 * come from the state, so fan_iter_reset afterwards restarts the saved stream. The iterator must
 * be of the same kind, input width, class count and batch size, and a batch iterator's dataset
 * must have the saved sample count; that it holds the same samples is not checked here (a
 * checkpoint checks it). The shard settings (FAN_ITER_SHARD_INDEX, FAN_ITER_SHARD_COUNT) are
 * not part of a state: each process of a data-parallel job keeps its own, and all of them
 * restore the same state. On failure the iterator is unchanged.
 * @return FAN_OK; FAN_E_NULL (it, buf); FAN_E_INVALID (a noise state on a batch iterator or the
 *         reverse; a state whose drop-last setting would leave one of the iterator's shards
 *         empty); FAN_E_SHAPE (width, classes, batch or sample count differ); FAN_E_FORMAT
 *         (malformed or inconsistent state); FAN_E_VERSION; FAN_E_CHECKSUM.
 */
FAN_API FAN_NODISCARD fan_status fan_iter_set_state(fan_iter *it, const void *buf, size_t len);
/**
 * Epochs a batch iterator finished since creation or reset: those whose last batch it returned
 * (FAN_DONE may still be to come, so a checkpoint written at the step that ends an epoch, as
 * fan_progress.end_of_epoch marks it, counts that epoch). Restored by fan_iter_set_state: the
 * epoch count of a resumed run. 0 for noise iterators and NULL.
 */
FAN_API uint64_t fan_iter_epoch(const fan_iter *it);
/** Last failure detail ("" if none). */
FAN_API const char *fan_iter_errmsg(const fan_iter *it);
/** 1 for a noise iterator, 0 for a batch iterator or NULL. */
FAN_API int fan_iter_is_noise(const fan_iter *it);
/** Input width of the batches; 0 for NULL. */
FAN_API size_t fan_iter_dim(const fan_iter *it);
/** Number of classes of the labels; 0 for NULL. */
FAN_API size_t fan_iter_classes(const fan_iter *it);
/** Batches per epoch (0 for noise iterators and NULL). */
FAN_API size_t fan_iter_batches_per_epoch(const fan_iter *it);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Training loops
 *  @{ */

/**
 * What a training loop reports after every step. The library fills it; struct_size is
 * sizeof(fan_progress) of the library, and fields are only ever appended.
 */
typedef struct fan_progress {
    size_t struct_size;    /**< Size of this struct as filled by the library. */
    size_t step;           /**< Steps done in this call, counting this one (1-based). */
    size_t total_steps;    /**< Steps the call will do if not stopped (0 if unknown). */
    size_t epoch;          /**< Current epoch, 0-based (always 0 for noise). */
    size_t batch_in_epoch; /**< Batch index within the epoch, 0-based. */
    size_t samples;        /**< Samples seen in this call. */
    double loss;           /**< Loss of this step's batch. */
    double epoch_loss;     /**< Mean loss of the epoch so far (of the call so far for noise). */
    int end_of_epoch;      /**< 1 if this step finished an epoch. */
    /* Appended in 0.2: read only when struct_size covers them. */
    double lr;             /**< The learning rate this step used (the schedule's value). */
    double val_loss;       /**< fan_train_v2 with a validation set: mean loss on it after the
                                last epoch that ended (0 before the first). */
    double val_accuracy;   /**< ... and accuracy. */
    double best_val_loss;  /**< The lowest val_loss so far in this call. */
    size_t best_epoch;     /**< The epoch (as `epoch` counts) that reached best_val_loss. */
    int validated;         /**< 1 if this step ended an epoch and the validation set was just
                                evaluated: val_loss and val_accuracy are that epoch's. */
} fan_progress;

/**
 * Progress callback, called after every step: a non-zero return stops the loop after the
 * current step (FAN_STOPPED). Between steps the callback may change the optimizer's settings
 * (fan_optimizer_set: a hand-made schedule, say; fan_optimizer_reset) and run functions that
 * only read (diagnostics, fan_net_evaluate, checkpoints): the next step uses the new settings.
 * It must not free the net, optimizer, iterator
 * or dataset of the loop, change the net's shapes, or call the iterator (fan_iter_next, _reset,
 * _set_state). A callback compiled against an older header reads only the fields it knows; one
 * reading an appended field checks that p->struct_size covers it.
 */
typedef int (*fan_progress_fn)(const fan_progress *p, void *user);

/**
 * Trains on a batch iterator for `epochs` full epochs (the iterator's current epoch is finished
 * first if it is part-way). cb (may be NULL) is called after every step.
 * @return FAN_OK; FAN_STOPPED if cb asked to stop; FAN_E_NULL; FAN_E_INVALID (noise iterator:
 *         use fan_train_steps or fan_pretrain_noise); FAN_E_SHAPE (the iterator's dim or classes
 *         differ from the net's); and any status of fan_net_train_batch, which ends the loop with
 *         the net as it was after the last good step.
 */
FAN_API FAN_NODISCARD fan_status fan_train(fan_net *net, fan_optimizer *opt, fan_iter *it,
                                           size_t epochs, fan_progress_fn cb, void *user);
/**
 * Options of fan_train_v2. Callers set struct_size = sizeof(fan_train_options) and zero what
 * they do not use (`fan_train_options o = {sizeof o};`). Fields are only ever appended: the
 * library reads the fields the caller's struct_size covers, so older programs keep working; a
 * field this library does not know, set to non-zero, fails with FAN_E_UNSUPPORTED.
 */
typedef struct fan_train_options {
    size_t struct_size;             /**< sizeof(fan_train_options) as the caller compiled it. */
    const fan_dataset *validation;  /**< Evaluated (fan_net_evaluate) at the end of every epoch
                                         and reported in fan_progress; NULL: none. Only read. */
    size_t patience;                /**< With a validation set: stop (FAN_EARLY_STOPPED) after
                                         this many epochs in a row without improvement; 0: never
                                         stop early. */
    int restore_best;               /**< With a validation set, non-zero: when the call ends
                                         (FAN_OK, FAN_EARLY_STOPPED or FAN_STOPPED), put back the
                                         W, b and B of the epoch of lowest validation loss,
                                         exactly. The optimizer's state and a rule's random stream
                                         are not rewound. */
    double min_delta;               /**< An epoch improves when its validation loss is below
                                         best_val_loss - min_delta; >= 0, default 0. */
} fan_train_options;

/**
 * fan_train with options: a validation set evaluated at the end of every epoch (the part-way
 * epoch finished first counts as one), early stopping after `patience` epochs without
 * improvement, and the best epoch's weights restored. The callback sees the validation results
 * at each epoch's last step (fan_progress.validated), after they were computed; the stopping
 * decision follows the callback. Snapshots of W, b and B (one copy) come from the net's
 * allocator at the start of the call, so later steps still allocate nothing.
 * @param net, opt, it, epochs, cb, user as fan_train.
 * @param options NULL for none (then exactly fan_train).
 * @return FAN_OK after `epochs` epochs; FAN_EARLY_STOPPED; FAN_STOPPED; FAN_E_NULL;
 *         FAN_E_INVALID (noise iterator, struct_size too small, min_delta negative or NaN);
 *         FAN_E_UNSUPPORTED (a newer field set); FAN_E_SHAPE (iterator or validation set do not
 *         fit the net); FAN_E_NOMEM; and any status of fan_net_train_batch or fan_net_evaluate,
 *         which ends the loop with the net as it was after the last good step (not restored).
 *         Messages are recorded on net.
 */
FAN_API FAN_NODISCARD fan_status fan_train_v2(fan_net *net, fan_optimizer *opt, fan_iter *it,
                                              size_t epochs, const fan_train_options *options,
                                              fan_progress_fn cb, void *user);
/** Trains for exactly `steps` batches from any iterator (batch iterators roll over epochs). */
FAN_API FAN_NODISCARD fan_status fan_train_steps(fan_net *net, fan_optimizer *opt, fan_iter *it,
                                                 size_t steps, fan_progress_fn cb, void *user);
/**
 * Random-noise pretraining: `steps` batches from a noise iterator, with the net's rule (FA for
 * the paper's method). The same loop as fan_train_steps. FAN_E_INVALID if `noise` is not a noise
 * iterator.
 */
FAN_API FAN_NODISCARD fan_status fan_pretrain_noise(fan_net *net, fan_optimizer *opt,
                                                    fan_iter *noise, size_t steps,
                                                    fan_progress_fn cb, void *user);
/**
 * Mean loss and accuracy (fraction correct, argmax of outputs) over the whole dataset, in chunks;
 * uses the net's workspace, changes no weights or gradients. Either output may be NULL.
 * @return FAN_OK; FAN_E_NULL; FAN_E_SHAPE (dim or classes differ); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_net_evaluate(fan_net *net, const fan_dataset *ds,
                                                  double *mean_loss, double *accuracy);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Checkpoints
 *  A checkpoint holds what a training run needs to continue exactly: the net (a model file of
 *  format version 2), the optimizer's state, the iterator's state and, for a batch iterator, a
 *  fingerprint of its dataset (sample count, dimension, classes, storage, normalisation and a
 *  hash of samples and labels). Training N steps, saving, freeing everything, loading and
 *  training M more gives bit-identical weights to training N + M steps straight, for every rule,
 *  optimizer and iterator (same BLAS and thread count, as always). Layout: docs/file-format.md
 *  ("Checkpoint files"). The dataset itself is not stored.
 *  @{ */

/**
 * Writes a checkpoint of net, opt and it to path. Atomic like fan_net_save: the bytes are built
 * in memory (about the size of the model file plus two floats per parameter for Adam-like
 * optimizers), written to a temporary file next to path, synced and renamed over it; on any
 * failure path is left as it was.
 * @param path the file to write.
 * @param net  the network (required).
 * @param opt  its optimizer, or NULL to save none; it must have been created for net's shapes.
 * @param it   the iterator training reads (its dim and classes those of net), or NULL to save
 *             none. A batch iterator's dataset is read once to fingerprint it.
 * @return FAN_OK; FAN_E_NULL (net, path); FAN_E_SHAPE (opt was made for other shapes, or it
 *         does not fit net);
 *         FAN_E_IO; FAN_E_NOMEM. The message is recorded on net. Handles are only read.
 */
FAN_API FAN_NODISCARD fan_status fan_checkpoint_save(const char *path, const fan_net *net,
                                                     const fan_optimizer *opt, const fan_iter *it);
/**
 * As fan_checkpoint_save into buf (cap bytes). With buf NULL, only writes the needed size to
 * *written (without reading the dataset).
 * @return FAN_OK; FAN_E_NULL (net, written); FAN_E_SHAPE (cap too small: *written holds the size
 *         needed; or opt or it do not fit net); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_checkpoint_save_mem(void *buf, size_t cap, size_t *written,
                                                         const fan_net *net,
                                                         const fan_optimizer *opt,
                                                         const fan_iter *it);
/**
 * Recreates what fan_checkpoint_save saved. Every part is checked as its own loader checks it
 * (magic, version, lengths, CRC-32) and the whole file has its own CRC-32, checked before
 * anything is allocated from it.
 * @param path  the checkpoint file.
 * @param net   receives the network (required).
 * @param opt   receives the optimizer, or NULL if the file holds none; pass NULL to skip it.
 * @param it    receives the iterator, or NULL if the file holds none; pass NULL to skip it.
 * @param data  the dataset a saved batch iterator runs over; the new iterator borrows it (it
 *              must outlive the iterator). NULL is fine for a noise iterator, when no iterator was
 *              saved or when it is NULL. A dataset whose sample count, dimension or classes differ
 *              from the saved fingerprint is refused with FAN_E_SHAPE; one that agrees in those but
 *              differs in storage, normalisation or content with FAN_E_INVALID. The message is
 *              recorded on data (fan_dataset_errmsg).
 * @param alloc allocator of the new handles; NULL for malloc/free.
 * @return FAN_OK; FAN_E_NULL (path, net; data when a batch iterator is to be loaded);
 *         FAN_E_IO; FAN_E_FORMAT (bad magic, truncated or padded, flags that disagree with the
 *         parts, a malformed part); FAN_E_VERSION; FAN_E_CHECKSUM (the file's or a part's);
 *         FAN_E_LIMIT (a part above the limits, or a file plus iterator buffers above 4 GiB);
 *         FAN_E_SHAPE and FAN_E_INVALID (data, above); FAN_E_NOMEM. On failure
 *         every output is NULL and nothing leaks. Thread-safe for distinct outputs (data is only
 *         read, except for the message of a mismatch).
 */
FAN_API FAN_NODISCARD fan_status fan_checkpoint_load(const char *path, fan_net **net,
                                                     fan_optimizer **opt, fan_iter **it,
                                                     const fan_dataset *data,
                                                     const fan_allocator *alloc);
/** As fan_checkpoint_load from len bytes at buf (only read). Statuses as there, minus FAN_E_IO. */
FAN_API FAN_NODISCARD fan_status fan_checkpoint_load_mem(const void *buf, size_t len,
                                                         fan_net **net, fan_optimizer **opt,
                                                         fan_iter **it, const fan_dataset *data,
                                                         const fan_allocator *alloc);
/**
 * As fan_checkpoint_load, with options (NULL: defaults): the allocator of the new handles (NULL:
 * malloc/free), a buffer for the reason of a failure, which starts with the file's path ("a.ckpt:
 * cannot open a.ckpt: No such file or directory", "run.ckpt: the dataset given has the
 * checkpoint's sizes but other labels ..."), and the load budget: the file's length plus the
 * buffers of the iterator it describes must not exceed max_load_bytes (FAN_E_LIMIT, before
 * anything is allocated for them).
 * @return as fan_checkpoint_load, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_checkpoint_load_ex(const char *path, fan_net **net,
                                                        fan_optimizer **opt, fan_iter **it,
                                                        const fan_dataset *data,
                                                        const fan_create_options *opts);
/** As fan_checkpoint_load_ex from len bytes at buf (only read), minus FAN_E_IO. */
FAN_API FAN_NODISCARD fan_status fan_checkpoint_load_mem_ex(const void *buf, size_t len,
                                                            fan_net **net, fan_optimizer **opt,
                                                            fan_iter **it,
                                                            const fan_dataset *data,
                                                            const fan_create_options *opts);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name Diagnostics
 *  Diagnostics only read training state: running them between steps never changes the result
 *  of training. Spectral functions cost one SVD of the matrix (O(rows * cols * min(rows, cols)),
 *  LAPACK dgesdd in double); nothing is quadratic in the dataset size except where noted.
 *  Scratch memory comes from the handle's allocator (FAN_E_NOMEM if it fails). Every function
 *  that runs an SVD fails with FAN_E_NONFINITE when the matrix holds NaN or infinity (a weight,
 *  or activations that overflowed), before LAPACK sees it: LAPACK never prints and no NaN
 *  result comes with FAN_OK.
 *  @{ */

/**
 * Alignment between the forward and the feedback side of layer `layer` (the paper's measure).
 * Unit i is input unit i of the layer (a hidden neuron below it): its forward vector is column i
 * of the forward matrix, its feedback vector column i of the feedback matrix. per_unit_deg
 * (n = layer inputs) receives acos(cosine similarity) in degrees (90 for a zero vector); may be
 * NULL (n is then ignored). *mean_deg is their mean; *matrix_deg the angle between the two whole
 * matrices. Either scalar output may be NULL. Layer 0 is accepted too (its units are the inputs).
 * What is compared, by rule: the feedback matrix is the one fan_net_get_feedback gives (for BP,
 * which sends errors through W, the stored B that FA would use: a control); the forward matrix is
 * W_l, except under DFA, where B_l maps the output error straight to layer l and is compared with
 * the product of the forward weights from layer l to the output, W_{L-1} ... W_l, the alignment
 * measure of direct feedback alignment (Nokland 2016; Refinetti et al., ICML 2021).
 * Cost O(outputs * inputs), plus under DFA the products (O(outputs * sum of layer sizes^2)).
 * @return FAN_OK; FAN_E_NULL (net); FAN_E_INVALID (layer); FAN_E_SHAPE (n); FAN_E_NOMEM (scratch
 *         for DFA's product or a computed feedback matrix).
 */
FAN_API FAN_NODISCARD fan_status fan_diag_alignment(const fan_net *net, size_t layer,
                                                    double *per_unit_deg, size_t n,
                                                    double *mean_deg, double *matrix_deg);
/**
 * Angle, per weight layer, between the error signal that the net's rule sends to the outputs of
 * that layer and the one backprop would send, on the batch (x, labels): deg_per_layer[l] for
 * l = 0 .. n_layers - 1 (n_layers = fan_net_num_layers). Both chains start from the same exact
 * output error and each follows its own rule down (DFA: from the output error at every layer),
 * as each rule's training would. The output layer's entry is 0; all entries are 0 for BP and for
 * FA with B = W. brSF uses the current batch's magnitudes. Uses scratch memory, not the net's
 * gradients. Cost: one forward pass and two error passes over the batch, no SVD; scratch
 * O(n * sum of layer widths).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0); FAN_E_SHAPE; FAN_E_LABEL; FAN_E_NONFINITE;
 *         FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_delta_alignment(const fan_net *net, const float *x,
                                                          const int32_t *labels, size_t n,
                                                          double *deg_per_layer, size_t n_layers);
/**
 * Singular values of W_l, the feedback matrix (as fan_net_get_feedback gives it, in
 * fan_net_feedback_shape's shape) or dW_l, in descending order; n = min(rows, cols).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (layer, which); FAN_E_SHAPE; FAN_E_LAPACK; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_singular_values(const fan_net *net, size_t layer,
                                                          fan_matrix which, double *sv, size_t n);
/**
 * Effective rank exp(-sum p_i log p_i), p_i = s_i / sum s (Roy and Vetterli 2007). 0 for a zero
 * matrix. Each call runs one SVD; for several summaries of one matrix, or the singular values as
 * well, fan_diag_spectrum gives them all from one.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_effective_rank(const fan_net *net, size_t layer,
                                                         fan_matrix which, double *erank);
/**
 * The spectrum of W_l, B_l or dW_l and all its summaries from one SVD: the singular values in
 * descending order into sv (n = min(rows, cols)), and the effective rank, participation ratio
 * and stable rank as the three functions around this one define them (each output may be NULL;
 * sv may not). The cheap way to get several spectral figures of one matrix: each of those
 * functions runs an SVD of its own.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (layer, which); FAN_E_SHAPE (n); FAN_E_LAPACK;
 *         FAN_E_NOMEM. Thread safety as for every const diagnostic.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_spectrum(const fan_net *net, size_t layer,
                                                   fan_matrix which, double *sv, size_t n,
                                                   double *erank, double *pr, double *srank);
/** Participation ratio (sum s_i^2)^2 / sum s_i^4. 0 for a zero matrix. */
FAN_API FAN_NODISCARD fan_status fan_diag_participation_ratio(const fan_net *net, size_t layer,
                                                              fan_matrix which, double *pr);
/** Stable rank sum s_i^2 / s_max^2. 0 for a zero matrix. */
FAN_API FAN_NODISCARD fan_status fan_diag_stable_rank(const fan_net *net, size_t layer,
                                                      fan_matrix which, double *srank);
/**
 * Principal angles (degrees, ascending) between the spans of the top-k left singular vectors of
 * the forward and the feedback matrix of the layer, as fan_diag_alignment pairs them (W_l and
 * B_l, or under DFA the forward product and B_l). deg has k entries (n must equal k,
 * else FAN_E_SHAPE); 1 <= k <= min(rows,
 * cols). Cost: two SVDs of the layer plus one k x k SVD.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (k); FAN_E_SHAPE; FAN_E_LAPACK; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_principal_angles(const fan_net *net, size_t layer,
                                                           size_t k, double *deg, size_t n);
/**
 * Gram-matrix effective dimensionality of the activations of hidden layer `hidden` (1 to
 * num_layers - 1: the outputs of weight layer hidden - 1) over the first max_samples samples of
 * ds (0 = all): the cosine similarity between neurons' activation vectors (neurons x neurons;
 * a neuron that never fires has zero similarity to all, itself included), then its effective rank.
 * max_samples above the dataset size means all samples. Cost O(samples * width^2) time plus one
 * width x width SVD (O(width^3)); O(width^2) memory beyond one chunk of activations; nothing grows
 * with the number of samples.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID; FAN_E_SHAPE (dataset dim); FAN_E_LAPACK; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_gram_dimensionality(const fan_net *net, size_t hidden,
                                                              const fan_dataset *ds,
                                                              size_t max_samples, double *erank);
/**
 * Readout statistics on a batch of n inputs: mean of the largest softmax output per sample,
 * mean entropy (nats) of the output distribution, and a histogram of all n * outputs
 * probabilities over [0, 1] in n_bins equal bins, as fractions summing to 1 (hist may be NULL).
 * Any scalar output may be NULL. Needs the cross-entropy loss. A probability of exactly 1 falls
 * in the last bin. Cost: one forward pass, in chunks.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0); FAN_E_SHAPE; FAN_E_UNSUPPORTED (MSE); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_readout(const fan_net *net, const float *x, size_t n,
                                                  double *mean_max_prob, double *mean_entropy,
                                                  double *hist, size_t n_bins);
/**
 * Expected calibration error over the dataset with n_bins equal-width confidence bins:
 * sum_b (|b| / N) * |accuracy(b) - confidence(b)|. The prediction is the first class of largest
 * probability (ties go to the lower index); its confidence is that probability; confidence 1 falls
 * in the last bin. Needs the cross-entropy loss and dataset classes equal to the net's outputs
 * (else FAN_E_SHAPE). One forward pass over the dataset, O(n_bins) memory.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n_bins = 0); FAN_E_SHAPE; FAN_E_UNSUPPORTED; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_calibration_error(const fan_net *net, const fan_dataset *ds,
                                                            size_t n_bins, double *ece);

/**
 * Generic spectral functions on a caller's row-major rows x cols float matrix a. alloc (NULL for
 * malloc/free) provides scratch memory. On failure there is no handle for a message: the status
 * says what went wrong.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (zero size); FAN_E_SHAPE (n); FAN_E_NONFINITE;
 *         FAN_E_LIMIT (rows * cols above FAN_MAX_MATRIX); FAN_E_LAPACK; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_matrix_singular_values(const float *a, size_t rows,
                                                            size_t cols, double *sv, size_t n,
                                                            const fan_allocator *alloc);
/** Effective rank of a caller's matrix (see fan_diag_effective_rank); statuses as above. */
FAN_API FAN_NODISCARD fan_status fan_matrix_effective_rank(const float *a, size_t rows, size_t cols,
                                                           double *erank,
                                                           const fan_allocator *alloc);
/** Participation ratio of a caller's matrix (see fan_diag_participation_ratio); statuses as above. */
FAN_API FAN_NODISCARD fan_status fan_matrix_participation_ratio(const float *a, size_t rows,
                                                                size_t cols, double *pr,
                                                                const fan_allocator *alloc);
/** Stable rank of a caller's matrix (see fan_diag_stable_rank); statuses as above. */
FAN_API FAN_NODISCARD fan_status fan_matrix_stable_rank(const float *a, size_t rows, size_t cols,
                                                        double *srank,
                                                        const fan_allocator *alloc);
/** Angle in degrees between vec(a) and vec(b), both of len floats (90 if either is zero). */
FAN_API FAN_NODISCARD fan_status fan_matrix_angle(const float *a, const float *b, size_t len,
                                                  double *deg);
/**
 * Spectrum summaries from given singular values (any order, all >= 0), no allocation:
 * effective rank, participation ratio and stable rank as defined above (outputs may be NULL).
 * @return FAN_OK; FAN_E_NULL (sv); FAN_E_INVALID (n = 0, negative or non-finite values).
 */
FAN_API FAN_NODISCARD fan_status fan_spectrum_summary(const double *sv, size_t n, double *erank,
                                                      double *pr, double *srank);
/** @} */

/* ------------------------------------------------------------------------------------------ */
/** @name NumPy files
 *  Datasets and a net's matrices in NumPy's .npy format (format versions 1.0, 2.0 and 3.0), so
 *  that NumPy users can feed data and inspect or edit a trained net without any binding. Only
 *  little-endian, C-order (row-major) arrays are read: a Fortran-order array, a big-endian or
 *  structured dtype, or a dtype not listed below is refused with FAN_E_UNSUPPORTED and a message
 *  saying how to convert it. Every size in a header is checked against the input's size and the
 *  library's bounds before anything is allocated; the input must hold exactly the array its
 *  header describes (FAN_E_FORMAT otherwise). Headers above 64 KiB are refused (FAN_E_LIMIT).
 *  @{ */

/**
 * Loads a dataset from two .npy files, images and labels.
 *
 * Images: dtype float32 ('<f4') or uint8 ('|u1'); shape (n, dim), (n, height, width) or
 * (n, channels, height, width), the last being channel-planar as the library stores images (a
 * channel-last array needs numpy.transpose(a, (0, 3, 1, 2)) first). float32 values must be finite
 * and are stored as float with normalisation FAN_NORM_NONE; uint8 stays uint8 with FAN_NORM_SCALE
 * (as the IDX loader). Labels: any integer dtype ('|i1', '|u1', '<i2', '<u2', '<i4', '<u4', '<i8',
 * '<u8'), shape (n,) or (n, 1), one per image, each in [0, n_classes).
 *
 * @param out          receives the dataset, or NULL on failure.
 * @param images_path  the images file.
 * @param labels_path  the labels file.
 * @param n_classes    the class count; 0 takes the largest label + 1.
 * @param alloc        allocator, copied into the dataset; NULL for malloc/free.
 * @return FAN_OK; FAN_E_NULL (out or a path); FAN_E_IO (a file cannot be opened or read, or is
 *         not a regular file); FAN_E_FORMAT (not a .npy file, a malformed header, data shorter or
 *         longer than the header says); FAN_E_VERSION (a format version other than 1.0 - 3.0);
 *         FAN_E_UNSUPPORTED (Fortran order, dtype, images of fewer than 2 or more than 4
 *         dimensions); FAN_E_SHAPE (labels not (n,) or (n, 1), or not one per image);
 *         FAN_E_INVALID (a dimension of 0); FAN_E_LIMIT (more than FAN_MAX_SAMPLES images, more
 *         than FAN_MAX_WIDTH values per image, n_classes or a label above FAN_MAX_CLASSES, a
 *         header above 64 KiB, sizes that overflow, or, for fan_dataset_load_npy_ex, data above
 *         the load budget); FAN_E_LABEL (a negative label or one not below n_classes);
 *         FAN_E_NONFINITE (a NaN or infinite float image value); FAN_E_NOMEM. There is no handle
 *         on failure: fan_dataset_load_npy_ex gives the reason (naming the file and what is
 *         wrong). Thread-safe (no shared state; each call opens its own files).
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_npy(fan_dataset **out, const char *images_path,
                                                      const char *labels_path, size_t n_classes,
                                                      const fan_allocator *alloc);
/**
 * As fan_dataset_load_npy, with options (NULL: defaults): the allocator, a buffer for the reason
 * of a failure, and the load budget, which applies to the image data the headers declare plus
 * the labels as int32 (twice: a scratch copy lives while they are read); it is checked after the
 * headers and before anything is allocated.
 * @return as fan_dataset_load_npy, plus FAN_E_INVALID or FAN_E_UNSUPPORTED for bad options (see
 *         fan_create_options).
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_npy_ex(fan_dataset **out,
                                                         const char *images_path,
                                                         const char *labels_path,
                                                         size_t n_classes,
                                                         const fan_create_options *opts);
/**
 * As fan_dataset_load_npy from two memory buffers holding whole .npy files (images_len and
 * labels_len bytes). The buffers are only read, and not kept. FAN_E_NULL if out, images or labels
 * is NULL; no FAN_E_IO.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_npy_mem(fan_dataset **out, const void *images,
                                                          size_t images_len, const void *labels,
                                                          size_t labels_len, size_t n_classes,
                                                          const fan_allocator *alloc);
/** As fan_dataset_load_npy_mem, with options as fan_dataset_load_npy_ex. */
FAN_API FAN_NODISCARD fan_status fan_dataset_load_npy_mem_ex(fan_dataset **out,
                                                             const void *images,
                                                             size_t images_len,
                                                             const void *labels,
                                                             size_t labels_len, size_t n_classes,
                                                             const fan_create_options *opts);

/**
 * Writes every weight layer l of the net into the existing directory dir as three float32 .npy
 * files (format 1.0, C order, readable by numpy.load): dir/weights_l.npy (W_l, shape
 * (outputs, inputs)), dir/bias_l.npy (b_l, shape (outputs,)) and dir/feedback_l.npy (the feedback
 * matrix as fan_net_get_feedback gives it, in the shape of fan_net_feedback_shape under the net's
 * rule), l written in decimal from 0. Each file
 * is written to a temporary file next to it and renamed over it once complete, as fan_net_save
 * does; a failure part-way leaves the files of earlier layers written and the failing one as it
 * was. Files of other layers or names in dir are left alone. Memory for one matrix and the paths
 * comes from the net's allocator.
 * @return FAN_OK; FAN_E_NULL (net or dir); FAN_E_IO (dir missing or not writable, a write
 *         failed); FAN_E_NOMEM. The net is not changed (const); a failure's message is readable
 *         with fan_net_errmsg. Same thread safety as other const calls.
 */
FAN_API FAN_NODISCARD fan_status fan_net_export_npy(const fan_net *net, const char *dir);
/**
 * Reads the files fan_net_export_npy writes (weights_l.npy, bias_l.npy, feedback_l.npy for every
 * weight layer l) from dir into the net, replacing W, b and B. Each file must hold a float32 or
 * float64 array (float64 is rounded to float32) of exactly the net's shape for it (B in the
 * shape of fan_net_feedback_shape); all values must be finite after rounding. Every file is read
 * and checked before the net changes: on failure the net is as it was. Under uSF and brSF,
 * whose feedback is drawn from W (fan_net_set_feedback refuses them), the feedback files are read
 * and checked but only W and b are set; under frSF only the magnitudes of B are used, as by
 * fan_net_set_feedback. Gradients, settings, seeds and the rule are kept. Scratch memory for all
 * the matrices comes from the net's allocator.
 * @return FAN_OK; FAN_E_NULL (net or dir); FAN_E_IO (a file missing or unreadable);
 *         FAN_E_FORMAT, FAN_E_VERSION, FAN_E_LIMIT (a malformed file, as for
 *         fan_dataset_load_npy); FAN_E_UNSUPPORTED (a dtype other than float32 or float64,
 *         Fortran order); FAN_E_SHAPE (a shape other than the net's, message names file and
 *         shapes); FAN_E_NONFINITE; FAN_E_NOMEM; and any status of fan_net_set_weights and
 *         fan_net_set_feedback under the net's rule. The message is readable with fan_net_errmsg.
 */
FAN_API FAN_NODISCARD fan_status fan_net_import_npy(fan_net *net, const char *dir);
/** @} */

#ifdef __cplusplus
}
#endif

#endif /* FANOISE_H */
