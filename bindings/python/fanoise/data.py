"""Dataset and Iter: samples with labels, and streams of batches (shuffled epochs or noise)."""
import ctypes
import os
from collections import namedtuple
from ctypes import POINTER, byref, c_char_p, c_double, c_float, c_int32, c_size_t

from . import _buffers as B
from ._handle import Handle, _Held, using
from ._lib import DS, IT, create_options, lib
from .constants import (CSV_LAST_COLUMN, IterParam, LabelMode, NoiseKind, Norm, Status)
from .errors import FanoiseError, FanoiseValueError, check

Batch = namedtuple("Batch", "x labels targets")
Batch.__doc__ = ("One batch: x (n x dim floats); labels (n class indices, None with soft "
                 "labels); targets (n x classes floats with soft labels, else None).")


# Bytes of the loaders' message buffer (the library's own messages are shorter).
_ERRMSG_CAP = 512


def _new_dataset(fn, args, what):
    out = DS()
    check(fn(byref(out), *args), what=what)
    return Dataset(_ptr=out)


def _load_dataset(fn, args, what, max_load_bytes):
    """Runs an _ex loader with a message buffer and the load budget (None: the library's
    default); a failure raises with the loader's own message."""
    msg = ctypes.create_string_buffer(_ERRMSG_CAP)
    budget = 0 if max_load_bytes is None else B.u64_arg(max_load_bytes, "max_load_bytes")
    opts = create_options(msg, budget)
    out = DS()
    st = fn(byref(out), *args, byref(opts))
    if st != Status.OK:
        text = msg.value.decode(errors="replace") or lib.fan_strerror(st).decode()
        raise FanoiseError(st, f"{what}: {text}")
    return Dataset(_ptr=out)


