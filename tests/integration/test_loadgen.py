"""The load generator: exact counts and zero errors against okserve in every mode, then a
deliberately broken responder (a small Python server in a thread) to prove that each kind of
error is detected, put in the right bucket, and turns into exit status 1.
"""
import json
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import support

# Enough requests to cross many epoll batches; fewer under a sanitizer, which is much slower.
N = 400 if support.SLOW else 4000
RUN_TIMEOUT = 60


def loadgen(*args):
    """Runs loadgen with --json; returns (exit code, parsed JSON or None, stderr)."""
    proc = support.run([support.LOADGEN_BIN, "--json", *args], timeout=RUN_TIMEOUT)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    return proc.returncode, report, proc.stderr


class LoadgenCase(unittest.TestCase):
    def setUp(self):
        if not os.access(support.LOADGEN_BIN, os.X_OK):
            self.skipTest(f"loadgen not built at {support.LOADGEN_BIN}")

    def assert_clean(self, rc, report, err, n):
        self.assertIsNotNone(report, err)
        self.assertEqual(report["errors"]["total"], 0, report)
        self.assertEqual(rc, 0, err)
        self.assertEqual(report["requests"], n, report)
        self.assertEqual(report["status"]["2xx"], n, report)
        lat = report["latency_us"]
        self.assertTrue(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"], lat)


class AgainstOkserve(LoadgenCase):
    """Every mode, a bounded count, and the server's own books must agree with ours."""

    def setUp(self):
        super().setUp()
        if not os.access(support.SERVER_BIN, os.X_OK):
            self.skipTest(f"okserve not built at {support.SERVER_BIN}")

    def run_mode(self, *flags, n=N, server_flags=(), host="127.0.0.1"):
        with support.Server(*server_flags, host=host) as srv:
            rc, report, err = loadgen("-t", "2", "-c", "8", "-n", str(n), *flags, srv.url("/"))
            code, _, _ = srv.stop()
        self.assert_clean(rc, report, err, n)
        self.assertEqual(code, 0)
        summary = srv.summary()
        if summary is not None and "requests" in summary:
            self.assertEqual(summary["requests"], n, summary)
        return report

    def test_keep_alive(self):
        report = self.run_mode()
        self.assertEqual(report["mode"], "keep-alive")

    def test_connection_per_request(self):
        report = self.run_mode("--close")
        self.assertEqual(report["mode"], "close")

    def test_pipeline_16(self):
        report = self.run_mode("--pipeline", "16")
        self.assertEqual(report["pipeline"], 16)

    def test_rate_limited(self):
        n = 200 if support.SLOW else 1000
        report = self.run_mode("-R", "2000", n=n)
        self.assertEqual(report["rate"], 2000)

    def test_server_closing_every_few_requests_is_not_an_error(self):
        self.run_mode("--pipeline", "4", server_flags=("--max-requests", "5"))

    def test_ipv6(self):
        if not socket.has_ipv6:
            self.skipTest("no IPv6 in this kernel")
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError as e:
            self.skipTest(f"::1 not usable: {e}")
        self.run_mode(n=N // 4, host="::1")


def _ok(body=b"OK\n", extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


class Responder:
    """A one-behaviour HTTP responder on 127.0.0.1:0. `behaviour(conn)` is called after each
    request head is read and returns False to end the connection."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self.threads[0].start()

    def url(self):
        return f"http://127.0.0.1:{self.port}/"

    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        conn.settimeout(5)
        buf = b""
        try:
            while not self.stopping.is_set():
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf.split(b"\r\n\r\n", 1)[1]
                if not self.behaviour(conn):
                    return
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.sock.close()
        for t in self.threads:
            t.join(timeout=5)
        return False


def send_then(data, keep=True):
    def behaviour(conn):
        conn.sendall(data)
        return keep
    return behaviour


def reset(conn):
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return False


def too_slow(conn):
    time.sleep(1.0)
    return False


class AgainstBrokenResponder(LoadgenCase):
    """One connection, three requests, a short --timeout: each fault must land in its bucket."""

    def check_kind(self, behaviour, kind, n=3, exact=True):
        with Responder(behaviour) as r:
            rc, report, err = loadgen("-t", "1", "-c", "1", "-n", str(n), "--timeout", "300ms", r.url())
        self.assertIsNotNone(report, err)
        self.assertEqual(rc, 1, report)
        errors = report["errors"]
        self.assertGreater(errors[kind], 0, errors)
        for other in ("connect", "reset", "timeout", "bad_status", "bad_framing"):
            if other != kind:
                self.assertEqual(errors[other], 0, (other, errors))
        # -n is exact: every request is answered or counted as failed, never both, never lost.
        # Bytes that arrive when no request is in flight are an error of the connection, not of
        # a request, so they come on top.
        failed = errors["total"] - errors["bad_status"]
        if exact:
            self.assertEqual(report["requests"] + failed, n, report)
        else:
            self.assertLessEqual(report["requests"], n, report)
            self.assertGreaterEqual(report["requests"] + failed, n, report)
        return report

    def test_wrong_status(self):
        report = self.check_kind(send_then(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"), "bad_status")
        self.assertEqual(report["status"]["5xx"], 3)

    def test_malformed_status_line(self):
        self.check_kind(send_then(b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n"), "bad_framing")

    def test_content_length_shorter_than_body(self):
        self.check_kind(send_then(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK\n"), "bad_framing",
                        exact=False)

    def test_truncated_answer(self):
        self.check_kind(send_then(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nOK", keep=False), "bad_framing")

    def test_reset(self):
        self.check_kind(reset, "reset")

    def test_closed_without_answer(self):
        self.check_kind(lambda conn: False, "reset")

    def test_slow_beyond_timeout(self):
        self.check_kind(too_slow, "timeout", n=2)

    def test_connection_refused(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        rc, report, err = loadgen("-t", "1", "-c", "2", "-n", "4", f"http://127.0.0.1:{port}/")
        self.assertIsNotNone(report, err)
        self.assertEqual(rc, 1)
        self.assertEqual(report["errors"]["connect"], 4, report)
        self.assertEqual(report["requests"], 0)
        self.assertEqual(report["connect_attempts"], 4, report)
        self.assertIn("Connection refused (ECONNREFUSED)", report["error_messages"]["connect"])
        # The human summary says why, on one line per kind.
        proc = support.run([support.LOADGEN_BIN, "-t", "1", "-c", "2", "-n", "4", f"http://127.0.0.1:{port}/"],
                           timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("connect 4 (of 4 connection attempts)", proc.stdout)
        self.assertIn(f"first connect error: connect 127.0.0.1:{port}: Connection refused (ECONNREFUSED)", proc.stdout)

    def test_error_text_is_escaped_onto_one_line(self):
        # A status the checker refuses; its message must not carry the server's bytes raw.
        with Responder(send_then(b"HTTP/1.1 200\r\x1b[2J OK\r\nContent-Length: 0\r\n\r\n")) as r:
            proc = support.run([support.LOADGEN_BIN, "-t", "1", "-c", "1", "-n", "2", "--timeout", "300ms", r.url()],
                               timeout=RUN_TIMEOUT)
        self.assertNotIn("\x1b", proc.stdout + proc.stderr)
        self.assertNotIn("\r", proc.stdout + proc.stderr)

    def test_server_close_after_answer_and_chunked_are_clean(self):
        behaviours = [
            send_then(_ok(extra=b"Connection: close\r\n"), keep=False),
            send_then(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nOK\n\r\n0\r\n\r\n"),
            send_then(b"HTTP/1.1 200 OK\r\n\r\nbody until the close", keep=False),
        ]
        for i, behaviour in enumerate(behaviours):
            with self.subTest(i=i), Responder(behaviour) as r:
                rc, report, err = loadgen("-t", "1", "-c", "2", "-n", "20", r.url())
                self.assert_clean(rc, report, err, 20)


class SaysWhatHappened(LoadgenCase):
    def setUp(self):
        super().setUp()
        if not os.access(support.SERVER_BIN, os.X_OK):
            self.skipTest(f"okserve not built at {support.SERVER_BIN}")

    def test_rate_beyond_the_server_warns_and_strict_fails(self):
        # 10 million req/s is beyond any 2-core loopback; the run is bounded to 1 second.
        with support.Server() as srv:
            plain = support.run([support.LOADGEN_BIN, "-t", "1", "-c", "4", "-d", "1s", "-R", "10000000", srv.url("/")],
                                timeout=RUN_TIMEOUT)
            strict = support.run([support.LOADGEN_BIN, "--json", "--strict", "-t", "1", "-c", "4", "-d", "1s",
                                  "-R", "10000000", srv.url("/")], timeout=RUN_TIMEOUT)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertIn("Rate: requested 10000000 req/s, achieved", plain.stdout)
        self.assertIn("never sent", plain.stdout)
        self.assertEqual(len(plain.stderr.strip().splitlines()), 1, plain.stderr)
        self.assertIn("warning: achieved", plain.stderr)
        self.assertEqual(strict.returncode, 3, strict.stderr)
        report = json.loads(strict.stdout)
        self.assertFalse(report["rate_met"])
        self.assertGreater(report["never_sent"] + report["late"], 0, report)
        # Scheduled = sent + never sent: nothing is lost from the books.
        self.assertAlmostEqual(report["sent"] + report["never_sent"], 10_000_000 * report["seconds"],
                               delta=10_000_000 * 0.05 + 10)

    def test_rate_kept_is_not_a_warning(self):
        with support.Server() as srv:
            proc = support.run([support.LOADGEN_BIN, "--json", "--strict", "-t", "1", "-c", "4", "-n", "200",
                                "-R", "500", srv.url("/")], timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(json.loads(proc.stdout)["rate_met"])
        self.assertEqual(proc.stderr, "")

    def test_banner_comes_before_the_run(self):
        with support.Server() as srv:
            p = subprocess.Popen([support.LOADGEN_BIN, "-t", "1", "-c", "1", "-d", "1s", "-R", "50", srv.url("/")],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                first = support.Server._read_line(p.stdout, 0.8)  # well before the 1 s run ends
                alive = p.poll() is None
            finally:
                out, _ = p.communicate(timeout=RUN_TIMEOUT)
        self.assertTrue(first.startswith("Running 1s test @ http://127.0.0.1:"), first)
        self.assertTrue(alive, "the banner must come while the run is going on")
        self.assertNotIn("Running", out)
        proc = support.run([support.LOADGEN_BIN, "-t", "1", "-c", "1", "-n", "3", "http://127.0.0.1:1/"], timeout=20)
        self.assertTrue(proc.stdout.startswith("Running 3 requests @ http://127.0.0.1:1/"), proc.stdout)

    def test_json_lines(self):
        with support.Server() as srv:
            proc = support.run([support.LOADGEN_BIN, "--json-lines", "-t", "1", "-c", "2", "-d", "2500ms", "-R", "200",
                                srv.url("/")], timeout=RUN_TIMEOUT)
            plain = support.run([support.LOADGEN_BIN, "--json", "-t", "1", "-c", "2", "-n", "10", srv.url("/")],
                                timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        objects = [json.loads(line) for line in proc.stdout.splitlines()]
        progress = [o for o in objects if o["type"] == "progress"]
        self.assertEqual(objects[-1]["type"], "result")
        self.assertEqual(len(objects), len(progress) + 1)
        self.assertGreaterEqual(len(progress), 2)  # at 1 s and 2 s of a 2.5 s run
        for o in progress:
            self.assertEqual(set(o), {"type", "elapsed_s", "requests", "errors", "rps"})
        self.assertEqual([o["requests"] for o in progress], sorted(o["requests"] for o in progress))
        result = dict(objects[-1])
        del result["type"]
        self.assertEqual(list(result), list(json.loads(plain.stdout)), "the same fields as --json, in order")
        self.assertGreaterEqual(result["requests"], progress[-1]["requests"])
        bad = support.run([support.LOADGEN_BIN, "--json", "--json-lines", "http://127.0.0.1:1/"], timeout=10)
        self.assertEqual(bad.returncode, 2)

    def test_start_at_in_the_past_starts_at_once_with_a_warning(self):
        with support.Server() as srv:
            proc = support.run([support.LOADGEN_BIN, "--json", "-t", "1", "-c", "1", "-n", "5", "--start-at",
                                f"{time.time() - 100:.3f}", srv.url("/")], timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["requests"], 5)
        self.assertIn("in the past: starting now", proc.stderr)
        for bad in ("yesterday", "-5", "nan"):
            p = support.run([support.LOADGEN_BIN, "--start-at", bad, "http://127.0.0.1:1/"], timeout=10)
            self.assertEqual(p.returncode, 2, bad)

    def test_body_file_must_be_a_readable_regular_file(self):
        with tempfile.TemporaryDirectory() as d:
            for path in (d, os.path.join(d, "missing"), "/dev/null"):
                with self.subTest(path=path):
                    proc = support.run([support.LOADGEN_BIN, "-n", "1", "--body-file", path, "http://127.0.0.1:1/"],
                                       timeout=10)
                    self.assertEqual(proc.returncode, 2)
                    self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
                    self.assertIn(path, proc.stderr)
                    self.assertEqual(proc.stdout, "")

    def test_body_is_sent_whole_and_held_once(self):
        size = 32 << 20
        with tempfile.NamedTemporaryFile() as body:
            body.write(os.urandom(4096) * (size // 4096))
            body.flush()
            expected = open(body.name, "rb").read()
            got = []

            def serve(conn):
                # Reads whole requests (head + Content-Length body) and answers each.
                conn.settimeout(20)
                buf = b""
                with conn:
                    while True:
                        while b"\r\n\r\n" not in buf:
                            chunk = conn.recv(1 << 20)
                            if not chunk:
                                return
                            buf += chunk
                        head, buf = buf.split(b"\r\n\r\n", 1)
                        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                        while len(buf) < length:
                            chunk = conn.recv(1 << 20)
                            if not chunk:
                                return
                            buf += chunk
                        got.append(length == size and buf[:length] == expected)
                        buf = buf[length:]
                        conn.sendall(_ok())

            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            listener.settimeout(20)
            url = f"http://127.0.0.1:{listener.getsockname()[1]}/"

            def accept_two():
                for _ in range(2):
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        return
                    threading.Thread(target=serve, args=(conn,), daemon=True).start()
            acceptor = threading.Thread(target=accept_two, daemon=True)
            acceptor.start()
            # A child python reports loadgen's peak RSS (ru_maxrss of its only child).
            code = ("import resource,subprocess,sys;r=subprocess.run(sys.argv[1:]);"
                    "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
            try:
                proc = support.run(["python3", "-c", code, support.LOADGEN_BIN, "-t", "2", "-c", "2", "-n", "4",
                                    "--pipeline", "2", "--timeout", "20s", "-m", "POST", "--body-file", body.name, url],
                                   timeout=RUN_TIMEOUT)
            finally:
                listener.close()
                acceptor.join(timeout=5)
        rc, rss_kb = proc.stdout.split()[-2:]
        self.assertEqual(rc, "0", proc.stdout + proc.stderr)
        self.assertEqual(got, [True] * 4)
        # One mapping of the body, whatever the threads and depth: well under two copies
        # (before, each thread held depth + 1 copies).
        self.assertLess(int(rss_kb) * 1024, 2 * size + (64 << 20) * (3 if support.SLOW else 1), rss_kb)

    def test_version_is_okserve_s(self):
        a = support.run([support.LOADGEN_BIN, "--version"], timeout=10)
        b = support.run([support.SERVER_BIN, "--version"], timeout=10)
        self.assertEqual(a.returncode, 0)
        self.assertEqual(a.stdout, b.stdout)
        self.assertTrue(a.stdout.strip())


class CommandLine(LoadgenCase):
    def test_bad_flag_is_one_line_and_exit_2(self):
        for argv in (["--bogus", "http://127.0.0.1:1/"], ["-d", "10x", "http://127.0.0.1:1/"], []):
            with self.subTest(argv=argv):
                proc = support.run([support.LOADGEN_BIN, *argv], timeout=10)
                self.assertEqual(proc.returncode, 2)
                self.assertEqual(len(proc.stderr.strip().splitlines()), 1, proc.stderr)
                self.assertEqual(proc.stdout, "")

    def test_help(self):
        proc = support.run([support.LOADGEN_BIN, "--help"], timeout=10)
        self.assertEqual(proc.returncode, 0)
        self.assertIn("--rate", proc.stdout)

    def test_human_summary_and_quiet_stderr_when_not_a_terminal(self):
        with Responder(send_then(_ok())) as r:
            proc = support.run([support.LOADGEN_BIN, "-t", "1", "-c", "1", "-n", "10", "--latency", r.url()],
                               timeout=RUN_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("Requests/sec:", proc.stdout)
        self.assertIn("99.9%", proc.stdout)
        self.assertEqual(proc.stderr, "")
        self.assertTrue(proc.stdout.startswith("Running 10 requests @ "), proc.stdout)


if __name__ == "__main__":
    unittest.main()
