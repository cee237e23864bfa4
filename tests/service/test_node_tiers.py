"""Correct through every tier: an edge in front of a mid tier in front of a scripted
origin, all real loopback servers. Each test is named after the rule it enforces
(issue 19): what one tier gets right alone must stay right when tiers are chained."""

from __future__ import annotations

import asyncio
import gzip

import pytest
from nodeharness import Route, https_get, raw_exchange, raw_origin, tls_settings

BOTH_WIRES = True  # every test over HTTP/1.1 and over HTTP/2 (h2c): one request path


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


async def test_key_includes_client_scheme_at_mid_tier(pki, origin, make_node, http):
    # An origin that redirects http to https: the redirect filled for an http client must
    # never reach an https client through the shared mid tier (a redirect to itself).
    origin.routes["/app"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"app",
                                  https_only=True)
    mid = await make_node([origin.url], tier="mid", name="mid1")
    upstream = [f"http://127.0.0.1:{mid.port}"]
    plain_edge = await make_node(upstream, name="edge1")
    tls_edge = await make_node(upstream, name="edge2", tls=tls_settings(pki))
    s, h, _ = await http(plain_edge, "/app")
    assert s == 301 and h["Location"] == "https://www.example.test/app"
    s, h, body = await https_get(tls_edge.tls_port, "/app", pki["ca"])
    assert (s, body) == (200, b"app")
    assert "mid1; fwd=uri-miss" in h["Cache-Status"]  # its own key at the mid tier too
    keys = set(mid.store._variants)
    assert keys == {"http://www.example.test/app", "https://www.example.test/app"}


async def test_scheme_claim_from_untrusted_client_is_ignored(origin, make_node, http):
    origin.routes["/app"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"app",
                                  https_only=True)
    # Nobody is a trusted forwarder here: a client talking to the mid tier directly
    # cannot claim https (its claim is removed and the mid states what it saw).
    mid = await make_node([origin.url], tier="mid", name="mid1",
                          trusted_forwarders=["10.0.0.0/8"])
    s, _, _ = await http(mid, "/app", X_Forwarded_Proto="https", Forwarded="proto=https")
    assert s == 301
    assert set(mid.store._variants) == {"http://www.example.test/app"}
    seen = origin.seen_headers[-1]
    assert seen["X-Forwarded-Proto"] == "http" and "proto=http" in seen["Forwarded"]
    # An edge strips a client's claim before it ever reaches the mid tier.
    edge = await make_node([f"http://127.0.0.1:{mid.port}"], name="edge1")
    s, _, _ = await http(edge, "/app", X_Forwarded_Proto="https")
    assert s == 301


async def test_trusted_forwarder_scheme_and_chain_kept(origin, make_node, http):
    origin.routes["/a"] = Route(headers={"Cache-Control": "max-age=60"})
    mid = await make_node([origin.url], tier="mid", name="mid1")  # loopback is trusted
    await http(mid, "/a", X_Forwarded_Proto="https", X_Forwarded_For="203.0.113.9")
    assert set(mid.store._variants) == {"https://www.example.test/a"}
    seen = origin.seen_headers[-1]
    assert seen["X-Forwarded-For"] == "203.0.113.9, 127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "https"


def test_purge_of_a_url_reaches_both_schemes():
    from cdn_core.store import PurgeSelector

    stored = {"http://h/a": 1, "https://h/a": 1, "https://h/ab": 1}
    by_host = {"h": set(stored)}
    assert sorted(PurgeSelector("url", "http://h/a").keys(stored, by_host, {})) == [
        "http://h/a", "https://h/a"]
    assert sorted(PurgeSelector("prefix", "https://h/a").keys(stored, by_host, {})) == [
        "http://h/a", "https://h/a", "https://h/ab"]


