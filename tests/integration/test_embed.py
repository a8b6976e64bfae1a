"""okserve as a library: `make install` (PREFIX and DESTDIR) puts the binaries, the static
libraries, the header and okserve.pc in place; examples/embed builds against the installed
tree with pkg-config and runs two servers in one process; `make uninstall` removes exactly
what was installed."""
import os
import shutil
import subprocess
import tempfile
import unittest

from support import BUILD, run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VARIANT = os.path.basename(os.path.normpath(BUILD))
if VARIANT not in ("release", "asan", "tsan", "debug"):
    VARIANT = "release"  # a build folder of another name (BUILD=build/dev) holds a release build
# A sanitizer build's archive needs its runtime at link time: the flags of that variant.
SANITIZER_FLAGS = {"asan": ["-fsanitize=address,undefined"], "tsan": ["-fsanitize=thread"]}.get(VARIANT, [])
INSTALLED = ["bin/okserve", "bin/loadgen", "lib/libokserve.a", "lib/libokpool.a", "include/okserve/okserve.hpp",
             "lib/pkgconfig/okserve.pc"]


def make(*args, timeout=600):
    return run(["make", "-s", "-C", ROOT, f"VARIANT={VARIANT}", f"BUILD={BUILD}", *args], timeout=timeout)


def files_under(top):
    out = set()
    for d, _, names in os.walk(top):
        for n in names:
            out.add(os.path.relpath(os.path.join(d, n), top))
    return out


@unittest.skipUnless(shutil.which("pkg-config"), "pkg-config is not installed (tools/deps.sh installs it)")
class Library(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="okserve-embed-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_install_build_against_it_run_and_uninstall(self):
        prefix = os.path.join(self.tmp, "prefix")
        r = make("install", f"PREFIX={prefix}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(files_under(prefix), set(INSTALLED))
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "lib", "pkgconfig"))
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "okserve"], env=env, capture_output=True,
                               text=True, timeout=30)
        self.assertEqual(flags.returncode, 0, flags.stderr)
        self.assertIn(f"-I{prefix}/include", flags.stdout)
        version = subprocess.run(["pkg-config", "--modversion", "okserve"], env=env, capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        out = run([os.path.join(prefix, "bin", "okserve"), "--version"]).stdout.strip()
        self.assertEqual(out, f"okserve {version}")
        # The example, compiled from the installed header and archives only.
        exe = os.path.join(self.tmp, "embed")
        cc = run(["g++", "-O1", "-Wall", "-Wextra", "-Werror", *SANITIZER_FLAGS,
                  os.path.join(ROOT, "examples", "embed", "embed.cpp"), *flags.stdout.split(), "-o", exe], timeout=300)
        self.assertEqual(cc.returncode, 0, cc.stderr)
        ran = run([exe], timeout=120)
        self.assertEqual(ran.returncode, 0, ran.stdout + ran.stderr)
        self.assertIn("all passed", ran.stdout)
        self.assertNotIn("FAIL", ran.stdout)
        for mark in ("Sanitizer", "runtime error:"):
            self.assertNotIn(mark, ran.stderr)
        r = make("uninstall", f"PREFIX={prefix}")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(files_under(prefix), set())

    def test_destdir_stages_under_the_prefix(self):
        stage = os.path.join(self.tmp, "stage")
        r = make("install", f"DESTDIR={stage}", "PREFIX=/opt/okserve")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(files_under(stage), {f"opt/okserve/{f}" for f in INSTALLED})
        with open(os.path.join(stage, "opt/okserve/lib/pkgconfig/okserve.pc")) as f:
            self.assertIn("prefix=/opt/okserve\n", f.read())
        r = make("uninstall", f"DESTDIR={stage}", "PREFIX=/opt/okserve")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(files_under(stage), set())
