"""Shared helpers for the integration tests: start the real binary on port 0, talk raw
bytes to it, read answers, and stop it by PID. Every wait here has a deadline, so a
hung server turns into a failed test instead of a hung run.
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import weakref

BUILD = os.environ.get("OKSERVE_BUILD", os.path.abspath("build/release"))
SERVER_BIN = os.path.join(BUILD, "okserve")
LOADGEN_BIN = os.path.join(BUILD, "loadgen")
# Sanitizer builds are several times slower; load sizes in tests scale down with this.
SLOW = any(v in BUILD for v in ("asan", "tsan"))

STARTUP_RE = re.compile(r"listen=(\[[^\]]+\]|[^\s:]+):(\d+)")
ADMIN_RE = re.compile(r"admin=http://(\[[^\]]+\]|[^\s:/]+):(\d+)/")


class Server:
    """Runs okserve with `--port 0` and the given flags; reads the real port from the
    start-up line. Use as a context manager; stop() sends a signal to our own PID only."""

    def __init__(self, *args, env=None, host="127.0.0.1", port0=True, start_timeout=10.0,
                 preexec_fn=None):
        argv = [SERVER_BIN]
        if port0:
            argv += ["--host", host, "--port", "0"]
        argv += list(args)
        self.argv = argv
        full_env = dict(os.environ)
        full_env.update(env or {})
        for name in [k for k, v in full_env.items() if v is None]:
            del full_env[name]  # env={"NAME": None} unsets NAME
        # stderr goes to a file, not a pipe: a chatty server must never block on a full pipe.
        self._stderr_file = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._stderr_file,
                                     env=full_env, preexec_fn=preexec_fn)
        self.startup_line = self._read_line(self.proc.stdout, start_timeout)
        m = STARTUP_RE.search(self.startup_line)
        if not m:
            self.kill()
            err = self._read_stderr()
            raise RuntimeError(f"no start-up line from {argv}: {self.startup_line!r} {err!r}")
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        # With --admin, the next line names the admin listener.
        self.admin_host = self.admin_port = None
        if any(a == "--admin" or a.startswith("--admin=") for a in argv):
            line = self._read_line(self.proc.stdout, start_timeout)
            am = ADMIN_RE.search(line)
            if not am:
                self.kill()
                raise RuntimeError(f"no admin line from {argv}: {line!r}")
            self.admin_host = am.group(1).strip("[]")
            self.admin_port = int(am.group(2))
        self.stdout_rest = ""
        self.stderr = ""
        self.returncode = None
        self.signalled = False

    @staticmethod
    def _read_line(stream, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = stream.fileno()
        while not buf.endswith(b"\n") and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            chunk = os.read(fd, 1)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")

    @property
    def family(self):
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def connect(self, timeout=5.0):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((self.host, self.port))
        return s

    def admin_url(self, path="/"):
        h = f"[{self.admin_host}]" if ":" in self.admin_host else self.admin_host
        return f"http://{h}:{self.admin_port}{path}"

    def admin_connect(self, timeout=5.0):
        fam = socket.AF_INET6 if ":" in self.admin_host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect((self.admin_host, self.admin_port))
        return s

    def url(self, path="/"):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}{path}"

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signals the server (unless sig is None: it was signalled already) and waits for
        it; returns (exit code, stdout, stderr)."""
        if self.returncode is None:
            try:
                if sig is not None:
                    self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                out, _ = self.proc.communicate(timeout=timeout)
                self.returncode = self.proc.returncode
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
                self.returncode = "timeout"
            self.stdout_rest = out.decode(errors="replace")
            self.stderr = self._read_stderr()
        return self.returncode, self.stdout_rest, self.stderr

    def signal(self, sig):
        """Sends sig now; a later stop() then only waits, so no second signal follows."""
        self.signalled = True
        self.proc.send_signal(sig)

    def _read_stderr(self):
        self._stderr_file.seek(0)
        return self._stderr_file.read().decode(errors="replace")

    @property
    def pid(self):
        return self.proc.pid

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def summary(self):
        """The shutdown summary's counters as a dict (after stop())."""
        for line in (self.stdout_rest + self.stderr).splitlines():
            if "accepted=" in line:
                return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.returncode is None:
            self.stop()
        return False


