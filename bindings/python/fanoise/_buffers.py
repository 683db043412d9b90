"""Conversions between Python data and the C buffers of the API.

Inputs may be numpy arrays (float32 / int32 and C-contiguous are used in place; anything else is
converted once), objects with the buffer protocol (array.array, memoryview, bytearray), or nested
sequences. Outputs are numpy arrays when numpy is importable, else flat array.array objects in
row-major order.
"""
import array
import ctypes
import os
from ctypes import POINTER, c_double, c_float, c_int32, c_size_t, c_uint8

from .constants import Status
from .errors import FanoiseError

try:
    if os.environ.get("FANOISE_NO_NUMPY"):
        raise ImportError("disabled by FANOISE_NO_NUMPY")
    import numpy as _np
except ImportError:
    _np = None

_state = {"numpy": _np is not None}

# array.array type codes with the C sizes the API needs.
_INT32_CODE = next(c for c in "ilh" if array.array(c).itemsize == 4)


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


class InBuf:
    """A C view of caller data. Keeps whatever owns the memory alive while it exists."""

    __slots__ = ("ptr", "size", "shape", "_keep")

    def __init__(self, ptr, size, shape, keep):
        self.ptr, self.size, self.shape, self._keep = ptr, size, shape, keep


def _shape_error(name, msg):
    return FanoiseError(Status.E_SHAPE, f"{name}: {msg}")


def _flatten(obj, name):
    """Flattens a nested sequence of numbers; returns (flat list, shape). Rejects ragged rows."""
    if isinstance(obj, (int, float)):
        return [obj], ()
    items = list(obj)
    if not items:
        return [], (0,)
    if isinstance(items[0], (int, float)):
        for v in items:
            if not isinstance(v, (int, float)):
                raise TypeError(f"{name}: mixed numbers and sequences")
        return items, (len(items),)
    flat, inner = [], None
    for row in items:
        f, s = _flatten(row, name)
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


def _convert(obj, name, np_dtype, ctype, code):
    if _np is not None and isinstance(obj, _np.ndarray):
        arr = _np.ascontiguousarray(obj, dtype=np_dtype)
        if np_dtype is _np.int32 and obj.dtype != _np.int32 and obj.size:
            if obj.min() < -2**31 or obj.max() >= 2**31:
                raise FanoiseError(Status.E_LABEL, f"{name}: values do not fit in int32")
        return InBuf(arr.ctypes.data_as(POINTER(ctype)), arr.size, arr.shape, arr)
    view = _from_buffer(obj, ctype, code, name)
    if view is not None:
        return view
    try:
        seq = memoryview(obj).tolist()  # other buffer types: convert through Python numbers
    except TypeError:
        seq = obj
    flat, shape = _flatten(seq, name)
    if ctype is c_int32:
        bad = [v for v in flat if int(v) != v]
        if bad:
            raise FanoiseError(Status.E_LABEL, f"{name}: {bad[0]!r} is not an integer")
        flat = [int(v) for v in flat]
    try:
        arr = array.array(code, flat)
    except OverflowError as e:
        raise FanoiseError(Status.E_LABEL, f"{name}: {e}") from None
    if not flat:
        return InBuf(None, 0, shape, None)
    carr = (ctype * len(flat)).from_buffer(arr)
    return InBuf(ctypes.cast(carr, POINTER(ctype)), len(flat), shape, (arr, carr))


def floats_in(obj, name, size=None):
    """float32 input; size, when given, is the element count the call requires."""
    buf = _convert(obj, name, _np.float32 if _np is not None else None, c_float, "f")
    if size is not None and buf.size != size:
        raise _shape_error(name, f"has {buf.size} values; {size} are required")
    return buf


def int32s_in(obj, name, size=None):
    """int32 input (labels)."""
    buf = _convert(obj, name, _np.int32 if _np is not None else None, c_int32, _INT32_CODE)
    if size is not None and buf.size != size:
        raise _shape_error(name, f"has {buf.size} values; {size} are required")
    return buf


def u8s_in(obj, name, size=None):
    """uint8 input (image pixels)."""
    if isinstance(obj, (bytes, bytearray)):
        carr = (c_uint8 * len(obj)).from_buffer_copy(obj) if obj else None
        buf = InBuf(ctypes.cast(carr, POINTER(c_uint8)) if carr else None, len(obj),
                    (len(obj),), carr)
    else:
        buf = _convert(obj, name, _np.uint8 if _np is not None else None, c_uint8, "B")
    if size is not None and buf.size != size:
        raise _shape_error(name, f"has {buf.size} values; {size} are required")
    return buf


def sizes_in(values):
    """A size_t array from Python integers (sizes, indices)."""
    values = [int(v) for v in values]
    if any(v < 0 for v in values):
        raise FanoiseError(Status.E_INVALID, "negative size or index")
    return (c_size_t * len(values))(*values)


def bytes_in(data):
    """(pointer, length, owner) for a bytes-like memory image."""
    mv = memoryview(data).cast("B")
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
