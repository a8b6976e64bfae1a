"""Three okserve instances behind HAProxy (examples/haproxy/haproxy.cfg), restarted one
after another under a steady load, with not one failed request.

Each instance runs with --admin (HAProxy checks its /ready every 100 ms) and --drain-delay:
on SIGTERM /ready says 503 at once, HAProxy takes the instance out of rotation at its next
check, and only then, when the drain delay ends, does okserve stop accepting and drain.
loadgen sends a fixed rate through HAProxy the whole time; a sampler thread sends a request
every 10 to 30 ms and records which instance answered (the Okserve-Instance header), and a
watcher reads HAProxy's `show stat` every 50 ms for each server's state.

Checked: loadgen and the sampler saw zero errors and only 2xx; HAProxy retried and
redispatched nothing (the drain alone is clean, not papered over by retries); every
process's shutdown summary balances and it exits 0; the answers the instances counted add
up to the requests the clients sent; HAProxy marked each instance DOWN before its drain
delay ended; no request sent after that reached it until it was back; it answered again
after its restart. The figures are printed (docs/running-many.md quotes them).

Set OKSERVE_HAPROXY_REPORT=FILE to also write them as JSON.
"""
import csv
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from support import (BUILD, LOADGEN_BIN, Server, assert_balanced, http_request,
                     recv_response, scaled)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CONFIG = os.path.join(ROOT, "examples", "haproxy", "haproxy.cfg")
NAMES = ("i1", "i2", "i3")

# HAProxy checks every 100 ms; the drain delay must be well beyond that. Sanitizer builds
# answer more slowly, so they get more room and a lower rate.
DRAIN_DELAY = scaled(1.0, 2.0)
RATE = scaled(400, 150)
CONNECTIONS = 8
SAMPLE_EVERY = 0.02
SETTLE = scaled(1.0, 1.5)  # time between restarts, so traffic visibly returns


def haproxy_bin():
    for p in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if p and os.access(p, os.X_OK):
            return p
    return None


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1, below the kernel's ephemeral range when it
    leaves room: an instance gets the same port again after its restart, and a port from
    the ephemeral range could meanwhile become some client connection's source port. A
    port another program takes meanwhile is survived: starting an instance retries."""
    low = 32768
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    rng = random.Random()
    socks, ports = [], []
    try:
        for _ in range(2000):
            if len(ports) == n:
                break
            port = rng.randrange(10000, low) if low > 11000 else 0
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    if len(ports) < n:
        raise RuntimeError("no free ports")
    return ports


def show_stat(sock_path, timeout=2.0):
    """HAProxy's `show stat` as a list of dicts (one per proxy and server)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    text = data.decode(errors="replace")
    if not text.startswith("# "):
        raise RuntimeError(f"unexpected show stat answer: {text[:200]!r}")
    return list(csv.DictReader(io.StringIO(text[2:])))


def servers_state(sock_path):
    return {row["svname"]: row for row in show_stat(sock_path) if row["pxname"] == "okserve_pool"
            and row["svname"] in NAMES}