def recv_response(sock, timeout=5.0, head_only=False):
    """Reads one HTTP/1.1 response framed by Content-Length. Returns
    (status, headers dict with lower-case names, body bytes, raw bytes). Leaves any bytes
    after the response beside the socket for the next call."""
    deadline = time.monotonic() + timeout
    buf = _leftover(sock, "rest")
    _keep(sock, "partial", buf)
    while b"\r\n\r\n" not in buf:
        buf += _recv_some(sock, deadline)
        _keep(sock, "partial", buf)
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for ln in lines[1:]:
        name, value = ln.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    length = 0 if head_only or status in (100, 204, 304) else int(headers.get("content-length", "0"))
    while len(rest) < length:
        rest += _recv_some(sock, deadline)
        _keep(sock, "partial", head + b"\r\n\r\n" + rest)
    body = rest[:length]
    _keep(sock, "rest", rest[length:])
    return status, headers, body, head + b"\r\n\r\n" + body


# Bytes read past one answer (and the bytes of an answer cut short), per socket. Kept
# beside the socket because socket.socket has __slots__ and takes no new attributes.
_LEFTOVERS = weakref.WeakKeyDictionary()


def _leftover(sock, kind):
    return _LEFTOVERS.get(sock, {}).get(kind, b"")


def _keep(sock, kind, data):
    _LEFTOVERS.setdefault(sock, {})[kind] = data