class Dataset(Handle):
    """A dataset (fan_dataset). Build one with a classmethod: from_arrays, from_u8, load_idx,
    load_idx_bytes, load_cifar, load_cifar_bytes, load_csv, load_csv_bytes.

    Iterators borrow the C dataset; close() while an iterator still uses it only marks the
    Dataset closed, and the memory is freed when the last such iterator is closed."""

    _free = lib.fan_dataset_free
    _errmsg = lib.fan_dataset_errmsg

    def __init__(self, *, _ptr):
        super().__init__(_ptr)
        self._users = 0
        self._pending_ptr = None  # freed when the last iterator lets go

    # ---- lifetime shared with iterators ------------------------------------------------------
    def _pin(self):
        with self._lock:
            ptr = self._live()
            self._users += 1
            return ptr

    def _unpin(self):
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._pending_ptr is not None:
                ptr, self._pending_ptr = self._pending_ptr, None
                lib.fan_dataset_free(ptr)

    def close(self):
        """Frees the dataset now. While an iterator still reads it the Dataset is only marked
        closed, and the memory is freed when the last such iterator is closed. Idempotent."""
        with self._lock:
            self._check_not_in_loop()
            if self._ptr is not None and getattr(self, "_users", 0) > 0:
                self._pending_ptr, self._ptr = self._ptr, None
                return
            super().close()

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, x, labels, n_classes=None, dim=None):
        """Copies n rows of dim floats and n labels. x may be 2-D (n x dim) or flat with dim
        given. n_classes defaults to max label + 1."""
        xb = B.floats_in(x, "x")
        lb = B.int32s_in(labels, "labels")
        n = lb.size
        if dim is None:
            dim = xb.shape[-1] if len(xb.shape) >= 2 else (xb.size // n if n else 0)
        dim = B.size_arg(dim, "dim")
        if n == 0 or dim == 0 or xb.size != n * dim:
            raise FanoiseValueError(Status.E_SHAPE, f"x has {xb.size} values; {n} labels of "
                                                    f"dim {dim} need {n * dim}")
        if len(xb.shape) >= 2 and xb.shape[-1] != dim:
            raise FanoiseValueError(Status.E_SHAPE, f"x: rows have {xb.shape[-1]} values; dim "
                                                    f"is {dim}")
        n_classes = _max_label(lb) + 1 if n_classes is None else B.size_arg(n_classes,
                                                                             "n_classes")
        return _new_dataset(lib.fan_dataset_from_arrays,
                            (xb.ptr, lb.ptr, n, dim, n_classes, None),
                            f"fan_dataset_from_arrays(n={n}, dim={dim}, classes={n_classes})")

    @classmethod
    def from_u8(cls, pixels, labels, width, height, channels=1, n_classes=None):
        """Copies n uint8 images (channel-planar) and n labels."""
        lb = B.int32s_in(labels, "labels")
        n = lb.size
        width, height = B.size_arg(width, "width"), B.size_arg(height, "height")
        channels = B.size_arg(channels, "channels")
        pb = B.u8s_in(pixels, "pixels", n * width * height * channels)
        n_classes = _max_label(lb) + 1 if n_classes is None else B.size_arg(n_classes,
                                                                             "n_classes")
        return _new_dataset(lib.fan_dataset_from_u8,
                            (pb.ptr, lb.ptr, n, width, height, channels, n_classes, None),
                            f"fan_dataset_from_u8(n={n}, {width}x{height}x{channels})")

    @classmethod
    def load_idx(cls, images_path, labels_path, *, max_load_bytes=None):
        """IDX files (MNIST family), gzipped or raw."""
        return _load_dataset(lib.fan_dataset_load_idx_ex,
                             (os.fsencode(images_path), os.fsencode(labels_path)),
                             f"fan_dataset_load_idx({images_path!r}, {labels_path!r})",
                             max_load_bytes)

    @classmethod
    def load_idx_bytes(cls, images, labels, *, max_load_bytes=None):
        """As load_idx from two bytes-like objects holding the files' contents (raw or gzip)."""
        ip, il, ik = B.bytes_in(images, "images")
        lp, ll, lk = B.bytes_in(labels, "labels")
        return _load_dataset(lib.fan_dataset_load_idx_mem_ex, (ip, il, lp, ll),
                             "fan_dataset_load_idx_mem", max_load_bytes)

    @classmethod
    def load_cifar(cls, paths, label_bytes=1, *, max_load_bytes=None):
        """CIFAR binary batches (label_bytes 1 for CIFAR-10, 2 for CIFAR-100)."""
        if isinstance(paths, (str, bytes, os.PathLike)):
            paths = [paths]
        enc = [os.fsencode(p) for p in paths]
        arr = (c_char_p * len(enc))(*enc)
        return _load_dataset(lib.fan_dataset_load_cifar_ex,
                             (arr, len(enc), B.size_arg(label_bytes, "label_bytes")),
                             f"fan_dataset_load_cifar({list(paths)!r})", max_load_bytes)

    @classmethod
    def load_cifar_bytes(cls, data, label_bytes=1, *, max_load_bytes=None):
        """As load_cifar from one bytes-like object holding whole records."""
        p, n, keep = B.bytes_in(data)
        return _load_dataset(lib.fan_dataset_load_cifar_mem_ex,
                             (p, n, B.size_arg(label_bytes, "label_bytes")),
                             "fan_dataset_load_cifar_mem", max_load_bytes)

    @classmethod
    def load_csv(cls, path, label_column=CSV_LAST_COLUMN, skip_header=False, *,
                 max_load_bytes=None):
        """A CSV file, plain or gzipped: one sample per line, numeric fields, one integer label
        column (label_column, 0-based, or CSV_LAST_COLUMN); skip_header skips the first line.
        Values stay as they are (Norm.NONE)."""
        return _load_dataset(lib.fan_dataset_load_csv_ex,
                             (os.fsencode(path), B.size_arg(label_column, "label_column"),
                              int(bool(skip_header))),
                             f"fan_dataset_load_csv({path!r})", max_load_bytes)

    @classmethod
    def load_csv_bytes(cls, data, label_column=CSV_LAST_COLUMN, skip_header=False, *,
                       max_load_bytes=None):
        """As load_csv from a bytes-like object (plain or gzip)."""
        p, n, keep = B.bytes_in(data)
        return _load_dataset(lib.fan_dataset_load_csv_mem_ex,
                             (p, n, B.size_arg(label_column, "label_column"),
                              int(bool(skip_header))),
                             "fan_dataset_load_csv_mem", max_load_bytes)

    # ---- accessors ---------------------------------------------------------------------------
    def __len__(self):
        return self._call(lib.fan_dataset_size)

    @property
    def size(self):
        """Number of samples (also len(dataset))."""
        return self._call(lib.fan_dataset_size)

    @property
    def dim(self):
        """Floats per sample: width * height * channels."""
        return self._call(lib.fan_dataset_dim)

    @property
    def classes(self):
        """Number of classes."""
        return self._call(lib.fan_dataset_classes)

    @property
    def shape(self):
        """(width, height, channels)."""
        w, h, c = c_size_t(), c_size_t(), c_size_t()
        self._checked(lib.fan_dataset_shape, byref(w), byref(h), byref(c))
        return w.value, h.value, c.value

    def set_shape(self, width, height, channels=1):
        """Sets the image shape; width * height * channels must equal dim."""
        self._checked(lib.fan_dataset_set_shape, B.size_arg(width, "width"),
                      B.size_arg(height, "height"), B.size_arg(channels, "channels"))

    def set_normalization(self, norm, mean=0.0, std=1.0):
        """Chooses how stored values become batch floats: a Norm, and for Norm.STANDARDIZE the mean
        and std applied after scaling."""
        self._checked(lib.fan_dataset_set_normalization, B.enum_arg(norm, "norm"),
                      B.float_arg(mean, "mean"), B.float_arg(std, "std"))

    def standardize(self, mean, std):
        """Shorthand for set_normalization(Norm.STANDARDIZE, mean, std)."""
        self.set_normalization(Norm.STANDARDIZE, mean, std)

    def compute_stats(self):
        """(mean, std) of all stored values after scaling."""
        m, s = c_double(), c_double()
        self._checked(lib.fan_dataset_compute_stats, byref(m), byref(s))
        return m.value, s.value

    def get(self, index):
        """(x, label) of one sample, normalised."""
        p, n, x = B.floats_out((self.dim,))
        label = c_int32()
        self._checked(lib.fan_dataset_get, B.size_arg(index, "index"), p, n, byref(label))
        return x, label.value

    def class_counts(self):
        """Samples per class, as a list of classes counts."""
        with self._lock:
            n = self.classes
            counts = (c_size_t * n)()
            self._checked(lib.fan_dataset_class_counts, counts, n)
        return list(counts)

    # ---- derived datasets --------------------------------------------------------------------
    def _derive(self, fn, *args):
        out = DS()
        with using(self) as (p,):
            self._check(fn(byref(out), p, *args))
        return Dataset(_ptr=out)

    def subset_first(self, n):
        """A new dataset of the first n samples (same shape, classes and normalisation)."""
        return self._derive(lib.fan_dataset_subset_first, B.size_arg(n, "n"))

    def subset_random(self, n, seed):
        """A new dataset of n samples drawn without replacement by seed, in drawn order."""
        return self._derive(lib.fan_dataset_subset_random, B.size_arg(n, "n"),
                            B.u64_arg(seed, "seed"))

    def subset_stratified(self, n_per_class, seed):
        """A new dataset of n_per_class samples of every class, drawn by seed, in source order."""
        return self._derive(lib.fan_dataset_subset_stratified,
                            B.size_arg(n_per_class, "n_per_class"), B.u64_arg(seed, "seed"))

    def subset_indices(self, indices):
        """A new dataset of the listed samples in the listed order (repeats allowed)."""
        idx = B.sizes_in(indices, "indices")
        return self._derive(lib.fan_dataset_subset_indices, idx, len(idx))

    def split(self, n_val, seed):
        """(train, val): n_val random samples for validation, the rest for training."""
        tr, va = DS(), DS()
        n_val, seed = B.size_arg(n_val, "n_val"), B.u64_arg(seed, "seed")
        with using(self) as (p,):
            self._check(lib.fan_dataset_split(byref(tr), byref(va), p, n_val, seed))
        return Dataset(_ptr=tr), Dataset(_ptr=va)

    def split_stratified(self, n_val, seed):
        """(train, val): n_val samples for validation drawn per class in proportion to the
        class sizes; both parts keep source order."""
        tr, va = DS(), DS()
        n_val, seed = B.size_arg(n_val, "n_val"), B.u64_arg(seed, "seed")
        with using(self) as (p,):
            self._check(lib.fan_dataset_split_stratified(byref(tr), byref(va), p, n_val, seed))
        return Dataset(_ptr=tr), Dataset(_ptr=va)

    def translate(self, dx, dy):
        """A new dataset with every image moved by (dx, dy) pixels (x right, y down; fractions
        interpolate; uncovered areas are 0)."""
        return self._derive(lib.fan_dataset_translate, B.float_arg(dx, "dx"),
                            B.float_arg(dy, "dy"))

    def rotate(self, degrees):
        """A new dataset with every image turned by `degrees` counter-clockwise about its centre."""
        return self._derive(lib.fan_dataset_rotate, B.float_arg(degrees, "degrees"))

    def scale(self, factor):
        """A new dataset with every image zoomed by `factor` about its centre (> 1 enlarges)."""
        return self._derive(lib.fan_dataset_scale, B.float_arg(factor, "factor"))

    def resize(self, width, height):
        """A new dataset with every image resampled to width x height (bilinear, edges clamped)."""
        return self._derive(lib.fan_dataset_resize, B.size_arg(width, "width"),
                            B.size_arg(height, "height"))

    def __repr__(self):
        if self.closed:
            return "<fanoise.Dataset closed>"
        return f"<fanoise.Dataset {self.size} x {self.dim}, {self.classes} classes>"


def _max_label(buf):
    """Largest value of an int32 input buffer (for the default class count)."""
    return max(buf.ptr[:buf.size]) if buf.size else -1


class Iter(Handle):
    """A stream of batches (fan_iter): Iter.batches(ds, batch, seed) for shuffled epochs,
    Iter.noise(dim, classes, batch, seed) for the endless noise source.

    Iterating a batch iterator with `for` yields one epoch of Batch tuples; next_batch() returns
    None at the end of an epoch. Batches are copies, safe to keep."""

    _free = lib.fan_iter_free
    _errmsg = lib.fan_iter_errmsg

    def __init__(self, *, _ptr, dataset=None):
        super().__init__(_ptr)
        self._dataset = dataset  # keeps the Python object, and so the C dataset, alive

    def _deps(self):
        # fan_iter_next reads the dataset: a call on the iterator is also one on its dataset.
        ds = self._dataset
        return (ds,) if ds is not None else ()

    @classmethod
    def batches(cls, ds, batch, seed=0, *, shuffle=True, drop_last=False):
        """Shuffled mini-batches over ds, one epoch per pass, the order drawn from seed.
        shuffle=False keeps dataset order; drop_last=True drops a final partial batch. The
        iterator keeps ds alive."""
        batch, seed = B.size_arg(batch, "batch"), B.u64_arg(seed, "seed")
        out = IT()
        with ds._lock:
            dsp = ds._pin()
            try:
                check(lib.fan_iter_create_batches(byref(out), dsp, batch, seed, None),
                      what=f"fan_iter_create_batches(batch={batch})")
            except BaseException:
                ds._unpin()
                raise
        it = cls(_ptr=out, dataset=ds)
        if not shuffle:
            it.set(IterParam.SHUFFLE, 0)
        if drop_last:
            it.set(IterParam.DROP_LAST, 1)
        return it

    @classmethod
    def noise(cls, dim, n_classes, batch, seed=0, *, kind=NoiseKind.GAUSSIAN, mean=0.0,
              std=1.0, label_mode=LabelMode.HARD):
        """An endless noise source: every batch has fresh inputs (kind Gaussian or uniform, with
        mean and std) and labels drawn uniformly from n_classes (label_mode HARD), or soft
        targets 1/C (SOFT)."""
        dim, n_classes = B.size_arg(dim, "dim"), B.size_arg(n_classes, "n_classes")
        batch, seed = B.size_arg(batch, "batch"), B.u64_arg(seed, "seed")
        out = IT()
        check(lib.fan_iter_create_noise(byref(out), dim, n_classes, batch, seed, None),
              what=f"fan_iter_create_noise(dim={dim}, classes={n_classes}, batch={batch})")
        it = cls(_ptr=out)
        for p, v, d in ((IterParam.NOISE_KIND, kind, NoiseKind.GAUSSIAN),
                        (IterParam.NOISE_MEAN, mean, 0.0), (IterParam.NOISE_STD, std, 1.0),
                        (IterParam.LABEL_MODE, label_mode, LabelMode.HARD)):
            if v != d:
                it.set(p, v)
        return it

    def close(self):
        """Frees the iterator now, and lets go of the dataset it read. Idempotent."""
        # The iterator's and its dataset's locks, in the global order (see _handle.py).
        with _Held([self]):
            self._check_not_in_loop()
            had = self._ptr is not None
            super().close()
            if had and self._dataset is not None:
                ds, self._dataset = self._dataset, None
                ds._unpin()

    def set(self, param, value):
        """Changes a setting (an IterParam)."""
        self._checked(lib.fan_iter_set, B.enum_arg(param, "param"), B.float_arg(value, "value"))

    def get(self, param):
        """Reads a setting (an IterParam) as a float."""
        v = c_double()
        self._checked(lib.fan_iter_get, B.enum_arg(param, "param"), byref(v))
        return v.value

    @property
    def state(self):
        """Where the iterator is (fan_iter_get_state), as bytes for set_state()."""
        with self._lock:  # one lock across both calls: the state cannot change in between
            need = c_size_t()
            self._checked(lib.fan_iter_get_state, None, 0, byref(need))
            buf = ctypes.create_string_buffer(need.value)
            written = c_size_t()
            self._checked(lib.fan_iter_get_state, buf, need.value, byref(written))
        return buf.raw[:written.value]

    def set_state(self, data):
        """Continues from a state of an iterator of the same kind and sizes."""
        ptr, n, keep = B.bytes_in(data)
        self._checked(lib.fan_iter_set_state, ptr, n)
        del keep

    @property
    def epoch(self):
        """Epochs finished since creation or reset (restored by set_state)."""
        return self._call(lib.fan_iter_epoch)

    def next_batch(self):
        """The next Batch, or None at the end of an epoch (the next call starts a new one)."""
        x, labels, targets = POINTER(c_float)(), POINTER(c_int32)(), POINTER(c_float)()
        n = c_size_t()
        # The batch views are borrowed until the next call on the iterator: copy them while
        # the lock keeps other threads from making that call.
        with using(self) as (p,):
            st = self._check(lib.fan_iter_next(p, byref(x), byref(labels), byref(targets),
                                               byref(n)))
            if st == Status.DONE:
                return None
            rows = n.value
            xs = B.copy_floats(x, (rows, lib.fan_iter_dim(p)))
            ls = B.copy_int32s(labels, rows) if labels else None
            ts = B.copy_floats(targets, (rows, lib.fan_iter_classes(p))) if targets else None
        return Batch(xs, ls, ts)

    def __iter__(self):
        if self.is_noise:
            raise FanoiseError(Status.E_INVALID, "a noise iterator is endless; use next_batch()")
        while True:
            b = self.next_batch()
            if b is None:
                return
            yield b

    def reset(self):
        """Restarts the stream from its seed."""
        self._checked(lib.fan_iter_reset)

    @property
    def is_noise(self):
        """True for a noise source, False for a batch iterator."""
        return bool(self._call(lib.fan_iter_is_noise))

    @property
    def dim(self):
        """Input width of the batches."""
        return self._call(lib.fan_iter_dim)

    @property
    def classes(self):
        """Number of classes of the labels."""
        return self._call(lib.fan_iter_classes)

    @property
    def batches_per_epoch(self):
        """Batches in one epoch (0 for a noise source)."""
        return self._call(lib.fan_iter_batches_per_epoch)

    def __repr__(self):
        if self.closed:
            return "<fanoise.Iter closed>"
        kind = "noise" if self.is_noise else f"{self.batches_per_epoch} batches/epoch"
        return f"<fanoise.Iter {kind}, dim {self.dim}, {self.classes} classes>"
