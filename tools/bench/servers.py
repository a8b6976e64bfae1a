"""The servers under test: starts okserve and nginx on loopback ports, pinned to one core,
reads their CPU time and peak memory from /proc, and stops them by PID.

Owns every process the harness starts for a server; knows nothing about load
generators or reports. Nothing started here may outlive the harness: each process is
registered, asks the kernel to signal it if the harness dies (PR_SET_PDEATHSIG), and
`stop_all()` runs from the harness's `finally`.
"""
import ctypes
import grp
import os
import pwd
import re
import select
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTUP_RE = re.compile(r"listen=(\[[^\]]+\]|[^\s:]+):(\d+)")

# Every server process we started, in start order; the harness reports these PIDs.
STARTED = []
_LIVE = []


def _die_with_parent():
    # Runs in the child between fork and exec. If the harness is killed outright
    # (SIGKILL), the kernel still sends SIGTERM to the server.
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def pin(cpu, argv):
    """Prefixes argv with `taskset -c cpu` when pinning is possible (2+ CPUs)."""
    if cpu is None:
        return list(argv)
    return ["taskset", "-c", str(cpu)] + list(argv)


def cpu_ticks(pid):
    """utime+stime of one process (all its threads, live and exited) in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def children_of(pid):
    """PIDs whose parent is pid (nginx workers of a master)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            kids.append(int(name))
    return sorted(kids)


