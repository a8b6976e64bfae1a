"""The load generators: builds wrk, ab, h2load and loadgen command lines and turns what
each prints into one `Result` (responses, seconds, requests/s, every error it counted,
latency percentiles when it has them).

Owns command lines and output parsing; knows nothing about which server is listening.
An error a tool printed is never dropped: each parser keeps every counter it found, and a
tool that failed or printed nothing usable counts as an error too.
"""
import json
import os
import re
import shutil
import subprocess

# ab keeps one record per request in memory; size -n for the time limit, not "infinity".
AB_MAX_RPS = 200_000


class Result:
    def __init__(self, tool):
        self.tool = tool
        self.responses = 0
        self.seconds = 0.0
        self.rps = 0.0
        self.errors = {}        # name -> count, every counter the tool printed
        self.latency_us = {}    # p50, p90, p99, p999 when the tool measures them
        self.note = ""

    @property
    def error_total(self):
        return sum(self.errors.values())

    def error_text(self):
        bad = {k: v for k, v in self.errors.items() if v}
        return " ".join(f"{k}={v}" for k, v in sorted(bad.items()))


def have(tool):
    return shutil.which(tool) is not None


def run(argv, cpu, timeout):
    """Runs one client pinned to cpu; returns (exit code, stdout, stderr)."""
    full = (["taskset", "-c", str(cpu)] if cpu is not None else []) + list(argv)
    try:
        p = subprocess.run(full, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        return "timeout", _text(exc.stdout), _text(exc.stderr)
    return p.returncode, p.stdout, p.stderr


def _text(b):
    if b is None:
        return ""
    return b.decode(errors="replace") if isinstance(b, bytes) else b


def _num(pattern, text, cast=float, default=None):
    m = re.search(pattern, text, re.M)
    return cast(m.group(1)) if m else default


def _unusable(res, rc, out, err):
    res.errors["tool_failed"] = 1
    lines = (err or out or "").strip().splitlines()
    res.note = f"exit {rc}: {lines[-1] if lines else 'no output'}"
    return res


# ---- wrk -------------------------------------------------------------------------

def wrk_argv(url, connections, seconds, close=False, script=None):
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    if script:
        argv += ["-s", script]
    return argv + [url]


_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def parse_wrk(rc, out, err):
    res = Result("wrk")
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", out, re.M)
    if rc != 0 or not m:
        return _unusable(res, rc, out, err)
    res.responses = int(m.group(1))
    res.seconds = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    res.rps = _num(r"^Requests/sec:\s+([\d.]+)", out, default=0.0)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    for i, name in enumerate(("connect", "read", "write", "timeout")):
        res.errors[name] = int(sock.group(i + 1)) if sock else 0
    res.errors["non2xx"] = _num(r"Non-2xx or 3xx responses:\s+(\d+)", out, int, 0)
    for pct, key in (("50", "p50"), ("90", "p90"), ("99", "p99")):
        lm = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if lm:
            res.latency_us[key] = float(lm.group(1)) * _UNITS_US[lm.group(2)]
    return res


def write_pipeline_script(folder, depth):
    """A wrk Lua script that sends `depth` requests per write (used when h2load is missing)."""
    path = os.path.join(folder, f"pipeline{depth}.lua")
    with open(path, "w") as f:
        f.write("-- sends DEPTH requests back to back; wrk counts each response\n"
                f"local depth = {depth}\n"
                "init = function(args)\n"
                "  local reqs = {}\n"
                "  for i = 1, depth do reqs[i] = wrk.format(nil) end\n"
                "  batch = table.concat(reqs)\n"
                "end\n"
                "request = function() return batch end\n")
    return path


# ---- ab ----------------------------------------------------------------------------

def ab_argv(url, connections, seconds=None, requests=None, keepalive=False):
    # -r: count receive errors instead of aborting the run on the first one.
    argv = ["ab", "-r", "-q", "-c", str(connections)]
    if seconds is not None:
        # -t resets -n to 50000, so -n must come after it.
        argv += ["-t", str(seconds), "-n", str(max(50_000, int(seconds * AB_MAX_RPS)))]
    else:
        argv += ["-n", str(requests)]
    if keepalive:
        argv.append("-k")
    return argv + [url]


def parse_ab(rc, out, err):
    res = Result("ab")
    done = _num(r"^Complete requests:\s+(\d+)", out, int)
    if rc != 0 or done is None:
        return _unusable(res, rc, out, err)
    res.responses = done
    res.seconds = _num(r"^Time taken for tests:\s+([\d.]+)", out, default=0.0)
    res.rps = _num(r"^Requests per second:\s+([\d.]+)", out, default=0.0)
    kinds = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", out)
    failed = _num(r"^Failed requests:\s+(\d+)", out, int, 0)
    if kinds:
        for i, name in enumerate(("connect", "receive", "length", "exceptions")):
            res.errors[name] = int(kinds.group(i + 1))
    else:
        res.errors["failed"] = failed
    res.errors["non2xx"] = _num(r"^Non-2xx responses:\s+(\d+)", out, int, 0)
    res.errors["write"] = _num(r"^Write errors:\s+(\d+)", out, int, 0)
    # ab counts failed requests among the completed ones; responses are the good ones.
    res.responses = max(0, done - failed)
    return res


# ---- h2load ------------------------------------------------------------------------

def h2load_argv(url, connections, depth, seconds=None, requests=None):
    argv = ["h2load", "--h1", "-t1", "-c", str(connections), "-m", str(depth)]
    argv += ["-D", str(seconds)] if seconds is not None else ["-n", str(requests)]
    return argv + [url]


def parse_h2load(rc, out, err):
    res = Result("h2load")
    fin = re.search(r"^finished in ([\d.]+)(ms|s), ([\d.]+) req/s", out, re.M)
    req = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", out, re.M)
    if rc != 0 or not fin or not req:
        return _unusable(res, rc, out, err)
    res.seconds = float(fin.group(1)) / (1000.0 if fin.group(2) == "ms" else 1.0)
    res.rps = float(fin.group(3))
    res.responses = int(req.group(4))
    for i, name in ((5, "failed"), (6, "errored"), (7, "timeout")):
        res.errors[name] = int(req.group(i))
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    res.errors["non2xx"] = sum(int(codes.group(i)) for i in (2, 3, 4)) if codes else 0
    return res


# ---- loadgen (ours) ----------------------------------------------------------------

def loadgen_argv(binary, url, connections, seconds=None, rate=None, requests=None,
                 close=False, pipeline=1):
    argv = [binary, "-t", "1", "-c", str(connections)]
    if pipeline > 1:
        argv += ["--pipeline", str(pipeline)]
    if seconds is not None:
        argv += ["-d", f"{seconds}s"]
    if requests is not None:
        argv += ["-n", str(requests)]
    if rate:
        argv += ["-R", str(int(rate))]
    if close:
        argv.append("--close")
    return argv + ["--json", url]


def parse_loadgen(rc, out, err):
    res = Result("loadgen")
    start = out.find("{")
    try:
        data = json.loads(out[start:]) if start >= 0 else None
    except ValueError:
        data = None
    if data is None or not isinstance(data, dict):
        return _unusable(res, rc, out, err)
    res.responses = int(data.get("requests", 0))
    res.seconds = float(data.get("seconds", 0.0))
    res.rps = float(data.get("rps", 0.0))
    for name, count in (data.get("errors") or {}).items():
        if name != "total" and isinstance(count, (int, float)):
            res.errors[name] = int(count)
    total = int((data.get("errors") or {}).get("total", 0))
    if total > res.error_total:
        res.errors["other"] = total - res.error_total
    for key, val in (data.get("latency_us") or {}).items():
        res.latency_us[key] = float(val)
    # loadgen exits 1 when it saw errors; those are already counted above.
    if rc != 0 and not (rc == 1 and res.error_total):
        res.errors["tool_failed"] = 1
        res.note = f"exit {rc}: {(err or '').strip()[-200:]}"
    return res


def rejected(res):
    """503s and other non-2xx answers, whatever the tool calls them."""
    return sum(v for k, v in res.errors.items()
               if k in ("non2xx", "bad_status"))


PARSERS = {"wrk": parse_wrk, "ab": parse_ab, "h2load": parse_h2load, "loadgen": parse_loadgen}
