"""The admin listener's live page (server/admin/page.html) in a real headless browser:
Debian's chromium, driven over the DevTools Protocol by tests/integration/cdp.py. The page
must load with no console error, draw every snapshot of /events, redraw its charts with
the load while a run goes, start runs from its panel (bounded by time and by count, keep-
alive or not, fixed rate or not), show their results, show the server's 400 message for
bad parameters, stop a run, and notice a lost admin listener and come back to a new one.

Also a tool: `python3 tests/integration/test_live_page.py --screenshot docs/live-page.png`
runs a load and saves the page as it looks under it (about 1280x900).
"""
import argparse
import base64
import json
import os
import re
import sys
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402
import support  # noqa: E402

# Waits are deadlines, not expectations: a sanitizer build starts and serves more slowly.
SLOW_FACTOR = 3 if support.SLOW else 1

# Sets the load form's fields as a user would (firing "change" so the page's own handlers
# run), then presses Start.
START_JS = """(function (f) {
  const $ = (id) => document.getElementById(id);
  const set = (id, v) => { const e = $(id); e.value = v; e.dispatchEvent(new Event('change', {bubbles: true})); };
  set('load-bound', f.bound);
  set('load-amount', f.amount);
  set('load-connections', f.connections);
  set('load-pace', f.rate !== 0 ? 'fixed' : 'max');
  if (f.rate !== 0) set('load-rate', f.rate);
  $('load-keepalive').checked = f.keepalive;
  $('load-start').click();
  return true;
})(%s)"""

# Where the chart's line of one colour reaches highest, read from the canvas pixels
# themselves (not from the page's own bookkeeping): top is the first pixel row holding that
# colour, -1 when none; image is the whole picture, to tell one drawing from another.
PROBE_JS = """(function (id, hex) {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  let top = -1, count = 0;
  for (let y = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++) {
      const i = (y * c.width + x) * 4;
      if (d[i + 3] > 200 && want.every((v, k) => Math.abs(d[i + k] - v) < 40)) {
        count++;
        if (top < 0) top = y;
      }
    }
  }
  return {top, count, height: c.height, width: c.width, cssWidth: c.clientWidth, image: c.toDataURL()};
})(%s, %s)"""

RESULT_JS = """Object.fromEntries([...document.querySelectorAll('#load-result td[data-k]')]
  .map((td) => [td.dataset.k, td.textContent]))"""

STATE_JS = "window.okserveLive ? okserveLive.state() : null"


def text_of(element_id):
    return f"document.getElementById({json.dumps(element_id)}).textContent"


def number(text):
    """'376,389' -> 376389.0; '75.3k' -> 75300.0; '108 µs' -> 108.0 (the unit is dropped)."""
    m = re.match(r"\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([kMG]?)", text)
    if not m:
        raise ValueError(f"not a number: {text!r}")
    return float(m.group(1).replace(",", "")) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def start_okserve(start, *extra, admin="127.0.0.1:0"):
    """Starts okserve (through `start`, so the test audits it) with an admin listener that
    snapshots every 250 ms; returns (server, admin URL)."""
    srv = start("--admin", admin, "--admin-interval", "250ms", *extra)
    return srv, srv.admin_url("/")  # support.Server read the admin line


