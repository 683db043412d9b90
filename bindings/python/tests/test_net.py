"""Net and Optimizer through the binding: shapes, parameters, errors, training, persistence."""
import array
import math
import os
import tempfile
import unittest

from support import NumpyMode, as_bytes, as_list, fanoise as fn, numpy as np
from fanoise._lib import lib

SIZES = [4, 8, 3]
PARAMS_4_8_3 = 4 * 8 + 8 + 8 * 3 + 3
X = [[0.5, -1.0, 0.25, 2.0], [1.5, 0.0, -0.5, -2.0]]
LABELS = [2, 0]


class TestNetBasics(unittest.TestCase):
    def test_net_reports_its_shape_and_defaults(self):
        with fn.Net(SIZES) as net:
            self.assertEqual(net.sizes, (4, 8, 3))
            self.assertEqual(net.num_layers, 2)
            self.assertEqual(net.num_params, PARAMS_4_8_3)
            self.assertEqual((net.layer_inputs(1), net.layer_outputs(1)), (8, 3))
            self.assertEqual(net.rule, fn.Rule.FA)
            self.assertEqual(net.loss, fn.Loss.CROSS_ENTROPY)
            self.assertEqual(net.activation(0), fn.Activation.RELU)
            self.assertEqual(net.activation(1), fn.Activation.LINEAR)
            self.assertEqual(net.seeds, (0, 1))
            self.assertAlmostEqual(net.leaky_slope, 0.01, places=6)

    def test_settings_round_trip(self):
        with fn.Net(SIZES, rule=fn.Rule.BP, weight_seed=5, feedback_seed=6) as net:
            self.assertEqual(net.rule, fn.Rule.BP)
            self.assertEqual(net.seeds, (5, 6))
            net.set_activation(0, fn.Activation.TANH)
            self.assertEqual(net.activation(0), fn.Activation.TANH)
            net.loss = fn.Loss.MSE
            self.assertEqual(net.loss, fn.Loss.MSE)
            net.leaky_slope = 0.2
            self.assertAlmostEqual(net.get(fn.NetParam.LEAKY_SLOPE), 0.2, places=6)
            self.assertEqual(net.threads, 1)
            net.threads = 2
            self.assertEqual(net.get(fn.NetParam.THREADS), 2.0)

    def test_same_weight_seed_gives_identical_weights_whatever_the_rule(self):
        with fn.Net(SIZES, rule=fn.Rule.BP, weight_seed=9, feedback_seed=1) as bp, \
                fn.Net(SIZES, rule=fn.Rule.FA, weight_seed=9, feedback_seed=2) as fa:
            for layer in range(2):
                self.assertEqual(as_bytes(bp.weights(layer)[0]), as_bytes(fa.weights(layer)[0]))
                self.assertNotEqual(as_bytes(bp.feedback(layer)), as_bytes(fa.feedback(layer)))

    def test_close_is_idempotent_and_a_closed_net_raises_state(self):
        net = fn.Net(SIZES)
        net.close()
        net.close()
        self.assertTrue(net.closed)
        with self.assertRaises(fn.FanoiseError) as cm:
            net.num_layers
        self.assertEqual(cm.exception.status, fn.Status.E_STATE)

    def test_clone_is_independent(self):
        with fn.Net(SIZES, weight_seed=3) as net, net.clone() as copy:
            self.assertEqual(as_bytes(copy.weights(0)[0]), as_bytes(net.weights(0)[0]))
            copy.init(4, 5)
            self.assertNotEqual(as_bytes(copy.weights(0)[0]), as_bytes(net.weights(0)[0]))


