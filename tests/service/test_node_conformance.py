"""What a conforming shared cache must do at one tier, through a real node on loopback,
named by the RFC section each test checks. Each test holds a behaviour the node once got
wrong: invalidation by unknown methods, header storage, 304 handling, date and targeted
field parsing, which status codes are stored, and when stale responses may answer.
"""

from __future__ import annotations

import asyncio

from nodeharness import Route

from cdn_core.http_cache.dates import format_http_date
from cdn_core.node.exchange.entries import build_entry, refresh_from_304
from cdn_core.node.exchange.request import Request
from cdn_core.node.settings.cache import CacheSettings

BOTH_WIRES = True  # every test over HTTP/1.1 and over HTTP/2 (h2c): one request path


def _hit(headers) -> bool:
    return "hit" in headers["Cache-Status"].split(", ")[-1].split("; ")


# RFC 9111 4.4 ---------------------------------------------------------------------------
async def test_rfc9111_4_4_methods_of_unknown_safety_invalidate(origin, make_node, http):
    origin.routes["/u"] = Route(headers={"Cache-Control": "max-age=600"})
    edge = await make_node([origin.url])
    await http(edge, "/u")
    s, _, _ = await http(edge, "/u", method="M-SEARCH")
    assert s == 200
    _, h, _ = await http(edge, "/u")
    assert not _hit(h) and origin.hits["/u"] == 3


async def test_rfc9111_4_4_error_response_does_not_invalidate(origin, make_node, http):
    origin.routes["/e"] = Route(headers={"Cache-Control": "max-age=600"})
    edge = await make_node([origin.url])
    await http(edge, "/e")
    origin.routes["/e"] = Route(status=500, headers={"Cache-Control": "max-age=600"})
    s, _, _ = await http(edge, "/e", method="POST")
    assert s == 500
    _, h, _ = await http(edge, "/e")
    assert _hit(h)


async def test_rfc9111_4_4_relative_location_and_content_location_invalidated(
    origin, make_node, http
):
    cc = {"Cache-Control": "max-age=600"}
    for path in ("/dir/done", "/dir/item", "/other"):
        origin.routes[path] = Route(headers=cc)
    edge = await make_node([origin.url])
    for path in ("/dir/done", "/dir/item", "/other"):
        await http(edge, path)
    origin.routes["/dir/form"] = Route(
        status=201,
        headers={"Location": "done", "Content-Location": "http://www.example.test/dir/item"},
    )
    await http(edge, "/dir/form", method="POST")
    for path, cached in (("/dir/done", False), ("/dir/item", False), ("/other", True)):
        _, h, _ = await http(edge, path)
        assert _hit(h) is cached, path


# RFC 9111 3.1 / RFC 9110 7.6.1 ----------------------------------------------------------
async def test_rfc9111_3_1_proxy_authentication_info_is_not_stored(origin, make_node, http):
    origin.routes["/p"] = Route(
        headers={"Cache-Control": "max-age=600", "Proxy-Authentication-Info": "nextnonce=x"}
    )
    edge = await make_node([origin.url])
    await http(edge, "/p")
    _, h, _ = await http(edge, "/p")
    assert _hit(h) and "Proxy-Authentication-Info" not in h


# RFC 9110 6.6.1 / RFC 9111 5.3 ----------------------------------------------------------
async def test_rfc9110_6_6_1_invalid_date_is_replaced_not_duplicated(
    origin, make_node, http, clock
):
    expires = format_http_date(clock.time() + 600)
    origin.routes["/d"] = Route(headers={"Date": "foo", "Expires": expires})
    edge = await make_node([origin.url])
    _, h1, _ = await http(edge, "/d")
    clock.advance(5)
    _, h2, _ = await http(edge, "/d")
    assert _hit(h2)
    for h in (h1, h2):
        assert h["Date"] == format_http_date(clock.time() - 5)


async def test_rfc9111_5_3_expires_in_another_zone_is_already_expired(
    origin, make_node, http
):
    origin.routes["/x"] = Route(headers={"Expires": "Thu, 18 Aug 2050 02:01:18 UTC"})
    edge = await make_node([origin.url])
    await http(edge, "/x")
    _, h, _ = await http(edge, "/x")
    assert not _hit(h) and origin.hits["/x"] == 2


# RFC 9111 4.3.4 ------------------------------------------------------------------------
async def _sequenced_origin(responses: list[bytes]) -> tuple[asyncio.Server, str, list[bytes]]:
    """An origin that answers the n-th connection with ``responses[n]`` and closes;
    the request heads it received are returned in the list."""
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(responses[min(len(seen), len(responses)) - 1])
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


