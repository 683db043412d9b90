"""The Python binding reproduces the C reference run (c_reference.c) bit for bit: noise
pretraining with Adam, then SGD with momentum on data, same seeds, same library."""
import os
import subprocess
import unittest

import support
from support import NumpyMode, as_bytes, fanoise as fn, numpy as np

# Must match the #defines of c_reference.c.
DIM, HIDDEN1, HIDDEN2, CLASSES = 20, 16, 12, 4
WEIGHT_SEED, FEEDBACK_SEED, NOISE_SEED, SHUFFLE_SEED = 11, 12, 13, 14
NOISE_BATCH, NOISE_STEPS, NOISE_LR = 8, 60, 1e-3
SAMPLES, DATA_BATCH, DATA_EPOCHS, DATA_LR, DATA_MOMENTUM = 96, 16, 3, 0.05, 0.9

REFERENCE_BIN = os.environ.get("FANOISE_C_REFERENCE",
                               os.path.join(support.REPO, "build", "bindings", "c_reference"))


def reference_output():
    """Runs the C program (building it through make when run outside `make python-check`)."""
    if not os.path.exists(REFERENCE_BIN):
        subprocess.run(["make", "-s", "-C", support.REPO,
                        os.path.relpath(REFERENCE_BIN, support.REPO)], check=True)
    out = subprocess.run([REFERENCE_BIN], capture_output=True, text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.strip().splitlines())


def python_run():
    """The same run through the binding, formatted as c_reference.c prints it."""
    x = [[float((i * 31 + j * 17) % 23) / 11.0 - 1.0 for j in range(DIM)]
         for i in range(SAMPLES)]
    labels = [(i * 31 % 23) * CLASSES // 23 for i in range(SAMPLES)]
    noise_losses, train_losses = [], []
    with fn.Net([DIM, HIDDEN1, HIDDEN2, CLASSES], rule=fn.Rule.FA, weight_seed=WEIGHT_SEED,
                feedback_seed=FEEDBACK_SEED) as net, \
            fn.Optimizer(net, fn.OptimizerKind.ADAM, lr=NOISE_LR) as adam, \
            fn.Iter.noise(DIM, CLASSES, NOISE_BATCH, seed=NOISE_SEED) as noise, \
            fn.Dataset.from_arrays(x, labels, n_classes=CLASSES) as ds, \
            fn.Iter.batches(ds, DATA_BATCH, seed=SHUFFLE_SEED) as batches, \
            fn.Optimizer(net, fn.OptimizerKind.SGD, lr=DATA_LR, momentum=DATA_MOMENTUM) as sgd:
        net.pretrain_noise(adam, noise, NOISE_STEPS, lambda p: noise_losses.append(p.loss))
        net.train(sgd, batches, DATA_EPOCHS, lambda p: train_losses.append(p.loss))
        eval_loss, accuracy = net.evaluate(ds)
        align = fn.alignment(net, 2)
        h = support.FNV_OFFSET
        for layer in range(net.num_layers):
            w, b = net.weights(layer)
            for arr in (w, b, net.feedback(layer)):
                h = support.fnv1a(h, as_bytes(arr))
    return {
        "noise_losses": " ".join(f"{v:.17g}" for v in noise_losses),
        "train_losses": " ".join(f"{v:.17g}" for v in train_losses),
        "eval_loss": f"{eval_loss:.17g}",
        "accuracy": f"{accuracy:.17g}",
        "align_mean": f"{align.mean:.17g}",
        "align_matrix": f"{align.matrix:.17g}",
        "weights_fnv1a": f"{h:016x}",
    }


class TestReproducible(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = reference_output()

    def _compare(self, py):
        # Every value as printed with 17 significant digits: equal text means equal doubles.
        self.assertEqual(set(py), set(self.c))
        for key in self.c:
            self.assertEqual(py[key], self.c[key], key)
        self.assertEqual(len(py["noise_losses"].split()), NOISE_STEPS)
        self.assertEqual(len(py["train_losses"].split()), DATA_EPOCHS * SAMPLES // DATA_BATCH)

    def test_python_run_matches_c_bit_for_bit_without_numpy(self):
        with NumpyMode(False):
            self._compare(python_run())

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_python_run_matches_c_bit_for_bit_with_numpy(self):
        with NumpyMode(True):
            self._compare(python_run())

    def test_training_in_the_reference_run_learns(self):
        # Guards against a reference that matches trivially (e.g. nothing trained): the last
        # epoch's mean loss is below the first epoch's, and the net beats chance. (Single
        # batches are no guide: at lr 0.05 with momentum 0.9 their losses jump around.)
        train = [float(v) for v in self.c["train_losses"].split()]
        per_epoch = len(train) // DATA_EPOCHS
        self.assertEqual(per_epoch, SAMPLES // DATA_BATCH)
        first, last = train[:per_epoch], train[-per_epoch:]
        self.assertLess(sum(last) / per_epoch, sum(first) / per_epoch)
        self.assertGreater(float(self.c["accuracy"]), 1.0 / CLASSES)


if __name__ == "__main__":
    unittest.main()