async def test_12_5_5_vary_accept_encoding_only_when_the_edge_varies(origin, make_node, http):
    big = b"body { color: red; }\n" * 200
    origin.routes["/big.css"] = Route(
        headers={"Cache-Control": "max-age=60", "Content-Type": "text/css"}, body=big
    )
    origin.routes["/small.css"] = Route(
        headers={"Cache-Control": "max-age=60", "Content-Type": "text/css", "Vary": "Origin"},
        body=b"a{}",
    )
    origin.routes["/font.woff2"] = Route(
        headers={"Cache-Control": "max-age=60", "Content-Type": "font/woff2"}, body=b"w" * 4000
    )
    origin.routes["/nt.css"] = Route(
        headers={"Cache-Control": "max-age=60, no-transform", "Content-Type": "text/css"},
        body=big,
    )
    _, edge = await _chain(origin, make_node)
    s, h, body = await http(edge, "/big.css", Accept_Encoding="br, gzip")
    assert (s, h["Vary"]) == (200, "Accept-Encoding") and "Content-Encoding" in h
    for ae in ("br, gzip", "identity;q=0, gzip"):
        _, h, body = await http(edge, "/small.css", Accept_Encoding=ae)
        assert h["Vary"] == "Origin" and body == b"a{}"  # the origin's own, as sent
        _, h, _ = await http(edge, "/font.woff2", Accept_Encoding=ae)
        assert "Vary" not in h and "Content-Encoding" not in h
        _, h, body = await http(edge, "/nt.css", Accept_Encoding=ae)
        assert "Vary" not in h and body == big


async def test_12_5_3_never_406_for_a_coding_the_origin_chose(origin, make_node, http):
    gz = gzip.compress(b"console.log(1);\n" * 300)
    origin.routes["/a.js"] = Route(
        headers={
            "Cache-Control": "max-age=60, no-transform",
            "Content-Type": "text/javascript",
            "Content-Encoding": "gzip",
        },
        body=gz,
    )
    origin.routes["/z.js"] = Route(
        headers={
            "Cache-Control": "max-age=60",
            "Content-Type": "text/javascript",
            "Content-Encoding": "zstd",
        },
        body=b"\x28\xb5\x2f\xfd" + b"z" * 100,
    )
    _, edge = await _chain(origin, make_node)
    for path in ("/a.js", "/z.js"):
        for ae in ("br", "identity", "identity;q=0"):
            s, h, body = await http(edge, path, Accept_Encoding=ae)
            assert s == 200, (path, ae)
            assert h["Content-Encoding"] in ("gzip", "zstd") and len(body) > 0


async def test_rfc9211_stored_only_when_the_response_was_stored(origin, make_node, http):
    origin.routes["/r"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"<p>Hi ",
                                echo_header="X-Campaign")
    _, edge = await _chain(origin, make_node)
    s, h, b = await http(edge, "/r", X_Campaign="<script>alert(1)</script>")
    assert s == 200 and b"<script>" in b
    # Refused by the reflection check at both tiers: neither says stored.
    assert "stored" not in h["Cache-Status"], h["Cache-Status"]
    s, h, b = await http(edge, "/r", X_Campaign="nothing-reflected-here")
    assert b"nothing-reflected-here" in b and "stored" not in h["Cache-Status"]
    # A clean fill (the User-Agent is probed, and not reflected): stored at both tiers.
    s, h, b = await http(edge, "/r", User_Agent="Mozilla/5.0 (X11; Linux x86_64)")
    assert h["Cache-Status"].count("stored") == 2, h["Cache-Status"]
    s, h, b = await http(edge, "/r")
    assert "edge1; hit" in h["Cache-Status"] and b == b"<p>Hi "


async def test_short_cookie_values_are_not_stored_unless_the_operator_says(
    origin, make_node, http
):
    # "lang=en": too short to look for in the body, and the page may be built from it.
    origin.routes["/p"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"page ",
                                echo_header="Cookie")
    edge = await make_node([origin.url])
    s, h, b = await http(edge, "/p", Cookie="lang=en")
    assert "stored" not in h["Cache-Status"]
    s, h, b = await http(edge, "/p")
    assert b == b"page " and "stored" in h["Cache-Status"]
    relaxed = await make_node([origin.url], name="edge2",
                              cache={"store_with_short_cookies": True})
    s, h, _ = await http(relaxed, "/p", Cookie="theme=dark")
    assert "stored" in h["Cache-Status"]