class HaproxyRollingRestart(unittest.TestCase):
    def setUp(self):
        self.haproxy = haproxy_bin()
        if self.haproxy is None:
            self.skipTest("haproxy is not installed (tools/deps.sh test installs Debian's haproxy)")
        self.tmp = tempfile.mkdtemp(prefix="okserve-haproxy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.procs = []  # every okserve process we started (old and new), for the audit
        self.addCleanup(self._kill_leftovers)

    def _kill_leftovers(self):
        for srv in self.procs:
            if srv.returncode is None:
                srv.kill()
        hp = getattr(self, "hp", None)
        if hp is not None and hp.poll() is None:
            hp.kill()
            hp.wait()

    def start_instance(self, name, port, admin_port):
        """Starts okserve on a fixed port, retrying while the port is busy (an earlier
        process's socket, or another program that took the port)."""
        args = ["--host", "127.0.0.1", "--port", str(port), "--admin", f"127.0.0.1:{admin_port}",
                "--workers", "1", "--drain-delay", f"{DRAIN_DELAY}s", "--instance-name", name]
        deadline = time.monotonic() + 10.0
        while True:
            try:
                srv = Server(*args, port0=False)
                self.procs.append(srv)
                return srv
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def wait_states(self, want, timeout):
        """Waits until every server named in `want` has a status starting with its value."""
        deadline = time.monotonic() + timeout
        st = {}
        while time.monotonic() < deadline:
            if self.hp.poll() is not None:
                self.fail(f"haproxy exited {self.hp.returncode}: {self._hp_log()[-2000:]}")
            try:
                st = servers_state(self.sock)
                if all(st[n]["status"].startswith(v) for n, v in want.items()):
                    return
            except (OSError, RuntimeError, KeyError):
                pass
            time.sleep(0.05)
        self.fail(f"haproxy servers not {want} within {timeout}s: "
                  f"{ {n: r['status'] for n, r in st.items()} } {self._hp_log()[-2000:]}")

    def _hp_log(self):
        try:
            with open(os.path.join(self.tmp, "haproxy.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def test_rolling_restart_no_failed_request(self):
        ports = free_ports(7)
        front, main, admin = ports[0], ports[1:4], ports[4:7]
        self.sock = os.path.join(self.tmp, "haproxy.sock")

        current = {n: self.start_instance(n, main[i], admin[i]) for i, n in enumerate(NAMES)}

        env = dict(os.environ)
        env.update({"LB_BIND": f"127.0.0.1:{front}", "LB_SOCK": self.sock})
        for i, n in enumerate(NAMES):
            env[f"LB_I{i + 1}"] = f"127.0.0.1:{main[i]}"
            env[f"LB_A{i + 1}"] = str(admin[i])
        log = open(os.path.join(self.tmp, "haproxy.log"), "wb")
        self.addCleanup(log.close)
        self.hp = subprocess.Popen([self.haproxy, "-db", "-f", CONFIG], env=env,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.wait_states({n: "UP" for n in NAMES}, timeout=10)
        self.assertEqual(self.hp.poll(), None)

        stop = threading.Event()
        t0 = time.monotonic()

        # The sampler: a request every 10 to 30 ms, a new connection each, through HAProxy.
        samples = []  # (sent, received, status or None, instance or error text)

        def sampler():
            req = http_request("GET", "/sample", host="okserve", headers=[("Connection", "close")])
            jitter = random.Random()
            end = time.monotonic() + 120  # bounded even if the test forgets to stop it
            while not stop.is_set() and time.monotonic() < end:
                sent = time.monotonic()
                try:
                    with socket.create_connection(("127.0.0.1", front), timeout=3) as s:
                        s.sendall(req)
                        status, headers, _, _ = recv_response(s, timeout=3)
                    samples.append((sent, time.monotonic(), status, headers.get("okserve-instance")))
                except (OSError, ValueError, IndexError) as e:
                    samples.append((sent, time.monotonic(), None, f"{type(e).__name__}: {e}"))
                # A random pause (10 to 30 ms): at a fixed period the sampler could keep
                # landing on the same slot of HAProxy's round robin beside loadgen's fixed
                # rate, and so on the same instance.
                stop.wait(max(0.0, jitter.uniform(0.5, 1.5) * SAMPLE_EVERY - (time.monotonic() - sent)))

        # The watcher: each server's state in HAProxy, every 50 ms.
        states = []  # (time, {name: status})

        def watcher():
            end = time.monotonic() + 120
            while not stop.is_set() and time.monotonic() < end:
                try:
                    st = servers_state(self.sock)
                    states.append((time.monotonic(), {n: r["status"] for n, r in st.items()}))
                except (OSError, RuntimeError):
                    pass
                stop.wait(0.05)

        threads = [threading.Thread(target=f, daemon=True) for f in (sampler, watcher)]
        for t in threads:
            t.start()

        # The load: long enough for three drains and restarts with room either side.
        duration = 1.0 + 3 * (DRAIN_DELAY + SETTLE + 0.8) + 2.0
        lg_out = open(os.path.join(self.tmp, "loadgen.json"), "w+")
        self.addCleanup(lg_out.close)
        lg = subprocess.Popen([LOADGEN_BIN, "-t", "1", "-c", str(CONNECTIONS), "-R", str(RATE),
                               "-d", f"{duration:.1f}s", "--timeout", "3s", "--json",
                               f"http://127.0.0.1:{front}/"],
                              stdout=lg_out, stderr=subprocess.PIPE, text=True)
        lg_start = time.monotonic()
        self.addCleanup(lambda: lg.poll() is None and (lg.kill(), lg.wait()))

        time.sleep(1.0)
        events = {}  # name -> dict(term, exited, started)
        finished = []  # summaries of the processes stopped during the run
        for i, n in enumerate(NAMES):
            old = current[n]
            term = time.monotonic()
            old.signal(signal.SIGTERM)
            code, out, err = old.stop(sig=None, timeout=DRAIN_DELAY + 20)
            exited = time.monotonic()
            self.assertEqual(code, 0, f"{n} exit {code}: {out!r} {err[-2000:]!r}")
            summary = old.summary()
            assert_balanced(self, summary)
            finished.append((n, summary))
            started = time.monotonic()
            current[n] = self.start_instance(n, main[i], admin[i])
            events[n] = {"term": term, "exited": exited, "started": started}
            self.wait_states({n: "UP"}, timeout=10)
            events[n]["up_seen"] = time.monotonic()
            time.sleep(SETTLE)
        restarts_done = time.monotonic()

        try:
            lg_err = lg.communicate(timeout=duration + 30)[1]
        except subprocess.TimeoutExpired:
            lg.kill()
            lg_err = lg.communicate()[1]
            self.fail("loadgen did not finish in time")
        lg_end = time.monotonic()
        self.assertLess(restarts_done, lg_end, "the load ended before the last restart")
        time.sleep(0.2)
        stop.set()
        for t in threads:
            t.join(timeout=10)

        final_stat = {r["svname"]: r for r in show_stat(self.sock) if r["pxname"] in
                      ("okserve_front", "okserve_pool")}
        self.hp.send_signal(signal.SIGTERM)
        try:
            self.hp.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.hp.kill()
            self.hp.wait()

        for n in NAMES:
            code, out, err = current[n].stop(signal.SIGTERM, timeout=DRAIN_DELAY + 20)
            self.assertEqual(code, 0, f"{n} exit {code}: {out!r} {err[-2000:]!r}")
            summary = current[n].summary()
            assert_balanced(self, summary)
            finished.append((n, summary))
        for srv in self.procs:
            for mark in ("Sanitizer", "runtime error:"):
                self.assertNotIn(mark, srv.stderr or "", f"sanitizer report: {(srv.stderr or '')[-3000:]}")

        # --- The load: not one failed request, only 2xx.
        lg_out.seek(0)
        text = lg_out.read()
        try:
            lg_json = json.loads(text)
        except ValueError:
            self.fail(f"loadgen printed no JSON (exit {lg.returncode}): {text!r} {lg_err!r}")
        planned = int(RATE * duration)
        self.assertEqual(lg_json["errors"]["total"], 0, f"loadgen errors: {lg_json}")
        self.assertEqual(lg_json["status"]["2xx"], lg_json["requests"], f"non-2xx answers: {lg_json}")
        self.assertEqual(lg.returncode, 0, lg_err)
        # Not a speed check: proof that the load really ran through the restarts.
        self.assertGreater(lg_json["requests"], planned // 2, f"loadgen sent too little: {lg_json}")

        # --- The sampler: every request answered 200 by a named instance.
        bad = [s for s in samples if s[2] != 200 or s[3] not in NAMES]
        self.assertEqual(bad, [], f"sampler failures ({len(bad)} of {len(samples)})")
        self.assertGreater(len(samples), 50)

        # --- HAProxy: nothing retried, redispatched, refused or cut.
        be = final_stat["BACKEND"]
        fe = final_stat["FRONTEND"]
        for key in ("wretr", "wredis", "econ", "eresp"):
            self.assertEqual(int(be[key] or 0), 0, f"haproxy backend {key}={be[key]}")
        for key in ("hrsp_4xx", "hrsp_5xx", "hrsp_other"):
            self.assertEqual(int(be[key] or 0), 0, f"haproxy backend {key}={be[key]}")
        for key in ("hrsp_4xx", "hrsp_5xx"):
            self.assertEqual(int(fe[key] or 0), 0, f"haproxy frontend {key}={fe[key]}")

        # --- Every request reached exactly one instance. loadgen may stop with a request
        # in flight at its deadline (answered by okserve, not counted by loadgen), so the
        # instances may count up to one per connection more, never fewer.
        answered = {n: 0 for n in NAMES}
        for n, summary in finished:
            answered[n] += summary["requests"]
        sent = lg_json["requests"] + len(samples)
        extra = sum(answered.values()) - sent
        self.assertTrue(0 <= extra <= CONNECTIONS,
                        f"instances answered {answered} (sum {sum(answered.values())}), clients got {sent}")

        # --- Each drain, as HAProxy and the sampler saw it.
        out_of_rotation = {}
        for n in NAMES:
            ev = events[n]
            down = next((t for t, st in states if t >= ev["term"] and st.get(n, "").startswith("DOWN")), None)
            self.assertIsNotNone(down, f"haproxy never marked {n} DOWN after its SIGTERM")
            # HAProxy must notice while okserve still serves: before the drain delay ends.
            self.assertLess(down - ev["term"], DRAIN_DELAY,
                            f"{n}: HAProxy marked it DOWN {down - ev['term']:.3f}s after SIGTERM, "
                            f"after the {DRAIN_DELAY}s drain delay")
            up = next((t for t, st in states if t >= ev["started"] and st.get(n, "").startswith("UP")), None)
            self.assertIsNotNone(up, f"haproxy never marked {n} UP after its restart")
            # No request sent after HAProxy marked it DOWN reached it until it was back.
            stray = [s for s in samples if down <= s[0] and s[1] <= ev["started"] and s[3] == n]
            self.assertEqual(stray, [], f"{n} answered while out of rotation")
            before = [s for s in samples if s[0] < ev["term"] and s[3] == n]
            after = [s for s in samples if s[0] >= ev["started"] and s[3] == n]
            self.assertTrue(before, f"{n} answered no sample before its SIGTERM")
            self.assertTrue(after, f"{n} answered no sample after its restart")
            last_before = max(s[1] for s in before)
            first_after = min(s[1] for s in after)
            out_of_rotation[n] = {
                "down_after_sigterm_s": round(down - ev["term"], 3),
                "haproxy_out_s": round(up - down, 3),
                "sampler_gap_s": round(first_after - last_before, 3),
                "exit_after_sigterm_s": round(ev["exited"] - ev["term"], 3),
            }

        per_instance_samples = {n: sum(1 for s in samples if s[3] == n) for n in NAMES}
        # The traffic moving: each instance's sampler answers per half second from the
        # start of the load, and when each was signalled, marked DOWN, started, marked UP.
        slots = int((lg_end - lg_start) / 0.5) + 1
        timeline = {n: [0] * slots for n in NAMES}
        for sent, _, _, inst in samples:
            k = int((sent - lg_start) / 0.5)
            if inst in timeline and 0 <= k < slots:
                timeline[inst][k] += 1
        marks = {n: {"sigterm": round(events[n]["term"] - lg_start, 2),
                     "down": round(events[n]["term"] - lg_start + out_of_rotation[n]["down_after_sigterm_s"], 2),
                     "started": round(events[n]["started"] - lg_start, 2),
                     "up": round(events[n]["term"] - lg_start + out_of_rotation[n]["down_after_sigterm_s"]
                                 + out_of_rotation[n]["haproxy_out_s"], 2)} for n in NAMES}
        report = {
            "build": os.path.basename(BUILD), "rate": RATE, "connections": CONNECTIONS,
            "duration_s": round(duration, 1), "drain_delay_s": DRAIN_DELAY,
            "loadgen": {"requests": lg_json["requests"], "errors": lg_json["errors"]["total"],
                        "2xx": lg_json["status"]["2xx"], "p99_us": lg_json["latency_us"]["p99"],
                        "max_us": lg_json["latency_us"]["max"]},
            "sampler": {"requests": len(samples), "failed": len(bad), "by_instance": per_instance_samples},
            "haproxy": {k: int(be[k] or 0) for k in ("wretr", "wredis", "econ", "eresp")},
            "answers_by_instance": answered,
            "out_of_rotation": out_of_rotation,
            "events_s": marks,
            "sampler_answers_per_half_second": {n: " ".join(map(str, v)) for n, v in timeline.items()},
        }
        print("\n  haproxy rolling restart: " + json.dumps(report))
        path = os.environ.get("OKSERVE_HAPROXY_REPORT")
        if path:
            with open(path, "w") as f:
                json.dump(report, f, indent=1)


if __name__ == "__main__":
    unittest.main()
