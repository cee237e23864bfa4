"""Chain test: the control plane's status page in headless Chromium against the real stack
(issue 11). Chromium (Debian's ``chromium`` package) is driven over the Chrome DevTools
protocol with aiohttp's websocket client: the page is loaded, given the stack's reader
key, must list every node, must show a purge made with ``cdnctl purge`` with its
completion time, and must raise no script or Content-Security-Policy error. A screenshot
is saved as ``test-artifacts/status-page.png``."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from stackproc import ROOT, SITE

pytestmark = [pytest.mark.chain, pytest.mark.timeout(240)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NODES = {"origin", "mid1", "mid2", "edge1", "edge2", "edge3", "router"}
SCREENSHOT = ROOT / "test-artifacts" / "status-page.png"

if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        "chromium is not installed (apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )


class DevTools:
    """A minimal Chrome DevTools protocol client for one page target."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        await self.ws.send_json({"id": msg_id, "method": method, "params": params})
        while True:
            msg = await self.ws.receive(timeout=30)
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"devtools connection ended: {msg.type}")
            data = json.loads(msg.data)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
            if "method" in data:
                self.events.append(data)

    async def eval(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.eval(expression)
            except AssertionError:  # the page is still loading
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"page never satisfied: {expression}")
            await asyncio.sleep(0.2)

    def errors(self) -> list[str]:
        out = []
        for e in self.events:
            if e["method"] == "Runtime.exceptionThrown":
                out.append(json.dumps(e["params"]["exceptionDetails"])[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error":
                out.append(json.dumps(e["params"]["args"])[:500])
            elif e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                out.append(e["params"]["entry"]["text"][:500])
        return out


@contextlib.asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium with a fresh profile; always killed on the way out."""
    log = open(profile.parent / "chromium.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-dev-shm-usage", "--hide-scrollbars",
            f"--user-data-dir={profile}", "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1", "--window-size=1440,900", "about:blank",
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("chromium did not start: " + (profile.parent / "chromium.log")
                                     .read_text(errors="replace")[-2000:])
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = DevTools(ws)
                for domain in ("Page", "Runtime", "Log"):
                    await cdp.send(f"{domain}.enable")
                yield cdp
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()


def traffic(edges: list[str], paths: list[str]) -> None:
    for edge in edges:
        for path in paths:
            c = http.client.HTTPConnection(edge, 8080, timeout=10)
            c.request("GET", path, headers={"Host": f"{SITE}:8080"})
            c.getresponse().read()
            c.close()


def steady_traffic(edges: list[str], stop: threading.Event) -> None:
    while not stop.wait(0.25):
        traffic(edges, ["/index.html"])


async def test_status_page_in_chromium(stack, tmp_path: Path) -> None:
    reader_key = (stack.state / "reader.key").read_text().strip()
    await asyncio.to_thread(traffic, stack.edges, ["/index.html", "/index.html", "/nope.html"])
    async with chromium(tmp_path / "profile") as cdp:
        await cdp.send("Emulation.setDeviceMetricsOverride", width=1440, height=900,
                       deviceScaleFactor=1, mobile=False)
        await cdp.send("Page.navigate", url=stack.api + "/")
        await cdp.wait_for("!document.getElementById('login').hidden")
        # The operator pastes a key once; it is kept in this tab's sessionStorage.
        await cdp.eval("document.getElementById('key').focus()")
        await cdp.send("Input.insertText", text=reader_key)
        await cdp.eval("document.getElementById('login-submit').click()")
        await cdp.wait_for("!document.getElementById('dash').hidden")

        names = await cdp.wait_for(
            "(() => { const n = [...document.querySelectorAll('#nodes tbody tr')]"
            ".map(tr => tr.dataset.node); return n.length >= 7 ? n : null })()"
        )
        assert set(names) == NODES
        healthy = await cdp.eval(
            "[...document.querySelectorAll('#nodes tbody tr')].map(tr => tr.cells[3].innerText)"
        )
        assert healthy == ["healthy"] * len(NODES)
        assert await cdp.eval("sessionStorage.getItem('cdn.status.apiKey')") == reader_key

        # A purge made with cdnctl shows up, with its completion time.
        r = await asyncio.to_thread(stack.cdnctl, "purge", f"http://{SITE}/index.html")
        assert r.returncode == 0, r.stdout + r.stderr
        purge_id = re.search(r"^purge (\S+) \(seq", r.stdout, re.M).group(1)
        row = await cdp.wait_for(
            f"(() => {{ const tr = document.querySelector('#purges tr[data-purge=\"{purge_id}\"]');"
            " return tr ? [...tr.cells].map(c => c.innerText) : null })()"
        )
        assert "url http://www.example.test/index.html" in row[1]
        assert row[2] == "complete" and row[4] != "–" and row[6] == "5/5"

        # Steady traffic until both charts draw lines (two samples with lookups or more).
        stop = threading.Event()
        feeder = threading.Thread(target=steady_traffic, args=(stack.edges, stop))
        feeder.start()
        try:
            lines = ("[...document.querySelectorAll('#chart-{} path.series')]"
                     ".some(p => p.getAttribute('d').includes('L'))")
            await cdp.wait_for(f"{lines.format('rps')} && {lines.format('hit')}", timeout=30)
        finally:
            stop.set()
            await asyncio.to_thread(feeder.join)
        assert await cdp.eval("document.getElementById('c-failover').innerText") == "off"
        service = await cdp.wait_for(
            "(() => { const tr = document.querySelector('#services tr[data-service=\"example\"]');"
            " return tr ? [...tr.cells].map(c => c.innerText) : null })()"
        )
        assert service[1] == "www.example.test" and service[2] == "v1"
        assert service[4].startswith("5/5 nodes")
        assert await cdp.eval("document.querySelectorAll('#origins tbody tr').length") == 1

        height = await cdp.eval("document.documentElement.scrollHeight")
        await cdp.send("Emulation.setDeviceMetricsOverride", width=1440, height=int(height),
                       deviceScaleFactor=1, mobile=False)
        shot = await cdp.send("Page.captureScreenshot", format="png")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
        assert SCREENSHOT.stat().st_size > 10_000
        assert cdp.errors() == []
