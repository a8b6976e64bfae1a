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
import time

BUILD = os.environ.get("OKSERVE_BUILD", os.path.abspath("build/release"))
SERVER_BIN = os.path.join(BUILD, "okserve")
LOADGEN_BIN = os.path.join(BUILD, "loadgen")
# Sanitizer builds are several times slower; load sizes in tests scale down with this.
SLOW = any(v in BUILD for v in ("asan", "tsan"))

STARTUP_RE = re.compile(r"listen=(\[[^\]]+\]|[^\s:]+):(\d+)")


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
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=full_env, preexec_fn=preexec_fn)
        self.startup_line = self._read_line(self.proc.stdout, start_timeout)
        m = STARTUP_RE.search(self.startup_line)
        if not m:
            self.kill()
            err = self.proc.stderr.read().decode(errors="replace")
            raise RuntimeError(f"no start-up line from {argv}: {self.startup_line!r} {err!r}")
        self.host = m.group(1).strip("[]")
        self.port = int(m.group(2))
        self.stdout_rest = ""
        self.stderr = ""
        self.returncode = None

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

    def url(self, path="/"):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{h}:{self.port}{path}"

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Signals the server and waits for it; returns (exit code, stdout, stderr)."""
        if self.returncode is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                out, err = self.proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, err = self.proc.communicate()
                self.returncode = "timeout"
                self.stdout_rest, self.stderr = out.decode(errors="replace"), err.decode(errors="replace")
                return self.returncode, self.stdout_rest, self.stderr
            self.returncode = self.proc.returncode
            self.stdout_rest, self.stderr = out.decode(errors="replace"), err.decode(errors="replace")
        return self.returncode, self.stdout_rest, self.stderr

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
    after the response in sock._okserve_rest for the next call."""
    deadline = time.monotonic() + timeout
    buf = getattr(sock, "_okserve_rest", b"")
    while b"\r\n\r\n" not in buf:
        buf += _recv_some(sock, deadline)
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
    body, sock._okserve_rest = rest[:length], rest[length:]
    return status, headers, body, head + b"\r\n\r\n" + body


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
    data = getattr(sock, "_okserve_rest", b"")
    sock._okserve_rest = b""
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