class TestBuffers(unittest.TestCase):
    def _check_weights_round_trip(self):
        with fn.Net(SIZES) as net:
            w = [float(i) / 8 for i in range(8 * 4)]
            b = [float(-i) for i in range(8)]
            net.set_weights(0, w, b)
            w2, b2 = net.weights(0)
            self.assertEqual(as_list(w2), w)
            self.assertEqual(as_list(b2), b)
            return w2

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_numpy_outputs_have_the_matrix_shape(self):
        with NumpyMode(True):
            w = self._check_weights_round_trip()
            self.assertIsInstance(w, np.ndarray)
            self.assertEqual((w.shape, w.dtype), ((8, 4), np.float32))

    def test_without_numpy_outputs_are_flat_float_arrays(self):
        with NumpyMode(False):
            w = self._check_weights_round_trip()
            self.assertIsInstance(w, array.array)
            self.assertEqual((w.typecode, len(w)), ("f", 32))

    def test_forward_accepts_lists_arrays_and_memoryviews_alike(self):
        with fn.Net(SIZES, weight_seed=2) as net, NumpyMode(False):
            ref = as_list(net.forward(X))
            flat = array.array("f", [v for row in X for v in row])
            self.assertEqual(as_list(net.forward(flat)), ref)
            self.assertEqual(as_list(net.forward(memoryview(flat))), ref)
            self.assertEqual(len(ref), 2 * 3)
            for i in range(2):
                self.assertAlmostEqual(sum(ref[3 * i:3 * i + 3]), 1.0, places=6)

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_forward_converts_float64_and_non_contiguous_numpy_input(self):
        with fn.Net(SIZES, weight_seed=2) as net, NumpyMode(True):
            ref = net.forward(np.array(X, dtype=np.float32))
            self.assertEqual(ref.shape, (2, 3))
            as64 = net.forward(np.array(X, dtype=np.float64))
            fortran = net.forward(np.asfortranarray(np.array(X, dtype=np.float32)))
            strided = net.forward(np.array(X, dtype=np.float32).repeat(2, axis=0)[::2])
            for other in (as64, fortran, strided):
                self.assertEqual(other.tobytes(), ref.tobytes())
            self.assertEqual(as_list(ref), as_list(net.forward(X)))

    def test_input_with_a_partial_row_raises_shape(self):
        with fn.Net(SIZES) as net:
            with self.assertRaises(fn.FanoiseError) as cm:
                net.forward([1.0, 2.0, 3.0, 4.0, 5.0])
            self.assertEqual(cm.exception.status, fn.Status.E_SHAPE)
            with self.assertRaises(fn.FanoiseError) as cm:
                net.compute_gradients(X, [0])
            self.assertEqual(cm.exception.status, fn.Status.E_SHAPE)


class TestErrors(unittest.TestCase):
    def test_bad_sizes_raise_invalid_with_a_message(self):
        for sizes in ([4], [4, 0, 3]):
            with self.assertRaises(fn.FanoiseError) as cm:
                fn.Net(sizes)
            e = cm.exception
            self.assertEqual(e.status, fn.Status.E_INVALID)
            self.assertIn("fan_net_create", e.message)
            self.assertIn(fn.strerror(fn.Status.E_INVALID), e.message)
            self.assertTrue(str(e).startswith("E_INVALID: "))

    def test_handle_errors_carry_the_handles_message(self):
        with fn.Net(SIZES) as net:
            with self.assertRaises(fn.FanoiseError) as cm:
                net.set_activation(5, fn.Activation.RELU)
            self.assertEqual(cm.exception.status, fn.Status.E_INVALID)
            self.assertIn("5", cm.exception.message)
            # The message is the handle's own fan_net_errmsg text, not the status text.
            self.assertEqual(cm.exception.message, lib.fan_net_errmsg(net.ptr).decode())
            with fn.Optimizer(net) as opt:
                with self.assertRaises(fn.FanoiseError) as cm:
                    opt.lr = -1.0
                self.assertEqual(cm.exception.status, fn.Status.E_INVALID)
                self.assertNotEqual(cm.exception.message, fn.strerror(fn.Status.E_INVALID))
                self.assertNotEqual(cm.exception.message, "")

    def test_out_of_range_label_raises_label(self):
        with fn.Net(SIZES) as net:
            with self.assertRaises(fn.FanoiseError) as cm:
                net.compute_gradients(X, [0, 3])
            self.assertEqual(cm.exception.status, fn.Status.E_LABEL)

    def test_unknown_optimizer_keyword_is_a_type_error(self):
        with fn.Net(SIZES) as net:
            with self.assertRaises(TypeError):
                fn.Optimizer(net, learning_rate=0.1)


