"""Real HTTP clients against the server, each required to see zero errors: curl, ab,
wrk and h2load. A missing tool is a skip with the reason (tools/deps.sh installs them).
"""
import os
import re
import tempfile

from support import ServerCase, every_mode, have, run, scaled


def field(text, label):
    """The integer after `label:` in a client's report, or None when the line is absent."""
    m = re.search(rf"^{re.escape(label)}:\s+(\d+)", text, re.M)
    return int(m.group(1)) if m else None


@every_mode
class Curl(ServerCase):
    def setUp(self):
        if not have("curl"):
            self.skipTest("curl is not installed (tools/deps.sh test installs it)")

    def curl(self, *args):
        r = run(["curl", "-sS", "--max-time", "20", *args], timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r

    def test_http11_and_reuse(self):
        srv = self.start()
        r = self.curl("-v", "-w", "%{http_code} %{http_version}\\n", srv.url("/a"), srv.url("/b"))
        self.assertEqual(r.stdout, "OK\n200 1.1\nOK\n200 1.1\n")
        self.assertIn("Re-using existing connection", r.stderr)

    def test_http10(self):
        srv = self.start()
        r = self.curl("--http1.0", "-w", "%{http_code} %{http_version}\\n", srv.url())
        self.assertRegex(r.stdout, r"^OK\n200 1\.[01]\n$")

    def test_head_and_post(self):
        srv = self.start()
        r = self.curl("-I", srv.url())
        self.assertTrue(r.stdout.startswith("HTTP/1.1 200 OK"), r.stdout)
        self.assertIn("Content-Length: 3", r.stdout)
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(os.urandom(300 * 1024))
        self.addCleanup(os.unlink, f.name)
        r = self.curl("--data-binary", "@" + f.name, "-w", "%{http_code}", srv.url())
        self.assertEqual(r.stdout, "OK\n200")


@every_mode
class ApacheBench(ServerCase):
    def setUp(self):
        if not have("ab"):
            self.skipTest("ab is not installed (apache2-utils; tools/deps.sh test installs it)")

    def ab(self, srv, n, *args):
        r = run(["ab", "-q", "-r", "-s", "20", "-n", str(n), *args, srv.url()], timeout=180)
        report = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, report[-3000:])
        self.assertEqual(field(report, "Complete requests"), n, report[-3000:])
        self.assertEqual(field(report, "Failed requests"), 0, report[-3000:])
        self.assertIn(field(report, "Non-2xx responses"), (None, 0), report[-3000:])
        return report

    def test_ab_new_connection_each(self):
        n = scaled(20000, 2000)
        srv = self.start()
        self.ab(srv, n, "-c", "64")

    def test_ab_keep_alive(self):
        n = scaled(20000, 2000)
        srv = self.start()
        report = self.ab(srv, n, "-k", "-c", "64")
        self.assertEqual(field(report, "Keep-Alive requests"), n, report[-3000:])

    def test_ab_post_300k(self):
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(os.urandom(300 * 1024))
        self.addCleanup(os.unlink, f.name)
        srv = self.start()
        self.ab(srv, scaled(200, 50), "-c", "8", "-p", f.name, "-T", "application/octet-stream")


@every_mode
class Wrk(ServerCase):
    def setUp(self):
        if not have("wrk"):
            self.skipTest("wrk is not installed (tools/deps.sh test installs it)")

    def wrk(self, *extra):
        srv = self.start()
        r = run(["wrk", "-t2", "-c64", "-d" + scaled("2s", "1s"), "--timeout", "10s", *extra,
                 srv.url()], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Socket errors", r.stdout, r.stdout)
        self.assertNotIn("Non-2xx", r.stdout, r.stdout)
        m = re.search(r"(\d+) requests in", r.stdout)
        self.assertTrue(m and int(m.group(1)) > 0, r.stdout)

    def test_wrk_keep_alive(self):
        self.wrk()

    def test_wrk_connection_close(self):
        self.wrk("-H", "Connection: close")


@every_mode
class H2load(ServerCase):
    def test_h2load_h1_pipelined(self):
        if not have("h2load"):
            self.skipTest("h2load is not installed (nghttp2-client; tools/deps.sh installs it)")
        n = scaled(20000, 2000)
        srv = self.start()
        r = run(["h2load", "--h1", "-m16", "-n", str(n), "-c", "16", "-t", "1",
                 srv.url()], timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(f"{n} succeeded, 0 failed, 0 errored, 0 timeout", r.stdout, r.stdout)
        self.assertRegex(r.stdout, rf"status codes: {n} 2xx")


@every_mode
class Hey(ServerCase):
    def hey(self, *flags):
        if not have("hey"):
            self.skipTest("hey is not installed (package hey; tools/deps.sh installs it)")
        n = scaled(20000, 2000)
        srv = self.start()
        r = run(["hey", "-n", str(n), "-c", "50", *flags, srv.url()], timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # hey lists every status it saw, and an "Error distribution" only when it had errors.
        statuses = r.stdout.split("Status code distribution:", 1)[-1].split("Error distribution", 1)[0]
        self.assertEqual(re.findall(r"\[(\d{3})\]\s+(\d+) responses", statuses), [("200", str(n))],
                         r.stdout)
        self.assertNotIn("Error distribution", r.stdout, r.stdout)

    def test_hey_keep_alive(self):
        self.hey()

    def test_hey_connection_per_request(self):
        self.hey("-disable-keepalive")
