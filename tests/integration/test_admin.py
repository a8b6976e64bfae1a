"""The admin listener (--admin): /metrics, /stats.json, /events, /health, /ready with
--drain-delay, its own path under a full queue, 404/405; and what it reports on: the rate
limit's 429s, --work, the access log; the probe subcommand; bad admin flags."""
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

from support import (SERVER_BIN, SLOW, ServerCase, every_mode, http_request, only_modes, recv_response, run,
                     stop_checked)

GET = http_request()
REQUIRED = ["connections_accepted_total", "connections_active", "requests_total", "rejected_total",
            "rate_limited_total", "timed_out_total", "closed_by_client_total", "errors_total", "queue_depth",
            "queue_capacity", "workers", "workers_busy", "accept_errors_total"]


def fetch(url, method="GET", timeout=5.0):
    """(status, headers, body) for one request; HTTP errors are answers too."""
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def metrics(srv):
    """The samples of /metrics as {name-with-labels: float}."""
    status, headers, body = fetch(srv.admin_url("/metrics"))
    assert status == 200, status
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def wait_for(check, timeout=5.0, what="condition"):
    """Polls check() until it returns a true value (which it returns) or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_metric(srv, name, value, timeout=5.0):
    """Polls /metrics until `name` reads `value` (counters are summed from per-thread
    tallies a moment after each turn); returns the samples."""
    return wait_for(lambda: (lambda m: m if m.get(name) == value else None)(metrics(srv)), timeout=timeout,
                    what=f"{name} == {value}")


def ask_times(tc, srv, n):
    """n keep-alive GETs on one connection, each answered 200."""
    s = tc.connect(srv)
    for _ in range(n):
        s.sendall(GET)
        tc.assertEqual(recv_response(s)[0], 200)
    s.close()


def stats(srv):
    status, _, body = fetch(srv.admin_url("/stats.json"))
    assert status == 200, status
    return json.loads(body)


@every_mode
class AdminEndpoints(ServerCase):
    def test_metrics_stats_and_events(self):
        srv = self.start("--admin", "127.0.0.1:0", "--admin-interval", "200ms")
        ask_times(self, srv, 5)

        status, headers, body = fetch(srv.admin_url("/metrics"))
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4")
        text = body.decode()
        for name in REQUIRED + ["request_duration_seconds"]:
            self.assertIn(f"# HELP okserve_{name} ", text)
            self.assertIn(f"# TYPE okserve_{name} ", text)
        m = wait_metric(srv, "okserve_requests_total", 5)
        self.assertEqual(m["okserve_request_duration_seconds_count"], 5)
        self.assertGreater(m["okserve_request_duration_seconds_sum"], 0)
        buckets = [(k, v) for k, v in m.items() if k.startswith("okserve_request_duration_seconds_bucket")]
        self.assertEqual(len(buckets), 20)
        values = [v for _, v in buckets]
        self.assertEqual(values, sorted(values), "buckets are cumulative")
        self.assertEqual(buckets[-1], ('okserve_request_duration_seconds_bucket{le="+Inf"}', 5))
        self.assertGreaterEqual(m["okserve_workers"], 1)
        self.assertEqual(m["okserve_connections_accepted_total"], 1)

        st = stats(srv)
        self.assertEqual(st["mode"], self.mode)
        self.assertEqual(st["totals"]["requests"], 5)
        self.assertTrue(st["ready"])
        for key in ("p50", "p90", "p99", "p99.9"):
            self.assertIn(key, st["latency_us"])
        self.assertGreaterEqual(st["gauges"]["workers"], 1)

        # /events: the snapshot at once, then one per interval.
        e = srv.admin_connect()
        self.addCleanup(e.close)
        e.sendall(b"GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
        buf = b""
        deadline = time.monotonic() + 5
        while buf.count(b"\ndata: ") < 3 and time.monotonic() < deadline:
            buf += e.recv(65536)
        head, _, stream = buf.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 OK\r\n"), head)
        self.assertIn(b"Content-Type: text/event-stream\r\n", head)
        self.assertNotIn(b"Content-Length", head)
        events = [json.loads(line[6:]) for line in stream.decode().splitlines() if line.startswith("data: ")]
        self.assertGreaterEqual(len(events), 3)
        self.assertLess(events[1]["uptime_s"], events[2]["uptime_s"])
        self.assertEqual(events[2]["totals"]["requests"], 5)

    def test_health_ready_and_errors(self):
        srv = self.start("--admin", "127.0.0.1:0")
        self.assertEqual(fetch(srv.admin_url("/health"))[0], 200)
        self.assertEqual(fetch(srv.admin_url("/ready"))[0], 200)
        status, headers, body = fetch(srv.admin_url("/nope"))
        self.assertEqual(status, 404)
        for path in ("/metrics", "/stats.json", "/health", "/ready", "/events", "/"):
            status, headers, _ = fetch(srv.admin_url(path), method="POST")
            self.assertEqual(status, 405, path)
            self.assertEqual(headers["Allow"], "GET, HEAD")
        status, headers, _ = fetch(srv.admin_url("/load/start"))
        self.assertEqual((status, headers["Allow"]), (405, "POST"))
        # HEAD: the length without the body; keep-alive: two on one connection.
        a = srv.admin_connect()
        self.addCleanup(a.close)
        a.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\n\r\n")
        status, headers, body, _ = recv_response(a, head_only=True)
        self.assertEqual(status, 200)
        self.assertGreater(int(headers["content-length"]), 100)
        status, _, body, _ = recv_response(a)
        self.assertEqual((status, body), (200, b"ok\n"))
        # The live page is one HTML document with nothing fetched from elsewhere.
        status, headers, body = fetch(srv.admin_url("/"))
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(b"EventSource", body)
        self.assertNotRegex(body.decode(), r"(src|href)=[\"']?(https?:)?//")
        # The main listener still answers the fixed answer on every path.
        s = self.connect(srv)
        s.sendall(http_request(target="/metrics"))
        self.assertEqual(recv_response(s)[2], b"OK\n")


@every_mode
class Drain(ServerCase):
    def test_ready_fails_first_and_drain_delay_keeps_serving(self):
        srv = self.start("--admin", "127.0.0.1:0", "--drain-delay", "1500ms")
        srv.signal(signal.SIGTERM)
        wait_for(lambda: fetch(srv.admin_url("/ready"))[0] == 503, timeout=2, what="/ready 503")
        status, headers, _ = fetch(srv.admin_url("/ready"))
        self.assertEqual(headers["Retry-After"], "1")
        # Still serving during the delay: new connections are answered.
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        s.close()
        self.assertEqual(fetch(srv.admin_url("/health"))[0], 200)
        summary = stop_checked(self, srv, sig=None)
        self.assertEqual(summary["requests"], 1)


@only_modes("pool", "queue", "reactor")
class AdminUnderLoad(ServerCase):
    """Every worker asleep in --work and the queue full: /metrics is answered at once by
    the admin listener's own thread, and shows the queue and the busy workers."""

    def test_metrics_answer_while_workers_are_busy(self):
        srv = self.start("--admin", "127.0.0.1:0", "--workers", "1", "--queue", "2", "--work", "sleep:400ms",
                         "--drain-timeout", "30s")
        clients = []
        for _ in range(6):
            c = self.connect(srv, timeout=30)
            c.sendall(GET)
            clients.append(c)
        time.sleep(0.3)
        t0 = time.monotonic()
        m = metrics(srv)
        took = time.monotonic() - t0
        # Served through the queue, it would wait behind six requests of 400 ms each.
        self.assertLess(took, 1.2, f"/metrics took {took:.3f}s")
        self.assertEqual(m["okserve_workers"], 1)
        self.assertEqual(m["okserve_workers_busy"], 1)
        if self.mode in ("pool", "queue"):
            self.assertGreaterEqual(m["okserve_queue_depth"], 2)
            self.assertGreater(m["okserve_queue_capacity"], 0)
        for c in clients:
            self.assertEqual(recv_response(c, timeout=30)[0], 200)
        m = wait_metric(srv, "okserve_requests_total", 6)
        # Each waited its turn: the slowest took at least six times 400 ms.
        self.assertGreater(m["okserve_request_duration_seconds_sum"], 6 * 0.4)


