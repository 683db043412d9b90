"""Optimizer: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, with state sized to one net."""
from ctypes import byref, c_double

from . import _buffers as B
from ._handle import Handle, using
from ._lib import OPT, lib
from .constants import OptimizerKind, OptimizerParam
from .errors import check

# Keyword arguments accepted by Optimizer(...) and their parameters.
_KEYWORDS = {p.name.lower(): p for p in OptimizerParam}


class Optimizer(Handle):
    """An optimizer (fan_optimizer) for `net`'s shapes: Optimizer(net, OptimizerKind.ADAM,
    lr=1e-4). Keyword names are OptimizerParam names in lower case."""

    _free = lib.fan_optimizer_free
    _errmsg = lib.fan_optimizer_errmsg

    def __init__(self, net, kind=OptimizerKind.SGD, **params):
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
        self._checked(lib.fan_optimizer_set, B.enum_arg(param, "param"),
                      B.float_arg(value, "value"))

    def get(self, param):
        v = c_double()
        self._checked(lib.fan_optimizer_get, B.enum_arg(param, "param"), byref(v))
        return v.value

    @property
    def lr(self):
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
        return OptimizerKind(self._call(lib.fan_optimizer_get_kind))

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

    def __repr__(self):
        return "<fanoise.Optimizer closed>" if self.closed else \
            f"<fanoise.Optimizer {self.kind.name} lr={self.lr:g}>"
