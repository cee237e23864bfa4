"""Compression and image variants at the edge with the real example site (issue 6, case
H05; RFC 9110 8.4, 8.8.3, 12.5.3; RFC 9111 4.1), through a real origin and edge on
loopback."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import brotli
import pytest
from aiohttp import web
from nodeharness import Route
from PIL import Image

from cdn_core.optimize.images import signed_target
from cdn_core.optimize.settings import ImageSettings
from origin.app import create_app
from origin.config import OriginConfig

BOTH_WIRES = True  # every test over HTTP/1.1 and over HTTP/2 (h2c): one request path

SITE = Path(__file__).resolve().parents[2] / "examples" / "site"
SECRET = "resize-secret-for-tests-0123456789"


@pytest.fixture
async def site_origin():
    app = create_app(OriginConfig(root=str(SITE), port=0, admin_port=0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_h05_compressed_variants_only_for_clients_that_accept_them(site_origin, make_node,
                                                                         http):
    edge = await make_node([site_origin])
    identity = (SITE / "index.html").read_bytes()
    s, h, b = await http(edge, "/index.html", Accept_Encoding="gzip, deflate, br")
    assert s == 200 and h["Content-Encoding"] == "br" and brotli.decompress(b) == identity
    assert int(h["Content-Length"]) == len(b) and "Accept-Encoding" in h["Vary"]
    br_etag = h["ETag"]
    s, h, b = await http(edge, "/index.html", Accept_Encoding="gzip, deflate")
    assert h.get("Content-Encoding") in (None, "gzip")
    if h.get("Content-Encoding") == "gzip":
        assert gzip.decompress(b) == identity
    s, h, b = await http(edge, "/index.html")
    assert "Content-Encoding" not in h and b == identity
    identity_etag = h["ETag"]
    s, h, _ = await http(edge, "/index.html", Accept_Encoding="br;q=0, gzip")
    assert h.get("Content-Encoding") != "br"
    assert br_etag != identity_etag
    s, _, b = await http(edge, "/index.html", Accept_Encoding="br", If_None_Match=br_etag)
    assert s == 304 and b == b""


async def test_h05_origin_encoded_response_passed_through_once(origin, make_node, http):
    body = gzip.compress(b"<p>" + b"already compressed " * 200 + b"</p>")
    origin.routes["/z"] = Route(headers={"Cache-Control": "max-age=60",
                                         "Content-Type": "text/html",
                                         "Content-Encoding": "gzip"}, body=body)
    edge = await make_node([origin.url])
    s, h, b = await http(edge, "/z", Accept_Encoding="gzip, br")
    assert h["Content-Encoding"] == "gzip" and b == body  # a single coding, never gzip twice


async def test_rfc9111_5_2_1_6_no_transform_and_ranges_get_identity(site_origin, make_node,
                                                                    http):
    edge = await make_node([site_origin])
    _, h, _ = await http(edge, "/about.html", Accept_Encoding="br", Cache_Control="no-transform")
    assert "Content-Encoding" not in h
    s, h, b = await http(edge, "/about.html", Accept_Encoding="br", Range="bytes=0-9")
    assert s == 206 and "Content-Encoding" not in h and len(b) == 10


async def test_images_negotiated_smaller_only_and_signed_resize(site_origin, make_node, http):
    edge = await make_node([site_origin], optimize={"images": {"secret": SECRET,
                                                               "widths": [160, 320]}})
    original = (SITE / "images" / "coffee.jpg").read_bytes()
    s, h, b = await http(edge, "/images/coffee.jpg", Accept="image/avif,image/webp,*/*")
    assert s == 200 and "Accept" in h["Vary"] and len(b) <= len(original)
    assert h["Content-Type"] in ("image/avif", "image/webp", "image/jpeg")
    s, h, b = await http(edge, "/images/coffee.jpg", Accept="image/jpeg")
    assert h["Content-Type"] == "image/jpeg" and b == original
    settings = ImageSettings(secret=SECRET, widths=[160, 320])
    target = signed_target("/images/coffee.jpg", 160, SECRET, settings)
    s, h, b = await http(edge, target, Accept="image/jpeg")
    assert s == 200 and Image.open(io.BytesIO(b)).width == 160
    s, _, _ = await http(edge, "/images/coffee.jpg?w=160&sig=forged", Accept="image/jpeg")
    assert s == 400
