"""``python -m edge --workers 2``: two worker processes share the data port with
SO_REUSEPORT, each with its own admin port, store and garbage collector schedule;
SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[2]


def _free_ports(count: int) -> int:
    """A port p such that p .. p+count-1 are free on 127.0.0.1 (best effort)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + count > 65535:
            continue
        ok = True
        for p in range(base, base + count):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free ports")


async def _wait_ok(session: aiohttp.ClientSession, url: str, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            async with session.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if loop.time() > deadline:
            raise AssertionError(f"{url} not up")
        await asyncio.sleep(0.1)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


async def test_two_workers_share_the_port_and_stop_together() -> None:
    origin_hits = 0

    async def obj(request: web.Request) -> web.Response:
        nonlocal origin_hits
        origin_hits += 1
        return web.Response(body=b"x" * 100, headers={"Cache-Control": "max-age=60"})

    app = web.Application()
    app.router.add_get("/obj", obj)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin_port = runner.addresses[0][1]
    port = _free_ports(1)
    admin = _free_ports(2)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "edge",
        "--port",
        str(port),
        "--admin-port",
        str(admin),
        "--upstream",
        f"http://127.0.0.1:{origin_port}",
        "--workers",
        "2",
        "--log-level",
        "WARNING",
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        async with aiohttp.ClientSession() as session:
            for a in (admin, admin + 1):
                await _wait_ok(session, f"http://127.0.0.1:{a}/healthz")
            workers = _children(proc.pid)
            assert len(workers) == 2
            for _ in range(40):  # fresh connections: the kernel spreads them
                conn = aiohttp.TCPConnector(force_close=True)
                async with (
                    aiohttp.ClientSession(connector=conn) as s,
                    s.get(f"http://127.0.0.1:{port}/obj") as r,
                ):
                    assert r.status == 200
                    assert await r.read() == b"x" * 100
            served = []
            for a in (admin, admin + 1):
                async with session.get(f"http://127.0.0.1:{a}/status") as r:
                    served.append((await r.json())["requests"])
                # Each worker runs its own collector schedule (cdn_core.gc_schedule): the
                # collection it made at startup, before freezing, is counted.
                async with session.get(f"http://127.0.0.1:{a}/metrics") as r:
                    assert 'cdn_gc_pause_seconds_count{generation="2",tier="edge"} 1.0' in (
                        await r.text())
        assert sum(served) == 40
        assert all(n > 0 for n in served), served  # both workers took connections
        assert 1 <= origin_hits <= 2  # at most one fill per worker store
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        # The supervisor reaped both workers before exiting.
        assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await runner.cleanup()
