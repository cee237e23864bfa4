"""HTTP/2 at the edge (RFC 9113), real loopback servers: negotiated by ALPN on the TLS
port (and h2c with prior knowledge on its own port), through the same request path and
cache as HTTP/1.1, with flow control, and the known attacks refused and counted."""

from __future__ import annotations

import asyncio

import h2.errors
import h2.settings
import hyperframe.frame
from h2client import H2Client
from nodeharness import Route, https_get, raw_origin, tls_settings

CC = {"Cache-Control": "max-age=60", "Content-Type": "text/plain"}


def h2_tls(pki, **extra):
    return {**tls_settings(pki), **extra}


async def _client(node, pki, **kw) -> H2Client:
    return await H2Client(**kw).connect(node.tls_port, ca=pki["ca"])


def refused(node, reason: str) -> float:
    return node.metrics.refused.labels(node.config.tier, reason)._value.get()


async def test_rfc9113_3_2_h2_by_alpn_shares_the_cache_with_http1(pki, origin, make_node):
    origin.routes["/a"] = Route(headers=CC, body=b"alpha")
    edge = await make_node([origin.url], tls=h2_tls(pki))
    c = await _client(edge, pki)
    try:
        assert c.alpn == "h2"
        r = await c.get("/a")
        assert (r.status, r.body) == (200, b"alpha")
        assert "fwd=uri-miss" in r.headers["cache-status"] and "age" in r.headers
        assert "connection" not in r.headers and "transfer-encoding" not in r.headers
        r = await c.get("/a")
        assert "edge1; hit" in r.headers["cache-status"]
    finally:
        await c.close()
    # The same stored object answers HTTP/1.1 over TLS (one key: https, host, path).
    status, headers, body = await https_get(edge.tls_port, "/a", pki["ca"])
    assert (status, body) == (200, b"alpha") and "hit" in headers["Cache-Status"]
    assert origin.hits["/a"] == 1


async def test_rfc9111_4_fifty_streams_one_connection_one_key_one_origin_fetch(
    pki, origin, make_node
):
    origin.routes["/cold"] = Route(headers=CC, body=b"c" * 5000, delay=0.2)
    edge = await make_node([origin.url], tls=h2_tls(pki))
    c = await _client(edge, pki)
    try:
        ids = [c.request("/cold") for _ in range(50)]  # all in flight at once
        await asyncio.wait_for(asyncio.gather(*(c.responses[i].done.wait() for i in ids)), 5)
    finally:
        await c.close()
    assert [(c.responses[i].status, c.responses[i].body) for i in ids] == [(200, b"c" * 5000)] * 50
    assert origin.hits["/cold"] == 1
    assert sum("collapsed" in c.responses[i].headers["cache-status"] for i in ids) == 49


async def test_h2c_prior_knowledge_on_its_own_port(pki, origin, make_node, http):
    origin.routes["/c"] = Route(headers=CC, body=b"clear")
    edge = await make_node([origin.url], tls={"h2c_port": 0})
    c = await H2Client().connect(edge.h2c_port)
    try:
        r = await c.get("/c", scheme="http")
        assert (r.status, r.body) == (200, b"clear")
    finally:
        await c.close()
    _, h, _ = await http(edge, "/c")  # the http key: shared with HTTP/1.1 on port
    assert "edge1; hit" in h["Cache-Status"]


async def test_rfc9113_8_2_3_cookie_crumbs_are_joined(pki, origin, make_node):
    origin.routes["/me"] = Route(headers={"Cache-Control": "no-store"}, body=b"",
                                 echo_header="Cookie")
    edge = await make_node([origin.url], tls=h2_tls(pki))
    c = await _client(edge, pki)
    try:
        r = await c.get("/me", headers=[("cookie", "a=1"), ("cookie", "b=2")])
        assert r.body == b"a=1; b=2"
    finally:
        await c.close()


