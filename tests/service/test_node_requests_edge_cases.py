"""Request edge cases found by trying the edge as a hostile new user: each must get one
well-formed answer, and every spelling of a URL must reach one cache key (RFC 3986
6.2.2), so that a purge reaches it too."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from nodeharness import Route, raw_exchange

CC60 = {"Cache-Control": "max-age=60", "Surrogate-Key": "page site"}


async def test_rfc9110_7_8_upgrade_ignored_and_answered_once(origin, make_node):
    origin.routes["/u"] = Route(headers=CC60, body=b"plain")
    edge = await make_node([origin.url])
    req = (b"GET /u HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
           b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
           b"GET /u HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    out = await raw_exchange(edge.port, req)
    assert out.count(b"HTTP/1.1 200") == 2 and b"400" not in out


@pytest.mark.parametrize("spelling", ["/about.html?", "/%61bout.html", "/x/../about.html",
                                      "/./about.html"])
async def test_rfc3986_6_2_2_equivalent_targets_share_one_key(spelling, origin, make_node, http):
    origin.routes["/about.html"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    await http(edge, "/about.html")
    _, h, _ = await http(edge, spelling)
    assert "hit" in h["Cache-Status"] and origin.hits == {"/about.html": 1}


async def test_trailing_dot_host_is_the_same_site(origin, make_node, http):
    origin.routes["/a"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    await http(edge, "/a")
    _, h, _ = await http(edge, "/a", Host="WWW.example.test.")
    assert "hit" in h["Cache-Status"]


async def test_rfc9112_3_2_2_absolute_form_authority_wins_over_host(origin, make_node, http):
    origin.routes["/a"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, b"GET http://www.example.test/a HTTP/1.1\r\n"
                             b"Host: evil.test\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    _, h, _ = await http(edge, "/a")  # stored under www.example.test, not evil.test
    assert "hit" in h["Cache-Status"]
    assert origin.seen_headers[0]["Host"] == "www.example.test"


@pytest.mark.parametrize("host", [b"a b", b"x@y", b"[zz", b"h:abc", b"h:99999"])
async def test_rfc9112_3_2_invalid_host_is_400(host, origin, make_node):
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize("authority", [b"a.test,b.test", b"a.test:99999", b"user@a.test",
                                       b"a.test:abc"])
async def test_rfc9112_3_2_2_an_invalid_absolute_form_authority_is_400(
    authority, origin, make_node
):
    # The same check as for Host (which the authority replaces), at the first tier.
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, b"GET http://" + authority + b"/ HTTP/1.1\r\n"
                             b"Host: a.test\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") and not origin.hits


async def test_rfc9110_14_3_overlapping_ranges_get_the_whole_body_once(origin, make_node, http):
    origin.routes["/r"] = Route(headers=CC60, body=b"x" * 1000)
    edge = await make_node([origin.url])
    await http(edge, "/r")
    s, _, b = await http(edge, "/r", Range="bytes=" + ",".join(["0-"] * 10))
    assert s == 200 and len(b) == 1000


async def test_unknown_method_501_connect_and_trace_405(origin, make_node):
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 501")
    out = await raw_exchange(edge.port, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 405") and b"\r\nAllow: GET, HEAD," in out
    # TRACE would echo the client's cookies to a script: refused at the edge, never
    # forwarded (RFC 9110 9.3.8 lets a server refuse it).
    out = await raw_exchange(edge.port, b"TRACE /u HTTP/1.1\r\nHost: h\r\nCookie: s=1\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 405") and b"s=1" not in out and origin.hits == {}


async def test_rfc9110_10_1_1_expect_100_continue_and_early_413(origin, make_node):
    origin.routes["/p"] = Route(headers={"Cache-Control": "no-store"}, body=b"ok")
    edge = await make_node([origin.url], limits={"max_body_bytes": 1000})
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)).startswith(
        b"HTTP/1.1 100 Continue")
    writer.write(b"hello")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 2)).startswith(b"HTTP/1.1 200")
    writer.close()
    await writer.wait_closed()
    out = await raw_exchange(edge.port, b"POST /p HTTP/1.1\r\nHost: h\r\n"
                             b"Content-Length: 99999999999\r\n\r\n", timeout=2)
    assert out.startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize(
    "pieces",
    [
        [b"FFFFFF\r\n"],  # the size line alone, in the head's read
        [b"", b"10000\r\nabc"],  # in a read of its own, with some of the chunk's data
        [b"", b"1F", b"FFF;ext=\"x\"\r\n"],  # a size line split across reads
        [b"", b"10\r\n0123456789abcdef\r\n", b"400;big\r\n"],  # a later chunk
    ],
)
async def test_rfc9112_7_1_declared_chunk_over_the_body_limit_is_413_at_once(
    pieces, origin, make_node
):
    """llhttp reports where a chunk starts, not its size; the size line is read so a
    client declaring a chunk over the limit is answered 413 now, not after the body
    timeout (30 s by default)."""
    origin.routes["/p"] = Route(headers={"Cache-Control": "no-store"}, body=b"ok")
    edge = await make_node([origin.url], limits={"max_body_bytes": 1000})
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    head = b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    writer.write(head + pieces[0])
    for piece in pieces[1:]:
        await writer.drain()
        await asyncio.sleep(0.02)  # separate reads at the edge
        writer.write(piece)
    out = await asyncio.wait_for(reader.read(1000), 2)
    assert out.startswith(b"HTTP/1.1 413"), out
    assert origin.hits.get("/p") is None
    writer.close()
    await writer.wait_closed()


async def test_rfc9112_7_1_chunked_bodies_within_the_limit_pass(origin, make_node):
    origin.routes["/p"] = Route(headers={"Cache-Control": "no-store"}, body=b"ok")
    edge = await make_node([origin.url], limits={"max_body_bytes": 1000})
    reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
    writer.write(b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"1f4;n=1\r\n")  # 500 bytes declared: within the limit
    for part in (b"a" * 200, b"a" * 300 + b"\r\n1F4\r\n" + b"b" * 10, b"b" * 490):
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(part)
    writer.write(b"\r\n0\r\n\r\n")
    out = await asyncio.wait_for(reader.readuntil(b"\r\n"), 2)
    assert out.startswith(b"HTTP/1.1 200"), out
    writer.close()
    await writer.wait_closed()


async def test_surrogate_keys_stay_in_the_cdn_but_purge_by_tag_works(origin, make_node, http):
    origin.routes["/t"] = Route(headers=CC60)
    mid = await make_node([origin.url], tier="mid", name="mid1")
    edge = await make_node([f"http://127.0.0.1:{mid.port}"],
                           cache={"strip_targeted_fields": True})
    _, h, _ = await http(edge, "/t")
    assert "Surrogate-Key" not in h
    from cdn_core.store import PurgeSelector

    assert edge.purge(PurgeSelector("tag", "page")) == 1


def test_mid_tier_default_name_is_mid():
    from cdn_core.node.settings.node import NodeConfig

    assert NodeConfig.model_validate({"tier": "mid"}).name == "mid"
    assert NodeConfig.model_validate({}).name == "edge"


async def test_aiohttp_client_still_works_with_keepalive(origin, make_node):
    origin.routes["/k"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    async with aiohttp.ClientSession() as s:
        for _ in range(3):
            async with s.get(f"http://127.0.0.1:{edge.port}/k") as r:
                assert r.status == 200


async def test_invented_field_names_cannot_grow_the_name_memo(origin, make_node, monkeypatch):
    # The protocol remembers field-name spellings up to a bound; once full, new spellings
    # are decoded as before, so a client inventing names neither grows it nor breaks
    # field matching (here an unseen spelling of Host).
    from cdn_core.node.wire import http1 as protocol

    monkeypatch.setattr(protocol, "_FIELD_NAMES", {})
    monkeypatch.setattr(protocol, "FIELD_NAME_MEMO", 8)
    origin.routes["/m"] = Route(headers=CC60)
    edge = await make_node([origin.url])
    junk = b"".join(b"X-Junk-%d: 1\r\n" % i for i in range(20))
    out = await raw_exchange(edge.port, b"GET /m HTTP/1.1\r\nHost: h\r\n" + junk
                             + b"\r\nGET /m HTTP/1.1\r\nhOsT: h\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2
    assert len(protocol._FIELD_NAMES) == 8 and b"hOsT" not in protocol._FIELD_NAMES


async def test_rfc9110_15_6_6_unparsed_versions_get_505_not_400(origin, make_node):
    edge = await make_node([origin.url])
    for version in (b"HTTP/1.2", b"HTTP/3.0", b"HTTP/2.0"):
        out = await raw_exchange(edge.port, b"GET / " + version + b"\r\nHost: h\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 505"), (version, out[:40])
    out = await raw_exchange(edge.port, b"GET / HTTP/1.1\r\nHo st: h\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")


@pytest.mark.parametrize(
    "first",
    [b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", b"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n",
     b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n"],
)  # fmt: skip
async def test_nothing_pipelined_behind_a_refused_request_reaches_the_origin(
    first, origin, make_node
):
    # The refusal closes the connection: what follows in the same write (CONNECT's
    # would-be tunnel data, or a smuggled request) is never handed on.
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, first + b"DELETE /after HTTP/1.1\r\nHost: h\r\n\r\n")
    assert out.startswith((b"HTTP/1.1 405", b"HTTP/1.1 400")) and out.count(b"HTTP/1.1") == 1
    assert origin.hits == {}


async def test_rfc9110_7_1_the_target_sent_upstream_is_the_one_in_the_cache_key(
    origin, make_node
):
    # The node normalises the target once (percent-encodings, dot segments: the cache
    # key) and forwards exactly that: no client library re-encoding characters the
    # key holds as they came ("|", "{", "}", "^"), which would key one URL and fetch
    # another.
    origin.routes["/a|b{c}^"] = Route(headers={"Cache-Control": "max-age=60"})
    edge = await make_node([origin.url])
    out = await raw_exchange(edge.port, b"GET /a|b{c}^?q=%41 HTTP/1.1\r\n"
                             b"Host: www.example.test\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and origin.raw_paths[-1] == "/a|b{c}^?q=A"
