"""Every error answer is read whole and then followed by a clean close (EOF, never a
reset), even when the client keeps sending after the bad request. Table-driven.
"""
import os
import select
import socket
import tempfile
import time

from support import (ServerCase, every_mode, http_request, read_until_close, recv_response, send_quietly,
                     stop_checked)

H = b"Host: t\r\n"

# (label, request bytes, expected status). Each is sent on a fresh connection.
MALFORMED = [
    ("bad method token", b"GE(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("empty method", b" / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("control byte in target", b"GET /a\x01b HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("HTTP/0.9 request line", b"GET /\r\n", 400),
    ("lower-case version", b"GET / http/1.1\r\n" + H + b"\r\n", 400),
    ("malformed version", b"GET / HTTP/1.x\r\n" + H + b"\r\n", 400),
    ("bad field name", b"GET / HTTP/1.1\r\n" + H + b"Bad(Name: v\r\n\r\n", 400),
    ("empty field name", b"GET / HTTP/1.1\r\n" + H + b": v\r\n\r\n", 400),
    ("space before colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : v\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: v\r\n w\r\n\r\n", 400),
    ("bare CR in a value", b"GET / HTTP/1.1\r\n" + H + b"X-A: v\rw\r\n\r\n", 400),
    ("NUL in a value", b"GET / HTTP/1.1\r\n" + H + b"X-A: v\x00w\r\n\r\n", 400),
    ("missing Host in HTTP/1.1", b"GET / HTTP/1.1\r\nX-A: v\r\n\r\n", 400),
    ("two Host fields", b"GET / HTTP/1.1\r\n" + H + H + b"\r\n", 400),
    ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("Host with a slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    ("Content-Length and Transfer-Encoding",
     b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"0\r\n\r\n", 400),
    ("Transfer-Encoding not ending in chunked",
     b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("Content-Length not a number", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n",
     400),
    ("Content-Length negative", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("Content-Length list that disagrees",
     b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\nhello", 400),
    ("two Content-Length fields that disagree",
     b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
    ("bad chunk size", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nhello\r\n0\r\n\r\n", 400),
    ("unknown transfer coding",
     b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501),
    ("HTTP/2.0 version", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("HTTP/3.0 version", b"GET / HTTP/3.0\r\n" + H + b"\r\n", 505),
    ("h2 connection preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    ("head over the default --max-head",
     b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    ("head over --max-head, never finished", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"a" * 9000,
     431),
]

# After the bad request, bytes a careless server would leave unread and so turn its
# close into a reset that destroys the answer before the client reads it.
GARBAGE = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" + b"x" * 4096 + b"\r\n\r\n"


@every_mode
class ErrorAnswers(ServerCase):
    def check_error_then_close(self, srv, request, expected, garbage, before=b""):
        s = self.connect(srv)
        if before:
            s.sendall(before)
            self.assertEqual(recv_response(s)[0], 200)
        send_quietly(s, request + (garbage or b""))
        if garbage:
            time.sleep(0.05)
            send_quietly(s, garbage)
        status, headers, _, raw = recv_response(s)
        self.assertEqual(status, expected, raw)
        self.assertEqual(headers.get("connection", "").lower(), "close", raw)
        self.assertIn("content-length", headers, raw)
        data, how = read_until_close(s)
        self.assertEqual((data, how), (b"", "eof"))

    def run_table(self, garbage):
        # A short header timeout turns "the server waits for more" into a visible 408.
        srv = self.start("--header-timeout", "2s", "--body-timeout", "2s")
        for label, request, expected in MALFORMED:
            with self.subTest(label, garbage=bool(garbage)):
                self.check_error_then_close(srv, request, expected, garbage)

    def test_each_error_then_clean_close(self):
        self.run_table(garbage=None)

    def test_each_error_then_clean_close_despite_more_input(self):
        self.run_table(garbage=GARBAGE)

    def test_error_after_good_requests_on_the_same_connection(self):
        srv = self.start()
        self.check_error_then_close(srv, b"GE(T / HTTP/1.1\r\n" + H + b"\r\n", 400, GARBAGE,
                                    before=http_request())

    def test_small_max_head(self):
        srv = self.start("--max-head", "1024")
        fits = http_request(headers=[("X-Fill", "a" * 600)])
        s = self.connect(srv)
        s.sendall(fits)
        self.assertEqual(recv_response(s)[0], 200)
        too_big = http_request(headers=[("X-Fill", "a" * 1100)])
        self.check_error_then_close(srv, too_big, 431, GARBAGE)

    def test_queued_answers_survive_the_close(self):
        # The client reads slowly (small receive buffer), so answers pile up unsent in the
        # server; then a bad request and late garbage. A plain close() with unread input
        # would reset the connection and throw the queued answers away.
        srv = self.start()
        s = socket.socket(srv.family, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect((srv.host, srv.port))
        n = 300
        s.sendall(http_request() * n + b"GE(T / HTTP/1.1\r\n" + H + b"\r\n")
        time.sleep(0.3)
        send_quietly(s, GARBAGE)
        time.sleep(0.3)
        for i in range(n):
            self.assertEqual(recv_response(s)[0], 200, f"answer {i}")
        status, headers, _, raw = recv_response(s)
        self.assertEqual(status, 400, raw)
        self.assertEqual(headers.get("connection", "").lower(), "close")
        self.assertEqual(read_until_close(s), (b"", "eof"))

    def test_error_answer_survives_a_large_flood(self):
        # 1 MB after the bad request: more than the socket buffers hold, so the server
        # must keep draining while the client's writes are in flight.
        srv = self.start()
        s = self.connect(srv, timeout=10)
        s.sendall(b"GE(T / HTTP/1.1\r\n" + H + b"\r\n")
        s.setblocking(False)
        flood, sent = b"y" * (1 << 20), 0
        deadline = time.monotonic() + 5
        while sent < len(flood) and time.monotonic() < deadline:
            try:
                sent += s.send(flood[sent:])
            except BlockingIOError:
                time.sleep(0.01)
            except OSError:
                break
        s.setblocking(True)
        status, headers, _, raw = recv_response(s)
        self.assertEqual(status, 400, raw)
        self.assertEqual(headers.get("connection", "").lower(), "close")


@every_mode
class Timeouts(ServerCase):
    def expect_408(self, srv, partial, trickle=b"", answered_first=0):
        s = self.connect(srv, timeout=10)
        s.sendall(partial)
        for _ in range(answered_first):
            self.assertEqual(recv_response(s)[0], 200)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in trickle:  # each byte arrives well within the timeout of the last
            if select.select([s], [], [], 0.1)[0]:
                break  # the answer is here; stop before a close could turn into a reset
            send_quietly(s, bytes([b]))
        status, headers, _, raw = recv_response(s, timeout=8)
        self.assertEqual(status, 408, raw)
        self.assertEqual(headers.get("connection", "").lower(), "close", raw)
        self.assertEqual(read_until_close(s), (b"", "eof"))

    def test_head_not_complete_in_time(self):
        srv = self.start("--header-timeout", "300ms")
        self.expect_408(srv, b"GET / HTTP/1.1\r\nHo")

    def test_head_trickled_past_the_timeout(self):
        # The deadline covers the whole head, not each read: a slowloris must not reset it.
        srv = self.start("--header-timeout", "500ms")
        self.expect_408(srv, b"GET / HTTP/1.1\r\n", trickle=b"X-Slow: " + b"s" * 60)

    def test_second_head_not_complete_in_time(self):
        srv = self.start("--header-timeout", "300ms")
        self.expect_408(srv, http_request() + b"GET / HTTP/1.1\r\nHo", answered_first=1)

    def test_body_stalled(self):
        srv = self.start("--body-timeout", "300ms")
        self.expect_408(srv, http_request("POST", headers=[("Content-Length", "10")], body=b"abc"))

    def test_chunked_body_stalled(self):
        srv = self.start("--body-timeout", "300ms")
        self.expect_408(srv, http_request("POST", headers=[("Transfer-Encoding", "chunked")],
                                          body=b"5\r\nab"))

    def test_reader_that_never_reads_is_dropped(self):
        size = 8 << 20  # far more than the socket buffers on both sides hold
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"z" * size)
        self.addCleanup(os.unlink, f.name)
        srv = self.start("--body-file", f.name, "--write-timeout", "300ms")
        s = socket.socket(srv.family, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(5)
        s.connect((srv.host, srv.port))
        s.sendall(http_request())
        time.sleep(1.5)  # let the write timeout pass while nothing is read
        data, how = read_until_close(s, timeout=10)
        self.assertIn(how, ("eof", "reset"), "the server kept the stalled answer open")
        self.assertLess(len(data), size, "the whole answer fit: the test proves nothing")
        summary = stop_checked(self, srv)
        self.assertEqual(summary["timed_out"], 1, summary)

    def test_idle_keep_alive_connection_is_closed(self):
        srv = self.start("--keepalive-timeout", "300ms")
        s = self.connect(srv, timeout=10)
        s.sendall(http_request())
        self.assertEqual(recv_response(s)[0], 200)
        # Between requests the server may close without an answer (RFC 9112 section 9.5).
        data, how = read_until_close(s, timeout=8)
        self.assertEqual(how, "eof")
        self.assertTrue(data == b"" or data.startswith(b"HTTP/1.1 408 "), data)
