"""The command line: flags, environment variables, start-up failures, IPv6, and the
options that shape the answer.
"""
import email.utils
import os
import re
import socket
import subprocess
import tempfile
import time

from support import SERVER_BIN, ServerCase, http_request, recv_response

DATE_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                     r"Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")


def run_server(*args, env=None, timeout=10):
    """Runs okserve to completion (for flags that make it exit at once)."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("OKSERVE_") and k != "PORT"}
    full_env.update(env or {})
    return subprocess.run([SERVER_BIN, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env)


def clean_env(**extra):
    """The environment for a Server, with our variables unset unless given."""
    env = {k: None for k in ("OKSERVE_HOST", "OKSERVE_PORT", "OKSERVE_WORKERS", "OKSERVE_QUEUE",
                           "PORT")}
    env.update(extra)
    return env


class BadFlags(ServerCase):
    BAD = [
        ["--no-such-flag"],
        ["--port", "x"],
        ["--port", "70000"],
        ["--workers", "0"],
        ["--workers", "two"],
        ["--overflow", "maybe"],
        ["--mode", "nosuchmode"],
        ["--status", "99"],
        ["--status", "1000"],
        ["--header", "Bad Name: x"],
        ["--header", "NoColon"],
        ["--header", "X: a\r\nb"],
        ["--body-file", "/nonexistent/okserve-body"],
        ["--body-file", "/"],                      # a directory: no abort, one line
        ["--body-file", "/dev/null/x"],
        ["--status", "199"],
        ["--status", "600"],
        ["--status", "100"],
        ["--max-body", "lots"],
        ["--mode", "queue", "--workers", "2"],     # one consumer, by definition
        ["--mode", "reactor", "--queue", "8"],     # a flag the mode has no use for
        ["--mode", "thread", "--min-workers", "1"],
        ["--mode", "pool", "--listeners", "shared"],
        ["--defer-accept", "maybe"],
        ["--header-timeout", "soon"],
        ["--max-head", "-5"],
        ["--port"],
    ]

    def test_bad_flag_exits_2_with_one_line(self):
        for argv in self.BAD:
            with self.subTest(argv=argv):
                r = run_server("--port", "0", *argv)
                self.assertEqual(r.returncode, 2, (r.stdout, r.stderr))
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertNotIn("listen=", r.stdout)

    def test_help_and_version_on_stdout(self):
        for flag in ("--help", "-h", "--version", "-V"):
            with self.subTest(flag=flag):
                r = run_server(flag)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertTrue(r.stdout.strip(), "nothing on stdout")
                self.assertEqual(r.stderr, "")
        self.assertIn("--port", run_server("--help").stdout)

    def test_port_in_use_exits_1_naming_bind(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            r = run_server("--host", "127.0.0.1", "--port", str(port))
        self.assertEqual(r.returncode, 1, (r.stdout, r.stderr))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn("bind", lines[0])
        self.assertIn(f"127.0.0.1:{port}", lines[0])


class Environment(ServerCase):
    def test_okserve_port_zero(self):
        srv = self.start("--host", "127.0.0.1", port0=False, env=clean_env(OKSERVE_PORT="0"))
        self.assertNotEqual(srv.port, 0)
        self.assertGet200(srv)

    def test_plain_port_variable(self):
        srv = self.start("--host", "127.0.0.1", port0=False, env=clean_env(PORT="0"))
        self.assertGet200(srv)

    def test_flag_wins_over_environment(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            busy = str(taken.getsockname()[1])
            srv = self.start("--workers", "2", env=clean_env(OKSERVE_PORT=busy, PORT=busy,
                                                             OKSERVE_WORKERS="3"))
            self.assertNotEqual(srv.port, int(busy))
        self.assertIn("workers=2", srv.startup_line)
        self.assertGet200(srv)

    def test_workers_and_queue_from_environment(self):
        srv = self.start(env=clean_env(OKSERVE_WORKERS="3", OKSERVE_QUEUE="5"))
        self.assertIn("workers=3", srv.startup_line)
        self.assertIn("queue=8 (3+5)", srv.startup_line)
        self.assertGet200(srv)

    def test_startup_line_shape(self):
        srv = self.start("--workers", "2", env=clean_env())
        line = srv.startup_line
        self.assertTrue(line.startswith("okserve: mode=pool listen=127.0.0.1:"), line)
        for key in ("workers=2", "queue=66 (2+64)", "backlog=4096", "nofile=",
                    "max-connections="):
            self.assertIn(key, line)

    def assertGet200(self, srv):
        s = self.connect(srv)
        s.sendall(http_request())
        self.assertEqual(recv_response(s)[0], 200)


def ipv6_loopback_works():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Ipv6(ServerCase):
    def test_serves_on_ipv6_loopback(self):
        if not ipv6_loopback_works():
            self.skipTest("::1 is not available on this machine")
        srv = self.start(host="::1")
        self.assertIn("listen=[::1]:", srv.startup_line)
        s = self.connect(srv)
        s.sendall(http_request(host="[::1]"))
        self.assertEqual(recv_response(s)[:3:2], (200, b"OK\n"))


class ResponseOptions(ServerCase):
    def get(self, srv, n=1, method="GET"):
        s = self.connect(srv)
        out = []
        for _ in range(n):
            s.sendall(http_request(method))
            out.append(recv_response(s, head_only=(method == "HEAD")))
        return out

    def test_status_204_has_no_body_and_keeps_step(self):
        srv = self.start("--status", "204")
        for status, headers, body, raw in self.get(srv, 3):
            self.assertTrue(raw.startswith(b"HTTP/1.1 204 No Content\r\n"), raw)
            self.assertEqual(body, b"")
            self.assertNotIn("transfer-encoding", headers)

    def test_status_201(self):
        srv = self.start("--status", "201", "--body", "made\n")
        (status, _, body, raw), = self.get(srv)
        self.assertTrue(raw.startswith(b"HTTP/1.1 201 Created\r\n"), raw)
        self.assertEqual(body, b"made\n")

    def test_body_and_content_type(self):
        srv = self.start("--body", '{"ok":true}', "--content-type", "application/json")
        for _, headers, body, _ in self.get(srv, 2):
            self.assertEqual(body, b'{"ok":true}')
            self.assertEqual(headers["content-length"], str(len(body)))
            self.assertEqual(headers["content-type"], "application/json")

    def test_body_file_byte_identical(self):
        data = bytes(range(256)) * 300 + b"\r\n\r\nHTTP/1.1 200 OK\r\n"
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
        self.addCleanup(os.unlink, f.name)
        srv = self.start("--body-file", f.name)
        for _, headers, body, _ in self.get(srv, 3):
            self.assertEqual(headers["content-length"], str(len(data)))
            self.assertEqual(body, data)
        (_, head_headers, _, _), = self.get(srv, method="HEAD")
        self.assertEqual(head_headers["content-length"], str(len(data)))

    def test_repeated_header_and_server_header(self):
        srv = self.start("-H", "X-One: 1", "--header", "X-Two: two words", "--server-header")
        (_, headers, _, raw), = self.get(srv)
        self.assertEqual(headers.get("x-one"), "1")
        self.assertEqual(headers.get("x-two"), "two words")
        self.assertEqual(headers.get("server"), "okserve")
        self.assertEqual(raw.count(b"\r\nDate: "), 1, raw)

    def test_no_server_header_by_default(self):
        srv = self.start()
        (_, headers, _, _), = self.get(srv)
        self.assertNotIn("server", headers)

    def test_date_is_well_formed_and_current(self):
        srv = self.start()
        for _, headers, _, _ in self.get(srv, 2):
            date = headers.get("date", "")
            self.assertRegex(date, DATE_RE)
            when = email.utils.parsedate_to_datetime(date).timestamp()
            # A sanity bound against a stale or unset cache, not a timing assertion.
            self.assertLess(abs(when - time.time()), 300, date)

    def test_body_identical_across_requests_and_connections(self):
        srv = self.start("--body", "same every time")
        bodies = {r[2] for _ in range(3) for r in self.get(srv, 3)}
        self.assertEqual(bodies, {b"same every time"})