async def test_rfc9111_4_3_4_304_without_date_restarts_freshness(make_node, http, clock):
    first = (
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nETag: \"v1\"\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
    )
    not_modified = b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n"
    server, url, seen = await _sequenced_origin([first, not_modified])
    try:
        edge = await make_node([url])
        await http(edge, "/r")
        clock.advance(70)
        s, h, b = await http(edge, "/r")
        assert (s, b) == (200, b"ok") and "fwd-status=304" in h["Cache-Status"]
        clock.advance(10)
        _, h, _ = await http(edge, "/r")
        assert _hit(h) and len(seen) == 2 and int(h["Age"]) <= 11
    finally:
        server.close()
        await server.wait_closed()


async def test_rfc9111_4_3_4_304_for_another_representation_is_not_used(
    origin, make_node, http, clock
):
    origin.routes["/v"] = Route(
        headers={"Cache-Control": "max-age=5", "ETag": '"v1"'},
        body=b"old",
        etag_304='"v1"',
        headers_304={"ETag": '"v2"', "Cache-Control": "max-age=600"},
    )
    edge = await make_node([origin.url])
    await http(edge, "/v")
    clock.advance(6)
    origin.routes["/v"].body = b"new"
    origin.routes["/v"].headers = {"Cache-Control": "max-age=600", "ETag": '"v2"'}
    s, h, b = await http(edge, "/v")
    # The 304 names a different strong validator, so it selects no stored response; the
    # node fetches the full representation instead of serving the old body as current.
    assert (s, b) == (200, b"new") and h["ETag"] == '"v2"'
    assert origin.hits["/v"] == 3


async def test_rfc9111_4_3_4_304_updates_stored_fields(origin, make_node, http, clock):
    origin.routes["/f"] = Route(
        headers={"Cache-Control": "max-age=2", "ETag": '"a"', "Test-Header": "A"},
        etag_304='"a"',
        headers_304={"Cache-Control": "max-age=3600", "Test-Header": "B", "Content-Length": "7"},
        body=b"12345",
    )
    edge = await make_node([origin.url])
    await http(edge, "/f")
    clock.advance(3)
    _, h, b = await http(edge, "/f")
    assert h["Test-Header"] == "B" and h["Content-Length"] == "5" and b == b"12345"
    clock.advance(100)
    _, h, _ = await http(edge, "/f")
    assert _hit(h) and h["Test-Header"] == "B" and h["Cache-Control"] == "max-age=3600"


# RFC 9213 2.1 ---------------------------------------------------------------------------
async def test_rfc9213_2_1_targeted_field_that_fails_to_parse_is_ignored(
    origin, make_node, http
):
    origin.routes["/a"] = Route(
        headers={"CDN-Cache-Control": "max-age=10000, &&&&&", "Cache-Control": "no-store"}
    )
    origin.routes["/b"] = Route(
        headers={"CDN-Cache-Control": 'max-age="10000"', "Cache-Control": "no-store"}
    )
    edge = await make_node([origin.url])
    for path in ("/a", "/b"):
        await http(edge, path)
        _, h, _ = await http(edge, path)
        assert not _hit(h) and origin.hits[path] == 2, path


async def test_surrogate_control_obeyed_when_listed_as_targeted(origin, make_node, http, clock):
    origin.routes["/ns"] = Route(
        headers={"Cache-Control": "max-age=600", "Surrogate-Control": "no-store"}
    )
    origin.routes["/short"] = Route(
        headers={"Cache-Control": "max-age=3600", "Surrogate-Control": "max-age=1"}
    )
    origin.routes["/other"] = Route(
        headers={"Cache-Control": "max-age=3600", "Surrogate-Control": "no-store;other-cdn"}
    )
    edge = await make_node(
        [origin.url], cache={"targeted_fields": ["CDN-Cache-Control", "Surrogate-Control"]}
    )
    for path in ("/ns", "/short", "/other"):
        await http(edge, path)
    clock.advance(2)
    for path, cached in (("/ns", False), ("/short", False), ("/other", True)):
        _, h, _ = await http(edge, path)
        assert _hit(h) is cached, path


# RFC 9111 3 and 5.2.2.3 -----------------------------------------------------------------
async def test_rfc9111_3_any_final_status_with_explicit_freshness_is_stored(
    origin, make_node, http
):
    origin.routes["/gone"] = Route(status=403, headers={"Cache-Control": "max-age=600"})
    origin.routes["/odd"] = Route(status=299, headers={"Cache-Control": "max-age=600"})
    origin.routes["/down"] = Route(status=503, headers={"Cache-Control": "max-age=600"})
    # 400 is a client-caused error: never shared, by policy (test_node_hardening)
    origin.routes["/bad"] = Route(status=400, headers={"Cache-Control": "max-age=600"})
    edge = await make_node([origin.url])
    for path, cached in (("/gone", True), ("/odd", True), ("/down", False), ("/bad", False)):
        await http(edge, path)
        s, h, _ = await http(edge, path)
        assert _hit(h) is cached and s == origin.routes[path].status, path


async def test_rfc9111_5_2_2_3_must_understand(origin, make_node, http):
    cc = {"Cache-Control": "max-age=600, no-store, must-understand"}
    origin.routes["/known"] = Route(headers=cc)
    origin.routes["/unknown"] = Route(status=599, headers=cc)
    edge = await make_node([origin.url])
    for path, cached in (("/known", True), ("/unknown", False)):
        await http(edge, path)
        _, h, _ = await http(edge, path)
        assert _hit(h) is cached, path


