"""A real caching node on loopback in front of a scripted origin: RFC 9111 behaviour at
one tier, and the field cases from ../shared/cases (named by case id and RFC section)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from nodeharness import TRANSFER_CUT, Route, raw_exchange, raw_origin

from cdn_core.store import PurgeSelector

BOTH_WIRES = True  # every test over HTTP/1.1 and over HTTP/2 (h2c): one request path

CC60 = {"Cache-Control": "max-age=60", "ETag": '"v1"', "Content-Type": "text/plain"}


async def test_rfc9111_4_miss_then_hit_with_age_cache_status_and_via(
    origin, make_node, http, clock
):
    origin.routes["/a"] = Route(headers=CC60, body=b"A" * 100)
    edge = await make_node([origin.url])
    s1, h1, b1 = await http(edge, "/a")
    clock.advance(7)
    s2, h2, b2 = await http(edge, "/a")
    assert (s1, s2, b1, b2) == (200, 200, b"A" * 100, b"A" * 100)
    assert "fwd=uri-miss" in h1["Cache-Status"] and "stored" in h1["Cache-Status"]
    assert h2["Cache-Status"].startswith("edge1; hit")
    assert 7 <= int(h2["Age"]) <= 8 and h2["Via"] == "1.1 edge1"
    assert origin.hits["/a"] == 1


async def test_rfc9111_3_no_store_and_private_are_not_stored(origin, make_node, http):
    origin.routes["/ns"] = Route(headers={"Cache-Control": "no-store"})
    origin.routes["/p"] = Route(headers={"Cache-Control": "private, max-age=60"})
    edge = await make_node([origin.url])
    for path in ("/ns", "/p"):
        await http(edge, path)
        _, h, _ = await http(edge, path)
        assert "hit" not in h["Cache-Status"].split("; ")
        assert origin.hits[path] == 2


async def test_rfc9111_4_2_1_expires_and_s_maxage(origin, make_node, http, clock):
    origin.routes["/s"] = Route(headers={"Cache-Control": "max-age=1, s-maxage=100"})
    edge = await make_node([origin.url])
    await http(edge, "/s")
    clock.advance(50)
    _, h, _ = await http(edge, "/s")
    assert "hit" in h["Cache-Status"] and origin.hits["/s"] == 1


async def test_rfc9111_4_1_vary_accept_encoding_keeps_variants_apart(origin, make_node, http):
    origin.routes["/v"] = Route(headers={"Cache-Control": "max-age=60", "Vary": "Accept-Encoding"})
    edge = await make_node([origin.url])
    await http(edge, "/v", Accept_Encoding="gzip")
    _, h, _ = await http(edge, "/v", Accept_Encoding="br")
    assert "fwd=vary-miss" in h["Cache-Status"]
    _, h, _ = await http(edge, "/v", Accept_Encoding="gzip;q=1")
    assert "hit" in h["Cache-Status"] and origin.hits["/v"] == 2


async def test_rfc9110_13_conditional_requests_answered_from_cache(origin, make_node, http):
    headers = {**CC60, "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
    origin.routes["/c"] = Route(headers=headers, body=b"body")
    edge = await make_node([origin.url])
    await http(edge, "/c")
    s, h, b = await http(edge, "/c", If_None_Match='W/"v1"')
    assert (s, b) == (304, b"") and h["ETag"] == '"v1"' and "Age" in h
    s, _, _ = await http(edge, "/c", If_Modified_Since="Tue, 02 Jan 2024 00:00:00 GMT")
    assert s == 304 and origin.hits["/c"] == 1


async def test_h07_rfc9111_4_stored_head_never_answers_get(origin, make_node, http):
    origin.routes["/h"] = Route(headers=CC60, body=b"x" * 5000)
    edge = await make_node([origin.url])
    s, h, b = await http(edge, "/h", method="HEAD")
    assert s == 200 and b == b"" and h["Content-Length"] == "5000"
    s, h, b = await http(edge, "/h")
    assert s == 200 and len(b) == 5000
    s, h, b = await http(edge, "/h", method="HEAD")
    assert "hit" in h["Cache-Status"] and b == b"" and h["Content-Length"] == "5000"


async def test_h01_rfc9111_4_3_4_age_after_304_revalidation(origin, make_node, http, clock):
    origin.routes["/r"] = Route(
        headers={"Cache-Control": "max-age=60", "ETag": '"v1"'}, etag_304='"v1"'
    )
    edge = await make_node([origin.url])
    await http(edge, "/r")
    clock.advance(30)
    _, h, _ = await http(edge, "/r")
    assert 30 <= int(h["Age"]) <= 31
    clock.advance(40)  # t=70: stale
    _, h, _ = await http(edge, "/r")
    assert "fwd-status=304" in h["Cache-Status"] and origin.hits["/r"] == 2
    clock.advance(10)  # t=80
    _, h, _ = await http(edge, "/r")
    assert "hit" in h["Cache-Status"] and int(h["Age"]) <= 12 and origin.hits["/r"] == 2



async def test_rfc9111_4_3_4_a_set_cookie_in_a_304_goes_to_its_client_only(
    origin, make_node, http, clock
):
    origin.routes["/r"] = Route(headers={"Cache-Control": "max-age=60", "ETag": '"v1"'},
                                etag_304='"v1"', headers_304={"Set-Cookie": "sess=alice"})
    edge = await make_node([origin.url])
    await http(edge, "/r")
    clock.advance(70)
    _, h, _ = await http(edge, "/r")
    assert "fwd-status=304" in h["Cache-Status"] and h["Set-Cookie"] == "sess=alice"
    _, h, _ = await http(edge, "/r")  # refreshed in the store, without the cookie
    assert "hit" in h["Cache-Status"] and "Set-Cookie" not in h and origin.hits["/r"] == 2


@pytest.mark.parametrize("update", [{"Cache-Control": "private, max-age=60"},
                                    {"Cache-Control": "no-store"},
                                    {"Cache-Control": "max-age=60", "Vary": "Cookie"}])
async def test_rfc9111_4_3_4_a_304_that_makes_the_response_unshareable_is_not_stored(
    update, origin, make_node, http, clock
):
    # The merged response goes through the storage checks again (RFC 9111 3, 5.2.2.5,
    # 5.2.2.7; 4.1 for a new Vary), and the stored one, no longer to be shared, goes.
    origin.routes["/r"] = Route(headers={"Cache-Control": "max-age=60", "ETag": '"v1"'},
                                etag_304='"v1"', headers_304={**update, "X-User": "alice"})
    edge = await make_node([origin.url])
    await http(edge, "/r")
    clock.advance(70)
    _, h, _ = await http(edge, "/r", Cookie="session=alice-0123456789")
    assert "fwd-status=304" in h["Cache-Status"] and "stored" not in h["Cache-Status"]
    assert h["X-User"] == "alice"
    _, h, _ = await http(edge, "/r")
    assert "hit" not in h["Cache-Status"].split(", ")[-1] and "X-User" not in h
    assert origin.hits["/r"] == 3


async def test_h02_rfc5861_4_stale_if_error_but_not_must_revalidate(origin, make_node, http, clock):
    origin.routes["/o"] = Route(
        headers={"Cache-Control": "max-age=5, stale-if-error=600"}, body=b"B"
    )
    origin.routes["/m"] = Route(headers={"Cache-Control": "max-age=5, must-revalidate"}, body=b"M")
    edge = await make_node([origin.url])
    await http(edge, "/o")
    await http(edge, "/m")
    clock.advance(6)
    origin.routes["/o"] = Route(status=502, body=b"bad")
    origin.routes["/m"] = Route(status=502, body=b"bad")
    s, h, b = await http(edge, "/o")
    assert (s, b) == (200, b"B") and int(h["Age"]) > 5 and "stale-if-error" in h["Cache-Status"]
    s, _, _ = await http(edge, "/m")
    assert s == 502
    await origin.stop()  # connections now refused
    s, _, b = await http(edge, "/o")
    assert (s, b) == (200, b"B")


async def test_rfc9111_4_collapsed_cold_key_one_origin_fetch(origin, make_node, http):
    origin.routes["/cold"] = Route(headers=CC60, body=b"c" * 1000, delay=0.2)
    edge = await make_node([origin.url])
    results = await asyncio.gather(*(http(edge, "/cold") for _ in range(300)))
    assert all(s == 200 and b == b"c" * 1000 for s, _, b in results)
    assert origin.hits["/cold"] == 1


async def test_h03_collapse_leader_going_away_does_not_cancel_the_fill(origin, make_node, http):
    origin.routes["/slow"] = Route(headers=CC60, body=b"s", delay=0.5)
    edge = await make_node([origin.url])
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: www.example.test\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    results = await asyncio.gather(*(http(edge, "/slow") for _ in range(3)))
    assert [s for s, _, _ in results] == [200, 200, 200]
    assert origin.hits["/slow"] == 1


async def test_h06_rfc9111_3_4_truncated_body_never_stored(make_node, http):
    head = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\n"
    cut_length = head + b"Content-Length: 100000\r\n\r\n" + b"x" * 40000
    cut_chunked = head + b"Transfer-Encoding: chunked\r\n\r\n" + b"9c40\r\n" + b"x" * 40000
    for response in (cut_length, cut_chunked):
        server, url = await raw_origin(response)
        edge = await make_node([url])
        for _ in range(2):  # the second request must not be a hit on the 40 KB body
            # The body streams as it arrives, so the client sees a transfer cut short.
            with pytest.raises(TRANSFER_CUT):
                await http(edge, "/t")
        assert edge.store.lookup("http://www.example.test/t", {}) is None
        server.close()
        await server.wait_closed()


async def test_rfc9111_4_4_unsafe_method_invalidates(origin, make_node, http):
    origin.routes["/u"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    await http(edge, "/u")
    s, _, _ = await http(edge, "/u", method="POST")
    assert s == 200
    _, h, _ = await http(edge, "/u")
    assert "fwd=uri-miss" in h["Cache-Status"] and origin.hits["/u"] == 3


async def test_rfc9110_14_single_range_and_416_from_cache(origin, make_node, http):
    origin.routes["/g"] = Route(headers=CC60, body=bytes(range(256)) * 4)
    edge = await make_node([origin.url])
    s, h, b = await http(edge, "/g", Range="bytes=0-9")
    assert s == 206 and b == bytes(range(10)) and h["Content-Range"] == "bytes 0-9/1024"
    s, h, _ = await http(edge, "/g", Range="bytes=5000-")
    assert s == 416 and h["Content-Range"] == "bytes */1024"


async def test_rfc9111_5_2_1_7_only_if_cached_miss_is_504(origin, make_node, http):
    edge = await make_node([origin.url])
    s, _, _ = await http(edge, "/nothing", Cache_Control="only-if-cached")
    assert s == 504 and "/nothing" not in origin.hits


async def test_h08_malformed_and_oversized_requests_then_node_keeps_serving(
    origin, make_node, http
):
    origin.routes["/ok"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, b"GARBAGE\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    big = b"GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
    assert (await raw_exchange(edge.port, big)).startswith(b"HTTP/1.1 431")
    many = (
        b"GET /ok HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-H%d: v\r\n" % i for i in range(500))
        + b"\r\n"
    )
    assert (await raw_exchange(edge.port, many)).startswith(b"HTTP/1.1 431")
    nohost = await raw_exchange(edge.port, b"GET /ok HTTP/1.1\r\n\r\n")
    assert nohost.startswith(b"HTTP/1.1 400")
    s, _, _ = await http(edge, "/ok")
    assert s == 200


async def test_pipelined_requests_answered_in_order(origin, make_node):
    origin.routes["/1"] = Route(headers=CC60, body=b"one")
    origin.routes["/2"] = Route(headers=CC60, body=b"two")
    edge = await make_node([origin.url])
    req = (
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
    )
    out = await raw_exchange(edge.port, req)
    assert out.index(b"one") < out.index(b"two")


async def test_purge_endpoint_removes_url(origin, make_node, http):
    origin.routes["/index.html"] = Route(headers=CC60)
    edge = await make_node([origin.url], control={"token": "node-token"})
    await http(edge, "/index.html")
    status, _, body = await http(edge.admin_port, "/purge", method="POST")
    assert status == 401  # the node token is required (issue 8)
    status, _, body = await http(
        edge.admin_port, "/purge", method="POST", Authorization="Bearer node-token"
    )
    assert status == 400

    async with (
        aiohttp.ClientSession(headers={"Authorization": "Bearer node-token"}) as s,
        s.post(
            f"http://127.0.0.1:{edge.admin_port}/purge",
            json={"type": "url", "value": "http://www.example.test/index.html"},
        ) as r,
    ):
        assert r.status == 200 and (await r.json())["purged"] == 1
    _, h, _ = await http(edge, "/index.html")
    assert "fwd=uri-miss" in h["Cache-Status"]


async def test_edge_fails_over_to_next_mid_in_rendezvous_order(origin, make_node, http):
    origin.routes["/f"] = Route(headers=CC60)
    mid1 = await make_node([origin.url], tier="mid", name="mid1")
    mid2 = await make_node([origin.url], tier="mid", name="mid2")
    dead = "http://127.0.0.1:1"
    edge = await make_node([f"http://127.0.0.1:{mid1.port}", dead, f"http://127.0.0.1:{mid2.port}"])
    for i in range(10):
        s, h, _ = await http(edge, f"/f?{i}")
        assert s == 200
    assert sum(origin.hits.values()) == 10


async def test_serve_stale_mode_sends_no_request_per_client_to_a_dead_origin(origin, make_node,
                                                                            http, clock):
    origin.routes["/s"] = Route(headers={"Cache-Control": "max-age=5"}, body=b"S")
    mid = await make_node([origin.url], tier="mid", name="mid1", failover_window=3600,
                          upstream={"urls": [origin.url], "retry_after": 30, "timeout": 5})
    await http(mid, "/s")
    await origin.stop()
    clock.advance(10)
    results = [await http(mid, "/s") for _ in range(20)]
    assert all(s == 200 and b == b"S" for s, _, b in results)
    assert "upstream-down" in results[-1][1]["Cache-Status"]
    # one failed attempt marked the origin down; the other 19 never tried it
    assert mid.upstream.nodes[0].failures == 1



@pytest.mark.parametrize("route", [
    Route(headers=CC60, body=b"old", delay=0.3),  # purged before the head arrived
    Route(headers=CC60, chunks=[b"o", b"ld"], chunk_delay=0.3),  # ... during the body
])
async def test_a_fill_in_flight_during_a_purge_is_not_stored(route, origin, make_node, http):
    # The purge reports done: what was fetched before it may be what it removed.
    origin.routes["/f"] = route
    edge = await make_node([origin.url])
    fill = asyncio.ensure_future(http(edge, "/f"))
    await asyncio.sleep(0.1)
    edge.purge(PurgeSelector("url", "http://www.example.test/f"))
    status, _, body = await fill
    assert (status, body) == (200, b"old")
    _, h, _ = await http(edge, "/f")
    assert "hit" not in h["Cache-Status"] and origin.hits["/f"] == 2
