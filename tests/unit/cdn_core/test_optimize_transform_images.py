"""The Transformer's image variants on real images from examples/site: AVIF/WebP for
clients that name them, only when smaller, signed resizes, decompression bombs."""

import io

import pytest
from PIL import Image
from transformbench import CHROME, SECRET, SITE, entry, head, req, serve

from cdn_core.optimize.images import sign, signed_target


# images -----------------------------------------------------------------------------------
def image_entry(name="rocket.jpg", *extra, data=None, ctype="image/jpeg"):
    body = data if data is not None else (SITE / "images" / name).read_bytes()
    return entry(f"/images/{name}", body, ("Content-Type", ctype), ("ETag", '"img"'), *extra)


async def test_browsers_naming_avif_get_a_smaller_avif(transformer):
    e = image_entry()
    resp = await serve(transformer, e, req("/images/rocket.jpg", accept=CHROME))
    _, f = head(resp)
    assert f["content-type"] == ["image/avif"] and f["vary"] == ["Accept"]
    assert f["etag"] == ['"img-avif"'] and len(resp.body) < len(e.body)
    assert Image.open(io.BytesIO(resp.body)).size == (640, 427)
    webp = await serve(transformer, e, req("/images/rocket.jpg", accept="image/webp,*/*"))
    assert head(webp)[1]["content-type"] == ["image/webp"] and len(webp.body) < len(e.body)


async def test_other_clients_get_the_original_with_vary_accept(transformer):
    e = image_entry("chelsea-small.png", ctype="image/png")
    for accept in ("image/png,image/*;q=0.8,*/*;q=0.5", "*/*", None):
        resp = transformer.lookup(e, req("/images/chelsea-small.png", accept=accept))
        assert resp.body is e.body
        assert head(resp)[1]["vary"] == ["Accept"] and resp.etag == '"img"'


async def test_a_conversion_that_is_not_smaller_is_not_served(transformer):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(buf, "PNG", optimize=True)
    e = image_entry("dot.png", data=buf.getvalue(), ctype="image/png")
    resp = await serve(transformer, e, req("/images/dot.png", accept="image/avif,*/*"))
    assert resp.body is e.body and head(resp)[1]["vary"] == ["Accept"]
    started = transformer.pool.jobs_started
    assert transformer.lookup(e, req("/images/dot.png", accept="image/avif,*/*")).body is e.body
    assert transformer.pool.jobs_started == started


async def test_signed_resize_with_negotiated_format(transformer):
    e = image_entry()
    target = signed_target("/images/rocket.jpg", 320, SECRET, transformer.settings.images)
    assert transformer.source_target(target) == "/images/rocket.jpg"
    resp = await serve(transformer, e, req(target, accept=CHROME))
    _, f = head(resp)
    assert f["content-type"] == ["image/avif"] and f["etag"] == ['"img-w320-avif"']
    assert Image.open(io.BytesIO(resp.body)).size == (320, 214)
    jpeg = await serve(transformer, e, req(target, accept="*/*"))
    assert head(jpeg)[1]["content-type"] == ["image/jpeg"]
    assert head(jpeg)[1]["etag"] == ['"img-w320"']
    assert Image.open(io.BytesIO(jpeg.body)).size == (320, 214)
    assert len(resp.body) < len(jpeg.body) < len(e.body)


@pytest.mark.parametrize(
    "query",
    ["w=320", "w=320&sig=forged", "w=333&sig=" + sign("/images/rocket.jpg", 333, SECRET)],
)
async def test_unsigned_or_unlisted_resizes_400_or_original(make_transformer, query):
    target = "/images/rocket.jpg?" + query
    strict = make_transformer()
    assert strict.source_target(target) == target  # never rewritten
    resp = strict.lookup(image_entry(), req(target, accept=CHROME))
    assert resp.status == 400 and resp.body.startswith(b"400 Bad Request: ")
    lenient = make_transformer(images={"unsigned": "original"})
    resp = await serve(lenient, image_entry(), req(target, accept="*/*"))
    assert resp.status == 200 and resp.body == image_entry().body


async def test_decompression_bombs_are_refused_with_a_clear_error(transformer):
    import struct
    import zlib

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    e = image_entry("bomb.png", data=bomb, ctype="image/png")
    resp = transformer.lookup(e, req("/images/bomb.png", accept=CHROME))
    assert resp.body is e.body  # sent as the origin sent it, never decoded
    target = signed_target("/images/bomb.png", 320, SECRET, transformer.settings.images)
    resp = transformer.lookup(e, req(target, accept=CHROME))
    assert resp.status == 422
    assert b"100000x100000 = 10000000000 pixels exceeds the limit" in resp.body
    assert transformer.pool.jobs_started == 0
    labels = {"tier": "edge", "kind": "png", "result": "refused"}
    assert transformer.registry.get_sample_value("cdn_optimize_transforms_total", labels) == 1


async def test_images_switched_off(make_transformer):
    t = make_transformer(images={"enabled": False})
    assert t.lookup(image_entry(), req("/images/rocket.jpg", accept=CHROME)) is None