class LivePage(support.ServerCase):
    browser = None
    session = None
    skip_reason = ""

    @classmethod
    def setUpClass(cls):
        binary = cdp.find_chromium()
        if binary is None:
            cls.skip_reason = "chromium not installed (tools/deps.sh test installs it)"
            return
        cls.browser = cdp.Browser(binary)
        try:
            cls.session = cls.browser.page()
            for domain in ("Runtime", "Log", "Page", "Network"):
                cls.session.call(f"{domain}.enable")
        except BaseException:
            cls.browser.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.session:
            cls.session.close()
        if cls.browser:
            cls.browser.stop()

    def setUp(self):
        if self.skip_reason:
            self.skipTest(self.skip_reason)
        self.expected_errors = []  # (source, url part, text part) of errors a test provokes
        self.srv, self.admin = start_okserve(self.start)
        self.open_page()
        # After the page is left, a stopped server could only make it log reconnection
        # failures: leave it first (cleanups run last in, first out).
        self.addCleanup(self.session.call, "Page.navigate", {"url": "about:blank"})

    def tearDown(self):
        errors = self.page_errors()
        self.assertEqual(errors, [], "the page logged errors")

    def open_page(self):
        self.session.events.clear()
        self.session.call("Page.navigate", {"url": self.admin})
        self.session.wait_for("window.okserveLive && okserveLive.state().snapshots >= 2",
                              10 * SLOW_FACTOR, "two snapshots drawn")

    def page_errors(self):
        """Console errors, uncaught exceptions and error log entries since the page opened,
        less the ones the test provoked on purpose."""
        self.session.pump(0.3)
        found = []
        for e in self.session.events:
            m, p = e["method"], e["params"]
            if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                found.append(("console", " ".join(str(a.get("value", a.get("description"))) for a in p["args"])))
            elif m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                found.append(("exception", d.get("exception", {}).get("description") or d.get("text")))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                entry = p["entry"]
                if not any(entry.get("source") == src and part in entry.get("url", "") and text in entry.get("text", "")
                           for src, part, text in self.expected_errors):
                    found.append(("log", f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}"))
        return found

    def state(self):
        return self.session.evaluate(STATE_JS)

    def probe(self, chart, series=0):
        color = self.state()["charts"][chart.split("-")[0]]["series"][series]["color"]
        return self.session.evaluate(PROBE_JS % (json.dumps(chart), json.dumps(color)))

    def start_run(self, **form):
        form.setdefault("keepalive", True)
        form.setdefault("rate", 0)
        self.session.evaluate(START_JS % json.dumps(form))

    def wait_state(self, states, timeout, what):
        cond = f"[{', '.join(json.dumps(s) for s in states)}].includes({text_of('load-state')})"
        try:
            self.session.wait_for(cond, timeout * SLOW_FACTOR, what)
        except TimeoutError as e:
            # Say where it stuck: the page, or the server (its load runner and its totals).
            raise AssertionError(f"{e}; the page shows {self.session.evaluate(text_of('load-state'))!r}; "
                                 f"the server says {self.server_view()}") from None
        return self.session.evaluate(text_of("load-state"))

    def server_view(self):
        try:
            with urllib.request.urlopen(self.srv.admin_url("/stats.json"), timeout=5) as r:
                st = json.loads(r.read())
            return json.dumps({"load": st.get("load"), "totals": st.get("totals"), "gauges": st.get("gauges")})
        except Exception as e:  # the diagnosis must not hide the failure
            return f"(no /stats.json: {e})"

    def result(self):
        return self.session.evaluate(RESULT_JS)

    # ---- the tests ----------------------------------------------------------------------

    def test_page_draws_every_snapshot_and_fetches_only_from_its_server(self):
        first = self.state()
        self.session.wait_for(f"okserveLive.state().snapshots >= {first['snapshots'] + 4}",
                              10 * SLOW_FACTOR, "four more snapshots")
        s = self.state()
        self.assertEqual(s["connection"], "live")
        for name, chart in s["charts"].items():
            # Each snapshot is drawn once on each chart (a resize may add draws, never lose one).
            self.assertGreaterEqual(chart["draws"], s["snapshots"], name)
            self.assertEqual(chart["points"], s["snapshots"], name)
        self.assertEqual(self.session.evaluate(text_of("mode")), "pool")
        self.assertEqual(self.session.evaluate(text_of("ready")), "ready")
        self.assertIn("snapshot every 250 ms", self.session.evaluate(text_of("config")))
        self.assertEqual(self.session.evaluate(text_of("load-state")), "idle")
        self.assertTrue(self.session.evaluate("!!document.querySelector('#totals dd[data-total=\"accepted\"]')"))
        # The idle server's requests/s line lies on the zero line at the bottom (or under the
        # accepted-connections line drawn over it): nothing in the upper part of the chart.
        idle = self.probe("rps-chart")
        self.assertTrue(idle["top"] < 0 or idle["top"] > 0.75 * idle["height"], idle["top"])
        # Every request the page made went to the admin listener: nothing from outside.
        urls = {e["params"]["request"]["url"] for e in self.session.events
                if e["method"] == "Network.requestWillBeSent"}
        self.assertIn(self.admin + "events", urls)
        self.assertEqual([u for u in urls if not u.startswith(self.admin)], [])

    def test_canvas_follows_device_pixel_ratio(self):
        self.session.call("Emulation.setDeviceMetricsOverride",
                          {"width": 1280, "height": 900, "deviceScaleFactor": 2, "mobile": False})
        try:
            got = self.session.wait_for(
                "(() => { const c = document.getElementById('latency-chart');"
                " return c.width === 2 * c.clientWidth && c.height === 2 * c.clientHeight && c.width; })()",
                10 * SLOW_FACTOR, "a canvas of twice its CSS size at devicePixelRatio 2")
            self.assertGreater(got, 0)
        finally:
            self.session.call("Emulation.clearDeviceMetricsOverride")

    def test_run_by_time_redraws_charts_and_shows_result(self):
        before = self.probe("rps-chart")
        draws_before = self.state()["charts"]["rps"]["draws"]
        self.start_run(bound="duration", amount="4s" if not support.SLOW else "6s", connections=4)
        # While the run goes: the stream's requests/s and latency become non-zero, ...
        during = self.session.wait_for(
            "(() => { const s = okserveLive.state();"
            " return s.load && s.load.state === 'running' && s.charts.rps.series[0].last > 0 &&"
            " s.charts.latency.series[0].last > 0 && s; })()",
            10 * SLOW_FACTOR, "non-zero requests/s and latency on the charts during the run")
        self.assertGreater(during["charts"]["rps"]["draws"], draws_before)
        # ... the charts keep redrawing with it, ...
        self.session.wait_for(
            f"okserveLive.state().charts.rps.draws >= {during['charts']['rps']['draws'] + 3}"
            f" && okserveLive.state().charts.latency.draws >= {during['charts']['latency']['draws'] + 3}",
            10 * SLOW_FACTOR, "three more draws of the charts")
        # ... and the picture shows it: the requests line now climbs into the upper part.
        loaded = self.probe("rps-chart")
        self.assertNotEqual(loaded["image"], before["image"])
        self.assertGreater(loaded["top"], -1, "no requests/s line on the chart")
        self.assertLess(loaded["top"], 0.5 * loaded["height"], "the requests/s line stays low under load")
        # loadgen's once-a-second progress reaches the panel while the run goes.
        progress = self.session.wait_for(
            f"{text_of('load-state')} === 'running' && {text_of('load-progress-text')}.includes('requests')"
            f" && {text_of('load-progress-text')}",
            10 * SLOW_FACTOR, "a progress line")
        self.assertIn("req/s", progress)
        self.assertTrue(self.session.evaluate("document.getElementById('load-start').disabled"))

        self.assertEqual(self.wait_state(["done", "stopped", "failed"], 30, "the end of the run"), "done")
        r = self.result()
        self.assertGreater(number(r["rps"]), 0)
        self.assertGreater(number(r["requests"]), 0)
        self.assertEqual(number(r["status-2xx"]), number(r["requests"]))
        for k in ("lat-p50", "lat-p90", "lat-p99", "lat-p999", "lat-max"):
            self.assertRegex(r[k], r"^[0-9.]+ (µs|ms|s)$", k)
        self.assertLessEqual(number(r["lat-p50"]) * unit(r["lat-p50"]), number(r["lat-p99"]) * unit(r["lat-p99"]))
        self.assertEqual(r["err-total"], "0")
        for kind in ("connect", "reset", "timeout", "bad_status", "bad_framing"):
            self.assertEqual(r[f"err-{kind}"], "0", kind)
        self.assertIn("4 connections, as fast as possible, keep-alive", self.session.evaluate(text_of("load-run")))
        self.assertEqual(self.session.evaluate("document.getElementById('load-progress-fill').style.width"), "100%")
        self.assertFalse(self.session.evaluate("document.getElementById('load-start').disabled"))
        self.assertTrue(self.session.evaluate("document.getElementById('load-stop').disabled"))

    def test_run_by_count_at_fixed_rate_without_keepalive(self):
        n = support.scaled(2000, 600)
        self.start_run(bound="requests", amount=str(n), connections=4, rate=1000, keepalive=False)
        self.assertEqual(self.wait_state(["done", "stopped", "failed"], 30, "the end of the run"), "done")
        r = self.result()
        self.assertEqual(number(r["requests"]), n)
        self.assertEqual(number(r["status-2xx"]), n)
        self.assertEqual(r["err-total"], "0")
        self.assertEqual(r["pacing"], "1000/s")
        self.assertIn(f"{n:,} requests, 4 connections, 1000 req/s, a connection per request",
                      self.session.evaluate(text_of("load-run")))
        # Without keep-alive each request came on its own connection: the server's totals,
        # as the page shows them, count at least that many accepted.
        self.session.wait_for(
            f"parseInt(document.querySelector('#totals dd[data-total=\"accepted\"]').textContent.replace(/,/g, '')) >= {n}",
            5 * SLOW_FACTOR, f"{n} connections accepted in the totals")

    def test_stop_ends_a_run_and_keeps_its_result(self):
        self.start_run(bound="duration", amount="30s", connections=2)
        self.session.wait_for(
            f"{text_of('load-state')} === 'running' && {text_of('load-progress-text')}.includes('requests')",
            10 * SLOW_FACTOR, "the run under way")
        self.assertFalse(self.session.evaluate("document.getElementById('load-stop').disabled"))
        self.session.evaluate("document.getElementById('load-stop').click(), true")
        self.assertEqual(self.wait_state(["done", "stopped", "failed"], 15, "the run to stop"), "stopped")
        r = self.result()
        self.assertGreater(number(r["requests"]), 0)
        self.assertGreater(number(r["rps"]), 0)
        self.assertLess(number(r["seconds"]), 25, "the run went on after Stop")
        self.assertEqual(r["err-total"], "0")
        self.assertTrue(self.session.evaluate(f"{text_of('load-progress-text')}.startsWith('stopped: ')"))
        self.assertTrue(self.session.evaluate("document.getElementById('load-stop').disabled"))
        self.assertFalse(self.session.evaluate("document.getElementById('load-start').disabled"))

    def test_bad_parameters_show_the_servers_message(self):
        # The browser logs each 400 answer as a failed resource load: expected here.
        self.expected_errors.append(("network", "/load/start", "400"))
        cases = [
            (dict(bound="duration", amount="5s", connections=0), "connections: 1..1000"),
            (dict(bound="duration", amount="forever", connections=2), "duration: 1ms..60s (like 5s or 500ms)"),
            (dict(bound="requests", amount="-3", connections=2), "requests: a count 0..10000000"),
            (dict(bound="duration", amount="2s", connections=2, rate=-1), "rate: requests/second"),
        ]
        for form, message in cases:
            with self.subTest(form=form):
                self.session.evaluate("document.getElementById('load-message').textContent = '', true")
                self.start_run(**form)
                shown = self.session.wait_for(
                    "(() => { const m = document.getElementById('load-message');"
                    " return m.classList.contains('error') && m.textContent; })()",
                    5 * SLOW_FACTOR, "an error message in the panel")
                self.assertTrue(shown.startswith(message), shown)
                self.assertEqual(self.session.evaluate(text_of("load-state")), "idle")
                self.assertFalse(self.session.evaluate("document.getElementById('load-start').disabled"))

    def test_connection_state_follows_the_admin_listener(self):
        port = self.admin.rsplit(":", 1)[1].rstrip("/")
        self.expected_errors.append(("network", "/events", ""))  # refused while it is away
        support.stop_checked(self, self.srv)
        self.session.wait_for(f"{text_of('conn-state')} !== 'live'", 10 * SLOW_FACTOR,
                              "the page to notice the admin listener is gone")
        try:
            self.srv, _ = start_okserve(self.start, admin=f"127.0.0.1:{port}")
        except RuntimeError as e:
            self.skipTest(f"the admin port was taken meanwhile: {e}")
        # A new server: its uptime starts again, so the page starts its charts again.
        back = self.session.wait_for(
            f"{text_of('conn-state')} === 'live' && okserveLive.state().restarts === 1 && okserveLive.state()",
            20 * SLOW_FACTOR, "the page back on the new server")
        self.assertGreaterEqual(back["charts"]["rps"]["points"], 1)
        self.assertLess(back["charts"]["rps"]["points"], back["snapshots"], "the old server's points are still drawn")


def unit(text):
    return {"µs": 1, "ms": 1e3, "s": 1e6}[text.split()[-1]]


# ---- The screenshot for docs/ ---------------------------------------------------------------

def screenshot(path, seconds):
    """Runs a load from the panel against a pool with simulated work (so the queue and the
    workers have something to show) and saves the page while it runs."""
    binary = cdp.find_chromium()
    if binary is None:
        sys.exit("chromium not installed (tools/deps.sh test installs it)")
    servers = []

    def start(*args):
        srv = support.Server(*args)
        servers.append(srv)
        return srv

    browser = cdp.Browser(binary, width=1280, height=900)
    try:
        _, admin = start_okserve(start, "--workers", "4", "--work", "sleep:exp:1ms")
        page = browser.page()
        page.call("Page.enable")
        page.call("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        page.call("Page.navigate", {"url": admin})
        page.wait_for("window.okserveLive && okserveLive.state().snapshots >= 8", 20, "the page")
        page.evaluate(START_JS % json.dumps(dict(bound="duration", amount=f"{seconds}s", connections=32,
                                                 rate=0, keepalive=True)))
        page.wait_for(f"{text_of('load-state')} === 'done'", seconds + 30, "the run to end")
        # A second, shorter run at a fixed rate, caught while it goes: charts show both.
        time.sleep(3)
        page.evaluate(START_JS % json.dumps(dict(bound="duration", amount="20s", connections=16,
                                                 rate=2000, keepalive=True)))
        page.wait_for(f"{text_of('load-progress-text')}.includes('requests')", 20, "progress")
        time.sleep(6)
        shot = page.call("Page.captureScreenshot", {"format": "png"}, 30)
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        page.close()
        print(f"wrote {path}")
    finally:
        browser.stop()
        for srv in servers:
            srv.stop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--screenshot", metavar="PNG", help="save the page under load to this file")
    ap.add_argument("--seconds", type=int, default=20, help="length of the first run for the screenshot")
    ap.add_argument("--build", default=None, help="build folder (default: build/release)")
    opts, rest = ap.parse_known_args()
    if opts.build:
        support.BUILD = os.path.abspath(opts.build)
        support.SERVER_BIN = os.path.join(support.BUILD, "okserve")
    if opts.screenshot:
        screenshot(opts.screenshot, opts.seconds)
    else:
        unittest.main(argv=[sys.argv[0]] + rest)