# RFC 9111 5.2.2.4 / 4.2.4 ---------------------------------------------------------------
async def test_rfc9111_5_2_2_4_no_cache_response_never_answers_when_upstream_fails(
    origin, make_node, http, clock
):
    origin.routes["/nc"] = Route(headers={"Cache-Control": "max-age=600, no-cache", "ETag": '"n"'})
    edge = await make_node([origin.url], failover_window=3600)
    await http(edge, "/nc")
    clock.advance(1)
    await origin.stop()
    s, _, _ = await http(edge, "/nc")
    assert s == 502


# RFC 9111 5.1 ---------------------------------------------------------------------------
async def test_rfc9111_5_1_age_too_large_is_sent_as_2_pow_31(origin, make_node, http, clock):
    origin.routes["/old"] = Route(headers={"Cache-Control": "max-age=60", "Age": "2147483648"})
    edge = await make_node([origin.url])
    await http(edge, "/old")
    clock.advance(10)
    _, h, _ = await http(edge, "/old", Cache_Control="max-stale")
    assert _hit(h) and h["Age"] == "2147483648"


async def test_rfc9111_4_1_request_without_the_varying_field_does_not_match_empty_one(
    origin, make_node, http
):
    origin.routes["/vary"] = Route(headers={"Cache-Control": "max-age=600", "Vary": "Foo"})
    edge = await make_node([origin.url])
    await http(edge, "/vary", Foo="")
    _, h, _ = await http(edge, "/vary")
    assert not _hit(h)
    _, h, _ = await http(edge, "/vary", Foo="")
    assert _hit(h)



# RFC 9111 5.2.1.7 -----------------------------------------------------------------------
async def test_rfc9111_5_2_1_7_only_if_cached_never_goes_upstream(origin, make_node, http, clock):
    origin.routes["/o"] = Route(headers={"Cache-Control": "max-age=5", "ETag": '"o"'})
    edge = await make_node([origin.url])
    await http(edge, "/o")
    clock.advance(10)  # stored but stale: using it needs the origin
    s, _, _ = await http(edge, "/o", Cache_Control="only-if-cached")
    assert s == 504 and origin.hits["/o"] == 1
    s, _, _ = await http(edge, "/o", Cache_Control="only-if-cached, max-stale=60")
    assert s == 200 and origin.hits["/o"] == 1


# RFC 9213 2.1 with RFC 9111 4.3.4 --------------------------------------------------------
async def test_rfc9213_targeted_policy_survives_revalidation_through_the_tiers(
    origin, make_node, http, clock
):
    # Browsers must always revalidate; the CDN may keep it for 10 s. The edge strips the
    # targeted field, and the mid tier's 304 carries only what a 304 must: the edge still
    # has to apply the targeted lifetime to the refreshed response.
    origin.routes["/t"] = Route(
        headers={"Cache-Control": "no-cache", "CDN-Cache-Control": "max-age=10", "ETag": '"t"'},
        etag_304='"t"',
    )
    mid = await make_node([origin.url], tier="mid", name="mid1")
    edge = await make_node(
        [f"http://127.0.0.1:{mid.port}"], cache={"strip_targeted_fields": True}
    )
    await http(edge, "/t")
    clock.advance(15)
    _, h, _ = await http(edge, "/t")
    assert "fwd-status=304" in h["Cache-Status"].split(", ")[-1]
    assert "CDN-Cache-Control" not in h
    clock.advance(5)
    _, h, _ = await http(edge, "/t")
    assert _hit(h) and origin.hits["/t"] == 2


def test_rfc9213_stripped_targeted_policy_kept_when_a_304_omits_it():
    settings = CacheSettings(strip_targeted_fields=True)
    req = Request("GET", "/t", [("Host", "h")], {"host": "h"}, "1.1", True, b"", "c")
    t0 = 1_700_000_000.0
    headers = [
        ("Date", format_http_date(t0)),
        ("Cache-Control", "no-cache"),
        ("CDN-Cache-Control", 'max-age=10, private="X-Secret"'),
        ("ETag", '"t"'),
    ]
    entry = build_entry(key="http://h/t", host="h", req=req, status=200, reason="OK",
                        headers=headers, body=b"x", request_time=t0, response_time=t0,
                        settings=settings, via="1.1 e")
    assert entry.freshness.freshness_lifetime == 10 and "cdn-cache-control" not in entry.fields
    not_modified = [("Date", format_http_date(t0 + 15)), ("X-Secret", "s")]
    fresh = refresh_from_304(entry, not_modified, request_time=t0 + 15, response_time=t0 + 15,
                             settings=settings, via="1.1 e")
    assert fresh.freshness.freshness_lifetime == 10 and not fresh.cc.no_cache
    assert "x-secret" not in fresh.fields