async def test_large_bodies_stream_within_the_flow_control_windows(pki, origin, make_node):
    big = bytes(range(256)) * 4096 * 4  # 4 MiB, far over the 64 KiB initial windows
    origin.routes["/big"] = Route(headers={"Cache-Control": "max-age=60",
                                           "Content-Type": "application/octet-stream"},
                                  body=big)
    edge = await make_node([origin.url], tls=h2_tls(pki))
    c = await _client(edge, pki)
    try:
        miss, hit = await asyncio.gather(c.get("/big", timeout=20), c.get("/big", timeout=20))
        assert miss.body == big and hit.body == big
        assert miss.headers["content-length"] == str(len(big))
    finally:
        await c.close()


async def test_request_bodies_pass_through_and_head_has_no_data(pki, origin, make_node):
    origin.routes["/form"] = Route(headers={"Cache-Control": "no-store"}, body=b"got ",
                                   echo_header="Content-Length")
    origin.routes["/h"] = Route(headers=CC, body=b"head me")
    edge = await make_node([origin.url], tls=h2_tls(pki))
    c = await _client(edge, pki)
    try:
        r = await c.get("/form", method="POST", body=b"x=1&y=2")
        assert (r.status, r.body) == (200, b"got 7")
        r = await c.get("/h", method="HEAD")
        assert r.status == 200 and r.body == b"" and r.headers["content-length"] == "7"
    finally:
        await c.close()


async def test_cve_2023_44487_rapid_reset_ends_the_connection(pki, origin, make_node):
    origin.routes["/slow"] = Route(headers=CC, body=b"s", delay=1.0)
    edge = await make_node([origin.url], tls=h2_tls(pki),
                           limits={"h2_max_resets_per_second": 20})
    c = await _client(edge, pki)
    try:
        for _ in range(50):
            sid = c.request("/slow")
            c.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
        c.flush()
        await asyncio.wait_for(c.closed.wait(), 5)
        assert c.goaway is not None
        assert c.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert refused(edge, "h2-rapid-reset") == 1
    finally:
        await c.close()


async def test_ping_flood_ends_the_connection(pki, origin, make_node):
    edge = await make_node([origin.url], tls=h2_tls(pki),
                           limits={"h2_max_resets_per_second": 20})
    c = await _client(edge, pki)
    try:
        for i in range(100):
            c.conn.ping(i.to_bytes(8, "big"))
        c.flush()
        await asyncio.wait_for(c.closed.wait(), 5)
        assert c.goaway is not None
        assert c.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert refused(edge, "h2-ping-flood") == 1
    finally:
        await c.close()


async def test_h2_to_h1_smuggling_fields_are_protocol_errors_never_forwarded(
    pki, origin, make_node
):
    origin.routes["/p"] = Route(headers=CC, body=b"p")
    edge = await make_node([origin.url], tls=h2_tls(pki))
    for bad in (
        [("transfer-encoding", "chunked")],
        [("connection", "keep-alive")],
        [("te", "gzip")],
        [("X-Upper", "1")],
        [("x-evil", "a\r\nInjected: 1")],
    ):
        c = await _client(edge, pki, validate=False)
        try:
            c.request("/p", headers=bad)
            await asyncio.wait_for(c.closed.wait(), 5)
            assert c.goaway is not None, bad
            assert c.goaway.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR, bad
        finally:
            await c.close()
    assert "/p" not in origin.hits
    assert refused(edge, "h2-protocol-error") == 5


async def test_content_length_disagreeing_with_data_is_refused(pki, origin, make_node):
    origin.routes["/form"] = Route(headers={"Cache-Control": "no-store"}, body=b"ok")
    edge = await make_node([origin.url], tls=h2_tls(pki))
    c = await _client(edge, pki, validate=False)
    try:
        c.request("/form", method="POST", headers=[("content-length", "100")], body=b"short")
        await asyncio.wait_for(c.closed.wait(), 5)
        assert c.goaway is not None or any(r.reset for r in c.responses.values())
    finally:
        await c.close()
    assert "/form" not in origin.hits


async def test_hpack_bomb_header_list_over_the_limit_is_refused(pki, origin, make_node):
    origin.routes["/p"] = Route(headers=CC, body=b"p")
    edge = await make_node([origin.url], tls=h2_tls(pki), limits={"max_header_bytes": 4096})
    c = await _client(edge, pki)
    try:
        # Many copies of one indexed field: a few bytes on the wire, a large list decoded.
        c.request("/p", headers=[("x-bomb", "b" * 1000)] * 20)
        await asyncio.wait_for(c.closed.wait(), 5)
        assert c.goaway is not None
    finally:
        await c.close()
    assert "/p" not in origin.hits


