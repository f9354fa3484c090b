"""A tiny client of headless Chromium's DevTools protocol over ``--remote-debugging-pipe``
(commands on the browser's fd 3, replies on its fd 4, JSON messages ended by NUL): no socket,
no port, no dependency. Used by the report's browser test.

``open_page(html_path, screenshot)`` loads a file from disk with the network cut off and returns
what the page did: console errors, exceptions, every request it made, the charts it drew.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SKIP_REASON_FILE = Path(__file__).resolve().parents[1] / ".venv" / "browser-unavailable.txt"
"""Where ``make browser`` writes why it could not install Chromium (read for the skip reason)."""
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--remote-debugging-pipe",
)

CHART_PROBE = """
JSON.stringify(Array.from(document.querySelectorAll('figure.chart')).map(function (f) {
  var el = f.querySelector('svg, canvas');
  if (!el) { return {kind: 'none', width: 0, height: 0, marks: 0}; }
  var box = el.getBoundingClientRect();
  var marks = 0;
  if (el.tagName.toLowerCase() === 'svg') {
    el.querySelectorAll('path, polyline, polygon, line, rect, use').forEach(function (p) {
      var d = p.getAttribute('d');
      if (p.tagName.toLowerCase() !== 'path' || (d && d.length > 8)) { marks += 1; }
    });
    var g = el.querySelector('g');
    var bb = g ? g.getBBox() : {width: 0, height: 0};
    return {kind: 'svg', width: box.width, height: box.height, marks: marks, drawn: bb.width * bb.height};
  }
  var data = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;
  for (var i = 3; i < data.length; i += 4) { if (data[i] !== 0) { marks += 1; } }
  return {kind: 'canvas', width: box.width, height: box.height, marks: marks, drawn: marks};
}))
"""


def find_browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def skip_reason() -> str:
    """Why there is no browser: ``make browser``'s note when it failed, else a generic one."""
    if SKIP_REASON_FILE.is_file():
        note = SKIP_REASON_FILE.read_text(encoding="utf-8").strip()
        if note:
            return f"Chromium not available: {note}"
    return "Chromium not available (`make browser` installs the Debian package chromium)"


@dataclass
class PageRun:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)
    screenshot: Path | None = None
    title: str = ""


class _Pipe:
    """The browser process and its two protocol pipes."""

    def __init__(self, browser: str, profile: Path) -> None:
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        # move the child's ends above 10 so that placing them on fds 3 and 4 cannot clobber each other
        hi_cmd_r = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
        hi_res_w = fcntl.fcntl(res_w, fcntl.F_DUPFD, 10)
        os.close(cmd_r)
        os.close(res_w)

        def child_fds() -> None:
            os.dup2(hi_cmd_r, 3)
            os.dup2(hi_res_w, 4)

        self.proc = subprocess.Popen(
            [browser, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(3, 4),
            preexec_fn=child_fds,  # noqa: PLW1509 - runs before this client starts threads
        )
        os.close(hi_cmd_r)
        os.close(hi_res_w)
        self.out = os.fdopen(cmd_w, "wb", buffering=0)
        self.inp = os.fdopen(res_r, "rb", buffering=0)
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # type: ignore[union-attr]

    def _read(self) -> None:
        buffer = b""
        while True:
            chunk = self.inp.read(1 << 16)
            if not chunk:
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                self.messages.put(json.loads(raw))

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = 60.0
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        deadline = time.monotonic() + timeout
        while True:
            event = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except Exception:  # noqa: BLE001,S110 - the browser may be gone already
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()


def open_page(
    html: Path, screenshot: Path | None = None, width: int = 1280, full_page: bool = True, height: int = 900
) -> PageRun:
    """Load ``html`` from disk in headless Chromium; return its console errors, requests and charts."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError(skip_reason())
    with tempfile.TemporaryDirectory(prefix="kc-chromium-") as profile:
        pipe = _Pipe(browser, Path(profile))
        try:
            target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page", "Network"):
                pipe.send(f"{domain}.enable", session=session)
            pipe.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            pipe.send("Page.navigate", {"url": html.resolve().as_uri()}, session=session)
            pipe.wait_for("Page.loadEventFired")
            run = PageRun()
            probe = pipe.send("Runtime.evaluate", {"expression": CHART_PROBE, "returnByValue": True}, session=session)
            run.charts = json.loads(probe["result"]["value"])
            run.title = pipe.send(
                "Runtime.evaluate", {"expression": "document.title", "returnByValue": True}, session=session
            )["result"]["value"]
            if screenshot is not None:
                params: dict[str, Any] = {"format": "png"}
                if full_page:
                    size = pipe.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
                    params.update(
                        captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1},
                    )
                data = pipe.send("Page.captureScreenshot", params, session=session)["data"]
                screenshot.write_bytes(base64.b64decode(data))
                run.screenshot = screenshot
        finally:
            pipe.close()
    for event in pipe.events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            run.console_errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            run.console_errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            run.console_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            run.requests.append(params["request"]["url"])
    return run
