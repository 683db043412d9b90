"""Dataset and Iter through the binding: construction, batches, lifetimes, loaders."""
import gc
import math
import struct
import unittest

from support import NumpyMode, as_list, fanoise as fn, numpy as np

N, DIM, CLASSES = 10, 3, 4
X = [[float(i), float(i) / 2, -float(i)] for i in range(N)]
LABELS = [i % CLASSES for i in range(N)]


def make_ds():
    return fn.Dataset.from_arrays(X, LABELS, n_classes=CLASSES)


def idx_bytes(images, labels, rows, cols):
    """IDX files as MNIST ships them (big-endian header)."""
    img = struct.pack(">IIII", 0x00000803, len(labels), rows, cols) + bytes(images)
    lab = struct.pack(">II", 0x00000801, len(labels)) + bytes(labels)
    return img, lab


class TestDataset(unittest.TestCase):
    def test_from_arrays_keeps_rows_and_labels(self):
        with make_ds() as ds:
            self.assertEqual((len(ds), ds.dim, ds.classes), (N, DIM, CLASSES))
            self.assertEqual(ds.shape, (DIM, 1, 1))
            x, label = ds.get(7)
            self.assertEqual(as_list(x), X[7])
            self.assertEqual(label, 3)
            self.assertEqual(ds.class_counts(), [3, 3, 2, 2])

    def test_class_count_defaults_to_max_label_plus_one(self):
        with fn.Dataset.from_arrays(X, [0] * 9 + [6]) as ds:
            self.assertEqual(ds.classes, 7)

    def test_bad_arrays_raise(self):
        with self.assertRaises(fn.FanoiseError) as cm:
            fn.Dataset.from_arrays(X, LABELS[:-1])
        self.assertEqual(cm.exception.status, fn.Status.E_SHAPE)
        with self.assertRaises(fn.FanoiseError) as cm:
            fn.Dataset.from_arrays(X, LABELS, n_classes=2)
        self.assertEqual(cm.exception.status, fn.Status.E_LABEL)
        self.assertIn("fan_dataset_from_arrays", cm.exception.message)

    def test_idx_bytes_load_and_standardise(self):
        pixels = [0, 51, 102, 153, 204, 255] * 2
        img, lab = idx_bytes(pixels, [1, 2], 2, 3)
        with fn.Dataset.load_idx_bytes(img, lab) as ds:
            self.assertEqual((len(ds), ds.dim, ds.classes), (2, 6, 10))
            self.assertEqual(ds.shape, (3, 2, 1))
            x, label = ds.get(1)
            self.assertEqual(label, 2)
            for got, p in zip(as_list(x), pixels[:6]):
                self.assertAlmostEqual(got, p / 255.0, places=6)
            ds.standardize(0.286, 0.353)
            x, _ = ds.get(0)
            for got, p in zip(as_list(x), pixels[:6]):
                self.assertAlmostEqual(got, (p / 255.0 - 0.286) / 0.353, places=5)
            mean, std = ds.compute_stats()
            self.assertAlmostEqual(mean, 0.5, places=6)

    def test_subsets_and_split_have_the_requested_sizes(self):
        with make_ds() as ds:
            with ds.subset_first(4) as a, ds.subset_random(5, 1) as b, \
                    ds.subset_indices([9, 9, 0]) as c:
                self.assertEqual((len(a), len(b), len(c)), (4, 5, 3))
                self.assertEqual(as_list(c.get(1)[0]), X[9])
            tr, va = ds.split(3, 7)
            with tr, va:
                self.assertEqual((len(tr), len(va)), (7, 3))

    def test_from_u8_scales_pixels(self):
        with fn.Dataset.from_u8(bytes([0, 255, 51, 102]), [0, 1], 2, 1) as ds:
            self.assertEqual(ds.dim, 2)
            self.assertAlmostEqual(as_list(ds.get(1)[0])[0], 0.2, places=6)


