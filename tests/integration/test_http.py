"""Requests that must succeed, spoken over raw sockets: keep-alive, pipelining, split
writes, HEAD, OPTIONS *, HTTP/1.0, connection closing rules, request bodies.
"""
import socket
import time

from support import (ServerCase, every_mode, http_request, in_thread, read_until_close, recv_response,
                     scaled, send_pieces)

GET = http_request()


@every_mode
class KeepAlive(ServerCase):
    def test_several_requests_on_one_connection(self):
        srv = self.start()
        s = self.connect(srv)
        for i in range(5):
            s.sendall(http_request(target=f"/n{i}"))
            status, headers, body, _ = recv_response(s)
            self.assertEqual(status, 200)
            self.assertEqual(body, b"OK\n")
            self.assertNotEqual(headers.get("connection", "").lower(), "close")

    def test_answer_has_the_promised_fields(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(GET)
        status, headers, body, raw = recv_response(s)
        self.assertTrue(raw.startswith(b"HTTP/1.1 200 OK\r\n"), raw)
        for name in ("date", "content-type", "content-length"):
            self.assertIn(name, headers)
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(int(headers["content-length"]), len(body))

    def test_pipelined_requests_in_one_write_answered_in_order(self):
        # Every 7th request is a HEAD: its answer has no body, so an answer out of order
        # or a stray body byte would break the framing of everything after it.
        srv = self.start()
        s = self.connect(srv, timeout=30)
        n = 1000
        methods = ["HEAD" if i % 7 == 3 else "GET" for i in range(n)]
        batch = b"".join(http_request(m, f"/p{i}") for i, m in enumerate(methods))
        sender = in_thread(s.sendall, batch)  # read while sending: no buffer deadlock
        deadline = time.monotonic() + scaled(20, 60)
        for i, m in enumerate(methods):
            left = max(0.1, deadline - time.monotonic())
            status, headers, body, _ = recv_response(s, timeout=left, head_only=(m == "HEAD"))
            self.assertEqual(status, 200, f"answer {i}")
            self.assertEqual(int(headers["content-length"]), 3, f"answer {i}")
            self.assertEqual(body, b"" if m == "HEAD" else b"OK\n", f"answer {i}")
        sender.join(5)
        s.sendall(GET)  # still in step after the burst
        self.assertEqual(recv_response(s)[2], b"OK\n")
        self.assertEqual(read_until_close(s, timeout=0.3), (b"", "timeout"))  # nothing extra


@every_mode
class SplitWrites(ServerCase):
    def test_request_in_pieces(self):
        srv = self.start()
        s = self.connect(srv)
        req = http_request(headers=[("Accept", "*/*")])
        # Cuts inside the method, the target, the version, a CRLF and the final CRLFCRLF.
        cuts = [1, 5, 12, 16, req.index(b"\r\n") + 1, len(req) - 3, len(req) - 1]
        for _ in range(2):
            send_pieces(s, req, cuts)
            status, _, body, _ = recv_response(s)
            self.assertEqual((status, body), (200, b"OK\n"))

    def test_request_one_byte_at_a_time(self):
        srv = self.start()
        s = self.connect(srv, timeout=10)
        req = http_request(method="POST", headers=[("Content-Length", "4")], body=b"abcd")
        send_pieces(s, req, range(1, len(req)), pause=0.005)
        status, _, body, _ = recv_response(s)
        self.assertEqual((status, body), (200, b"OK\n"))
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)


