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
 *   and nothing is leaked. Destructors accept NULL.
 * - Matrices are row-major float arrays. W_l (weight layer l) has layer_outputs(l) rows and
 *   layer_inputs(l) columns. The feedback matrix B_l is stored with W_l's shape, so the error pass
 *   of FA is delta_in = delta_out * B_l exactly as BP's is delta_out * W_l.
 * - Output buffers come with their length in elements; a length that does not match the required
 *   size fails with FAN_E_SHAPE and the message says the required size.
 * - Const handles: a function taking a const handle changes nothing in it, with one exception: a
 *   failing call records its message, readable with fan_*_errmsg.
 * - Thread safety: distinct handles may be used from different threads at once; one handle needs
 *   external locking. Concurrent successful calls taking the same const handle are safe (two
 *   failing ones may interleave their messages). A custom allocator of a handle that several
 *   threads use at once, even through const calls, must itself be thread-safe: diagnostics take
 *   scratch memory from it. fan_strerror and the version functions are always safe.
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

/** Marks a function as part of the exported ABI. */
#if defined(FAN_BUILDING_LIBRARY) && defined(__GNUC__)
#define FAN_API __attribute__((visibility("default")))
#else
#define FAN_API
#endif

/** Warns when a caller ignores a returned status. */
#if defined(__GNUC__) || defined(__clang__)
#define FAN_NODISCARD __attribute__((warn_unused_result))
#else
#define FAN_NODISCARD
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
    FAN_E_NUMERIC = 5,        /**< Training produced a non-finite loss or gradient; no update. */
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
    FAN_STOPPED = 101         /**< Not an error: a progress callback asked training to stop. */
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
    FAN_MATRIX_FEEDBACK = 1, /**< B_l (W_l's shape). */
    FAN_MATRIX_GRADIENTS = 2 /**< dW_l from the last gradient computation (zero before any). */
} fan_matrix;

/** Scalar settings of a network, for fan_net_set / fan_net_get. */
typedef enum fan_net_param {
    FAN_NET_LEAKY_SLOPE = 0 /**< Negative slope of FAN_ACT_LEAKY_RELU; default 0.01, [0, 1]. */
} fan_net_param;

/** Optimizer algorithms. */
typedef enum fan_optimizer_kind {
    FAN_OPTIMIZER_SGD = 0,    /**< SGD with optional (Nesterov) momentum and L2 weight decay. */
    FAN_OPTIMIZER_ADAM = 1,   /**< Adam with bias correction; weight decay added to the gradient. */
    FAN_OPTIMIZER_ADAMW = 2,  /**< Adam with decoupled weight decay. */
    FAN_OPTIMIZER_RMSPROP = 3 /**< RMSprop (uncentred), with optional momentum. */
} fan_optimizer_kind;

/** Optimizer hyperparameters; see fan_optimizer_param_bounds for ranges and defaults. */
typedef enum fan_optimizer_param {
    FAN_OPT_LR = 0,           /**< Learning rate; default 0.01. */
    FAN_OPT_MOMENTUM = 1,     /**< SGD / RMSprop momentum; default 0. */
    FAN_OPT_NESTEROV = 2,     /**< SGD: 1 for Nesterov momentum, 0 for classical; default 0. */
    FAN_OPT_WEIGHT_DECAY = 3, /**< L2 (decoupled for AdamW); default 0. */
    FAN_OPT_BETA1 = 4,        /**< Adam first-moment decay; default 0.9. */
    FAN_OPT_BETA2 = 5,        /**< Adam second-moment decay; default 0.999. */
    FAN_OPT_EPSILON = 6,      /**< Adam / RMSprop denominator term; default 1e-8. */
    FAN_OPT_ALPHA = 7         /**< RMSprop smoothing constant; default 0.99. */
} fan_optimizer_param;
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

/** Frees a network and everything it owns. NULL is a no-op. */
FAN_API void fan_net_free(fan_net *net);

/**
 * Returns the detail of the last failure on this network ("" if none). The string belongs to the
 * handle and is valid until the next call that changes it. NULL net gives a static message.
 */
FAN_API const char *fan_net_errmsg(const fan_net *net);

/**
 * Sets the learning rule used by every later gradient computation. Feedback matrices are kept
 * whatever the rule, so switching back and forth keeps the same B.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for an unknown rule.
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
/** Copies B_l (len = outputs * inputs). @return FAN_OK; FAN_E_NULL; FAN_E_INVALID; FAN_E_SHAPE. */
FAN_API FAN_NODISCARD fan_status fan_net_get_feedback(const fan_net *net, size_t layer, float *B,
                                                      size_t len);
