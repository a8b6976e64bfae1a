"""tools/soak: its quick run passes against every mode, its growth detector tells a leak
from noise, and a bad flag is one line and exit 2."""
import importlib.machinery
import importlib.util
import os
import subprocess
import sys
import unittest

from support import LOADGEN_BIN, SERVER_BIN, SLOW

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOAK = os.path.join(ROOT, "tools", "soak", "soak")


def load_soak():
    loader = importlib.machinery.SourceFileLoader("soak", SOAK)
    spec = importlib.util.spec_from_loader("soak", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class Detector(unittest.TestCase):
    def test_flags_growth_and_only_growth(self):
        soak = load_soak()
        flat = [100 << 20] * 60
        noisy = [(100 << 20) + ((i * 7919) % 11 - 5) * (256 << 10) for i in range(60)]
        growing = [(100 << 20) + i * (2 << 20) for i in range(60)]
        self.assertFalse(soak.keeps_growing(flat, 0.2, 4 << 20))
        self.assertFalse(soak.keeps_growing(noisy, 0.2, 4 << 20))
        self.assertTrue(soak.keeps_growing(growing, 0.2, 4 << 20))
        self.assertFalse(soak.keeps_growing(growing[:4], 0.2, 4 << 20))  # too few samples to say


class QuickSoak(unittest.TestCase):
    def test_quick_run_passes_in_every_mode(self):
        # Under ASan the allocator's quarantine keeps freed memory, so RSS grows by design:
        # there the run judges descriptors and the books, not RSS.
        extra = ["--no-rss-check"] if SLOW else []
        r = subprocess.run([sys.executable, SOAK, "--quick", "--bin", SERVER_BIN, "--loadgen", LOADGEN_BIN, *extra],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(r.returncode, 0, r.stdout[-4000:] + r.stderr[-2000:])
        for mode in ("thread", "queue", "pool", "reactor", "uring"):
            self.assertRegex(r.stdout, rf"soak: --mode {mode}: rss ", mode)
        self.assertIn("soak: 5 passed, 0 failed", r.stdout)

    def test_bad_flag_is_one_line_and_exit_2(self):
        for argv in (["--modes", "nosuch"], ["--duration", "x"], ["--bogus"]):
            r = subprocess.run([sys.executable, SOAK, *argv], capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, (argv, r.stdout, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertEqual(r.stdout, "")
