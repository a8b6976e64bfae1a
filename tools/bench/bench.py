#!/usr/bin/env python3
"""okserve against nginx, side by side: throughput, CPU and syscalls per response, fixed-rate
latency, a pool-sizing sweep and the pool micro-benchmark, as a markdown table, a CSV file
and an SVG chart.

Usage: python3 tools/bench/bench.py [--quick] --bin build/release/okserve
           [--loadgen build/release/loadgen] [--pool-bench build/release/pool_bench]
           [--floor build/release/floor] [--out DIR]

Servers run pinned to CPU 0 and load generators to CPU 1. Within a scenario the servers take
turns, round after round, so drift on a noisy machine hits both alike. A piece whose
binary or tool is missing is reported as "skipped: reason". Every process started here is
stopped by PID before the harness exits, also on Ctrl-C or SIGTERM.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clients  # noqa: E402
import report   # noqa: E402
import servers  # noqa: E402
import memory   # noqa: E402
import svg      # noqa: E402
import sweep    # noqa: E402


class Scenario:
    """One way of loading a server: which tool, its long (throughput) and short (strace)
    command lines, and how to read its output."""

    def __init__(self, key, label, tool, long_argv, short_argv):
        self.key, self.label, self.tool = key, label, tool
        self.long_argv, self.short_argv = long_argv, short_argv
        self.skip = ""   # reason, when the tool is missing


def make_scenarios(opts, tmp):
    c, strace_n = opts.connections, opts.strace_requests
    lg = opts.loadgen
    pipe_tool = "h2load" if clients.have("h2load") else "wrk"
    lua = clients.write_pipeline_script(tmp, 16) if pipe_tool == "wrk" else None
    sc = [
        Scenario("keepalive", "keep-alive", "wrk",
                 lambda u, s: clients.wrk_argv(u, c, s),
                 lambda u: clients.h2load_argv(u, c, 1, requests=strace_n)
                 if clients.have("h2load") else clients.wrk_argv(u, c, 1)),
        Scenario("close_wrk", "connection per request (wrk)", "wrk",
                 lambda u, s: clients.wrk_argv(u, c, s, close=True),
                 lambda u: clients.ab_argv(u, c, requests=strace_n // 2)
                 if clients.have("ab") else clients.wrk_argv(u, c, 1, close=True)),
        Scenario("close_ab", "connection per request (ab)", "ab",
                 lambda u, s: clients.ab_argv(u, c, seconds=s),
                 lambda u: clients.ab_argv(u, c, requests=strace_n // 2)),
        Scenario("pipelined", f"pipelined x16 ({pipe_tool})", pipe_tool,
                 (lambda u, s: clients.h2load_argv(u, c, 16, seconds=s)) if not lua else
                 (lambda u, s: clients.wrk_argv(u, c, s, script=lua)),
                 (lambda u: clients.h2load_argv(u, c, 16, requests=strace_n * 4)) if not lua else
                 (lambda u: clients.wrk_argv(u, c, 1, script=lua))),
        # The same load from loadgen, which spends less per response than h2load: with
        # h2load the client's core saturates first, so its pipelined rows measure h2load.
        Scenario("pipelined_lg", "pipelined x16 (loadgen)", "loadgen",
                 lambda u, s: clients.loadgen_argv(lg, u, c, seconds=s, pipeline=16),
                 lambda u: clients.loadgen_argv(lg, u, c, requests=strace_n * 4, pipeline=16)),
        Scenario("ab_k", "ab -k", "ab",
                 lambda u, s: clients.ab_argv(u, c, seconds=s, keepalive=True),
                 lambda u: clients.ab_argv(u, c, requests=strace_n, keepalive=True)),
        Scenario("fixed_rate", f"fixed rate ({int(opts.rate_fraction * 100)}% of peak)",
                 "loadgen", None,
                 lambda u: clients.loadgen_argv(lg, u, c, requests=strace_n,
                                                rate=getattr(opts, "fixed_rate", None))),
    ]
    for s in sc:
        if s.tool == "loadgen":
            if not (lg and os.access(lg, os.X_OK)):
                s.skip = f"loadgen not built ({lg or 'no --loadgen'})"
        elif not clients.have(s.tool):
            s.skip = f"{s.tool} not installed"
    return sc


class Cell:
    """Every round of one scenario against one server."""

    def __init__(self, scenario, server):
        self.scenario, self.server = scenario, server
        self.rps, self.cpu_us_per_req, self.latency, self.ctxsw_per_req = [], [], [], []
        self.errors = {}
        self.notes = []
        self.syscalls_per_req = None
        self.skip = ""

    def add(self, res, cpu_us, switches=None):
        self.rps.append(res.rps)
        if res.responses:
            self.cpu_us_per_req.append(cpu_us / res.responses)
            if switches is not None:
                self.ctxsw_per_req.append(switches / res.responses)
        if res.latency_us:
            self.latency.append(res.latency_us)
        for k, v in res.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        if res.note:
            self.notes.append(res.note)

    def error_total(self):
        return sum(self.errors.values())

    def median(self, values):
        return statistics.median(values) if values else None

    def latency_median(self, key):
        return self.median([lat[key] for lat in self.latency if key in lat])


def measure(server, argv, tool, cpu, timeout):
    """One run: the server's CPU ticks before and after, the tool's result."""
    before, switches = server.cpu_ticks(), server.context_switches()
    rc, out, err = clients.run(argv, cpu, timeout)
    after, switches = server.cpu_ticks(), server.context_switches() - switches
    res = clients.PARSERS[tool](rc, out, err)
    if not server.alive():
        res.errors["server_died"] = 1
        res.note = f"{server.name} exited"
    return res, (after - before) * 1_000_000 / servers.CLK_TCK, switches


def run_throughput(opts, scenarios, srvs, cells):
    for sc in scenarios:
        if sc.skip or sc.key == "fixed_rate":
            continue
        for rnd in range(opts.rounds):
            order = srvs if rnd % 2 == 0 else list(reversed(srvs))
            for srv in order:
                res, cpu_us, switches = measure(srv, sc.long_argv(srv.url, opts.duration), sc.tool,
                                                opts.client_cpu, opts.duration + 60)
                cells[(sc.key, srv.name)].add(res, cpu_us, switches)
                log(f"{sc.key:<11} {srv.name:<13} round {rnd + 1}: {res.rps:>10.0f} req/s"
                    f"{'  ERR ' + res.error_text() if res.error_total else ''}"
                    f"{'  ' + res.note if res.note else ''}")


def run_fixed_rate(opts, scenarios, srvs, cells):
    sc = next(s for s in scenarios if s.key == "fixed_rate")
    if sc.skip:
        return
    peaks = [cells[("keepalive", s.name)].median(cells[("keepalive", s.name)].rps) or 0
             for s in srvs]
    peak = min(p for p in peaks) if peaks else 0
    if peak <= 0:
        sc.skip = "no keep-alive peak measured"
        return
    rate = max(100, int(peak * opts.rate_fraction))
    opts.fixed_rate = rate
    sc.label = f"fixed rate {rate} req/s ({int(opts.rate_fraction * 100)}% of peak)"
    for rnd in range(opts.rounds):
        order = srvs if rnd % 2 == 0 else list(reversed(srvs))
        for srv in order:
            argv = clients.loadgen_argv(opts.loadgen, srv.url, opts.connections,
                                        seconds=opts.duration, rate=rate)
            res, cpu_us, switches = measure(srv, argv, "loadgen", opts.client_cpu, opts.duration + 60)
            cells[(sc.key, srv.name)].add(res, cpu_us, switches)
            if res.rps < 0.95 * rate:
                cells[(sc.key, srv.name)].notes.append(
                    f"achieved {res.rps:.0f} of {rate} req/s: the server or the load generator "
                    "fell behind, so latency includes queueing at the client")
            lat = res.latency_us
            log(f"{sc.key:<11} {srv.name:<13} round {rnd + 1}: {res.rps:>10.0f} req/s "
                f"p50={lat.get('p50', '-')} p99={lat.get('p99', '-')} p999={lat.get('p999', '-')}"
                f"{'  ERR ' + res.error_text() if res.error_total else ''}")


def strace_syscalls(opts, srv, argv, tool, tmp):
    """Total syscalls of the server's processes per response over one short bounded run."""
    out_path = os.path.join(tmp, f"strace-{srv.name}-{time.monotonic_ns()}.txt")
    err_path = out_path + ".log"
    cmd = ["strace", "-f", "-c", "-o", out_path]
    for pid in srv.pids():
        cmd += ["-p", str(pid)]
    with open(err_path, "w") as err:
        tracer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if not _wait_attached(err_path, len(srv.pids()), tracer):
            return None, "strace could not attach"
        rc, out, errtxt = clients.run(argv, opts.client_cpu, 60)
        res = clients.PARSERS[tool](rc, out, errtxt)
    finally:
        if tracer.poll() is None:
            tracer.send_signal(signal.SIGINT)
        try:
            tracer.wait(timeout=20)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait()
    total = _strace_total(out_path)
    if total is None or not res.responses:
        return None, res.note or "no strace summary"
    return total / res.responses, ""