async def test_continuation_flood_ends_the_connection(pki, origin, make_node):
    """CVE-2024-27316 and kin: a header block that never ends, sent as CONTINUATION
    frames, is cut off (h2 buffers at most 64 of them) instead of growing without bound."""
    edge = await make_node([origin.url], tls=h2_tls(pki))
    c = await _client(edge, pki)
    try:
        await asyncio.sleep(0.05)
        frames = [hyperframe.frame.HeadersFrame(1, data=b"\x82")]  # :method GET, no END_HEADERS
        frames += [hyperframe.frame.ContinuationFrame(1, data=b"\x00" * 1000) for _ in range(80)]
        assert c._writer is not None
        c._writer.write(b"".join(f.serialize() for f in frames))
        await asyncio.wait_for(c.closed.wait(), 5)
        assert refused(edge, "h2-protocol-error") == 1
    finally:
        await c.close()


async def test_streams_over_the_limit_are_refused(pki, origin, make_node):
    origin.routes["/slow"] = Route(headers=CC, body=b"s", delay=0.5)
    edge = await make_node([origin.url], tls=h2_tls(pki), limits={"h2_max_streams": 4})
    c = await _client(edge, pki)
    try:
        await asyncio.sleep(0.1)  # the server's SETTINGS arrive
        assert c.conn.remote_settings.max_concurrent_streams == 4
        # Past the advertised limit the client's own h2 refuses to open more; a client
        # ignoring it gets the connection ended.
        c.conn.remote_settings = h2.settings.Settings(
            client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100}
        )
        for _ in range(8):
            c.request("/slow")
        await asyncio.wait_for(c.closed.wait(), 5)
        assert c.goaway is not None
        assert refused(edge, "h2-too-many-streams") == 1
    finally:
        await c.close()


async def test_a_client_that_stops_reading_is_timed_out(pki, origin, make_node):
    origin.routes["/big"] = Route(headers=CC, body=b"z" * 200_000)
    edge = await make_node([origin.url], tls=h2_tls(pki), limits={"body_timeout": 0.3})
    # A zero initial window: the server may send headers but no DATA, ever.
    c = await H2Client().connect(
        edge.tls_port, ca=pki["ca"],
        settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0},
    )
    try:
        r = await c.get("/big", timeout=5)
        assert r.reset == h2.errors.ErrorCodes.CANCEL and r.body == b""
        assert refused(edge, "send-timeout") == 1
    finally:
        await c.close()


async def test_goaway_on_stop_lets_streams_in_flight_finish(pki, origin, make_node):
    # curl (nghttp2) as the client: h2's own client drops a stream after GOAWAY.
    origin.routes["/slow"] = Route(headers=CC, body=b"finished", delay=0.5)
    edge = await make_node([origin.url], tls=h2_tls(pki))
    port = edge.tls_port
    curl = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--http2", "--cacert", str(pki["ca"]), "-w", "%{http_version}",
        "--resolve", f"www.example.test:{port}:127.0.0.1",
        f"https://www.example.test:{port}/slow",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    for _ in range(100):  # bounded: curl connects within a second or two
        if any(getattr(c, "busy", False) for c in edge._connections):
            break
        await asyncio.sleep(0.02)
    for conn in list(edge._connections):
        conn.close()  # what Node.stop does first: GOAWAY, streams in flight go on
    out, err = await asyncio.wait_for(curl.communicate(), 10)
    assert curl.returncode == 0, err
    assert out == b"finished2"  # the body, then curl's %{http_version}


async def test_103_early_hints_reach_h2_clients(pki, make_node):
    server, url = await raw_origin(
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok"
    )
    try:
        edge = await make_node([url], tls=h2_tls(pki))
        c = await _client(edge, pki)
        try:
            r = await c.get("/x")
            assert r.interim == [103] and (r.status, r.body) == (200, b"ok")
            assert "link" not in r.headers
        finally:
            await c.close()
    finally:
        server.close()
        await server.wait_closed()
