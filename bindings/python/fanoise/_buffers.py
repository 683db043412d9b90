"""Conversions between Python data and the C buffers of the API.

Inputs may be numpy arrays (float32 / int32 and C-contiguous are used in place; anything else is
converted once), objects with the buffer protocol (array.array, memoryview, bytearray), or nested
sequences. Outputs are numpy arrays when numpy is importable, else flat array.array objects in
row-major order.
"""
import array
import ctypes
import numbers
import operator
import os
from ctypes import POINTER, c_double, c_float, c_int32, c_size_t, c_uint8

from .constants import Status
from .errors import FanoiseTypeError, FanoiseValueError

try:
    if os.environ.get("FANOISE_NO_NUMPY"):
        raise ImportError("disabled by FANOISE_NO_NUMPY")
    import numpy as _np
except ImportError:
    _np = None

_state = {"numpy": _np is not None}

# array.array type codes with the C sizes the API needs.
_INT32_CODE = next(c for c in "ilh" if array.array(c).itemsize == 4)
# Ranges of the C integer types arguments are converted to.
_SIZE_MAX = (1 << (8 * ctypes.sizeof(c_size_t))) - 1
_U64_MAX = (1 << 64) - 1
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
# Nesting deeper than this is not an array of numbers (and a list that contains itself would
# otherwise recurse until RecursionError).
_MAX_DEPTH = 32
# numpy dtype kinds that hold numbers the API can take: signed, unsigned, float. Bool, complex,
# strings and dates are refused (as Python bools and strings are), objects are converted
# element by element.
_NUMERIC_KINDS = "iuf"


def numpy_enabled():
    """True when outputs are numpy arrays."""
    return _state["numpy"]


def use_numpy(flag):
    """Switches numpy outputs on or off (off is always possible, on only with numpy installed).
    Returns the previous setting. Meant for tests and for callers who want plain buffers."""
    prev = _state["numpy"]
    if flag and _np is None:
        raise RuntimeError("numpy is not importable")
    _state["numpy"] = bool(flag)
    return prev


def integer_arg(value, name, lo=0, hi=_SIZE_MAX):
    """An integer argument in [lo, hi] (default: a size_t). Floats, bools and strings raise
    FanoiseTypeError, values out of range FanoiseValueError; both name the argument."""
    if isinstance(value, bool):
        raise FanoiseTypeError(Status.E_INVALID, f"{name}: {value!r} is not an integer")
    try:
        v = operator.index(value)
    except TypeError:
        raise FanoiseTypeError(Status.E_INVALID,
                               f"{name}: {value!r} is not an integer") from None
    if v < lo:
        raise FanoiseValueError(Status.E_INVALID, f"{name}: {v} is negative" if lo == 0
                                else f"{name}: {v} is below {lo}")
    if v > hi:
        raise FanoiseValueError(Status.E_INVALID, f"{name}: {v} is above {hi}")
    return v


def size_arg(value, name):
    """A size_t argument (a size, count, index or layer number)."""
    return integer_arg(value, name)


def u64_arg(value, name):
    """A uint64_t argument (a seed)."""
    return integer_arg(value, name, 0, _U64_MAX)


def enum_arg(value, name):
    """An enumeration argument (an IntEnum member or an int); the library checks the value."""
    return integer_arg(value, name, _INT_MIN, _INT_MAX)


def float_arg(value, name):
    """A double argument. Strings and non-real numbers raise FanoiseTypeError."""
    if isinstance(value, (str, bytes, bytearray)) or not isinstance(value, numbers.Real):
        raise FanoiseTypeError(Status.E_INVALID, f"{name}: {value!r} is not a real number")
    try:
        return float(value)
    except (OverflowError, ValueError):
        raise FanoiseValueError(Status.E_INVALID,
                                f"{name}: {value!r} does not fit in a double") from None


class InBuf:
    """A C view of caller data. Keeps whatever owns the memory alive while it exists."""

    __slots__ = ("ptr", "size", "shape", "_keep")

    def __init__(self, ptr, size, shape, keep):
        self.ptr, self.size, self.shape, self._keep = ptr, size, shape, keep


def _shape_error(name, msg):
    return FanoiseValueError(Status.E_SHAPE, f"{name}: {msg}")


