"""The server under pressure: slow clients beside a fast one, a full queue in reject
mode, and running out of file descriptors.
"""
import os
import re
import resource
import signal
import subprocess
import tempfile
import time

from support import (ServerCase, every_mode, only_modes, assert_balanced, stop_checked, have, cpu_seconds, http_request, read_until_close,
                     recv_response, recv_response_or_close, scaled)

HALF_HEAD = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Half: "


@every_mode
class SlowClients(ServerCase):
    def fast_client_unblocked(self, workers, slow_count=None):
        # Long timeouts, so that only the server's design (not a timeout rescue) can keep
        # the fast client going while the slow ones hold their connections. A thread per
        # connection holds a thread for each slow client: it gets its default cap instead.
        if self.mode == "thread":
            workers = 512
        srv = self.start("--workers", str(workers), "--header-timeout", "60s",
                         "--keepalive-timeout", "60s")
        slow = []
        if slow_count is None:
            slow_count = scaled(200, 60) + scaled(50, 20)
        for i in range(slow_count):
            s = self.connect(srv)
            if i % 5:
                s.sendall(HALF_HEAD)  # four in five stall mid-head, the rest send nothing
            slow.append(s)
        deadline = time.monotonic() + scaled(10, 30)  # a hang guard, not a speed claim
        keep = self.connect(srv)
        for i in range(100):
            left = max(0.1, deadline - time.monotonic())
            if i % 2:
                keep.sendall(http_request())
                status = recv_response(keep, timeout=left)[0]
            else:
                s = srv.connect(timeout=left)
                s.sendall(http_request(headers=[("Connection", "close")]))
                status = recv_response(s, timeout=left)[0]
                s.close()
            self.assertEqual(status, 200, f"request {i}")
        for s in slow:
            s.close()

    def test_fast_client_beside_stalled_ones(self):
        self.fast_client_unblocked(workers=2)

    def test_fast_client_beside_stalled_ones_one_worker(self):
        self.fast_client_unblocked(workers=1)

    def test_fast_client_beside_ten_thousand_slow_or_idle(self):
        if self.mode == "thread":
            self.skipTest("a thread per connection: 10,000 idle clients would need 10,000 "
                          "threads (the trade-off --mode thread is there to show)")
        wanted = scaled(10000, 1000)
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < wanted + 200:
            self.skipTest(f"descriptor limit {hard} is below {wanted + 200}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted + 200), hard))
        try:
            self.fast_client_unblocked(workers=2, slow_count=wanted)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@every_mode
class Slowloris(ServerCase):
    def test_slowhttptest_slowloris_does_not_starve_a_fast_client(self):
        if not have("slowhttptest"):
            self.skipTest("slowhttptest is not installed (package slowhttptest; tools/deps.sh installs it)")
        srv = self.start("--header-timeout", "3s")
        conns = scaled(400, 100)
        # Slow headers (-H): every connection sends a header line a second; the server's
        # 3 s header timeout ends each one with a 408, long before the 8 s attack is over.
        attack = subprocess.Popen(
            ["slowhttptest", "-H", "-c", str(conns), "-r", str(conns), "-i", "1", "-l", "8",
             "-p", "2", "-u", srv.url(), "-o", os.path.join(tempfile.mkdtemp(), "slow")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            time.sleep(1.5)  # let the attack open its connections
            for i in range(20):
                s = srv.connect(timeout=5)
                s.sendall(http_request(headers=[("Connection", "close")]))
                self.assertEqual(recv_response(s, timeout=5)[0], 200, f"request {i}")
                s.close()
            out, _ = attack.communicate(timeout=60)
        finally:
            if attack.poll() is None:
                attack.kill()
                attack.wait()
        plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
        self.assertIsNone(re.search(r"service available:\s*NO", plain), plain[-2000:])
        summary = stop_checked(self, srv)
        # Every slow connection that got in was ended by the header timeout, never served.
        self.assertGreater(summary["timed_out"], 0, summary)
        self.assertEqual(summary["errors"], 0, summary)


@only_modes("thread", "queue", "pool")
class Overflow(ServerCase):
    def burst(self, srv, n):
        """n connections, each with one request, landing while the server is frozen: on
        wake-up it accepts them far faster than its one worker takes them off the queue."""
        socks = []
        srv.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(n):
                s = self.connect(srv)
                s.sendall(http_request(headers=[("Connection", "close")]))
                socks.append(s)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        return socks

    def test_reject_mode_answers_503_cleanly(self):
        srv = self.start("--workers", "1", "--queue", "1", "--overflow", "reject")
        n = scaled(300, 120)
        socks = self.burst(srv, n)
        counts = {200: 0, 503: 0}
        deadline = time.monotonic() + scaled(20, 60)
        for i, s in enumerate(socks):
            status, headers, _, raw = recv_response(s, timeout=max(0.1, deadline - time.monotonic()))
            self.assertIn(status, (200, 503), raw)
            counts[status] += 1
            self.assertEqual(headers.get("connection", "").lower(), "close", raw)
            if status == 503:
                self.assertEqual(headers.get("retry-after"), "1", raw)
            self.assertEqual(read_until_close(s), (b"", "eof"), f"connection {i}")
        code, out, err = srv.stop()
        self.assertEqual(code, 0, err)
        summary = srv.summary()
        assert_balanced(self, summary)
        self.assertEqual(summary["rejected"], counts[503], (counts, summary))
        # Every 503 met a full queue; events of open connections may have waited for room too.
        self.assertGreaterEqual(summary["queue_full"], counts[503], (counts, summary))
        self.assertEqual(summary["accepted"], n, summary)
        self.assertGreater(counts[200], 0, counts)
        self.assertGreater(counts[503], 0, f"no overflow provoked: {counts}")

    def test_block_mode_answers_everyone(self):
        srv = self.start("--workers", "1", "--queue", "1")
        n = scaled(300, 120)
        socks = self.burst(srv, n)
        deadline = time.monotonic() + scaled(20, 60)
        for i, s in enumerate(socks):
            status, _, _, raw = recv_response(s, timeout=max(0.1, deadline - time.monotonic()))
            self.assertEqual(status, 200, f"connection {i}: {raw!r}")
        summary = stop_checked(self, srv)
        self.assertEqual(summary["rejected"], 0, summary)
        # The burst outran the one worker: the dispatcher waited for room (and counted it).
        self.assertGreater(summary["queue_full"], 0, summary)


def low_fd_limit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


@every_mode
class OutOfDescriptors(ServerCase):
    def test_emfile_backs_off_and_recovers(self):
        # A connection limit above the descriptor limit, so accept() really meets EMFILE.
        self.check_fd_exhaustion("--max-connections", "1000")

    def test_default_connection_limit_under_a_low_fd_limit(self):
        self.check_fd_exhaustion()

    def check_fd_exhaustion(self, *args):
        srv = self.start("--workers", "2", *args, preexec_fn=low_fd_limit)
        held = []
        for _ in range(120):  # about twice what the server can hold
            s = self.connect(srv)
            s.sendall(HALF_HEAD)
            held.append(s)
        time.sleep(0.5)
        self.assertIsNone(srv.proc.poll(), "server died at the descriptor limit")
        used = cpu_seconds(srv.pid)
        time.sleep(1.0)
        used = cpu_seconds(srv.pid) - used
        # A sanity bound against a busy accept loop, not a speed claim.
        self.assertLess(used, 0.5, f"server burned {used:.2f}s of CPU in 1s while out of fds")
        self.assertIsNone(srv.proc.poll(), "server died at the descriptor limit")
        for s in held:
            s.close()
        deadline = time.monotonic() + scaled(10, 30)
        outcome = None
        while time.monotonic() < deadline:
            s = srv.connect(timeout=5)
            s.sendall(http_request())
            outcome = recv_response_or_close(s, timeout=max(0.1, deadline - time.monotonic()))
            s.close()
            if outcome[0] == "complete":
                break
            time.sleep(0.1)
        self.assertEqual(outcome[0], "complete", outcome)
        self.assertEqual(outcome[1][0], 200)
        code, _, err = srv.stop()
        self.assertEqual(code, 0)
        self.assertLess(len(err.splitlines()), 1000, "stderr flooded while out of fds")
        assert_balanced(self, srv.summary())

    def test_connection_limit_when_asked(self):
        # Eight connections stalled mid-request fill --max-connections 8 (mid-request,
        # so none may be closed to make room). A ninth is held back, unanswered, until one
        # of them goes; then it is served.
        srv = self.start("--max-connections", "8", "--header-timeout", "60s")
        held = []
        for _ in range(8):
            s = self.connect(srv)
            s.sendall(HALF_HEAD)
            held.append(s)
        time.sleep(0.2)
        extra = self.connect(srv)
        extra.sendall(http_request())
        outcome = recv_response_or_close(extra, timeout=0.5)
        self.assertEqual(outcome, ("none", "timeout"), "the ninth connection was served over the limit")
        held.pop().close()
        status = recv_response(extra, timeout=scaled(10, 30))[0]
        self.assertEqual(status, 200)
        for s in held:
            s.close()


@only_modes("pool")
class WorkersHelp(ServerCase):
    """A pool worker with nothing queued takes ready connections from the epoll set itself
    (Dispatcher::help), so that keep-alive requests skip the hand-off."""

    def test_keepalive_turns_taken_by_idle_workers_balance(self):
        import support
        if not os.access(support.LOADGEN_BIN, os.X_OK):
            self.skipTest(f"loadgen not built at {support.LOADGEN_BIN}")
        srv = self.start("--workers", "2")
        # Every thread of the server on one CPU: the dispatcher (SCHED_BATCH) does not
        # preempt a worker, so a worker that ends a turn finds the next requests ready.
        cpu = min(os.sched_getaffinity(0))
        for tid in os.listdir(f"/proc/{srv.pid}/task"):
            os.sched_setaffinity(int(tid), {cpu})
        n = scaled(20_000, 4_000)
        proc = support.run([support.LOADGEN_BIN, "-t", "1", "-c", "16", "-n", str(n), srv.url("/")],
                           timeout=scaled(60, 180))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        code, _, _ = srv.stop()
        self.assertEqual(code, 0)
        summary = srv.summary()
        assert_balanced(self, summary)
        self.assertEqual(summary["requests"], n, summary)
        self.assertEqual(summary["errors"], 0, summary)
        print(f"    [WorkersHelp] {summary['helped']} of {n} turns taken by idle workers", flush=True)
        self.assertGreater(summary["helped"], 0, summary)  # the path ran ...
        # ... at most once a request, or once a connection for its end
        self.assertLessEqual(summary["helped"], n + 16, summary)
