"""Property-based tests of the binding's argument handling (Hypothesis): arrays of every numeric
dtype, memory order and shape give the results of the canonical float32 / int32 C-ordered
input; wrong shapes, non-integer labels and sizes, negative sizes and hostile values raise
ValueError or TypeError naming the argument (or FanoiseError from the library), never anything
else, never a crash."""
import math
import os
import tempfile
import unittest

from support import fanoise as fn, numpy as np

# Hypothesis caches data (its unicode tables) in ./.hypothesis unless told otherwise: keep the
# source tree clean.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), "fanoise-hypothesis"))

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # python3-hypothesis (scripts/install-deps.sh)
    given = None

NEEDS = "needs numpy and hypothesis"
ENABLED = np is not None and given is not None

if ENABLED:
    # Deterministic (the same examples on every run of `make check`), no example database in
    # the source tree, no timing assertions on a shared machine.
    SETTINGS = settings(max_examples=60, deadline=None, database=None, derandomize=True,
                        suppress_health_check=[HealthCheck.too_slow])
    NUMERIC = st.sampled_from([np.float32, np.float64, np.float16, np.int8, np.int16, np.int32,
                               np.int64, np.uint8, np.uint16, np.uint32, np.uint64])
    INTS = st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                            np.uint32, np.uint64])

    def reorder(arr, how):
        """The same values in another memory layout: C, Fortran, or a strided view."""
        if how == "F":
            return np.asfortranarray(arr)
        if how == "strided":
            wide = np.repeat(arr, 2, axis=-1) if arr.ndim else arr
            return wide[..., ::2]
        return np.ascontiguousarray(arr)

    ORDERS = st.sampled_from(["C", "F", "strided"])
    FLOATS = st.sampled_from([np.float32, np.float64])
else:
    class _Absent:
        """Stands for hypothesis' modules so that the decorators below evaluate; the classes
        that use them are skipped."""

        def __getattr__(self, name):
            return lambda *a, **k: None

    def SETTINGS(f):
        return f

    def given(*_a, **_k):
        return lambda f: f

    st = hnp = _Absent()
    NUMERIC = INTS = ORDERS = FLOATS = None

# Exceptions an argument may legitimately raise: the binding's own and the library's.
REFUSALS = (ValueError, TypeError, fn.FanoiseError)


class _Cases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.net = fn.Net([5, 4, 3], weight_seed=3, feedback_seed=4)

    @classmethod
    def tearDownClass(cls):
        cls.net.close()