class TestIter(unittest.TestCase):
    def test_one_epoch_visits_every_sample_once(self):
        with make_ds() as ds, fn.Iter.batches(ds, 4, seed=3) as it:
            self.assertEqual(it.batches_per_epoch, 3)
            rows, labels = [], []
            for batch in it:
                xs = as_list(batch.x)
                rows += [xs[i:i + DIM] for i in range(0, len(xs), DIM)]
                labels += as_list(batch.labels)
            self.assertEqual(sorted(rows), sorted(X))
            self.assertEqual([LABELS[X.index(r)] for r in rows], labels)
            self.assertNotEqual(rows, X, "seeded shuffle left the order unchanged")

    def test_unshuffled_batches_keep_dataset_order_and_reset_repeats(self):
        with make_ds() as ds, fn.Iter.batches(ds, 4, shuffle=False, drop_last=True) as it:
            first = [as_list(b.labels) for b in it]
            self.assertEqual(first, [LABELS[0:4], LABELS[4:8]])
            it.reset()
            self.assertEqual(as_list(it.next_batch().labels), LABELS[0:4])

    def test_dataset_outlives_its_python_name_while_an_iterator_uses_it(self):
        it = fn.Iter.batches(fn.Dataset.from_arrays(X, LABELS), 5, shuffle=False)
        gc.collect()
        self.assertEqual(as_list(it.next_batch().labels), LABELS[:5])
        it.close()

    def test_closing_a_dataset_in_use_defers_the_free(self):
        ds = make_ds()
        it = fn.Iter.batches(ds, 5, shuffle=False)
        ds.close()
        self.assertTrue(ds.closed)
        with self.assertRaises(fn.FanoiseError) as cm:
            len(ds)
        self.assertEqual(cm.exception.status, fn.Status.E_STATE)
        self.assertEqual(as_list(it.next_batch().labels), LABELS[:5])  # C dataset still alive
        self.assertIsNotNone(ds._pending_ptr)
        it.close()
        self.assertIsNone(ds._pending_ptr)
        with self.assertRaises(fn.FanoiseError):
            fn.Iter.batches(ds, 5)

    def test_soft_label_noise_gives_uniform_targets(self):
        with fn.Iter.noise(6, 4, 5, seed=2, label_mode=fn.LabelMode.SOFT) as it:
            self.assertTrue(it.is_noise)
            b = it.next_batch()
            self.assertIsNone(b.labels)
            self.assertEqual(as_list(b.targets), [0.25] * 20)
            self.assertEqual(len(as_list(b.x)), 30)
            with self.assertRaises(fn.FanoiseError):
                iter(it).__next__()

    def test_noise_moments_follow_the_settings(self):
        with NumpyMode(False), fn.Iter.noise(100, 10, 50, seed=4, kind=fn.NoiseKind.UNIFORM,
                                             mean=1.0, std=2.0) as it:
            xs = as_list(it.next_batch().x)
            mean = sum(xs) / len(xs)
            std = math.sqrt(sum((v - mean) ** 2 for v in xs) / len(xs))
            # 5000 draws: the standard error of the mean is 2 / sqrt(5000) = 0.028.
            self.assertAlmostEqual(mean, 1.0, delta=0.15)
            self.assertAlmostEqual(std, 2.0, delta=0.15)
            self.assertLessEqual(max(xs), 1.0 + 2.0 * math.sqrt(3) + 1e-5)
            self.assertEqual(it.get(fn.IterParam.NOISE_KIND), fn.NoiseKind.UNIFORM)

    def test_evaluate_matches_forward(self):
        with make_ds() as ds, fn.Net([DIM, 5, CLASSES], weight_seed=1) as net, NumpyMode(False):
            loss, acc = net.evaluate(ds)
            probs = as_list(net.forward(X))
            want_loss = -sum(math.log(probs[i * CLASSES + LABELS[i]]) for i in range(N)) / N
            want_acc = sum(max(range(CLASSES), key=lambda c: probs[i * CLASSES + c]) == LABELS[i]
                           for i in range(N)) / N
            self.assertAlmostEqual(loss, want_loss, places=5)
            self.assertAlmostEqual(acc, want_acc)

    @unittest.skipIf(np is None, "numpy is not installed")
    def test_numpy_batches_have_row_shape(self):
        with NumpyMode(True), make_ds() as ds, fn.Iter.batches(ds, 4) as it:
            b = it.next_batch()
            self.assertEqual((b.x.shape, b.x.dtype), ((4, DIM), np.float32))
            self.assertEqual(b.labels.dtype, np.int32)


if __name__ == "__main__":
    unittest.main()