def context_switches(pid):
    """Voluntary + involuntary context switches of every thread of a process so far."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass  # a thread that just ended
    return total


def vm_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vm_hwm_kib(pid):
    """Peak resident memory (VmHWM) of one process in KiB, 0 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (for nginx, which cannot listen on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host, port, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Server:
    """One running server: a name, its URL, the PIDs that do its work, and how to stop it."""

    def __init__(self, name, proc, host, port, workdir):
        self.name = name
        self.proc = proc
        self.host = host
        self.port = port
        self.workdir = workdir
        self.extra_pids = []   # processes forked by the server itself (nginx workers)
        self.summary = ""
        _LIVE.append(self)
        STARTED.append(proc.pid)

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/"

    def pids(self):
        return [self.proc.pid] + self.extra_pids

    def cpu_ticks(self):
        return sum(cpu_ticks(p) for p in self.pids())

    def vm_hwm_kib(self):
        return sum(vm_hwm_kib(p) for p in self.pids())

    def context_switches(self):
        return sum(context_switches(p) for p in self.pids())

    def rss_kib(self):
        return sum(vm_rss_kib(p) for p in self.pids())

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM to our PID, wait, then SIGKILL to every PID we know of."""
        if self in _LIVE:
            _LIVE.remove(self)
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.summary = (out or b"").decode(errors="replace").strip()
        deadline = time.monotonic() + 5.0
        for pid in self.extra_pids:
            while _pid_running(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _pid_running(pid):
                os.kill(pid, signal.SIGKILL)
        return self.proc.returncode


def _pid_running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def pid_gone(pid):
    """True when no live process has this PID (zombies count as gone)."""
    return not _pid_running(pid)


def stop_all():
    for srv in list(reversed(_LIVE)):
        try:
            srv.stop()
        except Exception as exc:   # keep stopping the others
            print(f"bench: stopping {srv.name} (pid {srv.proc.pid}): {exc}")


def _read_line(stream, timeout):
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n") and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")


def start_okserve(binary, workdir, *, name="okserve", mode="pool", workers=2, queue=64,
                  overflow=None, cpu=0, extra=()):
    """Starts okserve on 127.0.0.1 port 0 and reads the port from its start-up line. Each
    mode gets only the flags it has a use for: queue has one consumer (no --workers),
    thread keeps its default cap of threads, and thread, reactor and uring have no queue."""
    argv = [binary, "--host", "127.0.0.1", "--port", "0", "--mode", mode]
    if mode not in ("queue", "thread"):
        argv += ["--workers", str(workers)]
    if mode in ("pool", "queue"):
        argv += ["--queue", str(queue)]
    if overflow:
        argv += ["--overflow", overflow]
    argv += list(extra)
    srv = _start_announcing(name, argv, workdir, cpu)
    srv.admin_url = None
    if "--admin" in extra:  # the next line names the admin listener
        am = re.search(r"admin=(http://\S+/)", _read_line(srv.proc.stdout, 10.0))
        srv.admin_url = am.group(1) if am else None
    return srv


def start_floor(binary, workdir, *, cpu=0):
    """Starts the bench's yardstick (tools/bench/floor.cpp, a minimal epoll loop) on
    127.0.0.1 port 0, pinned like the servers it is measured beside."""
    return _start_announcing("floor", [binary, "--host", "127.0.0.1", "--port", "0"], workdir, cpu)


def _start_announcing(name, argv, workdir, cpu):
    """Starts a server that prints "listen=HOST:PORT" on its first line once it listens."""
    err = open(os.path.join(workdir, f"{name}.stderr"), "ab")
    proc = subprocess.Popen(pin(cpu, argv), stdout=subprocess.PIPE, stderr=err,
                            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent,
                            start_new_session=True)
    err.close()
    line = _read_line(proc.stdout, 10.0)
    m = STARTUP_RE.search(line)
    if not m:
        proc.kill()
        proc.wait()
        with open(os.path.join(workdir, f"{name}.stderr"), errors="replace") as f:
            tail = f.read().strip().splitlines()[-1:] or [""]
        raise RuntimeError(f"{name} did not start: {line.strip()!r} {tail[0]!r}")
    srv = Server(name, proc, m.group(1).strip("[]"), int(m.group(2)), workdir)
    srv.startup_line = line.strip()
    return srv


def nginx_binary():
    for path in ("nginx", "/usr/sbin/nginx"):
        if os.path.sep in path and os.access(path, os.X_OK):
            return path
        found = _which(path)
        if found:
            return found
    return None


def _which(name):
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def _nginx_config(workdir, host, port, workers):
    with open(os.path.join(HERE, "nginx.conf.in")) as f:
        text = f.read()
    user_line = ""
    if os.geteuid() == 0:
        # As root nginx would switch its workers to "nobody"; stay the current user.
        user_line = (f"user {pwd.getpwuid(os.getuid()).pw_name} "
                     f"{grp.getgrgid(os.getgid()).gr_name};")
    for key, val in (("USER_LINE", user_line), ("WORKERS", workers), ("DIR", workdir),
                     ("HOST", host), ("PORT", port)):
        text = text.replace(f"@{key}@", str(val))
    path = os.path.join(workdir, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_nginx(workdir, *, workers=2, cpu=0, name="nginx", attempts=3):
    """Starts nginx from a private config in workdir; retries if the port got taken."""
    binary = nginx_binary()
    if not binary:
        raise RuntimeError("nginx not found")
    ndir = os.path.join(workdir, name)
    os.makedirs(ndir, exist_ok=True)
    for _ in range(attempts):
        port = free_port()
        conf = _nginx_config(ndir, "127.0.0.1", port, workers)
        argv = [binary, "-p", ndir + "/", "-c", conf, "-e", os.path.join(ndir, "error.log")]
        proc = subprocess.Popen(pin(cpu, argv), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent, start_new_session=True)
        if wait_for_port("127.0.0.1", port, proc):
            srv = Server(name, proc, "127.0.0.1", port, ndir)
            srv.extra_pids = _wait_children(proc.pid, workers)
            STARTED.extend(srv.extra_pids)
            return srv
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    with open(os.path.join(ndir, "error.log"), errors="replace") as f:
        tail = f.read().strip().splitlines()[-1:] or [""]
    raise RuntimeError(f"nginx did not start: {tail[0]}")


def _wait_children(pid, count, timeout=5.0):
    deadline = time.monotonic() + timeout
    kids = children_of(pid)
    while len(kids) < count and time.monotonic() < deadline:
        time.sleep(0.02)
        kids = children_of(pid)
    return kids
