"""Build hook for pip (all metadata is in pyproject.toml): records where the library of the
source tree being installed is, if it has been built, so that the installed package finds it
without FANOISE_LIBRARY or a system install (fanoise/_lib.py tries it after pkg-config)."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# bindings/python -> the repository root, whose lib/ holds the built library.
TREE_LIBRARY = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir, "lib", "libfanoise.so.0"))


class BuildPyRecordingTree(build_py):
    """build_py that also writes fanoise/_build_tree.py into the package being built."""

    def run(self):
        super().run()
        library = TREE_LIBRARY if os.path.exists(TREE_LIBRARY) else None
        target = os.path.join(self.build_lib, "fanoise", "_build_tree.py")
        with open(target, "w") as f:
            f.write('"""Written by setup.py at install time: the built library of the source '
                    'tree this\\npackage was installed from (None if it had not been built)."""\n')
            f.write(f"LIBRARY = {library!r}\n")


setup(cmdclass={"build_py": BuildPyRecordingTree})