/**
 * Replaces B_l. Setting B_l = W_l for every layer makes FA compute exactly BP's gradients.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID; FAN_E_SHAPE; FAN_E_NONFINITE.
 */
FAN_API FAN_NODISCARD fan_status fan_net_set_feedback(fan_net *net, size_t layer, const float *B,
                                                      size_t len);

/**
 * Runs the network on n input rows x (n x inputs) and writes n output rows to probs
 * (probs_len = n * outputs): softmax probabilities under cross-entropy, the output activations
 * under MSE. Uses the net's workspace (allocated on first use at a batch size, then reused).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID for n = 0; FAN_E_SHAPE; FAN_E_NOMEM.
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
/** Zeroes the state (moments, step count); hyperparameters are kept. @return FAN_OK; FAN_E_NULL. */
FAN_API FAN_NODISCARD fan_status fan_optimizer_reset(fan_optimizer *opt);
/**
 * Applies the net's current gradients to its W and b. Fails with FAN_E_STATE if the net has no
 * gradients since its creation, load or last init; FAN_E_SHAPE if the net's shapes differ from the
 * net the optimizer was created for; FAN_E_NULL.
 */
FAN_API FAN_NODISCARD fan_status fan_optimizer_step(fan_optimizer *opt, fan_net *net);

/**
 * The hot path: forward, gradients by the net's rule and one optimizer step. Allocates only on
 * the first call at a batch size larger than any before. On FAN_E_NUMERIC, weights and optimizer
 * state are exactly as before the call. Statuses as fan_net_compute_gradients and
 * fan_optimizer_step.
 */
FAN_API FAN_NODISCARD fan_status fan_net_train_batch(fan_net *net, fan_optimizer *opt,
                                                     const float *x, const int32_t *labels,
                                                     size_t n, float *loss);
/** As fan_net_train_batch with soft targets (n x outputs floats). */
FAN_API FAN_NODISCARD fan_status fan_net_train_batch_targets(fan_net *net, fan_optimizer *opt,
                                                             const float *x, const float *targets,
                                                             size_t n, float *loss);
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
 * @param images_path the images file; labels_path the labels file.
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
 * Makes an image dataset by copying n uint8 images of width x height x channels (channel-planar)
 * and n labels. Normalisation starts as FAN_NORM_SCALE.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_from_u8(fan_dataset **out, const uint8_t *pixels,
                                                     const int32_t *labels, size_t n, size_t width,
                                                     size_t height, size_t channels,
                                                     size_t n_classes, const fan_allocator *alloc);
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
 * A subset of n samples drawn without replacement by `seed`, in drawn order.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0 or above the size); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_random(fan_dataset **out, const fan_dataset *ds,
                                                           size_t n, uint64_t seed);
/**
 * A stratified subset: n_per_class samples of each class, drawn by `seed`, in source order.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n_per_class = 0, or a class with fewer samples);
 *         FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_stratified(fan_dataset **out,
                                                               const fan_dataset *ds,
                                                               size_t n_per_class, uint64_t seed);
/**
 * A subset of the listed samples, in the listed order (repeats allowed).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0, an index out of range); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_subset_indices(fan_dataset **out,
                                                            const fan_dataset *ds,
                                                            const size_t *indices, size_t n);
/**
 * Splits ds at random (by seed) into n_val validation samples and the rest for training. val equals
 * fan_dataset_subset_random(ds, n_val, seed); train keeps source order.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n_val = 0 or n_val >= size); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_split(fan_dataset **train, fan_dataset **val,
                                                   const fan_dataset *ds, size_t n_val,
                                                   uint64_t seed);

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
/**
 * Turns the content by `degrees` counter-clockwise about the image centre (see
 * fan_dataset_translate for the common rules). @return FAN_OK; FAN_E_NULL; FAN_E_INVALID
 * (non-finite angle); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_rotate(fan_dataset **out, const fan_dataset *ds,
                                                    double degrees);
/**
 * Zooms the content by `factor` about the image centre (> 1 enlarges; see fan_dataset_translate
 * for the common rules). @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (non-finite or non-positive
 * factor); FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_scale(fan_dataset **out, const fan_dataset *ds,
                                                   double factor);
/**
 * Resamples every image to width x height (bilinear, align-corners off, as image libraries do).
 * Unlike the other transforms it clamps samples to the edge pixels (no zero fill), so a constant
 * image stays constant. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (zero size); FAN_E_LIMIT;
 * FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_dataset_resize(fan_dataset **out, const fan_dataset *ds,
                                                    size_t width, size_t height);
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
    FAN_ITER_SHUFFLE = 5     /**< Batches only: 0 keeps dataset order; default 1. */
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
 * Creates an endless noise source: every batch has fresh inputs drawn N(0, 1) per element (see
 * FAN_ITER_NOISE_*) and labels drawn uniformly from n_classes, independent of the inputs.
 * Never returns FAN_DONE.
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (zero sizes, n_classes > FAN_MAX_CLASSES);
 *         FAN_E_LIMIT; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_iter_create_noise(fan_iter **out, size_t dim,
                                                       size_t n_classes, size_t batch,
                                                       uint64_t seed, const fan_allocator *alloc);
