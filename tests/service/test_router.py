"""The router as a service: answers over UDP and TCP, health and load of edges, latency
steering, admin API, control-plane edges, startup errors (bench: routerharness)."""

# ruff: noqa: F811 (tests take the imported fixtures edges and udp_path as arguments)
from __future__ import annotations

import asyncio
import socket
import struct
import time

import aiohttp
import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
from aiohttp import web
from routerharness import (
    FAST_HEALTH,
    FakeEdge,
    addresses,
    admin_get,
    all_probed,
    edges,  # noqa: F401 (a fixture)
    eventually,
    query,
    running,
    udp_path,  # noqa: F401 (the autouse fixture: every test over both UDP paths)
)

from cdn_core.errors import StartupError
from cdn_core.metrics import new_registry
from cdn_core.service import bound_port, start_site
from router.app import RouterApp, create_app
from router.config import RouterConfig
from router.ecs import encode_ecs


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


async def test_health_not_yet_checked_never_gets_the_normal_ttl(edges: list[FakeEdge]) -> None:
    """A router that starts while an edge is already dead: every answer before the first
    round of probes has finished uses the degraded TTL, and once the round is over the
    dead edge is no longer answered."""
    await edges[1].stop()  # dead before the router starts
    cfg = [edges[0].edge("192.0.2.1"), edges[1].edge("192.0.2.2")]
    slow = {"interval": 0.3, "timeout": 0.3, "fall": 2, "rise": 2, "first_round": 1.0}
    async with running(edges=cfg, health=slow, answers={"ttl": 30, "degraded_ttl": 2}) as app:
        seen: list[tuple[list[str], int]] = []
        for _ in range(200):  # bounded: the first round ends within first_round seconds
            r = await query(app)
            seen.append((addresses(r), r.answer[0].ttl))
            if all_probed_sync(app):
                break
            await asyncio.sleep(0.01)
        assert seen and all(ttl == 2 for _, ttl in seen), seen
        # Probed: the dead edge is suspect (one failure), the live one preferred.
        r = await query(app)
        assert addresses(r) == ["192.0.2.1"] and r.answer[0].ttl == 2


def all_probed_sync(app: RouterApp) -> bool:
    return all(e["probed"] for e in app.table.describe(0.0))


async def _not_recovering(app: RouterApp, name: str) -> bool:
    return any(e["name"] == name and not e["recovering"] for e in app.table.describe(0.0))


async def _state(app: RouterApp, name: str, state: str) -> bool:
    return any(e["name"] == name and e["state"] == state for e in app.table.describe(0.0))


async def test_unhealthy_edge_returns_after_rise(edges: list[FakeEdge]) -> None:
    health = {**FAST_HEALTH, "slow_start": 0.3}
    cfg = [edges[0].edge("192.0.2.1"), edges[1].edge("192.0.2.2")]
    async with running(edges=cfg, health=health) as app:
        await eventually(lambda: all_probed(app))
        edges[0].status = 503
        await eventually(lambda: _state(app, "edge1", "down"))
        for _ in range(5):
            assert addresses(await query(app)) == ["192.0.2.2"]
        assert (await query(app)).answer[0].ttl == 1  # degraded TTL
        edges[0].status = 200
        took = await eventually(lambda: _state(app, "edge1", "up"))
        assert took < 1.0
        await eventually(lambda: _not_recovering(app, "edge1"))  # its slow start
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


