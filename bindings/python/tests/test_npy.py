"""The C library's .npy reader and writer against NumPy itself: files numpy.save writes load as
datasets, files fan_net_export_npy writes load with numpy.load, and what the reader refuses
(Fortran order, other dtypes) fails with the status the header documents. Through the raw
prototypes, since the package has no wrapper of its own for these calls."""
import ctypes
import os
import shutil
import tempfile
import unittest
from ctypes import byref

import support
from support import fanoise, numpy as np
from fanoise import Status
from fanoise._lib import DS, create_options, lib


@unittest.skipIf(np is None, "numpy is not installed")
class TestNpy(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def save(self, name, array):
        path = os.path.join(self.tmp, name)
        np.save(path, array)
        return path

    def load(self, images, labels, n_classes=0):
        out = DS()
        msg = ctypes.create_string_buffer(256)
        opts = create_options(msg)
        st = lib.fan_dataset_load_npy_ex(byref(out), os.fsencode(images), os.fsencode(labels),
                                         n_classes, byref(opts))
        return Status(st), out, msg.value.decode()

    def test_numpy_float32_and_uint8_images_load_with_their_values(self):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((5, 3, 4)).astype(np.float32)
        y = np.array([0, 2, 1, 2, 0], dtype=np.int64)
        st, ds, msg = self.load(self.save("x.npy", x), self.save("y.npy", y))
        self.assertEqual(st, Status.OK, msg)
        d = fanoise.Dataset(_ptr=ds)
        self.assertEqual((len(d), d.dim, d.classes, d.shape), (5, 12, 3, (4, 3, 1)))
        for i in range(5):
            xi, yi = d.get(i)
            np.testing.assert_array_equal(np.asarray(xi), x[i].ravel())
            self.assertEqual(yi, y[i])
        d.close()
        u = (np.arange(2 * 2 * 3 * 3) % 256).astype(np.uint8).reshape(2, 2, 3, 3)
        st, ds, msg = self.load(self.save("u.npy", u), self.save("l.npy", np.array([1, 0], np.uint8)), 4)
        self.assertEqual(st, Status.OK, msg)
        d = fanoise.Dataset(_ptr=ds)
        self.assertEqual((d.classes, d.shape), (4, (3, 3, 2)))
        np.testing.assert_allclose(np.asarray(d.get(1)[0]), u[1].ravel() / 255.0, rtol=1e-6)
        d.close()

    def test_what_the_reader_refuses_fails_with_a_specific_status(self):
        y = self.save("y.npy", np.zeros(4, np.int32))
        cases = [
            (np.asfortranarray(np.ones((4, 3), np.float32)), Status.E_UNSUPPORTED, "Fortran"),
            (np.ones((4, 3), np.float64), Status.E_UNSUPPORTED, "float32"),
            (np.ones((4, 3), ">f4"), Status.E_UNSUPPORTED, "little-endian"),
            (np.ones((4, 3), np.bool_), Status.E_UNSUPPORTED, "dtype"),
            (np.zeros((4,), [("a", "<f4")]), Status.E_UNSUPPORTED, "structured"),
            (np.ones((3, 3), np.float32), Status.E_SHAPE, "4 labels for 3 images"),
        ]
        for array, status, words in cases:
            st, _, msg = self.load(self.save("x.npy", array), y)
            self.assertEqual(st, status, msg)
            self.assertIn(words, msg)
        st, _, msg = self.load(self.save("x.npy", np.ones((4, 3), np.float32)),
                               self.save("f.npy", np.zeros(4, np.float32)))
        self.assertEqual(st, Status.E_UNSUPPORTED, msg)

    def test_exported_matrices_are_what_numpy_loads(self):
        net = fanoise.Net([6, 5, 3], weight_seed=4, feedback_seed=5)
        self.assertEqual(lib.fan_net_export_npy(net.ptr, os.fsencode(self.tmp)), Status.OK)
        for layer in range(2):
            w, b = net.weights(layer)
            np.testing.assert_array_equal(np.load(os.path.join(self.tmp, f"weights_{layer}.npy")), w)
            np.testing.assert_array_equal(np.load(os.path.join(self.tmp, f"bias_{layer}.npy")), b)
            fb = np.load(os.path.join(self.tmp, f"feedback_{layer}.npy"))
            self.assertEqual(fb.dtype, np.float32)
            np.testing.assert_array_equal(fb, net.feedback(layer))
        # NumPy's edits come back: double W_0 (as float64, which the importer rounds).
        w0 = np.load(os.path.join(self.tmp, "weights_0.npy")).astype(np.float64) * 2
        np.save(os.path.join(self.tmp, "weights_0.npy"), w0)
        self.assertEqual(lib.fan_net_import_npy(net.ptr, os.fsencode(self.tmp)), Status.OK)
        np.testing.assert_array_equal(net.weights(0)[0], w0.astype(np.float32))
        net.close()


if __name__ == "__main__":
    unittest.main()
