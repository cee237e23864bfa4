"""HTTP/3 at the edge (RFC 9114) over aioquic, real loopback UDP: the same request path
and cache as HTTP/1.1 and HTTP/2, advertised by Alt-Svc on the TLS listener, with QUIC
address validation, and junk datagrams ignored."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from nodeharness import Route, https_get, tls_settings
from prometheus_client import generate_latest

from bench.h3get import h3_get
from cdn_core.pki import ensure_demo_pki

CC = {"Cache-Control": "max-age=60", "Content-Type": "text/plain"}


def h3_tls(pki):
    return {**tls_settings(pki), "http3": True}


def url(node, path):
    return f"https://www.example.test:{node.tls_port}{path}"


async def test_rfc9114_h3_serves_the_same_cache_as_http1(pki, origin, make_node):
    origin.routes["/a"] = Route(headers=CC, body=b"alpha" * 1000)
    edge = await make_node([origin.url], tls=h3_tls(pki))
    miss, hit = await h3_get(url(edge, "/a"), ca=str(pki["ca"]),
                             connect_to=("127.0.0.1", edge.tls_port), count=2)
    assert (miss.status, miss.body) == (200, b"alpha" * 1000)
    assert "fwd=uri-miss" in miss.headers["cache-status"]
    assert "edge1; hit" in hit.headers["cache-status"] and "age" in hit.headers
    status, headers, body = await https_get(edge.tls_port, "/a", pki["ca"])
    assert status == 200 and "hit" in headers["Cache-Status"]
    assert origin.hits["/a"] == 1


async def test_rfc7838_alt_svc_advertises_h3_on_tls_responses(pki, origin, make_node, http):
    origin.routes["/b"] = Route(headers=CC, body=b"b")
    edge = await make_node([origin.url], tls=h3_tls(pki))
    _, headers, _ = await https_get(edge.tls_port, "/b", pki["ca"])
    assert headers["Alt-Svc"] == f'h3=":{edge.tls_port}"; ma=86400'
    _, plain, _ = await http(edge, "/b")
    assert "Alt-Svc" not in plain  # the plain port offers no h3
    off = await make_node([origin.url], name="edge2", tls=tls_settings(pki))
    _, headers, _ = await https_get(off.tls_port, "/b", pki["ca"])
    assert "Alt-Svc" not in headers


async def test_rfc6066_sni_picks_the_certificate_on_h3_as_on_tcp(pki, origin, make_node, tmp_path):
    """Two certificates from two CAs: each name gets its own on HTTP/1.1 over TLS and on
    HTTP/3, and a client trusting only the other CA is refused on both."""
    origin.routes["/s"] = Route(headers=CC, body=b"static")
    other = ensure_demo_pki(tmp_path / "static", ["static.example.test"])
    tls = h3_tls(pki)
    tls["certificates"].append({"cert_file": str(other["cert"]), "key_file": str(other["key"])})
    edge = await make_node([origin.url], tls=tls)
    to = ("127.0.0.1", edge.tls_port)
    static = f"https://static.example.test:{edge.tls_port}/s"
    (r,) = await h3_get(static, ca=str(other["ca"]), connect_to=to)
    assert (r.status, r.body) == (200, b"static")
    (r,) = await h3_get(url(edge, "/s"), ca=str(pki["ca"]), connect_to=to)
    assert r.status == 200
    with pytest.raises(ConnectionError):  # aioquic: "certificate signature failure"
        await h3_get(static, ca=str(pki["ca"]), connect_to=to, timeout=3)
    status, _, body = await https_get(edge.tls_port, "/s", other["ca"],
                                      server_hostname="static.example.test")
    assert (status, body) == (200, b"static")
    with pytest.raises(aiohttp.ClientError):
        await https_get(edge.tls_port, "/s", pki["ca"], server_hostname="static.example.test")


async def test_junk_datagrams_do_not_disturb_connections(pki, origin, make_node):
    origin.routes["/c"] = Route(headers=CC, body=b"c")
    edge = await make_node([origin.url], tls=h3_tls(pki))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for junk in (b"\x00", b"\xff" * 1200, b"GET / HTTP/1.1\r\n\r\n", b"\xc0" + b"\x00" * 40):
            sock.sendto(junk, ("127.0.0.1", edge.tls_port))
    finally:
        sock.close()
    await asyncio.sleep(0.05)
    (r,) = await h3_get(url(edge, "/c"), ca=str(pki["ca"]),
                        connect_to=("127.0.0.1", edge.tls_port))
    assert (r.status, r.body) == (200, b"c")


async def test_protocol_label_and_access_log_proto_for_all_three(pki, origin, make_node, tmp_path):
    from h2client import H2Client
    from metricsutil import value
    from test_metrics_accesslog import wait_lines

    origin.routes["/p"] = Route(headers=CC, body=b"p")
    log = tmp_path / "edge.log"
    edge = await make_node([origin.url], tls=h3_tls(pki), access_log={"sample": 1, "path": str(log)})
    assert (await https_get(edge.tls_port, "/p", pki["ca"]))[0] == 200  # http/1.1: miss
    c = await H2Client().connect(edge.tls_port, ca=pki["ca"])
    try:
        assert (await c.get("/p")).status == 200  # h2: hit
        assert (await c.get("/p")).status == 200
    finally:
        await c.close()
    (r,) = await h3_get(url(edge, "/p"), ca=str(pki["ca"]), connect_to=("127.0.0.1", edge.tls_port))
    assert r.status == 200  # h3: hit
    entries = await wait_lines(log, 4)
    assert [e["proto"] for e in entries] == ["http/1.1", "h2", "h2", "h3"]
    text = generate_latest(edge.registry).decode()
    counted = {
        (status, proto): value(text, "cdn_requests_total", tier="edge", cache_status=status,
                               protocol=proto)
        for status in ("miss", "hit") for proto in ("http/1.1", "h2", "h3")
    }
    assert counted == {("miss", "http/1.1"): 1, ("hit", "http/1.1"): 0, ("miss", "h2"): 0,
                       ("hit", "h2"): 2, ("miss", "h3"): 0, ("hit", "h3"): 1}


@pytest.mark.parametrize("max_object_bytes", [8 << 20, 64 << 10], ids=["stored", "streamed"])
async def test_a_large_body_is_handed_to_aioquic_as_it_is_sent(pki, origin, make_node,
                                                             monkeypatch, max_object_bytes):
    from cdn_core.node.wire import h3 as h3wire

    body = bytes(range(256)) * (16 * 1024)  # 4 MiB: from the cache, or relayed uncached
    origin.routes["/big"] = Route(headers=CC, body=body)
    edge = await make_node([origin.url], tls=h3_tls(pki),
                           cache={"max_object_bytes": max_object_bytes})
    most = 0
    feed = h3wire.H3ServerProtocol.feed

    def watched(self, stream):
        nonlocal most
        feed(self, stream)
        most = max(most, self.held(stream.stream_id))

    monkeypatch.setattr(h3wire.H3ServerProtocol, "feed", watched)
    miss, hit = await h3_get(url(edge, "/big"), ca=str(pki["ca"]),
                             connect_to=("127.0.0.1", edge.tls_port), count=2, timeout=30)
    assert miss.body == body and hit.body == body
    assert ("hit" in hit.headers["cache-status"]) == (max_object_bytes > len(body))
    # Per stream, aioquic holds at most the send buffer (plus DATA frame headers), never
    # the whole object: the stream is fed as the client acknowledges.
    assert 0 < most <= h3wire.SEND_BUFFER_BYTES + 64 and most < len(body) // 8


def client_config(pki, **settings):
    from aioquic.h3.connection import H3_ALPN
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN,
                               server_name="www.example.test", **settings)
    config.load_verify_locations(str(pki["ca"]))
    return config


@pytest.mark.parametrize("size", [1350, 1200])
async def test_h3_datagrams_stay_within_the_configured_size(pki, origin, make_node, size):
    from aioquic.asyncio.client import connect

    from bench.h3get import _Client

    origin.routes["/m"] = Route(headers=CC, body=b"m" * 300_000)
    tls = {**h3_tls(pki), "h3_max_datagram_size": size}
    edge = await make_node([origin.url], tls=tls, cache={"max_object_bytes": 1 << 20})
    sizes = []

    class Measuring(_Client):
        def datagram_received(self, data, addr):
            sizes.append(len(data))
            super().datagram_received(data, addr)

    async with connect("127.0.0.1", edge.tls_port, configuration=client_config(pki),
                       create_protocol=Measuring) as client:
        r = await asyncio.wait_for(
            client.request("GET", f"www.example.test:{edge.tls_port}", "/m", []), 20)
    assert r.body == b"m" * 300_000
    assert max(sizes) == size  # full packets of the configured size, never larger


async def test_a_client_that_opens_no_window_is_timed_out_on_h3(pki, origin, make_node):
    from aioquic.asyncio.client import connect
    from aioquic.quic.events import StreamReset
    from metricsutil import value

    from bench.h3get import _Client

    origin.routes["/big"] = Route(headers=CC, body=b"z" * 1_000_000)
    edge = await make_node([origin.url], tls=h3_tls(pki), limits={"body_timeout": 0.3},
                           cache={"max_object_bytes": 2 << 20})
    reset = asyncio.get_running_loop().create_future()

    class Stalled(_Client):
        def quic_event_received(self, event):
            if isinstance(event, StreamReset) and not reset.done():
                reset.set_result(event.error_code)
            super().quic_event_received(event)

    # No flow-control credit at all: the edge may queue the response but send none of it.
    async with connect("127.0.0.1", edge.tls_port,
                       configuration=client_config(pki, max_stream_data=0),
                       create_protocol=Stalled) as client:
        request = asyncio.ensure_future(
            client.request("GET", f"www.example.test:{edge.tls_port}", "/big", []))
        try:
            code = await asyncio.wait_for(reset, 10)
        finally:
            request.cancel()
    assert code == 0x010C  # H3_REQUEST_CANCELLED
    text = generate_latest(edge.registry).decode()
    assert value(text, "cdn_refused_total", tier="edge", reason="send-timeout") == 1
    (r,) = await h3_get(url(edge, "/big"), ca=str(pki["ca"]),
                        connect_to=("127.0.0.1", edge.tls_port), timeout=30)
    assert len(r.body) == 1_000_000  # and the edge serves the next client at once
