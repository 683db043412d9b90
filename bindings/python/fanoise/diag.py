"""Diagnostics: alignment between forward and feedback weights, spectra and ranks, readout.

All of them only read training state. Per-unit and spectral results are float64 arrays
(numpy when available, else array.array('d')).
"""
from collections import namedtuple
from ctypes import byref, c_double

from . import _buffers as B
from ._lib import lib
from .constants import Matrix, Status
from .errors import FanoiseValueError, check

Alignment = namedtuple("Alignment", "per_unit mean matrix")
Alignment.__doc__ = ("Per-unit angles (degrees) between forward and feedback vectors of a "
                     "layer's input units, their mean, and the whole-matrix angle.")
Readout = namedtuple("Readout", "mean_max_prob mean_entropy hist")
Spectrum = namedtuple("Spectrum", "effective_rank participation_ratio stable_rank")


def _net_call(net, fn, *args):
    """fn(net, *args) under the net's lock (and the locks of any handle among args); raises with
    the net's message."""
    return net._checked(fn, *args)


def alignment(net, layer):
    """The paper's alignment angle for weight layer `layer` (>= 1 for hidden units)."""
    layer = B.size_arg(layer, "layer")
    n = net.layer_inputs(layer)
    if n == 0:
        raise FanoiseValueError(Status.E_INVALID,
                                f"layer: {layer} is not in [0, {net.num_layers})")
    p, _, per_unit = B.doubles_out((n,))
    mean, mat = c_double(), c_double()
    _net_call(net, lib.fan_diag_alignment, layer, p, n, byref(mean), byref(mat))
    return Alignment(per_unit, mean.value, mat.value)


def delta_alignment(net, x, labels):
    """Per weight layer, the angle (degrees) between the error the net's rule sends to that
    layer's outputs and the one backprop would send, on the batch (x, labels)."""
    xb = B.floats_in(x, "x")
    n = B.rows_of(xb, net.input_size, "x")
    lb = B.int32s_in(labels, "labels", n)
    layers = net.num_layers
    p, _, out = B.doubles_out((layers,))
    _net_call(net, lib.fan_diag_delta_alignment, xb.ptr, lb.ptr, n, p, layers)
    return out


def singular_values(net, layer, which=Matrix.WEIGHTS):
    """Singular values of W_l, B_l or dW_l, descending."""
    layer = B.size_arg(layer, "layer")
    k = min(net.layer_inputs(layer), net.layer_outputs(layer))
    p, _, out = B.doubles_out((k,))
    _net_call(net, lib.fan_diag_singular_values, layer, B.enum_arg(which, "which"), p, k)
    return out


def spectrum(net, layer, which=Matrix.WEIGHTS):
    """(singular values, Spectrum) of W_l, B_l or dW_l from one SVD: the cheap way to get the
    values and their summaries together."""
    layer = B.size_arg(layer, "layer")
    k = min(net.layer_inputs(layer), net.layer_outputs(layer))
    p, _, out = B.doubles_out((k,))
    e, pr, s = c_double(), c_double(), c_double()
    _net_call(net, lib.fan_diag_spectrum, layer, B.enum_arg(which, "which"), p, k, byref(e),
              byref(pr), byref(s))
    return out, Spectrum(e.value, pr.value, s.value)


def _scalar(fn, net, *args):
    v = c_double()
    _net_call(net, fn, *args, byref(v))
    return v.value


def effective_rank(net, layer, which=Matrix.WEIGHTS):
    """Effective rank exp(-sum p_i log p_i), p_i = s_i / sum s (Roy and Vetterli 2007), of W_l, B_l
    or dW_l (which, a Matrix); 0 for a zero matrix."""
    return _scalar(lib.fan_diag_effective_rank, net, B.size_arg(layer, "layer"),
                   B.enum_arg(which, "which"))


def participation_ratio(net, layer, which=Matrix.WEIGHTS):
    """Participation ratio (sum s_i^2)^2 / sum s_i^4 of the singular values of W_l, B_l or dW_l."""
    return _scalar(lib.fan_diag_participation_ratio, net, B.size_arg(layer, "layer"),
                   B.enum_arg(which, "which"))


def stable_rank(net, layer, which=Matrix.WEIGHTS):
    """Stable rank sum s_i^2 / s_max^2 of W_l, B_l or dW_l."""
    return _scalar(lib.fan_diag_stable_rank, net, B.size_arg(layer, "layer"),
                   B.enum_arg(which, "which"))


def principal_angles(net, layer, k):
    """Principal angles (degrees, ascending) between the top-k left singular subspaces of W_l
    and B_l."""
    layer, k = B.size_arg(layer, "layer"), B.size_arg(k, "k")
    p, _, out = B.doubles_out((k,))
    _net_call(net, lib.fan_diag_principal_angles, layer, k, p, k)
    return out