def _not_numbers(name, obj):
    return FanoiseTypeError(Status.E_INVALID,
                            f"{name}: a {type(obj).__name__} is not an array of numbers")


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _flatten(obj, name, depth=0):
    """Flattens a nested sequence of real numbers; returns (flat list, shape). Rejects ragged
    rows, strings, and anything but numbers and sequences of them."""
    if _is_number(obj):
        return [obj], ()
    if isinstance(obj, (str, bytes, bytearray, bool)) or depth > _MAX_DEPTH:
        raise _not_numbers(name, obj)
    try:
        items = list(obj)
    except TypeError:
        raise _not_numbers(name, obj) from None
    if not items:
        return [], (0,)
    if _is_number(items[0]):
        for v in items:
            if not _is_number(v):
                raise FanoiseTypeError(Status.E_INVALID, f"{name}: {v!r} among numbers is not a "
                                                         f"real number")
        return items, (len(items),)
    flat, inner = [], None
    for row in items:
        f, s = _flatten(row, name, depth + 1)
        if inner is None:
            inner = s
        elif s != inner:
            raise _shape_error(name, "rows of different lengths")
        flat.extend(f)
    return flat, (len(items),) + inner


def _from_buffer(obj, ctype, code, name):
    """A view of a buffer-protocol object whose items already have the C type, else None."""
    try:
        mv = memoryview(obj)
    except TypeError:
        return None
    if mv.format.lstrip("@=<") != code or not mv.c_contiguous or mv.itemsize != ctypes.sizeof(ctype):
        return None
    n = mv.nbytes // mv.itemsize
    if n == 0:
        return InBuf(None, 0, tuple(mv.shape), None)
    flat = mv.cast("B")
    if mv.readonly:
        carr = (ctype * n).from_buffer_copy(flat)
    else:
        carr = (ctype * n).from_buffer(flat)
    return InBuf(ctypes.cast(carr, POINTER(ctype)), n, tuple(mv.shape), (obj, carr))


def _integral_check(arr, name, lo, hi, what):
    """Values of a numeric numpy array must be integers in [lo, hi] to become `what`."""
    if arr.size == 0:
        return
    if arr.dtype.kind == "f":
        finite = _np.isfinite(arr)
        if not finite.all():
            raise FanoiseValueError(Status.E_LABEL if what == "labels" else Status.E_INVALID,
                                    f"{name}: {arr[~finite].flat[0]!r} is not {what}")
        frac = arr != _np.floor(arr)
        if frac.any():
            raise FanoiseValueError(Status.E_LABEL if what == "labels" else Status.E_INVALID,
                                    f"{name}: {arr[frac].flat[0]!r} is not an integer")
    if arr.min() < lo or arr.max() > hi:
        raise FanoiseValueError(Status.E_LABEL if what == "labels" else Status.E_INVALID,
                                f"{name}: values do not fit in {what} ([{lo}, {hi}])")


def _convert_numpy(obj, name, np_dtype, ctype):
    kind = obj.dtype.kind
    if kind == "O":
        return None  # element by element, as a sequence
    if kind not in _NUMERIC_KINDS:
        raise FanoiseTypeError(Status.E_INVALID,
                               f"{name}: an array of dtype {obj.dtype} is not numbers")
    if np_dtype is _np.int32:
        _integral_check(obj, name, _INT32_MIN, _INT32_MAX, "labels")
    elif np_dtype is _np.uint8:
        _integral_check(obj, name, 0, 255, "bytes")
    # float64 values beyond float32's range become infinity, which the library refuses
    # (FAN_E_NONFINITE); numpy's overflow warning would only repeat that.
    with _np.errstate(over="ignore", invalid="ignore"):
        arr = _np.ascontiguousarray(obj, dtype=np_dtype)
    return InBuf(arr.ctypes.data_as(POINTER(ctype)), arr.size, arr.shape, arr)


def _convert(obj, name, np_dtype, ctype, code):
    if isinstance(obj, (str, bool)) or obj is None:
        raise _not_numbers(name, obj)
    if _np is not None and isinstance(obj, _np.ndarray):
        buf = _convert_numpy(obj, name, np_dtype, ctype)
        if buf is not None:
            return buf
        seq = obj.tolist()
    else:
        view = _from_buffer(obj, ctype, code, name)
        if view is not None:
            return view
        try:
            seq = memoryview(obj).tolist()  # other buffer types: through Python numbers
        except (TypeError, NotImplementedError, ValueError):
            seq = obj
    flat, shape = _flatten(seq, name)
    if ctype is not c_float:
        what = "labels" if ctype is c_int32 else "bytes"
        status = Status.E_LABEL if ctype is c_int32 else Status.E_INVALID
        lo, hi = (_INT32_MIN, _INT32_MAX) if ctype is c_int32 else (0, 255)
        for v in flat:
            if not (isinstance(v, numbers.Integral) or (float(v) == float(v)
                                                          and abs(float(v)) != float("inf")
                                                          and int(v) == v)):
                raise FanoiseValueError(status, f"{name}: {v!r} is not an integer")
            if not lo <= int(v) <= hi:
                raise FanoiseValueError(status, f"{name}: {v!r} does not fit in {what} "
                                                f"([{lo}, {hi}])")
        flat = [int(v) for v in flat]
    try:
        arr = array.array(code, flat)
    except OverflowError as e:
        raise FanoiseValueError(Status.E_INVALID, f"{name}: {e}") from None
    if not flat:
        return InBuf(None, 0, shape, None)
    carr = (ctype * len(flat)).from_buffer(arr)
    return InBuf(ctypes.cast(carr, POINTER(ctype)), len(flat), shape, (arr, carr))


