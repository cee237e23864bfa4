"""Correct through every tier: an edge in front of a mid tier in front of a scripted
origin, all real loopback servers. Each test is named after the rule it enforces
(issue 19): what one tier gets right alone must stay right when tiers are chained."""

from __future__ import annotations

from nodeharness import Route


async def _chain(origin, make_node, **edge_settings):
    mid = await make_node([origin.url], tier="mid", name="mid1")
    edge = await make_node([f"http://127.0.0.1:{mid.port}"], name="edge1", **edge_settings)
    return mid, edge


async def test_4_3_4_mid_304_carries_updated_fields_to_edge(origin, make_node, http, clock):
    origin.routes["/page"] = Route(
        headers={
            "Cache-Control": "max-age=10",
            "ETag": '"v1"',
            "Content-Type": "text/html",
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": "default-src 'self'",
        },
        body=b"<p>page</p>",
        etag_304='"v1"',
        headers_304={
            "Cache-Control": "max-age=10",
            "ETag": '"v1"',
            "X-Frame-Options": "SAMEORIGIN",
            "Content-Security-Policy": "default-src 'none'",
        },
    )
    mid, edge = await _chain(origin, make_node)
    _, h1, _ = await http(edge, "/page")
    assert h1["X-Frame-Options"] == "DENY"
    clock.advance(11)  # both tiers' copies are stale: edge -> mid -> origin, all 304
    s, h2, body = await http(edge, "/page")
    assert (s, body) == (200, b"<p>page</p>")
    assert h2["X-Frame-Options"] == "SAMEORIGIN"
    assert h2["Content-Security-Policy"] == "default-src 'none'"
    assert origin.hits["/page"] == 2
    # The refreshed copy at the edge keeps the new values on hits, and its own body.
    _, h3, body3 = await http(edge, "/page")
    assert "edge1; hit" in h3["Cache-Status"]
    assert h3["X-Frame-Options"] == "SAMEORIGIN" and body3 == b"<p>page</p>"
    assert h3["Content-Type"] == "text/html"


async def test_4_3_4_304_to_client_omits_body_metadata(origin, make_node, http):
    origin.routes["/c"] = Route(
        headers={
            "Cache-Control": "max-age=60",
            "ETag": '"c1"',
            "Content-Type": "text/css",
            "X-Frame-Options": "DENY",
        },
        body=b"a{}",
    )
    _, edge = await _chain(origin, make_node)
    await http(edge, "/c")
    s, h, body = await http(edge, "/c", If_None_Match='"c1"')
    assert (s, body) == (304, b"")
    assert h["ETag"] == '"c1"' and h["X-Frame-Options"] == "DENY"
    # RFC 9111 3.2: the stored body's own type and length are not sent to be updated.
    assert "Content-Type" not in h and "Content-Length" not in h
