"""Shared bench for the router's service tests: fake edges (aiohttp apps serving /healthz
and /status), a running RouterApp on 127.0.0.1 port 0, dnspython queries, and the fixture
that runs every test over both UDP paths.

Edges answer as documentation addresses (192.0.2.x) while their admin apps listen on
127.0.0.1, so several fake edges fit on loopback. Probe intervals are 0.05 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
from aiohttp import web

from cdn_core.metrics import new_registry
from cdn_core.service import bound_port, start_site
from router import udpbatch
from router.app import RouterApp, create_app
from router.config import RouterConfig

FAST_HEALTH = {"interval": 0.05, "timeout": 0.3, "fall": 2, "rise": 2}


class FakeEdge:
    """An edge's admin app: /healthz answers ``status``; /status reports load."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.in_flight = 0
        self.cpu_seconds = 1.0
        self.port = 0
        self.runner: web.AppRunner | None = None

    async def start(self) -> FakeEdge:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/status", self._status)
        self.runner = await start_site(app, "127.0.0.1", self.port)
        self.port = bound_port(self.runner)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, status=self.status)

    async def _status(self, _: web.Request) -> web.Response:
        return web.json_response(
            {
                "name": self.name,
                "role": "edge",
                "in_flight": self.in_flight,
                "connections": 1,
                "cpu_seconds": self.cpu_seconds,
                "cache": {},
            }
        )

    def edge(self, address: str) -> dict[str, Any]:
        return {"name": self.name, "address": address, "admin_url": f"http://127.0.0.1:{self.port}"}


@pytest.fixture(autouse=True, params=["recvmmsg", "datagram-endpoint"])
def udp_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs over both UDP paths: batched (router.udpbatch) and asyncio's."""
    if request.param == "recvmmsg" and not udpbatch.available():
        pytest.skip("recvmmsg/sendmmsg not available here")
    if request.param == "datagram-endpoint":
        monkeypatch.setattr(udpbatch, "available", lambda: False)
    return str(request.param)


@pytest.fixture
async def edges() -> AsyncIterator[list[FakeEdge]]:
    fakes = [await FakeEdge(f"edge{i}").start() for i in (1, 2)]
    yield fakes
    for f in fakes:
        await f.stop()


@asynccontextmanager
async def running(**cfg: Any) -> AsyncIterator[RouterApp]:
    cfg.setdefault("health", FAST_HEALTH)
    config = RouterConfig.model_validate({"host": "127.0.0.1", "port": 0, "admin_port": 0, **cfg})
    app = create_app(config, registry=new_registry())
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def eventually(pred: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> float:
    """Poll ``pred`` every 20 ms; returns the seconds it took to hold."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if await pred():
            return time.monotonic() - t0
        await asyncio.sleep(0.02)
    raise AssertionError("condition did not hold in time")


async def query(
    app: RouterApp,
    name: str = "www.example.test",
    rdtype: str = "A",
    *,
    tcp: bool = False,
    **kw: Any,
) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype, **kw)
    fn = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    return await fn(q, "127.0.0.1", port=app.dns_port, timeout=1.0)


def addresses(msg: dns.message.Message) -> list[str]:
    return [rr.address for rrset in msg.answer for rr in rrset]


async def all_probed(app: RouterApp) -> bool:
    return all(e["probed"] and e["rtt_ms"] is not None for e in app.table.describe(0.0))


async def admin_get(app: RouterApp, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{app.admin_port}{path}") as r:
        body = await r.json() if r.content_type == "application/json" else await r.text()
        return r.status, body