async def test_collapsed_requests_never_get_a_body_built_for_the_leader(
    origin, make_node, http
):
    origin.routes["/me"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"user=",
                                 echo_header="Cookie", delay=0.2)
    edge = await make_node([origin.url])
    first, second = await asyncio.gather(
        http(edge, "/me", Cookie="session=alice-0123456789"),
        http(edge, "/me", Cookie="session=bob-9876543210"),
    )
    assert b"alice" in first[2] and b"alice" not in second[2]
    assert b"bob" in second[2]
    assert "stored" not in first[1]["Cache-Status"] + second[1]["Cache-Status"]



async def test_a_value_from_one_of_several_field_lines_is_probed_on_its_own(
    origin, make_node
):
    # Repeated lines are joined with ", " into one field value; a page that reflects
    # only the last line, or is built from a short cookie on a second Cookie line, must
    # still not be stored for everyone.
    origin.routes["/p"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"page ",
                                echo_header="X-Lang")
    origin.routes["/c"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"page ",
                                echo_header="Cookie")
    edge = await make_node([origin.url])
    host = b"Host: www.example.test\r\nConnection: close\r\n"
    out = await raw_exchange(edge.port, b"GET /p HTTP/1.1\r\n" + host +
                             b"X-Lang: en-GB-oxendict\r\nX-Lang: <script>alert(1)</script>\r\n\r\n")
    assert out.endswith(b"<script>alert(1)</script>") and b"stored" not in out
    out = await raw_exchange(edge.port, b"GET /p HTTP/1.1\r\n" + host + b"\r\n")
    assert b"<script>" not in out
    out = await raw_exchange(edge.port, b"GET /c HTTP/1.1\r\n" + host +
                             b"Cookie: sid=0123456789abcdef\r\nCookie: lang=en\r\n\r\n")
    assert out.endswith(b"page lang=en") and b"stored" not in out
    out = await raw_exchange(edge.port, b"GET /c HTTP/1.1\r\n" + host + b"\r\n")
    assert out.endswith(b"\r\n\r\npage ")


@pytest.mark.parametrize(("field", "value", "reflected"), [
    ("Cookie", "<script>alert(1)</script>", "<script>alert(1)</script>"),  # no "="
    ("Cookie", 's="<script>alert(1)</script>"', "<script>alert(1)</script>"),  # quoted
    ("Accept-Language", 'en" autofocus onfocus="alert&#40;1&#41;" x="', 'en" autofocus'),
])
async def test_reflections_of_odd_cookie_and_attribute_forms_are_not_stored(
    field, value, reflected, origin, make_node, http
):
    origin.routes["/o"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"page ",
                                echo_header=field)
    edge = await make_node([origin.url])
    _, h, b = await http(edge, "/o", **{field.replace("-", "_"): value})
    assert reflected.encode() in b and "stored" not in h["Cache-Status"]
    _, h, b = await http(edge, "/o")
    assert b == b"page "


async def _after(seconds: float, request):
    await asyncio.sleep(seconds)
    return await request


CREDENTIALS = [("Cookie", "session=alice-0123456789"),
               ("Authorization", "Bearer alice-0123456789")]


@pytest.mark.parametrize(("field", "value"), CREDENTIALS)
@pytest.mark.parametrize("cc", [None, "no-cache", "max-age=0", "public", "must-revalidate"])
async def test_collapsed_requests_get_only_what_the_store_could_answer_them_with(
    cc, field, value, origin, make_node, http
):
    # A page built for Alice that is not kept, or needs validation before reuse, must
    # not go to the requests that waited on her fetch (RFC 9111 4, 5.2.2.4, 3.5).
    origin.routes["/dyn"] = Route(headers={"Cache-Control": cc} if cc else {},
                                  body=b"user=", echo_header=field, delay=0.3)
    edge = await make_node([origin.url])
    first, second = await asyncio.gather(
        http(edge, "/dyn", **{field: value}), _after(0.1, http(edge, "/dyn")))
    assert b"alice" in first[2] and b"alice" not in second[2]
    assert origin.hits["/dyn"] == 2
    # Nothing to share: the next requests go upstream in parallel (hit-for-miss).
    _, h, _ = await http(edge, "/dyn")
    assert "fwd=bypass" in h["Cache-Status"]


