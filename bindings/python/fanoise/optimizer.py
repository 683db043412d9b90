"""Optimizer: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, with state sized to one net."""
import ctypes
from ctypes import byref, c_double, c_size_t

from . import _buffers as B
from ._handle import Handle, using
from ._lib import OPT, create_options, lib
from .constants import OptimizerKind, OptimizerParam, Status
from .errors import FanoiseError, check

# Keyword arguments accepted by Optimizer(...) and their parameters.
_KEYWORDS = {p.name.lower(): p for p in OptimizerParam}


class Optimizer(Handle):
    """An optimizer (fan_optimizer) for `net`'s shapes: Optimizer(net, OptimizerKind.ADAM,
    lr=1e-4). Keyword names are OptimizerParam names in lower case."""

    _free = lib.fan_optimizer_free
    _errmsg = lib.fan_optimizer_errmsg

    def __init__(self, net=None, kind=OptimizerKind.SGD, *, _ptr=None, **params):
        if _ptr is not None:
            super().__init__(_ptr)
            return
        if net is None:
            raise TypeError("Optimizer() needs the net it will train")
        unknown = set(params) - set(_KEYWORDS)
        if unknown:
            raise TypeError(f"unknown optimizer parameter(s): {', '.join(sorted(unknown))}")
        kind = B.enum_arg(kind, "kind")
        out = OPT()
        with using(net) as (netp,):
            check(lib.fan_optimizer_create(byref(out), kind, netp, None),
                  what=f"fan_optimizer_create(kind={kind})")
        super().__init__(out)
        for name, value in params.items():
            self.set(_KEYWORDS[name], value)

    def set(self, param, value):
        """Sets a hyperparameter (an OptimizerParam); a value outside Optimizer.bounds(param)
        raises FanoiseError."""
        self._checked(lib.fan_optimizer_set, B.enum_arg(param, "param"),
                      B.float_arg(value, "value"))

    def get(self, param):
        """Reads a hyperparameter (an OptimizerParam)."""
        v = c_double()
        self._checked(lib.fan_optimizer_get, B.enum_arg(param, "param"), byref(v))
        return v.value

    @property
    def lr(self):
        """The learning rate (OptimizerParam.LR)."""
        return self.get(OptimizerParam.LR)

    @lr.setter
    def lr(self, value):
        self.set(OptimizerParam.LR, value)

    @staticmethod
    def bounds(param):
        """(lo, hi, default) of a hyperparameter."""
        lo, hi, d = c_double(), c_double(), c_double()
        param = B.enum_arg(param, "param")
        check(lib.fan_optimizer_param_bounds(param, byref(lo), byref(hi), byref(d)),
              what=f"fan_optimizer_param_bounds({param})")
        return lo.value, hi.value, d.value

    @property
    def kind(self):
        """The algorithm, an OptimizerKind."""
        return OptimizerKind(self._call(lib.fan_optimizer_get_kind))

    def scheduled_lr(self, step=None):
        """The learning rate the schedule gives step `step` (default: the next step)."""
        v = c_double()
        with self._lock:
            step = self.steps if step is None else B.u64_arg(step, "step")
            self._checked(lib.fan_optimizer_scheduled_lr, step, byref(v))
        return v.value

    @property
    def steps(self):
        """Steps applied since creation or the last reset."""
        return self._call(lib.fan_optimizer_steps)

    def reset(self):
        """Zeroes the state (moments, step count); keeps the hyperparameters."""
        self._checked(lib.fan_optimizer_reset)

    def step(self, net):
        """Applies the net's current gradients to its weights."""
        self._checked(lib.fan_optimizer_step, net)

    def to_bytes(self):
        """The whole state (hyperparameters, step count, moments), fan_optimizer_save_mem."""
        with self._lock:  # one lock across both calls: the size cannot change in between
            need = c_size_t()
            self._checked(lib.fan_optimizer_save_mem, None, 0, byref(need))
            buf = ctypes.create_string_buffer(need.value)
            written = c_size_t()
            self._checked(lib.fan_optimizer_save_mem, buf, need.value, byref(written))
        return buf.raw[:written.value]

    @classmethod
    def from_bytes(cls, data):
        """An optimizer from to_bytes() output; its next steps equal the original's."""
        ptr, n, keep = B.bytes_in(data)
        out = OPT()
        msg = ctypes.create_string_buffer(512)
        st = lib.fan_optimizer_load_mem_ex(byref(out), ptr, n, byref(create_options(msg)))
        del keep
        if st != Status.OK:
            raise FanoiseError(st, "fan_optimizer_load_mem: " + msg.value.decode(errors="replace"))
        return cls(_ptr=out)

    def __repr__(self):
        return "<fanoise.Optimizer closed>" if self.closed else \
            f"<fanoise.Optimizer {self.kind.name} lr={self.lr:g}>"