@unittest.skipUnless(ENABLED, NEEDS)
class TestArraysOfAnyLayout(_Cases):
    @SETTINGS
    @given(data=st.data(), dtype=NUMERIC, order=ORDERS, n=st.integers(1, 12))
    def test_forward_is_the_same_for_every_dtype_and_memory_order(self, data, dtype, order, n):
        info = np.finfo(dtype) if np.issubdtype(dtype, np.floating) else np.iinfo(dtype)
        lo, hi = max(float(info.min), -100.0), min(float(info.max), 100.0)
        values = data.draw(hnp.arrays(dtype, (n, 5), elements=st.floats(lo, hi, width=16)
                                      if dtype == np.float16 else
                                      (st.floats(lo, hi, width=32)
                                       if np.issubdtype(dtype, np.floating)
                                       else st.integers(int(lo), int(hi)))))
        x = reorder(values, order)
        ref = self.net.forward(np.ascontiguousarray(values, dtype=np.float32))
        out = self.net.forward(x)
        self.assertEqual(out.shape, (n, 3))
        self.assertEqual(out.tobytes(), ref.tobytes())
        # Nested lists of the same numbers too.
        self.assertEqual(self.net.forward(values.tolist()).tobytes(), ref.tobytes())

    @SETTINGS
    @given(data=st.data(), dtype=NUMERIC, order=ORDERS)
    def test_set_weights_keeps_values_and_refuses_other_shapes(self, data, dtype, order):
        with fn.Net([4, 6, 2]) as net:
            rows, cols = 6, 4
            small = st.integers(0, 20) if not np.issubdtype(dtype, np.floating) else \
                st.floats(-2, 2, width=16)
            w = data.draw(hnp.arrays(dtype, (rows, cols), elements=small))
            b = data.draw(hnp.arrays(dtype, (rows,), elements=small))
            net.set_weights(0, reorder(w, order), b)
            got_w, got_b = net.weights(0)
            self.assertEqual(got_w.tobytes(), w.astype(np.float32).tobytes())
            self.assertEqual(got_b.tobytes(), b.astype(np.float32).tobytes())
            # Flat input of the right length is row-major W.
            net.set_weights(0, w.ravel())
            self.assertEqual(net.weights(0)[0].tobytes(), w.astype(np.float32).tobytes())
            # The transpose has the right size and the wrong shape.
            with self.assertRaises(fn.FanoiseValueError) as cm:
                net.set_weights(0, reorder(w.T, order))
            self.assertIn("w:", str(cm.exception))
            self.assertEqual(cm.exception.status, fn.Status.E_SHAPE)
            with self.assertRaises(ValueError):
                net.set_feedback(0, w.T.copy())
            with self.assertRaises(ValueError):
                net.set_gradients(0, w.reshape(3, 8))
            with self.assertRaises(ValueError):
                net.set_weights(0, None, b.reshape(2, 3))
            self.assertEqual(net.weights(0)[0].tobytes(), w.astype(np.float32).tobytes())

    @SETTINGS
    @given(data=st.data(), dtype=INTS, order=ORDERS, n=st.integers(1, 10))
    def test_labels_of_every_integer_dtype_give_the_int32_result(self, data, dtype, order, n):
        labels = data.draw(hnp.arrays(dtype, (n,), elements=st.integers(0, 2)))
        x = np.linspace(-1, 1, n * 5, dtype=np.float32).reshape(n, 5)
        ref = self.net.loss_value(x, labels.astype(np.int32))
        self.assertEqual(self.net.loss_value(x, reorder(labels, order)), ref)
        # Integral floats are labels too; the same values as float64.
        self.assertEqual(self.net.loss_value(x, labels.astype(np.float64)), ref)


