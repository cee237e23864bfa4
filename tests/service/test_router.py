"""The router as a service: real UDP/TCP sockets and admin HTTP on 127.0.0.1 (port 0),
fake edges as aiohttp apps serving /healthz and /status, queries with dnspython.

Edges answer as documentation addresses (192.0.2.x) while their admin apps listen on
127.0.0.1, so several fake edges fit on loopback. Probe intervals are 0.05 s.
"""

from __future__ import annotations

import asyncio
import socket
import struct
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

from cdn_core.errors import StartupError
from cdn_core.metrics import new_registry
from cdn_core.service import bound_port, start_site
from router import udpbatch
from router.app import RouterApp, create_app
from router.config import RouterConfig
from router.ecs import encode_ecs

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


# -- protocol ---------------------------------------------------------------------------
async def test_answers_over_udp_and_tcp(edges: list[FakeEdge]) -> None:
    async with running(edges=[edges[0].edge("192.0.2.1")]) as app:
        r = await query(app)
        assert addresses(r) == ["192.0.2.1"] and r.flags & dns.flags.AA
        assert addresses(await query(app, tcp=True)) == ["192.0.2.1"]
        nx = await query(app, "nope.example.test")
        assert nx.rcode() == dns.rcode.NXDOMAIN and nx.authority
        assert (await query(app, "www.example.com")).rcode() == dns.rcode.REFUSED


async def test_tcp_pipelined_queries_then_idle_close() -> None:
    async with running(tcp_idle_timeout=0.2) as app:
        reader, writer = await asyncio.open_connection("127.0.0.1", app.dns_port)
        ids = []
        for i in range(3):
            q = dns.message.make_query("nope.example.test", "A", id=100 + i).to_wire()
            ids.append(100 + i)
            writer.write(struct.pack("!H", len(q)) + q)
        await writer.drain()
        got = []
        for _ in ids:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            got.append(dns.message.from_wire(await reader.readexactly(size)).id)
        assert got == ids
        t0 = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 2.0) == b""  # closed when idle
        assert time.monotonic() - t0 < 1.5
        writer.close()
        await writer.wait_closed()


async def test_malformed_packets_do_not_disturb_good_queries(edges: list[FakeEdge]) -> None:
    async with running(edges=[edges[0].edge("192.0.2.1")]) as app:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            await loop.sock_sendto(sock, b"\x01\x02\x03", ("127.0.0.1", app.dns_port))
            junk = b"\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3f\xff"
            await loop.sock_sendto(sock, junk, ("127.0.0.1", app.dns_port))
            data = await asyncio.wait_for(loop.sock_recv(sock, 512), 1.0)
        finally:
            sock.close()
        assert data[:2] == b"\xbe\xef" and data[3] & 0x0F == dns.rcode.FORMERR
        assert addresses(await query(app)) == ["192.0.2.1"]
        # Over TCP a garbage message closes that connection only.
        reader, writer = await asyncio.open_connection("127.0.0.1", app.dns_port)
        writer.write(b"\x00\x02\xff\xff")
        assert await asyncio.wait_for(reader.read(), 1.0) == b""
        writer.close()
        await writer.wait_closed()
        assert addresses(await query(app, tcp=True)) == ["192.0.2.1"]


async def test_truncated_over_udp_then_complete_over_tcp(edges: list[FakeEdge]) -> None:
    base = f"http://127.0.0.1:{edges[0].port}"
    many = [{"name": f"e{i}", "address": f"192.0.2.{i + 1}", "admin_url": base} for i in range(40)]
    async with running(edges=many, answers={"per_query": 40}) as app:
        r = await query(app)
        assert r.flags & dns.flags.TC and not r.answer
        assert len(addresses(await query(app, tcp=True))) == 40
        assert len(addresses(await query(app, use_edns=0, payload=4096))) == 40


# -- health -------------------------------------------------------------------------------
async def test_killed_edge_leaves_answers_quickly(edges: list[FakeEdge]) -> None:
    cfg = [edges[0].edge("192.0.2.1"), edges[1].edge("192.0.2.2")]
    async with running(edges=cfg) as app:
        await eventually(lambda: all_probed(app))
        victim_addr = addresses(await query(app))[0]
        victim = edges[0] if victim_addr == "192.0.2.1" else edges[1]
        await victim.stop()
        answers: list[list[str]] = []

        async def gone() -> bool:
            answers.append(addresses(await query(app)))
            return victim_addr not in answers[-1]

        took = await eventually(gone)
        assert took < 1.0
        assert all(answers), "a query went unanswered"
        await eventually(lambda: _state(app, victim.name, "down"))
        status, metrics = await admin_get(app, "/metrics")
        assert (
            f'cdn_router_health_changes_total{{edge="{victim.name}",state="down"}} 1.0' in metrics
        )


