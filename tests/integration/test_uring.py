"""--mode uring's receive flow control, beside the reactor's: a pipelining client that
sends far more than it reads must lose no byte and must not make the server buffer its
input without bound; a provided buffer ring that runs dry (ENOBUFS ends a receive) must
not leave a connection unserved. Multishot receives and the single-shot fallback
(OKSERVE_URING_RECV=single) are both run."""
import socket
import threading
import time

from support import SLOW, ServerCase, http_request, in_thread, recv_response, scaled, stop_checked

BODY = "b" * 1000
PAD = "p" * 900
REQUEST = http_request(headers=[("X-Pad", PAD)])
TOTAL_BYTES = 64 << 20  # of requests the client tries to push before it reads anything
BUFFERED_MAX = 40 << 20  # what the kernel's socket buffers and the server may hold


def rss_kib(pid):
    """Resident memory of a process, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class FlowControl(ServerCase):
    """Runs in the classes below: mode and environment come from them."""
    mode = None
    env = None

    def start_server(self, *args):
        srv = self.start(*args, env=self.env)
        if self.mode == "uring" and "mode=uring" not in srv.startup_line:
            self.skipTest("io_uring is not available here (the start-up line says why on stderr)")
        return srv

    def test_pipelining_client_that_reads_slowly(self):
        srv = self.start_server("--workers", "1", "--body", BODY, "--write-timeout", "60s")
        count = TOTAL_BYTES // len(REQUEST)
        s = self.connect(srv, timeout=scaled(30, 120))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        pushed = [0]
        failed = []

        def sender():
            try:
                chunk = REQUEST * 64
                left = count
                while left > 0:
                    n = min(64, left)
                    s.sendall(chunk if n == 64 else REQUEST * n)
                    pushed[0] += n * len(REQUEST)
                    left -= n
            except OSError as e:
                failed.append(e)

        rss_before = rss_kib(srv.pid)
        t = in_thread(sender)
        # Read nothing until the sender has made no progress for a second (it is blocked:
        # the server stopped taking input), or has pushed everything (a server that
        # buffers without bound), or a generous guard has passed.
        last, still_since = -1, time.monotonic()
        guard = time.monotonic() + scaled(30, 120)
        while t.is_alive() and time.monotonic() < guard:
            time.sleep(0.1)
            if pushed[0] != last:
                last, still_since = pushed[0], time.monotonic()
            elif time.monotonic() - still_since >= 1.0:
                break
        stalled_at = pushed[0]
        rss_grew = rss_kib(srv.pid) - rss_before
        print(f"    [{self.id().split('.')[-2]}] pushed {stalled_at >> 20} MiB of {TOTAL_BYTES >> 20} "
              f"before reading; server RSS grew {rss_grew} KiB")
        self.assertLess(stalled_at, BUFFERED_MAX,
                        "the server took the client's input while it could not answer it")
        if not SLOW:  # a sanitizer's quarantine keeps freed memory resident by design
            self.assertLess(rss_grew, BUFFERED_MAX >> 10, "the server's memory grew with the unread input")

        # Now read every answer: all of them, whole, in order, and nothing else. Every
        # answer has the same size (the Date field has a fixed width).
        s.settimeout(scaled(30, 120))
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = s.recv(65536)
            self.assertTrue(data, "closed before the first answer")
            buf += data
        head = buf.split(b"\r\n\r\n", 1)[0]
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        size = len(head) + 4 + len(BODY)
        want = count * size
        got = len(buf)
        tail = buf[-size:]
        deadline = time.monotonic() + scaled(60, 300)
        while got < want and time.monotonic() < deadline:
            data = s.recv(1 << 20)
            if not data:
                break
            got += len(data)
            tail = (tail + data)[-size:]
        t.join(10)
        self.assertFalse(failed, f"sending failed: {failed}")
        self.assertEqual(got, want, "answers lost or added")
        self.assertTrue(tail.startswith(b"HTTP/1.1 200 ") and tail.endswith(BODY.encode()), tail[:80])
        s.close()
        summary = stop_checked(self, srv)
        self.assertEqual(summary["requests"], count)

    def test_buffer_ring_running_dry(self):
        # A ring of one buffer: connections that have input at once find it taken
        # (ENOBUFS) and must be armed again, not forgotten.
        if self.mode != "uring":
            self.skipTest("the buffer ring is io_uring's")
        env = dict(self.env or {}, OKSERVE_URING_BUFFERS="1")
        srv = self.start("--workers", "1", env=env)
        if "mode=uring" not in srv.startup_line:
            self.skipTest("io_uring is not available here")
        clients, rounds = 8, 20
        upload = 200 * 1024
        socks = [self.connect(srv, timeout=scaled(10, 60)) for _ in range(clients)]
        post = http_request("POST", headers=[("Content-Length", str(upload))]) + b"u" * upload
        batch = REQUEST * 4 + post + REQUEST * 4
        for r in range(rounds):
            senders = [threading.Thread(target=c.sendall, args=(batch,), daemon=True) for c in socks]
            for t in senders:
                t.start()
            for i, c in enumerate(socks):
                for k in range(9):
                    status, _, _, _ = recv_response(c, timeout=scaled(10, 60))
                    self.assertEqual(status, 200, f"round {r} client {i} answer {k}")
            for t in senders:
                t.join(10)
        for c in socks:
            c.close()
        summary = stop_checked(self, srv)
        self.assertEqual(summary["requests"], clients * rounds * 9)


def _variant(name, mode, env):
    cls = type(name, (FlowControl,), {"mode": mode, "env": env, "__module__": __name__})
    cls.__qualname__ = name
    globals()[name] = cls


_variant("FlowControl_reactor", "reactor", None)
_variant("FlowControl_uring", "uring", None)
_variant("FlowControl_uring_single", "uring", {"OKSERVE_URING_RECV": "single"})
del FlowControl  # the base runs only through its variants