class TestTraining(unittest.TestCase):
    def test_fa_with_feedback_equal_to_weights_gives_bp_gradients(self):
        with fn.Net(SIZES, rule=fn.Rule.BP, weight_seed=4) as bp, \
                fn.Net(SIZES, rule=fn.Rule.FA, weight_seed=4) as fa:
            for layer in range(2):
                fa.set_feedback(layer, fa.weights(layer)[0])
            self.assertEqual(bp.compute_gradients(X, LABELS), fa.compute_gradients(X, LABELS))
            for layer in range(2):
                self.assertEqual(as_bytes(bp.gradients(layer)[0]),
                                 as_bytes(fa.gradients(layer)[0]))

    def test_train_batch_lowers_the_loss_of_its_batch(self):
        with fn.Net(SIZES, weight_seed=1) as net, \
                fn.Optimizer(net, fn.OptimizerKind.SGD, lr=0.1) as opt:
            before = net.loss_value(X, LABELS)
            for _ in range(30):
                net.train_batch(opt, X, LABELS)
            after = net.loss_value(X, LABELS)
            self.assertEqual(opt.steps, 30)
            self.assertLess(after, 0.5 * before)

    def test_progress_callback_sees_every_step_and_can_stop(self):
        seen = []
        with fn.Net(SIZES) as net, fn.Optimizer(net) as opt, fn.Iter.noise(4, 3, 8, 1) as it:
            st = net.train_steps(opt, it, 20, lambda p: seen.append(p) or p.step == 5)
            self.assertEqual(st, fn.Status.STOPPED)
            self.assertEqual([p.step for p in seen], [1, 2, 3, 4, 5])
            self.assertEqual(seen[0].total_steps, 20)
            self.assertEqual(seen[-1].samples, 40)
            self.assertTrue(all(math.isfinite(p.loss) for p in seen))
            self.assertEqual(opt.steps, 5)
            self.assertEqual(net.pretrain_noise(opt, it, 3), fn.Status.OK)
            self.assertEqual(opt.steps, 8)

    def test_exception_in_callback_stops_training_and_propagates(self):
        def boom(p):
            if p.step == 3:
                raise KeyError("from the callback")

        with fn.Net(SIZES) as net, fn.Optimizer(net) as opt, fn.Iter.noise(4, 3, 8, 1) as it:
            with self.assertRaises(KeyError):
                net.pretrain_noise(opt, it, 10, boom)
            self.assertEqual(opt.steps, 3)

    def test_optimizer_bounds_defaults_and_kind(self):
        lo, hi, default = fn.Optimizer.bounds(fn.OptimizerParam.LR)
        self.assertAlmostEqual(default, 0.01)
        self.assertLessEqual(lo, default)
        self.assertLessEqual(default, hi)
        with fn.Net(SIZES) as net, \
                fn.Optimizer(net, fn.OptimizerKind.ADAM, lr=1e-4, beta1=0.8) as opt:
            self.assertEqual(opt.kind, fn.OptimizerKind.ADAM)
            self.assertAlmostEqual(opt.lr, 1e-4)
            self.assertAlmostEqual(opt.get(fn.OptimizerParam.BETA1), 0.8)
            with self.assertRaises(fn.FanoiseError) as cm:
                fn.Optimizer.bounds(99)
            self.assertEqual(cm.exception.status, fn.Status.E_INVALID)


