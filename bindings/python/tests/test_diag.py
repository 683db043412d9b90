"""Diagnostics through the binding, checked against direct computations in Python."""
import math
import unittest

from support import NumpyMode, as_list, fanoise as fn, numpy as np

SIZES = [6, 5, 4]


def angle(u, v):
    dot = sum(a * b for a, b in zip(u, v))
    nu, nv = math.sqrt(sum(a * a for a in u)), math.sqrt(sum(b * b for b in v))
    return math.degrees(math.acos(max(-1.0, min(1.0, dot / (nu * nv)))))


class TestDiagnostics(unittest.TestCase):
    def test_alignment_is_the_angle_between_columns_of_w_and_b(self):
        with fn.Net(SIZES, weight_seed=3, feedback_seed=4) as net, NumpyMode(False):
            w, fb = as_list(net.weights(1)[0]), as_list(net.feedback(1))
            rows, cols = 4, 5
            want = [angle(w[i::cols], fb[i::cols]) for i in range(cols)]
            a = fn.alignment(net, 1)
            for got, exp in zip(as_list(a.per_unit), want):
                self.assertAlmostEqual(got, exp, places=4)
            self.assertAlmostEqual(a.mean, sum(want) / cols, places=4)
            self.assertAlmostEqual(a.matrix, angle(w, fb), places=4)
            self.assertEqual(len(as_list(a.per_unit)), cols)
            self.assertEqual(rows * cols, len(w))

    def test_bp_sends_exactly_the_backprop_error(self):
        with fn.Net(SIZES, rule=fn.Rule.BP) as net:
            x = [[0.1 * i for i in range(6)], [0.2] * 6]
            self.assertEqual(as_list(fn.delta_alignment(net, x, [1, 3])), [0.0, 0.0])

    def test_principal_angles_vanish_when_feedback_equals_weights(self):
        with fn.Net(SIZES) as net:
            net.set_feedback(1, net.weights(1)[0])
            for deg in as_list(fn.principal_angles(net, 1, 3)):
                self.assertAlmostEqual(deg, 0.0, delta=1e-3)

    def test_spectrum_summary_of_known_singular_values(self):
        s = fn.spectrum_summary([3.0, 1.0])
        p = [0.75, 0.25]
        self.assertAlmostEqual(s.effective_rank, math.exp(-sum(q * math.log(q) for q in p)))
        self.assertAlmostEqual(s.participation_ratio, 100.0 / 82.0)
        self.assertAlmostEqual(s.stable_rank, 10.0 / 9.0)
        with self.assertRaises(fn.FanoiseError) as cm:
            fn.spectrum_summary([1.0, -1.0])
        self.assertEqual(cm.exception.status, fn.Status.E_INVALID)

    def test_spectrum_gives_the_values_and_every_summary_from_one_call(self):
        with fn.Net(SIZES, weight_seed=6) as net, NumpyMode(False):
            sv, summary = fn.spectrum(net, 0)
            self.assertEqual(as_list(sv), as_list(fn.singular_values(net, 0)))
            self.assertEqual(summary, fn.spectrum_summary(sv))
            self.assertEqual(summary.effective_rank, fn.effective_rank(net, 0))

    def test_net_spectra_agree_with_the_generic_matrix_functions(self):
        with fn.Net(SIZES, weight_seed=6) as net, NumpyMode(False):
            w = net.weights(0)[0]
            sv = fn.singular_values(net, 0)
            self.assertEqual(as_list(sv), as_list(fn.matrix_singular_values(w, 5, 6)))
            self.assertAlmostEqual(fn.effective_rank(net, 0),
                                   fn.spectrum_summary(sv).effective_rank, places=12)
            self.assertAlmostEqual(fn.stable_rank(net, 0), fn.matrix_stable_rank(w, 5, 6),
                                   places=12)
            self.assertAlmostEqual(fn.participation_ratio(net, 0, fn.Matrix.FEEDBACK),
                                   fn.matrix_participation_ratio(net.feedback(0), 5, 6),
                                   places=12)
            self.assertAlmostEqual(fn.matrix_effective_rank(w, 5, 6), fn.effective_rank(net, 0),
                                   places=12)

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_singular_values_match_numpy(self):
        with fn.Net(SIZES, weight_seed=6) as net, NumpyMode(True):
            w = net.weights(0)[0]
            want = np.linalg.svd(w.astype(np.float64), compute_uv=False)
            np.testing.assert_allclose(fn.singular_values(net, 0), want, rtol=1e-10)
            np.testing.assert_allclose(fn.matrix_singular_values(w), want, rtol=1e-10)

    def test_matrix_angle_of_a_matrix_with_itself_and_its_negative(self):
        a = [1.0, 2.0, -3.0, 0.5]
        self.assertAlmostEqual(fn.matrix_angle(a, a), 0.0, delta=1e-6)
        self.assertAlmostEqual(fn.matrix_angle(a, [-v for v in a]), 180.0, delta=1e-6)
        with self.assertRaises(fn.FanoiseError) as cm:
            fn.matrix_angle(a, a[:3])
        self.assertEqual(cm.exception.status, fn.Status.E_SHAPE)

    def test_readout_histogram_and_confidence(self):
        with fn.Net(SIZES, weight_seed=2) as net, NumpyMode(False):
            x = [[math.sin(i + j) for j in range(6)] for i in range(8)]
            r = fn.readout(net, x, n_bins=5)
            self.assertAlmostEqual(sum(as_list(r.hist)), 1.0, places=9)
            probs = as_list(net.forward(x))
            want = sum(max(probs[4 * i:4 * i + 4]) for i in range(8)) / 8
            self.assertAlmostEqual(r.mean_max_prob, want, places=5)
            self.assertLessEqual(r.mean_entropy, math.log(4) + 1e-9)

    def test_dataset_diagnostics_are_in_range(self):
        xs = [[math.cos(i * j) for j in range(6)] for i in range(12)]
        with fn.Net(SIZES) as net, fn.Dataset.from_arrays(xs, [i % 4 for i in range(12)]) as ds:
            erank = fn.gram_dimensionality(net, 1, ds)
            self.assertGreaterEqual(erank, 0.0)
            self.assertLessEqual(erank, 5.0 + 1e-9)
            ece = fn.calibration_error(net, ds, 10)
            self.assertGreaterEqual(ece, 0.0)
            self.assertLessEqual(ece, 1.0)


if __name__ == "__main__":
    unittest.main()
