"""RFC 9110/9112 corners found when tried by hand: CONNECT, an empty Host, --max-body,
bodiless statuses, any final status, an empty line after a body, and the default worker
count under taskset."""
import re
import socket
import subprocess
import time

from support import (SERVER_BIN, ServerCase, every_mode, http_request, read_until_close, recv_response,
                     scaled, stop_checked)


class Refusals(ServerCase):
    def test_connect_is_refused_with_405_and_a_close(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        status, headers, _, raw = recv_response(s)
        self.assertEqual(status, 405, raw)
        self.assertIn("GET", headers.get("allow", ""), raw)
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(read_until_close(s), (b"", "eof"))

    def test_empty_host_is_a_400(self):
        srv = self.start()
        for host_line in (b"Host:", b"Host:   "):
            s = self.connect(srv)
            s.sendall(b"GET / HTTP/1.1\r\n" + host_line + b"\r\n\r\n")
            self.assertEqual(recv_response(s)[0], 400, host_line)

    def test_max_body_makes_413_reachable(self):
        srv = self.start("--max-body", "100")
        s = self.connect(srv)
        s.sendall(http_request("POST", headers=[("Content-Length", "101")], body=b"x" * 101))
        self.assertEqual(recv_response(s)[0], 413)
        s = self.connect(srv)
        chunked = b"40\r\n" + b"y" * 64 + b"\r\n40\r\n" + b"y" * 64 + b"\r\n0\r\n\r\n"
        s.sendall(http_request("POST", headers=[("Transfer-Encoding", "chunked")], body=chunked))
        self.assertEqual(recv_response(s)[0], 413)
        s = self.connect(srv)  # at the limit is fine
        s.sendall(http_request("POST", headers=[("Content-Length", "100")], body=b"x" * 100))
        self.assertEqual(recv_response(s)[0], 200)


class Statuses(ServerCase):
    def raw_answer(self, srv):
        s = self.connect(srv)
        s.sendall(http_request(headers=[("Connection", "close")]))
        data, how = read_until_close(s)
        self.assertEqual(how, "eof")
        return data

    def test_204_and_304_have_no_length_and_no_body(self):
        for code in ("204", "304"):
            srv = self.start("--status", code, "--body", "ignored")
            data = self.raw_answer(srv)
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertTrue(head.startswith(b"HTTP/1.1 " + code.encode()), data)
            self.assertNotIn(b"content-length", head.lower())
            self.assertEqual(body, b"")

    def test_205_has_no_body(self):
        srv = self.start("--status", "205", "--body", "ignored")
        head, _, body = self.raw_answer(srv).partition(b"\r\n\r\n")
        self.assertIn(b"Content-Length: 0", head)
        self.assertEqual(body, b"")

    def test_any_final_status_is_accepted(self):
        for code, line in (("207", b"HTTP/1.1 207 Multi-Status\r\n"), ("226", b"HTTP/1.1 226 IM Used\r\n"),
                           ("425", b"HTTP/1.1 425 Too Early\r\n"), ("599", b"HTTP/1.1 599 \r\n")):
            srv = self.start("--status", code)
            self.assertTrue(self.raw_answer(srv).startswith(line), code)


@every_mode
class EmptyLineAfterABody(ServerCase):
    def test_idle_connection_closes_silently_and_is_answered(self):
        srv = self.start("--keepalive-timeout", "500ms")
        s = self.connect(srv)
        # A CRLF after the body, as some clients send: an empty line, not a new request.
        s.sendall(http_request("POST", headers=[("Content-Length", "2")], body=b"ok\r\n"))
        self.assertEqual(recv_response(s)[0], 200)
        data, how = read_until_close(s, timeout=scaled(5, 15))
        self.assertEqual((data, how), (b"", "eof"), "expected a silent close, not a 408")
        summary = stop_checked(self, srv)
        self.assertEqual(summary["answered"], 1, summary)
        self.assertEqual(summary["timed_out"], 0, summary)


class DefaultWorkers(ServerCase):
    def test_taskset_one_cpu_starts_one_worker(self):
        if not subprocess.run(["sh", "-c", "command -v taskset"], capture_output=True).returncode == 0:
            self.skipTest("taskset is not installed")
        p = subprocess.Popen(["taskset", "-c", "0", SERVER_BIN, "--port", "0", "--mode", "reactor"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
        finally:
            p.terminate()
            p.communicate(timeout=10)
        self.assertIn(" workers=1 ", line)
