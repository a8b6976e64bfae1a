"""The pool-sizing sweep: okserve workers x queue size x --overflow against offered load
(client connections), one fresh server per cell, giving throughput, p99 latency,
rejections (503s) and peak memory: the table that tells a user how to size the pool.

Owns the grid and one run per cell; knows nothing about nginx or report formats.
"""
import os
import re

import clients
import servers

QUICK = {"workers": [1, 2], "queue": [8, 64], "overflow": ["block", "reject"],
         "connections": [64], "seconds": 1, "work": ["none"]}
FULL = {"workers": [1, 2, 4], "queue": [8, 256], "overflow": ["block", "reject"],
        "connections": [16, 128, 512], "seconds": 2, "work": ["none"]}
# The same under simulated work (--work sleep:10ms, a database call): now the workers are
# the bottleneck, and the queue size and overflow policy decide latency and 503s.
WORK_QUICK = {"workers": [1, 4], "queue": [8], "overflow": ["block", "reject"],
              "connections": [32], "seconds": 2, "work": ["sleep:10ms"]}
WORK_FULL = {"workers": [1, 2, 4], "queue": [8, 64], "overflow": ["block", "reject"],
             "connections": [64], "seconds": 3, "work": ["sleep:10ms"]}


def grid(quick):
    for g in (QUICK, WORK_QUICK) if quick else (FULL, WORK_FULL):
        for work in g["work"]:
            for w in g["workers"]:
                for q in g["queue"]:
                    for ov in g["overflow"]:
                        for c in g["connections"]:
                            yield w, q, ov, c, g["seconds"], work


def _summary_count(summary, name):
    m = re.search(rf"\b{name}=(\d+)", summary or "")
    return int(m.group(1)) if m else None


def run_cell(opts, tmp, w, q, ov, c, seconds, work="none"):
    extra = ["--work", work] if work != "none" else []
    srv = servers.start_okserve(opts.bin, tmp, name=f"okserve-w{w}-q{q}-{ov}", mode="pool",
                                workers=w, queue=q, overflow=ov, cpu=opts.server_cpu, extra=extra)
    try:
        if opts.loadgen and os.access(opts.loadgen, os.X_OK):
            tool, argv = "loadgen", clients.loadgen_argv(opts.loadgen, srv.url, c, seconds=seconds)
        else:
            tool, argv = "wrk", clients.wrk_argv(srv.url, c, seconds)
        rc, out, err = clients.run(argv, opts.client_cpu, seconds + 60)
        res = clients.PARSERS[tool](rc, out, err)
        hwm = srv.vm_hwm_kib()
    finally:
        srv.stop()
    server_rejected = _summary_count(srv.summary, "rejected")
    client_rejected = clients.rejected(res)
    rejected = server_rejected if server_rejected is not None else client_rejected
    ok = max(0, res.responses - client_rejected)
    return {
        "work": work, "workers": w, "queue": q, "overflow": ov, "connections": c, "tool": tool,
        "ok_rps": ok / res.seconds if res.seconds else 0.0,
        "p50_us": res.latency_us.get("p50"),
        "p99_us": res.latency_us.get("p99"),
        "rejected": rejected,
        "client_errors": res.error_total - client_rejected,
        "error_text": res.error_text(),
        "vm_hwm_kib": hwm,
        "exit": srv.proc.returncode,
    }


def run(opts, tmp, log):
    """Returns (rows, skip reason or "")."""
    if not (opts.bin and os.access(opts.bin, os.X_OK)):
        return [], f"skipped: okserve not built ({opts.bin or 'no --bin'})"
    rows = []
    for w, q, ov, c, seconds, work in grid(opts.quick):
        try:
            row = run_cell(opts, tmp, w, q, ov, c, seconds, work)
        except RuntimeError as exc:
            return rows, f"skipped: {exc}"
        rows.append(row)
        log(f"sweep work={work} w={w} q={q} {ov:<6} c={c:<4} {row['ok_rps']:>9.0f} ok/s "
            f"rejected={row['rejected']} errors={row['client_errors']} "
            f"hwm={row['vm_hwm_kib']} KiB")
    return rows, ""
