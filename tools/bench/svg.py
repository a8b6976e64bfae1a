"""The bench chart, written as plain SVG by hand: requests/s and CPU per response of every
server as ratios to nginx on a log axis (so one pipelined bar cannot flatten the rest), the
fixed-rate latency percentiles, and the pool sweep as a heat map. Opens in any browser; needs nothing beyond the standard library.

Owns drawing only; reads the same rows the CSV gets and knows nothing about measuring.
"""
import math
from xml.sax.saxutils import escape

import report

WIDTH = 1000
LEFT, RIGHT = 80, 30
# Eight colours for eight servers (five modes, pool with --admin, the floor, nginx): none repeats.
PALETTE = ["#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#718096", "#b7791f", "#1a202c"]
ERR_COLOR = "#c53030"
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


def nice_max(v):
    """The smallest 1/2/2.5/5 x 10^k at or above v, for a round top of the axis."""
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for step in (1, 2, 2.5, 5, 10):
        if step * exp >= v:
            return step * exp
    return 10 * exp


def si(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.2f}" if v < 10 else f"{v:.0f}"


def text(x, y, s, size=12, anchor="middle", weight="normal", color="#1a202c", rotate=None):
    rot = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{color}" {FONT}{rot}>{escape(str(s))}</text>')


def rect(x, y, w, h, fill, stroke="none", extra=""):
    return (f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
            f'fill="{fill}" stroke="{stroke}"{extra}/>')


def line(x1, y1, x2, y2, color="#a0aec0", width=1, dash=None):
    d = f' stroke-dasharray="{dash}"' if dash else ""
    return (f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            f'stroke="{color}" stroke-width="{width}"{d}/>')


def _num(row, key):
    try:
        return float(row.get(key, ""))
    except (TypeError, ValueError):
        return None


def ratio_panel(top, title, groups, servers, key, height=260, span=32.0):
    """Bars of a ratio to nginx, on a log2 axis from 1/span to span, starting at 1 (nginx):
    up is more, down is less. Returns (svg parts, bottom)."""
    parts = [text(LEFT, top + 16, title, 15, "start", "bold")]
    y0, y1 = top + 34, top + 34 + height
    mid = (y0 + y1) / 2
    half = (y1 - y0) / 2
    top_exp = math.log2(span)

    def y_of(r):
        e = max(-top_exp, min(top_exp, math.log2(r)))
        return mid - half * e / top_exp

    for e in range(-int(top_exp), int(top_exp) + 1):
        y = y_of(2.0 ** e)
        parts.append(line(LEFT, y, WIDTH - RIGHT, y, "#4a5568" if e == 0 else "#e2e8f0"))
        label = f"{2 ** e:g}x" if e >= 0 else f"1/{2 ** -e:g}x"
        parts.append(text(LEFT - 6, y + 4, label, 11, "end", color="#4a5568"))
    plot_w = WIDTH - LEFT - RIGHT
    gw = plot_w / max(1, len(groups))
    bw = min(40, gw * 0.8 / max(1, len(servers)))
    for gi, (label, rows) in enumerate(groups):
        gx = LEFT + gi * gw + (gw - bw * len(servers)) / 2
        for si_, name in enumerate(servers):
            row = rows.get(name)
            x = gx + si_ * bw
            v = 1.0 if name == "nginx" and row and not row.get("skipped") else _num(row, key) if row else None
            if v is None or v <= 0:
                parts.append(text(x + bw / 2 + 3, mid - 4, "n/a", 10, "start", color="#718096", rotate=-90))
                continue
            yv = y_of(v)
            parts.append(rect(x + 2, min(yv, mid), bw - 4, max(abs(mid - yv), 1.5), PALETTE[si_ % len(PALETTE)]))
            # Upright labels would overlap with seven bars to a group: they stand on end,
            # reading up from the top of a bar above 1x and down from the end of one below.
            if v >= 1:
                parts.append(text(x + bw / 2 + 3, yv - 4, f"{v:.2f}", 9, "start", rotate=-90))
            else:
                parts.append(text(x + bw / 2 + 3, yv + 4, f"{v:.2f}", 9, "end", rotate=-90))
            if int(_num(row, "errors_total") or 0):
                parts.append(text(x + bw / 2, y0 + 10, "ERR", 11, weight="bold", color=ERR_COLOR))
        for li, chunk in enumerate(_wrap(label, max(8, int(gw / 7)))):
            parts.append(text(LEFT + gi * gw + gw / 2, y1 + 16 + 13 * li, chunk, 11))
    return parts, y1 + 48


