"""SIGTERM and SIGINT: stop accepting, answer what was received, close idle connections,
print a balanced summary and exit 0; a second signal exits at once.
"""
import signal
import time

from support import (ServerCase, every_mode, http_request, in_thread, read_until_close, recv_response,
                     recv_response_or_close, scaled, stop_checked)

GET = http_request()


class KeepAliveClient:
    """One load thread: keep-alive requests, reconnecting after `Connection: close`,
    until the server refuses connections or the request budget is spent."""

    def __init__(self, srv, budget, stop_at):
        self.srv, self.budget, self.stop_at = srv, budget, stop_at
        self.complete, self.unanswered, self.partial, self.bad = 0, 0, [], []

    def run(self):
        sock = None
        while self.budget > 0 and time.monotonic() < self.stop_at:
            if sock is None:
                try:
                    sock = self.srv.connect(timeout=5)
                except OSError:
                    return  # the listener is gone: shutdown has begun
            self.budget -= 1
            try:
                sock.sendall(GET)
            except OSError:
                pass  # a closed connection shows up as "none" below
            kind, detail = recv_response_or_close(sock, timeout=10)
            if kind == "complete":
                self.complete += 1
                status, headers, body, raw = detail
                if (status, body) != (200, b"OK\n"):
                    self.bad.append(raw)
                if headers.get("connection", "").lower() != "close":
                    continue
            elif kind == "partial":
                self.partial.append(detail)
            else:
                self.unanswered += 1
            sock.close()
            sock = None
        if sock is not None:
            sock.close()


@every_mode
class GracefulShutdown(ServerCase):
    def test_sigterm_under_load(self):
        srv = self.start("--workers", "2")
        stop_at = time.monotonic() + scaled(30, 90)
        clients = [KeepAliveClient(srv, scaled(20000, 3000), stop_at) for _ in range(4)]
        threads = [in_thread(c.run) for c in clients]
        time.sleep(scaled(0.5, 1.5))
        srv.signal(signal.SIGTERM)
        for t in threads:
            t.join(scaled(30, 90))
            self.assertFalse(t.is_alive(), "a load thread hung after SIGTERM")
        summary = stop_checked(self, srv, sig=None)
        complete = sum(c.complete for c in clients)
        self.assertGreater(complete, 0)
        for c in clients:
            self.assertEqual(c.partial, [], "an answer was cut short")
            self.assertEqual(c.bad, [])
        # Every answer the server counts was read whole by a client, and vice versa.
        self.assertEqual(summary["requests"], complete, summary)

    def test_idle_keep_alive_connection_closed_at_once(self):
        srv = self.start("--drain-timeout", "8s")
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        srv.signal(signal.SIGTERM)
        # Well before the 8 s drain: an idle connection has nothing to wait for.
        self.assertEqual(read_until_close(s, timeout=4), (b"", "eof"))
        summary = stop_checked(self, srv, sig=None, timeout=10)
        self.assertEqual(summary["requests"], 1)

    def test_request_in_flight_answered_with_close(self):
        srv = self.start("--drain-timeout", "30s")
        s = self.connect(srv)
        s.sendall(http_request("POST", headers=[("Content-Length", "10")], body=b"01234"))
        time.sleep(0.2)
        srv.signal(signal.SIGTERM)
        self.assert_not_served_after_signal(srv)
        s.sendall(b"56789")
        status, headers, body, raw = recv_response(s)
        self.assertEqual((status, body), (200, b"OK\n"), raw)
        self.assertEqual(headers.get("connection", "").lower(), "close", raw)
        self.assertEqual(read_until_close(s), (b"", "eof"))
        summary = stop_checked(self, srv, sig=None, timeout=10)
        self.assertEqual(summary["requests"], 1, summary)

    def assert_not_served_after_signal(self, srv):
        """A connection made after the signal is refused or never answered."""
        time.sleep(0.2)
        try:
            late = srv.connect(timeout=2)
        except OSError:
            return
        late.sendall(GET)
        kind, detail = recv_response_or_close(late, timeout=1)
        late.close()
        self.assertNotEqual(kind, "complete", f"answered after SIGTERM: {detail}")

    def test_sigint_is_graceful_too(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        summary = stop_checked(self, srv, sig=signal.SIGINT)
        self.assertEqual(summary["requests"], 1)
        self.assertGreaterEqual(summary["accepted"], 1)

    def test_second_signal_exits_at_once(self):
        srv = self.start("--drain-timeout", "30s")
        s = self.connect(srv)
        s.sendall(http_request("POST", headers=[("Content-Length", "10")], body=b"01234"))
        time.sleep(0.2)
        srv.signal(signal.SIGTERM)
        time.sleep(0.3)
        self.assertIsNone(srv.proc.poll(), "first signal did not wait for the request in flight")
        code, _, _ = srv.stop(signal.SIGTERM, timeout=5)
        self.assertNotEqual(code, "timeout", "second signal did not end the drain")

    def test_drain_timeout_bounds_the_wait(self):
        srv = self.start("--drain-timeout", "500ms")
        s = self.connect(srv)
        s.sendall(http_request("POST", headers=[("Content-Length", "10")], body=b"01234"))
        time.sleep(0.2)
        stop_checked(self, srv, timeout=10)
        data, how = read_until_close(s, timeout=5)
        self.assertIn(how, ("eof", "reset"))

