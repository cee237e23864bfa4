"""Streaming fills, ranges on misses, targeted cache control and sharing rules at one tier
(RFC 9110 14, RFC 9111 3 and 4, RFC 9213, RFC 9211), through a real node on loopback."""

from __future__ import annotations

import asyncio

from nodeharness import Route


async def test_h04_rfc9110_14_range_on_a_miss_behaves_like_range_on_a_hit(origin, make_node, http):
    body = bytes(range(256)) * 390 + b"x" * 160  # 100,000 bytes
    chunks = [body[i : i + 10_000] for i in range(0, len(body), 10_000)]
    origin.routes["/v"] = Route(headers={"Cache-Control": "max-age=300", "ETag": '"e"'},
                                chunks=chunks, chunk_delay=0.02)
    edge = await make_node([origin.url])
    s1, h1, b1 = await http(edge, "/v", Range="bytes=0-499")
    assert s1 == 206 and b1 == body[:500]
    assert h1["Content-Range"] in ("bytes 0-499/100000", "bytes 0-499/*")
    s2, h2, b2 = await http(edge, "/v", Range="bytes=0-")
    assert s2 == 206 and h2["Content-Range"] == "bytes 0-99999/100000" and b2 == body
    assert origin.hits["/v"] == 1


async def test_rfc9111_4_waiters_stream_the_body_of_one_fetch(origin, make_node, http):
    chunks = [b"a" * 5000] * 10
    origin.routes["/s"] = Route(headers={"Cache-Control": "max-age=60"}, chunks=chunks,
                                chunk_delay=0.01)
    edge = await make_node([origin.url])
    results = await asyncio.gather(*(http(edge, "/s") for _ in range(20)))
    assert all(s == 200 and b == b"a" * 50000 for s, _, b in results)
    assert origin.hits["/s"] == 1
    assert any("collapsed" in h["Cache-Status"] for _, h, _ in results)
    _, h, _ = await http(edge, "/s")
    assert "hit" in h["Cache-Status"]


async def test_rfc9110_14_6_multiple_ranges_multipart_byteranges(origin, make_node, http):
    origin.routes["/m"] = Route(headers={"Cache-Control": "max-age=60",
                                         "Content-Type": "text/plain"}, body=b"0123456789" * 10)
    edge = await make_node([origin.url])
    await http(edge, "/m")
    s, h, b = await http(edge, "/m", Range="bytes=0-1, 10-11")
    assert s == 206 and h["Content-Type"].startswith("multipart/byteranges; boundary=")
    assert b"Content-Range: bytes 0-1/100" in b and b"Content-Range: bytes 10-11/100" in b


async def test_rfc9213_cdn_cache_control_overrides_and_is_not_forwarded(origin, make_node, http,
                                                                        clock):
    origin.routes["/t"] = Route(headers={"Cache-Control": "no-store",
                                         "CDN-Cache-Control": "max-age=100"})
    mid = await make_node([origin.url], tier="mid", name="mid1")
    edge = await make_node([f"http://127.0.0.1:{mid.port}"],
                           cache={"strip_targeted_fields": True})
    _, h, _ = await http(edge, "/t")
    assert "CDN-Cache-Control" not in h and h["Cache-Control"] == "no-store"
    clock.advance(50)
    _, h, _ = await http(edge, "/t")
    last = h["Cache-Status"].split(", ")[-1]
    assert last.startswith("edge1; hit; ttl=") and 49 <= int(last.rsplit("=", 1)[1]) <= 50
    assert origin.hits["/t"] == 1


async def test_rfc9111_7_3_set_cookie_responses_not_shared(origin, make_node, http):
    origin.routes["/c"] = Route(headers={"Cache-Control": "max-age=60", "Set-Cookie": "id=1"})
    edge = await make_node([origin.url])
    await http(edge, "/c")
    _, h, _ = await http(edge, "/c")
    assert "fwd=bypass" in h["Cache-Status"] and origin.hits["/c"] == 2


async def test_rfc9111_5_2_2_4_no_cache_with_field_names_not_reused(origin, make_node, http):
    origin.routes["/f"] = Route(headers={"Cache-Control": 'max-age=60, no-cache="X-Secret"',
                                         "X-Secret": "s3"})
    edge = await make_node([origin.url])
    await http(edge, "/f")
    _, h, _ = await http(edge, "/f")
    assert "hit" in h["Cache-Status"] and "X-Secret" not in h


async def test_rfc8246_immutable_fresh_response_survives_reload(origin, make_node, http):
    origin.routes["/i"] = Route(headers={"Cache-Control": "max-age=600, immutable"})
    edge = await make_node([origin.url])
    await http(edge, "/i")
    _, h, _ = await http(edge, "/i", Cache_Control="no-cache")
    assert "hit" in h["Cache-Status"] and origin.hits["/i"] == 1


async def test_objects_over_the_size_limit_stream_through_uncached(origin, make_node, http):
    origin.routes["/big"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"b" * 300_000)
    edge = await make_node([origin.url], cache={"max_object_bytes": 100_000})
    for _ in range(2):
        s, _, b = await http(edge, "/big")
        assert s == 200 and len(b) == 300_000
    assert origin.hits["/big"] == 2


async def test_rfc9211_fwd_request_when_client_forbids_the_stored_response(origin, make_node,
                                                                          http):
    origin.routes["/q"] = Route(headers={"Cache-Control": "max-age=60", "ETag": '"q"'},
                                etag_304='"q"')
    edge = await make_node([origin.url])
    await http(edge, "/q")
    _, h, _ = await http(edge, "/q", Cache_Control="max-age=0")
    assert "fwd=request; fwd-status=304" in h["Cache-Status"]
