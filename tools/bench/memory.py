"""The bench's memory rows: RSS per idle keep-alive connection (each mode and nginx, in the
same run), and RSS while slow readers hold an 8 MiB answer unread (each mode).

Owns measuring memory only. Loopback only; every wait is bounded.
"""
import os
import resource
import socket
import time

import servers

GET = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
SLOW_BODY = 8 << 20


def _raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def idle_bytes_per_connection(srv, n, deadline):
    """Opens n connections that each get one answer, then idle; returns bytes of server RSS
    per connection (RSS with them minus RSS before), or None with a reason."""
    base = srv.rss_kib()
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection((srv.host, srv.port), timeout=5)
            s.sendall(GET)
            socks.append(s)
        for s in socks:
            got = b""
            while b"\r\n\r\n" not in got:
                if time.monotonic() > deadline:
                    return None, "timed out waiting for answers"
                chunk = s.recv(4096)
                if not chunk:
                    return None, "a connection closed before its answer"
                got += chunk
        time.sleep(0.5)  # let the server settle (buffers released after the answer)
        return (srv.rss_kib() - base) * 1024 / n, ""
    except OSError as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        for s in socks:
            s.close()


def slow_readers_rss(srv, n):
    """RSS (KiB) before and while n clients ask for the big body and never read it."""
    base = srv.rss_kib()
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET6 if ":" in srv.host else socket.AF_INET)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(5)
            s.connect((srv.host, srv.port))
            s.sendall(GET)
            socks.append(s)
        time.sleep(1.5)
        return base, srv.rss_kib()
    finally:
        for s in socks:
            s.close()


def modes(opts):
    import bench  # the --mode list is read the same way as for the throughput rows
    return bench.okserve_modes(opts.bin) if opts.bin and os.access(opts.bin, os.X_OK) else []


def run(opts, tmp, log):
    """Returns rows: {server, kind, connections, value, unit, note}."""
    rows = []
    n = opts.idle_connections
    _raise_nofile(n + 1000)
    body = os.path.join(tmp, "slow-body.bin")
    with open(body, "wb") as f:
        f.write(os.urandom(SLOW_BODY))
    readers = 20 if opts.quick else 100
    for mode in modes(opts):
        name = f"okserve-{mode}"
        try:
            srv = servers.start_okserve(opts.bin, tmp, name=name, mode=mode, workers=opts.workers,
                                        queue=opts.queue, cpu=opts.server_cpu)
        except RuntimeError as e:
            rows.append({"server": name, "kind": "idle", "note": f"skipped: {e}"})
            continue
        # A thread per connection holds at most its cap of connections (512 by default),
        # and each costs a thread: measure it within the cap.
        k = min(n, 400) if mode == "thread" else n
        per, why = idle_bytes_per_connection(srv, k, time.monotonic() + 120)
        rows.append({"server": name, "kind": "idle", "connections": k, "value": per, "unit": "bytes/conn",
                     "note": why})
        log(f"memory {name:<16} {k} idle connections: {per:.0f} bytes each" if per else f"memory {name}: {why}")
        srv.stop()
        try:
            srv = servers.start_okserve(opts.bin, tmp, name=name + "-slow", mode=mode, workers=opts.workers,
                                        queue=opts.queue, cpu=opts.server_cpu,
                                        extra=("--body-file", body, "--write-timeout", "30s"))
        except RuntimeError as e:
            rows.append({"server": name, "kind": "slow", "note": f"skipped: {e}"})
            continue
        base, loaded = slow_readers_rss(srv, readers)
        rows.append({"server": name, "kind": "slow", "connections": readers,
                     "value": (loaded - base) / 1024, "unit": "MiB growth", "base_mib": base / 1024})
        log(f"memory {name:<16} {readers} slow readers of 8 MiB: RSS {base / 1024:.1f} -> {loaded / 1024:.1f} MiB")
        srv.stop()
    try:
        ng = servers.start_nginx(tmp, workers=opts.workers, cpu=opts.server_cpu)
        per, why = idle_bytes_per_connection(ng, n, time.monotonic() + 120)
        rows.append({"server": "nginx", "kind": "idle", "connections": n, "value": per, "unit": "bytes/conn",
                     "note": why})
        log(f"memory nginx            {n} idle connections: {per:.0f} bytes each" if per else f"memory nginx: {why}")
        ng.stop()
    except RuntimeError as e:
        rows.append({"server": "nginx", "kind": "idle", "note": f"skipped: {e}"})
    return rows


def table(rows):
    if not rows:
        return "skipped: --no-memory"
    out = ["| server | what | connections | result |", "|---|---|---:|---|"]
    for r in rows:
        if r.get("value") is None:
            out.append(f"| {r['server']} | {r['kind']} | | {r.get('note') or 'n/a'} |")
        elif r["kind"] == "idle":
            out.append(f"| {r['server']} | RSS per idle keep-alive connection | {r['connections']} | "
                       f"{r['value']:.0f} bytes |")
        else:
            out.append(f"| {r['server']} | RSS growth with slow readers of an 8 MiB body | {r['connections']} | "
                       f"{r['value']:.1f} MiB (from {r['base_mib']:.1f} MiB) |")
    return "\n".join(out)
