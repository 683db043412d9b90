"""Checkpoints: a net with its optimizer and iterator, saved so that a run continues exactly."""
import ctypes
import os
from ctypes import byref, c_size_t

from . import _buffers as B
from ._lib import IT, NET, OPT, lib
from .constants import Status
from .data import Iter
from .errors import FanoiseError, check
from .net import Net
from .optimizer import Optimizer


def _ptr(handle):
    return None if handle is None else handle.ptr


def save_checkpoint(path, net, opt=None, it=None):
    """Writes net, opt and it (either may be None) to path atomically (fan_checkpoint_save)."""
    check(lib.fan_checkpoint_save(os.fsencode(path), net.ptr, _ptr(opt), _ptr(it)),
          lib.fan_net_errmsg, net.ptr, "fan_checkpoint_save")


def checkpoint_to_bytes(net, opt=None, it=None):
    """The bytes save_checkpoint would write (fan_checkpoint_save_mem)."""
    need = c_size_t()
    check(lib.fan_checkpoint_save_mem(None, 0, byref(need), net.ptr, _ptr(opt), _ptr(it)),
          lib.fan_net_errmsg, net.ptr, "fan_checkpoint_save_mem")
    buf = ctypes.create_string_buffer(need.value)
    written = c_size_t()
    check(lib.fan_checkpoint_save_mem(buf, need.value, byref(written), net.ptr, _ptr(opt),
                                      _ptr(it)),
          lib.fan_net_errmsg, net.ptr, "fan_checkpoint_save_mem")
    return buf.raw[:written.value]


def _load(fn, source, data, with_iterator, what):
    net, opt, it = NET(), OPT(), IT()
    dsp = data._pin() if data is not None else None
    try:
        st = fn(*source, byref(net), byref(opt), byref(it) if with_iterator else None, dsp,
                None)
        if st != Status.OK:
            msg = ""
            if data is not None and st in (Status.E_SHAPE, Status.E_INVALID):
                # A refused dataset carries the reason.
                msg = lib.fan_dataset_errmsg(dsp).decode(errors="replace")
            raise FanoiseError(st, f"{what}: {msg or lib.fan_strerror(st).decode()}")
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


def load_checkpoint(path, data=None, with_iterator=True):
    """(net, optimizer or None, iterator or None) from a checkpoint file. data is the dataset a
    saved batch iterator ran over; a dataset that does not match the saved one is refused.
    with_iterator=False skips the iterator (and needs no dataset)."""
    return _load(lib.fan_checkpoint_load, (os.fsencode(path),), data, with_iterator,
                 "fan_checkpoint_load")


def checkpoint_from_bytes(blob, data=None, with_iterator=True):
    """As load_checkpoint from checkpoint_to_bytes() output."""
    ptr, n, keep = B.bytes_in(blob)
    try:
        return _load(lib.fan_checkpoint_load_mem, (ptr, n), data, with_iterator,
                     "fan_checkpoint_load_mem")
    finally:
        del keep


__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_to_bytes", "checkpoint_from_bytes"]
