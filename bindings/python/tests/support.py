"""Shared set-up of the binding's tests: import path, repository paths, small helpers."""
import os
import subprocess
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
BINDING_DIR = os.path.dirname(TESTS_DIR)
REPO = os.path.dirname(os.path.dirname(BINDING_DIR))
HEADER = os.path.join(REPO, "include", "fanoise.h")

if BINDING_DIR not in sys.path:
    sys.path.insert(0, BINDING_DIR)

import fanoise  # noqa: E402

try:
    import numpy
except ImportError:
    numpy = None
if not fanoise.numpy_enabled():
    numpy = None  # FANOISE_NO_NUMPY=1: the binding ignores numpy, so do the numpy-only tests

# FNV-1a 64-bit constants (FNV specification), as in c_reference.c.
FNV_OFFSET = 0xcbf29ce484222325
FNV_PRIME = 0x100000001b3
MASK64 = (1 << 64) - 1


def fnv1a(h, data):
    for byte in bytes(data):
        h = ((h ^ byte) * FNV_PRIME) & MASK64
    return h


def as_bytes(arr):
    """Raw bytes of a numpy array or array.array output."""
    return arr.tobytes()


def as_list(arr):
    """Flat list of an output array, numpy or not."""
    if numpy is not None and isinstance(arr, numpy.ndarray):
        return arr.ravel().tolist()
    return list(arr)


class NumpyMode:
    """Context manager that switches the binding's numpy outputs on or off."""

    def __init__(self, flag):
        self.flag = flag

    def __enter__(self):
        self.prev = fanoise.use_numpy(self.flag)

    def __exit__(self, *exc):
        fanoise.use_numpy(self.prev)


def make_version():
    """The Makefile's VERSION: from the environment under `make`, else by asking make."""
    v = os.environ.get("FANOISE_MAKE_VERSION")
    if v:
        return v
    out = subprocess.run(["make", "-s", "--no-print-directory", "-C", REPO, "print-version"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()