@unittest.skipUnless(ENABLED, NEEDS)
class TestRefusals(_Cases):
    @SETTINGS
    @given(n=st.integers(1, 8), frac=st.floats(0.01, 0.99), at=st.integers(0, 7),
           dtype=FLOATS)
    def test_non_integral_float_labels_raise_naming_labels(self, n, frac, at, dtype):
        labels = np.zeros(n, dtype=dtype)
        labels[at % n] = 1 + frac
        if labels[at % n] == 1.0:  # frac below the dtype's resolution at 1
            return
        x = np.zeros((n, 5), np.float32)
        with self.assertRaises(fn.FanoiseValueError) as cm:
            self.net.compute_gradients(x, labels)
        self.assertEqual(cm.exception.status, fn.Status.E_LABEL)
        self.assertIn("labels", str(cm.exception))
        for bad in (np.nan, np.inf, -1e10):
            labels[at % n] = bad
            with self.assertRaises(ValueError):
                self.net.loss_value(x, labels)

    @SETTINGS
    @given(sizes=st.lists(st.one_of(st.integers(-5, 40), st.floats(allow_nan=True),
                                    st.booleans(), st.text(max_size=3), st.none()),
                          min_size=0, max_size=5))
    def test_net_sizes_are_integers_or_refused(self, sizes):
        def is_int(s):
            return isinstance(s, int) and not isinstance(s, bool)

        all_ints = all(is_int(s) for s in sizes)
        # The first element that is not a size decides the error, and is named.
        first_bad = next((i for i, s in enumerate(sizes) if not is_int(s) or s < 0), None)
        try:
            net = fn.Net(sizes)
        except REFUSALS as e:
            if first_bad is not None:
                bad = sizes[first_bad]
                self.assertIsInstance(e, ValueError if is_int(bad) else TypeError)
                self.assertIn(f"sizes[{first_bad}]", str(e))
            return
        self.assertTrue(all_ints and len(sizes) >= 2 and min(sizes) >= 1)
        self.assertEqual(list(net.sizes), sizes)
        net.close()

    @SETTINGS
    @given(value=st.one_of(st.integers(max_value=-1), st.floats(), st.booleans(), st.text(),
                           st.integers(min_value=1 << 64, max_value=1 << 70)))
    def test_size_arguments_refuse_negative_fractional_and_huge_values(self, value):
        with fn.Dataset.from_arrays(np.zeros((4, 5), np.float32), [0, 1, 2, 0]) as ds:
            with self.assertRaises(REFUSALS) as cm:
                fn.Iter.batches(ds, value)
            self.assertIn("batch", str(cm.exception))
            with self.assertRaises(REFUSALS):
                fn.Iter.noise(5, 3, value)
            with self.assertRaises(REFUSALS):
                ds.subset_first(value)
            with self.assertRaises(REFUSALS):
                self.net.weights(value)
            with self.assertRaises(REFUSALS):
                fn.singular_values(self.net, value)
        with fn.Optimizer(self.net) as opt, fn.Iter.noise(5, 3, 2) as it:
            with self.assertRaises(REFUSALS) as cm:
                self.net.train_steps(opt, it, value)
            self.assertIn("steps", str(cm.exception))
            self.assertEqual(opt.steps, 0)

    # Values that are not arrays of numbers, each of which once crashed, hung or was silently
    # reinterpreted somewhere in the binding.
    HOSTILE = ["abcd", b"", "", None, {"a": 1}, {1, 2}, object(), [1, "2"], [[1, 2], [3]],
               [[[]]], 1 + 2j, [1 + 2j] * 5, True, [True] * 5, [10 ** 400] * 5,
               [float("nan")] * 5, ["x"] * 5]

    def hostile_values(self):
        ring = []
        ring.append(ring)  # a list that contains itself
        arrays = [np.array(["a"] * 5), np.array([1 + 1j] * 5), np.ones(5, dtype=bool),
                  np.array([None] * 5, dtype=object), np.array(["1.0"] * 5, dtype=object),
                  np.zeros((0, 5)), np.zeros((1, 5, 1)), np.array("abcde"),
                  np.datetime64("2024-01-01")]
        return self.HOSTILE + [ring] + arrays

    def test_hostile_inputs_raise_documented_errors_only(self):
        with fn.Optimizer(self.net) as opt:
            for v in self.hostile_values():
                calls = [lambda: self.net.forward(v),
                         lambda: self.net.compute_gradients(np.zeros((5, 5), np.float32), v),
                         lambda: self.net.set_weights(0, v),
                         lambda: self.net.train_batch(opt, v, [0]),
                         lambda: fn.Dataset.from_arrays(v, [0]),
                         lambda: fn.Dataset.from_u8(v, [0], 5, 1),
                         lambda: fn.readout(self.net, v),
                         lambda: fn.matrix_singular_values(v),
                         lambda: fn.Net.from_bytes(v),
                         lambda: fn.Dataset.load_csv_bytes(v)]
                for k, call in enumerate(calls):
                    with self.subTest(value=repr(v)[:40], call=k):
                        try:
                            call()
                        except REFUSALS:
                            pass
            self.assertEqual(opt.steps, 0)
            self.assertEqual(self.net.weights(0)[0].tobytes(),
                             fn.Net([5, 4, 3], weight_seed=3).weights(0)[0].tobytes())

    def test_the_audits_examples_raise_value_or_type_errors_naming_the_argument(self):
        with self.assertRaises(TypeError) as cm:
            fn.Net([4, 3.5, 2])
        self.assertIn("sizes[1]", str(cm.exception))
        with self.assertRaises(TypeError) as cm:
            self.net.forward("abcd")
        self.assertIn("x:", str(cm.exception))
        with fn.Dataset.from_arrays(np.zeros((4, 5), np.float32), [0, 1, 2, 0]) as ds:
            with self.assertRaises(ValueError) as cm:
                fn.Iter.batches(ds, -1)
            self.assertIn("batch", str(cm.exception))
        with self.assertRaises(ValueError) as cm:
            self.net.compute_gradients(np.zeros((2, 5), np.float32), np.array([0.5, 1.0]))
        self.assertIn("labels", str(cm.exception))
        with fn.Net([3, 4]) as net:
            with self.assertRaises(ValueError) as cm:
                net.set_weights(0, np.zeros((3, 4), np.float32))  # W is 4 x 3
            self.assertIn("w:", str(cm.exception))
        with self.assertRaises(ValueError):
            fn.Dataset.from_u8(np.array([300, 1, 2, 3]), [0], 4, 1)
        self.assertTrue(math.isfinite(self.net.loss_value(np.zeros((1, 5)), [np.int64(2)])))


if __name__ == "__main__":
    unittest.main()
