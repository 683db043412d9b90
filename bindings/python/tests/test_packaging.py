"""The package as a user meets it: its version, a docstring on every public member, exceptions
that are also the matching built-ins, and how it finds the C library (pkg-config, the build tree
it was installed from). The installs themselves (venv, --user) are scripts/python-install-check.sh."""
import inspect
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from enum import Enum

import support
from support import fanoise
from fanoise import Status
from fanoise.errors import FanoiseError

PYPROJECT = os.path.join(support.BINDING_DIR, "pyproject.toml")


def public_members():
    """(qualified name, object) of every public function, class, method and property."""
    for name in fanoise.__all__:
        obj = getattr(fanoise, name)
        if inspect.isclass(obj):
            yield name, obj
            if issubclass(obj, Enum) or issubclass(obj, tuple):
                continue  # enum members are values; namedtuple fields document themselves
            for attr in dir(obj):
                if attr.startswith("_"):
                    continue
                raw = inspect.getattr_static(obj, attr)
                if isinstance(raw, (staticmethod, classmethod)):
                    raw = raw.__func__
                if inspect.isfunction(raw) or isinstance(raw, property):
                    yield f"{name}.{attr}", raw
        elif callable(obj):
            yield name, obj


class TestPackaging(unittest.TestCase):
    def test_version_in_pyproject_is_the_headers(self):
        with open(PYPROJECT) as f:
            version = re.search(r'^version = "([^"]+)"', f.read(), re.M).group(1)
        self.assertEqual(version, fanoise.version_string())

    def test_every_public_member_has_a_docstring(self):
        missing = [name for name, obj in public_members()
                   if not (obj.__doc__ or "").strip()]
        self.assertEqual(missing, [])

    def test_help_of_a_method_shows_its_docstring(self):
        self.assertIn("atomically", inspect.getdoc(fanoise.Net.save))


class TestErrors(unittest.TestCase):
    def test_errors_are_also_the_matching_builtin_exceptions(self):
        cases = {Status.E_SHAPE: ValueError, Status.E_INVALID: ValueError,
                 Status.E_LABEL: ValueError, Status.E_FORMAT: ValueError,
                 Status.E_NOMEM: MemoryError, Status.E_IO: OSError,
                 Status.E_NUMERIC: ArithmeticError}
        for status, builtin in cases.items():
            e = FanoiseError(status, "detail")
            self.assertIsInstance(e, builtin, status)
            self.assertIsInstance(e, FanoiseError)
            self.assertEqual((e.status, e.message), (status, "detail"))
        self.assertIs(type(FanoiseError(Status.E_STATE, "x")), FanoiseError)
        self.assertIs(type(FanoiseError(12345, "x")), FanoiseError)

    def test_library_failures_raise_them(self):
        with self.assertRaises(ValueError):
            fanoise.Net([3])
        with self.assertRaises(OSError) as cm:
            fanoise.Net.load("/nonexistent/model.fan")
        self.assertIn("/nonexistent/model.fan", str(cm.exception))


@unittest.skipUnless(shutil.which("pkg-config"), "pkg-config is not installed")
class TestLookup(unittest.TestCase):
    """A copy of the package outside the repository, so that no source tree is next to it."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        shutil.copytree(os.path.join(support.BINDING_DIR, "fanoise"),
                        os.path.join(self.tmp, "pkg", "fanoise"),
                        ignore=shutil.ignore_patterns("__pycache__", "_build_tree.py"))
        self.lib = os.path.join(support.REPO, "lib", "libfanoise.so.0")

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def probe(self, **env):
        full = {k: v for k, v in os.environ.items() if k != "FANOISE_LIBRARY"}
        full.update({"PYTHONPATH": os.path.join(self.tmp, "pkg"), "PKG_CONFIG_PATH": ""})
        full.update(env)
        return subprocess.run([sys.executable, "-c", "import fanoise; print(fanoise.LIBRARY_PATH)"],
                              capture_output=True, text=True, env=full, cwd=self.tmp)

    def test_pkg_config_finds_the_library(self):
        pcdir = os.path.join(self.tmp, "pc")
        os.makedirs(pcdir)
        with open(os.path.join(pcdir, "fanoise.pc"), "w") as f:
            f.write(f"libdir={os.path.dirname(self.lib)}\nName: fanoise\nDescription: test\n"
                    f"Version: {fanoise.version_string()}\nLibs: -L${{libdir}} -lfanoise\n")
        r = self.probe(PKG_CONFIG_PATH=pcdir)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), self.lib)

    def test_the_build_tree_recorded_at_install_is_used(self):
        with open(os.path.join(self.tmp, "pkg", "fanoise", "_build_tree.py"), "w") as f:
            f.write(f"LIBRARY = {self.lib!r}\n")
        r = self.probe()
        self.assertEqual(r.returncode, 0, r.stderr)
        if not subprocess.run(["pkg-config", "--exists", "fanoise"], env={"PKG_CONFIG_PATH": "",
                              "PATH": os.environ.get("PATH", "")}).returncode == 0:
            self.assertEqual(r.stdout.strip(), self.lib)

    def test_without_any_library_the_error_says_what_to_do(self):
        r = self.probe(FANOISE_LIBRARY=os.path.join(self.tmp, "missing.so"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("FANOISE_LIBRARY", r.stderr)


if __name__ == "__main__":
    unittest.main()
