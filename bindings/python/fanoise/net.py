"""Net: a multilayer network trained by backprop, feedback alignment or another rule."""
import ctypes
import os
from collections import namedtuple
from ctypes import byref, c_double, c_float, c_size_t, c_uint64

from . import _buffers as B
from ._handle import Handle, using
from ._lib import NET, PROGRESS_FN, create_options, fan_train_options, lib
from .constants import Activation, Loss, NetParam, Rule, Status
from .errors import FanoiseError, FanoiseValueError, check

Progress = namedtuple("Progress", "step total_steps epoch batch_in_epoch samples loss "
                                  "epoch_loss end_of_epoch lr val_loss val_accuracy "
                                  "best_val_loss best_epoch validated")
Progress.__doc__ = "What a training loop reports after every step (fan_progress)."

# fan_net_load_v2's message buffer; the library's own per-handle buffers are of this order.
_ERRMSG_CAP = 512


class _Callback:
    """Adapts a Python progress function to fan_progress_fn. An exception raised by the function
    stops the loop and is re-raised once the C call has returned."""

    def __init__(self, fn):
        self.fn, self.error = fn, None
        self.cfn = PROGRESS_FN(self._call) if fn is not None else PROGRESS_FN()

    def _call(self, p, _user):
        c = p.contents
        try:
            stop = self.fn(Progress(c.step, c.total_steps, c.epoch, c.batch_in_epoch, c.samples,
                                    c.loss, c.epoch_loss, bool(c.end_of_epoch), c.lr,
                                    c.val_loss, c.val_accuracy, c.best_val_loss, c.best_epoch,
                                    bool(c.validated)))
            return 1 if stop else 0
        except BaseException as e:  # noqa: B902 - must not unwind through C frames
            self.error = e
            return 1

    def reraise(self):
        if self.error is not None:
            raise self.error


