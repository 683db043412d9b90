"""How the package finds libfanoise and what it does without numpy (fresh interpreters)."""
import os
import subprocess
import sys
import unittest

import support

LIB_DIR = os.path.join(support.REPO, "lib")


def run_python(code, **env):
    full = dict(os.environ, PYTHONPATH=support.BINDING_DIR, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full)


class TestLoading(unittest.TestCase):
    def test_environment_variable_chooses_the_library(self):
        path = os.path.join(LIB_DIR, "libfanoise.so.0")
        r = run_python("import fanoise; print(fanoise.LIBRARY_PATH)", FANOISE_LIBRARY=path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), path)

    def test_a_bad_environment_path_fails_instead_of_falling_back(self):
        r = run_python("import fanoise", FANOISE_LIBRARY="/nonexistent/libfanoise.so")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("FANOISE_LIBRARY", r.stderr)

    def test_build_tree_is_found_without_the_environment_variable(self):
        env = {k: v for k, v in os.environ.items() if k != "FANOISE_LIBRARY"}
        env["PYTHONPATH"] = support.BINDING_DIR
        r = subprocess.run([sys.executable, "-c", "import fanoise; print(fanoise.LIBRARY_PATH)"],
                           capture_output=True, text=True, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), os.path.join(LIB_DIR, "libfanoise.so"))

    def test_without_numpy_outputs_are_array_array(self):
        code = ("import fanoise as fn\n"
                "net = fn.Net([3, 2])\n"
                "w, b = net.weights(0)\n"
                "print(fn.numpy_enabled(), type(w).__module__, w.typecode, len(w))\n")
        r = run_python(code, FANOISE_NO_NUMPY="1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["False", "array", "f", "6"])


if __name__ == "__main__":
    unittest.main()