def _wait_attached(path, want, tracer, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and tracer.poll() is None:
        with open(path, errors="replace") as f:
            if f.read().count("attached") >= want:
                time.sleep(0.1)
                return True
        time.sleep(0.05)
    return False


def _strace_total(path):
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if parts and parts[-1] == "total":
                    return int(parts[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_strace(opts, scenarios, srvs, cells, tmp):
    if not clients.have("strace"):
        return "skipped: strace not installed"
    for sc in scenarios:
        if sc.skip:
            continue
        for srv in srvs:
            argv = sc.short_argv(srv.url)
            tool = argv[0] if argv[0] in clients.PARSERS else "loadgen"
            per_req, why = strace_syscalls(opts, srv, argv, tool, tmp)
            cells[(sc.key, srv.name)].syscalls_per_req = per_req
            if why:
                cells[(sc.key, srv.name)].notes.append(f"strace: {why}")
            log(f"strace {sc.key:<11} {srv.name:<13} "
                f"{'%.2f' % per_req if per_req is not None else why} syscalls/response")
    return ""


def okserve_modes(binary):
    """The --mode values this okserve accepts, read from its --help ("pool" if unclear)."""
    try:
        text = subprocess.run([binary, "--help"], capture_output=True, text=True,
                              timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ["pool"]
    for line in text.splitlines():
        if "--mode" in line:
            words = [w.strip("{}()[],.:<>") for w in line.replace("|", " ").split()]
            known = [w for w in words if w in ("thread", "queue", "pool", "reactor", "uring")]
            if known:
                return list(dict.fromkeys(known))
    return ["pool"]


def start_servers(opts, tmp):
    srvs, skipped = [], []
    if opts.bin and os.access(opts.bin, os.X_OK):
        for mode in okserve_modes(opts.bin):
            try:
                srvs.append(servers.start_okserve(
                    opts.bin, tmp, name=f"okserve-{mode}", mode=mode, workers=opts.workers,
                    queue=opts.queue, cpu=opts.server_cpu))
            except RuntimeError as exc:
                skipped.append(f"okserve --mode {mode} skipped: {exc}")
    else:
        skipped.append(f"okserve skipped: binary not built ({opts.bin or 'no --bin'})")
    # The default mode again with the admin listener on and scraped every second: what
    # watching costs (issue: within 3% of CPU per answer in keep-alive).
    if any(s.name == "okserve-pool" for s in srvs):
        try:
            srvs.append(servers.start_okserve(
                opts.bin, tmp, name="okserve-pool+admin", mode="pool", workers=opts.workers,
                queue=opts.queue, cpu=opts.server_cpu, extra=["--admin", "127.0.0.1:0"]))
        except RuntimeError as exc:
            skipped.append(f"okserve-pool+admin skipped: {exc}")
    # The yardstick: a minimal epoll loop that answers and does nothing else, so each mode's
    # distance to what the kernel leaves is measured in the same run.
    if opts.floor and os.access(opts.floor, os.X_OK):
        try:
            srvs.append(servers.start_floor(opts.floor, tmp, cpu=opts.server_cpu))
        except RuntimeError as exc:
            skipped.append(f"floor skipped: {exc}")
    else:
        skipped.append(f"floor skipped: not built ({opts.floor or 'no --floor'})")
    try:
        srvs.append(servers.start_nginx(tmp, workers=opts.workers, cpu=opts.server_cpu))
    except RuntimeError as exc:
        skipped.append(f"nginx skipped: {exc}")
    return srvs, skipped


class Scraper:
    """GETs /metrics from each admin URL once a second, as Prometheus would, until stop()."""

    def __init__(self, urls):
        self.urls, self.ok, self.failed = urls, 0, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        if urls:
            self.thread.start()

    def _run(self):
        while not self.done.wait(1.0):
            for url in self.urls:
                try:
                    with urllib.request.urlopen(url + "metrics", timeout=5) as r:
                        r.read()
                        self.ok += r.status == 200
                        self.failed += r.status != 200
                except OSError:
                    self.failed += 1

    def stop(self):
        self.done.set()
        if self.urls:
            self.thread.join(10)
        return {"ok": self.ok, "failed": self.failed}


def run_pool_bench(opts, out_dir):
    """Throughput with producers and workers pinned to two CPUs (like server and client
    here), then hand-off latency with the threads where the scheduler puts them."""
    if not (opts.pool_bench and os.access(opts.pool_bench, os.X_OK)):
        return f"skipped: pool_bench not built ({opts.pool_bench or 'no --pool-bench'})"
    parts = []
    for only, extra, csv in (("throughput", ["--pin"], "pool_bench.csv"),
                             ("handoff", [], "pool_bench_handoff.csv")):
        argv = [opts.pool_bench, "--only", only, *extra, "--csv", os.path.join(out_dir, csv)]
        if opts.quick:
            argv.append("--quick")
        rc, out, err = clients.run(argv, None, 300 if not opts.quick else 60)
        if rc != 0:
            return f"pool_bench failed (exit {rc}): {(err or out).strip()[-300:]}"
        parts.append(out.strip())
    return "\n\n".join(parts)


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="CI size: 1 round of 2 s, tiny sweep")
    ap.add_argument("--bin", help="okserve binary")
    ap.add_argument("--loadgen", help="loadgen binary (fixed-rate latency, sweep)")
    ap.add_argument("--pool-bench", help="pool_bench binary")
    ap.add_argument("--floor", help="floor binary (tools/bench/floor.cpp): the minimal epoll loop")
    ap.add_argument("--out", default="bench-out", help="output folder (default bench-out)")
    ap.add_argument("--workers", type=int, default=1,
                    help="okserve workers = nginx workers (default 1: the server is pinned to one core)")
    ap.add_argument("--queue", type=int, default=64, help="okserve --queue")
    ap.add_argument("--connections", type=int, default=32, help="client connections")
    ap.add_argument("--rounds", type=int, help="rounds per scenario (quick 1, full 5)")
    ap.add_argument("--duration", type=int, help="seconds per run (quick 2, full 3)")
    ap.add_argument("--rate-fraction", type=float, default=0.5,
                    help="fixed-rate run at this fraction of the lower keep-alive peak")
    ap.add_argument("--strace-requests", type=int, default=4000,
                    help="requests in each bounded strace run")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--idle-connections", type=int,
                    help="idle keep-alive connections for the memory rows (quick 2000, full 10000)")
    opts = ap.parse_args(argv)
    opts.rounds = opts.rounds or (1 if opts.quick else 5)
    opts.duration = opts.duration or (2 if opts.quick else 3)
    opts.idle_connections = opts.idle_connections or (2000 if opts.quick else 10000)
    two = (os.cpu_count() or 1) >= 2 and clients.have("taskset")
    opts.server_cpu, opts.client_cpu = (0, 1) if two else (None, None)
    return opts


def syscall_cost(opts):
    """What one system call costs on this machine now (`floor --syscall-cost`, on the
    server's CPU), or None. It sets what io_uring's batching is worth in this run."""
    if not (opts.floor and os.access(opts.floor, os.X_OK)):
        return None
    rc, out, _ = clients.run([opts.floor, "--syscall-cost"], opts.server_cpu, 60)
    m = re.search(r"syscall_ns=([\d.]+)", out or "")
    return float(m.group(1)) if rc == 0 and m else None


def main(argv):
    opts = parse_args(argv)
    t0 = time.monotonic()
    os.makedirs(opts.out, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tmp = tempfile.mkdtemp(prefix="okserve-bench-")
    opts.syscall_ns = syscall_cost(opts)
    head = report.machine_header(opts)
    log("\n" + head)
    data = {"opts": opts, "head": head, "cells": {}, "skipped": [], "sweep": [],
            "pool_bench": "", "strace": ""}
    try:
        collect(opts, tmp, data)
    finally:
        servers.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    data["seconds"] = time.monotonic() - t0
    data["pids"] = list(servers.STARTED)
    with open(os.path.join(opts.out, "pids.json"), "w") as f:
        json.dump(data["pids"], f)
    text = report.write_all(opts.out, data)
    svg.write_chart(os.path.join(opts.out, "bench.svg"), data)
    print(text)
    print(f"pids started: {' '.join(str(p) for p in data['pids'])}")
    print(f"outputs: {opts.out}/report.md {opts.out}/bench.csv {opts.out}/sweep.csv "
          f"{opts.out}/bench.svg ({data['seconds']:.0f} s)")
    return 0


def collect(opts, tmp, data):
    scenarios = make_scenarios(opts, tmp)
    srvs, data["skipped"] = start_servers(opts, tmp)
    data["scenarios"] = scenarios
    data["servers"] = [s.name for s in srvs]
    for sc in scenarios:
        for srv in srvs:
            data["cells"][(sc.key, srv.name)] = Cell(sc, srv.name)
    scraper = Scraper([s.admin_url for s in srvs if getattr(s, "admin_url", None)])
    if srvs:
        run_throughput(opts, scenarios, srvs, data["cells"])
        run_fixed_rate(opts, scenarios, srvs, data["cells"])
        data["strace"] = "skipped: --no-strace" if opts.no_strace else \
            run_strace(opts, scenarios, srvs, data["cells"], tmp)
    data["scrapes"] = scraper.stop()
    for srv in srvs:
        srv.stop()
        data.setdefault("summaries", {})[srv.name] = srv.summary
    if opts.no_sweep:
        data["sweep_skip"] = "skipped: --no-sweep"
    else:
        data["sweep"], data["sweep_skip"] = sweep.run(opts, tmp, log)
    data["pool_bench"] = run_pool_bench(opts, opts.out)
    data["memory"] = memory.run(opts, tmp, log) if not opts.no_memory else []


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        servers.stop_all()
        sys.exit(130)
