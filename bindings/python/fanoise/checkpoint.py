"""Checkpoints: a net with its optimizer and iterator, saved so that a run continues exactly."""
import ctypes
import os
from ctypes import byref, c_size_t

from . import _buffers as B
from ._handle import using
from ._lib import IT, NET, OPT, create_options, lib
from .constants import Status
from .data import Iter
from .errors import FanoiseError, check
from .net import Net
from .optimizer import Optimizer


def _handles(net, opt, it):
    """The handles a checkpoint reads, for their locks (see _handle.py)."""
    return [h for h in (net, opt, it) if h is not None]


def _ptrs(net, opt, it, ptrs):
    """(net, opt, it) pointers, None where the handle is None."""
    found = iter(ptrs)
    return tuple(next(found) if h is not None else None for h in (net, opt, it))


def save_checkpoint(path, net, opt=None, it=None):
    """Writes net, opt and it (either may be None) to path atomically (fan_checkpoint_save)."""
    with using(*_handles(net, opt, it)) as ptrs:
        np_, op, ip = _ptrs(net, opt, it, ptrs)
        check(lib.fan_checkpoint_save(os.fsencode(path), np_, op, ip), lib.fan_net_errmsg, np_,
              "fan_checkpoint_save")


def checkpoint_to_bytes(net, opt=None, it=None):
    """The bytes save_checkpoint would write (fan_checkpoint_save_mem)."""
    with using(*_handles(net, opt, it)) as ptrs:
        np_, op, ip = _ptrs(net, opt, it, ptrs)
        need = c_size_t()
        check(lib.fan_checkpoint_save_mem(None, 0, byref(need), np_, op, ip),
              lib.fan_net_errmsg, np_, "fan_checkpoint_save_mem")
        buf = ctypes.create_string_buffer(need.value)
        written = c_size_t()
        check(lib.fan_checkpoint_save_mem(buf, need.value, byref(written), np_, op, ip),
              lib.fan_net_errmsg, np_, "fan_checkpoint_save_mem")
    return buf.raw[:written.value]


_ERRMSG_CAP = 512


def _load(fn, source, data, with_iterator, max_load_bytes, what):
    net, opt, it = NET(), OPT(), IT()
    msg = ctypes.create_string_buffer(_ERRMSG_CAP)
    options = create_options(msg, B.u64_arg(max_load_bytes, "max_load_bytes"))
    dsp = data._pin() if data is not None else None
    try:
        st = fn(*source, byref(net), byref(opt), byref(it) if with_iterator else None, dsp,
                byref(options))
        if st != Status.OK:
            raise FanoiseError(st, f"{what}: {msg.value.decode(errors='replace')}")
    except BaseException:
        if data is not None:
            data._unpin()
        raise
    iterator = None
    if it:
        iterator = Iter(_ptr=it, dataset=data if not lib.fan_iter_is_noise(it) else None)
        if data is not None and lib.fan_iter_is_noise(it):
            data._unpin()
    elif data is not None:
        data._unpin()
    return Net(_ptr=net), Optimizer(_ptr=opt) if opt else None, iterator


def load_checkpoint(path, data=None, with_iterator=True, max_load_bytes=0):
    """(net, optimizer or None, iterator or None) from a checkpoint file. data is the dataset a
    saved batch iterator ran over; a dataset that does not match the saved one is refused with
    the reason. with_iterator=False skips the iterator (and needs no dataset)."""
    return _load(lib.fan_checkpoint_load_ex, (os.fsencode(path),), data, with_iterator,
                 max_load_bytes, "fan_checkpoint_load")


def checkpoint_from_bytes(blob, data=None, with_iterator=True, max_load_bytes=0):
    """As load_checkpoint from checkpoint_to_bytes() output."""
    ptr, n, keep = B.bytes_in(blob)
    try:
        return _load(lib.fan_checkpoint_load_mem_ex, (ptr, n), data, with_iterator,
                     max_load_bytes, "fan_checkpoint_load_mem")
    finally:
        del keep


__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_to_bytes", "checkpoint_from_bytes"]
