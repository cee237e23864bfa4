"""Hostile clients against a real node on loopback (issue 12): slow heads, idle
keep-alive, connection caps, request smuggling and splitting patterns, cache poisoning
through unkeyed headers. Every refusal leaves the node serving others."""

from __future__ import annotations

import asyncio

import pytest
from nodeharness import Route, raw_exchange

CC60 = {"Cache-Control": "max-age=60"}

SMUGGLING = {
    "content-length-and-transfer-encoding": b"POST /ok HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "duplicate-content-length": b"POST /ok HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
    b"Content-Length: 6\r\n\r\nhello!",
    "obsolete-line-folding": b"GET /ok HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
    "bare-lf": b"GET /ok HTTP/1.1\nHost: h\n\n",
    "bare-cr": b"GET /ok HTTP/1.1\rHost: h\r\n\r\n",
    "space-in-field-name": b"GET /ok HTTP/1.1\r\nHo st: h\r\n\r\n",
    "control-char-in-value": b"GET /ok HTTP/1.1\r\nHost: h\x01\r\n\r\n",
    "space-in-target": b"GET /o k HTTP/1.1\r\nHost: h\r\n\r\n",
    "unknown-transfer-coding": b"POST /ok HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked"
    b"\r\n\r\n0\r\n\r\n",
    "chunked-not-last": b"POST /ok HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "http-0.9": b"GET /ok\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(SMUGGLING))