class Net(Handle):
    """A network (fan_net). Net([784, 100, 10]) has two weight layers; rule FA by default."""

    _free = lib.fan_net_free
    _errmsg = lib.fan_net_errmsg

    def __init__(self, sizes=None, *, rule=None, weight_seed=None, feedback_seed=None,
                 _ptr=None):
        if _ptr is None:
            if sizes is None:
                raise TypeError("Net() needs the layer sizes")
            csizes = B.sizes_in(sizes)
            sizes = list(csizes)
            out = NET()
            check(lib.fan_net_create(byref(out), csizes, len(sizes), None),
                  what=f"fan_net_create(sizes={sizes})")
            _ptr = out
        super().__init__(_ptr)
        if rule is not None:
            self.rule = rule
        if weight_seed is not None or feedback_seed is not None:
            if weight_seed is not None:
                B.u64_arg(weight_seed, "weight_seed")
            if feedback_seed is not None:
                B.u64_arg(feedback_seed, "feedback_seed")
            ws, fs = self.seeds
            self.init(ws if weight_seed is None else weight_seed,
                      fs if feedback_seed is None else feedback_seed)

    # ---- settings ----------------------------------------------------------------------------
    @property
    def rule(self):
        """The learning rule, a Rule. Setting it keeps the feedback matrices, or reshapes and
        redraws them from the feedback seed when the new rule needs another shape (DFA); a rule
        the library does not accept raises FanoiseError."""
        return Rule(self._call(lib.fan_net_rule))

    @rule.setter
    def rule(self, rule):
        self._checked(lib.fan_net_set_rule, B.enum_arg(rule, "rule"))

    @property
    def loss(self):
        """The loss, a Loss: softmax cross-entropy or mean squared error."""
        return Loss(self._call(lib.fan_net_loss))

    @loss.setter
    def loss(self, loss):
        self._checked(lib.fan_net_set_loss, B.enum_arg(loss, "loss"))

    def activation(self, layer):
        """The Activation applied to the outputs of weight layer `layer`."""
        return Activation(self._call(lib.fan_net_activation, B.size_arg(layer, "layer")))

    def set_activation(self, layer, act):
        """Sets the Activation of weight layer `layer`; for the output layer it comes before the
        loss."""
        self._checked(lib.fan_net_set_activation, B.size_arg(layer, "layer"),
                      B.enum_arg(act, "act"))

    def get(self, param):
        """Reads a scalar setting (a NetParam) as a float."""
        v = c_double()
        self._checked(lib.fan_net_get, B.enum_arg(param, "param"), byref(v))
        return v.value

    def set(self, param, value):
        """Sets a scalar setting (a NetParam); a value outside its range raises FanoiseError."""
        self._checked(lib.fan_net_set, B.enum_arg(param, "param"), B.float_arg(value, "value"))

    @property
    def leaky_slope(self):
        """Negative slope of Activation.LEAKY_RELU (NetParam.LEAKY_SLOPE), in [0, 1]; default 0.01."""
        return self.get(NetParam.LEAKY_SLOPE)

    @leaky_slope.setter
    def leaky_slope(self, value):
        self.set(NetParam.LEAKY_SLOPE, value)

    @property
    def threads(self):
        """FAN_NET_THREADS: threads this net's training, inference and evaluation calls use."""
        return int(self.get(NetParam.THREADS))

    @threads.setter
    def threads(self, value):
        self.set(NetParam.THREADS, value)

    def set_initializer(self, which, init):
        """Chooses the Init of W (which=Matrix.WEIGHTS) or of B (Matrix.FEEDBACK) for the next
        init(); nothing is redrawn until then."""
        self._checked(lib.fan_net_set_initializer, B.enum_arg(which, "which"),
                      B.enum_arg(init, "init"))

    def init(self, weight_seed, feedback_seed):
        """Redraws W from weight_seed and B from feedback_seed; zero biases and gradients."""
        self._checked(lib.fan_net_init, B.u64_arg(weight_seed, "weight_seed"),
                      B.u64_arg(feedback_seed, "feedback_seed"))

    @property
    def seeds(self):
        """(weight_seed, feedback_seed) of the last init."""
        w, f = c_uint64(), c_uint64()
        self._checked(lib.fan_net_seeds, byref(w), byref(f))
        return w.value, f.value

    def clone(self):
        """An independent deep copy: weights, feedback matrices, gradients and settings."""
        out = NET()
        with using(self) as (p,):
            self._check(lib.fan_net_clone(byref(out), p), "clone")
        return Net(_ptr=out)

    # ---- shape -------------------------------------------------------------------------------
    @property
    def num_layers(self):
        """Number of weight layers (2 for sizes 784-100-10)."""
        return self._call(lib.fan_net_num_layers)

    def layer_inputs(self, layer):
        """Inputs (columns of W) of weight layer `layer`; 0 for a layer that does not exist."""
        return self._call(lib.fan_net_layer_inputs, B.size_arg(layer, "layer"))

    def layer_outputs(self, layer):
        """Outputs (rows of W) of weight layer `layer`; 0 for a layer that does not exist."""
        return self._call(lib.fan_net_layer_outputs, B.size_arg(layer, "layer"))

    @property
    def input_size(self):
        """Width of the input, sizes[0]."""
        return self._call(lib.fan_net_input_size)

    @property
    def output_size(self):
        """Width of the output, the last size."""
        return self._call(lib.fan_net_output_size)

    @property
    def num_params(self):
        """Number of trainable parameters: every W and b."""
        return self._call(lib.fan_net_num_params)

    @property
    def sizes(self):
        """The layer widths as a tuple, inputs first."""
        with self._lock:
            n = self.num_layers
            return tuple([self.input_size] + [self.layer_outputs(l) for l in range(n)])

    def _layer_shape(self, layer):
        layer = B.size_arg(layer, "layer")
        with self._lock:
            if not 0 <= layer < self.num_layers:
                raise FanoiseValueError(Status.E_INVALID, f"layer: {layer} is not in [0, "
                                                          f"{self.num_layers})")
            return self.layer_outputs(layer), self.layer_inputs(layer)

    # ---- parameters --------------------------------------------------------------------------
    def _get_pair(self, fn, layer):
        rows, cols = self._layer_shape(layer)
        wp, wn, w = B.floats_out((rows, cols))
        bp, bn, b = B.floats_out((rows,))
        self._checked(fn, layer, wp, wn, bp, bn)
        return w, b

    def _set_pair(self, fn, layer, w, b, names):
        rows, cols = self._layer_shape(layer)
        wb = B.floats_in(w, names[0], rows * cols, (rows, cols)) if w is not None else None
        bb = B.floats_in(b, names[1], rows, (rows,)) if b is not None else None
        self._checked(fn, layer, wb.ptr if wb else None, wb.size if wb else 0,
                      bb.ptr if bb else None, bb.size if bb else 0)

    def weights(self, layer):
        """(W_l, b_l): W_l is outputs x inputs."""
        return self._get_pair(lib.fan_net_get_weights, layer)

    def set_weights(self, layer, w=None, b=None):
        """Replaces W_l (outputs x inputs) and/or b_l (outputs); None leaves that part as it is.
        Values must be finite."""
        self._set_pair(lib.fan_net_set_weights, layer, w, b, ("w", "b"))

    def gradients(self, layer):
        """(dW_l, db_l) of the last gradient computation."""
        return self._get_pair(lib.fan_net_get_gradients, layer)

    def set_gradients(self, layer, dw=None, db=None):
        """Replaces the stored dW_l and/or db_l (None leaves that part), for instance with
        gradients computed outside the library; the next Optimizer.step applies them."""
        self._set_pair(lib.fan_net_set_gradients, layer, dw, db, ("dw", "db"))

    def feedback_shape(self, layer):
        """(rows, cols) of B_l under the net's rule: W_l's shape, or (outputs, inputs) for DFA."""
        layer = B.size_arg(layer, "layer")
        self._layer_shape(layer)
        rows, cols = c_size_t(), c_size_t()
        self._checked(lib.fan_net_feedback_shape, layer, byref(rows), byref(cols))
        return rows.value, cols.value

    def feedback(self, layer):
        """The feedback matrix of layer `layer` as the rule's error pass uses it now."""
        with self._lock:
            rows, cols = self.feedback_shape(layer)
            p, n, out = B.floats_out((rows, cols))
            self._checked(lib.fan_net_get_feedback, layer, p, n)
        return out

    def set_feedback(self, layer, fb):
        """Replaces the stored B_l (shape: feedback_shape(layer))."""
        rows, cols = self.feedback_shape(layer)
        buf = B.floats_in(fb, "B", rows * cols, (rows, cols))
        self._checked(lib.fan_net_set_feedback, layer, buf.ptr, buf.size)

    def mirror(self, steps, batch, lr, weight_decay=0.0, seed=0):
        """Weight mirroring (Akrout et al. 2019): trains every stored B_l toward W_l."""
        self._checked(lib.fan_net_mirror, B.size_arg(steps, "steps"), B.size_arg(batch, "batch"),
                      B.float_arg(lr, "lr"), B.float_arg(weight_decay, "weight_decay"),
                      B.u64_arg(seed, "seed"))

    # ---- computation -------------------------------------------------------------------------
    def _rows(self, x):
        buf = B.floats_in(x, "x")
        return buf, B.rows_of(buf, self.input_size, "x")

    def forward(self, x):
        """Softmax probabilities (cross-entropy) or output activations (MSE), n x outputs."""
        xb, n = self._rows(x)
        p, pn, out = B.floats_out((n, self.output_size))
        self._checked(lib.fan_net_forward, xb.ptr, n, p, pn)
        return out

    def compute_gradients(self, x, labels):
        """Stores the gradients of the batch's mean loss; returns the loss."""
        xb, n = self._rows(x)
        lb = B.int32s_in(labels, "labels", n)
        loss = c_float()
        self._checked(lib.fan_net_compute_gradients, xb.ptr, lb.ptr, n, byref(loss))
        return loss.value

    def _targets(self, targets, n):
        c = self.output_size
        return B.floats_in(targets, "targets", n * c, (n, c))

    def compute_gradients_targets(self, x, targets):
        """As compute_gradients with soft targets: n rows of output_size floats (probabilities
        under cross-entropy, regression targets under MSE). Returns the batch loss."""
        xb, n = self._rows(x)
        tb = self._targets(targets, n)
        loss = c_float()
        self._checked(lib.fan_net_compute_gradients_targets, xb.ptr, tb.ptr, n, byref(loss))
        return loss.value

    def loss_value(self, x, labels):
        """Mean loss of a batch; stores no gradients."""
        xb, n = self._rows(x)
        lb = B.int32s_in(labels, "labels", n)
        loss = c_double()
        self._checked(lib.fan_net_loss_value, xb.ptr, lb.ptr, n, byref(loss))
        return loss.value

    def train_batch(self, opt, x, labels):
        """Forward, gradients by the net's rule, one optimizer step; returns the batch loss."""
        xb, n = self._rows(x)
        lb = B.int32s_in(labels, "labels", n)
        loss = c_float()
        self._checked(lib.fan_net_train_batch, opt, xb.ptr, lb.ptr, n, byref(loss))
        return loss.value

    def train_batch_targets(self, opt, x, targets):
        """As train_batch with soft targets (n rows of output_size floats); returns the batch loss."""
        xb, n = self._rows(x)
        tb = self._targets(targets, n)
        loss = c_float()
        self._checked(lib.fan_net_train_batch_targets, opt, xb.ptr, tb.ptr, n, byref(loss))
        return loss.value

    # ---- training loops ----------------------------------------------------------------------
    def _loop(self, fn, opt, it, count, callback, what):
        count = B.size_arg(count, what)
        cb = _Callback(callback)
        # The loop holds the locks of net, optimizer, iterator and its dataset, and pins them:
        # a callback may use them, but closing one raises until the loop has returned.
        with using(self, opt, it, pin=True) as (np_, op, ip):
            st = fn(np_, op, ip, count, cb.cfn, None)
            msg = lib.fan_net_errmsg(np_) if st not in (Status.OK, Status.STOPPED) else None
        cb.reraise()
        return check(st, (lambda _h: msg), np_)

    def train(self, opt, it, epochs, callback=None, *, validation=None, patience=0,
              restore_best=False, min_delta=0.0):
        """Trains for `epochs` epochs of a batch iterator. callback(Progress) is called after
        every step; a true return stops the loop. With a validation Dataset (fan_train_v2) it
        is evaluated after every epoch (Progress.val_loss, .val_accuracy), training stops after
        `patience` epochs without improvement (0: never) and restore_best puts the best epoch's
        weights back. Returns Status.OK, Status.STOPPED or Status.EARLY_STOPPED."""
        if validation is None and not patience and not restore_best and not min_delta:
            return self._loop(lib.fan_train, opt, it, epochs, callback, "epochs")
        epochs = B.size_arg(epochs, "epochs")
        cb = _Callback(callback)
        handles = (self, opt, it) + ((validation,) if validation is not None else ())
        with using(*handles, pin=True) as ptrs:
            o = fan_train_options(ctypes.sizeof(fan_train_options),
                                  ptrs[3] if validation is not None else None,
                                  B.size_arg(patience, "patience"), 1 if restore_best else 0,
                                  B.float_arg(min_delta, "min_delta"))
            st = lib.fan_train_v2(ptrs[0], ptrs[1], ptrs[2], epochs, byref(o), cb.cfn, None)
            msg = lib.fan_net_errmsg(ptrs[0])
        cb.reraise()
        return check(st, (lambda _h: msg), ptrs[0])

    def train_steps(self, opt, it, steps, callback=None):
        """Trains for exactly `steps` batches from any iterator."""
        return self._loop(lib.fan_train_steps, opt, it, steps, callback, "steps")

    def pretrain_noise(self, opt, noise, steps, callback=None):
        """Random-noise pretraining: `steps` batches from a noise iterator."""
        return self._loop(lib.fan_pretrain_noise, opt, noise, steps, callback, "steps")

    def evaluate(self, ds):
        """(mean loss, accuracy) over a dataset."""
        loss, acc = c_double(), c_double()
        self._checked(lib.fan_net_evaluate, ds, byref(loss), byref(acc))
        return loss.value, acc.value

    # ---- persistence -------------------------------------------------------------------------
    def save(self, path):
        """Saves the network (settings, seeds, W, b and B; not gradients or optimizer state) to
        path in the format of docs/file-format.md. The file is replaced atomically: a failure
        leaves the old one as it was."""
        self._checked(lib.fan_net_save, os.fsencode(path))

    def to_bytes(self):
        """The bytes save() would write, as a bytes object."""
        with self._lock:  # one lock across both calls: the size cannot change in between
            need = c_size_t()
            self._checked(lib.fan_net_save_mem, None, 0, byref(need))
            buf = ctypes.create_string_buffer(need.value)
            written = c_size_t()
            self._checked(lib.fan_net_save_mem, buf, need.value, byref(written))
        return buf.raw[:written.value]

    @classmethod
    def _load(cls, path, data, max_load_bytes):
        out = NET()
        msg = ctypes.create_string_buffer(_ERRMSG_CAP)
        budget = 0 if max_load_bytes is None else B.u64_arg(max_load_bytes, "max_load_bytes")
        opts = create_options(msg, budget)
        if path is not None:
            st = lib.fan_net_load_ex(byref(out), os.fsencode(path), byref(opts))
        else:
            ptr, n, keep = B.bytes_in(data)
            st = lib.fan_net_load_mem_ex(byref(out), ptr, n, byref(opts))
            del keep
        if st != Status.OK:
            raise FanoiseError(st, msg.value.decode(errors="replace") or
                               lib.fan_strerror(st).decode())
        return cls(_ptr=out)

    @classmethod
    def load(cls, path, *, max_load_bytes=None):
        """Loads a network saved by save()."""
        return cls._load(path, None, max_load_bytes)

    @classmethod
    def from_bytes(cls, data, *, max_load_bytes=None):
        """Loads a network from to_bytes() output."""
        return cls._load(None, data, max_load_bytes)

    def __repr__(self):
        if self.closed:
            return "<fanoise.Net closed>"
        return f"<fanoise.Net {'-'.join(map(str, self.sizes))} {self.rule.name}>"


__all__ = ["Net", "Progress"]