/** Changes a setting. @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (unknown, out of range, wrong kind of iterator). */
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
} fan_progress;

/** Progress callback: a non-zero return stops the loop after the current step (FAN_STOPPED). */
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
 * Alignment between forward and feedback weights of layer `layer` >= 1 (the paper's measure).
 * Unit i is input unit i of the layer (a hidden neuron below it): its forward vector is column i
 * of W_l (its outgoing weights), its feedback vector column i of B_l. per_unit_deg (n = layer
 * inputs) receives acos(cosine similarity) in degrees (90 for a zero vector); may be NULL (n is
 * then ignored). *mean_deg is their mean; *matrix_deg the angle between vec(W_l) and vec(B_l).
 * Either scalar output may be NULL. Layer 0 is accepted too (its units are the net's inputs).
 * Cost O(outputs * inputs).
 * @return FAN_OK; FAN_E_NULL (net); FAN_E_INVALID (layer); FAN_E_SHAPE (n).
 */
FAN_API FAN_NODISCARD fan_status fan_diag_alignment(const fan_net *net, size_t layer,
                                                    double *per_unit_deg, size_t n,
                                                    double *mean_deg, double *matrix_deg);
/**
 * Angle, per weight layer, between the error signal that the net's rule sends to the outputs of
 * that layer and the one backprop would send, on the batch (x, labels): deg_per_layer[l] for
 * l = 0 .. n_layers - 1 (n_layers = fan_net_num_layers). The output layer's entry is 0; all
 * entries are 0 for BP and for FA with B = W. Uses scratch memory, not the net's gradients.
 * Cost: one forward pass and two error passes over the batch, no SVD; scratch O(n * sum of layer
 * widths).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (n = 0); FAN_E_SHAPE; FAN_E_LABEL; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_delta_alignment(fan_net *net, const float *x,
                                                          const int32_t *labels, size_t n,
                                                          double *deg_per_layer, size_t n_layers);
/**
 * Singular values of W_l, B_l or dW_l in descending order; n = min(rows, cols).
 * @return FAN_OK; FAN_E_NULL; FAN_E_INVALID (layer, which); FAN_E_SHAPE; FAN_E_LAPACK; FAN_E_NOMEM.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_singular_values(const fan_net *net, size_t layer,
                                                          fan_matrix which, double *sv, size_t n);
/**
 * Effective rank exp(-sum p_i log p_i), p_i = s_i / sum s (Roy and Vetterli 2007). 0 for a zero
 * matrix. Each call runs one SVD; to get several summaries of one matrix, call
 * fan_diag_singular_values once and pass the values to fan_spectrum_summary.
 */
FAN_API FAN_NODISCARD fan_status fan_diag_effective_rank(const fan_net *net, size_t layer,
                                                         fan_matrix which, double *erank);
/** Participation ratio (sum s_i^2)^2 / sum s_i^4. 0 for a zero matrix. */
FAN_API FAN_NODISCARD fan_status fan_diag_participation_ratio(const fan_net *net, size_t layer,
                                                              fan_matrix which, double *pr);
/** Stable rank sum s_i^2 / s_max^2. 0 for a zero matrix. */
FAN_API FAN_NODISCARD fan_status fan_diag_stable_rank(const fan_net *net, size_t layer,
                                                      fan_matrix which, double *srank);
/**
 * Principal angles (degrees, ascending) between the spans of the top-k left singular vectors of
 * W_l and of B_l (subspaces of the layer's output space). deg has k entries (n must equal k,
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
FAN_API FAN_NODISCARD fan_status fan_diag_gram_dimensionality(fan_net *net, size_t hidden,
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
FAN_API FAN_NODISCARD fan_status fan_diag_readout(fan_net *net, const float *x, size_t n,
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
FAN_API FAN_NODISCARD fan_status fan_diag_calibration_error(fan_net *net, const fan_dataset *ds,
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

#ifdef __cplusplus
}
#endif

#endif /* FANOISE_H */