async def test_an_upstream_error_built_for_one_client_is_not_shared(origin, make_node, http):
    origin.routes["/e"] = Route(status=500, headers={"Set-Cookie": "sess=alice"},
                                body=b"oops ", echo_header="Cookie", delay=0.3)
    edge = await make_node([origin.url])
    first, second = await asyncio.gather(
        http(edge, "/e", Cookie="session=alice-0123456789"), _after(0.1, http(edge, "/e")))
    assert b"alice" in first[2] and "Set-Cookie" in first[1]
    assert b"alice" not in second[2] and "collapsed" not in second[1]["Cache-Status"]
    assert origin.hits["/e"] == 2
    # Without credentials or a cookie set, an error is shared (case H03: no retry storm).
    origin.routes["/e2"] = Route(status=503, body=b"down", delay=0.3)
    results = await asyncio.gather(http(edge, "/e2"), _after(0.1, http(edge, "/e2")),
                                   _after(0.1, http(edge, "/e2")))
    assert [s for s, _, _ in results] == [503, 503, 503] and origin.hits["/e2"] == 1



@pytest.mark.parametrize("cc", ["private", "no-store", None])
async def test_an_error_page_that_is_private_or_reflects_the_leader_is_not_shared(
    cc, origin, make_node, http
):
    # An error page is shared with waiters (case H03) only when it may be anyone's:
    # not private, not no-store, reflecting none of the leader's request values.
    origin.routes["/e"] = Route(status=500, headers={"Cache-Control": cc} if cc else {},
                                body=b"oops ", echo_header="X-Api-Key", delay=0.3)
    edge = await make_node([origin.url])
    first, second = await asyncio.gather(
        http(edge, "/e", X_Api_Key="SECRETAPIKEYA1"), _after(0.1, http(edge, "/e")))
    assert first[2] == b"oops SECRETAPIKEYA1"
    assert b"SECRET" not in second[2] and "collapsed" not in second[1]["Cache-Status"]


async def test_a_revalidation_is_shared_only_when_its_response_needs_no_more(
    origin, make_node, http, clock
):
    # A stored no-cache response is validated per request (RFC 9111 5.2.2.4): requests
    # collapsed onto another's revalidation make their own.
    origin.routes["/n"] = Route(headers={"Cache-Control": "no-cache", "ETag": '"v1"'},
                                etag_304='"v1"', delay=0.3)
    edge = await make_node([origin.url])
    await http(edge, "/n")
    first, second = await asyncio.gather(http(edge, "/n"), _after(0.1, http(edge, "/n")))
    assert "fwd-status=304" in first[1]["Cache-Status"]
    assert "collapsed" not in second[1]["Cache-Status"] and origin.hits["/n"] == 3


async def test_a_generic_field_with_an_unusual_value_is_probed(origin, make_node, http):
    origin.routes["/l"] = Route(headers={"Cache-Control": "max-age=60"}, body=b"lang ",
                                echo_header="Accept-Language")
    edge = await make_node([origin.url])
    _, h, b = await http(edge, "/l", Accept_Language="<script>alert(1)</script>")
    assert b.endswith(b"<script>alert(1)</script>") and "stored" not in h["Cache-Status"]
    _, h, b = await http(edge, "/l", Accept_Language="en-GB,en;q=0.9")
    assert b == b"lang en-GB,en;q=0.9" and "stored" in h["Cache-Status"]  # usual: kept
    _, h, b = await http(edge, "/l")
    assert "hit" in h["Cache-Status"] and b"<script>" not in b