@every_mode
class RateLimit(ServerCase):
    def test_excess_gets_429_with_retry_after_and_the_connection_stays(self):
        srv = self.start("--admin", "127.0.0.1:0", "--rate-limit", "4", "--rate-burst", "2")
        s = self.connect(srv)
        s.sendall(GET * 6)
        statuses = []
        for _ in range(6):
            status, headers, body, _ = recv_response(s)
            statuses.append(status)
            if status == 429:
                self.assertEqual(headers["retry-after"], "1")
                self.assertEqual(body, b"Too Many Requests\n")
                self.assertNotIn("connection", headers)
        self.assertEqual(statuses[:2], [200, 200])
        self.assertIn(429, statuses)
        limited = statuses.count(429)
        time.sleep(0.6)  # two tokens come back at 4 per second
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200, "the same connection is served again")
        m = wait_metric(srv, "okserve_requests_total", 7)
        self.assertEqual(m["okserve_rate_limited_total"], limited)
        s.close()
        summary = stop_checked(self, srv)
        self.assertEqual(summary["rate_limited"], limited)
        self.assertEqual(summary["requests"], 7)


@every_mode
class AccessLogFile(ServerCase):
    def test_one_line_per_request(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "access.log")
            srv = self.start("--access-log", path)
            s = self.connect(srv)
            s.sendall(GET + http_request("HEAD", "/x?y=1"))
            self.assertEqual(recv_response(s)[0], 200)
            self.assertEqual(recv_response(s, head_only=True)[0], 200)
            s.sendall(b"GET /bad HTTP/1.1\r\nHost: a\r\nContent-Length: z\r\n\r\n")
            self.assertEqual(recv_response(s)[0], 400)
            s.close()
            stop_checked(self, srv)
            with open(path) as f:
                lines = f.read().splitlines()
        self.assertEqual(len(lines), 3, lines)
        clf = re.compile(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "([^"]*)" (\d{3}) (\d+|-)$')
        parsed = [clf.match(line).groups() for line in lines]
        self.assertEqual(parsed, [("GET / HTTP/1.1", "200", "3"), ("HEAD /x?y=1 HTTP/1.1", "200", "-"),
                                  ("GET /bad HTTP/1.1", "400", "12")])

    def test_sighup_reopens_the_file(self):
        """logrotate's way: move the file away, SIGHUP, and new lines go to a new file."""
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "access.log")
            srv = self.start("--access-log", path)
            s = self.connect(srv)
            s.sendall(GET)
            self.assertEqual(recv_response(s)[0], 200)
            wait_for(lambda: os.path.exists(path) and os.path.getsize(path) > 0, what="the first line")
            os.rename(path, path + ".1")
            srv.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: os.path.exists(path), what="the file opened again")
            s.sendall(http_request(target="/after"))
            self.assertEqual(recv_response(s)[0], 200)
            s.close()
            stop_checked(self, srv)
            with open(path + ".1") as f:
                old = f.read()
            with open(path) as f:
                new = f.read()
        self.assertIn('"GET / HTTP/1.1" 200 3', old)
        self.assertNotIn("/after", old)
        self.assertIn('"GET /after HTTP/1.1" 200 3', new)

    def test_a_full_disk_never_stops_answers(self):
        srv = self.start("--admin", "127.0.0.1:0", "--access-log", "/dev/full")
        ask_times(self, srv, 20)
        wait_metric(srv, "okserve_access_log_dropped_total", 20)
        stop_checked(self, srv)
        self.assertEqual(srv.stderr.count("--access-log"), 1, srv.stderr)


