"""fanoise: Python binding (ctypes, standard library only) of libfanoise.

Feedback alignment and backprop training, random-noise pretraining (Cheon, Lee, Paik, NeurIPS
2024) and alignment / dimensionality diagnostics. The C header include/fanoise.h is the
reference for every function's behaviour; this package mirrors it:

    import fanoise as fn
    with fn.Net([784, 100, 10], weight_seed=1, feedback_seed=2) as net, \\
         fn.Optimizer(net, fn.OptimizerKind.ADAM, lr=1e-4) as opt, \\
         fn.Iter.noise(784, 10, 64, seed=3) as noise:
        net.pretrain_noise(opt, noise, 8000)
        print(fn.alignment(net, 1).mean)

The C library is found through $FANOISE_LIBRARY (alone, when set), else the lib/ of the source
tree this package is imported from, the library pkg-config reports for fanoise, the built tree
the package was pip-installed from, and the run-time linker's search path; LIBRARY_PATH says
which was loaded. Arrays are numpy arrays when numpy is importable, else array.array. Failed
calls raise FanoiseError, whose subclasses are also ValueError, MemoryError, OSError or
ArithmeticError where one of those fits.
"""
from ._buffers import numpy_enabled, use_numpy
from ._lib import lib as _library
from .checkpoint import (checkpoint_from_bytes, checkpoint_to_bytes, load_checkpoint,
                         save_checkpoint)
from .constants import (CSV_LAST_COLUMN, DEFAULT_MAX_LOAD_BYTES, MAX_CLASSES, MAX_LAYERS,
                        MAX_MATRIX, MAX_SAMPLES, MAX_THREADS, MAX_WIDTH, Activation, Init,
                        IterParam, LabelMode, Loss, Matrix, NetParam, NoiseKind, Norm,
                        OptimizerKind, OptimizerParam, Rule, Schedule, Status)
from .data import Batch, Dataset, Iter
from .diag import (Alignment, Readout, Spectrum, alignment, calibration_error, delta_alignment,
                   effective_rank, gram_dimensionality, matrix_angle, matrix_effective_rank,
                   matrix_participation_ratio, matrix_singular_values, matrix_stable_rank,
                   participation_ratio, principal_angles, readout, singular_values,
                   spectrum, spectrum_summary, stable_rank)
from .errors import (FanoiseArithmeticError, FanoiseError, FanoiseMemoryError, FanoiseOSError,
                     FanoiseTypeError, FanoiseValueError, strerror)
from .net import Net, Progress
from .optimizer import Optimizer

LIBRARY_PATH = _library.path
"""Path (or name) of the libfanoise shared library this package loaded."""


def version_string():
    """fan_version_string() of the loaded library."""
    return _library.fan_version_string().decode()


def version_number():
    """fan_version_number() of the loaded library."""
    return _library.fan_version_number()


__version__ = version_string()

__all__ = [
    "Net", "Optimizer", "Dataset", "Iter", "Batch", "Progress", "FanoiseError", "strerror",
    "FanoiseValueError", "FanoiseTypeError", "FanoiseMemoryError", "FanoiseOSError",
    "FanoiseArithmeticError",
    "Status", "Rule", "Activation", "Loss", "Init", "Matrix", "NetParam", "OptimizerKind",
    "OptimizerParam", "Schedule", "Norm", "IterParam", "NoiseKind", "LabelMode",
    "MAX_LAYERS", "MAX_THREADS", "MAX_WIDTH", "MAX_MATRIX", "MAX_SAMPLES", "MAX_CLASSES",
    "CSV_LAST_COLUMN", "DEFAULT_MAX_LOAD_BYTES",
    "Alignment", "Readout", "Spectrum", "alignment", "delta_alignment", "singular_values",
    "effective_rank", "participation_ratio", "stable_rank", "principal_angles",
    "gram_dimensionality", "readout", "calibration_error", "matrix_singular_values",
    "matrix_effective_rank", "matrix_participation_ratio", "matrix_stable_rank", "matrix_angle",
    "spectrum", "spectrum_summary", "numpy_enabled", "use_numpy", "version_string",
    "version_number", "LIBRARY_PATH", "__version__", "save_checkpoint", "load_checkpoint",
    "checkpoint_to_bytes", "checkpoint_from_bytes",
]