class TestPersistence(unittest.TestCase):
    def test_save_and_load_round_trip_file_and_bytes(self):
        with fn.Net([4, 6, 5, 3], weight_seed=8, feedback_seed=9) as net:
            net.set_activation(1, fn.Activation.TANH)
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "net.fan")
                net.save(path)
                with fn.Net.load(path) as back:
                    self.assertEqual(back.to_bytes(), net.to_bytes())
                    self.assertEqual(back.activation(1), fn.Activation.TANH)
                    self.assertEqual(back.seeds, (8, 9))
            with fn.Net.from_bytes(net.to_bytes()) as back:
                self.assertEqual(as_bytes(back.feedback(2)), as_bytes(net.feedback(2)))

    def test_corrupt_bytes_raise_with_the_loaders_message(self):
        with fn.Net(SIZES) as net:
            data = bytearray(net.to_bytes())
        data[len(data) // 2] ^= 0xFF
        with self.assertRaises(fn.FanoiseError) as cm:
            fn.Net.from_bytes(bytes(data))
        self.assertIn(cm.exception.status, (fn.Status.E_CHECKSUM, fn.Status.E_FORMAT))
        self.assertNotEqual(cm.exception.message, "")
        with self.assertRaises(fn.FanoiseError) as cm:
            fn.Net.load("/nonexistent/dir/net.fan")
        self.assertEqual(cm.exception.status, fn.Status.E_IO)


class TestRules(unittest.TestCase):
    """Every rule of the header is reachable, named like the C library, and trains."""

    def test_rule_enum_matches_the_library_names(self):
        names = {r: lib.fan_rule_name(int(r)).decode() for r in fn.Rule}
        self.assertEqual(names, {fn.Rule.BP: "bp", fn.Rule.FA: "fa", fn.Rule.DFA: "dfa",
                                 fn.Rule.USF: "usf", fn.Rule.BRSF: "brsf", fn.Rule.FRSF: "frsf",
                                 fn.Rule.KP: "kp", fn.Rule.WM: "wm"})
        self.assertEqual(lib.fan_rule_name(8), b"unknown")

    def test_every_rule_trains_and_round_trips(self):
        sizes = [4, 6, 5, 3]
        for rule in fn.Rule:
            with self.subTest(rule=rule.name), fn.Net(sizes, rule=rule) as net, \
                    fn.Optimizer(net, fn.OptimizerKind.SGD, lr=0.05) as opt:
                self.assertEqual(net.rule, rule)
                loss0 = net.loss_value(X, LABELS)
                for _ in range(30):
                    net.train_batch(opt, X, LABELS)
                self.assertLess(net.loss_value(X, LABELS), loss0)
                with fn.Net.from_bytes(net.to_bytes()) as back:
                    self.assertEqual(back.rule, rule)
                    self.assertEqual(back.to_bytes(), net.to_bytes())

    def test_dfa_feedback_has_the_output_rows(self):
        with fn.Net([4, 6, 5, 3], rule=fn.Rule.DFA) as net:
            self.assertEqual(net.feedback_shape(0), (3, 4))
            self.assertEqual(net.feedback_shape(1), (3, 6))
            self.assertEqual(net.feedback_shape(2), (3, 5))
            fb = as_list(net.feedback(1))
            self.assertEqual(len(fb), 3 * 6)
            net.rule = fn.Rule.FA
            self.assertEqual(net.feedback_shape(1), (5, 6))

    def test_mirror_aligns_feedback_and_refuses_rules_without_b(self):
        with fn.Net([6, 5, 3], rule=fn.Rule.WM) as net:
            net.mirror(300, 32, 0.05, 0.5, seed=3)
            self.assertLess(fn.alignment(net, 1).mean, 20.0)
            net.rule = fn.Rule.USF
            with self.assertRaises(fn.FanoiseError) as cm:
                net.mirror(10, 8, 0.1)
            self.assertEqual(cm.exception.status, fn.Status.E_UNSUPPORTED)


if __name__ == "__main__":
    unittest.main()
