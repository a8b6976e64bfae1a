"""The load generator: exact counts and zero errors against okserve in every mode, then a
deliberately broken responder (a small Python server in a thread) to prove that each kind of
error is detected, put in the right bucket, and turns into exit status 1.
"""
import json
import os
import socket
import struct
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


if __name__ == "__main__":
    unittest.main()