def gram_dimensionality(net, hidden, ds, max_samples=0):
    """Effective rank of the neuron-by-neuron cosine-similarity matrix of hidden layer
    `hidden`'s activations over the first max_samples samples of ds (0 = all)."""
    return _scalar(lib.fan_diag_gram_dimensionality, net, B.size_arg(hidden, "hidden"), ds,
                   B.size_arg(max_samples, "max_samples"))


def readout(net, x, n_bins=10):
    """Readout(mean_max_prob, mean_entropy, hist) of the softmax outputs on inputs x."""
    n_bins = B.size_arg(n_bins, "n_bins")
    xb = B.floats_in(x, "x")
    n = B.rows_of(xb, net.input_size, "x")
    mp, ent = c_double(), c_double()
    hp, _, hist = B.doubles_out((n_bins,)) if n_bins else (None, 0, None)
    _net_call(net, lib.fan_diag_readout, xb.ptr, n, byref(mp), byref(ent), hp, n_bins)
    return Readout(mp.value, ent.value, hist)


def calibration_error(net, ds, n_bins=10):
    """Expected calibration error over a dataset."""
    return _scalar(lib.fan_diag_calibration_error, net, ds, B.size_arg(n_bins, "n_bins"))


# ---- generic spectral functions on caller matrices ------------------------------------------
def _matrix(a, rows, cols):
    buf = B.floats_in(a, "a")
    if rows is None or cols is None:
        if len(buf.shape) != 2:
            raise FanoiseValueError(Status.E_SHAPE,
                                    "a must be 2-D, or rows and cols must be given")
        rows, cols = buf.shape
    rows, cols = B.size_arg(rows, "rows"), B.size_arg(cols, "cols")
    if len(buf.shape) >= 2 and tuple(buf.shape) != (rows, cols):
        raise FanoiseValueError(Status.E_SHAPE, f"a has shape {tuple(buf.shape)}; rows and "
                                                f"cols say ({rows}, {cols})")
    if buf.size != rows * cols:
        raise FanoiseValueError(Status.E_SHAPE, f"a has {buf.size} values; {rows} x {cols} "
                                                f"needs {rows * cols}")
    return buf, rows, cols


def _mcheck(st, name):
    return check(st, what=name)


def matrix_singular_values(a, rows=None, cols=None):
    """Singular values, descending, of a rows x cols float matrix a (any float array of rows * cols
    values)."""
    buf, rows, cols = _matrix(a, rows, cols)
    k = min(rows, cols)
    p, _, out = B.doubles_out((k,))
    _mcheck(lib.fan_matrix_singular_values(buf.ptr, rows, cols, p, k, None),
            "fan_matrix_singular_values")
    return out


def _matrix_scalar(fn, name, a, rows, cols):
    buf, rows, cols = _matrix(a, rows, cols)
    v = c_double()
    _mcheck(fn(buf.ptr, rows, cols, byref(v), None), name)
    return v.value


def matrix_effective_rank(a, rows=None, cols=None):
    """Effective rank of a rows x cols float matrix a (see effective_rank)."""
    return _matrix_scalar(lib.fan_matrix_effective_rank, "fan_matrix_effective_rank", a, rows,
                          cols)


def matrix_participation_ratio(a, rows=None, cols=None):
    """Participation ratio of a rows x cols float matrix a (see participation_ratio)."""
    return _matrix_scalar(lib.fan_matrix_participation_ratio, "fan_matrix_participation_ratio",
                          a, rows, cols)


def matrix_stable_rank(a, rows=None, cols=None):
    """Stable rank of a rows x cols float matrix a (see stable_rank)."""
    return _matrix_scalar(lib.fan_matrix_stable_rank, "fan_matrix_stable_rank", a, rows, cols)


def matrix_angle(a, b):
    """Angle in degrees between vec(a) and vec(b)."""
    ab = B.floats_in(a, "a")
    bb = B.floats_in(b, "b", ab.size, ab.shape if len(ab.shape) >= 2 else None)
    v = c_double()
    _mcheck(lib.fan_matrix_angle(ab.ptr, bb.ptr, ab.size, byref(v)), "fan_matrix_angle")
    return v.value


def spectrum_summary(sv):
    """Spectrum(effective_rank, participation_ratio, stable_rank) of given singular values."""
    vals = [B.float_arg(v, "sv") for v in (sv.tolist() if hasattr(sv, "tolist") else sv)]
    arr = (c_double * len(vals))(*vals)
    e, p, s = c_double(), c_double(), c_double()
    _mcheck(lib.fan_spectrum_summary(arr, len(vals), byref(e), byref(p), byref(s)),
            "fan_spectrum_summary")
    return Spectrum(e.value, p.value, s.value)
