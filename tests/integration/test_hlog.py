"""loadgen's HdrHistogram logs and `loadgen report`: a log is read back exactly, two runs at
R/2 merge into the counts of one run at R, and anything that is not a whole log is refused
with one line naming the file and line (exit 2), never reported in part.
"""
import json
import os
import subprocess
import tempfile
import time
import unittest

import support

N = 200 if support.SLOW else 1000  # requests per full-rate run
RATE = 400 if support.SLOW else 2000
RUN_TIMEOUT = 60


def report(*args):
    proc = support.run([support.LOADGEN_BIN, "report", *args], timeout=RUN_TIMEOUT)
    return proc


class HlogCase(unittest.TestCase):
    def setUp(self):
        for binary in (support.LOADGEN_BIN, support.SERVER_BIN):
            if not os.access(binary, os.X_OK):
                self.skipTest(f"{binary} not built")
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def loadgen(self, url, n, rate, log, *extra):
        argv = [support.LOADGEN_BIN, "--json", "-t", "1", "-c", "4", "-n", str(n), "-R", str(rate),
                "--hlog", log, "--hlog-interval", "200ms", *extra, url]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, proc):
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, err)
        return json.loads(out)

    def test_two_half_rate_runs_merge_into_one_full_rate_run(self):
        with support.Server() as srv:
            start = f"{time.time() + 0.5:.3f}"
            halves = [self.loadgen(srv.url("/"), N // 2, RATE // 2, self.path(f"half{i}.hlog"), "--start-at", start)
                      for i in range(2)]
            half_reports = [self.finish(p) for p in halves]
            whole = self.finish(self.loadgen(srv.url("/"), N, RATE, self.path("whole.hlog")))
        merged_proc = report("--json", self.path("half0.hlog"), self.path("half1.hlog"))
        self.assertEqual(merged_proc.returncode, 0, merged_proc.stderr)
        merged = json.loads(merged_proc.stdout)
        single_proc = report("--json", self.path("whole.hlog"))
        self.assertEqual(single_proc.returncode, 0, single_proc.stderr)
        single = json.loads(single_proc.stdout)
        # Counts are exact.
        self.assertEqual(merged["requests"], N)
        self.assertEqual(merged["requests"], whole["requests"])
        self.assertEqual(single["requests"], whole["requests"])
        self.assertEqual(merged["status"]["2xx"], N)
        self.assertEqual(merged["errors"]["total"], 0)
        self.assertEqual(merged["logs"], 2)
        self.assertEqual(merged["rate"], RATE)
        self.assertEqual(merged["connections"], 8)
        # Both halves began at the same instant, so the merged span is one run's, not two.
        self.assertLess(abs(merged["seconds"] - max(r["seconds"] for r in half_reports)), 0.2, merged)
        # A log says what its run said, within the log histogram's precision (3 digits, 1 us)
        # plus the summary histogram's (2 digits): 1% and 2 us.
        for key in ("p50", "p90", "p99", "max"):
            with self.subTest(key=key):
                got, want = single["latency_us"][key], whole["latency_us"][key]
                self.assertLessEqual(abs(got - want), want * 0.01 + 2, (got, want))
        # The merged percentiles lie within the halves' (precision allowing).
        for key in ("p50", "p99"):
            lo = min(r["latency_us"][key] for r in half_reports)
            hi = max(r["latency_us"][key] for r in half_reports)
            self.assertTrue(lo * 0.99 - 2 <= merged["latency_us"][key] <= hi * 1.01 + 2, (key, lo, hi, merged))

    def test_log_is_an_hdrhistogram_interval_log(self):
        with support.Server() as srv:
            run = self.finish(self.loadgen(srv.url("/"), N // 2, RATE, self.path("a.hlog")))
        with open(self.path("a.hlog")) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "#[Histogram log format version 1.2]")
        self.assertTrue(any(l.startswith("#[StartTime: ") for l in lines))
        self.assertIn('"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"', lines)
        data = [l for l in lines if not l.startswith(("#", '"'))]
        self.assertGreaterEqual(len(data), 1)
        starts = [float(l.split(",")[0]) for l in data]
        self.assertEqual(starts, sorted(starts))
        for l in data:
            start, length, mx, payload = l.split(",")
            self.assertTrue(payload.startswith("HISTF"), l)  # the V2 compressed cookie in base64
            self.assertLessEqual(float(length), 0.2 + 1e-9)
        proc = report("--json", self.path("a.hlog"))
        self.assertEqual(json.loads(proc.stdout)["requests"], run["requests"])

    def test_hdr_histogram_js_reads_our_log_if_installed(self):
        # Optional: only when a developer has hdr-histogram-js where node can find it.
        # Never installed by the tests (no network at test time).
        if not support.have("node"):
            self.skipTest("node is not installed")
        probe = subprocess.run(["node", "-e", "require('hdr-histogram-js')"], capture_output=True, text=True)
        if probe.returncode != 0:
            self.skipTest("hdr-histogram-js is not installed for node (npm install hdr-histogram-js)")
        with support.Server() as srv:
            run = self.finish(self.loadgen(srv.url("/"), N // 2, RATE, self.path("js.hlog")))
        script = ("const h=require('hdr-histogram-js');const r=new h.HistogramLogReader("
                  "require('fs').readFileSync(process.argv[1],'utf8'));let x,n=0;"
                  "while((x=r.nextIntervalHistogram())!=null)n+=x.totalCount;console.log(n)")
        out = subprocess.run(["node", "-e", script, self.path("js.hlog")], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(int(out.stdout), run["requests"])


class BadLogs(unittest.TestCase):
    """Not a log, a truncated log, a corrupt interval: one line naming file and line, exit 2."""

    @classmethod
    def setUpClass(cls):
        if not (os.access(support.LOADGEN_BIN, os.X_OK) and os.access(support.SERVER_BIN, os.X_OK)):
            raise unittest.SkipTest("loadgen or okserve not built")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.good = os.path.join(cls.tmp.name, "good.hlog")
        with support.Server() as srv:
            proc = support.run([support.LOADGEN_BIN, "--json", "-t", "1", "-c", "2", "-n", "200", "-R", "1000",
                                "--hlog", cls.good, "--hlog-interval", "50ms", srv.url("/")], timeout=RUN_TIMEOUT)
        assert proc.returncode == 0, proc.stderr
        with open(cls.good) as f:
            cls.lines = f.read().splitlines(keepends=True)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def write(self, name, text):
        p = os.path.join(self.tmp.name, name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def assert_refused(self, path, line, *extra):
        proc = report(path, *extra)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(proc.stdout, "", "no partial report")
        self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
        self.assertIn(f"{path}:{line}:", proc.stderr)

    def test_good_log_is_accepted(self):
        proc = report(self.good)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("200 requests", proc.stdout)

    def test_not_a_log(self):
        self.assert_refused(self.write("text.hlog", "hello\nworld\n"), 1)
        self.assert_refused(self.write("empty.hlog", ""), 1)

    def test_truncated_logs(self):
        data_lines = [i for i, l in enumerate(self.lines) if l[0].isdigit()]
        self.assertGreaterEqual(len(data_lines), 2)
        # Cut after a whole interval line: the summary line is missing.
        cut = data_lines[1] + 1
        self.assert_refused(self.write("cut.hlog", "".join(self.lines[:cut])), cut)
        # Cut inside a line: that line has no end.
        text = "".join(self.lines[:data_lines[1]]) + self.lines[data_lines[1]][:30]
        self.assert_refused(self.write("mid.hlog", text), data_lines[1] + 1)

    def test_corrupt_interval(self):
        i = [k for k, l in enumerate(self.lines) if l[0].isdigit()][0]
        start, length, mx, payload = self.lines[i].rstrip("\n").split(",")
        for bad in (payload[:-8] + "AAAAAAA=", payload.replace("H", "!", 1), payload[:20]):
            with self.subTest(bad=bad[:30]):
                lines = list(self.lines)
                lines[i] = f"{start},{length},{mx},{bad}\n"
                self.assert_refused(self.write("bad.hlog", "".join(lines)), i + 1)

    def test_one_bad_file_among_good_ones_refuses_all(self):
        bad = self.write("bad2.hlog", "".join(self.lines[:-1]))
        self.assert_refused(bad, len(self.lines) - 1, self.good)

    def test_bad_flag_and_no_files(self):
        for argv in (["--bogus", self.good], []):
            proc = report(*argv)
            self.assertEqual(proc.returncode, 2)
            self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)


if __name__ == "__main__":
    unittest.main()