async def _state(app: RouterApp, name: str, state: str) -> bool:
    return any(e["name"] == name and e["state"] == state for e in app.table.describe(0.0))


async def test_unhealthy_edge_returns_after_rise(edges: list[FakeEdge]) -> None:
    async with running(edges=[edges[0].edge("192.0.2.1"), edges[1].edge("192.0.2.2")]) as app:
        await eventually(lambda: all_probed(app))
        edges[0].status = 503
        await eventually(lambda: _state(app, "edge1", "down"))
        for _ in range(5):
            assert addresses(await query(app)) == ["192.0.2.2"]
        assert (await query(app)).answer[0].ttl == 1  # degraded TTL
        edges[0].status = 200
        took = await eventually(lambda: _state(app, "edge1", "up"))
        assert took < 1.0
        seen = set()
        for i in range(32):  # equally fast edges are spread over client prefixes
            ecs = dns.edns.GenericOption(8, encode_ecs(f"10.{i}.0.0/24"))
            seen.update(addresses(await query(app, use_edns=0, options=[ecs])))
        assert "192.0.2.1" in seen


async def test_overloaded_edge_is_skipped(edges: list[FakeEdge]) -> None:
    cfg = [edges[0].edge("192.0.2.1"), edges[1].edge("192.0.2.2")]
    async with running(edges=cfg, load={"high_in_flight": 10, "low_in_flight": 5}) as app:
        await eventually(lambda: all_probed(app))
        victim_addr = addresses(await query(app))[0]
        victim = edges[0] if victim_addr == "192.0.2.1" else edges[1]
        victim.in_flight = 50

        async def moved() -> bool:
            return addresses(await query(app)) != [victim_addr]

        await eventually(moved)
        victim.in_flight = 0
        await eventually(lambda: _not_overloaded(app, victim.name))


async def _not_overloaded(app: RouterApp, name: str) -> bool:
    return any(e["name"] == name and not e["load"]["overloaded"] for e in app.table.describe(0.0))


# -- latency ------------------------------------------------------------------------------
async def test_posted_client_rtt_steers_the_ecs_prefix(edges: list[FakeEdge]) -> None:
    cfg = [edges[0].edge("192.0.2.1"), edges[1].edge("192.0.2.2")]
    async with running(edges=cfg, answers={"rtt_tolerance_ms": 0.0}) as app:
        url = f"http://127.0.0.1:{app.admin_port}/v1/rtt"
        async with aiohttp.ClientSession() as s:
            for name, rtt in (("edge1", 80.0), ("edge2", 5.0)):
                body = {
                    "edge": name,
                    "samples": [
                        {"prefix": "203.0.113.0/24", "rtt_ms": rtt},
                        {"prefix": "bogus", "rtt_ms": 1},
                    ],
                }
                async with s.post(url, json=body) as r:
                    assert r.status == 200
                    assert await r.json() == {"accepted": 1, "rejected": 1}
            async with s.post(url, json={"edge": "nope", "samples": []}) as r:
                assert r.status == 404
            async with s.post(url, data=b"{") as r:
                assert r.status == 400
        ecs = dns.edns.GenericOption(8, encode_ecs("203.0.113.0/24"))
        r = await query(app, use_edns=0, options=[ecs])
        assert addresses(r) == ["192.0.2.2"]
        (opt,) = [o for o in r.options if o.otype == 8]
        assert opt.to_wire()[3] == 24  # scope prefix length


# -- admin, control plane, startup --------------------------------------------------------
async def test_status_and_metrics(edges: list[FakeEdge]) -> None:
    async with running(edges=[edges[0].edge("192.0.2.1")]) as app:
        await eventually(lambda: all_probed(app))
        await query(app)
        status, body = await admin_get(app, "/status")
        assert status == 200 and body["role"] == "router"
        (edge,) = body["edges"]
        assert edge["name"] == "edge1" and edge["state"] == "up" and edge["answers"] == 1
        assert edge["rtt_ms"] > 0 and edge["load"]["in_flight"] == 0
        assert (await admin_get(app, "/healthz"))[0] == 200
        _, metrics = await admin_get(app, "/metrics")
        assert 'cdn_dns_queries_total{rcode="NOERROR",transport="udp"} 1.0' in metrics
        assert 'cdn_dns_answers_total{edge="edge1",reason="probe_rtt"} 1.0' in metrics


