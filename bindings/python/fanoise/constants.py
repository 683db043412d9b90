"""The header's enumerations and limits, with the values written in include/fanoise.h.

Each IntEnum mirrors one C enum; its members drop the common C prefix (FAN_RULE_FA is Rule.FA).
C_PREFIX on each class records that prefix so that c_constants() can rebuild the C names, which
the tests compare with the header itself.
"""
import ctypes
from enum import IntEnum


class Status(IntEnum):
    """What a call did (fan_status): OK, an error (E_*, raised as FanoiseError), or DONE / STOPPED,
    which are results."""

    OK = 0
    E_NULL = 1
    E_INVALID = 2
    E_SHAPE = 3
    E_NOMEM = 4
    E_NUMERIC = 5
    E_IO = 6
    E_FORMAT = 7
    E_VERSION = 8
    E_LIMIT = 9
    E_STATE = 10
    E_LAPACK = 11
    E_CHECKSUM = 12
    E_NONFINITE = 13
    E_LABEL = 14
    E_UNSUPPORTED = 15
    DONE = 100
    STOPPED = 101
    EARLY_STOPPED = 102


class Rule(IntEnum):
    """Learning rules (fan_rule): how errors reach hidden layers and what happens to the feedback
    matrices. docs/rules.md gives each rule's equations."""

    BP = 0
    FA = 1
    DFA = 2
    USF = 3
    BRSF = 4
    FRSF = 5
    KP = 6
    WM = 7


class Activation(IntEnum):
    """Activations of a weight layer's outputs (fan_activation)."""

    LINEAR = 0
    RELU = 1
    LEAKY_RELU = 2
    TANH = 3
    SIGMOID = 4


class Loss(IntEnum):
    """Losses (fan_loss): softmax cross-entropy, or mean squared error."""

    CROSS_ENTROPY = 0
    MSE = 1


class Init(IntEnum):
    """Random initialisers of W or B (fan_init): He-normal, Xavier-uniform, LeCun-normal."""

    HE_NORMAL = 0
    XAVIER_UNIFORM = 1
    LECUN_NORMAL = 2


class Matrix(IntEnum):
    """Which matrix of a layer a diagnostic or initialiser means (fan_matrix): W, B or dW."""

    WEIGHTS = 0
    FEEDBACK = 1
    GRADIENTS = 2


class NetParam(IntEnum):
    """Scalar settings of a network for Net.get / Net.set (fan_net_param)."""

    LEAKY_SLOPE = 0
    THREADS = 1


class OptimizerKind(IntEnum):
    """Optimizer algorithms (fan_optimizer_kind)."""

    SGD = 0
    ADAM = 1
    ADAMW = 2
    RMSPROP = 3


class OptimizerParam(IntEnum):
    """Optimizer hyperparameters for Optimizer.get / set (fan_optimizer_param); Optimizer.bounds
    gives each range and default."""

    LR = 0
    MOMENTUM = 1
    NESTEROV = 2
    WEIGHT_DECAY = 3
    BETA1 = 4
    BETA2 = 5
    EPSILON = 6
    ALPHA = 7
    SCHEDULE = 8
    STEP_SIZE = 9
    GAMMA = 10
    T_MAX = 11
    LR_MIN = 12
    WARMUP_STEPS = 13


class Schedule(IntEnum):
    """Learning-rate schedules (fan_schedule), the values of OptimizerParam.SCHEDULE: constant,
    step decay, exponential decay, cosine annealing."""

    CONSTANT = 0
    STEP = 1
    EXPONENTIAL = 2
    COSINE = 3


class Norm(IntEnum):
    """How stored values become batch floats (fan_norm): as stored, scaled to [0, 1], or
    standardised."""

    NONE = 0
    SCALE = 1
    STANDARDIZE = 2