async def test_rfc9112_smuggling_patterns_rejected_and_connection_closed(case, origin, make_node,
                                                                        http):
    origin.routes["/ok"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, SMUGGLING[case] + b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
    assert out.startswith((b"HTTP/1.1 400", b"HTTP/1.1 501", b"HTTP/1.1 505")), out[:60]
    assert out.count(b"HTTP/1.1 ") == 1  # nothing after the bad request was processed
    assert (await http(edge, "/ok"))[0] == 200


async def test_slow_request_head_gets_408_and_others_are_served(origin, make_node, http):
    origin.routes["/ok"] = Route(headers=CC60)
    edge = await make_node([origin.url], limits={"header_timeout": 0.2})
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(b"GET /ok HTTP/1.1\r\nHost: h\r\n")  # never finishes the head
    assert (await http(edge, "/ok"))[0] == 200
    data = await asyncio.wait_for(reader.read(1000), 3)
    assert data.startswith(b"HTTP/1.1 408")
    assert await asyncio.wait_for(reader.read(1000), 3) == b""
    writer.close()
    await writer.wait_closed()


async def test_idle_keep_alive_connection_closed(origin, make_node):
    origin.routes["/ok"] = Route(headers=CC60)
    edge = await make_node([origin.url], limits={"idle_timeout": 0.2})
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
    data = b""
    while not data.endswith(b"hello"):
        data += await asyncio.wait_for(reader.read(1000), 3)
    assert await asyncio.wait_for(reader.read(1000), 3) == b""  # closed after idling
    writer.close()
    await writer.wait_closed()


async def test_connections_per_client_capped(origin, make_node, http):
    origin.routes["/ok"] = Route(headers=CC60)
    edge = await make_node([origin.url], limits={"max_connections_per_client": 2})
    held = [await asyncio.open_connection("127.0.0.1", edge.port) for _ in range(2)]
    out = await raw_exchange(edge.port, b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 503")
    assert b"\r\nRetry-After: 1\r\n" in out.split(b"\r\n\r\n")[0] + b"\r\n"  # RFC 9110 10.2.3
    for _, w in held:
        w.close()
        await w.wait_closed()
    await asyncio.sleep(0.05)
    assert (await http(edge, "/ok"))[0] == 200
    assert edge.metrics.refused.labels("edge", "connections-per-client")._value.get() == 1


@pytest.mark.parametrize("header", ["X-Forwarded-Host", "X-Forwarded-Scheme", "X-Original-URL",
                                    "X-HTTP-Method-Override", "Forwarded"])
async def test_unkeyed_override_headers_never_reach_the_origin(header, origin, make_node, http):
    origin.routes["/p"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    await http(edge, "/p", **{header.replace("-", "_"): "evil.example"})
    seen = origin.seen_headers[-1]
    assert all("evil.example" not in v for v in seen.values())
    assert seen["X-Forwarded-For"] == "127.0.0.1" and seen["X-Forwarded-Proto"] == "http"
    assert seen["Forwarded"].startswith("for=127.0.0.1;")


async def test_response_reflecting_an_unkeyed_header_is_not_stored(origin, make_node, http):
    origin.routes["/r"] = Route(headers=CC60, body=b"<p>Hello ", echo_header="X-Campaign")
    edge = await make_node([origin.url])
    s, _, b = await http(edge, "/r", X_Campaign="<script>alert(1)</script>")
    assert s == 200 and b"<script>" in b
    s, h, b = await http(edge, "/r")
    assert b"<script>" not in b  # the poisoned copy was never stored
    s, h, b = await http(edge, "/r")
    assert "hit" in h["Cache-Status"]  # the clean one was


async def test_client_caused_errors_never_cached_for_everyone(origin, make_node, http):
    origin.routes["/e"] = Route(status=400, headers=CC60, body=b"bad request")
    edge = await make_node([origin.url])
    await http(edge, "/e")
    await http(edge, "/e")
    assert origin.hits["/e"] == 2


async def test_an_upstream_cookie_is_never_sent_with_another_clients_request(
    origin, make_node, http
):
    # One client's Set-Cookie kept by the node's upstream client and sent back with every
    # later request would hand that client's session to everyone. aiohttp's default jar
    # keeps cookies only for host names, so the upstream is named here, not an address.
    origin.routes["/login"] = Route(
        headers={"Cache-Control": "no-store", "Set-Cookie": "session=A-secret; Path=/"}
    )
    origin.routes["/page"] = Route(headers={"Cache-Control": "no-store"})
    edge = await make_node([f"http://localhost:{origin.port}"])
    s, h, _ = await http(edge, "/login")
    assert s == 200 and h["Set-Cookie"] == "session=A-secret; Path=/"
    await http(edge, "/page")
    await http(edge, "/page", Cookie="mine=b")
    assert "Cookie" not in origin.seen_headers[-2]
    assert origin.seen_headers[-1]["Cookie"] == "mine=b"


async def test_a_host_port_the_key_leaves_out_never_reaches_the_origin(origin, make_node):
    # The key drops the port; a Location built from "Host: h:1337" would go to everyone.
    origin.routes["/r"] = Route(status=301, headers=CC60, body=b"go to ", echo_header="Host")
    mid = await make_node([origin.url], tier="mid", name="mid1")
    edge = await make_node([f"http://127.0.0.1:{mid.port}"])

    async def get(host: bytes, port: int) -> bytes:
        return await raw_exchange(port, b"GET /r HTTP/1.1\r\nHost: " + host +
                                  b"\r\nConnection: close\r\n\r\n")

    out = await get(b"www.example.test:1337", edge.port)
    assert out.endswith(b"go to www.example.test")
    seen = origin.seen_headers[-1]
    assert seen["Host"] == "www.example.test" and seen["X-Forwarded-Host"] == "www.example.test"
    out = await get(b"www.example.test", edge.port)
    assert b"hit" in out and b"1337" not in out
    # A port of the node's own goes on as the client named it.
    origin.routes["/own"] = Route(headers=CC60, body=b"at ", echo_header="Host")
    own = b"www.example.test:" + str(edge.port).encode()
    assert (await raw_exchange(edge.port, b"GET /own HTTP/1.1\r\nHost: " + own +
                               b"\r\nConnection: close\r\n\r\n")).endswith(b"at " + own)
    # A mid tier reached directly by a client does the same as an edge.
    out = await raw_exchange(mid.port, b"GET /r?m HTTP/1.1\r\nHost: www.example.test:1337"
                             b"\r\nConnection: close\r\n\r\n")
    assert out.endswith(b"go to www.example.test")
