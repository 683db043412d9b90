"""Optimizer: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, with state sized to one net."""
from ctypes import byref, c_double

from ._handle import Handle
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
        out = OPT()
        check(lib.fan_optimizer_create(byref(out), int(kind), net.ptr, None),
              what=f"fan_optimizer_create(kind={int(kind)})")
        super().__init__(out)
        for name, value in params.items():
            self.set(_KEYWORDS[name], value)

    def set(self, param, value):
        """Sets a hyperparameter (an OptimizerParam); a value outside Optimizer.bounds(param)
        raises FanoiseError."""
        self._check(lib.fan_optimizer_set(self.ptr, int(param), float(value)))

    def get(self, param):
        """Reads a hyperparameter (an OptimizerParam)."""
        v = c_double()
        self._check(lib.fan_optimizer_get(self.ptr, int(param), byref(v)))
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
        check(lib.fan_optimizer_param_bounds(int(param), byref(lo), byref(hi), byref(d)),
              what=f"fan_optimizer_param_bounds({int(param)})")
        return lo.value, hi.value, d.value

    @property
    def kind(self):
        """The algorithm, an OptimizerKind."""
        return OptimizerKind(lib.fan_optimizer_get_kind(self.ptr))

    @property
    def steps(self):
        """Steps applied since creation or the last reset."""
        return lib.fan_optimizer_steps(self.ptr)

    def reset(self):
        """Zeroes the state (moments, step count); keeps the hyperparameters."""
        self._check(lib.fan_optimizer_reset(self.ptr))

    def step(self, net):
        """Applies the net's current gradients to its weights."""
        self._check(lib.fan_optimizer_step(self.ptr, net.ptr))

    def __repr__(self):
        return "<fanoise.Optimizer closed>" if self.closed else \
            f"<fanoise.Optimizer {self.kind.name} lr={self.lr:g}>"