def latency_panel(top, rows, servers, height=180):
    """Fixed-rate latency from the intended send time: p50, p99 and p99.9 per server, on a
    log axis in microseconds."""
    parts = [text(LEFT, top + 16, "Fixed-rate latency, µs from the intended send time (log axis; lower is better)",
                  15, "start", "bold")]
    fixed = {r["server"]: r for r in rows if r.get("scenario") == "fixed_rate" and r.get("server")}
    vals = [_num(fixed.get(n), k) for n in servers for k in ("p50_us", "p99_us", "p999_us") if fixed.get(n)]
    vals = [v for v in vals if v and v > 0]
    if not vals:
        return parts + [text(LEFT, top + 40, "no fixed-rate run", 12, "start")], top + 60
    y0, y1 = top + 34, top + 34 + height
    lo_e, hi_e = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
    hi_e = max(hi_e, lo_e + 1)

    def y_of(v):
        return y1 - (y1 - y0) * (math.log10(v) - lo_e) / (hi_e - lo_e)

    for e in range(lo_e, hi_e + 1):
        parts.append(line(LEFT, y_of(10 ** e), WIDTH - RIGHT, y_of(10 ** e), "#e2e8f0"))
        parts.append(text(LEFT - 6, y_of(10 ** e) + 4, si(10 ** e), 11, "end", color="#4a5568"))
    gw = (WIDTH - LEFT - RIGHT) / 3
    bw = min(40, gw * 0.8 / max(1, len(servers)))
    for gi, (key, label) in enumerate((("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9"))):
        gx = LEFT + gi * gw + (gw - bw * len(servers)) / 2
        for si_, name in enumerate(servers):
            v = _num(fixed.get(name), key) if fixed.get(name) else None
            x = gx + si_ * bw
            if not v or v <= 0:
                continue
            parts.append(rect(x + 2, y_of(v), bw - 4, y1 - y_of(v), PALETTE[si_ % len(PALETTE)]))
            parts.append(text(x + bw / 2, y_of(v) - 4, si(v), 9))
        parts.append(text(LEFT + gi * gw + gw / 2, y1 + 16, label, 11))
    return parts, y1 + 34


def _wrap(s, width):
    words, lines, cur = s.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    return lines + ([cur] if cur else [])


def legend(top, servers):
    """One swatch per server, wrapping onto as many lines as it needs; returns (parts, bottom)."""
    parts, x, y = [], LEFT, top
    for i, name in enumerate(servers):
        w = 30 + 7 * len(name)
        if x + w > WIDTH - RIGHT:
            x, y = LEFT, y + 20
        parts.append(rect(x, y, 14, 14, PALETTE[i % len(PALETTE)]))
        parts.append(text(x + 20, y + 12, name, 12, "start"))
        x += w
    y += 20
    parts.append(text(LEFT, y + 12, "ERR at the top of a panel, over a bar: the tools counted errors there", 11, "start",
                      color="#4a5568"))
    return parts, y + 20


def heat_color(frac):
    # From near-white to the first palette blue, so darker means more throughput.
    lo, hi = (247, 250, 252), (43, 108, 176)
    r, g, b = (round(a + (c - a) * frac) for a, c in zip(lo, hi))
    return f"#{r:02x}{g:02x}{b:02x}"