def _recv_some(sock, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no complete response before the deadline")
    sock.settimeout(left)
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("connection closed before the response was complete")
    return chunk


def read_until_close(sock, timeout=5.0):
    """Reads until EOF. Returns (bytes, how) where how is 'eof', 'reset' or 'timeout'."""
    deadline = time.monotonic() + timeout
    data = _leftover(sock, "rest")
    _keep(sock, "rest", b"")
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, "timeout"
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        except socket.timeout:
            return data, "timeout"
        if not chunk:
            return data, "eof"
        data += chunk


def have(tool):
    return shutil.which(tool) is not None


def run(argv, timeout=120, **kw):
    """Runs a client program with a hard time limit; returns CompletedProcess (text)."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)


# --- Helpers shared by the test modules ----------------------------------------------

def scaled(release, slow):
    """A load size: `release` normally, `slow` under the sanitizer builds."""
    return slow if SLOW else release


def http_request(method="GET", target="/", version="HTTP/1.1", headers=None, body=b"",
                 host="test"):
    """Builds request bytes. `headers` is a list of (name, value) pairs sent as given;
    a Host field comes first unless `host` is None."""
    lines = [f"{method} {target} {version}".encode("latin-1")]
    if host is not None:
        lines.append(b"Host: " + host.encode("latin-1"))
    for name, value in headers or []:
        lines.append(_b(name) + b": " + _b(value))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _b(x):
    return x if isinstance(x, bytes) else x.encode("latin-1")


def send_pieces(sock, data, cuts, pause=0.02):
    """Sends `data` split at the offsets in `cuts`, pausing between pieces, with Nagle off
    so each piece leaves as its own segment."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = 0
    for cut in list(cuts) + [len(data)]:
        if cut > start:
            sock.sendall(data[start:cut])
            start = cut
            time.sleep(pause)


def send_quietly(sock, data):
    """Sends bytes the peer may already have stopped reading; errors are expected."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def assert_balanced(tc, summary):
    """The shutdown summary's identity: each connection ends in exactly one bucket."""
    tc.assertIsNotNone(summary, "no shutdown summary line")
    buckets = ("answered", "rejected", "timed_out", "closed_by_client", "errors")
    for key in ("accepted", "requests") + buckets:
        tc.assertIn(key, summary, f"summary lacks {key}: {summary}")
    tc.assertEqual(summary["accepted"], sum(summary[k] for k in buckets),
                   f"accounting does not balance: {summary}")


def stop_checked(tc, srv, sig=signal.SIGTERM, timeout=20.0):
    """Stops the server, asserts exit 0 and a balanced summary; returns the summary."""
    code, out, err = srv.stop(sig, timeout)
    tc.assertEqual(code, 0, f"server exit {code}; stdout={out!r} stderr={err[-2000:]!r}")
    summary = srv.summary()
    assert_balanced(tc, summary)
    return summary


MODES = ("thread", "queue", "pool", "reactor", "uring")


def every_mode(cls):
    """Class decorator: one copy of a ServerCase per mode (Name_thread, Name_queue, ...),
    each starting its servers with --mode; the undecorated class itself does not run."""
    return only_modes(*MODES)(cls)


def only_modes(*modes):
    """Like every_mode, for the modes named: for behaviour only some modes have (a queue
    to overflow, a pool of connections to evict from)."""
    return lambda cls: _per_mode(cls, modes)


def _per_mode(cls, modes):
    module = sys.modules[cls.__module__]
    for mode in modes:
        sub = type(f"{cls.__name__}_{mode}", (cls,), {"mode": mode, "__module__": cls.__module__})
        sub.__qualname__ = sub.__name__
        setattr(module, sub.__name__, sub)
    return None


def mode_args(mode, args):
    """Adapts flags written for the pool to another mode: --mode queue has one consumer
    (no --workers), and thread, reactor and uring have no queue (no --queue)."""
    out, i = [], 0
    args = list(args)
    while i < len(args):
        a = args[i]
        drop = (mode == "queue" and a in ("--workers", "-w")) or \
               (mode in ("thread", "reactor", "uring") and a in ("--queue", "-q"))
        if drop:
            i += 2
            continue
        out.append(a)
        i += 1
    return ["--mode", mode] + out


class ServerCase(unittest.TestCase):
    """A TestCase whose servers are stopped and audited (exit 0, balanced accounting)
    after each test, unless the test stopped them itself. In a class made by every_mode,
    servers run in that class's mode."""
    mode = None

    def start(self, *args, **kw):
        if self.mode is not None:
            args = mode_args(self.mode, args)
        srv = Server(*args, **kw)
        self.addCleanup(self._audit, srv)
        return srv

    def _audit(self, srv):
        if srv.returncode is None:
            stop_checked(self, srv, sig=None if srv.signalled else signal.SIGTERM, timeout=40)
        # Under make asan/tsan a report may not change the exit code (TSan's comes at exit,
        # and a server that drained by timeout leaves with _exit): read it from stderr.
        for mark in ("Sanitizer", "runtime error:"):
            self.assertNotIn(mark, srv.stderr or "", f"sanitizer report: {(srv.stderr or '')[-3000:]}")

    def connect(self, srv, timeout=5.0):
        s = srv.connect(timeout)
        self.addCleanup(s.close)
        return s


def cpu_seconds(pid):
    """User + system CPU time consumed so far by a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_thread(fn, *args):
    """Runs fn(*args) in a daemon thread; join() re-raises nothing, so callers keep their
    results in a list they own."""
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t


def recv_response_or_close(sock, timeout=5.0):
    """Like recv_response, but a connection that ends before the first byte of an answer
    is an outcome, not an error. Returns ("complete", (status, headers, body, raw)),
    ("none", how) when nothing came before EOF/reset, or ("partial", bytes)."""
    start = _leftover(sock, "rest")
    try:
        return "complete", recv_response(sock, timeout)
    except (ConnectionError, TimeoutError, socket.timeout) as e:
        got = _leftover(sock, "partial")
        if isinstance(e, (TimeoutError, socket.timeout)) and not got and not start:
            return "none", "timeout"
        return ("partial", got) if (got or start) else ("none", type(e).__name__)
