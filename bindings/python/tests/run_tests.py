"""Runs the binding's unittest suite (this directory) and ends with one line
"python: P passed, F failed" for `make check` / `make ci` summaries. Exits 1 if anything failed.
Usage: python3 bindings/python/tests/run_tests.py [unittest name patterns...]"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    loader = unittest.TestLoader()
    if len(sys.argv) > 1:
        loader.testNamePatterns = sys.argv[1:]
    suite = loader.discover(HERE, top_level_dir=HERE)
    result = unittest.TextTestRunner(verbosity=1).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    if result.skipped:
        print(f"python: {len(result.skipped)} skipped")
    print(f"python: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