class IterParam(IntEnum):
    """Iterator settings for Iter.get / Iter.set (fan_iter_param)."""

    NOISE_KIND = 0
    NOISE_MEAN = 1
    NOISE_STD = 2
    LABEL_MODE = 3
    DROP_LAST = 4
    SHUFFLE = 5
    SHARD_INDEX = 6
    SHARD_COUNT = 7


class NoiseKind(IntEnum):
    """Noise distributions (fan_noise_kind): Gaussian, or uniform with the same mean and std."""

    GAUSSIAN = 0
    UNIFORM = 1


class LabelMode(IntEnum):
    """Noise labels (fan_label_mode): random hard classes, or soft uniform targets 1/C."""

    HARD = 0
    SOFT = 1


# C typedef name -> (Python enum, prefix of its C constants).
C_ENUMS = {
    "fan_status": (Status, "FAN_"),
    "fan_rule": (Rule, "FAN_RULE_"),
    "fan_activation": (Activation, "FAN_ACT_"),
    "fan_loss": (Loss, "FAN_LOSS_"),
    "fan_init": (Init, "FAN_INIT_"),
    "fan_matrix": (Matrix, "FAN_MATRIX_"),
    "fan_net_param": (NetParam, "FAN_NET_"),
    "fan_optimizer_kind": (OptimizerKind, "FAN_OPTIMIZER_"),
    "fan_optimizer_param": (OptimizerParam, "FAN_OPT_"),
    "fan_schedule": (Schedule, "FAN_SCHEDULE_"),
    "fan_norm": (Norm, "FAN_NORM_"),
    "fan_iter_param": (IterParam, "FAN_ITER_"),
    "fan_noise_kind": (NoiseKind, "FAN_NOISE_"),
    "fan_label_mode": (LabelMode, "FAN_LABELS_"),
}

MAX_LAYERS = 64
MAX_THREADS = 64
MAX_WIDTH = 16777216
MAX_MATRIX = 268435456
MAX_SAMPLES = 100000000
MAX_CLASSES = 65536
# ((size_t)-1) in the header.
CSV_LAST_COLUMN = ctypes.c_size_t(-1).value
# The load budget of fan_create_options when max_load_bytes is 0 (4 GiB).
DEFAULT_MAX_LOAD_BYTES = 4 << 30

# The version of the header this binding was written against (FANOISE_VERSION_*).
VERSION_MAJOR = 0
VERSION_MINOR = 2
VERSION_PATCH = 0
VERSION_NUMBER = VERSION_MAJOR * 10000 + VERSION_MINOR * 100 + VERSION_PATCH
VERSION_STRING = f"{VERSION_MAJOR}.{VERSION_MINOR}.{VERSION_PATCH}"

# #define'd numeric constants of the header, by C name.
C_DEFINES = {
    "FAN_MAX_LAYERS": MAX_LAYERS,
    "FAN_MAX_THREADS": MAX_THREADS,
    "FAN_MAX_WIDTH": MAX_WIDTH,
    "FAN_MAX_MATRIX": MAX_MATRIX,
    "FAN_MAX_SAMPLES": MAX_SAMPLES,
    "FAN_MAX_CLASSES": MAX_CLASSES,
    "FAN_CSV_LAST_COLUMN": CSV_LAST_COLUMN,
    "FAN_DEFAULT_MAX_LOAD_BYTES": DEFAULT_MAX_LOAD_BYTES,
    "FANOISE_VERSION_MAJOR": VERSION_MAJOR,
    "FANOISE_VERSION_MINOR": VERSION_MINOR,
    "FANOISE_VERSION_PATCH": VERSION_PATCH,
    "FANOISE_VERSION_NUMBER": VERSION_NUMBER,
    "FANOISE_VERSION_STRING": VERSION_STRING,
}


def c_enum_constants():
    """{C name: value} of every enumeration constant the binding mirrors."""
    out = {}
    for enum, prefix in C_ENUMS.values():
        for member in enum:
            out[prefix + member.name] = int(member)
    return out