@every_mode
class Methods(ServerCase):
    def test_head_has_get_fields_and_no_body(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(GET)
        _, get_headers, _, _ = recv_response(s)
        s.sendall(http_request("HEAD") + GET)
        status, head_headers, _, _ = recv_response(s, head_only=True)
        self.assertEqual(status, 200)
        self.assertEqual(head_headers["content-length"], get_headers["content-length"])
        self.assertEqual(head_headers["content-type"], get_headers["content-type"])
        # The next bytes must be the GET's status line, not a body.
        status, _, body, _ = recv_response(s)
        self.assertEqual((status, body), (200, b"OK\n"))

    def test_options_asterisk(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(http_request("OPTIONS", "*"))
        status, _, _, _ = recv_response(s)
        self.assertEqual(status, 200)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)

    def test_absolute_form_target(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(http_request(target="http://test/x?y=1"))
        self.assertEqual(recv_response(s)[0], 200)


@every_mode
class ConnectionRules(ServerCase):
    def test_http10_keep_alive_is_honoured_and_said(self):
        srv = self.start()
        s = self.connect(srv)
        req = http_request(version="HTTP/1.0", headers=[("Connection", "keep-alive")])
        for _ in range(3):
            s.sendall(req)
            status, headers, body, _ = recv_response(s)
            self.assertEqual((status, body), (200, b"OK\n"))
            self.assertEqual(headers.get("connection", "").lower(), "keep-alive")

    def test_http10_without_keep_alive_closes(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(http_request(version="HTTP/1.0", host=None))
        status, headers, body, _ = recv_response(s)
        self.assertEqual((status, body), (200, b"OK\n"))
        self.assertNotEqual(headers.get("connection", "").lower(), "keep-alive")
        self.assertEqual(read_until_close(s), (b"", "eof"))

    def test_connection_close_is_honoured(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(http_request(headers=[("Connection", "close")]))
        status, headers, _, _ = recv_response(s)
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("connection", "").lower(), "close")
        self.assertEqual(read_until_close(s), (b"", "eof"))

    def test_close_mode_answers_once(self):
        srv = self.start("--close")
        for _ in range(2):
            s = self.connect(srv)
            s.sendall(GET)
            status, headers, _, _ = recv_response(s)
            self.assertEqual(status, 200)
            self.assertEqual(headers.get("connection", "").lower(), "close")
            self.assertEqual(read_until_close(s), (b"", "eof"))

    def test_max_requests_closes_after_nth_answer(self):
        srv = self.start("--max-requests", "3")
        s = self.connect(srv)
        for i in range(1, 4):
            s.sendall(GET)
            status, headers, _, _ = recv_response(s)
            self.assertEqual(status, 200)
            conn = headers.get("connection", "").lower()
            if i < 3:
                self.assertNotEqual(conn, "close", f"answer {i}")
            else:
                self.assertEqual(conn, "close")
        self.assertEqual(read_until_close(s), (b"", "eof"))

    def test_half_close_still_gets_the_answer(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(GET)
        s.shutdown(socket.SHUT_WR)
        status, _, body, _ = recv_response(s)
        self.assertEqual((status, body), (200, b"OK\n"))
        data, how = read_until_close(s)
        self.assertEqual((data, how), (b"", "eof"))


@every_mode
class Bodies(ServerCase):
    def test_expect_100_continue(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(http_request("POST", headers=[("Content-Length", "10"),
                                                ("Expect", "100-continue")]))
        status, _, _, raw = recv_response(s)
        self.assertEqual(status, 100)
        self.assertTrue(raw.startswith(b"HTTP/1.1 100 Continue\r\n"), raw)
        s.sendall(b"0123456789")
        status, _, body, _ = recv_response(s)
        self.assertEqual((status, body), (200, b"OK\n"))
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)

    def test_sized_body_then_next_request(self):
        srv = self.start()
        s = self.connect(srv)
        # The body looks like a request: if it were parsed as one, a third answer appears.
        body = http_request(target="/smuggled")
        s.sendall(http_request("POST", headers=[("Content-Length", str(len(body)))], body=body))
        self.assertEqual(recv_response(s)[0], 200)
        s.sendall(http_request("HEAD"))
        self.assertEqual(recv_response(s, head_only=True)[0], 200)
        self.assertEqual(read_until_close(s, timeout=0.5), (b"", "timeout"))

    def test_chunked_body_then_next_request(self):
        srv = self.start()
        s = self.connect(srv)
        inner = http_request(target="/smuggled")
        chunked = (b"5;ext=1\r\nhello\r\n"
                   + f"{len(inner):x}\r\n".encode() + inner + b"\r\n"
                   + b"0\r\nX-Trailer: yes\r\n\r\n")
        s.sendall(http_request("POST", headers=[("Transfer-Encoding", "chunked")], body=chunked))
        self.assertEqual(recv_response(s)[0], 200)
        s.sendall(http_request("HEAD"))
        self.assertEqual(recv_response(s, head_only=True)[0], 200)
        self.assertEqual(read_until_close(s, timeout=0.5), (b"", "timeout"))

    def test_large_body_streamed(self):
        srv = self.start()
        s = self.connect(srv, timeout=30)
        size = 300 * 1024
        body = bytes(i % 251 for i in range(size))
        s.sendall(http_request("POST", headers=[("Content-Length", str(size))]))
        for off in range(0, size, 16 * 1024):
            s.sendall(body[off:off + 16 * 1024])
        self.assertEqual(recv_response(s, timeout=30)[0], 200)
        # The same again, chunked, on the same connection.
        s.sendall(http_request("POST", headers=[("Transfer-Encoding", "chunked")]))
        for off in range(0, size, 16 * 1024):
            piece = body[off:off + 16 * 1024]
            s.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        self.assertEqual(recv_response(s, timeout=30)[0], 200)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[2], b"OK\n")
