"""The bench's yardstick, tools/bench/floor.cpp: a minimal epoll loop. The bench compares
every mode's CPU per answer with it, so it must answer what the bench's clients send, one
answer per request, keep-alive as HTTP/1.1 has it, and stop cleanly on SIGTERM.
"""
import os
import re
import signal
import socket
import subprocess
import unittest

import support

FLOOR_BIN = os.path.join(support.BUILD, "floor")


class Floor(unittest.TestCase):
    def setUp(self):
        if not os.access(FLOOR_BIN, os.X_OK):
            self.fail(f"{FLOOR_BIN} not built (make builds it)")
        self.proc = subprocess.Popen([FLOOR_BIN, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        m = support.STARTUP_RE.search(line)
        self.assertIsNotNone(m, f"start-up line: {line!r}")
        self.port = int(m.group(2))

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)

    def test_pipelined_requests_get_one_answer_each_in_order_and_the_connection_stays(self):
        with self.connect() as s:
            s.sendall(support.http_request() * 16)
            for _ in range(16):
                status, headers, body, _ = support.recv_response(s)
                self.assertEqual((status, body), (200, b"OK\n"))
                self.assertNotIn("connection", headers)
                self.assertRegex(headers["date"], r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
            s.sendall(support.http_request())
            self.assertEqual(support.recv_response(s)[0], 200)

    def test_a_head_split_across_reads_is_answered_once(self):
        with self.connect() as s:
            support.send_pieces(s, support.http_request(headers=[("X-Long", "v" * 3000)]), [5, 40, 2000])
            status, _, body, _ = support.recv_response(s)
            self.assertEqual((status, body), (200, b"OK\n"))
            s.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                s.recv(1)  # nothing more: one request, one answer

    def test_http10_closes_unless_asked_to_keep_alive(self):
        with self.connect() as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data, how = support.read_until_close(s)
            self.assertEqual(how, "eof")
            self.assertIn(b"Connection: close\r\n", data)
            self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 1)
        with self.connect() as s:
            s.sendall(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n" * 2)
            for _ in range(2):
                _, headers, body, _ = support.recv_response(s)
                self.assertEqual((headers.get("connection"), body), ("keep-alive", b"OK\n"))

    def test_connection_close_is_the_last_answer(self):
        with self.connect() as s:
            s.sendall(support.http_request() + support.http_request(headers=[("Connection", "close")])
                      + support.http_request())
            data, how = support.read_until_close(s)
            self.assertEqual(how, "eof")
            self.assertEqual(data.count(b"HTTP/1.1 200 OK"), 2)
            self.assertTrue(data.endswith(b"Connection: close\r\n\r\nOK\n"), data[-80:])

    def test_sigterm_stops_it_and_it_counts_its_answers(self):
        for _ in range(3):
            with self.connect() as s:
                s.sendall(support.http_request())
                support.recv_response(s)
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=10)
        self.assertEqual(self.proc.returncode, 0)
        self.assertIn("floor: 3 answers", out)

    def test_bad_arguments_exit_2_with_one_line(self):
        for argv in (["--port", "x"], ["--port", "70000"], ["--host", "nowhere"], ["--nope"], ["--port"],
                     ["--syscall-cost", "--port", "0"]):
            r = support.run([FLOOR_BIN, *argv], timeout=10)
            self.assertEqual(r.returncode, 2, argv)
            self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
            self.assertTrue(r.stderr.startswith("floor: "), r.stderr)

    def test_syscall_cost_prints_one_positive_figure_and_exits(self):
        r = support.run([FLOOR_BIN, "--syscall-cost"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = re.fullmatch(r"floor syscall_ns=(\d+\.\d)\n", r.stdout)
        self.assertIsNotNone(m, r.stdout)
        self.assertGreater(float(m.group(1)), 0.0)


if __name__ == "__main__":
    unittest.main()
