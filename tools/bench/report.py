"""The bench report: the machine and tool versions, the markdown tables, and the CSV files.

Owns formatting only; knows nothing about how numbers were measured.
"""
import csv
import math
import os
import platform
import re
import shutil
import subprocess
import sys


CSV_FIELDS = ["scenario", "label", "server", "tool", "rounds", "rps_median", "rps_min",
              "rps_max", "ratio_vs_nginx", "cpu_us_per_req", "cpu_ratio_vs_nginx", "cpu_ratio_vs_floor", "syscalls_per_req",
              "ctxsw_per_req", "p50_us",
              "p99_us", "p999_us", "errors_total", "errors_detail", "skipped"]
SWEEP_FIELDS = ["work", "workers", "queue", "overflow", "connections", "tool", "ok_rps", "p50_us", "p99_us",
                "rejected", "client_errors", "error_text", "vm_hwm_kib"]


def _first_line(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (p.stdout + p.stderr).strip()
    return text.splitlines()[0] if text else None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_gib():
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        return f"{kib / 1048576:.1f} GiB"
    except (OSError, ValueError, IndexError):
        return "?"


def tool_versions(opts):
    probes = [("nginx", ["nginx", "-v"], r"nginx/(\S+)"), ("wrk", ["wrk", "-v"], r"wrk (\S+)"),
              ("ab", ["ab", "-V"], r"Version (\S+)"), ("h2load", ["h2load", "--version"],
                                                        r"nghttp2/(\S+)"),
              ("strace", ["strace", "-V"], r"version (\S+)")]
    if opts.bin and os.access(opts.bin, os.X_OK):
        probes.append(("okserve", [opts.bin, "--version"], r"(\S+)\s*$"))
    if opts.loadgen and os.access(opts.loadgen, os.X_OK):
        probes.append(("loadgen", [opts.loadgen, "--version"], r"(\S+)\s*$"))
    found = []
    for name, argv, pat in probes:
        exe = argv[0] if os.path.sep in argv[0] else (shutil.which(argv[0]) or
                                                      (f"/usr/sbin/{argv[0]}" if os.access(
                                                          f"/usr/sbin/{argv[0]}", os.X_OK)
                                                       else None))
        line = _first_line([exe] + argv[1:]) if exe else None
        m = re.search(pat, line or "")
        found.append(f"{name} {m.group(1) if m else (line or 'missing')}")
    found.append(f"python {platform.python_version()}")
    return ", ".join(found)


def machine_header(opts):
    cores = os.cpu_count() or 1
    pin = (f"server on CPU {opts.server_cpu}, load generator on CPU {opts.client_cpu}"
           if opts.server_cpu is not None else "not pinned (needs 2 CPUs and taskset)")
    lines = [
        f"# okserve vs nginx ({'quick' if opts.quick else 'full'} run)",
        "",
        f"- machine: {_cpu_model()}, {cores} cores, {_mem_gib()} RAM, "
        f"Linux {platform.release()} ({platform.machine()})",
        f"- tools: {tool_versions(opts)}",
        "- a system call: " + (f"{opts.syscall_ns:.0f} ns (`floor --syscall-cost`: getppid, median of "
                               f"7 rounds, on the server's CPU)" if getattr(opts, "syscall_ns", None)
                               else "not measured (no floor binary)"),
        f"- settings: {opts.workers} workers (okserve --workers, nginx worker_processes), "
        f"okserve --queue {opts.queue}, {opts.connections} connections, "
        f"{opts.rounds} round(s) x {opts.duration} s per cell; {pin}",
        "- command: python3 tools/bench/bench.py " + " ".join(sys.argv[1:]),
    ]
    return "\n".join(lines)


def _fmt(v, digits=0):
    if v is None:
        return ""
    return f"{v:.{digits}f}"


def _fmt_small(v):
    """Two decimals, or two significant digits below 0.1: uring's pipelined rows make a
    system call every few thousand answers, which two decimals would show as 0."""
    if v is None:
        return ""
    if v <= 0 or v >= 0.1:
        return f"{v:.2f}"
    return f"{v:.{1 - math.floor(math.log10(v))}f}"


def cell_row(cell, nginx_cell, floor_cell=None):
    sc = cell.scenario
    row = {"scenario": sc.key, "label": sc.label, "server": cell.server, "tool": sc.tool,
           "rounds": len(cell.rps), "skipped": sc.skip or cell.skip}
    if row["skipped"] or not cell.rps:
        row["skipped"] = row["skipped"] or "no run"
        return row
    med = cell.median(cell.rps)
    row.update(rps_median=_fmt(med), rps_min=_fmt(min(cell.rps)), rps_max=_fmt(max(cell.rps)),
               cpu_us_per_req=_fmt(cell.median(cell.cpu_us_per_req), 2),
               syscalls_per_req=_fmt_small(cell.syscalls_per_req),
               ctxsw_per_req=_fmt(cell.median(cell.ctxsw_per_req), 3),
               p50_us=_fmt(cell.latency_median("p50")), p99_us=_fmt(cell.latency_median("p99")),
               p999_us=_fmt(cell.latency_median("p999")),
               errors_total=cell.error_total(),
               errors_detail=" ".join(f"{k}={v}" for k, v in sorted(cell.errors.items()) if v))
    if nginx_cell is not None and nginx_cell.rps and nginx_cell.median(nginx_cell.rps):
        row["ratio_vs_nginx"] = _fmt(med / nginx_cell.median(nginx_cell.rps), 2)
        mine, theirs = cell.median(cell.cpu_us_per_req), nginx_cell.median(nginx_cell.cpu_us_per_req)
        if mine and theirs:
            row["cpu_ratio_vs_nginx"] = _fmt(mine / theirs, 2)
    if floor_cell is not None and floor_cell.cpu_us_per_req:
        mine, floor = cell.median(cell.cpu_us_per_req), floor_cell.median(floor_cell.cpu_us_per_req)
        if mine and floor:
            row["cpu_ratio_vs_floor"] = _fmt(mine / floor, 2)
    return row


def csv_rows(data):
    rows = []
    for sc in data.get("scenarios", []):
        for name in data.get("servers", []):
            cell = data["cells"][(sc.key, name)]
            rows.append(cell_row(cell, data["cells"].get((sc.key, "nginx")),
                                 data["cells"].get((sc.key, "floor"))))
        if not data.get("servers"):
            rows.append({"scenario": sc.key, "label": sc.label, "skipped": "no server ran"})
    return rows


def _errors_cell(row):
    total = row.get("errors_total", 0)
    return "0" if not total else f"**ERR {total}** ({row.get('errors_detail', '')})"


def main_table(rows):
    out = ["| scenario | server | tool | req/s (median) | min-max | vs nginx | CPU us/req "
           "| CPU vs nginx | syscalls/req | switches/req | p50 us | p99 us | p99.9 us | errors |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r.get("skipped"):
            out.append(f"| {r['label']} | {r.get('server', '')} | {r.get('tool', '')} | "
                       f"skipped: {r['skipped']} | | | | | | | | | | |")
            continue
        out.append(f"| {r['label']} | {r['server']} | {r['tool']} | {r['rps_median']} | "
                   f"{r['rps_min']}-{r['rps_max']} | {r.get('ratio_vs_nginx', '')} | "
                   f"{r['cpu_us_per_req']} | {r.get('cpu_ratio_vs_nginx', '')} | {r['syscalls_per_req']} | "
                   f"{r['ctxsw_per_req']} | {r['p50_us']} | "
                   f"{r['p99_us']} | {r['p999_us']} | {_errors_cell(r)} |")
    return "\n".join(out)


def sweep_table(rows):
    out = ["| work | workers | queue | overflow | connections | ok req/s | p50 us | p99 us | rejected (503) "
           "| other errors | peak RSS KiB |",
           "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        errs = "0" if not r["client_errors"] else f"**ERR {r['client_errors']}** ({r['error_text']})"
        out.append(f"| {r.get('work', 'none')} | {r['workers']} | {r['queue']} | {r['overflow']} | {r['connections']} | "
                   f"{r['ok_rps']:.0f} | {_fmt(r.get('p50_us'))} | {_fmt(r['p99_us'])} | {r['rejected']} | {errs} | "
                   f"{r['vm_hwm_kib']} |")
    return "\n".join(out)


def _notes(data):
    notes = list(data.get("skipped", []))
    for (key, name), cell in sorted(data.get("cells", {}).items()):
        for n in dict.fromkeys(cell.notes):
            notes.append(f"{key} / {name}: {n}")
    if data.get("strace"):
        notes.append(f"syscalls/req {data['strace']}")
    return notes


def admin_overhead(data):
    cells = data.get("cells", {})
    scrapes = data.get("scrapes") or {}
    out = ["| scenario | pool CPU µs/answer | pool+admin CPU µs/answer | ratio |", "|---|---:|---:|---:|"]
    rows = 0
    for sc in data.get("scenarios", []):
        a, b = cells.get((sc.key, "okserve-pool")), cells.get((sc.key, "okserve-pool+admin"))
        if not a or not b:
            continue
        ca, cb = a.median(a.cpu_us_per_req), b.median(b.cpu_us_per_req)
        if ca is None or cb is None:
            continue
        out.append(f"| {sc.key} | {ca:.2f} | {cb:.2f} | {cb / ca:.3f}x |")
        rows += 1
    if not rows:
        return "skipped: okserve-pool+admin did not run"
    out.append("")
    out.append(f"/metrics scrapes: {scrapes.get('ok', 0)} answered, {scrapes.get('failed', 0)} failed.")
    return "\n".join(out)


def floor_table(rows):
    """CPU per answer of every server as a multiple of the floor's (the minimal epoll loop),
    a row per scenario: how far each is from what the kernel's TCP path leaves."""
    names = list(dict.fromkeys(r["server"] for r in rows if r.get("server") and r["server"] != "floor"))
    by = {(r["scenario"], r.get("server")): r for r in rows}
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    if not any(r.get("cpu_ratio_vs_floor") for r in rows):
        return "skipped: the floor did not run"
    out = ["| scenario | floor CPU us/req | " + " | ".join(names) + " |",
           "|---|---:|" + "---:|" * len(names)]
    for key in scenarios:
        floor = by.get((key, "floor"), {})
        label = next((r["label"] for r in rows if r["scenario"] == key), key)
        cells = [by.get((key, n), {}).get("cpu_ratio_vs_floor", "") for n in names]
        out.append(f"| {label} | {floor.get('cpu_us_per_req', '')} | " + " | ".join(
            f"{c}x" if c else "" for c in cells) + " |")
    return "\n".join(out)


def markdown(data):
    rows = csv_rows(data)
    parts = [data["head"], "", "## Throughput, CPU and syscalls per response", "",
             main_table(rows), ""]
    parts += ["## Distance to the floor (CPU per answer as a multiple of the minimal epoll loop's)", "",
              floor_table(rows), ""]
    notes = _notes(data)
    if notes:
        parts += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    parts += ["## What watching costs (okserve-pool with --admin, /metrics scraped every second)", "",
              admin_overhead(data), ""]
    import memory
    parts += ["## Memory", "", memory.table(data.get("memory", [])), ""]
    parts += ["## Pool sizing sweep (okserve --mode pool)", ""]
    parts += [data["sweep_skip"] if data.get("sweep_skip") else sweep_table(data["sweep"]), ""]
    parts += ["## Pool micro-benchmark (pool_bench)", "", data.get("pool_bench") or "", ""]
    return "\n".join(parts)


def write_all(out_dir, data):
    with open(os.path.join(out_dir, "bench.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS, restval="")
        w.writeheader()
        for row in csv_rows(data):
            w.writerow(row)
    with open(os.path.join(out_dir, "sweep.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=SWEEP_FIELDS, extrasaction="ignore", restval="")
        w.writeheader()
        for row in data.get("sweep", []):
            w.writerow(row)
    with open(os.path.join(out_dir, "memory.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["server", "kind", "connections", "value", "unit", "base_mib", "note"],
                           extrasaction="ignore", restval="")
        w.writeheader()
        for row in data.get("memory", []):
            w.writerow(row)
    text = markdown(data)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(text + "\n")
    return text