async def test_control_plane_edges_are_merged_and_kept(edges: list[FakeEdge]) -> None:
    nodes = {
        "nodes": [
            {
                "name": "edge2",
                "tier": "edge",
                "host": "192.0.2.2",
                "port": 8080,
                "admin_url": f"http://127.0.0.1:{edges[1].port}",
            },
            {
                "name": "mid1",
                "tier": "mid",
                "host": "127.0.0.1",
                "port": 18201,
                "admin_url": "http://127.0.0.1:1",
            },
        ]
    }
    cp = web.Application()

    async def list_nodes(_: web.Request) -> web.Response:
        return web.json_response(nodes)

    cp.router.add_get("/v1/nodes", list_nodes)
    runner = await start_site(cp, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(runner)}"
        async with running(
            edges=[edges[0].edge("192.0.2.1")],
            control_plane={"url": url, "poll_interval": 0.05},
        ) as app:
            await eventually(lambda: _has(app, "edge2"))
            await runner.cleanup()  # the control plane goes away
            await asyncio.sleep(0.2)
            assert await _has(app, "edge2") and await _has(app, "edge1")
            assert app.control is not None and app.control.ok is False
    finally:
        await runner.cleanup()


async def _has(app: RouterApp, name: str) -> bool:
    return name in {s.name for s in app.table.specs()}


async def test_ports_in_use_are_startup_errors() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = udp.getsockname()[1]
    try:
        app = create_app(RouterConfig(port=port, admin_port=0), registry=new_registry())
        with pytest.raises(StartupError, match=f"127.0.0.1:{port}"):
            await app.start()
    finally:
        udp.close()
    async with running() as first:
        second = create_app(
            RouterConfig(port=0, admin_port=first.admin_port), registry=new_registry()
        )
        with pytest.raises(StartupError, match="address already in use"):
            await second.start()


async def test_a_burst_is_answered_in_batches_with_each_id(edges: list[FakeEdge]) -> None:
    """More queries than one recvmmsg batch, sent before any reply is read: every one is
    answered once, with its own ID; repeats (the reply memo) count in the metrics."""
    async with running(edges=[edges[0].edge("192.0.2.1")]) as app:
        await eventually(lambda: all_probed(app))
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        ids = list(range(1000, 1200))
        try:
            for i in ids:
                q = dns.message.make_query("www.example.test", "A", id=i).to_wire()
                sock.sendto(q, ("127.0.0.1", app.dns_port))
            got = []
            for _ in ids:
                data = await asyncio.wait_for(loop.sock_recv(sock, 512), 2.0)
                got.append(dns.message.from_wire(data))
        finally:
            sock.close()
        assert sorted(m.id for m in got) == ids
        assert {a for m in got for a in addresses(m)} == {"192.0.2.1"}
        assert app.metrics.query("udp", "NOERROR").value == len(ids)
        assert app.metrics.edge_total("edge1").value == len(ids)


async def test_oversized_udp_query_gets_formerr() -> None:
    async with running() as app:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        q = dns.message.make_query("www.example.test", "A", id=77).to_wire()
        try:
            await loop.sock_sendto(sock, q + b"\0" * 6000, ("127.0.0.1", app.dns_port))
            data = await asyncio.wait_for(loop.sock_recv(sock, 512), 1.0)
        finally:
            sock.close()
        assert data[:2] == (77).to_bytes(2, "big") and data[3] & 0x0F == dns.rcode.FORMERR


async def test_ipv6_clients(edges: list[FakeEdge]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    async with running(host="::1", edges=[edges[0].edge("192.0.2.1")]) as app:
        q = dns.message.make_query("www.example.test", "A")
        for _ in range(2):  # resolved, then from the reply memo
            r = await dns.asyncquery.udp(q, "::1", port=app.dns_port, timeout=1.0)
            assert addresses(r) == ["192.0.2.1"]


async def test_0x20_spellings_come_from_the_reply_memo_with_their_own_case(
    edges: list[FakeEdge], udp_path: str
) -> None:
    """Resolvers randomise the capitals of the name they ask (the 0x20 defence) and drop
    replies that do not echo them: every spelling is answered with its own, and on the
    batched path (which has the reply memo) after the first one from the memo, not the
    resolver."""
    async with running(edges=[edges[0].edge("192.0.2.1")]) as app:
        await eventually(lambda: all_probed(app))
        asked = []
        resolve = app.resolver.handle
        app.resolver.handle = lambda *a: asked.append(a[0]) or resolve(*a)  # type: ignore[method-assign]
        for name in ("www.example.test", "WwW.eXaMpLe.TeSt", "WWW.EXAMPLE.TEST", "wWw.example.TEST"):
            r = await query(app, name)
            assert r.question[0].name.to_text() == name + "."
            assert addresses(r) == ["192.0.2.1"]
        assert len(asked) == (1 if udp_path == "recvmmsg" else 4)