def _check_size(buf, name, size, shape):
    """size: the element count the call requires; shape: the matrix shape it requires, which a
    2-D (or higher) input must have exactly (a transposed array has the right size but not the
    right shape)."""
    if size is not None and buf.size != size:
        raise _shape_error(name, f"has {buf.size} values; {size} are required")
    if shape is not None and len(buf.shape) >= 2 and tuple(buf.shape) != tuple(shape):
        raise _shape_error(name, f"has shape {tuple(buf.shape)}; {tuple(shape)} is required")
    return buf


def floats_in(obj, name, size=None, shape=None):
    """float32 input; size, when given, is the element count the call requires, shape the
    matrix shape a 2-D input must have."""
    buf = _convert(obj, name, _np.float32 if _np is not None else None, c_float, "f")
    return _check_size(buf, name, size, shape)


def int32s_in(obj, name, size=None):
    """int32 input (labels): integers, or floats with integral values."""
    buf = _convert(obj, name, _np.int32 if _np is not None else None, c_int32, _INT32_CODE)
    return _check_size(buf, name, size, None)


def u8s_in(obj, name, size=None):
    """uint8 input (image pixels): integers in [0, 255]."""
    if isinstance(obj, (bytes, bytearray)):
        carr = (c_uint8 * len(obj)).from_buffer_copy(obj) if obj else None
        buf = InBuf(ctypes.cast(carr, POINTER(c_uint8)) if carr else None, len(obj),
                    (len(obj),), carr)
    else:
        buf = _convert(obj, name, _np.uint8 if _np is not None else None, c_uint8, "B")
    return _check_size(buf, name, size, None)


def sizes_in(values, name="sizes"):
    """A size_t array from Python integers (sizes, indices)."""
    if isinstance(values, (str, bytes, bytearray)):
        raise _not_numbers(name, values)
    try:
        items = list(values)
    except TypeError:
        raise _not_numbers(name, values) from None
    values = [size_arg(v, f"{name}[{i}]") for i, v in enumerate(items)]
    return (c_size_t * len(values))(*values)


def bytes_in(data, name="data"):
    """(pointer, length, owner) for a bytes-like memory image."""
    try:
        mv = memoryview(data).cast("B")
    except TypeError:
        raise FanoiseTypeError(Status.E_INVALID, f"{name}: a {type(data).__name__} is not "
                                                 f"bytes-like") from None
    carr = (ctypes.c_char * len(mv)).from_buffer_copy(mv)
    return ctypes.cast(carr, ctypes.c_void_p), len(mv), carr


def _out(shape, ctype, np_dtype, code):
    n = 1
    for s in shape:
        n *= s
    if _state["numpy"]:
        arr = _np.empty(shape, dtype=np_dtype)
        return arr.ctypes.data_as(POINTER(ctype)), n, arr
    arr = array.array(code, bytes(n * ctypes.sizeof(ctype)))
    if n == 0:
        return None, 0, arr
    carr = (ctype * n).from_buffer(arr)
    return ctypes.cast(carr, POINTER(ctype)), n, arr


def floats_out(shape):
    """(pointer, count, result) for a float32 output of the given shape."""
    return _out(shape, c_float, _np.float32 if _np is not None else None, "f")


def doubles_out(shape):
    """(pointer, count, result) for a double output of the given shape."""
    return _out(shape, c_double, _np.float64 if _np is not None else None, "d")


def copy_floats(ptr, shape):
    """Copies a borrowed C float array into a new output object."""
    dst, n, res = floats_out(shape)
    if n:
        ctypes.memmove(dst, ptr, n * ctypes.sizeof(c_float))
    return res


def copy_int32s(ptr, n):
    """Copies a borrowed C int32 array into a new output object."""
    if _state["numpy"]:
        res = _np.empty(n, dtype=_np.int32)
        dst = res.ctypes.data_as(POINTER(c_int32))
    else:
        res = array.array(_INT32_CODE, bytes(4 * n))
        dst = (c_int32 * n).from_buffer(res) if n else None
    if n:
        ctypes.memmove(dst, ptr, n * 4)
    return res


def rows_of(buf, width, name):
    """Number of rows of width values in an input; the input must hold whole rows."""
    if width == 0 or buf.size % width:
        raise _shape_error(name, f"has {buf.size} values, not a multiple of the row width "
                                 f"{width}")
    if len(buf.shape) >= 2 and buf.shape[-1] != width:
        raise _shape_error(name, f"rows have {buf.shape[-1]} values; {width} are required")
    return buf.size // width
