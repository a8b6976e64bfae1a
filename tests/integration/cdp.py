"""A small Chrome DevTools Protocol client on the standard library alone: start a headless
chromium on a port of its choosing, speak WebSocket (RFC 6455) to one of its pages, call
methods and collect events. Enough for tests/integration/test_live_page.py; every wait has
a deadline, and the browser is ended by its own process group (started by us) only.
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class ProtocolError(Exception):
    pass


class WebSocket:
    """A client WebSocket over a plain TCP socket. Our frames are masked (a client must
    mask, RFC 6455 5.3); the server's are not. Messages may come in several frames, and
    a screenshot is a large one: lengths of 126 (16-bit) and 127 (64-bit) are read."""

    def __init__(self, url, timeout=10.0):
        if not url.startswith("ws://"):
            raise ProtocolError(f"not a ws:// URL: {url}")
        hostport, _, path = url[len("ws://"):].partition("/")
        host, _, port = hostport.rpartition(":")
        self.sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        # No Origin header: chromium refuses DevTools connections from web origins it was
        # not told to allow, and a program that sends none is not a web page.
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise ProtocolError(f"handshake refused: {lines[0]}")
        fields = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        if fields.get("sec-websocket-accept") != want:
            raise ProtocolError("handshake: wrong Sec-WebSocket-Accept")

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("websocket: nothing before the deadline")
        self.sock.settimeout(left)
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("websocket: closed by the browser")
        self.buf += chunk

    def _take(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _send_frame(self, opcode, payload):
        head = bytes([0x80 | opcode])  # FIN: each message we send is one frame
        n = len(payload)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self._send_frame(0x1, text.encode())

    def recv_text(self, deadline):
        """The next whole text message, or raises TimeoutError at the deadline."""
        parts = []
        while True:
            b0, b1 = self._take(2, deadline)
            fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._take(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._take(8, deadline))[0]
            mask = self._take(4, deadline) if b1 & 0x80 else None
            payload = self._take(n, deadline)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping: answer, keep waiting
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                raise ConnectionError("websocket: the browser closed the connection")
            if opcode in (0x1, 0x2, 0x0):  # text, binary, continuation
                parts.append(payload)
                if fin:
                    return b"".join(parts).decode()
                continue
            raise ProtocolError(f"websocket: unknown opcode {opcode}")

    def close(self):
        try:
            self._send_frame(0x8, b"")
        except OSError:
            pass
        self.sock.close()


class Session:
    """One DevTools target (a page). call() sends a method and reads until its answer;
    events read meanwhile are kept in self.events, in order."""

    def __init__(self, ws_url, timeout=10.0):
        self.ws = WebSocket(ws_url, timeout)
        self.next_id = 0
        self.events = []

    def call(self, method, params=None, timeout=10.0):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send_text(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = json.loads(self.ws.recv_text(deadline))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise ProtocolError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def pump(self, seconds):
        """Reads events for a while (console messages that came while we were idle)."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                msg = json.loads(self.ws.recv_text(deadline))
                if "method" in msg:
                    self.events.append(msg)
        except (TimeoutError, socket.timeout):
            pass

    def evaluate(self, expression, timeout=10.0):
        """Runs JavaScript in the page and returns its value (awaiting a promise)."""
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True}, timeout)
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise ProtocolError(f"evaluate {expression[:80]!r}: {text}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what, poll=0.1):
        """Evaluates until the value is truthy; returns it, or raises naming `what`."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(poll)
        raise TimeoutError(f"waited {timeout:.0f}s for {what}; last value {value!r}")

    def close(self):
        self.ws.close()


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """A headless chromium with its own throw-away profile. DevTools listens on a port the
    browser picks (--remote-debugging-port=0) and names in DevToolsActivePort."""

    def __init__(self, binary, width=1280, height=900, start_timeout=30.0):
        self.profile = tempfile.mkdtemp(prefix="okserve-chromium-")
        self.log = tempfile.TemporaryFile()
        argv = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                # Keep the browser to the page under test: no update checks, sync or pings.
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--metrics-recording-only", "--no-pings",
                # A headless page is never visible: do not let it be throttled as hidden.
                "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                "--disable-backgrounding-occluded-windows", "--hide-scrollbars", "about:blank"]
        # A session of its own, so that stop() can end the browser and every helper process
        # it started (renderer, GPU, zygote) by this one process-group id.
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        try:
            self.port = self._wait_port(start_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_port(self, timeout):
        path = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited {self.proc.returncode}: {self.output()[-2000:]}")
            try:
                with open(path) as f:
                    first = f.readline().strip()
                if first.isdigit():
                    return int(first)
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"no DevToolsActivePort after {timeout:.0f}s: {self.output()[-2000:]}")

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def page(self, timeout=10.0):
        """A session on the browser's first page."""
        deadline = time.monotonic() + timeout
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=timeout) as r:
                targets = json.load(r)
            pages = [t for t in targets if t.get("type") == "page" and "webSocketDebuggerUrl" in t]
            if pages:
                return Session(pages[0]["webSocketDebuggerUrl"], timeout)
            if time.monotonic() > deadline:
                raise TimeoutError("chromium shows no page target")
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Helpers may outlive the leader by a moment; they are in our group, so end them too.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        shutil.rmtree(self.profile, ignore_errors=True)
