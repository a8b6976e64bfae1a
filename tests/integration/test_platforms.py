"""Where the listener comes from, and what okserve is shipped in: --unix, --fd, systemd
socket activation (systemd-socket-activate and a launcher of our own), every bad input
for them, `make static` run as an unprivileged user, and the checks that keep the
Dockerfile and the Kubernetes manifests consistent with the flags they pass.

Servers here are not started with --port 0, so this module has its own launcher (Run)
instead of support.Server; every server is stopped by its own PID, every socket file
lives in a temporary directory removed after each test.
"""
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from support import SERVER_BIN, STARTUP_RE, Server, have, http_request, recv_response, run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = ("thread", "queue", "pool", "reactor", "uring")


def clean_env(extra=None):
    """Our environment without OKSERVE_*, PORT or LISTEN_*, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OKSERVE_", "LISTEN_")) and k != "PORT"}
    env.update(extra or {})
    return env


class Run:
    """Starts argv (okserve, or a launcher that execs it), reads the start-up line within a
    deadline, and stops it by PID. `pre_connect` names a Unix path or (host, port) to
    connect to before the start-up line is read: systemd-socket-activate starts okserve
    only once a connection arrives."""

    def __init__(self, argv, env=None, preexec_fn=None, close_fds=True, pass_fds=(),
                 pre_connect=None, timeout=10.0):
        self.argv = argv
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self._err,
                                     env=clean_env() if env is None else env,
                                     preexec_fn=preexec_fn, close_fds=close_fds, pass_fds=pass_fds)
        self.early = None  # the socket connected before okserve ran
        self.returncode = None
        if pre_connect is not None:
            self.early = self._connect_when_listening(pre_connect, timeout)
        self.line = self._read_line(timeout)
        if "listen=" not in self.line:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"no start-up line from {argv}: {self.line!r} {self.stderr!r}")

    def _connect_when_listening(self, where, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fam = socket.AF_UNIX if isinstance(where, str) else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(5)
            try:
                s.connect(where)
                return s
            except OSError:
                s.close()
                time.sleep(0.02)
        raise RuntimeError(f"{self.argv[0]} never listened on {where}")

    def _read_line(self, timeout):
        return Server._read_line(self.proc.stdout, timeout)

    @property
    def stderr(self):
        self._err.seek(0)
        return self._err.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.returncode is None:
            if sig is not None and self.proc.poll() is None:  # None: signalled already
                self.proc.send_signal(sig)
            try:
                self.out, _ = self.proc.communicate(timeout=timeout)
                self.returncode = self.proc.returncode
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.out, _ = self.proc.communicate()
                self.returncode = "timeout"
            if self.early is not None:
                self.early.close()
        return self.returncode


def get(where, path="/", timeout=5.0):
    """One GET over a new connection to a Unix path or (host, port); the parsed answer."""
    fam = socket.AF_UNIX if isinstance(where, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(where)
        s.sendall(http_request("GET", path, headers=[("Connection", "close")]))
        return recv_response(s, timeout)


def ask(sock, timeout=5.0):
    sock.sendall(http_request("GET", "/"))
    return recv_response(sock, timeout)


def tcp_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def with_fd3(sock):
    """A preexec_fn: in the child, `sock` becomes descriptor 3 (None: 3 is closed)."""
    fd = sock.fileno() if sock is not None else None

    def pre():
        if fd == 3:
            os.set_inheritable(3, True)  # dup2(3, 3) would leave close-on-exec set
        elif fd is not None:
            os.dup2(fd, 3)  # the copy is inheritable
        else:
            try:
                os.close(3)
            except OSError:
                pass
    return pre


def activated(args, env, own_pid=True):
    """argv and environment for okserve under a launcher of our own: with own_pid,
    LISTEN_PID is set by a shell to its own PID, which exec hands on to okserve."""
    argv = [SERVER_BIN, *args]
    if own_pid:
        argv = ["sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', *argv]
    return argv, clean_env(env)


def run_to_exit(argv, env=None, timeout=15, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=clean_env() if env is None else env, **kw)


class Tmp(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="okserve-plat-")
        self.runs = []

    def tearDown(self):
        for r in self.runs:
            r.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def start(self, *a, **kw):
        r = Run(*a, **kw)
        self.runs.append(r)
        return r

    def assert_one_line_failure(self, r, code, *words):
        self.assertEqual(r.returncode, code, (r.stdout, r.stderr))
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertTrue(lines[0].startswith("okserve: "), lines[0])
        for w in words:
            self.assertIn(w, lines[0])
        # Never a silent fallback to a TCP port of its own.
        self.assertNotIn("listen=", r.stdout)

    def assert_clean_exit(self, r):
        self.assertEqual(r.stop(), 0, r.stderr)
        self.assertIn("okserve: shutdown:", r.out.decode())


class UnixSocket(Tmp):
    def test_curl_and_the_file(self):
        """curl --unix-socket gets the answer; the file has --unix-mode (0660 by default)
        and is gone after a clean shutdown."""
        if not have("curl"):
            self.skipTest("curl not installed")
        for mode, want in ((None, 0o660), ("0600", 0o600)):
            path = self.path("ok.sock")
            argv = [SERVER_BIN, "--unix", path] + (["--unix-mode", mode] if mode else [])
            srv = self.start(argv)
            self.assertIn(f"listen=unix:{path} ", srv.line)
            st = os.lstat(path)
            self.assertTrue(stat.S_ISSOCK(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), want)
            c = run(["curl", "-sS", "--unix-socket", path, "http://localhost/"], timeout=20)
            self.assertEqual((c.returncode, c.stdout), (0, "OK\n"), c.stderr)
            # Fifty requests on one kept-alive connection (curl reuses it for a URL range).
            c = run(["curl", "-sS", "--unix-socket", path, "http://localhost/[1-50]"], timeout=30)
            self.assertEqual((c.returncode, c.stdout), (0, "OK\n" * 50), c.stderr)
            self.assert_clean_exit(srv)
            self.assertIn("accepted=2 answered=2", srv.out.decode())
            self.assertFalse(os.path.lexists(path), "the socket file outlived the server")

    def test_every_mode(self):
        for mode in MODES:
            with self.subTest(mode=mode):
                path = self.path(f"{mode}.sock")
                srv = self.start([SERVER_BIN, "--mode", mode, "--workers", "1" if mode == "queue" else "2",
                                  "--unix", path])
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(5)
                s.connect(path)
                for _ in range(3):  # keep-alive
                    self.assertEqual(ask(s)[0], 200)
                s.close()
                if mode in ("reactor", "uring"):
                    self.assertIn("listeners=shared", srv.line)
                self.assert_clean_exit(srv)
                self.assertFalse(os.path.lexists(path))

    def test_access_log_and_admin(self):
        """The access log's peer for a Unix client is "-"; the admin listener is TCP still."""
        path, log = self.path("a.sock"), self.path("access.log")
        srv = self.start([SERVER_BIN, "--unix", path, "--access-log", log, "--admin", "127.0.0.1:0",
                          "--instance-header"])
        m = re.search(r"admin=http://127\.0\.0\.1:(\d+)/", srv._read_line(10))
        self.assertTrue(m)
        status, headers, _, _ = get(path)
        self.assertEqual(status, 200)
        self.assertTrue(headers["okserve-instance"].endswith(":unix:" + path), headers)
        self.assertEqual(get(("127.0.0.1", int(m.group(1))), "/ready")[0], 200)
        self.assert_clean_exit(srv)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("- "), lines[0])

    def test_stale_socket_is_replaced(self):
        """A socket file nobody listens on (a crashed server's) is replaced."""
        path = self.path("stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()  # the file stays; connecting to it is refused
        self.assertTrue(os.path.lexists(path))
        srv = self.start([SERVER_BIN, "--unix", path])
        self.assertEqual(get(path)[0], 200)
        self.assert_clean_exit(srv)
        self.assertFalse(os.path.lexists(path))

    def test_live_socket_is_not_taken(self):
        """Another okserve, or any process, listening on the path: exit 1, theirs intact."""
        path = self.path("live.sock")
        first = self.start([SERVER_BIN, "--unix", path])
        r = run_to_exit([SERVER_BIN, "--unix", path])
        self.assert_one_line_failure(r, 1, path, "a server is listening on it")
        self.assertEqual(get(path)[0], 200)  # the first one still serves
        self.assert_clean_exit(first)

        other = socket.socket(socket.AF_UNIX)
        other.bind(path)
        other.listen(1)
        try:
            r = run_to_exit([SERVER_BIN, "--unix", path])
            self.assert_one_line_failure(r, 1, "a server is listening on it")
            c = socket.socket(socket.AF_UNIX)
            c.connect(path)  # still theirs
            c.close()
        finally:
            other.close()
            os.unlink(path)

    def test_bad_paths(self):
        regular = self.path("file")
        with open(regular, "w") as f:
            f.write("keep me\n")
        cases = [
            ([self.path("missing/dir/ok.sock")], 1, ["bind: No such file or directory", "missing/dir"]),
            ([regular], 1, ["a regular file is there"]),
            (["/tmp/" + "x" * 120], 2, ["too long"]),
            ([""], 2, ["--unix: needs a path"]),
        ]
        for args, code, words in cases:
            with self.subTest(args=args):
                self.assert_one_line_failure(run_to_exit([SERVER_BIN, "--unix", *args]), code, *words)
        with open(regular) as f:
            self.assertEqual(f.read(), "keep me\n")

    def test_flags_that_do_not_apply(self):
        """TCP-only flags beside --unix are refused, not silently ignored."""
        path = self.path("x.sock")
        for args, words in (
            (["--unix", path, "--port", "9"], ["--port", "not used with --unix"]),
            (["--unix", path, "--defer-accept", "on"], ["--defer-accept"]),
            (["--unix", path, "--host", "::1"], ["--host"]),
            (["--unix-mode", "0600"], ["--unix-mode: needs --unix"]),
            (["--unix", path, "--unix-mode", "0999"], ["is not an octal mode"]),
            (["--unix", path, "--fd", "3"], ["not used with --fd"]),
        ):
            with self.subTest(args=args):
                self.assert_one_line_failure(run_to_exit([SERVER_BIN, *args]), 2, *words)
        self.assertFalse(os.path.lexists(path))


class GivenSocket(Tmp):
    """--fd N, and LISTEN_FDS from a launcher of our own."""

    def test_fd_every_mode(self):
        listener = tcp_listener()
        port = listener.getsockname()[1]
        try:
            for mode in MODES:
                with self.subTest(mode=mode):
                    fd = listener.fileno()
                    srv = self.start([SERVER_BIN, "--fd", str(fd), "--mode", mode, "--workers",
                                      "1" if mode == "queue" else "2"], pass_fds=(fd,))
                    m = STARTUP_RE.search(srv.line)  # listen=HOST:PORT still parses
                    self.assertEqual((m.group(1), int(m.group(2))), ("127.0.0.1", port), srv.line)
                    self.assertIn(f"(--fd {fd})", srv.line)
                    self.assertIn("backlog=inherited", srv.line)
                    self.assertEqual(get(("127.0.0.1", port))[0], 200)
                    self.assert_clean_exit(srv)
        finally:
            listener.close()

    def test_socket_outlives_the_server(self):
        """The socket is the giver's: okserve does not shut it down when it drains, so a
        connection made between two instances waits in the backlog for the second."""
        listener = tcp_listener()
        addr = listener.getsockname()
        argv, env = activated([], {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"})
        try:
            first = self.start(argv, env=env, preexec_fn=with_fd3(listener), close_fds=False)
            self.assertIn(f"listen=127.0.0.1:{addr[1]} (systemd fd 3 'http')", first.line)
            self.assertEqual(get(addr)[0], 200)
            self.assert_clean_exit(first)
            waiting = socket.create_connection(addr, timeout=5)  # into the backlog
            waiting.sendall(http_request("GET", "/"))
            second = self.start(argv, env=env, preexec_fn=with_fd3(listener), close_fds=False)
            self.assertEqual(recv_response(waiting, 5)[0], 200)
            waiting.close()
            self.assert_clean_exit(second)
        finally:
            listener.close()

    def test_unix_socket_given(self):
        """A Unix socket given by fd is served and its file left alone: not okserve's."""
        path = self.path("given.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        listener.listen(16)
        try:
            fd = listener.fileno()
            srv = self.start([SERVER_BIN, "--fd", str(fd), "--mode", "reactor", "--workers", "2"], pass_fds=(fd,))
            self.assertIn(f"listen=unix:{path} (--fd {fd})", srv.line)
            self.assertEqual(get(path)[0], 200)
            self.assert_clean_exit(srv)
            self.assertTrue(os.path.lexists(path))
        finally:
            listener.close()
            os.unlink(path)

    def test_bad_descriptors(self):
        a, b = socket.socketpair()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        closed = os.open(os.devnull, os.O_RDONLY)
        os.close(closed)
        regular = os.open(__file__, os.O_RDONLY)
        try:
            cases = [
                ("a closed descriptor", closed, (), ["--fd", "Bad file descriptor"]),
                ("a file", regular, (regular,), ["not a socket (a regular file)"]),
                ("a connected socket", a.fileno(), (a.fileno(),), ["not listening"]),
                ("a datagram socket", udp.fileno(), (udp.fileno(),), ["not a stream socket"]),
            ]
            for what, fd, keep, words in cases:
                with self.subTest(what=what):
                    r = run_to_exit([SERVER_BIN, "--fd", str(fd)], pass_fds=keep)
                    self.assert_one_line_failure(r, 1, f"--fd {fd}", *words)
            for args, words in ((["--fd", "x"], ["--fd: 'x' is not a number"]),
                                (["--fd", "3", "--port", "80"], ["--port: not used with --fd"]),
                                (["--fd", "3", "--backlog", "10"], ["--backlog: not used with --fd"])):
                self.assert_one_line_failure(run_to_exit([SERVER_BIN, *args]), 2, *words)
        finally:
            for s in (a, b, udp):
                s.close()
            os.close(regular)

    def test_bad_activation(self):
        listener = tcp_listener()
        a, b = socket.socketpair()
        parent = str(os.getpid())
        try:
            one = {"LISTEN_FDS": "1"}
            cases = [  # what, fd 3, environment, LISTEN_PID set to okserve's, exit code, words
                ("LISTEN_PID of another process", listener, {"LISTEN_PID": parent, "LISTEN_FDS": "1"}, False,
                 1, [f"LISTEN_PID={parent} names another process"]),
                ("no descriptor 3", None, one, True, 1, ["systemd fd 3", "Bad file descriptor"]),
                ("not listening", a, one, True, 1, ["systemd fd 3", "not listening"]),
                ("two sockets", listener, {"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:admin"}, True,
                 1, ["LISTEN_FDS=2", "serves one socket", "http:admin"]),
                ("none", listener, {"LISTEN_FDS": "0"}, True, 1, ["LISTEN_FDS=0"]),
                ("malformed PID", listener, {"LISTEN_PID": "me", "LISTEN_FDS": "1"}, False,
                 2, ["LISTEN_PID: 'me' is not a number"]),
                ("names disagree", listener, {"LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"}, True, 2, ["LISTEN_FDNAMES"]),
                ("FDS alone", listener, one, False, 2, ["LISTEN_FDS: set without LISTEN_PID"]),
                ("with --port", listener, one, True, 2, ["--port: not used with socket activation"]),
            ]
            for what, sock, extra, own_pid, code, words in cases:
                with self.subTest(what=what):
                    args = ["--port", "8080"] if what == "with --port" else []
                    argv, env = activated(args, extra, own_pid)
                    r = subprocess.run(argv, capture_output=True, text=True, timeout=15, env=env,
                                       preexec_fn=with_fd3(sock), close_fds=False)
                    self.assert_one_line_failure(r, code, *words)
        finally:
            for s in (listener, a, b):
                s.close()


@unittest.skipUnless(have("systemd-socket-activate"), "systemd-socket-activate not installed (Debian: systemd)")
class SystemdSocketActivate(Tmp):
    """The real launcher: it listens, waits for a first connection, then execs okserve
    with LISTEN_PID (its own PID, which exec keeps), LISTEN_FDS and LISTEN_FDNAMES."""

    def test_unix(self):
        path = self.path("act.sock")
        srv = self.start(["systemd-socket-activate", "-l", path, "--fdname=web", SERVER_BIN, "--mode", "reactor"],
                         pre_connect=path)
        self.assertIn(f"listen=unix:{path} (systemd fd 3 'web')", srv.line)
        self.assertEqual(ask(srv.early)[0], 200)  # made before okserve ran
        self.assertEqual(get(path)[0], 200)
        self.assert_clean_exit(srv)
        # The launcher made the file, so okserve leaves it; this test removes it.
        self.assertTrue(os.path.lexists(path))

    def test_tcp(self):
        for attempt in range(5):  # the launcher cannot take port 0: pick a free one
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            try:
                srv = self.start(["systemd-socket-activate", "-l", f"127.0.0.1:{port}", SERVER_BIN,
                                  "--mode", "pool"], pre_connect=("127.0.0.1", port), timeout=5)
                break
            except RuntimeError:
                if attempt == 4:
                    raise
        m = STARTUP_RE.search(srv.line)
        self.assertEqual(int(m.group(2)), port)
        self.assertIn("(systemd fd 3)", srv.line)
        self.assertEqual(ask(srv.early)[0], 200)
        self.assertEqual(get(("127.0.0.1", port))[0], 200)
        self.assert_clean_exit(srv)

    def test_refused_kinds(self):
        """A datagram socket (systemd-socket-activate -d): exit 1, one line."""
        path = self.path("dgram.sock")
        p = subprocess.Popen(["systemd-socket-activate", "-d", "-l", path, SERVER_BIN],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), text=True)
        deadline = time.monotonic() + 10
        while not os.path.lexists(path) and time.monotonic() < deadline:
            time.sleep(0.02)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as d:
            d.sendto(b"x", path)  # wakes the launcher
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            self.fail("okserve did not exit on a datagram socket")
        self.assertEqual(p.returncode, 1, err)
        mine = [l for l in err.splitlines() if l.startswith("okserve: ")]
        self.assertEqual(len(mine), 1, err)
        self.assertIn("not a stream socket", mine[0])
        self.assertNotIn("listen=", out)


def unit_value(text, key):
    m = re.search(r"(?m)^" + key + r"=(.*)$", text)
    return m.group(1).strip() if m else None


class SystemdUnits(Tmp):
    """examples/systemd: the service's ExecStart runs under the socket's settings, and the
    stop timeout outlasts the drain."""

    def setUp(self):
        super().setUp()
        with open(os.path.join(ROOT, "examples/systemd/okserve.socket")) as f:
            self.socket_unit = f.read()
        with open(os.path.join(ROOT, "examples/systemd/okserve.service")) as f:
            self.service_unit = f.read()
        self.args = unit_value(self.service_unit, "ExecStart").split()[1:]

    def flag(self, name):
        return self.args[self.args.index(name) + 1]

    def test_hardening_and_timeouts(self):
        for key, want in (("DynamicUser", "yes"), ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                          ("CapabilityBoundingSet", ""), ("KillSignal", "SIGTERM")):
            self.assertEqual(unit_value(self.service_unit, key), want, key)
        self.assertEqual(unit_value(self.socket_unit, "Accept"), "no")
        stop = seconds(unit_value(self.service_unit, "TimeoutStopSec"))
        self.assertGreater(stop, seconds(self.flag("--drain-delay")) + seconds(self.flag("--drain-timeout")))

    @unittest.skipUnless(have("systemd-analyze"), "systemd-analyze not installed (Debian: systemd)")
    def test_units_verify(self):
        for name, text in (("okserve.socket", self.socket_unit),
                           ("okserve.service", re.sub(r"(?m)^ExecStart=\S+", "ExecStart=" + SERVER_BIN, self.service_unit))):
            with open(self.path(name), "w") as f:
                f.write(text)
        r = run(["systemd-analyze", "verify", self.path("okserve.socket"), self.path("okserve.service")], timeout=60)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    @unittest.skipUnless(have("systemd-socket-activate"), "systemd-socket-activate not installed (Debian: systemd)")
    def test_exec_start_under_activation(self):
        """ExecStart's flags with the socket's name, on a Unix path for the socket's
        address and port 0 for the admin listener."""
        path = self.path("unit.sock")
        args = list(self.args)
        args[args.index("--admin") + 1] = "127.0.0.1:0"
        name = unit_value(self.socket_unit, "FileDescriptorName")
        srv = self.start(["systemd-socket-activate", "-l", path, f"--fdname={name}", SERVER_BIN, *args],
                         pre_connect=path)
        self.assertIn(f"(systemd fd 3 '{name}')", srv.line)
        admin = re.search(r"admin=http://127\.0\.0\.1:(\d+)/", srv._read_line(10))
        self.assertEqual(ask(srv.early)[0], 200)
        self.assertEqual(get(("127.0.0.1", int(admin.group(1))), "/ready")[0], 200)
        srv.proc.send_signal(signal.SIGTERM)
        # --drain-delay: /ready says 503 while the socket is still served.
        deadline = time.monotonic() + 5
        while get(("127.0.0.1", int(admin.group(1))), "/ready")[0] != 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(get(("127.0.0.1", int(admin.group(1))), "/ready")[0], 503)
        self.assertEqual(get(path)[0], 200)
        self.assertEqual(srv.stop(sig=None), 0, srv.stderr)


def make_static(workdir):
    """Does what the Dockerfile's build stage does: copies only what its COPY lines name
    into an empty `workdir` and runs its RUN make line there. Returns the binary's path
    and the Dockerfile."""
    with open(os.path.join(ROOT, "examples/docker/Dockerfile")) as f:
        dockerfile = f.read()
    build_stage = dockerfile[:dockerfile.rindex("\nFROM ")]
    copies = re.findall(r"(?m)^COPY (\S+) (\S+)$", build_stage)
    assert copies, "the build stage copies nothing"
    for src, dst in copies:
        target = os.path.join(workdir, src if dst in ("./", ".") else dst)
        if os.path.isdir(os.path.join(ROOT, src)):
            shutil.copytree(os.path.join(ROOT, src), target)
        else:
            shutil.copy(os.path.join(ROOT, src), target)
    m = re.search(r"(?m)^RUN (make [^\n]*static[^\n]*)$", build_stage)
    assert m, "the Dockerfile has no RUN make ... static line"
    r = subprocess.run(m.group(1), shell=True, cwd=workdir, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    m = re.search(r"(?m)^COPY --from=\S+ /src/(\S+) /okserve$", dockerfile)
    assert m, "the image copies no /okserve from the build stage"
    return os.path.join(workdir, m.group(1)), dockerfile


def json_array(text, key):
    m = re.search(r"^" + key + r"\s+(\[.*\])\s*$", text, re.M)
    return json.loads(m.group(1)) if m else None


class Shipping(unittest.TestCase):
    def test_dockerfile(self):
        """The image: multi-stage, FROM scratch, non-root, all addresses, a probe for a
        health check, SIGTERM to stop (a check that fails if one of them is edited away)."""
        with open(os.path.join(ROOT, "examples/docker/Dockerfile")) as f:
            text = f.read()
        froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
        self.assertGreaterEqual(len(froms), 2, "multi-stage")
        self.assertEqual(froms[-1], "scratch")
        last = text[text.rindex("\nFROM "):]
        self.assertEqual(len(re.findall(r"^COPY ", last, re.M)), 1, "the binary alone")
        self.assertRegex(last, r"(?m)^USER 65532:65532$")
        self.assertRegex(last, r"(?m)^STOPSIGNAL SIGTERM$")
        cmd = json_array(last, "CMD")
        self.assertEqual(cmd[0], "/okserve")
        self.assertEqual(cmd[cmd.index("--host") + 1], "0.0.0.0")
        admin = cmd[cmd.index("--admin") + 1]
        admin_port = admin.rsplit(":", 1)[1]
        hc = re.search(r"(?ms)^HEALTHCHECK\b.*?CMD\s+(\[.*?\])\s*$", last)
        self.assertTrue(hc, "HEALTHCHECK ... CMD [...]")
        probe = json.loads(hc.group(1))
        self.assertEqual(probe[:2], ["/okserve", "probe"])
        self.assertEqual(probe[2], f"http://127.0.0.1:{admin_port}/ready")
        self.assertRegex(last, r"(?m)^EXPOSE ")

    def test_static_binary_as_in_the_image(self):
        """The binary `make static` builds runs as the image runs it: the only file of an
        empty root (a chroot standing in for FROM scratch: no libc, no /etc, no /proc), as
        user 65532, with the image's CMD; the HEALTHCHECK's probe passes in there too."""
        if os.geteuid() != 0:
            self.skipTest("chroot and another user need root")
        src = tempfile.mkdtemp(prefix="okserve-build-")
        self.addCleanup(shutil.rmtree, src, ignore_errors=True)
        binary, dockerfile = make_static(src)
        if have("file"):
            self.assertIn("statically linked", run(["file", "-L", binary]).stdout)
        else:
            ldd = run(["ldd", binary])
            self.assertIn("not a dynamic executable", ldd.stdout + ldd.stderr)
        image = dockerfile[dockerfile.rindex("\nFROM "):]
        user = re.search(r"(?m)^USER (\d+):(\d+)$", image).groups()
        cmd = json_array(image, "CMD")
        root = tempfile.mkdtemp(prefix="okserve-scratch-")
        try:
            os.chmod(root, 0o755)
            shutil.copy(binary, os.path.join(root, "okserve"))
            os.chmod(os.path.join(root, "okserve"), 0o755)

            def in_image():
                os.chroot(root)
                os.chdir("/")
                os.setgroups([])
                os.setgid(int(user[1]))
                os.setuid(int(user[0]))

            # The image's command, on ports the test picks (0).
            argv = cmd + ["--port", "0", "--admin", "0.0.0.0:0", "--drain-timeout", "5s"]
            srv = Run(argv, env={}, preexec_fn=in_image)
            try:
                m = STARTUP_RE.search(srv.line)
                self.assertEqual(m.group(1), "0.0.0.0")
                admin = re.search(r"admin=http://0\.0\.0\.0:(\d+)/", srv._read_line(10))
                with open(f"/proc/{srv.proc.pid}/status") as f:
                    uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)", f.read(), re.M).groups()
                self.assertEqual(uids, (user[0], user[0]))
                self.assertEqual(get(("127.0.0.1", int(m.group(2))))[0], 200)
                hc = json.loads(re.search(r"(?ms)^HEALTHCHECK\b.*?CMD\s+(\[.*?\])\s*$", image).group(1))
                hc[-1] = hc[-1].replace(":" + cmd[cmd.index("--admin") + 1].rsplit(":", 1)[1] + "/",
                                        ":" + admin.group(1) + "/")
                p = subprocess.run(hc, env={}, preexec_fn=in_image, capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
                p = subprocess.run(["/okserve", "probe", f"http://127.0.0.1:{admin.group(1)}/nothing-here"],
                                   env={}, preexec_fn=in_image, capture_output=True, text=True, timeout=10)
                self.assertEqual(p.returncode, 1)
                self.assertEqual(srv.stop(), 0, srv.stderr)
            finally:
                srv.stop(signal.SIGKILL)
        finally:
            shutil.rmtree(root, ignore_errors=True)


def yaml_value(text, key):
    m = re.search(r"^\s*-?\s*" + re.escape(key) + r":\s*(\S+)\s*$", text, re.M)
    return m.group(1).strip("\"'") if m else None


def seconds(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "ms" else v * 60 if m.group(2) == "m" else v


class Kubernetes(unittest.TestCase):
    """Plain-text checks on the manifests (no YAML library): the probes aim where the
    container's flags put the admin listener, and the grace period outlasts the whole
    shutdown. They fail when one number is edited without the other."""

    def setUp(self):
        with open(os.path.join(ROOT, "examples/kubernetes/okserve.yaml")) as f:
            self.text = f.read()
        self.docs = re.split(r"(?m)^---\s*$", self.text)
        self.deploy = next(d for d in self.docs if re.search(r"(?m)^kind:\s*Deployment", d))
        self.service = next(d for d in self.docs if re.search(r"(?m)^kind:\s*Service", d))
        args = re.search(r"(?m)^\s*args:\s*(\[.*\])\s*$", self.deploy)
        self.assertTrue(args, "args: [...] on one line")
        self.args = json.loads(args.group(1))

    def flag(self, name):
        return self.args[self.args.index(name) + 1]

    def port_number(self, port):
        if port.isdigit():
            return int(port)
        m = re.search(r"(?ms)-\s*name:\s*" + re.escape(port) + r"\s*\n\s*containerPort:\s*(\d+)", self.deploy)
        self.assertTrue(m, f"no containerPort named {port}")
        return int(m.group(1))

    def probe(self, kind):
        m = re.search(r"(?ms)^\s*" + kind + r":\s*\n(.*?)(?=^\s*\w+Probe:|^\s*lifecycle:|^\s*resources:|\Z)", self.deploy)
        self.assertTrue(m, kind)
        return yaml_value(m.group(1), "path"), self.port_number(yaml_value(m.group(1), "port"))

    def test_probes_match_the_flags(self):
        host, admin_port = self.flag("--admin").rsplit(":", 1)
        self.assertEqual(host, "0.0.0.0", "the kubelet probes the pod's address")
        self.assertEqual(self.probe("readinessProbe"), ("/ready", int(admin_port)))
        self.assertEqual(self.probe("livenessProbe"), ("/health", int(admin_port)))
        self.assertEqual(self.flag("--host"), "0.0.0.0")
        main_port = int(self.flag("--port"))
        target = yaml_value(self.service, "targetPort")
        self.assertEqual(self.port_number(target), main_port)

    def test_grace_period_outlasts_the_shutdown(self):
        grace = float(yaml_value(self.deploy, "terminationGracePeriodSeconds"))
        pre_stop = re.search(r"(?ms)preStop:\s*\n\s*sleep:\s*\n\s*seconds:\s*(\d+)", self.deploy)
        self.assertTrue(pre_stop, "preStop: sleep: seconds: N")
        total = int(pre_stop.group(1)) + seconds(self.flag("--drain-delay")) + seconds(self.flag("--drain-timeout"))
        self.assertGreater(int(pre_stop.group(1)), 0)
        self.assertGreater(grace, total, f"terminationGracePeriodSeconds {grace} <= preStop + drain delay + timeout {total}")

    def test_flags_parse(self):
        """The container's args are flags okserve takes (the binary checks them)."""
        r = run_to_exit([SERVER_BIN, *self.args, "--help"])
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