async def test_rfc9111_5_2_1_5_a_request_no_store_leaves_the_stored_response(
    origin, make_node, http
):
    origin.routes["/s"] = Route(headers={"Cache-Control": "max-age=60", "ETag": '"v1"'},
                                etag_304='"v1"')
    edge = await make_node([origin.url])
    await http(edge, "/s")
    _, h, _ = await http(edge, "/s", Cache_Control="no-cache, no-store")
    assert "fwd-status=304" in h["Cache-Status"]
    _, h, _ = await http(edge, "/s")
    assert "hit" in h["Cache-Status"] and origin.hits["/s"] == 2

async def test_a_body_still_being_scanned_past_the_held_bytes_is_not_shared(
    origin, make_node, http
):
    # The reflection scan decides at the end of the body; past DECIDE_WITHIN_BYTES the
    # leader's body streams undecided, and a waiter must not be handed it.
    origin.routes["/big"] = Route(headers={"Cache-Control": "max-age=60"},
                                  chunks=[b"x" * 70_000], chunk_delay=0.4,
                                  echo_header="Cookie")
    edge = await make_node([origin.url])
    first, second = await asyncio.gather(
        http(edge, "/big", Cookie="session=alice-0123456789"), _after(0.15, http(edge, "/big")))
    assert first[2].endswith(b"alice-0123456789") and b"alice" not in second[2]
    assert origin.hits["/big"] == 2


EARLY_HINTS = (
    b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload; as=style\r\n"
    b"Connection: X-Hop\r\nX-Hop: 1\r\n\r\n"
    b"HTTP/1.1 102 Processing\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Type: text/html\r\n"
    b"Content-Length: 5\r\n\r\nhello"
)


async def test_103_early_hints_forwarded_not_stored(make_node):
    origin, url = await raw_origin(EARLY_HINTS)
    try:
        mid = await make_node([url], tier="mid", name="mid1")
        edge = await make_node([f"http://127.0.0.1:{mid.port}"], name="edge1")
        get = b"GET /page HTTP/1.1\r\nHost: www.example.test\r\n\r\n"
        out = await raw_exchange(edge.port, get, timeout=1.0)
        # Through both tiers, in order, hop-by-hop fields left out (RFC 9110 15.2, 7.6.1).
        first, _, rest = out.partition(b"\r\n\r\n")
        assert first == (b"HTTP/1.1 103 Early Hints\r\n"
                         b"Link: </app.css>; rel=preload; as=style")
        second, _, final = rest.partition(b"\r\n\r\n")
        assert second == b"HTTP/1.1 102 Processing"
        assert final.startswith(b"HTTP/1.1 200 OK") and final.endswith(b"hello")
        assert b"Link:" not in final  # the hint's fields are not the response's
        # Stored without them: the hit has no interim response.
        out = await raw_exchange(edge.port, get, timeout=1.0)
        assert out.startswith(b"HTTP/1.1 200 OK") and b"edge1; hit" in out
        assert b"103" not in out.split(b"\r\n")[0]
        # HTTP/1.0 clients never get a 1xx (RFC 9110 15.2).
        out = await raw_exchange(edge.port, b"GET /other HTTP/1.0\r\nHost: www.example.test"
                                 b"\r\n\r\n", timeout=1.0)
        assert out.startswith(b"HTTP/1.1 200 OK"), out[:40]
    finally:
        origin.close()
        await origin.wait_closed()


async def test_rfc9110_10_1_1_expect_is_answered_at_the_edge_not_forwarded(
    origin, make_node
):
    origin.routes["/form"] = Route(headers={"Cache-Control": "no-store"}, body=b"ok")
    _, edge = await _chain(origin, make_node)
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(b"POST /form HTTP/1.1\r\nHost: www.example.test\r\nContent-Length: 3\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)).startswith(
        b"HTTP/1.1 100 Continue")
    writer.write(b"a=1")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert head.startswith(b"HTTP/1.1 200"), head  # exactly one 100, then the answer
    assert "Expect" not in origin.seen_headers[-1]
    writer.close()
    await writer.wait_closed()