def heat_map(top, rows, work="none"):
    title = ("Pool sizing sweep (okserve): ok req/s, p99, rejected 503s, peak RSS per cell"
             if work == "none" else f"The same under --work {work}: ok req/s, p99, 503s, peak RSS")
    parts = [text(LEFT, top + 16, title, 15, "start", "bold")]
    if not rows:
        return parts + [text(LEFT, top + 40, "no sweep ran", 12, "start")], top + 60
    keys = sorted({(r["workers"], r["queue"]) for r in rows})
    cols = sorted({(r["overflow"], r["connections"]) for r in rows})
    cell = {(r["workers"], r["queue"], r["overflow"], r["connections"]): r for r in rows}
    best = max(r["ok_rps"] for r in rows) or 1.0
    x0, y0, lab_w = LEFT + 60, top + 54, 120
    cw = min(150, (WIDTH - RIGHT - x0 - lab_w) / max(1, len(cols)))
    ch = 62
    for ci, (ov, c) in enumerate(cols):
        parts.append(text(x0 + lab_w + ci * cw + cw / 2, y0 - 8, f"{ov}, {c} conns", 11))
    for ri, (w, q) in enumerate(keys):
        y = y0 + ri * ch
        parts.append(text(x0 + lab_w - 8, y + ch / 2 + 4, f"workers {w}, queue {q}", 11, "end"))
        for ci, (ov, c) in enumerate(cols):
            r = cell.get((w, q, ov, c))
            parts += _heat_cell(r, x0 + lab_w + ci * cw, y, cw, ch, best)
    bottom = y0 + len(keys) * ch + 16
    parts.append(text(x0 + lab_w, bottom + 4, "darker = more successful requests/s "
                      f"(darkest {si(best)}/s); red frame = errors other than 503", 11,
                      "start", color="#4a5568"))
    return parts, bottom + 20


def _heat_cell(r, x, y, w, h, best):
    if r is None:
        return [rect(x, y, w - 2, h - 2, "#edf2f7")]
    frac = r["ok_rps"] / best
    stroke = ERR_COLOR if r["client_errors"] else "#ffffff"
    ink = "#ffffff" if frac > 0.55 else "#1a202c"
    p99 = f"p99 {si(r['p99_us'] / 1000)}ms" if r.get("p99_us") else "p99 n/a"
    return [rect(x, y, w - 2, h - 2, heat_color(frac), stroke, ' stroke-width="2"'),
            text(x + w / 2, y + 15, f"{si(r['ok_rps'])}/s", 12, weight="bold", color=ink),
            text(x + w / 2, y + 29, p99, 10, color=ink),
            text(x + w / 2, y + 42, f"503: {r['rejected']}", 10, color=ink),
            text(x + w / 2, y + 55, f"RSS {r['vm_hwm_kib'] / 1024:.1f} MiB", 10, color=ink)]


def render(data):
    rows = report.csv_rows(data)
    servers = list(data.get("servers", []))
    groups = []
    for sc in data.get("scenarios", []):
        by_server = {r["server"]: r for r in rows if r["scenario"] == sc.key and r.get("server")}
        groups.append((sc.label, by_server))
    head = data.get("head", "").splitlines()
    sub = next((h[2:] for h in head if h.startswith("- machine:")), "")
    parts = [text(LEFT, 28, "okserve's modes vs nginx", 20, "start", "bold"),
             text(LEFT, 48, sub, 11, "start", color="#4a5568")]
    p, bottom = legend(62, servers)
    parts += p
    p, bottom = ratio_panel(bottom, "Requests per second as a ratio to nginx (median of rounds; up is more)",
                            groups, servers, "ratio_vs_nginx")
    parts += p
    p, bottom = ratio_panel(bottom + 10, "Server CPU per response as a ratio to nginx (down is less: better)",
                            groups, servers, "cpu_ratio_vs_nginx")
    parts += p
    p, bottom = latency_panel(bottom + 10, rows, servers)
    parts += p
    sweep_rows = data.get("sweep", [])
    # One map per kind of work: a cell without work and one under --work sleep:10ms differ
    # by a factor of a thousand and answer different questions.
    kinds = list(dict.fromkeys(r.get("work", "none") for r in sweep_rows)) or ["none"]
    for kind in kinds:
        p, bottom = heat_map(bottom + 10, [r for r in sweep_rows if r.get("work", "none") == kind], kind)
        parts += p
    height = bottom + 10
    return "\n".join(
        [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0f}" '
         f'viewBox="0 0 {WIDTH} {height:.0f}">',
         rect(0, 0, WIDTH, height, "#ffffff")] + parts + ["</svg>", ""])


def write_chart(path, data):
    with open(path, "w") as f:
        f.write(render(data))
