"""Behaviour a greedy or hostile client must not break, and signals: bounded work per
turn, room made by closing idle connections, the drain under a full queue, SIGUSR1,
SIGHUP and SIGQUIT. Each runs in every mode that has the behaviour."""
import signal
import socket
import threading
import time

from support import (ServerCase, every_mode, only_modes, http_request, read_until_close, recv_response,
                     scaled, stop_checked)

GET = http_request()


def flood(sock, data, stop):
    """Sends `data` over and over until `stop` is set or the server hangs up."""
    try:
        while not stop.is_set():
            sock.sendall(data)
    except OSError:
        pass


@every_mode
class GreedyClients(ServerCase):
    """As many clients as workers keep their sockets full; a fresh client is still served.
    Without a budget per turn, one worker would stay on one greedy socket for good."""

    def check_fresh_client_served(self, make_greedy):
        workers = 2
        args = ["--workers", str(workers), "--linger-timeout", "30s", "--body-timeout", "30s"]
        if self.mode == "thread":
            args = ["--linger-timeout", "30s", "--body-timeout", "30s"]  # a thread each
        srv = self.start(*args)
        stop = threading.Event()
        threads = []
        for _ in range(workers):
            s = self.connect(srv)
            threads.append(threading.Thread(target=make_greedy, args=(s, stop), daemon=True))
        for t in threads:
            t.start()
        self.addCleanup(stop.set)
        time.sleep(0.3)  # the floods are running
        worst = 0.0
        fresh = self.connect(srv)
        for i in range(20):
            t0 = time.monotonic()
            fresh.sendall(GET)
            # A hang guard, not a speed claim: the figure is printed and in the README.
            self.assertEqual(recv_response(fresh, timeout=scaled(2, 10))[0], 200, f"request {i}")
            worst = max(worst, time.monotonic() - t0)
        stop.set()
        for t in threads:
            t.join(5)
        print(f"    [{self.mode}] worst answer beside {workers} greedy clients: {worst * 1000:.1f} ms")
        summary = stop_checked(self, srv)
        self.assertGreaterEqual(summary["requests"], 20)

    def test_endless_upload(self):
        def greedy(s, stop):
            s.sendall(http_request("POST", headers=[("Content-Length", str(10 ** 15))]))
            flood(s, b"x" * 65536, stop)
        self.check_fresh_client_served(greedy)

    def test_flood_after_an_error_answer(self):
        def greedy(s, stop):
            s.sendall(b"BAD REQUEST LINE\r\n\r\n")
            flood(s, b"y" * 65536, stop)
        self.check_fresh_client_served(greedy)

    def test_endless_pipeline(self):
        def greedy(s, stop):
            drain = threading.Thread(target=lambda: read_until_close(s, timeout=30), daemon=True)
            drain.start()
            flood(s, GET * 2000, stop)
        self.check_fresh_client_served(greedy)


@only_modes("queue", "pool", "reactor", "uring")
class RoomForNewConnections(ServerCase):
    def test_oldest_idle_connection_makes_room(self):
        # --workers 1: one loop's share of the limit is the whole limit.
        srv = self.start("--max-connections", "4", "--workers", "1", "--keepalive-timeout", "60s")
        idle = []
        for _ in range(4):
            s = self.connect(srv)
            s.sendall(GET)
            self.assertEqual(recv_response(s)[0], 200)
            idle.append(s)
            time.sleep(0.05)  # distinct idle-since times: the first is the oldest
        fresh = self.connect(srv)
        fresh.sendall(GET)
        self.assertEqual(recv_response(fresh, timeout=scaled(5, 15))[0], 200)
        # The oldest idle one was closed cleanly (EOF, no reset) to make room.
        self.assertEqual(read_until_close(idle[0], timeout=5), (b"", "eof"))
        summary = stop_checked(self, srv)
        self.assertGreaterEqual(summary["evicted"], 1, summary)
        self.assertEqual(summary["errors"] + summary["timed_out"], 0, summary)


@every_mode
class Signals(ServerCase):
    def test_sigusr1_prints_a_live_summary_and_goes_on(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        # The count is added just after the answer is sent: a live line may lag a moment.
        deadline = time.monotonic() + scaled(5, 15)
        line = ""
        while "requests=1 " not in line and time.monotonic() < deadline:
            srv.proc.send_signal(signal.SIGUSR1)
            line = srv._read_line(srv.proc.stdout, 5)
            self.assertTrue(line.startswith("okserve: live: accepted="), line)
            time.sleep(0.05)
        self.assertIn("requests=1 ", line)
        s.sendall(GET)  # still serving
        self.assertEqual(recv_response(s)[0], 200)
        summary = stop_checked(self, srv)
        self.assertEqual(summary["requests"], 2)

    def test_sighup_is_harmless(self):
        srv = self.start()
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        self.assertIsNone(srv.proc.poll(), "SIGHUP ended the server")
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        stop_checked(self, srv)

    def test_sigquit_drains_like_sigterm(self):
        srv = self.start()
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        summary = stop_checked(self, srv, sig=signal.SIGQUIT)
        self.assertEqual(summary["requests"], 1)


@only_modes("thread", "queue", "pool")
class DrainWhileFull(ServerCase):
    def test_sigterm_drains_while_the_queue_is_full(self):
        srv = self.start("--workers", "1", "--queue", "1", "--overflow", "block", "--drain-timeout", "5s")
        socks = []
        srv.proc.send_signal(signal.SIGSTOP)
        try:
            for _ in range(scaled(200, 80)):
                s = self.connect(srv)
                s.sendall(http_request(headers=[("Connection", "close")]))
                socks.append(s)
        finally:
            srv.proc.send_signal(signal.SIGCONT)
        time.sleep(0.05)  # it has accepted what it has room for, and stopped accepting
        t0 = time.monotonic()
        summary = stop_checked(self, srv, timeout=scaled(15, 40))
        self.assertLess(time.monotonic() - t0, scaled(10, 35), "the drain was not bounded")
        self.assertGreater(summary["accepted"], 0, summary)


class UringFallback(ServerCase):
    def test_uring_says_when_it_runs_the_reactor_instead(self):
        srv = self.start("--mode", "uring", env={"OKSERVE_URING_DISABLE": "1"})
        self.assertIn("mode=reactor", srv.startup_line)
        s = self.connect(srv)
        s.sendall(GET)
        self.assertEqual(recv_response(s)[0], 200)
        stop_checked(self, srv)
        lines = [ln for ln in srv.stderr.splitlines() if "io_uring" in ln]
        self.assertEqual(len(lines), 1, srv.stderr)
        self.assertIn("disabled by OKSERVE_URING_DISABLE", lines[0])
        self.assertIn("running --mode reactor", lines[0])

    def test_uring_runs_when_the_kernel_allows_it(self):
        srv = self.start("--mode", "uring")
        if "mode=reactor" in srv.startup_line:
            self.skipTest("io_uring is not available here (the start-up line says why on stderr)")
        self.assertIn("mode=uring", srv.startup_line)
        s = self.connect(srv)
        for _ in range(3):
            s.sendall(GET)
            self.assertEqual(recv_response(s)[0], 200)
        self.assertEqual(stop_checked(self, srv)["requests"], 3)