class Work(ServerCase):
    def test_sleep_work_is_in_the_latency(self):
        srv = self.start("--admin", "127.0.0.1:0", "--work", "sleep:150ms")
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        m = wait_metric(srv, "okserve_request_duration_seconds_count", 1)
        self.assertGreaterEqual(m["okserve_request_duration_seconds_sum"], 0.15)
        self.assertEqual(m['okserve_request_duration_seconds_bucket{le="0.1"}'], 0)


class Probe(ServerCase):
    def probe(self, *args, timeout=10):
        return run([SERVER_BIN, "probe", *args], timeout=timeout)

    def test_probe(self):
        srv = self.start("--admin", "127.0.0.1:0")
        r = self.probe(srv.url("/"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("200 OK", r.stdout)
        r = self.probe(srv.admin_url("/ready"))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.probe(srv.admin_url("/nope"))
        self.assertEqual((r.returncode, r.stderr.strip()), (1, f"okserve probe: {srv.admin_url('/nope')}: status 404 Not Found"))
        # Nothing listening: refused.
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        r = self.probe(f"http://127.0.0.1:{port}/")
        self.assertEqual(r.returncode, 1)
        self.assertIn("connection refused", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)
        # Listening but never answering: timed out, within the timeout given.
        mute = socket.socket()
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        self.addCleanup(mute.close)
        r = self.probe(f"http://127.0.0.1:{mute.getsockname()[1]}/", "--timeout", "300ms")
        self.assertEqual(r.returncode, 1)
        self.assertIn("timed out", r.stderr)
        # A 5xx is a failure.
        bad = self.start("--status", "503")
        r = self.probe(bad.url("/"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("status 503", r.stderr)
        # Usage errors.
        for args in (["ftp://x/"], ["http://127.0.0.1:99999/"], ["--nope"], ["http://a/", "http://b/"]):
            r = self.probe(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)


class BadAdminFlags(ServerCase):
    def test_malformed_values_exit_2(self):
        for args in (["--admin", "9090"], ["--admin", "127.0.0.1:99999"], ["--admin-interval", "0"],
                     ["--work", "nap:1ms"], ["--work", "sleep:-1ms"], ["--rate-limit", "abc"],
                     ["--rate-limit", "0"], ["--rate-burst", "0"], ["--access-log", ""]):
            r = run([SERVER_BIN, "--port", "0", *args], timeout=10)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertEqual(r.stdout, "")

    def test_admin_port_in_use_exits_1_before_serving(self):
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        self.addCleanup(taken.close)
        port = taken.getsockname()[1]
        r = run([SERVER_BIN, "--port", "0", "--admin", f"127.0.0.1:{port}"], timeout=10)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertNotIn("listen=", r.stdout)


class InstanceHeader(ServerCase):
    def test_every_answer_names_its_instance(self):
        srv = self.start("--instance-header")
        s = self.connect(srv)
        s.sendall(GET + http_request("HEAD"))
        for head_only in (False, True):
            status, headers, _, _ = recv_response(s, head_only=head_only)
            self.assertEqual(headers["okserve-instance"], f"{socket.gethostname()}:{srv.port}")
        named = self.start("--instance-name", "blue-1")
        s = self.connect(named)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[1]["okserve-instance"], "blue-1")
        r = run([SERVER_BIN, "--port", "0", "--instance-name", ""], timeout=10)
        self.assertEqual(r.returncode, 2)


class LoadTester(ServerCase):
    """The live page's load tester, through its API: a bounded loadgen run against the main
    listener, its progress and result, a stop, and the limits."""

    def post(self, srv, path):
        status, _, body = fetch(srv.admin_url(path), method="POST", timeout=10)
        return status, json.loads(body)

    def wait_state(self, srv, states, timeout=60):
        return wait_for(lambda: (lambda s: s if s["state"] in states else None)(json.loads(fetch(srv.admin_url("/load"))[2])),
                        timeout=timeout, what=f"load state in {states}")

    def test_run_to_the_end_then_stop_one(self):
        srv = self.start("--admin", "127.0.0.1:0", "--admin-interval", "200ms")
        status, body = self.post(srv, "/load/start?requests=2000&connections=4")
        self.assertEqual(status, 202, body)
        self.assertEqual((body["state"], body["run"]), ("running", 1))
        self.assertEqual(self.post(srv, "/load/start?requests=10")[0], 409)  # one at a time
        done = self.wait_state(srv, ("done", "failed"))
        self.assertEqual(done["state"], "done", done)
        result = done["result"]
        self.assertEqual(result["requests"], 2000)
        self.assertEqual(result["errors"]["total"], 0)
        self.assertEqual(result["status"]["2xx"], 2000)
        self.assertIn("p99", result["latency_us"])
        self.assertEqual(done["params"]["connections"], 4)
        # The server counted them, and the snapshot carries the load's state.
        wait_for(lambda: stats(srv)["totals"]["requests"] == 2000, what="2000 answers counted")
        self.assertEqual(stats(srv)["load"]["state"], "done")
        # A long run, stopped: loadgen still reports what it did.
        status, body = self.post(srv, "/load/start?duration=30s&connections=2&rate=200&keepalive=0")
        self.assertEqual((status, body["run"]), (202, 2), body)
        wait_for(lambda: json.loads(fetch(srv.admin_url("/load"))[2])["progress"] is not None, timeout=10,
                 what="a progress line")
        self.assertEqual(self.post(srv, "/load/stop")[0], 202)
        stopped = self.wait_state(srv, ("stopped", "failed", "done"), timeout=15)
        self.assertEqual(stopped["state"], "stopped", stopped)
        self.assertGreater(stopped["result"]["requests"], 0)
        self.assertLess(stopped["result"]["seconds"], 20)
        self.assertEqual(stopped["result"]["errors"]["total"], 0)
        self.assertEqual(self.post(srv, "/load/stop")[0], 409)  # nothing runs now

    def test_bad_parameters_are_400_with_the_reason(self):
        srv = self.start("--admin", "127.0.0.1:0")
        for query in ("duration=2m", "connections=0", "rate=-1", "requests=5&duration=1s", "threads=3"):
            status, body = self.post(srv, "/load/start?" + query)
            self.assertEqual(status, 400, query)
            self.assertTrue(body["error"], query)
        self.assertEqual(json.loads(fetch(srv.admin_url("/load"))[2])["state"], "idle")
