"""The benchmark harness (tools/bench/bench.py) in its quick size: it must produce the
markdown table with every scenario, a CSV with numbers in it, a well-formed SVG, zero
errors for okserve, and leave no process it started behind.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

import support

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "tools", "bench", "bench.py")
SCENARIO_LABELS = ["keep-alive", "connection per request (wrk)", "connection per request (ab)",
                   "pipelined x16 (", "pipelined x16 (loadgen)", "ab -k", "fixed rate"]
NUMERIC = ["rounds", "rps_median", "rps_min", "rps_max", "cpu_us_per_req", "errors_total"]
TIMEOUT = 600
MODES = ["thread", "queue", "pool", "reactor", "uring"]


def _nginx():
    return shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK)


def _pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class BenchQuick(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.skip_reason = cls._why_skip()
        if cls.skip_reason:
            return
        cls.out = tempfile.mkdtemp(prefix="okserve-bench-test-")
        argv = [sys.executable, BENCH, "--quick", "--out", cls.out, "--bin", support.SERVER_BIN,
                "--loadgen", support.LOADGEN_BIN,
                "--pool-bench", os.path.join(support.BUILD, "pool_bench"),
                "--floor", os.path.join(support.BUILD, "floor")]
        cls.proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT,
                                  cwd=ROOT, stdin=subprocess.DEVNULL)

    @staticmethod
    def _why_skip():
        if support.SLOW:
            return "sanitizer build: benchmark numbers would mean nothing"
        if not _nginx():
            return "nginx not installed (make bench installs it)"
        if not shutil.which("wrk"):
            return "wrk not installed"
        if not os.access(support.SERVER_BIN, os.X_OK):
            return f"okserve not built at {support.SERVER_BIN}"
        return ""

    @classmethod
    def tearDownClass(cls):
        if not cls.skip_reason:
            shutil.rmtree(cls.out, ignore_errors=True)

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr[-2000:])

    def csv_rows(self):
        with open(os.path.join(self.out, "bench.csv"), newline="") as f:
            return list(csv.DictReader(f))

    def test_markdown_table_has_every_scenario(self):
        table = [ln for ln in self.proc.stdout.splitlines() if ln.startswith("| ")]
        self.assertTrue(any(ln.startswith("| scenario | server |") for ln in table))
        for label in SCENARIO_LABELS:
            with self.subTest(scenario=label):
                self.assertTrue(any(ln.startswith(f"| {label}") for ln in table),
                                f"no row for {label!r}")
        self.assertIn("# okserve vs nginx", self.proc.stdout)
        self.assertIn("- machine:", self.proc.stdout)
        # The floor is built, so the price of a system call is measured and reported.
        self.assertRegex(self.proc.stdout, r"(?m)^- a system call: [1-9]\d* ns ")

    def test_csv_cells_are_numeric(self):
        rows = self.csv_rows()
        ran = [r for r in rows if not r["skipped"]]
        self.assertTrue(any(r["scenario"] == "keepalive" for r in ran), rows)
        self.assertEqual({r["server"] for r in ran} >= {"nginx"}, True)
        for r in ran:
            for key in NUMERIC:
                with self.subTest(scenario=r["scenario"], server=r["server"], column=key):
                    self.assertGreaterEqual(float(r[key]), 0.0)
            self.assertGreater(float(r["rps_median"]), 0.0)

    def test_okserve_has_zero_errors_everywhere(self):
        rows = [r for r in self.csv_rows() if r["server"].startswith("okserve")]
        self.assertTrue(rows, "no okserve rows in the CSV")
        for r in rows:
            with self.subTest(scenario=r["scenario"], server=r["server"]):
                self.assertEqual(r["skipped"], "", "an okserve row was skipped")
                self.assertEqual(int(r["errors_total"]), 0, r["errors_detail"])

    def test_every_mode_runs_every_scenario_beside_nginx(self):
        rows = self.csv_rows()
        servers = {r["server"] for r in rows}
        self.assertEqual(servers, {f"okserve-{m}" for m in MODES} | {"okserve-pool+admin", "floor", "nginx"})
        for r in rows:
            with self.subTest(scenario=r["scenario"], server=r["server"]):
                self.assertEqual(r["skipped"], "")
                self.assertGreater(float(r["rps_median"]), 0.0)
                self.assertGreater(float(r["ratio_vs_nginx"]), 0.0)
                self.assertGreater(float(r["cpu_ratio_vs_nginx"]), 0.0)
                self.assertGreaterEqual(float(r["ctxsw_per_req"]), 0.0)
                self.assertGreater(float(r["syscalls_per_req"]), 0.0)

    def test_the_floor_answers_every_scenario_and_each_mode_is_measured_against_it(self):
        """The minimal epoll loop runs every scenario with zero errors, and every other
        row's CPU per answer is given as a multiple of the floor's, in the CSV and the report."""
        rows = self.csv_rows()
        for r in rows:
            with self.subTest(scenario=r["scenario"], server=r["server"]):
                if r["server"] == "floor":
                    self.assertEqual(int(r["errors_total"]), 0, r["errors_detail"])
                    self.assertEqual(float(r["cpu_ratio_vs_floor"]), 1.0)
                else:
                    self.assertGreater(float(r["cpu_ratio_vs_floor"]), 0.0)
        with open(os.path.join(self.out, "report.md")) as f:
            section = f.read().split("## Distance to the floor", 1)[1].split("\n## ", 1)[0]
        head = next(ln for ln in section.splitlines() if ln.startswith("| scenario"))
        self.assertEqual([c.strip() for c in head.strip("| ").split("|")][2:],
                         [f"okserve-{m}" for m in MODES] + ["okserve-pool+admin", "nginx"])
        for label in SCENARIO_LABELS:
            with self.subTest(scenario=label):
                line = next((ln for ln in section.splitlines() if ln.startswith(f"| {label}")), None)
                self.assertIsNotNone(line, section)
                cells = [c.strip() for c in line.strip("| ").split("|")]
                self.assertGreater(float(cells[1]), 0.0)  # the floor's own CPU us per answer
                self.assertTrue(all(float(c.rstrip("x")) > 0 for c in cells[2:]), line)

    def test_sweep_under_simulated_work(self):
        """With --work sleep:10ms the workers are the bottleneck: about 100 answers a
        second per worker (an upper bound only), and reject turns waiting into 503s."""
        with open(os.path.join(self.out, "sweep.csv"), newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["work"] == "sleep:10ms"]
        self.assertTrue(rows, "no sweep rows under --work")
        for r in rows:
            with self.subTest(workers=r["workers"], overflow=r["overflow"]):
                self.assertGreater(float(r["ok_rps"]), 0.0)
                self.assertLessEqual(float(r["ok_rps"]), 100.0 * int(r["workers"]) * 1.1)
                self.assertEqual(int(r["client_errors"]), 0, r["error_text"])
        self.assertTrue(any(int(r["rejected"]) > 0 for r in rows if r["overflow"] == "reject"))
        self.assertTrue(all(int(r["rejected"]) == 0 for r in rows if r["overflow"] == "block"))

    def test_admin_overhead_is_reported(self):
        """The pool with --admin, scraped every second, beside the pool without it."""
        with open(os.path.join(self.out, "report.md")) as f:
            text = f.read()
        section = text.split("## What watching costs", 1)[1].split("\n## ", 1)[0]
        rows = [ln for ln in section.splitlines() if ln.startswith("| keepalive") or ln.startswith("| close")]
        self.assertTrue(rows, section)
        for ln in rows:
            ratio = float(ln.rstrip(" |").rsplit("|", 1)[1].strip().rstrip("x"))
            self.assertGreater(ratio, 0.0)
        m = re.search(r"/metrics scrapes: (\d+) answered, (\d+) failed", section)
        self.assertIsNotNone(m, section)
        self.assertGreater(int(m.group(1)), 0)
        self.assertEqual(int(m.group(2)), 0)

    def test_memory_rows_for_every_mode_and_nginx(self):
        with open(os.path.join(self.out, "memory.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        idle = {r["server"]: r for r in rows if r["kind"] == "idle"}
        slow = {r["server"]: r for r in rows if r["kind"] == "slow"}
        for m in MODES:
            with self.subTest(mode=m):
                self.assertGreater(float(idle[f"okserve-{m}"]["value"]), 0.0, idle.get(f"okserve-{m}"))
                self.assertGreaterEqual(float(slow[f"okserve-{m}"]["value"]), -1.0, slow.get(f"okserve-{m}"))
        self.assertGreater(float(idle["nginx"]["value"]), 0.0, idle.get("nginx"))
        self.assertIn("## Memory", self.proc.stdout)

    def test_pool_bench_tables_and_csvs(self):
        out = self.proc.stdout
        self.assertIn("## Throughput: empty jobs", out)
        self.assertIn("## Hand-off latency", out)
        if len(os.sched_getaffinity(0)) >= 2:
            self.assertRegex(out, r"## Throughput: .*producers on CPU \d+, workers on CPU \d+")
        for name, kinds in (("pool_bench.csv", {"jobs_per_s"}),
                            ("pool_bench_handoff.csv", {"handoff_p50_us", "handoff_p99_us"})):
            with self.subTest(csv=name):
                with open(os.path.join(self.out, name), newline="") as f:
                    rows = list(csv.DictReader(f))
                self.assertEqual({r["kind"] for r in rows}, kinds)
                self.assertEqual({r["pool"] for r in rows}, {"okserve", "baseline"})
                self.assertTrue(all(float(r["value"]) > 0 for r in rows), rows)

    def test_svg_is_well_formed(self):
        root = ET.parse(os.path.join(self.out, "bench.svg")).getroot()
        self.assertTrue(root.tag.endswith("svg"), root.tag)
        ns = "{http://www.w3.org/2000/svg}"
        self.assertGreater(len(root.findall(f".//{ns}rect")), 5)
        texts = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
        self.assertIn("keep-alive", texts)
        # Each of the eight servers (five modes, pool+admin, the floor, nginx) has a colour
        # of its own in the legend.
        swatches = [r.get("fill") for r in root.iter(f"{ns}rect")
                    if r.get("width") == "14.0" and r.get("height") == "14.0"]
        self.assertEqual(len(swatches), len(MODES) + 3)
        self.assertEqual(len(set(swatches)), len(swatches), swatches)
        # The sweep under simulated work gets a map of its own, not cells among the others.
        self.assertIn("The same under --work sleep:10ms", texts)

    def test_nothing_it_started_is_left_running(self):
        with open(os.path.join(self.out, "pids.json")) as f:
            pids = json.load(f)
        self.assertTrue(pids, "the harness reported no PIDs")
        self.assertIn(f"pids started: {' '.join(str(p) for p in pids)}", self.proc.stdout)
        alive = [p for p in pids if _pid_alive(p)]
        self.assertEqual(alive, [], "processes still running after the harness exited")


if __name__ == "__main__":
    unittest.main()


class PoolBenchCommandLine(unittest.TestCase):
    """pool_bench on its own: one cell, pinned, and its answer to bad flags."""
    BIN = os.path.join(support.BUILD, "pool_bench")

    def setUp(self):
        if not os.access(self.BIN, os.X_OK):
            self.skipTest(f"pool_bench not built at {self.BIN}")

    def run_bench(self, *args):
        return subprocess.run([self.BIN, *args], capture_output=True, text=True, timeout=TIMEOUT,
                              stdin=subprocess.DEVNULL)

    def test_one_cell_pinned(self):
        proc = self.run_bench("--quick", "--cell", "2x1", "--pin")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ") and ln[2].isdigit()]
        self.assertEqual(len(rows), 1, proc.stdout)
        cells = [c.strip() for c in rows[0].strip("|").split("|")]
        self.assertEqual(cells[:2], ["2", "1"])
        self.assertGreater(float(cells[2].split()[0]), 0.0)
        self.assertGreater(float(cells[3].split()[0]), 0.0)
        self.assertNotIn("## Hand-off", proc.stdout)
        if len(os.sched_getaffinity(0)) >= 2:
            self.assertIn("producers on CPU", proc.stdout)
        else:
            self.assertIn("--pin needs two CPUs", proc.stderr)

    def test_bad_flags_exit_2_with_one_line(self):
        for args in (["--cell", "3"], ["--cell", "0x1"], ["--cell", "3x1"], ["--only", "nothing"], ["--bogus"]):
            with self.subTest(args=args):
                proc = self.run_bench(*args)
                self.assertEqual(proc.returncode, 2)
                self.assertEqual(proc.stdout, "")
                lines = proc.stderr.splitlines()
                self.assertEqual(len(lines), 1, proc.stderr)
                self.assertTrue(lines[0].startswith("usage: pool_bench"), lines[0])
