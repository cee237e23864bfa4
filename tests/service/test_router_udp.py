"""The router's UDP path as a service: recvmmsg batches, the reply memo (repeats and 0x20
spellings), oversized queries, IPv6 clients (bench: routerharness)."""

# ruff: noqa: F811 (tests take the imported fixtures edges and udp_path as arguments)
from __future__ import annotations

import asyncio
import socket

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
from routerharness import (
    FakeEdge,
    addresses,
    all_probed,
    edges,  # noqa: F401 (a fixture)
    eventually,
    query,
    running,
    udp_path,  # noqa: F401 (the autouse fixture: every test over both UDP paths)
)


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
