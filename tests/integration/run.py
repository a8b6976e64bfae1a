#!/usr/bin/env python3
"""Runs every tests/integration/test_*.py module with unittest against one build.

Prints one line per test as it ends, then `integration: N passed, N failed[, N skipped]`.
A skipped test always says why (a missing tool, a feature the kernel lacks).
"""
import argparse
import os
import sys
import time
import unittest


class CountingResult(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    def _line(self, word, test, extra=""):
        took = time.monotonic() - getattr(self, "_t0", time.monotonic())
        self.stream.write(f"  {word:<5} {test.id()} ({took:.2f}s){extra}\n")
        self.stream.flush()

    def addSuccess(self, test):
        unittest.TestResult.addSuccess(self, test)
        self._line("ok", test)

    def addFailure(self, test, err):
        unittest.TestResult.addFailure(self, test, err)
        self._line("FAIL", test)

    def addError(self, test, err):
        unittest.TestResult.addError(self, test, err)
        self._line("ERROR", test)

    def addSkip(self, test, reason):
        unittest.TestResult.addSkip(self, test, reason)
        self._line("skip", test, f": {reason}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build/release", help="build folder holding okserve and loadgen")
    ap.add_argument("-k", dest="pattern", default=None, help="run only tests whose id contains this")
    opts = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    os.environ["OKSERVE_BUILD"] = os.path.abspath(os.path.join(root, opts.build)
                                                  if not os.path.isabs(opts.build) else opts.build)
    sys.path.insert(0, here)

    suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
    if opts.pattern:
        def only(s):
            out = unittest.TestSuite()
            for t in s:
                if isinstance(t, unittest.TestSuite):
                    out.addTests(only(t))
                elif opts.pattern in t.id():
                    out.addTest(t)
            return out
        suite = only(suite)

    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=0, resultclass=CountingResult)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    tail = f", {skipped} skipped" if skipped else ""
    print(f"integration: {passed} passed, {failed} failed{tail}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
